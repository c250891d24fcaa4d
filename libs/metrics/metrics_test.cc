// Proves the registry, through prometheus-cpp, renders Prometheus text format 0.0.4 byte for byte
// (ordering, escaping, float syntax, cumulative histogram buckets), that concurrent updates lose
// nothing, that callback metrics come and go with their handles, and that every declaration mistake
// CHECK-fails. Expected texts are written out in full and compared exactly; values are chosen to be
// exact in binary so that sums do not depend on rounding.

#include "libs/metrics/metrics.h"

#include <glog/logging.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"

namespace tongka::metrics {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST(ExpositionTest, RendersFamiliesSortedByNameAndChildrenByLabelValues) {
  Registry registry;
  CounterFamily& accepted =
      registry.AddCounter("tongka_ingest_accepted_total", "Transactions acked.", {"city", "mode"});
  accepted.WithLabels({"330200", "metro"}).Increment(3);
  Counter& shanghai_bus = accepted.WithLabels({"310000", "bus"});
  shanghai_bus.Increment();
  shanghai_bus.Increment(int64_t{2});
  shanghai_bus.Increment(0.5);
  registry.AddGauge("tongka_outbox_depth", "Events waiting in the outbox.").Set(17);
  Histogram& apply =
      registry.AddHistogram("tongka_apply_seconds", "Time to apply one batch.", {0.125, 0.25, 1});
  for (double seconds : {0.0625, 0.125, 0.5, 3.0}) apply.Observe(seconds);
  CallbackFamily& lag = registry.AddCallbackGauge("tongka_consumer_lag",
                                                  "Messages behind the log end.", {"partition"});
  CallbackRegistration lag_1 = lag.Register({"1"}, [] { return 40.0; });
  CallbackRegistration lag_0 = lag.Register({"0"}, [] { return 2.0; });

