// IngestApi: one upload batch from validation to Kafka's acknowledgement, the core of the ingest
// service (the gRPC handlers are a thin shell around Upload).
//
// For each transaction of a batch, in order:
//   1. validate (validator.h): a broken rule makes the item REJECTED, naming field and rule;
//   2. claim its id (terminal_id, terminal_seq) in an in-process claim table, so that two
//      uploads of the same id (in one batch, or concurrent batches) never both produce: the
//      later one waits until the earlier one is settled, then looks again;
//   3. look the id up in the dedup index (dedup_index.h): same content -> DUPLICATE; other
//      content -> CONFLICT: a TxnConflict event goes to tongka.txn.conflicts (keyed by card_id,
//      the same way as step 4), and once Kafka has it, the evidence is kept in RocksDB, counted
//      and answered CONFLICT; nothing of it reaches tongka.txn. Content already kept as evidence
//      (a retried call) is answered CONFLICT again without publishing or counting;
//   4. otherwise produce the tongka.v1.Event to tongka.txn keyed by card_id (idempotent producer,
//      acks=all) and, once Kafka's delivery report says OK, record the id in the dedup index and
//      only then answer ACCEPTED. Dedup entries of a batch are written in one RocksDB commit.
// A crash after Kafka took a TxnConflict but before its evidence was kept publishes it again on
// the retry, under the same event id (BuildConflictEvent): consumers drop the repeat.
//
// Failure contract (what a client sees when Kafka is slow or down): an item is ACCEPTED only
// after its delivery report is OK. If any produced item of the batch has no OK report by the
// deadline (ack_timeout, or the call's own deadline if sooner), or the producer's local queue
// stays full, the whole call fails with UNAVAILABLE (Kafka slow/down) or RESOURCE_EXHAUSTED
// (queue full), with a retry hint (RetryAfter(status)); no per-item results are returned. The
// client retries the same batch: items Kafka did take come back DUPLICATE, the rest are
// produced again. Items whose report is still pending keep their claim until it arrives, so a
// retry of them waits instead of producing a second copy; when the report finally arrives, a
// success is recorded in the dedup index by the delivery callback itself (a conflict's evidence
// is kept, so its retry is answered CONFLICT without publishing it again). A call whose client
// has gone (`cancelled`, checked every 100 ms while it waits) stops waiting the same way and
// fails CANCELLED, giving back its admission at once instead of at the deadline.
//
// Ownership: borrows everything; the producer must be destroyed (flushing, which runs the last
// delivery callbacks) before the IngestApi, and the IngestApi before the dedup index and metrics.
// Thread-safety: Upload may be called from any number of threads at once.
//
// Example:
//   IngestApi ingest_api(&validator, &dedup, producer.get(), &metrics, absl::Now, {});
//   absl::StatusOr<v1::UploadBatchResponse> response =
//       ingest_api.Upload(tenant, request, absl::Now() + absl::Seconds(10));
#ifndef TONGKA_SERVICES_INGEST_INGEST_API_H_
#define TONGKA_SERVICES_INGEST_INGEST_API_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "libs/event_log/producer.h"
#include "libs/server/authenticator.h"
#include "proto/ingest.pb.h"
#include "services/ingest/dedup_index.h"
#include "services/ingest/inflight_limit.h"
#include "services/ingest/ingest_config.h"
#include "services/ingest/ingest_metrics.h"
#include "services/ingest/validator.h"

