#include "services/settlement/settlement_api.h"

#include <glog/logging.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/server/tenant.h"
#include "libs/txn/cities.h"
#include "services/settlement/settlement_state.h"

namespace tongka::settlement {
namespace {

constexpr int kListLimitDefault = 100;
constexpr int kListLimitMax = 1000;
constexpr int kReconcileRowsMax = 10000;
constexpr int kHourIdsMax = 500000;

absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

// Settlement data is for city operators and the ministry.
absl::Status RequireReader(const v1::Tenant& tenant) {
  if (server::CanReadAll(tenant) || tenant.kind() == v1::TENANT_KIND_CITY_OPERATOR) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat(server::TenantName(tenant),
                   " may not read settlement data (city operators and the ministry)"));
}

bool SeesRow(const v1::Tenant& tenant, uint32_t issuer, uint32_t acquirer) {
  return server::CanReadCity(tenant, issuer) || server::CanReadCity(tenant, acquirer);
}

absl::Status RequireRow(const v1::Tenant& tenant, uint32_t issuer, uint32_t acquirer,
                        absl::string_view what) {
  if (SeesRow(tenant, issuer, acquirer)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(what, ": not your row: ", server::TenantName(tenant), " is neither issuer ",
                   issuer, " nor acquirer ", acquirer));
}

absl::Status CheckCity(absl::string_view field, uint32_t city) {
  if (txn::FindCity(city) == nullptr)
    return Invalid(field, absl::StrCat("not a member city: ", city));
  return absl::OkStatus();
}

absl::Status CheckRequestId(absl::string_view request_id) {
  if (request_id.empty() || request_id.size() > 64) {
    return Invalid("request_id", "must be 1..64 characters");
  }
  for (char c : request_id) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-') {
      return Invalid("request_id", "only [A-Za-z0-9._:-]");
    }
  }
  return absl::OkStatus();
}

// The window record, NOT_FOUND when the window never saw a transaction or a decision.
absl::StatusOr<WindowRecord> KnownWindow(const StateView& view, absl::string_view window_id) {
  absl::StatusOr<absl::CivilDay> day = ParseWindowId(window_id);
  if (!day.ok()) return Invalid("window_id", day.status().message());
  absl::StatusOr<std::optional<WindowRecord>> window = ReadWindow(view, window_id);
  if (!window.ok()) return window.status();
  if (!window->has_value()) {
    return absl::NotFoundError(absl::StrCat("unknown window ", window_id));
  }
  return **window;
}

v1::RulesPeriod PeriodOf(const RulesTimeline& timeline, const RulesPeriod& period,
                         absl::string_view reason) {
  v1::RulesPeriod out;
  out.set_effective_window_id(period.effective_window_id());
  *out.mutable_rules() = period.rules();
  out.set_rules_id(period.rules_id());
  out.set_recorded_at_us(period.recorded_at_us());
  out.set_reason(std::string(reason));
  if (!period.genesis()) {
    out.set_first_window_start_at_us(absl::ToUnixMicros(timeline.Start(period.effective_day())));
    out.set_first_window_end_at_us(absl::ToUnixMicros(timeline.End(period.effective_day())));
  }
  return out;
}

// One issuer's row with the successions folded in (FoldFloats): a successor carries its
// predecessors' float, covered by its own reserve; a transferred issuer carries none and shows
// what its cards hold as transferred_fen, covered by its remaining reserve until that is spent.
v1::FloatPosition PositionOf(uint32_t city, const FoldedFloat& folded) {
  const FloatRecord& record = folded.record;
  v1::FloatPosition position;
  position.set_issuer_city(city);
  position.set_loads_fen(record.loads_fen());
  position.set_spent_fen(record.spent_fen());
  position.set_refunded_fen(record.refunded_fen());
  position.set_opening_fen(record.opening_fen());
  position.set_owed_to_holders_fen(record.owed_to_holders_fen());
  position.set_outstanding_fen(folded.outstanding_fen);
  position.set_reserve_fen(record.reserve_fen());
  position.set_reserve_reference(record.reserve_reference());
  position.set_inherited_fen(folded.inherited_fen);
  for (uint32_t predecessor : folded.predecessors) position.add_predecessor_cities(predecessor);
  if (folded.successor != 0) {
    position.set_successor_city(folded.successor);
    position.set_transferred_fen(folded.own_fen);
    if (record.reserve_fen() > 0 && folded.own_fen > 0) {
      position.set_coverage_ratio(static_cast<double>(record.reserve_fen()) /
                                  static_cast<double>(folded.own_fen));
    }
    return position;
  }
  const int64_t outstanding = folded.outstanding_fen;
  if (outstanding > 0) {
    position.set_coverage_ratio(static_cast<double>(record.reserve_fen()) /
                                static_cast<double>(outstanding));
    position.set_under_covered(record.reserve_fen() < outstanding);
  }
  return position;
}

