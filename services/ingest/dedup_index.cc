#include "services/ingest/dedup_index.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/hash/hash.h"
#include "absl/numeric/bits.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "libs/crypto/sm3.h"
#include "libs/crypto/sm3_lanes.h"
#include "libs/failpoint/failpoint.h"

namespace tongka::ingest {
namespace {

constexpr absl::string_view kTimePrefix = "dedup_time/";
constexpr absl::string_view kConflictPrefix = "conflict/";
constexpr absl::string_view kBucketPrefix = "ids/";
constexpr int kBucketBits = 6;  // 64 sequence numbers per bucket
constexpr uint64_t kOffsetMask = (uint64_t{1} << kBucketBits) - 1;
// digest + recorded_at_us: an "ingest/1" value, and a bucket entry after its offset byte.
constexpr size_t kStampSize = crypto::kSm3DigestSize + sizeof(int64_t);
constexpr size_t kEntrySize = 1 + kStampSize;

void AppendBigEndian(uint64_t value, std::string* out) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (56 - 8 * i));
  out->append(bytes, 8);
}

uint64_t ReadBigEndian(const char* bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

// Appends the bucket entry of `seq` to `bucket`.
void AppendEntry(uint64_t seq, const crypto::Sm3Digest& digest, int64_t recorded_at_us,
                 std::string* bucket) {
  bucket->push_back(static_cast<char>(seq & kOffsetMask));
  bucket->append(reinterpret_cast<const char*>(digest.data()), digest.size());
  AppendBigEndian(static_cast<uint64_t>(recorded_at_us), bucket);
}

std::string BucketKey(absl::string_view terminal_id, uint64_t seq) {
  static constexpr char kHex[] = "0123456789abcdef";
  const uint64_t bucket = seq >> kBucketBits;
  char digits[16];
  for (int i = 0; i < 16; ++i) digits[i] = kHex[(bucket >> (60 - 4 * i)) & 0xf];
  return absl::StrCat(kBucketPrefix, terminal_id, "/", absl::string_view(digits, 16));
}

absl::Status CheckBucket(absl::string_view key, absl::string_view bucket) {
  if (bucket.size() % kEntrySize != 0) {
    return absl::InternalError(absl::StrCat("dedup bucket ", key, " is ", bucket.size(),
                                            " bytes, not a multiple of ", kEntrySize,
                                            ": corrupt store"));
  }
  for (size_t at = 0; at < bucket.size(); at += kEntrySize) {
    if (static_cast<uint8_t>(bucket[at]) > kOffsetMask) {
      return absl::InternalError(absl::StrCat("dedup bucket ", key, " has an entry for offset ",
                                              static_cast<int>(static_cast<uint8_t>(bucket[at])),
                                              ": corrupt store"));
    }
  }
  return absl::OkStatus();
}

int64_t EntryRecordedAtUs(const char* entry) {
  return static_cast<int64_t>(ReadBigEndian(entry + 1 + crypto::kSm3DigestSize));
}

std::string TimeKey(int64_t recorded_at_us, absl::string_view event_id) {
  return absl::StrFormat("%s%020d/%s", kTimePrefix, recorded_at_us, event_id);
}

bool ValidEventId(absl::string_view event_id) {
  return absl::StartsWith(event_id, "txn/") && event_id.size() > 4;
}

constexpr absl::string_view kMarkPrefix = "hw/";
constexpr absl::string_view kNewestKey = "dedup_newest_recorded_at_us";
constexpr absl::string_view kCatchUpMarkKey = "dedup_catch_up_mark_us";

// Canonical decimal only (as TxnEventId writes it): "07", "+7" or " 7" would share 7's entry.
bool ParseSeq(absl::string_view digits, uint64_t* seq) {
  if (digits.empty() || (digits.size() > 1 && digits[0] == '0') ||
      !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
    return false;
  }
  return absl::SimpleAtoi(digits, seq);
}

// "txn/<terminal_id>/<seq>" -> (terminal_id, seq); false if the id has another shape.
bool SplitEventId(absl::string_view event_id, absl::string_view* terminal_id, uint64_t* seq) {
  if (!ValidEventId(event_id)) return false;
  const size_t slash = event_id.rfind('/');
  if (slash <= 4) return false;
  *terminal_id = event_id.substr(4, slash - 4);
  return ParseSeq(event_id.substr(slash + 1), seq);
}

// The longest run one time index line holds (Record splits longer ones): bounds what a corrupt
// line can make Prune visit.
constexpr uint64_t kRunSeqsMax = 1 << 16;

// A time index line, "txn/<terminal_id>/<first>" or "txn/<terminal_id>/<first>-<last>" (first <
// last), -> the terminal and its seqs first..last; false if the line has another shape.
bool SplitRun(absl::string_view line, absl::string_view* terminal_id, uint64_t* first,
              uint64_t* last) {
  const size_t slash = line.rfind('/');
  const size_t dash = slash == absl::string_view::npos ? slash : line.find('-', slash);
  if (dash == absl::string_view::npos) {
    if (!SplitEventId(line, terminal_id, first)) return false;
    *last = *first;
    return true;
  }
  return SplitEventId(line.substr(0, dash), terminal_id, first) &&
         ParseSeq(line.substr(dash + 1), last) && *last > *first && *last - *first < kRunSeqsMax;
}

std::string EncodeMark(uint64_t mark) {
  std::string value(8, '\0');
  for (int i = 0; i < 8; ++i) value[i] = static_cast<char>(mark >> (56 - 8 * i));
  return value;
}

}  // namespace

