#include "services/ingest/ingest_flags.h"

#include <glog/logging.h>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, kafka_bootstrap, "", "Kafka bootstrap servers, host:port[,host:port].");
ABSL_FLAG(std::string, kafka_ca, "", "Kafka cluster CA (PEM); with --kafka_cert/--kafka_key.");
ABSL_FLAG(std::string, kafka_cert, "", "This service's Kafka client certificate (PEM).");
ABSL_FLAG(std::string, kafka_key, "", "This service's Kafka client key (PEM).");
ABSL_FLAG(std::string, topic, "tongka.txn", "Topic transactions are appended to.");
ABSL_FLAG(std::string, conflict_topic, "tongka.txn.conflicts",
          "Topic CONFLICT uploads are published to (TxnConflict events).");
ABSL_FLAG(std::string, state_dir, "", "RocksDB directory of the dedup index.");
ABSL_FLAG(std::string, city_keys, "", "City master key file; empty: public dev keys (dev only).");
ABSL_FLAG(std::string, grpc_host, "0.0.0.0", "gRPC listen host.");
ABSL_FLAG(int32_t, grpc_port, 7000, "gRPC port; 0 picks a free one.");
ABSL_FLAG(std::string, tls_cert, "", "gRPC server certificate chain (PEM), mTLS mode.");
ABSL_FLAG(std::string, tls_key, "", "gRPC server private key (PEM), mTLS mode.");
ABSL_FLAG(std::string, tls_ca, "", "CA that client (tenant) certificates chain to, mTLS mode.");
ABSL_FLAG(std::string, dev_token_secret, "",
          "Development only: accept signed dev tokens instead of mTLS (>= 16 bytes).");
ABSL_FLAG(int32_t, metrics_port, 9100, "Port of /metrics; 0 = any free port, -1 = off.");
ABSL_FLAG(int32_t, replica_index, 0,
          "Accepted for the deployment convention; ingest is one replica.");
ABSL_FLAG(int32_t, replica_count, 1, "Must be 1: the dedup index is per replica (README).");
ABSL_FLAG(absl::Duration, ack_timeout, absl::Seconds(10), "Longest wait for Kafka per batch.");
ABSL_FLAG(absl::Duration, retry_after, absl::Seconds(1), "retry-after-ms hint on UNAVAILABLE.");
ABSL_FLAG(int32_t, max_concurrent_calls, 1024,
          "Upload calls served at once (open streams included); more: RESOURCE_EXHAUSTED.");
ABSL_FLAG(int64_t, max_inflight_items, 500000,
          "Transactions of the batches served at once; more: RESOURCE_EXHAUSTED.");
ABSL_FLAG(int32_t, stream_window, 4,
          "Batches of one UploadStream served at once (pipelined; answers in order).");
ABSL_FLAG(absl::Duration, kafka_message_timeout, absl::Minutes(5),
          "librdkafka message.timeout.ms: how long a record is retried while Kafka is down.");
ABSL_FLAG(absl::Duration, prune_interval, absl::Minutes(10), "Dedup prune sweep interval.");
ABSL_FLAG(absl::Duration, dedup_catch_up_timeout, absl::Minutes(10),
          "Longest start-up replay of the log tail into the dedup index.");
ABSL_FLAG(int64_t, tap_amount_max_fen, 100000, "Largest tap in fen.");
ABSL_FLAG(int64_t, load_amount_max_fen, 500000, "Largest load in fen.");
ABSL_FLAG(int64_t, refund_amount_max_fen, 100000, "Largest refund in fen.");
ABSL_FLAG(absl::Duration, future_skew_max, absl::Minutes(5), "Allowed device clock lead.");
ABSL_FLAG(absl::Duration, late_horizon, absl::Hours(24 * 7), "Older device time is flagged late.");
ABSL_FLAG(absl::Duration, dedup_horizon, absl::Hours(24 * 30), "How long retries are recognised.");

namespace tongka::ingest {

IngestConfig ConfigFromFlags() {
  IngestConfig config;
  config.kafka_bootstrap = absl::GetFlag(FLAGS_kafka_bootstrap);
  config.kafka_ca_path = absl::GetFlag(FLAGS_kafka_ca);
  config.kafka_cert_path = absl::GetFlag(FLAGS_kafka_cert);
  config.kafka_key_path = absl::GetFlag(FLAGS_kafka_key);
  config.topic = absl::GetFlag(FLAGS_topic);
  config.conflict_topic = absl::GetFlag(FLAGS_conflict_topic);
  config.state_dir = absl::GetFlag(FLAGS_state_dir);
  config.city_keys_path = absl::GetFlag(FLAGS_city_keys);
  config.grpc.listen_address =
      absl::StrCat(absl::GetFlag(FLAGS_grpc_host), ":", absl::GetFlag(FLAGS_grpc_port));
  config.grpc.dev_token_secret = absl::GetFlag(FLAGS_dev_token_secret);
  config.grpc.auth_mode =
      config.grpc.dev_token_secret.empty() ? server::AuthMode::kMtls : server::AuthMode::kDevToken;
  config.grpc.tls_cert_path = absl::GetFlag(FLAGS_tls_cert);
  config.grpc.tls_key_path = absl::GetFlag(FLAGS_tls_key);
  config.grpc.tls_client_ca_path = absl::GetFlag(FLAGS_tls_ca);
  config.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  config.ack_timeout = absl::GetFlag(FLAGS_ack_timeout);
  config.retry_after = absl::GetFlag(FLAGS_retry_after);
  config.max_concurrent_calls = absl::GetFlag(FLAGS_max_concurrent_calls);
  config.max_inflight_items = absl::GetFlag(FLAGS_max_inflight_items);
  config.stream_window = absl::GetFlag(FLAGS_stream_window);
  config.kafka_message_timeout = absl::GetFlag(FLAGS_kafka_message_timeout);
  config.prune_interval = absl::GetFlag(FLAGS_prune_interval);
  config.dedup_catch_up_timeout = absl::GetFlag(FLAGS_dedup_catch_up_timeout);
  config.limits.tap_amount_max_fen = absl::GetFlag(FLAGS_tap_amount_max_fen);
  config.limits.load_amount_max_fen = absl::GetFlag(FLAGS_load_amount_max_fen);
  config.limits.refund_amount_max_fen = absl::GetFlag(FLAGS_refund_amount_max_fen);
  config.limits.future_skew_max = absl::GetFlag(FLAGS_future_skew_max);
  config.limits.late_horizon = absl::GetFlag(FLAGS_late_horizon);
  config.limits.dedup_horizon = absl::GetFlag(FLAGS_dedup_horizon);
  config.replica_count = absl::GetFlag(FLAGS_replica_count);
  LOG_IF(INFO, absl::GetFlag(FLAGS_replica_index) != 0)
      << "replica_index " << absl::GetFlag(FLAGS_replica_index) << " ignored";
  return config;
}

}  // namespace tongka::ingest
