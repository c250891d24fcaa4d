// Proves the ingest service end to end: a real IngestApp (RocksDB in TEST_TMPDIR, gRPC on a
// kernel-chosen port, dev tokens, a manual clock) producing to librdkafka's embedded mock
// broker, called through the generated gRPC stub. It shows that
//   - a batch with good and bad items acks the good ones (they are in tongka.txn, keyed by card,
//     with the envelope filled in) and names field and rule of the bad ones;
//   - the same batch again is all DUPLICATE and appends nothing; a repeat inside one batch is
//     DUPLICATE; the same id with other content is CONFLICT, kept as evidence, not appended;
//   - idempotency survives an ingest restart on the same store directory;
//   - tenancy: another city's terminals are REJECTED terminal_not_yours (per item, so the good
//     items of the batch still go through); the ministry gets PERMISSION_DENIED; no token gets
//     UNAUTHENTICATED; a partner uploads its own shops' transactions;
//   - late uploads are accepted and flagged; more than 10,000 items is INVALID_ARGUMENT;
//   - the streaming RPC answers each batch in order;
//   - with Kafka unreachable the call fails UNAVAILABLE with a retry-after-ms hint, and a retry
//     of the same batch does not produce a second copy while the first is in flight;
//   - admission: a call beyond max_concurrent_calls (a stream included) or a batch beyond
//     max_inflight_items fails RESOURCE_EXHAUSTED with the retry hint, changes nothing, is
//     counted, and goes through once there is room;
//   - streams cancelled while their batches run end before their service, whose destructor joins
//     its stream workers; no reactor is freed before its last batch returns, or never;
//   - the metrics count outcomes by city and rule.
#include "services/ingest/ingest_service.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/metrics/metrics.h"
#include "libs/server/dev_token.h"
#include "libs/server/grpc_server.h"
#include "libs/server/tenant.h"
#include "proto/ingest.grpc.pb.h"
#include "services/ingest/ingest_app.h"
#include "services/ingest/ingest_metrics.h"
#include "services/ingest/testing/topic_reader.h"
#include "services/ingest/testing/uploads.h"

namespace tongka::ingest {
namespace {

using testing::SignedLoad;
using testing::SignedRefund;
using testing::SignedTap;

constexpr char kSecret[] = "ingest-test-dev-secret-0123456789";
const absl::Time kStart = absl::FromUnixSeconds(1767225600) + absl::Minutes(1);

class ManualClock {
 public:
  absl::Time Now() const {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = kStart;
};

// Waits (up to 30 s) until `done` holds; false if it never did.
bool Eventually(const std::function<bool()>& done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

class IngestServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = event_log::EmbeddedBroker::Start();
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
    ASSERT_TRUE(broker_->CreateTopic(kTxnTopic, 4).ok());
    ASSERT_TRUE(broker_->CreateTopic(kConflictTopic, 4).ok());
    ASSERT_TRUE(broker_->CreateTopic(kMembersTopic, 1).ok());
    state_dir_ = absl::StrCat(::testing::TempDir(), "/ingest_",
                              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(state_dir_);
    keyring_ = *txn::CityKeyring::Dev();
    StartApp(broker_->bootstrap());
  }

  void StartApp(const std::string& bootstrap, absl::Duration ack_timeout = absl::Seconds(10),
                const std::function<void(IngestConfig&)>& adjust = nullptr) {
    app_.reset();
    IngestConfig config;
    config.kafka_bootstrap = bootstrap;
    config.state_dir = state_dir_;
    config.grpc.listen_address = "127.0.0.1:0";
    config.grpc.auth_mode = server::AuthMode::kDevToken;
    config.grpc.dev_token_secret = kSecret;
    config.metrics_port = -1;
    config.ack_timeout = ack_timeout;
    config.retry_after = absl::Milliseconds(250);
    if (adjust) adjust(config);
    auto app = IngestApp::Create(config, [clock = &clock_] { return clock->Now(); });
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = std::move(*app);
    stub_ = v1::IngestService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", app_->grpc_port()), grpc::InsecureChannelCredentials()));
  }

  std::string Token(const v1::Tenant& tenant) {
    return *server::DevTokenIssuer::Create(kSecret)->Issue(tenant, kStart + absl::Hours(24 * 365));
  }

  grpc::Status Upload(const v1::UploadBatchRequest& request, v1::UploadBatchResponse* response,
                      const v1::Tenant& tenant = server::CityTenant(310000),
                      std::string* retry_after = nullptr) {
    grpc::ClientContext context;
    if (tenant.kind() != v1::TENANT_KIND_UNSPECIFIED) {
      server::AttachDevToken(&context, Token(tenant));
    }
    grpc::Status status = stub_->UploadBatch(&context, request, response);
    if (retry_after != nullptr) {
      auto it = context.GetServerTrailingMetadata().find("retry-after-ms");
      if (it != context.GetServerTrailingMetadata().end()) {
        *retry_after = std::string(it->second.data(), it->second.size());
      }
    }
    return status;
  }

  // An UploadStream of city 310000's operator on `context`.
  std::unique_ptr<grpc::ClientReaderWriter<v1::UploadBatchRequest, v1::UploadBatchResponse>>
  OpenStream(grpc::ClientContext* context) {
    server::AttachDevToken(context, Token(server::CityTenant(310000)));
    return stub_->UploadStream(context);
  }

  // Stops Kafka, then writes every request down a new stream on `context` and waits until
  // `waiting` of their transactions are admitted (the batches in progress, held by Kafka).
  std::unique_ptr<grpc::ClientReaderWriter<v1::UploadBatchRequest, v1::UploadBatchResponse>>
  StreamHeldByKafka(grpc::ClientContext* context,
                    const std::vector<v1::UploadBatchRequest>& requests, int64_t waiting) {
    EXPECT_TRUE(broker_->SetDown(true).ok());
    auto stream = OpenStream(context);
    for (const v1::UploadBatchRequest& request : requests) EXPECT_TRUE(stream->Write(request));
    EXPECT_TRUE(Eventually([&] { return app_->ingest_api().admitted_items() == waiting; }));
    return stream;
  }

  // Brings Kafka back and waits until every record still in the producer has its report (no id
  // is claimed any more); false if the broker did not come back or a report never came.
  bool KafkaBackAndSettled() {
    return broker_->SetDown(false).ok() &&
           Eventually([this] { return app_->ingest_api().claimed() == 0; });
  }

  // Whether the calls_in_progress gauge is back to 0 (every call and stream has ended).
  bool NoCallInProgress() {
    return absl::StrContains(app_->registry().ExpositionText(),
                             "tongka_ingest_calls_in_progress 0");
  }

  std::vector<v1::Event> TopicEvents(const std::string& topic = kTxnTopic) {
    auto records = testing::ReadTopic(broker_->bootstrap(), topic, absl::Seconds(30));
    EXPECT_TRUE(records.ok()) << records.status();
    std::vector<v1::Event> events;
    if (!records.ok()) return events;
    for (const event_log::Record& record : *records) {
      v1::Event& event = events.emplace_back();
      EXPECT_TRUE(event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())));
    }
    return events;
  }

