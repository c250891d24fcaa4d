// Catching the dedup index up from tongka.txn: the log, not the index, is the truth.
//
// Ingest records a transaction id in its dedup index only after Kafka acknowledged the append,
// in a separate step. A crash between the two (or a failed index write, or a purge at shutdown
// after the broker already had the record) leaves a record in the log that the index does not
// know, and a client's retry would append it a second time. So before serving, ingest re-reads
// the tail of the log that may hold such records and records every transaction in it:
// everything appended since (newest recorded_at in the index − margin), where the margin covers
// how long a record can stay unacknowledged in the producer (kafka_message_timeout) plus clock
// skew. An empty index (a new or lost volume) is rebuilt from the whole dedup horizon.
// Re-recording a known transaction is harmless: same id, same digest.
//
// Thread-safety: call before serving, from one thread. Failure: broker errors come back as
// Status; the service must not serve without a caught-up index.
//
// Example:
//   absl::StatusOr<CatchUpStats> stats = CatchUpDedupIndex(kafka, "tongka.txn", &dedup, since_us,
//                                                          horizon_start_us, absl::Minutes(5));
#ifndef TONGKA_SERVICES_INGEST_DEDUP_CATCH_UP_H_
#define TONGKA_SERVICES_INGEST_DEDUP_CATCH_UP_H_

#include <cstdint>
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
};

// Records every transaction appended to `topic` since `since_us` (UTC microseconds), up to the
// log end as it was when the call started. Entries recorded before `horizon_start_us` are
// skipped (the pruner would delete them). Fails DEADLINE_EXCEEDED after `timeout`.
absl::StatusOr<CatchUpStats> CatchUpDedupIndex(const event_log::KafkaClientConfig& kafka,
                                               const std::string& topic, DedupIndex* dedup,
                                               int64_t since_us, int64_t horizon_start_us,
                                               absl::Duration timeout);

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_DEDUP_CATCH_UP_H_
