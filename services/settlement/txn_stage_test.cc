// Proves stage one on a real RocksDB in a temp dir, without Kafka: records are fed to TxnStage
// directly (testing/state_test.h) and its outbox to the ledger where the figures are checked.
//   - refunds reverse what they refund (amount and fee), all refunds of one tap together never
//     more than the tap carried, and what it keeps per refunded tap is bounded by a horizon;
//   - the id index bytes do not depend on batching; Prepare changes nothing, also with
//     tongka.cards records in the batch at the same partitions and offsets;
//   - a rebuilt stage one emits nothing the ledger already covers, across windows;
//   - each window is cut and priced under the rules recorded for it, and its deltas name them;
//     the same log (rules commands and transactions) gives the same bytes however it is batched.
#include "services/settlement/txn_stage.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/txn/card_id.h"
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

class TxnStageTest : public StateTest {};

// The cumulative refund rule of fees.h through stage one and the report: refunds of one tap name
// it (terminal and seq), and together reverse no more fee, nor money, than the tap carried.
TEST_F(TxnStageTest, PartialRefundsReverseNoMoreThanTheirTap) {
  auto store = FreshStore("partial-refunds");
  TxnStage stage;
  WindowLedger ledger({});
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
TEST_F(TxnStageTest, RefundRecordsLeaveWithTheHorizon) {
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
    TxnStage stage;
    StageOne(store.get(), &stage, events, 0, 0, run == 0 ? 1 : 3);
    kept[run] = refund_keys(*store);
  }
  EXPECT_EQ(kept[0], kept[1]);
  EXPECT_EQ(kept[0].count("rf/0000/txn/310000-METRO-000001/1"), 0u);
  EXPECT_EQ(kept[0].count("rf/0000/txn/310000-METRO-000001/2"), 0u);
  EXPECT_EQ(kept[0].count("rf/0000/txn/310000-METRO-000001/3"), 1u);
  EXPECT_EQ(kept[0].size(), 3u) << "one tap's rf and rfd, and the horizon";
}

