// Proves the settlement service's API end to end in one process: a real SettlementApp (RocksDB in
// TEST_TMPDIR, gRPC on a free port, dev tokens) on a real local Kafka broker, fed transactions
// written straight to tongka.txn. It shows
//   - tenancy on every read API: a city sees only rows it is issuer or acquirer of (and only its
//     own net and float), the ministry sees all, a partner is refused, and the internal
//     ListCellTransactions is for platform:settlement only; no credentials -> UNAUTHENTICATED;
//   - only the ministry moves windows; the answer is the ledger's decision (read-your-writes),
//     and a retried request id gets the first decision;
//   - clear errors: unknown window NOT_FOUND, report before close FAILED_PRECONDITION, bad
//     fields INVALID_ARGUMENT naming the field;
//   - reconciliation: MATCH / MISMATCH per row, and the hour drill-down narrows a city's id list
//     with one missing and one extra transaction to exactly those two ids;
//   - the float per issuer and the reserve's coverage ratio;
//   - the failed-issuer playbook: the ministry's TransferFloat with read-your-writes, the float
//     total unchanged, a retried request id answered with the first decision, the successor
//     reading the failed issuer's row;
//   - the rules on the log: every tenant reads them, only the ministry changes them, a day ahead;
//     a rebuild into an empty state dir under another --fee_schedule is refused naming both, and
//     without the flag gives the same money.
#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/producer.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/server/authenticator.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "services/settlement/settlement_app.h"

namespace tongka::settlement {
namespace {

constexpr char kSecret[] = "settlement-service-test-secret-0123456789";
constexpr uint32_t kShanghai = 310000;
constexpr uint32_t kNingbo = 330200;
constexpr uint32_t kLiuzhou = 450200;

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

class SettlementServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::filesystem::remove_all(TempPath("kafka"));
    auto kafka = event_log::LocalKafka::Start(TempPath("kafka"));
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = kafka->release();
    ASSERT_TRUE(event_log::EnsureTopics({.bootstrap_servers = kafka_->bootstrap()},
                                        {{.name = kTxnTopic, .partitions = 4},
                                         {.name = kCardsTopic, .partitions = 4},
                                         {.name = kSettlementTopic, .partitions = 2}},
                                        absl::Seconds(60))
                    .ok());
    // Transactions recorded now: they land in today's window.
    auto producer = event_log::Producer::Create({.bootstrap_servers = kafka_->bootstrap()});
    ASSERT_TRUE(producer.ok());
    const int64_t now_us = absl::ToUnixMicros(absl::Now());
    uint64_t seq = 0;
    auto send = [&](uint32_t issuer, uint32_t acquirer, int64_t amount, bool load = false) {
      v1::Event event;
      const std::string terminal = absl::StrCat(acquirer, "-BUS-000001");
      event.set_event_id(absl::StrCat("txn/", terminal, "/", ++seq));
      event.set_recorded_at_us(now_us);
      v1::TxnCommon* txn =
          load ? event.mutable_load()->mutable_txn() : event.mutable_tap()->mutable_txn();
      if (load) {
        event.mutable_load()->set_amount_fen(amount);
      } else {
        event.mutable_tap()->set_amount_fen(amount);
        event.mutable_tap()->set_mode(v1::TRANSPORT_MODE_BUS);
      }
      const std::string card = absl::StrCat(issuer, "00000000000", seq % 7);
      txn->set_card_id(card);
      txn->set_issuer_city(issuer);
      txn->set_acquirer_city(acquirer);
      txn->set_terminal_id(terminal);
      txn->set_terminal_seq(seq);
      ASSERT_TRUE((*producer)
                      ->ProduceSync(kTxnTopic, card, event.SerializeAsString(), absl::Seconds(30))
                      .ok());
      if (!load) ids_[{issuer, acquirer}].push_back(event.event_id());
    };
    for (int i = 0; i < 5; ++i) send(kShanghai, kNingbo, 200);  // 310000 owes 330200
    for (int i = 0; i < 3; ++i) send(kNingbo, kLiuzhou, 300);   // not Shanghai's business
    send(kShanghai, kShanghai, 400);
    send(kShanghai, kShanghai, 10000, /*load=*/true);
    total_transactions_ = seq - 1;  // loads are not transactions of a window's rows

