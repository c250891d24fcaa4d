#include "services/card_registry/member_ledger.h"

#include <glog/logging.h>

#include <algorithm>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "libs/event_log/ownership.h"
#include "libs/server/tenant.h"
#include "libs/txn/cities.h"
#include "services/card_registry/card_registry_keys.h"

namespace tongka::card_registry {
namespace {

using internal::AddToCounter;
using state_store::StateBatch;
using state_store::StateView;
using state_store::ViewOf;

MemberOutcome Refused(absl::string_view participant, absl::string_view rule,
                      absl::string_view field, std::string message) {
  MemberOutcome outcome;
  outcome.set_participant(std::string(participant));
  outcome.set_rule(std::string(rule));
  outcome.set_field(std::string(field));
  outcome.set_message(std::move(message));
  return outcome;
}

bool IsOwnDecision(const v1::Tenant& source) {
  return source.kind() == v1::TENANT_KIND_PLATFORM && source.service() == kServiceName;
}

// ACTIVE, SUSPENDED, EXITING: the name without its enum prefix, for messages.
absl::string_view ShortName(v1::MemberStatus status) {
  absl::string_view name = v1::MemberStatus_Name(status);
  absl::ConsumePrefix(&name, "MEMBER_STATUS_");
  return name;
}

bool IsSettableStatus(v1::MemberStatus status) {
  return status == v1::MEMBER_STATUS_ACTIVE || status == v1::MEMBER_STATUS_SUSPENDED ||
         status == v1::MEMBER_STATUS_EXITING;
}

// The stored record, checked as it is read (the pair of PutMember's check).
absl::StatusOr<std::optional<MemberRecord>> ReadStored(const StateView& view,
                                                       absl::string_view participant) {
  absl::StatusOr<std::optional<MemberRecord>> stored =
      state_store::ReadMessage<MemberRecord>(view, MemberKey(participant));
  if (stored.ok() && stored->has_value() &&
      (!IsSettableStatus((*stored)->status()) || (*stored)->version() == 0)) {
    return absl::InternalError(
        absl::StrCat("member ", participant, " stored without a status or version"));
  }
  return stored;
}

void PutMember(absl::string_view participant, const MemberRecord& member, StateBatch& batch) {
  CHECK(IsSettableStatus(member.status())) << participant;
  CHECK_GT(member.version(), 0u) << participant;
  CHECK(std::is_sorted(member.accepted_issuer_cities().begin(),
                       member.accepted_issuer_cities().end()))
      << participant;
  batch.Put(MemberKey(participant), member.SerializeAsString());
}

void FillChanged(absl::string_view participant, const MemberRecord& member,
                 v1::MemberChanged* changed) {
  changed->set_participant(std::string(participant));
  changed->set_status(member.status());
  changed->set_accepts_all(member.accepts_all());
  *changed->mutable_accepted_issuer_cities() = member.accepted_issuer_cities();
  changed->set_version(member.version());
  changed->set_successor_city(member.successor_city());
}

}  // namespace

absl::StatusOr<Participant> ParseParticipant(absl::string_view name) {
  absl::StatusOr<v1::Tenant> tenant = server::ParseTenantName(name);
  if (!tenant.ok() || (tenant->kind() != v1::TENANT_KIND_CITY_OPERATOR &&
                       tenant->kind() != v1::TENANT_KIND_PARTNER)) {
    return absl::InvalidArgumentError(
        absl::StrCat("participant_format: a participant is city:<6 digits> or partner:<id>, got \"",
                     absl::CHexEscape(name.substr(0, 64)), "\""));
  }
  Participant participant;
  if (tenant->kind() == v1::TENANT_KIND_PARTNER) {
    participant.partner_id = tenant->partner_id();
    return participant;
  }
  if (txn::FindCity(tenant->city()) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown_city: ", tenant->city(), " is not a member city"));
  }
  participant.city = tenant->city();
  return participant;
}

std::string CityParticipant(uint32_t city) { return absl::StrFormat("city:%06u", city); }

MemberRecord GenesisRecord(const Participant& participant) {
  MemberRecord record;
  record.set_status(v1::MEMBER_STATUS_ACTIVE);
  record.set_accepts_all(participant.is_city());
  return record;
}

absl::Status MemberLedger::Apply(const event_log::Record& record, StateBatch& batch) {
  if (record.topic != kMembersTopic) {
    return absl::FailedPreconditionError(absl::StrCat(
        "member ledger applied to topic ", record.topic, ": it reads ", kMembersTopic, " only"));
  }
  v1::Event event;
  if (!event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size()))) {
    return AddToCounter(batch, internal::kMemberUnusableKey, 1);
  }
  switch (event.body_case()) {
    case v1::Event::kMemberStatusChangeRequested:
    case v1::Event::kAcceptedIssuersChangeRequested:
    case v1::Event::kIssuerTransferRequested:
      return ApplyCommand(record, event, batch);
    case v1::Event::kMemberChanged:
    case v1::Event::kCommandRejected:
      // Our own decisions: the state already has them.
      if (IsOwnDecision(event.source())) return absl::OkStatus();
      return AddToCounter(batch, internal::kMemberUnusableKey, 1);
    default:
      return AddToCounter(batch, internal::kMemberUnusableKey, 1);
  }
}

