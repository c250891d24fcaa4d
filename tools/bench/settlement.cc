// Benchmark: settlement's stage-one apply rate next to the raw librdkafka consume rate of the same
// transactions, and the latency of closing an 80-city window (building its report), from one run
// on the real broker.
//
//   bazel run -c opt //tools/bench:settlement [-- --events=1000000 --rounds=3 --report_windows=5]
//
// It starts a local Kafka broker with tongka.txn (8 partitions) and tongka.settlement, and appends
// `events` transactions as ingest writes them: one business day (2026-11-24, Asia/Shanghai) of
// taps (94%), loads (4%) and refunds (2%) on cards of all 80 member cities, drawn by city size; 90%
// of them taken in the card's own city, 10% in another member city; keyed by card id. Then
//   1. raw:    consumes them all with a bare RdKafka::KafkaConsumer (assign from offset 0, no
//              copy, no parse): the ceiling the log itself sets;
//   2. apply:  consumes them with the runtime's ApplyLoop into a fresh StateStore with
//              settlement::TxnStage: parse, window and hour, fee, digest, the per-transaction id
//              index, and per batch the SettlementDelta events in the outbox, all in one commit;
//              alternating with raw for --rounds rounds; the medians are reported. Each round's
//              wall time is split (two clock reads per batch) into Apply, FinishBatch, the commit
//              and the wait for the next prefetched batch; the first round's deltas are checked
//              to hold every transaction exactly once;
//   3. report: without Kafka, builds a store holding --report_windows windows of ledger state for
//              every (issuer, acquirer) pair of the 80 cities and every hour, by applying
//              SettlementDelta records through settlement::WindowLedger, then closes each window
//              (a ministry WindowCloseRequested to CLOSED) through WindowLedger::Apply + Commit,
//              which reads the 6,400 pairs and builds, checks and stores the report. report_ms is
//              the median wall time of one close. Every report is read back and checked: 6,400
//              bilateral rows and no invariant violations, or the benchmark fails.
// --splits adds an in-process breakdown of stage one's cost (parse, Apply, FinishBatch, Commit)
// over the first events, without Kafka: where the apply time goes. Both consumers use the
// service's Kafka config; --kafka_overrides tries librdkafka tuning on both. Last line:
//   apply_rate=<tx/s> raw_consume_rate=<tx/s> ratio=<apply/raw> report_ms=<ms>
#include <glog/logging.h>
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "libs/crypto/sm3.h"
#include "libs/crypto/sm3_lanes.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/kafka_config.h"
#include "libs/event_log/partition_consumer.h"
#include "libs/event_log/producer.h"
#include "libs/event_log/record.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/metrics/metrics.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/state_store.h"
#include "libs/txn/card_id.h"
#include "libs/txn/cities.h"
#include "libs/txn/terminal_id.h"
#include "libs/txn/txn_view.h"
#include "libs/txn/upload.h"
#include "proto/events.pb.h"
#include "services/settlement/business_day.h"
#include "services/settlement/fees.h"
#include "services/settlement/settlement_state.h"
#include "tools/bench/bench_support.h"

ABSL_FLAG(int64_t, events, 1000000, "Transactions to append and consume.");
ABSL_FLAG(int32_t, partitions, 8, "Partitions of tongka.txn.");
ABSL_FLAG(int32_t, batch_max_records, 10000,
          "ApplyLoop batch size (settlement's default batch_max_records).");
ABSL_FLAG(int32_t, rounds, 3,
          "Alternating raw/apply rounds; the medians are reported (this machine is noisy).");
ABSL_FLAG(int32_t, report_windows, 5, "Windows built and closed for report_ms (the median).");
ABSL_FLAG(bool, splits, true,
          "Also time stage one's parts in process (parse, Apply, FinishBatch, Commit).");
ABSL_FLAG(int64_t, split_events, 200000, "Events of the in-process breakdown (--splits).");
ABSL_FLAG(std::string, kafka_overrides, "",
          "Extra librdkafka properties for both consumers, \"name=value,...\" (default: none, as "
          "the settlement service runs).");
ABSL_FLAG(
    bool, event_filter, true,
    "Run the apply loop's EventFilter (repeats and misrouted records); false shows its cost.");
ABSL_FLAG(std::string, work_dir, "", "Where the broker and the stores live (default: a temp dir).");

