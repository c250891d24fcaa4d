#include "libs/state_store/event_filter.h"

#include <glog/logging.h>

#include <algorithm>
#include <random>

#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "libs/event_log/ownership.h"

namespace tongka::state_store {
namespace {

using event_log::Record;
using event_log::TopicPartition;

constexpr char kChunkPrefix[] = "~ids/";
constexpr char kDropsPrefix[] = "~drops/";

absl::StatusOr<DropCounts> ParseDrops(absl::string_view key, absl::string_view value) {
  DropCounts counts;
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(value, ' ');
  if (!absl::SimpleAtoi(parts.first, &counts.duplicates) ||
      !absl::SimpleAtoi(parts.second, &counts.misrouted)) {
    return absl::InternalError(absl::StrCat("event filter: ", key, " holds no counts"));
  }
  return counts;
}

bool ReadVarint(absl::string_view bytes, size_t* pos, uint64_t* out) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64 && *pos < bytes.size(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(bytes[(*pos)++]);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *out = value;
      return true;
    }
  }
  return false;
}

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// Visits the ids of a chunk in order; false when the chunk does not decode.
template <typename Visit>
bool ForEachId(absl::string_view chunk, Visit visit) {
  size_t pos = 0;
  while (pos < chunk.size()) {
    uint64_t size = 0;
    if (!ReadVarint(chunk, &pos, &size) || size > chunk.size() - pos) return false;
    if (!visit(chunk.substr(pos, size))) return true;
    pos += size;
  }
  return true;
}

int64_t BucketOf(int64_t timestamp_ms, int64_t width_ms) {
  // Records without a timestamp (-1) and anything before the epoch fall in bucket 0.
  return std::max<int64_t>(timestamp_ms, 0) / width_ms;
}

}  // namespace

std::optional<absl::string_view> EnvelopeEventId(absl::string_view value) {
  std::optional<absl::string_view> id;
  size_t pos = 0;
  while (pos < value.size()) {
    uint64_t tag = 0;
    if (!ReadVarint(value, &pos, &tag) || tag > 0xffffffffu) return std::nullopt;
    const uint32_t field = static_cast<uint32_t>(tag >> 3);
    if (field == 0) return std::nullopt;
    uint64_t skip = 0;
    switch (tag & 7) {
      case 0:  // varint
        if (!ReadVarint(value, &pos, &skip)) return std::nullopt;
        break;
      case 1:  // fixed64
        if (value.size() - pos < 8) return std::nullopt;
        pos += 8;
        break;
      case 2: {  // length-delimited
        uint64_t size = 0;
        if (!ReadVarint(value, &pos, &size) || size > value.size() - pos) return std::nullopt;
        if (field == 1) id = value.substr(pos, size);
        pos += size;
        break;
      }
      case 5:  // fixed32
        if (value.size() - pos < 4) return std::nullopt;
        pos += 4;
        break;
      default:  // groups (3, 4) are not used by Tongka's schema; 6 and 7 do not exist
        return std::nullopt;
    }
  }
  if (id.has_value() && id->empty()) return std::nullopt;
  return id;
}

EventFilter::EventFilter(const StateStore* store, EventFilterOptions options)
    : store_(store), options_(options), seed_(std::random_device{}()) {}

std::string EventFilter::ChunkKey(const PartitionIndex& index, int64_t bucket) const {
  return absl::StrFormat("%s%020d", index.chunk_prefix, bucket);
}

uint64_t EventFilter::Hash(absl::string_view id) const { return absl::HashOf(seed_, id); }

absl::Status EventFilter::Load(const std::vector<TopicPartition>& partitions,
                               const std::map<std::string, int32_t>& partition_counts) {
  if (options_.horizon < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("event filter horizon: must be at least 1 ms");
  }
  if (options_.bucket_width < absl::Milliseconds(1) || options_.bucket_width > options_.horizon) {
    return absl::InvalidArgumentError(
        "event filter bucket_width: must be at least 1 ms and at most the horizon");
  }
  bucket_width_ms_ = absl::ToInt64Milliseconds(options_.bucket_width);
  const int64_t horizon_ms = absl::ToInt64Milliseconds(options_.horizon);
  horizon_buckets_ = (horizon_ms + bucket_width_ms_ - 1) / bucket_width_ms_;
  for (const TopicPartition& tp : partitions) {
    auto count = partition_counts.find(tp.topic);
    if (count == partition_counts.end() || count->second < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("event filter: no partition count for topic ", tp.topic));
    }
    PartitionIndex& index = partitions_[tp];
    index.partition_count = count->second;
    index.chunk_prefix = absl::StrFormat("%s%s/%04d/", kChunkPrefix, tp.topic, tp.partition);
    index.drops_key = absl::StrFormat("%s%s/%04d", kDropsPrefix, tp.topic, tp.partition);
    if (!options_.drop_duplicates) continue;
    absl::Status corrupt;
    absl::Status scanned =
        store_->ScanPrefix(index.chunk_prefix, [&](absl::string_view key, absl::string_view chunk) {
          int64_t bucket = 0;
          if (!absl::SimpleAtoi(key.substr(index.chunk_prefix.size()), &bucket) || bucket < 0) {
            corrupt = absl::InternalError(absl::StrCat("event filter: bad chunk key ", key));
            return false;
          }
          index.buckets.push_back(bucket);
          const bool decoded = ForEachId(chunk, [&](absl::string_view id) {
            Remember(index, Hash(id), bucket);
            return true;
          });
          if (!decoded) {
            corrupt =
                absl::InternalError(absl::StrCat("event filter: chunk ", key, " does not decode"));
            return false;
          }
          return true;
        });
    if (!scanned.ok()) return scanned;
    if (!corrupt.ok()) return corrupt;
    // Chunk keys sort by bucket (fixed width), so the last is the clock's.
    if (!index.buckets.empty()) index.clock_bucket = index.buckets.back();
  }
  return absl::OkStatus();
}

