#include "services/card_registry/member_api.h"

#include <glog/logging.h>

#include <memory>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/server/tenant.h"
#include "libs/txn/cities.h"
#include "services/card_registry/card_registry_keys.h"

namespace tongka::card_registry {
namespace {

constexpr size_t kParticipantSizeMax = 64;
constexpr absl::Duration kApplyPoll = absl::Milliseconds(2);

absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
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

// The participant name a tenant's own record is under; empty for tenants without one.
std::string OwnParticipant(const v1::Tenant& tenant) {
  if (tenant.kind() == v1::TENANT_KIND_CITY_OPERATOR) return CityParticipant(tenant.city());
  if (tenant.kind() == v1::TENANT_KIND_PARTNER) return server::TenantName(tenant);
  return "";
}

}  // namespace

v1::Member MemberOf(const std::string& participant, const MemberRecord& record) {
  v1::Member member;
  member.set_participant(participant);
  member.set_status(record.status());
  member.set_accepts_all(record.accepts_all());
  *member.mutable_accepted_issuer_cities() = record.accepted_issuer_cities();
  member.set_version(record.version());
  member.set_successor_city(record.successor_city());
  return member;
}

MemberApi::MemberApi(MemberApiDeps deps) : deps_(std::move(deps)) {
  CHECK(deps_.store != nullptr);
  CHECK(deps_.producer != nullptr);
  CHECK(deps_.replica_index != 0 || deps_.members_next_offset != nullptr);
  CHECK(deps_.replica_index == 0 || deps_.peer_forward != nullptr);
}

template <typename Response>
absl::StatusOr<Response> MemberApi::Forward(const Caller& caller, const char* rpc,
                                            const google::protobuf::Message& request) const {
  CHECK_NE(deps_.replica_index, 0);
  if (caller.via_peer) {
    return absl::FailedPreconditionError(absl::StrCat("not_owner: replica 0 owns ", kMembersTopic,
                                                      ", this is replica ", deps_.replica_index));
  }
  Response response;
  absl::Status status = deps_.peer_forward(0, rpc, caller.tenant, request, &response);
  if (!status.ok()) {
    if (status.code() == absl::StatusCode::kUnavailable ||
        status.code() == absl::StatusCode::kDeadlineExceeded) {
      return absl::Status(status.code(), absl::StrCat("replica 0 (owner of ", kMembersTopic,
                                                      ") did not answer: ", status.message()));
    }
    return status;
  }
  return response;
}

absl::StatusOr<v1::Event> MemberApi::Envelope(const Caller& caller, absl::string_view verb,
                                              const std::string& request_id,
                                              const std::string& reason,
                                              const std::string& actor) const {
  if (absl::Status ok = CheckRequestId(request_id); !ok.ok()) return ok;
  if (caller.tenant.kind() != v1::TENANT_KIND_MINISTRY) {
    return absl::PermissionDeniedError(
        absl::StrCat(server::TenantName(caller.tenant), " may not ", verb, ": the ministry only"));
  }
  if (reason.size() > kMemberReasonSizeMax) {
    return Invalid("reason", absl::StrCat("at most ", kMemberReasonSizeMax, " bytes"));
  }
  if (actor.size() > kMemberActorSizeMax) {
    return Invalid("actor", absl::StrCat("at most ", kMemberActorSizeMax, " bytes"));
  }
  v1::Event event;
  event.set_event_id(absl::StrCat("cmd/", server::TenantName(caller.tenant), "/", request_id));
  const int64_t now_us = absl::ToUnixMicros(deps_.now());
  event.set_occurred_at_us(now_us);
  event.set_recorded_at_us(now_us);
  *event.mutable_source() = caller.tenant;
  return event;
}

absl::StatusOr<v1::MemberCommandResponse> MemberApi::Submit(const std::string& participant,
                                                            const v1::Event& event) const {
  struct Delivery {
    absl::Mutex mu;
    std::optional<event_log::DeliveryResult> result ABSL_GUARDED_BY(mu);
  };
  // Shared with the delivery callback, which may outlive a call that timed out.
  auto delivery = std::make_shared<Delivery>();
  const absl::Time deadline = absl::Now() + deps_.command_timeout;
  absl::Status produced =
      deps_.producer->Produce(kMembersTopic, participant, event.SerializeAsString(),
                              [delivery](const event_log::DeliveryResult& result) {
                                absl::MutexLock lock(&delivery->mu);
                                delivery->result = result;
                              });
  if (!produced.ok()) {
    return absl::UnavailableError(absl::StrCat("request ", event.event_id(), " was not written to ",
                                               kMembersTopic, ": ", produced.message()));
  }
  int64_t offset = -1;
  {
    absl::MutexLock lock(&delivery->mu);
    delivery->mu.AwaitWithDeadline(
        absl::Condition(
            +[](std::optional<event_log::DeliveryResult>* result) { return result->has_value(); },
            &delivery->result),
        deadline);
    if (!delivery->result.has_value()) {
      return absl::DeadlineExceededError(
          absl::StrCat("request ", event.event_id(), " not confirmed written to ", kMembersTopic,
                       " in time; retry with the same request_id for the decision"));
    }
    if (!delivery->result->status.ok()) {
      return absl::UnavailableError(absl::StrCat("request ", event.event_id(),
                                                 " was not written to ", kMembersTopic, ": ",
                                                 delivery->result->status.message()));
    }
    offset = delivery->result->offset;
  }
  // Read-your-writes: the member loop has applied the partition past the command.
  while (deps_.members_next_offset() <= offset) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("request ", event.event_id(), " is in the log (", kMembersTopic, "/0@",
                       offset, ") but not decided yet; retry with the same request_id"));
    }
    absl::SleepFor(kApplyPoll);
  }
  absl::StatusOr<std::optional<MemberOutcome>> outcome =
      ReadMemberOutcome(state_store::ViewOf(*deps_.store), event.event_id());
  if (!outcome.ok()) return outcome.status();
  if (!outcome->has_value()) {
    return absl::InternalError(
        absl::StrCat("request ", event.event_id(), " applied without a decision"));
  }
  const MemberOutcome& decided = **outcome;
  v1::MemberCommandResponse response;
  response.set_accepted(decided.accepted());
  response.set_rule(decided.rule());
  response.set_field(decided.field());
  response.set_message(decided.message());
  if (decided.has_member()) *response.mutable_member() = MemberOf(participant, decided.member());
  return response;
}

