// OutboxPublisher: drains a StateStore's outbox to Kafka, at least once, in commit order.
//
// Derived events (alerts, grants, settlement deltas) are committed to the outbox in the same
// RocksDB batch as the state change that caused them. The publisher reads them from the cursor,
// produces them with the idempotent producer, waits until Kafka has every one (acks=all), and only
// then advances the cursor. A crash after produce and before the cursor moves resends the batch on
// restart; the events' ids are deterministic (DerivedEventId), so consumers drop the duplicates
// with StateBatch::MarkSeen. Nothing committed is ever lost; nothing is counted twice downstream.
//
// Thread-safety: one thread calls PublishOnce/Run. Failure: a produce or delivery error leaves
// the cursor where it was and returns the error; the next call retries the same entries.
//
// Example:
//   OutboxPublisher publisher(store.get(), producer.get(), {});
//   std::thread t([&] { publisher.Run(stop); });
#ifndef TONGKA_LIBS_STATE_STORE_OUTBOX_PUBLISHER_H_
#define TONGKA_LIBS_STATE_STORE_OUTBOX_PUBLISHER_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/event_log/producer.h"
#include "libs/state_store/state_store.h"

namespace tongka::state_store {

struct OutboxPublisherOptions {
  // Entries produced per round trip.
  size_t batch_max_entries = 5000;
  // How long to wait for Kafka to take a batch before giving up on this round.
  absl::Duration delivery_timeout = absl::Seconds(30);
  // Sleep when the outbox is empty.
  absl::Duration idle_wait = absl::Milliseconds(20);
};

class OutboxPublisher {
 public:
  OutboxPublisher(StateStore* store, event_log::Producer* producer, OutboxPublisherOptions options);

  // Publishes at most one batch. Returns the number of entries Kafka took and the cursor passed.
  absl::StatusOr<size_t> PublishOnce();

  // Publishes until `stop` is set; transient errors are logged, counted and retried after a
  // back-off. Returns when stopped, after a final drain attempt.
  void Run(const std::atomic<bool>& stop);

  int64_t published_total() const { return published_total_.load(); }
  int64_t errors_total() const { return errors_total_.load(); }

 private:
  StateStore* store_;
  event_log::Producer* producer_;
  OutboxPublisherOptions options_;
  std::atomic<int64_t> published_total_{0};
  std::atomic<int64_t> errors_total_{0};
};

}  // namespace tongka::state_store

#endif  // TONGKA_LIBS_STATE_STORE_OUTBOX_PUBLISHER_H_
