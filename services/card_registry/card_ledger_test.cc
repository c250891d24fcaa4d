// Proves the card ledger's command rules on a real RocksDB in a temp dir, without Kafka: records
// are fed to the ledger directly (testing/state_test.h).
//   - every rule of CardIssueRequested, CardStatusChangeRequested, CardCloseRequested,
//     CardReplaceRequested and VirtualCardLinkRequested (and of their derived halves), each
//     accepted and refused: the outcome names the rule and field, the decision event
//     (CardIssued, CardStatusChanged or CommandRejected) goes to the outbox with its derived id,
//     and a refusal changes no card;
//   - a command fed twice (same event id) is decided once: one outcome, one decision;
//   - the registry's own decisions read back from tongka.cards change nothing (same digest);
//   - the hotlist: sequence per partition, deltas after a sequence, the listed snapshot;
//   - a close owes the holder the card's current balance (register, else opening balance).
#include "services/card_registry/card_ledger.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/card_registry/card_registry_keys.h"
#include "services/card_registry/card_registry_readers.h"
#include "services/card_registry/testing/state_test.h"

namespace tongka::card_registry {
namespace {

using testing::Block;
using testing::CardId;
using testing::Cards;
using testing::City;
using testing::Close;
using testing::CommandId;
using testing::FreshStore;
using testing::From;
using testing::Input;
using testing::Issue;
using testing::kDayStartUs;
using testing::kHourUs;
using testing::kNingbo;
using testing::kShanghai;
using testing::Link;
using testing::Ministry;
using testing::Platform;
using testing::Replace;
using testing::Tap;
using testing::Token;
using testing::TxnInput;
using testing::Unblock;

class CardLedgerTest : public testing::StateTest {
 protected:
  // Feeds one command to `store` and returns its outcome; the decision must be the only new
  // outbox entry.
  RequestOutcome Decide(state_store::StateStore* store, const v1::Event& command,
                        v1::Event* decision = nullptr) {
    Feed(store, &ledger_, {Cards(command)});
    std::vector<state_store::OutboxRecord> outbox = NewOutbox(store);
    EXPECT_EQ(outbox.size(), 1u) << command.event_id();
    if (outbox.size() == 1 && decision != nullptr) {
      EXPECT_TRUE(decision->ParseFromString(outbox[0].value));
      EXPECT_EQ(outbox[0].topic, kCardsTopic);
      EXPECT_EQ(outbox[0].key, testing::CardIdOf(command));
    }
    return Outcome(store, command.event_id());
  }

