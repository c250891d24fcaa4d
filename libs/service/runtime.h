// Runtime: the parts every Tongka service wires the same way, written once. A service's app owns
// one Runtime and, in its Wire(), asks it for each part in phase order; what is particular to the
// service (its state, its API, its own threads) stays in the app.
//
//   phase          Runtime call                    what it does
//   0 checks       CheckCrypto()                   crypto::SelfTest (services that use SM3/SM4)
//   1 store        OpenStore(options)              StateStore with the service's layout, and its
//                                                  runtime metrics (size, loops, outbox)
//   3 Kafka        KafkaClient(role)               the client config: bootstrap, TLS, client id
//                  AddProducer(kafka)              a producer, watched for fatal errors
//                  AddLoop(options), RunLoops()    apply loops (consumer, start, metrics), each
//                                                  on its own thread; WaitCaughtUp(loop)
//                  RunPublisher(producer)          the outbox publisher on its thread
//   4 gRPC         MakeAuthenticator(grpc)         authentication on the runtime's clock
//                  ServeGrpc(grpc, auth, services) GrpcServer (health, reflection) + its metric
//   5 serve        Serve()                         /metrics, /healthz, /readyz, and the watcher
//
// Every part that runs registers how it stops; Shutdown() stops them in reverse order of wiring,
// after leaving /readyz, and an app inserts its own stop steps at the right place with OnStop().
// /metrics answers until the end of Shutdown; the store stays open until the Runtime is
// destroyed. The appliers its loops hold must outlive the Runtime (declare them before it).
//
// Readiness (/readyz): ready once, after Serve(), every apply loop has caught up with its log, the
// outbox is empty (when a publisher runs), every loop has caught up again (what the publisher
// sent, a later stage applied) and every condition the app added (AddReadyCondition: a view it
// reads from a log outside the loops) holds. A service without loops or conditions is ready as
// soon as it serves. Once ready it stays ready until Shutdown or a fatal stop.
//
// Fatal stop: an apply loop that fails, or a producer that hit a fatal error, cannot heal; serving
// on would show figures that stopped moving. Fail(status) logs one line naming the service and the
// cause, records the first error, leaves /readyz and asks the process to stop: under ServiceMain
// that raises SIGTERM, so main shuts down in order and exits 1; elsewhere (tests, tools) the owner
// sees stop_requested() and error(). RequestStop() is the same without an error (a service that
// finished its work), and ServiceMain then exits 0.
//
// Ownership: the Runtime owns everything it creates; the app owns its own parts, which must
// outlive their use by the Runtime's threads: declare the appliers before the Runtime, what uses
// the Runtime (metrics in its registry, the API) after it, and call Shutdown first thing in the
// app's destructor.
// Thread-safety: wiring calls, RunLoops, Shutdown and the destructor on one thread; ready(),
// error(), stop_requested(), Fail() and RequestStop() from any thread.
// Failure behaviour: wiring calls return the part's own error (naming the field or the topic); the
// app returns it from Create, and ServiceMain exits before anything serves.
//
// Example (an app's Wire, see README.md for the whole guide):
//   runtime_.emplace(RuntimeOptions{.name = "fraud", .common = common, .clock = clock});
//   if (absl::Status s = runtime_->CheckCrypto(); !s.ok()) return s;
//   absl::StatusOr<state_store::StateStore*> store = runtime_->OpenStore({.layout = "fraud/1"});
//   if (!store.ok()) return store.status();
//   absl::StatusOr<state_store::ApplyLoop*> loop = runtime_->AddLoop(
//       {.name = "txn", .topics = {"tongka.txn"}, .applier = &stage_});
//   if (!loop.ok()) return loop.status();
//   runtime_->RunLoops();
//   ...
//   return runtime_->Serve();
#ifndef TONGKA_LIBS_SERVICE_RUNTIME_H_
#define TONGKA_LIBS_SERVICE_RUNTIME_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/event_log/kafka_config.h"
#include "libs/event_log/producer.h"
#include "libs/metrics/http_exposer.h"
#include "libs/metrics/metrics.h"
#include "libs/server/authenticator.h"
#include "libs/server/grpc_server.h"
#include "libs/service/clock.h"
#include "libs/service/common_flags.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/event_filter.h"
#include "libs/state_store/outbox_publisher.h"
#include "libs/state_store/runtime_metrics.h"
#include "libs/state_store/state_store.h"

