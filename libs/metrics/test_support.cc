#include "libs/metrics/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tongka::metrics::test_support {
namespace {

int ExitCode(int wait_status) { return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1; }

// Runs in the forked child: only async-signal-safe calls until execv.
[[noreturn]] void ExecOrDie(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

}  // namespace

std::string FindTool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::vector<std::string> dirs = absl::StrSplit(path == nullptr ? "" : path, ':');
  dirs.push_back("/usr/bin");
  for (const std::string& dir : dirs) {
    if (dir.empty()) continue;
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string MissingToolMessage(const std::string& name) {
  return absl::StrCat(name,
                      " is not installed (neither on PATH nor in /usr/bin); run tools/setup.sh, "
                      "which installs Debian's `prometheus` package");
}

std::string TestTmpDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

int PickFreeTcpPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  PCHECK(fd >= 0) << "socket";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  PCHECK(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) << "bind";
  socklen_t length = sizeof(address);
  PCHECK(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) << "getsockname";
  close(fd);
  return ntohs(address.sin_port);
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_text) {
  CHECK(!argv.empty());
  // stdin comes from a file rather than a pipe, so a tool that writes before it has read all its
  // input cannot deadlock against us.
  std::string input_path = absl::StrCat(TestTmpDir(), "/stdin_XXXXXX");
  const int input_fd = mkstemp(input_path.data());
  PCHECK(input_fd >= 0) << "mkstemp " << input_path;
  CHECK_EQ(write(input_fd, stdin_text.data(), stdin_text.size()),
           static_cast<ssize_t>(stdin_text.size()));
  PCHECK(lseek(input_fd, 0, SEEK_SET) == 0);

  int output_pipe[2];
  PCHECK(pipe(output_pipe) == 0);
  const pid_t pid = fork();
  PCHECK(pid >= 0) << "fork";
  if (pid == 0) {
    dup2(input_fd, STDIN_FILENO);
    dup2(output_pipe[1], STDOUT_FILENO);
    dup2(output_pipe[1], STDERR_FILENO);
    close(output_pipe[0]);
    ExecOrDie(argv);
  }
  close(input_fd);
  close(output_pipe[1]);
  CommandResult result;
  char buffer[4096];
  ssize_t n;
  while ((n = read(output_pipe[0], buffer, sizeof(buffer))) > 0) result.output.append(buffer, n);
  close(output_pipe[0]);
  int status = 0;
  PCHECK(waitpid(pid, &status, 0) == pid);
  result.exit_code = ExitCode(status);
  unlink(input_path.c_str());
  return result;
}

}  // namespace tongka::metrics::test_support
