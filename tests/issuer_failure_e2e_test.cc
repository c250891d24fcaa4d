// The failed-issuer playbook on the real broker: Liuzhou's card company fails mid-day, its cards
// keep tapping in other cities, and no fen of prepaid money is lost.
//
// A broker with the platform's topics, the real ingest, settlement and card registry binaries
// (dev tokens, a holder key per member city). The real tapgen binary issues its cards through the
// registry's IssueCards (--registry) and writes a simulated day of cross-city traffic to a file;
// the test splits the day at its middle record (the records are in device-time order) and sends
// each half with `tapgen --in`.
//
// Morning: the first half goes through ingest; once every service has committed every record of
// its topics (the services' own tongka_consumer_committed_offset figures equal the log ends,
// outboxes empty), the float equals the sum of the card balances per issuer, and Liuzhou (450200)
// records an escrow reserve. The test records every Liuzhou card's balance, GetIssuerBalances of
// Liuzhou and Nanning (450100), and settlement's float rows and total.
//
// The failure: the ministry sets city:450200 EXITING, moves its cards to Nanning (TransferIssuer)
// and its float (TransferFloat). Once applied: every Liuzhou card's balance is unchanged card by
// card and Nanning manages it (GetCard: issuer 450100, transferred from 450200, in full for
// Nanning, status only for Liuzhou); Nanning's balances and float grew by exactly Liuzhou's;
// Liuzhou's row shows outstanding 0, successor 450100 and transferred_fen = its float before;
// the total over all issuers did not move; tongka.settlement holds exactly one FloatTransferred,
// with Liuzhou's float before as its amount and its reserve; Liuzhou issues no new card.
//
// Afternoon: the second half goes through ingest, Liuzhou's cards tapping in other cities among
// it, every Liuzhou record acknowledged. Once applied, for every managing issuer settlement's
// folded float == the registry's GetIssuerBalances == the sum this test computes from tapgen's
// files (opening balance, then the balance_after of the card's acknowledged transactions in
// counter order), Nanning's including Liuzhou's cards; every card's GetCard shows the computed
// balance; the total moved by exactly the afternoon's own money.
//
// Then Nanning blocks a Liuzhou card (accepted, on the hotlist), Liuzhou may not
// (PERMISSION_DENIED), and the ministry draws Liuzhou's reserve down to zero: GetFloat shows it
// with its coverage over what was transferred until it reaches zero.
//
// tapgen runs with --fraud_rate=0, as in float_e2e_test: injected fraud breaks balance chains on
// purpose. Every wait polls a condition under a deadline.
#include <glog/logging.h>

#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "libs/event_log/record.h"
#include "libs/server/tenant.h"
#include "libs/txn/card_id.h"
#include "libs/txn/upload.h"
#include "proto/card_registry.grpc.pb.h"
#include "proto/events.pb.h"
#include "proto/settlement.grpc.pb.h"
#include "services/ingest/testing/topic_reader.h"
#include "tests/testing/platform.h"
#include "tools/tapgen/tapgen.h"

