#include "runtime/loader/safetensors.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/runtime/loader/test_util.h"

namespace tessera::loader {
namespace {

using ::tessera::loader::testing::BuildSafetensors;
using ::tessera::loader::testing::Bytes;
using ::tessera::loader::testing::F32Bytes;
using ::tessera::loader::testing::RawSafetensors;
using ::tessera::loader::testing::TempDir;
using ::tessera::loader::testing::TensorSpec;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The path of the file mapping that contains `p`, from /proc/self/maps ("" if none).
std::string MappedFileContaining(const void* p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode >> path;
    const size_t dash = range.find('-');
    const uintptr_t lo = std::stoull(range.substr(0, dash), nullptr, 16);
    const uintptr_t hi = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (addr >= lo && addr < hi) return path;
  }
  return "";
}

absl::StatusOr<SafetensorsHeader> Parse(const std::string& bytes, std::string_view name = "model.safetensors") {
  return ParseSafetensorsHeader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
}

// A one-tensor header with the given entry JSON and `data_size` zero bytes of data.
std::string OneTensor(const std::string& entry, size_t data_size = 16) {
  return RawSafetensors("{\"x.weight\":" + entry + "}", std::string(data_size, '\0'));
}

// Asserts an INVALID_ARGUMENT whose message names the file and contains every one of `parts`.
void ExpectInvalid(const absl::Status& s, const std::vector<std::string>& parts,
                   const std::string& file = "model.safetensors") {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(file)) << s;
  for (const std::string& p : parts) EXPECT_THAT(std::string(s.message()), HasSubstr(p)) << s;
}

// ---- Valid files ------------------------------------------------------------------------------

TEST(SafetensorsFileTest, RoundTripsF32Bf16F16BitExactAndZeroCopy) {
  TempDir dir;
  const std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-38f};
  const std::vector<uint16_t> bf16 = {0x3f80, 0xbf80, 0x7f80, 0xffc1, 0x0001, 0x4049, 0x8000, 0x1234};
  const std::vector<uint16_t> f16 = {0x3c00, 0xfc00, 0x7e01, 0x0001};
  const std::vector<int32_t> i32 = {7, -7};
  const std::string path = dir.Write("m.safetensors", BuildSafetensors({{"a.f32", "F32", {2, 3}, Bytes(f32)},
                                                                        {"b.bf16", "BF16", {2, 2, 2}, Bytes(bf16)},
                                                                        {"c.f16", "F16", {4}, Bytes(f16)},
                                                                        {"d.i32", "I32", {2}, Bytes(i32)},
                                                                        {"e.empty", "F32", {0, 5}, ""}},
                                                                       R"({"format":"pt","note":"x"})"));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  const auto& t = (*file)->tensors();
  ASSERT_EQ(t.size(), 5u);
  EXPECT_THAT((*file)->metadata(),
              ::testing::UnorderedElementsAre(::testing::Pair("format", "pt"), ::testing::Pair("note", "x")));

  const TensorView& a = t.at("a.f32");
  EXPECT_EQ(a.dtype, StDType::kF32);
  EXPECT_THAT(a.shape, ElementsAre(2, 3));
  EXPECT_EQ(a.numel(), 6);
  EXPECT_EQ(a.nbytes, 24u);
  EXPECT_EQ(a.file, path);
  EXPECT_EQ(std::memcmp(a.data, f32.data(), a.nbytes), 0);
  EXPECT_EQ(*a.WeightDType(), kernels::DType::kF32);

  const TensorView& b = t.at("b.bf16");
  EXPECT_EQ(b.dtype, StDType::kBF16);
  EXPECT_EQ(b.nbytes, 16u);
  EXPECT_EQ(std::memcmp(b.data, bf16.data(), b.nbytes), 0);
  EXPECT_EQ(*b.WeightDType(), kernels::DType::kBF16);

  const TensorView& c = t.at("c.f16");
  EXPECT_EQ(c.dtype, StDType::kF16);
  EXPECT_EQ(std::memcmp(c.data, f16.data(), c.nbytes), 0);
  EXPECT_EQ(*c.WeightDType(), kernels::DType::kF16);

  const TensorView& d = t.at("d.i32");
  absl::StatusOr<kernels::DType> wd = d.WeightDType();
  ExpectInvalid(wd.status(), {"d.i32", "I32"}, path);

  const TensorView& e = t.at("e.empty");
  EXPECT_EQ(e.numel(), 0);
  EXPECT_EQ(e.nbytes, 0u);

  // Zero copy: every tensor's bytes live inside the file's own mapping, laid out as in the file.
  for (const TensorView* v : {&a, &b, &c, &d}) {
    EXPECT_EQ(MappedFileContaining(v->data), std::filesystem::canonical(path).string()) << v->name;
  }
  EXPECT_EQ(static_cast<const char*>(b.data) - static_cast<const char*>(a.data), 24);
  EXPECT_EQ(static_cast<const char*>(c.data) - static_cast<const char*>(b.data), 16);
}

