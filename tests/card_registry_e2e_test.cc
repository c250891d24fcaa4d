// Two card registry replicas on the real broker, one SIGKILLed mid-stream.
//
// tongka.cards and tongka.txn have 4 partitions each; two `tongka_card_registry` processes
// (replica 0 and 1 of 2, dev tokens, holder keys for Shanghai) own the even and the odd ones.
// Every command goes through replica 0 or 1 whatever the card's owner, so forwarding and
// gathering carry half of the traffic.
//   1. 300 cards issued through replica 0 (IssueCards, 100 a batch: half of each batch is
//      forwarded to replica 1 as one sub-batch), 24 of them blocked through replica 1: both
//      replicas give the same GetCard view of every card, the same hotlist (entries and version)
//      and the same FindCardsByHolder answer for a holder with cards in all partitions.
//   2. A client issues batches of 20 cards through replica 0 without pause; replica 1 is SIGKILLed
//      while it does and stays down until a batch has failed; it restarts on the same state dir
//      with the outbox.after_produce failpoint armed, so it dies again at the first decision it
//      publishes (which then goes out twice), and restarts once more. Once it is ready (/readyz)
//      every card whose result said accepted exists on both replicas (GetCard OK at the first
//      ask, the same view); every request id sent, the failed calls' included, retried through
//      either replica gets one decision, accepted for the same card, equal to the first answer
//      when there was one; a new request id for any of those cards is refused card_exists; and
//      tongka.cards holds exactly one issue decision per card (copies aside), and at least one
//      copy. Both replicas still agree on the hotlist and the holder lookup.
//   3. The operator CLI (tools/cli:tongka_ctl), run against replica 1 only: issue, replace onto a
//      card of the other replica's partitions (the carry crosses replicas through the log),
//      link a QR card, get, balances, hotlist, a refusal named by its rule, and the ministry's
//      member status and transfer; each command's exit status and the lines an operator reads.
// Every wait polls a condition under a deadline; no step depends on where the SIGKILL lands.
#include <glog/logging.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/ownership.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/metrics/test_support.h"
#include "libs/server/authenticator.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "libs/testing/subprocess.h"
#include "libs/txn/card_id.h"
#include "proto/card_registry.grpc.pb.h"
#include "proto/events.pb.h"
#include "services/ingest/testing/topic_reader.h"

namespace tongka {
namespace {

constexpr char kSecret[] = "card-registry-e2e-test-dev-secret-0123456789";
constexpr char kCardsTopic[] = "tongka.cards";
constexpr char kMembersTopic[] = "tongka.members";
constexpr char kTxnTopic[] = "tongka.txn";
constexpr uint32_t kShanghai = 310000;
constexpr int kPartitions = 4;
constexpr int kReplicas = 2;
// The shared holder: every 10th card of part 1, so its cards sit in every partition.
constexpr char kSharedPhone[] = "13912345678";

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

int32_t OwnerOf(const std::string& card_id) {
  return event_log::PartitionForKey(card_id, kPartitions) % kReplicas;
}

struct Replica {
  int32_t index = 0;
  std::string bootstrap;
  std::string peers;
  int grpc_port = 0;
  int metrics_port = 0;
  std::unique_ptr<testing::Subprocess> process;
  std::unique_ptr<v1::CardRegistryService::Stub> stub;

  void Launch(const std::string& failpoints = "") {
    std::map<std::string, std::string> env;
    if (!failpoints.empty()) env["TONGKA_FAILPOINTS"] = failpoints;
    auto started = testing::Subprocess::Start(
        {"services/card_registry/tongka_card_registry", "--kafka_bootstrap=" + bootstrap,
         "--state_dir=" + TempPath(absl::StrCat("registry-", index, "-of-2")),
         absl::StrCat("--replica_index=", index), absl::StrCat("--replica_count=", kReplicas),
         "--peers=" + peers, "--grpc_host=127.0.0.1", absl::StrCat("--grpc_port=", grpc_port),
         "--auth=dev", "--dev_token_secret_file=" + TempPath("dev_token_secret"),
         "--holder_keys=" + TempPath("holder_keys"), "--command_timeout=20s",
         "--metrics_host=127.0.0.1", absl::StrCat("--metrics_port=", metrics_port)},
        env, TempPath(absl::StrCat("registry-", index, ".log")));
    ASSERT_TRUE(started.ok()) << started.status();
    process = std::move(*started);
    stub = v1::CardRegistryService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", grpc_port), grpc::InsecureChannelCredentials()));
  }

