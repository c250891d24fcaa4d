// SettlementApp: the settlement service, wired in phases on the service kit (libs/service,
// runtime.h): the store (and the fee schedule it was built under), then the logic (calendar,
// fees, appliers), then Kafka (the ledger loop, caught up first; then stage one and the outbox
// publisher), then the API and the gRPC server, then the scheduler, the metrics refresher and the
// metrics endpoint; stopped in reverse.
//
// Threads: the ledger loop (every tongka.settlement partition), the stage-one loop (the owned
// tongka.txn partitions) and the outbox publisher (the kit's), and the app's background thread:
// the scheduler (closes windows on time when schedule_close is on, window_scheduler.h, on the
// injected clock) and the metrics refresher. A loop that fails (a corrupt store, a lost offset,
// overlapping deltas) stops the service through the kit's fatal stop, rather than serving figures
// that stopped moving.
//
// Readiness (/readyz): once both loops have reached the log end and the outbox was empty.
//
// Ownership: owns everything it wires. Thread-safety: Create, Shutdown and the destructor on one
// thread; accessors from any thread. Failure: Create returns the first configuration or start-up
// error (naming the field) and leaves nothing running.
//
// Example (main.cc runs it under service::ServiceMain):
//   auto app = SettlementApp::Create(config, &clock);
//   if (!app.ok()) { LOG(ERROR) << app.status(); return 2; }
//   ...
//   (*app)->Shutdown(absl::Now() + absl::Seconds(20));
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_APP_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_APP_H_

#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "libs/service/clock.h"
#include "libs/service/peer_channel.h"
#include "libs/service/runtime.h"
#include "libs/service/service_main.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/state_store.h"
#include "proto/settlement.grpc.pb.h"
#include "services/settlement/business_day.h"
#include "services/settlement/fees.h"
#include "services/settlement/settlement_api.h"
#include "services/settlement/settlement_config.h"
#include "services/settlement/settlement_metrics.h"
#include "services/settlement/settlement_service.h"
#include "services/settlement/settlement_state.h"
#include "services/settlement/window_scheduler.h"

namespace tongka::settlement {

class SettlementApp : public service::App {
 public:
  // `clock` (null: the system clock) is the platform time of the schedule and of dev tokens.
  static absl::StatusOr<std::unique_ptr<SettlementApp>> Create(
      const SettlementConfig& config, const service::Clock* clock = nullptr);
  ~SettlementApp() override;

  SettlementApp(const SettlementApp&) = delete;
  SettlementApp& operator=(const SettlementApp&) = delete;

  // Stops taking calls (letting calls in flight finish until `deadline`), then the scheduler,
  // the loops and the publisher. Idempotent.
  void Shutdown(absl::Time deadline) override;
  service::Runtime& runtime() override { return runtime_; }

  // The first loop error, OK while running or after a clean stop.
  absl::Status error() const { return runtime_.error(); }
  // Both loops at the log end and the outbox empty, at least once since start.
  bool ready() const { return runtime_.ready(); }

  int grpc_port() const { return runtime_.grpc_port(); }
  int metrics_port() const { return runtime_.metrics_port(); }
  const state_store::StateStore& store() const { return *store_; }
  const SettlementApi& api() const { return *api_; }

 private:
  SettlementApp(SettlementConfig config, const service::Clock* clock);
  absl::Status Wire() override;
  // Records the genesis rules on an empty log; refuses flags that disagree with the log.
  absl::Status CheckRules();
  void BackgroundLoop();  // scheduler, metrics refresh
  void RefreshMetrics();

  const SettlementConfig config_;
  // The logic, before the runtime: its loops hold the appliers until they are destroyed.
  std::unique_ptr<TxnStage> txn_stage_;
  std::unique_ptr<WindowLedger> ledger_;
  service::Runtime runtime_;
  std::unique_ptr<SettlementMetrics> metrics_;  // in the runtime's registry
  state_store::StateStore* store_ = nullptr;
  state_store::ApplyLoop* ledger_loop_ = nullptr;
  std::optional<service::PeerChannels> peer_channels_;
  std::vector<std::unique_ptr<v1::SettlementService::Stub>> peers_;
  std::unique_ptr<SettlementApi> api_;
  std::unique_ptr<SettlementService> service_;
  std::unique_ptr<WindowScheduler> scheduler_;
  absl::Notification stop_background_;
  std::thread background_;
};

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_APP_H_
