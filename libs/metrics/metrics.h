// Tongka's Prometheus metrics: typed counter, gauge and histogram families on top of
// prometheus-cpp, callback metrics read at scrape time, and the text exposition (format 0.0.4).
//
// prometheus-cpp (Debian's prometheus-cpp-core 1.0.1) holds the values and writes the text: each
// family here is a `prometheus::Family`, each child a `prometheus::Counter`, `Gauge` or
// `Histogram`, and `ExpositionText` runs `prometheus::TextSerializer`. This layer adds what
// prometheus-cpp leaves to the caller: a fixed list of label names per family (children are looked
// up by values in declaration order, and the wrong number of values is a bug), Prometheus naming
// rules checked at declaration (`_total` on counters, reserved label names, series names that
// collide across families), help text and label values made safe for the text format, NaN
// observations kept out of the finite buckets, callback metrics, and a deterministic exposition
// order.
//
// A family is declared once, with a name, help text and a fixed list of label names; its children
// are the time series, one per tuple of label values. Services declare every family of a component
// in one place (`*_metrics.h`) at start-up, look up the children they update on hot paths once, and
// keep the returned references.
//
// Ownership: the Registry owns every family and every child. References returned by `Add*` and
// `WithLabels` stay valid, at the same address, until the Registry is destroyed. Callback metrics
// are the exception that proves the rule: they call into objects the Registry does not own, so each
// one is tied to a `CallbackRegistration` handle held by the owner of those objects.
//
// Thread-safety: everything is thread-safe. Counter and gauge updates are lock-free (prometheus-cpp
// adds to a std::atomic<double> with a compare-and-swap loop); a histogram observation takes the
// child's own mutex, so that a scrape sees its buckets, sum and count agree. `WithLabels` takes the
// family's mutex, which is why hot paths cache the child. `ExpositionText` holds the registry's
// mutex while it collects, and calls the callbacks under it.
//
// Failure behaviour: declaring a metric wrongly is a programming error and CHECK-fails (glog): a
// name or label name that does not match Prometheus' regexes, a reserved label name (`__*`, or `le`
// on a histogram), empty help text, a counter whose name does not end in `_total`, a second family
// under the same name (or one whose series names would collide with another family's, such as
// `x_count` next to the histogram `x`), unsorted or NaN bucket bounds, the wrong number of label
// values, and a negative or NaN counter increment. Label values are data, not code: invalid UTF-8
// in them is replaced by U+FFFD instead of failing, since Prometheus would otherwise reject the
// whole scrape. Keep label values to small fixed sets (city codes, modes, RPC names): every
// distinct tuple is a time series that lives as long as the Registry.
//
// Example:
//   tongka::metrics::Registry registry;
//   tongka::metrics::CounterFamily& accepted = registry.AddCounter(
//       "tongka_ingest_accepted_total", "Transactions acked after Kafka has them.", {"city",
//       "mode"});
//   tongka::metrics::Counter& shanghai_bus = accepted.WithLabels({"310000", "bus"});
//   shanghai_bus.Increment();  // Lock-free; keep `shanghai_bus` around on hot paths.
//
//   tongka::metrics::Histogram& latency = registry.AddHistogram(
//       "tongka_ingest_batch_seconds", "Time to ack one upload batch.",
//       tongka::metrics::DefaultLatencyBuckets());
//   latency.Observe(0.0123);
//
//   tongka::metrics::CallbackRegistration size_registration = registry.AddCallbackGauge(
//       "tongka_store_size_bytes", "Live RocksDB data size.", [&store] { return store.SizeBytes();
//       });
//
//   std::string text = registry.ExpositionText();  // Served by HttpExposer on /metrics.

#ifndef TONGKA_LIBS_METRICS_METRICS_H_
#define TONGKA_LIBS_METRICS_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tongka::metrics {

// The Content-Type of `Registry::ExpositionText()`.
inline constexpr char kTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kCounter, kGauge, kHistogram };

// Upper bounds, in seconds, for request and apply latencies: fine steps below the 300 ms tap
// budget, coarse ones up to 10 s for batch and replay work. The `+Inf` bucket is always implicit.
std::vector<double> DefaultLatencyBuckets();

// `count` bounds: start, start*factor, start*factor^2, ... CHECK-fails unless start > 0,
// factor > 1 and count >= 1.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

template <typename T>
class Family;
class Registry;

// A monotonically increasing value, such as events applied: a `prometheus::Counter` (a double, so
// integer increments are exact up to 2^53) that refuses to go down.
class Counter {
 public:
  // A counter outside any registry (tests and tools that only read it back).
  Counter();
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment() { counter_->Increment(); }

