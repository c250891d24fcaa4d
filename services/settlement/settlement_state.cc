#include "services/settlement/settlement_state.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "libs/crypto/sm3.h"
#include "libs/crypto/sm3_lanes.h"
#include "libs/txn/terminal_id.h"
#include "libs/txn/txn_view.h"

namespace tongka::settlement {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;
using state_store::StateBatch;
using txn::ParseTxnView;
using txn::TxnKind;
using txn::TxnView;

constexpr absl::string_view kTxnInvalidKey = "stats/txn_invalid";
constexpr absl::string_view kDuplicatesKey = "stats/ledger_duplicates";
constexpr absl::string_view kLateDeltasKey = "stats/late_deltas";
constexpr absl::string_view kViolationsKey = "stats/invariant_violations";
constexpr absl::string_view kMismatchesKey = "stats/report_mismatches";
constexpr absl::string_view kLedgerUnparseableKey = "stats/ledger_unparseable";
constexpr absl::string_view kRefundsCappedKey = "stats/refunds_capped";

std::string City(uint32_t city) { return absl::StrFormat("%06u", city); }

absl::Status AddToCounter(StateBatch& batch, absl::string_view key, int64_t delta) {
  if (delta == 0) return absl::OkStatus();
  absl::StatusOr<std::optional<std::string>> current = batch.Get(key);
  if (!current.ok()) return current.status();
  int64_t n = 0;
  if (current->has_value() && !absl::SimpleAtoi(**current, &n)) {
    return absl::InternalError(absl::StrCat("corrupt counter ", key));
  }
  batch.Put(key, absl::StrCat(n + delta));
  return absl::OkStatus();
}

// Reads a stored message; nullopt when the key is absent. A record that does not parse is
// corruption (INTERNAL), never silently a default.
template <typename Message>
absl::StatusOr<std::optional<Message>> ReadMessage(const StateView& view, absl::string_view key) {
  absl::StatusOr<std::optional<std::string>> bytes = view.get(key);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return std::optional<Message>();
  Message message;
  if (!message.ParseFromString(**bytes)) {
    return absl::InternalError(absl::StrCat("corrupt stored record ", key));
  }
  return std::optional<Message>(std::move(message));
}

template <typename Message>
absl::StatusOr<std::vector<Message>> ScanMessages(const StateView& view, absl::string_view prefix) {
  std::vector<Message> out;
  bool corrupt = false;
  absl::Status status = view.scan(prefix, [&](absl::string_view, absl::string_view value) {
    out.emplace_back();
    corrupt = !out.back().ParseFromArray(value.data(), static_cast<int>(value.size()));
    return !corrupt;
  });
  if (!status.ok()) return status;
  if (corrupt) return absl::InternalError(absl::StrCat("corrupt stored record under ", prefix));
  return out;
}

bool ValidWindowState(v1::WindowState state) {
  return state >= v1::WINDOW_STATE_OPEN && state <= v1::WINDOW_STATE_ABORTED;
}

bool AcceptsDeltas(v1::WindowState state) {
  return state == v1::WINDOW_STATE_OPEN || state == v1::WINDOW_STATE_CLOSING;
}

// The mode whose fee rate a refund reverses: that of the refunded tap's terminal.
v1::TransportMode RefundedMode(absl::string_view original_terminal_id) {
  absl::StatusOr<txn::TerminalId> terminal = txn::ParseTerminalId(original_terminal_id);
  if (!terminal.ok()) return v1::TRANSPORT_MODE_UNSPECIFIED;
  if (terminal->owner == txn::TerminalOwner::kPartner) return v1::TRANSPORT_MODE_RETAIL;
  return terminal->mode;
}

// Stage one's index values: entries back to back, each the pair (two varints), the id's length
// (varint), the id, the signed amount (zigzag varint) and the record's offset within its bucket
// (varint), in protobuf's encodings. Appending to a chunk is appending bytes.
void AppendIndexEntry(uint32_t issuer, uint32_t acquirer, absl::string_view id, int64_t amount_fen,
                      int64_t offset_in_bucket, std::string* entries) {
  uint8_t buffer[4 * 10];  // four varints at their longest
  uint8_t* end = CodedOutputStream::WriteVarint32ToArray(issuer, buffer);
  end = CodedOutputStream::WriteVarint32ToArray(acquirer, end);
  end = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(id.size()), end);
  entries->append(reinterpret_cast<const char*>(buffer), end - buffer);
  entries->append(id.data(), id.size());
  end = CodedOutputStream::WriteVarint64ToArray(WireFormatLite::ZigZagEncode64(amount_fen), buffer);
  end = CodedOutputStream::WriteVarint64ToArray(static_cast<uint64_t>(offset_in_bucket), end);
  entries->append(reinterpret_cast<const char*>(buffer), end - buffer);
}

struct IndexEntry {
  std::string id;
  int64_t amount_fen = 0;
  int64_t offset_in_bucket = 0;
};

// Appends the entries of (issuer, acquirer) in `entries` to `out`; false when they do not parse
// to the end.
bool ReadIndexEntries(absl::string_view entries, uint32_t issuer, uint32_t acquirer,
                      std::vector<IndexEntry>* out) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(entries.data()),
                      static_cast<int>(entries.size()));
  while (in.CurrentPosition() < static_cast<int>(entries.size())) {
    uint32_t entry_issuer = 0;
    uint32_t entry_acquirer = 0;
    uint32_t size = 0;
    std::string id;
    uint64_t zigzag = 0;
    uint64_t offset_in_bucket = 0;
    if (!in.ReadVarint32(&entry_issuer) || !in.ReadVarint32(&entry_acquirer) ||
        !in.ReadVarint32(&size) || size == 0 || !in.ReadString(&id, static_cast<int>(size)) ||
        !in.ReadVarint64(&zigzag) || !in.ReadVarint64(&offset_in_bucket) ||
        offset_in_bucket >= static_cast<uint64_t>(kIndexBucketOffsets)) {
      return false;
    }
    if (entry_issuer == issuer && entry_acquirer == acquirer) {
      out->push_back(IndexEntry{std::move(id), WireFormatLite::ZigZagDecode64(zigzag),
                                static_cast<int64_t>(offset_in_bucket)});
    }
  }
  return true;
}

std::string Partition4(int32_t partition) {
  return absl::StrCat(absl::Dec(partition, absl::kZeroPad4));
}

// "rfd/<pppp>/<window>/": the taps of partition p first refunded in that window.
std::string RefundDayPrefix(int32_t partition, absl::string_view window_id) {
  return absl::StrCat("rfd/", Partition4(partition), "/", window_id, "/");
}
std::string RefundHorizonKey(int32_t partition) {
  return absl::StrCat("rfh/", Partition4(partition));
}

// The ledger's record of where money went (settlement_state.h, keys fz/, lt/, mv/).
std::string FreezeKey(absl::string_view window_id, int32_t partition) {
  return absl::StrCat("fz/", window_id, "/", Partition4(partition));
}
std::string LateRangePrefix(absl::string_view origin_window_id, int32_t partition) {
  return absl::StrCat("lt/", origin_window_id, "/", Partition4(partition), "/");
}
std::string MoveKey(absl::string_view window_id) { return absl::StrCat("mv/", window_id); }

bool ParseCoverage(absl::string_view text, int64_t* last, int32_t* chunk) {
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(text, ':');
  return absl::SimpleAtoi(parts.first, last) && absl::SimpleAtoi(parts.second, chunk);
}

}  // namespace

// ---- keys ----