// A city reads its own float row and, as a successor, the rows of the issuers whose float it
// now carries (directly or down a chain); the ministry reads all.
bool ReadsFloatOf(const v1::Tenant& tenant, uint32_t city,
                  const std::map<uint32_t, FoldedFloat>& floats) {
  if (server::CanReadCity(tenant, city)) return true;
  if (tenant.kind() != v1::TENANT_KIND_CITY_OPERATOR) return false;
  for (auto it = floats.find(city); it != floats.end() && it->second.successor != 0;
       it = floats.find(it->second.successor)) {
    if (it->second.successor == tenant.city()) return true;
  }
  return false;
}

absl::Status CheckSixDigitCity(absl::string_view field, uint32_t city) {
  if (city < 100000 || city > 999999) return Invalid(field, "must be a six-digit city code");
  return CheckCity(field, city);
}

}  // namespace

absl::StatusOr<v1::ListWindowsResponse> SettlementApi::ListWindows(
    const v1::Tenant& tenant, const v1::ListWindowsRequest& request) const {
  if (absl::Status reader = RequireReader(tenant); !reader.ok()) return reader;
  int limit = request.limit() == 0 ? kListLimitDefault : request.limit();
  if (limit < 0 || limit > kListLimitMax) return Invalid("limit", "must be in [0, 1000]");
  const StateView view = ViewOf(*deps_.store);
  absl::StatusOr<std::vector<std::pair<std::string, WindowRecord>>> windows = ReadWindows(view);
  if (!windows.ok()) return windows.status();
  v1::ListWindowsResponse response;
  for (auto it = windows->rbegin(); it != windows->rend() && response.windows_size() < limit;
       ++it) {
    if (request.state() != v1::WINDOW_STATE_UNSPECIFIED && it->second.state() != request.state()) {
      continue;
    }
    absl::StatusOr<v1::GetWindowResponse> one = GetWindow(tenant, [&] {
      v1::GetWindowRequest get;
      get.set_window_id(it->first);
      return get;
    }());
    if (!one.ok()) return one.status();
    *response.add_windows() = std::move(*one->mutable_window());
  }
  return response;
}

absl::StatusOr<v1::GetWindowResponse> SettlementApi::GetWindow(
    const v1::Tenant& tenant, const v1::GetWindowRequest& request) const {
  if (absl::Status reader = RequireReader(tenant); !reader.ok()) return reader;
  const StateView view = ViewOf(*deps_.store);
  absl::StatusOr<WindowRecord> window = KnownWindow(view, request.window_id());
  if (!window.ok()) return window.status();
  absl::StatusOr<std::vector<v1::SettlementCell>> pairs = ReadPairs(view, request.window_id());
  if (!pairs.ok()) return pairs.status();
  // Positions from the pairs, with the same netting the report uses (live while OPEN).
  v1::SettlementReport live = BuildReport(request.window_id(), *pairs);
  v1::GetWindowResponse response;
  v1::WindowSummary* summary = response.mutable_window();
  const absl::CivilDay day = *ParseWindowId(request.window_id());
  summary->set_window_id(request.window_id());
  summary->set_state(window->state());
  absl::StatusOr<std::shared_ptr<const RulesTimeline>> rules = Rules();
  if (!rules.ok()) return rules.status();
  if (*rules != nullptr) {
    summary->set_start_at_us(absl::ToUnixMicros((*rules)->Start(day)));
    summary->set_end_at_us(absl::ToUnixMicros((*rules)->End(day)));
  }
  summary->set_report_ready(!window->report_digest().empty());
  if (server::CanReadAll(tenant)) {
    summary->mutable_invariant_violations()->CopyFrom(window->invariant_violations());
  }
  for (const PaymentReference& ref : window->payment_references()) {
    if (server::CanReadCity(tenant, ref.city())) {
      (*summary->mutable_payment_references())[ref.city()] = ref.reference();
    }
  }
  for (const v1::BilateralPosition& row : live.bilateral()) {
    if (!SeesRow(tenant, row.issuer_city(), row.acquirer_city())) continue;
    summary->set_transactions(summary->transactions() + row.count());
    summary->set_gross_fen(summary->gross_fen() + row.gross_fen());
    *response.add_bilateral() = row;
  }
  for (const v1::NetPosition& net : live.net()) {
    if (server::CanReadCity(tenant, net.city())) *response.add_net() = net;
  }
  return response;
}

