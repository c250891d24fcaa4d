#include "services/ingest/ingest_api.h"

#include <glog/logging.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/crypto/sm3.h"
#include "libs/failpoint/failpoint.h"
#include "libs/server/tenant.h"
#include "libs/txn/mac_input.h"

namespace tongka::ingest {
namespace {

constexpr absl::string_view kRetryAfterPayload = "type.tongka.dev/retry-after-ms";

std::string CodeLabel(absl::StatusCode code) {
  return absl::AsciiStrToLower(absl::StatusCodeToString(code));
}

}  // namespace

std::optional<absl::Duration> RetryAfter(const absl::Status& status) {
  auto payload = status.GetPayload(kRetryAfterPayload);
  int64_t ms = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &ms)) return std::nullopt;
  return absl::Milliseconds(ms);
}

absl::Status WithRetryAfter(absl::Status status, absl::Duration retry_after) {
  status.SetPayload(kRetryAfterPayload,
                    absl::Cord(absl::StrCat(absl::ToInt64Milliseconds(retry_after))));
  return status;
}

// ---------------------------------------------------------------------------------------------
// ClaimTable

uint64_t ClaimTable::KeyOf(absl::string_view id) { return absl::Hash<absl::string_view>()(id); }

bool ClaimTable::TryClaim(absl::string_view id) {
  const uint64_t key = KeyOf(id);
  Shard& shard = ShardOf(key);
  absl::MutexLock lock(&shard.mu);
  return shard.ids.insert(key).second;
}

void ClaimTable::Release(absl::string_view id) {
  const uint64_t key = KeyOf(id);
  Shard& shard = ShardOf(key);
  absl::MutexLock lock(&shard.mu);
  CHECK_EQ(shard.ids.erase(key), 1u) << "released a claim nobody held: " << id;
}

template <typename Visit>
void ClaimTable::ForEachByShard(absl::Span<const absl::string_view> ids, Visit visit) {
  std::vector<uint64_t> keys(ids.size());
  // Counting sort of the indices by shard, keeping their order within a shard.
  std::vector<uint32_t> start(kShards + 1, 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    keys[i] = KeyOf(ids[i]);
    ++start[keys[i] % kShards + 1];
  }
  for (int s = 0; s < kShards; ++s) start[s + 1] += start[s];
  std::vector<uint32_t> order(ids.size());
  std::vector<uint32_t> fill(start.begin(), start.end() - 1);
  for (size_t i = 0; i < ids.size(); ++i) order[fill[keys[i] % kShards]++] = i;
  for (int s = 0; s < kShards; ++s) {
    if (start[s] == start[s + 1]) continue;
    Shard& shard = shards_[s];
    absl::MutexLock lock(&shard.mu);
    for (uint32_t at = start[s]; at < start[s + 1]; ++at) visit(shard, order[at], keys[order[at]]);
  }
}

std::vector<bool> ClaimTable::TryClaimMany(absl::Span<const absl::string_view> ids) {
  std::vector<bool> claimed(ids.size());
  ForEachByShard(ids, [&claimed](Shard& shard, size_t i, uint64_t key)
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu) {
                            claimed[i] = shard.ids.insert(key).second;
                          });
  return claimed;
}

void ClaimTable::ReleaseMany(absl::Span<const absl::string_view> ids) {
  ForEachByShard(
      ids, [&ids](Shard& shard, size_t i, uint64_t key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu) {
        CHECK_EQ(shard.ids.erase(key), 1u) << "released a claim nobody held: " << ids[i];
      });
}

bool ClaimTable::AwaitFree(absl::string_view id, absl::Time deadline) {
  const uint64_t key = KeyOf(id);
  Shard& shard = ShardOf(key);
  absl::MutexLock lock(&shard.mu);
  auto free = [&shard, key]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu) { return !shard.ids.contains(key); };
  return shard.mu.AwaitWithDeadline(absl::Condition(&free), deadline);
}

