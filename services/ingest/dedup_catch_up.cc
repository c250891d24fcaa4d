#include "services/ingest/dedup_catch_up.h"

#include <glog/logging.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "libs/event_log/partition_consumer.h"
#include "libs/txn/mac_input.h"
#include "proto/events.pb.h"

namespace tongka::ingest {
namespace {

// The upload an appended transaction event was built from (occurred_at and body; the platform's
// `late` flag is not part of the MAC input), so its digest can be computed as ingest did.
bool UploadOf(const v1::Event& event, v1::TransactionUpload* upload) {
  upload->set_occurred_at_us(event.occurred_at_us());
  switch (event.body_case()) {
    case v1::Event::kTap:
      *upload->mutable_tap() = event.tap();
      return true;
    case v1::Event::kLoad:
      *upload->mutable_load() = event.load();
      return true;
    case v1::Event::kRefund:
      *upload->mutable_refund() = event.refund();
      return true;
    default:
      return false;
  }
}

// Calls `ask` until it succeeds, fails with something other than UNAVAILABLE (leadership of a
// new topic or a restarted broker settles within seconds), or `deadline` passes.
template <typename T>
absl::StatusOr<T> RetryUnavailable(absl::Time deadline,
                                   const std::function<absl::StatusOr<T>()>& ask) {
  absl::Duration backoff = absl::Milliseconds(100);
  while (true) {
    absl::StatusOr<T> answer = ask();
    if (answer.ok() || answer.status().code() != absl::StatusCode::kUnavailable ||
        absl::Now() + backoff > deadline) {
      return answer;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

}  // namespace

std::optional<int64_t> ReplayedThroughUs(const std::map<int32_t, int64_t>& newest_replayed_us,
                                         const std::map<int32_t, int64_t>& still_replaying) {
  std::optional<int64_t> through;
  for (const auto& [partition, unused] : still_replaying) {
    auto newest = newest_replayed_us.find(partition);
    if (newest == newest_replayed_us.end()) return std::nullopt;  // no event of it replayed yet
    through = std::min(through.value_or(newest->second), newest->second);
  }
  return through;
}

absl::StatusOr<CatchUpStats> CatchUpDedupIndex(const event_log::KafkaClientConfig& kafka,
                                               const std::string& topic, DedupIndex* dedup,
                                               int64_t since_us, int64_t horizon_start_us,
                                               absl::Duration timeout,
                                               const CatchUpProgressFn& on_progress) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::unique_ptr<event_log::PartitionConsumer>> consumer =
      event_log::PartitionConsumer::Create(kafka, "tongka-ingest-catch-up");
  if (!consumer.ok()) return consumer.status();
  absl::StatusOr<int32_t> count = (*consumer)->PartitionCount(topic, absl::Seconds(30));
  if (!count.ok()) return count.status();
  std::vector<event_log::TopicPartition> partitions;
  for (int32_t p = 0; p < *count; ++p) partitions.push_back({topic, p});
  absl::StatusOr<std::vector<int64_t>> starts = RetryUnavailable<std::vector<int64_t>>(
      deadline,
      [&] { return (*consumer)->OffsetsForTime(partitions, since_us / 1000, absl::Seconds(30)); });
  if (!starts.ok()) return starts.status();

  // Replay [start, log end at the start of the call) of every partition that has such a tail.
  std::map<int32_t, int64_t> ends;
  std::vector<event_log::StartPosition> positions;
  for (int32_t p = 0; p < *count; ++p) {
    if ((*starts)[p] < 0) continue;  // nothing that recent
    absl::StatusOr<std::pair<int64_t, int64_t>> marks =
        RetryUnavailable<std::pair<int64_t, int64_t>>(deadline, [&] {
          return (*consumer)->QueryWatermarks(partitions[p], absl::Seconds(30));
        });
    if (!marks.ok()) return marks.status();
    if ((*starts)[p] >= marks->second) continue;
    ends[p] = marks->second;
    positions.push_back({partitions[p], (*starts)[p]});
  }
  CatchUpStats stats;
  if (positions.empty()) return stats;
  if (absl::Status assigned = (*consumer)->Assign(positions); !assigned.ok()) return assigned;

  std::map<int32_t, int64_t> next;  // next offset to see, per partition still being replayed
  for (const event_log::StartPosition& position : positions) {
    next[position.topic_partition.partition] = position.next_offset;
  }
  std::map<int32_t, int64_t> newest_replayed_us;  // per partition, once it has replayed an event
  int64_t reported_us = 0;
  v1::Event event;
  v1::TransactionUpload upload;
  while (!next.empty()) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "dedup catch-up: ", next.size(), " partitions of ", topic, " not replayed in time"));
    }
    // Records must die before their consumer: this vector lives inside the consumer's scope.
    std::vector<event_log::Record> records;
    if (absl::Status polled = (*consumer)->Poll(5000, absl::Milliseconds(200), &records);
        !polled.ok()) {
      return polled;
    }
    std::vector<DedupEntry> entries;
    std::vector<std::string> inputs;  // entries[i]'s signed content, hashed together below
    std::vector<std::string> macs;
    for (const event_log::Record& record : records) {
      auto it = next.find(record.partition);
      if (it == next.end() || record.offset >= ends[record.partition]) continue;
      it->second = record.offset + 1;
      ++stats.records_read;
      upload.Clear();
      if (!event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size()))) {
        ++stats.skipped;
        continue;
      }
      int64_t& newest = newest_replayed_us[record.partition];
      newest = std::max(newest, event.recorded_at_us());
      if (!UploadOf(event, &upload) || event.recorded_at_us() < horizon_start_us) {
        ++stats.skipped;
        continue;
      }
      absl::StatusOr<std::string> input = txn::MacInput(upload);
      if (!input.ok()) {
        ++stats.skipped;
        continue;
      }
      entries.push_back({event.event_id(), {}, event.recorded_at_us()});
      inputs.push_back(std::move(*input));
      macs.push_back(txn::CommonOf(upload)->mac());
    }
    std::vector<SignedContent> contents;
    contents.reserve(entries.size());
    for (size_t i = 0; i < entries.size(); ++i) contents.push_back({inputs[i], macs[i]});
    std::vector<crypto::Sm3Digest> digests(entries.size());
    ContentDigests(contents, absl::MakeSpan(digests));
    for (size_t i = 0; i < entries.size(); ++i) entries[i].digest = digests[i];
    if (absl::Status recorded = dedup->Record(entries); !recorded.ok()) return recorded;
    stats.recorded += static_cast<int64_t>(entries.size());
    for (auto it = next.begin(); it != next.end();) {
      it = it->second >= ends[it->first] ? next.erase(it) : std::next(it);
    }
    const std::optional<int64_t> through = ReplayedThroughUs(newest_replayed_us, next);
    if (on_progress != nullptr && through.has_value() && *through > reported_us) {
      if (absl::Status kept = on_progress(*through); !kept.ok()) return kept;
      reported_us = *through;
    }
  }
  return stats;
}

