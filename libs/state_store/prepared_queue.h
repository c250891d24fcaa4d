// PreparedQueue: what an Applier's Prepare computed for each record, handed to its Apply.
//
// Prepare runs on the apply loop's prefetch thread (see Applier in apply_loop.h) and pushes the
// prepared form of each group of records, in log order; Apply, on the loop's thread, takes the
// form of the record it is applying. The two stay in step because both see the records in log
// order. When they do not (Apply called without Prepare, as tests do; a loop stopped with records
// still prefetched), Take drops everything queued and answers nullptr, and Apply computes the
// record itself: Prepare is an optimisation, never a source of truth.
//
// An applier's queue serves one loop over one topic (entries are matched by partition and
// offset). Reusing it for a second loop while records are still queued may make Take miss, or
// hit an entry the stopped loop prepared for the same record (the same bytes, fetched again):
// results stay the same, but views such an entry holds point into the old record's bytes, so
// Apply re-bases every view onto the record it applies (txn::RebaseTxnView).
//
// Thread-safety: Push from one thread, Take from one other thread. Take locks only when the
// records it holds run out, once per pushed group.
//
// Example:
//   void Prepare(const std::vector<Record>& records) override {
//     std::vector<PreparedQueue<Parsed>::Entry> parsed;
//     for (const Record& r : records) parsed.push_back({r.partition, r.offset, Parse(r.value)});
//     queue_.Push(std::move(parsed));
//   }
//   absl::Status Apply(const Record& record, StateBatch& batch) override {
//     Parsed own;
//     const Parsed* parsed = queue_.Take(record);
//     if (parsed == nullptr) parsed = &(own = Parse(record.value));
//     ...
//   }
#ifndef TONGKA_LIBS_STATE_STORE_PREPARED_QUEUE_H_
#define TONGKA_LIBS_STATE_STORE_PREPARED_QUEUE_H_

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "libs/event_log/record.h"

namespace tongka::state_store {

template <typename T>
class PreparedQueue {
 public:
  struct Entry {
    int32_t partition = -1;
    int64_t offset = -1;
    T value;
  };

  // Queues the prepared forms of a group of records, in log order.
  void Push(std::vector<Entry> entries) {
    if (entries.empty()) return;
    absl::MutexLock lock(&mu_);
    pushed_.push_back(std::move(entries));
  }

  // The prepared form of `record` if it is queued, skipping the entries before it, or nullptr,
  // and then the queue is emptied (it is out of step). The pointer stays valid until the next Take;
  // the taker may change what it points to.
  T* Take(const event_log::Record& record) {
    // The loop may skip records it did not let through (EventFilter drops repeats): their
    // entries come before the record's, in this group or at the end of the one before. An
    // entry that is not found at all means out of step, and the search has emptied the queue.
    while (true) {
      if (next_ == taking_.size()) {
        taking_.clear();
        next_ = 0;
        absl::MutexLock lock(&mu_);
        if (pushed_.empty()) return nullptr;
        taking_ = std::move(pushed_.front());
        pushed_.pop_front();
      }
      for (; next_ < taking_.size(); ++next_) {
        Entry& entry = taking_[next_];
        if (entry.partition == record.partition && entry.offset == record.offset) {
          ++next_;
          return &entry.value;
        }
      }
    }
  }

 private:
  absl::Mutex mu_;
  std::deque<std::vector<Entry>> pushed_ ABSL_GUARDED_BY(mu_);
  // The taking thread's own: the group it takes from, and its next entry.
  std::vector<Entry> taking_;
  size_t next_ = 0;
};

}  // namespace tongka::state_store

#endif  // TONGKA_LIBS_STATE_STORE_PREPARED_QUEUE_H_