namespace {

// Appends what a content digest hashes to `out`: one definition, so the batched and the single
// digest agree.
void AppendContentMessage(absl::string_view mac_input, absl::string_view mac, std::string* out) {
  absl::StrAppend(out, mac_input, "|", mac);
}

}  // namespace

crypto::Sm3Digest ContentDigest(absl::string_view mac_input, absl::string_view mac) {
  std::string message;
  AppendContentMessage(mac_input, mac, &message);
  return crypto::Sm3(message);
}

void ContentDigests(absl::Span<const SignedContent> contents,
                    absl::Span<crypto::Sm3Digest> digests) {
  CHECK_EQ(contents.size(), digests.size());
  // Every message in one buffer (one allocation for the batch, not one per message); the views
  // are taken once the buffer is complete.
  size_t total = 0;
  for (const SignedContent& content : contents) {
    total += content.mac_input.size() + 1 + content.mac.size();  // AppendContentMessage's bytes
  }
  std::string buffer;
  buffer.reserve(total);
  std::vector<size_t> ends;
  ends.reserve(contents.size());
  for (const SignedContent& content : contents) {
    AppendContentMessage(content.mac_input, content.mac, &buffer);
    ends.push_back(buffer.size());
  }
  std::vector<absl::string_view> views;
  views.reserve(contents.size());
  size_t begin = 0;
  for (size_t end : ends) {
    views.push_back(absl::string_view(buffer).substr(begin, end - begin));
    begin = end;
  }
  crypto::Sm3Many(views, digests);
}

DedupIndex::Shard& DedupIndex::ShardOf(absl::string_view terminal_id) const {
  return shards_[absl::Hash<absl::string_view>()(terminal_id) % kShards];
}

absl::StatusOr<uint64_t> DedupIndex::HighWater(absl::string_view terminal_id) const {
  Shard& shard = ShardOf(terminal_id);
  {
    absl::MutexLock lock(&shard.mu);
    auto it = shard.marks.find(terminal_id);
    if (it != shard.marks.end()) return it->second;
  }
  absl::StatusOr<std::optional<std::string>> stored =
      store_->Get(absl::StrCat(kMarkPrefix, terminal_id));
  if (!stored.ok()) return stored.status();
  uint64_t mark = 0;
  if (stored->has_value()) {
    if ((*stored)->size() != 8) {
      return absl::InternalError(
          absl::StrCat("high-water mark of ", terminal_id, " is not 8 bytes: corrupt store"));
    }
    for (char c : **stored) mark = (mark << 8) | static_cast<uint8_t>(c);
  }
  absl::MutexLock lock(&shard.mu);
  // A Record that ran meanwhile has put the newer mark in memory already: it wins.
  return shard.marks.try_emplace(std::string(terminal_id), mark).first->second;
}