namespace tongka::ingest {

struct IngestApiOptions {
  std::string topic = kTxnTopic;
  std::string conflict_topic = kConflictTopic;
  // Longest wait for Kafka's acknowledgements of one batch.
  absl::Duration ack_timeout = absl::Seconds(10);
  // The retry hint attached to UNAVAILABLE and RESOURCE_EXHAUSTED.
  absl::Duration retry_after = absl::Seconds(1);
  // How long a full local produce queue is retried before the call fails RESOURCE_EXHAUSTED.
  absl::Duration queue_full_wait = absl::Milliseconds(200);
  // Transactions of the calls being served at once (IngestConfig::max_inflight_items): a batch
  // that would exceed it fails RESOURCE_EXHAUSTED at once, before anything is validated.
  int64_t max_inflight_items = 500000;
};

// The retry hint of a status returned by Upload, if it has one.
std::optional<absl::Duration> RetryAfter(const absl::Status& status);
// `status` with the retry hint `retry_after` attached (read back by RetryAfter).
absl::Status WithRetryAfter(absl::Status status, absl::Duration retry_after);

// Ids being produced right now, one owner each. Sharded to keep uploads on different ids apart.
// An id is held as its 64-bit hash: no copy of the string, no string compares. Two ids with the
// same hash (about one pair in 10^11 among ten thousand ids in flight) only make the later one
// wait until the earlier is settled, as a second upload of one id would; nothing else depends on
// the claim being exact (the dedup index decides DUPLICATE and CONFLICT).
class ClaimTable {
 public:
  // True if the caller now owns `id`; false if someone else does.
  bool TryClaim(absl::string_view id);
  void Release(absl::string_view id);
  // TryClaim of each id in order (a repeat of an earlier id in `ids` is not claimed), and Release
  // of each, taking each shard's lock once: a call claims a whole batch.
  std::vector<bool> TryClaimMany(absl::Span<const absl::string_view> ids);
  void ReleaseMany(absl::Span<const absl::string_view> ids);
  // Waits until nobody owns `id` or `deadline` passes; true if free.
  bool AwaitFree(absl::string_view id, absl::Time deadline);
  int64_t size() const;

 private:
  static constexpr int kShards = 64;
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_set<uint64_t> ids ABSL_GUARDED_BY(mu);
  };
  static uint64_t KeyOf(absl::string_view id);
  Shard& ShardOf(uint64_t key) { return shards_[key % kShards]; }
  // Calls visit(shard, i, key) for every i, grouped by shard under its lock, in order within
  // each shard.
  template <typename Visit>
  void ForEachByShard(absl::Span<const absl::string_view> ids, Visit visit);
  Shard shards_[kShards];
};

// Orders the claims of consecutive batches served at once (one stream's window): a batch claims
// its ids only after the batch before it has claimed its own, so of two batches in progress
// together that carry one transaction id, the earlier owns it (ACCEPTED, or CONFLICT against it)
// and the later waits and finds it (DUPLICATE or CONFLICT), as if served one after the other.
// Validation still runs side by side; only the claims take turns.
struct ClaimOrder {
  // When set, claims wait until it is notified (up to the call's deadline).
  std::shared_ptr<const absl::Notification> after;
  // When set, notified once this batch has claimed, or when it returns without claiming; never
  // before `after` is (short of the deadline), so a batch refused at once keeps the order.
  std::shared_ptr<absl::Notification> claimed;
};

// Whether the caller of Upload has gone (its gRPC call cancelled); called from Upload's thread.
using CancelledFn = std::function<bool()>;

class IngestApi {
 public:
  IngestApi(const Validator* validator, DedupIndex* dedup, event_log::Producer* producer,
            IngestMetrics* metrics, server::NowFn now, IngestApiOptions options);

  IngestApi(const IngestApi&) = delete;
  IngestApi& operator=(const IngestApi&) = delete;

  // One batch. INVALID_ARGUMENT beyond kBatchSizeMax items; PERMISSION_DENIED for tenants that
  // may not upload; RESOURCE_EXHAUSTED (with RetryAfter, nothing done) when the batch would take
  // the transactions being served past max_inflight_items; UNAVAILABLE / RESOURCE_EXHAUSTED
  // (with RetryAfter) as described above; CANCELLED (with RetryAfter) once `cancelled` says so
  // while the call waits; otherwise one result per item, in order.
  absl::StatusOr<v1::UploadBatchResponse> Upload(const v1::Tenant& tenant,
                                                 const v1::UploadBatchRequest& request,
                                                 absl::Time deadline, const ClaimOrder& order = {},
                                                 const CancelledFn& cancelled = nullptr);

  // Ids claimed right now (produced, not settled), for tests.
  int64_t claimed() const { return claims_.size(); }
  // Transactions of the calls being served right now.
  int64_t admitted_items() const { return admitted_.in_use(); }

 private:
  struct Batch;
  struct Slot;
  struct Item;
  struct Call;
  struct Round;
  class ClaimTurn;
  // Drops one reference to a batch; the last one frees it. Nothing may touch the batch after.
  struct BatchUnref {
    void operator()(Batch* batch) const;
  };

