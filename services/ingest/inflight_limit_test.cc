// InflightLimit: admits up to its maximum and no more, gives back what a ticket took when the
// ticket goes (including after a move), keeps its gauge equal to what is in use, and never lets
// racing threads together exceed the maximum.
#include "services/ingest/inflight_limit.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace tongka::ingest {
namespace {

TEST(InflightLimitTest, AdmitsUpToTheMaximumAndGivesBackOnDestruction) {
  metrics::Gauge gauge;
  InflightLimit limit(10, &gauge);
  {
    std::optional<InflightLimit::Ticket> six = limit.TryAcquire(6);
    ASSERT_TRUE(six.has_value());
    EXPECT_FALSE(limit.TryAcquire(5).has_value()) << "6 + 5 exceeds 10";
    EXPECT_EQ(limit.in_use(), 6) << "a refusal takes nothing";
    std::optional<InflightLimit::Ticket> four = limit.TryAcquire(4);
    ASSERT_TRUE(four.has_value()) << "6 + 4 is exactly 10";
    EXPECT_FALSE(limit.TryAcquire(1).has_value());
    EXPECT_TRUE(limit.TryAcquire(0).has_value()) << "nothing more always fits";
    EXPECT_EQ(limit.in_use(), 10);
    EXPECT_EQ(gauge.Value(), 10);
    four.reset();
    EXPECT_EQ(limit.in_use(), 6);
    EXPECT_EQ(gauge.Value(), 6);
  }
  EXPECT_EQ(limit.in_use(), 0);
  EXPECT_EQ(gauge.Value(), 0);
  EXPECT_FALSE(limit.TryAcquire(11).has_value()) << "more than the maximum never fits";
  EXPECT_TRUE(limit.TryAcquire(10).has_value());
}

TEST(InflightLimitTest, AMovedTicketGivesBackOnce) {
  metrics::Gauge gauge;
  InflightLimit limit(10, &gauge);
  std::optional<InflightLimit::Ticket> first = limit.TryAcquire(3);
  ASSERT_TRUE(first.has_value());
  InflightLimit::Ticket moved = std::move(*first);
  first.reset();  // the moved-from ticket gives back nothing
  EXPECT_EQ(limit.in_use(), 3);
  std::optional<InflightLimit::Ticket> second = limit.TryAcquire(2);
  ASSERT_TRUE(second.has_value());
  moved = std::move(*second);  // gives back the 3 it held, takes over the 2
  EXPECT_EQ(limit.in_use(), 2);
  second.reset();
  EXPECT_EQ(limit.in_use(), 2);
  moved = std::move(moved);  // self-move changes nothing
  EXPECT_EQ(limit.in_use(), 2);
}

TEST(InflightLimitTest, RacingThreadsNeverExceedTheMaximum) {
  metrics::Gauge gauge;
  constexpr int64_t kMax = 7;
  InflightLimit limit(kMax, &gauge);
  std::atomic<int64_t> held{0};
  std::atomic<int64_t> most{0};
  std::atomic<int64_t> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        const int64_t n = 1 + (t + i) % 3;
        std::optional<InflightLimit::Ticket> ticket = limit.TryAcquire(n);
        if (!ticket.has_value()) continue;
        admitted.fetch_add(1);
        const int64_t now = held.fetch_add(n) + n;
        int64_t seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        held.fetch_sub(n);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(most.load(), kMax);
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(limit.in_use(), 0);
  EXPECT_EQ(gauge.Value(), 0);
}

}  // namespace
}  // namespace tongka::ingest
