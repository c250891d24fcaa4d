#include "services/settlement/settlement_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

ABSL_FLAG(std::string, kafka_bootstrap, "", "Kafka bootstrap servers, host:port[,host:port].");
ABSL_FLAG(std::string, kafka_ca, "", "Kafka cluster CA (PEM); with --kafka_cert/--kafka_key.");
ABSL_FLAG(std::string, kafka_cert, "", "This service's Kafka client certificate (PEM).");
ABSL_FLAG(std::string, kafka_key, "", "This service's Kafka client key (PEM).");
ABSL_FLAG(std::string, state_dir, "", "RocksDB directory.");
ABSL_FLAG(int32_t, replica_index, 0, "This replica's index k (owns partitions p % N == k).");
ABSL_FLAG(int32_t, replica_count, 1, "Replica count N.");
ABSL_FLAG(std::string, peers, "", "Every replica's gRPC host:port, comma-separated, index order.");
ABSL_FLAG(std::string, window_zone, "Asia/Shanghai", "Zone of the business day.");
ABSL_FLAG(absl::Duration, window_cut, absl::Hours(24), "Local time of day of the cut, (0, 24h].");
ABSL_FLAG(bool, schedule_close, true, "Close windows on schedule (CLOSING at the cut).");
ABSL_FLAG(absl::Duration, close_grace, absl::Hours(2), "CLOSING -> CLOSED after this grace.");
ABSL_FLAG(std::string, fee_schedule, "default:50", "Interchange bp: default:50,310000/METRO:40.");
ABSL_FLAG(std::string, grpc_host, "0.0.0.0", "gRPC listen host.");
ABSL_FLAG(int32_t, grpc_port, 7000, "gRPC port; 0 picks a free one.");
ABSL_FLAG(std::string, tls_cert, "", "gRPC server certificate chain (PEM), mTLS mode.");
ABSL_FLAG(std::string, tls_key, "", "gRPC server private key (PEM), mTLS mode.");
ABSL_FLAG(std::string, tls_ca, "", "CA that client (tenant) certificates chain to, mTLS mode.");
ABSL_FLAG(std::string, dev_token_secret, "",
          "Development only: accept signed dev tokens instead of mTLS (>= 16 bytes).");
ABSL_FLAG(int32_t, metrics_port, 9100, "Port of /metrics; 0 = any free port, -1 = off.");
ABSL_FLAG(int32_t, batch_max_records, 10000, "Records per RocksDB commit of stage one.");

namespace tongka::settlement {

SettlementConfig ConfigFromFlags() {
  SettlementConfig config;
  config.kafka_bootstrap = absl::GetFlag(FLAGS_kafka_bootstrap);
  config.kafka_ca_path = absl::GetFlag(FLAGS_kafka_ca);
  config.kafka_cert_path = absl::GetFlag(FLAGS_kafka_cert);
  config.kafka_key_path = absl::GetFlag(FLAGS_kafka_key);
  config.state_dir = absl::GetFlag(FLAGS_state_dir);
  config.replica_index = absl::GetFlag(FLAGS_replica_index);
  config.replica_count = absl::GetFlag(FLAGS_replica_count);
  config.peers = absl::StrSplit(absl::GetFlag(FLAGS_peers), ',', absl::SkipEmpty());
  config.window_zone = absl::GetFlag(FLAGS_window_zone);
  config.window_cut = absl::GetFlag(FLAGS_window_cut);
  config.schedule_close = absl::GetFlag(FLAGS_schedule_close);
  config.close_grace = absl::GetFlag(FLAGS_close_grace);
  config.fee_schedule = absl::GetFlag(FLAGS_fee_schedule);
  config.grpc.listen_address =
      absl::StrCat(absl::GetFlag(FLAGS_grpc_host), ":", absl::GetFlag(FLAGS_grpc_port));
  config.grpc.dev_token_secret = absl::GetFlag(FLAGS_dev_token_secret);
  config.grpc.auth_mode =
      config.grpc.dev_token_secret.empty() ? server::AuthMode::kMtls : server::AuthMode::kDevToken;
  config.grpc.tls_cert_path = absl::GetFlag(FLAGS_tls_cert);
  config.grpc.tls_key_path = absl::GetFlag(FLAGS_tls_key);
  config.grpc.tls_client_ca_path = absl::GetFlag(FLAGS_tls_ca);
  config.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  config.batch_max_records = absl::GetFlag(FLAGS_batch_max_records);
  return config;
}

}  // namespace tongka::settlement
