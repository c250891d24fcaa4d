#include "services/card_registry/card_ledger.h"

#include <glog/logging.h>

#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/txn/card_id.h"
#include "services/card_registry/card_registry_keys.h"
#include "services/card_registry/card_registry_readers.h"

namespace tongka::card_registry {
namespace {

using internal::AddToCounter;
using internal::ReadMessage;
using state_store::StateBatch;

// A refusal: the outcome names its rule and the request field it is about.
RequestOutcome Refused(absl::string_view card_id, absl::string_view rule, absl::string_view field,
                       std::string message) {
  RequestOutcome outcome;
  outcome.set_card_id(std::string(card_id));
  outcome.set_rule(std::string(rule));
  outcome.set_field(std::string(field));
  outcome.set_message(std::move(message));
  return outcome;
}

// The card id's issuer, or the refusal ParseCardId names ("card_id_format", "card_id_luhn"); a
// command whose card id is not its record's key is refused too: it would sit in a partition its
// card does not hash to, and its hotlist change would land in the wrong partition.
absl::StatusOr<uint32_t> IssuerOf(const event_log::Record& record, absl::string_view card_id,
                                  RequestOutcome* refused) {
  absl::StatusOr<uint32_t> issuer = txn::ParseCardId(card_id);
  if (!issuer.ok()) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(issuer.status().message(), absl::MaxSplits(": ", 1));
    *refused = Refused(card_id, parts.first, "card_id", std::string(issuer.status().message()));
    return issuer.status();
  }
  if (record.key != card_id) {
    *refused =
        Refused(card_id, "card_id_key", "card_id", "the command's record key is not its card id");
    return absl::InvalidArgumentError("card_id_key");
  }
  return issuer;
}

bool IsIssuer(const v1::Tenant& source, uint32_t issuer) {
  return source.kind() == v1::TENANT_KIND_CITY_OPERATOR && source.city() == issuer;
}

bool IsFraud(const v1::Tenant& source) {
  return source.kind() == v1::TENANT_KIND_PLATFORM && source.service() == "fraud";
}

bool IsOwnDecision(const v1::Tenant& source) {
  return source.kind() == v1::TENANT_KIND_PLATFORM && source.service() == kServiceName;
}

bool ValidBlockReason(v1::BlockReason reason) {
  return reason != v1::BLOCK_REASON_UNSPECIFIED && v1::BlockReason_IsValid(reason);
}

absl::StatusOr<std::optional<CardRecord>> ReadCardRecord(const StateBatch& batch,
                                                         absl::string_view card_id) {
  absl::StatusOr<std::optional<CardRecord>> card =
      ReadMessage<CardRecord>(ViewOf(batch), CardKey(card_id));
  if (card.ok() && card->has_value() && (*card)->status() == v1::CARD_STATUS_UNSPECIFIED) {
    return absl::InternalError(absl::StrCat("card ", card_id, " stored with no status"));
  }
  return card;
}

// The issued card a command on an existing card names: true with the issuer that manages it (its
// card id's city, or the successor that city's cards moved to in this partition) and its record,
// or false with the refusal in *refused (a malformed card id, a key that is not the card id, a
// card not issued).
absl::StatusOr<bool> IssuedCard(const event_log::Record& record, const std::string& card_id,
                                const StateBatch& batch, uint32_t* issuer, CardRecord* card,
                                RequestOutcome* refused) {
  absl::StatusOr<uint32_t> city = IssuerOf(record, card_id, refused);
  if (!city.ok()) return false;
  absl::StatusOr<std::optional<CardRecord>> stored = ReadCardRecord(batch, card_id);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    *refused = Refused(card_id, "unknown_card", "card_id",
                       absl::StrCat("card ", card_id, " is not issued"));
    return false;
  }
  absl::StatusOr<uint32_t> manager = ManagingIssuer(ViewOf(batch), record.partition, *city);
  if (!manager.ok()) return manager.status();
  *issuer = *manager;
  *card = std::move(**stored);
  return true;
}

void PutCard(absl::string_view card_id, const CardRecord& card, StateBatch& batch) {
  CHECK(card.status() != v1::CARD_STATUS_UNSPECIFIED) << card_id;  // ReadCardRecord's pair
  batch.Put(CardKey(card_id), card.SerializeAsString());
}

// A card id in a command field other than the record's key (a replacement, a virtual card):
// its issuer, or the refusal ParseCardId names.
absl::StatusOr<uint32_t> OtherCardIssuer(absl::string_view card_id, absl::string_view field,
                                         RequestOutcome* refused) {
  absl::StatusOr<uint32_t> issuer = txn::ParseCardId(card_id);
  if (!issuer.ok()) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(issuer.status().message(), absl::MaxSplits(": ", 1));
    *refused = Refused(card_id, parts.first, field, std::string(issuer.status().message()));
  }
  return issuer;
}

