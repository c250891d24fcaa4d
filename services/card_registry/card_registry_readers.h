// Reading the card registry's state (keys: card_registry_keys.h): cards with their current
// balance, command outcomes, the holder index, the hotlist (deltas and snapshot per tongka.cards
// partition) and the counters. The API, the tests and the ledger itself read through these, over
// a StateStore or over a StateBatch that is being applied.
//
// Thread-safety: the readers are thread-safe over a StateStore; a view over a StateBatch is for
// the batch's own thread. Failure: a stored record that does not parse is INTERNAL (corruption),
// never silently a default; the store's own errors pass through.
//
// Example:
//   absl::StatusOr<std::optional<Card>> card = ReadCard(ViewOf(store), "3100000000000012348");
//   if (card.ok() && card->has_value()) Show((*card)->balance_fen);
#ifndef TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_READERS_H_
#define TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_READERS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libs/state_store/state_store.h"
#include "libs/state_store/state_view.h"
#include "services/card_registry/card_registry_storage.pb.h"

namespace tongka::card_registry {

// A read view over a StateStore or a StateBatch (libs/state_store/state_view.h).
using state_store::StateView;
using state_store::ViewOf;

// A card as stored, with what is computed at read time.
struct Card {
  std::string card_id;
  uint32_t issuer_city = 0;  // read off the card id
  CardRecord record;
  // The register's balance_after_fen once a transaction was seen, else the opening balance plus
  // what a replacement carried over.
  int64_t balance_fen = 0;
};

// The balance a card holds now (Card::balance_fen).
int64_t CurrentBalanceFen(const CardRecord& card);

absl::StatusOr<std::optional<Card>> ReadCard(const StateView& view, absl::string_view card_id);
// The register of a card not issued yet (transactions seen before its CardIssued); nullopt when
// none was seen or the card has been issued since (its register is then in its CardRecord).
absl::StatusOr<std::optional<TxnRegister>> ReadUnissuedRegister(const StateView& view,
                                                                absl::string_view card_id);
absl::StatusOr<std::optional<RequestOutcome>> ReadOutcome(const StateView& view,
                                                          absl::string_view event_id);
// The ids of the cards of `issuer` whose holder carries `token` (id number or phone), ascending.
absl::StatusOr<std::vector<std::string>> FindCardsByHolder(const StateView& view, uint32_t issuer,
                                                           absl::string_view token);

// The issuer that manages a card of `card_city` in tongka.cards partition `partition`: the
// successor the ministry moved that city's cards to, once the partition applied the transfer
// (transfers never chain: a successor is ACTIVE when chosen), else the card city itself.
absl::StatusOr<uint32_t> ManagingIssuer(const StateView& view, int32_t partition,
                                        uint32_t card_city);
// Every transfer this store's partitions applied: (partition, from city) -> successor.
absl::StatusOr<std::map<std::pair<int32_t, uint32_t>, uint32_t>> ReadSuccessors(
    const StateView& view);

// What the cards of `card_city` in this store that `include` accepts hold: the cards not closed,
// the sum of their current balances (CurrentBalanceFen), and the closed ones. A scan of the
// city's c/ records (card ids begin with their city).
struct IssuerBalances {
  int64_t cards = 0;
  int64_t balance_fen = 0;
  int64_t closed_cards = 0;
};
absl::StatusOr<IssuerBalances> SumIssuerBalances(
    const StateView& view, uint32_t card_city,
    const std::function<bool(absl::string_view card_id)>& include);

// The hotlist of one tongka.cards partition.
struct HotlistChange {
  uint64_t seq = 0;
  HotlistEntry entry;
};
// The partition's sequence: 0 before its first change.
absl::StatusOr<uint64_t> ReadHotlistSeq(const StateView& view, int32_t partition);
// The changes numbered after `after_seq`, ascending, at most `limit`.
absl::StatusOr<std::vector<HotlistChange>> ReadHotlistDelta(const StateView& view,
                                                            int32_t partition, uint64_t after_seq,
                                                            size_t limit);
struct HotlistSnapshot {
  uint64_t seq = 0;                  // the changes the snapshot includes: 1..seq
  std::vector<HotlistEntry> listed;  // by card id ascending
};
// The cards listed now. Read over a StateStore, the sequence and the set come from two reads:
// a commit in between can make the set newer than `seq`, never older (a caller then applies
// deltas after `seq`, which repeat changes already in the set; applying a change is idempotent).
absl::StatusOr<HotlistSnapshot> ReadHotlistSnapshot(const StateView& view, int32_t partition);

struct RegistryStats {
  std::map<std::string, int64_t> accepted;         // by command kind: issue, status, close
  std::map<std::string, int64_t> refused_by_rule;  // by rule
  int64_t duplicate_commands = 0;  // a command whose event id already has an outcome
  int64_t cards_unparseable = 0;   // tongka.cards records that are no event (or have no id)
  int64_t cards_unsupported = 0;   // tongka.cards bodies this registry does not decide yet
  int64_t foreign_decisions = 0;   // decision bodies not written by the registry: must stay 0
  int64_t txn_unparseable = 0;     // tongka.txn records that are no transaction
  int64_t unissued_cards = 0;      // cards with transactions and no CardIssued (a gauge)
};
absl::StatusOr<RegistryStats> ReadStats(const StateView& view);

// Shared with the ledger (card_ledger.cc); not for callers outside this folder.
namespace internal {

using state_store::ReadMessage;

}  // namespace internal
}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_READERS_H_