  // Adds `delta`, which must be >= 0 (a counter that goes down is a bug; use a Gauge).
  // prometheus-cpp would silently drop a negative delta; here it CHECK-fails.
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
  void Increment(T delta) {
    const double value = static_cast<double>(delta);
    // `!(value >= 0)` also catches NaN, which would poison the counter for good.
    if (!(value >= 0)) FailBadIncrement(value);
    counter_->Increment(value);
  }

  double Value() const { return counter_->Value(); }

 private:
  friend class Family<Counter>;
  explicit Counter(prometheus::Counter* counter) : counter_(counter) {}
  [[noreturn]] static void FailBadIncrement(double delta);

  const std::unique_ptr<prometheus::Counter> owned_;  // Only outside a registry.
  prometheus::Counter* const counter_;                // Otherwise owned by the prometheus::Family.
};

// A value that goes up and down, such as outbox depth.
class Gauge {
 public:
  // A gauge outside any registry (tests and tools that only read it back).
  Gauge();
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { gauge_->Set(value); }
  // Adds `delta`, which may be negative.
  void Add(double delta) { gauge_->Increment(delta); }
  double Value() const { return gauge_->Value(); }

 private:
  friend class Family<Gauge>;
  explicit Gauge(prometheus::Gauge* gauge) : gauge_(gauge) {}

  const std::unique_ptr<prometheus::Gauge> owned_;  // Only outside a registry.
  prometheus::Gauge* const gauge_;                  // Otherwise owned by the prometheus::Family.
};

// Counts observations into buckets by upper bound (base units, e.g. seconds) and keeps their sum.
// An observation equal to a bound counts in that bound's bucket, as Prometheus' `le` says. NaN
// counts only in `+Inf` (prometheus-cpp alone would count it in the lowest bucket).
class Histogram {
 public:
  // A point-in-time copy, for tests and benchmarks.
  struct Snapshot {
    std::vector<double> bucket_bounds;
    // Cumulative: `cumulative_counts[i]` observations were <= `bucket_bounds[i]`; the last element
    // (one past the bounds) is the `+Inf` bucket and equals `count`.
    std::vector<uint64_t> cumulative_counts;
    double sum = 0;
    uint64_t count = 0;
  };

  // A histogram outside any registry (benchmarks and tools that only read it back).
  // `bucket_bounds` must be strictly increasing and not NaN; a trailing +Inf is dropped because
  // the +Inf bucket is always there. CHECK-fails otherwise.
  explicit Histogram(std::vector<double> bucket_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;
  ~Histogram();

  void Observe(double value);
  Snapshot GetSnapshot() const;

 private:
  friend class Family<Histogram>;
  Histogram(std::vector<double> checked_bounds, prometheus::Histogram* histogram);

  const std::vector<double> bounds_;
  const std::unique_ptr<prometheus::Histogram> owned_;  // Only outside a registry.
  prometheus::Histogram* const histogram_;
};

namespace internal {

// What every family shares: its name, help, type and label names. Users see only the concrete
// families below.
class FamilyBase {
 public:
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;
  virtual ~FamilyBase();

  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

 protected:
  // CHECK-fails on a name, help text or label name that breaks Prometheus' rules.
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names);

  // The help text as the text format wants it: valid UTF-8, backslash and newline escaped
  // (prometheus-cpp's serializer writes help verbatim).
  const std::string& escaped_help() const { return escaped_help_; }
  // The map key of a child: the values, after CHECK-ing their count and replacing invalid UTF-8.
  std::vector<std::string> MakeKey(const std::vector<std::string>& label_values) const;
  // The prometheus-cpp labels of a child.
  std::map<std::string, std::string> MakeLabels(const std::vector<std::string>& key) const;

 private:
  const std::string name_;
  const std::string escaped_help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
};

// The prometheus-cpp type under each of ours.
template <typename T>
struct PrometheusType;
template <>
struct PrometheusType<Counter> {
  using type = prometheus::Counter;
};
template <>
struct PrometheusType<Gauge> {
  using type = prometheus::Gauge;
};
template <>
struct PrometheusType<Histogram> {
  using type = prometheus::Histogram;
};

}  // namespace internal

// A family of counters, gauges or histograms: a `prometheus::Family` with fixed label names.
template <typename T>
class Family final : public internal::FamilyBase {
 public:
  ~Family() override;

  // Returns the child for `label_values`, one per label name in declaration order, created at zero
  // on first use. CHECK-fails on the wrong number of values. Takes a mutex: cache the result.
  T& WithLabels(const std::vector<std::string>& label_values);

 private:
  friend class Registry;
  using PrometheusFamily = prometheus::Family<typename internal::PrometheusType<T>::type>;

  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::vector<double> bucket_bounds);
  // Creates the prometheus-cpp family, once the Registry has checked that the name is free
  // (prometheus-cpp would merge or throw instead).
  void Attach(prometheus::Registry* registry);

  PrometheusFamily* family_ = nullptr;       // Owned by the prometheus::Registry; set by Attach.
  const std::vector<double> bucket_bounds_;  // Histograms only.
  absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_ ABSL_GUARDED_BY(mu_);
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

