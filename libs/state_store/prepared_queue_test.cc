// Proves PreparedQueue hands each record its own prepared value in log order across pushed
// groups, steps over the entries of records the loop skipped, answers nullptr when nothing is
// queued, and on a record never prepared drops everything
// queued (then the taker computes the record itself) and starts over with the next push.
#include "libs/state_store/prepared_queue.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/event_log/record.h"

namespace tongka::state_store {
namespace {

using Queue = PreparedQueue<std::string>;

event_log::Record At(int32_t partition, int64_t offset) {
  return event_log::Record::Owned("t", partition, offset, "", "", 0);
}

std::vector<Queue::Entry> Group(int32_t partition, int64_t first, int64_t count) {
  std::vector<Queue::Entry> entries;
  for (int64_t offset = first; offset < first + count; ++offset) {
    entries.push_back(
        {partition, offset, "p" + std::to_string(partition) + "@" + std::to_string(offset)});
  }
  return entries;
}

TEST(PreparedQueueTest, TakesInStepAcrossGroups) {
  Queue queue;
  EXPECT_EQ(queue.Take(At(0, 0)), nullptr) << "nothing queued";
  queue.Push(Group(0, 0, 2));
  queue.Push({});  // an empty group changes nothing
  queue.Push(Group(1, 5, 2));
  for (auto [partition, offset] : {std::pair{0, 0}, {0, 1}, {1, 5}, {1, 6}}) {
    std::string* value = queue.Take(At(partition, offset));
    ASSERT_NE(value, nullptr) << partition << "@" << offset;
    EXPECT_EQ(*value, "p" + std::to_string(partition) + "@" + std::to_string(offset));
  }
  EXPECT_EQ(queue.Take(At(1, 7)), nullptr) << "all taken";
}

TEST(PreparedQueueTest, SkippedRecordsAreSteppedOverInAndAcrossGroups) {
  // The apply loop drops repeated and misrouted records before Apply: their entries are passed.
  Queue queue;
  queue.Push(Group(0, 0, 3));
  queue.Push(Group(0, 3, 3));
  ASSERT_NE(queue.Take(At(0, 0)), nullptr);
  std::string* value = queue.Take(At(0, 2));
  ASSERT_NE(value, nullptr) << "offset 1 was skipped";
  EXPECT_EQ(*value, "p0@2");
  value = queue.Take(At(0, 4));
  ASSERT_NE(value, nullptr) << "offset 3, the next group's first, was skipped";
  EXPECT_EQ(*value, "p0@4");
}

TEST(PreparedQueueTest, ARecordOutOfStepDropsEverythingQueued) {
  Queue queue;
  queue.Push(Group(0, 0, 3));
  queue.Push(Group(0, 3, 3));
  ASSERT_NE(queue.Take(At(0, 0)), nullptr);
  EXPECT_EQ(queue.Take(At(1, 0)), nullptr) << "never prepared";
  EXPECT_EQ(queue.Take(At(0, 3)), nullptr) << "the later group went too";
  queue.Push(Group(2, 9, 1));
  std::string* value = queue.Take(At(2, 9));
  ASSERT_NE(value, nullptr) << "a new push after the drop is taken";
  EXPECT_EQ(*value, "p2@9");
}

}  // namespace
}  // namespace tongka::state_store
