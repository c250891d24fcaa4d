// Proves Sm4Cmac is CMAC (NIST SP 800-38B) over SM4: the SM4 block cipher is checked against the
// GB/T 32907-2016 example, then a CMAC written here from raw SM4-ECB (subkeys K1/K2 by doubling in
// GF(2^128), last block completed or padded) must agree with OpenSSL's EVP_MAC for message
// lengths around the block boundaries. Also proves VerifySm4Cmac accepts exactly the right tag.
#include "libs/crypto/sm4_cmac.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <array>
#include <string>

#include "absl/strings/escaping.h"

namespace tongka::crypto {
namespace {

using Block = std::array<uint8_t, 16>;

Sm4Key KeyFromHex(absl::string_view hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  Sm4Key key;
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

// One raw SM4 block encryption (ECB, no padding).
Block Sm4EncryptBlock(const Sm4Key& key, const Block& in) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  Block out{};
  int written = 0;
  EXPECT_EQ(EVP_EncryptInit_ex(ctx, EVP_sm4_ecb(), nullptr, key.data(), nullptr), 1);
  EXPECT_EQ(EVP_CIPHER_CTX_set_padding(ctx, 0), 1);
  EXPECT_EQ(EVP_EncryptUpdate(ctx, out.data(), &written, in.data(), 16), 1);
  EXPECT_EQ(written, 16);
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

// Doubling in GF(2^128) with the CMAC polynomial: shift left one bit, xor 0x87 on carry.
Block Double(const Block& in) {
  Block out;
  for (int i = 0; i < 16; ++i) {
    out[i] = static_cast<uint8_t>(in[i] << 1) | (i < 15 ? (in[i + 1] >> 7) : 0);
  }
  if (in[0] & 0x80) out[15] ^= 0x87;
  return out;
}

// NIST SP 800-38B, section 6.2, with SM4 as the block cipher.
Block ReferenceCmac(const Sm4Key& key, const std::string& message) {
  const Block k1 = Double(Sm4EncryptBlock(key, Block{}));
  const Block k2 = Double(k1);
  const size_t n = message.empty() ? 1 : (message.size() + 15) / 16;
  const bool last_complete = !message.empty() && message.size() % 16 == 0;
  Block x{};
  for (size_t block = 0; block < n; ++block) {
    Block m{};
    const size_t begin = block * 16;
    const size_t size = std::min<size_t>(16, message.size() - std::min(begin, message.size()));
    for (size_t i = 0; i < size; ++i) m[i] = static_cast<uint8_t>(message[begin + i]);
    if (block == n - 1) {
      if (!last_complete) m[size] = 0x80;  // pad 10*
      const Block& subkey = last_complete ? k1 : k2;
      for (int i = 0; i < 16; ++i) m[i] ^= subkey[i];
    }
    for (int i = 0; i < 16; ++i) x[i] ^= m[i];
    x = Sm4EncryptBlock(key, x);
  }
  return x;
}

TEST(Sm4Test, GbT32907Example) {
  const Sm4Key key = KeyFromHex("0123456789abcdeffedcba9876543210");
  Block plaintext;
  std::copy(key.begin(), key.end(), plaintext.begin());
  const Block ciphertext = Sm4EncryptBlock(key, plaintext);
  EXPECT_EQ(absl::BytesToHexString(AsStringView(ciphertext)), "681edf34d206965e86b3e94f536e4246");
}

TEST(Sm4CmacTest, MatchesSp80038bReferenceAcrossLengths) {
  const Sm4Key key = KeyFromHex("0123456789abcdeffedcba9876543210");
  std::string pattern;
  for (int i = 0; i < 80; ++i) pattern.push_back(static_cast<char>(i * 37 + 11));
  // The required lengths 0, 16, 20, 64, plus each side of the block boundaries.
  for (size_t size : {0, 1, 15, 16, 17, 20, 31, 32, 33, 64, 65, 80}) {
    const std::string message = pattern.substr(0, size);
    EXPECT_EQ(absl::BytesToHexString(AsStringView(Sm4Cmac(key, message))),
              absl::BytesToHexString(AsStringView(ReferenceCmac(key, message))))
        << "message length " << size;
  }
}

// One thread's MACs under keys that repeat and change (the context restarts under the key it
// holds when the key repeats): each equals the reference under its own key.
TEST(Sm4CmacTest, RepeatedAndChangingKeysOnOneThread) {
  const Sm4Key a = KeyFromHex("0123456789abcdeffedcba9876543210");
  const Sm4Key b = KeyFromHex("00112233445566778899aabbccddeeff");
  int n = 0;
  for (const Sm4Key* key : {&a, &a, &a, &b, &a, &b, &b, &a}) {
    const std::string message = "v1|tap|" + std::to_string(n++) + "|31000000000000000012";
    EXPECT_EQ(absl::BytesToHexString(AsStringView(Sm4Cmac(*key, message))),
              absl::BytesToHexString(AsStringView(ReferenceCmac(*key, message))))
        << "call " << n;
  }
}

TEST(Sm4CmacTest, DependsOnKey) {
  const Sm4Key a = KeyFromHex("0123456789abcdeffedcba9876543210");
  const Sm4Key b = KeyFromHex("0123456789abcdeffedcba9876543211");
  EXPECT_NE(Sm4Cmac(a, "tap"), Sm4Cmac(b, "tap"));
}

TEST(VerifySm4CmacTest, AcceptsOnlyTheExactTag) {
  const Sm4Key key = KeyFromHex("000102030405060708090a0b0c0d0e0f");
  const std::string message = "txn:6222021234567890123:amount_fen=200";
  const Sm4Mac mac = Sm4Cmac(key, message);
  std::string tag(AsStringView(mac));
  EXPECT_TRUE(VerifySm4Cmac(key, message, tag));

  for (size_t byte = 0; byte < tag.size(); ++byte) {
    std::string forged = tag;
    forged[byte] = static_cast<char>(forged[byte] ^ 0x01);
    EXPECT_FALSE(VerifySm4Cmac(key, message, forged)) << "bit flip in byte " << byte;
  }
  EXPECT_FALSE(VerifySm4Cmac(key, message, tag.substr(0, 8))) << "truncated tag";
  EXPECT_FALSE(VerifySm4Cmac(key, message, tag + "x")) << "over-long tag";
  EXPECT_FALSE(VerifySm4Cmac(key, message, "")) << "empty tag";
  EXPECT_FALSE(VerifySm4Cmac(key, message + " ", tag)) << "changed message";
}

}  // namespace
}  // namespace tongka::crypto
