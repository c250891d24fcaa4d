#include "services/ingest/ingest_service.h"

#include <glog/logging.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/server/grpc_server.h"

namespace tongka::ingest {
namespace {

absl::Time DeadlineOf(const grpc::ServerContextBase& context) {
  // gRPC reports "no deadline" as the far future; the IngestApi clamps it to its ack_timeout.
  const auto deadline = context.deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// Converts once, at the handler's return, and attaches the retry hint.
grpc::Status CallStatus(grpc::ServerContextBase* context, const absl::Status& status) {
  if (std::optional<absl::Duration> retry_after = RetryAfter(status); retry_after.has_value()) {
    context->AddTrailingMetadata(kRetryAfterMetadataKey,
                                 absl::StrCat(absl::ToInt64Milliseconds(*retry_after)));
  }
  return server::ToGrpcStatus(status);
}

void CountRequest(IngestMetrics* metrics, absl::string_view rpc, absl::StatusCode code) {
  metrics->requests
      .WithLabels({std::string(rpc), absl::AsciiStrToLower(absl::StatusCodeToString(code))})
      .Increment();
}

}  // namespace

absl::StatusOr<InflightLimit::Ticket> IngestService::AdmitCall(absl::string_view rpc) {
  std::optional<InflightLimit::Ticket> ticket = calls_.TryAcquire(1);
  if (ticket.has_value()) return std::move(*ticket);
  metrics_->refused_calls.Increment();
  CountRequest(metrics_, rpc, absl::StatusCode::kResourceExhausted);
  return WithRetryAfter(absl::ResourceExhaustedError(
                            absl::StrCat("ingest is serving ", calls_.max(),
                                         " calls (max_concurrent_calls, open streams "
                                         "included); nothing was done: retry after the hint")),
                        options_.retry_after);
}

grpc::Status IngestService::UploadBatch(grpc::ServerContext* context,
                                        const v1::UploadBatchRequest* request,
                                        v1::UploadBatchResponse* response) {
  const absl::Time received = absl::Now();
  absl::StatusOr<InflightLimit::Ticket> call = AdmitCall("UploadBatch");
  if (!call.ok()) return CallStatus(context, call.status());
  absl::Status status;
  absl::StatusOr<v1::Tenant> tenant = authenticator_->TenantFromContext(*context);
  if (!tenant.ok()) {
    status = tenant.status();
  } else {
    absl::StatusOr<v1::UploadBatchResponse> result = ingest_api_->Upload(
        *tenant, *request, DeadlineOf(*context), {}, [context] { return context->IsCancelled(); });
    if (result.ok()) {
      *response = std::move(*result);
      metrics_->ack_unary.Observe(absl::ToDoubleSeconds(absl::Now() - received));
    }
    status = result.status();
  }
  CountRequest(metrics_, "UploadBatch", status.code());
  return CallStatus(context, status);
}

// One UploadStream call. Every reaction, and each batch's work item when its Upload returns,
// changes the state under `mu_` through Drive, which then decides what to start next (Step) and
// starts it outside the lock: gRPC may run a reaction inline from a Start* call.
//
// Batches are kept in arrival order; the oldest is answered first, once its Upload has returned,
// and popped when its write is done. Reading stops while `stream_window` batches are unanswered or
// no call slot is free for one more. The stream's own slot covers one batch in progress (the one
// being read counts); each further one holds a slot from `extra_slots_`, given back as soon as the
// batches in progress drop, so a client that waits for each answer holds one slot. A failed batch
// ends the stream with its status, but only once no Upload runs and no write is pending: a work
// item still running holds a pointer into this reactor's batches.
//
// Lifetime. The reactor is freed in one place, OnDone, which gRPC calls exactly once, after
// Finish and after every reaction has returned. Nothing else can still be in it then:
//   - Finish is called only by the last thread inside Drive (`drivers_`, counted under `mu_`),
//     and only once no batch's Upload runs (`running_`) and no write is pending; the call slots
//     go back in the same locked section, so the reactor then holds nothing of the service.
//   - A work item's last touch of the reactor is the locked section of Drive in which it counts
//     itself out; the thread that later finishes takes `mu_` after that section, and absl::Mutex
//     lets the next holder free it (as absl::BlockingCounter::Wait's caller does).
// OnDone checks all of that, then deletes the reactor.
class IngestService::StreamReactor final
    : public grpc::ServerBidiReactor<v1::UploadBatchRequest, v1::UploadBatchResponse> {
 public:
  StreamReactor(IngestService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {
    absl::StatusOr<InflightLimit::Ticket> call = service_->AdmitCall("UploadStream");
    absl::StatusOr<v1::Tenant> tenant = service_->authenticator_->TenantFromContext(*context);
    if (!call.ok() || !tenant.ok()) {
      // Nothing was read: finish at once (gRPC holds it until the reactor is bound). A refusal
      // was counted by AdmitCall.
      if (call.ok()) CountRequest(service_->metrics_, "UploadStream", tenant.status().code());
      finished_ = true;
      Finish(CallStatus(context, call.ok() ? tenant.status() : call.status()));
      return;
    }
    tenant_ = std::move(*tenant);
    Drive([this, &call]()
              ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { call_slot_.emplace(std::move(*call)); });
  }

  void OnReadDone(bool ok) override {
    Drive([this, ok]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      read_pending_ = false;
      std::unique_ptr<Batch> batch = std::move(reading_);
      if (!ok) {
        reads_done_ = true;  // the client is done writing (or gone)
        return;
      }
      if (failed_) return;  // the stream is ending: the client resends what had no answer
      batch->received = absl::Now();
      // Claims in arrival order: the earlier of two batches in progress owns an id both carry.
      batch->order.after = std::move(last_claimed_);
      batch->order.claimed = std::make_shared<absl::Notification>();
      last_claimed_ = batch->order.claimed;
      Batch* started = batch.get();
      batches_.push_back(std::move(batch));
      ++running_;
      absl::Status worker = service_->workers_.TrySchedule([this, started] { RunUpload(started); });
      if (!worker.ok()) NoWorkerFor(started, worker);
    });
  }

  void OnWriteDone(bool ok) override {
    Drive([this, ok]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      write_pending_ = false;
      if (!ok) {
        if (!failed_) {
          failed_ = true;
          final_status_ = absl::CancelledError("the client went away");
        }
        return;
      }
      service_->metrics_->ack_stream.Observe(
          absl::ToDoubleSeconds(absl::Now() - batches_.front()->received));
      batches_.pop_front();  // Step gives back the slot it no longer needs
    });
  }

