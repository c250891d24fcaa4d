#include "services/ingest/worker_pool.h"

#include <glog/logging.h>

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tongka::ingest {

absl::StatusOr<std::thread> WorkerPool::StartSystemThread(std::function<void()> body) {
  try {
    return std::thread(std::move(body));
  } catch (const std::exception& error) {  // std::system_error, or std::bad_alloc for its state
    return absl::ResourceExhaustedError(
        absl::StrCat("the system refused a thread: ", error.what()));
  }
}

WorkerPool::WorkerPool(Options options) : options_(std::move(options)) {
  CHECK_GE(options_.max_threads, 1);
  CHECK(options_.start_thread != nullptr);
}

WorkerPool::~WorkerPool() { Shutdown(); }

absl::Status WorkerPool::TrySchedule(std::function<void()> work) {
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return absl::ResourceExhaustedError("the service is shutting down its workers");
  }
  if (idle_ > 0) {
    --idle_;  // that worker's now: it takes the item from handed_
    ++busy_;
    handed_.push_back(std::move(work));
    return absl::OkStatus();
  }
  if (threads_.size() >= static_cast<size_t>(options_.max_threads)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("all ", options_.max_threads, " workers are busy"));
  }
  // Started under the lock, so Shutdown cannot miss a thread; only when the pool grows.
  absl::StatusOr<std::thread> thread = options_.start_thread(
      [this, first = std::move(work)]() mutable { WorkerLoop(std::move(first)); });
  if (!thread.ok()) {
    return absl::ResourceExhaustedError(thread.status().message());
  }
  threads_.push_back(std::move(*thread));
  ++busy_;
  return absl::OkStatus();
}

void WorkerPool::WorkerLoop(std::function<void()> first) {
  std::function<void()> work = std::move(first);
  for (;;) {
    work();
    // Destroyed before the worker counts itself idle: whatever the item holds goes with it.
    work = nullptr;
    absl::MutexLock lock(&mu_);
    --busy_;
    ++idle_;
    auto handed_or_stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !handed_.empty() || stopping_;
    };
    mu_.Await(absl::Condition(&handed_or_stopping));
    // An item handed out before Shutdown still runs: its caller was told it would.
    if (handed_.empty()) return;
    work = std::move(handed_.front());
    handed_.pop_front();
  }
}

void WorkerPool::Shutdown() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  for (std::thread& thread : threads) {
    CHECK(thread.get_id() != std::this_thread::get_id()) << "a worker shut its own pool down";
    thread.join();
  }
}

int32_t WorkerPool::threads() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int32_t>(threads_.size());
}

int32_t WorkerPool::busy() const {
  absl::MutexLock lock(&mu_);
  return busy_;
}

}  // namespace tongka::ingest
