#include "services/card_registry/card_registry_api.h"

#include <glog/logging.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/event_log/ownership.h"
#include "libs/server/tenant.h"
#include "libs/txn/card_id.h"
#include "services/card_registry/card_registry_keys.h"

namespace tongka::card_registry {
namespace {

constexpr size_t kActorSizeMax = 64;
constexpr size_t kReasonSizeMax = 256;
constexpr size_t kRecentMax = 100000;
constexpr absl::Duration kApplyPoll = absl::Milliseconds(2);

absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

absl::Status CheckRequestId(absl::string_view field, absl::string_view request_id) {
  if (request_id.empty() || request_id.size() > 64)
    return Invalid(field, "must be 1..64 characters");
  for (char c : request_id) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-') {
      return Invalid(field, "only [A-Za-z0-9._:-]");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckText(absl::string_view field, absl::string_view value, size_t size_max) {
  if (value.size() > size_max) return Invalid(field, absl::StrCat("at most ", size_max, " bytes"));
  return absl::OkStatus();
}

// The issuer of a well-formed card id, or INVALID_ARGUMENT "<field>: card_id_format: ...".
absl::StatusOr<uint32_t> IssuerOf(absl::string_view field, absl::string_view card_id) {
  absl::StatusOr<uint32_t> issuer = txn::ParseCardId(card_id);
  if (!issuer.ok()) return Invalid(field, issuer.status().message());
  return issuer;
}

bool IsIssuer(const v1::Tenant& tenant, uint32_t issuer) {
  return tenant.kind() == v1::TENANT_KIND_CITY_OPERATOR && tenant.city() == issuer;
}

// The request field a ledger rule's field is about (the ledger names the event's fields).
std::string RequestField(const std::string& ledger_field) {
  if (ledger_field == "device_token") return "device_id";
  if (ledger_field == "holder.id_number_token") return "holder.id_number";
  if (ledger_field == "holder.phone_token") return "holder.phone";
  if (ledger_field == "concession") return "product";
  return ledger_field;
}

v1::CardCommandResponse ResponseOf(const RequestOutcome& outcome, int32_t partition) {
  v1::CardCommandResponse response;
  response.set_card_id(outcome.card_id());
  response.set_accepted(outcome.accepted());
  response.set_rule(outcome.rule());
  response.set_field(RequestField(outcome.field()));
  response.set_message(outcome.message());
  response.set_status(outcome.status());
  if (outcome.accepted() && outcome.hotlist_version() > 0) {
    (*response.mutable_hotlist_version()->mutable_partition_seq())[partition] =
        outcome.hotlist_version();
  }
  // A replacement or a link: the decision names the card to follow (FollowDerived), whatever
  // a retry with the same request id asks.
  if (!outcome.derived_card_id().empty()) {
    response.mutable_derived()->set_card_id(outcome.derived_card_id());
  }
  return response;
}

v1::HotlistEntry EntryOf(const HotlistEntry& stored, int32_t partition, uint64_t seq) {
  v1::HotlistEntry entry;
  entry.set_card_id(stored.card_id());
  entry.set_listed(stored.listed());
  entry.set_status(stored.status());
  entry.set_block_reason(stored.reason());
  entry.set_partition(partition);
  entry.set_seq(seq);
  return entry;
}

// Wraps a peer's failure so the caller sees which replica it was.
absl::Status PeerError(int32_t replica, absl::string_view what, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::Status(status.code(), absl::StrCat("replica ", replica, " (", what,
                                                    ") did not answer: ", status.message()));
  }
  return status;
}

}  // namespace

CardRegistryApi::CardRegistryApi(CardRegistryApiDeps deps) : deps_(std::move(deps)) {
  CHECK(deps_.store != nullptr);
  CHECK(deps_.producer != nullptr);
  CHECK(deps_.holder_keys != nullptr);
  CHECK(deps_.cards_next_offset != nullptr);
  CHECK_GE(deps_.partition_count, 1);
  CHECK(deps_.replica_count == 1 || deps_.peer_forward != nullptr);
}

int32_t CardRegistryApi::OwnerOf(absl::string_view card_id, int32_t* partition) const {
  const int32_t p = event_log::PartitionForKey(card_id, deps_.partition_count);
  if (partition != nullptr) *partition = p;
  return p % deps_.replica_count;
}

std::vector<int32_t> CardRegistryApi::OwnedPartitions() const {
  std::vector<int32_t> owned;
  for (int32_t p = deps_.replica_index; p < deps_.partition_count; p += deps_.replica_count) {
    owned.push_back(p);
  }
  return owned;
}

void CardRegistryApi::RememberCommand(const std::string& card_id, int64_t recorded_at_us) const {
  absl::MutexLock lock(&recent_mu_);
  auto [it, added] =
      recent_.insert_or_assign(card_id, RecentCommand{.recorded_at_us = recorded_at_us});
  if (!added) return;
  recent_order_.push_back(card_id);
  while (recent_order_.size() > kRecentMax) {
    recent_.erase(recent_order_.front());
    recent_order_.pop_front();
  }
}

void CardRegistryApi::CommandDecided(const std::string& card_id, int64_t recorded_at_us,
                                     int32_t partition, uint64_t seq) const {
  absl::MutexLock lock(&recent_mu_);
  auto it = recent_.find(card_id);
  if (it == recent_.end() || it->second.recorded_at_us != recorded_at_us) return;
  if (seq == 0) {
    // Refused: no hotlist change to measure; a later change (fraud's) is not this command's.
    it->second.seq = UINT64_MAX;
    return;
  }
  it->second.partition = partition;
  it->second.seq = seq;
}

std::optional<absl::Time> CardRegistryApi::HotlistChangeRecordedAt(
    int32_t partition, uint64_t seq, const std::string& card_id) const {
  absl::MutexLock lock(&recent_mu_);
  auto it = recent_.find(card_id);
  if (it == recent_.end()) return std::nullopt;
  const RecentCommand& command = it->second;
  if (command.seq != 0 && (command.partition != partition || command.seq != seq)) {
    return std::nullopt;
  }
  return absl::FromUnixMicros(command.recorded_at_us);
}

absl::Status CardRegistryApi::Submit(std::vector<Pending*>& commands) const {
  struct Deliveries {
    absl::Mutex mu;
    std::vector<std::optional<event_log::DeliveryResult>> results ABSL_GUARDED_BY(mu);
    size_t remaining ABSL_GUARDED_BY(mu) = 0;
  };
  // Shared with the delivery callbacks, which may outlive a call that timed out.
  auto deliveries = std::make_shared<Deliveries>();
  {
    absl::MutexLock lock(&deliveries->mu);
    deliveries->results.resize(commands.size());
  }
  const absl::Time deadline = absl::Now() + deps_.command_timeout;
  for (size_t i = 0; i < commands.size(); ++i) {
    Pending& command = *commands[i];
    if (command.done.has_value()) continue;
    {
      absl::MutexLock lock(&deliveries->mu);
      ++deliveries->remaining;
    }
    absl::Status produced =
        deps_.producer->Produce(kCardsTopic, command.card_id, command.event.SerializeAsString(),
                                [deliveries, i](const event_log::DeliveryResult& result) {
                                  absl::MutexLock lock(&deliveries->mu);
                                  deliveries->results[i] = result;
                                  --deliveries->remaining;
                                });
    if (!produced.ok()) {
      absl::MutexLock lock(&deliveries->mu);
      --deliveries->remaining;
      command.done = absl::UnavailableError(absl::StrCat("request ", command.event.event_id(),
                                                         " was not written to ", kCardsTopic, ": ",
                                                         produced.message()));
    }
  }
  // Written: every delivery report, or the deadline.
  std::map<int32_t, int64_t> last_offset;
  {
    absl::MutexLock lock(&deliveries->mu);
    deliveries->mu.AwaitWithDeadline(
        absl::Condition(
            +[](size_t* remaining) { return *remaining == 0; }, &deliveries->remaining),
        deadline);
    for (size_t i = 0; i < commands.size(); ++i) {
      Pending& command = *commands[i];
      if (command.done.has_value()) continue;
      const std::optional<event_log::DeliveryResult>& result = deliveries->results[i];
      if (!result.has_value()) {
        command.done = absl::DeadlineExceededError(
            absl::StrCat("request ", command.event.event_id(), " not confirmed written to ",
                         kCardsTopic, " in time; retry with the same request_id for the decision"));
      } else if (!result->status.ok()) {
        command.done = absl::UnavailableError(absl::StrCat("request ", command.event.event_id(),
                                                           " was not written to ", kCardsTopic,
                                                           ": ", result->status.message()));
      } else {
        command.partition = result->partition;
        command.offset = result->offset;
        int64_t& last = last_offset[result->partition];
        last = std::max(last, result->offset);
      }
    }
  }
  // Read-your-writes: this replica's ledger has applied every partition past its last command.
  std::set<int32_t> waiting;
  for (const auto& [partition, offset] : last_offset) waiting.insert(partition);
  while (!waiting.empty()) {
    for (auto it = waiting.begin(); it != waiting.end();) {
      it = deps_.cards_next_offset(*it) > last_offset[*it] ? waiting.erase(it) : std::next(it);
    }
    if (waiting.empty() || absl::Now() > deadline) break;
    absl::SleepFor(kApplyPoll);
  }
  const StateView view = ViewOf(*deps_.store);
  for (Pending* command : commands) {
    if (command->done.has_value()) continue;
    if (waiting.count(command->partition) != 0 &&
        deps_.cards_next_offset(command->partition) <= command->offset) {
      command->done = absl::DeadlineExceededError(
          absl::StrCat("request ", command->event.event_id(), " is in the log (", kCardsTopic, "/",
                       command->partition, "@", command->offset,
                       ") but not decided yet; retry with the same request_id for the decision"));
      continue;
    }
    absl::StatusOr<std::optional<RequestOutcome>> outcome =
        ReadOutcome(view, command->event.event_id());
    if (!outcome.ok()) return outcome.status();
    if (!outcome->has_value()) {
      return absl::InternalError(
          absl::StrCat("request ", command->event.event_id(), " applied without a decision"));
    }
    if (!command->event.has_card_issue_requested()) {
      CommandDecided(command->card_id, command->event.recorded_at_us(), command->partition,
                     (*outcome)->accepted() ? (*outcome)->hotlist_version() : 0);
    }
    command->done = ResponseOf(**outcome, command->partition);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Event> CardRegistryApi::IssueEvent(const Caller& caller,
                                                      const v1::IssueCardRequest& request) const {
  if (absl::Status ok = CheckRequestId("request_id", request.request_id()); !ok.ok()) return ok;
  absl::StatusOr<uint32_t> issuer = IssuerOf("card_id", request.card_id());
  if (!issuer.ok()) return issuer.status();
  if (!IsIssuer(caller.tenant, *issuer)) {
    return absl::PermissionDeniedError(
        absl::StrCat(server::TenantName(caller.tenant), " may not issue card ", request.card_id(),
                     ": only city ", *issuer, " (the card id's issuer) issues it"));
  }
  if (absl::Status ok = CheckText("actor", request.actor(), kActorSizeMax); !ok.ok()) return ok;
  v1::Event event;
  event.set_event_id(
      absl::StrCat("cmd/", server::TenantName(caller.tenant), "/", request.request_id()));
  const int64_t now_us = absl::ToUnixMicros(deps_.now());
  event.set_occurred_at_us(now_us);
  event.set_recorded_at_us(now_us);
  *event.mutable_source() = caller.tenant;
  v1::CardIssueRequested* body = event.mutable_card_issue_requested();
  body->set_request_id(request.request_id());
  body->set_card_id(request.card_id());
  body->set_form(request.form());
  body->set_product(request.product());
  body->set_concession(request.product() == v1::CARD_PRODUCT_CONCESSION);
  body->set_expires_at_us(request.expires_at_us());
  body->set_initial_balance_fen(request.initial_balance_fen());
  body->set_actor(request.actor());
  // Tokenized here, before anything is written; the errors never carry the value.
  const struct {
    const std::string& value;
    crypto::IdentifierDomain domain;
    const char* field;
    std::string* token;
  } identifiers[] = {
      {request.holder().id_number(), crypto::IdentifierDomain::kResidentIdNumber,
       "holder.id_number", body->mutable_holder()->mutable_id_number_token()},
      {request.holder().phone(), crypto::IdentifierDomain::kMobilePhone, "holder.phone",
       body->mutable_holder()->mutable_phone_token()},
  };
  for (const auto& identifier : identifiers) {
    if (identifier.value.empty()) continue;
    absl::StatusOr<std::string> token =
        deps_.holder_keys->Tokenize(*issuer, identifier.domain, identifier.value);
    if (!token.ok()) {
      if (token.status().code() == absl::StatusCode::kInvalidArgument) {
        return Invalid(identifier.field, token.status().message());
      }
      return token.status();
    }
    *identifier.token = *std::move(token);
  }
  if (!request.device_id().empty()) {
    absl::StatusOr<std::string> token = DeviceToken(*issuer, request.device_id());
    if (!token.ok()) return token.status();
    body->set_device_token(*std::move(token));
  }
  return event;
}

absl::StatusOr<std::string> CardRegistryApi::DeviceToken(uint32_t issuer,
                                                         const std::string& device_id) const {
  absl::StatusOr<std::string> token = deps_.holder_keys->DeviceToken(issuer, device_id);
  if (!token.ok() && token.status().code() == absl::StatusCode::kInvalidArgument) {
    return Invalid("device_id", token.status().message());
  }
  return token;
}

absl::StatusOr<v1::CardCommandResponse> CardRegistryApi::RunOne(
    const Caller& caller, const char* rpc, const google::protobuf::Message& request,
    const std::string& card_id, absl::StatusOr<v1::Event> event) const {
  if (!event.ok()) return event.status();
  int32_t partition = 0;
  const int32_t owner = OwnerOf(card_id, &partition);
  if (owner != deps_.replica_index) {
    if (caller.via_peer) {
      return absl::FailedPreconditionError(
          absl::StrCat("not_owner: card ", card_id, " (", kCardsTopic, " partition ", partition,
                       ") belongs to replica ", owner, ", not ", deps_.replica_index));
    }
    v1::CardCommandResponse response;
    absl::Status forwarded = deps_.peer_forward(owner, rpc, caller.tenant, request, &response);
    if (!forwarded.ok()) {
      return PeerError(owner, absl::StrCat("owner of ", kCardsTopic, " partition ", partition),
                       forwarded);
    }
    return response;
  }
  if (!event->has_card_issue_requested()) RememberCommand(card_id, event->recorded_at_us());
  Pending command{.card_id = card_id, .event = *std::move(event)};
  std::vector<Pending*> commands = {&command};
  if (absl::Status submitted = Submit(commands); !submitted.ok()) return submitted;
  return *std::move(*command.done);
}

absl::StatusOr<v1::CardCommandResponse> CardRegistryApi::IssueCard(
    const Caller& caller, const v1::IssueCardRequest& request) const {
  return RunOne(caller, "IssueCard", request, request.card_id(), IssueEvent(caller, request));
}

absl::StatusOr<v1::IssueCardsResponse> CardRegistryApi::IssueCards(
    const Caller& caller, const v1::IssueCardsRequest& request) const {
  const int count = request.cards_size();
  if (count < 1 || count > kIssueCardsMax) return Invalid("cards", "1..10,000 cards");
  // Every item is checked before any is written: a bad one fails the call, naming it.
  std::vector<Pending> local;
  local.reserve(static_cast<size_t>(count));
  std::vector<int> local_index;
  std::map<int32_t, std::pair<v1::IssueCardsRequest, std::vector<int>>> remote;
  std::map<std::string, int> request_ids;
  for (int i = 0; i < count; ++i) {
    const v1::IssueCardRequest& item = request.cards(i);
    absl::StatusOr<v1::Event> event = IssueEvent(caller, item);
    if (!event.ok()) {
      return absl::Status(event.status().code(),
                          absl::StrCat("cards[", i, "].", event.status().message()));
    }
    auto [seen, added] = request_ids.emplace(item.request_id(), i);
    if (!added) {
      return Invalid(absl::StrCat("cards[", i, "].request_id"),
                     absl::StrCat("repeats cards[", seen->second, "]"));
    }
    const int32_t owner = OwnerOf(item.card_id());
    if (owner == deps_.replica_index) {
      local.push_back(Pending{.card_id = item.card_id(), .event = *std::move(event)});
      local_index.push_back(i);
    } else if (caller.via_peer) {
      return absl::FailedPreconditionError(
          absl::StrCat("not_owner: cards[", i, "] belongs to replica ", owner));
    } else {
      auto& [batch, indices] = remote[owner];
      *batch.add_cards() = item;
      indices.push_back(i);
    }
  }
  v1::IssueCardsResponse response;
  response.mutable_results()->Reserve(count);
  for (int i = 0; i < count; ++i) response.add_results();
  for (auto& [owner, part] : remote) {
    v1::IssueCardsResponse forwarded;
    absl::Status status =
        deps_.peer_forward(owner, "IssueCards", caller.tenant, part.first, &forwarded);
    if (!status.ok()) return PeerError(owner, "owner of part of the batch", status);
    if (forwarded.results_size() != static_cast<int>(part.second.size())) {
      return absl::InternalError(absl::StrCat("replica ", owner, " answered ",
                                              forwarded.results_size(), " results for ",
                                              part.second.size(), " cards"));
    }
    for (size_t j = 0; j < part.second.size(); ++j) {
      *response.mutable_results(part.second[j]) =
          std::move(*forwarded.mutable_results(static_cast<int>(j)));
    }
  }
  std::vector<Pending*> commands;
  commands.reserve(local.size());
  for (Pending& command : local) commands.push_back(&command);
  if (absl::Status submitted = Submit(commands); !submitted.ok()) return submitted;
  for (size_t j = 0; j < local.size(); ++j) {
    // A command not decided in time fails the call: the caller retries the same request ids
    // and gets every decision, the ones already made included.
    if (!local[j].done->ok()) return local[j].done->status();
    *response.mutable_results(local_index[j]) = **std::move(local[j].done);
  }
  for (const v1::CardCommandResponse& result : response.results()) {
    if (result.accepted()) {
      response.set_accepted(response.accepted() + 1);
    } else {
      response.set_refused(response.refused() + 1);
    }
  }
  return response;
}

absl::StatusOr<uint32_t> CardRegistryApi::ManagerOf(absl::string_view card_id,
                                                    uint32_t card_city) const {
  int32_t partition = 0;
  const StateView view = ViewOf(*deps_.store);
  if (OwnerOf(card_id, &partition) == deps_.replica_index) {
    return ManagingIssuer(view, partition, card_city);
  }
  absl::StatusOr<std::map<std::pair<int32_t, uint32_t>, uint32_t>> successors =
      ReadSuccessors(view);
  if (!successors.ok()) return successors.status();
  for (const auto& [where, successor] : *successors) {
    if (where.second == card_city) return successor;
  }
  return card_city;
}

absl::StatusOr<v1::Event> CardRegistryApi::ChangeEnvelope(
    const Caller& caller, absl::string_view verb, const std::string& request_id,
    const std::string& card_id, const std::string& reason, const std::string& actor) const {
  if (absl::Status ok = CheckRequestId("request_id", request_id); !ok.ok()) return ok;
  absl::StatusOr<uint32_t> card_city = IssuerOf("card_id", card_id);
  if (!card_city.ok()) return card_city.status();
  absl::StatusOr<uint32_t> issuer = ManagerOf(card_id, *card_city);
  if (!issuer.ok()) return issuer.status();
  if (!IsIssuer(caller.tenant, *issuer) && !server::CanReadAll(caller.tenant)) {
    return absl::PermissionDeniedError(absl::StrCat(server::TenantName(caller.tenant), " may not ",
                                                    verb, " card ", card_id, ": only city ",
                                                    *issuer, " (the issuer) or the ministry"));
  }
  if (absl::Status ok = CheckText("reason", reason, kReasonSizeMax); !ok.ok()) return ok;
  if (absl::Status ok = CheckText("actor", actor, kActorSizeMax); !ok.ok()) return ok;
  v1::Event event;
  event.set_event_id(absl::StrCat("cmd/", server::TenantName(caller.tenant), "/", request_id));
  const int64_t now_us = absl::ToUnixMicros(deps_.now());
  event.set_occurred_at_us(now_us);
  event.set_recorded_at_us(now_us);
  *event.mutable_source() = caller.tenant;
  return event;
}

absl::StatusOr<v1::CardCommandResponse> CardRegistryApi::StatusChange(
    const Caller& caller, const char* rpc, const v1::CardStatusRequest& request,
    v1::CardStatus target, v1::BlockReason reason) const {
  absl::StatusOr<v1::Event> event = ChangeEnvelope(
      caller, "change", request.request_id(), request.card_id(), request.reason(), request.actor());
  if (event.ok()) {
    v1::CardStatusChangeRequested* body = event->mutable_card_status_change_requested();
    body->set_request_id(request.request_id());
    body->set_card_id(request.card_id());
    body->set_new_status(target);
    body->set_reason(request.reason());
    body->set_block_reason(reason);
    body->set_actor(request.actor());
  }
  return RunOne(caller, rpc, request, request.card_id(), std::move(event));
}

absl::StatusOr<v1::CardCommandResponse> CardRegistryApi::ReportLost(
    const Caller& caller, const v1::CardStatusRequest& request) const {
  return StatusChange(caller, "ReportLost", request, v1::CARD_STATUS_BLOCKED,
                      v1::BLOCK_REASON_LOST);
}

absl::StatusOr<v1::CardCommandResponse> CardRegistryApi::BlockCard(
    const Caller& caller, const v1::CardStatusRequest& request) const {
  return StatusChange(caller, "BlockCard", request, v1::CARD_STATUS_BLOCKED,
                      request.block_reason());
}

absl::StatusOr<v1::CardCommandResponse> CardRegistryApi::UnblockCard(
    const Caller& caller, const v1::CardStatusRequest& request) const {
  return StatusChange(caller, "UnblockCard", request, v1::CARD_STATUS_ACTIVE,
                      v1::BLOCK_REASON_UNSPECIFIED);
}

absl::StatusOr<v1::CardCommandResponse> CardRegistryApi::CloseCard(
    const Caller& caller, const v1::CloseCardRequest& request) const {
  absl::StatusOr<v1::Event> event = ChangeEnvelope(
      caller, "close", request.request_id(), request.card_id(), request.reason(), request.actor());
  if (event.ok()) {
    v1::CardCloseRequested* body = event->mutable_card_close_requested();
    body->set_request_id(request.request_id());
    body->set_card_id(request.card_id());
    body->set_reason(request.reason());
    body->set_actor(request.actor());
  }
  return RunOne(caller, "CloseCard", request, request.card_id(), std::move(event));
}

absl::StatusOr<v1::CardCommandResponse> CardRegistryApi::ReplaceCard(
    const Caller& caller, const v1::ReplaceCardRequest& request) const {
  absl::StatusOr<v1::Event> event =
      ChangeEnvelope(caller, "replace", request.request_id(), request.card_id(), request.reason(),
                     request.actor());
  if (event.ok()) {
    // The new card takes an id of the city that manages the old card now.
    absl::StatusOr<uint32_t> manager =
        ManagerOf(request.card_id(), *txn::ParseCardId(request.card_id()));  // checked above
    if (!manager.ok()) return manager.status();
    const uint32_t issuer = *manager;
    absl::StatusOr<uint32_t> new_issuer = IssuerOf("new_card_id", request.new_card_id());
    if (!new_issuer.ok()) return new_issuer.status();
    if (*new_issuer != issuer)
      return Invalid("new_card_id", "new_card_issuer: the same city as card_id");
    if (request.new_card_id() == request.card_id()) return Invalid("new_card_id", "new_card_same");
    v1::CardReplaceRequested* body = event->mutable_card_replace_requested();
    if (!request.device_id().empty()) {
      absl::StatusOr<std::string> token = DeviceToken(issuer, request.device_id());
      if (!token.ok()) return token.status();
      body->set_device_token(*std::move(token));
    }
    body->set_request_id(request.request_id());
    body->set_old_card_id(request.card_id());
    body->set_new_card_id(request.new_card_id());
    body->set_new_form(request.new_form());
    body->set_reason(request.reason());
    body->set_actor(request.actor());
  }
  absl::StatusOr<v1::CardCommandResponse> response =
      RunOne(caller, "ReplaceCard", request, request.card_id(), std::move(event));
  // A forwarded call was followed by the owner (its state is set).
  if (response.ok() && response->accepted() &&
      response->derived().state() == v1::DerivedCard::STATE_UNSPECIFIED) {
    FollowDerived(caller, request.card_id(), &*response);
  }
  return response;
}

absl::StatusOr<v1::CardCommandResponse> CardRegistryApi::LinkVirtualCard(
    const Caller& caller, const v1::LinkVirtualCardRequest& request) const {
  absl::StatusOr<v1::Event> event =
      ChangeEnvelope(caller, "link", request.request_id(), request.card_id(), "", request.actor());
  if (event.ok()) {
    absl::StatusOr<uint32_t> manager =
        ManagerOf(request.card_id(), *txn::ParseCardId(request.card_id()));  // checked above
    if (!manager.ok()) return manager.status();
    const uint32_t issuer = *manager;
    absl::StatusOr<uint32_t> virtual_issuer =
        IssuerOf("virtual_card_id", request.virtual_card_id());
    if (!virtual_issuer.ok()) return virtual_issuer.status();
    if (*virtual_issuer != issuer) {
      return Invalid("virtual_card_id", "virtual_card_issuer: the same city as card_id");
    }
    v1::VirtualCardLinkRequested* body = event->mutable_virtual_card_link_requested();
    if (!request.device_id().empty()) {
      absl::StatusOr<std::string> token = DeviceToken(issuer, request.device_id());
      if (!token.ok()) return token.status();
      body->set_device_token(*std::move(token));
    }
    body->set_request_id(request.request_id());
    body->set_physical_card_id(request.card_id());
    body->set_virtual_card_id(request.virtual_card_id());
    body->set_form(request.form());
    body->set_actor(request.actor());
  }
  absl::StatusOr<v1::CardCommandResponse> response =
      RunOne(caller, "LinkVirtualCard", request, request.card_id(), std::move(event));
  if (response.ok() && response->accepted() &&
      response->derived().state() == v1::DerivedCard::STATE_UNSPECIFIED) {
    FollowDerived(caller, request.card_id(), &*response);
  }
  return response;
}

void CardRegistryApi::FollowDerived(const Caller& caller, const std::string& origin_card_id,
                                    v1::CardCommandResponse* response) const {
  v1::DerivedCard* derived = response->mutable_derived();
  const std::string card_id = derived->card_id();
  derived->set_state(v1::DerivedCard::STATE_PENDING);
  // Read as the caller, through the owner: the caller is the issuer or the ministry, who see
  // the card in full. The derived command reaches the new card's partition through the
  // outbox, so this waits for the publisher and that partition's ledger.
  const Caller reader{.tenant = caller.tenant, .via_peer = false};
  v1::GetCardRequest get;
  get.set_card_id(card_id);
  const absl::Time deadline = deps_.now() + deps_.command_timeout;
  absl::Duration poll = absl::Milliseconds(5);
  while (!WaitForStop(absl::ZeroDuration())) {
    absl::StatusOr<v1::GetCardResponse> card = GetCard(reader, get);
    if (card.ok()) {
      const v1::CardView& view = card->card();
      if (view.carried_from_card_id() == origin_card_id ||
          view.linked_card_id() == origin_card_id) {
        derived->set_state(v1::DerivedCard::STATE_ISSUED);
        derived->set_carried_balance_fen(view.carried_balance_fen());
      } else {
        // The id is another card's: the new card's partition refuses it (cards are never
        // removed), and a carried balance goes back to the old card.
        derived->set_state(v1::DerivedCard::STATE_REFUSED);
        derived->set_rule("card_exists");
      }
      return;
    }
    if (card.status().code() != absl::StatusCode::kNotFound || deps_.now() >= deadline) return;
    absl::SleepFor(poll);
    poll = std::min(poll * 2, absl::Milliseconds(100));
  }
}

absl::StatusOr<v1::GetIssuerBalancesResponse> CardRegistryApi::GetIssuerBalances(
    const Caller& caller, const v1::GetIssuerBalancesRequest& request) const {
  const uint32_t city = request.issuer_city();
  if (!server::CanReadAll(caller.tenant) && !IsIssuer(caller.tenant, city)) {
    return absl::PermissionDeniedError(
        absl::StrCat(server::TenantName(caller.tenant), " may not read city ", city,
                     "'s balances: only the issuer itself or the ministry"));
  }
  if (city < 100000 || city > 999999) return Invalid("issuer_city", "six digits");
  // The cards the city manages: its own, and those of the cities whose cards moved to it (the
  // failed-issuer playbook), each in the partitions that applied the move.
  const StateView view = ViewOf(*deps_.store);
  absl::StatusOr<std::map<std::pair<int32_t, uint32_t>, uint32_t>> successors =
      ReadSuccessors(view);
  if (!successors.ok()) return successors.status();
  std::set<uint32_t> card_cities = {city};
  for (const auto& [where, successor] : *successors) {
    if (successor == city) card_cities.insert(where.second);
  }
  v1::GetIssuerBalancesResponse response;
  response.set_issuer_city(city);
  for (uint32_t card_city : card_cities) {
    auto managed_here = [&](absl::string_view card_id) {
      const int32_t partition = event_log::PartitionForKey(card_id, deps_.partition_count);
      auto moved = successors->find({partition, card_city});
      return (moved == successors->end() ? card_city : moved->second) == city;
    };
    absl::StatusOr<IssuerBalances> sum = SumIssuerBalances(view, card_city, managed_here);
    if (!sum.ok()) return sum.status();
    response.set_cards(response.cards() + sum->cards);
    response.set_balance_fen(response.balance_fen() + sum->balance_fen);
    response.set_closed_cards(response.closed_cards() + sum->closed_cards);
  }
  if (!caller.via_peer) {
    for (int32_t replica = 0; replica < deps_.replica_count; ++replica) {
      if (replica == deps_.replica_index) continue;
      v1::GetIssuerBalancesResponse part;
      absl::Status status =
          deps_.peer_forward(replica, "GetIssuerBalances", caller.tenant, request, &part);
      if (!status.ok()) return PeerError(replica, "holding part of the cards", status);
      response.set_cards(response.cards() + part.cards());
      response.set_balance_fen(response.balance_fen() + part.balance_fen());
      response.set_closed_cards(response.closed_cards() + part.closed_cards());
    }
  }
  return response;
}

absl::StatusOr<v1::GetCardResponse> CardRegistryApi::GetCard(
    const Caller& caller, const v1::GetCardRequest& request) const {
  absl::StatusOr<uint32_t> issuer = IssuerOf("card_id", request.card_id());
  if (!issuer.ok()) return issuer.status();
  const v1::TenantKind kind = caller.tenant.kind();
  if (kind != v1::TENANT_KIND_CITY_OPERATOR && kind != v1::TENANT_KIND_PARTNER &&
      kind != v1::TENANT_KIND_MINISTRY) {
    return absl::PermissionDeniedError(
        absl::StrCat(server::TenantName(caller.tenant),
                     " may not read cards (city operators, partners and the ministry)"));
  }
  int32_t partition = 0;
  const int32_t owner = OwnerOf(request.card_id(), &partition);
  if (owner != deps_.replica_index) {
    if (caller.via_peer) {
      return absl::FailedPreconditionError(
          absl::StrCat("not_owner: card ", request.card_id(), " belongs to replica ", owner));
    }
    v1::GetCardResponse response;
    absl::Status forwarded =
        deps_.peer_forward(owner, "GetCard", caller.tenant, request, &response);
    if (!forwarded.ok()) {
      return PeerError(owner, absl::StrCat("owner of ", kCardsTopic, " partition ", partition),
                       forwarded);
    }
    return response;
  }
  absl::StatusOr<std::optional<Card>> card = ReadCard(ViewOf(*deps_.store), request.card_id());
  if (!card.ok()) return card.status();
  if (!card->has_value()) {
    return absl::NotFoundError(absl::StrCat("unknown card ", request.card_id()));
  }
  const Card& found = **card;
  absl::StatusOr<uint32_t> manager =
      ManagingIssuer(ViewOf(*deps_.store), partition, found.issuer_city);
  if (!manager.ok()) return manager.status();
  v1::GetCardResponse response;
  v1::CardView* view = response.mutable_card();
  view->set_card_id(found.card_id);
  view->set_issuer_city(*manager);
  if (*manager != found.issuer_city) view->set_transferred_from_city(found.issuer_city);
  view->set_status(found.record.status());
  if (server::CanReadAll(caller.tenant) || IsIssuer(caller.tenant, *manager)) {
    view->set_full(true);
    view->set_form(found.record.form());
    view->set_product(found.record.product());
    view->set_expires_at_us(found.record.expires_at_us());
    view->set_initial_balance_fen(found.record.initial_balance_fen());
    view->set_balance_fen(found.balance_fen);
    view->set_last_counter(found.record.last_txn().card_counter());
    view->set_last_used_at_us(found.record.last_txn().occurred_at_us());
    view->set_last_acquirer_city(found.record.last_txn().acquirer_city());
    view->set_block_reason(found.record.block_reason());
    view->set_carried_balance_fen(found.record.carried_balance_fen());
    view->set_carried_from_card_id(found.record.carried_from());
    view->set_replaced_by_card_id(found.record.replaced_by());
    view->set_linked_card_id(found.record.linked_card());
    view->set_balance_owed_fen(found.record.balance_owed_fen());
  }
  return response;
}

absl::StatusOr<v1::FindCardsByHolderResponse> CardRegistryApi::FindCardsByHolder(
    const Caller& caller, const v1::FindCardsByHolderRequest& request) const {
  if (caller.tenant.kind() != v1::TENANT_KIND_CITY_OPERATOR) {
    return absl::PermissionDeniedError(
        absl::StrCat(server::TenantName(caller.tenant),
                     " may not look up holders: a city operator finds its own cards only"));
  }
  const uint32_t city = caller.tenant.city();
  const v1::HolderIdentity& holder = request.holder();
  if (holder.id_number().empty() == holder.phone().empty()) {
    return Invalid("holder", "give exactly one of id_number or phone");
  }
  const bool by_id = !holder.id_number().empty();
  absl::StatusOr<std::string> token = deps_.holder_keys->Tokenize(
      city,
      by_id ? crypto::IdentifierDomain::kResidentIdNumber : crypto::IdentifierDomain::kMobilePhone,
      by_id ? holder.id_number() : holder.phone());
  if (!token.ok()) {
    if (token.status().code() == absl::StatusCode::kInvalidArgument) {
      return Invalid(by_id ? "holder.id_number" : "holder.phone", token.status().message());
    }
    return token.status();
  }
  v1::FindCardsByHolderResponse response;
  const StateView view = ViewOf(*deps_.store);
  // The holder index is per card city, under that city's key: the caller's own, and those of
  // the cities whose cards moved to it (the failed-issuer playbook), whose keys the registry
  // still holds. Only the cards the caller manages now are answered.
  std::map<uint32_t, std::string> tokens = {{city, *std::move(token)}};
  absl::StatusOr<std::map<std::pair<int32_t, uint32_t>, uint32_t>> successors =
      ReadSuccessors(view);
  if (!successors.ok()) return successors.status();
  for (const auto& [where, successor] : *successors) {
    if (successor != city || tokens.count(where.second) != 0) continue;
    absl::StatusOr<std::string> predecessor_token =
        deps_.holder_keys->Tokenize(where.second,
                                    by_id ? crypto::IdentifierDomain::kResidentIdNumber
                                          : crypto::IdentifierDomain::kMobilePhone,
                                    by_id ? holder.id_number() : holder.phone());
    if (predecessor_token.ok()) tokens[where.second] = *std::move(predecessor_token);
  }
  for (const auto& [card_city, city_token] : tokens) {
    // The holder index of this replica holds only the cards of its own partitions.
    absl::StatusOr<std::vector<std::string>> ids =
        card_registry::FindCardsByHolder(view, card_city, city_token);
    if (!ids.ok()) return ids.status();
    for (const std::string& id : *ids) {
      v1::GetCardRequest get;
      get.set_card_id(id);
      absl::StatusOr<v1::GetCardResponse> card = GetCard(caller, get);
      if (!card.ok()) return card.status();
      if (card->card().full()) *response.add_cards() = std::move(*card->mutable_card());
    }
  }
  if (!caller.via_peer) {
    for (int32_t replica = 0; replica < deps_.replica_count; ++replica) {
      if (replica == deps_.replica_index) continue;
      v1::FindCardsByHolderResponse part;
      absl::Status status =
          deps_.peer_forward(replica, "FindCardsByHolder", caller.tenant, request, &part);
      if (!status.ok()) return PeerError(replica, "holding part of the holder index", status);
      for (v1::CardView& card : *part.mutable_cards()) *response.add_cards() = std::move(card);
    }
  }
  std::sort(response.mutable_cards()->begin(), response.mutable_cards()->end(),
            [](const v1::CardView& a, const v1::CardView& b) { return a.card_id() < b.card_id(); });
  return response;
}

absl::StatusOr<v1::GetHotlistResponse> CardRegistryApi::GetHotlist(
    const Caller& caller, const v1::GetHotlistRequest& request) const {
  v1::GetHotlistResponse response;
  auto& version = *response.mutable_version()->mutable_partition_seq();
  const StateView view = ViewOf(*deps_.store);
  for (int32_t partition : OwnedPartitions()) {
    absl::StatusOr<HotlistSnapshot> snapshot = ReadHotlistSnapshot(view, partition);
    if (!snapshot.ok()) return snapshot.status();
    version[partition] = snapshot->seq;
    for (const HotlistEntry& entry : snapshot->listed) {
      *response.add_cards() = EntryOf(entry, partition, entry.seq());
    }
  }
  if (!caller.via_peer) {
    for (int32_t replica = 0; replica < deps_.replica_count; ++replica) {
      if (replica == deps_.replica_index) continue;
      v1::GetHotlistResponse part;
      absl::Status status =
          deps_.peer_forward(replica, "GetHotlist", caller.tenant, request, &part);
      if (!status.ok()) return PeerError(replica, "holding part of the hotlist", status);
      for (v1::HotlistEntry& entry : *part.mutable_cards())
        *response.add_cards() = std::move(entry);
      for (const auto& [partition, seq] : part.version().partition_seq()) {
        version[partition] = seq;
      }
    }
  }
  return response;
}

absl::StatusOr<v1::GetHotlistDeltaResponse> CardRegistryApi::GetHotlistDelta(
    const Caller& caller, const v1::GetHotlistDeltaRequest& request) const {
  if (request.limit() < 0 || request.limit() > kHotlistLimitDefault) {
    return Invalid("limit", "must be in [0, 10000]");
  }
  for (const auto& [partition, seq] : request.since().partition_seq()) {
    if (partition < 0 || partition >= deps_.partition_count) {
      return Invalid("since", absl::StrCat("partition ", partition, " is not in [0, ",
                                           deps_.partition_count, ")"));
    }
  }
  size_t remaining =
      static_cast<size_t>(request.limit() == 0 ? kHotlistLimitDefault : request.limit());
  const auto& since = request.since().partition_seq();
  auto since_of = [&](int32_t partition) -> uint64_t {
    auto it = since.find(partition);
    return it == since.end() ? 0 : it->second;
  };
  v1::GetHotlistDeltaResponse response;
  auto& version = *response.mutable_version()->mutable_partition_seq();
  const StateView view = ViewOf(*deps_.store);
  for (int32_t partition : OwnedPartitions()) {
    const uint64_t after = since_of(partition);
    version[partition] = after;
    if (remaining == 0) {
      absl::StatusOr<uint64_t> seq = ReadHotlistSeq(view, partition);
      if (!seq.ok()) return seq.status();
      if (*seq > after) response.set_more(true);
      continue;
    }
    absl::StatusOr<std::vector<HotlistChange>> changes =
        ReadHotlistDelta(view, partition, after, remaining);
    if (!changes.ok()) return changes.status();
    for (const HotlistChange& change : *changes) {
      *response.add_changes() = EntryOf(change.entry, partition, change.seq);
      version[partition] = change.seq;
    }
    remaining -= changes->size();
    if (remaining == 0) {
      absl::StatusOr<uint64_t> seq = ReadHotlistSeq(view, partition);
      if (!seq.ok()) return seq.status();
      if (*seq > version[partition]) response.set_more(true);
    }
  }
  if (!caller.via_peer) {
    for (int32_t replica = 0; replica < deps_.replica_count; ++replica) {
      if (replica == deps_.replica_index) continue;
      if (remaining == 0) {
        response.set_more(true);  // not asked: its partitions keep the caller's version
        continue;
      }
      v1::GetHotlistDeltaRequest part_request = request;
      part_request.set_limit(static_cast<int32_t>(remaining));
      v1::GetHotlistDeltaResponse part;
      absl::Status status =
          deps_.peer_forward(replica, "GetHotlistDelta", caller.tenant, part_request, &part);
      if (!status.ok()) return PeerError(replica, "holding part of the hotlist", status);
      remaining -= std::min(remaining, static_cast<size_t>(part.changes_size()));
      for (v1::HotlistEntry& entry : *part.mutable_changes()) {
        *response.add_changes() = std::move(entry);
      }
      for (const auto& [partition, seq] : part.version().partition_seq()) {
        version[partition] = seq;
      }
      if (part.more()) response.set_more(true);
    }
    // Every partition is in the version: those no replica reported keep where the caller was.
    for (int32_t partition = 0; partition < deps_.partition_count; ++partition) {
      if (version.find(partition) == version.end()) version[partition] = since_of(partition);
    }
  }
  return response;
}

}  // namespace tongka::card_registry