TEST(SafetensorsHeaderTest, ReportsAbsoluteOffsetsAndAcceptsScalarsAndGaps) {
  // A scalar (shape []) holds one element; a gap between tensors is allowed.
  const std::string header =
      R"({"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"t":{"dtype":"U8","shape":[3],"data_offsets":[12,15]}})";
  const std::string bytes = RawSafetensors(header, std::string(16, '\0'));
  auto h = Parse(bytes);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->tensors.at("s").numel(), 1);
  EXPECT_EQ(h->tensors.at("s").nbytes, 8u);
  EXPECT_EQ(h->data_offset.at("s"), 8 + header.size());
  EXPECT_EQ(h->data_offset.at("t"), 8 + header.size() + 12);
  EXPECT_EQ(h->tensors.at("t").data, nullptr);
}

TEST(SafetensorsHeaderTest, KnowsEveryDType) {
  const std::vector<std::pair<std::string, int64_t>> all = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},   {"I16", 2}, {"U16", 2}, {"I32", 4},     {"U32", 4},     {"I64", 8},
      {"U64", 8},  {"F16", 2}, {"BF16", 2}, {"F32", 4}, {"F64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
  };
  for (const auto& [name, size] : all) {
    auto h = Parse(
        OneTensor(R"({"dtype":")" + name + R"(","shape":[2],"data_offsets":[0,)" + std::to_string(2 * size) + "]}"));
    ASSERT_TRUE(h.ok()) << name << ": " << h.status();
    const TensorView& t = h->tensors.at("x.weight");
    EXPECT_EQ(StDTypeName(t.dtype), name);
    EXPECT_EQ(StDTypeSize(t.dtype), size);
  }
}

// ---- Malformed headers ------------------------------------------------------------------------

TEST(SafetensorsHeaderTest, RejectsFileShorterThanLengthField) {
  ExpectInvalid(Parse(std::string(5, '\0')).status(), {"5 bytes", "too short"});
  ExpectInvalid(ParseSafetensorsHeader(nullptr, 0, "model.safetensors").status(), {"too short"});
}

TEST(SafetensorsHeaderTest, RejectsHeaderLengthPastEndOfFile) {
  std::string bytes = RawSafetensors("{}", "");
  bytes[0] = 50;  // claims 50 bytes of header, the file has 2
  ExpectInvalid(Parse(bytes).status(), {"header length 50", "past the end"});
}

TEST(SafetensorsHeaderTest, RejectsAbsurdHeaderLength) {
  std::string bytes = RawSafetensors("{}", "");
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(0xff);
  ExpectInvalid(Parse(bytes).status(), {"header length 18446744073709551615", "absurd"});
}

