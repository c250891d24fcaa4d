// A retried upload is safe across an ingest crash, on the real broker.
//
// The ingest binary runs as a subprocess with the "ingest.after_kafka_ack" failpoint armed: it
// takes a batch of 200 signed taps, Kafka acknowledges all of them, and the process dies by
// SIGKILL before it records them in its dedup index, so the client never hears back. The client
// retries the same batch against a restarted ingest (same state dir, no failpoint). Then:
//   - every item of the retry is DUPLICATE: the restarted ingest caught its index up from
//     tongka.txn before serving (dedup_catch_up.h), instead of appending the batch again;
//   - tongka.txn holds each of the 200 transactions exactly once.
// And a fatal producer error (failpoint "producer.fatal_error") stops ingest with a non-zero exit
// instead of leaving it up, answering UNAVAILABLE forever; nothing is acknowledged or appended.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/metrics/test_support.h"
#include "libs/server/authenticator.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "libs/testing/subprocess.h"
#include "libs/txn/keys.h"
#include "proto/events.pb.h"
#include "proto/ingest.grpc.pb.h"
#include "services/ingest/testing/topic_reader.h"
#include "services/ingest/testing/uploads.h"

namespace tongka {
namespace {

constexpr char kSecret[] = "ingest-crash-test-dev-secret-0123456789";
constexpr int kTaps = 200;

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

std::unique_ptr<testing::Subprocess> StartIngest(const std::string& bootstrap, int grpc_port,
                                                 const std::string& failpoints) {
  std::map<std::string, std::string> env;
  if (!failpoints.empty()) env["TONGKA_FAILPOINTS"] = failpoints;
  auto process = testing::Subprocess::Start(
      {"services/ingest/tongka_ingest", "--kafka_bootstrap=" + bootstrap,
       "--state_dir=" + TempPath("ingest"), "--grpc_host=127.0.0.1",
       absl::StrCat("--grpc_port=", grpc_port), "--auth=dev",
       absl::StrCat("--dev_token_secret=", kSecret), "--metrics_port=-1"},
      env, TempPath("ingest.log"));
  EXPECT_TRUE(process.ok()) << process.status();
  return process.ok() ? std::move(*process) : nullptr;
}

grpc::Status Upload(int grpc_port, const v1::UploadBatchRequest& request,
                    v1::UploadBatchResponse* response) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_port),
                                     grpc::InsecureChannelCredentials());
  // The service listens only once its dedup index has caught up with the log.
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(60))) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "ingest never started listening");
  }
  auto stub = v1::IngestService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  server::AttachDevToken(&context, *server::DevTokenIssuer::Create(kSecret)->Issue(
                                       server::CityTenant(310000), absl::Now() + absl::Hours(1)));
  return stub->UploadBatch(&context, request, response);
}

v1::UploadBatchRequest SignedTaps() {
  const txn::CityKeyring keyring = *txn::CityKeyring::Dev();
  v1::UploadBatchRequest request;
  for (int i = 0; i < kTaps; ++i) {
    *request.add_transactions() =
        ingest::testing::SignedTap(keyring, {.card_serial = static_cast<uint64_t>(i % 50 + 1),
                                             .terminal_serial = static_cast<uint32_t>(i % 10 + 1),
                                             .seq = static_cast<uint64_t>(i + 1),
                                             .occurred_at = absl::Now() - absl::Minutes(1)});
  }
  return request;
}

