// tongka_sample: the runtime's sample service (see sample_app.h). Wiring only.
#include <glog/logging.h>

#include <iostream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "libs/server/grpc_server.h"
#include "tools/sample/sample_app.h"
#include "tools/sample/summary.h"

ABSL_FLAG(std::string, kafka_bootstrap, "", "Kafka bootstrap servers, host:port[,host:port].");
ABSL_FLAG(std::string, kafka_ca, "", "Kafka TLS: PEM file of the cluster CA (empty: plaintext).");
ABSL_FLAG(std::string, kafka_cert, "", "Kafka TLS: PEM file of this client's certificate.");
ABSL_FLAG(std::string, kafka_key, "", "Kafka TLS: PEM file of this client's private key.");
ABSL_FLAG(std::string, state_dir, "", "RocksDB directory of this replica.");
ABSL_FLAG(int32_t, replica_index, 0, "This replica's index k: owns partitions p % N == k.");
ABSL_FLAG(int32_t, replica_count, 1, "Number of replicas N.");
ABSL_FLAG(int32_t, metrics_port, 0, "Port of /metrics; 0 = any free port, -1 = off.");
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
  tongka::sample::SampleConfig config{
      .kafka_bootstrap = absl::GetFlag(FLAGS_kafka_bootstrap),
      .kafka_ca = absl::GetFlag(FLAGS_kafka_ca),
      .kafka_cert = absl::GetFlag(FLAGS_kafka_cert),
      .kafka_key = absl::GetFlag(FLAGS_kafka_key),
      .state_dir = absl::GetFlag(FLAGS_state_dir),
      .replica_index = absl::GetFlag(FLAGS_replica_index),
      .replica_count = absl::GetFlag(FLAGS_replica_count),
      .metrics_port = absl::GetFlag(FLAGS_metrics_port),
      .batch_max_records = absl::GetFlag(FLAGS_batch_max_records),
      .commit_max_records = absl::GetFlag(FLAGS_commit_max_records),
      .exit_when_caught_up = absl::GetFlag(FLAGS_exit_when_caught_up),
      .publish = absl::GetFlag(FLAGS_publish)};
  if (absl::GetFlag(FLAGS_summary)) return tongka::sample::PrintSummary(config.state_dir);
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