// The form of a new card and its device token: a VIRTUAL_NFC card is bound to a phone by a
// 32-byte token, no other form has one. The refusal, or nullopt when they agree.
std::optional<RequestOutcome> CheckForm(absl::string_view card_id, v1::CardForm form,
                                        absl::string_view device_token,
                                        absl::string_view form_field,
                                        absl::string_view token_field) {
  if (form != v1::CARD_FORM_PHYSICAL && form != v1::CARD_FORM_VIRTUAL_NFC &&
      form != v1::CARD_FORM_QR) {
    return Refused(card_id, "form", form_field, "form must be PHYSICAL, VIRTUAL_NFC or QR");
  }
  if (form == v1::CARD_FORM_VIRTUAL_NFC && device_token.size() != kTokenBytes) {
    return Refused(card_id, "device_token", token_field,
                   absl::StrCat("a VIRTUAL_NFC card needs a ", kTokenBytes, "-byte device token"));
  }
  if (form != v1::CARD_FORM_VIRTUAL_NFC && !device_token.empty()) {
    return Refused(card_id, "device_token", token_field,
                   "only a VIRTUAL_NFC card has a device token");
  }
  return std::nullopt;
}

}  // namespace

bool RegisterLess(const TxnRegister& a, const TxnRegister& b) {
  return std::make_tuple(a.card_counter(), a.occurred_at_us(), a.event_id_hash(),
                         a.balance_after_fen(), a.acquirer_city()) <
         std::make_tuple(b.card_counter(), b.occurred_at_us(), b.event_id_hash(),
                         b.balance_after_fen(), b.acquirer_city());
}

uint64_t StableHash64(absl::string_view bytes) {
  uint64_t hash = 14695981039346656037ULL;
  for (char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

absl::Status CardLedger::Apply(const event_log::Record& record, StateBatch& batch) {
  if (record.topic == kCardsTopic) return ApplyCards(record, batch);
  if (record.topic == kTxnTopic) return ApplyTxn(record, batch);
  return absl::FailedPreconditionError(absl::StrCat("card ledger applied to topic ", record.topic,
                                                    ": it reads ", kCardsTopic, " and ", kTxnTopic,
                                                    " only"));
}

absl::Status CardLedger::ApplyCards(const event_log::Record& record, StateBatch& batch) {
  v1::Event event;
  if (!event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size()))) {
    return AddToCounter(batch, internal::kCardsUnparseableKey, 1);
  }
  switch (event.body_case()) {
    case v1::Event::kCardIssueRequested:
    case v1::Event::kCardStatusChangeRequested:
    case v1::Event::kCardCloseRequested:
    case v1::Event::kCardReplaceRequested:
    case v1::Event::kVirtualCardLinkRequested:
      return ApplyCommand(record, event, batch);
    case v1::Event::kCardReplaced:
    case v1::Event::kVirtualCardLinked:
      // The second half of a replacement or a link, which the registry derived in the other
      // card's partition: a command here, and only when the registry wrote it.
      if (IsOwnDecision(event.source())) return ApplyCommand(record, event, batch);
      return AddToCounter(batch, internal::kForeignDecisionsKey, 1);
    case v1::Event::kCarriedBalanceReturned:
      if (IsOwnDecision(event.source())) return ApplyReturnedBalance(record, event, batch);
      return AddToCounter(batch, internal::kForeignDecisionsKey, 1);
    case v1::Event::kIssuerTransferred:
      if (IsOwnDecision(event.source())) return ApplyTransfer(record, event, batch);
      return AddToCounter(batch, internal::kForeignDecisionsKey, 1);
    case v1::Event::kCardIssued:
    case v1::Event::kCardStatusChanged:
    case v1::Event::kCommandRejected:
      // Our own decisions: the state already has them.
      if (IsOwnDecision(event.source())) return absl::OkStatus();
      return AddToCounter(batch, internal::kForeignDecisionsKey, 1);
    default:
      return AddToCounter(batch, internal::kUnsupportedKey, 1);
  }
}

absl::Status CardLedger::ApplyCommand(const event_log::Record& record, const v1::Event& event,
                                      StateBatch& batch) {
  if (event.event_id().empty()) return AddToCounter(batch, internal::kCardsUnparseableKey, 1);
  // A command applied before (a copy past the EventFilter's horizon, or fed twice) is a no-op:
  // the outcome under its event id is the answer, and the decision was written with it.
  const std::string outcome_key = OutcomeKey(event.event_id());
  absl::StatusOr<std::optional<std::string>> seen = batch.Get(outcome_key);
  if (!seen.ok()) return seen.status();
  if (seen->has_value()) return AddToCounter(batch, internal::kDuplicateCommandsKey, 1);

  Decision decision;
  absl::StatusOr<RequestOutcome> outcome;
  absl::string_view kind;
  std::string request_id;
  switch (event.body_case()) {
    case v1::Event::kCardIssueRequested:
      kind = "issue";
      request_id = event.card_issue_requested().request_id();
      outcome = DecideIssue(record, event, batch, &decision);
      break;
    case v1::Event::kCardStatusChangeRequested:
      kind = "status";
      request_id = event.card_status_change_requested().request_id();
      outcome = DecideStatusChange(record, event, batch, &decision);
      break;
    case v1::Event::kCardCloseRequested:
      kind = "close";
      request_id = event.card_close_requested().request_id();
      outcome = DecideClose(record, event, batch, &decision);
      break;
    case v1::Event::kCardReplaceRequested:
      kind = "replace";
      request_id = event.card_replace_requested().request_id();
      outcome = DecideReplace(record, event, batch, &decision);
      break;
    case v1::Event::kCardReplaced:
      kind = "carry";
      request_id = event.card_replaced().request_id();
      outcome = DecideCarry(record, event, batch, &decision);
      break;
    case v1::Event::kVirtualCardLinkRequested:
      kind = "link";
      request_id = event.virtual_card_link_requested().request_id();
      outcome = DecideLink(record, event, batch, &decision);
      break;
    case v1::Event::kVirtualCardLinked:
      kind = "linked";
      request_id = event.virtual_card_linked().request_id();
      outcome = DecideLinked(record, event, batch, &decision);
      break;
    default:
      return absl::InternalError("ApplyCommand called with a body that is no command");
  }
  if (!outcome.ok()) return outcome.status();
  batch.Put(outcome_key, outcome->SerializeAsString());

  v1::Event& out = decision.event;
  if (outcome->accepted()) {
    CHECK(out.body_case() != v1::Event::BODY_NOT_SET) << "an accepted command has a decision";
    if (absl::Status s = AddToCounter(batch, internal::AcceptedKey(kind), 1); !s.ok()) return s;
  } else {
    out.Clear();
    decision.key.clear();
    v1::CommandRejected* rejected = out.mutable_command_rejected();
    rejected->set_request_id(request_id);
    rejected->set_field(outcome->field());
    rejected->set_rule(outcome->rule());
    rejected->set_message(outcome->message());
    rejected->set_command_event_id(event.event_id());
    rejected->set_card_id(outcome->card_id());
    if (absl::Status s = AddToCounter(batch, internal::RefusedKey(outcome->rule()), 1); !s.ok()) {
      return s;
    }
  }
  const std::string decision_key = decision.key.empty() ? std::string(record.key) : decision.key;
  AppendDecision(record, event, "decision", decision_key, std::move(out), batch);
  for (Decision::Also& also : decision.also) {
    AppendDecision(record, event, also.label, also.key, std::move(also.event), batch);
  }
  return absl::OkStatus();
}

