#include "libs/event_log/record.h"

#include <librdkafka/rdkafka.h>

#include "libs/event_log/ownership.h"

namespace tongka::event_log {

Record Record::Owned(std::string topic, int32_t partition, int64_t offset, std::string key,
                     std::string value, int64_t timestamp_ms) {
  Record record;
  record.owned_ = std::make_unique<std::string[]>(3);
  record.owned_[0] = std::move(topic);
  record.owned_[1] = std::move(key);
  record.owned_[2] = std::move(value);
  record.topic = record.owned_[0];
  record.key = record.owned_[1];
  record.value = record.owned_[2];
  record.partition = partition;
  record.offset = offset;
  record.timestamp_ms = timestamp_ms;
  return record;
}

Record Record::FromKafka(rd_kafka_message_t* message) {
  Record record;
  record.message_.reset(message);
  // The topic name lives in the topic object, which the message holds a reference to.
  record.topic = rd_kafka_topic_name(message->rkt);
  record.partition = message->partition;
  record.offset = message->offset;
  if (message->key != nullptr) {
    record.key = absl::string_view(static_cast<const char*>(message->key), message->key_len);
  }
  if (message->payload != nullptr) {
    record.value = absl::string_view(static_cast<const char*>(message->payload), message->len);
  }
  record.timestamp_ms = rd_kafka_message_timestamp(message, nullptr);
  return record;
}

int32_t PartitionForKey(absl::string_view key, int32_t partition_count) {
  // librdkafka's own function, so the answer is the producer's by construction; it reads
  // neither the topic nor the opaques.
  return rd_kafka_msg_partitioner_murmur2(nullptr, key.data(), key.size(), partition_count, nullptr,
                                          nullptr);
}

void Record::MessageDeleter::operator()(rd_kafka_message_t* message) const {
  rd_kafka_message_destroy(message);
}

}  // namespace tongka::event_log