namespace tongka::bench {
namespace {

using settlement::kSettlementTopic;
using settlement::kTxnTopic;

constexpr uint64_t kSeed = 20261124;
// 2026-11-24 00:00 +08:00: the start of window 2026-11-24 in Asia/Shanghai.
constexpr int64_t kDayStartUs = 1795449600000000;
constexpr int64_t kDayUs = int64_t{86400} * 1000000;
constexpr int32_t kSettlementPartitions = 8;

// The consumers' client config: the service's, plus --kafka_overrides.
event_log::KafkaClientConfig ConsumerConfig(const std::string& bootstrap) {
  event_log::KafkaClientConfig config{.bootstrap_servers = bootstrap};
  for (absl::string_view entry :
       absl::StrSplit(absl::GetFlag(FLAGS_kafka_overrides), ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> property = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    config.overrides[property.first] = property.second;
  }
  return config;
}

// SplitMix64: a tiny, well-mixed, deterministic generator.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t x = (state_ += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  uint64_t Uniform(uint64_t n) { return Next() % n; }
  double Double() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// One day of transactions across the 80 member cities, in log order (recorded_at ascending).
class TxnGenerator {
 public:
  TxnGenerator(uint64_t seed, int64_t events) : rng_(seed), events_(events) {
    double sum = 0;
    for (const txn::City& city : txn::MemberCities()) cumulative_.push_back(sum += city.weight);
  }

  // The next event; call at most `events` times.
  v1::Event Next() {
    const std::vector<txn::City>& cities = txn::MemberCities();
    const size_t issuer_index = PickCity();
    const txn::City& issuer = cities[issuer_index];
    size_t acquirer_index = issuer_index;
    if (rng_.Double() >= 0.9) {
      while (acquirer_index == issuer_index) acquirer_index = PickCity();
    }
    const txn::City& acquirer = cities[acquirer_index];
    // City size sets the card and terminal populations: Shanghai ~500k cards, ~5k terminals/mode.
    const uint64_t cards = std::max<uint64_t>(1000, static_cast<uint64_t>(issuer.weight * 20000));
    const uint64_t terminals = std::max<uint64_t>(50, static_cast<uint64_t>(acquirer.weight * 200));

    const uint64_t kind = rng_.Uniform(1000);  // < 940 tap, < 980 load, else refund
    v1::TransportMode mode = PickMode();
    if (kind >= 940 && kind < 980) {  // loads: metro ticket machines and retail counters
      mode = rng_.Uniform(2) == 0 ? v1::TRANSPORT_MODE_METRO : v1::TRANSPORT_MODE_RETAIL;
    }
    const std::string terminal_id = txn::CityTerminalId(
        acquirer.code, mode, static_cast<uint32_t>(1 + rng_.Uniform(terminals)));
    const uint64_t seq = ++next_seq_[terminal_id];

    v1::Event event;
    event.set_event_id(txn::TxnEventId(terminal_id, seq));
    event.set_recorded_at_us(kDayStartUs + static_cast<int64_t>(static_cast<double>(index_) *
                                                                static_cast<double>(kDayUs) /
                                                                static_cast<double>(events_)));
    // Most uploads arrive within seconds; offline terminals upload minutes later.
    event.set_occurred_at_us(event.recorded_at_us() -
                             static_cast<int64_t>(rng_.Uniform(10) == 0 ? rng_.Uniform(600000000)
                                                                        : rng_.Uniform(3000000)));
    event.mutable_source()->set_kind(v1::TENANT_KIND_CITY_OPERATOR);
    event.mutable_source()->set_city(acquirer.code);
    ++index_;

    v1::TxnCommon* txn = nullptr;
    const int64_t fare_fen = 100 + 10 * static_cast<int64_t>(rng_.Uniform(81));  // 1..9 yuan
    const int64_t balance_fen = 2000 + static_cast<int64_t>(rng_.Uniform(20000));
    int64_t balance_after_fen = balance_fen;
    if (kind < 940) {
      v1::Tap* tap = event.mutable_tap();
      tap->set_amount_fen(fare_fen);
      tap->set_mode(mode);
      if (mode != v1::TRANSPORT_MODE_RETAIL) tap->set_route_id(absl::StrCat(1 + rng_.Uniform(300)));
      tap->set_station_id(absl::StrFormat("S%05d", rng_.Uniform(20000)));
      balance_after_fen -= fare_fen;
      txn = tap->mutable_txn();
    } else if (kind < 980) {
      v1::Load* load = event.mutable_load();
      load->set_amount_fen(1000 * (1 + static_cast<int64_t>(rng_.Uniform(20))));  // 10..200 yuan
      load->set_channel(mode == v1::TRANSPORT_MODE_METRO ? "ticket_machine" : "counter");
      balance_after_fen += load->amount_fen();
      txn = load->mutable_txn();
    } else {
      v1::Refund* refund = event.mutable_refund();
      refund->set_amount_fen(fare_fen);
      refund->set_original_terminal_id(terminal_id);
      refund->set_original_terminal_seq(seq > 1 ? seq - 1 : seq);
      refund->set_reason("fare_adjustment");
      balance_after_fen += fare_fen;
      txn = refund->mutable_txn();
    }
    txn->set_card_id(txn::MakeCardId(issuer.code, rng_.Uniform(cards)));
    txn->set_issuer_city(issuer.code);
    txn->set_acquirer_city(acquirer.code);
    txn->set_operator_id(absl::StrFormat("%06u", acquirer.code));
    txn->set_terminal_id(terminal_id);
    txn->set_terminal_seq(seq);
    txn->set_card_counter(static_cast<uint32_t>(1 + rng_.Uniform(60000)));
    txn->set_balance_before_fen(balance_fen);
    txn->set_balance_after_fen(balance_after_fen);
    std::string mac(16, '\0');  // an SM4-CMAC's size; settlement does not verify it
    for (char& c : mac) c = static_cast<char>(rng_.Next());
    txn->set_mac(std::move(mac));
    return event;
  }

 private:
  size_t PickCity() {
    const double x = rng_.Double() * cumulative_.back();
    return static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), x) -
                               cumulative_.begin());
  }
  v1::TransportMode PickMode() {
    const uint64_t r = rng_.Uniform(100);
    if (r < 40) return v1::TRANSPORT_MODE_BUS;
    if (r < 75) return v1::TRANSPORT_MODE_METRO;
    if (r < 83) return v1::TRANSPORT_MODE_BIKE;
    if (r < 85) return v1::TRANSPORT_MODE_FERRY;
    if (r < 90) return v1::TRANSPORT_MODE_PARKING;
    return v1::TRANSPORT_MODE_RETAIL;
  }

