#include "libs/state_store/runtime_metrics.h"

#include "absl/strings/str_cat.h"

namespace tongka::state_store {

RuntimeMetrics::RuntimeMetrics(metrics::Registry* registry, const StateStore* store)
    : registry_(registry),
      batch_seconds_(registry->AddHistogram(
          "tongka_apply_batch_seconds",
          "Wall time to apply one consumed batch, and to commit to RocksDB when it "
          "commits (under a backlog one commit covers several batches).",
          {"loop"}, metrics::DefaultLatencyBuckets())),
      committed_(registry->AddCallbackGauge(
          "tongka_consumer_committed_offset",
          "Next offset to read, as committed in RocksDB beside the state.",
          {"loop", "topic", "partition"})),
      lag_(registry->AddCallbackGauge(
          "tongka_consumer_lag_events",
          "Records in the log not yet applied: log end offset minus committed offset.",
          {"loop", "topic", "partition"})),
      applied_(registry->AddCallbackCounter(
          "tongka_consumer_applied_events_total",
          "Records applied and committed by this process since it started.",
          {"loop", "topic", "partition"})),
      dropped_(registry->AddCallbackCounter(
          "tongka_consumer_dropped_events_total",
          "Records consumed and committed but not applied by this process since it started: "
          "reason=duplicate (an event_id the partition had already applied) or "
          "reason=misrouted (a key that hashes to another partition).",
          {"loop", "topic", "partition", "reason"})) {
  registrations_.push_back(registry->AddCallbackGauge(
      "tongka_outbox_depth_events",
      "Derived events committed to the outbox and not yet acknowledged by Kafka.",
      [store] { return static_cast<double>(store->OutboxDepth()); }));
  registrations_.push_back(registry->AddCallbackGauge(
      "tongka_state_store_size_bytes", "Approximate RocksDB size: SST files plus memtables.",
      [store] { return static_cast<double>(store->ApproximateSizeBytes()); }));
}

metrics::Histogram* RuntimeMetrics::BatchSeconds(const std::string& loop_name) {
  return &batch_seconds_.WithLabels({loop_name});
}

void RuntimeMetrics::WatchLoop(const std::string& loop_name, const ApplyLoop* loop) {
  for (const auto& [tp, unused] : loop->Progress()) {
    std::vector<std::string> labels = {loop_name, tp.topic, absl::StrCat(tp.partition)};
    auto progress_of = [loop, tp = tp] { return loop->Progress()[tp]; };
    registrations_.push_back(committed_.Register(
        labels, [progress_of] { return static_cast<double>(progress_of().next_offset); }));
    registrations_.push_back(lag_.Register(labels, [progress_of] {
      PartitionProgress p = progress_of();
      return p.high_watermark < 0
                 ? 0.0
                 : static_cast<double>(std::max<int64_t>(0, p.high_watermark - p.next_offset));
    }));
    registrations_.push_back(applied_.Register(
        labels, [progress_of] { return static_cast<double>(progress_of().applied_total); }));
    std::vector<std::string> duplicate = labels;
    duplicate.push_back("duplicate");
    registrations_.push_back(dropped_.Register(duplicate, [progress_of] {
      return static_cast<double>(progress_of().duplicates_dropped_total);
    }));
    std::vector<std::string> misrouted = labels;
    misrouted.push_back("misrouted");
    registrations_.push_back(dropped_.Register(misrouted, [progress_of] {
      return static_cast<double>(progress_of().misrouted_dropped_total);
    }));
  }
}

void RuntimeMetrics::WatchPublisher(const OutboxPublisher* publisher) {
  registrations_.push_back(registry_->AddCallbackCounter(
      "tongka_outbox_published_events_total",
      "Outbox entries Kafka acknowledged (a resend after a crash counts again).",
      [publisher] { return static_cast<double>(publisher->published_total()); }));
  registrations_.push_back(registry_->AddCallbackCounter(
      "tongka_outbox_publish_errors_total", "Outbox publish rounds that failed and were retried.",
      [publisher] { return static_cast<double>(publisher->errors_total()); }));
}

}  // namespace tongka::state_store
