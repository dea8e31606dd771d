// Zero-copy access to Hugging Face checkpoints in the safetensors format.
//
//   TS_ASSIGN_OR_RETURN(auto ckpt, Checkpoint::Open("/models/llama"));   // one file or sharded
//   TS_ASSIGN_OR_RETURN(const TensorView* w,
//                       ckpt->Get("model.layers.0.self_attn.q_proj.weight", {4096, 4096}));
//   // w->data points into the mmapped file; w->dtype is kF32, kBF16 or kF16.
//   TS_RETURN_IF_ERROR(ckpt->CheckAllUsed());  // names any tensor the model never asked for
//
// Format: 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}
// then the byte buffer; offsets are relative to the end of the header. Every malformed input is a
// Status naming the file and the offending tensor or field; nothing here aborts on bad input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/dtype.h"
#include "runtime/loader/mapped_file.h"

namespace tessera::loader {

// Every dtype the format defines; only kF32/kBF16/kF16 can be used as model weights.
enum class StDType { kBool, kU8, kI8, kI16, kU16, kI32, kU32, kI64, kU64, kF16, kBF16, kF32, kF64, kF8E4M3, kF8E5M2 };

int64_t StDTypeSize(StDType t);
std::string_view StDTypeName(StDType t);

struct TensorView {
  std::string name;
  StDType dtype = StDType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // into the mmapped file, aligned as the file happens to be
  size_t nbytes = 0;
  std::string file;  // the file it lives in (for messages)

  int64_t numel() const;
  // kernels::DType for f32/bf16/f16; an error for any other dtype.
  absl::StatusOr<kernels::DType> WeightDType() const;
};

// The parsed header of one file: tensors sorted by name, plus string metadata. `file_size` is the
// size of the whole file; offsets are checked against it (in range, not overlapping, dtype×shape ==
// byte length). `file_name` only goes into error messages.
struct SafetensorsHeader {
  std::map<std::string, TensorView> tensors;  // data = nullptr, nbytes set; offset in data_offset
  std::map<std::string, std::string> metadata;
  std::map<std::string, size_t> data_offset;  // absolute offset in the file of each tensor
};
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(const uint8_t* file_data, size_t file_size,
                                                         std::string_view file_name);

// One mmapped .safetensors file.
class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile() = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  MappedFile file_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A model directory: model.safetensors, or model.safetensors.index.json ({"weight_map": {name: file}})
// with its shards. Tracks which tensors the model has asked for.
class Checkpoint {
 public:
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& dir);

  bool Has(const std::string& name) const;
  // The tensor, checked to exist, to be a weight dtype and (when `shape` is non-empty) to have
  // exactly that shape. Marks it used.
  absl::StatusOr<const TensorView*> Get(const std::string& name, const std::vector<int64_t>& shape = {});
  // OK when every tensor in the checkpoint was asked for; otherwise names the unexpected ones.
  // Names matching any of `ignore_suffixes` (e.g. "rotary_emb.inv_freq") are not counted.
  absl::Status CheckAllUsed(const std::vector<std::string>& ignore_suffixes = {}) const;
  std::vector<std::string> Names() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
  std::map<std::string, bool> used_;
};

}  // namespace tessera::loader