absl::Status MemberLedger::ApplyCommand(const event_log::Record& record, const v1::Event& event,
                                        StateBatch& batch) {
  if (event.event_id().empty()) return AddToCounter(batch, internal::kMemberUnusableKey, 1);
  const std::string outcome_key = MemberOutcomeKey(event.event_id());
  absl::StatusOr<std::optional<std::string>> seen = batch.Get(outcome_key);
  if (!seen.ok()) return seen.status();
  if (seen->has_value()) return AddToCounter(batch, internal::kMemberDuplicateCommandsKey, 1);

  v1::Event out;
  v1::MemberChanged changed;
  absl::StatusOr<MemberOutcome> outcome;
  absl::string_view kind;
  std::string request_id;
  if (event.has_member_status_change_requested()) {
    kind = "status";
    request_id = event.member_status_change_requested().request_id();
    outcome = DecideStatus(record, event, batch, &changed);
  } else if (event.has_issuer_transfer_requested()) {
    kind = "transfer";
    request_id = event.issuer_transfer_requested().request_id();
    outcome = DecideTransfer(record, event, batch, &changed);
  } else {
    kind = "accepted_issuers";
    request_id = event.accepted_issuers_change_requested().request_id();
    outcome = DecideAcceptedIssuers(record, event, batch, &changed);
  }
  if (!outcome.ok()) return outcome.status();
  batch.Put(outcome_key, outcome->SerializeAsString());

  if (outcome->accepted()) {
    changed.set_request_id(request_id);
    changed.set_command_event_id(event.event_id());
    *out.mutable_member_changed() = std::move(changed);
    if (absl::Status s = AddToCounter(batch, internal::MemberAcceptedKey(kind), 1); !s.ok()) {
      return s;
    }
  } else {
    v1::CommandRejected* rejected = out.mutable_command_rejected();
    rejected->set_request_id(request_id);
    rejected->set_field(outcome->field());
    rejected->set_rule(outcome->rule());
    rejected->set_message(outcome->message());
    rejected->set_command_event_id(event.event_id());
    if (absl::Status s = AddToCounter(batch, internal::MemberRefusedKey(outcome->rule()), 1);
        !s.ok()) {
      return s;
    }
  }
  out.set_event_id(state_store::DerivedEventId(kServiceName, record, "decision"));
  out.set_occurred_at_us(event.occurred_at_us());
  out.set_recorded_at_us(event.recorded_at_us());
  out.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
  out.mutable_source()->set_service(kServiceName);
  batch.AppendOutbox(kMembersTopic, std::string(record.key), out.SerializeAsString());
  if (outcome->accepted() && event.has_issuer_transfer_requested()) {
    // Every card partition records the transfer in its own order.
    const v1::IssuerTransferRequested& request = event.issuer_transfer_requested();
    for (int32_t partition = 0; partition < cards_partition_count_; ++partition) {
      v1::Event copy;
      copy.set_event_id(
          state_store::DerivedEventId(kServiceName, record, absl::StrCat("transfer/", partition)));
      copy.set_occurred_at_us(event.occurred_at_us());
      copy.set_recorded_at_us(event.recorded_at_us());
      copy.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
      copy.mutable_source()->set_service(kServiceName);
      v1::IssuerTransferred* transferred = copy.mutable_issuer_transferred();
      transferred->set_from_city(request.from_city());
      transferred->set_to_city(request.to_city());
      transferred->set_command_event_id(event.event_id());
      transferred->set_cards_partition(partition);
      batch.AppendOutbox(kCardsTopic,
                         TransferKey(request.from_city(), partition, cards_partition_count_),
                         copy.SerializeAsString());
    }
  }
  return absl::OkStatus();
}

