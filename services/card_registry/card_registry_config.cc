#include "services/card_registry/card_registry_config.h"

#include "absl/strings/str_cat.h"
#include "libs/service/common_flags.h"

namespace tongka::card_registry {

absl::Status CardRegistryConfig::Validate() const {
  // The kit's flags (Kafka, state dir, metrics address, replica k of N), checked by the kit.
  if (absl::Status common = service::CommonPartOf(*this).Validate(); !common.ok()) return common;
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
