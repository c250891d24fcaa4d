// Test helpers for settlement's state: a fresh RocksDB under TEST_TMPDIR, transactions as stage
// one reads them, and a fixture that feeds records to the stages directly, without Kafka, and
// stage one's outbox to the ledger, as the log would.
//
// Ownership: each test owns its stores. Thread-safety: one test thread.
// Failure: a helper that cannot do its part fails the test (EXPECT), never the process.
//
// Example:
//   class TxnStageTest : public testing::StateTest {};
//   TEST_F(TxnStageTest, Counts) {
//     auto store = FreshStore("counts");
//     TxnStage stage;  // the store holds the genesis rules
//     auto deltas = StageOne(store.get(), &stage,
//                            {Txn(v1::Event::kTap, kShanghai, kNingbo, 100, kDayStartUs, 1)},
//                            /*partition=*/0, /*first_offset=*/0, /*batch_size=*/10);
//   }
#ifndef TONGKA_SERVICES_SETTLEMENT_TESTING_STATE_TEST_H_
#define TONGKA_SERVICES_SETTLEMENT_TESTING_STATE_TEST_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/state_store/state_store.h"
#include "proto/events.pb.h"
#include "services/settlement/business_day.h"
#include "services/settlement/fees.h"
#include "services/settlement/settlement_state.h"

namespace tongka::settlement::testing {

using state_store::StateBatch;
using state_store::StateStore;

// 2026-11-24 00:00 +08:00.
inline constexpr int64_t kDayStartUs = 1795449600000000;
inline constexpr int64_t kHourUs = 3600000000;
inline constexpr uint32_t kShanghai = 310000;
inline constexpr uint32_t kNingbo = 330200;
inline constexpr uint32_t kLiuzhou = 450200;

inline constexpr char kTestFeeSchedule[] = "default:50,330200/METRO:100";
// Rules commands go to this tongka.settlement partition in tests.
inline constexpr int32_t kRulesTestPartition = 63;

// A new store in the test's temporary directory under `name`; with_rules: holding the genesis
// rules (Asia/Shanghai, cut 24:00, kTestFeeSchedule) as the ledger records them.
std::unique_ptr<StateStore> FreshStore(const std::string& name, bool with_rules = true);

// Applies a SettlementRulesRequested (effective_window_id "" for the genesis) through a
// WindowLedger as the next record of partition kRulesTestPartition; returns its outcome.
RequestOutcome ApplyRulesCommand(StateStore* store, const std::string& effective_window_id,
                                 const std::string& fee_schedule, int64_t recorded_at_us,
                                 const std::string& request_id,
                                 v1::TenantKind kind = v1::TENANT_KIND_MINISTRY,
                                 const std::string& zone = "Asia/Shanghai",
                                 absl::Duration cut = absl::Hours(24));

// A tap, refund or load of a card of `issuer` at terminal "<acquirer>-METRO-000001", sequence
// `seq`; a refund names that terminal's seq 1 as its tap.
v1::Event Txn(v1::Event::BodyCase kind, uint32_t issuer, uint32_t acquirer, int64_t amount_fen,
              int64_t recorded_at_us, uint64_t seq);

class StateTest : public ::testing::Test {
 protected:
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

  uint64_t acked_ = 0;
  int64_t ledger_offset_ = 0;
};

}  // namespace tongka::settlement::testing

#endif  // TONGKA_SERVICES_SETTLEMENT_TESTING_STATE_TEST_H_
