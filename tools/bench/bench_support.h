// What every Tongka benchmark shares: exiting on a failed step, a real Kafka broker in a work dir
// with the benchmark's topics, and the order statistics its figures are reported as.
//
// Benchmarks run on a noisy 2-core machine with the broker on it, so they alternate the measured
// path and its baseline over rounds and report medians (and latency percentiles).
//
// Example:
//   std::string work_dir = absl::GetFlag(FLAGS_work_dir);
//   auto kafka = StartBroker(&work_dir, {{.name = "t", .partitions = 8}});
//   double rate = Median(rates);
#ifndef TONGKA_TOOLS_BENCH_BENCH_SUPPORT_H_
#define TONGKA_TOOLS_BENCH_BENCH_SUPPORT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/kafka_config.h"
#include "libs/event_log/testing/test_broker.h"

namespace tongka::bench {

// A benchmark's main(): parses its flags, logs to stderr, and returns what `run` returns.
int RunBenchmark(int argc, char** argv, int (*run)());

// Prints `what: status` and exits with status 1 unless `status` is OK.
void ExitUnlessOk(const absl::Status& status, const char* what);

// A new temp dir under /tmp for a benchmark's files.
std::string MakeWorkDir();

// Starts a local broker under `*work_dir` and creates `topics`. An empty `*work_dir` becomes a
// new temp dir (the benchmark keeps its other files there too). Exits on failure.
std::unique_ptr<event_log::LocalKafka> StartBroker(std::string* work_dir,
                                                   const std::vector<event_log::TopicSpec>& topics);

// CPU seconds (user + system) the broker StartBroker started under `work_dir` has used so far,
// read from /proc/<pid>/stat with the pid of <work_dir>/kafka/kafka.pid; -1 if either cannot be
// read (the broker gone, not Linux). For a phase's broker CPU, take the difference.
double BrokerCpuSeconds(const std::string& work_dir);

// The raw baseline of the consuming benchmarks: consumes `events` records of `topic`'s partitions
// 0..partitions-1 from offset 0 with librdkafka alone (the project's consumer config, one message
// at a time, counted and dropped) and returns records per second. Exits on a consumer error.
double RawConsumeRate(const event_log::KafkaClientConfig& config, const std::string& topic,
                      int32_t partitions, int64_t events);

// The median of `values` (the upper one of an even count); `values` must not be empty.
double Median(std::vector<double> values);

// The value at fraction `p` (0..1) of the sorted `values` (floor rank); not empty.
double Percentile(std::vector<double> values, double p);

}  // namespace tongka::bench

#endif  // TONGKA_TOOLS_BENCH_BENCH_SUPPORT_H_