absl::StatusOr<RequestOutcome> SettlementApi::SubmitCommand(const std::string& key,
                                                            v1::Event event) const {
  event.set_recorded_at_us(absl::ToUnixMicros(deps_.now()));
  absl::StatusOr<event_log::DeliveryResult> delivered = deps_.producer->ProduceSync(
      kSettlementTopic, key, event.SerializeAsString(), deps_.command_timeout);
  if (!delivered.ok()) return delivered.status();
  // Read-your-writes: wait until this replica's ledger has applied the command's offset.
  const absl::Time deadline = absl::Now() + deps_.command_timeout;
  while (deps_.ledger_next_offset(delivered->partition) <= delivered->offset) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("request ", event.event_id(), " is in the log (tongka.settlement/",
                       delivered->partition, "@", delivered->offset,
                       ") but not decided yet; retry with the same request_id for the decision"));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  absl::StatusOr<std::optional<RequestOutcome>> outcome =
      ReadOutcome(ViewOf(*deps_.store), event.event_id());
  if (!outcome.ok()) return outcome.status();
  if (!outcome->has_value()) {
    return absl::InternalError(
        absl::StrCat("request ", event.event_id(), " applied without a decision"));
  }
  return **outcome;
}

absl::StatusOr<v1::ChangeWindowStateResponse> SettlementApi::ChangeWindowState(
    const v1::Tenant& tenant, const v1::ChangeWindowStateRequest& request) const {
  if (absl::Status ministry = server::RequireMinistry(tenant, "move a settlement window");
      !ministry.ok()) {
    return ministry;
  }
  if (absl::Status id = CheckRequestId(request.request_id()); !id.ok()) return id;
  if (absl::StatusOr<absl::CivilDay> day = ParseWindowId(request.window_id()); !day.ok()) {
    return Invalid("window_id", day.status().message());
  }
  switch (request.target_state()) {
    case v1::WINDOW_STATE_CLOSING:
    case v1::WINDOW_STATE_CLOSED:
    case v1::WINDOW_STATE_SETTLED:
    case v1::WINDOW_STATE_ABORTED:
      break;
    default:
      return Invalid("target_state", "must be CLOSING, CLOSED, SETTLED or ABORTED");
  }
  for (const auto& [city, reference] : request.payment_references()) {
    if (absl::Status ok = CheckCity("payment_references", city); !ok.ok()) return ok;
    if (reference.empty() || reference.size() > 128) {
      return Invalid("payment_references",
                     absl::StrCat("reference of ", city, " must be 1..128 characters"));
    }
  }
  // An empty window may close once its business day has begun. The ledger checks a bound that
  // holds under any rules; the exact start is checked here, by the rules this replica applied.
  if (request.target_state() == v1::WINDOW_STATE_CLOSING ||
      request.target_state() == v1::WINDOW_STATE_CLOSED) {
    absl::StatusOr<std::optional<WindowRecord>> known =
        ReadWindow(ViewOf(*deps_.store), request.window_id());
    if (!known.ok()) return known.status();
    absl::StatusOr<std::shared_ptr<const RulesTimeline>> rules = Rules();
    if (!rules.ok()) return rules.status();
    if (!known->has_value() && *rules != nullptr &&
        deps_.now() < (*rules)->Start(*ParseWindowId(request.window_id()))) {
      return absl::FailedPreconditionError(
          absl::StrCat("window_not_started: window ", request.window_id(), " has not begun"));
    }
  }
  v1::Event event;
  event.set_event_id(absl::StrCat("cmd/", server::TenantName(tenant), "/", request.request_id()));
  *event.mutable_source() = tenant;
  v1::WindowCloseRequested* body = event.mutable_window_close_requested();
  body->set_request_id(request.request_id());
  body->set_window_id(request.window_id());
  body->set_target_state(request.target_state());
  *body->mutable_payment_references() = request.payment_references();
  body->set_reason(request.reason());
  absl::StatusOr<RequestOutcome> outcome = SubmitCommand(request.window_id(), std::move(event));
  if (!outcome.ok()) return outcome.status();
  if (!outcome->accepted()) {
    const std::string message = absl::StrCat(outcome->rule(), ": ", outcome->message());
    if (outcome->rule() == "unknown_window") return absl::NotFoundError(message);
    return absl::FailedPreconditionError(message);
  }
  v1::ChangeWindowStateResponse response;
  response.set_accepted(true);
  response.set_state(outcome->state());
  return response;
}