std::string WindowKey(absl::string_view window_id) { return absl::StrCat("wi/", window_id); }
std::string PairPrefix(absl::string_view window_id) { return absl::StrCat("wp/", window_id, "/"); }
std::string PairKey(absl::string_view window_id, uint32_t issuer, uint32_t acquirer) {
  return absl::StrCat("wp/", window_id, "/", City(issuer), "/", City(acquirer));
}
std::string CellPrefix(absl::string_view window_id, uint32_t issuer, uint32_t acquirer) {
  return absl::StrCat("wc/", window_id, "/", City(issuer), "/", City(acquirer), "/");
}
std::string CellKey(absl::string_view window_id, uint32_t issuer, uint32_t acquirer,
                    absl::string_view origin_window_id, int32_t hour) {
  return absl::StrCat(CellPrefix(window_id, issuer, acquirer), origin_window_id,
                      absl::StrFormat("/%02d", hour));
}
std::string IndexPrefix(absl::string_view origin_window_id, int32_t hour) {
  return absl::StrCat("t/", origin_window_id, absl::StrFormat("/%02d/", hour));
}
std::string IndexChunkKey(absl::string_view origin_window_id, int32_t hour, int32_t partition,
                          int64_t bucket) {
  return absl::StrCat(IndexPrefix(origin_window_id, hour), absl::Dec(partition, absl::kZeroPad4),
                      "/", absl::Dec(bucket, absl::kZeroPad20));
}
std::string ReportKey(absl::string_view window_id) { return absl::StrCat("wr/", window_id); }
std::string FloatKey(uint32_t city) { return absl::StrCat("f/", City(city)); }
std::string OutcomeKey(absl::string_view event_id) { return absl::StrCat("r/", event_id); }
std::string CoverageKey(absl::string_view window_id, int32_t partition) {
  return absl::StrCat("cov/", window_id, "/", partition);
}
std::string ReserveEventKey(uint32_t city) { return absl::StrCat("float/", City(city)); }
std::string RefundedTapKey(int32_t partition, absl::string_view original_id) {
  return absl::StrCat("rf/", Partition4(partition), "/", original_id);
}

// ---- cells and digests ----

namespace {

// The two halves an id adds to a cell's digest: the first 16 bytes of its SM3, little-endian.
void DigestHalves(const crypto::Sm3Digest& digest, uint64_t* lo, uint64_t* hi) {
  *lo = 0;
  *hi = 0;
  for (int i = 7; i >= 0; --i) *lo = (*lo << 8) | digest[i];
  for (int i = 15; i >= 8; --i) *hi = (*hi << 8) | digest[i];
}

void IdDigest(absl::string_view event_id, uint64_t* lo, uint64_t* hi) {
  DigestHalves(crypto::Sm3(event_id), lo, hi);
}

void AddDigest(uint64_t lo, uint64_t hi, v1::SettlementCell* cell) {
  cell->set_id_digest_lo(cell->id_digest_lo() + lo);  // modulo 2^64: unsigned wrap-around
  cell->set_id_digest_hi(cell->id_digest_hi() + hi);
}

}  // namespace

void AddIdToDigest(absl::string_view event_id, v1::SettlementCell* cell) {
  uint64_t lo = 0;
  uint64_t hi = 0;
  IdDigest(event_id, &lo, &hi);
  AddDigest(lo, hi, cell);
}

void AddCell(const v1::SettlementCell& from, v1::SettlementCell* into) {
  into->set_taps(into->taps() + from.taps());
  into->set_taps_fen(into->taps_fen() + from.taps_fen());
  into->set_refunds(into->refunds() + from.refunds());
  into->set_refunds_fen(into->refunds_fen() + from.refunds_fen());
  into->set_fee_fen(into->fee_fen() + from.fee_fen());
  into->set_loads(into->loads() + from.loads());
  into->set_loads_fen(into->loads_fen() + from.loads_fen());
  into->set_id_digest_lo(into->id_digest_lo() + from.id_digest_lo());
  into->set_id_digest_hi(into->id_digest_hi() + from.id_digest_hi());
}

std::string DigestHex(const v1::SettlementCell& cell) {
  return absl::StrFormat("%016x%016x", cell.id_digest_hi(), cell.id_digest_lo());
}

int64_t CountOf(const v1::SettlementCell& cell) { return cell.taps() + cell.refunds(); }
int64_t GrossFenOf(const v1::SettlementCell& cell) { return cell.taps_fen() - cell.refunds_fen(); }

// ---- the report ----

v1::BilateralPosition PositionOf(const v1::SettlementCell& pair) {
  v1::BilateralPosition position;
  position.set_issuer_city(pair.issuer_city());
  position.set_acquirer_city(pair.acquirer_city());
  position.set_count(CountOf(pair));
  position.set_gross_fen(GrossFenOf(pair));
  position.set_fee_fen(pair.fee_fen());
  position.set_net_fen(GrossFenOf(pair) - pair.fee_fen());
  position.set_refunds(pair.refunds());
  position.set_refunds_fen(pair.refunds_fen());
  return position;
}

std::vector<v1::NetPosition> NetPositions(const std::vector<v1::BilateralPosition>& bilateral) {
  std::map<uint32_t, int64_t> net;
  for (const v1::BilateralPosition& row : bilateral) {
    net[row.issuer_city()];  // every city that appears, same-city-only ones with 0
    net[row.acquirer_city()];
    if (row.issuer_city() == row.acquirer_city()) continue;  // float, not inter-city money
    net[row.acquirer_city()] += row.net_fen();
    net[row.issuer_city()] -= row.net_fen();
  }
  std::vector<v1::NetPosition> out;
  out.reserve(net.size());
  for (const auto& [city, fen] : net) {
    out.emplace_back();
    out.back().set_city(city);
    out.back().set_net_fen(fen);
  }
  return out;
}

std::string ReportDigest(const v1::SettlementReport& report) {
  v1::SettlementReport copy = report;
  copy.clear_digest();
  const crypto::Sm3Digest digest = crypto::Sm3(copy.SerializeAsString());
  return std::string(crypto::AsStringView(digest));
}

v1::SettlementReport BuildReport(absl::string_view window_id,
                                 const std::vector<v1::SettlementCell>& pairs) {
  std::vector<v1::BilateralPosition> bilateral;
  bilateral.reserve(pairs.size());
  for (const v1::SettlementCell& pair : pairs) bilateral.push_back(PositionOf(pair));
  std::sort(bilateral.begin(), bilateral.end(), [](const auto& a, const auto& b) {
    return std::pair(a.issuer_city(), a.acquirer_city()) <
           std::pair(b.issuer_city(), b.acquirer_city());
  });
  v1::SettlementReport report;
  report.set_window_id(std::string(window_id));
  for (v1::NetPosition& net : NetPositions(bilateral)) {
    if (net.net_fen() > 0)
      report.set_total_receivable_fen(report.total_receivable_fen() + net.net_fen());
    if (net.net_fen() < 0) report.set_total_payable_fen(report.total_payable_fen() - net.net_fen());
    *report.add_net() = std::move(net);
  }
  for (v1::BilateralPosition& row : bilateral) *report.add_bilateral() = std::move(row);
  report.set_digest(ReportDigest(report));
  return report;
}

std::vector<std::string> CheckReportInvariants(const v1::SettlementReport& report) {
  std::vector<std::string> violations;
  int64_t sum = 0;
  int64_t receivable = 0;
  int64_t payable = 0;
  for (const v1::NetPosition& net : report.net()) {
    sum += net.net_fen();
    if (net.net_fen() > 0) receivable += net.net_fen();
    if (net.net_fen() < 0) payable -= net.net_fen();
  }
  if (sum != 0) violations.push_back(absl::StrCat("net_sums_to_zero: nets sum to ", sum, " fen"));
  if (receivable != payable || receivable != report.total_receivable_fen() ||
      payable != report.total_payable_fen()) {
    violations.push_back(absl::StrCat("payables_equal_receivables: receivable ", receivable,
                                      " fen, payable ", payable, " fen"));
  }
  // The bilateral rows must re-net to the same positions.
  std::vector<v1::BilateralPosition> rows(report.bilateral().begin(), report.bilateral().end());
  std::vector<v1::NetPosition> renet = NetPositions(rows);
  bool same = static_cast<int>(renet.size()) == report.net_size();
  for (size_t i = 0; same && i < renet.size(); ++i) {
    same = renet[i].city() == report.net(static_cast<int>(i)).city() &&
           renet[i].net_fen() == report.net(static_cast<int>(i)).net_fen();
  }
  if (!same) violations.push_back("bilateral_nets_to_net: rows do not net to the net positions");
  for (const v1::BilateralPosition& row : rows) {
    if (row.net_fen() != row.gross_fen() - row.fee_fen()) {
      violations.push_back(
          absl::StrCat("net_is_gross_minus_fee: ", row.issuer_city(), "->", row.acquirer_city()));
    }
  }
  return violations;
}

