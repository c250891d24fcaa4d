// SettlementApi: what each RPC of tongka.v1.SettlementService does, in domain terms, for one
// authenticated tenant. The gRPC handlers (settlement_service.h) only authenticate, call this,
// count, and convert the status.
//
// Reads come from this replica's RocksDB: every replica applies every window decision (the
// ledger, window_ledger.h), so any replica answers window, report, reconciliation and float
// queries. The id-level drill-down needs stage one's index, which is spread over the replicas by
// tongka.txn partition: ReconcileHour gathers it from every peer (ListCellTransactions).
// Commands (window changes, reserves, float transfers) are written to tongka.settlement and
// answered with the ledger's decision once this replica has applied it (read-your-writes); a retry
// with the same request id returns the first decision.
//
// Tenancy: a city sees the rows it is issuer or acquirer of, its own net and float, and the
// float of every failed issuer whose float it carries as successor; the ministry sees
// everything and alone moves windows, changes the rules and transfers a failed issuer's float
// (and records that issuer's reserve as its escrow is drawn down); partners see nothing here but
// the rules; platform:settlement only calls ListCellTransactions. The rules (business-day zone and
// cut, fee schedule: settlement_rules.h) are published tariffs: every tenant reads all of them.
// Errors: INVALID_ARGUMENT "<field>: <rule>", NOT_FOUND (unknown window), FAILED_PRECONDITION
// (window not closed), PERMISSION_DENIED (not your row), UNAVAILABLE (Kafka or a peer unreachable),
// DEADLINE_EXCEEDED (the decision did not come in time).
//
// Thread-safety: all methods are thread-safe (the store is; the peer stubs are).
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_API_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_API_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/event_log/producer.h"
#include "libs/state_store/state_store.h"
#include "proto/settlement.grpc.pb.h"
#include "services/settlement/business_day.h"
#include "services/settlement/settlement_readers.h"
#include "services/settlement/settlement_rules.h"
#include "services/settlement/settlement_storage.pb.h"

namespace tongka::settlement {

// Calls ListCellTransactions on another replica with this replica's own identity.
using PeerCall = std::function<absl::StatusOr<v1::ListCellTransactionsResponse>(
    int32_t replica, const v1::ListCellTransactionsRequest& request)>;

struct SettlementApiDeps {
  const state_store::StateStore* store = nullptr;
  event_log::Producer* producer = nullptr;
  // The next offset the ledger will apply on tongka.settlement partition p (read-your-writes).
  std::function<int64_t(int32_t partition)> ledger_next_offset;
  int32_t replica_index = 0;
  int32_t replica_count = 1;
  PeerCall peer_call;  // required when replica_count > 1
  absl::Duration command_timeout = absl::Seconds(30);
  std::function<absl::Time()> now = absl::Now;
};

class SettlementApi {
 public:
  explicit SettlementApi(SettlementApiDeps deps) : deps_(std::move(deps)) {}

  absl::StatusOr<v1::ListWindowsResponse> ListWindows(const v1::Tenant& tenant,
                                                      const v1::ListWindowsRequest& request) const;
  absl::StatusOr<v1::GetWindowResponse> GetWindow(const v1::Tenant& tenant,
                                                  const v1::GetWindowRequest& request) const;
  absl::StatusOr<v1::ChangeWindowStateResponse> ChangeWindowState(
      const v1::Tenant& tenant, const v1::ChangeWindowStateRequest& request) const;
  absl::StatusOr<v1::GetReportResponse> GetReport(const v1::Tenant& tenant,
                                                  const v1::GetReportRequest& request) const;
  absl::StatusOr<v1::ReconcileResponse> Reconcile(const v1::Tenant& tenant,
                                                  const v1::ReconcileRequest& request) const;
  absl::StatusOr<v1::DrillDownResponse> DrillDown(const v1::Tenant& tenant,
                                                  const v1::DrillDownRequest& request) const;
  absl::StatusOr<v1::ReconcileHourResponse> ReconcileHour(
      const v1::Tenant& tenant, const v1::ReconcileHourRequest& request) const;
  absl::StatusOr<v1::GetFloatResponse> GetFloat(const v1::Tenant& tenant,
                                                const v1::GetFloatRequest& request) const;
  absl::StatusOr<v1::RecordReserveResponse> RecordReserve(
      const v1::Tenant& tenant, const v1::RecordReserveRequest& request) const;
  absl::StatusOr<v1::ListCellTransactionsResponse> ListCellTransactions(
      const v1::Tenant& tenant, const v1::ListCellTransactionsRequest& request) const;
  absl::StatusOr<v1::GetRulesResponse> GetRules(const v1::Tenant& tenant,
                                                const v1::GetRulesRequest& request) const;
  absl::StatusOr<v1::ScheduleRulesResponse> ScheduleRules(
      const v1::Tenant& tenant, const v1::ScheduleRulesRequest& request) const;
  absl::StatusOr<v1::TransferFloatResponse> TransferFloat(
      const v1::Tenant& tenant, const v1::TransferFloatRequest& request) const;

  // The rules on the log as this replica has applied them; nullptr before the genesis.
  absl::StatusOr<std::shared_ptr<const RulesTimeline>> Rules() const;
  // Settlement's own first start on a log without rules: records `rules` as the genesis
  // (request id "rules-genesis", so replicas starting together send one command) and returns
  // the ledger's decision.
  absl::StatusOr<RequestOutcome> RecordGenesisRules(const v1::SettlementRules& rules) const;

  // Writes a command event and waits for the ledger's decision (also used by the scheduler).
  absl::StatusOr<RequestOutcome> SubmitCommand(const std::string& key, v1::Event event) const;

 private:
  absl::StatusOr<std::vector<v1::CellTransaction>> LocalCellTransactions(
      const v1::ListCellTransactionsRequest& request) const;

  const SettlementApiDeps deps_;
  mutable RulesCache rules_;
};

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_API_H_
