#include "libs/event_log/producer.h"

#include <glog/logging.h>
#include <librdkafka/rdkafka.h>

#include <future>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/failpoint/failpoint.h"

namespace tongka::event_log {

// A DeliveryCallback as a target: allocated by Produce, freed by its own report.
class FunctionTarget final : public DeliveryTarget {
 public:
  explicit FunctionTarget(DeliveryCallback callback) : callback_(std::move(callback)) {}

  void OnDelivery(const DeliveryResult& result) override {
    callback_(result);
    delete this;
  }

 private:
  DeliveryCallback callback_;
};

// Delivery reports and client events. The record's DeliveryTarget travels as the message's
// opaque pointer and is called exactly once here.
class Producer::Callbacks : public RdKafka::DeliveryReportCb, public RdKafka::EventCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    auto* target = static_cast<DeliveryTarget*>(message.msg_opaque());
    if (target == nullptr) return;
    DeliveryResult result;
    result.status = KafkaErrorToStatus(message.err(), "delivery");
    result.partition = message.partition();
    result.offset = message.offset();
    result.possibly_persisted = message.err() != RdKafka::ERR_NO_ERROR &&
                                message.status() != RdKafka::Message::MSG_STATUS_NOT_PERSISTED;
    target->OnDelivery(result);
  }

  void event_cb(RdKafka::Event& event) override {
    if (event.type() != RdKafka::Event::EVENT_ERROR) return;
    if (event.fatal()) {
      LOG(ERROR) << "kafka producer fatal error: " << event.str();
      fatal_.store(true);
    } else {
      LOG(WARNING) << "kafka producer error (retried by librdkafka): " << event.str();
    }
  }

  bool fatal() const { return fatal_.load(); }

 private:
  std::atomic<bool> fatal_{false};
};

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(const KafkaClientConfig& config) {
  auto callbacks = std::make_unique<Callbacks>();
  absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf = BuildProducerConf(config, callbacks.get());
  if (!conf.ok()) return conf.status();
  std::string error;
  if ((*conf)->set("event_cb", static_cast<RdKafka::EventCb*>(callbacks.get()), error) !=
      RdKafka::Conf::CONF_OK) {
    return absl::InternalError(absl::StrCat("kafka event_cb rejected: ", error));
  }
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  if (producer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka producer create failed: ", error));
  }
  return std::unique_ptr<Producer>(new Producer(std::move(callbacks), std::move(producer)));
}

Producer::Producer(std::unique_ptr<Callbacks> callbacks,
                   std::unique_ptr<RdKafka::Producer> producer)
    : callbacks_(std::move(callbacks)), producer_(std::move(producer)) {
  poll_thread_ = std::thread([this] { PollLoop(); });
}

Producer::~Producer() {
  if (producer_->flush(10000) != RdKafka::ERR_NO_ERROR) {
    LOG(WARNING) << "kafka producer closing with " << producer_->outq_len()
                 << " undelivered records; purging (their callbacks report UNAVAILABLE)";
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    producer_->flush(1000);
  }
  stopping_.store(true);
  poll_thread_.join();
  // Serve any reports the purge produced after the poll thread stopped.
  producer_->poll(0);
}

void Producer::PollLoop() {
  while (!stopping_.load()) producer_->poll(50);
}

bool Producer::fatal() const { return callbacks_->fatal(); }

absl::Status Producer::Produce(absl::string_view topic, absl::string_view key,
                               absl::string_view value, DeliveryCallback on_delivery) {
  FunctionTarget* target = on_delivery ? new FunctionTarget(std::move(on_delivery)) : nullptr;
  absl::Status status = Produce(topic, key, value, static_cast<DeliveryTarget*>(target));
  if (!status.ok()) delete target;
  return status;
}

