#include "services/card_registry/member_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/server/grpc_server.h"
#include "libs/server/tenant.h"
#include "services/card_registry/card_registry_keys.h"
#include "services/card_registry/card_registry_service.h"

namespace tongka::card_registry {

#define TONGKA_MEMBER_RPC(Rpc, Request, Response)                                         \
  grpc::Status MemberService::Rpc(grpc::ServerContext* context, const Request* request,   \
                                  Response* response) {                                   \
    return HandleRpc(                                                                     \
        *authenticator_, *metrics_, #Rpc, context, *request, response,                    \
        [this](const Caller& caller, const Request& r) { return api_->Rpc(caller, r); }); \
  }

TONGKA_MEMBER_RPC(SetMemberStatus, v1::SetMemberStatusRequest, v1::MemberCommandResponse)
TONGKA_MEMBER_RPC(SetAcceptedIssuers, v1::SetAcceptedIssuersRequest, v1::MemberCommandResponse)
TONGKA_MEMBER_RPC(TransferIssuer, v1::TransferIssuerRequest, v1::MemberCommandResponse)
TONGKA_MEMBER_RPC(GetMember, v1::GetMemberRequest, v1::GetMemberResponse)
TONGKA_MEMBER_RPC(ListMembers, v1::ListMembersRequest, v1::ListMembersResponse)

#undef TONGKA_MEMBER_RPC

}  // namespace tongka::card_registry
