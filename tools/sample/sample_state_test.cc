// Proves the sample pipeline's pure logic on a real RocksDB in a temp dir, without Kafka: taps
// add up per card and per batch derive tallies with unique ids; a resent tally is dropped before
// stage two (by the runtime's EventFilter, driven here as the apply loop drives it);
// junk is counted, not fatal; and the totals do not depend on batch boundaries.
#include "tools/sample/sample_state.h"

#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/state_store/event_filter.h"
#include "tools/sample/summary.h"

namespace tongka::sample {
namespace {

using event_log::Record;
using state_store::StateBatch;
using state_store::StateStore;

std::unique_ptr<StateStore> Open(const std::string& name) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/", name);
  std::filesystem::remove_all(dir);
  auto store = StateStore::Open({.path = dir});
  EXPECT_TRUE(store.ok()) << store.status();
  return std::move(*store);
}

Record TapRecord(uint64_t i) {
  v1::Event event = SyntheticTap(7, i);
  return Record::Owned(kTxnTopic, 0, static_cast<int64_t>(i), event.tap().txn().card_id(),
                       event.SerializeAsString());
}

// Applies the taps in batches of `batch_size`, then feeds every derived tally to stage two,
// with each tally delivered twice (as after a publisher crash).
void RunPipeline(StateStore& store, uint64_t taps, size_t batch_size) {
  // The outbox is left in place (never acknowledged) so callers can count it.
  TapCounter counter;
  CityTally tally;
  for (uint64_t i = 0; i < taps;) {
    StateBatch batch(&store);
    for (size_t n = 0; n < batch_size && i < taps; ++n, ++i) {
      ASSERT_TRUE(counter.Apply(TapRecord(i), batch).ok());
    }
    ASSERT_TRUE(counter.FinishBatch(batch).ok());
    ASSERT_TRUE(store.Commit(batch).ok());
  }
  auto outbox = store.ReadOutbox(taps * 8);
  ASSERT_TRUE(outbox.ok());
  // One tally per (batch, acquirer city): at most 8 cities per batch.
  const uint64_t batches = (taps + batch_size - 1) / batch_size;
  ASSERT_GE(outbox->size(), std::min<uint64_t>(taps, batches));
  ASSERT_LE(outbox->size(), batches * 8);
  std::set<std::string> ids;
  for (const state_store::OutboxRecord& entry : *outbox) {
    v1::Event event;
    ASSERT_TRUE(event.ParseFromString(entry.value));
    EXPECT_TRUE(ids.insert(event.event_id()).second) << "duplicate id " << event.event_id();
  }
  // Stage two's topic as one partition: every key belongs there.
  state_store::EventFilter filter(&store, {});
  ASSERT_TRUE(filter.Load({{kTallyTopic, 0}}, {{kTallyTopic, 1}}).ok());
  int64_t offset = 0;
  for (int round = 0; round < 2; ++round) {
    for (const state_store::OutboxRecord& entry : *outbox) {
      StateBatch batch(&store);
      Record record = Record::Owned(kTallyTopic, 0, offset++, entry.key, entry.value);
      absl::StatusOr<state_store::EventFilter::Verdict> verdict = filter.Admit(record, batch);
      ASSERT_TRUE(verdict.ok()) << verdict.status();
      if (*verdict == state_store::EventFilter::Verdict::kApply) {
        ASSERT_TRUE(tally.Apply(record, batch).ok());
      }
      ASSERT_TRUE(filter.Flush(batch).ok());
      ASSERT_TRUE(store.Commit(batch).ok());
    }
  }
}

TEST(SampleStateTest, EveryTapCountedOnceThroughBothStages) {
  auto store = Open("pipeline");
  RunPipeline(*store, 500, 64);
  auto totals = ReadTotals(*store);
  ASSERT_TRUE(totals.ok()) << totals.status();
  int64_t expected_fen = 0;
  std::map<uint32_t, int64_t> expected_city_taps;
  for (uint64_t i = 0; i < 500; ++i) {
    v1::Event event = SyntheticTap(7, i);
    expected_fen += event.tap().amount_fen();
    ++expected_city_taps[event.tap().txn().acquirer_city()];
  }
  EXPECT_EQ(totals->card_taps, 500);
  EXPECT_EQ(totals->city_taps, 500);
  EXPECT_EQ(totals->card_spent_fen, expected_fen);
  EXPECT_EQ(totals->city_amount_fen, expected_fen);
  EXPECT_EQ(totals->duplicates_dropped, store->OutboxDepth());
  for (const auto& [city, taps] : expected_city_taps) {
    EXPECT_EQ(totals->per_city.at(city).first, taps) << city;
  }
}

TEST(SampleStateTest, TotalsDoNotDependOnBatchBoundaries) {
  auto a = Open("batches1");
  auto b = Open("batches2");
  RunPipeline(*a, 300, 1);
  RunPipeline(*b, 300, 1000);
  // Stage one's state is the same whatever the batches; stage two's totals too. (The seen-id index
  // differs: the tallies themselves are per batch.)
  auto totals_a = ReadTotals(*a);
  auto totals_b = ReadTotals(*b);
  ASSERT_TRUE(totals_a.ok() && totals_b.ok());
  EXPECT_EQ(totals_a->card_taps, totals_b->card_taps);
  EXPECT_EQ(totals_a->card_spent_fen, totals_b->card_spent_fen);
  EXPECT_EQ(totals_a->per_city, totals_b->per_city);
  std::string cards_a;
  std::string cards_b;
  ASSERT_TRUE(a->ScanPrefix("card/", [&](absl::string_view k, absl::string_view v) {
                 absl::StrAppend(&cards_a, k, "=", v, ";");
                 return true;
               }).ok());
  ASSERT_TRUE(b->ScanPrefix("card/", [&](absl::string_view k, absl::string_view v) {
                 absl::StrAppend(&cards_b, k, "=", v, ";");
                 return true;
               }).ok());
  EXPECT_EQ(cards_a, cards_b);
}

TEST(SampleStateTest, JunkIsCountedAndSkipped) {
  auto store = Open("junk");
  TapCounter counter;
  StateBatch batch(store.get());
  ASSERT_TRUE(
      counter.Apply(Record::Owned(kTxnTopic, 0, 0, "k", "\xff\xff not a proto"), batch).ok());
  ASSERT_TRUE(counter.FinishBatch(batch).ok());
  ASSERT_TRUE(store->Commit(batch).ok());
  EXPECT_EQ(ReadTotals(*store)->unparseable, 1);
  EXPECT_EQ(store->OutboxDepth(), 0);
}

// Prepare (the prefetch thread's parse) changes nothing: prepared, out of step (Prepare saw other
// records), stale (prepared from an earlier fetch of the same records whose bytes are gone, as
// after a loop stopped with records prefetched) or unprepared, the same taps give the same state
// and the same outbox.
TEST(SampleStateTest, PreparedTapsApplyExactlyAsUnprepared) {
  enum class Mode { kUnprepared, kPrepared, kOutOfStep, kStale };
  auto run = [](Mode mode, const std::string& name) {
    auto store = Open(name);
    TapCounter counter;
    for (uint64_t first = 0; first < 300; first += 100) {
      std::vector<Record> records;
      for (uint64_t i = first; i < first + 100; ++i) records.push_back(TapRecord(i));
      records.push_back(
          Record::Owned(kTxnTopic, 0, static_cast<int64_t>(first + 100), "k", "\xff\xff junk"));
      if (mode == Mode::kPrepared) counter.Prepare(records);
      if (mode == Mode::kOutOfStep) {
        std::vector<Record> other;
        other.push_back(TapRecord(first + 7));
        counter.Prepare(other);
      }
      std::vector<std::string> scribbles;
      if (mode == Mode::kStale) {
        {
          std::vector<Record> earlier;
          for (const Record& record : records) earlier.push_back(record.Clone());
          counter.Prepare(earlier);
        }  // freed: views still pointing there would read the scribbles below
        for (const Record& record : records) {
          scribbles.emplace_back(record.value.size(), '9');
          scribbles.emplace_back(record.topic.size(), '9');
          scribbles.emplace_back(record.key.size(), '9');
        }
      }
      StateBatch batch(store.get());
      for (const Record& record : records) EXPECT_TRUE(counter.Apply(record, batch).ok());
      EXPECT_TRUE(counter.FinishBatch(batch).ok());
      EXPECT_TRUE(store->Commit(batch).ok());
    }
    std::string outbox;
    auto entries = store->ReadOutbox(1000);
    EXPECT_TRUE(entries.ok());
    for (const auto& entry : *entries) outbox += entry.value;
    return std::pair(*store->Digest(), outbox);
  };
  const auto unprepared = run(Mode::kUnprepared, "unprepared");
  EXPECT_EQ(run(Mode::kPrepared, "prepared"), unprepared);
  EXPECT_EQ(run(Mode::kOutOfStep, "out_of_step"), unprepared);
  EXPECT_EQ(run(Mode::kStale, "stale"), unprepared);
}

TEST(SampleStateTest, SyntheticStreamIsDeterministic) {
  EXPECT_EQ(SyntheticTap(3, 42).SerializeAsString(), SyntheticTap(3, 42).SerializeAsString());
  EXPECT_NE(SyntheticTap(3, 42).SerializeAsString(), SyntheticTap(4, 42).SerializeAsString());
}

}  // namespace
}  // namespace tongka::sample
