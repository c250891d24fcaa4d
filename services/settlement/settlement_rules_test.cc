// Proves RulesTimeline: windows tile time with no gap and no overlap across rule changes (cut and
// zone moved both ways), each window has its own period's fees, a change's first window starts
// where the old rules ended the day before, and ScheduleChange enforces the lead time, the
// transition bounds and replacement of later periods. Times are fixed instants, no clock.
#include "services/settlement/settlement_rules.h"

#include <glog/logging.h>

#include <random>

#include "absl/time/civil_time.h"
#include "gtest/gtest.h"

namespace tongka::settlement {
namespace {

const absl::TimeZone kShanghai = [] {
  absl::TimeZone zone;
  CHECK(absl::LoadTimeZone("Asia/Shanghai", &zone));
  return zone;
}();

absl::Time Local(int y, int m, int d, int hh, int mm = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, 0), kShanghai);
}

RulesPeriod Period(const std::string& window, const std::string& zone, int cut_minutes,
                   const std::string& fees) {
  v1::SettlementRules rules;
  rules.set_zone(zone);
  rules.set_cut_minutes(cut_minutes);
  rules.set_fee_schedule(fees);
  absl::StatusOr<RulesPeriod> period =
      RulesPeriod::Make(window, rules, window.empty() ? "genesis" : "change/" + window, 0);
  CHECK(period.ok()) << period.status();
  return *period;
}

RulesTimeline Timeline(std::vector<RulesPeriod> periods) {
  absl::StatusOr<RulesTimeline> timeline = RulesTimeline::Create(std::move(periods));
  CHECK(timeline.ok()) << timeline.status();
  return *timeline;
}

// Every moment of [from, to) in steps of `step` lies in exactly the window DayOf names, and
// consecutive windows touch.
void ExpectTiles(const RulesTimeline& timeline, absl::Time from, absl::Time to,
                 absl::Duration step) {
  for (absl::Time at = from; at < to; at += step) {
    const absl::CivilDay day = timeline.DayOf(at);
    EXPECT_LE(timeline.Start(day), at) << absl::FormatTime(at);
    EXPECT_LT(at, timeline.End(day)) << absl::FormatTime(at);
    EXPECT_EQ(timeline.End(day), timeline.Start(day + 1)) << day;
    const WindowSlot slot = timeline.SlotOf(at);
    EXPECT_EQ(slot.window_id, WindowIdOf(day));
    EXPECT_GE(slot.hour, 0);
    EXPECT_LT(slot.hour, kWindowHoursMax);
  }
}

TEST(SettlementRulesTest, GenesisOnlyIsTheCalendar) {
  const RulesTimeline timeline = Timeline({Period("", "Asia/Shanghai", 23 * 60, "default:50")});
  const BusinessCalendar& calendar = timeline.periods()[0].calendar();
  std::mt19937_64 random(7);
  for (int i = 0; i < 2000; ++i) {
    const absl::Time at = Local(2026, 1, 1, 0) + absl::Seconds(random() % (400LL * 86400));
    const WindowSlot want = calendar.SlotOf(at);
    const WindowSlot got = timeline.SlotOf(at);
    EXPECT_EQ(got.window_id, want.window_id);
    EXPECT_EQ(got.hour, want.hour);
  }
}

TEST(SettlementRulesTest, EarlierCutShortensTheFirstWindowOfTheChange) {
  const RulesTimeline timeline =
      Timeline({Period("", "Asia/Shanghai", 24 * 60, "default:50"),
                Period("2026-12-10", "Asia/Shanghai", 23 * 60, "default:40")});
  const absl::CivilDay w(2026, 12, 10);
  EXPECT_EQ(timeline.Start(w - 1), Local(2026, 12, 9, 0));
  EXPECT_EQ(timeline.End(w - 1), Local(2026, 12, 10, 0));
  EXPECT_EQ(timeline.Start(w), Local(2026, 12, 10, 0));
  EXPECT_EQ(timeline.End(w), Local(2026, 12, 10, 23));  // 23 hours
  EXPECT_EQ(timeline.Start(w + 1), Local(2026, 12, 10, 23));
  EXPECT_EQ(timeline.SlotOf(Local(2026, 12, 10, 23, 30)).window_id, "2026-12-11");
  EXPECT_EQ(timeline.For(w - 1).fees().BasisPoints(310000, v1::TRANSPORT_MODE_BUS), 50);
  EXPECT_EQ(timeline.For(w).fees().BasisPoints(310000, v1::TRANSPORT_MODE_BUS), 40);
  EXPECT_EQ(timeline.For(w + 30).fees().BasisPoints(310000, v1::TRANSPORT_MODE_BUS), 40);
  ExpectTiles(timeline, Local(2026, 12, 5, 0), Local(2026, 12, 15, 0), absl::Minutes(17));
}

