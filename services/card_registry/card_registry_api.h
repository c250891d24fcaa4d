// CardRegistryApi: what each RPC of tongka.v1.CardRegistryService does, in domain terms, for one
// authenticated caller. The gRPC handlers (card_registry_service.h) only authenticate, call this,
// count, and convert the status.
//
// Commands (IssueCard(s), ReportLost, BlockCard, UnblockCard, CloseCard, ReplaceCard,
// LinkVirtualCard): the input is checked
// first (INVALID_ARGUMENT "<field>: <rule>": request_id, card_id, holder identity and device id
// tokenized with the issuer city's key; FAILED_PRECONDITION naming the city when the registry
// holds no key for it; PERMISSION_DENIED for a caller who may not ask), and nothing is written
// unless it passes. Holder identity and device ids are tokenized here: the clear values never
// reach a log line, the topic or the store. Then the command event ("cmd/<tenant>/<request_id>",
// source = the tenant, recorded_at = now) is produced to tongka.cards keyed by card id (acks=all),
// this replica waits until its ledger loop has applied that partition past the offset, and the
// answer is the ledger's stored outcome (read-your-writes). A refusal the ledger decided is a
// CardCommandResponse with accepted=false, the rule and the request field it is about, and the
// RPC status stays OK, so that IssueCards can report every item on its own; FAILED_PRECONDITION
// is only for what stops the call before anything is written. A retried request id (same tenant)
// gets the first decision: the ledger decides an event id once.
//
// Tenancy: issue only the caller's own city's card ids; block, unblock, report lost and close:
// the issuer city or the ministry (platform:fraud blocks through the log, not this API).
// GetCard: the issuer and the ministry see the card in full, any other city operator or a partner
// its status only (card_id, issuer_city, status). FindCardsByHolder: a city operator, its own
// cards only (the holder is tokenized with its own key and looked up under its own city). Hotlist
// RPCs: any authenticated tenant.
//
// Replicas: a card's partition (murmur2 of its id over the tongka.cards partition count) is owned
// by replica p % N. A card's call on another replica is forwarded to the owner (PeerForward, on
// behalf of the caller); IssueCards forwards each owner's items as one sub-batch. The hotlist
// and holder lookups gather every partition: this replica's own from its store, the others from
// each peer. A call that comes from a peer (Caller::via_peer) is answered from this replica's own
// partitions only, never forwarded again.
//
// Thread-safety: all methods are thread-safe (the store, the producer and the peers are).
#ifndef TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_API_H_
#define TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_API_H_

#include <google/protobuf/message.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/event_log/producer.h"
#include "libs/state_store/state_store.h"
#include "proto/card_registry.pb.h"
#include "services/card_registry/card_registry_readers.h"
#include "services/card_registry/holder_keys.h"

namespace tongka::card_registry {

// Who asks: the tenant, and whether the call came from another replica on the tenant's behalf.
struct Caller {
  v1::Tenant tenant;
  bool via_peer = false;
};

// Calls `rpc` ("GetCard", "IssueCards", ...) on replica `replica` on behalf of `tenant`, filling
// `response`.
using PeerForward = std::function<absl::Status(
    int32_t replica, const std::string& rpc, const v1::Tenant& tenant,
    const google::protobuf::Message& request, google::protobuf::Message* response)>;

struct CardRegistryApiDeps {
  const state_store::StateStore* store = nullptr;
  event_log::Producer* producer = nullptr;
  std::shared_ptr<const HolderKeys> holder_keys;
  // The tongka.cards (and tongka.txn) partition count.
  int32_t partition_count = 1;
  // The next offset the ledger loop will apply on tongka.cards partition p (read-your-writes).
  std::function<int64_t(int32_t partition)> cards_next_offset;
  int32_t replica_index = 0;
  int32_t replica_count = 1;
  PeerForward peer_forward;  // required when replica_count > 1
  absl::Duration command_timeout = absl::Seconds(30);
  std::function<absl::Time()> now = absl::Now;
};

class CardRegistryApi {
 public:
  static constexpr int kIssueCardsMax = 10000;
  static constexpr int kHotlistLimitDefault = 10000;

  explicit CardRegistryApi(CardRegistryApiDeps deps);

  absl::StatusOr<v1::CardCommandResponse> IssueCard(const Caller& caller,
                                                    const v1::IssueCardRequest& request) const;
  absl::StatusOr<v1::IssueCardsResponse> IssueCards(const Caller& caller,
                                                    const v1::IssueCardsRequest& request) const;
  absl::StatusOr<v1::CardCommandResponse> ReportLost(const Caller& caller,
                                                     const v1::CardStatusRequest& request) const;
  absl::StatusOr<v1::CardCommandResponse> BlockCard(const Caller& caller,
                                                    const v1::CardStatusRequest& request) const;
  absl::StatusOr<v1::CardCommandResponse> UnblockCard(const Caller& caller,
                                                      const v1::CardStatusRequest& request) const;
  absl::StatusOr<v1::CardCommandResponse> CloseCard(const Caller& caller,
                                                    const v1::CloseCardRequest& request) const;
  // ReplaceCard and LinkVirtualCard are decided in the named card's partition first (the answer's
  // accepted, rule and status are that decision's); an accepted one then waits, up to the
  // command timeout, for the new card's own partition to issue or refuse it (`derived`).
  absl::StatusOr<v1::CardCommandResponse> ReplaceCard(const Caller& caller,
                                                      const v1::ReplaceCardRequest& request) const;
  absl::StatusOr<v1::CardCommandResponse> LinkVirtualCard(
      const Caller& caller, const v1::LinkVirtualCardRequest& request) const;
  // The issuer city itself or the ministry; summed over every replica's partitions.
  absl::StatusOr<v1::GetIssuerBalancesResponse> GetIssuerBalances(
      const Caller& caller, const v1::GetIssuerBalancesRequest& request) const;
  absl::StatusOr<v1::GetCardResponse> GetCard(const Caller& caller,
                                              const v1::GetCardRequest& request) const;
  absl::StatusOr<v1::FindCardsByHolderResponse> FindCardsByHolder(
      const Caller& caller, const v1::FindCardsByHolderRequest& request) const;
  absl::StatusOr<v1::GetHotlistResponse> GetHotlist(const Caller& caller,
                                                    const v1::GetHotlistRequest& request) const;
  absl::StatusOr<v1::GetHotlistDeltaResponse> GetHotlistDelta(
      const Caller& caller, const v1::GetHotlistDeltaRequest& request) const;

