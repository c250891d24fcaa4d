#include "libs/state_store/apply_loop.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "libs/event_log/ownership.h"

namespace tongka::state_store {

using event_log::Record;
using event_log::StartPosition;
using event_log::TopicPartition;

ApplyLoop::ApplyLoop(StateStore* store, std::unique_ptr<event_log::PartitionConsumer> consumer,
                     Applier* applier, ApplyLoopOptions options)
    : store_(store),
      consumer_(std::move(consumer)),
      applier_(applier),
      options_(std::move(options)) {}

absl::Status ApplyLoop::Start() {
  CHECK(!started_) << "ApplyLoop::Start is called once";
  started_ = true;
  if (options_.topics.empty()) return absl::InvalidArgumentError("apply loop topics: required");
  if (options_.batch_max_records < 1) {
    return absl::InvalidArgumentError("apply loop batch_max_records: must be >= 1");
  }
  absl::StatusOr<std::map<TopicPartition, int64_t>> stored = store_->Offsets();
  if (!stored.ok()) return stored.status();

  std::vector<TopicPartition> owned;
  std::map<std::string, int32_t> partition_counts;
  for (const std::string& topic : options_.topics) {
    absl::StatusOr<int32_t> count = consumer_->PartitionCount(topic, absl::Seconds(30));
    if (!count.ok()) return count.status();
    partition_counts[topic] = *count;
    absl::StatusOr<std::vector<int32_t>> partitions =
        event_log::OwnedPartitions(*count, options_.replica_index, options_.replica_count);
    if (!partitions.ok()) return partitions.status();
    for (int32_t p : *partitions) owned.push_back({topic, p});
  }

  // Either every owned partition has a stored offset, or none does (a fresh store).
  size_t with_offset = 0;
  for (const TopicPartition& tp : owned) with_offset += stored->count(tp);
  StateBatch init(store_);
  std::vector<StartPosition> positions;
  for (const TopicPartition& tp : owned) {
    auto it = stored->find(tp);
    if (it == stored->end() && with_offset > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("state store has offsets for some owned partitions but none for ", tp.topic,
                       "/", tp.partition,
                       ": the store is corrupt or was built for another replica layout; "
                       "rebuild it from the log"));
    }
    int64_t next = it == stored->end() ? 0 : it->second;
    if (it == stored->end()) init.SetNextOffset(tp, 0);
    positions.push_back({tp, next});
  }
  filter_ = std::make_unique<EventFilter>(store_, options_.filter);
  if (absl::Status loaded = filter_->Load(owned, partition_counts); !loaded.ok()) return loaded;
  if (!init.empty()) {
    absl::Status status = store_->Commit(init);
    if (!status.ok()) return status;
    LOG(INFO) << "fresh state store: consuming " << owned.size() << " partitions from offset 0";
  }
  {
    absl::MutexLock lock(&mu_);
    progress_.clear();
    for (const StartPosition& p : positions) {
      progress_[p.topic_partition].next_offset = p.next_offset;
    }
  }
  return consumer_->Assign(positions);
}

ApplyLoop::~ApplyLoop() {
  if (prefetch_thread_.joinable()) {
    {
      absl::MutexLock lock(&prefetch_mu_);
      prefetch_stop_ = true;
    }
    prefetch_thread_.join();
  }
}

void ApplyLoop::PrefetchLoop() {
  // The thread keeps adding to one buffer, up to batch_max_records, while the loop applies the
  // previous batch; the loop takes all of it at once. Batches so grow with the load: under a
  // backlog every batch is full at once, under a light load a batch gathers for batch_linger.
  // (Handing over only full batches, one at a time, stalled the loop for a whole poll_timeout
  // whenever librdkafka's queue ran short of one batch while it was busy.)
  std::vector<Record> polled;
  std::vector<EventFilter::Prepared> prepared;
  std::vector<Record> spent;
  size_t room = options_.batch_max_records;
  while (true) {
    polled.clear();
    {
      absl::MutexLock lock(&prefetch_mu_);
      spent.swap(spent_);
    }
    spent.clear();  // outside the lock: the apply thread may be waiting for the next batch
    // Wait for the first record, then fill up for at most batch_linger: under a backlog the
    // records are already queued and this returns at once; under a light load it lets a batch
    // gather more than one record (every batch is a commit and, for two-stage services, derived
    // events).
    absl::Status status = consumer_->Poll(1, options_.poll_timeout, &polled);
    if (status.ok() && !polled.empty() && room > 1) {
      status = consumer_->Poll(room - 1, options_.batch_linger, &polled);
    }
    if (!polled.empty()) applier_->Prepare(polled);
    prepared.clear();
    filter_->PrepareAll(polled, &prepared);
    absl::MutexLock lock(&prefetch_mu_);
    if (prefetch_stop_) return;
    for (Record& record : polled) prefetched_.push_back(std::move(record));
    prefetched_prepared_.insert(prefetched_prepared_.end(), prepared.begin(), prepared.end());
    if (!status.ok()) {
      prefetch_status_ = status;
      prefetch_ready_ = true;
      return;  // a consumer error ends prefetching; the loop reports it
    }
    if (!prefetched_.empty()) prefetch_ready_ = true;
    auto room_or_stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(prefetch_mu_) {
      return prefetched_.size() < options_.batch_max_records || prefetch_stop_;
    };
    prefetch_mu_.Await(absl::Condition(&room_or_stopping));
    if (prefetch_stop_) return;
    room = options_.batch_max_records - prefetched_.size();
  }
}

