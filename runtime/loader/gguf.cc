#include "runtime/loader/gguf.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace tessera::loader {
namespace {

constexpr uint32_t kMaxDims = 4;     // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 8;  // deeper nesting is rejected rather than recursed into
constexpr uint64_t kDefaultAlignment = 32;

// Bytes of one numeric/bool element, 0 for string/array/unknown.
uint64_t ScalarSize(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      return 0;
  }
  return 0;
}

bool KnownValueType(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kFloat64); }

// Smallest encoding of one element of type t (for bounding counts before allocating).
uint64_t MinElementSize(GgufValueType t) {
  if (t == GgufValueType::kString) return 8;
  if (t == GgufValueType::kArray) return 12;
  return ScalarSize(t);
}

// Debian's Abseil has its own string_view type; StrCat needs this bridge.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

template <typename T>
T LoadLe(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // x86-64 and every target we build for are little-endian
  return v;
}

bool IsUnsigned(GgufValueType t) {
  return t == GgufValueType::kUint8 || t == GgufValueType::kUint16 || t == GgufValueType::kUint32 ||
         t == GgufValueType::kUint64 || t == GgufValueType::kBool;
}
bool IsSigned(GgufValueType t) {
  return t == GgufValueType::kInt8 || t == GgufValueType::kInt16 || t == GgufValueType::kInt32 ||
         t == GgufValueType::kInt64;
}
bool IsFloat(GgufValueType t) { return t == GgufValueType::kFloat32 || t == GgufValueType::kFloat64; }

// Decodes one numeric/bool element at p into the value's u / i / f fields.
void DecodeScalar(GgufValueType t, const uint8_t* p, GgufValue* v) {
  v->type = t;
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kBool:
      v->u = p[0];
      break;
    case GgufValueType::kInt8:
      v->i = static_cast<int8_t>(p[0]);
      break;
    case GgufValueType::kUint16:
      v->u = LoadLe<uint16_t>(p);
      break;
    case GgufValueType::kInt16:
      v->i = LoadLe<int16_t>(p);
      break;
    case GgufValueType::kUint32:
      v->u = LoadLe<uint32_t>(p);
      break;
    case GgufValueType::kInt32:
      v->i = LoadLe<int32_t>(p);
      break;
    case GgufValueType::kFloat32:
      v->f = LoadLe<float>(p);
      break;
    case GgufValueType::kUint64:
      v->u = LoadLe<uint64_t>(p);
      break;
    case GgufValueType::kInt64:
      v->i = LoadLe<int64_t>(p);
      break;
    case GgufValueType::kFloat64:
      v->f = LoadLe<double>(p);
      break;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      break;
  }
}

// Sequential reader over the file bytes; every read is bounds-checked and errors name the field.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& file) : data_(data), size_(size), file_(file) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  absl::Status Need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      return absl::InvalidArgumentError(absl::StrCat(file_, ": ", Sv(what), ": needs ", n, " bytes at offset ", pos_,
                                                     " but the file ends at ", size_, " (truncated?)"));
    }
    return absl::OkStatus();
  }
  template <typename T>
  absl::StatusOr<T> Read(std::string_view what) {
    TS_RETURN_IF_ERROR(Need(sizeof(T), what));
    T v = LoadLe<T>(data_ + pos_);
    pos_ += sizeof(T);
    return v;
  }
  absl::StatusOr<std::string_view> ReadString(std::string_view what) {
    TS_ASSIGN_OR_RETURN(uint64_t len, Read<uint64_t>(absl::StrCat(Sv(what), " (string length)")));
    if (len > remaining()) {
      return absl::InvalidArgumentError(absl::StrCat(file_, ": ", Sv(what), ": string length ", len, " at offset ",
                                                     pos_ - 8, " runs past the end of the file (", size_, " bytes)"));
    }
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }
  const uint8_t* Take(uint64_t n) {  // after Need(n)
    const uint8_t* p = data_ + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  absl::Status Error(std::string_view what, std::string_view msg) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ": ", Sv(what), ": ", Sv(msg)));
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& file_;
};

absl::StatusOr<GgufArray> ReadArray(Cursor& c, std::string_view what, int depth);

