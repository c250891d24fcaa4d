#include "services/settlement/window_ledger.h"

#include <glog/logging.h>

#include <map>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "libs/txn/cities.h"
#include "services/settlement/settlement_keys.h"
#include "services/settlement/settlement_readers.h"
#include "services/settlement/settlement_report.h"

namespace tongka::settlement {
namespace {

using internal::AcceptsDeltas;
using internal::AddToCounter;
using internal::FreezeKey;
using internal::kDuplicatesKey;
using internal::kFloatTransfersKey;
using internal::kLateDeltasKey;
using internal::kLedgerUnparseableKey;
using internal::kMismatchesKey;
using internal::kRulesMixedKey;
using internal::kViolationsKey;
using internal::LateRangePrefix;
using internal::MoveKey;
using internal::ParseCoverage;
using internal::ReadMessage;
using internal::ScanMessages;
using state_store::StateBatch;

}  // namespace

absl::Time EarliestStart(absl::CivilDay day) {
  // Window D starts at D-1 at the cut (00:01 at the earliest) in a zone at most 14 hours ahead
  // of UTC, or, as a rules change's first window, where D-1 ended under the old rules: never
  // before 10:00 UTC on D-2.
  return absl::FromCivil(absl::CivilSecond(day - 2) + 10 * 3600, absl::UTCTimeZone());
}

absl::Status WindowLedger::Apply(const event_log::Record& record, StateBatch& batch) {
  v1::Event event;
  if (!event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())) ||
      event.event_id().empty()) {
    return AddToCounter(batch, kLedgerUnparseableKey, 1);
  }
  switch (event.body_case()) {
    case v1::Event::kSettlementDelta:
      return ApplyDelta(record, event, batch);
    case v1::Event::kWindowCloseRequested:
      return DecideOnce(event, batch, [&] { return Decide(record, event, batch); });
    case v1::Event::kFloatReserveRecorded:
      return ApplyReserve(event, batch);
    case v1::Event::kSettlementReport:
      return ApplyReport(event, batch);
    case v1::Event::kSettlementRulesRequested:
      return DecideOnce(event, batch, [&] { return DecideRules(event, batch); });
    case v1::Event::kFloatTransferRequested:
      return DecideOnce(event, batch, [&] { return DecideTransfer(record, event, batch); });
    case v1::Event::kSettlementWindowChanged:
    case v1::Event::kSettlementInvariantViolated:
    case v1::Event::kFloatTransferred:
      return absl::OkStatus();  // our own audit trail: the state already has the decision
    default:
      return AddToCounter(batch, kLedgerUnparseableKey, 1);
  }
}

