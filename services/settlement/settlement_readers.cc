#include "services/settlement/settlement_readers.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "services/settlement/settlement_keys.h"

namespace tongka::settlement {
namespace {

using internal::AcceptsDeltas;
using internal::FreezeKey;
using internal::IndexEntry;
using internal::kDuplicatesKey;
using internal::kFloatTransfersKey;
using internal::kLateDeltasKey;
using internal::kLedgerUnparseableKey;
using internal::kMismatchesKey;
using internal::kRefundsCappedKey;
using internal::kRulesMixedKey;
using internal::kTxnInvalidKey;
using internal::kViolationsKey;
using internal::LateRangePrefix;
using internal::MoveKey;
using internal::ReadIndexEntries;
using internal::ReadMessage;
using internal::ScanMessages;
using state_store::StateBatch;

bool ValidWindowState(v1::WindowState state) {
  return state >= v1::WINDOW_STATE_OPEN && state <= v1::WINDOW_STATE_ABORTED;
}

}  // namespace

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

int64_t OutstandingFen(const FloatRecord& record) {
  return record.opening_fen() + record.loads_fen() - record.spent_fen() + record.refunded_fen() -
         record.owed_to_holders_fen();
}

int64_t FloatChangeFen(const v1::SettlementCell& cell) {
  return cell.openings_fen() + cell.loads_fen() - cell.taps_fen() + cell.refunds_fen() -
         cell.payouts_fen();
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

absl::StatusOr<std::map<uint32_t, SuccessionRecord>> ReadSuccessions(const StateView& view) {
  std::map<uint32_t, SuccessionRecord> out;
  bool corrupt = false;
  absl::Status status =
      view.scan(kSuccessionPrefix, [&](absl::string_view key, absl::string_view value) {
        uint32_t city = 0;
        SuccessionRecord record;
        corrupt = !absl::SimpleAtoi(key.substr(sizeof(kSuccessionPrefix) - 1), &city) ||
                  !record.ParseFromArray(value.data(), static_cast<int>(value.size())) ||
                  record.to_city() == 0;
        out[city] = std::move(record);
        return !corrupt;
      });
  if (!status.ok()) return status;
  if (corrupt) return absl::InternalError("corrupt succession record");
  return out;
}

absl::StatusOr<std::map<uint32_t, FoldedFloat>> FoldFloats(
    const std::map<uint32_t, FloatRecord>& floats,
    const std::map<uint32_t, SuccessionRecord>& successions) {
  std::map<uint32_t, FoldedFloat> out;
  for (const auto& [city, record] : floats) {
    out[city].record = record;
    out[city].own_fen = OutstandingFen(record);
  }
  for (const auto& [from, succession] : successions) {
    out[from].successor = succession.to_city();
    out[succession.to_city()];  // a successor with no float of its own still carries some
  }
  for (auto& [city, folded] : out) {
    if (folded.successor == 0) continue;
    uint32_t carrier = folded.successor;
    // A chain visits each city at most once; more steps than cities is a cycle.
    for (size_t steps = 0; out[carrier].successor != 0; ++steps) {
      if (steps > successions.size()) {
        return absl::InternalError(absl::StrCat("successions form a cycle through ", city));
      }
      carrier = out[carrier].successor;
    }
    folded.final_successor = carrier;
  }
  for (auto& [city, folded] : out) {
    if (folded.successor != 0) continue;
    folded.outstanding_fen = folded.own_fen;
  }
  for (const auto& [city, folded] : out) {
    if (folded.final_successor == 0) continue;
    FoldedFloat& carrier = out[folded.final_successor];
    carrier.inherited_fen += folded.own_fen;
    carrier.outstanding_fen += folded.own_fen;
    carrier.predecessors.push_back(city);  // ascending: the map is
  }
  return out;
}

absl::StatusOr<std::map<uint32_t, FoldedFloat>> ReadFoldedFloats(const StateView& view) {
  absl::StatusOr<std::map<uint32_t, FloatRecord>> floats = ReadFloats(view);
  if (!floats.ok()) return floats.status();
  absl::StatusOr<std::map<uint32_t, SuccessionRecord>> successions = ReadSuccessions(view);
  if (!successions.ok()) return successions.status();
  return FoldFloats(*floats, *successions);
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
                            std::pair{kRefundsCappedKey, &stats.refunds_capped},
                            std::pair{kRulesMixedKey, &stats.rules_mixed},
                            std::pair{kFloatTransfersKey, &stats.float_transfers}}) {
    absl::StatusOr<std::optional<std::string>> value = view.get(key);
    if (!value.ok()) return value.status();
    if (value->has_value() && !absl::SimpleAtoi(**value, field)) {
      return absl::InternalError(absl::StrCat("corrupt counter ", key));
    }
  }
  return stats;
}

namespace {

absl::StatusOr<std::optional<RulesTimeline>> TimelineOf(const std::vector<RulesRecord>& records) {
  if (records.empty()) return std::optional<RulesTimeline>();
  std::vector<RulesPeriod> periods;
  for (const RulesRecord& record : records) {
    absl::StatusOr<RulesPeriod> period = RulesPeriod::Make(
        record.effective_window_id(), record.rules(), record.rules_id(), record.recorded_at_us());
    if (!period.ok()) {
      return absl::InternalError(absl::StrCat("corrupt stored rules ",
                                              RulesKey(record.effective_window_id()), ": ",
                                              period.status().message()));
    }
    periods.push_back(*std::move(period));
  }
  absl::StatusOr<RulesTimeline> timeline = RulesTimeline::Create(std::move(periods));
  if (!timeline.ok()) {
    return absl::InternalError(absl::StrCat("corrupt stored rules: ", timeline.status().message()));
  }
  return std::optional<RulesTimeline>(*std::move(timeline));
}

}  // namespace

absl::StatusOr<std::vector<RulesRecord>> ReadRules(const StateView& view) {
  return ScanMessages<RulesRecord>(view, kRulesPrefix);
}

absl::StatusOr<std::optional<RulesTimeline>> ReadRulesTimeline(const StateView& view) {
  absl::StatusOr<std::vector<RulesRecord>> records = ReadRules(view);
  if (!records.ok()) return records.status();
  return TimelineOf(*records);
}

absl::StatusOr<std::shared_ptr<const RulesTimeline>> RulesCache::Get(const StateView& view) {
  std::string bytes;
  absl::Status scanned =
      view.scan(kRulesPrefix, [&](absl::string_view key, absl::string_view value) {
        absl::StrAppend(&bytes, key.size(), ":", key, value.size(), ":", value);
        return true;
      });
  if (!scanned.ok()) return scanned;
  absl::MutexLock lock(&mutex_);
  if (bytes == bytes_ && (timeline_ != nullptr || bytes.empty())) return timeline_;
  absl::StatusOr<std::vector<RulesRecord>> records = ReadRules(view);
  if (!records.ok()) return records.status();
  absl::StatusOr<std::optional<RulesTimeline>> timeline = TimelineOf(*records);
  if (!timeline.ok()) return timeline.status();
  timeline_ = timeline->has_value() ? std::make_shared<const RulesTimeline>(*std::move(*timeline))
                                    : nullptr;
  bytes_ = std::move(bytes);
  return timeline_;
}

}  // namespace tongka::settlement
