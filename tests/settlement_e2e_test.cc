// Settlement end to end on the real broker: tapgen traffic through the real ingest binary into
// the real settlement binary, and the closed window's report checked to the fen against an
// independent computation from tapgen's own file of the same transactions.
//
// Part 1, one replica killed mid-window. tapgen (--out and --target) sends a simulated day of
// 80-city traffic to ingest at a paced rate; meanwhile the settlement replica is SIGKILLed at
// random moments (at least three times, each after it has moved the window on since its last
// start) and restarted on the same state dir. After the traffic
// and a final restart the ministry closes the window. The report must equal what this test
// computes from tapgen's file, restricted to the ids ingest acknowledged: every (issuer,
// acquirer) row's count, gross, refunds, fee (50 bp, half up, per transaction) and net, every
// city's multilateral net, payables = receivables; and each issuer's float change in the window.
//
// Part 2, two replicas. The same tongka.txn (every record, same key, same partition) is copied
// into a second, fresh broker and settled by two replicas that own alternate partitions (one of
// them SIGKILLed once it has begun applying). Into that copy go, mixed with the traffic and again
// while the replica is down, exact copies of records (same key, same partition: what a producer
// retry across its restart appends) and copies written into a partition their key does not hash
// to: the float and the report must not move, and each replica must count exactly the copies it
// dropped and the misrouted records it refused. Both replicas' reports must carry the digest of
// part 1's single-replica report, and reconciliation through the peer fan-out must narrow a city's
// id list for one hour (one id removed, one invented) to exactly those two ids, for an hour whose
// transactions sit in partitions of both replicas.
//
// The operator CLI (tools/cli:tongka_ctl) is run against part 1's service and must print the same
// report digest, and mark a city's view as filtered.
//
// The window cut is placed twelve hours away from the test's start, so every transaction lands
// in one window whatever the time of day the test runs.
#include <grpcpp/grpcpp.h>
#include <librdkafka/rdkafka.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "glog/logging.h"
#include "gtest/gtest.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/producer.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/metrics/test_support.h"
#include "libs/server/authenticator.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "libs/state_store/event_filter.h"
#include "libs/state_store/state_store.h"
#include "libs/testing/subprocess.h"
#include "libs/txn/upload.h"
#include "proto/events.pb.h"
#include "proto/settlement.grpc.pb.h"
#include "services/ingest/testing/topic_reader.h"
#include "tools/tapgen/tapgen.h"

