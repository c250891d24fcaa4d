// Benchmark: the state store's apply rate next to the raw librdkafka consume rate of the same
// events, from one run on the real broker.
//
//   bazel run //tools/bench:state_apply [-- --events=1000000 --partitions=8]
//
// It starts a local Kafka broker, appends `events` synthetic taps (tools/sample) to a topic, then
//   1. raw:   consumes them all with a bare RdKafka::KafkaConsumer (assign from offset 0, no copy,
//             no parse): the ceiling the log itself sets;
//   2. apply: consumes them with the runtime's ApplyLoop into a fresh StateStore, with the sample's
//             TapCounter and the sample's loop settings: parse (on the prefetch thread),
//             per-card totals written once per card and batch, per-batch derived tallies in the
//             outbox, and the offsets, all in one RocksDB WriteBatch per commit. Under this
//             backlog one commit covers several batches (commit_max_records), so a card is
//             written to RocksDB once per commit; --commit_max_records=0 commits every batch.
//             The timed work ends with the last commit.
// Both read the same bytes from the same broker after a warm-up pass, alternating for --rounds
// rounds; the medians are reported, so the ratio isolates what the store and the apply logic
// cost. Before them (--splits), the same events are applied in process, without Kafka, with
// each step of a batch timed alone in CPU time: where the apply thread's time goes. Last line:
//   apply_rate=<events/s> raw_consume_rate=<events/s> ratio=<apply/raw>
#include <glog/logging.h>
#include <librdkafka/rdkafkacpp.h>
#include <time.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/partition_consumer.h"
#include "libs/event_log/producer.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/state_store/apply_loop.h"
#include "libs/state_store/event_filter.h"
#include "libs/state_store/state_store.h"
#include "tools/bench/bench_support.h"
#include "tools/sample/sample_app.h"
#include "tools/sample/sample_state.h"

ABSL_FLAG(int64_t, events, 1000000, "Events to append and consume.");
ABSL_FLAG(int32_t, partitions, 8, "Partitions of the benchmark topic.");
ABSL_FLAG(int32_t, batch_max_records, tongka::sample::SampleConfig().batch_max_records,
          "ApplyLoop batch size (default: the sample's).");
ABSL_FLAG(int64_t, commit_max_records, tongka::sample::SampleConfig().commit_max_records,
          "ApplyLoop: under a backlog, commit once this many records are pending; 0 = every "
          "batch (default: the sample's).");
ABSL_FLAG(int32_t, rounds, 3,
          "Alternating raw/apply rounds; the medians are reported (this machine is noisy).");
ABSL_FLAG(int64_t, state_memtable_bytes,
          tongka::state_store::StateStoreOptions().state_memtable_bytes,
          "Memtable size of the store's state column family.");
ABSL_FLAG(
    bool, event_filter, true,
    "Run the apply loop's EventFilter (repeats and misrouted records); false shows its cost.");
ABSL_FLAG(std::string, work_dir, "", "Where the broker and the store live (default: a temp dir).");
ABSL_FLAG(bool, splits, true, "Also time each step of the apply path in process, without Kafka.");
ABSL_FLAG(bool, splits_only, false,
          "Only the in-process split, no broker (for iterating on the apply path).");

