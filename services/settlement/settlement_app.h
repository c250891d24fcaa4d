// SettlementApp: the settlement service wired in phases, like every Tongka service: the store (and
// the fee schedule it was built under), then the logic (calendar, fees, appliers), then Kafka (the
// ledger loop, caught up first; then stage one and the outbox publisher), then the API and the
// gRPC server, then the scheduler, the metrics refresher and the metrics endpoint; stopped in
// reverse.
//
// Threads: the ledger loop (every tongka.settlement partition), the stage-one loop (the owned
// tongka.txn partitions), the outbox publisher, the scheduler (closes windows on time when
// schedule_close is on) and the metrics refresher. A loop that fails (a corrupt store, a lost
// offset, overlapping deltas) stops the service: it records the error and raises SIGTERM, so
// main shuts down and exits non-zero rather than serving figures that stopped moving.
//
// Readiness (/readyz): once both loops have reached the log end and the outbox was empty.
//
// Ownership: owns everything it wires. Thread-safety: Create, Shutdown and the destructor on one
// thread; accessors from any thread. Failure: Create returns the first configuration or start-up
// error (naming the field) and leaves nothing running.
//
// Example (main.cc):
//   auto app = SettlementApp::Create(config);
//   if (!app.ok()) { LOG(ERROR) << app.status(); return 2; }
//   server::WaitForShutdownSignal();
//   (*app)->Shutdown(absl::Now() + absl::Seconds(20));
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_APP_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_APP_H_

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "libs/event_log/producer.h"
#include "libs/metrics/http_exposer.h"
#include "libs/metrics/metrics.h"
#include "libs/server/grpc_server.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/outbox_publisher.h"
#include "libs/state_store/runtime_metrics.h"
#include "libs/state_store/state_store.h"
#include "proto/settlement.grpc.pb.h"
#include "services/settlement/business_day.h"
#include "services/settlement/fees.h"
#include "services/settlement/settlement_api.h"
#include "services/settlement/settlement_config.h"
#include "services/settlement/settlement_metrics.h"
#include "services/settlement/settlement_service.h"
#include "services/settlement/settlement_state.h"

namespace tongka::settlement {

class SettlementApp {
 public:
  static absl::StatusOr<std::unique_ptr<SettlementApp>> Create(const SettlementConfig& config);
  ~SettlementApp();

  SettlementApp(const SettlementApp&) = delete;
  SettlementApp& operator=(const SettlementApp&) = delete;

  // Stops taking calls (letting calls in flight finish until `deadline`), then the scheduler,
  // the loops and the publisher. Idempotent.
  void Shutdown(absl::Time deadline);

  // The first loop error, OK while running or after a clean stop.
  absl::Status error() const;
  // Both loops at the log end and the outbox empty, at least once since start.
  bool ready() const { return ready_.load(); }

  int grpc_port() const { return server_ == nullptr ? -1 : server_->port(); }
  int metrics_port() const { return exposer_ == nullptr ? -1 : exposer_->port(); }
  const state_store::StateStore& store() const { return *store_; }
  const SettlementApi& api() const { return *api_; }

 private:
  explicit SettlementApp(SettlementConfig config) : config_(std::move(config)) {}
  absl::Status Wire();
  absl::Status CheckFeeSchedule();
  absl::StatusOr<std::unique_ptr<state_store::ApplyLoop>> StartLoop(const std::string& name,
                                                                    const std::string& topic,
                                                                    state_store::Applier* applier,
                                                                    int32_t replica_index,
                                                                    int32_t replica_count);
  void RunLoop(state_store::ApplyLoop* loop);
  absl::Status MakePeers();
  void BackgroundLoop();  // scheduler, metrics refresh, readiness
  void Schedule();
  void RefreshMetrics();
  absl::StatusOr<bool> AllApplied();

  const SettlementConfig config_;
  metrics::Registry registry_;
  std::unique_ptr<SettlementMetrics> metrics_;
  std::unique_ptr<state_store::StateStore> store_;
  std::unique_ptr<state_store::RuntimeMetrics> runtime_metrics_;
  std::optional<BusinessCalendar> calendar_;
  std::optional<FeeSchedule> fees_;
  std::unique_ptr<TxnStage> txn_stage_;
  std::unique_ptr<WindowLedger> ledger_;
  std::unique_ptr<event_log::Producer> producer_;
  std::unique_ptr<state_store::ApplyLoop> ledger_loop_;
  std::unique_ptr<state_store::ApplyLoop> txn_loop_;
  std::unique_ptr<state_store::OutboxPublisher> publisher_;
  std::vector<std::unique_ptr<v1::SettlementService::Stub>> peers_;
  std::unique_ptr<SettlementApi> api_;
  std::shared_ptr<const server::Authenticator> authenticator_;
  std::unique_ptr<SettlementService> service_;
  std::unique_ptr<server::GrpcServer> server_;
  metrics::CallbackRegistration unauthenticated_metric_;
  std::unique_ptr<metrics::HttpExposer> exposer_;

  std::atomic<bool> stop_loops_{false};
  std::atomic<bool> stop_publisher_{false};
  absl::Notification stop_background_;
  std::vector<std::thread> threads_;
  std::thread background_;
  std::atomic<bool> ready_{false};
  mutable absl::Mutex error_mu_;
  absl::Status error_ ABSL_GUARDED_BY(error_mu_);
  bool shut_down_ = false;
};

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_APP_H_