absl::StatusOr<std::optional<DedupEntry>> DedupIndex::Lookup(absl::string_view event_id) const {
  absl::string_view terminal_id;
  uint64_t seq = 0;
  // Record takes transaction ids only: anything else was never recorded.
  if (!SplitEventId(event_id, &terminal_id, &seq)) return std::nullopt;
  absl::StatusOr<uint64_t> mark = HighWater(terminal_id);
  if (!mark.ok()) return mark.status();
  if (seq > *mark) return std::nullopt;  // above every recorded seq: never recorded
  return FindInBucket(event_id, terminal_id, seq);
}

absl::StatusOr<std::vector<std::optional<DedupEntry>>> DedupIndex::LookupMany(
    absl::Span<const absl::string_view> ids) const {
  std::vector<std::optional<DedupEntry>> found(ids.size());
  absl::string_view run_terminal;
  uint64_t run_mark = 0;
  bool have_mark = false;
  for (size_t i = 0; i < ids.size(); ++i) {
    absl::string_view terminal_id;
    uint64_t seq = 0;
    if (!SplitEventId(ids[i], &terminal_id, &seq)) continue;  // never recorded
    if (!have_mark || terminal_id != run_terminal) {
      absl::StatusOr<uint64_t> mark = HighWater(terminal_id);
      if (!mark.ok()) return mark.status();
      run_terminal = terminal_id;
      run_mark = *mark;
      have_mark = true;
    }
    if (seq > run_mark) continue;
    absl::StatusOr<std::optional<DedupEntry>> entry = FindInBucket(ids[i], terminal_id, seq);
    if (!entry.ok()) return entry.status();
    found[i] = *std::move(entry);
  }
  return found;
}

