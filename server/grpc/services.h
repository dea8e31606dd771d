// The public gRPC services of tesserad, all over the shared Pipeline:
//   tessera.v1.Inference            Generate / Chat (server streaming), ListModels, Tokenize
//   inference.GRPCInferenceService  KServe v2 with the LLM convention (text_input → text_output)
//   grpc.health.v1.Health           "" and the service names; NOT_SERVING until ready and while
//                                   draining
// API keys are checked on Inference and GRPCInferenceService calls (`authorization` metadata);
// health and reflection stay open.
#pragma once

#include "grpc/health/v1/health.grpc.pb.h"
#include "kserve/grpc_predict_v2.grpc.pb.h"
#include "server/api/auth.h"
#include "server/pipeline/pipeline.h"
#include "tessera/v1/inference.grpc.pb.h"

namespace tessera::server {

grpc::Status ToGrpcStatus(const absl::Status& s);

class InferenceService final : public tessera::v1::Inference::Service {
 public:
  InferenceService(Pipeline* pipeline, const ApiKeys* keys) : pipeline_(pipeline), keys_(keys) {}
  grpc::Status Generate(grpc::ServerContext* ctx, const tessera::v1::GenerateRequest* req,
                        grpc::ServerWriter<tessera::v1::GenerateResponse>* writer) override;
  grpc::Status Chat(grpc::ServerContext* ctx, const tessera::v1::ChatRequest* req,
                    grpc::ServerWriter<tessera::v1::GenerateResponse>* writer) override;
  grpc::Status ListModels(grpc::ServerContext* ctx, const tessera::v1::ListModelsRequest* req,
                          tessera::v1::ListModelsResponse* resp) override;
  grpc::Status Tokenize(grpc::ServerContext* ctx, const tessera::v1::TokenizeRequest* req,
                        tessera::v1::TokenizeResponse* resp) override;

 private:
  grpc::Status Run(grpc::ServerContext* ctx, TextRequest req, grpc::ServerWriter<tessera::v1::GenerateResponse>* w);
  Pipeline* pipeline_;
  const ApiKeys* keys_;
};

class KServeService final : public inference::GRPCInferenceService::Service {
 public:
  KServeService(Pipeline* pipeline, const ApiKeys* keys, std::string version)
      : pipeline_(pipeline), keys_(keys), version_(std::move(version)) {}
  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse*) override;
  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse*) override;
  grpc::Status ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest*,
                          inference::ModelReadyResponse*) override;
  grpc::Status ServerMetadata(grpc::ServerContext*, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse*) override;
  grpc::Status ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest*,
                             inference::ModelMetadataResponse*) override;
  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest*,
                          inference::ModelInferResponse*) override;
  grpc::Status ModelStreamInfer(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest>*) override;

 private:
  Pipeline* pipeline_;
  const ApiKeys* keys_;
  std::string version_;
};

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  explicit HealthService(Pipeline* pipeline) : pipeline_(pipeline) {}
  grpc::Status Check(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest*,
                     grpc::health::v1::HealthCheckResponse*) override;
  grpc::Status Watch(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest*,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>*) override;

 private:
  Pipeline* pipeline_;
};

}  // namespace tessera::server
