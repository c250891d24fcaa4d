// IngestApp: the ingest service wired in phases on the service kit (libs/service, runtime.h):
// store (RocksDB dedup index), then logic (keyring), then Kafka (the producer, the topics checked,
// the member view following tongka.members, the validator judging by it) and the ingest_api, then
// the gRPC server, then the metrics endpoint; stopped in reverse. It is ready (/readyz) once it
// serves and the member view has read tongka.members up to its end as it was at start
// (members_view.h); a fatal Kafka producer error or a member view that cannot read on is the
// kit's fatal stop (exit 1, so the orchestrator restarts it).
//
// A background thread prunes dedup entries older than limits.dedup_horizon every
// prune_interval (dedup_index.h explains why that is safe).
//
// Ownership: owns everything it wires. Thread-safety: Create, Shutdown and the destructor on one
// thread; the accessors from any thread. Failure: Create returns the first configuration or
// start-up error (naming the field), and leaves nothing running.
//
// Example (main.cc runs it under service::ServiceMain):
//   auto app = IngestApp::Create(config);
//   if (!app.ok()) { LOG(ERROR) << app.status(); return 2; }
//   ...
//   (*app)->Shutdown(absl::Now() + absl::Seconds(20));
#ifndef TONGKA_SERVICES_INGEST_INGEST_APP_H_
#define TONGKA_SERVICES_INGEST_INGEST_APP_H_

#include <memory>
#include <optional>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "libs/event_log/kafka_config.h"
#include "libs/event_log/producer.h"
#include "libs/metrics/metrics.h"
#include "libs/server/grpc_server.h"
#include "libs/service/clock.h"
#include "libs/service/runtime.h"
#include "libs/service/service_main.h"
#include "libs/txn/keys.h"
#include "services/ingest/dedup_index.h"
#include "services/ingest/ingest_api.h"
#include "services/ingest/ingest_config.h"
#include "services/ingest/ingest_metrics.h"
#include "services/ingest/ingest_service.h"
#include "services/ingest/members_view.h"
#include "services/ingest/validator.h"

namespace tongka::ingest {

class IngestApp : public service::App {
 public:
  // `now` is the platform clock: recorded_at, device-time rules, dedup horizon, dev tokens.
  static absl::StatusOr<std::unique_ptr<IngestApp>> Create(const IngestConfig& config,
                                                           server::NowFn now = absl::Now);
  // The same on the kit's clock (null: the system clock), which must outlive the app.
  static absl::StatusOr<std::unique_ptr<IngestApp>> Create(const IngestConfig& config,
                                                           const service::Clock* clock);
  // Shuts down (with a short deadline) if Shutdown was not called.
  ~IngestApp() override;

  IngestApp(const IngestApp&) = delete;
  IngestApp& operator=(const IngestApp&) = delete;

  // Stops taking calls, lets calls in flight finish until `deadline`, stops the pruner, flushes
  // the producer, and stops the endpoint. Idempotent.
  void Shutdown(absl::Time deadline) override { runtime_.Shutdown(deadline); }
  service::Runtime& runtime() override { return runtime_; }

  // Why the service stopped itself (a fatal Kafka producer error), OK otherwise.
  absl::Status error() const { return runtime_.error(); }

  int grpc_port() const { return runtime_.grpc_port(); }
  int metrics_port() const { return runtime_.metrics_port(); }
  metrics::Registry& registry() { return runtime_.registry(); }
  const IngestApi& ingest_api() const { return *ingest_api_; }
  // For benchmarks that call Upload without gRPC (tools/bench/ingest --rpc=direct).
  IngestApi& mutable_ingest_api() { return *ingest_api_; }
  DedupIndex& dedup() { return *dedup_; }
  const MembersView& members() const { return *members_; }

 private:
  IngestApp(IngestConfig config, std::unique_ptr<service::Clock> owned_clock,
            const service::Clock* clock);
  absl::Status Wire() override;
  absl::Status CheckTopics();
  absl::Status CatchUp(const event_log::KafkaClientConfig& kafka);
  void PruneLoop();

  const IngestConfig config_;
  const std::unique_ptr<service::Clock> owned_clock_;  // a NowFn given to Create, adapted
  const service::Clock* const clock_;
  service::Runtime runtime_;
  std::unique_ptr<IngestMetrics> metrics_;  // in the runtime's registry
  std::unique_ptr<DedupIndex> dedup_;
  std::optional<txn::CityKeyring> keyring_;
  std::unique_ptr<MembersView> members_;
  std::unique_ptr<Validator> validator_;
  event_log::Producer* producer_ = nullptr;
  std::unique_ptr<IngestApi> ingest_api_;
  std::unique_ptr<IngestService> service_;
  absl::Notification stop_pruning_;
  std::thread pruner_;
};

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_INGEST_APP_H_
