#include "bench/serve/sse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tessera::bench {
namespace {

std::vector<std::string> Data(const std::vector<SseEvent>& events) {
  std::vector<std::string> out;
  for (const SseEvent& e : events) out.push_back(e.data);
  return out;
}

// Feeds `stream` in pieces of `step` bytes and collects every event's data.
std::vector<std::string> FeedInSteps(const std::string& stream, size_t step) {
  SseParser p;
  std::vector<std::string> out;
  for (size_t i = 0; i < stream.size(); i += step) {
    for (const std::string& d : Data(p.Feed(std::string_view(stream).substr(i, step)))) out.push_back(d);
  }
  return out;
}

// Examples from the WHATWG HTML standard, section "Server-sent events", event stream interpretation.
TEST(SseParserTest, SpecMultiLineData) {
  SseParser p;
  EXPECT_EQ(Data(p.Feed("data: YHOO\ndata: +2\ndata: 10\n\n")), std::vector<std::string>{"YHOO\n+2\n10"});
}

TEST(SseParserTest, SpecCommentsIdsAndOneSpaceDropped) {
  SseParser p;
  const std::string s = ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n";
  EXPECT_EQ(Data(p.Feed(s)), (std::vector<std::string>{"first event", "second event", " third event"}));
}

TEST(SseParserTest, SpecEmptyDataFields) {
  SseParser p;
  // "data" alone is a field with an empty value; the unterminated last block fires nothing.
  EXPECT_EQ(Data(p.Feed("data\n\ndata\ndata\n\ndata:")), (std::vector<std::string>{"", "\n"}));
  EXPECT_TRUE(p.HasPartial());
}

TEST(SseParserTest, EventFieldAndNoDataBlock) {
  SseParser p;
  auto events = p.Feed("event: ping\n\nevent: update\ndata: x\n\n");
  ASSERT_EQ(events.size(), 1u);  // a block without data fires no event
  EXPECT_EQ(events[0].event, "update");
  EXPECT_EQ(events[0].data, "x");
  EXPECT_FALSE(p.HasPartial());
}

TEST(SseParserTest, LineEndingsCrLfAndCr) {
  SseParser a;
  EXPECT_EQ(Data(a.Feed("data: a\r\n\r\ndata: b\r\rdata: c\n\n")), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(SseParserTest, AnySplitGivesTheSameEvents) {
  const std::string s =
      "data: {\"choices\":[{\"text\":\"hi\"}]}\r\n\r\n: keep-alive\r\ndata: two\r\ndata: lines\r\n\r\n"
      "data: [DONE]\r\n\r\n";
  const std::vector<std::string> want = {"{\"choices\":[{\"text\":\"hi\"}]}", "two\nlines", "[DONE]"};
  for (size_t step : {1u, 2u, 3u, 5u, 7u, 64u, 1000u}) EXPECT_EQ(FeedInSteps(s, step), want) << "step " << step;
}

TEST(SseParserTest, CrAtEndOfOneFeedLfAtStartOfNext) {
  SseParser p;
  EXPECT_TRUE(p.Feed("data: a\r").empty());
  // The "\n" completes "\r\n"; it is not a second (empty) line, so no event yet.
  EXPECT_TRUE(p.Feed("\n").empty());
  EXPECT_EQ(Data(p.Feed("\r\n")), std::vector<std::string>{"a"});
}

TEST(OpenAiChunkTest, CompletionsText) {
  const StreamChunk c = ParseOpenAiChunk(
      R"({"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":" the","logprobs":null,)"
      R"("finish_reason":null}],"usage":null})",
      Endpoint::kCompletions);
  EXPECT_FALSE(c.is_error);
  EXPECT_TRUE(c.carries_tokens);
  EXPECT_EQ(c.text, " the");
  EXPECT_FALSE(c.prompt_tokens.has_value());
  EXPECT_TRUE(c.finish_reason.empty());
}

TEST(OpenAiChunkTest, CompletionsEmptyTextStillCarriesAToken) {
  // A token whose bytes do not yet form a whole character arrives with text "".
  const StreamChunk c =
      ParseOpenAiChunk(R"({"choices":[{"index":0,"text":"","finish_reason":null}]})", Endpoint::kCompletions);
  EXPECT_TRUE(c.carries_tokens);
}

TEST(OpenAiChunkTest, ChatRolePreambleCarriesNoToken) {
  const StreamChunk role = ParseOpenAiChunk(
      R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})", Endpoint::kChat);
  EXPECT_FALSE(role.carries_tokens);
  const StreamChunk content =
      ParseOpenAiChunk(R"({"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]})", Endpoint::kChat);
  EXPECT_TRUE(content.carries_tokens);
  EXPECT_EQ(content.text, "Hi");
  const StreamChunk last =
      ParseOpenAiChunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"length"}]})", Endpoint::kChat);
  EXPECT_TRUE(last.carries_tokens);
  EXPECT_EQ(last.finish_reason, "length");
}

TEST(OpenAiChunkTest, UsageChunk) {
  const StreamChunk c = ParseOpenAiChunk(
      R"({"choices":[],"usage":{"prompt_tokens":33,"completion_tokens":32,"total_tokens":65}})", Endpoint::kChat);
  EXPECT_FALSE(c.carries_tokens);
  ASSERT_TRUE(c.prompt_tokens.has_value());
  EXPECT_EQ(*c.prompt_tokens, 33);
  EXPECT_EQ(*c.completion_tokens, 32);
}

TEST(OpenAiChunkTest, DoneErrorAndGarbage) {
  EXPECT_TRUE(ParseOpenAiChunk("[DONE]", Endpoint::kCompletions).done);
  const StreamChunk err = ParseOpenAiChunk(
      R"({"error":{"message":"engine down","type":"ServiceUnavailableError","param":null,"code":503}})",
      Endpoint::kCompletions);
  EXPECT_TRUE(err.is_error);
  EXPECT_EQ(err.error, "ServiceUnavailableError: engine down");
  EXPECT_TRUE(ParseOpenAiChunk("{not json", Endpoint::kCompletions).is_error);
  EXPECT_TRUE(ParseOpenAiChunk("[1,2]", Endpoint::kCompletions).is_error);
  // Wrong types inside a valid object are ignored, not fatal.
  const StreamChunk odd =
      ParseOpenAiChunk(R"({"choices":[{"text":5}],"usage":{"prompt_tokens":"x"}})", Endpoint::kCompletions);
  EXPECT_FALSE(odd.is_error);
  EXPECT_FALSE(odd.prompt_tokens.has_value());
}

}  // namespace
}  // namespace tessera::bench