absl::Status ApplyLoop::NextBatch(std::vector<Record>* records,
                                  std::vector<EventFilter::Prepared>* prepared) {
  if (!options_.prefetch) {
    records->clear();
    prepared->clear();
    absl::Status status =
        consumer_->Poll(options_.batch_max_records, options_.poll_timeout, records);
    if (!records->empty()) applier_->Prepare(*records);
    filter_->PrepareAll(*records, prepared);
    return status;
  }
  if (!prefetch_thread_.joinable()) prefetch_thread_ = std::thread([this] { PrefetchLoop(); });
  prepared->clear();  // it views the records about to be handed back
  std::vector<Record> free_here;
  absl::MutexLock lock(&prefetch_mu_);
  // The applied batch goes to the prefetch thread to be freed; if it has not freed the one
  // before yet, this thread frees it, outside the lock (free_here dies after `lock`).
  if (spent_.empty()) {
    spent_.swap(*records);
  } else {
    free_here.swap(*records);
  }
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(prefetch_mu_) { return prefetch_ready_; };
  if (!prefetch_mu_.AwaitWithTimeout(absl::Condition(&ready), options_.poll_timeout)) {
    return absl::OkStatus();
  }
  records->swap(prefetched_);
  prepared->swap(prefetched_prepared_);
  // A consumer error ended the prefetch thread: it stays the answer of every later call.
  prefetch_ready_ = !prefetch_status_.ok();
  return prefetch_status_;
}

