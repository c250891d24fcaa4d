#include "services/ingest/ingest_app.h"

#include <glog/logging.h>
#include <signal.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/crypto/self_test.h"
#include "services/ingest/dedup_catch_up.h"

namespace tongka::ingest {

absl::StatusOr<std::unique_ptr<IngestApp>> IngestApp::Create(const IngestConfig& config,
                                                             server::NowFn now) {
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  std::unique_ptr<IngestApp> app(new IngestApp(config, std::move(now)));
  if (absl::Status wired = app->Wire(); !wired.ok()) {
    app->Shutdown(absl::Now());
    return wired;
  }
  return app;
}

absl::Status IngestApp::Wire() {
  if (absl::Status crypto_ok = crypto::SelfTest(); !crypto_ok.ok()) return crypto_ok;
  metrics_ = std::make_unique<IngestMetrics>(&registry_);

  // Phase 1: the store (the dedup index: its layout, upgrades and options are the index's) and
  // its runtime metrics (RocksDB size).
  absl::StatusOr<std::unique_ptr<state_store::StateStore>> store =
      state_store::StateStore::Open(DedupIndex::StoreOptions(config_.state_dir));
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  runtime_metrics_ = std::make_unique<state_store::RuntimeMetrics>(&registry_, store_.get());
  dedup_ = std::make_unique<DedupIndex>(store_.get());

  // Phase 2: the logic: keys and rules.
  absl::StatusOr<txn::CityKeyring> keyring =
      config_.city_keys_path.empty() ? txn::CityKeyring::Dev()
                                     : txn::CityKeyring::FromFile(config_.city_keys_path);
  if (!keyring.ok()) {
    return absl::Status(keyring.status().code(),
                        absl::StrCat("city_keys_path: ", keyring.status().message()));
  }
  if (const std::vector<uint32_t> dev_cities = keyring->CitiesWithDevKeys(); !dev_cities.empty()) {
    // Anyone can compute a dev key and forge MACs with it: only a dev server may hold one.
    if (config_.grpc.auth_mode != server::AuthMode::kDevToken) {
      return absl::InvalidArgumentError(absl::StrCat(
          "city_keys_path: holds the public development key of city ", dev_cities.front(),
          dev_cities.size() > 1 ? absl::StrCat(" and ", dev_cities.size() - 1, " more") : "",
          "; development keys are allowed only with auth mode dev (--auth=dev)"));
    }
    LOG(WARNING) << "ingest runs on the PUBLIC development keys of " << dev_cities.size()
                 << " cities (--auth=dev only)";
  }
  keyring_ = std::move(*keyring);
  validator_ = std::make_unique<Validator>(config_.limits, &*keyring_);

  // Phase 3: Kafka and the ingestor.
  event_log::KafkaClientConfig kafka{.bootstrap_servers = config_.kafka_bootstrap,
                                     .client_id = "tongka-ingest",
                                     .tls_ca_path = config_.kafka_ca_path,
                                     .tls_cert_path = config_.kafka_cert_path,
                                     .tls_key_path = config_.kafka_key_path,
                                     .overrides = config_.kafka_overrides};
  event_log::KafkaClientConfig producing = kafka;
  producing.overrides["message.timeout.ms"] =
      absl::StrCat(absl::ToInt64Milliseconds(config_.kafka_message_timeout));
  absl::StatusOr<std::unique_ptr<event_log::Producer>> producer =
      event_log::Producer::Create(producing);
  if (!producer.ok()) return producer.status();
  producer_ = std::move(*producer);
  if (absl::Status topics = CheckTopics(); !topics.ok()) return topics;
  // The log is the truth: before serving, record what Kafka has that the index may have missed
  // (a crash between Kafka's ack and the index write), so a retry of it is a DUPLICATE.
  if (absl::Status caught_up = CatchUp(kafka); !caught_up.ok()) return caught_up;
  ingestor_ = std::make_unique<Ingestor>(
      validator_.get(), dedup_.get(), producer_.get(), metrics_.get(), now_,
      IngestorOptions{.topic = config_.topic,
                      .conflict_topic = config_.conflict_topic,
                      .ack_timeout = config_.ack_timeout,
                      .retry_after = config_.retry_after,
                      .max_inflight_items = config_.max_inflight_items});
  pruner_ = std::thread([this] { PruneLoop(); });

  // Phase 4: the gRPC server.
  absl::StatusOr<std::shared_ptr<const server::Authenticator>> authenticator =
      server::MakeAuthenticator(config_.grpc, now_);
  if (!authenticator.ok()) return authenticator.status();
  authenticator_ = std::move(*authenticator);
  service_ = std::make_unique<IngestService>(
      ingestor_.get(), authenticator_, metrics_.get(),
      IngestServiceOptions{.max_concurrent_calls = config_.max_concurrent_calls,
                           .stream_window = config_.stream_window,
                           .retry_after = config_.retry_after});
  absl::StatusOr<std::unique_ptr<server::GrpcServer>> server =
      server::GrpcServer::Start(config_.grpc, authenticator_, {service_.get()});
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  unauthenticated_metric_ = registry_.AddCallbackCounter(
      "tongka_grpc_unauthenticated_calls_total",
      "Calls refused before any handler for missing or bad credentials.", [server = server_.get()] {
        return static_cast<double>(server->unauthenticated_calls_total());
      });

  // Phase 5: the metrics endpoint, last, so it never shows a half-wired service.
  if (config_.metrics_port >= 0) {
    exposer_ = std::make_unique<metrics::HttpExposer>(
        &registry_,
        metrics::HttpExposerOptions{.host = config_.metrics_host, .port = config_.metrics_port});
    if (absl::Status started = exposer_->Start(); !started.ok()) return started;
    // Ingest reads no log: it is ready (/readyz) as soon as it serves.
    exposer_->SetReady(true);
  }
  // Last, once everything it touches is wired.
  watcher_ = std::thread([this] { WatchProducer(); });
  LOG(INFO) << "ingest serving on :" << server_->port() << " ("
            << server::AuthModeName(config_.grpc.auth_mode) << "), metrics on :" << metrics_port()
            << ", topic " << config_.topic;
  return absl::OkStatus();
}

absl::Status IngestApp::CheckTopics() {
  // Both topics must exist (a record for a missing one would only time out: topics are created
  // by the deployment, never on demand), and the conflicts are keyed by card like the
  // transactions, in as many partitions, so a card's conflicts share its partition number.
  int32_t txn_partitions = 0;
  for (const std::string& topic : {config_.topic, config_.conflict_topic}) {
    absl::StatusOr<int32_t> partitions = producer_->PartitionCount(topic, absl::Seconds(30));
    if (!partitions.ok()) {
      return absl::Status(partitions.status().code(),
                          absl::StrCat("topic ", topic, ": ", partitions.status().message(),
                                       " (created by deploy/k8s/base/kafka/topics.yaml)"));
    }
    if (topic == config_.topic) {
      txn_partitions = *partitions;
    } else if (*partitions != txn_partitions) {
      return absl::FailedPreconditionError(absl::StrCat(
          "topic ", topic, " has ", *partitions, " partitions, ", config_.topic, " has ",
          txn_partitions, ": both are keyed by card and must have the same count"));
    }
  }
  return absl::OkStatus();
}

absl::Status IngestApp::CatchUp(const event_log::KafkaClientConfig& kafka) {
  // A record can wait in the producer for kafka_message_timeout before Kafka acknowledges it,
  // and producer timestamps may lead or lag recorded_at by the allowed skew.
  absl::StatusOr<CatchUpStats> stats = CatchUpBeforeServing(
      kafka, config_.topic, dedup_.get(),
      {.now = now_(),
       .horizon = config_.limits.dedup_horizon,
       .margin = config_.kafka_message_timeout + config_.limits.future_skew_max,
       .timeout = config_.dedup_catch_up_timeout});
  if (!stats.ok()) {
    return absl::Status(stats.status().code(), absl::StrCat("dedup catch-up from ", config_.topic,
                                                            ": ", stats.status().message()));
  }
  LOG(INFO) << "dedup index caught up from " << config_.topic << " since "
            << absl::FormatTime(stats->since) << ": " << stats->records_read << " records read, "
            << stats->recorded << " transactions recorded";
  return absl::OkStatus();
}

void IngestApp::PruneLoop() {
  while (!stop_pruning_.WaitForNotificationWithTimeout(config_.prune_interval)) {
    // A call validates a device time against its own clock reading and looks the id up as much
    // as ack_timeout later: an entry just past the horizon then must still be there.
    const absl::Time cutoff = now_() - config_.limits.dedup_horizon - config_.ack_timeout;
    if (absl::Status written = dedup_->PersistCatchUpMark(); !written.ok()) {
      LOG(WARNING) << "dedup catch-up mark still unwritten (retried next interval): " << written;
    }
    for (;;) {
      // Steps of 5,000 ids: commits wait for each step (a few milliseconds).
      absl::StatusOr<int64_t> pruned = dedup_->Prune(cutoff, 5000);
      if (!pruned.ok()) {
        LOG(WARNING) << "dedup prune failed (retried next interval): " << pruned.status();
        break;
      }
      metrics_->dedup_pruned.Increment(*pruned);
      if (*pruned == 0 || stop_pruning_.HasBeenNotified()) break;
    }
  }
}

void IngestApp::WatchProducer() {
  // A fatal producer error cannot heal: every later upload would be answered UNAVAILABLE while
  // the pod looked ready. Stop instead, so the client's retries reach a restarted ingest.
  while (!stop_watching_.WaitForNotificationWithTimeout(absl::Milliseconds(100))) {
    if (!producer_->fatal()) continue;
    LOG(ERROR) << "kafka producer hit a fatal error: stopping ingest so that it restarts";
    {
      absl::MutexLock lock(&error_mu_);
      error_ = absl::InternalError("kafka producer hit a fatal error");
    }
    if (exposer_ != nullptr) exposer_->SetReady(false);
    kill(getpid(), SIGTERM);  // main's WaitForShutdownSignal returns; main exits non-zero
    return;
  }
}

absl::Status IngestApp::error() const {
  absl::MutexLock lock(&error_mu_);
  return error_;
}

void IngestApp::Shutdown(absl::Time deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  if (exposer_ != nullptr) exposer_->SetReady(false);  // leave the Service's endpoints first
  // Reverse order: calls, then Kafka (the flush runs the last delivery callbacks, which touch
  // the ingestor and the store), then the pruner, the endpoint and the store.
  if (server_ != nullptr) server_->Shutdown(deadline);
  unauthenticated_metric_.Reset();
  if (watcher_.joinable()) {
    stop_watching_.Notify();
    watcher_.join();
  }
  producer_.reset();
  if (pruner_.joinable()) {
    stop_pruning_.Notify();
    pruner_.join();
  }
  // The purge's failed reports may have lowered the catch-up mark after the pruner last wrote it.
  if (dedup_ != nullptr) {
    if (absl::Status written = dedup_->PersistCatchUpMark(); !written.ok()) {
      LOG(ERROR) << "dedup catch-up mark not written at shutdown: " << written;
    }
  }
  if (exposer_ != nullptr) exposer_->Stop();
}

IngestApp::~IngestApp() {
  Shutdown(absl::Now() + absl::Seconds(5));
  exposer_.reset();
  server_.reset();
  service_.reset();
  ingestor_.reset();
  validator_.reset();
  runtime_metrics_.reset();
  dedup_.reset();
  store_.reset();
}

}  // namespace tongka::ingest
