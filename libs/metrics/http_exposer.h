// HttpExposer: the HTTP endpoint Prometheus scrapes. It serves a Registry's text exposition on
// `GET /metrics`, answers `GET /healthz` with 200 "ok" (alive) and `GET /readyz` with 200 "ready"
// or 503 "not ready" (the owner's readiness: Kubernetes probes use both), from its own listener
// thread (cpp-httplib) and a small worker pool. It also adds the standard process metrics to the
// Registry: `process_start_time_seconds`, `process_resident_memory_bytes` and
// `process_cpu_seconds_total`.
//
// Ownership: the exposer keeps a pointer to the Registry, which must outlive it. The process
// metrics are callback metrics owned by the exposer and removed from the Registry when it is
// destroyed; hence one HttpExposer per Registry (a second one CHECK-fails on the duplicate names).
//
// Thread-safety: Start and Stop are called by the owner, not concurrently with each other; port()
// may be read from any thread after Start. Requests are served on the exposer's own threads.
//
// Failure behaviour: Start returns INVALID_ARGUMENT for bad options (the message names the field),
// FAILED_PRECONDITION when already started, and UNAVAILABLE when it cannot bind (port in use, host
// not local), so a service can refuse to start. Stop is idempotent and returns once the listener
// and every worker have finished; keep-alive is off so that an idle scraper cannot delay it. If
// /proc cannot be read, the affected process metric reads NaN and a warning is logged once.
//
// Example:
//   tongka::metrics::Registry registry;
//   tongka::metrics::HttpExposerOptions options;
//   options.port = 9464;
//   tongka::metrics::HttpExposer exposer(&registry, options);
//   absl::Status status = exposer.Start();
//   if (!status.ok()) return status;
//   LOG(INFO) << "metrics on :" << exposer.port();
//   ...
//   exposer.Stop();  // Or let the destructor do it.

#ifndef TONGKA_LIBS_METRICS_HTTP_EXPOSER_H_
#define TONGKA_LIBS_METRICS_HTTP_EXPOSER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "libs/metrics/metrics.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace tongka::metrics {

struct HttpExposerOptions {
  // The address to listen on: "0.0.0.0" for every interface, "127.0.0.1" for this host only.
  std::string host = "0.0.0.0";
  // The TCP port, 0..65535. 0 asks the kernel for a free port; read it back with port(). Services
  // set their own fixed port in their config.
  int port = 0;
  // Threads that serve requests, 1..16. Scrapes are rare and cheap, so two are plenty.
  int worker_threads = 2;
};

class HttpExposer {
 public:
  // Registers the process metrics in `registry`, which must outlive the exposer.
  HttpExposer(Registry* registry, HttpExposerOptions options);
  HttpExposer(const HttpExposer&) = delete;
  HttpExposer& operator=(const HttpExposer&) = delete;
  // Stops the server if it is running.
  ~HttpExposer();

  // Binds the port and starts serving. When it returns OK the socket is bound and the listener
  // thread is accepting connections.
  absl::Status Start();

  // The bound port (the kernel's choice when options.port was 0), or -1 before a successful Start.
  int port() const { return port_.load(std::memory_order_acquire); }

  // Stops accepting, lets in-flight requests finish, and joins the threads. Idempotent.
  void Stop();

  // What /readyz reports. Starts not ready; the owner flips it (e.g. once a consumer has caught up
  // with its log). Thread-safe.
  void SetReady(bool ready) { ready_.store(ready, std::memory_order_release); }

 private:
  Registry* const registry_;
  const HttpExposerOptions options_;
  std::vector<CallbackRegistration> process_metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  std::atomic<bool> listener_returned_{false};
  std::atomic<int> port_{-1};
  std::atomic<bool> ready_{false};
};

}  // namespace tongka::metrics

#endif  // TONGKA_LIBS_METRICS_HTTP_EXPOSER_H_