std::string MemberLedger::TransferKey(uint32_t from_city, int32_t partition,
                                      int32_t partition_count) {
  CHECK(partition >= 0 && partition < partition_count) << partition << " of " << partition_count;
  for (int n = 0;; ++n) {
    std::string key = absl::StrCat("issuer-transfer/", from_city, "/", n);
    if (event_log::PartitionForKey(key, partition_count) == partition) return key;
  }
}

absl::StatusOr<MemberOutcome> MemberLedger::DecideTransfer(const event_log::Record& record,
                                                           const v1::Event& event,
                                                           StateBatch& batch,
                                                           v1::MemberChanged* changed) {
  const v1::IssuerTransferRequested& request = event.issuer_transfer_requested();
  const std::string name = CityParticipant(request.from_city());
  auto refuse = [&](absl::string_view rule, absl::string_view field, std::string message) {
    return Refused(name, rule, field, std::move(message));
  };
  if (event.source().kind() != v1::TENANT_KIND_MINISTRY) {
    return refuse("ministry_only", "source",
                  absl::StrCat(server::TenantName(event.source()),
                               " may not transfer an issuer: the ministry only"));
  }
  if (txn::FindCity(request.from_city()) == nullptr) {
    return refuse("unknown_city", "from_city",
                  absl::StrCat(request.from_city(), " is not a member city"));
  }
  if (txn::FindCity(request.to_city()) == nullptr) {
    return refuse("unknown_city", "to_city",
                  absl::StrCat(request.to_city(), " is not a member city"));
  }
  if (record.key != name) {
    return refuse("participant_key", "from_city",
                  "the command's record key is not its from city's participant name");
  }
  if (request.from_city() == request.to_city()) {
    return refuse("same_city", "to_city", "an issuer is not its own successor");
  }
  if (request.reason().empty() || request.reason().size() > kMemberReasonSizeMax) {
    return refuse(
        "reason", "reason",
        absl::StrCat("a transfer gives its reason, at most ", kMemberReasonSizeMax, " bytes"));
  }
  if (cards_partition_count_ < 1) {
    return absl::FailedPreconditionError("the member ledger has no tongka.cards partition count");
  }
  Participant from_participant;
  from_participant.city = request.from_city();
  absl::StatusOr<std::optional<MemberRecord>> stored = ReadStored(ViewOf(batch), name);
  if (!stored.ok()) return stored.status();
  MemberRecord member = stored->has_value() ? **stored : GenesisRecord(from_participant);
  if (member.successor_city() != 0) {
    MemberOutcome refused =
        refuse("already_transferred", "from_city",
               absl::StrCat(name, "'s cards already moved to city ", member.successor_city()));
    *refused.mutable_member() = member;
    return refused;
  }
  if (member.status() != v1::MEMBER_STATUS_EXITING) {
    MemberOutcome refused =
        refuse("issuer_not_exiting", "from_city",
               absl::StrCat(name, " is ", ShortName(member.status()),
                            ": the ministry marks an issuer EXITING before moving its cards"));
    *refused.mutable_member() = member;
    return refused;
  }
  const std::string successor_name = CityParticipant(request.to_city());
  Participant to_participant;
  to_participant.city = request.to_city();
  absl::StatusOr<std::optional<MemberRecord>> successor = ReadStored(ViewOf(batch), successor_name);
  if (!successor.ok()) return successor.status();
  const MemberRecord to = successor->has_value() ? **successor : GenesisRecord(to_participant);
  // Only an ACTIVE successor: a city whose own cards moved is EXITING for good, so transfers
  // never chain.
  if (to.status() != v1::MEMBER_STATUS_ACTIVE) {
    return refuse("successor_not_active", "to_city",
                  absl::StrCat(successor_name, " is ", ShortName(to.status())));
  }
  member.set_successor_city(request.to_city());
  member.set_version(member.version() + 1);
  member.set_changed_offset(record.offset);
  PutMember(name, member, batch);
  FillChanged(name, member, changed);
  changed->set_old_status(member.status());
  changed->set_reason(request.reason());
  changed->set_actor(request.actor());
  MemberOutcome outcome;
  outcome.set_accepted(true);
  outcome.set_participant(name);
  *outcome.mutable_member() = member;
  return outcome;
}