  CardLedger ledger_;
};

TEST_F(CardLedgerTest, IssueAcceptedStoresTheCardAndWritesCardIssued) {
  auto store = FreshStore("issue_accepted");
  const std::string card = CardId(kShanghai, 1);
  v1::Event decision;
  RequestOutcome outcome = Decide(store.get(), Issue(card, "r1"), &decision);
  EXPECT_TRUE(outcome.accepted());
  EXPECT_EQ(outcome.card_id(), card);
  EXPECT_EQ(outcome.status(), v1::CARD_STATUS_ACTIVE);

  ASSERT_TRUE(decision.has_card_issued());
  EXPECT_EQ(decision.event_id(), "card_registry/tongka.cards/0/0/decision");
  EXPECT_EQ(decision.source().service(), kServiceName);
  EXPECT_EQ(decision.card_issued().issuer_city(), kShanghai);
  EXPECT_EQ(decision.card_issued().initial_balance_fen(), 500);
  EXPECT_EQ(decision.card_issued().command_event_id(), CommandId(City(kShanghai), "r1"));
  EXPECT_EQ(decision.card_issued().request_id(), "r1");

  auto read = ReadCard(ViewOf(*store), card);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->issuer_city, kShanghai);
  EXPECT_EQ((*read)->record.status(), v1::CARD_STATUS_ACTIVE);
  EXPECT_EQ((*read)->record.form(), v1::CARD_FORM_PHYSICAL);
  EXPECT_EQ((*read)->record.id_number_token(), Token('i'));
  EXPECT_EQ((*read)->record.issued_at_us(), kDayStartUs);
  EXPECT_EQ((*read)->balance_fen, 500);
  auto holders = FindCardsByHolder(ViewOf(*store), kShanghai, Token('p'));
  ASSERT_TRUE(holders.ok());
  EXPECT_EQ(*holders, std::vector<std::string>{card});
}

TEST_F(CardLedgerTest, IssueAcceptsEveryFormProductAndBound) {
  auto store = FreshStore("issue_forms");
  struct Case {
    std::string name;
    std::function<void(v1::CardIssueRequested*)> change;
  };
  const std::vector<Case> cases = {
      {"virtual_nfc",
       [](v1::CardIssueRequested* r) {
         r->set_form(v1::CARD_FORM_VIRTUAL_NFC);
         r->set_device_token(Token('d'));
       }},
      {"qr", [](v1::CardIssueRequested* r) { r->set_form(v1::CARD_FORM_QR); }},
      {"concession",
       [](v1::CardIssueRequested* r) {
         r->set_product(v1::CARD_PRODUCT_CONCESSION);
         r->set_concession(true);
         r->set_expires_at_us(kDayStartUs + 1);
       }},
      {"zero_balance", [](v1::CardIssueRequested* r) { r->set_initial_balance_fen(0); }},
      {"max_balance",
       [](v1::CardIssueRequested* r) { r->set_initial_balance_fen(kInitialBalanceMaxFen); }},
      {"no_holder", [](v1::CardIssueRequested* r) { r->clear_holder(); }},
  };
  uint64_t serial = 100;
  for (const Case& c : cases) {
    v1::Event command = Issue(CardId(kShanghai, ++serial), c.name);
    c.change(command.mutable_card_issue_requested());
    RequestOutcome outcome = Decide(store.get(), command);
    EXPECT_TRUE(outcome.accepted()) << c.name << ": " << outcome.rule();
  }
}

TEST_F(CardLedgerTest, IssueRefusalsNameTheirRuleAndChangeNoCard) {
  auto store = FreshStore("issue_refused");
  const std::string existing = CardId(kShanghai, 1);
  ASSERT_TRUE(Decide(store.get(), Issue(existing, "first")).accepted());
  const std::string card = CardId(kShanghai, 2);
  struct Case {
    std::string name;
    std::function<v1::Event()> command;
    std::string rule;
    std::string field;
  };
  auto changed = [&](std::function<void(v1::CardIssueRequested*)> change) {
    return [change, card] {
      v1::Event command = Issue(card, "r");
      change(command.mutable_card_issue_requested());
      return command;
    };
  };
  std::string bad_luhn = card;
  bad_luhn.back() = bad_luhn.back() == '9' ? '0' : bad_luhn.back() + 1;
  const std::vector<Case> cases = {
      {"format", [] { return Issue("31000012", "r"); }, "card_id_format", "card_id"},
      {"luhn", [&] { return Issue(bad_luhn, "r"); }, "card_id_luhn", "card_id"},
      {"other_city", [&] { return From(Issue(card, "r"), City(kNingbo)); }, "issuer_only",
       "card_id"},
      {"ministry", [&] { return From(Issue(card, "r"), Ministry()); }, "issuer_only", "card_id"},
      {"exists", [&] { return Issue(existing, "again"); }, "card_exists", "card_id"},
      {"form", changed([](auto* r) { r->set_form(v1::CARD_FORM_UNSPECIFIED); }), "form", "form"},
      {"nfc_without_token", changed([](auto* r) { r->set_form(v1::CARD_FORM_VIRTUAL_NFC); }),
       "device_token", "device_token"},
      {"nfc_short_token", changed([](auto* r) {
         r->set_form(v1::CARD_FORM_VIRTUAL_NFC);
         r->set_device_token(std::string(31, 'd'));
       }),
       "device_token", "device_token"},
      {"physical_with_token", changed([](auto* r) { r->set_device_token(Token('d')); }),
       "device_token", "device_token"},
      {"product", changed([](auto* r) { r->set_product(v1::CARD_PRODUCT_UNSPECIFIED); }), "product",
       "product"},
      {"concession_disagrees", changed([](auto* r) { r->set_concession(true); }), "product",
       "concession"},
      {"concession_no_expiry", changed([](auto* r) {
         r->set_product(v1::CARD_PRODUCT_CONCESSION);
         r->set_concession(true);
       }),
       "expires_at", "expires_at_us"},
      {"concession_expired", changed([](auto* r) {
         r->set_product(v1::CARD_PRODUCT_CONCESSION);
         r->set_concession(true);
         r->set_expires_at_us(kDayStartUs);  // not after recorded_at
       }),
       "expires_at", "expires_at_us"},
      {"stored_value_expiry", changed([](auto* r) { r->set_expires_at_us(kDayStartUs + 1); }),
       "expires_at", "expires_at_us"},
      {"negative_balance", changed([](auto* r) { r->set_initial_balance_fen(-1); }),
       "initial_balance_fen", "initial_balance_fen"},
      {"balance_too_high",
       changed([](auto* r) { r->set_initial_balance_fen(kInitialBalanceMaxFen + 1); }),
       "initial_balance_fen", "initial_balance_fen"},
      {"id_token_size",
       changed([](auto* r) { r->mutable_holder()->set_id_number_token(std::string(31, 'i')); }),
       "holder", "holder.id_number_token"},
      {"phone_token_size",
       changed([](auto* r) { r->mutable_holder()->set_phone_token(std::string(33, 'p')); }),
       "holder", "holder.phone_token"},
  };
  int n = 0;
  for (const Case& c : cases) {
    v1::Event command = c.command();
    // Each case its own request id, so each is decided (not a repeat of the last).
    command.mutable_card_issue_requested()->set_request_id(absl::StrCat("case-", ++n));
    command = From(command, command.source());
    v1::Event decision;
    RequestOutcome outcome = Decide(store.get(), command, &decision);
    EXPECT_FALSE(outcome.accepted()) << c.name;
    EXPECT_EQ(outcome.rule(), c.rule) << c.name;
    EXPECT_EQ(outcome.field(), c.field) << c.name;
    ASSERT_TRUE(decision.has_command_rejected()) << c.name;
    EXPECT_EQ(decision.command_rejected().rule(), c.rule) << c.name;
    EXPECT_EQ(decision.command_rejected().command_event_id(), command.event_id()) << c.name;
  }
  auto read = ReadCard(ViewOf(*store), card);
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->has_value());
  auto stats = ReadStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->accepted["issue"], 1);
  EXPECT_EQ(stats->refused_by_rule["device_token"], 3);
  EXPECT_EQ(stats->refused_by_rule["expires_at"], 3);
}

TEST_F(CardLedgerTest, CommandWhoseKeyIsNotItsCardIdIsRefused) {
  auto store = FreshStore("key");
  Input input = Cards(Issue(CardId(kShanghai, 1), "r1"));
  input.key = CardId(kShanghai, 2);
  Feed(store.get(), &ledger_, {input});
  RequestOutcome outcome = Outcome(store.get(), CommandId(City(kShanghai), "r1"));
  EXPECT_EQ(outcome.rule(), "card_id_key");
  auto outbox = NewOutbox(store.get());
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].key, input.key);  // the partition the command sits in
}

