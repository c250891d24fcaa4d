#include "libs/event_log/partition_consumer.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"

namespace tongka::event_log {

absl::StatusOr<std::unique_ptr<PartitionConsumer>> PartitionConsumer::Create(
    const KafkaClientConfig& config, const std::string& group_id) {
  absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf = BuildConsumerConf(config, group_id);
  if (!conf.ok()) return conf.status();
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf->get(), error));
  if (consumer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka consumer create failed: ", error));
  }
  return std::unique_ptr<PartitionConsumer>(new PartitionConsumer(std::move(consumer)));
}

PartitionConsumer::PartitionConsumer(std::unique_ptr<RdKafka::KafkaConsumer> consumer)
    : consumer_(std::move(consumer)) {}

PartitionConsumer::~PartitionConsumer() { Close(); }

void PartitionConsumer::Close() {
  if (closed_) return;
  closed_ = true;
  consumer_->close();
}

absl::Status PartitionConsumer::Assign(const std::vector<StartPosition>& positions) {
  std::vector<RdKafka::TopicPartition*> partitions;
  partitions.reserve(positions.size());
  for (const StartPosition& p : positions) {
    CHECK_GE(p.next_offset, 0) << p.topic_partition.topic << "/" << p.topic_partition.partition;
    partitions.push_back(RdKafka::TopicPartition::create(
        p.topic_partition.topic, p.topic_partition.partition, p.next_offset));
  }
  RdKafka::ErrorCode code = consumer_->assign(partitions);
  RdKafka::TopicPartition::destroy(partitions);
  return KafkaErrorToStatus(code, "kafka assign");
}

absl::Status PartitionConsumer::Poll(size_t max_records, absl::Duration timeout,
                                     std::vector<Record>* out) {
  // Fill the batch until it is full or `timeout` has passed. Returning as soon as librdkafka's
  // local queue runs dry would make the caller commit tiny batches and then wait a whole fetch
  // round trip for the next one.
  const absl::Time deadline = absl::Now() + timeout;
  for (size_t n = 0; n < max_records; ++n) {
    int wait_ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    std::unique_ptr<RdKafka::Message> message(consumer_->consume(wait_ms));
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR: {
        Record& record = out->emplace_back();
        record.topic = message->topic_name();
        record.partition = message->partition();
        record.offset = message->offset();
        if (message->key() != nullptr) record.key = *message->key();
        record.value.assign(static_cast<const char*>(message->payload()), message->len());
        record.timestamp_ms = message->timestamp().timestamp;
        break;
      }
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__PARTITION_EOF:
        return absl::OkStatus();
      case RdKafka::ERR__AUTO_OFFSET_RESET:
      case RdKafka::ERR_OFFSET_OUT_OF_RANGE:
        return absl::OutOfRangeError(
            absl::StrCat("kafka consume ", message->topic_name(), "/", message->partition(),
                         ": stored offset is outside the log (", message->errstr(),
                         "); the state must be rebuilt from the log, never skipped"));
      default:
        return KafkaErrorToStatus(message->err(),
                                  absl::StrCat("kafka consume: ", message->errstr()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<int64_t, int64_t>> PartitionConsumer::QueryWatermarks(
    const TopicPartition& tp, absl::Duration timeout) {
  int64_t low = -1;
  int64_t high = -1;
  RdKafka::ErrorCode code = consumer_->query_watermark_offsets(
      tp.topic, tp.partition, &low, &high, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (code != RdKafka::ERR_NO_ERROR) {
    return KafkaErrorToStatus(code, absl::StrCat("watermarks of ", tp.topic, "/", tp.partition));
  }
  return std::make_pair(low, high);
}

std::pair<int64_t, int64_t> PartitionConsumer::CachedWatermarks(const TopicPartition& tp) {
  int64_t low = -1;
  int64_t high = -1;
  if (consumer_->get_watermark_offsets(tp.topic, tp.partition, &low, &high) !=
      RdKafka::ERR_NO_ERROR) {
    return {-1, -1};
  }
  return {low, high};
}

absl::StatusOr<int32_t> PartitionConsumer::PartitionCount(const std::string& topic,
                                                          absl::Duration timeout) {
  std::string error;
  std::unique_ptr<RdKafka::Topic> handle(
      RdKafka::Topic::create(consumer_.get(), topic, nullptr, error));
  if (handle == nullptr) return absl::InternalError(absl::StrCat("topic handle: ", error));
  RdKafka::Metadata* raw = nullptr;
  RdKafka::ErrorCode code = consumer_->metadata(
      false, handle.get(), &raw, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  if (code != RdKafka::ERR_NO_ERROR) {
    return KafkaErrorToStatus(code, absl::StrCat("metadata of ", topic));
  }
  for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
    if (t->topic() != topic) continue;
    if (t->err() != RdKafka::ERR_NO_ERROR) {
      return KafkaErrorToStatus(t->err(), absl::StrCat("metadata of ", topic));
    }
    return static_cast<int32_t>(t->partitions()->size());
  }
  return absl::NotFoundError(absl::StrCat("topic ", topic, " does not exist"));
}

}  // namespace tongka::event_log
