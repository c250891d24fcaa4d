// EventFilter: the consumer's last line against repeated and misrouted records (DESIGN.md,
// "Exactly-once state", point 8). The apply loop asks it about every record before the applier
// sees it; a record it drops is consumed (its offset moves on) but never applied.
//
// Repeats. Producers are idempotent, but a retry across a producer's restart, a lost delivery
// report or another producer writing the same event can still append a second copy of an event.
// The filter keeps the `event_id` of every record it let through (the envelope's field 1, read
// without parsing the body) and drops a later record with the same id, as long as the copy is
// appended within `horizon` of the original in log time. Log time is the partition's clock: the
// largest Kafka record timestamp among the records with an event id applied so far, so the
// index's content depends only on the log, never on the wall clock or on batch boundaries.
//
// Storage: the ids live in the service's own RocksDB, in the same StateBatch as the state, as
// one appended chunk per (topic, partition, bucket of `bucket_width` log time):
//   ~ids/<topic>/<pppp>/<bucket>   varint length + id bytes, in log order (bucket: 20 digits)
// A chunk is deleted, in the batch that moves the partition's clock past it by more than
// `horizon`, so the index holds between `horizon` and `horizon + bucket_width` of ids. It is
// rebuilt by replay like every other key and counts in the state digest. In memory the filter
// holds a hash of each id with its bucket (16-byte slots in a table kept at most half full:
// 32 to 64 bytes per id, loaded from the chunks at start); a hash match is confirmed against the
// stored ids before anything is dropped, so only an exact repeat of an id is ever dropped.
//
// Misrouted records. Tongka's producers place a record with murmur2 of its key (Kafka's and
// librdkafka's murmur2_random partitioner), so a card's transactions and card events share a
// partition and each partition's index sees every copy of an event. A record that sits in a
// partition its key does not hash to (a producer with another partitioner, a hand-written
// partition) would escape that index and any per-card order: it is refused. Records without a
// key are not checked (murmur2_random spreads them at random).
//
// What it drops is counted in the store too, in the same batch (`~drops/<topic>/<pppp>`:
// "<duplicates> <misrouted>"): the copies are in the log, so a replay drops and counts the same
// ones, and the counts are state like any other (ReadDropCounts).
//
// Records whose value has no readable event id are let through untouched (the applier counts
// them as junk as it always did).
//
// Cost: reading the id, hashing it and hashing the key need no state, so Prepare does them ahead
// (on the apply loop's prefetch thread); Admit then costs one table probe, which the loop
// prefetches a few records ahead (Prefetch), and the id's bytes appended to a chunk.
//
// Thread-safety: Prepare may run on any thread once Load has returned; everything else on one
// thread (the apply loop's). Failure: RocksDB read errors come back as Status;
// a chunk that does not decode is corruption (INTERNAL).
//
// Example:
//   EventFilter filter(store, {.horizon = absl::Hours(24)});
//   CHECK_OK(filter.Load({{"tongka.txn", 0}, {"tongka.txn", 2}}, {{"tongka.txn", 8}}));
//   for (const Record& r : records) {
//     ASSIGN_OR_RETURN(EventFilter::Verdict v, filter.Admit(r, batch));
//     if (v == EventFilter::Verdict::kApply) applier.Apply(r, batch);
//   }
//   CHECK_OK(filter.Flush(batch));  // before the batch commits
#ifndef TONGKA_LIBS_STATE_STORE_EVENT_FILTER_H_
#define TONGKA_LIBS_STATE_STORE_EVENT_FILTER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/event_log/record.h"
#include "libs/state_store/id_table.h"
#include "libs/state_store/state_store.h"

namespace tongka::state_store {

struct EventFilterOptions {
  // Drop a record whose event_id an earlier record of the same partition carried.
  bool drop_duplicates = true;
  // How long (in log time) an id is remembered: a copy appended later than this after the
  // original is not recognised. Bounds the index's size: at least 1 ms.
  absl::Duration horizon = absl::Hours(24);
  // The log time one stored chunk covers; at least 1 ms, at most `horizon`.
  absl::Duration bucket_width = absl::Hours(1);
  // Refuse a record whose key does not hash (murmur2) to the partition it sits in.
  bool refuse_misrouted = true;
};

// The event_id of a serialized tongka.v1.Event (field 1), read from the wire without parsing the
// rest; nullopt when the bytes are not a well-formed message or carry no (or an empty) id. When
// the field occurs more than once the last one counts, as in a full protobuf parse.
std::optional<absl::string_view> EnvelopeEventId(absl::string_view value);

// Records dropped so far, as committed in the store.
struct DropCounts {
  int64_t duplicates = 0;
  int64_t misrouted = 0;
};
// The committed counts of one topic's partitions in this store, summed; every topic's when
// `topic` is empty.
absl::StatusOr<DropCounts> ReadDropCounts(const StateStore& store, absl::string_view topic = "");

class EventFilter {
 public:
  enum class Verdict { kApply, kDuplicate, kMisrouted };