absl::StatusOr<ProducerTopic*> Producer::Topic(absl::string_view topic) {
  absl::MutexLock lock(&topics_mu_);
  auto it = topics_.find(topic);
  if (it != topics_.end()) return it->second.get();
  std::string error;
  // No topic config: the producer's own (kafka_config.h) is librdkafka's default topic config.
  std::unique_ptr<RdKafka::Topic> handle(
      RdKafka::Topic::create(producer_.get(), std::string(topic), nullptr, error));
  if (handle == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka topic \"", topic, "\": ", error));
  }
  auto [added, inserted] = topics_.emplace(
      std::string(topic),
      std::unique_ptr<ProducerTopic>(new ProducerTopic(std::string(topic), std::move(handle))));
  return added->second.get();
}

absl::Status Producer::Produce(absl::string_view topic, absl::string_view key,
                               absl::string_view value, DeliveryTarget* target) {
  absl::StatusOr<ProducerTopic*> handle = Topic(topic);
  if (!handle.ok()) return handle.status();
  return Produce(*handle, key, value, target);
}

absl::Status Producer::Produce(ProducerTopic* topic, absl::string_view key, absl::string_view value,
                               DeliveryTarget* target) {
  if (failpoint::Armed("producer.fatal_error")) {
    static std::once_flag triggered;
    std::call_once(triggered, [this] {
      rd_kafka_test_fatal_error(producer_->c_ptr(), RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                "failpoint producer.fatal_error");
    });
  }
  if (callbacks_->fatal()) {
    return absl::InternalError("kafka producer hit a fatal idempotence error; recreate it");
  }
  RdKafka::ErrorCode code = producer_->produce(
      topic->topic_.get(), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
      const_cast<char*>(value.data()), value.size(), key.data(), key.size(), target);
  if (code != RdKafka::ERR_NO_ERROR) {
    return KafkaErrorToStatus(code, absl::StrCat("produce to ", topic->name()));
  }
  return absl::OkStatus();
}

absl::Status Producer::ProduceWaiting(absl::string_view topic, absl::string_view key,
                                      absl::string_view value, const DeliveryCallback& on_delivery,
                                      absl::Duration max_wait) {
  const absl::Time give_up = absl::Now() + max_wait;
  while (true) {
    // Produce consumes its callback even when it refuses the record, so each try gets a copy.
    absl::Status status = Produce(topic, key, value, on_delivery);
    if (status.code() != absl::StatusCode::kResourceExhausted || absl::Now() >= give_up) {
      return status;
    }
    // The poll thread serves delivery reports, which drain the queue (callbacks stay on it).
    absl::SleepFor(absl::Milliseconds(2));
  }
}

absl::StatusOr<DeliveryResult> Producer::ProduceSync(absl::string_view topic, absl::string_view key,
                                                     absl::string_view value,
                                                     absl::Duration timeout) {
  auto promise = std::make_shared<std::promise<DeliveryResult>>();
  std::future<DeliveryResult> future = promise->get_future();
  absl::Status status =
      Produce(topic, key, value, [promise](const DeliveryResult& r) { promise->set_value(r); });
  if (!status.ok()) return status;
  if (future.wait_for(absl::ToChronoMilliseconds(timeout)) != std::future_status::ready) {
    return absl::DeadlineExceededError(absl::StrCat(
        "produce to ", topic, ": no delivery report within ", absl::FormatDuration(timeout)));
  }
  DeliveryResult result = future.get();
  if (!result.status.ok()) return result.status;
  return result;
}

absl::Status Producer::Flush(absl::Duration timeout) {
  RdKafka::ErrorCode code = producer_->flush(absl::ToInt64Milliseconds(timeout));
  if (code == RdKafka::ERR__TIMED_OUT) {
    return absl::DeadlineExceededError(absl::StrCat("kafka flush: ", producer_->outq_len(),
                                                    " records undelivered after ",
                                                    absl::FormatDuration(timeout)));
  }
  return KafkaErrorToStatus(code, "kafka flush");
}

absl::StatusOr<int32_t> Producer::PartitionCount(const std::string& topic, absl::Duration timeout) {
  return TopicPartitionCount(producer_.get(), topic, timeout);
}

}  // namespace tongka::event_log
