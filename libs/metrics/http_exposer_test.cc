// Proves the exposer serves /metrics, /healthz and /readyz over real HTTP on an ephemeral port,
// that what it serves passes Prometheus' own checker (`promtool check metrics`, lint included),
// that the process metrics hold plausible values, and that binding, option errors and Stop behave
// as its header promises. Every server binds port 0 on 127.0.0.1, so tests never collide.

#include "libs/metrics/http_exposer.h"

#include <glog/logging.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "libs/metrics/metrics.h"
#include "libs/metrics/test_support.h"

namespace tongka::metrics {
namespace {

HttpExposerOptions LocalOptions() {
  HttpExposerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  return options;
}

// The value of the unlabelled sample `name` in `text`, or NaN when absent.
double SampleValue(const std::string& text, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::ConsumePrefix(&line, name + " ")) {
      double value;
      if (absl::SimpleAtod(line, &value)) return value;
    }
  }
  return std::nan("");
}

TEST(HttpExposerTest, ServesMetricsAndHealthz) {
  Registry registry;
  registry.AddGauge("tongka_test_depth", "A test gauge.").Set(42);
  HttpExposer exposer(&registry, LocalOptions());
  EXPECT_EQ(exposer.port(), -1);
  ASSERT_TRUE(exposer.Start().ok());
  ASSERT_GT(exposer.port(), 0);

  httplib::Client client("127.0.0.1", exposer.port());
  const httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_TRUE(absl::StrContains(metrics->body,
                                "# HELP tongka_test_depth A test gauge.\n"
                                "# TYPE tongka_test_depth gauge\n"
                                "tongka_test_depth 42\n"))
      << metrics->body;

  const httplib::Result health = client.Get("/healthz");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");

  // Readiness is the owner's to give: not ready until it says so, and it can take it back.
  httplib::Result ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  exposer.SetReady(true);
  ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(ready->body, "ready");
  exposer.SetReady(false);
  EXPECT_EQ(client.Get("/readyz")->status, 503);

  const httplib::Result missing = client.Get("/nothing-here");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(HttpExposerTest, ExportsPlausibleProcessMetrics) {
  Registry registry;
  HttpExposer exposer(&registry, LocalOptions());
  ASSERT_TRUE(exposer.Start().ok());
  httplib::Client client("127.0.0.1", exposer.port());
  const httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  const std::string& text = metrics->body;

  EXPECT_TRUE(absl::StrContains(text, "# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_TRUE(absl::StrContains(text, "# TYPE process_resident_memory_bytes gauge\n"));
  EXPECT_TRUE(absl::StrContains(text, "# TYPE process_start_time_seconds gauge\n"));
  EXPECT_GT(SampleValue(text, "process_resident_memory_bytes"), 1 << 20) << text;
  EXPECT_GE(SampleValue(text, "process_cpu_seconds_total"), 0) << text;
  // The test process started within the last hour, and not in the future (boot time has 1 s
  // resolution, hence the slack).
  const double now = static_cast<double>(std::time(nullptr));
  const double start = SampleValue(text, "process_start_time_seconds");
  EXPECT_GT(start, now - 3600) << text;
  EXPECT_LE(start, now + 2) << text;
}

TEST(HttpExposerTest, PromtoolAcceptsTheExpositionWithoutLintProblems) {
  const std::string promtool = test_support::FindTool("promtool");
  ASSERT_FALSE(promtool.empty()) << test_support::MissingToolMessage("promtool");

  // One of everything, including the escapes and unusual floats that a hand-written exposition
  // would most likely get wrong.
  Registry registry;
  CounterFamily& taps =
      registry.AddCounter("tongka_test_taps_total", "Taps by city and mode.", {"city", "mode"});
  taps.WithLabels({"310000", "bus"}).Increment(3);
  taps.WithLabels({"330200", "ferry"}).Increment(0.5);
  registry.AddCounter("tongka_test_escapes_total", "Help with \\ and\nnewline.", {"note"})
      .WithLabels({"quote \" backslash \\ newline \n end"})
      .Increment();
  GaugeFamily& temperatures = registry.AddGauge("tongka_test_values", "Odd floats.", {"kind"});
  temperatures.WithLabels({"nan"}).Set(std::nan(""));
  temperatures.WithLabels({"inf"}).Set(HUGE_VAL);
  temperatures.WithLabels({"tiny"}).Set(1e-9);
  temperatures.WithLabels({"huge"}).Set(1e300);
  HistogramFamily& latency = registry.AddHistogram("tongka_test_latency_seconds", "Latency.",
                                                   {"method"}, DefaultLatencyBuckets());
  latency.WithLabels({"Authorize"}).Observe(0.003);
  latency.WithLabels({"Authorize"}).Observe(20);
  registry.AddHistogram("tongka_test_empty_seconds", "No observations.", {0.1});
  CallbackRegistration lag =
      registry.AddCallbackGauge("tongka_test_lag", "Consumer lag.", [] { return 12.0; });

  HttpExposer exposer(&registry, LocalOptions());
  ASSERT_TRUE(exposer.Start().ok());
  httplib::Client client("127.0.0.1", exposer.port());
  const httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  ASSERT_EQ(metrics->status, 200);

  const test_support::CommandResult result =
      test_support::RunCommand({promtool, "check", "metrics"}, metrics->body);
  EXPECT_EQ(result.exit_code, 0) << "promtool output:\n"
                                 << result.output << "\nexposition:\n"
                                 << metrics->body;
  EXPECT_EQ(result.output, "") << "promtool reported lint problems";
}

// The check above would pass vacuously if promtool never saw the text (it accepts empty input), so
// this proves the harness feeds it and reports what it finds.
TEST(HttpExposerTest, PromtoolHarnessReportsProblems) {
  const std::string promtool = test_support::FindTool("promtool");
  ASSERT_FALSE(promtool.empty()) << test_support::MissingToolMessage("promtool");
  const test_support::CommandResult lint = test_support::RunCommand(
      {promtool, "check", "metrics"}, "# HELP taps h\n# TYPE taps counter\ntaps 1\n");
  EXPECT_NE(lint.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(lint.output, "_total")) << lint.output;
  const test_support::CommandResult parse =
      test_support::RunCommand({promtool, "check", "metrics"}, "taps_total{a=\"\\q\"} 1\n");
  EXPECT_NE(parse.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(parse.output, "invalid escape sequence")) << parse.output;
}

TEST(HttpExposerTest, StopClosesThePortAndIsIdempotent) {
  Registry registry;
  HttpExposer exposer(&registry, LocalOptions());
  ASSERT_TRUE(exposer.Start().ok());
  const int port = exposer.port();
  exposer.Stop();
  exposer.Stop();

  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  EXPECT_FALSE(client.Get("/healthz"));
}

TEST(HttpExposerTest, StopRightAfterStartDoesNotHang) {
  Registry registry;
  for (int i = 0; i < 20; ++i) {
    HttpExposer exposer(&registry, LocalOptions());
    ASSERT_TRUE(exposer.Start().ok());
  }
}

TEST(HttpExposerTest, RefusesAPortThatIsAlreadyServed) {
  Registry first_registry;
  HttpExposer first(&first_registry, LocalOptions());
  ASSERT_TRUE(first.Start().ok());

  Registry second_registry;
  HttpExposerOptions options = LocalOptions();
  options.port = first.port();
  HttpExposer second(&second_registry, options);
  const absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(second.port(), -1);
}

TEST(HttpExposerTest, RejectsBadOptionsAndASecondStart) {
  Registry registry;
  {
    HttpExposerOptions options = LocalOptions();
    options.port = 70000;
    HttpExposer exposer(&registry, options);
    const absl::Status status = exposer.Start();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(status.message(), "HttpExposerOptions.port")) << status;
  }
  {
    HttpExposerOptions options = LocalOptions();
    options.worker_threads = 0;
    HttpExposer exposer(&registry, options);
    const absl::Status status = exposer.Start();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(status.message(), "HttpExposerOptions.worker_threads")) << status;
  }
  {
    HttpExposerOptions options = LocalOptions();
    options.host = "";
    HttpExposer exposer(&registry, options);
    EXPECT_EQ(exposer.Start().code(), absl::StatusCode::kInvalidArgument);
  }
  HttpExposer exposer(&registry, LocalOptions());
  ASSERT_TRUE(exposer.Start().ok());
  EXPECT_EQ(exposer.Start().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace tongka::metrics
