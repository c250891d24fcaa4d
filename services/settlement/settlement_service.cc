#include "services/settlement/settlement_service.h"

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "libs/server/grpc_server.h"

namespace tongka::settlement {

template <typename Request, typename Response, typename Call>
grpc::Status SettlementService::Handle(const char* rpc, grpc::ServerContext* context,
                                       const Request& request, Response* response, Call call) {
  const absl::Time started = absl::Now();
  absl::Status status;
  absl::StatusOr<v1::Tenant> tenant = authenticator_->TenantFromContext(*context);
  if (!tenant.ok()) {
    status = tenant.status();
  } else {
    auto result = call(*tenant, request);
    status = result.status();
    if (result.ok()) *response = std::move(*result);
  }
  metrics_->requests
      .WithLabels({rpc, absl::AsciiStrToLower(absl::StatusCodeToString(status.code()))})
      .Increment();
  metrics_->request_seconds.WithLabels({rpc}).Observe(absl::ToDoubleSeconds(absl::Now() - started));
  return server::ToGrpcStatus(status);
}

#define TONGKA_SETTLEMENT_RPC(Rpc, Request, Response)                                         \
  grpc::Status SettlementService::Rpc(grpc::ServerContext* context, const Request* request,   \
                                      Response* response) {                                   \
    return Handle(                                                                            \
        #Rpc, context, *request, response,                                                    \
        [this](const v1::Tenant& tenant, const Request& r) { return api_->Rpc(tenant, r); }); \
  }

TONGKA_SETTLEMENT_RPC(ListWindows, v1::ListWindowsRequest, v1::ListWindowsResponse)
TONGKA_SETTLEMENT_RPC(GetWindow, v1::GetWindowRequest, v1::GetWindowResponse)
TONGKA_SETTLEMENT_RPC(ChangeWindowState, v1::ChangeWindowStateRequest,
                      v1::ChangeWindowStateResponse)
TONGKA_SETTLEMENT_RPC(GetReport, v1::GetReportRequest, v1::GetReportResponse)
TONGKA_SETTLEMENT_RPC(Reconcile, v1::ReconcileRequest, v1::ReconcileResponse)
TONGKA_SETTLEMENT_RPC(DrillDown, v1::DrillDownRequest, v1::DrillDownResponse)
TONGKA_SETTLEMENT_RPC(ReconcileHour, v1::ReconcileHourRequest, v1::ReconcileHourResponse)
TONGKA_SETTLEMENT_RPC(GetFloat, v1::GetFloatRequest, v1::GetFloatResponse)
TONGKA_SETTLEMENT_RPC(RecordReserve, v1::RecordReserveRequest, v1::RecordReserveResponse)
TONGKA_SETTLEMENT_RPC(ListCellTransactions, v1::ListCellTransactionsRequest,
                      v1::ListCellTransactionsResponse)
TONGKA_SETTLEMENT_RPC(GetRules, v1::GetRulesRequest, v1::GetRulesResponse)
TONGKA_SETTLEMENT_RPC(ScheduleRules, v1::ScheduleRulesRequest, v1::ScheduleRulesResponse)
TONGKA_SETTLEMENT_RPC(TransferFloat, v1::TransferFloatRequest, v1::TransferFloatResponse)

#undef TONGKA_SETTLEMENT_RPC

}  // namespace tongka::settlement