absl::StatusOr<v1::GetReportResponse> SettlementApi::GetReport(
    const v1::Tenant& tenant, const v1::GetReportRequest& request) const {
  if (absl::Status reader = RequireReader(tenant); !reader.ok()) return reader;
  const StateView view = ViewOf(*deps_.store);
  absl::StatusOr<WindowRecord> window = KnownWindow(view, request.window_id());
  if (!window.ok()) return window.status();
  if (window->state() != v1::WINDOW_STATE_CLOSED && window->state() != v1::WINDOW_STATE_SETTLED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "window_not_closed: window ", request.window_id(), " is ",
        v1::WindowState_Name(window->state()), "; reports exist for CLOSED and SETTLED windows"));
  }
  absl::StatusOr<std::optional<v1::SettlementReport>> report =
      ReadReport(view, request.window_id());
  if (!report.ok()) return report.status();
  CHECK(report->has_value()) << "closed window without a report: " << request.window_id();
  v1::GetReportResponse response;
  if (server::CanReadAll(tenant)) {
    *response.mutable_report() = std::move(**report);
    return response;
  }
  v1::SettlementReport* filtered = response.mutable_report();
  filtered->set_window_id((*report)->window_id());
  filtered->set_digest((*report)->digest());
  for (const v1::BilateralPosition& row : (*report)->bilateral()) {
    if (SeesRow(tenant, row.issuer_city(), row.acquirer_city())) *filtered->add_bilateral() = row;
  }
  for (const v1::NetPosition& net : (*report)->net()) {
    if (server::CanReadCity(tenant, net.city())) *filtered->add_net() = net;
  }
  response.set_filtered(true);
  return response;
}

absl::StatusOr<v1::ReconcileResponse> SettlementApi::Reconcile(
    const v1::Tenant& tenant, const v1::ReconcileRequest& request) const {
  if (absl::Status reader = RequireReader(tenant); !reader.ok()) return reader;
  if (request.rows_size() > kReconcileRowsMax) return Invalid("rows", "at most 10,000 rows");
  std::set<std::pair<uint32_t, uint32_t>> submitted;
  for (int i = 0; i < request.rows_size(); ++i) {
    const v1::ReconcileRow& row = request.rows(i);
    const std::string field = absl::StrCat("rows[", i, "]");
    if (absl::Status ok = CheckCity(absl::StrCat(field, ".issuer_city"), row.issuer_city());
        !ok.ok())
      return ok;
    if (absl::Status ok = CheckCity(absl::StrCat(field, ".acquirer_city"), row.acquirer_city());
        !ok.ok())
      return ok;
    if (row.count() < 0) return Invalid(absl::StrCat(field, ".count"), "must be >= 0");
    if (absl::Status mine = RequireRow(tenant, row.issuer_city(), row.acquirer_city(), field);
        !mine.ok())
      return mine;
    if (!submitted.emplace(row.issuer_city(), row.acquirer_city()).second) {
      return Invalid(field, "the same (issuer, acquirer) row twice");
    }
  }
  const StateView view = ViewOf(*deps_.store);
  absl::StatusOr<WindowRecord> window = KnownWindow(view, request.window_id());
  if (!window.ok()) return window.status();
  absl::StatusOr<std::vector<v1::SettlementCell>> pairs = ReadPairs(view, request.window_id());
  if (!pairs.ok()) return pairs.status();
  std::map<std::pair<uint32_t, uint32_t>, v1::ReconcileRow> ours;
  for (const v1::SettlementCell& pair : *pairs) {
    if (CountOf(pair) == 0) continue;  // loads only: nothing to reconcile
    v1::ReconcileRow& row = ours[{pair.issuer_city(), pair.acquirer_city()}];
    row.set_issuer_city(pair.issuer_city());
    row.set_acquirer_city(pair.acquirer_city());
    row.set_count(CountOf(pair));
    row.set_gross_fen(GrossFenOf(pair));
  }
  v1::ReconcileResponse response;
  for (const v1::ReconcileRow& row : request.rows()) {
    v1::ReconcileRowResult* result = response.add_results();
    *result->mutable_submitted() = row;
    v1::ReconcileRow platform;
    platform.set_issuer_city(row.issuer_city());
    platform.set_acquirer_city(row.acquirer_city());
    auto it = ours.find({row.issuer_city(), row.acquirer_city()});
    if (it != ours.end()) platform = it->second;
    const bool match = platform.count() == row.count() && platform.gross_fen() == row.gross_fen();
    *result->mutable_platform() = platform;
    result->set_match(match ? v1::ROW_MATCH_MATCH : v1::ROW_MATCH_MISMATCH);
  }
  for (const auto& [where, row] : ours) {
    if (!submitted.count(where) && SeesRow(tenant, where.first, where.second)) {
      *response.add_platform_only() = row;
    }
  }
  return response;
}

