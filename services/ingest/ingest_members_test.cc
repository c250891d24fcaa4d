// Proves ingest's member rules against the log on a real local Kafka broker (LocalKafka): ingest
// reads the member registry's decisions from tongka.members in the background and judges taps by
// them. It shows
//   - ingest refuses to start without tongka.members (topics are created by the deployment);
//   - decisions already on the topic are in force once ingest is ready (/readyz waits for the
//     member view to reach the topic's end as it was at start): a Liuzhou card tapping in
//     Shanghai, which accepts Ningbo's cards only, is REJECTED with issuer_not_accepted;
//   - a later MemberChanged (Shanghai accepts every issuer again) accepts the same tap, and one
//     suspending Liuzhou refuses its taps with issuer_suspended (a refund still passes);
//   - only card_registry's decisions count: a MemberChanged from another source changes nothing.
// Waits are on conditions (the view's position), never on time.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/producer.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "proto/ingest.grpc.pb.h"
#include "services/ingest/ingest_app.h"
#include "services/ingest/testing/uploads.h"

namespace tongka::ingest {
namespace {

constexpr char kSecret[] = "ingest-members-test-secret-0123456789abcdef";
const absl::Time kStart = absl::FromUnixSeconds(1767225600) + absl::Minutes(1);

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

bool Eventually(const std::function<bool()>& done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

v1::Event Changed(const std::string& participant, v1::MemberStatus status, bool accepts_all,
                  const std::vector<uint32_t>& issuers, uint64_t version,
                  const v1::Tenant& source = server::PlatformTenant("card_registry")) {
  v1::Event event;
  event.set_event_id(absl::StrCat("card_registry/tongka.members/0/", version, "/decision"));
  *event.mutable_source() = source;
  v1::MemberChanged* changed = event.mutable_member_changed();
  changed->set_participant(participant);
  changed->set_status(status);
  changed->set_old_status(v1::MEMBER_STATUS_ACTIVE);
  changed->set_accepts_all(accepts_all);
  for (uint32_t issuer : issuers) changed->add_accepted_issuer_cities(issuer);
  changed->set_version(version);
  return event;
}

class IngestMembersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::remove_all(TempPath("kafka"));
    auto kafka = event_log::LocalKafka::Start(TempPath("kafka"));
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = std::move(*kafka);
    ASSERT_TRUE(event_log::EnsureTopics({.bootstrap_servers = kafka_->bootstrap()},
                                        {{.name = kTxnTopic, .partitions = 2},
                                         {.name = kConflictTopic, .partitions = 2}},
                                        absl::Seconds(60))
                    .ok());
    auto producer = event_log::Producer::Create({.bootstrap_servers = kafka_->bootstrap()});
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = std::move(*producer);
  }

  void TearDown() override {
    app_.reset();
    producer_.reset();
    kafka_.reset();
  }

  absl::StatusOr<std::unique_ptr<IngestApp>> Create() {
    IngestConfig config;
    config.kafka_bootstrap = kafka_->bootstrap();
    config.state_dir = TempPath("state");
    config.grpc.listen_address = "127.0.0.1:0";
    config.grpc.auth_mode = server::AuthMode::kDevToken;
    config.grpc.dev_token_secret = kSecret;
    config.metrics_port = -1;
    return IngestApp::Create(config, [] { return kStart; });
  }

  // Writes `event` to tongka.members; its offset.
  int64_t Publish(const v1::Event& event) {
    auto delivered = producer_->ProduceSync(kMembersTopic, event.member_changed().participant(),
                                            event.SerializeAsString(), absl::Seconds(30));
    EXPECT_TRUE(delivered.ok()) << delivered.status();
    return delivered.ok() ? delivered->offset : -1;
  }

  // Waits until the app's member view has read the record at `offset`.
  void AwaitRead(int64_t offset) {
    ASSERT_TRUE(Eventually([&] { return app_->members().next_offset() > offset; }));
  }