absl::Status WindowLedger::ApplyDelta(const event_log::Record& record, const v1::Event& event,
                                      StateBatch& batch) {
  const v1::SettlementDelta& delta = event.settlement_delta();
  if (!ParseWindowId(delta.window_id()).ok()) return AddToCounter(batch, kLedgerUnparseableKey, 1);

  // Exactly once: carried deltas by event id; stage one's by the offsets they cover.
  if (delta.carried()) {
    absl::StatusOr<bool> first = batch.MarkSeen(event.event_id());
    if (!first.ok()) return first.status();
    if (!*first) return AddToCounter(batch, kDuplicatesKey, 1);
  } else {
    const std::string key =
        CoverageKeyOf(delta.source_topic(), delta.window_id(), delta.source_partition());
    absl::StatusOr<std::optional<std::string>> stored = batch.Get(key);
    if (!stored.ok()) return stored.status();
    int64_t last = -1;
    int32_t chunk = -1;
    if (stored->has_value() && !ParseCoverage(**stored, &last, &chunk)) {
      return absl::InternalError(absl::StrCat("corrupt coverage ", key));
    }
    const bool next_chunk = delta.last_offset() == last && delta.chunk() == chunk + 1;
    const bool next_batch = delta.first_offset() > last && delta.chunk() == 0;
    if (!next_chunk && !next_batch) {
      if (delta.last_offset() < last || (delta.last_offset() == last && delta.chunk() <= chunk)) {
        return AddToCounter(batch, kDuplicatesKey, 1);  // a resend
      }
      // Overlapping offsets would count transactions twice or lose them: never guess.
      return absl::InternalError(absl::StrCat(
          "settlement delta ", event.event_id(), " overlaps what the ledger applied (", key, " = ",
          stored->value_or("none"), "): a stage one emitted across a stale coverage"));
    }
    batch.Put(key, absl::StrCat(delta.last_offset(), ":", delta.chunk()));
  }

  absl::StatusOr<std::optional<WindowRecord>> window = ReadWindow(ViewOf(batch), delta.window_id());
  if (!window.ok()) return window.status();
  WindowRecord record_now = window->value_or(WindowRecord());
  if (!window->has_value()) record_now.set_state(v1::WINDOW_STATE_OPEN);

  // The issuer's all-time float moves when the transactions first arrive, wherever they land.
  if (!delta.carried()) {
    std::map<uint32_t, v1::SettlementCell> by_issuer;
    for (const v1::SettlementCell& cell : delta.cells())
      AddCell(cell, &by_issuer[cell.issuer_city()]);
    for (const auto& [city, sum] : by_issuer) {
      absl::StatusOr<std::optional<FloatRecord>> stored =
          ReadMessage<FloatRecord>(ViewOf(batch), FloatKey(city));
      if (!stored.ok()) return stored.status();
      FloatRecord fl = stored->value_or(FloatRecord());
      fl.set_loads_fen(fl.loads_fen() + sum.loads_fen());
      fl.set_spent_fen(fl.spent_fen() + sum.taps_fen());
      fl.set_refunded_fen(fl.refunded_fen() + sum.refunds_fen());
      fl.set_opening_fen(fl.opening_fen() + sum.openings_fen());
      fl.set_owed_to_holders_fen(fl.owed_to_holders_fen() + sum.payouts_fen());
      batch.Put(FloatKey(city), fl.SerializeAsString());
    }
  }

  if (!AcceptsDeltas(record_now.state())) {
    // Late: the window is frozen. Its owner carries the cells into the next day's window.
    record_now.set_late_deltas(record_now.late_deltas() + 1);
    batch.Put(WindowKey(delta.window_id()), record_now.SerializeAsString());
    // Where the money comes from travels with it, so its ids can follow it when it lands.
    v1::SettlementDelta provenance;
    if (delta.carried()) {
      provenance.set_late_window_id(delta.late_window_id());
      provenance.set_late_source_partition(delta.late_source_partition());
      provenance.set_late_first_offset(delta.late_first_offset());
      provenance.set_late_last_offset(delta.late_last_offset());
      provenance.set_moved_window_id(delta.moved_window_id());
    } else if (delta.source_topic() != kCardsTopic) {
      // (Opening balances have no transaction ids for the index to follow.)
      provenance.set_late_window_id(delta.window_id());
      provenance.set_late_source_partition(delta.source_partition());
      provenance.set_late_first_offset(delta.first_offset());
      provenance.set_late_last_offset(delta.last_offset());
    }
    CarryForward(record, event.event_id(), delta.window_id(),
                 std::vector<v1::SettlementCell>(delta.cells().begin(), delta.cells().end()),
                 provenance, batch);
    return AddToCounter(batch, kLateDeltasKey, 1);
  }

  // Every stage-one delta of a window must be priced under the same rules (deltas from before
  // the rules were on the log name none).
  if (!delta.carried() && !delta.rules_id().empty()) {
    if (record_now.rules_id().empty()) {
      record_now.set_rules_id(delta.rules_id());
    } else if (record_now.rules_id() != delta.rules_id()) {
      LOG(ERROR) << "settlement delta " << event.event_id() << " was priced under rules "
                 << delta.rules_id() << ", window " << delta.window_id() << " under "
                 << record_now.rules_id() << ": the window cannot close";
      record_now.set_rules_mixed(record_now.rules_mixed() + 1);
      if (absl::Status counted = AddToCounter(batch, kRulesMixedKey, 1); !counted.ok()) {
        return counted;
      }
    }
  }

  // Carried money lands here: record where, for the id index (ReadCellTransactions).
  if (delta.carried() && !delta.late_window_id().empty()) {
    batch.Put(absl::StrCat(LateRangePrefix(delta.late_window_id(), delta.late_source_partition()),
                           absl::Dec(delta.late_first_offset(), absl::kZeroPad20)),
              absl::StrCat(delta.late_last_offset(), ":", delta.window_id()));
  }
  if (delta.carried() && !delta.moved_window_id().empty()) {
    absl::StatusOr<std::optional<std::string>> moved = batch.Get(MoveKey(delta.moved_window_id()));
    if (!moved.ok()) return moved.status();
    // Chunks of one move land together unless a close falls between them; the first decides.
    if (!moved->has_value()) batch.Put(MoveKey(delta.moved_window_id()), delta.window_id());
  }

  std::map<std::pair<uint32_t, uint32_t>, v1::SettlementCell> pairs;
  int64_t transactions = 0;
  for (const v1::SettlementCell& cell : delta.cells()) {
    const std::string cell_key =
        CellKey(delta.window_id(), cell.issuer_city(), cell.acquirer_city(),
                cell.origin_window_id(), cell.hour());
    absl::StatusOr<std::optional<v1::SettlementCell>> stored =
        ReadMessage<v1::SettlementCell>(ViewOf(batch), cell_key);
    if (!stored.ok()) return stored.status();
    v1::SettlementCell sum = stored->value_or(v1::SettlementCell());
    if (!stored->has_value()) {
      sum.set_issuer_city(cell.issuer_city());
      sum.set_acquirer_city(cell.acquirer_city());
      sum.set_origin_window_id(cell.origin_window_id());
      sum.set_hour(cell.hour());
    }
    AddCell(cell, &sum);
    batch.Put(cell_key, sum.SerializeAsString());
    AddCell(cell, &pairs[{cell.issuer_city(), cell.acquirer_city()}]);
    transactions += CountOf(cell);
  }
  for (const auto& [where, add] : pairs) {
    const std::string pair_key = PairKey(delta.window_id(), where.first, where.second);
    absl::StatusOr<std::optional<v1::SettlementCell>> stored =
        ReadMessage<v1::SettlementCell>(ViewOf(batch), pair_key);
    if (!stored.ok()) return stored.status();
    v1::SettlementCell sum = stored->value_or(v1::SettlementCell());
    sum.set_issuer_city(where.first);
    sum.set_acquirer_city(where.second);
    sum.set_hour(-1);
    AddCell(add, &sum);
    batch.Put(pair_key, sum.SerializeAsString());
  }
  record_now.set_transactions(record_now.transactions() + transactions);
  batch.Put(WindowKey(delta.window_id()), record_now.SerializeAsString());
  return absl::OkStatus();
}

