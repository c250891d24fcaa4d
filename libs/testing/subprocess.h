// Subprocess: start a program from a test (a Tongka binary, Prometheus), stop it, or kill it.
//
// Output goes to a log file (appended), so a failing test can point at what the process said.
// Thread-safety: one thread owns a Subprocess. Failure: spawn errors come back as Status; the
// destructor SIGKILLs a process still running, so a failing test never leaks one.
//
// Example:
//   auto p = Subprocess::Start({"tools/sample/tongka_sample", "--state_dir=/tmp/x"},
//                              {{"TONGKA_FAILPOINTS", "outbox.after_produce"}}, log_path);
//   (*p)->Kill();                       // SIGKILL, like a power cut
//   int status = (*p)->Wait();          // the raw waitpid status
#ifndef TONGKA_LIBS_TESTING_SUBPROCESS_H_
#define TONGKA_LIBS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tongka::testing {

class Subprocess {
 public:
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra_env,
      const std::string& log_path);
  ~Subprocess();

  // Sends SIGKILL (if still running). Returns true if the process was running when signalled.
  bool Kill();
  // Sends SIGTERM.
  void Terminate();
  // Sends SIGTERM, waits up to `grace` for the exit, then SIGKILLs. Returns the raw wait status.
  int TerminateAndWait(absl::Duration grace);
  // False once the process has exited.
  bool Running() { return !Poll().has_value(); }
  // The log file's contents so far, for failure messages.
  std::string Log() const;
  // Waits for exit and returns the raw waitpid status.
  int Wait();
  // Waits up to `timeout`; nullopt if still running.
  std::optional<int> WaitFor(absl::Duration timeout);
  pid_t pid() const { return pid_; }

 private:
  Subprocess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  std::optional<int> Poll();

  pid_t pid_;
  std::string log_path_;
  std::optional<int> status_;
};

}  // namespace tongka::testing

#endif  // TONGKA_LIBS_TESTING_SUBPROCESS_H_