TEST_F(CardLedgerTest, StatusChangeRules) {
  auto store = FreshStore("status");
  const std::string card = CardId(kShanghai, 1);
  const std::string unknown = CardId(kShanghai, 9);
  ASSERT_TRUE(Decide(store.get(), Issue(card, "issue")).accepted());
  auto rule_of = [&](const v1::Event& command) {
    RequestOutcome outcome = Decide(store.get(), command);
    return outcome.accepted() ? std::string("accepted")
                              : absl::StrCat(outcome.rule(), "/", outcome.field());
  };
  v1::Event fraud_block = From(Block(card, "fb", v1::BLOCK_REASON_FRAUD), Platform("fraud"));
  v1::Event fraud_block_no_alert =
      From(Block(card, "fb-no-alert", v1::BLOCK_REASON_FRAUD), Platform("fraud"));
  fraud_block.mutable_card_status_change_requested()->set_alert_id("fraud/tongka.txn/0/7/clone");
  v1::Event to_closed = Block(card, "to-closed");
  to_closed.mutable_card_status_change_requested()->set_new_status(v1::CARD_STATUS_CLOSED);
  v1::Event unspecified = Block(card, "unspecified");
  unspecified.mutable_card_status_change_requested()->set_new_status(v1::CARD_STATUS_UNSPECIFIED);

  EXPECT_EQ(rule_of(Block(unknown, "u")), "unknown_card/card_id");
  EXPECT_EQ(rule_of(Block(CardId(kShanghai, 1).substr(1), "f")), "card_id_format/card_id");
  EXPECT_EQ(rule_of(From(Block(card, "n"), City(kNingbo))), "issuer_only/card_id");
  EXPECT_EQ(rule_of(From(Block(card, "p"), Platform("settlement"))), "issuer_only/card_id");
  EXPECT_EQ(rule_of(Block(card, "no-reason", v1::BLOCK_REASON_UNSPECIFIED)),
            "block_reason/block_reason");
  EXPECT_EQ(rule_of(to_closed), "new_status/new_status");
  EXPECT_EQ(rule_of(unspecified), "new_status/new_status");
  EXPECT_EQ(rule_of(Unblock(card, "unblock-active")), "card_not_blocked/card_id");
  EXPECT_EQ(rule_of(fraud_block_no_alert), "fraud_block_only/alert_id");
  EXPECT_EQ(rule_of(fraud_block), "accepted");
  EXPECT_EQ(rule_of(Block(card, "again")), "card_not_active/card_id");
  EXPECT_EQ(rule_of(From(Unblock(card, "fu"), Platform("fraud"))), "fraud_block_only/new_status");
  EXPECT_EQ(rule_of(Unblock(card, "unblock")), "accepted");
  EXPECT_EQ(rule_of(From(Block(card, "ministry"), Ministry())), "accepted");
  EXPECT_EQ(rule_of(From(Unblock(card, "ministry-unblock"), Ministry())), "accepted");
  EXPECT_EQ(rule_of(Close(card, "close")), "accepted");
  EXPECT_EQ(rule_of(Block(card, "closed")), "card_closed/card_id");
  EXPECT_EQ(rule_of(Unblock(card, "closed-unblock")), "card_closed/card_id");

  auto read = ReadCard(ViewOf(*store), card);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->record.status(), v1::CARD_STATUS_CLOSED);
  EXPECT_EQ((*read)->record.status_changes(), 5u);
}

TEST_F(CardLedgerTest, StatusChangedCarriesTheDecision) {
  auto store = FreshStore("status_event");
  const std::string card = CardId(kShanghai, 1);
  ASSERT_TRUE(Decide(store.get(), Issue(card, "issue")).accepted());
  v1::Event command = From(Block(card, "fb", v1::BLOCK_REASON_FRAUD), Platform("fraud"));
  command.mutable_card_status_change_requested()->set_alert_id("alert-1");
  v1::Event decision;
  RequestOutcome outcome = Decide(store.get(), command, &decision);
  ASSERT_TRUE(outcome.accepted());
  EXPECT_EQ(outcome.hotlist_version(), 1u);
  ASSERT_TRUE(decision.has_card_status_changed());
  const v1::CardStatusChanged& changed = decision.card_status_changed();
  EXPECT_EQ(changed.old_status(), v1::CARD_STATUS_ACTIVE);
  EXPECT_EQ(changed.new_status(), v1::CARD_STATUS_BLOCKED);
  EXPECT_EQ(changed.block_reason(), v1::BLOCK_REASON_FRAUD);
  EXPECT_EQ(changed.alert_id(), "alert-1");
  EXPECT_EQ(changed.hotlist_version(), 1u);
  EXPECT_EQ(changed.command_event_id(), command.event_id());
  EXPECT_EQ(decision.event_id(), "card_registry/tongka.cards/0/1/decision");
}

