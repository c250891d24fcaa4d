// CardRegistryService: the gRPC handlers of tongka.v1.CardRegistryService
// (proto/card_registry.proto). Thin: who is calling (the authenticator), then CardRegistryApi,
// then the status and the metrics. What each RPC does, who may call it and its errors:
// card_registry_api.h and the proto.
//
// A call from platform:card_registry is another replica: it is answered from this replica's own
// partitions, on behalf of the tenant named in its "tongka-on-behalf-of" metadata (the replica
// that forwarded it authenticated that tenant). The header is ignored from anyone else.
//
// WatchHotlist polls the store (and the peers) for hotlist changes after the caller's version
// every kWatchPoll and writes each non-empty delta; it ends when the client cancels, a write
// fails, or the api is stopped (the app stops it before the gRPC server).
//
// Ownership: borrows the api and the metrics; shares the authenticator.
// Thread-safety: handlers run concurrently on gRPC's threads; CardRegistryApi is thread-safe.
//
// Example:
//   CardRegistryService service(&api, authenticator, &metrics);
//   auto server = server::GrpcServer::Start(config.grpc, authenticator, {&service});
#ifndef TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_SERVICE_H_
#define TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_SERVICE_H_

#include <memory>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/server/authenticator.h"
#include "libs/server/grpc_server.h"
#include "proto/card_registry.grpc.pb.h"
#include "services/card_registry/card_registry_api.h"
#include "services/card_registry/card_registry_metrics.h"

namespace tongka::card_registry {

// The metadata key a replica forwards the caller's tenant name in.
inline constexpr char kOnBehalfOfHeader[] = "tongka-on-behalf-of";

// Who calls: the authenticated tenant, or for a call from another replica
// (platform:card_registry) the tenant its kOnBehalfOfHeader names. Shared by the registry's
// gRPC services (CardRegistryService, MemberService).
absl::StatusOr<Caller> CallerOf(const server::Authenticator& authenticator,
                                const grpc::ServerContext& context);

// Counts one call of `rpc` by its status code, and its latency since `started`.
void CountRpc(CardRegistryMetrics& metrics, const char* rpc, const absl::Status& status,
              absl::Time started);

// One unary handler: authenticates, runs `call` (Caller, Request) -> StatusOr<Response>, moves
// its result into `response`, counts, converts the status.
template <typename Request, typename Response, typename Call>
grpc::Status HandleRpc(const server::Authenticator& authenticator, CardRegistryMetrics& metrics,
                       const char* rpc, grpc::ServerContext* context, const Request& request,
                       Response* response, Call call) {
  const absl::Time started = absl::Now();
  absl::Status status;
  absl::StatusOr<Caller> caller = CallerOf(authenticator, *context);
  if (!caller.ok()) {
    status = caller.status();
  } else {
    auto result = call(*caller, request);
    status = result.status();
    if (result.ok()) *response = std::move(*result);
  }
  CountRpc(metrics, rpc, status, started);
  return server::ToGrpcStatus(status);
}

class CardRegistryService final : public v1::CardRegistryService::Service {
 public:
  static constexpr absl::Duration kWatchPoll = absl::Milliseconds(50);

  CardRegistryService(const CardRegistryApi* api,
                      std::shared_ptr<const server::Authenticator> authenticator,
                      CardRegistryMetrics* metrics)
      : api_(api), authenticator_(std::move(authenticator)), metrics_(metrics) {}

  grpc::Status IssueCard(grpc::ServerContext* context, const v1::IssueCardRequest* request,
                         v1::CardCommandResponse* response) override;
  grpc::Status IssueCards(grpc::ServerContext* context, const v1::IssueCardsRequest* request,
                          v1::IssueCardsResponse* response) override;
  grpc::Status ReportLost(grpc::ServerContext* context, const v1::CardStatusRequest* request,
                          v1::CardCommandResponse* response) override;
  grpc::Status BlockCard(grpc::ServerContext* context, const v1::CardStatusRequest* request,
                         v1::CardCommandResponse* response) override;
  grpc::Status UnblockCard(grpc::ServerContext* context, const v1::CardStatusRequest* request,
                           v1::CardCommandResponse* response) override;
  grpc::Status CloseCard(grpc::ServerContext* context, const v1::CloseCardRequest* request,
                         v1::CardCommandResponse* response) override;
  grpc::Status ReplaceCard(grpc::ServerContext* context, const v1::ReplaceCardRequest* request,
                           v1::CardCommandResponse* response) override;
  grpc::Status LinkVirtualCard(grpc::ServerContext* context,
                               const v1::LinkVirtualCardRequest* request,
                               v1::CardCommandResponse* response) override;
  grpc::Status GetIssuerBalances(grpc::ServerContext* context,
                                 const v1::GetIssuerBalancesRequest* request,
                                 v1::GetIssuerBalancesResponse* response) override;
  grpc::Status GetCard(grpc::ServerContext* context, const v1::GetCardRequest* request,
                       v1::GetCardResponse* response) override;
  grpc::Status FindCardsByHolder(grpc::ServerContext* context,
                                 const v1::FindCardsByHolderRequest* request,
                                 v1::FindCardsByHolderResponse* response) override;
  grpc::Status GetHotlist(grpc::ServerContext* context, const v1::GetHotlistRequest* request,
                          v1::GetHotlistResponse* response) override;
  grpc::Status GetHotlistDelta(grpc::ServerContext* context,
                               const v1::GetHotlistDeltaRequest* request,
                               v1::GetHotlistDeltaResponse* response) override;
  grpc::Status WatchHotlist(grpc::ServerContext* context, const v1::GetHotlistDeltaRequest* request,
                            grpc::ServerWriter<v1::GetHotlistDeltaResponse>* writer) override;

 private:
  absl::Status Watch(grpc::ServerContext* context, const Caller& caller,
                     v1::GetHotlistDeltaRequest request,
                     grpc::ServerWriter<v1::GetHotlistDeltaResponse>* writer);

  const CardRegistryApi* const api_;
  const std::shared_ptr<const server::Authenticator> authenticator_;
  CardRegistryMetrics* const metrics_;
};

}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_SERVICE_H_
