// IngestConfig: every setting of the ingest service, named, documented, defaulted, bounded and
// validated before start (a bad value stops start-up with a message naming the field).
//
// Ownership: plain values. Thread-safety: immutable once the app is built.
// Failure: Validate() returns INVALID_ARGUMENT naming the first bad field ("limits.late_horizon:
// ...", "grpc.dev_token_secret: ...").
//
// Example:
//   IngestConfig config;
//   config.kafka_bootstrap = "127.0.0.1:9092";
//   config.state_dir = "/var/lib/tongka";
//   config.grpc.auth_mode = server::AuthMode::kDevToken;
//   config.grpc.dev_token_secret = "...";
//   if (absl::Status s = config.Validate(); !s.ok()) return s;
#ifndef TONGKA_SERVICES_INGEST_INGEST_CONFIG_H_
#define TONGKA_SERVICES_INGEST_INGEST_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/server/grpc_server.h"

namespace tongka::ingest {

inline constexpr char kTxnTopic[] = "tongka.txn";
inline constexpr char kConflictTopic[] = "tongka.txn.conflicts";
inline constexpr int kBatchSizeMax = 10000;

// The bounds the validator judges every transaction against (validator.h names the rules).
struct ValidationLimits {
  // Per-transaction amount bounds in fen; the minimum is always 1 fen.
  int64_t tap_amount_max_fen = 100000;     // 1,000 yuan
  int64_t load_amount_max_fen = 500000;    // 5,000 yuan
  int64_t refund_amount_max_fen = 100000;  // a refund never exceeds the largest tap
  // Largest on-card balance (before or after) in fen.
  int64_t balance_max_fen = 100000000;
  // Device time may run ahead of platform time by at most this much (clock skew).
  absl::Duration future_skew_max = absl::Minutes(5);
  // Older device time than this is accepted but flagged late (TxnCommon.late, ItemResult.late).
  absl::Duration late_horizon = absl::Hours(24 * 7);
  // How long the dedup index remembers a transaction. Uploads whose device time is older than
  // dedup_horizon - future_skew_max are rejected (occurred_at_too_old): past that, a retry could
  // no longer be recognised. Must exceed late_horizon + future_skew_max.
  absl::Duration dedup_horizon = absl::Hours(24 * 30);

  absl::Status Validate() const;
};

struct IngestConfig {
  // Kafka bootstrap servers (host:port,...). Required.
  std::string kafka_bootstrap;
  // Kafka TLS client files (all three or none): the cluster CA, this service's certificate/key.
  std::string kafka_ca_path;
  std::string kafka_cert_path;
  std::string kafka_key_path;
  // Topic the transactions are appended to.
  std::string topic = kTxnTopic;
  // Where CONFLICT uploads are published (TxnConflict events), before the answer.
  std::string conflict_topic = kConflictTopic;
  // RocksDB directory of the dedup index. Required.
  std::string state_dir;
  // Cities' master key file (libs/txn/keys.h format). Empty: the public DEV keys, allowed only
  // together with grpc.auth_mode == kDevToken (--auth=dev): anyone can compute them, so a
  // production server never runs on them. For the same reason a file holding any city's dev key is
  // refused at start unless the mode is kDevToken.
  std::string city_keys_path;
  // The gRPC server (listen address, mTLS or dev tokens, message size).
  server::GrpcServerConfig grpc;
  // Address of /metrics (and /healthz, /readyz); port 0 picks a free port, -1 disables them.
  std::string metrics_host = "0.0.0.0";
  int32_t metrics_port = 9100;
  // Validation bounds.
  ValidationLimits limits;
  // How long a batch waits for Kafka's acknowledgements before the RPC fails with UNAVAILABLE
  // (the client retries; what did land comes back DUPLICATE). [100 ms, 10 min].
  absl::Duration ack_timeout = absl::Seconds(10);
  // The hint sent in the `retry-after-ms` trailing metadata of UNAVAILABLE / RESOURCE_EXHAUSTED.
  // [1 ms, 10 min].
  absl::Duration retry_after = absl::Seconds(1);
  // Admission control: what ingest serves at once. A call beyond either limit fails at once with
  // RESOURCE_EXHAUSTED and the retry hint, changing nothing, instead of queueing: while Kafka is
  // slow each admitted call holds a gRPC thread and its parsed request for up to ack_timeout.
  // Unary calls in flight plus open streams (a stream holds its slot while open). [1, 100000].
  int32_t max_concurrent_calls = 1024;
  // Transactions of the batches being served. At least kBatchSizeMax, so that a largest batch
  // always fits when nothing else is in flight; at most 100,000,000. The default, about 0.75 GiB
  // of requests, results and produced copies, sits below the producer's 1M-record queue.
  int64_t max_inflight_items = 500000;
  // Batches of one UploadStream served at once: the next batch is read and validated while
  // earlier ones wait for Kafka, answers still in order. Each batch beyond the first takes a
  // max_concurrent_calls slot while in progress. 1 serves a stream one batch at a time. [1, 64].
  int32_t stream_window = 4;
  // librdkafka's message.timeout.ms: how long a record is retried inside the producer while
  // Kafka is down. Longer than ack_timeout, so a broker restart does not turn an in-flight record
  // into a failed one that a client retry appends a second time. [1 s, 1 h].
  absl::Duration kafka_message_timeout = absl::Minutes(5);
  // How often the background sweep prunes dedup entries older than limits.dedup_horizon.
  // [1 s, 1 day].
  absl::Duration prune_interval = absl::Minutes(10);
  // Longest start-up replay of tongka.txn's tail into the dedup index (dedup_catch_up.h); the
  // service does not start serving without it.
  absl::Duration dedup_catch_up_timeout = absl::Minutes(10);
  // Replicas of the service. Must be 1 for now: the dedup index and the claim table are per
  // process, so a retry routed to another replica would not be recognised (README, scale-out).
  int32_t replica_count = 1;
  // Extra librdkafka producer properties (tuning only; safety settings cannot be overridden).
  std::map<std::string, std::string> kafka_overrides;

  absl::Status Validate() const;
};

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_INGEST_CONFIG_H_
