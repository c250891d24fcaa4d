// The card registry's deciding consumer, CardLedger: one applier of libs/state_store over the
// registry's RocksDB, applied by one ApplyLoop over {tongka.cards, tongka.txn} for the partitions
// this replica owns (the topics are co-partitioned by card id, so a card's commands and its
// transactions share a partition number). Keys are in card_registry_keys.h, read back through
// card_registry_readers.h; the rules are listed in README.md.
//
// tongka.cards (commands, DESIGN.md "Exactly-once state", pattern 5):
//   - CardIssueRequested, CardStatusChangeRequested and CardCloseRequested are decided from the
//     command and the card's stored record alone; the outcome goes to "r/<command event id>"
//     (read-your-writes) and the decision (CardIssued, CardStatusChanged or CommandRejected,
//     event id DerivedEventId("card_registry", command, "decision"), source
//     platform:card_registry) to the outbox, on tongka.cards keyed by the command's key. A
//     command whose event id already has an outcome is a no-op (counted): the loop's
//     EventFilter drops repeats within its horizon, the outcome catches any later copy.
//   - Two commands touch two cards, which may sit in two partitions, and are decided in two
//     steps, each in its own card's partition. CardReplaceRequested (keyed by the old card):
//     the old card is closed and hotlisted (CardStatusChanged, replaced_by_card_id) and a
//     CardReplaced, carrying its balance and holder, goes to the outbox keyed by the new card
//     (event id DerivedEventId(..., kCarryLabel)). There the registry decides the CardReplaced
//     like a command: it issues the new card (CardIssued, carried_balance_fen) or refuses it and
//     sends the balance back, keyed by the old card, as CarriedBalanceReturned, which the old
//     card keeps as owed to its holder. VirtualCardLinkRequested (keyed by the physical card):
//     the decision is a VirtualCardLinked keyed by the virtual card, which the registry there
//     decides like an issue (CardIssued, linked_card_id). Only the registry's own
//     CardReplaced, VirtualCardLinked and CarriedBalanceReturned are acted on.
//   - The failed-issuer playbook: an IssuerTransferred copy (the member registry writes one per
//     partition, member_ledger.h) records in this partition that the from city's cards are now
//     managed by the successor: from that record on, the commands on those cards are the
//     successor's (or the ministry's) to ask, a replacement or a linked card takes a successor's
//     card id, and the from city issues no more cards (issuer_transferred). The cards keep their
//     id, balance and holder tokens.
//   - Every accepted block, unblock and close adds a change to the partition's hotlist
//     (hl/<pppp>/<seq>, sequence hl/seq/<pppp>) and updates its listed set (hs/<pppp>/...);
//     CardStatusChanged.hotlist_version is the new sequence.
//   - The registry's own decisions, read back from the topic, change nothing. Decision bodies
//     from another source, bodies this registry does not decide yet and records that do not
//     parse are counted and skipped.
// tongka.txn (taps, loads, refunds; full v1::Event parse, for the counter and balance that
// txn::TxnView does not read): each card keeps its last transaction as a max register
// (TxnRegister, card_registry_storage.proto): the transaction with the highest (card_counter,
// occurred_at_us, hash of the event id, balance_after_fen, acquirer_city) wins. A card not issued
// yet keeps the register under u/<card_id>, merged into its CardRecord when it is issued.
//
// Determinism: the ApplyLoop interleaves the two topics as their records arrive, so a rebuild may
// see tongka.cards and tongka.txn interleaved differently than the live run did. The stored state
// converges anyway: commands read only what the tongka.cards partition's own order decides (card
// existence and status, the hotlist sequence), and the transaction register is a max, so the
// same records give the same state digest in any interleaving. The one decision that reads the
// transactions is a close: CardStatusChanged.balance_owed_fen is the card's balance at the moment
// the close was applied, which a rebuild can compute differently (it may have applied more or
// fewer of the card's transactions by then). The decision event on the log is the fact
// settlement uses; the registry stores only that the card is CLOSED (its balance is computed at
// read time from the register, card_registry_readers.h) and does not store balance_owed_fen in
// the outcome. No clock: times come from the records.
//
// Thread-safety: driven by one ApplyLoop thread. Failure: a non-OK status is a store error or
// corruption (a stored record that does not parse) and stops the loop; a record of any topic
// other than the two is a wiring bug (FAILED_PRECONDITION).
//
// Example (the app wires it into an ApplyLoop; tests drive it directly):
//   CardLedger ledger;
//   state_store::StateBatch batch(&store);
//   CHECK_OK(ledger.Apply(record, batch));  // decisions go to the batch's outbox
//   CHECK_OK(store.Commit(batch));
#ifndef TONGKA_SERVICES_CARD_REGISTRY_CARD_LEDGER_H_
#define TONGKA_SERVICES_CARD_REGISTRY_CARD_LEDGER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/event_log/record.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/state_store.h"
#include "proto/events.pb.h"
#include "services/card_registry/card_registry_storage.pb.h"

