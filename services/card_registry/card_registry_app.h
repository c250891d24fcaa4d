// CardRegistryApp: the card registry service, wired in phases on the service kit (libs/service,
// runtime.h): the crypto self-test and the holder keys, then the store (layout
// "card_registry/1"), then Kafka (the topics' partition counts checked equal, the ledger loop over
// {tongka.cards, tongka.txn} for the owned partitions p % N == k, on replica 0 the member loop
// over tongka.members (one partition, checked), the outbox publisher that writes both loops'
// decisions), then the APIs and the gRPC server (CardRegistryService and
// MemberRegistryService), then the metrics refresher and the metrics endpoint; stopped in reverse
// (the WatchHotlist streams end before the gRPC server stops).
//
// Threads: the ledger loop and the outbox publisher (the kit's), and the app's refresher (the
// command counters and the hotlist size from the store every few seconds). A loop that fails (a
// corrupt store, a lost offset) stops the service through the kit's fatal stop.
//
// Readiness (/readyz): once the loop has reached the log end and the outbox was empty.
//
// Ownership: owns everything it wires. Thread-safety: Create, Shutdown and the destructor on one
// thread; accessors from any thread. Failure: Create returns the first configuration or start-up
// error (naming the field) and leaves nothing running.
//
// Example (main.cc runs it under service::ServiceMain):
//   auto app = CardRegistryApp::Create(config, &clock);
//   if (!app.ok()) { LOG(ERROR) << app.status(); return 2; }
//   ...
//   (*app)->Shutdown(absl::Now() + absl::Seconds(20));
#ifndef TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_APP_H_
#define TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_APP_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "libs/service/clock.h"
#include "libs/service/peer_channel.h"
#include "libs/service/runtime.h"
#include "libs/service/service_main.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/state_store.h"
#include "proto/card_registry.grpc.pb.h"
#include "services/card_registry/card_ledger.h"
#include "services/card_registry/card_registry_api.h"
#include "services/card_registry/card_registry_config.h"
#include "services/card_registry/card_registry_metrics.h"
#include "services/card_registry/card_registry_service.h"
#include "services/card_registry/member_api.h"
#include "services/card_registry/member_ledger.h"
#include "services/card_registry/member_service.h"

namespace tongka::card_registry {

class CardRegistryApp : public service::App {
 public:
  // `clock` (null: the system clock) is the platform time of commands and of dev tokens.
  static absl::StatusOr<std::unique_ptr<CardRegistryApp>> Create(
      const CardRegistryConfig& config, const service::Clock* clock = nullptr);
  ~CardRegistryApp() override;

  CardRegistryApp(const CardRegistryApp&) = delete;
  CardRegistryApp& operator=(const CardRegistryApp&) = delete;

  // Stops taking calls (letting calls in flight finish until `deadline`), then the refresher,
  // the loop and the publisher. Idempotent.
  void Shutdown(absl::Time deadline) override;
  service::Runtime& runtime() override { return runtime_; }

  absl::Status error() const { return runtime_.error(); }
  bool ready() const { return runtime_.ready(); }
  int grpc_port() const { return runtime_.grpc_port(); }
  int metrics_port() const { return runtime_.metrics_port(); }
  const state_store::StateStore& store() const { return *store_; }
  const CardRegistryApi& api() const { return *api_; }
  const MemberApi& member_api() const { return *member_api_; }

 private:
  CardRegistryApp(CardRegistryConfig config, const service::Clock* clock);
  absl::Status Wire() override;
  absl::Status PeerForward(int32_t replica, const std::string& rpc, const v1::Tenant& tenant,
                           const google::protobuf::Message& request,
                           google::protobuf::Message* response) const;
  void RefreshLoop();
  void RefreshMetrics();

  const CardRegistryConfig config_;
  // The logic, before the runtime: its loop holds the applier until it is destroyed.
  CardLedger ledger_;
  std::unique_ptr<MemberLedger> member_ledger_;  // replica 0 only
  service::Runtime runtime_;
  std::unique_ptr<CardRegistryMetrics> metrics_;  // in the runtime's registry
  state_store::StateStore* store_ = nullptr;
  state_store::ApplyLoop* loop_ = nullptr;
  state_store::ApplyLoop* member_loop_ = nullptr;  // replica 0 only
  int32_t partition_count_ = 0;                    // of tongka.cards (and tongka.txn)
  std::optional<service::PeerChannels> peer_channels_;
  std::vector<std::unique_ptr<v1::CardRegistryService::Stub>> peers_;
  std::vector<std::unique_ptr<v1::MemberRegistryService::Stub>> member_peers_;
  std::unique_ptr<CardRegistryApi> api_;
  std::unique_ptr<CardRegistryService> service_;
  std::unique_ptr<MemberApi> member_api_;
  std::unique_ptr<MemberService> member_service_;
  // What the store's counters were at the last refresh (the metrics add the growth).
  std::map<std::string, int64_t> counted_;
  absl::Notification stop_refresh_;
  std::thread refresher_;
};

}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_APP_H_