void WindowLedger::CarryForward(const event_log::Record& record, absl::string_view base_event_id,
                                absl::string_view from_window,
                                std::vector<v1::SettlementCell> cells,
                                const v1::SettlementDelta& provenance, StateBatch& batch) {
  if (!Owns(record.partition) || cells.empty()) return;
  const std::string next = WindowIdOf(*ParseWindowId(from_window) + 1);
  const int32_t chunks =
      static_cast<int32_t>((cells.size() + kCellsPerDeltaMax - 1) / kCellsPerDeltaMax);
  size_t i = 0;
  for (int32_t chunk = 0; chunk < chunks; ++chunk) {
    v1::Event event;
    event.set_event_id(absl::StrCat(base_event_id, "/carry/", next, "/", chunk));
    event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
    event.mutable_source()->set_service(kServiceName);
    v1::SettlementDelta* delta = event.mutable_settlement_delta();
    delta->set_window_id(next);
    delta->set_source_partition(-1);
    delta->set_carried(true);
    delta->set_carried_from_window_id(std::string(from_window));
    delta->set_late_window_id(provenance.late_window_id());
    delta->set_late_source_partition(provenance.late_source_partition());
    delta->set_late_first_offset(provenance.late_first_offset());
    delta->set_late_last_offset(provenance.late_last_offset());
    delta->set_moved_window_id(provenance.moved_window_id());
    delta->set_chunk(chunk);
    delta->set_chunks(chunks);
    for (size_t n = 0; n < kCellsPerDeltaMax && i < cells.size(); ++n, ++i) {
      *delta->add_cells() = std::move(cells[i]);
    }
    batch.AppendOutbox(kSettlementTopic, next, event.SerializeAsString());
  }
}

