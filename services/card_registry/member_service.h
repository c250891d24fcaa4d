// MemberService: the gRPC handlers of tongka.v1.MemberRegistryService
// (proto/card_registry.proto). Thin: who is calling (the authenticator), then MemberApi, then the
// status and the metrics (tongka_card_registry_requests_total and _request_seconds, labelled by
// RPC like the card RPCs). What each RPC does, who may call it and its errors: member_api.h and
// the proto.
//
// A call from platform:card_registry is another replica: it is answered here on behalf of the
// tenant named in its "tongka-on-behalf-of" metadata (kOnBehalfOfHeader; the forwarding replica
// authenticated that tenant). The header is ignored from anyone else.
//
// Ownership: borrows the api and the metrics; shares the authenticator.
// Thread-safety: handlers run concurrently on gRPC's threads; MemberApi is thread-safe.
//
// Example:
//   MemberService members(&member_api, authenticator, &metrics);
//   runtime.ServeGrpc(config.grpc, authenticator, {&cards, &members});
#ifndef TONGKA_SERVICES_CARD_REGISTRY_MEMBER_SERVICE_H_
#define TONGKA_SERVICES_CARD_REGISTRY_MEMBER_SERVICE_H_

#include <memory>

#include "libs/server/authenticator.h"
#include "proto/card_registry.grpc.pb.h"
#include "services/card_registry/card_registry_metrics.h"
#include "services/card_registry/member_api.h"

namespace tongka::card_registry {

class MemberService final : public v1::MemberRegistryService::Service {
 public:
  MemberService(const MemberApi* api, std::shared_ptr<const server::Authenticator> authenticator,
                CardRegistryMetrics* metrics)
      : api_(api), authenticator_(std::move(authenticator)), metrics_(metrics) {}

  grpc::Status SetMemberStatus(grpc::ServerContext* context,
                               const v1::SetMemberStatusRequest* request,
                               v1::MemberCommandResponse* response) override;
  grpc::Status TransferIssuer(grpc::ServerContext* context,
                              const v1::TransferIssuerRequest* request,
                              v1::MemberCommandResponse* response) override;
  grpc::Status SetAcceptedIssuers(grpc::ServerContext* context,
                                  const v1::SetAcceptedIssuersRequest* request,
                                  v1::MemberCommandResponse* response) override;
  grpc::Status GetMember(grpc::ServerContext* context, const v1::GetMemberRequest* request,
                         v1::GetMemberResponse* response) override;
  grpc::Status ListMembers(grpc::ServerContext* context, const v1::ListMembersRequest* request,
                           v1::ListMembersResponse* response) override;

 private:
  const MemberApi* const api_;
  const std::shared_ptr<const server::Authenticator> authenticator_;
  CardRegistryMetrics* const metrics_;
};

}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_MEMBER_SERVICE_H_
