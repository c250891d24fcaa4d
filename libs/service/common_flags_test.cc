// CommonConfigFromFlags: the defaults with the two required flags make a valid config (metrics on
// 0.0.0.0:9100, replica 0 of 1), and every bad value or contradictory pair of flags is refused
// with INVALID_ARGUMENT whose message starts with the flag. Flags are set as main would see them
// after parsing (absl::SetFlag), restored after each test.
#include "libs/service/common_flags.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"

ABSL_DECLARE_FLAG(std::string, kafka_bootstrap);
ABSL_DECLARE_FLAG(std::string, kafka_ca);
ABSL_DECLARE_FLAG(std::string, kafka_cert);
ABSL_DECLARE_FLAG(std::string, kafka_key);
ABSL_DECLARE_FLAG(std::string, state_dir);
ABSL_DECLARE_FLAG(std::string, metrics_host);
ABSL_DECLARE_FLAG(int32_t, metrics_port);
ABSL_DECLARE_FLAG(int32_t, replica_index);
ABSL_DECLARE_FLAG(int32_t, replica_count);

namespace tongka::service {
namespace {

class CommonFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetFlag(&FLAGS_kafka_bootstrap, "127.0.0.1:9092");
    absl::SetFlag(&FLAGS_state_dir, "/var/lib/tongka");
  }

  absl::FlagSaver saver_;
};

TEST_F(CommonFlagsTest, TheRequiredFlagsWithDefaultsAreValid) {
  absl::StatusOr<CommonConfig> config = CommonConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->kafka_bootstrap, "127.0.0.1:9092");
  EXPECT_EQ(config->state_dir, "/var/lib/tongka");
  EXPECT_EQ(config->kafka_ca_path, "");
  EXPECT_EQ(config->metrics_host, "0.0.0.0");
  EXPECT_EQ(config->metrics_port, 9100);
  EXPECT_EQ(config->replica_index, 0);
  EXPECT_EQ(config->replica_count, 1);
}

TEST_F(CommonFlagsTest, EveryFlagReachesItsField) {
  absl::SetFlag(&FLAGS_kafka_ca, "ca.pem");
  absl::SetFlag(&FLAGS_kafka_cert, "cert.pem");
  absl::SetFlag(&FLAGS_kafka_key, "key.pem");
  absl::SetFlag(&FLAGS_metrics_host, "127.0.0.1");
  absl::SetFlag(&FLAGS_metrics_port, -1);
  absl::SetFlag(&FLAGS_replica_index, 2);
  absl::SetFlag(&FLAGS_replica_count, 3);
  absl::StatusOr<CommonConfig> config = CommonConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->kafka_ca_path, "ca.pem");
  EXPECT_EQ(config->kafka_cert_path, "cert.pem");
  EXPECT_EQ(config->kafka_key_path, "key.pem");
  EXPECT_EQ(config->metrics_host, "127.0.0.1");
  EXPECT_EQ(config->metrics_port, -1);
  EXPECT_EQ(config->replica_index, 2);
  EXPECT_EQ(config->replica_count, 3);
}

TEST_F(CommonFlagsTest, ReadCommonFlagsDoesNotValidate) {
  absl::SetFlag(&FLAGS_kafka_bootstrap, "");
  EXPECT_EQ(ReadCommonFlags().state_dir, "/var/lib/tongka");
  EXPECT_FALSE(CommonConfigFromFlags().ok());
}

TEST_F(CommonFlagsTest, EachBadValueIsRefusedNamingItsFlag) {
  struct Case {
    std::string flag;  // the message starts with it
    std::function<void()> breaks;
  };
  const Case cases[] = {
      {"--kafka_bootstrap", [] { absl::SetFlag(&FLAGS_kafka_bootstrap, ""); }},
      {"--state_dir", [] { absl::SetFlag(&FLAGS_state_dir, ""); }},
      {"--kafka_cert and --kafka_key",
       [] {
         absl::SetFlag(&FLAGS_kafka_ca, "ca.pem");
         absl::SetFlag(&FLAGS_kafka_cert, "cert.pem");
       }},
      {"--kafka_cert and --kafka_key",
       [] {
         absl::SetFlag(&FLAGS_kafka_ca, "ca.pem");
         absl::SetFlag(&FLAGS_kafka_key, "key.pem");
       }},
      {"--kafka_cert needs --kafka_ca",
       [] {
         absl::SetFlag(&FLAGS_kafka_cert, "cert.pem");
         absl::SetFlag(&FLAGS_kafka_key, "key.pem");
       }},
      {"--metrics_host", [] { absl::SetFlag(&FLAGS_metrics_host, ""); }},
      {"--metrics_port", [] { absl::SetFlag(&FLAGS_metrics_port, -2); }},
      {"--metrics_port", [] { absl::SetFlag(&FLAGS_metrics_port, 65536); }},
      {"--replica_count", [] { absl::SetFlag(&FLAGS_replica_count, 0); }},
      {"--replica_count", [] { absl::SetFlag(&FLAGS_replica_count, kReplicaCountMax + 1); }},
      {"--replica_index", [] { absl::SetFlag(&FLAGS_replica_index, -1); }},
      {"--replica_index",
       [] {
         absl::SetFlag(&FLAGS_replica_count, 3);
         absl::SetFlag(&FLAGS_replica_index, 3);
       }},
  };
  for (const Case& test : cases) {
    absl::FlagSaver restore;
    test.breaks();
    absl::StatusOr<CommonConfig> config = CommonConfigFromFlags();
    ASSERT_FALSE(config.ok()) << test.flag;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << test.flag;
    EXPECT_TRUE(absl::StartsWith(config.status().message(), test.flag))
        << test.flag << ": " << config.status().message();
  }
}

}  // namespace
}  // namespace tongka::service
