// StateStore: a service's RocksDB, holding state, consumed offsets and the outbox, written
// together.
//
// This is the core of Tongka's exactly-once pattern (DESIGN.md). A consumer applies a batch of
// records into a StateBatch: state changes, the next offset of every partition it consumed, and
// the events it derived (the outbox). Commit writes all three in one RocksDB WriteBatch, so state
// and position can never disagree: after any crash the service resumes from the offsets stored
// beside the state, re-deriving exactly what was lost. The outbox is drained to Kafka by
// OutboxPublisher.
//
// Column families: "state" (the service's keys, in a service-chosen layout), "offsets"
// (topic/partition -> next offset), "outbox" (sequence -> OutboxEntry), and "default" (metadata:
// outbox cursor, format version).
//
// Durability: writes are not fsynced by default (sync_writes=false) and the WAL is recovered to a
// consistent point in time. A process crash loses nothing (the OS has the WAL). A machine crash
// can lose the latest batches, but state, offsets and outbox roll back together, and the log
// replays them. Nothing a consumer writes is acknowledged to anyone, so this is safe.
//
// Thread-safety: all methods are thread-safe. Several apply loops may share one store when their
// key spaces and partitions are disjoint; Commit serializes outbox sequence assignment.
// A StateBatch belongs to one thread.
//
// Failure: RocksDB errors come back as Status (INTERNAL for corruption, UNAVAILABLE for I/O).
// Invariants whose violation would corrupt money (an offset moving backwards, an outbox sequence
// reused) CHECK-fail.
//
// Example:
//   auto store = StateStore::Open({.path = "/var/lib/tongka/settlement"});
//   StateBatch batch(store->get());
//   batch.Put("card/3100001234", bytes);
//   batch.AppendOutbox({"tongka.alerts", card_id, alert_bytes});
//   batch.SetNextOffset({"tongka.txn", 3}, record.offset + 1);
//   absl::Status s = (*store)->Commit(batch);
#ifndef TONGKA_LIBS_STATE_STORE_STATE_STORE_H_
#define TONGKA_LIBS_STATE_STORE_STATE_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "libs/event_log/record.h"
#include "rocksdb/db.h"

namespace tongka::state_store {

using event_log::TopicPartition;

class StateStore;

struct StateStoreOptions {
  // Directory of the RocksDB database. Required; created if missing.
  std::string path;
  // The name and version of the service's key layout ("settlement/2"): bump it whenever keys or
  // values change meaning. A fresh store records it; a store recorded under another layout does
  // not open (FAILED_PRECONDITION naming both: rebuild it from an empty directory, which replays
  // the log), so an upgrade or a rollback never reads state it would misunderstand. A store
  // written before layouts were recorded takes this one (logged). Empty: no check (tools that
  // only read, tests).
  std::string layout;
  // Upgrades from earlier layouts of the same service, run by Open when the store was recorded
  // under `from`: Open first records "<from>><layout>" (so that no binary of either layout opens
  // a half-rewritten store: the old one would misread it), then `upgrade` rewrites the keys in
  // place (through the store, in as many commits as it likes), then Open records `layout`. A
  // crash or failure midway leaves the marker, and the next Open of this layout runs the upgrade
  // again: it must be restartable, finishing what the last run left.
  struct Upgrade {
    std::string from;
    std::function<absl::Status(StateStore& store)> upgrade;  // required
  };
  std::vector<Upgrade> upgrades;
  // The layout of a store that has state but no recorded layout (written before layouts were
  // recorded), when the service knows it: it is then upgraded from that layout like any other.
  // Empty: such a store takes `layout` as it is (logged).
  std::string unrecorded_layout;
  // fsync every commit. Off by default: see "Durability" above.
  bool sync_writes = false;
  // RocksDB block cache for the state column family.
  int64_t block_cache_bytes = 64 << 20;
  // Memtable size of the state column family (see state_store.cc for why it is small).
  int64_t state_memtable_bytes = 8 << 20;
  // How the state column family's files are merged. kLeveled suits state rewritten in place (a
  // card's totals): reads touch few files. kUniversal suits a write-mostly index of keys spread
  // over the key space (ingest's dedup buckets): leveled compaction rewrites its whole first
  // level on every flush there (write amplification growing with the store), universal merges
  // sorted runs of similar size (logarithmic), and Bloom filters keep the extra runs cheap for
  // lookups of absent keys. kUniversal files are not compressed (such indexes hold digests).
  enum class Compaction { kLeveled, kUniversal };
  Compaction compaction = Compaction::kLeveled;
  // Write-ahead log kept before the column families still holding its oldest file are flushed
  // (RocksDB's max_total_wal_size). The offsets and metadata families are written rarely; without
  // a bound, their unflushed writes would pin every later log file, and a restart would replay
  // all of them. 0: eight state memtables (64 MiB by default). Set, it must hold at least two
  // (the state family flushes two memtables at a time), else Open refuses it.
  int64_t wal_bytes_max = 0;
  // Write-through cache of state values (present and absent keys) in front of RocksDB, in
  // entries; 0 turns it off. Apply logic reads the same hot keys (cards, windows) over and over,
  // and a RocksDB point read walks a memtable holding every recent version of them.
  int64_t value_cache_entries = 1 << 20;
};

struct OutboxRecord {
  uint64_t sequence = 0;  // assigned at commit, strictly increasing, never reused
  std::string topic;
  std::string key;
  std::string value;
};

class StateBatch;

class StateStore {
 public:
  static absl::StatusOr<std::unique_ptr<StateStore>> Open(const StateStoreOptions& options);
  ~StateStore();

  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Reads a state key. nullopt when absent.
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) const;

