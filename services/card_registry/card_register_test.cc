// Proves the card ledger's stored state converges whatever order tongka.txn and tongka.cards
// records arrive in (card_ledger.h, "Determinism"), on a real RocksDB in a temp dir, without
// Kafka (testing/state_test.h):
//   - the transaction register is a max: the same transactions in many shuffles, interleaved at
//     random with the same commands (in their own partition order: issues, blocks, a close, a
//     refused issue) and applied in random batch sizes, give the same StateStore::Digest();
//     Replacements and links are in the log with both halves (the derived half as the registry
//     wrote it), so a replaced card and its successor converge too;
//   - the same log gives the same digest whatever the batch size;
//   - a card issued after its first transactions knows their balance (the u/ register merges);
//   - RegisterLess is a strict order in which every field counts.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/card_registry/card_ledger.h"
#include "services/card_registry/card_registry_keys.h"
#include "services/card_registry/card_registry_readers.h"
#include "services/card_registry/testing/state_test.h"

namespace tongka::card_registry {
namespace {

using testing::Block;
using testing::CardId;
using testing::Cards;
using testing::Close;
using testing::FreshStore;
using testing::Input;
using testing::Issue;
using testing::kDayStartUs;
using testing::kShanghai;
using testing::Link;
using testing::Replace;
using testing::Tap;
using testing::TxnInput;
using testing::Unblock;

class CardRegisterTest : public testing::StateTest {
 protected:
  const std::string a_ = CardId(kShanghai, 1);  // issued before its transactions
  const std::string b_ = CardId(kShanghai, 2);  // transactions before its issue
  const std::string c_ = CardId(kShanghai, 3);  // closed between transactions
  const std::string d_ = CardId(kShanghai, 4);  // never issued (its issue is refused)
  const std::string e_ = CardId(kShanghai, 5);  // replaces a_, carrying its balance
  const std::string f_ = CardId(kShanghai, 6);  // a QR card linked to b_

  // The second half of a replacement or link as the log holds it: written once by the registry
  // (its amount is the fact, whatever a replay would compute).
  static Input Derived(const std::string& key, v1::Event event, int64_t offset, const char* label) {
    event.set_event_id(absl::StrCat("card_registry/tongka.cards/0/", offset, "/", label));
    event.set_recorded_at_us(kDayStartUs + 3 * testing::kHourUs);
    event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
    event.mutable_source()->set_service(kServiceName);
    return Input{kCardsTopic, key, event.SerializeAsString()};
  }

  std::vector<Input> Commands() const {
    v1::Event refused = Issue(d_, "id");
    refused.mutable_card_issue_requested()->set_initial_balance_fen(-5);
    v1::Event carry;
    v1::CardReplaced* replaced = carry.mutable_card_replaced();
    replaced->set_request_id("ra");
    replaced->set_old_card_id(a_);
    replaced->set_new_card_id(e_);
    replaced->set_carried_balance_fen(600);
    replaced->set_form(v1::CARD_FORM_PHYSICAL);
    replaced->set_product(v1::CARD_PRODUCT_STORED_VALUE);
    replaced->set_issuer_city(kShanghai);
    v1::Event link;
    v1::VirtualCardLinked* linked = link.mutable_virtual_card_linked();
    linked->set_request_id("lb");
    linked->set_virtual_card_id(f_);
    linked->set_physical_card_id(b_);
    linked->set_form(v1::CARD_FORM_QR);
    linked->set_product(v1::CARD_PRODUCT_STORED_VALUE);
    linked->set_issuer_city(kShanghai);
    return {Cards(Issue(a_, "ia")), Cards(Block(a_, "ba")),       Cards(Issue(b_, "ib")),
            Cards(Issue(c_, "ic")), Cards(Close(c_, "cc")),       Cards(Unblock(a_, "ua")),
            Cards(refused),         Cards(Link(b_, f_, "lb")),    Derived(f_, link, 7, "decision"),
            Cards(Block(b_, "bb")), Cards(Replace(a_, e_, "ra")), Derived(e_, carry, 10, "carry")};
  }

  std::vector<Input> Transactions() const {
    uint64_t seq = 0;
    std::vector<Input> txns;
    for (uint32_t counter = 1; counter <= 5; ++counter) {
      txns.push_back(
          TxnInput(Tap(a_, counter, 1000 - counter * 100, kDayStartUs + counter, ++seq)));
    }
    // Same counter, later time: wins over counter 5's first tap. A lower counter at a later
    // time loses.
    txns.push_back(TxnInput(Tap(a_, 5, 333, kDayStartUs + 50, ++seq)));
    txns.push_back(TxnInput(Tap(a_, 2, 999, kDayStartUs + 99, ++seq)));
    // Same counter and time, two ids: the id's hash decides, the same way in any order.
    txns.push_back(TxnInput(Tap(b_, 3, 71, kDayStartUs + 7, ++seq)));
    txns.push_back(TxnInput(Tap(b_, 3, 72, kDayStartUs + 7, ++seq)));
    txns.push_back(TxnInput(Tap(b_, 1, 90, kDayStartUs + 1, ++seq)));
    txns.push_back(TxnInput(Tap(c_, 1, 40, kDayStartUs + 1, ++seq)));
    txns.push_back(TxnInput(Tap(c_, 2, 20, kDayStartUs + 2, ++seq)));
    txns.push_back(TxnInput(Tap(d_, 1, 10, kDayStartUs + 1, ++seq)));
    txns.push_back(TxnInput(Tap(d_, 4, 5, kDayStartUs + 4, ++seq)));
    return txns;
  }