absl::StatusOr<GgufValue> ReadValue(Cursor& c, GgufValueType type, std::string_view what) {
  GgufValue v;
  v.type = type;
  if (type == GgufValueType::kString) {
    TS_ASSIGN_OR_RETURN(v.str, c.ReadString(what));
  } else if (type == GgufValueType::kArray) {
    TS_ASSIGN_OR_RETURN(GgufArray a, ReadArray(c, what, 0));
    v.array = std::make_shared<const GgufArray>(std::move(a));
  } else {
    const uint64_t n = ScalarSize(type);
    TS_RETURN_IF_ERROR(c.Need(n, what));
    DecodeScalar(type, c.Take(n), &v);
    if (type == GgufValueType::kBool && v.u > 1) {
      return c.Error(what, absl::StrCat("bool value ", v.u, " is neither 0 nor 1"));
    }
  }
  return v;
}

absl::StatusOr<GgufArray> ReadArray(Cursor& c, std::string_view what, int depth) {
  if (depth >= kMaxArrayNesting) {
    return c.Error(what, absl::StrCat("arrays nested deeper than ", kMaxArrayNesting, " levels"));
  }
  GgufArray a;
  TS_ASSIGN_OR_RETURN(uint32_t et, c.Read<uint32_t>(absl::StrCat(Sv(what), " (array element type)")));
  if (!KnownValueType(et)) return c.Error(what, absl::StrCat("unknown array element type ", et));
  a.elem_type = static_cast<GgufValueType>(et);
  TS_ASSIGN_OR_RETURN(a.size, c.Read<uint64_t>(absl::StrCat(Sv(what), " (array length)")));
  const uint64_t min_size = MinElementSize(a.elem_type);
  if (a.size > c.remaining() / min_size) {
    return c.Error(what,
                   absl::StrCat("array of ", a.size, " ", GgufValueTypeName(a.elem_type), " elements needs at least ",
                                min_size, " bytes each, but only ", c.remaining(), " bytes remain in the file"));
  }
  if (a.elem_type == GgufValueType::kString) {
    a.strings.reserve(static_cast<size_t>(a.size));
    for (uint64_t i = 0; i < a.size; ++i) {
      TS_ASSIGN_OR_RETURN(std::string_view s, c.ReadString(absl::StrCat(Sv(what), "[", i, "]")));
      a.strings.push_back(s);
    }
  } else if (a.elem_type == GgufValueType::kArray) {
    a.arrays.reserve(static_cast<size_t>(a.size));
    for (uint64_t i = 0; i < a.size; ++i) {
      TS_ASSIGN_OR_RETURN(GgufArray inner, ReadArray(c, absl::StrCat(Sv(what), "[", i, "]"), depth + 1));
      a.arrays.push_back(std::move(inner));
    }
  } else {
    const uint64_t n = a.size * min_size;  // cannot overflow: size <= remaining / min_size
    TS_RETURN_IF_ERROR(c.Need(n, what));
    a.raw = c.Take(n);
    if (a.elem_type == GgufValueType::kBool) {
      for (uint64_t i = 0; i < a.size; ++i) {
        if (a.raw[i] > 1) return c.Error(absl::StrCat(Sv(what), "[", i, "]"), "bool value is neither 0 nor 1");
      }
    }
  }
  return a;
}

}  // namespace

std::string GgufValueTypeName(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return absl::StrCat("type#", static_cast<uint32_t>(t));
}

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

int64_t GgufTensorInfo::rows() const {
  int64_t n = 1;
  for (size_t i = 1; i < dims.size(); ++i) n *= dims[i];
  return n;
}

int64_t GgufArrayInt(const GgufArray& a, uint64_t i) {
  GgufValue v;
  DecodeScalar(a.elem_type, a.raw + i * ScalarSize(a.elem_type), &v);
  if (IsUnsigned(a.elem_type)) return static_cast<int64_t>(v.u);
  if (IsFloat(a.elem_type)) return static_cast<int64_t>(v.f);
  return v.i;
}

uint64_t GgufArrayUint(const GgufArray& a, uint64_t i) {
  GgufValue v;
  DecodeScalar(a.elem_type, a.raw + i * ScalarSize(a.elem_type), &v);
  if (IsSigned(a.elem_type)) return static_cast<uint64_t>(v.i);
  return v.u;
}

double GgufArrayFloat(const GgufArray& a, uint64_t i) {
  GgufValue v;
  DecodeScalar(a.elem_type, a.raw + i * ScalarSize(a.elem_type), &v);
  if (IsFloat(a.elem_type)) return v.f;
  if (IsSigned(a.elem_type)) return static_cast<double>(v.i);
  return static_cast<double>(v.u);
}

