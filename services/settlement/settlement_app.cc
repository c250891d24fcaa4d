#include "services/settlement/settlement_app.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
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
constexpr int kScheduleEveryTicks = 5;  // the schedule runs every 10 s
constexpr absl::Duration kLedgerCatchUpTimeout = absl::Minutes(30);
constexpr absl::Duration kPeerCallTimeout = absl::Seconds(30);

}  // namespace

SettlementApp::SettlementApp(SettlementConfig config, const service::Clock* clock)
    : config_(std::move(config)),
      runtime_({.name = "settlement", .common = service::CommonPartOf(config_), .clock = clock}) {}

absl::StatusOr<std::unique_ptr<SettlementApp>> SettlementApp::Create(const SettlementConfig& config,
                                                                     const service::Clock* clock) {
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  return Wired(std::unique_ptr<SettlementApp>(new SettlementApp(config, clock)));
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
    state_store::StateBatch batch(store_);
    batch.Put(kFeeScheduleKey, canonical);
    return store_->Commit(batch);
  }
  return absl::OkStatus();
}

absl::Status SettlementApp::Wire() {
  // Phase 0: the report digests and the id index are SM3.
  if (absl::Status crypto_ok = runtime_.CheckCrypto(); !crypto_ok.ok()) return crypto_ok;

  // Phase 1: the store and what it was built under.
  metrics_ = std::make_unique<SettlementMetrics>(&runtime_.registry());
  absl::StatusOr<state_store::StateStore*> store = runtime_.OpenStore({.layout = kStoreLayout});
  if (!store.ok()) return store.status();
  store_ = *store;
  calendar_.emplace(*BusinessCalendar::Create(config_.window_zone, config_.window_cut));
  fees_.emplace(*FeeSchedule::Parse(config_.fee_schedule));
  if (absl::Status fees = CheckFeeSchedule(); !fees.ok()) return fees;

  // Phase 2: the logic.
  txn_stage_ = std::make_unique<TxnStage>(&*calendar_, &*fees_);
  ledger_ = std::make_unique<WindowLedger>(LedgerOptions{.calendar = &*calendar_,
                                                         .replica_index = config_.replica_index,
                                                         .replica_count = config_.replica_count});

  // Phase 3: Kafka. The ledger first, caught up, so stage one knows what the log already holds.
  absl::StatusOr<event_log::Producer*> producer = runtime_.AddProducer(runtime_.KafkaClient());
  if (!producer.ok()) return producer.status();
  // Every replica applies every window decision (replica 0 of 1 on this topic).
  absl::StatusOr<state_store::ApplyLoop*> ledger_loop =
      runtime_.AddLoop({.name = "ledger",
                        .topics = {kSettlementTopic},
                        .applier = ledger_.get(),
                        .replica_index = 0,
                        .replica_count = 1,
                        .batch_max_records = static_cast<size_t>(config_.batch_max_records)});
  if (!ledger_loop.ok()) return ledger_loop.status();
  ledger_loop_ = *ledger_loop;
  runtime_.RunLoops();
  if (absl::Status caught_up = runtime_.WaitCaughtUp(ledger_loop_, kLedgerCatchUpTimeout);
      !caught_up.ok()) {
    return absl::Status(caught_up.code(), absl::StrCat("the ledger on ", kSettlementTopic, ": ",
                                                       caught_up.message()));
  }
  absl::StatusOr<state_store::ApplyLoop*> txn_loop =
      runtime_.AddLoop({.name = "txn",
                        .topics = {kTxnTopic},
                        .applier = txn_stage_.get(),
                        .batch_max_records = static_cast<size_t>(config_.batch_max_records)});
  if (!txn_loop.ok()) return txn_loop.status();
  runtime_.RunLoops();
  runtime_.RunPublisher(*producer);

  // Phase 4: the API and the gRPC server.
  if (config_.replica_count > 1) {
    absl::StatusOr<service::PeerChannels> peer_channels =
        service::PeerChannels::Create(config_.grpc, kServiceName, runtime_.clock());
    if (!peer_channels.ok()) return peer_channels.status();
    peer_channels_.emplace(*std::move(peer_channels));
    for (const std::string& peer : config_.peers) {
      peers_.push_back(v1::SettlementService::NewStub(peer_channels_->Channel(peer)));
    }
  }
  api_ = std::make_unique<SettlementApi>(SettlementApiDeps{
      .store = store_,
      .producer = *producer,
      .calendar = &*calendar_,
      .ledger_next_offset =
          [this](int32_t partition) {
            auto progress = ledger_loop_->Progress();
            auto it = progress.find({kSettlementTopic, partition});
            return it == progress.end() ? int64_t{-1} : it->second.next_offset;
          },
      .replica_index = config_.replica_index,
      .replica_count = config_.replica_count,
      .peer_call = [this](int32_t replica, const v1::ListCellTransactionsRequest& request)
          -> absl::StatusOr<v1::ListCellTransactionsResponse> {
        grpc::ClientContext context;
        if (absl::Status ready = peer_channels_->Prepare(&context, kPeerCallTimeout); !ready.ok()) {
          return ready;
        }
        v1::ListCellTransactionsResponse response;
        grpc::Status status = peers_[static_cast<size_t>(replica)]->ListCellTransactions(
            &context, request, &response);
        if (!status.ok()) return server::FromGrpcStatus(status);
        return response;
      },
      .command_timeout = config_.command_timeout});
  absl::StatusOr<std::shared_ptr<const server::Authenticator>> authenticator =
      runtime_.MakeAuthenticator(config_.grpc);
  if (!authenticator.ok()) return authenticator.status();
  service_ = std::make_unique<SettlementService>(api_.get(), *authenticator, metrics_.get());
  absl::StatusOr<server::GrpcServer*> server =
      runtime_.ServeGrpc(config_.grpc, *authenticator, {service_.get()});
  if (!server.ok()) return server.status();

  // Phase 5: the scheduler and refresher, then the metrics endpoint and readiness.
  scheduler_ = std::make_unique<WindowScheduler>(
      &*calendar_, runtime_.clock(), config_.close_grace,
      [this] { return ReadWindows(ViewOf(*store_)); },
      [this](const std::string& window_id, v1::Event event) {
        return api_->SubmitCommand(window_id, std::move(event));
      });
  background_ = std::thread([this] { BackgroundLoop(); });
  runtime_.OnStop([this] {
    stop_background_.Notify();
    if (background_.joinable()) background_.join();
  });
  if (absl::Status serving = runtime_.Serve(); !serving.ok()) return serving;
  LOG(INFO) << "settlement serving on :" << grpc_port() << " ("
            << server::AuthModeName(config_.grpc.auth_mode) << "), replica "
            << config_.replica_index << "/" << config_.replica_count
            << ", metrics on :" << metrics_port() << ", windows cut at "
            << absl::FormatDuration(config_.window_cut) << " " << config_.window_zone << ", fees "
            << fees_->Canonical();
  return absl::OkStatus();
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
  int tick = 0;
  do {
    RefreshMetrics();
    if (config_.schedule_close && tick++ % kScheduleEveryTicks == 0) scheduler_->Tick();
  } while (!stop_background_.WaitForNotificationWithTimeout(kBackgroundTick));
}

void SettlementApp::Shutdown(absl::Time deadline) { runtime_.Shutdown(deadline); }

SettlementApp::~SettlementApp() {
  // The members then go in reverse order of declaration, which is the reverse of Wire.
  Shutdown(absl::Now() + absl::Seconds(5));
}

}  // namespace tongka::settlement
