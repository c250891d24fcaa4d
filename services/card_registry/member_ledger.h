// The member registry's deciding consumer, MemberLedger: an applier of libs/state_store over the
// card registry's RocksDB (keys "m/..." in card_registry_keys.h), run by its own ApplyLoop over
// tongka.members, which has ONE partition: every decision reads the whole member table, so one
// writer (replica 0 of the card registry, the owner of partition 0 under p % N) decides them
// all, in log order. The rules are listed in README.md, "Members".
//
// Participants are named like tenants: "city:<6 digits>" (one of the 80 member cities of
// libs/txn/cities.h) or "partner:<id>" (a partner chain, libs/server/tenant.h's grammar). A
// participant without a stored record is ACTIVE and, for a city acquirer, accepts every member
// issuer (the genesis record, version 0), so an empty topic changes nothing.
//
// tongka.members (commands, DESIGN.md "Exactly-once state", pattern 5):
//   - MemberStatusChangeRequested and AcceptedIssuersChangeRequested, from the ministry only,
//     are decided from the command and the participant's stored record alone. The outcome goes to
//     "m/r/<command event id>" (read-your-writes), and the decision to the outbox on
//     tongka.members keyed by the record's key (the participant): MemberChanged with the
//     participant's FULL record after the change (status, accepts_all, the sorted issuer list,
//     the per-member version), or CommandRejected naming the rule and field; event id
//     DerivedEventId("card_registry", command, "decision"), source platform:card_registry.
//   - IssuerTransferRequested (the failed-issuer playbook): the from city must be EXITING and
//     have no successor yet, the to city ACTIVE (so transfers never chain). Accepted, the from
//     city's record keeps successor_city, and besides the MemberChanged the outbox gets one
//     IssuerTransferred per tongka.cards partition (TransferKey), where each partition's card
//     ledger records the transfer in its own order (card_ledger.h).
//   - A command whose event id already has an outcome is a no-op (counted): the loop's
//     EventFilter drops repeats within its horizon, the outcome catches any later copy.
//   - The registry's own decisions, read back, change nothing. Decisions from another source,
//     bodies it does not decide and records that do not parse are counted and skipped.
//
// Determinism: one partition, decided in log order from the stored records only, no clock (times
// come from the commands): the same log gives the same state digest, whatever the batch sizes.
//
// Thread-safety: driven by one ApplyLoop thread; the readers below are thread-safe over a
// StateStore. Failure: a non-OK status is a store error or corruption (a stored record that does
// not parse) and stops the loop; a record of another topic is a wiring bug (FAILED_PRECONDITION).
//
// Example (the app wires it into an ApplyLoop; tests drive it directly):
//   MemberLedger ledger;
//   state_store::StateBatch batch(&store);
//   CHECK_OK(ledger.Apply(record, batch));  // the decision goes to the batch's outbox
//   CHECK_OK(store.Commit(batch));
//   absl::StatusOr<MemberRecord> m = ReadMember(ViewOf(store), "city:450200");
#ifndef TONGKA_SERVICES_CARD_REGISTRY_MEMBER_LEDGER_H_
#define TONGKA_SERVICES_CARD_REGISTRY_MEMBER_LEDGER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/event_log/record.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/state_store.h"
#include "libs/state_store/state_view.h"
#include "proto/events.pb.h"
#include "services/card_registry/member_storage.pb.h"

namespace tongka::card_registry {

// Bounds of a member command's fields (README.md, "Members").
inline constexpr size_t kMemberReasonSizeMax = 256;
inline constexpr size_t kMemberActorSizeMax = 64;

// A participant's name parsed: exactly one of city (a member city) or partner_id is set.
struct Participant {
  uint32_t city = 0;
  std::string partner_id;
  bool is_city() const { return city != 0; }
};

// "city:<6 digits>" of a member city or "partner:<id>"; INVALID_ARGUMENT whose message starts
// with the rule: "participant_format: ..." or "unknown_city: ...".
absl::StatusOr<Participant> ParseParticipant(absl::string_view name);
std::string CityParticipant(uint32_t city);

// The genesis record of a participant never changed: ACTIVE, version 0, accepts_all for a city.
MemberRecord GenesisRecord(const Participant& participant);

class MemberLedger : public state_store::Applier {
 public:
  // `cards_partition_count`: tongka.cards' partitions, each of which gets a copy of an accepted
  // issuer transfer (IssuerTransferred).
  explicit MemberLedger(int32_t cards_partition_count)
      : cards_partition_count_(cards_partition_count) {}
  absl::Status Apply(const event_log::Record& record, state_store::StateBatch& batch) override;

  // The key of the IssuerTransferred copy for tongka.cards partition `partition`: the first of
  // "issuer-transfer/<from>/<n>", n = 0, 1, ..., that hashes there (the consumers refuse a
  // record in a partition its key does not hash to).
  static std::string TransferKey(uint32_t from_city, int32_t partition, int32_t partition_count);

 private:
  absl::Status ApplyCommand(const event_log::Record& record, const v1::Event& event,
                            state_store::StateBatch& batch);
  // Each decides one command: on acceptance it writes the participant's record to the batch and
  // fills `changed`; the outcome always carries the participant and its record after.
  absl::StatusOr<MemberOutcome> DecideStatus(const event_log::Record& record,
                                             const v1::Event& event, state_store::StateBatch& batch,
                                             v1::MemberChanged* changed);
  absl::StatusOr<MemberOutcome> DecideAcceptedIssuers(const event_log::Record& record,
                                                      const v1::Event& event,
                                                      state_store::StateBatch& batch,
                                                      v1::MemberChanged* changed);
  absl::StatusOr<MemberOutcome> DecideTransfer(const event_log::Record& record,
                                               const v1::Event& event,
                                               state_store::StateBatch& batch,
                                               v1::MemberChanged* changed);

  const int32_t cards_partition_count_;
};

// Readers over a StateStore or a batch (state_store::ViewOf).
// The participant's stored record, or its genesis record when it was never changed; the name
// must parse (ParseParticipant's error otherwise).
absl::StatusOr<MemberRecord> ReadMember(const state_store::StateView& view,
                                        absl::string_view participant);
// Every participant with a stored record, by name.
absl::StatusOr<std::map<std::string, MemberRecord>> ReadRecordedMembers(
    const state_store::StateView& view);
absl::StatusOr<std::optional<MemberOutcome>> ReadMemberOutcome(const state_store::StateView& view,
                                                               absl::string_view event_id);

struct MemberStats {
  std::map<std::string, int64_t> accepted;         // by kind: status, accepted_issuers
  std::map<std::string, int64_t> refused_by_rule;  // by rule
  int64_t duplicate_commands = 0;
  int64_t unusable = 0;
};
absl::StatusOr<MemberStats> ReadMemberStats(const state_store::StateView& view);

}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_MEMBER_LEDGER_H_
