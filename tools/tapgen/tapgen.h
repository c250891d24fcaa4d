// tapgen: the deterministic generator of realistic card transactions for the 80 member cities,
// with injected fraud and its ground truth. Every later service, test and benchmark feeds on it.
//
// What it is: a Generator yields tongka.v1.TransactionUpload records one at a time, in device-time
// order (a replay keeps its original's older time), as terminals would upload them to ingest:
//   - cards issued across the member cities by city weight (txn::MakeCardId), 70% physical, 20%
//     virtual NFC, 10% QR; a configurable share of the taps (cross_city_share) is made by cards
//     travelling in a city other than their issuer;
//   - terminals per city and mode, scaled by city size: BUS, METRO (cities of 4 million or more),
//     FERRY (coastal and river cities only), BIKE, PARK, RETAIL, plus partner chains' shops. Ids
//     follow libs/txn/terminal_id.h: "<city6>-<MODE>-<serial6>" with operator_id "<city6>", and
//     "P-<partner_id>-<serial6>" with operator_id "partner:<partner_id>" and partner_id set;
//   - a daily rhythm in Beijing time with morning and evening rush hours, fares per mode in fen,
//     loads (top-ups) whenever a card could not pay, and occasional refunds of shop purchases;
//   - per card, card_counter rising by exactly 1 per transaction and balance_before equal to the
//     previous balance_after, never negative; per terminal, terminal_seq rising by 1;
//   - a real SM4-CMAC on every record: Sm4Cmac(keyring.TerminalKey(acquirer_city, terminal_id),
//     txn::MacInput(upload)).
// Injected fraud (fraud_rate of the records; each case is one record, listed in fraud_cases()):
//   clone_counter      a clone reuses the card's last counter with other content (another
//                      terminal of the same city, its own fare, the balance the genuine card had
//                      before that transaction)
//   clone_two_places   a clone taps minutes after the genuine card in a city >= 1,000 km away,
//                      with the genuine card's next counter and balance (the genuine card then
//                      repeats that counter at its next transaction)
//   impossible_travel  the genuine card itself taps >= 1,000 km away within 30 minutes of its
//                      previous tap (counter and balance chain intact); it stays in the new city
//   tampered_balance   balance_before exceeds the previous balance_after (money from nowhere)
//   use_after_block    a card blocked at blocked_at_us (after its last good tap) taps again; the
//                      card takes no further part in the run
//   replay             an earlier record, byte for byte, sent again (ingest must say DUPLICATE)
//
// Determinism: the output is a pure function of the config (seed included) and the keyring: one
// private PRNG (xoshiro256**), no wall clock, no hash-order iteration. Same config, same bytes.
//
// Ownership: the Generator owns its state and a copy of the keyring (which shares its key cache).
// Thread-safety: a Generator is not thread-safe; drive it from one thread.
// Failure behaviour: Create() returns INVALID_ARGUMENT naming a bad config field, or
// "tapgen.keyring" when the keyring lacks a member city. Generation cannot fail afterwards (a
// missing terminal key would be a bug and CHECK-fails).
//
// Example:
//   tapgen::GeneratorConfig config{.seed = 7, .transactions = 100000};
//   absl::StatusOr<std::unique_ptr<tapgen::Generator>> generator =
//       tapgen::Generator::Create(config, *txn::CityKeyring::Dev());
//   if (!generator.ok()) return generator.status();
//   v1::TransactionUpload upload;
//   while ((*generator)->Next(&upload)) Send(upload);
//   for (const tapgen::FraudCase& c : (*generator)->fraud_cases()) out << FraudCaseJson(c) << "\n";
#ifndef TONGKA_TOOLS_TAPGEN_TAPGEN_H_
#define TONGKA_TOOLS_TAPGEN_TAPGEN_H_

#include <cstdint>
#include <deque>
#include <iosfwd>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/txn/keys.h"
#include "proto/ingest.pb.h"

