#include "tools/sample/sample_app.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"

namespace tongka::sample {
namespace {

// The store's key layout (StateStoreOptions::layout): bump it when keys or values change meaning.
constexpr char kStoreLayout[] = "sample/1";

}  // namespace

absl::Status SampleConfig::Validate() const {
  if (absl::Status common = service::CommonPartOf(*this).Validate(); !common.ok()) return common;
  if (batch_max_records < 1 || batch_max_records > 100000) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_max_records: must be in [1, 100000], got ", batch_max_records));
  }
  if (commit_max_records < 0 || commit_max_records > 10000000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "commit_max_records: must be in [0, 10000000] (0: every batch), got ", commit_max_records));
  }
  return absl::OkStatus();
}

SampleApp::SampleApp(SampleConfig config, const service::Clock* clock)
    : config_(std::move(config)),
      runtime_({.name = "sample", .common = service::CommonPartOf(config_), .clock = clock}) {}

absl::StatusOr<std::unique_ptr<SampleApp>> SampleApp::Create(const SampleConfig& config,
                                                             const service::Clock* clock) {
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  return Wired(std::unique_ptr<SampleApp>(new SampleApp(config, clock)));
}

absl::Status SampleApp::Wire() {
  // Phase 1: the store.
  absl::StatusOr<state_store::StateStore*> store = runtime_.OpenStore({.layout = kStoreLayout});
  if (!store.ok()) return store.status();

  // Phase 2: the loops (the logic objects are members) and the publisher between the stages.
  for (const auto& [name, topic, applier] :
       {std::make_tuple("taps", kTxnTopic, static_cast<state_store::Applier*>(&tap_counter_)),
        std::make_tuple("tallies", kTallyTopic,
                        static_cast<state_store::Applier*>(&city_tally_))}) {
    absl::StatusOr<state_store::ApplyLoop*> loop =
        runtime_.AddLoop({.name = name,
                          .topics = {topic},
                          .applier = applier,
                          .batch_max_records = static_cast<size_t>(config_.batch_max_records),
                          .commit_max_records = static_cast<size_t>(config_.commit_max_records)});
    if (!loop.ok()) return loop.status();
  }
  if (config_.publish) {
    absl::StatusOr<event_log::Producer*> producer = runtime_.AddProducer(runtime_.KafkaClient());
    if (!producer.ok()) return producer.status();
    runtime_.RunPublisher(*producer);
  }
  // A test or a quick start that only wants the log applied stops the first time it is.
  if (config_.exit_when_caught_up) runtime_.OnReady([this] { runtime_.RequestStop(); });

  // Phase 3: the metrics endpoint and readiness, last.
  return runtime_.Serve();
}

SampleApp::~SampleApp() { runtime_.Shutdown(absl::Now() + absl::Seconds(5)); }

absl::Status SampleApp::Run(std::atomic<bool>& stop) {
  runtime_.RunLoops();
  LOG(INFO) << "sample running: replica " << config_.replica_index << "/" << config_.replica_count
            << ", metrics on :" << metrics_port();
  while (!stop.load() && !runtime_.WaitForStopRequest(absl::Milliseconds(50))) {
  }
  // The store and /metrics stay up for the caller until the app is destroyed.
  runtime_.StopLoops();
  return runtime_.error();
}

}  // namespace tongka::sample