  // The recorded_at of the command that made hotlist change `seq` of `partition` (for `card_id`),
  // when this replica wrote that command recently (the propagation metric); nullopt otherwise.
  // A command is remembered before it is written, so a watcher that sees its change before the
  // command's caller has read the decision still finds it.
  std::optional<absl::Time> HotlistChangeRecordedAt(int32_t partition, uint64_t seq,
                                                    const std::string& card_id) const;

  // Ends WatchHotlist streams: called on shutdown before the gRPC server stops.
  void Stop() const {
    if (!stopping_.HasBeenNotified()) stopping_.Notify();
  }
  // Waits `timeout` or until Stop; true when stopping.
  bool WaitForStop(absl::Duration timeout) const {
    return stopping_.WaitForNotificationWithTimeout(timeout);
  }

  // The replica owning `card_id`'s partition; the partition in `partition` when not null.
  int32_t OwnerOf(absl::string_view card_id, int32_t* partition = nullptr) const;

 private:
  // One command ready to be written: its key and event, or the response it already has.
  struct Pending {
    std::string card_id;
    v1::Event event;
    int32_t partition = -1;
    int64_t offset = -1;
    std::optional<absl::StatusOr<v1::CardCommandResponse>> done;
  };
  // Writes every command not yet done, waits for the ledger to apply them all, reads each
  // outcome into `done`.
  absl::Status Submit(std::vector<Pending*>& commands) const;
  // Validates an issue and builds its event; PERMISSION_DENIED / INVALID_ARGUMENT /
  // FAILED_PRECONDITION before anything is written.
  absl::StatusOr<v1::Event> IssueEvent(const Caller& caller,
                                       const v1::IssueCardRequest& request) const;
  // The envelope of a command on an existing card (status change, close), after the checks they
  // share: request id, card id, the issuer or the ministry, reason and actor lengths.
  absl::StatusOr<v1::Event> ChangeEnvelope(const Caller& caller, absl::string_view verb,
                                           const std::string& request_id,
                                           const std::string& card_id, const std::string& reason,
                                           const std::string& actor) const;
  absl::StatusOr<v1::CardCommandResponse> StatusChange(const Caller& caller, const char* rpc,
                                                       const v1::CardStatusRequest& request,
                                                       v1::CardStatus target,
                                                       v1::BlockReason reason) const;
  // Writes one command on `card_id` (or forwards the call to the card's owner) and answers with
  // its decision.
  absl::StatusOr<v1::CardCommandResponse> RunOne(const Caller& caller, const char* rpc,
                                                 const google::protobuf::Message& request,
                                                 const std::string& card_id,
                                                 absl::StatusOr<v1::Event> event) const;
  // The device id's token under the issuer's key, or INVALID_ARGUMENT naming `field`.
  absl::StatusOr<std::string> DeviceToken(uint32_t issuer, const std::string& device_id) const;
  // After an accepted ReplaceCard or LinkVirtualCard: waits for the card its decision named
  // (response->derived().card_id(), from the stored outcome, so a retry follows the first
  // command's card) to be issued from `origin_card_id` (carried_from or linked_card), reading it
  // where it lives, and sets its state: ISSUED, REFUSED (the id belongs to another card) or
  // PENDING (deadline).
  void FollowDerived(const Caller& caller, const std::string& origin_card_id,
                     v1::CardCommandResponse* response) const;
  std::vector<int32_t> OwnedPartitions() const;
  // The city that manages `card_id` now: its card id's city, or the successor that city's cards
  // moved to (failed-issuer playbook). Exact for a card of an owned partition; for another
  // partition, the successor any owned partition has recorded (the card's owner checks again).
  absl::StatusOr<uint32_t> ManagerOf(absl::string_view card_id, uint32_t card_city) const;
  // The propagation metric's memory of recent status commands, by card id.
  void RememberCommand(const std::string& card_id, int64_t recorded_at_us) const;
  void CommandDecided(const std::string& card_id, int64_t recorded_at_us, int32_t partition,
                      uint64_t seq) const;

  const CardRegistryApiDeps deps_;
  mutable absl::Notification stopping_;
  struct RecentCommand {
    int64_t recorded_at_us = 0;
    int32_t partition = -1;
    uint64_t seq = 0;  // 0: not decided yet (as far as this replica's caller knows)
  };
  mutable absl::Mutex recent_mu_;
  // The latest status command per card, for the last kRecentMax cards.
  mutable std::map<std::string, RecentCommand> recent_ ABSL_GUARDED_BY(recent_mu_);
  mutable std::deque<std::string> recent_order_ ABSL_GUARDED_BY(recent_mu_);
};

}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_API_H_
