#include "libs/metrics/metrics.h"

#include <glog/logging.h>
#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace tongka::metrics {
namespace {

// Prometheus' metric name regex: [a-zA-Z_:][a-zA-Z0-9_:]*. prometheus-cpp checks the same but
// reports by throwing, and Tongka does not use exceptions: names are checked here first.
bool IsValidMetricName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Prometheus' label name regex: [a-zA-Z_][a-zA-Z0-9_]*
bool IsValidLabelName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Returns the length of the valid UTF-8 sequence at the start of `s`, or 0 if it is not one (an
// overlong form, a surrogate, a code point above U+10FFFF, or a truncated sequence).
size_t Utf8SequenceLength(absl::string_view s) {
  const auto byte = [&s](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return 1;
  size_t length;
  unsigned char min_b1 = 0x80, max_b1 = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) min_b1 = 0xA0;  // Overlong.
    if (b0 == 0xED) max_b1 = 0x9F;  // Surrogates.
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) min_b1 = 0x90;  // Overlong.
    if (b0 == 0xF4) max_b1 = 0x8F;  // Above U+10FFFF.
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  if (byte(1) < min_b1 || byte(1) > max_b1) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// Prometheus rejects a whole scrape when one label value or help text is not UTF-8, and
// prometheus-cpp passes bytes through, so each invalid byte becomes U+FFFD, as Go's
// strings.ToValidUTF8 would do per byte.
std::string SanitizeUtf8(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    const size_t length = Utf8SequenceLength(s);
    if (length == 0) {
      out.append("\xEF\xBF\xBD");
      s.remove_prefix(1);
    } else {
      out.append(s.data(), length);
      s.remove_prefix(length);
    }
  }
  return out;
}

// HELP text escapes backslash and newline (format 0.0.4). prometheus-cpp 1.0.1's serializer
// escapes label values but writes help verbatim, where a newline would end the line early.
std::string EscapeHelp(absl::string_view help) {
  std::string out;
  for (const char c : help) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<double> CheckedBucketBounds(std::vector<double> bounds) {
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  for (size_t i = 0; i < bounds.size(); ++i) {
    CHECK(!std::isnan(bounds[i])) << "histogram bucket bound " << i << " is NaN";
    CHECK(i == 0 || bounds[i - 1] < bounds[i])
        << "histogram bucket bounds must be strictly increasing; bound " << i << " (" << bounds[i]
        << ") follows " << bounds[i - 1];
  }
  return bounds;
}

template <typename P>
prometheus::Family<P>& BuildFamily(const std::string& name, const std::string& help,
                                   prometheus::Registry* registry);

template <>
prometheus::Family<prometheus::Counter>& BuildFamily(const std::string& name,
                                                     const std::string& help,
                                                     prometheus::Registry* registry) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(*registry);
}

template <>
prometheus::Family<prometheus::Gauge>& BuildFamily(const std::string& name, const std::string& help,
                                                   prometheus::Registry* registry) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(*registry);
}

template <>
prometheus::Family<prometheus::Histogram>& BuildFamily(const std::string& name,
                                                       const std::string& help,
                                                       prometheus::Registry* registry) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(*registry);
}

// Puts a child's labels back in the family's declaration order (prometheus-cpp keeps them in a
// name-sorted map), so `{outcome="accepted",city="310000"}` reads as the family was declared.
void OrderLabels(const std::vector<std::string>& label_names, prometheus::ClientMetric* metric) {
  if (metric->label.size() != label_names.size()) return;  // Never: every child has them all.
  std::vector<prometheus::ClientMetric::Label> ordered;
  ordered.reserve(label_names.size());
  for (const std::string& name : label_names) {
    for (prometheus::ClientMetric::Label& label : metric->label) {
      if (label.name == name) ordered.push_back(std::move(label));
    }
  }
  metric->label = std::move(ordered);
}

// Equal states render to equal bytes: prometheus-cpp keeps a family's children in a hash map and
// lists families by type, so families are sorted by name and children by label values.
void SortForExposition(std::vector<prometheus::MetricFamily>* families) {
  for (prometheus::MetricFamily& family : *families) {
    std::sort(family.metric.begin(), family.metric.end(),
              [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) {
                return std::lexicographical_compare(
                    a.label.begin(), a.label.end(), b.label.begin(), b.label.end(),
                    [](const prometheus::ClientMetric::Label& x,
                       const prometheus::ClientMetric::Label& y) { return x.value < y.value; });
              });
  }
  std::sort(families->begin(), families->end(),
            [](const prometheus::MetricFamily& a, const prometheus::MetricFamily& b) {
              return a.name < b.name;
            });
}

}  // namespace