// ---- stage one ----

TxnStage::OpenCell& TxnStage::CellFor(int32_t partition, const std::string& window_id,
                                      uint32_t issuer, uint32_t acquirer, int32_t hour,
                                      StateBatch& batch) {
  // Most records of a batch share a window: compare with the last one before searching.
  int32_t window = static_cast<int32_t>(windows_.size()) - 1;
  if (window < 0 || windows_[window] != window_id) {
    window = static_cast<int32_t>(std::find(windows_.begin(), windows_.end(), window_id) -
                                  windows_.begin());
    if (window == static_cast<int32_t>(windows_.size())) windows_.push_back(window_id);
  }
  const CellId id{partition, window, issuer, acquirer, hour};
  auto [slot, inserted] = cell_slots_.try_emplace(id, cells_.size());
  if (!inserted) return cells_[slot->second];
  OpenCell& open = cells_.emplace_back();
  open.id = id;
  open.cell.set_issuer_city(issuer);
  open.cell.set_acquirer_city(acquirer);
  open.cell.set_origin_window_id(window_id);
  open.cell.set_hour(hour);
  open.covered_up_to = CoveredUpTo(batch, window_id, partition);
  return open;
}

int64_t TxnStage::CoveredUpTo(StateBatch& batch, const std::string& window_id, int32_t partition) {
  auto [it, inserted] = coverage_.try_emplace({window_id, partition}, -1);
  if (inserted) {
    absl::StatusOr<std::optional<std::string>> stored =
        batch.Get(CoverageKey(window_id, partition));
    int64_t last = -1;
    int32_t chunk = 0;
    if (stored.ok() && stored->has_value()) {
      CHECK(ParseCoverage(**stored, &last, &chunk)) << "corrupt coverage " << **stored;
    }
    CHECK(stored.ok()) << stored.status();
    it->second = last;
  }
  return it->second;
}

namespace {

// The id's digest, from Prepare when it hashed it.
template <typename PreparedRecord>
void AddRecordDigest(const PreparedRecord* prepared, absl::string_view event_id,
                     v1::SettlementCell* cell) {
  if (prepared != nullptr) {
    AddDigest(prepared->id_digest_lo, prepared->id_digest_hi, cell);
  } else {
    AddIdToDigest(event_id, cell);
  }
}

}  // namespace

void TxnStage::Prepare(const std::vector<event_log::Record>& records) {
  std::vector<state_store::PreparedQueue<Prepared>::Entry> prepared(records.size());
  // The ids to hash, all at once: SM3 in eight lanes costs about what one id costs through EVP.
  std::vector<absl::string_view> ids;
  std::vector<Prepared*> hashed;
  ids.reserve(records.size());
  hashed.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    const event_log::Record& record = records[i];
    prepared[i].partition = record.partition;
    prepared[i].offset = record.offset;
    Prepared& p = prepared[i].value;
    p.base = record.value.data();
    p.parsed = ParseTxnView(record.value, &p.txn);
    if (p.parsed && (p.txn.kind == TxnKind::kTap || p.txn.kind == TxnKind::kRefund)) {
      ids.push_back(p.txn.event_id);
      hashed.push_back(&p);
    }
  }
  std::vector<crypto::Sm3Digest> digests(ids.size());
  crypto::Sm3Many(ids, absl::MakeSpan(digests));
  for (size_t i = 0; i < hashed.size(); ++i) {
    DigestHalves(digests[i], &hashed[i]->id_digest_lo, &hashed[i]->id_digest_hi);
  }
  prepared_.Push(std::move(prepared));
}

const TxnStage::Prepared* TxnStage::TakePrepared(const event_log::Record& record) {
  Prepared* p = prepared_.Take(record);
  if (p == nullptr) return nullptr;
  // The record may have moved since Prepare; its bytes did not, but the views are re-based on
  // them to depend on nothing but this record (an entry left by a loop that stopped may outlive
  // the bytes it was read from).
  txn::RebaseTxnView(p->base, record.value.data(), &p->txn);
  p->base = record.value.data();
  return p;
}

absl::Status TxnStage::Apply(const event_log::Record& record, StateBatch& batch) {
  const Prepared* prepared = TakePrepared(record);
  TxnView own;
  const bool parsed = prepared != nullptr ? prepared->parsed : ParseTxnView(record.value, &own);
  const TxnView& txn = prepared != nullptr ? prepared->txn : own;
  if (!parsed ||
      (txn.kind != TxnKind::kTap && txn.kind != TxnKind::kRefund && txn.kind != TxnKind::kLoad)) {
    ++invalid_;
    return absl::OkStatus();
  }
  const int64_t amount_fen = txn.amount_fen;
  // Ingest validated all of this; a record that still breaks it is counted, never guessed at.
  if (txn.issuer_city == 0 || txn.acquirer_city == 0 || amount_fen <= 0 ||
      amount_fen >= (int64_t{1} << 40) || txn.event_id.empty() || txn.recorded_at_us <= 0) {
    ++invalid_;
    return absl::OkStatus();
  }
  int32_t hour = 0;
  const std::string& window_id = slots_.Lookup(txn.recorded_at_us, &hour);
  RefundReversal reversal;
  if (txn.kind == TxnKind::kRefund) {
    absl::StatusOr<std::optional<RefundReversal>> reversed =
        ReverseRefundOf(record, txn, window_id, batch);
    if (!reversed.ok()) return reversed.status();
    if (!reversed->has_value()) {
      ++invalid_;
      return absl::OkStatus();
    }
    reversal = **reversed;
  }
  const uint32_t issuer = txn.issuer_city;
  const uint32_t acquirer = txn.acquirer_city;
  OpenCell& open = CellFor(record.partition, window_id, issuer, acquirer, hour, batch);

  // The stage-one index: every tap and refund id with its pair, under its hour, for the id
  // drill-down. A partition's records nearly always go on into the chunk its last record went to.
  if (txn.kind != TxnKind::kLoad) {
    const int64_t bucket = record.offset - record.offset % kIndexBucketOffsets;
    auto [last, first_of_partition] = last_chunk_.try_emplace(record.partition, chunks_.size());
    if (first_of_partition || chunks_[last->second].window != open.id.window ||
        chunks_[last->second].hour != hour || chunks_[last->second].bucket != bucket) {
      last->second = chunks_.size();
      chunks_.push_back(OpenChunk{
          .partition = record.partition, .window = open.id.window, .hour = hour, .bucket = bucket});
    }
    AppendIndexEntry(issuer, acquirer, txn.event_id,
                     txn.kind == TxnKind::kTap ? amount_fen : -reversal.refund_fen,
                     record.offset - bucket, &chunks_[last->second].entries);
  }
  if (record.offset <= open.covered_up_to) {
    return absl::OkStatus();  // already in the ledger's deltas (a rebuild)
  }

  Source& source = sources_[{record.partition, open.id.window}];
  if (source.first_offset < 0) source.first_offset = record.offset;
  source.last_offset = record.offset;
  open.counted = true;
  v1::SettlementCell& cell = open.cell;
  switch (txn.kind) {
    case TxnKind::kTap:
      cell.set_taps(cell.taps() + 1);
      cell.set_taps_fen(cell.taps_fen() + amount_fen);
      cell.set_fee_fen(cell.fee_fen() + fees_->FeeFen(amount_fen, acquirer, txn.mode));
      AddRecordDigest(prepared, txn.event_id, &cell);
      break;
    case TxnKind::kRefund:
      cell.set_refunds(cell.refunds() + 1);
      cell.set_refunds_fen(cell.refunds_fen() + reversal.refund_fen);
      cell.set_fee_fen(cell.fee_fen() - reversal.fee_fen);
      AddRecordDigest(prepared, txn.event_id, &cell);
      break;
    default:  // load
      cell.set_loads(cell.loads() + 1);
      cell.set_loads_fen(cell.loads_fen() + amount_fen);
      break;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<RefundReversal>> TxnStage::ReverseRefundOf(
    const event_log::Record& record, const TxnView& txn, const std::string& window_id,
    StateBatch& batch) {
  // Refunds are rare: the fields the wire reader leaves out come from a full parse.
  v1::Event event;
  if (!event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())) ||
      !event.has_refund() || event.refund().original_terminal_id().empty()) {
    return std::optional<RefundReversal>();
  }
  const v1::Refund& refund = event.refund();
  auto pruned = refunds_pruned_for_.find(record.partition);
  if (pruned == refunds_pruned_for_.end() || pruned->second != window_id) {
    absl::StatusOr<absl::CivilDay> day = ParseWindowId(window_id);
    CHECK(day.ok()) << day.status();
    absl::Status status = PruneRefundedTaps(record.partition, *day, batch);
    if (!status.ok()) return status;
    refunds_pruned_for_[record.partition] = window_id;
  }
  const std::string original_id =
      absl::StrCat("txn/", refund.original_terminal_id(), "/", refund.original_terminal_seq());
  const std::string key = RefundedTapKey(record.partition, original_id);
  absl::StatusOr<std::optional<std::string>> stored = batch.Get(key);
  if (!stored.ok()) return stored.status();
  RefundedTap tap;
  if (stored->has_value()) {
    if (!tap.ParseFromString(**stored) || tap.first_window_id().empty()) {
      return absl::InternalError(absl::StrCat("corrupt refund record ", key));
    }
  } else {
    tap.set_basis_points(
        fees_->BasisPoints(txn.acquirer_city, RefundedMode(txn.original_terminal_id)));
    tap.set_first_window_id(window_id);
    batch.Put(absl::StrCat(RefundDayPrefix(record.partition, window_id), original_id), "");
  }
  if (tap.original_amount_fen() == 0 && refund.original_amount_fen() > 0) {
    tap.set_original_amount_fen(refund.original_amount_fen());
  }
  const RefundReversal reversal = ReverseRefund(
      {.refunded_fen = tap.refunded_fen(), .fee_reversed_fen = tap.fee_reversed_fen()},
      txn.amount_fen, tap.original_amount_fen(), tap.basis_points());
  DCHECK(tap.original_amount_fen() == 0 ||
         tap.refunded_fen() + reversal.refund_fen <= tap.original_amount_fen());
  if (reversal.refund_fen < txn.amount_fen) ++refunds_capped_;
  tap.set_refunded_fen(tap.refunded_fen() + reversal.refund_fen);
  tap.set_fee_reversed_fen(tap.fee_reversed_fen() + reversal.fee_fen);
  tap.set_refunds(tap.refunds() + 1);
  batch.Put(key, tap.SerializeAsString());
  return std::optional<RefundReversal>(reversal);
}