namespace tongka {
namespace {

constexpr char kSecret[] = "settlement-e2e-test-dev-secret-0123456789";
constexpr char kTxnTopic[] = "tongka.txn";
constexpr char kSettlementTopic[] = "tongka.settlement";
constexpr int32_t kTxnPartitions = 8;
constexpr int32_t kSettlementPartitions = 4;
constexpr int64_t kTransactions = 60000;
constexpr int64_t kFeeBp = 50;
// Asia/Shanghai has kept UTC+8 without daylight saving since 1991.
const absl::TimeZone kShanghai = absl::FixedTimeZone(8 * 3600);

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

// ---- the independent computation ----

struct Row {
  int64_t count = 0;  // taps + refunds
  int64_t gross_fen = 0;
  int64_t fee_fen = 0;
  int64_t refunds = 0;
  int64_t refunds_fen = 0;
  bool operator==(const Row& o) const {
    return count == o.count && gross_fen == o.gross_fen && fee_fen == o.fee_fen &&
           refunds == o.refunds && refunds_fen == o.refunds_fen;
  }
};

// Half up, per transaction, as the fee schedule promises.
int64_t FeeFen(int64_t amount_fen) { return (amount_fen * kFeeBp + 5000) / 10000; }

struct Expected {
  std::map<std::pair<uint32_t, uint32_t>, Row> rows;
  std::map<uint32_t, int64_t> net_fen;           // cross-city only
  std::map<uint32_t, int64_t> float_change_fen;  // per issuer: loads - taps + refunds
  int64_t transactions = 0;                      // taps + refunds
};

Expected Compute(const std::vector<v1::TransactionUpload>& uploads,
                 const std::set<std::string>& acked) {
  Expected expected;
  std::set<std::string> seen;
  for (const v1::TransactionUpload& upload : uploads) {
    const std::string id = txn::TxnEventIdOf(upload);
    if (acked.count(id) == 0 || !seen.insert(id).second) continue;  // rejected, or a replay
    const v1::TxnCommon* txn = nullptr;
    if (upload.has_tap()) txn = &upload.tap().txn();
    if (upload.has_load()) txn = &upload.load().txn();
    if (upload.has_refund()) txn = &upload.refund().txn();
    const uint32_t issuer = txn->issuer_city();
    const uint32_t acquirer = txn->acquirer_city();
    if (upload.has_load()) {
      expected.float_change_fen[issuer] += upload.load().amount_fen();
      continue;
    }
    Row& row = expected.rows[{issuer, acquirer}];
    ++row.count;
    ++expected.transactions;
    if (upload.has_tap()) {
      row.gross_fen += upload.tap().amount_fen();
      row.fee_fen += FeeFen(upload.tap().amount_fen());
      expected.float_change_fen[issuer] -= upload.tap().amount_fen();
    } else {
      row.gross_fen -= upload.refund().amount_fen();
      row.fee_fen -= FeeFen(upload.refund().amount_fen());
      ++row.refunds;
      row.refunds_fen += upload.refund().amount_fen();
      expected.float_change_fen[issuer] += upload.refund().amount_fen();
    }
  }
  for (const auto& [pair, row] : expected.rows) {
    if (pair.first == pair.second) continue;
    expected.net_fen[pair.first] -= row.gross_fen - row.fee_fen;
    expected.net_fen[pair.second] += row.gross_fen - row.fee_fen;
  }
  return expected;
}

// Checks a report against the computation, field by field.
void ExpectReportEquals(const v1::SettlementReport& report, const Expected& expected) {
  std::map<std::pair<uint32_t, uint32_t>, Row> actual;
  for (const v1::BilateralPosition& position : report.bilateral()) {
    Row& row = actual[{position.issuer_city(), position.acquirer_city()}];
    row = {position.count(), position.gross_fen(), position.fee_fen(), position.refunds(),
           position.refunds_fen()};
    EXPECT_EQ(position.net_fen(), position.gross_fen() - position.fee_fen());
  }
  EXPECT_EQ(actual.size(), expected.rows.size());
  for (const auto& [pair, row] : expected.rows) {
    auto it = actual.find(pair);
    if (it == actual.end()) {
      ADD_FAILURE() << "report lacks row " << pair.first << " -> " << pair.second;
      continue;
    }
    EXPECT_TRUE(it->second == row)
        << pair.first << " -> " << pair.second << ": report count " << it->second.count << " gross "
        << it->second.gross_fen << " fee " << it->second.fee_fen << "; expected " << row.count
        << " " << row.gross_fen << " " << row.fee_fen;
  }
  int64_t receivable = 0;
  int64_t sum = 0;
  for (const v1::NetPosition& net : report.net()) {
    auto it = expected.net_fen.find(net.city());
    EXPECT_EQ(net.net_fen(), it == expected.net_fen.end() ? 0 : it->second) << net.city();
    sum += net.net_fen();
    if (net.net_fen() > 0) receivable += net.net_fen();
  }
  for (const auto& [city, net_fen] : expected.net_fen) {
    if (net_fen == 0) continue;
    bool found = false;
    for (const v1::NetPosition& net : report.net()) found |= net.city() == city;
    EXPECT_TRUE(found) << "report lacks the net of " << city;
  }
  EXPECT_EQ(sum, 0);
  EXPECT_GT(receivable, 0);
  EXPECT_EQ(report.total_receivable_fen(), receivable);
  EXPECT_EQ(report.total_payable_fen(), receivable);
}

// ---- the processes ----

// A fresh local broker in TEST_TMPDIR/`name` with both topics; nullptr (and a failure) if not.
std::unique_ptr<event_log::LocalKafka> StartBroker(const std::string& name) {
  std::filesystem::remove_all(TempPath(name));
  auto kafka = event_log::LocalKafka::Start(TempPath(name));
  EXPECT_TRUE(kafka.ok()) << kafka.status();
  if (!kafka.ok()) return nullptr;
  absl::Status topics =
      event_log::EnsureTopics({.bootstrap_servers = (*kafka)->bootstrap()},
                              {{.name = kTxnTopic, .partitions = kTxnPartitions},
                               {.name = "tongka.txn.conflicts", .partitions = kTxnPartitions},
                               {.name = "tongka.cards", .partitions = kTxnPartitions},
                               {.name = "tongka.members", .partitions = 1},
                               {.name = kSettlementTopic, .partitions = kSettlementPartitions}},
                              absl::Seconds(60));
  EXPECT_TRUE(topics.ok()) << topics;
  return topics.ok() ? std::move(*kafka) : nullptr;
}

std::unique_ptr<testing::Subprocess> Start(const std::vector<std::string>& argv,
                                           const std::string& log_name) {
  auto process = testing::Subprocess::Start(argv, {}, TempPath(log_name));
  EXPECT_TRUE(process.ok()) << process.status();
  return process.ok() ? std::move(*process) : nullptr;
}

struct Replica {
  std::string bootstrap;
  std::string state_dir;
  int32_t index = 0;
  int32_t count = 1;
  int grpc_port = 0;
  std::string peers;
  absl::Duration cut;
  std::unique_ptr<testing::Subprocess> process;
  std::unique_ptr<v1::SettlementService::Stub> stub;

