#include "services/card_registry/card_registry_app.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "libs/server/grpc_server.h"
#include "libs/server/tenant.h"
#include "services/card_registry/card_registry_keys.h"
#include "services/card_registry/holder_keys.h"

namespace tongka::card_registry {
namespace {

// The store's key layout (StateStoreOptions::layout): bump it when keys or values change meaning.
constexpr char kStoreLayout[] = "card_registry/1";
constexpr absl::Duration kRefreshTick = absl::Seconds(2);
constexpr absl::Duration kPeerCallTimeout = absl::Seconds(30);
constexpr absl::Duration kMetadataTimeout = absl::Seconds(30);

}  // namespace

CardRegistryApp::CardRegistryApp(CardRegistryConfig config, const service::Clock* clock)
    : config_(std::move(config)),
      runtime_({.name = kServiceName, .common = service::CommonPartOf(config_), .clock = clock}) {}

absl::StatusOr<std::unique_ptr<CardRegistryApp>> CardRegistryApp::Create(
    const CardRegistryConfig& config, const service::Clock* clock) {
  if (absl::Status valid = config.Validate(); !valid.ok()) return valid;
  return Wired(std::unique_ptr<CardRegistryApp>(new CardRegistryApp(config, clock)));
}

absl::Status CardRegistryApp::PeerForward(int32_t replica, const std::string& rpc,
                                          const v1::Tenant& tenant,
                                          const google::protobuf::Message& request,
                                          google::protobuf::Message* response) const {
  grpc::ClientContext context;
  if (absl::Status ready = peer_channels_->Prepare(&context, kPeerCallTimeout); !ready.ok()) {
    return ready;
  }
  context.AddMetadata(kOnBehalfOfHeader, server::TenantName(tenant));
  v1::CardRegistryService::Stub& stub = *peers_[static_cast<size_t>(replica)];
  grpc::Status status;
  // The api names the RPC and passes its request and response types.
#define TONGKA_FORWARD(Rpc, Request, Response)                              \
  if (rpc == #Rpc) {                                                        \
    status = stub.Rpc(&context, static_cast<const Request&>(request),       \
                      static_cast<Response*>(response));                    \
    return status.ok() ? absl::OkStatus() : server::FromGrpcStatus(status); \
  }
  TONGKA_FORWARD(IssueCard, v1::IssueCardRequest, v1::CardCommandResponse)
  TONGKA_FORWARD(IssueCards, v1::IssueCardsRequest, v1::IssueCardsResponse)
  TONGKA_FORWARD(ReportLost, v1::CardStatusRequest, v1::CardCommandResponse)
  TONGKA_FORWARD(BlockCard, v1::CardStatusRequest, v1::CardCommandResponse)
  TONGKA_FORWARD(UnblockCard, v1::CardStatusRequest, v1::CardCommandResponse)
  TONGKA_FORWARD(CloseCard, v1::CloseCardRequest, v1::CardCommandResponse)
  TONGKA_FORWARD(ReplaceCard, v1::ReplaceCardRequest, v1::CardCommandResponse)
  TONGKA_FORWARD(LinkVirtualCard, v1::LinkVirtualCardRequest, v1::CardCommandResponse)
  TONGKA_FORWARD(GetIssuerBalances, v1::GetIssuerBalancesRequest, v1::GetIssuerBalancesResponse)
  TONGKA_FORWARD(GetCard, v1::GetCardRequest, v1::GetCardResponse)
  TONGKA_FORWARD(FindCardsByHolder, v1::FindCardsByHolderRequest, v1::FindCardsByHolderResponse)
  TONGKA_FORWARD(GetHotlist, v1::GetHotlistRequest, v1::GetHotlistResponse)
  TONGKA_FORWARD(GetHotlistDelta, v1::GetHotlistDeltaRequest, v1::GetHotlistDeltaResponse)
#undef TONGKA_FORWARD
  v1::MemberRegistryService::Stub& members = *member_peers_[static_cast<size_t>(replica)];
#define TONGKA_FORWARD_MEMBER(Rpc, Request, Response)                       \
  if (rpc == #Rpc) {                                                        \
    status = members.Rpc(&context, static_cast<const Request&>(request),    \
                         static_cast<Response*>(response));                 \
    return status.ok() ? absl::OkStatus() : server::FromGrpcStatus(status); \
  }
  TONGKA_FORWARD_MEMBER(SetMemberStatus, v1::SetMemberStatusRequest, v1::MemberCommandResponse)
  TONGKA_FORWARD_MEMBER(TransferIssuer, v1::TransferIssuerRequest, v1::MemberCommandResponse)
  TONGKA_FORWARD_MEMBER(SetAcceptedIssuers, v1::SetAcceptedIssuersRequest,
                        v1::MemberCommandResponse)
  TONGKA_FORWARD_MEMBER(GetMember, v1::GetMemberRequest, v1::GetMemberResponse)
  TONGKA_FORWARD_MEMBER(ListMembers, v1::ListMembersRequest, v1::ListMembersResponse)
#undef TONGKA_FORWARD_MEMBER
  LOG(FATAL) << "no peer call for RPC " << rpc;
}

absl::Status CardRegistryApp::Wire() {
  // Phase 0: holder tokens are HMAC-SM3; the keys are read before anything else starts.
  if (absl::Status crypto_ok = runtime_.CheckCrypto(); !crypto_ok.ok()) return crypto_ok;
  std::shared_ptr<const HolderKeys> holder_keys = HolderKeys::Empty();
  if (!config_.holder_keys_path.empty()) {
    absl::StatusOr<std::shared_ptr<const HolderKeys>> keys =
        HolderKeys::FromFile(config_.holder_keys_path);
    if (!keys.ok()) {
      return absl::Status(keys.status().code(),
                          absl::StrCat("holder_keys_path: ", keys.status().message()));
    }
    holder_keys = *std::move(keys);
  } else {
    LOG(WARNING) << "no --holder_keys: cards with holder identity or a device id are refused";
  }

  // Phase 1: the store.
  metrics_ = std::make_unique<CardRegistryMetrics>(&runtime_.registry());
  absl::StatusOr<state_store::StateStore*> store = runtime_.OpenStore({.layout = kStoreLayout});
  if (!store.ok()) return store.status();
  store_ = *store;

  // Phase 3: Kafka. The two topics are co-partitioned by card id: a card's transactions and its
  // commands must share a partition number, or the ledger would key them apart.
  absl::StatusOr<event_log::Producer*> producer = runtime_.AddProducer(runtime_.KafkaClient());
  if (!producer.ok()) return producer.status();
  absl::StatusOr<int32_t> cards_partitions =
      (*producer)->PartitionCount(kCardsTopic, kMetadataTimeout);
  if (!cards_partitions.ok()) return cards_partitions.status();
  absl::StatusOr<int32_t> txn_partitions = (*producer)->PartitionCount(kTxnTopic, kMetadataTimeout);
  if (!txn_partitions.ok()) return txn_partitions.status();
  if (*cards_partitions != *txn_partitions) {
    return absl::FailedPreconditionError(
        absl::StrCat(kCardsTopic, " has ", *cards_partitions, " partitions and ", kTxnTopic, " ",
                     *txn_partitions, ": the per-card topics must be co-partitioned"));
  }
  partition_count_ = *cards_partitions;
  absl::StatusOr<state_store::ApplyLoop*> loop =
      runtime_.AddLoop({.name = "ledger",
                        .topics = {kCardsTopic, kTxnTopic},
                        .applier = &ledger_,
                        .batch_max_records = static_cast<size_t>(config_.batch_max_records)});
  if (!loop.ok()) return loop.status();
  loop_ = *loop;
  // The member registry: one partition, so that one writer decides every member command in log
  // order; its owner under p % N is replica 0, the only one that applies it.
  absl::StatusOr<int32_t> members_partitions =
      (*producer)->PartitionCount(kMembersTopic, kMetadataTimeout);
  if (!members_partitions.ok()) {
    return absl::Status(
        members_partitions.status().code(),
        absl::StrCat("topic ", kMembersTopic, ": ", members_partitions.status().message(),
                     " (created by deploy/k8s/base/kafka/topics.yaml)"));
  }
  if (*members_partitions != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(kMembersTopic, " has ", *members_partitions,
                     " partitions: the member registry needs exactly one (one writer decides)"));
  }
  if (config_.replica_index == 0) {
    member_ledger_ = std::make_unique<MemberLedger>(*cards_partitions);
    absl::StatusOr<state_store::ApplyLoop*> members =
        runtime_.AddLoop({.name = "members",
                          .topics = {kMembersTopic},
                          .applier = member_ledger_.get(),
                          .replica_index = 0,
                          .replica_count = 1,
                          .batch_max_records = static_cast<size_t>(config_.batch_max_records)});
    if (!members.ok()) return members.status();
    member_loop_ = *members;
  }
  runtime_.RunLoops();
  runtime_.RunPublisher(*producer);