    SettlementConfig config;
    config.kafka_bootstrap = kafka_->bootstrap();
    config.state_dir = TempPath("state");
    std::filesystem::remove_all(config.state_dir);
    config.grpc.listen_address = "127.0.0.1:0";
    config.grpc.auth_mode = server::AuthMode::kDevToken;
    config.grpc.dev_token_secret = kSecret;
    config.metrics_port = -1;
    config.schedule_close = false;
    config.fee_schedule = "default:100";
    auto app = SettlementApp::Create(config);
    ASSERT_TRUE(app.ok()) << app.status();
    app_ = app->release();
    window_id_ = BusinessCalendar::Create("Asia/Shanghai", absl::Hours(24))
                     ->SlotOf(absl::FromUnixMicros(now_us))
                     .window_id;
    stub_ = v1::SettlementService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", app_->grpc_port()), grpc::InsecureChannelCredentials()));
    // Wait until the ministry sees every transaction.
    for (int i = 0; i < 600; ++i) {
      v1::GetWindowResponse window;
      if (Call(server::MinistryTenant(), &v1::SettlementService::Stub::GetWindow,
               Window<v1::GetWindowRequest>(), &window)
              .ok() &&
          window.window().transactions() == total_transactions_) {
        return;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    FAIL() << "settlement never applied the transactions";
  }

  static void TearDownTestSuite() {
    delete app_;
    delete kafka_;
  }

  template <typename Request>
  static Request Window() {
    Request request;
    request.set_window_id(window_id_);
    return request;
  }

  template <typename Request, typename Response>
  static grpc::Status Call(const std::optional<v1::Tenant>& tenant,
                           grpc::Status (v1::SettlementService::Stub::*method)(grpc::ClientContext*,
                                                                               const Request&,
                                                                               Response*),
                           const Request& request, Response* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (tenant.has_value()) {
      server::AttachDevToken(&context, *server::DevTokenIssuer::Create(kSecret)->Issue(
                                           *tenant, absl::Now() + absl::Hours(1)));
    }
    return (stub_.get()->*method)(&context, request, response);
  }

  static grpc::Status Close(const v1::Tenant& tenant, const std::string& request_id,
                            v1::ChangeWindowStateResponse* response) {
    v1::ChangeWindowStateRequest request = Window<v1::ChangeWindowStateRequest>();
    request.set_request_id(request_id);
    request.set_target_state(v1::WINDOW_STATE_CLOSED);
    return Call(tenant, &v1::SettlementService::Stub::ChangeWindowState, request, response);
  }

  static inline event_log::LocalKafka* kafka_ = nullptr;
  static inline SettlementApp* app_ = nullptr;
  static inline std::unique_ptr<v1::SettlementService::Stub> stub_;
  static inline std::string window_id_;
  static inline int64_t total_transactions_ = 0;
  static inline std::map<std::pair<uint32_t, uint32_t>, std::vector<std::string>> ids_;
};

TEST_F(SettlementServiceTest, EveryReadIsScopedToTheCallersRows) {
  const v1::Tenant shanghai = server::CityTenant(kShanghai);
  v1::GetWindowResponse mine, all;
  ASSERT_TRUE(
      Call(shanghai, &v1::SettlementService::Stub::GetWindow, Window<v1::GetWindowRequest>(), &mine)
          .ok());
  ASSERT_TRUE(Call(server::MinistryTenant(), &v1::SettlementService::Stub::GetWindow,
                   Window<v1::GetWindowRequest>(), &all)
                  .ok());
  EXPECT_EQ(all.bilateral_size(), 3);
  ASSERT_EQ(mine.bilateral_size(), 2) << "the Ningbo -> Liuzhou row is not Shanghai's";
  for (const auto& row : mine.bilateral())
    EXPECT_TRUE(row.issuer_city() == kShanghai || row.acquirer_city() == kShanghai);
  ASSERT_EQ(mine.net_size(), 1);
  EXPECT_EQ(mine.net(0).city(), kShanghai);
  EXPECT_EQ(mine.net(0).net_fen(), -(1000 - 10));

  v1::ListWindowsResponse windows;
  ASSERT_TRUE(
      Call(shanghai, &v1::SettlementService::Stub::ListWindows, v1::ListWindowsRequest(), &windows)
          .ok());
  ASSERT_EQ(windows.windows_size(), 1);
  EXPECT_EQ(windows.windows(0).transactions(), 6) << "5 cross-city + 1 same-city, not Ningbo's 3";

  v1::DrillDownRequest drill = Window<v1::DrillDownRequest>();
  drill.set_issuer_city(kNingbo);
  drill.set_acquirer_city(kLiuzhou);
  v1::DrillDownResponse hours;
  EXPECT_EQ(Call(shanghai, &v1::SettlementService::Stub::DrillDown, drill, &hours).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(
      Call(server::CityTenant(kLiuzhou), &v1::SettlementService::Stub::DrillDown, drill, &hours)
          .ok());

  v1::ReconcileHourRequest hour = Window<v1::ReconcileHourRequest>();
  hour.set_issuer_city(kNingbo);
  hour.set_acquirer_city(kLiuzhou);
  v1::ReconcileHourResponse hour_response;
  EXPECT_EQ(Call(shanghai, &v1::SettlementService::Stub::ReconcileHour, hour, &hour_response)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  v1::ReconcileRequest reconcile = Window<v1::ReconcileRequest>();
  auto* row = reconcile.add_rows();
  row->set_issuer_city(kNingbo);
  row->set_acquirer_city(kLiuzhou);
  v1::ReconcileResponse reconciled;
  grpc::Status denied =
      Call(shanghai, &v1::SettlementService::Stub::Reconcile, reconcile, &reconciled);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(denied.error_message().find("rows[0]"), std::string::npos) << denied.error_message();

  v1::GetFloatResponse floats;
  ASSERT_TRUE(
      Call(shanghai, &v1::SettlementService::Stub::GetFloat, v1::GetFloatRequest(), &floats).ok());
  ASSERT_EQ(floats.issuers_size(), 1);
  EXPECT_EQ(floats.issuers(0).issuer_city(), kShanghai);
  ASSERT_TRUE(Call(server::MinistryTenant(), &v1::SettlementService::Stub::GetFloat,
                   v1::GetFloatRequest(), &floats)
                  .ok());
  EXPECT_EQ(floats.issuers_size(), 2);

  v1::ListCellTransactionsRequest cell;
  v1::ListCellTransactionsResponse cell_response;
  EXPECT_EQ(Call(server::MinistryTenant(), &v1::SettlementService::Stub::ListCellTransactions, cell,
                 &cell_response)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Call(server::PlatformTenant("settlement"),
                   &v1::SettlementService::Stub::ListCellTransactions, cell, &cell_response)
                  .ok());

  EXPECT_EQ(Call(server::PartnerTenant("unionmart"), &v1::SettlementService::Stub::GetWindow,
                 Window<v1::GetWindowRequest>(), &mine)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(std::nullopt, &v1::SettlementService::Stub::GetWindow,
                 Window<v1::GetWindowRequest>(), &mine)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(SettlementServiceTest, ErrorsNameTheProblem) {
  v1::GetWindowRequest unknown;
  unknown.set_window_id("2001-01-01");
  v1::GetWindowResponse window;
  EXPECT_EQ(
      Call(server::MinistryTenant(), &v1::SettlementService::Stub::GetWindow, unknown, &window)
          .error_code(),
      grpc::StatusCode::NOT_FOUND);
  unknown.set_window_id("yesterday");
  grpc::Status bad =
      Call(server::MinistryTenant(), &v1::SettlementService::Stub::GetWindow, unknown, &window);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("window_id"), std::string::npos);
  v1::RecordReserveRequest reserve;
  reserve.set_request_id("r-1");
  reserve.set_issuer_city(kShanghai);
  reserve.set_reserve_fen(-1);
  v1::RecordReserveResponse reserved;
  bad = Call(server::CityTenant(kShanghai), &v1::SettlementService::Stub::RecordReserve, reserve,
             &reserved);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("reserve_fen"), std::string::npos);
  reserve.set_reserve_fen(100);
  EXPECT_EQ(Call(server::CityTenant(kNingbo), &v1::SettlementService::Stub::RecordReserve, reserve,
                 &reserved)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(SettlementServiceTest, LifecycleReportReconciliationAndFloat) {
  v1::GetReportResponse report;
  grpc::Status early = Call(server::MinistryTenant(), &v1::SettlementService::Stub::GetReport,
                            Window<v1::GetReportRequest>(), &report);
  EXPECT_EQ(early.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(early.error_message().find("window_not_closed"), std::string::npos);

  v1::ChangeWindowStateResponse changed;
  EXPECT_EQ(Close(server::CityTenant(kShanghai), "close-by-city", &changed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Close(server::MinistryTenant(), "close-1", &changed).ok());
  EXPECT_EQ(changed.state(), v1::WINDOW_STATE_CLOSED);
  ASSERT_TRUE(Close(server::MinistryTenant(), "close-1", &changed).ok())
      << "a retry gets the first decision";
  grpc::Status again = Close(server::MinistryTenant(), "close-2", &changed);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(again.error_message().find("already_in_state"), std::string::npos);

  ASSERT_TRUE(Call(server::MinistryTenant(), &v1::SettlementService::Stub::GetReport,
                   Window<v1::GetReportRequest>(), &report)
                  .ok());
  EXPECT_EQ(report.report().bilateral_size(), 3);
  int64_t sum = 0;
  for (const auto& net : report.report().net()) sum += net.net_fen();
  EXPECT_EQ(sum, 0);
  v1::GetReportResponse filtered;
  ASSERT_TRUE(Call(server::CityTenant(kLiuzhou), &v1::SettlementService::Stub::GetReport,
                   Window<v1::GetReportRequest>(), &filtered)
                  .ok());
  EXPECT_TRUE(filtered.filtered());
  ASSERT_EQ(filtered.report().bilateral_size(), 1);
  EXPECT_EQ(filtered.report().bilateral(0).net_fen(), 900 - 9);
  EXPECT_EQ(filtered.report().digest(), report.report().digest());

  // Reconcile: Ningbo's own totals, one row right, one short by a transaction.
  v1::ReconcileRequest reconcile = Window<v1::ReconcileRequest>();
  auto* right = reconcile.add_rows();
  right->set_issuer_city(kNingbo);
  right->set_acquirer_city(kLiuzhou);
  right->set_count(3);
  right->set_gross_fen(900);
  auto* short_row = reconcile.add_rows();
  short_row->set_issuer_city(kShanghai);
  short_row->set_acquirer_city(kNingbo);
  short_row->set_count(4);
  short_row->set_gross_fen(800);
  v1::ReconcileResponse reconciled;
  ASSERT_TRUE(Call(server::CityTenant(kNingbo), &v1::SettlementService::Stub::Reconcile, reconcile,
                   &reconciled)
                  .ok());
  ASSERT_EQ(reconciled.results_size(), 2);
  EXPECT_EQ(reconciled.results(0).match(), v1::ROW_MATCH_MATCH);
  EXPECT_EQ(reconciled.results(1).match(), v1::ROW_MATCH_MISMATCH);
  EXPECT_EQ(reconciled.results(1).platform().count(), 5);

  // Narrow the mismatch: the hour, then the ids (one missing, one the platform never saw).
  v1::DrillDownRequest drill = Window<v1::DrillDownRequest>();
  drill.set_issuer_city(kShanghai);
  drill.set_acquirer_city(kNingbo);
  v1::DrillDownResponse hours;
  ASSERT_TRUE(
      Call(server::CityTenant(kNingbo), &v1::SettlementService::Stub::DrillDown, drill, &hours)
          .ok());
  ASSERT_EQ(hours.hours_size(), 1);
  EXPECT_EQ(hours.hours(0).count(), 5);
  v1::ReconcileHourRequest hour = Window<v1::ReconcileHourRequest>();
  hour.set_issuer_city(kShanghai);
  hour.set_acquirer_city(kNingbo);
  hour.set_hour(hours.hours(0).hour());
  const std::vector<std::string>& ids = ids_[{kShanghai, kNingbo}];
  for (size_t i = 1; i < ids.size(); ++i) hour.add_event_ids(ids[i]);
  hour.add_event_ids("txn/330200-BUS-000001/999999");
  v1::ReconcileHourResponse narrowed;
  ASSERT_TRUE(Call(server::CityTenant(kNingbo), &v1::SettlementService::Stub::ReconcileHour, hour,
                   &narrowed)
                  .ok());
  EXPECT_EQ(std::vector<std::string>(narrowed.missing_at_city().begin(),
                                     narrowed.missing_at_city().end()),
            std::vector<std::string>{ids[0]});
  EXPECT_EQ(std::vector<std::string>(narrowed.unknown_to_platform().begin(),
                                     narrowed.unknown_to_platform().end()),
            std::vector<std::string>{"txn/330200-BUS-000001/999999"});

  // Float and reserve: Shanghai loaded 10,000 and spent 1,000 + 400.
  v1::RecordReserveRequest reserve;
  reserve.set_request_id("reserve-1");
  reserve.set_issuer_city(kShanghai);
  reserve.set_reserve_fen(4300);
  reserve.set_reference("ESCROW-310000-1");
  v1::RecordReserveResponse reserved;
  ASSERT_TRUE(Call(server::CityTenant(kShanghai), &v1::SettlementService::Stub::RecordReserve,
                   reserve, &reserved)
                  .ok());
  EXPECT_EQ(reserved.position().outstanding_fen(), 10000 - 1400);
  EXPECT_DOUBLE_EQ(reserved.position().coverage_ratio(), 0.5);
  EXPECT_TRUE(reserved.position().under_covered());
}

TEST_F(SettlementServiceTest, RulesAreOnTheLogForEveryoneAndChangedByTheMinistryOnly) {
  // Published tariffs: every tenant reads the same rules; the genesis came from the flags.
  v1::GetRulesResponse ministry_rules;
  ASSERT_TRUE(Call(server::MinistryTenant(), &v1::SettlementService::Stub::GetRules,
                   v1::GetRulesRequest(), &ministry_rules)
                  .ok());
  ASSERT_EQ(ministry_rules.periods_size(), 1);
  EXPECT_EQ(ministry_rules.periods(0).effective_window_id(), "");
  EXPECT_EQ(ministry_rules.periods(0).rules().zone(), "Asia/Shanghai");
  EXPECT_EQ(ministry_rules.periods(0).rules().cut_minutes(), 1440);
  EXPECT_EQ(ministry_rules.periods(0).rules().fee_schedule(), "default:100");
  for (const v1::Tenant& tenant : {server::CityTenant(kShanghai), server::CityTenant(kLiuzhou),
                                   server::PartnerTenant("unionpay")}) {
    v1::GetRulesResponse seen;
    ASSERT_TRUE(
        Call(tenant, &v1::SettlementService::Stub::GetRules, v1::GetRulesRequest(), &seen).ok());
    EXPECT_EQ(seen.SerializeAsString(), ministry_rules.SerializeAsString());
  }
  v1::GetRulesResponse anonymous;
  EXPECT_EQ(
      Call(std::nullopt, &v1::SettlementService::Stub::GetRules, v1::GetRulesRequest(), &anonymous)
          .error_code(),
      grpc::StatusCode::UNAUTHENTICATED);

  const absl::CivilDay today = *ParseWindowId(window_id_);
  v1::ScheduleRulesRequest change;
  change.set_request_id("rules-1");
  change.set_effective_window_id(WindowIdOf(today + 3));
  *change.mutable_rules() = MakeRules("Asia/Shanghai", absl::Hours(23), "default:80");
  change.set_reason("test: an earlier cut and lower fees");
  v1::ScheduleRulesResponse scheduled;
  EXPECT_EQ(Call(server::CityTenant(kShanghai), &v1::SettlementService::Stub::ScheduleRules, change,
                 &scheduled)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  auto expect_invalid = [&](v1::ScheduleRulesRequest bad, const std::string& field) {
    grpc::Status status = Call(server::MinistryTenant(),
                               &v1::SettlementService::Stub::ScheduleRules, bad, &scheduled);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_EQ(status.error_message().find(field), 0u) << status.error_message();
  };
  v1::ScheduleRulesRequest bad = change;
  bad.mutable_rules()->set_zone("Mars/Olympus");
  expect_invalid(bad, "rules.zone");
  bad = change;
  bad.mutable_rules()->set_fee_schedule("default:ten");
  expect_invalid(bad, "rules.fee_schedule");
  bad = change;
  bad.mutable_rules()->set_cut_minutes(0);
  expect_invalid(bad, "rules.cut_minutes");
  bad = change;
  bad.set_effective_window_id("");
  expect_invalid(bad, "effective_window_id");
  bad = change;
  bad.set_effective_window_id("2026-02-30");
  expect_invalid(bad, "effective_window_id");
  // Tomorrow starts less than a day from now.
  bad = change;
  bad.set_request_id("rules-soon");
  bad.set_effective_window_id(WindowIdOf(today + 1));
  grpc::Status soon =
      Call(server::MinistryTenant(), &v1::SettlementService::Stub::ScheduleRules, bad, &scheduled);
  EXPECT_EQ(soon.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(soon.error_message().find("effective_window_too_soon"), 0u) << soon.error_message();

  ASSERT_TRUE(Call(server::MinistryTenant(), &v1::SettlementService::Stub::ScheduleRules, change,
                   &scheduled)
                  .ok());
  EXPECT_EQ(scheduled.period().effective_window_id(), WindowIdOf(today + 3));
  EXPECT_EQ(scheduled.period().rules().cut_minutes(), 23 * 60);
  EXPECT_EQ(
      scheduled.period().first_window_end_at_us() - scheduled.period().first_window_start_at_us(),
      absl::ToInt64Microseconds(absl::Hours(23)));
  v1::GetRulesRequest in_force;
  in_force.set_window_id(WindowIdOf(today + 5));
  v1::GetRulesResponse after;
  ASSERT_TRUE(
      Call(server::CityTenant(kNingbo), &v1::SettlementService::Stub::GetRules, in_force, &after)
          .ok());
  ASSERT_EQ(after.periods_size(), 2);
  EXPECT_EQ(after.in_force().rules().fee_schedule(), "default:80");
  EXPECT_EQ(after.in_force().reason(), "test: an earlier cut and lower fees");
  // The same request id again: the first decision.
  ASSERT_TRUE(Call(server::MinistryTenant(), &v1::SettlementService::Stub::ScheduleRules, change,
                   &scheduled)
                  .ok());
  EXPECT_EQ(scheduled.period().rules().fee_schedule(), "default:80");
  // The same request id with other rules: refused, never reported as taken.
  v1::ScheduleRulesRequest corrected = change;
  corrected.mutable_rules()->set_fee_schedule("default:70");
  grpc::Status reused = Call(server::MinistryTenant(), &v1::SettlementService::Stub::ScheduleRules,
                             corrected, &scheduled);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::ALREADY_EXISTS) << reused.error_message();
  EXPECT_EQ(reused.error_message().find("request_id"), 0u) << reused.error_message();
  // An empty window that has not begun: refused by the API, which knows the exact start.
  v1::ChangeWindowStateRequest early;
  early.set_request_id("close-tomorrow");
  early.set_window_id(WindowIdOf(today + 1));
  early.set_target_state(v1::WINDOW_STATE_CLOSED);
  v1::ChangeWindowStateResponse early_response;
  grpc::Status not_started =
      Call(server::MinistryTenant(), &v1::SettlementService::Stub::ChangeWindowState, early,
           &early_response);
  EXPECT_EQ(not_started.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(not_started.error_message().find("window_not_started"), 0u)
      << not_started.error_message();
}

// A rebuild from the log into an empty state dir: under another fee schedule the service refuses
// to start and names both; without the flag it follows the log and counts the same money.
TEST_F(SettlementServiceTest, ARebuildFollowsTheRulesOnTheLog) {
  SettlementConfig config;
  config.kafka_bootstrap = kafka_->bootstrap();
  config.grpc.listen_address = "127.0.0.1:0";
  config.grpc.auth_mode = server::AuthMode::kDevToken;
  config.grpc.dev_token_secret = kSecret;
  config.metrics_port = -1;
  config.schedule_close = false;
  config.state_dir = TempPath("rebuild-other-fees");
  std::filesystem::remove_all(config.state_dir);
  config.fee_schedule = "default:60";
  auto refused = SettlementApp::Create(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("--fee_schedule=default:60"), std::string::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find("the log says default:100"), std::string::npos)
      << refused.status();

  config.state_dir = TempPath("rebuild-from-log");
  std::filesystem::remove_all(config.state_dir);
  config.fee_schedule = "";
  config.window_zone = "Asia/Shanghai";  // set and agreeing is fine
  auto rebuilt = SettlementApp::Create(config);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  v1::GetWindowResponse live;
  ASSERT_TRUE(Call(server::MinistryTenant(), &v1::SettlementService::Stub::GetWindow,
                   Window<v1::GetWindowRequest>(), &live)
                  .ok());
  absl::StatusOr<v1::GetWindowResponse> again;
  for (int i = 0; i < 600; ++i) {
    again = (*rebuilt)->api().GetWindow(server::MinistryTenant(), Window<v1::GetWindowRequest>());
    if (again.ok() && again->window().transactions() == total_transactions_) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->window().transactions(), total_transactions_);
  ASSERT_EQ(again->net_size(), live.net_size());
  for (int i = 0; i < live.net_size(); ++i) {
    EXPECT_EQ(again->net(i).SerializeAsString(), live.net(i).SerializeAsString());
  }
  ASSERT_EQ(again->bilateral_size(), live.bilateral_size());
  for (int i = 0; i < live.bilateral_size(); ++i) {
    EXPECT_EQ(again->bilateral(i).fee_fen(), live.bilateral(i).fee_fen()) << "priced at 100 bp";
  }
}

// The failed-issuer playbook on the real broker (declared last: it adds Liuzhou's float to the
// shared log). Only the ministry transfers; bad fields are named; the answer is the ledger's
// decision, already folded into GetFloat (read-your-writes); the outstanding total is the same
// before and after; a retried request id gets the first decision, another transfer of the same
// issuer is refused by rule; the successor reads the failed issuer's row, the failed issuer
// keeps reading its own; the ministry records the failed issuer's escrow as it is drawn down.
TEST_F(SettlementServiceTest, TheMinistryTransfersAFailedIssuersFloat) {
  constexpr uint32_t kNanning = 450100;
  auto producer = event_log::Producer::Create({.bootstrap_servers = kafka_->bootstrap()});
  ASSERT_TRUE(producer.ok());
  v1::Event load;
  load.set_event_id("txn/450200-BUS-000001/1");
  load.set_recorded_at_us(absl::ToUnixMicros(absl::Now()));
  load.mutable_load()->set_amount_fen(5000);
  v1::TxnCommon* txn = load.mutable_load()->mutable_txn();
  txn->set_card_id("4502000000000001");
  txn->set_issuer_city(kLiuzhou);
  txn->set_acquirer_city(kLiuzhou);
  txn->set_terminal_id("450200-BUS-000001");
  txn->set_terminal_seq(1);
  ASSERT_TRUE(
      (*producer)
          ->ProduceSync(kTxnTopic, txn->card_id(), load.SerializeAsString(), absl::Seconds(30))
          .ok());
  auto floats = [](const v1::Tenant& tenant) {
    v1::GetFloatResponse response;
    EXPECT_TRUE(
        Call(tenant, &v1::SettlementService::Stub::GetFloat, v1::GetFloatRequest(), &response)
            .ok());
    std::map<uint32_t, v1::FloatPosition> out;
    for (const v1::FloatPosition& position : response.issuers()) {
      out[position.issuer_city()] = position;
    }
    return out;
  };
  auto total = [](const std::map<uint32_t, v1::FloatPosition>& positions) {
    int64_t sum = 0;
    for (const auto& [city, position] : positions) sum += position.outstanding_fen();
    return sum;
  };
  std::map<uint32_t, v1::FloatPosition> before;
  for (int i = 0; i < 600 && before[kLiuzhou].outstanding_fen() != 5000; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    before = floats(server::MinistryTenant());
  }
  ASSERT_EQ(before[kLiuzhou].outstanding_fen(), 5000);

  v1::TransferFloatRequest request;
  request.set_request_id("liuzhou-fails");
  request.set_from_city(kLiuzhou);
  request.set_to_city(kNanning);
  request.set_reason("Liuzhou's card company failed");
  v1::TransferFloatResponse response;
  EXPECT_EQ(Call(server::CityTenant(kNanning), &v1::SettlementService::Stub::TransferFloat, request,
                 &response)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::TransferFloatRequest bad = request;
  bad.set_from_city(45020);
  grpc::Status refused =
      Call(server::MinistryTenant(), &v1::SettlementService::Stub::TransferFloat, bad, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(refused.error_message().rfind("from_city:", 0), 0u) << refused.error_message();
  bad = request;
  bad.set_to_city(kLiuzhou);
  refused =
      Call(server::MinistryTenant(), &v1::SettlementService::Stub::TransferFloat, bad, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(refused.error_message().rfind("to_city:", 0), 0u) << refused.error_message();

  ASSERT_TRUE(Call(server::MinistryTenant(), &v1::SettlementService::Stub::TransferFloat, request,
                   &response)
                  .ok());
  EXPECT_EQ(response.from().successor_city(), kNanning);
  EXPECT_EQ(response.from().outstanding_fen(), 0);
  EXPECT_EQ(response.from().transferred_fen(), 5000);
  EXPECT_EQ(response.to().inherited_fen(), 5000);
  EXPECT_EQ(std::vector<uint32_t>(response.to().predecessor_cities().begin(),
                                  response.to().predecessor_cities().end()),
            std::vector<uint32_t>{kLiuzhou});
  EXPECT_EQ(response.command_event_id(), "cmd/ministry/liuzhou-fails");
  // Read-your-writes: the next read shows it; no fen appeared or vanished.
  std::map<uint32_t, v1::FloatPosition> after = floats(server::MinistryTenant());
  EXPECT_EQ(after[kNanning].outstanding_fen(), before[kNanning].outstanding_fen() + 5000);
  EXPECT_EQ(after[kLiuzhou].outstanding_fen(), 0);
  EXPECT_EQ(total(after), total(before));

  v1::TransferFloatResponse retried;
  ASSERT_TRUE(
      Call(server::MinistryTenant(), &v1::SettlementService::Stub::TransferFloat, request, &retried)
          .ok());
  EXPECT_EQ(retried.SerializeAsString(), response.SerializeAsString());
  v1::TransferFloatRequest again = request;
  again.set_request_id("liuzhou-to-shanghai");
  again.set_to_city(kShanghai);
  refused =
      Call(server::MinistryTenant(), &v1::SettlementService::Stub::TransferFloat, again, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(refused.error_message().rfind("already_transferred:", 0), 0u)
      << refused.error_message();

  // Tenancy: the successor carries the failed issuer's float and reads its row.
  std::map<uint32_t, v1::FloatPosition> nanning = floats(server::CityTenant(kNanning));
  EXPECT_EQ(nanning.size(), 2u);
  EXPECT_EQ(nanning[kLiuzhou].transferred_fen(), 5000);
  std::map<uint32_t, v1::FloatPosition> liuzhou = floats(server::CityTenant(kLiuzhou));
  EXPECT_EQ(liuzhou.size(), 1u);
  EXPECT_EQ(liuzhou[kLiuzhou].successor_city(), kNanning);
  EXPECT_EQ(floats(server::CityTenant(kShanghai)).count(kLiuzhou), 0u);

  // The ministry records the failed issuer's escrow, and only a failed issuer's.
  v1::RecordReserveRequest reserve;
  reserve.set_request_id("liuzhou-escrow");
  reserve.set_issuer_city(kLiuzhou);
  reserve.set_reserve_fen(2000);
  v1::RecordReserveResponse reserved;
  ASSERT_TRUE(Call(server::MinistryTenant(), &v1::SettlementService::Stub::RecordReserve, reserve,
                   &reserved)
                  .ok());
  EXPECT_EQ(reserved.position().reserve_fen(), 2000);
  EXPECT_DOUBLE_EQ(reserved.position().coverage_ratio(), 0.4) << "2,000 of the 5,000 transferred";
  reserve.set_request_id("shanghai-escrow");
  reserve.set_issuer_city(kShanghai);
  EXPECT_EQ(Call(server::MinistryTenant(), &v1::SettlementService::Stub::RecordReserve, reserve,
                 &reserved)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace tongka::settlement