  v1::UploadBatchRequest Batch(std::vector<v1::TransactionUpload> uploads,
                               const std::string& id = "b1") {
    v1::UploadBatchRequest request;
    request.set_batch_id(id);
    for (auto& u : uploads) *request.add_transactions() = std::move(u);
    return request;
  }

  ManualClock clock_;
  std::unique_ptr<event_log::EmbeddedBroker> broker_;
  std::string state_dir_;
  txn::CityKeyring keyring_ = *txn::CityKeyring::Dev();
  std::unique_ptr<IngestApp> app_;
  std::unique_ptr<v1::IngestService::Stub> stub_;
};

TEST_F(IngestServiceTest, GoodItemsAckedBadItemsNamed) {
  v1::TransactionUpload forged = SignedTap(keyring_, {.seq = 4});
  forged.mutable_tap()->mutable_txn()->set_mac(std::string(16, 'x'));
  v1::UploadBatchRequest request = Batch({
      SignedTap(keyring_, {.issuer_city = 330200, .card_serial = 7, .seq = 1}),
      SignedLoad(keyring_, {.card_serial = 8, .seq = 2}),
      SignedRefund(keyring_, {.card_serial = 9, .seq = 3}),
      forged,
      SignedTap(keyring_, {.acquirer_city = 330200, .seq = 5}),
  });
  v1::UploadBatchResponse response;
  grpc::Status status = Upload(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.batch_id(), "b1");
  ASSERT_EQ(response.results_size(), 5);
  EXPECT_EQ(response.accepted(), 3);
  EXPECT_EQ(response.rejected(), 2);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(response.results(i).outcome(), v1::ITEM_OUTCOME_ACCEPTED) << i;
    EXPECT_EQ(response.results(i).index(), i);
    EXPECT_FALSE(response.results(i).late());
  }
  EXPECT_EQ(response.results(0).event_id(), "txn/310000-BUS-000001/1");
  EXPECT_EQ(response.results(3).outcome(), v1::ITEM_OUTCOME_REJECTED);
  EXPECT_EQ(response.results(3).field(), "tap.txn.mac");
  EXPECT_EQ(response.results(3).rule(), "mac_verify");
  EXPECT_EQ(response.results(4).rule(), "terminal_not_yours");
  EXPECT_EQ(response.results(4).field(), "tap.txn.terminal_id");

  std::vector<v1::Event> events = TopicEvents();
  ASSERT_EQ(events.size(), 3u);
  std::map<std::string, v1::Event> by_id;
  for (const v1::Event& e : events) by_id[e.event_id()] = e;
  const v1::Event& tap = by_id.at("txn/310000-BUS-000001/1");
  EXPECT_EQ(tap.recorded_at_us(), absl::ToUnixMicros(kStart));
  EXPECT_EQ(tap.occurred_at_us(), request.transactions(0).occurred_at_us());
  EXPECT_EQ(tap.source().city(), 310000u);
  EXPECT_EQ(tap.tap().txn().card_id(), request.transactions(0).tap().txn().card_id());
  EXPECT_EQ(tap.tap().txn().mac(), request.transactions(0).tap().txn().mac());
  EXPECT_TRUE(by_id.count("txn/310000-METRO-000001/2"));
  EXPECT_TRUE(by_id.count("txn/310000-RETAIL-000001/3"));

  // Keyed by card: every record's key is its card id.
  auto records = testing::ReadTopic(broker_->bootstrap(), kTxnTopic, absl::Seconds(30));
  ASSERT_TRUE(records.ok());
  for (const event_log::Record& record : *records) {
    v1::Event event;
    ASSERT_TRUE(event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())));
    const v1::TxnCommon& txn = event.has_tap()    ? event.tap().txn()
                               : event.has_load() ? event.load().txn()
                                                  : event.refund().txn();
    EXPECT_EQ(record.key, txn.card_id());
  }

  const std::string metrics = app_->registry().ExpositionText();
  EXPECT_TRUE(absl::StrContains(
      metrics, "tongka_ingest_items_total{outcome=\"accepted\",city=\"310000\"} 3"))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics, "tongka_ingest_rejected_total{rule=\"mac_verify\",city=\"310000\"} 1"));
  EXPECT_TRUE(absl::StrContains(
      metrics, "tongka_ingest_rejected_total{rule=\"terminal_not_yours\",city=\"330200\"} 1"));
  EXPECT_TRUE(
      absl::StrContains(metrics, "tongka_ingest_cross_city_accepted_total{city=\"310000\"} 1"));
  EXPECT_TRUE(absl::StrContains(metrics, "tongka_ingest_batch_items_count 1"));
  EXPECT_TRUE(absl::StrContains(metrics, "tongka_state_store_size_bytes"));
}

TEST_F(IngestServiceTest, SameBatchTwiceIsAllDuplicate) {
  v1::UploadBatchRequest request;
  for (uint64_t seq = 1; seq <= 50; ++seq) {
    *request.add_transactions() = SignedTap(keyring_, {.card_serial = seq, .seq = seq});
  }
  v1::UploadBatchResponse first, second;
  ASSERT_TRUE(Upload(request, &first).ok());
  EXPECT_EQ(first.accepted(), 50);
  ASSERT_TRUE(Upload(request, &second).ok());
  EXPECT_EQ(second.duplicate(), 50);
  EXPECT_EQ(second.accepted(), 0);
  for (const v1::ItemResult& r : second.results()) {
    EXPECT_EQ(r.outcome(), v1::ITEM_OUTCOME_DUPLICATE);
    EXPECT_FALSE(r.event_id().empty());
  }
  EXPECT_EQ(TopicEvents().size(), 50u);
  EXPECT_EQ(app_->ingest_api().claimed(), 0);
}

TEST_F(IngestServiceTest, RepeatInsideOneBatchIsDuplicate) {
  v1::TransactionUpload tap = SignedTap(keyring_, {});
  v1::UploadBatchResponse response;
  ASSERT_TRUE(Upload(Batch({tap, tap, tap}), &response).ok());
  EXPECT_EQ(response.results(0).outcome(), v1::ITEM_OUTCOME_ACCEPTED);
  EXPECT_EQ(response.results(1).outcome(), v1::ITEM_OUTCOME_DUPLICATE);
  EXPECT_EQ(response.results(2).outcome(), v1::ITEM_OUTCOME_DUPLICATE);
  EXPECT_EQ(TopicEvents().size(), 1u);
}

