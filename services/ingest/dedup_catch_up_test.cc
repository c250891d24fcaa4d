// Proves where ingest's catch-up starts (CatchUpBeforeServing) against a real broker and a real
// RocksDB, reopened between runs as a restart would: a catch-up that stopped partway resumes from
// where it began, not after the entries its fastest partition recorded; a record Kafka has but the
// index lacks (a failed index write) is caught up at the next start however much was recorded
// after it; the mark is cleared once a catch-up has replayed everything.
#include "services/ingest/dedup_catch_up.h"

#include <glog/logging.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/ownership.h"
#include "libs/event_log/producer.h"
#include "libs/event_log/testing/test_broker.h"
#include "proto/events.pb.h"
#include "services/ingest/dedup_index.h"

namespace tongka::ingest {
namespace {

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

constexpr int32_t kPartitions = 2;

// The first test card whose key the producer's murmur2 partitioner puts in `partition`, found by
// computing the hash, so each event is written once, where the test needs it.
std::string CardIn(int32_t partition) {
  for (int k = 1; k < 1000; ++k) {
    std::string card = absl::StrCat("31000000000", 10000 + k);
    if (event_log::PartitionForKey(card, kPartitions) == partition) return card;
  }
  LOG(FATAL) << "no test card hashes to partition " << partition;
}

// A tap event as ingest appends it (keyed by its card, here one in `partition`), recorded now.
v1::Event TapEvent(int32_t partition, const std::string& terminal, uint64_t seq) {
  const int64_t now_us = absl::ToUnixMicros(absl::Now());
  v1::Event event;
  event.set_event_id(absl::StrCat("txn/", terminal, "/", seq));
  event.set_occurred_at_us(now_us - 1000);
  event.set_recorded_at_us(now_us);
  v1::TxnCommon* txn = event.mutable_tap()->mutable_txn();
  txn->set_card_id(CardIn(partition));
  txn->set_terminal_id(terminal);
  txn->set_terminal_seq(seq);
  txn->set_mac("0123456789abcdef");
  event.mutable_tap()->set_amount_fen(200);
  return event;
}

class DedupCatchUpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::filesystem::remove_all(TempPath("kafka"));
    auto kafka = event_log::LocalKafka::Start(TempPath("kafka"));
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = kafka->release();
  }
  static void TearDownTestSuite() {
    delete kafka_;
    kafka_ = nullptr;
  }

