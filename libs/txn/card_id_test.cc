// Proves the card id contract of card_id.h: MakeCardId produces 19 digits that ParseCardId reads
// back to the issuer city, the Luhn digit catches every single-digit error, and malformed ids are
// rejected with the rule they broke.
#include "libs/txn/card_id.h"

#include <gtest/gtest.h>

#include <string>

namespace tongka::txn {
namespace {

TEST(CardIdTest, RoundTrip) {
  for (uint32_t city : {110000u, 310000u, 450200u, 650100u}) {
    for (uint64_t serial : {0ULL, 1ULL, 1234ULL, 999999999999ULL}) {
      std::string id = MakeCardId(city, serial);
      ASSERT_EQ(id.size(), 19u);
      EXPECT_EQ(id.substr(0, 6), std::to_string(city));
      EXPECT_EQ(std::stoull(id.substr(6, 12)), serial);
      absl::StatusOr<uint32_t> issuer = ParseCardId(id);
      ASSERT_TRUE(issuer.ok()) << id << ": " << issuer.status();
      EXPECT_EQ(*issuer, city);
    }
  }
}

TEST(CardIdTest, KnownLuhnDigit) {
  // Check digit computed independently (a separate Luhn implementation in Python).
  EXPECT_EQ(MakeCardId(310000, 1234), "3100000000000012349");
  EXPECT_EQ(MakeCardId(450200, 0), "4502000000000000001");
}

TEST(CardIdTest, EverySingleDigitChangeFailsLuhn) {
  const std::string id = MakeCardId(330200, 987654321ULL);
  for (size_t pos = 0; pos < id.size(); ++pos) {
    for (char digit = '0'; digit <= '9'; ++digit) {
      if (digit == id[pos]) continue;
      std::string bad = id;
      bad[pos] = digit;
      absl::StatusOr<uint32_t> issuer = ParseCardId(bad);
      ASSERT_FALSE(issuer.ok()) << bad;
      EXPECT_EQ(issuer.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(issuer.status().message().find("card_id_luhn"), std::string::npos);
    }
  }
}

TEST(CardIdTest, FormatFailures) {
  const std::string id = MakeCardId(310000, 42);
  for (const std::string& bad :
       {std::string(), id.substr(0, 18), id + "0", std::string("31000000000000A0428"),
        std::string(" ") + id.substr(1), std::string("-100000000000004211")}) {
    absl::StatusOr<uint32_t> issuer = ParseCardId(bad);
    ASSERT_FALSE(issuer.ok()) << bad;
    EXPECT_EQ(issuer.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(issuer.status().message().find("card_id_format"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace tongka::txn
