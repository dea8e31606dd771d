#include "server/tokenizer/decoders.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"
#include "server/tokenizer/byte_level.h"
#include "server/tokenizer/json_util.h"
#include "server/tokenizer/regex.h"
#include "server/tokenizer/utf8.h"

namespace tessera::tokenizer {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class ByteLevelDecoder final : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override {
    std::string bytes;
    for (const std::string& t : *tokens) {
      const size_t mark = bytes.size();
      bool all_mapped = true;
      for (size_t i = 0; i < t.size();) {
        const auto b = ByteLevelCharToByte(DecodeUtf8(t, &i));
        if (!b) {
          all_mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(*b));
      }
      if (!all_mapped) {
        bytes.resize(mark);
        bytes.append(t);
      }
    }
    *tokens = {SanitizeUtf8(bytes)};
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string& t = (*tokens)[i];
      std::string out;
      out.reserve(t.size());
      for (size_t pos = 0; pos < t.size();) {
        if (t.compare(pos, replacement_.size(), replacement_) == 0) {
          if (i != 0 || !strip_first_) out.push_back(' ');
          pos += replacement_.size();
        } else {
          out.push_back(t[pos++]);
        }
      }
      t = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens->size());
    std::string run;
    auto flush = [&] {
      if (run.empty()) return;
      if (IsValidUtf8(run)) {
        out.push_back(run);
      } else {
        for (size_t i = 0; i < run.size(); ++i) out.emplace_back(kReplacementUtf8);
      }
      run.clear();
    };
    for (std::string& t : *tokens) {
      unsigned char b;
      if (ParseByteToken(t, &b)) {
        run.push_back(static_cast<char>(b));
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    *tokens = std::move(out);
  }
  bool UsesByteFallback() const override { return true; }
};

class FuseDecoder final : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override { *tokens = {absl::StrJoin(*tokens, "")}; }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    const size_t n = content_.size();
    for (std::string& t : *tokens) {
      size_t begin = 0;
      for (size_t k = 0; k < start_ && t.compare(begin, n, content_) == 0 && begin + n <= t.size(); ++k) begin += n;
      size_t end = t.size();
      for (size_t k = 0; k < stop_ && end >= begin + n && t.compare(end - n, n, content_) == 0; ++k) end -= n;
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;  // one character
  size_t start_;
  size_t stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::unique_ptr<Regex> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) {
      const auto matches = pattern_->FindAll(t);
      if (matches.empty()) continue;
      std::string out;
      size_t prev = 0;
      for (const auto& [start, end] : matches) {
        out.append(t, prev, start - prev);
        out.append(content_);
        prev = end;
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::unique_ptr<Regex> pattern_;
  std::string content_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (const auto& step : steps_) step->DecodeChain(tokens);
  }
  bool UsesByteFallback() const override {
    for (const auto& step : steps_) {
      if (step->UsesByteFallback()) return true;
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

bool ParseByteToken(std::string_view token, unsigned char* byte) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return false;
  const int hi = HexValue(token[3]);
  const int lo = HexValue(token[4]);
  if (lo < 0) return false;
  if (hi < 0) {
    // The reference parser also accepts a '+' sign before a single digit.
    if (token[3] != '+') return false;
    *byte = static_cast<unsigned char>(lo);
    return true;
  }
  *byte = static_cast<unsigned char>(hi * 16 + lo);
  return true;
}

absl::StatusOr<std::unique_ptr<Decoder>> ParseDecoder(const nlohmann::json& j) {
  TS_ASSIGN_OR_RETURN(const std::string type, ComponentType(j, "decoder"));
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    const std::string replacement = GetOr<std::string>(j, "replacement", "\xE2\x96\x81");
    if (replacement.empty()) return absl::InvalidArgumentError("Metaspace replacement must not be empty");
    bool strip_first = true;
    if (auto it = j.find("prepend_scheme"); it != j.end() && !it->is_null()) {
      const auto scheme = it->get<std::string>();
      if (scheme != "always" && scheme != "first" && scheme != "never") {
        return absl::InvalidArgumentError(absl::StrCat("unsupported Metaspace prepend_scheme '", scheme, "'"));
      }
      strip_first = scheme != "never";
    } else {
      strip_first = GetOr(j, "add_prefix_space", true);
    }
    return std::make_unique<MetaspaceDecoder>(replacement, strip_first);
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    const auto content = j.at("content").get<std::string>();
    if (content.empty()) return absl::InvalidArgumentError("Strip content must not be empty");
    return std::make_unique<StripDecoder>(content, GetOr<size_t>(j, "start", 0), GetOr<size_t>(j, "stop", 0));
  }
  if (type == "Replace") {
    TS_ASSIGN_OR_RETURN(auto pattern, ParsePattern(j.at("pattern")));
    return std::make_unique<ReplaceDecoder>(std::move(pattern), j.at("content").get<std::string>());
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const auto& item : j.at("decoders")) {
      TS_ASSIGN_OR_RETURN(auto step, ParseDecoder(item));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  return absl::UnimplementedError(absl::StrCat("unsupported decoder type '", type, "'"));
}

}  // namespace tessera::tokenizer
