// Kafka brokers for tests and benchmarks, two ways behind one interface.
//
//  - EmbeddedBroker: librdkafka's in-process mock cluster. Fast, for unit tests of the Kafka
//    wrappers only. In librdkafka 2.0.2 it keeps at most ~5 MiB or 100k batches per partition and
//    silently drops the oldest, writes no transaction markers, and lives in memory: never use it
//    for replay, durability, restart or exactly-once tests.
//  - LocalKafka: a real single-node Apache Kafka (KRaft) broker started by tools/kafka/kafka.sh on
//    a free loopback port with its own data dir. For integration, durability and fault tests; it
//    can be stopped, killed and restarted on the same address with its data.
//
// Thread-safety: construct and destroy on one thread; bootstrap() may be read from any thread.
// Failure: Start errors come back as Status (a missing JDK or broker jars says to run
// tools/setup.sh). The destructor stops the broker.
//
// Example:
//   auto kafka = LocalKafka::Start(::testing::TempDir() + "/kafka");
//   ASSERT_TRUE(kafka.ok()) << kafka.status();
//   ASSERT_TRUE((*kafka)->CreateTopic("tongka.txn", 8).ok());
//   Producer::Create({.bootstrap_servers = (*kafka)->bootstrap()});
#ifndef TONGKA_LIBS_EVENT_LOG_TESTING_TEST_BROKER_H_
#define TONGKA_LIBS_EVENT_LOG_TESTING_TEST_BROKER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_mock_cluster_s rd_kafka_mock_cluster_t;

namespace tongka::event_log {

class TestBroker {
 public:
  virtual ~TestBroker() = default;
  // host:port list for bootstrap.servers.
  virtual const std::string& bootstrap() const = 0;
  // Creates a topic with replication 1 (the test clusters are single-node or mock).
  virtual absl::Status CreateTopic(const std::string& name, int32_t partitions) = 0;
};

class EmbeddedBroker : public TestBroker {
 public:
  static absl::StatusOr<std::unique_ptr<EmbeddedBroker>> Start(int broker_count = 1);
  ~EmbeddedBroker() override;

  const std::string& bootstrap() const override { return bootstrap_; }
  absl::Status CreateTopic(const std::string& name, int32_t partitions) override;

  // Takes every broker down (connections dropped, new ones refused) or brings them back:
  // "Kafka is unreachable" for tests of the clients' failure paths.
  absl::Status SetDown(bool down);

 private:
  EmbeddedBroker(rd_kafka_t* handle, rd_kafka_mock_cluster_t* cluster);

  rd_kafka_t* handle_;
  rd_kafka_mock_cluster_t* cluster_;
  std::string bootstrap_;
};

class LocalKafka : public TestBroker {
 public:
  // Starts a broker whose data lives in `data_dir` (created if needed). If the dir holds a broker
  // that was stopped or killed, it is restarted on the same port with its data.
  static absl::StatusOr<std::unique_ptr<LocalKafka>> Start(const std::string& data_dir);
  ~LocalKafka() override;

  const std::string& bootstrap() const override { return bootstrap_; }
  absl::Status CreateTopic(const std::string& name, int32_t partitions) override;

  // Clean stop (SIGTERM, then SIGKILL after a grace period); Restart() brings it back.
  absl::Status Stop();
  // Brings a stopped broker back on the same address with the same data.
  absl::Status Restart();

 private:
  explicit LocalKafka(std::string data_dir) : data_dir_(std::move(data_dir)) {}
  absl::Status RunScript(const std::string& verb, std::string* output);

  std::string data_dir_;
  std::string bootstrap_;
  bool running_ = false;
};

}  // namespace tongka::event_log

#endif  // TONGKA_LIBS_EVENT_LOG_TESTING_TEST_BROKER_H_
