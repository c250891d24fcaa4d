// Settlement's state layout: the topics and limits both stages share, the key of every stored
// record, and the stored-record helpers both stages use (stage one's id index entries, counters,
// the ledger's coverage values). Stage one is TxnStage (txn_stage.h), stage two WindowLedger
// (window_ledger.h); the readers are in settlement_readers.h.
//
// Keys (state column family):
//   t/<origin>/<hh>/<pppp>/<bucket>                 stage one's index: entries (issuer,
//                                                   acquirer, id length varints, id, zigzag
//                                                   amount, offset - bucket varint), the pairs,
//                                                   ids, signed amounts (refunds < 0) and offsets
//                                                   of the taps and refunds of one hour among
//                                                   partition p's records at offsets
//                                                   [bucket, bucket + kIndexBucketOffsets), in
//                                                   log order (bucket: 20 digits)
//   fz/<window>/<pppp>                              the ledger's: the last offset of partition p
//                                                   counted in the window when it froze (CLOSED
//                                                   or ABORTED); later ones were late
//   lt/<origin>/<pppp>/<first>                      the ledger's: "<last>:<window>", the window
//                                                   late money of those offsets landed in
//   mv/<window>                                     the ledger's: the window an aborted window's
//                                                   money landed in
//   wi/<window>                                     WindowRecord
//   wp/<window>/<issuer>/<acquirer>                 SettlementCell summed over hours (a pair)
//   wc/<window>/<issuer>/<acquirer>/<origin>/<hh>   SettlementCell of one hour
//   wr/<window>                                     SettlementReport (CLOSED and later)
//   f/<city>                                        FloatRecord
//   sc/<city>                                       SuccessionRecord: the city's float was
//                                                   transferred to a successor (no amount)
//   r/<event_id>                                    RequestOutcome of a command
//   cov/<window>/<partition>                        "<last_offset>:<chunk>" of stage one's deltas
//   cvc/<window>/<partition>                        the same for its deltas of tongka.cards
//                                                   partition p (opening balances)
//   stats/<name>                                    decimal counters
//   rf/<pppp>/<original transaction id>             RefundedTap: what the refunds of one tap of
//                                                   partition p reversed so far
//   rfd/<pppp>/<window>/<original transaction id>   "" : the same tap, under the window of its
//                                                   first refund (for the horizon's pruning)
//   rfh/<pppp>                                      the first window still kept: rf records whose
//                                                   first refund is older are deleted
//   ru/<effective window>                           RulesRecord: the business-day and fee rules
//                                                   from that window on ("ru/0000-00-00": the
//                                                   genesis rules), settlement_rules.h
//
// Thread-safety: pure functions, except AddToCounter, which writes to the batch it is given.
// Failure: corrupt stored values come back as INTERNAL (AddToCounter) or false (the parsers).
//
// Example:
//   batch.Put(PairKey("2026-11-24", 310000, 330200), pair.SerializeAsString());
//   // -> "wp/2026-11-24/310000/330200"
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_KEYS_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_KEYS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "libs/state_store/state_store.h"

