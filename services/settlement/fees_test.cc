// Proves the fee schedule: the most specific rate wins (city and mode, then city, then default),
// fees round half up per transaction to whole fen, refunds of one tap reverse its fee
// cumulatively (never more fee or money than the tap carried, exactly its fee when refunded in
// full), and a bad schedule is refused naming the entry.
#include "services/settlement/fees.h"

#include <algorithm>
#include <vector>

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

// Applies refunds of `amounts` to one tap of `tap_fen` (0: the refunds do not name it) at `bp`;
// returns what they reversed in total.
RefundReversal RefundAll(int64_t tap_fen, int32_t bp, const std::vector<int64_t>& amounts) {
  RefundedSoFar so_far;
  RefundReversal total;
  for (int64_t amount : amounts) {
    RefundReversal one = ReverseRefund(so_far, amount, tap_fen, bp);
    EXPECT_GE(one.refund_fen, 0);
    EXPECT_GE(one.fee_fen, 0);
    so_far.refunded_fen += one.refund_fen;
    so_far.fee_reversed_fen += one.fee_fen;
    total.refund_fen += one.refund_fen;
    total.fee_fen += one.fee_fen;
  }
  return total;
}

TEST(FeesTest, PartialRefundsNeverReverseMoreFeeThanTheTapPaid) {
  // A 300 fen tap at 50 bp pays round(1.5) = 2; refunded alone, three 100 fen refunds would
  // reverse round(0.5) * 3 = 3.
  ASSERT_EQ(RoundedFeeFen(300, 50), 2);
  RefundReversal total = RefundAll(300, 50, {100, 100, 100});
  EXPECT_EQ(total.refund_fen, 300);
  EXPECT_EQ(total.fee_fen, 2);
  EXPECT_EQ(ReverseRefund({}, 100, 300, 50).fee_fen, 1);
  EXPECT_EQ(ReverseRefund({.refunded_fen = 100, .fee_reversed_fen = 1}, 100, 300, 50).fee_fen, 0);
  EXPECT_EQ(ReverseRefund({.refunded_fen = 200, .fee_reversed_fen = 1}, 100, 300, 50).fee_fen, 1);
  // The same without the tap's amount: the fee is that of the money refunded.
  EXPECT_EQ(RefundAll(0, 50, {100, 100, 100}).fee_fen, 2);
  // A full refund reverses exactly the tap's fee, however it is split.
  for (int64_t tap = 1; tap <= 700; tap += 13) {
    for (int32_t bp : {0, 1, 40, 50, 99, 100, 333, 10000}) {
      std::vector<int64_t> pieces;
      for (int64_t left = tap, piece = 1; left > 0; piece = piece % 7 + 1) {
        pieces.push_back(std::min(left, piece));
        left -= pieces.back();
      }
      RefundReversal whole = RefundAll(tap, bp, pieces);
      EXPECT_EQ(whole.refund_fen, tap);
      EXPECT_EQ(whole.fee_fen, RoundedFeeFen(tap, bp)) << tap << " at " << bp;
      // Any part of it reverses no more than the tap's fee.
      pieces.pop_back();
      EXPECT_LE(RefundAll(tap, bp, pieces).fee_fen, RoundedFeeFen(tap, bp));
    }
  }
}

TEST(FeesTest, RefundsBeyondTheTapReverseNoMoreMoneyThanItCarried) {
  // 250 then 100 of a 300 fen tap: the second reverses the 50 that is left, and its share of fee.
  RefundReversal first = ReverseRefund({}, 250, 300, 50);
  EXPECT_EQ(first.refund_fen, 250);
  EXPECT_EQ(first.fee_fen, 1);  // round(1.25)
  RefundReversal second = ReverseRefund({.refunded_fen = 250, .fee_reversed_fen = 1}, 100, 300, 50);
  EXPECT_EQ(second.refund_fen, 50);
  EXPECT_EQ(second.fee_fen, 1);  // round(1.5) - 1
  // Past the tap: nothing more.
  RefundReversal third = ReverseRefund({.refunded_fen = 300, .fee_reversed_fen = 2}, 80, 300, 50);
  EXPECT_EQ(third.refund_fen, 0);
  EXPECT_EQ(third.fee_fen, 0);
  // One refund larger than its tap.
  RefundReversal over = ReverseRefund({}, 1000, 300, 50);
  EXPECT_EQ(over.refund_fen, 300);
  EXPECT_EQ(over.fee_fen, 2);
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
