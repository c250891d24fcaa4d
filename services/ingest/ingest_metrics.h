// IngestMetrics: every Prometheus series the ingest service exports, declared in one place.
//
//   tongka_ingest_items_total{outcome,city}        accepted | duplicate | conflict | rejected, by
//                                                  acquirer city ("other" for non-members)
//   tongka_ingest_rejected_total{rule,city}        rejections by the rule broken
//   tongka_ingest_cross_city_accepted_total{city}  accepted where issuer != acquirer; the
//                                                  cross-city share is its rate over
//                                                  items_total{outcome="accepted"}
//   tongka_ingest_late_accepted_total{city}        accepted older than the late horizon
//   tongka_ingest_batch_items                      histogram: transactions per request
//   tongka_ingest_ack_seconds{rpc}                 histogram: request received -> answered (OK)
//   tongka_ingest_requests_total{rpc,code}         requests by final gRPC status code
//   tongka_ingest_kafka_delivery_seconds           histogram: produce -> delivery report
//   tongka_ingest_kafka_delivery_errors_total{code} delivery reports that failed
//   tongka_ingest_kafka_queue_full_total           produce refused, local queue full
//   tongka_ingest_dedup_write_errors_total         Kafka has it, the dedup entry failed to write
//   tongka_ingest_dedup_pruned_total               entries past the dedup horizon deleted
//   tongka_ingest_inflight_items                   produced, no delivery report yet
//   tongka_ingest_calls_in_progress                unary calls being served + open streams
//                                                  (bounded by max_concurrent_calls)
//   tongka_ingest_admitted_items                   transactions of the batches being served
//                                                  (bounded by max_inflight_items)
//   tongka_ingest_refused_total{limit}             calls refused RESOURCE_EXHAUSTED by a limit:
//                                                  max_concurrent_calls | max_inflight_items |
//                                                  threads (the system refused a stream batch's
//                                                  worker thread)
// plus tongka_state_store_size_bytes (libs/state_store RuntimeMetrics) and
// tongka_grpc_unauthenticated_calls_total, registered by the app.
//
// Ownership: references into the Registry, which must outlive this struct.
// Thread-safety: every update is a lock-free atomic; the per-city children are looked up once at
// construction (member cities are a fixed set), only rejections by rule use WithLabels.
//
// Example:
//   IngestMetrics metrics(&registry);
//   metrics.City(310000).accepted->Increment();
#ifndef TONGKA_SERVICES_INGEST_INGEST_METRICS_H_
#define TONGKA_SERVICES_INGEST_INGEST_METRICS_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "libs/metrics/metrics.h"
#include "libs/txn/cities.h"

namespace tongka::ingest {

struct IngestMetrics {
  struct CityCounters {
    std::string label;
    metrics::Counter* accepted = nullptr;
    metrics::Counter* duplicate = nullptr;
    metrics::Counter* conflict = nullptr;
    metrics::Counter* rejected = nullptr;
    metrics::Counter* cross_city = nullptr;
    metrics::Counter* late = nullptr;
  };

