// Proves both stages together on a real RocksDB in a temp dir, without Kafka: records are fed to
// stage one directly and its outbox to the ledger, as the log would (testing/state_test.h).
//   - a window's report nets taps, fees and refunds to the fen, and moves the floats;
//   - the same transactions in two batchings give the same report digest, and a row's hours
//     add up to the row.
#include "services/settlement/settlement_state.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/settlement/testing/state_test.h"

namespace tongka::settlement {
namespace {

using state_store::StateBatch;
using state_store::StateStore;
using testing::FreshStore;
using testing::kDayStartUs;
using testing::kHourUs;
using testing::kLiuzhou;
using testing::kNingbo;
using testing::kShanghai;
using testing::StateTest;
using testing::Txn;

class SettlementStateTest : public StateTest {};

TEST_F(SettlementStateTest, ReportNetsTapsFeesAndRefundsToTheFen) {
  auto store = FreshStore("report");
  TxnStage stage;
  WindowLedger ledger({});
  const int64_t at = kDayStartUs + 9 * kHourUs;
  std::vector<v1::Event> events = {
      Txn(v1::Event::kTap, kShanghai, kNingbo, 1000, at, 1),        // fee 10 (100 bp)
      Txn(v1::Event::kTap, kShanghai, kNingbo, 250, at + 1, 2),     // fee 3 (2.5 -> 3)
      Txn(v1::Event::kRefund, kShanghai, kNingbo, 250, at + 2, 3),  // reverses 250 and fee 3
      Txn(v1::Event::kTap, kNingbo, kShanghai, 300, at + 3, 4),     // fee 2 (1.5 -> 2)
      Txn(v1::Event::kTap, kShanghai, kShanghai, 500, at + 4, 5),   // same city: float only
      Txn(v1::Event::kLoad, kShanghai, kShanghai, 5000, at + 5, 6),
  };
  for (const auto& entry : StageOne(store.get(), &stage, events, 0, 0, 100)) {
    ASSERT_TRUE(Ledger(store.get(), &ledger, entry.value).ok());
  }
  ASSERT_TRUE(Ledger(store.get(), &ledger,
                     Command("2026-11-24", v1::WINDOW_STATE_CLOSED, at + kHourUs, "close-1"))
                  .ok());
  EXPECT_TRUE(Outcome(store.get(), "close-1").accepted());
  auto report = ReadReport(ViewOf(*store), "2026-11-24");
  ASSERT_TRUE(report.ok() && report->has_value());
  const v1::SettlementReport& r = **report;
  ASSERT_EQ(r.bilateral_size(), 3);
  // Sorted by (issuer, acquirer): 310000->310000, 310000->330200, 330200->310000.
  EXPECT_EQ(r.bilateral(1).issuer_city(), kShanghai);
  EXPECT_EQ(r.bilateral(1).count(), 3);
  EXPECT_EQ(r.bilateral(1).gross_fen(), 1000);
  EXPECT_EQ(r.bilateral(1).fee_fen(), 10);
  EXPECT_EQ(r.bilateral(1).net_fen(), 990);
  EXPECT_EQ(r.bilateral(1).refunds_fen(), 250);
  EXPECT_EQ(r.bilateral(2).net_fen(), 298);
  EXPECT_EQ(r.bilateral(0).gross_fen(), 500);
  ASSERT_EQ(r.net_size(), 2);
  EXPECT_EQ(r.net(0).city(), kShanghai);
  EXPECT_EQ(r.net(0).net_fen(), 298 - 990);
  EXPECT_EQ(r.net(1).net_fen(), 990 - 298);
  EXPECT_EQ(r.total_payable_fen(), 692);
  EXPECT_EQ(r.total_receivable_fen(), 692);
  EXPECT_TRUE(CheckReportInvariants(r).empty());
  EXPECT_EQ(ReportDigest(r), r.digest());

  auto floats = ReadFloats(ViewOf(*store));
  ASSERT_TRUE(floats.ok());
  const FloatRecord& shanghai = floats->at(kShanghai);
  EXPECT_EQ(shanghai.loads_fen(), 5000);
  EXPECT_EQ(shanghai.spent_fen(), 1000 + 250 + 500);
  EXPECT_EQ(shanghai.refunded_fen(), 250);
  EXPECT_EQ(floats->at(kNingbo).spent_fen(), 300);
}

TEST_F(SettlementStateTest, BatchingDoesNotChangeTheReport) {
  std::vector<v1::Event> events;
  const uint32_t cities[] = {kShanghai, kNingbo, kLiuzhou};
  for (uint64_t i = 0; i < 500; ++i) {
    events.push_back(Txn(i % 17 == 0 ? v1::Event::kRefund : v1::Event::kTap, cities[i % 3],
                         cities[(i / 3) % 3], 100 + static_cast<int64_t>(i % 91),
                         kDayStartUs + static_cast<int64_t>(i) * 150000000, i + 1));
  }
  std::string digests[2];
  for (int run = 0; run < 2; ++run) {
    acked_ = 0;
    ledger_offset_ = 0;
    auto store = FreshStore(absl::StrCat("batching", run));
    TxnStage stage;
    WindowLedger ledger({});
    for (const auto& entry : StageOne(store.get(), &stage, events, 3, 0, run == 0 ? 7 : 500)) {
      ASSERT_TRUE(Ledger(store.get(), &ledger, entry.value).ok());
    }
    ASSERT_TRUE(
        Ledger(store.get(), &ledger,
               Command("2026-11-24", v1::WINDOW_STATE_CLOSED, kDayStartUs + 30 * kHourUs, "close"))
            .ok());
    auto report = ReadReport(ViewOf(*store), "2026-11-24");
    ASSERT_TRUE(report.ok() && report->has_value());
    digests[run] = (*report)->digest();
    // The hours of a row add up to the row.
    auto hours = ReadHours(ViewOf(*store), "2026-11-24", kShanghai, kNingbo);
    auto pairs = ReadPairs(ViewOf(*store), "2026-11-24");
    ASSERT_TRUE(hours.ok() && pairs.ok());
    v1::SettlementCell sum;
    for (const auto& hour : *hours) AddCell(hour, &sum);
    bool found = false;
    for (const auto& pair : *pairs) {
      if (pair.issuer_city() == kShanghai && pair.acquirer_city() == kNingbo) {
        found = true;
        EXPECT_EQ(DigestHex(pair), DigestHex(sum));
        EXPECT_EQ(GrossFenOf(pair), GrossFenOf(sum));
      }
    }
    EXPECT_TRUE(found);
  }
  EXPECT_EQ(digests[0], digests[1]);
}

}  // namespace
}  // namespace tongka::settlement
