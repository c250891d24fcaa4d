// TxnView: the fields of a tongka.txn event that its bulk consumers (settlement's stage one, the
// runtime's sample) read for every transaction, straight off the protobuf wire format without
// building a v1::Event.
//
// Why: these consumers read every transaction of their partitions. A full v1::Event parse copies
// every string of the record (card id, terminal, operator, MAC, route, station) and cost about as
// much as the rest of settlement's stage one per transaction; this reader copies nothing and skips
// what it does not need. A consumer that needs more of a record (the balance chain, the MAC)
// parses a v1::Event.
//
// Semantics are protobuf's for the fields it reads: the last value of a scalar wins, repeated
// occurrences of a message field merge, a later oneof body replaces an earlier one (of another
// kind), unknown fields (groups included) and fields with an unexpected wire type are skipped.
// Every record that v1::Event parses, this reads with the same values; it fails on broken
// structure (truncated varints or lengths, unmatched group tags, wire types 6 and 7). It does not
// look inside what it skips, nor check that card_id is UTF-8, so it may accept a record protobuf
// refuses for its contents (invalid UTF-8 in a string, a broken nested message it does not read).
// Ingest writes only well-formed events; a record either reader refuses is counted as unusable.
// txn_view_test checks this against v1::Event on every prefix of generated records.
//
// Ownership: the string_views point into the parsed bytes; they live as long as those bytes.
// Thread-safety: a pure function.
//
// Example:
//   TxnView txn;
//   if (ParseTxnView(record.value, &txn) && txn.kind == TxnKind::kTap) Use(txn.amount_fen);
#ifndef TONGKA_LIBS_TXN_TXN_VIEW_H_
#define TONGKA_LIBS_TXN_TXN_VIEW_H_

#include <cstdint>

#include "absl/strings/string_view.h"
#include "proto/common.pb.h"

namespace tongka::txn {

enum class TxnKind { kNone, kTap, kLoad, kRefund, kOther };

struct TxnView {
  absl::string_view event_id;
  int64_t recorded_at_us = 0;
  TxnKind kind = TxnKind::kNone;  // kOther: another body (not a transaction); kNone: no body
  int64_t amount_fen = 0;
  absl::string_view card_id;
  uint32_t issuer_city = 0;
  uint32_t acquirer_city = 0;
  v1::TransportMode mode = v1::TRANSPORT_MODE_UNSPECIFIED;  // taps
  absl::string_view original_terminal_id;                   // refunds
};

// Reads `bytes` (a serialized tongka.v1.Event) into `out`. False when the bytes are malformed.
bool ParseTxnView(absl::string_view bytes, TxnView* out);

// Moves a view into bytes starting at `from` onto the same bytes starting at `to`: for a view
// kept from Prepare, re-based onto the record being applied (the same partition and offset hold
// the same bytes), so that it depends on nothing but that record. An empty view stays empty.
absl::string_view RebaseView(absl::string_view view, const char* from, const char* to);

// RebaseView on every view of `view`.
void RebaseTxnView(const char* from, const char* to, TxnView* view);

}  // namespace tongka::txn

#endif  // TONGKA_LIBS_TXN_TXN_VIEW_H_
