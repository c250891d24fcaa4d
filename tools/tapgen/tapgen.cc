#include "tools/tapgen/tapgen.h"

#include <glog/logging.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <istream>
#include <ostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"
#include "libs/crypto/sm4_cmac.h"
#include "libs/txn/card_id.h"
#include "libs/txn/cities.h"
#include "libs/txn/mac_input.h"
#include "libs/txn/upload.h"

namespace tongka::tapgen {
namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerMinute = 60 * kMicrosPerSecond;
constexpr int64_t kBeijingOffsetUs = 8 * 3600 * kMicrosPerSecond;
constexpr size_t kRecentCardsSize = 4096;
constexpr size_t kRecentRefundablesSize = 1024;
// Injected travel fraud: a city at least this far away, within this long of the previous tap.
constexpr double kFarCityKmMin = 1000.0;
constexpr int64_t kFastTravelWindowUs = 30 * kMicrosPerMinute;
// Share of steps that refund an earlier shop purchase.
constexpr double kRefundShare = 0.002;

// Relative tap intensity per hour of the day in Beijing time: quiet nights, a morning rush
// (07-09) and a slightly longer evening rush (17-19), a steady daytime plateau.
constexpr std::array<double, 24> kHourWeights = {1.0, 0.5, 0.3, 0.2, 0.3, 1.0, 3.5, 8.0,
                                                 9.0, 5.5, 4.0, 4.2, 4.5, 4.0, 3.8, 4.0,
                                                 5.0, 8.5, 9.0, 6.0, 4.5, 3.5, 2.5, 1.6};

// Coastal cities and cities on rivers with public ferries (the only ones with FERRY terminals).
constexpr std::array<uint32_t, 34> kFerryCities = {
    120000, 210200, 230100, 310000, 320100, 320600, 320700, 321000, 330100, 330200, 330300, 331000,
    340200, 350100, 350200, 350500, 370200, 370600, 371000, 420100, 420500, 430600, 440100, 440300,
    440400, 440500, 440800, 450300, 450500, 460100, 460200, 500000, 510500, 620100};

// Partner chains (merchant networks) and where they have shops.
struct Partner {
  const char* id;
  bool (*present)(const txn::City& city);
};
constexpr std::array<Partner, 5> kPartners = {{
    {"unionmart", [](const txn::City& city) { return city.weight >= 5.0; }},
    {"freshgo",
     [](const txn::City& city) { return city.code / 10000 >= 31 && city.code / 10000 <= 34; }},
    {"southbuy",
     [](const txn::City& city) {
       uint32_t province = city.code / 10000;
       return province == 35 || (province >= 44 && province <= 46);
     }},
    {"northstar",
     [](const txn::City& city) {
       uint32_t province = city.code / 10000;
       return province <= 15 || (province >= 21 && province <= 23) || province == 37;
     }},
    {"bookhub", [](const txn::City& city) { return city.weight >= 9.0; }},
}};

// The city terminal modes, their id spelling and their share of a city's terminals per million.
struct ModeSpec {
  v1::TransportMode mode;
  const char* name;
  double terminals_share;
  double tap_weight;
};
constexpr std::array<ModeSpec, 6> kModes = {{
    {v1::TRANSPORT_MODE_BUS, "BUS", 0.35, 38},
    {v1::TRANSPORT_MODE_METRO, "METRO", 0.25, 30},
    {v1::TRANSPORT_MODE_FERRY, "FERRY", 0.02, 2},
    {v1::TRANSPORT_MODE_BIKE, "BIKE", 0.10, 8},
    {v1::TRANSPORT_MODE_PARKING, "PARK", 0.08, 5},
    {v1::TRANSPORT_MODE_RETAIL, "RETAIL", 0.20, 17},
}};
constexpr double kPartnerShopsShare = 0.02;
constexpr double kMetroCityWeightMin = 4.0;

size_t ModeSlot(v1::TransportMode mode) {
  for (size_t i = 0; i < kModes.size(); ++i) {
    if (kModes[i].mode == mode) return i;
  }
  LOG(FATAL) << "no terminal mode " << mode;
  return 0;
}

bool HasFerry(uint32_t city) {
  return std::find(kFerryCities.begin(), kFerryCities.end(), city) != kFerryCities.end();
}

void AppendJsonString(absl::string_view text, std::string* out) {
  out->push_back('"');
  for (char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<int>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

// xoshiro256** seeded through splitmix64: fast, well tested, and fully specified here, so the
// output cannot change with the standard library (std:: distributions are implementation-defined).
struct Generator::Rng {
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : state) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t Next() {
    const uint64_t result = Rotl(state[1] * 5, 7) * 9;
    const uint64_t t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = Rotl(state[3], 45);
    return result;
  }
  // Uniform in [0, n); n > 0.
  uint64_t Uniform(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform in [0, 1).
  double Double() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Bernoulli(double p) { return Double() < p; }
  // Index drawn from a cumulative weight table.
  size_t Weighted(const std::vector<double>& cumulative) {
    double x = Double() * cumulative.back();
    size_t i = std::upper_bound(cumulative.begin(), cumulative.end(), x) - cumulative.begin();
    return std::min(i, cumulative.size() - 1);
  }

  std::array<uint64_t, 4> state;
};

struct Generator::Card {
  uint32_t issuer_index = 0;  // into MemberCities()
  uint32_t city_index = 0;    // where the card taps now
  uint64_t serial = 0;
  v1::CardForm form = v1::CARD_FORM_PHYSICAL;
  bool retired = false;  // blocked: never picked again
  uint32_t initial_counter = 0;
  int64_t initial_balance_fen = 0;
  uint32_t counter = 0;  // the last counter used; the next transaction carries counter + 1
  int64_t balance_fen = 0;
  // The card's last genuine transaction (none while last_terminal < 0).
  int32_t last_terminal = -1;
  uint64_t last_seq = 0;
  int64_t last_at_us = 0;
  int64_t last_balance_before_fen = 0;
};

struct Generator::RecentRefundable {
  int64_t card = -1;
  int32_t terminal = -1;
  uint64_t seq = 0;
  int64_t amount_fen = 0;
};

const std::vector<std::string>& FraudKinds() {
  static const std::vector<std::string>* const kKinds =
      new std::vector<std::string>{"clone_counter",    "clone_two_places", "impossible_travel",
                                   "tampered_balance", "use_after_block",  "replay"};
  return *kKinds;
}

absl::StatusOr<std::unique_ptr<Generator>> Generator::Create(const GeneratorConfig& config,
                                                             txn::CityKeyring keyring) {
  auto invalid = [](absl::string_view field, absl::string_view rule) {
    return absl::InvalidArgumentError(absl::StrCat("tapgen.", field, ": ", rule));
  };
  if (config.transactions < 1 || config.transactions > 10000000000LL) {
    return invalid("transactions", "must be in 1..10^10");
  }
  if (config.cards < 1 || config.cards > 1000000000LL) {
    return invalid("cards", "must be in 1..10^9");
  }
  if (config.start_at_us < 0) return invalid("start_at_us", "must not be before 1970");
  if (config.days < 1 || config.days > 366) return invalid("days", "must be in 1..366");
  if (config.terminals_per_million < 1 || config.terminals_per_million > 2000) {
    return invalid("terminals_per_million", "must be in 1..2000");
  }
  if (!(config.cross_city_share >= 0 && config.cross_city_share <= 1)) {
    return invalid("cross_city_share", "must be in 0..1");
  }
  if (!(config.fraud_rate >= 0 && config.fraud_rate <= 0.5)) {
    return invalid("fraud_rate", "must be in 0..0.5");
  }
  if (config.replay_lag_min < 1) return invalid("replay_lag_min", "must be at least 1");
  for (const txn::City& city : txn::MemberCities()) {
    absl::Status status = keyring.MasterKey(city.code).status();
    if (!status.ok()) return invalid("keyring", status.message());
  }
  return std::unique_ptr<Generator>(new Generator(config, std::move(keyring)));
}

Generator::Generator(const GeneratorConfig& config, txn::CityKeyring keyring)
    : config_(config), keyring_(std::move(keyring)), rng_(std::make_unique<Rng>(config.seed)) {
  const std::vector<txn::City>& cities = txn::MemberCities();
  double total = 0;
  for (const txn::City& city : cities) {
    total += city.weight;
    city_cumulative_weight_.push_back(total);
  }
  // The rhythm's CDF over every minute of the period.
  const int64_t minutes = int64_t{config_.days} * 24 * 60;
  slot_cumulative_.reserve(minutes);
  double cumulative = 0;
  for (int64_t m = 0; m < minutes; ++m) {
    int64_t local_us = config_.start_at_us + kBeijingOffsetUs + m * kMicrosPerMinute;
    cumulative += kHourWeights[(local_us / (3600 * kMicrosPerSecond)) % 24];
    slot_cumulative_.push_back(cumulative);
  }
  recent_refundables_.resize(kRecentRefundablesSize);
  BuildTerminals();
  IssueCards();
  clock_us_ = config_.start_at_us;
}

Generator::~Generator() = default;

void Generator::BuildTerminals() {
  const std::vector<txn::City>& cities = txn::MemberCities();
  city_terminals_.assign(cities.size(), std::vector<std::vector<int>>(kModes.size()));
  partner_shops_.assign(cities.size(), {});
  std::array<uint32_t, kPartners.size()> partner_serials{};
  for (size_t c = 0; c < cities.size(); ++c) {
    const txn::City& city = cities[c];
    const double scale = city.weight * config_.terminals_per_million;
    for (size_t m = 0; m < kModes.size(); ++m) {
      const ModeSpec& spec = kModes[m];
      if (spec.mode == v1::TRANSPORT_MODE_METRO && city.weight < kMetroCityWeightMin) continue;
      if (spec.mode == v1::TRANSPORT_MODE_FERRY && !HasFerry(city.code)) continue;
      const int64_t count = std::max<int64_t>(2, std::llround(scale * spec.terminals_share));
      const int64_t lines = std::max<int64_t>(1, count / 8);
      for (int64_t serial = 1; serial <= count; ++serial) {
        Terminal terminal;
        terminal.id = absl::StrFormat("%06d-%s-%06d", city.code, spec.name, serial);
        terminal.city = city.code;
        terminal.mode = spec.mode;
        terminal.operator_id = absl::StrFormat("%06d", city.code);
        switch (spec.mode) {
          case v1::TRANSPORT_MODE_BUS:
            terminal.route_id = absl::StrCat("B", 1 + serial % lines);
            terminal.station_id = absl::StrCat("depot-", 1 + serial % 7);
            break;
          case v1::TRANSPORT_MODE_METRO:
            terminal.route_id = absl::StrCat("L", 1 + serial % std::min<int64_t>(lines, 20));
            terminal.station_id = absl::StrCat(terminal.route_id, "-S", 1 + serial / 4 % 40);
            break;
          case v1::TRANSPORT_MODE_FERRY:
            terminal.route_id = absl::StrCat("F", 1 + serial % 3);
            terminal.station_id = absl::StrCat("pier-", 1 + serial % 6);
            break;
          case v1::TRANSPORT_MODE_BIKE:
            terminal.station_id = absl::StrCat("dock-", serial);
            break;
          case v1::TRANSPORT_MODE_PARKING:
            terminal.station_id = absl::StrCat("lot-", serial);
            break;
          default:
            terminal.station_id = absl::StrCat("shop-", serial);
            break;
        }
        city_terminals_[c][m].push_back(static_cast<int>(terminals_.size()));
        terminals_.push_back(std::move(terminal));
      }
    }
    for (size_t p = 0; p < kPartners.size(); ++p) {
      if (!kPartners[p].present(city)) continue;
      const int64_t shops = std::max<int64_t>(1, std::llround(scale * kPartnerShopsShare));
      for (int64_t i = 0; i < shops; ++i) {
        uint32_t serial = ++partner_serials[p];
        CHECK_LE(serial, 999999u) << "partner terminal serials have six digits";
        Terminal terminal;
        terminal.id = absl::StrFormat("P-%s-%06d", kPartners[p].id, serial);
        terminal.city = city.code;
        terminal.mode = v1::TRANSPORT_MODE_RETAIL;
        terminal.partner_id = kPartners[p].id;
        terminal.operator_id = absl::StrCat("partner:", kPartners[p].id);
        terminal.station_id = absl::StrCat("shop-", serial);
        partner_shops_[c].push_back(static_cast<int>(terminals_.size()));
        terminals_.push_back(std::move(terminal));
      }
    }
  }
}

void Generator::IssueCards() {
  const std::vector<txn::City>& cities = txn::MemberCities();
  std::vector<uint64_t> serials(cities.size(), 0);
  // Travellers are a cross_city_share of the cards (at least one when the share is positive);
  // picking a traveller for that share of the taps makes the cross-city share of taps match.
  int64_t travellers = std::llround(config_.cards * config_.cross_city_share);
  if (config_.cross_city_share > 0) travellers = std::max<int64_t>(travellers, 1);
  cards_.resize(config_.cards);
  for (int64_t i = 0; i < config_.cards; ++i) {
    Card& card = cards_[i];
    card.issuer_index = static_cast<uint32_t>(rng_->Weighted(city_cumulative_weight_));
    card.serial = ++serials[card.issuer_index];
    const double form = rng_->Double();
    card.form = form < 0.7   ? v1::CARD_FORM_PHYSICAL
                : form < 0.9 ? v1::CARD_FORM_VIRTUAL_NFC
                             : v1::CARD_FORM_QR;
    card.initial_counter =
        static_cast<uint32_t>(rng_->Uniform(card.form == v1::CARD_FORM_PHYSICAL ? 1000 : 100));
    card.counter = card.initial_counter;
    card.initial_balance_fen = 100 * static_cast<int64_t>(rng_->Uniform(301));
    card.balance_fen = card.initial_balance_fen;
    card.city_index = card.issuer_index;
    // Every n-th card travels, so travellers spread evenly over issue order.
    const bool traveller = travellers > 0 && (i * travellers) / config_.cards !=
                                                 ((i + 1) * travellers) / config_.cards;
    if (traveller && cities.size() > 1) {
      while (card.city_index == card.issuer_index) {
        card.city_index = static_cast<uint32_t>(rng_->Weighted(city_cumulative_weight_));
      }
      traveller_cards_.push_back(i);
    } else {
      home_cards_.push_back(i);
    }
  }
}

std::vector<IssuedCard> Generator::IssuedCards() const {
  const std::vector<txn::City>& cities = txn::MemberCities();
  std::vector<IssuedCard> out;
  out.reserve(cards_.size());
  for (const Card& card : cards_) {
    IssuedCard issued;
    issued.card_id = CardIdOf(card);
    issued.issuer_city = cities[card.issuer_index].code;
    issued.form = card.form;
    issued.initial_balance_fen = card.initial_balance_fen;
    issued.initial_counter = card.initial_counter;
    out.push_back(std::move(issued));
  }
  for (int64_t i : traveller_cards_) out[i].travel_city = cities[cards_[i].city_index].code;
  return out;
}

std::string Generator::CardIdOf(const Card& card) const {
  return txn::MakeCardId(txn::MemberCities()[card.issuer_index].code, card.serial);
}

std::string Generator::LastEventIdOf(const Card& card) const {
  CHECK_GE(card.last_terminal, 0);
  return txn::TxnEventId(terminals_[card.last_terminal].id, card.last_seq);
}

int64_t Generator::SlotTimeUs(int64_t index) {
  // Stratified sampling of the rhythm: record i falls in the i-th of `transactions` equal slices
  // of the CDF, so times never go backwards and the rhythm shows even in small runs.
  const double f = (static_cast<double>(index) + rng_->Double()) / config_.transactions;
  const double x = f * slot_cumulative_.back();
  size_t minute = std::upper_bound(slot_cumulative_.begin(), slot_cumulative_.end(), x) -
                  slot_cumulative_.begin();
  minute = std::min(minute, slot_cumulative_.size() - 1);
  const double before = minute == 0 ? 0.0 : slot_cumulative_[minute - 1];
  const double within =
      std::clamp((x - before) / (slot_cumulative_[minute] - before), 0.0, 1.0 - 1e-9);
  return config_.start_at_us + static_cast<int64_t>(minute) * kMicrosPerMinute +
         static_cast<int64_t>(within * kMicrosPerMinute);
}

bool Generator::Next(v1::TransactionUpload* upload) {
  upload->Clear();
  if (pending_.empty()) {
    if (stats_.records >= config_.transactions) return false;
    const int64_t previous_us = clock_us_;  // the device time of the record emitted last
    const int64_t now_us = std::max(clock_us_, SlotTimeUs(stats_.records));
    clock_us_ = now_us;
    bool done = false;
    if (rng_->Bernoulli(config_.fraud_rate)) done = InjectFraud(now_us);
    if (!done && rng_->Bernoulli(kRefundShare)) done = TryRefund(now_us);
    if (!done) NormalStep(now_us, previous_us);
    CHECK(!pending_.empty());
  }
  *upload = std::move(pending_.front());
  pending_.pop_front();
  // A step can produce one record more than the run has room for (a load before its tap); the
  // surplus is dropped, which leaves every emitted chain intact.
  if (stats_.records >= config_.transactions) {
    pending_.clear();
    upload->Clear();
    return false;
  }
  ++stats_.records;
  switch (upload->body_case()) {
    case v1::TransactionUpload::kTap:
      ++stats_.taps;
      if (upload->tap().txn().acquirer_city() != upload->tap().txn().issuer_city()) {
        ++stats_.cross_city_taps;
      }
      break;
    case v1::TransactionUpload::kLoad:
      ++stats_.loads;
      break;
    case v1::TransactionUpload::kRefund:
      ++stats_.refunds;
      break;
    default:
      break;
  }
  return true;
}

int64_t Generator::PickCard(bool traveller) {
  const std::vector<int64_t>* pool = traveller ? &traveller_cards_ : &home_cards_;
  if (pool->empty()) pool = traveller ? &home_cards_ : &traveller_cards_;
  for (int attempt = 0; attempt < 64; ++attempt) {
    int64_t i = (*pool)[rng_->Uniform(pool->size())];
    if (!cards_[i].retired) return i;
  }
  for (int64_t i = 0; i < static_cast<int64_t>(cards_.size()); ++i) {
    if (!cards_[i].retired) return i;
  }
  LOG(FATAL) << "every card is retired";
  return -1;
}

int64_t Generator::PickRecentCard(int64_t now_us, int64_t max_age_us) {
  if (recent_cards_.empty()) return -1;
  for (int attempt = 0; attempt < 16; ++attempt) {
    int64_t i = recent_cards_[rng_->Uniform(recent_cards_.size())];
    const Card& card = cards_[i];
    if (card.retired || card.last_terminal < 0) continue;
    if (max_age_us > 0 && now_us - card.last_at_us > max_age_us) continue;
    return i;
  }
  return -1;
}

v1::TransportMode Generator::PickMode(size_t city_index) {
  std::array<double, kModes.size()> cumulative;
  double total = 0;
  for (size_t m = 0; m < kModes.size(); ++m) {
    if (!city_terminals_[city_index][m].empty()) total += kModes[m].tap_weight;
    cumulative[m] = total;
  }
  const double x = rng_->Double() * total;
  for (size_t m = 0; m < kModes.size(); ++m) {
    if (x < cumulative[m]) return kModes[m].mode;
  }
  return v1::TRANSPORT_MODE_BUS;
}

int Generator::PickTerminal(size_t city_index, v1::TransportMode mode) {
  if (mode == v1::TRANSPORT_MODE_RETAIL && !partner_shops_[city_index].empty() &&
      rng_->Bernoulli(0.5)) {
    const std::vector<int>& shops = partner_shops_[city_index];
    return shops[rng_->Uniform(shops.size())];
  }
  const std::vector<int>& terminals = city_terminals_[city_index][ModeSlot(mode)];
  CHECK(!terminals.empty());
  return terminals[rng_->Uniform(terminals.size())];
}

int64_t Generator::FareFen(size_t city_index, v1::TransportMode mode) {
  const double weight = txn::MemberCities()[city_index].weight;
  switch (mode) {
    case v1::TRANSPORT_MODE_BUS:
      return weight >= 8 ? 200 : weight >= 4 ? 150 : 100;
    case v1::TRANSPORT_MODE_METRO:  // distance-based: mostly short rides
      return 200 + 100 * static_cast<int64_t>(std::min(rng_->Uniform(8), rng_->Uniform(8)));
    case v1::TRANSPORT_MODE_FERRY:
      return 200 + 100 * static_cast<int64_t>(rng_->Uniform(4));
    case v1::TRANSPORT_MODE_BIKE:  // per started half hour, mostly one
      return 150 * (1 + static_cast<int64_t>(std::min(rng_->Uniform(3), rng_->Uniform(3))));
    case v1::TRANSPORT_MODE_PARKING:
      return 500 * (1 + static_cast<int64_t>(rng_->Uniform(8)));
    default: {  // retail: log-uniform between 3 and 200 yuan
      const double log_fen =
          std::log(300.0) + rng_->Double() * (std::log(20000.0) - std::log(300.0));
      return static_cast<int64_t>(std::exp(log_fen));
    }
  }
}

size_t Generator::PickFarCity(size_t from_city_index) {
  const std::vector<txn::City>& cities = txn::MemberCities();
  for (;;) {
    size_t c = rng_->Weighted(city_cumulative_weight_);
    if (txn::DistanceKm(cities[from_city_index], cities[c]) >= kFarCityKmMin) return c;
  }
}

void Generator::StartRecord(const Card& card, int terminal_index, int64_t at_us, uint32_t counter,
                            int64_t balance_before_fen, int64_t balance_after_fen,
                            v1::TransactionUpload* upload, v1::TxnCommon* txn) {
  CHECK_GE(balance_after_fen, 0) << "a generated balance went negative";
  Terminal& terminal = terminals_[terminal_index];
  upload->set_occurred_at_us(at_us);
  txn->set_card_id(CardIdOf(card));
  txn->set_issuer_city(txn::MemberCities()[card.issuer_index].code);
  txn->set_acquirer_city(terminal.city);
  txn->set_operator_id(terminal.operator_id);
  txn->set_terminal_id(terminal.id);
  txn->set_terminal_seq(terminal.next_seq++);
  txn->set_card_counter(counter);
  txn->set_balance_before_fen(balance_before_fen);
  txn->set_balance_after_fen(balance_after_fen);
  txn->set_partner_id(terminal.partner_id);
}

void Generator::Sign(v1::TransactionUpload* upload) {
  absl::Status signed_ok = txn::SignUpload(keyring_, upload);
  CHECK(signed_ok.ok()) << signed_ok;
}

void Generator::Advance(Card* card, const v1::TxnCommon& txn, int terminal_index, int64_t at_us) {
  card->counter = txn.card_counter();
  card->balance_fen = txn.balance_after_fen();
  card->last_terminal = terminal_index;
  card->last_seq = txn.terminal_seq();
  card->last_at_us = at_us;
  card->last_balance_before_fen = txn.balance_before_fen();
}

std::string Generator::EmitTap(const Card& card, int terminal_index, int64_t at_us,
                               int64_t amount_fen, uint32_t counter, int64_t balance_before_fen,
                               v1::TransactionUpload* upload) {
  const Terminal& terminal = terminals_[terminal_index];
  v1::Tap* tap = upload->mutable_tap();
  StartRecord(card, terminal_index, at_us, counter, balance_before_fen,
              balance_before_fen - amount_fen, upload, tap->mutable_txn());
  tap->set_amount_fen(amount_fen);
  tap->set_mode(terminal.mode);
  tap->set_route_id(terminal.route_id);
  if (terminal.mode == v1::TRANSPORT_MODE_BUS) {
    tap->set_station_id(absl::StrCat(terminal.route_id, "-S", 1 + rng_->Uniform(30)));
  } else {
    tap->set_station_id(terminal.station_id);
  }
  Sign(upload);
  return txn::TxnEventIdOf(*upload);
}

void Generator::Emit(v1::TransactionUpload upload, bool replayable) {
  if (replayable && config_.fraud_rate > 0) {
    replay_window_.emplace_back(stats_.records + static_cast<int64_t>(pending_.size()),
                                upload.SerializeAsString());
    while (replay_window_.size() > static_cast<size_t>(config_.replay_lag_min) + 1024) {
      replay_window_.pop_front();
    }
  }
  pending_.push_back(std::move(upload));
}

void Generator::NormalStep(int64_t now_us, int64_t previous_us) {
  const bool traveller = rng_->Bernoulli(config_.cross_city_share);
  const int64_t card_index = PickCard(traveller);
  Card& card = cards_[card_index];
  const v1::TransportMode mode = PickMode(card.city_index);
  const int terminal_index = PickTerminal(card.city_index, mode);
  const int64_t amount_fen = FareFen(card.city_index, mode);
  const int64_t tap_at_us = now_us;
  if (card.balance_fen < amount_fen) {
    // Top up first, as the holder would at a ticket machine or a service counter, in the same
    // city, up to 15-60 s before the tap: never before the record emitted last, so the stream
    // stays in time order (in a dense run the load lands just after that record). The tap keeps its
    // own slot: moving the shared clock forward by the lead instead would push every later record
    // of the run later too (a run with many loads used to end hours after its last day, in the
    // future for a live ingest).
    const int64_t lead_us = (15 + static_cast<int64_t>(rng_->Uniform(46))) * kMicrosPerSecond;
    EmitLoad(&card, std::max(previous_us, now_us - lead_us), amount_fen - card.balance_fen);
  }
  v1::TransactionUpload upload;
  EmitTap(card, terminal_index, tap_at_us, amount_fen, card.counter + 1, card.balance_fen, &upload);
  Advance(&card, upload.tap().txn(), terminal_index, tap_at_us);
  if (mode == v1::TRANSPORT_MODE_RETAIL) {
    recent_refundables_[recent_refundables_next_++ % recent_refundables_.size()] = {
        card_index, terminal_index, upload.tap().txn().terminal_seq(), amount_fen};
  }
  if (recent_cards_.size() < kRecentCardsSize) {
    recent_cards_.push_back(card_index);
  } else {
    recent_cards_[recent_cards_next_++ % kRecentCardsSize] = card_index;
  }
  Emit(std::move(upload), /*replayable=*/true);
}

void Generator::EmitLoad(Card* card, int64_t at_us, int64_t needed_fen) {
  static constexpr std::array<int64_t, 6> kLoadAmounts = {5000, 10000, 20000, 30000, 50000, 100000};
  size_t choice = 0;
  while (choice + 1 < kLoadAmounts.size() && kLoadAmounts[choice] < needed_fen) ++choice;
  if (choice + 1 < kLoadAmounts.size() && rng_->Bernoulli(0.4)) ++choice;
  const int64_t amount_fen = kLoadAmounts[choice];
  const size_t metro = ModeSlot(v1::TRANSPORT_MODE_METRO);
  const size_t retail = ModeSlot(v1::TRANSPORT_MODE_RETAIL);
  const bool ticket_machine =
      !city_terminals_[card->city_index][metro].empty() && rng_->Bernoulli(0.6);
  const std::vector<int>& terminals =
      city_terminals_[card->city_index][ticket_machine ? metro : retail];
  const int terminal_index = terminals[rng_->Uniform(terminals.size())];
  v1::TransactionUpload upload;
  v1::Load* load = upload.mutable_load();
  StartRecord(*card, terminal_index, at_us, card->counter + 1, card->balance_fen,
              card->balance_fen + amount_fen, &upload, load->mutable_txn());
  load->set_amount_fen(amount_fen);
  load->set_channel(ticket_machine ? "ticket_machine" : "counter");
  Sign(&upload);
  Advance(card, load->txn(), terminal_index, at_us);
  Emit(std::move(upload), /*replayable=*/true);
}

bool Generator::TryRefund(int64_t now_us) {
  const RecentRefundable& entry = recent_refundables_[rng_->Uniform(recent_refundables_.size())];
  if (entry.card < 0) return false;
  Card& card = cards_[entry.card];
  const Terminal& terminal = terminals_[entry.terminal];
  // Refunds are card-present, at the shop that sold: only while the card is still in that city.
  if (card.retired || txn::MemberCities()[card.city_index].code != terminal.city) return false;
  const int64_t amount_fen = rng_->Bernoulli(0.7) ? entry.amount_fen : entry.amount_fen / 2;
  if (amount_fen < 1) return false;
  v1::TransactionUpload upload;
  v1::Refund* refund = upload.mutable_refund();
  StartRecord(card, entry.terminal, now_us, card.counter + 1, card.balance_fen,
              card.balance_fen + amount_fen, &upload, refund->mutable_txn());
  refund->set_amount_fen(amount_fen);
  refund->set_original_terminal_id(terminal.id);
  refund->set_original_terminal_seq(entry.seq);
  refund->set_reason(amount_fen == entry.amount_fen ? "returned" : "partial_return");
  Sign(&upload);
  Advance(&card, refund->txn(), entry.terminal, now_us);
  recent_refundables_[&entry - recent_refundables_.data()].card = -1;  // refunded once
  Emit(std::move(upload), /*replayable=*/true);
  return true;
}

bool Generator::InjectFraud(int64_t now_us) {
  const size_t kinds = FraudKinds().size();
  const size_t first = rng_->Uniform(kinds);
  for (size_t k = 0; k < kinds; ++k) {
    bool injected = false;
    switch ((first + k) % kinds) {
      case 0:
        injected = InjectClone(now_us, /*far_away=*/false);
        break;
      case 1:
        injected = InjectClone(now_us, /*far_away=*/true);
        break;
      case 2:
        injected = InjectImpossibleTravel(now_us);
        break;
      case 3:
        injected = InjectTamperedBalance(now_us);
        break;
      case 4:
        injected = InjectUseAfterBlock(now_us);
        break;
      default:
        injected = InjectReplay();
        break;
    }
    if (injected) {
      ++stats_.fraud_cases;
      return true;
    }
  }
  return false;
}

std::pair<int, int64_t> Generator::CheapRide(size_t city_index) {
  const int terminal_index = PickTerminal(city_index, v1::TRANSPORT_MODE_BUS);
  return {terminal_index, FareFen(city_index, v1::TRANSPORT_MODE_BUS)};
}

bool Generator::InjectClone(int64_t now_us, bool far_away) {
  const int64_t card_index = PickRecentCard(now_us, far_away ? kFastTravelWindowUs : 0);
  if (card_index < 0) return false;
  const Card& card = cards_[card_index];
  const std::vector<txn::City>& cities = txn::MemberCities();
  FraudCase fraud_case;
  fraud_case.card_id = CardIdOf(card);
  fraud_case.event_ids.push_back(LastEventIdOf(card));
  v1::TransactionUpload upload;
  if (!far_away) {
    // The clone carries the counter and the starting balance of the genuine card's last
    // transaction, at another terminal of the same city.
    int terminal_index = card.last_terminal;
    for (int attempt = 0; attempt < 8 && terminal_index == card.last_terminal; ++attempt) {
      terminal_index = PickTerminal(card.city_index, PickMode(card.city_index));
    }
    if (terminal_index == card.last_terminal) return false;
    const int64_t amount_fen = FareFen(card.city_index, terminals_[terminal_index].mode);
    if (amount_fen > card.last_balance_before_fen) return false;
    EmitTap(card, terminal_index, now_us, amount_fen, card.counter, card.last_balance_before_fen,
            &upload);
    fraud_case.kind = "clone_counter";
    fraud_case.detail = absl::StrCat("card counter ", card.counter, " reused at ",
                                     terminals_[terminal_index].id, " with other content");
  } else {
    // The clone is an exact copy of the card as it is now, used far away within minutes.
    const size_t city_index = PickFarCity(card.city_index);
    auto [terminal_index, amount_fen] = CheapRide(city_index);
    if (amount_fen > card.balance_fen) return false;
    EmitTap(card, terminal_index, now_us, amount_fen, card.counter + 1, card.balance_fen, &upload);
    fraud_case.kind = "clone_two_places";
    fraud_case.detail = absl::StrFormat(
        "taps in %s %.0f km from %s, %d s after the genuine card; the genuine card's next "
        "transaction repeats counter %d",
        cities[city_index].name, txn::DistanceKm(cities[card.city_index], cities[city_index]),
        cities[card.city_index].name, (now_us - card.last_at_us) / kMicrosPerSecond,
        card.counter + 1);
  }
  fraud_case.event_ids.push_back(txn::TxnEventIdOf(upload));
  fraud_cases_.push_back(std::move(fraud_case));
  Emit(std::move(upload), /*replayable=*/false);
  return true;
}

bool Generator::InjectImpossibleTravel(int64_t now_us) {
  const int64_t card_index = PickRecentCard(now_us, kFastTravelWindowUs);
  if (card_index < 0) return false;
  Card& card = cards_[card_index];
  const std::vector<txn::City>& cities = txn::MemberCities();
  const size_t from = card.city_index;
  const size_t to = PickFarCity(from);
  auto [terminal_index, amount_fen] = CheapRide(to);
  if (amount_fen > card.balance_fen) return false;
  FraudCase fraud_case;
  fraud_case.kind = "impossible_travel";
  fraud_case.card_id = CardIdOf(card);
  fraud_case.event_ids.push_back(LastEventIdOf(card));
  fraud_case.detail = absl::StrFormat("%s to %s (%.0f km) in %d s", cities[from].name,
                                      cities[to].name, txn::DistanceKm(cities[from], cities[to]),
                                      (now_us - card.last_at_us) / kMicrosPerSecond);
  v1::TransactionUpload upload;
  EmitTap(card, terminal_index, now_us, amount_fen, card.counter + 1, card.balance_fen, &upload);
  Advance(&card, upload.tap().txn(), terminal_index, now_us);
  card.city_index = static_cast<uint32_t>(to);  // the card now taps where it was seen last
  fraud_case.event_ids.push_back(txn::TxnEventIdOf(upload));
  fraud_cases_.push_back(std::move(fraud_case));
  Emit(std::move(upload), /*replayable=*/false);
  return true;
}

bool Generator::InjectTamperedBalance(int64_t now_us) {
  const int64_t card_index = PickRecentCard(now_us, 0);
  if (card_index < 0) return false;
  Card& card = cards_[card_index];
  const int64_t bump_fen = 5000 + static_cast<int64_t>(rng_->Uniform(45001));
  auto [terminal_index, amount_fen] = CheapRide(card.city_index);
  FraudCase fraud_case;
  fraud_case.kind = "tampered_balance";
  fraud_case.card_id = CardIdOf(card);
  fraud_case.event_ids.push_back(LastEventIdOf(card));
  fraud_case.detail =
      absl::StrCat("balance_before ", card.balance_fen + bump_fen, " fen after a balance_after of ",
                   card.balance_fen, " fen (+", bump_fen, " fen from nowhere)");
  // The tampered card really carries the inflated balance from now on.
  card.balance_fen += bump_fen;
  v1::TransactionUpload upload;
  EmitTap(card, terminal_index, now_us, amount_fen, card.counter + 1, card.balance_fen, &upload);
  Advance(&card, upload.tap().txn(), terminal_index, now_us);
  fraud_case.event_ids.push_back(txn::TxnEventIdOf(upload));
  fraud_cases_.push_back(std::move(fraud_case));
  Emit(std::move(upload), /*replayable=*/false);
  return true;
}

bool Generator::InjectUseAfterBlock(int64_t now_us) {
  // Never retire more than half the cards, so normal traffic always finds a card quickly.
  if (static_cast<int64_t>(2 * (retired_cards_ + 1)) > config_.cards) return false;
  const int64_t card_index = PickRecentCard(now_us, 0);
  if (card_index < 0) return false;
  Card& card = cards_[card_index];
  // The block falls strictly between the card's last good transaction and this tap.
  if (now_us - card.last_at_us < 2 * kMicrosPerSecond) return false;
  auto [terminal_index, amount_fen] = CheapRide(card.city_index);
  if (amount_fen > card.balance_fen) return false;
  const int64_t gap_us = now_us - card.last_at_us;
  FraudCase fraud_case;
  fraud_case.kind = "use_after_block";
  fraud_case.card_id = CardIdOf(card);
  fraud_case.blocked_at_us =
      card.last_at_us + 1 + static_cast<int64_t>(rng_->Uniform(static_cast<uint64_t>(gap_us - 1)));
  fraud_case.detail =
      absl::StrCat("blocked (reported lost) ",
                   (now_us - fraud_case.blocked_at_us) / kMicrosPerSecond, " s before this tap");
  v1::TransactionUpload upload;
  EmitTap(card, terminal_index, now_us, amount_fen, card.counter + 1, card.balance_fen, &upload);
  Advance(&card, upload.tap().txn(), terminal_index, now_us);
  card.retired = true;
  ++retired_cards_;
  fraud_case.event_ids.push_back(txn::TxnEventIdOf(upload));
  fraud_cases_.push_back(std::move(fraud_case));
  Emit(std::move(upload), /*replayable=*/false);
  return true;
}

bool Generator::InjectReplay() {
  const int64_t newest_allowed = stats_.records - config_.replay_lag_min;
  size_t eligible = 0;
  while (eligible < replay_window_.size() && replay_window_[eligible].first <= newest_allowed) {
    ++eligible;
  }
  if (eligible == 0) return false;
  const std::string& bytes = replay_window_[rng_->Uniform(eligible)].second;
  v1::TransactionUpload upload;
  CHECK(upload.ParseFromString(bytes));
  FraudCase fraud_case;
  fraud_case.kind = "replay";
  fraud_case.card_id = txn::CommonOf(upload)->card_id();
  fraud_case.event_ids.push_back(txn::TxnEventIdOf(upload));
  fraud_case.detail = "the same upload, byte for byte, sent again: ingest must answer DUPLICATE";
  fraud_cases_.push_back(std::move(fraud_case));
  Emit(std::move(upload), /*replayable=*/false);
  return true;
}

std::string FraudCaseJson(const FraudCase& fraud_case) {
  std::string out = "{\"kind\":";
  AppendJsonString(fraud_case.kind, &out);
  out.append(",\"card_id\":");
  AppendJsonString(fraud_case.card_id, &out);
  out.append(",\"event_ids\":[");
  for (size_t i = 0; i < fraud_case.event_ids.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(fraud_case.event_ids[i], &out);
  }
  out.append("],\"detail\":");
  AppendJsonString(fraud_case.detail, &out);
  if (fraud_case.blocked_at_us != 0) {
    absl::StrAppend(&out, ",\"blocked_at_us\":", fraud_case.blocked_at_us);
  }
  out.push_back('}');
  return out;
}

absl::Status WriteDelimited(const v1::TransactionUpload& upload, std::ostream* out) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    coded.WriteVarint32(static_cast<uint32_t>(upload.ByteSizeLong()));
    upload.SerializeWithCachedSizes(&coded);
  }
  out->write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!*out) return absl::DataLossError("writing a delimited record failed");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::TransactionUpload>> ReadDelimited(std::istream* in) {
  google::protobuf::io::IstreamInputStream stream(in);
  std::vector<v1::TransactionUpload> uploads;
  for (;;) {
    // Peek: no bytes left is the clean end; anything else must be a whole record.
    const void* data = nullptr;
    int available = 0;
    if (!stream.Next(&data, &available)) break;
    stream.BackUp(available);
    google::protobuf::io::CodedInputStream coded(&stream);
    uint32_t size = 0;
    if (!coded.ReadVarint32(&size)) {
      return absl::InvalidArgumentError(
          absl::StrCat("delimited record ", uploads.size(), " has a truncated length"));
    }
    google::protobuf::io::CodedInputStream::Limit limit = coded.PushLimit(static_cast<int>(size));
    v1::TransactionUpload upload;
    if (!upload.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage() ||
        coded.BytesUntilLimit() != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("delimited record ", uploads.size(), " is truncated or does not parse"));
    }
    coded.PopLimit(limit);
    uploads.push_back(std::move(upload));
  }
  return uploads;
}

}  // namespace tongka::tapgen