namespace tongka::service {

struct RuntimeOptions {
  // The service's short name ("ingest", "settlement"): Kafka client ids ("tongka-<name>-<k>"),
  // consumer groups and log lines. Required.
  std::string name;
  // Kafka, state directory, metrics address, replica index and count. Validated by the app.
  CommonConfig common;
  // The clock the service reads; null: SystemClock::Get(). Must outlive the Runtime.
  const Clock* clock = nullptr;
  // How often the watcher checks readiness and the producers' health.
  absl::Duration watch_interval = absl::Milliseconds(100);
};

// One apply loop: which topics, which logic, which partitions.
struct LoopOptions {
  // Names the loop in metrics (tongka_apply_batch_seconds{loop=...}) and its consumer's client id.
  std::string name;
  std::vector<std::string> topics;
  state_store::Applier* applier = nullptr;  // required; must outlive the Runtime's loops
  // The replica's partitions; unset: the service's (common.replica_index / replica_count). A
  // loop every replica runs in full (settlement's ledger) sets 0 of 1.
  std::optional<int32_t> replica_index;
  std::optional<int32_t> replica_count;
  size_t batch_max_records = 5000;
  size_t commit_max_records = 0;
  state_store::EventFilterOptions filter;
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options);
  // Shutdown (5 s for calls in flight) if not done, then destroys in reverse order of wiring.
  ~Runtime();

  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Phase 0. crypto::SelfTest(), for a service that computes SM3 or SM4: a broken OpenSSL build
  // stops it here, not after it has written wrong digests.
  absl::Status CheckCrypto();

  // Phase 1. Opens the store (options.path defaults to common.state_dir; options.layout is the
  // service's key layout) and registers its runtime metrics. Once.
  absl::StatusOr<state_store::StateStore*> OpenStore(state_store::StateStoreOptions options);

  // Phase 3. The Kafka client config of this replica; `role` ("ledger", "txn") makes the client
  // id unique within the process: "tongka-<name>[-<role>]-<replica_index>".
  event_log::KafkaClientConfig KafkaClient(const std::string& role = "") const;
  // A producer the Runtime owns and watches (a fatal producer error is a fatal stop). It is
  // flushed and destroyed at its place in the reverse order.
  absl::StatusOr<event_log::Producer*> AddProducer(const event_log::KafkaClientConfig& kafka);
  // Creates and starts (seeks) an apply loop on the opened store; it runs after RunLoops().
  absl::StatusOr<state_store::ApplyLoop*> AddLoop(const LoopOptions& options);
  // Runs every added loop that is not running yet on its own thread. A loop error is Fail().
  void RunLoops();
  // Blocks until `loop` (running) has caught up with its log, it failed, or `timeout` passed.
  absl::Status WaitCaughtUp(state_store::ApplyLoop* loop, absl::Duration timeout);
  // Runs the outbox publisher on its thread, publishing with `producer` (usually AddProducer's).
  void RunPublisher(event_log::Producer* producer);
  // Stops and joins the loops and the publisher (the rest keeps running). Idempotent; Shutdown
  // calls it at their place.
  void StopLoops();

  // Phase 4. The Authenticator for `grpc.auth_mode`, dev tokens checked against the clock.
  absl::StatusOr<std::shared_ptr<const server::Authenticator>> MakeAuthenticator(
      const server::GrpcServerConfig& grpc) const;
  // Starts the gRPC server (health and reflection included) with `services` and exports
  // tongka_grpc_unauthenticated_calls_total. Services must outlive the Runtime's Shutdown.
  absl::StatusOr<server::GrpcServer*> ServeGrpc(const server::GrpcServerConfig& grpc,
                                                std::shared_ptr<const server::Authenticator> auth,
                                                const std::vector<grpc::Service*>& services);

