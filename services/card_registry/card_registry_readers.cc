#include "services/card_registry/card_registry_readers.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "libs/txn/card_id.h"
#include "services/card_registry/card_registry_keys.h"

namespace tongka::card_registry {
namespace {

using internal::ReadMessage;
using state_store::StateBatch;

absl::StatusOr<int64_t> ReadCounter(const StateView& view, absl::string_view key) {
  absl::StatusOr<std::optional<std::string>> bytes = view.get(key);
  if (!bytes.ok()) return bytes.status();
  int64_t n = 0;
  if (bytes->has_value() && !absl::SimpleAtoi(**bytes, &n)) {
    return absl::InternalError(absl::StrCat("corrupt counter ", key));
  }
  return n;
}

}  // namespace

int64_t CurrentBalanceFen(const CardRecord& card) {
  return card.has_last_txn() ? card.last_txn().balance_after_fen()
                             : card.initial_balance_fen() + card.carried_balance_fen();
}

absl::StatusOr<std::optional<Card>> ReadCard(const StateView& view, absl::string_view card_id) {
  absl::StatusOr<uint32_t> issuer = txn::ParseCardId(card_id);
  if (!issuer.ok()) return std::optional<Card>();  // no such key is ever written
  absl::StatusOr<std::optional<CardRecord>> record =
      ReadMessage<CardRecord>(view, CardKey(card_id));
  if (!record.ok()) return record.status();
  if (!record->has_value()) return std::optional<Card>();
  if ((*record)->status() == v1::CARD_STATUS_UNSPECIFIED) {
    return absl::InternalError(absl::StrCat("card ", card_id, " stored with no status"));
  }
  Card card;
  card.card_id = std::string(card_id);
  card.issuer_city = *issuer;
  card.record = std::move(**record);
  card.balance_fen = CurrentBalanceFen(card.record);
  return std::optional<Card>(std::move(card));
}

absl::StatusOr<std::optional<TxnRegister>> ReadUnissuedRegister(const StateView& view,
                                                                absl::string_view card_id) {
  return ReadMessage<TxnRegister>(view, UnissuedKey(card_id));
}

absl::StatusOr<std::optional<RequestOutcome>> ReadOutcome(const StateView& view,
                                                          absl::string_view event_id) {
  return ReadMessage<RequestOutcome>(view, OutcomeKey(event_id));
}

absl::StatusOr<std::vector<std::string>> FindCardsByHolder(const StateView& view, uint32_t issuer,
                                                           absl::string_view token) {
  std::vector<std::string> out;
  if (token.size() != kTokenBytes) return out;  // only 32-byte tokens are indexed
  const std::string prefix = HolderPrefix(issuer, token);
  absl::Status status = view.scan(prefix, [&](absl::string_view key, absl::string_view) {
    out.emplace_back(key.substr(prefix.size()));
    return true;
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<uint32_t> ManagingIssuer(const StateView& view, int32_t partition,
                                        uint32_t card_city) {
  absl::StatusOr<int64_t> successor = ReadCounter(view, SuccessorKey(partition, card_city));
  if (!successor.ok()) return successor.status();
  if (*successor < 0 || *successor > 999999) {
    return absl::InternalError(absl::StrCat("corrupt successor of ", card_city, ": ", *successor));
  }
  return *successor == 0 ? card_city : static_cast<uint32_t>(*successor);
}

absl::StatusOr<std::map<std::pair<int32_t, uint32_t>, uint32_t>> ReadSuccessors(
    const StateView& view) {
  std::map<std::pair<int32_t, uint32_t>, uint32_t> out;
  absl::Status corrupt;
  absl::Status status =
      view.scan(kSuccessorPrefix, [&](absl::string_view key, absl::string_view value) {
        std::vector<absl::string_view> parts = absl::StrSplit(key, '/');
        int32_t partition = 0;
        uint32_t from = 0;
        uint32_t to = 0;
        if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &partition) ||
            !absl::SimpleAtoi(parts[2], &from) || !absl::SimpleAtoi(value, &to)) {
          corrupt = absl::InternalError(absl::StrCat("corrupt successor record ", key));
          return false;
        }
        out[{partition, from}] = to;
        return true;
      });
  if (!status.ok()) return status;
  if (!corrupt.ok()) return corrupt;
  return out;
}

absl::StatusOr<IssuerBalances> SumIssuerBalances(
    const StateView& view, uint32_t card_city,
    const std::function<bool(absl::string_view card_id)>& include) {
  IssuerBalances sum;
  const std::string prefix = CardKey(absl::StrCat(card_city));
  absl::Status corrupt;
  absl::Status status = view.scan(prefix, [&](absl::string_view key, absl::string_view value) {
    if (!include(key.substr(prefix.size() - 6))) return true;
    CardRecord card;
    if (!card.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      corrupt = absl::InternalError(absl::StrCat("corrupt card record ", key));
      return false;
    }
    if (card.status() == v1::CARD_STATUS_CLOSED) {
      ++sum.closed_cards;
    } else {
      ++sum.cards;
      sum.balance_fen += CurrentBalanceFen(card);
    }
    return true;
  });
  if (!status.ok()) return status;
  if (!corrupt.ok()) return corrupt;
  return sum;
}

absl::StatusOr<uint64_t> ReadHotlistSeq(const StateView& view, int32_t partition) {
  absl::StatusOr<int64_t> seq = ReadCounter(view, HotlistSeqKey(partition));
  if (!seq.ok()) return seq.status();
  if (*seq < 0) return absl::InternalError(absl::StrCat("negative hotlist sequence ", partition));
  return static_cast<uint64_t>(*seq);
}

absl::StatusOr<std::vector<HotlistChange>> ReadHotlistDelta(const StateView& view,
                                                            int32_t partition, uint64_t after_seq,
                                                            size_t limit) {
  std::vector<HotlistChange> out;
  if (limit == 0) return out;
  const std::string prefix = HotlistPrefix(partition);
  const std::string first = HotlistKey(partition, after_seq);
  bool corrupt = false;
  // The scan starts at the partition's prefix; keys are zero-padded, so order is numeric and
  // everything up to `first` is skipped without parsing.
  absl::Status status = view.scan(prefix, [&](absl::string_view key, absl::string_view value) {
    if (key <= first) return true;
    HotlistChange change;
    corrupt = !absl::SimpleAtoi(key.substr(prefix.size()), &change.seq) ||
              !change.entry.ParseFromArray(value.data(), static_cast<int>(value.size()));
    if (corrupt) return false;
    out.push_back(std::move(change));
    return out.size() < limit;
  });
  if (!status.ok()) return status;
  if (corrupt) return absl::InternalError(absl::StrCat("corrupt hotlist entry under ", prefix));
  return out;
}

absl::StatusOr<HotlistSnapshot> ReadHotlistSnapshot(const StateView& view, int32_t partition) {
  HotlistSnapshot snapshot;
  absl::StatusOr<uint64_t> seq = ReadHotlistSeq(view, partition);
  if (!seq.ok()) return seq.status();
  snapshot.seq = *seq;
  bool corrupt = false;
  absl::Status status =
      view.scan(ListedPrefix(partition), [&](absl::string_view, absl::string_view value) {
        snapshot.listed.emplace_back();
        corrupt =
            !snapshot.listed.back().ParseFromArray(value.data(), static_cast<int>(value.size()));
        return !corrupt;
      });
  if (!status.ok()) return status;
  if (corrupt)
    return absl::InternalError(absl::StrCat("corrupt listed card, partition ", partition));
  return snapshot;
}

absl::StatusOr<RegistryStats> ReadStats(const StateView& view) {
  RegistryStats stats;
  const std::string accepted = internal::AcceptedKey("");
  const std::string refused = internal::RefusedKey("");
  bool corrupt = false;
  absl::Status status =
      view.scan(internal::kStatsPrefix, [&](absl::string_view key, absl::string_view value) {
        int64_t n = 0;
        corrupt = !absl::SimpleAtoi(value, &n);
        if (corrupt) return false;
        if (absl::StartsWith(key, accepted)) {
          stats.accepted[std::string(key.substr(accepted.size()))] = n;
        } else if (absl::StartsWith(key, refused)) {
          stats.refused_by_rule[std::string(key.substr(refused.size()))] = n;
        } else if (key == internal::kDuplicateCommandsKey) {
          stats.duplicate_commands = n;
        } else if (key == internal::kCardsUnparseableKey) {
          stats.cards_unparseable = n;
        } else if (key == internal::kUnsupportedKey) {
          stats.cards_unsupported = n;
        } else if (key == internal::kForeignDecisionsKey) {
          stats.foreign_decisions = n;
        } else if (key == internal::kTxnUnparseableKey) {
          stats.txn_unparseable = n;
        } else if (key == internal::kUnissuedCardsKey) {
          stats.unissued_cards = n;
        }
        return true;
      });
  if (!status.ok()) return status;
  if (corrupt) return absl::InternalError("corrupt counter under st/");
  return stats;
}

}  // namespace tongka::card_registry
