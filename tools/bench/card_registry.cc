// Benchmark: the card registry's issue rate, GetCard latency at a sustained rate, hotlist
// propagation and stored bytes per card, from one run on the real broker.
//
//   bazel run -c opt //tools/bench:card_registry [-- --cards=1000000 --getcard_rate=5000]
//
// It starts a local Kafka broker (tongka.cards and tongka.txn co-partitioned, tongka.members, and
// a raw topic of the same partition count) and, in this process, the card registry
// (CardRegistryApp: dev tokens, holder keys of the eight issuer cities derived as
// tools/run_platform.sh derives them, its own RocksDB, gRPC over loopback). Then, in order:
//   1. issue: `concurrency` gRPC clients (one channel each) call IssueCards with batches of
//      `batch` physical stored-value cards; batch b is issued by city b % 8 of eight member
//      cities, each card with a resident ID number and a mobile number (tokenized by the service
//      as in production, so the store holds the holder index). The requests are serialized
//      ahead, as a clearing system would on its own machine. Every card must come back accepted.
//      issue_rate is cards answered per second; the rate until the registry's own CardIssued
//      decisions are also published (its outbox empty) is printed beside it, and the rate over
//      each tenth of the cards (whether it falls as the store grows).
//      Around it, the baseline: the same number of CardIssueRequested events of the same size
//      produced with a bare librdkafka producer (the project's producer config) to the raw topic,
//      before and after the issue phase (the higher rate is taken: the broker's JIT warms);
//   2. getcard: after --settle_seconds, --getcard_rounds rounds of GetCard at --getcard_rate
//      calls/s for --getcard_seconds, open loop: calls are started at their scheduled times on an
//      async channel whatever the answers do, and each latency runs from the scheduled time (a
//      stalled server shows up in the latencies instead of slowing the load); random issued
//      cards, each read by its issuer (the full view with the computed balance). getcard_p99_ms
//      is the median round's p99; each round also prints the cores used by this process, the
//      broker and the rest of the machine (the noise), and the service's own GetCard handler
//      time (its request_seconds histogram) follows;
//   3. hotlist: one WatchHotlist stream open from the current version; BlockCard commands on
//      distinct random cards at --block_rate/s for --hotlist_seconds (async, open loop, by the
//      card's issuer); the propagation of a block is from the moment its call was started to the
//      moment the watcher receives the delta listing its card. The command's own answer latency
//      and the service's tongka_card_registry_hotlist_propagation_seconds histogram (from the
//      command's recorded_at to the stream's write, read from the app's metrics registry) are
//      printed beside it;
//   4. bytes: the app is shut down, its RocksDB is reopened with the state store's options
//      (libs/state_store/state_store.cc: leveled, Bloom filters, the append merge operator),
//      every column family flushed and compacted to the bottom (CompactRange, forced), and the
//      live SST bytes divided by the cards issued (all of them, the warm-up's included; the
//      blocks of phase 3 are in it too). A breakdown follows: per key prefix of the state
//      family (c/, h/, r/, hl/, hs/, u/, st/, the runtime's ~ids/), the keys, their bytes and
//      their values' bytes as stored before RocksDB's block format and compression.
// A warm-up first issues --warmup_cards cards and produces as many raw events (connections,
// metadata, the broker's JIT). The machine is shared: absolute figures move with its load.
// Last line:
//   issue_rate=<cards/s> getcard_p99_ms=<ms> hotlist_p99_ms=<ms> bytes_per_card=<B>
#include <glog/logging.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <librdkafka/rdkafkacpp.h>
#include <openssl/sha.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/kafka_config.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "libs/txn/card_id.h"
#include "libs/txn/cities.h"
#include "proto/card_registry.grpc.pb.h"
#include "proto/events.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/metadata.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "services/card_registry/card_registry_app.h"
#include "services/card_registry/card_registry_config.h"
#include "tools/bench/bench_support.h"

ABSL_FLAG(int64_t, cards, 1000000, "Cards issued in the measured issue phase.");
ABSL_FLAG(int64_t, warmup_cards, 20000, "Cards issued (and raw events produced) to warm up.");
ABSL_FLAG(int32_t, batch, 10000, "Cards per IssueCards call (<= 10000).");
ABSL_FLAG(int32_t, concurrency, 4, "Concurrent IssueCards callers.");
ABSL_FLAG(int32_t, partitions, 8, "Partitions of tongka.cards and tongka.txn.");
ABSL_FLAG(double, getcard_rate, 5000, "GetCard calls per second (open loop).");
ABSL_FLAG(double, getcard_seconds, 10, "How long each GetCard round holds --getcard_rate.");
ABSL_FLAG(int32_t, getcard_rounds, 3, "GetCard rounds; getcard_p99_ms is the median round's.");
ABSL_FLAG(bool, getcard_series, false,
          "Print each GetCard round's p99 per --getcard_slice_ms (a diagnosis: periodic stalls "
          "such as the registry's 2 s metrics refresh show up as a pattern).");
ABSL_FLAG(double, getcard_slice_ms, 250, "Slice width of --getcard_series.");
ABSL_FLAG(double, settle_seconds, 5, "Pause after issuing, before GetCard is measured.");
ABSL_FLAG(double, block_rate, 50, "BlockCard commands per second (open loop).");
ABSL_FLAG(double, hotlist_seconds, 20, "How long blocks are sent.");
ABSL_FLAG(std::string, work_dir, "", "Where the broker and the store live (default: a temp dir).");

