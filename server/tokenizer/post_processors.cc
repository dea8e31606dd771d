#include "server/tokenizer/post_processors.h"

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "server/tokenizer/json_util.h"

namespace tessera::tokenizer {
namespace {

// A template flattened to: ids to emit, with -1 marking where the sequence goes.
class TemplateProcessor final : public PostProcessor {
 public:
  explicit TemplateProcessor(std::vector<int64_t> layout) : layout_(std::move(layout)) {}
  void Process(std::vector<int32_t>* ids) const override {
    std::vector<int32_t> out;
    out.reserve(ids->size() + layout_.size());
    for (int64_t item : layout_) {
      if (item < 0) {
        out.insert(out.end(), ids->begin(), ids->end());
      } else {
        out.push_back(static_cast<int32_t>(item));
      }
    }
    *ids = std::move(out);
  }

 private:
  std::vector<int64_t> layout_;
};

class NoOpProcessor final : public PostProcessor {
 public:
  void Process(std::vector<int32_t>*) const override {}
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void Process(std::vector<int32_t>* ids) const override {
    for (const auto& step : steps_) step->Process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

absl::StatusOr<std::unique_ptr<PostProcessor>> ParseTemplate(const nlohmann::json& j) {
  absl::flat_hash_map<std::string, std::vector<int32_t>> specials;
  if (auto it = j.find("special_tokens"); it != j.end() && it->is_object()) {
    for (const auto& [name, value] : it->items()) specials[name] = value.at("ids").get<std::vector<int32_t>>();
  }
  std::vector<int64_t> layout;
  const auto& single = j.at("single");
  if (!single.is_array()) return absl::InvalidArgumentError("TemplateProcessing single must be an array");
  for (const auto& piece : single) {
    if (auto seq = piece.find("Sequence"); seq != piece.end()) {
      if (seq->at("id").get<std::string>() != "A") {
        return absl::InvalidArgumentError("TemplateProcessing single template may only use sequence A");
      }
      layout.push_back(-1);
    } else if (auto sp = piece.find("SpecialToken"); sp != piece.end()) {
      const auto name = sp->at("id").get<std::string>();
      auto found = specials.find(name);
      if (found == specials.end()) {
        return absl::InvalidArgumentError(absl::StrCat("TemplateProcessing special token '", name, "' has no ids"));
      }
      layout.insert(layout.end(), found->second.begin(), found->second.end());
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unsupported TemplateProcessing piece ", piece.dump()));
    }
  }
  return std::make_unique<TemplateProcessor>(std::move(layout));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const nlohmann::json& j) {
  TS_ASSIGN_OR_RETURN(const std::string type, ComponentType(j, "post_processor"));
  if (type == "TemplateProcessing") return ParseTemplate(j);
  if (type == "ByteLevel") return std::make_unique<NoOpProcessor>();
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    // "cls": ["[CLS]", 101], "sep": ["[SEP]", 102]
    const int32_t cls = j.at("cls").at(1).get<int32_t>();
    const int32_t sep = j.at("sep").at(1).get<int32_t>();
    return std::make_unique<TemplateProcessor>(std::vector<int64_t>{cls, -1, sep});
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (const auto& item : j.at("processors")) {
      TS_ASSIGN_OR_RETURN(auto step, ParsePostProcessor(item));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  return absl::UnimplementedError(absl::StrCat("unsupported post_processor type '", type, "'"));
}

}  // namespace tessera::tokenizer
