#include "services/settlement/settlement_flags.h"

#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "libs/service/common_flags.h"
#include "libs/service/grpc_flags.h"

// Settlement's own flags. The common ones (--kafka_*, --state_dir, --metrics_*, --replica_*) and
// the gRPC ones (--grpc_*, --auth, --tls_*, --dev_token_secret*) are libs/service's.
ABSL_FLAG(std::string, peers, "", "Every replica's gRPC host:port, comma-separated, index order.");
// The rules that shape money are on the log; these say what the operator expects (start is
// refused when the log disagrees) and seed the genesis rules of an empty log. Unset: the log's.
ABSL_FLAG(std::string, window_zone, "",
          "Expected zone of the business day (empty: the log's; genesis default Asia/Shanghai).");
ABSL_FLAG(absl::Duration, window_cut, absl::ZeroDuration(),
          "Expected local time of day of the cut, (0, 24h] (0: the log's; genesis default 24h).");
ABSL_FLAG(bool, schedule_close, true, "Close windows on schedule (CLOSING at the cut).");
ABSL_FLAG(absl::Duration, close_grace, absl::Hours(2), "CLOSING -> CLOSED after this grace.");
ABSL_FLAG(std::string, fee_schedule, "",
          "Expected interchange bp, default:50,310000/METRO:40 (empty: the log's; genesis "
          "default default:50).");
ABSL_FLAG(int32_t, batch_max_records, 10000, "Records per RocksDB commit of stage one.");

namespace tongka::settlement {

absl::StatusOr<SettlementConfig> ConfigFromFlags() {
  absl::StatusOr<service::CommonConfig> common = service::CommonConfigFromFlags();
  if (!common.ok()) return common.status();
  absl::StatusOr<server::GrpcServerConfig> grpc = service::GrpcConfigFromFlags();
  if (!grpc.ok()) return grpc.status();
  SettlementConfig config;
  service::CopyCommonInto(*common, &config);
  config.grpc = *std::move(grpc);
  config.peers = absl::StrSplit(absl::GetFlag(FLAGS_peers), ',', absl::SkipEmpty());
  config.window_zone = absl::GetFlag(FLAGS_window_zone);
  config.window_cut = absl::GetFlag(FLAGS_window_cut);
  config.schedule_close = absl::GetFlag(FLAGS_schedule_close);
  config.close_grace = absl::GetFlag(FLAGS_close_grace);
  config.fee_schedule = absl::GetFlag(FLAGS_fee_schedule);
  config.batch_max_records = absl::GetFlag(FLAGS_batch_max_records);
  return config;
}

}  // namespace tongka::settlement