TEST(SafetensorsHeaderTest, RejectsNonJsonHeader) {
  ExpectInvalid(Parse(RawSafetensors("{\"a\": ", "")).status(), {"not valid JSON"});
  ExpectInvalid(Parse(RawSafetensors("", "")).status(), {"not valid JSON"});
}

TEST(SafetensorsHeaderTest, RejectsHeaderThatIsNotAnObject) {
  ExpectInvalid(Parse(RawSafetensors("[1, 2]", "")).status(), {"array", "not an object"});
}

TEST(SafetensorsHeaderTest, RejectsWrongFieldTypes) {
  ExpectInvalid(Parse(OneTensor("[1]")).status(), {"tensor 'x.weight'", "entry must be an object"});
  ExpectInvalid(Parse(OneTensor(R"({"dtype":1,"shape":[2],"data_offsets":[0,8]})")).status(),
                {"tensor 'x.weight'", "dtype must be a string"});
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})")).status(),
                {"tensor 'x.weight'", "shape must be an array"});
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":[2],"data_offsets":"0-8"})")).status(),
                {"tensor 'x.weight'", "data_offsets must be an array [begin, end]"});
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":[2]})")).status(),
                {"tensor 'x.weight'", "missing field 'data_offsets'"});
}

TEST(SafetensorsHeaderTest, RejectsUnknownDType) {
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F7","shape":[2],"data_offsets":[0,8]})")).status(),
                {"tensor 'x.weight'", "unknown dtype 'F7'"});
}

TEST(SafetensorsHeaderTest, RejectsNegativeOrFractionalDims) {
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})")).status(),
                {"tensor 'x.weight'", "shape dimension -2"});
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,8]})")).status(),
                {"tensor 'x.weight'", "shape dimension 2.5"});
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,8]})")).status(),
                {"tensor 'x.weight'", "shape dimension string"});
}

TEST(SafetensorsHeaderTest, RejectsOverflowingShape) {
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]})")).status(),
                {"tensor 'x.weight'", "overflows"});
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"BF16","shape":[9223372036854775807],"data_offsets":[0,8]})")).status(),
                {"tensor 'x.weight'", "overflows"});
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]})")).status(),
                {"tensor 'x.weight'", "shape dimension"});
}

TEST(SafetensorsHeaderTest, RejectsMalformedDataOffsets) {
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})")).status(),
                {"tensor 'x.weight'", "data_offsets must be an array [begin, end]"});
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8,16]})")).status(),
                {"tensor 'x.weight'", "data_offsets"});
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":[2],"data_offsets":[-8,0]})")).status(),
                {"tensor 'x.weight'", "non-negative integers"});
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})")).status(),
                {"tensor 'x.weight'", "data_offsets [8, 0] end before they begin"});
}

TEST(SafetensorsHeaderTest, RejectsDataPastEndOfDataSection) {
  ExpectInvalid(Parse(OneTensor(R"({"dtype":"F32","shape":[4],"data_offsets":[8,24]})", 16)).status(),
                {"tensor 'x.weight'", "data_offsets [8, 24]", "past the end of the data section (16 bytes)"});
  // Huge offsets must not wrap around.
  ExpectInvalid(
      Parse(OneTensor(R"({"dtype":"U8","shape":[1],"data_offsets":[9223372036854775806,9223372036854775807]})"))
          .status(),
      {"tensor 'x.weight'", "past the end"});
}

TEST(SafetensorsHeaderTest, RejectsByteCountThatDisagreesWithShape) {
  absl::Status s = Parse(OneTensor(R"({"dtype":"BF16","shape":[2,4],"data_offsets":[0,12]})")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "model.safetensors: tensor 'x.weight': data_offsets [0, 12] hold 12 bytes but BF16 [2, 4] "
            "needs 16");
}

