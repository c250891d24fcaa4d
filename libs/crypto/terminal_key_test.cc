// Proves DeriveTerminalKey is the documented SP 800-108 counter-mode KDF with SM4-CMAC: the key
// from OpenSSL's KBKDF equals SM4-CMAC(master, [1]_32 || label || 0x00 || terminal_id || [128]_32)
// computed here by hand, keys differ per terminal and per master key, and bad ids are rejected.
#include "libs/crypto/terminal_key.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/escaping.h"
#include "libs/crypto/sm4_cmac.h"

namespace tongka::crypto {
namespace {

Sm4Key KeyFromHex(absl::string_view hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  Sm4Key key;
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

Sm4Key ReferenceDerive(const Sm4Key& master, const std::string& terminal_id) {
  std::string input("\x00\x00\x00\x01", 4);
  input += std::string(kTerminalKeyLabel);
  input.push_back('\0');
  input += terminal_id;
  input += std::string("\x00\x00\x00\x80", 4);  // L = 128 bits
  return Sm4Cmac(master, input);
}

TEST(DeriveTerminalKeyTest, IsSp800108CounterModeWithSm4Cmac) {
  const Sm4Key master = KeyFromHex("0123456789abcdeffedcba9876543210");
  for (const std::string& id :
       {std::string("310000-BUS-000123"), std::string("T"), std::string(kTerminalIdSizeMax, 'z')}) {
    absl::StatusOr<Sm4Key> key = DeriveTerminalKey(master, id);
    ASSERT_TRUE(key.ok()) << key.status();
    EXPECT_EQ(absl::BytesToHexString(AsStringView(*key)),
              absl::BytesToHexString(AsStringView(ReferenceDerive(master, id))))
        << "terminal " << id;
  }
}

TEST(DeriveTerminalKeyTest, DiffersPerTerminalAndPerMasterKey) {
  const Sm4Key shanghai = KeyFromHex("0123456789abcdeffedcba9876543210");
  const Sm4Key ningbo = KeyFromHex("00112233445566778899aabbccddeeff");
  const Sm4Key a = *DeriveTerminalKey(shanghai, "GATE-0001");
  EXPECT_EQ(a, *DeriveTerminalKey(shanghai, "GATE-0001"));
  EXPECT_NE(a, *DeriveTerminalKey(shanghai, "GATE-0002"));
  EXPECT_NE(a, *DeriveTerminalKey(shanghai, "gate-0001")) << "ids are case-sensitive";
  EXPECT_NE(a, *DeriveTerminalKey(ningbo, "GATE-0001"));
  EXPECT_NE(a, shanghai) << "never the master key itself";
}

TEST(DeriveTerminalKeyTest, RejectsBadTerminalIds) {
  const Sm4Key master = KeyFromHex("0123456789abcdeffedcba9876543210");
  for (const std::string& id :
       {std::string(), std::string(kTerminalIdSizeMax + 1, 'a'), std::string("GATE 1"),
        std::string("GATE\0001", 6), std::string("闸机")}) {
    absl::StatusOr<Sm4Key> key = DeriveTerminalKey(master, id);
    EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << "id size " << id.size();
    EXPECT_NE(key.status().message().find("terminal_id"), absl::string_view::npos);
  }
}

}  // namespace
}  // namespace tongka::crypto
