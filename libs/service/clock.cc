#include "libs/service/clock.h"

#include <glog/logging.h>

namespace tongka::service {

const Clock* SystemClock::Get() {
  static const SystemClock* const clock = new SystemClock();
  return clock;
}

ManualClock::ManualClock()
    : ManualClock(absl::FromCivil(absl::CivilSecond(2026, 1, 1, 0, 0, 0), absl::UTCTimeZone())) {}

absl::Time ManualClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

void ManualClock::Set(absl::Time now) {
  absl::MutexLock lock(&mu_);
  now_ = now;
}

void ManualClock::Advance(absl::Duration step) {
  CHECK_GE(step, absl::ZeroDuration()) << "a ManualClock never goes back";
  absl::MutexLock lock(&mu_);
  now_ += step;
}

}  // namespace tongka::service
