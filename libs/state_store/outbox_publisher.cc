#include "libs/state_store/outbox_publisher.h"

#include <glog/logging.h>

#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/failpoint/failpoint.h"

namespace tongka::state_store {

OutboxPublisher::OutboxPublisher(StateStore* store, event_log::Producer* producer,
                                 OutboxPublisherOptions options)
    : store_(store), producer_(producer), options_(options) {}

absl::StatusOr<size_t> OutboxPublisher::PublishOnce() {
  absl::StatusOr<std::vector<OutboxRecord>> entries =
      store_->ReadOutbox(options_.batch_max_entries);
  if (!entries.ok()) return entries.status();
  if (entries->empty()) return 0;

  // Delivery reports arrive on the producer's thread; count them and keep the first error.
  struct Pending {
    absl::Mutex mu;
    size_t outstanding ABSL_GUARDED_BY(mu) = 0;
    absl::Status first_error ABSL_GUARDED_BY(mu);
  };
  auto pending = std::make_shared<Pending>();
  size_t enqueued = 0;
  absl::Status enqueue_status;
  for (const OutboxRecord& entry : *entries) {
    {
      absl::MutexLock lock(&pending->mu);
      ++pending->outstanding;
    }
    enqueue_status = producer_->Produce(entry.topic, entry.key, entry.value,
                                        [pending](const event_log::DeliveryResult& r) {
                                          absl::MutexLock lock(&pending->mu);
                                          --pending->outstanding;
                                          if (!r.status.ok() && pending->first_error.ok())
                                            pending->first_error = r.status;
                                        });
    if (!enqueue_status.ok()) {
      absl::MutexLock lock(&pending->mu);
      --pending->outstanding;
      break;
    }
    ++enqueued;
  }
  absl::MutexLock lock(&pending->mu);
  auto all_reported = [&pending]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pending->mu) {
    return pending->outstanding == 0;
  };
  if (!pending->mu.AwaitWithTimeout(absl::Condition(&all_reported), options_.delivery_timeout)) {
    return absl::UnavailableError(absl::StrCat("outbox: ", pending->outstanding,
                                               " entries not delivered within ",
                                               absl::FormatDuration(options_.delivery_timeout)));
  }
  if (!pending->first_error.ok()) return pending->first_error;
  if (enqueued == 0) return enqueue_status;
  // Kafka has entries [0, enqueued). A crash right here must lead to a resend, never a loss.
  TONGKA_FAILPOINT("outbox.after_produce");
  absl::Status acked = store_->AckOutbox((*entries)[enqueued - 1].sequence);
  if (!acked.ok()) return acked;
  published_total_ += static_cast<int64_t>(enqueued);
  return enqueued;
}

void OutboxPublisher::Run(const std::atomic<bool>& stop) {
  absl::Duration backoff = options_.idle_wait;
  while (true) {
    bool stopping = stop.load();
    absl::StatusOr<size_t> published = PublishOnce();
    if (!published.ok()) {
      ++errors_total_;
      LOG_EVERY_N(WARNING, 20) << "outbox publish failed (will retry): " << published.status();
      if (stopping) return;
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(5));
      continue;
    }
    backoff = options_.idle_wait;
    if (*published == 0) {
      if (stopping) return;
      absl::SleepFor(options_.idle_wait);
    }
  }
}

}  // namespace tongka::state_store
