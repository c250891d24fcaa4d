// Proves the worker pool that runs a stream's batches: every item scheduled runs exactly once;
// an idle worker is reused rather than a thread started; beyond max_threads busy workers, and
// when the system refuses a thread, TrySchedule fails RESOURCE_EXHAUSTED naming why and the
// item never runs, and the pool serves again once a worker is free; Shutdown waits for the items
// running and handed out, joins every worker (no thread of the pool runs after it), and refuses
// work afterwards. Items block on notifications the test controls; no timed assertions.
#include "services/ingest/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace tongka::ingest {
namespace {

// Waits (up to 30 s) until `done` holds; false if it never did.
bool Eventually(const std::function<bool()>& done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST(WorkerPoolTest, RunsEveryItemOnceAndReusesAnIdleWorker) {
  WorkerPool pool({.max_threads = 4});
  std::atomic<int> runs{0};
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(pool.TrySchedule([&runs] { runs.fetch_add(1); }).ok()) << i;
    // One at a time: each item finds the worker the one before it left idle.
    ASSERT_TRUE(Eventually([&pool] { return pool.busy() == 0; })) << i;
  }
  EXPECT_EQ(runs.load(), 100);
  EXPECT_EQ(pool.threads(), 1);
}

TEST(WorkerPoolTest, BeyondMaxThreadsBusyItIsRefusedUntilOneIsFree) {
  WorkerPool pool({.max_threads = 2});
  absl::Notification release;
  std::atomic<int> runs{0};
  auto blocking = [&] {
    release.WaitForNotification();
    runs.fetch_add(1);
  };
  ASSERT_TRUE(pool.TrySchedule(blocking).ok());
  ASSERT_TRUE(pool.TrySchedule(blocking).ok());
  bool ran_refused = false;
  const absl::Status refused = pool.TrySchedule([&ran_refused] { ran_refused = true; });
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "all 2 workers are busy")) << refused;
  release.Notify();
  ASSERT_TRUE(Eventually([&pool] { return pool.busy() == 0; }));
  EXPECT_TRUE(pool.TrySchedule([&runs] { runs.fetch_add(1); }).ok());
  pool.Shutdown();
  EXPECT_EQ(runs.load(), 3);
  EXPECT_FALSE(ran_refused);
}

TEST(WorkerPoolTest, AThreadTheSystemRefusesFailsThatItemAlone) {
  std::atomic<int> starts{0};
  WorkerPool pool(
      {.max_threads = 4,
       .start_thread = [&starts](std::function<void()> body) -> absl::StatusOr<std::thread> {
         if (starts.fetch_add(1) == 1) {
           return absl::ResourceExhaustedError("thread limit (test)");
         }
         return WorkerPool::StartSystemThread(std::move(body));
       }});
  absl::Notification release;
  std::atomic<int> runs{0};
  auto blocking = [&] {
    release.WaitForNotification();
    runs.fetch_add(1);
  };
  ASSERT_TRUE(pool.TrySchedule(blocking).ok());
  const absl::Status refused = pool.TrySchedule(blocking);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "thread limit (test)")) << refused;
  EXPECT_TRUE(pool.TrySchedule(blocking).ok());  // the next thread starts
  EXPECT_EQ(pool.threads(), 2);
  release.Notify();
  pool.Shutdown();
  EXPECT_EQ(runs.load(), 2);
}

TEST(WorkerPoolTest, ShutdownWaitsForItsItemsJoinsItsWorkersAndRefusesMore) {
  // Each worker's thread counts itself out as its very last act: after Shutdown, none runs.
  std::atomic<int> alive{0};
  WorkerPool pool(
      {.max_threads = 8,
       .start_thread = [&alive](std::function<void()> body) -> absl::StatusOr<std::thread> {
         alive.fetch_add(1);
         return WorkerPool::StartSystemThread([&alive, body = std::move(body)] {
           body();
           alive.fetch_sub(1);
         });
       }});
  absl::Notification release;
  std::atomic<int> runs{0};
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(pool.TrySchedule([&] {
                      release.WaitForNotification();
                      runs.fetch_add(1);
                    })
                    .ok());
  }
  std::thread shutdown([&pool] { pool.Shutdown(); });
  // Shutdown has begun (new work is refused) while all eight still wait.
  ASSERT_TRUE(Eventually(
      [&pool] { return absl::StrContains(pool.TrySchedule([] {}).message(), "shutting down"); }));
  EXPECT_EQ(runs.load(), 0);
  release.Notify();
  shutdown.join();
  EXPECT_EQ(runs.load(), 8);
  EXPECT_EQ(alive.load(), 0);
  EXPECT_EQ(pool.threads(), 0);
  const absl::Status after = pool.TrySchedule([] {});
  EXPECT_EQ(after.code(), absl::StatusCode::kResourceExhausted) << after;
  EXPECT_TRUE(absl::StrContains(after.message(), "shutting down")) << after;
}

TEST(WorkerPoolTest, AnItemMayScheduleAnother) {
  WorkerPool pool({.max_threads = 2});
  absl::Notification second_ran;
  ASSERT_TRUE(pool.TrySchedule([&] {
                    ASSERT_TRUE(pool.TrySchedule([&second_ran] { second_ran.Notify(); }).ok());
                  })
                  .ok());
  second_ran.WaitForNotification();
}

}  // namespace
}  // namespace tongka::ingest
