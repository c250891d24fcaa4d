// The settlement service's pure apply logic: two stages over one RocksDB (DESIGN.md "Exactly-once
// state", pattern 4), plus the readers the API and the report use.
//
// Stage one, TxnStage, consumes the tongka.txn partitions this replica owns (p % N == k). For each
// tap, refund and load (read with ParseTxnView, libs/txn/txn_view.h) it finds the window and hour
// of the platform's recorded time (business_day.h), the interchange fee (fees.h, per transaction),
// and adds it to its batch's cell (window, issuer, acquirer, hour): counts, fen, fee, and the
// order-independent digest of the transaction ids. A refund reverses money and fee by the
// cumulative rule of fees.h, against what earlier refunds of the same tap reversed ("rf/" keys,
// read and written for refunds only; taps never touch them). It indexes every tap and refund id
// with its pair under its hour for the id drill-down, appended (StateBatch::Append) to one chunk
// per hour and bucket of its partition's offsets: a few dozen writes per batch, none read back.
// FinishBatch emits one SettlementDelta per (source partition, window) to the outbox, keyed by
// window_id, with the event id "settlement/tongka.txn/<p>/<first>-<last>/<window>/<chunk>", where
// first and last are the offsets of that window's first and last counted record in the batch: a
// resend after a crash has the same id. Records the ledger already has (a rebuild after a lost
// volume, a partition moved to a new owner) are indexed again but not re-emitted.
//
// Where each transaction's money went (the one rule of business_day.h and events.proto): stage
// one files ids by their origin window and hour, before anyone knows whether their delta will be
// late; the ledger, the single writer that decides lateness, records its decisions (fz/, lt/,
// mv/ keys: the offsets counted before a window froze, where late offset ranges landed, where
// an aborted window's money went). ReadCellTransactions joins the two, so the id index answers
// by the window the money was counted in, on every replica, from the log alone.
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
//   - records FloatReserveRecorded; compares a SettlementReport read back from the log with its
//     own (a replica that disagrees counts a report mismatch).
// Lifecycle: OPEN -> CLOSING -> CLOSED -> SETTLED, OPEN -> CLOSED directly (the ministry), and
// ABORTED from OPEN, CLOSING or CLOSED. SETTLED and ABORTED are final.
//
// Keys (state column family):
//   t/<origin>/<hh>/<pppp>/<bucket>                 stage one's index: entries (issuer,
//                                                   acquirer, id length varints, id, zigzag
//                                                   amount, offset - bucket varint), the pairs,
//                                                   ids, signed amounts (refunds < 0) and offsets
//                                                   of the taps and refunds of one hour among
//                                                   partition p's records at offsets
//                                                   [bucket, bucket + kIndexBucketOffsets), in
//                                                   log order (bucket: 20 digits)
//   fz/<window>/<pppp>                              the ledger's: the last offset of partition p
//                                                   counted in the window when it froze (CLOSED
//                                                   or ABORTED); later ones were late
//   lt/<origin>/<pppp>/<first>                      the ledger's: "<last>:<window>", the window
//                                                   late money of those offsets landed in
//   mv/<window>                                     the ledger's: the window an aborted window's
//                                                   money landed in
//   wi/<window>                                     WindowRecord
//   wp/<window>/<issuer>/<acquirer>                 SettlementCell summed over hours (a pair)
//   wc/<window>/<issuer>/<acquirer>/<origin>/<hh>   SettlementCell of one hour
//   wr/<window>                                     SettlementReport (CLOSED and later)
//   f/<city>                                        FloatRecord
//   r/<event_id>                                    RequestOutcome of a command
//   cov/<window>/<partition>                        "<last_offset>:<chunk>" of stage one's deltas
//   stats/<name>                                    decimal counters
//   rf/<pppp>/<original transaction id>             RefundedTap: what the refunds of one tap of
//                                                   partition p reversed so far
//   rfd/<pppp>/<window>/<original transaction id>   "" : the same tap, under the window of its
//                                                   first refund (for the horizon's pruning)
//   rfh/<pppp>                                      the first window still kept: rf records whose
//                                                   first refund is older are deleted
//
// Determinism: no clock (times come from the events' recorded_at), ordered containers only, so
// the same log yields the same bytes. Records that do not parse are counted and skipped.
// Thread-safety: each applier is driven by one ApplyLoop thread (TxnStage::Prepare by its prefetch
// thread); the readers are thread-safe.
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_STATE_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_STATE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/prepared_queue.h"
#include "libs/state_store/state_store.h"
#include "libs/txn/txn_view.h"
#include "proto/events.pb.h"
#include "services/settlement/business_day.h"
#include "services/settlement/fees.h"
#include "services/settlement/settlement_storage.pb.h"

