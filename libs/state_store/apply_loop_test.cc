// Proves the apply loop and outbox publisher against librdkafka's embedded broker (small data,
// no restarts of the broker; crash and replay proofs against the real broker live in tests/):
// every record is applied exactly once across loop restarts from stored offsets; two replicas
// split the partitions with nothing missed or shared; a store with a partial offset set refuses
// to start; the outbox reaches Kafka and its cursor advances only after delivery; under a
// backlog one commit covers several batches, and what was not committed is applied again, once;
// a failed batch is never committed and stops the loop; a repeated event id is consumed and
// counted, never applied, also after a restart.
#include "libs/state_store/apply_loop.h"

#include <filesystem>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/event_log/producer.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/state_store/outbox_publisher.h"
#include "proto/events.pb.h"

namespace tongka::state_store {
namespace {

using event_log::EmbeddedBroker;
using event_log::KafkaClientConfig;
using event_log::PartitionConsumer;
using event_log::Producer;
using event_log::Record;

// Counts records per key and derives one outbox event per record.
class CountingApplier : public Applier {
 public:
  absl::Status Apply(const Record& record, StateBatch& batch) override {
    std::string key = absl::StrCat("count/", record.key);
    absl::StatusOr<std::optional<std::string>> current = batch.Get(key);
    if (!current.ok()) return current.status();
    int64_t count = 0;
    if (current->has_value() && !absl::SimpleAtoi(**current, &count)) {
      return absl::InternalError("corrupt count");
    }
    batch.Put(key, absl::StrCat(count + 1));
    batch.AppendOutbox("derived", std::string(record.key), DerivedEventId("test", record, "count"));
    return absl::OkStatus();
  }
};

class ApplyLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = EmbeddedBroker::Start();
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
    config_.bootstrap_servers = broker_->bootstrap();
    ASSERT_TRUE(broker_->CreateTopic("in", 4).ok());
    ASSERT_TRUE(broker_->CreateTopic("derived", 1).ok());
    auto producer = Producer::Create(config_);
    ASSERT_TRUE(producer.ok());
    producer_ = std::move(*producer);
  }

  void ProduceRecords(int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_TRUE(producer_->Produce("in", absl::StrCat("key", i % 10), "v", nullptr).ok());
    }
    ASSERT_TRUE(producer_->Flush(absl::Seconds(30)).ok());
  }

  std::unique_ptr<StateStore> OpenStore(const std::string& name) {
    auto store = StateStore::Open({.path = absl::StrCat(::testing::TempDir(), "/", name)});
    EXPECT_TRUE(store.ok()) << store.status();
    return std::move(*store);
  }

  std::unique_ptr<ApplyLoop> MakeLoop(StateStore* store, int32_t k, int32_t n) {
    return MakeLoop(store, &applier_,
                    {.topics = {"in"},
                     .replica_index = k,
                     .replica_count = n,
                     .batch_max_records = 100,
                     .poll_timeout = absl::Milliseconds(50)});
  }

  std::unique_ptr<ApplyLoop> MakeLoop(StateStore* store, Applier* applier,
                                      ApplyLoopOptions options) {
    auto consumer = PartitionConsumer::Create(config_, "test");
    EXPECT_TRUE(consumer.ok());
    return std::make_unique<ApplyLoop>(store, std::move(*consumer), applier, std::move(options));
  }

  // Committed next offsets, summed over partitions: how many records the store has taken.
  int64_t CommittedRecords(StateStore& store) {
    auto offsets = store.Offsets();
    EXPECT_TRUE(offsets.ok()) << offsets.status();
    int64_t total = 0;
    for (const auto& [tp, offset] : *offsets) total += offset;
    return total;
  }

  void RunUntilCaughtUp(ApplyLoop& loop) {
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      auto applied = loop.RunOnce();
      ASSERT_TRUE(applied.ok()) << applied.status();
      if (*applied == 0 && *loop.CaughtUp()) return;
    }
    FAIL() << "did not catch up";
  }

  int64_t TotalCount(StateStore& store) {
    int64_t total = 0;
    EXPECT_TRUE(store
                    .ScanPrefix("count/",
                                [&](absl::string_view, absl::string_view value) {
                                  int64_t n = 0;
                                  EXPECT_TRUE(absl::SimpleAtoi(value, &n));
                                  total += n;
                                  return true;
                                })
                    .ok());
    return total;
  }

  std::unique_ptr<EmbeddedBroker> broker_;
  KafkaClientConfig config_;
  std::unique_ptr<Producer> producer_;
  CountingApplier applier_;
};

