// IngestApp: the ingest service wired in phases, like every Tongka service: store (RocksDB dedup
// index), then logic (keyring, validator), then the Kafka producer and the ingestor, then the
// gRPC server, then the metrics endpoint; stopped in reverse.
//
// A background thread prunes dedup entries older than limits.dedup_horizon every
// prune_interval (dedup_index.h explains why that is safe).
//
// Ownership: owns everything it wires. Thread-safety: Create, Shutdown and the destructor on one
// thread; the accessors from any thread. Failure: Create returns the first configuration or
// start-up error (naming the field), and leaves nothing running.
//
// Example (main.cc):
//   auto app = IngestApp::Create(config);
//   if (!app.ok()) { LOG(ERROR) << app.status(); return 2; }
//   server::WaitForShutdownSignal();
//   (*app)->Shutdown(absl::Now() + absl::Seconds(20));
#ifndef TONGKA_SERVICES_INGEST_INGEST_APP_H_
#define TONGKA_SERVICES_INGEST_INGEST_APP_H_

#include <memory>
#include <optional>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "libs/event_log/kafka_config.h"
#include "libs/event_log/producer.h"
#include "libs/metrics/http_exposer.h"
#include "libs/metrics/metrics.h"
#include "libs/server/grpc_server.h"
#include "libs/state_store/runtime_metrics.h"
#include "libs/state_store/state_store.h"
#include "libs/txn/keys.h"
#include "services/ingest/dedup_index.h"
#include "services/ingest/ingest_config.h"
#include "services/ingest/ingest_metrics.h"
#include "services/ingest/ingest_service.h"
#include "services/ingest/ingestor.h"
#include "services/ingest/validator.h"

namespace tongka::ingest {

class IngestApp {
 public:
  // `now` is the platform clock: recorded_at, device-time rules, dedup horizon, dev tokens.
  static absl::StatusOr<std::unique_ptr<IngestApp>> Create(const IngestConfig& config,
                                                           server::NowFn now = absl::Now);
  // Shuts down (with a short deadline) if Shutdown was not called.
  ~IngestApp();

  IngestApp(const IngestApp&) = delete;
  IngestApp& operator=(const IngestApp&) = delete;

  // Stops taking calls, lets calls in flight finish until `deadline`, flushes the producer,
  // stops the pruner and the endpoint. Idempotent.
  void Shutdown(absl::Time deadline);

  // Why the service stopped itself (a fatal Kafka producer error), OK otherwise. When it sets
  // this, the app leaves /readyz and raises SIGTERM, so main shuts down and exits non-zero and
  // the orchestrator restarts it with a new producer.
  absl::Status error() const;

  int grpc_port() const { return server_ == nullptr ? -1 : server_->port(); }
  int metrics_port() const { return exposer_ == nullptr ? -1 : exposer_->port(); }
  metrics::Registry& registry() { return registry_; }
  const Ingestor& ingestor() const { return *ingestor_; }
  // For benchmarks that call Upload without gRPC (tools/bench/ingest --rpc=direct).
  Ingestor& mutable_ingestor() { return *ingestor_; }
  DedupIndex& dedup() { return *dedup_; }

 private:
  IngestApp(IngestConfig config, server::NowFn now)
      : config_(std::move(config)), now_(std::move(now)) {}
  absl::Status Wire();
  absl::Status CheckTopics();
  absl::Status CatchUp(const event_log::KafkaClientConfig& kafka);
  void PruneLoop();
  void WatchProducer();

  const IngestConfig config_;
  const server::NowFn now_;
  metrics::Registry registry_;
  std::unique_ptr<IngestMetrics> metrics_;
  std::unique_ptr<state_store::StateStore> store_;
  std::unique_ptr<state_store::RuntimeMetrics> runtime_metrics_;
  std::unique_ptr<DedupIndex> dedup_;
  std::optional<txn::CityKeyring> keyring_;
  std::unique_ptr<Validator> validator_;
  std::unique_ptr<event_log::Producer> producer_;
  std::unique_ptr<Ingestor> ingestor_;
  std::shared_ptr<const server::Authenticator> authenticator_;
  std::unique_ptr<IngestService> service_;
  std::unique_ptr<server::GrpcServer> server_;
  metrics::CallbackRegistration unauthenticated_metric_;
  std::unique_ptr<metrics::HttpExposer> exposer_;
  absl::Notification stop_pruning_;
  std::thread pruner_;
  absl::Notification stop_watching_;
  std::thread watcher_;
  mutable absl::Mutex error_mu_;
  absl::Status error_ ABSL_GUARDED_BY(error_mu_);
  bool shut_down_ = false;
};

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_INGEST_APP_H_
