// Prefill and decode throughput of a whole model on the CPU, with the machine's limits measured in
// the same run as the yardsticks:
//   decode  tok/s vs the memory bound  (streaming-read GB/s ÷ bytes of weights read per token)
//   prefill tok/s as GFLOP/s (2 × matmul parameters per token) vs OpenBLAS sgemm on a layer-sized
//           product [prompt, hidden] × [hidden, intermediate]
//
//   bench_model --model DIR [--prompt-tokens 512] [--decode-tokens 128] [--threads 1,2] [--runs 5]
// Make a ~100M-parameter Llama with: python3 tools/make_random_llama.py /tmp/llama-100m
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/kernels/stream_probe.h"
#include "runtime/llm/model.h"

#if TESSERA_BENCH_OPENBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
#endif

ABSL_FLAG(std::string, model, "", "model directory");
ABSL_FLAG(int64_t, prompt_tokens, 512, "prompt length for the prefill measurement");
ABSL_FLAG(int64_t, decode_tokens, 128, "decode steps");
ABSL_FLAG(std::string, threads, "1,2", "comma-separated thread counts");
ABSL_FLAG(int, runs, 5, "repetitions; medians are reported");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N (the memory-bound and sgemm yardsticks are CPU ones)");

namespace tessera {
namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double ReadProbeGBps(kernels::ThreadPool* pool) {
  const int64_t n = int64_t{1} << 26;  // 256 MiB of f32, far beyond the caches
  std::vector<float> buf(n, 1.0f);
  double best = 0;
  volatile float sink = 0;
  for (int r = 0; r < 5; ++r) {
    auto t0 = Clock::now();
    sink = sink + bench::StreamSum(pool, buf.data(), n);
    best = std::max(best, n * 4.0 / Seconds(t0, Clock::now()) / 1e9);
  }
  return best;
}

double SgemmGflops(int threads, int64_t m, int64_t k, int64_t n) {
#if TESSERA_BENCH_OPENBLAS
  openblas_set_num_threads(threads);
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n);
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    auto t0 = Clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n);
    best = std::max(best, 2.0 * m * n * k / Seconds(t0, Clock::now()) / 1e9);
  }
  return best;
#else
  return 0;
#endif
}

int64_t CheckpointBytes(const std::string& dir) {
  int64_t total = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".safetensors") total += static_cast<int64_t>(e.file_size());
  }
  return total;
}

int Main() {
  const std::string dir = absl::GetFlag(FLAGS_model);
  const int64_t prompt_len = absl::GetFlag(FLAGS_prompt_tokens);
  const int64_t decode = absl::GetFlag(FLAGS_decode_tokens);
  const int runs = absl::GetFlag(FLAGS_runs);
  std::vector<int> thread_counts;
  for (auto part : absl::StrSplit(absl::GetFlag(FLAGS_threads), ',')) {
    int t;
    if (absl::SimpleAtoi(part, &t) && t > 0) thread_counts.push_back(t);
  }
  const double weight_bytes = static_cast<double>(CheckpointBytes(dir));

  std::printf("%-8s %12s %12s %14s %10s %12s %12s %10s\n", "threads", "prefill t/s", "prefill GF/s", "sgemm GF/s",
              "ratio", "decode t/s", "bound t/s", "ratio");
  for (int threads : thread_counts) {
    const absl::StatusOr<kernels::Device> device = kernels::ParseDevice(absl::GetFlag(FLAGS_device));
    if (!device.ok()) {
      std::fprintf(stderr, "bench_model: %s\n", std::string(device.status().message()).c_str());
      return 2;
    }
    auto model = llm::Model::Load(dir, {.num_threads = threads, .device = *device});
    if (!model.ok()) {
      std::fprintf(stderr, "bench_model: %s\n", std::string(model.status().message()).c_str());
      return 1;
    }
    const llm::ModelConfig& c = (*model)->config();
    // Matmul parameters touched per token (attention projections, MLP or active experts, lm_head).
    const double active_experts = c.num_experts > 0 ? double(c.num_experts_per_tok) : 1.0;
    const double per_layer = c.hidden_size * c.head_dim * (2.0 * c.num_attention_heads + 2.0 * c.num_key_value_heads) +
                             3.0 * c.hidden_size * c.ExpertWidth() * active_experts;
    const double matmul_params = per_layer * c.num_hidden_layers + double(c.vocab_size) * c.hidden_size;

    std::mt19937 rng(1);
    std::vector<int32_t> prompt(prompt_len);
    for (auto& t : prompt) t = static_cast<int32_t>(rng() % c.vocab_size);
    auto made = (*model)->CreateKvCache((prompt_len + decode) / 16 + 2, 16);
    if (!made.ok()) {
      std::fprintf(stderr, "bench_model: %s\n", std::string(made.status().message()).c_str());
      return 1;
    }
    llm::PagedKvCache& cache = *made;
    std::vector<int32_t> table(cache.num_blocks());
    for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int32_t>(i);

    std::vector<double> prefill_s, decode_s;
    std::vector<float> logits;
    for (int r = 0; r < runs; ++r) {
      llm::SequenceInput in{.tokens = prompt, .start_pos = 0, .block_table = table};
      auto t0 = Clock::now();
      if (!(*model)->Forward({&in, 1}, cache, &logits).ok()) return 1;
      prefill_s.push_back(Seconds(t0, Clock::now()));
      int32_t next = 0;
      t0 = Clock::now();
      for (int64_t i = 0; i < decode; ++i) {
        next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        llm::SequenceInput step{.tokens = {&next, 1}, .start_pos = prompt_len + i, .block_table = table};
        if (!(*model)->Forward({&step, 1}, cache, &logits).ok()) return 1;
      }
      decode_s.push_back(Seconds(t0, Clock::now()));
    }
    const double prefill_tps = prompt_len / Median(prefill_s);
    const double prefill_gflops = prefill_tps * 2 * matmul_params / 1e9;
    const double sgemm = SgemmGflops(threads, prompt_len, c.hidden_size, c.ExpertWidth());
    const double decode_tps = decode / Median(decode_s);
    const double bound = ReadProbeGBps((*model)->pool()) * 1e9 / weight_bytes;
    std::printf("%-8d %12.1f %12.1f %14.1f %10.2f %12.1f %12.1f %10.2f\n", threads, prefill_tps, prefill_gflops, sgemm,
                sgemm > 0 ? prefill_gflops / sgemm : 0.0, decode_tps, bound, decode_tps / bound);
  }
  std::printf("(medians of %d runs; %lld-token prompt, %lld decode steps; weights %.1f MB)\n", runs,
              static_cast<long long>(prompt_len), static_cast<long long>(decode), weight_bytes / 1e6);
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return tessera::Main();
}
