// Proves the card registry's readers on a real RocksDB in a temp dir, without Kafka
// (testing/state_test.h):
//   - FindCardsByHolder is scoped to the issuer: a token finds its own issuer's cards (by id
//     number or phone token), none of another issuer's, nothing for a malformed token;
//   - ReadCard computes the balance (opening balance until a transaction is seen);
//   - corrupt stored records are INTERNAL, never a default;
//   - the stored bytes per card, printed for the README (a card record, its holder index
//     entries, its outcome), with a bound on the card record itself.
#include "services/card_registry/card_registry_readers.h"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "services/card_registry/card_ledger.h"
#include "services/card_registry/card_registry_keys.h"
#include "services/card_registry/testing/state_test.h"

namespace tongka::card_registry {
namespace {

using testing::CardId;
using testing::Cards;
using testing::FreshStore;
using testing::Input;
using testing::Issue;
using testing::kDayStartUs;
using testing::kNingbo;
using testing::kShanghai;
using testing::Tap;
using testing::Token;
using testing::TxnInput;

class ReadersTest : public testing::StateTest {};

TEST_F(ReadersTest, FindCardsByHolderIsScopedToTheIssuer) {
  auto store = FreshStore("holder");
  CardLedger ledger;
  const std::string first = CardId(kShanghai, 1);
  const std::string second = CardId(kShanghai, 2);
  const std::string ningbo = CardId(kNingbo, 1);
  v1::Event other_holder = Issue(CardId(kShanghai, 3), "r3");
  other_holder.mutable_card_issue_requested()->mutable_holder()->set_id_number_token(Token('x'));
  other_holder.mutable_card_issue_requested()->mutable_holder()->clear_phone_token();
  Feed(store.get(), &ledger,
       {Cards(Issue(second, "r2")), Cards(Issue(first, "r1")), Cards(Issue(ningbo, "n1")),
        Cards(other_holder)});
  const StateView view = ViewOf(*store);
  auto by_id = FindCardsByHolder(view, kShanghai, Token('i'));
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(*by_id, (std::vector<std::string>{first, second}));
  auto by_phone = FindCardsByHolder(view, kShanghai, Token('p'));
  ASSERT_TRUE(by_phone.ok());
  EXPECT_EQ(*by_phone, (std::vector<std::string>{first, second}));
  auto in_ningbo = FindCardsByHolder(view, kNingbo, Token('i'));
  ASSERT_TRUE(in_ningbo.ok());
  EXPECT_EQ(*in_ningbo, std::vector<std::string>{ningbo});
  auto other = FindCardsByHolder(view, kShanghai, Token('x'));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, std::vector<std::string>{CardId(kShanghai, 3)});
  auto short_token = FindCardsByHolder(view, kShanghai, "i");
  ASSERT_TRUE(short_token.ok());
  EXPECT_TRUE(short_token->empty());
}

TEST_F(ReadersTest, ReadCardComputesTheBalance) {
  auto store = FreshStore("balance");
  CardLedger ledger;
  const std::string card = CardId(kShanghai, 1);
  Feed(store.get(), &ledger, {Cards(Issue(card, "r1"))});
  auto read = ReadCard(ViewOf(*store), card);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->balance_fen, 500);
  EXPECT_FALSE((*read)->record.has_last_txn());
  Feed(store.get(), &ledger, {TxnInput(Tap(card, 1, 0, kDayStartUs + 1, 1))});
  read = ReadCard(ViewOf(*store), card);
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->balance_fen, 0);  // a balance of zero is a balance, not "none seen"
  EXPECT_EQ((*read)->record.last_txn().acquirer_city(), kShanghai);
  auto absent = ReadCard(ViewOf(*store), CardId(kShanghai, 2));
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());
  auto malformed = ReadCard(ViewOf(*store), "not-a-card");
  ASSERT_TRUE(malformed.ok());
  EXPECT_FALSE(malformed->has_value());
}

TEST_F(ReadersTest, CorruptRecordsAreInternal) {
  auto store = FreshStore("corrupt");
  const std::string card = CardId(kShanghai, 1);
  state_store::StateBatch batch(store.get());
  batch.Put(CardKey(card), "\xff\xff");
  batch.Put(HotlistSeqKey(0), "x");
  batch.Put(internal::RefusedKey("form"), "y");
  ASSERT_TRUE(store->Commit(batch).ok());
  const StateView view = ViewOf(*store);
  EXPECT_EQ(ReadCard(view, card).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ReadHotlistSeq(view, 0).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ReadHotlistSnapshot(view, 0).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ReadStats(view).status().code(), absl::StatusCode::kInternal);
  // A parseable record with no status is corrupt too: every stored card has one.
  state_store::StateBatch empty(store.get());
  empty.Put(CardKey(card), "");
  ASSERT_TRUE(store->Commit(empty).ok());
  EXPECT_EQ(ReadCard(view, card).status().code(), absl::StatusCode::kInternal);
}

TEST_F(ReadersTest, BytesPerCard) {
  auto store = FreshStore("bytes");
  CardLedger ledger;
  constexpr int kCards = 1000;
  std::vector<Input> inputs;
  for (int i = 0; i < kCards; ++i) {
    const std::string card = CardId(kShanghai, 100000000 + i);
    v1::Event issue = Issue(card, absl::StrFormat("req-%08d", i));
    auto* holder = issue.mutable_card_issue_requested()->mutable_holder();
    holder->set_id_number_token(absl::StrFormat("%032d", i));
    holder->set_phone_token(absl::StrFormat("p%031d", i));
    inputs.push_back(Cards(issue));
    inputs.push_back(TxnInput(Tap(card, 17, 380, kDayStartUs + 3600000000LL, 1000 + i)));
  }
  Feed(store.get(), &ledger, inputs, 500);
  std::map<std::string, int64_t> bytes;  // by key prefix
  ASSERT_TRUE(store
                  ->ScanPrefix("",
                               [&](absl::string_view key, absl::string_view value) {
                                 bytes[std::string(key.substr(0, 2))] +=
                                     static_cast<int64_t>(key.size() + value.size());
                                 return true;
                               })
                  .ok());
  const double card_record = static_cast<double>(bytes["c/"]) / kCards;
  const double holder_index = static_cast<double>(bytes["h/"]) / kCards;
  const double outcome = static_cast<double>(bytes["r/"]) / kCards;
  std::printf(
      "bytes_per_card (key + value, before RocksDB overhead and compression): card_record=%.1f "
      "holder_index=%.1f outcome=%.1f total=%.1f\n",
      card_record, holder_index, outcome, card_record + holder_index + outcome);
  // A physical card with two holder tokens and a transaction: the record stays compact.
  EXPECT_LE(card_record, 140);
}

}  // namespace
}  // namespace tongka::card_registry
