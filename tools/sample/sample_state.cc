#include "tools/sample/sample_state.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/state_store/event_filter.h"
#include "libs/txn/txn_view.h"
#include "tools/sample/sample_storage.pb.h"

namespace tongka::sample {
namespace {

// Each stage counts its own junk: the two loops run on separate threads, and a key shared by
// both would lose updates.
constexpr absl::string_view kTapsUnparseableKey = "stats/taps_unparseable";
constexpr absl::string_view kTalliesUnparseableKey = "stats/tallies_unparseable";

absl::Status Add(state_store::StateBatch& batch, absl::string_view key, int64_t delta) {
  absl::StatusOr<std::optional<std::string>> current = batch.Get(key);
  if (!current.ok()) return current.status();
  int64_t n = 0;
  if (current->has_value() && !absl::SimpleAtoi(**current, &n)) {
    return absl::InternalError(absl::StrCat("corrupt counter ", key));
  }
  batch.Put(key, absl::StrCat(n + delta));
  return absl::OkStatus();
}

absl::Status Increment(state_store::StateBatch& batch, absl::string_view key) {
  return Add(batch, key, 1);
}

// Reads a stored message, or a default one when the key is absent.
template <typename Message>
absl::StatusOr<Message> ReadMessage(const state_store::StateBatch& batch, absl::string_view key) {
  absl::StatusOr<std::optional<std::string>> bytes = batch.Get(key);
  if (!bytes.ok()) return bytes.status();
  Message message;
  if (bytes->has_value() && !message.ParseFromString(**bytes)) {
    return absl::InternalError(absl::StrCat("corrupt stored record ", key));
  }
  return message;
}

// A member-city table small enough for a demo; tapgen (issue 3) carries the real 80.
constexpr uint32_t kCities[] = {310000, 330200, 450200, 110000, 440100, 320100, 510100, 420100};

// SplitMix64: a tiny, well-mixed, deterministic generator.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

TapCounter::ParsedTap TapCounter::Parse(const event_log::Record& record) {
  ParsedTap parsed;
  txn::TxnView txn;
  if (!txn::ParseTxnView(record.value, &txn) || txn.kind != txn::TxnKind::kTap) return parsed;
  parsed.usable = true;
  parsed.card_id = txn.card_id;
  parsed.base = record.value.data();
  parsed.acquirer_city = txn.acquirer_city;
  parsed.amount_fen = txn.amount_fen;
  return parsed;
}

void TapCounter::Prepare(const std::vector<event_log::Record>& records) {
  std::vector<state_store::PreparedQueue<ParsedTap>::Entry> parsed;
  parsed.reserve(records.size());
  for (const event_log::Record& record : records) {
    parsed.push_back({record.partition, record.offset, Parse(record)});
  }
  prepared_.Push(std::move(parsed));
}

absl::Status TapCounter::Apply(const event_log::Record& record, state_store::StateBatch& batch) {
  ParsedTap own;
  ParsedTap* tap = prepared_.Take(record);
  if (tap == nullptr) {
    tap = &(own = Parse(record));
  } else {
    tap->card_id = txn::RebaseView(tap->card_id, tap->base, record.value.data());
    tap->base = record.value.data();
  }
  if (!tap->usable) {
    ++unparseable_;
    return absl::OkStatus();
  }
  CardDelta& card = cards_[tap->card_id];
  ++card.taps;
  card.spent_fen += tap->amount_fen;

  Tally& tally = tallies_[{record.partition, tap->acquirer_city}];
  if (tally.taps == 0) tally.first_offset = record.offset;
  tally.last_offset = record.offset;
  ++tally.taps;
  tally.amount_fen += tap->amount_fen;
  return absl::OkStatus();
}

absl::Status TapCounter::FinishBatch(state_store::StateBatch& batch) {
  if (unparseable_ > 0) {
    absl::Status counted = Add(batch, kTapsUnparseableKey, unparseable_);
    unparseable_ = 0;
    if (!counted.ok()) return counted;
  }
  std::string key;
  CardTotals totals;
  for (const auto& [card_id, delta] : cards_) {
    key.assign("card/").append(card_id);
    absl::StatusOr<std::string*> value = batch.Mutable(key);  // an absent card: empty totals
    if (!value.ok()) return value.status();
    if (!totals.ParseFromString(**value)) {
      return absl::InternalError(absl::StrCat("corrupt stored record ", key));
    }
    totals.set_taps(totals.taps() + delta.taps);
    totals.set_spent_fen(totals.spent_fen() + delta.spent_fen);
    totals.SerializeToString(*value);
  }
  cards_.clear();
  for (const auto& [where, tally] : tallies_) {
    const auto& [partition, city] = where;
    v1::Event& event = tally_;
    event.Clear();
    // The id names the offsets covered: a resend after a crash carries the same id.
    event.set_event_id(absl::StrCat("sample/", kTxnTopic, "/", partition, "/", tally.first_offset,
                                    "-", tally.last_offset, "/", city));
    event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
    event.mutable_source()->set_service("sample");
    v1::SampleTally* body = event.mutable_sample_tally();
    body->set_acquirer_city(city);
    body->set_amount_fen(tally.amount_fen);
    body->set_taps(tally.taps);
    body->set_source_partition(partition);
    body->set_first_offset(tally.first_offset);
    body->set_last_offset(tally.last_offset);
    batch.AppendOutbox(kTallyTopic, absl::StrCat(city), event.SerializeAsString());
  }
  tallies_.clear();
  return absl::OkStatus();
}

absl::Status CityTally::Apply(const event_log::Record& record, state_store::StateBatch& batch) {
  v1::Event event;
  if (!event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())) ||
      event.body_case() != v1::Event::kSampleTally || event.event_id().empty()) {
    return Increment(batch, kTalliesUnparseableKey);
  }
  // A resent tally never gets here: the apply loop's EventFilter drops repeated event ids.
  const v1::SampleTally& tally = event.sample_tally();
  std::string key = absl::StrFormat("city/%06d", tally.acquirer_city());
  absl::StatusOr<CityTotals> totals = ReadMessage<CityTotals>(batch, key);
  if (!totals.ok()) return totals.status();
  totals->set_taps(totals->taps() + tally.taps());
  totals->set_amount_fen(totals->amount_fen() + tally.amount_fen());
  batch.Put(key, totals->SerializeAsString());
  return absl::OkStatus();
}