void CardLedger::AppendDecision(const event_log::Record& record, const v1::Event& command,
                                absl::string_view label, const std::string& key, v1::Event event,
                                StateBatch& batch) {
  event.set_event_id(DecisionEventId(record, label));
  event.set_occurred_at_us(command.occurred_at_us());
  event.set_recorded_at_us(command.recorded_at_us());
  event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
  event.mutable_source()->set_service(kServiceName);
  batch.AppendOutbox(kCardsTopic, key, event.SerializeAsString());
}

std::string DecisionEventId(const event_log::Record& command, absl::string_view label) {
  return state_store::DerivedEventId(kServiceName, command, label);
}

absl::Status CardLedger::ApplyTransfer(const event_log::Record& record, const v1::Event& event,
                                       StateBatch& batch) {
  const v1::IssuerTransferred& transfer = event.issuer_transferred();
  // The member registry writes one copy per partition, keyed to hash there; a copy meant for
  // another partition, or naming no cities, is a wiring bug, counted rather than applied.
  if (transfer.cards_partition() != record.partition || transfer.from_city() == 0 ||
      transfer.to_city() == 0 || transfer.from_city() == transfer.to_city()) {
    return AddToCounter(batch, internal::kForeignDecisionsKey, 1);
  }
  const std::string key = SuccessorKey(record.partition, transfer.from_city());
  absl::StatusOr<std::optional<std::string>> seen = batch.Get(key);
  if (!seen.ok()) return seen.status();
  if (seen->has_value()) return AddToCounter(batch, internal::kDuplicateCommandsKey, 1);
  batch.Put(key, absl::StrCat(transfer.to_city()));
  return AddToCounter(batch, internal::AcceptedKey("transfer"), 1);
}

absl::Status CardLedger::ApplyReturnedBalance(const event_log::Record& record,
                                              const v1::Event& event, StateBatch& batch) {
  const v1::CarriedBalanceReturned& returned = event.carried_balance_returned();
  // Like a command, applied once by its event id, also past the EventFilter's horizon.
  const std::string outcome_key = OutcomeKey(event.event_id());
  absl::StatusOr<std::optional<std::string>> seen = batch.Get(outcome_key);
  if (!seen.ok()) return seen.status();
  if (seen->has_value() || event.event_id().empty()) {
    return AddToCounter(batch, internal::kDuplicateCommandsKey, 1);
  }
  RequestOutcome refused;
  uint32_t issuer_city = 0;
  CardRecord card;
  absl::StatusOr<bool> found =
      IssuedCard(record, returned.old_card_id(), batch, &issuer_city, &card, &refused);
  if (!found.ok()) return found.status();
  // The registry returns a balance only to the closed card it carried it from, in that card's
  // partition; anything else is a wiring bug, counted rather than applied.
  if (!*found || card.status() != v1::CARD_STATUS_CLOSED || returned.amount_fen() < 0 ||
      card.replaced_by() != returned.new_card_id()) {
    return AddToCounter(batch, internal::kForeignDecisionsKey, 1);
  }
  card.set_balance_owed_fen(card.balance_owed_fen() + returned.amount_fen());
  PutCard(returned.old_card_id(), card, batch);
  RequestOutcome applied;
  applied.set_accepted(true);
  applied.set_card_id(returned.old_card_id());
  applied.set_status(v1::CARD_STATUS_CLOSED);
  batch.Put(outcome_key, applied.SerializeAsString());
  return AddToCounter(batch, internal::AcceptedKey("returned"), 1);
}

