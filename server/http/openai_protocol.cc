#include "server/http/openai_protocol.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"
#include "server/api/errors.h"

namespace tessera::server::openai {
namespace {

using json = nlohmann::json;
// Responses keep keys in the order OpenAI sends them (id, object, created, model, choices, usage).
using ojson = nlohmann::ordered_json;

// Debian's Abseil has its own string_view type, not std::string_view.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// ---- JSON reading helpers ------------------------------------------------------------------------
// Each takes the object, the key and the path used in error messages ("messages[2].name"). Absent
// and null both leave the output untouched (vLLM's Optional fields treat null as "not given").

std::string Path(std::string_view prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : absl::StrCat(Sv(prefix), ".", Sv(key));
}

std::string Index(std::string_view prefix, size_t i) { return absl::StrCat(Sv(prefix), "[", i, "]"); }

// The member `key` of `obj`, or nullptr when absent or null.
const json* Get(const json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status TypeError(std::string_view path, std::string_view want, const json& got) {
  return InvalidParam(path, absl::StrFormat("%s must be %s, got %s", path, want, got.type_name()));
}

absl::Status ReadBool(const json& obj, std::string_view key, std::string_view path, bool* out) {
  const json* v = Get(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_boolean()) return TypeError(path, "a boolean", *v);
  *out = v->get<bool>();
  return absl::OkStatus();
}

absl::Status ReadString(const json& obj, std::string_view key, std::string_view path, std::string* out) {
  const json* v = Get(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_string()) return TypeError(path, "a string", *v);
  *out = v->get<std::string>();
  return absl::OkStatus();
}

// An integer: JSON integers, or floats with an integral value (5.0), as pydantic accepts them.
absl::Status AsInt(const json& v, std::string_view path, int64_t lo, int64_t hi, int64_t* out) {
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return InvalidParam(path, absl::StrFormat("%s must be in [%d, %d], got %u", path, lo, hi, u));
    }
    x = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    // 2^63 is exactly representable; anything at or beyond it does not fit int64.
    if (!std::isfinite(d) || d != std::floor(d) || d < -9.2233720368547758e18 || d >= 9.2233720368547758e18) {
      return InvalidParam(path, absl::StrFormat("%s must be an integer, got %g", path, d));
    }
    x = static_cast<int64_t>(d);
  } else {
    return TypeError(path, "an integer", v);
  }
  if (x < lo || x > hi) return InvalidParam(path, absl::StrFormat("%s must be in [%d, %d], got %d", path, lo, hi, x));
  *out = x;
  return absl::OkStatus();
}

absl::Status ReadInt(const json& obj, std::string_view key, std::string_view path, int64_t lo, int64_t hi,
                     int64_t* out) {
  const json* v = Get(obj, key);
  if (v == nullptr) return absl::OkStatus();
  return AsInt(*v, path, lo, hi, out);
}

absl::Status ReadInt32(const json& obj, std::string_view key, std::string_view path, int64_t lo, int64_t hi,
                       int32_t* out) {
  int64_t x = *out;
  auto s = ReadInt(obj, key, path, lo, hi, &x);
  if (s.ok()) *out = static_cast<int32_t>(x);
  return s;
}

enum class Bound { kClosed, kOpen };

// A number in [lo, hi] (or (lo, hi] with kOpen on the low side); hi may be +inf.
absl::Status ReadFloat(const json& obj, std::string_view key, std::string_view path, double lo, Bound lo_bound,
                       double hi, float* out) {
  const json* v = Get(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number()) return TypeError(path, "a number", *v);
  const double d = v->get<double>();
  const bool lo_ok = lo_bound == Bound::kOpen ? d > lo : d >= lo;
  if (!std::isfinite(d) || !lo_ok || !(d <= hi)) {
    const std::string range = std::isinf(hi)
                                  ? absl::StrFormat("%s %g", lo_bound == Bound::kOpen ? ">" : ">=", lo)
                                  : absl::StrFormat("in %s%g, %g]", lo_bound == Bound::kOpen ? "(" : "[", lo, hi);
    return InvalidParam(path, absl::StrFormat("%s must be %s, got %g", path, range, d));
  }
  // Finite and within the bounds checked above, which all fit in float.
  *out = static_cast<float>(d);
  return absl::OkStatus();
}

// A value counts as "set" when it is not null, not false, and not an empty string/array/object.
bool IsSet(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string() || v.is_array() || v.is_object()) return !v.empty();
  return true;
}

// ---- Body ----------------------------------------------------------------------------------------

// Rejects nesting deeper than `max_depth` before parsing, so no recursive walk (parse, dump, destroy)
// can exhaust the stack.
absl::Status CheckDepth(std::string_view body, int32_t max_depth) {
  int32_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return absl::InvalidArgumentError(absl::StrFormat("request body nests deeper than %d levels", max_depth));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ParseBody(std::string_view body, const Limits& limits) {
  if (body.empty()) return absl::InvalidArgumentError("request body is empty; expected a JSON object");
  auto depth = CheckDepth(body, limits.max_json_depth);
  if (!depth.ok()) return depth;
  json doc;
  try {
    doc = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, ..." → "parse error at line 1, ..."
    if (auto pos = what.find("] "); what.rfind("[json.exception.", 0) == 0 && pos != std::string::npos) {
      what = what.substr(pos + 2);
    }
    return absl::InvalidArgumentError(absl::StrCat("request body is not valid JSON: ", what));
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("request body must be a JSON object, got ", doc.type_name()));
  }
  return doc;
}

