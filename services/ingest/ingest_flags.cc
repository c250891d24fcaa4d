#include "services/ingest/ingest_flags.h"

#include <glog/logging.h>

#include <utility>

#include "absl/flags/flag.h"
#include "libs/service/common_flags.h"
#include "libs/service/grpc_flags.h"

// Ingest's own flags. The common ones (--kafka_*, --state_dir, --metrics_*, --replica_*) and the
// gRPC ones (--grpc_*, --auth, --tls_*, --dev_token_secret*) are libs/service's.
ABSL_FLAG(std::string, topic, "tongka.txn", "Topic transactions are appended to.");
ABSL_FLAG(std::string, conflict_topic, "tongka.txn.conflicts",
          "Topic CONFLICT uploads are published to (TxnConflict events).");
ABSL_FLAG(std::string, city_keys, "",
          "City master key file. Empty: the public development keys, only with --auth=dev.");
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

absl::StatusOr<IngestConfig> ConfigFromFlags() {
  absl::StatusOr<service::CommonConfig> common = service::CommonConfigFromFlags();
  if (!common.ok()) return common.status();
  absl::StatusOr<server::GrpcServerConfig> grpc = service::GrpcConfigFromFlags();
  if (!grpc.ok()) return grpc.status();
  IngestConfig config;
  service::CopyCommonInto(*common, &config);
  LOG_IF(INFO, common->replica_index != 0)
      << "replica_index " << common->replica_index << " ignored: ingest runs as one replica";
  config.grpc = *std::move(grpc);
  config.city_keys_path = absl::GetFlag(FLAGS_city_keys);
  if (config.city_keys_path.empty() && config.grpc.auth_mode != server::AuthMode::kDevToken) {
    // Anyone can compute the development keys, so anyone could forge a MAC a server using them
    // accepts.
    return absl::InvalidArgumentError(
        "--auth=mtls needs --city_keys (the member cities' master key file): without it ingest "
        "would verify MACs with the public development keys, allowed only with --auth=dev");
  }
  config.topic = absl::GetFlag(FLAGS_topic);
  config.conflict_topic = absl::GetFlag(FLAGS_conflict_topic);
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
  return config;
}

}  // namespace tongka::ingest
