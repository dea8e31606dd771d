// Feeds arbitrary bytes to the GGUF parser as if they were a whole file. Any input must yield a
// Status or a file whose every tensor lies inside the input and whose metadata can be read back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "runtime/loader/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = tessera::loader::GgufFile::Parse(data, size, "fuzz.gguf");
  if (!file.ok()) return 0;
  const auto* begin = data;
  const auto* end = data + size;
  for (const auto& t : (*file)->tensors()) {
    if (t.nbytes > 0 && (t.data < begin || t.data > end || t.nbytes > static_cast<size_t>(end - t.data))) std::abort();
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < t.nbytes; ++i) sink = sink ^ t.data[i];
    (void)sink;
  }
  for (const auto& [key, value] : (*file)->metadata()) {
    (void)(*file)->GetString(key);
    (void)(*file)->GetUint(key);
    (void)(*file)->GetFloatArray(key);
    (void)(*file)->GetIntArray(key);
    if (auto strings = (*file)->GetStringArray(key); strings.ok()) {
      for (std::string_view s : *strings) {
        if (s.size() > 0 && (reinterpret_cast<const uint8_t*>(s.data()) < begin ||
                             reinterpret_cast<const uint8_t*>(s.data()) + s.size() > end)) {
          std::abort();
        }
      }
    }
  }
  return 0;
}