namespace tongka::settlement {

inline constexpr char kTxnTopic[] = "tongka.txn";
inline constexpr char kSettlementTopic[] = "tongka.settlement";
inline constexpr char kServiceName[] = "settlement";
// Cells per SettlementDelta event: keeps every event far below Kafka's 1 MB message limit.
inline constexpr size_t kCellsPerDeltaMax = 4000;
// Stage one's index groups an hour's ids per bucket of this many offsets of their partition, so
// the index bytes depend only on the log, never on how it was batched (same log, same state).
// One chunk per partition bucket (not per pair) keeps a batch to a few dozen index writes; the
// drill-down of one pair's hour reads the whole hour of this replica's index and keeps the pair's
// entries.
inline constexpr int64_t kIndexBucketOffsets = 1000;
// How long stage one remembers what a tap's refunds reversed, in windows after its first refund.
// When a partition's refunds reach window W, the records of taps first refunded before
// W - kRefundHorizonWindows are deleted (in log order, so the same log keeps the same records); a
// refund of such a tap later counts as its first. Keeps the state bounded by the refunds of the
// horizon.
inline constexpr int32_t kRefundHorizonWindows = 120;

// ---- keys ----
std::string WindowKey(absl::string_view window_id);
std::string PairPrefix(absl::string_view window_id);
std::string PairKey(absl::string_view window_id, uint32_t issuer, uint32_t acquirer);
std::string CellPrefix(absl::string_view window_id, uint32_t issuer, uint32_t acquirer);
std::string CellKey(absl::string_view window_id, uint32_t issuer, uint32_t acquirer,
                    absl::string_view origin_window_id, int32_t hour);
std::string IndexPrefix(absl::string_view origin_window_id, int32_t hour);
// One chunk of the index under IndexPrefix: partition `partition`'s records at offsets
// [bucket, bucket + kIndexBucketOffsets).
std::string IndexChunkKey(absl::string_view origin_window_id, int32_t hour, int32_t partition,
                          int64_t bucket);
std::string ReportKey(absl::string_view window_id);
std::string FloatKey(uint32_t city);
std::string OutcomeKey(absl::string_view event_id);
// "cov/<window>/<partition>": how far the ledger has applied stage one's deltas of one tongka.txn
// partition for one window, as "<last_offset>:<chunk>".
std::string CoverageKey(absl::string_view window_id, int32_t partition);
// "rf/<pppp>/<original transaction id>": the refunds of one tap so far (RefundedTap).
std::string RefundedTapKey(int32_t partition, absl::string_view original_id);
// The key a command's event goes to on tongka.settlement.
std::string ReserveEventKey(uint32_t city);

// ---- cells and digests ----
// Adds one transaction id to a cell's digest.
void AddIdToDigest(absl::string_view event_id, v1::SettlementCell* cell);
// Adds every count, amount and digest of `from` into `into` (keys are not touched).
void AddCell(const v1::SettlementCell& from, v1::SettlementCell* into);
// hi then lo, 32 lowercase hex digits.
std::string DigestHex(const v1::SettlementCell& cell);
int64_t CountOf(const v1::SettlementCell& cell);     // taps + refunds
int64_t GrossFenOf(const v1::SettlementCell& cell);  // taps_fen - refunds_fen

// ---- the report (pure) ----
// The position of one (issuer, acquirer) pair.
v1::BilateralPosition PositionOf(const v1::SettlementCell& pair);
// Multilateral net per city over the pairs with issuer != acquirer: the acquirer receives
// gross - fee, the issuer pays it. Sorted by city; cities of same-city-only pairs appear with 0.
std::vector<v1::NetPosition> NetPositions(const std::vector<v1::BilateralPosition>& bilateral);
// The full report of a window from its pairs (any order): sorted rows, nets, totals, digest.
v1::SettlementReport BuildReport(absl::string_view window_id,
                                 const std::vector<v1::SettlementCell>& pairs);
// The invariants every report must hold; an empty list when all hold. Each entry names one.
std::vector<std::string> CheckReportInvariants(const v1::SettlementReport& report);
// SM3 over the report with its digest field cleared.
std::string ReportDigest(const v1::SettlementReport& report);

// ---- stage one ----
class TxnStage : public state_store::Applier {
 public:
  TxnStage(const BusinessCalendar* calendar, const FeeSchedule* fees)
      : calendar_(calendar), fees_(fees), slots_(calendar) {}
  absl::Status Apply(const event_log::Record& record, state_store::StateBatch& batch) override;
  absl::Status FinishBatch(state_store::StateBatch& batch) override;
  // Reads each record and hashes its id ahead of Apply (on the apply loop's prefetch thread).
  void Prepare(const std::vector<event_log::Record>& records) override;

 private:
  // A record read and its id hashed by Prepare.
  struct Prepared {
    bool parsed = false;
    txn::TxnView txn;  // its views point into the record's bytes at `base`
    const char* base = nullptr;
    uint64_t id_digest_lo = 0;
    uint64_t id_digest_hi = 0;
  };
  // The prepared form of `record` if Prepare saw it, in step with Apply, valid until the next
  // call; nullptr otherwise (then Apply reads and hashes the record itself, with the same result).
  const Prepared* TakePrepared(const event_log::Record& record);