// ---- Parsing -----------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Parse(const uint8_t* data, size_t size, std::string name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = std::move(name);
  TS_RETURN_IF_ERROR(f->ParseAll(data, size));
  return f;
}

absl::Status GgufFile::ParseAll(const uint8_t* data, size_t size) {
  Cursor c(data, size, name_);
  TS_RETURN_IF_ERROR(c.Need(4, "magic"));
  if (std::memcmp(data, "GGUF", 4) != 0) {
    return c.Error("magic", absl::StrCat("expected \"GGUF\", found bytes ", int{data[0]}, " ", int{data[1]}, " ",
                                         int{data[2]}, " ", int{data[3]}, " (not a GGUF file)"));
  }
  c.Take(4);
  TS_ASSIGN_OR_RETURN(version_, c.Read<uint32_t>("version"));
  if (version_ != 2 && version_ != 3) {
    if (version_ != 0 && (version_ & 0xffff) == 0) {
      return c.Error("version",
                     absl::StrCat("value ", version_, " looks byte-swapped: big-endian GGUF files are not supported"));
    }
    return c.Error("version", absl::StrCat("unsupported version ", version_, " (supported: 2, 3)"));
  }
  TS_ASSIGN_OR_RETURN(uint64_t tensor_count, c.Read<uint64_t>("tensor_count"));
  TS_ASSIGN_OR_RETURN(uint64_t kv_count, c.Read<uint64_t>("metadata_kv_count"));
  // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least
  // 8 + 4 + 4 + 8 bytes. Counts beyond what the file could hold are rejected before allocating.
  if (kv_count > c.remaining() / 13) {
    return c.Error("metadata_kv_count", absl::StrCat(kv_count, " entries cannot fit in the remaining ", c.remaining(),
                                                     " bytes of the file"));
  }
  if (tensor_count > c.remaining() / 24) {
    return c.Error("tensor_count", absl::StrCat(tensor_count, " tensor infos cannot fit in the remaining ",
                                                c.remaining(), " bytes of the file"));
  }

  for (uint64_t k = 0; k < kv_count; ++k) {
    const std::string entry = absl::StrCat("metadata entry ", k);
    TS_ASSIGN_OR_RETURN(std::string_view key, c.ReadString(absl::StrCat(entry, " key")));
    const std::string what = absl::StrCat("metadata '", Sv(key), "'");
    TS_ASSIGN_OR_RETURN(uint32_t type, c.Read<uint32_t>(absl::StrCat(Sv(what), " (value type)")));
    if (!KnownValueType(type)) return c.Error(what, absl::StrCat("unknown value type ", type));
    TS_ASSIGN_OR_RETURN(GgufValue v, ReadValue(c, static_cast<GgufValueType>(type), what));
    if (!metadata_.emplace(std::string(key), std::move(v)).second) {
      return c.Error(what, "duplicate key");
    }
  }

  if (const GgufValue* a = Find("general.alignment")) {
    if (a->type != GgufValueType::kUint32) {
      return c.Error("metadata 'general.alignment'",
                     absl::StrCat("expected uint32, found ", GgufValueTypeName(a->type)));
    }
    if (a->u == 0 || (a->u & (a->u - 1)) != 0) {
      return c.Error("metadata 'general.alignment'", absl::StrCat("value ", a->u, " is not a power of two"));
    }
    alignment_ = a->u;
  } else {
    alignment_ = kDefaultAlignment;
  }

  tensors_.reserve(static_cast<size_t>(tensor_count));
  for (uint64_t t = 0; t < tensor_count; ++t) {
    GgufTensorInfo info;
    TS_ASSIGN_OR_RETURN(std::string_view tname, c.ReadString(absl::StrCat("tensor info ", t, " name")));
    info.name = std::string(tname);
    const std::string what = absl::StrCat("tensor '", info.name, "'");
    TS_ASSIGN_OR_RETURN(uint32_t n_dims, c.Read<uint32_t>(absl::StrCat(Sv(what), " n_dims")));
    if (n_dims > kMaxDims) return c.Error(what, absl::StrCat("n_dims ", n_dims, " exceeds ", kMaxDims));
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      TS_ASSIGN_OR_RETURN(uint64_t dim, c.Read<uint64_t>(absl::StrCat(Sv(what), " dims[", d, "]")));
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return c.Error(what, absl::StrCat("dims[", d, "] = ", dim, " is out of range"));
      }
      const auto di = static_cast<int64_t>(dim);
      if (di != 0 && numel > std::numeric_limits<int64_t>::max() / di) {
        return c.Error(what, "element count overflows 64 bits");
      }
      numel *= di;
      info.dims.push_back(di);
    }
    TS_ASSIGN_OR_RETURN(uint32_t type, c.Read<uint32_t>(absl::StrCat(Sv(what), " type")));
    const GgmlTypeInfo* ti = FindGgmlType(type);
    if (ti == nullptr) return c.Error(what, absl::StrCat("unknown ggml tensor type ", type));
    info.type = ti->type;
    TS_ASSIGN_OR_RETURN(info.offset, c.Read<uint64_t>(absl::StrCat(Sv(what), " offset")));
    const int64_t ne0 = info.dims.empty() ? 1 : info.dims[0];
    if (ne0 % ti->block_size != 0) {
      return c.Error(what, absl::StrCat("row length ", ne0, " is not a multiple of the ", Sv(ti->name), " block size ",
                                        ti->block_size));
    }
    const int64_t blocks = numel / ti->block_size;
    if (blocks > std::numeric_limits<int64_t>::max() / ti->type_size) {
      return c.Error(what, "byte size overflows 64 bits");
    }
    info.nbytes = static_cast<uint64_t>(blocks * ti->type_size);
    if (info.offset % alignment_ != 0) {
      return c.Error(what,
                     absl::StrCat("data offset ", info.offset, " is not a multiple of the alignment ", alignment_));
    }
    if (!tensor_index_.emplace(info.name, tensors_.size()).second) return c.Error(what, "duplicate tensor name");
    tensors_.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment (or at the end of the file when
  // there is nothing after the tensor infos).
  const uint64_t header_end = c.pos();
  uint64_t start = (header_end + alignment_ - 1) / alignment_ * alignment_;
  if (start < header_end) return c.Error("data section", "offset overflows");  // alignment near 2^32 on tiny files
  if (start > size) {
    if (!tensors_.empty()) {
      return c.Error("data section", absl::StrCat("starts at ", start, " (header end ", header_end, " aligned to ",
                                                  alignment_, ") past the end of the file (", size, " bytes)"));
    }
    start = size;
  }
  data_offset_ = start;
  const uint64_t data_size = size - start;

  std::vector<std::pair<uint64_t, size_t>> order;  // (offset, index)
  order.reserve(tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) {
    GgufTensorInfo& info = tensors_[i];
    if (info.offset > data_size || info.nbytes > data_size - info.offset) {
      return c.Error(
          absl::StrCat("tensor '", info.name, "'"),
          absl::StrCat("data [", info.offset, ", +", info.nbytes, ") runs past the end of the data section (",
                       data_size, " bytes from file offset ", start, ")"));
    }
    info.data = data + start + info.offset;
    order.emplace_back(info.offset, i);
  }
  std::sort(order.begin(), order.end());
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& prev = tensors_[order[k - 1].second];
    const GgufTensorInfo& cur = tensors_[order[k].second];
    if (prev.nbytes > 0 && cur.nbytes > 0 && prev.offset + prev.nbytes > cur.offset) {
      return c.Error(absl::StrCat("tensor '", cur.name, "'"),
                     absl::StrCat("data at offset ", cur.offset, " overlaps tensor '", prev.name, "' [", prev.offset,
                                  ", ", prev.offset + prev.nbytes, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = path;
  TS_ASSIGN_OR_RETURN(f->file_, MappedFile::Open(path));
  TS_RETURN_IF_ERROR(f->ParseAll(f->file_.data(), f->file_.size()));
  return f;
}

// ---- Accessors ---------------------------------------------------------------------------------

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

absl::Status GgufFile::Mismatch(std::string_view key, const GgufValue& v, std::string_view wanted) const {
  std::string found = GgufValueTypeName(v.type);
  if (v.type == GgufValueType::kArray && v.array)
    found = absl::StrCat("array of ", GgufValueTypeName(v.array->elem_type));
  return absl::InvalidArgumentError(
      absl::StrCat(name_, ": metadata '", Sv(key), "': expected ", Sv(wanted), ", found ", found));
}

namespace {
absl::Status Missing(const std::string& file, std::string_view key) {
  return absl::NotFoundError(absl::StrCat(file, ": metadata '", Sv(key), "' is missing"));
}
}  // namespace

absl::StatusOr<uint64_t> GgufFile::GetUint(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(name_, key);
  if (IsUnsigned(v->type) && v->type != GgufValueType::kBool) return v->u;
  if (IsSigned(v->type)) {
    if (v->i < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ": metadata '", Sv(key), "': value ", v->i, " is negative"));
    }
    return static_cast<uint64_t>(v->i);
  }
  return Mismatch(key, *v, "an unsigned integer");
}

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(name_, key);
  if (IsSigned(v->type)) return v->i;
  if (IsUnsigned(v->type) && v->type != GgufValueType::kBool) {
    if (v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(
          absl::StrCat(name_, ": metadata '", Sv(key), "': value ", v->u, " is out of range"));
    }
    return static_cast<int64_t>(v->u);
  }
  return Mismatch(key, *v, "an integer");
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(name_, key);
  if (IsFloat(v->type)) return v->f;
  if (IsSigned(v->type)) return static_cast<double>(v->i);
  if (IsUnsigned(v->type) && v->type != GgufValueType::kBool) return static_cast<double>(v->u);
  return Mismatch(key, *v, "a number");
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(name_, key);
  if (v->type == GgufValueType::kBool) return v->u != 0;
  return Mismatch(key, *v, "bool");
}