  void Launch() {
    process =
        Start({"services/settlement/tongka_settlement", "--kafka_bootstrap=" + bootstrap,
               "--state_dir=" + state_dir, absl::StrCat("--replica_index=", index),
               absl::StrCat("--replica_count=", count), "--peers=" + peers, "--grpc_host=127.0.0.1",
               absl::StrCat("--grpc_port=", grpc_port),
               absl::StrCat("--window_cut=", absl::ToInt64Minutes(cut), "m"),
               "--schedule_close=false", absl::StrCat("--fee_schedule=default:", kFeeBp),
               "--auth=dev", absl::StrCat("--dev_token_secret=", kSecret), "--metrics_port=-1"},
              absl::StrCat("settlement-", index, ".log"));
    stub = v1::SettlementService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", grpc_port),
                                                              grpc::InsecureChannelCredentials()));
  }
};

template <typename Request, typename Response>
grpc::Status Call(Replica& replica, const v1::Tenant& tenant,
                  grpc::Status (v1::SettlementService::Stub::*method)(grpc::ClientContext*,
                                                                      const Request&, Response*),
                  const Request& request, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  server::AttachDevToken(&context, *server::DevTokenIssuer::Create(kSecret)->Issue(
                                       tenant, absl::Now() + absl::Hours(1)));
  return (replica.stub.get()->*method)(&context, request, response);
}

// The transactions of the window in the replica's ledger (the ministry's view), if it answers.
std::optional<int64_t> WindowTransactions(Replica& replica, const std::string& window_id) {
  v1::GetWindowRequest request;
  request.set_window_id(window_id);
  v1::GetWindowResponse response;
  if (!Call(replica, server::MinistryTenant(), &v1::SettlementService::Stub::GetWindow, request,
            &response)
           .ok()) {
    return std::nullopt;
  }
  return response.window().transactions();
}