// Keeps one callback metric registered; destroying it (or calling Reset) unregisters it. After
// that returns, the callback is not running and is never called again, so the objects it captures
// may then be destroyed. Must not outlive the Registry. Move-only.
class CallbackRegistration {
 public:
  CallbackRegistration() = default;
  CallbackRegistration(CallbackRegistration&& other) noexcept;
  CallbackRegistration& operator=(CallbackRegistration&& other) noexcept;
  ~CallbackRegistration();

  void Reset();

 private:
  friend class CallbackFamily;
  friend class Registry;
  explicit CallbackRegistration(std::function<void()> unregister);

  std::function<void()> unregister_;
};

// A counter or gauge family whose values are computed at scrape time by callbacks, for figures
// that live elsewhere (RocksDB size, consumer lag, process memory). It collects itself into
// prometheus-cpp's `MetricFamily`, which the same serializer writes. Callbacks run on the scraping
// thread under the registry's mutex: they must be fast, thread-safe, and must not call the
// Registry.
class CallbackFamily final : public internal::FamilyBase {
 public:
  // Registers `callback` as the child for `label_values`. CHECK-fails on the wrong number of values
  // or when that child is already registered.
  [[nodiscard]] CallbackRegistration Register(const std::vector<std::string>& label_values,
                                              std::function<double()> callback);

 private:
  friend class Registry;

  using FamilyBase::FamilyBase;
  void Insert(std::vector<std::string> key, std::function<double()> callback);
  // Calls every callback; no family at all while there are none.
  void Collect(std::vector<prometheus::MetricFamily>* out) const;

  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::function<double()>> children_ ABSL_GUARDED_BY(mu_);
};

// All the metrics one process exports: a `prometheus::Registry` plus the callback families. Usually
// one per service process, created first and destroyed last.
class Registry {
 public:
  Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  // Labelled families. The returned reference lives as long as the Registry.
  CounterFamily& AddCounter(const std::string& name, const std::string& help,
                            const std::vector<std::string>& label_names);
  GaugeFamily& AddGauge(const std::string& name, const std::string& help,
                        const std::vector<std::string>& label_names);
  HistogramFamily& AddHistogram(const std::string& name, const std::string& help,
                                const std::vector<std::string>& label_names,
                                const std::vector<double>& bucket_bounds);
  CallbackFamily& AddCallbackCounter(const std::string& name, const std::string& help,
                                     const std::vector<std::string>& label_names);
  CallbackFamily& AddCallbackGauge(const std::string& name, const std::string& help,
                                   const std::vector<std::string>& label_names);

  // Unlabelled shortcuts: a family without labels and its only child, exposed from the start.
  Counter& AddCounter(const std::string& name, const std::string& help);
  Gauge& AddGauge(const std::string& name, const std::string& help);
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          const std::vector<double>& bucket_bounds);
  // Destroying the returned handle removes the whole family, so the name can be declared again.
  // A callback counter must never go down between calls.
  [[nodiscard]] CallbackRegistration AddCallbackCounter(const std::string& name,
                                                        const std::string& help,
                                                        std::function<double()> callback);
  [[nodiscard]] CallbackRegistration AddCallbackGauge(const std::string& name,
                                                      const std::string& help,
                                                      std::function<double()> callback);

  // Every family with at least one child in text format 0.0.4 (Content-Type `kTextContentType`),
  // written by prometheus-cpp's TextSerializer. Families are sorted by name, children by label
  // values, and labels appear in declaration order, so equal states render to equal bytes.
  std::string ExpositionText() const;

 private:
  // Checks the names `family` exposes against the other families' and takes it, CHECK-failing on
  // a taken name.
  void Insert(std::unique_ptr<internal::FamilyBase> family) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  template <typename T>
  Family<T>& AddFamily(const std::string& name, const std::string& help, MetricType type,
                       const std::vector<std::string>& label_names,
                       std::vector<double> bucket_bounds);
  CallbackFamily& AddCallbackFamily(const std::string& name, const std::string& help,
                                    MetricType type, const std::vector<std::string>& label_names);
  void RemoveFamily(const std::string& name);

  // Declared first so that it is destroyed last: families hold pointers into it.
  const std::unique_ptr<prometheus::Registry> prometheus_registry_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<internal::FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
  // Every series name a family exposes (`x`, or `x_bucket`, `x_sum`, `x_count` and `x` for a
  // histogram) -> that family's name; two families must never expose the same series name.
  std::map<std::string, std::string> series_names_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tongka::metrics

#endif  // TONGKA_LIBS_METRICS_METRICS_H_