TEST_F(CardLedgerTest, CloseRulesAndTheBalanceOwed) {
  auto store = FreshStore("close");
  const std::string card = CardId(kShanghai, 1);
  const std::string tapped = CardId(kShanghai, 2);
  ASSERT_TRUE(Decide(store.get(), Issue(card, "i1")).accepted());
  ASSERT_TRUE(Decide(store.get(), Issue(tapped, "i2")).accepted());
  Feed(store.get(), &ledger_, {TxnInput(Tap(tapped, 3, 120, kDayStartUs + 5, 1))});

  EXPECT_EQ(Decide(store.get(), Close(CardId(kShanghai, 3), "u")).rule(), "unknown_card");
  EXPECT_EQ(Decide(store.get(), From(Close(card, "n"), City(kNingbo))).rule(), "issuer_only");
  EXPECT_EQ(Decide(store.get(), From(Close(card, "f"), Platform("fraud"))).rule(), "issuer_only");

  v1::Event decision;
  RequestOutcome outcome = Decide(store.get(), From(Close(card, "m"), Ministry()), &decision);
  ASSERT_TRUE(outcome.accepted());
  EXPECT_EQ(outcome.status(), v1::CARD_STATUS_CLOSED);
  ASSERT_TRUE(decision.has_card_status_changed());
  EXPECT_EQ(decision.card_status_changed().balance_owed_fen(), 500);  // the opening balance
  EXPECT_EQ(Decide(store.get(), Close(card, "again")).rule(), "card_closed");

  ASSERT_TRUE(Decide(store.get(), Block(tapped, "b")).accepted());
  ASSERT_TRUE(Decide(store.get(), Close(tapped, "c"), &decision).accepted());
  EXPECT_EQ(decision.card_status_changed().old_status(), v1::CARD_STATUS_BLOCKED);
  EXPECT_EQ(decision.card_status_changed().balance_owed_fen(), 120);  // the last tap's balance
  EXPECT_EQ(decision.card_status_changed().block_reason(), v1::BLOCK_REASON_LOST);
}

TEST_F(CardLedgerTest, ACommandFedTwiceIsDecidedOnce) {
  auto store = FreshStore("twice");
  const std::string card = CardId(kShanghai, 1);
  const v1::Event issue = Issue(card, "r1");
  const v1::Event block = Block(card, "b1");
  Feed(store.get(), &ledger_, {Cards(issue), Cards(block)});
  ASSERT_EQ(NewOutbox(store.get()).size(), 2u);
  auto before = ReadCard(ViewOf(*store), card);
  ASSERT_TRUE(before.ok() && before->has_value());

  // The same commands again, later in the partition (a copy past the EventFilter's horizon).
  Feed(store.get(), &ledger_, {Cards(issue), Cards(block)});
  EXPECT_TRUE(NewOutbox(store.get()).empty());
  auto after = ReadCard(ViewOf(*store), card);
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ((*after)->record.SerializeAsString(), (*before)->record.SerializeAsString());
  EXPECT_TRUE(Outcome(store.get(), issue.event_id()).accepted());
  auto seq = ReadHotlistSeq(ViewOf(*store), 0);
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 1u);
  auto stats = ReadStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->duplicate_commands, 2);
  EXPECT_EQ(stats->accepted["issue"], 1);
  EXPECT_EQ(stats->accepted["status"], 1);
}

TEST_F(CardLedgerTest, OwnDecisionsReadBackChangeNothing) {
  auto store = FreshStore("read_back");
  const std::string card = CardId(kShanghai, 1);
  Feed(store.get(), &ledger_,
       {Cards(Issue(card, "r1")), Cards(Block(card, "b1")), Cards(Issue("bad", "r2"))});
  std::vector<Input> decisions;
  for (const auto& entry : NewOutbox(store.get())) {
    decisions.push_back(Input{entry.topic, entry.key, entry.value});
  }
  ASSERT_EQ(decisions.size(), 3u);
  const std::string digest = Digest(store.get());
  Feed(store.get(), &ledger_, decisions);
  EXPECT_EQ(Digest(store.get()), digest);
  EXPECT_TRUE(NewOutbox(store.get()).empty());

  // The same bodies from another writer are counted, never applied.
  v1::Event forged;
  ASSERT_TRUE(forged.ParseFromString(decisions[1].value));
  *forged.mutable_source() = City(kShanghai);
  Feed(store.get(), &ledger_, {Input{kCardsTopic, card, forged.SerializeAsString()}});
  auto stats = ReadStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->foreign_decisions, 1);
  auto read = ReadCard(ViewOf(*store), card);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->record.status_changes(), 1u);
}

TEST_F(CardLedgerTest, UnparseableAndUnsupportedRecordsAreCounted) {
  auto store = FreshStore("junk");
  v1::Event linked;
  linked.set_event_id("cmd/city:310000/alert");
  linked.mutable_fraud_alert()->set_card_id(CardId(kShanghai, 3));
  v1::Event no_id = Issue(CardId(kShanghai, 1), "r1");
  no_id.clear_event_id();
  v1::Event not_a_txn = Issue(CardId(kShanghai, 2), "r2");
  Feed(store.get(), &ledger_,
       {Input{kCardsTopic, "k", "\xff\xff"}, Input{kCardsTopic, "k", linked.SerializeAsString()},
        Cards(no_id), Input{kTxnTopic, "k", "\xff\xff"}, TxnInput(not_a_txn),
        TxnInput(Tap("123", 1, 1, kDayStartUs, 1))});
  EXPECT_TRUE(NewOutbox(store.get()).empty());
  auto stats = ReadStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->cards_unparseable, 2);
  EXPECT_EQ(stats->cards_unsupported, 1);
  EXPECT_EQ(stats->txn_unparseable, 3);
}

