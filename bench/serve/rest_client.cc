// OpenAI REST client: POST /v1/completions or /v1/chat/completions with "stream": true, read with
// cpp-httplib's content receiver so each SSE event is timed when its bytes arrive.
#include <httplib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

#include "absl/strings/str_cat.h"
#include "bench/serve/client.h"
#include "nlohmann/json.hpp"

namespace tessera::bench {
namespace {

constexpr size_t kMaxErrorDetail = 300;

void ConfigureClient(httplib::Client& cli, const TargetOptions& opts) {
  const auto secs = static_cast<time_t>(opts.timeout_s);
  const auto usecs = static_cast<time_t>((opts.timeout_s - static_cast<double>(secs)) * 1e6);
  cli.set_keep_alive(opts.rest_keep_alive);
  // Headers and body go out in separate writes; without TCP_NODELAY the body can wait for the
  // server's delayed ACK (~40 ms on Linux), which would show up as TTFT.
  cli.set_tcp_nodelay(true);
  cli.set_connection_timeout(10, 0);
  cli.set_read_timeout(secs, usecs);
  cli.set_write_timeout(secs, usecs);
  if (!opts.api_key.empty()) cli.set_bearer_token_auth(opts.api_key.c_str());
}

class RestClient final : public Client {
 public:
  RestClient(const TargetOptions& opts, std::string model) : opts_(opts), model_(std::move(model)), cli_(opts.url) {
    ConfigureClient(cli_, opts_);
  }

  RequestResult Send(const RequestSpec& spec, const std::string& request_id) override {
    RequestResult r;
    const bool chat = opts_.endpoint == Endpoint::kChat;
    nlohmann::json body = {{"model", model_},
                           {"max_tokens", spec.output_len},
                           {"temperature", opts_.temperature},
                           {"ignore_eos", opts_.ignore_eos},
                           {"stream", true},
                           {"stream_options", {{"include_usage", true}}}};
    if (chat) {
      body["messages"] = nlohmann::json::array({{{"role", "user"}, {"content", spec.prompt}}});
    } else if (!spec.prompt_ids.empty()) {
      body["prompt"] = spec.prompt_ids;
    } else {
      body["prompt"] = spec.prompt;
    }
    httplib::Request req;
    req.method = "POST";
    req.path = chat ? "/v1/chat/completions" : "/v1/completions";
    req.headers = {{"Accept", "text/event-stream"}, {"X-Request-Id", request_id}};
    req.set_header("Content-Type", "application/json");
    req.body = body.dump();

    int status = 0;
    std::string error_body;
    SseParser parser;
    bool done = false;
    double last = 0;
    req.response_handler = [&status](const httplib::Response& res) {
      status = res.status;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      const double now = NowSeconds();
      if (status != 200) {
        if (error_body.size() < kMaxErrorDetail) error_body.append(data, std::min(n, kMaxErrorDetail));
        return true;
      }
      for (const SseEvent& e : parser.Feed(std::string_view(data, n))) {
        const StreamChunk c = ParseOpenAiChunk(e.data, opts_.endpoint);
        if (c.done) {
          done = true;
          continue;
        }
        if (c.is_error) {
          if (r.error_kind.empty()) {
            r.error_kind = "stream error";
            r.error_detail = c.error.substr(0, kMaxErrorDetail);
          }
          continue;
        }
        if (c.prompt_tokens) r.prompt_tokens = *c.prompt_tokens;
        if (c.completion_tokens) r.output_tokens = *c.completion_tokens;
        if (!c.carries_tokens) continue;
        if (r.chunks == 0) {
          r.ttft = now - r.start;
        } else {
          r.itl.push_back(now - last);
        }
        last = now;
        ++r.chunks;
      }
      return true;
    };

    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    r.start = NowSeconds();
    errno = 0;
    const bool sent = cli_.send(req, res, err);
    const int sys_error = errno;
    r.e2e = NowSeconds() - r.start;
    if (!sent || err != httplib::Error::Success) {
      r.error_kind = absl::StrCat("connection: ", httplib::to_string(err));
      if (sys_error != 0) r.error_detail = std::strerror(sys_error);
      // A broken keep-alive connection is not reused.
      cli_.stop();
      return r;
    }
    if (status != 200) {
      r.error_kind = absl::StrCat("HTTP ", status);
      r.error_detail = error_body.substr(0, kMaxErrorDetail);
      return r;
    }
    if (!r.error_kind.empty()) return r;
    if (!done) {
      r.error_kind = "stream error";
      r.error_detail = "the stream ended without data: [DONE]";
      return r;
    }
    if (r.chunks == 0) {
      r.error_kind = "stream error";
      r.error_detail = "no chunk carried tokens";
      return r;
    }
    if (r.output_tokens == 0) r.output_tokens = r.chunks;
    r.ok = true;
    return r;
  }

 private:
  TargetOptions opts_;
  std::string model_;
  httplib::Client cli_;
};

class RestFactory final : public ClientFactory {
 public:
  RestFactory(const TargetOptions& opts, TargetInfo info) : opts_(opts), info_(std::move(info)) {}
  TargetInfo info() const override { return info_; }
  std::unique_ptr<Client> NewClient(int) override { return std::make_unique<RestClient>(opts_, info_.model); }

 private:
  TargetOptions opts_;
  TargetInfo info_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ClientFactory>> MakeRestClientFactory(const TargetOptions& opts) {
  httplib::Client cli(opts.url);
  if (!cli.is_valid()) return absl::InvalidArgumentError(absl::StrCat("--url: cannot use '", opts.url, "'"));
  ConfigureClient(cli, opts);
  auto res = cli.Get("/v1/models");
  if (!res) {
    return absl::UnavailableError(
        absl::StrCat("--url ", opts.url, ": GET /v1/models failed: ", httplib::to_string(res.error())));
  }
  if (res->status != 200) {
    return absl::UnavailableError(absl::StrCat("--url ", opts.url, ": GET /v1/models answered HTTP ", res->status, ": ",
                                               res->body.substr(0, kMaxErrorDetail)));
  }
  TargetInfo info;
  info.model = opts.model;
  if (info.model.empty()) {
    nlohmann::json j = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("data") && j["data"].is_array() && !j["data"].empty() && j["data"][0].is_object() &&
        j["data"][0].contains("id") && j["data"][0]["id"].is_string()) {
      info.model = j["data"][0]["id"].get<std::string>();
    } else {
      return absl::UnavailableError("GET /v1/models: no model id in the answer; pass --model");
    }
  }
  return std::make_unique<RestFactory>(opts, std::move(info));
}

}  // namespace tessera::bench
