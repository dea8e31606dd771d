// KServe v2 ModelInferRequest → TextRequest, with the LLM convention Triton's LLM backends use:
// a BYTES input `text_input` (batch 1), sampling settings as request parameters (max_tokens,
// temperature, top_p, top_k, min_p, seed, stop, ignore_eos, penalties, stream), as scalar input
// tensors of those names, or as a JSON `sampling_parameters` BYTES input. BYTES elements are
// [u32 little-endian length][bytes]. Pure message validation: every malformed request is an
// INVALID_ARGUMENT naming the input or parameter (fuzzed by tests/fuzz/fuzz_kserve_request.cc).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "kserve/grpc_predict_v2.pb.h"
#include "server/api/types.h"

namespace tessera::server {

struct KServeRequest {
  TextRequest text;
  bool stream = true;  // in ModelStreamInfer: one response per delta, else one in all
};

// NOT_FOUND when model_name names another model than `served_model`.
absl::StatusOr<KServeRequest> ParseKServeRequest(const inference::ModelInferRequest& req,
                                                 const std::string& served_model);

// One BYTES tensor element in the raw-contents encoding.
std::string SerializeBytesElement(const std::string& s);

}  // namespace tessera::server