  Rng rng_;
  const int64_t events_;
  int64_t index_ = 0;
  std::vector<double> cumulative_;
  absl::flat_hash_map<std::string, uint64_t> next_seq_;
};

// The partition key of a transaction on tongka.txn.
const std::string& CardIdOf(const v1::Event& event) {
  switch (event.body_case()) {
    case v1::Event::kTap:
      return event.tap().txn().card_id();
    case v1::Event::kLoad:
      return event.load().txn().card_id();
    default:
      return event.refund().txn().card_id();
  }
}

// Appends the day; returns the bytes of the values.
int64_t Produce(const std::string& bootstrap, int64_t events) {
  auto producer = event_log::Producer::Create({.bootstrap_servers = bootstrap});
  ExitUnlessOk(producer.status(), "producer");
  TxnGenerator generator(kSeed, events);
  int64_t bytes = 0;
  for (int64_t i = 0; i < events; ++i) {
    v1::Event event = generator.Next();
    const std::string value = event.SerializeAsString();
    bytes += static_cast<int64_t>(value.size());
    ExitUnlessOk(
        (*producer)->ProduceWaiting(kTxnTopic, CardIdOf(event), value, nullptr, absl::Minutes(1)),
        "produce");
  }
  ExitUnlessOk((*producer)->Flush(absl::Minutes(5)), "flush");
  return bytes;
}

// Sums what stage one's outbox says it saw: every transaction must be in exactly one delta.
void CheckStageOneOutput(const state_store::StateStore& store, int64_t events) {
  auto outbox = store.ReadOutbox(static_cast<size_t>(store.OutboxDepth()));
  ExitUnlessOk(outbox.status(), "read outbox");
  int64_t transactions = 0;
  for (const state_store::OutboxRecord& entry : *outbox) {
    v1::Event event;
    CHECK(event.ParseFromString(entry.value) && event.has_settlement_delta()) << entry.topic;
    CHECK_EQ(entry.topic, kSettlementTopic);
    for (const v1::SettlementCell& cell : event.settlement_delta().cells()) {
      transactions += cell.taps() + cell.refunds() + cell.loads();
    }
  }
  auto stats = settlement::ReadStats(settlement::ViewOf(store));
  ExitUnlessOk(stats.status(), "stats");
  if (transactions != events || stats->txn_invalid != 0) {
    std::cerr << "stage one lost transactions: deltas hold " << transactions << " of " << events
              << ", " << stats->txn_invalid << " invalid" << std::endl;
    std::exit(1);
  }
  LOG(INFO) << "stage one: " << outbox->size() << " deltas cover all " << transactions
            << " transactions";
}

// Splits each batch of the loop at two clock reads per batch (never per record): the first
// Apply, and FinishBatch's start and end. The loop's own step timer covers apply, FinishBatch and
// the commit, so the commit is the rest of it, and the time outside the steps is the wait for
// the prefetch thread's next batch.
class BatchClock : public state_store::Applier {
 public:
  explicit BatchClock(state_store::Applier* inner) : inner_(inner) {}

  absl::Status Apply(const event_log::Record& record, state_store::StateBatch& batch) override {
    if (!in_batch_) {
      in_batch_ = true;
      batch_start_ = absl::Now();
    }
    return inner_->Apply(record, batch);
  }
  void Prepare(const std::vector<event_log::Record>& records) override {
    inner_->Prepare(records);  // on the prefetch thread: outside the loop's steps
  }
  absl::Status FinishBatch(state_store::StateBatch& batch) override {
    const absl::Time finish_start = absl::Now();
    absl::Status status = inner_->FinishBatch(batch);
    apply_s_ += absl::ToDoubleSeconds(finish_start - batch_start_);
    finish_s_ += absl::ToDoubleSeconds(absl::Now() - finish_start);
    writes_ += static_cast<int64_t>(batch.write_count());
    in_batch_ = false;
    return status;
  }

  double apply_s() const { return apply_s_; }
  double finish_s() const { return finish_s_; }
  int64_t writes() const { return writes_; }  // state keys written, summed over the batches

