// tongka_settlement: the settlement service (README.md). Wiring only: flags -> config -> app.
#include <glog/logging.h>

#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "libs/server/grpc_server.h"
#include "services/settlement/settlement_app.h"
#include "services/settlement/settlement_flags.h"

int main(int argc, char** argv) {
  tongka::server::BlockShutdownSignals();  // before any thread exists
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  absl::StatusOr<tongka::settlement::SettlementConfig> config =
      tongka::settlement::ConfigFromFlags();
  if (!config.ok()) {
    LOG(ERROR) << "tongka_settlement cannot start: " << config.status();
    return 2;
  }
  auto app = tongka::settlement::SettlementApp::Create(*config);
  if (!app.ok()) {
    LOG(ERROR) << "tongka_settlement cannot start: " << app.status();
    return 2;
  }
  const int signal = tongka::server::WaitForShutdownSignal();
  LOG(INFO) << "signal " << signal << ": stopping";
  (*app)->Shutdown(absl::Now() + absl::Seconds(20));
  return (*app)->error().ok() ? 0 : 1;
}