absl::Status TxnStage::PruneRefundedTaps(int32_t partition, absl::CivilDay day, StateBatch& batch) {
  const absl::CivilDay keep_from = day - kRefundHorizonWindows;
  const std::string horizon_key = RefundHorizonKey(partition);
  absl::StatusOr<std::optional<std::string>> stored = batch.Get(horizon_key);
  if (!stored.ok()) return stored.status();
  if (stored->has_value()) {
    absl::StatusOr<absl::CivilDay> kept_from = ParseWindowId(**stored);
    if (!kept_from.ok()) {
      return absl::InternalError(absl::StrCat("corrupt refund horizon ", horizon_key));
    }
    if (*kept_from >= keep_from) return absl::OkStatus();
    // One window at a time: each scan reads only the taps first refunded that day.
    for (absl::CivilDay expired_day = *kept_from; expired_day < keep_from; ++expired_day) {
      const std::string prefix = RefundDayPrefix(partition, WindowIdOf(expired_day));
      std::vector<std::string> expired;
      absl::Status scanned =
          batch.ScanPrefix(prefix, [&](absl::string_view key, absl::string_view) {
            expired.emplace_back(key);
            return true;
          });
      if (!scanned.ok()) return scanned;
      for (const std::string& key : expired) {
        batch.Delete(RefundedTapKey(partition, absl::string_view(key).substr(prefix.size())));
        batch.Delete(key);
      }
    }
  }
  // With no record yet, nothing older exists: the horizon starts here.
  batch.Put(horizon_key, WindowIdOf(keep_from));
  return absl::OkStatus();
}

absl::Status TxnStage::FinishBatch(StateBatch& batch) {
  absl::Status counted = AddToCounter(batch, kTxnInvalidKey, invalid_);
  invalid_ = 0;
  if (!counted.ok()) return counted;
  counted = AddToCounter(batch, kRefundsCappedKey, refunds_capped_);
  refunds_capped_ = 0;
  if (!counted.ok()) return counted;
  // (partition, window, issuer, acquirer, hour) order: the deltas' contents and the outbox order
  // do not depend on the order records arrived in within the batch.
  std::vector<OpenCell*> sorted;
  sorted.reserve(cells_.size());
  for (OpenCell& open : cells_) sorted.push_back(&open);
  std::sort(sorted.begin(), sorted.end(), [this](const OpenCell* a, const OpenCell* b) {
    return std::tie(a->id.partition, windows_[a->id.window], a->id.issuer, a->id.acquirer,
                    a->id.hour) < std::tie(b->id.partition, windows_[b->id.window], b->id.issuer,
                                           b->id.acquirer, b->id.hour);
  });
  // The index: this batch's entries go after what their chunks already hold. Records arrive in
  // offset order per partition and chunks_ is in arrival order, so each chunk grows in log
  // order, however the log was batched.
  for (const OpenChunk& chunk : chunks_) {
    batch.Append(IndexChunkKey(windows_[chunk.window], chunk.hour, chunk.partition, chunk.bucket),
                 chunk.entries);
  }
  // One delta per (partition, window) with counted cells, chunked; the sort made each group
  // contiguous.
  size_t i = 0;
  while (i < sorted.size()) {
    const int32_t partition = sorted[i]->id.partition;
    const int32_t window = sorted[i]->id.window;
    std::vector<OpenCell*> group;
    for (; i < sorted.size() && sorted[i]->id.partition == partition &&
           sorted[i]->id.window == window;
         ++i) {
      if (sorted[i]->counted) group.push_back(sorted[i]);
    }
    if (group.empty()) continue;
    const std::string& window_id = windows_[window];
    const Source& source = sources_.at({partition, window});
    const int32_t chunks =
        static_cast<int32_t>((group.size() + kCellsPerDeltaMax - 1) / kCellsPerDeltaMax);
    for (int32_t chunk = 0; chunk < chunks; ++chunk) {
      v1::Event event;
      event.set_event_id(absl::StrCat(kServiceName, "/", kTxnTopic, "/", partition, "/",
                                      source.first_offset, "-", source.last_offset, "/", window_id,
                                      "/", chunk));
      event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
      event.mutable_source()->set_service(kServiceName);
      v1::SettlementDelta* delta = event.mutable_settlement_delta();
      delta->set_window_id(window_id);
      delta->set_source_partition(partition);
      delta->set_first_offset(source.first_offset);
      delta->set_last_offset(source.last_offset);
      delta->set_chunk(chunk);
      delta->set_chunks(chunks);
      const size_t begin = static_cast<size_t>(chunk) * kCellsPerDeltaMax;
      const size_t end = std::min(group.size(), begin + kCellsPerDeltaMax);
      for (size_t j = begin; j < end; ++j) *delta->add_cells() = std::move(group[j]->cell);
      batch.AppendOutbox(kSettlementTopic, window_id, event.SerializeAsString());
    }
  }
  windows_.clear();
  cells_.clear();
  cell_slots_.clear();
  chunks_.clear();
  last_chunk_.clear();
  sources_.clear();
  return absl::OkStatus();
}

// ---- stage two ----