TEST_F(CardLedgerTest, AnotherTopicIsAWiringBug) {
  auto store = FreshStore("topic");
  state_store::StateBatch batch(store.get());
  event_log::Record record = event_log::Record::Owned("tongka.alerts", 0, 0, "k", "");
  EXPECT_EQ(ledger_.Apply(record, batch).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(CardLedgerTest, HotlistSequenceDeltasAndSnapshot) {
  auto store = FreshStore("hotlist");
  const std::string a = CardId(kShanghai, 1);
  const std::string b = CardId(kShanghai, 2);
  const std::string c = CardId(kShanghai, 3);
  Feed(store.get(), &ledger_,
       {Cards(Issue(a, "ia")), Cards(Issue(b, "ib")), Cards(Issue(c, "ic")), Cards(Block(a, "ba")),
        Cards(Block(b, "bb", v1::BLOCK_REASON_ISSUER)), Cards(Unblock(a, "ua")),
        Cards(Close(b, "cb")), Cards(Close(c, "cc")), Cards(Block(c, "refused"))});
  // Partition 1 has its own sequence.
  const std::string d = CardId(kShanghai, 4);
  Feed(store.get(), &ledger_, {Cards(Issue(d, "id")), Cards(Block(d, "bd"))}, 1,
       /*partition=*/1);

  const StateView view = ViewOf(*store);
  EXPECT_EQ(Outcome(store.get(), CommandId(City(kShanghai), "cc")).hotlist_version(), 5u);
  auto seq = ReadHotlistSeq(view, 0);
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 5u);
  auto all = ReadHotlistDelta(view, 0, 0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  const std::vector<std::pair<std::string, bool>> expected = {
      {a, true}, {b, true}, {a, false}, {b, true}, {c, true}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*all)[i].seq, i + 1);
    EXPECT_EQ((*all)[i].entry.card_id(), expected[i].first) << i;
    EXPECT_EQ((*all)[i].entry.listed(), expected[i].second) << i;
  }
  EXPECT_EQ((*all)[1].entry.reason(), v1::BLOCK_REASON_ISSUER);
  EXPECT_EQ((*all)[3].entry.status(), v1::CARD_STATUS_CLOSED);

  auto after_two = ReadHotlistDelta(view, 0, 2, 100);
  ASSERT_TRUE(after_two.ok());
  ASSERT_EQ(after_two->size(), 3u);
  EXPECT_EQ((*after_two)[0].seq, 3u);
  auto limited = ReadHotlistDelta(view, 0, 1, 2);
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 2u);
  EXPECT_EQ((*limited)[1].seq, 3u);
  auto none = ReadHotlistDelta(view, 0, 5, 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto snapshot = ReadHotlistSnapshot(view, 0);
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ(snapshot->seq, 5u);
  ASSERT_EQ(snapshot->listed.size(), 2u);
  EXPECT_EQ(snapshot->listed[0].card_id(), b);
  EXPECT_EQ(snapshot->listed[1].card_id(), c);

  auto other = ReadHotlistSnapshot(view, 1);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->seq, 1u);
  ASSERT_EQ(other->listed.size(), 1u);
  EXPECT_EQ(other->listed[0].card_id(), d);
  auto empty = ReadHotlistSnapshot(view, 2);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->seq, 0u);
  EXPECT_TRUE(empty->listed.empty());
}

// The outbox entries as records to feed back: what the registry derives for another card comes
// back to it through tongka.cards.
std::vector<Input> AsInputs(const std::vector<state_store::OutboxRecord>& outbox) {
  std::vector<Input> inputs;
  for (const state_store::OutboxRecord& entry : outbox) {
    inputs.push_back(Input{entry.topic, entry.key, entry.value});
  }
  return inputs;
}

v1::Event Parsed(const state_store::OutboxRecord& entry) {
  v1::Event event;
  EXPECT_TRUE(event.ParseFromString(entry.value));
  return event;
}

