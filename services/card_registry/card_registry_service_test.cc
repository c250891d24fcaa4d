// Proves the card registry's API end to end in one process: a real CardRegistryApp (RocksDB in
// TEST_TMPDIR, gRPC on a free port, dev tokens, holder keys for Shanghai and Ningbo) on a real
// local Kafka broker with tongka.cards and tongka.txn co-partitioned. It shows
//   - commands answered with the ledger's decision once applied (read-your-writes: GetCard right
//     after IssueCard sees the card), and a retried request id answered with the first decision,
//     decided once;
//   - every refusal the ledger can reach through the API named by rule and request field, with
//     the RPC status OK; bad input INVALID_ARGUMENT "<field>: <rule>" and a city without a holder
//     key FAILED_PRECONDITION naming it, nothing written;
//   - IssueCards: per-item results in request order;
//   - tenancy: a foreign city or a partner sees a card's status only, the ministry all, a platform
//     service nothing; only the issuer issues; only the issuer or the ministry blocks; holder
//     lookups find the issuer's own cards only; no credentials -> UNAUTHENTICATED;
//   - the hotlist: snapshot, delta since a version, and a WatchHotlist stream that receives a
//     block, with the propagation histogram observed;
//   - no personal data in clear: after issuing cards with ID numbers, phones and device ids, none
//     of the clear values is in the RocksDB files, in any key or value of the store, in any record
//     of tongka.cards, or in any log line the process wrote.
#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/ownership.h"
#include "libs/event_log/partition_consumer.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "libs/txn/card_id.h"
#include "services/card_registry/card_registry_app.h"
#include "services/card_registry/card_registry_keys.h"
#include "services/card_registry/card_registry_readers.h"

namespace tongka::card_registry {
namespace {

constexpr char kSecret[] = "card-registry-service-test-secret-0123456789";
constexpr uint32_t kShanghai = 310000;
constexpr uint32_t kNingbo = 330200;
constexpr uint32_t kLiuzhou = 450200;  // no holder key
constexpr int kPartitions = 4;

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

// A resident ID number with a valid GB 11643 check character.
std::string IdNumber(int serial) {
  std::string id = absl::StrFormat("31010119900101%03d", serial % 1000);
  static constexpr int kWeights[] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  int sum = 0;
  for (int i = 0; i < 17; ++i) sum += (id[i] - '0') * kWeights[i];
  id.push_back("10X98765432"[sum % 11]);
  return id;
}

std::string Phone(int serial) { return absl::StrCat("139", 10000000 + serial * 7919 % 89999999); }

// Every glog line the process writes, to scan for personal data.
class CapturingSink : public google::LogSink {
 public:
  void send(google::LogSeverity, const char*, const char* base_filename, int line,
            const google::LogMessageTime&, const char* message, size_t message_len) override {
    absl::MutexLock lock(&mu_);
    absl::StrAppend(&text_, base_filename, ":", line, " ", absl::string_view(message, message_len),
                    "\n");
  }
  std::string text() const {
    absl::MutexLock lock(&mu_);
    return text_;
  }

 private:
  mutable absl::Mutex mu_;
  std::string text_ ABSL_GUARDED_BY(mu_);
};

class CardRegistryServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sink_ = new CapturingSink();
    google::AddLogSink(sink_);
    std::filesystem::remove_all(TempPath("kafka"));
    auto kafka = event_log::LocalKafka::Start(TempPath("kafka"));
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = kafka->release();
    ASSERT_TRUE(event_log::EnsureTopics({.bootstrap_servers = kafka_->bootstrap()},
                                        {{.name = kCardsTopic, .partitions = kPartitions},
                                         {.name = kTxnTopic, .partitions = kPartitions},
                                         {.name = kMembersTopic, .partitions = 1}},
                                        absl::Seconds(60))
                    .ok());
    const std::string keys = TempPath("holder_keys");
    std::ofstream(keys) << "# test keys\n310000:00112233445566778899aabbccddeeff\n"
                        << "330200:ffeeddccbbaa99887766554433221100\n";
    CardRegistryConfig config;
    config.kafka_bootstrap = kafka_->bootstrap();
    config.state_dir = TempPath("state");
    std::filesystem::remove_all(config.state_dir);
    config.grpc.listen_address = "127.0.0.1:0";
    config.grpc.auth_mode = server::AuthMode::kDevToken;
    config.grpc.dev_token_secret = kSecret;
    config.metrics_port = -1;
    config.holder_keys_path = keys;
    auto app = CardRegistryApp::Create(config);
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = app->release();
    stub_ = v1::CardRegistryService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", app_->grpc_port()), grpc::InsecureChannelCredentials()));
  }

  static void TearDownTestSuite() {
    stub_.reset();
    delete app_;
    delete kafka_;
    google::RemoveLogSink(sink_);
    delete sink_;
  }

