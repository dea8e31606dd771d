#include "server/http/http_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "server/api/errors.h"
#include "server/http/openai_protocol.h"

namespace tessera::server {
namespace {

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void ReplyError(httplib::Response& res, const absl::Status& s) {
  res.status = HttpStatusOf(s);
  res.set_content(OpenAiErrorBody(s), "application/json");
}

int PortOf(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return -1;
}

// True when fd is the connected socket between the request's two endpoints.
bool IsConnectionOf(int fd, const httplib::Request& req) {
  sockaddr_storage peer{}, local{};
  socklen_t pl = sizeof(peer), ll = sizeof(local);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) return false;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0) return false;
  return PortOf(peer) == req.remote_port && PortOf(local) == req.local_port;
}

// The socket of the connection a request arrived on, found by its two endpoints (cpp-httplib does
// not expose it). -1 when not found. cpp-httplib serves all requests of one connection on one
// thread, so the last socket found on this thread is tried first (two syscalls), and /proc/self/fd
// is scanned once per connection, not once per request.
int FindConnectionSocket(const httplib::Request& req) {
  thread_local int last = -1;
  if (last >= 0 && IsConnectionOf(last, req)) return last;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    if (IsConnectionOf(static_cast<int>(fd), req)) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  last = found;
  return found;
}

// True once the peer has closed (or reset) the connection.
bool PeerClosed(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

// cpp-httplib listens with a backlog of 5, so a burst of connects is reset. Linux lets listen() be
// called again on a listening socket to change its backlog: find ours by its port and do so.
void WidenListenBacklog(int port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage local{};
    socklen_t ll = sizeof(local);
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
    if (PortOf(local) == port) listen(static_cast<int>(fd), 4096);
  }
  closedir(dir);
}

// State shared between a streaming handler and its content provider.
struct StreamState {
  std::unique_ptr<Generation> gen;
  std::unique_ptr<openai::ResponseBuilder> out;
  int fd = -1;
};

}  // namespace

HttpServer::HttpServer(const HttpOptions& options, Pipeline* pipeline, Metrics* metrics, const ApiKeys* keys)
    : options_(options), pipeline_(pipeline), metrics_(metrics), keys_(keys) {}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() {
  if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
    if (options_.tls_cert.empty() || options_.tls_key.empty()) {
      return absl::InvalidArgumentError("--tls-cert and --tls-key must be given together");
    }
    auto ssl =
        std::make_unique<httplib::SSLServer>(options_.tls_cert.c_str(), options_.tls_key.c_str(),
                                             options_.tls_client_ca.empty() ? nullptr : options_.tls_client_ca.c_str());
    if (!ssl->is_valid()) {
      return absl::InvalidArgumentError("cannot load the TLS certificate, key or client CA for HTTPS");
    }
    server_ = std::move(ssl);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  const int threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_read_timeout(30, 0);
  server_->set_write_timeout(30, 0);
  server_->set_keep_alive_max_count(1000);
  server_->set_tcp_nodelay(true);  // SSE chunks must not wait for the client's delayed ACK
  Routes();
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host.c_str());
  } else {
    port_ = server_->bind_to_port(options_.host.c_str(), options_.port) ? options_.port : -1;
  }
  if (port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot bind HTTP to ", options_.host, ":", options_.port));
  }
  WidenListenBacklog(port_);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return absl::OkStatus();
}

void HttpServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