int64_t ClaimTable::size() const {
  int64_t total = 0;
  for (const Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    total += static_cast<int64_t>(shard.ids.size());
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// IngestApi

// One produced record of a batch: the record's delivery target (no allocation per record: the
// slots live in their batch).
struct IngestApi::Slot final : event_log::DeliveryTarget {
  void OnDelivery(const event_log::DeliveryResult& result) override {
    ingest_api->OnDelivery(*this, result);
  }

  IngestApi* ingest_api = nullptr;
  Batch* batch = nullptr;
  int index = 0;
  bool conflict = false;  // a TxnConflict for tongka.txn.conflicts, not a transaction
  absl::Time produced_at;
  // Filled by the call when it stops waiting with this record unreported (under batch->mu, before
  // it sets `abandoned`): what the late report needs to settle and count the record itself, once
  // the call's items are gone.
  struct Unanswered {
    DedupEntry entry;
    std::shared_ptr<const ingest_storage::ConflictEvidence> conflict;
    uint32_t metrics_city = 0;
    bool flagged_late = false;  // older than the late horizon
    bool cross_city = false;
  } unanswered;
};

// The records one round of a call produced and their reports. Freed by whichever lets go last:
// the call, or the report of its last record (a call stops waiting at its deadline, and the
// records' reports point into the batch).
struct IngestApi::Batch {
  struct Delivery {
    bool reported = false;
    absl::Status status;
  };
  // The call's reference and one per record produced and not yet reported.
  std::atomic<int> refs{1};
  int64_t recorded_at_us = 0;  // the records' recorded_at
  // Sized before anything is produced and never resized: reports point at their slot.
  std::vector<Slot> slots;
  absl::Mutex mu;
  int outstanding ABSL_GUARDED_BY(mu) = 0;
  // Set when the call stops waiting: reports arriving after it settle their item themselves.
  bool abandoned ABSL_GUARDED_BY(mu) = false;
  std::vector<Delivery> deliveries ABSL_GUARDED_BY(mu);
};

void IngestApi::BatchUnref::operator()(Batch* batch) const {
  if (batch->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete batch;
}

struct IngestApi::Item {
  int index = 0;
  const v1::TransactionUpload* upload = nullptr;
  Verdict verdict;
  crypto::Sm3Digest digest{};
  // Set when the id was accepted before with other content: what is produced is a TxnConflict,
  // and this is the evidence kept once Kafka has it (by the call, or by a late report).
  std::shared_ptr<const ingest_storage::ConflictEvidence> conflict;
};

namespace {

// How often a waiting call checks whether its client has gone.
constexpr absl::Duration kCancelPoll = absl::Milliseconds(100);

// Runs `wait` (which waits up to the time it is given and says whether what it waits for has
// come) in slices until it comes, `deadline` passes or `cancelled` says the caller has gone.
bool WaitInSlices(absl::Time deadline, const CancelledFn& cancelled,
                  const std::function<bool(absl::Time)>& wait) {
  if (cancelled == nullptr) return wait(deadline);
  for (;;) {
    const absl::Time slice = std::min(deadline, absl::Now() + kCancelPoll);
    if (wait(slice)) return true;
    if (slice >= deadline || cancelled()) return false;
  }
}

bool IsCrossCity(const v1::TransactionUpload& upload) {
  const v1::TxnCommon& txn = *txn::CommonOf(upload);
  return txn.issuer_city() != txn.acquirer_city();
}

void AnswerConflict(const std::string& event_id, v1::ItemResult* result) {
  result->set_outcome(v1::ITEM_OUTCOME_CONFLICT);
  result->set_event_id(event_id);
  result->set_message(
      "this transaction id was accepted before with different content; kept as evidence");
}

}  // namespace

// One call of Upload on its way through the phases: what it was given, the answer it builds,
// and what it counts only if it answers (a call that fails is retried whole and would count its
// rejections and duplicates again).
struct IngestApi::Call {
  struct Rejection {
    uint32_t metrics_city;
    std::string rule;
  };

  Call(const v1::Tenant& tenant, const v1::UploadBatchRequest& request, absl::Time now,
       absl::Time deadline, const CancelledFn& cancelled)
      : tenant(tenant), now(now), deadline(deadline), cancelled(cancelled) {
    response.set_batch_id(request.batch_id());
    for (int i = 0; i < request.transactions_size(); ++i) response.add_results()->set_index(i);
  }

  // Waits with `wait` (WaitInSlices) until what it waits for comes; false when the deadline
  // passed or the client went first.
  bool Await(const std::function<bool(absl::Time)>& wait) const {
    return WaitInSlices(deadline, cancelled, wait);
  }

  // Why a wait ended short of what it waited for: the client went (the waits stop early then),
  // or the deadline passed.
  absl::Status WaitedInVain(absl::string_view what) const {
    // gRPC also reports a call whose deadline has passed as cancelled: that one timed out.
    if (cancelled != nullptr && absl::Now() < deadline && cancelled()) {
      return absl::CancelledError(absl::StrCat("the call was cancelled while ", what));
    }
    return absl::UnavailableError(what);
  }

  const v1::Tenant& tenant;
  const absl::Time now;  // the platform clock, read once: every record's recorded_at
  const absl::Time deadline;
  const CancelledFn& cancelled;
  event_log::ProducerTopic* txn_topic = nullptr;
  event_log::ProducerTopic* conflict_topic = nullptr;
  v1::UploadBatchResponse response;  // one result per item, in order
  std::vector<Rejection> rejected;
  std::vector<uint32_t> duplicate_cities;
};

// One round of a call: the items it claims together, the records it produces and their reports.
struct IngestApi::Round {
  // The items not claimed (another call holds their id): the next round's.
  std::vector<Item> TakeBlocked() {
    std::vector<Item> blocked;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!claimed[i]) blocked.push_back(std::move(items[i]));
    }
    return blocked;
  }

  std::vector<Item> items;
  std::vector<absl::string_view> ids;    // items[i]'s event id
  std::vector<bool> claimed;             // whether this call holds ids[i]
  std::vector<Item*> to_append;          // new (or a new conflict), in order: LookUp -> Append
  std::vector<const Item*> produced;     // by delivery slot: Append -> Settle
  std::vector<Batch::Delivery> reports;  // by delivery slot: AwaitReports -> Settle
  std::unique_ptr<Batch, BatchUnref> batch;
};

// A batch's turn to claim among the batches of its stream (ClaimOrder). Claimed() lets the next
// batch claim. Whatever way the call returns without having claimed, the destructor lets the
// next one claim too, but only once the batch before this one has (up to the deadline): of
// three batches carrying one id, the earliest owns it even when the middle one is refused at
// once. Only this call notifies `order.claimed`, so the checks cannot race.
class IngestApi::ClaimTurn {
 public:
  ClaimTurn(const ClaimOrder& order, absl::Time deadline) : order_(order), deadline_(deadline) {}
  ClaimTurn(const ClaimTurn&) = delete;
  ClaimTurn& operator=(const ClaimTurn&) = delete;
  ~ClaimTurn() {
    if (order_.claimed == nullptr || order_.claimed->HasBeenNotified()) return;
    if (order_.after != nullptr) order_.after->WaitForNotificationWithDeadline(deadline_);
    Claimed();
  }

  // Waits until the batch before this one has claimed; false when the call's wait ended first.
  bool AwaitBefore(const Call& call) const {
    if (order_.after == nullptr) return true;
    return call.Await(
        [this](absl::Time until) { return order_.after->WaitForNotificationWithDeadline(until); });
  }

  void Claimed() {
    if (order_.claimed != nullptr && !order_.claimed->HasBeenNotified()) order_.claimed->Notify();
  }

 private:
  const ClaimOrder& order_;
  const absl::Time deadline_;
};

IngestApi::IngestApi(const Validator* validator, DedupIndex* dedup, event_log::Producer* producer,
                     IngestMetrics* metrics, server::NowFn now, IngestApiOptions options)
    : validator_(validator),
      dedup_(dedup),
      producer_(producer),
      metrics_(metrics),
      now_(std::move(now)),
      options_(std::move(options)),
      admitted_(options_.max_inflight_items, &metrics->admitted_items) {
  CHECK_GE(options_.max_inflight_items, kBatchSizeMax) << "a largest batch must always fit";
}

absl::Status IngestApi::RetryHint(absl::Status status) const {
  return WithRetryAfter(std::move(status), options_.retry_after);
}

absl::StatusOr<v1::UploadBatchResponse> IngestApi::Upload(const v1::Tenant& tenant,
                                                          const v1::UploadBatchRequest& request,
                                                          absl::Time deadline,
                                                          const ClaimOrder& order,
                                                          const CancelledFn& cancelled) {
  deadline = std::min(deadline, absl::Now() + options_.ack_timeout);
  ClaimTurn turn(order, deadline);

  // 1. The batch as a whole, before any work.
  absl::StatusOr<InflightLimit::Ticket> admitted = AdmitBatch(tenant, request.transactions_size());
  if (!admitted.ok()) return admitted.status();
  Call call(tenant, request, now_(), deadline, cancelled);

  // 2. Each item's rules and MAC.
  std::vector<Item> items = ValidateItems(call, request);
  if (absl::Status topics = ResolveTopics(call); !topics.ok()) return topics;

  // 3. After the batch before it in its stream has claimed: the rounds of claim, look up,
  //    append, await the reports, record.
  if (!turn.AwaitBefore(call)) {
    return RetryHint(call.WaitedInVain(
        "the batch before this one in its stream was still being claimed; nothing was done"));
  }
  if (absl::Status failure = RunRounds(call, std::move(items), turn); !failure.ok()) {
    return RetryHint(absl::Status(
        failure.code(), absl::StrCat(failure.message(),
                                     "; nothing unacknowledged was accepted: retry the batch "
                                     "(transactions Kafka already has come back DUPLICATE)")));
  }

  // 4. The answer.
  return Answer(call);
}

absl::StatusOr<InflightLimit::Ticket> IngestApi::AdmitBatch(const v1::Tenant& tenant, int items) {
  if (items > kBatchSizeMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("transactions: at most ", kBatchSizeMax, " per batch, got ", items));
  }
  if (absl::Status uploader = CheckUploader(tenant); !uploader.ok()) return uploader;
  std::optional<InflightLimit::Ticket> admitted = admitted_.TryAcquire(items);
  if (!admitted.has_value()) {
    metrics_->refused_items.Increment();
    return RetryHint(absl::ResourceExhaustedError(
        absl::StrCat("ingest is serving ", admitted_.in_use(), " transactions (max_inflight_items ",
                     admitted_.max(), "); this batch of ", items,
                     " would exceed it: retry the batch after the hint")));
  }
  metrics_->batch_items.Observe(items);
  return std::move(*admitted);
}