namespace tongka::tapgen {

// 2026-11-24T00:00:00+08:00, a Tuesday: the default start of the simulated period.
inline constexpr int64_t kDefaultStartAtUs = 1795449600000000;

struct GeneratorConfig {
  uint64_t seed = 1;
  // Records to emit in total, loads, refunds and injected fraud included. 1..10^10.
  int64_t transactions = 100000;
  // Cards issued. 1..10^9 (each costs about 80 bytes).
  int64_t cards = 50000;
  // Start of the simulated period, UTC microseconds; the rhythm follows Beijing time (UTC+8).
  int64_t start_at_us = kDefaultStartAtUs;
  // Length of the simulated period in days; the records spread over it by the daily rhythm. 1..366.
  int32_t days = 1;
  // City terminals per million residents (partner shops add a few). 1..2000.
  int32_t terminals_per_million = 50;
  // Share of taps made by a card outside its issuer city. 0..1.
  double cross_city_share = 0.05;
  // Share of records that are injected fraud cases. 0..0.5.
  double fraud_rate = 0.001;
  // A replay re-sends a record at least this many records old, so it never shares an upload
  // batch with its original. >= 1.
  int64_t replay_lag_min = 10000;
};

// One injected fraud case, as written to the ground-truth file.
struct FraudCase {
  std::string kind;  // clone_counter, clone_two_places, impossible_travel, tampered_balance,
                     // use_after_block, replay
  std::string card_id;
  // "txn/<terminal_id>/<terminal_seq>" of the records involved: the earlier genuine record first
  // (when there is one), the injected record last. A replay lists the replayed id once.
  std::vector<std::string> event_ids;
  std::string detail;
  int64_t blocked_at_us = 0;  // use_after_block: when the card was blocked; 0 otherwise
};

// The fraud kinds, in the order above.
const std::vector<std::string>& FraudKinds();

// Counts of what a generator emitted so far.
struct GeneratorStats {
  int64_t records = 0;
  int64_t taps = 0;
  int64_t loads = 0;
  int64_t refunds = 0;
  int64_t cross_city_taps = 0;  // taps with acquirer_city != issuer_city
  int64_t fraud_cases = 0;
};

// A terminal as the generator knows it (exposed for tests and reports).
struct Terminal {
  std::string id;
  uint32_t city = 0;  // acquirer city: the operator's city, or the city of a partner shop
  v1::TransportMode mode = v1::TRANSPORT_MODE_UNSPECIFIED;
  std::string partner_id;  // empty for city terminals
  std::string operator_id;
  std::string route_id;    // BUS, METRO, FERRY: the line it serves; empty otherwise
  std::string station_id;  // the stop, station, pier, dock, lot or shop it stands at (BUS: depot)
  uint64_t next_seq = 1;
};

// A card as issued before the run (for a card_registry feed or offline checks).
struct IssuedCard {
  std::string card_id;
  uint32_t issuer_city = 0;
  v1::CardForm form = v1::CARD_FORM_UNSPECIFIED;
  int64_t initial_balance_fen = 0;
  uint32_t initial_counter = 0;  // the on-card counter before the run's first transaction
  uint32_t travel_city = 0;      // the city it taps in during the run when it travels, else 0
};

class Generator {
 public:
  static absl::StatusOr<std::unique_ptr<Generator>> Create(const GeneratorConfig& config,
                                                           txn::CityKeyring keyring);

  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;
  ~Generator();

  // Writes the next record into `upload` (cleared first); false once `transactions` were emitted.
  bool Next(v1::TransactionUpload* upload);

  const std::vector<FraudCase>& fraud_cases() const { return fraud_cases_; }
  const GeneratorStats& stats() const { return stats_; }
  const std::vector<Terminal>& terminals() const { return terminals_; }
  const GeneratorConfig& config() const { return config_; }
  // Every card, in issue order.
  std::vector<IssuedCard> IssuedCards() const;

 private:
  struct Card;
  struct Rng;
  struct RecentRefundable;

  Generator(const GeneratorConfig& config, txn::CityKeyring keyring);
  void BuildTerminals();
  void IssueCards();
  // The device time of record `index` before clamping: the rhythm's inverse CDF, stratified.
  int64_t SlotTimeUs(int64_t index);