TEST(SettlementRulesTest, LaterCutLengthensTheFirstWindowOfTheChange) {
  const RulesTimeline timeline =
      Timeline({Period("", "Asia/Shanghai", 23 * 60, "default:50"),
                Period("2026-12-10", "Asia/Shanghai", 24 * 60, "default:50")});
  const absl::CivilDay w(2026, 12, 10);
  EXPECT_EQ(timeline.Start(w), Local(2026, 12, 9, 23));
  EXPECT_EQ(timeline.End(w), Local(2026, 12, 11, 0));  // 25 hours
  // 23:30 on the 9th: under the old cut already the 10th; under the new calendar the 9th,
  // which the old rules own: it belongs to the transition window, hour 0.
  WindowSlot slot = timeline.SlotOf(Local(2026, 12, 9, 23, 30));
  EXPECT_EQ(slot.window_id, "2026-12-10");
  EXPECT_EQ(slot.hour, 0);
  slot = timeline.SlotOf(Local(2026, 12, 10, 23, 30));
  EXPECT_EQ(slot.window_id, "2026-12-10");
  EXPECT_EQ(slot.hour, 24);
  ExpectTiles(timeline, Local(2026, 12, 5, 0), Local(2026, 12, 15, 0), absl::Minutes(13));
}

TEST(SettlementRulesTest, ZoneChangeMovesTheCut) {
  // Urumqi is UTC+6: its midnight is 02:00 in Shanghai, so the transition window lasts 26 hours.
  const RulesTimeline timeline =
      Timeline({Period("", "Asia/Shanghai", 24 * 60, "default:50"),
                Period("2026-12-10", "Asia/Urumqi", 24 * 60, "default:50")});
  const absl::CivilDay w(2026, 12, 10);
  EXPECT_EQ(timeline.Start(w), Local(2026, 12, 10, 0));
  EXPECT_EQ(timeline.End(w), Local(2026, 12, 11, 2));
  EXPECT_EQ(timeline.SlotOf(Local(2026, 12, 11, 1, 59)).hour, 25);
  ExpectTiles(timeline, Local(2026, 12, 5, 0), Local(2026, 12, 20, 0), absl::Minutes(11));
}

// A cut inside the hour a clock change repeats (Berlin, 2026-10-25 02:00-03:00 twice) and inside
// the hour it skips (2026-03-29 02:00-03:00): windows still tile time, and the cache agrees.
TEST(SettlementRulesTest, ClockChangesAtTheCutStillTile) {
  const RulesTimeline timeline = Timeline({Period("", "Europe/Berlin", 2 * 60 + 30, "default:50")});
  const absl::Time autumn = absl::FromUnixSeconds(1792800000);  // 2026-10-24 00:00 UTC
  ExpectTiles(timeline, autumn, autumn + absl::Hours(30), absl::Minutes(7));
  const absl::Time spring = absl::FromUnixSeconds(1774720000);  // 2026-03-28 17:46 UTC
  ExpectTiles(timeline, spring, spring + absl::Hours(30), absl::Minutes(7));
  SlotCache cache(&timeline);
  for (absl::Time at : {autumn, spring}) {
    for (absl::Time t = at; t < at + absl::Hours(30); t += absl::Minutes(5)) {
      int32_t hour = -1;
      const RulesPeriod* period = nullptr;
      EXPECT_EQ(cache.Lookup(absl::ToUnixMicros(t), &hour, &period), timeline.SlotOf(t).window_id)
          << absl::FormatTime(t);
      EXPECT_EQ(hour, timeline.SlotOf(t).hour);
    }
  }
}

TEST(SettlementRulesTest, ScheduleChangeNeedsTheLeadTime) {
  const RulesTimeline timeline = Timeline({Period("", "Asia/Shanghai", 24 * 60, "default:50")});
  const RulesPeriod change = Period("2026-12-10", "Asia/Shanghai", 24 * 60, "default:60");
  // Window 2026-12-10 starts at 00:00 on the 10th: a request at 00:00:01 on the 9th is too late.
  absl::StatusOr<RulesTimeline> late =
      timeline.ScheduleChange(change, Local(2026, 12, 9, 0) + absl::Seconds(1));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(late.status().message().find("effective_window_too_soon"), std::string::npos);
  absl::StatusOr<RulesTimeline> in_time = timeline.ScheduleChange(change, Local(2026, 12, 9, 0));
  ASSERT_TRUE(in_time.ok()) << in_time.status();
  EXPECT_EQ(in_time->periods().size(), 2u);
  EXPECT_EQ(in_time->For(absl::CivilDay(2026, 12, 10)).rules_id(), "change/2026-12-10");
}

