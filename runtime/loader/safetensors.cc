#include "runtime/loader/safetensors.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "runtime/base/status_macros.h"
#include "runtime/loader/hf_config.h"

namespace tessera::loader {
namespace {

using Json = nlohmann::json;

// The header of a real checkpoint is a few MB at most; anything larger is a corrupt length field.
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

struct DTypeInfo {
  StDType type;
  const char* name;  // as spelled in the "dtype" field
  int64_t size;      // bytes per element
};

constexpr std::array<DTypeInfo, 15> kDTypes = {{
    {StDType::kBool, "BOOL", 1},
    {StDType::kU8, "U8", 1},
    {StDType::kI8, "I8", 1},
    {StDType::kI16, "I16", 2},
    {StDType::kU16, "U16", 2},
    {StDType::kI32, "I32", 4},
    {StDType::kU32, "U32", 4},
    {StDType::kI64, "I64", 8},
    {StDType::kU64, "U64", 8},
    {StDType::kF16, "F16", 2},
    {StDType::kBF16, "BF16", 2},
    {StDType::kF32, "F32", 4},
    {StDType::kF64, "F64", 8},
    {StDType::kF8E4M3, "F8_E4M3", 1},
    {StDType::kF8E5M2, "F8_E5M2", 1},
}};

const DTypeInfo* FindDType(StDType t) {
  for (const DTypeInfo& d : kDTypes) {
    if (d.type == t) return &d;
  }
  return nullptr;
}

std::optional<StDType> ParseDTypeName(absl::string_view name) {
  for (const DTypeInfo& d : kDTypes) {
    if (d.name == name) return d.type;
  }
  return std::nullopt;
}

// absl here predates its use of std::string_view, so absl::StrCat needs the conversion.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Error prefix for one tensor of one file: "model.safetensors: tensor 'x.weight': ".
std::string TensorPrefix(absl::string_view file, absl::string_view tensor) {
  return absl::StrCat(file, ": tensor '", tensor, "': ");
}

// A JSON integer in [0, INT64_MAX], or nullopt for anything else (negative, float, non-number).
std::optional<uint64_t> AsNonNegativeInt(const Json& j) {
  if (j.is_number_unsigned()) {
    uint64_t v = j.get<uint64_t>();
    if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return v;
    return std::nullopt;
  }
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if (v >= 0) return static_cast<uint64_t>(v);
  }
  return std::nullopt;
}

// Parses the header JSON, rejecting duplicated top-level keys (which a plain parse would silently
// collapse to the last one).
absl::StatusOr<Json> ParseHeaderJson(const char* begin, const char* end, absl::string_view file_name) {
  std::set<std::string> seen;
  std::string duplicate;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key && parsed.is_string()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  Json j = Json::parse(begin, end, callback, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(file_name, ": header is not valid JSON"));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": header is a JSON ", j.type_name(), ", not an object"));
  }
  if (!duplicate.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": tensor '", duplicate, "' is listed twice"));
  }
  return j;
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const Json& j, absl::string_view file_name) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ": __metadata__ must be an object of strings, got ", j.type_name()));
  }
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file_name, ": __metadata__ '", key, "' must be a string, got ", value.type_name()));
    }
    out[key] = value.get<std::string>();
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> ParseShape(const Json& j, const std::string& prefix) {
  if (!j.is_array())
    return absl::InvalidArgumentError(absl::StrCat(prefix, "shape must be an array, got ", j.type_name()));
  std::vector<int64_t> shape;
  shape.reserve(j.size());
  for (const Json& dim : j) {
    std::optional<uint64_t> d = AsNonNegativeInt(dim);
    if (!d) {
      return absl::InvalidArgumentError(absl::StrCat(prefix, "shape dimension ",
                                                     dim.is_number() ? dim.dump() : std::string(dim.type_name()),
                                                     " is not a non-negative integer"));
    }
    shape.push_back(static_cast<int64_t>(*d));
  }
  return shape;
}

// Bytes needed by `shape` elements of `elem_size` bytes, or nullopt on int64 overflow.
std::optional<int64_t> ByteSize(const std::vector<int64_t>& shape, int64_t elem_size) {
  int64_t n = elem_size;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  }
  return n;
}

