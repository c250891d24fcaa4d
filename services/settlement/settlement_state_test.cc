// Proves the settlement apply logic on a real RocksDB in a temp dir, without Kafka: records are
// fed to the appliers directly and stage one's outbox is fed to the ledger, as the log would.
//   - stage one: cells per (window, issuer, acquirer, hour) with per-transaction fees; refunds
//     reverse what they refund (amount and fee), all refunds of one tap together never more
//     than the tap carried, and what it keeps per refunded tap is bounded by a horizon; loads
//     move float only; the id digest is
//     order-independent; a rebuilt stage one emits nothing the ledger already covers;
//   - the ledger: resent deltas dropped (by offsets and by event id), overlapping ones refused;
//     the lifecycle and its refusals by rule; the report's netting invariants, and a close whose
//     report breaks one withheld (window stays CLOSING, event written, counted); a late delta is
//     carried into the next window; abort carries everything; the float per issuer;
//   - the id index follows the money: ids of late and moved money are listed under the window
//     that counted it, in step with its cells;
//   - the same transactions in two batchings give the same report digest.
#include "services/settlement/settlement_state.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace tongka::settlement {
namespace {

using state_store::StateBatch;
using state_store::StateStore;

// 2026-11-24 00:00 +08:00.
constexpr int64_t kDayStartUs = 1795449600000000;
constexpr int64_t kHourUs = 3600000000;
constexpr uint32_t kShanghai = 310000;
constexpr uint32_t kNingbo = 330200;
constexpr uint32_t kLiuzhou = 450200;

std::unique_ptr<StateStore> FreshStore(const std::string& name) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/", name);
  std::filesystem::remove_all(dir);
  auto store = StateStore::Open({.path = dir});
  EXPECT_TRUE(store.ok()) << store.status();
  return std::move(*store);
}

v1::Event Txn(v1::Event::BodyCase kind, uint32_t issuer, uint32_t acquirer, int64_t amount_fen,
              int64_t recorded_at_us, uint64_t seq) {
  v1::Event event;
  std::string terminal = absl::StrCat(acquirer, "-METRO-000001");
  event.set_event_id(absl::StrCat("txn/", terminal, "/", seq));
  event.set_recorded_at_us(recorded_at_us);
  v1::TxnCommon* txn = nullptr;
  if (kind == v1::Event::kTap) {
    event.mutable_tap()->set_amount_fen(amount_fen);
    event.mutable_tap()->set_mode(v1::TRANSPORT_MODE_METRO);
    txn = event.mutable_tap()->mutable_txn();
  } else if (kind == v1::Event::kRefund) {
    event.mutable_refund()->set_amount_fen(amount_fen);
    event.mutable_refund()->set_original_terminal_id(terminal);
    event.mutable_refund()->set_original_terminal_seq(1);
    txn = event.mutable_refund()->mutable_txn();
  } else {
    event.mutable_load()->set_amount_fen(amount_fen);
    txn = event.mutable_load()->mutable_txn();
  }
  txn->set_card_id(absl::StrCat(issuer, "000000000001"));
  txn->set_issuer_city(issuer);
  txn->set_acquirer_city(acquirer);
  txn->set_terminal_id(terminal);
  txn->set_terminal_seq(seq);
  return event;
}

class SettlementStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    calendar_.emplace(*BusinessCalendar::Create("Asia/Shanghai", absl::Hours(24)));
    fees_.emplace(*FeeSchedule::Parse("default:50,330200/METRO:100"));
  }

  // Applies `events` to stage one as partition `partition` from `first_offset`, in batches of
  // `batch_size`, and returns the outbox entries it emitted.
  std::vector<state_store::OutboxRecord> StageOne(StateStore* store, TxnStage* stage,
                                                  const std::vector<v1::Event>& events,
                                                  int32_t partition, int64_t first_offset,
                                                  size_t batch_size) {
    std::vector<state_store::OutboxRecord> emitted;
    for (size_t i = 0; i < events.size(); i += batch_size) {
      StateBatch batch(store);
      for (size_t j = i; j < std::min(events.size(), i + batch_size); ++j) {
        event_log::Record record =
            event_log::Record::Owned(kTxnTopic, partition, first_offset + static_cast<int64_t>(j),
                                     "k", events[j].SerializeAsString());
        EXPECT_TRUE(stage->Apply(record, batch).ok());
        batch.SetNextOffset({kTxnTopic, partition}, record.offset + 1);
      }
      EXPECT_TRUE(stage->FinishBatch(batch).ok());
      EXPECT_TRUE(store->Commit(batch).ok());
    }
    auto outbox = store->ReadOutbox(100000);
    EXPECT_TRUE(outbox.ok());
    for (auto& entry : *outbox) {
      if (entry.sequence > acked_) emitted.push_back(entry);
    }
    if (!outbox->empty()) acked_ = outbox->back().sequence;
    return emitted;
  }

  // Feeds one event to the ledger as the next record of tongka.settlement partition 0.
  absl::Status Ledger(StateStore* store, WindowLedger* ledger, const std::string& bytes) {
    StateBatch batch(store);
    event_log::Record record =
        event_log::Record::Owned(kSettlementTopic, 0, ledger_offset_++, "k", bytes);
    absl::Status applied = ledger->Apply(record, batch);
    if (!applied.ok()) return applied;
    batch.SetNextOffset({kSettlementTopic, 0}, record.offset + 1);
    return store->Commit(batch);
  }

  std::vector<std::string> LedgerOutbox(StateStore* store) {
    std::vector<std::string> out;
    auto outbox = store->ReadOutbox(100000);
    for (auto& entry : *outbox) {
      if (entry.sequence > acked_) out.push_back(entry.value);
    }
    if (!outbox->empty()) acked_ = outbox->back().sequence;
    return out;
  }

  std::string Command(const std::string& window, v1::WindowState target, int64_t at_us,
                      const std::string& request_id,
                      v1::TenantKind kind = v1::TENANT_KIND_MINISTRY) {
    v1::Event event;
    event.set_event_id(absl::StrCat("cmd/ministry/", request_id));
    event.set_recorded_at_us(at_us);
    event.mutable_source()->set_kind(kind);
    if (kind == v1::TENANT_KIND_CITY_OPERATOR) event.mutable_source()->set_city(kShanghai);
    v1::WindowCloseRequested* request = event.mutable_window_close_requested();
    request->set_request_id(request_id);
    request->set_window_id(window);
    request->set_target_state(target);
    return event.SerializeAsString();
  }

  RequestOutcome Outcome(StateStore* store, const std::string& request_id) {
    auto outcome = ReadOutcome(ViewOf(*store), absl::StrCat("cmd/ministry/", request_id));
    EXPECT_TRUE(outcome.ok() && outcome->has_value()) << request_id;
    return outcome->value_or(RequestOutcome());
  }

  std::optional<BusinessCalendar> calendar_;
  std::optional<FeeSchedule> fees_;
  uint64_t acked_ = 0;
  int64_t ledger_offset_ = 0;
};

