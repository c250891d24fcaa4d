// Clock: where a service reads the time. The one seam between a service's time-dependent
// behaviour (scheduled window closes, dedup horizons, token expiry) and the wall clock, so that a
// test can move time instead of waiting for it.
//
// SystemClock reads absl::Now(). ManualClock reads a time the test sets and advances; it starts
// at a fixed, documented instant so that a test's figures do not depend on when it runs.
// FunctionClock adapts an existing `absl::Time()` function (server::NowFn).
//
// Ownership: an object that takes a `const Clock*` keeps the pointer; the clock must outlive it.
// SystemClock::Get() lives for the whole process.
// Thread-safety: Now() is safe from any thread on all three; ManualClock's Set and Advance too.
// Failure: none (reading a clock cannot fail).
//
// Example:
//   tongka::service::ManualClock clock(absl::FromCivil(absl::CivilSecond(2026, 3, 2, 23, 59, 0),
//                                                      absl::UTCTimeZone()));
//   Scheduler scheduler(&clock, ...);
//   clock.Advance(absl::Minutes(2));  // past midnight
//   scheduler.Tick();                 // sees the new day
#ifndef TONGKA_LIBS_SERVICE_CLOCK_H_
#define TONGKA_LIBS_SERVICE_CLOCK_H_

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tongka::service {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// absl::Now().
class SystemClock final : public Clock {
 public:
  // The process's one system clock (never destroyed).
  static const Clock* Get();
  absl::Time Now() const override { return absl::Now(); }
};

// A clock that moves only when told to. For tests.
class ManualClock final : public Clock {
 public:
  // 2026-01-01 00:00:00 UTC unless given a start.
  ManualClock();
  explicit ManualClock(absl::Time start) : now_(start) {}

  absl::Time Now() const override;
  void Set(absl::Time now);
  // Moves the clock forward by `step` (CHECK-fails on a negative step: time never goes back).
  void Advance(absl::Duration step);

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

// Adapts a `absl::Time()` function, for code that was handed one (server::NowFn).
class FunctionClock final : public Clock {
 public:
  explicit FunctionClock(std::function<absl::Time()> now) : now_(std::move(now)) {}
  absl::Time Now() const override { return now_(); }

 private:
  const std::function<absl::Time()> now_;
};

// A `absl::Time()` function reading `clock` (for APIs that take a server::NowFn).
inline std::function<absl::Time()> NowFnOf(const Clock* clock) {
  return [clock] { return clock->Now(); };
}

}  // namespace tongka::service

#endif  // TONGKA_LIBS_SERVICE_CLOCK_H_