std::vector<IngestApi::Item> IngestApi::ValidateItems(Call& call,
                                                      const v1::UploadBatchRequest& request) {
  const int n = request.transactions_size();
  std::vector<Item> valid;
  valid.reserve(n);
  // The MACs of the batch are verified together, in SIMD lanes.
  std::vector<Verdict> verdicts = validator_->ValidateMany(
      call.tenant, absl::MakeConstSpan(request.transactions().data(), n), call.now);
  for (int i = 0; i < n; ++i) {
    Verdict& verdict = verdicts[i];
    if (!verdict.ok()) {
      v1::ItemResult* result = call.response.mutable_results(i);
      result->set_outcome(v1::ITEM_OUTCOME_REJECTED);
      result->set_field(verdict.field);
      result->set_rule(verdict.rule);
      result->set_message(verdict.message);
      call.rejected.push_back({verdict.metrics_city, std::move(verdict.rule)});
      continue;
    }
    Item& item = valid.emplace_back();
    item.index = i;
    item.upload = &request.transactions(i);
    item.verdict = std::move(verdict);
  }
  // The content digests the dedup index compares, computed together.
  std::vector<SignedContent> contents;
  contents.reserve(valid.size());
  for (const Item& item : valid) {
    contents.push_back({item.verdict.mac_input, txn::CommonOf(*item.upload)->mac()});
  }
  std::vector<crypto::Sm3Digest> digests(valid.size());
  ContentDigests(contents, absl::MakeSpan(digests));
  for (size_t i = 0; i < valid.size(); ++i) valid[i].digest = digests[i];
  return valid;
}

