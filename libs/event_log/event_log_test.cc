// Proves the Kafka wrappers on librdkafka's embedded mock cluster: safety properties cannot be
// overridden, records round-trip with their keys through the idempotent producer and a statically
// assigned consumer, a key always lands on the same partition number in co-partitioned topics,
// static ownership covers every partition exactly once, records produced to caller-owned
// delivery targets through a topic handle are each reported once, and a stored offset outside the
// log stops the consumer with OUT_OF_RANGE instead of silently skipping. (The mock cluster
// auto-creates topics, so unknown-topic behaviour is proved against the real broker in
// local_kafka_test.)
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/ownership.h"
#include "libs/event_log/partition_consumer.h"
#include "libs/event_log/producer.h"
#include "libs/event_log/testing/test_broker.h"

namespace tongka::event_log {
namespace {

class EventLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = EmbeddedBroker::Start();
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
    config_.bootstrap_servers = broker_->bootstrap();
  }

  std::vector<Record> ReadAll(const std::vector<StartPosition>& positions, size_t expected) {
    auto consumer = PartitionConsumer::Create(config_, "test");
    EXPECT_TRUE(consumer.ok()) << consumer.status();
    EXPECT_TRUE((*consumer)->Assign(positions).ok());
    std::vector<Record> records;
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (records.size() < expected && absl::Now() < deadline) {
      absl::Status status = (*consumer)->Poll(1000, absl::Milliseconds(100), &records);
      EXPECT_TRUE(status.ok()) << status;
    }
    // The records outlive the consumer, so they must not hold its messages.
    std::vector<Record> copies;
    for (const Record& r : records) copies.push_back(r.Clone());
    return copies;
  }

  std::unique_ptr<EmbeddedBroker> broker_;
  KafkaClientConfig config_;
};

