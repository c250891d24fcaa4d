// The flags every Tongka service has (Kafka, state directory, metrics address, replica index and
// count) and the CommonConfig they fill. A service's own *_flags.cc defines only its own flags and
// copies a CommonConfig into its typed config. The gRPC address and authentication flags, which
// only services with an API have, are in grpc_flags.h.
//
// Flags (names are the deployment's contract: deploy/k8s and tools/ scripts pass them):
//   --kafka_bootstrap   Kafka bootstrap servers, host:port[,host:port]. Required.
//   --kafka_ca          Kafka TLS: the cluster CA (PEM). Empty: plaintext Kafka.
//   --kafka_cert        Kafka TLS: this client's certificate (PEM); with --kafka_key and
//   --kafka_key         --kafka_ca.
//   --state_dir         RocksDB directory of this replica. Required.
//   --metrics_host      Address of /metrics, /healthz, /readyz (default 0.0.0.0).
//   --metrics_port      Port of the same; 0 = any free port, -1 = off (default 9100).
//   --replica_index     This replica's index k (owns the partitions p % N == k), [0, N).
//   --replica_count     Replica count N, [1, 1024].
//
// Thread-safety: call after absl::ParseCommandLine, from main (flags are process globals).
// Failure behaviour: CommonConfigFromFlags() and CommonConfig::Validate() return INVALID_ARGUMENT
// whose message starts with the flag it is about and says the rule ("--state_dir: required").
// Nothing here exits the process; main decides.
//
// Example:
//   absl::ParseCommandLine(argc, argv);
//   absl::StatusOr<tongka::service::CommonConfig> common =
//       tongka::service::CommonConfigFromFlags();
//   if (!common.ok()) { LOG(ERROR) << common.status(); return 2; }
//   config.kafka_bootstrap = common->kafka_bootstrap;
#ifndef TONGKA_LIBS_SERVICE_COMMON_FLAGS_H_
#define TONGKA_LIBS_SERVICE_COMMON_FLAGS_H_

#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tongka::service {

inline constexpr int32_t kReplicaCountMax = 1024;

struct CommonConfig {
  // Kafka bootstrap servers (host:port,...). Required.
  std::string kafka_bootstrap;
  // Kafka TLS files: the cluster CA, and this client's certificate and key. The certificate and
  // the key go together and need the CA; all empty means plaintext Kafka.
  std::string kafka_ca_path;
  std::string kafka_cert_path;
  std::string kafka_key_path;
  // RocksDB directory of this replica. Required.
  std::string state_dir;
  // Where /metrics, /healthz and /readyz listen. Port 0 picks a free port, -1 disables them.
  std::string metrics_host = "0.0.0.0";
  int32_t metrics_port = 9100;
  // Replica k of N: the replica owns the partitions p % N == k. N in [1, kReplicaCountMax],
  // k in [0, N).
  int32_t replica_index = 0;
  int32_t replica_count = 1;

  // OK, or INVALID_ARGUMENT naming the first bad flag and its rule.
  absl::Status Validate() const;
};

// The flags' values as they are, not validated (for a one-shot mode that needs only some of
// them, such as a store inspection that reads --state_dir alone).
CommonConfig ReadCommonFlags();

// ReadCommonFlags(), validated.
absl::StatusOr<CommonConfig> CommonConfigFromFlags();

namespace internal {
template <typename T, typename = void>
struct HasReplicaIndex : std::false_type {};
template <typename T>
struct HasReplicaIndex<T, std::void_t<decltype(T::replica_index)>> : std::true_type {};
}  // namespace internal

// A service's typed config keeps CommonConfig's fields under the same names (its tests and tools
// set them directly). These copy them across in one place: into the config from the flags, and
// out of it for the service kit's Runtime. A config without `replica_index` (ingest runs as one
// replica) is replica 0.
template <typename ServiceConfig>
void CopyCommonInto(const CommonConfig& common, ServiceConfig* config) {
  config->kafka_bootstrap = common.kafka_bootstrap;
  config->kafka_ca_path = common.kafka_ca_path;
  config->kafka_cert_path = common.kafka_cert_path;
  config->kafka_key_path = common.kafka_key_path;
  config->state_dir = common.state_dir;
  config->metrics_host = common.metrics_host;
  config->metrics_port = common.metrics_port;
  if constexpr (internal::HasReplicaIndex<ServiceConfig>::value) {
    config->replica_index = common.replica_index;
  }
  config->replica_count = common.replica_count;
}

template <typename ServiceConfig>
CommonConfig CommonPartOf(const ServiceConfig& config) {
  CommonConfig common;
  common.kafka_bootstrap = config.kafka_bootstrap;
  common.kafka_ca_path = config.kafka_ca_path;
  common.kafka_cert_path = config.kafka_cert_path;
  common.kafka_key_path = config.kafka_key_path;
  common.state_dir = config.state_dir;
  common.metrics_host = config.metrics_host;
  common.metrics_port = config.metrics_port;
  if constexpr (internal::HasReplicaIndex<ServiceConfig>::value) {
    common.replica_index = config.replica_index;
  }
  common.replica_count = config.replica_count;
  return common;
}

}  // namespace tongka::service

#endif  // TONGKA_LIBS_SERVICE_COMMON_FLAGS_H_
