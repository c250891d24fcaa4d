// Platform: the fixture of the platform end-to-end tests (float_e2e_test,
// issuer_failure_e2e_test): a real broker and the real ingest, settlement and card registry
// binaries, wired as tools/run_platform.sh wires them, plus the calls and waits those tests share.
//
// Start() starts, in this order: the Apache Kafka broker (event_log::LocalKafka, in
// TEST_TMPDIR/kafka on a free loopback port); the platform's topics (tongka.txn,
// tongka.txn.conflicts and tongka.cards with 8 partitions, tongka.members with 1,
// tongka.settlement with 4), waiting until every partition answers its watermarks; the dev token
// secret file and a development holder key per member city; then tongka_ingest,
// tongka_settlement (--schedule_close=false, --fee_schedule=default:50) and tongka_card_registry,
// each with --auth=dev, its state under TEST_TMPDIR/<name> and its log in TEST_TMPDIR/<name>.log,
// on free gRPC and /metrics ports, and waits until each answers /readyz.
//
// Ownership: the Platform owns the broker and the three service processes. Stop() sends the
// services SIGTERM and waits for them; the destructor SIGKILLs any still running (so a failing
// test leaks none) and then stops the broker. tapgen runs (RunTapgen) are owned by the call.
//
// Waits: every wait polls a condition under a deadline (readiness and AwaitCommitted 90 s, topic
// reads 60 s) and fails the test with what was still missing, never sleeps for luck.
// AwaitCommitted is the "service has applied the log" wait: the service's own
// tongka_consumer_committed_offset figures for a loop and topic reach the given log ends and its
// tongka_outbox_depth_events is 0.
//
// Failure: the helpers report through gtest. Start(), RunTapgen() and AwaitCommitted() fail
// fatally; call them under ASSERT_NO_FATAL_FAILURE. Thread-safety: one test thread.
//
// Example:
//   testing::Platform platform({.dev_token_secret = kSecret});
//   ASSERT_NO_FATAL_FAILURE(platform.Start());
//   ASSERT_NO_FATAL_FAILURE(platform.RunTapgen(
//       {"--transactions=100", "--registry=" + platform.registry_target(),
//        "--target=" + platform.ingest_target(), "--acked_out=" + TempPath("acked.txt")},
//       "tapgen.log"));
//   ASSERT_NO_FATAL_FAILURE(platform.settlement().AwaitCommitted(
//       "txn", testing::kTxnTopic, platform.LogEnds(testing::kTxnTopic)));
//   std::map<uint32_t, v1::FloatPosition> positions = platform.Float();
//   platform.Stop();
#ifndef TONGKA_TESTS_TESTING_PLATFORM_H_
#define TONGKA_TESTS_TESTING_PLATFORM_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/server/authenticator.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "libs/testing/subprocess.h"
#include "proto/card_registry.grpc.pb.h"
#include "proto/common.pb.h"
#include "proto/settlement.grpc.pb.h"

namespace tongka::testing {

inline constexpr char kTxnTopic[] = "tongka.txn";
inline constexpr char kCardsTopic[] = "tongka.cards";
inline constexpr char kMembersTopic[] = "tongka.members";
inline constexpr char kSettlementTopic[] = "tongka.settlement";

// TEST_TMPDIR/<name>.
std::string TempPath(const std::string& name);

// A running service: its process, its gRPC port and its /metrics port.
struct Service {
  std::string name;
  int grpc_port = 0;
  int metrics_port = 0;
  std::unique_ptr<Subprocess> process;

  // Waits for /readyz (the service's loops have caught up with the log once).
  void AwaitReady();

  // The samples of /metrics: "name{labels}" -> value (empty when it does not answer).
  std::map<std::string, double> Metrics();

  // Waits until the loop `loop` has committed every record of `ends` in `topic` and the outbox is
  // empty: the service's state then reflects the whole log as it stands.
  void AwaitCommitted(const std::string& loop, const std::string& topic,
                      const std::map<int32_t, int64_t>& ends);
};

struct PlatformOptions {
  // The secret the services check dev tokens against and Call() signs them with; tapgen gets it
  // too. Each test names its own.
  std::string dev_token_secret;
};

class Platform {
 public:
  explicit Platform(PlatformOptions options);
  ~Platform();
  Platform(const Platform&) = delete;
  Platform& operator=(const Platform&) = delete;

  // The broker, its topics and the three services, ready (see the file comment). Fails fatally.
  void Start();
  // SIGTERMs the three services and waits up to 20 s each.
  void Stop();

  const std::string& bootstrap() const { return kafka_->bootstrap(); }
  Service& ingest() { return ingest_; }
  Service& settlement() { return settlement_; }
  Service& registry() { return registry_; }
  // "127.0.0.1:<grpc port>".
  std::string ingest_target() const;
  std::string registry_target() const;
  v1::SettlementService::Stub& settlement_stub() { return *settlement_stub_; }
  v1::CardRegistryService::Stub& registry_stub() { return *registry_stub_; }

  // Calls `method` on `stub` as `tenant` (a dev token valid for an hour), with a 30 s deadline.
  template <typename Stub, typename Request, typename Response>
  grpc::Status Call(Stub& stub, const v1::Tenant& tenant,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response) const {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    server::AttachDevToken(&context, *server::DevTokenIssuer::Create(options_.dev_token_secret)
                                          ->Issue(tenant, absl::Now() + absl::Hours(1)));
    return (stub.*method)(&context, request, response);
  }

  // Settlement's GetFloat as the ministry, by issuer city.
  std::map<uint32_t, v1::FloatPosition> Float();
  // The registry's GetIssuerBalances of `issuer` as the ministry.
  v1::GetIssuerBalancesResponse Balances(uint32_t issuer);
  // The registry's GetCard as `tenant`; nullopt (and a test failure) when the call fails.
  std::optional<v1::CardView> GetCard(const std::string& card_id,
                                      const v1::Tenant& tenant = server::MinistryTenant());

  // Per partition, the offset after the topic's last record (a partition with no record: absent).
  std::map<int32_t, int64_t> LogEnds(const std::string& topic);

  // Runs tools/tapgen/tapgen with `flags` and --dev_token_secret to its end, its output in
  // TEST_TMPDIR/<log_name>. Fails fatally unless it exits 0. `exited`, when given, receives the
  // process (for its Log()).
  void RunTapgen(const std::vector<std::string>& flags, const std::string& log_name,
                 std::unique_ptr<Subprocess>* exited = nullptr);

 private:
  void Launch(Service& service, const std::string& binary,
              const std::vector<std::string>& extra_flags);

  const PlatformOptions options_;
  // Declared before the services: destroyed after them.
  std::unique_ptr<event_log::LocalKafka> kafka_;
  Service ingest_{.name = "ingest"};
  Service settlement_{.name = "settlement"};
  Service registry_{.name = "card_registry"};
  std::unique_ptr<v1::SettlementService::Stub> settlement_stub_;
  std::unique_ptr<v1::CardRegistryService::Stub> registry_stub_;
};

// ---- tapgen's files ----

// A row of tapgen's --cards_out.
struct CardFile {
  std::string card_id;
  uint32_t issuer = 0;
  int64_t initial_balance_fen = 0;
  uint32_t initial_counter = 0;
};

// tapgen's --cards_out file (a failure for every malformed row).
std::vector<CardFile> ReadCards(const std::string& path);

// tapgen's --acked_out file: the event ids ingest acknowledged.
std::set<std::string> ReadAcked(const std::string& path);

}  // namespace tongka::testing

#endif  // TONGKA_TESTS_TESTING_PLATFORM_H_
