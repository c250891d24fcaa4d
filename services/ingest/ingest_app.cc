#include "services/ingest/ingest_app.h"

#include <glog/logging.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "services/ingest/dedup_catch_up.h"

namespace tongka::ingest {

IngestApp::IngestApp(IngestConfig config, std::unique_ptr<service::Clock> owned_clock,
                     const service::Clock* clock)
    : config_(std::move(config)),
      owned_clock_(std::move(owned_clock)),
      clock_(owned_clock_ != nullptr ? owned_clock_.get()
             : clock != nullptr      ? clock
                                     : service::SystemClock::Get()),
      runtime_({.name = "ingest", .common = service::CommonPartOf(config_), .clock = clock_}) {}

absl::StatusOr<std::unique_ptr<IngestApp>> IngestApp::Create(const IngestConfig& config,
                                                             server::NowFn now) {
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  return Wired(std::unique_ptr<IngestApp>(
      new IngestApp(config, std::make_unique<service::FunctionClock>(std::move(now)), nullptr)));
}

absl::StatusOr<std::unique_ptr<IngestApp>> IngestApp::Create(const IngestConfig& config,
                                                             const service::Clock* clock) {
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  return Wired(std::unique_ptr<IngestApp>(new IngestApp(config, nullptr, clock)));
}

absl::Status IngestApp::Wire() {
  // Phase 0: MAC checks (SM4-CMAC) and event ids (SM3).
  if (absl::Status crypto_ok = runtime_.CheckCrypto(); !crypto_ok.ok()) return crypto_ok;
  metrics_ = std::make_unique<IngestMetrics>(&runtime_.registry());

  // Phase 1: the store (the dedup index: its layout, upgrades and options are the index's) and
  // its runtime metrics (RocksDB size).
  absl::StatusOr<state_store::StateStore*> store =
      runtime_.OpenStore(DedupIndex::StoreOptions(config_.state_dir));
  if (!store.ok()) return store.status();
  dedup_ = std::make_unique<DedupIndex>(*store);
  // After the producer's last delivery reports (which may lower the mark), at the end of a stop.
  runtime_.OnStop([this] {
    if (absl::Status written = dedup_->PersistCatchUpMark(); !written.ok()) {
      LOG(ERROR) << "dedup catch-up mark not written at shutdown: " << written;
    }
  });

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

  // Phase 3: Kafka and the IngestApi.
  event_log::KafkaClientConfig kafka = runtime_.KafkaClient();
  kafka.overrides = config_.kafka_overrides;
  event_log::KafkaClientConfig producing = kafka;
  producing.overrides["message.timeout.ms"] =
      absl::StrCat(absl::ToInt64Milliseconds(config_.kafka_message_timeout));
  absl::StatusOr<event_log::Producer*> producer = runtime_.AddProducer(producing);
  if (!producer.ok()) return producer.status();
  producer_ = *producer;
  if (absl::Status topics = CheckTopics(); !topics.ok()) return topics;
  // The member registry's decisions (suspensions, accepted issuers), followed in the background;
  // not ready until the view has read what the topic held at start.
  event_log::KafkaClientConfig members_kafka = runtime_.KafkaClient("members");
  members_kafka.overrides = config_.kafka_overrides;
  absl::StatusOr<std::unique_ptr<MembersView>> members = MembersView::Start(
      members_kafka,
      [this](const absl::Status& error) { runtime_.Fail(error, "the member view"); });
  if (!members.ok()) return members.status();
  members_ = *std::move(members);
  runtime_.OnStop([this] { members_->Stop(); });
  runtime_.AddReadyCondition([this] { return members_->caught_up(); });
  validator_ = std::make_unique<Validator>(config_.limits, &*keyring_, members_.get());
  // The log is the truth: before serving, record what Kafka has that the index may have missed
  // (a crash between Kafka's ack and the index write), so a retry of it is a DUPLICATE.
  if (absl::Status caught_up = CatchUp(kafka); !caught_up.ok()) return caught_up;
  ingest_api_ = std::make_unique<IngestApi>(
      validator_.get(), dedup_.get(), producer_, metrics_.get(), service::NowFnOf(clock_),
      IngestApiOptions{.topic = config_.topic,
                       .conflict_topic = config_.conflict_topic,
                       .ack_timeout = config_.ack_timeout,
                       .retry_after = config_.retry_after,
                       .max_inflight_items = config_.max_inflight_items});
  pruner_ = std::thread([this] { PruneLoop(); });
  runtime_.OnStop([this] {
    stop_pruning_.Notify();
    pruner_.join();
  });

  // Phase 4: the gRPC server.
  absl::StatusOr<std::shared_ptr<const server::Authenticator>> authenticator =
      runtime_.MakeAuthenticator(config_.grpc);
  if (!authenticator.ok()) return authenticator.status();
  service_ = std::make_unique<IngestService>(
      ingest_api_.get(), *authenticator, metrics_.get(),
      IngestServiceOptions{.max_concurrent_calls = config_.max_concurrent_calls,
                           .stream_window = config_.stream_window,
                           .retry_after = config_.retry_after});
  absl::StatusOr<server::GrpcServer*> server =
      runtime_.ServeGrpc(config_.grpc, *authenticator, {service_.get()});
  if (!server.ok()) return server.status();

  // Phase 5: the metrics endpoint and the producer watch, last.
  if (absl::Status serving = runtime_.Serve(); !serving.ok()) return serving;
  LOG(INFO) << "ingest serving on :" << grpc_port() << " ("
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
      {.now = clock_->Now(),
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
    const absl::Time cutoff = clock_->Now() - config_.limits.dedup_horizon - config_.ack_timeout;
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

IngestApp::~IngestApp() {
  // The members then go in reverse order of declaration, which is the reverse of Wire.
  Shutdown(absl::Now() + absl::Seconds(5));
}

}  // namespace tongka::ingest