absl::Status WindowLedger::Apply(const event_log::Record& record, StateBatch& batch) {
  v1::Event event;
  if (!event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())) ||
      event.event_id().empty()) {
    return AddToCounter(batch, kLedgerUnparseableKey, 1);
  }
  switch (event.body_case()) {
    case v1::Event::kSettlementDelta:
      return ApplyDelta(record, event, batch);
    case v1::Event::kWindowCloseRequested:
      return ApplyWindowRequest(record, event, batch);
    case v1::Event::kFloatReserveRecorded:
      return ApplyReserve(event, batch);
    case v1::Event::kSettlementReport:
      return ApplyReport(event, batch);
    case v1::Event::kSettlementWindowChanged:
    case v1::Event::kSettlementInvariantViolated:
      return absl::OkStatus();  // our own audit trail: the state already has the decision
    default:
      return AddToCounter(batch, kLedgerUnparseableKey, 1);
  }
}

absl::Status WindowLedger::ApplyDelta(const event_log::Record& record, const v1::Event& event,
                                      StateBatch& batch) {
  const v1::SettlementDelta& delta = event.settlement_delta();
  if (!ParseWindowId(delta.window_id()).ok()) return AddToCounter(batch, kLedgerUnparseableKey, 1);

  // Exactly once: carried deltas by event id; stage one's by the offsets they cover.
  if (delta.carried()) {
    absl::StatusOr<bool> first = batch.MarkSeen(event.event_id());
    if (!first.ok()) return first.status();
    if (!*first) return AddToCounter(batch, kDuplicatesKey, 1);
  } else {
    const std::string key = CoverageKey(delta.window_id(), delta.source_partition());
    absl::StatusOr<std::optional<std::string>> stored = batch.Get(key);
    if (!stored.ok()) return stored.status();
    int64_t last = -1;
    int32_t chunk = -1;
    if (stored->has_value() && !ParseCoverage(**stored, &last, &chunk)) {
      return absl::InternalError(absl::StrCat("corrupt coverage ", key));
    }
    const bool next_chunk = delta.last_offset() == last && delta.chunk() == chunk + 1;
    const bool next_batch = delta.first_offset() > last && delta.chunk() == 0;
    if (!next_chunk && !next_batch) {
      if (delta.last_offset() < last || (delta.last_offset() == last && delta.chunk() <= chunk)) {
        return AddToCounter(batch, kDuplicatesKey, 1);  // a resend
      }
      // Overlapping offsets would count transactions twice or lose them: never guess.
      return absl::InternalError(absl::StrCat(
          "settlement delta ", event.event_id(), " overlaps what the ledger applied (", key, " = ",
          stored->value_or("none"), "): a stage one emitted across a stale coverage"));
    }
    batch.Put(key, absl::StrCat(delta.last_offset(), ":", delta.chunk()));
  }

  absl::StatusOr<std::optional<WindowRecord>> window = ReadWindow(ViewOf(batch), delta.window_id());
  if (!window.ok()) return window.status();
  WindowRecord record_now = window->value_or(WindowRecord());
  if (!window->has_value()) record_now.set_state(v1::WINDOW_STATE_OPEN);

  // The issuer's all-time float moves when the transactions first arrive, wherever they land.
  if (!delta.carried()) {
    std::map<uint32_t, v1::SettlementCell> by_issuer;
    for (const v1::SettlementCell& cell : delta.cells())
      AddCell(cell, &by_issuer[cell.issuer_city()]);
    for (const auto& [city, sum] : by_issuer) {
      absl::StatusOr<std::optional<FloatRecord>> stored =
          ReadMessage<FloatRecord>(ViewOf(batch), FloatKey(city));
      if (!stored.ok()) return stored.status();
      FloatRecord fl = stored->value_or(FloatRecord());
      fl.set_loads_fen(fl.loads_fen() + sum.loads_fen());
      fl.set_spent_fen(fl.spent_fen() + sum.taps_fen());
      fl.set_refunded_fen(fl.refunded_fen() + sum.refunds_fen());
      batch.Put(FloatKey(city), fl.SerializeAsString());
    }
  }

  if (!AcceptsDeltas(record_now.state())) {
    // Late: the window is frozen. Its owner carries the cells into the next day's window.
    record_now.set_late_deltas(record_now.late_deltas() + 1);
    batch.Put(WindowKey(delta.window_id()), record_now.SerializeAsString());
    // Where the money comes from travels with it, so its ids can follow it when it lands.
    v1::SettlementDelta provenance;
    if (delta.carried()) {
      provenance.set_late_window_id(delta.late_window_id());
      provenance.set_late_source_partition(delta.late_source_partition());
      provenance.set_late_first_offset(delta.late_first_offset());
      provenance.set_late_last_offset(delta.late_last_offset());
      provenance.set_moved_window_id(delta.moved_window_id());
    } else {
      provenance.set_late_window_id(delta.window_id());
      provenance.set_late_source_partition(delta.source_partition());
      provenance.set_late_first_offset(delta.first_offset());
      provenance.set_late_last_offset(delta.last_offset());
    }
    CarryForward(record, event.event_id(), delta.window_id(),
                 std::vector<v1::SettlementCell>(delta.cells().begin(), delta.cells().end()),
                 provenance, batch);
    return AddToCounter(batch, kLateDeltasKey, 1);
  }

  // Carried money lands here: record where, for the id index (ReadCellTransactions).
  if (delta.carried() && !delta.late_window_id().empty()) {
    batch.Put(absl::StrCat(LateRangePrefix(delta.late_window_id(), delta.late_source_partition()),
                           absl::Dec(delta.late_first_offset(), absl::kZeroPad20)),
              absl::StrCat(delta.late_last_offset(), ":", delta.window_id()));
  }
  if (delta.carried() && !delta.moved_window_id().empty()) {
    absl::StatusOr<std::optional<std::string>> moved = batch.Get(MoveKey(delta.moved_window_id()));
    if (!moved.ok()) return moved.status();
    // Chunks of one move land together unless a close falls between them; the first decides.
    if (!moved->has_value()) batch.Put(MoveKey(delta.moved_window_id()), delta.window_id());
  }

  std::map<std::pair<uint32_t, uint32_t>, v1::SettlementCell> pairs;
  int64_t transactions = 0;
  for (const v1::SettlementCell& cell : delta.cells()) {
    const std::string cell_key =
        CellKey(delta.window_id(), cell.issuer_city(), cell.acquirer_city(),
                cell.origin_window_id(), cell.hour());
    absl::StatusOr<std::optional<v1::SettlementCell>> stored =
        ReadMessage<v1::SettlementCell>(ViewOf(batch), cell_key);
    if (!stored.ok()) return stored.status();
    v1::SettlementCell sum = stored->value_or(v1::SettlementCell());
    if (!stored->has_value()) {
      sum.set_issuer_city(cell.issuer_city());
      sum.set_acquirer_city(cell.acquirer_city());
      sum.set_origin_window_id(cell.origin_window_id());
      sum.set_hour(cell.hour());
    }
    AddCell(cell, &sum);
    batch.Put(cell_key, sum.SerializeAsString());
    AddCell(cell, &pairs[{cell.issuer_city(), cell.acquirer_city()}]);
    transactions += CountOf(cell);
  }
  for (const auto& [where, add] : pairs) {
    const std::string pair_key = PairKey(delta.window_id(), where.first, where.second);
    absl::StatusOr<std::optional<v1::SettlementCell>> stored =
        ReadMessage<v1::SettlementCell>(ViewOf(batch), pair_key);
    if (!stored.ok()) return stored.status();
    v1::SettlementCell sum = stored->value_or(v1::SettlementCell());
    sum.set_issuer_city(where.first);
    sum.set_acquirer_city(where.second);
    sum.set_hour(-1);
    AddCell(add, &sum);
    batch.Put(pair_key, sum.SerializeAsString());
  }
  record_now.set_transactions(record_now.transactions() + transactions);
  batch.Put(WindowKey(delta.window_id()), record_now.SerializeAsString());
  return absl::OkStatus();
}

