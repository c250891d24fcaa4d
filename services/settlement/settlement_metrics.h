// SettlementMetrics: every Prometheus series the settlement service exports, declared in one place.
//
//   tongka_settlement_requests_total{rpc,code}          API calls by final gRPC status code
//   tongka_settlement_request_seconds{rpc}              histogram: call latency
//   tongka_settlement_window_state{window}              1 OPEN, 2 CLOSING, 3 CLOSED, 4 SETTLED,
//                                                       5 ABORTED (the last 14 windows)
//   tongka_settlement_window_transactions{window}       taps + refunds in the window
//   tongka_settlement_window_gross_fen{window,scope}    gross, scope = cross_city | same_city
//   tongka_settlement_window_fee_fen{window}            interchange fees (cross-city)
//   tongka_settlement_net_position_fen{window,city}     multilateral net (live while OPEN)
//   tongka_settlement_float_outstanding_fen{city}       issuer's prepaid float, all time, with
//                                                       the successions folded in: a successor's
//                                                       includes its predecessors', a failed
//                                                       issuer's is 0
//   tongka_settlement_float_reserve_fen{city}           the reserve the issuer recorded
//   tongka_settlement_float_coverage_ratio{city}        reserve / outstanding (issuers owing); a
//                                                       failed issuer: reserve / transferred
//   tongka_settlement_float_transferred_fen{city}       a failed issuer's cards' float, carried
//                                                       by its successor
//   tongka_settlement_float_transfers_total             float transfers the ledger accepted
//   tongka_settlement_invariant_violations_total        report invariants broken: must stay 0
//   tongka_settlement_report_mismatches_total           replicas disagreeing on a report: 0
//   tongka_settlement_window_rules_disagree{window}     1: the window's deltas name other rules
//                                                       than the log records for it
//   tongka_settlement_rules_mixed_total                 stage-one deltas priced under other rules
//                                                       than their window's first: must stay 0
//   tongka_settlement_late_deltas_total                 deltas for frozen windows, carried on
//   tongka_settlement_refunds_capped_total              refunds cut to what was left of their tap
//   tongka_settlement_duplicates_dropped_total          resent deltas and commands dropped
//   tongka_settlement_unusable_records_total{stage}     records skipped (txn | ledger)
// plus the runtime's consumer lag, apply rate and outbox series (libs/state_store RuntimeMetrics,
// loops "txn" and "ledger") and tongka_grpc_unauthenticated_calls_total.
//
// The business figures are refreshed from the store every few seconds by the app (Refresh); the
// counters that live in the store are exported as callback counters of the last refresh.
// Ownership: references into the Registry, which must outlive this struct.
// Thread-safety: updates are atomic; Refresh runs on one thread.
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_METRICS_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_METRICS_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "libs/metrics/metrics.h"