TEST_F(ApplyLoopTest, AppliesEveryRecordOnceAcrossRestarts) {
  ProduceRecords(0, 1000);
  auto store = OpenStore("restart");
  {
    auto loop = MakeLoop(store.get(), 0, 1);
    ASSERT_TRUE(loop->Start().ok());
    RunUntilCaughtUp(*loop);
  }
  EXPECT_EQ(TotalCount(*store), 1000);
  ProduceRecords(1000, 1500);
  auto loop = MakeLoop(store.get(), 0, 1);
  ASSERT_TRUE(loop->Start().ok());
  RunUntilCaughtUp(*loop);
  EXPECT_EQ(TotalCount(*store), 1500);
  int64_t next_total = 0;
  auto offsets = store->Offsets();
  ASSERT_TRUE(offsets.ok());
  for (const auto& [tp, offset] : *offsets) next_total += offset;
  EXPECT_EQ(next_total, 1500);
  EXPECT_EQ(store->OutboxDepth(), 1500);
}

TEST_F(ApplyLoopTest, RepeatedEventIdsAreConsumedButNotAppliedAcrossRestarts) {
  // 300 events with ids, then the first 100 again (a producer retry across its restart, or
  // another producer), then, after a restart of the loop, the next 100 again.
  auto produce_events = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      v1::Event event;
      event.set_event_id(absl::StrCat("txn/T1/", i));
      ASSERT_TRUE(
          producer_->Produce("in", absl::StrCat("key", i % 10), event.SerializeAsString(), nullptr)
              .ok());
    }
    ASSERT_TRUE(producer_->Flush(absl::Seconds(30)).ok());
  };
  produce_events(0, 300);
  produce_events(0, 100);
  auto store = OpenStore("repeats");
  {
    auto loop = MakeLoop(store.get(), 0, 1);
    ASSERT_TRUE(loop->Start().ok());
    RunUntilCaughtUp(*loop);
    int64_t dropped = 0;
    int64_t applied = 0;
    for (const auto& [tp, progress] : loop->Progress()) {
      dropped += progress.duplicates_dropped_total;
      applied += progress.applied_total;
      EXPECT_EQ(progress.misrouted_dropped_total, 0);
    }
    EXPECT_EQ(dropped, 100);
    EXPECT_EQ(applied, 300);
  }
  EXPECT_EQ(TotalCount(*store), 300);
  produce_events(100, 200);
  auto loop = MakeLoop(store.get(), 0, 1);
  ASSERT_TRUE(loop->Start().ok());
  RunUntilCaughtUp(*loop);
  EXPECT_EQ(TotalCount(*store), 300) << "repeats after a restart are dropped too";
  EXPECT_EQ(CommittedRecords(*store), 500) << "every record is consumed";
  absl::StatusOr<DropCounts> drops = ReadDropCounts(*store, "in");
  ASSERT_TRUE(drops.ok()) << drops.status();
  EXPECT_EQ(drops->duplicates, 200);
  EXPECT_EQ(store->OutboxDepth(), 300) << "a dropped record derives nothing";
}

TEST_F(ApplyLoopTest, TwoReplicasSplitThePartitions) {
  ProduceRecords(0, 800);
  auto store0 = OpenStore("replica0");
  auto store1 = OpenStore("replica1");
  auto loop0 = MakeLoop(store0.get(), 0, 2);
  auto loop1 = MakeLoop(store1.get(), 1, 2);
  ASSERT_TRUE(loop0->Start().ok());
  ASSERT_TRUE(loop1->Start().ok());
  RunUntilCaughtUp(*loop0);
  RunUntilCaughtUp(*loop1);
  EXPECT_EQ(TotalCount(*store0) + TotalCount(*store1), 800);
  auto offsets0 = store0->Offsets();
  auto offsets1 = store1->Offsets();
  ASSERT_TRUE(offsets0.ok() && offsets1.ok());
  EXPECT_EQ(offsets0->size() + offsets1->size(), 4u);
  for (const auto& [tp, offset] : *offsets0) EXPECT_EQ(tp.partition % 2, 0);
  for (const auto& [tp, offset] : *offsets1) EXPECT_EQ(tp.partition % 2, 1);
}

