#include "server/tokenizer/pre_tokenizers.h"

#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "server/tokenizer/byte_level.h"
#include "server/tokenizer/json_util.h"
#include "server/tokenizer/regex.h"
#include "server/tokenizer/split.h"
#include "server/tokenizer/unicode.h"
#include "server/tokenizer/utf8.h"

namespace tessera::tokenizer {
namespace {

// Cuts every piece with `segments_of(text)` and `behavior`; sub-pieces keep `at_origin` only if
// they start where their parent started.
void SplitPieces(std::vector<PreToken>* pieces,
                 const std::function<std::vector<Segment>(const std::string&)>& segments_of, SplitBehavior behavior) {
  std::vector<PreToken> out;
  out.reserve(pieces->size());
  for (PreToken& piece : *pieces) {
    const auto ranges = ApplySplitBehavior(segments_of(piece.text), behavior);
    for (const auto& [start, end] : ranges) {
      out.push_back({piece.text.substr(start, end - start), piece.at_origin && start == 0});
    }
  }
  *pieces = std::move(out);
}

// One segment per character, flagged by `pred` (the per-character patterns of the reference).
std::vector<Segment> CharSegments(const std::string& text, bool (*pred)(char32_t)) {
  std::vector<Segment> segs;
  size_t last = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t start = i;
    const char32_t c = DecodeUtf8(text, &i);
    if (pred(c)) {
      if (last < start) segs.push_back({last, start, false});
      segs.push_back({start, i, true});
      last = i;
    }
  }
  if (last < text.size()) segs.push_back({last, text.size(), false});
  return segs;
}

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<Regex> split)
      : add_prefix_space_(add_prefix_space), split_(std::move(split)) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    if (add_prefix_space_) {
      for (PreToken& p : *pieces) {
        if (p.text.empty() || p.text[0] != ' ') p.text = " " + p.text;
      }
    }
    if (split_ != nullptr) {
      SplitPieces(
          pieces, [this](const std::string& t) { return SegmentsFromMatches(split_->FindAll(t), t.size()); },
          SplitBehavior::kIsolated);
    }
    for (PreToken& p : *pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      AppendByteLevel(p.text, &mapped);
      p.text = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> split_;  // null when use_regex is false
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    SplitPieces(
        pieces,
        [this](const std::string& t) {
          auto segs = SegmentsFromMatches(pattern_->FindAll(t), t.size());
          if (invert_) {
            for (Segment& s : segs) s.is_match = !s.is_match;
          }
          return segs;
        },
        behavior_);
  }

 private:
  std::unique_ptr<Regex> pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    for (PreToken& p : *pieces) {
      std::string out;
      out.reserve(p.text.size() + replacement_.size());
      for (char c : p.text) {
        if (c == ' ') {
          out.append(replacement_);
        } else {
          out.push_back(c);
        }
      }
      const bool starts = out.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_origin))) {
        out = replacement_ + out;
      }
      p.text = std::move(out);
    }
    if (!split_) return;
    SplitPieces(
        pieces,
        [this](const std::string& t) {
          std::vector<std::pair<size_t, size_t>> matches;
          for (size_t pos = t.find(replacement_); pos != std::string::npos; pos = t.find(replacement_, pos)) {
            matches.emplace_back(pos, pos + replacement_.size());
            pos += replacement_.size();
          }
          return SegmentsFromMatches(matches, t.size());
        },
        SplitBehavior::kMergedWithNext);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    SplitPieces(
        pieces, [](const std::string& t) { return CharSegments(t, &IsNumeric); },
        individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }

 private:
  bool individual_;
};

class WhitespaceSplitPreTokenizer final : public PreTokenizer {
 public:
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    SplitPieces(
        pieces, [](const std::string& t) { return CharSegments(t, &IsWhiteSpace); }, SplitBehavior::kRemoved);
  }
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void PreTokenize(std::vector<PreToken>* pieces) const override {
    for (const auto& step : steps_) step->PreTokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

absl::StatusOr<PrependScheme> ParsePrependScheme(const nlohmann::json& j) {
  if (auto it = j.find("prepend_scheme"); it != j.end() && !it->is_null()) {
    const auto name = it->get<std::string>();
    if (name == "always") return PrependScheme::kAlways;
    if (name == "first") return PrependScheme::kFirst;
    if (name == "never") return PrependScheme::kNever;
    return absl::InvalidArgumentError(absl::StrCat("unsupported Metaspace prepend_scheme '", name, "'"));
  }
  // Files written before prepend_scheme existed carry add_prefix_space instead.
  return GetOr(j, "add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const nlohmann::json& j) {
  TS_ASSIGN_OR_RETURN(const std::string type, ComponentType(j, "pre_tokenizer"));
  if (type == "ByteLevel") {
    std::unique_ptr<Regex> split;
    if (GetOr(j, "use_regex", true)) {
      TS_ASSIGN_OR_RETURN(split, Regex::Compile(kGpt2SplitPattern, /*literal=*/false));
    }
    return std::make_unique<ByteLevelPreTokenizer>(GetOr(j, "add_prefix_space", true), std::move(split));
  }
  if (type == "Split") {
    TS_ASSIGN_OR_RETURN(auto pattern, ParsePattern(j.at("pattern")));
    TS_ASSIGN_OR_RETURN(const SplitBehavior behavior, ParseSplitBehavior(j.at("behavior").get<std::string>()));
    return std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior, GetOr(j, "invert", false));
  }
  if (type == "Metaspace") {
    const std::string replacement = GetOr<std::string>(j, "replacement", "\xE2\x96\x81");
    if (replacement.empty()) return absl::InvalidArgumentError("Metaspace replacement must not be empty");
    TS_ASSIGN_OR_RETURN(const PrependScheme scheme, ParsePrependScheme(j));
    return std::make_unique<MetaspacePreTokenizer>(replacement, scheme, GetOr(j, "split", true));
  }
  if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(GetOr(j, "individual_digits", false));
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplitPreTokenizer>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& item : j.at("pretokenizers")) {
      TS_ASSIGN_OR_RETURN(auto step, ParsePreTokenizer(item));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  return absl::UnimplementedError(absl::StrCat("unsupported pre_tokenizer type '", type, "'"));
}

}  // namespace tessera::tokenizer
