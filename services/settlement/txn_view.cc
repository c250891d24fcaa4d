#include "services/settlement/txn_view.h"

#include "absl/container/flat_hash_set.h"
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

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};
// Protobuf's own default recursion limit.
constexpr int kGroupDepthMax = 100;

// A forward-only reader of one message's bytes.
class WireReader {
 public:
  explicit WireReader(absl::string_view bytes)
      : p_(reinterpret_cast<const uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool done() const { return p_ == end_; }

  bool ReadVarint(uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const uint8_t byte = *p_++;
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;  // more than ten bytes
  }

  // A tag: field number (>= 1) and wire type.
  bool ReadTag(uint32_t* field, uint32_t* wire_type) {
    uint64_t tag = 0;
    if (!ReadVarint(&tag) || tag > UINT32_MAX) return false;
    *field = static_cast<uint32_t>(tag >> 3);
    *wire_type = static_cast<uint32_t>(tag & 7);
    return *field != 0;
  }

  bool ReadLengthDelimited(absl::string_view* bytes) {
    uint64_t size = 0;
    if (!ReadVarint(&size) || size > static_cast<uint64_t>(end_ - p_)) return false;
    *bytes = absl::string_view(reinterpret_cast<const char*>(p_), static_cast<size_t>(size));
    p_ += size;
    return true;
  }

  // Skips the value of field `field`. An unknown group (wire type 3) is skipped to its matching
  // end tag, as protobuf keeps unknown groups; a stray end tag and wire types 6 and 7 are broken.
  bool Skip(uint32_t field, uint32_t wire_type, int depth = 0) {
    uint64_t ignored = 0;
    absl::string_view bytes;
    switch (wire_type) {
      case kVarint:
        return ReadVarint(&ignored);
      case kFixed64:
        return Advance(8);
      case kLengthDelimited:
        return ReadLengthDelimited(&bytes);
      case kStartGroup: {
        if (depth >= kGroupDepthMax) return false;
        while (true) {
          uint32_t inner_field = 0;
          uint32_t inner_type = 0;
          if (!ReadTag(&inner_field, &inner_type)) return false;
          if (inner_type == kEndGroup) return inner_field == field;
          if (!Skip(inner_field, inner_type, depth + 1)) return false;
        }
      }
      case kFixed32:
        return Advance(4);
      default:
        return false;
    }
  }

 private:
  bool Advance(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    p_ += n;
    return true;
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

// What a field reader did with one field.
enum class Read { kDone, kNotMine, kBroken };

// Calls `read(field, wire_type, reader)` for each field of the message in `bytes`; skips the
// fields it answers kNotMine. False when the message or a field is broken.
template <typename ReadField>
bool ForEachField(absl::string_view bytes, ReadField read) {
  WireReader reader(bytes);
  while (!reader.done()) {
    uint32_t field = 0;
    uint32_t wire_type = 0;
    if (!reader.ReadTag(&field, &wire_type)) return false;
    switch (read(field, wire_type, reader)) {
      case Read::kDone:
        break;
      case Read::kNotMine:
        if (!reader.Skip(field, wire_type)) return false;
        break;
      case Read::kBroken:
        return false;
    }
  }
  return true;
}

Read Done(bool ok) { return ok ? Read::kDone : Read::kBroken; }

bool ParseTxnCommon(absl::string_view bytes, TxnView* out) {
  return ForEachField(bytes, [out](uint32_t field, uint32_t wire_type, WireReader& reader) {
    if ((field != kTxnIssuer && field != kTxnAcquirer) || wire_type != kVarint) {
      return Read::kNotMine;
    }
    uint64_t value = 0;
    if (!reader.ReadVarint(&value)) return Read::kBroken;
    // uint32 fields keep the low 32 bits of the varint, as protobuf does.
    (field == kTxnIssuer ? out->issuer_city : out->acquirer_city) = static_cast<uint32_t>(value);
    return Read::kDone;
  });
}

bool ParseBody(absl::string_view bytes, TxnKind kind, TxnView* out) {
  return ForEachField(bytes, [kind, out](uint32_t field, uint32_t wire_type, WireReader& reader) {
    uint64_t value = 0;
    absl::string_view nested;
    if (field == kBodyTxn && wire_type == kLengthDelimited) {
      return Done(reader.ReadLengthDelimited(&nested) && ParseTxnCommon(nested, out));
    }
    if (field == kBodyAmount && wire_type == kVarint) {
      if (!reader.ReadVarint(&value)) return Read::kBroken;
      out->amount_fen = static_cast<int64_t>(value);
      return Read::kDone;
    }
    if (kind == TxnKind::kTap && field == kTapMode && wire_type == kVarint) {
      if (!reader.ReadVarint(&value)) return Read::kBroken;
      // Enums are int32 on the wire; unknown values are kept, as proto3 does.
      out->mode = static_cast<v1::TransportMode>(static_cast<int32_t>(value));
      return Read::kDone;
    }
    if (kind == TxnKind::kRefund && field == kRefundOriginal && wire_type == kLengthDelimited) {
      return Done(reader.ReadLengthDelimited(&out->original_terminal_id));
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
  return ForEachField(bytes, [out](uint32_t field, uint32_t wire_type, WireReader& reader) {
    uint64_t value = 0;
    absl::string_view nested;
    if (field == kEventId && wire_type == kLengthDelimited) {
      return Done(reader.ReadLengthDelimited(&out->event_id));
    }
    if (field == kRecordedAtUs && wire_type == kVarint) {
      if (!reader.ReadVarint(&value)) return Read::kBroken;
      out->recorded_at_us = static_cast<int64_t>(value);
      return Read::kDone;
    }
    if ((field == kTap || field == kLoad || field == kRefund) && wire_type == kLengthDelimited) {
      const TxnKind kind = field == kTap    ? TxnKind::kTap
                           : field == kLoad ? TxnKind::kLoad
                                            : TxnKind::kRefund;
      // The same body again merges into it; another body replaces it.
      if (out->kind != kind) ClearBody(kind, out);
      return Done(reader.ReadLengthDelimited(&nested) && ParseBody(nested, kind, out));
    }
    if (wire_type == kLengthDelimited && IsOtherBody(field)) {
      // Another body of the oneof (cards, fraud, settlement, subsidy): not a transaction. Its
      // contents are not read, but its length must fit like any field's.
      if (!reader.ReadLengthDelimited(&nested)) return Read::kBroken;
      ClearBody(TxnKind::kOther, out);
      return Read::kDone;
    }
    return Read::kNotMine;
  });
}

}  // namespace tongka::settlement