  // Waits for /readyz: the kit is ready once the ledger loop has caught up with its partitions
  // and the outbox is empty, which is what an orchestrator waits for before sending traffic.
  void AwaitReady() {
    httplib::Client client("127.0.0.1", metrics_port);
    client.set_connection_timeout(1);
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      ASSERT_TRUE(process->Running()) << "replica " << index << " exited:\n" << process->Log();
      httplib::Result ready = client.Get("/readyz");
      if (ready && ready->status == 200) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
    FAIL() << "replica " << index << " not ready after 60 s:\n" << process->Log();
  }
};

template <typename Request, typename Response>
grpc::Status Call(Replica& replica, const v1::Tenant& tenant,
                  grpc::Status (v1::CardRegistryService::Stub::*method)(grpc::ClientContext*,
                                                                        const Request&, Response*),
                  const Request& request, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(25));
  server::AttachDevToken(&context, *server::DevTokenIssuer::Create(kSecret)->Issue(
                                       tenant, absl::Now() + absl::Hours(1)));
  return (replica.stub.get()->*method)(&context, request, response);
}

// Calls until the answer is OK (a replica starting, a peer channel reconnecting), at most 60 s.
template <typename Request, typename Response>
grpc::Status CallUntilOk(Replica& replica, const v1::Tenant& tenant,
                         grpc::Status (v1::CardRegistryService::Stub::*method)(grpc::ClientContext*,
                                                                               const Request&,
                                                                               Response*),
                         const Request& request, Response* response) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  grpc::Status status;
  do {
    response->Clear();
    status = Call(replica, tenant, method, request, response);
    if (status.ok()) return status;
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
        status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      return status;
    }
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  return status;
}

v1::IssueCardRequest Physical(uint64_t serial, const std::string& request_id) {
  v1::IssueCardRequest request;
  request.set_request_id(request_id);
  request.set_card_id(txn::MakeCardId(kShanghai, serial));
  request.set_form(v1::CARD_FORM_PHYSICAL);
  request.set_product(v1::CARD_PRODUCT_STORED_VALUE);
  request.set_initial_balance_fen(static_cast<int64_t>(1000 + serial % 97));
  request.set_actor("clerk-1");
  return request;
}

// GetCard of `card_id` as its issuer (retrying only while the call itself is unavailable).
grpc::Status GetCard(Replica& replica, const std::string& card_id, v1::GetCardResponse* response) {
  v1::GetCardRequest request;
  request.set_card_id(card_id);
  return CallUntilOk(replica, server::CityTenant(kShanghai),
                     &v1::CardRegistryService::Stub::GetCard, request, response);
}

// The hotlist as a comparable value: entries sorted by (partition, card), and the version.
std::pair<std::vector<std::string>, std::map<int32_t, uint64_t>> Hotlist(Replica& replica) {
  v1::GetHotlistResponse response;
  const grpc::Status status =
      CallUntilOk(replica, server::CityTenant(kShanghai),
                  &v1::CardRegistryService::Stub::GetHotlist, v1::GetHotlistRequest(), &response);
  EXPECT_TRUE(status.ok()) << "replica " << replica.index << ": " << status.error_message();
  std::vector<std::string> entries;
  for (const v1::HotlistEntry& entry : response.cards()) {
    entries.push_back(absl::StrCat(entry.partition(), "/", entry.ShortDebugString()));
  }
  std::sort(entries.begin(), entries.end());
  std::map<int32_t, uint64_t> version(response.version().partition_seq().begin(),
                                      response.version().partition_seq().end());
  return {entries, version};
}