namespace tongka::bench {
namespace {

// The registry's topics (services/card_registry/card_registry_keys.h, not visible here).
constexpr char kCardsTopic[] = "tongka.cards";
constexpr char kTxnTopic[] = "tongka.txn";
// The member registry's log (one partition), which the registry reads for its acceptance lists.
constexpr char kMembersTopic[] = "tongka.members";
constexpr char kRawTopic[] = "bench.raw";
constexpr char kIssueCardsMethod[] = "/tongka.v1.CardRegistryService/IssueCards";
constexpr char kSecret[] = "bench-card-registry-dev-secret-0123456789";
const uint32_t kCities[] = {310000, 110000, 330100, 330200, 320500, 420100, 510100, 450200};
constexpr int kCityCount = static_cast<int>(std::size(kCities));

// Card i (0-based, warm-up first) is the i-th of its batch: its issuer and card id follow from i,
// so the later phases can pick random issued cards without keeping a list.
struct CardOf {
  uint32_t city;
  std::string card_id;
};

CardOf CardAt(int64_t i, int32_t batch) {
  const uint32_t city = kCities[(i / batch) % kCityCount];
  return {city, txn::MakeCardId(city, static_cast<uint64_t>(i) + 1)};
}

// A resident ID number with a valid GB 11643 check character, distinct per serial: a birth date
// in 1950..2004 and a three-digit sequence.
std::string IdNumber(int64_t serial) {
  const absl::CivilDay birth = absl::CivilDay(1950, 1, 1) + (serial / 1000) % 20000;
  std::string id = absl::StrFormat("310101%04d%02d%02d%03d", birth.year(), birth.month(),
                                   birth.day(), static_cast<int>(serial % 1000));
  static constexpr int kWeights[] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  int sum = 0;
  for (int i = 0; i < 17; ++i) sum += (id[i] - '0') * kWeights[i];
  id.push_back("10X98765432"[sum % 11]);
  return id;
}

std::string Phone(int64_t serial) { return absl::StrCat(13900000000LL + serial % 100000000); }

// The holder key file tools/run_platform.sh writes: per city, SHA-256 of
// "tongka-dev-holder-key-<city>" in hex.
std::string DevHolderKeys() {
  std::string text = "# development holder keys (tools/run_platform.sh)\n";
  for (uint32_t city : kCities) {
    const std::string seed = absl::StrCat("tongka-dev-holder-key-", city);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(seed.data()), seed.size(), digest);
    absl::StrAppend(&text, city, ":");
    for (unsigned char byte : digest) absl::StrAppendFormat(&text, "%02x", byte);
    absl::StrAppend(&text, "\n");
  }
  return text;
}

v1::IssueCardRequest IssueRequest(int64_t i, int32_t batch) {
  const CardOf card = CardAt(i, batch);
  v1::IssueCardRequest request;
  request.set_request_id(absl::StrCat("bench-issue-", i));
  request.set_card_id(card.card_id);
  request.set_form(v1::CARD_FORM_PHYSICAL);
  request.set_product(v1::CARD_PRODUCT_STORED_VALUE);
  request.set_initial_balance_fen(5000);
  request.mutable_holder()->set_id_number(IdNumber(i));
  request.mutable_holder()->set_phone(Phone(i));
  request.set_actor("bench-clerk");
  return request;
}

// The CardIssueRequested event the API would write for `request` (card_registry_api.cc), with
// 32-byte stand-ins for the two holder tokens: same key, same size.
std::pair<std::string, std::string> RawRecord(const v1::IssueCardRequest& request, uint32_t city,
                                              std::mt19937_64& rng) {
  v1::Event event;
  const v1::Tenant tenant = server::CityTenant(city);
  event.set_event_id(absl::StrCat("cmd/", server::TenantName(tenant), "/", request.request_id()));
  const int64_t now_us = absl::ToUnixMicros(absl::Now());
  event.set_occurred_at_us(now_us);
  event.set_recorded_at_us(now_us);
  *event.mutable_source() = tenant;
  v1::CardIssueRequested* body = event.mutable_card_issue_requested();
  body->set_request_id(request.request_id());
  body->set_card_id(request.card_id());
  body->set_form(request.form());
  body->set_product(request.product());
  body->set_initial_balance_fen(request.initial_balance_fen());
  body->set_actor(request.actor());
  std::string token(32, '\0');
  for (std::string* out : {body->mutable_holder()->mutable_id_number_token(),
                           body->mutable_holder()->mutable_phone_token()}) {
    for (char& c : token) c = static_cast<char>(rng());
    *out = token;
  }
  return {request.card_id(), event.SerializeAsString()};
}

// Cards [first, first + n): the IssueCards requests serialized, one per batch, and the raw side's
// records.
struct IssueRound {
  std::vector<grpc::ByteBuffer> requests;
  std::vector<int> batch_sizes;
  std::vector<uint32_t> batch_cities;
  std::vector<std::pair<std::string, std::string>> records;
};

IssueRound GenerateIssue(int64_t first, int64_t n, int32_t batch) {
  IssueRound round;
  std::mt19937_64 rng(first);
  round.records.reserve(n);
  // Batches are aligned to `batch` from card 0, so each holds one city's cards.
  for (int64_t start = first; start < first + n;) {
    const int64_t end = std::min(first + n, (start / batch + 1) * batch);
    v1::IssueCardsRequest request;
    const uint32_t city = CardAt(start, batch).city;
    for (int64_t i = start; i < end; ++i) {
      v1::IssueCardRequest* item = request.add_cards();
      *item = IssueRequest(i, batch);
      round.records.push_back(RawRecord(*item, city, rng));
    }
    grpc::Slice bytes(request.SerializeAsString());
    round.requests.emplace_back(&bytes, 1);
    round.batch_sizes.push_back(request.cards_size());
    round.batch_cities.push_back(city);
    start = end;
  }
  return round;
}

class CountingDr : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    if (message.err() != RdKafka::ERR_NO_ERROR) {
      LOG(FATAL) << "raw delivery failed: " << message.errstr();
    }
    delivered.fetch_add(1, std::memory_order_relaxed);
  }
  std::atomic<int64_t> delivered{0};
};