absl::StatusOr<RequestOutcome> CardLedger::DecideIssue(const event_log::Record& record,
                                                       const v1::Event& event, StateBatch& batch,
                                                       Decision* decision) {
  const v1::CardIssueRequested& request = event.card_issue_requested();
  const std::string& card_id = request.card_id();
  auto refuse = [&](absl::string_view rule, absl::string_view field, std::string message) {
    return Refused(card_id, rule, field, std::move(message));
  };
  RequestOutcome refused;
  absl::StatusOr<uint32_t> issuer = IssuerOf(record, card_id, &refused);
  if (!issuer.ok()) return refused;
  if (!IsIssuer(event.source(), *issuer)) {
    return refuse("issuer_only", "card_id",
                  absl::StrCat("only city ", *issuer, ", the card id's issuer, issues it"));
  }
  absl::StatusOr<uint32_t> manager = ManagingIssuer(ViewOf(batch), record.partition, *issuer);
  if (!manager.ok()) return manager.status();
  if (*manager != *issuer) {
    return refuse("issuer_transferred", "card_id",
                  absl::StrCat("city ", *issuer, "'s cards moved to city ", *manager,
                               ", which issues its own card ids"));
  }
  absl::StatusOr<std::optional<CardRecord>> existing = ReadCardRecord(batch, card_id);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    return refuse("card_exists", "card_id", absl::StrCat("card ", card_id, " is already issued"));
  }
  if (std::optional<RequestOutcome> bad =
          CheckForm(card_id, request.form(), request.device_token(), "form", "device_token")) {
    return *bad;
  }
  const v1::CardProduct product = request.product();
  if (product != v1::CARD_PRODUCT_STORED_VALUE && product != v1::CARD_PRODUCT_CONCESSION) {
    return refuse("product", "product", "product must be STORED_VALUE or CONCESSION");
  }
  if (request.concession() != (product == v1::CARD_PRODUCT_CONCESSION)) {
    return refuse("product", "concession", "concession must be true exactly for CONCESSION");
  }
  if (product == v1::CARD_PRODUCT_CONCESSION && request.expires_at_us() <= event.recorded_at_us()) {
    return refuse("expires_at", "expires_at_us",
                  "a CONCESSION card needs an expiry after the request was recorded");
  }
  if (product == v1::CARD_PRODUCT_STORED_VALUE && request.expires_at_us() != 0) {
    return refuse("expires_at", "expires_at_us", "a STORED_VALUE card has no expiry");
  }
  if (request.initial_balance_fen() < 0 || request.initial_balance_fen() > kInitialBalanceMaxFen) {
    return refuse("initial_balance_fen", "initial_balance_fen",
                  absl::StrCat("initial_balance_fen must be in [0, ", kInitialBalanceMaxFen, "]"));
  }
  const v1::HolderTokens& holder = request.holder();
  if (!holder.id_number_token().empty() && holder.id_number_token().size() != kTokenBytes) {
    return refuse("holder", "holder.id_number_token",
                  absl::StrCat("a holder token is empty or ", kTokenBytes, " bytes"));
  }
  if (!holder.phone_token().empty() && holder.phone_token().size() != kTokenBytes) {
    return refuse("holder", "holder.phone_token",
                  absl::StrCat("a holder token is empty or ", kTokenBytes, " bytes"));
  }

  CardRecord card;
  card.set_form(request.form());
  card.set_product(product);
  card.set_initial_balance_fen(request.initial_balance_fen());
  card.set_expires_at_us(request.expires_at_us());
  card.set_id_number_token(holder.id_number_token());
  card.set_phone_token(holder.phone_token());
  card.set_device_token(request.device_token());
  return IssueNewCard(record, event, card_id, *issuer, request.request_id(), std::move(card), batch,
                      decision);
}

absl::StatusOr<RequestOutcome> CardLedger::IssueNewCard(const event_log::Record& record,
                                                        const v1::Event& command,
                                                        const std::string& card_id, uint32_t issuer,
                                                        const std::string& request_id,
                                                        CardRecord card, StateBatch& batch,
                                                        Decision* decision) {
  card.set_status(v1::CARD_STATUS_ACTIVE);
  card.set_issued_offset(record.offset);
  card.set_issued_at_us(command.recorded_at_us());
  // Transactions seen before the card was issued: their register merges into the card's.
  absl::StatusOr<std::optional<TxnRegister>> early =
      ReadMessage<TxnRegister>(ViewOf(batch), UnissuedKey(card_id));
  if (!early.ok()) return early.status();
  if (early->has_value()) {
    *card.mutable_last_txn() = **early;
    batch.Delete(UnissuedKey(card_id));
    if (absl::Status s = AddToCounter(batch, internal::kUnissuedCardsKey, -1); !s.ok()) return s;
  }
  PutCard(card_id, card, batch);
  for (const std::string* token : {&card.id_number_token(), &card.phone_token()}) {
    if (!token->empty()) batch.Put(HolderKey(issuer, *token, card_id), "");
  }

  v1::CardIssued* issued = decision->event.mutable_card_issued();
  issued->set_request_id(request_id);
  issued->set_card_id(card_id);
  issued->set_issuer_city(issuer);
  issued->set_form(card.form());
  issued->mutable_holder()->set_id_number_token(card.id_number_token());
  issued->mutable_holder()->set_phone_token(card.phone_token());
  issued->set_initial_balance_fen(card.initial_balance_fen());
  issued->set_concession(card.product() == v1::CARD_PRODUCT_CONCESSION);
  issued->set_product(card.product());
  issued->set_expires_at_us(card.expires_at_us());
  issued->set_device_token(card.device_token());
  issued->set_command_event_id(command.event_id());
  issued->set_carried_balance_fen(card.carried_balance_fen());
  issued->set_carried_from_card_id(card.carried_from());
  issued->set_linked_card_id(card.linked_card());
  RequestOutcome outcome;
  outcome.set_accepted(true);
  outcome.set_card_id(card_id);
  outcome.set_status(v1::CARD_STATUS_ACTIVE);
  return outcome;
}

