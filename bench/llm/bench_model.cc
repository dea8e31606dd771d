// Prefill and decode throughput of a whole model on its backend (--device), with the machine's limits measured in
// the same run as the yardsticks:
//   decode  tok/s vs the memory bound  (streaming-read GB/s ÷ bytes of weights read per token)
//   prefill tok/s as GFLOP/s (2 × matmul parameters per token) vs OpenBLAS sgemm on a layer-sized
//           product [prompt, hidden] × [hidden, intermediate]
//
//   bench_model --model DIR [--prompt_tokens 512] [--decode_tokens 128] [--threads 1,2] [--batch 1,8,64]
//               [--runs 5] [--device cpu|cuda]
// With a batch of B, B sequences of the same prompt are prefilled in one step and then decoded
// together (B tokens per step); the memory bound of a step is then B tokens per pass over the weights.
// Make a ~100M-parameter Llama with: python3 tools/make_random_llama.py /tmp/llama-100m
#include <algorithm>
#include <chrono>
#include <cstdio>
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
ABSL_FLAG(std::string, batch, "1", "comma-separated numbers of sequences decoded together");
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

int Main() {
  const std::string dir = absl::GetFlag(FLAGS_model);
  const int64_t prompt_len = absl::GetFlag(FLAGS_prompt_tokens);
  const int64_t decode = absl::GetFlag(FLAGS_decode_tokens);
  const int runs = absl::GetFlag(FLAGS_runs);
  auto ints = [](const std::string& list) {
    std::vector<int> out;
    for (auto part : absl::StrSplit(list, ',')) {
      int v;
      if (absl::SimpleAtoi(part, &v) && v > 0) out.push_back(v);
    }
    return out;
  };
  const std::vector<int> thread_counts = ints(absl::GetFlag(FLAGS_threads));
  const std::vector<int> batches = ints(absl::GetFlag(FLAGS_batch));
  double weight_bytes = 0;

  std::printf("%-8s %6s %12s %12s %14s %10s %12s %12s %10s\n", "threads", "batch", "prefill t/s", "prefill GF/s",
              "sgemm GF/s", "ratio", "decode t/s", "bound t/s", "ratio");
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

    // Bytes a decode step reads: what the backend holds for the weights.
    weight_bytes = static_cast<double>((*model)->weight_bytes());
    const double sgemm = SgemmGflops(threads, prompt_len, c.hidden_size, c.ExpertWidth());
    const double probe = (*model)->backend()->device().is_cpu() ? ReadProbeGBps((*model)->pool()) : 0.0;
    std::mt19937 rng(1);
    std::vector<int32_t> prompt(prompt_len);
    for (auto& t : prompt) t = static_cast<int32_t>(rng() % c.vocab_size);
    for (const int batch : batches) {
      const int64_t per_seq = (prompt_len + decode) / 16 + 2;
      auto made = (*model)->CreateKvCache(per_seq * batch, 16);
      if (!made.ok()) {
        std::fprintf(stderr, "bench_model: %s\n", std::string(made.status().message()).c_str());
        return 1;
      }
      llm::PagedKvCache& cache = *made;
      std::vector<std::vector<int32_t>> tables(batch, std::vector<int32_t>(per_seq));
      for (int b = 0; b < batch; ++b) {
        for (int64_t i = 0; i < per_seq; ++i) tables[b][i] = static_cast<int32_t>(b * per_seq + i);
      }
      std::vector<double> prefill_s, decode_s;
      std::vector<float> logits;
      std::vector<llm::SequenceInput> in(batch);
      std::vector<int32_t> next(batch, 0);
      for (int r = 0; r < runs; ++r) {
        for (int b = 0; b < batch; ++b) in[b] = {.tokens = prompt, .start_pos = 0, .block_table = tables[b]};
        auto t0 = Clock::now();
        if (!(*model)->Forward(in, cache, &logits).ok()) return 1;
        prefill_s.push_back(Seconds(t0, Clock::now()));
        t0 = Clock::now();
        for (int64_t i = 0; i < decode; ++i) {
          for (int b = 0; b < batch; ++b) {
            const float* row = logits.data() + b * c.vocab_size;
            next[b] = static_cast<int32_t>(std::max_element(row, row + c.vocab_size) - row);
            in[b] = {.tokens = {&next[b], 1}, .start_pos = prompt_len + i, .block_table = tables[b]};
          }
          if (!(*model)->Forward(in, cache, &logits).ok()) return 1;
        }
        decode_s.push_back(Seconds(t0, Clock::now()));
      }
      const double prefill_tps = batch * prompt_len / Median(prefill_s);
      const double prefill_gflops = prefill_tps * 2 * matmul_params / 1e9;
      const double decode_tps = batch * decode / Median(decode_s);
      const double bound = batch * probe * 1e9 / weight_bytes;
      std::printf("%-8d %6d %12.1f %12.1f %14.1f %10.2f %12.1f %12.1f %10.2f\n", threads, batch, prefill_tps,
                  prefill_gflops, sgemm, sgemm > 0 ? prefill_gflops / sgemm : 0.0, decode_tps, bound,
                  bound > 0 ? decode_tps / bound : 0.0);
    }
  }
  std::printf(
      "(medians of %d runs; %lld-token prompt, %lld decode steps; weights held %.1f MB; bound: the CPU read "
      "probe, 0 on a GPU)\n",
      runs, static_cast<long long>(prompt_len), static_cast<long long>(decode), weight_bytes / 1e6);
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return tessera::Main();
}