TEST(SafetensorsHeaderTest, RejectsOverlappingTensors) {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  ExpectInvalid(Parse(RawSafetensors(header, std::string(16, '\0'))).status(),
                {"tensor 'b' (bytes [4, 12]) overlaps tensor 'a' (bytes [0, 8])"});
  // Identical ranges overlap too; an empty tensor anywhere does not.
  const std::string same =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
  ExpectInvalid(Parse(RawSafetensors(same, std::string(8, '\0'))).status(), {"overlaps"});
  const std::string empty =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})";
  EXPECT_TRUE(Parse(RawSafetensors(empty, std::string(8, '\0'))).ok());
}

TEST(SafetensorsHeaderTest, RejectsDuplicatedNames) {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  ExpectInvalid(Parse(RawSafetensors(header, std::string(8, '\0'))).status(), {"tensor 'a' is listed twice"});
}

TEST(SafetensorsHeaderTest, RejectsMetadataThatIsNotAMapOfStrings) {
  ExpectInvalid(Parse(RawSafetensors(R"({"__metadata__":["pt"]})", "")).status(),
                {"__metadata__ must be an object of strings, got array"});
  ExpectInvalid(Parse(RawSafetensors(R"({"__metadata__":{"format":"pt","n":3}})", "")).status(),
                {"__metadata__ 'n' must be a string, got number"});
}

TEST(SafetensorsHeaderTest, RejectsEmptyTensorName) {
  ExpectInvalid(Parse(RawSafetensors(R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd")).status(),
                {"empty name"});
}

// ---- SafetensorsFile::Open --------------------------------------------------------------------

TEST(SafetensorsFileTest, MissingFileIsNotFound) {
  TempDir dir;
  auto f = SafetensorsFile::Open(dir.File("nope.safetensors"));
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("nope.safetensors"));
}

TEST(SafetensorsFileTest, ErrorsNameTheFullPath) {
  TempDir dir;
  const std::string path = dir.Write("bad.safetensors", OneTensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})"));
  ExpectInvalid(SafetensorsFile::Open(path).status(), {"tensor 'x.weight'"}, path);
  const std::string empty = dir.Write("empty.safetensors", "");
  ExpectInvalid(SafetensorsFile::Open(empty).status(), {"too short"}, empty);
  ExpectInvalid(SafetensorsFile::Open(dir.path()).status(), {"not a regular file"}, dir.path());
}

// ---- Checkpoint -------------------------------------------------------------------------------

TEST(CheckpointTest, SingleFileGetChecksShapeAndDType) {
  TempDir dir;
  dir.Write("model.safetensors", BuildSafetensors({{"w", "BF16", {2, 3}, std::string(12, '\1')},
                                                   {"ids", "I64", {2}, std::string(16, '\0')},
                                                   {"rotary_emb.inv_freq", "F32", {2}, F32Bytes(2)}}));
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  Checkpoint& c = **ckpt;
  EXPECT_THAT(c.Names(), ElementsAre("ids", "rotary_emb.inv_freq", "w"));
  EXPECT_TRUE(c.Has("w"));
  EXPECT_FALSE(c.Has("v"));

  auto w = c.Get("w", {2, 3});
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->nbytes, 12u);
  EXPECT_TRUE(c.Get("w").ok());  // no shape: any shape goes

  absl::Status bad_shape = c.Get("w", {3, 2}).status();
  ExpectInvalid(bad_shape, {"tensor 'w'", "shape is [2, 3]", "expects [3, 2]"}, "model.safetensors");

  absl::Status missing = c.Get("model.norm.weight", {3}).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), AllOf(HasSubstr("model.norm.weight"), HasSubstr(dir.path())));

  ExpectInvalid(c.Get("ids").status(), {"tensor 'ids'", "dtype I64"}, "model.safetensors");

  // Everything was asked for except the rotary buffer, which the caller ignores.
  EXPECT_TRUE(c.CheckAllUsed({"rotary_emb.inv_freq"}).ok());
  absl::Status unused = c.CheckAllUsed();
  ExpectInvalid(unused, {"1 tensor", "rotary_emb.inv_freq"}, dir.path());
}

