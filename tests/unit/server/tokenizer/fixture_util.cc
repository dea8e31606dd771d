#include "tests/unit/server/tokenizer/fixture_util.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace tessera::tokenizer::testing {

std::string FixtureDir(const std::string& name) { return absl::StrCat(kFixtureRoot, "/", name); }

std::vector<ExpectedLine> LoadExpected(const std::string& name) {
  std::vector<ExpectedLine> out;
  std::ifstream corpus(absl::StrCat(kFixtureRoot, "/corpus.jsonl"));
  std::ifstream expected(absl::StrCat(FixtureDir(name), "/expected.jsonl"));
  if (!corpus || !expected) return out;
  std::string corpus_line;
  std::string expected_line;
  while (std::getline(corpus, corpus_line) && std::getline(expected, expected_line)) {
    ExpectedLine e;
    e.text = nlohmann::json::parse(corpus_line).get<std::string>();
    const auto j = nlohmann::json::parse(expected_line);
    e.ids = j.at("ids").get<std::vector<int32_t>>();
    e.ids_sp = j.contains("ids_sp") ? j["ids_sp"].get<std::vector<int32_t>>() : e.ids;
    e.dec = j.contains("dec") ? j["dec"].get<std::string>() : e.text;
    e.dec_sp = j.contains("dec_sp") ? j["dec_sp"].get<std::string>() : e.text;
    e.dec_sk = j.contains("dec_sk") ? j["dec_sk"].get<std::string>() : e.text;
    out.push_back(std::move(e));
  }
  return out;
}

std::string Escape(const std::string& s) {
  std::string out = nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (out.size() > 160) out = out.substr(0, 160) + "...";
  return out;
}

std::string IdsToString(const std::vector<int32_t>& ids) {
  std::string out = absl::StrCat("[", absl::StrJoin(ids, ","), "]");
  if (out.size() > 200) out = out.substr(0, 200) + "...";
  return out;
}

}  // namespace tessera::tokenizer::testing