absl::StatusOr<CatchUpStats> CatchUpBeforeServing(const event_log::KafkaClientConfig& kafka,
                                                  const std::string& topic, DedupIndex* dedup,
                                                  const CatchUpWindow& window) {
  absl::StatusOr<std::optional<int64_t>> newest = dedup->NewestRecordedAtUs();
  if (!newest.ok()) return newest.status();
  // Set while something Kafka may have could be missing from the index: a catch-up that stopped
  // partway, a failed index write or delivery report of the last run.
  absl::StatusOr<std::optional<int64_t>> mark = dedup->CatchUpMarkUs();
  if (!mark.ok()) return mark.status();
  const absl::Time horizon_start = window.now - window.horizon;
  absl::Time since = newest->has_value() ? absl::FromUnixMicros(**newest) - window.margin
                                         : horizon_start;  // empty: rebuild the whole horizon
  if (mark->has_value()) since = std::min(since, absl::FromUnixMicros(**mark) - window.margin);
  since = std::max(since, horizon_start);
  // Until it has got further, a catch-up that stops restarts here.
  const int64_t floor_us = absl::ToUnixMicros(since + window.margin);
  if (absl::Status kept = dedup->SetCatchUpMark(floor_us); !kept.ok()) return kept;
  absl::StatusOr<CatchUpStats> stats = CatchUpDedupIndex(
      kafka, topic, dedup, absl::ToUnixMicros(since), absl::ToUnixMicros(horizon_start),
      window.timeout, [dedup, floor_us](int64_t replayed_through_us) {
        return dedup->SetCatchUpMark(std::max(floor_us, replayed_through_us));
      });
  if (!stats.ok()) return stats.status();
  if (absl::Status cleared = dedup->SetCatchUpMark(std::nullopt); !cleared.ok()) return cleared;
  stats->since = since;
  return stats;
}

}  // namespace tongka::ingest
