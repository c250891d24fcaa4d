// WorkerPool: the threads that run work which blocks for long (a stream batch's IngestApi::Upload
// waits up to ack_timeout for Kafka), owned by the IngestService that uses them and joined when
// it is destroyed, so no such thread outlives what it points into.
//
// A work item runs at once on an idle worker, or on a new one while fewer than `max_threads`
// exist. There is no queue, because a queued batch would wait behind others that wait for Kafka:
// work that finds no worker is refused at once with RESOURCE_EXHAUSTED naming the reason (all
// `max_threads` busy, the system refused a thread, or the pool is shutting down), and the caller
// fails that work instead of doing it. Workers are started on demand and stay until Shutdown, so
// the pool holds as many threads as the most work items that ever ran at once.
//
// Ownership: a work item is destroyed on its worker right after it returns, before the worker
// takes the next one. Thread-safety: TrySchedule from any thread, work items included; Shutdown
// (and the destructor) from a thread that is not one of the pool's workers.
//
// Example:
//   WorkerPool pool({.max_threads = 1024});
//   absl::Status started = pool.TrySchedule([batch] { Serve(batch); });
//   if (!started.ok()) Fail(batch, started);  // nothing of it ran
//   ...
//   pool.Shutdown();  // waits for the running items, joins the workers
#ifndef TONGKA_SERVICES_INGEST_WORKER_POOL_H_
#define TONGKA_SERVICES_INGEST_WORKER_POOL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace tongka::ingest {

class WorkerPool {
 public:
  // Starts a thread running `body`, or RESOURCE_EXHAUSTED naming why the system refused one.
  using StartThreadFn = std::function<absl::StatusOr<std::thread>(std::function<void()> body)>;
  // std::thread, its std::system_error (or std::bad_alloc) turned into RESOURCE_EXHAUSTED.
  static absl::StatusOr<std::thread> StartSystemThread(std::function<void()> body);

  struct Options {
    // The most workers, so the most work items running at once. At least 1.
    int32_t max_threads = 1024;
    // How a worker's thread is started; tests inject refusals here.
    StartThreadFn start_thread = StartSystemThread;
  };

  explicit WorkerPool(Options options);
  // Shutdown.
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `work` on a worker of its own; RESOURCE_EXHAUSTED (and `work` never runs) when none is
  // idle and no new one can be started, or after Shutdown began.
  absl::Status TrySchedule(std::function<void()> work);

  // Refuses new work, waits for the work items already handed out to return, and joins every
  // worker. Idempotent.
  void Shutdown();

  // Workers started and not yet joined, and work items handed out that have not returned (for
  // tests and diagnosis).
  int32_t threads() const;
  int32_t busy() const;

 private:
  // A worker's life: `first`, then each item handed to it while idle, until Shutdown.
  void WorkerLoop(std::function<void()> first);

  const Options options_;
  mutable absl::Mutex mu_;
  // Items handed to idle workers and not yet picked up; never more than the idle workers.
  std::deque<std::function<void()>> handed_ ABSL_GUARDED_BY(mu_);
  int32_t idle_ ABSL_GUARDED_BY(mu_) = 0;  // workers waiting with no item handed to them
  int32_t busy_ ABSL_GUARDED_BY(mu_) = 0;  // items handed out that have not returned
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_WORKER_POOL_H_
