// CPU cost of the metric updates that sit on hot paths: a cached labelled counter child, a cached
// labelled histogram child, and the WithLabels lookup that callers are told to cache. Run it with
// `bazel run -c opt //libs/metrics:metrics_benchmark`; the figures are in README.md.

#include <benchmark/benchmark.h>

#include "libs/metrics/metrics.h"

namespace tongka::metrics {
namespace {

void BM_CounterIncrement(benchmark::State& state) {
  static Registry* registry = new Registry();
  static CounterFamily& family =
      registry->AddCounter("tongka_bench_accepted_total", "Bench.", {"city", "mode"});
  Counter& counter = family.WithLabels({"310000", "bus"});
  for (auto _ : state) counter.Increment();
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2)->UseRealTime();

void BM_CounterIncrementByBatch(benchmark::State& state) {
  static Registry* registry = new Registry();
  static CounterFamily& family =
      registry->AddCounter("tongka_bench_batched_total", "Bench.", {"city", "mode"});
  Counter& counter = family.WithLabels({"310000", "bus"});
  for (auto _ : state) counter.Increment(int64_t{500});
}
BENCHMARK(BM_CounterIncrementByBatch);

void BM_HistogramObserve(benchmark::State& state) {
  static Registry* registry = new Registry();
  static HistogramFamily& family = registry->AddHistogram("tongka_bench_batch_seconds", "Bench.",
                                                          {"city"}, DefaultLatencyBuckets());
  Histogram& histogram = family.WithLabels({"310000"});
  double seconds = 0.0001;
  for (auto _ : state) {
    histogram.Observe(seconds);
    seconds = seconds < 5 ? seconds * 1.7 : 0.0001;  // Walks across the buckets.
  }
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2)->UseRealTime();

void BM_CounterWithLabels(benchmark::State& state) {
  Registry registry;
  CounterFamily& family =
      registry.AddCounter("tongka_bench_lookup_total", "Bench.", {"city", "mode"});
  for (auto _ : state) family.WithLabels({"310000", "bus"}).Increment();
}
BENCHMARK(BM_CounterWithLabels);

}  // namespace
}  // namespace tongka::metrics

BENCHMARK_MAIN();
