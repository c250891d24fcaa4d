// Proves the gRPC driver against an in-process stand-in for ingest that enforces what the real
// one will: a verified dev token per call, one tenant per batch that owns every terminal in it, a
// valid SM4-CMAC per item, and de-duplication by event id (DUPLICATE for the same bytes, CONFLICT
// for other bytes). The stand-in also fails the first calls with UNAVAILABLE. The driver must
// retry them, batch per tenant, never put one id twice into a batch, count every outcome, and
// list exactly the acknowledged ids; with the wrong secret every batch fails UNAUTHENTICATED
// without retries.
#include "tools/tapgen/driver.h"

#include <glog/logging.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "libs/crypto/sm4_cmac.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "libs/txn/keys.h"
#include "libs/txn/mac_input.h"
#include "libs/txn/upload.h"
#include "tools/tapgen/tapgen.h"

namespace tongka::tapgen {
namespace {

constexpr absl::string_view kSecret = "driver-test-secret-0123456789";

class FakeIngest final : public v1::IngestService::Service {
 public:
  explicit FakeIngest(int unavailable_calls)
      : verifier_(*server::DevTokenVerifier::Create(kSecret)),
        keyring_(*txn::CityKeyring::Dev()),
        unavailable_calls_(unavailable_calls) {}

  grpc::Status UploadBatch(grpc::ServerContext* context, const v1::UploadBatchRequest* request,
                           v1::UploadBatchResponse* response) override {
    absl::StatusOr<v1::Tenant> tenant = Authenticate(*context);
    if (!tenant.ok()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          std::string(tenant.status().message()));
    }
    return Process(*tenant, *request, response);
  }

  grpc::Status UploadStream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::UploadBatchResponse, v1::UploadBatchRequest>* stream) override {
    absl::StatusOr<v1::Tenant> tenant = Authenticate(*context);
    if (!tenant.ok()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          std::string(tenant.status().message()));
    }
    {
      absl::MutexLock lock(&mu_);
      ++streams_;
    }
    v1::UploadBatchRequest request;
    while (stream->Read(&request)) {
      v1::UploadBatchResponse response;
      grpc::Status status = Process(*tenant, request, &response);
      if (!status.ok()) return status;
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }

  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  int streams() {
    absl::MutexLock lock(&mu_);
    return streams_;
  }
  int same_id_in_batch() {
    absl::MutexLock lock(&mu_);
    return same_id_in_batch_;
  }

 private:
  absl::StatusOr<v1::Tenant> Authenticate(const grpc::ServerContext& context) {
    auto auth = context.client_metadata().find("authorization");
    if (auth == context.client_metadata().end()) {
      return absl::UnauthenticatedError("no token");
    }
    absl::string_view bearer(auth->second.data(), auth->second.size());
    if (!absl::ConsumePrefix(&bearer, "Bearer ")) {
      return absl::UnauthenticatedError("not a bearer token");
    }
    return verifier_.Verify(bearer, absl::Now());
  }

