// Proves what tapgen promises its consumers, by generating runs and checking every record with
// independent code (its own terminal-id parser, its own dev key derivation from SM3, its own
// chain walk):
//   - determinism: the same config gives byte-identical streams and ground truth; another seed
//     gives another stream;
//   - per card, counters rise by exactly 1 and balances chain, never negative, except in the
//     records the ground truth names (and only in the way it says); per terminal, seqs rise by 1;
//   - every MAC verifies under a terminal key derived from an independently computed dev key;
//   - terminal ids follow the ingest contract and belong to the acquirer city or partner;
//   - the cross-city share and the rush hours show in the data;
//   - the ground truth lists exactly the injected cases, and each case holds what it claims.
#include "tools/tapgen/tapgen.h"

#include <glog/logging.h>
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/crypto/sm3.h"
#include "libs/crypto/sm4_cmac.h"
#include "libs/crypto/terminal_key.h"
#include "libs/txn/card_id.h"
#include "libs/txn/cities.h"
#include "libs/txn/mac_input.h"
#include "libs/txn/terminal_id.h"
#include "libs/txn/upload.h"

namespace tongka::tapgen {
namespace {

constexpr int64_t kHourUs = int64_t{3600} * 1000000;

GeneratorConfig SmallConfig(uint64_t seed) {
  GeneratorConfig config;
  config.seed = seed;
  config.transactions = 20000;
  config.cards = 4000;
  config.terminals_per_million = 5;
  config.fraud_rate = 0.01;
  config.replay_lag_min = 300;
  return config;
}

struct GeneratedRun {
  std::vector<v1::TransactionUpload> uploads;
  std::string bytes;  // the delimited stream
  std::vector<FraudCase> fraud_cases;
  std::string ground_truth;  // JSON lines
  GeneratorStats stats;
  std::vector<Terminal> terminals;
};

GeneratedRun Generate(const GeneratorConfig& config) {
  absl::StatusOr<txn::CityKeyring> keyring = txn::CityKeyring::Dev();
  CHECK(keyring.ok()) << keyring.status();
  absl::StatusOr<std::unique_ptr<Generator>> generator = Generator::Create(config, *keyring);
  CHECK(generator.ok()) << generator.status();
  GeneratedRun run;
  std::ostringstream out;
  v1::TransactionUpload upload;
  while ((*generator)->Next(&upload)) {
    CHECK(WriteDelimited(upload, &out).ok());
    run.uploads.push_back(upload);
  }
  run.bytes = out.str();
  run.fraud_cases = (*generator)->fraud_cases();
  for (const FraudCase& c : run.fraud_cases) run.ground_truth += FraudCaseJson(c) + "\n";
  run.stats = (*generator)->stats();
  run.terminals = (*generator)->terminals();
  return run;
}

// One shared run for the read-only checks (generation takes a moment).
const GeneratedRun& DefaultRun() {
  static const GeneratedRun* const kRun = new GeneratedRun(Generate(SmallConfig(42)));
  return *kRun;
}

// The dev master key recomputed from its definition (keys.h), not through CityKeyring.
crypto::Sm4Key IndependentDevKey(uint32_t city) {
  crypto::Sm3Digest digest = crypto::Sm3(absl::StrCat("tongka/dev-city-master-key/v1/", city));
  crypto::Sm4Key key;
  std::copy(digest.begin(), digest.begin() + key.size(), key.begin());
  return key;
}

const v1::TxnCommon& Common(const v1::TransactionUpload& upload) { return *txn::CommonOf(upload); }

TEST(TapgenTest, SameSeedSameBytesOtherSeedOtherBytes) {
  const GeneratedRun& first = DefaultRun();
  GeneratedRun second = Generate(SmallConfig(42));
  EXPECT_EQ(first.bytes.size(), second.bytes.size());
  EXPECT_TRUE(first.bytes == second.bytes) << "same seed, different streams";
  EXPECT_EQ(first.ground_truth, second.ground_truth);
  GeneratedRun other = Generate(SmallConfig(43));
  EXPECT_NE(first.bytes, other.bytes);
  EXPECT_NE(first.ground_truth, other.ground_truth);
}

// Loads used to move the shared clock forward by their lead before the tap: with many cards
// running low (few cards, many records) the run ended hours after its last day.
TEST(TapgenTest, ManyLoadsStayInsideTheSimulatedDays) {
  GeneratorConfig config = SmallConfig(7);
  config.transactions = 60000;
  config.cards = 3000;
  config.days = 1;
  GeneratedRun run = Generate(config);
  ASSERT_GT(run.stats.loads, 2000) << "the case needs many loads";
  int64_t last_us = 0;
  std::set<std::string> seen;
  for (const v1::TransactionUpload& upload : run.uploads) {
    // A replay repeats an older record byte for byte, its device time included.
    if (!seen.insert(txn::TxnEventIdOf(upload)).second) continue;
    ASSERT_GE(upload.occurred_at_us(), last_us) << "out of time order";
    last_us = upload.occurred_at_us();
  }
  EXPECT_GE(run.uploads.front().occurred_at_us(), config.start_at_us);
  EXPECT_LT(last_us, config.start_at_us + 24 * kHourUs + 60 * 1000000)
      << (last_us - config.start_at_us - 24 * kHourUs) / 1000000 << " s past the day";
}

TEST(TapgenTest, EmitsExactlyTheConfiguredRecordsInTimeOrder) {
  const GeneratedRun& run = DefaultRun();
  const GeneratorConfig config = SmallConfig(42);
  ASSERT_EQ(static_cast<int64_t>(run.uploads.size()), config.transactions);
  EXPECT_EQ(run.stats.records, config.transactions);
  EXPECT_EQ(run.stats.taps + run.stats.loads + run.stats.refunds, config.transactions);
  EXPECT_GT(run.stats.loads, 0);
  EXPECT_GT(run.stats.refunds, 0);
  std::set<std::string> replayed;
  for (const FraudCase& c : run.fraud_cases) {
    if (c.kind == "replay") replayed.insert(c.event_ids.back());
  }
  int64_t last_us = 0;
  std::set<std::string> seen;
  for (const v1::TransactionUpload& upload : run.uploads) {
    EXPECT_GE(upload.occurred_at_us(), config.start_at_us);
    EXPECT_LT(upload.occurred_at_us(), config.start_at_us + 24 * kHourUs + 60 * 1000000);
    const bool replay = !seen.insert(txn::TxnEventIdOf(upload)).second;
    if (replay) continue;  // a replay repeats an old record, old time included
    EXPECT_GE(upload.occurred_at_us(), last_us) << txn::TxnEventIdOf(upload);
    last_us = upload.occurred_at_us();
  }
}

TEST(TapgenTest, EveryMacVerifiesUnderAnIndependentlyDerivedKey) {
  std::map<std::string, crypto::Sm4Key> keys;
  for (const v1::TransactionUpload& upload : DefaultRun().uploads) {
    const v1::TxnCommon& txn = Common(upload);
    auto it = keys.find(txn.terminal_id());
    if (it == keys.end()) {
      absl::StatusOr<crypto::Sm4Key> key =
          crypto::DeriveTerminalKey(IndependentDevKey(txn.acquirer_city()), txn.terminal_id());
      ASSERT_TRUE(key.ok()) << key.status();
      it = keys.emplace(txn.terminal_id(), *key).first;
    }
    absl::StatusOr<std::string> input = txn::MacInput(upload);
    ASSERT_TRUE(input.ok());
    ASSERT_TRUE(crypto::VerifySm4Cmac(it->second, *input, txn.mac())) << txn::TxnEventIdOf(upload);
  }
}

TEST(TapgenTest, TerminalIdsFollowTheContractAndBelongToTheAcquirer) {
  const std::regex city_terminal("^([1-9][0-9]{5})-(BUS|METRO|FERRY|BIKE|PARK|RETAIL)-([0-9]{6})$");
  const std::regex partner_terminal("^P-([a-z0-9]{1,32})-([0-9]{6})$");
  const std::map<std::string, v1::TransportMode> modes = {
      {"BUS", v1::TRANSPORT_MODE_BUS},      {"METRO", v1::TRANSPORT_MODE_METRO},
      {"FERRY", v1::TRANSPORT_MODE_FERRY},  {"BIKE", v1::TRANSPORT_MODE_BIKE},
      {"PARK", v1::TRANSPORT_MODE_PARKING}, {"RETAIL", v1::TRANSPORT_MODE_RETAIL}};
  int64_t partner_records = 0;
  for (const v1::TransactionUpload& upload : DefaultRun().uploads) {
    const v1::TxnCommon& txn = Common(upload);
    std::smatch match;
    ASSERT_NE(txn::FindCity(txn.acquirer_city()), nullptr);
    absl::StatusOr<uint32_t> issuer = txn::ParseCardId(txn.card_id());
    ASSERT_TRUE(issuer.ok()) << txn.card_id();
    EXPECT_EQ(*issuer, txn.issuer_city());
    ASSERT_NE(txn::FindCity(txn.issuer_city()), nullptr);
    if (std::regex_match(txn.terminal_id(), match, city_terminal)) {
      EXPECT_EQ(match[1].str(), std::to_string(txn.acquirer_city())) << txn.terminal_id();
      EXPECT_EQ(txn.operator_id(), match[1].str());
      EXPECT_TRUE(txn.partner_id().empty());
      if (upload.has_tap()) {
        EXPECT_EQ(upload.tap().mode(), modes.at(match[2].str()));
      }
      if (upload.has_load()) {
        EXPECT_TRUE(match[2] == "METRO" || match[2] == "RETAIL");
      }
    } else if (std::regex_match(txn.terminal_id(), match, partner_terminal)) {
      ++partner_records;
      EXPECT_EQ(txn.partner_id(), match[1].str());
      EXPECT_EQ(txn.operator_id(), "partner:" + match[1].str());
      EXPECT_FALSE(upload.has_load()) << "partners do not sell top-ups";
      if (upload.has_tap()) {
        EXPECT_EQ(upload.tap().mode(), v1::TRANSPORT_MODE_RETAIL);
      }
    } else {
      ADD_FAILURE() << "terminal id breaks the contract: " << txn.terminal_id();
    }
  }
  EXPECT_GT(partner_records, 0);
}

// The same ids through ingest's own parser (libs/txn/terminal_id.h), the other side of the
// contract: it must accept every generated id and agree on owner, mode and operator.
TEST(TapgenTest, IngestsTerminalIdParserAgrees) {
  for (const Terminal& terminal : DefaultRun().terminals) {
    absl::StatusOr<txn::TerminalId> parsed = txn::ParseTerminalId(terminal.id);
    ASSERT_TRUE(parsed.ok()) << terminal.id << ": " << parsed.status();
    EXPECT_EQ(txn::OperatorIdOf(*parsed), terminal.operator_id) << terminal.id;
    if (terminal.partner_id.empty()) {
      EXPECT_EQ(parsed->owner, txn::TerminalOwner::kCity);
      EXPECT_EQ(parsed->city, terminal.city);
      EXPECT_EQ(parsed->mode, terminal.mode);
    } else {
      EXPECT_EQ(parsed->owner, txn::TerminalOwner::kPartner);
      EXPECT_EQ(parsed->partner_id, terminal.partner_id);
    }
  }
}

TEST(TapgenTest, TerminalsCoverEveryCityAndFerriesOnlyWhereThereIsWater) {
  std::map<uint32_t, std::set<v1::TransportMode>> modes;
  std::set<std::string> ids;
  for (const Terminal& terminal : DefaultRun().terminals) {
    EXPECT_TRUE(ids.insert(terminal.id).second) << "duplicate terminal " << terminal.id;
    if (terminal.partner_id.empty()) modes[terminal.city].insert(terminal.mode);
  }
  ASSERT_EQ(modes.size(), txn::MemberCities().size());
  for (const auto& [city, city_modes] : modes) {
    EXPECT_TRUE(city_modes.count(v1::TRANSPORT_MODE_BUS)) << city;
    EXPECT_TRUE(city_modes.count(v1::TRANSPORT_MODE_RETAIL)) << city;
  }
  EXPECT_TRUE(modes[310000].count(v1::TRANSPORT_MODE_FERRY));  // Shanghai: Huangpu ferries
  EXPECT_TRUE(modes[310000].count(v1::TRANSPORT_MODE_METRO));
  EXPECT_FALSE(modes[610100].count(v1::TRANSPORT_MODE_FERRY));  // Xi'an: inland, no ferry
  EXPECT_FALSE(modes[540100].count(v1::TRANSPORT_MODE_METRO));  // Lhasa: no metro
}

// Walks every card's records in order. Genuine records must chain; the records the ground truth
// names are exempt only from the rule they break.
TEST(TapgenTest, ChainsHoldExceptWhereTheGroundTruthSaysOtherwise) {
  const GeneratedRun& run = DefaultRun();
  std::set<std::string> clones, tampered, replayed;
  for (const FraudCase& c : run.fraud_cases) {
    if (c.kind == "clone_counter" || c.kind == "clone_two_places")
      clones.insert(c.event_ids.back());
    if (c.kind == "tampered_balance") tampered.insert(c.event_ids.back());
    if (c.kind == "replay") replayed.insert(c.event_ids.back());
  }
  struct CardState {
    uint32_t counter = 0;
    int64_t balance_after_fen = 0;
  };
  std::map<std::string, CardState> cards;
  std::map<std::string, uint64_t> terminal_seqs;
  std::map<std::string, std::string> bytes_by_id;
  int64_t chained = 0;
  for (const v1::TransactionUpload& upload : run.uploads) {
    const v1::TxnCommon& txn = Common(upload);
    const std::string id = txn::TxnEventIdOf(upload);
    const std::string bytes = upload.SerializeAsString();
    auto [seen, first_time] = bytes_by_id.emplace(id, bytes);
    if (!first_time) {
      EXPECT_TRUE(replayed.count(id)) << "unexplained repeat of " << id;
      EXPECT_EQ(seen->second, bytes) << "a replay must be byte-identical: " << id;
      continue;
    }
    EXPECT_GE(txn.balance_before_fen(), 0) << id;
    EXPECT_GE(txn.balance_after_fen(), 0) << id;
    int64_t amount = upload.has_tap()    ? -upload.tap().amount_fen()
                     : upload.has_load() ? upload.load().amount_fen()
                                         : upload.refund().amount_fen();
    EXPECT_NE(amount, 0);
    EXPECT_EQ(txn.balance_after_fen(), txn.balance_before_fen() + amount) << id;
    // Terminal sequence numbers rise by exactly one per record of that terminal.
    uint64_t& seq = terminal_seqs[txn.terminal_id()];
    EXPECT_EQ(txn.terminal_seq(), seq + 1) << id;
    seq = txn.terminal_seq();
    if (clones.count(id)) continue;  // a clone's record is not part of the genuine card's chain
    auto card = cards.find(txn.card_id());
    if (card != cards.end()) {
      // (A two-places clone used the genuine card's next counter, so the genuine card repeats
      // it; with the clone's record left out, the genuine chain is still consecutive.)
      EXPECT_EQ(txn.card_counter(), card->second.counter + 1) << id;
      if (!tampered.count(id)) {
        EXPECT_EQ(txn.balance_before_fen(), card->second.balance_after_fen) << id;
      } else {
        EXPECT_GT(txn.balance_before_fen(), card->second.balance_after_fen) << id;
      }
      ++chained;
    }
    cards[txn.card_id()] = {txn.card_counter(), txn.balance_after_fen()};
  }
  EXPECT_GT(chained, 5000);
  for (const std::string& id : clones) EXPECT_TRUE(bytes_by_id.count(id)) << id;
  for (const std::string& id : tampered) EXPECT_TRUE(bytes_by_id.count(id)) << id;
}

TEST(TapgenTest, GroundTruthListsExactlyTheInjectedCases) {
  const GeneratedRun& run = DefaultRun();
  std::map<std::string, const v1::TransactionUpload*> by_id;
  std::map<std::string, int> occurrences;
  std::map<std::string, std::vector<const v1::TransactionUpload*>> by_card;
  for (const v1::TransactionUpload& upload : run.uploads) {
    const std::string id = txn::TxnEventIdOf(upload);
    if (++occurrences[id] == 1) {
      by_id[id] = &upload;
      by_card[Common(upload).card_id()].push_back(&upload);
    }
  }
  // Every kind appears, and the injected share matches fraud_rate (1% of 20,000 = 200).
  std::map<std::string, int> kinds;
  for (const FraudCase& c : run.fraud_cases) ++kinds[c.kind];
  for (const std::string& kind : FraudKinds()) EXPECT_GT(kinds[kind], 0) << kind;
  EXPECT_NEAR(static_cast<double>(run.fraud_cases.size()), 200.0, 60.0);
  EXPECT_EQ(run.stats.fraud_cases, static_cast<int64_t>(run.fraud_cases.size()));

  // Repeated ids are exactly the replays.
  std::multiset<std::string> replays;
  for (const FraudCase& c : run.fraud_cases) {
    if (c.kind == "replay") replays.insert(c.event_ids.back());
  }
  std::multiset<std::string> repeats;
  for (const auto& [id, n] : occurrences) {
    for (int i = 1; i < n; ++i) repeats.insert(id);
  }
  EXPECT_EQ(replays, repeats);

  const std::vector<txn::City>& cities = txn::MemberCities();
  auto distance_km = [&](const v1::TxnCommon& a, const v1::TxnCommon& b) {
    return txn::DistanceKm(*txn::FindCity(a.acquirer_city()), *txn::FindCity(b.acquirer_city()));
  };
  ASSERT_FALSE(cities.empty());
  for (const FraudCase& c : run.fraud_cases) {
    SCOPED_TRACE(FraudCaseJson(c));
    ASSERT_FALSE(c.event_ids.empty());
    ASSERT_TRUE(by_id.count(c.event_ids.back()));
    const v1::TransactionUpload& injected = *by_id[c.event_ids.back()];
    EXPECT_EQ(Common(injected).card_id(), c.card_id);
    if (c.kind == "replay") {
      EXPECT_EQ(c.event_ids.size(), 1u);
      continue;
    }
    EXPECT_EQ(occurrences[c.event_ids.back()], 1);
    if (c.kind == "use_after_block") {
      ASSERT_EQ(c.event_ids.size(), 1u);
      EXPECT_LT(c.blocked_at_us, injected.occurred_at_us());
      // The blocked card's only record at or after the block is the injected tap.
      for (const v1::TransactionUpload* other : by_card[c.card_id]) {
        if (other == &injected) continue;
        EXPECT_LT(other->occurred_at_us(), c.blocked_at_us) << txn::TxnEventIdOf(*other);
      }
      continue;
    }
    ASSERT_EQ(c.event_ids.size(), 2u);
    ASSERT_TRUE(by_id.count(c.event_ids[0]));
    const v1::TransactionUpload& previous = *by_id[c.event_ids[0]];
    const v1::TxnCommon& a = Common(previous);
    const v1::TxnCommon& b = Common(injected);
    EXPECT_EQ(a.card_id(), b.card_id());
    if (c.kind == "clone_counter") {
      EXPECT_EQ(b.card_counter(), a.card_counter());
      EXPECT_NE(b.terminal_id(), a.terminal_id());
      EXPECT_EQ(b.balance_before_fen(), a.balance_before_fen());
    } else if (c.kind == "clone_two_places" || c.kind == "impossible_travel") {
      EXPECT_EQ(b.card_counter(), a.card_counter() + 1);
      EXPECT_EQ(b.balance_before_fen(), a.balance_after_fen());
      EXPECT_GE(distance_km(a, b), 1000.0);
      EXPECT_LE(injected.occurred_at_us() - previous.occurred_at_us(), kHourUs / 2);
    } else if (c.kind == "tampered_balance") {
      EXPECT_EQ(b.card_counter(), a.card_counter() + 1);
      EXPECT_GT(b.balance_before_fen(), a.balance_after_fen());
    } else {
      ADD_FAILURE() << "unknown kind";
    }
  }
}

TEST(TapgenTest, GroundTruthJsonLines) {
  FraudCase c;
  c.kind = "use_after_block";
  c.card_id = "3100000000000012349";
  c.event_ids = {"txn/310000-BUS-000001/7"};
  c.detail = "blocked \"lost\"";
  c.blocked_at_us = 1795449600000001;
  EXPECT_EQ(FraudCaseJson(c),
            "{\"kind\":\"use_after_block\",\"card_id\":\"3100000000000012349\","
            "\"event_ids\":[\"txn/310000-BUS-000001/7\"],\"detail\":\"blocked \\\"lost\\\"\","
            "\"blocked_at_us\":1795449600000001}");
  c.blocked_at_us = 0;
  c.event_ids.push_back("txn/P-unionmart-000002/1");
  EXPECT_EQ(FraudCaseJson(c),
            "{\"kind\":\"use_after_block\",\"card_id\":\"3100000000000012349\","
            "\"event_ids\":[\"txn/310000-BUS-000001/7\",\"txn/P-unionmart-000002/1\"],"
            "\"detail\":\"blocked \\\"lost\\\"\"}");
}

TEST(TapgenTest, CrossCityShareWithinTolerance) {
  for (double share : {0.05, 0.2, 0.0}) {
    GeneratorConfig config = SmallConfig(7);
    config.cross_city_share = share;
    config.fraud_rate = 0;
    GeneratedRun run = Generate(config);
    ASSERT_GT(run.stats.taps, 15000);
    const double measured = static_cast<double>(run.stats.cross_city_taps) / run.stats.taps;
    EXPECT_NEAR(measured, share, 0.01 + share * 0.1) << "configured " << share;
    EXPECT_TRUE(run.fraud_cases.empty());
  }
}

TEST(TapgenTest, RushHoursAreBusierThanTheNight) {
  std::vector<int64_t> by_hour(24, 0);
  const GeneratorConfig config = SmallConfig(42);
  for (const v1::TransactionUpload& upload : DefaultRun().uploads) {
    if (!upload.has_tap()) continue;
    const int64_t local_us = upload.occurred_at_us() + 8 * kHourUs;  // Beijing time
    ++by_hour[(local_us / kHourUs) % 24];
  }
  ASSERT_EQ((config.start_at_us + 8 * kHourUs) % (24 * kHourUs), 0) << "starts at local midnight";
  EXPECT_GT(by_hour[8], 10 * by_hour[3]);
  EXPECT_GT(by_hour[18], 10 * by_hour[3]);
  EXPECT_GT(by_hour[8], 2 * by_hour[14]);
  EXPECT_GT(by_hour[18], 2 * by_hour[14]);
  EXPECT_GT(by_hour[3], 0);
}

TEST(TapgenTest, DelimitedStreamRoundTripsAndRejectsTruncation) {
  const GeneratedRun& run = DefaultRun();
  std::istringstream in(run.bytes);
  absl::StatusOr<std::vector<v1::TransactionUpload>> read = ReadDelimited(&in);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), run.uploads.size());
  for (size_t i = 0; i < read->size(); ++i) {
    ASSERT_EQ((*read)[i].SerializeAsString(), run.uploads[i].SerializeAsString()) << i;
  }
  std::istringstream truncated(run.bytes.substr(0, run.bytes.size() - 3));
  absl::StatusOr<std::vector<v1::TransactionUpload>> bad = ReadDelimited(&truncated);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  // A length cut in the middle of its varint is an error too, not a clean end.
  std::ostringstream one;
  ASSERT_TRUE(WriteDelimited(run.uploads[0], &one).ok());
  std::istringstream whole(one.str());
  ASSERT_EQ(ReadDelimited(&whole)->size(), 1u);
  std::istringstream cut_length(one.str() + std::string(1, '\x80'));
  absl::StatusOr<std::vector<v1::TransactionUpload>> cut = ReadDelimited(&cut_length);
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find("record 1 has a truncated length"), std::string::npos)
      << cut.status();
  std::istringstream empty("");
  absl::StatusOr<std::vector<v1::TransactionUpload>> none = ReadDelimited(&empty);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(TapgenTest, ConfigIsValidated) {
  txn::CityKeyring keyring = *txn::CityKeyring::Dev();
  auto error = [&](GeneratorConfig config) { return Generator::Create(config, keyring).status(); };
  GeneratorConfig config;
  config.transactions = 0;
  EXPECT_NE(error(config).message().find("tapgen.transactions"), std::string::npos);
  config = GeneratorConfig();
  config.cross_city_share = 1.5;
  EXPECT_NE(error(config).message().find("tapgen.cross_city_share"), std::string::npos);
  config = GeneratorConfig();
  config.fraud_rate = -0.1;
  EXPECT_NE(error(config).message().find("tapgen.fraud_rate"), std::string::npos);
  config = GeneratorConfig();
  config.days = 0;
  EXPECT_EQ(error(config).code(), absl::StatusCode::kInvalidArgument);
  // A keyring without every member city cannot sign every terminal.
  txn::CityKeyring partial =
      *txn::CityKeyring::FromText("310000 000102030405060708090a0b0c0d0e0f\n", "test");
  absl::Status status = Generator::Create(GeneratorConfig(), partial).status();
  EXPECT_NE(status.message().find("tapgen.keyring"), std::string::npos) << status;
}

}  // namespace
}  // namespace tongka::tapgen