namespace tongka::settlement {

inline constexpr char kTxnTopic[] = "tongka.txn";
// Read by stage one beside tongka.txn (co-partitioned) for the cards' opening balances.
inline constexpr char kCardsTopic[] = "tongka.cards";
inline constexpr char kSettlementTopic[] = "tongka.settlement";
inline constexpr char kServiceName[] = "settlement";
// Cells per SettlementDelta event: keeps every event far below Kafka's 1 MB message limit.
inline constexpr size_t kCellsPerDeltaMax = 4000;
// Stage one's index groups an hour's ids per bucket of this many offsets of their partition, so
// the index bytes depend only on the log, never on how it was batched (same log, same state).
// One chunk per partition bucket (not per pair) keeps a batch to a few dozen index writes; the
// drill-down of one pair's hour reads the whole hour of this replica's index and keeps the pair's
// entries.
inline constexpr int64_t kIndexBucketOffsets = 1000;

// ---- keys ----
std::string WindowKey(absl::string_view window_id);
std::string PairPrefix(absl::string_view window_id);
std::string PairKey(absl::string_view window_id, uint32_t issuer, uint32_t acquirer);
std::string CellPrefix(absl::string_view window_id, uint32_t issuer, uint32_t acquirer);
std::string CellKey(absl::string_view window_id, uint32_t issuer, uint32_t acquirer,
                    absl::string_view origin_window_id, int32_t hour);
std::string IndexPrefix(absl::string_view origin_window_id, int32_t hour);
// One chunk of the index under IndexPrefix: partition `partition`'s records at offsets
// [bucket, bucket + kIndexBucketOffsets).
std::string IndexChunkKey(absl::string_view origin_window_id, int32_t hour, int32_t partition,
                          int64_t bucket);
std::string ReportKey(absl::string_view window_id);
std::string FloatKey(uint32_t city);
std::string OutcomeKey(absl::string_view event_id);
// "cov/<window>/<partition>": how far the ledger has applied stage one's deltas of one tongka.txn
// partition for one window, as "<last_offset>:<chunk>".
std::string CoverageKey(absl::string_view window_id, int32_t partition);
// The coverage key of a delta's source topic: cov/ for tongka.txn (""), cvc/ for tongka.cards.
std::string CoverageKeyOf(absl::string_view source_topic, absl::string_view window_id,
                          int32_t partition);
// "rf/<pppp>/<original transaction id>": the refunds of one tap so far (RefundedTap).
std::string RefundedTapKey(int32_t partition, absl::string_view original_id);
// The key a command's event goes to on tongka.settlement.
std::string ReserveEventKey(uint32_t city);
// Every float transfer command goes to tongka.settlement under this one key: one partition, in
// order, so that the rules that read another city's succession (successor_transferred) decide
// alike on every replica.
inline constexpr char kSuccessionEventKey[] = "succession";
// "float/<city>": the key of a FloatTransferred event (the audit record of that city's float).
std::string FloatEventKey(uint32_t city);
inline constexpr char kSuccessionPrefix[] = "sc/";
std::string SuccessionKey(uint32_t city);
// Every rules command goes to tongka.settlement under this one key: one partition, in order.
inline constexpr char kRulesEventKey[] = "rules";
inline constexpr char kRulesPrefix[] = "ru/";
// "ru/<effective window>"; the genesis (effective window "") is "ru/0000-00-00", first in order.
std::string RulesKey(absl::string_view effective_window_id);

// Shared by the stages and the readers of this folder; not for callers outside it.
namespace internal {

// The counters behind LedgerStats (settlement_readers.h), under stats/.
inline constexpr absl::string_view kTxnInvalidKey = "stats/txn_invalid";
inline constexpr absl::string_view kDuplicatesKey = "stats/ledger_duplicates";
inline constexpr absl::string_view kLateDeltasKey = "stats/late_deltas";
inline constexpr absl::string_view kViolationsKey = "stats/invariant_violations";
inline constexpr absl::string_view kMismatchesKey = "stats/report_mismatches";
inline constexpr absl::string_view kLedgerUnparseableKey = "stats/ledger_unparseable";
inline constexpr absl::string_view kRefundsCappedKey = "stats/refunds_capped";
inline constexpr absl::string_view kRulesMixedKey = "stats/rules_mixed";
inline constexpr absl::string_view kFloatTransfersKey = "stats/float_transfers";

// Adds `delta` to the decimal counter under `key`; INTERNAL when the stored value is not one.
absl::Status AddToCounter(state_store::StateBatch& batch, absl::string_view key, int64_t delta);

// "rfd/<pppp>/<window>/": the taps of partition p first refunded in that window.
std::string RefundDayPrefix(int32_t partition, absl::string_view window_id);
std::string RefundHorizonKey(int32_t partition);

// The ledger's record of where money went (keys fz/, lt/, mv/).
std::string FreezeKey(absl::string_view window_id, int32_t partition);
std::string LateRangePrefix(absl::string_view origin_window_id, int32_t partition);
std::string MoveKey(absl::string_view window_id);

// Parses a coverage value "<last_offset>:<chunk>"; false when it does not parse.
bool ParseCoverage(absl::string_view text, int64_t* last, int32_t* chunk);

// Stage one's index values: entries back to back, each the pair (two varints), the id's length
// (varint), the id, the signed amount (zigzag varint) and the record's offset within its bucket
// (varint), in protobuf's encodings. Appending to a chunk is appending bytes.
void AppendIndexEntry(uint32_t issuer, uint32_t acquirer, absl::string_view id, int64_t amount_fen,
                      int64_t offset_in_bucket, std::string* entries);

struct IndexEntry {
  std::string id;
  int64_t amount_fen = 0;
  int64_t offset_in_bucket = 0;
};

// Appends the entries of (issuer, acquirer) in `entries` to `out`; false when they do not parse
// to the end.
bool ReadIndexEntries(absl::string_view entries, uint32_t issuer, uint32_t acquirer,
                      std::vector<IndexEntry>* out);

}  // namespace internal
}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_KEYS_H_
