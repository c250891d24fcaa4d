// Test helpers for the card registry's state: a fresh RocksDB under TEST_TMPDIR, commands and
// transactions as the log carries them, and a fixture that feeds records to a CardLedger
// directly, without Kafka, each topic-partition at its own next offset.
//
// Ownership: each test owns its stores. Thread-safety: one test thread.
// Failure: a helper that cannot do its part fails the test (EXPECT), never the process.
//
// Example:
//   class CardLedgerTest : public testing::StateTest {};
//   TEST_F(CardLedgerTest, Issues) {
//     auto store = FreshStore("issues");
//     CardLedger ledger;
//     Feed(store.get(), &ledger, {Cards(Issue(CardId(kShanghai, 1), "r1"))});
//     EXPECT_TRUE(Outcome(store.get(), CommandId(kShanghai, "r1")).accepted());
//   }
#ifndef TONGKA_SERVICES_CARD_REGISTRY_TESTING_STATE_TEST_H_
#define TONGKA_SERVICES_CARD_REGISTRY_TESTING_STATE_TEST_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "libs/state_store/state_store.h"
#include "proto/events.pb.h"
#include "services/card_registry/card_ledger.h"
#include "services/card_registry/card_registry_readers.h"

namespace tongka::card_registry::testing {

using state_store::StateBatch;
using state_store::StateStore;

// 2026-11-24 00:00 +08:00.
inline constexpr int64_t kDayStartUs = 1795449600000000;
inline constexpr int64_t kHourUs = 3600000000;
inline constexpr uint32_t kShanghai = 310000;
inline constexpr uint32_t kNingbo = 330200;

// A new store in the test's temporary directory under `name`.
std::unique_ptr<StateStore> FreshStore(const std::string& name);

std::string CardId(uint32_t issuer, uint64_t serial);
// A 32-byte token of `fill` bytes (an HMAC-SM3 stand-in).
std::string Token(char fill);

v1::Tenant City(uint32_t city);
v1::Tenant Ministry();
v1::Tenant Platform(const std::string& service);
// "cmd/<tenant name>/<request_id>", as the API writes it.
std::string CommandId(const v1::Tenant& source, const std::string& request_id);

// A valid PHYSICAL STORED_VALUE issue by the card's issuer city, 500 fen, with both tokens;
// recorded at kDayStartUs.
v1::Event Issue(const std::string& card_id, const std::string& request_id);
// Block (BLOCKED with `reason`), unblock (ACTIVE) and close, by the card's issuer city.
v1::Event Block(const std::string& card_id, const std::string& request_id,
                v1::BlockReason reason = v1::BLOCK_REASON_LOST);
v1::Event Unblock(const std::string& card_id, const std::string& request_id);
v1::Event Close(const std::string& card_id, const std::string& request_id);
// Replace `card_id` by `new_card_id` (PHYSICAL), and link a QR card `virtual_card_id` to the
// physical `card_id`, by the card's issuer city.
v1::Event Replace(const std::string& card_id, const std::string& new_card_id,
                  const std::string& request_id);
v1::Event Link(const std::string& card_id, const std::string& virtual_card_id,
               const std::string& request_id);
// Sets the source (and the event id that goes with it).
v1::Event From(v1::Event command, const v1::Tenant& source);

// A tap of `card_id` with on-card counter `counter` leaving `balance_after_fen`, at terminal
// "310000-METRO-000001" sequence `seq`, occurring at `occurred_at_us`.
v1::Event Tap(const std::string& card_id, uint32_t counter, int64_t balance_after_fen,
              int64_t occurred_at_us, uint64_t seq);

// One record to feed: its topic, key and event bytes.
struct Input {
  std::string topic;
  std::string key;
  std::string value;
};
Input Cards(const v1::Event& event);  // keyed by the command's card id
Input TxnInput(const v1::Event& event);

// The card id a command or transaction names.
std::string CardIdOf(const v1::Event& event);

class StateTest : public ::testing::Test {
 protected:
  // Applies `inputs` in order as records of partition `partition` of their topics, each topic at
  // its next offset, committing every `batch_size` records.
  void Feed(StateStore* store, CardLedger* ledger, const std::vector<Input>& inputs,
            size_t batch_size = 1, int32_t partition = 0);

  // The outbox entries committed since the last call.
  std::vector<state_store::OutboxRecord> NewOutbox(StateStore* store);

  RequestOutcome Outcome(StateStore* store, const std::string& event_id);

  // Drops what the fixture keeps about `store`, before the test destroys it: a later store may
  // get the same address, and must start at offset 0.
  void Forget(const StateStore* store);

  std::string Digest(StateStore* store) {
    absl::StatusOr<std::string> digest = store->Digest();
    EXPECT_TRUE(digest.ok()) << digest.status();
    return digest.value_or("");
  }

  // Per store: each (topic, partition)'s next offset, and the last outbox sequence returned.
  std::map<std::tuple<const StateStore*, std::string, int32_t>, int64_t> next_offset_;
  std::map<const StateStore*, uint64_t> acked_;
};

}  // namespace tongka::card_registry::testing

#endif  // TONGKA_SERVICES_CARD_REGISTRY_TESTING_STATE_TEST_H_
