#include "libs/service/common_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, kafka_bootstrap, "", "Kafka bootstrap servers, host:port[,host:port].");
ABSL_FLAG(std::string, kafka_ca, "", "Kafka TLS: the cluster CA (PEM); empty: plaintext Kafka.");
ABSL_FLAG(std::string, kafka_cert, "",
          "Kafka TLS: this service's client certificate (PEM); with --kafka_key and --kafka_ca.");
ABSL_FLAG(std::string, kafka_key, "", "Kafka TLS: this service's client key (PEM).");
ABSL_FLAG(std::string, state_dir, "", "RocksDB directory of this replica.");
ABSL_FLAG(std::string, metrics_host, "0.0.0.0", "Listen address of /metrics, /healthz, /readyz.");
ABSL_FLAG(int32_t, metrics_port, 9100, "Port of /metrics; 0 = any free port, -1 = off.");
ABSL_FLAG(int32_t, replica_index, 0, "This replica's index k: owns partitions p % N == k.");
ABSL_FLAG(int32_t, replica_count, 1, "Replica count N.");

namespace tongka::service {

absl::Status CommonConfig::Validate() const {
  if (kafka_bootstrap.empty()) {
    return absl::InvalidArgumentError("--kafka_bootstrap: required (Kafka host:port[,host:port])");
  }
  if (kafka_cert_path.empty() != kafka_key_path.empty()) {
    return absl::InvalidArgumentError(
        "--kafka_cert and --kafka_key: give both (Kafka client authentication) or neither");
  }
  if (!kafka_cert_path.empty() && kafka_ca_path.empty()) {
    return absl::InvalidArgumentError(
        "--kafka_cert needs --kafka_ca (the CA the Kafka brokers' certificates chain to)");
  }
  if (state_dir.empty()) return absl::InvalidArgumentError("--state_dir: required");
  if (metrics_host.empty()) {
    return absl::InvalidArgumentError("--metrics_host: required (0.0.0.0 for every interface)");
  }
  if (metrics_port < -1 || metrics_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_port: must be -1 (off) or in [0, 65535], got ", metrics_port));
  }
  if (replica_count < 1 || replica_count > kReplicaCountMax) {
    return absl::InvalidArgumentError(absl::StrCat("--replica_count: must be in [1, ",
                                                   kReplicaCountMax, "], got ", replica_count));
  }
  if (replica_index < 0 || replica_index >= replica_count) {
    return absl::InvalidArgumentError(
        absl::StrCat("--replica_index: must be in [0, --replica_count=", replica_count, "), got ",
                     replica_index));
  }
  return absl::OkStatus();
}

CommonConfig ReadCommonFlags() {
  CommonConfig config;
  config.kafka_bootstrap = absl::GetFlag(FLAGS_kafka_bootstrap);
  config.kafka_ca_path = absl::GetFlag(FLAGS_kafka_ca);
  config.kafka_cert_path = absl::GetFlag(FLAGS_kafka_cert);
  config.kafka_key_path = absl::GetFlag(FLAGS_kafka_key);
  config.state_dir = absl::GetFlag(FLAGS_state_dir);
  config.metrics_host = absl::GetFlag(FLAGS_metrics_host);
  config.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  config.replica_index = absl::GetFlag(FLAGS_replica_index);
  config.replica_count = absl::GetFlag(FLAGS_replica_count);
  return config;
}

absl::StatusOr<CommonConfig> CommonConfigFromFlags() {
  CommonConfig config = ReadCommonFlags();
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  return config;
}

}  // namespace tongka::service
