#include "services/settlement/txn_view.h"

#include "absl/container/flat_hash_set.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "proto/events.pb.h"

namespace tongka::settlement {
namespace {

// Field numbers, from proto/events.proto.
constexpr uint32_t kEventId = 1;         // Event.event_id
constexpr uint32_t kRecordedAtUs = 3;    // Event.recorded_at_us
constexpr uint32_t kTap = 10;            // Event.tap
constexpr uint32_t kLoad = 11;           // Event.load
constexpr uint32_t kRefund = 12;         // Event.refund
constexpr uint32_t kBodyTxn = 1;         // Tap/Load/Refund.txn
constexpr uint32_t kBodyAmount = 2;      // Tap/Load/Refund.amount_fen
constexpr uint32_t kTapMode = 3;         // Tap.mode
constexpr uint32_t kRefundOriginal = 3;  // Refund.original_terminal_id
constexpr uint32_t kTxnIssuer = 2;       // TxnCommon.issuer_city
constexpr uint32_t kTxnAcquirer = 3;     // TxnCommon.acquirer_city

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

constexpr uint32_t kVarint = WireFormatLite::WIRETYPE_VARINT;
constexpr uint32_t kLengthDelimited = WireFormatLite::WIRETYPE_LENGTH_DELIMITED;

// Reads a length-delimited value as a view into the parsed bytes (no copy).
bool ReadLengthDelimited(CodedInputStream& in, absl::string_view* out) {
  uint32_t size = 0;
  if (!in.ReadVarint32(&size)) return false;
  const void* data = nullptr;
  int available = 0;
  if (size == 0) {
    *out = absl::string_view();
    return true;
  }
  if (!in.GetDirectBufferPointer(&data, &available) || static_cast<uint32_t>(available) < size) {
    return false;
  }
  *out = absl::string_view(static_cast<const char*>(data), size);
  return in.Skip(static_cast<int>(size));
}

// What a field reader did with one field.
enum class Read { kDone, kNotMine, kBroken };

// Calls `read(field, wire_type, in)` for each field of the message in `bytes`; skips the fields
// it answers kNotMine with protobuf's own SkipField (unknown groups included). False when the
// message or a field is broken.
template <typename ReadField>
bool ForEachField(absl::string_view bytes, ReadField read) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  while (in.CurrentPosition() < static_cast<int>(bytes.size())) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return false;  // field number 0 or a broken varint
    const uint32_t field = WireFormatLite::GetTagFieldNumber(tag);
    const uint32_t wire_type = WireFormatLite::GetTagWireType(tag);
    switch (read(field, wire_type, in)) {
      case Read::kDone:
        break;
      case Read::kNotMine:
        if (!WireFormatLite::SkipField(&in, tag)) return false;
        break;
      case Read::kBroken:
        return false;
    }
  }
  return true;
}

Read Done(bool ok) { return ok ? Read::kDone : Read::kBroken; }

bool ParseTxnCommon(absl::string_view bytes, TxnView* out) {
  return ForEachField(bytes, [out](uint32_t field, uint32_t wire_type, CodedInputStream& in) {
    if ((field != kTxnIssuer && field != kTxnAcquirer) || wire_type != kVarint) {
      return Read::kNotMine;
    }
    uint64_t value = 0;
    if (!in.ReadVarint64(&value)) return Read::kBroken;
    // uint32 fields keep the low 32 bits of the varint, as protobuf does.
    (field == kTxnIssuer ? out->issuer_city : out->acquirer_city) = static_cast<uint32_t>(value);
    return Read::kDone;
  });
}

bool ParseBody(absl::string_view bytes, TxnKind kind, TxnView* out) {
  return ForEachField(bytes, [kind, out](uint32_t field, uint32_t wire_type, CodedInputStream& in) {
    uint64_t value = 0;
    absl::string_view nested;
    if (field == kBodyTxn && wire_type == kLengthDelimited) {
      return Done(ReadLengthDelimited(in, &nested) && ParseTxnCommon(nested, out));
    }
    if (field == kBodyAmount && wire_type == kVarint) {
      if (!in.ReadVarint64(&value)) return Read::kBroken;
      out->amount_fen = static_cast<int64_t>(value);
      return Read::kDone;
    }
    if (kind == TxnKind::kTap && field == kTapMode && wire_type == kVarint) {
      if (!in.ReadVarint64(&value)) return Read::kBroken;
      // Enums are int32 on the wire; unknown values are kept, as proto3 does.
      out->mode = static_cast<v1::TransportMode>(static_cast<int32_t>(value));
      return Read::kDone;
    }
    if (kind == TxnKind::kRefund && field == kRefundOriginal && wire_type == kLengthDelimited) {
      return Done(ReadLengthDelimited(in, &out->original_terminal_id));
    }
    return Read::kNotMine;
  });
}

// True for the field numbers of Event's `body` oneof other than tap, load and refund, read from
// the schema itself so a body added later is recognised too.
bool IsOtherBody(uint32_t field) {
  static const absl::flat_hash_set<uint32_t>* const kOtherBodies = [] {
    auto* fields = new absl::flat_hash_set<uint32_t>();
    const google::protobuf::OneofDescriptor* body =
        v1::Event::descriptor()->FindOneofByName("body");
    for (int i = 0; body != nullptr && i < body->field_count(); ++i) {
      const uint32_t number = static_cast<uint32_t>(body->field(i)->number());
      if (number != kTap && number != kLoad && number != kRefund) fields->insert(number);
    }
    return fields;
  }();
  return kOtherBodies->contains(field);
}

// The body fields of `out` back to their defaults (a oneof switching to another case).
void ClearBody(TxnKind kind, TxnView* out) {
  const absl::string_view event_id = out->event_id;
  const int64_t recorded_at_us = out->recorded_at_us;
  *out = TxnView{};
  out->event_id = event_id;
  out->recorded_at_us = recorded_at_us;
  out->kind = kind;
}

}  // namespace

bool ParseTxnView(absl::string_view bytes, TxnView* out) {
  *out = TxnView{};
  return ForEachField(bytes, [out](uint32_t field, uint32_t wire_type, CodedInputStream& in) {
    uint64_t value = 0;
    absl::string_view nested;
    if (field == kEventId && wire_type == kLengthDelimited) {
      return Done(ReadLengthDelimited(in, &out->event_id));
    }
    if (field == kRecordedAtUs && wire_type == kVarint) {
      if (!in.ReadVarint64(&value)) return Read::kBroken;
      out->recorded_at_us = static_cast<int64_t>(value);
      return Read::kDone;
    }
    if ((field == kTap || field == kLoad || field == kRefund) && wire_type == kLengthDelimited) {
      const TxnKind kind = field == kTap    ? TxnKind::kTap
                           : field == kLoad ? TxnKind::kLoad
                                            : TxnKind::kRefund;
      // The same body again merges into it; another body replaces it.
      if (out->kind != kind) ClearBody(kind, out);
      return Done(ReadLengthDelimited(in, &nested) && ParseBody(nested, kind, out));
    }
    if (wire_type == kLengthDelimited && IsOtherBody(field)) {
      // Another body of the oneof (cards, fraud, settlement, subsidy): not a transaction. Its
      // contents are not read, but its length must fit like any field's.
      if (!ReadLengthDelimited(in, &nested)) return Read::kBroken;
      ClearBody(TxnKind::kOther, out);
      return Read::kDone;
    }
    return Read::kNotMine;
  });
}

}  // namespace tongka::settlement