absl::StatusOr<std::string_view> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(name_, key);
  if (v->type == GgufValueType::kString) return v->str;
  return Mismatch(key, *v, "string");
}

absl::StatusOr<const GgufArray*> GgufFile::GetArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(name_, key);
  if (v->type == GgufValueType::kArray && v->array) return v->array.get();
  return Mismatch(key, *v, "array");
}

absl::StatusOr<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  TS_ASSIGN_OR_RETURN(const GgufArray* a, GetArray(key));
  if (a->elem_type != GgufValueType::kString) return Mismatch(key, *Find(key), "array of string");
  return a->strings;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  TS_ASSIGN_OR_RETURN(const GgufArray* a, GetArray(key));
  if (!IsSigned(a->elem_type) && !IsUnsigned(a->elem_type)) return Mismatch(key, *Find(key), "array of integers");
  std::vector<int64_t> out(static_cast<size_t>(a->size));
  for (uint64_t i = 0; i < a->size; ++i) {
    if (a->elem_type == GgufValueType::kUint64 && GgufArrayUint(*a, i) > static_cast<uint64_t>(INT64_MAX)) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ": metadata '", Sv(key), "'[", i, "] is out of range"));
    }
    out[i] = GgufArrayInt(*a, i);
  }
  return out;
}

absl::StatusOr<std::vector<double>> GgufFile::GetFloatArray(std::string_view key) const {
  TS_ASSIGN_OR_RETURN(const GgufArray* a, GetArray(key));
  if (!IsFloat(a->elem_type) && !IsSigned(a->elem_type) &&
      !(IsUnsigned(a->elem_type) && a->elem_type != GgufValueType::kBool)) {
    return Mismatch(key, *Find(key), "array of numbers");
  }
  std::vector<double> out(static_cast<size_t>(a->size));
  for (uint64_t i = 0; i < a->size; ++i) out[i] = GgufArrayFloat(*a, i);
  return out;
}

