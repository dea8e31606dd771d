// Synthetic prompts for the serving benchmark: random sequences of common English words (about one
// token per word with byte-level BPE tokenizers such as Llama-3's or Qwen2's), or random token ids
// of an exact length. The token counts the server reports in `usage` are the ones to quote.
//
//   LengthSpec in = *ParseLengthSpec(32, 0.25, "");   // uniform in [24, 40]
//   std::vector<RequestSpec> reqs = MakeRequests({.num = 100, .input = in, .output = out, .seed = 0});
#ifndef TESSERA_BENCH_SERVE_DATASET_H_
#define TESSERA_BENCH_SERVE_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tessera::bench {

// A length drawn per request: uniform in [base*(1-range), base*(1+range)] (rounded, at least 1), or
// uniform over an explicit list when `choices` is not empty.
struct LengthSpec {
  int base = 32;
  double range = 0;
  std::vector<int> choices;
};

// `list` is "" or comma-separated positive integers ("16,32,64"); range must lie in [0, 1).
absl::StatusOr<LengthSpec> ParseLengthSpec(int base, double range, const std::string& list, const std::string& name);

struct RequestSpec {
  int input_len = 0;                // target prompt length in tokens
  int output_len = 0;               // max_tokens (with ignore_eos the exact output length)
  std::string prompt;               // words; empty when token ids are used
  std::vector<int32_t> prompt_ids;  // random ids in [id_lo, id_hi); empty when text is used
};

struct DatasetOptions {
  int num = 0;
  LengthSpec input;
  LengthSpec output;
  uint64_t seed = 0;
  bool token_ids = false;  // prompts as token ids instead of text
  // Text prompts: tokens ~= overhead_tokens + tokens_per_word * words (measured by the caller, e.g.
  // from the server's usage for two prompt lengths); words = round((input_len - overhead) / slope).
  double tokens_per_word = 1.0;
  double overhead_tokens = 0;
  int32_t id_lo = 0;
  int32_t id_hi = 0;
};

std::vector<RequestSpec> MakeRequests(const DatasetOptions& opts);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_SERVE_DATASET_H_