// Produces every record with a bare librdkafka producer; records per second.
double RawProduce(const std::string& bootstrap,
                  const std::vector<std::pair<std::string, std::string>>& records) {
  CountingDr dr;
  auto conf = event_log::BuildProducerConf({.bootstrap_servers = bootstrap}, &dr);
  ExitUnlessOk(conf.status(), "raw producer conf");
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  CHECK(producer != nullptr) << error;
  std::unique_ptr<RdKafka::Topic> topic(
      RdKafka::Topic::create(producer.get(), kRawTopic, nullptr, error));
  CHECK(topic != nullptr) << error;
  const absl::Time start = absl::Now();
  for (const auto& [key, value] : records) {
    for (;;) {
      RdKafka::ErrorCode code = producer->produce(
          topic.get(), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
          const_cast<char*>(value.data()), value.size(), &key, nullptr);
      if (code == RdKafka::ERR_NO_ERROR) break;
      CHECK_EQ(code, RdKafka::ERR__QUEUE_FULL) << RdKafka::err2str(code);
      producer->poll(1);
    }
    producer->poll(0);
  }
  CHECK_EQ(producer->flush(300000), RdKafka::ERR_NO_ERROR);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  CHECK_EQ(dr.delivered.load(), static_cast<int64_t>(records.size()));
  const double rate = static_cast<double>(records.size()) / seconds;
  LOG(INFO) << "raw: " << records.size() << " records at " << rate << "/s";
  return rate;
}

// Dev tokens of every issuer city (index as kCities) and of the ministry.
struct Tokens {
  std::vector<std::string> city;
  std::string ministry;
};

Tokens MakeTokens() {
  auto issuer = server::DevTokenIssuer::Create(kSecret);
  ExitUnlessOk(issuer.status(), "dev tokens");
  Tokens tokens;
  const absl::Time expiry = absl::Now() + absl::Hours(6);
  for (uint32_t city : kCities)
    tokens.city.push_back(*issuer->Issue(server::CityTenant(city), expiry));
  tokens.ministry = *issuer->Issue(server::MinistryTenant(), expiry);
  return tokens;
}

int CityIndex(uint32_t city) {
  for (int i = 0; i < kCityCount; ++i) {
    if (kCities[i] == city) return i;
  }
  LOG(FATAL) << "not a bench city: " << city;
}

std::shared_ptr<grpc::Channel> Channel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetInt("grpc.use_local_subchannel_pool", 1);  // one connection per channel
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

// Issues every batch of `round` through `concurrency` clients; cards answered per second.
// Cards answered per second over the whole round; `tenths`, when given, gets the rate over each
// tenth of the round's cards (by when their batches were answered): whether it falls as the
// store grows.
double Issue(const std::string& target, const Tokens& tokens, const IssueRound& round,
             int32_t concurrency, std::vector<double>* latencies_ms,
             std::vector<double>* tenths = nullptr) {
  std::atomic<int64_t> accepted{0};
  absl::Mutex mu;
  std::vector<std::pair<absl::Time, int>> answered;  // when a batch was answered, its cards
  std::vector<std::thread> clients;
  const absl::Time start = absl::Now();
  for (int32_t c = 0; c < concurrency; ++c) {
    clients.emplace_back([&, c] {
      std::shared_ptr<grpc::Channel> channel = Channel(target);
      // IssueCards with the request already serialized: the call the generated stub makes
      // (grpc::internal, as the stub itself uses it), minus serializing the request.
      const grpc::internal::RpcMethod issue_cards(kIssueCardsMethod,
                                                  grpc::internal::RpcMethod::NORMAL_RPC, channel);
      std::vector<double> mine;
      for (size_t b = c; b < round.requests.size(); b += concurrency) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
        server::AttachDevToken(&context, tokens.city[CityIndex(round.batch_cities[b])]);
        v1::IssueCardsResponse response;
        const absl::Time sent = absl::Now();
        grpc::Status status =
            grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, v1::IssueCardsResponse>(
                channel.get(), issue_cards, &context, round.requests[b], &response);
        mine.push_back(absl::ToDoubleMilliseconds(absl::Now() - sent));
        CHECK(status.ok()) << status.error_code() << " " << status.error_message();
        CHECK_EQ(response.accepted(), round.batch_sizes[b])
            << "batch " << b << ": refused " << response.refused() << " ("
            << (response.results_size() > 0 ? response.results(0).ShortDebugString() : "") << ")";
        accepted.fetch_add(response.accepted());
        absl::MutexLock lock(&mu);
        answered.emplace_back(absl::Now(), response.accepted());
      }
      absl::MutexLock lock(&mu);
      latencies_ms->insert(latencies_ms->end(), mine.begin(), mine.end());
    });
  }
  for (std::thread& t : clients) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  LOG(INFO) << "issue: " << accepted.load() << " cards in " << seconds << " s";
  if (tenths != nullptr) {
    std::sort(answered.begin(), answered.end());
    const int64_t total = accepted.load();
    int64_t done = 0;
    absl::Time from = start;
    int64_t from_cards = 0;
    for (const auto& [when, cards] : answered) {
      done += cards;
      if (done * 10 >= (static_cast<int64_t>(tenths->size()) + 1) * total) {
        tenths->push_back(static_cast<double>(done - from_cards) /
                          std::max(1e-3, absl::ToDoubleSeconds(when - from)));
        from = when;
        from_cards = done;
      }
    }
  }
  return static_cast<double>(accepted.load()) / seconds;
}

