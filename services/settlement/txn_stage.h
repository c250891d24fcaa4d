// Settlement's stage one, TxnStage: tongka.txn -> SettlementDelta events, one applier of
// libs/state_store over the service's RocksDB (DESIGN.md "Exactly-once state", pattern 4). The
// ledger that applies its deltas is stage two (window_ledger.h); the keys both write are in
// settlement_keys.h.
//
// Stage one, TxnStage, consumes the tongka.txn partitions this replica owns (p % N == k), and
// the same partitions of tongka.cards (co-partitioned), where the registry's CardIssued events
// bring each card's opening balance into its issuer's float (a cell with issuer == acquirer,
// counted in `openings`, in the window of the decision's recorded time). For each
// tap, refund and load (read with ParseTxnView, libs/txn/txn_view.h) it finds the window and hour
// of the platform's recorded time and the interchange fee (fees.h, per transaction) under the
// rules recorded on the log for that window (settlement_rules.h; the ledger stores them, stage
// one re-reads them at each batch and stops with FAILED_PRECONDITION while there are none),
// and adds it to its batch's cell (window, issuer, acquirer, hour): counts, fen, fee, and the
// order-independent digest of the transaction ids. A refund reverses money and fee by the
// cumulative rule of fees.h, against what earlier refunds of the same tap reversed ("rf/" keys,
// read and written for refunds only; taps never touch them). It indexes every tap and refund id
// with its pair under its hour for the id drill-down, appended (StateBatch::Append) to one chunk
// per hour and bucket of its partition's offsets: a few dozen writes per batch, none read back.
// FinishBatch emits one SettlementDelta per (source partition, window) to the outbox, keyed by
// window_id, with the event id "settlement/tongka.txn/<p>/<first>-<last>/<window>/<chunk>", where
// first and last are the offsets of that window's first and last counted record in the batch: a
// resend after a crash has the same id. Each delta names the rules it was priced under (rules_id).
// Records the ledger already has (a rebuild after a lost volume, a partition moved to a new owner)
// are indexed again but not re-emitted.
//
// Determinism: no clock (times come from the events' recorded_at); a batch's cells are sorted
// before they are emitted, so the same log yields the same bytes however it was batched. Records
// that do not parse are counted (stats/txn_invalid) and skipped.
// Thread-safety: driven by one ApplyLoop thread; Prepare runs on its prefetch thread.
//
// Example (the app wires it into an ApplyLoop; tests drive it directly):
//   TxnStage stage;  // the rules come from the store the batches write to
//   state_store::StateBatch batch(&store);
//   for (const event_log::Record& record : records) CHECK_OK(stage.Apply(record, batch));
//   CHECK_OK(stage.FinishBatch(batch));  // the deltas go to the batch's outbox
//   CHECK_OK(store.Commit(batch));
#ifndef TONGKA_SERVICES_SETTLEMENT_TXN_STAGE_H_
#define TONGKA_SERVICES_SETTLEMENT_TXN_STAGE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/prepared_queue.h"
#include "libs/state_store/state_store.h"
#include "libs/txn/txn_view.h"
#include "proto/events.pb.h"
#include "services/settlement/business_day.h"
#include "services/settlement/fees.h"
#include "services/settlement/settlement_keys.h"
#include "services/settlement/settlement_readers.h"
#include "services/settlement/settlement_rules.h"

namespace tongka::settlement {

// How long stage one remembers what a tap's refunds reversed, in windows after its first refund.
// When a partition's refunds reach window W, the records of taps first refunded before
// W - kRefundHorizonWindows are deleted (in log order, so the same log keeps the same records); a
// refund of such a tap later counts as its first. Keeps the state bounded by the refunds of the
// horizon.
inline constexpr int32_t kRefundHorizonWindows = 120;

// The registry's service name: CardIssued events count only from platform:card_registry.
inline constexpr char kCardRegistryService[] = "card_registry";

class TxnStage : public state_store::Applier {
 public:
  TxnStage() = default;
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
  // A source of counted records: a partition p of tongka.txn is p, of tongka.cards
  // kCardsSource + p (each topic's offsets are covered separately).
  static constexpr int32_t kCardsSource = 1 << 20;
  static int32_t PartitionOf(int32_t source) {
    return source >= kCardsSource ? source - kCardsSource : source;
  }
  static const char* TopicOf(int32_t source) {
    return source >= kCardsSource ? kCardsTopic : kTxnTopic;
  }
  // (source, this batch's window number, issuer, acquirer, hour).
  struct CellId {
    int32_t partition;  // the source
    int32_t window;     // index into windows_
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
    std::string entries;  // this batch's, in the index's entry format (settlement_keys.h)
  };
  OpenCell& CellFor(int32_t partition, const std::string& window_id, const RulesPeriod& rules,
                    uint32_t issuer, uint32_t acquirer, int32_t hour,
                    state_store::StateBatch& batch);
  // Reads the rules at the start of a batch (FAILED_PRECONDITION while there are none).
  absl::Status RefreshRules(state_store::StateBatch& batch);
  // A tongka.cards record: a CardIssued from the registry adds its opening balance to a cell
  // (issuer == acquirer) of its window; everything else there moves no money.
  absl::Status ApplyCard(const event_log::Record& record, state_store::StateBatch& batch);
  // The ledger's coverage per (window, partition), read once each: records at or below it are
  // already in the log's deltas (a rebuilt stage one re-indexes them but emits nothing). The
  // ledger only raises coverage, so a cached value is never too high. The app starts stage one
  // after the ledger has caught up, so after a rebuild the first read is complete.
  int64_t CoveredUpTo(state_store::StateBatch& batch, const std::string& window_id, int32_t source);
  // What the refund in `record` (window `window_id`) reverses, by the cumulative rule of fees.h,
  // recording it against its tap; nullopt for a refund that does not parse as an event. The rate
  // is the lowest in force over the refund horizon up to its first refund's window (the tap's own
  // window is not known here), RulesTimeline::MinBasisPoints.
  absl::StatusOr<std::optional<RefundReversal>> ReverseRefundOf(const event_log::Record& record,
                                                                const txn::TxnView& txn,
                                                                const std::string& window_id,
                                                                state_store::StateBatch& batch);
  // Deletes the refund records of `partition` that fell out of the horizon at window `day`.
  absl::Status PruneRefundedTaps(int32_t partition, absl::CivilDay day,
                                 state_store::StateBatch& batch);

  // The rules, re-read at the start of each batch (rules_read_); slots_ points into rules_.
  RulesCache rules_cache_;
  std::shared_ptr<const RulesTimeline> rules_;
  bool rules_read_ = false;
  SlotCache slots_;
  // This batch's cells, found by id through cell_slots_; sorted only in FinishBatch (so the
  // outbox order is stable), never per record. window_rules_: the rules id of each window.
  std::vector<std::string> windows_;
  std::vector<std::string> window_rules_;
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

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_TXN_STAGE_H_