absl::StatusOr<MemberOutcome> MemberLedger::DecideStatus(const event_log::Record& record,
                                                         const v1::Event& event, StateBatch& batch,
                                                         v1::MemberChanged* changed) {
  const v1::MemberStatusChangeRequested& request = event.member_status_change_requested();
  const std::string& name = request.participant();
  auto refuse = [&](absl::string_view rule, absl::string_view field, std::string message) {
    return Refused(name, rule, field, std::move(message));
  };
  if (event.source().kind() != v1::TENANT_KIND_MINISTRY) {
    return refuse("ministry_only", "source",
                  absl::StrCat(server::TenantName(event.source()),
                               " may not change a member's status: the ministry only"));
  }
  absl::StatusOr<Participant> participant = ParseParticipant(name);
  if (!participant.ok()) {
    const absl::string_view message = participant.status().message();
    return refuse(message.substr(0, message.find(':')), "participant", std::string(message));
  }
  if (record.key != name) {
    return refuse("participant_key", "participant",
                  "the command's record key is not its participant");
  }
  const v1::MemberStatus target = request.new_status();
  if (!IsSettableStatus(target)) {
    return refuse("new_status", "status", "status must be ACTIVE, SUSPENDED or EXITING");
  }
  if (request.reason().empty() || request.reason().size() > kMemberReasonSizeMax) {
    return refuse(
        "reason", "reason",
        absl::StrCat("a status change gives its reason, at most ", kMemberReasonSizeMax, " bytes"));
  }
  absl::StatusOr<std::optional<MemberRecord>> stored = ReadStored(ViewOf(batch), name);
  if (!stored.ok()) return stored.status();
  MemberRecord member = stored->has_value() ? **stored : GenesisRecord(*participant);
  const v1::MemberStatus from = member.status();
  // ACTIVE <-> SUSPENDED, either -> EXITING; an exiting member leaves through the failed-issuer
  // playbook, never back to ACTIVE.
  if (from == target || from == v1::MEMBER_STATUS_EXITING) {
    MemberOutcome refused = refuse(
        "status_transition", "status",
        absl::StrCat(name, " is ", ShortName(from), ": it cannot become ", ShortName(target)));
    *refused.mutable_member() = member;
    return refused;
  }
  member.set_status(target);
  member.set_version(member.version() + 1);
  member.set_changed_offset(record.offset);
  PutMember(name, member, batch);
  FillChanged(name, member, changed);
  changed->set_old_status(from);
  changed->set_reason(request.reason());
  changed->set_actor(request.actor());
  MemberOutcome outcome;
  outcome.set_accepted(true);
  outcome.set_participant(name);
  *outcome.mutable_member() = member;
  return outcome;
}