void EventFilter::Remember(PartitionIndex& index, uint64_t hash, int64_t bucket) {
  if (!index.ids.Insert(hash, bucket).second) index.collided[hash].push_back(bucket);
}

absl::StatusOr<bool> EventFilter::StoredIn(const PartitionIndex& index, int64_t bucket,
                                           absl::string_view id, const StateBatch& batch) const {
  bool found = false;
  auto match = [&](absl::string_view stored) {
    found = stored == id;
    return !found;
  };
  if (index.pending_bucket == bucket && !index.pending.empty()) {
    ForEachId(index.pending, match);
    if (found) return true;
  }
  absl::StatusOr<std::optional<std::string>> chunk = batch.Get(ChunkKey(index, bucket));
  if (!chunk.ok()) return chunk.status();
  if (!chunk->has_value()) return false;
  if (!ForEachId(**chunk, match)) {
    return absl::InternalError(
        absl::StrCat("event filter: chunk ", ChunkKey(index, bucket), " does not decode"));
  }
  return found;
}

const EventFilter::PartitionIndex& EventFilter::IndexOf(const Record& record) const {
  auto it = partitions_.find(TopicPartition{std::string(record.topic), record.partition});
  CHECK(it != partitions_.end()) << "event filter: record from an unloaded partition "
                                 << record.topic << "/" << record.partition;
  return it->second;
}

EventFilter::Prepared EventFilter::Prepare(const Record& record) const {
  return PrepareIn(IndexOf(record), record);
}

void EventFilter::PrepareAll(const std::vector<Record>& records,
                             std::vector<Prepared>* prepared) const {
  prepared->reserve(prepared->size() + records.size());
  const PartitionIndex* index = nullptr;
  const Record* previous = nullptr;
  for (const Record& record : records) {
    if (previous == nullptr || record.partition != previous->partition ||
        record.topic != previous->topic) {
      index = &IndexOf(record);
    }
    prepared->push_back(PrepareIn(*index, record));
    previous = &record;
  }
}

EventFilter::Prepared EventFilter::PrepareIn(const PartitionIndex& index,
                                             const Record& record) const {
  Prepared prepared;
  prepared.partition = &index;
  prepared.misrouted =
      options_.refuse_misrouted && !record.key.empty() &&
      event_log::PartitionForKey(record.key, index.partition_count) != record.partition;
  if (!options_.drop_duplicates || prepared.misrouted) return prepared;
  std::optional<absl::string_view> id = EnvelopeEventId(record.value);
  if (!id.has_value()) return prepared;
  prepared.has_id = true;
  prepared.id = *id;
  prepared.hash = Hash(*id);
  return prepared;
}

void EventFilter::Prefetch(const Prepared& prepared) const {
  if (prepared.has_id) {
    static_cast<const PartitionIndex*>(prepared.partition)->ids.Prefetch(prepared.hash);
  }
}

absl::StatusOr<bool> EventFilter::Repeats(PartitionIndex& index, int64_t bucket,
                                          const Prepared& prepared, const StateBatch& batch) {
  absl::StatusOr<bool> stored = StoredIn(index, bucket, prepared.id, batch);
  if (!stored.ok() || *stored) return stored;
  if (auto more = index.collided.find(prepared.hash); more != index.collided.end()) {
    for (int64_t other : more->second) {
      stored = StoredIn(index, other, prepared.id, batch);
      if (!stored.ok() || *stored) return stored;
    }
  }
  return false;
}

