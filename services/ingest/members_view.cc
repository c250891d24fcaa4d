#include "services/ingest/members_view.h"

#include <glog/logging.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace tongka::ingest {
namespace {

constexpr absl::Duration kMetadataTimeout = absl::Seconds(30);
constexpr absl::Duration kPollTimeout = absl::Milliseconds(100);
constexpr size_t kPollRecordsMax = 1000;
// How long Start keeps asking for the watermarks while the broker answers UNAVAILABLE (a topic
// just created has no leader for a moment; a restarted broker settles within seconds).
constexpr absl::Duration kWatermarksRetryMax = absl::Seconds(60);

}  // namespace

absl::StatusOr<std::unique_ptr<MembersView>> MembersView::Start(
    const event_log::KafkaClientConfig& kafka, std::function<void(const absl::Status&)> on_error,
    const std::string& topic) {
  absl::StatusOr<std::unique_ptr<event_log::PartitionConsumer>> consumer =
      event_log::PartitionConsumer::Create(kafka, "tongka-ingest-members");
  if (!consumer.ok()) return consumer.status();
  absl::StatusOr<int32_t> partitions = (*consumer)->PartitionCount(topic, kMetadataTimeout);
  if (!partitions.ok()) {
    return absl::Status(partitions.status().code(),
                        absl::StrCat("topic ", topic, ": ", partitions.status().message(),
                                     " (created by deploy/k8s/base/kafka/topics.yaml)"));
  }
  if (*partitions != 1) {
    return absl::FailedPreconditionError(absl::StrCat("topic ", topic, " has ", *partitions,
                                                      " partitions: the member registry has one"));
  }
  const event_log::TopicPartition partition{topic, 0};
  const absl::Time deadline = absl::Now() + kWatermarksRetryMax;
  absl::Duration backoff = absl::Milliseconds(100);
  absl::StatusOr<std::pair<int64_t, int64_t>> watermarks;
  while (true) {
    watermarks = (*consumer)->QueryWatermarks(partition, kMetadataTimeout);
    if (watermarks.ok() || watermarks.status().code() != absl::StatusCode::kUnavailable ||
        absl::Now() + backoff > deadline) {
      break;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
  if (!watermarks.ok()) return watermarks.status();
  // From the start of the log: the low watermark is 0 (unlimited retention); if it is not, the
  // consumer's OUT_OF_RANGE says so loudly.
  if (absl::Status assigned = (*consumer)->Assign({{partition, 0}}); !assigned.ok()) {
    return assigned;
  }
  std::unique_ptr<MembersView> view(
      new MembersView(*std::move(consumer), topic, watermarks->second, std::move(on_error)));
  view->reader_ = std::thread([raw = view.get()] { raw->Run(); });
  return view;
}

MembersView::MembersView(std::unique_ptr<event_log::PartitionConsumer> consumer, std::string topic,
                         int64_t start_high_watermark,
                         std::function<void(const absl::Status&)> on_error)
    : consumer_(std::move(consumer)),
      topic_(std::move(topic)),
      start_high_watermark_(start_high_watermark),
      on_error_(std::move(on_error)),
      current_(std::make_shared<const MemberTable>()) {}

MembersView::~MembersView() { Stop(); }

void MembersView::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (reader_.joinable()) reader_.join();
  if (consumer_ != nullptr) consumer_->Close();
}

std::shared_ptr<const MemberTable> MembersView::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

void MembersView::Run() {
  std::vector<event_log::Record> records;
  while (!stop_.HasBeenNotified()) {
    records.clear();
    absl::Status polled = consumer_->Poll(kPollRecordsMax, kPollTimeout, &records);
    bool changed = false;
    int64_t next = next_offset_.load();
    for (const event_log::Record& record : records) {
      v1::Event event;
      if (event.ParseFromArray(record.value.data(), static_cast<int>(record.value.size())) &&
          working_.Apply(event) == MemberTable::Applied::kChanged) {
        changed = true;
      }
      next = record.offset + 1;
    }
    if (changed) {
      auto snapshot = std::make_shared<const MemberTable>(working_);
      absl::MutexLock lock(&mu_);
      current_ = std::move(snapshot);
    }
    // Published before the position moves: caught_up() never runs ahead of the snapshot.
    next_offset_.store(next);
    if (!polled.ok()) {
      LOG(ERROR) << "member view stops reading " << topic_ << ": " << polled;
      if (on_error_) on_error_(polled);
      return;
    }
  }
}

}  // namespace tongka::ingest
