// ApplyLoop: consume owned partitions, apply each record with pure logic, commit state + offsets +
// outbox atomically. The consumer half of Tongka's exactly-once pattern.
//
// On Start the loop reads the offsets stored in the StateStore and assigns exactly the partitions
// this replica owns (p % replica_count == replica_index) at those offsets; a fresh store starts
// every owned partition at offset 0 and records that in the same commit style. Each RunOnce polls
// up to batch_max_records records, calls Applier::Apply for each in log order, records the next
// offset of each partition in the same StateBatch, and commits it. Before Apply, an EventFilter
// drops records whose event_id the partition already had within a horizon, and refuses records
// that sit in a partition their key does not hash to; their offsets move on with the batch. A crash
// anywhere before the commit loses the whole batch and its position together; the next start
// re-applies it. Under a backlog one commit may cover several batches (commit_max_records): what
// was applied and not yet committed is lost and re-applied together in the same way.
//
// A store that has offsets for some owned partitions but not others is corrupt (or was built for a
// different replica layout): Start fails with FAILED_PRECONDITION naming the partition, never
// guessing. A stored offset outside the log (truncated log) fails RunOnce with OUT_OF_RANGE.
//
// Thread-safety: one thread calls Start/RunOnce/Run. Progress() may be read from any thread.
//
// Example:
//   ApplyLoop loop(store.get(), std::move(consumer), &applier,
//                  {.topics = {"tongka.txn"}, .replica_index = k, .replica_count = n});
//   CHECK_OK(loop.Start());
//   loop.Run(stop_flag);  // until stop_flag is set or an error
#ifndef TONGKA_LIBS_STATE_STORE_APPLY_LOOP_H_
#define TONGKA_LIBS_STATE_STORE_APPLY_LOOP_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/event_log/partition_consumer.h"
#include "libs/event_log/record.h"
#include "libs/metrics/metrics.h"
#include "libs/state_store/event_filter.h"
#include "libs/state_store/state_store.h"

namespace tongka::state_store {

// A service's pure apply logic. Apply must be deterministic: its effect on `batch` may depend only
// on the record and on what it reads through `batch` (never on clocks, randomness or I/O), so the
// same log yields the same state bit for bit. A record it cannot understand is counted and skipped
// deterministically; a non-OK return means a bug or corruption and stops the loop.
//
// FinishBatch runs once per batch, after the last Apply and before the commit: the place to emit
// per-batch aggregates (stage-one deltas) into the outbox. Batch boundaries differ between a live
// run and a replay, so what FinishBatch emits may too; what it writes to *state* must not depend
// on them. Each aggregate is committed atomically with the offsets it covers, so downstream sees
// every record's contribution exactly once (resends carry the same event id).
//
// Records live until their batch's FinishBatch returns (with commit_max_records the batch may be
// committed later): nothing an applier keeps past that may point into them.
//
// Prepare is optional: work on records that reads no state (parsing, hashing), done ahead of
// Apply. With prefetch it runs on the prefetch thread, concurrently with Apply of earlier
// records, on each group of records in log order as they are fetched; without, on the loop's
// thread just before the batch is applied. Records may move in memory between Prepare and Apply
// (their bytes do not), and Apply must give the same result whether or not it saw a record
// prepared (a loop stopped with records still prefetched; tests that call Apply directly).
class Applier {
 public:
  virtual ~Applier() = default;
  virtual absl::Status Apply(const event_log::Record& record, StateBatch& batch) = 0;
  virtual absl::Status FinishBatch(StateBatch& batch) { return absl::OkStatus(); }
  virtual void Prepare(const std::vector<event_log::Record>& records) {}
};

struct ApplyLoopOptions {
  // Topics to consume; all must exist. Required.
  std::vector<std::string> topics;
  // This replica's index k and the replica count N: it owns partitions p % N == k.
  int32_t replica_index = 0;
  int32_t replica_count = 1;
  // Records per commit. Larger batches amortize the RocksDB write; smaller ones cut latency.
  size_t batch_max_records = 5000;
  // How long one poll waits for the first record.
  absl::Duration poll_timeout = absl::Milliseconds(100);
  // After the first record of a batch, how long to wait for the batch to fill (with prefetch,
  // while the previous batch is applied). Under a backlog batches are full at once; under a light
  // load this bounds a record's wait and keeps commits (and derived events) from going one per
  // record.
  absl::Duration batch_linger = absl::Milliseconds(100);
  // Under a backlog, one commit may cover several batches: while full batches keep coming, the
  // loop applies them into the same StateBatch and commits once at least `commit_max_records`
  // records are pending, `commit_max_delay` after the first of them, or at the first batch that
  // is not full (the backlog is gone: live traffic commits every batch). A key every batch
  // rewrites (a card's totals, a window's cell) then goes to RocksDB once per commit, not once
  // per batch. The cost: committed offsets and derived events (the outbox) wait for the commit,
  // and a crash re-applies everything not committed. 0 commits every batch.
  size_t commit_max_records = 0;
  absl::Duration commit_max_delay = absl::Milliseconds(500);
  // Optional: observes the wall time of each non-empty apply step (and its commit, when it
  // commits), in seconds.
  metrics::Histogram* batch_seconds = nullptr;
  // Poll on a background thread while a batch is applied and committed; the next batch is all it
  // gathered meanwhile (at most batch_max_records). Kafka fetching then overlaps with RocksDB
  // work; nothing is applied out of order.
  bool prefetch = true;
  // What the loop drops before the applier sees it: repeats of an event_id within a horizon of
  // log time, and records in a partition their key does not hash to (event_filter.h). Both are
  // consumed and counted (PartitionProgress), never applied.
  EventFilterOptions filter;
};

struct PartitionProgress {
  int64_t next_offset = 0;      // committed position
  int64_t high_watermark = -1;  // last known end of the log, -1 if unknown
  int64_t applied_total = 0;    // records applied since start
  // Records consumed but not applied since start (committed), by EventFilter's verdict.
  int64_t duplicates_dropped_total = 0;
  int64_t misrouted_dropped_total = 0;
};

class ApplyLoop {
 public:
  ApplyLoop(StateStore* store, std::unique_ptr<event_log::PartitionConsumer> consumer,
            Applier* applier, ApplyLoopOptions options);
  // Stops the prefetch thread. Records it fetched but the loop did not apply, and what the loop
  // applied but did not commit, are dropped: never committed, they are read again at the next
  // start. (Run commits before it returns.)
  ~ApplyLoop();