  static void Authorize(grpc::ClientContext* context, const std::optional<v1::Tenant>& tenant) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (tenant.has_value()) {
      server::AttachDevToken(context, *server::DevTokenIssuer::Create(kSecret)->Issue(
                                          *tenant, absl::Now() + absl::Hours(1)));
    }
  }

  template <typename Request, typename Response>
  static grpc::Status Call(const std::optional<v1::Tenant>& tenant,
                           grpc::Status (v1::CardRegistryService::Stub::*method)(
                               grpc::ClientContext*, const Request&, Response*),
                           const Request& request, Response* response) {
    grpc::ClientContext context;
    Authorize(&context, tenant);
    return (stub_.get()->*method)(&context, request, response);
  }

  static v1::IssueCardRequest Physical(uint32_t city, uint64_t serial) {
    v1::IssueCardRequest request;
    request.set_request_id(absl::StrCat("issue-", city, "-", serial));
    request.set_card_id(txn::MakeCardId(city, serial));
    request.set_form(v1::CARD_FORM_PHYSICAL);
    request.set_product(v1::CARD_PRODUCT_STORED_VALUE);
    request.set_initial_balance_fen(5000);
    request.set_actor("clerk-7");
    return request;
  }

  static v1::CardCommandResponse Issue(const v1::IssueCardRequest& request,
                                       uint32_t city = kShanghai) {
    v1::CardCommandResponse response;
    grpc::Status status = Call(server::CityTenant(city), &v1::CardRegistryService::Stub::IssueCard,
                               request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  static v1::CardStatusRequest StatusRequest(const std::string& request_id,
                                             const std::string& card_id) {
    v1::CardStatusRequest request;
    request.set_request_id(request_id);
    request.set_card_id(card_id);
    return request;
  }

  // Whether the partition of `card_id` has applied a transfer of its city's cards.
  static bool OwnerPartitionHasTransfer(const std::string& card_id) {
    const int32_t partition = event_log::PartitionForKey(card_id, kPartitions);
    auto manager = ManagingIssuer(ViewOf(app_->store()), partition, *txn::ParseCardId(card_id));
    return manager.ok() && *manager != *txn::ParseCardId(card_id);
  }

  static void ExpectRefused(const v1::CardCommandResponse& response, const std::string& rule,
                            const std::string& field) {
    EXPECT_FALSE(response.accepted()) << response.ShortDebugString();
    EXPECT_EQ(response.rule(), rule) << response.ShortDebugString();
    EXPECT_EQ(response.field(), field) << response.ShortDebugString();
  }

  static inline CapturingSink* sink_ = nullptr;
  static inline event_log::LocalKafka* kafka_ = nullptr;
  static inline CardRegistryApp* app_ = nullptr;
  static inline std::unique_ptr<v1::CardRegistryService::Stub> stub_;
};

TEST_F(CardRegistryServiceTest, IssueIsReadYourWritesAndARetryGetsTheFirstDecision) {
  v1::IssueCardRequest request = Physical(kShanghai, 1);
  request.mutable_holder()->set_id_number(IdNumber(1));
  request.mutable_holder()->set_phone(Phone(1));
  const v1::CardCommandResponse first = Issue(request);
  EXPECT_TRUE(first.accepted()) << first.ShortDebugString();
  EXPECT_EQ(first.status(), v1::CARD_STATUS_ACTIVE);
  EXPECT_EQ(first.card_id(), request.card_id());

  v1::GetCardRequest get;
  get.set_card_id(request.card_id());
  v1::GetCardResponse card;
  ASSERT_TRUE(
      Call(server::CityTenant(kShanghai), &v1::CardRegistryService::Stub::GetCard, get, &card)
          .ok());
  EXPECT_TRUE(card.card().full());
  EXPECT_EQ(card.card().balance_fen(), 5000);
  EXPECT_EQ(card.card().form(), v1::CARD_FORM_PHYSICAL);

  absl::StatusOr<RegistryStats> before = ReadStats(ViewOf(app_->store()));
  ASSERT_TRUE(before.ok());
  const v1::CardCommandResponse retried = Issue(request);
  EXPECT_EQ(retried.SerializeAsString(), first.SerializeAsString())
      << "the retry gets the first decision, not card_exists";
  absl::StatusOr<RegistryStats> after = ReadStats(ViewOf(app_->store()));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->accepted["issue"], before->accepted["issue"]) << "decided once";
  EXPECT_EQ(after->refused_by_rule, before->refused_by_rule);
}

TEST_F(CardRegistryServiceTest, EveryRefusalNamesItsRuleAndField) {
  ASSERT_TRUE(Issue(Physical(kShanghai, 100)).accepted());
  const std::string card = txn::MakeCardId(kShanghai, 100);

  v1::IssueCardRequest again = Physical(kShanghai, 100);
  again.set_request_id("issue-again-100");
  ExpectRefused(Issue(again), "card_exists", "card_id");

  v1::IssueCardRequest request = Physical(kShanghai, 101);
  request.set_form(v1::CARD_FORM_UNSPECIFIED);
  ExpectRefused(Issue(request), "form", "form");

  request = Physical(kShanghai, 102);
  request.set_form(v1::CARD_FORM_VIRTUAL_NFC);
  ExpectRefused(Issue(request), "device_token", "device_id");
  request = Physical(kShanghai, 103);
  request.set_device_id("phone-103");
  ExpectRefused(Issue(request), "device_token", "device_id");

  request = Physical(kShanghai, 104);
  request.set_product(v1::CARD_PRODUCT_UNSPECIFIED);
  ExpectRefused(Issue(request), "product", "product");

  request = Physical(kShanghai, 105);
  request.set_product(v1::CARD_PRODUCT_CONCESSION);
  request.set_expires_at_us(1);
  ExpectRefused(Issue(request), "expires_at", "expires_at_us");
  request = Physical(kShanghai, 106);
  request.set_expires_at_us(absl::ToUnixMicros(absl::Now() + absl::Hours(24)));
  ExpectRefused(Issue(request), "expires_at", "expires_at_us");

  request = Physical(kShanghai, 107);
  request.set_initial_balance_fen(-1);
  ExpectRefused(Issue(request), "initial_balance_fen", "initial_balance_fen");
  request = Physical(kShanghai, 108);
  request.set_initial_balance_fen(kInitialBalanceMaxFen + 1);
  ExpectRefused(Issue(request), "initial_balance_fen", "initial_balance_fen");

  const v1::Tenant shanghai = server::CityTenant(kShanghai);
  v1::CardCommandResponse response;
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::BlockCard,
                   StatusRequest("block-no-reason", card), &response)
                  .ok());
  ExpectRefused(response, "block_reason", "block_reason");
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::UnblockCard,
                   StatusRequest("unblock-active", card), &response)
                  .ok());
  ExpectRefused(response, "card_not_blocked", "card_id");
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::ReportLost,
                   StatusRequest("lost-unknown", txn::MakeCardId(kShanghai, 199)), &response)
                  .ok());
  ExpectRefused(response, "unknown_card", "card_id");
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::ReportLost,
                   StatusRequest("lost-100", card), &response)
                  .ok());
  EXPECT_TRUE(response.accepted()) << response.ShortDebugString();
  EXPECT_EQ(response.status(), v1::CARD_STATUS_BLOCKED);
  EXPECT_EQ(response.hotlist_version().partition_seq_size(), 1);
  v1::CardStatusRequest block = StatusRequest("block-blocked", card);
  block.set_block_reason(v1::BLOCK_REASON_ISSUER);
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::BlockCard, block, &response).ok());
  ExpectRefused(response, "card_not_active", "card_id");
  v1::CloseCardRequest close;
  close.set_request_id("close-100");
  close.set_card_id(card);
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::CloseCard, close, &response).ok());
  EXPECT_TRUE(response.accepted()) << response.ShortDebugString();
  close.set_request_id("close-100-again");
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::CloseCard, close, &response).ok());
  ExpectRefused(response, "card_closed", "card_id");
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::UnblockCard,
                   StatusRequest("unblock-closed", card), &response)
                  .ok());
  ExpectRefused(response, "card_closed", "card_id");
  close.set_request_id("close-unknown");
  close.set_card_id(txn::MakeCardId(kShanghai, 198));
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::CloseCard, close, &response).ok());
  ExpectRefused(response, "unknown_card", "card_id");
}