// Waits until the registry's outbox (its CardIssued decisions) is published; false on timeout.
bool WaitOutboxEmpty(const card_registry::CardRegistryApp& app, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (app.store().OutboxDepth() > 0) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

// Sleeps until `due`, never spinning: on two shared cores a spinning load generator would take
// the CPU from the service it measures. A late wake-up starts the calls due by then at once,
// and their latencies still run from their scheduled times.
void WaitUntil(absl::Time due) {
  const absl::Duration left = due - absl::Now();
  if (left > absl::ZeroDuration()) absl::SleepFor(left);
}

// An async call in flight: the completion-queue tag.
template <typename Response>
struct AsyncCall {
  grpc::ClientContext context;
  Response response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
  absl::Time scheduled;
  int64_t index = 0;  // the second of the schedule it belongs to
  int64_t slice = 0;  // its --getcard_slice_ms slice
};

// Drains `cq` until it is shut down, calling `done` with each finished call (then deleted).
template <typename Response, typename Done>
void DrainQueue(grpc::CompletionQueue* cq, Done done) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    std::unique_ptr<AsyncCall<Response>> call(static_cast<AsyncCall<Response>*>(tag));
    CHECK(ok);
    done(*call);
  }
}

// CPU seconds (user + system) this process has used: the clients, the service, librdkafka and
// RocksDB, not the broker (a separate JVM).
double ProcessCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// CPU seconds every core of the machine has spent busy (not idle or waiting for I/O), from the
// first line of /proc/stat; -1 if unreadable. What the machine's other work took is the growth of
// this minus this process's and the broker's.
double MachineBusySeconds() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  int64_t user, nice, system, idle, iowait, irq, softirq, steal;
  if (!(stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) ||
      cpu != "cpu") {
    return -1;
  }
  return static_cast<double>(user + nice + system + irq + softirq + steal) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct GetCardResult {
  std::vector<double> latencies_ms;
  double achieved_rate = 0;
  double max_start_lag_ms = 0;
  // CPU used while the calls ran, in cores: this process (clients and service), the broker, and
  // everything else on the machine (-1: unreadable).
  double process_cores = 0;
  double broker_cores = -1;
  double other_cores = -1;
  double worst_second_p99_ms = 0;    // the p99 of the worst one-second slice
  std::vector<double> slice_p99_ms;  // per --getcard_slice_ms of scheduled time
};

// GetCard at `rate`/s for `seconds`, open loop, on random cards of [0, issued).
GetCardResult GetCards(const std::string& target, const std::string& work_dir, const Tokens& tokens,
                       int64_t issued, int32_t batch, double rate, double seconds, uint64_t seed) {
  std::unique_ptr<v1::CardRegistryService::Stub> stub =
      v1::CardRegistryService::NewStub(Channel(target));
  grpc::CompletionQueue cq;
  GetCardResult result;
  std::atomic<int64_t> failed{0};
  std::map<int64_t, std::vector<double>> per_second;  // the receiver's: by scheduled second
  std::map<int64_t, std::vector<double>> per_slice;   // by --getcard_slice_ms
  const double slice_seconds = absl::GetFlag(FLAGS_getcard_slice_ms) / 1e3;
  std::thread receiver([&] {
    DrainQueue<v1::GetCardResponse>(&cq, [&](AsyncCall<v1::GetCardResponse>& call) {
      if (!call.status.ok() || !call.response.card().full()) {
        if (failed.fetch_add(1) < 5) {
          LOG(ERROR) << "GetCard: " << call.status.error_code() << " "
                     << call.status.error_message();
        }
        return;
      }
      const double ms = absl::ToDoubleMilliseconds(absl::Now() - call.scheduled);
      result.latencies_ms.push_back(ms);
      per_second[call.index].push_back(ms);
      per_slice[call.slice].push_back(ms);
    });
  });
  std::mt19937_64 rng(seed);
  const int64_t calls = static_cast<int64_t>(rate * seconds);
  const absl::Time start = absl::Now() + absl::Milliseconds(10);
  const double process_cpu_start = ProcessCpuSeconds();
  const double broker_cpu_start = BrokerCpuSeconds(work_dir);
  const double machine_cpu_start = MachineBusySeconds();
  double max_lag_ms = 0;
  for (int64_t k = 0; k < calls; ++k) {
    const absl::Time due = start + absl::Seconds(static_cast<double>(k) / rate);
    WaitUntil(due);
    max_lag_ms = std::max(max_lag_ms, absl::ToDoubleMilliseconds(absl::Now() - due));
    const CardOf card = CardAt(static_cast<int64_t>(rng() % static_cast<uint64_t>(issued)), batch);
    auto* call = new AsyncCall<v1::GetCardResponse>;
    call->scheduled = due;
    call->index = static_cast<int64_t>(static_cast<double>(k) / rate);
    call->slice = static_cast<int64_t>(static_cast<double>(k) / rate / slice_seconds);
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    server::AttachDevToken(&call->context, tokens.city[CityIndex(card.city)]);
    v1::GetCardRequest request;
    request.set_card_id(card.card_id);
    call->reader = stub->PrepareAsyncGetCard(&call->context, request, &cq);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  }
  const double sending = absl::ToDoubleSeconds(absl::Now() - start);
  cq.Shutdown();  // after the calls in flight finish
  receiver.join();
  const double wall = absl::ToDoubleSeconds(absl::Now() - start);
  result.process_cores = (ProcessCpuSeconds() - process_cpu_start) / wall;
  const double broker_cpu_end = BrokerCpuSeconds(work_dir);
  if (broker_cpu_start >= 0 && broker_cpu_end >= 0) {
    result.broker_cores = (broker_cpu_end - broker_cpu_start) / wall;
    const double machine_cpu_end = MachineBusySeconds();
    if (machine_cpu_start >= 0 && machine_cpu_end >= 0) {
      result.other_cores = std::max(0.0, (machine_cpu_end - machine_cpu_start) / wall -
                                             result.process_cores - result.broker_cores);
    }
  }
  for (auto& [slice, latencies] : per_slice) {
    result.slice_p99_ms.push_back(Percentile(std::move(latencies), 0.99));
  }
  for (auto& [second, latencies] : per_second) {
    result.worst_second_p99_ms =
        std::max(result.worst_second_p99_ms, Percentile(std::move(latencies), 0.99));
  }
  CHECK_EQ(failed.load(), 0) << "GetCard calls failed";
  result.achieved_rate = static_cast<double>(calls) / sending;
  result.max_start_lag_ms = max_lag_ms;
  return result;
}

