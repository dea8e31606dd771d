#include "server/grpc/kserve_request.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "nlohmann/json.hpp"
#include "server/api/errors.h"

namespace tessera::server {
namespace {

// The first element of a little-endian raw_input_contents buffer of at least sizeof(T) bytes.
template <class T>
T FirstRawValue(const std::string& raw) {
  T x;
  std::memcpy(&x, raw.data(), sizeof(T));
  return x;
}

using nlohmann::json;

// BYTES tensor elements: raw contents are [u32 little-endian length][bytes] repeated.
absl::StatusOr<std::vector<std::string>> BytesElements(const inference::ModelInferRequest& req, int input) {
  const auto& t = req.inputs(input);
  std::vector<std::string> out;
  if (input < req.raw_input_contents_size()) {
    const std::string& raw = req.raw_input_contents(input);
    size_t pos = 0;
    while (pos < raw.size()) {
      if (raw.size() - pos < 4) return InvalidParam(t.name(), "truncated BYTES element length");
      uint32_t len = 0;
      for (int b = 0; b < 4; ++b) len |= static_cast<uint32_t>(static_cast<unsigned char>(raw[pos + b])) << (8 * b);
      pos += 4;
      if (raw.size() - pos < len) return InvalidParam(t.name(), "BYTES element runs past the end of its contents");
      out.emplace_back(raw.substr(pos, len));
      pos += len;
    }
    return out;
  }
  for (const std::string& s : t.contents().bytes_contents()) out.push_back(s);
  return out;
}

absl::StatusOr<double> ParamNumber(const inference::InferParameter& p, const std::string& name) {
  switch (p.parameter_choice_case()) {
    case inference::InferParameter::kInt64Param:
      return static_cast<double>(p.int64_param());
    case inference::InferParameter::kUint64Param:
      return static_cast<double>(p.uint64_param());
    case inference::InferParameter::kDoubleParam:
      return p.double_param();
    case inference::InferParameter::kStringParam: {
      char* end = nullptr;
      const double v = std::strtod(p.string_param().c_str(), &end);
      if (end != p.string_param().c_str() && *end == '\0') return v;
      break;
    }
    default:
      break;
  }
  return InvalidParam(name, "expected a number");
}

// A JSON number (or bool) as a double; error for anything else or a non-finite value.
absl::StatusOr<double> Number(const std::string& name, const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  if (!v.is_number()) return InvalidParam(name, "must be a number");
  const double d = v.get<double>();
  if (!std::isfinite(d)) return InvalidParam(name, "must be finite");
  return d;
}

absl::StatusOr<int32_t> Int32(const std::string& name, const json& v) {
  absl::StatusOr<double> d = Number(name, v);
  if (!d.ok()) return d.status();
  if (*d != std::floor(*d) || *d < -2147483648.0 || *d > 2147483647.0) {
    return InvalidParam(name, "must be a 32-bit integer");
  }
  return static_cast<int32_t>(*d);
}

// Applies one sampling setting given by name (request parameter, scalar input or JSON field).
absl::Status ApplyKServeSetting(const std::string& name, const json& v, KServeRequest* r, int depth = 0) {
  llm::SamplingParams& s = r->text.sampling;
  auto set_int = [&](int32_t* out) -> absl::Status {
    absl::StatusOr<int32_t> x = Int32(name, v);
    if (!x.ok()) return x.status();
    *out = *x;
    return absl::OkStatus();
  };
  auto set_float = [&](float* out) -> absl::Status {
    absl::StatusOr<double> x = Number(name, v);
    if (!x.ok()) return x.status();
    if (std::fabs(*x) > 1e30) return InvalidParam(name, "is out of range");
    *out = static_cast<float>(*x);
    return absl::OkStatus();
  };
  if (name == "max_tokens") return set_int(&s.max_tokens);
  if (name == "min_tokens") return set_int(&s.min_tokens);
  if (name == "top_k") return set_int(&s.top_k);
  if (name == "temperature") return set_float(&s.temperature);
  if (name == "top_p") return set_float(&s.top_p);
  if (name == "min_p") return set_float(&s.min_p);
  if (name == "repetition_penalty") return set_float(&s.repetition_penalty);
  if (name == "presence_penalty") return set_float(&s.presence_penalty);
  if (name == "frequency_penalty") return set_float(&s.frequency_penalty);
  if (name == "seed") {
    absl::StatusOr<double> x = Number(name, v);
    if (!x.ok()) return x.status();
    if (*x < 0 || *x >= 18446744073709551616.0 || *x != std::floor(*x)) {
      return InvalidParam(name, "must be a non-negative integer");
    }
    s.seed = v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(*x);
    return absl::OkStatus();
  }
  if (name == "ignore_eos" || name == "stream") {
    if (!v.is_boolean() && !v.is_number()) return InvalidParam(name, "must be a boolean");
    const bool b = v.is_boolean() ? v.get<bool>() : v.get<double>() != 0;
    (name == "stream" ? r->stream : s.ignore_eos) = b;
    return absl::OkStatus();
  }
  if (name == "stop") {
    if (v.is_string()) {
      const std::string str = v.get<std::string>();
      json parsed = json::parse(str, nullptr, false);
      if (parsed.is_array() && depth == 0) return ApplyKServeSetting(name, parsed, r, depth + 1);
      r->text.stop = {str};
      return absl::OkStatus();
    }
    if (!v.is_array()) return InvalidParam(name, "must be a string or a list of strings");
    r->text.stop.clear();
    for (const json& e : v) {
      if (!e.is_string()) return InvalidParam(name, "must be a string or a list of strings");
      r->text.stop.push_back(e.get<std::string>());
    }
    if (r->text.stop.size() > 16) return InvalidParam(name, "at most 16 stop strings");
    return absl::OkStatus();
  }
  return absl::OkStatus();  // other settings are ignored, as Triton does
}

}  // namespace

absl::StatusOr<KServeRequest> ParseKServeRequest(const inference::ModelInferRequest& req,
                                                 const std::string& served_model) {
  KServeRequest r;
  r.text.api = "kserve";
  r.text.model = req.model_name();
  r.text.request_id = req.id();
  r.text.sampling.max_tokens = 16;
  for (const auto& [name, value] : req.parameters()) {
    json v;
    switch (value.parameter_choice_case()) {
      case inference::InferParameter::kBoolParam:
        v = value.bool_param();
        break;
      case inference::InferParameter::kStringParam:
        v = value.string_param();
        if (name != "stop") {
          auto num = ParamNumber(value, name);
          if (num.ok()) v = *num;
        }
        break;
      default: {
        auto num = ParamNumber(value, name);
        if (!num.ok()) return num.status();
        v = *num;
      }
    }
    if (auto s = ApplyKServeSetting(name, v, &r); !s.ok()) return s;
  }
  bool have_text = false;
  for (int i = 0; i < req.inputs_size(); ++i) {
    const auto& in = req.inputs(i);
    if (in.name() == "text_input" || in.name() == "prompt") {
      if (in.datatype() != "BYTES") return InvalidParam(in.name(), "must be a BYTES tensor");
      auto elems = BytesElements(req, i);
      if (!elems.ok()) return elems.status();
      if (elems->size() != 1) return InvalidParam(in.name(), "must hold exactly one string (batch size 1)");
      r.text.prompt_text = (*elems)[0];
      have_text = true;
    } else if (in.name() == "sampling_parameters") {
      auto elems = BytesElements(req, i);
      if (!elems.ok()) return elems.status();
      if (elems->size() != 1) return InvalidParam(in.name(), "must hold one JSON string");
      json j = json::parse((*elems)[0], nullptr, false);
      if (!j.is_object()) return InvalidParam(in.name(), "must be a JSON object");
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (auto s = ApplyKServeSetting(it.key(), it.value(), &r); !s.ok()) return s;
      }
    } else if (in.name() == "stream" || in.name() == "max_tokens" || in.name() == "temperature" ||
               in.name() == "top_p" || in.name() == "top_k" || in.name() == "seed") {
      // Scalar tensors, as TensorRT-LLM-style clients send them.
      const auto& c = in.contents();
      json v;
      if (i < req.raw_input_contents_size()) {
        const std::string& raw = req.raw_input_contents(i);
        if (in.datatype() == "BOOL" && raw.size() >= 1)
          v = raw[0] != 0;
        else if (in.datatype() == "INT32" && raw.size() >= 4)
          v = FirstRawValue<int32_t>(raw);
        else if (in.datatype() == "INT64" && raw.size() >= 8)
          v = FirstRawValue<int64_t>(raw);
        else if (in.datatype() == "UINT64" && raw.size() >= 8)
          v = FirstRawValue<uint64_t>(raw);
        else if (in.datatype() == "FP32" && raw.size() >= 4)
          v = FirstRawValue<float>(raw);
        else
          return InvalidParam(in.name(), "unsupported datatype or empty contents");
      } else if (c.bool_contents_size())
        v = c.bool_contents(0);
      else if (c.int_contents_size())
        v = c.int_contents(0);
      else if (c.int64_contents_size())
        v = c.int64_contents(0);
      else if (c.uint64_contents_size())
        v = c.uint64_contents(0);
      else if (c.fp32_contents_size())
        v = c.fp32_contents(0);
      else
        return InvalidParam(in.name(), "empty tensor");
      if (auto s = ApplyKServeSetting(in.name(), v, &r); !s.ok()) return s;
    }
  }
  if (!have_text) return InvalidParam("text_input", "the request needs a BYTES input named text_input");
  if (!r.text.model.empty() && r.text.model != served_model) {
    return absl::NotFoundError("model '" + r.text.model + "' is not served here");
  }
  return r;
}

std::string SerializeBytesElement(const std::string& s) {
  std::string out(4, '\0');
  const uint32_t n = static_cast<uint32_t>(s.size());
  for (int b = 0; b < 4; ++b) out[b] = static_cast<char>((n >> (8 * b)) & 0xff);
  return out + s;
}

}  // namespace tessera::server
