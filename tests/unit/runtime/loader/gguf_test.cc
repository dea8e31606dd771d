// GgufFile against the fixtures written by tools/make_gguf_fixtures.py (gguf.GGUFWriter): every
// metadata value as written, every tensor's info, and tensor values dequantized by gguf.quants.
#include "runtime/loader/gguf.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/loader/gguf_quants.h"

namespace tessera::loader {
namespace {

using ::testing::HasSubstr;

constexpr const char* kDir = "tests/fixtures/gguf/";

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

absl::StatusOr<std::unique_ptr<GgufFile>> ParseBytes(const std::string& bytes) {
  return GgufFile::Parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem.gguf");
}

void ExpectArrayEquals(const GgufArray& a, const nlohmann::json& want, const std::string& elem_type,
                       const std::string& key) {
  ASSERT_EQ(GgufValueTypeName(a.elem_type), elem_type) << key;
  ASSERT_EQ(a.size, want.size()) << key;
  for (uint64_t i = 0; i < a.size; ++i) {
    const auto& w = want[i];
    if (elem_type == "string") {
      EXPECT_EQ(a.strings[i], w.get<std::string>()) << key << "[" << i << "]";
    } else if (elem_type == "float32" || elem_type == "float64") {
      EXPECT_EQ(GgufArrayFloat(a, i), w.get<double>()) << key << "[" << i << "]";
    } else if (elem_type == "bool") {
      EXPECT_EQ(GgufArrayUint(a, i) != 0, w.get<bool>()) << key << "[" << i << "]";
    } else if (w.is_number_unsigned()) {
      EXPECT_EQ(GgufArrayUint(a, i), w.get<uint64_t>()) << key << "[" << i << "]";
    } else {
      EXPECT_EQ(GgufArrayInt(a, i), w.get<int64_t>()) << key << "[" << i << "]";
    }
  }
}

TEST(GgufTest, MetadataOfEveryTypeMatchesWriter) {
  auto f = GgufFile::Open(std::string(kDir) + "types.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  const auto want = nlohmann::json::parse(ReadAll(std::string(kDir) + "types.json"));
  const GgufFile& g = **f;
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 64u);
  EXPECT_EQ(g.data_offset() % 64, 0u);
  EXPECT_EQ(g.metadata().size(), want["metadata"].size());
  for (const auto& [key, w] : want["metadata"].items()) {
    SCOPED_TRACE(key);
    const GgufValue* v = g.Find(key);
    ASSERT_NE(v, nullptr);
    const std::string type = w["type"];
    ASSERT_EQ(GgufValueTypeName(v->type), type);
    if (type == "string") {
      auto s = g.GetString(key);
      ASSERT_TRUE(s.ok());
      EXPECT_EQ(*s, w["value"].get<std::string>());
    } else if (type == "bool") {
      EXPECT_EQ(*g.GetBool(key), w["value"].get<bool>());
    } else if (type == "float32" || type == "float64") {
      EXPECT_EQ(*g.GetFloat(key), w["value"].get<double>());
    } else if (type == "array") {
      const GgufArray& a = **g.GetArray(key);
      const std::string elem = w["elem_type"];
      if (elem == "array") {
        ASSERT_EQ(a.arrays.size(), w["value"].size());
        for (size_t i = 0; i < a.arrays.size(); ++i) {
          ExpectArrayEquals(a.arrays[i], w["value"][i], w["inner_type"], key);
        }
      } else {
        ExpectArrayEquals(a, w["value"], elem, key);
      }
    } else if (w["value"].is_number_unsigned()) {
      EXPECT_EQ(*g.GetUint(key), w["value"].get<uint64_t>());
    } else {
      EXPECT_EQ(*g.GetInt(key), w["value"].get<int64_t>());
    }
  }
  // Typed bulk accessors.
  auto strs = g.GetStringArray("test.arr_str");
  ASSERT_TRUE(strs.ok());
  EXPECT_THAT(*strs, ::testing::ElementsAre("a", "", "\xc3\xbc\xe2\x96\x81x"));
  auto ints = g.GetIntArray("test.arr_i16");
  ASSERT_TRUE(ints.ok());
  EXPECT_THAT(*ints, ::testing::ElementsAre(-32768, 32767));
  auto floats = g.GetFloatArray("test.arr_f32");
  ASSERT_TRUE(floats.ok());
  EXPECT_EQ((*floats)[1], -2.25);
}

TEST(GgufTest, AccessorErrorsNameFileKeyAndTypes) {
  auto f = GgufFile::Open(std::string(kDir) + "types.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  const GgufFile& g = **f;
  auto missing = g.GetUint("no.such.key");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("no.such.key"));
  auto wrong = g.GetUint("test.string");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("types.gguf"));
  EXPECT_THAT(wrong.status().message(), HasSubstr("'test.string'"));
  EXPECT_THAT(wrong.status().message(), HasSubstr("found string"));
  EXPECT_FALSE(g.GetUint("test.i8").ok());  // negative
  EXPECT_FALSE(g.GetInt("test.u64").ok());  // 2^63 + 5 does not fit
  EXPECT_EQ(*g.GetUint("test.u64"), (uint64_t{1} << 63) + 5);
  EXPECT_EQ(*g.GetFloat("test.u16"), 60000.0);  // integers convert to float
  EXPECT_FALSE(g.GetStringArray("test.arr_i32").ok());
  EXPECT_THAT(g.GetStringArray("test.arr_i32").status().message(), HasSubstr("array of int32"));
  EXPECT_EQ(*g.GetUintOr("absent", 7), 7u);
  EXPECT_FALSE(g.GetBoolOr("test.u8", false).ok());
}

TEST(GgufTest, TensorInfosAndDequantizedValuesMatchWriter) {
  auto f = GgufFile::Open(std::string(kDir) + "types.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  const auto want = nlohmann::json::parse(ReadAll(std::string(kDir) + "types.json"));
  ASSERT_EQ((*f)->tensors().size(), want["tensors"].size());
  for (const auto& wt : want["tensors"]) {
    const std::string name = wt["name"];
    SCOPED_TRACE(name);
    const GgufTensorInfo* t = (*f)->FindTensor(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(static_cast<uint32_t>(t->type), wt["type"].get<uint32_t>());
    EXPECT_EQ(t->dims, wt["dims"].get<std::vector<int64_t>>());
    EXPECT_EQ(t->offset % 64, 0u);
    const std::vector<double> values = wt["values"];
    ASSERT_EQ(t->numel(), static_cast<int64_t>(values.size()));
    const int64_t ne0 = t->dims[0];
    auto row_bytes = GgmlRowBytes(t->type, ne0);
    ASSERT_TRUE(row_bytes.has_value());
    EXPECT_EQ(t->nbytes, static_cast<uint64_t>(*row_bytes * t->rows()));
    std::vector<float> row(ne0);
    for (int64_t r = 0; r < t->rows(); ++r) {
      ASSERT_TRUE(DequantizeRow(t->type, t->data + r * *row_bytes, row.data(), ne0).ok());
      for (int64_t i = 0; i < ne0; ++i) {
        const double w = values[r * ne0 + i];
        EXPECT_NEAR(row[i], w, 1e-6 * std::max(1.0, std::abs(w))) << "row " << r << " col " << i;
      }
    }
  }
}

TEST(GgufTest, ReadsVersion2) {
  auto f = GgufFile::Open(std::string(kDir) + "v2.gguf");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->version(), 2u);
  EXPECT_EQ(*(*f)->GetUint("test.answer"), 42u);
  EXPECT_EQ(*(*f)->GetString("test.name"), "version two");
  const GgufTensorInfo* w = (*f)->FindTensor("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dims, (std::vector<int64_t>{4, 2}));
  float v[8];
  std::memcpy(v, w->data, sizeof(v));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(v[i], static_cast<float>(i));
}

// Malformed inputs: each gets INVALID_ARGUMENT naming the file and the field.
class GgufMalformedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    good_ = ReadAll(std::string(kDir) + "v2.gguf");
    ASSERT_GT(good_.size(), 64u);
  }
  void ExpectError(const std::string& bytes, const std::string& field) {
    auto f = ParseBytes(bytes);
    ASSERT_FALSE(f.ok()) << "accepted input expected to fail on " << field;
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(f.status().message(), HasSubstr("mem.gguf"));
    EXPECT_THAT(f.status().message(), HasSubstr(field));
  }
  std::string Patch(size_t pos, const void* p, size_t n) {
    std::string s = good_;
    std::memcpy(s.data() + pos, p, n);
    return s;
  }
  std::string good_;
};

TEST_F(GgufMalformedTest, Header) {
  ExpectError("", "magic");
  ExpectError("GGU", "magic");
  ExpectError("GGML" + good_.substr(4), "magic");
  uint32_t v = 7;
  ExpectError(Patch(4, &v, 4), "version");
  v = 3u << 24;  // big-endian 3
  ExpectError(Patch(4, &v, 4), "byte-swapped");
  ExpectError(good_.substr(0, 12), "tensor_count");
  ExpectError(good_.substr(0, 20), "metadata_kv_count");
  uint64_t huge = uint64_t{1} << 60;
  ExpectError(Patch(16, &huge, 8), "metadata_kv_count");
  ExpectError(Patch(8, &huge, 8), "tensor_count");
}

TEST_F(GgufMalformedTest, StringsAndValues) {
  uint64_t huge = uint64_t{1} << 40;
  ExpectError(Patch(24, &huge, 8), "metadata entry 0 key");
  uint64_t klen;
  std::memcpy(&klen, good_.data() + 24, 8);
  uint32_t bad_type = 99;
  ExpectError(Patch(32 + klen, &bad_type, 4), "unknown value type 99");
  // Every truncation point inside the header fails cleanly.
  auto full = ParseBytes(good_);
  ASSERT_TRUE(full.ok()) << full.status();
  for (size_t n = 0; n < (*full)->data_offset(); ++n) {
    auto f = ParseBytes(good_.substr(0, n));
    EXPECT_FALSE(f.ok()) << "truncated at " << n;
  }
}

TEST_F(GgufMalformedTest, TensorData) {
  ExpectError(good_.substr(0, good_.size() - 4), "tensor 'w'");
  auto full = ParseBytes(good_);
  ASSERT_TRUE(full.ok());
  // The tensor info's offset field is the last 8 bytes before the padding: find it by value 0 right
  // after the type (F32 = 0). Rewrite it to be misaligned, then past the end.
  const size_t name_pos = good_.find(std::string("\x01\0\0\0\0\0\0\0w", 9));
  ASSERT_NE(name_pos, std::string::npos);
  const size_t offset_pos = name_pos + 9 + 4 + 16 + 4;
  uint64_t off = 4;
  ExpectError(Patch(offset_pos, &off, 8), "not a multiple of the alignment");
  off = 1 << 20;
  ExpectError(Patch(offset_pos, &off, 8), "runs past the end");
  uint32_t type = 1000;
  ExpectError(Patch(offset_pos - 4, &type, 4), "unknown ggml tensor type 1000");
  uint32_t ndims = 9;
  ExpectError(Patch(name_pos + 9, &ndims, 4), "n_dims");
}

TEST(GgufTest, OverlappingTensorsAreRejected) {
  // Two tensors at the same offset, written by hand.
  std::string s = "GGUF";
  auto put = [&](const void* p, size_t n) { s.append(static_cast<const char*>(p), n); };
  uint32_t v3 = 3, n_dims = 1, f32 = 0;
  uint64_t two = 2, zero = 0, len = 1, dim = 8;
  put(&v3, 4);
  put(&two, 8);
  put(&zero, 8);
  for (const char* name : {"a", "b"}) {
    put(&len, 8);
    s += name;
    put(&n_dims, 4);
    put(&dim, 8);
    put(&f32, 4);
    put(&zero, 8);
  }
  s.resize((s.size() + 31) / 32 * 32, '\0');
  s.append(32, '\0');
  auto f = ParseBytes(s);
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f.status().message(), HasSubstr("overlaps"));
}

TEST(GgufTest, OpenMissingFileIsNotFound) {
  auto f = GgufFile::Open("/nonexistent/x.gguf");
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tessera::loader
