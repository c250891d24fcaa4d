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

// The issued card a command on an existing card names: true with its issuer and record, or false
// with the refusal in *refused (a malformed card id, a key that is not the card id, a card not
// issued).
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
  *issuer = *city;
  *card = std::move(**stored);
  return true;
}

void PutCard(absl::string_view card_id, const CardRecord& card, StateBatch& batch) {
  CHECK(card.status() != v1::CARD_STATUS_UNSPECIFIED) << card_id;  // ReadCardRecord's pair
  batch.Put(CardKey(card_id), card.SerializeAsString());
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
      return ApplyCommand(record, event, batch);
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

  v1::Event out;
  absl::StatusOr<RequestOutcome> outcome;
  absl::string_view kind;
  switch (event.body_case()) {
    case v1::Event::kCardIssueRequested:
      kind = "issue";
      outcome = DecideIssue(record, event, batch, &out);
      break;
    case v1::Event::kCardStatusChangeRequested:
      kind = "status";
      outcome = DecideStatusChange(record, event, batch, &out);
      break;
    case v1::Event::kCardCloseRequested:
      kind = "close";
      outcome = DecideClose(record, event, batch, &out);
      break;
    default:
      return absl::InternalError("ApplyCommand called with a body that is no command");
  }
  if (!outcome.ok()) return outcome.status();
  batch.Put(outcome_key, outcome->SerializeAsString());

  std::string request_id;
  if (event.has_card_issue_requested()) request_id = event.card_issue_requested().request_id();
  if (event.has_card_status_change_requested()) {
    request_id = event.card_status_change_requested().request_id();
  }
  if (event.has_card_close_requested()) request_id = event.card_close_requested().request_id();
  if (outcome->accepted()) {
    CHECK(out.body_case() != v1::Event::BODY_NOT_SET) << "an accepted command has a decision";
    if (absl::Status s = AddToCounter(batch, internal::AcceptedKey(kind), 1); !s.ok()) return s;
  } else {
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
  out.set_event_id(state_store::DerivedEventId(kServiceName, record, "decision"));
  out.set_occurred_at_us(event.occurred_at_us());
  out.set_recorded_at_us(event.recorded_at_us());
  out.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
  out.mutable_source()->set_service(kServiceName);
  batch.AppendOutbox(kCardsTopic, std::string(record.key), out.SerializeAsString());
  return absl::OkStatus();
}

absl::StatusOr<RequestOutcome> CardLedger::DecideIssue(const event_log::Record& record,
                                                       const v1::Event& event, StateBatch& batch,
                                                       v1::Event* out) {
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
  absl::StatusOr<std::optional<CardRecord>> existing = ReadCardRecord(batch, card_id);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    return refuse("card_exists", "card_id", absl::StrCat("card ", card_id, " is already issued"));
  }
  const v1::CardForm form = request.form();
  if (form != v1::CARD_FORM_PHYSICAL && form != v1::CARD_FORM_VIRTUAL_NFC &&
      form != v1::CARD_FORM_QR) {
    return refuse("form", "form", "form must be PHYSICAL, VIRTUAL_NFC or QR");
  }
  if (form == v1::CARD_FORM_VIRTUAL_NFC && request.device_token().size() != kTokenBytes) {
    return refuse("device_token", "device_token",
                  absl::StrCat("a VIRTUAL_NFC card needs a ", kTokenBytes, "-byte device token"));
  }
  if (form != v1::CARD_FORM_VIRTUAL_NFC && !request.device_token().empty()) {
    return refuse("device_token", "device_token", "only a VIRTUAL_NFC card has a device token");
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
  card.set_status(v1::CARD_STATUS_ACTIVE);
  card.set_form(form);
  card.set_product(product);
  card.set_initial_balance_fen(request.initial_balance_fen());
  card.set_expires_at_us(request.expires_at_us());
  card.set_id_number_token(holder.id_number_token());
  card.set_phone_token(holder.phone_token());
  card.set_device_token(request.device_token());
  card.set_issued_offset(record.offset);
  card.set_issued_at_us(event.recorded_at_us());
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
  for (const std::string* token : {&holder.id_number_token(), &holder.phone_token()}) {
    if (!token->empty()) batch.Put(HolderKey(*issuer, *token, card_id), "");
  }

  v1::CardIssued* issued = out->mutable_card_issued();
  issued->set_request_id(request.request_id());
  issued->set_card_id(card_id);
  issued->set_issuer_city(*issuer);
  issued->set_form(form);
  *issued->mutable_holder() = holder;
  issued->set_initial_balance_fen(request.initial_balance_fen());
  issued->set_concession(request.concession());
  issued->set_product(product);
  issued->set_expires_at_us(request.expires_at_us());
  issued->set_device_token(request.device_token());
  issued->set_command_event_id(event.event_id());
  RequestOutcome outcome;
  outcome.set_accepted(true);
  outcome.set_card_id(card_id);
  outcome.set_status(v1::CARD_STATUS_ACTIVE);
  return outcome;
}

absl::StatusOr<RequestOutcome> CardLedger::DecideStatusChange(const event_log::Record& record,
                                                              const v1::Event& event,
                                                              StateBatch& batch, v1::Event* out) {
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
                                                       v1::Event* out) {
  const v1::CardCloseRequested& request = event.card_close_requested();
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
  if (!IsIssuer(event.source(), issuer_city) && event.source().kind() != v1::TENANT_KIND_MINISTRY) {
    return refuse(
        "issuer_only", "card_id",
        absl::StrCat("only city ", issuer_city, " (the issuer) or the ministry closes it"));
  }
  const v1::CardStatus from = card.status();
  if (from == v1::CARD_STATUS_CLOSED) {
    return refuse("card_closed", "card_id", absl::StrCat("card ", card_id, " is closed"));
  }
  // The balance as this replica has applied the card's transactions so far: in the decision
  // event only, never stored (card_ledger.h, "Determinism").
  const int64_t balance_owed_fen = CurrentBalanceFen(card);
  card.set_status(v1::CARD_STATUS_CLOSED);
  card.set_status_changes(card.status_changes() + 1);
  card.set_changed_offset(record.offset);
  PutCard(card_id, card, batch);
  absl::StatusOr<uint64_t> seq = AddHotlistChange(record.partition, card_id, card, batch);
  if (!seq.ok()) return seq.status();

  v1::CardStatusChanged* changed = out->mutable_card_status_changed();
  changed->set_request_id(request.request_id());
  changed->set_card_id(card_id);
  changed->set_old_status(from);
  changed->set_new_status(v1::CARD_STATUS_CLOSED);
  changed->set_reason(request.reason());
  changed->set_hotlist_version(*seq);
  changed->set_block_reason(card.block_reason());
  changed->set_actor(request.actor());
  changed->set_command_event_id(event.event_id());
  changed->set_balance_owed_fen(balance_owed_fen);
  RequestOutcome outcome;
  outcome.set_accepted(true);
  outcome.set_card_id(card_id);
  outcome.set_status(v1::CARD_STATUS_CLOSED);
  outcome.set_hotlist_version(*seq);
  return outcome;
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