absl::StatusOr<v1::MemberCommandResponse> MemberApi::SetMemberStatus(
    const Caller& caller, const v1::SetMemberStatusRequest& request) const {
  // Only replica 0 holds the member table: it checks and answers every member call.
  if (deps_.replica_index != 0)
    return Forward<v1::MemberCommandResponse>(caller, "SetMemberStatus", request);
  absl::StatusOr<v1::Event> event = Envelope(
      caller, "change a member's status", request.request_id(), request.reason(), request.actor());
  if (!event.ok()) return event.status();
  if (request.participant().empty() || request.participant().size() > kParticipantSizeMax) {
    return Invalid("participant", absl::StrCat("must be 1..", kParticipantSizeMax, " bytes"));
  }
  v1::MemberStatusChangeRequested* body = event->mutable_member_status_change_requested();
  body->set_request_id(request.request_id());
  body->set_participant(request.participant());
  body->set_new_status(request.status());
  body->set_reason(request.reason());
  body->set_actor(request.actor());
  return Submit(request.participant(), *event);
}

absl::StatusOr<v1::MemberCommandResponse> MemberApi::SetAcceptedIssuers(
    const Caller& caller, const v1::SetAcceptedIssuersRequest& request) const {
  // Only replica 0 holds the member table: it checks and answers every member call.
  if (deps_.replica_index != 0)
    return Forward<v1::MemberCommandResponse>(caller, "SetAcceptedIssuers", request);
  absl::StatusOr<v1::Event> event = Envelope(caller, "set accepted issuers", request.request_id(),
                                             request.reason(), request.actor());
  if (!event.ok()) return event.status();
  if (request.issuer_cities_size() > kIssuerCitiesRequestMax) {
    return Invalid("issuer_cities", absl::StrCat("at most ", kIssuerCitiesRequestMax));
  }
  v1::AcceptedIssuersChangeRequested* body = event->mutable_accepted_issuers_change_requested();
  body->set_request_id(request.request_id());
  body->set_acquirer_city(request.acquirer_city());
  body->set_accept_all(request.accept_all());
  *body->mutable_issuer_cities() = request.issuer_cities();
  body->set_reason(request.reason());
  body->set_actor(request.actor());
  return Submit(CityParticipant(request.acquirer_city()), *event);
}

