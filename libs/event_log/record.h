// Record: one Kafka message as Tongka's consumers see it, plus the partition/offset vocabulary.
//
// A Record views its topic, key and value without copying them: it owns the librdkafka message
// they live in (or, for records built in code, heap copies), so the views stay valid exactly as
// long as the Record, including across moves. Records are move-only.
//
// Lifetime rule: a Record that came from a consumer must be destroyed before that consumer
// (librdkafka's shutdown waits for every message it handed out). Keep a Clone() to hold one longer.
// Offsets are Kafka's: `offset` is this record's position; a consumer's stored position is the
// *next* offset to read (offset + 1), as Kafka's committed offsets are.
#ifndef TONGKA_LIBS_EVENT_LOG_RECORD_H_
#define TONGKA_LIBS_EVENT_LOG_RECORD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

typedef struct rd_kafka_message_s rd_kafka_message_t;

namespace tongka::event_log {

class Record {
 public:
  Record() = default;
  Record(Record&&) = default;
  Record& operator=(Record&&) = default;

  // A record that owns copies of its bytes (tests, tools, replays from files).
  static Record Owned(std::string topic, int32_t partition, int64_t offset, std::string key,
                      std::string value, int64_t timestamp_ms = 0);
  // A record that takes ownership of a consumed librdkafka message (no error set).
  static Record FromKafka(rd_kafka_message_t* message);

  // An owned copy, independent of any consumer.
  Record Clone() const {
    return Owned(std::string(topic), partition, offset, std::string(key), std::string(value),
                 timestamp_ms);
  }

  absl::string_view topic;
  int32_t partition = -1;
  int64_t offset = -1;
  absl::string_view key;
  absl::string_view value;
  int64_t timestamp_ms = 0;  // the broker's or producer's timestamp, for lag in seconds

 private:
  struct MessageDeleter {
    void operator()(rd_kafka_message_t* message) const;
  };
  std::unique_ptr<rd_kafka_message_t, MessageDeleter> message_;
  // topic, key, value of an owned record; on the heap so that moving the Record keeps them put.
  std::unique_ptr<std::string[]> owned_;
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