TEST_F(CardRegistryServiceTest, BadInputIsRefusedBeforeAnythingIsWritten) {
  struct Case {
    v1::IssueCardRequest request;
    uint32_t city;
    grpc::StatusCode code;
    std::string starts_with;
  };
  std::vector<Case> cases;
  v1::IssueCardRequest request = Physical(kShanghai, 200);
  request.set_request_id("bad id!");
  cases.push_back({request, kShanghai, grpc::INVALID_ARGUMENT, "request_id: "});
  request = Physical(kShanghai, 201);
  request.set_card_id(request.card_id().substr(0, 18) + (request.card_id()[18] == '0' ? "1" : "0"));
  cases.push_back({request, kShanghai, grpc::INVALID_ARGUMENT, "card_id: card_id_luhn"});
  request = Physical(kShanghai, 202);
  request.mutable_holder()->set_id_number("310101199001010000");
  cases.push_back({request, kShanghai, grpc::INVALID_ARGUMENT, "holder.id_number: "});
  request = Physical(kShanghai, 203);
  request.mutable_holder()->set_phone("12345");
  cases.push_back({request, kShanghai, grpc::INVALID_ARGUMENT, "holder.phone: "});
  request = Physical(kShanghai, 204);
  request.set_form(v1::CARD_FORM_VIRTUAL_NFC);
  request.set_device_id("bad device id");
  cases.push_back({request, kShanghai, grpc::INVALID_ARGUMENT, "device_id: "});
  request = Physical(kLiuzhou, 205);
  request.mutable_holder()->set_phone(Phone(205));
  cases.push_back({request, kLiuzhou, grpc::FAILED_PRECONDITION, "no_holder_key"});
  request = Physical(kShanghai, 206);
  cases.push_back({request, kNingbo, grpc::PERMISSION_DENIED, "city:330200"});
  for (const Case& c : cases) {
    v1::CardCommandResponse response;
    grpc::Status status = Call(server::CityTenant(c.city),
                               &v1::CardRegistryService::Stub::IssueCard, c.request, &response);
    EXPECT_EQ(status.error_code(), c.code) << c.request.ShortDebugString();
    EXPECT_TRUE(absl::StartsWith(status.error_message(), c.starts_with)) << status.error_message();
    if (c.code == grpc::FAILED_PRECONDITION) {
      EXPECT_TRUE(absl::StrContains(status.error_message(), "450200")) << status.error_message();
    }
    v1::GetCardRequest get;
    get.set_card_id(c.request.card_id());
    v1::GetCardResponse card;
    grpc::Status read =
        Call(server::MinistryTenant(), &v1::CardRegistryService::Stub::GetCard, get, &card);
    EXPECT_NE(read.error_code(), grpc::OK) << "nothing was written for " << c.starts_with;
  }
  // A Liuzhou card without holder data needs no key.
  EXPECT_TRUE(Issue(Physical(kLiuzhou, 207), kLiuzhou).accepted());
}

TEST_F(CardRegistryServiceTest, IssueCardsAnswersEveryItemInOrder) {
  ASSERT_TRUE(Issue(Physical(kNingbo, 300), kNingbo).accepted());
  v1::IssueCardsRequest batch;
  for (int i = 0; i < 40; ++i) {
    v1::IssueCardRequest item = Physical(kNingbo, 300 + static_cast<uint64_t>(i));
    item.set_request_id(absl::StrCat("batch-", i));
    if (i % 10 == 5) item.set_initial_balance_fen(-5);
    *batch.add_cards() = item;
  }
  v1::IssueCardsResponse response;
  ASSERT_TRUE(Call(server::CityTenant(kNingbo), &v1::CardRegistryService::Stub::IssueCards, batch,
                   &response)
                  .ok());
  ASSERT_EQ(response.results_size(), 40);
  EXPECT_EQ(response.accepted(), 35);
  EXPECT_EQ(response.refused(), 5);
  for (int i = 0; i < 40; ++i) {
    const v1::CardCommandResponse& result = response.results(i);
    EXPECT_EQ(result.card_id(), batch.cards(i).card_id());
    if (i == 0) {
      ExpectRefused(result, "card_exists", "card_id");
    } else if (i % 10 == 5) {
      ExpectRefused(result, "initial_balance_fen", "initial_balance_fen");
    } else {
      EXPECT_TRUE(result.accepted()) << i << ": " << result.ShortDebugString();
    }
  }
  // One foreign card id refuses the whole batch before anything is written.
  *batch.add_cards() = Physical(kShanghai, 399);
  EXPECT_EQ(Call(server::CityTenant(kNingbo), &v1::CardRegistryService::Stub::IssueCards, batch,
                 &response)
                .error_code(),
            grpc::PERMISSION_DENIED);
}

