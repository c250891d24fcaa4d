// tongka_ingest: the ingest service (README.md). Wiring only: flags -> IngestConfig -> IngestApp.
#include <glog/logging.h>

#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "libs/server/grpc_server.h"
#include "services/ingest/ingest_app.h"
#include "services/ingest/ingest_flags.h"

int main(int argc, char** argv) {
  tongka::server::BlockShutdownSignals();  // before any thread exists
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);  // ~2% of CPU on hot paths
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  absl::StatusOr<tongka::ingest::IngestConfig> config = tongka::ingest::ConfigFromFlags();
  if (!config.ok()) {
    LOG(ERROR) << "tongka_ingest cannot start: " << config.status();
    return 2;
  }
  auto app = tongka::ingest::IngestApp::Create(*config);
  if (!app.ok()) {
    LOG(ERROR) << "tongka_ingest cannot start: " << app.status();
    return 2;
  }
  const int signal = tongka::server::WaitForShutdownSignal();
  LOG(INFO) << "signal " << signal << ": stopping";
  (*app)->Shutdown(absl::Now() + absl::Seconds(20));
  if (!(*app)->error().ok()) {
    LOG(ERROR) << "tongka_ingest stopped itself: " << (*app)->error();
    return 1;
  }
  return 0;
}
