// Proves the member registry's API end to end in one process: a real CardRegistryApp (one
// replica, so replica 0 decides tongka.members; RocksDB in TEST_TMPDIR, gRPC on a free port, dev
// tokens) on a real local Kafka broker with tongka.members (one partition). It shows
//   - SetMemberStatus and SetAcceptedIssuers answered with the ledger's decision once applied
//     (read-your-writes: GetMember right after sees the change), a retried request id answered
//     with the first decision and decided once (one decision event on the topic);
//   - refusals the ledger decided named by rule and field with the RPC status OK (unknown_city,
//     status_transition, list_too_long, issuer_not_member); bad input INVALID_ARGUMENT;
//   - MemberChanged on tongka.members from platform:card_registry with the full record;
//   - tenancy: commands are the ministry's only; GetMember and ListMembers give the ministry
//     everything, a city or a partner its own record only, a foreign record PERMISSION_DENIED,
//     a platform service nothing; no credentials -> UNAUTHENTICATED;
//   - genesis: a participant never changed is ACTIVE, accepts all, version 0.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/partition_consumer.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "libs/txn/cities.h"
#include "services/card_registry/card_registry_app.h"
#include "services/card_registry/card_registry_keys.h"

namespace tongka::card_registry {
namespace {

constexpr char kSecret[] = "member-service-test-secret-0123456789abcdef";
constexpr uint32_t kShanghai = 310000;
constexpr uint32_t kNingbo = 330200;
constexpr uint32_t kLiuzhou = 450200;

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

class MemberServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::filesystem::remove_all(TempPath("kafka"));
    auto kafka = event_log::LocalKafka::Start(TempPath("kafka"));
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = kafka->release();
    ASSERT_TRUE(event_log::EnsureTopics({.bootstrap_servers = kafka_->bootstrap()},
                                        {{.name = kCardsTopic, .partitions = 2},
                                         {.name = kTxnTopic, .partitions = 2},
                                         {.name = kMembersTopic, .partitions = 1}},
                                        absl::Seconds(60))
                    .ok());
    CardRegistryConfig config;
    config.kafka_bootstrap = kafka_->bootstrap();
    config.state_dir = TempPath("state");
    std::filesystem::remove_all(config.state_dir);
    config.grpc.listen_address = "127.0.0.1:0";
    config.grpc.auth_mode = server::AuthMode::kDevToken;
    config.grpc.dev_token_secret = kSecret;
    config.metrics_port = -1;
    auto app = CardRegistryApp::Create(config);
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = app->release();
    stub_ = v1::MemberRegistryService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", app_->grpc_port()), grpc::InsecureChannelCredentials()));
  }

  static void TearDownTestSuite() {
    stub_.reset();
    delete app_;
    delete kafka_;
  }

  template <typename Request, typename Response>
  static grpc::Status Call(const std::optional<v1::Tenant>& tenant,
                           grpc::Status (v1::MemberRegistryService::Stub::*method)(
                               grpc::ClientContext*, const Request&, Response*),
                           const Request& request, Response* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (tenant.has_value()) {
      server::AttachDevToken(&context, *server::DevTokenIssuer::Create(kSecret)->Issue(
                                           *tenant, absl::Now() + absl::Hours(1)));
    }
    return (stub_.get()->*method)(&context, request, response);
  }

  static v1::SetMemberStatusRequest Status(const std::string& request_id,
                                           const std::string& participant,
                                           v1::MemberStatus status) {
    v1::SetMemberStatusRequest request;
    request.set_request_id(request_id);
    request.set_participant(participant);
    request.set_status(status);
    request.set_reason("audit finding 2026-11");
    request.set_actor("official-3");
    return request;
  }