  v1::ItemResult Upload(const v1::TransactionUpload& upload) {
    v1::UploadBatchRequest request;
    *request.add_transactions() = upload;
    grpc::ClientContext context;
    server::AttachDevToken(&context, *server::DevTokenIssuer::Create(kSecret)->Issue(
                                         server::CityTenant(310000), kStart + absl::Hours(1)));
    v1::UploadBatchResponse response;
    grpc::Status status = stub_->UploadBatch(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.results_size() == 1 ? response.results(0) : v1::ItemResult();
  }

  std::unique_ptr<event_log::LocalKafka> kafka_;
  std::unique_ptr<event_log::Producer> producer_;
  txn::CityKeyring keyring_ = *txn::CityKeyring::Dev();
  std::unique_ptr<IngestApp> app_;
  std::unique_ptr<v1::IngestService::Stub> stub_;
};

TEST_F(IngestMembersTest, TapsAreJudgedByTheMemberDecisionsOnTheLog) {
  // No member topic: no start.
  std::filesystem::remove_all(TempPath("state"));
  auto refused = Create();
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), kMembersTopic)) << refused.status();
  ASSERT_TRUE(event_log::EnsureTopics({.bootstrap_servers = kafka_->bootstrap()},
                                      {{.name = kMembersTopic, .partitions = 1}}, absl::Seconds(60))
                  .ok());

  // Shanghai accepts Ningbo's cards only, decided before ingest starts.
  Publish(Changed("city:310000", v1::MEMBER_STATUS_ACTIVE, false, {330200}, 1));
  auto app = Create();
  ASSERT_TRUE(app.ok()) << app.status();
  app_ = std::move(*app);
  stub_ = v1::IngestService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", app_->grpc_port()), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(Eventually([&] { return app_->runtime().ready(); }));
  EXPECT_GE(app_->members().next_offset(), 1) << "ready before the member view caught up";

  const v1::TransactionUpload liuzhou_tap =
      testing::SignedTap(keyring_, {.issuer_city = 450200, .occurred_at = kStart});
  v1::ItemResult result = Upload(liuzhou_tap);
  EXPECT_EQ(result.outcome(), v1::ITEM_OUTCOME_REJECTED);
  EXPECT_EQ(result.rule(), "issuer_not_accepted");
  EXPECT_EQ(result.field(), "tap.txn.issuer_city");
  const v1::TransactionUpload ningbo_tap =
      testing::SignedTap(keyring_, {.issuer_city = 330200, .seq = 2, .occurred_at = kStart});
  EXPECT_EQ(Upload(ningbo_tap).outcome(), v1::ITEM_OUTCOME_ACCEPTED);

  // A decision from anyone but the registry changes nothing.
  AwaitRead(Publish(
      Changed("city:310000", v1::MEMBER_STATUS_ACTIVE, true, {}, 2, server::MinistryTenant())));
  EXPECT_EQ(Upload(liuzhou_tap).rule(), "issuer_not_accepted");

  // Shanghai accepts every issuer again: the same tap goes through.
  AwaitRead(Publish(Changed("city:310000", v1::MEMBER_STATUS_ACTIVE, true, {}, 2)));
  result = Upload(liuzhou_tap);
  EXPECT_EQ(result.outcome(), v1::ITEM_OUTCOME_ACCEPTED) << result.rule();

  // Liuzhou suspended: its cards stop tapping, a refund still passes.
  AwaitRead(Publish(Changed("city:450200", v1::MEMBER_STATUS_SUSPENDED, true, {}, 1)));
  result = Upload(
      testing::SignedTap(keyring_, {.issuer_city = 450200, .seq = 3, .occurred_at = kStart}));
  EXPECT_EQ(result.rule(), "issuer_suspended");
  result = Upload(
      testing::SignedRefund(keyring_, {.issuer_city = 450200, .seq = 4, .occurred_at = kStart}));
  EXPECT_EQ(result.outcome(), v1::ITEM_OUTCOME_ACCEPTED) << result.rule();

  const std::string metrics = app_->registry().ExpositionText();
  EXPECT_TRUE(absl::StrContains(
      metrics, "tongka_ingest_rejected_total{rule=\"issuer_not_accepted\",city=\"310000\"} 2"))
      << metrics;
}

}  // namespace
}  // namespace tongka::ingest
