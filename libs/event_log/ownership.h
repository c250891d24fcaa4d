// Static partition ownership: replica k of N owns the partitions p with p % N == k.
//
// Tongka assigns partitions statically instead of through consumer-group rebalancing, so that each
// replica's RocksDB holds exactly the partitions it owns and a restart never moves state. Changing
// N moves partitions; the new owner rebuilds them from the log.
//
// Records are placed by murmur2 of their key (librdkafka's murmur2_random, Kafka's Java default),
// so every consumer can tell which partition a keyed record belongs in.
//
// Example: OwnedPartitions(8, 1, 3) == {1, 4, 7}; PartitionForKey("3100001234", 8) is where the
// producer put that card's records.
#ifndef TONGKA_LIBS_EVENT_LOG_OWNERSHIP_H_
#define TONGKA_LIBS_EVENT_LOG_OWNERSHIP_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tongka::event_log {

inline absl::StatusOr<std::vector<int32_t>> OwnedPartitions(int32_t partition_count,
                                                            int32_t replica_index,
                                                            int32_t replica_count) {
  if (replica_count < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica_count: must be >= 1, got ", replica_count));
  }
  if (replica_index < 0 || replica_index >= replica_count) {
    return absl::InvalidArgumentError(
        absl::StrCat("replica_index: must be in [0, ", replica_count, "), got ", replica_index));
  }
  if (partition_count < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition_count: must be >= 1, got ", partition_count));
  }
  std::vector<int32_t> owned;
  for (int32_t p = replica_index; p < partition_count; p += replica_count) owned.push_back(p);
  return owned;
}

// The partition Tongka's producers write a record with this (non-empty) key to, among
// `partition_count` >= 1: murmur2 as Kafka's Java client and librdkafka compute it (record.cc).
int32_t PartitionForKey(absl::string_view key, int32_t partition_count);

}  // namespace tongka::event_log

#endif  // TONGKA_LIBS_EVENT_LOG_OWNERSHIP_H_
