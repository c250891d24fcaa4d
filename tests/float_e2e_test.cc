// The prepaid float adds up card by card, on the real broker.
//
// A broker with the platform's topics, the real ingest, settlement and card registry binaries
// (dev tokens, a holder key per member city), then the real tapgen binary: it issues its cards
// through the registry's IssueCards (--registry) and plays a simulated day of cross-city traffic,
// loads and refunds included, through ingest. Once both services have committed every record of
// their topics (their own tongka_consumer_committed_offset figures equal the log ends, outboxes
// empty), the ministry checks, for every issuer tapgen used:
//   settlement's GetFloat outstanding_fen == the registry's GetIssuerBalances balance_fen
//     == the sum of the issuer's cards' balances as this test computes them from tapgen's own
//        files (opening balance, then the balance_after of the card's acknowledged transactions
//        in counter order) == openings + loads - spends + refunds (the amounts),
// the same over all issuers, and GetCard of every card shows the computed balance and counter.
// The balance chains are checked first (each transaction starts where the last one ended and
// moves the balance by exactly its amount): were they broken, the amount-based float and the
// balance-based sum would differ for a reason in the data, and the test says so by card.
//
// Then the registry's money paths: CloseCard of a card moves its balance from the issuer's
// outstanding float to owed_to_holders_fen and takes it out of GetIssuerBalances; ReplaceCard of
// another moves its balance onto a new card id (outstanding unchanged). After settlement has
// applied tongka.cards the equality holds again.
//
// tapgen runs with --fraud_rate=0: injected fraud (clones, tampered balances) breaks balance
// chains on purpose, and which clone's balance a card shows is fraud detection's question, not
// the float's. Every wait polls a condition under a deadline.
#include <glog/logging.h>

#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "libs/event_log/record.h"
#include "libs/server/tenant.h"
#include "libs/testing/subprocess.h"
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

constexpr char kSecret[] = "float-e2e-test-dev-secret-0123456789";
constexpr int64_t kTransactions = 6000;
constexpr int64_t kCards = 1500;

using testing::CardFile;
using testing::kCardsTopic;
using testing::kSettlementTopic;
using testing::kTxnTopic;
using testing::Platform;
using testing::TempPath;

// ---- the independent computation, from tapgen's files ----

// One acknowledged transaction as the balance chain sees it.
struct Step {
  uint32_t counter = 0;
  int64_t before_fen = 0;
  int64_t after_fen = 0;
  int64_t delta_fen = 0;  // what its amount does to the card: -tap, +load, +refund
  std::string event_id;
};

struct Expected {
  std::map<std::string, int64_t> balance_fen;    // per card: the last balance_after, or the opening
  std::map<std::string, uint32_t> last_counter;  // cards with a transaction
  std::map<uint32_t, int64_t> by_balances_fen;   // per issuer: the sum of its cards' balances
  std::map<uint32_t, int64_t> by_amounts_fen;    // per issuer: openings + loads - spends + refunds
  std::map<uint32_t, int64_t> cards;             // per issuer
  // Per issuer, the parts of the float as tapgen sent them: what settlement's position shows.
  std::map<uint32_t, std::string> parts;
  std::vector<std::string> chain_breaks;  // described, card by card
  int64_t loads = 0;
  int64_t taps = 0;
  int64_t refunds = 0;
};

