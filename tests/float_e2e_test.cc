// The prepaid float adds up card by card, on the real broker.
//
// A broker with the platform's topics, the real ingest, settlement and card registry binaries
// (dev tokens, a holder key per member city), then the real tapgen binary: it issues its cards
// through the registry's IssueCards (--registry) and plays a simulated day of cross-city traffic,
// loads and refunds included, through ingest. Once both services have committed every record of
// their topics (their own tongka_consumer_committed_offset figures equal the log ends, outboxes
// empty), the ministry checks, for every issuer tapgen used:
//   settlement's GetFloat outstanding_fen == the registry's GetIssuerBalances balance_fen
//     == the sum of the issuer's cards' balances as this test computes them from tapgen's own
//        files (opening balance, then the balance_after of the card's acknowledged transactions
//        in counter order) == openings + loads - spends + refunds (the amounts),
// the same over all issuers, and GetCard of every card shows the computed balance and counter.
// The balance chains are checked first (each transaction starts where the last one ended and
// moves the balance by exactly its amount): were they broken, the amount-based float and the
// balance-based sum would differ for a reason in the data, and the test says so by card.
//
// Then the registry's money paths: CloseCard of a card moves its balance from the issuer's
// outstanding float to owed_to_holders_fen and takes it out of GetIssuerBalances; ReplaceCard of
// another moves its balance onto a new card id (outstanding unchanged). After settlement has
// applied tongka.cards the equality holds again.
//
// tapgen runs with --fraud_rate=0: injected fraud (clones, tampered balances) breaks balance
// chains on purpose, and which clone's balance a card shows is fraud detection's question, not
// the float's. Every wait polls a condition under a deadline.
#include <glog/logging.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/metrics/test_support.h"
#include "libs/server/authenticator.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "libs/testing/subprocess.h"
#include "libs/txn/card_id.h"
#include "libs/txn/cities.h"
#include "libs/txn/upload.h"
#include "proto/card_registry.grpc.pb.h"
#include "proto/events.pb.h"
#include "proto/settlement.grpc.pb.h"
#include "services/ingest/testing/topic_reader.h"
#include "tools/tapgen/tapgen.h"

namespace tongka {
namespace {

constexpr char kSecret[] = "float-e2e-test-dev-secret-0123456789";
constexpr char kTxnTopic[] = "tongka.txn";
constexpr char kCardsTopic[] = "tongka.cards";
constexpr char kSettlementTopic[] = "tongka.settlement";
constexpr int32_t kTxnPartitions = 8;
constexpr int64_t kTransactions = 6000;
constexpr int64_t kCards = 1500;

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

std::unique_ptr<testing::Subprocess> Start(const std::vector<std::string>& argv,
                                           const std::string& log_name) {
  auto process = testing::Subprocess::Start(argv, {}, TempPath(log_name));
  EXPECT_TRUE(process.ok()) << process.status();
  return process.ok() ? std::move(*process) : nullptr;
}

// A running service: its process, its gRPC port and its /metrics port.
struct Service {
  std::string name;
  int grpc_port = 0;
  int metrics_port = 0;
  std::unique_ptr<testing::Subprocess> process;

