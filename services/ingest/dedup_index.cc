#include "services/ingest/dedup_index.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>

#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "libs/crypto/sm3.h"
#include "libs/crypto/sm3_lanes.h"

namespace tongka::ingest {
namespace {

constexpr absl::string_view kTimePrefix = "dedup_time/";
constexpr absl::string_view kConflictPrefix = "conflict/";
constexpr size_t kValueSize = crypto::kSm3DigestSize + sizeof(int64_t);

std::string EncodeValue(const DedupEntry& entry) {
  std::string value(kValueSize, '\0');
  std::memcpy(value.data(), entry.digest.data(), crypto::kSm3DigestSize);
  const uint64_t at = static_cast<uint64_t>(entry.recorded_at_us);
  for (int i = 0; i < 8; ++i) {
    value[crypto::kSm3DigestSize + i] = static_cast<char>(at >> (56 - 8 * i));
  }
  return value;
}

std::string TimeKey(int64_t recorded_at_us, absl::string_view event_id) {
  return absl::StrFormat("%s%020d/%s", kTimePrefix, recorded_at_us, event_id);
}

bool ValidEventId(absl::string_view event_id) {
  return absl::StartsWith(event_id, "txn/") && event_id.size() > 4;
}

constexpr absl::string_view kMarkPrefix = "hw/";
constexpr absl::string_view kNewestKey = "dedup_newest_recorded_at_us";

// "txn/<terminal_id>/<seq>" -> (terminal_id, seq); false if the id has another shape.
bool SplitEventId(absl::string_view event_id, absl::string_view* terminal_id, uint64_t* seq) {
  if (!ValidEventId(event_id)) return false;
  const size_t slash = event_id.rfind('/');
  if (slash <= 4) return false;
  *terminal_id = event_id.substr(4, slash - 4);
  return absl::SimpleAtoi(event_id.substr(slash + 1), seq);
}

std::string EncodeMark(uint64_t mark) {
  std::string value(8, '\0');
  for (int i = 0; i < 8; ++i) value[i] = static_cast<char>(mark >> (56 - 8 * i));
  return value;
}

}  // namespace

namespace {

// What a content digest hashes: one definition, so the batched and the single digest agree.
std::string ContentMessage(absl::string_view mac_input, absl::string_view mac) {
  return absl::StrCat(mac_input, "|", mac);
}

}  // namespace

crypto::Sm3Digest ContentDigest(absl::string_view mac_input, absl::string_view mac) {
  return crypto::Sm3(ContentMessage(mac_input, mac));
}

void ContentDigests(absl::Span<const SignedContent> contents,
                    absl::Span<crypto::Sm3Digest> digests) {
  CHECK_EQ(contents.size(), digests.size());
  std::vector<std::string> messages;
  messages.reserve(contents.size());
  for (const SignedContent& content : contents) {
    messages.push_back(ContentMessage(content.mac_input, content.mac));
  }
  const std::vector<absl::string_view> views(messages.begin(), messages.end());
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
  if (SplitEventId(event_id, &terminal_id, &seq)) {
    absl::StatusOr<uint64_t> mark = HighWater(terminal_id);
    if (!mark.ok()) return mark.status();
    if (seq > *mark) return std::nullopt;  // above every recorded seq: never recorded
  }
  absl::StatusOr<std::optional<std::string>> value = store_->Get(event_id);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return std::nullopt;
  const std::string& bytes = **value;
  if (bytes.size() != kValueSize) {
    return absl::InternalError(absl::StrCat("dedup entry ", event_id, " is ", bytes.size(),
                                            " bytes, want ", kValueSize, ": corrupt store"));
  }
  DedupEntry entry;
  entry.event_id = std::string(event_id);
  std::memcpy(entry.digest.data(), bytes.data(), crypto::kSm3DigestSize);
  uint64_t at = 0;
  for (int i = 0; i < 8; ++i) {
    at = (at << 8) | static_cast<uint8_t>(bytes[crypto::kSm3DigestSize + i]);
  }
  entry.recorded_at_us = static_cast<int64_t>(at);
  return entry;
}

absl::Status DedupIndex::Record(const std::vector<DedupEntry>& entries) {
  if (entries.empty()) return absl::OkStatus();
  absl::MutexLock record_lock(&record_mu_);
  state_store::StateBatch batch(store_);
  std::string ids;
  int64_t oldest_us = entries.front().recorded_at_us;
  absl::flat_hash_map<std::string, uint64_t> raised;  // terminal -> new mark
  for (const DedupEntry& entry : entries) {
    // Check the record before it is written (CONVENTIONS: assertions around storage).
    absl::string_view terminal_id;
    uint64_t seq = 0;
    CHECK(SplitEventId(entry.event_id, &terminal_id, &seq))
        << "not a transaction event id: " << entry.event_id;
    CHECK(entry.event_id.find('\n') == std::string::npos) << entry.event_id;
    CHECK_GT(entry.recorded_at_us, 0) << entry.event_id;
    batch.Put(entry.event_id, EncodeValue(entry));
    absl::StrAppend(&ids, ids.empty() ? "" : "\n", entry.event_id);
    oldest_us = std::min(oldest_us, entry.recorded_at_us);
    auto [it, inserted] = raised.try_emplace(std::string(terminal_id), seq);
    if (!inserted) it->second = std::max(it->second, seq);
  }
  // One time-index record per commit (not per entry): half the memtable inserts.
  batch.Put(TimeKey(oldest_us, entries.front().event_id), ids);
  for (auto& [terminal_id, mark] : raised) {
    absl::StatusOr<uint64_t> current = HighWater(terminal_id);
    if (!current.ok()) return current.status();
    if (mark > *current) {
      batch.Put(absl::StrCat(kMarkPrefix, terminal_id), EncodeMark(mark));
    } else {
      mark = *current;
    }
  }
  int64_t newest_us = entries.front().recorded_at_us;
  for (const DedupEntry& entry : entries) newest_us = std::max(newest_us, entry.recorded_at_us);
  absl::StatusOr<std::optional<int64_t>> known = NewestRecordedAtUs();
  if (!known.ok()) return known.status();
  const bool newer = !known->has_value() || newest_us > **known;
  if (newer) batch.Put(kNewestKey, EncodeMark(static_cast<uint64_t>(newest_us)));
  if (absl::Status committed = store_->Commit(batch); !committed.ok()) return committed;
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

absl::StatusOr<std::optional<int64_t>> DedupIndex::NewestRecordedAtUs() const {
  absl::MutexLock lock(&newest_mu_);
  if (!newest_loaded_) {
    absl::StatusOr<std::optional<std::string>> stored = store_->Get(kNewestKey);
    if (!stored.ok()) return stored.status();
    if (stored->has_value()) {
      CHECK_EQ((*stored)->size(), 8u) << "corrupt " << kNewestKey;
      uint64_t value = 0;
      for (unsigned char c : **stored) value = (value << 8) | c;
      newest_us_ = static_cast<int64_t>(value);
    }
    newest_loaded_ = true;
  }
  return newest_us_;
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
  std::vector<std::pair<std::string, std::string>> doomed;  // time key, '\n'-joined event ids
  int64_t listed = 0;
  absl::Status scanned =
      store_->ScanPrefix(kTimePrefix, [&](absl::string_view key, absl::string_view ids) {
        if (key >= end || listed >= max_entries) return false;
        doomed.emplace_back(std::string(key), std::string(ids));
        listed += 1 + static_cast<int64_t>(std::count(ids.begin(), ids.end(), '\n'));
        return true;
      });
  if (!scanned.ok()) return scanned;
  if (doomed.empty()) return 0;
  state_store::StateBatch batch(store_);
  int64_t pruned = 0;
  for (const auto& [time_key, ids] : doomed) {
    batch.Delete(time_key);
    for (absl::string_view id : absl::StrSplit(ids, '\n', absl::SkipEmpty())) {
      // An id recorded again later (after a crash between Kafka's ack and the first record)
      // is listed twice; only its newest recording counts.
      absl::StatusOr<std::optional<DedupEntry>> entry = Lookup(id);
      if (!entry.ok()) return entry.status();
      if (entry->has_value() && (*entry)->recorded_at_us < cutoff_us) {
        batch.Delete(id);
        ++pruned;
      }
    }
  }
  absl::Status committed = store_->Commit(batch);
  if (!committed.ok()) return committed;
  return pruned;
}

}  // namespace tongka::ingest