  explicit IngestMetrics(metrics::Registry* registry)
      : items(registry->AddCounter("tongka_ingest_items_total",
                                   "Uploaded transactions by outcome and acquirer city.",
                                   {"outcome", "city"})),
        rejected(registry->AddCounter("tongka_ingest_rejected_total",
                                      "Rejected transactions by the rule they broke.",
                                      {"rule", "city"})),
        cross_city(registry->AddCounter(
            "tongka_ingest_cross_city_accepted_total",
            "Accepted transactions whose card was issued by another city.", {"city"})),
        late(registry->AddCounter("tongka_ingest_late_accepted_total",
                                  "Accepted transactions older than the late horizon.", {"city"})),
        batch_items(registry->AddHistogram("tongka_ingest_batch_items",
                                           "Transactions per upload request.",
                                           metrics::ExponentialBuckets(1, 4, 8))),
        ack_seconds(registry->AddHistogram("tongka_ingest_ack_seconds",
                                           "Time from receiving an upload request to answering it.",
                                           {"rpc"}, metrics::DefaultLatencyBuckets())),
        requests(registry->AddCounter("tongka_ingest_requests_total",
                                      "Upload requests by final gRPC status code.",
                                      {"rpc", "code"})),
        kafka_delivery_seconds(
            registry->AddHistogram("tongka_ingest_kafka_delivery_seconds",
                                   "Time from producing a transaction to Kafka's delivery report.",
                                   metrics::DefaultLatencyBuckets())),
        kafka_delivery_errors(registry->AddCounter("tongka_ingest_kafka_delivery_errors_total",
                                                   "Delivery reports that failed, by status code.",
                                                   {"code"})),
        kafka_queue_full(registry->AddCounter(
            "tongka_ingest_kafka_queue_full_total",
            "Transactions the producer refused because its local queue was full.")),
        dedup_write_errors(registry->AddCounter(
            "tongka_ingest_dedup_write_errors_total",
            "Transactions Kafka acknowledged whose dedup entry could not be written.")),
        dedup_pruned(registry->AddCounter("tongka_ingest_dedup_pruned_total",
                                          "Dedup entries deleted past the dedup horizon.")),
        inflight(registry->AddGauge("tongka_ingest_inflight_items",
                                    "Transactions produced and awaiting Kafka's delivery report.")),
        calls_in_progress(registry->AddGauge(
            "tongka_ingest_calls_in_progress",
            "Upload calls being served: unary calls in flight plus open streams.")),
        admitted_items(registry->AddGauge(
            "tongka_ingest_admitted_items",
            "Transactions of the upload batches being served (validated, produced or awaited).")),
        refused(registry->AddCounter(
            "tongka_ingest_refused_total",
            "Upload calls refused RESOURCE_EXHAUSTED because a limit was reached, by limit.",
            {"limit"})),
        refused_calls(refused.WithLabels({"max_concurrent_calls"})),
        refused_items(refused.WithLabels({"max_inflight_items"})),
        refused_threads(refused.WithLabels({"threads"})),
        ack_unary(ack_seconds.WithLabels({"UploadBatch"})),
        ack_stream(ack_seconds.WithLabels({"UploadStream"})) {
    for (const txn::City& city : txn::MemberCities()) {
      by_city.emplace(city.code, MakeCity(absl::StrCat(city.code)));
    }
    other = MakeCity("other");
  }

  // The counters of an acquirer city (member cities; anything else is "other").
  CityCounters& City(uint32_t code) {
    auto it = by_city.find(code);
    return it == by_city.end() ? other : it->second;
  }

  metrics::CounterFamily& items;
  metrics::CounterFamily& rejected;
  metrics::CounterFamily& cross_city;
  metrics::CounterFamily& late;
  metrics::Histogram& batch_items;
  metrics::HistogramFamily& ack_seconds;
  metrics::CounterFamily& requests;
  metrics::Histogram& kafka_delivery_seconds;
  metrics::CounterFamily& kafka_delivery_errors;
  metrics::Counter& kafka_queue_full;
  metrics::Counter& dedup_write_errors;
  metrics::Counter& dedup_pruned;
  metrics::Gauge& inflight;
  metrics::Gauge& calls_in_progress;
  metrics::Gauge& admitted_items;
  metrics::CounterFamily& refused;
  metrics::Counter& refused_calls;
  metrics::Counter& refused_items;
  metrics::Counter& refused_threads;
  metrics::Histogram& ack_unary;
  metrics::Histogram& ack_stream;

 private:
  CityCounters MakeCity(const std::string& label) {
    CityCounters c;
    c.label = label;
    c.accepted = &items.WithLabels({"accepted", label});
    c.duplicate = &items.WithLabels({"duplicate", label});
    c.conflict = &items.WithLabels({"conflict", label});
    c.rejected = &items.WithLabels({"rejected", label});
    c.cross_city = &cross_city.WithLabels({label});
    c.late = &late.WithLabels({label});
    return c;
  }

  absl::flat_hash_map<uint32_t, CityCounters> by_city;
  CityCounters other;
};

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_INGEST_METRICS_H_
