// DedupIndex: which transactions ingest has already appended to tongka.txn, with what content,
// and the evidence of conflicting re-uploads. Lives in the service's own RocksDB (StateStore).
//
// Layout of the state column family ("ingest/3"):
//   ids/<terminal_id>/<seq / 64, 16 hex digits> -> the bucket: the entries of the terminal's 64
//                                              sequence numbers seq / 64 * 64 .. + 63 recorded so
//                                              far, 41 bytes each: seq % 64, the 32-byte SM3
//                                              content digest, recorded_at_us (8 bytes, big-endian)
//   dedup_time/<recorded_at_us, 20 digits>/<first event_id> -> the commit's ids as runs of one
//                                              terminal's consecutive seqs, '\n'-joined lines
//                                              "txn/<terminal_id>/<first>[-<last>]" (time index,
//                                              one record per commit, for pruning, under the
//                                              newest recorded_at of the commit)
//   conflict/<event_id>/<n, 6 digits>       -> ConflictEvidence (ingest_storage.proto)
//   hw/<terminal_id>                        -> 8-byte big-endian: the terminal's highest
//                                              terminal_seq ever recorded (its high-water mark)
//
// Why buckets: terminals upload runs of consecutive sequence numbers (an offline batch), so one
// commit's entries fall into a few buckets per terminal, and each bucket gets its new entries as
// one RocksDB merge operand (StateBatch::Append: no read). A key per transaction made every
// commit a thousand memtable inserts, and every compaction a pass over a thousand keys per
// batch spread over the whole key space (terminals interleave), which cost more CPU than
// anything else ingest does. A lookup reads the bucket and takes the seq's entry with the newest
// recorded_at (an id recorded again, by the catch-up after a crash, is appended again).
//
// "ingest/1" kept one key per transaction (txn/<terminal_id>/<seq>, the event id itself, ->
// digest + recorded_at); UpgradeFromV1 moves such a store's entries into buckets in place.
// "ingest/2" listed every event id in the time index (as many bytes again as the entries: half
// of what the index wrote, flushed and compacted); its lines are runs of one, read as they are.
//
// The high-water mark saves the RocksDB read for the common case: terminals upload their
// transactions in sequence order, so a seq above the terminal's mark was never recorded and needs
// no lookup (a RocksDB miss costs a memtable skip-list walk, the largest cost of an upload). It
// is written in the same commit as the entries, raised only (never lowered, not by pruning), and
// kept in memory once read; commits are serialized so two batches of one terminal cannot write it
// out of order. Invariant: every recorded seq of a terminal is <= its mark.
//
// The content digest is SM3(MacInput(upload) || mac): the signed fields and the tag itself. An
// identical retry has the same digest (DUPLICATE); anything else under the same id differs
// (CONFLICT).
//
// Horizon: Prune() deletes entries recorded before a cutoff (the app runs it periodically with
// cutoff = now - dedup_horizon), oldest first via the time index. The validator rejects uploads
// older than dedup_horizon - future_skew_max (occurred_at_too_old), so a pruned entry can never
// be needed again: an entry recorded at R covers device times <= R + skew, and it is pruned only
// once now > R + horizon, when those device times are already too old. Conflict evidence is
// never pruned.
//
// Ownership: borrows the store, which must outlive the index.
// Thread-safety: all methods are thread-safe (the store is). Callers serialize per event id
// (ingest's claim table) so that a Lookup-then-Record is not raced by another upload of the id.
// Failure: RocksDB errors come back as Status (UNAVAILABLE / INTERNAL). A bucket whose size is
// not a whole number of entries, or with an entry for an offset beyond 63, is corruption:
// INTERNAL naming the key.
//
// Example:
//   DedupIndex index(store.get());
//   absl::StatusOr<std::optional<DedupEntry>> seen = index.Lookup("txn/310000-BUS-000001/7");
//   if (seen.ok() && !seen->has_value()) { produce; then index.Record({{id, digest, now_us}}); }
#ifndef TONGKA_SERVICES_INGEST_DEDUP_INDEX_H_
#define TONGKA_SERVICES_INGEST_DEDUP_INDEX_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "libs/crypto/bytes.h"
#include "libs/state_store/state_store.h"
#include "services/ingest/ingest_storage.pb.h"