struct HotlistResult {
  std::vector<double> propagation_ms;  // call started -> the watcher has the delta
  std::vector<double> command_ms;      // call started -> the command's answer
  int64_t sent = 0;
};

// Blocks distinct random cards at `rate`/s for `seconds` with a WatchHotlist stream open.
HotlistResult Hotlist(const std::string& target, const Tokens& tokens, int64_t issued,
                      int32_t batch, double rate, double seconds) {
  std::unique_ptr<v1::CardRegistryService::Stub> stub =
      v1::CardRegistryService::NewStub(Channel(target));
  // The version to watch from: what is listed now.
  v1::GetHotlistResponse now;
  {
    grpc::ClientContext context;
    server::AttachDevToken(&context, tokens.ministry);
    grpc::Status status = stub->GetHotlist(&context, v1::GetHotlistRequest(), &now);
    CHECK(status.ok()) << status.error_message();
  }
  const int64_t blocks = std::max<int64_t>(1, static_cast<int64_t>(rate * seconds));
  CHECK_LE(blocks, issued) << "more blocks than cards";
  // Distinct cards: a random permutation's first `blocks`, drawn without keeping all of it.
  std::mt19937_64 rng(7);
  std::vector<int64_t> picks;
  {
    absl::flat_hash_map<int64_t, int64_t> swapped;  // sparse Fisher-Yates
    for (int64_t k = 0; k < blocks; ++k) {
      const int64_t j = k + static_cast<int64_t>(rng() % static_cast<uint64_t>(issued - k));
      auto at = [&](int64_t x) {
        auto it = swapped.find(x);
        return it == swapped.end() ? x : it->second;
      };
      const int64_t pick = at(j);
      swapped[j] = at(k);
      picks.push_back(pick);
    }
  }
  absl::Mutex mu;
  absl::flat_hash_map<std::string, absl::Time> started;  // card id -> its BlockCard call started
  HotlistResult result;
  int64_t received = 0;
  // A city operator watching as an acquirer would (any tenant sees the whole hotlist).
  grpc::ClientContext watch_context;
  server::AttachDevToken(&watch_context, tokens.city[0]);
  v1::GetHotlistDeltaRequest watch_request;
  *watch_request.mutable_since() = now.version();
  std::unique_ptr<grpc::ClientReader<v1::GetHotlistDeltaResponse>> stream =
      stub->WatchHotlist(&watch_context, watch_request);
  std::thread watcher([&] {
    v1::GetHotlistDeltaResponse delta;
    while (stream->Read(&delta)) {
      const absl::Time arrived = absl::Now();
      absl::MutexLock lock(&mu);
      for (const v1::HotlistEntry& change : delta.changes()) {
        if (!change.listed()) continue;
        auto it = started.find(change.card_id());
        if (it == started.end()) {
          LOG(WARNING) << "hotlist: a change before its call started: " << change.card_id();
          continue;
        }
        result.propagation_ms.push_back(absl::ToDoubleMilliseconds(arrived - it->second));
        ++received;
      }
    }
  });
  grpc::CompletionQueue cq;
  std::atomic<int64_t> refused{0};
  std::thread answers([&] {
    DrainQueue<v1::CardCommandResponse>(&cq, [&](AsyncCall<v1::CardCommandResponse>& call) {
      CHECK(call.status.ok()) << "BlockCard: " << call.status.error_message();
      if (!call.response.accepted()) {
        refused.fetch_add(1);
        LOG(ERROR) << "BlockCard refused: " << call.response.ShortDebugString();
      }
      absl::MutexLock lock(&mu);
      result.command_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - call.scheduled));
    });
  });
  const absl::Time start = absl::Now() + absl::Milliseconds(10);
  for (int64_t k = 0; k < blocks; ++k) {
    const absl::Time due = start + absl::Seconds(static_cast<double>(k) / rate);
    WaitUntil(due);
    const CardOf card = CardAt(picks[k], batch);
    auto* call = new AsyncCall<v1::CardCommandResponse>;
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    server::AttachDevToken(&call->context, tokens.city[CityIndex(card.city)]);
    v1::CardStatusRequest request;
    request.set_request_id(absl::StrCat("bench-block-", picks[k]));
    request.set_card_id(card.card_id);
    request.set_block_reason(v1::BLOCK_REASON_ISSUER);
    request.set_reason("bench");
    request.set_actor("bench-clerk");
    {
      absl::MutexLock lock(&mu);
      call->scheduled = absl::Now();
      started[card.card_id] = call->scheduled;
    }
    call->reader = stub->PrepareAsyncBlockCard(&call->context, request, &cq);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  }
  cq.Shutdown();
  answers.join();
  {
    absl::MutexLock lock(&mu);
    auto all_in = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return received >= blocks; };
    mu.AwaitWithTimeout(absl::Condition(&all_in), absl::Seconds(30));
    if (received < blocks) LOG(ERROR) << "hotlist: " << blocks - received << " changes missing";
  }
  watch_context.TryCancel();
  watcher.join();
  stream->Finish();
  CHECK_EQ(refused.load(), 0) << "blocks refused";
  result.sent = blocks;
  return result;
}