TEST_F(CardRegistryServiceTest, ReadsAreScopedToTheCallersTenant) {
  v1::IssueCardRequest request = Physical(kShanghai, 400);
  request.mutable_holder()->set_phone(Phone(400));
  ASSERT_TRUE(Issue(request).accepted());
  v1::GetCardRequest get;
  get.set_card_id(request.card_id());
  v1::GetCardResponse card;
  for (const v1::Tenant& full : {server::CityTenant(kShanghai), server::MinistryTenant()}) {
    ASSERT_TRUE(Call(full, &v1::CardRegistryService::Stub::GetCard, get, &card).ok());
    EXPECT_TRUE(card.card().full());
    EXPECT_EQ(card.card().balance_fen(), 5000);
  }
  for (const v1::Tenant& other :
       {server::CityTenant(kNingbo), server::PartnerTenant("unionmart")}) {
    ASSERT_TRUE(Call(other, &v1::CardRegistryService::Stub::GetCard, get, &card).ok());
    EXPECT_FALSE(card.card().full()) << server::TenantName(other);
    EXPECT_EQ(card.card().status(), v1::CARD_STATUS_ACTIVE);
    EXPECT_EQ(card.card().issuer_city(), kShanghai);
    EXPECT_EQ(card.card().balance_fen(), 0) << "status only";
    EXPECT_EQ(card.card().form(), v1::CARD_FORM_UNSPECIFIED) << "status only";
  }
  EXPECT_EQ(
      Call(server::PlatformTenant("fraud"), &v1::CardRegistryService::Stub::GetCard, get, &card)
          .error_code(),
      grpc::PERMISSION_DENIED);
  EXPECT_EQ(Call(std::nullopt, &v1::CardRegistryService::Stub::GetCard, get, &card).error_code(),
            grpc::UNAUTHENTICATED);
  get.set_card_id(txn::MakeCardId(kShanghai, 499));
  EXPECT_EQ(Call(server::MinistryTenant(), &v1::CardRegistryService::Stub::GetCard, get, &card)
                .error_code(),
            grpc::NOT_FOUND);

  // Commands: only the issuer (or the ministry) changes a card.
  v1::CardCommandResponse response;
  EXPECT_EQ(Call(server::CityTenant(kNingbo), &v1::CardRegistryService::Stub::ReportLost,
                 StatusRequest("ningbo-lost", request.card_id()), &response)
                .error_code(),
            grpc::PERMISSION_DENIED);
  EXPECT_EQ(Call(server::PartnerTenant("unionmart"), &v1::CardRegistryService::Stub::UnblockCard,
                 StatusRequest("partner-unblock", request.card_id()), &response)
                .error_code(),
            grpc::PERMISSION_DENIED);
  v1::CloseCardRequest close;
  close.set_request_id("fraud-close");
  close.set_card_id(request.card_id());
  EXPECT_EQ(Call(server::PlatformTenant("fraud"), &v1::CardRegistryService::Stub::CloseCard, close,
                 &response)
                .error_code(),
            grpc::PERMISSION_DENIED);
  v1::CardStatusRequest block = StatusRequest("ministry-block", request.card_id());
  block.set_block_reason(v1::BLOCK_REASON_FRAUD);
  ASSERT_TRUE(
      Call(server::MinistryTenant(), &v1::CardRegistryService::Stub::BlockCard, block, &response)
          .ok());
  EXPECT_TRUE(response.accepted()) << response.ShortDebugString();

  // Holder lookups: the issuer finds its card; another city finds nothing under its own key;
  // nobody else may look.
  v1::FindCardsByHolderRequest find;
  find.mutable_holder()->set_phone(Phone(400));
  v1::FindCardsByHolderResponse found;
  ASSERT_TRUE(Call(server::CityTenant(kShanghai), &v1::CardRegistryService::Stub::FindCardsByHolder,
                   find, &found)
                  .ok());
  ASSERT_EQ(found.cards_size(), 1);
  EXPECT_EQ(found.cards(0).card_id(), request.card_id());
  EXPECT_TRUE(found.cards(0).full());
  ASSERT_TRUE(Call(server::CityTenant(kNingbo), &v1::CardRegistryService::Stub::FindCardsByHolder,
                   find, &found)
                  .ok());
  EXPECT_EQ(found.cards_size(), 0);
  for (const v1::Tenant& denied : {server::MinistryTenant(), server::PartnerTenant("unionmart"),
                                   server::PlatformTenant("fraud")}) {
    EXPECT_EQ(
        Call(denied, &v1::CardRegistryService::Stub::FindCardsByHolder, find, &found).error_code(),
        grpc::PERMISSION_DENIED)
        << server::TenantName(denied);
  }
  EXPECT_EQ(Call(std::nullopt, &v1::CardRegistryService::Stub::FindCardsByHolder, find, &found)
                .error_code(),
            grpc::UNAUTHENTICATED);
  find.mutable_holder()->set_id_number(IdNumber(400));
  EXPECT_EQ(Call(server::CityTenant(kShanghai), &v1::CardRegistryService::Stub::FindCardsByHolder,
                 find, &found)
                .error_code(),
            grpc::INVALID_ARGUMENT)
      << "one of id_number or phone";

  // The hotlist is for every authenticated tenant, and nobody else.
  v1::GetHotlistResponse hotlist;
  EXPECT_TRUE(Call(server::PartnerTenant("unionmart"), &v1::CardRegistryService::Stub::GetHotlist,
                   v1::GetHotlistRequest(), &hotlist)
                  .ok());
  EXPECT_EQ(Call(std::nullopt, &v1::CardRegistryService::Stub::GetHotlist, v1::GetHotlistRequest(),
                 &hotlist)
                .error_code(),
            grpc::UNAUTHENTICATED);
  v1::GetHotlistDeltaResponse delta;
  EXPECT_EQ(Call(std::nullopt, &v1::CardRegistryService::Stub::GetHotlistDelta,
                 v1::GetHotlistDeltaRequest(), &delta)
                .error_code(),
            grpc::UNAUTHENTICATED);
}