// ---- Fields shared by both endpoints ------------------------------------------------------------

// Known fields that would change the output in ways we do not implement: rejected when set, so a
// client never silently gets something other than what it asked for.
absl::Status RejectUnsupported(const json& body) {
  static constexpr std::pair<std::string_view, std::string_view> kUnsupported[] = {
      {"logit_bias", "logit_bias is not supported"},
      {"use_beam_search", "beam search is not supported"},
      {"prompt_logprobs", "prompt_logprobs is not supported"},
      {"allowed_token_ids", "allowed_token_ids is not supported"},
      {"bad_words", "bad_words is not supported"},
      {"guided_json", "guided decoding is not supported"},
      {"guided_regex", "guided decoding is not supported"},
      {"guided_choice", "guided decoding is not supported"},
      {"guided_grammar", "guided decoding is not supported"},
      {"structured_outputs", "structured outputs are not supported"},
      {"truncate_prompt_tokens", "truncate_prompt_tokens is not supported"},
      {"logits_processors", "logits_processors is not supported"},
      {"return_tokens_as_token_ids", "return_tokens_as_token_ids is not supported"},
  };
  for (const auto& [key, message] : kUnsupported) {
    auto it = body.find(key);
    if (it != body.end() && IsSet(*it)) return InvalidParam(key, message);
  }
  if (const json* rf = Get(body, "response_format")) {
    if (!rf->is_object()) return TypeError("response_format", "an object", *rf);
    const json* type = Get(*rf, "type");
    if (type == nullptr || !type->is_string()) {
      return InvalidParam("response_format.type", "response_format.type must be a string");
    }
    if (type->get<std::string>() != "text") {
      return InvalidParam("response_format.type", absl::StrCat("response_format.type '", type->get<std::string>(),
                                                               "' is not supported; only 'text' is"));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadStop(const json& body, const Limits& limits, std::vector<std::string>* out) {
  const json* v = Get(body, "stop");
  if (v == nullptr) return absl::OkStatus();
  auto check = [&](const json& s, const std::string& path) -> absl::Status {
    if (!s.is_string()) return TypeError(path, "a string", s);
    const auto& str = s.get_ref<const std::string&>();
    if (str.empty()) return InvalidParam(path, absl::StrCat(path, " must not be an empty string"));
    if (str.size() > static_cast<size_t>(limits.max_stop_bytes)) {
      return InvalidParam(path, absl::StrFormat("%s is longer than %d bytes", path, limits.max_stop_bytes));
    }
    out->push_back(str);
    return absl::OkStatus();
  };
  if (v->is_string()) return check(*v, "stop");
  if (!v->is_array()) return TypeError("stop", "a string or an array of strings", *v);
  if (v->size() > static_cast<size_t>(limits.max_stop)) {
    return InvalidParam("stop",
                        absl::StrFormat("stop has %d entries; at most %d are allowed", v->size(), limits.max_stop));
  }
  for (size_t i = 0; i < v->size(); ++i) {
    auto s = check((*v)[i], Index("stop", i));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ReadTokenIds(const json& v, std::string_view path, const Limits& limits, std::vector<int32_t>* out) {
  if (!v.is_array()) return TypeError(path, "an array of token ids", v);
  const int64_t hi = limits.vocab_size > 0 ? limits.vocab_size - 1 : std::numeric_limits<int32_t>::max();
  out->reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t id = 0;
    auto s = AsInt(v[i], Index(path, i), 0, hi, &id);
    if (!s.ok()) return s;
    out->push_back(static_cast<int32_t>(id));
  }
  return absl::OkStatus();
}

// max_tokens-like field: null → 0 (until the context is full), else [1, cap].
absl::Status ReadMaxTokens(const json& v, std::string_view path, const Limits& limits, int32_t* out) {
  if (v.is_null()) {
    *out = 0;
    return absl::OkStatus();
  }
  const int64_t cap = limits.max_tokens_cap > 0 ? limits.max_tokens_cap : std::numeric_limits<int32_t>::max();
  int64_t x = 0;
  auto s = AsInt(v, path, 1, std::numeric_limits<int64_t>::max(), &x);
  if (!s.ok()) return s;
  if (x > cap) {
    return InvalidParam(path, absl::StrFormat("%s = %d exceeds the server's limit of %d tokens", path, x, cap));
  }
  *out = static_cast<int32_t>(x);
  return absl::OkStatus();
}

// Sampling and output-control fields common to /v1/completions and /v1/chat/completions.
absl::Status ReadCommon(const json& body, const Limits& limits, TextRequest* req, std::string* model,
                        StreamSettings* stream) {
  TS_RETURN_IF_ERROR(RejectUnsupported(body));
  TS_RETURN_IF_ERROR(ReadString(body, "model", "model", model));
  req->model = *model;
  req->api = "openai";

  llm::SamplingParams& p = req->sampling;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  TS_RETURN_IF_ERROR(ReadFloat(body, "temperature", "temperature", 0, Bound::kClosed, 2, &p.temperature));
  TS_RETURN_IF_ERROR(ReadFloat(body, "top_p", "top_p", 0, Bound::kOpen, 1, &p.top_p));
  TS_RETURN_IF_ERROR(ReadFloat(body, "min_p", "min_p", 0, Bound::kClosed, 1, &p.min_p));
  TS_RETURN_IF_ERROR(
      ReadFloat(body, "presence_penalty", "presence_penalty", -2, Bound::kClosed, 2, &p.presence_penalty));
  TS_RETURN_IF_ERROR(
      ReadFloat(body, "frequency_penalty", "frequency_penalty", -2, Bound::kClosed, 2, &p.frequency_penalty));
  TS_RETURN_IF_ERROR(
      ReadFloat(body, "repetition_penalty", "repetition_penalty", 0, Bound::kOpen, kInf, &p.repetition_penalty));
  if (const json* v = Get(body, "top_k")) {
    int64_t k = 0;
    TS_RETURN_IF_ERROR(AsInt(*v, "top_k", -1, std::numeric_limits<int32_t>::max(), &k));
    p.top_k = static_cast<int32_t>(k);
  }
  if (const json* v = Get(body, "seed")) {
    int64_t seed = 0;
    TS_RETURN_IF_ERROR(
        AsInt(*v, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &seed));
    p.seed = static_cast<uint64_t>(seed);  // two's complement, as vLLM's int64 seeds
  }
  if (const json* v = Get(body, "stop_token_ids")) {
    TS_RETURN_IF_ERROR(ReadTokenIds(*v, "stop_token_ids", limits, &p.stop_token_ids));
    if (p.stop_token_ids.size() > static_cast<size_t>(limits.max_stop_token_ids)) {
      return InvalidParam("stop_token_ids", absl::StrFormat("stop_token_ids has %d entries; at most %d are allowed",
                                                            p.stop_token_ids.size(), limits.max_stop_token_ids));
    }
  }
  TS_RETURN_IF_ERROR(ReadBool(body, "ignore_eos", "ignore_eos", &p.ignore_eos));
  TS_RETURN_IF_ERROR(
      ReadInt32(body, "min_tokens", "min_tokens", 0, std::numeric_limits<int32_t>::max(), &p.min_tokens));
  TS_RETURN_IF_ERROR(ReadStop(body, limits, &req->stop));
  TS_RETURN_IF_ERROR(
      ReadBool(body, "include_stop_str_in_output", "include_stop_str_in_output", &req->include_stop_str_in_output));
  TS_RETURN_IF_ERROR(ReadBool(body, "skip_special_tokens", "skip_special_tokens", &req->skip_special_tokens));
  TS_RETURN_IF_ERROR(ReadBool(body, "add_special_tokens", "add_special_tokens", &req->add_special_tokens));

  TS_RETURN_IF_ERROR(ReadInt32(body, "n", "n", 1, limits.max_n, &req->n));
  if (const json* v = Get(body, "best_of")) {
    int64_t best_of = 0;
    TS_RETURN_IF_ERROR(AsInt(*v, "best_of", 1, limits.max_n, &best_of));
    if (best_of != req->n) {
      return InvalidParam("best_of", absl::StrFormat("best_of (%d) must equal n (%d); ranking extra samples is not "
                                                     "supported",
                                                     best_of, req->n));
    }
  }

  TS_RETURN_IF_ERROR(ReadBool(body, "stream", "stream", &stream->stream));
  if (const json* so = Get(body, "stream_options")) {
    if (!so->is_object()) return TypeError("stream_options", "an object", *so);
    if (!stream->stream) return InvalidParam("stream_options", "stream_options can only be set when stream is true");
    TS_RETURN_IF_ERROR(ReadBool(*so, "include_usage", "stream_options.include_usage", &stream->include_usage));
    TS_RETURN_IF_ERROR(
        ReadBool(*so, "continuous_usage_stats", "stream_options.continuous_usage_stats", &stream->continuous_usage));
  }

  if (Get(body, "timeout") != nullptr) {
    float seconds = 0;
    TS_RETURN_IF_ERROR(ReadFloat(body, "timeout", "timeout", 0, Bound::kOpen, limits.max_timeout_s, &seconds));
    req->deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }
  return absl::OkStatus();
}

// min_tokens may not exceed a finite max_tokens.
absl::Status CheckMinTokens(const llm::SamplingParams& p) {
  if (p.max_tokens > 0 && p.min_tokens > p.max_tokens) {
    return InvalidParam("min_tokens",
                        absl::StrFormat("min_tokens (%d) must not exceed max_tokens (%d)", p.min_tokens, p.max_tokens));
  }
  return absl::OkStatus();
}

// ---- /v1/completions -----------------------------------------------------------------------------

absl::Status ReadPrompt(const json& body, const Limits& limits, TextRequest* req) {
  const json* v = Get(body, "prompt");
  if (v == nullptr) return InvalidParam("prompt", "prompt is required");
  if (v->is_string()) {
    if (v->get_ref<const std::string&>().empty()) return InvalidParam("prompt", "prompt must not be empty");
    req->prompt_text = v->get<std::string>();
    return absl::OkStatus();
  }
  if (!v->is_array()) return TypeError("prompt", "a string, an array of token ids, or an array of one string", *v);
  if (v->empty()) return InvalidParam("prompt", "prompt must not be empty");
  const json& first = v->front();
  if (first.is_number()) {
    std::vector<int32_t> ids;
    TS_RETURN_IF_ERROR(ReadTokenIds(*v, "prompt", limits, &ids));
    req->prompt_ids = std::move(ids);
    return absl::OkStatus();
  }
  if (v->size() > 1) {
    return InvalidParam("prompt",
                        absl::StrFormat("prompt holds a batch of %d prompts; send one prompt per request", v->size()));
  }
  if (first.is_string()) {
    if (first.get_ref<const std::string&>().empty()) return InvalidParam("prompt[0]", "prompt must not be empty");
    req->prompt_text = first.get<std::string>();
    return absl::OkStatus();
  }
  if (first.is_array()) {
    if (first.empty()) return InvalidParam("prompt[0]", "prompt must not be empty");
    std::vector<int32_t> ids;
    TS_RETURN_IF_ERROR(ReadTokenIds(first, "prompt[0]", limits, &ids));
    req->prompt_ids = std::move(ids);
    return absl::OkStatus();
  }
  return TypeError("prompt[0]", "a string, a token id or an array of token ids", first);
}

absl::StatusOr<ParsedCompletion> ParseCompletionImpl(std::string_view body_text, const Limits& limits) {
  auto doc = ParseBody(body_text, limits);
  if (!doc.ok()) return doc.status();
  const json& body = *doc;
  ParsedCompletion out;
  TextRequest& req = out.request;
  TS_RETURN_IF_ERROR(ReadCommon(body, limits, &req, &out.model, &out.stream));
  TS_RETURN_IF_ERROR(ReadPrompt(body, limits, &req));

  if (const json* suffix = Get(body, "suffix")) {
    (void)suffix;
    return InvalidParam("suffix", "suffix is not supported");
  }
  req.sampling.max_tokens = limits.default_completion_max_tokens;
  if (auto it = body.find("max_tokens"); it != body.end()) {
    TS_RETURN_IF_ERROR(ReadMaxTokens(*it, "max_tokens", limits, &req.sampling.max_tokens));
  }
  TS_RETURN_IF_ERROR(CheckMinTokens(req.sampling));
  if (const json* v = Get(body, "logprobs")) {
    int64_t k = 0;
    TS_RETURN_IF_ERROR(AsInt(*v, "logprobs", 0, limits.max_logprobs, &k));
    out.logprobs_requested = true;
    out.top_logprobs = static_cast<int32_t>(k);
    req.sampling.logprobs = out.top_logprobs;
  }
  TS_RETURN_IF_ERROR(ReadBool(body, "echo", "echo", &out.echo));
  req.echo = out.echo;
  return out;
}

// ---- /v1/chat/completions ------------------------------------------------------------------------

absl::Status ReadToolCalls(const json& calls, const std::string& path, json* out) {
  if (!calls.is_array()) return TypeError(path, "an array", calls);
  *out = json::array();
  for (size_t j = 0; j < calls.size(); ++j) {
    const std::string cp = Index(path, j);
    const json& call = calls[j];
    if (!call.is_object()) return TypeError(cp, "an object", call);
    json copy = call;
    std::string ignored;
    TS_RETURN_IF_ERROR(ReadString(call, "id", cp + ".id", &ignored));
    TS_RETURN_IF_ERROR(ReadString(call, "type", cp + ".type", &ignored));
    const json* fn = Get(call, "function");
    if (fn == nullptr || !fn->is_object()) return InvalidParam(cp + ".function", cp + ".function must be an object");
    const json* name = Get(*fn, "name");
    if (name == nullptr || !name->is_string()) {
      return InvalidParam(cp + ".function.name", cp + ".function.name must be a string");
    }
    // Templates expect the arguments as an object (vLLM parses the JSON string the same way).
    const json* args = Get(*fn, "arguments");
    json parsed_args = json::object();
    if (args != nullptr && args->is_string()) {
      const auto& text = args->get_ref<const std::string&>();
      if (!text.empty()) {
        parsed_args = json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (parsed_args.is_discarded()) {
          return InvalidParam(cp + ".function.arguments", cp + ".function.arguments is not valid JSON");
        }
      }
    } else if (args != nullptr) {
      if (!args->is_object()) return TypeError(cp + ".function.arguments", "a JSON string or an object", *args);
      parsed_args = *args;
    }
    copy["function"]["arguments"] = std::move(parsed_args);
    out->push_back(std::move(copy));
  }
  return absl::OkStatus();
}

absl::Status ReadMessage(const json& m, size_t i, ChatMessage* out) {
  static constexpr std::string_view kRoles[] = {"system", "user", "assistant", "tool", "developer"};
  const std::string path = Index("messages", i);
  if (!m.is_object()) return TypeError(path, "an object", m);
  const json* role = Get(m, "role");
  if (role == nullptr) return InvalidParam(path + ".role", path + ".role is required");
  if (!role->is_string()) return TypeError(path + ".role", "a string", *role);
  out->role = role->get<std::string>();
  bool known = false;
  for (auto r : kRoles) known = known || out->role == r;
  if (!known) {
    return InvalidParam(path + ".role", absl::StrCat(path, ".role '", out->role,
                                                     "' is not one of system, user, assistant, tool, developer"));
  }

  if (const json* calls = Get(m, "tool_calls")) {
    if (out->role != "assistant") {
      return InvalidParam(path + ".tool_calls", path + ".tool_calls is only allowed on assistant messages");
    }
    json parsed;
    TS_RETURN_IF_ERROR(ReadToolCalls(*calls, path + ".tool_calls", &parsed));
    out->extra["tool_calls"] = std::move(parsed);
  }
  for (std::string_view key : {"name", "tool_call_id"}) {
    std::string value;
    TS_RETURN_IF_ERROR(ReadString(m, key, Path(path, key), &value));
    if (Get(m, key) != nullptr) out->extra[std::string(key)] = value;
  }

  const std::string cpath = path + ".content";
  const json* content = Get(m, "content");
  if (content == nullptr) {
    if (out->role == "assistant" && out->extra.contains("tool_calls")) return absl::OkStatus();
    return InvalidParam(cpath, cpath + " is required (null is allowed only for assistant messages with tool_calls)");
  }
  if (content->is_string()) {
    out->content = content->get<std::string>();
    return absl::OkStatus();
  }
  if (!content->is_array()) return TypeError(cpath, "a string or an array of content parts", *content);
  // Text parts are joined with newlines, as vLLM renders them for string-content templates.
  std::vector<std::string> texts;
  for (size_t j = 0; j < content->size(); ++j) {
    const std::string pp = Index(cpath, j);
    const json& part = (*content)[j];
    if (!part.is_object()) return TypeError(pp, "an object", part);
    const json* type = Get(part, "type");
    if (type == nullptr || !type->is_string()) return InvalidParam(pp + ".type", pp + ".type must be a string");
    if (type->get<std::string>() != "text") {
      return InvalidParam(pp + ".type", absl::StrCat("content part type '", type->get<std::string>(),
                                                     "' is not supported; only 'text' is"));
    }
    const json* text = Get(part, "text");
    if (text == nullptr || !text->is_string()) return InvalidParam(pp + ".text", pp + ".text must be a string");
    texts.push_back(text->get<std::string>());
  }
  out->content = absl::StrJoin(texts, "\n");
  return absl::OkStatus();
}

absl::Status ReadTools(const json& body, TextRequest* req) {
  const json* tools = Get(body, "tools");
  if (tools == nullptr) return absl::OkStatus();
  if (!tools->is_array()) return TypeError("tools", "an array", *tools);
  for (size_t i = 0; i < tools->size(); ++i) {
    const std::string tp = Index("tools", i);
    const json& tool = (*tools)[i];
    if (!tool.is_object()) return TypeError(tp, "an object", tool);
    const json* type = Get(tool, "type");
    if (type == nullptr || !type->is_string() || type->get<std::string>() != "function") {
      return InvalidParam(tp + ".type", tp + ".type must be 'function'");
    }
    const json* fn = Get(tool, "function");
    if (fn == nullptr || !fn->is_object()) return InvalidParam(tp + ".function", tp + ".function must be an object");
    const json* name = Get(*fn, "name");
    if (name == nullptr || !name->is_string() || name->get_ref<const std::string&>().empty()) {
      return InvalidParam(tp + ".function.name", tp + ".function.name must be a non-empty string");
    }
    std::string description;
    TS_RETURN_IF_ERROR(ReadString(*fn, "description", tp + ".function.description", &description));
    if (const json* params = Get(*fn, "parameters"); params != nullptr && !params->is_object()) {
      return TypeError(tp + ".function.parameters", "an object", *params);
    }
  }
  if (!tools->empty()) req->tools = *tools;
  return absl::OkStatus();
}

absl::Status ReadToolChoice(const json& body, const TextRequest& req, std::string* out) {
  const json* tc = Get(body, "tool_choice");
  if (tc == nullptr) return absl::OkStatus();
  if (tc->is_object()) return InvalidParam("tool_choice", "named tool_choice is not supported; use 'none' or 'auto'");
  if (!tc->is_string()) return TypeError("tool_choice", "a string", *tc);
  const std::string choice = tc->get<std::string>();
  if (choice != "none" && choice != "auto") {
    return InvalidParam("tool_choice",
                        absl::StrCat("tool_choice '", choice, "' is not supported; use 'none' or 'auto'"));
  }
  if (choice == "auto" && req.tools.is_null()) {
    return InvalidParam("tool_choice", "tool_choice 'auto' requires tools");
  }
  *out = choice;
  return absl::OkStatus();
}

absl::StatusOr<ParsedChat> ParseChatImpl(std::string_view body_text, const Limits& limits) {
  auto doc = ParseBody(body_text, limits);
  if (!doc.ok()) return doc.status();
  const json& body = *doc;
  ParsedChat out;
  TextRequest& req = out.request;
  req.add_special_tokens = false;  // the chat template writes the special tokens (vLLM's default)
  TS_RETURN_IF_ERROR(ReadCommon(body, limits, &req, &out.model, &out.stream));

  const json* messages = Get(body, "messages");
  if (messages == nullptr) return InvalidParam("messages", "messages is required");
  if (!messages->is_array()) return TypeError("messages", "an array", *messages);
  if (messages->empty()) return InvalidParam("messages", "messages must not be empty");
  std::vector<ChatMessage> parsed_messages(messages->size());
  for (size_t i = 0; i < messages->size(); ++i) {
    TS_RETURN_IF_ERROR(ReadMessage((*messages)[i], i, &parsed_messages[i]));
  }
  req.messages = std::move(parsed_messages);

  // max_completion_tokens wins over the deprecated max_tokens; neither → until the context is full.
  req.sampling.max_tokens = 0;
  if (auto it = body.find("max_tokens"); it != body.end()) {
    TS_RETURN_IF_ERROR(ReadMaxTokens(*it, "max_tokens", limits, &req.sampling.max_tokens));
  }
  if (auto it = body.find("max_completion_tokens"); it != body.end() && !it->is_null()) {
    TS_RETURN_IF_ERROR(ReadMaxTokens(*it, "max_completion_tokens", limits, &req.sampling.max_tokens));
  }
  TS_RETURN_IF_ERROR(CheckMinTokens(req.sampling));

  TS_RETURN_IF_ERROR(ReadBool(body, "logprobs", "logprobs", &out.logprobs_requested));
  TS_RETURN_IF_ERROR(ReadInt32(body, "top_logprobs", "top_logprobs", 0, limits.max_logprobs, &out.top_logprobs));
  if (out.top_logprobs > 0 && !out.logprobs_requested) {
    return InvalidParam("top_logprobs", "top_logprobs requires logprobs to be true");
  }
  if (out.logprobs_requested) req.sampling.logprobs = out.top_logprobs;

  TS_RETURN_IF_ERROR(ReadTools(body, &req));
  TS_RETURN_IF_ERROR(ReadToolChoice(body, req, &out.tool_choice));
  if (const json* fns = Get(body, "functions"); fns != nullptr && IsSet(*fns)) {
    return InvalidParam("functions", "functions is not supported; use tools");
  }
  if (const json* tmpl = Get(body, "chat_template"); tmpl != nullptr) {
    return InvalidParam("chat_template", "a per-request chat_template is not supported");
  }

  TS_RETURN_IF_ERROR(ReadBool(body, "add_generation_prompt", "add_generation_prompt", &req.add_generation_prompt));
  TS_RETURN_IF_ERROR(ReadBool(body, "continue_final_message", "continue_final_message", &out.continue_final_message));
  if (out.continue_final_message && req.add_generation_prompt) {
    // vLLM's rule; add_generation_prompt defaults to true, so a client must turn it off explicitly.
    return InvalidParam("continue_final_message",
                        "continue_final_message and add_generation_prompt cannot both be true");
  }
  if (out.continue_final_message && req.messages->back().role != "assistant") {
    return InvalidParam("continue_final_message", "continue_final_message requires the last message to be assistant");
  }
  if (const json* kw = Get(body, "chat_template_kwargs")) {
    if (!kw->is_object()) return TypeError("chat_template_kwargs", "an object", *kw);
    if (!kw->empty()) req.chat_template_kwargs = *kw;
  }
  return out;
}

// ---- Formatting helpers --------------------------------------------------------------------------

// A float as the shortest decimal that round-trips it, so -0.1f prints as -0.1 and not as the
// double -0.10000000149011612. -inf and NaN (not representable in JSON) become -9999.0, as OpenAI
// and vLLM show "very unlikely".
ojson Logprob(float x) {
  if (!std::isfinite(x)) return -9999.0;
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), x);
  if (ec != std::errc()) return static_cast<double>(x);
  *end = '\0';
  return std::strtod(buf, nullptr);
}

// Code points in UTF-8 text (bytes that are not continuation bytes).
int64_t CodePoints(std::string_view s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The token's raw bytes. A token that is part of a multi-byte character is shown as
// "bytes:\xe2\x80" (OpenAI's convention); its bytes are the escaped values.
std::string RawTokenBytes(std::string_view token) {
  constexpr std::string_view kPrefix = "bytes:";
  if (token.substr(0, kPrefix.size()) == kPrefix && token.size() > kPrefix.size()) {
    std::string_view rest = token.substr(kPrefix.size());
    std::string decoded;
    while (rest.size() >= 4 && rest[0] == '\\' && rest[1] == 'x' && HexValue(rest[2]) >= 0 && HexValue(rest[3]) >= 0) {
      decoded.push_back(static_cast<char>(HexValue(rest[2]) * 16 + HexValue(rest[3])));
      rest.remove_prefix(4);
    }
    if (rest.empty()) return decoded;
  }
  return std::string(token);
}

ojson TokenBytes(std::string_view token) {
  ojson out = ojson::array();
  for (unsigned char c : RawTokenBytes(token)) out.push_back(static_cast<int>(c));
  return out;
}

// Completions logprobs for `tokens`: {tokens, token_logprobs, top_logprobs, text_offset}. Each
// top_logprobs entry maps the `top_n` best alternatives and the sampled token to their logprobs.
ojson CompletionLogprobs(const std::vector<TokenOut>& tokens, int32_t top_n, int64_t* offset) {
  ojson lp = {{"tokens", ojson::array()},
              {"token_logprobs", ojson::array()},
              {"top_logprobs", ojson::array()},
              {"text_offset", ojson::array()}};
  for (const TokenOut& t : tokens) {
    lp["tokens"].push_back(t.token);
    lp["token_logprobs"].push_back(Logprob(t.logprob));
    lp["text_offset"].push_back(*offset);
    // Offsets count code points of the output text; a token holding the first byte of a character
    // advances by that character, its continuation bytes by nothing.
    *offset += CodePoints(RawTokenBytes(t.token));
    ojson top = ojson::object();
    for (size_t k = 0; k < t.top.size() && k < static_cast<size_t>(top_n); ++k) {
      if (!top.contains(t.top[k].token)) top[t.top[k].token] = Logprob(t.top[k].logprob);
    }
    if (!top.contains(t.token)) top[t.token] = Logprob(t.logprob);
    lp["top_logprobs"].push_back(std::move(top));
  }
  return lp;
}

void AppendCompletionLogprobs(ojson& acc, const ojson& more) {
  if (acc.is_null()) {
    acc = more;
    return;
  }
  for (const char* key : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
    for (const ojson& v : more[key]) acc[key].push_back(v);
  }
}

// Chat logprobs content entries: [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}].
ojson ChatLogprobContent(const std::vector<TokenOut>& tokens, int32_t top_n) {
  ojson content = ojson::array();
  for (const TokenOut& t : tokens) {
    ojson top = ojson::array();
    for (size_t k = 0; k < t.top.size() && k < static_cast<size_t>(top_n); ++k) {
      top.push_back(
          {{"token", t.top[k].token}, {"logprob", Logprob(t.top[k].logprob)}, {"bytes", TokenBytes(t.top[k].token)}});
    }
    content.push_back(
        {{"token", t.token}, {"logprob", Logprob(t.logprob)}, {"bytes", TokenBytes(t.token)}, {"top_logprobs", top}});
  }
  return content;
}

ojson NullableString(const std::string& s) { return s.empty() ? ojson(nullptr) : ojson(s); }

ojson StopReason(const std::optional<std::string>& r) { return r ? ojson(*r) : ojson(nullptr); }

// JSON text; invalid UTF-8 (never expected: the pipeline emits whole characters) becomes U+FFFD
// instead of an exception.
std::string Dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

ojson ModelJson(const ModelCard& m) {
  return {{"id", m.id},
          {"object", "model"},
          {"created", m.created},
          {"owned_by", m.owned_by},
          {"root", m.id},
          {"parent", nullptr},
          {"max_model_len", m.max_model_len}};
}

std::string InternalErrorBody(std::string_view what) {
  return OpenAiErrorBody(absl::InternalError(absl::StrCat("failed to format the response: ", Sv(what))));
}

}  // namespace

// ---- Public parsing entry points -----------------------------------------------------------------

absl::StatusOr<ParsedCompletion> ParseCompletionRequest(std::string_view body, const Limits& limits) {
  try {
    return ParseCompletionImpl(body, limits);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("invalid request: ", e.what()));
  } catch (...) {
    return absl::InvalidArgumentError("invalid request");
  }
}

absl::StatusOr<ParsedChat> ParseChatRequest(std::string_view body, const Limits& limits) {
  try {
    return ParseChatImpl(body, limits);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("invalid request: ", e.what()));
  } catch (...) {
    return absl::InvalidArgumentError("invalid request");
  }
}

