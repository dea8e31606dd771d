// Reader for GGUF files (llama.cpp's single-file model format), versions 2 and 3.
//
//   TS_ASSIGN_OR_RETURN(auto gguf, GgufFile::Open("/models/smollm2.Q4_1.gguf"));
//   TS_ASSIGN_OR_RETURN(uint64_t layers, gguf->GetUint("llama.block_count"));
//   TS_ASSIGN_OR_RETURN(std::vector<std::string_view> tokens, gguf->GetStringArray("tokenizer.ggml.tokens"));
//   const GgufTensorInfo* t = gguf->FindTensor("blk.0.attn_q.weight");
//   // t->dims = {576, 576} (ne0 = row length first); t->type = GgmlType::kQ4_1; t->data → mmapped bytes
//
// Layout (all little-endian):
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count × { string key | u32 value_type | value }
//   tensor_count × { string name | u32 n_dims | u64 dims[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | data section
// A string is u64 length + bytes (no terminator); an array is u32 element type + u64 count +
// elements, and elements may themselves be arrays. Tensor offsets are relative to the data section
// and must be multiples of the alignment.
//
// The whole file is mmapped; strings and numeric arrays are views into the mapping (they live as long
// as the GgufFile). Every malformed input is an INVALID_ARGUMENT naming the file and the field
// (truncated header, bad magic or version, counts or string lengths past the end of the file, unknown
// value or tensor types, tensor data past the end, misaligned or overlapping); nothing aborts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/loader/gguf_quants.h"
#include "runtime/loader/mapped_file.h"

namespace tessera::loader {

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint32", "string", "array", ... ("type#<id>" for an unknown id).
std::string GgufValueTypeName(GgufValueType t);

// An array value. Numeric and bool elements stay in the file (`raw`, little-endian, packed); string
// elements are views into the file; nested arrays are parsed recursively.
struct GgufArray {
  GgufValueType elem_type = GgufValueType::kUint8;
  uint64_t size = 0;
  const uint8_t* raw = nullptr;           // numeric/bool elements: size × element size bytes
  std::vector<std::string_view> strings;  // elem_type == kString
  std::vector<GgufArray> arrays;          // elem_type == kArray
};

struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  uint64_t u = 0;                          // unsigned integers and bool (0/1)
  int64_t i = 0;                           // signed integers
  double f = 0;                            // float32 / float64
  std::string_view str;                    // kString
  std::shared_ptr<const GgufArray> array;  // kArray
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the row length (contiguous), e.g. {in, out}
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // relative to the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the file

  int64_t numel() const;
  int64_t rows() const;  // product of dims[1..]
};

class GgufFile {
 public:
  // mmaps and parses `path`.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses `size` bytes at `data` as a whole file; the caller keeps them alive and unchanged for the
  // lifetime of the result. `name` labels error messages.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Parse(const uint8_t* data, size_t size, std::string name);
  ~GgufFile() = default;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute offset of the data section
  const std::map<std::string, GgufValue, std::less<>>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }  // in file order

  bool Has(std::string_view key) const { return metadata_.find(key) != metadata_.end(); }
  // nullptr when absent.
  const GgufValue* Find(std::string_view key) const;
  const GgufTensorInfo* FindTensor(std::string_view name) const;

  // Typed accessors: NOT_FOUND when the key is absent, INVALID_ARGUMENT when it has another type
  // (or an integer does not fit). Any integer type converts to GetUint/GetInt when the value fits;
  // GetFloat also accepts integers.
  absl::StatusOr<uint64_t> GetUint(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  absl::StatusOr<std::string_view> GetString(std::string_view key) const;
  absl::StatusOr<const GgufArray*> GetArray(std::string_view key) const;
  absl::StatusOr<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;   // any integer/bool elements
  absl::StatusOr<std::vector<double>> GetFloatArray(std::string_view key) const;  // float or integer elements

  // The same, with `fallback` when the key is absent (a present key of the wrong type is still an error).
  absl::StatusOr<uint64_t> GetUintOr(std::string_view key, uint64_t fallback) const;
  absl::StatusOr<double> GetFloatOr(std::string_view key, double fallback) const;
  absl::StatusOr<bool> GetBoolOr(std::string_view key, bool fallback) const;

 private:
  GgufFile() = default;
  absl::Status ParseAll(const uint8_t* data, size_t size);
  absl::Status Mismatch(std::string_view key, const GgufValue& v, std::string_view wanted) const;

  std::string name_;
  MappedFile file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue, std::less<>> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Element i of a numeric array as int64 / double (no range checks on i; callers iterate < size).
// Unsigned 64-bit values above INT64_MAX are returned wrapped; use GgufArrayUint for them.
int64_t GgufArrayInt(const GgufArray& a, uint64_t i);
uint64_t GgufArrayUint(const GgufArray& a, uint64_t i);
double GgufArrayFloat(const GgufArray& a, uint64_t i);

}  // namespace tessera::loader

namespace tessera::loader {

// Where a model path points to a GGUF file: `path` itself when it is a regular file ending in
// ".gguf", or the single *.gguf file of a directory that has no config.json. nullopt for anything
// else (a Hugging Face directory, or a path that does not exist: the caller reports that). A
// directory without config.json holding several .gguf files is INVALID_ARGUMENT listing them.
absl::StatusOr<std::optional<std::string>> FindGgufModelFile(const std::string& path);

}  // namespace tessera::loader
