// Proves the clocks' contract: the manual clock starts at its documented instant, moves only when
// told to and never back, and a function clock reads the function it adapts.
#include "libs/service/clock.h"

#include "gtest/gtest.h"

namespace tongka::service {
namespace {

TEST(ManualClockTest, StartsAtTheDocumentedInstantAndMovesOnlyWhenTold) {
  ManualClock clock;
  const absl::Time start =
      absl::FromCivil(absl::CivilSecond(2026, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  EXPECT_EQ(clock.Now(), start);
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(absl::Hours(25));
  EXPECT_EQ(clock.Now(), start + absl::Hours(25));
  clock.Set(start + absl::Hours(1));
  EXPECT_EQ(clock.Now(), start + absl::Hours(1));
}

TEST(ManualClockDeathTest, NeverGoesBack) {
  ManualClock clock;
  EXPECT_DEATH(clock.Advance(absl::Seconds(-1)), "never goes back");
}

TEST(FunctionClockTest, ReadsTheFunctionItAdapts) {
  const absl::Time fixed = absl::FromUnixSeconds(1700000000);
  FunctionClock clock([fixed] { return fixed; });
  EXPECT_EQ(clock.Now(), fixed);
  EXPECT_EQ(NowFnOf(&clock)(), fixed);
}

TEST(SystemClockTest, IsOneProcessWideClock) {
  EXPECT_EQ(SystemClock::Get(), SystemClock::Get());
  EXPECT_GT(SystemClock::Get()->Now(), absl::FromUnixSeconds(0));
}

}  // namespace
}  // namespace tongka::service