struct Offsets {
  uint64_t begin = 0;
  uint64_t end = 0;
};

absl::StatusOr<Offsets> ParseOffsets(const Json& j, const std::string& prefix) {
  if (!j.is_array() || j.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "data_offsets must be an array [begin, end]"));
  }
  std::optional<uint64_t> begin = AsNonNegativeInt(j[0]);
  std::optional<uint64_t> end = AsNonNegativeInt(j[1]);
  if (!begin || !end) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "data_offsets must hold two non-negative integers"));
  }
  if (*begin > *end) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "data_offsets [", *begin, ", ", *end, "] end before they begin"));
  }
  return Offsets{*begin, *end};
}

// One entry of the header: {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, with the
// offsets relative to the start of the data section of `data_size` bytes.
absl::StatusOr<std::pair<TensorView, Offsets>> ParseTensorEntry(const std::string& name, const Json& j,
                                                                uint64_t data_size, absl::string_view file_name) {
  const std::string prefix = TensorPrefix(file_name, name);
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(file_name, ": a tensor has an empty name"));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "entry must be an object, got ", j.type_name()));
  }
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!j.contains(field)) return absl::InvalidArgumentError(absl::StrCat(prefix, "missing field '", field, "'"));
  }
  const Json& dtype_json = j["dtype"];
  if (!dtype_json.is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "dtype must be a string, got ", dtype_json.type_name()));
  }
  const std::string& dtype_name = dtype_json.get_ref<const std::string&>();
  std::optional<StDType> dtype = ParseDTypeName(dtype_name);
  if (!dtype) return absl::InvalidArgumentError(absl::StrCat(prefix, "unknown dtype '", dtype_name, "'"));

  TensorView t;
  t.name = name;
  t.dtype = *dtype;
  t.file = std::string(file_name);
  TS_ASSIGN_OR_RETURN(t.shape, ParseShape(j["shape"], prefix));
  TS_ASSIGN_OR_RETURN(Offsets off, ParseOffsets(j["data_offsets"], prefix));

  std::optional<int64_t> need = ByteSize(t.shape, StDTypeSize(t.dtype));
  if (!need) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, dtype_name, " ", ShapeString(t.shape), " overflows a 64-bit byte count"));
  }
  const uint64_t have = off.end - off.begin;
  if (have != static_cast<uint64_t>(*need)) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "data_offsets [", off.begin, ", ", off.end, "] hold ", have,
                                                   " bytes but ", dtype_name, " ", ShapeString(t.shape), " needs ",
                                                   *need));
  }
  if (off.end > data_size) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "data_offsets [", off.begin, ", ", off.end,
                                                   "] run past the end of the data section (", data_size, " bytes)"));
  }
  t.nbytes = static_cast<size_t>(have);
  return std::make_pair(std::move(t), off);
}

// Tensors may leave gaps but must not share bytes; empty tensors occupy nothing.
absl::Status CheckNoOverlap(std::vector<std::pair<Offsets, std::string>> ranges, absl::string_view file_name) {
  std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.begin, a.first.end, a.second) < std::tie(b.first.begin, b.first.end, b.second);
  });
  const std::pair<Offsets, std::string>* prev = nullptr;
  for (const auto& r : ranges) {
    if (r.first.begin == r.first.end) continue;
    if (prev != nullptr && r.first.begin < prev->first.end) {
      return absl::InvalidArgumentError(absl::StrCat(file_name, ": tensor '", r.second, "' (bytes [", r.first.begin,
                                                     ", ", r.first.end, "]) overlaps tensor '", prev->second,
                                                     "' (bytes [", prev->first.begin, ", ", prev->first.end, "])"));
    }
    prev = &r;
  }
  return absl::OkStatus();
}

}  // namespace

int64_t StDTypeSize(StDType t) {
  const DTypeInfo* d = FindDType(t);
  return d != nullptr ? d->size : 0;
}