TEST(IngestCrashTest, RetryAfterACrashBetweenKafkaAckAndIndexIsDuplicate) {
  auto kafka = event_log::LocalKafka::Start(TempPath("kafka"));
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  const std::string bootstrap = (*kafka)->bootstrap();
  ASSERT_TRUE(event_log::EnsureTopics({.bootstrap_servers = bootstrap},
                                      {{.name = "tongka.txn", .partitions = 8},
                                       {.name = "tongka.txn.conflicts", .partitions = 8},
                                       {.name = "tongka.members", .partitions = 1}},
                                      absl::Seconds(60))
                  .ok());
  const v1::UploadBatchRequest request = SignedTaps();
  const int grpc_port = metrics::test_support::PickFreeTcpPort();

  // 1. The armed ingest dies after Kafka's ack, before its index write; the call fails.
  auto armed = StartIngest(bootstrap, grpc_port, "ingest.after_kafka_ack");
  ASSERT_NE(armed, nullptr);
  v1::UploadBatchResponse response;
  grpc::Status status = Upload(grpc_port, request, &response);
  EXPECT_FALSE(status.ok()) << "the armed ingest answered";
  const int exit_status = armed->Wait();
  ASSERT_TRUE(WIFSIGNALED(exit_status) && WTERMSIG(exit_status) == SIGKILL)
      << "ingest did not die at the failpoint; log:\n"
      << armed->Log();

  // 2. The retry against a restarted ingest: all DUPLICATE.
  auto restarted = StartIngest(bootstrap, grpc_port, "");
  ASSERT_NE(restarted, nullptr);
  response.Clear();
  status = Upload(grpc_port, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << restarted->Log();
  ASSERT_EQ(response.results_size(), kTaps);
  EXPECT_EQ(response.duplicate(), kTaps) << "accepted " << response.accepted() << " again";
  EXPECT_EQ(response.accepted(), 0);
  restarted->TerminateAndWait(absl::Seconds(20));

  // 3. The log holds each transaction exactly once.
  auto records = ingest::testing::ReadTopic(bootstrap, "tongka.txn", absl::Seconds(30));
  ASSERT_TRUE(records.ok()) << records.status();
  std::map<std::string, int> copies;
  for (const auto& record : *records) {
    v1::Event event;
    ASSERT_TRUE(event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())));
    ++copies[event.event_id()];
  }
  EXPECT_EQ(copies.size(), static_cast<size_t>(kTaps));
  for (const auto& [event_id, n] : copies) EXPECT_EQ(n, 1) << event_id;
}

// A fatal error of the idempotent producer cannot heal: ingest must not stay up answering
// UNAVAILABLE forever. With the failpoint "producer.fatal_error" the first produce raises one;
// the upload is not acknowledged, and the process stops by itself with a non-zero status (so the
// orchestrator restarts it with a new producer); nothing reached the topic.
TEST(IngestCrashTest, FatalProducerErrorStopsTheServiceAndAcknowledgesNothing) {
  std::filesystem::remove_all(TempPath("kafka-fatal"));
  std::filesystem::remove_all(TempPath("ingest"));
  auto kafka = event_log::LocalKafka::Start(TempPath("kafka-fatal"));
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  const std::string bootstrap = (*kafka)->bootstrap();
  ASSERT_TRUE(event_log::EnsureTopics({.bootstrap_servers = bootstrap},
                                      {{.name = "tongka.txn", .partitions = 8},
                                       {.name = "tongka.txn.conflicts", .partitions = 8},
                                       {.name = "tongka.members", .partitions = 1}},
                                      absl::Seconds(60))
                  .ok());
  const int grpc_port = metrics::test_support::PickFreeTcpPort();
  auto ingest = StartIngest(bootstrap, grpc_port, "producer.fatal_error");
  ASSERT_NE(ingest, nullptr);
  v1::UploadBatchResponse response;
  const grpc::Status status = Upload(grpc_port, SignedTaps(), &response);
  EXPECT_FALSE(status.ok() && response.accepted() > 0)
      << "acknowledged " << response.accepted() << " with a broken producer";
  if (!status.ok()) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  }
  const std::optional<int> exit_status = ingest->WaitFor(absl::Seconds(60));
  ASSERT_TRUE(exit_status.has_value()) << "ingest kept running after a fatal producer error:\n"
                                       << ingest->Log();
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) != 0)
      << "exit status " << *exit_status << "\n"
      << ingest->Log();
  auto records = ingest::testing::ReadTopic(bootstrap, "tongka.txn", absl::Seconds(30));
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_TRUE(records->empty()) << records->size() << " records reached the topic";
}

}  // namespace
}  // namespace tongka