  // One step emits one record (a fraud case, a refund, a tap) or two (a load, then a tap).
  // `previous_us`: the device time of the record emitted last, the earliest a load may take.
  void NormalStep(int64_t now_us, int64_t previous_us);
  bool TryRefund(int64_t now_us);
  bool InjectFraud(int64_t now_us);
  bool InjectClone(int64_t now_us, bool far_away);
  bool InjectImpossibleTravel(int64_t now_us);
  bool InjectTamperedBalance(int64_t now_us);
  bool InjectUseAfterBlock(int64_t now_us);
  bool InjectReplay();

  int64_t PickCard(bool traveller);
  // A card active recently (within max_age_us when positive) with a transaction; -1 if none.
  int64_t PickRecentCard(int64_t now_us, int64_t max_age_us);
  v1::TransportMode PickMode(size_t city_index);
  int PickTerminal(size_t city_index, v1::TransportMode mode);
  int64_t FareFen(size_t city_index, v1::TransportMode mode);
  size_t PickFarCity(size_t from_city_index);
  // A bus terminal of the city and its fare.
  std::pair<int, int64_t> CheapRide(size_t city_index);

  // Fills the envelope and TxnCommon of a record at `terminal_index` (taking its next seq).
  void StartRecord(const Card& card, int terminal_index, int64_t at_us, uint32_t counter,
                   int64_t balance_before_fen, int64_t balance_after_fen,
                   v1::TransactionUpload* upload, v1::TxnCommon* txn);
  // Builds and signs a tap; returns its event id. Does not change the card.
  std::string EmitTap(const Card& card, int terminal_index, int64_t at_us, int64_t amount_fen,
                      uint32_t counter, int64_t balance_before_fen, v1::TransactionUpload* upload);
  void EmitLoad(Card* card, int64_t at_us, int64_t needed_fen);
  // Moves the card's state past `txn`.
  void Advance(Card* card, const v1::TxnCommon& txn, int terminal_index, int64_t at_us);
  void Sign(v1::TransactionUpload* upload);
  // Queues a finished record; replayable ones may be replayed later.
  void Emit(v1::TransactionUpload upload, bool replayable);
  std::string CardIdOf(const Card& card) const;
  std::string LastEventIdOf(const Card& card) const;

  const GeneratorConfig config_;
  const txn::CityKeyring keyring_;
  std::unique_ptr<Rng> rng_;

  std::vector<Terminal> terminals_;
  // Per city (index into txn::MemberCities()) and mode: indexes into terminals_.
  std::vector<std::vector<std::vector<int>>> city_terminals_;
  // Per city: indexes into terminals_ of partner shops.
  std::vector<std::vector<int>> partner_shops_;
  std::vector<double> city_cumulative_weight_;
  std::vector<double> slot_cumulative_;  // rhythm CDF over the period's minutes

  std::vector<Card> cards_;
  std::vector<int64_t> home_cards_;       // indexes into cards_ of cards tapping at home
  std::vector<int64_t> traveller_cards_;  // and of cards travelling elsewhere
  std::vector<int64_t> recent_cards_;     // ring of recently active cards
  size_t recent_cards_next_ = 0;
  std::vector<RecentRefundable> recent_refundables_;  // ring of recent shop purchases
  size_t recent_refundables_next_ = 0;

  // Records kept for replay: (index, bytes) of recent records, oldest first.
  std::deque<std::pair<int64_t, std::string>> replay_window_;

  // Output buffered by one step (a load, then a tap; or one record).
  std::deque<v1::TransactionUpload> pending_;
  int64_t clock_us_ = 0;
  int64_t retired_cards_ = 0;
  std::vector<FraudCase> fraud_cases_;
  GeneratorStats stats_;
};

// One JSON object (no newline) describing `fraud_case`, keys in a fixed order.
std::string FraudCaseJson(const FraudCase& fraud_case);

// Length-delimited protobuf streams: a varint length, then the serialized record.
absl::Status WriteDelimited(const v1::TransactionUpload& upload, std::ostream* out);
// Reads every record of a delimited stream; INVALID_ARGUMENT (naming the record index) when the
// stream is truncated or a record does not parse.
absl::StatusOr<std::vector<v1::TransactionUpload>> ReadDelimited(std::istream* in);

}  // namespace tongka::tapgen

#endif  // TONGKA_TOOLS_TAPGEN_TAPGEN_H_
