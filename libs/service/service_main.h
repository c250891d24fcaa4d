// ServiceMain: the main routine of every Tongka service, so that a service's main.cc only names
// its flags-to-config function and its app:
//
//   int main(int argc, char** argv) {
//     return tongka::service::ServiceMain(argc, argv, "tongka_settlement",
//         [](const tongka::service::Clock* clock) -> tongka::service::AppOrExit {
//           absl::StatusOr<SettlementConfig> config = ConfigFromFlags();
//           if (!config.ok()) return tongka::service::BadFlags(config.status());
//           return tongka::service::Started(SettlementApp::Create(*config, clock));
//         });
//   }
//
// In order: block SIGTERM and SIGINT (before any thread exists, so that they stay pending for
// main), parse the flags, start logging to stderr, build the app (the factory reads the flags
// into the service's config, validates it, and wires the app in phases), run its loops, wait for
// SIGTERM or SIGINT (or the app's own stop request: a fatal error or finished work raises
// SIGTERM, see runtime.h), then shut the app down with 20 s for calls in flight.
//
// Exit codes: 0 after a clean stop; 1 after a fatal error, or when the app cannot start (an
// unreachable broker, a store of another layout); 2 for bad flags (a flag or config value
// refused, INVALID_ARGUMENT), before anything started. Each non-zero exit logs one line naming
// the binary and the cause.
//
// Thread-safety: call once, from main. Failure behaviour: never throws; returns the exit code.
#ifndef TONGKA_LIBS_SERVICE_SERVICE_MAIN_H_
#define TONGKA_LIBS_SERVICE_SERVICE_MAIN_H_

#include <functional>
#include <memory>
#include <string>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/service/clock.h"
#include "libs/service/runtime.h"

namespace tongka::service {

// What ServiceMain needs of an app: its Runtime (to run its loops and see its error) and its
// Shutdown (which stops the app's own parts and the Runtime in reverse order of wiring).
class App {
 public:
  virtual ~App() = default;
  virtual Runtime& runtime() = 0;
  virtual void Shutdown(absl::Time deadline) = 0;

 protected:
  // Wires the app in phases (libs/service/README.md); called once, by Wired().
  virtual absl::Status Wire() = 0;

  // For the app's Create: `app` wired, or Wire's error with everything it started stopped again.
  template <typename T>
  static absl::StatusOr<std::unique_ptr<T>> Wired(std::unique_ptr<T> app) {
    App& base = *app;
    if (absl::Status wired = base.Wire(); !wired.ok()) {
      base.Shutdown(absl::Now());
      return wired;
    }
    return app;
  }
};

// The factory's answer: a started app, or an exit without serving: a refused start (the status
// is logged) or a one-shot mode that did its work (OK status, such as a store inspection).
struct Exit {
  absl::Status status;
  int exit_code = 1;
};
using AppOrExit = std::variant<std::unique_ptr<App>, Exit>;

// A flag or config value was refused: exit 2.
inline AppOrExit BadFlags(absl::Status status) { return Exit{std::move(status), 2}; }
// A one-shot mode finished with `exit_code`; nothing is served.
inline AppOrExit Finished(int exit_code) { return Exit{absl::OkStatus(), exit_code}; }

// An app's Create result: a configuration refused by Create (INVALID_ARGUMENT) exits 2, any other
// start failure exits 1.
template <typename T>
AppOrExit Started(absl::StatusOr<std::unique_ptr<T>> app) {
  if (app.ok()) return std::unique_ptr<App>(std::move(*app));
  const int code = app.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  return Exit{app.status(), code};
}

// Runs the service; returns the process's exit code. `name` is the binary's name for log lines;
// the factory runs after flag parsing, with the system clock.
int ServiceMain(int argc, char** argv, const std::string& name,
                const std::function<AppOrExit(const Clock* clock)>& factory);

// Time a shutdown gives calls in flight.
inline constexpr absl::Duration kShutdownGrace = absl::Seconds(20);

}  // namespace tongka::service

#endif  // TONGKA_LIBS_SERVICE_SERVICE_MAIN_H_
