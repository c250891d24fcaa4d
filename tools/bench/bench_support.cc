#include "tools/bench/bench_support.h"

#include <glog/logging.h>
#include <stdlib.h>

#include <algorithm>
#include <iostream>

#include "absl/time/time.h"

namespace tongka::bench {

void ExitUnlessOk(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  std::cerr << what << ": " << status << std::endl;
  std::exit(1);
}

std::unique_ptr<event_log::LocalKafka> StartBroker(
    std::string* work_dir, const std::vector<event_log::TopicSpec>& topics) {
  if (work_dir->empty()) {
    char templ[] = "/tmp/tongka-bench.XXXXXX";
    CHECK(mkdtemp(templ) != nullptr) << "mkdtemp";
    *work_dir = templ;
  }
  auto kafka = event_log::LocalKafka::Start(*work_dir + "/kafka");
  ExitUnlessOk(kafka.status(), "kafka");
  ExitUnlessOk(event_log::EnsureTopics({.bootstrap_servers = (*kafka)->bootstrap()}, topics,
                                       absl::Seconds(60)),
               "topics");
  return std::move(*kafka);
}

double Median(std::vector<double> values) { return Percentile(std::move(values), 0.5); }

double Percentile(std::vector<double> values, double p) {
  CHECK(!values.empty());
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(p * values.size()))];
}

}  // namespace tongka::bench