TEST_F(CardLedgerTest, ReplaceClosesTheOldCardAndCarriesItsBalanceToTheNew) {
  auto store = FreshStore("replace");
  const std::string old_card = CardId(kShanghai, 1);
  const std::string new_card = CardId(kShanghai, 2);
  Feed(store.get(), &ledger_,
       {Cards(Issue(old_card, "i1")), TxnInput(Tap(old_card, 1, 320, kDayStartUs + kHourUs, 1))});
  NewOutbox(store.get());

  const v1::Event replace = Replace(old_card, new_card, "rp");
  Feed(store.get(), &ledger_, {Cards(replace)});
  RequestOutcome outcome = Outcome(store.get(), replace.event_id());
  EXPECT_TRUE(outcome.accepted()) << outcome.rule();
  EXPECT_EQ(outcome.status(), v1::CARD_STATUS_CLOSED);
  std::vector<state_store::OutboxRecord> outbox = NewOutbox(store.get());
  ASSERT_EQ(outbox.size(), 2u);
  const v1::Event closed = Parsed(outbox[0]);
  EXPECT_EQ(outbox[0].key, old_card);
  ASSERT_TRUE(closed.has_card_status_changed());
  EXPECT_EQ(closed.card_status_changed().new_status(), v1::CARD_STATUS_CLOSED);
  EXPECT_EQ(closed.card_status_changed().replaced_by_card_id(), new_card);
  EXPECT_EQ(closed.card_status_changed().balance_owed_fen(), 0);  // carried, not owed
  const v1::Event carry = Parsed(outbox[1]);
  EXPECT_EQ(outbox[1].key, new_card);
  EXPECT_EQ(carry.event_id(), "card_registry/tongka.cards/0/1/carry");
  EXPECT_EQ(carry.source().service(), kServiceName);
  ASSERT_TRUE(carry.has_card_replaced());
  EXPECT_EQ(carry.card_replaced().carried_balance_fen(), 320);
  EXPECT_EQ(carry.card_replaced().holder().id_number_token(), Token('i'));

  // The new card's partition (here the same one) issues it from the CardReplaced.
  Feed(store.get(), &ledger_, AsInputs(outbox));
  outbox = NewOutbox(store.get());
  ASSERT_EQ(outbox.size(), 1u);
  const v1::Event issued = Parsed(outbox[0]);
  EXPECT_EQ(outbox[0].key, new_card);
  ASSERT_TRUE(issued.has_card_issued()) << issued.DebugString();
  EXPECT_EQ(issued.card_issued().initial_balance_fen(), 0);  // settlement: no new money
  EXPECT_EQ(issued.card_issued().carried_balance_fen(), 320);
  EXPECT_EQ(issued.card_issued().carried_from_card_id(), old_card);
  EXPECT_EQ(issued.card_issued().command_event_id(), carry.event_id());
  EXPECT_TRUE(Outcome(store.get(), carry.event_id()).accepted());

  auto read_new = ReadCard(ViewOf(*store), new_card);
  ASSERT_TRUE(read_new.ok() && read_new->has_value());
  EXPECT_EQ((*read_new)->balance_fen, 320);
  EXPECT_EQ((*read_new)->record.carried_from(), old_card);
  EXPECT_EQ((*read_new)->record.phone_token(), Token('p'));
  auto read_old = ReadCard(ViewOf(*store), old_card);
  ASSERT_TRUE(read_old.ok() && read_old->has_value());
  EXPECT_EQ((*read_old)->record.status(), v1::CARD_STATUS_CLOSED);
  EXPECT_EQ((*read_old)->record.replaced_by(), new_card);
  auto holders = FindCardsByHolder(ViewOf(*store), kShanghai, Token('p'));
  ASSERT_TRUE(holders.ok());
  EXPECT_EQ(*holders, (std::vector<std::string>{old_card, new_card}));
  auto listed = ReadHotlistSnapshot(ViewOf(*store), 0);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->listed.size(), 1u);
  EXPECT_EQ(listed->listed[0].card_id(), old_card);

  // The new card's first tap carries on from the carried balance.
  Feed(store.get(), &ledger_, {TxnInput(Tap(new_card, 1, 300, kDayStartUs + 4 * kHourUs, 2))});
  read_new = ReadCard(ViewOf(*store), new_card);
  ASSERT_TRUE(read_new.ok() && read_new->has_value());
  EXPECT_EQ((*read_new)->balance_fen, 300);

  // Fed again, neither half is decided twice.
  Feed(store.get(), &ledger_,
       {Cards(replace), Input{kCardsTopic, new_card, carry.SerializeAsString()}});
  EXPECT_TRUE(NewOutbox(store.get()).empty());
}

TEST_F(CardLedgerTest, ReplaceRules) {
  auto store = FreshStore("replace_rules");
  const std::string card = CardId(kShanghai, 1);
  const std::string other = CardId(kShanghai, 9);
  Feed(store.get(), &ledger_, {Cards(Issue(card, "i1"))});
  NewOutbox(store.get());
  struct Case {
    v1::Event command;
    std::string rule;
    std::string field;
  };
  v1::Event virtual_without_token = Replace(card, other, "r_form");
  virtual_without_token.mutable_card_replace_requested()->set_new_form(v1::CARD_FORM_VIRTUAL_NFC);
  v1::Event no_form = Replace(card, other, "r_noform");
  no_form.mutable_card_replace_requested()->set_new_form(v1::CARD_FORM_UNSPECIFIED);
  const std::vector<Case> cases = {
      {Replace(CardId(kShanghai, 5), other, "r_unknown"), "unknown_card", "card_id"},
      {From(Replace(card, other, "r_foreign"), City(kNingbo)), "issuer_only", "card_id"},
      {Replace(card, CardId(kNingbo, 1), "r_city"), "new_card_issuer", "new_card_id"},
      {Replace(card, card, "r_same"), "new_card_same", "new_card_id"},
      {Replace(card, "3100000000000000001", "r_luhn"), "card_id_luhn", "new_card_id"},
      {virtual_without_token, "device_token", "device_token"},
      {no_form, "form", "new_form"},
  };
  for (const Case& c : cases) {
    RequestOutcome outcome = Decide(store.get(), c.command);
    EXPECT_FALSE(outcome.accepted()) << c.command.event_id();
    EXPECT_EQ(outcome.rule(), c.rule) << c.command.event_id();
    EXPECT_EQ(outcome.field(), c.field) << c.command.event_id();
  }
  auto read = ReadCard(ViewOf(*store), card);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->record.status(), v1::CARD_STATUS_ACTIVE);

  // The ministry may replace; a closed card may not be replaced again.
  v1::Event by_ministry = From(Replace(card, other, "r_ministry"), Ministry());
  Feed(store.get(), &ledger_, {Cards(by_ministry)});
  EXPECT_TRUE(Outcome(store.get(), by_ministry.event_id()).accepted());
  NewOutbox(store.get());
  RequestOutcome again = Decide(store.get(), Replace(card, CardId(kShanghai, 8), "r_again"));
  EXPECT_EQ(again.rule(), "card_closed");
}