  // Phase 4: the API and the gRPC server.
  if (config_.replica_count > 1) {
    absl::StatusOr<service::PeerChannels> peer_channels =
        service::PeerChannels::Create(config_.grpc, kServiceName, runtime_.clock());
    if (!peer_channels.ok()) return peer_channels.status();
    peer_channels_.emplace(*std::move(peer_channels));
    for (const std::string& peer : config_.peers) {
      peers_.push_back(v1::CardRegistryService::NewStub(peer_channels_->Channel(peer)));
      member_peers_.push_back(v1::MemberRegistryService::NewStub(peer_channels_->Channel(peer)));
    }
  }
  const service::Clock* clock = runtime_.clock();
  api_ = std::make_unique<CardRegistryApi>(CardRegistryApiDeps{
      .store = store_,
      .producer = *producer,
      .holder_keys = holder_keys,
      .partition_count = *cards_partitions,
      .cards_next_offset =
          [this](int32_t partition) {
            auto progress = loop_->Progress();
            auto it = progress.find({std::string(kCardsTopic), partition});
            return it == progress.end() ? int64_t{-1} : it->second.next_offset;
          },
      .replica_index = config_.replica_index,
      .replica_count = config_.replica_count,
      .peer_forward =
          [this](int32_t replica, const std::string& rpc, const v1::Tenant& tenant,
                 const google::protobuf::Message& request, google::protobuf::Message* response) {
            return PeerForward(replica, rpc, tenant, request, response);
          },
      .command_timeout = config_.command_timeout,
      .now = [clock] { return clock->Now(); }});
  absl::StatusOr<std::shared_ptr<const server::Authenticator>> authenticator =
      runtime_.MakeAuthenticator(config_.grpc);
  if (!authenticator.ok()) return authenticator.status();
  service_ = std::make_unique<CardRegistryService>(api_.get(), *authenticator, metrics_.get());
  member_api_ = std::make_unique<MemberApi>(MemberApiDeps{
      .store = store_,
      .producer = *producer,
      .members_next_offset = member_loop_ == nullptr ? std::function<int64_t()>() :
          [this]() {
            auto progress = member_loop_->Progress();
            auto it = progress.find({std::string(kMembersTopic), 0});
            return it == progress.end() ? int64_t{-1} : it->second.next_offset;
          },
      .replica_index = config_.replica_index,
      .replica_count = config_.replica_count,
      .peer_forward =
          [this](int32_t replica, const std::string& rpc, const v1::Tenant& tenant,
                 const google::protobuf::Message& request, google::protobuf::Message* response) {
            return PeerForward(replica, rpc, tenant, request, response);
          },
      .command_timeout = config_.command_timeout,
      .now = [clock] { return clock->Now(); }});
  member_service_ =
      std::make_unique<MemberService>(member_api_.get(), *authenticator, metrics_.get());
  absl::StatusOr<server::GrpcServer*> server =
      runtime_.ServeGrpc(config_.grpc, *authenticator, {service_.get(), member_service_.get()});
  if (!server.ok()) return server.status();
  // Runs before the gRPC server stops (reverse order): open WatchHotlist streams end.
  runtime_.OnStop([this] { api_->Stop(); });

