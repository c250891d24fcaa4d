// Producer: the idempotent Kafka producer every Tongka writer uses (ingest, outbox publishers).
//
// It owns one librdkafka producer (acks=all, enable.idempotence=true, murmur2 partitioner; see
// kafka_config.h) and one background thread that serves delivery reports. A record is durable
// only when its DeliveryCallback reports OK: callers acknowledge to their own clients then, and
// never earlier.
//
// Thread-safety: Produce, Flush and the accessors may be called from any thread. Delivery
// callbacks run on the producer's poll thread, in per-partition produce order; they must be
// short and must not call Flush or destroy the Producer.
//
// Failure: Produce never blocks. A full local queue returns RESOURCE_EXHAUSTED (back-pressure:
// retry later); an unknown topic returns NOT_FOUND; a fatal idempotence error (the producer can
// no longer guarantee ordering without gaps) makes every later call return INTERNAL, and the
// owner must recreate the producer. Transient broker outages are retried inside librdkafka until
// message.timeout.ms, after which the callback receives UNAVAILABLE.
//
// Example:
//   auto producer = Producer::Create({.bootstrap_servers = bootstrap});
//   (*producer)->Produce("tongka.txn", card_id, bytes, [](const DeliveryResult& r) {
//     if (r.status.ok()) Ack(r.partition, r.offset);
//   });
//   (*producer)->Flush(absl::Seconds(10));
#ifndef TONGKA_LIBS_EVENT_LOG_PRODUCER_H_
#define TONGKA_LIBS_EVENT_LOG_PRODUCER_H_

#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/event_log/kafka_config.h"

namespace tongka::event_log {

struct DeliveryResult {
  absl::Status status;
  int32_t partition = -1;
  int64_t offset = -1;
  // For a failed report: whether the broker may have written the record all the same (it was
  // sent, and the answer timed out or was lost), as librdkafka's message status says. False for
  // one that never left the producer (timed out in its queue, purged before sending).
  bool possibly_persisted = false;
};

using DeliveryCallback = std::function<void(const DeliveryResult&)>;

// Receives one record's delivery report, on the producer's poll thread, exactly once: the
// allocation-free form of a DeliveryCallback, for writers producing many records whose state
// they already hold (ingest keeps one target per record of an upload in the upload's own
// memory). The producer does not own it; it must stay alive until OnDelivery has returned.
class DeliveryTarget {
 public:
  virtual void OnDelivery(const DeliveryResult& result) = 0;

 protected:
  ~DeliveryTarget() = default;
};

// A topic a Producer writes, resolved once by Producer::Topic: producing through it skips the
// lookup of the topic by name that every record would otherwise take. Owned by the producer and
// valid as long as it lives.
class ProducerTopic {
 public:
  const std::string& name() const { return name_; }

 private:
  friend class Producer;
  ProducerTopic(std::string name, std::unique_ptr<RdKafka::Topic> topic)
      : name_(std::move(name)), topic_(std::move(topic)) {}

  const std::string name_;
  const std::unique_ptr<RdKafka::Topic> topic_;
};

class Producer {
 public:
  static absl::StatusOr<std::unique_ptr<Producer>> Create(const KafkaClientConfig& config);

  // Flushes for up to 10 s (anything still queued then is reported to its callback as
  // UNAVAILABLE by librdkafka's purge), then stops the poll thread.
  ~Producer();

  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Enqueues one record, partitioned by `key` with murmur2. `on_delivery` may be empty.
  absl::Status Produce(absl::string_view topic, absl::string_view key, absl::string_view value,
                       DeliveryCallback on_delivery);
  // The same, reporting to `target` (may be null). When Produce fails, no report will come.
  absl::Status Produce(absl::string_view topic, absl::string_view key, absl::string_view value,
                       DeliveryTarget* target);
  absl::Status Produce(ProducerTopic* topic, absl::string_view key, absl::string_view value,
                       DeliveryTarget* target);

  // The handle of `topic`, created on first use (INVALID_ARGUMENT when librdkafka refuses the
  // name). Cheap after that, but still a lookup: writers producing many records resolve it once
  // per batch.
  absl::StatusOr<ProducerTopic*> Topic(absl::string_view topic);

  // Like Produce, but while the local queue is full (RESOURCE_EXHAUSTED) waits for it to drain,
  // for at most `max_wait`; then returns RESOURCE_EXHAUSTED. For bulk writers (feeds, benchmarks)
  // that would otherwise each spin on the same retry loop.
  absl::Status ProduceWaiting(absl::string_view topic, absl::string_view key,
                              absl::string_view value, const DeliveryCallback& on_delivery,
                              absl::Duration max_wait);

  // Produces and waits for the delivery report.
  absl::StatusOr<DeliveryResult> ProduceSync(absl::string_view topic, absl::string_view key,
                                             absl::string_view value, absl::Duration timeout);

  // Waits until every enqueued record has a delivery report. DEADLINE_EXCEEDED otherwise.
  absl::Status Flush(absl::Duration timeout);

  // True once librdkafka reported a fatal error: every later Produce fails and the owner must
  // recreate the producer (a service stops, so that it restarts with a new one). Fault tests
  // raise one with the failpoint "producer.fatal_error" (armed: the first Produce triggers it).
  bool fatal() const;

  // The partition count of `topic`; NOT_FOUND when it does not exist (a service checks its
  // topics at start: producing to a missing one would only time out).
  absl::StatusOr<int32_t> PartitionCount(const std::string& topic, absl::Duration timeout);

  // Records enqueued but not yet reported (librdkafka's outq_len, including requests).
  int64_t OutstandingCount() const { return producer_->outq_len(); }

 private:
  class Callbacks;
  Producer(std::unique_ptr<Callbacks> callbacks, std::unique_ptr<RdKafka::Producer> producer);
  void PollLoop();

  std::unique_ptr<Callbacks> callbacks_;
  std::unique_ptr<RdKafka::Producer> producer_;
  absl::Mutex topics_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<ProducerTopic>> topics_
      ABSL_GUARDED_BY(topics_mu_);
  std::atomic<bool> stopping_{false};
  std::thread poll_thread_;
};

}  // namespace tongka::event_log

#endif  // TONGKA_LIBS_EVENT_LOG_PRODUCER_H_