Expected Compute(const std::vector<CardFile>& cards,
                 const std::vector<v1::TransactionUpload>& uploads,
                 const std::set<std::string>& acked) {
  Expected expected;
  std::map<std::string, std::vector<Step>> steps;
  std::map<uint32_t, int64_t> openings, loads, spent, refunded;
  std::set<std::string> seen;
  for (const v1::TransactionUpload& upload : uploads) {
    const std::string id = txn::TxnEventIdOf(upload);
    if (acked.count(id) == 0 || !seen.insert(id).second) continue;
    const v1::TxnCommon* txn = nullptr;
    Step step;
    if (upload.has_tap()) {
      txn = &upload.tap().txn();
      step.delta_fen = -upload.tap().amount_fen();
      ++expected.taps;
    } else if (upload.has_load()) {
      txn = &upload.load().txn();
      step.delta_fen = upload.load().amount_fen();
      ++expected.loads;
    } else {
      txn = &upload.refund().txn();
      step.delta_fen = upload.refund().amount_fen();
      ++expected.refunds;
    }
    step.counter = txn->card_counter();
    step.before_fen = txn->balance_before_fen();
    step.after_fen = txn->balance_after_fen();
    step.event_id = id;
    steps[txn->card_id()].push_back(step);
    int64_t* part = upload.has_tap()    ? &spent[txn->issuer_city()]
                    : upload.has_load() ? &loads[txn->issuer_city()]
                                        : &refunded[txn->issuer_city()];
    *part += std::abs(step.delta_fen);
  }
  std::set<std::string> known;
  for (const CardFile& card : cards) {
    known.insert(card.card_id);
    int64_t balance = card.initial_balance_fen;
    int64_t by_amounts = card.initial_balance_fen;
    std::vector<Step>& chain = steps[card.card_id];
    std::sort(chain.begin(), chain.end(),
              [](const Step& a, const Step& b) { return a.counter < b.counter; });
    uint32_t counter = card.initial_counter;
    for (const Step& step : chain) {
      if (step.counter != counter + 1 || step.before_fen != balance ||
          step.after_fen - step.before_fen != step.delta_fen) {
        expected.chain_breaks.push_back(
            absl::StrCat(card.card_id, " ", step.event_id, ": counter ", step.counter, " after ",
                         counter, ", balance_before ", step.before_fen, " after ", balance,
                         ", balance_after ", step.after_fen, " for an amount of ", step.delta_fen));
      }
      counter = step.counter;
      balance = step.after_fen;
      by_amounts += step.delta_fen;
    }
    expected.balance_fen[card.card_id] = balance;
    if (!chain.empty()) expected.last_counter[card.card_id] = counter;
    expected.by_balances_fen[card.issuer] += balance;
    expected.by_amounts_fen[card.issuer] += by_amounts;
    ++expected.cards[card.issuer];
    openings[card.issuer] += card.initial_balance_fen;
  }
  for (const auto& [issuer, unused] : expected.cards) {
    expected.parts[issuer] =
        absl::StrCat("opening_fen: ", openings[issuer], " loads_fen: ", loads[issuer],
                     " spent_fen: ", spent[issuer], " refunded_fen: ", refunded[issuer]);
  }
  for (const auto& [card_id, chain] : steps) {
    if (known.count(card_id) == 0 && !chain.empty()) {
      expected.chain_breaks.push_back(absl::StrCat(card_id, ": transactions of a card not issued"));
    }
  }
  return expected;
}

// ---- the ministry's two views ----

// For every issuer: settlement's outstanding float equals the registry's sum of balances (and
// `expected_fen` when given); the same in total. Returns the registry's per-issuer figures.
std::map<uint32_t, v1::GetIssuerBalancesResponse> ExpectFloatEqualsBalances(
    Platform& platform, const std::set<uint32_t>& issuers,
    const std::map<uint32_t, int64_t>& expected_fen, const std::map<uint32_t, std::string>& sent) {
  const std::map<uint32_t, v1::FloatPosition> positions = platform.Float();
  std::map<uint32_t, v1::GetIssuerBalancesResponse> balances;
  int64_t outstanding_total = 0;
  int64_t balance_total = 0;
  int64_t expected_total = 0;
  for (uint32_t issuer : issuers) {
    auto position = positions.find(issuer);
    const int64_t outstanding =
        position == positions.end() ? 0 : position->second.outstanding_fen();
    balances[issuer] = platform.Balances(issuer);
    const int64_t balance = balances[issuer].balance_fen();
    EXPECT_EQ(outstanding, balance)
        << "issuer " << issuer << ": settlement's float "
        << (position == positions.end() ? "(none)" : position->second.ShortDebugString())
        << " != the registry's balances " << balances[issuer].ShortDebugString() << "; tapgen sent "
        << (sent.count(issuer) > 0 ? sent.at(issuer) : "?");
    auto expected = expected_fen.find(issuer);
    if (expected != expected_fen.end()) {
      EXPECT_EQ(balance, expected->second) << "issuer " << issuer << ": the registry's balances";
      EXPECT_EQ(outstanding, expected->second) << "issuer " << issuer << ": settlement's float";
      expected_total += expected->second;
    }
    outstanding_total += outstanding;
    balance_total += balance;
  }
  EXPECT_EQ(outstanding_total, balance_total) << "over every issuer";
  if (!expected_fen.empty()) {
    EXPECT_EQ(balance_total, expected_total) << "over every issuer";
  }
  for (const auto& [issuer, position] : positions) {
    if (issuers.count(issuer) == 0) {
      EXPECT_EQ(position.outstanding_fen(), 0) << "a float for an issuer with no card: " << issuer;
    }
  }
  LOG(INFO) << "float == balances for " << issuers.size() << " issuers, " << outstanding_total
            << " fen in total";
  return balances;
}