TEST_F(CardLedgerTest, ACarryOntoAnIssuedCardGoesBackAsOwedToTheHolder) {
  auto store = FreshStore("carry_back");
  const std::string old_card = CardId(kShanghai, 1);
  const std::string taken = CardId(kShanghai, 2);
  Feed(store.get(), &ledger_, {Cards(Issue(old_card, "i1")), Cards(Issue(taken, "i2"))});
  NewOutbox(store.get());
  Feed(store.get(), &ledger_, {Cards(Replace(old_card, taken, "rp"))});
  std::vector<state_store::OutboxRecord> outbox = NewOutbox(store.get());
  ASSERT_EQ(outbox.size(), 2u);
  const v1::Event carry = Parsed(outbox[1]);

  Feed(store.get(), &ledger_, {AsInputs(outbox)[1]});
  EXPECT_EQ(Outcome(store.get(), carry.event_id()).rule(), "card_exists");
  outbox = NewOutbox(store.get());
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_TRUE(Parsed(outbox[0]).has_command_rejected());
  EXPECT_EQ(outbox[0].key, taken);
  const v1::Event returned = Parsed(outbox[1]);
  EXPECT_EQ(outbox[1].key, old_card);
  ASSERT_TRUE(returned.has_carried_balance_returned());
  EXPECT_EQ(returned.carried_balance_returned().amount_fen(), 500);
  EXPECT_EQ(returned.carried_balance_returned().rule(), "card_exists");

  // Applied to the old card once, however often it is read back.
  Feed(store.get(), &ledger_, {AsInputs(outbox)[1], AsInputs(outbox)[1]});
  auto read = ReadCard(ViewOf(*store), old_card);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->record.balance_owed_fen(), 500);
  auto taken_card = ReadCard(ViewOf(*store), taken);
  ASSERT_TRUE(taken_card.ok() && taken_card->has_value());
  EXPECT_EQ((*taken_card)->balance_fen, 500);  // its own opening balance, nothing carried

  // The same bodies from anyone but the registry are counted and ignored.
  v1::Event forged_return = returned;
  *forged_return.mutable_source() = City(kShanghai);
  forged_return.set_event_id("forged/1");
  v1::Event forged_carry = carry;
  *forged_carry.mutable_source() = City(kShanghai);
  forged_carry.set_event_id("forged/2");
  forged_carry.mutable_card_replaced()->set_new_card_id(CardId(kShanghai, 3));
  Feed(store.get(), &ledger_,
       {Input{kCardsTopic, old_card, forged_return.SerializeAsString()},
        Input{kCardsTopic, CardId(kShanghai, 3), forged_carry.SerializeAsString()}});
  read = ReadCard(ViewOf(*store), old_card);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->record.balance_owed_fen(), 500);
  auto forged_card = ReadCard(ViewOf(*store), CardId(kShanghai, 3));
  ASSERT_TRUE(forged_card.ok());
  EXPECT_FALSE(forged_card->has_value());
  auto stats = ReadStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->foreign_decisions, 2);
}

TEST_F(CardLedgerTest, LinkIssuesAVirtualCardForTheSameHolder) {
  auto store = FreshStore("link");
  const std::string physical = CardId(kShanghai, 1);
  const std::string qr = CardId(kShanghai, 2);
  Feed(store.get(), &ledger_, {Cards(Issue(physical, "i1"))});
  NewOutbox(store.get());
  const v1::Event link = Link(physical, qr, "ln");
  Feed(store.get(), &ledger_, {Cards(link)});
  EXPECT_TRUE(Outcome(store.get(), link.event_id()).accepted());
  std::vector<state_store::OutboxRecord> outbox = NewOutbox(store.get());
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_EQ(outbox[0].key, qr);
  const v1::Event linked = Parsed(outbox[0]);
  ASSERT_TRUE(linked.has_virtual_card_linked());
  EXPECT_EQ(linked.event_id(), "card_registry/tongka.cards/0/1/decision");

  Feed(store.get(), &ledger_, AsInputs(outbox));
  outbox = NewOutbox(store.get());
  ASSERT_EQ(outbox.size(), 1u);
  const v1::Event issued = Parsed(outbox[0]);
  ASSERT_TRUE(issued.has_card_issued());
  EXPECT_EQ(issued.card_issued().linked_card_id(), physical);
  EXPECT_EQ(issued.card_issued().form(), v1::CARD_FORM_QR);
  EXPECT_EQ(issued.card_issued().initial_balance_fen(), 0);
  auto read = ReadCard(ViewOf(*store), qr);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->record.linked_card(), physical);
  EXPECT_EQ((*read)->record.id_number_token(), Token('i'));
  EXPECT_EQ((*read)->balance_fen, 0);

  // Linking the same virtual id again passes the physical card's checks and is refused where
  // the virtual card lives.
  Feed(store.get(), &ledger_, {Cards(Link(physical, qr, "ln2"))});
  outbox = NewOutbox(store.get());
  ASSERT_EQ(outbox.size(), 1u);
  Feed(store.get(), &ledger_, AsInputs(outbox));
  EXPECT_EQ(Outcome(store.get(), Parsed(outbox[0]).event_id()).rule(), "card_exists");
  outbox = NewOutbox(store.get());
  ASSERT_EQ(outbox.size(), 1u);
  EXPECT_TRUE(Parsed(outbox[0]).has_command_rejected());
}