std::vector<double> DefaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  CHECK_GT(start, 0) << "ExponentialBuckets: start must be > 0";
  CHECK_GT(factor, 1) << "ExponentialBuckets: factor must be > 1";
  CHECK_GE(count, 1) << "ExponentialBuckets: count must be >= 1";
  std::vector<double> bounds;
  bounds.reserve(count);
  double bound = start;
  for (int i = 0; i < count; ++i) {
    bounds.push_back(bound);
    bound *= factor;
  }
  return bounds;
}

// ---- Counter, Gauge, Histogram ----

Counter::Counter() : owned_(std::make_unique<prometheus::Counter>()), counter_(owned_.get()) {}

Gauge::Gauge() : owned_(std::make_unique<prometheus::Gauge>()), gauge_(owned_.get()) {}

void Counter::FailBadIncrement(double delta) {
  LOG(FATAL) << "Counter::Increment(" << delta
             << "): a counter only goes up; use a Gauge for values that go down";
}

Histogram::Histogram(std::vector<double> bucket_bounds)
    : bounds_(CheckedBucketBounds(std::move(bucket_bounds))),
      owned_(std::make_unique<prometheus::Histogram>(bounds_)),
      histogram_(owned_.get()) {}

Histogram::Histogram(std::vector<double> checked_bounds, prometheus::Histogram* histogram)
    : bounds_(std::move(checked_bounds)), histogram_(histogram) {}

Histogram::~Histogram() = default;

void Histogram::Observe(double value) {
  if (std::isnan(value)) {
    // prometheus-cpp finds the bucket with std::lower_bound, which puts NaN in the lowest bucket;
    // a NaN is no evidence of a fast request, so it goes to +Inf only (and poisons the sum, which
    // is what makes it visible).
    std::vector<double> increments(bounds_.size() + 1, 0.0);
    increments.back() = 1;
    histogram_->ObserveMultiple(increments, value);
    return;
  }
  histogram_->Observe(value);
}

Histogram::Snapshot Histogram::GetSnapshot() const {
  // Collect reads buckets and sum under the histogram's mutex, so they agree with each other.
  const prometheus::ClientMetric metric = histogram_->Collect();
  Snapshot snapshot;
  snapshot.bucket_bounds = bounds_;
  snapshot.cumulative_counts.reserve(metric.histogram.bucket.size());
  for (const prometheus::ClientMetric::Bucket& bucket : metric.histogram.bucket) {
    snapshot.cumulative_counts.push_back(bucket.cumulative_count);
  }
  snapshot.sum = metric.histogram.sample_sum;
  snapshot.count = metric.histogram.sample_count;
  return snapshot;
}

// ---- Families ----

namespace internal {

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      escaped_help_(EscapeHelp(SanitizeUtf8(help))),
      type_(type),
      label_names_(std::move(label_names)) {
  CHECK(IsValidMetricName(name_)) << "invalid metric name '" << name_
                                  << "': must match [a-zA-Z_:][a-zA-Z0-9_:]*";
  CHECK(!escaped_help_.empty()) << "metric " << name_ << " needs help text";
  if (type_ == MetricType::kCounter) {
    CHECK(absl::EndsWith(name_, "_total"))
        << "counter " << name_ << " must end in _total (Prometheus naming)";
  }
  for (size_t i = 0; i < label_names_.size(); ++i) {
    const std::string& label = label_names_[i];
    CHECK(IsValidLabelName(label)) << "metric " << name_ << ": invalid label name '" << label
                                   << "': must match [a-zA-Z_][a-zA-Z0-9_]*";
    CHECK(!absl::StartsWith(label, "__"))
        << "metric " << name_ << ": label name '" << label << "' is reserved (starts with __)";
    CHECK(!(type_ == MetricType::kHistogram && label == "le"))
        << "histogram " << name_ << ": label name 'le' is reserved for buckets";
    for (size_t j = 0; j < i; ++j) {
      CHECK_NE(label, label_names_[j]) << "metric " << name_ << ": duplicate label name";
    }
  }
}

FamilyBase::~FamilyBase() = default;

std::vector<std::string> FamilyBase::MakeKey(const std::vector<std::string>& label_values) const {
  CHECK_EQ(label_values.size(), label_names_.size())
      << "metric " << name_ << " has labels {" << absl::StrJoin(label_names_, ",") << "} but got "
      << label_values.size() << " values {" << absl::StrJoin(label_values, ",") << "}";
  std::vector<std::string> key;
  key.reserve(label_values.size());
  for (const std::string& value : label_values) key.push_back(SanitizeUtf8(value));
  return key;
}

std::map<std::string, std::string> FamilyBase::MakeLabels(
    const std::vector<std::string>& key) const {
  std::map<std::string, std::string> labels;
  for (size_t i = 0; i < key.size(); ++i) labels.emplace(label_names_[i], key[i]);
  return labels;
}

}  // namespace internal