absl::StatusOr<EventFilter::Verdict> EventFilter::Admit(const Record& record,
                                                        const Prepared& prepared,
                                                        StateBatch& batch) {
  // Prepare only read the index; the loop owns it, so this thread may change it.
  PartitionIndex& index =
      *const_cast<PartitionIndex*>(static_cast<const PartitionIndex*>(prepared.partition));
  if (prepared.misrouted) {
    ++index.pending_drops.misrouted;
    return Verdict::kMisrouted;
  }
  if (!prepared.has_id) return Verdict::kApply;

  // A new id is filed under the partition's clock, which only moves forward. One probe of the
  // table for the common case (a new id): the slot is claimed for it at once.
  const int64_t bucket =
      std::max(BucketOf(record.timestamp_ms, bucket_width_ms_), index.clock_bucket.value_or(0));
  auto [stored_bucket, inserted] = index.ids.Insert(prepared.hash, bucket);
  if (!inserted) {
    absl::StatusOr<bool> repeats = Repeats(index, *stored_bucket, prepared, batch);
    if (!repeats.ok()) return repeats.status();
    if (*repeats) {
      ++index.pending_drops.duplicates;
      return Verdict::kDuplicate;
    }
    // Another id with the same hash: this one is new all the same.
    index.collided[prepared.hash].push_back(bucket);
  }
  if (!index.clock_bucket.has_value() || bucket > *index.clock_bucket) {
    FlushPartition(index, batch);
    index.clock_bucket = bucket;
    index.buckets.push_back(bucket);
    absl::Status pruned = Prune(index, batch);
    if (!pruned.ok()) return pruned;
  }
  index.pending_bucket = bucket;
  AppendVarint(prepared.id.size(), &index.pending);
  index.pending.append(prepared.id.data(), prepared.id.size());
  return Verdict::kApply;
}

void EventFilter::FlushPartition(PartitionIndex& index, StateBatch& batch) {
  if (index.pending.empty()) return;
  batch.Append(ChunkKey(index, index.pending_bucket), index.pending);
  index.pending.clear();
}

absl::Status EventFilter::FlushDrops(PartitionIndex& index, StateBatch& batch) {
  if (index.pending_drops.duplicates == 0 && index.pending_drops.misrouted == 0) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<std::string>> stored = batch.Get(index.drops_key);
  if (!stored.ok()) return stored.status();
  DropCounts counts;
  if (stored->has_value()) {
    absl::StatusOr<DropCounts> parsed = ParseDrops(index.drops_key, **stored);
    if (!parsed.ok()) return parsed.status();
    counts = *parsed;
  }
  counts.duplicates += index.pending_drops.duplicates;
  counts.misrouted += index.pending_drops.misrouted;
  batch.Put(index.drops_key, absl::StrCat(counts.duplicates, " ", counts.misrouted));
  index.pending_drops = DropCounts();
  return absl::OkStatus();
}

absl::Status EventFilter::Flush(StateBatch& batch) {
  for (auto& [tp, index] : partitions_) {
    FlushPartition(index, batch);
    if (absl::Status flushed = FlushDrops(index, batch); !flushed.ok()) return flushed;
  }
  return absl::OkStatus();
}

absl::StatusOr<DropCounts> ReadDropCounts(const StateStore& store, absl::string_view topic) {
  DropCounts total;
  absl::Status parsed;
  const std::string prefix =
      topic.empty() ? std::string(kDropsPrefix) : absl::StrCat(kDropsPrefix, topic, "/");
  absl::Status scanned =
      store.ScanPrefix(prefix, [&](absl::string_view key, absl::string_view value) {
        absl::StatusOr<DropCounts> counts = ParseDrops(key, value);
        if (!counts.ok()) {
          parsed = counts.status();
          return false;
        }
        total.duplicates += counts->duplicates;
        total.misrouted += counts->misrouted;
        return true;
      });
  if (!scanned.ok()) return scanned;
  if (!parsed.ok()) return parsed;
  return total;
}

absl::Status EventFilter::Prune(PartitionIndex& index, StateBatch& batch) {
  const int64_t oldest_kept = *index.clock_bucket - horizon_buckets_;
  size_t expired = 0;
  while (expired < index.buckets.size() && index.buckets[expired] < oldest_kept) {
    const int64_t bucket = index.buckets[expired++];
    const std::string key = ChunkKey(index, bucket);
    absl::StatusOr<std::optional<std::string>> chunk = batch.Get(key);
    if (!chunk.ok()) return chunk.status();
    if (chunk->has_value()) {
      const bool decoded = ForEachId(**chunk, [&](absl::string_view id) {
        const uint64_t hash = Hash(id);
        auto more = index.collided.find(hash);
        if (more != index.collided.end()) {
          std::vector<int64_t>& others = more->second;
          auto own = std::find(others.begin(), others.end(), bucket);
          if (own != others.end()) {
            others.erase(own);
          } else if (int64_t* main = index.ids.Find(hash); main != nullptr) {
            *main = others.back();  // another id with this hash takes the slot
            others.pop_back();
          }
          if (others.empty()) index.collided.erase(more);
          return true;
        }
        if (int64_t* main = index.ids.Find(hash); main != nullptr && *main == bucket) {
          index.ids.Erase(hash);
        }
        return true;
      });
      if (!decoded) {
        return absl::InternalError(absl::StrCat("event filter: chunk ", key, " does not decode"));
      }
    }
    batch.Delete(key);
  }
  index.buckets.erase(index.buckets.begin(), index.buckets.begin() + expired);
  return absl::OkStatus();
}

int64_t EventFilter::RememberedIds() const {
  int64_t total = 0;
  for (const auto& [tp, index] : partitions_) {
    total += static_cast<int64_t>(index.ids.size());
    for (const auto& [hash, more] : index.collided) total += more.size();
  }
  return total;
}

}  // namespace tongka::state_store
