#include "tools/sample/sample_app.h"

#include <glog/logging.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace tongka::sample {
namespace {

// The store's key layout (StateStoreOptions::layout): bump it when keys or values change meaning.
constexpr char kStoreLayout[] = "sample/1";

}  // namespace

using event_log::KafkaClientConfig;
using event_log::PartitionConsumer;

absl::Status SampleConfig::Validate() const {
  if (kafka_bootstrap.empty()) return absl::InvalidArgumentError("kafka_bootstrap: required");
  if (state_dir.empty()) return absl::InvalidArgumentError("state_dir: required");
  if (replica_count < 1 || replica_count > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica_count: must be in [1, 1024], got ", replica_count));
  }
  if (replica_index < 0 || replica_index >= replica_count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "replica_index: must be in [0, replica_count=", replica_count, "), got ", replica_index));
  }
  if (metrics_host.empty()) return absl::InvalidArgumentError("metrics_host: required");
  if (metrics_port < -1 || metrics_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_port: must be -1 (off) or in [0, 65535], got ", metrics_port));
  }
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

absl::StatusOr<std::unique_ptr<SampleApp>> SampleApp::Create(const SampleConfig& config) {
  absl::Status valid = config.Validate();
  if (!valid.ok()) return valid;
  std::unique_ptr<SampleApp> app(new SampleApp(config));
  absl::Status wired = app->Wire();
  if (!wired.ok()) return wired;
  return app;
}

absl::Status SampleApp::Wire() {
  // Phase 1: the store.
  absl::StatusOr<std::unique_ptr<state_store::StateStore>> store =
      state_store::StateStore::Open({.path = config_.state_dir, .layout = kStoreLayout});
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  runtime_metrics_ = std::make_unique<state_store::RuntimeMetrics>(&registry_, store_.get());

  // Phase 2: consumers (the logic objects are members) and the publisher.
  KafkaClientConfig kafka{.bootstrap_servers = config_.kafka_bootstrap,
                          .client_id = absl::StrCat("tongka-sample-", config_.replica_index),
                          .tls_ca_path = config_.kafka_ca,
                          .tls_cert_path = config_.kafka_cert,
                          .tls_key_path = config_.kafka_key};
  auto make_loop = [&](const std::string& name, const std::string& topic,
                       state_store::Applier* applier)
      -> absl::StatusOr<std::unique_ptr<state_store::ApplyLoop>> {
    absl::StatusOr<std::unique_ptr<PartitionConsumer>> consumer =
        PartitionConsumer::Create(kafka, absl::StrCat("tongka-sample-", name));
    if (!consumer.ok()) return consumer.status();
    auto loop = std::make_unique<state_store::ApplyLoop>(
        store_.get(), std::move(*consumer), applier,
        state_store::ApplyLoopOptions{
            .topics = {topic},
            .replica_index = config_.replica_index,
            .replica_count = config_.replica_count,
            .batch_max_records = static_cast<size_t>(config_.batch_max_records),
            .commit_max_records = static_cast<size_t>(config_.commit_max_records),
            .batch_seconds = runtime_metrics_->BatchSeconds(name)});
    absl::Status started = loop->Start();
    if (!started.ok()) return started;
    runtime_metrics_->WatchLoop(name, loop.get());
    return loop;
  };
  absl::StatusOr<std::unique_ptr<state_store::ApplyLoop>> tap_loop =
      make_loop("taps", kTxnTopic, &tap_counter_);
  if (!tap_loop.ok()) return tap_loop.status();
  tap_loop_ = std::move(*tap_loop);
  absl::StatusOr<std::unique_ptr<state_store::ApplyLoop>> tally_loop =
      make_loop("tallies", kTallyTopic, &city_tally_);
  if (!tally_loop.ok()) return tally_loop.status();
  tally_loop_ = std::move(*tally_loop);

  if (config_.publish) {
    absl::StatusOr<std::unique_ptr<event_log::Producer>> producer =
        event_log::Producer::Create(kafka);
    if (!producer.ok()) return producer.status();
    producer_ = std::move(*producer);
    publisher_ = std::make_unique<state_store::OutboxPublisher>(
        store_.get(), producer_.get(), state_store::OutboxPublisherOptions{});
    runtime_metrics_->WatchPublisher(publisher_.get());
  }

  // Phase 3: the metrics endpoint, last, so it never shows a half-wired service.
  if (config_.metrics_port >= 0) {
    exposer_ = std::make_unique<metrics::HttpExposer>(
        &registry_,
        metrics::HttpExposerOptions{.host = config_.metrics_host, .port = config_.metrics_port});
    absl::Status started = exposer_->Start();
    if (!started.ok()) return started;
  }
  return absl::OkStatus();
}

SampleApp::~SampleApp() {
  // Reverse order: endpoint, metrics callbacks, then loops, publisher and producer, then store.
  if (exposer_ != nullptr) exposer_->Stop();
  runtime_metrics_.reset();
  tally_loop_.reset();
  tap_loop_.reset();
  publisher_.reset();
  producer_.reset();
  store_.reset();
}

absl::StatusOr<bool> SampleApp::AllApplied() {
  // Order matters: once stage one has applied everything, no new outbox entries appear; once the
  // outbox is empty, every tally is in Kafka; then stage two must have applied all of them.
  absl::StatusOr<bool> taps = tap_loop_->CaughtUp();
  if (!taps.ok() || !*taps) return taps;
  if (publisher_ != nullptr && store_->OutboxDepth() > 0) return false;
  return tally_loop_->CaughtUp();
}

absl::Status SampleApp::Run(std::atomic<bool>& stop) {
  absl::Mutex mu;
  absl::Status first_error;
  auto record_error = [&](const absl::Status& status) {
    if (status.ok()) return;
    absl::MutexLock lock(&mu);
    if (first_error.ok()) first_error = status;
    stop.store(true);
  };
  std::atomic<bool> publisher_stop{false};
  std::thread taps([&] { record_error(tap_loop_->Run(stop)); });
  std::thread tallies([&] { record_error(tally_loop_->Run(stop)); });
  std::thread publisher([&] {
    if (publisher_ != nullptr) publisher_->Run(publisher_stop);
  });
  LOG(INFO) << "sample running: replica " << config_.replica_index << "/" << config_.replica_count
            << ", metrics on :" << metrics_port();
  // Ready (for /readyz) once everything in the log at some moment has been applied: a replica
  // that is rebuilding its state from the log must not be sent traffic.
  bool ready = false;
  while (!stop.load()) {
    absl::SleepFor(absl::Milliseconds(200));
    if (ready && !config_.exit_when_caught_up) continue;
    absl::StatusOr<bool> done = AllApplied();
    if (!done.ok()) {
      LOG_EVERY_N(WARNING, 10) << "progress check failed (retrying): " << done.status();
      continue;
    }
    if (*done && !ready) {
      ready = true;
      if (exposer_ != nullptr) exposer_->SetReady(true);
      LOG(INFO) << "caught up: every record applied and the outbox is empty; ready";
    }
    if (*done && config_.exit_when_caught_up) stop.store(true);
  }
  taps.join();
  tallies.join();
  publisher_stop.store(true);
  publisher.join();
  absl::MutexLock lock(&mu);
  return first_error;
}

}  // namespace tongka::sample