absl::StatusOr<v1::DrillDownResponse> SettlementApi::DrillDown(
    const v1::Tenant& tenant, const v1::DrillDownRequest& request) const {
  if (absl::Status reader = RequireReader(tenant); !reader.ok()) return reader;
  if (absl::Status ok = CheckCity("issuer_city", request.issuer_city()); !ok.ok()) return ok;
  if (absl::Status ok = CheckCity("acquirer_city", request.acquirer_city()); !ok.ok()) return ok;
  if (absl::Status mine = RequireRow(tenant, request.issuer_city(), request.acquirer_city(), "row");
      !mine.ok()) {
    return mine;
  }
  const StateView view = ViewOf(*deps_.store);
  absl::StatusOr<WindowRecord> window = KnownWindow(view, request.window_id());
  if (!window.ok()) return window.status();
  absl::StatusOr<std::vector<v1::SettlementCell>> hours =
      ReadHours(view, request.window_id(), request.issuer_city(), request.acquirer_city());
  if (!hours.ok()) return hours.status();
  v1::DrillDownResponse response;
  for (const v1::SettlementCell& cell : *hours) {
    if (CountOf(cell) == 0) continue;
    v1::HourTotals* hour = response.add_hours();
    hour->set_origin_window_id(cell.origin_window_id());
    hour->set_hour(cell.hour());
    hour->set_count(CountOf(cell));
    hour->set_gross_fen(GrossFenOf(cell));
    hour->set_id_digest(DigestHex(cell));
  }
  return response;
}

absl::StatusOr<std::vector<v1::CellTransaction>> SettlementApi::LocalCellTransactions(
    const v1::ListCellTransactionsRequest& request) const {
  absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ids = ReadCellTransactions(
      ViewOf(*deps_.store),
      request.window_id().empty() ? request.origin_window_id() : request.window_id(),
      request.origin_window_id(), request.issuer_city(), request.acquirer_city(), request.hour());
  if (!ids.ok()) return ids.status();
  std::vector<v1::CellTransaction> out;
  out.reserve(ids->size());
  for (auto& [id, amount] : *ids) {
    out.emplace_back();
    out.back().set_event_id(std::move(id));
    out.back().set_amount_fen(amount);
  }
  return out;
}

absl::StatusOr<v1::ListCellTransactionsResponse> SettlementApi::ListCellTransactions(
    const v1::Tenant& tenant, const v1::ListCellTransactionsRequest& request) const {
  if (!server::IsPlatform(tenant, kServiceName)) {
    return server::RequirePlatform(tenant, kServiceName, "list stage one's transaction index");
  }
  absl::StatusOr<std::vector<v1::CellTransaction>> local = LocalCellTransactions(request);
  if (!local.ok()) return local.status();
  v1::ListCellTransactionsResponse response;
  for (v1::CellTransaction& txn : *local) *response.add_transactions() = std::move(txn);
  return response;
}

