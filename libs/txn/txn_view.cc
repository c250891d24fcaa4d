#include "libs/txn/txn_view.h"

#include "absl/container/flat_hash_set.h"
#include "proto/events.pb.h"

namespace tongka::txn {
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
constexpr uint32_t kTxnCardId = 1;       // TxnCommon.card_id
constexpr uint32_t kTxnIssuer = 2;       // TxnCommon.issuer_city
constexpr uint32_t kTxnAcquirer = 3;     // TxnCommon.acquirer_city

// Wire types.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kFixed64 = 1;
constexpr uint32_t kLengthDelimited = 2;
constexpr uint32_t kStartGroup = 3;
constexpr uint32_t kEndGroup = 4;
constexpr uint32_t kFixed32 = 5;

// Nesting of unknown groups, as protobuf's default recursion limit.
constexpr int kGroupDepthMax = 100;

// A cursor over one message's bytes that reads the wire format the way protobuf's generated
// parser (3.21) does: tags of at most 5 bytes, varints of at most 10, lengths of at most 5 that
// must fit in what is left. Every method returns false on broken structure and then leaves the
// cursor anywhere.
//
// Why not protobuf's CodedInputStream: this runs for every transaction of the log, and its
// per-call checks and buffer refills cost as much as the rest of the read (0.40 -> 0.14 us for
// a 161-byte tap).
class WireReader {
 public:
  explicit WireReader(absl::string_view bytes)
      : p_(reinterpret_cast<const uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool AtEnd() const { return p_ == end_; }

  // A field's tag; false for a broken one or field number 0.
  bool ReadTag(uint32_t* tag) {
    uint32_t value = 0;
    for (int i = 0; i < 5; ++i) {
      if (p_ == end_) return false;
      const uint32_t byte = *p_++;
      value |= (byte & 0x7f) << (7 * i);  // bits past 32 fall off, as in protobuf
      if (byte < 0x80) {
        *tag = value;
        return (value >> 3) != 0;
      }
    }
    return false;
  }

  bool ReadVarint(uint64_t* out) {
    if (p_ != end_ && *p_ < 0x80) {  // one byte: small numbers, enums, most tags' values
      *out = *p_++;
      return true;
    }
    uint64_t value = 0;
    for (int i = 0; i < 10; ++i) {
      if (p_ == end_) return false;
      const uint64_t byte = *p_++;
      value |= (byte & 0x7f) << (7 * i);
      if (byte < 0x80) {
        *out = value;
        return true;
      }
    }
    return false;
  }

  // A length-delimited value as a view into the bytes (no copy).
  bool ReadLengthDelimited(absl::string_view* out) {
    uint32_t size = 0;
    for (int i = 0;; ++i) {
      if (p_ == end_ || i == 5) return false;
      const uint32_t byte = *p_++;
      if (i == 4 && byte >= 8) return false;  // 2^31 or more
      size |= (byte & 0x7f) << (7 * i);
      if (byte < 0x80) break;
    }
    if (size > static_cast<size_t>(end_ - p_)) return false;
    *out = absl::string_view(reinterpret_cast<const char*>(p_), size);
    p_ += size;
    return true;
  }

  // Skips the value of the field whose tag was just read; groups up to their matching end tag.
  bool SkipField(uint32_t tag, int depth = 0) {
    uint64_t varint = 0;
    absl::string_view bytes;
    switch (tag & 7) {
      case kVarint:
        return ReadVarint(&varint);
      case kFixed64:
        return Advance(8);
      case kLengthDelimited:
        return ReadLengthDelimited(&bytes);
      case kStartGroup: {
        if (depth >= kGroupDepthMax) return false;
        while (true) {
          uint32_t inner = 0;
          if (!ReadTag(&inner)) return false;
          if ((inner & 7) == kEndGroup) return inner == tag + 1;  // the same field number
          if (!SkipField(inner, depth + 1)) return false;
        }
      }
      case kFixed32:
        return Advance(4);
      default:  // an end group without its start, or wire types 6 and 7
        return false;
    }
  }

 private:
  bool Advance(size_t bytes) {
    if (bytes > static_cast<size_t>(end_ - p_)) return false;
    p_ += bytes;
    return true;
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

// What a field reader did with one field.
enum class Read { kDone, kNotMine, kBroken };

// Calls `read(field, wire_type, in)` for each field of the message in `bytes`; skips the fields
// it answers kNotMine (unknown groups included). False when the message or a field is broken.
template <typename ReadField>
bool ForEachField(absl::string_view bytes, ReadField read) {
  WireReader in(bytes);
  while (!in.AtEnd()) {
    uint32_t tag = 0;
    if (!in.ReadTag(&tag)) return false;
    switch (read(tag >> 3, tag & 7, in)) {
      case Read::kDone:
        break;
      case Read::kNotMine:
        if (!in.SkipField(tag)) return false;
        break;
      case Read::kBroken:
        return false;
    }
  }
  return true;
}

Read Done(bool ok) { return ok ? Read::kDone : Read::kBroken; }

bool ParseTxnCommon(absl::string_view bytes, TxnView* out) {
  return ForEachField(bytes, [out](uint32_t field, uint32_t wire_type, WireReader& in) {
    if (field == kTxnCardId && wire_type == kLengthDelimited) {
      return Done(in.ReadLengthDelimited(&out->card_id));
    }
    if ((field != kTxnIssuer && field != kTxnAcquirer) || wire_type != kVarint) {
      return Read::kNotMine;
    }
    uint64_t value = 0;
    if (!in.ReadVarint(&value)) return Read::kBroken;
    // uint32 fields keep the low 32 bits of the varint, as protobuf does.
    (field == kTxnIssuer ? out->issuer_city : out->acquirer_city) = static_cast<uint32_t>(value);
    return Read::kDone;
  });
}

bool ParseBody(absl::string_view bytes, TxnKind kind, TxnView* out) {
  return ForEachField(bytes, [kind, out](uint32_t field, uint32_t wire_type, WireReader& in) {
    uint64_t value = 0;
    absl::string_view nested;
    if (field == kBodyTxn && wire_type == kLengthDelimited) {
      return Done(in.ReadLengthDelimited(&nested) && ParseTxnCommon(nested, out));
    }
    if (field == kBodyAmount && wire_type == kVarint) {
      if (!in.ReadVarint(&value)) return Read::kBroken;
      out->amount_fen = static_cast<int64_t>(value);
      return Read::kDone;
    }
    if (kind == TxnKind::kTap && field == kTapMode && wire_type == kVarint) {
      if (!in.ReadVarint(&value)) return Read::kBroken;
      // Enums are int32 on the wire; unknown values are kept, as proto3 does.
      out->mode = static_cast<v1::TransportMode>(static_cast<int32_t>(value));
      return Read::kDone;
    }
    if (kind == TxnKind::kRefund && field == kRefundOriginal && wire_type == kLengthDelimited) {
      return Done(in.ReadLengthDelimited(&out->original_terminal_id));
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
  return ForEachField(bytes, [out](uint32_t field, uint32_t wire_type, WireReader& in) {
    uint64_t value = 0;
    absl::string_view nested;
    if (field == kEventId && wire_type == kLengthDelimited) {
      return Done(in.ReadLengthDelimited(&out->event_id));
    }
    if (field == kRecordedAtUs && wire_type == kVarint) {
      if (!in.ReadVarint(&value)) return Read::kBroken;
      out->recorded_at_us = static_cast<int64_t>(value);
      return Read::kDone;
    }
    if ((field == kTap || field == kLoad || field == kRefund) && wire_type == kLengthDelimited) {
      const TxnKind kind = field == kTap    ? TxnKind::kTap
                           : field == kLoad ? TxnKind::kLoad
                                            : TxnKind::kRefund;
      // The same body again merges into it; another body replaces it.
      if (out->kind != kind) ClearBody(kind, out);
      return Done(in.ReadLengthDelimited(&nested) && ParseBody(nested, kind, out));
    }
    if (wire_type == kLengthDelimited && IsOtherBody(field)) {
      // Another body of the oneof (cards, fraud, settlement, subsidy): not a transaction. Its
      // contents are not read, but its length must fit like any field's.
      if (!in.ReadLengthDelimited(&nested)) return Read::kBroken;
      ClearBody(TxnKind::kOther, out);
      return Read::kDone;
    }
    return Read::kNotMine;
  });
}

absl::string_view RebaseView(absl::string_view view, const char* from, const char* to) {
  return view.empty() ? view : absl::string_view(to + (view.data() - from), view.size());
}

void RebaseTxnView(const char* from, const char* to, TxnView* view) {
  view->event_id = RebaseView(view->event_id, from, to);
  view->card_id = RebaseView(view->card_id, from, to);
  view->original_terminal_id = RebaseView(view->original_terminal_id, from, to);
}

}  // namespace tongka::txn
