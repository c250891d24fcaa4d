// SettlementService: the gRPC handlers of tongka.v1.SettlementService (proto/settlement.proto).
// Thin: who is calling (the authenticator), then SettlementApi, then the status and the metrics.
// What each RPC does, who may call it and its errors: settlement_api.h and the proto.
//
// Ownership: borrows the api and the metrics; shares the authenticator.
// Thread-safety: handlers run concurrently on gRPC's threads; SettlementApi is thread-safe.
//
// Example:
//   SettlementService service(&api, authenticator, &metrics);
//   auto server = server::GrpcServer::Start(config.grpc, authenticator, {&service});
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_SERVICE_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_SERVICE_H_

#include <memory>

#include "libs/server/authenticator.h"
#include "proto/settlement.grpc.pb.h"
#include "services/settlement/settlement_api.h"
#include "services/settlement/settlement_metrics.h"

namespace tongka::settlement {

class SettlementService final : public v1::SettlementService::Service {
 public:
  SettlementService(const SettlementApi* api,
                    std::shared_ptr<const server::Authenticator> authenticator,
                    SettlementMetrics* metrics)
      : api_(api), authenticator_(std::move(authenticator)), metrics_(metrics) {}

  grpc::Status ListWindows(grpc::ServerContext* context, const v1::ListWindowsRequest* request,
                           v1::ListWindowsResponse* response) override;
  grpc::Status GetWindow(grpc::ServerContext* context, const v1::GetWindowRequest* request,
                         v1::GetWindowResponse* response) override;
  grpc::Status ChangeWindowState(grpc::ServerContext* context,
                                 const v1::ChangeWindowStateRequest* request,
                                 v1::ChangeWindowStateResponse* response) override;
  grpc::Status GetReport(grpc::ServerContext* context, const v1::GetReportRequest* request,
                         v1::GetReportResponse* response) override;
  grpc::Status Reconcile(grpc::ServerContext* context, const v1::ReconcileRequest* request,
                         v1::ReconcileResponse* response) override;
  grpc::Status DrillDown(grpc::ServerContext* context, const v1::DrillDownRequest* request,
                         v1::DrillDownResponse* response) override;
  grpc::Status ReconcileHour(grpc::ServerContext* context, const v1::ReconcileHourRequest* request,
                             v1::ReconcileHourResponse* response) override;
  grpc::Status GetFloat(grpc::ServerContext* context, const v1::GetFloatRequest* request,
                        v1::GetFloatResponse* response) override;
  grpc::Status RecordReserve(grpc::ServerContext* context, const v1::RecordReserveRequest* request,
                             v1::RecordReserveResponse* response) override;
  grpc::Status ListCellTransactions(grpc::ServerContext* context,
                                    const v1::ListCellTransactionsRequest* request,
                                    v1::ListCellTransactionsResponse* response) override;
  grpc::Status GetRules(grpc::ServerContext* context, const v1::GetRulesRequest* request,
                        v1::GetRulesResponse* response) override;
  grpc::Status ScheduleRules(grpc::ServerContext* context, const v1::ScheduleRulesRequest* request,
                             v1::ScheduleRulesResponse* response) override;
  grpc::Status TransferFloat(grpc::ServerContext* context, const v1::TransferFloatRequest* request,
                             v1::TransferFloatResponse* response) override;

 private:
  // Authenticates, runs `call`, moves its result into `response`, counts, converts.
  template <typename Request, typename Response, typename Call>
  grpc::Status Handle(const char* rpc, grpc::ServerContext* context, const Request& request,
                      Response* response, Call call);

  const SettlementApi* const api_;
  const std::shared_ptr<const server::Authenticator> authenticator_;
  SettlementMetrics* const metrics_;
};

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_SERVICE_H_