absl::StatusOr<v1::ReconcileHourResponse> SettlementApi::ReconcileHour(
    const v1::Tenant& tenant, const v1::ReconcileHourRequest& request) const {
  if (absl::Status reader = RequireReader(tenant); !reader.ok()) return reader;
  if (absl::Status ok = CheckCity("issuer_city", request.issuer_city()); !ok.ok()) return ok;
  if (absl::Status ok = CheckCity("acquirer_city", request.acquirer_city()); !ok.ok()) return ok;
  if (absl::Status mine = RequireRow(tenant, request.issuer_city(), request.acquirer_city(), "row");
      !mine.ok()) {
    return mine;
  }
  if (request.hour() < 0 || request.hour() >= kWindowHoursMax) {
    return Invalid("hour", absl::StrCat("must be in [0, ", kWindowHoursMax - 1, "]"));
  }
  if (request.event_ids_size() > kHourIdsMax) return Invalid("event_ids", "at most 500,000 ids");
  const std::string origin =
      request.origin_window_id().empty() ? request.window_id() : request.origin_window_id();
  if (absl::StatusOr<absl::CivilDay> day = ParseWindowId(origin); !day.ok()) {
    return Invalid("origin_window_id", day.status().message());
  }
  absl::StatusOr<WindowRecord> window = KnownWindow(ViewOf(*deps_.store), request.window_id());
  if (!window.ok()) return window.status();

  v1::ListCellTransactionsRequest cell;
  cell.set_origin_window_id(origin);
  cell.set_window_id(request.window_id());
  cell.set_issuer_city(request.issuer_city());
  cell.set_acquirer_city(request.acquirer_city());
  cell.set_hour(request.hour());
  std::set<std::string> platform;
  for (int32_t replica = 0; replica < deps_.replica_count; ++replica) {
    if (replica == deps_.replica_index) {
      absl::StatusOr<std::vector<v1::CellTransaction>> local = LocalCellTransactions(cell);
      if (!local.ok()) return local.status();
      for (const v1::CellTransaction& txn : *local) platform.insert(txn.event_id());
      continue;
    }
    absl::StatusOr<v1::ListCellTransactionsResponse> remote = deps_.peer_call(replica, cell);
    if (!remote.ok()) {
      return absl::UnavailableError(absl::StrCat("replica ", replica,
                                                 " (holding part of the transaction index) is "
                                                 "unreachable: ",
                                                 remote.status().message()));
    }
    for (const v1::CellTransaction& txn : remote->transactions()) platform.insert(txn.event_id());
  }
  std::set<std::string> city(request.event_ids().begin(), request.event_ids().end());
  v1::ReconcileHourResponse response;
  response.set_platform_count(static_cast<int64_t>(platform.size()));
  std::set_difference(platform.begin(), platform.end(), city.begin(), city.end(),
                      RepeatedPtrFieldBackInserter(response.mutable_missing_at_city()));
  std::set_difference(city.begin(), city.end(), platform.begin(), platform.end(),
                      RepeatedPtrFieldBackInserter(response.mutable_unknown_to_platform()));
  return response;
}

absl::StatusOr<v1::GetFloatResponse> SettlementApi::GetFloat(
    const v1::Tenant& tenant, const v1::GetFloatRequest& request) const {
  if (absl::Status reader = RequireReader(tenant); !reader.ok()) return reader;
  const StateView view = ViewOf(*deps_.store);
  std::map<uint32_t, int64_t> window_change;
  if (!request.window_id().empty()) {
    absl::StatusOr<WindowRecord> window = KnownWindow(view, request.window_id());
    if (!window.ok()) return window.status();
    absl::StatusOr<std::vector<v1::SettlementCell>> pairs = ReadPairs(view, request.window_id());
    if (!pairs.ok()) return pairs.status();
    for (const v1::SettlementCell& pair : *pairs) {
      window_change[pair.issuer_city()] += FloatChangeFen(pair);
    }
  }
  absl::StatusOr<std::map<uint32_t, FoldedFloat>> floats = ReadFoldedFloats(view);
  if (!floats.ok()) return floats.status();
  v1::GetFloatResponse response;
  for (const auto& [city, folded] : *floats) {
    if (!ReadsFloatOf(tenant, city, *floats)) continue;
    // Per card city, like the reports: a window's change is what that city's cards did.
    v1::FloatPosition position = PositionOf(city, folded);
    position.set_window_change_fen(window_change[city]);
    *response.add_issuers() = std::move(position);
  }
  return response;
}

absl::StatusOr<v1::RecordReserveResponse> SettlementApi::RecordReserve(
    const v1::Tenant& tenant, const v1::RecordReserveRequest& request) const {
  const bool own =
      tenant.kind() == v1::TENANT_KIND_CITY_OPERATOR && tenant.city() == request.issuer_city();
  if (!own) {
    // The ministry records the escrow of a failed issuer (one with a successor) as it is drawn
    // down; an issuer still in business records its own.
    bool transferred = false;
    if (tenant.kind() == v1::TENANT_KIND_MINISTRY) {
      absl::StatusOr<std::map<uint32_t, SuccessionRecord>> successions =
          ReadSuccessions(ViewOf(*deps_.store));
      if (!successions.ok()) return successions.status();
      transferred = successions->count(request.issuer_city()) > 0;
    }
    if (!transferred) {
      return absl::PermissionDeniedError(absl::StrCat(
          server::TenantName(tenant), " may not record the reserve of issuer ",
          request.issuer_city(),
          " (only that city's operator; the ministry once its float was transferred)"));
    }
  }
  if (absl::Status id = CheckRequestId(request.request_id()); !id.ok()) return id;
  if (request.reserve_fen() < 0) return Invalid("reserve_fen", "must be >= 0");
  if (request.reference().size() > 128) return Invalid("reference", "at most 128 characters");
  v1::Event event;
  event.set_event_id(absl::StrCat("cmd/", server::TenantName(tenant), "/", request.request_id()));
  *event.mutable_source() = tenant;
  v1::FloatReserveRecorded* body = event.mutable_float_reserve_recorded();
  body->set_request_id(request.request_id());
  body->set_issuer_city(request.issuer_city());
  body->set_reserve_fen(request.reserve_fen());
  body->set_reference(request.reference());
  absl::StatusOr<RequestOutcome> outcome =
      SubmitCommand(ReserveEventKey(request.issuer_city()), std::move(event));
  if (!outcome.ok()) return outcome.status();
  if (!outcome->accepted()) {
    return absl::FailedPreconditionError(absl::StrCat(outcome->rule(), ": ", outcome->message()));
  }
  absl::StatusOr<std::map<uint32_t, FoldedFloat>> floats = ReadFoldedFloats(ViewOf(*deps_.store));
  if (!floats.ok()) return floats.status();
  v1::RecordReserveResponse response;
  *response.mutable_position() =
      PositionOf(request.issuer_city(), (*floats)[request.issuer_city()]);
  return response;
}

