// Test helper: everything a topic holds right now, read with the runtime's PartitionConsumer
// from offset 0 of every partition up to the high watermarks asked of the broker. The records
// are owned copies (Record::Clone), independent of the consumer.
//
// Thread-safety: one call per thread. Failure: the first consumer error, or DEADLINE_EXCEEDED if
// the records up to the watermarks do not arrive within `timeout`.
//
// Example:
//   absl::StatusOr<std::vector<event_log::Record>> records =
//       ReadTopic(broker->bootstrap(), "tongka.txn", absl::Seconds(30));
#ifndef TONGKA_SERVICES_INGEST_TESTING_TOPIC_READER_H_
#define TONGKA_SERVICES_INGEST_TESTING_TOPIC_READER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/event_log/record.h"

namespace tongka::ingest::testing {

absl::StatusOr<std::vector<event_log::Record>> ReadTopic(const std::string& bootstrap,
                                                         const std::string& topic,
                                                         absl::Duration timeout);

}  // namespace tongka::ingest::testing

#endif  // TONGKA_SERVICES_INGEST_TESTING_TOPIC_READER_H_
