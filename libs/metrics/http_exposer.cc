#include "libs/metrics/http_exposer.h"

#include <glog/logging.h>
#include <httplib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tongka::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// getrusage counts to the microsecond, finer than /proc/self/stat's clock ticks.
double ProcessCpuSeconds() {
  rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) {
    LOG_FIRST_N(WARNING, 1) << "getrusage failed; process_cpu_seconds_total reads NaN";
    return kNaN;
  }
  const auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// /proc/self/statm: "size resident shared text lib data dt", in pages.
double ProcessResidentMemoryBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size_pages = 0;
  int64_t resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) {
    LOG_FIRST_N(WARNING, 1)
        << "cannot read /proc/self/statm; process_resident_memory_bytes reads NaN";
    return kNaN;
  }
  return static_cast<double>(resident_pages) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

// Boot time (/proc/stat "btime") plus the process' start, in clock ticks after boot (field 22 of
// /proc/self/stat), which is how the Go client computes it too.
double ProcessStartTimeSeconds() {
  std::ifstream proc_stat("/proc/stat");
  std::string line;
  int64_t boot_time_seconds = -1;
  while (std::getline(proc_stat, line)) {
    if (line.rfind("btime ", 0) == 0) {
      boot_time_seconds = std::stoll(line.substr(6));
      break;
    }
  }
  std::ifstream self_stat("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(self_stat)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may contain spaces or ')', so fields are
  // counted from the last ')': it is followed by field 3.
  const size_t name_end = stat.rfind(')');
  if (boot_time_seconds < 0 || name_end == std::string::npos) {
    LOG(WARNING)
        << "cannot read /proc/stat or /proc/self/stat; process_start_time_seconds reads NaN";
    return kNaN;
  }
  std::istringstream fields(stat.substr(name_end + 1));
  std::string field;
  for (int i = 3; i < 22; ++i) fields >> field;
  int64_t start_ticks = 0;
  if (!(fields >> start_ticks)) {
    LOG(WARNING) << "cannot parse /proc/self/stat; process_start_time_seconds reads NaN";
    return kNaN;
  }
  return static_cast<double>(boot_time_seconds) +
         static_cast<double>(start_ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

HttpExposer::HttpExposer(Registry* registry, HttpExposerOptions options)
    : registry_(registry), options_(std::move(options)) {
  CHECK(registry_ != nullptr);
  // The start time never changes, so it is read once rather than per scrape.
  const double start_time_seconds = ProcessStartTimeSeconds();
  process_metrics_.push_back(registry_->AddCallbackGauge(
      "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
      [start_time_seconds] { return start_time_seconds; }));
  process_metrics_.push_back(registry_->AddCallbackGauge("process_resident_memory_bytes",
                                                         "Resident memory size in bytes.",
                                                         ProcessResidentMemoryBytes));
  process_metrics_.push_back(registry_->AddCallbackCounter(
      "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
      ProcessCpuSeconds));
}

HttpExposer::~HttpExposer() { Stop(); }

absl::Status HttpExposer::Start() {
  if (options_.host.empty()) {
    return absl::InvalidArgumentError("HttpExposerOptions.host must not be empty");
  }
  if (options_.port < 0 || options_.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("HttpExposerOptions.port must be in 0..65535, got ", options_.port));
  }
  if (options_.worker_threads < 1 || options_.worker_threads > 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HttpExposerOptions.worker_threads must be in 1..16, got ", options_.worker_threads));
  }
  if (server_ != nullptr) return absl::FailedPreconditionError("HttpExposer already started");

  auto server = std::make_unique<httplib::Server>();
  // httplib's default pool has at least 8 threads; a scrape endpoint needs far fewer.
  const size_t worker_threads = options_.worker_threads;
  server->new_task_queue = [worker_threads] { return new httplib::ThreadPool(worker_threads); };
  // A worker holding a keep-alive connection only notices Stop when the connection times out, so
  // every response closes its connection; a new TCP connection per scrape costs nothing here.
  server->set_keep_alive_max_count(1);
  // httplib's default sets SO_REUSEPORT, which lets a second process bind the same port and
  // silently take half the scrapes. SO_REUSEADDR alone still allows a quick restart.
  server->set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server->set_keep_alive_timeout(2);
  server->set_read_timeout(5);
  server->set_write_timeout(5);
  server->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry_->ExpositionText(), kTextContentType);
  });
  server->Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok", "text/plain; charset=utf-8");
  });
  server->Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    const bool ready = ready_.load(std::memory_order_acquire);
    response.status = ready ? 200 : 503;
    response.set_content(ready ? "ready" : "not ready", "text/plain; charset=utf-8");
  });

  int port = -1;
  if (options_.port == 0) {
    port = server->bind_to_any_port(options_.host);
  } else if (server->bind_to_port(options_.host, options_.port)) {
    port = options_.port;
  }
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot bind the metrics endpoint to ",
                                               options_.host, ":", options_.port,
                                               " (port in use, or host is not a local address)"));
  }

  server_ = std::move(server);
  listener_returned_.store(false);
  listener_ = std::thread([this] {
    server_->listen_after_bind();
    listener_returned_.store(true);
  });
  // httplib's stop() does nothing until the listener loop has started, so a Stop right after Start
  // could otherwise leave the thread accepting forever. This wait is short: the loop starts at
  // once.
  while (!server_->is_running() && !listener_returned_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (listener_returned_.load()) {
    listener_.join();
    return absl::UnavailableError(
        absl::StrCat("the metrics endpoint on ", options_.host, ":", port, " stopped at once"));
  }
  port_.store(port, std::memory_order_release);
  LOG(INFO) << "serving /metrics on " << options_.host << ":" << port;
  return absl::OkStatus();
}

void HttpExposer::Stop() {
  if (!listener_.joinable()) return;
  server_->stop();
  listener_.join();
}

}  // namespace tongka::metrics