  // Visits state keys starting with `prefix` in key order until `visit` returns false.
  absl::Status ScanPrefix(
      absl::string_view prefix,
      const std::function<bool(absl::string_view key, absl::string_view value)>& visit) const;

  // The stored next offset of every partition this store has consumed.
  absl::StatusOr<std::map<TopicPartition, int64_t>> Offsets() const;

  // Atomically writes the batch's state changes, offsets and outbox entries. An offset must never
  // move backwards (CHECK): that would apply events twice.
  absl::Status Commit(StateBatch& batch);

  // Outbox entries not yet acknowledged, oldest first, at most `max`.
  absl::StatusOr<std::vector<OutboxRecord>> ReadOutbox(size_t max) const;
  // Deletes outbox entries up to and including `sequence` once Kafka has them.
  absl::Status AckOutbox(uint64_t sequence);
  // Entries committed but not yet acknowledged.
  int64_t OutboxDepth() const { return outbox_next_.load() - 1 - outbox_acked_.load(); }

  // SM3 over every state key and value in key order, hex-encoded. Two stores built from the same
  // log to the same offsets have the same digest, whatever their batch boundaries or crashes.
  absl::StatusOr<std::string> Digest() const;

  // Writes a consistent, openable copy of the whole database (state, offsets, outbox) to `dir`,
  // which must not exist. Opening that directory restores the service to that point; it then
  // resumes from the checkpoint's offsets.
  absl::Status Checkpoint(const std::string& dir) const;

  // Approximate on-disk size, for metrics.
  int64_t ApproximateSizeBytes() const;

  // The key layout the store was built under (StateStoreOptions::layout); empty if none was
  // ever recorded.
  absl::StatusOr<std::string> Layout() const;