TEST_F(IngestServiceTest, SameIdOtherContentIsConflictKeptAsEvidence) {
  v1::UploadBatchResponse response;
  ASSERT_TRUE(Upload(Batch({SignedTap(keyring_, {.amount_fen = 200})}), &response).ok());
  ASSERT_EQ(response.accepted(), 1);
  // A clone: same terminal and sequence number, another amount, validly signed.
  ASSERT_TRUE(Upload(Batch({SignedTap(keyring_, {.amount_fen = 300}),
                            SignedTap(keyring_, {.amount_fen = 400})}),
                     &response)
                  .ok());
  EXPECT_EQ(response.conflict(), 2);
  EXPECT_EQ(response.results(0).outcome(), v1::ITEM_OUTCOME_CONFLICT);
  EXPECT_EQ(response.results(0).event_id(), "txn/310000-BUS-000001/1");
  std::vector<v1::Event> events = TopicEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].tap().amount_fen(), 200);
  auto evidence = app_->dedup().Conflicts("txn/310000-BUS-000001/1");
  ASSERT_TRUE(evidence.ok());
  ASSERT_EQ(evidence->size(), 2u);
  EXPECT_EQ((*evidence)[0].upload().tap().amount_fen(), 300);
  EXPECT_EQ((*evidence)[1].upload().tap().amount_fen(), 400);
  EXPECT_EQ((*evidence)[0].source().city(), 310000u);
  EXPECT_TRUE(
      absl::StrContains(app_->registry().ExpositionText(),
                        "tongka_ingest_items_total{outcome=\"conflict\",city=\"310000\"} 2"));
  // Each conflicting content is on the conflict topic once, for fraud, keyed by the card.
  std::vector<v1::Event> conflicts = TopicEvents(kConflictTopic);
  ASSERT_EQ(conflicts.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const v1::Event& event = conflicts[i];
    ASSERT_EQ(event.body_case(), v1::Event::kTxnConflict);
    EXPECT_EQ(event.txn_conflict().txn_event_id(), "txn/310000-BUS-000001/1");
    EXPECT_EQ(event.txn_conflict().accepted_digest(), (*evidence)[i].accepted_digest());
    EXPECT_EQ(event.txn_conflict().conflicting_digest(), (*evidence)[i].conflicting_digest());
    EXPECT_NE(event.txn_conflict().accepted_digest(), event.txn_conflict().conflicting_digest());
    EXPECT_EQ(event.source().city(), 310000u);
    EXPECT_EQ(event.txn_conflict().tap().txn().card_id(), events[0].tap().txn().card_id());
    EXPECT_TRUE(absl::StartsWith(event.event_id(), "conflict/txn/310000-BUS-000001/1/"))
        << event.event_id();
  }
  std::set<int64_t> amounts = {conflicts[0].txn_conflict().tap().amount_fen(),
                               conflicts[1].txn_conflict().tap().amount_fen()};
  EXPECT_EQ(amounts, (std::set<int64_t>{300, 400}));
  EXPECT_NE(conflicts[0].event_id(), conflicts[1].event_id());

  // The client retries the conflicting batch: CONFLICT again, but kept and counted once.
  ASSERT_TRUE(Upload(Batch({SignedTap(keyring_, {.amount_fen = 300}),
                            SignedTap(keyring_, {.amount_fen = 400})}),
                     &response)
                  .ok());
  EXPECT_EQ(response.conflict(), 2);
  EXPECT_EQ(app_->dedup().Conflicts("txn/310000-BUS-000001/1")->size(), 2u);
  EXPECT_TRUE(
      absl::StrContains(app_->registry().ExpositionText(),
                        "tongka_ingest_items_total{outcome=\"conflict\",city=\"310000\"} 2"));
  EXPECT_EQ(TopicEvents().size(), 1u);
  EXPECT_EQ(TopicEvents(kConflictTopic).size(), 2u) << "a retried conflict is not published again";
}

// Kafka takes a conflict only after the call gave up: the late report keeps the evidence (and
// never touches the accepted transaction's entry), so the retry is answered CONFLICT without a
// second event on the conflict topic.
TEST_F(IngestServiceTest, AConflictKafkaTakesLateIsKeptOnceAndPublishedOnce) {
  const std::string id = "txn/310000-BUS-000001/1";
  const v1::TransactionUpload accepted = SignedTap(keyring_, {.amount_fen = 200});
  const v1::TransactionUpload clone = SignedTap(keyring_, {.amount_fen = 300});
  v1::UploadBatchResponse response;
  ASSERT_TRUE(Upload(Batch({accepted}), &response).ok());
  ASSERT_EQ(response.accepted(), 1);
  StartApp(broker_->bootstrap(), absl::Milliseconds(500));
  ASSERT_TRUE(broker_->SetDown(true).ok());
  grpc::Status status = Upload(Batch({clone}), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(app_->ingest_api().claimed(), 1) << "the conflict waits in the producer";
  EXPECT_TRUE(app_->dedup().Conflicts(id)->empty()) << "kept before Kafka had it";
  ASSERT_TRUE(broker_->SetDown(false).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (app_->ingest_api().claimed() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(app_->ingest_api().claimed(), 0) << "the late report never came";
  auto evidence = app_->dedup().Conflicts(id);
  ASSERT_EQ(evidence->size(), 1u);
  EXPECT_TRUE((*evidence)[0].published());
  EXPECT_EQ((*evidence)[0].upload().tap().amount_fen(), 300);

  ASSERT_TRUE(Upload(Batch({clone, accepted}), &response).ok());
  EXPECT_EQ(response.results(0).outcome(), v1::ITEM_OUTCOME_CONFLICT);
  EXPECT_EQ(response.results(1).outcome(), v1::ITEM_OUTCOME_DUPLICATE)
      << "the accepted content's entry is untouched";
  EXPECT_EQ(TopicEvents(kConflictTopic).size(), 1u);
  EXPECT_EQ(TopicEvents().size(), 1u);
  EXPECT_TRUE(
      absl::StrContains(app_->registry().ExpositionText(),
                        "tongka_ingest_items_total{outcome=\"conflict\",city=\"310000\"} 1"));
}

TEST_F(IngestServiceTest, IdempotentAcrossRestart) {
  v1::UploadBatchRequest request =
      Batch({SignedTap(keyring_, {.seq = 1}), SignedTap(keyring_, {.seq = 2})});
  v1::UploadBatchResponse response;
  ASSERT_TRUE(Upload(request, &response).ok());
  EXPECT_EQ(response.accepted(), 2);
  StartApp(broker_->bootstrap());  // same state_dir
  ASSERT_TRUE(Upload(request, &response).ok());
  EXPECT_EQ(response.duplicate(), 2);
  EXPECT_EQ(TopicEvents().size(), 2u);
}

TEST_F(IngestServiceTest, Tenancy) {
  v1::UploadBatchResponse response;
  // Another city's terminal in a Shanghai batch: that item only.
  ASSERT_TRUE(
      Upload(Batch({SignedTap(keyring_, {.acquirer_city = 330200}), SignedTap(keyring_, {})}),
             &response)
          .ok());
  EXPECT_EQ(response.results(0).rule(), "terminal_not_yours");
  EXPECT_EQ(response.results(1).outcome(), v1::ITEM_OUTCOME_ACCEPTED);
  // Ningbo uploads its own.
  ASSERT_TRUE(Upload(Batch({SignedTap(keyring_, {.acquirer_city = 330200})}), &response,
                     server::CityTenant(330200))
                  .ok());
  EXPECT_EQ(response.accepted(), 1);
  // A partner uploads its shops anywhere, not the city's terminals.
  ASSERT_TRUE(
      Upload(Batch({SignedTap(keyring_, {.acquirer_city = 450200, .partner_id = "unionmart"}),
                    SignedTap(keyring_, {.seq = 9})}),
             &response, server::PartnerTenant("unionmart"))
          .ok());
  EXPECT_EQ(response.results(0).outcome(), v1::ITEM_OUTCOME_ACCEPTED);
  EXPECT_EQ(response.results(1).rule(), "terminal_not_yours");
  // The ministry reads; it does not upload.
  grpc::Status status =
      Upload(Batch({SignedTap(keyring_, {.seq = 10})}), &response, server::MinistryTenant());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  // No token at all.
  status = Upload(Batch({SignedTap(keyring_, {.seq = 11})}), &response, v1::Tenant());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(TopicEvents().size(), 3u);
}

TEST_F(IngestServiceTest, LateUploadsAreAcceptedAndFlagged) {
  clock_.Advance(absl::Hours(24 * 8));
  v1::UploadBatchResponse response;
  ASSERT_TRUE(Upload(Batch({SignedTap(keyring_, {})}), &response).ok());
  ASSERT_EQ(response.results(0).outcome(), v1::ITEM_OUTCOME_ACCEPTED);
  EXPECT_TRUE(response.results(0).late());
  std::vector<v1::Event> events = TopicEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].tap().txn().late());
  // Beyond the dedup horizon it is refused: a retry could no longer be recognised.
  clock_.Advance(absl::Hours(24 * 30));
  ASSERT_TRUE(Upload(Batch({SignedTap(keyring_, {.seq = 2})}), &response).ok());
  EXPECT_EQ(response.results(0).rule(), "occurred_at_too_old");
}

TEST_F(IngestServiceTest, BatchLimit) {
  v1::UploadBatchRequest request;
  v1::TransactionUpload tap = SignedTap(keyring_, {});
  for (int i = 0; i <= kBatchSizeMax; ++i) *request.add_transactions() = tap;
  v1::UploadBatchResponse response;
  grpc::Status status = Upload(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "transactions")) << status.error_message();
}