TEST(KafkaConfigTest, RefusesToOverrideSafetyProperties) {
  KafkaClientConfig config{.bootstrap_servers = "127.0.0.1:1"};
  config.overrides["enable.idempotence"] = "false";
  EXPECT_EQ(BuildProducerConf(config, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  config.overrides = {{"auto.offset.reset", "latest"}};
  EXPECT_EQ(BuildConsumerConf(config, "g").status().code(), absl::StatusCode::kInvalidArgument);
  config.overrides = {{"linger.ms", "not-a-number"}};
  absl::Status status = BuildProducerConf(config, nullptr).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("linger.ms"), std::string::npos) << status;
}

TEST(KafkaConfigTest, TlsNeedsCertificateAndKeyTogetherAndACa) {
  KafkaClientConfig config{.bootstrap_servers = "127.0.0.1:1", .tls_cert_path = "/c.pem"};
  EXPECT_EQ(BuildConsumerConf(config, "g").status().code(), absl::StatusCode::kInvalidArgument);
  config.tls_key_path = "/k.pem";
  absl::Status no_ca = BuildConsumerConf(config, "g").status();
  EXPECT_EQ(no_ca.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_ca.message().find("tls_ca_path"), std::string::npos) << no_ca;
  // With a CA, librdkafka itself checks the files when the client is created, not here.
  config.tls_ca_path = "/ca.pem";
  EXPECT_TRUE(BuildProducerConf(config, nullptr).ok());
}

TEST(KafkaConfigTest, RequiresBootstrapServers) {
  EXPECT_EQ(BuildProducerConf({}, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OwnershipTest, EveryPartitionHasExactlyOneOwner) {
  for (int32_t replicas = 1; replicas <= 5; ++replicas) {
    std::multiset<int32_t> seen;
    for (int32_t k = 0; k < replicas; ++k) {
      auto owned = OwnedPartitions(12, k, replicas);
      ASSERT_TRUE(owned.ok());
      for (int32_t p : *owned) {
        EXPECT_EQ(p % replicas, k);
        seen.insert(p);
      }
    }
    EXPECT_EQ(seen.size(), 12u);
    EXPECT_EQ(std::set<int32_t>(seen.begin(), seen.end()).size(), 12u);
  }
  EXPECT_FALSE(OwnedPartitions(12, 3, 3).ok());
  EXPECT_FALSE(OwnedPartitions(12, 0, 0).ok());
}

TEST_F(EventLogTest, RoundTripsKeyedRecordsInOrderPerPartition) {
  ASSERT_TRUE(broker_->CreateTopic("t", 4).ok());
  auto producer = Producer::Create(config_);
  ASSERT_TRUE(producer.ok()) << producer.status();
  std::atomic<int> delivered{0};
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE((*producer)
                    ->Produce("t", absl::StrCat("card-", i % 37), absl::StrCat(i),
                              [&](const DeliveryResult& r) {
                                EXPECT_TRUE(r.status.ok()) << r.status;
                                EXPECT_GE(r.offset, 0);
                                ++delivered;
                              })
                    .ok());
  }
  ASSERT_TRUE((*producer)->Flush(absl::Seconds(30)).ok());
  EXPECT_EQ(delivered.load(), 1000);

  std::vector<StartPosition> positions;
  for (int32_t p = 0; p < 4; ++p) positions.push_back({{"t", p}, 0});
  std::vector<Record> records = ReadAll(positions, 1000);
  ASSERT_EQ(records.size(), 1000u);
  std::map<std::string, int32_t> partition_of_key;
  std::map<std::string, int> last_value_of_key;
  for (const Record& r : records) {
    auto [it, inserted] = partition_of_key.emplace(std::string(r.key), r.partition);
    EXPECT_EQ(it->second, r.partition) << "key " << r.key << " moved partitions";
    int value = std::stoi(std::string(r.value));
    auto last = last_value_of_key.find(std::string(r.key));
    if (last != last_value_of_key.end()) {
      EXPECT_GT(value, last->second) << "reordered";
    }
    last_value_of_key[std::string(r.key)] = value;
  }
}

TEST_F(EventLogTest, ProduceWaitingRidesOutAFullQueueWithoutLosingCallbacks) {
  ASSERT_TRUE(broker_->CreateTopic("t", 2).ok());
  KafkaClientConfig tiny = config_;
  tiny.overrides = {{"queue.buffering.max.messages", "5"}, {"linger.ms", "20"}};
  auto producer = Producer::Create(tiny);
  ASSERT_TRUE(producer.ok()) << producer.status();
  std::atomic<int> delivered{0};
  bool saw_full_queue = false;
  for (int i = 0; i < 200; ++i) {
    // A plain Produce into a 5-record queue is refused: back-pressure is real here.
    absl::Status plain = (*producer)->Produce("t", absl::StrCat(i), "probe", nullptr);
    saw_full_queue |= plain.code() == absl::StatusCode::kResourceExhausted;
    ASSERT_TRUE((*producer)
                    ->ProduceWaiting(
                        "t", absl::StrCat(i), "v",
                        [&](const DeliveryResult& r) {
                          if (r.status.ok()) ++delivered;
                        },
                        absl::Seconds(30))
                    .ok());
  }
  ASSERT_TRUE((*producer)->Flush(absl::Seconds(30)).ok());
  EXPECT_TRUE(saw_full_queue);
  EXPECT_EQ(delivered.load(), 200);
}

TEST_F(EventLogTest, SameKeyLandsOnSamePartitionNumberAcrossTopics) {
  ASSERT_TRUE(broker_->CreateTopic("txn", 8).ok());
  ASSERT_TRUE(broker_->CreateTopic("cards", 8).ok());
  auto producer = Producer::Create(config_);
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 50; ++i) {
    std::string key = absl::StrCat("3100000000000", i);
    auto a = (*producer)->ProduceSync("txn", key, "x", absl::Seconds(10));
    auto b = (*producer)->ProduceSync("cards", key, "y", absl::Seconds(10));
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->partition, b->partition) << key;
  }
}

