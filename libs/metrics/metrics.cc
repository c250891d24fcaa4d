#include "libs/metrics/metrics.h"

#include <glog/logging.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace tongka::metrics {
namespace {

// The largest magnitude below which every integer is a double; beyond it an integral double is
// printed in exponent form, because its trailing digits would be invented.
constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

// Prometheus' metric name regex: [a-zA-Z_:][a-zA-Z0-9_:]*
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

// Prometheus rejects a whole scrape when one label value or help text is not UTF-8, so each
// invalid byte becomes U+FFFD, as Go's strings.ToValidUTF8 would do per byte.
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

// HELP text escapes backslash and newline (format 0.0.4).
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

// Label values also escape the double quote that delimits them.
std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '"') {
      out.append("\\\"");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Prometheus' float syntax: integers without exponent or fraction where the double holds them
// exactly; otherwise the shortest text that reads back to the same double, in %g style (exponent
// below 1e-4 and from 1e6 on, like the Go client's strconv 'g'); and `+Inf`, `-Inf`, `NaN`.
std::string FormatDouble(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::trunc(value) == value && std::fabs(value) <= kMaxExactInteger) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buffer[64];
  const std::to_chars_result result =
      std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::general);
  CHECK(result.ec == std::errc()) << "to_chars failed for a double";
  return std::string(buffer, result.ptr);
}

// Appends one sample line: `name{labels,le="..."} value`.
void AppendSample(absl::string_view name, absl::string_view suffix, absl::string_view labels,
                  absl::string_view le, double value, std::string* out) {
  absl::StrAppend(out, name, suffix);
  if (!labels.empty() || !le.empty()) {
    out->push_back('{');
    out->append(labels.data(), labels.size());
    if (!le.empty()) {
      absl::StrAppend(out, labels.empty() ? "" : ",", "le=\"", le, "\"");
    }
    out->push_back('}');
  }
  absl::StrAppend(out, " ", FormatDouble(value), "\n");
}

void AppendChildSamples(const Counter& counter, absl::string_view name, absl::string_view labels,
                        std::string* out) {
  AppendSample(name, "", labels, "", counter.Value(), out);
}

void AppendChildSamples(const Gauge& gauge, absl::string_view name, absl::string_view labels,
                        std::string* out) {
  AppendSample(name, "", labels, "", gauge.Value(), out);
}

void AppendChildSamples(const Histogram& histogram, absl::string_view name,
                        absl::string_view labels, std::string* out) {
  const Histogram::Snapshot snapshot = histogram.GetSnapshot();
  for (size_t i = 0; i < snapshot.bucket_bounds.size(); ++i) {
    AppendSample(name, "_bucket", labels, FormatDouble(snapshot.bucket_bounds[i]),
                 static_cast<double>(snapshot.cumulative_counts[i]), out);
  }
  AppendSample(name, "_bucket", labels, "+Inf", static_cast<double>(snapshot.count), out);
  AppendSample(name, "_sum", labels, "", snapshot.sum, out);
  AppendSample(name, "_count", labels, "", static_cast<double>(snapshot.count), out);
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  LOG(FATAL) << "unknown MetricType " << static_cast<int>(type);
}

// Adds with a compare-and-swap loop: C++17 std::atomic<double> has no fetch_add.
void AtomicAdd(std::atomic<double>* target, double delta) {
  double current = target->load(std::memory_order_relaxed);
  while (!target->compare_exchange_weak(current, current + delta, std::memory_order_relaxed)) {
  }
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

double Counter::Value() const {
  return static_cast<double>(integer_.load(std::memory_order_relaxed)) +
         fractional_.load(std::memory_order_relaxed);
}

void Counter::AddDouble(double delta) {
  // `!(delta >= 0)` also catches NaN, which would poison the counter for good.
  if (!(delta >= 0)) FailBadIncrement(delta);
  AtomicAdd(&fractional_, delta);
}

void Counter::FailBadIncrement(double delta) {
  LOG(FATAL) << "Counter::Increment(" << delta
             << "): a counter only goes up; use a Gauge for values that go down";
}

void Gauge::Add(double delta) { AtomicAdd(&value_, delta); }

namespace {

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

}  // namespace

Histogram::Histogram(std::vector<double> bucket_bounds)
    : bounds_(CheckedBucketBounds(std::move(bucket_bounds))),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // The first bucket whose bound is >= value; NaN satisfies no comparison and lands in +Inf.
  const auto it = std::partition_point(bounds_.begin(), bounds_.end(),
                                       [value](double bound) { return !(bound >= value); });
  counts_[it - bounds_.begin()].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(&sum_, value);
}

Histogram::Snapshot Histogram::GetSnapshot() const {
  Snapshot snapshot;
  snapshot.bucket_bounds = bounds_;
  snapshot.cumulative_counts.reserve(bounds_.size() + 1);
  // The count is the sum of the buckets read here, never a separate counter, so `+Inf` and
  // `_count` agree even while other threads observe.
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative_counts.push_back(cumulative);
  }
  snapshot.count = cumulative;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

// ---- Families ----

