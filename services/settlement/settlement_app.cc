#include "services/settlement/settlement_app.h"

#include <glog/logging.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "libs/event_log/admin.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"

namespace tongka::settlement {
namespace {

// The store's key layout (StateStoreOptions::layout): bump it when keys or values change meaning.
// 2: the id index as one chunk per (origin window, hour, partition bucket), appended to.
constexpr char kStoreLayout[] = "settlement/3";
constexpr char kFeeScheduleKey[] = "config/fee_schedule";
constexpr int kMetricWindows = 14;         // windows with state gauges
constexpr int kMetricPositionWindows = 3;  // windows with net position gauges
constexpr absl::Duration kBackgroundTick = absl::Seconds(2);
constexpr absl::Duration kLedgerCatchUpTimeout = absl::Minutes(30);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SettlementApp>> SettlementApp::Create(
    const SettlementConfig& config) {
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  std::unique_ptr<SettlementApp> app(new SettlementApp(config));
  if (absl::Status wired = app->Wire(); !wired.ok()) {
    app->Shutdown(absl::Now());
    return wired;
  }
  return app;
}

absl::Status SettlementApp::CheckFeeSchedule() {
  // Fees are computed when a transaction is applied: a store built under one schedule that kept
  // going under another would mix the two silently. A change means a rebuild (or a new window
  // topic version), decided by people, not by a restart.
  const std::string canonical = fees_->Canonical();
  absl::StatusOr<std::optional<std::string>> stored = store_->Get(kFeeScheduleKey);
  if (!stored.ok()) return stored.status();
  if (stored->has_value() && **stored != canonical) {
    return absl::FailedPreconditionError(absl::StrCat(
        "fee_schedule: this store was built under \"", **stored, "\", not \"", canonical,
        "\"; rebuild the store from the log (empty state_dir) to change the schedule"));
  }
  if (!stored->has_value()) {
    state_store::StateBatch batch(store_.get());
    batch.Put(kFeeScheduleKey, canonical);
    return store_->Commit(batch);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<state_store::ApplyLoop>> SettlementApp::StartLoop(
    const std::string& name, const std::string& topic, state_store::Applier* applier,
    int32_t replica_index, int32_t replica_count) {
  event_log::KafkaClientConfig kafka{
      .bootstrap_servers = config_.kafka_bootstrap,
      .client_id = absl::StrCat("tongka-settlement-", name, "-", config_.replica_index),
      .tls_ca_path = config_.kafka_ca_path,
      .tls_cert_path = config_.kafka_cert_path,
      .tls_key_path = config_.kafka_key_path};
  absl::StatusOr<std::unique_ptr<event_log::PartitionConsumer>> consumer =
      event_log::PartitionConsumer::Create(kafka, absl::StrCat("tongka-settlement-", name));
  if (!consumer.ok()) return consumer.status();
  auto loop = std::make_unique<state_store::ApplyLoop>(
      store_.get(), std::move(*consumer), applier,
      state_store::ApplyLoopOptions{
          .topics = {topic},
          .replica_index = replica_index,
          .replica_count = replica_count,
          .batch_max_records = static_cast<size_t>(config_.batch_max_records),
          .batch_seconds = runtime_metrics_->BatchSeconds(name)});
  if (absl::Status started = loop->Start(); !started.ok()) return started;
  runtime_metrics_->WatchLoop(name, loop.get());
  return loop;
}

void SettlementApp::RunLoop(state_store::ApplyLoop* loop) {
  absl::Status status = loop->Run(stop_loops_);
  if (status.ok()) return;
  LOG(ERROR) << "settlement apply loop failed, stopping the service: " << status;
  {
    absl::MutexLock lock(&error_mu_);
    if (error_.ok()) error_ = status;
  }
  stop_loops_.store(true);
  kill(getpid(), SIGTERM);  // main's WaitForShutdownSignal returns; main exits non-zero
}

absl::Status SettlementApp::MakePeers() {
  if (config_.replica_count == 1) return absl::OkStatus();
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (config_.grpc.auth_mode == server::AuthMode::kDevToken) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    // Replicas call each other with their own server certificate, whose subject CN is
    // platform:settlement, against the same CA.
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = ReadFile(config_.grpc.tls_client_ca_path);
    tls.pem_cert_chain = ReadFile(config_.grpc.tls_cert_path);
    tls.pem_private_key = ReadFile(config_.grpc.tls_key_path);
    credentials = grpc::SslCredentials(tls);
  }
  for (const std::string& peer : config_.peers) {
    peers_.push_back(v1::SettlementService::NewStub(grpc::CreateChannel(peer, credentials)));
  }
  return absl::OkStatus();
}

absl::Status SettlementApp::Wire() {
  // Phase 1: the store and what it was built under.
  metrics_ = std::make_unique<SettlementMetrics>(&registry_);
  absl::StatusOr<std::unique_ptr<state_store::StateStore>> store =
      state_store::StateStore::Open({.path = config_.state_dir, .layout = kStoreLayout});
  if (!store.ok()) return store.status();
  store_ = std::move(*store);
  runtime_metrics_ = std::make_unique<state_store::RuntimeMetrics>(&registry_, store_.get());
  calendar_.emplace(*BusinessCalendar::Create(config_.window_zone, config_.window_cut));
  fees_.emplace(*FeeSchedule::Parse(config_.fee_schedule));
  if (absl::Status fees = CheckFeeSchedule(); !fees.ok()) return fees;

  // Phase 2: the logic.
  txn_stage_ = std::make_unique<TxnStage>(&*calendar_, &*fees_);
  ledger_ = std::make_unique<WindowLedger>(LedgerOptions{.calendar = &*calendar_,
                                                         .replica_index = config_.replica_index,
                                                         .replica_count = config_.replica_count});

  // Phase 3: Kafka. The ledger first, caught up, so stage one knows what the log already holds.
  event_log::KafkaClientConfig kafka{
      .bootstrap_servers = config_.kafka_bootstrap,
      .client_id = absl::StrCat("tongka-settlement-", config_.replica_index),
      .tls_ca_path = config_.kafka_ca_path,
      .tls_cert_path = config_.kafka_cert_path,
      .tls_key_path = config_.kafka_key_path};
  absl::StatusOr<std::unique_ptr<event_log::Producer>> producer =
      event_log::Producer::Create(kafka);
  if (!producer.ok()) return producer.status();
  producer_ = std::move(*producer);
  // Every replica applies every window decision (replica 0 of 1 on this topic).
  absl::StatusOr<std::unique_ptr<state_store::ApplyLoop>> ledger_loop =
      StartLoop("ledger", kSettlementTopic, ledger_.get(), 0, 1);
  if (!ledger_loop.ok()) return ledger_loop.status();
  ledger_loop_ = std::move(*ledger_loop);
  threads_.emplace_back([this] { RunLoop(ledger_loop_.get()); });
  const absl::Time catch_up_deadline = absl::Now() + kLedgerCatchUpTimeout;
  while (true) {
    absl::StatusOr<bool> caught_up = ledger_loop_->CaughtUp();
    if (caught_up.ok() && *caught_up) break;
    if (absl::Status failed = error(); !failed.ok()) return failed;
    if (absl::Now() > catch_up_deadline) {
      return absl::DeadlineExceededError("the ledger did not catch up with tongka.settlement");
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::StatusOr<std::unique_ptr<state_store::ApplyLoop>> txn_loop =
      StartLoop("txn", kTxnTopic, txn_stage_.get(), config_.replica_index, config_.replica_count);
  if (!txn_loop.ok()) return txn_loop.status();
  txn_loop_ = std::move(*txn_loop);
  threads_.emplace_back([this] { RunLoop(txn_loop_.get()); });
  publisher_ = std::make_unique<state_store::OutboxPublisher>(
      store_.get(), producer_.get(), state_store::OutboxPublisherOptions{});
  runtime_metrics_->WatchPublisher(publisher_.get());
  threads_.emplace_back([this] { publisher_->Run(stop_publisher_); });

  // Phase 4: the API and the gRPC server.
  if (absl::Status peers = MakePeers(); !peers.ok()) return peers;
  std::optional<server::DevTokenIssuer> issuer;
  if (config_.grpc.auth_mode == server::AuthMode::kDevToken) {
    absl::StatusOr<server::DevTokenIssuer> made =
        server::DevTokenIssuer::Create(config_.grpc.dev_token_secret);
    if (!made.ok()) return made.status();
    issuer.emplace(std::move(*made));
  }
  api_ = std::make_unique<SettlementApi>(SettlementApiDeps{
      .store = store_.get(),
      .producer = producer_.get(),
      .calendar = &*calendar_,
      .ledger_next_offset =
          [this](int32_t partition) {
            auto progress = ledger_loop_->Progress();
            auto it = progress.find({kSettlementTopic, partition});
            return it == progress.end() ? int64_t{-1} : it->second.next_offset;
          },
      .replica_index = config_.replica_index,
      .replica_count = config_.replica_count,
      .peer_call = [this, issuer](int32_t replica, const v1::ListCellTransactionsRequest& request)
          -> absl::StatusOr<v1::ListCellTransactionsResponse> {
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
        if (issuer.has_value()) {
          absl::StatusOr<std::string> token =
              issuer->Issue(server::PlatformTenant(kServiceName), absl::Now() + absl::Minutes(5));
          if (!token.ok()) return token.status();
          server::AttachDevToken(&context, *token);
        }
        v1::ListCellTransactionsResponse response;
        grpc::Status status = peers_[static_cast<size_t>(replica)]->ListCellTransactions(
            &context, request, &response);
        if (!status.ok()) return server::FromGrpcStatus(status);
        return response;
      },
      .command_timeout = config_.command_timeout});
  absl::StatusOr<std::shared_ptr<const server::Authenticator>> authenticator =
      server::MakeAuthenticator(config_.grpc);
  if (!authenticator.ok()) return authenticator.status();
  authenticator_ = std::move(*authenticator);
  service_ = std::make_unique<SettlementService>(api_.get(), authenticator_, metrics_.get());
  absl::StatusOr<std::unique_ptr<server::GrpcServer>> server =
      server::GrpcServer::Start(config_.grpc, authenticator_, {service_.get()});
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  unauthenticated_metric_ = registry_.AddCallbackCounter(
      "tongka_grpc_unauthenticated_calls_total",
      "Calls refused before any handler for missing or bad credentials.", [server = server_.get()] {
        return static_cast<double>(server->unauthenticated_calls_total());
      });

  // Phase 5: the scheduler and refresher, then the metrics endpoint.
  background_ = std::thread([this] { BackgroundLoop(); });
  if (config_.metrics_port >= 0) {
    exposer_ = std::make_unique<metrics::HttpExposer>(
        &registry_,
        metrics::HttpExposerOptions{.host = config_.metrics_host, .port = config_.metrics_port});
    if (absl::Status started = exposer_->Start(); !started.ok()) return started;
  }
  LOG(INFO) << "settlement serving on :" << server_->port() << " ("
            << server::AuthModeName(config_.grpc.auth_mode) << "), replica "
            << config_.replica_index << "/" << config_.replica_count
            << ", metrics on :" << metrics_port() << ", windows cut at "
            << absl::FormatDuration(config_.window_cut) << " " << config_.window_zone << ", fees "
            << fees_->Canonical();
  return absl::OkStatus();
}

absl::StatusOr<bool> SettlementApp::AllApplied() {
  absl::StatusOr<bool> txn = txn_loop_->CaughtUp();
  if (!txn.ok() || !*txn) return txn;
  if (store_->OutboxDepth() > 0) return false;
  return ledger_loop_->CaughtUp();
}

void SettlementApp::Schedule() {
  absl::StatusOr<std::vector<std::pair<std::string, WindowRecord>>> windows =
      ReadWindows(ViewOf(*store_));
  if (!windows.ok()) {
    LOG_EVERY_N(WARNING, 30) << "scheduler cannot read windows: " << windows.status();
    return;
  }
  const absl::Time now = absl::Now();
  for (const auto& [window_id, window] : *windows) {
    const absl::Time end = calendar_->End(*ParseWindowId(window_id));
    v1::WindowState target = v1::WINDOW_STATE_UNSPECIFIED;
    if (window.state() == v1::WINDOW_STATE_OPEN && now >= end) target = v1::WINDOW_STATE_CLOSING;
    if (window.state() == v1::WINDOW_STATE_CLOSING && now >= end + config_.close_grace) {
      target = v1::WINDOW_STATE_CLOSED;
    }
    if (target == v1::WINDOW_STATE_UNSPECIFIED) continue;
    // The same request id from every replica: the ledger applies the first, drops the rest.
    const std::string request_id = absl::StrCat(
        "schedule-", window_id, "-", target == v1::WINDOW_STATE_CLOSED ? "closed" : "closing");
    const v1::Tenant platform = server::PlatformTenant(kServiceName);
    v1::Event event;
    event.set_event_id(absl::StrCat("cmd/", server::TenantName(platform), "/", request_id));
    *event.mutable_source() = platform;
    v1::WindowCloseRequested* body = event.mutable_window_close_requested();
    body->set_request_id(request_id);
    body->set_window_id(window_id);
    body->set_target_state(target);
    absl::StatusOr<RequestOutcome> outcome = api_->SubmitCommand(window_id, std::move(event));
    if (!outcome.ok()) {
      LOG(WARNING) << "scheduled " << request_id << " not decided yet: " << outcome.status();
      continue;
    }
    LOG(INFO) << "schedule: window " << window_id << " -> " << v1::WindowState_Name(target)
              << (outcome->accepted() ? "" : absl::StrCat(" refused: ", outcome->rule()));
  }
}

void SettlementApp::RefreshMetrics() {
  const StateView view = ViewOf(*store_);
  absl::StatusOr<LedgerStats> stats = ReadStats(view);
  if (stats.ok()) {
    metrics_->invariant_violations.store(stats->invariant_violations);
    metrics_->report_mismatches.store(stats->report_mismatches);
    metrics_->late_deltas.store(stats->late_deltas);
    metrics_->duplicates_dropped.store(stats->duplicates_dropped);
    metrics_->txn_invalid.store(stats->txn_invalid);
    metrics_->ledger_unparseable.store(stats->ledger_unparseable);
  }
  absl::StatusOr<std::vector<std::pair<std::string, WindowRecord>>> windows = ReadWindows(view);
  if (windows.ok()) {
    int n = 0;
    for (auto it = windows->rbegin(); it != windows->rend() && n < kMetricWindows; ++it, ++n) {
      const std::string& id = it->first;
      metrics_->window_state.WithLabels({id}).Set(it->second.state());
      metrics_->window_transactions.WithLabels({id}).Set(
          static_cast<double>(it->second.transactions()));
      if (n >= kMetricPositionWindows) continue;
      absl::StatusOr<std::vector<v1::SettlementCell>> pairs = ReadPairs(view, id);
      if (!pairs.ok()) continue;
      int64_t cross = 0, same = 0, fee = 0;
      for (const v1::SettlementCell& pair : *pairs) {
        if (pair.issuer_city() == pair.acquirer_city()) {
          same += GrossFenOf(pair);
        } else {
          cross += GrossFenOf(pair);
          fee += pair.fee_fen();
        }
      }
      metrics_->window_gross.WithLabels({id, "cross_city"}).Set(static_cast<double>(cross));
      metrics_->window_gross.WithLabels({id, "same_city"}).Set(static_cast<double>(same));
      metrics_->window_fee.WithLabels({id}).Set(static_cast<double>(fee));
      // Named: a range-for over a temporary's member would read the destroyed report.
      const v1::SettlementReport report = BuildReport(id, *pairs);
      for (const v1::NetPosition& net : report.net()) {
        metrics_->net_position.WithLabels({id, absl::StrCat(net.city())})
            .Set(static_cast<double>(net.net_fen()));
      }
    }
  }
  absl::StatusOr<std::map<uint32_t, FloatRecord>> floats = ReadFloats(view);
  if (floats.ok()) {
    for (const auto& [city, record] : *floats) {
      const std::string label = absl::StrCat(city);
      const int64_t outstanding = record.loads_fen() - record.spent_fen() + record.refunded_fen();
      metrics_->float_outstanding.WithLabels({label}).Set(static_cast<double>(outstanding));
      metrics_->float_reserve.WithLabels({label}).Set(static_cast<double>(record.reserve_fen()));
      if (outstanding > 0) {
        metrics_->float_coverage.WithLabels({label}).Set(static_cast<double>(record.reserve_fen()) /
                                                         static_cast<double>(outstanding));
      }
    }
  }
}

void SettlementApp::BackgroundLoop() {
  absl::Time next_schedule = absl::InfinitePast();
  while (!stop_background_.WaitForNotificationWithTimeout(kBackgroundTick)) {
    if (!ready_.load()) {
      absl::StatusOr<bool> done = AllApplied();
      if (done.ok() && *done) {
        ready_.store(true);
        if (exposer_ != nullptr) exposer_->SetReady(true);
        LOG(INFO) << "caught up with tongka.txn and tongka.settlement; ready";
      }
    }
    RefreshMetrics();
    if (config_.schedule_close && absl::Now() >= next_schedule) {
      next_schedule = absl::Now() + absl::Seconds(10);
      Schedule();
    }
  }
}

absl::Status SettlementApp::error() const {
  absl::MutexLock lock(&error_mu_);
  return error_;
}

void SettlementApp::Shutdown(absl::Time deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  if (exposer_ != nullptr) exposer_->SetReady(false);
  if (server_ != nullptr) server_->Shutdown(deadline);
  stop_background_.Notify();
  if (background_.joinable()) background_.join();
  stop_loops_.store(true);
  stop_publisher_.store(true);
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  unauthenticated_metric_.Reset();
  if (exposer_ != nullptr) exposer_->Stop();
}

SettlementApp::~SettlementApp() {
  Shutdown(absl::Now() + absl::Seconds(5));
  // Reverse order of Wire.
  exposer_.reset();
  server_.reset();
  service_.reset();
  api_.reset();
  peers_.clear();
  publisher_.reset();
  txn_loop_.reset();
  ledger_loop_.reset();
  producer_.reset();
  runtime_metrics_.reset();
  store_.reset();
}

}  // namespace tongka::settlement
