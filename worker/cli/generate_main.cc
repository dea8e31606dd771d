// tessera-generate: generate text from a model directory on the CPU, streaming tokens as they come.
//
//   tessera-generate --model DIR --prompt "Once upon a time" --max-tokens 64 --temperature 0.8 --seed 1
//
// Prints the continuation on stdout as it is generated and, on stderr, prefill and decode
// throughput. --prompt-ids takes token ids instead of text (for models without a tokenizer).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "kernels/backend_registry.h"
#include "kernels/dtype.h"
#include "runtime/llm/generator.h"
#include "runtime/llm/model.h"
#include "runtime/loader/gguf.h"
#include "server/tokenizer/gguf_tokenizer.h"
#include "server/tokenizer/incremental_decoder.h"
#include "server/tokenizer/tokenizer.h"

ABSL_FLAG(std::string, model, "",
          "Hugging Face model directory (config.json, *.safetensors, tokenizer.json) or a .gguf file");
ABSL_FLAG(std::string, prompt, "", "prompt text");
ABSL_FLAG(std::string, prompt_ids, "", "comma-separated prompt token ids (instead of --prompt)");
ABSL_FLAG(int32_t, max_tokens, 64, "maximum number of new tokens");
ABSL_FLAG(double, temperature, 1.0, "sampling temperature; 0 = greedy");
ABSL_FLAG(int32_t, top_k, 0, "keep the k most likely tokens; 0 = off");
ABSL_FLAG(double, top_p, 1.0, "nucleus sampling mass; 1 = off");
ABSL_FLAG(double, min_p, 0.0, "drop tokens below min_p x the top probability; 0 = off");
ABSL_FLAG(double, repetition_penalty, 1.0, "penalty for tokens already in prompt or output; 1 = off");
ABSL_FLAG(double, presence_penalty, 0.0, "OpenAI presence penalty");
ABSL_FLAG(double, frequency_penalty, 0.0, "OpenAI frequency penalty");
ABSL_FLAG(int64_t, seed, -1, "random seed; -1 = random");
ABSL_FLAG(std::vector<std::string>, stop_token_ids, {}, "extra token ids that end generation");
ABSL_FLAG(bool, ignore_eos, false, "keep generating past end-of-sequence tokens");
ABSL_FLAG(int32_t, logprobs, -1, "print the logprob and this many alternatives per token (stderr); -1 = off");
ABSL_FLAG(int32_t, threads, 0, "CPU threads; 0 = all");
ABSL_FLAG(std::string, activations, "int8", tessera::kernels::kActivationsFlagHelp);
ABSL_FLAG(std::string, device, "cpu", tessera::kernels::kDeviceFlagHelp);
ABSL_FLAG(bool, add_special_tokens, true, "let the tokenizer add BOS and other template tokens");

namespace tessera {
namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "tessera-generate: %s\n", std::string(s.message()).c_str());
  return 1;
}

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text, const char* flag) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(std::string("--") + flag + ": not a token id: '" + std::string(part) + "'");
    }
    ids.push_back(id);
  }
  return ids;
}

int Main() {
  const std::string dir = absl::GetFlag(FLAGS_model);
  if (dir.empty()) return Fail(absl::InvalidArgumentError("--model is required"));
  kernels::Activations activations;
  if (!kernels::ParseActivations(absl::GetFlag(FLAGS_activations), &activations)) {
    return Fail(absl::InvalidArgumentError(kernels::ActivationsFlagError(absl::GetFlag(FLAGS_activations))));
  }
  const absl::StatusOr<kernels::Device> device = kernels::ParseDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) return Fail(device.status());
  auto model = llm::Model::Load(
      dir, {.num_threads = absl::GetFlag(FLAGS_threads), .activations = activations, .device = *device});
  if (!model.ok()) return Fail(model.status());

  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::vector<int32_t> prompt;
  if (!absl::GetFlag(FLAGS_prompt_ids).empty()) {
    auto ids = ParseIds(absl::GetFlag(FLAGS_prompt_ids), "prompt_ids");
    if (!ids.ok()) return Fail(ids.status());
    prompt = *std::move(ids);
  } else {
    auto gguf = loader::FindGgufModelFile(dir);
    if (!gguf.ok()) return Fail(gguf.status());
    auto t = *gguf ? tokenizer::GgufTokenizerFromFile(**gguf) : tokenizer::Tokenizer::FromFile(dir + "/tokenizer.json");
    if (!t.ok()) return Fail(t.status());
    tok = *std::move(t);
    prompt = tok->Encode(absl::GetFlag(FLAGS_prompt), absl::GetFlag(FLAGS_add_special_tokens));
  }

  llm::SamplingParams params;
  params.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  params.top_k = absl::GetFlag(FLAGS_top_k);
  params.top_p = static_cast<float>(absl::GetFlag(FLAGS_top_p));
  params.min_p = static_cast<float>(absl::GetFlag(FLAGS_min_p));
  params.repetition_penalty = static_cast<float>(absl::GetFlag(FLAGS_repetition_penalty));
  params.presence_penalty = static_cast<float>(absl::GetFlag(FLAGS_presence_penalty));
  params.frequency_penalty = static_cast<float>(absl::GetFlag(FLAGS_frequency_penalty));
  if (absl::GetFlag(FLAGS_seed) >= 0) params.seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
  auto stops = ParseIds(absl::StrJoin(absl::GetFlag(FLAGS_stop_token_ids), ","), "stop_token_ids");
  if (!stops.ok()) return Fail(stops.status());
  params.stop_token_ids = *std::move(stops);
  params.ignore_eos = absl::GetFlag(FLAGS_ignore_eos);
  params.logprobs = absl::GetFlag(FLAGS_logprobs);
  params.max_tokens = absl::GetFlag(FLAGS_max_tokens);

  std::unique_ptr<tokenizer::IncrementalDecoder> decoder;
  if (tok) decoder = std::make_unique<tokenizer::IncrementalDecoder>(*tok, /*skip_special_tokens=*/true);
  llm::Generator gen(model->get(), {});
  absl::Status s = gen.Run({{.prompt = prompt, .params = params}}, [&](const llm::Generator::TokenEvent& e) {
    if (decoder) {
      std::fputs(decoder->Add(e.token.id).c_str(), stdout);
    } else {
      std::printf("%d ", e.token.id);
    }
    std::fflush(stdout);
    if (params.logprobs >= 0) {
      std::fprintf(stderr, "[token %d logprob %.4f", e.token.id, e.token.logprob);
      for (const auto& [id, lp] : e.token.top_logprobs) std::fprintf(stderr, " | %d:%.4f", id, lp);
      std::fprintf(stderr, "]\n");
    }
  });
  if (decoder) std::fputs(decoder->Flush().c_str(), stdout);
  std::printf("\n");
  if (!s.ok()) return Fail(s);
  const auto& st = gen.stats();
  std::fprintf(stderr, "prefill: %lld tokens in %.3f s (%.1f tok/s); decode: %lld tokens in %.3f s (%.1f tok/s)\n",
               static_cast<long long>(st.prefill_tokens), st.prefill_seconds,
               st.prefill_seconds > 0 ? st.prefill_tokens / st.prefill_seconds : 0.0,
               static_cast<long long>(st.decode_tokens), st.decode_seconds,
               st.decode_seconds > 0 ? st.decode_tokens / st.decode_seconds : 0.0);
  return 0;
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("tessera-generate --model DIR --prompt TEXT [sampling flags]");
  absl::ParseCommandLine(argc, argv);
  return tessera::Main();
}