 private:
  StateStore(std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
             const StateStoreOptions& options);
  absl::Status LoadOutboxBounds();
  absl::Status CheckLayout(const StateStoreOptions& options);
  absl::Status RecordLayout(const std::string& layout);
  // True when no state key and no consumed offset is stored (a new store).
  absl::StatusOr<bool> Empty() const;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, state, offsets, outbox
  const int64_t value_cache_entries_;
  // The cache is only ever filled from RocksDB reads and overwritten by commits. A read that
  // raced with a commit (the generation moved while it read RocksDB) is not cached, so the cache
  // never holds a value older than the store. Full: cleared whole, a simple bound.
  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, std::optional<std::string>> value_cache_
      ABSL_GUARDED_BY(cache_mu_);
  mutable uint64_t cache_generation_ ABSL_GUARDED_BY(cache_mu_) = 0;
  rocksdb::WriteOptions write_options_;
  absl::Mutex commit_mu_;
  std::atomic<uint64_t> outbox_next_{1};   // next sequence to assign
  std::atomic<uint64_t> outbox_acked_{0};  // highest acknowledged sequence
};

// The pending changes of one apply step. Reads through the batch see its own writes first
// (read-your-writes within a batch), then the store.
class StateBatch {
 public:
  explicit StateBatch(const StateStore* store) : store_(store) {}

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) const;
  void Put(absl::string_view key, absl::string_view value);
  void Delete(absl::string_view key);
  // Appends `bytes` to the key's value (an absent key is taken as empty), without reading it:
  // the store keeps the pieces as RocksDB merge operands and joins them when the key is read or
  // compacted. For values that only ever grow at their end (an index of ids): the commit writes
  // only the new bytes, where Get + Put would rewrite the whole value every batch.
  void Append(absl::string_view key, absl::string_view bytes);

  // Read-modify-write in place: the value `key` will have after this batch, to change as it
  // stands. The first use in a batch reads it through the store; an absent (or deleted) key is
  // an empty string, and *present (if given) says which. From then on the key is written by the
  // commit with whatever the string holds, as a Put would. For appliers that update many keys a
  // batch: one lookup and no copies, where Get + Put copy the value out and in and look it up
  // twice. The pointer is valid until the batch's next write or its commit.
  absl::StatusOr<std::string*> Mutable(absl::string_view key, bool* present = nullptr);

  // Visits the keys starting with `prefix` as they will be after this batch commits (the store's
  // keys overlaid with the batch's puts and deletes), in key order, until `visit` returns false.
  // Costs a pass over the batch's writes plus the store's keys under the prefix: for occasional
  // whole-aggregate reads (closing a window), not per record.
  absl::Status ScanPrefix(
      absl::string_view prefix,
      const std::function<bool(absl::string_view key, absl::string_view value)>& visit) const;

  void AppendOutbox(std::string topic, std::string key, std::string value);
  void SetNextOffset(const TopicPartition& tp, int64_t next_offset);

  // First sighting of `event_id` in this store (and batch): marks it seen and returns true. A
  // consumer drops an event whose id it has seen: that is how resent outbox entries and retried
  // commands are applied exactly once.
  absl::StatusOr<bool> MarkSeen(absl::string_view event_id);

  bool empty() const { return writes_.empty() && outbox_.empty() && offsets_.empty(); }
  size_t write_count() const { return writes_.size(); }
  size_t outbox_count() const { return outbox_.size(); }
  void Clear();

 private:
  friend class StateStore;
  // A key's pending change: a new value, a deletion, or bytes to append to what the store holds.
  struct Write {
    enum class Kind { kPut, kDelete, kAppend };
    Kind kind = Kind::kPut;
    std::string bytes;  // the value (kPut) or the appended bytes (kAppend)
  };
  const StateStore* store_;
  absl::flat_hash_map<std::string, Write> writes_;
  std::vector<OutboxRecord> outbox_;
  std::map<TopicPartition, int64_t> offsets_;
};

// The deterministic id of an event derived from a consumed record:
// "<service>/<topic>/<partition>/<offset>/<suffix>". Re-deriving after a crash yields the same id,
// so consumers drop the resend.
std::string DerivedEventId(absl::string_view service, const event_log::Record& source,
                           absl::string_view suffix);

}  // namespace tongka::state_store

#endif  // TONGKA_LIBS_STATE_STORE_STATE_STORE_H_
