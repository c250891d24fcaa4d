#include "libs/service/runtime.h"

#include <glog/logging.h>
#include <signal.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/crypto/self_test.h"
#include "libs/event_log/partition_consumer.h"

namespace tongka::service {
namespace {

std::atomic<bool> hosted_by_service_main{false};

// Wakes ServiceMain's WaitForShutdownSignal: SIGTERM is blocked in every thread, so it stays
// pending until main takes it. Outside ServiceMain (tests, tools) nobody waits for a signal, and
// raising one would kill the process instead.
void WakeServiceMain() {
  if (hosted_by_service_main.load()) kill(getpid(), SIGTERM);
}

}  // namespace

namespace internal {
void SetHostedByServiceMain(bool hosted) { hosted_by_service_main.store(hosted); }
}  // namespace internal

Runtime::Runtime(RuntimeOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : SystemClock::Get()) {
  CHECK(!options_.name.empty()) << "RuntimeOptions::name is required";
}

absl::Status Runtime::CheckCrypto() { return crypto::SelfTest(); }

absl::StatusOr<state_store::StateStore*> Runtime::OpenStore(
    state_store::StateStoreOptions options) {
  CHECK(store_ == nullptr) << "OpenStore is called once";
  if (options.path.empty()) options.path = options_.common.state_dir;
  absl::StatusOr<std::unique_ptr<state_store::StateStore>> store =
      state_store::StateStore::Open(options);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  runtime_metrics_ = std::make_unique<state_store::RuntimeMetrics>(&registry_, store_.get());
  return store_.get();
}

event_log::KafkaClientConfig Runtime::KafkaClient(const std::string& role) const {
  const CommonConfig& common = options_.common;
  return {.bootstrap_servers = common.kafka_bootstrap,
          .client_id = absl::StrCat("tongka-", options_.name, role.empty() ? "" : "-", role, "-",
                                    common.replica_index),
          .tls_ca_path = common.kafka_ca_path,
          .tls_cert_path = common.kafka_cert_path,
          .tls_key_path = common.kafka_key_path};
}

absl::StatusOr<event_log::Producer*> Runtime::AddProducer(
    const event_log::KafkaClientConfig& kafka) {
  absl::StatusOr<std::unique_ptr<event_log::Producer>> producer =
      event_log::Producer::Create(kafka);
  if (!producer.ok()) return producer.status();
  producers_.push_back(std::move(*producer));
  event_log::Producer* const made = producers_.back().get();
  // Destroying a producer flushes it: its last delivery callbacks run here, while everything
  // wired before it (the store, the app's logic) is still alive.
  OnStop([this, made] {
    for (std::unique_ptr<event_log::Producer>& producer : producers_) {
      if (producer.get() == made) producer.reset();
    }
  });
  return made;
}

absl::StatusOr<state_store::ApplyLoop*> Runtime::AddLoop(const LoopOptions& options) {
  CHECK(store_ != nullptr) << "OpenStore before AddLoop";
  CHECK(options.applier != nullptr) << "loop " << options.name << " needs an applier";
  absl::StatusOr<std::unique_ptr<event_log::PartitionConsumer>> consumer =
      event_log::PartitionConsumer::Create(
          KafkaClient(options.name), absl::StrCat("tongka-", options_.name, "-", options.name));
  if (!consumer.ok()) return consumer.status();
  auto entry = std::make_unique<Loop>();
  entry->loop = std::make_unique<state_store::ApplyLoop>(
      store_.get(), std::move(*consumer), options.applier,
      state_store::ApplyLoopOptions{
          .topics = options.topics,
          .replica_index = options.replica_index.value_or(options_.common.replica_index),
          .replica_count = options.replica_count.value_or(options_.common.replica_count),
          .batch_max_records = options.batch_max_records,
          .commit_max_records = options.commit_max_records,
          .batch_seconds = runtime_metrics_->BatchSeconds(options.name),
          .filter = options.filter});
  if (absl::Status started = entry->loop->Start(); !started.ok()) return started;
  runtime_metrics_->WatchLoop(options.name, entry->loop.get());
  Loop* const loop = entry.get();
  loops_.push_back(std::move(entry));
  OnStop([loop] {
    loop->stop.store(true);
    if (loop->thread.joinable()) loop->thread.join();
  });
  return loop->loop.get();
}

void Runtime::RunLoops() {
  for (std::unique_ptr<Loop>& entry : loops_) {
    if (entry->thread.joinable() || entry->stop.load()) continue;
    Loop* const loop = entry.get();
    loop->thread = std::thread([this, loop] {
      absl::Status status = loop->loop->Run(loop->stop);
      if (!status.ok()) Fail(status, "an apply loop");
    });
  }
}

absl::Status Runtime::WaitCaughtUp(state_store::ApplyLoop* loop, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<bool> caught_up = loop->CaughtUp();
    if (caught_up.ok() && *caught_up) return absl::OkStatus();
    if (absl::Status failed = error(); !failed.ok()) return failed;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "an apply loop did not catch up with its log within ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

void Runtime::RunPublisher(event_log::Producer* producer) {
  CHECK(store_ != nullptr) << "OpenStore before RunPublisher";
  CHECK(publisher_ == nullptr) << "one outbox publisher per store";
  publisher_ = std::make_unique<state_store::OutboxPublisher>(
      store_.get(), producer, state_store::OutboxPublisherOptions{});
  runtime_metrics_->WatchPublisher(publisher_.get());
  // Produce and delivery errors are retried inside; a fatal producer is the watcher's to see.
  publisher_thread_ = std::thread([this] { publisher_->Run(stop_publisher_); });
  OnStop([this] {
    stop_publisher_.store(true);
    if (publisher_thread_.joinable()) publisher_thread_.join();
  });
}

void Runtime::StopLoops() {
  stop_publisher_.store(true);
  for (std::unique_ptr<Loop>& entry : loops_) entry->stop.store(true);
  for (std::unique_ptr<Loop>& entry : loops_) {
    if (entry->thread.joinable()) entry->thread.join();
  }
  if (publisher_thread_.joinable()) publisher_thread_.join();
}

absl::StatusOr<std::shared_ptr<const server::Authenticator>> Runtime::MakeAuthenticator(
    const server::GrpcServerConfig& grpc) const {
  return server::MakeAuthenticator(grpc, NowFnOf(clock_));
}

absl::StatusOr<server::GrpcServer*> Runtime::ServeGrpc(
    const server::GrpcServerConfig& grpc, std::shared_ptr<const server::Authenticator> auth,
    const std::vector<grpc::Service*>& services) {
  CHECK(grpc_server_ == nullptr) << "one gRPC server per service";
  absl::StatusOr<std::unique_ptr<server::GrpcServer>> server =
      server::GrpcServer::Start(grpc, std::move(auth), services);
  if (!server.ok()) return server.status();
  grpc_server_ = std::move(*server);
  unauthenticated_metric_ = registry_.AddCallbackCounter(
      "tongka_grpc_unauthenticated_calls_total",
      "Calls refused before any handler for missing or bad credentials.",
      [server = grpc_server_.get()] {
        return static_cast<double>(server->unauthenticated_calls_total());
      });
  OnStop([this] {
    grpc_server_->Shutdown(shutdown_deadline_);
    unauthenticated_metric_.Reset();
  });
  return grpc_server_.get();
}

absl::Status Runtime::Serve() {
  if (options_.common.metrics_port >= 0) {
    exposer_ = std::make_unique<metrics::HttpExposer>(
        &registry_, metrics::HttpExposerOptions{.host = options_.common.metrics_host,
                                                .port = options_.common.metrics_port});
    if (absl::Status started = exposer_->Start(); !started.ok()) return started;
  }
  watcher_ = std::thread([this] { Watch(); });
  OnStop([this] {
    stop_watching_.Notify();
    if (watcher_.joinable()) watcher_.join();
  });
  return absl::OkStatus();
}

void Runtime::OnStop(std::function<void()> stop) { stops_.push_back(std::move(stop)); }

void Runtime::OnReady(std::function<void()> ready) {
  CHECK(!watcher_.joinable()) << "OnReady before Serve";
  ready_callbacks_.push_back(std::move(ready));
}

void Runtime::AddReadyCondition(std::function<bool()> condition) {
  ready_conditions_.push_back(std::move(condition));
}

absl::StatusOr<bool> Runtime::AllApplied() {
  for (const std::function<bool()>& condition : ready_conditions_) {
    if (!condition()) return false;
  }
  // Loops, then the outbox, then the loops again: once every loop had reached the log end and the
  // outbox was empty, all that the publisher sent is in the log; the second pass sees it applied
  // by the stage that reads it, whatever the order the loops were added in.
  for (int pass = 0; pass < 2; ++pass) {
    for (std::unique_ptr<Loop>& entry : loops_) {
      absl::StatusOr<bool> caught_up = entry->loop->CaughtUp();
      if (!caught_up.ok() || !*caught_up) return caught_up;
    }
    if (pass == 0 && publisher_ != nullptr && store_->OutboxDepth() > 0) return false;
  }
  return true;
}

void Runtime::Watch() {
  do {
    for (const std::unique_ptr<event_log::Producer>& producer : producers_) {
      // A fatal producer error cannot heal: every later produce fails while the pod looks
      // ready. Stop, so that a restarted process gets a new producer.
      if (producer != nullptr && producer->fatal()) {
        Fail(absl::InternalError("kafka producer hit a fatal error"), "the Kafka producer");
        return;
      }
    }
    if (ready_.load() || stop_requested()) continue;
    absl::StatusOr<bool> done = AllApplied();
    if (!done.ok()) {
      LOG_EVERY_N(WARNING, 50) << options_.name
                               << ": progress check failed (retrying): " << done.status();
      continue;
    }
    if (!*done) continue;
    SetReady(true);
    LOG(INFO) << options_.name
              << " ready: every apply loop caught up with its log and the outbox is empty";
    for (const std::function<void()>& callback : ready_callbacks_) callback();
  } while (!stop_watching_.WaitForNotificationWithTimeout(options_.watch_interval));
}

void Runtime::SetReady(bool ready) {
  ready_.store(ready);
  if (exposer_ != nullptr) exposer_->SetReady(ready);
}

void Runtime::Fail(const absl::Status& error, const std::string& what) {
  {
    absl::MutexLock lock(&error_mu_);
    if (!error_.ok()) return;  // already stopping for the first error
    error_ = error;
  }
  LOG(ERROR) << "tongka_" << options_.name << " stops: " << what << " failed: " << error;
  SetReady(false);
  stop_requested_.Notify();
  WakeServiceMain();
}

void Runtime::RequestStop() {
  if (stop_requested_.HasBeenNotified()) return;
  LOG(INFO) << "tongka_" << options_.name << " stops: its work is done";
  stop_requested_.Notify();
  WakeServiceMain();
}

absl::Status Runtime::error() const {
  absl::MutexLock lock(&error_mu_);
  return error_;
}

void Runtime::Shutdown(absl::Time deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  shutdown_deadline_ = deadline;
  // Leave the Service's endpoints before anything stops answering.
  ready_.store(false);
  if (exposer_ != nullptr) exposer_->SetReady(false);
  for (auto stop = stops_.rbegin(); stop != stops_.rend(); ++stop) (*stop)();
  stops_.clear();
  // Last: /metrics answered during the stop, and no scrape may read what the app destroys next.
  if (exposer_ != nullptr) exposer_->Stop();
}

Runtime::~Runtime() {
  Shutdown(absl::Now() + absl::Seconds(5));
  // Reverse order of wiring.
  exposer_.reset();
  grpc_server_.reset();
  publisher_.reset();
  loops_.clear();
  producers_.clear();
  runtime_metrics_.reset();
  store_.reset();
}

}  // namespace tongka::service
