#include "services/settlement/settlement_config.h"

#include "absl/strings/str_cat.h"
#include "libs/service/common_flags.h"
#include "services/settlement/settlement_rules.h"

namespace tongka::settlement {

absl::Status SettlementConfig::Validate() const {
  // The kit's flags (Kafka, state dir, metrics address, replica k of N), checked by the kit.
  if (absl::Status common = service::CommonPartOf(*this).Validate(); !common.ok()) return common;
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
