#include "tools/sample/sample_flags.h"

#include "absl/flags/flag.h"
#include "libs/service/common_flags.h"

ABSL_FLAG(int32_t, batch_max_records, tongka::sample::SampleConfig().batch_max_records,
          "Records per apply batch.");
ABSL_FLAG(int64_t, commit_max_records, tongka::sample::SampleConfig().commit_max_records,
          "Under a backlog, commit once this many records are pending; 0 = every batch.");
ABSL_FLAG(bool, exit_when_caught_up, false, "Exit once everything in the log is applied.");
ABSL_FLAG(bool, publish, true,
          "Publish the outbox; false only to replay a log that already holds the derived events.");
ABSL_FLAG(bool, summary, false, "Print the state's digest and totals as JSON, then exit.");

namespace tongka::sample {

absl::StatusOr<SampleConfig> ConfigFromFlags() {
  absl::StatusOr<service::CommonConfig> common = service::CommonConfigFromFlags();
  if (!common.ok()) return common.status();
  SampleConfig config;
  service::CopyCommonInto(*common, &config);
  config.batch_max_records = absl::GetFlag(FLAGS_batch_max_records);
  config.commit_max_records = absl::GetFlag(FLAGS_commit_max_records);
  config.exit_when_caught_up = absl::GetFlag(FLAGS_exit_when_caught_up);
  config.publish = absl::GetFlag(FLAGS_publish);
  return config;
}

bool SummaryRequested() { return absl::GetFlag(FLAGS_summary); }

}  // namespace tongka::sample
