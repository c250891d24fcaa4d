// Crash safety of the runtime, on the real Kafka broker.
//
// A feeder appends 1,000,000 synthetic taps to tongka.txn while the sample service (the two-stage
// pipeline of tools/sample on libs/state_store) is started and killed with SIGKILL at random
// moments, at least 20 times. Every fifth run also arms the "outbox.after_produce" failpoint, so
// the process dies right after Kafka took an outbox batch and before the cursor moved: those
// tallies are resent by the next run and must be dropped by event_id downstream. Then:
//   - a last run catches up and exits;
//   - every tap is counted exactly once, in stage one (per card) and in stage two (per city),
//     with the amounts in fen equal to the sums over the feed;
//   - duplicates were really resent and dropped (so the outbox proof is not vacuous);
//   - a from-scratch replay of the same log in a fresh store has the same state digest.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/producer.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/testing/subprocess.h"
#include "tools/sample/sample_state.h"

namespace tongka {
namespace {

using testing::Subprocess;

constexpr uint64_t kTaps = 1000000;
constexpr uint64_t kSeed = 2026;
constexpr int kRequiredKills = 20;
constexpr char kSampleBinary[] = "tools/sample/tongka_sample";

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs `tongka_sample --summary` on a store and returns its JSON line.
std::string Summary(const std::string& state_dir) {
  std::string out = TempPath("summary.out");
  std::filesystem::remove(out);
  auto p = Subprocess::Start({kSampleBinary, "--summary", "--state_dir=" + state_dir}, {}, out);
  EXPECT_TRUE(p.ok()) << p.status();
  int status = (*p)->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(out);
  std::string text = ReadFile(out);
  size_t start = text.find("{\"digest\"");
  EXPECT_NE(start, std::string::npos) << text;
  return start == std::string::npos ? "" : text.substr(start, text.find('\n', start) - start);
}

int64_t JsonInt(const std::string& json, const std::string& field) {
  std::string needle = absl::StrCat("\"", field, "\":");
  size_t at = json.find(needle);
  EXPECT_NE(at, std::string::npos) << field << " in " << json;
  int64_t value = -1;
  std::string digits;
  for (size_t i = at + needle.size(); i < json.size() && (isdigit(json[i]) || json[i] == '-');
       ++i) {
    digits.push_back(json[i]);
  }
  EXPECT_TRUE(absl::SimpleAtoi(digits, &value)) << field;
  return value;
}

std::string JsonDigest(const std::string& json) {
  size_t at = json.find("\"digest\":\"");
  return at == std::string::npos ? "" : json.substr(at + 10, 64);
}

// Runs the sample service until it exits by itself having caught up.
void RunToCompletion(const std::string& bootstrap, const std::string& state_dir,
                     const std::string& log, bool publish) {
  auto p = Subprocess::Start(
      {kSampleBinary, "--kafka_bootstrap=" + bootstrap, "--state_dir=" + state_dir,
       "--metrics_port=-1", "--exit_when_caught_up", absl::StrCat("--publish=", publish)},
      {}, log);
  ASSERT_TRUE(p.ok()) << p.status();
  std::optional<int> status = (*p)->WaitFor(absl::Minutes(10));
  ASSERT_TRUE(status.has_value()) << "did not catch up in 10 minutes; log " << log;
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status << "\n"
                                                               << ReadFile(log).substr(0, 20000);
}

TEST(CrashSafetyTest, MillionTapsThroughTwentyKillsCountedExactlyOnce) {
  auto kafka = event_log::LocalKafka::Start(TempPath("kafka"));
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  const std::string bootstrap = (*kafka)->bootstrap();
  ASSERT_TRUE(event_log::EnsureTopics({.bootstrap_servers = bootstrap},
                                      {{.name = sample::kTxnTopic, .partitions = 8},
                                       {.name = sample::kTallyTopic, .partitions = 8}},
                                      absl::Seconds(60))
                  .ok());

  // Expected figures, computed from the feed itself.
  int64_t expected_fen = 0;
  std::map<uint32_t, std::pair<int64_t, int64_t>> expected_city;
  for (uint64_t i = 0; i < kTaps; ++i) {
    v1::Event event = sample::SyntheticTap(kSeed, i);
    expected_fen += event.tap().amount_fen();
    auto& city = expected_city[event.tap().txn().acquirer_city()];
    ++city.first;
    city.second += event.tap().amount_fen();
  }

  // The feeder appends the taps in slices while the service is being killed, so kills land in the
  // middle of real work rather than on an idle process.
  std::atomic<bool> feed_failed{false};
  std::atomic<uint64_t> fed{0};
  std::thread feeder([&] {
    auto producer = event_log::Producer::Create({.bootstrap_servers = bootstrap});
    if (!producer.ok()) {
      feed_failed = true;
      return;
    }
    std::atomic<int64_t> failed{0};
    for (uint64_t i = 0; i < kTaps; ++i) {
      v1::Event event = sample::SyntheticTap(kSeed, i);
      absl::Status status = (*producer)->ProduceWaiting(
          sample::kTxnTopic, event.tap().txn().card_id(), event.SerializeAsString(),
          [&failed](const event_log::DeliveryResult& r) {
            if (!r.status.ok()) ++failed;
          },
          absl::Minutes(1));
      if (!status.ok()) break;
      // Pace the feed over roughly 20 s so that consumption overlaps the kill cycles.
      if (i % 5000 == 4999) {
        absl::SleepFor(absl::Milliseconds(100));
        fed = i + 1;
      }
    }
    if (!(*producer)->Flush(absl::Minutes(2)).ok() || failed.load() > 0) feed_failed = true;
    fed = kTaps;
  });

  const std::string live_dir = TempPath("live");
  const std::string log = TempPath("sample.log");
  std::mt19937_64 random(kSeed);
  std::uniform_int_distribution<int> delay_ms(300, 1800);
  int kills = 0;
  int failpoint_crashes = 0;
  for (int run = 0; kills < kRequiredKills || fed.load() < kTaps; ++run) {
    ASSERT_LT(run, 200) << "kill loop did not converge";
    std::map<std::string, std::string> env;
    if (run % 5 == 4) env["TONGKA_FAILPOINTS"] = "outbox.after_produce";
    auto p = Subprocess::Start(
        {kSampleBinary, "--kafka_bootstrap=" + bootstrap, "--state_dir=" + live_dir,
         "--metrics_port=-1", "--batch_max_records=2000", "--commit_max_records=20000"},
        env, log);
    ASSERT_TRUE(p.ok()) << p.status();
    if (env.empty()) {
      absl::SleepFor(absl::Milliseconds(delay_ms(random)));
    } else {
      // Armed: give it time to reach the failpoint by itself (its first outbox batch).
      (*p)->WaitFor(absl::Seconds(30));
    }
    bool was_running = (*p)->Kill();
    int status = (*p)->Wait();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "run " << run << " ended on its own with status " << status << "\n"
        << ReadFile(log).substr(0, 20000);
    if (was_running) {
      ++kills;
    } else {
      ++failpoint_crashes;  // it killed itself at the failpoint before our signal
    }
  }
  feeder.join();
  ASSERT_FALSE(feed_failed.load()) << "the feeder could not deliver every tap";
  EXPECT_GE(kills, kRequiredKills);
  EXPECT_GE(failpoint_crashes, 1) << "no run reached the outbox failpoint";

  RunToCompletion(bootstrap, live_dir, log, /*publish=*/true);
  std::string live = Summary(live_dir);
  EXPECT_EQ(JsonInt(live, "txn_offsets"), static_cast<int64_t>(kTaps)) << live;
  EXPECT_EQ(JsonInt(live, "card_taps"), static_cast<int64_t>(kTaps)) << live;
  EXPECT_EQ(JsonInt(live, "city_taps"), static_cast<int64_t>(kTaps)) << live;
  EXPECT_EQ(JsonInt(live, "card_spent_fen"), expected_fen) << live;
  EXPECT_EQ(JsonInt(live, "city_amount_fen"), expected_fen) << live;
  EXPECT_GT(JsonInt(live, "duplicates_dropped"), 0) << "no resent tally was seen: " << live;
  EXPECT_EQ(JsonInt(live, "unparseable"), 0) << live;
  for (const auto& [city, figures] : expected_city) {
    EXPECT_TRUE(absl::StrContains(
        live, absl::StrCat("\"", city, "\":[", figures.first, ",", figures.second, "]")))
        << city << " in " << live;
  }

  // Same log in, same state out: replay both topics from offset 0 into a fresh store. The replay
  // does not publish: everything it would derive is already in the log, which it reads.
  const std::string rebuilt_dir = TempPath("rebuilt");
  RunToCompletion(bootstrap, rebuilt_dir, TempPath("rebuild.log"), /*publish=*/false);
  std::string rebuilt = Summary(rebuilt_dir);
  EXPECT_EQ(JsonDigest(rebuilt), JsonDigest(live));
  EXPECT_EQ(JsonDigest(live).size(), 64u);
  EXPECT_EQ(rebuilt, live);
  std::cout << "kills=" << kills << " failpoint_crashes=" << failpoint_crashes
            << "\nlive:    " << live << "\nrebuilt: " << rebuilt << std::endl;
}

}  // namespace
}  // namespace tongka