  // Waits for /readyz (the service's loops have caught up with the log once).
  void AwaitReady() {
    httplib::Client client("127.0.0.1", metrics_port);
    client.set_connection_timeout(1);
    for (const absl::Time deadline = absl::Now() + absl::Seconds(90); absl::Now() < deadline;) {
      ASSERT_TRUE(process->Running()) << name << " exited:\n" << process->Log();
      httplib::Result ready = client.Get("/readyz");
      if (ready && ready->status == 200) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
    FAIL() << name << " not ready after 90 s:\n" << process->Log();
  }

  // The samples of /metrics: "name{labels}" -> value (empty when it does not answer).
  std::map<std::string, double> Metrics() {
    httplib::Client client("127.0.0.1", metrics_port);
    client.set_connection_timeout(1);
    std::map<std::string, double> samples;
    httplib::Result result = client.Get("/metrics");
    if (!result || result->status != 200) return samples;
    for (absl::string_view line : absl::StrSplit(result->body, '\n')) {
      if (line.empty() || line[0] == '#') continue;
      const size_t space = line.rfind(' ');
      double value = 0;
      if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
        continue;
      }
      samples[std::string(line.substr(0, space))] = value;
    }
    return samples;
  }
};

// The value of `metric` with exactly these labels (in any order), if /metrics shows it.
std::optional<double> Sample(const std::map<std::string, double>& samples,
                             const std::string& metric,
                             const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : samples) {
    if (key == metric && labels.empty()) return value;
    if (key.compare(0, metric.size() + 1, metric + "{") != 0) continue;
    std::map<std::string, std::string> found;
    const std::string body = key.substr(metric.size() + 1, key.size() - metric.size() - 2);
    for (absl::string_view pair : absl::StrSplit(body, ',', absl::SkipEmpty())) {
      const size_t eq = pair.find('=');
      if (eq == absl::string_view::npos) continue;
      absl::string_view quoted = pair.substr(eq + 1);
      if (quoted.size() >= 2) quoted = quoted.substr(1, quoted.size() - 2);
      found[std::string(pair.substr(0, eq))] = std::string(quoted);
    }
    if (found == labels) return value;
  }
  return std::nullopt;
}

// Per partition, the offset after the topic's last record (a partition with no record: absent).
std::map<int32_t, int64_t> LogEnds(const std::string& bootstrap, const std::string& topic) {
  auto records = ingest::testing::ReadTopic(bootstrap, topic, absl::Seconds(60));
  EXPECT_TRUE(records.ok()) << records.status();
  std::map<int32_t, int64_t> ends;
  if (!records.ok()) return ends;
  for (const event_log::Record& record : *records) {
    int64_t& end = ends[record.partition];
    end = std::max(end, record.offset + 1);
  }
  return ends;
}

// Waits until `service`'s loop `loop` has committed every record of `ends` in `topic` and its
// outbox is empty: its state then reflects the whole log as it stands.
void AwaitCommitted(Service& service, const std::string& loop, const std::string& topic,
                    const std::map<int32_t, int64_t>& ends) {
  std::string behind;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(90); absl::Now() < deadline;) {
    ASSERT_TRUE(service.process->Running()) << service.name << " exited:\n"
                                            << service.process->Log();
    const std::map<std::string, double> samples = service.Metrics();
    behind.clear();
    for (const auto& [partition, end] : ends) {
      const std::optional<double> committed =
          Sample(samples, "tongka_consumer_committed_offset",
                 {{"loop", loop}, {"topic", topic}, {"partition", absl::StrCat(partition)}});
      if (!committed.has_value() || static_cast<int64_t>(*committed) < end) {
        absl::StrAppend(&behind, " ", topic, "/", partition, " at ",
                        committed.has_value() ? absl::StrCat(*committed) : "?", " of ", end);
      }
    }
    const std::optional<double> outbox = Sample(samples, "tongka_outbox_depth_events", {});
    if (!outbox.has_value() || *outbox != 0) absl::StrAppend(&behind, " outbox not empty");
    if (behind.empty()) return;
    absl::SleepFor(absl::Milliseconds(100));
  }
  FAIL() << service.name << " loop " << loop << " behind after 90 s:" << behind;
}

template <typename Stub, typename Request, typename Response>
grpc::Status Call(Stub& stub, const v1::Tenant& tenant,
                  grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                  const Request& request, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  server::AttachDevToken(&context, *server::DevTokenIssuer::Create(kSecret)->Issue(
                                       tenant, absl::Now() + absl::Hours(1)));
  return (stub.*method)(&context, request, response);
}

// ---- the independent computation, from tapgen's files ----

struct CardFile {
  std::string card_id;
  uint32_t issuer = 0;
  int64_t initial_balance_fen = 0;
  uint32_t initial_counter = 0;
};

std::vector<CardFile> ReadCards(const std::string& path) {
  std::vector<CardFile> cards;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> fields = absl::StrSplit(line, ',');
    CardFile card;
    int64_t counter = 0;
    EXPECT_TRUE(fields.size() == 6 && absl::SimpleAtoi(fields[1], &card.issuer) &&
                absl::SimpleAtoi(fields[3], &card.initial_balance_fen) &&
                absl::SimpleAtoi(fields[4], &counter))
        << line;
    card.card_id = fields[0];
    card.initial_counter = static_cast<uint32_t>(counter);
    cards.push_back(card);
  }
  return cards;
}

