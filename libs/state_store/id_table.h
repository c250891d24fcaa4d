// IdTable: an open-addressing hash table from a 64-bit id hash to a 64-bit value, for
// EventFilter's in-memory index of seen event ids.
//
// Why not absl::flat_hash_map: the filter looks up one new id per consumed record in a table of
// millions, so nearly every lookup misses the CPU cache. This table can be asked to prefetch the
// slot of a hash a few records ahead (Prefetch), so the miss overlaps with other work; the
// abseil release we build against has no such call. Linear probing, at most half full, deletion
// by backward shift (no tombstones), 16 bytes per slot.
//
// From 2 MiB up the slots sit on 2 MiB boundaries and are asked for transparent huge pages
// (MADV_HUGEPAGE, honoured in the kernel's "madvise" and "always" modes): a table of millions of
// ids is probed at random, and on 4 KiB pages nearly every probe and prefetch also misses the
// TLB, and every doubling faults its new slots in page by page (README.md, Performance).
//
// Keys are hashes: 0 is stored as 1 (the empty marker is 0), so callers must treat a key as a
// hash, never as an exact id (EventFilter confirms matches against the stored ids).
//
// Thread-safety: none; one thread owns a table.
//
// Example:
//   IdTable table;
//   auto [value, inserted] = table.Insert(hash, bucket);
//   table.Prefetch(next_hash);
//   if (int64_t* found = table.Find(hash)) ...
//   table.Erase(hash);
#ifndef TONGKA_LIBS_STATE_STORE_ID_TABLE_H_
#define TONGKA_LIBS_STATE_STORE_ID_TABLE_H_

#include <glog/logging.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace tongka::state_store {

class IdTable {
 public:
  IdTable() : slots_(kCapacityMin), mask_(kCapacityMin - 1) {}
  IdTable(IdTable&& other) = default;
  IdTable& operator=(IdTable&& other) = default;

  // The value of `key`, or nullptr. Valid until the next Insert or Erase.
  int64_t* Find(uint64_t key) {
    key = Normal(key);
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.key == key) return &slot.value;
      if (slot.key == 0) return nullptr;
    }
  }

  // Inserts (key, value) unless the key is present. Returns the stored value (the old one when
  // present) and whether it was inserted. The pointer is valid until the next Insert or Erase.
  std::pair<int64_t*, bool> Insert(uint64_t key, int64_t value) {
    if (2 * (size_ + 1) > slots_.size()) Grow();
    key = Normal(key);
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.key == key) return {&slot.value, false};
      if (slot.key == 0) {
        slot = {key, value};
        ++size_;
        return {&slot.value, true};
      }
    }
  }

  // Removes `key` if present; true when it was.
  bool Erase(uint64_t key) {
    key = Normal(key);
    size_t i = Home(key);
    while (slots_[i].key != key) {
      if (slots_[i].key == 0) return false;
      i = (i + 1) & mask_;
    }
    // Backward shift: move later entries of the probe run into the hole when their home slot
    // is not between the hole and where they sit, so every lookup still finds them.
    size_t hole = i;
    for (size_t j = (i + 1) & mask_; slots_[j].key != 0; j = (j + 1) & mask_) {
      const size_t home = Home(slots_[j].key);
      const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (!stays) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = Slot();
    --size_;
    return true;
  }

  // Asks the CPU to bring the slot `key` would be found in into the cache.
  void Prefetch(uint64_t key) const { __builtin_prefetch(&slots_[Home(Normal(key))]); }

  size_t size() const { return size_; }

 private:
  static constexpr size_t kCapacityMin = 1024;
  struct Slot {
    uint64_t key = 0;  // 0: empty
    int64_t value = 0;
  };
  // `count` empty slots (count a power of two), on huge pages from 2 MiB up (see above).
  class Slots {
   public:
    explicit Slots(size_t count) : count_(count) {
      const size_t bytes = count * sizeof(Slot);
      const bool huge = bytes >= kHugePageBytes;
      // A power of two of at least 16 KiB: a multiple of either alignment, as aligned_alloc
      // wants.
      data_ = static_cast<Slot*>(std::aligned_alloc(huge ? kHugePageBytes : 64, bytes));
      CHECK(data_ != nullptr) << "IdTable: out of memory for " << count << " slots";
      // Advice only: where the kernel gives no huge pages, small ones work the same.
      if (huge) madvise(data_, bytes, MADV_HUGEPAGE);
      std::memset(static_cast<void*>(data_), 0, bytes);
    }
    Slots(Slots&& other) noexcept { *this = std::move(other); }
    Slots& operator=(Slots&& other) noexcept {
      std::swap(data_, other.data_);
      std::swap(count_, other.count_);
      return *this;
    }
    ~Slots() { std::free(data_); }
    Slot& operator[](size_t i) { return data_[i]; }
    const Slot& operator[](size_t i) const { return data_[i]; }
    size_t size() const { return count_; }

   private:
    static constexpr size_t kHugePageBytes = size_t{2} << 20;
    Slot* data_ = nullptr;
    size_t count_ = 0;
  };
  static uint64_t Normal(uint64_t key) { return key == 0 ? 1 : key; }
  // Keys are hashes already; the high bits are mixed in so that a table that only ever sees the
  // low bits of a poor hash still spreads.
  size_t Home(uint64_t key) const { return (key ^ (key >> 32)) & mask_; }

  void Grow() {
    Slots old(slots_.size() * 2);
    std::swap(old, slots_);
    mask_ = slots_.size() - 1;
    size_ = 0;
    for (size_t i = 0; i < old.size(); ++i) {
      if (old[i].key != 0) Insert(old[i].key, old[i].value);
    }
  }

  Slots slots_;
  size_t mask_;
  size_t size_ = 0;
};

}  // namespace tongka::state_store

#endif  // TONGKA_LIBS_STATE_STORE_ID_TABLE_H_
