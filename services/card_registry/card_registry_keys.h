// The card registry's state layout: the topics, the key of every stored record, and the counter
// helper the ledger and the readers share. The ledger is CardLedger (card_ledger.h); the readers
// are in card_registry_readers.h.
//
// Keys (state column family):
//   c/<card_id>                         CardRecord: one issued card
//   u/<card_id>                         TxnRegister: the last transaction of a card not (yet)
//                                       issued; merged into its CardRecord when it is issued
//   h/<issuer>/<token>/<card_id>        "": holder index; token is the raw 32-byte HMAC-SM3
//                                       token (id number or phone), issuer 6 digits
//   r/<command event id>                RequestOutcome of a command
//   hl/seq/<pppp>                       decimal: the hotlist sequence of tongka.cards partition p
//   hl/<pppp>/<seq>                     HotlistEntry: the change numbered seq (20 digits)
//   hs/<pppp>/<card_id>                 HotlistEntry: the card is listed now (the snapshot)
//   xf/<pppp>/<from city>               decimal successor city: partition p applied the transfer
//                                       of the from city's cards (the failed-issuer playbook)
//   st/<name>                           decimal counters (RegistryStats, card_registry_readers.h)
//
// Thread-safety: pure functions, except AddToCounter, which writes to the batch it is given.
// Failure: a corrupt stored counter comes back as INTERNAL.
//
// Example:
//   batch.Put(CardKey("3100000000000012348"), card.SerializeAsString());
//   // -> "c/3100000000000012348"
#ifndef TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_KEYS_H_
#define TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_KEYS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "libs/state_store/state_store.h"

namespace tongka::card_registry {

inline constexpr char kCardsTopic[] = "tongka.cards";
inline constexpr char kTxnTopic[] = "tongka.txn";
inline constexpr char kServiceName[] = "card_registry";

// Bounds of a command's fields (README.md, "Rules").
inline constexpr int64_t kInitialBalanceMaxFen = 1000000;
inline constexpr size_t kTokenBytes = 32;

std::string CardKey(absl::string_view card_id);
std::string UnissuedKey(absl::string_view card_id);
// "h/<issuer>/<token>/": the cards of one holder token at one issuer.
std::string HolderPrefix(uint32_t issuer, absl::string_view token);
std::string HolderKey(uint32_t issuer, absl::string_view token, absl::string_view card_id);
std::string OutcomeKey(absl::string_view event_id);
std::string HotlistSeqKey(int32_t partition);
// "hl/<pppp>/": the changes of one partition, in sequence order.
std::string HotlistPrefix(int32_t partition);
std::string HotlistKey(int32_t partition, uint64_t seq);
// "hs/<pppp>/": the cards of one partition listed now.
std::string ListedPrefix(int32_t partition);
std::string ListedKey(int32_t partition, absl::string_view card_id);
// "xf/<pppp>/<from city>" = the successor city (decimal): tongka.cards partition p applied the
// ministry's transfer of the from city's cards (IssuerTransferred). "xf/" lists them all.
inline constexpr char kSuccessorPrefix[] = "xf/";
std::string SuccessorKey(int32_t partition, uint32_t from_city);

// Shared by the ledger and the readers of this folder; not for callers outside it.
namespace internal {

inline constexpr char kStatsPrefix[] = "st/";
// Accepted commands by kind ("st/accepted/issue", ".../status", ".../close") and refused ones by
// rule ("st/refused/<rule>").
std::string AcceptedKey(absl::string_view kind);
std::string RefusedKey(absl::string_view rule);
inline constexpr absl::string_view kDuplicateCommandsKey = "st/duplicate_commands";
inline constexpr absl::string_view kCardsUnparseableKey = "st/cards_unparseable";
inline constexpr absl::string_view kUnsupportedKey = "st/cards_unsupported";
inline constexpr absl::string_view kForeignDecisionsKey = "st/foreign_decisions";
inline constexpr absl::string_view kTxnUnparseableKey = "st/txn_unparseable";
// A gauge, not a count of records: how many u/ registers exist (cards with transactions and no
// issue yet). A count of "transactions for unknown cards" would depend on how tongka.txn and
// tongka.cards interleaved; this depends only on which records were applied.
inline constexpr absl::string_view kUnissuedCardsKey = "st/unissued_cards";

// Adds `delta` to the decimal counter under `key`; INTERNAL when the stored value is not one.
absl::Status AddToCounter(state_store::StateBatch& batch, absl::string_view key, int64_t delta);

}  // namespace internal
// The member registry (member_ledger.h), under its own prefix "m/", applied by its own loop over
// tongka.members (one partition, replica 0 only):
//   m/p/<participant>                   MemberRecord: a participant's record ("city:310000",
//                                       "partner:unionmart") after its last accepted change
//   m/r/<command event id>              MemberOutcome of a member command
//   m/st/<name>                         decimal counters: accepted/<kind> (status,
//                                       accepted_issuers), refused/<rule>, duplicate_commands,
//                                       unusable (records that do not parse, foreign decisions,
//                                       bodies the registry does not decide)
inline constexpr char kMembersTopic[] = "tongka.members";
inline constexpr char kMemberPrefix[] = "m/p/";
inline std::string MemberKey(absl::string_view participant) {
  return std::string(kMemberPrefix).append(participant.data(), participant.size());
}
inline std::string MemberOutcomeKey(absl::string_view event_id) {
  return std::string("m/r/").append(event_id.data(), event_id.size());
}

namespace internal {

inline constexpr char kMemberStatsPrefix[] = "m/st/";
inline std::string MemberAcceptedKey(absl::string_view kind) {
  return std::string("m/st/accepted/").append(kind.data(), kind.size());
}
inline std::string MemberRefusedKey(absl::string_view rule) {
  return std::string("m/st/refused/").append(rule.data(), rule.size());
}
inline constexpr absl::string_view kMemberDuplicateCommandsKey = "m/st/duplicate_commands";
inline constexpr absl::string_view kMemberUnusableKey = "m/st/unusable";

}  // namespace internal
}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_KEYS_H_