namespace tongka::bench {
namespace {

constexpr char kTopic[] = "tongka.txn";

void Produce(const std::string& bootstrap, int64_t events) {
  auto producer = event_log::Producer::Create({.bootstrap_servers = bootstrap});
  ExitUnlessOk(producer.status(), "producer");
  for (int64_t i = 0; i < events; ++i) {
    v1::Event event = sample::SyntheticTap(42, static_cast<uint64_t>(i));
    ExitUnlessOk((*producer)->ProduceWaiting(kTopic, event.tap().txn().card_id(),
                                             event.SerializeAsString(), nullptr, absl::Minutes(1)),
                 "produce");
  }
  ExitUnlessOk((*producer)->Flush(absl::Minutes(5)), "flush");
}

// The calling thread's CPU time. The split's steps all run on this thread; unlike the wall clock,
// its CPU time leaves out the time other processes of a busy machine held the core.
absl::Time ThreadCpuNow() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return absl::TimeFromTimespec(now);
}

// Applies every event through ApplyLoop into a fresh store; returns events per second and
// counts the commits in *commits.
double Apply(const std::string& bootstrap, const std::string& store_dir, int64_t events,
             int32_t batch_max_records, int64_t commit_max_records, int64_t* commits) {
  std::filesystem::remove_all(store_dir);
  auto store = state_store::StateStore::Open(
      {.path = store_dir, .state_memtable_bytes = absl::GetFlag(FLAGS_state_memtable_bytes)});
  ExitUnlessOk(store.status(), "store");
  auto consumer =
      event_log::PartitionConsumer::Create({.bootstrap_servers = bootstrap}, "bench-apply");
  ExitUnlessOk(consumer.status(), "consumer");
  sample::TapCounter applier;
  state_store::ApplyLoop loop(store->get(), std::move(*consumer), &applier,
                              {.topics = {kTopic},
                               .batch_max_records = static_cast<size_t>(batch_max_records),
                               .commit_max_records = static_cast<size_t>(commit_max_records),
                               .filter = {.drop_duplicates = absl::GetFlag(FLAGS_event_filter),
                                          .refuse_misrouted = absl::GetFlag(FLAGS_event_filter)}});
  ExitUnlessOk(loop.Start(), "loop start");
  int64_t applied = 0;
  absl::Time start = absl::Now();
  while (applied < events) {
    auto n = loop.RunOnce();
    ExitUnlessOk(n.status(), "apply");
    applied += static_cast<int64_t>(*n);
  }
  ExitUnlessOk(loop.Commit(), "commit");  // timed: the last records' commit is part of the work
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  CHECK_GT((*store)->OutboxDepth(), 0) << "every batch derives outbox events";
  LOG(INFO) << "apply: " << applied << " events in " << seconds << " s, " << loop.CommitCount()
            << " commits, " << (*store)->OutboxDepth() << " outbox events, store "
            << (*store)->ApproximateSizeBytes() << " bytes";
  *commits = loop.CommitCount();
  return static_cast<double>(applied) / seconds;
}

// The apply path without Kafka: the same events as records in memory, applied in batches of
// `batch_max_records` and committed as ApplyLoop does under a backlog (Prepare, Apply each,
// FinishBatch; offsets and Commit once `commit_max_records` are pending, or every batch), each
// step timed alone in this thread's CPU time (RocksDB's background flushes and compactions are
// not in it). Prints microseconds per event of each step.
void PrintInProcessSplit(const std::string& store_dir, int64_t events, int32_t partitions,
                         int32_t batch_max_records, int64_t commit_max_records) {
  std::vector<event_log::Record> records;
  records.reserve(static_cast<size_t>(events));
  std::vector<int64_t> next_offset(static_cast<size_t>(partitions), 0);
  for (int64_t i = 0; i < events; ++i) {
    // Partitioned round-robin: the log hashes the card id, which spreads them alike.
    const int32_t p = static_cast<int32_t>(i % partitions);
    records.push_back(event_log::Record::Owned(
        kTopic, p, next_offset[static_cast<size_t>(p)]++, "",
        sample::SyntheticTap(42, static_cast<uint64_t>(i)).SerializeAsString()));
  }
  std::filesystem::remove_all(store_dir);
  auto store = state_store::StateStore::Open(
      {.path = store_dir, .state_memtable_bytes = absl::GetFlag(FLAGS_state_memtable_bytes)});
  ExitUnlessOk(store.status(), "split store");
  sample::TapCounter applier;
  // The apply loop's EventFilter, driven as the loop drives it (Prepare on the prefetch thread,
  // Admit with the slot prefetched eight records ahead, Flush before the commit).
  const bool filtering = absl::GetFlag(FLAGS_event_filter);
  state_store::EventFilter filter(store->get(), {});
  std::vector<event_log::TopicPartition> owned;
  for (int32_t p = 0; p < partitions; ++p) owned.push_back({kTopic, p});
  ExitUnlessOk(filter.Load(owned, {{kTopic, partitions}}), "split filter");
  std::vector<state_store::EventFilter::Prepared> prepared;
  double filter_prepare_s = 0, filter_admit_s = 0;
  double prepare_s = 0, apply_s = 0, finish_s = 0, commit_s = 0;
  size_t writes = 0;
  int64_t commits = 0;
  int64_t pending = 0;
  std::vector<int64_t> next(static_cast<size_t>(partitions), -1);
  state_store::StateBatch batch(store->get());
  std::vector<event_log::Record> batch_records;
  for (size_t i = 0; i < records.size(); i += static_cast<size_t>(batch_max_records)) {
    const size_t end = std::min(records.size(), i + static_cast<size_t>(batch_max_records));
    batch_records.clear();
    for (size_t j = i; j < end; ++j) batch_records.push_back(std::move(records[j]));
    if (filtering) {
      absl::Time f0 = ThreadCpuNow();
      prepared.clear();
      filter.PrepareAll(batch_records, &prepared);
      absl::Time f1 = ThreadCpuNow();
      for (size_t j = 0; j < batch_records.size(); ++j) {
        if (j + 8 < batch_records.size()) filter.Prefetch(prepared[j + 8]);
        auto verdict = filter.Admit(batch_records[j], prepared[j], batch);
        ExitUnlessOk(verdict.status(), "split filter admit");
      }
      ExitUnlessOk(filter.Flush(batch), "split filter flush");
      filter_prepare_s += absl::ToDoubleSeconds(f1 - f0);
      filter_admit_s += absl::ToDoubleSeconds(ThreadCpuNow() - f1);
    }
    absl::Time t0 = ThreadCpuNow();
    applier.Prepare(batch_records);
    absl::Time t1 = ThreadCpuNow();
    for (const event_log::Record& record : batch_records) {
      ExitUnlessOk(applier.Apply(record, batch), "split apply");
    }
    absl::Time t2 = ThreadCpuNow();
    ExitUnlessOk(applier.FinishBatch(batch), "split finish");
    absl::Time t3 = ThreadCpuNow();
    prepare_s += absl::ToDoubleSeconds(t1 - t0);
    apply_s += absl::ToDoubleSeconds(t2 - t1);
    finish_s += absl::ToDoubleSeconds(t3 - t2);
    for (const event_log::Record& record : batch_records) {
      next[static_cast<size_t>(record.partition)] = record.offset + 1;
    }
    pending += static_cast<int64_t>(batch_records.size());
    if (pending < commit_max_records && end < records.size()) continue;
    for (int32_t p = 0; p < partitions; ++p) {
      if (next[static_cast<size_t>(p)] >= 0) batch.SetNextOffset({kTopic, p}, next[p]);
    }
    writes += batch.write_count();
    absl::Time t4 = ThreadCpuNow();
    ExitUnlessOk((*store)->Commit(batch), "split commit");
    commit_s += absl::ToDoubleSeconds(ThreadCpuNow() - t4);
    ++commits;
    pending = 0;
  }
  const double us = 1e6 / static_cast<double>(events);
  std::cout << absl::StrFormat(
                   "in process, %d events in batches of %d, %d commits, %.2f state writes/event, "
                   "CPU us/event: prepare %.3f (prefetch thread), apply %.3f, finish %.3f, "
                   "commit %.3f; event filter: prepare %.3f (prefetch thread), admit %.3f",
                   events, batch_max_records, commits, static_cast<double>(writes) / events,
                   prepare_s * us, apply_s * us, finish_s * us, commit_s * us,
                   filter_prepare_s * us, filter_admit_s * us)
            << std::endl;
}

int Main() {
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int32_t partitions = absl::GetFlag(FLAGS_partitions);
  std::string work_dir = absl::GetFlag(FLAGS_work_dir);
  if (absl::GetFlag(FLAGS_splits) || absl::GetFlag(FLAGS_splits_only)) {
    if (work_dir.empty()) work_dir = MakeWorkDir();
    PrintInProcessSplit(work_dir + "/split-store", events, partitions,
                        absl::GetFlag(FLAGS_batch_max_records),
                        absl::GetFlag(FLAGS_commit_max_records));
    if (absl::GetFlag(FLAGS_splits_only)) return 0;
  }
  std::unique_ptr<event_log::LocalKafka> kafka =
      StartBroker(&work_dir, {{.name = kTopic, .partitions = partitions}});
  const std::string bootstrap = kafka->bootstrap();
  LOG(INFO) << "appending " << events << " taps to " << kTopic;
  Produce(bootstrap, events);

  RawConsumeRate({.bootstrap_servers = bootstrap}, kTopic, partitions,
                 events);  // warm-up: the broker's page cache, connections
  // Alternate the two measurements and take medians, so a burst of load from elsewhere on the
  // machine skews one sample of each rather than one side of the ratio.
  std::vector<double> raw_rates;
  std::vector<double> apply_rates;
  // For comparison, in the same rounds: the same loop committing every batch, what a stream
  // whose batches share no keys, or live traffic, gets.
  std::vector<double> every_batch_rates;
  const int32_t batch_max_records = absl::GetFlag(FLAGS_batch_max_records);
  const int64_t commit_max_records = absl::GetFlag(FLAGS_commit_max_records);
  int64_t commits = 0;
  int64_t every_batch_commits = 0;
  for (int32_t round = 0; round < std::max(1, absl::GetFlag(FLAGS_rounds)); ++round) {
    raw_rates.push_back(
        RawConsumeRate({.bootstrap_servers = bootstrap}, kTopic, partitions, events));
    apply_rates.push_back(Apply(bootstrap, work_dir + "/store", events, batch_max_records,
                                commit_max_records, &commits));
    if (commit_max_records > 0) {
      every_batch_rates.push_back(Apply(bootstrap, work_dir + "/store", events, batch_max_records,
                                        0, &every_batch_commits));
    }
  }
  double raw = Median(raw_rates);
  double apply = Median(apply_rates);
  if (!every_batch_rates.empty()) {
    const double every_batch = Median(every_batch_rates);
    std::cout << absl::StrFormat(
                     "committing every batch (--commit_max_records=0, %d commits a round): "
                     "apply_rate=%.0f ratio=%.2f",
                     every_batch_commits, every_batch, every_batch / raw)
              << std::endl;
  }
  std::cout << absl::StrFormat(
                   "apply rounds: batch_max_records=%d commit_max_records=%d, %d commits in the "
                   "last round (state, offsets and outbox in each)",
                   batch_max_records, commit_max_records, commits)
            << std::endl;
  std::cout << absl::StrFormat("apply_rate=%.0f raw_consume_rate=%.0f ratio=%.2f", apply, raw,
                               apply / raw)
            << std::endl;
  return 0;
}

}  // namespace
}  // namespace tongka::bench

int main(int argc, char** argv) {
  return tongka::bench::RunBenchmark(argc, argv, tongka::bench::Main);
}