  // The client cancelled, or the server is shutting down: the Uploads stop waiting (they poll
  // `cancelled_`) and the stream ends once they have returned.
  void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }

  // The one place the reactor is freed (the class comment says why nothing is left in it).
  void OnDone() override {
    {
      absl::MutexLock lock(&mu_);
      CHECK(finished_) << "OnDone before Finish";
      CHECK_EQ(running_, 0) << "a batch's Upload still runs on a freed stream";
      CHECK_EQ(drivers_, 0) << "a thread is still inside a freed stream";
      CHECK(!write_pending_);
    }
    delete this;
  }

 private:
  struct Batch {
    v1::UploadBatchRequest request;
    absl::Time received;
    ClaimOrder order;
    bool done = false;
    absl::StatusOr<v1::UploadBatchResponse> result;
  };
  // What Step decided to start, made outside the lock.
  struct Actions {
    v1::UploadBatchRequest* read = nullptr;
    const v1::UploadBatchResponse* write = nullptr;
    std::optional<grpc::Status> finish;
    bool any() const { return read != nullptr || write != nullptr || finish.has_value(); }
  };

  // Undoes what starting `batch`'s work item took, and fails the batch, none of it done: it never
  // claimed, so the next batch claims after the one before it. The stream ends with this status
  // once the batches ahead are answered.
  void NoWorkerFor(Batch* batch, const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    --running_;
    last_claimed_ = std::move(batch->order.after);
    service_->metrics_->refused_threads.Increment();
    CountRequest(service_->metrics_, "UploadStream", absl::StatusCode::kResourceExhausted);
    LOG_EVERY_N(ERROR, 100) << "ingest could not start a stream batch's worker: " << why;
    batch->result = WithRetryAfter(
        absl::ResourceExhaustedError(absl::StrCat(
            "ingest could not start a worker for batch \"", batch->request.batch_id(), "\" (",
            why.message(),
            "); nothing of it was done: resend it, and the batches after it that have no "
            "answer, after the hint")),
        service_->options_.retry_after);
    batch->done = true;
  }

