#include "services/card_registry/card_registry_config.h"

#include "absl/strings/str_cat.h"

namespace tongka::card_registry {

absl::Status CardRegistryConfig::Validate() const {
  if (kafka_bootstrap.empty()) return absl::InvalidArgumentError("kafka_bootstrap: required");
  const int tls_files = !kafka_ca_path.empty() + !kafka_cert_path.empty() + !kafka_key_path.empty();
  if (tls_files != 0 && tls_files != 3) {
    return absl::InvalidArgumentError("kafka_ca, kafka_cert, kafka_key: give all three or none");
  }
  if (state_dir.empty()) return absl::InvalidArgumentError("state_dir: required");
  if (replica_count < 1 || replica_count > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica_count: must be in [1, 1024], got ", replica_count));
  }
  if (replica_index < 0 || replica_index >= replica_count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "replica_index: must be in [0, replica_count=", replica_count, "), got ", replica_index));
  }
  if (replica_count > 1 && static_cast<int32_t>(peers.size()) != replica_count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "peers: must list all ", replica_count, " replicas' gRPC addresses, got ", peers.size()));
  }
  if (absl::Status grpc_ok = server::ValidateGrpcServerConfig(grpc); !grpc_ok.ok()) return grpc_ok;
  if (holder_keys_path.empty() && grpc.auth_mode != server::AuthMode::kDevToken) {
    return absl::InvalidArgumentError(
        "holder_keys_path: required unless the gRPC auth is dev tokens (the issuer cities' "
        "holder tokenization secrets)");
  }
  if (metrics_host.empty()) return absl::InvalidArgumentError("metrics_host: required");
  if (metrics_port < -1 || metrics_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_port: must be -1 (off) or in [0, 65535], got ", metrics_port));
  }
  if (batch_max_records < 1 || batch_max_records > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_max_records: must be in [1, 100000], got ", batch_max_records));
  }
  if (command_timeout < absl::Milliseconds(100) || command_timeout > absl::Minutes(10)) {
    return absl::InvalidArgumentError(absl::StrCat("command_timeout: must be in [100ms, 10m], got ",
                                                   absl::FormatDuration(command_timeout)));
  }
  return absl::OkStatus();
}

}  // namespace tongka::card_registry