  void SetUp() override {
    topic_ = absl::StrCat("tongka.txn.",
                          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(event_log::EnsureTopics({.bootstrap_servers = kafka_->bootstrap()},
                                        {{.name = topic_, .partitions = kPartitions}},
                                        absl::Seconds(60))
                    .ok());
    auto producer = event_log::Producer::Create({.bootstrap_servers = kafka_->bootstrap()});
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = std::move(*producer);
    store_dir_ = TempPath(topic_);
    std::filesystem::remove_all(store_dir_);
    Reopen();
  }

  // Closes and reopens the index's store: what a restart sees.
  void Reopen() {
    index_.reset();
    store_.reset();
    auto store = state_store::StateStore::Open(DedupIndex::StoreOptions(store_dir_));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    index_ = std::make_unique<DedupIndex>(store_.get());
  }

  // Appends `event` once, keyed by its card as ingest does, and checks that it landed in
  // `partition`.
  void Append(const v1::Event& event, int32_t partition) {
    auto delivered = producer_->ProduceSync(topic_, event.tap().txn().card_id(),
                                            event.SerializeAsString(), absl::Seconds(30));
    ASSERT_TRUE(delivered.ok()) << delivered.status();
    ASSERT_EQ(delivered->partition, partition);
  }

  absl::StatusOr<CatchUpStats> CatchUp(absl::Duration timeout = absl::Seconds(60)) {
    return CatchUpBeforeServing({.bootstrap_servers = kafka_->bootstrap()}, topic_, index_.get(),
                                {.now = absl::Now(),
                                 .horizon = absl::Hours(24 * 30),
                                 .margin = absl::Seconds(1),
                                 .timeout = timeout});
  }

  bool Known(const v1::Event& event) {
    auto found = index_->Lookup(event.event_id());
    EXPECT_TRUE(found.ok()) << found.status();
    return found.ok() && found->has_value();
  }

  static event_log::LocalKafka* kafka_;
  std::string topic_;
  std::unique_ptr<event_log::Producer> producer_;
  std::string store_dir_;
  std::unique_ptr<state_store::StateStore> store_;
  std::unique_ptr<DedupIndex> index_;
};

event_log::LocalKafka* DedupCatchUpTest::kafka_ = nullptr;

TEST_F(DedupCatchUpTest, ACatchUpThatStoppedPartwayResumesWhereItBegan) {
  // x in partition 0; y in partition 1, more than the margin later.
  const v1::Event x = TapEvent(0, "310000-BUS-000001", 1);
  Append(x, 0);
  absl::SleepFor(absl::Seconds(3));
  const v1::Event y = TapEvent(1, "310000-BUS-000002", 1);
  Append(y, 1);
  // A rebuild of the empty index stops (its timeout, here before its first poll). What a rebuild
  // stopped after a first commit that held partition 1's records only leaves is then made by
  // hand: y recorded, the newest entry y's, x not. (How far the mark follows the partitions is
  // ReplayedThroughUsTest's.)
  auto stopped = CatchUp(absl::ZeroDuration());
  ASSERT_EQ(stopped.status().code(), absl::StatusCode::kDeadlineExceeded) << stopped.status();
  auto mark = index_->CatchUpMarkUs();
  ASSERT_TRUE(mark.ok());
  EXPECT_TRUE(mark->has_value()) << "a catch-up that stopped left no mark";
  ASSERT_TRUE(index_->Record({{y.event_id(), {}, y.recorded_at_us()}}).ok());

  // The next start replays from where the stopped one began, not from y.
  Reopen();
  auto resumed = CatchUp();
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(Known(x)) << "x is in Kafka but was never caught up (records read "
                        << resumed->records_read << ")";
  EXPECT_TRUE(Known(y));
  mark = index_->CatchUpMarkUs();
  ASSERT_TRUE(mark.ok());
  EXPECT_FALSE(mark->has_value()) << "a complete catch-up left its mark";

  // With nothing unresolved, the start after that replays only the tail: from y − margin.
  Reopen();
  auto tail = CatchUp();
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(tail->records_read, 1);
}

TEST_F(DedupCatchUpTest, ARecordTheIndexFailedToKeepIsCaughtUpAtTheNextStart) {
  // Kafka took x, but its index write failed (NoteUnresolved, as the IngestApi does then); later
  // writes succeed, more than the margin later.
  const v1::Event x = TapEvent(0, "310000-BUS-000001", 7);
  Append(x, 0);
  index_->NoteUnresolved(x.recorded_at_us());
  absl::SleepFor(absl::Seconds(3));
  const v1::Event y = TapEvent(0, "310000-BUS-000002", 7);
  Append(y, 0);
  ASSERT_TRUE(index_->Record({{y.event_id(), {}, y.recorded_at_us()}}).ok());

  Reopen();
  auto caught_up = CatchUp();
  ASSERT_TRUE(caught_up.ok()) << caught_up.status();
  EXPECT_TRUE(Known(x)) << "x is in Kafka but was never caught up (records read "
                        << caught_up->records_read << ")";
  auto mark = index_->CatchUpMarkUs();
  ASSERT_TRUE(mark.ok());
  EXPECT_FALSE(mark->has_value());
}

TEST(ReplayedThroughUsTest, TheSlowestPartitionStillReplayingSetsIt) {
  // Partition 0 has got to 500, partition 1 to 900, partition 2 is done (at 100).
  const std::map<int32_t, int64_t> newest = {{0, 500}, {1, 900}, {2, 100}};
  EXPECT_EQ(ReplayedThroughUs(newest, {{0, 7}, {1, 9}}), 500);
  EXPECT_EQ(ReplayedThroughUs(newest, {{1, 9}}), 900);
  // One still replaying that has replayed nothing holds it back; none left: nothing to say.
  EXPECT_EQ(ReplayedThroughUs(newest, {{0, 7}, {3, 0}}), std::nullopt);
  EXPECT_EQ(ReplayedThroughUs(newest, {}), std::nullopt);
}

TEST_F(DedupCatchUpTest, TheMarkOnlyGoesDownWhileServing) {
  index_->NoteUnresolved(2'000'000);
  index_->NoteUnresolved(3'000'000);  // later, higher: the earlier one still needs the replay
  auto mark = index_->CatchUpMarkUs();
  ASSERT_TRUE(mark.ok());
  EXPECT_EQ(mark->value_or(0), 2'000'000);
  index_->NoteUnresolved(1'000'000);
  Reopen();
  mark = index_->CatchUpMarkUs();
  ASSERT_TRUE(mark.ok());
  EXPECT_EQ(mark->value_or(0), 1'000'000) << "the lowered mark was not kept across a restart";
}

}  // namespace
}  // namespace tongka::ingest
