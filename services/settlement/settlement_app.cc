#include "services/settlement/settlement_app.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/server/tenant.h"

namespace tongka::settlement {
namespace {

// The store's key layout (StateStoreOptions::layout): bump it when keys or values change meaning.
constexpr char kStoreLayout[] = "settlement/5";
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

absl::Status SettlementApp::CheckRules() {
  // The rules that shape money are on the log. An empty log gets the genesis rules from the
  // flags; otherwise each flag that is set must say what the log says for the current window.
  absl::StatusOr<std::shared_ptr<const RulesTimeline>> rules = api_->Rules();
  if (!rules.ok()) return rules.status();
  if (*rules == nullptr) {
    // A log that already counted money without rules on it (written before the rules were
    // events) was windowed and priced under flags nobody recorded: the genesis must say them,
    // not defaults.
    absl::StatusOr<std::vector<std::pair<std::string, WindowRecord>>> windows =
        ReadWindows(ViewOf(*store_));
    if (!windows.ok()) return windows.status();
    if (!windows->empty() &&
        (config_.window_zone.empty() || config_.window_cut == absl::ZeroDuration() ||
         config_.fee_schedule.empty())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "settlement rules: tongka.settlement holds ", windows->size(),
          " window(s) but no rules; give --window_zone, --window_cut and --fee_schedule as they "
          "were when that money was counted, to record them as the genesis rules"));
    }
    absl::StatusOr<RequestOutcome> genesis = api_->RecordGenesisRules(config_.GenesisRules());
    if (!genesis.ok()) return genesis.status();
    if (!genesis->accepted()) {
      return absl::FailedPreconditionError(
          absl::StrCat("settlement rules: the genesis was refused: ", genesis->rule(), ": ",
                       genesis->message()));
    }
    rules = api_->Rules();
    if (!rules.ok()) return rules.status();
    if (*rules == nullptr) {
      return absl::InternalError(absl::StrCat("the genesis rules were decided (", genesis->rule(),
                                              " ", genesis->message(),
                                              ") but are not in the store"));
    }
  }
  const absl::Time now = runtime_.clock()->Now();
  const absl::CivilDay today = (*rules)->DayOf(now);
  const RulesPeriod& in_force = (*rules)->For(today);
  const v1::SettlementRules& logged = in_force.rules();
  const v1::SettlementRules wanted = config_.GenesisRules();
  std::vector<std::string> disagreements;
  if (!config_.window_zone.empty() && wanted.zone() != logged.zone()) {
    disagreements.push_back(
        absl::StrCat("--window_zone=", config_.window_zone, " but the log says ", logged.zone()));
  }
  if (config_.window_cut != absl::ZeroDuration() && wanted.cut_minutes() != logged.cut_minutes()) {
    disagreements.push_back(absl::StrCat("--window_cut=", absl::FormatDuration(config_.window_cut),
                                         " but the log says ", logged.cut_minutes(), "m"));
  }
  if (!config_.fee_schedule.empty()) {
    absl::StatusOr<FeeSchedule> fees = FeeSchedule::Parse(config_.fee_schedule);
    if (!fees.ok()) return fees.status();
    if (fees->Canonical() != logged.fee_schedule()) {
      disagreements.push_back(absl::StrCat("--fee_schedule=", config_.fee_schedule,
                                           " but the log says ", logged.fee_schedule()));
    }
  }
  if (!disagreements.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "settlement rules: ", absl::StrJoin(disagreements, "; "), " (window ", WindowIdOf(today),
        ", rules ", in_force.rules_id(),
        in_force.genesis() ? ", the genesis"
                           : absl::StrCat(", from window ", in_force.effective_window_id()),
        "). Start without these flags to follow the log, or change the rules from a future "
        "window with ScheduleRules (tongka_ctl schedule-rules)"));
  }
  LOG(INFO) << "settlement rules for window " << WindowIdOf(today) << ": " << in_force.Describe()
            << " (" << in_force.rules_id() << "); " << (*rules)->periods().size()
            << " period(s) on the log";
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

  // Phase 2: the logic.
  txn_stage_ = std::make_unique<TxnStage>();
  ledger_ = std::make_unique<WindowLedger>(LedgerOptions{.replica_index = config_.replica_index,
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
  // Phase 4: the API, then the rules: recorded (an empty log) and checked against the flags
  // before stage one prices anything.
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
  if (absl::Status rules = CheckRules(); !rules.ok()) return rules;
  absl::StatusOr<state_store::ApplyLoop*> txn_loop =
      runtime_.AddLoop({.name = "txn",
                        .topics = {kTxnTopic, kCardsTopic},
                        .applier = txn_stage_.get(),
                        .batch_max_records = static_cast<size_t>(config_.batch_max_records)});
  if (!txn_loop.ok()) return txn_loop.status();
  runtime_.RunLoops();
  runtime_.RunPublisher(*producer);

  // Phase 5: the gRPC server.
  absl::StatusOr<std::shared_ptr<const server::Authenticator>> authenticator =
      runtime_.MakeAuthenticator(config_.grpc);
  if (!authenticator.ok()) return authenticator.status();
  service_ = std::make_unique<SettlementService>(api_.get(), *authenticator, metrics_.get());
  absl::StatusOr<server::GrpcServer*> server =
      runtime_.ServeGrpc(config_.grpc, *authenticator, {service_.get()});
  if (!server.ok()) return server.status();

  // Phase 6: the scheduler and refresher, then the metrics endpoint and readiness.
  scheduler_ = std::make_unique<WindowScheduler>(
      [this] { return api_->Rules(); }, runtime_.clock(), config_.close_grace,
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
            << ", metrics on :" << metrics_port();
  return absl::OkStatus();
}

void SettlementApp::RefreshMetrics() {
  const StateView view = ViewOf(*store_);
  absl::StatusOr<LedgerStats> stats = ReadStats(view);
  if (stats.ok()) {
    metrics_->invariant_violations.store(stats->invariant_violations);
    metrics_->report_mismatches.store(stats->report_mismatches);
    metrics_->rules_mixed.store(stats->rules_mixed);
    metrics_->refunds_capped.store(stats->refunds_capped);
    metrics_->late_deltas.store(stats->late_deltas);
    metrics_->duplicates_dropped.store(stats->duplicates_dropped);
    metrics_->float_transfers.store(stats->float_transfers);
    metrics_->txn_invalid.store(stats->txn_invalid);
    metrics_->ledger_unparseable.store(stats->ledger_unparseable);
  }
  absl::StatusOr<std::vector<std::pair<std::string, WindowRecord>>> windows = ReadWindows(view);
  absl::StatusOr<std::shared_ptr<const RulesTimeline>> rules = api_->Rules();
  if (windows.ok()) {
    int n = 0;
    for (auto it = windows->rbegin(); it != windows->rend() && n < kMetricWindows; ++it, ++n) {
      const std::string& id = it->first;
      metrics_->window_state.WithLabels({id}).Set(it->second.state());
      // Not a state decision (the rules sit in another partition): a watch on the lead time.
      if (rules.ok() && *rules != nullptr && !it->second.rules_id().empty()) {
        const bool disagree = (*rules)->For(*ParseWindowId(id)).rules_id() != it->second.rules_id();
        metrics_->window_rules_disagree.WithLabels({id}).Set(disagree ? 1 : 0);
      }
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
  // The folded view (as GetFloat shows it): a transfer moves the outstanding gauge from the
  // failed issuer to its successor and leaves their sum unchanged.
  absl::StatusOr<std::map<uint32_t, FoldedFloat>> floats = ReadFoldedFloats(view);
  if (floats.ok()) {
    for (const auto& [city, folded] : *floats) {
      const std::string label = absl::StrCat(city);
      const int64_t reserve = folded.record.reserve_fen();
      metrics_->float_outstanding.WithLabels({label}).Set(
          static_cast<double>(folded.outstanding_fen));
      metrics_->float_reserve.WithLabels({label}).Set(static_cast<double>(reserve));
      if (folded.successor != 0) {
        metrics_->float_transferred.WithLabels({label}).Set(static_cast<double>(folded.own_fen));
        // The failed issuer's escrow against what its cards hold, shown until it is spent.
        if (folded.own_fen > 0) {
          metrics_->float_coverage.WithLabels({label}).Set(static_cast<double>(reserve) /
                                                           static_cast<double>(folded.own_fen));
        }
      } else if (folded.outstanding_fen > 0) {
        metrics_->float_coverage.WithLabels({label}).Set(
            static_cast<double>(reserve) / static_cast<double>(folded.outstanding_fen));
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
