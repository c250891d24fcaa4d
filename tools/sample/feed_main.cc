// tongka_sample_feed: appends a deterministic stream of synthetic taps to tongka.txn, keyed by
// card id, through the idempotent producer; creates the sample topics first when asked. Until
// tapgen (tools/tapgen) exists, this is what the quick start and the crash test feed.
#include <glog/logging.h>

#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/producer.h"
#include "tools/sample/sample_state.h"

ABSL_FLAG(std::string, kafka_bootstrap, "", "Kafka bootstrap servers.");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the synthetic stream.");
ABSL_FLAG(uint64_t, start_index, 0, "Index of the first tap to produce.");
ABSL_FLAG(uint64_t, count, 100000, "Number of taps to produce.");
ABSL_FLAG(int64_t, pace_per_second, 0, "Produce at most this many taps per second (0: unpaced).");
ABSL_FLAG(int32_t, create_topics_with_partitions, 0,
          "If > 0, first create tongka.txn and tongka.sample.tally with this many partitions.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  tongka::event_log::KafkaClientConfig kafka{.bootstrap_servers =
                                                 absl::GetFlag(FLAGS_kafka_bootstrap)};
  if (int32_t partitions = absl::GetFlag(FLAGS_create_topics_with_partitions); partitions > 0) {
    absl::Status created = tongka::event_log::EnsureTopics(
        kafka,
        {{.name = tongka::sample::kTxnTopic, .partitions = partitions},
         {.name = tongka::sample::kTallyTopic, .partitions = partitions}},
        absl::Seconds(60));
    if (!created.ok()) {
      LOG(ERROR) << "create topics: " << created;
      return 1;
    }
  }
  auto producer = tongka::event_log::Producer::Create(kafka);
  if (!producer.ok()) {
    LOG(ERROR) << producer.status();
    return 1;
  }
  std::atomic<int64_t> failed{0};
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  const uint64_t start = absl::GetFlag(FLAGS_start_index);
  const uint64_t end = start + absl::GetFlag(FLAGS_count);
  absl::Time began = absl::Now();
  const int64_t pace = absl::GetFlag(FLAGS_pace_per_second);
  for (uint64_t i = start; i < end; ++i) {
    if (pace > 0 && (i - start) % 1000 == 0) {
      // Sleep until this tap's slot: the i-th tap is due at i / pace seconds.
      absl::Time due = began + absl::Seconds(static_cast<double>(i - start) / pace);
      if (due > absl::Now()) absl::SleepFor(due - absl::Now());
    }
    tongka::v1::Event event = tongka::sample::SyntheticTap(seed, i);
    std::string value = event.SerializeAsString();
    absl::Status status = (*producer)->ProduceWaiting(
        tongka::sample::kTxnTopic, event.tap().txn().card_id(), value,
        [&failed](const tongka::event_log::DeliveryResult& r) {
          if (!r.status.ok()) ++failed;
        },
        absl::Minutes(1));
    if (!status.ok()) {
      LOG(ERROR) << status;
      return 1;
    }
  }
  absl::Status flushed = (*producer)->Flush(absl::Seconds(120));
  if (!flushed.ok() || failed.load() > 0) {
    LOG(ERROR) << "not every tap was delivered: " << flushed << ", failed=" << failed.load();
    return 1;
  }
  double seconds = absl::ToDoubleSeconds(absl::Now() - began);
  std::cout << "produced " << (end - start) << " taps in " << seconds << " s ("
            << static_cast<int64_t>((end - start) / std::max(seconds, 1e-9)) << "/s)" << std::endl;
  return 0;
}