TEST_F(SettlementStateTest, ReportNetsTapsFeesAndRefundsToTheFen) {
  auto store = FreshStore("report");
  TxnStage stage(&*calendar_, &*fees_);
  WindowLedger ledger({.calendar = &*calendar_});
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

// The cumulative refund rule of fees.h through stage one and the report: refunds of one tap name
// it (terminal and seq), and together reverse no more fee, nor money, than the tap carried.
TEST_F(SettlementStateTest, PartialRefundsReverseNoMoreThanTheirTap) {
  auto store = FreshStore("partial-refunds");
  TxnStage stage(&*calendar_, &*fees_);
  WindowLedger ledger({.calendar = &*calendar_});
  const int64_t at = kDayStartUs + 9 * kHourUs;
  // Ningbo cards at Shanghai's metro (50 bp). Tap seq 1 (300 fen, fee 2) is refunded three
  // times by 100 fen: 2 fen reversed in all (alone, each would reverse round(0.5) = 1).
  std::vector<v1::Event> events = {Txn(v1::Event::kTap, kNingbo, kShanghai, 300, at, 1)};
  for (uint64_t seq = 2; seq <= 4; ++seq) {
    events.push_back(Txn(v1::Event::kRefund, kNingbo, kShanghai, 100, at + 1, seq));
  }
  // Liuzhou cards at Shanghai: tap seq 1 of another terminal (300 fen, fee 2); refunds naming its
  // amount of 250, 100 (only 50 left) and 80 (nothing left), then one of 40 not naming it.
  auto liuzhou = [&](v1::Event::BodyCase kind, int64_t amount_fen, uint64_t seq,
                     int64_t original_amount_fen) {
    v1::Event event = Txn(kind, kLiuzhou, kShanghai, amount_fen, at + 2, seq);
    const std::string terminal = "310000-METRO-000002";
    event.set_event_id(absl::StrCat("txn/", terminal, "/", seq));
    v1::TxnCommon* txn = kind == v1::Event::kTap ? event.mutable_tap()->mutable_txn()
                                                 : event.mutable_refund()->mutable_txn();
    txn->set_terminal_id(terminal);
    if (kind == v1::Event::kRefund) {
      event.mutable_refund()->set_original_terminal_id(terminal);
      event.mutable_refund()->set_original_amount_fen(original_amount_fen);
    }
    return event;
  };
  events.push_back(liuzhou(v1::Event::kTap, 300, 1, 0));
  events.push_back(liuzhou(v1::Event::kRefund, 250, 2, 300));
  events.push_back(liuzhou(v1::Event::kRefund, 100, 3, 300));
  events.push_back(liuzhou(v1::Event::kRefund, 80, 4, 300));
  events.push_back(liuzhou(v1::Event::kRefund, 40, 5, 0));
  for (const auto& entry : StageOne(store.get(), &stage, events, 0, 0, 3)) {
    ASSERT_TRUE(Ledger(store.get(), &ledger, entry.value).ok());
  }
  ASSERT_TRUE(Ledger(store.get(), &ledger,
                     Command("2026-11-24", v1::WINDOW_STATE_CLOSED, at + kHourUs, "close"))
                  .ok());
  auto report = ReadReport(ViewOf(*store), "2026-11-24");
  ASSERT_TRUE(report.ok() && report->has_value());
  ASSERT_EQ((*report)->bilateral_size(), 2);
  const v1::BilateralPosition& ningbo = (*report)->bilateral(0);
  ASSERT_EQ(ningbo.issuer_city(), kNingbo);
  EXPECT_EQ(ningbo.refunds_fen(), 300);
  EXPECT_EQ(ningbo.gross_fen(), 0);
  EXPECT_EQ(ningbo.fee_fen(), 0) << "the tap's 2 fen, reversed exactly once";
  EXPECT_EQ(ningbo.net_fen(), 0);
  const v1::BilateralPosition& liuzhou_row = (*report)->bilateral(1);
  ASSERT_EQ(liuzhou_row.issuer_city(), kLiuzhou);
  EXPECT_EQ(liuzhou_row.refunds(), 4);
  EXPECT_EQ(liuzhou_row.refunds_fen(), 300) << "never more money than the tap carried";
  EXPECT_EQ(liuzhou_row.gross_fen(), 0);
  EXPECT_EQ(liuzhou_row.fee_fen(), 0);
  EXPECT_TRUE(CheckReportInvariants(**report).empty());
  EXPECT_EQ(ReadFloats(ViewOf(*store))->at(kLiuzhou).refunded_fen(), 300);
  EXPECT_EQ(ReadStats(ViewOf(*store))->refunds_capped, 3);
  // The id index holds what each refund reversed, so its sums agree with the report.
  auto ids =
      ReadCellTransactions(ViewOf(*store), "2026-11-24", "2026-11-24", kLiuzhou, kShanghai, 9);
  ASSERT_TRUE(ids.ok());
  std::vector<std::pair<std::string, int64_t>> expected = {{"txn/310000-METRO-000002/1", 300},
                                                           {"txn/310000-METRO-000002/2", -250},
                                                           {"txn/310000-METRO-000002/3", -50},
                                                           {"txn/310000-METRO-000002/4", 0},
                                                           {"txn/310000-METRO-000002/5", 0}};
  EXPECT_EQ(*ids, expected);
}

// What stage one keeps per refunded tap is bounded: once a partition's refunds reach
// kRefundHorizonWindows windows past a tap's first refund, the tap's record goes, and the same
// log leaves the same records however it is batched.
TEST_F(SettlementStateTest, RefundRecordsLeaveWithTheHorizon) {
  std::vector<v1::Event> events;
  events.push_back(Txn(v1::Event::kRefund, kNingbo, kShanghai, 100, kDayStartUs + 60, 2));
  v1::Event other = Txn(v1::Event::kRefund, kNingbo, kShanghai, 100, kDayStartUs + 120, 3);
  other.mutable_refund()->set_original_terminal_seq(2);
  events.push_back(other);
  v1::Event later = Txn(v1::Event::kRefund, kNingbo, kShanghai, 100,
                        kDayStartUs + (int64_t{kRefundHorizonWindows} + 1) * 24 * kHourUs + 60, 4);
  later.mutable_refund()->set_original_terminal_seq(3);
  events.push_back(later);
  auto refund_keys = [](StateStore& store) {
    std::map<std::string, std::string> keys;
    for (const char* prefix : {"rf/", "rfd/", "rfh/"}) {
      EXPECT_TRUE(store
                      .ScanPrefix(prefix,
                                  [&](absl::string_view key, absl::string_view value) {
                                    keys.emplace(std::string(key), std::string(value));
                                    return true;
                                  })
                      .ok());
    }
    return keys;
  };
  std::map<std::string, std::string> kept[2];
  for (int run = 0; run < 2; ++run) {
    acked_ = 0;
    auto store = FreshStore(absl::StrCat("refund-horizon", run));
    TxnStage stage(&*calendar_, &*fees_);
    StageOne(store.get(), &stage, events, 0, 0, run == 0 ? 1 : 3);
    kept[run] = refund_keys(*store);
  }
  EXPECT_EQ(kept[0], kept[1]);
  EXPECT_EQ(kept[0].count("rf/0000/txn/310000-METRO-000001/1"), 0u);
  EXPECT_EQ(kept[0].count("rf/0000/txn/310000-METRO-000001/2"), 0u);
  EXPECT_EQ(kept[0].count("rf/0000/txn/310000-METRO-000001/3"), 1u);
  EXPECT_EQ(kept[0].size(), 3u) << "one tap's rf and rfd, and the horizon";
}

TEST_F(SettlementStateTest, InvariantsCatchABrokenReport) {
  v1::SettlementCell pair;
  pair.set_issuer_city(kShanghai);
  pair.set_acquirer_city(kNingbo);
  pair.set_taps(1);
  pair.set_taps_fen(1000);
  pair.set_fee_fen(5);
  v1::SettlementReport report = BuildReport("2026-11-24", {pair});
  EXPECT_TRUE(CheckReportInvariants(report).empty());
  report.mutable_net(0)->set_net_fen(report.net(0).net_fen() + 1);
  std::vector<std::string> violations = CheckReportInvariants(report);
  ASSERT_FALSE(violations.empty());
  EXPECT_NE(violations[0].find("net_sums_to_zero"), std::string::npos);
}

// A close whose report breaks an invariant publishes nothing: the window stays CLOSING (still
// taking deltas) with the violations recorded for GetWindow, the owner writes a
// SettlementInvariantViolated event, the counter behind the alert moves; a later close whose
// report holds goes through and clears them. The broken report is forced by an injected check.
TEST_F(SettlementStateTest, ABrokenReportIsWithheldAndTheWindowStaysClosing) {
  auto store = FreshStore("violation");
  TxnStage stage(&*calendar_, &*fees_);
  bool broken = true;
  WindowLedger ledger(
      {.calendar = &*calendar_, .check_report = [&](const v1::SettlementReport& report) {
         std::vector<std::string> violations = CheckReportInvariants(report);
         if (broken) {
           violations.push_back("payables_equal_receivables: receivable 990 fen, payable 989 fen");
         }
         return violations;
       }});
  const int64_t at = kDayStartUs + 9 * kHourUs;
  for (const auto& entry :
       StageOne(store.get(), &stage, {Txn(v1::Event::kTap, kShanghai, kNingbo, 1000, at, 1)}, 0, 0,
                10)) {
    ASSERT_TRUE(Ledger(store.get(), &ledger, entry.value).ok());
  }
  const int64_t closing_at = kDayStartUs + 24 * kHourUs;
  ASSERT_TRUE(Ledger(store.get(), &ledger,
                     Command("2026-11-24", v1::WINDOW_STATE_CLOSING, closing_at, "closing"))
                  .ok());
  LedgerOutbox(store.get());
  ASSERT_TRUE(Ledger(store.get(), &ledger,
                     Command("2026-11-24", v1::WINDOW_STATE_CLOSED, closing_at + kHourUs, "close"))
                  .ok());
  RequestOutcome refused = Outcome(store.get(), "close");
  EXPECT_FALSE(refused.accepted());
  EXPECT_EQ(refused.rule(), "invariant_violation");
  EXPECT_EQ(refused.state(), v1::WINDOW_STATE_CLOSING);
  EXPECT_NE(refused.message().find("payables_equal_receivables"), std::string::npos);
  auto window = ReadWindow(ViewOf(*store), "2026-11-24");
  ASSERT_TRUE(window.ok() && window->has_value());
  EXPECT_EQ((*window)->state(), v1::WINDOW_STATE_CLOSING);
  EXPECT_TRUE((*window)->report_digest().empty());
  ASSERT_EQ((*window)->invariant_violations_size(), 1);
  EXPECT_NE((*window)->invariant_violations(0).find("payable 989 fen"), std::string::npos);
  EXPECT_FALSE(ReadReport(ViewOf(*store), "2026-11-24")->has_value()) << "no report stored";
  EXPECT_EQ(ReadStats(ViewOf(*store))->invariant_violations, 1);
  std::vector<std::string> written = LedgerOutbox(store.get());
  ASSERT_EQ(written.size(), 1u) << "the violation only: no report, no window change";
  v1::Event violated;
  ASSERT_TRUE(violated.ParseFromString(written[0]));
  ASSERT_TRUE(violated.has_settlement_invariant_violated());
  EXPECT_EQ(violated.settlement_invariant_violated().window_id(), "2026-11-24");
  EXPECT_EQ(violated.settlement_invariant_violated().request_id(), "close");
  EXPECT_EQ(violated.settlement_invariant_violated().state(), v1::WINDOW_STATE_CLOSING);
  ASSERT_EQ(violated.settlement_invariant_violated().violations_size(), 1);
  // Read back from the log, the event changes nothing.
  ASSERT_TRUE(Ledger(store.get(), &ledger, written[0]).ok());
  EXPECT_EQ((*ReadWindow(ViewOf(*store), "2026-11-24"))->state(), v1::WINDOW_STATE_CLOSING);

  // Still CLOSING: a delta still lands in it.
  for (const auto& entry :
       StageOne(store.get(), &stage, {Txn(v1::Event::kTap, kShanghai, kNingbo, 500, at + 1, 2)}, 0,
                1, 10)) {
    ASSERT_TRUE(Ledger(store.get(), &ledger, entry.value).ok());
  }
  EXPECT_EQ((*ReadWindow(ViewOf(*store), "2026-11-24"))->transactions(), 2);

  broken = false;
  ASSERT_TRUE(Ledger(store.get(), &ledger,
                     Command("2026-11-24", v1::WINDOW_STATE_CLOSED, closing_at + 2 * kHourUs,
                             "close-again"))
                  .ok());
  EXPECT_TRUE(Outcome(store.get(), "close-again").accepted());
  window = ReadWindow(ViewOf(*store), "2026-11-24");
  EXPECT_EQ((*window)->state(), v1::WINDOW_STATE_CLOSED);
  EXPECT_EQ((*window)->invariant_violations_size(), 0);
  auto report = ReadReport(ViewOf(*store), "2026-11-24");
  ASSERT_TRUE(report.ok() && report->has_value());
  EXPECT_EQ((*report)->bilateral(0).gross_fen(), 1500);
  EXPECT_EQ(ReadStats(ViewOf(*store))->invariant_violations, 1);
}

TEST_F(SettlementStateTest, IdDigestIsOrderIndependentAndAdditive) {
  v1::SettlementCell a, b, sum;
  for (const char* id : {"txn/x/1", "txn/x/2", "txn/x/3"}) AddIdToDigest(id, &a);
  for (const char* id : {"txn/x/3", "txn/x/1", "txn/x/2"}) AddIdToDigest(id, &b);
  EXPECT_EQ(DigestHex(a), DigestHex(b));
  v1::SettlementCell first, second;
  AddIdToDigest("txn/x/1", &first);
  AddIdToDigest("txn/x/2", &second);
  AddIdToDigest("txn/x/3", &second);
  AddCell(first, &sum);
  AddCell(second, &sum);
  EXPECT_EQ(DigestHex(sum), DigestHex(a));
  v1::SettlementCell other;
  for (const char* id : {"txn/x/1", "txn/x/2", "txn/x/4"}) AddIdToDigest(id, &other);
  EXPECT_NE(DigestHex(other), DigestHex(a));
  EXPECT_EQ(DigestHex(a).size(), 32u);
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
    TxnStage stage(&*calendar_, &*fees_);
    WindowLedger ledger({.calendar = &*calendar_});
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

TEST_F(SettlementStateTest, ResentDeltasAreDroppedAndOverlapsRefused) {
  auto store = FreshStore("dedup");
  TxnStage stage(&*calendar_, &*fees_);
  WindowLedger ledger({.calendar = &*calendar_});
  std::vector<v1::Event> events;
  for (uint64_t i = 0; i < 10; ++i) {
    events.push_back(Txn(v1::Event::kTap, kShanghai, kNingbo, 100, kDayStartUs + 1000, i + 1));
  }
  auto emitted = StageOne(store.get(), &stage, events, 0, 0, 5);
  ASSERT_EQ(emitted.size(), 2u);
  ASSERT_TRUE(Ledger(store.get(), &ledger, emitted[0].value).ok());
  ASSERT_TRUE(Ledger(store.get(), &ledger, emitted[0].value).ok());  // resend
  ASSERT_TRUE(Ledger(store.get(), &ledger, emitted[1].value).ok());
  ASSERT_TRUE(Ledger(store.get(), &ledger, emitted[0].value).ok());  // late resend
  auto stats = ReadStats(ViewOf(*store));
  EXPECT_EQ(stats->duplicates_dropped, 2);
  auto window = ReadWindow(ViewOf(*store), "2026-11-24");
  EXPECT_EQ((*window)->transactions(), 10);

  // A delta covering offsets 3..12 overlaps what was applied (0..9): refused, never guessed.
  v1::Event overlap;
  overlap.set_event_id("settlement/tongka.txn/0/3-12/2026-11-24/0");
  overlap.mutable_settlement_delta()->set_window_id("2026-11-24");
  overlap.mutable_settlement_delta()->set_first_offset(3);
  overlap.mutable_settlement_delta()->set_last_offset(12);
  EXPECT_EQ(Ledger(store.get(), &ledger, overlap.SerializeAsString()).code(),
            absl::StatusCode::kInternal);

  // A lost volume: a fresh store whose ledger has replayed tongka.settlement (which holds both
  // deltas) and whose stage one then rebuilds from offset 0 re-indexes everything but emits only
  // what the log does not hold yet.
  auto rebuilt_store = FreshStore("dedup-rebuilt");
  ledger_offset_ = 0;
  acked_ = 0;
  WindowLedger rebuilt_ledger({.calendar = &*calendar_});
  for (const auto& entry : emitted) {
    ASSERT_TRUE(Ledger(rebuilt_store.get(), &rebuilt_ledger, entry.value).ok());
  }
  TxnStage rebuilt(&*calendar_, &*fees_);
  events.push_back(Txn(v1::Event::kTap, kShanghai, kNingbo, 100, kDayStartUs + 2000, 11));
  auto fresh = StageOne(rebuilt_store.get(), &rebuilt, events, 0, 0, 4);
  ASSERT_EQ(fresh.size(), 1u);
  v1::Event only;
  ASSERT_TRUE(only.ParseFromString(fresh[0].value));
  EXPECT_EQ(only.settlement_delta().first_offset(), 10);
  EXPECT_EQ(only.settlement_delta().cells(0).taps(), 1);
  auto index = ReadCellTransactions(ViewOf(*rebuilt_store), "2026-11-24", "2026-11-24", kShanghai,
                                    kNingbo, 0);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->size(), 11u) << "every id indexed again";
}

// The id index holds one chunk per hour and partition bucket, appended to batch by batch: reading
// a pair's hour back gathers its entries from every chunk of every partition, sorted by id, with
// signed amounts; loads are not indexed; a broken chunk is reported as corruption, never half
// read.
TEST_F(SettlementStateTest, IdIndexGathersEveryChunkOfACell) {
  auto store = FreshStore("index");
  TxnStage stage(&*calendar_, &*fees_);
  std::vector<v1::Event> p0;
  std::vector<v1::Event> p1;
  for (uint64_t seq = 1; seq <= 7; ++seq) {
    p0.push_back(Txn(v1::Event::kTap, kShanghai, kNingbo, 100 + seq, kDayStartUs + 60, seq));
    p1.push_back(Txn(v1::Event::kTap, kShanghai, kNingbo, 200 + seq, kDayStartUs + 60, 100 + seq));
  }
  p0.push_back(Txn(v1::Event::kRefund, kShanghai, kNingbo, 50, kDayStartUs + 60, 8));
  p0.push_back(Txn(v1::Event::kLoad, kShanghai, kShanghai, 5000, kDayStartUs + 60, 9));
  StageOne(store.get(), &stage, p0, 0, 0, 3);  // three batches: three chunks
  StageOne(store.get(), &stage, p1, 1, 0, 4);  // two more, from another partition
  auto index =
      ReadCellTransactions(ViewOf(*store), "2026-11-24", "2026-11-24", kShanghai, kNingbo, 0);
  ASSERT_TRUE(index.ok()) << index.status();
  std::vector<std::pair<std::string, int64_t>> expected;
  for (uint64_t seq = 1; seq <= 7; ++seq) {
    expected.emplace_back(absl::StrCat("txn/330200-METRO-000001/", seq), 100 + seq);
    expected.emplace_back(absl::StrCat("txn/330200-METRO-000001/", 100 + seq), 200 + seq);
  }
  expected.emplace_back("txn/330200-METRO-000001/8", -50);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(*index, expected);
  auto loads =
      ReadCellTransactions(ViewOf(*store), "2026-11-24", "2026-11-24", kShanghai, kShanghai, 0);
  ASSERT_TRUE(loads.ok());
  EXPECT_TRUE(loads->empty()) << "loads are float, not transactions of a row";

  // An entry cut short (pair 1 -> 2, its id promises three bytes, two follow, no amount): the
  // whole hour's index is unreadable, whichever pair is asked for.
  StateBatch batch(store.get());
  batch.Append(IndexChunkKey("2026-11-24", 5, 0, 0), std::string("\x01\x02\x03"
                                                                 "ab",
                                                                 5));
  ASSERT_TRUE(store->Commit(batch).ok());
  EXPECT_EQ(ReadCellTransactions(ViewOf(*store), "2026-11-24", "2026-11-24", kShanghai, kNingbo, 5)
                .status()
                .code(),
            absl::StatusCode::kInternal);
}

// Same log, same state: the index chunks (and every other key stage one writes) do not depend on
// how the log was batched.
TEST_F(SettlementStateTest, IndexBytesDoNotDependOnBatching) {
  std::vector<v1::Event> events;
  for (uint64_t seq = 1; seq <= 2500; ++seq) {
    const uint32_t acquirer = seq % 3 == 0 ? kShanghai : kNingbo;
    // Every fifth record was recorded in the next hour (ingest replicas' clocks differ a
    // little): a partition's records go back and forth between two hours' chunks.
    const int64_t recorded_at = kDayStartUs + 60 + (seq % 5 == 0 ? kHourUs : 0);
    events.push_back(Txn(seq % 50 == 0 ? v1::Event::kRefund : v1::Event::kTap, kShanghai, acquirer,
                         100 + static_cast<int64_t>(seq % 7), recorded_at, seq));
  }
  auto scan = [](StateStore& store) {
    std::map<std::string, std::string> keys;
    EXPECT_TRUE(store
                    .ScanPrefix("t/",
                                [&](absl::string_view key, absl::string_view value) {
                                  keys.emplace(std::string(key), std::string(value));
                                  return true;
                                })
                    .ok());
    return keys;
  };
  auto small = FreshStore("batching-small");
  TxnStage small_stage(&*calendar_, &*fees_);
  StageOne(small.get(), &small_stage, events, 0, 0, 7);
  acked_ = 0;
  auto large = FreshStore("batching-large");
  TxnStage large_stage(&*calendar_, &*fees_);
  StageOne(large.get(), &large_stage, events, 0, 0, 1000);
  const std::map<std::string, std::string> a = scan(*small);
  EXPECT_EQ(a.size(), 6u) << "2 hours x 3 buckets of 1000 offsets";
  size_t bytes = 0;
  for (const auto& [key, value] : a) bytes += value.size();
  EXPECT_GT(bytes, 2500u * 28) << "every id is in the index";
  EXPECT_TRUE(a == scan(*large)) << "batches of 7 and of 1000 wrote different index bytes";
}

// Prepare (the prefetch thread's read and hash) changes nothing: the same records applied with
// Prepare ahead of Apply, on records that moved in memory since, with Prepare out of step with
// Apply, or without Prepare, write the same deltas and the same state.
TEST_F(SettlementStateTest, PreparedRecordsApplyExactlyAsUnprepared) {
  std::vector<v1::Event> events;
  for (uint64_t seq = 1; seq <= 600; ++seq) {
    const v1::Event::BodyCase kind = seq % 40 == 0  ? v1::Event::kRefund
                                     : seq % 9 == 0 ? v1::Event::kLoad
                                                    : v1::Event::kTap;
    events.push_back(Txn(kind, kShanghai, seq % 4 == 0 ? kShanghai : kNingbo,
                         100 + static_cast<int64_t>(seq % 13), kDayStartUs + 60, seq));
  }
  std::string garbage = "\xff\xff";  // unusable: counted, in every mode alike
  enum class Mode { kUnprepared, kPrepared, kPreparedThenMoved, kOutOfStep };
  auto run = [&](Mode mode, const std::string& name) {
    auto store = FreshStore(name);
    TxnStage stage(&*calendar_, &*fees_);
    std::vector<std::string> deltas;
    for (size_t i = 0; i < events.size(); i += 100) {
      std::vector<event_log::Record> records;
      for (size_t j = i; j < i + 100; ++j) {
        records.push_back(
            event_log::Record::Owned(kTxnTopic, 0, static_cast<int64_t>(j), "k",
                                     j == 250 ? garbage : events[j].SerializeAsString()));
      }
      if (mode == Mode::kPrepared) stage.Prepare(records);
      if (mode == Mode::kPreparedThenMoved) {
        stage.Prepare(records);
        std::vector<event_log::Record> moved;
        for (event_log::Record& record : records) moved.push_back(std::move(record));
        records = std::move(moved);
      }
      if (mode == Mode::kOutOfStep) {
        std::vector<event_log::Record> later;
        for (size_t j = 50; j < records.size(); ++j) later.push_back(records[j].Clone());
        stage.Prepare(later);  // prepared records that do not come next
      }
      StateBatch batch(store.get());
      for (const event_log::Record& record : records) {
        EXPECT_TRUE(stage.Apply(record, batch).ok());
        batch.SetNextOffset({kTxnTopic, 0}, record.offset + 1);
      }
      EXPECT_TRUE(stage.FinishBatch(batch).ok());
      EXPECT_TRUE(store->Commit(batch).ok());
    }
    auto outbox = store->ReadOutbox(100000);
    EXPECT_TRUE(outbox.ok());
    for (const auto& entry : *outbox) deltas.push_back(entry.value);
    std::map<std::string, std::string> state;
    EXPECT_TRUE(store
                    ->ScanPrefix("",
                                 [&](absl::string_view key, absl::string_view value) {
                                   state.emplace(std::string(key), std::string(value));
                                   return true;
                                 })
                    .ok());
    return std::pair(deltas, state);
  };
  const auto unprepared = run(Mode::kUnprepared, "prepare-none");
  ASSERT_FALSE(unprepared.first.empty());
  EXPECT_EQ(unprepared.second.at("stats/txn_invalid"), "1");
  EXPECT_TRUE(run(Mode::kPrepared, "prepare-ahead") == unprepared);
  EXPECT_TRUE(run(Mode::kPreparedThenMoved, "prepare-moved") == unprepared);
  EXPECT_TRUE(run(Mode::kOutOfStep, "prepare-out-of-step") == unprepared);
}

// A rebuilt stage one re-counts a window whose delta the log lost, in the same batch as new
// records of another window: each delta covers only its own window's offsets, so neither overlaps
// what the ledger applied. (With one range per partition, window W's delta would start at W''s
// first re-counted offset, below W's coverage, and stop the ledger.)
TEST_F(SettlementStateTest, RebuildAcrossWindowsNeverOverlapsCoverage) {
  const int64_t w = kDayStartUs + 60;                 // window 2026-11-24
  const int64_t w_next = kDayStartUs + 25 * kHourUs;  // window 2026-11-25
  std::vector<v1::Event> events;
  for (uint64_t offset = 0; offset <= 6; ++offset) {
    events.push_back(
        Txn(v1::Event::kTap, kShanghai, kNingbo, 100, offset % 2 == 0 ? w : w_next, offset + 1));
  }
  // Live: offsets 0..5 in one batch -> a delta for each window.
  auto live = FreshStore("rebuild-live");
  TxnStage live_stage(&*calendar_, &*fees_);
  std::vector<v1::Event> first_six(events.begin(), events.begin() + 6);
  auto emitted = StageOne(live.get(), &live_stage, first_six, 0, 0, 6);
  ASSERT_EQ(emitted.size(), 2u);
  // The volume is lost; the log kept only the first window's delta.
  auto rebuilt = FreshStore("rebuild-store");
  acked_ = 0;
  ledger_offset_ = 0;
  WindowLedger ledger({.calendar = &*calendar_});
  v1::Event kept;
  ASSERT_TRUE(kept.ParseFromString(emitted[0].value));
  ASSERT_EQ(kept.settlement_delta().window_id(), "2026-11-24");
  ASSERT_TRUE(Ledger(rebuilt.get(), &ledger, emitted[0].value).ok());
  // The rebuild reads offsets 0..6 in one batch: re-counts the second window's 1, 3, 5 and
  // counts the first window's new 6.
  TxnStage rebuilt_stage(&*calendar_, &*fees_);
  auto fresh = StageOne(rebuilt.get(), &rebuilt_stage, events, 0, 0, 7);
  ASSERT_EQ(fresh.size(), 2u);
  for (const auto& entry : fresh) {
    v1::Event delta;
    ASSERT_TRUE(delta.ParseFromString(entry.value));
    if (delta.settlement_delta().window_id() == "2026-11-24") {
      EXPECT_EQ(delta.settlement_delta().first_offset(), 6);
    }
    absl::Status applied = Ledger(rebuilt.get(), &ledger, entry.value);
    EXPECT_TRUE(applied.ok()) << applied;
  }
  EXPECT_EQ((*ReadWindow(ViewOf(*rebuilt), "2026-11-24"))->transactions(), 4);
  EXPECT_EQ((*ReadWindow(ViewOf(*rebuilt), "2026-11-25"))->transactions(), 3);
}

TEST_F(SettlementStateTest, LifecycleRefusesByRule) {
  auto store = FreshStore("lifecycle");
  WindowLedger ledger({.calendar = &*calendar_});
  const int64_t at = kDayStartUs + 30 * kHourUs;
  auto send = [&](const std::string& window, v1::WindowState target, const std::string& id,
                  v1::TenantKind kind = v1::TENANT_KIND_MINISTRY) {
    EXPECT_TRUE(Ledger(store.get(), &ledger, Command(window, target, at, id, kind)).ok());
    return Outcome(store.get(), id);
  };
  EXPECT_EQ(send("2026-11-24", v1::WINDOW_STATE_SETTLED, "a").rule(), "unknown_window");
  EXPECT_EQ(send("2026-11-30", v1::WINDOW_STATE_CLOSED, "b").rule(), "window_not_started");
  EXPECT_EQ(send("2026-11-24", v1::WINDOW_STATE_CLOSED, "c", v1::TENANT_KIND_CITY_OPERATOR).rule(),
            "ministry_only");
  EXPECT_TRUE(send("2026-11-24", v1::WINDOW_STATE_CLOSING, "d").accepted());
  EXPECT_EQ(send("2026-11-24", v1::WINDOW_STATE_CLOSING, "e").rule(), "already_in_state");
  EXPECT_TRUE(send("2026-11-24", v1::WINDOW_STATE_CLOSED, "f").accepted());
  // Empty window: nothing to pay, so SETTLED needs no references.
  EXPECT_TRUE(send("2026-11-24", v1::WINDOW_STATE_SETTLED, "g").accepted());
  EXPECT_EQ(send("2026-11-24", v1::WINDOW_STATE_ABORTED, "h").rule(), "window_final");
  // The same request id again is a resend: dropped, the first outcome stands.
  EXPECT_TRUE(
      Ledger(store.get(), &ledger, Command("2026-11-24", v1::WINDOW_STATE_CLOSING, at, "d")).ok());
  EXPECT_TRUE(Outcome(store.get(), "d").accepted());
  auto window = ReadWindow(ViewOf(*store), "2026-11-24");
  EXPECT_EQ((*window)->state(), v1::WINDOW_STATE_SETTLED);
}

TEST_F(SettlementStateTest, SettledNeedsAReferenceForEveryNonZeroNet) {
  auto store = FreshStore("settled");
  TxnStage stage(&*calendar_, &*fees_);
  WindowLedger ledger({.calendar = &*calendar_});
  for (const auto& entry :
       StageOne(store.get(), &stage,
                {Txn(v1::Event::kTap, kShanghai, kNingbo, 1000, kDayStartUs + 5, 1)}, 0, 0, 10)) {
    ASSERT_TRUE(Ledger(store.get(), &ledger, entry.value).ok());
  }
  const int64_t at = kDayStartUs + 30 * kHourUs;
  ASSERT_TRUE(
      Ledger(store.get(), &ledger, Command("2026-11-24", v1::WINDOW_STATE_CLOSED, at, "c")).ok());
  v1::Event settle;
  ASSERT_TRUE(settle.ParseFromString(Command("2026-11-24", v1::WINDOW_STATE_SETTLED, at, "s1")));
  (*settle.mutable_window_close_requested()->mutable_payment_references())[kNingbo] = "PAY-1";
  ASSERT_TRUE(Ledger(store.get(), &ledger, settle.SerializeAsString()).ok());
  RequestOutcome refused = Outcome(store.get(), "s1");
  EXPECT_EQ(refused.rule(), "payment_references");
  EXPECT_NE(refused.message().find("310000"), std::string::npos);
  settle.set_event_id("cmd/ministry/s2");
  (*settle.mutable_window_close_requested()->mutable_payment_references())[kShanghai] = "PAY-2";
  ASSERT_TRUE(Ledger(store.get(), &ledger, settle.SerializeAsString()).ok());
  EXPECT_TRUE(Outcome(store.get(), "s2").accepted());
  auto window = ReadWindow(ViewOf(*store), "2026-11-24");
  ASSERT_EQ((*window)->payment_references_size(), 2);
}

TEST_F(SettlementStateTest, LateAndAbortedMoneyIsCarriedToTheNextWindow) {
  auto store = FreshStore("carry");
  TxnStage stage(&*calendar_, &*fees_);
  WindowLedger ledger({.calendar = &*calendar_});
  auto first =
      StageOne(store.get(), &stage,
               {Txn(v1::Event::kTap, kShanghai, kNingbo, 1000, kDayStartUs + 5, 1)}, 0, 0, 10);
  auto late =
      StageOne(store.get(), &stage,
               {Txn(v1::Event::kTap, kShanghai, kNingbo, 700, kDayStartUs + 6, 2)}, 0, 1, 10);
  ASSERT_TRUE(Ledger(store.get(), &ledger, first[0].value).ok());
  const int64_t at = kDayStartUs + 30 * kHourUs;
  ASSERT_TRUE(
      Ledger(store.get(), &ledger, Command("2026-11-24", v1::WINDOW_STATE_CLOSED, at, "c")).ok());
  LedgerOutbox(store.get());  // the report and the change
  // The late delta does not touch the frozen window; the owner carries it to the 25th.
  ASSERT_TRUE(Ledger(store.get(), &ledger, late[0].value).ok());
  std::vector<std::string> carried = LedgerOutbox(store.get());
  ASSERT_EQ(carried.size(), 1u);
  ASSERT_TRUE(Ledger(store.get(), &ledger, carried[0]).ok());
  ASSERT_TRUE(Ledger(store.get(), &ledger, carried[0]).ok());  // resend: dropped by id
  auto closed = ReadPairs(ViewOf(*store), "2026-11-24");
  ASSERT_EQ(closed->size(), 1u);
  EXPECT_EQ((*closed)[0].taps_fen(), 1000);
  auto next = ReadPairs(ViewOf(*store), "2026-11-25");
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].taps_fen(), 700);
  auto hours = ReadHours(ViewOf(*store), "2026-11-25", kShanghai, kNingbo);
  ASSERT_EQ(hours->size(), 1u);
  EXPECT_EQ((*hours)[0].origin_window_id(), "2026-11-24") << "carried cells keep their origin";
  EXPECT_EQ(ReadStats(ViewOf(*store))->late_deltas, 1);
  EXPECT_EQ(ReadFloats(ViewOf(*store))->at(kShanghai).spent_fen(), 1700) << "float counted once";

  // Aborting the 25th carries all of it on to the 26th.
  ASSERT_TRUE(Ledger(store.get(), &ledger,
                     Command("2026-11-25", v1::WINDOW_STATE_ABORTED, at + 24 * kHourUs, "abort"))
                  .ok());
  std::vector<std::string> moved = LedgerOutbox(store.get());
  ASSERT_EQ(moved.size(), 2u);  // the carried cells and the window change
  for (const std::string& event : moved) ASSERT_TRUE(Ledger(store.get(), &ledger, event).ok());
  auto after = ReadPairs(ViewOf(*store), "2026-11-26");
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].taps_fen(), 700);
}

