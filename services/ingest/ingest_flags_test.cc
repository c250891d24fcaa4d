// ConfigFromFlags: ingest's flags with libs/service's common and gRPC flags. The authentication
// mode is --auth alone: a dev-token secret without --auth=dev is refused (it used to switch the
// server to plaintext dev mode and the public development MAC keys), and without --city_keys
// ingest starts only with --auth=dev, because the development keys are public. The common flags
// reach the config's fields. Flags are set as main would see them after parsing (absl::SetFlag)
// and restored after each test.
#include "services/ingest/ingest_flags.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"

ABSL_DECLARE_FLAG(std::string, kafka_bootstrap);
ABSL_DECLARE_FLAG(std::string, state_dir);
ABSL_DECLARE_FLAG(std::string, metrics_host);
ABSL_DECLARE_FLAG(int32_t, metrics_port);
ABSL_DECLARE_FLAG(int32_t, grpc_port);
ABSL_DECLARE_FLAG(std::string, auth);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, dev_token_secret);
ABSL_DECLARE_FLAG(std::string, city_keys);
ABSL_DECLARE_FLAG(std::string, topic);

namespace tongka::ingest {
namespace {

constexpr char kSecret[] = "ingest-flags-test-secret-0123456789";

class IngestFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("TONGKA_DEV_TOKEN_SECRET");
    absl::SetFlag(&FLAGS_kafka_bootstrap, "127.0.0.1:9092");
    absl::SetFlag(&FLAGS_state_dir, "/var/lib/tongka");
  }

  static void SetTlsFiles() {
    absl::SetFlag(&FLAGS_tls_cert, "/etc/tongka/grpc-tls/tls.crt");
    absl::SetFlag(&FLAGS_tls_key, "/etc/tongka/grpc-tls/tls.key");
    absl::SetFlag(&FLAGS_tls_ca, "/etc/tongka/grpc-tls/ca.crt");
  }

  absl::FlagSaver saver_;
};

TEST_F(IngestFlagsTest, ADevTokenSecretAloneDoesNotMakeADevServer) {
  absl::SetFlag(&FLAGS_dev_token_secret, kSecret);
  absl::StatusOr<IngestConfig> config = ConfigFromFlags();
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(config.status().message(),
                               "--auth=mtls contradicts "
                               "--dev_token_secret"))
      << config.status();
}

TEST_F(IngestFlagsTest, TheDevelopmentKeysOnlyWithAuthDev) {
  SetTlsFiles();
  absl::StatusOr<IngestConfig> config = ConfigFromFlags();
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(config.status().message(), "--auth=mtls needs --city_keys"))
      << config.status();

  absl::SetFlag(&FLAGS_city_keys, "/etc/tongka/city-keys/city-keys.txt");
  config = ConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc.auth_mode, server::AuthMode::kMtls);
  EXPECT_EQ(config->city_keys_path, "/etc/tongka/city-keys/city-keys.txt");
  EXPECT_TRUE(config->Validate().ok()) << config->Validate();
}

TEST_F(IngestFlagsTest, AuthDevRunsOnTheDevelopmentKeys) {
  absl::SetFlag(&FLAGS_auth, "dev");
  absl::SetFlag(&FLAGS_dev_token_secret, kSecret);
  absl::SetFlag(&FLAGS_grpc_port, 0);
  absl::SetFlag(&FLAGS_metrics_host, "127.0.0.1");
  absl::SetFlag(&FLAGS_metrics_port, -1);
  absl::SetFlag(&FLAGS_topic, "tongka.txn.test");
  absl::StatusOr<IngestConfig> config = ConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc.auth_mode, server::AuthMode::kDevToken);
  EXPECT_EQ(config->grpc.dev_token_secret, kSecret);
  EXPECT_EQ(config->grpc.listen_address, "0.0.0.0:0");
  EXPECT_EQ(config->city_keys_path, "");
  EXPECT_EQ(config->kafka_bootstrap, "127.0.0.1:9092");
  EXPECT_EQ(config->state_dir, "/var/lib/tongka");
  EXPECT_EQ(config->metrics_host, "127.0.0.1");
  EXPECT_EQ(config->metrics_port, -1);
  EXPECT_EQ(config->topic, "tongka.txn.test");
  EXPECT_TRUE(config->Validate().ok()) << config->Validate();
}

TEST_F(IngestFlagsTest, TheCommonFlagsAreChecked) {
  absl::SetFlag(&FLAGS_state_dir, "");
  absl::StatusOr<IngestConfig> config = ConfigFromFlags();
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(absl::StartsWith(config.status().message(), "--state_dir")) << config.status();
}

}  // namespace
}  // namespace tongka::ingest
