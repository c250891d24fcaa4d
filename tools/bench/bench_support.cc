#include "tools/bench/bench_support.h"

#include <glog/logging.h>
#include <librdkafka/rdkafkacpp.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tongka::bench {

int RunBenchmark(int argc, char** argv, int (*run)()) {
  absl::ParseCommandLine(argc, argv);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  return run();
}

void ExitUnlessOk(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  std::cerr << what << ": " << status << std::endl;
  std::exit(1);
}

std::string MakeWorkDir() {
  char templ[] = "/tmp/tongka-bench.XXXXXX";
  CHECK(mkdtemp(templ) != nullptr) << "mkdtemp";
  return templ;
}

std::unique_ptr<event_log::LocalKafka> StartBroker(
    std::string* work_dir, const std::vector<event_log::TopicSpec>& topics) {
  if (work_dir->empty()) *work_dir = MakeWorkDir();
  auto kafka = event_log::LocalKafka::Start(*work_dir + "/kafka");
  ExitUnlessOk(kafka.status(), "kafka");
  ExitUnlessOk(event_log::EnsureTopics({.bootstrap_servers = (*kafka)->bootstrap()}, topics,
                                       absl::Seconds(60)),
               "topics");
  return std::move(*kafka);
}

double BrokerCpuSeconds(const std::string& work_dir) {
  std::ifstream pid_file(work_dir + "/kafka/kafka.pid");
  int64_t pid = 0;
  if (!(pid_file >> pid) || pid <= 0) return -1;
  std::ifstream stat_file(absl::StrCat("/proc/", pid, "/stat"));
  std::stringstream stat;
  stat << stat_file.rdbuf();
  // Fields after the command, which is in parentheses and may hold spaces: state is field 3,
  // utime and stime (clock ticks) fields 14 and 15.
  const std::string text = stat.str();
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  int64_t utime = -1;
  int64_t stime = -1;
  for (int number = 3; fields >> field && number <= 15; ++number) {
    if (number == 14) utime = std::stoll(field);
    if (number == 15) stime = std::stoll(field);
  }
  if (utime < 0 || stime < 0) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double RawConsumeRate(const event_log::KafkaClientConfig& config, const std::string& topic,
                      int32_t partitions, int64_t events) {
  auto conf = event_log::BuildConsumerConf(config, "bench-raw");
  ExitUnlessOk(conf.status(), "raw consumer conf");
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf->get(), error));
  CHECK(consumer != nullptr) << error;
  std::vector<RdKafka::TopicPartition*> assignment;
  for (int32_t p = 0; p < partitions; ++p) {
    assignment.push_back(RdKafka::TopicPartition::create(topic, p, 0));
  }
  CHECK_EQ(consumer->assign(assignment), RdKafka::ERR_NO_ERROR);
  RdKafka::TopicPartition::destroy(assignment);
  int64_t seen = 0;
  int64_t bytes = 0;
  absl::Time start = absl::Now();
  while (seen < events) {
    std::unique_ptr<RdKafka::Message> message(consumer->consume(100));
    if (message->err() == RdKafka::ERR_NO_ERROR) {
      ++seen;
      bytes += static_cast<int64_t>(message->len());
    } else if (message->err() != RdKafka::ERR__TIMED_OUT) {
      LOG(FATAL) << "raw consume: " << message->errstr();
    }
  }
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  consumer->close();
  LOG(INFO) << "raw: " << seen << " events, " << bytes << " bytes in " << seconds << " s";
  return static_cast<double>(seen) / seconds;
}

double Median(std::vector<double> values) { return Percentile(std::move(values), 0.5); }

double Percentile(std::vector<double> values, double p) {
  CHECK(!values.empty());
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(p * values.size()))];
}

}  // namespace tongka::bench
