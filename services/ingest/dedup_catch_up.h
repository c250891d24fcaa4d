// Catching the dedup index up from tongka.txn: the log, not the index, is the truth.
//
// Ingest records a transaction id in its dedup index only after Kafka acknowledged the append,
// in a separate step. A crash between the two (or a failed index write, or a purge at shutdown
// after the broker already had the record) leaves a record in the log that the index does not
// know, and a client's retry would append it a second time. So before serving, ingest re-reads
// the tail of the log that may hold such records and records every transaction in it:
// everything appended since (newest recorded_at in the index − margin), or since (the index's
// catch-up mark − margin) when that is earlier, where the margin covers how long a record can stay
// unacknowledged in the producer (kafka_message_timeout) plus clock skew. An empty index (a new
// or lost volume) is rebuilt from the whole dedup horizon. Re-recording a known transaction is
// harmless: same id, same digest.
//
// A catch-up that stops partway (a crash, its timeout) must resume where it had got to in every
// partition, not after the entries its fastest partition recorded: CatchUpBeforeServing keeps
// the progress CatchUpDedupIndex reports as the index's catch-up mark.
//
// Thread-safety: call before serving, from one thread. Failure: broker errors come back as
// Status; the service must not serve without a caught-up index.
//
// Example:
//   absl::StatusOr<CatchUpStats> stats = CatchUpBeforeServing(
//       kafka, "tongka.txn", &dedup,
//       {.now = absl::Now(), .horizon = absl::Hours(24 * 30), .margin = absl::Minutes(6),
//        .timeout = absl::Minutes(10)});
#ifndef TONGKA_SERVICES_INGEST_DEDUP_CATCH_UP_H_
#define TONGKA_SERVICES_INGEST_DEDUP_CATCH_UP_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/event_log/kafka_config.h"
#include "services/ingest/dedup_index.h"

namespace tongka::ingest {

struct CatchUpStats {
  int64_t records_read = 0;  // records in the replayed tail
  int64_t recorded = 0;      // transactions (re-)recorded in the index
  int64_t skipped = 0;       // not transactions, or older than the horizon
  absl::Time since;          // where the replay started (CatchUpBeforeServing)
};

struct CatchUpWindow {
  absl::Time now;          // the platform clock
  absl::Duration horizon;  // the dedup horizon
  // How long a record can wait in the producer before Kafka acknowledges it
  // (kafka_message_timeout), plus the skew allowed between producer and recorded_at clocks.
  absl::Duration margin;
  absl::Duration timeout;  // for the whole catch-up
};

// What ingest runs before it serves: the replay from the index's newest entry − margin, or from
// its catch-up mark − margin when that is earlier, or (an empty index) from the whole horizon,
// never before the horizon. The mark holds the start until the replay has got further, then its
// progress, and is cleared once everything is replayed.
absl::StatusOr<CatchUpStats> CatchUpBeforeServing(const event_log::KafkaClientConfig& kafka,
                                                  const std::string& topic, DedupIndex* dedup,
                                                  const CatchUpWindow& window);

// How far a catch-up has got: after each commit to the index, the least over the partitions still
// being replayed of the newest recorded_at replayed in each (once each has replayed an event).
// Every record not replayed yet was appended after those, so it was recorded no earlier than
// this minus how long a record can wait in the producer. An error stops the catch-up.
using CatchUpProgressFn = std::function<absl::Status(int64_t replayed_through_us)>;

// That progress: the least of `newest_replayed_us` (partition -> newest recorded_at replayed)
// over the partitions in `still_replaying` (partition -> next offset), nullopt while one of them
// has replayed no event, or when none is left.
std::optional<int64_t> ReplayedThroughUs(const std::map<int32_t, int64_t>& newest_replayed_us,
                                         const std::map<int32_t, int64_t>& still_replaying);

// Records every transaction appended to `topic` since `since_us` (UTC microseconds), up to the
// log end as it was when the call started. Entries recorded before `horizon_start_us` are
// skipped (the pruner would delete them). Fails DEADLINE_EXCEEDED after `timeout`.
absl::StatusOr<CatchUpStats> CatchUpDedupIndex(const event_log::KafkaClientConfig& kafka,
                                               const std::string& topic, DedupIndex* dedup,
                                               int64_t since_us, int64_t horizon_start_us,
                                               absl::Duration timeout,
                                               const CatchUpProgressFn& on_progress = nullptr);

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_DEDUP_CATCH_UP_H_
