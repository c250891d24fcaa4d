#include "libs/event_log/partition_consumer.h"

#include <glog/logging.h>
#include <librdkafka/rdkafka.h>

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
    : consumer_(std::move(consumer)), queue_(rd_kafka_queue_get_consumer(consumer_->c_ptr())) {}

PartitionConsumer::~PartitionConsumer() { Close(); }

void PartitionConsumer::Close() {
  if (closed_) return;
  closed_ = true;
  rd_kafka_queue_destroy(queue_);
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
  // One call fills the batch until it is full or `timeout` has passed: returning as soon as
  // librdkafka's local queue runs dry would make the caller commit tiny batches and then wait a
  // whole fetch round trip for the next one. The C batch call also avoids a C++ message wrapper
  // per record; Records take ownership of the messages and view their bytes without copying.
  messages_.resize(max_records);
  ssize_t count = rd_kafka_consume_batch_queue(
      queue_, static_cast<int>(absl::ToInt64Milliseconds(timeout)), messages_.data(), max_records);
  if (count < 0) {
    return KafkaErrorToStatus(static_cast<RdKafka::ErrorCode>(rd_kafka_last_error()),
                              "kafka consume");
  }
  absl::Status status = absl::OkStatus();
  out->reserve(out->size() + static_cast<size_t>(count));
  for (ssize_t i = 0; i < count; ++i) {
    rd_kafka_message_t* message = messages_[i];
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (status.ok()) {
        out->push_back(Record::FromKafka(message));
        continue;
      }
    } else if (status.ok() && message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      // Records after an error are dropped (not applied, so read again after a restart).
      const char* topic = message->rkt != nullptr ? rd_kafka_topic_name(message->rkt) : "?";
      std::string detail = rd_kafka_message_errstr(message);
      if (message->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
          message->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
        status = absl::OutOfRangeError(
            absl::StrCat("kafka consume ", topic, "/", message->partition,
                         ": stored offset is outside the log (", detail,
                         "); the state must be rebuilt from the log, never skipped"));
      } else {
        status = KafkaErrorToStatus(static_cast<RdKafka::ErrorCode>(message->err),
                                    absl::StrCat("kafka consume: ", detail));
      }
    }
    rd_kafka_message_destroy(message);
  }
  return status;
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

absl::StatusOr<std::vector<int64_t>> PartitionConsumer::OffsetsForTime(
    const std::vector<TopicPartition>& partitions, int64_t timestamp_ms, absl::Duration timeout) {
  std::vector<RdKafka::TopicPartition*> query;
  for (const TopicPartition& tp : partitions) {
    query.push_back(RdKafka::TopicPartition::create(tp.topic, tp.partition, timestamp_ms));
  }
  RdKafka::ErrorCode code =
      consumer_->offsetsForTimes(query, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  absl::Status status = KafkaErrorToStatus(code, "offsets for time");
  std::vector<int64_t> offsets;
  for (RdKafka::TopicPartition* tp : query) {
    if (status.ok() && tp->err() != RdKafka::ERR_NO_ERROR) {
      status = KafkaErrorToStatus(
          tp->err(), absl::StrCat("offsets for time of ", tp->topic(), "/", tp->partition()));
    }
    offsets.push_back(tp->offset() < 0 ? -1 : tp->offset());
  }
  RdKafka::TopicPartition::destroy(query);
  if (!status.ok()) return status;
  return offsets;
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
  return TopicPartitionCount(consumer_.get(), topic, timeout);
}

}  // namespace tongka::event_log