TEST_F(CardLedgerTest, LinkRules) {
  auto store = FreshStore("link_rules");
  const std::string physical = CardId(kShanghai, 1);
  const std::string blocked = CardId(kShanghai, 2);
  const std::string qr = CardId(kShanghai, 3);
  const std::string fresh = CardId(kShanghai, 9);
  Feed(store.get(), &ledger_,
       {Cards(Issue(physical, "i1")), Cards(Issue(blocked, "i2")), Cards(Block(blocked, "b2")),
        Cards(Link(physical, qr, "l3"))});
  std::vector<state_store::OutboxRecord> outbox = NewOutbox(store.get());
  Feed(store.get(), &ledger_, {AsInputs(outbox).back()});
  NewOutbox(store.get());
  struct Case {
    v1::Event command;
    std::string rule;
    std::string field;
  };
  v1::Event physical_form = Link(physical, fresh, "l_form");
  physical_form.mutable_virtual_card_link_requested()->set_form(v1::CARD_FORM_PHYSICAL);
  v1::Event nfc_without_token = Link(physical, fresh, "l_token");
  nfc_without_token.mutable_virtual_card_link_requested()->set_form(v1::CARD_FORM_VIRTUAL_NFC);
  const std::vector<Case> cases = {
      {Link(CardId(kShanghai, 7), fresh, "l_unknown"), "unknown_card", "card_id"},
      {From(Link(physical, fresh, "l_ministry"), Ministry()), "issuer_only", "card_id"},
      {Link(qr, fresh, "l_virtual"), "link_physical_only", "card_id"},
      {Link(blocked, fresh, "l_blocked"), "card_not_active", "card_id"},
      {Link(physical, CardId(kNingbo, 1), "l_city"), "virtual_card_issuer", "virtual_card_id"},
      {Link(physical, physical, "l_same"), "virtual_card_same", "virtual_card_id"},
      {physical_form, "form", "form"},
      {nfc_without_token, "device_token", "device_token"},
  };
  for (const Case& c : cases) {
    RequestOutcome outcome = Decide(store.get(), c.command);
    EXPECT_FALSE(outcome.accepted()) << c.command.event_id();
    EXPECT_EQ(outcome.rule(), c.rule) << c.command.event_id();
    EXPECT_EQ(outcome.field(), c.field) << c.command.event_id();
  }
}

// The failed-issuer playbook, in one partition: after the transfer's copy, the successor manages
// the failed city's cards, which keep their id, balance and holder.
TEST_F(CardLedgerTest, ATransferredIssuersCardsAreManagedByItsSuccessor) {
  constexpr uint32_t kLiuzhou = 450200;
  constexpr uint32_t kNanning = 450100;
  auto store = FreshStore("transfer");
  const std::string card = CardId(kLiuzhou, 1);
  Feed(store.get(), &ledger_,
       {Cards(Issue(card, "i1")), TxnInput(Tap(card, 1, 420, kDayStartUs + kHourUs, 1))});
  NewOutbox(store.get());
  auto transferred = [&](int32_t partition, const v1::Tenant& source, const std::string& id) {
    v1::Event event;
    event.set_event_id(id);
    event.set_recorded_at_us(kDayStartUs + 2 * kHourUs);
    *event.mutable_source() = source;
    v1::IssuerTransferred* copy = event.mutable_issuer_transferred();
    copy->set_from_city(kLiuzhou);
    copy->set_to_city(kNanning);
    copy->set_command_event_id("cmd/ministry/t1");
    copy->set_cards_partition(partition);
    return Input{kCardsTopic, "issuer-transfer/450200/0", event.SerializeAsString()};
  };
  // A copy for another partition and a forged one change nothing.
  Feed(store.get(), &ledger_,
       {transferred(1, Platform(kServiceName), "card_registry/tongka.members/0/1/transfer/1"),
        transferred(0, City(kNanning), "forged")});
  auto manager = ManagingIssuer(ViewOf(*store), 0, kLiuzhou);
  ASSERT_TRUE(manager.ok());
  EXPECT_EQ(*manager, kLiuzhou);
  const std::string digest_before = Digest(store.get());

  Feed(store.get(), &ledger_,
       {transferred(0, Platform(kServiceName), "card_registry/tongka.members/0/1/transfer/0")});
  manager = ManagingIssuer(ViewOf(*store), 0, kLiuzhou);
  ASSERT_TRUE(manager.ok());
  EXPECT_EQ(*manager, kNanning);
  auto read = ReadCard(ViewOf(*store), card);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->balance_fen, 420) << "the balance is the card's, not the issuer's";
  EXPECT_EQ((*read)->record.id_number_token(), Token('i'));

  // The failed city no longer acts on its cards nor issues new ones; the successor does.
  EXPECT_EQ(Decide(store.get(), Block(card, "b_liuzhou")).rule(), "issuer_only");
  EXPECT_EQ(Decide(store.get(), Issue(CardId(kLiuzhou, 2), "i2")).rule(), "issuer_transferred");
  EXPECT_TRUE(Decide(store.get(), From(Block(card, "b_nanning"), City(kNanning))).accepted());
  // A replacement takes a successor's card id and carries the balance.
  const std::string replacement = CardId(kNanning, 9);
  EXPECT_EQ(
      Decide(store.get(), From(Replace(card, CardId(kLiuzhou, 3), "r_old"), City(kNanning))).rule(),
      "new_card_issuer");
  const v1::Event replace = From(Replace(card, replacement, "r1"), City(kNanning));
  Feed(store.get(), &ledger_, {Cards(replace)});
  ASSERT_TRUE(Outcome(store.get(), replace.event_id()).accepted());
  std::vector<state_store::OutboxRecord> outbox = NewOutbox(store.get());
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_EQ(Parsed(outbox[1]).card_replaced().issuer_city(), kNanning);
  EXPECT_EQ(Parsed(outbox[1]).card_replaced().carried_balance_fen(), 420);
  Feed(store.get(), &ledger_, {AsInputs(outbox)[1]});
  auto carried = ReadCard(ViewOf(*store), replacement);
  ASSERT_TRUE(carried.ok() && carried->has_value());
  EXPECT_EQ((*carried)->balance_fen, 420);
  EXPECT_EQ((*carried)->record.phone_token(), Token('p'));

  // The copy read again is a no-op.
  Feed(store.get(), &ledger_,
       {transferred(0, Platform(kServiceName), "card_registry/tongka.members/0/1/transfer/0b")});
  auto stats = ReadStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->foreign_decisions, 2);
  EXPECT_NE(Digest(store.get()), digest_before);
}

}  // namespace
}  // namespace tongka::card_registry
