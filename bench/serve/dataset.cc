#include "bench/serve/dataset.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tessera::bench {
namespace {

// Common short words: with a leading space each is a single token in GPT-2-style BPE vocabularies.
constexpr const char* kWords[] = {
    "the",     "of",      "and",     "to",       "in",        "is",         "that",      "for",   "it",      "as",
    "was",     "with",    "be",      "by",       "on",        "not",        "he",        "this",  "are",     "or",
    "his",     "from",    "at",      "which",    "but",       "have",       "an",        "had",   "they",    "you",
    "were",    "their",   "one",     "all",      "we",        "can",        "her",       "has",   "there",   "been",
    "if",      "more",    "when",    "will",     "would",     "who",        "so",        "no",    "time",    "people",
    "year",    "way",     "day",     "man",      "thing",     "woman",      "life",      "child", "world",   "school",
    "state",   "family",  "group",   "country",  "problem",   "hand",       "part",      "place", "case",    "week",
    "company", "system",  "program", "question", "work",      "government", "number",    "night", "point",   "home",
    "water",   "room",    "mother",  "area",     "money",     "story",      "fact",      "month", "lot",     "right",
    "study",   "book",    "eye",     "job",      "word",      "business",   "issue",     "side",  "kind",    "head",
    "house",   "service", "friend",  "father",   "power",     "hour",       "game",      "line",  "end",     "member",
    "law",     "car",     "city",    "name",     "president", "team",       "minute",    "idea",  "body",    "good",
    "new",     "first",   "last",    "long",     "great",     "little",     "own",       "other", "old",     "big",
    "high",    "small",   "large",   "next",     "early",     "young",      "important", "few",   "public",  "bad",
    "same",    "able",    "make",    "know",     "take",      "see",        "come",      "think", "look",    "want",
    "give",    "use",     "find",    "tell",     "ask",       "seem",       "feel",      "try",   "leave",   "call",
    "keep",    "begin",   "help",    "show",     "hear",      "play",       "run",       "move",  "live",    "believe",
    "bring",   "happen",  "write",   "sit",      "stand",     "lose",       "pay",       "meet",  "include", "light",
    "river",   "stone",   "green",   "blue",     "red",       "music",      "paper",     "table", "window",  "garden",
    "street",
};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

int Draw(const LengthSpec& spec, std::mt19937_64& rng) {
  if (!spec.choices.empty()) {
    std::uniform_int_distribution<size_t> pick(0, spec.choices.size() - 1);
    return spec.choices[pick(rng)];
  }
  if (spec.range <= 0) return std::max(1, spec.base);
  const int lo = std::max(1, static_cast<int>(std::lround(spec.base * (1.0 - spec.range))));
  const int hi = std::max(lo, static_cast<int>(std::lround(spec.base * (1.0 + spec.range))));
  std::uniform_int_distribution<int> len(lo, hi);
  return len(rng);
}

}  // namespace

absl::StatusOr<LengthSpec> ParseLengthSpec(int base, double range, const std::string& list, const std::string& name) {
  LengthSpec spec;
  spec.base = base;
  spec.range = range;
  if (base < 1) return absl::InvalidArgumentError(absl::StrCat("--", name, "-len must be >= 1, got ", base));
  if (!(range >= 0 && range < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, "-len-range must be in [0, 1), got ", range));
  }
  if (list.empty()) return spec;
  for (absl::string_view item : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    int v = 0;
    if (!absl::SimpleAtoi(item, &v) || v < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, "-lens: '", item, "' is not a positive integer (expected e.g. 16,32,64)"));
    }
    spec.choices.push_back(v);
  }
  if (spec.choices.empty()) return absl::InvalidArgumentError(absl::StrCat("--", name, "-lens is empty"));
  return spec;
}

std::vector<RequestSpec> MakeRequests(const DatasetOptions& opts) {
  std::mt19937_64 rng(opts.seed);
  std::uniform_int_distribution<size_t> word(0, kNumWords - 1);
  std::vector<RequestSpec> out;
  out.reserve(static_cast<size_t>(std::max(0, opts.num)));
  for (int i = 0; i < opts.num; ++i) {
    RequestSpec r;
    r.input_len = Draw(opts.input, rng);
    r.output_len = Draw(opts.output, rng);
    if (opts.token_ids) {
      std::uniform_int_distribution<int32_t> id(opts.id_lo, std::max(opts.id_lo, opts.id_hi - 1));
      r.prompt_ids.resize(static_cast<size_t>(r.input_len));
      for (int32_t& t : r.prompt_ids) t = id(rng);
    } else {
      // The first word has no leading space, so it may take one more token than the others.
      const double slope = opts.tokens_per_word > 0 ? opts.tokens_per_word : 1.0;
      const int words = std::max(1, static_cast<int>(std::lround((r.input_len - opts.overhead_tokens) / slope)));
      r.prompt.reserve(static_cast<size_t>(words) * 7);
      for (int w = 0; w < words; ++w) {
        if (w > 0) r.prompt.push_back(' ');
        r.prompt.append(kWords[word(rng)]);
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace tessera::bench