// ---- Responses -----------------------------------------------------------------------------------

namespace {

// The fields both endpoints' parsed requests carry.
template <typename Parsed>
ResponseOptions CommonResponseOptions(const Parsed& parsed, Endpoint endpoint, std::string_view id_prefix,
                                      std::string_view request_id, int64_t created) {
  ResponseOptions o;
  o.endpoint = endpoint;
  o.id = absl::StrCat(Sv(id_prefix), Sv(request_id));
  o.created = created;
  o.model = parsed.model;
  o.n = parsed.request.n;
  o.stream = parsed.stream;
  o.logprobs = parsed.logprobs_requested;
  o.top_logprobs = parsed.top_logprobs;
  return o;
}

}  // namespace

ResponseOptions ResponseOptionsFor(const ParsedCompletion& parsed, std::string_view request_id, int64_t created) {
  ResponseOptions o = CommonResponseOptions(parsed, Endpoint::kCompletions, "cmpl-", request_id, created);
  // With echo the output text starts with the prompt, so the first token's offset is its length.
  if (parsed.echo && parsed.request.prompt_text) {
    o.text_offset_base = static_cast<int32_t>(CodePoints(*parsed.request.prompt_text));
  }
  return o;
}

ResponseOptions ResponseOptionsFor(const ParsedChat& parsed, std::string_view request_id, int64_t created) {
  return CommonResponseOptions(parsed, Endpoint::kChatCompletions, "chatcmpl-", request_id, created);
}

