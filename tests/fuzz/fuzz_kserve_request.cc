// KServe v2 ModelInferRequest bytes → protobuf parse → request validation. Must never crash; every
// rejection is an error status.
#include <cstddef>
#include <cstdint>

#include "server/grpc/kserve_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inference::ModelInferRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto parsed = tessera::server::ParseKServeRequest(req, "tiny");
  if (parsed.ok() && !parsed->text.prompt_text.has_value()) __builtin_trap();  // success needs a prompt
  return 0;
}
