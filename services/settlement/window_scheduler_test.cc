// Proves the scheduled window close on a manual clock, with no broker and no sleeps: before the
// cut nothing is requested; once the clock passes the cut an OPEN window is asked to go CLOSING
// (a WindowCloseRequested from platform:settlement with the request id every replica shares);
// a CLOSING window is asked to go CLOSED only close_grace after the cut; closed windows are left
// alone; and an undecided request is tried again at the next tick.
#include "services/settlement/window_scheduler.h"

#include <glog/logging.h>

#include <vector>

#include "gtest/gtest.h"
#include "libs/server/tenant.h"

namespace tongka::settlement {
namespace {

absl::TimeZone Shanghai() {
  absl::TimeZone zone;
  CHECK(absl::LoadTimeZone("Asia/Shanghai", &zone));
  return zone;
}

struct Submitted {
  std::string window_id;
  v1::Event event;
};

class WindowSchedulerTest : public ::testing::Test {
 protected:
  WindowSchedulerTest()
      : rules_(std::make_shared<const RulesTimeline>(*RulesTimeline::Create({*RulesPeriod::Make(
            "", MakeRules("Asia/Shanghai", absl::Hours(24), "default:50"), "genesis", 0)}))),
        // 2026-03-02 23:59:00 in Shanghai: a minute before window 2026-03-02 ends.
        clock_(absl::FromCivil(absl::CivilSecond(2026, 3, 2, 23, 59, 0), Shanghai())),
        scheduler_([this] { return rules_; }, &clock_, absl::Hours(2), [this] { return windows_; },
                   [this](const std::string& window_id,
                          v1::Event event) -> absl::StatusOr<RequestOutcome> {
                     submitted_.push_back({window_id, std::move(event)});
                     if (!decide_) return absl::UnavailableError("the ledger has not decided yet");
                     RequestOutcome outcome;
                     outcome.set_accepted(true);
                     return outcome;
                   }) {}

  void SetWindow(const std::string& id, v1::WindowState state) {
    WindowRecord record;
    record.set_state(state);
    windows_ = {{id, record}};
  }

  std::shared_ptr<const RulesTimeline> rules_;
  service::ManualClock clock_;
  WindowScheduler::Windows windows_;
  std::vector<Submitted> submitted_;
  bool decide_ = true;
  WindowScheduler scheduler_;
};

TEST_F(WindowSchedulerTest, AnOpenWindowIsAskedToCloseOnceTheClockPassesTheCut) {
  const std::string window_id = rules_->SlotOf(clock_.Now()).window_id;
  ASSERT_EQ(window_id, "2026-03-02");
  SetWindow(window_id, v1::WINDOW_STATE_OPEN);

  EXPECT_EQ(scheduler_.Tick(), 0) << "requested before the cut";
  EXPECT_TRUE(submitted_.empty());

  clock_.Advance(absl::Minutes(1));  // exactly the cut: 2026-03-03 00:00 Shanghai
  EXPECT_EQ(scheduler_.Tick(), 1);
  ASSERT_EQ(submitted_.size(), 1u);
  EXPECT_EQ(submitted_[0].window_id, window_id);
  const v1::Event& event = submitted_[0].event;
  ASSERT_TRUE(event.has_window_close_requested());
  EXPECT_EQ(event.window_close_requested().window_id(), window_id);
  EXPECT_EQ(event.window_close_requested().target_state(), v1::WINDOW_STATE_CLOSING);
  EXPECT_EQ(event.window_close_requested().request_id(), "schedule-2026-03-02-closing");
  EXPECT_EQ(server::TenantName(event.source()), "platform:settlement");
  EXPECT_EQ(event.event_id(), "cmd/platform:settlement/schedule-2026-03-02-closing");
}

TEST_F(WindowSchedulerTest, AClosingWindowIsAskedToCloseForGoodOnlyAfterTheGrace) {
  SetWindow("2026-03-02", v1::WINDOW_STATE_CLOSING);
  clock_.Advance(absl::Minutes(1) + absl::Hours(2) - absl::Seconds(1));
  EXPECT_EQ(scheduler_.Tick(), 0) << "requested CLOSED inside the grace";

  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(scheduler_.Tick(), 1);
  ASSERT_EQ(submitted_.size(), 1u);
  EXPECT_EQ(submitted_[0].event.window_close_requested().target_state(), v1::WINDOW_STATE_CLOSED);
  EXPECT_EQ(submitted_[0].event.window_close_requested().request_id(),
            "schedule-2026-03-02-closed");
}

TEST_F(WindowSchedulerTest, ClosedWindowsAreLeftAlone) {
  SetWindow("2026-03-02", v1::WINDOW_STATE_CLOSED);
  clock_.Advance(absl::Hours(48));
  EXPECT_EQ(scheduler_.Tick(), 0);
  EXPECT_TRUE(submitted_.empty());
}

TEST_F(WindowSchedulerTest, AnUndecidedRequestIsSentAgainWithTheSameIdAtTheNextTick) {
  SetWindow("2026-03-02", v1::WINDOW_STATE_OPEN);
  clock_.Advance(absl::Minutes(5));
  decide_ = false;
  EXPECT_EQ(scheduler_.Tick(), 1);
  decide_ = true;
  EXPECT_EQ(scheduler_.Tick(), 1);
  ASSERT_EQ(submitted_.size(), 2u);
  EXPECT_EQ(submitted_[0].event.event_id(), submitted_[1].event.event_id());
}

}  // namespace
}  // namespace tongka::settlement
