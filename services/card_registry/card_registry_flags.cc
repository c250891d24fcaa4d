#include "services/card_registry/card_registry_flags.h"

#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/service/common_flags.h"
#include "libs/service/grpc_flags.h"

// The registry's own flags. The common ones (--kafka_*, --state_dir, --metrics_*, --replica_*)
// and the gRPC ones (--grpc_*, --auth, --tls_*, --dev_token_secret*) are libs/service's.
ABSL_FLAG(std::string, peers, "", "Every replica's gRPC host:port, comma-separated, index order.");
ABSL_FLAG(std::string, holder_keys, "",
          "Holder key file, one \"<city>:<hex secret>\" line per issuer city. Required unless "
          "--auth=dev.");
ABSL_FLAG(absl::Duration, command_timeout, absl::Seconds(30),
          "Longest wait for a command to be written and decided.");
ABSL_FLAG(int32_t, batch_max_records, 5000, "Records per RocksDB commit of the ledger loop.");

namespace tongka::card_registry {

absl::StatusOr<CardRegistryConfig> ConfigFromFlags() {
  absl::StatusOr<service::CommonConfig> common = service::CommonConfigFromFlags();
  if (!common.ok()) return common.status();
  absl::StatusOr<server::GrpcServerConfig> grpc = service::GrpcConfigFromFlags();
  if (!grpc.ok()) return grpc.status();
  CardRegistryConfig config;
  service::CopyCommonInto(*common, &config);
  config.grpc = *std::move(grpc);
  config.peers = absl::StrSplit(absl::GetFlag(FLAGS_peers), ',', absl::SkipEmpty());
  config.holder_keys_path = absl::GetFlag(FLAGS_holder_keys);
  if (config.holder_keys_path.empty() && config.grpc.auth_mode != server::AuthMode::kDevToken) {
    return absl::InvalidArgumentError(
        "--auth=mtls needs --holder_keys (the issuer cities' holder tokenization secrets)");
  }
  config.command_timeout = absl::GetFlag(FLAGS_command_timeout);
  if (config.command_timeout < absl::Milliseconds(100) ||
      config.command_timeout > absl::Minutes(10)) {
    return absl::InvalidArgumentError(absl::StrCat("--command_timeout: must be in [100ms, 10m]"));
  }
  config.batch_max_records = absl::GetFlag(FLAGS_batch_max_records);
  if (config.batch_max_records < 1 || config.batch_max_records > 100000) {
    return absl::InvalidArgumentError("--batch_max_records: must be in [1, 100000]");
  }
  return config;
}

}  // namespace tongka::card_registry