absl::StatusOr<uint64_t> GgufFile::GetUintOr(std::string_view key, uint64_t fallback) const {
  if (!Has(key)) return fallback;
  return GetUint(key);
}

absl::StatusOr<double> GgufFile::GetFloatOr(std::string_view key, double fallback) const {
  if (!Has(key)) return fallback;
  return GetFloat(key);
}

absl::StatusOr<bool> GgufFile::GetBoolOr(std::string_view key, bool fallback) const {
  if (!Has(key)) return fallback;
  return GetBool(key);
}

}  // namespace tessera::loader

namespace tessera::loader {

absl::StatusOr<std::optional<std::string>> FindGgufModelFile(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec) return std::optional<std::string>();
  if (fs::is_regular_file(st)) {
    if (fs::path(path).extension() == ".gguf") return std::optional<std::string>(path);
    return std::optional<std::string>();
  }
  if (!fs::is_directory(st) || fs::exists(fs::path(path) / "config.json", ec)) return std::optional<std::string>();
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    if (entry.path().extension() == ".gguf" && entry.is_regular_file(ec)) found.push_back(entry.path().string());
  }
  if (found.empty()) return std::optional<std::string>();
  if (found.size() > 1) {
    std::sort(found.begin(), found.end());
    std::string list;
    for (const std::string& f : found) absl::StrAppend(&list, list.empty() ? "" : ", ", f);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": holds several .gguf files and no config.json; pass one of them: ", list));
  }
  return std::optional<std::string>(found[0]);
}

}  // namespace tessera::loader
