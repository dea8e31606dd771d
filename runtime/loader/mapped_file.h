// A read-only memory mapping of a whole file, unmapped when destroyed. The model loaders keep
// weights as views into it (zero copy).
//
//   TS_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open("/models/m.gguf"));
//   const uint8_t* bytes = file.data();   // file.size() bytes; never null (empty files too)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace tessera::loader {

class MappedFile {
 public:
  // NOT_FOUND when the path does not exist; INVALID_ARGUMENT when it cannot be opened or is not a
  // regular file; INTERNAL when mmap fails. Every message starts with the path.
  static absl::StatusOr<MappedFile> Open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const;
  size_t size() const { return size_; }

 private:
  void* map_ = nullptr;
  size_t size_ = 0;
};

// Gives back the resident pages wholly inside [p, p + bytes) of a read-only file mapping (a hint:
// reading them again later faults them back in from the file). For weights that were copied into
// another layout and are no longer read where they were mapped.
void DropResidentPages(const void* p, size_t bytes);

}  // namespace tessera::loader
