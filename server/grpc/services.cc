#include "server/grpc/services.h"

#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/api/errors.h"
#include "server/grpc/kserve_request.h"

namespace tessera::server {
namespace {

using nlohmann::json;

grpc::Status CheckKey(grpc::ServerContext* ctx, const ApiKeys* keys) {
  if (keys == nullptr || !keys->enabled()) return grpc::Status::OK;
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end() || !keys->Authorized(std::string_view(it->second.data(), it->second.size()))) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or invalid API key (authorization metadata)");
  }
  return grpc::Status::OK;
}

std::optional<Clock::time_point> DeadlineOf(grpc::ServerContext* ctx) {
  const auto d = ctx->deadline();
  if (d >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) return std::nullopt;
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(d - std::chrono::system_clock::now());
}

absl::Status ApplySampling(const tessera::v1::SamplingParams& p, TextRequest* r) {
  llm::SamplingParams& s = r->sampling;
  if (p.has_temperature()) s.temperature = p.temperature();
  if (p.has_top_k()) s.top_k = p.top_k();
  if (p.has_top_p()) s.top_p = p.top_p();
  if (p.has_min_p()) s.min_p = p.min_p();
  if (p.has_repetition_penalty()) s.repetition_penalty = p.repetition_penalty();
  if (p.has_presence_penalty()) s.presence_penalty = p.presence_penalty();
  if (p.has_frequency_penalty()) s.frequency_penalty = p.frequency_penalty();
  if (p.has_seed()) s.seed = p.seed();
  s.max_tokens = p.has_max_tokens() ? p.max_tokens() : 16;
  if (p.has_max_tokens() && p.max_tokens() < 1) return InvalidParam("sampling.max_tokens", "max_tokens must be >= 1");
  if (p.has_min_tokens()) s.min_tokens = p.min_tokens();
  s.stop_token_ids.assign(p.stop_token_ids().begin(), p.stop_token_ids().end());
  s.ignore_eos = p.ignore_eos();
  if (p.has_logprobs()) s.logprobs = p.logprobs();
  r->stop.assign(p.stop().begin(), p.stop().end());
  r->include_stop_str_in_output = p.include_stop_str_in_output();
  return absl::OkStatus();
}

void FillResponse(const Delta& d, const std::string& id, bool with_logprobs, tessera::v1::GenerateResponse* out) {
  out->set_request_id(id);
  out->set_text(d.text);
  for (const TokenOut& t : d.tokens) {
    auto* ti = out->add_tokens();
    ti->set_token_id(t.id);
    ti->set_token(t.token);
    if (with_logprobs) {
      ti->set_logprob(t.logprob);
      for (const TopLogprob& a : t.top) {
        auto* alt = ti->add_top_logprobs();
        alt->set_token_id(a.id);
        alt->set_token(a.token);
        alt->set_logprob(a.logprob);
      }
    }
  }
  out->set_finish_reason(d.finish_reason);
  if (d.stop_reason) out->set_stop_reason(*d.stop_reason);
  if (!d.finish_reason.empty()) {
    out->mutable_usage()->set_prompt_tokens(d.usage.prompt_tokens);
    out->mutable_usage()->set_completion_tokens(d.usage.completion_tokens);
    out->mutable_usage()->set_cached_prompt_tokens(d.usage.cached_prompt_tokens);
  }
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  std::string msg(s.message());
  const std::string param = ParamOf(s);
  if (!param.empty() && msg.find(param) == std::string::npos) msg = param + ": " + msg;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), msg);
}

// ---- tessera.v1.Inference -------------------------------------------------------------------------