  // A batch's work item, on the service's pool. Its Drive is its last touch of the reactor.
  void RunUpload(Batch* batch) {
    absl::StatusOr<v1::UploadBatchResponse> result = service_->ingest_api_->Upload(
        tenant_, batch->request, DeadlineOf(*context_), batch->order,
        [this] { return cancelled_.load(std::memory_order_relaxed); });
    Drive([this, batch, &result]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      CountRequest(service_->metrics_, "UploadStream", result.status().code());
      batch->result = std::move(result);
      batch->done = true;
      --running_;
    });
  }

  // Applies `change` under the lock, then starts what that allows, until nothing more is to start.
  // The caller counts as a driver from the section that applies `change` to the section in which
  // Step finds nothing more to start or decides Finish; after that section it touches nothing of
  // the reactor (Finish aside, which it calls last).
  template <typename Change>
  void Drive(Change change) {
    mu_.Lock();
    ++drivers_;
    change();
    for (;;) {
      Actions actions = Step();
      const bool leaving = !actions.any() || actions.finish.has_value();
      if (leaving) --drivers_;
      mu_.Unlock();
      if (actions.finish.has_value()) {
        Finish(*std::move(actions.finish));  // OnDone may free the reactor from here on
        return;
      }
      if (leaving) return;
      if (actions.read != nullptr) StartRead(actions.read);
      if (actions.write != nullptr) StartWrite(actions.write);
      mu_.Lock();
    }
  }

  Actions Step() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Actions actions;
    if (finished_) return actions;
    // Slots beyond the stream's own: one per batch in progress after the first.
    const size_t in_progress = batches_.size() + (read_pending_ ? 1 : 0);
    while (extra_slots_.size() > std::max<size_t>(in_progress, 1) - 1) extra_slots_.pop_back();
    // The oldest batch, once its Upload has returned: its answer, or the end of the stream.
    if (!failed_ && !write_pending_ && !batches_.empty() && batches_.front()->done) {
      Batch& oldest = *batches_.front();
      if (oldest.result.ok()) {
        write_pending_ = true;
        actions.write = &*oldest.result;
      } else {
        failed_ = true;
        final_status_ = oldest.result.status();
      }
    }
    // The next batch, while the window and the call slots allow.
    if (!failed_ && !reads_done_ && !read_pending_ &&
        batches_.size() < static_cast<size_t>(service_->options_.stream_window)) {
      // The batch read next is in progress beyond the first unless none is.
      bool has_slot = extra_slots_.size() >= batches_.size();
      if (!has_slot) {
        std::optional<InflightLimit::Ticket> extra = service_->calls_.TryAcquire(1);
        if (extra.has_value()) extra_slots_.push_back(std::move(*extra));
        has_slot = extra.has_value();
      }
      if (has_slot) {
        reading_ = std::make_unique<Batch>();
        read_pending_ = true;
        actions.read = &reading_->request;
      }
    }
    // Only the last driver finishes: no other thread has a Start* to make or is still in Drive.
    const bool quiet = running_ == 0 && !write_pending_ && drivers_ == 1 && !actions.any();
    if (quiet && failed_) {
      // A read may still be pending: Finish completes it (not ok) before OnDone.
      actions.finish = CallStatus(context_, final_status_);
    } else if (quiet && reads_done_ && batches_.empty() && !read_pending_) {
      actions.finish = grpc::Status::OK;
    }
    if (actions.finish.has_value()) {
      finished_ = true;
      // The call slots go back now, with the batches: from Finish on, the reactor holds nothing
      // of the service.
      batches_.clear();
      extra_slots_.clear();
      call_slot_.reset();
    }
    return actions;
  }

  IngestService* const service_;
  grpc::CallbackServerContext* const context_;
  v1::Tenant tenant_;
  std::atomic<bool> cancelled_{false};

  absl::Mutex mu_;
  std::deque<std::unique_ptr<Batch>> batches_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Batch> reading_ ABSL_GUARDED_BY(mu_);
  // Notified once the latest batch started has claimed its ids (ClaimOrder).
  std::shared_ptr<const absl::Notification> last_claimed_ ABSL_GUARDED_BY(mu_);
  std::optional<InflightLimit::Ticket> call_slot_ ABSL_GUARDED_BY(mu_);
  std::vector<InflightLimit::Ticket> extra_slots_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // batches whose Upload has not returned
  int drivers_ ABSL_GUARDED_BY(mu_) = 0;  // threads inside Drive
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool write_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::ServerBidiReactor<v1::UploadBatchRequest, v1::UploadBatchResponse>*
IngestService::UploadStream(grpc::CallbackServerContext* context) {
  return new StreamReactor(this, context);
}

}  // namespace tongka::ingest
