#include "libs/event_log/admin.h"

#include <librdkafka/rdkafka.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "libs/event_log/partition_consumer.h"

namespace tongka::event_log {
namespace {

struct KafkaHandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};

absl::Status CheckPartitionCount(const KafkaClientConfig& config, const TopicSpec& spec,
                                 absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<PartitionConsumer>> consumer =
      PartitionConsumer::Create(config, "tongka-admin");
  if (!consumer.ok()) return consumer.status();
  absl::StatusOr<int32_t> count = (*consumer)->PartitionCount(spec.name, timeout);
  if (!count.ok()) return count.status();
  if (*count != spec.partitions) {
    return absl::FailedPreconditionError(absl::StrCat("topic ", spec.name, " exists with ", *count,
                                                      " partitions, expected ", spec.partitions));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EnsureTopics(const KafkaClientConfig& config, const std::vector<TopicSpec>& topics,
                          absl::Duration timeout) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", config.bootstrap_servers.c_str(), error,
                        sizeof(error)) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return absl::InvalidArgumentError(absl::StrCat("kafka bootstrap.servers: ", error));
  }
  std::unique_ptr<rd_kafka_t, KafkaHandleDeleter> rk(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error)));
  if (rk == nullptr) return absl::InternalError(absl::StrCat("kafka admin client: ", error));

  std::vector<rd_kafka_NewTopic_t*> new_topics;
  absl::Status status = absl::OkStatus();
  for (const TopicSpec& spec : topics) {
    rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(
        spec.name.c_str(), spec.partitions, spec.replication_factor, error, sizeof(error));
    if (topic == nullptr) {
      status = absl::InvalidArgumentError(absl::StrCat("topic ", spec.name, ": ", error));
      break;
    }
    new_topics.push_back(topic);
    for (const auto& [name, value] : spec.configs) {
      rd_kafka_NewTopic_set_config(topic, name.c_str(), value.c_str());
    }
  }
  if (status.ok()) {
    std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk.get()));
    rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_ANY);
    rd_kafka_AdminOptions_set_operation_timeout(
        options, static_cast<int>(absl::ToInt64Milliseconds(timeout)), error, sizeof(error));
    rd_kafka_CreateTopics(rk.get(), new_topics.data(), new_topics.size(), options, queue.get());
    rd_kafka_AdminOptions_destroy(options);
    std::unique_ptr<rd_kafka_event_t, EventDeleter> event(rd_kafka_queue_poll(
        queue.get(), static_cast<int>(absl::ToInt64Milliseconds(timeout)) + 1000));
    if (event == nullptr) {
      status = absl::UnavailableError("kafka create topics: no answer from the cluster");
    } else if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = absl::UnavailableError(
          absl::StrCat("kafka create topics: ", rd_kafka_event_error_string(event.get())));
    } else {
      const rd_kafka_CreateTopics_result_t* result =
          rd_kafka_event_CreateTopics_result(event.get());
      size_t count = 0;
      const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
      for (size_t i = 0; i < count && status.ok(); ++i) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
        if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          status = absl::InternalError(
              absl::StrCat("create topic ", rd_kafka_topic_result_name(results[i]), ": ",
                           rd_kafka_topic_result_error_string(results[i])));
        }
      }
    }
  }
  rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
  if (!status.ok()) return status;
  // Existing topics (and newly created ones, once metadata converges) must have the expected
  // partition count.
  for (const TopicSpec& spec : topics) {
    absl::Status check = CheckPartitionCount(config, spec, timeout);
    if (!check.ok()) return check;
  }
  return absl::OkStatus();
}

}  // namespace tongka::event_log