TEST_F(CardRegistryServiceTest, HotlistSnapshotDeltaAndWatch) {
  const v1::Tenant shanghai = server::CityTenant(kShanghai);
  ASSERT_TRUE(Issue(Physical(kShanghai, 500)).accepted());
  ASSERT_TRUE(Issue(Physical(kShanghai, 501)).accepted());
  const std::string first = txn::MakeCardId(kShanghai, 500);
  const std::string second = txn::MakeCardId(kShanghai, 501);
  v1::CardCommandResponse response;
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::ReportLost,
                   StatusRequest("hotlist-lost-500", first), &response)
                  .ok());
  ASSERT_TRUE(response.accepted());

  v1::GetHotlistResponse snapshot;
  ASSERT_TRUE(Call(server::PartnerTenant("unionmart"), &v1::CardRegistryService::Stub::GetHotlist,
                   v1::GetHotlistRequest(), &snapshot)
                  .ok());
  EXPECT_EQ(snapshot.version().partition_seq_size(), kPartitions);
  bool listed = false;
  for (const v1::HotlistEntry& entry : snapshot.cards()) {
    EXPECT_TRUE(entry.listed());
    if (entry.card_id() == first) {
      listed = true;
      EXPECT_EQ(entry.block_reason(), v1::BLOCK_REASON_LOST);
      // The change that listed it: at most the partition's current sequence, never 0.
      EXPECT_GT(entry.seq(), 0u);
      EXPECT_LE(entry.seq(), snapshot.version().partition_seq().at(entry.partition()));
    }
  }
  EXPECT_TRUE(listed);

  // From the snapshot's version: nothing yet; then the unblock and a new block arrive as a delta.
  v1::GetHotlistDeltaRequest since;
  *since.mutable_since() = snapshot.version();
  v1::GetHotlistDeltaResponse delta;
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::GetHotlistDelta, since, &delta).ok());
  EXPECT_EQ(delta.changes_size(), 0);
  EXPECT_FALSE(delta.more());
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::UnblockCard,
                   StatusRequest("hotlist-unblock-500", first), &response)
                  .ok());
  ASSERT_TRUE(response.accepted());
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::GetHotlistDelta, since, &delta).ok());
  ASSERT_EQ(delta.changes_size(), 1);
  EXPECT_EQ(delta.changes(0).card_id(), first);
  EXPECT_FALSE(delta.changes(0).listed());
  EXPECT_EQ(delta.changes(0).seq(),
            response.hotlist_version().partition_seq().at(delta.changes(0).partition()));
  // A limit cuts it short, and says so.
  v1::GetHotlistDeltaRequest from_start;
  from_start.set_limit(1);
  ASSERT_TRUE(
      Call(shanghai, &v1::CardRegistryService::Stub::GetHotlistDelta, from_start, &delta).ok());
  EXPECT_EQ(delta.changes_size(), 1);
  EXPECT_TRUE(delta.more());
  from_start.set_limit(-1);
  EXPECT_EQ(Call(shanghai, &v1::CardRegistryService::Stub::GetHotlistDelta, from_start, &delta)
                .error_code(),
            grpc::INVALID_ARGUMENT);

  // A watcher from the version after the unblock receives the next block.
  for (const auto& [partition, seq] : response.hotlist_version().partition_seq()) {
    (*since.mutable_since()->mutable_partition_seq())[partition] = seq;
  }
  grpc::ClientContext watch;
  Authorize(&watch, server::PartnerTenant("unionmart"));
  std::unique_ptr<grpc::ClientReader<v1::GetHotlistDeltaResponse>> reader =
      stub_->WatchHotlist(&watch, since);
  v1::CardStatusRequest block = StatusRequest("hotlist-block-501", second);
  block.set_block_reason(v1::BLOCK_REASON_HOLDER);
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::BlockCard, block, &response).ok());
  ASSERT_TRUE(response.accepted());
  v1::GetHotlistDeltaResponse pushed;
  ASSERT_TRUE(reader->Read(&pushed));
  ASSERT_EQ(pushed.changes_size(), 1) << pushed.ShortDebugString();
  EXPECT_EQ(pushed.changes(0).card_id(), second);
  EXPECT_TRUE(pushed.changes(0).listed());
  EXPECT_EQ(pushed.changes(0).block_reason(), v1::BLOCK_REASON_HOLDER);
  watch.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::CANCELLED);
  // The server observes right after its write, which the client may see first: wait for it.
  bool observed = false;
  for (int i = 0; i < 600 && !observed; ++i) {
    observed = absl::StrContains(app_->runtime().registry().ExpositionText(),
                                 "tongka_card_registry_hotlist_propagation_seconds_count 1");
    if (!observed) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(observed) << "the watcher observed the block's propagation";
}