namespace tongka::ingest {

struct DedupEntry {
  std::string event_id;
  crypto::Sm3Digest digest{};
  int64_t recorded_at_us = 0;
};

// SM3(mac_input || "|" || mac): the content an event id stands for.
crypto::Sm3Digest ContentDigest(absl::string_view mac_input, absl::string_view mac);

// The content an event id stands for, as ContentDigest hashes it.
struct SignedContent {
  absl::string_view mac_input;
  absl::string_view mac;
};

// ContentDigest of each content, into digests (of the same size), hashed together: SM3 in eight
// SIMD lanes (crypto::Sm3Many) costs about a fifth of one call per content.
void ContentDigests(absl::Span<const SignedContent> contents,
                    absl::Span<crypto::Sm3Digest> digests);

class DedupIndex {
 public:
  explicit DedupIndex(state_store::StateStore* store) : store_(store) {}

  DedupIndex(const DedupIndex&) = delete;
  DedupIndex& operator=(const DedupIndex&) = delete;

  // The entry recorded for `event_id`, or nullopt.
  absl::StatusOr<std::optional<DedupEntry>> Lookup(absl::string_view event_id) const;
  // Lookup of each id (found[i] for ids[i]), reading a terminal's high-water mark once for each
  // run of its ids: an upload's ids come in runs of one terminal. The same contract as Lookup:
  // the caller owns every id (a mark read once stays good for the ids it owns).
  absl::StatusOr<std::vector<std::optional<DedupEntry>>> LookupMany(
      absl::Span<const absl::string_view> ids) const;

  // Records entries (their time index and their terminals' high-water marks) in one atomic
  // commit.
  absl::Status Record(const std::vector<DedupEntry>& entries);

  // Keeps a conflicting upload as evidence under conflict/<event_id>/<n>, n = 0, 1, ..., unless
  // evidence of the same conflicting content (conflicting_digest) is already kept: a client
  // retrying the upload is the same act, kept and counted once. Callers serialize calls per
  // event id (ingest holds the id's claim).
  struct ConflictRecorded {
    int number = 0;         // the evidence's n
    bool kept_now = false;  // false: this content was kept before, nothing written
  };
  absl::StatusOr<ConflictRecorded> RecordConflict(absl::string_view event_id,
                                                  const ingest_storage::ConflictEvidence& evidence);

  // The evidence kept for `event_id`, oldest first.
  absl::StatusOr<std::vector<ingest_storage::ConflictEvidence>> Conflicts(
      absl::string_view event_id) const;

  // True when evidence with this conflicting_digest is kept for `event_id` and was published.
  // Evidence that does not parse is passed over (RecordConflict reports it).
  absl::StatusOr<bool> ConflictKept(absl::string_view event_id,
                                    absl::string_view conflicting_digest) const;

  // Deletes the entries recorded before `cutoff`, oldest commit first, stopping once the visited
  // commits list `max_entries` ids; returns how many ids it deleted (an id recorded again after
  // the cutoff stays, and is not counted). Record waits while it rewrites the buckets, so keep
  // `max_entries` to thousands (about 1 ms per thousand ids, warm).
  absl::StatusOr<int64_t> Prune(absl::Time cutoff, int64_t max_entries);

  // Ingest's store: this index's layout ("ingest/3": bump it when keys or values change meaning),
  // the upgrades from "ingest/1" (also the layout of stores written before layouts were
  // recorded) and "ingest/2", universal compaction (the buckets are spread over the key space),
  // no value cache (nearly every lookup is of a new id, a miss: a cache would only cost).
  static state_store::StateStoreOptions StoreOptions(const std::string& path);

  // Moves the entries of an "ingest/1" store (one key per transaction) into buckets, in commits
  // of at most 10,000 entries, each deleting the keys it moved: restartable after a crash
  // (StateStoreOptions::Upgrade). Conflict evidence, the time index (its id lines are runs of
  // one) and the marks stay as they are.
  static absl::Status UpgradeFromV1(state_store::StateStore& store);

