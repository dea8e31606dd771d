#include "server/pipeline/stop_matcher.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace tessera::server {
namespace {

// Feeds `pieces` and returns what was emitted.
std::string FeedAll(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& p : pieces) {
    out += m.Feed(p);
    if (m.stopped()) return out;
  }
  return out + m.Flush();
}

TEST(StopMatcherTest, NoStopsPassesEverythingThrough) {
  StopMatcher m({}, false);
  EXPECT_EQ(m.Feed("abc"), "abc");
  EXPECT_EQ(m.Flush(), "");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcherTest, MatchAcrossPieces) {
  StopMatcher m({"\n\nUser:"}, false);
  EXPECT_EQ(m.Feed("Hello\n"), "Hello");  // "\n" could start the stop string
  EXPECT_EQ(m.Feed("\nUs"), "");
  EXPECT_EQ(m.Feed("er: more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(*m.matched(), "\n\nUser:");
  EXPECT_EQ(m.Feed("later"), "");
  EXPECT_EQ(m.Flush(), "");
}

TEST(StopMatcherTest, FalseStartIsReleased) {
  StopMatcher m({"###"}, false);
  EXPECT_EQ(m.Feed("a#"), "a");
  EXPECT_EQ(m.Feed("#b"), "##b");
  EXPECT_EQ(m.Flush(), "");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcherTest, IncludeStopKeepsTheStopString) {
  StopMatcher m({"END"}, true);
  EXPECT_EQ(FeedAll(m, {"the E", "ND is near"}), "the END");
}

TEST(StopMatcherTest, FirstCompletedMatchWins) {
  StopMatcher m({"bcd", "c"}, false);
  EXPECT_EQ(FeedAll(m, {"abcd"}), "ab");  // "c" is complete before "bcd" is
  EXPECT_EQ(*m.matched(), "c");
}

TEST(StopMatcherTest, FlushReturnsHeldTail) {
  StopMatcher m({"xyz"}, false);
  EXPECT_EQ(m.Feed("abx"), "ab");
  EXPECT_EQ(m.Flush(), "x");
}

// Against a brute-force reference: the output is the full text cut before the earliest
// occurrence of any stop string, whatever the chunking.
TEST(StopMatcherTest, RandomAgainstBruteForce) {
  std::mt19937 rng(1234);
  const std::string alphabet = "ab\n";
  auto rand_str = [&](int lo, int hi) {
    std::string s(std::uniform_int_distribution<int>(lo, hi)(rng), 'a');
    for (char& c : s) c = alphabet[std::uniform_int_distribution<int>(0, 2)(rng)];
    return s;
  };
  for (int iter = 0; iter < 5000; ++iter) {
    std::vector<std::string> stops;
    const int n_stops = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int i = 0; i < n_stops; ++i) stops.push_back(rand_str(1, 4));
    const std::string text = rand_str(0, 30);
    std::vector<std::string> pieces;
    for (size_t pos = 0; pos < text.size();) {
      const size_t len = std::min<size_t>(text.size() - pos, std::uniform_int_distribution<int>(1, 5)(rng));
      pieces.push_back(text.substr(pos, len));
      pos += len;
    }
    // Reference: the occurrence that ends first (at the same end, the one starting first).
    size_t first_end = std::string::npos;
    size_t ref_cut = std::string::npos;
    for (size_t end = 1; end <= text.size() && first_end == std::string::npos; ++end) {
      for (size_t start = 0; start < end; ++start) {
        for (const std::string& s : stops) {
          if (end - start == s.size() && text.compare(start, s.size(), s) == 0) {
            if (first_end == std::string::npos || start < ref_cut) ref_cut = start;
            first_end = end;
          }
        }
      }
    }
    StopMatcher m(stops, false);
    const std::string got = FeedAll(m, pieces);
    const std::string want = ref_cut == std::string::npos ? text : text.substr(0, ref_cut);
    ASSERT_EQ(got, want) << "text='" << text << "' iter " << iter;
  }
}

}  // namespace
}  // namespace tessera::server
