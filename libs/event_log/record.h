// Record: one Kafka message as Tongka's consumers see it, plus the partition/offset vocabulary.
//
// A Record owns copies of its key and value, so it outlives the librdkafka message it came from.
// Offsets are Kafka's: `offset` is this record's position; a consumer's stored position is the
// *next* offset to read (offset + 1), as Kafka's committed offsets are.
#ifndef TONGKA_LIBS_EVENT_LOG_RECORD_H_
#define TONGKA_LIBS_EVENT_LOG_RECORD_H_

#include <cstdint>
#include <string>

namespace tongka::event_log {

struct Record {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::string key;
  std::string value;
  int64_t timestamp_ms = 0;  // the broker's or producer's timestamp, for lag in seconds
};

struct TopicPartition {
  std::string topic;
  int32_t partition = -1;

  bool operator==(const TopicPartition& other) const {
    return partition == other.partition && topic == other.topic;
  }
  bool operator<(const TopicPartition& other) const {
    return topic != other.topic ? topic < other.topic : partition < other.partition;
  }
  template <typename H>
  friend H AbslHashValue(H h, const TopicPartition& tp) {
    return H::combine(std::move(h), tp.topic, tp.partition);
  }
};

}  // namespace tongka::event_log

#endif  // TONGKA_LIBS_EVENT_LOG_RECORD_H_