  // `txns` interleaved at random with `commands`, each keeping its own order.
  static std::vector<Input> Interleave(const std::vector<Input>& commands,
                                       const std::vector<Input>& txns, std::mt19937* random) {
    std::vector<Input> out;
    size_t i = 0;
    size_t j = 0;
    while (i < commands.size() || j < txns.size()) {
      const bool take_command =
          j == txns.size() ||
          (i < commands.size() && std::uniform_int_distribution<int>(0, 1)(*random) == 0);
      out.push_back(take_command ? commands[i++] : txns[j++]);
    }
    return out;
  }

  std::string Build(const std::string& name, const std::vector<Input>& inputs, size_t batch_size) {
    auto store = FreshStore(name);
    CardLedger ledger;
    Feed(store.get(), &ledger, inputs, batch_size);
    const std::string digest = Digest(store.get());
    Forget(store.get());
    return digest;
  }
};

TEST_F(CardRegisterTest, AnyOrderOfTransactionsAndInterleavingGivesTheSameState) {
  std::vector<Input> reference = Commands();
  for (const Input& txn : Transactions()) reference.push_back(txn);
  auto store = FreshStore("register_reference");
  CardLedger ledger;
  Feed(store.get(), &ledger, reference);
  const std::string expected = Digest(store.get());

  const StateView view = ViewOf(*store);
  auto a = ReadCard(view, a_);
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->balance_fen, 333);
  EXPECT_EQ((*a)->record.last_txn().card_counter(), 5u);
  auto b = ReadCard(view, b_);
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->record.last_txn().card_counter(), 3u);
  auto c = ReadCard(view, c_);
  ASSERT_TRUE(c.ok() && c->has_value());
  EXPECT_EQ((*c)->record.status(), v1::CARD_STATUS_CLOSED);
  EXPECT_EQ((*c)->balance_fen, 20);
  EXPECT_EQ((*a)->record.replaced_by(), e_);
  auto e = ReadCard(view, e_);
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_EQ((*e)->balance_fen, 600) << "the carried balance, as the log's CardReplaced says";
  auto f = ReadCard(view, f_);
  ASSERT_TRUE(f.ok() && f->has_value());
  EXPECT_EQ((*f)->record.linked_card(), b_);
  auto d = ReadUnissuedRegister(view, d_);
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_EQ((*d)->balance_after_fen(), 5);
  auto stats = ReadStats(view);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->unissued_cards, 1);

  std::mt19937 random(20261124);
  const std::vector<size_t> batch_sizes = {1, 2, 3, 7, 1000};
  for (int round = 0; round < 24; ++round) {
    std::vector<Input> txns = Transactions();
    std::shuffle(txns.begin(), txns.end(), random);
    const size_t batch_size = batch_sizes[round % batch_sizes.size()];
    EXPECT_EQ(
        Build(absl::StrCat("register_", round), Interleave(Commands(), txns, &random), batch_size),
        expected)
        << "round " << round << ", batch size " << batch_size;
  }
  // The extremes: every transaction before any command, and after.
  std::vector<Input> txns_first = Transactions();
  std::reverse(txns_first.begin(), txns_first.end());
  for (const Input& command : Commands()) txns_first.push_back(command);
  EXPECT_EQ(Build("register_txns_first", txns_first, 1), expected);
}

TEST_F(CardRegisterTest, TheSameLogGivesTheSameDigestWhateverTheBatchSize) {
  std::mt19937 random(7);
  const std::vector<Input> log = Interleave(Commands(), Transactions(), &random);
  const std::string one = Build("batch_1", log, 1);
  EXPECT_EQ(Build("batch_4", log, 4), one);
  EXPECT_EQ(Build("batch_all", log, log.size()), one);
}

TEST_F(CardRegisterTest, ACardIssuedAfterItsTransactionsKnowsItsBalance) {
  auto store = FreshStore("late_issue");
  CardLedger ledger;
  Feed(store.get(), &ledger, {TxnInput(Tap(b_, 2, 75, kDayStartUs + 2, 1))});
  auto stats = ReadStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->unissued_cards, 1);
  Feed(store.get(), &ledger, {Cards(Issue(b_, "ib"))});
  auto card = ReadCard(ViewOf(*store), b_);
  ASSERT_TRUE(card.ok() && card->has_value());
  EXPECT_EQ((*card)->balance_fen, 75);  // not the opening 500
  auto early = ReadUnissuedRegister(ViewOf(*store), b_);
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->has_value());
  stats = ReadStats(ViewOf(*store));
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->unissued_cards, 0);
}

TEST(RegisterLessTest, IsAStrictOrderInWhichEveryFieldCounts) {
  TxnRegister base;
  base.set_card_counter(3);
  base.set_occurred_at_us(100);
  base.set_event_id_hash(StableHash64("txn/x/1"));
  base.set_balance_after_fen(50);
  base.set_acquirer_city(310000);
  EXPECT_FALSE(RegisterLess(base, base));
  std::vector<TxnRegister> greater(5, base);
  greater[0].set_card_counter(4);
  greater[1].set_occurred_at_us(101);
  greater[2].set_event_id_hash(base.event_id_hash() + 1);
  greater[3].set_balance_after_fen(51);
  greater[4].set_acquirer_city(310001);
  for (const TxnRegister& g : greater) {
    EXPECT_TRUE(RegisterLess(base, g)) << g.DebugString();
    EXPECT_FALSE(RegisterLess(g, base)) << g.DebugString();
  }
  // The counter outranks time: a replayed old counter at a later time loses.
  TxnRegister later_old = base;
  later_old.set_card_counter(2);
  later_old.set_occurred_at_us(1000);
  EXPECT_TRUE(RegisterLess(later_old, base));
  // The hash is stable: FNV-1a 64 of the empty string is the offset basis.
  EXPECT_EQ(StableHash64(""), 14695981039346656037ULL);
}

}  // namespace
}  // namespace tongka::card_registry
