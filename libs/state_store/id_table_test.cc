// Proves IdTable against std::unordered_map under a random mix of inserts, finds and erases
// (with many keys sharing a home slot, so backward-shift deletion is exercised across probe runs
// and the table's wrap-around), key 0 stored like any other, growth keeping every entry (past
// 2 MiB of slots, where they are mapped on huge-page boundaries), and a move keeping them too.
#include "libs/state_store/id_table.h"

#include <random>
#include <unordered_map>

#include "gtest/gtest.h"

namespace tongka::state_store {
namespace {

TEST(IdTableTest, AgreesWithAMapUnderRandomInsertsFindsAndErases) {
  std::mt19937_64 random(5);
  for (int round = 0; round < 4; ++round) {
    IdTable table;
    std::unordered_map<uint64_t, int64_t> model;
    // Few distinct low bits: long probe runs that wrap around the end of the table.
    const uint64_t spread = round % 2 == 0 ? 64 : (1ull << 40);
    for (int step = 0; step < 200000; ++step) {
      uint64_t key = (random() % spread) | ((random() % 4) << 58);
      if (step % 1000 == 0) key = 0;
      const int op = static_cast<int>(random() % 3);
      if (op == 0) {
        const int64_t value = static_cast<int64_t>(random() % 1000);
        auto [stored, inserted] = table.Insert(key, value);
        auto [it, model_inserted] = model.try_emplace(key == 0 ? 1 : key, value);
        ASSERT_EQ(inserted, model_inserted) << step;
        ASSERT_EQ(*stored, it->second) << step;
      } else if (op == 1) {
        ASSERT_EQ(table.Erase(key), model.erase(key == 0 ? 1 : key) == 1) << step;
      } else {
        int64_t* found = table.Find(key);
        auto it = model.find(key == 0 ? 1 : key);
        ASSERT_EQ(found != nullptr, it != model.end()) << step;
        if (found != nullptr) {
          ASSERT_EQ(*found, it->second) << step;
        }
      }
      ASSERT_EQ(table.size(), model.size()) << step;
    }
    for (const auto& [key, value] : model) {
      int64_t* found = table.Find(key);
      ASSERT_NE(found, nullptr);
      EXPECT_EQ(*found, value);
    }
  }
}

TEST(IdTableTest, GrowsWithoutLosingEntries) {
  IdTable table;
  for (uint64_t key = 1; key <= 100000; ++key)
    ASSERT_TRUE(table.Insert(key * 0x9e3779b97f4a7c15ull, static_cast<int64_t>(key)).second);
  for (uint64_t key = 1; key <= 100000; ++key) {
    int64_t* found = table.Find(key * 0x9e3779b97f4a7c15ull);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(*found, static_cast<int64_t>(key));
    table.Prefetch(key);
  }
  EXPECT_EQ(table.size(), 100000u);
}

TEST(IdTableTest, AMovedTableKeepsItsEntries) {
  IdTable table;
  for (uint64_t key = 1; key <= 300000; ++key) ASSERT_TRUE(table.Insert(key, 7).second);
  IdTable moved(std::move(table));
  IdTable assigned;
  assigned = std::move(moved);
  EXPECT_EQ(assigned.size(), 300000u);
  for (uint64_t key = 1; key <= 300000; ++key) ASSERT_NE(assigned.Find(key), nullptr) << key;
  EXPECT_EQ(assigned.Find(300001), nullptr);
}

}  // namespace
}  // namespace tongka::state_store
