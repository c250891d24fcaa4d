#include "services/card_registry/card_registry_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/server/grpc_server.h"
#include "libs/server/tenant.h"
#include "services/card_registry/card_registry_keys.h"

namespace tongka::card_registry {

absl::StatusOr<Caller> CallerOf(const server::Authenticator& authenticator,
                                const grpc::ServerContext& context) {
  absl::StatusOr<v1::Tenant> tenant = authenticator.TenantFromContext(context);
  if (!tenant.ok()) return tenant.status();
  Caller caller{.tenant = *std::move(tenant)};
  if (!server::IsPlatform(caller.tenant, kServiceName)) return caller;
  caller.via_peer = true;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kOnBehalfOfHeader);
  if (it == metadata.end()) return caller;
  absl::StatusOr<v1::Tenant> on_behalf_of =
      server::ParseTenantName(absl::string_view(it->second.data(), it->second.size()));
  if (!on_behalf_of.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOnBehalfOfHeader, ": ", on_behalf_of.status().message()));
  }
  caller.tenant = *std::move(on_behalf_of);
  return caller;
}

void CountRpc(CardRegistryMetrics& metrics, const char* rpc, const absl::Status& status,
              absl::Time started) {
  metrics.requests.WithLabels({rpc, absl::AsciiStrToLower(absl::StatusCodeToString(status.code()))})
      .Increment();
  metrics.request_seconds.WithLabels({rpc}).Observe(absl::ToDoubleSeconds(absl::Now() - started));
}

#define TONGKA_CARD_REGISTRY_RPC(Rpc, Request, Response)                                      \
  grpc::Status CardRegistryService::Rpc(grpc::ServerContext* context, const Request* request, \
                                        Response* response) {                                 \
    return HandleRpc(                                                                         \
        *authenticator_, *metrics_, #Rpc, context, *request, response,                        \
        [this](const Caller& caller, const Request& r) { return api_->Rpc(caller, r); });     \
  }

TONGKA_CARD_REGISTRY_RPC(IssueCard, v1::IssueCardRequest, v1::CardCommandResponse)
TONGKA_CARD_REGISTRY_RPC(IssueCards, v1::IssueCardsRequest, v1::IssueCardsResponse)
TONGKA_CARD_REGISTRY_RPC(ReportLost, v1::CardStatusRequest, v1::CardCommandResponse)
TONGKA_CARD_REGISTRY_RPC(BlockCard, v1::CardStatusRequest, v1::CardCommandResponse)
TONGKA_CARD_REGISTRY_RPC(UnblockCard, v1::CardStatusRequest, v1::CardCommandResponse)
TONGKA_CARD_REGISTRY_RPC(CloseCard, v1::CloseCardRequest, v1::CardCommandResponse)
TONGKA_CARD_REGISTRY_RPC(ReplaceCard, v1::ReplaceCardRequest, v1::CardCommandResponse)
TONGKA_CARD_REGISTRY_RPC(LinkVirtualCard, v1::LinkVirtualCardRequest, v1::CardCommandResponse)
TONGKA_CARD_REGISTRY_RPC(GetIssuerBalances, v1::GetIssuerBalancesRequest,
                         v1::GetIssuerBalancesResponse)
TONGKA_CARD_REGISTRY_RPC(GetCard, v1::GetCardRequest, v1::GetCardResponse)
TONGKA_CARD_REGISTRY_RPC(FindCardsByHolder, v1::FindCardsByHolderRequest,
                         v1::FindCardsByHolderResponse)
TONGKA_CARD_REGISTRY_RPC(GetHotlist, v1::GetHotlistRequest, v1::GetHotlistResponse)
TONGKA_CARD_REGISTRY_RPC(GetHotlistDelta, v1::GetHotlistDeltaRequest, v1::GetHotlistDeltaResponse)

#undef TONGKA_CARD_REGISTRY_RPC

absl::Status CardRegistryService::Watch(grpc::ServerContext* context, const Caller& caller,
                                        v1::GetHotlistDeltaRequest request,
                                        grpc::ServerWriter<v1::GetHotlistDeltaResponse>* writer) {
  while (!context->IsCancelled()) {
    absl::StatusOr<v1::GetHotlistDeltaResponse> delta = api_->GetHotlistDelta(caller, request);
    if (!delta.ok()) return delta.status();
    if (delta->changes_size() > 0) {
      if (!writer->Write(*delta)) return absl::CancelledError("the watcher went away");
      const absl::Time sent = absl::Now();
      for (const v1::HotlistEntry& change : delta->changes()) {
        std::optional<absl::Time> recorded =
            api_->HotlistChangeRecordedAt(change.partition(), change.seq(), change.card_id());
        if (recorded.has_value()) {
          metrics_->hotlist_propagation_seconds.Observe(absl::ToDoubleSeconds(sent - *recorded));
        }
      }
    }
    *request.mutable_since() = delta->version();
    // More is waiting: go on at once; otherwise poll again soon (or end on shutdown).
    if (!delta->more() && api_->WaitForStop(kWatchPoll)) {
      return absl::UnavailableError("the card registry is shutting down; watch again");
    }
  }
  return absl::CancelledError("the watcher cancelled");
}

grpc::Status CardRegistryService::WatchHotlist(
    grpc::ServerContext* context, const v1::GetHotlistDeltaRequest* request,
    grpc::ServerWriter<v1::GetHotlistDeltaResponse>* writer) {
  const absl::Time started = absl::Now();
  absl::StatusOr<Caller> caller = CallerOf(*authenticator_, *context);
  absl::Status status = caller.ok() ? Watch(context, *caller, *request, writer) : caller.status();
  CountRpc(*metrics_, "WatchHotlist", status, started);
  return server::ToGrpcStatus(status);
}

}  // namespace tongka::card_registry
