// No acknowledged transaction is lost or doubled when Kafka goes away mid-upload, on the real
// broker.
//
// A real single-node Kafka (LocalKafka) and the ingest service (IngestApp, in process, dev
// tokens, its own RocksDB) take 60,000 signed taps from four concurrent gRPC uploaders in
// batches of 500, while the broker is stopped (SIGTERM) and restarted twice in the middle of the
// upload. Uploaders behave like real clients: a batch that fails UNAVAILABLE or
// RESOURCE_EXHAUSTED is retried after the `retry-after-ms` hint until it succeeds; every item of
// a successful answer is ACCEPTED or DUPLICATE (a retry of what Kafka already had). Then the
// whole topic is read back and compared with the acknowledged ids:
//   - every acknowledged event_id is in tongka.txn exactly once (no loss, no double append);
//   - nothing else is there;
//   - the outages really happened (some calls failed UNAVAILABLE and were retried).
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "proto/ingest.grpc.pb.h"
#include "services/ingest/ingest_app.h"
#include "services/ingest/testing/topic_reader.h"
#include "services/ingest/testing/uploads.h"

namespace tongka {
namespace {

constexpr int kUploaders = 4;
constexpr int kBatchesPerUploader = 30;
constexpr int kBatchSize = 500;
constexpr char kSecret[] = "no-loss-test-dev-secret-0123456789";

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

TEST(IngestNoLossTest, BrokerRestartedMidUploadEveryAckedTxnExactlyOnce) {
  auto kafka = event_log::LocalKafka::Start(TempPath("kafka"));
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  const std::string bootstrap = (*kafka)->bootstrap();
  ASSERT_TRUE(event_log::EnsureTopics({.bootstrap_servers = bootstrap},
                                      {{.name = ingest::kTxnTopic, .partitions = 8},
                                       {.name = ingest::kMembersTopic, .partitions = 1}},
                                      absl::Seconds(60))
                  .ok());

  ingest::IngestConfig config;
  config.kafka_bootstrap = bootstrap;
  config.state_dir = TempPath("ingest");
  config.grpc.listen_address = "127.0.0.1:0";
  config.grpc.auth_mode = server::AuthMode::kDevToken;
  config.grpc.dev_token_secret = kSecret;
  config.metrics_port = -1;
  config.ack_timeout = absl::Seconds(3);
  config.retry_after = absl::Milliseconds(300);
  // Without its conflict topic ingest does not start (auto-creation is off, as in production).
  auto refused = ingest::IngestApp::Create(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), ingest::kConflictTopic))
      << refused.status();
  const absl::Status conflict_topic = event_log::EnsureTopics(
      {.bootstrap_servers = bootstrap}, {{.name = ingest::kConflictTopic, .partitions = 8}},
      absl::Seconds(60));
  ASSERT_TRUE(conflict_topic.ok()) << conflict_topic;
  auto app = ingest::IngestApp::Create(config);
  ASSERT_TRUE(app.ok()) << app.status();
  const std::string target = absl::StrCat("127.0.0.1:", (*app)->grpc_port());
  const std::string token = *server::DevTokenIssuer::Create(kSecret)->Issue(
      server::CityTenant(310000), absl::Now() + absl::Hours(1));
  const txn::CityKeyring keyring = *txn::CityKeyring::Dev();