namespace internal {

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(SanitizeUtf8(help)),
      type_(type),
      label_names_(std::move(label_names)) {
  CHECK(IsValidMetricName(name_)) << "invalid metric name '" << name_
                                  << "': must match [a-zA-Z_:][a-zA-Z0-9_:]*";
  CHECK(!help_.empty()) << "metric " << name_ << " needs help text";
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

void FamilyBase::AppendText(std::string* out) const {
  const size_t start = out->size();
  absl::StrAppend(out, "# HELP ", name_, " ", EscapeHelp(help_), "\n", "# TYPE ", name_, " ",
                  TypeName(type_), "\n");
  const size_t header_end = out->size();
  AppendSamples(out);
  if (out->size() == header_end) out->resize(start);
}

std::vector<std::string> FamilyBase::MakeKey(const std::vector<std::string>& label_values) const {
  CHECK_EQ(label_values.size(), label_names_.size())
      << "metric " << name_ << " has labels {" << absl::StrJoin(label_names_, ",") << "} but got "
      << label_values.size() << " values {" << absl::StrJoin(label_values, ",") << "}";
  std::vector<std::string> key;
  key.reserve(label_values.size());
  for (const std::string& value : label_values) key.push_back(SanitizeUtf8(value));
  return key;
}

std::string FamilyBase::RenderLabels(const std::vector<std::string>& key) const {
  std::string text;
  for (size_t i = 0; i < key.size(); ++i) {
    absl::StrAppend(&text, i == 0 ? "" : ",", label_names_[i], "=\"", EscapeLabelValue(key[i]),
                    "\"");
  }
  return text;
}

}  // namespace internal

template <typename T>
Family<T>::Family(std::string name, std::string help, MetricType type,
                  std::vector<std::string> label_names,
                  std::function<std::unique_ptr<T>()> new_child)
    : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
      new_child_(std::move(new_child)) {}

template <typename T>
T& Family<T>::WithLabels(const std::vector<std::string>& label_values) {
  std::vector<std::string> key = MakeKey(label_values);
  absl::MutexLock lock(&mu_);
  auto it = children_.find(key);
  if (it == children_.end()) {
    Child child{RenderLabels(key), new_child_()};
    it = children_.emplace(std::move(key), std::move(child)).first;
  }
  return *it->second.metric;
}

template <typename T>
void Family<T>::AppendSamples(std::string* out) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [key, child] : children_) {
    AppendChildSamples(*child.metric, name(), child.labels_text, out);
  }
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
  std::string labels_text = RenderLabels(key);
  absl::MutexLock lock(&mu_);
  const bool inserted =
      children_.emplace(std::move(key), Child{std::move(labels_text), std::move(callback)}).second;
  CHECK(inserted) << "metric " << name() << ": a callback is already registered for these labels";
}

void CallbackFamily::AppendSamples(std::string* out) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [key, child] : children_) {
    AppendSample(name(), "", child.labels_text, "", child.callback(), out);
  }
}

// ---- Registry ----

Registry::Registry() = default;
Registry::~Registry() = default;

void Registry::Insert(std::unique_ptr<internal::FamilyBase> family) {
  const std::string& name = family->name();
  std::vector<std::string> series = {name};
  if (family->type() == MetricType::kHistogram) {
    series.push_back(name + "_bucket");
    series.push_back(name + "_sum");
    series.push_back(name + "_count");
  }
  absl::MutexLock lock(&mu_);
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

CounterFamily& Registry::AddCounter(const std::string& name, const std::string& help,
                                    const std::vector<std::string>& label_names) {
  auto* family = new CounterFamily(name, help, MetricType::kCounter, label_names,
                                   [] { return std::make_unique<Counter>(); });
  Insert(std::unique_ptr<internal::FamilyBase>(family));
  return *family;
}

GaugeFamily& Registry::AddGauge(const std::string& name, const std::string& help,
                                const std::vector<std::string>& label_names) {
  auto* family = new GaugeFamily(name, help, MetricType::kGauge, label_names,
                                 [] { return std::make_unique<Gauge>(); });
  Insert(std::unique_ptr<internal::FamilyBase>(family));
  return *family;
}

HistogramFamily& Registry::AddHistogram(const std::string& name, const std::string& help,
                                        const std::vector<std::string>& label_names,
                                        const std::vector<double>& bucket_bounds) {
  // Validate the bounds now, at declaration, rather than when the first child appears.
  std::vector<double> bounds = CheckedBucketBounds(bucket_bounds);
  auto* family = new HistogramFamily(
      name, help, MetricType::kHistogram, label_names,
      [bounds = std::move(bounds)] { return std::make_unique<Histogram>(bounds); });
  Insert(std::unique_ptr<internal::FamilyBase>(family));
  return *family;
}

CallbackFamily& Registry::AddCallbackCounter(const std::string& name, const std::string& help,
                                             const std::vector<std::string>& label_names) {
  auto* family = new CallbackFamily(name, help, MetricType::kCounter, label_names);
  Insert(std::unique_ptr<internal::FamilyBase>(family));
  return *family;
}

CallbackFamily& Registry::AddCallbackGauge(const std::string& name, const std::string& help,
                                           const std::vector<std::string>& label_names) {
  auto* family = new CallbackFamily(name, help, MetricType::kGauge, label_names);
  Insert(std::unique_ptr<internal::FamilyBase>(family));
  return *family;
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
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) family->AppendText(&out);
  return out;
}

}  // namespace tongka::metrics