TEST_F(IngestServiceTest, StreamAnswersEachBatchInOrder) {
  grpc::ClientContext context;
  auto stream = OpenStream(&context);
  for (uint64_t b = 0; b < 3; ++b) {
    ASSERT_TRUE(stream->Write(Batch({SignedTap(keyring_, {.seq = b + 1})}, absl::StrCat("s", b))));
  }
  // The first batch again: DUPLICATE.
  ASSERT_TRUE(stream->Write(Batch({SignedTap(keyring_, {.seq = 1})}, "s3")));
  stream->WritesDone();
  v1::UploadBatchResponse response;
  for (int b = 0; b < 4; ++b) {
    ASSERT_TRUE(stream->Read(&response)) << b;
    EXPECT_EQ(response.batch_id(), absl::StrCat("s", b));
    EXPECT_EQ(response.results(0).outcome(),
              b < 3 ? v1::ITEM_OUTCOME_ACCEPTED : v1::ITEM_OUTCOME_DUPLICATE);
  }
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(IngestServiceTest, KafkaDownIsUnavailableWithRetryHintAndNoSecondCopy) {
  // Ingest starts (its dedup index catches up from the log), then Kafka goes away: records wait
  // in the producer.
  StartApp(broker_->bootstrap(), absl::Milliseconds(500));
  ASSERT_TRUE(broker_->SetDown(true).ok());
  // The second item breaks a rule: it is counted only by a call that answers, not by each retry.
  v1::UploadBatchRequest request =
      Batch({SignedTap(keyring_, {}), SignedTap(keyring_, {.seq = 2, .amount_fen = 0})});
  v1::UploadBatchResponse response;
  std::string retry_after;
  grpc::Status status = Upload(request, &response, server::CityTenant(310000), &retry_after);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(retry_after, "250");
  // The first copy is still in the producer: the retry waits for it instead of producing again.
  EXPECT_EQ(app_->ingest_api().claimed(), 1);
  status = Upload(request, &response, server::CityTenant(310000), &retry_after);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "still waiting for Kafka"))
      << status.error_message();
  EXPECT_EQ(app_->ingest_api().claimed(), 1);
  const std::string metrics = app_->registry().ExpositionText();
  EXPECT_FALSE(absl::StrContains(metrics, "outcome=\"rejected\",city=\"310000\"} 1") ||
               absl::StrContains(metrics, "outcome=\"rejected\",city=\"310000\"} 2"))
      << "a failed call counted its rejection";
}

TEST_F(IngestServiceTest, AFailedCallCountsWhatKafkaTookOnceAndItsDuplicatesNotAtAll) {
  StartApp(broker_->bootstrap(), absl::Milliseconds(500));
  auto count = [this](absl::string_view outcome) {
    const std::string text = app_->registry().ExpositionText();
    const std::string prefix =
        absl::StrCat("tongka_ingest_items_total{outcome=\"", outcome, "\",city=\"310000\"} ");
    const size_t at = text.find(prefix);
    return at == std::string::npos ? -1 : std::atoi(text.c_str() + at + prefix.size());
  };
  const v1::TransactionUpload x = SignedTap(keyring_, {.seq = 1});
  const v1::TransactionUpload y = SignedTap(keyring_, {.seq = 2});
  v1::UploadBatchResponse response;
  ASSERT_TRUE(Upload(Batch({x}), &response).ok());
  ASSERT_EQ(count("accepted"), 1);
  // Kafka down: the call fails; x, which it found DUPLICATE, is not counted by it.
  ASSERT_TRUE(broker_->SetDown(true).ok());
  EXPECT_EQ(Upload(Batch({x, y}), &response).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(count("duplicate"), 0) << "a failed call counted its duplicate";
  // Kafka takes y after the call gave up: y is counted accepted then, once.
  ASSERT_TRUE(KafkaBackAndSettled());
  EXPECT_EQ(count("accepted"), 2) << "a transaction Kafka took late was not counted";
  // The retry answers both DUPLICATE and counts them; nothing is counted twice.
  ASSERT_TRUE(Upload(Batch({x, y}), &response).ok());
  EXPECT_EQ(response.duplicate(), 2);
  EXPECT_EQ(count("duplicate"), 2);
  EXPECT_EQ(count("accepted"), 2);
  EXPECT_EQ(TopicEvents().size(), 2u);
}

TEST_F(IngestServiceTest, CallsBeyondMaxConcurrentCallsAreRefusedAndChangeNothing) {
  StartApp(broker_->bootstrap(), absl::Seconds(2),
           [](IngestConfig& config) { config.max_concurrent_calls = 1; });
  ASSERT_TRUE(broker_->SetDown(true).ok());
  // The one call slot is taken by a call waiting for Kafka.
  grpc::Status first;
  std::thread holder([&] {
    v1::UploadBatchResponse response;
    first = Upload(Batch({SignedTap(keyring_, {.seq = 1})}, "held"), &response);
  });
  ASSERT_TRUE(Eventually([&] { return app_->ingest_api().admitted_items() == 1; }));

  const v1::UploadBatchRequest second = Batch({SignedTap(keyring_, {.seq = 2})}, "second");
  v1::UploadBatchResponse response;
  std::string retry_after;
  grpc::Status status = Upload(second, &response, server::CityTenant(310000), &retry_after);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "max_concurrent_calls"))
      << status.error_message();
  EXPECT_EQ(retry_after, "250");
  // A stream needs a slot too.
  {
    grpc::ClientContext context;
    auto stream = OpenStream(&context);
    stream->Write(second);
    stream->WritesDone();
    v1::UploadBatchResponse streamed;
    EXPECT_FALSE(stream->Read(&streamed));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // Nothing of the refused calls was claimed or admitted.
  EXPECT_EQ(app_->ingest_api().claimed(), 1);
  EXPECT_EQ(app_->ingest_api().admitted_items(), 1);
  holder.join();
  EXPECT_EQ(first.error_code(), grpc::StatusCode::UNAVAILABLE) << first.error_message();
  const std::string metrics = app_->registry().ExpositionText();
  EXPECT_TRUE(
      absl::StrContains(metrics, "tongka_ingest_refused_total{limit=\"max_concurrent_calls\"} 2"))
      << metrics;
  EXPECT_TRUE(absl::StrContains(
      metrics, "tongka_ingest_requests_total{rpc=\"UploadBatch\",code=\"resource_exhausted\"} 1"));
  EXPECT_TRUE(absl::StrContains(
      metrics, "tongka_ingest_requests_total{rpc=\"UploadStream\",code=\"resource_exhausted\"} 1"));
  EXPECT_TRUE(absl::StrContains(metrics, "tongka_ingest_calls_in_progress 0")) << metrics;

  // With the slot free and Kafka back, the refused call's retry goes through, once.
  // Kafka takes the held call's record once the producer reconnects.
  ASSERT_TRUE(KafkaBackAndSettled());
  status = Upload(second, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.accepted(), 1);
  std::multiset<std::string> ids;
  for (const v1::Event& event : TopicEvents()) ids.insert(event.event_id());
  const std::string second_id = second.transactions(0).tap().txn().terminal_id();
  EXPECT_EQ(ids.count(absl::StrCat("txn/", second_id, "/2")), 1u);
}