namespace tongka::settlement {

struct SettlementMetrics {
  explicit SettlementMetrics(metrics::Registry* registry)
      : requests(registry->AddCounter("tongka_settlement_requests_total",
                                      "Settlement API calls by RPC and final status code.",
                                      {"rpc", "code"})),
        request_seconds(registry->AddHistogram(
            "tongka_settlement_request_seconds", "Settlement API call latency.", {"rpc"},
            {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
        window_state(registry->AddGauge("tongka_settlement_window_state",
                                        "Window state: 1 OPEN, 2 CLOSING, 3 CLOSED, 4 SETTLED, "
                                        "5 ABORTED.",
                                        {"window"})),
        window_transactions(registry->AddGauge("tongka_settlement_window_transactions",
                                               "Taps and refunds in the window.", {"window"})),
        window_gross(registry->AddGauge("tongka_settlement_window_gross_fen",
                                        "Gross (taps minus refunds) in fen, cross-city or "
                                        "same-city.",
                                        {"window", "scope"})),
        window_fee(registry->AddGauge("tongka_settlement_window_fee_fen",
                                      "Cross-city interchange fees in fen.", {"window"})),
        net_position(registry->AddGauge("tongka_settlement_net_position_fen",
                                        "Multilateral net position in fen (> 0 receives).",
                                        {"window", "city"})),
        float_outstanding(registry->AddGauge("tongka_settlement_float_outstanding_fen",
                                             "Issuer's outstanding prepaid float in fen.",
                                             {"city"})),
        float_reserve(registry->AddGauge("tongka_settlement_float_reserve_fen",
                                         "Reserve the issuer recorded in escrow, fen.", {"city"})),
        float_coverage(registry->AddGauge("tongka_settlement_float_coverage_ratio",
                                          "Reserve over outstanding float (a failed issuer: "
                                          "over the float transferred to its successor).",
                                          {"city"})),
        float_transferred(registry->AddGauge(
            "tongka_settlement_float_transferred_fen",
            "A failed issuer's cards' float, now carried by its successor, fen.", {"city"})),
        window_rules_disagree(registry->AddGauge(
            "tongka_settlement_window_rules_disagree",
            "1 when the window's deltas were priced under other rules than the log records "
            "for it (every stage one lagged a rules change); 0 when they agree.",
            {"window"})) {
    auto counter = [&](const char* name, const char* help, std::atomic<int64_t>* value) {
      registrations.push_back(registry->AddCallbackCounter(
          name, help, [value] { return static_cast<double>(value->load()); }));
    };
    counter("tongka_settlement_invariant_violations_total",
            "Settlement report invariants broken (must stay zero).", &invariant_violations);
    counter("tongka_settlement_report_mismatches_total",
            "Reports on the log that differ from this replica's (must stay zero).",
            &report_mismatches);
    counter("tongka_settlement_rules_mixed_total",
            "Stage-one deltas priced under other rules than their window's first (must stay "
            "zero; the window cannot close).",
            &rules_mixed);
    counter("tongka_settlement_refunds_capped_total",
            "Refunds that asked for more than was left of their tap and were cut to it "
            "(this replica's tongka.txn partitions).",
            &refunds_capped);
    counter("tongka_settlement_late_deltas_total",
            "Deltas that arrived for a frozen window and were carried to the next.", &late_deltas);
    counter("tongka_settlement_duplicates_dropped_total", "Resent deltas and commands dropped.",
            &duplicates_dropped);
    counter("tongka_settlement_float_transfers_total",
            "Failed issuers' floats transferred to a successor.", &float_transfers);
    auto& unusable = registry->AddCallbackCounter("tongka_settlement_unusable_records_total",
                                                  "Records skipped as unusable, by stage.",
                                                  std::vector<std::string>{"stage"});
    registrations.push_back(
        unusable.Register({"txn"}, [this] { return static_cast<double>(txn_invalid.load()); }));
    registrations.push_back(unusable.Register(
        {"ledger"}, [this] { return static_cast<double>(ledger_unparseable.load()); }));
  }

  metrics::CounterFamily& requests;
  metrics::HistogramFamily& request_seconds;
  metrics::GaugeFamily& window_state;
  metrics::GaugeFamily& window_transactions;
  metrics::GaugeFamily& window_gross;
  metrics::GaugeFamily& window_fee;
  metrics::GaugeFamily& net_position;
  metrics::GaugeFamily& float_outstanding;
  metrics::GaugeFamily& float_reserve;
  metrics::GaugeFamily& float_coverage;
  metrics::GaugeFamily& float_transferred;
  metrics::GaugeFamily& window_rules_disagree;
  std::atomic<int64_t> invariant_violations{0};
  std::atomic<int64_t> report_mismatches{0};
  std::atomic<int64_t> rules_mixed{0};
  std::atomic<int64_t> refunds_capped{0};
  std::atomic<int64_t> late_deltas{0};
  std::atomic<int64_t> duplicates_dropped{0};
  std::atomic<int64_t> float_transfers{0};
  std::atomic<int64_t> txn_invalid{0};
  std::atomic<int64_t> ledger_unparseable{0};
  std::vector<metrics::CallbackRegistration> registrations;
};

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_METRICS_H_