TEST(SettlementRulesTest, ScheduleChangeReplacesLaterPeriods) {
  const RulesTimeline timeline =
      Timeline({Period("", "Asia/Shanghai", 24 * 60, "default:50"),
                Period("2026-12-10", "Asia/Shanghai", 24 * 60, "default:60"),
                Period("2026-12-20", "Asia/Shanghai", 24 * 60, "default:70")});
  absl::StatusOr<RulesTimeline> moved = timeline.ScheduleChange(
      Period("2026-12-12", "Asia/Shanghai", 24 * 60, "default:55"), Local(2026, 12, 1, 0));
  ASSERT_TRUE(moved.ok()) << moved.status();
  ASSERT_EQ(moved->periods().size(), 3u);
  EXPECT_EQ(moved->periods()[1].effective_window_id(), "2026-12-10");
  EXPECT_EQ(moved->periods()[2].effective_window_id(), "2026-12-12");
  EXPECT_EQ(moved->For(absl::CivilDay(2026, 12, 25)).rules().fee_schedule(), "default:55");
  // The genesis cannot be scheduled again.
  absl::StatusOr<RulesTimeline> genesis = timeline.ScheduleChange(
      Period("", "Asia/Shanghai", 24 * 60, "default:50"), Local(2026, 12, 1, 0));
  ASSERT_FALSE(genesis.ok());
  EXPECT_NE(genesis.status().message().find("rules_genesis_set"), std::string::npos);
}

TEST(SettlementRulesTest, TransitionWindowMustLastOneToFortyEightHours) {
  const RulesTimeline timeline = Timeline({Period("", "Asia/Shanghai", 1, "default:50")});
  // Cut at 00:01 in Shanghai, then 24:00 in Honolulu (UTC-10): about 66 hours.
  absl::StatusOr<RulesTimeline> longer = timeline.ScheduleChange(
      Period("2026-12-10", "Pacific/Honolulu", 24 * 60, "default:50"), Local(2026, 12, 1, 0));
  ASSERT_FALSE(longer.ok());
  EXPECT_NE(longer.status().message().find("transition_window"), std::string::npos);
  // Cut at 24:00 in Shanghai, then 00:01 at Kiritimati (UTC+14): it would end before it began.
  const RulesTimeline midnight = Timeline({Period("", "Asia/Shanghai", 24 * 60, "default:50")});
  absl::StatusOr<RulesTimeline> empty = midnight.ScheduleChange(
      Period("2026-12-10", "Pacific/Kiritimati", 1, "default:50"), Local(2026, 12, 1, 0));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("transition_window"), std::string::npos);
}

TEST(SettlementRulesTest, MakeNamesTheFieldAndCanonicalisesFees) {
  v1::SettlementRules rules = MakeRules("Asia/Shanghai", absl::Hours(24), "310000:60,default:50");
  absl::StatusOr<RulesPeriod> period = RulesPeriod::Make("", rules, "id", 0);
  ASSERT_TRUE(period.ok()) << period.status();
  EXPECT_EQ(period->rules().fee_schedule(), "default:50,310000:60");
  EXPECT_EQ(period->rules().cut_minutes(), 1440);
  EXPECT_EQ(period->Describe(), "zone Asia/Shanghai, cut 24:00, fees default:50,310000:60");

  struct Bad {
    std::string window, zone;
    int cut;
    std::string fees, field;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"", "Mars/Olympus", 1440, "default:50", "zone"},
           {"", "Asia/Shanghai", 0, "default:50", "cut_minutes"},
           {"", "Asia/Shanghai", 1441, "default:50", "cut_minutes"},
           {"", "Asia/Shanghai", 1440, "default:x", "fee_schedule"},
           {"2026-13-01", "Asia/Shanghai", 1440, "default:50", "effective_window_id"}}) {
    v1::SettlementRules r;
    r.set_zone(bad.zone);
    r.set_cut_minutes(bad.cut);
    r.set_fee_schedule(bad.fees);
    absl::StatusOr<RulesPeriod> made = RulesPeriod::Make(bad.window, r, "id", 0);
    ASSERT_FALSE(made.ok()) << bad.field;
    EXPECT_EQ(made.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(made.status().message().find(bad.field), 0u) << made.status();
  }
}

TEST(SettlementRulesTest, SlotCacheAgreesWithTheTimelineAcrossChanges) {
  const RulesTimeline timeline =
      Timeline({Period("", "Asia/Shanghai", 24 * 60, "default:50"),
                Period("2026-12-10", "Asia/Shanghai", 23 * 60, "default:40"),
                Period("2026-12-12", "Asia/Urumqi", 24 * 60, "default:30")});
  SlotCache cache(&timeline);
  std::mt19937_64 random(11);
  absl::Time at = Local(2026, 12, 8, 0);
  for (int i = 0; i < 5000; ++i) {
    at += absl::Seconds(random() % 600);
    if (random() % 50 == 0) at -= absl::Hours(30);  // a late one
    const WindowSlot want = timeline.SlotOf(at);
    int32_t hour = -1;
    const RulesPeriod* period = nullptr;
    EXPECT_EQ(cache.Lookup(absl::ToUnixMicros(at), &hour, &period), want.window_id);
    EXPECT_EQ(hour, want.hour);
    EXPECT_EQ(period, &timeline.For(*ParseWindowId(want.window_id)));
  }
}

}  // namespace
}  // namespace tongka::settlement
