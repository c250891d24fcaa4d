// Reading settlement's state (keys: settlement_keys.h): the windows, pairs, hour cells, reports,
// floats, command outcomes and counters the ledger keeps, and stage one's id index joined with the
// ledger's record of where money went. The API, the tests and the ledger itself read through
// these, over a StateStore or over a StateBatch that is being applied.
//
// Where each transaction's money went (the one rule of business_day.h and events.proto): stage
// one (txn_stage.h) files ids by their origin window and hour, before anyone knows whether their
// delta will be late; the ledger (window_ledger.h), the single writer that decides lateness,
// records its decisions (fz/, lt/, mv/ keys: the offsets counted before a window froze, where
// late offset ranges landed, where an aborted window's money went). ReadCellTransactions joins
// the two, so the id index answers by the window the money was counted in, on every replica,
// from the log alone.
//
// Thread-safety: the readers are thread-safe over a StateStore; a view over a StateBatch is for
// the batch's own thread. Failure: a stored record that does not parse is INTERNAL (corruption),
// never silently a default; the store's own errors pass through.
//
// Example:
//   absl::StatusOr<std::optional<v1::SettlementReport>> report =
//       ReadReport(ViewOf(store), "2026-11-24");
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_READERS_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_READERS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "libs/state_store/state_store.h"
#include "libs/state_store/state_view.h"
#include "proto/events.pb.h"
#include "services/settlement/settlement_rules.h"
#include "services/settlement/settlement_storage.pb.h"

namespace tongka::settlement {

// A read view over a StateStore or a StateBatch (libs/state_store/state_view.h).
using state_store::StateView;
using state_store::ViewOf;

absl::StatusOr<std::optional<WindowRecord>> ReadWindow(const StateView& view,
                                                       absl::string_view window_id);
// Every window, by id ascending.
absl::StatusOr<std::vector<std::pair<std::string, WindowRecord>>> ReadWindows(
    const StateView& view);
absl::StatusOr<std::vector<v1::SettlementCell>> ReadPairs(const StateView& view,
                                                          absl::string_view window_id);
absl::StatusOr<std::vector<v1::SettlementCell>> ReadHours(const StateView& view,
                                                          absl::string_view window_id,
                                                          uint32_t issuer, uint32_t acquirer);
absl::StatusOr<std::optional<v1::SettlementReport>> ReadReport(const StateView& view,
                                                               absl::string_view window_id);
// Stage one's index: (event id, signed amount) of the transactions of one pair recorded in one
// hour of `origin_window_id` whose money was counted in `window_id` (the origin itself, or a later
// window the money was carried to), in id order. Ids whose carried money has not landed yet are
// in no window.
absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ReadCellTransactions(
    const StateView& view, absl::string_view window_id, absl::string_view origin_window_id,
    uint32_t issuer, uint32_t acquirer, int32_t hour);
absl::StatusOr<std::map<uint32_t, FloatRecord>> ReadFloats(const StateView& view);
// What an issuer's open cards hold: openings + loads - spends + refunds - owed to the holders of
// closed cards. FloatChangeFen is one cell's share of it.
int64_t OutstandingFen(const FloatRecord& record);
int64_t FloatChangeFen(const v1::SettlementCell& cell);
// Every failed issuer's succession (sc/), by from city.
absl::StatusOr<std::map<uint32_t, SuccessionRecord>> ReadSuccessions(const StateView& view);

// One issuer's float with the successions folded in, at read time: the stored float records
// stay per card city (they add up whatever order the partitions are applied in), and a transfer
// only changes who carries which city's float. The outstanding figures of all issuers sum to the
// same total before and after any transfer.
struct FoldedFloat {
  FloatRecord record;   // as stored for this city (empty when it has none)
  int64_t own_fen = 0;  // OutstandingFen(record): what this city's cards hold
  // Not transferred: what it carries, own_fen + inherited_fen; transferred: 0.
  int64_t outstanding_fen = 0;
  // Not transferred: the own_fen of every city whose float ends up carried by this one (through
  // a chain of transfers), and those cities, ascending. Empty for a transferred city.
  int64_t inherited_fen = 0;
  std::vector<uint32_t> predecessors;
  uint32_t successor = 0;        // the direct successor; 0 when not transferred
  uint32_t final_successor = 0;  // the end of the chain (who carries own_fen); 0 when none
};
// Every city with a float record or a succession (either side), by city. INTERNAL when the
// successions form a cycle (the ledger never accepts one: corruption).
absl::StatusOr<std::map<uint32_t, FoldedFloat>> FoldFloats(
    const std::map<uint32_t, FloatRecord>& floats,
    const std::map<uint32_t, SuccessionRecord>& successions);
absl::StatusOr<std::map<uint32_t, FoldedFloat>> ReadFoldedFloats(const StateView& view);

absl::StatusOr<std::optional<RequestOutcome>> ReadOutcome(const StateView& view,
                                                          absl::string_view event_id);

struct LedgerStats {
  int64_t duplicates_dropped = 0;    // resent deltas and commands
  int64_t late_deltas = 0;           // deltas for closed windows, carried forward
  int64_t invariant_violations = 0;  // must stay zero
  int64_t report_mismatches = 0;     // a report on the log that differs from ours: must stay zero
  int64_t ledger_unparseable = 0;
  int64_t txn_invalid = 0;     // stage one: records it could not use (this replica's)
  int64_t refunds_capped = 0;  // stage one: refunds cut to what was left of their tap
  // Stage-one deltas priced under other rules than their window's first: must stay zero.
  int64_t rules_mixed = 0;
  int64_t float_transfers = 0;  // accepted FloatTransferRequested commands
};
absl::StatusOr<LedgerStats> ReadStats(const StateView& view);

// The rules recorded on the log (ru/), genesis first; empty before the genesis is applied.
absl::StatusOr<std::vector<RulesRecord>> ReadRules(const StateView& view);
// The rules as a timeline; nullopt before the genesis. INTERNAL when the stored rules do not
// form one (corruption: the ledger stores only rules it validated).
absl::StatusOr<std::optional<RulesTimeline>> ReadRulesTimeline(const StateView& view);

// ReadRulesTimeline, parsed again only when the stored rules changed: the rules change a few
// times a year and are read for every batch and request. Thread-safe.
class RulesCache {
 public:
  // nullptr before the genesis.
  absl::StatusOr<std::shared_ptr<const RulesTimeline>> Get(const StateView& view)
      ABSL_LOCKS_EXCLUDED(mutex_);

 private:
  absl::Mutex mutex_;
  std::string bytes_ ABSL_GUARDED_BY(mutex_);  // the stored records the timeline was built from
  std::shared_ptr<const RulesTimeline> timeline_ ABSL_GUARDED_BY(mutex_);
};

// Shared with the ledger (window_ledger.cc); not for callers outside this folder.
namespace internal {

using state_store::ReadMessage;
using state_store::ScanMessages;

// A window in these states still takes deltas; a delta for any other is late and carried.
inline bool AcceptsDeltas(v1::WindowState state) {
  return state == v1::WINDOW_STATE_OPEN || state == v1::WINDOW_STATE_CLOSING;
}

}  // namespace internal
}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_READERS_H_
