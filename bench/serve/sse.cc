#include "bench/serve/sse.h"

#include <exception>

#include "nlohmann/json.hpp"

namespace tessera::bench {

std::vector<SseEvent> SseParser::Feed(std::string_view bytes) {
  std::vector<SseEvent> out;
  for (char ch : bytes) {
    if (last_was_cr_) {
      last_was_cr_ = false;
      if (ch == '\n') continue;  // second half of "\r\n"
    }
    if (ch == '\r' || ch == '\n') {
      last_was_cr_ = ch == '\r';
      ProcessLine(&out);
      line_.clear();
      continue;
    }
    line_.push_back(ch);
  }
  return out;
}

void SseParser::ProcessLine(std::vector<SseEvent>* out) {
  if (line_.empty()) {  // dispatch
    if (has_data_) out->push_back({std::move(event_), std::move(data_)});
    event_.clear();
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line_[0] == ':') return;  // comment
  const size_t colon = line_.find(':');
  std::string_view field(line_);
  std::string_view value;
  if (colon != std::string::npos) {
    field = std::string_view(line_).substr(0, colon);
    value = std::string_view(line_).substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_ = std::string(value);
  }
  // "id", "retry" and unknown fields do not matter here.
}

namespace {

std::optional<int> IntField(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int>();
}

}  // namespace

StreamChunk ParseOpenAiChunk(std::string_view data, Endpoint endpoint) {
  StreamChunk c;
  if (data == "[DONE]") {
    c.done = true;
    return c;
  }
  nlohmann::json j = nlohmann::json::parse(data.begin(), data.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    c.is_error = true;
    c.error = "unparsable chunk";
    return c;
  }
  try {
    if (auto err = j.find("error"); err != j.end()) {
      c.is_error = true;
      std::string type = "error";
      std::string message;
      if (err->is_object()) {
        if (auto t = err->find("type"); t != err->end() && t->is_string()) type = t->get<std::string>();
        if (auto m = err->find("message"); m != err->end() && m->is_string()) message = m->get<std::string>();
      }
      c.error = message.empty() ? type : type + ": " + message;
      return c;
    }
    if (auto usage = j.find("usage"); usage != j.end() && usage->is_object()) {
      c.prompt_tokens = IntField(*usage, "prompt_tokens");
      c.completion_tokens = IntField(*usage, "completion_tokens");
    }
    auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || choices->empty()) return c;
    const nlohmann::json& choice = (*choices)[0];
    if (!choice.is_object()) return c;
    if (auto fr = choice.find("finish_reason"); fr != choice.end() && fr->is_string()) {
      c.finish_reason = fr->get<std::string>();
    }
    if (endpoint == Endpoint::kCompletions) {
      if (auto t = choice.find("text"); t != choice.end() && t->is_string()) c.text = t->get<std::string>();
      c.carries_tokens = true;
      return c;
    }
    auto delta = choice.find("delta");
    if (delta == choice.end() || !delta->is_object()) {
      c.carries_tokens = !c.finish_reason.empty();
      return c;
    }
    if (auto t = delta->find("content"); t != delta->end() && t->is_string()) c.text = t->get<std::string>();
    // The first chunk of a chat stream only announces the role (content ""); it holds no token.
    const bool role_preamble = delta->contains("role") && c.text.empty() && c.finish_reason.empty();
    c.carries_tokens = !role_preamble;
  } catch (const std::exception& e) {
    c.is_error = true;
    c.error = std::string("bad chunk: ") + e.what();
  }
  return c;
}

}  // namespace tessera::bench