  // Validates options, resolves owned partitions, seeks to stored offsets. Called once.
  absl::Status Start();

  // Applies at most one batch and commits it, with the batches before it that are not yet
  // committed (commit_max_records). Returns the number of records applied. After a failure every
  // later call returns the same error: a batch that failed half-applied is never committed, and
  // the records after it are not applied either.
  absl::StatusOr<size_t> RunOnce();

  // Commits what was applied and not yet committed (commit_max_records); OK when nothing is.
  absl::Status Commit();

  // Calls RunOnce until `stop` is set or it fails; then commits what is pending.
  absl::Status Run(const std::atomic<bool>& stop);

  // True when every owned partition's committed position has reached the log end (asks the
  // broker for the high watermarks).
  absl::StatusOr<bool> CaughtUp();

  // A snapshot of per-partition progress, for metrics and tests.
  std::map<event_log::TopicPartition, PartitionProgress> Progress() const;

  // Commits written to the store since Start, for benchmarks and tests.
  int64_t CommitCount() const { return commits_.load(); }

 private:
  StateStore* store_;
  std::unique_ptr<event_log::PartitionConsumer> consumer_;
  Applier* applier_;
  ApplyLoopOptions options_;
  // Fetches the next batch: directly, or from the prefetch thread.
  absl::Status NextBatch(std::vector<event_log::Record>* records,
                         std::vector<EventFilter::Prepared>* prepared);
  void PrefetchLoop();

  std::vector<event_log::Record> records_;
  std::vector<EventFilter::Prepared> prepared_;  // filter_->Prepare of each of records_

  // Applied and not yet committed: the batch, and per partition the next offset and how many
  // records it covers.
  struct PendingPartition {
    int64_t next_offset = 0;
    int64_t records = 0;
    int64_t duplicates = 0;
    int64_t misrouted = 0;
  };
  std::unique_ptr<EventFilter> filter_;
  std::unique_ptr<StateBatch> pending_;
  std::map<event_log::TopicPartition, PendingPartition> pending_partitions_;
  size_t pending_records_ = 0;
  absl::Time pending_since_;
  absl::Status failed_;  // the error that stopped the loop
  bool started_ = false;
  std::atomic<int64_t> commits_{0};

  // Prefetch hand-over: the thread adds to `prefetched_` (up to batch_max_records); the loop
  // takes all of it, and hands the batch it applied before back in `spent_`, for the thread to
  // free (each record returns a librdkafka message) off the apply thread.
  absl::Mutex prefetch_mu_;
  std::vector<event_log::Record> prefetched_ ABSL_GUARDED_BY(prefetch_mu_);
  std::vector<EventFilter::Prepared> prefetched_prepared_ ABSL_GUARDED_BY(prefetch_mu_);
  std::vector<event_log::Record> spent_ ABSL_GUARDED_BY(prefetch_mu_);
  absl::Status prefetch_status_ ABSL_GUARDED_BY(prefetch_mu_);
  bool prefetch_ready_ ABSL_GUARDED_BY(prefetch_mu_) = false;
  bool prefetch_stop_ ABSL_GUARDED_BY(prefetch_mu_) = false;
  std::thread prefetch_thread_;

  mutable absl::Mutex mu_;
  std::map<event_log::TopicPartition, PartitionProgress> progress_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tongka::state_store

#endif  // TONGKA_LIBS_STATE_STORE_APPLY_LOOP_H_