  // Phase 5, last, so the endpoint never shows a half-wired service: starts /metrics, /healthz
  // and /readyz (unless common.metrics_port is -1) and the watcher (readiness, producers).
  absl::Status Serve();

  // Runs `stop` at this point of the reverse order (Shutdown runs it after everything wired later
  // has stopped, before everything wired earlier).
  void OnStop(std::function<void()> stop);
  // Runs `ready` once, on the watcher's thread, when the service first becomes ready.
  void OnReady(std::function<void()> ready);
  // One more condition of readiness, checked on the watcher's thread (cheap, thread-safe); wiring
  // phase only.
  void AddReadyCondition(std::function<bool()> condition);

  // The fatal stop (see above). The first error wins.
  void Fail(const absl::Status& error, const std::string& what);
  // Asks the process to stop cleanly (ServiceMain exits 0).
  void RequestStop();
  bool stop_requested() const { return stop_requested_.HasBeenNotified(); }
  // Waits until a stop was requested or `timeout` passed; true if it was.
  bool WaitForStopRequest(absl::Duration timeout) const {
    return stop_requested_.WaitForNotificationWithTimeout(timeout);
  }
  // The first fatal error, OK while running or after a clean stop.
  absl::Status error() const;
  bool ready() const { return ready_.load(); }

  // Leaves /readyz, then stops everything in reverse order of wiring; calls in flight get until
  // `deadline`. Idempotent.
  void Shutdown(absl::Time deadline);

  const RuntimeOptions& options() const { return options_; }
  const Clock* clock() const { return clock_; }
  metrics::Registry& registry() { return registry_; }
  state_store::StateStore* store() const { return store_.get(); }
  int grpc_port() const { return grpc_server_ == nullptr ? -1 : grpc_server_->port(); }
  int metrics_port() const { return exposer_ == nullptr ? -1 : exposer_->port(); }

 private:
  struct Loop {
    std::unique_ptr<state_store::ApplyLoop> loop;
    std::atomic<bool> stop{false};
    std::thread thread;
  };

  void Watch();
  absl::StatusOr<bool> AllApplied();
  void SetReady(bool ready);

  const RuntimeOptions options_;
  const Clock* const clock_;
  metrics::Registry registry_;
  std::unique_ptr<state_store::StateStore> store_;
  std::unique_ptr<state_store::RuntimeMetrics> runtime_metrics_;
  std::vector<std::unique_ptr<event_log::Producer>> producers_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::unique_ptr<state_store::OutboxPublisher> publisher_;
  std::atomic<bool> stop_publisher_{false};
  std::thread publisher_thread_;
  std::unique_ptr<server::GrpcServer> grpc_server_;
  metrics::CallbackRegistration unauthenticated_metric_;
  std::unique_ptr<metrics::HttpExposer> exposer_;
  std::vector<std::function<void()>> ready_callbacks_;
  std::vector<std::function<bool()>> ready_conditions_;
  absl::Notification stop_watching_;
  std::thread watcher_;

  // Stop steps in wiring order; Shutdown runs them backwards.
  std::vector<std::function<void()>> stops_;
  absl::Time shutdown_deadline_ = absl::InfinitePast();
  bool shut_down_ = false;

  std::atomic<bool> ready_{false};
  absl::Notification stop_requested_;
  mutable absl::Mutex error_mu_;
  absl::Status error_ ABSL_GUARDED_BY(error_mu_);
};

namespace internal {
// Set by ServiceMain: a stop request then raises SIGTERM, which main is waiting for.
void SetHostedByServiceMain(bool hosted);
}  // namespace internal

}  // namespace tongka::service

#endif  // TONGKA_LIBS_SERVICE_RUNTIME_H_
