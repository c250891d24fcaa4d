// BusinessCalendar: which settlement window (business day) a moment belongs to, under one set of
// rules (zone and cut). The rules change over time, window by window, as recorded on the log:
// RulesTimeline (settlement_rules.h) holds one calendar per period and is what the service uses.
//
// A window is one business day, named by its date "YYYY-MM-DD" in the rules' zone (genesis
// Asia/Shanghai). The day is cut at a configurable local time of day `cut` in (00:00, 24:00]:
// window D covers the local times [D-1 at cut, D at cut). With the default cut of 24:00, window D
// is exactly the local calendar day D; with a cut of 23:00, a transaction recorded at 23:30 on
// D-1 already belongs to D (clearing systems' "after the cut-off, next business day").
//
// Transactions are assigned by the platform's recorded time, never the device time: an offline
// upload that arrives days late belongs to the window of the day it was uploaded, its origin
// window. If that window has already frozen (CLOSED, SETTLED or ABORTED) by the time its money
// reaches the ledger, the money is carried to the next day's window, keeping its origin window
// and hour, and on until an OPEN or CLOSING window takes it; the id index follows the money
// (settlement_readers.h, proto/events.proto SettlementDelta).
// Hours: a transaction's hour is the whole hours elapsed since its window's start, 0..23 (24 on
// the long day of a zone that changes its clocks).
//
// Thread-safety: immutable after Create; all methods are const and thread-safe.
// Failure: Create returns INVALID_ARGUMENT naming the field (unknown zone, cut out of range);
// ParseWindowId returns INVALID_ARGUMENT "window_id_format: ...".
//
// Example:
//   auto calendar = BusinessCalendar::Create("Asia/Shanghai", absl::Hours(24));
//   WindowSlot slot = calendar->SlotOf(recorded_at);  // {"2026-11-24", 9}
#ifndef TONGKA_SERVICES_SETTLEMENT_BUSINESS_DAY_H_
#define TONGKA_SERVICES_SETTLEMENT_BUSINESS_DAY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace tongka::settlement {

struct WindowSlot {
  std::string window_id;
  int32_t hour = 0;
};

// "YYYY-MM-DD" -> the civil day, or INVALID_ARGUMENT (rule window_id_format).
absl::StatusOr<absl::CivilDay> ParseWindowId(absl::string_view window_id);
std::string WindowIdOf(absl::CivilDay day);

class BusinessCalendar {
 public:
  static absl::StatusOr<BusinessCalendar> Create(absl::string_view zone_name, absl::Duration cut);

  WindowSlot SlotOf(absl::Time recorded_at) const;
  absl::CivilDay DayOf(absl::Time recorded_at) const;
  // [Start, End) of window `day`.
  absl::Time Start(absl::CivilDay day) const;
  absl::Time End(absl::CivilDay day) const;

  const std::string& zone_name() const { return zone_name_; }
  absl::Duration cut() const { return cut_; }

 private:
  BusinessCalendar(std::string zone_name, absl::TimeZone zone, absl::Duration cut)
      : zone_name_(std::move(zone_name)), zone_(zone), cut_(cut) {}

  std::string zone_name_;
  absl::TimeZone zone_;
  absl::Duration cut_;
};

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_BUSINESS_DAY_H_