absl::StatusOr<size_t> ApplyLoop::RunOnce() {
  if (!failed_.ok()) return failed_;
  absl::Status polled = NextBatch(&records_, &prepared_);
  absl::Time started = absl::Now();
  // Records read before a consumer error are still applied; the error stops the loop after.
  if (pending_ == nullptr) pending_ = std::make_unique<StateBatch>(store_);
  if (pending_records_ == 0) pending_since_ = started;
  {
    absl::MutexLock lock(&mu_);
    // Records of one partition come in runs: look the partition up only when it changes.
    PendingPartition* slot = nullptr;
    absl::string_view slot_topic;
    int32_t slot_partition = -1;
    for (const Record& record : records_) {
      if (slot == nullptr || record.partition != slot_partition || record.topic != slot_topic) {
        TopicPartition tp{std::string(record.topic), record.partition};
        auto it = progress_.find(tp);
        CHECK(it != progress_.end())
            << "record from unassigned partition " << record.topic << "/" << record.partition;
        slot = &pending_partitions_.try_emplace(tp, PendingPartition{it->second.next_offset, 0})
                    .first->second;
        slot_topic = it->first.topic;
        slot_partition = record.partition;
      }
      // Offsets may skip (transaction markers, compaction) but never go back: a record before
      // the position reached would be applied twice.
      CHECK_GE(record.offset, slot->next_offset)
          << "record " << record.topic << "/" << record.partition << "@" << record.offset
          << " is before the position reached " << slot->next_offset;
      slot->next_offset = record.offset + 1;
      ++slot->records;
    }
  }
  // The dropped records' partition, looked up when it changes (drops are rare).
  PendingPartition* drop_slot = nullptr;
  TopicPartition drop_tp;
  // The filter's table slot of a record a few ahead is fetched while this one is applied.
  constexpr size_t kPrefetchAhead = 8;
  for (size_t i = 0; i < records_.size() && i < kPrefetchAhead; ++i)
    filter_->Prefetch(prepared_[i]);
  for (size_t i = 0; i < records_.size(); ++i) {
    const Record& record = records_[i];
    if (i + kPrefetchAhead < records_.size()) filter_->Prefetch(prepared_[i + kPrefetchAhead]);
    absl::StatusOr<EventFilter::Verdict> verdict = filter_->Admit(record, prepared_[i], *pending_);
    absl::Status status = verdict.status();
    if (status.ok() && *verdict == EventFilter::Verdict::kApply) {
      status = applier_->Apply(record, *pending_);
    } else if (status.ok()) {
      if (drop_slot == nullptr || record.partition != drop_tp.partition ||
          record.topic != drop_tp.topic) {
        drop_tp = {std::string(record.topic), record.partition};
        drop_slot = &pending_partitions_.at(drop_tp);
      }
      if (*verdict == EventFilter::Verdict::kDuplicate) {
        ++drop_slot->duplicates;
        LOG_EVERY_N(WARNING, 1000)
            << "dropped a repeated event id at " << record.topic << "/" << record.partition << "@"
            << record.offset << " (" << google::COUNTER << " so far)";
      } else {
        ++drop_slot->misrouted;
        LOG_EVERY_N(WARNING, 1000)
            << "refused a record whose key hashes to another partition at " << record.topic << "/"
            << record.partition << "@" << record.offset << " (" << google::COUNTER << " so far)";
      }
    }
    if (!status.ok()) {
      failed_ =
          absl::Status(status.code(), absl::StrCat("apply ", record.topic, "/", record.partition,
                                                   "@", record.offset, ": ", status.message()));
      return failed_;
    }
  }
  if (absl::Status flushed = filter_->Flush(*pending_); !flushed.ok()) {
    failed_ = flushed;
    return failed_;
  }
  if (!records_.empty()) {
    absl::Status finished = applier_->FinishBatch(*pending_);
    if (!finished.ok()) {
      failed_ = finished;
      return failed_;
    }
  }
  pending_records_ += records_.size();
  const bool backlog = records_.size() >= options_.batch_max_records;
  if (!backlog || !polled.ok() || pending_records_ >= options_.commit_max_records ||
      started - pending_since_ >= options_.commit_max_delay) {
    absl::Status committed = Commit();
    if (!committed.ok()) return committed;
  }
  {
    absl::MutexLock lock(&mu_);
    for (auto& [tp, progress] : progress_) {
      int64_t high = consumer_->CachedWatermarks(tp).second;
      if (high >= 0) progress.high_watermark = high;
    }
  }
  if (options_.batch_seconds != nullptr && !records_.empty()) {
    options_.batch_seconds->Observe(absl::ToDoubleSeconds(absl::Now() - started));
  }
  if (!polled.ok()) return polled;
  return records_.size();
}

absl::Status ApplyLoop::Commit() {
  if (!failed_.ok()) return failed_;
  if (pending_ == nullptr) return absl::OkStatus();
  for (const auto& [tp, partition] : pending_partitions_) {
    pending_->SetNextOffset(tp, partition.next_offset);
  }
  if (!pending_->empty()) {
    absl::Status status = store_->Commit(*pending_);
    if (!status.ok()) {
      failed_ = status;
      return status;
    }
    ++commits_;
  }
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [tp, partition] : pending_partitions_) {
      PartitionProgress& progress = progress_[tp];
      progress.next_offset = partition.next_offset;
      progress.applied_total += partition.records - partition.duplicates - partition.misrouted;
      progress.duplicates_dropped_total += partition.duplicates;
      progress.misrouted_dropped_total += partition.misrouted;
    }
  }
  pending_partitions_.clear();
  pending_records_ = 0;
  return absl::OkStatus();
}

absl::Status ApplyLoop::Run(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    absl::StatusOr<size_t> applied = RunOnce();
    if (!applied.ok()) return applied.status();
  }
  return Commit();
}

absl::StatusOr<bool> ApplyLoop::CaughtUp() {
  std::map<TopicPartition, PartitionProgress> snapshot = Progress();
  bool caught_up = true;
  for (const auto& [tp, progress] : snapshot) {
    absl::StatusOr<std::pair<int64_t, int64_t>> marks =
        consumer_->QueryWatermarks(tp, absl::Seconds(10));
    if (!marks.ok()) return marks.status();
    {
      absl::MutexLock lock(&mu_);
      progress_[tp].high_watermark = marks->second;
    }
    if (progress.next_offset < marks->second) caught_up = false;
  }
  return caught_up;
}

std::map<TopicPartition, PartitionProgress> ApplyLoop::Progress() const {
  absl::MutexLock lock(&mu_);
  return progress_;
}

}  // namespace tongka::state_store