absl::Status IngestApi::ResolveTopics(Call& call) {
  absl::StatusOr<event_log::ProducerTopic*> txn_topic = producer_->Topic(options_.topic);
  if (!txn_topic.ok()) return txn_topic.status();
  absl::StatusOr<event_log::ProducerTopic*> conflict_topic =
      producer_->Topic(options_.conflict_topic);
  if (!conflict_topic.ok()) return conflict_topic.status();
  call.txn_topic = *txn_topic;
  call.conflict_topic = *conflict_topic;
  return absl::OkStatus();
}

absl::Status IngestApi::RunRounds(Call& call, std::vector<Item> items, ClaimTurn& turn) {
  while (!items.empty()) {
    Round round = Claim(call, std::move(items));
    turn.Claimed();  // the first round has claimed what it could
    // The first failure, in item order, is the call's.
    absl::Status failure = LookUp(call, round);
    if (absl::Status appended = Append(call, round); !appended.ok()) failure = appended;
    AwaitReports(call, round);
    if (absl::Status settled = Settle(call, round); failure.ok()) failure = settled;
    if (!failure.ok()) return failure;
    items = round.TakeBlocked();
    if (absl::Status free = AwaitBlocked(call, items); !free.ok()) return free;
  }
  return absl::OkStatus();
}

