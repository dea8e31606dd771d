#include "server/tokenizer/normalizers.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "server/tokenizer/byte_level.h"
#include "server/tokenizer/json_util.h"
#include "server/tokenizer/regex.h"
#include "server/tokenizer/unicode.h"
#include "server/tokenizer/utf8.h"

namespace tessera::tokenizer {
namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalizationForm form) : form_(form) {}
  void Normalize(std::string* text) const override { NormalizeUnicode(form_, text); }

 private:
  NormalizationForm form_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void Normalize(std::string* text) const override {
    for (const auto& step : steps_) step->Normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void Normalize(std::string* text) const override {
    if (!text->empty()) *text = prefix_ + *text;
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Regex> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void Normalize(std::string* text) const override {
    const auto matches = pattern_->FindAll(*text);
    if (matches.empty()) return;
    std::string out;
    out.reserve(text->size());
    size_t prev = 0;
    for (const auto& [start, end] : matches) {
      out.append(*text, prev, start - prev);
      out.append(content_);
      prev = end;
    }
    out.append(*text, prev, std::string::npos);
    *text = std::move(out);
  }

 private:
  std::unique_ptr<Regex> pattern_;
  std::string content_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  void Normalize(std::string* text) const override {
    std::string out;
    out.reserve(text->size());
    for (size_t i = 0; i < text->size();) {
      const unsigned char b = static_cast<unsigned char>((*text)[i]);
      if (b < 0x80) {
        out.push_back(static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b));
        ++i;
        continue;
      }
      AppendLowercase(DecodeUtf8(*text, &i), &out);
    }
    *text = std::move(out);
  }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void Normalize(std::string* text) const override {
    size_t begin = 0;
    size_t end = text->size();
    if (left_) {
      while (begin < end) {
        size_t next = begin;
        if (!IsWhiteSpace(DecodeUtf8(*text, &next))) break;
        begin = next;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>((*text)[start]) & 0xC0) == 0x80) --start;
        size_t pos = start;
        if (!IsWhiteSpace(DecodeUtf8(*text, &pos))) break;
        end = start;
      }
    }
    *text = text->substr(begin, end - begin);
  }

 private:
  bool left_;
  bool right_;
};

class ByteLevelNormalizer final : public Normalizer {
 public:
  void Normalize(std::string* text) const override {
    std::string out;
    AppendByteLevel(*text, &out);
    *text = std::move(out);
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const nlohmann::json& j) {
  TS_ASSIGN_OR_RETURN(const std::string type, ComponentType(j, "normalizer"));
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfkd);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& item : j.at("normalizers")) {
      TS_ASSIGN_OR_RETURN(auto step, ParseNormalizer(item));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(j.at("prepend").get<std::string>());
  if (type == "Replace") {
    TS_ASSIGN_OR_RETURN(auto pattern, ParsePattern(j.at("pattern")));
    return std::make_unique<ReplaceNormalizer>(std::move(pattern), j.at("content").get<std::string>());
  }
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(GetOr(j, "strip_left", true), GetOr(j, "strip_right", true));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  return absl::UnimplementedError(absl::StrCat("unsupported normalizer type '", type, "'"));
}

}  // namespace tessera::tokenizer