std::string SseEvent(std::string_view payload) { return absl::StrCat("data: ", Sv(payload), "\n\n"); }

ResponseBuilder::ResponseBuilder(ResponseOptions options) : options_(std::move(options)) {
  if (options_.n < 1) options_.n = 1;
  if (options_.created == 0) options_.created = static_cast<int64_t>(std::time(nullptr));
  choices_.resize(static_cast<size_t>(options_.n));
  for (Choice& c : choices_) c.text_offset = options_.text_offset_base;
}

std::string_view ResponseBuilder::content_type() const {
  return options_.stream.stream ? "text/event-stream" : "application/json";
}

bool ResponseBuilder::all_finished() const {
  for (const Choice& c : choices_) {
    if (c.finish_reason.empty()) return false;
  }
  return true;
}

Usage ResponseBuilder::usage() const {
  Usage u;
  for (const Choice& c : choices_) {
    u.prompt_tokens = std::max(u.prompt_tokens, c.usage.prompt_tokens);
    u.cached_prompt_tokens = std::max(u.cached_prompt_tokens, c.usage.cached_prompt_tokens);
    u.completion_tokens += std::max(c.usage.completion_tokens, c.counted_tokens);
  }
  return u;
}

ojson ResponseBuilder::UsageJson() const {
  const Usage u = usage();
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_prompt_tokens}}}};
}