absl::StatusOr<RequestOutcome> CardLedger::DecideStatusChange(const event_log::Record& record,
                                                              const v1::Event& event,
                                                              StateBatch& batch,
                                                              Decision* decision) {
  v1::Event* out = &decision->event;
  const v1::CardStatusChangeRequested& request = event.card_status_change_requested();
  const std::string& card_id = request.card_id();
  auto refuse = [&](absl::string_view rule, absl::string_view field, std::string message) {
    return Refused(card_id, rule, field, std::move(message));
  };
  RequestOutcome refused;
  uint32_t issuer_city = 0;
  CardRecord card;
  absl::StatusOr<bool> found = IssuedCard(record, card_id, batch, &issuer_city, &card, &refused);
  if (!found.ok()) return found.status();
  if (!*found) return refused;
  const v1::CardStatus target = request.new_status();
  const v1::Tenant& source = event.source();
  if (IsFraud(source)) {
    if (target != v1::CARD_STATUS_BLOCKED) {
      return refuse("fraud_block_only", "new_status", "fraud may only block a card");
    }
    if (request.alert_id().empty()) {
      return refuse("fraud_block_only", "alert_id", "fraud blocks a card for an alert");
    }
  } else if (!IsIssuer(source, issuer_city) && source.kind() != v1::TENANT_KIND_MINISTRY) {
    return refuse(
        "issuer_only", "card_id",
        absl::StrCat("only city ", issuer_city, " (the issuer) or the ministry changes it"));
  }
  const v1::CardStatus from = card.status();
  if (target == v1::CARD_STATUS_BLOCKED) {
    if (!ValidBlockReason(request.block_reason())) {
      return refuse("block_reason", "block_reason", "a block names its reason");
    }
    if (from == v1::CARD_STATUS_CLOSED) {
      return refuse("card_closed", "card_id", absl::StrCat("card ", card_id, " is closed"));
    }
    if (from != v1::CARD_STATUS_ACTIVE) {
      return refuse("card_not_active", "card_id",
                    absl::StrCat("card ", card_id, " is ", v1::CardStatus_Name(from)));
    }
    card.set_block_reason(request.block_reason());
  } else if (target == v1::CARD_STATUS_ACTIVE) {
    if (from == v1::CARD_STATUS_CLOSED) {
      return refuse("card_closed", "card_id", absl::StrCat("card ", card_id, " is closed"));
    }
    if (from != v1::CARD_STATUS_BLOCKED) {
      return refuse("card_not_blocked", "card_id",
                    absl::StrCat("card ", card_id, " is ", v1::CardStatus_Name(from)));
    }
    card.set_block_reason(v1::BLOCK_REASON_UNSPECIFIED);
  } else if (target == v1::CARD_STATUS_CLOSED) {
    return refuse("new_status", "new_status", "a card is closed with CardCloseRequested");
  } else {
    return refuse("new_status", "new_status", "new_status must be BLOCKED or ACTIVE");
  }
  card.set_status(target);
  card.set_status_changes(card.status_changes() + 1);
  card.set_changed_offset(record.offset);
  PutCard(card_id, card, batch);
  absl::StatusOr<uint64_t> seq = AddHotlistChange(record.partition, card_id, card, batch);
  if (!seq.ok()) return seq.status();

  v1::CardStatusChanged* changed = out->mutable_card_status_changed();
  changed->set_request_id(request.request_id());
  changed->set_card_id(card_id);
  changed->set_old_status(from);
  changed->set_new_status(target);
  changed->set_reason(request.reason());
  changed->set_hotlist_version(*seq);
  changed->set_block_reason(card.block_reason());
  changed->set_actor(request.actor());
  changed->set_alert_id(request.alert_id());
  changed->set_command_event_id(event.event_id());
  RequestOutcome outcome;
  outcome.set_accepted(true);
  outcome.set_card_id(card_id);
  outcome.set_status(target);
  outcome.set_hotlist_version(*seq);
  return outcome;
}

absl::StatusOr<RequestOutcome> CardLedger::DecideClose(const event_log::Record& record,
                                                       const v1::Event& event, StateBatch& batch,
                                                       Decision* decision) {
  const v1::CardCloseRequested& request = event.card_close_requested();
  ClosedCard closed;
  absl::StatusOr<RequestOutcome> outcome =
      CloseFor(record, event, request.card_id(), "closes", request.request_id(), request.reason(),
               request.actor(), nullptr, batch, decision, &closed);
  // A plain close owes the holder the balance (in the decision event only, never stored:
  // card_ledger.h, "Determinism").
  if (outcome.ok() && outcome->accepted()) {
    decision->event.mutable_card_status_changed()->set_balance_owed_fen(closed.balance_fen);
  }
  return outcome;
}

