// tessera-bench: load generator for tesserad in the spirit of `vllm bench serve`. Streams
// completions over OpenAI REST (SSE) or tessera.v1 gRPC, or token ids straight to a worker's
// tessera.engine.v1 service, or unary Tokenize calls, and reports throughput, TTFT, ITL, TPOT and
// end-to-end latency percentiles.
//
//   tessera-bench --api rest --url http://127.0.0.1:8000 --concurrency 16 --num-prompts 200
//                 --input-len 32 --output-len 32     (one command)
//   tessera-bench --api grpc --grpc 127.0.0.1:50051 --request-rate 20 --max-concurrency 64
//   tessera-bench --api engine --grpc 127.0.0.1:7001 --concurrency 16 --token-ids
//   tessera-bench --api tokenize --grpc 127.0.0.1:50051 --concurrency 16 --num-prompts 20000
//
// Flags may be written with dashes or underscores (--num-prompts = --num_prompts).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/serve/client.h"
#include "bench/serve/dataset.h"
#include "bench/serve/runner.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, api, "rest",
          "rest (OpenAI SSE) | grpc (tessera.v1) | engine (tessera.engine.v1, token ids) | tokenize (unary tessera.v1 "
          "Tokenize)");
ABSL_FLAG(std::string, url, "http://127.0.0.1:8000", "REST base URL");
ABSL_FLAG(std::string, grpc, "127.0.0.1:50051", "gRPC host:port (grpc, engine and tokenize APIs)");
ABSL_FLAG(std::string, endpoint, "completions", "completions | chat (rest and grpc)");
ABSL_FLAG(std::string, model, "", "model name; default: the first one the server lists");
ABSL_FLAG(std::string, api_key, "", "sent as 'Authorization: Bearer <key>'");
ABSL_FLAG(
    int32_t, concurrency, 0,
    "fixed concurrency: N requests in flight, next sent when one ends (= --request-rate inf --max-concurrency N)");
ABSL_FLAG(std::string, request_rate, "inf", "Poisson arrivals at this many requests/s; inf sends all at once");
ABSL_FLAG(int32_t, max_concurrency, 0, "most requests in flight; 0 = no limit");
ABSL_FLAG(int32_t, num_prompts, 100, "requests in the measured run");
ABSL_FLAG(int32_t, warmup, 0, "requests sent (and not counted) before the measured run");
ABSL_FLAG(int32_t, input_len, 32, "prompt length in tokens (words for text prompts)");
ABSL_FLAG(double, input_len_range, 0, "prompt length uniform in [len*(1-r), len*(1+r)]");
ABSL_FLAG(std::string, input_lens, "", "comma-separated prompt lengths drawn uniformly (overrides --input-len)");
ABSL_FLAG(int32_t, output_len, 32, "max_tokens; with --ignore-eos the exact output length");
ABSL_FLAG(double, output_len_range, 0, "output length uniform in [len*(1-r), len*(1+r)]");
ABSL_FLAG(std::string, output_lens, "", "comma-separated output lengths drawn uniformly (overrides --output-len)");
ABSL_FLAG(bool, ignore_eos, true, "keep generating past EOS so that output lengths are exact");
ABSL_FLAG(double, temperature, 0, "sampling temperature (0 = greedy)");
ABSL_FLAG(bool, token_ids, false,
          "prompts as random token ids of exact length (grpc completions; always on for engine)");
ABSL_FLAG(bool, calibrate, true,
          "text prompts: measure tokens per word with two 1-token requests first, so that prompt token counts match "
          "--input-len");
ABSL_FLAG(uint64_t, seed, 0, "seed of the prompts, lengths and arrival times");
ABSL_FLAG(double, timeout, 600, "seconds one request may take");
ABSL_FLAG(int32_t, grpc_channels, 0, "gRPC connections shared by the workers; 0 = one per 32 workers");
ABSL_FLAG(bool, keep_alive, true,
          "rest: reuse each worker's HTTP connection (as SDK clients do); false opens one per request");
