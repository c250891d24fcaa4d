#include "services/ingest/ingest_config.h"

#include "absl/strings/str_cat.h"

namespace tongka::ingest {
namespace {

template <typename T>
absl::Status Bad(absl::string_view field, absl::string_view rule, const T& got) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule, ", got ", got));
}

bool Within(absl::Duration d, absl::Duration low, absl::Duration high) {
  return d >= low && d <= high;
}

}  // namespace

absl::Status ValidationLimits::Validate() const {
  if (tap_amount_max_fen < 1 || tap_amount_max_fen > 10000000) {
    return Bad("limits.tap_amount_max_fen", "must be in [1, 10000000]", tap_amount_max_fen);
  }
  if (load_amount_max_fen < 1 || load_amount_max_fen > 100000000) {
    return Bad("limits.load_amount_max_fen", "must be in [1, 100000000]", load_amount_max_fen);
  }
  if (refund_amount_max_fen < 1 || refund_amount_max_fen > 10000000) {
    return Bad("limits.refund_amount_max_fen", "must be in [1, 10000000]", refund_amount_max_fen);
  }
  if (balance_max_fen < 1 || balance_max_fen > (int64_t{1} << 52)) {
    return Bad("limits.balance_max_fen", "must be in [1, 2^52]", balance_max_fen);
  }
  if (!Within(future_skew_max, absl::ZeroDuration(), absl::Hours(24))) {
    return Bad("limits.future_skew_max", "must be in [0, 24h]",
               absl::FormatDuration(future_skew_max));
  }
  if (!Within(late_horizon, absl::Minutes(1), absl::Hours(24 * 365))) {
    return Bad("limits.late_horizon", "must be in [1m, 365 days]",
               absl::FormatDuration(late_horizon));
  }
  if (dedup_horizon <= late_horizon + future_skew_max || dedup_horizon > absl::Hours(24 * 730)) {
    return Bad("limits.dedup_horizon",
               "must exceed late_horizon + future_skew_max and be at most 730 days",
               absl::FormatDuration(dedup_horizon));
  }
  return absl::OkStatus();
}

absl::Status IngestConfig::Validate() const {
  if (kafka_bootstrap.empty()) return Bad("kafka_bootstrap", "required", "\"\"");
  const int tls_files = !kafka_ca_path.empty() + !kafka_cert_path.empty() + !kafka_key_path.empty();
  if (tls_files != 0 && tls_files != 3) {
    return Bad("kafka_ca_path", "kafka_ca_path, kafka_cert_path and kafka_key_path go together",
               absl::StrCat(tls_files, " of 3 set"));
  }
  if (topic.empty()) return Bad("topic", "required", "\"\"");
  if (conflict_topic.empty()) return Bad("conflict_topic", "required", "\"\"");
  if (conflict_topic == topic) {
    return Bad("conflict_topic", "must differ from topic",
               absl::StrCat("\"", conflict_topic, "\""));
  }
  if (state_dir.empty()) return Bad("state_dir", "required", "\"\"");
  if (city_keys_path.empty() && grpc.auth_mode != server::AuthMode::kDevToken) {
    return Bad("city_keys_path",
               "required unless grpc.auth_mode is dev_token (--auth=dev): empty means the public "
               "development keys",
               "\"\"");
  }
  if (absl::Status grpc_ok = server::ValidateGrpcServerConfig(grpc); !grpc_ok.ok()) {
    return grpc_ok;
  }
  if (metrics_host.empty()) return Bad("metrics_host", "required", "\"\"");
  if (metrics_port < -1 || metrics_port > 65535) {
    return Bad("metrics_port", "must be -1 (off) or in [0, 65535]", metrics_port);
  }
  if (absl::Status limits_ok = limits.Validate(); !limits_ok.ok()) return limits_ok;
  if (!Within(ack_timeout, absl::Milliseconds(100), absl::Minutes(10))) {
    return Bad("ack_timeout", "must be in [100ms, 10m]", absl::FormatDuration(ack_timeout));
  }
  if (!Within(retry_after, absl::Milliseconds(1), absl::Minutes(10))) {
    return Bad("retry_after", "must be in [1ms, 10m]", absl::FormatDuration(retry_after));
  }
  if (max_concurrent_calls < 1 || max_concurrent_calls > 100000) {
    return Bad("max_concurrent_calls", "must be in [1, 100000]", max_concurrent_calls);
  }
  if (max_inflight_items < kBatchSizeMax || max_inflight_items > 100000000) {
    return Bad("max_inflight_items",
               absl::StrCat("must be in [", kBatchSizeMax, " (a largest batch), 100000000]"),
               max_inflight_items);
  }
  if (stream_window < 1 || stream_window > 64) {
    return Bad("stream_window", "must be in [1, 64]", stream_window);
  }
  if (!Within(kafka_message_timeout, absl::Seconds(1), absl::Hours(1))) {
    return Bad("kafka_message_timeout", "must be in [1s, 1h]",
               absl::FormatDuration(kafka_message_timeout));
  }
  if (kafka_message_timeout <= ack_timeout) {
    // A record that expires in the producer while the call still waits would be reported failed,
    // and the client's retry would then append a second copy of anything the broker did take.
    return Bad("kafka_message_timeout", "must be longer than ack_timeout",
               absl::FormatDuration(kafka_message_timeout));
  }
  if (!Within(dedup_catch_up_timeout, absl::Seconds(1), absl::Hours(6))) {
    return Bad("dedup_catch_up_timeout", "must be in [1s, 6h]",
               absl::FormatDuration(dedup_catch_up_timeout));
  }
  if (!Within(prune_interval, absl::Seconds(1), absl::Hours(24))) {
    return Bad("prune_interval", "must be in [1s, 24h]", absl::FormatDuration(prune_interval));
  }
  if (replica_count != 1) {
    return Bad("replica_count",
               "must be 1: the dedup index is per replica (scale-out routes by terminal first)",
               replica_count);
  }
  return absl::OkStatus();
}

}  // namespace tongka::ingest