TEST_F(ApplyLoopTest, PartialOffsetsAreCorruptionNotAGuess) {
  auto store = OpenStore("partial");
  StateBatch batch(store.get());
  batch.SetNextOffset({"in", 0}, 0);
  ASSERT_TRUE(store->Commit(batch).ok());
  auto loop = MakeLoop(store.get(), 0, 1);
  absl::Status status = loop->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("in/1"), std::string::npos) << status;
}

TEST_F(ApplyLoopTest, PublisherDeliversTheOutboxThenAdvancesTheCursor) {
  ProduceRecords(0, 300);
  auto store = OpenStore("publisher");
  auto loop = MakeLoop(store.get(), 0, 1);
  ASSERT_TRUE(loop->Start().ok());
  RunUntilCaughtUp(*loop);
  ASSERT_EQ(store->OutboxDepth(), 300);
  OutboxPublisher publisher(store.get(), producer_.get(), {.batch_max_entries = 128});
  size_t published = 0;
  while (store->OutboxDepth() > 0) {
    auto n = publisher.PublishOnce();
    ASSERT_TRUE(n.ok()) << n.status();
    published += *n;
  }
  EXPECT_EQ(published, 300u);
  auto consumer = PartitionConsumer::Create(config_, "check");
  ASSERT_TRUE((*consumer)->Assign({{{"derived", 0}, 0}}).ok());
  std::vector<Record> records;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (records.size() < 300 && absl::Now() < deadline) {
    ASSERT_TRUE((*consumer)->Poll(500, absl::Milliseconds(100), &records).ok());
  }
  std::set<std::string> ids;
  for (const Record& r : records) ids.insert(std::string(r.value));
  EXPECT_EQ(records.size(), 300u);
  EXPECT_EQ(ids.size(), 300u);
}

// Batches of 100 from a backlog of 1,000, committed together: no commit while full batches keep
// coming (nothing in the store yet), then one at the first batch that is not full.
ApplyLoopOptions CoalescingOptions() {
  return {.topics = {"in"},
          .batch_max_records = 100,
          .poll_timeout = absl::Milliseconds(50),
          .commit_max_records = 1000000,
          .commit_max_delay = absl::Hours(1),
          .prefetch = false};  // batches exactly as polled
}

TEST_F(ApplyLoopTest, UnderABacklogOneCommitCoversSeveralBatches) {
  ProduceRecords(0, 1000);
  auto store = OpenStore("coalesce");
  auto loop = MakeLoop(store.get(), &applier_, CoalescingOptions());
  ASSERT_TRUE(loop->Start().ok());
  int64_t applied = 0;
  int full_batches = 0;
  while (applied < 1000) {
    auto n = loop->RunOnce();
    ASSERT_TRUE(n.ok()) << n.status();
    applied += static_cast<int64_t>(*n);
    if (*n < 100) break;
    ++full_batches;
    EXPECT_EQ(CommittedRecords(*store), 0) << "committed after a full batch";
    EXPECT_EQ(TotalCount(*store), 0);
    EXPECT_EQ(store->OutboxDepth(), 0);
    EXPECT_EQ(loop->CommitCount(), 0);
  }
  EXPECT_GE(full_batches, 2) << "the backlog should fill several batches";
  RunUntilCaughtUp(*loop);
  EXPECT_EQ(TotalCount(*store), 1000);
  EXPECT_EQ(CommittedRecords(*store), 1000);
  EXPECT_EQ(store->OutboxDepth(), 1000);
  EXPECT_LT(loop->CommitCount(), full_batches);

  // The same log committed batch by batch gives the same state.
  auto every_batch = OpenStore("every-batch");
  auto plain = MakeLoop(every_batch.get(), 0, 1);
  ASSERT_TRUE(plain->Start().ok());
  RunUntilCaughtUp(*plain);
  EXPECT_GT(plain->CommitCount(), loop->CommitCount());
  EXPECT_EQ(*every_batch->Digest(), *store->Digest());
}

TEST_F(ApplyLoopTest, ABacklogCommitsOnceCommitMaxRecordsArePendingOrTheDelayHasPassed) {
  ProduceRecords(0, 1000);
  auto store = OpenStore("commit-max");
  ApplyLoopOptions options = CoalescingOptions();
  options.commit_max_records = 250;
  auto loop = MakeLoop(store.get(), &applier_, options);
  ASSERT_TRUE(loop->Start().ok());
  for (int64_t expected : {0, 0, 300, 300, 300, 600}) {
    ASSERT_EQ(*loop->RunOnce(), 100u);
    EXPECT_EQ(CommittedRecords(*store), expected);
  }
  EXPECT_EQ(loop->CommitCount(), 2);

  auto delayed = OpenStore("commit-delay");
  options = CoalescingOptions();
  options.commit_max_delay = absl::ZeroDuration();  // every batch is past it
  auto eager = MakeLoop(delayed.get(), &applier_, options);
  ASSERT_TRUE(eager->Start().ok());
  for (int64_t expected : {100, 200, 300}) {
    ASSERT_EQ(*eager->RunOnce(), 100u);
    EXPECT_EQ(CommittedRecords(*delayed), expected);
  }
}

