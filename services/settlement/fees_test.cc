// Proves the fee schedule: the most specific rate wins (city and mode, then city, then default),
// fees round half up per transaction to whole fen, a full refund reverses exactly the tap's fee,
// and a bad schedule is refused naming the entry.
#include "services/settlement/fees.h"

#include "gtest/gtest.h"

namespace tongka::settlement {
namespace {

TEST(FeesTest, MostSpecificRateWins) {
  auto fees = FeeSchedule::Parse("default:50,310000:60,310000/METRO:40");
  ASSERT_TRUE(fees.ok()) << fees.status();
  EXPECT_EQ(fees->BasisPoints(310000, v1::TRANSPORT_MODE_METRO), 40);
  EXPECT_EQ(fees->BasisPoints(310000, v1::TRANSPORT_MODE_BUS), 60);
  EXPECT_EQ(fees->BasisPoints(330200, v1::TRANSPORT_MODE_METRO), 50);
  EXPECT_EQ(fees->Canonical(), "default:50,310000:60,310000/METRO:40");
}

TEST(FeesTest, RoundsHalfUpPerTransaction) {
  EXPECT_EQ(RoundedFeeFen(100, 50), 1);  // 0.5 -> 1
  EXPECT_EQ(RoundedFeeFen(99, 50), 0);   // 0.495 -> 0
  EXPECT_EQ(RoundedFeeFen(300, 40), 1);  // 1.2 -> 1
  EXPECT_EQ(RoundedFeeFen(375, 40), 2);  // 1.5 -> 2
  EXPECT_EQ(RoundedFeeFen(0, 100), 0);
  EXPECT_EQ(RoundedFeeFen(12345, 10000), 12345);
  EXPECT_EQ(RoundedFeeFen(12345, 0), 0);
  // Per transaction, not per sum: two 100 fen taps at 50 bp pay 2 fen, not round(1.0) = 1.
  EXPECT_EQ(RoundedFeeFen(100, 50) + RoundedFeeFen(100, 50), 2);
}

TEST(FeesTest, RefusesBadSchedules) {
  for (const char* bad :
       {"", "310000:50", "default:50,default:x", "default:10001", "default:50,31000:5",
        "default:50,310000/TRAM:5", "default:50,310000:5,310000:6", "default:-1"}) {
    absl::StatusOr<FeeSchedule> fees = FeeSchedule::Parse(bad);
    EXPECT_EQ(fees.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(fees.status().message().find("fee_schedule"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace tongka::settlement