ABSL_FLAG(std::string, json, "", "also write the results to this file as JSON");
ABSL_FLAG(std::string, label, "", "free text stored in the JSON (e.g. the server's configuration)");

namespace tessera::bench {
namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "tessera-bench: %s\n", msg.c_str());
  return 2;
}

nlohmann::ordered_json SummaryJson(const Summary& s) {
  return {{"count", s.count}, {"mean", s.mean}, {"std", s.stddev}, {"min", s.min},
          {"p50", s.p50},     {"p90", s.p90},   {"p99", s.p99},    {"max", s.max}};
}

void PrintLine(const char* name, const std::string& value) { std::printf("%-44s %s\n", name, value.c_str()); }
void PrintNum(const char* name, double v, int decimals = 2) { PrintLine(name, absl::StrFormat("%.*f", decimals, v)); }
void PrintSummary(const char* title, const char* key, const Summary& s) {
  // A rule with the title in the middle, as vllm prints it.
  const std::string t = absl::StrCat(" ", title, " ");
  const size_t width = 50;
  const size_t left = t.size() < width ? (width - t.size()) / 2 : 0;
  const size_t right = t.size() < width ? width - t.size() - left : 0;
  std::printf("%s%s%s\n", std::string(left, '-').c_str(), t.c_str(), std::string(right, '-').c_str());
  PrintNum(absl::StrCat("Mean ", key, " (ms):").c_str(), s.mean);
  PrintNum(absl::StrCat("Median ", key, " (ms):").c_str(), s.p50);
  PrintNum(absl::StrCat("P90 ", key, " (ms):").c_str(), s.p90);
  PrintNum(absl::StrCat("P99 ", key, " (ms):").c_str(), s.p99);
}

// Sends two 1-token requests with 1- and 257-word prompts and fits tokens = overhead + slope * words
// from the prompt_tokens the server reports (the long prompt averages the words' token counts; the
// short one gives the fixed part, e.g. a chat template). Returns {slope, overhead}.
absl::StatusOr<std::pair<double, double>> Calibrate(ClientFactory& factory) {
  std::unique_ptr<Client> client = factory.NewClient(0);
  const int words[2] = {1, 257};
  int tokens[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    DatasetOptions d;
    d.num = 1;
    d.input.base = words[k];
    d.output.base = 1;
    d.seed = 0xca1 + static_cast<uint64_t>(k);
    const RequestResult r = client->Send(MakeRequests(d)[0], absl::StrCat("bench-calibrate-", k));
    if (!r.ok) {
      return absl::UnavailableError(absl::StrCat("calibration request failed: ", r.error_kind, " ", r.error_detail));
    }
    if (r.prompt_tokens <= 0) return absl::UnavailableError("calibration: the server reported no prompt_tokens");
    tokens[k] = r.prompt_tokens;
  }
  const double slope = std::max(0.1, static_cast<double>(tokens[1] - tokens[0]) / (words[1] - words[0]));
  return std::make_pair(slope, tokens[0] - slope * words[0]);
}