absl::StatusOr<RequestOutcome> WindowLedger::Decide(const event_log::Record& record,
                                                    const v1::Event& event, StateBatch& batch) {
  const v1::WindowCloseRequested& request = event.window_close_requested();
  RequestOutcome outcome;
  auto refuse = [&](absl::string_view rule, std::string message) {
    outcome.set_accepted(false);
    outcome.set_rule(std::string(rule));
    outcome.set_message(std::move(message));
    return outcome;
  };
  absl::StatusOr<absl::CivilDay> day = ParseWindowId(request.window_id());
  if (!day.ok()) return refuse("window_id_format", std::string(day.status().message()));
  const v1::WindowState target = request.target_state();
  if (target != v1::WINDOW_STATE_CLOSING && target != v1::WINDOW_STATE_CLOSED &&
      target != v1::WINDOW_STATE_SETTLED && target != v1::WINDOW_STATE_ABORTED) {
    return refuse("target_state", "target_state must be CLOSING, CLOSED, SETTLED or ABORTED");
  }
  // Only the ministry and the platform's own schedule move windows (the API checks too; the
  // ledger is the last word, for any writer of the topic).
  const v1::Tenant& source = event.source();
  const bool allowed =
      source.kind() == v1::TENANT_KIND_MINISTRY ||
      (source.kind() == v1::TENANT_KIND_PLATFORM && source.service() == kServiceName);
  if (!allowed) return refuse("ministry_only", "only the ministry moves settlement windows");

  absl::StatusOr<std::optional<WindowRecord>> stored =
      ReadWindow(ViewOf(batch), request.window_id());
  if (!stored.ok()) return stored.status();
  WindowRecord window = stored->value_or(WindowRecord());
  if (!stored->has_value()) {
    if (target == v1::WINDOW_STATE_SETTLED || target == v1::WINDOW_STATE_ABORTED) {
      return refuse("unknown_window",
                    absl::StrCat("window ", request.window_id(), " has no transactions"));
    }
    // An empty window may close (its report is empty) once its business day may have begun.
    // The exact start depends on the rules, which sit in another partition of this topic and
    // may be applied before or after this command; so the ledger uses a bound that holds under
    // any rules (EarliestStart), and the API checks the exact start before writing.
    if (absl::FromUnixMicros(event.recorded_at_us()) < EarliestStart(*day)) {
      return refuse("window_not_started",
                    absl::StrCat("window ", request.window_id(), " has not begun"));
    }
    window.set_state(v1::WINDOW_STATE_OPEN);
  }
  const v1::WindowState from = window.state();
  outcome.set_state(from);
  if (from == target) {
    return refuse("already_in_state", absl::StrCat("window ", request.window_id(), " is already ",
                                                   v1::WindowState_Name(from)));
  }
  if (from == v1::WINDOW_STATE_SETTLED || from == v1::WINDOW_STATE_ABORTED) {
    return refuse("window_final", absl::StrCat("window ", request.window_id(), " is ",
                                               v1::WindowState_Name(from), ", which is final"));
  }
  bool legal = false;
  switch (target) {
    case v1::WINDOW_STATE_CLOSING:
      legal = from == v1::WINDOW_STATE_OPEN;
      break;
    case v1::WINDOW_STATE_CLOSED:
      legal = AcceptsDeltas(from);
      break;
    case v1::WINDOW_STATE_SETTLED:
      legal = from == v1::WINDOW_STATE_CLOSED;
      break;
    default:  // ABORTED: any state before SETTLED
      legal = true;
      break;
  }
  if (!legal) {
    return refuse("window_not_closed",
                  absl::StrCat("window ", request.window_id(), " is ", v1::WindowState_Name(from),
                               "; ", v1::WindowState_Name(target), " is not reachable from it"));
  }

  if (target == v1::WINDOW_STATE_SETTLED) {
    absl::StatusOr<std::optional<v1::SettlementReport>> report =
        ReadReport(ViewOf(batch), request.window_id());
    if (!report.ok()) return report.status();
    CHECK(report->has_value()) << "a CLOSED window without a report: " << request.window_id();
    window.clear_payment_references();
    for (const v1::NetPosition& net : (*report)->net()) {
      auto ref = request.payment_references().find(net.city());
      const bool has_ref = ref != request.payment_references().end() && !ref->second.empty();
      if (net.net_fen() != 0 && !has_ref) {
        return refuse("payment_references",
                      absl::StrCat("city ", net.city(), " has a net of ", net.net_fen(),
                                   " fen and no payment reference"));
      }
      if (has_ref) {
        PaymentReference* stored_ref = window.add_payment_references();
        stored_ref->set_city(net.city());
        stored_ref->set_reference(ref->second);
      }
    }
  }

  if (target == v1::WINDOW_STATE_CLOSED && window.rules_mixed() > 0) {
    return refuse("rules_mixed",
                  absl::StrCat("window ", request.window_id(), " holds ", window.rules_mixed(),
                               " stage-one deltas priced under other rules than ",
                               window.rules_id(), "; abort it to move its money on"));
  }
  if (target == v1::WINDOW_STATE_CLOSED) {
    absl::StatusOr<std::vector<v1::SettlementCell>> pairs =
        ReadPairs(ViewOf(batch), request.window_id());
    if (!pairs.ok()) return pairs.status();
    v1::SettlementReport report = BuildReport(request.window_id(), *pairs);
    std::vector<std::string> violations =
        options_.check_report ? options_.check_report(report) : CheckReportInvariants(report);
    if (!violations.empty()) {
      // Figures that break an invariant are never paid on: the window keeps its state and
      // takes no report; the ministry sees why and closes it again once it is understood.
      for (const std::string& violation : violations) {
        LOG(ERROR) << "settlement invariant violated in window " << request.window_id() << ": "
                   << violation << "; the report is withheld";
      }
      absl::Status counted =
          AddToCounter(batch, kViolationsKey, static_cast<int64_t>(violations.size()));
      if (!counted.ok()) return counted;
      window.clear_invariant_violations();
      for (const std::string& violation : violations) window.add_invariant_violations(violation);
      batch.Put(WindowKey(request.window_id()), window.SerializeAsString());
      if (Owns(record.partition)) {
        v1::Event out;
        out.set_event_id(state_store::DerivedEventId(kServiceName, record, "invariant"));
        out.set_recorded_at_us(event.recorded_at_us());
        out.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
        out.mutable_source()->set_service(kServiceName);
        v1::SettlementInvariantViolated* violated = out.mutable_settlement_invariant_violated();
        violated->set_window_id(request.window_id());
        violated->set_request_id(request.request_id());
        violated->set_state(from);
        for (const std::string& violation : violations) violated->add_violations(violation);
        violated->set_report_digest(report.digest());
        batch.AppendOutbox(kSettlementTopic, request.window_id(), out.SerializeAsString());
      }
      return refuse(
          "invariant_violation",
          absl::StrCat("window ", request.window_id(), " stays ", v1::WindowState_Name(from),
                       ": its report breaks ", absl::StrJoin(violations, "; ")));
    }
    window.clear_invariant_violations();
    window.set_report_digest(report.digest());
    if (absl::Status frozen = RecordFreeze(request.window_id(), batch); !frozen.ok()) {
      return frozen;
    }
    batch.Put(ReportKey(request.window_id()), report.SerializeAsString());
    if (Owns(record.partition)) {
      v1::Event out;
      out.set_event_id(state_store::DerivedEventId(kServiceName, record, "report"));
      out.set_recorded_at_us(event.recorded_at_us());
      out.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
      out.mutable_source()->set_service(kServiceName);
      *out.mutable_settlement_report() = std::move(report);
      batch.AppendOutbox(kSettlementTopic, request.window_id(), out.SerializeAsString());
    }
  }

  if (target == v1::WINDOW_STATE_ABORTED) {
    // Nothing of an aborted window is paid: its transactions move to the next open window.
    absl::StatusOr<std::vector<v1::SettlementCell>> cells = ScanMessages<v1::SettlementCell>(
        ViewOf(batch), absl::StrCat("wc/", request.window_id(), "/"));
    if (!cells.ok()) return cells.status();
    if (AcceptsDeltas(from)) {
      if (absl::Status frozen = RecordFreeze(request.window_id(), batch); !frozen.ok()) {
        return frozen;
      }
    }
    v1::SettlementDelta provenance;
    provenance.set_moved_window_id(request.window_id());
    CarryForward(record, absl::StrCat(kServiceName, "/abort/", request.window_id()),
                 request.window_id(), std::move(*cells), provenance, batch);
    window.set_reason(request.reason());
  }

  window.set_state(target);
  window.set_last_request_id(request.request_id());
  window.set_changed_at_us(event.recorded_at_us());
  batch.Put(WindowKey(request.window_id()), window.SerializeAsString());
  if (Owns(record.partition)) {
    v1::Event out;
    out.set_event_id(state_store::DerivedEventId(kServiceName, record, "changed"));
    out.set_recorded_at_us(event.recorded_at_us());
    out.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
    out.mutable_source()->set_service(kServiceName);
    v1::SettlementWindowChanged* changed = out.mutable_settlement_window_changed();
    changed->set_window_id(request.window_id());
    changed->set_old_state(from);
    changed->set_new_state(target);
    changed->set_request_id(request.request_id());
    for (const PaymentReference& ref : window.payment_references()) {
      (*changed->mutable_payment_references())[ref.city()] = ref.reference();
    }
    batch.AppendOutbox(kSettlementTopic, request.window_id(), out.SerializeAsString());
  }
  outcome.set_accepted(true);
  outcome.set_state(target);
  return outcome;
}