 private:
  state_store::Applier* inner_;
  bool in_batch_ = false;
  absl::Time batch_start_;
  double apply_s_ = 0;
  double finish_s_ = 0;
  int64_t writes_ = 0;
};

// One apply round: its rate and where its wall time went, in seconds.
struct ApplyRound {
  double rate = 0;
  double wall_s = 0;
  double apply_s = 0;        // TxnStage::Apply over the batches' records
  double finish_s = 0;       // TxnStage::FinishBatch
  double commit_s = 0;       // the rest of the loop's steps: offsets and StateStore::Commit
  double wait_s = 0;         // outside the steps: waiting for the next prefetched batch
  int64_t empty_polls = 0;   // RunOnce calls that found no batch within the poll timeout
  double first_batch_s = 0;  // from the loop's start to its first batch (connect, first fetch)
};

// A fresh store holding the genesis rules (Asia/Shanghai, cut 24:00, default:50), recorded
// through the ledger as settlement's first start records them (stage one reads them there).
absl::StatusOr<std::unique_ptr<state_store::StateStore>> FreshStoreWithRules(
    const std::string& store_dir) {
  std::filesystem::remove_all(store_dir);
  auto store = state_store::StateStore::Open({.path = store_dir});
  if (!store.ok()) return store.status();
  v1::Event event;
  event.set_event_id("cmd/platform:settlement/rules-genesis");
  event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
  event.mutable_source()->set_service("settlement");
  *event.mutable_settlement_rules_requested()->mutable_rules() =
      settlement::MakeRules("Asia/Shanghai", absl::Hours(24), "default:50");
  settlement::WindowLedger ledger({});
  state_store::StateBatch batch(store->get());
  ExitUnlessOk(ledger.Apply(event_log::Record::Owned(kSettlementTopic, 0, 0, "rules",
                                                     event.SerializeAsString()),
                            batch),
               "genesis rules");
  ExitUnlessOk((*store)->Commit(batch), "genesis rules commit");
  return store;
}

// Applies every event through ApplyLoop + TxnStage into a fresh store.
ApplyRound Apply(const std::string& bootstrap, const std::string& store_dir, int64_t events,
                 int32_t batch_max_records, bool check) {
  auto store = FreshStoreWithRules(store_dir);
  ExitUnlessOk(store.status(), "store");
  auto consumer = event_log::PartitionConsumer::Create(ConsumerConfig(bootstrap), "bench-apply");
  ExitUnlessOk(consumer.status(), "consumer");
  settlement::TxnStage stage;
  BatchClock clock(&stage);
  metrics::Histogram step_seconds({1.0});  // only its sum is read
  state_store::ApplyLoop loop(store->get(), std::move(*consumer), &clock,
                              {.topics = {kTxnTopic},
                               .batch_max_records = static_cast<size_t>(batch_max_records),
                               .batch_seconds = &step_seconds,
                               .filter = {.drop_duplicates = absl::GetFlag(FLAGS_event_filter),
                                          .refuse_misrouted = absl::GetFlag(FLAGS_event_filter)}});
  ExitUnlessOk(loop.Start(), "loop start");
  int64_t applied = 0;
  int64_t batches = 0;
  int64_t empty_polls = 0;
  absl::Time start = absl::Now();
  absl::Time first_batch_at = start;
  while (applied < events) {
    auto n = loop.RunOnce();
    ExitUnlessOk(n.status(), "apply");
    applied += static_cast<int64_t>(*n);
    if (*n > 0) {
      if (batches == 0) first_batch_at = absl::Now();
      ++batches;
    } else {
      ++empty_polls;
    }
  }
  ApplyRound round;
  round.wall_s = absl::ToDoubleSeconds(absl::Now() - start);
  round.rate = static_cast<double>(applied) / round.wall_s;
  const double steps_s = step_seconds.GetSnapshot().sum;
  round.apply_s = clock.apply_s();
  round.finish_s = clock.finish_s();
  round.commit_s = steps_s - round.apply_s - round.finish_s;
  round.wait_s = round.wall_s - steps_s;
  round.empty_polls = empty_polls;
  round.first_batch_s = absl::ToDoubleSeconds(first_batch_at - start);
  CHECK_GT((*store)->OutboxDepth(), 0) << "every batch derives SettlementDelta events";
  LOG(INFO) << "apply: " << applied << " events in " << batches << " batches, " << round.wall_s
            << " s (apply " << round.apply_s << ", finish " << round.finish_s << ", commit "
            << round.commit_s << ", waiting " << round.wait_s << " with " << empty_polls
            << " empty polls, first batch after " << round.first_batch_s << " s), "
            << clock.writes() << " state writes, " << (*store)->OutboxDepth()
            << " outbox events, store " << (*store)->ApproximateSizeBytes() << " bytes";
  if (check) CheckStageOneOutput(**store, events);
  return round;
}

// ---- the in-process breakdown of stage one ----