int Run() {
  // ---- Flags -------------------------------------------------------------------------------------
  TargetOptions target;
  const std::string api = absl::GetFlag(FLAGS_api);
  if (api == "rest") {
    target.api = Api::kRest;
  } else if (api == "grpc") {
    target.api = Api::kGrpc;
  } else if (api == "engine") {
    target.api = Api::kEngine;
  } else if (api == "tokenize") {
    target.api = Api::kTokenize;
  } else {
    return Fail("--api must be rest, grpc, engine or tokenize, got '" + api + "'");
  }
  const std::string endpoint = absl::GetFlag(FLAGS_endpoint);
  if (endpoint == "completions") {
    target.endpoint = Endpoint::kCompletions;
  } else if (endpoint == "chat") {
    target.endpoint = Endpoint::kChat;
  } else {
    return Fail("--endpoint must be completions or chat, got '" + endpoint + "'");
  }
  target.url = absl::GetFlag(FLAGS_url);
  target.grpc_target = absl::GetFlag(FLAGS_grpc);
  target.model = absl::GetFlag(FLAGS_model);
  target.api_key = absl::GetFlag(FLAGS_api_key);
  target.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  target.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  target.timeout_s = absl::GetFlag(FLAGS_timeout);
  target.rest_keep_alive = absl::GetFlag(FLAGS_keep_alive);
  if (!(target.timeout_s > 0)) return Fail("--timeout must be > 0");
  if (!(target.temperature >= 0)) return Fail("--temperature must be >= 0");

  RunOptions run_opts;
  run_opts.seed = absl::GetFlag(FLAGS_seed);
  const std::string rate = absl::GetFlag(FLAGS_request_rate);
  if (rate == "inf") {
    run_opts.request_rate = std::numeric_limits<double>::infinity();
  } else if (!absl::SimpleAtod(rate, &run_opts.request_rate) || !(run_opts.request_rate > 0)) {
    return Fail("--request-rate must be a positive number or inf, got '" + rate + "'");
  }
  run_opts.max_concurrency = absl::GetFlag(FLAGS_max_concurrency);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  if (concurrency < 0 || run_opts.max_concurrency < 0) return Fail("--concurrency and --max-concurrency must be >= 0");
  if (concurrency > 0) {
    if (rate != "inf") return Fail("--concurrency and --request-rate exclude each other (use --max-concurrency)");
    run_opts.max_concurrency = concurrency;
  }
  const int num_prompts = absl::GetFlag(FLAGS_num_prompts);
  const int warmup = absl::GetFlag(FLAGS_warmup);
  if (num_prompts < 1) return Fail("--num-prompts must be >= 1");
  if (warmup < 0) return Fail("--warmup must be >= 0");
  auto in_spec = ParseLengthSpec(absl::GetFlag(FLAGS_input_len), absl::GetFlag(FLAGS_input_len_range),
                                 absl::GetFlag(FLAGS_input_lens), "input");
  if (!in_spec.ok()) return Fail(std::string(in_spec.status().message()));
  auto out_spec = ParseLengthSpec(absl::GetFlag(FLAGS_output_len), absl::GetFlag(FLAGS_output_len_range),
                                  absl::GetFlag(FLAGS_output_lens), "output");
  if (!out_spec.ok()) return Fail(std::string(out_spec.status().message()));
  const int workers_planned = std::min(
      kMaxWorkers, run_opts.max_concurrency > 0 ? std::min(run_opts.max_concurrency, num_prompts) : num_prompts);
  target.grpc_channels = absl::GetFlag(FLAGS_grpc_channels);
  if (target.grpc_channels < 0) return Fail("--grpc-channels must be >= 0");
  if (target.grpc_channels == 0) target.grpc_channels = (workers_planned + 31) / 32;
  bool token_ids = absl::GetFlag(FLAGS_token_ids) || target.api == Api::kEngine;
  if (token_ids && (target.api == Api::kRest || target.api == Api::kTokenize || target.endpoint == Endpoint::kChat)) {
    return Fail("--token-ids works with --api grpc --endpoint completions and --api engine only");
  }

  // ---- Target --------------------------------------------------------------------------------------
  auto factory = target.api == Api::kRest ? MakeRestClientFactory(target) : MakeGrpcClientFactory(target);
  if (!factory.ok()) return Fail(std::string(factory.status().message()));
  const TargetInfo info = (*factory)->info();
  DatasetOptions data;
  data.input = *in_spec;
  data.output = *out_spec;
  data.token_ids = token_ids;
  if (token_ids) {
    if (info.vocab_size <= 1) return Fail("the server did not report its vocabulary size; token ids need it");
    // Ordinary ids: above the byte range, below the added/special tokens at the top of the vocabulary.
    data.id_lo = static_cast<int32_t>(std::min<int64_t>(256, info.vocab_size / 2));
    data.id_hi = static_cast<int32_t>(std::min<int64_t>(info.vocab_size * 9 / 10, 1 << 30));
  }

  if (!token_ids && target.api != Api::kTokenize && absl::GetFlag(FLAGS_calibrate)) {
    auto cal = Calibrate(**factory);
    if (!cal.ok()) return Fail(std::string(cal.status().message()));
    data.tokens_per_word = cal->first;
    data.overhead_tokens = cal->second;
    std::fprintf(stderr, "tessera-bench: prompt tokens ~= %.1f + %.3f per word\n", data.overhead_tokens,
                 data.tokens_per_word);
  }

  const std::string where = target.api == Api::kRest ? target.url : target.grpc_target;
  std::fprintf(stderr, "tessera-bench: %s %s at %s, model '%s', %d prompts, %s\n", api.c_str(),
               target.api == Api::kTokenize ? "Tokenize" : endpoint.c_str(), where.c_str(), info.model.c_str(),
               num_prompts,
               run_opts.max_concurrency > 0 && rate == "inf"
                   ? absl::StrCat("concurrency ", run_opts.max_concurrency).c_str()
                   : absl::StrCat("request rate ", rate, ", max concurrency ",
                                  run_opts.max_concurrency > 0 ? absl::StrCat(run_opts.max_concurrency) : "none")
                         .c_str());

  if (warmup > 0) {
    data.num = warmup;
    data.seed = run_opts.seed + 0x5eed;
    const std::vector<RequestSpec> warm = MakeRequests(data);
    RunOptions wopts = run_opts;
    wopts.request_rate = std::numeric_limits<double>::infinity();
    wopts.id_prefix = "bench-warmup";
    const Report wrep = MakeReport(RunRequests(**factory, warm, wopts), warm);
    std::fprintf(stderr, "tessera-bench: warm-up %d requests, %d failed\n", warmup, wrep.failed);
  }

  data.num = num_prompts;
  data.seed = run_opts.seed;
  const std::vector<RequestSpec> specs = MakeRequests(data);
  const RunResult run = RunRequests(**factory, specs, run_opts);
  const Report rep = MakeReport(run, specs);

  // ---- Report --------------------------------------------------------------------------------------
  const bool streaming = target.api != Api::kTokenize;
  std::printf("============ Serving Benchmark Result ============\n");
  PrintLine("API:", target.api == Api::kTokenize ? "tokenize (unary)" : absl::StrCat(api, " ", endpoint));
  PrintLine("Model:", info.model);
  PrintLine("Concurrency / rate:", run_opts.max_concurrency > 0 && rate == "inf"
                                       ? absl::StrCat("concurrency ", run_opts.max_concurrency)
                                       : absl::StrCat("rate ", rate, ", max concurrency ", run_opts.max_concurrency));
  PrintLine("Successful requests:", absl::StrCat(rep.completed));
  PrintLine("Failed requests:", absl::StrCat(rep.failed));
  for (const auto& [kind, count] : rep.errors) PrintLine(absl::StrCat("  ", kind, ":").c_str(), absl::StrCat(count));
  if (!rep.first_error_detail.empty()) PrintLine("  first error:", rep.first_error_detail);
  PrintNum("Benchmark duration (s):", rep.duration_s);
  PrintNum("Request throughput (req/s):", rep.request_throughput);
  if (streaming) {
    PrintLine("Total input tokens:", absl::StrCat(rep.total_input_tokens));
    PrintLine("Total generated tokens:", absl::StrCat(rep.total_output_tokens));
    PrintNum("Mean input tokens per request:", rep.input_tokens.mean, 1);
    PrintLine("Output length != max_tokens:", absl::StrCat(rep.output_len_mismatches));
    PrintNum("Output token throughput (tok/s):", rep.output_throughput);
    PrintNum("Total token throughput (tok/s):", rep.total_throughput);
    PrintSummary("Time to First Token", "TTFT", rep.ttft);
    PrintSummary("Time per Output Token (excl. 1st token)", "TPOT", rep.tpot);
    PrintSummary("Inter-token Latency", "ITL", rep.itl);
  }
  PrintSummary("End-to-end Latency", "E2EL", rep.e2e);
  std::printf("%s\n", std::string(50, '-').c_str());
  PrintLine("Client threads:", absl::StrCat(rep.workers));
  PrintLine("Client CPU (s, % of one core):",
            absl::StrFormat("%.2f s, %.1f%%", rep.client_cpu_s, rep.client_cpu_percent));
  std::printf("==================================================\n");
  std::fflush(stdout);

  const std::string json_path = absl::GetFlag(FLAGS_json);
  if (!json_path.empty()) {
    nlohmann::ordered_json j;
    j["label"] = absl::GetFlag(FLAGS_label);
    j["api"] = api;
    j["endpoint"] = target.api == Api::kTokenize ? "tokenize" : endpoint;
    j["target"] = where;
    j["model"] = info.model;
    j["num_prompts"] = num_prompts;
    j["warmup"] = warmup;
    j["request_rate"] = rate;
    j["max_concurrency"] = run_opts.max_concurrency;
    j["input_len"] = absl::GetFlag(FLAGS_input_len);
    j["output_len"] = absl::GetFlag(FLAGS_output_len);
    j["token_ids"] = token_ids;
    j["keep_alive"] = target.rest_keep_alive;
    j["seed"] = run_opts.seed;
    j["duration_s"] = rep.duration_s;
    j["completed"] = rep.completed;
    j["failed"] = rep.failed;
    j["errors"] = rep.errors;
    j["first_error"] = rep.first_error_detail;
    j["request_throughput"] = rep.request_throughput;
    j["total_input_tokens"] = rep.total_input_tokens;
    j["total_output_tokens"] = rep.total_output_tokens;
    j["output_len_mismatches"] = rep.output_len_mismatches;
    j["output_throughput"] = rep.output_throughput;
    j["total_token_throughput"] = rep.total_throughput;
    j["input_tokens"] = SummaryJson(rep.input_tokens);
    j["output_tokens"] = SummaryJson(rep.output_tokens);
    j["ttft_ms"] = SummaryJson(rep.ttft);
    j["tpot_ms"] = SummaryJson(rep.tpot);
    j["itl_ms"] = SummaryJson(rep.itl);
    j["e2el_ms"] = SummaryJson(rep.e2e);
    j["client_threads"] = rep.workers;
    j["client_cpu_s"] = rep.client_cpu_s;
    j["client_cpu_percent"] = rep.client_cpu_percent;
    std::ofstream out(json_path);
    out << j.dump(2) << "\n";
    if (!out) return Fail("cannot write --json " + json_path);
  }
  return rep.failed == 0 ? 0 : 1;
}

// absl flags want underscores; accept --foo-bar for --foo_bar.
std::vector<char*> NormalizeFlagNames(int argc, char** argv, std::vector<std::string>* storage) {
  storage->reserve(static_cast<size_t>(argc));
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && a.size() > 2 && a[0] == '-' && a[1] == '-') {
      const size_t eq = a.find('=');
      for (size_t j = 2; j < std::min(eq, a.size()); ++j) {
        if (a[j] == '-') a[j] = '_';
      }
    }
    storage->push_back(std::move(a));
  }
  std::vector<char*> out;
  for (std::string& s : *storage) out.push_back(s.data());
  return out;
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "tessera-bench --api rest|grpc|engine|tokenize [--url URL | --grpc HOST:PORT] "
      "[--concurrency N | --request-rate R --max-concurrency N] --num-prompts N ...\n"
      "Load generator for tesserad: throughput, TTFT, ITL, TPOT and E2E latency percentiles.");
  std::vector<std::string> storage;
  std::vector<char*> args = tessera::bench::NormalizeFlagNames(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return tessera::bench::Run();
}