grpc::Status InferenceService::Run(grpc::ServerContext* ctx, TextRequest req,
                                   grpc::ServerWriter<tessera::v1::GenerateResponse>* writer) {
  req.api = "grpc";
  req.deadline = DeadlineOf(ctx);
  const bool with_logprobs = req.sampling.logprobs >= 0;
  auto gen = pipeline_->Submit(std::move(req));
  if (!gen.ok()) return ToGrpcStatus(gen.status());
  for (;;) {
    auto d = (*gen)->Next([ctx] { return ctx->IsCancelled(); });
    if (!d.ok()) return ToGrpcStatus(d.status());
    if (!d->has_value()) return grpc::Status::OK;
    tessera::v1::GenerateResponse out;
    FillResponse(**d, (*gen)->id(), with_logprobs, &out);
    if (!writer->Write(out)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  }
}

grpc::Status InferenceService::Generate(grpc::ServerContext* ctx, const tessera::v1::GenerateRequest* req,
                                        grpc::ServerWriter<tessera::v1::GenerateResponse>* writer) {
  if (auto s = CheckKey(ctx, keys_); !s.ok()) return s;
  TextRequest r;
  r.model = req->model();
  r.request_id = req->request_id();
  if (req->has_token_ids()) {
    r.prompt_ids = std::vector<int32_t>(req->token_ids().ids().begin(), req->token_ids().ids().end());
  } else {
    r.prompt_text = req->text();
  }
  if (auto s = ApplySampling(req->sampling(), &r); !s.ok()) return ToGrpcStatus(s);
  return Run(ctx, std::move(r), writer);
}

grpc::Status InferenceService::Chat(grpc::ServerContext* ctx, const tessera::v1::ChatRequest* req,
                                    grpc::ServerWriter<tessera::v1::GenerateResponse>* writer) {
  if (auto s = CheckKey(ctx, keys_); !s.ok()) return s;
  TextRequest r;
  r.model = req->model();
  r.request_id = req->request_id();
  std::vector<ChatMessage> messages;
  for (int i = 0; i < req->messages_size(); ++i) {
    const auto& m = req->messages(i);
    if (m.role().empty()) return ToGrpcStatus(InvalidParam(absl::StrCat("messages[", i, "].role"), "role is required"));
    ChatMessage cm{m.role(), m.content()};
    if (!m.name().empty()) cm.extra["name"] = m.name();
    messages.push_back(std::move(cm));
  }
  r.messages = std::move(messages);
  r.add_generation_prompt = req->has_add_generation_prompt() ? req->add_generation_prompt() : true;
  if (auto s = ApplySampling(req->sampling(), &r); !s.ok()) return ToGrpcStatus(s);
  return Run(ctx, std::move(r), writer);
}

grpc::Status InferenceService::ListModels(grpc::ServerContext* ctx, const tessera::v1::ListModelsRequest*,
                                          tessera::v1::ListModelsResponse* resp) {
  if (auto s = CheckKey(ctx, keys_); !s.ok()) return s;
  auto* m = resp->add_models();
  m->set_id(pipeline_->model_name());
  m->set_max_model_len(pipeline_->max_model_len());
  m->set_vocab_size(pipeline_->vocab_size());
  m->set_owned_by("tessera");
  return grpc::Status::OK;
}

grpc::Status InferenceService::Tokenize(grpc::ServerContext* ctx, const tessera::v1::TokenizeRequest* req,
                                        tessera::v1::TokenizeResponse* resp) {
  if (auto s = CheckKey(ctx, keys_); !s.ok()) return s;
  if (!req->model().empty() && req->model() != pipeline_->model_name()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "model '" + req->model() + "' does not exist");
  }
  const std::vector<int32_t> ids = pipeline_->tokenizer().Encode(req->text(), req->add_special_tokens());
  for (int32_t id : ids) {
    resp->add_token_ids(id);
    resp->add_tokens(pipeline_->tokenizer().IdToToken(id).value_or(""));
  }
  resp->set_max_model_len(pipeline_->max_model_len());
  return grpc::Status::OK;
}

// ---- KServe v2 ----------------------------------------------------------------------------------------

namespace {

void FillInferResponse(const inference::ModelInferRequest& req, const std::string& model, const std::string& text,
                       bool final, inference::ModelInferResponse* out) {
  out->set_model_name(model);
  out->set_model_version(req.model_version().empty() ? "1" : req.model_version());
  out->set_id(req.id());
  auto* t = out->add_outputs();
  t->set_name("text_output");
  t->set_datatype("BYTES");
  t->add_shape(1);
  out->add_raw_output_contents(SerializeBytesElement(text));
  (*out->mutable_parameters())["triton_final_response"].set_bool_param(final);
}

}  // namespace

grpc::Status KServeService::ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* resp) {
  resp->set_live(true);
  return grpc::Status::OK;
}

grpc::Status KServeService::ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* resp) {
  resp->set_ready(pipeline_->Ready());
  return grpc::Status::OK;
}

grpc::Status KServeService::ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest* req,
                                       inference::ModelReadyResponse* resp) {
  if (req->name() != pipeline_->model_name()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "model '" + req->name() + "' is not served here");
  }
  resp->set_ready(pipeline_->Ready());
  return grpc::Status::OK;
}

grpc::Status KServeService::ServerMetadata(grpc::ServerContext*, const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* resp) {
  resp->set_name("tessera");
  resp->set_version(version_);
  resp->add_extensions("model_stream_infer");
  return grpc::Status::OK;
}

