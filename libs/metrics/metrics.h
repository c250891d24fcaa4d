// Tongka's Prometheus metrics: a registry of counter, gauge and histogram families, and its text
// exposition (format 0.0.4).
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
// Thread-safety: everything is thread-safe. `Counter`, `Gauge` and `Histogram` updates are
// lock-free (relaxed std::atomic; a double is added with a compare-and-swap loop). `WithLabels`
// takes the family's mutex, which is why hot paths cache the child. `ExpositionText` holds the
// registry's mutex while it renders, and calls the callbacks under it.
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

#include <atomic>
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

// A monotonically increasing value, such as events applied. Integer increments are exact (an
// int64 accumulator); fractional ones go to a separate double accumulator. The exposed value is
// their sum.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment() { AddInteger(1); }

  // Adds `delta`, which must be >= 0 (a counter that goes down is a bug; use a Gauge).
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
  void Increment(T delta) {
    if constexpr (std::is_integral_v<T>) {
      AddInteger(static_cast<int64_t>(delta));
    } else {
      AddDouble(static_cast<double>(delta));
    }
  }

  double Value() const;

 private:
  void AddInteger(int64_t delta) {
    if (delta < 0) FailBadIncrement(static_cast<double>(delta));
    integer_.fetch_add(delta, std::memory_order_relaxed);
  }
  void AddDouble(double delta);
  [[noreturn]] static void FailBadIncrement(double delta);

  std::atomic<int64_t> integer_{0};
  std::atomic<double> fractional_{0.0};
};

// A value that goes up and down, such as outbox depth.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  // Adds `delta`, which may be negative.
  void Add(double delta);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts observations into buckets by upper bound (base units, e.g. seconds) and keeps their sum.
// An observation equal to a bound counts in that bound's bucket, as Prometheus' `le` says. NaN
// counts only in `+Inf`.
class Histogram {
 public:
  // A point-in-time copy, for tests and for the exposition.
  struct Snapshot {
    std::vector<double> bucket_bounds;
    // Cumulative: `cumulative_counts[i]` observations were <= `bucket_bounds[i]`; the last element
    // (one past the bounds) is the `+Inf` bucket and equals `count`.
    std::vector<uint64_t> cumulative_counts;
    double sum = 0;
    uint64_t count = 0;
  };

  // `bucket_bounds` must be strictly increasing and not NaN; a trailing +Inf is dropped because the
  // +Inf bucket is always there. CHECK-fails otherwise.
  explicit Histogram(std::vector<double> bucket_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);
  Snapshot GetSnapshot() const;

 private:
  const std::vector<double> bounds_;
  // Per bucket, not cumulative, so that Observe touches one counter; bounds_.size() + 1 of them.
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

namespace internal {

// What every family shares: its name, help, type and label names, and how it is rendered. Users
// see only the concrete families below.
class FamilyBase {
 public:
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;
  virtual ~FamilyBase();

  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends `# HELP`, `# TYPE` and one line per sample; nothing at all while the family has no
  // children (as the Go client does).
  void AppendText(std::string* out) const;

 protected:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names);

  // The map key of a child: the values, after CHECK-ing their count and replacing invalid UTF-8.
  std::vector<std::string> MakeKey(const std::vector<std::string>& label_values) const;
  // The escaped label pairs of a child, `city="310000",mode="bus"`; empty without labels.
  std::string RenderLabels(const std::vector<std::string>& key) const;

 private:
  virtual void AppendSamples(std::string* out) const = 0;

  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
};

}  // namespace internal

class Registry;

// A family of counters, gauges or histograms.
template <typename T>
class Family final : public internal::FamilyBase {
 public:
  // Returns the child for `label_values`, one per label name in declaration order, created at zero
  // on first use. CHECK-fails on the wrong number of values. Takes a mutex: cache the result.
  T& WithLabels(const std::vector<std::string>& label_values);

 private:
  friend class Registry;
  struct Child {
    std::string labels_text;  // Rendered once, so scrapes do not re-escape.
    std::unique_ptr<T> metric;
  };

  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::function<std::unique_ptr<T>()> new_child);
  void AppendSamples(std::string* out) const override;

  const std::function<std::unique_ptr<T>()> new_child_;
  mutable absl::Mutex mu_;
  // A std::map keeps children in label-value order, which makes the exposition deterministic.
  std::map<std::vector<std::string>, Child> children_ ABSL_GUARDED_BY(mu_);
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
// that live elsewhere (RocksDB size, consumer lag, process memory). Callbacks run on the scraping
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
  struct Child {
    std::string labels_text;
    std::function<double()> callback;
  };

  using FamilyBase::FamilyBase;
  void Insert(std::vector<std::string> key, std::function<double()> callback);
  void AppendSamples(std::string* out) const override;

  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, Child> children_ ABSL_GUARDED_BY(mu_);
};

// All the metrics one process exports. Usually one per service process, created first and
// destroyed last.
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

  // Every family in text format 0.0.4 (Content-Type `kTextContentType`), families sorted by name
  // and children by label values, so equal states render to equal bytes.
  std::string ExpositionText() const;

 private:
  // Validates and takes `family`, CHECK-failing on a bad or taken name.
  void Insert(std::unique_ptr<internal::FamilyBase> family);
  void RemoveFamily(const std::string& name);

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<internal::FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
  // Every series name a family exposes (`x`, or `x_bucket`, `x_sum`, `x_count` and `x` for a
  // histogram) -> that family's name; two families must never expose the same series name.
  std::map<std::string, std::string> series_names_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tongka::metrics

#endif  // TONGKA_LIBS_METRICS_METRICS_H_