absl::StatusOr<v1::MemberCommandResponse> MemberApi::TransferIssuer(
    const Caller& caller, const v1::TransferIssuerRequest& request) const {
  if (deps_.replica_index != 0)
    return Forward<v1::MemberCommandResponse>(caller, "TransferIssuer", request);
  absl::StatusOr<v1::Event> event =
      Envelope(caller, "transfer an issuer's cards", request.request_id(), request.reason(),
               request.actor());
  if (!event.ok()) return event.status();
  v1::IssuerTransferRequested* body = event->mutable_issuer_transfer_requested();
  body->set_request_id(request.request_id());
  body->set_from_city(request.from_city());
  body->set_to_city(request.to_city());
  body->set_reason(request.reason());
  body->set_actor(request.actor());
  return Submit(CityParticipant(request.from_city()), *event);
}

absl::StatusOr<v1::GetMemberResponse> MemberApi::GetMember(
    const Caller& caller, const v1::GetMemberRequest& request) const {
  // Only replica 0 holds the member table: it checks and answers every member call.
  if (deps_.replica_index != 0) return Forward<v1::GetMemberResponse>(caller, "GetMember", request);
  const std::string own = OwnParticipant(caller.tenant);
  if (!server::CanReadAll(caller.tenant) && own.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(server::TenantName(caller.tenant),
                     " may not read members (cities, partners and the ministry)"));
  }
  absl::StatusOr<Participant> parsed = ParseParticipant(request.participant());
  if (!parsed.ok()) return Invalid("participant", parsed.status().message());
  if (!server::CanReadAll(caller.tenant) && request.participant() != own) {
    return absl::PermissionDeniedError(absl::StrCat(server::TenantName(caller.tenant),
                                                    " may read its own member record only, not ",
                                                    request.participant()));
  }
  absl::StatusOr<MemberRecord> record =
      ReadMember(state_store::ViewOf(*deps_.store), request.participant());
  if (!record.ok()) return record.status();
  v1::GetMemberResponse response;
  *response.mutable_member() = MemberOf(request.participant(), *record);
  return response;
}

absl::StatusOr<v1::ListMembersResponse> MemberApi::ListMembers(
    const Caller& caller, const v1::ListMembersRequest& request) const {
  // Only replica 0 holds the member table: it checks and answers every member call.
  if (deps_.replica_index != 0)
    return Forward<v1::ListMembersResponse>(caller, "ListMembers", request);
  const std::string own = OwnParticipant(caller.tenant);
  const bool all = server::CanReadAll(caller.tenant);
  if (!all && own.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat(server::TenantName(caller.tenant),
                     " may not read members (cities, partners and the ministry)"));
  }
  const state_store::StateView view = state_store::ViewOf(*deps_.store);
  v1::ListMembersResponse response;
  if (!all) {
    // A city or a partner: its own record, genesis or stored.
    absl::StatusOr<MemberRecord> record = ReadMember(view, own);
    if (!record.ok()) return record.status();
    *response.add_members() = MemberOf(own, *record);
    return response;
  }
  absl::StatusOr<std::map<std::string, MemberRecord>> recorded = ReadRecordedMembers(view);
  if (!recorded.ok()) return recorded.status();
  std::map<std::string, MemberRecord> members = *std::move(recorded);
  for (const txn::City& city : txn::MemberCities()) {
    Participant participant;
    participant.city = city.code;
    members.try_emplace(CityParticipant(city.code), GenesisRecord(participant));
  }
  for (const auto& [participant, record] : members) {
    *response.add_members() = MemberOf(participant, record);
  }
  return response;
}

}  // namespace tongka::card_registry