// Same log, same state: the index chunks (and every other key stage one writes) do not depend on
// how the log was batched.
TEST_F(TxnStageTest, IndexBytesDoNotDependOnBatching) {
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
  TxnStage small_stage;
  StageOne(small.get(), &small_stage, events, 0, 0, 7);
  acked_ = 0;
  auto large = FreshStore("batching-large");
  TxnStage large_stage;
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
TEST_F(TxnStageTest, PreparedRecordsApplyExactlyAsUnprepared) {
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
    TxnStage stage;
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
TEST_F(TxnStageTest, RebuildAcrossWindowsNeverOverlapsCoverage) {
  const int64_t w = kDayStartUs + 60;                 // window 2026-11-24
  const int64_t w_next = kDayStartUs + 25 * kHourUs;  // window 2026-11-25
  std::vector<v1::Event> events;
  for (uint64_t offset = 0; offset <= 6; ++offset) {
    events.push_back(
        Txn(v1::Event::kTap, kShanghai, kNingbo, 100, offset % 2 == 0 ? w : w_next, offset + 1));
  }
  // Live: offsets 0..5 in one batch -> a delta for each window.
  auto live = FreshStore("rebuild-live");
  TxnStage live_stage;
  std::vector<v1::Event> first_six(events.begin(), events.begin() + 6);
  auto emitted = StageOne(live.get(), &live_stage, first_six, 0, 0, 6);
  ASSERT_EQ(emitted.size(), 2u);
  // The volume is lost; the log kept only the first window's delta.
  auto rebuilt = FreshStore("rebuild-store");
  acked_ = 0;
  ledger_offset_ = 0;
  WindowLedger ledger({});
  v1::Event kept;
  ASSERT_TRUE(kept.ParseFromString(emitted[0].value));
  ASSERT_EQ(kept.settlement_delta().window_id(), "2026-11-24");
  ASSERT_TRUE(Ledger(rebuilt.get(), &ledger, emitted[0].value).ok());
  // The rebuild reads offsets 0..6 in one batch: re-counts the second window's 1, 3, 5 and
  // counts the first window's new 6.
  TxnStage rebuilt_stage;
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

TEST_F(TxnStageTest, EachWindowIsCutAndPricedUnderItsOwnRules) {
  // From window 2026-11-26 on: the cut at 23:00 and 20 bp, recorded on 2026-11-24 at 09:00.
  auto schedule = [](StateStore* store) {
    RequestOutcome outcome =
        ApplyRulesCommand(store, "2026-11-26", "default:20", kDayStartUs + 9 * kHourUs, "change",
                          v1::TENANT_KIND_MINISTRY, "Asia/Shanghai", absl::Hours(23));
    EXPECT_TRUE(outcome.accepted()) << outcome.rule() << ": " << outcome.message();
  };
  const int64_t day = 24 * kHourUs;
  // Ningbo cards at Shanghai's metro, 1000 fen each: 2026-11-25 12:00, 2026-11-26 22:30 and
  // 23:30 (after the new cut: window 2026-11-27).
  const std::vector<v1::Event> events = {
      Txn(v1::Event::kTap, kNingbo, kShanghai, 1000, kDayStartUs + day + 12 * kHourUs, 1),
      Txn(v1::Event::kTap, kNingbo, kShanghai, 1000,
          kDayStartUs + 2 * day + 22 * kHourUs + 1800000000, 2),
      Txn(v1::Event::kTap, kNingbo, kShanghai, 1000,
          kDayStartUs + 2 * day + 23 * kHourUs + 1800000000, 3)};

  auto store = FreshStore("rules-by-window");
  schedule(store.get());
  TxnStage stage;
  std::map<std::string, v1::SettlementDelta> by_window;
  for (const auto& entry : StageOne(store.get(), &stage, events, 0, 0, 10)) {
    v1::Event event;
    ASSERT_TRUE(event.ParseFromString(entry.value));
    by_window[event.settlement_delta().window_id()] = event.settlement_delta();
  }
  ASSERT_EQ(by_window.size(), 3u);
  const v1::SettlementDelta& before = by_window["2026-11-25"];
  EXPECT_EQ(before.cells(0).fee_fen(), 5) << "50 bp, the genesis rules";
  EXPECT_EQ(before.rules_id(), "cmd/platform/genesis");
  const v1::SettlementDelta& first = by_window["2026-11-26"];
  EXPECT_EQ(first.cells(0).taps(), 1) << "22:30 is before the new 23:00 cut";
  EXPECT_EQ(first.cells(0).fee_fen(), 2) << "20 bp from 2026-11-26";
  EXPECT_EQ(first.rules_id(), "cmd/ministry/change");
  const v1::SettlementDelta& after = by_window["2026-11-27"];
  EXPECT_EQ(after.cells(0).taps(), 1) << "23:30 belongs to the next business day";
  EXPECT_EQ(after.cells(0).hour(), 0);
  EXPECT_EQ(after.rules_id(), "cmd/ministry/change");

  // The same log again into a store that had nothing (a rebuild): the same bytes.
  auto rebuilt = FreshStore("rules-by-window-rebuilt");
  schedule(rebuilt.get());
  TxnStage rebuilt_stage;
  acked_ = 0;
  StageOne(rebuilt.get(), &rebuilt_stage, events, 0, 0, 10);
  auto digest = store->Digest();
  auto rebuilt_digest = rebuilt->Digest();
  ASSERT_TRUE(digest.ok() && rebuilt_digest.ok());
  EXPECT_EQ(*digest, *rebuilt_digest);
}

// A tap before a fee rise, refunded in full after it: the refund gives back the fee the tap paid
// (the lowest rate over the refund horizon), never the new, higher one.
TEST_F(TxnStageTest, ARefundAcrossAFeeChangeNeverReversesMoreThanItsTapPaid) {
  auto store = FreshStore("refund-across-change");
  ASSERT_TRUE(
      ApplyRulesCommand(store.get(), "2026-11-26", "default:100", kDayStartUs + 9 * kHourUs, "rise")
          .accepted());
  TxnStage stage;
  WindowLedger ledger({});
  const int64_t day = 24 * kHourUs;
  // Ningbo card at Shanghai's metro: 300 fen on 2026-11-25 at 50 bp (2 fen); the full refund on
  // 2026-11-26, under 100 bp (which alone would reverse 3 fen).
  v1::Event refund =
      Txn(v1::Event::kRefund, kNingbo, kShanghai, 300, kDayStartUs + 2 * day + kHourUs, 2);
  refund.mutable_refund()->set_original_amount_fen(300);
  for (const auto& entry : StageOne(
           store.get(), &stage,
           {Txn(v1::Event::kTap, kNingbo, kShanghai, 300, kDayStartUs + day + kHourUs, 1), refund},
           0, 0, 10)) {
    ASSERT_TRUE(Ledger(store.get(), &ledger, entry.value).ok());
  }
  auto tap_window = ReadPairs(ViewOf(*store), "2026-11-25");
  auto refund_window = ReadPairs(ViewOf(*store), "2026-11-26");
  ASSERT_TRUE(tap_window.ok() && refund_window.ok());
  ASSERT_EQ(tap_window->size(), 1u);
  ASSERT_EQ(refund_window->size(), 1u);
  EXPECT_EQ((*tap_window)[0].fee_fen(), 2);
  EXPECT_EQ((*refund_window)[0].fee_fen(), -2) << "the tap's 2 fen back, not 3";
}

// The registry's CardIssued brings a card's opening balance into its issuer's float, once: the
// cards topic has its own coverage, so a rebuilt stage one emits nothing again, and commands,
// zero balances and other writers move no money.
TEST_F(TxnStageTest, OpeningBalancesFromTheRegistryJoinTheFloat) {
  auto store = FreshStore("openings");
  WindowLedger ledger({});
  auto issued = [](int64_t balance_fen, const std::string& service, int serial) {
    v1::Event event;
    event.set_event_id(absl::StrCat("card_registry/tongka.cards/0/", serial, "/decision"));
    event.set_recorded_at_us(kDayStartUs + kHourUs);
    event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
    event.mutable_source()->set_service(service);
    v1::CardIssued* card = event.mutable_card_issued();
    card->set_card_id(absl::StrCat("33020000000000", serial));
    card->set_issuer_city(kNingbo);
    card->set_initial_balance_fen(balance_fen);
    return event.SerializeAsString();
  };
  // Closed cards' balances leave the float as owed to their holders.
  auto closed = [](int64_t owed_fen, v1::CardStatus status, const std::string& service,
                   int serial) {
    v1::Event event;
    event.set_event_id(absl::StrCat("card_registry/tongka.cards/0/", serial, "/decision"));
    event.set_recorded_at_us(kDayStartUs + kHourUs);
    event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
    event.mutable_source()->set_service(service);
    v1::CardStatusChanged* changed = event.mutable_card_status_changed();
    changed->set_card_id(txn::MakeCardId(kNingbo, serial));
    changed->set_new_status(status);
    changed->set_balance_owed_fen(owed_fen);
    return event.SerializeAsString();
  };
  v1::Event returned;
  returned.set_event_id("card_registry/tongka.cards/0/9/returned");
  returned.set_recorded_at_us(kDayStartUs + kHourUs);
  returned.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
  returned.mutable_source()->set_service("card_registry");
  returned.mutable_carried_balance_returned()->set_issuer_city(kNingbo);
  returned.mutable_carried_balance_returned()->set_amount_fen(300);
  v1::Event command;
  command.set_event_id("cmd/city:330200/issue-9");
  command.set_recorded_at_us(kDayStartUs + kHourUs);
  command.mutable_card_issue_requested()->set_initial_balance_fen(7000);
  const std::vector<std::string> cards = {issued(5000, "card_registry", 1),
                                          issued(3000, "fraud", 2),
                                          command.SerializeAsString(),
                                          issued(0, "card_registry", 3),
                                          issued(2500, "card_registry", 4),
                                          closed(1200, v1::CARD_STATUS_CLOSED, "card_registry", 5),
                                          closed(800, v1::CARD_STATUS_CLOSED, "fraud", 6),
                                          closed(900, v1::CARD_STATUS_BLOCKED, "card_registry", 7),
                                          returned.SerializeAsString()};
  auto apply = [&](TxnStage& stage) {
    StateBatch batch(store.get());
    for (size_t i = 0; i < cards.size(); ++i) {
      event_log::Record record =
          event_log::Record::Owned(kCardsTopic, 0, static_cast<int64_t>(i), "k", cards[i]);
      EXPECT_TRUE(stage.Apply(record, batch).ok());
    }
    // A tap of the same partition number on tongka.txn: its own offsets, its own delta.
    event_log::Record tap = event_log::Record::Owned(
        kTxnTopic, 0, 0, "k",
        Txn(v1::Event::kTap, kNingbo, kShanghai, 1000, kDayStartUs + kHourUs, 1)
            .SerializeAsString());
    EXPECT_TRUE(stage.Apply(tap, batch).ok());
    EXPECT_TRUE(stage.FinishBatch(batch).ok());
    EXPECT_TRUE(store->Commit(batch).ok());
  };
  TxnStage stage;
  apply(stage);
  std::vector<std::string> deltas = LedgerOutbox(store.get());
  ASSERT_EQ(deltas.size(), 2u) << "one delta per topic";
  for (const std::string& delta : deltas) ASSERT_TRUE(Ledger(store.get(), &ledger, delta).ok());
  v1::Event cards_delta;
  ASSERT_TRUE(cards_delta.ParseFromString(deltas[1]));
  EXPECT_EQ(cards_delta.settlement_delta().source_topic(), kCardsTopic);
  EXPECT_EQ(cards_delta.settlement_delta().first_offset(), 0);
  EXPECT_EQ(cards_delta.settlement_delta().last_offset(), 8);
  auto floats = ReadFloats(ViewOf(*store));
  ASSERT_TRUE(floats.ok());
  EXPECT_EQ((*floats)[kNingbo].opening_fen(), 7500) << "5000 + 2500, from the registry only";
  EXPECT_EQ((*floats)[kNingbo].spent_fen(), 1000);
  EXPECT_EQ((*floats)[kNingbo].owed_to_holders_fen(), 1500) << "1200 closed + 300 returned";
  EXPECT_EQ(OutstandingFen((*floats)[kNingbo]), 7500 - 1000 - 1500);

  // A rebuilt stage one reads both topics again and emits nothing the ledger holds.
  TxnStage rebuilt;
  apply(rebuilt);
  EXPECT_TRUE(LedgerOutbox(store.get()).empty());
}

// One loop reads tongka.cards and tongka.txn, and Prepare sees both topics' records in one
// batch: a tap at the offset a CardIssued has in the same partition number of the other topic is
// still counted (Prepare's entries are matched by partition and offset only).
TEST_F(TxnStageTest, PreparedTapsAreCountedBesideCardsAtTheSameOffsets) {
  {
    auto store = FreshStore("mixed-prepared");
    WindowLedger ledger({});
    TxnStage stage;
    std::vector<event_log::Record> records;
    for (int64_t offset = 0; offset < 20; ++offset) {
      v1::Event issued;
      issued.set_event_id(absl::StrCat("card_registry/tongka.cards/0/", offset, "/decision"));
      issued.set_recorded_at_us(kDayStartUs + kHourUs);
      issued.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
      issued.mutable_source()->set_service("card_registry");
      issued.mutable_card_issued()->set_card_id(txn::MakeCardId(kNingbo, offset + 1));
      issued.mutable_card_issued()->set_issuer_city(kNingbo);
      issued.mutable_card_issued()->set_initial_balance_fen(1000);
      records.push_back(
          event_log::Record::Owned(kCardsTopic, 0, offset, "k", issued.SerializeAsString()));
      records.push_back(
          event_log::Record::Owned(kTxnTopic, 0, offset, "k",
                                   Txn(v1::Event::kTap, kNingbo, kShanghai, 100,
                                       kDayStartUs + kHourUs, static_cast<uint64_t>(offset + 1))
                                       .SerializeAsString()));
    }
    stage.Prepare(records);
    StateBatch batch(store.get());
    for (const event_log::Record& record : records) {
      EXPECT_TRUE(stage.Apply(record, batch).ok());
    }
    EXPECT_TRUE(stage.FinishBatch(batch).ok());
    EXPECT_TRUE(store->Commit(batch).ok());
    for (const std::string& delta : LedgerOutbox(store.get())) {
      EXPECT_TRUE(Ledger(store.get(), &ledger, delta).ok());
    }
    auto floats = ReadFloats(ViewOf(*store));
    ASSERT_TRUE(floats.ok());
    EXPECT_EQ((*floats)[kNingbo].opening_fen(), 20 * 1000);
    EXPECT_EQ((*floats)[kNingbo].spent_fen(), 20 * 100) << "every tap counted";
    auto invalid = store->Get("stats/txn_invalid");
    ASSERT_TRUE(invalid.ok());
    EXPECT_FALSE(invalid->has_value()) << "no tap counted as unusable";
  }
}

// Stage one refuses to guess: with no rules on the log it stops the loop instead of counting.
TEST_F(TxnStageTest, NoRulesNoCounting) {
  auto store = FreshStore("no-rules", /*with_rules=*/false);
  TxnStage stage;
  StateBatch batch(store.get());
  event_log::Record record = event_log::Record::Owned(
      kTxnTopic, 0, 0, "k",
      Txn(v1::Event::kTap, kNingbo, kShanghai, 1000, kDayStartUs, 1).SerializeAsString());
  absl::Status applied = stage.Apply(record, batch);
  EXPECT_EQ(applied.code(), absl::StatusCode::kFailedPrecondition) << applied;
}

}  // namespace
}  // namespace tongka::settlement
