// IngestApp::Create refuses a city key file that holds any city's public development key unless
// the server runs in dev-token mode: anyone can compute those keys and forge MACs with them. The
// refusal comes while the keys are loaded, before Kafka is contacted, so no broker is needed
// (RocksDB in TEST_TMPDIR).
#include "services/ingest/ingest_app.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/txn/keys.h"

namespace tongka::ingest {
namespace {

std::string TempPath(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
}

std::string Hex(const crypto::Sm4Key& key) {
  return absl::BytesToHexString(crypto::AsStringView(key));
}

TEST(IngestAppTest, AKeyFileWithADevelopmentKeyIsRefusedOutsideDevMode) {
  const std::string keys = TempPath("city-keys.txt");
  std::ofstream(keys) << "310000 000102030405060708090a0b0c0d0e0f\n"
                      << "330200 " << Hex(*txn::DevCityMasterKey(330200)) << "\n";
  IngestConfig config;
  config.kafka_bootstrap = "127.0.0.1:1";  // never reached
  config.state_dir = TempPath("state");
  config.city_keys_path = keys;
  config.metrics_port = -1;
  config.grpc.listen_address = "127.0.0.1:0";
  config.grpc.auth_mode = server::AuthMode::kMtls;
  config.grpc.tls_cert_path = TempPath("tls.crt");  // never read: the keys fail first
  config.grpc.tls_key_path = TempPath("tls.key");
  config.grpc.tls_client_ca_path = TempPath("ca.crt");
  ASSERT_TRUE(config.Validate().ok()) << config.Validate();

  absl::StatusOr<std::unique_ptr<IngestApp>> app = IngestApp::Create(config);
  ASSERT_FALSE(app.ok());
  EXPECT_EQ(app.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(app.status().message(), "city_keys_path:")) << app.status();
  EXPECT_TRUE(absl::StrContains(app.status().message(), "330200")) << app.status();
  EXPECT_TRUE(absl::StrContains(app.status().message(), "--auth=dev")) << app.status();
}

}  // namespace
}  // namespace tongka::ingest
