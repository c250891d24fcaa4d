#include "services/settlement/settlement_config.h"

#include "absl/strings/str_cat.h"
#include "services/settlement/settlement_rules.h"

namespace tongka::settlement {

absl::Status SettlementConfig::Validate() const {
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
  if (window_cut % absl::Minutes(1) != absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "window_cut: must be a whole minute in (0, 24h], got ", absl::FormatDuration(window_cut)));
  }
  // The rules as given (unset ones defaulted), so a typo stops start-up before Kafka is touched.
  absl::StatusOr<RulesPeriod> rules = RulesPeriod::Make("", GenesisRules(), "", 0);
  if (!rules.ok()) {
    const absl::string_view message = rules.status().message();
    if (message.substr(0, 4) == "zone") {
      return absl::InvalidArgumentError(absl::StrCat("window_", message));
    }
    if (message.substr(0, 11) == "cut_minutes") {
      return absl::InvalidArgumentError(
          absl::StrCat("window_cut: must be a whole minute in (0, 24h], got ",
                       absl::FormatDuration(window_cut)));
    }
    return rules.status();
  }
  if (close_grace < absl::ZeroDuration() || close_grace > absl::Hours(24 * 7)) {
    return absl::InvalidArgumentError("close_grace: must be in [0, 7 days]");
  }
  absl::Status grpc_ok = server::ValidateGrpcServerConfig(grpc);
  if (!grpc_ok.ok()) return grpc_ok;
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
    return absl::InvalidArgumentError("command_timeout: must be in [100 ms, 10 min]");
  }
  return absl::OkStatus();
}

v1::SettlementRules SettlementConfig::GenesisRules() const {
  return MakeRules(window_zone.empty() ? "Asia/Shanghai" : window_zone,
                   window_cut == absl::ZeroDuration() ? absl::Hours(24) : window_cut,
                   fee_schedule.empty() ? "default:50" : fee_schedule);
}

}  // namespace tongka::settlement