// One acknowledged transaction as the balance chain sees it.
struct Step {
  uint32_t counter = 0;
  int64_t before_fen = 0;
  int64_t after_fen = 0;
  int64_t delta_fen = 0;  // what its amount does to the card: -tap, +load, +refund
  std::string event_id;
};

struct Expected {
  std::map<std::string, int64_t> balance_fen;    // per card: the last balance_after, or the opening
  std::map<std::string, uint32_t> last_counter;  // cards with a transaction
  std::map<uint32_t, int64_t> by_balances_fen;   // per issuer: the sum of its cards' balances
  std::map<uint32_t, int64_t> by_amounts_fen;    // per issuer: openings + loads - spends + refunds
  std::map<uint32_t, int64_t> cards;             // per issuer
  // Per issuer, the parts of the float as tapgen sent them: what settlement's position shows.
  std::map<uint32_t, std::string> parts;
  std::vector<std::string> chain_breaks;  // described, card by card
  int64_t loads = 0;
  int64_t taps = 0;
  int64_t refunds = 0;
};

Expected Compute(const std::vector<CardFile>& cards,
                 const std::vector<v1::TransactionUpload>& uploads,
                 const std::set<std::string>& acked) {
  Expected expected;
  std::map<std::string, std::vector<Step>> steps;
  std::map<uint32_t, int64_t> openings, loads, spent, refunded;
  std::set<std::string> seen;
  for (const v1::TransactionUpload& upload : uploads) {
    const std::string id = txn::TxnEventIdOf(upload);
    if (acked.count(id) == 0 || !seen.insert(id).second) continue;
    const v1::TxnCommon* txn = nullptr;
    Step step;
    if (upload.has_tap()) {
      txn = &upload.tap().txn();
      step.delta_fen = -upload.tap().amount_fen();
      ++expected.taps;
    } else if (upload.has_load()) {
      txn = &upload.load().txn();
      step.delta_fen = upload.load().amount_fen();
      ++expected.loads;
    } else {
      txn = &upload.refund().txn();
      step.delta_fen = upload.refund().amount_fen();
      ++expected.refunds;
    }
    step.counter = txn->card_counter();
    step.before_fen = txn->balance_before_fen();
    step.after_fen = txn->balance_after_fen();
    step.event_id = id;
    steps[txn->card_id()].push_back(step);
    int64_t* part = upload.has_tap()    ? &spent[txn->issuer_city()]
                    : upload.has_load() ? &loads[txn->issuer_city()]
                                        : &refunded[txn->issuer_city()];
    *part += std::abs(step.delta_fen);
  }
  std::set<std::string> known;
  for (const CardFile& card : cards) {
    known.insert(card.card_id);
    int64_t balance = card.initial_balance_fen;
    int64_t by_amounts = card.initial_balance_fen;
    std::vector<Step>& chain = steps[card.card_id];
    std::sort(chain.begin(), chain.end(),
              [](const Step& a, const Step& b) { return a.counter < b.counter; });
    uint32_t counter = card.initial_counter;
    for (const Step& step : chain) {
      if (step.counter != counter + 1 || step.before_fen != balance ||
          step.after_fen - step.before_fen != step.delta_fen) {
        expected.chain_breaks.push_back(
            absl::StrCat(card.card_id, " ", step.event_id, ": counter ", step.counter, " after ",
                         counter, ", balance_before ", step.before_fen, " after ", balance,
                         ", balance_after ", step.after_fen, " for an amount of ", step.delta_fen));
      }
      counter = step.counter;
      balance = step.after_fen;
      by_amounts += step.delta_fen;
    }
    expected.balance_fen[card.card_id] = balance;
    if (!chain.empty()) expected.last_counter[card.card_id] = counter;
    expected.by_balances_fen[card.issuer] += balance;
    expected.by_amounts_fen[card.issuer] += by_amounts;
    ++expected.cards[card.issuer];
    openings[card.issuer] += card.initial_balance_fen;
  }
  for (const auto& [issuer, unused] : expected.cards) {
    expected.parts[issuer] =
        absl::StrCat("opening_fen: ", openings[issuer], " loads_fen: ", loads[issuer],
                     " spent_fen: ", spent[issuer], " refunded_fen: ", refunded[issuer]);
  }
  for (const auto& [card_id, chain] : steps) {
    if (known.count(card_id) == 0 && !chain.empty()) {
      expected.chain_breaks.push_back(absl::StrCat(card_id, ": transactions of a card not issued"));
    }
  }
  return expected;
}

