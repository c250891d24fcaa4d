// GrpcConfigFromFlags: with no flags the mode is mtls (and refused until the three TLS files are
// given); every contradictory combination of --auth with the TLS and dev-token flags is refused
// with INVALID_ARGUMENT naming both; the dev-token secret comes from --dev_token_secret_file, the
// environment variable TONGKA_DEV_TOKEN_SECRET or --dev_token_secret, exactly one of them, and
// never appears in a message. Flags are set as main would see them after parsing (absl::SetFlag)
// and restored after each test; the environment variable is unset around each test.
#include "libs/service/grpc_flags.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

ABSL_DECLARE_FLAG(std::string, grpc_host);
ABSL_DECLARE_FLAG(int32_t, grpc_port);
ABSL_DECLARE_FLAG(std::string, auth);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, dev_token_secret_file);
ABSL_DECLARE_FLAG(std::string, dev_token_secret);

namespace tongka::service {
namespace {

constexpr char kSecret[] = "grpc-flags-test-secret-0123456789";
constexpr char kOtherSecret[] = "another-grpc-flags-test-secret-42";

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  return path;
}

void SetTlsFiles() {
  absl::SetFlag(&FLAGS_tls_cert, "/etc/tongka/grpc-tls/tls.crt");
  absl::SetFlag(&FLAGS_tls_key, "/etc/tongka/grpc-tls/tls.key");
  absl::SetFlag(&FLAGS_tls_ca, "/etc/tongka/grpc-tls/ca.crt");
}

class GrpcFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv(kDevTokenSecretEnv); }
  void TearDown() override { unsetenv(kDevTokenSecretEnv); }

  // Expects a refusal whose message starts with `starts` and mentions `mentions`, and never
  // shows either test secret.
  static void ExpectRefused(const std::string& starts, const std::string& mentions = "") {
    absl::StatusOr<server::GrpcServerConfig> config = GrpcConfigFromFlags();
    ASSERT_FALSE(config.ok()) << starts;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << starts;
    const std::string message(config.status().message());
    EXPECT_TRUE(absl::StartsWith(message, starts)) << starts << " | " << message;
    EXPECT_TRUE(absl::StrContains(message, mentions)) << mentions << " | " << message;
    EXPECT_FALSE(absl::StrContains(message, kSecret)) << message;
    EXPECT_FALSE(absl::StrContains(message, kOtherSecret)) << message;
  }

  absl::FlagSaver saver_;
};

TEST_F(GrpcFlagsTest, TheDefaultModeIsMtlsAndNeedsTheTlsFiles) {
  ExpectRefused("--auth=mtls needs --tls_cert", "--auth=dev");
  SetTlsFiles();
  absl::StatusOr<server::GrpcServerConfig> config = GrpcConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->auth_mode, server::AuthMode::kMtls);
  EXPECT_EQ(config->listen_address, "0.0.0.0:7000");
  EXPECT_EQ(config->tls_cert_path, "/etc/tongka/grpc-tls/tls.crt");
  EXPECT_EQ(config->tls_key_path, "/etc/tongka/grpc-tls/tls.key");
  EXPECT_EQ(config->tls_client_ca_path, "/etc/tongka/grpc-tls/ca.crt");
  EXPECT_EQ(config->dev_token_secret, "");
  const std::string said = DescribeAuthMode(*config);
  EXPECT_TRUE(absl::StrContains(said, "auth: mtls")) << said;
  EXPECT_TRUE(absl::StrContains(said, "/etc/tongka/grpc-tls/ca.crt")) << said;
}

TEST_F(GrpcFlagsTest, MtlsNeedsEachOfTheThreeTlsFiles) {
  for (auto* missing : {&FLAGS_tls_cert, &FLAGS_tls_key, &FLAGS_tls_ca}) {
    absl::FlagSaver restore;
    SetTlsFiles();
    absl::SetFlag(missing, "");
    const std::string flag = missing == &FLAGS_tls_cert  ? "--tls_cert"
                             : missing == &FLAGS_tls_key ? "--tls_key"
                                                         : "--tls_ca";
    ExpectRefused("--auth=mtls needs " + flag);
  }
}

TEST_F(GrpcFlagsTest, MtlsRefusesADevTokenSecretFromAnySource) {
  SetTlsFiles();
  absl::SetFlag(&FLAGS_auth, "mtls");
  {
    absl::FlagSaver restore;
    absl::SetFlag(&FLAGS_dev_token_secret, kSecret);
    ExpectRefused("--auth=mtls contradicts --dev_token_secret");
  }
  {
    absl::FlagSaver restore;
    absl::SetFlag(&FLAGS_dev_token_secret_file, WriteFile("mtls-secret", kSecret));
    ExpectRefused("--auth=mtls contradicts --dev_token_secret_file");
  }
  {
    absl::FlagSaver restore;
    absl::SetFlag(&FLAGS_dev_token_secret_file, "/nonexistent/secret");
    ExpectRefused("--auth=mtls contradicts --dev_token_secret_file");
  }
  setenv(kDevTokenSecretEnv, kSecret, 1);
  ExpectRefused(absl::StrCat("--auth=mtls contradicts ", kDevTokenSecretEnv));
}