void WindowLedger::CarryForward(const event_log::Record& record, absl::string_view base_event_id,
                                absl::string_view from_window,
                                std::vector<v1::SettlementCell> cells,
                                const v1::SettlementDelta& provenance, StateBatch& batch) {
  if (!Owns(record.partition) || cells.empty()) return;
  const std::string next = WindowIdOf(*ParseWindowId(from_window) + 1);
  const int32_t chunks =
      static_cast<int32_t>((cells.size() + kCellsPerDeltaMax - 1) / kCellsPerDeltaMax);
  size_t i = 0;
  for (int32_t chunk = 0; chunk < chunks; ++chunk) {
    v1::Event event;
    event.set_event_id(absl::StrCat(base_event_id, "/carry/", next, "/", chunk));
    event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
    event.mutable_source()->set_service(kServiceName);
    v1::SettlementDelta* delta = event.mutable_settlement_delta();
    delta->set_window_id(next);
    delta->set_source_partition(-1);
    delta->set_carried(true);
    delta->set_carried_from_window_id(std::string(from_window));
    delta->set_late_window_id(provenance.late_window_id());
    delta->set_late_source_partition(provenance.late_source_partition());
    delta->set_late_first_offset(provenance.late_first_offset());
    delta->set_late_last_offset(provenance.late_last_offset());
    delta->set_moved_window_id(provenance.moved_window_id());
    delta->set_chunk(chunk);
    delta->set_chunks(chunks);
    for (size_t n = 0; n < kCellsPerDeltaMax && i < cells.size(); ++n, ++i) {
      *delta->add_cells() = std::move(cells[i]);
    }
    batch.AppendOutbox(kSettlementTopic, next, event.SerializeAsString());
  }
}

absl::StatusOr<RequestOutcome> WindowLedger::Decide(const event_log::Record& record,
                                                    const v1::Event& event, StateBatch& batch) {
  const v1::WindowCloseRequested& request = event.window_close_requested();
  RequestOutcome outcome;
  auto refuse = [&](absl::string_view rule, std::string message) {
    outcome.set_accepted(false);
    outcome.set_rule(std::string(rule));
    outcome.set_message(std::move(message));
    return outcome;
  };
  absl::StatusOr<absl::CivilDay> day = ParseWindowId(request.window_id());
  if (!day.ok()) return refuse("window_id_format", std::string(day.status().message()));
  const v1::WindowState target = request.target_state();
  if (target != v1::WINDOW_STATE_CLOSING && target != v1::WINDOW_STATE_CLOSED &&
      target != v1::WINDOW_STATE_SETTLED && target != v1::WINDOW_STATE_ABORTED) {
    return refuse("target_state", "target_state must be CLOSING, CLOSED, SETTLED or ABORTED");
  }
  // Only the ministry and the platform's own schedule move windows (the API checks too; the
  // ledger is the last word, for any writer of the topic).
  const v1::Tenant& source = event.source();
  const bool allowed =
      source.kind() == v1::TENANT_KIND_MINISTRY ||
      (source.kind() == v1::TENANT_KIND_PLATFORM && source.service() == kServiceName);
  if (!allowed) return refuse("ministry_only", "only the ministry moves settlement windows");

  absl::StatusOr<std::optional<WindowRecord>> stored =
      ReadWindow(ViewOf(batch), request.window_id());
  if (!stored.ok()) return stored.status();
  WindowRecord window = stored->value_or(WindowRecord());
  if (!stored->has_value()) {
    if (target == v1::WINDOW_STATE_SETTLED || target == v1::WINDOW_STATE_ABORTED) {
      return refuse("unknown_window",
                    absl::StrCat("window ", request.window_id(), " has no transactions"));
    }
    // An empty window may close (its report is empty) once its business day has begun.
    if (options_.calendar != nullptr &&
        absl::FromUnixMicros(event.recorded_at_us()) < options_.calendar->Start(*day)) {
      return refuse("window_not_started",
                    absl::StrCat("window ", request.window_id(), " has not begun"));
    }
    window.set_state(v1::WINDOW_STATE_OPEN);
  }
  const v1::WindowState from = window.state();
  outcome.set_state(from);
  if (from == target) {
    return refuse("already_in_state", absl::StrCat("window ", request.window_id(), " is already ",
                                                   v1::WindowState_Name(from)));
  }
  if (from == v1::WINDOW_STATE_SETTLED || from == v1::WINDOW_STATE_ABORTED) {
    return refuse("window_final", absl::StrCat("window ", request.window_id(), " is ",
                                               v1::WindowState_Name(from), ", which is final"));
  }
  bool legal = false;
  switch (target) {
    case v1::WINDOW_STATE_CLOSING:
      legal = from == v1::WINDOW_STATE_OPEN;
      break;
    case v1::WINDOW_STATE_CLOSED:
      legal = AcceptsDeltas(from);
      break;
    case v1::WINDOW_STATE_SETTLED:
      legal = from == v1::WINDOW_STATE_CLOSED;
      break;
    default:  // ABORTED: any state before SETTLED
      legal = true;
      break;
  }
  if (!legal) {
    return refuse("window_not_closed",
                  absl::StrCat("window ", request.window_id(), " is ", v1::WindowState_Name(from),
                               "; ", v1::WindowState_Name(target), " is not reachable from it"));
  }

  if (target == v1::WINDOW_STATE_SETTLED) {
    absl::StatusOr<std::optional<v1::SettlementReport>> report =
        ReadReport(ViewOf(batch), request.window_id());
    if (!report.ok()) return report.status();
    CHECK(report->has_value()) << "a CLOSED window without a report: " << request.window_id();
    window.clear_payment_references();
    for (const v1::NetPosition& net : (*report)->net()) {
      auto ref = request.payment_references().find(net.city());
      const bool has_ref = ref != request.payment_references().end() && !ref->second.empty();
      if (net.net_fen() != 0 && !has_ref) {
        return refuse("payment_references",
                      absl::StrCat("city ", net.city(), " has a net of ", net.net_fen(),
                                   " fen and no payment reference"));
      }
      if (has_ref) {
        PaymentReference* stored_ref = window.add_payment_references();
        stored_ref->set_city(net.city());
        stored_ref->set_reference(ref->second);
      }
    }
  }

  if (target == v1::WINDOW_STATE_CLOSED) {
    absl::StatusOr<std::vector<v1::SettlementCell>> pairs =
        ReadPairs(ViewOf(batch), request.window_id());
    if (!pairs.ok()) return pairs.status();
    v1::SettlementReport report = BuildReport(request.window_id(), *pairs);
    std::vector<std::string> violations =
        options_.check_report ? options_.check_report(report) : CheckReportInvariants(report);
    if (!violations.empty()) {
      // Figures that break an invariant are never paid on: the window keeps its state and
      // takes no report; the ministry sees why and closes it again once it is understood.
      for (const std::string& violation : violations) {
        LOG(ERROR) << "settlement invariant violated in window " << request.window_id() << ": "
                   << violation << "; the report is withheld";
      }
      absl::Status counted =
          AddToCounter(batch, kViolationsKey, static_cast<int64_t>(violations.size()));
      if (!counted.ok()) return counted;
      window.clear_invariant_violations();
      for (const std::string& violation : violations) window.add_invariant_violations(violation);
      batch.Put(WindowKey(request.window_id()), window.SerializeAsString());
      if (Owns(record.partition)) {
        v1::Event out;
        out.set_event_id(state_store::DerivedEventId(kServiceName, record, "invariant"));
        out.set_recorded_at_us(event.recorded_at_us());
        out.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
        out.mutable_source()->set_service(kServiceName);
        v1::SettlementInvariantViolated* violated = out.mutable_settlement_invariant_violated();
        violated->set_window_id(request.window_id());
        violated->set_request_id(request.request_id());
        violated->set_state(from);
        for (const std::string& violation : violations) violated->add_violations(violation);
        violated->set_report_digest(report.digest());
        batch.AppendOutbox(kSettlementTopic, request.window_id(), out.SerializeAsString());
      }
      return refuse(
          "invariant_violation",
          absl::StrCat("window ", request.window_id(), " stays ", v1::WindowState_Name(from),
                       ": its report breaks ", absl::StrJoin(violations, "; ")));
    }
    window.clear_invariant_violations();
    window.set_report_digest(report.digest());
    if (absl::Status frozen = RecordFreeze(request.window_id(), batch); !frozen.ok()) {
      return frozen;
    }
    batch.Put(ReportKey(request.window_id()), report.SerializeAsString());
    if (Owns(record.partition)) {
      v1::Event out;
      out.set_event_id(state_store::DerivedEventId(kServiceName, record, "report"));
      out.set_recorded_at_us(event.recorded_at_us());
      out.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
      out.mutable_source()->set_service(kServiceName);
      *out.mutable_settlement_report() = std::move(report);
      batch.AppendOutbox(kSettlementTopic, request.window_id(), out.SerializeAsString());
    }
  }

  if (target == v1::WINDOW_STATE_ABORTED) {
    // Nothing of an aborted window is paid: its transactions move to the next open window.
    absl::StatusOr<std::vector<v1::SettlementCell>> cells = ScanMessages<v1::SettlementCell>(
        ViewOf(batch), absl::StrCat("wc/", request.window_id(), "/"));
    if (!cells.ok()) return cells.status();
    if (AcceptsDeltas(from)) {
      if (absl::Status frozen = RecordFreeze(request.window_id(), batch); !frozen.ok()) {
        return frozen;
      }
    }
    v1::SettlementDelta provenance;
    provenance.set_moved_window_id(request.window_id());
    CarryForward(record, absl::StrCat(kServiceName, "/abort/", request.window_id()),
                 request.window_id(), std::move(*cells), provenance, batch);
    window.set_reason(request.reason());
  }

  window.set_state(target);
  window.set_last_request_id(request.request_id());
  window.set_changed_at_us(event.recorded_at_us());
  batch.Put(WindowKey(request.window_id()), window.SerializeAsString());
  if (Owns(record.partition)) {
    v1::Event out;
    out.set_event_id(state_store::DerivedEventId(kServiceName, record, "changed"));
    out.set_recorded_at_us(event.recorded_at_us());
    out.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
    out.mutable_source()->set_service(kServiceName);
    v1::SettlementWindowChanged* changed = out.mutable_settlement_window_changed();
    changed->set_window_id(request.window_id());
    changed->set_old_state(from);
    changed->set_new_state(target);
    changed->set_request_id(request.request_id());
    for (const PaymentReference& ref : window.payment_references()) {
      (*changed->mutable_payment_references())[ref.city()] = ref.reference();
    }
    batch.AppendOutbox(kSettlementTopic, request.window_id(), out.SerializeAsString());
  }
  outcome.set_accepted(true);
  outcome.set_state(target);
  return outcome;
}