namespace tongka::card_registry {

// True when register `a` loses to `b` (b is the later transaction). A strict total order on the
// stored fields, so merging by it is commutative, associative and idempotent.
bool RegisterLess(const TxnRegister& a, const TxnRegister& b);

// The labels of the events a decision derives besides its "decision" (DerivedEventId).
inline constexpr char kCarryLabel[] = "carry";        // CardReplaced, to the new card
inline constexpr char kReturnedLabel[] = "returned";  // CarriedBalanceReturned, to the old card

// The event id of what the registry derives from the command at `command` under `label`
// ("decision" for the decision itself). The API computes the id of a ReplaceCard's CardReplaced
// (kCarryLabel) and of a LinkVirtualCard's VirtualCardLinked ("decision") to follow them into
// the other card's partition.
std::string DecisionEventId(const event_log::Record& command, absl::string_view label);

// FNV-1a 64 of `bytes`: a stable hash (the same on every build and run) for the register's
// tie-break.
uint64_t StableHash64(absl::string_view bytes);

class CardLedger : public state_store::Applier {
 public:
  CardLedger() = default;
  absl::Status Apply(const event_log::Record& record, state_store::StateBatch& batch) override;

 private:
  // What deciding one command writes to the outbox: its decision (keyed by the command's key
  // unless `key` is set) and any event it derives for another card.
  struct Decision {
    v1::Event event;
    std::string key;
    struct Also {
      const char* label = "";
      std::string key;
      v1::Event event;
    };
    std::vector<Also> also;
  };

  absl::Status ApplyCards(const event_log::Record& record, state_store::StateBatch& batch);
  absl::Status ApplyTxn(const event_log::Record& record, state_store::StateBatch& batch);
  absl::Status ApplyCommand(const event_log::Record& record, const v1::Event& event,
                            state_store::StateBatch& batch);
  absl::Status ApplyReturnedBalance(const event_log::Record& record, const v1::Event& event,
                                    state_store::StateBatch& batch);
  // An IssuerTransferred copy for this partition: from here on the successor manages the from
  // city's cards in it (ManagingIssuer), and the from city issues no more card ids here.
  absl::Status ApplyTransfer(const event_log::Record& record, const v1::Event& event,
                             state_store::StateBatch& batch);
  // Sets the envelope of a derived event (id from the command's record and `label`, the
  // command's times, source platform:card_registry) and appends it to the outbox under `key`.
  static void AppendDecision(const event_log::Record& record, const v1::Event& command,
                             absl::string_view label, const std::string& key, v1::Event event,
                             state_store::StateBatch& batch);
  // Each decides one command: writes the card's changes to the batch when it accepts, and fills
  // the decision's event body (left to ApplyCommand when it refuses) and what it derives.
  absl::StatusOr<RequestOutcome> DecideIssue(const event_log::Record& record,
                                             const v1::Event& event, state_store::StateBatch& batch,
                                             Decision* decision);
  absl::StatusOr<RequestOutcome> DecideStatusChange(const event_log::Record& record,
                                                    const v1::Event& event,
                                                    state_store::StateBatch& batch,
                                                    Decision* decision);
  absl::StatusOr<RequestOutcome> DecideClose(const event_log::Record& record,
                                             const v1::Event& event, state_store::StateBatch& batch,
                                             Decision* decision);
  absl::StatusOr<RequestOutcome> DecideReplace(const event_log::Record& record,
                                               const v1::Event& event,
                                               state_store::StateBatch& batch, Decision* decision);
  absl::StatusOr<RequestOutcome> DecideCarry(const event_log::Record& record,
                                             const v1::Event& event, state_store::StateBatch& batch,
                                             Decision* decision);
  absl::StatusOr<RequestOutcome> DecideLink(const event_log::Record& record, const v1::Event& event,
                                            state_store::StateBatch& batch, Decision* decision);
  absl::StatusOr<RequestOutcome> DecideLinked(const event_log::Record& record,
                                              const v1::Event& event,
                                              state_store::StateBatch& batch, Decision* decision);
  // Stores `card` (its status, form, product, tokens, balances set) as a new ACTIVE card issued
  // by `command` at `record`, with any transactions seen before, and fills the CardIssued.
  absl::StatusOr<RequestOutcome> IssueNewCard(const event_log::Record& record,
                                              const v1::Event& command, const std::string& card_id,
                                              uint32_t issuer, const std::string& request_id,
                                              CardRecord card, state_store::StateBatch& batch,
                                              Decision* decision);
  // What CloseFor closed: the card's managing issuer, its record after the close, and the
  // balance it held as this replica had applied its transactions.
  struct ClosedCard {
    uint32_t issuer = 0;
    CardRecord record;
    int64_t balance_fen = 0;
  };
  // The part a close and a replacement share: the card must be issued, asked for by the issuer
  // that manages it or the ministry (`verb` names the act in the refusal), and not closed, and
  // pass `check` (when given, which may refuse or change the record); then it is closed and
  // hotlisted and the decision is its CardStatusChanged (CLOSED).
  absl::StatusOr<RequestOutcome> CloseFor(
      const event_log::Record& record, const v1::Event& event, const std::string& card_id,
      absl::string_view verb, const std::string& request_id, const std::string& reason,
      const std::string& actor,
      const std::function<std::optional<RequestOutcome>(uint32_t issuer, CardRecord* card)>& check,
      state_store::StateBatch& batch, Decision* decision, ClosedCard* closed);
  // Closes `card` (stored) and adds its hotlist change; returns the new sequence.
  absl::StatusOr<uint64_t> CloseRecord(const event_log::Record& record, absl::string_view card_id,
                                       CardRecord* card, state_store::StateBatch& batch);
  // Adds a change to the partition's hotlist and listed set; returns the new sequence.
  absl::StatusOr<uint64_t> AddHotlistChange(int32_t partition, absl::string_view card_id,
                                            const CardRecord& card, state_store::StateBatch& batch);
};

}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_CARD_LEDGER_H_