template <typename T>
Family<T>::Family(std::string name, std::string help, MetricType type,
                  std::vector<std::string> label_names, std::vector<double> bucket_bounds)
    : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
      bucket_bounds_(std::move(bucket_bounds)) {}

template <typename T>
void Family<T>::Attach(prometheus::Registry* registry) {
  CHECK(family_ == nullptr) << "metric " << name() << " attached twice";
  family_ =
      &BuildFamily<typename internal::PrometheusType<T>::type>(name(), escaped_help(), registry);
}

template <typename T>
Family<T>::~Family() = default;

template <typename T>
T& Family<T>::WithLabels(const std::vector<std::string>& label_values) {
  std::vector<std::string> key = MakeKey(label_values);
  absl::MutexLock lock(&mu_);
  auto it = children_.find(key);
  if (it == children_.end()) {
    std::unique_ptr<T> child;
    if constexpr (std::is_same_v<T, Histogram>) {
      child.reset(new Histogram(bucket_bounds_, &family_->Add(MakeLabels(key), bucket_bounds_)));
    } else {
      child.reset(new T(&family_->Add(MakeLabels(key))));
    }
    it = children_.emplace(std::move(key), std::move(child)).first;
  }
  return *it->second;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---- Callbacks ----

CallbackRegistration::CallbackRegistration(std::function<void()> unregister)
    : unregister_(std::move(unregister)) {}

CallbackRegistration::CallbackRegistration(CallbackRegistration&& other) noexcept
    : unregister_(std::exchange(other.unregister_, nullptr)) {}

CallbackRegistration& CallbackRegistration::operator=(CallbackRegistration&& other) noexcept {
  if (this != &other) {
    Reset();
    unregister_ = std::exchange(other.unregister_, nullptr);
  }
  return *this;
}

CallbackRegistration::~CallbackRegistration() { Reset(); }

void CallbackRegistration::Reset() {
  if (unregister_) std::exchange(unregister_, nullptr)();
}

CallbackRegistration CallbackFamily::Register(const std::vector<std::string>& label_values,
                                              std::function<double()> callback) {
  std::vector<std::string> key = MakeKey(label_values);
  Insert(key, std::move(callback));
  return CallbackRegistration([this, key = std::move(key)] {
    absl::MutexLock lock(&mu_);
    children_.erase(key);
  });
}

void CallbackFamily::Insert(std::vector<std::string> key, std::function<double()> callback) {
  CHECK(callback) << "metric " << name() << ": null callback";
  absl::MutexLock lock(&mu_);
  const bool inserted = children_.emplace(std::move(key), std::move(callback)).second;
  CHECK(inserted) << "metric " << name() << ": a callback is already registered for these labels";
}

void CallbackFamily::Collect(std::vector<prometheus::MetricFamily>* out) const {
  absl::MutexLock lock(&mu_);
  if (children_.empty()) return;
  prometheus::MetricFamily family;
  family.name = name();
  family.help = escaped_help();
  family.type = type() == MetricType::kCounter ? prometheus::MetricType::Counter
                                               : prometheus::MetricType::Gauge;
  family.metric.reserve(children_.size());
  for (const auto& [key, callback] : children_) {
    prometheus::ClientMetric metric;
    for (size_t i = 0; i < key.size(); ++i) metric.label.push_back({label_names()[i], key[i]});
    const double value = callback();
    if (type() == MetricType::kCounter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
  }
  out->push_back(std::move(family));
}

// ---- Registry ----

Registry::Registry() : prometheus_registry_(std::make_unique<prometheus::Registry>()) {}
Registry::~Registry() = default;

void Registry::Insert(std::unique_ptr<internal::FamilyBase> family) {
  const std::string& name = family->name();
  std::vector<std::string> series = {name};
  if (family->type() == MetricType::kHistogram) {
    series.push_back(name + "_bucket");
    series.push_back(name + "_sum");
    series.push_back(name + "_count");
  }
  CHECK(families_.find(name) == families_.end()) << "metric " << name << " is declared twice";
  for (const std::string& s : series) {
    const auto it = series_names_.find(s);
    CHECK(it == series_names_.end()) << "metric " << name << " would expose the series " << s
                                     << ", which metric " << it->second << " already exposes";
  }
  for (const std::string& s : series) series_names_.emplace(s, name);
  families_.emplace(name, std::move(family));
}

void Registry::RemoveFamily(const std::string& name) {
  absl::MutexLock lock(&mu_);
  families_.erase(name);
  for (auto it = series_names_.begin(); it != series_names_.end();) {
    it = it->second == name ? series_names_.erase(it) : std::next(it);
  }
}

template <typename T>
Family<T>& Registry::AddFamily(const std::string& name, const std::string& help, MetricType type,
                               const std::vector<std::string>& label_names,
                               std::vector<double> bucket_bounds) {
  auto* family = new Family<T>(name, help, type, label_names, std::move(bucket_bounds));
  absl::MutexLock lock(&mu_);
  Insert(std::unique_ptr<internal::FamilyBase>(family));
  family->Attach(prometheus_registry_.get());
  return *family;
}

CallbackFamily& Registry::AddCallbackFamily(const std::string& name, const std::string& help,
                                            MetricType type,
                                            const std::vector<std::string>& label_names) {
  auto* family = new CallbackFamily(name, help, type, label_names);
  absl::MutexLock lock(&mu_);
  Insert(std::unique_ptr<internal::FamilyBase>(family));
  return *family;
}

CounterFamily& Registry::AddCounter(const std::string& name, const std::string& help,
                                    const std::vector<std::string>& label_names) {
  return AddFamily<Counter>(name, help, MetricType::kCounter, label_names, {});
}

GaugeFamily& Registry::AddGauge(const std::string& name, const std::string& help,
                                const std::vector<std::string>& label_names) {
  return AddFamily<Gauge>(name, help, MetricType::kGauge, label_names, {});
}

HistogramFamily& Registry::AddHistogram(const std::string& name, const std::string& help,
                                        const std::vector<std::string>& label_names,
                                        const std::vector<double>& bucket_bounds) {
  // Validate the bounds now, at declaration, rather than when the first child appears.
  return AddFamily<Histogram>(name, help, MetricType::kHistogram, label_names,
                              CheckedBucketBounds(bucket_bounds));
}

CallbackFamily& Registry::AddCallbackCounter(const std::string& name, const std::string& help,
                                             const std::vector<std::string>& label_names) {
  return AddCallbackFamily(name, help, MetricType::kCounter, label_names);
}

CallbackFamily& Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                           const std::vector<std::string>& label_names) {
  return AddCallbackFamily(name, help, MetricType::kGauge, label_names);
}

Counter& Registry::AddCounter(const std::string& name, const std::string& help) {
  return AddCounter(name, help, std::vector<std::string>{}).WithLabels({});
}

Gauge& Registry::AddGauge(const std::string& name, const std::string& help) {
  return AddGauge(name, help, std::vector<std::string>{}).WithLabels({});
}

Histogram& Registry::AddHistogram(const std::string& name, const std::string& help,
                                  const std::vector<double>& bucket_bounds) {
  return AddHistogram(name, help, {}, bucket_bounds).WithLabels({});
}

CallbackRegistration Registry::AddCallbackCounter(const std::string& name, const std::string& help,
                                                  std::function<double()> callback) {
  AddCallbackCounter(name, help, std::vector<std::string>{}).Insert({}, std::move(callback));
  return CallbackRegistration([this, name] { RemoveFamily(name); });
}

CallbackRegistration Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                                std::function<double()> callback) {
  AddCallbackGauge(name, help, std::vector<std::string>{}).Insert({}, std::move(callback));
  return CallbackRegistration([this, name] { RemoveFamily(name); });
}

std::string Registry::ExpositionText() const {
  absl::MutexLock lock(&mu_);
  std::vector<prometheus::MetricFamily> families = prometheus_registry_->Collect();
  for (prometheus::MetricFamily& collected : families) {
    const auto it = families_.find(collected.name);
    CHECK(it != families_.end()) << "prometheus-cpp collected unknown metric " << collected.name;
    for (prometheus::ClientMetric& metric : collected.metric) {
      OrderLabels(it->second->label_names(), &metric);
    }
  }
  for (const auto& [name, family] : families_) {
    if (const auto* callbacks = dynamic_cast<const CallbackFamily*>(family.get())) {
      callbacks->Collect(&families);
    }
  }
  SortForExposition(&families);
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace tongka::metrics
