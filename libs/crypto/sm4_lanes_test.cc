// Proves each SIMD kernel (AES-NI, and GFNI with AVX-512) computes SM4-CMAC exactly as OpenSSL
// does (Sm4Cmac, itself checked against SP 800-38B in sm4_cmac_test):
//   - the kernel's S-box, all 256 inputs, against GB/T 32907's S-box computed here from its
//     algebraic definition (not copied from anywhere the kernels' constants came from);
//   - SM4-CMAC of the GB/T 32907 example key over every message length from 0 to 200 bytes, one
//     call per length and all lengths in one call (lanes of mixed block counts);
//   - random keys and messages, many keys in one call, in random order, and group sizes that do
//     not fill the last group of lanes;
//   - known answers from another implementation;
//   - Sm4CmacMany (the dispatching entry point ingest calls) equals Sm4Cmac on both of its paths
//     (the lanes switched off for the second).
// Each kernel's tests run where the CPU has its instructions and are skipped, saying so, where it
// does not; the reference and Sm4CmacMany tests run everywhere (Sm4CmacMany then uses OpenSSL).
#include "libs/crypto/sm4_lanes.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "libs/crypto/sm4_cmac.h"

namespace tongka::crypto {
namespace {

using internal::Sm4LanesIsa;

std::string IsaName(const ::testing::TestParamInfo<Sm4LanesIsa>& info) {
  return info.param == Sm4LanesIsa::kGfniAvx512 ? "GfniAvx512" : "AesNiAvx";
}

// The kernel tests, once per kernel.
class Sm4LanesTest : public ::testing::TestWithParam<Sm4LanesIsa> {
 protected:
  void SetUp() override {
    if (!internal::Sm4LanesIsaSupported(GetParam())) {
      GTEST_SKIP() << "this CPU cannot run the " << IsaName({GetParam(), 0}) << " kernel";
    }
  }

