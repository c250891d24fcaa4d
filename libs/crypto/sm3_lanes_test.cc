// Proves Sm3Many computes SM3 exactly: the GB/T 32905-2016 examples, OpenSSL's Sm3() on every
// message length from 0 to 300 bytes (lanes of one to four blocks up to 247 bytes, the one-by-one
// path beyond), and random batches that mix short and long messages, so each digest lands at its
// own message's index whatever lane it went through. Each test runs on both widths: sixteen lanes
// (AVX-512; skipped, saying so, on CPUs without it) and eight (switched to by the testing flag).
// The file runs twice: against the build that picks AVX-512 or AVX2 where the CPU has them, and
// as sm3_lanes_baseline_test against the baseline (SSE2, eight lanes only) build.
#include "libs/crypto/sm3_lanes.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "libs/crypto/sm3.h"

namespace tongka::crypto {
namespace {

// The parameter: whether the eight lanes are forced where sixteen would run.
class Sm3ManyTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    internal::sm3_wide_lanes_disabled_for_testing = GetParam();
    if (!GetParam() && Sm3LanesWidth() != 16) {
      GTEST_SKIP() << "no sixteen lanes on this CPU or build (" << Sm3LanesWidth() << " here)";
    }
  }
  void TearDown() override { internal::sm3_wide_lanes_disabled_for_testing = false; }
};

INSTANTIATE_TEST_SUITE_P(Widths, Sm3ManyTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "EightLanes" : "SixteenLanes";
                         });

std::string Hex(const Sm3Digest& digest) { return absl::BytesToHexString(AsStringView(digest)); }

std::vector<Sm3Digest> HashAll(const std::vector<std::string>& messages) {
  std::vector<absl::string_view> views(messages.begin(), messages.end());
  std::vector<Sm3Digest> digests(messages.size());
  Sm3Many(views, absl::MakeSpan(digests));
  return digests;
}

TEST_P(Sm3ManyTest, GbT32905Examples) {
  std::string abcd16;
  for (int i = 0; i < 16; ++i) abcd16 += "abcd";
  const std::vector<Sm3Digest> digests = HashAll({"abc", abcd16, ""});
  EXPECT_EQ(Hex(digests[0]), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  EXPECT_EQ(Hex(digests[1]), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
  EXPECT_EQ(Hex(digests[2]), "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b");
}

TEST_P(Sm3ManyTest, MatchesOpenSslOnEveryLengthUpTo300Bytes) {
  std::mt19937_64 rng(32905);
  std::vector<std::string> messages;
  for (size_t size = 0; size <= 300; ++size) {
    std::string message(size, '\0');
    for (char& c : message) c = static_cast<char>(rng());
    messages.push_back(message);
  }
  const std::vector<Sm3Digest> digests = HashAll(messages);
  for (size_t i = 0; i < messages.size(); ++i) {
    EXPECT_EQ(Hex(digests[i]), Hex(Sm3(messages[i]))) << messages[i].size() << " bytes";
  }
}

TEST_P(Sm3ManyTest, RandomBatchesOfShortAndLongMessagesMatchOneByOne) {
  std::mt19937_64 rng(20261202);
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> messages(rng() % 41);  // 0 to 40: partial groups of eight too
    for (std::string& message : messages) {
      // Mostly transaction-id-like messages at the one-block edge, a quarter of any length.
      const size_t size = rng() % 4 == 0 ? rng() % 300 : 50 + rng() % 8;
      message.resize(size);
      for (char& c : message) c = static_cast<char>('0' + rng() % 75);
    }
    const std::vector<Sm3Digest> digests = HashAll(messages);
    for (size_t i = 0; i < messages.size(); ++i) {
      ASSERT_EQ(Hex(digests[i]), Hex(Sm3(messages[i])))
          << "round " << round << ", message " << i << " of " << messages.size();
    }
  }
}

TEST_P(Sm3ManyTest, AnEmptyBatchWritesNothing) {
  std::vector<Sm3Digest> none;
  Sm3Many({}, absl::MakeSpan(none));
  EXPECT_TRUE(none.empty());
}

}  // namespace
}  // namespace tongka::crypto