std::vector<std::string> SharedHolderCards(Replica& replica) {
  v1::FindCardsByHolderRequest request;
  request.mutable_holder()->set_phone(kSharedPhone);
  v1::FindCardsByHolderResponse response;
  const grpc::Status status =
      CallUntilOk(replica, server::CityTenant(kShanghai),
                  &v1::CardRegistryService::Stub::FindCardsByHolder, request, &response);
  EXPECT_TRUE(status.ok()) << "replica " << replica.index << ": " << status.error_message();
  std::vector<std::string> views;
  for (const v1::CardView& card : response.cards()) views.push_back(card.ShortDebugString());
  return views;
}

// One IssueCards call of the stream and what came back.
struct Sent {
  v1::IssueCardsRequest request;
  grpc::Status status;
  v1::IssueCardsResponse response;
};

class CardRegistryE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::remove_all(TempPath("kafka"));
    auto kafka = event_log::LocalKafka::Start(TempPath("kafka"));
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = std::move(*kafka);
    ASSERT_TRUE(event_log::EnsureTopics({.bootstrap_servers = kafka_->bootstrap()},
                                        {{.name = kCardsTopic, .partitions = kPartitions},
                                         {.name = kTxnTopic, .partitions = kPartitions},
                                         {.name = kMembersTopic, .partitions = 1}},
                                        absl::Seconds(60))
                    .ok());
    std::ofstream(TempPath("dev_token_secret")) << kSecret << "\n";
    std::ofstream(TempPath("holder_keys")) << "310000:00112233445566778899aabbccddeeff\n";
    std::string peers;
    for (int32_t k = 0; k < kReplicas; ++k) {
      std::filesystem::remove_all(TempPath(absl::StrCat("registry-", k, "-of-2")));
      replicas_[k].index = k;
      replicas_[k].bootstrap = kafka_->bootstrap();
      replicas_[k].grpc_port = metrics::test_support::PickFreeTcpPort();
      replicas_[k].metrics_port = metrics::test_support::PickFreeTcpPort();
      absl::StrAppend(&peers, k == 0 ? "" : ",", "127.0.0.1:", replicas_[k].grpc_port);
    }
    for (Replica& replica : replicas_) {
      replica.peers = peers;
      replica.Launch();
      ASSERT_NE(replica.process, nullptr);
    }
    for (Replica& replica : replicas_) replica.AwaitReady();
  }

  void TearDown() override {
    for (Replica& replica : replicas_) {
      if (replica.process != nullptr) replica.process->TerminateAndWait(absl::Seconds(10));
    }
  }

  // Both replicas answer the same for every card, the hotlist and the shared holder.
  void ExpectReplicasAgree(const std::vector<std::string>& cards) {
    for (const std::string& card_id : cards) {
      v1::GetCardResponse views[kReplicas];
      for (int k = 0; k < kReplicas; ++k) {
        const grpc::Status status = GetCard(replicas_[k], card_id, &views[k]);
        ASSERT_TRUE(status.ok()) << "replica " << k << " lost accepted card " << card_id << ": "
                                 << status.error_message();
        EXPECT_TRUE(views[k].card().full()) << views[k].ShortDebugString();
      }
      EXPECT_EQ(views[0].SerializeAsString(), views[1].SerializeAsString())
          << views[0].ShortDebugString() << "\n != " << views[1].ShortDebugString();
    }
    const auto hotlist0 = Hotlist(replicas_[0]);
    const auto hotlist1 = Hotlist(replicas_[1]);
    EXPECT_EQ(hotlist0.first, hotlist1.first);
    EXPECT_EQ(hotlist0.second, hotlist1.second);
    EXPECT_EQ(hotlist0.second.size(), static_cast<size_t>(kPartitions));
    EXPECT_EQ(SharedHolderCards(replicas_[0]), SharedHolderCards(replicas_[1]));
  }

  std::unique_ptr<event_log::LocalKafka> kafka_;
  Replica replicas_[kReplicas];
};