absl::Status WindowLedger::RecordFreeze(absl::string_view window_id, StateBatch& batch) {
  const std::string prefix = absl::StrCat("cov/", window_id, "/");
  std::vector<std::pair<int32_t, int64_t>> covered;
  bool corrupt = false;
  absl::Status scanned =
      batch.ScanPrefix(prefix, [&](absl::string_view key, absl::string_view value) {
        int32_t partition = 0;
        int64_t last = -1;
        int32_t chunk = 0;
        corrupt = !absl::SimpleAtoi(key.substr(prefix.size()), &partition) ||
                  !ParseCoverage(value, &last, &chunk);
        covered.emplace_back(partition, last);
        return !corrupt;
      });
  if (!scanned.ok()) return scanned;
  if (corrupt) return absl::InternalError(absl::StrCat("corrupt coverage under ", prefix));
  for (const auto& [partition, last] : covered) {
    batch.Put(FreezeKey(window_id, partition), absl::StrCat(last));
  }
  return absl::OkStatus();
}

absl::Status WindowLedger::DecideOnce(
    const v1::Event& event, StateBatch& batch,
    const std::function<absl::StatusOr<RequestOutcome>()>& decide) {
  absl::StatusOr<bool> first = batch.MarkSeen(event.event_id());
  if (!first.ok()) return first.status();
  if (!*first) return AddToCounter(batch, kDuplicatesKey, 1);
  absl::StatusOr<RequestOutcome> outcome = decide();
  if (!outcome.ok()) return outcome.status();
  batch.Put(OutcomeKey(event.event_id()), outcome->SerializeAsString());
  return absl::OkStatus();
}

