// gRPC clients: tessera.v1.Inference Generate/Chat (server streaming), tessera.engine.v1.Engine
// Generate (token ids straight to a worker), and the unary tessera.v1.Inference/Tokenize.
#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "bench/serve/client.h"
#include "tessera/engine/v1/engine.grpc.pb.h"
#include "tessera/v1/inference.grpc.pb.h"

namespace tessera::bench {
namespace {

constexpr size_t kMaxErrorDetail = 300;

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN_CODE";
  }
}

void SetError(const grpc::Status& s, RequestResult* r) {
  r->error_kind = absl::StrCat("gRPC ", CodeName(s.error_code()));
  r->error_detail = s.error_message().substr(0, kMaxErrorDetail);
}

void Prepare(const TargetOptions& opts, grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(opts.timeout_s * 1000)));
  if (!opts.api_key.empty()) ctx->AddMetadata("authorization", "Bearer " + opts.api_key);
}

// Times one streamed response that carries `tokens` new tokens.
void OnChunk(int tokens, double now, double* last, RequestResult* r) {
  if (tokens <= 0) return;
  if (r->chunks == 0) {
    r->ttft = now - r->start;
  } else {
    r->itl.push_back(now - *last);
  }
  *last = now;
  ++r->chunks;
}

class InferenceClient final : public Client {
 public:
  InferenceClient(const TargetOptions& opts, std::string model, std::shared_ptr<grpc::Channel> ch)
      : opts_(opts), model_(std::move(model)), stub_(tessera::v1::Inference::NewStub(ch)) {}

  RequestResult Send(const RequestSpec& spec, const std::string& request_id) override {
    tessera::v1::SamplingParams sampling;
    sampling.set_temperature(opts_.temperature);
    sampling.set_max_tokens(spec.output_len);
    sampling.set_ignore_eos(opts_.ignore_eos);
    grpc::ClientContext ctx;
    Prepare(opts_, &ctx);
    RequestResult r;
    std::unique_ptr<grpc::ClientReader<tessera::v1::GenerateResponse>> reader;
    if (opts_.endpoint == Endpoint::kChat) {
      tessera::v1::ChatRequest req;
      req.set_model(model_);
      req.set_request_id(request_id);
      auto* m = req.add_messages();
      m->set_role("user");
      m->set_content(spec.prompt);
      *req.mutable_sampling() = sampling;
      r.start = NowSeconds();
      reader = stub_->Chat(&ctx, req);
    } else {
      tessera::v1::GenerateRequest req;
      req.set_model(model_);
      req.set_request_id(request_id);
      if (!spec.prompt_ids.empty()) {
        req.mutable_token_ids()->mutable_ids()->Add(spec.prompt_ids.begin(), spec.prompt_ids.end());
      } else {
        req.set_text(spec.prompt);
      }
      *req.mutable_sampling() = sampling;
      r.start = NowSeconds();
      reader = stub_->Generate(&ctx, req);
    }
    tessera::v1::GenerateResponse resp;
    double last = 0;
    int counted = 0;
    while (reader->Read(&resp)) {
      const double now = NowSeconds();
      const int tokens = std::max(resp.tokens_size(), resp.text().empty() ? 0 : 1);
      counted += resp.tokens_size();
      OnChunk(tokens, now, &last, &r);
      if (resp.has_usage()) {
        r.prompt_tokens = resp.usage().prompt_tokens();
        r.output_tokens = resp.usage().completion_tokens();
      }
    }
    const grpc::Status s = reader->Finish();
    r.e2e = NowSeconds() - r.start;
    if (!s.ok()) {
      SetError(s, &r);
      return r;
    }
    if (r.chunks == 0) {
      r.error_kind = "stream error";
      r.error_detail = "no response carried tokens";
      return r;
    }
    if (r.output_tokens == 0) r.output_tokens = counted;
    r.ok = true;
    return r;
  }

 private:
  TargetOptions opts_;
  std::string model_;
  std::unique_ptr<tessera::v1::Inference::Stub> stub_;
};

class EngineClient final : public Client {
 public:
  EngineClient(const TargetOptions& opts, std::shared_ptr<grpc::Channel> ch)
      : opts_(opts), stub_(tessera::engine::v1::Engine::NewStub(ch)) {}