absl::StatusOr<MemberOutcome> MemberLedger::DecideAcceptedIssuers(const event_log::Record& record,
                                                                  const v1::Event& event,
                                                                  StateBatch& batch,
                                                                  v1::MemberChanged* changed) {
  const v1::AcceptedIssuersChangeRequested& request = event.accepted_issuers_change_requested();
  const std::string name = CityParticipant(request.acquirer_city());
  auto refuse = [&](absl::string_view rule, absl::string_view field, std::string message) {
    return Refused(name, rule, field, std::move(message));
  };
  if (event.source().kind() != v1::TENANT_KIND_MINISTRY) {
    return refuse("ministry_only", "source",
                  absl::StrCat(server::TenantName(event.source()),
                               " may not set accepted issuers: the ministry only"));
  }
  if (txn::FindCity(request.acquirer_city()) == nullptr) {
    return refuse("unknown_city", "acquirer_city",
                  absl::StrCat(request.acquirer_city(), " is not a member city"));
  }
  if (record.key != name) {
    return refuse("participant_key", "acquirer_city",
                  "the command's record key is not its acquirer's participant name");
  }
  const size_t members = txn::MemberCities().size();
  if (request.accept_all() && request.issuer_cities_size() > 0) {
    return refuse("accept_all_with_list", "issuer_cities",
                  "accept_all and an explicit issuer list exclude each other");
  }
  if (static_cast<size_t>(request.issuer_cities_size()) > members) {
    return refuse("list_too_long", "issuer_cities",
                  absl::StrCat("at most ", members, " issuers (the member cities), got ",
                               request.issuer_cities_size()));
  }
  std::set<uint32_t> issuers;
  for (uint32_t issuer : request.issuer_cities()) {
    if (txn::FindCity(issuer) == nullptr) {
      return refuse("issuer_not_member", "issuer_cities",
                    absl::StrCat(issuer, " is not a member city"));
    }
    if (!issuers.insert(issuer).second) {
      return refuse("issuer_repeated", "issuer_cities", absl::StrCat(issuer, " is listed twice"));
    }
  }
  if (request.reason().empty() || request.reason().size() > kMemberReasonSizeMax) {
    return refuse(
        "reason", "reason",
        absl::StrCat("a list change gives its reason, at most ", kMemberReasonSizeMax, " bytes"));
  }
  absl::StatusOr<std::optional<MemberRecord>> stored = ReadStored(ViewOf(batch), name);
  if (!stored.ok()) return stored.status();
  Participant participant;
  participant.city = request.acquirer_city();
  MemberRecord member = stored->has_value() ? **stored : GenesisRecord(participant);
  const v1::MemberStatus status = member.status();
  member.set_accepts_all(request.accept_all());
  member.clear_accepted_issuer_cities();
  for (uint32_t issuer : issuers) member.add_accepted_issuer_cities(issuer);  // sorted by the set
  member.set_version(member.version() + 1);
  member.set_changed_offset(record.offset);
  PutMember(name, member, batch);
  FillChanged(name, member, changed);
  changed->set_old_status(status);
  changed->set_reason(request.reason());
  changed->set_actor(request.actor());
  MemberOutcome outcome;
  outcome.set_accepted(true);
  outcome.set_participant(name);
  *outcome.mutable_member() = member;
  return outcome;
}

absl::StatusOr<MemberRecord> ReadMember(const StateView& view, absl::string_view participant) {
  absl::StatusOr<Participant> parsed = ParseParticipant(participant);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<std::optional<MemberRecord>> stored = ReadStored(view, participant);
  if (!stored.ok()) return stored.status();
  return stored->has_value() ? **stored : GenesisRecord(*parsed);
}

absl::StatusOr<std::map<std::string, MemberRecord>> ReadRecordedMembers(const StateView& view) {
  std::map<std::string, MemberRecord> members;
  bool corrupt = false;
  absl::Status status =
      view.scan(kMemberPrefix, [&](absl::string_view key, absl::string_view value) {
        MemberRecord record;
        corrupt = !record.ParseFromArray(value.data(), static_cast<int>(value.size())) ||
                  !IsSettableStatus(record.status());
        if (corrupt) return false;
        members.emplace(std::string(key.substr(sizeof(kMemberPrefix) - 1)), std::move(record));
        return true;
      });
  if (!status.ok()) return status;
  if (corrupt) return absl::InternalError(absl::StrCat("corrupt member under ", kMemberPrefix));
  return members;
}

absl::StatusOr<std::optional<MemberOutcome>> ReadMemberOutcome(const StateView& view,
                                                               absl::string_view event_id) {
  return state_store::ReadMessage<MemberOutcome>(view, MemberOutcomeKey(event_id));
}

absl::StatusOr<MemberStats> ReadMemberStats(const StateView& view) {
  MemberStats stats;
  const std::string accepted = internal::MemberAcceptedKey("");
  const std::string refused = internal::MemberRefusedKey("");
  bool corrupt = false;
  absl::Status status =
      view.scan(internal::kMemberStatsPrefix, [&](absl::string_view key, absl::string_view value) {
        int64_t n = 0;
        corrupt = !absl::SimpleAtoi(value, &n);
        if (corrupt) return false;
        if (absl::StartsWith(key, accepted)) {
          stats.accepted[std::string(key.substr(accepted.size()))] = n;
        } else if (absl::StartsWith(key, refused)) {
          stats.refused_by_rule[std::string(key.substr(refused.size()))] = n;
        } else if (key == internal::kMemberDuplicateCommandsKey) {
          stats.duplicate_commands = n;
        } else if (key == internal::kMemberUnusableKey) {
          stats.unusable = n;
        }
        return true;
      });
  if (!status.ok()) return status;
  if (corrupt) return absl::InternalError("corrupt counter under m/st/");
  return stats;
}

}  // namespace tongka::card_registry