absl::Status WindowLedger::ApplyReserve(const v1::Event& event, StateBatch& batch) {
  absl::StatusOr<bool> first = batch.MarkSeen(event.event_id());
  if (!first.ok()) return first.status();
  if (!*first) return AddToCounter(batch, kDuplicatesKey, 1);
  const v1::FloatReserveRecorded& reserve = event.float_reserve_recorded();
  RequestOutcome outcome;
  const bool own = event.source().kind() == v1::TENANT_KIND_CITY_OPERATOR &&
                   event.source().city() == reserve.issuer_city();
  // The ministry records the escrow of a failed issuer as it is drawn down. Whether the issuer
  // has a successor is the API's check: successions sit in another partition of this topic, so
  // the ledger's decision may not depend on them.
  const bool ministry = event.source().kind() == v1::TENANT_KIND_MINISTRY;
  if (!own && !ministry) {
    outcome.set_rule("issuer_only");
    outcome.set_message("only the issuer city (or the ministry) records the issuer's reserve");
  } else if (reserve.reserve_fen() < 0) {
    outcome.set_rule("reserve_fen_non_negative");
    outcome.set_message("reserve_fen must be >= 0");
  } else {
    absl::StatusOr<std::optional<FloatRecord>> stored =
        ReadMessage<FloatRecord>(ViewOf(batch), FloatKey(reserve.issuer_city()));
    if (!stored.ok()) return stored.status();
    FloatRecord fl = stored->value_or(FloatRecord());
    fl.set_reserve_fen(reserve.reserve_fen());
    fl.set_reserve_reference(reserve.reference());
    fl.set_reserve_recorded(true);
    batch.Put(FloatKey(reserve.issuer_city()), fl.SerializeAsString());
    outcome.set_accepted(true);
  }
  batch.Put(OutcomeKey(event.event_id()), outcome.SerializeAsString());
  return absl::OkStatus();
}

