// Proves a real Prometheus server (Debian's /usr/bin/prometheus, the version production runs) can
// scrape the exposer and reads back exactly the values and label values we exported, escapes
// included. The test starts Prometheus as a child process with a generated config (1 s scrape
// interval, storage under TEST_TMPDIR, a free local port), polls its HTTP API with a deadline until
// the target is up and each query answers as expected, then stops it with SIGTERM. Nothing waits
// on a fixed sleep; the deadline is generous because Prometheus' start-up time varies by machine.

#include <glog/logging.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/metrics/http_exposer.h"
#include "libs/metrics/metrics.h"
#include "libs/metrics/test_support.h"
#include "libs/testing/subprocess.h"

namespace tongka::metrics {
namespace {

constexpr std::chrono::seconds kDeadline(60);

class PrometheusScrapeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prometheus_binary_ = test_support::FindTool("prometheus");
    ASSERT_FALSE(prometheus_binary_.empty()) << test_support::MissingToolMessage("prometheus");
  }

  // Starts Prometheus scraping 127.0.0.1:`target_port` every second.
  void StartPrometheus(int target_port) {
    const std::string dir = test_support::TestTmpDir();
    const std::string config_path = absl::StrCat(dir, "/prometheus.yml");
    std::ofstream(config_path) << "global:\n"
                                  "  scrape_interval: 1s\n"
                                  "  scrape_timeout: 1s\n"
                                  "scrape_configs:\n"
                                  "  - job_name: tongka\n"
                                  "    static_configs:\n"
                                  "      - targets: ['127.0.0.1:"
                               << target_port << "']\n";
    prometheus_port_ = test_support::PickFreeTcpPort();
    auto prometheus = tongka::testing::Subprocess::Start(
        {
            prometheus_binary_,
            absl::StrCat("--config.file=", config_path),
            absl::StrCat("--storage.tsdb.path=", dir, "/prometheus_data"),
            absl::StrCat("--web.listen-address=127.0.0.1:", prometheus_port_),
        },
        {}, absl::StrCat(dir, "/prometheus.log"));
    ASSERT_TRUE(prometheus.ok()) << prometheus.status();
    prometheus_ = std::move(*prometheus);
  }

  // GETs `path` from Prometheus' API; "" while it is not answering yet.
  std::string ApiGet(const std::string& path, const httplib::Params& params = {}) {
    httplib::Client client("127.0.0.1", prometheus_port_);
    client.set_connection_timeout(1);
    client.set_read_timeout(5);
    const httplib::Result result = client.Get(path, params, httplib::Headers{});
    if (!result || result->status != 200) return "";
    return result->body;
  }

  // Calls `fetch` until `done` accepts its answer or the deadline passes; returns the last answer.
  // Fails fast, with Prometheus' log, if Prometheus exits.
  std::string PollUntil(const std::function<std::string()>& fetch,
                        const std::function<bool(const std::string&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    std::string answer;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!prometheus_->Running()) {
        ADD_FAILURE() << "prometheus exited early; its log:\n" << prometheus_->Log();
        return answer;
      }
      answer = fetch();
      if (done(answer)) return answer;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "deadline passed; last answer: " << answer << "\nprometheus log:\n"
                  << prometheus_->Log();
    return answer;
  }

  // The result of the instant query `promql` once it contains `expected`.
  std::string QueryUntilContains(const std::string& promql, const std::string& expected) {
    return PollUntil(
        [&] {
          return ApiGet("/api/v1/query", {{"query", promql}});
        },
        [&](const std::string& answer) { return absl::StrContains(answer, expected); });
  }

  std::string prometheus_binary_;
  int prometheus_port_ = 0;
  std::unique_ptr<tongka::testing::Subprocess> prometheus_;
};

TEST_F(PrometheusScrapeTest, PrometheusScrapesTheValuesWeSet) {
  Registry registry;
  Gauge& value =
      registry.AddGauge("tongka_test_scrape_value", "A value Prometheus must read back.");
  value.Set(42.5);
  registry.AddCounter("tongka_test_events_total", "Events with an awkward label.", {"note"})
      .WithLabels({"quote \" backslash \\ newline \n end"})
      .Increment(7);
  Histogram& latency =
      registry.AddHistogram("tongka_test_latency_seconds", "Latency.", DefaultLatencyBuckets());
  for (double seconds : {0.002, 0.02, 0.2}) latency.Observe(seconds);

  HttpExposerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  HttpExposer exposer(&registry, options);
  ASSERT_TRUE(exposer.Start().ok());
  StartPrometheus(exposer.port());

  const std::string targets = PollUntil(
      [&] { return ApiGet("/api/v1/targets"); },
      [](const std::string& answer) { return absl::StrContains(answer, "\"health\":\"up\""); });
  ASSERT_TRUE(absl::StrContains(targets, "\"health\":\"up\"")) << targets;

  QueryUntilContains("tongka_test_scrape_value", "\"42.5\"]");
  // The label value arrives intact: JSON escapes these three characters the way the exposition
  // format does, so the expected text is the exposition's escaped form.
  const std::string events = QueryUntilContains("tongka_test_events_total", "\"7\"]");
  EXPECT_TRUE(absl::StrContains(events, R"("note":"quote \" backslash \\ newline \n end")"))
      << events;
  QueryUntilContains("tongka_test_latency_seconds_count", "\"3\"]");
  QueryUntilContains("tongka_test_latency_seconds_bucket{le=\"0.025\"}", "\"2\"]");
  QueryUntilContains("process_resident_memory_bytes > 0", "\"job\":\"tongka\"");

  // A later change shows up too: Prometheus keeps scraping, it did not read a one-off.
  value.Set(-7);
  QueryUntilContains("tongka_test_scrape_value", "\"-7\"]");

  const int status = prometheus_->TerminateAndWait(absl::Seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << prometheus_->Log();
}

}  // namespace
}  // namespace tongka::metrics