  // One batch from `tenant`: the first calls fail UNAVAILABLE, then every item is checked.
  grpc::Status Process(const v1::Tenant& tenant, const v1::UploadBatchRequest& request,
                       v1::UploadBatchResponse* response) {
    absl::MutexLock lock(&mu_);
    if (unavailable_calls_ > 0) {
      --unavailable_calls_;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "kafka is restarting");
    }
    ++calls_;
    std::set<std::string> ids_in_batch;
    response->set_batch_id(request.batch_id());
    for (int i = 0; i < request.transactions_size(); ++i) {
      const v1::TransactionUpload& upload = request.transactions(i);
      const v1::TxnCommon& txn = *txn::CommonOf(upload);
      const std::string id = txn::TxnEventIdOf(upload);
      if (!ids_in_batch.insert(id).second) ++same_id_in_batch_;
      v1::ItemResult* result = response->add_results();
      result->set_index(i);
      result->set_event_id(id);
      const bool owned =
          tenant.kind() == v1::TENANT_KIND_PARTNER
              ? txn.operator_id() == "partner:" + tenant.partner_id() &&
                    absl::StartsWith(txn.terminal_id(), "P-" + tenant.partner_id() + "-")
              : tenant.city() == txn.acquirer_city() &&
                    absl::StartsWith(txn.terminal_id(), absl::StrCat(tenant.city(), "-"));
      if (!owned) {
        result->set_outcome(v1::ITEM_OUTCOME_REJECTED);
        result->set_rule("terminal_not_owned");
        continue;
      }
      absl::StatusOr<crypto::Sm4Key> key =
          keyring_.TerminalKey(txn.acquirer_city(), txn.terminal_id());
      if (!key.ok() || !crypto::VerifySm4Cmac(*key, *txn::MacInput(upload), txn.mac())) {
        result->set_outcome(v1::ITEM_OUTCOME_REJECTED);
        result->set_rule("mac");
        continue;
      }
      auto [stored, inserted] = stored_.emplace(id, upload.SerializeAsString());
      result->set_outcome(inserted ? v1::ITEM_OUTCOME_ACCEPTED
                          : stored->second == upload.SerializeAsString()
                              ? v1::ITEM_OUTCOME_DUPLICATE
                              : v1::ITEM_OUTCOME_CONFLICT);
    }
    return grpc::Status::OK;
  }

  const server::DevTokenVerifier verifier_;
  const txn::CityKeyring keyring_;
  absl::Mutex mu_;
  int unavailable_calls_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  int streams_ ABSL_GUARDED_BY(mu_) = 0;
  int same_id_in_batch_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::string> stored_ ABSL_GUARDED_BY(mu_);
};

struct Server {
  explicit Server(int unavailable_calls) : service(unavailable_calls) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    CHECK(server != nullptr);
    CHECK_GT(port, 0);
  }
  ~Server() { server->Shutdown(); }
  std::string target() const { return absl::StrCat("127.0.0.1:", port); }

  FakeIngest service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

std::vector<v1::TransactionUpload> Records(int64_t count) {
  GeneratorConfig config;
  config.seed = 11;
  config.transactions = count;
  config.cards = 500;
  config.terminals_per_million = 2;
  config.fraud_rate = 0.03;
  config.replay_lag_min = 100;
  auto generator = Generator::Create(config, *txn::CityKeyring::Dev());
  CHECK(generator.ok()) << generator.status();
  std::vector<v1::TransactionUpload> uploads;
  v1::TransactionUpload upload;
  while ((*generator)->Next(&upload)) uploads.push_back(upload);
  return uploads;
}

class DriverModeTest : public testing::TestWithParam<bool> {};