  // The phases of Upload, in the order one call goes through them. Each says what it leaves
  // behind on failure; Upload adds the retry hint.
  //
  // 1. The batch as a whole: its size, whether its tenant may upload, and room for its items
  //    (max_inflight_items). A refusal has done nothing and counted nothing but itself.
  absl::StatusOr<InflightLimit::Ticket> AdmitBatch(const v1::Tenant& tenant, int items);
  // 2. Each item's rules and MAC (validator.h); a broken rule is answered REJECTED in
  //    `call.response` and counted when the call answers. Returns the valid items, in order, each
  //    with its content digest. Pure: no I/O but the keyring's cached terminal keys.
  std::vector<Item> ValidateItems(Call& call, const v1::UploadBatchRequest& request);
  // The producer's handles of the two topics, into `call`.
  absl::Status ResolveTopics(Call& call);
  // 3. Rounds until no valid item is left: each round claims its items (those held by another
  //    call wait for the next round), looks them up, appends the new ones to the log, awaits
  //    their reports, records and answers what Kafka took, and releases its claims. On failure
  //    every claim the call holds is released, except those of records whose report is still
  //    pending: their reports settle them (Slot::Unanswered).
  absl::Status RunRounds(Call& call, std::vector<Item> items, ClaimTurn& turn);
  //    3a. Claims the ids of `items` (ClaimTable::TryClaimMany) and sets up the round's batch.
  Round Claim(const Call& call, std::vector<Item> items);
  //    3b. Looks the claimed ids up in the dedup index: DUPLICATE and a conflict already kept are
  //        answered and released here; the rest (new, or a new conflict with its evidence) are
  //        left in `round.to_append`. On failure the claims of the item that failed and of every
  //        claimed item after it are released.
  absl::Status LookUp(Call& call, Round& round);
  //    3c. Produces `round.to_append` in order, to tongka.txn or (conflicts) the conflict topic,
  //        each record's report going to its Slot. On failure the claims of the record that
  //        failed and of those after it are released (nothing of them was produced).
  absl::Status Append(const Call& call, Round& round);
  //    3d. Waits for the reports of everything produced, up to the deadline (or until the client
  //        has gone). Leaves the reports in `round.reports`; the records still unreported are
  //        handed to their late reports (the batch is abandoned).
  void AwaitReports(const Call& call, Round& round);
  //    3e. Answers what Kafka took (ACCEPTED, or CONFLICT with its evidence kept), writes the
  //        round's dedup entries in one commit (RecordDurable), then releases the claims of every
  //        reported record. UNAVAILABLE when a report failed, or (UNAVAILABLE or CANCELLED) when
  //        some had none in time.
  absl::Status Settle(Call& call, Round& round);
  //    3f. Waits until no other call holds any of `blocked`; UNAVAILABLE or CANCELLED when the
  //        wait ended first.
  absl::Status AwaitBlocked(const Call& call, const std::vector<Item>& blocked);
  // 4. The response: totals by outcome; counts the rejections and duplicates (only an answered
  //    call counts them: a failed one is retried whole).
  v1::UploadBatchResponse Answer(Call& call);

  absl::Status ProduceItem(Slot& slot, const Item& item, event_log::ProducerTopic* topic,
                           const std::string& value);
  void OnDelivery(Slot& slot, const event_log::DeliveryResult& result);
  void RecordDurable(const std::vector<DedupEntry>& entries);
  // A transaction Kafka has taken (in time for its call or not), in the accepted counters.
  void CountAccepted(uint32_t metrics_city, bool flagged_late, bool cross_city);
  // A conflict Kafka has taken: keeps the evidence and counts it, once per content.
  void KeepEvidence(const std::string& event_id, const ingest_storage::ConflictEvidence& evidence,
                    uint32_t metrics_city);
  absl::Status RetryHint(absl::Status status) const;

  const Validator* const validator_;
  DedupIndex* const dedup_;
  event_log::Producer* const producer_;
  IngestMetrics* const metrics_;
  const server::NowFn now_;
  const IngestApiOptions options_;
  ClaimTable claims_;
  InflightLimit admitted_;
};

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_INGEST_API_H_