  EventFilter(const StateStore* store, EventFilterOptions options);

  // Validates the options and loads the stored ids of `partitions`. `partition_counts` gives the
  // partition count of every topic in `partitions`. Called once, before Admit.
  absl::Status Load(const std::vector<event_log::TopicPartition>& partitions,
                    const std::map<std::string, int32_t>& partition_counts);

  // What Admit needs of a record that reads no state: its partition's index, whether its key
  // belongs in its partition, its id and the id's hash. `id` views the record's bytes.
  struct Prepared {
    const void* partition = nullptr;  // the record's partition index (opaque)
    bool misrouted = false;
    bool has_id = false;
    absl::string_view id;
    uint64_t hash = 0;
  };
  Prepared Prepare(const event_log::Record& record) const;
  // Prepare of each record, appended to `prepared`; looks a partition up once per run of its
  // records (a batch comes in runs per partition).
  void PrepareAll(const std::vector<event_log::Record>& records,
                  std::vector<Prepared>* prepared) const;

  // Decides one record, in log order per partition. kApply: the record's id is now remembered
  // (written into `batch` by Flush or by a later Admit); the caller applies it. kDuplicate and
  // kMisrouted: the caller drops the record and changes nothing else. `prepared` must be
  // Prepare(record).
  absl::StatusOr<Verdict> Admit(const event_log::Record& record, const Prepared& prepared,
                                StateBatch& batch);
  absl::StatusOr<Verdict> Admit(const event_log::Record& record, StateBatch& batch) {
    return Admit(record, Prepare(record), batch);
  }

  // Brings the table slot a prepared record will probe into the cache (call a few records
  // ahead of its Admit).
  void Prefetch(const Prepared& prepared) const;

  // Writes the ids admitted and the drops counted since the last Flush into `batch`. Call before
  // the batch commits.
  absl::Status Flush(StateBatch& batch);

  // Ids held in memory over all partitions, for tests and metrics.
  int64_t RememberedIds() const;

 private:
  struct PartitionIndex {
    std::string chunk_prefix;  // "~ids/<topic>/<pppp>/"
    int32_t partition_count = 0;
    // The bucket of the partition's clock; nullopt before the first id.
    std::optional<int64_t> clock_bucket;
    // Stored (or pending) buckets, oldest first.
    std::vector<int64_t> buckets;
    // Hash of an id -> its bucket. Ids whose hash another id already holds go to `collided`.
    IdTable ids;
    absl::flat_hash_map<uint64_t, std::vector<int64_t>> collided;
    // Admitted since the last Flush, in the chunk format, for `pending_bucket`.
    std::string pending;
    int64_t pending_bucket = 0;
    std::string drops_key;  // "~drops/<topic>/<pppp>"
    DropCounts pending_drops;
  };

  std::string ChunkKey(const PartitionIndex& index, int64_t bucket) const;
  const PartitionIndex& IndexOf(const event_log::Record& record) const;
  Prepared PrepareIn(const PartitionIndex& index, const event_log::Record& record) const;
  uint64_t Hash(absl::string_view id) const;
  // True when `id` is stored in `bucket` (in the store, the batch, or the pending bytes).
  absl::StatusOr<bool> StoredIn(const PartitionIndex& index, int64_t bucket, absl::string_view id,
                                const StateBatch& batch) const;
  void Remember(PartitionIndex& index, uint64_t hash, int64_t bucket);
  absl::StatusOr<bool> Repeats(PartitionIndex& index, int64_t bucket, const Prepared& prepared,
                               const StateBatch& batch);
  void FlushPartition(PartitionIndex& index, StateBatch& batch);
  absl::Status FlushDrops(PartitionIndex& index, StateBatch& batch);
  // Deletes the buckets older than the horizon allows, from the batch and from memory.
  absl::Status Prune(PartitionIndex& index, StateBatch& batch);

  const StateStore* store_;
  EventFilterOptions options_;
  int64_t bucket_width_ms_ = 1;
  int64_t horizon_buckets_ = 1;
  // A per-process seed: in-memory hashes are never stored, and an outsider cannot aim ids at
  // one another's hash (a match is confirmed against the stored ids anyway).
  uint64_t seed_ = 0;
  // Fixed by Load (Prepare reads it from other threads); the indexes' contents change.
  std::map<event_log::TopicPartition, PartitionIndex> partitions_;
};

}  // namespace tongka::state_store

#endif  // TONGKA_LIBS_STATE_STORE_EVENT_FILTER_H_