void HttpServer::Routes() {
  httplib::Server& s = *server_;

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (keys_->enabled() && absl::StartsWith(req.path, "/v1/") &&
        !keys_->Authorized(req.get_header_value("Authorization"))) {
      ReplyError(res, absl::UnauthenticatedError("missing or invalid API key (Authorization: Bearer <key>)"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      ReplyError(res, TooLarge("the request body is too large"));
    } else if (res.status == 404) {
      ReplyError(res, absl::NotFoundError("no route for " + req.method + " " + req.path));
    } else if (res.status == 400) {
      ReplyError(res, absl::InvalidArgumentError("malformed HTTP request"));
    } else {
      const int status = res.status;
      ReplyError(res, absl::UnknownError("HTTP error " + std::to_string(status)));
      res.status = status;
    }
  });

  s.Get("/health",
        [this](const httplib::Request&, httplib::Response& res) { res.status = pipeline_->Ready() ? 200 : 503; });
  s.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  s.Get("/v2/health/ready",
        [this](const httplib::Request&, httplib::Response& res) { res.status = pipeline_->Ready() ? 200 : 503; });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(
        openai::FormatModelList(
            {{.id = pipeline_->model_name(), .created = UnixNow(), .max_model_len = pipeline_->max_model_len()}}),
        "application/json");
  });
  s.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != pipeline_->model_name()) {
      return ReplyError(res, absl::NotFoundError("model '" + std::string(req.matches[1]) + "' does not exist"));
    }
    res.set_content(
        openai::FormatModel(
            {.id = pipeline_->model_name(), .created = UnixNow(), .max_model_len = pipeline_->max_model_len()}),
        "application/json");
  });

  // The shared body of both generation endpoints once the request is parsed.
  auto serve = [this](const httplib::Request& req, httplib::Response& res, TextRequest text,
                      openai::ResponseOptions ropts) {
    const bool stream = ropts.stream.stream;
    auto gen = pipeline_->Submit(std::move(text));
    if (!gen.ok()) return ReplyError(res, gen.status());
    auto state = std::make_shared<StreamState>();
    state->gen = std::move(*gen);
    ropts.id = absl::StrCat(ropts.endpoint == openai::Endpoint::kCompletions ? "cmpl-" : "chatcmpl-", state->gen->id());
    state->out = std::make_unique<openai::ResponseBuilder>(ropts);
    state->fd = FindConnectionSocket(req);
    if (!stream) {
      for (;;) {
        auto d = state->gen->Next([&] { return PeerClosed(state->fd); });
        if (!d.ok()) return ReplyError(res, d.status());
        if (!d->has_value()) break;
        state->out->Add(**d);
      }
      res.set_content(state->out->Finish(), "application/json");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [state](size_t, httplib::DataSink& sink) {
      auto write = [&](const std::string& bytes) { return bytes.empty() || sink.write(bytes.data(), bytes.size()); };
      for (;;) {
        auto d = state->gen->Next([&] { return PeerClosed(state->fd); });
        if (!d.ok()) {
          write(state->out->Fail(d.status()));
          break;
        }
        if (!d->has_value()) {
          write(state->out->Finish());
          break;
        }
        if (!write(state->out->Add(**d))) {
          state->gen->Cancel(absl::CancelledError("client went away"));
          return false;
        }
      }
      sink.done();
      return true;
    });
  };

  auto limits = [this] {
    openai::Limits l;
    l.max_tokens_cap = options_.max_tokens_cap;
    l.vocab_size = pipeline_->vocab_size();
    return l;
  };

  s.Post("/v1/completions", [this, serve, limits](const httplib::Request& req, httplib::Response& res) {
    auto parsed = openai::ParseCompletionRequest(req.body, limits());
    if (!parsed.ok()) return ReplyError(res, parsed.status());
    auto ropts = openai::ResponseOptionsFor(*parsed, "", UnixNow());
    ropts.model = pipeline_->model_name();
    serve(req, res, std::move(parsed->request), ropts);
  });
  s.Post("/v1/chat/completions", [this, serve, limits](const httplib::Request& req, httplib::Response& res) {
    auto parsed = openai::ParseChatRequest(req.body, limits());
    if (!parsed.ok()) return ReplyError(res, parsed.status());
    auto ropts = openai::ResponseOptionsFor(*parsed, "", UnixNow());
    ropts.model = pipeline_->model_name();
    serve(req, res, std::move(parsed->request), ropts);
  });
}

}  // namespace tessera::server