// A histogram's quantile estimated from the exposition text's cumulative buckets of `name`
// (the upper bound of the bucket the quantile falls in), -1 without observations.
struct BucketQuantiles {
  uint64_t count = 0;
  double p50 = -1;
  double p99 = -1;
  double mean = -1;
};

BucketQuantiles HistogramFromExposition(const std::string& text, const std::string& name,
                                        const std::string& labels = "") {
  std::vector<std::pair<double, uint64_t>> buckets;  // le, cumulative count
  double sum = 0;
  BucketQuantiles q;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!labels.empty() && !absl::StrContains(line, labels)) continue;
    if (absl::StartsWith(line, name + "_bucket{")) {
      const size_t le = line.find("le=\"");
      const size_t close = line.find("\"}", le);
      const size_t space = line.rfind(' ');
      if (le == absl::string_view::npos || close == absl::string_view::npos) continue;
      absl::string_view bound = line.substr(le + 4, close - le - 4);
      double upper = 0;
      double count = 0;
      if (bound == "+Inf") {
        upper = std::numeric_limits<double>::infinity();
      } else if (!absl::SimpleAtod(bound, &upper)) {
        continue;
      }
      if (!absl::SimpleAtod(line.substr(space + 1), &count)) continue;
      buckets.emplace_back(upper, static_cast<uint64_t>(count));
    } else if (absl::StartsWith(line, name + "_sum")) {  // "_sum " or "_sum{...} "
      absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &sum);
    }
  }
  if (buckets.empty() || buckets.back().second == 0) return q;
  q.count = buckets.back().second;
  q.mean = sum / static_cast<double>(q.count);
  auto quantile = [&](double p) {
    const double rank = p * static_cast<double>(q.count);
    for (const auto& [upper, cumulative] : buckets) {
      if (static_cast<double>(cumulative) >= rank) return upper;
    }
    return buckets.back().first;
  };
  q.p50 = quantile(0.5);
  q.p99 = quantile(0.99);
  return q;
}

// The state store's merge (libs/state_store/state_store.cc, AppendOperator): operands joined in
// order. Needed to compact the runtime's appended event-id chunks.
class AppendOperator : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    out->new_value.clear();
    if (in.existing_value != nullptr) {
      out->new_value.append(in.existing_value->data(), in.existing_value->size());
    }
    for (const rocksdb::Slice& operand : in.operand_list) {
      out->new_value.append(operand.data(), operand.size());
    }
    return true;
  }
  bool PartialMerge(const rocksdb::Slice&, const rocksdb::Slice& left, const rocksdb::Slice& right,
                    std::string* new_value, rocksdb::Logger*) const override {
    new_value->assign(left.data(), left.size());
    new_value->append(right.data(), right.size());
    return true;
  }
  const char* Name() const override { return "tongka.Append"; }
};

struct StoredBytes {
  int64_t sst_bytes = 0;        // every column family
  int64_t state_sst_bytes = 0;  // the state family
  std::string files;            // per family and level
  std::string prefixes;         // per key prefix of the state family
};

// Reopens the (closed) store at `path` with the state store's options, flushes and compacts
// every column family to the bottom, and measures it.
StoredBytes CompactAndMeasure(const std::string& path, int64_t cards) {
  rocksdb::DBOptions db_options;
  db_options.IncreaseParallelism(2);
  db_options.allow_concurrent_memtable_write = false;
  rocksdb::ColumnFamilyOptions state_options;
  state_options.OptimizeLevelStyleCompaction();
  state_options.write_buffer_size = 8 << 20;
  state_options.memtable_insert_with_hint_prefix_extractor.reset(
      rocksdb::NewFixedPrefixTransform(0));
  state_options.merge_operator = std::make_shared<AppendOperator>();
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  state_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {"state", state_options},
      {"offsets", rocksdb::ColumnFamilyOptions()},
      {"outbox", rocksdb::ColumnFamilyOptions()}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, path, descriptors, &handles, &raw);
  CHECK(s.ok()) << "reopen " << path << ": " << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    CHECK(db->Flush(rocksdb::FlushOptions(), handle).ok());
    s = db->CompactRange(compact, handle, nullptr, nullptr);
    CHECK(s.ok()) << "compact " << handle->GetName() << ": " << s.ToString();
  }
  StoredBytes stored;
  std::vector<rocksdb::LiveFileMetaData> files;
  db->GetLiveFilesMetaData(&files);
  std::map<std::pair<std::string, int>, std::pair<int, int64_t>> per_level;  // files, bytes
  for (const rocksdb::LiveFileMetaData& file : files) {
    stored.sst_bytes += static_cast<int64_t>(file.size);
    if (file.column_family_name == "state") stored.state_sst_bytes += file.size;
    auto& [count, bytes] = per_level[{file.column_family_name, file.level}];
    ++count;
    bytes += static_cast<int64_t>(file.size);
  }
  for (const auto& [where, what] : per_level) {
    absl::StrAppendFormat(&stored.files, " %s/L%d=%d files %.1f MB", where.first, where.second,
                          what.first, static_cast<double>(what.second) / 1e6);
  }
  // Per prefix: the leading segment up to its first '/'.
  struct Sizes {
    int64_t keys = 0;
    int64_t key_bytes = 0;
    int64_t value_bytes = 0;
  };
  std::map<std::string, Sizes> prefixes;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[1]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const absl::string_view key(it->key().data(), it->key().size());
    const size_t slash = key.find('/');
    Sizes& sizes =
        prefixes[std::string(slash == absl::string_view::npos ? key : key.substr(0, slash + 1))];
    ++sizes.keys;
    sizes.key_bytes += static_cast<int64_t>(key.size());
    sizes.value_bytes += static_cast<int64_t>(it->value().size());
  }
  CHECK(it->status().ok()) << it->status().ToString();
  it.reset();
  Sizes total;
  for (const auto& [prefix, sizes] : prefixes) {
    absl::StrAppendFormat(&stored.prefixes,
                          "  %-8s keys=%-9d key_B/card=%6.1f value_B/card=%6.1f "
                          "(per key: %.1f + %.1f)\n",
                          prefix, sizes.keys, static_cast<double>(sizes.key_bytes) / cards,
                          static_cast<double>(sizes.value_bytes) / cards,
                          static_cast<double>(sizes.key_bytes) / sizes.keys,
                          static_cast<double>(sizes.value_bytes) / sizes.keys);
    total.keys += sizes.keys;
    total.key_bytes += sizes.key_bytes;
    total.value_bytes += sizes.value_bytes;
  }
  absl::StrAppendFormat(&stored.prefixes, "  %-8s keys=%-9d key+value_B/card=%.1f\n", "total",
                        total.keys,
                        static_cast<double>(total.key_bytes + total.value_bytes) / cards);
  for (rocksdb::ColumnFamilyHandle* handle : handles)
    CHECK(db->DestroyColumnFamilyHandle(handle).ok());
  CHECK(db->Close().ok());
  return stored;
}