TEST_F(IngestServiceTest, BatchesBeyondMaxInflightItemsAreRefusedAndChangeNothing) {
  StartApp(broker_->bootstrap(), absl::Seconds(2),
           [](IngestConfig& config) { config.max_inflight_items = kBatchSizeMax; });
  auto taps = [&](uint64_t first_seq, int n, const std::string& id) {
    v1::UploadBatchRequest request;
    request.set_batch_id(id);
    for (int i = 0; i < n; ++i) {
      *request.add_transactions() = SignedTap(keyring_, {.seq = first_seq + i});
    }
    return request;
  };
  const v1::UploadBatchRequest held = taps(1, 6000, "held");
  const v1::UploadBatchRequest too_many = taps(10001, 5000, "too-many");
  const v1::UploadBatchRequest fits = taps(20001, 4000, "fits");
  ASSERT_TRUE(broker_->SetDown(true).ok());
  grpc::Status first;
  std::thread holder([&] {
    v1::UploadBatchResponse response;
    first = Upload(held, &response);
  });
  ASSERT_TRUE(Eventually([&] { return app_->ingest_api().admitted_items() == 6000; }));

  // 6,000 + 5,000 would exceed 10,000: refused before anything is validated or claimed.
  v1::UploadBatchResponse response;
  std::string retry_after;
  grpc::Status status = Upload(too_many, &response, server::CityTenant(310000), &retry_after);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "max_inflight_items 10000"))
      << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "batch of 5000")) << status.error_message();
  EXPECT_EQ(retry_after, "250");
  EXPECT_EQ(app_->ingest_api().admitted_items(), 6000);
  EXPECT_LE(app_->ingest_api().claimed(), 6000);
  // 6,000 + 4,000 fits: admitted, and then fails as any call does while Kafka is down.
  status = Upload(fits, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  holder.join();
  EXPECT_EQ(first.error_code(), grpc::StatusCode::UNAVAILABLE) << first.error_message();
  EXPECT_EQ(app_->ingest_api().admitted_items(), 0);
  const std::string metrics = app_->registry().ExpositionText();
  EXPECT_TRUE(
      absl::StrContains(metrics, "tongka_ingest_refused_total{limit=\"max_inflight_items\"} 1"))
      << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, "tongka_ingest_admitted_items 0")) << metrics;
  // The refused batch was never seen: once Kafka is back, all of it is ACCEPTED.
  ASSERT_TRUE(KafkaBackAndSettled());
  status = Upload(too_many, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.accepted(), 5000);
}

// Batches of `n` taps with consecutive seqs from `first_seq`, ids "p0", "p1", ...
std::vector<v1::UploadBatchRequest> Consecutive(const txn::CityKeyring& keyring, int batches, int n,
                                                uint64_t first_seq) {
  std::vector<v1::UploadBatchRequest> requests(batches);
  for (int b = 0; b < batches; ++b) {
    requests[b].set_batch_id(absl::StrCat("p", b));
    for (int i = 0; i < n; ++i) {
      *requests[b].add_transactions() =
          SignedTap(keyring, {.seq = first_seq + static_cast<uint64_t>(b * n + i)});
    }
  }
  return requests;
}

// The most `admitted_items` reads over `period`.
int64_t MostAdmitted(const IngestApp& app, absl::Duration period) {
  int64_t most = 0;
  for (const absl::Time end = absl::Now() + period; absl::Now() < end;) {
    most = std::max(most, app.ingest_api().admitted_items());
    absl::SleepFor(absl::Milliseconds(2));
  }
  return most;
}

TEST_F(IngestServiceTest, StreamServesItsWindowOfBatchesAtOnceAndEndsOnAFailure) {
  StartApp(broker_->bootstrap(), absl::Seconds(2),
           [](IngestConfig& config) { config.stream_window = 4; });
  const std::vector<v1::UploadBatchRequest> requests = Consecutive(keyring_, 6, 100, 1);
  {
    grpc::ClientContext context;
    // Four batches wait for Kafka at once, not one, and not more than the window.
    auto stream = StreamHeldByKafka(&context, requests, 400);
    ASSERT_FALSE(HasFailure());
    EXPECT_LE(MostAdmitted(*app_, absl::Milliseconds(300)), 400);
    stream->WritesDone();
    // The first batch fails (Kafka is down): the stream ends with its status, no answers.
    v1::UploadBatchResponse response;
    EXPECT_FALSE(stream->Read(&response));
    const grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    auto hint = context.GetServerTrailingMetadata().find("retry-after-ms");
    ASSERT_NE(hint, context.GetServerTrailingMetadata().end());
    EXPECT_EQ(std::string(hint->second.data(), hint->second.size()), "250");
  }
  EXPECT_EQ(app_->ingest_api().admitted_items(), 0);

  // Kafka back: the four batches in progress land; the client resends all six on a new stream,
  // one at a time (waiting for each answer, which a pipelined stream must not deadlock on).
  ASSERT_TRUE(KafkaBackAndSettled());
  grpc::ClientContext context;
  auto stream = OpenStream(&context);
  for (size_t b = 0; b < requests.size(); ++b) {
    ASSERT_TRUE(stream->Write(requests[b]));
    v1::UploadBatchResponse response;
    ASSERT_TRUE(stream->Read(&response)) << b;
    EXPECT_EQ(response.batch_id(), requests[b].batch_id());
    // The four served before the failure reached Kafka; the last two were never read.
    EXPECT_EQ(response.duplicate(), b < 4 ? 100 : 0) << b;
    EXPECT_EQ(response.accepted(), b < 4 ? 0 : 100) << b;
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  std::multiset<std::string> ids;
  for (const v1::Event& event : TopicEvents()) ids.insert(event.event_id());
  EXPECT_EQ(ids.size(), 600u);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 600u) << "a transaction twice";
}

