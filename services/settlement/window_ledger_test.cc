// Proves the ledger on a real RocksDB in a temp dir, without Kafka: stage one's outbox and
// commands are fed to WindowLedger directly (testing/state_test.h), as the log would.
//   - resent deltas dropped (by offsets and by event id), overlapping ones refused;
//   - the lifecycle and its refusals by rule; SETTLED needs payment references;
//   - a close whose report breaks an invariant is withheld (window stays CLOSING, event written,
//     counted);
//   - a late delta is carried into the next window; abort carries everything; the float per
//     issuer; only the owner writes derived events;
//   - rules commands: the genesis once, changes from the ministry only and only a day ahead,
//     replacing later changes; a window whose deltas name two rules cannot close.
#include "services/settlement/window_ledger.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/settlement/testing/state_test.h"

namespace tongka::settlement {
namespace {

using state_store::StateBatch;
using state_store::StateStore;
using testing::ApplyRulesCommand;
using testing::FreshStore;
using testing::kDayStartUs;
using testing::kHourUs;
using testing::kLiuzhou;
using testing::kNingbo;
using testing::kShanghai;
using testing::StateTest;
using testing::Txn;

class WindowLedgerTest : public StateTest {};

// A close whose report breaks an invariant publishes nothing: the window stays CLOSING (still
// taking deltas) with the violations recorded for GetWindow, the owner writes a
// SettlementInvariantViolated event, the counter behind the alert moves; a later close whose
// report holds goes through and clears them. The broken report is forced by an injected check.
TEST_F(WindowLedgerTest, ABrokenReportIsWithheldAndTheWindowStaysClosing) {
  auto store = FreshStore("violation");
  TxnStage stage;
  bool broken = true;
  WindowLedger ledger({.check_report = [&](const v1::SettlementReport& report) {
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

TEST_F(WindowLedgerTest, ResentDeltasAreDroppedAndOverlapsRefused) {
  auto store = FreshStore("dedup");
  TxnStage stage;
  WindowLedger ledger({});
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
  WindowLedger rebuilt_ledger({});
  for (const auto& entry : emitted) {
    ASSERT_TRUE(Ledger(rebuilt_store.get(), &rebuilt_ledger, entry.value).ok());
  }
  TxnStage rebuilt;
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

TEST_F(WindowLedgerTest, LifecycleRefusesByRule) {
  auto store = FreshStore("lifecycle");
  WindowLedger ledger({});
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

// Closing an empty window reads no rules (they sit in another partition, applied before or after
// the command): the same decision with and without rules in the store.
TEST_F(WindowLedgerTest, ClosingAnEmptyWindowReadsNoRules) {
  for (bool with_rules : {false, true}) {
    auto store = FreshStore(with_rules ? "empty-close-rules" : "empty-close-none", with_rules);
    WindowLedger ledger({});
    ledger_offset_ = 0;
    const int64_t at = kDayStartUs + 9 * kHourUs;  // 2026-11-24 01:00 UTC
    // 2026-11-27 cannot have begun under any rules before 2026-11-25 10:00 UTC.
    ASSERT_TRUE(
        Ledger(store.get(), &ledger, Command("2026-11-27", v1::WINDOW_STATE_CLOSED, at, "far"))
            .ok());
    EXPECT_EQ(Outcome(store.get(), "far").rule(), "window_not_started") << with_rules;
    ASSERT_TRUE(
        Ledger(store.get(), &ledger, Command("2026-11-24", v1::WINDOW_STATE_CLOSED, at, "today"))
            .ok());
    EXPECT_TRUE(Outcome(store.get(), "today").accepted()) << with_rules;
  }
}

TEST_F(WindowLedgerTest, SettledNeedsAReferenceForEveryNonZeroNet) {
  auto store = FreshStore("settled");
  TxnStage stage;
  WindowLedger ledger({});
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

TEST_F(WindowLedgerTest, LateAndAbortedMoneyIsCarriedToTheNextWindow) {
  auto store = FreshStore("carry");
  TxnStage stage;
  WindowLedger ledger({});
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

TEST_F(WindowLedgerTest, OnlyTheOwnerWritesDerivedEvents) {
  auto store = FreshStore("owner");
  WindowLedger not_owner({.replica_index = 1, .replica_count = 2});
  ASSERT_TRUE(Ledger(store.get(), &not_owner,
                     Command("2026-11-24", v1::WINDOW_STATE_CLOSED, kDayStartUs + kHourUs, "c"))
                  .ok());
  EXPECT_TRUE(Outcome(store.get(), "c").accepted()) << "every replica applies the decision";
  EXPECT_TRUE(LedgerOutbox(store.get()).empty()) << "partition 0 belongs to replica 0";
}

TEST_F(WindowLedgerTest, RulesCommandsAreDecidedByRule) {
  auto store = FreshStore("rules-commands", /*with_rules=*/false);
  const int64_t now = kDayStartUs + 9 * kHourUs;  // 2026-11-24 09:00 +08:00
  // A change before any genesis has nothing to change.
  EXPECT_EQ(ApplyRulesCommand(store.get(), "2026-11-30", "default:60", now, "early").rule(),
            "rules_genesis_missing");
  // Only the ministry, or settlement itself for the genesis, records rules.
  EXPECT_EQ(ApplyRulesCommand(store.get(), "", "default:50", now, "city-genesis",
                              v1::TENANT_KIND_CITY_OPERATOR)
                .rule(),
            "ministry_only");
  EXPECT_TRUE(
      ApplyRulesCommand(store.get(), "", "default:50", now, "genesis", v1::TENANT_KIND_PLATFORM)
          .accepted());
  // Another replica's first start with the same flags: accepted, nothing changes.
  RequestOutcome again =
      ApplyRulesCommand(store.get(), "", "default:50", now, "genesis-2", v1::TENANT_KIND_PLATFORM);
  EXPECT_TRUE(again.accepted());
  EXPECT_NE(again.message().find("already recorded"), std::string::npos);
  // With other flags: refused, naming both.
  RequestOutcome other =
      ApplyRulesCommand(store.get(), "", "default:60", now, "genesis-3", v1::TENANT_KIND_PLATFORM);
  EXPECT_EQ(other.rule(), "rules_genesis_set");
  EXPECT_NE(other.message().find("default:50"), std::string::npos) << other.message();
  EXPECT_NE(other.message().find("default:60"), std::string::npos) << other.message();

  // Window 2026-11-25 starts 15 hours after `now`: too soon. 2026-11-26 is 39 hours ahead.
  EXPECT_EQ(ApplyRulesCommand(store.get(), "2026-11-25", "default:60", now, "soon").rule(),
            "effective_window_too_soon");
  EXPECT_EQ(ApplyRulesCommand(store.get(), "2026-11-26", "default:60", now, "by-city",
                              v1::TENANT_KIND_CITY_OPERATOR)
                .rule(),
            "ministry_only");
  EXPECT_EQ(ApplyRulesCommand(store.get(), "2026-11-26", "default:99999", now, "bad").rule(),
            "rules_invalid");
  // Cut at 00:01 at Kiritimati (UTC+14): window 2026-11-26 would end before it began.
  EXPECT_EQ(ApplyRulesCommand(store.get(), "2026-11-26", "default:50", now, "kiritimati",
                              v1::TENANT_KIND_MINISTRY, "Pacific/Kiritimati", absl::Minutes(1))
                .rule(),
            "transition_window");
  // A change must carry the time it was requested at: without it the lead cannot be checked.
  EXPECT_EQ(ApplyRulesCommand(store.get(), "2026-11-26", "default:60", 0, "timeless").rule(),
            "recorded_at");
  EXPECT_TRUE(ApplyRulesCommand(store.get(), "2026-11-26", "default:60", now, "a").accepted());
  EXPECT_TRUE(ApplyRulesCommand(store.get(), "2026-12-01", "default:70", now, "b").accepted());
  // A change from 2026-11-28 replaces the one from 2026-12-01.
  EXPECT_TRUE(ApplyRulesCommand(store.get(), "2026-11-28", "default:65", now, "c").accepted());
  auto rules = ReadRulesTimeline(ViewOf(*store));
  ASSERT_TRUE(rules.ok() && rules->has_value());
  const RulesTimeline& timeline = **rules;
  ASSERT_EQ(timeline.periods().size(), 3u);
  EXPECT_EQ(timeline.periods()[1].effective_window_id(), "2026-11-26");
  EXPECT_EQ(timeline.periods()[2].effective_window_id(), "2026-11-28");
  EXPECT_EQ(timeline.For(absl::CivilDay(2026, 11, 25)).rules().fee_schedule(), "default:50");
  EXPECT_EQ(timeline.For(absl::CivilDay(2026, 11, 27)).rules().fee_schedule(), "default:60");
  EXPECT_EQ(timeline.For(absl::CivilDay(2026, 12, 5)).rules().fee_schedule(), "default:65");
  EXPECT_EQ(timeline.For(absl::CivilDay(2026, 12, 5)).rules_id(), "cmd/ministry/c");
}

// A stage one that lagged a rules change by a day prices a window under the old rules while
// another priced it under the new: the window holds two prices and must not be paid on.
TEST_F(WindowLedgerTest, AWindowPricedUnderTwoRulesCannotClose) {
  auto store = FreshStore("rules-mixed");
  WindowLedger ledger({});
  auto delta = [&](int32_t partition, const std::string& rules_id) {
    v1::Event event;
    event.set_event_id(absl::StrCat("settlement/tongka.txn/", partition, "/0-0/2026-11-24/0"));
    v1::SettlementDelta* body = event.mutable_settlement_delta();
    body->set_window_id("2026-11-24");
    body->set_source_partition(partition);
    body->set_first_offset(0);
    body->set_last_offset(0);
    body->set_chunks(1);
    body->set_rules_id(rules_id);
    v1::SettlementCell* cell = body->add_cells();
    cell->set_issuer_city(kShanghai);
    cell->set_acquirer_city(kNingbo);
    cell->set_origin_window_id("2026-11-24");
    cell->set_taps(1);
    cell->set_taps_fen(100);
    return event.SerializeAsString();
  };
  ASSERT_TRUE(Ledger(store.get(), &ledger, delta(0, "cmd/platform/genesis")).ok());
  ASSERT_TRUE(Ledger(store.get(), &ledger, delta(1, "cmd/platform/genesis")).ok());
  auto stats = ReadStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->rules_mixed, 0);
  ASSERT_TRUE(Ledger(store.get(), &ledger, delta(2, "cmd/ministry/other")).ok());
  stats = ReadStats(ViewOf(*store));
  EXPECT_EQ(stats->rules_mixed, 1);
  const int64_t at = kDayStartUs + 30 * kHourUs;
  ASSERT_TRUE(
      Ledger(store.get(), &ledger, Command("2026-11-24", v1::WINDOW_STATE_CLOSED, at, "c")).ok());
  RequestOutcome refused = Outcome(store.get(), "c");
  EXPECT_EQ(refused.rule(), "rules_mixed");
  auto report = ReadReport(ViewOf(*store), "2026-11-24");
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->has_value()) << "no report for a window priced twice";
  // Aborting moves its money on, to be counted again where it lands.
  ASSERT_TRUE(
      Ledger(store.get(), &ledger, Command("2026-11-24", v1::WINDOW_STATE_ABORTED, at, "a")).ok());
  EXPECT_TRUE(Outcome(store.get(), "a").accepted());
}

namespace transfers {

constexpr uint32_t kNanning = 450100;
constexpr int32_t kDeltaPartition = 3;
constexpr int32_t kSuccessionPartition = 5;
constexpr int32_t kReservePartition = 7;

// A record of tongka.settlement as the log holds it.
struct Logged {
  int32_t partition;
  int64_t offset;
  std::string value;
};

std::string TransferCommand(uint32_t from, uint32_t to, const std::string& request_id,
                            int64_t at_us, v1::TenantKind kind = v1::TENANT_KIND_MINISTRY) {
  v1::Event event;
  event.set_event_id(absl::StrCat("cmd/ministry/", request_id));
  event.set_recorded_at_us(at_us);
  event.mutable_source()->set_kind(kind);
  if (kind == v1::TENANT_KIND_CITY_OPERATOR) event.mutable_source()->set_city(from);
  v1::FloatTransferRequested* request = event.mutable_float_transfer_requested();
  request->set_request_id(request_id);
  request->set_from_city(from);
  request->set_to_city(to);
  request->set_reason("issuer failed");
  return event.SerializeAsString();
}

std::string ReserveCommand(uint32_t issuer, int64_t reserve_fen, const std::string& request_id,
                           v1::TenantKind kind) {
  v1::Event event;
  event.set_event_id(absl::StrCat("cmd/ministry/", request_id));
  event.mutable_source()->set_kind(kind);
  if (kind == v1::TENANT_KIND_CITY_OPERATOR) event.mutable_source()->set_city(issuer);
  v1::FloatReserveRecorded* reserve = event.mutable_float_reserve_recorded();
  reserve->set_request_id(request_id);
  reserve->set_issuer_city(issuer);
  reserve->set_reserve_fen(reserve_fen);
  return event.SerializeAsString();
}

// Applies `logged` in order, each as its own batch; returns what the ledger wrote to the outbox.
std::vector<v1::Event> ApplyInOrder(StateStore* store, WindowLedger* ledger,
                                    const std::vector<Logged>& logged) {
  for (const Logged& entry : logged) {
    StateBatch batch(store);
    event_log::Record record =
        event_log::Record::Owned(kSettlementTopic, entry.partition, entry.offset, "k", entry.value);
    EXPECT_TRUE(ledger->Apply(record, batch).ok());
    batch.SetNextOffset({kSettlementTopic, entry.partition}, entry.offset + 1);
    EXPECT_TRUE(store->Commit(batch).ok());
  }
  std::vector<v1::Event> out;
  auto outbox = store->ReadOutbox(100000);
  EXPECT_TRUE(outbox.ok());
  for (const auto& entry : *outbox) {
    out.emplace_back();
    EXPECT_TRUE(out.back().ParseFromString(entry.value));
  }
  return out;
}

std::vector<v1::FloatTransferred> TransfersIn(const std::vector<v1::Event>& events) {
  std::vector<v1::FloatTransferred> out;
  for (const v1::Event& event : events) {
    if (event.has_float_transferred()) out.push_back(event.float_transferred());
  }
  return out;
}

}  // namespace transfers

// Every rule of a float transfer, by name, with the succession it stores (no amount): only the
// ministry; not to itself; an issuer transferred once stays transferred; a transferred issuer
// is no successor; a resent command is dropped (its first decision stands).
TEST_F(WindowLedgerTest, FloatTransfersAreDecidedByRule) {
  using transfers::kNanning;
  using transfers::TransferCommand;
  auto store = FreshStore("transfer-rules");
  WindowLedger ledger({});
  const int64_t at = kDayStartUs + 10 * kHourUs;
  auto decide = [&](uint32_t from, uint32_t to, const std::string& id,
                    v1::TenantKind kind = v1::TENANT_KIND_MINISTRY) {
    EXPECT_TRUE(Ledger(store.get(), &ledger, TransferCommand(from, to, id, at, kind)).ok());
    return Outcome(store.get(), id);
  };
  EXPECT_EQ(decide(kLiuzhou, kNanning, "by-city", v1::TENANT_KIND_CITY_OPERATOR).rule(),
            "ministry_only");
  EXPECT_EQ(decide(kLiuzhou, kLiuzhou, "self").rule(), "same_city");
  EXPECT_EQ(decide(kLiuzhou, 999999, "nowhere").rule(), "unknown_city");
  EXPECT_TRUE(ReadSuccessions(ViewOf(*store))->empty()) << "refusals store nothing";

  RequestOutcome accepted = decide(kLiuzhou, kNanning, "liuzhou");
  EXPECT_TRUE(accepted.accepted()) << accepted.rule() << ": " << accepted.message();
  auto successions = ReadSuccessions(ViewOf(*store));
  ASSERT_TRUE(successions.ok());
  ASSERT_EQ(successions->size(), 1u);
  const SuccessionRecord& stored = successions->at(kLiuzhou);
  EXPECT_EQ(stored.to_city(), kNanning);
  EXPECT_EQ(stored.recorded_at_us(), at);
  EXPECT_EQ(stored.command_event_id(), "cmd/ministry/liuzhou");
  EXPECT_EQ(ReadStats(ViewOf(*store))->float_transfers, 1);

  EXPECT_EQ(decide(kLiuzhou, kShanghai, "again").rule(), "already_transferred");
  EXPECT_EQ(decide(kShanghai, kLiuzhou, "to-failed").rule(), "successor_transferred");
  const int64_t duplicates = ReadStats(ViewOf(*store))->duplicates_dropped;
  ASSERT_TRUE(
      Ledger(store.get(), &ledger, TransferCommand(kLiuzhou, kShanghai, "liuzhou", at)).ok());
  EXPECT_EQ(ReadStats(ViewOf(*store))->duplicates_dropped, duplicates + 1);
  EXPECT_TRUE(Outcome(store.get(), "liuzhou").accepted()) << "the first decision stands";
  EXPECT_EQ(ReadSuccessions(ViewOf(*store))->at(kLiuzhou).to_city(), kNanning);
  EXPECT_EQ(ReadStats(ViewOf(*store))->float_transfers, 1);

  // The successor may fail in turn: its float and what it inherited go on together.
  EXPECT_TRUE(decide(kNanning, kShanghai, "nanning").accepted());
  EXPECT_EQ(decide(kShanghai, kNanning, "back").rule(), "successor_transferred")
      << "no cycle can form";
}

// The same log, applied in two interleavings of its partitions (stage one's deltas of Liuzhou's
// cards before the transfer, or after it), gives the same state digest: the ledger stores the
// succession, never the amount. The amount is in the FloatTransferred the owner publishes, once,
// and it is what that replica had applied (so it differs between the two, as it may between
// replicas); read back, the event changes nothing. A reserve the ministry records for the
// failed issuer and the issuer's own reserve keep their order (one partition).
TEST_F(WindowLedgerTest, ATransferIsDeterministicAndPublishedOnceWithTheAmount) {
  using transfers::ApplyInOrder;
  using transfers::kDeltaPartition;
  using transfers::kNanning;
  using transfers::kReservePartition;
  using transfers::kSuccessionPartition;
  using transfers::Logged;
  using transfers::ReserveCommand;
  using transfers::TransferCommand;
  using transfers::TransfersIn;
  const int64_t at = kDayStartUs + 10 * kHourUs;
  auto source = FreshStore("transfer-source");
  TxnStage stage;
  std::vector<Logged> deltas;
  for (const auto& entry : StageOne(source.get(), &stage,
                                    {Txn(v1::Event::kLoad, kLiuzhou, kLiuzhou, 9000, at, 1),
                                     Txn(v1::Event::kTap, kLiuzhou, kShanghai, 300, at + 1, 2),
                                     Txn(v1::Event::kTap, kLiuzhou, kLiuzhou, 200, at + 2, 3),
                                     Txn(v1::Event::kLoad, kNanning, kNanning, 1000, at + 3, 4)},
                                    0, 0, 2)) {
    deltas.push_back({kDeltaPartition, static_cast<int64_t>(deltas.size()), entry.value});
  }
  ASSERT_EQ(deltas.size(), 2u);
  const std::vector<Logged> commands = {
      {kSuccessionPartition, 0, TransferCommand(kLiuzhou, kNanning, "liuzhou", at)},
      {kSuccessionPartition, 1, TransferCommand(kLiuzhou, kShanghai, "liuzhou-again", at)},
  };
  const std::vector<Logged> reserves = {
      {kReservePartition, 0,
       ReserveCommand(kLiuzhou, 6000, "escrow", v1::TENANT_KIND_CITY_OPERATOR)},
      {kReservePartition, 1, ReserveCommand(kLiuzhou, 2500, "drawn", v1::TENANT_KIND_MINISTRY)},
  };
  std::vector<Logged> deltas_first = deltas;
  deltas_first.insert(deltas_first.end(), reserves.begin(), reserves.end());
  deltas_first.insert(deltas_first.end(), commands.begin(), commands.end());
  std::vector<Logged> transfer_first = commands;
  transfer_first.push_back(reserves[0]);
  transfer_first.push_back(deltas[0]);
  transfer_first.push_back(reserves[1]);
  transfer_first.push_back(deltas[1]);

  auto one = FreshStore("transfer-deltas-first");
  auto two = FreshStore("transfer-transfer-first");
  WindowLedger ledger_one({.replica_index = 1, .replica_count = 2});  // owns partition 5
  WindowLedger ledger_two({.replica_index = 1, .replica_count = 2});
  std::vector<v1::FloatTransferred> published_one =
      TransfersIn(ApplyInOrder(one.get(), &ledger_one, deltas_first));
  std::vector<v1::FloatTransferred> published_two =
      TransfersIn(ApplyInOrder(two.get(), &ledger_two, transfer_first));
  auto digest_one = one->Digest();
  auto digest_two = two->Digest();
  ASSERT_TRUE(digest_one.ok() && digest_two.ok());
  EXPECT_EQ(*digest_one, *digest_two);

  // Published once (the second command is refused), with the amount this replica had applied.
  ASSERT_EQ(published_one.size(), 1u);
  EXPECT_EQ(published_one[0].from_city(), kLiuzhou);
  EXPECT_EQ(published_one[0].to_city(), kNanning);
  EXPECT_EQ(published_one[0].amount_fen(), 9000 - 300 - 200);
  EXPECT_EQ(published_one[0].reserve_fen(), 2500);
  EXPECT_EQ(published_one[0].command_event_id(), "cmd/ministry/liuzhou");
  EXPECT_EQ(published_one[0].recorded_at_us(), at);
  ASSERT_EQ(published_two.size(), 1u);
  EXPECT_EQ(published_two[0].amount_fen(), 0) << "no delta applied yet on this replica";
  auto outcome = ReadOutcome(ViewOf(*two), "cmd/ministry/liuzhou-again");
  ASSERT_TRUE(outcome.ok() && outcome->has_value());
  EXPECT_EQ((*outcome)->rule(), "already_transferred");
  auto reserve = ReadOutcome(ViewOf(*two), "cmd/ministry/drawn");
  ASSERT_TRUE(reserve.ok() && reserve->has_value());
  EXPECT_TRUE((*reserve)->accepted()) << "the ministry records a failed issuer's escrow";

  // Folded: Nanning carries Liuzhou's float; the total is what the cards hold.
  auto folded = ReadFoldedFloats(ViewOf(*one));
  ASSERT_TRUE(folded.ok()) << folded.status();
  EXPECT_EQ(folded->at(kLiuzhou).outstanding_fen, 0);
  EXPECT_EQ(folded->at(kLiuzhou).own_fen, 8500);
  EXPECT_EQ(folded->at(kLiuzhou).successor, kNanning);
  EXPECT_EQ(folded->at(kNanning).outstanding_fen, 1000 + 8500);
  EXPECT_EQ(folded->at(kNanning).inherited_fen, 8500);
  EXPECT_EQ(folded->at(kNanning).predecessors, std::vector<uint32_t>{kLiuzhou});
  EXPECT_EQ(folded->at(kLiuzhou).record.reserve_fen(), 2500);

  // The event read back from the log changes nothing; a replica that does not own the
  // command's partition publishes nothing.
  v1::Event event;
  event.set_event_id("settlement/derived");
  *event.mutable_float_transferred() = published_one[0];
  {
    StateBatch batch(one.get());
    ASSERT_TRUE(ledger_one
                    .Apply(event_log::Record::Owned(kSettlementTopic, kReservePartition, 2, "k",
                                                    event.SerializeAsString()),
                           batch)
                    .ok());
    ASSERT_TRUE(one->Commit(batch).ok());
  }
  EXPECT_EQ(*one->Digest(), *digest_one);
  auto three = FreshStore("transfer-not-owner");
  WindowLedger not_owner({.replica_index = 0, .replica_count = 2});
  EXPECT_TRUE(TransfersIn(ApplyInOrder(three.get(), &not_owner, deltas_first)).empty());
  EXPECT_EQ(*three->Digest(), *digest_one) << "every replica stores the same decision";
}

}  // namespace
}  // namespace tongka::settlement