absl::StatusOr<RequestOutcome> CardLedger::CloseFor(
    const event_log::Record& record, const v1::Event& event, const std::string& card_id,
    absl::string_view verb, const std::string& request_id, const std::string& reason,
    const std::string& actor,
    const std::function<std::optional<RequestOutcome>(uint32_t issuer, CardRecord* card)>& check,
    StateBatch& batch, Decision* decision, ClosedCard* closed) {
  RequestOutcome refused;
  CardRecord& card = closed->record;
  absl::StatusOr<bool> found = IssuedCard(record, card_id, batch, &closed->issuer, &card, &refused);
  if (!found.ok()) return found.status();
  if (!*found) return refused;
  if (!IsIssuer(event.source(), closed->issuer) &&
      event.source().kind() != v1::TENANT_KIND_MINISTRY) {
    return Refused(
        card_id, "issuer_only", "card_id",
        absl::StrCat("only city ", closed->issuer, " (the issuer) or the ministry ", verb, " it"));
  }
  const v1::CardStatus from = card.status();
  if (from == v1::CARD_STATUS_CLOSED) {
    return Refused(card_id, "card_closed", "card_id", absl::StrCat("card ", card_id, " is closed"));
  }
  if (check != nullptr) {
    if (std::optional<RequestOutcome> bad = check(closed->issuer, &card)) return *bad;
  }
  // The balance as this replica has applied the card's transactions so far.
  closed->balance_fen = CurrentBalanceFen(card);
  absl::StatusOr<uint64_t> seq = CloseRecord(record, card_id, &card, batch);
  if (!seq.ok()) return seq.status();

  v1::CardStatusChanged* changed = decision->event.mutable_card_status_changed();
  changed->set_request_id(request_id);
  changed->set_card_id(card_id);
  changed->set_old_status(from);
  changed->set_new_status(v1::CARD_STATUS_CLOSED);
  changed->set_reason(reason);
  changed->set_hotlist_version(*seq);
  changed->set_block_reason(card.block_reason());
  changed->set_actor(actor);
  changed->set_command_event_id(event.event_id());
  RequestOutcome outcome;
  outcome.set_accepted(true);
  outcome.set_card_id(card_id);
  outcome.set_status(v1::CARD_STATUS_CLOSED);
  outcome.set_hotlist_version(*seq);
  return outcome;
}

absl::StatusOr<uint64_t> CardLedger::CloseRecord(const event_log::Record& record,
                                                 absl::string_view card_id, CardRecord* card,
                                                 StateBatch& batch) {
  card->set_status(v1::CARD_STATUS_CLOSED);
  card->set_status_changes(card->status_changes() + 1);
  card->set_changed_offset(record.offset);
  PutCard(card_id, *card, batch);
  return AddHotlistChange(record.partition, card_id, *card, batch);
}

absl::StatusOr<RequestOutcome> CardLedger::DecideReplace(const event_log::Record& record,
                                                         const v1::Event& event, StateBatch& batch,
                                                         Decision* decision) {
  const v1::CardReplaceRequested& request = event.card_replace_requested();
  const std::string& card_id = request.old_card_id();
  const std::string& new_card_id = request.new_card_id();
  // The replacement's own rules, checked once the old card may be closed.
  auto check = [&](uint32_t issuer, CardRecord* card) -> std::optional<RequestOutcome> {
    RequestOutcome refused;
    absl::StatusOr<uint32_t> new_issuer = OtherCardIssuer(new_card_id, "new_card_id", &refused);
    if (!new_issuer.ok()) return refused;
    if (*new_issuer != issuer) {
      return Refused(card_id, "new_card_issuer", "new_card_id",
                     absl::StrCat("a replacement is issued by city ", issuer, ", the old card's"));
    }
    if (new_card_id == card_id) {
      return Refused(card_id, "new_card_same", "new_card_id", "a card does not replace itself");
    }
    if (std::optional<RequestOutcome> bad = CheckForm(
            card_id, request.new_form(), request.device_token(), "new_form", "device_token")) {
      return bad;
    }
    card->set_replaced_by(new_card_id);
    return std::nullopt;
  };
  ClosedCard closed;
  absl::StatusOr<RequestOutcome> outcome =
      CloseFor(record, event, card_id, "replaces", request.request_id(), request.reason(),
               request.actor(), check, batch, decision, &closed);
  if (!outcome.ok() || !outcome->accepted()) return outcome;
  // Carried, not owed: balance_owed_fen stays 0. What the old card held as this replica has
  // applied its transactions so far; the CardReplaced on the log is the fact the new card and
  // settlement use (card_ledger.h).
  decision->event.mutable_card_status_changed()->set_replaced_by_card_id(new_card_id);
  const CardRecord& card = closed.record;
  Decision::Also& carry = decision->also.emplace_back();
  carry.label = kCarryLabel;
  carry.key = new_card_id;
  v1::CardReplaced* replaced = carry.event.mutable_card_replaced();
  replaced->set_request_id(request.request_id());
  replaced->set_old_card_id(card_id);
  replaced->set_new_card_id(new_card_id);
  replaced->set_carried_balance_fen(closed.balance_fen);
  replaced->set_reason(request.reason());
  replaced->mutable_holder()->set_id_number_token(card.id_number_token());
  replaced->mutable_holder()->set_phone_token(card.phone_token());
  replaced->set_form(request.new_form());
  replaced->set_product(card.product());
  replaced->set_expires_at_us(card.expires_at_us());
  replaced->set_device_token(request.device_token());
  replaced->set_command_event_id(event.event_id());
  replaced->set_issuer_city(closed.issuer);
  replaced->set_actor(request.actor());
  outcome->set_derived_card_id(new_card_id);
  return outcome;
}