TEST_F(IngestServiceTest, AStreamFailsWhileWaitingForItsNextBatch) {
  // A lock-step client: one batch written, the stream left open while it waits for the answer.
  // The service has a read outstanding for the next batch when the first fails; the client must
  // still get the failure, with its hint, not wait for its deadline.
  StartApp(broker_->bootstrap(), absl::Seconds(1));
  ASSERT_TRUE(broker_->SetDown(true).ok());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = OpenStream(&context);
  ASSERT_TRUE(stream->Write(Batch({SignedTap(keyring_, {.seq = 1})}, "s0")));
  v1::UploadBatchResponse response;
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "acknowledgement"))
      << status.error_message();
  EXPECT_NE(context.GetServerTrailingMetadata().find("retry-after-ms"),
            context.GetServerTrailingMetadata().end());
  ASSERT_TRUE(broker_->SetDown(false).ok());
  ASSERT_TRUE(Eventually([&] { return NoCallInProgress(); }));
}

TEST_F(IngestServiceTest, StreamBatchesInProgressTogetherClaimInArrivalOrder) {
  // One id in three batches written at once (window 4): the first owns it, as if they had been
  // served one after the other; other content later is CONFLICT, the same content DUPLICATE.
  const v1::TransactionUpload first = SignedTap(keyring_, {.seq = 1, .amount_fen = 200});
  const v1::TransactionUpload other = SignedTap(keyring_, {.seq = 1, .amount_fen = 300});
  // The first batch is large, so without the turns the later ones would finish validating and
  // claim long before it does.
  std::vector<v1::TransactionUpload> large;
  for (uint64_t seq = 100; seq < 2100; ++seq) large.push_back(SignedTap(keyring_, {.seq = seq}));
  large.push_back(first);
  const v1::UploadBatchRequest batches[] = {Batch(large, "s0"), Batch({other}, "s1"),
                                            Batch({first}, "s2"),
                                            Batch({SignedTap(keyring_, {.seq = 2})}, "s3")};
  const v1::ItemOutcome expected[] = {v1::ITEM_OUTCOME_ACCEPTED, v1::ITEM_OUTCOME_CONFLICT,
                                      v1::ITEM_OUTCOME_DUPLICATE, v1::ITEM_OUTCOME_ACCEPTED};
  grpc::ClientContext context;
  auto stream = OpenStream(&context);
  for (const v1::UploadBatchRequest& batch : batches) ASSERT_TRUE(stream->Write(batch));
  stream->WritesDone();
  for (int b = 0; b < 4; ++b) {
    v1::UploadBatchResponse response;
    ASSERT_TRUE(stream->Read(&response)) << b;
    EXPECT_EQ(response.batch_id(), batches[b].batch_id());
    EXPECT_EQ(response.results(response.results_size() - 1).outcome(), expected[b]) << b;
  }
  EXPECT_TRUE(stream->Finish().ok());
  const std::vector<v1::Event> events = TopicEvents();
  ASSERT_EQ(events.size(), 2002u);
  for (const v1::Event& event : events) {
    if (event.tap().txn().terminal_seq() == 1) {
      EXPECT_EQ(event.tap().amount_fen(), 200);
    }
  }
}

TEST_F(IngestServiceTest, ABatchThatFailsBeforeClaimingKeepsTheStreamsClaimOrder) {
  // The middle batch is refused at once (more than 10,000 items), before it claims anything.
  // The one after it must still claim after the one before it, which owns the id they share,
  // although that one, large, is still validating when the middle one has failed.
  const v1::TransactionUpload first = SignedTap(keyring_, {.seq = 1, .amount_fen = 200});
  const v1::TransactionUpload other = SignedTap(keyring_, {.seq = 1, .amount_fen = 300});
  std::vector<v1::TransactionUpload> large;
  for (uint64_t seq = 100; seq < 9100; ++seq) large.push_back(SignedTap(keyring_, {.seq = seq}));
  large.push_back(first);
  std::vector<v1::TransactionUpload> too_many;
  for (uint64_t seq = 10000; seq < 10001 + kBatchSizeMax; ++seq) {
    too_many.push_back(SignedTap(keyring_, {.seq = seq}));
  }
  grpc::ClientContext context;
  auto stream = OpenStream(&context);
  ASSERT_TRUE(stream->Write(Batch(large, "s0")));
  ASSERT_TRUE(stream->Write(Batch(too_many, "s1")));
  ASSERT_TRUE(stream->Write(Batch({other}, "s2")));
  stream->WritesDone();
  v1::UploadBatchResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.batch_id(), "s0");
  EXPECT_EQ(response.accepted(), 9001);
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // The third batch's content waited for the first's and was not accepted over it.
  int copies = 0;
  for (const v1::Event& event : TopicEvents()) {
    if (event.tap().txn().terminal_seq() != 1) continue;
    ++copies;
    EXPECT_EQ(event.tap().amount_fen(), 200);
  }
  EXPECT_EQ(copies, 1);
}

