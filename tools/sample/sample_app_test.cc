// Proves the wired sample service end to end on librdkafka's embedded broker (small data; crash
// and replay proofs against the real broker are in tests/crash_safety_test): it applies a feed
// through both stages, reports not-ready until it has caught up and ready after, and its real
// /metrics output (runtime and process series) passes `promtool check metrics` with no lint.
#include "tools/sample/sample_app.h"

#include <httplib.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/producer.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/metrics/test_support.h"
#include "tools/sample/sample_state.h"

namespace tongka::sample {
namespace {

TEST(SampleAppTest, AppliesTheFeedThenReportsReadyAndLintCleanMetrics) {
  auto broker = event_log::EmbeddedBroker::Start();
  ASSERT_TRUE(broker.ok()) << broker.status();
  ASSERT_TRUE((*broker)->CreateTopic(kTxnTopic, 4).ok());
  ASSERT_TRUE((*broker)->CreateTopic(kTallyTopic, 4).ok());
  auto producer = event_log::Producer::Create({.bootstrap_servers = (*broker)->bootstrap()});
  ASSERT_TRUE(producer.ok());
  int64_t expected_fen = 0;
  for (uint64_t i = 0; i < 2000; ++i) {
    v1::Event tap = SyntheticTap(5, i);
    expected_fen += tap.tap().amount_fen();
    ASSERT_TRUE(
        (*producer)
            ->Produce(kTxnTopic, tap.tap().txn().card_id(), tap.SerializeAsString(), nullptr)
            .ok());
  }
  ASSERT_TRUE((*producer)->Flush(absl::Seconds(30)).ok());

  auto app = SampleApp::Create({.kafka_bootstrap = (*broker)->bootstrap(),
                                .state_dir = absl::StrCat(::testing::TempDir(), "/sample"),
                                .metrics_port = 0,
                                .batch_max_records = 500});
  ASSERT_TRUE(app.ok()) << app.status();
  httplib::Client client("127.0.0.1", (*app)->metrics_port());
  auto before = client.Get("/readyz");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 503) << "ready before applying anything";

  std::atomic<bool> stop{false};
  absl::Status run_status;
  std::thread runner([&] { run_status = (*app)->Run(stop); });
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline && client.Get("/readyz")->status != 200) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(client.Get("/readyz")->status, 200) << "never became ready";
  stop.store(true);
  runner.join();
  ASSERT_TRUE(run_status.ok()) << run_status;

  auto totals = ReadTotals((*app)->store());
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(totals->card_taps, 2000);
  EXPECT_EQ(totals->city_taps, 2000);
  EXPECT_EQ(totals->city_amount_fen, expected_fen);

  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_TRUE(absl::StrContains(metrics->body, "tongka_consumer_lag_events{"));
  EXPECT_TRUE(absl::StrContains(metrics->body, "tongka_outbox_depth_events 0"));
  const std::string promtool = metrics::test_support::FindTool("promtool");
  ASSERT_FALSE(promtool.empty()) << metrics::test_support::MissingToolMessage("promtool");
  auto lint = metrics::test_support::RunCommand({promtool, "check", "metrics"}, metrics->body);
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_EQ(lint.output, "") << lint.output;
}

}  // namespace
}  // namespace tongka::sample
