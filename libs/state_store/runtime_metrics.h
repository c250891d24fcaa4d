// RuntimeMetrics: the Prometheus series every event-sourced Tongka service exports about its
// runtime, declared in one place: consumer position, lag and apply totals per partition, apply
// batch latency, outbox depth and publishing, and the RocksDB size.
//
//   tongka_consumer_committed_offset{loop,topic,partition}   next offset committed to RocksDB
//   tongka_consumer_lag_events{loop,topic,partition}         log end minus committed offset
//   tongka_consumer_applied_events_total{loop,topic,partition}
//   tongka_consumer_dropped_events_total{loop,topic,partition,reason}  consumed, not applied:
//                                                            reason "duplicate" (an event_id
//                                                            seen before) or "misrouted" (a key
//                                                            hashing to another partition)
//   tongka_apply_batch_seconds{loop}                         histogram, apply + commit per batch
//   tongka_outbox_depth_events                               committed, not yet in Kafka
//   tongka_outbox_published_events_total, tongka_outbox_publish_errors_total
//   tongka_state_store_size_bytes
//
// Ownership: RuntimeMetrics holds the callback registrations; destroy it before the loops, the
// publisher and the store it reads (the callbacks stop before the destructor returns).
// Thread-safety: the callbacks are called on the scraping thread and only read thread-safe
// accessors.
//
// Example:
//   RuntimeMetrics runtime(&registry, store.get());
//   ApplyLoopOptions options{..., .batch_seconds = runtime.BatchSeconds("txn")};
//   ... loop.Start() ...
//   runtime.WatchLoop("txn", &loop);
//   runtime.WatchPublisher(&publisher);
#ifndef TONGKA_LIBS_STATE_STORE_RUNTIME_METRICS_H_
#define TONGKA_LIBS_STATE_STORE_RUNTIME_METRICS_H_

#include <string>
#include <vector>

#include "libs/metrics/metrics.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/outbox_publisher.h"
#include "libs/state_store/state_store.h"

namespace tongka::state_store {

class RuntimeMetrics {
 public:
  RuntimeMetrics(metrics::Registry* registry, const StateStore* store);

  // The batch latency histogram child for a loop; pass it in ApplyLoopOptions::batch_seconds.
  metrics::Histogram* BatchSeconds(const std::string& loop_name);

  // Exports the per-partition series of a started loop (its partitions are known after Start).
  void WatchLoop(const std::string& loop_name, const ApplyLoop* loop);

  void WatchPublisher(const OutboxPublisher* publisher);

 private:
  metrics::Registry* registry_;
  metrics::HistogramFamily& batch_seconds_;
  metrics::CallbackFamily& committed_;
  metrics::CallbackFamily& lag_;
  metrics::CallbackFamily& applied_;
  metrics::CallbackFamily& dropped_;
  std::vector<metrics::CallbackRegistration> registrations_;
};

}  // namespace tongka::state_store

#endif  // TONGKA_LIBS_STATE_STORE_RUNTIME_METRICS_H_