  // The newest recorded_at of any entry ever recorded (UTC microseconds), nullopt for an empty
  // index. Where catching the index up from the log starts (dedup_catch_up.h).
  absl::StatusOr<std::optional<int64_t>> NewestRecordedAtUs() const;

  // The catch-up mark (UTC microseconds, the recorded_at clock): the next catch-up starts no later
  // than this, whatever the newest entry. nullopt when nothing is unresolved. It is set
  //   - when a record Kafka may hold could be missing from the index while the service runs (an
  //     index write that failed, a delivery report that failed although the broker may have
  //     written the record): NoteUnresolved, which only lowers it;
  //   - by the catch-up itself, to where it has got to, so one that stops partway (a crash, its
  //     timeout) resumes there and not after the entries of its fastest partition:
  //     SetCatchUpMark, then cleared by it once everything is replayed.
  absl::StatusOr<std::optional<int64_t>> CatchUpMarkUs() const;
  // Lowers the mark to `recorded_at_us` and writes it. A write that fails is retried by the next
  // call and by PersistCatchUpMark, and goes into the next Record's commit: the newest entry
  // never moves past the unresolved record without the mark.
  void NoteUnresolved(int64_t recorded_at_us);
  // Writes a lowered mark whose write failed before; OK when there is none.
  absl::Status PersistCatchUpMark();
  // Sets the mark (nullopt clears it), raising it too: for the catch-up, before serving.
  absl::Status SetCatchUpMark(std::optional<int64_t> recorded_at_us);

 private:
  static constexpr int kShards = 16;
  struct Shard {
    absl::Mutex mu;
    // terminal_id -> high-water mark, for terminals read or written since start.
    absl::flat_hash_map<std::string, uint64_t> marks ABSL_GUARDED_BY(mu);
  };
  Shard& ShardOf(absl::string_view terminal_id) const;
  // The terminal's mark: from memory, else from RocksDB (0 when it has none).
  absl::StatusOr<uint64_t> HighWater(absl::string_view terminal_id) const;
  // The entry of `event_id` (terminal_id/seq, at or below the terminal's mark) in its bucket.
  absl::StatusOr<std::optional<DedupEntry>> FindInBucket(absl::string_view event_id,
                                                         absl::string_view terminal_id,
                                                         uint64_t seq) const;

  state_store::StateStore* const store_;
  mutable Shard shards_[kShards];
  // Serializes Record and Prune: the marks Record writes are computed from the marks in memory,
  // and Prune rewrites buckets it has read, which an append in between would lose.
  absl::Mutex record_mu_;
  // NewestRecordedAtUs's value, read from RocksDB once.
  mutable absl::Mutex newest_mu_;
  mutable std::optional<int64_t> newest_us_ ABSL_GUARDED_BY(newest_mu_);
  mutable bool newest_loaded_ ABSL_GUARDED_BY(newest_mu_) = false;
  // The catch-up mark as written (loaded once), and a lower one not written yet. Writes are made
  // under the lock, so a lower mark is never overwritten by a higher one written later.
  mutable absl::Mutex mark_mu_;
  mutable std::optional<int64_t> mark_us_ ABSL_GUARDED_BY(mark_mu_);
  mutable bool mark_loaded_ ABSL_GUARDED_BY(mark_mu_) = false;
  std::optional<int64_t> unwritten_mark_us_ ABSL_GUARDED_BY(mark_mu_);
  absl::Status LoadMarkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mark_mu_);
  absl::Status WriteMarkLocked(std::optional<int64_t> mark_us)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mark_mu_);
  // unwritten_mark_us_ when it is below the written mark; otherwise forgets it (nullopt).
  absl::StatusOr<std::optional<int64_t>> MarkToWriteLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mark_mu_);
  // Writes MarkToWriteLocked's mark, then forgets it.
  absl::Status WriteUnwrittenMarkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mark_mu_);
};

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_DEDUP_INDEX_H_