  struct Source {
    int64_t first_offset = -1;
    int64_t last_offset = -1;
  };
  // (source partition, this batch's window number, issuer, acquirer, hour).
  struct CellId {
    int32_t partition;
    int32_t window;  // index into windows_
    uint32_t issuer;
    uint32_t acquirer;
    int32_t hour;
    bool operator==(const CellId& o) const {
      return partition == o.partition && window == o.window && issuer == o.issuer &&
             acquirer == o.acquirer && hour == o.hour;
    }
    template <typename H>
    friend H AbslHashValue(H h, const CellId& id) {
      return H::combine(std::move(h), id.partition, id.window, id.issuer, id.acquirer, id.hour);
    }
  };
  // One cell of the batch: what it adds to the window (counted records only).
  struct OpenCell {
    CellId id;
    v1::SettlementCell cell;
    bool counted = false;
    int64_t covered_up_to = -1;  // the ledger's coverage of (window, partition) when opened
  };
  // The index entries this batch adds to one chunk: an hour's taps and refunds in one bucket of
  // kIndexBucketOffsets offsets of a partition. All records are indexed, counted or not (a
  // rebuild re-indexes records the ledger already has).
  struct OpenChunk {
    int32_t partition = 0;
    int32_t window = 0;  // index into windows_
    int32_t hour = 0;
    int64_t bucket = 0;   // first offset of the bucket
    std::string entries;  // this batch's, in the index's entry format (settlement_state.cc)
  };
  OpenCell& CellFor(int32_t partition, const std::string& window_id, uint32_t issuer,
                    uint32_t acquirer, int32_t hour, state_store::StateBatch& batch);
  // The ledger's coverage per (window, partition), read once each: records at or below it are
  // already in the log's deltas (a rebuilt stage one re-indexes them but emits nothing). The
  // ledger only raises coverage, so a cached value is never too high. The app starts stage one
  // after the ledger has caught up, so after a rebuild the first read is complete.
  int64_t CoveredUpTo(state_store::StateBatch& batch, const std::string& window_id,
                      int32_t partition);
  // What the refund in `record` (window `window_id`) reverses, by the cumulative rule of fees.h,
  // recording it against its tap; nullopt for a refund that does not parse as an event.
  absl::StatusOr<std::optional<RefundReversal>> ReverseRefundOf(const event_log::Record& record,
                                                                const txn::TxnView& txn,
                                                                const std::string& window_id,
                                                                state_store::StateBatch& batch);
  // Deletes the refund records of `partition` that fell out of the horizon at window `day`.
  absl::Status PruneRefundedTaps(int32_t partition, absl::CivilDay day,
                                 state_store::StateBatch& batch);

  const BusinessCalendar* calendar_;
  const FeeSchedule* fees_;
  SlotCache slots_;
  // This batch's cells, found by id through cell_slots_; sorted only in FinishBatch (so the
  // outbox order is stable), never per record.
  std::vector<std::string> windows_;
  std::vector<OpenCell> cells_;
  absl::flat_hash_map<CellId, size_t> cell_slots_;
  std::vector<OpenChunk> chunks_;                    // in the order they were opened
  absl::flat_hash_map<int32_t, size_t> last_chunk_;  // partition -> its chunk last appended to
  // The counted offsets per (partition, window): each delta names and covers only its own
  // window's records, so a rebuilt stage one that re-counts one window of a batch never makes
  // another window's delta overlap what the ledger applied.
  std::map<std::pair<int32_t, int32_t>, Source> sources_;
  std::map<std::pair<std::string, int32_t>, int64_t> coverage_;
  int64_t invalid_ = 0;         // this batch's unusable records, added to stats/txn_invalid
  int64_t refunds_capped_ = 0;  // this batch's refunds cut to what was left of their tap
  // Per partition, the window of its refunds the horizon was last pruned for (by this process;
  // pruning again is harmless, so a restart only repeats it once).
  absl::flat_hash_map<int32_t, std::string> refunds_pruned_for_;
  state_store::PreparedQueue<Prepared> prepared_;
};

// ---- stage two ----
struct LedgerOptions {
  const BusinessCalendar* calendar = nullptr;
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
  absl::Status ApplyWindowRequest(const event_log::Record& record, const v1::Event& event,
                                  state_store::StateBatch& batch);
  absl::Status ApplyReserve(const v1::Event& event, state_store::StateBatch& batch);
  absl::Status ApplyReport(const v1::Event& event, state_store::StateBatch& batch);
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

// ---- readers (API, tests, the ledger itself) ----
// A read view over a StateStore or a StateBatch (the batch overlays its own writes).
struct StateView {
  std::function<absl::StatusOr<std::optional<std::string>>(absl::string_view)> get;
  std::function<absl::Status(absl::string_view,
                             const std::function<bool(absl::string_view, absl::string_view)>&)>
      scan;
};
StateView ViewOf(const state_store::StateStore& store);
StateView ViewOf(const state_store::StateBatch& batch);

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
};
absl::StatusOr<LedgerStats> ReadStats(const StateView& view);

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_STATE_H_