absl::StatusOr<RequestOutcome> WindowLedger::DecideTransfer(const event_log::Record& record,
                                                            const v1::Event& event,
                                                            StateBatch& batch) {
  const v1::FloatTransferRequested& request = event.float_transfer_requested();
  RequestOutcome outcome;
  auto refuse = [&](absl::string_view rule, std::string message) {
    outcome.set_accepted(false);
    outcome.set_rule(std::string(rule));
    outcome.set_message(std::move(message));
    return outcome;
  };
  // Every rule reads only the successions, which only commands of this one partition
  // (kSuccessionEventKey) write: every replica decides alike, whatever it applied elsewhere.
  if (event.source().kind() != v1::TENANT_KIND_MINISTRY) {
    return refuse("ministry_only", "only the ministry transfers an issuer's float");
  }
  if (txn::FindCity(request.from_city()) == nullptr ||
      txn::FindCity(request.to_city()) == nullptr) {
    return refuse("unknown_city", absl::StrCat("from ", request.from_city(), " or to ",
                                               request.to_city(), " is not a member city"));
  }
  if (request.from_city() == request.to_city()) {
    return refuse("same_city",
                  absl::StrCat("city ", request.from_city(), " cannot succeed itself"));
  }
  absl::StatusOr<std::map<uint32_t, SuccessionRecord>> successions = ReadSuccessions(ViewOf(batch));
  if (!successions.ok()) return successions.status();
  if (auto done = successions->find(request.from_city()); done != successions->end()) {
    return refuse("already_transferred",
                  absl::StrCat("the float of ", request.from_city(), " was transferred to ",
                               done->second.to_city(), " by ", done->second.command_event_id()));
  }
  if (auto gone = successions->find(request.to_city()); gone != successions->end()) {
    return refuse("successor_transferred",
                  absl::StrCat("successor ", request.to_city(), " has itself been transferred to ",
                               gone->second.to_city(), "; name that issuer instead"));
  }

  if (Owns(record.partition)) {
    // The amount as this replica has applied the float deltas so far: the auditable fact of the
    // move. It is published, never stored (another replica may have applied more or fewer of
    // the other partitions' deltas by now).
    absl::StatusOr<std::map<uint32_t, FoldedFloat>> floats = ReadFoldedFloats(ViewOf(batch));
    if (!floats.ok()) return floats.status();
    const FoldedFloat from = (*floats)[request.from_city()];
    v1::Event out;
    out.set_event_id(state_store::DerivedEventId(kServiceName, record, "transferred"));
    out.set_recorded_at_us(event.recorded_at_us());
    out.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
    out.mutable_source()->set_service(kServiceName);
    v1::FloatTransferred* moved = out.mutable_float_transferred();
    moved->set_from_city(request.from_city());
    moved->set_to_city(request.to_city());
    moved->set_amount_fen(from.outstanding_fen);
    moved->set_owed_to_holders_fen(from.record.owed_to_holders_fen());
    moved->set_reserve_fen(from.record.reserve_fen());
    moved->set_command_event_id(event.event_id());
    moved->set_recorded_at_us(event.recorded_at_us());
    moved->set_request_id(request.request_id());
    batch.AppendOutbox(kSettlementTopic, FloatEventKey(request.from_city()),
                       out.SerializeAsString());
  }
  SuccessionRecord succession;
  succession.set_to_city(request.to_city());
  succession.set_recorded_at_us(event.recorded_at_us());
  succession.set_command_event_id(event.event_id());
  succession.set_reason(request.reason());
  batch.Put(SuccessionKey(request.from_city()), succession.SerializeAsString());
  if (absl::Status counted = AddToCounter(batch, kFloatTransfersKey, 1); !counted.ok()) {
    return counted;
  }
  outcome.set_accepted(true);
  return outcome;
}

