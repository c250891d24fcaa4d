// Subprocess: start a Tongka binary from a test, and stop or kill it, for fault-injection tests.
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
#ifndef TONGKA_TESTS_TESTING_SUBPROCESS_H_
#define TONGKA_TESTS_TESTING_SUBPROCESS_H_

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
  // Waits for exit and returns the raw waitpid status.
  int Wait();
  // Waits up to `timeout`; nullopt if still running.
  std::optional<int> WaitFor(absl::Duration timeout);
  pid_t pid() const { return pid_; }

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  std::optional<int> Poll();

  pid_t pid_;
  std::optional<int> status_;
};

}  // namespace tongka::testing

#endif  // TONGKA_TESTS_TESTING_SUBPROCESS_H_