namespace tongka {
namespace {

constexpr char kSecret[] = "issuer-failure-e2e-test-dev-secret-0123";
constexpr int64_t kTransactions = 6000;
constexpr int64_t kCards = 1500;
constexpr uint32_t kLiuzhou = 450200;
constexpr uint32_t kNanning = 450100;

using testing::CardFile;
using testing::kCardsTopic;
using testing::kMembersTopic;
using testing::kSettlementTopic;
using testing::kTxnTopic;
using testing::Platform;
using testing::ReadAcked;
using testing::TempPath;

// ---- the independent computation, from tapgen's files ----

const v1::TxnCommon& TxnOf(const v1::TransactionUpload& upload) {
  return upload.has_tap()    ? upload.tap().txn()
         : upload.has_load() ? upload.load().txn()
                             : upload.refund().txn();
}

// What a record does to its card's balance: -tap, +load, +refund.
int64_t DeltaOf(const v1::TransactionUpload& upload) {
  return upload.has_tap()    ? -upload.tap().amount_fen()
         : upload.has_load() ? upload.load().amount_fen()
                             : upload.refund().amount_fen();
}

struct Step {
  uint32_t counter = 0;
  int64_t before_fen = 0;
  int64_t after_fen = 0;
  int64_t delta_fen = 0;
  std::string event_id;
};

struct Expected {
  std::map<std::string, int64_t> balance_fen;    // per card
  std::map<uint32_t, int64_t> by_card_city_fen;  // per card city: the sum of its cards' balances
  std::map<uint32_t, int64_t> cards;             // per card city
  int64_t total_fen = 0;
  std::vector<std::string> chain_breaks;
};

// The balances after the acknowledged records of `uploads`, card by card, with the balance chain
// checked (each transaction starts where the last one ended and moves it by its amount).
Expected Compute(const std::vector<CardFile>& cards,
                 const std::vector<v1::TransactionUpload>& uploads,
                 const std::set<std::string>& acked) {
  Expected expected;
  std::map<std::string, std::vector<Step>> steps;
  std::set<std::string> seen;
  for (const v1::TransactionUpload& upload : uploads) {
    const std::string id = txn::TxnEventIdOf(upload);
    if (acked.count(id) == 0 || !seen.insert(id).second) continue;
    const v1::TxnCommon& txn = TxnOf(upload);
    steps[txn.card_id()].push_back({.counter = txn.card_counter(),
                                    .before_fen = txn.balance_before_fen(),
                                    .after_fen = txn.balance_after_fen(),
                                    .delta_fen = DeltaOf(upload),
                                    .event_id = id});
  }
  for (const CardFile& card : cards) {
    int64_t balance = card.initial_balance_fen;
    std::vector<Step>& chain = steps[card.card_id];
    std::sort(chain.begin(), chain.end(),
              [](const Step& a, const Step& b) { return a.counter < b.counter; });
    uint32_t counter = card.initial_counter;
    for (const Step& step : chain) {
      if (step.counter != counter + 1 || step.before_fen != balance ||
          step.after_fen - step.before_fen != step.delta_fen) {
        expected.chain_breaks.push_back(
            absl::StrCat(card.card_id, " ", step.event_id, ": counter ", step.counter, " after ",
                         counter, ", balance_before ", step.before_fen, " after ", balance));
      }
      counter = step.counter;
      balance = step.after_fen;
    }
    expected.balance_fen[card.card_id] = balance;
    expected.by_card_city_fen[card.issuer] += balance;
    ++expected.cards[card.issuer];
    expected.total_fen += balance;
  }
  return expected;
}

// ---- the two services' views ----

int64_t TotalOutstanding(const std::map<uint32_t, v1::FloatPosition>& positions) {
  int64_t total = 0;
  for (const auto& [issuer, position] : positions) total += position.outstanding_fen();
  return total;
}

v1::FloatPosition Row(const std::map<uint32_t, v1::FloatPosition>& positions, uint32_t issuer) {
  auto found = positions.find(issuer);
  return found == positions.end() ? v1::FloatPosition() : found->second;
}

// For every issuer that manages cards (`expected_fen`, by managing issuer): settlement's folded
// float == the registry's GetIssuerBalances == the computed sum; every other row outstanding 0.
void ExpectFloatEqualsBalances(Platform& platform,
                               const std::map<uint32_t, int64_t>& expected_fen) {
  const std::map<uint32_t, v1::FloatPosition> positions = platform.Float();
  int64_t expected_total = 0;
  for (const auto& [issuer, expected] : expected_fen) {
    const v1::FloatPosition position = Row(positions, issuer);
    const v1::GetIssuerBalancesResponse balances = platform.Balances(issuer);
    EXPECT_EQ(position.outstanding_fen(), balances.balance_fen())
        << "issuer " << issuer << ": settlement's float " << position.ShortDebugString()
        << " != the registry's balances " << balances.ShortDebugString();
    EXPECT_EQ(balances.balance_fen(), expected) << "issuer " << issuer << ": the registry";
    EXPECT_EQ(position.outstanding_fen(), expected) << "issuer " << issuer << ": settlement";
    expected_total += expected;
  }
  for (const auto& [issuer, position] : positions) {
    if (expected_fen.count(issuer) == 0) {
      EXPECT_EQ(position.outstanding_fen(), 0)
          << "a float for an issuer that manages no card: " << position.ShortDebugString();
    }
  }
  EXPECT_EQ(TotalOutstanding(positions), expected_total) << "over every issuer";
}

TEST(IssuerFailureE2eTest, LiuzhouFailsMidDayAndNoFenOfPrepaidMoneyIsLost) {
  // ---- the broker, its topics, the three services ----
  Platform platform({.dev_token_secret = kSecret});
  ASSERT_NO_FATAL_FAILURE(platform.Start());
  testing::Service& settlement = platform.settlement();
  testing::Service& registry = platform.registry();
  auto members_stub = v1::MemberRegistryService::NewStub(
      grpc::CreateChannel(platform.registry_target(), grpc::InsecureChannelCredentials()));
  const v1::Tenant ministry = server::MinistryTenant();
  const v1::Tenant liuzhou = server::CityTenant(kLiuzhou);
  const v1::Tenant nanning = server::CityTenant(kNanning);

  // Both services have applied every record of every topic they read. Repeated until the log
  // ends stand still, since applying can publish more (the registry's transfer copies, the
  // settlement ledger's FloatTransferred).
  auto await_applied = [&] {
    for (int round = 0; round < 10; ++round) {
      const std::map<int32_t, int64_t> txn = platform.LogEnds(kTxnTopic);
      const std::map<int32_t, int64_t> cards = platform.LogEnds(kCardsTopic);
      const std::map<int32_t, int64_t> members = platform.LogEnds(kMembersTopic);
      const std::map<int32_t, int64_t> ledger = platform.LogEnds(kSettlementTopic);
      registry.AwaitCommitted("members", kMembersTopic, members);
      registry.AwaitCommitted("ledger", kCardsTopic, cards);
      registry.AwaitCommitted("ledger", kTxnTopic, txn);
      settlement.AwaitCommitted("txn", kCardsTopic, cards);
      settlement.AwaitCommitted("txn", kTxnTopic, txn);
      settlement.AwaitCommitted("ledger", kSettlementTopic, ledger);
      if (::testing::Test::HasFatalFailure()) return;
      if (txn == platform.LogEnds(kTxnTopic) && cards == platform.LogEnds(kCardsTopic) &&
          members == platform.LogEnds(kMembersTopic) &&
          ledger == platform.LogEnds(kSettlementTopic)) {
        return;
      }
    }
    FAIL() << "the topics kept growing";
  };

  // ---- tapgen: its cards through IssueCards, a day of traffic into a file ----
  // Seed 5 with a 30% cross-city share gives Liuzhou's cards about 40 records in each half, a
  // dozen of them taps in other cities (checked below).
  ASSERT_NO_FATAL_FAILURE(platform.RunTapgen(
      {"--seed=5", absl::StrCat("--transactions=", kTransactions), absl::StrCat("--cards=", kCards),
       "--cross_city_share=0.3", "--fraud_rate=0", "--start_at=yesterday",
       "--registry=" + platform.registry_target(), "--out=" + TempPath("day.bin"),
       "--cards_out=" + TempPath("cards.csv")},
      "tapgen_generate.log"));
  const std::vector<CardFile> cards = testing::ReadCards(TempPath("cards.csv"));
  ASSERT_EQ(static_cast<int64_t>(cards.size()), kCards);
  std::vector<v1::TransactionUpload> day;
  {
    std::ifstream in(TempPath("day.bin"), std::ios::binary);
    auto uploads = tapgen::ReadDelimited(&in);
    ASSERT_TRUE(uploads.ok()) << uploads.status();
    day = *std::move(uploads);
  }
  ASSERT_EQ(static_cast<int64_t>(day.size()), kTransactions);
  // Morning and afternoon: the records are in device-time order, so the middle record splits
  // the day; each card's records keep their order.
  const size_t noon = day.size() / 2;
  const std::vector<v1::TransactionUpload> morning(day.begin(), day.begin() + noon);
  const std::vector<v1::TransactionUpload> afternoon(day.begin() + noon, day.end());
  const std::vector<std::pair<std::string, const std::vector<v1::TransactionUpload>*>> halves = {
      {"morning", &morning}, {"afternoon", &afternoon}};
  for (const auto& [name, half] : halves) {
    std::ofstream out(TempPath(name + ".bin"), std::ios::binary | std::ios::trunc);
    for (const v1::TransactionUpload& upload : *half) {
      ASSERT_TRUE(tapgen::WriteDelimited(upload, &out).ok());
    }
  }
  std::vector<CardFile> liuzhou_cards;
  for (const CardFile& card : cards) {
    if (card.issuer == kLiuzhou) liuzhou_cards.push_back(card);
  }
  // Liuzhou cards' records, and those made in other cities, per half.
  auto liuzhou_records = [&](const std::vector<v1::TransactionUpload>& half, bool elsewhere) {
    std::vector<std::string> ids;
    for (const v1::TransactionUpload& upload : half) {
      const v1::TxnCommon& txn = TxnOf(upload);
      if (txn.issuer_city() != kLiuzhou) continue;
      if (elsewhere && (!upload.has_tap() || txn.acquirer_city() == kLiuzhou)) continue;
      ids.push_back(txn::TxnEventIdOf(upload));
    }
    return ids;
  };
  LOG(INFO) << liuzhou_cards.size()
            << " Liuzhou cards; morning: " << liuzhou_records(morning, false).size()
            << " of their records, " << liuzhou_records(morning, true).size()
            << " taps in other cities; afternoon: " << liuzhou_records(afternoon, false).size()
            << " records, " << liuzhou_records(afternoon, true).size() << " taps in other cities";
  ASSERT_GE(liuzhou_cards.size(), 5u);
  ASSERT_GE(liuzhou_records(morning, true).size(), 5u);
  ASSERT_GE(liuzhou_records(afternoon, true).size(), 5u);

  auto play = [&](const std::string& name) {
    platform.RunTapgen(
        {"--in=" + TempPath(name + ".bin"), "--target=" + platform.ingest_target(),
         "--batch_size=500", "--concurrency=4", "--acked_out=" + TempPath(name + ".acked")},
        "tapgen_" + name + ".log");
  };

  // ---- morning ----
  play("morning");
  if (HasFatalFailure()) return;
  const std::set<std::string> morning_acked = ReadAcked(TempPath("morning.acked"));
  ASSERT_GT(morning_acked.size(), morning.size() * 9 / 10);
  for (const std::string& id : liuzhou_records(morning, false)) {
    EXPECT_EQ(morning_acked.count(id), 1u) << "a Liuzhou record not acknowledged: " << id;
  }
  const Expected at_noon = Compute(cards, morning, morning_acked);
  ASSERT_TRUE(at_noon.chain_breaks.empty())
      << at_noon.chain_breaks.size() << " breaks, the first: " << at_noon.chain_breaks.front();
  await_applied();
  if (HasFatalFailure()) return;
  // Before the failure the float adds up per issuer (every issuer manages its own cards).
  ExpectFloatEqualsBalances(platform, at_noon.by_card_city_fen);
  ASSERT_GT(at_noon.by_card_city_fen.at(kLiuzhou), 0);

  // Liuzhou's escrow, recorded by Liuzhou itself while still in business: half its float.
  const int64_t reserve_fen = at_noon.by_card_city_fen.at(kLiuzhou) / 2;
  {
    v1::RecordReserveRequest request;
    request.set_request_id("liuzhou-reserve-1");
    request.set_issuer_city(kLiuzhou);
    request.set_reserve_fen(reserve_fen);
    request.set_reference("escrow 2026-12");
    v1::RecordReserveResponse response;
    const grpc::Status status =
        platform.Call(platform.settlement_stub(), liuzhou,
                      &v1::SettlementService::Stub::RecordReserve, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.position().reserve_fen(), reserve_fen);
  }

  // ---- what the ministry records before the failure ----
  std::map<std::string, int64_t> card_before;
  for (const CardFile& card : liuzhou_cards) {
    const std::optional<v1::CardView> view = platform.GetCard(card.card_id);
    ASSERT_TRUE(view.has_value());
    EXPECT_EQ(view->issuer_city(), kLiuzhou);
    EXPECT_EQ(view->balance_fen(), at_noon.balance_fen.at(card.card_id)) << card.card_id;
    card_before[card.card_id] = view->balance_fen();
  }
  const v1::GetIssuerBalancesResponse liuzhou_balances_before = platform.Balances(kLiuzhou);
  const v1::GetIssuerBalancesResponse nanning_balances_before = platform.Balances(kNanning);
  const std::map<uint32_t, v1::FloatPosition> float_before = platform.Float();
  const v1::FloatPosition liuzhou_before = Row(float_before, kLiuzhou);
  const v1::FloatPosition nanning_before = Row(float_before, kNanning);
  const int64_t total_before = TotalOutstanding(float_before);
  EXPECT_EQ(liuzhou_before.outstanding_fen(), liuzhou_balances_before.balance_fen());
  EXPECT_EQ(liuzhou_before.reserve_fen(), reserve_fen);
  EXPECT_EQ(liuzhou_balances_before.cards(), static_cast<int64_t>(liuzhou_cards.size()));
  LOG(INFO) << "before the failure: Liuzhou " << liuzhou_before.ShortDebugString() << "; Nanning "
            << nanning_before.ShortDebugString() << "; total " << total_before << " fen";

  // ---- the failure: Liuzhou exits, Nanning takes its cards and its float ----
  auto member_call = [&](auto method, const auto& request) {
    v1::MemberCommandResponse response;
    const grpc::Status status = platform.Call(*members_stub, ministry, method, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  };
  {
    v1::SetMemberStatusRequest exiting;
    exiting.set_request_id("liuzhou-exiting");
    exiting.set_participant("city:450200");
    exiting.set_status(v1::MEMBER_STATUS_EXITING);
    exiting.set_reason("Liuzhou's card company failed");
    exiting.set_actor("ministry-duty-officer");
    const v1::MemberCommandResponse decided =
        member_call(&v1::MemberRegistryService::Stub::SetMemberStatus, exiting);
    ASSERT_TRUE(decided.accepted()) << decided.ShortDebugString();
    EXPECT_EQ(decided.member().status(), v1::MEMBER_STATUS_EXITING);

    v1::TransferIssuerRequest transfer;
    transfer.set_request_id("liuzhou-to-nanning");
    transfer.set_from_city(kLiuzhou);
    transfer.set_to_city(kNanning);
    transfer.set_reason("Liuzhou's card company failed; Nanning takes its cards");
    transfer.set_actor("ministry-duty-officer");
    const v1::MemberCommandResponse moved =
        member_call(&v1::MemberRegistryService::Stub::TransferIssuer, transfer);
    ASSERT_TRUE(moved.accepted()) << moved.ShortDebugString();
    EXPECT_EQ(moved.member().successor_city(), kNanning);
  }
  std::string transfer_event_id;
  {
    v1::TransferFloatRequest request;
    request.set_request_id("liuzhou-float-to-nanning");
    request.set_from_city(kLiuzhou);
    request.set_to_city(kNanning);
    request.set_reason("Liuzhou's card company failed; Nanning carries its float");
    v1::TransferFloatResponse response;
    const grpc::Status status =
        platform.Call(platform.settlement_stub(), ministry,
                      &v1::SettlementService::Stub::TransferFloat, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.from().successor_city(), kNanning) << response.ShortDebugString();
    EXPECT_EQ(response.from().outstanding_fen(), 0) << response.ShortDebugString();
    EXPECT_EQ(response.to().outstanding_fen(),
              nanning_before.outstanding_fen() + liuzhou_before.outstanding_fen())
        << response.ShortDebugString();
    transfer_event_id = response.command_event_id();
  }
  await_applied();
  if (HasFatalFailure()) return;

  // ---- right after: nothing lost, card by card and in total ----
  for (const CardFile& card : liuzhou_cards) {
    const std::optional<v1::CardView> view = platform.GetCard(card.card_id);
    ASSERT_TRUE(view.has_value());
    EXPECT_EQ(view->balance_fen(), card_before.at(card.card_id)) << view->ShortDebugString();
    EXPECT_EQ(view->issuer_city(), kNanning) << view->ShortDebugString();
    EXPECT_EQ(view->transferred_from_city(), kLiuzhou) << view->ShortDebugString();
    EXPECT_EQ(view->status(), v1::CARD_STATUS_ACTIVE) << view->ShortDebugString();
  }
  {
    const std::string& card_id = liuzhou_cards.front().card_id;
    const std::optional<v1::CardView> by_nanning = platform.GetCard(card_id, nanning);
    ASSERT_TRUE(by_nanning.has_value());
    EXPECT_TRUE(by_nanning->full()) << "the successor sees its card in full";
    EXPECT_EQ(by_nanning->balance_fen(), card_before.at(card_id));
    const std::optional<v1::CardView> by_liuzhou = platform.GetCard(card_id, liuzhou);
    ASSERT_TRUE(by_liuzhou.has_value());
    EXPECT_FALSE(by_liuzhou->full()) << "the failed city sees status only";
    EXPECT_EQ(by_liuzhou->status(), v1::CARD_STATUS_ACTIVE);
  }
  {
    const v1::GetIssuerBalancesResponse nanning_after = platform.Balances(kNanning);
    EXPECT_EQ(nanning_after.balance_fen(),
              nanning_balances_before.balance_fen() + liuzhou_balances_before.balance_fen());
    EXPECT_EQ(nanning_after.cards(),
              nanning_balances_before.cards() + liuzhou_balances_before.cards());
    const v1::GetIssuerBalancesResponse liuzhou_after = platform.Balances(kLiuzhou);
    EXPECT_EQ(liuzhou_after.cards(), 0) << liuzhou_after.ShortDebugString();
    EXPECT_EQ(liuzhou_after.balance_fen(), 0) << liuzhou_after.ShortDebugString();
  }
  {
    const std::map<uint32_t, v1::FloatPosition> positions = platform.Float();
    EXPECT_EQ(TotalOutstanding(positions), total_before) << "the transfer moved the total";
    const v1::FloatPosition nanning_row = Row(positions, kNanning);
    EXPECT_EQ(nanning_row.outstanding_fen(),
              nanning_before.outstanding_fen() + liuzhou_before.outstanding_fen())
        << nanning_row.ShortDebugString();
    EXPECT_EQ(nanning_row.inherited_fen(), liuzhou_before.outstanding_fen());
    EXPECT_EQ(std::vector<uint32_t>(nanning_row.predecessor_cities().begin(),
                                    nanning_row.predecessor_cities().end()),
              std::vector<uint32_t>{kLiuzhou});
    const v1::FloatPosition liuzhou_row = Row(positions, kLiuzhou);
    EXPECT_EQ(liuzhou_row.outstanding_fen(), 0) << liuzhou_row.ShortDebugString();
    EXPECT_EQ(liuzhou_row.successor_city(), kNanning) << liuzhou_row.ShortDebugString();
    EXPECT_EQ(liuzhou_row.transferred_fen(), liuzhou_before.outstanding_fen())
        << liuzhou_row.ShortDebugString();
    EXPECT_EQ(liuzhou_row.reserve_fen(), reserve_fen) << liuzhou_row.ShortDebugString();
    for (const auto& [issuer, position] : positions) {
      if (issuer == kLiuzhou || issuer == kNanning) continue;
      EXPECT_EQ(position.outstanding_fen(), Row(float_before, issuer).outstanding_fen())
          << "issuer " << issuer << " moved with the transfer";
    }
  }
  {
    // The auditable record: one FloatTransferred, with the amount.
    auto records =
        ingest::testing::ReadTopic(platform.bootstrap(), kSettlementTopic, absl::Seconds(60));
    ASSERT_TRUE(records.ok()) << records.status();
    std::vector<v1::FloatTransferred> transfers;
    for (const event_log::Record& record : *records) {
      v1::Event event;
      ASSERT_TRUE(event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())));
      if (event.has_float_transferred()) transfers.push_back(event.float_transferred());
    }
    ASSERT_EQ(transfers.size(), 1u);
    const v1::FloatTransferred& transferred = transfers.front();
    EXPECT_EQ(transferred.from_city(), kLiuzhou);
    EXPECT_EQ(transferred.to_city(), kNanning);
    EXPECT_EQ(transferred.amount_fen(), liuzhou_before.outstanding_fen())
        << transferred.ShortDebugString();
    EXPECT_EQ(transferred.reserve_fen(), reserve_fen);
    EXPECT_EQ(transferred.owed_to_holders_fen(), 0);
    EXPECT_EQ(transferred.command_event_id(), transfer_event_id);
    LOG(INFO) << "FloatTransferred " << transferred.ShortDebugString();
  }
  {
    // Liuzhou issues no new card.
    v1::IssueCardRequest request;
    request.set_request_id("liuzhou-after-exit");
    request.set_card_id(txn::MakeCardId(kLiuzhou, 987654321));
    request.set_form(v1::CARD_FORM_PHYSICAL);
    request.set_product(v1::CARD_PRODUCT_STORED_VALUE);
    request.set_initial_balance_fen(5000);
    v1::CardCommandResponse response;
    const grpc::Status status =
        platform.Call(platform.registry_stub(), liuzhou, &v1::CardRegistryService::Stub::IssueCard,
                      request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_FALSE(response.accepted()) << response.ShortDebugString();
    EXPECT_EQ(response.rule(), "issuer_transferred") << response.ShortDebugString();
  }

  // ---- afternoon: Liuzhou's cards keep tapping, in Liuzhou and elsewhere ----
  play("afternoon");
  if (HasFatalFailure()) return;
  const std::set<std::string> afternoon_acked = ReadAcked(TempPath("afternoon.acked"));
  ASSERT_GT(afternoon_acked.size(), afternoon.size() * 9 / 10);
  int liuzhou_elsewhere_acked = 0;
  for (const std::string& id : liuzhou_records(afternoon, false)) {
    EXPECT_EQ(afternoon_acked.count(id), 1u) << "a Liuzhou record not acknowledged: " << id;
  }
  for (const std::string& id : liuzhou_records(afternoon, true)) {
    liuzhou_elsewhere_acked += afternoon_acked.count(id);
  }
  EXPECT_EQ(liuzhou_elsewhere_acked, static_cast<int>(liuzhou_records(afternoon, true).size()));
  std::set<std::string> acked = morning_acked;
  acked.insert(afternoon_acked.begin(), afternoon_acked.end());
  const Expected at_close = Compute(cards, day, acked);
  ASSERT_TRUE(at_close.chain_breaks.empty())
      << at_close.chain_breaks.size() << " breaks, the first: " << at_close.chain_breaks.front();
  int64_t afternoon_money = 0;
  {
    std::set<std::string> seen;
    for (const v1::TransactionUpload& upload : afternoon) {
      const std::string id = txn::TxnEventIdOf(upload);
      if (afternoon_acked.count(id) > 0 && morning_acked.count(id) == 0 && seen.insert(id).second) {
        afternoon_money += DeltaOf(upload);
      }
    }
  }
  EXPECT_EQ(at_close.total_fen, at_noon.total_fen + afternoon_money);
  await_applied();
  if (HasFatalFailure()) return;

  // Float == balances per managing issuer: Nanning's counts Liuzhou's cards.
  std::map<uint32_t, int64_t> managed = at_close.by_card_city_fen;
  managed[kNanning] += managed[kLiuzhou];
  managed.erase(kLiuzhou);
  ExpectFloatEqualsBalances(platform, managed);
  {
    const std::map<uint32_t, v1::FloatPosition> positions = platform.Float();
    EXPECT_EQ(TotalOutstanding(positions), total_before + afternoon_money)
        << "the total moved by more than the afternoon's own money";
    const v1::FloatPosition liuzhou_row = Row(positions, kLiuzhou);
    EXPECT_EQ(liuzhou_row.outstanding_fen(), 0) << liuzhou_row.ShortDebugString();
    EXPECT_EQ(liuzhou_row.transferred_fen(), at_close.by_card_city_fen.at(kLiuzhou))
        << "what Liuzhou's cards hold now: " << liuzhou_row.ShortDebugString();
    EXPECT_EQ(Row(positions, kNanning).inherited_fen(), at_close.by_card_city_fen.at(kLiuzhou));
    const v1::GetIssuerBalancesResponse nanning_balances = platform.Balances(kNanning);
    EXPECT_EQ(nanning_balances.cards(), at_close.cards.at(kNanning) + at_close.cards.at(kLiuzhou));
  }
  int mismatched = 0;
  for (const CardFile& card : cards) {
    const std::optional<v1::CardView> view = platform.GetCard(card.card_id);
    ASSERT_TRUE(view.has_value());
    const int64_t balance = at_close.balance_fen.at(card.card_id);
    if (view->balance_fen() != balance && ++mismatched <= 5) {
      ADD_FAILURE() << card.card_id << ": expected balance " << balance << ", the registry shows "
                    << view->ShortDebugString();
    }
  }
  EXPECT_EQ(mismatched, 0) << "cards whose GetCard differs from tapgen's record";
  LOG(INFO) << "after the afternoon: " << afternoon_acked.size() << " records acknowledged, "
            << liuzhou_records(afternoon, false).size() << " records of Liuzhou's cards ("
            << liuzhou_elsewhere_acked << " taps in other cities), " << afternoon_money
            << " fen of new money; Liuzhou's cards hold " << at_close.by_card_city_fen.at(kLiuzhou)
            << " fen, total " << at_close.total_fen << " fen";

  // ---- Nanning manages the cards: it may block one, Liuzhou may not ----
  {
    const std::string& blocked = liuzhou_cards[0].card_id;
    v1::CardStatusRequest request;
    request.set_request_id("nanning-blocks-liuzhou-card");
    request.set_card_id(blocked);
    request.set_block_reason(v1::BLOCK_REASON_ISSUER);
    request.set_reason("holder reported it damaged at Nanning's counter");
    request.set_actor("nanning-clerk-3");
    v1::CardCommandResponse response;
    grpc::Status status =
        platform.Call(platform.registry_stub(), nanning, &v1::CardRegistryService::Stub::BlockCard,
                      request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(response.accepted()) << response.ShortDebugString();
    EXPECT_EQ(response.status(), v1::CARD_STATUS_BLOCKED);

    v1::GetHotlistResponse hotlist;
    status =
        platform.Call(platform.registry_stub(), nanning, &v1::CardRegistryService::Stub::GetHotlist,
                      v1::GetHotlistRequest(), &hotlist);
    ASSERT_TRUE(status.ok()) << status.error_message();
    bool listed = false;
    for (const v1::HotlistEntry& entry : hotlist.cards()) {
      listed |= entry.card_id() == blocked && entry.listed();
    }
    EXPECT_TRUE(listed) << "the blocked card is not on the hotlist";

    request.set_request_id("liuzhou-blocks-its-old-card");
    request.set_card_id(liuzhou_cards[1].card_id);
    status = platform.Call(platform.registry_stub(), liuzhou,
                           &v1::CardRegistryService::Stub::BlockCard, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
    const std::optional<v1::CardView> untouched = platform.GetCard(liuzhou_cards[1].card_id);
    ASSERT_TRUE(untouched.has_value());
    EXPECT_EQ(untouched->status(), v1::CARD_STATUS_ACTIVE);
  }

  // ---- the ministry draws Liuzhou's escrow down to zero ----
  {
    const int64_t transferred = at_close.by_card_city_fen.at(kLiuzhou);
    v1::FloatPosition row = Row(platform.Float(), kLiuzhou);
    EXPECT_EQ(row.reserve_fen(), reserve_fen) << row.ShortDebugString();
    EXPECT_DOUBLE_EQ(row.coverage_ratio(), static_cast<double>(reserve_fen) / transferred)
        << row.ShortDebugString();
    int step = 0;
    for (const int64_t reserve : {reserve_fen / 2, int64_t{0}}) {
      v1::RecordReserveRequest request;
      request.set_request_id(absl::StrCat("ministry-draws-liuzhou-", ++step));
      request.set_issuer_city(kLiuzhou);
      request.set_reserve_fen(reserve);
      request.set_reference("escrow drawn down for Liuzhou's cardholders");
      v1::RecordReserveResponse response;
      const grpc::Status status =
          platform.Call(platform.settlement_stub(), ministry,
                        &v1::SettlementService::Stub::RecordReserve, request, &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      row = Row(platform.Float(), kLiuzhou);
      EXPECT_EQ(row.reserve_fen(), reserve) << row.ShortDebugString();
      EXPECT_DOUBLE_EQ(row.coverage_ratio(), static_cast<double>(reserve) / transferred)
          << row.ShortDebugString();
      EXPECT_EQ(row.outstanding_fen(), 0);
      EXPECT_EQ(row.successor_city(), kNanning);
    }
    // Nanning's own reserve is its own: the ministry may not record it.
    v1::RecordReserveRequest request;
    request.set_request_id("ministry-nanning");
    request.set_issuer_city(kNanning);
    request.set_reserve_fen(1);
    v1::RecordReserveResponse response;
    EXPECT_EQ(platform
                  .Call(platform.settlement_stub(), ministry,
                        &v1::SettlementService::Stub::RecordReserve, request, &response)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  // The money still adds up after the block and the reserve changes.
  ExpectFloatEqualsBalances(platform, managed);

  platform.Stop();
}

}  // namespace
}  // namespace tongka