// Scans bytes for any of the clear values; returns the first found.
std::optional<std::string> FindAny(absl::string_view bytes, const std::vector<std::string>& clear) {
  for (const std::string& value : clear) {
    if (absl::StrContains(bytes, value)) return value;
  }
  return std::nullopt;
}

TEST_F(CardRegistryServiceTest, NoPersonalDataInClearAnywhere) {
  std::vector<std::string> clear;
  v1::IssueCardsRequest batch;
  for (int i = 0; i < 20; ++i) {
    v1::IssueCardRequest item = Physical(kShanghai, 600 + static_cast<uint64_t>(i));
    item.mutable_holder()->set_id_number(IdNumber(600 + i));
    item.mutable_holder()->set_phone(Phone(600 + i));
    clear.push_back(IdNumber(600 + i));
    clear.push_back(Phone(600 + i));
    if (i % 2 == 0) {
      item.set_form(v1::CARD_FORM_VIRTUAL_NFC);
      item.set_device_id(absl::StrCat("imei-86", 4000000 + i * 31));
      clear.push_back(item.device_id());
    }
    *batch.add_cards() = item;
  }
  v1::IssueCardsResponse response;
  ASSERT_TRUE(Call(server::CityTenant(kShanghai), &v1::CardRegistryService::Stub::IssueCards, batch,
                   &response)
                  .ok());
  EXPECT_EQ(response.accepted(), 20);
  // A refused input with personal data in it: not echoed into any message or log.
  v1::IssueCardRequest bad = Physical(kShanghai, 650);
  bad.mutable_holder()->set_id_number("31010119900101999Z");
  clear.push_back("31010119900101999Z");
  v1::CardCommandResponse ignored;
  grpc::Status refused =
      Call(server::CityTenant(kShanghai), &v1::CardRegistryService::Stub::IssueCard, bad, &ignored);
  EXPECT_EQ(refused.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(FindAny(refused.error_message(), clear), std::nullopt);
  // The issuer can still find them through the tokens.
  v1::FindCardsByHolderRequest find;
  find.mutable_holder()->set_id_number(IdNumber(607));
  v1::FindCardsByHolderResponse found;
  ASSERT_TRUE(Call(server::CityTenant(kShanghai), &v1::CardRegistryService::Stub::FindCardsByHolder,
                   find, &found)
                  .ok());
  ASSERT_EQ(found.cards_size(), 1);
  EXPECT_EQ(found.cards(0).card_id(), txn::MakeCardId(kShanghai, 607));

  // The store: every key and value, and the raw files of its directory.
  int64_t stored = 0;
  ASSERT_TRUE(state_store::ViewOf(app_->store())
                  .scan("",
                        [&](absl::string_view key, absl::string_view value) {
                          ++stored;
                          EXPECT_EQ(FindAny(key, clear), std::nullopt) << key;
                          EXPECT_EQ(FindAny(value, clear), std::nullopt) << key;
                          return true;
                        })
                  .ok());
  EXPECT_GT(stored, 40);
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(TempPath("state"))) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    ++files;
    EXPECT_EQ(FindAny(bytes.str(), clear), std::nullopt) << entry.path();
  }
  EXPECT_GT(files, 0);

  // tongka.cards: every record (commands and decisions), decompressed by the consumer.
  auto consumer =
      event_log::PartitionConsumer::Create({.bootstrap_servers = kafka_->bootstrap()}, "pii-scan");
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  std::vector<event_log::StartPosition> positions;
  std::map<int32_t, int64_t> high;
  for (int32_t p = 0; p < kPartitions; ++p) {
    positions.push_back({.topic_partition = {kCardsTopic, p}, .next_offset = 0});
    auto marks = (*consumer)->QueryWatermarks({kCardsTopic, p}, absl::Seconds(30));
    ASSERT_TRUE(marks.ok()) << marks.status();
    if (marks->second > 0) high[p] = marks->second;
  }
  ASSERT_TRUE((*consumer)->Assign(positions).ok());
  std::map<int32_t, int64_t> next;
  int64_t records = 0;
  auto done = [&] {
    for (const auto& [p, end] : high) {
      if (next[p] < end) return false;
    }
    return true;
  };
  while (!done()) {
    std::vector<event_log::Record> batch_records;
    ASSERT_TRUE((*consumer)->Poll(1000, absl::Milliseconds(200), &batch_records).ok());
    for (const event_log::Record& record : batch_records) {
      ++records;
      next[record.partition] = std::max(next[record.partition], record.offset + 1);
      EXPECT_EQ(FindAny(record.value, clear), std::nullopt)
          << record.topic << "/" << record.partition << "@" << record.offset;
    }
  }
  (*consumer)->Close();
  EXPECT_GT(records, 40) << "commands and decisions";

  // Every log line this process wrote.
  EXPECT_EQ(FindAny(sink_->text(), clear), std::nullopt);
  EXPECT_FALSE(sink_->text().empty());
}