absl::StatusOr<RequestOutcome> CardLedger::DecideCarry(const event_log::Record& record,
                                                       const v1::Event& event, StateBatch& batch,
                                                       Decision* decision) {
  const v1::CardReplaced& carry = event.card_replaced();
  const std::string& card_id = carry.new_card_id();
  // Whatever stops the new card, the balance goes back to the old card as owed to its holder.
  auto give_back = [&](RequestOutcome refusal) {
    Decision::Also& back = decision->also.emplace_back();
    back.label = kReturnedLabel;
    back.key = carry.old_card_id();
    v1::CarriedBalanceReturned* returned = back.event.mutable_carried_balance_returned();
    returned->set_old_card_id(carry.old_card_id());
    returned->set_new_card_id(card_id);
    returned->set_amount_fen(carry.carried_balance_fen());
    returned->set_rule(refusal.rule());
    returned->set_carry_event_id(event.event_id());
    returned->set_issuer_city(carry.issuer_city());
    return refusal;
  };
  RequestOutcome refused;
  absl::StatusOr<uint32_t> issuer = IssuerOf(record, card_id, &refused);
  if (!issuer.ok()) return give_back(refused);
  if (*issuer != carry.issuer_city()) {
    return give_back(Refused(card_id, "new_card_issuer", "new_card_id",
                             "a replacement is issued by the old card's city"));
  }
  absl::StatusOr<std::optional<CardRecord>> existing = ReadCardRecord(batch, card_id);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    return give_back(Refused(card_id, "card_exists", "new_card_id",
                             absl::StrCat("card ", card_id, " is already issued")));
  }
  CardRecord card;
  card.set_form(carry.form());
  card.set_product(carry.product());
  card.set_expires_at_us(carry.expires_at_us());
  card.set_id_number_token(carry.holder().id_number_token());
  card.set_phone_token(carry.holder().phone_token());
  card.set_device_token(carry.device_token());
  card.set_carried_balance_fen(carry.carried_balance_fen());
  card.set_carried_from(carry.old_card_id());
  return IssueNewCard(record, event, card_id, *issuer, carry.request_id(), std::move(card), batch,
                      decision);
}

absl::StatusOr<RequestOutcome> CardLedger::DecideLink(const event_log::Record& record,
                                                      const v1::Event& event, StateBatch& batch,
                                                      Decision* decision) {
  const v1::VirtualCardLinkRequested& request = event.virtual_card_link_requested();
  const std::string& card_id = request.physical_card_id();
  const std::string& virtual_card_id = request.virtual_card_id();
  auto refuse = [&](absl::string_view rule, absl::string_view field, std::string message) {
    return Refused(card_id, rule, field, std::move(message));
  };
  RequestOutcome refused;
  uint32_t issuer_city = 0;
  CardRecord card;
  absl::StatusOr<bool> found = IssuedCard(record, card_id, batch, &issuer_city, &card, &refused);
  if (!found.ok()) return found.status();
  if (!*found) return refused;
  if (!IsIssuer(event.source(), issuer_city)) {
    return refuse("issuer_only", "card_id",
                  absl::StrCat("only city ", issuer_city, ", the issuer, links its cards"));
  }
  if (card.form() != v1::CARD_FORM_PHYSICAL) {
    return refuse("link_physical_only", "card_id",
                  "a virtual card is linked to a PHYSICAL card of the holder");
  }
  if (card.status() != v1::CARD_STATUS_ACTIVE) {
    return refuse("card_not_active", "card_id",
                  absl::StrCat("card ", card_id, " is ", v1::CardStatus_Name(card.status())));
  }
  absl::StatusOr<uint32_t> virtual_issuer =
      OtherCardIssuer(virtual_card_id, "virtual_card_id", &refused);
  if (!virtual_issuer.ok()) return refused;
  if (*virtual_issuer != issuer_city) {
    return refuse("virtual_card_issuer", "virtual_card_id",
                  absl::StrCat("a linked card is issued by city ", issuer_city));
  }
  if (virtual_card_id == card_id) {
    return refuse("virtual_card_same", "virtual_card_id", "a card does not link to itself");
  }
  if (request.form() != v1::CARD_FORM_VIRTUAL_NFC && request.form() != v1::CARD_FORM_QR) {
    return refuse("form", "form", "a linked card is VIRTUAL_NFC or QR");
  }
  if (std::optional<RequestOutcome> bad =
          CheckForm(card_id, request.form(), request.device_token(), "form", "device_token")) {
    return *bad;
  }
  // The decision is the derived command itself, keyed by the virtual card: the link changes
  // nothing of the physical card.
  decision->key = virtual_card_id;
  v1::VirtualCardLinked* linked = decision->event.mutable_virtual_card_linked();
  linked->set_request_id(request.request_id());
  linked->set_virtual_card_id(virtual_card_id);
  linked->set_physical_card_id(card_id);
  linked->set_form(request.form());
  linked->set_device_token(request.device_token());
  linked->mutable_holder()->set_id_number_token(card.id_number_token());
  linked->mutable_holder()->set_phone_token(card.phone_token());
  linked->set_product(card.product());
  linked->set_expires_at_us(card.expires_at_us());
  linked->set_command_event_id(event.event_id());
  linked->set_issuer_city(issuer_city);
  linked->set_actor(request.actor());
  RequestOutcome outcome;
  outcome.set_accepted(true);
  outcome.set_card_id(card_id);
  outcome.set_status(card.status());
  outcome.set_derived_card_id(virtual_card_id);
  return outcome;
}