ojson ResponseBuilder::ChunkEnvelope() const {
  const bool chat = options_.endpoint == Endpoint::kChatCompletions;
  return {{"id", options_.id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", options_.created},
          {"model", options_.model}};
}

std::string ResponseBuilder::Add(const Delta& delta) {
  try {
    if (finished_ || delta.index < 0 || delta.index >= options_.n) return "";
    Choice& c = choices_[static_cast<size_t>(delta.index)];
    if (!c.finish_reason.empty()) return "";  // nothing follows a finished choice
    c.usage = delta.usage;
    c.counted_tokens += static_cast<int32_t>(delta.tokens.size());
    if (!delta.finish_reason.empty()) {
      c.finish_reason = delta.finish_reason;
      c.stop_reason = delta.stop_reason;
    }
    if (options_.stream.stream) return AddStreaming(delta, c);
    c.text += delta.text;
    if (options_.logprobs && !delta.tokens.empty()) {
      if (options_.endpoint == Endpoint::kCompletions) {
        AppendCompletionLogprobs(c.logprobs, CompletionLogprobs(delta.tokens, options_.top_logprobs, &c.text_offset));
      } else {
        if (c.logprobs.is_null()) c.logprobs = ojson::array();
        for (ojson& e : ChatLogprobContent(delta.tokens, options_.top_logprobs)) c.logprobs.push_back(std::move(e));
      }
    }
    return "";
  } catch (const std::exception& e) {
    return options_.stream.stream ? SseEvent(InternalErrorBody(e.what())) : "";
  }
}

std::string ResponseBuilder::AddStreaming(const Delta& delta, Choice& c) {
  const bool chat = options_.endpoint == Endpoint::kChatCompletions;
  const bool finishing = !delta.finish_reason.empty();
  std::string out;
  auto emit = [&](ojson choice) {
    ojson chunk = ChunkEnvelope();
    chunk["choices"] = ojson::array({std::move(choice)});
    if (options_.stream.include_usage) {
      chunk["usage"] = options_.stream.continuous_usage ? UsageJson() : ojson(nullptr);
    }
    out += SseEvent(Dump(chunk));
  };

  if (chat && !c.started) {
    // The first chunk of each choice carries the role, as OpenAI and vLLM send it.
    emit({{"index", delta.index},
          {"delta", {{"role", "assistant"}, {"content", ""}}},
          {"logprobs", nullptr},
          {"finish_reason", nullptr}});
  }
  c.started = true;
  if (delta.text.empty() && delta.tokens.empty() && !finishing) return out;

  ojson logprobs = nullptr;
  if (options_.logprobs && !delta.tokens.empty()) {
    logprobs = chat ? ojson{{"content", ChatLogprobContent(delta.tokens, options_.top_logprobs)}}
                    : CompletionLogprobs(delta.tokens, options_.top_logprobs, &c.text_offset);
  }
  ojson choice;
  if (chat) {
    choice = {{"index", delta.index},
              {"delta", delta.text.empty() ? ojson::object() : ojson{{"content", delta.text}}},
              {"logprobs", std::move(logprobs)},
              {"finish_reason", NullableString(c.finish_reason)}};
  } else {
    choice = {{"index", delta.index},
              {"text", delta.text},
              {"logprobs", std::move(logprobs)},
              {"finish_reason", NullableString(c.finish_reason)}};
  }
  choice["stop_reason"] = finishing ? StopReason(c.stop_reason) : ojson(nullptr);
  emit(std::move(choice));
  return out;
}

std::string ResponseBuilder::FinalBody() const {
  const bool chat = options_.endpoint == Endpoint::kChatCompletions;
  ojson choices = ojson::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    // A choice the pipeline never finished was cut short.
    const std::string finish = c.finish_reason.empty() ? "abort" : c.finish_reason;
    ojson logprobs = nullptr;
    if (options_.logprobs) {
      if (chat) {
        logprobs = {{"content", c.logprobs.is_null() ? ojson::array() : c.logprobs}};
      } else {
        int64_t unused_offset = 0;
        logprobs = c.logprobs.is_null() ? CompletionLogprobs({}, 0, &unused_offset) : c.logprobs;
      }
    }
    if (chat) {
      choices.push_back({{"index", i},
                         {"message", {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}}},
                         {"logprobs", std::move(logprobs)},
                         {"finish_reason", finish},
                         {"stop_reason", StopReason(c.stop_reason)}});
    } else {
      choices.push_back({{"index", i},
                         {"text", c.text},
                         {"logprobs", std::move(logprobs)},
                         {"finish_reason", finish},
                         {"stop_reason", StopReason(c.stop_reason)}});
    }
  }
  ojson body = {{"id", options_.id},
                {"object", chat ? "chat.completion" : "text_completion"},
                {"created", options_.created},
                {"model", options_.model},
                {"choices", std::move(choices)},
                {"usage", UsageJson()}};
  return Dump(body);
}

