// Proves the id index readers on a real RocksDB in a temp dir, without Kafka (testing/
// state_test.h): ReadCellTransactions gathers a pair's hour from every chunk and refuses a broken
// one, and follows the money: ids of late and moved money are listed under the window that
// counted it, in step with its cells. The float with successions folded in (FoldFloats, and
// GetFloat over it for each tenant): a transfer never changes the total.
#include "services/settlement/settlement_readers.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/server/tenant.h"
#include "services/settlement/settlement_api.h"
#include "services/settlement/testing/state_test.h"

namespace tongka::settlement {
namespace {

using state_store::StateBatch;
using state_store::StateStore;
using testing::FreshStore;
using testing::kDayStartUs;
using testing::kHourUs;
using testing::kLiuzhou;
using testing::kNingbo;
using testing::kShanghai;
using testing::StateTest;
using testing::Txn;

class SettlementReadersTest : public StateTest {};

// The id index holds one chunk per hour and partition bucket, appended to batch by batch: reading
// a pair's hour back gathers its entries from every chunk of every partition, sorted by id, with
// signed amounts; loads are not indexed; a broken chunk is reported as corruption, never half
// read.
TEST_F(SettlementReadersTest, IdIndexGathersEveryChunkOfACell) {
  auto store = FreshStore("index");
  TxnStage stage;
  std::vector<v1::Event> p0;
  std::vector<v1::Event> p1;
  for (uint64_t seq = 1; seq <= 7; ++seq) {
    p0.push_back(Txn(v1::Event::kTap, kShanghai, kNingbo, 100 + seq, kDayStartUs + 60, seq));
    p1.push_back(Txn(v1::Event::kTap, kShanghai, kNingbo, 200 + seq, kDayStartUs + 60, 100 + seq));
  }
  p0.push_back(Txn(v1::Event::kRefund, kShanghai, kNingbo, 50, kDayStartUs + 60, 8));
  p0.push_back(Txn(v1::Event::kLoad, kShanghai, kShanghai, 5000, kDayStartUs + 60, 9));
  StageOne(store.get(), &stage, p0, 0, 0, 3);  // three batches: three chunks
  StageOne(store.get(), &stage, p1, 1, 0, 4);  // two more, from another partition
  auto index =
      ReadCellTransactions(ViewOf(*store), "2026-11-24", "2026-11-24", kShanghai, kNingbo, 0);
  ASSERT_TRUE(index.ok()) << index.status();
  std::vector<std::pair<std::string, int64_t>> expected;
  for (uint64_t seq = 1; seq <= 7; ++seq) {
    expected.emplace_back(absl::StrCat("txn/330200-METRO-000001/", seq), 100 + seq);
    expected.emplace_back(absl::StrCat("txn/330200-METRO-000001/", 100 + seq), 200 + seq);
  }
  expected.emplace_back("txn/330200-METRO-000001/8", -50);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(*index, expected);
  auto loads =
      ReadCellTransactions(ViewOf(*store), "2026-11-24", "2026-11-24", kShanghai, kShanghai, 0);
  ASSERT_TRUE(loads.ok());
  EXPECT_TRUE(loads->empty()) << "loads are float, not transactions of a row";

  // An entry cut short (pair 1 -> 2, its id promises three bytes, two follow, no amount): the
  // whole hour's index is unreadable, whichever pair is asked for.
  StateBatch batch(store.get());
  batch.Append(IndexChunkKey("2026-11-24", 5, 0, 0), std::string("\x01\x02\x03"
                                                                 "ab",
                                                                 5));
  ASSERT_TRUE(store->Commit(batch).ok());
  EXPECT_EQ(ReadCellTransactions(ViewOf(*store), "2026-11-24", "2026-11-24", kShanghai, kNingbo, 5)
                .status()
                .code(),
            absl::StatusCode::kInternal);
}

// The id index follows the money. Day D closes; then taps recorded in D arrive: their money is
// carried into D+1 (keeping origin D and its hour), and their ids are listed under D+1, not D.
// Money carried again (D+1 closed too) and money an abort moved are followed the same way, so
// for every (window, origin, hour) the ids agree with the cell's count (what DrillDown shows).
TEST_F(SettlementReadersTest, IdIndexFollowsLateAndMovedMoney) {
  auto store = FreshStore("late-index");
  TxnStage stage;
  WindowLedger ledger({});
  const std::string d = "2026-11-24";
  const std::string d1 = "2026-11-25";
  const std::string d2 = "2026-11-26";
  const std::string d3 = "2026-11-27";
  const int64_t in_d = kDayStartUs + 9 * kHourUs;    // D, hour 9
  const int64_t in_d1 = kDayStartUs + 26 * kHourUs;  // D+1, hour 2
  int64_t offset = 0;
  // Stage one's records at the next offsets, then the ledger applies everything written, its own
  // derived events (carried deltas, reports) included, until nothing is left.
  auto upload = [&](std::vector<v1::Event> events) {
    std::vector<state_store::OutboxRecord> emitted =
        StageOne(store.get(), &stage, events, 0, offset, 100);
    offset += static_cast<int64_t>(events.size());
    std::vector<std::string> pending;
    for (const auto& entry : emitted) pending.push_back(entry.value);
    while (!pending.empty()) {
      for (const std::string& bytes : pending)
        ASSERT_TRUE(Ledger(store.get(), &ledger, bytes).ok());
      pending = LedgerOutbox(store.get());
    }
  };
  auto command = [&](const std::string& window, v1::WindowState target, int64_t at,
                     const std::string& id) {
    ASSERT_TRUE(Ledger(store.get(), &ledger, Command(window, target, at, id)).ok());
    EXPECT_TRUE(Outcome(store.get(), id).accepted()) << id;
    std::vector<std::string> pending = LedgerOutbox(store.get());
    while (!pending.empty()) {
      for (const std::string& bytes : pending)
        ASSERT_TRUE(Ledger(store.get(), &ledger, bytes).ok());
      pending = LedgerOutbox(store.get());
    }
  };
  auto ids = [&](const std::string& window, const std::string& origin, int32_t hour) {
    auto listed = ReadCellTransactions(ViewOf(*store), window, origin, kShanghai, kNingbo, hour);
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::vector<uint64_t> seqs;
    for (const auto& [id, amount] :
         listed.value_or(std::vector<std::pair<std::string, int64_t>>())) {
      uint64_t seq = 0;
      EXPECT_TRUE(absl::SimpleAtoi(id.substr(id.rfind('/') + 1), &seq));
      seqs.push_back(seq);
    }
    std::sort(seqs.begin(), seqs.end());
    return seqs;
  };
  // The count of window's cell (origin, hour): what DrillDown answers.
  auto cell_count = [&](const std::string& window, const std::string& origin, int32_t hour) {
    int64_t count = 0;
    auto hours = ReadHours(ViewOf(*store), window, kShanghai, kNingbo);
    EXPECT_TRUE(hours.ok()) << hours.status();
    for (const v1::SettlementCell& cell : *hours) {
      if (cell.origin_window_id() == origin && cell.hour() == hour) count += CountOf(cell);
    }
    return count;
  };
  auto tap = [&](int64_t at, uint64_t seq) {
    return Txn(v1::Event::kTap, kShanghai, kNingbo, 100 + static_cast<int64_t>(seq), at, seq);
  };

  upload({tap(in_d, 1), tap(in_d, 2), tap(in_d, 3)});
  command(d, v1::WINDOW_STATE_CLOSED, kDayStartUs + 25 * kHourUs, "close-d");
  // Late: recorded in D (hour 9), applied after D closed; and one of D+1's own.
  upload({tap(in_d + 1, 4), tap(in_d + 2, 5), tap(in_d1, 6)});
  EXPECT_EQ(ReadStats(ViewOf(*store))->late_deltas, 1);
  EXPECT_EQ(ids(d, d, 9), (std::vector<uint64_t>{1, 2, 3})) << "D keeps only what it counted";
  EXPECT_EQ(cell_count(d, d, 9), 3);
  EXPECT_EQ(ids(d1, d, 9), (std::vector<uint64_t>{4, 5})) << "late ids follow their money";
  EXPECT_EQ(cell_count(d1, d, 9), 2);
  EXPECT_EQ(ids(d1, d1, 2), (std::vector<uint64_t>{6}));
  EXPECT_EQ(cell_count(d1, d1, 2), 1);

  // D+1 closes; another tap recorded in D arrives: carried to D+1, frozen, and on to D+2.
  command(d1, v1::WINDOW_STATE_CLOSED, kDayStartUs + 49 * kHourUs, "close-d1");
  upload({tap(in_d + 3, 7)});
  EXPECT_EQ(ids(d1, d, 9), (std::vector<uint64_t>{4, 5})) << "a closed window's ids do not move";
  EXPECT_EQ(ids(d2, d, 9), (std::vector<uint64_t>{7}));
  EXPECT_EQ(cell_count(d2, d, 9), 1);
  EXPECT_EQ(ids(d, d, 9), (std::vector<uint64_t>{1, 2, 3}));

  // D+2 is aborted: everything counted in it moves to D+3, and its ids with it.
  upload({tap(kDayStartUs + 50 * kHourUs, 8)});  // D+2's own, hour 2
  command(d2, v1::WINDOW_STATE_ABORTED, kDayStartUs + 73 * kHourUs, "abort-d2");
  EXPECT_TRUE(ids(d2, d, 9).empty());
  EXPECT_TRUE(ids(d2, d2, 2).empty());
  EXPECT_EQ(ids(d3, d, 9), (std::vector<uint64_t>{7}));
  EXPECT_EQ(cell_count(d3, d, 9), 1);
  EXPECT_EQ(ids(d3, d2, 2), (std::vector<uint64_t>{8}));
  EXPECT_EQ(cell_count(d3, d2, 2), 1);
  // D's report never moved; the float counted every tap once.
  EXPECT_EQ((*ReadReport(ViewOf(*store), d))->bilateral(0).count(), 3);
  EXPECT_EQ(ReadFloats(ViewOf(*store))->at(kShanghai).spent_fen(), 8 * 100 + 36);
}

// Successions fold in at read time and never change the total: for any set of transfers
// (a chain included: Liuzhou -> Nanning, then Nanning -> Shanghai), the outstanding figures sum
// to what the cards hold; the last carrier inherits every predecessor's float; a failed issuer
// carries none and shows what its cards hold as its own.
TEST_F(SettlementReadersTest, SuccessionsMoveTheFloatAndKeepTheTotal) {
  constexpr uint32_t kNanning = 450100;
  std::map<uint32_t, FloatRecord> floats;
  floats[kLiuzhou].set_opening_fen(9000);
  floats[kLiuzhou].set_spent_fen(500);
  floats[kLiuzhou].set_reserve_fen(4000);
  floats[kNanning].set_loads_fen(3000);
  floats[kShanghai].set_loads_fen(7000);
  floats[kNingbo].set_loads_fen(100);
  floats[kNingbo].set_spent_fen(600);  // below zero: offline spends not yet loaded
  auto sum = [](const std::map<uint32_t, FoldedFloat>& folded) {
    int64_t total = 0;
    for (const auto& [city, one] : folded) total += one.outstanding_fen;
    return total;
  };
  std::map<uint32_t, SuccessionRecord> successions;
  auto none = FoldFloats(floats, successions);
  ASSERT_TRUE(none.ok());
  const int64_t total = sum(*none);
  EXPECT_EQ(total, 8500 + 3000 + 7000 - 500);

  successions[kLiuzhou].set_to_city(kNanning);
  auto one = FoldFloats(floats, successions);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(sum(*one), total);
  EXPECT_EQ(one->at(kLiuzhou).outstanding_fen, 0);
  EXPECT_EQ(one->at(kLiuzhou).own_fen, 8500);
  EXPECT_EQ(one->at(kNanning).outstanding_fen, 3000 + 8500);
  EXPECT_EQ(one->at(kNanning).inherited_fen, 8500);

  successions[kNanning].set_to_city(kShanghai);
  auto chain = FoldFloats(floats, successions);
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ(sum(*chain), total);
  EXPECT_EQ(chain->at(kShanghai).outstanding_fen, 7000 + 3000 + 8500);
  EXPECT_EQ(chain->at(kShanghai).predecessors, (std::vector<uint32_t>{kNanning, kLiuzhou}));
  EXPECT_EQ(chain->at(kLiuzhou).final_successor, kShanghai);
  EXPECT_EQ(chain->at(kLiuzhou).successor, kNanning);
  EXPECT_EQ(chain->at(kNanning).outstanding_fen, 0);

  // A successor with no float of its own still gets a row carrying its predecessor's.
  successions.clear();
  successions[kLiuzhou].set_to_city(370200);
  auto fresh = FoldFloats(floats, successions);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->at(370200).outstanding_fen, 8500);
  EXPECT_EQ(sum(*fresh), total);