TEST(FloatE2eTest, SettlementFloatEqualsTheSumOfCardBalancesAfterTapgensDay) {
  // ---- the broker, its topics, the three services ----
  Platform platform({.dev_token_secret = kSecret});
  ASSERT_NO_FATAL_FAILURE(platform.Start());
  testing::Service& settlement = platform.settlement();
  testing::Service& registry = platform.registry();

  // ---- tapgen: its cards through IssueCards, then a day of traffic ----
  const absl::Time tapgen_started = absl::Now();
  std::unique_ptr<testing::Subprocess> tapgen;
  ASSERT_NO_FATAL_FAILURE(platform.RunTapgen(
      {"--seed=20261224", absl::StrCat("--transactions=", kTransactions),
       absl::StrCat("--cards=", kCards), "--cross_city_share=0.2", "--fraud_rate=0",
       "--batch_size=500", "--concurrency=4", "--registry=" + platform.registry_target(),
       "--target=" + platform.ingest_target(), "--out=" + TempPath("taps.bin"),
       "--acked_out=" + TempPath("acked.txt"), "--cards_out=" + TempPath("cards.csv")},
      "tapgen.log", &tapgen));
  LOG(INFO) << "tapgen took " << absl::Now() - tapgen_started;

  const std::vector<CardFile> cards = testing::ReadCards(TempPath("cards.csv"));
  ASSERT_EQ(static_cast<int64_t>(cards.size()), kCards);
  std::ifstream in(TempPath("taps.bin"), std::ios::binary);
  auto uploads = tapgen::ReadDelimited(&in);
  ASSERT_TRUE(uploads.ok()) << uploads.status();
  ASSERT_EQ(static_cast<int64_t>(uploads->size()), kTransactions);
  const std::set<std::string> acked = testing::ReadAcked(TempPath("acked.txt"));
  ASSERT_GT(acked.size(), static_cast<size_t>(kTransactions * 9 / 10)) << tapgen->Log();
  const Expected expected = Compute(cards, *uploads, acked);
  std::set<uint32_t> issuers;
  for (const CardFile& card : cards) issuers.insert(card.issuer);
  LOG(INFO) << acked.size() << " of " << kTransactions << " records acknowledged: " << expected.taps
            << " taps, " << expected.loads << " loads, " << expected.refunds << " refunds on "
            << expected.last_counter.size() << " of " << cards.size() << " cards of "
            << issuers.size() << " issuers";
  ASSERT_GT(expected.loads, 0);
  ASSERT_GT(expected.refunds, 0);
  ASSERT_GT(issuers.size(), 20u);

  // tapgen's balance chains are whole: the amounts and the balances tell the same story.
  EXPECT_TRUE(expected.chain_breaks.empty())
      << expected.chain_breaks.size()
      << " breaks in tapgen's balance chains, the first: " << expected.chain_breaks.front();
  for (uint32_t issuer : issuers) {
    EXPECT_EQ(expected.by_amounts_fen.at(issuer), expected.by_balances_fen.at(issuer))
        << "issuer " << issuer << ": amounts and balances disagree in tapgen's own data";
  }

  // ---- both services have applied the whole log ----
  const std::map<int32_t, int64_t> txn_ends = platform.LogEnds(kTxnTopic);
  const std::map<int32_t, int64_t> card_ends = platform.LogEnds(kCardsTopic);
  {
    int64_t logged = 0;
    for (const auto& [partition, end] : txn_ends) logged += end;
    EXPECT_EQ(logged, static_cast<int64_t>(acked.size())) << "tongka.txn != what ingest acked";
  }
  auto await_applied = [&] {
    registry.AwaitCommitted("ledger", kCardsTopic, platform.LogEnds(kCardsTopic));
    registry.AwaitCommitted("ledger", kTxnTopic, txn_ends);
    settlement.AwaitCommitted("txn", kCardsTopic, platform.LogEnds(kCardsTopic));
    settlement.AwaitCommitted("txn", kTxnTopic, txn_ends);
    // The txn stage's deltas are all on tongka.settlement now (its outbox is empty).
    settlement.AwaitCommitted("ledger", kSettlementTopic, platform.LogEnds(kSettlementTopic));
  };
  await_applied();
  if (HasFatalFailure()) return;
  {
    // The registry read tongka.txn to the end: the card of the last record of every partition
    // shows that record's counter (a cross-check of the figures the wait relied on).
    auto records = ingest::testing::ReadTopic(platform.bootstrap(), kTxnTopic, absl::Seconds(60));
    ASSERT_TRUE(records.ok()) << records.status();
    std::map<int32_t, std::string> last_card;
    for (const event_log::Record& record : *records) {
      v1::Event event;
      ASSERT_TRUE(event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())));
      const v1::TxnCommon& txn = event.has_tap()      ? event.tap().txn()
                                 : event.has_refund() ? event.refund().txn()
                                                      : event.load().txn();
      last_card[record.partition] = txn.card_id();
    }
    for (const auto& [partition, card_id] : last_card) {
      const std::optional<v1::CardView> card = platform.GetCard(card_id);
      ASSERT_TRUE(card.has_value());
      EXPECT_EQ(card->last_counter(), expected.last_counter.at(card_id)) << card_id;
    }
  }

  // ---- the ministry's check: float == balances, issuer by issuer, card by card ----
  const std::map<uint32_t, v1::GetIssuerBalancesResponse> before =
      ExpectFloatEqualsBalances(platform, issuers, expected.by_balances_fen, expected.parts);
  for (uint32_t issuer : issuers) {
    EXPECT_EQ(before.at(issuer).cards(), expected.cards.at(issuer)) << "issuer " << issuer;
    EXPECT_EQ(before.at(issuer).closed_cards(), 0) << "issuer " << issuer;
  }
  {
    const std::map<uint32_t, v1::FloatPosition> positions = platform.Float();
    int64_t openings = 0;
    int64_t owed = 0;
    for (const CardFile& card : cards) openings += card.initial_balance_fen;
    for (const auto& [issuer, position] : positions) {
      openings -= position.opening_fen();
      owed += position.owed_to_holders_fen();
    }
    EXPECT_EQ(openings, 0) << "settlement's opening_fen != tapgen's opening balances";
    EXPECT_EQ(owed, 0);
  }
  int mismatched = 0;
  for (const CardFile& card : cards) {
    const std::optional<v1::CardView> view = platform.GetCard(card.card_id);
    ASSERT_TRUE(view.has_value());
    const int64_t balance = expected.balance_fen.at(card.card_id);
    auto counter = expected.last_counter.find(card.card_id);
    const bool match =
        view->balance_fen() == balance && view->status() == v1::CARD_STATUS_ACTIVE &&
        (counter == expected.last_counter.end() || view->last_counter() == counter->second);
    if (!match && ++mismatched <= 5) {
      ADD_FAILURE() << card.card_id << ": expected balance " << balance << " counter "
                    << (counter == expected.last_counter.end() ? 0 : counter->second)
                    << ", the registry shows " << view->ShortDebugString();
    }
  }
  EXPECT_EQ(mismatched, 0) << "cards whose GetCard differs from tapgen's record";

  // ---- the money paths: close one card, replace another ----
  // Two cards of the issuer with most cards, each with a balance, one of them used today.
  uint32_t issuer = 0;
  for (const auto& [city, count] : expected.cards) {
    if (issuer == 0 || count > expected.cards.at(issuer)) issuer = city;
  }
  std::string to_close;
  std::string to_replace;
  for (const CardFile& card : cards) {
    if (card.issuer != issuer || expected.balance_fen.at(card.card_id) <= 0) continue;
    if (to_close.empty() && expected.last_counter.count(card.card_id) > 0) {
      to_close = card.card_id;
    } else if (to_replace.empty() && to_close != card.card_id) {
      to_replace = card.card_id;
    }
  }
  ASSERT_FALSE(to_close.empty());
  ASSERT_FALSE(to_replace.empty());
  const int64_t close_fen = expected.balance_fen.at(to_close);
  const int64_t replace_fen = expected.balance_fen.at(to_replace);
  const v1::FloatPosition float_before = platform.Float().at(issuer);
  const v1::Tenant operator_tenant = server::CityTenant(issuer);

  const std::string new_card = txn::MakeCardId(issuer, 987654321);
  {
    v1::ReplaceCardRequest request;
    request.set_request_id("float-e2e-replace");
    request.set_card_id(to_replace);
    request.set_new_card_id(new_card);
    request.set_new_form(v1::CARD_FORM_PHYSICAL);
    request.set_reason("damaged");
    request.set_actor("clerk-7");
    v1::CardCommandResponse response;
    const grpc::Status status =
        platform.Call(platform.registry_stub(), operator_tenant,
                      &v1::CardRegistryService::Stub::ReplaceCard, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_TRUE(response.accepted()) << response.ShortDebugString();
    EXPECT_EQ(response.derived().card_id(), new_card);
    EXPECT_NE(response.derived().state(), v1::DerivedCard::STATE_REFUSED)
        << response.ShortDebugString();
    EXPECT_EQ(response.derived().carried_balance_fen(), replace_fen);
  }
  {
    v1::CloseCardRequest request;
    request.set_request_id("float-e2e-close");
    request.set_card_id(to_close);
    request.set_reason("holder asked for a refund");
    request.set_actor("clerk-7");
    v1::CardCommandResponse response;
    const grpc::Status status =
        platform.Call(platform.registry_stub(), operator_tenant,
                      &v1::CardRegistryService::Stub::CloseCard, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_TRUE(response.accepted()) << response.ShortDebugString();
    EXPECT_EQ(response.status(), v1::CARD_STATUS_CLOSED);
  }
  // Settlement applies tongka.cards: the close shows as owed to the holder.
  {
    std::optional<v1::FloatPosition> now;
    for (const absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
      ASSERT_TRUE(settlement.process->Running()) << settlement.process->Log();
      now = platform.Float().at(issuer);
      if (now->owed_to_holders_fen() != float_before.owed_to_holders_fen()) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ASSERT_NE(now->owed_to_holders_fen(), float_before.owed_to_holders_fen())
        << "settlement did not apply the close in 60 s";
  }
  // Both commands' events (the replacement's second half included) applied everywhere.
  await_applied();
  if (HasFatalFailure()) return;
  {
    const v1::FloatPosition after = platform.Float().at(issuer);
    EXPECT_EQ(after.owed_to_holders_fen(), float_before.owed_to_holders_fen() + close_fen)
        << after.ShortDebugString();
    EXPECT_EQ(after.outstanding_fen(), float_before.outstanding_fen() - close_fen)
        << "the close moves the card's balance out of the float; the replacement moves nothing: "
        << after.ShortDebugString();
  }
  {
    const std::optional<v1::CardView> old_card = platform.GetCard(to_replace);
    ASSERT_TRUE(old_card.has_value());
    EXPECT_EQ(old_card->status(), v1::CARD_STATUS_CLOSED);
    EXPECT_EQ(old_card->replaced_by_card_id(), new_card);
    const std::optional<v1::CardView> replacement = platform.GetCard(new_card);
    ASSERT_TRUE(replacement.has_value());
    EXPECT_EQ(replacement->status(), v1::CARD_STATUS_ACTIVE) << replacement->ShortDebugString();
    EXPECT_EQ(replacement->balance_fen(), replace_fen) << replacement->ShortDebugString();
    EXPECT_EQ(replacement->carried_balance_fen(), replace_fen);
    EXPECT_EQ(replacement->carried_from_card_id(), to_replace);
    const std::optional<v1::CardView> closed = platform.GetCard(to_close);
    ASSERT_TRUE(closed.has_value());
    EXPECT_EQ(closed->status(), v1::CARD_STATUS_CLOSED);
  }
  std::map<uint32_t, int64_t> expected_after = expected.by_balances_fen;
  expected_after[issuer] -= close_fen;
  const std::map<uint32_t, v1::GetIssuerBalancesResponse> after =
      ExpectFloatEqualsBalances(platform, issuers, expected_after, {});
  EXPECT_EQ(after.at(issuer).balance_fen(), before.at(issuer).balance_fen() - close_fen);
  EXPECT_EQ(after.at(issuer).cards(), before.at(issuer).cards() - 1) << "two closed, one issued";
  EXPECT_EQ(after.at(issuer).closed_cards(), 2);
  LOG(INFO) << "closed " << to_close << " (" << close_fen << " fen owed to its holder), replaced "
            << to_replace << " by " << new_card << " (" << replace_fen << " fen carried)";

  platform.Stop();
}

}  // namespace
}  // namespace tongka
