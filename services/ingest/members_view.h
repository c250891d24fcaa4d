// MembersView: the member table (member_table.h) kept up to date from tongka.members in the
// background, for the validator's member rules.
//
// Start checks that the topic exists with one partition (ingest refuses to start otherwise, like
// for its other topics: topics are created by the deployment), notes the partition's high
// watermark, and starts a thread that reads it from offset 0 with its own consumer (no group
// offsets: the table is small and rebuilt at every start), applying every record to a working
// table and publishing an immutable snapshot after each poll that changed it. caught_up() turns
// true once the reader has passed the high watermark noted at start: the app makes it a
// condition of readiness, so no orchestrator routes uploads to an ingest that would judge them
// against an old member table.
//
// A consumer error (the log truncated under it, a broken client) cannot heal here: the thread
// reports it once through `on_error` (the app's fatal stop) and ends; the last snapshot stays.
//
// Ownership: owns its consumer and thread. Thread-safety: Current(), caught_up() and
// next_offset() from any thread; Stop and the destructor on the owner's thread.
//
// Example:
//   auto view = MembersView::Start(kafka, [&](absl::Status s) { runtime.Fail(s, "members"); });
//   Validator validator(limits, &keyring, view->get());
#ifndef TONGKA_SERVICES_INGEST_MEMBERS_VIEW_H_
#define TONGKA_SERVICES_INGEST_MEMBERS_VIEW_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "libs/event_log/kafka_config.h"
#include "libs/event_log/partition_consumer.h"
#include "services/ingest/member_table.h"

namespace tongka::ingest {

class MembersView : public MemberSource {
 public:
  static absl::StatusOr<std::unique_ptr<MembersView>> Start(
      const event_log::KafkaClientConfig& kafka, std::function<void(const absl::Status&)> on_error,
      const std::string& topic = kMembersTopic);
  ~MembersView() override;

  MembersView(const MembersView&) = delete;
  MembersView& operator=(const MembersView&) = delete;

  // Stops and joins the reader. Idempotent.
  void Stop();

  std::shared_ptr<const MemberTable> Current() const override;
  // The reader has applied every record below the high watermark noted at start.
  bool caught_up() const { return next_offset_.load() >= start_high_watermark_; }
  int64_t next_offset() const { return next_offset_.load(); }
  int64_t start_high_watermark() const { return start_high_watermark_; }

 private:
  MembersView(std::unique_ptr<event_log::PartitionConsumer> consumer, std::string topic,
              int64_t start_high_watermark, std::function<void(const absl::Status&)> on_error);
  void Run();

  std::unique_ptr<event_log::PartitionConsumer> consumer_;
  const std::string topic_;
  const int64_t start_high_watermark_;
  const std::function<void(const absl::Status&)> on_error_;
  std::atomic<int64_t> next_offset_{0};
  MemberTable working_;  // the reader thread's own
  mutable absl::Mutex mu_;
  std::shared_ptr<const MemberTable> current_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread reader_;
};

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_MEMBERS_VIEW_H_