  absl::Mutex mu;
  absl::flat_hash_set<std::string> acknowledged;  // ACCEPTED or DUPLICATE
  std::atomic<int> batches_done{0};
  std::atomic<int> unavailable{0};
  std::atomic<int> duplicates{0};
  std::atomic<bool> failed{false};
  auto uploader = [&](int u) {
    auto stub =
        v1::IngestService::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    for (int b = 0; b < kBatchesPerUploader && !failed; ++b) {
      v1::UploadBatchRequest request;
      request.set_batch_id(absl::StrCat(u, "/", b));
      for (int i = 0; i < kBatchSize; ++i) {
        const uint64_t n = (static_cast<uint64_t>(u) * kBatchesPerUploader + b) * kBatchSize + i;
        *request.add_transactions() = ingest::testing::SignedTap(
            keyring, {.card_serial = n % 5000 + 1,
                      .terminal_serial = static_cast<uint32_t>(u * 100 + i % 100 + 1),
                      .seq = n + 1,
                      .occurred_at = absl::Now() - absl::Minutes(1)});
      }
      for (int attempt = 0;; ++attempt) {
        if (attempt > 400) {
          failed = true;
          ADD_FAILURE() << "batch " << request.batch_id() << " never succeeded";
          return;
        }
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        server::AttachDevToken(&context, token);
        v1::UploadBatchResponse response;
        grpc::Status status = stub->UploadBatch(&context, request, &response);
        if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
            status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          ++unavailable;
          int64_t retry_ms = 300;
          auto hint = context.GetServerTrailingMetadata().find("retry-after-ms");
          if (hint != context.GetServerTrailingMetadata().end()) {
            EXPECT_TRUE(absl::SimpleAtoi(
                absl::string_view(hint->second.data(), hint->second.size()), &retry_ms));
          }
          absl::SleepFor(absl::Milliseconds(retry_ms));
          continue;
        }
        if (!status.ok()) {
          failed = true;
          ADD_FAILURE() << "batch " << request.batch_id() << ": " << status.error_code() << " "
                        << status.error_message();
          return;
        }
        absl::MutexLock lock(&mu);
        for (const v1::ItemResult& r : response.results()) {
          if (r.outcome() != v1::ITEM_OUTCOME_ACCEPTED &&
              r.outcome() != v1::ITEM_OUTCOME_DUPLICATE) {
            failed = true;
            ADD_FAILURE() << "item " << r.index() << " of " << request.batch_id() << ": "
                          << r.outcome() << " " << r.rule() << " " << r.message();
            return;
          }
          if (r.outcome() == v1::ITEM_OUTCOME_DUPLICATE) ++duplicates;
          acknowledged.insert(r.event_id());
        }
        break;
      }
      ++batches_done;
    }
  };
  std::vector<std::thread> uploaders;
  for (int u = 0; u < kUploaders; ++u) uploaders.emplace_back(uploader, u);

  // Two outages, each starting once a share of the batches is in.
  const int total_batches = kUploaders * kBatchesPerUploader;
  for (int outage = 1; outage <= 2; ++outage) {
    while (batches_done < total_batches * outage / 3 && !failed) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_TRUE((*kafka)->Stop().ok());
    absl::SleepFor(absl::Seconds(4));
    ASSERT_TRUE((*kafka)->Restart().ok());
    ASSERT_EQ((*kafka)->bootstrap(), bootstrap) << "the broker came back on another address";
  }
  for (std::thread& t : uploaders) t.join();
  ASSERT_FALSE(failed.load());
  (*app)->Shutdown(absl::Now() + absl::Seconds(10));

  auto records = ingest::testing::ReadTopic(bootstrap, ingest::kTxnTopic, absl::Minutes(2));
  ASSERT_TRUE(records.ok()) << records.status();
  absl::flat_hash_map<std::string, int> copies;
  for (const event_log::Record& record : *records) {
    v1::Event event;
    ASSERT_TRUE(event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())));
    ++copies[event.event_id()];
  }
  const size_t expected = static_cast<size_t>(kUploaders) * kBatchesPerUploader * kBatchSize;
  EXPECT_EQ(acknowledged.size(), expected);
  int missing = 0, doubled = 0;
  for (const std::string& id : acknowledged) {
    auto it = copies.find(id);
    if (it == copies.end()) {
      ++missing;
    } else if (it->second != 1) {
      ++doubled;
    }
  }
  EXPECT_EQ(missing, 0) << "acknowledged but not in tongka.txn";
  EXPECT_EQ(doubled, 0) << "acknowledged ids appended more than once";
  EXPECT_EQ(copies.size(), acknowledged.size()) << "events in the topic nobody acknowledged";
  EXPECT_EQ(records->size(), expected);
  EXPECT_GT(unavailable.load(), 0) << "the outages never reached a client: the test proved nothing";
  std::cout << "acknowledged=" << acknowledged.size() << " records=" << records->size()
            << " unavailable_retries=" << unavailable.load()
            << " duplicates_on_retry=" << duplicates.load() << std::endl;
}

}  // namespace
}  // namespace tongka
