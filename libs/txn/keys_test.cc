// Proves keys.h: dev master keys follow the documented SM3 derivation (pinned against an
// independent SM3 implementation), terminal keys equal crypto::DeriveTerminalKey under the city's
// master key whether or not they come from the cache (also from many threads at once), unknown
// cities are NOT_FOUND, and the key-file parser accepts comments and blank lines but rejects every
// malformed line with an error that names the line and never the key.
#include "libs/txn/keys.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libs/crypto/sm3.h"
#include "libs/crypto/terminal_key.h"
#include "libs/txn/cities.h"

namespace tongka::txn {
namespace {

std::string Hex(const crypto::Sm4Key& key) {
  return absl::BytesToHexString(crypto::AsStringView(key));
}

TEST(DevCityMasterKeyTest, FollowsTheDocumentedDerivation) {
  absl::StatusOr<crypto::Sm4Key> key = DevCityMasterKey(310000);
  ASSERT_TRUE(key.ok()) << key.status();
  // First 16 bytes of SM3("tongka/dev-city-master-key/v1/310000"), from Python's hashlib (OpenSSL).
  EXPECT_EQ(Hex(*key), "f12c10bdb9294e50ec023abff34f66ef");
  crypto::Sm3Digest digest = crypto::Sm3("tongka/dev-city-master-key/v1/330200");
  absl::StatusOr<crypto::Sm4Key> ningbo = DevCityMasterKey(330200);
  ASSERT_TRUE(ningbo.ok());
  EXPECT_TRUE(std::equal(ningbo->begin(), ningbo->end(), digest.begin()));
  EXPECT_NE(*key, *ningbo);
}

TEST(DevCityMasterKeyTest, NonMemberIsNotFound) {
  EXPECT_EQ(DevCityMasterKey(999999).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(DevCityMasterKey(0).status().code(), absl::StatusCode::kNotFound);
}

TEST(CityKeyringTest, DevHoldsEveryMemberCity) {
  absl::StatusOr<CityKeyring> keyring = CityKeyring::Dev();
  ASSERT_TRUE(keyring.ok()) << keyring.status();
  std::vector<uint32_t> cities = keyring->Cities();
  ASSERT_EQ(cities.size(), MemberCities().size());
  for (const City& city : MemberCities()) {
    absl::StatusOr<crypto::Sm4Key> key = keyring->MasterKey(city.code);
    ASSERT_TRUE(key.ok()) << city.code;
    EXPECT_EQ(*key, *DevCityMasterKey(city.code));
  }
  EXPECT_EQ(keyring->MasterKey(310001).status().code(), absl::StatusCode::kNotFound);
}

TEST(CityKeyringTest, TerminalKeyIsTheDerivationCachedOrNot) {
  CityKeyring keyring = *CityKeyring::Dev();
  crypto::Sm4Key master = *DevCityMasterKey(310000);
  crypto::Sm4Key expected = *crypto::DeriveTerminalKey(master, "310000-BUS-000123");
  for (int i = 0; i < 3; ++i) {  // the first call derives, the later ones hit the cache
    absl::StatusOr<crypto::Sm4Key> key = keyring.TerminalKey(310000, "310000-BUS-000123");
    ASSERT_TRUE(key.ok()) << key.status();
    EXPECT_EQ(*key, expected);
  }
  // A copy shares the cache and gives the same answers.
  CityKeyring copy = keyring;
  EXPECT_EQ(*copy.TerminalKey(310000, "310000-BUS-000123"), expected);
  // Other terminals and other cities get other keys.
  EXPECT_NE(*keyring.TerminalKey(310000, "310000-BUS-000124"), expected);
  EXPECT_NE(*keyring.TerminalKey(330200, "310000-BUS-000123"), expected);
}

TEST(CityKeyringTest, TerminalKeyErrors) {
  CityKeyring keyring = *CityKeyring::Dev();
  EXPECT_EQ(keyring.TerminalKey(310001, "310001-BUS-000001").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(keyring.TerminalKey(310000, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(keyring.TerminalKey(310000, std::string(65, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A failed derivation is not cached as a success.
  EXPECT_FALSE(keyring.TerminalKey(310000, "").ok());
}

TEST(CityKeyringTest, ManyThreadsAgreeWithDirectDerivation) {
  CityKeyring keyring = *CityKeyring::Dev();
  constexpr int kThreads = 4;
  constexpr int kTerminals = 500;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < kTerminals; ++i) {
          uint32_t city = MemberCities()[(i + t) % MemberCities().size()].code;
          std::string id = absl::StrCat(city, "-METRO-", 100000 + i);
          crypto::Sm4Key direct = *crypto::DeriveTerminalKey(*DevCityMasterKey(city), id);
          absl::StatusOr<crypto::Sm4Key> key = keyring.TerminalKey(city, id);
          if (!key.ok() || *key != direct) ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST(CityKeyringTest, FromTextParsesKeysCommentsAndBlankLines) {
  absl::StatusOr<CityKeyring> keyring = CityKeyring::FromText(
      "# Tongka city master keys\n"
      "\n"
      "310000 000102030405060708090a0b0c0d0e0f   # Shanghai\n"
      "  330200\tFFEEDDCCBBAA99887766554433221100\n",
      "keys.txt");
  ASSERT_TRUE(keyring.ok()) << keyring.status();
  EXPECT_EQ(keyring->Cities(), (std::vector<uint32_t>{310000, 330200}));
  EXPECT_EQ(Hex(*keyring->MasterKey(310000)), "000102030405060708090a0b0c0d0e0f");
  EXPECT_EQ(Hex(*keyring->MasterKey(330200)), "ffeeddccbbaa99887766554433221100");
  EXPECT_EQ(keyring->MasterKey(110000).status().code(), absl::StatusCode::kNotFound);
  crypto::Sm4Key master = *keyring->MasterKey(310000);
  EXPECT_EQ(*keyring->TerminalKey(310000, "310000-BUS-000001"),
            *crypto::DeriveTerminalKey(master, "310000-BUS-000001"));
}

TEST(CityKeyringTest, FromTextRejectsBadLinesNamingThem) {
  const std::string good = "310000 000102030405060708090a0b0c0d0e0f\n";
  struct Case {
    std::string text;
    std::string expected;  // a substring of the error
  };
  for (const Case& c : std::vector<Case>{
           {good + "330200\n", "keys.txt:2: expected"},
           {good + "330200 00 11\n", "keys.txt:2: expected"},
           {"31000 000102030405060708090a0b0c0d0e0f\n", "keys.txt:1: the city code"},
           {"31000x 000102030405060708090a0b0c0d0e0f\n", "keys.txt:1: the city code"},
           {"# c\n999900 000102030405060708090a0b0c0d0e0f\n", "keys.txt:2: 999900 is not a member"},
           {"310000 000102030405060708090a0b0c0d0e\n", "keys.txt:1: the key of 310000 must be 32"},
           {"310000 000102030405060708090a0b0c0d0eZZ\n",
            "keys.txt:1: the key of 310000 is not hex"},
           {good + good, "keys.txt:2: a second key for 310000"},
           {"# nothing here\n\n", "holds no keys"},
       }) {
    absl::StatusOr<CityKeyring> keyring = CityKeyring::FromText(c.text, "keys.txt");
    ASSERT_FALSE(keyring.ok()) << c.text;
    EXPECT_EQ(keyring.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(keyring.status().message().find(c.expected), std::string::npos)
        << keyring.status() << " for " << c.text;
    // Key material never appears in an error.
    EXPECT_EQ(keyring.status().message().find("0a0b0c0d"), std::string::npos);
  }
}

TEST(CityKeyringTest, CitiesWithDevKeysFindsPublicKeysInAFile) {
  absl::StatusOr<CityKeyring> dev = CityKeyring::Dev();
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ(dev->CitiesWithDevKeys(), dev->Cities());

  const std::string ningbo_dev_key = Hex(*DevCityMasterKey(330200));
  absl::StatusOr<CityKeyring> mixed = CityKeyring::FromText(
      absl::StrCat("310000 000102030405060708090a0b0c0d0e0f\n330200 ", ningbo_dev_key, "\n"),
      "keys.txt");
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_EQ(mixed->CitiesWithDevKeys(), (std::vector<uint32_t>{330200}));

  absl::StatusOr<CityKeyring> real =
      CityKeyring::FromText("310000 000102030405060708090a0b0c0d0e0f\n", "keys.txt");
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_TRUE(real->CitiesWithDevKeys().empty());
}

TEST(CityKeyringTest, FromFile) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = tmp != nullptr ? tmp : "/tmp";
  std::string path = dir + "/city_keys.txt";
  {
    std::ofstream out(path);
    out << "# dev\n450200 00112233445566778899aabbccddeeff\n";
  }
  absl::StatusOr<CityKeyring> keyring = CityKeyring::FromFile(path);
  ASSERT_TRUE(keyring.ok()) << keyring.status();
  EXPECT_EQ(Hex(*keyring->MasterKey(450200)), "00112233445566778899aabbccddeeff");
  {
    std::ofstream out(path);
    out << "450200 not-a-key\n";
  }
  absl::StatusOr<CityKeyring> bad = CityKeyring::FromFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(path + ":1:"), std::string::npos) << bad.status();
  EXPECT_EQ(CityKeyring::FromFile(dir + "/missing.txt").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tongka::txn