  std::vector<Sm4Mac> Lanes(const std::vector<const Sm4Key*>& keys,
                            const std::vector<std::string>& messages) {
    std::vector<absl::string_view> views(messages.begin(), messages.end());
    std::vector<Sm4Mac> tags(messages.size());
    internal::Sm4CmacLanesWith(GetParam(), keys, views, absl::MakeSpan(tags));
    return tags;
  }
};

INSTANTIATE_TEST_SUITE_P(Kernels, Sm4LanesTest,
                         ::testing::Values(Sm4LanesIsa::kAesNiAvx, Sm4LanesIsa::kGfniAvx512),
                         IsaName);

// GF(2^8) modulo x^8+x^7+x^6+x^5+x^4+x^2+1 (SM4's field).
uint8_t FieldMultiply(uint8_t a, uint8_t b) {
  unsigned product = 0, x = a;
  for (; b != 0; b >>= 1) {
    if (b & 1) product ^= x;
    x <<= 1;
    if (x & 0x100) x ^= 0x1f5;
  }
  return static_cast<uint8_t>(product);
}

uint8_t FieldInverse(uint8_t a) {
  if (a == 0) return 0;
  for (unsigned b = 1; b < 256; ++b) {
    if (FieldMultiply(a, static_cast<uint8_t>(b)) == 1) return static_cast<uint8_t>(b);
  }
  ADD_FAILURE() << "no inverse of " << int{a};
  return 0;
}

// SM4's affine map: output bit i is the parity of x and row i of the circulant matrix whose rows
// are 0xa7 rotated (bit order as the standard writes the matrix, most significant bit first).
uint8_t SboxAffine(uint8_t x) {
  static const uint8_t kRows[8] = {0xa7, 0x4f, 0x9e, 0x3d, 0x7a, 0xf4, 0xe9, 0xd3};
  uint8_t out = 0;
  for (int i = 0; i < 8; ++i) {
    out |= static_cast<uint8_t>((__builtin_popcount(kRows[i] & x) & 1) << i);
  }
  return out;
}

// S(x) = A * (A * x + C)^-1 + C with C = 0xd3 (Liu et al.'s algebraic form of GB/T 32907's box).
uint8_t ReferenceSbox(uint8_t x) { return SboxAffine(FieldInverse(SboxAffine(x) ^ 0xd3)) ^ 0xd3; }

TEST(Sm4ReferenceTest, ReferenceSboxIsTheStandardsTable) {
  // The first row of the table printed in GB/T 32907-2016, 6.2, and two later entries: the
  // reference itself must be right before it judges the lanes.
  const uint8_t kFirstRow[16] = {0xd6, 0x90, 0xe9, 0xfe, 0xcc, 0xe1, 0x3d, 0xb7,
                                 0x16, 0xb6, 0x14, 0xc2, 0x28, 0xfb, 0x2c, 0x05};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(ReferenceSbox(static_cast<uint8_t>(i)), kFirstRow[i]);
  EXPECT_EQ(ReferenceSbox(0x10), 0x2b);
  EXPECT_EQ(ReferenceSbox(0xff), 0x48);
}

TEST_P(Sm4LanesTest, SboxOfEveryByte) {
  for (int first = 0; first < 256; first += 16) {
    uint8_t in[16], out[16];
    for (int i = 0; i < 16; ++i) in[i] = static_cast<uint8_t>(first + i);
    internal::Sm4SubBytesLanes(GetParam(), in, out);
    for (int i = 0; i < 16; ++i)
      EXPECT_EQ(out[i], ReferenceSbox(in[i])) << "S(" << first + i << ")";
  }
}

Sm4Key ExampleKey() {
  // GB/T 32907-2016, appendix A.
  const std::string bytes = absl::HexStringToBytes("0123456789abcdeffedcba9876543210");
  Sm4Key key;
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

std::string Counting(size_t length) {
  std::string message(length, '\0');
  for (size_t i = 0; i < length; ++i) message[i] = static_cast<char>(i * 7 + 1);
  return message;
}

TEST_P(Sm4LanesTest, EveryLengthAloneAndAllTogether) {
  const Sm4Key key = ExampleKey();
  std::vector<const Sm4Key*> keys;
  std::vector<std::string> messages;
  for (size_t length = 0; length <= 200; ++length) {
    const std::string message = Counting(length);
    EXPECT_EQ(Lanes({&key}, {message})[0], Sm4Cmac(key, message)) << "length " << length;
    keys.push_back(&key);
    messages.push_back(message);
  }
  const std::vector<Sm4Mac> tags = Lanes(keys, messages);
  for (size_t i = 0; i < messages.size(); ++i) {
    EXPECT_EQ(tags[i], Sm4Cmac(key, messages[i])) << "length " << messages[i].size();
  }
}

TEST_P(Sm4LanesTest, RandomKeysAndMessagesInOneCall) {
  std::mt19937_64 random(20261202);
  for (size_t count : {1, 3, 7, 8, 9, 16, 17, 31, 32, 33, 100, 1000}) {
    std::vector<Sm4Key> key_values(count);
    std::vector<const Sm4Key*> keys;
    std::vector<std::string> messages;
    for (size_t i = 0; i < count; ++i) {
      for (uint8_t& byte : key_values[i]) byte = static_cast<uint8_t>(random());
      std::string message(random() % 140, '\0');
      for (char& c : message) c = static_cast<char>(random());
      messages.push_back(std::move(message));
    }
    // Some lanes share a key, as a terminal's transactions do.
    for (size_t i = 0; i < count; ++i) keys.push_back(&key_values[i % 3 == 2 ? i - 1 : i]);
    const std::vector<Sm4Mac> tags = Lanes(keys, messages);
    for (size_t i = 0; i < count; ++i) {
      ASSERT_EQ(tags[i], Sm4Cmac(*keys[i], messages[i]))
          << "message " << i << " of " << count << ", " << messages[i].size() << " bytes";
    }
  }
}

// Known answers computed with another implementation (Python's cryptography package, whose SM4
// gives GB/T 32907's example ciphertext 681edf34d206965e86b3e94f536e4246 for this key).
TEST_P(Sm4LanesTest, KnownAnswers) {
  const Sm4Key key = ExampleKey();
  std::string counting(115, '\0');
  for (size_t i = 0; i < counting.size(); ++i) counting[i] = static_cast<char>(i);
  const std::vector<std::string> messages = {"", "0123456789abcdef",
                                             "v1|tap|a transaction of thirty-seven", counting};
  const std::vector<std::string> expected = {
      "29e154322e5c7bd8ee6a25ba549b24bc", "e5932eabfebca9c0b1061197a59550f0",
      "221cb7568fc9bef09ea6a39f0a09f145", "ef9514c4c86fbc907beeee70a2a70358"};
  const std::vector<Sm4Mac> tags = Lanes({&key, &key, &key, &key}, messages);
  for (size_t i = 0; i < messages.size(); ++i) {
    EXPECT_EQ(absl::BytesToHexString(AsStringView(tags[i])), expected[i]) << messages[i].size();
  }
}

TEST_P(Sm4LanesTest, AWrongKeyOrMessageGivesAnotherTag) {
  Sm4Key key = ExampleKey();
  const std::string message = Counting(97);
  const Sm4Mac tag = Lanes({&key}, {message})[0];
  std::string changed = message;
  changed[50] ^= 1;
  EXPECT_NE(Lanes({&key}, {changed})[0], tag);
  key[15] ^= 1;
  EXPECT_NE(Lanes({&key}, {message})[0], tag);
}

class Sm4CmacManyTest : public ::testing::TestWithParam<bool> {
 protected:
  // The parameter: whether the lanes are switched off, so OpenSSL's path runs on this CPU too.
  void SetUp() override { internal::sm4_lanes_disabled_for_testing = GetParam(); }
  void TearDown() override { internal::sm4_lanes_disabled_for_testing = false; }
};

INSTANTIATE_TEST_SUITE_P(LanesOrOpenSsl, Sm4CmacManyTest, ::testing::Bool());

TEST_P(Sm4CmacManyTest, ManyEqualsOneByOneOnAnyCpu) {
  if (GetParam()) {
    EXPECT_FALSE(Sm4LanesSupported());
  }
  const Sm4Key key = ExampleKey();
  Sm4Key other = key;
  other[0] ^= 0x5a;
  std::vector<const Sm4Key*> keys;
  std::vector<std::string> messages;
  for (size_t i = 0; i < 50; ++i) {
    keys.push_back(i % 2 == 0 ? &key : &other);
    messages.push_back(Counting(i * 3));
  }
  std::vector<absl::string_view> views(messages.begin(), messages.end());
  std::vector<Sm4Mac> tags(messages.size());
  Sm4CmacMany(keys, views, absl::MakeSpan(tags));
  for (size_t i = 0; i < messages.size(); ++i) {
    EXPECT_EQ(tags[i], Sm4Cmac(*keys[i], messages[i])) << i;
    EXPECT_TRUE(Sm4MacEquals(tags[i], AsStringView(tags[i])));
  }
  EXPECT_FALSE(Sm4MacEquals(tags[0], AsStringView(tags[0]).substr(0, 15)));
  std::string wrong(AsStringView(tags[0]));
  wrong[15] ^= 1;
  EXPECT_FALSE(Sm4MacEquals(tags[0], wrong));
}

}  // namespace
}  // namespace tongka::crypto