struct StageSplits {
  int64_t events = 0;
  double full_parse_s = 0;  // v1::Event::ParseFromArray, for comparison (stage one does not)
  double parse_s = 0;       // ParseTxnView alone, what stage one reads each record with
  double sm3_s = 0;         // crypto::Sm3 of each id alone (the cells' id digests)
  double sm3_lanes_s = 0;   // the same ids through crypto::Sm3Many, as Prepare hashes them
  double apply_s = 0;       // TxnStage::Apply (includes its own parse)
  double finish_s = 0;      // TxnStage::FinishBatch
  double commit_s = 0;      // StateStore::Commit
};

StageSplits TimeStageSplits(const std::string& store_dir, int64_t events, int64_t total_events,
                            int32_t partitions, int32_t batch_max_records) {
  // The same first events as the log, partitioned round-robin (the log hashes the card id).
  TxnGenerator generator(kSeed, total_events);
  std::vector<event_log::Record> records;
  records.reserve(static_cast<size_t>(events));
  std::vector<int64_t> next_offset(static_cast<size_t>(partitions), 0);
  for (int64_t i = 0; i < events; ++i) {
    const int32_t p = static_cast<int32_t>(i % partitions);
    records.push_back(event_log::Record::Owned(kTxnTopic, p, next_offset[p]++, "",
                                               generator.Next().SerializeAsString()));
  }
  StageSplits splits;
  splits.events = events;
  {
    v1::Event event;
    absl::Time start = absl::Now();
    for (const event_log::Record& record : records) {
      CHECK(event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())));
    }
    splits.full_parse_s = absl::ToDoubleSeconds(absl::Now() - start);
    txn::TxnView txn;
    start = absl::Now();
    for (const event_log::Record& record : records) {
      CHECK(txn::ParseTxnView(record.value, &txn));
    }
    splits.parse_s = absl::ToDoubleSeconds(absl::Now() - start);
    uint64_t sum = 0;
    start = absl::Now();
    for (const event_log::Record& record : records) {
      CHECK(txn::ParseTxnView(record.value, &txn));
      sum += crypto::Sm3(txn.event_id)[0];
    }
    splits.sm3_s = absl::ToDoubleSeconds(absl::Now() - start) - splits.parse_s;
    std::vector<absl::string_view> ids;
    for (const event_log::Record& record : records) {
      CHECK(txn::ParseTxnView(record.value, &txn));
      ids.push_back(txn.event_id);
    }
    std::vector<crypto::Sm3Digest> digests(ids.size());
    start = absl::Now();
    crypto::Sm3Many(ids, absl::MakeSpan(digests));
    splits.sm3_lanes_s = absl::ToDoubleSeconds(absl::Now() - start);
    for (const crypto::Sm3Digest& digest : digests) sum += digest[0];
    // Reported, so the digests cannot be optimized away.
    VLOG(1) << "digest checksum " << sum;
  }
  auto store = FreshStoreWithRules(store_dir);
  ExitUnlessOk(store.status(), "split store");
  settlement::TxnStage stage;
  for (size_t i = 0; i < records.size(); i += static_cast<size_t>(batch_max_records)) {
    const size_t end = std::min(records.size(), i + static_cast<size_t>(batch_max_records));
    state_store::StateBatch batch(store->get());
    absl::Time t0 = absl::Now();
    for (size_t j = i; j < end; ++j) ExitUnlessOk(stage.Apply(records[j], batch), "split apply");
    absl::Time t1 = absl::Now();
    ExitUnlessOk(stage.FinishBatch(batch), "split finish");
    absl::Time t2 = absl::Now();
    for (size_t j = i; j < end; ++j) {
      batch.SetNextOffset({kTxnTopic, records[j].partition}, records[j].offset + 1);
    }
    absl::Time t3 = absl::Now();
    ExitUnlessOk((*store)->Commit(batch), "split commit");
    absl::Time t4 = absl::Now();
    splits.apply_s += absl::ToDoubleSeconds(t1 - t0);
    splits.finish_s += absl::ToDoubleSeconds(t2 - t1);
    splits.commit_s += absl::ToDoubleSeconds(t4 - t3);
  }
  std::filesystem::remove_all(store_dir);
  return splits;
}

// ---- report latency ----

struct ReportFigures {
  std::vector<double> close_ms;         // apply + commit of each close
  std::vector<double> close_apply_ms;   // WindowLedger::Apply alone
  std::vector<double> close_commit_ms;  // StateStore::Commit alone
  int64_t cells_per_window = 0;
  int64_t deltas_per_window = 0;
  double build_s = 0;
  int64_t store_bytes = 0;
  int64_t report_bytes = 0;
};