TEST_F(CardRegistryE2eTest, ReplicasAgreeAndAKillMidStreamLosesNoAcceptedCard) {
  const v1::Tenant shanghai = server::CityTenant(kShanghai);

  // ---- Part 1: forwarding and gathering ----
  LOG(INFO) << "part 1";
  std::vector<std::string> accepted_cards;
  std::set<int32_t> owners;
  std::set<int32_t> partitions;
  std::vector<std::string> shared_holder;
  for (int batch = 0; batch < 3; ++batch) {
    v1::IssueCardsRequest request;
    for (uint64_t serial = 1 + batch * 100; serial <= 100 + batch * 100; ++serial) {
      v1::IssueCardRequest item = Physical(serial, absl::StrCat("p1-", serial));
      if (serial % 10 == 0) {
        item.mutable_holder()->set_phone(kSharedPhone);
        shared_holder.push_back(item.card_id());
      }
      owners.insert(OwnerOf(item.card_id()));
      partitions.insert(event_log::PartitionForKey(item.card_id(), kPartitions));
      *request.add_cards() = std::move(item);
    }
    v1::IssueCardsResponse response;
    const grpc::Status status = CallUntilOk(
        replicas_[0], shanghai, &v1::CardRegistryService::Stub::IssueCards, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << replicas_[0].process->Log();
    ASSERT_EQ(response.results_size(), request.cards_size());
    EXPECT_EQ(response.accepted(), request.cards_size());
    for (int i = 0; i < response.results_size(); ++i) {
      const v1::CardCommandResponse& result = response.results(i);
      EXPECT_TRUE(result.accepted()) << result.ShortDebugString();
      EXPECT_EQ(result.card_id(), request.cards(i).card_id()) << "results out of request order";
      if (result.accepted()) accepted_cards.push_back(result.card_id());
    }
  }
  ASSERT_EQ(owners.size(), 2u) << "the cards must belong to both replicas";
  ASSERT_EQ(partitions.size(), static_cast<size_t>(kPartitions));

  // Blocks through replica 1, of cards of both owners.
  std::set<std::string> blocked;
  for (size_t i = 0; i < accepted_cards.size(); i += 12) {
    v1::CardStatusRequest block;
    block.set_request_id(absl::StrCat("block-", i));
    block.set_card_id(accepted_cards[i]);
    block.set_block_reason(v1::BLOCK_REASON_ISSUER);
    v1::CardCommandResponse response;
    const grpc::Status status = CallUntilOk(
        replicas_[1], shanghai, &v1::CardRegistryService::Stub::BlockCard, block, &response);
    ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << replicas_[1].process->Log();
    EXPECT_TRUE(response.accepted()) << response.ShortDebugString();
    EXPECT_EQ(response.status(), v1::CARD_STATUS_BLOCKED);
    EXPECT_EQ(response.hotlist_version().partition_seq_size(), 1);
    blocked.insert(accepted_cards[i]);
  }
  LOG(INFO) << "part 1: comparing";
  ExpectReplicasAgree(accepted_cards);
  {
    const auto hotlist = Hotlist(replicas_[0]);
    EXPECT_EQ(hotlist.first.size(), blocked.size());
    uint64_t changes = 0;
    for (const auto& [partition, seq] : hotlist.second) changes += seq;
    EXPECT_EQ(changes, blocked.size()) << "one hotlist change per block";
    const std::vector<std::string> found = SharedHolderCards(replicas_[1]);
    EXPECT_EQ(found.size(), shared_holder.size());
  }

  // ---- Part 2: a client issues through replica 0 while replica 1 is killed and restarted ----
  absl::Mutex mu;
  std::vector<Sent> sent;  // guarded by mu
  int ok_calls = 0;        // guarded by mu
  int failed_calls = 0;    // guarded by mu
  std::atomic<bool> stop{false};
  std::thread client([&] {
    uint64_t serial = 10000;
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    while (!stop.load() && absl::Now() < give_up) {
      Sent call;
      for (int i = 0; i < 20; ++i, ++serial) {
        *call.request.add_cards() = Physical(serial, absl::StrCat("p2-", serial));
      }
      call.status = Call(replicas_[0], shanghai, &v1::CardRegistryService::Stub::IssueCards,
                         call.request, &call.response);
      const bool failed = !call.status.ok();
      {
        absl::MutexLock lock(&mu);
        ++(failed ? failed_calls : ok_calls);
        sent.push_back(std::move(call));
      }
      // A failed call is retried only at the end, like a client that fell over; the pause keeps
      // the loop from spinning while replica 0 refuses fast.
      if (failed) absl::SleepFor(absl::Milliseconds(20));
    }
  });
  // Polls `condition` (under mu) until it holds, at most 60 s.
  auto wait_for = [&](const std::function<bool()>& condition, const char* what) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (true) {
      {
        absl::MutexLock lock(&mu);
        if (condition()) return true;
        if (absl::Now() > deadline) {
          ADD_FAILURE() << "timed out waiting for " << what << " (ok " << ok_calls << ", failed "
                        << failed_calls << ")";
          return false;
        }
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
  };
  bool progressed = wait_for([&] { return ok_calls >= 5; }, "5 batches before the kill");
  int ok_before_restart = 0;
  if (progressed) {
    LOG(INFO) << "part 2: killing replica 1";
    EXPECT_TRUE(replicas_[1].process->Kill()) << "replica 1 was not running";
    const int exit_status = replicas_[1].process->Wait();
    EXPECT_TRUE(WIFSIGNALED(exit_status) && WTERMSIG(exit_status) == SIGKILL);
    // Down until the client has seen it: a forwarded sub-batch fails the call.
    const int failed_at_kill = [&] {
      absl::MutexLock lock(&mu);
      return failed_calls;
    }();
    progressed = wait_for([&] { return failed_calls > failed_at_kill; }, "a failed batch");
    // Restarted with the outbox failpoint armed, it dies again at the first decision it
    // publishes (one the SIGKILL left in its outbox, or a new one of a forwarded sub-batch),
    // before its outbox cursor moves: whatever the timing, one decision goes out twice.
    LOG(INFO) << "part 2: restarting replica 1 with outbox.after_produce";
    replicas_[1].Launch("outbox.after_produce");
    const std::optional<int> crashed = replicas_[1].process->WaitFor(absl::Seconds(60));
    EXPECT_TRUE(crashed.has_value() && WIFSIGNALED(*crashed) && WTERMSIG(*crashed) == SIGKILL)
        << "replica 1 did not die at the failpoint:\n"
        << replicas_[1].process->Log();
    progressed = progressed && crashed.has_value();
    LOG(INFO) << "part 2: restarting replica 1";
    replicas_[1].Launch();
    {
      absl::MutexLock lock(&mu);
      ok_before_restart = ok_calls;
    }
    if (progressed) {
      wait_for([&] { return ok_calls >= ok_before_restart + 5; }, "5 batches after the restart");
    }
  }
  stop = true;
  client.join();
  ASSERT_TRUE(progressed) << replicas_[0].process->Log() << "\n" << replicas_[1].process->Log();

  // Every card a result said was accepted, and the first decision of every item answered.
  std::map<std::string, v1::CardCommandResponse> first_decision;  // by request id
  std::vector<std::string> stream_cards;
  int failed_items = 0;
  for (const Sent& call : sent) {
    for (int i = 0; i < call.request.cards_size(); ++i) {
      stream_cards.push_back(call.request.cards(i).card_id());
      if (!call.status.ok()) {
        ++failed_items;
        continue;
      }
      ASSERT_EQ(call.response.results_size(), call.request.cards_size());
      const v1::CardCommandResponse& result = call.response.results(i);
      EXPECT_TRUE(result.accepted()) << result.ShortDebugString();
      first_decision[call.request.cards(i).request_id()] = result;
      if (result.accepted()) accepted_cards.push_back(result.card_id());
    }
  }
  for (const Sent& call : sent) {
    if (!call.status.ok()) {
      EXPECT_TRUE(call.status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                  call.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
          << call.status.error_code() << " " << call.status.error_message();
    }
  }
  ASSERT_GT(failed_items, 0);
  LOG(INFO) << sent.size() << " stream batches, " << failed_items << " items in failed calls, "
            << first_decision.size() << " answered";

  // Accepted cards exist on both replicas once the restarted one is ready, with the same view:
  // no retry and no polling for NOT_FOUND.
  replicas_[1].AwaitReady();
  if (HasFatalFailure()) return;
  LOG(INFO) << "part 2: replica 1 ready again";
  ExpectReplicasAgree(accepted_cards);

  LOG(INFO) << "part 2: retrying";
  // Every request id again, each batch through replica 0 or 1 in turn: one decision each.
  for (size_t b = 0; b < sent.size(); ++b) {
    Replica& replica = replicas_[b % kReplicas];
    v1::IssueCardsResponse response;
    const grpc::Status status = CallUntilOk(
        replica, shanghai, &v1::CardRegistryService::Stub::IssueCards, sent[b].request, &response);
    ASSERT_TRUE(status.ok()) << "retry of batch " << b << " on replica " << replica.index << ": "
                             << status.error_message();
    ASSERT_EQ(response.results_size(), sent[b].request.cards_size());
    EXPECT_EQ(response.accepted(), sent[b].request.cards_size()) << "batch " << b;
    for (int i = 0; i < response.results_size(); ++i) {
      const v1::IssueCardRequest& item = sent[b].request.cards(i);
      const v1::CardCommandResponse& result = response.results(i);
      EXPECT_TRUE(result.accepted()) << item.request_id() << ": " << result.ShortDebugString();
      EXPECT_EQ(result.card_id(), item.card_id());
      auto first = first_decision.find(item.request_id());
      if (first != first_decision.end()) {
        EXPECT_EQ(result.SerializeAsString(), first->second.SerializeAsString())
            << item.request_id() << ": the retry must get the first decision";
      }
    }
  }

  // The same cards under new request ids: card_exists, never a second card.
  for (size_t b = 0; b < sent.size(); ++b) {
    v1::IssueCardsRequest again = sent[b].request;
    for (v1::IssueCardRequest& item : *again.mutable_cards()) {
      item.set_request_id("again-" + item.request_id());
    }
    v1::IssueCardsResponse response;
    const grpc::Status status =
        CallUntilOk(replicas_[(b + 1) % kReplicas], shanghai,
                    &v1::CardRegistryService::Stub::IssueCards, again, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.results_size(), again.cards_size());
    for (const v1::CardCommandResponse& result : response.results()) {
      EXPECT_FALSE(result.accepted()) << result.ShortDebugString();
      EXPECT_EQ(result.rule(), "card_exists") << result.ShortDebugString();
    }
  }

  // Every card of the stream now exists on both replicas, and they still agree.
  ExpectReplicasAgree(stream_cards);

  LOG(INFO) << "part 2: reading " << kCardsTopic;
  // The log: exactly one issue decision per card (a republished copy has the same command).
  auto records = ingest::testing::ReadTopic(kafka_->bootstrap(), kCardsTopic, absl::Seconds(30));
  ASSERT_TRUE(records.ok()) << records.status();
  std::map<std::string, std::set<std::string>> issued;  // card -> the commands that issued it
  std::map<std::string, int> copies;                    // decision event id -> records
  for (const event_log::Record& record : *records) {
    v1::Event event;
    ASSERT_TRUE(event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())));
    if (!event.has_card_issued()) continue;
    issued[event.card_issued().card_id()].insert(event.card_issued().command_event_id());
    ++copies[event.event_id()];
  }
  EXPECT_TRUE(std::any_of(copies.begin(), copies.end(), [](const auto& c) { return c.second > 1; }))
      << "the failpoint crash left no republished decision";
  EXPECT_EQ(issued.size(), 300 + stream_cards.size());
  for (const auto& [card_id, commands] : issued) {
    EXPECT_EQ(commands.size(), 1u) << card_id << " issued by " << commands.size() << " commands";
  }
}

// What an operator types, against replica 1 only: the registry forwards what replica 0 owns.
TEST_F(CardRegistryE2eTest, TheOperatorCliDrivesCardsAndMembers) {
  auto ctl = [&](const std::string& tenant, std::vector<std::string> args, int* exit_code) {
    std::vector<std::string> argv = {
        "tools/cli/tongka_ctl", absl::StrCat("--registry=127.0.0.1:", replicas_[1].grpc_port),
        "--tenant=" + tenant, absl::StrCat("--dev_token_secret=", kSecret)};
    argv.insert(argv.end(), args.begin(), args.end());
    static int runs = 0;
    auto process = testing::Subprocess::Start(argv, {}, TempPath(absl::StrCat("ctl-", ++runs)));
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return std::string();
    const int status = (*process)->Wait();
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return (*process)->Log();
  };
  // An old card and its replacement in partitions of different replicas.
  std::string old_card;
  std::string new_card;
  for (uint64_t serial = 700; new_card.empty(); ++serial) {
    const std::string id = txn::MakeCardId(kShanghai, serial);
    const int32_t owner = event_log::PartitionForKey(id, kPartitions) % kReplicas;
    if (old_card.empty() && owner == 0) old_card = id;
    if (!old_card.empty() && owner == 1) new_card = id;
  }
  const std::string qr_card = txn::MakeCardId(kShanghai, 800);
  const std::string city = "city:310000";
  int code = -1;
  std::string out = ctl(city, {"card", "issue", old_card, "--balance_fen=5000"}, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("card " + old_card + " is ACTIVE"), std::string::npos) << out;
  out = ctl(city, {"card", "replace", old_card, new_card, "--note=lost"}, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("card " + old_card + " is CLOSED"), std::string::npos) << out;
  EXPECT_NE(out.find("card " + new_card + " is issued, carrying 50.00 yuan"), std::string::npos)
      << out;
  out = ctl(city, {"card", "get", new_card}, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("balance 50.00 yuan"), std::string::npos) << out;
  EXPECT_NE(out.find("replaces card " + old_card), std::string::npos) << out;
  out = ctl(city, {"card", "link", new_card, qr_card, "--form=qr"}, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("card " + qr_card + " is issued"), std::string::npos) << out;
  out = ctl(city, {"balances", "310000"}, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("2 open card(s) holding 50.00 yuan, 1 closed"), std::string::npos) << out;
  out = ctl(city, {"hotlist"}, &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find(old_card), std::string::npos) << out;
  // A refusal is named by its rule and exits 1; another city's card is not yours to replace.
  out = ctl(city, {"card", "replace", old_card, txn::MakeCardId(kShanghai, 801)}, &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("refused: rule card_closed"), std::string::npos) << out;
  out = ctl("city:330200", {"card", "close", new_card}, &code);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("PERMISSION_DENIED"), std::string::npos) << out;

  // The ministry's playbook commands: Liuzhou exits and its cards move to Nanning.
  out = ctl("ministry", {"member", "status", "450200", "exiting", "--reason=card company failed"},
            &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("EXITING"), std::string::npos) << out;
  out = ctl("ministry", {"member", "transfer", "450200", "450100", "--reason=card company failed"},
            &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("cards moved to city 450100"), std::string::npos) << out;
  out = ctl(city, {"member", "transfer", "450200", "450300", "--reason=x"}, &code);
  EXPECT_NE(code, 0) << out;
}

}  // namespace
}  // namespace tongka
