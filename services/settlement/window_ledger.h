// Settlement's stage two, WindowLedger: the windows, their reports and the floats, decided from
// tongka.settlement, one applier of libs/state_store over the service's RocksDB (DESIGN.md
// "Exactly-once state", pattern 4). Its deltas come from stage one (txn_stage.h); the keys it
// writes are in settlement_keys.h, read back through settlement_readers.h.
//
// Stage two, WindowLedger, consumes every partition of tongka.settlement in every replica and
// applies the same deterministic decisions, so any replica can answer any query; only the owner
// of a window's partition (p % N == k) writes the derived events (window changes, reports,
// carried deltas) to the outbox. It
//   - drops a delta whose event id it has seen (a resend);
//   - adds a delta's cells to an OPEN or CLOSING window (creating it OPEN), and to each issuer's
//     all-time float; a delta for a CLOSED, SETTLED or ABORTED window is carried forward: the
//     owner re-emits its cells for the next day's window (carried = true), counted as late;
//   - decides WindowCloseRequested commands by the lifecycle below and records the outcome under
//     the command's event id (the API waits for it: read-your-writes);
//   - on CLOSED, builds the window's report (bilateral matrix, multilateral net, SM3 digest)
//     and checks its invariants (nets sum to zero; payables == receivables; rows net to the
//     nets). If they hold, it freezes the window and publishes the report. If one breaks, the
//     close is refused (rule invariant_violation): no report is stored or published, the window
//     keeps its state (CLOSING, still taking deltas), records the violations for GetWindow, the
//     owner writes a SettlementInvariantViolated event, and stats/invariant_violations counts
//     them (the metric and alert). On ABORTED, carries every cell forward to the next window;
//   - decides FloatTransferRequested commands (the failed-issuer playbook, ministry only): rules
//     same_city, already_transferred (from already has a successor), successor_transferred (to
//     has one itself: no transfer names a failed issuer as successor). Accepted, it stores the
//     succession from -> to (sc/, no amount: the floats stay per card city and the readers fold
//     the successions in, FoldFloats) and the owner publishes FloatTransferred, keyed
//     "float/<from>", with the amount the from city's float stood at as this replica applied it
//     (an audit record, never state). The rules read only successions, which only commands of
//     that one partition ("succession") write, so the decision depends on that partition's own
//     order. FloatTransferred read back changes nothing;
//   - records FloatReserveRecorded (from the issuer itself, or the ministry: a failed issuer's
//     escrow drawn down); compares a SettlementReport read back from the log with its
//     own (a replica that disagrees counts a report mismatch);
//   - decides SettlementRulesRequested commands (settlement_rules.h): the genesis rules once (a
//     second genesis with the same rules is accepted and changes nothing, with other rules it
//     is refused, rule rules_genesis_set), then changes from a named window at least
//     kRulesLeadTime after the command (effective_window_too_soon, transition_window), from the
//     ministry only; it reads nothing but earlier rules, so the decision depends only on the
//     rules partition's own order;
//   - records, per window, the rules its first stage-one delta was priced under; a later
//     stage-one delta priced under other rules (a stage one that lagged the rules by a day) is
//     counted (stats/rules_mixed, the window's rules_mixed) and the window cannot close (rule
//     rules_mixed) until the ministry aborts it, which moves its money on.
// Lifecycle: OPEN -> CLOSING -> CLOSED -> SETTLED, OPEN -> CLOSED directly (the ministry), and
// ABORTED from OPEN, CLOSING or CLOSED. SETTLED and ABORTED are final.
//
// The ledger is the single writer that decides lateness: it records, as a window freezes, the
// offsets counted in it (fz/), where late offset ranges landed (lt/) and where an aborted
// window's money went (mv/), so the id index follows the money (ReadCellTransactions,
// settlement_readers.h).
//
// Determinism: no clock (times come from the events' recorded_at), ordered containers only, so
// the same log yields the same bytes on every replica. Records that do not parse are counted
// (stats/ledger_unparseable) and skipped.
// Thread-safety: driven by one ApplyLoop thread.
//
// Example (the app wires it into an ApplyLoop; tests drive it directly):
//   WindowLedger ledger({.replica_index = 0, .replica_count = 3});
//   state_store::StateBatch batch(&store);
//   CHECK_OK(ledger.Apply(record, batch));  // derived events go to the batch's outbox
//   CHECK_OK(store.Commit(batch));
#ifndef TONGKA_SERVICES_SETTLEMENT_WINDOW_LEDGER_H_
#define TONGKA_SERVICES_SETTLEMENT_WINDOW_LEDGER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/state_store.h"
#include "proto/events.pb.h"
#include "services/settlement/business_day.h"
#include "services/settlement/settlement_readers.h"
#include "services/settlement/settlement_storage.pb.h"

namespace tongka::settlement {

struct LedgerOptions {
  // This replica owns (and writes events for) the tongka.settlement partitions p % N == k.
  int32_t replica_index = 0;
  int32_t replica_count = 1;
  // The invariants a report must hold before it is published; empty: CheckReportInvariants.
  // Tests inject a failing check to prove what a violation does.
  std::function<std::vector<std::string>(const v1::SettlementReport&)> check_report;
};

class WindowLedger : public state_store::Applier {
 public:
  explicit WindowLedger(LedgerOptions options) : options_(options) {}
  absl::Status Apply(const event_log::Record& record, state_store::StateBatch& batch) override;

 private:
  bool Owns(int32_t partition) const {
    return partition % options_.replica_count == options_.replica_index;
  }
  absl::Status ApplyDelta(const event_log::Record& record, const v1::Event& event,
                          state_store::StateBatch& batch);
  // A command decided once by its event id (a later copy is counted as a duplicate): `decide`'s
  // outcome is stored under the event id for read-your-writes.
  absl::Status DecideOnce(const v1::Event& event, state_store::StateBatch& batch,
                          const std::function<absl::StatusOr<RequestOutcome>()>& decide);
  absl::Status ApplyReserve(const v1::Event& event, state_store::StateBatch& batch);
  absl::Status ApplyReport(const v1::Event& event, state_store::StateBatch& batch);
  absl::StatusOr<RequestOutcome> DecideTransfer(const event_log::Record& record,
                                                const v1::Event& event,
                                                state_store::StateBatch& batch);
  absl::StatusOr<RequestOutcome> DecideRules(const v1::Event& event,
                                             state_store::StateBatch& batch);
  // Re-emits `cells` as deltas for the window after `from_window` (owner only), each carrying
  // the late_* and moved_window_id fields of `provenance` (where the money comes from).
  void CarryForward(const event_log::Record& record, absl::string_view base_event_id,
                    absl::string_view from_window, std::vector<v1::SettlementCell> cells,
                    const v1::SettlementDelta& provenance, state_store::StateBatch& batch);
  // Records, as the window freezes, the last offset per partition counted in it.
  absl::Status RecordFreeze(absl::string_view window_id, state_store::StateBatch& batch);
  // Decides a request; returns the outcome (accepted or the rule it broke).
  absl::StatusOr<RequestOutcome> Decide(const event_log::Record& record, const v1::Event& event,
                                        state_store::StateBatch& batch);

  LedgerOptions options_;
};

// A moment before which window `day` has not begun under any rules the ledger accepts (zones up
// to UTC+14, cuts from 00:01, transition windows): the ledger's rules-free check for closing an
// empty window.
absl::Time EarliestStart(absl::CivilDay day);

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_WINDOW_LEDGER_H_