TEST(CheckpointTest, CheckAllUsedListsTenNamesThenCounts) {
  TempDir dir;
  std::vector<TensorSpec> specs;
  for (int i = 0; i < 15; ++i)
    specs.push_back({std::string("t").append(std::to_string(10 + i)), "F32", {1}, F32Bytes(1)});
  dir.Write("model.safetensors", BuildSafetensors(specs));
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  ASSERT_TRUE((*ckpt)->Get("t10").ok());
  absl::Status s = (*ckpt)->CheckAllUsed();
  ExpectInvalid(s, {"14 tensors", "t11, t12", "t20", "and 4 more"}, dir.path());
  EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr("t21")));
}

// Two shards plus an index, as transformers writes them.
void WriteShardedCheckpoint(const TempDir& dir, const std::string& weight_map) {
  dir.Write("model-00001-of-00002.safetensors",
            BuildSafetensors({{"a", "F32", {2}, F32Bytes(2, 1.0f)}, {"b", "F32", {3}, F32Bytes(3, 10.0f)}}));
  dir.Write("model-00002-of-00002.safetensors",
            BuildSafetensors({{"c", "F16", {2}, std::string("\x00\x3c\x00\xbc", 4)}}));
  dir.Write("model.safetensors.index.json", R"({"metadata": {"total_size": 24}, "weight_map": )" + weight_map + "}");
}

TEST(CheckpointTest, OpensShardedCheckpoint) {
  TempDir dir;
  WriteShardedCheckpoint(dir, R"({"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                                  "c": "model-00002-of-00002.safetensors"})");
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_THAT((*ckpt)->Names(), ElementsAre("a", "b", "c"));
  auto b = (*ckpt)->Get("b", {3});
  ASSERT_TRUE(b.ok()) << b.status();
  const auto* bf = static_cast<const float*>((*b)->data);
  EXPECT_EQ(bf[0], 10.0f);
  EXPECT_EQ(bf[2], 12.0f);
  EXPECT_THAT((*b)->file, HasSubstr("model-00001-of-00002.safetensors"));
  auto c = (*ckpt)->Get("c", {2});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(static_cast<const uint16_t*>((*c)->data)[1], 0xbc00);
  EXPECT_THAT((*c)->file, HasSubstr("model-00002-of-00002.safetensors"));
  ASSERT_TRUE((*ckpt)->Get("a").ok());
  EXPECT_TRUE((*ckpt)->CheckAllUsed().ok());
}

TEST(CheckpointTest, ShardedRejectsMissingShard) {
  TempDir dir;
  WriteShardedCheckpoint(dir, R"({"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                                  "c": "model-00002-of-00002.safetensors", "d": "model-00003-of-00003.safetensors"})");
  absl::Status s = Checkpoint::Open(dir.path()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("shard 'model-00003-of-00003.safetensors'")));
}

TEST(CheckpointTest, ShardedRejectsTensorAbsentFromItsShard) {
  TempDir dir;
  WriteShardedCheckpoint(dir, R"({"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                                  "c": "model-00002-of-00002.safetensors", "z": "model-00002-of-00002.safetensors"})");
  ExpectInvalid(Checkpoint::Open(dir.path()).status(),
                {"tensor 'z' is mapped to shard 'model-00002-of-00002.safetensors'", "does not contain it"},
                "model.safetensors.index.json");
}

TEST(CheckpointTest, ShardedRejectsTensorMappedElsewhere) {
  TempDir dir;
  WriteShardedCheckpoint(dir, R"({"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors",
                                  "c": "model-00002-of-00002.safetensors"})");
  ExpectInvalid(Checkpoint::Open(dir.path()).status(),
                {"tensor 'b' is in shard 'model-00001-of-00002.safetensors'",
                 "weight_map says 'model-00002-of-00002.safetensors'"},
                "model.safetensors.index.json");
}

