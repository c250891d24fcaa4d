// Kafka client configuration with Tongka's safety defaults applied in one place.
//
// librdkafka 2.0.2's defaults are unsafe for money (auto-commit, auto offset store, acks=1 without
// idempotence, silent offset reset to "latest"). Every producer and consumer in Tongka is built
// from these functions, which set the safe values explicitly and then apply caller overrides.
// Overrides of the safety properties themselves are refused, so a typo in a service's flags cannot
// quietly turn idempotence off.
//
// Thread-safety: pure functions. Failure: an unknown or invalid property yields INVALID_ARGUMENT
// naming the property.
//
// Example:
//   KafkaClientConfig config{.bootstrap_servers = "127.0.0.1:9092"};
//   absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf = BuildProducerConf(config, nullptr);
#ifndef TONGKA_LIBS_EVENT_LOG_KAFKA_CONFIG_H_
#define TONGKA_LIBS_EVENT_LOG_KAFKA_CONFIG_H_

#include <librdkafka/rdkafkacpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tongka::event_log {

struct KafkaClientConfig {
  // Comma-separated host:port list. Required.
  std::string bootstrap_servers;
  // client.id reported to the broker; shows up in broker logs and quotas.
  std::string client_id = "tongka";
  // TLS to the brokers (Strimzi's TLS listener with client authentication): PEM paths of the
  // cluster CA, and of this client's certificate and key. All empty: plaintext (local, tests).
  // A CA alone: TLS without a client certificate. A certificate needs its key and vice versa.
  std::string tls_ca_path;
  std::string tls_cert_path;
  std::string tls_key_path;
  // Extra librdkafka properties (performance tuning: linger.ms, batch.size, fetch.wait.max.ms …).
  // Safety properties (see kProtectedProperties in the .cc) cannot be overridden here.
  std::map<std::string, std::string> overrides;
};

// The producer: enable.idempotence=true, acks=all, partitioner=murmur2_random (Java-compatible,
// so co-partitioned topics agree with any Kafka client), bounded retries with no reordering.
// `dr_cb` (may be null) receives delivery reports; the Conf does not own it.
absl::StatusOr<std::unique_ptr<RdKafka::Conf>> BuildProducerConf(const KafkaClientConfig& config,
                                                                 RdKafka::DeliveryReportCb* dr_cb);

// The consumer: no auto commit, no auto offset store, auto.offset.reset=error (a lost offset must
// fail loudly, never skip taps), isolation.level=read_committed. Tongka assigns partitions
// statically and keeps offsets in RocksDB, so group.id only names the consumer for monitoring.
absl::StatusOr<std::unique_ptr<RdKafka::Conf>> BuildConsumerConf(const KafkaClientConfig& config,
                                                                 const std::string& group_id);

// Maps a librdkafka error to an absl::Status by Abseil's rule: RESOURCE_EXHAUSTED for a full local
// queue (back off), UNAVAILABLE for broker/transport trouble (retry), NOT_FOUND for unknown topics,
// INVALID_ARGUMENT for records Kafka will never take, INTERNAL otherwise. `context` prefixes the
// message ("produce to tongka.txn: ...").
absl::Status KafkaErrorToStatus(RdKafka::ErrorCode code, absl::string_view context);

// The partition count of `topic`, asked of the cluster through `handle` (a producer's or a
// consumer's). NOT_FOUND when the topic does not exist; UNAVAILABLE when no broker answers.
absl::StatusOr<int32_t> TopicPartitionCount(RdKafka::Handle* handle, const std::string& topic,
                                            absl::Duration timeout);

}  // namespace tongka::event_log

#endif  // TONGKA_LIBS_EVENT_LOG_KAFKA_CONFIG_H_
