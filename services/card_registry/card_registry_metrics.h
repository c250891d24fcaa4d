// CardRegistryMetrics: every Prometheus series the card registry exports, declared in one place.
//
//   tongka_card_registry_requests_total{rpc,code}            API calls by final gRPC status code
//                                                            (bad input: code="invalid_argument")
//   tongka_card_registry_request_seconds{rpc}                histogram: call latency (a
//                                                            WatchHotlist: the stream's life)
//   tongka_card_registry_commands_accepted_total{kind}       commands accepted, kind = issue |
//                                                            status | close
//   tongka_card_registry_commands_refused_total{rule}        commands refused, by rule
//   tongka_card_registry_duplicate_commands_total            commands whose event id was decided
//   tongka_card_registry_unusable_records_total{topic}       records skipped (cards | txn)
//   tongka_card_registry_hotlist_cards                       cards listed now (this replica's
//                                                            partitions)
//   tongka_card_registry_hotlist_propagation_seconds         histogram: a command's recorded_at to
//                                                            the moment a WatchHotlist stream sent
//                                                            the hotlist change it made
//   tongka_card_registry_member_commands_accepted_total{kind}  member commands accepted, kind =
//                                                            status | accepted_issuers
//   tongka_card_registry_member_commands_refused_total{rule}   member commands refused, by rule
// plus the runtime's consumer lag, apply rate and outbox series (libs/state_store RuntimeMetrics,
// loop "ledger") and tongka_grpc_unauthenticated_calls_total.
//
// The command counters live in the store (RegistryStats); the app's refresher adds what they
// grew by since its last look every few seconds, so they restart from zero with the process and
// catch up on the first refresh.
// Ownership: references into the Registry, which must outlive this struct.
// Thread-safety: updates are atomic.
#ifndef TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_METRICS_H_
#define TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_METRICS_H_

#include "libs/metrics/metrics.h"

namespace tongka::card_registry {

struct CardRegistryMetrics {
  explicit CardRegistryMetrics(metrics::Registry* registry)
      : requests(registry->AddCounter("tongka_card_registry_requests_total",
                                      "Card registry API calls by RPC and final status code.",
                                      {"rpc", "code"})),
        request_seconds(registry->AddHistogram(
            "tongka_card_registry_request_seconds", "Card registry API call latency.", {"rpc"},
            {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
        commands_accepted(registry->AddCounter("tongka_card_registry_commands_accepted_total",
                                               "Card commands accepted, by kind.", {"kind"})),
        commands_refused(registry->AddCounter("tongka_card_registry_commands_refused_total",
                                              "Card commands refused, by rule.", {"rule"})),
        duplicate_commands(
            registry->AddCounter("tongka_card_registry_duplicate_commands_total",
                                 "Commands seen again after their decision (no-ops).")),
        unusable_records(registry->AddCounter("tongka_card_registry_unusable_records_total",
                                              "Records skipped as unusable, by topic.", {"topic"})),
        hotlist_cards(registry->AddGauge("tongka_card_registry_hotlist_cards",
                                         "Cards on the hotlist now (this replica's partitions).")),
        hotlist_propagation_seconds(registry->AddHistogram(
            "tongka_card_registry_hotlist_propagation_seconds",
            "From a command's recorded_at to a WatchHotlist stream sending its hotlist change.",
            {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
        member_commands_accepted(
            registry->AddCounter("tongka_card_registry_member_commands_accepted_total",
                                 "Member commands accepted, by kind.", {"kind"})),
        member_commands_refused(
            registry->AddCounter("tongka_card_registry_member_commands_refused_total",
                                 "Member commands refused, by rule.", {"rule"})) {}

  metrics::CounterFamily& requests;
  metrics::HistogramFamily& request_seconds;
  metrics::CounterFamily& commands_accepted;
  metrics::CounterFamily& commands_refused;
  metrics::Counter& duplicate_commands;
  metrics::CounterFamily& unusable_records;
  metrics::Gauge& hotlist_cards;
  metrics::Histogram& hotlist_propagation_seconds;
  // The member registry (replica 0 only: it decides tongka.members).
  metrics::CounterFamily& member_commands_accepted;
  metrics::CounterFamily& member_commands_refused;
};

}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_METRICS_H_