IngestApi::Round IngestApi::Claim(const Call& call, std::vector<Item> items) {
  Round round;
  round.items = std::move(items);
  const size_t n = round.items.size();
  round.batch.reset(new Batch);
  round.batch->recorded_at_us = absl::ToUnixMicros(call.now);
  round.batch->slots.resize(n);
  {
    absl::MutexLock lock(&round.batch->mu);
    round.batch->deliveries.resize(n);
  }
  round.ids.reserve(n);
  for (const Item& item : round.items) round.ids.push_back(item.verdict.event_id);
  round.claimed = claims_.TryClaimMany(round.ids);
  return round;
}

absl::Status IngestApi::LookUp(Call& call, Round& round) {
  // Releases the claims of item `first` and every claimed item after it: nothing of them is done.
  auto release_from = [this, &round](size_t first) {
    std::vector<absl::string_view> unhandled;
    for (size_t i = first; i < round.items.size(); ++i) {
      if (round.claimed[i]) unhandled.push_back(round.ids[i]);
    }
    claims_.ReleaseMany(unhandled);
  };
  // The whole round at once (the unclaimed ids' answers are not used).
  absl::StatusOr<std::vector<std::optional<DedupEntry>>> seen_all = dedup_->LookupMany(round.ids);
  if (!seen_all.ok()) {
    release_from(0);
    return absl::UnavailableError(absl::StrCat("dedup index: ", seen_all.status().message()));
  }
  for (size_t i = 0; i < round.items.size(); ++i) {
    if (!round.claimed[i]) continue;  // blocked: the next round's
    Item& item = round.items[i];
    const std::string& id = item.verdict.event_id;
    const std::optional<DedupEntry>& seen = (*seen_all)[i];
    if (!seen.has_value()) {
      round.to_append.push_back(&item);
      continue;
    }
    const DedupEntry& accepted = *seen;
    v1::ItemResult* result = call.response.mutable_results(item.index);
    if (accepted.digest == item.digest) {
      result->set_outcome(v1::ITEM_OUTCOME_DUPLICATE);
      result->set_event_id(id);
      call.duplicate_cities.push_back(item.verdict.metrics_city);
      claims_.Release(id);
      continue;
    }
    absl::StatusOr<bool> kept = dedup_->ConflictKept(id, crypto::AsStringView(item.digest));
    if (!kept.ok()) {
      release_from(i);
      return absl::UnavailableError(absl::StrCat("dedup index: ", kept.status().message()));
    }
    if (*kept) {
      // A retry of a conflict published and kept before: answered again, counted once.
      AnswerConflict(id, result);
      claims_.Release(id);
      continue;
    }
    // Published to the conflict topic by Append; kept once Kafka has it.
    auto evidence = std::make_shared<ingest_storage::ConflictEvidence>();
    *evidence->mutable_upload() = *item.upload;
    *evidence->mutable_source() = call.tenant;
    evidence->set_recorded_at_us(absl::ToUnixMicros(call.now));
    evidence->set_accepted_digest(std::string(crypto::AsStringView(accepted.digest)));
    evidence->set_conflicting_digest(std::string(crypto::AsStringView(item.digest)));
    evidence->set_published(true);
    item.conflict = std::move(evidence);
    round.to_append.push_back(&item);
  }
  return absl::OkStatus();
}

