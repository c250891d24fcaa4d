// Proves the card ledger's command rules on a real RocksDB in a temp dir, without Kafka: records
// are fed to the ledger directly (testing/state_test.h).
//   - every rule of CardIssueRequested, CardStatusChangeRequested and CardCloseRequested, each
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
using testing::Ministry;
using testing::Platform;
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
  linked.set_event_id("cmd/city:310000/link");
  linked.mutable_virtual_card_linked()->set_request_id("link");
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

}  // namespace
}  // namespace tongka::card_registry