  RequestResult Send(const RequestSpec& spec, const std::string& request_id) override {
    tessera::engine::v1::GenerateRequest req;
    req.set_request_id(request_id);
    req.mutable_prompt_token_ids()->Add(spec.prompt_ids.begin(), spec.prompt_ids.end());
    auto* sp = req.mutable_sampling();
    sp->set_temperature(opts_.temperature);
    sp->set_top_p(1.0f);
    sp->set_repetition_penalty(1.0f);
    sp->set_max_tokens(spec.output_len);
    sp->set_ignore_eos(opts_.ignore_eos);
    sp->set_logprobs(-1);
    grpc::ClientContext ctx;
    Prepare(opts_, &ctx);
    RequestResult r;
    r.start = NowSeconds();
    auto reader = stub_->Generate(&ctx, req);
    tessera::engine::v1::GenerateResponse resp;
    double last = 0;
    int counted = 0;
    while (reader->Read(&resp)) {
      const double now = NowSeconds();
      counted += resp.tokens_size();
      OnChunk(resp.tokens_size(), now, &last, &r);
      if (resp.prompt_tokens() > 0) r.prompt_tokens = resp.prompt_tokens();
      if (resp.completion_tokens() > 0) r.output_tokens = resp.completion_tokens();
    }
    const grpc::Status s = reader->Finish();
    r.e2e = NowSeconds() - r.start;
    if (!s.ok()) {
      SetError(s, &r);
      return r;
    }
    if (r.chunks == 0) {
      r.error_kind = "stream error";
      r.error_detail = "no response carried tokens";
      return r;
    }
    r.output_tokens = std::max(r.output_tokens, counted);
    r.ok = true;
    return r;
  }

 private:
  TargetOptions opts_;
  std::unique_ptr<tessera::engine::v1::Engine::Stub> stub_;
};

class TokenizeClient final : public Client {
 public:
  TokenizeClient(const TargetOptions& opts, std::string model, std::shared_ptr<grpc::Channel> ch)
      : opts_(opts), model_(std::move(model)), stub_(tessera::v1::Inference::NewStub(ch)) {}

  RequestResult Send(const RequestSpec& spec, const std::string&) override {
    tessera::v1::TokenizeRequest req;
    req.set_model(model_);
    req.set_text(spec.prompt);
    tessera::v1::TokenizeResponse resp;
    grpc::ClientContext ctx;
    Prepare(opts_, &ctx);
    RequestResult r;
    r.start = NowSeconds();
    const grpc::Status s = stub_->Tokenize(&ctx, req, &resp);
    r.e2e = NowSeconds() - r.start;
    if (!s.ok()) {
      SetError(s, &r);
      return r;
    }
    r.prompt_tokens = resp.token_ids_size();
    r.ok = true;
    return r;
  }

 private:
  TargetOptions opts_;
  std::string model_;
  std::unique_ptr<tessera::v1::Inference::Stub> stub_;
};

class GrpcFactory final : public ClientFactory {
 public:
  GrpcFactory(const TargetOptions& opts, TargetInfo info, std::vector<std::shared_ptr<grpc::Channel>> channels)
      : opts_(opts), info_(std::move(info)), channels_(std::move(channels)) {}
  TargetInfo info() const override { return info_; }
  std::unique_ptr<Client> NewClient(int worker) override {
    auto ch = channels_[static_cast<size_t>(worker) % channels_.size()];
    switch (opts_.api) {
      case Api::kEngine:
        return std::make_unique<EngineClient>(opts_, ch);
      case Api::kTokenize:
        return std::make_unique<TokenizeClient>(opts_, info_.model, ch);
      default:
        return std::make_unique<InferenceClient>(opts_, info_.model, ch);
    }
  }

 private:
  TargetOptions opts_;
  TargetInfo info_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ClientFactory>> MakeGrpcClientFactory(const TargetOptions& opts) {
  if (opts.grpc_target.empty()) return absl::InvalidArgumentError("--grpc: give host:port of the gRPC server");
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < std::max(1, opts.grpc_channels); ++i) {
    grpc::ChannelArguments args;
    // A private subchannel pool gives each channel its own TCP connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(64 << 20);
    auto ch = grpc::CreateCustomChannel(opts.grpc_target, grpc::InsecureChannelCredentials(), args);
    if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      return absl::UnavailableError(absl::StrCat("--grpc ", opts.grpc_target, ": cannot connect within 10 s"));
    }
    channels.push_back(std::move(ch));
  }
  TargetInfo info;
  info.model = opts.model;
  grpc::ClientContext ctx;
  Prepare(opts, &ctx);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (opts.api == Api::kEngine) {
    auto stub = tessera::engine::v1::Engine::NewStub(channels[0]);
    tessera::engine::v1::HealthResponse health;
    const grpc::Status s = stub->Health(&ctx, tessera::engine::v1::HealthRequest(), &health);
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("engine Health: ", s.error_message()));
    if (!health.ready()) return absl::UnavailableError("engine Health: not ready");
    if (info.model.empty()) info.model = health.model_name();
    info.vocab_size = health.vocab_size();
  } else {
    auto stub = tessera::v1::Inference::NewStub(channels[0]);
    tessera::v1::ListModelsResponse models;
    const grpc::Status s = stub->ListModels(&ctx, tessera::v1::ListModelsRequest(), &models);
    if (s.ok() && models.models_size() > 0) {
      if (info.model.empty()) info.model = models.models(0).id();
      info.vocab_size = models.models(0).vocab_size();
    } else if (opts.api != Api::kTokenize) {
      // Tokenize is also aimed at stand-ins that serve nothing else; the others need a model.
      return absl::UnavailableError(absl::StrCat("ListModels: ", s.ok() ? "no model" : s.error_message()));
    }
  }
  return std::make_unique<GrpcFactory>(opts, std::move(info), std::move(channels));
}

}  // namespace tessera::bench