// Records produced through a resolved topic handle to caller-owned targets: each target hears
// its own record's report exactly once, with the partition the key's murmur2 hash picks (the
// same as producing by name), and the handle is one per topic.
TEST_F(EventLogTest, TargetsHearTheirOwnReportOnceThroughATopicHandle) {
  ASSERT_TRUE(broker_->CreateTopic("txn", 8).ok());
  auto producer = Producer::Create(config_);
  ASSERT_TRUE(producer.ok()) << producer.status();
  absl::StatusOr<ProducerTopic*> topic = (*producer)->Topic("txn");
  ASSERT_TRUE(topic.ok()) << topic.status();
  EXPECT_EQ(*(*producer)->Topic("txn"), *topic);
  EXPECT_EQ((*topic)->name(), "txn");

  struct Counting final : DeliveryTarget {
    void OnDelivery(const DeliveryResult& result) override {
      ++reports;
      status = result.status;
      partition = result.partition;
      offset = result.offset;
    }
    std::atomic<int> reports{0};
    absl::Status status = absl::UnknownError("no report");
    int32_t partition = -1;
    int64_t offset = -1;
  };
  constexpr int kRecords = 200;
  std::vector<Counting> targets(kRecords);
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(
        (*producer)
            ->Produce(*topic, absl::StrCat("3100000000000", i % 23), absl::StrCat(i), &targets[i])
            .ok());
  }
  ASSERT_TRUE((*producer)->Flush(absl::Seconds(30)).ok());
  std::set<std::pair<int32_t, int64_t>> positions;
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_EQ(targets[i].reports.load(), 1) << i;
    EXPECT_TRUE(targets[i].status.ok()) << targets[i].status;
    EXPECT_TRUE(positions.emplace(targets[i].partition, targets[i].offset).second)
        << "two records reported at one position";
    auto by_name = (*producer)->ProduceSync("txn", absl::StrCat("3100000000000", i % 23), "x",
                                            absl::Seconds(10));
    ASSERT_TRUE(by_name.ok()) << by_name.status();
    EXPECT_EQ(by_name->partition, targets[i].partition) << i;
  }
}

TEST_F(EventLogTest, OffsetBeyondTheLogStopsTheConsumerLoudly) {
  ASSERT_TRUE(broker_->CreateTopic("t", 1).ok());
  auto producer = Producer::Create(config_);
  ASSERT_TRUE(producer.ok());
  ASSERT_TRUE((*producer)->ProduceSync("t", "k", "v", absl::Seconds(10)).ok());
  auto consumer = PartitionConsumer::Create(config_, "test");
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE((*consumer)->Assign({{{"t", 0}, 500}}).ok());
  std::vector<Record> records;
  absl::Status status;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (status.ok() && absl::Now() < deadline) {
    status = (*consumer)->Poll(10, absl::Milliseconds(100), &records);
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kOutOfRange) << status;
  EXPECT_TRUE(records.empty());
}

TEST_F(EventLogTest, WatermarksAndPartitionCount) {
  ASSERT_TRUE(broker_->CreateTopic("t", 3).ok());
  auto producer = Producer::Create(config_);
  ASSERT_TRUE(producer.ok());
  auto delivered = (*producer)->ProduceSync("t", "k", "v", absl::Seconds(10));
  ASSERT_TRUE(delivered.ok());
  auto consumer = PartitionConsumer::Create(config_, "test");
  ASSERT_TRUE(consumer.ok());
  auto count = (*consumer)->PartitionCount("t", absl::Seconds(10));
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 3);
  auto marks = (*consumer)->QueryWatermarks({"t", delivered->partition}, absl::Seconds(10));
  ASSERT_TRUE(marks.ok()) << marks.status();
  EXPECT_EQ(marks->second, 1);
}

}  // namespace
}  // namespace tongka::event_log