TEST_F(IngestServiceTest, AStreamBatchTheSystemRefusesAThreadFailsAloneAndChangesNothing) {
  // A second service on the app's ingest_api, its own server and metrics, whose worker thread
  // for a stream's second batch the system refuses (a thread limit reached): its three batches
  // run at once, so each needs a thread of its own.
  std::atomic<int> starts{0};
  const server::GrpcServerConfig grpc_config{.listen_address = "127.0.0.1:0",
                                             .auth_mode = server::AuthMode::kDevToken,
                                             .dev_token_secret = kSecret};
  auto authenticator =
      server::MakeAuthenticator(grpc_config, [clock = &clock_] { return clock->Now(); });
  ASSERT_TRUE(authenticator.ok()) << authenticator.status();
  metrics::Registry registry;
  IngestMetrics metrics(&registry);
  IngestService service(
      &app_->mutable_ingest_api(), *authenticator, &metrics,
      {.retry_after = absl::Milliseconds(250),
       .start_worker_thread = [&starts](std::function<void()> body) -> absl::StatusOr<std::thread> {
         if (starts.fetch_add(1) == 1) {
           return absl::ResourceExhaustedError("thread limit (test)");
         }
         return WorkerPool::StartSystemThread(std::move(body));
       }});
  auto server = server::GrpcServer::Start(grpc_config, *authenticator, {&service});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::IngestService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->port()), grpc::InsecureChannelCredentials()));
  const std::vector<v1::UploadBatchRequest> requests = Consecutive(keyring_, 3, 100, 1);
  auto open_stream = [&](grpc::ClientContext* context) {
    server::AttachDevToken(context, Token(server::CityTenant(310000)));
    return stub->UploadStream(context);
  };
  {
    // All three written while Kafka is down, so the third has started (it is admitted) before
    // the stream can fail.
    ASSERT_TRUE(broker_->SetDown(true).ok());
    grpc::ClientContext context;
    auto stream = open_stream(&context);
    for (const v1::UploadBatchRequest& request : requests) ASSERT_TRUE(stream->Write(request));
    ASSERT_TRUE(Eventually([&] { return app_->ingest_api().admitted_items() == 200; }));
    ASSERT_TRUE(broker_->SetDown(false).ok());
    stream->WritesDone();
    // The batch ahead is answered; then the stream ends with the refused batch's status.
    v1::UploadBatchResponse response;
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.batch_id(), "p0");
    EXPECT_EQ(response.accepted(), 100);
    EXPECT_FALSE(stream->Read(&response));
    const grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
    EXPECT_TRUE(absl::StrContains(status.error_message(), "batch \"p1\""))
        << status.error_message();
    EXPECT_TRUE(absl::StrContains(status.error_message(), "thread limit (test)"))
        << status.error_message();
    auto hint = context.GetServerTrailingMetadata().find("retry-after-ms");
    ASSERT_NE(hint, context.GetServerTrailingMetadata().end());
    EXPECT_EQ(std::string(hint->second.data(), hint->second.size()), "250");
  }
  ASSERT_TRUE(Eventually([&] { return app_->ingest_api().claimed() == 0; }));
  const std::string text = registry.ExpositionText();
  EXPECT_TRUE(absl::StrContains(text, "tongka_ingest_refused_total{limit=\"threads\"} 1")) << text;
  EXPECT_TRUE(absl::StrContains(
      text, "tongka_ingest_requests_total{rpc=\"UploadStream\",code=\"resource_exhausted\"} 1"))
      << text;
  EXPECT_TRUE(Eventually([&] {
    return absl::StrContains(registry.ExpositionText(), "tongka_ingest_calls_in_progress 0");
  }));
  // Nothing of the refused batch reached Kafka; the one after it, which must not wait for a
  // claim the refused one never made, did.
  std::set<uint64_t> seqs;
  for (const v1::Event& event : TopicEvents()) seqs.insert(event.tap().txn().terminal_seq());
  EXPECT_EQ(seqs.size(), 200u);
  EXPECT_EQ(seqs.count(101), 0u);
  EXPECT_EQ(seqs.count(201), 1u);

  // The client resends what had no answer: the refused batch is ACCEPTED, the other DUPLICATE.
  grpc::ClientContext context;
  auto stream = open_stream(&context);
  ASSERT_TRUE(stream->Write(requests[1]));
  ASSERT_TRUE(stream->Write(requests[2]));
  stream->WritesDone();
  v1::UploadBatchResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.accepted(), 100);
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.duplicate(), 100);
  EXPECT_TRUE(stream->Finish().ok());
  std::multiset<std::string> ids;
  for (const v1::Event& event : TopicEvents()) ids.insert(event.event_id());
  EXPECT_EQ(ids.size(), 300u);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 300u) << "a transaction twice";
}

TEST_F(IngestServiceTest, AClientWaitingForEachAnswerHoldsOneCallSlot) {
  // Two slots: with the stream idle between its batches, a unary call always finds one free.
  StartApp(broker_->bootstrap(), absl::Seconds(10),
           [](IngestConfig& config) { config.max_concurrent_calls = 2; });
  grpc::ClientContext context;
  auto stream = OpenStream(&context);
  for (uint64_t b = 0; b < 3; ++b) {
    ASSERT_TRUE(stream->Write(Batch({SignedTap(keyring_, {.seq = b + 1})}, absl::StrCat("s", b))));
    v1::UploadBatchResponse response;
    ASSERT_TRUE(stream->Read(&response)) << b;
    EXPECT_EQ(response.accepted(), 1) << b;
    // The answer's write completes on the service a moment after the client has read it.
    ASSERT_TRUE(Eventually([&] {
      return absl::StrContains(app_->registry().ExpositionText(),
                               "tongka_ingest_calls_in_progress 1");
    })) << "the stream holds more than its own slot while idle, batch "
        << b;
    EXPECT_TRUE(Upload(Batch({SignedTap(keyring_, {.seq = 100 + b})}), &response).ok()) << b;
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_TRUE(Eventually([&] { return NoCallInProgress(); }));
}

TEST_F(IngestServiceTest, AStreamWithoutValidCredentialsIsRefusedAndChangesNothing) {
  grpc::ClientContext context;
  server::AttachDevToken(&context, "not-a-token");
  auto stream = stub_->UploadStream(&context);
  stream->Write(Batch({SignedTap(keyring_, {.seq = 1})}));
  v1::UploadBatchResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(NoCallInProgress());
  EXPECT_TRUE(TopicEvents().empty());
}

TEST_F(IngestServiceTest, ShuttingDownWithAStreamMidWindowLosesAndDoublesNothing) {
  // Four batches of a stream wait for a stopped Kafka when the service shuts down. It must end
  // the stream and stop (the server's shutdown waits for the stream's workers); what Kafka
  // takes later, during the producer's flush, must come back DUPLICATE after a restart.
  StartApp(broker_->bootstrap(), absl::Seconds(1),
           [](IngestConfig& config) { config.stream_window = 4; });
  const std::vector<v1::UploadBatchRequest> requests = Consecutive(keyring_, 4, 100, 1);
  grpc::ClientContext context;
  auto stream = StreamHeldByKafka(&context, requests, 400);
  ASSERT_FALSE(HasFailure());
  std::thread kafka_back([this] {
    absl::SleepFor(absl::Milliseconds(1500));
    EXPECT_TRUE(broker_->SetDown(false).ok());
  });
  app_->Shutdown(absl::Now() + absl::Milliseconds(200));
  kafka_back.join();
  v1::UploadBatchResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_FALSE(stream->Finish().ok());

  StartApp(broker_->bootstrap());
  for (const v1::UploadBatchRequest& request : requests) {
    ASSERT_TRUE(Upload(request, &response).ok());
    EXPECT_EQ(response.accepted() + response.duplicate(), 100) << request.batch_id();
  }
  std::multiset<std::string> ids;
  for (const v1::Event& event : TopicEvents()) ids.insert(event.event_id());
  EXPECT_EQ(ids.size(), 400u);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 400u) << "a transaction twice";
}

