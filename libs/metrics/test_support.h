// Test-only helpers for tests that run real Prometheus tools: locating a tool, running one to
// completion with text on stdin, and picking a free local TCP port. (A long-running one, the
// Prometheus server, is a libs/testing Subprocess.)
//
// Thread-safety: none; use from the test's main thread.
//
// Failure behaviour: system call failures are test-environment bugs and CHECK-fail. A missing tool
// is reported by FindTool returning "" so the test can fail with the setup hint.
//
// Example:
//   const std::string promtool = FindTool("promtool");
//   ASSERT_FALSE(promtool.empty()) << MissingToolMessage("promtool");
//   CommandResult result = RunCommand({promtool, "check", "metrics"}, text);
//   EXPECT_EQ(result.exit_code, 0) << result.output;

#ifndef TONGKA_LIBS_METRICS_TEST_SUPPORT_H_
#define TONGKA_LIBS_METRICS_TEST_SUPPORT_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace tongka::metrics::test_support {

// The absolute path of the executable `name`, searched on PATH and then in /usr/bin (where Debian's
// `prometheus` package puts it); "" when it is missing.
std::string FindTool(const std::string& name);

// Says which tool is missing and how to install it.
std::string MissingToolMessage(const std::string& name);

// A directory for this test's files: $TEST_TMPDIR under Bazel.
std::string TestTmpDir();

// A TCP port on 127.0.0.1 that nothing listened on a moment ago. Only for programs that cannot
// report the port they bound themselves (Prometheus); our own servers bind port 0 instead.
int PickFreeTcpPort();

struct CommandResult {
  int exit_code = -1;  // -1 when the command did not exit normally.
  std::string output;  // stdout and stderr, interleaved.
};

// Runs `argv` (argv[0] an absolute path) with `stdin_text` on its stdin and waits for it to exit.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_text);

}  // namespace tongka::metrics::test_support

#endif  // TONGKA_LIBS_METRICS_TEST_SUPPORT_H_