// One hour of one (issuer, acquirer) pair, as stage one would sum it.
v1::SettlementCell RandomCell(Rng& rng, const std::string& window_id, uint32_t issuer,
                              uint32_t acquirer, int32_t hour) {
  v1::SettlementCell cell;
  cell.set_issuer_city(issuer);
  cell.set_acquirer_city(acquirer);
  cell.set_origin_window_id(window_id);
  cell.set_hour(hour);
  const int64_t taps =
      static_cast<int64_t>(issuer == acquirer ? 50 + rng.Uniform(2000) : 1 + rng.Uniform(40));
  const int64_t taps_fen = taps * (100 + static_cast<int64_t>(rng.Uniform(801)));
  const int64_t refunds = static_cast<int64_t>(rng.Uniform(taps / 50 + 2));
  const int64_t refunds_fen = refunds * (100 + static_cast<int64_t>(rng.Uniform(801)));
  cell.set_taps(taps);
  cell.set_taps_fen(taps_fen);
  cell.set_refunds(refunds);
  cell.set_refunds_fen(refunds_fen);
  cell.set_fee_fen(settlement::RoundedFeeFen(taps_fen, 50) -
                   settlement::RoundedFeeFen(refunds_fen, 50));
  if (issuer == acquirer) {
    const int64_t loads = static_cast<int64_t>(rng.Uniform(40));
    cell.set_loads(loads);
    cell.set_loads_fen(loads * 1000 * (1 + static_cast<int64_t>(rng.Uniform(20))));
  }
  cell.set_id_digest_lo(rng.Next());
  cell.set_id_digest_hi(rng.Next());
  return cell;
}

ReportFigures TimeReports(const std::string& store_dir, int32_t windows,
                          const settlement::BusinessCalendar& calendar) {
  std::filesystem::remove_all(store_dir);
  auto store = state_store::StateStore::Open({.path = store_dir});
  ExitUnlessOk(store.status(), "ledger store");
  settlement::WindowLedger ledger({.replica_index = 0, .replica_count = 1});
  const std::vector<txn::City>& cities = txn::MemberCities();
  const int32_t city_count = static_cast<int32_t>(cities.size());
  const int32_t source_partitions = 8;  // tongka.txn's
  std::vector<int64_t> next_offset(kSettlementPartitions, 0);
  ReportFigures figures;

  // Applies one record of tongka.settlement through the ledger and commits it, as an ApplyLoop
  // batch of one would; returns (apply seconds, commit seconds).
  auto apply_one = [&](int32_t partition, const std::string& key, const v1::Event& event) {
    event_log::Record record = event_log::Record::Owned(
        kSettlementTopic, partition, next_offset[partition]++, key, event.SerializeAsString());
    state_store::StateBatch batch(store->get());
    absl::Time t0 = absl::Now();
    ExitUnlessOk(ledger.Apply(record, batch), "ledger apply");
    batch.SetNextOffset({kSettlementTopic, partition}, record.offset + 1);
    absl::Time t1 = absl::Now();
    ExitUnlessOk((*store)->Commit(batch), "ledger commit");
    absl::Time t2 = absl::Now();
    return std::pair(absl::ToDoubleSeconds(t1 - t0), absl::ToDoubleSeconds(t2 - t1));
  };

  // Every window's state: each source partition sends the hours of its share of the pairs in
  // hour order, in deltas of at most kCellsPerDeltaMax cells, as stage one's batches would.
  std::vector<std::string> window_ids;
  absl::Time build_start = absl::Now();
  for (int32_t w = 0; w < windows; ++w) {
    const std::string window_id = settlement::WindowIdOf(absl::CivilDay(2026, 11, 24) + w);
    window_ids.push_back(window_id);
    const int32_t partition = w % kSettlementPartitions;
    Rng rng(kSeed + static_cast<uint64_t>(w));
    figures.cells_per_window = 0;
    figures.deltas_per_window = 0;
    for (int32_t p = 0; p < source_partitions; ++p) {
      std::vector<v1::SettlementCell> cells;
      for (int32_t hour = 0; hour < 24; ++hour) {
        for (int32_t pair = p; pair < city_count * city_count; pair += source_partitions) {
          cells.push_back(RandomCell(rng, window_id, cities[pair / city_count].code,
                                     cities[pair % city_count].code, hour));
        }
      }
      figures.cells_per_window += static_cast<int64_t>(cells.size());
      int64_t first_offset = 0;
      for (size_t i = 0; i < cells.size(); i += settlement::kCellsPerDeltaMax) {
        const int64_t last_offset = first_offset + 9999;
        v1::Event event;
        event.set_event_id(absl::StrCat(settlement::kServiceName, "/", kTxnTopic, "/", p, "/",
                                        first_offset, "-", last_offset, "/", window_id, "/0"));
        event.set_recorded_at_us(
            absl::ToUnixMicros(calendar.Start(absl::CivilDay(2026, 11, 24) + w)));
        event.mutable_source()->set_kind(v1::TENANT_KIND_PLATFORM);
        event.mutable_source()->set_service(settlement::kServiceName);
        v1::SettlementDelta* delta = event.mutable_settlement_delta();
        delta->set_window_id(window_id);
        delta->set_source_partition(p);
        delta->set_first_offset(first_offset);
        delta->set_last_offset(last_offset);
        delta->set_chunk(0);
        delta->set_chunks(1);
        for (size_t j = i; j < std::min(cells.size(), i + settlement::kCellsPerDeltaMax); ++j) {
          *delta->add_cells() = cells[j];
        }
        apply_one(partition, window_id, event);
        ++figures.deltas_per_window;
        first_offset = last_offset + 1;
      }
    }
  }
  figures.build_s = absl::ToDoubleSeconds(absl::Now() - build_start);

  // Close each window once: the ministry's command, as the API writes it.
  for (int32_t w = 0; w < windows; ++w) {
    const std::string& window_id = window_ids[w];
    const absl::CivilDay day = absl::CivilDay(2026, 11, 24) + w;
    v1::Event event;
    event.set_event_id(absl::StrCat("bench/close/", window_id));
    event.set_recorded_at_us(absl::ToUnixMicros(calendar.Start(day) + absl::Hours(23)));
    event.mutable_source()->set_kind(v1::TENANT_KIND_MINISTRY);
    v1::WindowCloseRequested* request = event.mutable_window_close_requested();
    request->set_request_id(absl::StrCat("bench-close-", window_id));
    request->set_window_id(window_id);
    request->set_target_state(v1::WINDOW_STATE_CLOSED);
    auto [apply_s, commit_s] = apply_one(w % kSettlementPartitions, window_id, event);
    figures.close_ms.push_back((apply_s + commit_s) * 1e3);
    figures.close_apply_ms.push_back(apply_s * 1e3);
    figures.close_commit_ms.push_back(commit_s * 1e3);

    // The close must have been accepted and must have stored a whole, consistent report.
    const settlement::StateView view = settlement::ViewOf(**store);
    auto outcome = settlement::ReadOutcome(view, event.event_id());
    ExitUnlessOk(outcome.status(), "read outcome");
    if (!outcome->has_value() || !(*outcome)->accepted()) {
      std::cerr << "close of " << window_id << " not accepted: "
                << (outcome->has_value() ? (*outcome)->message() : "no outcome") << std::endl;
      std::exit(1);
    }
    auto report = settlement::ReadReport(view, window_id);
    ExitUnlessOk(report.status(), "read report");
    if (!report->has_value()) {
      std::cerr << "no report stored for " << window_id << std::endl;
      std::exit(1);
    }
    const int64_t rows = (*report)->bilateral_size();
    std::vector<std::string> violations = settlement::CheckReportInvariants(**report);
    if (rows != int64_t{city_count} * city_count || !violations.empty() ||
        (*report)->net_size() != city_count) {
      std::cerr << "report of " << window_id << ": " << rows << " bilateral rows, "
                << (*report)->net_size()
                << " nets, violations: " << (violations.empty() ? "none" : violations.front())
                << std::endl;
      std::exit(1);
    }
    figures.report_bytes = static_cast<int64_t>((*report)->ByteSizeLong());
  }
  auto stats = settlement::ReadStats(settlement::ViewOf(**store));
  ExitUnlessOk(stats.status(), "ledger stats");
  if (stats->invariant_violations != 0 || stats->ledger_unparseable != 0 ||
      stats->duplicates_dropped != 0 || stats->late_deltas != 0) {
    std::cerr << "ledger stats: " << stats->invariant_violations << " violations, "
              << stats->ledger_unparseable << " unparseable, " << stats->duplicates_dropped
              << " duplicates, " << stats->late_deltas << " late" << std::endl;
    std::exit(1);
  }
  figures.store_bytes = (*store)->ApproximateSizeBytes();
  return figures;
}