// The id index follows the money. Day D closes; then taps recorded in D arrive: their money is
// carried into D+1 (keeping origin D and its hour), and their ids are listed under D+1, not D.
// Money carried again (D+1 closed too) and money an abort moved are followed the same way, so
// for every (window, origin, hour) the ids agree with the cell's count (what DrillDown shows).
TEST_F(SettlementStateTest, IdIndexFollowsLateAndMovedMoney) {
  auto store = FreshStore("late-index");
  TxnStage stage(&*calendar_, &*fees_);
  WindowLedger ledger({.calendar = &*calendar_});
  const std::string d = "2026-11-24";
  const std::string d1 = "2026-11-25";
  const std::string d2 = "2026-11-26";
  const std::string d3 = "2026-11-27";
  const int64_t in_d = kDayStartUs + 9 * kHourUs;    // D, hour 9
  const int64_t in_d1 = kDayStartUs + 26 * kHourUs;  // D+1, hour 2
  int64_t offset = 0;
  // Stage one's records at the next offsets, then the ledger applies everything written, its own
  // derived events (carried deltas, reports) included, until nothing is left.
  auto upload = [&](std::vector<v1::Event> events) {
    std::vector<state_store::OutboxRecord> emitted =
        StageOne(store.get(), &stage, events, 0, offset, 100);
    offset += static_cast<int64_t>(events.size());
    std::vector<std::string> pending;
    for (const auto& entry : emitted) pending.push_back(entry.value);
    while (!pending.empty()) {
      for (const std::string& bytes : pending)
        ASSERT_TRUE(Ledger(store.get(), &ledger, bytes).ok());
      pending = LedgerOutbox(store.get());
    }
  };
  auto command = [&](const std::string& window, v1::WindowState target, int64_t at,
                     const std::string& id) {
    ASSERT_TRUE(Ledger(store.get(), &ledger, Command(window, target, at, id)).ok());
    EXPECT_TRUE(Outcome(store.get(), id).accepted()) << id;
    std::vector<std::string> pending = LedgerOutbox(store.get());
    while (!pending.empty()) {
      for (const std::string& bytes : pending)
        ASSERT_TRUE(Ledger(store.get(), &ledger, bytes).ok());
      pending = LedgerOutbox(store.get());
    }
  };
  auto ids = [&](const std::string& window, const std::string& origin, int32_t hour) {
    auto listed = ReadCellTransactions(ViewOf(*store), window, origin, kShanghai, kNingbo, hour);
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::vector<uint64_t> seqs;
    for (const auto& [id, amount] :
         listed.value_or(std::vector<std::pair<std::string, int64_t>>())) {
      uint64_t seq = 0;
      EXPECT_TRUE(absl::SimpleAtoi(id.substr(id.rfind('/') + 1), &seq));
      seqs.push_back(seq);
    }
    std::sort(seqs.begin(), seqs.end());
    return seqs;
  };
  // The count of window's cell (origin, hour): what DrillDown answers.
  auto cell_count = [&](const std::string& window, const std::string& origin, int32_t hour) {
    int64_t count = 0;
    auto hours = ReadHours(ViewOf(*store), window, kShanghai, kNingbo);
    EXPECT_TRUE(hours.ok()) << hours.status();
    for (const v1::SettlementCell& cell : *hours) {
      if (cell.origin_window_id() == origin && cell.hour() == hour) count += CountOf(cell);
    }
    return count;
  };
  auto tap = [&](int64_t at, uint64_t seq) {
    return Txn(v1::Event::kTap, kShanghai, kNingbo, 100 + static_cast<int64_t>(seq), at, seq);
  };

  upload({tap(in_d, 1), tap(in_d, 2), tap(in_d, 3)});
  command(d, v1::WINDOW_STATE_CLOSED, kDayStartUs + 25 * kHourUs, "close-d");
  // Late: recorded in D (hour 9), applied after D closed; and one of D+1's own.
  upload({tap(in_d + 1, 4), tap(in_d + 2, 5), tap(in_d1, 6)});
  EXPECT_EQ(ReadStats(ViewOf(*store))->late_deltas, 1);
  EXPECT_EQ(ids(d, d, 9), (std::vector<uint64_t>{1, 2, 3})) << "D keeps only what it counted";
  EXPECT_EQ(cell_count(d, d, 9), 3);
  EXPECT_EQ(ids(d1, d, 9), (std::vector<uint64_t>{4, 5})) << "late ids follow their money";
  EXPECT_EQ(cell_count(d1, d, 9), 2);
  EXPECT_EQ(ids(d1, d1, 2), (std::vector<uint64_t>{6}));
  EXPECT_EQ(cell_count(d1, d1, 2), 1);

  // D+1 closes; another tap recorded in D arrives: carried to D+1, frozen, and on to D+2.
  command(d1, v1::WINDOW_STATE_CLOSED, kDayStartUs + 49 * kHourUs, "close-d1");
  upload({tap(in_d + 3, 7)});
  EXPECT_EQ(ids(d1, d, 9), (std::vector<uint64_t>{4, 5})) << "a closed window's ids do not move";
  EXPECT_EQ(ids(d2, d, 9), (std::vector<uint64_t>{7}));
  EXPECT_EQ(cell_count(d2, d, 9), 1);
  EXPECT_EQ(ids(d, d, 9), (std::vector<uint64_t>{1, 2, 3}));

  // D+2 is aborted: everything counted in it moves to D+3, and its ids with it.
  upload({tap(kDayStartUs + 50 * kHourUs, 8)});  // D+2's own, hour 2
  command(d2, v1::WINDOW_STATE_ABORTED, kDayStartUs + 73 * kHourUs, "abort-d2");
  EXPECT_TRUE(ids(d2, d, 9).empty());
  EXPECT_TRUE(ids(d2, d2, 2).empty());
  EXPECT_EQ(ids(d3, d, 9), (std::vector<uint64_t>{7}));
  EXPECT_EQ(cell_count(d3, d, 9), 1);
  EXPECT_EQ(ids(d3, d2, 2), (std::vector<uint64_t>{8}));
  EXPECT_EQ(cell_count(d3, d2, 2), 1);
  // D's report never moved; the float counted every tap once.
  EXPECT_EQ((*ReadReport(ViewOf(*store), d))->bilateral(0).count(), 3);
  EXPECT_EQ(ReadFloats(ViewOf(*store))->at(kShanghai).spent_fen(), 8 * 100 + 36);
}

TEST_F(SettlementStateTest, OnlyTheOwnerWritesDerivedEvents) {
  auto store = FreshStore("owner");
  WindowLedger not_owner({.calendar = &*calendar_, .replica_index = 1, .replica_count = 2});
  ASSERT_TRUE(Ledger(store.get(), &not_owner,
                     Command("2026-11-24", v1::WINDOW_STATE_CLOSED, kDayStartUs + kHourUs, "c"))
                  .ok());
  EXPECT_TRUE(Outcome(store.get(), "c").accepted()) << "every replica applies the decision";
  EXPECT_TRUE(LedgerOutbox(store.get()).empty()) << "partition 0 belongs to replica 0";
}

}  // namespace
}  // namespace tongka::settlement
