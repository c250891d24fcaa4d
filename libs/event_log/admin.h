// Topic administration: create Tongka's topics with their partition counts and configs.
//
// Used by the local platform runner, tests and benchmarks. In production the topics are Strimzi
// KafkaTopic resources (deploy/k8s), and services only check that they exist.
//
// Thread-safety: stateless; each call opens and closes its own admin client.
// Failure: INVALID_ARGUMENT for a bad spec; UNAVAILABLE when the cluster does not answer within the
// timeout; FAILED_PRECONDITION when a topic exists with a different partition count (co-partitioned
// topics must agree, and a silent mismatch would split a card's events across partition numbers).
//
// Example:
//   EnsureTopics(config, {{.name = "tongka.txn", .partitions = 8}}, absl::Seconds(30));
#ifndef TONGKA_LIBS_EVENT_LOG_ADMIN_H_
#define TONGKA_LIBS_EVENT_LOG_ADMIN_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/event_log/kafka_config.h"

namespace tongka::event_log {

struct TopicSpec {
  std::string name;
  int32_t partitions = 1;
  int32_t replication_factor = 1;
  std::map<std::string, std::string> configs;  // e.g. {"retention.ms", "-1"}
};

// Creates the topics that do not exist yet; checks the partition count of those that do.
absl::Status EnsureTopics(const KafkaClientConfig& config, const std::vector<TopicSpec>& topics,
                          absl::Duration timeout);

}  // namespace tongka::event_log

#endif  // TONGKA_LIBS_EVENT_LOG_ADMIN_H_
