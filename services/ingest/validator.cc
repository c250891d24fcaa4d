#include "services/ingest/validator.h"

#include <glog/logging.h>
#include <openssl/crypto.h>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/message.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/wire_format_lite.h"
#include "libs/crypto/sm4_cmac.h"
#include "libs/server/tenant.h"
#include "libs/txn/card_id.h"
#include "libs/txn/cities.h"
#include "libs/txn/mac_input.h"
#include "libs/txn/terminal_id.h"
#include "libs/txn/upload.h"

namespace tongka::ingest {
namespace {

// Builds verdicts: field paths under the body's name, first broken rule wins.
class Judge {
 public:
  Judge(Verdict* verdict, absl::string_view body) : verdict_(verdict), body_(body) {}

  // Records the rule (if none is recorded yet) and returns false, so checks read
  //   if (bad) return judge.Break(...);
  bool Break(absl::string_view field, absl::string_view rule, absl::string_view message) {
    if (verdict_->rule.empty()) {
      verdict_->field = body_.empty() ? std::string(field) : absl::StrCat(body_, ".", field);
      verdict_->rule = std::string(rule);
      verdict_->message = std::string(message);
    }
    return false;
  }

  // A status from a parser whose message is "<rule>: <detail>".
  bool BreakWith(absl::string_view field, const absl::Status& status) {
    absl::string_view message = status.message();
    size_t colon = message.find(':');
    absl::string_view rule =
        colon == absl::string_view::npos ? "invalid" : message.substr(0, colon);
    return Break(field, rule, message);
  }

  // no_separator and too_long for a free text field.
  bool Text(absl::string_view field, absl::string_view value) {
    if (absl::StrContains(value, '|')) {
      return Break(field, "no_separator", "text fields must not contain '|'");
    }
    if (value.size() > kTextFieldSizeMax) {
      return Break(field, "too_long",
                   absl::StrCat("at most ", kTextFieldSizeMax, " bytes, got ", value.size()));
    }
    return true;
  }

