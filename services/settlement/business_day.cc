#include "services/settlement/business_day.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tongka::settlement {

absl::StatusOr<absl::CivilDay> ParseWindowId(absl::string_view window_id) {
  absl::CivilDay day;
  if (window_id.size() != 10 || !absl::ParseCivilTime(window_id, &day) ||
      WindowIdOf(day) != window_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("window_id_format: \"", window_id, "\" is not a date YYYY-MM-DD"));
  }
  if (day.year() < 2000 || day.year() > 2999) {
    return absl::InvalidArgumentError(
        absl::StrCat("window_id_format: year of \"", window_id, "\" outside 2000..2999"));
  }
  return day;
}

std::string WindowIdOf(absl::CivilDay day) {
  return absl::StrFormat("%04d-%02d-%02d", day.year(), day.month(), day.day());
}

absl::StatusOr<BusinessCalendar> BusinessCalendar::Create(absl::string_view zone_name,
                                                          absl::Duration cut) {
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(std::string(zone_name), &zone)) {
    return absl::InvalidArgumentError(
        absl::StrCat("window_zone: unknown time zone \"", zone_name, "\" (is tzdata installed?)"));
  }
  if (cut <= absl::ZeroDuration() || cut > absl::Hours(24) ||
      cut % absl::Minutes(1) != absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "window_cut: must be a whole minute in (00:00, 24:00], got ", absl::FormatDuration(cut)));
  }
  return BusinessCalendar(std::string(zone_name), zone, cut);
}

absl::Time BusinessCalendar::Start(absl::CivilDay day) const {
  return absl::FromCivil(absl::CivilSecond(day - 1) + absl::ToInt64Seconds(cut_), zone_);
}

absl::Time BusinessCalendar::End(absl::CivilDay day) const { return Start(day + 1); }

absl::CivilDay BusinessCalendar::DayOf(absl::Time recorded_at) const {
  const absl::CivilSecond local = absl::ToCivilSecond(recorded_at, zone_);
  // Shift so the cut lands on midnight: the shifted date is the window.
  absl::CivilDay day(local + (86400 - absl::ToInt64Seconds(cut_)));
  // Where the cut falls in a repeated or skipped local hour (a clock change), local time and
  // Start/End can disagree by an hour: Start/End decide, so every moment is in exactly one
  // window and the answer never depends on which path computed it.
  if (recorded_at < Start(day)) return day - 1;
  if (recorded_at >= End(day)) return day + 1;
  return day;
}

WindowSlot BusinessCalendar::SlotOf(absl::Time recorded_at) const {
  const absl::CivilDay day = DayOf(recorded_at);
  const int64_t hour = (recorded_at - Start(day)) / absl::Hours(1);
  return WindowSlot{WindowIdOf(day), static_cast<int32_t>(hour)};
}

}  // namespace tongka::settlement