TEST(CheckpointTest, ShardedRejectsTensorMissingFromIndex) {
  TempDir dir;
  WriteShardedCheckpoint(dir, R"({"a": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"})");
  ExpectInvalid(Checkpoint::Open(dir.path()).status(), {"tensor 'b'", "not in the weight_map"},
                "model.safetensors.index.json");
}

TEST(CheckpointTest, ShardedRejectsTensorInTwoShards) {
  TempDir dir;
  WriteShardedCheckpoint(dir, R"({"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors",
                                  "c": "model-00002-of-00002.safetensors"})");
  dir.Write("model-00002-of-00002.safetensors",
            BuildSafetensors({{"c", "F16", {2}, std::string(4, '\0')}, {"a", "F32", {2}, F32Bytes(2)}}));
  ExpectInvalid(Checkpoint::Open(dir.path()).status(),
                {"tensor 'a' is in two shards", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"},
                dir.path());
}

TEST(CheckpointTest, ShardedRejectsBadIndex) {
  TempDir dir;
  dir.Write("model.safetensors.index.json", "{\"weight_map\": ");
  ExpectInvalid(Checkpoint::Open(dir.path()).status(), {"not valid JSON"}, "model.safetensors.index.json");
  dir.Write("model.safetensors.index.json", R"({"metadata": {}})");
  ExpectInvalid(Checkpoint::Open(dir.path()).status(), {"missing 'weight_map'"}, "model.safetensors.index.json");
  dir.Write("model.safetensors.index.json", R"({"weight_map": []})");
  ExpectInvalid(Checkpoint::Open(dir.path()).status(), {"'weight_map' must be an object"},
                "model.safetensors.index.json");
  dir.Write("model.safetensors.index.json", R"({"weight_map": {"a": 3}})");
  ExpectInvalid(Checkpoint::Open(dir.path()).status(), {"tensor 'a'"}, "model.safetensors.index.json");
  dir.Write("model.safetensors.index.json", R"({"weight_map": {"a": "../outside.safetensors"}})");
  ExpectInvalid(Checkpoint::Open(dir.path()).status(), {"tensor 'a'", "inside the model directory"},
                "model.safetensors.index.json");
}

TEST(CheckpointTest, ShardErrorsNameTheShard) {
  TempDir dir;
  dir.Write("s1.safetensors", OneTensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})"));
  dir.Write("model.safetensors.index.json", R"({"weight_map": {"x.weight": "s1.safetensors"}})");
  ExpectInvalid(Checkpoint::Open(dir.path()).status(), {"tensor 'x.weight'", "needs 8"}, "s1.safetensors");
}

TEST(CheckpointTest, MissingFilesAreNotFound) {
  TempDir dir;
  absl::Status empty = Checkpoint::Open(dir.path()).status();
  EXPECT_EQ(empty.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(empty.message()), AllOf(HasSubstr(dir.path()), HasSubstr("model.safetensors")));
  absl::Status nodir = Checkpoint::Open(dir.File("no_such_model")).status();
  EXPECT_EQ(nodir.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(nodir.message()), HasSubstr("no_such_model"));
}

// Every reference model checked into tests/fixtures opens cleanly and uses only weight dtypes.
TEST(CheckpointTest, OpensFixtureModels) {
  const std::filesystem::path root = "tests/fixtures/models";
  if (!std::filesystem::is_directory(root)) GTEST_SKIP() << "no fixture models";
  int opened = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    auto ckpt = Checkpoint::Open(entry.path().string());
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    for (const std::string& name : (*ckpt)->Names()) {
      EXPECT_TRUE((*ckpt)->Get(name).ok()) << entry.path() << " " << name;
    }
    EXPECT_TRUE((*ckpt)->CheckAllUsed().ok());
    ++opened;
  }
  EXPECT_GT(opened, 0);
}

}  // namespace
}  // namespace tessera::loader