// Waits until the replica's ledger holds every transaction of the window (the ministry's view).
void AwaitTransactions(Replica& replica, const std::string& window_id, int64_t transactions) {
  int64_t seen = -1;
  for (int i = 0; i < 1800; ++i) {
    ASSERT_TRUE(replica.process->Running()) << "settlement exited:\n" << replica.process->Log();
    v1::GetWindowRequest request;
    request.set_window_id(window_id);
    v1::GetWindowResponse response;
    if (Call(replica, server::MinistryTenant(), &v1::SettlementService::Stub::GetWindow, request,
             &response)
            .ok()) {
      seen = response.window().transactions();
      ASSERT_LE(seen, transactions) << "counted more transactions than the log holds";
      if (seen == transactions) return;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  FAIL() << "replica " << replica.index << " shows " << seen << " of " << transactions
         << " transactions\n"
         << replica.process->Log();
}

// Each issuer's float change in the window (non-zero only), as the ministry reads it.
std::map<uint32_t, int64_t> FloatChange(Replica& replica, const std::string& window_id) {
  v1::GetFloatRequest request;
  request.set_window_id(window_id);
  v1::GetFloatResponse response;
  const grpc::Status status = Call(replica, server::MinistryTenant(),
                                   &v1::SettlementService::Stub::GetFloat, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  std::map<uint32_t, int64_t> change;
  for (const v1::FloatPosition& issuer : response.issuers()) {
    if (issuer.window_change_fen() != 0) change[issuer.issuer_city()] = issuer.window_change_fen();
  }
  return change;
}

// Appends copies of records at the partition the test names, whatever their key says: what a
// producer with another partitioner (or a hand-picked partition) would write. Raw librdkafka,
// since Tongka's own Producer always partitions by the key.
class RawPartitionWriter {
 public:
  explicit RawPartitionWriter(const std::string& bootstrap) {
    char error[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    CHECK_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), error, sizeof(error)),
             RD_KAFKA_CONF_OK)
        << error;
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
    CHECK(producer_ != nullptr) << error;
  }
  ~RawPartitionWriter() {
    rd_kafka_flush(producer_, 60000);
    rd_kafka_destroy(producer_);
  }
  void Write(const std::string& topic, int32_t partition, absl::string_view key,
             absl::string_view value) {
    const rd_kafka_resp_err_t error = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END);
    CHECK_EQ(error, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(error);
    rd_kafka_poll(producer_, 0);
  }
  void Flush() { CHECK_EQ(rd_kafka_flush(producer_, 60000), RD_KAFKA_RESP_ERR_NO_ERROR); }

 private:
  rd_kafka_t* producer_ = nullptr;
};

v1::SettlementReport CloseAndReport(Replica& closer, std::vector<Replica*> readers,
                                    const std::string& window_id) {
  v1::ChangeWindowStateRequest close;
  close.set_request_id(absl::StrCat("e2e-close-", closer.count));
  close.set_window_id(window_id);
  close.set_target_state(v1::WINDOW_STATE_CLOSED);
  close.set_reason("end-to-end test");
  v1::ChangeWindowStateResponse closed;
  grpc::Status status = Call(closer, server::MinistryTenant(),
                             &v1::SettlementService::Stub::ChangeWindowState, close, &closed);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(closed.accepted()) << closed.rule() << ": " << closed.message();
  v1::SettlementReport first;
  for (Replica* reader : readers) {
    v1::GetReportRequest request;
    request.set_window_id(window_id);
    v1::GetReportResponse response;
    // Every replica applies the close from the log; a reader may still be on its way there.
    for (int i = 0; i < 300; ++i) {
      status = Call(*reader, server::MinistryTenant(), &v1::SettlementService::Stub::GetReport,
                    request, &response);
      if (status.error_code() != grpc::StatusCode::FAILED_PRECONDITION) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_TRUE(status.ok()) << "replica " << reader->index << ": " << status.error_message();
    EXPECT_FALSE(response.filtered());
    if (first.window_id().empty()) {
      first = response.report();
    } else {
      EXPECT_EQ(response.report().digest(), first.digest()) << "replica " << reader->index;
    }
  }
  return first;
}

// What this test reads back from tongka.txn for each transaction.
struct Logged {
  int32_t partition = 0;
  int64_t recorded_at_us = 0;
  uint32_t issuer = 0;
  uint32_t acquirer = 0;
  bool load = false;
};

TEST(SettlementE2eTest, ReportEqualsTapgenToTheFenAcrossKillsAndReplicas) {
  // The cut twelve hours from now, in whole minutes of Shanghai local time.
  const absl::CivilMinute now_local = absl::ToCivilMinute(absl::Now(), kShanghai);
  const int64_t now_minute_of_day = now_local.hour() * 60 + now_local.minute();
  int64_t cut_minutes = (now_minute_of_day + 12 * 60) % (24 * 60);
  if (cut_minutes == 0) cut_minutes = 24 * 60;
  const absl::Duration cut = absl::Minutes(cut_minutes);
  // The window that holds now: it ends at the next local time of day `cut`, and is named by the
  // local date of that end.
  const absl::CivilDay today = absl::CivilDay(now_local);
  const absl::CivilDay window_day = cut_minutes > now_minute_of_day ? today : today + 1;
  const std::string window_id = absl::FormatCivilTime(window_day);
  const absl::Time window_start =
      absl::FromCivil(absl::CivilMinute(window_day - 1), kShanghai) + cut;

  // ---- Part 1: broker, ingest, tapgen, one settlement replica killed mid-window ----
  std::unique_ptr<event_log::LocalKafka> kafka = StartBroker("kafka1");
  ASSERT_NE(kafka, nullptr);
  const std::string bootstrap = kafka->bootstrap();
  const int ingest_port = metrics::test_support::PickFreeTcpPort();
  auto ingest = Start({"services/ingest/tongka_ingest", "--kafka_bootstrap=" + bootstrap,
                       "--state_dir=" + TempPath("ingest"), "--grpc_host=127.0.0.1",
                       absl::StrCat("--grpc_port=", ingest_port), "--auth=dev",
                       absl::StrCat("--dev_token_secret=", kSecret), "--metrics_port=-1"},
                      "ingest.log");
  ASSERT_NE(ingest, nullptr);
  {
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", ingest_port),
                                       grpc::InsecureChannelCredentials());
    ASSERT_TRUE(
        channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(120)))
        << ingest->Log();
  }

  Replica single{.bootstrap = bootstrap,
                 .state_dir = TempPath("settlement-single"),
                 .grpc_port = metrics::test_support::PickFreeTcpPort(),
                 .cut = cut};
  single.Launch();
  ASSERT_NE(single.process, nullptr);

  const std::string file = TempPath("taps.bin");
  const std::string acked_file = TempPath("acked.txt");
  auto tapgen = Start(
      {"tools/tapgen/tapgen", "--seed=20261201", absl::StrCat("--transactions=", kTransactions),
       "--cards=20000", "--cross_city_share=0.2", "--rate=2000", "--concurrency=4",
       "--batch_size=500", "--target=127.0.0.1:" + std::to_string(ingest_port),
       absl::StrCat("--dev_token_secret=", kSecret), "--out=" + file, "--acked_out=" + acked_file},
      "tapgen.log");
  ASSERT_NE(tapgen, nullptr);

  // SIGKILL the replica at random moments while traffic flows, each time only after it has moved
  // the window on since its last start (stage one committed, its outbox published, the ledger
  // applied): every kill lands in the middle of real work, not in a start-up.
  std::mt19937 rng(20261201);
  std::uniform_int_distribution<int> pause_ms(0, 400);
  int kills = 0;
  int64_t last_seen = 0;
  while (tapgen->Running()) {
    bool progressed = false;
    for (absl::Time deadline = absl::Now() + absl::Seconds(30);
         !progressed && absl::Now() < deadline && tapgen->Running();) {
      ASSERT_TRUE(single.process->Running()) << "settlement exited:\n" << single.process->Log();
      const std::optional<int64_t> seen = WindowTransactions(single, window_id);
      progressed = seen.has_value() && *seen > last_seen;
      if (progressed) last_seen = *seen;
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (!progressed) break;
    absl::SleepFor(absl::Milliseconds(pause_ms(rng)));
    single.process->Kill();
    single.process->Wait();
    ++kills;
    single.Launch();
  }
  ASSERT_GE(kills, 3) << "too few kills landed while the replica was working";
  const int tapgen_status = tapgen->Wait();
  ASSERT_TRUE(WIFEXITED(tapgen_status) && WEXITSTATUS(tapgen_status) == 0) << tapgen->Log();
  ingest->TerminateAndWait(absl::Seconds(20));
  {
    const std::string log = tapgen->Log();
    const size_t last = log.rfind("tapgen records=");
    LOG(INFO) << "settlement was killed " << kills << " times mid-window; "
              << (last == std::string::npos ? log : log.substr(last));
  }

  // The independent computation: tapgen's file, restricted to what ingest acknowledged.
  std::ifstream in(file, std::ios::binary);
  auto uploads = tapgen::ReadDelimited(&in);
  ASSERT_TRUE(uploads.ok()) << uploads.status();
  ASSERT_EQ(static_cast<int64_t>(uploads->size()), kTransactions);
  std::set<std::string> acked;
  {
    std::ifstream acked_in(acked_file);
    for (std::string line; std::getline(acked_in, line);) {
      if (!line.empty()) acked.insert(line);
    }
  }
  {
    std::set<std::string> ids;
    for (const v1::TransactionUpload& upload : *uploads) ids.insert(txn::TxnEventIdOf(upload));
    EXPECT_EQ(acked, ids) << "ingest rejected some of tapgen's records:\n" << tapgen->Log();
  }
  const Expected expected = Compute(*uploads, acked);
  ASSERT_GT(expected.transactions, kTransactions / 2);
  ASSERT_GT(expected.net_fen.size(), 10u) << "too little cross-city traffic to prove netting";
  LOG(INFO) << acked.size() << " of " << kTransactions << " records acknowledged; "
            << expected.transactions << " taps and refunds in " << expected.rows.size()
            << " (issuer, acquirer) rows, " << expected.net_fen.size() << " cities with a net";

  // What the log holds: each acknowledged id exactly once, all in this window.
  auto records = ingest::testing::ReadTopic(bootstrap, kTxnTopic, absl::Seconds(60));
  ASSERT_TRUE(records.ok()) << records.status();
  std::map<std::string, Logged> logged;
  for (const event_log::Record& record : *records) {
    v1::Event event;
    ASSERT_TRUE(event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())));
    const v1::TxnCommon& txn = event.has_tap()      ? event.tap().txn()
                               : event.has_refund() ? event.refund().txn()
                                                    : event.load().txn();
    ASSERT_TRUE(logged
                    .emplace(event.event_id(),
                             Logged{record.partition, event.recorded_at_us(), txn.issuer_city(),
                                    txn.acquirer_city(), event.has_load()})
                    .second)
        << "twice in the log: " << event.event_id();
    ASSERT_GE(absl::FromUnixMicros(event.recorded_at_us()), window_start);
    ASSERT_LT(absl::FromUnixMicros(event.recorded_at_us()), window_start + absl::Hours(24));
  }
  EXPECT_EQ(logged.size(), acked.size());

  AwaitTransactions(single, window_id, expected.transactions);
  std::map<uint32_t, int64_t> part1_float_change;
  {
    part1_float_change = FloatChange(single, window_id);
    const std::map<uint32_t, int64_t>& change = part1_float_change;
    std::map<uint32_t, int64_t> expected_change;
    for (const auto& [city, fen] : expected.float_change_fen) {
      if (fen != 0) expected_change[city] = fen;
    }
    EXPECT_EQ(change, expected_change);
  }
  const v1::SettlementReport report = CloseAndReport(single, {&single}, window_id);
  ASSERT_EQ(report.window_id(), window_id);
  ExpectReportEquals(report, expected);
  ASSERT_FALSE(report.digest().empty());
  {
    // The operator CLI prints the same report: its digest, and for a city only its own rows.
    std::string digest_hex;
    for (unsigned char c : report.digest()) {
      absl::StrAppend(&digest_hex, absl::Hex(c, absl::kZeroPad2));
    }
    for (const std::string tenant : {"ministry", "city:310000"}) {
      auto ctl = Start(
          {"tools/cli/tongka_ctl", absl::StrCat("--target=127.0.0.1:", single.grpc_port),
           "--tenant=" + tenant, absl::StrCat("--dev_token_secret=", kSecret), "report", window_id},
          "ctl-" + tenant + ".log");
      ASSERT_NE(ctl, nullptr);
      const int ctl_status = ctl->Wait();
      EXPECT_TRUE(WIFEXITED(ctl_status) && WEXITSTATUS(ctl_status) == 0) << ctl->Log();
      EXPECT_NE(ctl->Log().find("report digest (SM3): " + digest_hex), std::string::npos)
          << ctl->Log();
      EXPECT_EQ(ctl->Log().find("(your rows only)") != std::string::npos, tenant != "ministry")
          << ctl->Log();
    }
  }
  single.process->TerminateAndWait(absl::Seconds(20));
  kafka.reset();  // stops the first broker

  // ---- Part 2: the same log, a fresh broker, two replicas ----
  // The log is copied with repeats and misrouted copies mixed in, and more of both are written
  // after a replica's SIGKILL: the report, the float and the reconciliation must not move.
  int64_t copies = 0;
  int64_t misrouted = 0;
  std::unique_ptr<event_log::LocalKafka> kafka2 = StartBroker("kafka2");
  ASSERT_NE(kafka2, nullptr);
  const std::string bootstrap2 = kafka2->bootstrap();
  {
    auto producer = event_log::Producer::Create({.bootstrap_servers = bootstrap2});
    ASSERT_TRUE(producer.ok()) << producer.status();
    std::atomic<int64_t> misplaced{0};
    std::atomic<int64_t> failed{0};
    // Every 25th record goes in twice, the copy right behind the original among the traffic
    // (a producer retry across its restart, or a second producer: same key, same partition).
    RawPartitionWriter misrouter(bootstrap2);
    for (size_t i = 0; i < records->size(); ++i) {
      const event_log::Record& record = (*records)[i];
      const int32_t partition = record.partition;
      for (int copy = 0; copy < (i % 25 == 0 ? 2 : 1); ++copy) {
        ASSERT_TRUE((*producer)
                        ->ProduceWaiting(
                            kTxnTopic, record.key, record.value,
                            [&, partition](const event_log::DeliveryResult& result) {
                              if (!result.status.ok()) ++failed;
                              if (result.partition != partition) ++misplaced;
                            },
                            absl::Minutes(1))
                        .ok());
      }
      if (i % 25 == 0) ++copies;
      // Every 40th record also goes, a copy, into the next partition: a per-partition id index
      // would not see it there, so the consumer must refuse it by its key.
      if (i % 40 == 7) {
        misrouter.Write(kTxnTopic, (partition + 1) % kTxnPartitions, record.key, record.value);
        ++misrouted;
      }
    }
    ASSERT_TRUE((*producer)->Flush(absl::Minutes(2)).ok());
    misrouter.Flush();
    ASSERT_EQ(failed.load(), 0);
    ASSERT_EQ(misplaced.load(), 0) << "murmur2 must place a card in the same partition";
  }
  std::vector<Replica> replicas(2);
  std::string peers;
  for (int32_t k = 0; k < 2; ++k) {
    replicas[k] = Replica{.bootstrap = bootstrap2,
                          .state_dir = TempPath(absl::StrCat("settlement-", k, "-of-2")),
                          .index = k,
                          .count = 2,
                          .grpc_port = metrics::test_support::PickFreeTcpPort(),
                          .cut = cut};
    absl::StrAppend(&peers, k == 0 ? "" : ",", "127.0.0.1:", replicas[k].grpc_port);
  }
  for (Replica& replica : replicas) {
    replica.peers = peers;
    replica.Launch();
    ASSERT_NE(replica.process, nullptr);
  }
  // Replica 1 dies once, after it has begun applying the log.
  for (int i = 0; i < 600; ++i) {
    const std::optional<int64_t> seen = WindowTransactions(replicas[1], window_id);
    if (seen.has_value() && *seen > 0) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  replicas[1].process->Kill();
  replicas[1].process->Wait();
  {
    // While it is down: every 30th record once more, in its own partition and in the next.
    auto producer = event_log::Producer::Create({.bootstrap_servers = bootstrap2});
    ASSERT_TRUE(producer.ok()) << producer.status();
    RawPartitionWriter misrouter(bootstrap2);
    for (size_t i = 0; i < records->size(); i += 30) {
      const event_log::Record& record = (*records)[i];
      ASSERT_TRUE(
          (*producer)->ProduceSync(kTxnTopic, record.key, record.value, absl::Minutes(1)).ok());
      ++copies;
      misrouter.Write(kTxnTopic, (record.partition + 3) % kTxnPartitions, record.key, record.value);
      ++misrouted;
    }
    misrouter.Flush();
  }
  replicas[1].Launch();
  for (Replica& replica : replicas) AwaitTransactions(replica, window_id, expected.transactions);
  for (Replica& replica : replicas) {
    EXPECT_EQ(FloatChange(replica, window_id), part1_float_change) << "replica " << replica.index;
  }
  const v1::SettlementReport report2 =
      CloseAndReport(replicas[1], {&replicas[0], &replicas[1]}, window_id);
  ExpectReportEquals(report2, expected);
  EXPECT_EQ(report2.digest(), report.digest()) << "two replicas != one replica";

  // Reconciliation through the fan-out: the busiest cross-city hour whose ids are in partitions
  // of both replicas; the issuer's list lacks one id and has one the platform never saw.
  std::map<std::tuple<uint32_t, uint32_t, int32_t>, std::vector<std::pair<std::string, int32_t>>>
      hours;
  for (const auto& [id, txn] : logged) {
    if (txn.load || txn.issuer == txn.acquirer) continue;
    const int32_t hour = static_cast<int32_t>(
        (absl::FromUnixMicros(txn.recorded_at_us) - window_start) / absl::Hours(1));
    hours[{txn.issuer, txn.acquirer, hour}].push_back({id, txn.partition});
  }
  const std::vector<std::pair<std::string, int32_t>>* chosen = nullptr;
  std::tuple<uint32_t, uint32_t, int32_t> cell;
  for (const auto& [key, ids] : hours) {
    std::set<int32_t> owners;
    for (const auto& [id, partition] : ids) owners.insert(partition % 2);
    if (owners.size() == 2 && (chosen == nullptr || ids.size() > chosen->size())) {
      chosen = &ids;
      cell = key;
    }
  }
  ASSERT_NE(chosen, nullptr) << "no hour spans both replicas";
  ASSERT_GE(chosen->size(), 3u);
  v1::ReconcileHourRequest request;
  request.set_window_id(window_id);
  request.set_issuer_city(std::get<0>(cell));
  request.set_acquirer_city(std::get<1>(cell));
  request.set_hour(std::get<2>(cell));
  const std::string dropped = (*chosen)[chosen->size() / 2].first;
  for (const auto& [id, partition] : *chosen) {
    if (id != dropped) request.add_event_ids(id);
  }
  const std::string invented = absl::StrCat("txn/", std::get<1>(cell), "-BUS-999999/1");
  request.add_event_ids(invented);
  v1::ReconcileHourResponse response;
  grpc::Status status = Call(replicas[0], server::CityTenant(std::get<0>(cell)),
                             &v1::SettlementService::Stub::ReconcileHour, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(std::vector<std::string>(response.missing_at_city().begin(),
                                     response.missing_at_city().end()),
            std::vector<std::string>{dropped});
  EXPECT_EQ(std::vector<std::string>(response.unknown_to_platform().begin(),
                                     response.unknown_to_platform().end()),
            std::vector<std::string>{invented});
  EXPECT_EQ(response.platform_count(), static_cast<int64_t>(chosen->size()));
  for (Replica& replica : replicas) replica.process->TerminateAndWait(absl::Seconds(20));

  // Every repeat and every misrouted copy was seen, dropped and counted once, by the replica
  // that owns its partition (the counts are state: replica 1's kill did not double them).
  state_store::DropCounts dropped_total;
  for (Replica& replica : replicas) {
    auto store = state_store::StateStore::Open({.path = replica.state_dir});
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<state_store::DropCounts> drops = state_store::ReadDropCounts(**store, kTxnTopic);
    ASSERT_TRUE(drops.ok()) << drops.status();
    dropped_total.duplicates += drops->duplicates;
    dropped_total.misrouted += drops->misrouted;
  }
  EXPECT_EQ(dropped_total.duplicates, copies);
  EXPECT_EQ(dropped_total.misrouted, misrouted);
  EXPECT_GT(copies, 100);
  EXPECT_GT(misrouted, 100);
}

}  // namespace
}  // namespace tongka
