// SampleApp: the runtime's sample service, wired in phases on the service kit (libs/service):
// store, then logic, then consumers and publisher, then metrics; stopped in reverse.
//
// It runs the two-stage sample pipeline of sample_state.h on one RocksDB: a TapCounter loop on
// tongka.txn, a CityTally loop on tongka.sample.tally, and the outbox publisher between them.
// The crash test kills it with SIGKILL at random moments and checks that, in the end, its state
// equals a from-scratch rebuild and every tap is counted exactly once.
//
// Thread-safety: Create and Run on one thread; Run starts one thread per loop plus the publisher
// and returns after joining them. Failure: Create returns the first configuration or start-up
// error (naming the field); Run returns the first loop error (a corrupt store, a lost offset).
// Under ServiceMain (main.cc) the loops run until SIGTERM, a loop error (exit 1) or, with
// exit_when_caught_up, the first time everything is applied (exit 0).
#ifndef TONGKA_TOOLS_SAMPLE_SAMPLE_APP_H_
#define TONGKA_TOOLS_SAMPLE_SAMPLE_APP_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/service/clock.h"
#include "libs/service/common_flags.h"
#include "libs/service/runtime.h"
#include "libs/service/service_main.h"
#include "libs/state_store/state_store.h"
#include "tools/sample/sample_state.h"

namespace tongka::sample {

struct SampleConfig {
  // Kafka bootstrap servers (host:port,...). Required.
  std::string kafka_bootstrap;
  // Kafka TLS (PEM paths): cluster CA, client certificate and key. Empty: plaintext.
  std::string kafka_ca_path;
  std::string kafka_cert_path;
  std::string kafka_key_path;
  // RocksDB directory. Required.
  std::string state_dir;
  // Replica k of N owns partitions p % N == k of both topics.
  int32_t replica_index = 0;
  int32_t replica_count = 1;
  // Address of /metrics (and /healthz, /readyz); port 0 picks a free port, -1 disables them.
  std::string metrics_host = "0.0.0.0";
  int32_t metrics_port = 0;
  // Records per apply batch, 1..100000.
  int32_t batch_max_records = 10000;
  // Under a backlog, commit once this many records are pending (several batches, 500 ms at
  // most): each card is then written to RocksDB once per commit. 0 commits every batch.
  // 0..10000000. See ApplyLoopOptions::commit_max_records.
  int64_t commit_max_records = 500000;
  // Stop (successfully) once both stages have applied everything in the log and the outbox is
  // empty. For tests and the quick start; a service runs until SIGTERM.
  bool exit_when_caught_up = false;
  // Publish the outbox. Off only for a replay that rebuilds state from a log that already holds
  // everything the outbox would carry (verification of a live store, the crash test).
  bool publish = true;

  absl::Status Validate() const;
};

class SampleApp : public service::App {
 public:
  static absl::StatusOr<std::unique_ptr<SampleApp>> Create(const SampleConfig& config,
                                                           const service::Clock* clock = nullptr);
  ~SampleApp() override;

  // Runs until `stop` is set, an error occurs, or (with exit_when_caught_up) all is applied.
  absl::Status Run(std::atomic<bool>& stop);

  service::Runtime& runtime() override { return runtime_; }
  void Shutdown(absl::Time deadline) override { runtime_.Shutdown(deadline); }

  int metrics_port() const { return runtime_.metrics_port(); }
  const state_store::StateStore& store() const { return *runtime_.store(); }

 private:
  SampleApp(SampleConfig config, const service::Clock* clock);
  absl::Status Wire() override;

  const SampleConfig config_;
  // The logic, before the runtime: its loops hold the appliers until they are destroyed.
  TapCounter tap_counter_;
  CityTally city_tally_;
  service::Runtime runtime_;
};

}  // namespace tongka::sample

#endif  // TONGKA_TOOLS_SAMPLE_SAMPLE_APP_H_
