#include "services/ingest/testing/topic_reader.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/event_log/partition_consumer.h"

namespace tongka::ingest::testing {

absl::StatusOr<std::vector<event_log::Record>> ReadTopic(const std::string& bootstrap,
                                                         const std::string& topic,
                                                         absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  auto consumer = event_log::PartitionConsumer::Create({.bootstrap_servers = bootstrap},
                                                       "tongka-ingest-test-reader");
  if (!consumer.ok()) return consumer.status();
  absl::StatusOr<int32_t> partitions = (*consumer)->PartitionCount(topic, timeout);
  if (!partitions.ok()) return partitions.status();
  std::vector<event_log::StartPosition> positions;
  std::map<int32_t, int64_t> remaining;  // partition -> high watermark
  for (int32_t p = 0; p < *partitions; ++p) {
    absl::StatusOr<std::pair<int64_t, int64_t>> marks =
        (*consumer)->QueryWatermarks({topic, p}, timeout);
    if (!marks.ok()) return marks.status();
    if (marks->second > 0) {
      positions.push_back({{topic, p}, 0});
      remaining[p] = marks->second;
    }
  }
  std::vector<event_log::Record> records;
  if (positions.empty()) return records;
  if (absl::Status assigned = (*consumer)->Assign(positions); !assigned.ok()) return assigned;
  while (!remaining.empty()) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("read ", records.size(), " records of ", topic, ", more expected"));
    }
    std::vector<event_log::Record> batch;
    if (absl::Status polled = (*consumer)->Poll(10000, absl::Milliseconds(200), &batch);
        !polled.ok()) {
      return polled;
    }
    for (event_log::Record& record : batch) {
      auto it = remaining.find(record.partition);
      if (it == remaining.end() || record.offset >= it->second) continue;
      if (record.offset + 1 >= it->second) remaining.erase(it);
      records.push_back(record.Clone());  // owned: outlives the consumer
    }
  }
  (*consumer)->Close();
  return records;
}

}  // namespace tongka::ingest::testing