  EXPECT_EQ(registry.ExpositionText(),
            "# HELP tongka_apply_seconds Time to apply one batch.\n"
            "# TYPE tongka_apply_seconds histogram\n"
            "tongka_apply_seconds_count 4\n"
            "tongka_apply_seconds_sum 3.6875\n"
            "tongka_apply_seconds_bucket{le=\"0.125\"} 2\n"
            "tongka_apply_seconds_bucket{le=\"0.25\"} 2\n"
            "tongka_apply_seconds_bucket{le=\"1\"} 3\n"
            "tongka_apply_seconds_bucket{le=\"+Inf\"} 4\n"
            "# HELP tongka_consumer_lag Messages behind the log end.\n"
            "# TYPE tongka_consumer_lag gauge\n"
            "tongka_consumer_lag{partition=\"0\"} 2\n"
            "tongka_consumer_lag{partition=\"1\"} 40\n"
            "# HELP tongka_ingest_accepted_total Transactions acked.\n"
            "# TYPE tongka_ingest_accepted_total counter\n"
            "tongka_ingest_accepted_total{city=\"310000\",mode=\"bus\"} 3.5\n"
            "tongka_ingest_accepted_total{city=\"330200\",mode=\"metro\"} 3\n"
            "# HELP tongka_outbox_depth Events waiting in the outbox.\n"
            "# TYPE tongka_outbox_depth gauge\n"
            "tongka_outbox_depth 17\n");
}

// prometheus-cpp keeps labels in a name-sorted map; they are exposed in declaration order anyway
// (`method` before `code`), with `le` last.
TEST(ExpositionTest, LabelledHistogramKeepsLabelOrderAndPutsLeLast) {
  Registry registry;
  HistogramFamily& latency =
      registry.AddHistogram("tongka_rpc_seconds", "RPC latency.", {"method", "code"}, {0.5, kInf});
  latency.WithLabels({"Authorize", "OK"}).Observe(0.25);
  latency.WithLabels({"Authorize", "OK"}).Observe(0.75);

  EXPECT_EQ(registry.ExpositionText(),
            "# HELP tongka_rpc_seconds RPC latency.\n"
            "# TYPE tongka_rpc_seconds histogram\n"
            "tongka_rpc_seconds_count{method=\"Authorize\",code=\"OK\"} 2\n"
            "tongka_rpc_seconds_sum{method=\"Authorize\",code=\"OK\"} 1\n"
            "tongka_rpc_seconds_bucket{method=\"Authorize\",code=\"OK\",le=\"0.5\"} 1\n"
            "tongka_rpc_seconds_bucket{method=\"Authorize\",code=\"OK\",le=\"+Inf\"} 2\n");
}

// Children sort by their values in declaration order: `zone` first, although `city` < `zone`.
TEST(ExpositionTest, SortsChildrenByValuesInDeclarationOrder) {
  Registry registry;
  GaugeFamily& family = registry.AddGauge("tongka_depth", "Depth.", {"zone", "city"});
  family.WithLabels({"b", "1"}).Set(1);
  family.WithLabels({"a", "2"}).Set(2);
  family.WithLabels({"a", "1"}).Set(3);

  EXPECT_EQ(registry.ExpositionText(),
            "# HELP tongka_depth Depth.\n"
            "# TYPE tongka_depth gauge\n"
            "tongka_depth{zone=\"a\",city=\"1\"} 3\n"
            "tongka_depth{zone=\"a\",city=\"2\"} 2\n"
            "tongka_depth{zone=\"b\",city=\"1\"} 1\n");
}

TEST(ExpositionTest, EscapesHelpAndLabelValues) {
  Registry registry;
  CounterFamily& family = registry.AddCounter("tongka_escapes_total",
                                              "Line one\nback\\slash \"quotes\" stay", {"note"});
  family.WithLabels({"a\"b\\c\nd"}).Increment();

  EXPECT_EQ(registry.ExpositionText(),
            "# HELP tongka_escapes_total Line one\\nback\\\\slash \"quotes\" stay\n"
            "# TYPE tongka_escapes_total counter\n"
            "tongka_escapes_total{note=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(ExpositionTest, ReplacesInvalidUtf8InLabelValuesAndKeepsValidUtf8) {
  Registry registry;
  GaugeFamily& family = registry.AddGauge("tongka_city_name", "City names.", {"name"});
  family.WithLabels({"上海"}).Set(1);
  family.WithLabels({"bad\xff\xc0"}).Set(2);

  EXPECT_EQ(registry.ExpositionText(),
            "# HELP tongka_city_name City names.\n"
            "# TYPE tongka_city_name gauge\n"
            "tongka_city_name{name=\"bad\xEF\xBF\xBD\xEF\xBF\xBD\"} 2\n"
            "tongka_city_name{name=\"上海\"} 1\n");
  // The sanitized value names the same child.
  EXPECT_EQ(&family.WithLabels({"bad\xff\xc0"}),
            &family.WithLabels({"bad\xEF\xBF\xBD\xEF\xBF\xBD"}));
}

TEST(ExpositionTest, FamiliesWithoutChildrenAreNotExposed) {
  Registry registry;
  registry.AddCounter("tongka_unused_total", "Never incremented.", {"city"});
  registry.AddCallbackGauge("tongka_unused_lag", "No callbacks.", {"partition"});
  EXPECT_EQ(registry.ExpositionText(), "");
}

TEST(ExpositionTest, UnlabelledMetricsAreExposedAtZeroFromTheStart) {
  Registry registry;
  registry.AddCounter("tongka_restarts_total", "Restarts.");
  EXPECT_EQ(registry.ExpositionText(),
            "# HELP tongka_restarts_total Restarts.\n"
            "# TYPE tongka_restarts_total counter\n"
            "tongka_restarts_total 0\n");
}

TEST(ExpositionTest, FormatsFloatsThePrometheusWay) {
  struct Case {
    double value;
    const char* text;
  };
  const Case cases[] = {
      {0, "0"},
      {-0.0, "-0"},  // Prometheus reads it as zero.
      {1, "1"},
      {-3, "-3"},
      {0.5, "0.5"},
      {0.1, "0.1"},
      {0.0005, "0.0005"},
      {1e-05, "1e-05"},
      // prometheus-cpp writes the shortest round-trip form, which stays positional up to 17 digits.
      {1234567.5, "1234567.5"},
      {123456.5, "123456.5"},
      {123456789012, "123456789012"},
      {9007199254740992.0, "9007199254740992"},  // 2^53, the largest exact integer run.
      {1e20, "1e+20"},
      {1.5e300, "1.5e+300"},
      {kInf, "+Inf"},
      {-kInf, "-Inf"},
      {kNaN, "Nan"},  // prometheus-cpp's spelling; Prometheus parses NaN case-insensitively.
  };
  for (const Case& c : cases) {
    Registry registry;
    registry.AddGauge("g", "h").Set(c.value);
    EXPECT_EQ(registry.ExpositionText(),
              std::string("# HELP g h\n# TYPE g gauge\ng ") + c.text + "\n")
        << "value " << c.value;
  }
}

TEST(HistogramTest, BucketsAreCumulativeAndBoundsInclusive) {
  Histogram histogram({1, 2, 4});
  for (double value : {0.0, 1.0, 1.5, 2.0, 4.0, 5.0, -1.0}) histogram.Observe(value);
  const Histogram::Snapshot snapshot = histogram.GetSnapshot();
  EXPECT_EQ(snapshot.bucket_bounds, (std::vector<double>{1, 2, 4}));
  // <=1: 0, 1, -1; <=2: +1.5, 2; <=4: +4; +Inf: +5.
  EXPECT_EQ(snapshot.cumulative_counts, (std::vector<uint64_t>{3, 5, 6, 7}));
  EXPECT_EQ(snapshot.count, 7u);
  EXPECT_EQ(snapshot.sum, 12.5);
}

TEST(HistogramTest, NanCountsOnlyInTheInfBucket) {
  Histogram histogram({1});
  histogram.Observe(kNaN);
  const Histogram::Snapshot snapshot = histogram.GetSnapshot();
  EXPECT_EQ(snapshot.cumulative_counts, (std::vector<uint64_t>{0, 1}));
  EXPECT_TRUE(std::isnan(snapshot.sum));
}

TEST(StandaloneTest, CounterAndGaugeWorkOutsideARegistry) {
  Counter counter;
  counter.Increment();
  counter.Increment(int64_t{2});
  EXPECT_EQ(counter.Value(), 3);
  Gauge gauge;
  gauge.Set(5);
  gauge.Add(-7);
  EXPECT_EQ(gauge.Value(), -2);
}

TEST(HistogramTest, BucketHelpers) {
  const std::vector<double> defaults = DefaultLatencyBuckets();
  EXPECT_TRUE(std::is_sorted(defaults.begin(), defaults.end()));
  EXPECT_EQ(defaults.back(), 10);
  EXPECT_EQ(ExponentialBuckets(0.25, 2, 4), (std::vector<double>{0.25, 0.5, 1, 2}));
}

// Eight threads hammer the same children (found through WithLabels concurrently) while a ninth
// scrapes; every update must be counted and every scrape must show `+Inf` == `_count`.
TEST(ConcurrencyTest, ConcurrentUpdatesGiveExactTotals) {
  constexpr int kThreads = 8;
  constexpr int kIterations = 100000;
  Registry registry;
  CounterFamily& taps = registry.AddCounter("tongka_taps_total", "Taps.", {"city"});
  CounterFamily& fen = registry.AddCounter("tongka_half_total", "Halves.", {"city"});
  GaugeFamily& depth = registry.AddGauge("tongka_depth", "Depth.", {"city"});
  HistogramFamily& latency =
      registry.AddHistogram("tongka_latency_seconds", "Latency.", {"city"}, {0.5});

  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) {
      const Histogram::Snapshot snapshot = latency.WithLabels({"310000"}).GetSnapshot();
      ASSERT_EQ(snapshot.cumulative_counts.back(), snapshot.count);
      registry.ExpositionText();
    }
  });
  std::vector<std::thread> workers;
  std::vector<Counter*> seen(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      Counter& counter = taps.WithLabels({"310000"});
      seen[t] = &counter;
      Counter& halves = fen.WithLabels({"310000"});
      Gauge& gauge = depth.WithLabels({"310000"});
      Histogram& histogram = latency.WithLabels({"310000"});
      for (int i = 0; i < kIterations; ++i) {
        counter.Increment();
        halves.Increment(0.5);
        gauge.Add(i % 2 == 0 ? 3 : -1);
        histogram.Observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  done.store(true);
  scraper.join();

  for (Counter* counter : seen) EXPECT_EQ(counter, seen[0]);
  constexpr double kTotal = static_cast<double>(kThreads) * kIterations;
  EXPECT_EQ(taps.WithLabels({"310000"}).Value(), kTotal);
  EXPECT_EQ(fen.WithLabels({"310000"}).Value(), kTotal / 2);
  EXPECT_EQ(depth.WithLabels({"310000"}).Value(), kTotal);  // (+3 - 1) per two iterations.
  const Histogram::Snapshot snapshot = latency.WithLabels({"310000"}).GetSnapshot();
  EXPECT_EQ(snapshot.cumulative_counts,
            (std::vector<uint64_t>{kThreads * kIterations / 2, kThreads * kIterations}));
  EXPECT_EQ(snapshot.sum, kTotal / 2 * 1.25);
}

TEST(CallbackTest, DestroyingAHandleRemovesItsChild) {
  Registry registry;
  CallbackFamily& size =
      registry.AddCallbackGauge("tongka_store_size_bytes", "Store size.", {"partition"});
  auto registration =
      std::make_unique<CallbackRegistration>(size.Register({"0"}, [] { return 5.0; }));
  EXPECT_TRUE(
      absl::StrContains(registry.ExpositionText(), "tongka_store_size_bytes{partition=\"0\"} 5"));
  registration.reset();
  EXPECT_EQ(registry.ExpositionText(), "");
  // The same labels can be registered again once the old handle is gone.
  CallbackRegistration again = size.Register({"0"}, [] { return 6.0; });
  EXPECT_TRUE(
      absl::StrContains(registry.ExpositionText(), "tongka_store_size_bytes{partition=\"0\"} 6"));
}

TEST(CallbackTest, UnlabelledHandleOwnsTheWholeFamily) {
  Registry registry;
  double applied = 7;
  CallbackRegistration registration = registry.AddCallbackCounter(
      "tongka_applied_total", "Applied.", [&applied] { return applied; });
  EXPECT_EQ(registry.ExpositionText(),
            "# HELP tongka_applied_total Applied.\n"
            "# TYPE tongka_applied_total counter\n"
            "tongka_applied_total 7\n");
  applied = 9;
  EXPECT_TRUE(absl::StrContains(registry.ExpositionText(), "tongka_applied_total 9\n"));

  CallbackRegistration moved = std::move(registration);
  registration.Reset();  // A moved-from handle owns nothing.
  EXPECT_TRUE(absl::StrContains(registry.ExpositionText(), "tongka_applied_total 9\n"));
  moved.Reset();
  EXPECT_EQ(registry.ExpositionText(), "");
  // The name is free again.
  registry.AddCounter("tongka_applied_total", "Applied, now counted directly.").Increment();
  EXPECT_TRUE(absl::StrContains(registry.ExpositionText(), "tongka_applied_total 1\n"));
}

// ---- Declaration mistakes are bugs and crash at start-up. ----

TEST(ValidationDeathTest, RejectsBadMetricNames) {
  Registry registry;
  EXPECT_DEATH(registry.AddCounter("1tongka_total", "h"), "invalid metric name '1tongka_total'");
  EXPECT_DEATH(registry.AddGauge("tongka-depth", "h"), "invalid metric name");
  EXPECT_DEATH(registry.AddGauge("", "h"), "invalid metric name");
  EXPECT_DEATH(registry.AddGauge("tongka_dépth", "h"), "invalid metric name");
}

TEST(ValidationDeathTest, RejectsBadAndReservedLabelNames) {
  Registry registry;
  EXPECT_DEATH(registry.AddGauge("g", "h", {"city-code"}), "invalid label name 'city-code'");
  EXPECT_DEATH(registry.AddGauge("g", "h", {"0city"}), "invalid label name");
  EXPECT_DEATH(registry.AddGauge("g", "h", {"a:b"}), "invalid label name");
  EXPECT_DEATH(registry.AddGauge("g", "h", {"__name__"}), "reserved");
  EXPECT_DEATH(registry.AddHistogram("h_seconds", "h", {"le"}, {1}), "'le' is reserved");
  EXPECT_DEATH(registry.AddGauge("g", "h", {"city", "city"}), "duplicate label name");
}

TEST(ValidationDeathTest, RejectsCounterWithoutTotalSuffixAndEmptyHelp) {
  Registry registry;
  EXPECT_DEATH(registry.AddCounter("tongka_taps", "h"), "must end in _total");
  EXPECT_DEATH(registry.AddGauge("tongka_depth", ""), "needs help text");
}

TEST(ValidationDeathTest, RejectsDuplicateAndCollidingFamilies) {
  Registry registry;
  registry.AddGauge("tongka_depth", "h");
  EXPECT_DEATH(registry.AddGauge("tongka_depth", "h", {"city"}), "declared twice");
  EXPECT_DEATH(registry.AddCounter("tongka_depth", "h"), "must end in _total");
  registry.AddHistogram("tongka_apply_seconds", "h", {1});
  EXPECT_DEATH(registry.AddGauge("tongka_apply_seconds_count", "h"),
               "would expose the series tongka_apply_seconds_count, which metric "
               "tongka_apply_seconds already exposes");
  registry.AddGauge("tongka_x_sum", "h");
  EXPECT_DEATH(registry.AddHistogram("tongka_x", "h", {1}), "already exposes");
}

TEST(ValidationDeathTest, RejectsWrongLabelCount) {
  Registry registry;
  CounterFamily& family = registry.AddCounter("tongka_taps_total", "h", {"city", "mode"});
  EXPECT_DEATH(family.WithLabels({"310000"}), "has labels \\{city,mode\\} but got 1 values");
  EXPECT_DEATH(family.WithLabels({"310000", "bus", "extra"}), "but got 3 values");
  CallbackFamily& lag = registry.AddCallbackGauge("tongka_lag", "h", {"partition"});
  EXPECT_DEATH(lag.Register({}, [] { return 0.0; }), "but got 0 values");
}

TEST(ValidationDeathTest, RejectsCountersThatGoDown) {
  Registry registry;
  Counter& counter = registry.AddCounter("tongka_taps_total", "h");
  EXPECT_DEATH(counter.Increment(-1), "a counter only goes up");
  EXPECT_DEATH(counter.Increment(-0.5), "a counter only goes up");
  EXPECT_DEATH(counter.Increment(kNaN), "a counter only goes up");
}

TEST(ValidationDeathTest, RejectsBadBucketBounds) {
  Registry registry;
  EXPECT_DEATH(registry.AddHistogram("a_seconds", "h", {1, 0.5}), "strictly increasing");
  EXPECT_DEATH(registry.AddHistogram("b_seconds", "h", {1, 1}), "strictly increasing");
  EXPECT_DEATH(registry.AddHistogram("c_seconds", "h", {kNaN}), "is NaN");
}

TEST(ValidationDeathTest, RejectsDuplicateCallbackLabels) {
  Registry registry;
  CallbackFamily& lag = registry.AddCallbackGauge("tongka_lag", "h", {"partition"});
  CallbackRegistration first = lag.Register({"0"}, [] { return 0.0; });
  EXPECT_DEATH(CallbackRegistration second = lag.Register({"0"}, [] { return 1.0; }),
               "already registered");
}

}  // namespace
}  // namespace tongka::metrics
