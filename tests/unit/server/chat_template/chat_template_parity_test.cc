// Renders the fixtures of tools/make_chat_template_fixtures.py and compares byte for byte with
// what Python jinja2 (set up as transformers' apply_chat_template) produced:
//  - expected.json: real model chat templates x conversations (outputs and expected errors);
//  - features.json: one small template per language feature.
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/chat_template/chat_template.h"

namespace tessera::chat_template {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kFixtureDir = "tests/fixtures/chat_templates";

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json ReadJson(const std::string& path) {
  const std::string text = ReadText(path);
  return Json::parse(text, nullptr, /*allow_exceptions=*/false);
}

// First differing byte, with some context, for failure messages.
std::string Diff(const std::string& got, const std::string& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  const size_t from = i > 40 ? i - 40 : 0;
  return "first difference at byte " + std::to_string(i) + "\n  got:  ..." + Json(got.substr(from, 120)).dump() +
         "\n  want: ..." + Json(want.substr(from, 120)).dump();
}

TEST(ChatTemplateParityTest, RealTemplatesMatchJinja2) {
  const Json fixture = ReadJson(std::string(kFixtureDir) + "/expected.json");
  ASSERT_TRUE(fixture.is_object()) << "cannot read " << kFixtureDir << "/expected.json";
  RenderOptions options;
  options.now = fixture["now"].get<int64_t>();
  int matched = 0;
  int total = 0;
  int matched_errors = 0;
  for (const auto& [template_name, spec] : fixture["templates"].items()) {
    const std::string source = ReadText(std::string(kFixtureDir) + "/" + template_name + ".jinja");
    ASSERT_FALSE(source.empty()) << template_name;
    auto tmpl = ChatTemplate::Parse(source);
    ASSERT_TRUE(tmpl.ok()) << template_name << ": " << tmpl.status();
    for (const Json& conversation : fixture["conversations"]) {
      const std::string name = conversation["name"].get<std::string>();
      const Json& expected = spec["cases"][name];
      std::optional<Json> tools;
      if (conversation.contains("tools")) tools = conversation["tools"];
      const Json kwargs = conversation.contains("kwargs") ? conversation["kwargs"] : Json::object();
      auto context =
          BuildChatContextFromJson(conversation["messages"], tools, conversation["add_generation_prompt"].get<bool>(),
                                   spec["special_tokens"], kwargs);
      ASSERT_TRUE(context.ok()) << context.status();
      ++total;
      auto rendered = tmpl->Render(*context, options);
      if (expected.contains("output")) {
        const std::string want = expected["output"].get<std::string>();
        if (!rendered.ok()) {
          ADD_FAILURE() << template_name << " / " << name << ": expected output, got error " << rendered.status();
          continue;
        }
        if (*rendered != want) {
          ADD_FAILURE() << template_name << " / " << name << ": " << Diff(*rendered, want);
          continue;
        }
        ++matched;
      } else {
        const std::string kind = expected["error_kind"].get<std::string>();
        const std::string message = expected["error"].get<std::string>();
        if (rendered.ok()) {
          ADD_FAILURE() << template_name << " / " << name << ": expected error '" << message << "', rendered "
                        << Json(*rendered).dump();
          continue;
        }
        EXPECT_EQ(rendered.status().code(), absl::StatusCode::kInvalidArgument) << template_name << " / " << name;
        if (kind == "raise_exception") {
          // raise_exception's message is passed through unchanged for the 400 response.
          EXPECT_EQ(std::string(rendered.status().message()), message) << template_name << " / " << name;
        }
        ++matched;
        ++matched_errors;
      }
    }
  }
  EXPECT_EQ(matched, total);
  EXPECT_GE(total, 6 * 30);
  std::printf("chat template parity: %d / %d template x conversation cases match jinja2 (%d of them expected errors)\n",
              matched, total, matched_errors);
}

TEST(ChatTemplateParityTest, FeatureTemplatesMatchJinja2) {
  const Json fixture = ReadJson(std::string(kFixtureDir) + "/features.json");
  ASSERT_TRUE(fixture.is_object()) << "cannot read " << kFixtureDir << "/features.json";
  RenderOptions options;
  options.now = fixture["now"].get<int64_t>();
  int matched = 0;
  int total = 0;
  for (const Json& feature : fixture["features"]) {
    const std::string name = feature["name"].get<std::string>();
    ++total;
    auto tmpl = ChatTemplate::Parse(feature["template"].get<std::string>());
    absl::StatusOr<std::string> rendered = tmpl.ok() ? tmpl->Render(feature["context"], options) : tmpl.status();
    if (feature.contains("output")) {
      const std::string want = feature["output"].get<std::string>();
      if (!rendered.ok()) {
        ADD_FAILURE() << name << ": expected " << Json(want).dump() << ", got error " << rendered.status();
        continue;
      }
      if (*rendered != want) {
        ADD_FAILURE() << name << ": " << Diff(*rendered, want);
        continue;
      }
    } else {
      if (rendered.ok()) {
        ADD_FAILURE() << name << ": expected error '" << feature["error"].get<std::string>() << "', rendered "
                      << Json(*rendered).dump();
        continue;
      }
      if (feature["error_kind"] == "raise_exception") {
        EXPECT_EQ(std::string(rendered.status().message()), feature["error"].get<std::string>()) << name;
      }
    }
    ++matched;
  }
  EXPECT_EQ(matched, total);
  std::printf("chat template features: %d / %d feature templates match jinja2\n", matched, total);
}

}  // namespace
}  // namespace tessera::chat_template
