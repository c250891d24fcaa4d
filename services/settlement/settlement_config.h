// SettlementConfig: every setting of the settlement service, named, documented, defaulted,
// bounded, and validated before start (a bad value stops start-up with a message naming it).
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_CONFIG_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/server/grpc_server.h"
#include "proto/events.pb.h"

namespace tongka::settlement {

struct SettlementConfig {
  // Kafka bootstrap servers (host:port,...). Required.
  std::string kafka_bootstrap;
  // Kafka TLS client files (all three or none).
  std::string kafka_ca_path;
  std::string kafka_cert_path;
  std::string kafka_key_path;
  // RocksDB directory. Required.
  std::string state_dir;
  // Replica k of N: stage one consumes the tongka.txn partitions p % N == k; the window owner
  // duties (derived events) are for the tongka.settlement partitions p % N == k. [1, 1024].
  int32_t replica_index = 0;
  int32_t replica_count = 1;
  // gRPC addresses of every replica in index order (ReconcileHour gathers transaction ids from
  // all of them). Required when replica_count > 1; its size must equal replica_count.
  std::vector<std::string> peers;
  // The rules that shape money (settlement_rules.h) live on tongka.settlement, not in flags: the
  // business-day zone, the local time of day that cuts one business day from the next, (00:00,
  // 24:00], and the interchange fees (fees.h). Each of these three, when set, is what the
  // operator expects: the service refuses to start when the rules in force on the log for the
  // current window say otherwise, naming both. Unset (empty, zero): whatever the log says. On a
  // log with no rules yet, the first start records the genesis rules from these, defaulting to
  // Asia/Shanghai, 24:00, default:50. Changes go through the ScheduleRules command.
  std::string window_zone;
  absl::Duration window_cut = absl::ZeroDuration();
  // The schedule: at the cut a window goes CLOSING, close_grace later CLOSED. Off: only the
  // ministry moves windows. Grace in [0, 7 days].
  bool schedule_close = true;
  absl::Duration close_grace = absl::Hours(2);
  std::string fee_schedule;
  // The gRPC server (listen address, mTLS or dev tokens).
  server::GrpcServerConfig grpc;
  // Address of /metrics (and /healthz, /readyz); port 0 picks a free port, -1 disables them.
  std::string metrics_host = "0.0.0.0";
  int32_t metrics_port = 9100;
  // Records per RocksDB commit of stage one, [1, 100000].
  int32_t batch_max_records = 10000;
  // How long a command waits to be decided (read-your-writes) before DEADLINE_EXCEEDED.
  absl::Duration command_timeout = absl::Seconds(30);

  absl::Status Validate() const;
  // The genesis rules from the three fields above, with their defaults.
  v1::SettlementRules GenesisRules() const;
};

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_CONFIG_H_