// ---- the ministry's two views ----

std::map<uint32_t, v1::FloatPosition> Float(v1::SettlementService::Stub& settlement) {
  v1::GetFloatResponse response;
  const grpc::Status status =
      Call(settlement, server::MinistryTenant(), &v1::SettlementService::Stub::GetFloat,
           v1::GetFloatRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  std::map<uint32_t, v1::FloatPosition> positions;
  for (const v1::FloatPosition& position : response.issuers()) {
    positions[position.issuer_city()] = position;
  }
  return positions;
}

v1::GetIssuerBalancesResponse Balances(v1::CardRegistryService::Stub& registry, uint32_t issuer) {
  v1::GetIssuerBalancesRequest request;
  request.set_issuer_city(issuer);
  v1::GetIssuerBalancesResponse response;
  const grpc::Status status =
      Call(registry, server::MinistryTenant(), &v1::CardRegistryService::Stub::GetIssuerBalances,
           request, &response);
  EXPECT_TRUE(status.ok()) << issuer << ": " << status.error_message();
  return response;
}

std::optional<v1::CardView> GetCard(v1::CardRegistryService::Stub& registry,
                                    const std::string& card_id) {
  v1::GetCardRequest request;
  request.set_card_id(card_id);
  v1::GetCardResponse response;
  const grpc::Status status = Call(registry, server::MinistryTenant(),
                                   &v1::CardRegistryService::Stub::GetCard, request, &response);
  EXPECT_TRUE(status.ok()) << card_id << ": " << status.error_message();
  if (!status.ok()) return std::nullopt;
  return response.card();
}

// For every issuer: settlement's outstanding float equals the registry's sum of balances (and
// `expected_fen` when given); the same in total. Returns the registry's per-issuer figures.
std::map<uint32_t, v1::GetIssuerBalancesResponse> ExpectFloatEqualsBalances(
    v1::SettlementService::Stub& settlement, v1::CardRegistryService::Stub& registry,
    const std::set<uint32_t>& issuers, const std::map<uint32_t, int64_t>& expected_fen,
    const std::map<uint32_t, std::string>& sent) {
  const std::map<uint32_t, v1::FloatPosition> positions = Float(settlement);
  std::map<uint32_t, v1::GetIssuerBalancesResponse> balances;
  int64_t outstanding_total = 0;
  int64_t balance_total = 0;
  int64_t expected_total = 0;
  for (uint32_t issuer : issuers) {
    auto position = positions.find(issuer);
    const int64_t outstanding =
        position == positions.end() ? 0 : position->second.outstanding_fen();
    balances[issuer] = Balances(registry, issuer);
    const int64_t balance = balances[issuer].balance_fen();
    EXPECT_EQ(outstanding, balance)
        << "issuer " << issuer << ": settlement's float "
        << (position == positions.end() ? "(none)" : position->second.ShortDebugString())
        << " != the registry's balances " << balances[issuer].ShortDebugString() << "; tapgen sent "
        << (sent.count(issuer) > 0 ? sent.at(issuer) : "?");
    auto expected = expected_fen.find(issuer);
    if (expected != expected_fen.end()) {
      EXPECT_EQ(balance, expected->second) << "issuer " << issuer << ": the registry's balances";
      EXPECT_EQ(outstanding, expected->second) << "issuer " << issuer << ": settlement's float";
      expected_total += expected->second;
    }
    outstanding_total += outstanding;
    balance_total += balance;
  }
  EXPECT_EQ(outstanding_total, balance_total) << "over every issuer";
  if (!expected_fen.empty()) {
    EXPECT_EQ(balance_total, expected_total) << "over every issuer";
  }
  for (const auto& [issuer, position] : positions) {
    if (issuers.count(issuer) == 0) {
      EXPECT_EQ(position.outstanding_fen(), 0) << "a float for an issuer with no card: " << issuer;
    }
  }
  LOG(INFO) << "float == balances for " << issuers.size() << " issuers, " << outstanding_total
            << " fen in total";
  return balances;
}

TEST(FloatE2eTest, SettlementFloatEqualsTheSumOfCardBalancesAfterTapgensDay) {
  // ---- the broker, its topics, the three services ----
  std::filesystem::remove_all(TempPath("kafka"));
  auto kafka = event_log::LocalKafka::Start(TempPath("kafka"));
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  const std::string bootstrap = (*kafka)->bootstrap();
  ASSERT_TRUE(
      event_log::EnsureTopics({.bootstrap_servers = bootstrap},
                              {{.name = kTxnTopic, .partitions = kTxnPartitions},
                               {.name = "tongka.txn.conflicts", .partitions = kTxnPartitions},
                               {.name = kCardsTopic, .partitions = kTxnPartitions},
                               {.name = "tongka.members", .partitions = 1},
                               {.name = kSettlementTopic, .partitions = 4}},
                              absl::Seconds(60))
          .ok());
  // Every partition answers its watermarks before a service starts: a fresh topic's leader may
  // take a moment after creation.
  for (const char* topic :
       {kTxnTopic, "tongka.txn.conflicts", kCardsTopic, "tongka.members", kSettlementTopic}) {
    absl::StatusOr<std::vector<event_log::Record>> read;
    for (const absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
      read = ingest::testing::ReadTopic(bootstrap, topic, absl::Seconds(5));
      if (read.ok()) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_TRUE(read.ok()) << topic << ": " << read.status();
  }
  std::ofstream(TempPath("dev_token_secret")) << kSecret << "\n";
  {
    // A development holder key per member city, as tools/run_platform.sh writes them.
    std::ofstream keys(TempPath("holder_keys"));
    for (const txn::City& city : txn::MemberCities()) {
      keys << city.code << ":00112233445566778899aabbcc" << city.code << "\n";
    }
  }
  const std::vector<std::string> common = {
      "--kafka_bootstrap=" + bootstrap, "--grpc_host=127.0.0.1", "--metrics_host=127.0.0.1",
      "--auth=dev", "--dev_token_secret_file=" + TempPath("dev_token_secret")};
  auto launch = [&](Service& service, const std::string& binary, std::vector<std::string> extra) {
    service.grpc_port = metrics::test_support::PickFreeTcpPort();
    service.metrics_port = metrics::test_support::PickFreeTcpPort();
    std::vector<std::string> argv = {binary, "--state_dir=" + TempPath(service.name),
                                     absl::StrCat("--grpc_port=", service.grpc_port),
                                     absl::StrCat("--metrics_port=", service.metrics_port)};
    argv.insert(argv.end(), common.begin(), common.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    service.process = Start(argv, service.name + ".log");
  };
  Service ingest{.name = "ingest"};
  Service settlement{.name = "settlement"};
  Service registry{.name = "card_registry"};
  launch(ingest, "services/ingest/tongka_ingest", {});
  launch(settlement, "services/settlement/tongka_settlement",
         {"--schedule_close=false", "--fee_schedule=default:50"});
  launch(registry, "services/card_registry/tongka_card_registry",
         {"--holder_keys=" + TempPath("holder_keys")});
  for (Service* service : {&ingest, &settlement, &registry}) {
    ASSERT_NE(service->process, nullptr);
    service->AwaitReady();
    if (HasFatalFailure()) return;
  }
  auto settlement_stub = v1::SettlementService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", settlement.grpc_port), grpc::InsecureChannelCredentials()));
  auto registry_stub = v1::CardRegistryService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", registry.grpc_port), grpc::InsecureChannelCredentials()));

  // ---- tapgen: its cards through IssueCards, then a day of traffic ----
  const absl::Time tapgen_started = absl::Now();
  auto tapgen =
      Start({"tools/tapgen/tapgen", "--seed=20261224",
             absl::StrCat("--transactions=", kTransactions), absl::StrCat("--cards=", kCards),
             "--cross_city_share=0.2", "--fraud_rate=0", "--batch_size=500", "--concurrency=4",
             absl::StrCat("--registry=127.0.0.1:", registry.grpc_port),
             absl::StrCat("--target=127.0.0.1:", ingest.grpc_port),
             absl::StrCat("--dev_token_secret=", kSecret), "--out=" + TempPath("taps.bin"),
             "--acked_out=" + TempPath("acked.txt"), "--cards_out=" + TempPath("cards.csv")},
            "tapgen.log");
  ASSERT_NE(tapgen, nullptr);
  const int tapgen_status = tapgen->Wait();
  ASSERT_TRUE(WIFEXITED(tapgen_status) && WEXITSTATUS(tapgen_status) == 0) << tapgen->Log();
  LOG(INFO) << "tapgen took " << absl::Now() - tapgen_started;

  const std::vector<CardFile> cards = ReadCards(TempPath("cards.csv"));
  ASSERT_EQ(static_cast<int64_t>(cards.size()), kCards);
  std::ifstream in(TempPath("taps.bin"), std::ios::binary);
  auto uploads = tapgen::ReadDelimited(&in);
  ASSERT_TRUE(uploads.ok()) << uploads.status();
  ASSERT_EQ(static_cast<int64_t>(uploads->size()), kTransactions);
  std::set<std::string> acked;
  {
    std::ifstream acked_in(TempPath("acked.txt"));
    for (std::string line; std::getline(acked_in, line);) {
      if (!line.empty()) acked.insert(line);
    }
  }
  ASSERT_GT(acked.size(), static_cast<size_t>(kTransactions * 9 / 10)) << tapgen->Log();
  const Expected expected = Compute(cards, *uploads, acked);
  std::set<uint32_t> issuers;
  for (const CardFile& card : cards) issuers.insert(card.issuer);
  LOG(INFO) << acked.size() << " of " << kTransactions << " records acknowledged: " << expected.taps
            << " taps, " << expected.loads << " loads, " << expected.refunds << " refunds on "
            << expected.last_counter.size() << " of " << cards.size() << " cards of "
            << issuers.size() << " issuers";
  ASSERT_GT(expected.loads, 0);
  ASSERT_GT(expected.refunds, 0);
  ASSERT_GT(issuers.size(), 20u);

  // tapgen's balance chains are whole: the amounts and the balances tell the same story.
  EXPECT_TRUE(expected.chain_breaks.empty())
      << expected.chain_breaks.size()
      << " breaks in tapgen's balance chains, the first: " << expected.chain_breaks.front();
  for (uint32_t issuer : issuers) {
    EXPECT_EQ(expected.by_amounts_fen.at(issuer), expected.by_balances_fen.at(issuer))
        << "issuer " << issuer << ": amounts and balances disagree in tapgen's own data";
  }

  // ---- both services have applied the whole log ----
  const std::map<int32_t, int64_t> txn_ends = LogEnds(bootstrap, kTxnTopic);
  const std::map<int32_t, int64_t> card_ends = LogEnds(bootstrap, kCardsTopic);
  {
    int64_t logged = 0;
    for (const auto& [partition, end] : txn_ends) logged += end;
    EXPECT_EQ(logged, static_cast<int64_t>(acked.size())) << "tongka.txn != what ingest acked";
  }
  auto await_applied = [&] {
    AwaitCommitted(registry, "ledger", kCardsTopic, LogEnds(bootstrap, kCardsTopic));
    AwaitCommitted(registry, "ledger", kTxnTopic, txn_ends);
    AwaitCommitted(settlement, "txn", kCardsTopic, LogEnds(bootstrap, kCardsTopic));
    AwaitCommitted(settlement, "txn", kTxnTopic, txn_ends);
    // The txn stage's deltas are all on tongka.settlement now (its outbox is empty).
    AwaitCommitted(settlement, "ledger", kSettlementTopic, LogEnds(bootstrap, kSettlementTopic));
  };
  await_applied();
  if (HasFatalFailure()) return;
  {
    // The registry read tongka.txn to the end: the card of the last record of every partition
    // shows that record's counter (a cross-check of the figures the wait relied on).
    auto records = ingest::testing::ReadTopic(bootstrap, kTxnTopic, absl::Seconds(60));
    ASSERT_TRUE(records.ok()) << records.status();
    std::map<int32_t, std::string> last_card;
    for (const event_log::Record& record : *records) {
      v1::Event event;
      ASSERT_TRUE(event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())));
      const v1::TxnCommon& txn = event.has_tap()      ? event.tap().txn()
                                 : event.has_refund() ? event.refund().txn()
                                                      : event.load().txn();
      last_card[record.partition] = txn.card_id();
    }
    for (const auto& [partition, card_id] : last_card) {
      const std::optional<v1::CardView> card = GetCard(*registry_stub, card_id);
      ASSERT_TRUE(card.has_value());
      EXPECT_EQ(card->last_counter(), expected.last_counter.at(card_id)) << card_id;
    }
  }

  // ---- the ministry's check: float == balances, issuer by issuer, card by card ----
  const std::map<uint32_t, v1::GetIssuerBalancesResponse> before = ExpectFloatEqualsBalances(
      *settlement_stub, *registry_stub, issuers, expected.by_balances_fen, expected.parts);
  for (uint32_t issuer : issuers) {
    EXPECT_EQ(before.at(issuer).cards(), expected.cards.at(issuer)) << "issuer " << issuer;
    EXPECT_EQ(before.at(issuer).closed_cards(), 0) << "issuer " << issuer;
  }
  {
    const std::map<uint32_t, v1::FloatPosition> positions = Float(*settlement_stub);
    int64_t openings = 0;
    int64_t owed = 0;
    for (const CardFile& card : cards) openings += card.initial_balance_fen;
    for (const auto& [issuer, position] : positions) {
      openings -= position.opening_fen();
      owed += position.owed_to_holders_fen();
    }
    EXPECT_EQ(openings, 0) << "settlement's opening_fen != tapgen's opening balances";
    EXPECT_EQ(owed, 0);
  }
  int mismatched = 0;
  for (const CardFile& card : cards) {
    const std::optional<v1::CardView> view = GetCard(*registry_stub, card.card_id);
    ASSERT_TRUE(view.has_value());
    const int64_t balance = expected.balance_fen.at(card.card_id);
    auto counter = expected.last_counter.find(card.card_id);
    const bool match =
        view->balance_fen() == balance && view->status() == v1::CARD_STATUS_ACTIVE &&
        (counter == expected.last_counter.end() || view->last_counter() == counter->second);
    if (!match && ++mismatched <= 5) {
      ADD_FAILURE() << card.card_id << ": expected balance " << balance << " counter "
                    << (counter == expected.last_counter.end() ? 0 : counter->second)
                    << ", the registry shows " << view->ShortDebugString();
    }
  }
  EXPECT_EQ(mismatched, 0) << "cards whose GetCard differs from tapgen's record";

  // ---- the money paths: close one card, replace another ----
  // Two cards of the issuer with most cards, each with a balance, one of them used today.
  uint32_t issuer = 0;
  for (const auto& [city, count] : expected.cards) {
    if (issuer == 0 || count > expected.cards.at(issuer)) issuer = city;
  }
  std::string to_close;
  std::string to_replace;
  for (const CardFile& card : cards) {
    if (card.issuer != issuer || expected.balance_fen.at(card.card_id) <= 0) continue;
    if (to_close.empty() && expected.last_counter.count(card.card_id) > 0) {
      to_close = card.card_id;
    } else if (to_replace.empty() && to_close != card.card_id) {
      to_replace = card.card_id;
    }
  }
  ASSERT_FALSE(to_close.empty());
  ASSERT_FALSE(to_replace.empty());
  const int64_t close_fen = expected.balance_fen.at(to_close);
  const int64_t replace_fen = expected.balance_fen.at(to_replace);
  const v1::FloatPosition float_before = Float(*settlement_stub).at(issuer);
  const v1::Tenant operator_tenant = server::CityTenant(issuer);

  const std::string new_card = txn::MakeCardId(issuer, 987654321);
  {
    v1::ReplaceCardRequest request;
    request.set_request_id("float-e2e-replace");
    request.set_card_id(to_replace);
    request.set_new_card_id(new_card);
    request.set_new_form(v1::CARD_FORM_PHYSICAL);
    request.set_reason("damaged");
    request.set_actor("clerk-7");
    v1::CardCommandResponse response;
    const grpc::Status status =
        Call(*registry_stub, operator_tenant, &v1::CardRegistryService::Stub::ReplaceCard, request,
             &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_TRUE(response.accepted()) << response.ShortDebugString();
    EXPECT_EQ(response.derived().card_id(), new_card);
    EXPECT_NE(response.derived().state(), v1::DerivedCard::STATE_REFUSED)
        << response.ShortDebugString();
    EXPECT_EQ(response.derived().carried_balance_fen(), replace_fen);
  }
  {
    v1::CloseCardRequest request;
    request.set_request_id("float-e2e-close");
    request.set_card_id(to_close);
    request.set_reason("holder asked for a refund");
    request.set_actor("clerk-7");
    v1::CardCommandResponse response;
    const grpc::Status status = Call(*registry_stub, operator_tenant,
                                     &v1::CardRegistryService::Stub::CloseCard, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_TRUE(response.accepted()) << response.ShortDebugString();
    EXPECT_EQ(response.status(), v1::CARD_STATUS_CLOSED);
  }
  // Settlement applies tongka.cards: the close shows as owed to the holder.
  {
    std::optional<v1::FloatPosition> now;
    for (const absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
      ASSERT_TRUE(settlement.process->Running()) << settlement.process->Log();
      now = Float(*settlement_stub).at(issuer);
      if (now->owed_to_holders_fen() != float_before.owed_to_holders_fen()) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ASSERT_NE(now->owed_to_holders_fen(), float_before.owed_to_holders_fen())
        << "settlement did not apply the close in 60 s";
  }
  // Both commands' events (the replacement's second half included) applied everywhere.
  await_applied();
  if (HasFatalFailure()) return;
  {
    const v1::FloatPosition after = Float(*settlement_stub).at(issuer);
    EXPECT_EQ(after.owed_to_holders_fen(), float_before.owed_to_holders_fen() + close_fen)
        << after.ShortDebugString();
    EXPECT_EQ(after.outstanding_fen(), float_before.outstanding_fen() - close_fen)
        << "the close moves the card's balance out of the float; the replacement moves nothing: "
        << after.ShortDebugString();
  }
  {
    const std::optional<v1::CardView> old_card = GetCard(*registry_stub, to_replace);
    ASSERT_TRUE(old_card.has_value());
    EXPECT_EQ(old_card->status(), v1::CARD_STATUS_CLOSED);
    EXPECT_EQ(old_card->replaced_by_card_id(), new_card);
    const std::optional<v1::CardView> replacement = GetCard(*registry_stub, new_card);
    ASSERT_TRUE(replacement.has_value());
    EXPECT_EQ(replacement->status(), v1::CARD_STATUS_ACTIVE) << replacement->ShortDebugString();
    EXPECT_EQ(replacement->balance_fen(), replace_fen) << replacement->ShortDebugString();
    EXPECT_EQ(replacement->carried_balance_fen(), replace_fen);
    EXPECT_EQ(replacement->carried_from_card_id(), to_replace);
    const std::optional<v1::CardView> closed = GetCard(*registry_stub, to_close);
    ASSERT_TRUE(closed.has_value());
    EXPECT_EQ(closed->status(), v1::CARD_STATUS_CLOSED);
  }
  std::map<uint32_t, int64_t> expected_after = expected.by_balances_fen;
  expected_after[issuer] -= close_fen;
  const std::map<uint32_t, v1::GetIssuerBalancesResponse> after =
      ExpectFloatEqualsBalances(*settlement_stub, *registry_stub, issuers, expected_after, {});
  EXPECT_EQ(after.at(issuer).balance_fen(), before.at(issuer).balance_fen() - close_fen);
  EXPECT_EQ(after.at(issuer).cards(), before.at(issuer).cards() - 1) << "two closed, one issued";
  EXPECT_EQ(after.at(issuer).closed_cards(), 2);
  LOG(INFO) << "closed " << to_close << " (" << close_fen << " fen owed to its holder), replaced "
            << to_replace << " by " << new_card << " (" << replace_fen << " fen carried)";

  for (Service* service : {&ingest, &settlement, &registry}) {
    service->process->TerminateAndWait(absl::Seconds(20));
  }
}

}  // namespace
}  // namespace tongka
