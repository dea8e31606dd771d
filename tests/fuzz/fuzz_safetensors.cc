// Feeds arbitrary bytes to the safetensors header parser as if they were a whole file. Any input
// must yield a Status or a header whose every tensor lies inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "runtime/loader/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto header = tessera::loader::ParseSafetensorsHeader(data, size, "fuzz.safetensors");
  if (!header.ok()) return 0;
  for (const auto& [name, view] : header->tensors) {
    const size_t offset = header->data_offset.at(name);
    if (offset > size || view.nbytes > size - offset) std::abort();
    if (static_cast<size_t>(view.numel() * tessera::loader::StDTypeSize(view.dtype)) != view.nbytes) std::abort();
    // Touch the bytes so ASan sees any out-of-range view.
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < view.nbytes; ++i) sink = sink ^ data[offset + i];
    (void)sink;
  }
  return 0;
}