absl::Status IngestApi::Append(const Call& call, Round& round) {
  Batch& batch = *round.batch;
  std::string event_bytes;  // each event's, reused (the producer copies them)
  for (size_t at = 0; at < round.to_append.size(); ++at) {
    const Item& item = *round.to_append[at];
    Slot& slot = batch.slots[round.produced.size()];
    slot.ingest_api = this;
    slot.batch = &batch;
    slot.index = static_cast<int>(round.produced.size());
    slot.conflict = item.conflict != nullptr;
    {
      absl::MutexLock lock(&batch.mu);
      ++batch.outstanding;
    }
    batch.refs.fetch_add(1, std::memory_order_relaxed);  // the report's
    metrics_->inflight.Add(1);
    absl::Status enqueued;
    if (item.conflict != nullptr) {
      enqueued = ProduceItem(slot, item, call.conflict_topic,
                             BuildConflictEvent(*item.upload, call.tenant, item.verdict,
                                                item.conflict->accepted_digest(),
                                                item.conflict->conflicting_digest(), call.now)
                                 .SerializeAsString());
    } else {
      SerializeTxnEventTo(*item.upload, call.tenant, item.verdict, call.now, &event_bytes);
      enqueued = ProduceItem(slot, item, call.txn_topic, event_bytes);
    }
    if (!enqueued.ok()) {
      {
        absl::MutexLock lock(&batch.mu);
        --batch.outstanding;
      }
      // No report will come; the call's reference remains.
      batch.refs.fetch_sub(1, std::memory_order_relaxed);
      metrics_->inflight.Add(-1);
      // Nothing of this record and the ones after it was produced.
      std::vector<absl::string_view> unhandled;
      for (size_t rest = at; rest < round.to_append.size(); ++rest) {
        unhandled.push_back(round.to_append[rest]->verdict.event_id);
      }
      claims_.ReleaseMany(unhandled);
      return enqueued.code() == absl::StatusCode::kResourceExhausted
                 ? enqueued
                 : absl::UnavailableError(enqueued.message());
    }
    round.produced.push_back(&item);
  }
  return absl::OkStatus();
}

void IngestApi::AwaitReports(const Call& call, Round& round) {
  Batch& batch = *round.batch;
  absl::MutexLock lock(&batch.mu);
  auto all_reported = [&batch]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(batch.mu) {
    return batch.outstanding == 0;
  };
  call.Await([&batch, &all_reported](absl::Time until) {
    batch.mu.AssertHeld();
    return batch.mu.AwaitWithDeadline(absl::Condition(&all_reported), until);
  });
  round.reports = batch.deliveries;
  if (batch.outstanding > 0) {
    // The unreported records' reports settle them: they get what that takes.
    for (size_t index = 0; index < round.produced.size(); ++index) {
      if (round.reports[index].reported) continue;
      const Item& item = *round.produced[index];
      batch.slots[index].unanswered = {
          .entry = {item.verdict.event_id, item.digest, absl::ToUnixMicros(call.now)},
          .conflict = item.conflict,
          .metrics_city = item.verdict.metrics_city,
          .flagged_late = item.verdict.late,
          .cross_city = IsCrossCity(*item.upload)};
    }
  }
  batch.abandoned = true;
}

