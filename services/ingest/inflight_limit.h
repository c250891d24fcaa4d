// InflightLimit: a bound on how much of something is in progress at once (calls being served,
// transactions of admitted batches), for admission control. Ingest refuses what would exceed it
// with RESOURCE_EXHAUSTED and a retry hint instead of queueing it: while Kafka is slow every
// admitted call holds a gRPC thread and its parsed request until its acks or its ack_timeout, so
// without a bound a crowd of terminals retrying against a slow broker grows threads and memory
// without end.
//
// Ownership: the limit borrows its gauge (which shows what is in use); a Ticket borrows the limit,
// which must outlive it. Thread-safety: TryAcquire and Ticket destruction may race freely (one
// atomic). Failure: TryAcquire returns an empty optional when `n` more would exceed the maximum;
// the amount in use never exceeds it (a request larger than the maximum is never admitted, so
// callers keep every request within it, as IngestConfig's bounds do).
//
// Example:
//   InflightLimit calls(1024, &metrics.calls_in_progress);
//   std::optional<InflightLimit::Ticket> ticket = calls.TryAcquire(1);
//   if (!ticket.has_value()) return absl::ResourceExhaustedError("...");
//   ...  // serve; the ticket gives the call back when it goes out of scope
#ifndef TONGKA_SERVICES_INGEST_INFLIGHT_LIMIT_H_
#define TONGKA_SERVICES_INGEST_INFLIGHT_LIMIT_H_

#include <glog/logging.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>

#include "libs/metrics/metrics.h"

namespace tongka::ingest {

class InflightLimit {
 public:
  // What one TryAcquire took; gives it back when destroyed. Movable, not copyable.
  class Ticket {
   public:
    Ticket(Ticket&& other) noexcept
        : limit_(std::exchange(other.limit_, nullptr)), n_(std::exchange(other.n_, 0)) {}
    Ticket& operator=(Ticket&& other) noexcept {
      if (this != &other) {
        Release();
        limit_ = std::exchange(other.limit_, nullptr);
        n_ = std::exchange(other.n_, 0);
      }
      return *this;
    }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { Release(); }

   private:
    friend class InflightLimit;
    Ticket(InflightLimit* limit, int64_t n) : limit_(limit), n_(n) {}
    void Release() {
      if (limit_ != nullptr) limit_->Give(n_);
      limit_ = nullptr;
      n_ = 0;
    }
    InflightLimit* limit_;
    int64_t n_;
  };

  InflightLimit(int64_t max, metrics::Gauge* in_use_gauge) : max_(max), gauge_(in_use_gauge) {
    CHECK_GT(max_, 0);
  }
  InflightLimit(const InflightLimit&) = delete;
  InflightLimit& operator=(const InflightLimit&) = delete;
  ~InflightLimit() { CHECK_EQ(in_use(), 0) << "an InflightLimit destroyed with tickets out"; }

  // Takes `n` (>= 0) if the amount in use stays within the maximum.
  std::optional<Ticket> TryAcquire(int64_t n) {
    CHECK_GE(n, 0);
    int64_t used = in_use_.load(std::memory_order_relaxed);
    do {
      if (n > max_ - used) return std::nullopt;
    } while (!in_use_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    gauge_->Add(static_cast<double>(n));
    return Ticket(this, n);
  }

  int64_t max() const { return max_; }
  int64_t in_use() const { return in_use_.load(std::memory_order_relaxed); }

 private:
  void Give(int64_t n) {
    gauge_->Add(-static_cast<double>(n));
    const int64_t before = in_use_.fetch_sub(n, std::memory_order_relaxed);
    CHECK_GE(before, n) << "gave back more than was taken";
  }

  const int64_t max_;
  metrics::Gauge* const gauge_;
  std::atomic<int64_t> in_use_{0};
};

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_INFLIGHT_LIMIT_H_
