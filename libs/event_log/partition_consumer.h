// PartitionConsumer: reads statically assigned Kafka partitions from caller-chosen offsets.
//
// Tongka never lets Kafka decide partition ownership or store consumer offsets: the owner of a
// partition is fixed by ownership.h, and the position lives in the service's RocksDB next to the
// state it produced (state_store). This class is therefore a thin, safe wrapper over
// RdKafka::KafkaConsumer with assign() (no subscribe, no commits) and batch polling.
//
// Thread-safety: one thread drives Assign/Poll/Close. The watermark accessors may be called from
// other threads (metrics scrapes).
//
// Failure: Poll returns a consumer error as a Status and the records read before it. An offset that
// is out of range (the log was truncated, or the stored offset is ahead of the log) arrives as
// OUT_OF_RANGE, because auto.offset.reset=error: a lost offset must stop the consumer loudly,
// never skip taps. Transient broker trouble is retried inside librdkafka and is not reported.
//
// Example:
//   auto consumer = PartitionConsumer::Create({.bootstrap_servers = b}, "settlement");
//   (*consumer)->Assign({{"tongka.txn", 0, next_offset}});
//   std::vector<Record> batch;
//   absl::Status s = (*consumer)->Poll(1000, absl::Milliseconds(100), &batch);
#ifndef TONGKA_LIBS_EVENT_LOG_PARTITION_CONSUMER_H_
#define TONGKA_LIBS_EVENT_LOG_PARTITION_CONSUMER_H_

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/event_log/kafka_config.h"
#include "libs/event_log/record.h"

namespace tongka::event_log {

struct StartPosition {
  TopicPartition topic_partition;
  int64_t next_offset = 0;  // the first offset to read
};

class PartitionConsumer {
 public:
  static absl::StatusOr<std::unique_ptr<PartitionConsumer>> Create(const KafkaClientConfig& config,
                                                                   const std::string& group_id);
  ~PartitionConsumer();

  PartitionConsumer(const PartitionConsumer&) = delete;
  PartitionConsumer& operator=(const PartitionConsumer&) = delete;

  // Replaces the assignment with exactly these partitions and positions.
  absl::Status Assign(const std::vector<StartPosition>& positions);

  // Appends up to `max_records` records to `out`, returning when the batch is full or `timeout`
  // has passed (OK with what arrived, possibly nothing), or at the first consumer error.
  absl::Status Poll(size_t max_records, absl::Duration timeout, std::vector<Record>* out);

  // The broker's (low, high) watermarks, asking the broker.
  absl::StatusOr<std::pair<int64_t, int64_t>> QueryWatermarks(const TopicPartition& tp,
                                                              absl::Duration timeout);

  // For each partition, the first offset whose record timestamp is >= `timestamp_ms`, or -1 when
  // no record is that recent (start at the log end). Asks the broker.
  absl::StatusOr<std::vector<int64_t>> OffsetsForTime(const std::vector<TopicPartition>& partitions,
                                                      int64_t timestamp_ms, absl::Duration timeout);

  // The (low, high) watermarks librdkafka last saw in fetch responses, without asking the broker:
  // cheap enough to refresh lag metrics every batch. (-1, -1) until the first fetch.
  std::pair<int64_t, int64_t> CachedWatermarks(const TopicPartition& tp);

  // The number of partitions of `topic`, from cluster metadata. NOT_FOUND if it does not exist.
  absl::StatusOr<int32_t> PartitionCount(const std::string& topic, absl::Duration timeout);

  void Close();

 private:
  explicit PartitionConsumer(std::unique_ptr<RdKafka::KafkaConsumer> consumer);

  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  rd_kafka_queue_t* queue_;                    // the consumer queue, polled in batches
  std::vector<rd_kafka_message_t*> messages_;  // Poll's scratch space
  bool closed_ = false;
};

}  // namespace tongka::event_log

#endif  // TONGKA_LIBS_EVENT_LOG_PARTITION_CONSUMER_H_