std::string_view StDTypeName(StDType t) {
  const DTypeInfo* d = FindDType(t);
  return d != nullptr ? d->name : "?";
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<kernels::DType> TensorView::WeightDType() const {
  switch (dtype) {
    case StDType::kF32:
      return kernels::DType::kF32;
    case StDType::kBF16:
      return kernels::DType::kBF16;
    case StDType::kF16:
      return kernels::DType::kF16;
    default:
      return absl::InvalidArgumentError(absl::StrCat(TensorPrefix(file, name), "dtype ", AbslView(StDTypeName(dtype)),
                                                     " cannot be used as a weight (need F32, BF16 or F16)"));
  }
}

// Layout: [u64 little-endian N][N bytes of JSON][data section]. Every offset in the JSON is relative
// to the start of the data section, i.e. absolute offset = 8 + N + begin.
absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(const uint8_t* file_data, size_t file_size,
                                                         std::string_view file_name_std) {
  const absl::string_view file_name = AbslView(file_name_std);
  if (file_size < 8 || file_data == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ": file is ", file_size, " bytes, too short for the 8-byte header length"));
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file_data[i];
  const uint64_t after_len = file_size - 8;
  if (header_len > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_name, ": header length ", header_len, " is absurd (limit ", kMaxHeaderBytes, " bytes)"));
  }
  if (header_len > after_len) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": header length ", header_len,
                                                   " runs past the end of the file (", file_size, " bytes)"));
  }
  const char* json_begin = reinterpret_cast<const char*>(file_data + 8);
  TS_ASSIGN_OR_RETURN(Json root, ParseHeaderJson(json_begin, json_begin + header_len, file_name));

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;
  SafetensorsHeader header;
  std::vector<std::pair<Offsets, std::string>> ranges;
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      TS_ASSIGN_OR_RETURN(header.metadata, ParseMetadata(entry, file_name));
      continue;
    }
    TS_ASSIGN_OR_RETURN(auto parsed, ParseTensorEntry(name, entry, data_size, file_name));
    ranges.emplace_back(parsed.second, name);
    header.data_offset[name] = static_cast<size_t>(data_start + parsed.second.begin);
    header.tensors.emplace(name, std::move(parsed.first));
  }
  TS_RETURN_IF_ERROR(CheckNoOverlap(std::move(ranges), file_name));
  return header;
}

// ---- SafetensorsFile ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  TS_ASSIGN_OR_RETURN(file->file_, MappedFile::Open(path));
  const uint8_t* bytes = file->file_.data();
  TS_ASSIGN_OR_RETURN(SafetensorsHeader header, ParseSafetensorsHeader(bytes, file->file_.size(), path));
  for (auto& [name, view] : header.tensors) {
    view.data = bytes + header.data_offset.at(name);
  }
  file->tensors_ = std::move(header.tensors);
  file->metadata_ = std::move(header.metadata);
  return file;
}

// ---- Checkpoint --------------------------------------------------------------------------------

