#include "services/settlement/txn_stage.h"

#include <glog/logging.h>

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "libs/crypto/sm3.h"
#include "libs/crypto/sm3_lanes.h"
#include "libs/txn/card_id.h"
#include "libs/txn/terminal_id.h"
#include "services/settlement/settlement_keys.h"
#include "services/settlement/settlement_report.h"
#include "services/settlement/settlement_storage.pb.h"

namespace tongka::settlement {
namespace {

using internal::AddDigest;
using internal::AddToCounter;
using internal::AppendIndexEntry;
using internal::DigestHalves;
using internal::kRefundsCappedKey;
using internal::kTxnInvalidKey;
using internal::ParseCoverage;
using internal::RefundDayPrefix;
using internal::RefundHorizonKey;
using state_store::StateBatch;
using txn::ParseTxnView;
using txn::TxnKind;
using txn::TxnView;

// The mode whose fee rate a refund reverses: that of the refunded tap's terminal.
v1::TransportMode RefundedMode(absl::string_view original_terminal_id) {
  absl::StatusOr<txn::TerminalId> terminal = txn::ParseTerminalId(original_terminal_id);
  if (!terminal.ok()) return v1::TRANSPORT_MODE_UNSPECIFIED;
  if (terminal->owner == txn::TerminalOwner::kPartner) return v1::TRANSPORT_MODE_RETAIL;
  return terminal->mode;
}

}  // namespace

absl::Status TxnStage::RefreshRules(StateBatch& batch) {
  absl::StatusOr<std::shared_ptr<const RulesTimeline>> rules = rules_cache_.Get(ViewOf(batch));
  if (!rules.ok()) return rules.status();
  if (*rules == nullptr) {
    return absl::FailedPreconditionError(
        "settlement rules: none on tongka.settlement yet; the app records the genesis rules "
        "before stage one starts");
  }
  if (*rules != rules_) {
    rules_ = *std::move(rules);
    slots_.Reset(rules_.get());
  }
  rules_read_ = true;
  return absl::OkStatus();
}

TxnStage::OpenCell& TxnStage::CellFor(int32_t partition, const std::string& window_id,
                                      const RulesPeriod& rules, uint32_t issuer, uint32_t acquirer,
                                      int32_t hour, StateBatch& batch) {
  // Most records of a batch share a window: compare with the last one before searching.
  int32_t window = static_cast<int32_t>(windows_.size()) - 1;
  if (window < 0 || windows_[window] != window_id) {
    window = static_cast<int32_t>(std::find(windows_.begin(), windows_.end(), window_id) -
                                  windows_.begin());
    if (window == static_cast<int32_t>(windows_.size())) {
      windows_.push_back(window_id);
      window_rules_.push_back(rules.rules_id());
    }
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

int64_t TxnStage::CoveredUpTo(StateBatch& batch, const std::string& window_id, int32_t source) {
  auto [it, inserted] = coverage_.try_emplace({window_id, source}, -1);
  if (inserted) {
    absl::StatusOr<std::optional<std::string>> stored =
        batch.Get(CoverageKeyOf(TopicOf(source), window_id, PartitionOf(source)));
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
  std::vector<state_store::PreparedQueue<Prepared>::Entry> prepared;
  prepared.reserve(records.size());  // `hashed` points into it
  // The ids to hash, all at once: SM3 in eight lanes costs about what one id costs through EVP.
  std::vector<absl::string_view> ids;
  std::vector<Prepared*> hashed;
  ids.reserve(records.size());
  hashed.reserve(records.size());
  for (const event_log::Record& record : records) {
    // Only tongka.txn's records are prepared: the queue matches entries by partition and offset,
    // and a tongka.cards record at the same pair would otherwise stand in for a transaction.
    if (record.topic != kTxnTopic) continue;
    state_store::PreparedQueue<Prepared>::Entry& entry = prepared.emplace_back();
    entry.partition = record.partition;
    entry.offset = record.offset;
    Prepared& p = entry.value;
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
  if (!rules_read_) {
    if (absl::Status read = RefreshRules(batch); !read.ok()) return read;
  }
  if (record.topic == kCardsTopic) return ApplyCard(record, batch);
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
  const RulesPeriod* rules = nullptr;
  const std::string& window_id = slots_.Lookup(txn.recorded_at_us, &hour, &rules);
  const FeeSchedule& fees = rules->fees();
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
  OpenCell& open = CellFor(record.partition, window_id, *rules, issuer, acquirer, hour, batch);

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
      cell.set_fee_fen(cell.fee_fen() + fees.FeeFen(amount_fen, acquirer, txn.mode));
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

absl::Status TxnStage::ApplyCard(const event_log::Record& record, StateBatch& batch) {
  // Only the registry's decisions move money here (facts it decided, never requests): an
  // opening balance enters the issuer's float (CardIssued); the balance of a closed card, and a
  // carried balance the replacement could not take, leave it as owed to the holder
  // (CardStatusChanged CLOSED with balance_owed_fen, CarriedBalanceReturned). A replacement's
  // carried balance moves within one issuer's cards and changes no float.
  v1::Event event;
  if (!event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size()))) {
    return absl::OkStatus();
  }
  const bool from_registry = event.source().kind() == v1::TENANT_KIND_PLATFORM &&
                             event.source().service() == kCardRegistryService;
  uint32_t issuer = 0;
  int64_t amount_fen = 0;
  bool payout = false;
  switch (event.body_case()) {
    case v1::Event::kCardIssued:
      issuer = event.card_issued().issuer_city();
      amount_fen = event.card_issued().initial_balance_fen();
      break;
    case v1::Event::kCardStatusChanged: {
      const v1::CardStatusChanged& changed = event.card_status_changed();
      if (changed.new_status() != v1::CARD_STATUS_CLOSED) return absl::OkStatus();
      absl::StatusOr<uint32_t> city = txn::ParseCardId(changed.card_id());
      issuer = city.ok() ? *city : 0;
      amount_fen = changed.balance_owed_fen();
      payout = true;
      break;
    }
    case v1::Event::kCarriedBalanceReturned:
      issuer = event.carried_balance_returned().issuer_city();
      amount_fen = event.carried_balance_returned().amount_fen();
      payout = true;
      break;
    default:
      return absl::OkStatus();  // commands, refusals, derived commands
  }
  if (!from_registry || amount_fen <= 0 || amount_fen >= (int64_t{1} << 40) || issuer == 0 ||
      event.recorded_at_us() <= 0) {
    if (amount_fen != 0 || !from_registry) ++invalid_;
    return absl::OkStatus();
  }
  int32_t hour = 0;
  const RulesPeriod* rules = nullptr;
  const std::string& window_id = slots_.Lookup(event.recorded_at_us(), &hour, &rules);
  const int32_t source_id = kCardsSource + record.partition;
  OpenCell& open = CellFor(source_id, window_id, *rules, issuer, issuer, hour, batch);
  if (record.offset <= open.covered_up_to) return absl::OkStatus();  // a rebuild
  Source& source = sources_[{source_id, open.id.window}];
  if (source.first_offset < 0) source.first_offset = record.offset;
  source.last_offset = record.offset;
  open.counted = true;
  if (payout) {
    open.cell.set_payouts(open.cell.payouts() + 1);
    open.cell.set_payouts_fen(open.cell.payouts_fen() + amount_fen);
  } else {
    open.cell.set_openings(open.cell.openings() + 1);
    open.cell.set_openings_fen(open.cell.openings_fen() + amount_fen);
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
    // The tap was in this window or an earlier one within the horizon, perhaps under other
    // fees: the lowest rate among them never reverses more fee than the tap paid.
    absl::StatusOr<absl::CivilDay> day = ParseWindowId(window_id);
    CHECK(day.ok()) << day.status();
    tap.set_basis_points(rules_->MinBasisPoints(*day - kRefundHorizonWindows, *day,
                                                txn.acquirer_city,
                                                RefundedMode(txn.original_terminal_id)));
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
      event.set_event_id(absl::StrCat(kServiceName, "/", TopicOf(partition), "/",
                                      PartitionOf(partition), "/", source.first_offset, "-",
                                      source.last_offset, "/", window_id, "/", chunk));
      event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
      event.mutable_source()->set_service(kServiceName);
      v1::SettlementDelta* delta = event.mutable_settlement_delta();
      delta->set_window_id(window_id);
      delta->set_source_partition(PartitionOf(partition));
      if (partition >= kCardsSource) delta->set_source_topic(kCardsTopic);
      delta->set_first_offset(source.first_offset);
      delta->set_last_offset(source.last_offset);
      delta->set_chunk(chunk);
      delta->set_chunks(chunks);
      delta->set_rules_id(window_rules_[window]);
      const size_t begin = static_cast<size_t>(chunk) * kCellsPerDeltaMax;
      const size_t end = std::min(group.size(), begin + kCellsPerDeltaMax);
      for (size_t j = begin; j < end; ++j) *delta->add_cells() = std::move(group[j]->cell);
      batch.AppendOutbox(kSettlementTopic, window_id, event.SerializeAsString());
    }
  }
  windows_.clear();
  window_rules_.clear();
  rules_read_ = false;
  cells_.clear();
  cell_slots_.clear();
  chunks_.clear();
  last_chunk_.clear();
  sources_.clear();
  return absl::OkStatus();
}

}  // namespace tongka::settlement