std::string ResponseBuilder::Finish() {
  try {
    if (finished_) return "";
    finished_ = true;
    if (!options_.stream.stream) return FinalBody();
    std::string out;
    if (options_.stream.include_usage) {
      ojson chunk = ChunkEnvelope();
      chunk["choices"] = ojson::array();
      chunk["usage"] = UsageJson();
      out += SseEvent(Dump(chunk));
    }
    out += kSseDone;
    return out;
  } catch (const std::exception& e) {
    return options_.stream.stream ? absl::StrCat(SseEvent(InternalErrorBody(e.what())), Sv(kSseDone))
                                  : InternalErrorBody(e.what());
  }
}

std::string ResponseBuilder::Fail(const absl::Status& status) {
  try {
    finished_ = true;
    const absl::Status err = status.ok() ? absl::InternalError("request failed") : status;
    if (!options_.stream.stream) return OpenAiErrorBody(err);
    return absl::StrCat(SseEvent(OpenAiErrorBody(err)), Sv(kSseDone));
  } catch (...) {
    return options_.stream.stream ? absl::StrCat(SseEvent(InternalErrorBody("error")), Sv(kSseDone))
                                  : InternalErrorBody("error");
  }
}

// ---- Models --------------------------------------------------------------------------------------

std::string FormatModelList(const std::vector<ModelCard>& models) {
  ojson data = ojson::array();
  for (const ModelCard& m : models) data.push_back(ModelJson(m));
  return Dump(ojson{{"object", "list"}, {"data", std::move(data)}});
}

std::string FormatModel(const ModelCard& model) { return Dump(ModelJson(model)); }

}  // namespace tessera::server::openai