  // Phase 5: the refresher, then the metrics endpoint and readiness.
  refresher_ = std::thread([this] { RefreshLoop(); });
  runtime_.OnStop([this] {
    stop_refresh_.Notify();
    if (refresher_.joinable()) refresher_.join();
  });
  if (absl::Status serving = runtime_.Serve(); !serving.ok()) return serving;
  LOG(INFO) << "card registry serving on :" << grpc_port() << " ("
            << server::AuthModeName(config_.grpc.auth_mode) << "), replica "
            << config_.replica_index << "/" << config_.replica_count << " of " << *cards_partitions
            << " partitions, holder keys for " << holder_keys->Cities().size()
            << " cities, metrics on :" << metrics_port();
  return absl::OkStatus();
}

void CardRegistryApp::RefreshMetrics() {
  const StateView view = ViewOf(*store_);
  // Counters in the store only grow; the metric adds what they grew by.
  auto add = [this](const std::string& key, int64_t now, metrics::Counter& counter) {
    int64_t& counted = counted_[key];
    if (now > counted) counter.Increment(now - counted);
    counted = std::max(counted, now);
  };
  absl::StatusOr<RegistryStats> stats = ReadStats(view);
  if (stats.ok()) {
    for (const auto& [kind, count] : stats->accepted) {
      add("accepted/" + kind, count, metrics_->commands_accepted.WithLabels({kind}));
    }
    for (const auto& [rule, count] : stats->refused_by_rule) {
      add("refused/" + rule, count, metrics_->commands_refused.WithLabels({rule}));
    }
    add("duplicate", stats->duplicate_commands, metrics_->duplicate_commands);
    add("unusable/cards",
        stats->cards_unparseable + stats->cards_unsupported + stats->foreign_decisions,
        metrics_->unusable_records.WithLabels({"cards"}));
    add("unusable/txn", stats->txn_unparseable, metrics_->unusable_records.WithLabels({"txn"}));
  }
  if (member_loop_ != nullptr) {
    absl::StatusOr<MemberStats> members = ReadMemberStats(view);
    if (members.ok()) {
      for (const auto& [kind, count] : members->accepted) {
        add("member/accepted/" + kind, count,
            metrics_->member_commands_accepted.WithLabels({kind}));
      }
      for (const auto& [rule, count] : members->refused_by_rule) {
        add("member/refused/" + rule, count, metrics_->member_commands_refused.WithLabels({rule}));
      }
      add("unusable/members", members->unusable,
          metrics_->unusable_records.WithLabels({"members"}));
    }
  }
  // The listed set of every partition this replica owns. Only the owned ones hold entries.
  int64_t listed = 0;
  for (int32_t partition = config_.replica_index; partition < partition_count_;
       partition += config_.replica_count) {
    absl::StatusOr<HotlistSnapshot> snapshot = ReadHotlistSnapshot(view, partition);
    if (!snapshot.ok()) return;
    listed += static_cast<int64_t>(snapshot->listed.size());
  }
  metrics_->hotlist_cards.Set(static_cast<double>(listed));
}

void CardRegistryApp::RefreshLoop() {
  do {
    RefreshMetrics();
  } while (!stop_refresh_.WaitForNotificationWithTimeout(kRefreshTick));
}

void CardRegistryApp::Shutdown(absl::Time deadline) { runtime_.Shutdown(deadline); }

CardRegistryApp::~CardRegistryApp() {
  // The members then go in reverse order of declaration, which is the reverse of Wire.
  Shutdown(absl::Now() + absl::Seconds(5));
}

}  // namespace tongka::card_registry
