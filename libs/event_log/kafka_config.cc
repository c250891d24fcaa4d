#include "libs/event_log/kafka_config.h"

#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tongka::event_log {
namespace {

// Properties whose values carry Tongka's correctness guarantees; overrides must not touch them.
const std::set<std::string>& ProtectedProperties() {
  static const auto* const kProtected = new std::set<std::string>{
      "enable.idempotence",
      "acks",
      "request.required.acks",
      "partitioner",
      "enable.auto.commit",
      "enable.auto.offset.store",
      "auto.offset.reset",
      "isolation.level",
      "max.in.flight.requests.per.connection",
  };
  return *kProtected;
}

absl::Status Set(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
  std::string error;
  if (conf.set(name, value, error) != RdKafka::Conf::CONF_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("kafka property '", name, "'='", value, "' rejected: ", error));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RdKafka::Conf>> BuildConf(
    const KafkaClientConfig& config, const std::map<std::string, std::string>& safe) {
  if (config.bootstrap_servers.empty()) {
    return absl::InvalidArgumentError("kafka bootstrap_servers: required, got empty");
  }
  if (config.tls_cert_path.empty() != config.tls_key_path.empty()) {
    return absl::InvalidArgumentError(
        "kafka tls_cert_path and tls_key_path: set both (client authentication) or neither");
  }
  if (!config.tls_cert_path.empty() && config.tls_ca_path.empty()) {
    return absl::InvalidArgumentError(
        "kafka tls_ca_path: required when a client certificate is set");
  }
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  absl::Status status = Set(*conf, "bootstrap.servers", config.bootstrap_servers);
  if (status.ok()) status = Set(*conf, "client.id", config.client_id);
  if (status.ok() && !config.tls_ca_path.empty()) {
    status = Set(*conf, "security.protocol", "ssl");
    if (status.ok()) status = Set(*conf, "ssl.ca.location", config.tls_ca_path);
    if (status.ok() && !config.tls_cert_path.empty()) {
      status = Set(*conf, "ssl.certificate.location", config.tls_cert_path);
      if (status.ok()) status = Set(*conf, "ssl.key.location", config.tls_key_path);
    }
  }
  for (const auto& [name, value] : safe) {
    if (status.ok()) status = Set(*conf, name, value);
  }
  for (const auto& [name, value] : config.overrides) {
    if (!status.ok()) break;
    if (ProtectedProperties().count(name) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("kafka property '", name, "' is a safety setting and cannot be overridden"));
    }
    status = Set(*conf, name, value);
  }
  if (!status.ok()) return status;
  return conf;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RdKafka::Conf>> BuildProducerConf(const KafkaClientConfig& config,
                                                                 RdKafka::DeliveryReportCb* dr_cb) {
  absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf =
      BuildConf(config, {
                            {"enable.idempotence", "true"},
                            {"acks", "all"},
                            {"partitioner", "murmur2_random"},
                            {"max.in.flight.requests.per.connection", "5"},
                            // Topics are created by the deployment: asking for a missing one
                            // (a typo, a service started before its topics) must not create it
                            // with the broker's defaults.
                            {"allow.auto.create.topics", "false"},
                            // Throughput defaults that the benchmarks justify; overridable.
                            {"linger.ms", "5"},
                            {"batch.num.messages", "10000"},
                            {"queue.buffering.max.messages", "1000000"},
                            {"compression.type", "lz4"},
                        });
  if (!conf.ok() || dr_cb == nullptr) return conf;
  std::string error;
  if ((*conf)->set("dr_cb", dr_cb, error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(absl::StrCat("kafka dr_cb rejected: ", error));
  }
  return conf;
}

absl::StatusOr<std::unique_ptr<RdKafka::Conf>> BuildConsumerConf(const KafkaClientConfig& config,
                                                                 const std::string& group_id) {
  if (group_id.empty()) {
    return absl::InvalidArgumentError("kafka group_id: required, got empty");
  }
  return BuildConf(config, {
                               {"group.id", group_id},
                               {"enable.auto.commit", "false"},
                               {"enable.auto.offset.store", "false"},
                               {"auto.offset.reset", "error"},
                               {"isolation.level", "read_committed"},
                               {"enable.partition.eof", "false"},
                               // Low fetch wait keeps small batches moving (and the mock
                               // cluster's one-batch-per-fetch limit tolerable).
                               {"fetch.wait.max.ms", "10"},
                               // librdkafka stops fetching a partition once this many of its
                               // messages are queued locally (default 100,000). A consumer that
                               // applies in batches of 10,000 from 8 partitions then found the
                               // queue dry for 100 ms at a time, 10-25 times per million
                               // events (tools/bench:settlement: 180k -> 320k tx/s). Memory stays
                               // bounded by queued.max.messages.kbytes (64 MiB per consumer).
                               {"queued.min.messages", "1000000"},
                           });
}

absl::Status KafkaErrorToStatus(RdKafka::ErrorCode code, absl::string_view context) {
  switch (code) {
    case RdKafka::ERR_NO_ERROR:
      return absl::OkStatus();
    case RdKafka::ERR__QUEUE_FULL:
      return absl::ResourceExhaustedError(
          absl::StrCat(context, ": local produce queue full, retry later"));
    case RdKafka::ERR__UNKNOWN_TOPIC:
    case RdKafka::ERR_UNKNOWN_TOPIC_OR_PART:
      return absl::NotFoundError(absl::StrCat(context, ": ", RdKafka::err2str(code)));
    case RdKafka::ERR__MSG_TIMED_OUT:
    case RdKafka::ERR__TRANSPORT:
    case RdKafka::ERR__ALL_BROKERS_DOWN:
    case RdKafka::ERR__TIMED_OUT:
    case RdKafka::ERR_NOT_ENOUGH_REPLICAS:
    case RdKafka::ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RdKafka::ERR__PURGE_QUEUE:
    case RdKafka::ERR__PURGE_INFLIGHT:
    // Leadership moving or not yet known (a new topic, a broker restart): retry shortly.
    case RdKafka::ERR_NOT_LEADER_FOR_PARTITION:
    case RdKafka::ERR_LEADER_NOT_AVAILABLE:
      return absl::UnavailableError(absl::StrCat(context, ": ", RdKafka::err2str(code)));
    case RdKafka::ERR_MSG_SIZE_TOO_LARGE:
      return absl::InvalidArgumentError(absl::StrCat(context, ": ", RdKafka::err2str(code)));
    default:
      return absl::InternalError(absl::StrCat(context, ": ", RdKafka::err2str(code)));
  }
}

absl::StatusOr<int32_t> TopicPartitionCount(RdKafka::Handle* handle, const std::string& topic,
                                            absl::Duration timeout) {
  std::string error;
  std::unique_ptr<RdKafka::Topic> topic_handle(
      RdKafka::Topic::create(handle, topic, nullptr, error));
  if (topic_handle == nullptr) return absl::InternalError(absl::StrCat("topic handle: ", error));
  RdKafka::Metadata* raw = nullptr;
  RdKafka::ErrorCode code = handle->metadata(false, topic_handle.get(), &raw,
                                             static_cast<int>(absl::ToInt64Milliseconds(timeout)));
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