absl::StatusOr<SampleTotals> ReadTotals(const state_store::StateStore& store) {
  SampleTotals totals;
  bool corrupt = false;
  absl::Status status = store.ScanPrefix("card/", [&](absl::string_view, absl::string_view value) {
    CardTotals card;
    corrupt |= !card.ParseFromArray(value.data(), static_cast<int>(value.size()));
    totals.card_taps += card.taps();
    totals.card_spent_fen += card.spent_fen();
    return true;
  });
  if (!status.ok()) return status;
  status = store.ScanPrefix("city/", [&](absl::string_view key, absl::string_view value) {
    CityTotals city;
    uint32_t code = 0;
    corrupt |= !city.ParseFromArray(value.data(), static_cast<int>(value.size())) ||
               !absl::SimpleAtoi(key.substr(5), &code);
    totals.city_taps += city.taps();
    totals.city_amount_fen += city.amount_fen();
    totals.per_city[code] = {city.taps(), city.amount_fen()};
    return true;
  });
  if (!status.ok()) return status;
  if (corrupt) return absl::InternalError("corrupt sample totals in the state store");
  absl::StatusOr<state_store::DropCounts> drops = state_store::ReadDropCounts(store);
  if (!drops.ok()) return drops.status();
  totals.duplicates_dropped = drops->duplicates;
  for (auto [key, field] : {std::pair{kTapsUnparseableKey, &totals.unparseable},
                            std::pair{kTalliesUnparseableKey, &totals.unparseable}}) {
    absl::StatusOr<std::optional<std::string>> value = store.Get(key);
    if (!value.ok()) return value.status();
    int64_t n = 0;
    if (value->has_value() && !absl::SimpleAtoi(**value, &n)) {
      return absl::InternalError(absl::StrCat("corrupt counter ", key));
    }
    *field += n;
  }
  return totals;
}

v1::Event SyntheticTap(uint64_t seed, uint64_t i) {
  uint64_t r = Mix(seed ^ Mix(i));
  constexpr uint64_t kCards = 20000;
  uint64_t card = r % kCards;
  uint32_t issuer = kCities[card % std::size(kCities)];
  // One tap in five is away from home: a cross-city tap.
  uint32_t acquirer = (r >> 20) % 5 == 0 ? kCities[(r >> 24) % std::size(kCities)] : issuer;
  v1::Event event;
  std::string terminal = absl::StrFormat("T%06d-%04d", acquirer, (r >> 32) % 1000);
  event.set_event_id(absl::StrCat("txn/", terminal, "/", i));
  event.set_occurred_at_us(1795500000000000LL + static_cast<int64_t>(i) * 1000);
  event.set_recorded_at_us(event.occurred_at_us() + 500000);
  event.mutable_source()->set_kind(v1::TENANT_KIND_CITY_OPERATOR);
  event.mutable_source()->set_city(acquirer);
  v1::Tap* tap = event.mutable_tap();
  v1::TxnCommon* txn = tap->mutable_txn();
  txn->set_card_id(absl::StrFormat("%06d%012d0", issuer, card));
  txn->set_issuer_city(issuer);
  txn->set_acquirer_city(acquirer);
  txn->set_terminal_id(terminal);
  txn->set_terminal_seq(i);
  tap->set_amount_fen(100 + static_cast<int64_t>((r >> 40) % 900));
  tap->set_mode(static_cast<v1::TransportMode>(1 + (r >> 48) % 3));
  return event;
}

}  // namespace tongka::sample