TEST_F(IngestServiceTest, ACancelledCallStopsWaitingForKafkaAndGivesBackItsSlots) {
  // A minute's ack_timeout: without heeding the cancel, the call would hold its thread, its call
  // slot and its items that long.
  StartApp(broker_->bootstrap(), absl::Minutes(1));
  const v1::UploadBatchRequest request = Consecutive(keyring_, 1, 100, 1).front();
  ASSERT_TRUE(broker_->SetDown(true).ok());
  grpc::ClientContext context;
  server::AttachDevToken(&context, Token(server::CityTenant(310000)));
  v1::UploadBatchResponse response;
  grpc::Status status;
  std::thread call([&] { status = stub_->UploadBatch(&context, request, &response); });
  ASSERT_TRUE(Eventually([&] { return app_->ingest_api().admitted_items() == 100; }));
  context.TryCancel();
  call.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] {
    return NoCallInProgress() && app_->ingest_api().admitted_items() == 0 &&
           absl::StrContains(
               app_->registry().ExpositionText(),
               "tongka_ingest_requests_total{rpc=\"UploadBatch\",code=\"cancelled\"} 1");
  }));
  // Kafka back: what it takes settles by its reports, and the retry finds it DUPLICATE.
  ASSERT_TRUE(KafkaBackAndSettled());
  ASSERT_TRUE(Upload(request, &response).ok());
  EXPECT_EQ(response.duplicate(), 100);
  EXPECT_EQ(TopicEvents().size(), 100u);
}

TEST_F(IngestServiceTest, ACancelledStreamStopsWaitingForKafkaAndGivesBackItsSlots) {
  StartApp(broker_->bootstrap(), absl::Minutes(1),
           [](IngestConfig& config) { config.stream_window = 4; });
  const std::vector<v1::UploadBatchRequest> requests = Consecutive(keyring_, 4, 100, 1);
  grpc::ClientContext context;
  auto stream = StreamHeldByKafka(&context, requests, 400);
  ASSERT_FALSE(HasFailure());
  context.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(
      Eventually([&] { return NoCallInProgress() && app_->ingest_api().admitted_items() == 0; }));
  ASSERT_TRUE(KafkaBackAndSettled());
  v1::UploadBatchResponse response;
  for (const v1::UploadBatchRequest& request : requests) {
    ASSERT_TRUE(Upload(request, &response).ok());
    EXPECT_EQ(response.duplicate(), 100) << request.batch_id();
  }
  EXPECT_EQ(TopicEvents().size(), 400u);
}

TEST_F(IngestServiceTest, StreamsCancelledWithBatchesRunningEndBeforeTheirServiceAndWorkers) {
  // A service of its own (server, metrics, worker pool) on the app's ingest_api. Three streams
  // each have four batches waiting for a stopped Kafka, one worker each, when their clients
  // cancel; the server is shut down and the service destroyed right after. Every stream ends
  // CANCELLED; the server's shutdown waits for each reactor's OnDone, which frees it once its
  // last batch's Upload has returned; the service's destructor joins the workers, so none runs
  // after it. Under --config=asan a reactor freed too early is a use-after-free and one never
  // freed a leak; under --config=tsan a free not ordered after the workers' last touch is a race.
  std::atomic<int> workers_started{0};
  std::atomic<int> workers_alive{0};
  const server::GrpcServerConfig grpc_config{.listen_address = "127.0.0.1:0",
                                             .auth_mode = server::AuthMode::kDevToken,
                                             .dev_token_secret = kSecret};
  auto authenticator =
      server::MakeAuthenticator(grpc_config, [clock = &clock_] { return clock->Now(); });
  ASSERT_TRUE(authenticator.ok()) << authenticator.status();
  metrics::Registry registry;
  IngestMetrics metrics(&registry);
  auto service = std::make_unique<IngestService>(
      &app_->mutable_ingest_api(), *authenticator, &metrics,
      IngestServiceOptions{
          .stream_window = 4,
          .retry_after = absl::Milliseconds(250),
          .start_worker_thread = [&](std::function<void()> body) -> absl::StatusOr<std::thread> {
            workers_started.fetch_add(1);
            workers_alive.fetch_add(1);
            return WorkerPool::StartSystemThread([&workers_alive, body = std::move(body)] {
              body();
              workers_alive.fetch_sub(1);  // the thread's last act
            });
          }});
  auto server = server::GrpcServer::Start(grpc_config, *authenticator, {service.get()});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::IngestService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*server)->port()), grpc::InsecureChannelCredentials()));

  constexpr int kStreams = 3;
  std::vector<v1::UploadBatchRequest> requests;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<
      std::unique_ptr<grpc::ClientReaderWriter<v1::UploadBatchRequest, v1::UploadBatchResponse>>>
      streams;
  ASSERT_TRUE(broker_->SetDown(true).ok());
  for (int s = 0; s < kStreams; ++s) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    server::AttachDevToken(contexts.back().get(), Token(server::CityTenant(310000)));
    streams.push_back(stub->UploadStream(contexts.back().get()));
    for (v1::UploadBatchRequest& request : Consecutive(keyring_, 4, 100, 1 + 400 * s)) {
      ASSERT_TRUE(streams.back()->Write(request));
      requests.push_back(std::move(request));
    }
  }
  // All twelve batches are running, each on a worker of its own.
  ASSERT_TRUE(Eventually([&] { return app_->ingest_api().admitted_items() == 1200; }));
  EXPECT_EQ(workers_started.load(), 12);
  for (auto& context : contexts) context->TryCancel();
  for (auto& stream : streams) {
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  (*server)->Shutdown(absl::Now() + absl::Seconds(5));
  server->reset();
  service.reset();
  EXPECT_EQ(workers_alive.load(), 0) << "a worker thread outlived its service";
  EXPECT_EQ(app_->ingest_api().admitted_items(), 0);
  EXPECT_TRUE(absl::StrContains(registry.ExpositionText(), "tongka_ingest_calls_in_progress 0"));

  // What Kafka takes later is settled by its reports: the retries find it all DUPLICATE.
  ASSERT_TRUE(KafkaBackAndSettled());
  v1::UploadBatchResponse response;
  for (const v1::UploadBatchRequest& request : requests) {
    ASSERT_TRUE(Upload(request, &response).ok());
    EXPECT_EQ(response.duplicate(), 100) << request.batch_id();
  }
  EXPECT_EQ(TopicEvents().size(), 1200u);
}

TEST_F(IngestServiceTest, StreamWindowNeedsAFreeCallSlotPerExtraBatch) {
  // Two slots: the stream's own and one more, so two batches at once although the window is 4.
  StartApp(broker_->bootstrap(), absl::Seconds(2), [](IngestConfig& config) {
    config.stream_window = 4;
    config.max_concurrent_calls = 2;
  });
  const std::vector<v1::UploadBatchRequest> requests = Consecutive(keyring_, 4, 100, 1);
  grpc::ClientContext context;
  auto stream = StreamHeldByKafka(&context, requests, 200);
  ASSERT_FALSE(HasFailure());
  EXPECT_LE(MostAdmitted(*app_, absl::Milliseconds(300)), 200);
  // Both slots are taken: a unary call is refused meanwhile.
  v1::UploadBatchResponse response;
  EXPECT_EQ(Upload(Batch({SignedTap(keyring_, {.seq = 1000})}), &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(broker_->SetDown(false).ok());  // lets the producer's flush at teardown finish
  ASSERT_TRUE(Eventually([&] { return NoCallInProgress(); }));
}

}  // namespace
}  // namespace tongka::ingest