absl::StatusOr<RequestOutcome> WindowLedger::DecideRules(const v1::Event& event,
                                                         StateBatch& batch) {
  const v1::SettlementRulesRequested& request = event.settlement_rules_requested();
  RequestOutcome outcome;
  auto refuse = [&](absl::string_view message) {
    // Messages open with their rule: "effective_window_too_soon: ...".
    const size_t colon = message.find(':');
    outcome.set_accepted(false);
    outcome.set_rule(std::string(message.substr(0, colon)));
    outcome.set_message(
        std::string(colon == absl::string_view::npos
                        ? message
                        : absl::StripLeadingAsciiWhitespace(message.substr(colon + 1))));
    return outcome;
  };
  const bool genesis = request.effective_window_id().empty();
  const v1::Tenant& source = event.source();
  const bool platform =
      source.kind() == v1::TENANT_KIND_PLATFORM && source.service() == kServiceName;
  if (source.kind() != v1::TENANT_KIND_MINISTRY && !(genesis && platform)) {
    return refuse("ministry_only: only the ministry changes the settlement rules");
  }
  absl::StatusOr<RulesPeriod> period = RulesPeriod::Make(
      request.effective_window_id(), request.rules(), event.event_id(), event.recorded_at_us());
  if (!period.ok()) return refuse(absl::StrCat("rules_invalid: ", period.status().message()));
  absl::StatusOr<std::optional<RulesTimeline>> timeline = ReadRulesTimeline(ViewOf(batch));
  if (!timeline.ok()) return timeline.status();

  RulesRecord stored;
  stored.set_effective_window_id(request.effective_window_id());
  *stored.mutable_rules() = period->rules();
  stored.set_rules_id(event.event_id());
  stored.set_recorded_at_us(event.recorded_at_us());
  stored.set_reason(request.reason());
  if (genesis) {
    if (timeline->has_value()) {
      const RulesPeriod& recorded = (*timeline)->periods().front();
      if (recorded.rules().SerializeAsString() != period->rules().SerializeAsString()) {
        return refuse(absl::StrCat("rules_genesis_set: the genesis rules are ", recorded.Describe(),
                                   " (", recorded.rules_id(), "), not ", period->Describe()));
      }
      outcome.set_accepted(true);  // the same genesis again (another replica's first start)
      outcome.set_message(absl::StrCat("already recorded by ", recorded.rules_id()));
      return outcome;
    }
    batch.Put(RulesKey(""), stored.SerializeAsString());
    outcome.set_accepted(true);
    return outcome;
  }
  if (!timeline->has_value()) {
    return refuse("rules_genesis_missing: no genesis rules are recorded yet");
  }
  if (event.recorded_at_us() <= 0) {
    return refuse("recorded_at: a change needs the platform time it was requested at");
  }
  absl::StatusOr<RulesTimeline> next =
      (*timeline)->ScheduleChange(*period, absl::FromUnixMicros(event.recorded_at_us()));
  if (!next.ok()) return refuse(next.status().message());
  // The change replaces every period from its window on.
  for (const RulesPeriod& replaced : (*timeline)->periods()) {
    if (!replaced.genesis() && replaced.effective_day() >= period->effective_day()) {
      batch.Delete(RulesKey(replaced.effective_window_id()));
    }
  }
  batch.Put(RulesKey(request.effective_window_id()), stored.SerializeAsString());
  outcome.set_accepted(true);
  return outcome;
}

absl::Status WindowLedger::ApplyReport(const v1::Event& event, StateBatch& batch) {
  const v1::SettlementReport& theirs = event.settlement_report();
  absl::StatusOr<std::optional<v1::SettlementReport>> ours =
      ReadReport(ViewOf(batch), theirs.window_id());
  if (!ours.ok()) return ours.status();
  if (!ours->has_value() || (*ours)->digest() != theirs.digest() ||
      ReportDigest(theirs) != theirs.digest()) {
    LOG(ERROR) << "report on the log for window " << theirs.window_id()
               << " differs from this replica's: replicas disagree";
    return AddToCounter(batch, kMismatchesKey, 1);
  }
  return absl::OkStatus();
}

}  // namespace tongka::settlement