absl::Status IngestApi::Settle(Call& call, Round& round) {
  absl::Status failure;
  std::vector<DedupEntry> durable;
  int unreported = 0;
  for (size_t slot = 0; slot < round.produced.size(); ++slot) {
    const Item& item = *round.produced[slot];
    const Batch::Delivery& report = round.reports[slot];
    if (!report.reported) {
      ++unreported;  // its callback settles it
      continue;
    }
    if (!report.status.ok()) {
      if (failure.ok()) failure = absl::UnavailableError(report.status.message());
      continue;
    }
    if (item.conflict != nullptr) {
      KeepEvidence(item.verdict.event_id, *item.conflict, item.verdict.metrics_city);
      AnswerConflict(item.verdict.event_id, call.response.mutable_results(item.index));
      continue;
    }
    durable.push_back({item.verdict.event_id, item.digest, absl::ToUnixMicros(call.now)});
    v1::ItemResult* result = call.response.mutable_results(item.index);
    result->set_outcome(v1::ITEM_OUTCOME_ACCEPTED);
    result->set_event_id(item.verdict.event_id);
    result->set_late(item.verdict.late);
    CountAccepted(item.verdict.metrics_city, item.verdict.late, IsCrossCity(*item.upload));
  }
  // Kafka has these records; a crash right here must not let a retry append them again (the
  // next start catches the index up from the log: dedup_catch_up.h).
  if (!durable.empty()) TONGKA_FAILPOINT("ingest.after_kafka_ack");
  // Dedup entries before claims: a waiting retry must find the entry once the claim is free.
  RecordDurable(durable);
  std::vector<absl::string_view> settled;
  settled.reserve(round.produced.size());
  for (size_t slot = 0; slot < round.produced.size(); ++slot) {
    if (round.reports[slot].reported) settled.push_back(round.produced[slot]->verdict.event_id);
  }
  claims_.ReleaseMany(settled);
  if (unreported > 0 && failure.ok()) {
    failure = call.WaitedInVain(
        absl::StrCat(unreported, " transactions had no acknowledgement from Kafka yet"));
  }
  return failure;
}

absl::Status IngestApi::AwaitBlocked(const Call& call, const std::vector<Item>& blocked) {
  for (const Item& item : blocked) {
    const std::string& id = item.verdict.event_id;
    if (!call.Await([this, &id](absl::Time until) { return claims_.AwaitFree(id, until); })) {
      return call.WaitedInVain(
          absl::StrCat("an earlier upload of ", id, " was still waiting for Kafka"));
    }
  }
  return absl::OkStatus();
}

v1::UploadBatchResponse IngestApi::Answer(Call& call) {
  for (const Call::Rejection& rejection : call.rejected) {
    IngestMetrics::CityCounters& city = metrics_->City(rejection.metrics_city);
    city.rejected->Increment();
    metrics_->rejected.WithLabels({rejection.rule, city.label}).Increment();
  }
  for (uint32_t metrics_city : call.duplicate_cities) {
    metrics_->City(metrics_city).duplicate->Increment();
  }
  v1::UploadBatchResponse& response = call.response;
  for (const v1::ItemResult& result : response.results()) {
    switch (result.outcome()) {
      case v1::ITEM_OUTCOME_ACCEPTED:
        response.set_accepted(response.accepted() + 1);
        break;
      case v1::ITEM_OUTCOME_DUPLICATE:
        response.set_duplicate(response.duplicate() + 1);
        break;
      case v1::ITEM_OUTCOME_CONFLICT:
        response.set_conflict(response.conflict() + 1);
        break;
      case v1::ITEM_OUTCOME_REJECTED:
        response.set_rejected(response.rejected() + 1);
        break;
      default:
        LOG(FATAL) << "item " << result.index() << " of batch " << response.batch_id()
                   << " has no outcome";
    }
  }
  return std::move(response);
}

void IngestApi::CountAccepted(uint32_t metrics_city, bool flagged_late, bool cross_city) {
  IngestMetrics::CityCounters& city = metrics_->City(metrics_city);
  city.accepted->Increment();
  if (flagged_late) city.late->Increment();
  if (cross_city) city.cross_city->Increment();
}

