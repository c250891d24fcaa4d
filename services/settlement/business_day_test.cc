// Proves window assignment around the cut: the default cut is local midnight in Asia/Shanghai
// (UTC+8), a 23:00 cut moves the last hour into the next business day, hours count from the
// window's start, and bad window ids and configs are refused by name.
#include "services/settlement/business_day.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace tongka::settlement {
namespace {

absl::Time Utc(int y, int mo, int d, int h, int mi, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

TEST(BusinessDayTest, DefaultCutIsShanghaiMidnight) {
  auto calendar = BusinessCalendar::Create("Asia/Shanghai", absl::Hours(24));
  ASSERT_TRUE(calendar.ok()) << calendar.status();
  // 2026-11-24 00:00 +08:00 == 2026-11-23 16:00 UTC.
  WindowSlot before = calendar->SlotOf(Utc(2026, 11, 23, 15, 59, 59));
  EXPECT_EQ(before.window_id, "2026-11-23");
  EXPECT_EQ(before.hour, 23);
  WindowSlot at = calendar->SlotOf(Utc(2026, 11, 23, 16, 0, 0));
  EXPECT_EQ(at.window_id, "2026-11-24");
  EXPECT_EQ(at.hour, 0);
  EXPECT_EQ(calendar->Start(absl::CivilDay(2026, 11, 24)), Utc(2026, 11, 23, 16, 0));
  EXPECT_EQ(calendar->End(absl::CivilDay(2026, 11, 24)), Utc(2026, 11, 24, 16, 0));
}

TEST(BusinessDayTest, AnEarlierCutMovesTheLastHourToTheNextDay) {
  auto calendar = BusinessCalendar::Create("Asia/Shanghai", absl::Hours(23));
  ASSERT_TRUE(calendar.ok());
  // 22:59:59 local on the 24th is still the 24th; 23:00 is the 25th's first hour.
  EXPECT_EQ(calendar->SlotOf(Utc(2026, 11, 24, 14, 59, 59)).window_id, "2026-11-24");
  WindowSlot after = calendar->SlotOf(Utc(2026, 11, 24, 15, 0, 0));
  EXPECT_EQ(after.window_id, "2026-11-25");
  EXPECT_EQ(after.hour, 0);
  EXPECT_EQ(calendar->Start(absl::CivilDay(2026, 11, 25)), Utc(2026, 11, 24, 15, 0));
}

TEST(BusinessDayTest, RefusesBadIdsAndConfig) {
  EXPECT_TRUE(ParseWindowId("2026-11-24").ok());
  for (const char* bad : {"2026-11-31", "2026-1-24", "20261124", "", "2026-11-24x", "1999-01-01"}) {
    absl::StatusOr<absl::CivilDay> day = ParseWindowId(bad);
    EXPECT_EQ(day.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(day.status().message().find("window_id_format"), std::string::npos) << bad;
  }
  EXPECT_EQ(BusinessCalendar::Create("Mars/Olympus", absl::Hours(24)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(BusinessCalendar::Create("Asia/Shanghai", absl::ZeroDuration()).ok());
  EXPECT_FALSE(BusinessCalendar::Create("Asia/Shanghai", absl::Hours(25)).ok());
  EXPECT_FALSE(BusinessCalendar::Create("Asia/Shanghai", absl::Seconds(90)).ok());
}

}  // namespace
}  // namespace tongka::settlement
