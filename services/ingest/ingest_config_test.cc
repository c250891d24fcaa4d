// IngestConfig::Validate: a complete dev config passes; each bad value stops start-up with
// INVALID_ARGUMENT naming its field and rule (the admission limits at both ends of their ranges,
// the time settings whose relations protect against duplicates, and the public development keys
// outside dev-token mode).
#include "services/ingest/ingest_config.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "absl/strings/match.h"

namespace tongka::ingest {
namespace {

IngestConfig Good() {
  IngestConfig config;
  config.kafka_bootstrap = "127.0.0.1:9092";
  config.state_dir = "/tmp/ingest";
  config.grpc.listen_address = "127.0.0.1:0";
  config.grpc.auth_mode = server::AuthMode::kDevToken;
  config.grpc.dev_token_secret = "ingest-config-test-secret-0123";
  return config;
}

TEST(IngestConfigTest, DefaultsWithTheRequiredFieldsAreValid) {
  EXPECT_TRUE(Good().Validate().ok()) << Good().Validate();
  IngestConfig edges = Good();
  edges.max_concurrent_calls = 1;
  edges.max_inflight_items = kBatchSizeMax;
  EXPECT_TRUE(edges.Validate().ok()) << edges.Validate();
  edges.max_concurrent_calls = 100000;
  edges.max_inflight_items = 100000000;
  EXPECT_TRUE(edges.Validate().ok()) << edges.Validate();
}

TEST(IngestConfigTest, EachBadValueNamesItsField) {
  struct Case {
    std::string field;
    std::function<void(IngestConfig&)> breaks;
  };
  const Case cases[] = {
      {"kafka_bootstrap", [](IngestConfig& c) { c.kafka_bootstrap.clear(); }},
      {"state_dir", [](IngestConfig& c) { c.state_dir.clear(); }},
      {"conflict_topic", [](IngestConfig& c) { c.conflict_topic = c.topic; }},
      {"max_concurrent_calls", [](IngestConfig& c) { c.max_concurrent_calls = 0; }},
      {"max_concurrent_calls", [](IngestConfig& c) { c.max_concurrent_calls = 100001; }},
      {"max_inflight_items", [](IngestConfig& c) { c.max_inflight_items = kBatchSizeMax - 1; }},
      {"max_inflight_items", [](IngestConfig& c) { c.max_inflight_items = 100000001; }},
      {"stream_window", [](IngestConfig& c) { c.stream_window = 0; }},
      {"stream_window", [](IngestConfig& c) { c.stream_window = 65; }},
      {"ack_timeout", [](IngestConfig& c) { c.ack_timeout = absl::Milliseconds(99); }},
      {"kafka_message_timeout", [](IngestConfig& c) { c.kafka_message_timeout = c.ack_timeout; }},
      {"replica_count", [](IngestConfig& c) { c.replica_count = 2; }},
      {"metrics_host", [](IngestConfig& c) { c.metrics_host.clear(); }},
      // The public development keys (no key file) only with dev tokens.
      {"city_keys_path",
       [](IngestConfig& c) {
         c.grpc.auth_mode = server::AuthMode::kMtls;
         c.grpc.dev_token_secret.clear();
         c.grpc.tls_cert_path = c.grpc.tls_key_path = c.grpc.tls_client_ca_path = "/x.pem";
       }},
      {"limits.dedup_horizon",
       [](IngestConfig& c) { c.limits.dedup_horizon = c.limits.late_horizon; }},
  };
  for (const Case& test : cases) {
    IngestConfig config = Good();
    test.breaks(config);
    const absl::Status status = config.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << test.field;
    EXPECT_TRUE(absl::StartsWith(status.message(), test.field + ":"))
        << test.field << ": " << status.message();
  }
}

}  // namespace
}  // namespace tongka::ingest