grpc::Status KServeService::ModelMetadata(grpc::ServerContext* ctx, const inference::ModelMetadataRequest* req,
                                          inference::ModelMetadataResponse* resp) {
  if (auto s = CheckKey(ctx, keys_); !s.ok()) return s;
  if (req->name() != pipeline_->model_name()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "model '" + req->name() + "' is not served here");
  }
  resp->set_name(pipeline_->model_name());
  resp->add_versions("1");
  resp->set_platform("tessera_llm");
  auto* in = resp->add_inputs();
  in->set_name("text_input");
  in->set_datatype("BYTES");
  in->add_shape(1);
  auto* out = resp->add_outputs();
  out->set_name("text_output");
  out->set_datatype("BYTES");
  out->add_shape(-1);
  return grpc::Status::OK;
}

grpc::Status KServeService::ModelInfer(grpc::ServerContext* ctx, const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* resp) {
  if (auto s = CheckKey(ctx, keys_); !s.ok()) return s;
  auto parsed = ParseKServeRequest(*req, pipeline_->model_name());
  if (!parsed.ok()) return ToGrpcStatus(parsed.status());
  parsed->text.deadline = DeadlineOf(ctx);
  auto gen = pipeline_->Submit(std::move(parsed->text));
  if (!gen.ok()) return ToGrpcStatus(gen.status());
  std::string text;
  for (;;) {
    auto d = (*gen)->Next([ctx] { return ctx->IsCancelled(); });
    if (!d.ok()) return ToGrpcStatus(d.status());
    if (!d->has_value()) break;
    text += (*d)->text;
  }
  FillInferResponse(*req, pipeline_->model_name(), text, true, resp);
  return grpc::Status::OK;
}

grpc::Status KServeService::ModelStreamInfer(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest>* stream) {
  if (auto s = CheckKey(ctx, keys_); !s.ok()) return s;
  inference::ModelInferRequest req;
  while (stream->Read(&req)) {
    inference::ModelStreamInferResponse out;
    auto send_error = [&](const absl::Status& s) {
      inference::ModelStreamInferResponse err;
      err.set_error_message(std::string(s.message()));
      err.mutable_infer_response()->set_id(req.id());
      return stream->Write(err);
    };
    auto parsed = ParseKServeRequest(req, pipeline_->model_name());
    if (!parsed.ok()) {
      if (!send_error(parsed.status())) break;
      continue;
    }
    parsed->text.deadline = DeadlineOf(ctx);
    const bool per_delta = parsed->stream;
    auto gen = pipeline_->Submit(std::move(parsed->text));
    if (!gen.ok()) {
      if (!send_error(gen.status())) break;
      continue;
    }
    std::string all;
    bool ok = true;
    for (;;) {
      auto d = (*gen)->Next([ctx] { return ctx->IsCancelled(); });
      if (!d.ok()) {
        ok = send_error(d.status());
        break;
      }
      if (!d->has_value()) {
        if (!per_delta) {
          inference::ModelStreamInferResponse r;
          FillInferResponse(req, pipeline_->model_name(), all, true, r.mutable_infer_response());
          ok = stream->Write(r);
        }
        break;
      }
      if (per_delta) {
        inference::ModelStreamInferResponse r;
        FillInferResponse(req, pipeline_->model_name(), (*d)->text, !(*d)->finish_reason.empty(),
                          r.mutable_infer_response());
        if (!stream->Write(r)) {
          ok = false;
          break;
        }
      } else {
        all += (*d)->text;
      }
    }
    if (!ok) break;
  }
  return grpc::Status::OK;
}

// ---- grpc.health.v1 -----------------------------------------------------------------------------------

namespace {
bool KnownService(const std::string& s) {
  return s.empty() || s == "tessera.v1.Inference" || s == "inference.GRPCInferenceService";
}
}  // namespace

grpc::Status HealthService::Check(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::health::v1::HealthCheckResponse* resp) {
  if (!KnownService(req->service())) return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
  resp->set_status(pipeline_->Ready() ? grpc::health::v1::HealthCheckResponse::SERVING
                                      : grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) {
  using R = grpc::health::v1::HealthCheckResponse;
  int last = -1;
  while (!ctx->IsCancelled()) {
    const int now = !KnownService(req->service()) ? R::SERVICE_UNKNOWN
                    : pipeline_->Ready()          ? R::SERVING
                                                  : R::NOT_SERVING;
    if (now != last) {
      R r;
      r.set_status(static_cast<R::ServingStatus>(now));
      if (!writer->Write(r)) break;
      last = now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return grpc::Status::OK;
}

}  // namespace tessera::server
