// The sample's own flags and SampleConfig from them. The common ones (--kafka_*, --state_dir,
// --metrics_*, --replica_*) are libs/service's; the sample serves no gRPC, so it has no --grpc_*,
// --auth or --tls_* flags.
//
// Flags: --batch_max_records, --commit_max_records, --exit_when_caught_up, --publish (see
// SampleConfig), and --summary (print the store's digest and totals as JSON, then exit).
// Thread-safety: call after absl::ParseCommandLine, from main. Failure: INVALID_ARGUMENT naming
// the flag.
#ifndef TONGKA_TOOLS_SAMPLE_SAMPLE_FLAGS_H_
#define TONGKA_TOOLS_SAMPLE_SAMPLE_FLAGS_H_

#include "absl/status/statusor.h"
#include "tools/sample/sample_app.h"

namespace tongka::sample {

absl::StatusOr<SampleConfig> ConfigFromFlags();
// --summary: inspect the store at --state_dir instead of running.
bool SummaryRequested();

}  // namespace tongka::sample

#endif  // TONGKA_TOOLS_SAMPLE_SAMPLE_FLAGS_H_