absl::Status WindowLedger::RecordFreeze(absl::string_view window_id, StateBatch& batch) {
  const std::string prefix = absl::StrCat("cov/", window_id, "/");
  std::vector<std::pair<int32_t, int64_t>> covered;
  bool corrupt = false;
  absl::Status scanned =
      batch.ScanPrefix(prefix, [&](absl::string_view key, absl::string_view value) {
        int32_t partition = 0;
        int64_t last = -1;
        int32_t chunk = 0;
        corrupt = !absl::SimpleAtoi(key.substr(prefix.size()), &partition) ||
                  !ParseCoverage(value, &last, &chunk);
        covered.emplace_back(partition, last);
        return !corrupt;
      });
  if (!scanned.ok()) return scanned;
  if (corrupt) return absl::InternalError(absl::StrCat("corrupt coverage under ", prefix));
  for (const auto& [partition, last] : covered) {
    batch.Put(FreezeKey(window_id, partition), absl::StrCat(last));
  }
  return absl::OkStatus();
}

absl::Status WindowLedger::ApplyWindowRequest(const event_log::Record& record,
                                              const v1::Event& event, StateBatch& batch) {
  absl::StatusOr<bool> first = batch.MarkSeen(event.event_id());
  if (!first.ok()) return first.status();
  if (!*first) return AddToCounter(batch, kDuplicatesKey, 1);
  absl::StatusOr<RequestOutcome> outcome = Decide(record, event, batch);
  if (!outcome.ok()) return outcome.status();
  batch.Put(OutcomeKey(event.event_id()), outcome->SerializeAsString());
  return absl::OkStatus();
}

absl::Status WindowLedger::ApplyReserve(const v1::Event& event, StateBatch& batch) {
  absl::StatusOr<bool> first = batch.MarkSeen(event.event_id());
  if (!first.ok()) return first.status();
  if (!*first) return AddToCounter(batch, kDuplicatesKey, 1);
  const v1::FloatReserveRecorded& reserve = event.float_reserve_recorded();
  RequestOutcome outcome;
  const bool own = event.source().kind() == v1::TENANT_KIND_CITY_OPERATOR &&
                   event.source().city() == reserve.issuer_city();
  if (!own) {
    outcome.set_rule("issuer_only");
    outcome.set_message("only the issuer city records its own reserve");
  } else if (reserve.reserve_fen() < 0) {
    outcome.set_rule("reserve_fen_non_negative");
    outcome.set_message("reserve_fen must be >= 0");
  } else {
    absl::StatusOr<std::optional<FloatRecord>> stored =
        ReadMessage<FloatRecord>(ViewOf(batch), FloatKey(reserve.issuer_city()));
    if (!stored.ok()) return stored.status();
    FloatRecord fl = stored->value_or(FloatRecord());
    fl.set_reserve_fen(reserve.reserve_fen());
    fl.set_reserve_reference(reserve.reference());
    fl.set_reserve_recorded(true);
    batch.Put(FloatKey(reserve.issuer_city()), fl.SerializeAsString());
    outcome.set_accepted(true);
  }
  batch.Put(OutcomeKey(event.event_id()), outcome.SerializeAsString());
  return absl::OkStatus();
}

absl::Status WindowLedger::ApplyReport(const v1::Event& event, StateBatch& batch) {
  const v1::SettlementReport& theirs = event.settlement_report();
  absl::StatusOr<std::optional<v1::SettlementReport>> ours =
      ReadReport(ViewOf(batch), theirs.window_id());
  if (!ours.ok()) return ours.status();
  if (!ours->has_value() || (*ours)->digest() != theirs.digest() ||
      ReportDigest(theirs) != theirs.digest()) {
    LOG(ERROR) << "report on the log for window " << theirs.window_id()
               << " differs from this replica's: replicas disagree";
    return AddToCounter(batch, kMismatchesKey, 1);
  }
  return absl::OkStatus();
}

// ---- readers ----

StateView ViewOf(const state_store::StateStore& store) {
  return StateView{
      [&store](absl::string_view key) { return store.Get(key); },
      [&store](absl::string_view prefix,
               const std::function<bool(absl::string_view, absl::string_view)>& visit) {
        return store.ScanPrefix(prefix, visit);
      }};
}

StateView ViewOf(const StateBatch& batch) {
  return StateView{
      [&batch](absl::string_view key) { return batch.Get(key); },
      [&batch](absl::string_view prefix,
               const std::function<bool(absl::string_view, absl::string_view)>& visit) {
        return batch.ScanPrefix(prefix, visit);
      }};
}

absl::StatusOr<std::optional<WindowRecord>> ReadWindow(const StateView& view,
                                                       absl::string_view window_id) {
  absl::StatusOr<std::optional<WindowRecord>> window =
      ReadMessage<WindowRecord>(view, WindowKey(window_id));
  if (window.ok() && window->has_value() && !ValidWindowState((*window)->state())) {
    return absl::InternalError(absl::StrCat("window ", window_id, " stored with no valid state"));
  }
  return window;
}

absl::StatusOr<std::vector<std::pair<std::string, WindowRecord>>> ReadWindows(
    const StateView& view) {
  std::vector<std::pair<std::string, WindowRecord>> out;
  bool corrupt = false;
  absl::Status status = view.scan("wi/", [&](absl::string_view key, absl::string_view value) {
    out.emplace_back(std::string(key.substr(3)), WindowRecord());
    corrupt = !out.back().second.ParseFromArray(value.data(), static_cast<int>(value.size())) ||
              !ValidWindowState(out.back().second.state());
    return !corrupt;
  });
  if (!status.ok()) return status;
  if (corrupt) return absl::InternalError("corrupt window record");
  return out;
}

absl::StatusOr<std::vector<v1::SettlementCell>> ReadPairs(const StateView& view,
                                                          absl::string_view window_id) {
  return ScanMessages<v1::SettlementCell>(view, PairPrefix(window_id));
}