// With the prefetch thread (the default), batches are whatever it gathered: coalesced or not,
// every record is applied once and the state is the same as committing every batch.
TEST_F(ApplyLoopTest, CoalescedCommitsWithPrefetchGiveTheSameState) {
  ProduceRecords(0, 1000);
  auto store = OpenStore("coalesce-prefetch");
  ApplyLoopOptions options = CoalescingOptions();
  options.prefetch = true;
  auto loop = MakeLoop(store.get(), &applier_, options);
  ASSERT_TRUE(loop->Start().ok());
  int batches = 0;
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    auto applied = loop->RunOnce();
    ASSERT_TRUE(applied.ok()) << applied.status();
    if (*applied > 0) ++batches;
    if (*applied == 0 && *loop->CaughtUp()) break;
  }
  EXPECT_EQ(TotalCount(*store), 1000);
  EXPECT_EQ(CommittedRecords(*store), 1000);
  EXPECT_LE(loop->CommitCount(), batches);
  auto every_batch = OpenStore("coalesce-prefetch-every-batch");
  auto plain = MakeLoop(every_batch.get(), 0, 1);
  ASSERT_TRUE(plain->Start().ok());
  RunUntilCaughtUp(*plain);
  EXPECT_EQ(*every_batch->Digest(), *store->Digest());
}

TEST_F(ApplyLoopTest, WhatWasAppliedButNotCommittedIsAppliedAgainOnce) {
  ProduceRecords(0, 1000);
  auto store = OpenStore("uncommitted");
  {
    auto loop = MakeLoop(store.get(), &applier_, CoalescingOptions());
    ASSERT_TRUE(loop->Start().ok());
    for (int i = 0; i < 3; ++i) ASSERT_EQ(*loop->RunOnce(), 100u);
    ASSERT_EQ(CommittedRecords(*store), 0);
  }  // dropped with 300 records applied and not committed: a crash
  auto loop = MakeLoop(store.get(), &applier_, CoalescingOptions());
  ASSERT_TRUE(loop->Start().ok());
  ASSERT_EQ(*loop->RunOnce(), 100u);
  std::atomic<bool> stop{true};
  ASSERT_TRUE(loop->Run(stop).ok());  // a stop commits what is pending
  EXPECT_EQ(CommittedRecords(*store), 100);
  EXPECT_EQ(TotalCount(*store), 100);
  RunUntilCaughtUp(*loop);
  EXPECT_EQ(TotalCount(*store), 1000);
  EXPECT_EQ(store->OutboxDepth(), 1000);
}

// Fails on the 151st record, in the middle of the second batch (a bug in apply logic).
class FailingApplier : public CountingApplier {
 public:
  absl::Status Apply(const Record& record, StateBatch& batch) override {
    if (++seen_ == 151) return absl::InternalError("bug");
    return CountingApplier::Apply(record, batch);
  }

 private:
  int seen_ = 0;
};

TEST_F(ApplyLoopTest, AFailedBatchIsNeverCommittedAndStopsTheLoop) {
  ProduceRecords(0, 1000);
  auto store = OpenStore("failing");
  FailingApplier failing;
  auto loop = MakeLoop(store.get(), &failing, CoalescingOptions());
  ASSERT_TRUE(loop->Start().ok());
  ASSERT_EQ(*loop->RunOnce(), 100u);
  absl::StatusOr<size_t> failed = loop->RunOnce();
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kInternal) << failed.status();
  EXPECT_NE(failed.status().message().find("apply in/"), std::string::npos) << failed.status();
  EXPECT_EQ(loop->RunOnce().status(), failed.status()) << "the loop stays stopped";
  EXPECT_EQ(loop->Commit(), failed.status());
  EXPECT_EQ(CommittedRecords(*store), 0);
  EXPECT_EQ(TotalCount(*store), 0);
  EXPECT_EQ(store->OutboxDepth(), 0);
}

}  // namespace
}  // namespace tongka::state_store