absl::StatusOr<v1::TransferFloatResponse> SettlementApi::TransferFloat(
    const v1::Tenant& tenant, const v1::TransferFloatRequest& request) const {
  if (absl::Status ministry = server::RequireMinistry(tenant, "transfer an issuer's float");
      !ministry.ok()) {
    return ministry;
  }
  if (absl::Status id = CheckRequestId(request.request_id()); !id.ok()) return id;
  if (absl::Status ok = CheckSixDigitCity("from_city", request.from_city()); !ok.ok()) return ok;
  if (absl::Status ok = CheckSixDigitCity("to_city", request.to_city()); !ok.ok()) return ok;
  if (request.from_city() == request.to_city()) {
    return Invalid("to_city", "must differ from from_city");
  }
  if (request.reason().size() > 512) return Invalid("reason", "at most 512 characters");
  v1::Event event;
  event.set_event_id(absl::StrCat("cmd/", server::TenantName(tenant), "/", request.request_id()));
  *event.mutable_source() = tenant;
  v1::FloatTransferRequested* body = event.mutable_float_transfer_requested();
  body->set_request_id(request.request_id());
  body->set_from_city(request.from_city());
  body->set_to_city(request.to_city());
  body->set_reason(request.reason());
  const std::string event_id = event.event_id();
  absl::StatusOr<RequestOutcome> outcome = SubmitCommand(kSuccessionEventKey, std::move(event));
  if (!outcome.ok()) return outcome.status();
  if (!outcome->accepted()) {
    return absl::FailedPreconditionError(absl::StrCat(outcome->rule(), ": ", outcome->message()));
  }
  const StateView view = ViewOf(*deps_.store);
  absl::StatusOr<std::map<uint32_t, SuccessionRecord>> successions = ReadSuccessions(view);
  if (!successions.ok()) return successions.status();
  // A request id names one transfer: the same id with other cities was dropped by the ledger as
  // a resend, so the answer must not pretend it took.
  auto recorded = successions->find(request.from_city());
  if (recorded == successions->end() || recorded->second.command_event_id() != event_id ||
      recorded->second.to_city() != request.to_city()) {
    return absl::AlreadyExistsError(absl::StrCat("request_id: ", request.request_id(),
                                                 " already named another transfer; use a new "
                                                 "request_id"));
  }
  absl::StatusOr<std::map<uint32_t, FoldedFloat>> floats = ReadFoldedFloats(view);
  if (!floats.ok()) return floats.status();
  v1::TransferFloatResponse response;
  *response.mutable_from() = PositionOf(request.from_city(), (*floats)[request.from_city()]);
  *response.mutable_to() = PositionOf(request.to_city(), (*floats)[request.to_city()]);
  response.set_command_event_id(event_id);
  return response;
}

absl::StatusOr<std::shared_ptr<const RulesTimeline>> SettlementApi::Rules() const {
  return rules_.Get(ViewOf(*deps_.store));
}