absl::StatusOr<std::vector<v1::SettlementCell>> ReadHours(const StateView& view,
                                                          absl::string_view window_id,
                                                          uint32_t issuer, uint32_t acquirer) {
  return ScanMessages<v1::SettlementCell>(view, CellPrefix(window_id, issuer, acquirer));
}

absl::StatusOr<std::optional<v1::SettlementReport>> ReadReport(const StateView& view,
                                                               absl::string_view window_id) {
  return ReadMessage<v1::SettlementReport>(view, ReportKey(window_id));
}

namespace {

// Which window the money of each record of one origin window was counted in, from the ledger's
// records (fz/, lt/, mv/): counted in the origin when the origin never froze or the record's
// offset was covered when it froze; else where its late offset range landed. Then on through
// the windows an abort moved it to. Reads each key once.
class MoneyWindows {
 public:
  MoneyWindows(const StateView& view, absl::string_view origin_window_id)
      : view_(view), origin_(origin_window_id) {}

  // The window, or nullopt when the money is on its way (a carried delta not applied yet).
  absl::StatusOr<std::optional<std::string>> WindowOf(int32_t partition, int64_t offset) {
    if (!origin_state_.has_value()) {
      absl::StatusOr<std::optional<WindowRecord>> origin = ReadWindow(view_, origin_);
      if (!origin.ok()) return origin.status();
      origin_state_ = origin->has_value() ? (*origin)->state() : v1::WINDOW_STATE_OPEN;
    }
    if (AcceptsDeltas(*origin_state_)) return Follow(origin_);
    absl::StatusOr<const Filing*> filing = FilingOf(partition);
    if (!filing.ok()) return filing.status();
    if (offset <= (*filing)->frozen_last) return Follow(origin_);
    auto range = (*filing)->late.upper_bound(offset);
    if (range == (*filing)->late.begin()) return std::optional<std::string>();
    --range;
    if (offset > range->second.first) return std::optional<std::string>();
    return Follow(range->second.second);
  }

 private:
  struct Filing {
    int64_t frozen_last = -1;  // the last offset counted in the origin before it froze
    std::map<int64_t, std::pair<int64_t, std::string>> late;  // first -> (last, landed in)
  };

  absl::StatusOr<const Filing*> FilingOf(int32_t partition) {
    auto [it, inserted] = filings_.try_emplace(partition);
    if (!inserted) return &it->second;
    Filing& filing = it->second;
    absl::StatusOr<std::optional<std::string>> frozen = view_.get(FreezeKey(origin_, partition));
    if (!frozen.ok()) return frozen.status();
    if (frozen->has_value() && !absl::SimpleAtoi(**frozen, &filing.frozen_last)) {
      return absl::InternalError(absl::StrCat("corrupt freeze record of ", origin_));
    }
    const std::string prefix = LateRangePrefix(origin_, partition);
    bool corrupt = false;
    absl::Status scanned = view_.scan(prefix, [&](absl::string_view key, absl::string_view value) {
      int64_t first = 0;
      int64_t last = 0;
      std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(value, ':');
      corrupt = !absl::SimpleAtoi(key.substr(prefix.size()), &first) ||
                !absl::SimpleAtoi(parts.first, &last) || parts.second.empty();
      filing.late[first] = {last, std::string(parts.second)};
      return !corrupt;
    });
    if (!scanned.ok()) return scanned;
    if (corrupt) return absl::InternalError(absl::StrCat("corrupt late range under ", prefix));
    return &filing;
  }

  // `window`, or where an abort moved its money (again and again).
  absl::StatusOr<std::optional<std::string>> Follow(const std::string& window) {
    auto known = followed_.find(window);
    if (known != followed_.end()) return known->second;
    std::optional<std::string> landed = window;
    absl::StatusOr<std::optional<WindowRecord>> record = ReadWindow(view_, window);
    if (!record.ok()) return record.status();
    if (record->has_value() && (*record)->state() == v1::WINDOW_STATE_ABORTED) {
      absl::StatusOr<std::optional<std::string>> moved = view_.get(MoveKey(window));
      if (!moved.ok()) return moved.status();
      landed.reset();
      if (moved->has_value()) {
        absl::StatusOr<std::optional<std::string>> next = Follow(**moved);
        if (!next.ok()) return next.status();
        landed = *next;
      }
    }
    followed_[window] = landed;
    return landed;
  }

  const StateView& view_;
  const std::string origin_;
  std::optional<v1::WindowState> origin_state_;
  std::map<int32_t, Filing> filings_;
  std::map<std::string, std::optional<std::string>> followed_;
};

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, int64_t>>> ReadCellTransactions(
    const StateView& view, absl::string_view window_id, absl::string_view origin_window_id,
    uint32_t issuer, uint32_t acquirer, int32_t hour) {
  const std::string prefix = IndexPrefix(origin_window_id, hour);
  std::vector<std::pair<int32_t, int64_t>> chunks;  // (partition, bucket) of each chunk's entries
  std::vector<std::vector<IndexEntry>> entries;
  bool corrupt = false;
  absl::Status status = view.scan(prefix, [&](absl::string_view key, absl::string_view value) {
    std::pair<absl::string_view, absl::string_view> where =
        absl::StrSplit(key.substr(prefix.size()), '/');
    int32_t partition = 0;
    int64_t bucket = 0;
    entries.emplace_back();
    corrupt = value.empty() || !absl::SimpleAtoi(where.first, &partition) ||
              !absl::SimpleAtoi(where.second, &bucket) ||
              !ReadIndexEntries(value, issuer, acquirer, &entries.back());
    chunks.emplace_back(partition, bucket);
    return !corrupt;
  });
  if (!status.ok()) return status;
  if (corrupt) return absl::InternalError(absl::StrCat("corrupt index under ", prefix));
  MoneyWindows windows(view, origin_window_id);
  std::vector<std::pair<std::string, int64_t>> out;
  for (size_t i = 0; i < chunks.size(); ++i) {
    for (IndexEntry& entry : entries[i]) {
      absl::StatusOr<std::optional<std::string>> counted_in =
          windows.WindowOf(chunks[i].first, chunks[i].second + entry.offset_in_bucket);
      if (!counted_in.ok()) return counted_in.status();
      if (*counted_in == window_id) out.emplace_back(std::move(entry.id), entry.amount_fen);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::map<uint32_t, FloatRecord>> ReadFloats(const StateView& view) {
  std::map<uint32_t, FloatRecord> out;
  bool corrupt = false;
  absl::Status status = view.scan("f/", [&](absl::string_view key, absl::string_view value) {
    uint32_t city = 0;
    FloatRecord record;
    corrupt = !absl::SimpleAtoi(key.substr(2), &city) ||
              !record.ParseFromArray(value.data(), static_cast<int>(value.size()));
    out[city] = std::move(record);
    return !corrupt;
  });
  if (!status.ok()) return status;
  if (corrupt) return absl::InternalError("corrupt float record");
  return out;
}

absl::StatusOr<std::optional<RequestOutcome>> ReadOutcome(const StateView& view,
                                                          absl::string_view event_id) {
  return ReadMessage<RequestOutcome>(view, OutcomeKey(event_id));
}

absl::StatusOr<LedgerStats> ReadStats(const StateView& view) {
  LedgerStats stats;
  for (auto [key, field] : {std::pair{kDuplicatesKey, &stats.duplicates_dropped},
                            std::pair{kLateDeltasKey, &stats.late_deltas},
                            std::pair{kViolationsKey, &stats.invariant_violations},
                            std::pair{kMismatchesKey, &stats.report_mismatches},
                            std::pair{kLedgerUnparseableKey, &stats.ledger_unparseable},
                            std::pair{kTxnInvalidKey, &stats.txn_invalid},
                            std::pair{kRefundsCappedKey, &stats.refunds_capped}}) {
    absl::StatusOr<std::optional<std::string>> value = view.get(key);
    if (!value.ok()) return value.status();
    if (value->has_value() && !absl::SimpleAtoi(**value, field)) {
      return absl::InternalError(absl::StrCat("corrupt counter ", key));
    }
  }
  return stats;
}

}  // namespace tongka::settlement