int Main() {
  const int64_t cards = absl::GetFlag(FLAGS_cards);
  const int64_t warmup = std::max<int64_t>(0, absl::GetFlag(FLAGS_warmup_cards));
  const int32_t batch = std::clamp(absl::GetFlag(FLAGS_batch), 1, 10000);
  const int32_t concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const int32_t partitions = absl::GetFlag(FLAGS_partitions);
  CHECK_GT(cards, 0);
  for (uint32_t city : kCities) CHECK(txn::FindCity(city) != nullptr) << city;
  std::string work_dir = absl::GetFlag(FLAGS_work_dir);
  const bool temp_work_dir = work_dir.empty();  // removed at the end: a 1M-card run fills ~2 GB
  std::unique_ptr<event_log::LocalKafka> kafka =
      StartBroker(&work_dir, {{.name = kCardsTopic, .partitions = partitions},
                              {.name = kTxnTopic, .partitions = partitions},
                              {.name = kMembersTopic, .partitions = 1},
                              {.name = kRawTopic, .partitions = partitions}});
  const std::string bootstrap = kafka->bootstrap();
  LOG(INFO) << "work dir " << work_dir;

  const std::string keys_path = work_dir + "/holder_keys";
  {
    std::ofstream keys(keys_path);
    keys << DevHolderKeys();
    CHECK(keys.good()) << keys_path;
  }
  card_registry::CardRegistryConfig config;
  config.kafka_bootstrap = bootstrap;
  config.state_dir = work_dir + "/card_registry";
  std::filesystem::remove_all(config.state_dir);
  config.grpc.listen_address = "127.0.0.1:0";
  config.grpc.auth_mode = server::AuthMode::kDevToken;
  config.grpc.dev_token_secret = kSecret;
  config.grpc.max_message_bytes = 64 << 20;
  config.metrics_port = -1;
  config.holder_keys_path = keys_path;
  config.command_timeout = absl::Minutes(5);
  auto app = card_registry::CardRegistryApp::Create(config);
  if (!app.ok()) kafka.reset();  // ExitUnlessOk exits without destructors: stop the broker first
  ExitUnlessOk(app.status(), "card registry");
  const std::string target = absl::StrCat("127.0.0.1:", (*app)->grpc_port());
  const Tokens tokens = MakeTokens();

  // 1. Issue, with the raw baseline around it.
  std::vector<double> ignored;
  if (warmup > 0) {
    IssueRound warm = GenerateIssue(0, warmup, batch);
    RawProduce(bootstrap, warm.records);
    Issue(target, tokens, warm, concurrency, &ignored);
    CHECK(WaitOutboxEmpty(**app, absl::Minutes(5))) << "warm-up outbox";
  }
  LOG(INFO) << "generating " << cards << " cards";
  IssueRound round = GenerateIssue(warmup, cards, batch);
  std::vector<double> raw_rates = {RawProduce(bootstrap, round.records)};
  std::vector<double> issue_latencies_ms;
  LOG(INFO) << "issue: start";
  const absl::Time issue_start = absl::Now();
  std::vector<double> issue_tenths;
  const double issue_rate =
      Issue(target, tokens, round, concurrency, &issue_latencies_ms, &issue_tenths);
  CHECK(WaitOutboxEmpty(**app, absl::Minutes(30))) << "outbox";
  const double settled_rate =
      static_cast<double>(cards) / absl::ToDoubleSeconds(absl::Now() - issue_start);
  raw_rates.push_back(RawProduce(bootstrap, round.records));
  const double raw_rate = *std::max_element(raw_rates.begin(), raw_rates.end());
  round = IssueRound();
  const int64_t issued = warmup + cards;

  // 2. GetCard, open loop, once what issuing left behind (RocksDB's flushes and compactions,
  // the ledger reading its decisions back) has settled: the figure is for a registry serving
  // reads, not one finishing a million-card import.
  // Rounds, as the other benchmarks alternate theirs: the p99 is the median round's, so one round
  // that a burst of other work on the machine hit does not decide it.
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_settle_seconds)));
  LOG(INFO) << "getcard: start";
  std::vector<GetCardResult> get_rounds;
  std::vector<double> getcard_p99s;
  for (int32_t r = 0; r < std::max(1, absl::GetFlag(FLAGS_getcard_rounds)); ++r) {
    get_rounds.push_back(GetCards(target, work_dir, tokens, issued, batch,
                                  absl::GetFlag(FLAGS_getcard_rate),
                                  absl::GetFlag(FLAGS_getcard_seconds), 42 + r));
    getcard_p99s.push_back(Percentile(get_rounds.back().latencies_ms, 0.99));
  }
  const double getcard_p99_ms = Median(getcard_p99s);
  LOG(INFO) << "getcard: end";
  const BucketQuantiles getcard_server =
      HistogramFromExposition((*app)->runtime().registry().ExpositionText(),
                              "tongka_card_registry_request_seconds", "rpc=\"GetCard\"");

  // 3. Hotlist propagation.
  LOG(INFO) << "hotlist: start";
  const HotlistResult hot = Hotlist(target, tokens, issued, batch, absl::GetFlag(FLAGS_block_rate),
                                    absl::GetFlag(FLAGS_hotlist_seconds));
  const BucketQuantiles service_hist =
      HistogramFromExposition((*app)->runtime().registry().ExpositionText(),
                              "tongka_card_registry_hotlist_propagation_seconds");

  // 4. Bytes per card, after the app has closed its store.
  (*app)->Shutdown(absl::Now() + absl::Seconds(20));
  app->reset();
  const StoredBytes stored = CompactAndMeasure(config.state_dir, issued);
  const double bytes_per_card = static_cast<double>(stored.sst_bytes) / issued;
  kafka.reset();
  if (temp_work_dir) std::filesystem::remove_all(work_dir);

  std::cout << absl::StrFormat(
                   "issue: cards=%d batch=%d concurrency=%d partitions=%d issue_rate=%.0f "
                   "settled_rate=%.0f (outbox published) raw_produce_rate=%.0f ratio=%.3f "
                   "batch_ms p50=%.0f p99=%.0f",
                   cards, batch, concurrency, partitions, issue_rate, settled_rate, raw_rate,
                   issue_rate / raw_rate, Percentile(issue_latencies_ms, 0.5),
                   Percentile(issue_latencies_ms, 0.99))
            << std::endl;
  std::cout << "issue: cards/s by tenth of the cards:";
  for (double rate : issue_tenths) std::cout << absl::StrFormat(" %.0f", rate);
  std::cout << std::endl;
  for (size_t r = 0; r < get_rounds.size(); ++r) {
    const GetCardResult& get = get_rounds[r];
    std::cout << absl::StrFormat(
                     "getcard round %d: target_rate=%.0f achieved_rate=%.0f calls=%d p50_ms=%.2f "
                     "p99_ms=%.2f p999_ms=%.2f max_ms=%.2f worst_second_p99_ms=%.2f "
                     "max_start_lag_ms=%.2f cores: process=%.2f broker=%.2f other=%.2f",
                     r, absl::GetFlag(FLAGS_getcard_rate), get.achieved_rate,
                     get.latencies_ms.size(), Percentile(get.latencies_ms, 0.5),
                     Percentile(get.latencies_ms, 0.99), Percentile(get.latencies_ms, 0.999),
                     Percentile(get.latencies_ms, 1.0), get.worst_second_p99_ms,
                     get.max_start_lag_ms, get.process_cores, get.broker_cores, get.other_cores)
              << std::endl;
    if (absl::GetFlag(FLAGS_getcard_series)) {
      std::cout << absl::StrFormat("getcard round %d p99_ms per %.0f ms:", r,
                                   absl::GetFlag(FLAGS_getcard_slice_ms));
      for (double p99 : get.slice_p99_ms) std::cout << absl::StrFormat(" %.1f", p99);
      std::cout << std::endl;
    }
  }
  std::cout << absl::StrFormat(
                   "getcard: p99_ms=%.2f (median of the rounds); server handler, all rounds "
                   "(bucket bounds): p50_ms<=%.1f p99_ms<=%.1f mean_ms=%.3f",
                   getcard_p99_ms, getcard_server.p50 * 1e3, getcard_server.p99 * 1e3,
                   getcard_server.mean * 1e3)
            << std::endl;
  CHECK(!hot.propagation_ms.empty()) << "no hotlist change arrived";
  std::cout << absl::StrFormat(
                   "hotlist: blocks=%d rate=%.0f/s received=%d propagation p50_ms=%.1f "
                   "p99_ms=%.1f max_ms=%.1f; command answered p50_ms=%.1f p99_ms=%.1f; "
                   "service histogram (recorded_at -> stream write, bucket bounds) count=%d "
                   "p50_ms<=%.0f p99_ms<=%.0f mean_ms=%.1f",
                   hot.sent, absl::GetFlag(FLAGS_block_rate), hot.propagation_ms.size(),
                   Percentile(hot.propagation_ms, 0.5), Percentile(hot.propagation_ms, 0.99),
                   Percentile(hot.propagation_ms, 1.0), Percentile(hot.command_ms, 0.5),
                   Percentile(hot.command_ms, 0.99), service_hist.count, service_hist.p50 * 1e3,
                   service_hist.p99 * 1e3, service_hist.mean * 1e3)
            << std::endl;
  std::cout << absl::StrFormat(
                   "bytes: cards=%d sst_bytes=%d state_sst_bytes=%d bytes_per_card=%.1f "
                   "state_bytes_per_card=%.1f files:%s",
                   issued, stored.sst_bytes, stored.state_sst_bytes, bytes_per_card,
                   static_cast<double>(stored.state_sst_bytes) / issued, stored.files)
            << std::endl;
  std::cout << "state family by key prefix (key and value bytes as stored, before block format "
               "and compression):\n"
            << stored.prefixes;
  std::cout << absl::StrFormat(
                   "issue_rate=%.0f getcard_p99_ms=%.2f hotlist_p99_ms=%.1f "
                   "bytes_per_card=%.1f",
                   issue_rate, getcard_p99_ms, Percentile(hot.propagation_ms, 0.99), bytes_per_card)
            << std::endl;
  return 0;
}

}  // namespace
}  // namespace tongka::bench

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);  // as the services do
  return tongka::bench::RunBenchmark(argc, argv, tongka::bench::Main);
}
