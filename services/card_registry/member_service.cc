#include "services/card_registry/member_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/server/grpc_server.h"
#include "libs/server/tenant.h"
#include "services/card_registry/card_registry_keys.h"
#include "services/card_registry/card_registry_service.h"

namespace tongka::card_registry {

absl::StatusOr<Caller> MemberService::CallerOf(const grpc::ServerContext& context) const {
  absl::StatusOr<v1::Tenant> tenant = authenticator_->TenantFromContext(context);
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

template <typename Request, typename Response, typename Call>
grpc::Status MemberService::Handle(const char* rpc, grpc::ServerContext* context,
                                   const Request& request, Response* response, Call call) {
  const absl::Time started = absl::Now();
  absl::Status status;
  absl::StatusOr<Caller> caller = CallerOf(*context);
  if (!caller.ok()) {
    status = caller.status();
  } else {
    auto result = call(*caller, request);
    status = result.status();
    if (result.ok()) *response = std::move(*result);
  }
  metrics_->requests
      .WithLabels({rpc, absl::AsciiStrToLower(absl::StatusCodeToString(status.code()))})
      .Increment();
  metrics_->request_seconds.WithLabels({rpc}).Observe(absl::ToDoubleSeconds(absl::Now() - started));
  return server::ToGrpcStatus(status);
}

#define TONGKA_MEMBER_RPC(Rpc, Request, Response)                                         \
  grpc::Status MemberService::Rpc(grpc::ServerContext* context, const Request* request,   \
                                  Response* response) {                                   \
    return Handle(                                                                        \
        #Rpc, context, *request, response,                                                \
        [this](const Caller& caller, const Request& r) { return api_->Rpc(caller, r); }); \
  }

TONGKA_MEMBER_RPC(SetMemberStatus, v1::SetMemberStatusRequest, v1::MemberCommandResponse)
TONGKA_MEMBER_RPC(SetAcceptedIssuers, v1::SetAcceptedIssuersRequest, v1::MemberCommandResponse)
TONGKA_MEMBER_RPC(TransferIssuer, v1::TransferIssuerRequest, v1::MemberCommandResponse)
TONGKA_MEMBER_RPC(GetMember, v1::GetMemberRequest, v1::GetMemberResponse)
TONGKA_MEMBER_RPC(ListMembers, v1::ListMembersRequest, v1::ListMembersResponse)

#undef TONGKA_MEMBER_RPC

}  // namespace tongka::card_registry
