// tongka_sample: the runtime's sample service (see sample_app.h). Wiring only.
#include <glog/logging.h>

#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "libs/server/grpc_server.h"
#include "libs/service/common_flags.h"
#include "tools/sample/sample_app.h"
#include "tools/sample/summary.h"

// The sample's own flags. The common ones (--kafka_*, --state_dir, --metrics_*, --replica_*) are
// libs/service's; the sample serves no gRPC, so it has no --grpc_*, --auth or --tls_* flags.
ABSL_FLAG(int32_t, batch_max_records, tongka::sample::SampleConfig().batch_max_records,
          "Records per apply batch.");
ABSL_FLAG(int64_t, commit_max_records, tongka::sample::SampleConfig().commit_max_records,
          "Under a backlog, commit once this many records are pending; 0 = every batch.");
ABSL_FLAG(bool, exit_when_caught_up, false, "Exit once everything in the log is applied.");
ABSL_FLAG(bool, publish, true,
          "Publish the outbox; false only to replay a log that already holds the derived events.");
ABSL_FLAG(bool, summary, false, "Print the state's digest and totals as JSON, then exit.");

int main(int argc, char** argv) {
  tongka::server::BlockShutdownSignals();  // before any thread exists
  absl::ParseCommandLine(argc, argv);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  // --summary inspects a store and needs --state_dir alone.
  if (absl::GetFlag(FLAGS_summary)) {
    return tongka::sample::PrintSummary(tongka::service::ReadCommonFlags().state_dir);
  }
  absl::StatusOr<tongka::service::CommonConfig> common = tongka::service::CommonConfigFromFlags();
  if (!common.ok()) {
    LOG(ERROR) << "tongka_sample cannot start: " << common.status();
    return 2;
  }
  tongka::sample::SampleConfig config{
      .kafka_bootstrap = common->kafka_bootstrap,
      .kafka_ca = common->kafka_ca_path,
      .kafka_cert = common->kafka_cert_path,
      .kafka_key = common->kafka_key_path,
      .state_dir = common->state_dir,
      .replica_index = common->replica_index,
      .replica_count = common->replica_count,
      .metrics_host = common->metrics_host,
      .metrics_port = common->metrics_port,
      .batch_max_records = absl::GetFlag(FLAGS_batch_max_records),
      .commit_max_records = absl::GetFlag(FLAGS_commit_max_records),
      .exit_when_caught_up = absl::GetFlag(FLAGS_exit_when_caught_up),
      .publish = absl::GetFlag(FLAGS_publish)};
  auto app = tongka::sample::SampleApp::Create(config);
  if (!app.ok()) {
    LOG(ERROR) << "tongka_sample cannot start: " << app.status();
    return 2;
  }
  std::atomic<bool> stop{false};
  std::thread([&stop] {
    LOG(INFO) << "signal " << tongka::server::WaitForShutdownSignal() << ": stopping";
    stop.store(true);
  }).detach();
  absl::Status status = (*app)->Run(stop);
  if (!status.ok()) LOG(ERROR) << "tongka_sample stopped on error: " << status;
  return status.ok() ? 0 : 1;
}