  static v1::SetAcceptedIssuersRequest Issuers(const std::string& request_id, uint32_t acquirer,
                                               const std::vector<uint32_t>& issuers) {
    v1::SetAcceptedIssuersRequest request;
    request.set_request_id(request_id);
    request.set_acquirer_city(acquirer);
    for (uint32_t issuer : issuers) request.add_issuer_cities(issuer);
    request.set_reason("bilateral agreement");
    return request;
  }

  static v1::MemberCommandResponse Command(const v1::SetMemberStatusRequest& request) {
    v1::MemberCommandResponse response;
    grpc::Status status =
        Call(server::MinistryTenant(), &v1::MemberRegistryService::Stub::SetMemberStatus, request,
             &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }
  static v1::MemberCommandResponse Command(const v1::SetAcceptedIssuersRequest& request) {
    v1::MemberCommandResponse response;
    grpc::Status status =
        Call(server::MinistryTenant(), &v1::MemberRegistryService::Stub::SetAcceptedIssuers,
             request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  static grpc::Status Get(const std::optional<v1::Tenant>& tenant, const std::string& participant,
                          v1::Member* member = nullptr) {
    v1::GetMemberRequest request;
    request.set_participant(participant);
    v1::GetMemberResponse response;
    grpc::Status status =
        Call(tenant, &v1::MemberRegistryService::Stub::GetMember, request, &response);
    if (member != nullptr) *member = response.member();
    return status;
  }

  // Every event on tongka.members, once the outbox has published every decision made so far.
  static std::vector<std::pair<std::string, v1::Event>> Topic() {
    while (app_->store().OutboxDepth() > 0) absl::SleepFor(absl::Milliseconds(10));
    auto consumer = event_log::PartitionConsumer::Create({.bootstrap_servers = kafka_->bootstrap()},
                                                         "member-service-test");
    EXPECT_TRUE(consumer.ok());
    auto watermarks = (*consumer)->QueryWatermarks({kMembersTopic, 0}, absl::Seconds(30));
    EXPECT_TRUE(watermarks.ok());
    EXPECT_TRUE((*consumer)->Assign({{{kMembersTopic, 0}, 0}}).ok());
    std::vector<std::pair<std::string, v1::Event>> events;
    std::vector<event_log::Record> records;
    while (static_cast<int64_t>(records.size()) < watermarks->second) {
      EXPECT_TRUE((*consumer)->Poll(1000, absl::Milliseconds(200), &records).ok());
    }
    for (const event_log::Record& record : records) {
      events.emplace_back(std::string(record.key), v1::Event());
      EXPECT_TRUE(events.back().second.ParseFromArray(record.value.data(),
                                                      static_cast<int>(record.value.size())));
    }
    return events;
  }

  static inline event_log::LocalKafka* kafka_ = nullptr;
  static inline CardRegistryApp* app_ = nullptr;
  static inline std::unique_ptr<v1::MemberRegistryService::Stub> stub_;
};

TEST_F(MemberServiceTest, CommandsAreReadYourWritesAndARetryGetsTheFirstDecision) {
  v1::Member before;
  ASSERT_TRUE(Get(server::MinistryTenant(), "city:330200", &before).ok());
  EXPECT_EQ(before.status(), v1::MEMBER_STATUS_ACTIVE);
  EXPECT_TRUE(before.accepts_all());
  EXPECT_EQ(before.version(), 0u);

  const v1::SetAcceptedIssuersRequest list = Issuers("ryw-list", kNingbo, {kLiuzhou, kShanghai});
  const v1::MemberCommandResponse first = Command(list);
  EXPECT_TRUE(first.accepted()) << first.ShortDebugString();
  EXPECT_EQ(first.member().version(), 1u);
  v1::Member after;
  ASSERT_TRUE(Get(server::MinistryTenant(), "city:330200", &after).ok());
  EXPECT_FALSE(after.accepts_all());
  EXPECT_EQ(std::vector<uint32_t>(after.accepted_issuer_cities().begin(),
                                  after.accepted_issuer_cities().end()),
            (std::vector<uint32_t>{kShanghai, kLiuzhou}));
  EXPECT_EQ(after.version(), 1u);

  const v1::SetMemberStatusRequest suspend =
      Status("ryw-suspend", "city:330200", v1::MEMBER_STATUS_SUSPENDED);
  EXPECT_TRUE(Command(suspend).accepted());
  ASSERT_TRUE(Get(server::MinistryTenant(), "city:330200", &after).ok());
  EXPECT_EQ(after.status(), v1::MEMBER_STATUS_SUSPENDED);
  EXPECT_EQ(after.version(), 2u);
  EXPECT_EQ(after.accepted_issuer_cities_size(), 2);

  // The same request ids again: the first decisions, not new ones (a status change applied
  // twice would now be a status_transition refusal).
  const v1::MemberCommandResponse retried = Command(suspend);
  EXPECT_TRUE(retried.accepted()) << retried.ShortDebugString();
  EXPECT_EQ(retried.member().version(), 2u);
  EXPECT_EQ(Command(list).member().version(), 1u);
  ASSERT_TRUE(Get(server::MinistryTenant(), "city:330200", &after).ok());
  EXPECT_EQ(after.version(), 2u);

  int decisions = 0;
  for (const auto& [key, event] : Topic()) {
    if (!event.has_member_changed() || event.member_changed().request_id() != "ryw-suspend") {
      continue;
    }
    ++decisions;
    EXPECT_EQ(key, "city:330200");
    EXPECT_EQ(event.source().service(), "card_registry");
    EXPECT_EQ(event.member_changed().status(), v1::MEMBER_STATUS_SUSPENDED);
    EXPECT_EQ(event.member_changed().accepted_issuer_cities_size(), 2);
  }
  EXPECT_EQ(decisions, 1) << "a retried request id is decided once";

  // Back to ACTIVE, for the other tests.
  EXPECT_TRUE(Command(Status("ryw-resume", "city:330200", v1::MEMBER_STATUS_ACTIVE)).accepted());
}

TEST_F(MemberServiceTest, RefusalsAreNamedByRuleAndField) {
  auto expect_refused = [](const v1::MemberCommandResponse& response, const std::string& rule,
                           const std::string& field) {
    EXPECT_FALSE(response.accepted()) << response.ShortDebugString();
    EXPECT_EQ(response.rule(), rule) << response.ShortDebugString();
    EXPECT_EQ(response.field(), field) << response.ShortDebugString();
  };
  expect_refused(Command(Status("ref-1", "city:999999", v1::MEMBER_STATUS_SUSPENDED)),
                 "unknown_city", "participant");
  expect_refused(Command(Status("ref-2", "city:450200", v1::MEMBER_STATUS_ACTIVE)),
                 "status_transition", "status");
  expect_refused(Command(Issuers("ref-3", kLiuzhou, std::vector<uint32_t>(81, kShanghai))),
                 "list_too_long", "issuer_cities");
  expect_refused(Command(Issuers("ref-4", kLiuzhou, {kShanghai, 100001})), "issuer_not_member",
                 "issuer_cities");
  expect_refused(Command(Issuers("ref-5", 999999, {})), "unknown_city", "acquirer_city");

  // Bad input never reaches the log.
  v1::MemberCommandResponse response;
  EXPECT_EQ(Call(server::MinistryTenant(), &v1::MemberRegistryService::Stub::SetMemberStatus,
                 Status("bad id!", "city:450200", v1::MEMBER_STATUS_SUSPENDED), &response)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::SetMemberStatusRequest long_actor =
      Status("ref-6", "city:450200", v1::MEMBER_STATUS_SUSPENDED);
  long_actor.set_actor(std::string(65, 'a'));
  EXPECT_EQ(Call(server::MinistryTenant(), &v1::MemberRegistryService::Stub::SetMemberStatus,
                 long_actor, &response)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Get(server::MinistryTenant(), "nobody").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(MemberServiceTest, CommandsAreTheMinistrysOnly) {
  v1::MemberCommandResponse response;
  for (const v1::Tenant& tenant : {server::CityTenant(kLiuzhou), server::PartnerTenant("unionmart"),
                                   server::PlatformTenant("fraud")}) {
    EXPECT_EQ(Call(tenant, &v1::MemberRegistryService::Stub::SetMemberStatus,
                   Status("deny-1", "city:450200", v1::MEMBER_STATUS_SUSPENDED), &response)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << server::TenantName(tenant);
    EXPECT_EQ(Call(tenant, &v1::MemberRegistryService::Stub::SetAcceptedIssuers,
                   Issuers("deny-2", kLiuzhou, {kShanghai}), &response)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << server::TenantName(tenant);
  }
  EXPECT_EQ(Call(std::nullopt, &v1::MemberRegistryService::Stub::SetMemberStatus,
                 Status("deny-3", "city:450200", v1::MEMBER_STATUS_SUSPENDED), &response)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::Member liuzhou;
  ASSERT_TRUE(Get(server::MinistryTenant(), "city:450200", &liuzhou).ok());
  EXPECT_EQ(liuzhou.version(), 0u) << "nothing was written";
}

TEST_F(MemberServiceTest, ReadsAreTenantScoped) {
  EXPECT_TRUE(
      Command(Status("scope-1", "partner:unionmart", v1::MEMBER_STATUS_SUSPENDED)).accepted());
  // GetMember: own record yes, anyone else's no; the ministry all; a platform nothing.
  v1::Member member;
  EXPECT_TRUE(Get(server::CityTenant(kLiuzhou), "city:450200", &member).ok());
  EXPECT_EQ(member.participant(), "city:450200");
  EXPECT_EQ(Get(server::CityTenant(kLiuzhou), "city:330200").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Get(server::CityTenant(kLiuzhou), "partner:unionmart").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Get(server::PartnerTenant("unionmart"), "partner:unionmart", &member).ok());
  EXPECT_EQ(member.status(), v1::MEMBER_STATUS_SUSPENDED);
  EXPECT_EQ(Get(server::PartnerTenant("unionmart"), "partner:otherchain").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Get(server::PartnerTenant("unionmart"), "city:310000").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Get(server::PlatformTenant("ingest"), "city:310000").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Get(std::nullopt, "city:310000").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Get(server::MinistryTenant(), "partner:unionmart").ok());

  // ListMembers: the ministry every member city and every recorded partner, sorted; a city or
  // a partner its own record only; a platform nothing.
  v1::ListMembersResponse all;
  ASSERT_TRUE(Call(server::MinistryTenant(), &v1::MemberRegistryService::Stub::ListMembers,
                   v1::ListMembersRequest(), &all)
                  .ok());
  EXPECT_EQ(all.members_size(), static_cast<int>(txn::MemberCities().size()) + 1);
  for (int i = 1; i < all.members_size(); ++i) {
    EXPECT_LT(all.members(i - 1).participant(), all.members(i).participant());
  }
  v1::ListMembersResponse own;
  ASSERT_TRUE(Call(server::CityTenant(kShanghai), &v1::MemberRegistryService::Stub::ListMembers,
                   v1::ListMembersRequest(), &own)
                  .ok());
  ASSERT_EQ(own.members_size(), 1);
  EXPECT_EQ(own.members(0).participant(), "city:310000");
  ASSERT_TRUE(Call(server::PartnerTenant("unionmart"),
                   &v1::MemberRegistryService::Stub::ListMembers, v1::ListMembersRequest(), &own)
                  .ok());
  ASSERT_EQ(own.members_size(), 1);
  EXPECT_EQ(own.members(0).participant(), "partner:unionmart");
  EXPECT_EQ(Call(server::PlatformTenant("ingest"), &v1::MemberRegistryService::Stub::ListMembers,
                 v1::ListMembersRequest(), &own)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace tongka::card_registry