void IngestApi::RecordDurable(const std::vector<DedupEntry>& entries) {
  if (entries.empty()) return;
  absl::Status recorded = dedup_->Record(entries);
  if (!recorded.ok()) {
    // Kafka has these transactions, so they stay ACCEPTED; without the entries a retry would
    // append a second copy, which consumers drop by event_id. Counted, never silent.
    metrics_->dedup_write_errors.Increment(entries.size());
    // The next start must catch these up from the log, however much is recorded after them.
    int64_t oldest_us = entries.front().recorded_at_us;
    for (const DedupEntry& entry : entries) oldest_us = std::min(oldest_us, entry.recorded_at_us);
    dedup_->NoteUnresolved(oldest_us);
    LOG(ERROR) << "dedup index write failed for " << entries.size()
               << " acknowledged transactions (a retry may append duplicates): " << recorded;
  }
}

void IngestApi::OnDelivery(Slot& slot, const event_log::DeliveryResult& result) {
  metrics_->kafka_delivery_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - slot.produced_at));
  metrics_->inflight.Add(-1);
  Batch* batch = slot.batch;
  if (!result.status.ok()) {
    metrics_->kafka_delivery_errors.WithLabels({CodeLabel(result.status.code())}).Increment();
    // The broker may have written it all the same (sent, the answer lost): the next start
    // catches up from before it. (Conflicts are not in tongka.txn: the evidence is kept by the
    // retry, which publishes again.)
    if (result.possibly_persisted && !slot.conflict) dedup_->NoteUnresolved(batch->recorded_at_us);
  }
  bool settle_here = false;
  {
    absl::MutexLock lock(&batch->mu);
    batch->deliveries[slot.index] = {true, result.status};
    --batch->outstanding;
    settle_here = batch->abandoned;
  }
  if (settle_here) {
    // The call has given up waiting (it told its client to retry). Record a late success so the
    // retry finds it DUPLICATE (or, for a conflict, keep its evidence so the retry finds it kept:
    // never a dedup entry, which would replace the accepted content's), then let the retry
    // (waiting on the claim) proceed.
    // Counted as accepted here, as the call counts what Kafka took in time: the retry is counted
    // DUPLICATE.
    const Slot::Unanswered& unanswered = slot.unanswered;
    if (result.status.ok()) {
      if (unanswered.conflict != nullptr) {
        KeepEvidence(unanswered.entry.event_id, *unanswered.conflict, unanswered.metrics_city);
      } else {
        RecordDurable({unanswered.entry});
        CountAccepted(unanswered.metrics_city, unanswered.flagged_late, unanswered.cross_city);
      }
    }
    claims_.Release(unanswered.entry.event_id);
  }
  BatchUnref()(batch);  // may free the batch, and `slot` with it
}

absl::Status IngestApi::ProduceItem(Slot& slot, const Item& item, event_log::ProducerTopic* topic,
                                    const std::string& value) {
  slot.produced_at = absl::Now();
  const std::string& card_id = txn::CommonOf(*item.upload)->card_id();
  const absl::Time give_up = slot.produced_at + options_.queue_full_wait;
  absl::Duration backoff = absl::Microseconds(500);
  for (;;) {
    absl::Status status = producer_->Produce(topic, card_id, value, &slot);
    if (status.code() != absl::StatusCode::kResourceExhausted) return status;
    metrics_->kafka_queue_full.Increment();
    if (absl::Now() + backoff > give_up) return status;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(20));
  }
}

void IngestApi::KeepEvidence(const std::string& event_id,
                             const ingest_storage::ConflictEvidence& evidence,
                             uint32_t metrics_city) {
  IngestMetrics::CityCounters& city = metrics_->City(metrics_city);
  absl::StatusOr<DedupIndex::ConflictRecorded> recorded =
      dedup_->RecordConflict(event_id, evidence);
  if (!recorded.ok()) {
    // Still counted: the signal must not vanish with the evidence (Kafka has the event).
    city.conflict->Increment();
    LOG(ERROR) << "could not keep conflict evidence for " << event_id << ": " << recorded.status();
    return;
  }
  // Content kept before (a call that failed after Kafka took it, evidence from before
  // conflicts were published) is counted once.
  if (!recorded->kept_now) return;
  city.conflict->Increment();
  LOG_EVERY_N(WARNING, 100) << "transaction id conflict (fraud signal): " << event_id
                            << " evidence #" << recorded->number << " from "
                            << server::TenantName(evidence.source());
}

}  // namespace tongka::ingest