TEST_F(GrpcFlagsTest, DevRefusesEveryTlsFlag) {
  absl::SetFlag(&FLAGS_auth, "dev");
  absl::SetFlag(&FLAGS_dev_token_secret, kSecret);
  for (auto* set : {&FLAGS_tls_cert, &FLAGS_tls_key, &FLAGS_tls_ca}) {
    absl::FlagSaver restore;
    absl::SetFlag(set, "/etc/tongka/grpc-tls/file.pem");
    const std::string flag = set == &FLAGS_tls_cert  ? "--tls_cert"
                             : set == &FLAGS_tls_key ? "--tls_key"
                                                     : "--tls_ca";
    ExpectRefused("--auth=dev contradicts " + flag, "plaintext");
  }
}

TEST_F(GrpcFlagsTest, DevNeedsASecret) {
  absl::SetFlag(&FLAGS_auth, "dev");
  ExpectRefused("--auth=dev needs a dev-token secret", kDevTokenSecretEnv);
}

TEST_F(GrpcFlagsTest, DevTakesTheSecretFromTheFlag) {
  absl::SetFlag(&FLAGS_auth, "dev");
  absl::SetFlag(&FLAGS_dev_token_secret, kSecret);
  absl::SetFlag(&FLAGS_grpc_host, "127.0.0.1");
  absl::SetFlag(&FLAGS_grpc_port, 0);
  absl::StatusOr<server::GrpcServerConfig> config = GrpcConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->auth_mode, server::AuthMode::kDevToken);
  EXPECT_EQ(config->dev_token_secret, kSecret);
  EXPECT_EQ(config->listen_address, "127.0.0.1:0");
  const std::string said = DescribeAuthMode(*config);
  EXPECT_TRUE(absl::StrContains(said, "auth: dev")) << said;
  EXPECT_FALSE(absl::StrContains(said, kSecret)) << said;
}

TEST_F(GrpcFlagsTest, DevTakesTheSecretFromAFileWithoutItsTrailingNewline) {
  absl::SetFlag(&FLAGS_auth, "dev");
  absl::SetFlag(&FLAGS_dev_token_secret_file,
                WriteFile("dev-secret", absl::StrCat(kSecret, "\r\n\n")));
  absl::StatusOr<server::GrpcServerConfig> config = GrpcConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->auth_mode, server::AuthMode::kDevToken);
  EXPECT_EQ(config->dev_token_secret, kSecret);
}

TEST_F(GrpcFlagsTest, DevTakesTheSecretFromTheEnvironment) {
  absl::SetFlag(&FLAGS_auth, "dev");
  setenv(kDevTokenSecretEnv, kSecret, 1);
  absl::StatusOr<server::GrpcServerConfig> config = GrpcConfigFromFlags();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->auth_mode, server::AuthMode::kDevToken);
  EXPECT_EQ(config->dev_token_secret, kSecret);
}

TEST_F(GrpcFlagsTest, DevRefusesTheSecretGivenTwoWays) {
  absl::SetFlag(&FLAGS_auth, "dev");
  const std::string file = WriteFile("two-ways-secret", kSecret);
  {
    absl::FlagSaver restore;
    absl::SetFlag(&FLAGS_dev_token_secret_file, file);
    absl::SetFlag(&FLAGS_dev_token_secret, kOtherSecret);
    ExpectRefused("--dev_token_secret_file contradicts --dev_token_secret", "one way");
  }
  setenv(kDevTokenSecretEnv, kOtherSecret, 1);
  {
    absl::FlagSaver restore;
    absl::SetFlag(&FLAGS_dev_token_secret, kSecret);
    ExpectRefused(
        absl::StrCat(kDevTokenSecretEnv, " (environment) contradicts --dev_token_secret"));
  }
  absl::SetFlag(&FLAGS_dev_token_secret_file, file);
  ExpectRefused(absl::StrCat("--dev_token_secret_file contradicts ", kDevTokenSecretEnv));
}

TEST_F(GrpcFlagsTest, DevRefusesAShortEmptyOrUnreadableSecret) {
  absl::SetFlag(&FLAGS_auth, "dev");
  {
    absl::FlagSaver restore;
    absl::SetFlag(&FLAGS_dev_token_secret, "short");
    ExpectRefused("--dev_token_secret: the dev-token secret must be at least 16 bytes");
  }
  {
    absl::FlagSaver restore;
    absl::SetFlag(&FLAGS_dev_token_secret_file, WriteFile("short-secret", "short\n"));
    ExpectRefused("--dev_token_secret_file: the dev-token secret must be at least 16 bytes");
  }
  {
    absl::FlagSaver restore;
    absl::SetFlag(&FLAGS_dev_token_secret_file, WriteFile("empty-secret", "\n"));
    ExpectRefused("--dev_token_secret_file: ", "is empty");
  }
  {
    absl::FlagSaver restore;
    absl::SetFlag(&FLAGS_dev_token_secret_file, "/nonexistent/secret");
    ExpectRefused("--dev_token_secret_file: cannot read", "/nonexistent/secret");
  }
  setenv(kDevTokenSecretEnv, "short", 1);
  ExpectRefused(absl::StrCat(kDevTokenSecretEnv, " (environment): the dev-token secret"));
}

TEST_F(GrpcFlagsTest, RefusesAnUnknownModeAndABadAddress) {
  SetTlsFiles();
  {
    absl::FlagSaver restore;
    absl::SetFlag(&FLAGS_auth, "tls");
    ExpectRefused("--auth: must be mtls or dev", "\"tls\"");
  }
  {
    absl::FlagSaver restore;
    absl::SetFlag(&FLAGS_grpc_port, 65536);
    ExpectRefused("--grpc_port: must be in [0, 65535]");
  }
  absl::SetFlag(&FLAGS_grpc_host, "");
  ExpectRefused("--grpc_host: required");
}

}  // namespace
}  // namespace tongka::service
