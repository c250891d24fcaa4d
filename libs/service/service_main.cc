#include "libs/service/service_main.h"

#include <glog/logging.h>

#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "libs/server/grpc_server.h"

namespace tongka::service {

int ServiceMain(int argc, char** argv, const std::string& name,
                const std::function<AppOrExit(const Clock* clock)>& factory) {
  server::BlockShutdownSignals();  // before any thread exists
  absl::ParseCommandLine(argc, argv);
  // Deadlock detection costs about 2% of CPU on the hot paths; the tests run with it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  internal::SetHostedByServiceMain(true);

  AppOrExit made = factory(SystemClock::Get());
  if (const Exit* exit = std::get_if<Exit>(&made)) {
    if (!exit->status.ok()) LOG(ERROR) << name << " cannot start: " << exit->status;
    return exit->exit_code;
  }
  std::unique_ptr<App> app = std::move(std::get<std::unique_ptr<App>>(made));
  app->runtime().RunLoops();

  const int signal = server::WaitForShutdownSignal();
  if (!app->runtime().stop_requested()) LOG(INFO) << "signal " << signal << ": stopping";
  app->Shutdown(absl::Now() + kShutdownGrace);
  const absl::Status error = app->runtime().error();
  app.reset();
  if (!error.ok()) {
    LOG(ERROR) << name << " stopped itself: " << error;
    return 1;
  }
  return 0;
}

}  // namespace tongka::service