// Replacing and linking go through two partitions; the answer waits for both halves.
TEST_F(CardRegistryServiceTest, ReplaceAndLinkIssueTheNewCardAndCarryTheBalance) {
  const v1::Tenant ningbo = server::CityTenant(kNingbo);
  v1::GetIssuerBalancesRequest sum_request;
  sum_request.set_issuer_city(kNingbo);
  v1::GetIssuerBalancesResponse before;
  ASSERT_TRUE(
      Call(ningbo, &v1::CardRegistryService::Stub::GetIssuerBalances, sum_request, &before).ok());

  const v1::IssueCardRequest old_card = Physical(kNingbo, 900);
  ASSERT_TRUE(Issue(old_card, kNingbo).accepted());
  v1::ReplaceCardRequest replace;
  replace.set_request_id("replace-900");
  replace.set_card_id(old_card.card_id());
  replace.set_new_card_id(txn::MakeCardId(kNingbo, 901));
  replace.set_new_form(v1::CARD_FORM_PHYSICAL);
  replace.set_reason("lost");
  v1::CardCommandResponse replaced;
  ASSERT_TRUE(Call(ningbo, &v1::CardRegistryService::Stub::ReplaceCard, replace, &replaced).ok());
  EXPECT_TRUE(replaced.accepted()) << replaced.ShortDebugString();
  EXPECT_EQ(replaced.status(), v1::CARD_STATUS_CLOSED);
  EXPECT_EQ(replaced.derived().state(), v1::DerivedCard::STATE_ISSUED);
  EXPECT_EQ(replaced.derived().carried_balance_fen(), 5000);
  v1::CardCommandResponse retried;
  ASSERT_TRUE(Call(ningbo, &v1::CardRegistryService::Stub::ReplaceCard, replace, &retried).ok());
  EXPECT_EQ(retried.ShortDebugString(), replaced.ShortDebugString());

  v1::GetCardRequest get;
  get.set_card_id(replace.new_card_id());
  v1::GetCardResponse card;
  ASSERT_TRUE(Call(ningbo, &v1::CardRegistryService::Stub::GetCard, get, &card).ok());
  EXPECT_EQ(card.card().balance_fen(), 5000);
  EXPECT_EQ(card.card().carried_from_card_id(), old_card.card_id());
  get.set_card_id(old_card.card_id());
  ASSERT_TRUE(Call(ningbo, &v1::CardRegistryService::Stub::GetCard, get, &card).ok());
  EXPECT_EQ(card.card().status(), v1::CARD_STATUS_CLOSED);
  EXPECT_EQ(card.card().replaced_by_card_id(), replace.new_card_id());

  // A closed card is not replaced again; a foreign city may not ask; a replacement of another
  // city is bad input.
  replace.set_request_id("replace-900-again");
  replace.set_new_card_id(txn::MakeCardId(kNingbo, 902));
  ASSERT_TRUE(Call(ningbo, &v1::CardRegistryService::Stub::ReplaceCard, replace, &replaced).ok());
  ExpectRefused(replaced, "card_closed", "card_id");
  EXPECT_EQ(Call(server::CityTenant(kShanghai), &v1::CardRegistryService::Stub::ReplaceCard,
                 replace, &replaced)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  replace.set_new_card_id(txn::MakeCardId(kShanghai, 902));
  grpc::Status foreign =
      Call(ningbo, &v1::CardRegistryService::Stub::ReplaceCard, replace, &replaced);
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(foreign.error_message().find("new_card_id"), std::string::npos);

  // A replacement onto an id that is already a card: the old card closes, the new card's
  // partition refuses, and the balance comes back to the old card as owed to the holder.
  const v1::IssueCardRequest taken = Physical(kNingbo, 910);
  const v1::IssueCardRequest lost = Physical(kNingbo, 911);
  ASSERT_TRUE(Issue(taken, kNingbo).accepted());
  ASSERT_TRUE(Issue(lost, kNingbo).accepted());
  replace.set_request_id("replace-911");
  replace.set_card_id(lost.card_id());
  replace.set_new_card_id(taken.card_id());
  ASSERT_TRUE(Call(ningbo, &v1::CardRegistryService::Stub::ReplaceCard, replace, &replaced).ok());
  EXPECT_TRUE(replaced.accepted());
  EXPECT_EQ(replaced.derived().state(), v1::DerivedCard::STATE_REFUSED);
  EXPECT_EQ(replaced.derived().rule(), "card_exists");
  get.set_card_id(lost.card_id());
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    ASSERT_TRUE(Call(ningbo, &v1::CardRegistryService::Stub::GetCard, get, &card).ok());
    if (card.card().balance_owed_fen() != 0) break;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  EXPECT_EQ(card.card().balance_owed_fen(), 5000);

  // A QR card linked to a physical card.
  const v1::IssueCardRequest physical = Physical(kNingbo, 920);
  ASSERT_TRUE(Issue(physical, kNingbo).accepted());
  v1::LinkVirtualCardRequest link;
  link.set_request_id("link-920");
  link.set_card_id(physical.card_id());
  link.set_virtual_card_id(txn::MakeCardId(kNingbo, 921));
  link.set_form(v1::CARD_FORM_QR);
  v1::CardCommandResponse linked;
  ASSERT_TRUE(Call(ningbo, &v1::CardRegistryService::Stub::LinkVirtualCard, link, &linked).ok());
  EXPECT_TRUE(linked.accepted()) << linked.ShortDebugString();
  EXPECT_EQ(linked.derived().state(), v1::DerivedCard::STATE_ISSUED);
  get.set_card_id(link.virtual_card_id());
  ASSERT_TRUE(Call(ningbo, &v1::CardRegistryService::Stub::GetCard, get, &card).ok());
  EXPECT_EQ(card.card().linked_card_id(), physical.card_id());
  EXPECT_EQ(card.card().form(), v1::CARD_FORM_QR);

  // The issuer's balances: 901 (carried 5000), 910 (5000), 920 (5000) and 921 (0) are open;
  // 900 and 911 are closed.
  v1::GetIssuerBalancesResponse after;
  ASSERT_TRUE(
      Call(ningbo, &v1::CardRegistryService::Stub::GetIssuerBalances, sum_request, &after).ok());
  EXPECT_EQ(after.cards() - before.cards(), 4);
  EXPECT_EQ(after.closed_cards() - before.closed_cards(), 2);
  EXPECT_EQ(after.balance_fen() - before.balance_fen(), 15000);
  ASSERT_TRUE(Call(server::MinistryTenant(), &v1::CardRegistryService::Stub::GetIssuerBalances,
                   sum_request, &after)
                  .ok());
  for (const v1::Tenant& other : {server::CityTenant(kShanghai), server::PartnerTenant("unionmart"),
                                  server::PlatformTenant("fraud")}) {
    EXPECT_EQ(Call(other, &v1::CardRegistryService::Stub::GetIssuerBalances, sum_request, &after)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << server::TenantName(other);
  }
}

// The failed-issuer playbook through the API: the ministry marks Guilin EXITING and moves its
// cards to Shanghai; Shanghai then manages them, Guilin no longer does, and the balances stay.
TEST_F(CardRegistryServiceTest, TransferIssuerHandsTheCardsToTheSuccessor) {
  constexpr uint32_t kGuilin = 450300;
  const v1::Tenant shanghai = server::CityTenant(kShanghai);
  const v1::Tenant guilin = server::CityTenant(kGuilin);
  auto members = v1::MemberRegistryService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", app_->grpc_port()), grpc::InsecureChannelCredentials()));
  auto ministry_call = [&](auto method, const auto& request, v1::MemberCommandResponse* response) {
    grpc::ClientContext context;
    Authorize(&context, server::MinistryTenant());
    return (members.get()->*method)(&context, request, response);
  };
  v1::GetIssuerBalancesRequest sum_request;
  sum_request.set_issuer_city(kShanghai);
  v1::GetIssuerBalancesResponse before;
  ASSERT_TRUE(
      Call(shanghai, &v1::CardRegistryService::Stub::GetIssuerBalances, sum_request, &before).ok());
  const v1::IssueCardRequest card = Physical(kGuilin, 1);
  ASSERT_TRUE(Issue(card, kGuilin).accepted());

  v1::TransferIssuerRequest transfer;
  transfer.set_request_id("transfer-guilin");
  transfer.set_from_city(kGuilin);
  transfer.set_to_city(kShanghai);
  transfer.set_reason("card company failed");
  v1::MemberCommandResponse decided;
  ASSERT_TRUE(
      ministry_call(&v1::MemberRegistryService::Stub::TransferIssuer, transfer, &decided).ok());
  EXPECT_EQ(decided.rule(), "issuer_not_exiting");
  v1::SetMemberStatusRequest exiting;
  exiting.set_request_id("exiting-guilin");
  exiting.set_participant("city:450300");
  exiting.set_status(v1::MEMBER_STATUS_EXITING);
  exiting.set_reason("card company failed");
  ASSERT_TRUE(
      ministry_call(&v1::MemberRegistryService::Stub::SetMemberStatus, exiting, &decided).ok());
  ASSERT_TRUE(decided.accepted()) << decided.ShortDebugString();
  transfer.set_request_id("transfer-guilin-2");
  ASSERT_TRUE(
      ministry_call(&v1::MemberRegistryService::Stub::TransferIssuer, transfer, &decided).ok());
  ASSERT_TRUE(decided.accepted()) << decided.ShortDebugString();
  EXPECT_EQ(decided.member().successor_city(), kShanghai);

  // Each card partition applies its copy of the transfer through the log.
  v1::GetCardRequest get;
  get.set_card_id(card.card_id());
  v1::GetCardResponse view;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::GetCard, get, &view).ok());
    if (view.card().full()) break;
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < deadline);
  EXPECT_TRUE(view.card().full());
  EXPECT_EQ(view.card().issuer_city(), kShanghai);
  EXPECT_EQ(view.card().transferred_from_city(), kGuilin);
  EXPECT_EQ(view.card().balance_fen(), 5000);
  ASSERT_TRUE(Call(guilin, &v1::CardRegistryService::Stub::GetCard, get, &view).ok());
  EXPECT_FALSE(view.card().full()) << "the failed city sees status only";

  v1::CardCommandResponse response;
  EXPECT_EQ(Call(guilin, &v1::CardRegistryService::Stub::BlockCard,
                 StatusRequest("block-by-guilin", card.card_id()), &response)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::CardStatusRequest block = StatusRequest("block-by-shanghai", card.card_id());
  block.set_block_reason(v1::BLOCK_REASON_ISSUER);
  ASSERT_TRUE(Call(shanghai, &v1::CardRegistryService::Stub::BlockCard, block, &response).ok());
  EXPECT_TRUE(response.accepted()) << response.ShortDebugString();
  // Guilin issues no more card ids once its partition applied the transfer.
  const v1::IssueCardRequest late = Physical(kGuilin, 2);
  const absl::Time applied_by = absl::Now() + absl::Seconds(30);
  while (!OwnerPartitionHasTransfer(late.card_id()) && absl::Now() < applied_by) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ExpectRefused(Issue(late, kGuilin), "issuer_transferred", "card_id");

  v1::GetIssuerBalancesResponse after;
  ASSERT_TRUE(
      Call(shanghai, &v1::CardRegistryService::Stub::GetIssuerBalances, sum_request, &after).ok());
  EXPECT_EQ(after.cards() - before.cards(), 1);
  EXPECT_EQ(after.balance_fen() - before.balance_fen(), 5000);
  transfer.set_request_id("transfer-guilin-3");
  ASSERT_TRUE(
      ministry_call(&v1::MemberRegistryService::Stub::TransferIssuer, transfer, &decided).ok());
  EXPECT_EQ(decided.rule(), "already_transferred");
}

}  // namespace
}  // namespace tongka::card_registry
