// MemberApi: what each RPC of tongka.v1.MemberRegistryService does, in domain terms, for one
// authenticated caller. The gRPC handlers (member_service.h) only authenticate, call this, count,
// and convert the status.
//
// Commands (SetMemberStatus, SetAcceptedIssuers, TransferIssuer): the ministry only
// (PERMISSION_DENIED for anyone else, before anything is written); request_id, reason, actor and
// the sizes are checked (INVALID_ARGUMENT "<field>: <rule>"). The command event
// ("cmd/ministry/<request_id>", source the ministry, recorded_at now) is produced to tongka.members
// keyed by the participant (acks=all); the call waits until the member loop has applied the
// partition past that offset and answers with the ledger's stored outcome (read-your-writes). A
// refusal the ledger decided (unknown_city, status_transition, list_too_long, issuer_not_member,
// ...) is an OK call with accepted = false, its rule and field. A retried request id gets the first
// decision. Member request ids are the ministry's idempotency keys among member commands
// (tongka.members); card commands keep theirs.
//
// Reads (GetMember, ListMembers): the ministry sees every participant; a city operator or a
// partner only its own record (GetMember of another: PERMISSION_DENIED; ListMembers: its own
// record only); platform services nothing.
//
// Replicas: only replica 0 (the owner of tongka.members' one partition) applies the member log
// and holds the table; every member call on another replica is forwarded to it (PeerForward, on
// behalf of the caller). A call that came from a peer is never forwarded again.
//
// Thread-safety: all methods are thread-safe (the store, the producer and the peers are).
#ifndef TONGKA_SERVICES_CARD_REGISTRY_MEMBER_API_H_
#define TONGKA_SERVICES_CARD_REGISTRY_MEMBER_API_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/event_log/producer.h"
#include "libs/state_store/state_store.h"
#include "proto/card_registry.pb.h"
#include "services/card_registry/card_registry_api.h"
#include "services/card_registry/member_ledger.h"

namespace tongka::card_registry {

struct MemberApiDeps {
  const state_store::StateStore* store = nullptr;
  event_log::Producer* producer = nullptr;
  // The next offset the member loop will apply on tongka.members partition 0 (replica 0 only).
  std::function<int64_t()> members_next_offset;
  int32_t replica_index = 0;
  int32_t replica_count = 1;
  PeerForward peer_forward;  // required when replica_index != 0: calls replica 0
  absl::Duration command_timeout = absl::Seconds(30);
  std::function<absl::Time()> now = absl::Now;
};

class MemberApi {
 public:
  // At most this many issuers in a request: beyond it the call is INVALID_ARGUMENT before
  // anything is written (the ledger refuses more than the member cities as list_too_long).
  static constexpr int kIssuerCitiesRequestMax = 1000;

  explicit MemberApi(MemberApiDeps deps);

  absl::StatusOr<v1::MemberCommandResponse> SetMemberStatus(
      const Caller& caller, const v1::SetMemberStatusRequest& request) const;
  absl::StatusOr<v1::MemberCommandResponse> SetAcceptedIssuers(
      const Caller& caller, const v1::SetAcceptedIssuersRequest& request) const;
  // The failed-issuer playbook (member_ledger.h): IssuerTransferRequested keyed by the from city.
  absl::StatusOr<v1::MemberCommandResponse> TransferIssuer(
      const Caller& caller, const v1::TransferIssuerRequest& request) const;
  absl::StatusOr<v1::GetMemberResponse> GetMember(const Caller& caller,
                                                  const v1::GetMemberRequest& request) const;
  absl::StatusOr<v1::ListMembersResponse> ListMembers(const Caller& caller,
                                                      const v1::ListMembersRequest& request) const;

 private:
  // Forwards `request` to replica 0 (this is another replica), or FAILED_PRECONDITION when a
  // peer sent it here.
  template <typename Response>
  absl::StatusOr<Response> Forward(const Caller& caller, const char* rpc,
                                   const google::protobuf::Message& request) const;
  // Writes `event` keyed by `participant`, waits for its decision, reads its outcome.
  absl::StatusOr<v1::MemberCommandResponse> Submit(const std::string& participant,
                                                   const v1::Event& event) const;
  // The envelope of a member command after the checks both share.
  absl::StatusOr<v1::Event> Envelope(const Caller& caller, absl::string_view verb,
                                     const std::string& request_id, const std::string& reason,
                                     const std::string& actor) const;

  const MemberApiDeps deps_;
};

// The API's view of a stored (or genesis) record.
v1::Member MemberOf(const std::string& participant, const MemberRecord& record);

}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_MEMBER_API_H_