absl::StatusOr<v1::GetRulesResponse> SettlementApi::GetRules(
    const v1::Tenant& tenant, const v1::GetRulesRequest& request) const {
  (void)tenant;  // published tariffs: every authenticated tenant reads them
  std::optional<absl::CivilDay> day;
  if (!request.window_id().empty()) {
    absl::StatusOr<absl::CivilDay> parsed = ParseWindowId(request.window_id());
    if (!parsed.ok()) return Invalid("window_id", parsed.status().message());
    day = *parsed;
  }
  absl::StatusOr<std::vector<RulesRecord>> records = ReadRules(ViewOf(*deps_.store));
  if (!records.ok()) return records.status();
  absl::StatusOr<std::shared_ptr<const RulesTimeline>> rules = Rules();
  if (!rules.ok()) return rules.status();
  if (*rules == nullptr) {
    return absl::UnavailableError("no settlement rules recorded yet; settlement is starting");
  }
  v1::GetRulesResponse response;
  const RulesTimeline& timeline = **rules;
  for (const RulesPeriod& period : timeline.periods()) {
    std::string reason;
    for (const RulesRecord& record : *records) {
      if (record.rules_id() == period.rules_id()) reason = record.reason();
    }
    *response.add_periods() = PeriodOf(timeline, period, reason);
  }
  if (day.has_value()) {
    *response.mutable_in_force() = response.periods(static_cast<int>(timeline.IndexFor(*day)));
  }
  return response;
}

absl::StatusOr<v1::ScheduleRulesResponse> SettlementApi::ScheduleRules(
    const v1::Tenant& tenant, const v1::ScheduleRulesRequest& request) const {
  if (absl::Status ministry = server::RequireMinistry(tenant, "change the settlement rules");
      !ministry.ok()) {
    return ministry;
  }
  if (absl::Status id = CheckRequestId(request.request_id()); !id.ok()) return id;
  if (request.effective_window_id().empty()) {
    return Invalid("effective_window_id", "required: the first window under the new rules");
  }
  // Field by field, so a bad value is named before anything reaches the log.
  absl::StatusOr<RulesPeriod> period =
      RulesPeriod::Make(request.effective_window_id(), request.rules(), "", 0);
  if (!period.ok()) {
    const absl::string_view message = period.status().message();
    if (absl::StartsWith(message, "effective_window_id")) return period.status();
    return absl::InvalidArgumentError(absl::StrCat("rules.", message));
  }
  if (request.reason().size() > 512) return Invalid("reason", "at most 512 characters");
  v1::Event event;
  event.set_event_id(absl::StrCat("cmd/", server::TenantName(tenant), "/", request.request_id()));
  *event.mutable_source() = tenant;
  v1::SettlementRulesRequested* body = event.mutable_settlement_rules_requested();
  body->set_request_id(request.request_id());
  body->set_effective_window_id(request.effective_window_id());
  *body->mutable_rules() = request.rules();
  body->set_reason(request.reason());
  const std::string event_id = event.event_id();
  absl::StatusOr<RequestOutcome> outcome = SubmitCommand(kRulesEventKey, std::move(event));
  if (!outcome.ok()) return outcome.status();
  if (!outcome->accepted()) {
    return absl::FailedPreconditionError(absl::StrCat(outcome->rule(), ": ", outcome->message()));
  }
  absl::StatusOr<std::shared_ptr<const RulesTimeline>> rules = Rules();
  if (!rules.ok()) return rules.status();
  v1::ScheduleRulesResponse response;
  // The period as recorded; a later command may already have replaced it (then it is absent).
  for (const RulesPeriod& recorded : (*rules)->periods()) {
    if (recorded.rules_id() != event_id) continue;
    // A request id names one change: the same id with another body is a mistake the ledger
    // cannot see (it drops the second as a resend), so the answer must not pretend it took.
    if (recorded.effective_window_id() != period->effective_window_id() ||
        recorded.rules().SerializeAsString() != period->rules().SerializeAsString()) {
      return absl::AlreadyExistsError(absl::StrCat(
          "request_id: ", request.request_id(), " already scheduled ", recorded.Describe(),
          " from window ", recorded.effective_window_id(), "; use a new request_id"));
    }
    *response.mutable_period() = PeriodOf(**rules, recorded, request.reason());
    return response;
  }
  response.set_superseded(true);
  return response;
}

absl::StatusOr<RequestOutcome> SettlementApi::RecordGenesisRules(
    const v1::SettlementRules& rules) const {
  v1::Event event;
  event.set_event_id(absl::StrCat("cmd/platform:", kServiceName, "/rules-genesis"));
  event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
  event.mutable_source()->set_service(kServiceName);
  v1::SettlementRulesRequested* body = event.mutable_settlement_rules_requested();
  body->set_request_id("rules-genesis");
  *body->mutable_rules() = rules;
  body->set_reason("genesis: settlement's first start on this log");
  return SubmitCommand(kRulesEventKey, std::move(event));
}

}  // namespace tongka::settlement