namespace {

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";

// Shard names come from the index; keep them inside the model directory.
bool IsSafeShardName(const std::string& name) {
  if (name.empty()) return false;
  std::filesystem::path p(name);
  if (p.is_absolute()) return false;
  for (const auto& part : p) {
    if (part == "..") return false;
  }
  return true;
}

// model.safetensors.index.json: {"metadata": {...}, "weight_map": {"tensor name": "shard file", ...}}.
absl::StatusOr<std::map<std::string, std::string>> ReadWeightMap(const std::string& index_path) {
  TS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(index_path));
  Json root = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(index_path, ": not valid JSON"));
  if (!root.is_object()) return absl::InvalidArgumentError(absl::StrCat(index_path, ": must be a JSON object"));
  auto it = root.find("weight_map");
  if (it == root.end()) return absl::InvalidArgumentError(absl::StrCat(index_path, ": missing 'weight_map'"));
  if (!it->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, ": 'weight_map' must be an object, got ", it->type_name()));
  }
  std::map<std::string, std::string> weight_map;
  for (const auto& [name, shard] : it->items()) {
    if (!shard.is_string() || !IsSafeShardName(shard.get<std::string>())) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": weight_map entry for tensor '", name,
                                                     "' must be a file name inside the model directory"));
    }
    weight_map[name] = shard.get<std::string>();
  }
  if (weight_map.empty()) return absl::InvalidArgumentError(absl::StrCat(index_path, ": 'weight_map' is empty"));
  return weight_map;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": model directory does not exist"));
  }
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->dir_ = dir;
  const std::filesystem::path base(dir);
  const std::string single = (base / kSingleFile).string();
  const std::string index = (base / kIndexFile).string();

  // Like transformers, a single model.safetensors wins over an index.
  std::map<std::string, std::string> weight_map;  // empty for a single file
  std::vector<std::string> shard_names;
  if (std::filesystem::exists(single, ec)) {
    shard_names.push_back(kSingleFile);
  } else if (std::filesystem::exists(index, ec)) {
    TS_ASSIGN_OR_RETURN(weight_map, ReadWeightMap(index));
    std::set<std::string> unique;
    for (const auto& [name, shard] : weight_map) unique.insert(shard);
    shard_names.assign(unique.begin(), unique.end());
  } else {
    return absl::NotFoundError(absl::StrCat(dir, ": neither ", kSingleFile, " nor ", kIndexFile, " exists"));
  }

  std::map<std::string, std::string> found_in;  // tensor -> shard it was found in
  for (const std::string& shard : shard_names) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open((base / shard).string());
    if (!file.ok()) {
      if (absl::IsNotFound(file.status())) {
        return absl::NotFoundError(absl::StrCat(index, ": shard '", shard, "' is missing: ", file.status().message()));
      }
      return file.status();
    }
    for (const auto& [name, view] : (*file)->tensors()) {
      auto [it, inserted] = found_in.emplace(name, shard);
      if (!inserted) {
        return absl::InvalidArgumentError(
            absl::StrCat(dir, ": tensor '", name, "' is in two shards, '", it->second, "' and '", shard, "'"));
      }
      if (!weight_map.empty()) {
        auto mapped = weight_map.find(name);
        if (mapped == weight_map.end()) {
          return absl::InvalidArgumentError(
              absl::StrCat(index, ": tensor '", name, "' is in shard '", shard, "' but not in the weight_map"));
        }
        if (mapped->second != shard) {
          return absl::InvalidArgumentError(absl::StrCat(index, ": tensor '", name, "' is in shard '", shard,
                                                         "' but the weight_map says '", mapped->second, "'"));
        }
      }
      ckpt->index_[name] = &view;
      ckpt->used_[name] = false;
    }
    ckpt->files_.push_back(*std::move(file));
  }
  for (const auto& [name, shard] : weight_map) {
    if (!found_in.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat(index, ": tensor '", name, "' is mapped to shard '", shard,
                                                     "' but that shard does not contain it"));
    }
  }
  return ckpt;
}

bool Checkpoint::Has(const std::string& name) const { return index_.contains(name); }

absl::StatusOr<const TensorView*> Checkpoint::Get(const std::string& name, const std::vector<int64_t>& shape) {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::NotFoundError(absl::StrCat(dir_, ": tensor '", name, "' is not in the checkpoint"));
  }
  used_[name] = true;
  const TensorView* t = it->second;
  TS_RETURN_IF_ERROR(t->WeightDType().status());
  if (!shape.empty() && t->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(TensorPrefix(t->file, name), "shape is ", ShapeString(t->shape),
                                                   " but the model expects ", ShapeString(shape)));
  }
  return t;
}

absl::Status Checkpoint::CheckAllUsed(const std::vector<std::string>& ignore_suffixes) const {
  constexpr size_t kMaxListed = 10;
  std::vector<std::string> unused;
  for (const auto& entry : used_) {
    if (entry.second) continue;
    const std::string& name = entry.first;
    bool ignored = std::any_of(ignore_suffixes.begin(), ignore_suffixes.end(),
                               [&name](const std::string& s) { return absl::EndsWith(name, s); });
    if (!ignored) unused.push_back(name);
  }
  if (unused.empty()) return absl::OkStatus();
  const size_t total = unused.size();
  std::string msg =
      absl::StrCat(dir_, ": ", total, " tensor", total == 1 ? "" : "s", " in the checkpoint not used by the model: ");
  if (total > kMaxListed) unused.resize(kMaxListed);
  absl::StrAppend(&msg, absl::StrJoin(unused, ", "));
  if (total > kMaxListed) absl::StrAppend(&msg, " and ", total - kMaxListed, " more");
  return absl::InvalidArgumentError(msg);
}

std::vector<std::string> Checkpoint::Names() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, view] : index_) names.push_back(name);
  return names;
}

}  // namespace tessera::loader