TEST_P(DriverModeTest, UploadsEverythingAsTheRightTenantsAndRetries) {
  const bool use_stream = GetParam();
  Server server(/*unavailable_calls=*/3);
  const std::vector<v1::TransactionUpload> uploads = Records(3000);
  std::set<std::string> unique_ids;
  int64_t repeats = 0;
  for (const v1::TransactionUpload& upload : uploads) {
    if (!unique_ids.insert(txn::TxnEventIdOf(upload)).second) ++repeats;
  }
  ASSERT_GT(repeats, 0) << "the run should contain replays";

  DriverConfig config;
  config.target = server.target();
  config.batch_size = 64;
  config.concurrency = 3;
  config.dev_token_secret = std::string(kSecret);
  config.use_stream = use_stream;
  std::ostringstream acked;
  absl::StatusOr<std::unique_ptr<Driver>> driver = Driver::Create(config, nullptr, &acked);
  ASSERT_TRUE(driver.ok()) << driver.status();
  for (const v1::TransactionUpload& upload : uploads) (*driver)->Add(upload);
  DriverReport report = (*driver)->Finish();

  EXPECT_EQ(report.records, 3000);
  EXPECT_EQ(report.failed_batches, 0) << report.first_error;
  EXPECT_EQ(report.retries, 3);
  EXPECT_EQ(report.rejected, 0) << report.Summary();
  EXPECT_EQ(report.conflict, 0);
  EXPECT_EQ(report.accepted, static_cast<int64_t>(unique_ids.size()));
  EXPECT_EQ(report.duplicate, repeats);
  EXPECT_EQ(report.batches, server.service.calls());
  EXPECT_EQ(server.service.same_id_in_batch(), 0);
  EXPECT_GT(report.p99_ms, 0);
  EXPECT_GE(report.max_ms, report.p99_ms);
  EXPECT_GE(report.p99_ms, report.p50_ms);
  EXPECT_NE(report.Summary().find("tapgen records=3000 "), std::string::npos) << report.Summary();

  std::set<std::string> acked_ids;
  for (absl::string_view line : absl::StrSplit(acked.str(), '\n', absl::SkipEmpty())) {
    acked_ids.insert(std::string(line));
  }
  EXPECT_EQ(acked_ids, unique_ids);
  if (use_stream) {
    // Streams are per worker and tenant, and reopened after each UNAVAILABLE.
    EXPECT_GT(server.service.streams(), 0);
    EXPECT_LE(server.service.streams(), 3 * 120 + 3);
  } else {
    EXPECT_EQ(server.service.streams(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(UnaryAndStream, DriverModeTest, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& info) {
                           return info.param ? "UploadStream" : "UploadBatch";
                         });

TEST(DriverTest, RateIsALowerBoundOnDuration) {
  Server server(0);
  const std::vector<v1::TransactionUpload> uploads = Records(1000);
  DriverConfig config;
  config.target = server.target();
  config.batch_size = 50;
  config.rate = 2000;  // 1,000 records cannot take less than half a second
  config.dev_token_secret = std::string(kSecret);
  auto driver = Driver::Create(config);
  ASSERT_TRUE(driver.ok()) << driver.status();
  for (const v1::TransactionUpload& upload : uploads) (*driver)->Add(upload);
  DriverReport report = (*driver)->Finish();
  EXPECT_EQ(report.failed_batches, 0);
  EXPECT_GE(report.elapsed_seconds, 0.45);
}

TEST(DriverTest, WrongSecretFailsEveryBatchWithoutRetrying) {
  Server server(0);
  DriverConfig config;
  config.target = server.target();
  config.batch_size = 100;
  config.dev_token_secret = "not-the-ingest-secret-at-all";
  auto driver = Driver::Create(config);
  ASSERT_TRUE(driver.ok());
  for (const v1::TransactionUpload& upload : Records(500)) (*driver)->Add(upload);
  DriverReport report = (*driver)->Finish();
  EXPECT_EQ(report.failed_records, 500);
  EXPECT_EQ(report.retries, 0);
  EXPECT_EQ(report.accepted, 0);
  EXPECT_NE(report.first_error.find("signature"), std::string::npos) << report.first_error;
}

TEST(DriverTest, ConfigIsValidated) {
  DriverConfig config;
  config.target = "127.0.0.1:1";
  config.dev_token_secret = "short";
  EXPECT_NE(Driver::Create(config).status().message().find("driver.dev_token_secret"),
            std::string::npos);
  config.dev_token_secret = std::string(kSecret);
  config.batch_size = 10001;
  EXPECT_NE(Driver::Create(config).status().message().find("driver.batch_size"), std::string::npos);
  config.batch_size = 10;
  config.concurrency = 0;
  EXPECT_NE(Driver::Create(config).status().message().find("driver.concurrency"),
            std::string::npos);
  config.concurrency = 1;
  config.target = "";
  EXPECT_NE(Driver::Create(config).status().message().find("driver.target"), std::string::npos);
}

}  // namespace
}  // namespace tongka::tapgen