absl::StatusOr<std::optional<DedupEntry>> DedupIndex::FindInBucket(absl::string_view event_id,
                                                                   absl::string_view terminal_id,
                                                                   uint64_t seq) const {
  const std::string key = BucketKey(terminal_id, seq);
  absl::StatusOr<std::optional<std::string>> value = store_->Get(key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return std::nullopt;
  const std::string& bucket = **value;
  if (absl::Status valid = CheckBucket(key, bucket); !valid.ok()) return valid;
  // The seq's newest recording (the last appended of the newest recorded_at).
  const char* newest = nullptr;
  for (size_t at = 0; at < bucket.size(); at += kEntrySize) {
    const char* entry = bucket.data() + at;
    if (static_cast<uint8_t>(entry[0]) != (seq & kOffsetMask)) continue;
    if (newest == nullptr || EntryRecordedAtUs(entry) >= EntryRecordedAtUs(newest)) {
      newest = entry;
    }
  }
  if (newest == nullptr) return std::nullopt;
  DedupEntry entry;
  entry.event_id = std::string(event_id);
  std::memcpy(entry.digest.data(), newest + 1, crypto::kSm3DigestSize);
  entry.recorded_at_us = EntryRecordedAtUs(newest);
  return entry;
}

absl::Status DedupIndex::Record(const std::vector<DedupEntry>& entries) {
  if (entries.empty()) return absl::OkStatus();
  absl::MutexLock record_lock(&record_mu_);
  state_store::StateBatch batch(store_);
  std::string ids;
  absl::flat_hash_map<std::string, uint64_t> raised;  // terminal -> new mark
  // A commit's entries come in runs of one terminal's consecutive seqs: each run's entries of a
  // bucket are gathered and appended to it at once.
  std::string bucket_key;
  std::string appended;
  auto flush_bucket = [&] {
    if (!appended.empty()) batch.Append(bucket_key, appended);
    appended.clear();
  };
  absl::string_view run_terminal;
  uint64_t run_bucket = 0;
  uint64_t* run_mark = nullptr;
  // The time index lists the same runs: one line per run of consecutive seqs.
  uint64_t line_first = 0;
  uint64_t line_last = 0;
  auto flush_line = [&] {
    absl::StrAppend(&ids, ids.empty() ? "" : "\n", "txn/", run_terminal, "/", line_first);
    if (line_last != line_first) absl::StrAppend(&ids, "-", line_last);
  };
  for (const DedupEntry& entry : entries) {
    // Check the record before it is written (CONVENTIONS: assertions around storage).
    absl::string_view terminal_id;
    uint64_t seq = 0;
    CHECK(SplitEventId(entry.event_id, &terminal_id, &seq))
        << "not a transaction event id: " << entry.event_id;
    CHECK(entry.event_id.find('\n') == std::string::npos) << entry.event_id;
    CHECK_GT(entry.recorded_at_us, 0) << entry.event_id;
    if (run_mark == nullptr || terminal_id != run_terminal) {
      run_mark = &raised.try_emplace(terminal_id, seq).first->second;
    }
    *run_mark = std::max(*run_mark, seq);
    // The first entry has no run to continue; `appended` holds entries from then on.
    const bool same_terminal = !appended.empty() && terminal_id == run_terminal;
    const bool follows = line_last != std::numeric_limits<uint64_t>::max() && seq == line_last + 1;
    if (!same_terminal || !follows || seq - line_first >= kRunSeqsMax) {
      if (!appended.empty()) flush_line();
      line_first = seq;
    }
    line_last = seq;
    if (!same_terminal || (seq >> kBucketBits) != run_bucket) {
      flush_bucket();
      bucket_key = BucketKey(terminal_id, seq);
      run_bucket = seq >> kBucketBits;
    }
    run_terminal = terminal_id;
    AppendEntry(seq, entry.digest, entry.recorded_at_us, &appended);
  }
  flush_bucket();
  flush_line();
  int64_t newest_us = entries.front().recorded_at_us;
  for (const DedupEntry& entry : entries) newest_us = std::max(newest_us, entry.recorded_at_us);
  // One time-index record per commit (not per entry), under its newest recorded_at: Prune takes
  // the commit once all of its entries are past the cutoff (the catch-up's commits mix stamps;
  // an older one is kept a little longer, never dropped from the index while it stays).
  batch.Put(TimeKey(newest_us, entries.front().event_id), ids);
  for (auto& [terminal_id, mark] : raised) {
    absl::StatusOr<uint64_t> current = HighWater(terminal_id);
    if (!current.ok()) return current.status();
    if (mark > *current) {
      batch.Put(absl::StrCat(kMarkPrefix, terminal_id), EncodeMark(mark));
    } else {
      mark = *current;
    }
  }
  absl::StatusOr<std::optional<int64_t>> known = NewestRecordedAtUs();
  if (!known.ok()) return known.status();
  const bool newer = !known->has_value() || newest_us > **known;
  if (newer) batch.Put(kNewestKey, EncodeMark(static_cast<uint64_t>(newest_us)));
  // A lowered catch-up mark not written yet goes in the same commit: the newest entry must not
  // move past an unresolved record without it. (The lock is held through the commit so that a
  // lower mark written meanwhile is not overwritten.)
  absl::ReleasableMutexLock mark_lock(&mark_mu_);
  std::optional<int64_t> carried_mark;
  if (absl::StatusOr<std::optional<int64_t>> to_write = MarkToWriteLocked();
      to_write.ok() && to_write->has_value()) {
    carried_mark = *to_write;
    batch.Put(kCatchUpMarkKey, EncodeMark(static_cast<uint64_t>(*carried_mark)));
  } else {
    mark_lock.Release();
  }
  if (absl::Status committed = store_->Commit(batch); !committed.ok()) return committed;
  if (carried_mark.has_value()) {
    mark_us_ = carried_mark;
    unwritten_mark_us_.reset();
    mark_lock.Release();
  }
  if (newer) {
    absl::MutexLock lock(&newest_mu_);
    newest_us_ = newest_us;
  }
  for (const auto& [terminal_id, mark] : raised) {
    Shard& shard = ShardOf(terminal_id);
    absl::MutexLock lock(&shard.mu);
    uint64_t& in_memory = shard.marks[terminal_id];
    in_memory = std::max(in_memory, mark);
  }
  return absl::OkStatus();
}

state_store::StateStoreOptions DedupIndex::StoreOptions(const std::string& path) {
  return {.path = path,
          .layout = "ingest/3",
          .upgrades = {{.from = "ingest/1", .upgrade = UpgradeFromV1},
                       // ingest/3 changed only what Record writes to the time index (runs, of
                       // which ingest/2's id lines are the runs of one): nothing to rewrite.
                       {.from = "ingest/2",
                        .upgrade = [](state_store::StateStore&) { return absl::OkStatus(); }}},
          .unrecorded_layout = "ingest/1",
          .compaction = state_store::StateStoreOptions::Compaction::kUniversal,
          .value_cache_entries = 0};
}

absl::Status DedupIndex::UpgradeFromV1(state_store::StateStore& store) {
  constexpr absl::string_view kV1Prefix = "txn/";
  constexpr int kChunk = 10000;
  state_store::StateBatch batch(&store);
  int pending = 0;
  int64_t moved = 0;
  absl::Status failure;
  // The scan reads a snapshot, so the commits made along the way do not disturb it.
  absl::Status scanned =
      store.ScanPrefix(kV1Prefix, [&](absl::string_view key, absl::string_view value) {
        absl::string_view terminal_id;
        uint64_t seq = 0;
        if (!SplitEventId(key, &terminal_id, &seq) || value.size() != kStampSize) {
          failure = absl::InternalError(absl::StrCat("dedup entry ", key, " (", value.size(),
                                                     " bytes) is not an ingest/1 entry"));
          return false;
        }
        std::string entry(1, static_cast<char>(seq & kOffsetMask));
        entry.append(value.data(), value.size());  // digest + recorded_at, as buckets hold them
        batch.Append(BucketKey(terminal_id, seq), entry);
        batch.Delete(key);
        if (++pending == kChunk) {
          failure = store.Commit(batch);
          moved += pending;
          pending = 0;
          if (!failure.ok()) return false;
          TONGKA_FAILPOINT("ingest.upgrade_after_chunk");  // the next open must finish the job
        }
        return true;
      });
  if (!scanned.ok()) return scanned;
  if (!failure.ok()) return failure;
  if (pending > 0) {
    if (absl::Status committed = store.Commit(batch); !committed.ok()) return committed;
    moved += pending;
  }
  LOG(INFO) << "dedup index: moved " << moved << " ingest/1 entries into buckets";
  return absl::OkStatus();
}

namespace {

// A stamp written with EncodeMark under `key`, nullopt when there is none.
absl::StatusOr<std::optional<int64_t>> ReadStamp(const state_store::StateStore& store,
                                                 absl::string_view key) {
  absl::StatusOr<std::optional<std::string>> stored = store.Get(key);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return std::optional<int64_t>();
  CHECK_EQ((*stored)->size(), 8u) << "corrupt " << key;
  uint64_t value = 0;
  for (unsigned char c : **stored) value = (value << 8) | c;
  return std::optional<int64_t>(static_cast<int64_t>(value));
}

}  // namespace

absl::StatusOr<std::optional<int64_t>> DedupIndex::NewestRecordedAtUs() const {
  absl::MutexLock lock(&newest_mu_);
  if (!newest_loaded_) {
    absl::StatusOr<std::optional<int64_t>> stored = ReadStamp(*store_, kNewestKey);
    if (!stored.ok()) return stored.status();
    newest_us_ = *stored;
    newest_loaded_ = true;
  }
  return newest_us_;
}

absl::Status DedupIndex::LoadMarkLocked() const {
  if (mark_loaded_) return absl::OkStatus();
  absl::StatusOr<std::optional<int64_t>> stored = ReadStamp(*store_, kCatchUpMarkKey);
  if (!stored.ok()) return stored.status();
  mark_us_ = *stored;
  mark_loaded_ = true;
  return absl::OkStatus();
}

absl::Status DedupIndex::WriteMarkLocked(std::optional<int64_t> mark_us) {
  state_store::StateBatch batch(store_);
  if (mark_us.has_value()) {
    CHECK_GT(*mark_us, 0);
    batch.Put(kCatchUpMarkKey, EncodeMark(static_cast<uint64_t>(*mark_us)));
  } else {
    batch.Delete(kCatchUpMarkKey);
  }
  if (absl::Status committed = store_->Commit(batch); !committed.ok()) return committed;
  mark_us_ = mark_us;
  mark_loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<int64_t>> DedupIndex::CatchUpMarkUs() const {
  absl::MutexLock lock(&mark_mu_);
  if (absl::Status loaded = LoadMarkLocked(); !loaded.ok()) return loaded;
  if (!unwritten_mark_us_.has_value()) return mark_us_;
  if (!mark_us_.has_value()) return unwritten_mark_us_;
  return std::min(*mark_us_, *unwritten_mark_us_);
}

void DedupIndex::NoteUnresolved(int64_t recorded_at_us) {
  absl::MutexLock lock(&mark_mu_);
  if (!unwritten_mark_us_.has_value() || recorded_at_us < *unwritten_mark_us_) {
    unwritten_mark_us_ = recorded_at_us;
  }
  // Written now, or by the next call, the next Record or PersistCatchUpMark.
  if (absl::Status written = WriteUnwrittenMarkLocked(); !written.ok()) {
    LOG_EVERY_N(ERROR, 100) << "dedup index: could not write the catch-up mark (retried): "
                            << written;
  }
}

absl::StatusOr<std::optional<int64_t>> DedupIndex::MarkToWriteLocked() {
  if (!unwritten_mark_us_.has_value()) return std::nullopt;
  if (absl::Status loaded = LoadMarkLocked(); !loaded.ok()) return loaded;
  if (mark_us_.has_value() && *mark_us_ <= *unwritten_mark_us_) {
    unwritten_mark_us_.reset();  // the written mark already starts earlier
    return std::nullopt;
  }
  return unwritten_mark_us_;
}

absl::Status DedupIndex::WriteUnwrittenMarkLocked() {
  absl::StatusOr<std::optional<int64_t>> to_write = MarkToWriteLocked();
  if (!to_write.ok()) return to_write.status();
  if (!to_write->has_value()) return absl::OkStatus();
  if (absl::Status written = WriteMarkLocked(*to_write); !written.ok()) return written;
  unwritten_mark_us_.reset();
  return absl::OkStatus();
}

absl::Status DedupIndex::PersistCatchUpMark() {
  absl::MutexLock lock(&mark_mu_);
  return WriteUnwrittenMarkLocked();
}

absl::Status DedupIndex::SetCatchUpMark(std::optional<int64_t> recorded_at_us) {
  absl::MutexLock lock(&mark_mu_);
  return WriteMarkLocked(recorded_at_us);  // a lower unwritten mark stays, to be written
}

absl::StatusOr<DedupIndex::ConflictRecorded> DedupIndex::RecordConflict(
    absl::string_view event_id, const ingest_storage::ConflictEvidence& evidence) {
  CHECK(ValidEventId(event_id)) << event_id;
  const std::string prefix = absl::StrCat(kConflictPrefix, event_id, "/");
  ConflictRecorded recorded;
  std::optional<int> same;
  ingest_storage::ConflictEvidence same_evidence;
  bool corrupt = false;
  absl::Status scanned =
      store_->ScanPrefix(prefix, [&](absl::string_view, absl::string_view value) {
        ingest_storage::ConflictEvidence kept;
        if (!kept.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          corrupt = true;
          return false;
        }
        if (kept.conflicting_digest() == evidence.conflicting_digest()) {
          same = recorded.number;
          same_evidence = std::move(kept);
        }
        ++recorded.number;
        return true;
      });
  if (!scanned.ok()) return scanned;
  if (corrupt) return absl::DataLossError(absl::StrCat("corrupt conflict evidence under ", prefix));
  if (same.has_value()) {
    if (evidence.published() && !same_evidence.published()) {
      // Kept before conflicts were published: now it is, and the evidence says so.
      state_store::StateBatch batch(store_);
      same_evidence.set_published(true);
      batch.Put(absl::StrFormat("%s%06d", prefix, *same), same_evidence.SerializeAsString());
      absl::Status committed = store_->Commit(batch);
      if (!committed.ok()) return committed;
    }
    return ConflictRecorded{.number = *same, .kept_now = false};
  }
  state_store::StateBatch batch(store_);
  batch.Put(absl::StrFormat("%s%06d", prefix, recorded.number), evidence.SerializeAsString());
  absl::Status committed = store_->Commit(batch);
  if (!committed.ok()) return committed;
  recorded.kept_now = true;
  return recorded;
}

absl::StatusOr<std::vector<ingest_storage::ConflictEvidence>> DedupIndex::Conflicts(
    absl::string_view event_id) const {
  std::vector<ingest_storage::ConflictEvidence> out;
  bool corrupt = false;
  absl::Status scanned = store_->ScanPrefix(
      absl::StrCat(kConflictPrefix, event_id, "/"),
      [&](absl::string_view, absl::string_view value) {
        if (!out.emplace_back().ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          corrupt = true;
          return false;
        }
        return true;
      });
  if (!scanned.ok()) return scanned;
  if (corrupt) return absl::InternalError(absl::StrCat("conflict evidence of ", event_id));
  return out;
}

absl::StatusOr<bool> DedupIndex::ConflictKept(absl::string_view event_id,
                                              absl::string_view conflicting_digest) const {
  bool kept = false;
  absl::Status scanned = store_->ScanPrefix(
      absl::StrCat(kConflictPrefix, event_id, "/"),
      [&](absl::string_view, absl::string_view value) {
        ingest_storage::ConflictEvidence evidence;
        if (evidence.ParseFromArray(value.data(), static_cast<int>(value.size())) &&
            evidence.conflicting_digest() == conflicting_digest && evidence.published()) {
          kept = true;
          return false;
        }
        return true;
      });
  if (!scanned.ok()) return scanned;
  return kept;
}

absl::StatusOr<int64_t> DedupIndex::Prune(absl::Time cutoff, int64_t max_entries) {
  const int64_t cutoff_us = absl::ToUnixMicros(cutoff);
  const std::string end = TimeKey(cutoff_us, "");
  std::vector<std::string> doomed;  // time keys
  // Bucket key -> the offsets the visited commits list in it (bit seq % 64).
  absl::flat_hash_map<std::string, uint64_t> listed;
  int64_t listed_ids = 0;
  absl::Status corrupt;
  absl::Status scanned =
      store_->ScanPrefix(kTimePrefix, [&](absl::string_view key, absl::string_view ids) {
        if (key >= end || listed_ids >= max_entries) return false;
        doomed.emplace_back(key);
        for (absl::string_view line : absl::StrSplit(ids, '\n', absl::SkipEmpty())) {
          absl::string_view terminal_id;
          uint64_t first = 0;
          uint64_t last = 0;
          if (!SplitRun(line, &terminal_id, &first, &last)) {
            corrupt = absl::InternalError(
                absl::StrCat("time index ", key, " lists \"", line, "\": corrupt store"));
            return false;
          }
          // The run's offsets, bucket by bucket.
          for (uint64_t seq = first;; seq = (seq | kOffsetMask) + 1) {
            const uint64_t bucket_last = std::min(last, seq | kOffsetMask);
            const uint64_t width = bucket_last - seq + 1;  // 1..64
            const uint64_t bits = width == 64 ? ~uint64_t{0} : ((uint64_t{1} << width) - 1);
            listed[BucketKey(terminal_id, seq)] |= bits << (seq & kOffsetMask);
            if (bucket_last == last) break;
          }
          listed_ids += static_cast<int64_t>(last - first + 1);
        }
        return true;
      });
  if (!scanned.ok()) return scanned;
  if (!corrupt.ok()) return corrupt;
  if (doomed.empty()) return 0;
  absl::MutexLock record_lock(&record_mu_);
  state_store::StateBatch batch(store_);
  for (const std::string& time_key : doomed) batch.Delete(time_key);
  int64_t pruned = 0;
  for (const auto& [key, offsets] : listed) {
    absl::StatusOr<std::optional<std::string>> stored = store_->Get(key);
    if (!stored.ok()) return stored.status();
    if (!stored->has_value()) continue;
    const std::string& bucket = **stored;
    if (absl::Status valid = CheckBucket(key, bucket); !valid.ok()) return valid;
    // A listed id's recordings before the cutoff go; one recorded again later stays.
    std::string kept;
    uint64_t before = 0;
    uint64_t after = 0;
    for (size_t at = 0; at < bucket.size(); at += kEntrySize) {
      const char* entry = bucket.data() + at;
      const uint64_t bit = uint64_t{1} << static_cast<uint8_t>(entry[0]);
      before |= bit;
      if ((offsets & bit) != 0 && EntryRecordedAtUs(entry) < cutoff_us) continue;
      after |= bit;
      kept.append(entry, kEntrySize);
    }
    pruned += absl::popcount(offsets & before & ~after);
    if (kept.empty()) {
      batch.Delete(key);
    } else if (kept.size() != bucket.size()) {
      batch.Put(key, kept);
    }
  }
  absl::Status committed = store_->Commit(batch);
  if (!committed.ok()) return committed;
  return pruned;
}

}  // namespace tongka::ingest