std::string Rounds(const std::vector<double>& values, const char* format) {
  std::string out;
  for (double v : values) absl::StrAppend(&out, out.empty() ? "" : " ", absl::StrFormat(format, v));
  return out;
}

int Main() {
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int32_t partitions = absl::GetFlag(FLAGS_partitions);
  const int32_t batch_max_records = absl::GetFlag(FLAGS_batch_max_records);
  const int32_t windows = std::max(1, absl::GetFlag(FLAGS_report_windows));
  auto calendar = settlement::BusinessCalendar::Create("Asia/Shanghai", absl::Hours(24));
  ExitUnlessOk(calendar.status(), "calendar");
  CHECK_EQ(absl::ToUnixMicros(calendar->Start(absl::CivilDay(2026, 11, 24))), kDayStartUs);

  std::string work_dir = absl::GetFlag(FLAGS_work_dir);
  std::unique_ptr<event_log::LocalKafka> kafka =
      StartBroker(&work_dir, {{.name = kTxnTopic, .partitions = partitions},
                              {.name = kSettlementTopic, .partitions = kSettlementPartitions}});
  const std::string bootstrap = kafka->bootstrap();
  LOG(INFO) << "appending " << events << " transactions to " << kTxnTopic;
  absl::Time produce_start = absl::Now();
  const int64_t bytes = Produce(bootstrap, events);
  const double produce_s = absl::ToDoubleSeconds(absl::Now() - produce_start);

  RawConsumeRate(ConsumerConfig(bootstrap), kTxnTopic, partitions,
                 events);  // warm-up: the broker's page cache, connections
  // Alternate the two measurements and take medians, so a burst of load from elsewhere on the
  // machine skews one sample of each rather than one side of the ratio.
  std::vector<double> raw_rates;
  std::vector<double> apply_rates;
  std::vector<ApplyRound> apply_rounds;
  for (int32_t round = 0; round < std::max(1, absl::GetFlag(FLAGS_rounds)); ++round) {
    raw_rates.push_back(RawConsumeRate(ConsumerConfig(bootstrap), kTxnTopic, partitions, events));
    apply_rounds.push_back(
        Apply(bootstrap, work_dir + "/store", events, batch_max_records, /*check=*/round == 0));
    apply_rates.push_back(apply_rounds.back().rate);
  }
  std::filesystem::remove_all(work_dir + "/store");
  const double raw = Median(raw_rates);
  const double apply = Median(apply_rates);

  std::optional<StageSplits> splits;
  if (absl::GetFlag(FLAGS_splits)) {
    splits =
        TimeStageSplits(work_dir + "/splits", std::min(events, absl::GetFlag(FLAGS_split_events)),
                        events, partitions, batch_max_records);
  }

  LOG(INFO) << "building " << windows << " windows of 80x80 pairs x 24 hours";
  ReportFigures report = TimeReports(work_dir + "/ledger", windows, *calendar);
  std::filesystem::remove_all(work_dir + "/ledger");
  const double report_ms = Median(report.close_ms);

  std::cout << "settlement benchmark: " << events << " transactions (" << bytes / events
            << " bytes each on average), 80 member cities, tongka.txn x " << partitions
            << " partitions, batches of " << batch_max_records << "\n";
  std::cout << absl::StrFormat("  produce:           %.1f s (%.0f tx/s, not a measured figure)\n",
                               produce_s, static_cast<double>(events) / produce_s);
  std::cout << "  raw consume tx/s:  " << Rounds(raw_rates, "%.0f") << "  (median "
            << absl::StrFormat("%.0f", raw) << ")\n";
  std::cout << "  stage one tx/s:    " << Rounds(apply_rates, "%.0f") << "  (median "
            << absl::StrFormat("%.0f", apply) << ")\n";
  {
    ApplyRound sum;
    for (const ApplyRound& round : apply_rounds) {
      sum.wall_s += round.wall_s;
      sum.apply_s += round.apply_s;
      sum.finish_s += round.finish_s;
      sum.commit_s += round.commit_s;
      sum.wait_s += round.wait_s;
      sum.empty_polls += round.empty_polls;
    }
    const double rounds = static_cast<double>(apply_rounds.size());
    const double us = 1e6 / (static_cast<double>(events) * rounds);
    std::cout << absl::StrFormat(
        "  stage one in the loop, us/event (mean of rounds): Apply %.2f | FinishBatch %.2f | "
        "offsets + Commit %.2f | waiting for the next batch %.2f (%.1f empty polls a round) | "
        "wall %.2f\n",
        sum.apply_s * us, sum.finish_s * us, sum.commit_s * us, sum.wait_s * us,
        static_cast<double>(sum.empty_polls) / rounds, sum.wall_s * us);
  }
  if (splits.has_value()) {
    const double n = static_cast<double>(splits->events);
    const double total = splits->apply_s + splits->finish_s + splits->commit_s;
    std::cout << absl::StrFormat(
        "  stage one in process, %d events, us/event: ParseTxnView %.2f (a full v1::Event parse "
        "%.2f) | SM3 of the id %.2f (in lanes %.2f) | Apply %.2f (incl. both) | FinishBatch %.2f | "
        "Commit %.2f | "
        "total %.2f = %.0f tx/s without Kafka\n",
        splits->events, splits->parse_s / n * 1e6, splits->full_parse_s / n * 1e6,
        splits->sm3_s / n * 1e6, splits->sm3_lanes_s / n * 1e6, splits->apply_s / n * 1e6,
        splits->finish_s / n * 1e6, splits->commit_s / n * 1e6, total / n * 1e6, n / total);
  }
  std::cout << absl::StrFormat(
      "  report: %d windows, each %d cells in %d deltas (built in %.1f s), store %.1f MB, "
      "report %d bytes\n",
      windows, report.cells_per_window, report.deltas_per_window, report.build_s,
      static_cast<double>(report.store_bytes) / 1e6, report.report_bytes);
  std::cout << "  close to CLOSED ms: " << Rounds(report.close_ms, "%.1f") << "  (apply "
            << Rounds(report.close_apply_ms, "%.1f") << "; commit "
            << Rounds(report.close_commit_ms, "%.1f") << ")\n";
  std::cout << "  every report: 6400 bilateral rows, 80 nets, invariants hold\n";
  std::cout << absl::StrFormat("apply_rate=%.0f raw_consume_rate=%.0f ratio=%.2f report_ms=%.1f",
                               apply, raw, apply / raw, report_ms)
            << std::endl;
  return 0;
}

}  // namespace
}  // namespace tongka::bench

int main(int argc, char** argv) {
  return tongka::bench::RunBenchmark(argc, argv, tongka::bench::Main);
}
