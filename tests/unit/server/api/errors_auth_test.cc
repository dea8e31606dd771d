#include <gtest/gtest.h>

#include <fstream>

#include "nlohmann/json.hpp"
#include "server/api/auth.h"
#include "server/api/errors.h"

namespace tessera::server {
namespace {

TEST(ErrorsTest, HttpStatusTable) {
  EXPECT_EQ(HttpStatusOf(InvalidParam("temperature", "bad")), 400);
  EXPECT_EQ(HttpStatusOf(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusOf(TooLarge("x")), 413);
  EXPECT_EQ(HttpStatusOf(Overloaded("x")), 429);
  EXPECT_EQ(HttpStatusOf(absl::ResourceExhaustedError("x")), 429);
  EXPECT_EQ(HttpStatusOf(absl::UnavailableError("x")), 503);
  EXPECT_EQ(HttpStatusOf(absl::DeadlineExceededError("x")), 504);
  EXPECT_EQ(HttpStatusOf(absl::UnauthenticatedError("x")), 401);
  EXPECT_EQ(HttpStatusOf(absl::InternalError("x")), 500);
}

TEST(ErrorsTest, OpenAiBodyShape) {
  const auto body = nlohmann::json::parse(OpenAiErrorBody(InvalidParam("messages[1].role", "role is required")));
  EXPECT_EQ(body["error"]["message"], "role is required");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "messages[1].role");
  EXPECT_EQ(body["error"]["code"], 400);
  const auto busy = nlohmann::json::parse(OpenAiErrorBody(Overloaded("queue full")));
  EXPECT_TRUE(busy["error"]["param"].is_null());
  EXPECT_EQ(busy["error"]["type"], "rate_limit_error");
  EXPECT_EQ(busy["error"]["code"], 429);
}

TEST(AuthTest, BearerKeys) {
  ApiKeys none;
  EXPECT_TRUE(none.Authorized(""));
  ApiKeys keys({"sk-one", "sk-two"});
  EXPECT_TRUE(keys.Authorized("Bearer sk-one"));
  EXPECT_TRUE(keys.Authorized("bearer   sk-two  "));
  EXPECT_FALSE(keys.Authorized("Bearer sk-on"));
  EXPECT_FALSE(keys.Authorized("Bearer sk-one1"));
  EXPECT_FALSE(keys.Authorized("sk-one"));
  EXPECT_FALSE(keys.Authorized(""));
  EXPECT_FALSE(keys.Authorized("Basic sk-one"));
}

TEST(AuthTest, KeyFile) {
  const std::string path = testing::TempDir() + "/keys.txt";
  std::ofstream(path) << "# keys\n\nsk-a\n  sk-b  \n";
  auto keys = ApiKeys::FromFile(path);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_TRUE(keys->Authorized("Bearer sk-a"));
  EXPECT_TRUE(keys->Authorized("Bearer sk-b"));
  EXPECT_FALSE(keys->Authorized("Bearer # keys"));
  EXPECT_FALSE(ApiKeys::FromFile(testing::TempDir() + "/missing").ok());
}

TEST(AuthTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace tessera::server
