// Proves the holder key file's contract: "<city>:<hex>" lines with comments, every malformed line
// refused naming its line and never its key bytes, and tokens that are per city, per domain
// (a device id never tokenizes like a phone), stable, and refused without a key for the city.
#include "services/card_registry/holder_keys.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace tongka::card_registry {
namespace {

constexpr char kShanghaiHex[] = "00112233445566778899aabbccddeeff";
constexpr char kNingboHex[] = "ffeeddccbbaa99887766554433221100";

TEST(HolderKeysTest, ParsesLinesAndComments) {
  auto keys = HolderKeys::FromText(absl::StrCat("# holder keys\n310000:", kShanghaiHex,
                                                "\n\n 330200 : ", kNingboHex, "  # Ningbo\n"),
                                   "keys.txt");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ((*keys)->Cities(), (std::vector<uint32_t>{310000, 330200}));
  EXPECT_TRUE((*keys)->Has(310000));
  EXPECT_FALSE((*keys)->Has(450200));
}

TEST(HolderKeysTest, RefusesBadLinesNamingTheLineNotTheKey) {
  for (const std::string& text : {
           absl::StrCat("310000 ", kShanghaiHex),                           // no colon
           absl::StrCat("31000:", kShanghaiHex),                            // five digits
           absl::StrCat("999999:", kShanghaiHex),                           // not a member
           std::string("310000:00112233445566778899aabbccddee"),            // 15 bytes
           std::string("310000:00112233445566778899aabbccddeeXX"),          // not hex
           absl::StrCat("310000:", kShanghaiHex, "\n310000:", kNingboHex),  // twice
           std::string("# nothing\n"),
       }) {
    auto keys = HolderKeys::FromText(text, "keys.txt");
    ASSERT_FALSE(keys.ok()) << text;
    EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(keys.status().message(), "keys.txt")) << keys.status();
    EXPECT_FALSE(absl::StrContains(keys.status().message(), "aabbcc")) << keys.status();
  }
}

TEST(HolderKeysTest, TokensArePerCityAndDomain) {
  auto keys = HolderKeys::FromText(absl::StrCat("310000:", kShanghaiHex, "\n330200:", kNingboHex),
                                   "keys.txt");
  ASSERT_TRUE(keys.ok());
  auto phone = (*keys)->Tokenize(310000, crypto::IdentifierDomain::kMobilePhone, "13800138000");
  ASSERT_TRUE(phone.ok()) << phone.status();
  EXPECT_EQ(phone->size(), 32u);
  EXPECT_EQ(*phone, *(*keys)->Tokenize(310000, crypto::IdentifierDomain::kMobilePhone,
                                       "+86 138-0013-8000"));
  EXPECT_NE(*phone,
            *(*keys)->Tokenize(330200, crypto::IdentifierDomain::kMobilePhone, "13800138000"));
  auto device = (*keys)->DeviceToken(310000, "13800138000");
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ(device->size(), 32u);
  EXPECT_NE(*device, *phone) << "the device domain is its own";
  EXPECT_EQ(*device, *(*keys)->DeviceToken(310000, "13800138000"));

  auto missing = (*keys)->Tokenize(450200, crypto::IdentifierDomain::kMobilePhone, "13800138000");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "450200"));
  EXPECT_EQ((*keys)->DeviceToken(450200, "dev-1").status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto bad = (*keys)->DeviceToken(310000, "has space");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(absl::StrContains(bad.status().message(), "has space"));
  EXPECT_EQ((*keys)->DeviceToken(310000, "").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tongka::card_registry