 private:
  Verdict* verdict_;
  absl::string_view body_;
};

// The body's field name, which prefixes the field a rule names ("tap.txn.mac"): Prepare's rules
// and ValidateMany's mac_verify both take it from here.
absl::string_view BodyName(v1::TransactionUpload::BodyCase body) {
  switch (body) {
    case v1::TransactionUpload::kTap:
      return "tap";
    case v1::TransactionUpload::kLoad:
      return "load";
    case v1::TransactionUpload::kRefund:
      return "refund";
    default:
      return "";
  }
}

struct BodyView {
  absl::string_view name;  // "tap", "load", "refund"
  const v1::TxnCommon* txn = nullptr;
  int64_t amount_fen = 0;
  int64_t amount_max_fen = 0;
  int64_t balance_sign = 0;  // after = before + sign * amount
};

// A terminal id as parsed, with its operator: a pure function of the id, kept from one upload to
// the next while they name the same terminal.
struct ParsedTerminal {
  std::string id;
  absl::StatusOr<txn::TerminalId> terminal = absl::UnknownError("not parsed");
  std::string owner_operator;
  bool valid = false;  // id/terminal/owner_operator are those of `id`
};

const ParsedTerminal& ParseTerminal(absl::string_view id, ParsedTerminal& memo) {
  if (memo.valid && memo.id == id) return memo;
  memo.id = std::string(id);
  memo.terminal = txn::ParseTerminalId(id);
  memo.owner_operator = memo.terminal.ok() ? txn::OperatorIdOf(*memo.terminal) : std::string();
  memo.valid = true;
  return memo;
}

bool CheckCommon(const v1::Tenant& tenant, const v1::TransactionUpload& upload,
                 const BodyView& body, const ValidationLimits& limits, const MemberTable& members,
                 ParsedTerminal& parsed, Judge& judge, Verdict& verdict) {
  const v1::TxnCommon& txn = *body.txn;
  if (upload.occurred_at_us() <= 0) {
    return judge.Break("occurred_at_us", "required", "device time (UTC microseconds) is required");
  }
  // Cards.
  if (txn.card_id().empty()) return judge.Break("txn.card_id", "required", "card_id is required");
  absl::StatusOr<uint32_t> card_issuer = txn::ParseCardId(txn.card_id());
  if (!card_issuer.ok()) return judge.BreakWith("txn.card_id", card_issuer.status());
  // Cities.
  if (txn.issuer_city() == 0) {
    return judge.Break("txn.issuer_city", "required", "issuer_city is required");
  }
  if (txn::FindCity(txn.issuer_city()) == nullptr) {
    return judge.Break("txn.issuer_city", "member_city",
                       absl::StrCat(txn.issuer_city(), " is not a member city"));
  }
  if (*card_issuer != txn.issuer_city()) {
    return judge.Break("txn.issuer_city", "issuer_matches_card_id",
                       absl::StrCat("card ", txn.card_id(), " is issued by ", *card_issuer,
                                    ", not ", txn.issuer_city()));
  }
  if (txn.acquirer_city() == 0) {
    return judge.Break("txn.acquirer_city", "required", "acquirer_city is required");
  }
  if (txn::FindCity(txn.acquirer_city()) == nullptr) {
    return judge.Break("txn.acquirer_city", "member_city",
                       absl::StrCat(txn.acquirer_city(), " is not a member city"));
  }
  // Terminals and who owns them.
  if (txn.terminal_id().empty()) {
    return judge.Break("txn.terminal_id", "required", "terminal_id is required");
  }
  const ParsedTerminal& known = ParseTerminal(txn.terminal_id(), parsed);
  const absl::StatusOr<txn::TerminalId>& terminal = known.terminal;
  if (!terminal.ok()) return judge.BreakWith("txn.terminal_id", terminal.status());
  if (txn.terminal_seq() == 0) {
    return judge.Break("txn.terminal_seq", "required", "terminal_seq starts at 1");
  }
  const std::string& owner_operator = known.owner_operator;
  if (txn.operator_id() != owner_operator) {
    return judge.Break(
        "txn.operator_id", "operator_matches_terminal",
        absl::StrCat("terminal ", txn.terminal_id(), " belongs to operator ", owner_operator));
  }
  const bool partner_terminal = terminal->owner == txn::TerminalOwner::kPartner;
  if (txn.partner_id() != (partner_terminal ? terminal->partner_id : "")) {
    return judge.Break("txn.partner_id", "partner_matches_terminal",
                       partner_terminal ? absl::StrCat("terminal ", txn.terminal_id(),
                                                       " belongs to partner ", terminal->partner_id)
                                        : "partner_id is set only for partner terminals");
  }
  if (!partner_terminal && txn.acquirer_city() != terminal->city) {
    return judge.Break(
        "txn.acquirer_city", "acquirer_matches_terminal",
        absl::StrCat("terminal ", txn.terminal_id(), " acquires for ", terminal->city));
  }
  if (tenant.kind() == v1::TENANT_KIND_CITY_OPERATOR) {
    if (partner_terminal || terminal->city != tenant.city()) {
      return judge.Break("txn.terminal_id", "terminal_not_yours",
                         absl::StrCat(server::TenantName(tenant), " may upload only terminals of ",
                                      tenant.city()));
    }
    if (txn.acquirer_city() != tenant.city()) {
      return judge.Break(
          "txn.acquirer_city", "acquirer_not_yours",
          absl::StrCat(server::TenantName(tenant), " acquires only for ", tenant.city()));
    }
  } else if (!partner_terminal || terminal->partner_id != tenant.partner_id()) {
    return judge.Break("txn.terminal_id", "terminal_not_yours",
                       absl::StrCat(server::TenantName(tenant), " may upload only terminals P-",
                                    tenant.partner_id(), "-..."));
  }
  // Members: who may take and whose cards may pay (the member registry, from the log). A refund
  // gives money back to the cardholder, which no suspension or list should stop.
  if (!upload.has_refund()) {
    if (members.CityStatus(txn.acquirer_city()) == v1::MEMBER_STATUS_SUSPENDED) {
      return judge.Break("txn.acquirer_city", "acquirer_suspended",
                         absl::StrCat("acquirer city ", txn.acquirer_city(), " is suspended"));
    }
    if (members.CityStatus(txn.issuer_city()) == v1::MEMBER_STATUS_SUSPENDED) {
      return judge.Break("txn.issuer_city", "issuer_suspended",
                         absl::StrCat("issuer city ", txn.issuer_city(), " is suspended"));
    }
    if (!members.Accepts(txn.acquirer_city(), txn.issuer_city())) {
      return judge.Break("txn.issuer_city", "issuer_not_accepted",
                         absl::StrCat("acquirer city ", txn.acquirer_city(),
                                      " does not accept cards of issuer ", txn.issuer_city()));
    }
  }
  // Money.
  for (auto [field, value] :
       {std::pair<absl::string_view, int64_t>{"txn.balance_before_fen", txn.balance_before_fen()},
        {"txn.balance_after_fen", txn.balance_after_fen()}}) {
    if (value < 0 || value > limits.balance_max_fen) {
      return judge.Break(field, "balance_range",
                         absl::StrCat("must be in [0, ", limits.balance_max_fen, "], got ", value));
    }
  }
  if (body.amount_fen < 1 || body.amount_fen > body.amount_max_fen) {
    return judge.Break(
        "amount_fen", "amount_range",
        absl::StrCat("must be in [1, ", body.amount_max_fen, "] fen, got ", body.amount_fen));
  }
  // Bounded above, so the sum cannot overflow.
  if (txn.balance_after_fen() != txn.balance_before_fen() + body.balance_sign * body.amount_fen) {
    return judge.Break("txn.balance_after_fen", "balance_arithmetic",
                       absl::StrCat("balance_after_fen must be balance_before_fen ",
                                    body.balance_sign < 0 ? "- " : "+ ", "amount_fen = ",
                                    txn.balance_before_fen() + body.balance_sign * body.amount_fen,
                                    ", got ", txn.balance_after_fen()));
  }
  if (!judge.Text("txn.operator_id", txn.operator_id())) return false;
  // Kind-specific fields.
  if (upload.has_tap()) {
    const v1::Tap& tap = upload.tap();
    if (tap.mode() == v1::TRANSPORT_MODE_UNSPECIFIED || !v1::TransportMode_IsValid(tap.mode())) {
      return judge.Break("mode", "required", "a tap names its transport mode");
    }
    if (!partner_terminal && tap.mode() != terminal->mode) {
      return judge.Break("mode", "mode_matches_terminal",
                         absl::StrCat("terminal ", txn.terminal_id(), " is a ",
                                      txn::TerminalModeName(terminal->mode), " terminal"));
    }
    if (!judge.Text("route_id", tap.route_id()) || !judge.Text("station_id", tap.station_id())) {
      return false;
    }
  } else if (upload.has_load()) {
    if (!judge.Text("channel", upload.load().channel())) return false;
  } else {
    const v1::Refund& refund = upload.refund();
    if (refund.original_terminal_id().empty()) {
      return judge.Break("original_terminal_id", "required",
                         "a refund names the refunded tap's terminal");
    }
    if (refund.original_terminal_seq() == 0) {
      return judge.Break("original_terminal_seq", "required",
                         "a refund names the refunded tap's terminal_seq");
    }
    if (!judge.Text("original_terminal_id", refund.original_terminal_id()) ||
        !judge.Text("reason", refund.reason())) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::Status CheckUploader(const v1::Tenant& tenant) {
  if (tenant.kind() == v1::TENANT_KIND_CITY_OPERATOR || tenant.kind() == v1::TENANT_KIND_PARTNER) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat(server::TenantName(tenant),
                   " may not upload transactions: only city operators and partners upload"));
}

// What ValidateMany keeps from one upload to the next (Prepare), wiped when the batch is done.
struct Validator::TerminalMemo {
  ParsedTerminal parsed;
  // The key of (key_city, key_terminal), when has_key.
  bool has_key = false;
  uint32_t key_city = 0;
  std::string key_terminal;
  absl::StatusOr<crypto::Sm4Key> key = absl::UnknownError("no key");

  ~TerminalMemo() {
    if (key.ok()) OPENSSL_cleanse(key->data(), key->size());
  }
};

Verdict Validator::Prepare(const v1::Tenant& tenant, const v1::TransactionUpload& upload,
                           absl::Time now, const MemberTable& members, TerminalMemo& memo,
                           crypto::Sm4Key* key) const {
  Verdict verdict;
  BodyView body;
  body.name = BodyName(upload.body_case());
  switch (upload.body_case()) {
    case v1::TransactionUpload::kTap:
      body.txn = &upload.tap().txn();
      body.amount_fen = upload.tap().amount_fen();
      body.amount_max_fen = limits_.tap_amount_max_fen;
      body.balance_sign = -1;
      break;
    case v1::TransactionUpload::kLoad:
      body.txn = &upload.load().txn();
      body.amount_fen = upload.load().amount_fen();
      body.amount_max_fen = limits_.load_amount_max_fen;
      body.balance_sign = +1;
      break;
    case v1::TransactionUpload::kRefund:
      body.txn = &upload.refund().txn();
      body.amount_fen = upload.refund().amount_fen();
      body.amount_max_fen = limits_.refund_amount_max_fen;
      body.balance_sign = +1;
      break;
    default:
      Judge(&verdict, "").Break("body", "required", "one of tap, load, refund is required");
      return verdict;
  }
  Judge judge(&verdict, body.name);
  const v1::TxnCommon& txn = *body.txn;
  if (txn::FindCity(txn.acquirer_city()) != nullptr) verdict.metrics_city = txn.acquirer_city();
  if (!CheckCommon(tenant, upload, body, limits_, members, memo.parsed, judge, verdict)) {
    return verdict;
  }

  // Time: judged against the platform's clock, never the device's.
  const absl::Time occurred_at = absl::FromUnixMicros(upload.occurred_at_us());
  if (occurred_at > now + limits_.future_skew_max) {
    judge.Break("occurred_at_us", "occurred_at_future",
                absl::StrCat("device time is ", absl::FormatDuration(occurred_at - now),
                             " in the future; at most ",
                             absl::FormatDuration(limits_.future_skew_max), " is allowed"));
    return verdict;
  }
  if (occurred_at < now - (limits_.dedup_horizon - limits_.future_skew_max)) {
    judge.Break(
        "occurred_at_us", "occurred_at_too_old",
        absl::StrCat("device time is ", absl::FormatDuration(now - occurred_at),
                     " old, beyond the de-duplication horizon of ",
                     absl::FormatDuration(limits_.dedup_horizon - limits_.future_skew_max)));
    return verdict;
  }
  verdict.late = occurred_at < now - limits_.late_horizon;

  // The MAC last: it is the expensive check.
  if (txn.mac().size() != crypto::kSm4BlockSize) {
    judge.Break(
        "txn.mac", "mac_length",
        absl::StrCat("an SM4-CMAC is ", crypto::kSm4BlockSize, " bytes, got ", txn.mac().size()));
    return verdict;
  }
  if (!memo.has_key || memo.key_city != txn.acquirer_city() ||
      memo.key_terminal != txn.terminal_id()) {
    if (memo.key.ok()) OPENSSL_cleanse(memo.key->data(), memo.key->size());
    memo.key = keyring_->TerminalKey(txn.acquirer_city(), txn.terminal_id());
    memo.key_city = txn.acquirer_city();
    memo.key_terminal = txn.terminal_id();
    memo.has_key = true;
  }
  if (!memo.key.ok()) {
    judge.Break("txn.mac", "terminal_key",
                absl::StrCat("no terminal key: ", memo.key.status().message()));
    return verdict;
  }
  absl::StatusOr<std::string> mac_input = txn::MacInput(upload);
  if (!mac_input.ok()) {  // unreachable: the body is present
    judge.Break("body", "required", mac_input.status().message());
    return verdict;
  }
  *key = *memo.key;
  verdict.event_id = txn::TxnEventId(txn.terminal_id(), txn.terminal_seq());
  verdict.mac_input = std::move(*mac_input);
  return verdict;
}

Verdict Validator::Validate(const v1::Tenant& tenant, const v1::TransactionUpload& upload,
                            absl::Time now) const {
  const v1::TransactionUpload* const uploads[] = {&upload};
  return std::move(ValidateMany(tenant, uploads, now).front());
}

std::vector<Verdict> Validator::ValidateMany(const v1::Tenant& tenant,
                                             absl::Span<const v1::TransactionUpload* const> uploads,
                                             absl::Time now) const {
  const int n = uploads.size();
  std::vector<Verdict> verdicts(n);
  // Every rule but the MAC's, item by item; then the MACs of the items still standing, together.
  std::vector<crypto::Sm4Key> keys(n);
  absl::Cleanup wipe = [&keys] {
    OPENSSL_cleanse(keys.data(), keys.size() * sizeof(crypto::Sm4Key));
  };
  std::vector<int> pending;
  pending.reserve(n);
  TerminalMemo memo;
  // One snapshot for the whole batch: its items are judged against the same member table.
  static const MemberTable* const kGenesis = new MemberTable();
  const std::shared_ptr<const MemberTable> snapshot =
      members_ != nullptr ? members_->Current() : nullptr;
  const MemberTable& members = snapshot != nullptr ? *snapshot : *kGenesis;
  for (int i = 0; i < n; ++i) {
    verdicts[i] = Prepare(tenant, *uploads[i], now, members, memo, &keys[i]);
    if (verdicts[i].ok()) pending.push_back(i);
  }
  std::vector<const crypto::Sm4Key*> pending_keys(pending.size());
  std::vector<absl::string_view> messages(pending.size());
  std::vector<crypto::Sm4Mac> tags(pending.size());
  for (size_t j = 0; j < pending.size(); ++j) {
    pending_keys[j] = &keys[pending[j]];
    messages[j] = verdicts[pending[j]].mac_input;
  }
  crypto::Sm4CmacMany(pending_keys, messages, absl::MakeSpan(tags));
  for (size_t j = 0; j < pending.size(); ++j) {
    const v1::TransactionUpload& upload = *uploads[pending[j]];
    if (crypto::Sm4MacEquals(tags[j], txn::CommonOf(upload)->mac())) continue;
    Verdict& verdict = verdicts[pending[j]];
    verdict.event_id.clear();
    verdict.mac_input.clear();
    Judge(&verdict, BodyName(upload.body_case()))
        .Break("txn.mac", "mac_verify", "the SM4-CMAC does not verify under the terminal's key");
  }
  return verdicts;
}

namespace {

// Drops what was sent in fields this schema does not know, in `message` itself.
void DropUnknownFields(google::protobuf::Message* message) {
  const google::protobuf::Reflection* reflection = message->GetReflection();
  if (!reflection->GetUnknownFields(*message).empty()) {
    reflection->MutableUnknownFields(message)->Clear();
  }
}

// The event's copy of an upload's body. Bytes the terminal sent in fields this schema does not
// know are covered by neither the MAC nor the dedup digest: they must not reach the log, where a
// later schema would read them. The event's top level is built field by field, and TxnCommon is
// the only message a body holds (validator_test checks the schema), so the body and its
// TxnCommon are the only places such bytes can be. (Message::DiscardUnknownFields walks every
// field through reflection: it was 60% of building the event.)
template <typename Body>
void CopyBody(const Body& from, const Verdict& verdict, Body* to) {
  *to = from;
  to->mutable_txn()->set_late(verdict.late);
  DropUnknownFields(to);
  DropUnknownFields(to->mutable_txn());
}

}  // namespace

v1::Event BuildTxnEvent(const v1::TransactionUpload& upload, const v1::Tenant& source,
                        const Verdict& verdict, absl::Time recorded_at) {
  v1::Event event;
  event.set_event_id(verdict.event_id);
  event.set_occurred_at_us(upload.occurred_at_us());
  event.set_recorded_at_us(absl::ToUnixMicros(recorded_at));
  *event.mutable_source() = source;
  switch (upload.body_case()) {
    case v1::TransactionUpload::kTap:
      CopyBody(upload.tap(), verdict, event.mutable_tap());
      break;
    case v1::TransactionUpload::kLoad:
      CopyBody(upload.load(), verdict, event.mutable_load());
      break;
    case v1::TransactionUpload::kRefund:
      CopyBody(upload.refund(), verdict, event.mutable_refund());
      break;
    default:
      break;
  }
  return event;
}

namespace {

using google::protobuf::io::CodedOutputStream;

// A length-delimited field's size on the wire: tag (one byte for field numbers < 16), length,
// payload.
size_t DelimitedSize(size_t payload) {
  return 1 + CodedOutputStream::VarintSize32(static_cast<uint32_t>(payload)) + payload;
}

uint8_t* WriteDelimitedHeader(int field, size_t payload, uint8_t* out) {
  out = CodedOutputStream::WriteTagToArray(
      google::protobuf::internal::WireFormatLite::MakeTag(
          field, google::protobuf::internal::WireFormatLite::WIRETYPE_LENGTH_DELIMITED),
      out);
  return CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(payload), out);
}

bool HasUnknownFields(const google::protobuf::Message& message) {
  return !message.GetReflection()->GetUnknownFields(message).empty();
}

uint8_t* WriteInt64Field(int field, int64_t value, uint8_t* out) {
  out = CodedOutputStream::WriteTagToArray(
      google::protobuf::internal::WireFormatLite::MakeTag(
          field, google::protobuf::internal::WireFormatLite::WIRETYPE_VARINT),
      out);
  return CodedOutputStream::WriteVarint64ToArray(static_cast<uint64_t>(value), out);
}

}  // namespace

std::string SerializeTxnEvent(const v1::TransactionUpload& upload, const v1::Tenant& source,
                              const Verdict& verdict, absl::Time recorded_at) {
  std::string bytes;
  SerializeTxnEventTo(upload, source, verdict, recorded_at, &bytes);
  return bytes;
}

void SerializeTxnEventTo(const v1::TransactionUpload& upload, const v1::Tenant& source,
                         const Verdict& verdict, absl::Time recorded_at, std::string* bytes) {
  const google::protobuf::Message* body = nullptr;
  const v1::TxnCommon* txn = txn::CommonOf(upload);
  int body_field = 0;
  switch (upload.body_case()) {
    case v1::TransactionUpload::kTap:
      body = &upload.tap();
      body_field = v1::Event::kTapFieldNumber;
      break;
    case v1::TransactionUpload::kLoad:
      body = &upload.load();
      body_field = v1::Event::kLoadFieldNumber;
      break;
    case v1::TransactionUpload::kRefund:
      body = &upload.refund();
      body_field = v1::Event::kRefundFieldNumber;
      break;
    default:
      break;
  }
  if (body == nullptr || txn->late() != verdict.late || HasUnknownFields(*body) ||
      HasUnknownFields(*txn)) {
    CHECK(BuildTxnEvent(upload, source, verdict, recorded_at).SerializeToString(bytes));
    return;
  }
  // Event's fields in field-number order, proto3 zero scalars left out, as protobuf writes them.
  static_assert(v1::Event::kEventIdFieldNumber == 1 && v1::Event::kOccurredAtUsFieldNumber == 2 &&
                v1::Event::kRecordedAtUsFieldNumber == 3 && v1::Event::kSourceFieldNumber == 4 &&
                v1::Event::kTapFieldNumber < 16 && v1::Event::kRefundFieldNumber < 16);
  const int64_t recorded_at_us = absl::ToUnixMicros(recorded_at);
  const size_t source_size = source.ByteSizeLong();
  const size_t body_size = body->ByteSizeLong();
  size_t size = DelimitedSize(source_size) + DelimitedSize(body_size);
  if (!verdict.event_id.empty()) size += DelimitedSize(verdict.event_id.size());
  if (upload.occurred_at_us() != 0) {
    size += 1 + CodedOutputStream::VarintSize64(static_cast<uint64_t>(upload.occurred_at_us()));
  }
  if (recorded_at_us != 0) {
    size += 1 + CodedOutputStream::VarintSize64(static_cast<uint64_t>(recorded_at_us));
  }
  bytes->resize(size);
  uint8_t* out = reinterpret_cast<uint8_t*>(bytes->data());
  if (!verdict.event_id.empty()) {
    out = WriteDelimitedHeader(v1::Event::kEventIdFieldNumber, verdict.event_id.size(), out);
    out = CodedOutputStream::WriteStringToArray(verdict.event_id, out);
  }
  if (upload.occurred_at_us() != 0) {
    out = WriteInt64Field(v1::Event::kOccurredAtUsFieldNumber, upload.occurred_at_us(), out);
  }
  if (recorded_at_us != 0) {
    out = WriteInt64Field(v1::Event::kRecordedAtUsFieldNumber, recorded_at_us, out);
  }
  out = WriteDelimitedHeader(v1::Event::kSourceFieldNumber, source_size, out);
  out = source.SerializeWithCachedSizesToArray(out);
  out = WriteDelimitedHeader(body_field, body_size, out);
  out = body->SerializeWithCachedSizesToArray(out);
  CHECK_EQ(out, reinterpret_cast<uint8_t*>(bytes->data()) + size) << "event size miscounted";
}

v1::Event BuildConflictEvent(const v1::TransactionUpload& upload, const v1::Tenant& source,
                             const Verdict& verdict, absl::string_view accepted_digest,
                             absl::string_view conflicting_digest, absl::Time recorded_at) {
  v1::Event event;
  event.set_event_id(absl::StrCat("conflict/", verdict.event_id, "/",
                                  absl::BytesToHexString(conflicting_digest.substr(0, 16))));
  event.set_occurred_at_us(upload.occurred_at_us());
  event.set_recorded_at_us(absl::ToUnixMicros(recorded_at));
  *event.mutable_source() = source;
  v1::TxnConflict* conflict = event.mutable_txn_conflict();
  conflict->set_txn_event_id(verdict.event_id);
  switch (upload.body_case()) {
    case v1::TransactionUpload::kTap:
      CopyBody(upload.tap(), verdict, conflict->mutable_tap());
      break;
    case v1::TransactionUpload::kLoad:
      CopyBody(upload.load(), verdict, conflict->mutable_load());
      break;
    case v1::TransactionUpload::kRefund:
      CopyBody(upload.refund(), verdict, conflict->mutable_refund());
      break;
    default:
      break;
  }
  conflict->set_accepted_digest(std::string(accepted_digest));
  conflict->set_conflicting_digest(std::string(conflicting_digest));
  return event;
}

}  // namespace tongka::ingest