absl::StatusOr<RequestOutcome> CardLedger::DecideLinked(const event_log::Record& record,
                                                        const v1::Event& event, StateBatch& batch,
                                                        Decision* decision) {
  const v1::VirtualCardLinked& linked = event.virtual_card_linked();
  const std::string& card_id = linked.virtual_card_id();
  RequestOutcome refused;
  absl::StatusOr<uint32_t> issuer = IssuerOf(record, card_id, &refused);
  if (!issuer.ok()) return refused;
  if (*issuer != linked.issuer_city()) {
    return Refused(card_id, "virtual_card_issuer", "virtual_card_id",
                   "a linked card is issued by the physical card's city");
  }
  absl::StatusOr<std::optional<CardRecord>> existing = ReadCardRecord(batch, card_id);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    return Refused(card_id, "card_exists", "virtual_card_id",
                   absl::StrCat("card ", card_id, " is already issued"));
  }
  CardRecord card;
  card.set_form(linked.form());
  card.set_product(linked.product());
  card.set_expires_at_us(linked.expires_at_us());
  card.set_id_number_token(linked.holder().id_number_token());
  card.set_phone_token(linked.holder().phone_token());
  card.set_device_token(linked.device_token());
  card.set_linked_card(linked.physical_card_id());
  return IssueNewCard(record, event, card_id, *issuer, linked.request_id(), std::move(card), batch,
                      decision);
}

absl::StatusOr<uint64_t> CardLedger::AddHotlistChange(int32_t partition, absl::string_view card_id,
                                                      const CardRecord& card, StateBatch& batch) {
  absl::StatusOr<uint64_t> last = ReadHotlistSeq(ViewOf(batch), partition);
  if (!last.ok()) return last.status();
  const uint64_t seq = *last + 1;
  HotlistEntry entry;
  entry.set_card_id(std::string(card_id));
  entry.set_listed(card.status() != v1::CARD_STATUS_ACTIVE);
  entry.set_status(card.status());
  entry.set_reason(card.block_reason());
  batch.Put(HotlistSeqKey(partition), absl::StrCat(seq));
  batch.Put(HotlistKey(partition, seq), entry.SerializeAsString());
  if (entry.listed()) {
    HotlistEntry listed = entry;
    listed.set_seq(seq);
    batch.Put(ListedKey(partition, card_id), listed.SerializeAsString());
  } else {
    batch.Delete(ListedKey(partition, card_id));
  }
  return seq;
}

absl::Status CardLedger::ApplyTxn(const event_log::Record& record, StateBatch& batch) {
  v1::Event event;
  if (!event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size()))) {
    return AddToCounter(batch, internal::kTxnUnparseableKey, 1);
  }
  const v1::TxnCommon* txn = nullptr;
  switch (event.body_case()) {
    case v1::Event::kTap:
      txn = &event.tap().txn();
      break;
    case v1::Event::kLoad:
      txn = &event.load().txn();
      break;
    case v1::Event::kRefund:
      txn = &event.refund().txn();
      break;
    default:
      return AddToCounter(batch, internal::kTxnUnparseableKey, 1);
  }
  if (!txn::ParseCardId(txn->card_id()).ok()) {
    return AddToCounter(batch, internal::kTxnUnparseableKey, 1);
  }
  TxnRegister seen;
  seen.set_card_counter(txn->card_counter());
  seen.set_occurred_at_us(event.occurred_at_us());
  seen.set_event_id_hash(StableHash64(event.event_id()));
  seen.set_balance_after_fen(txn->balance_after_fen());
  seen.set_acquirer_city(txn->acquirer_city());

  absl::StatusOr<std::optional<CardRecord>> card = ReadCardRecord(batch, txn->card_id());
  if (!card.ok()) return card.status();
  if (card->has_value()) {
    if ((*card)->has_last_txn() && !RegisterLess((*card)->last_txn(), seen)) {
      return absl::OkStatus();
    }
    *(*card)->mutable_last_txn() = std::move(seen);
    PutCard(txn->card_id(), **card, batch);
    return absl::OkStatus();
  }
  // Not issued (yet): the same register under u/, merged when the card is issued.
  const std::string key = UnissuedKey(txn->card_id());
  absl::StatusOr<std::optional<TxnRegister>> early = ReadMessage<TxnRegister>(ViewOf(batch), key);
  if (!early.ok()) return early.status();
  if (early->has_value() && !RegisterLess(**early, seen)) return absl::OkStatus();
  if (!early->has_value()) {
    if (absl::Status s = AddToCounter(batch, internal::kUnissuedCardsKey, 1); !s.ok()) return s;
  }
  batch.Put(key, seen.SerializeAsString());
  return absl::OkStatus();
}

}  // namespace tongka::card_registry