  successions[370200].set_to_city(kLiuzhou);  // never accepted by the ledger: corruption
  EXPECT_EQ(FoldFloats(floats, successions).status().code(), absl::StatusCode::kInternal);
}

// GetFloat over a store the ledger decided a transfer in: the ministry sees every row and the
// same total as before the transfer; the successor reads the failed issuer's row beside its
// own; the failed issuer reads its own (successor, transferred, its reserve's coverage); a third
// city sees neither.
TEST_F(SettlementReadersTest, GetFloatFoldsTheSuccessionForEachTenant) {
  constexpr uint32_t kNanning = 450100;
  auto store = FreshStore("folded-get-float");
  {
    StateBatch batch(store.get());
    FloatRecord liuzhou;
    liuzhou.set_opening_fen(9000);
    liuzhou.set_spent_fen(1000);
    liuzhou.set_reserve_fen(2000);
    batch.Put(FloatKey(kLiuzhou), liuzhou.SerializeAsString());
    FloatRecord nanning;
    nanning.set_loads_fen(4000);
    nanning.set_reserve_fen(6000);
    batch.Put(FloatKey(kNanning), nanning.SerializeAsString());
    FloatRecord shanghai;
    shanghai.set_loads_fen(500);
    batch.Put(FloatKey(kShanghai), shanghai.SerializeAsString());
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  SettlementApi api({.store = store.get()});
  auto rows = [&](const v1::Tenant& tenant) {
    auto response = api.GetFloat(tenant, v1::GetFloatRequest());
    EXPECT_TRUE(response.ok()) << response.status();
    std::map<uint32_t, v1::FloatPosition> out;
    for (const v1::FloatPosition& position : response->issuers()) {
      out[position.issuer_city()] = position;
    }
    return out;
  };
  auto total = [](const std::map<uint32_t, v1::FloatPosition>& positions) {
    int64_t sum = 0;
    for (const auto& [city, position] : positions) sum += position.outstanding_fen();
    return sum;
  };
  const int64_t before = total(rows(server::MinistryTenant()));
  EXPECT_EQ(before, 8000 + 4000 + 500);
  EXPECT_EQ(rows(server::CityTenant(kNanning)).size(), 1u) << "not Liuzhou's yet";
  {
    StateBatch batch(store.get());
    SuccessionRecord succession;
    succession.set_to_city(kNanning);
    batch.Put(SuccessionKey(kLiuzhou), succession.SerializeAsString());
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  std::map<uint32_t, v1::FloatPosition> ministry = rows(server::MinistryTenant());
  EXPECT_EQ(total(ministry), before);
  const v1::FloatPosition& nanning = ministry.at(kNanning);
  EXPECT_EQ(nanning.outstanding_fen(), 12000);
  EXPECT_EQ(nanning.inherited_fen(), 8000);
  ASSERT_EQ(nanning.predecessor_cities_size(), 1);
  EXPECT_EQ(nanning.predecessor_cities(0), kLiuzhou);
  EXPECT_DOUBLE_EQ(nanning.coverage_ratio(), 0.5) << "its own reserve over what it carries";
  EXPECT_TRUE(nanning.under_covered());
  const v1::FloatPosition& liuzhou = ministry.at(kLiuzhou);
  EXPECT_EQ(liuzhou.outstanding_fen(), 0);
  EXPECT_EQ(liuzhou.successor_city(), kNanning);
  EXPECT_EQ(liuzhou.transferred_fen(), 8000);
  EXPECT_EQ(liuzhou.opening_fen(), 9000) << "its cards' own figures stay as they were";
  EXPECT_DOUBLE_EQ(liuzhou.coverage_ratio(), 0.25) << "its escrow until it is drawn down";
  EXPECT_FALSE(liuzhou.under_covered()) << "the float is the successor's liability now";

  std::map<uint32_t, v1::FloatPosition> successor = rows(server::CityTenant(kNanning));
  EXPECT_EQ(successor.size(), 2u);
  EXPECT_EQ(successor.count(kLiuzhou), 1u);
  std::map<uint32_t, v1::FloatPosition> failed = rows(server::CityTenant(kLiuzhou));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed.at(kLiuzhou).successor_city(), kNanning);
  EXPECT_EQ(rows(server::CityTenant(kShanghai)).size(), 1u);

  // The escrow drawn down to zero: no coverage shown any more.
  {
    StateBatch batch(store.get());
    FloatRecord drawn = ReadFloats(ViewOf(*store))->at(kLiuzhou);
    drawn.set_reserve_fen(0);
    batch.Put(FloatKey(kLiuzhou), drawn.SerializeAsString());
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  EXPECT_EQ(rows(server::MinistryTenant()).at(kLiuzhou).coverage_ratio(), 0);
}

}  // namespace
}  // namespace tongka::settlement
