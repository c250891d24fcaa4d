// Proves Sm3 and HmacSm3 compute the standard functions: SM3 against the GB/T 32905-2016 examples,
// HMAC-SM3 against the GM/T 0042-2015 Appendix D.3 vectors and, for key lengths the vectors do
// not cover (empty, exactly one block, longer than a block), against an RFC 2104 construction
// built here from raw Sm3.
#include "libs/crypto/sm3.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/escaping.h"

namespace tongka::crypto {
namespace {

std::string Hex(const Sm3Digest& digest) { return absl::BytesToHexString(AsStringView(digest)); }

TEST(Sm3Test, GbT32905ExampleAbc) {
  EXPECT_EQ(Hex(Sm3("abc")), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
}

TEST(Sm3Test, GbT32905Example64Bytes) {
  std::string message;
  for (int i = 0; i < 16; ++i) message += "abcd";
  EXPECT_EQ(Hex(Sm3(message)), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
}

TEST(Sm3Test, EmptyInput) {
  EXPECT_EQ(Hex(Sm3("")), "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b");
}

struct HmacVector {
  std::string key;
  std::string message;
  const char* expected_hex;
};

// GM/T 0042-2015 (HMAC with SM3), Appendix D.3.
TEST(HmacSm3Test, GmT0042AppendixD3) {
  std::string key32;
  for (int i = 1; i <= 32; ++i) key32.push_back(static_cast<char>(i));
  std::string key37 = key32;
  for (int i = 33; i <= 37; ++i) key37.push_back(static_cast<char>(i));
  const std::string abcd_twice =
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
      "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  const HmacVector vectors[] = {
      {key32, abcd_twice, "ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a"},
      {key37, std::string(50, '\xcd'),
       "220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae"},
      {std::string(32, '\x0b'), "Hi There",
       "c0ba18c68b90c88bc07de794bfc7d2c8d19ec31ed8773bc2b390c9604e0be11e"},
      {"Jefe", "what do ya want for nothing?",
       "2e87f1d16862e6d964b50a5200bf2b10b764faa9680a296a2405f24bec39f882"},
  };
  for (const HmacVector& v : vectors) {
    EXPECT_EQ(Hex(HmacSm3(v.key, v.message)), v.expected_hex) << "message " << v.message;
  }
}

// RFC 2104: HMAC(K, m) = H((K0 ^ opad) || H((K0 ^ ipad) || m)), K0 = K (hashed if longer than
// the 64-byte block) zero-padded to the block.
Sm3Digest ReferenceHmacSm3(std::string key, const std::string& message) {
  constexpr size_t kBlock = 64;
  if (key.size() > kBlock) key = std::string(AsStringView(Sm3(key)));
  key.resize(kBlock, '\0');
  std::string inner(kBlock, '\0');
  std::string outer(kBlock, '\0');
  for (size_t i = 0; i < kBlock; ++i) {
    inner[i] = static_cast<char>(key[i] ^ 0x36);
    outer[i] = static_cast<char>(key[i] ^ 0x5c);
  }
  const Sm3Digest inner_digest = Sm3(inner + message);
  return Sm3(outer + std::string(AsStringView(inner_digest)));
}

TEST(HmacSm3Test, MatchesRfc2104ConstructionForAllKeyLengthClasses) {
  const std::string message = "tongka: one card everywhere";
  for (size_t key_size : {0, 1, 16, 63, 64, 65, 128, 200}) {
    std::string key;
    for (size_t i = 0; i < key_size; ++i) key.push_back(static_cast<char>(i * 7 + 3));
    EXPECT_EQ(Hex(HmacSm3(key, message)), Hex(ReferenceHmacSm3(key, message)))
        << "key size " << key_size;
  }
}

// An empty key is a key: a view with no data pointer gives the same tag as an empty string.
TEST(HmacSm3Test, AnEmptyKeyWithoutDataIsTheEmptyKey) {
  EXPECT_EQ(Hex(HmacSm3(absl::string_view(), "abc")), Hex(HmacSm3(std::string(), "abc")));
  EXPECT_EQ(Hex(HmacSm3(absl::string_view(), "abc")), Hex(ReferenceHmacSm3("", "abc")));
}

TEST(HmacSm3Test, DifferentKeysGiveDifferentTags) {
  EXPECT_NE(HmacSm3("key-one-0123456789", "m"), HmacSm3("key-two-0123456789", "m"));
}

}  // namespace
}  // namespace tongka::crypto
