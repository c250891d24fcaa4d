#include "libs/event_log/testing/test_broker.h"

#include <glog/logging.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <array>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "libs/event_log/admin.h"

namespace tongka::event_log {

absl::StatusOr<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::Start(int broker_count) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The mock cluster needs a client instance to host it; this one is otherwise unused.
  rd_kafka_conf_set(conf, "log_level", "3", error, sizeof(error));
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  if (handle == nullptr) return absl::InternalError(absl::StrCat("mock host client: ", error));
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(handle, broker_count);
  if (cluster == nullptr) {
    rd_kafka_destroy(handle);
    return absl::InternalError("rd_kafka_mock_cluster_new failed");
  }
  return std::unique_ptr<EmbeddedBroker>(new EmbeddedBroker(handle, cluster));
}

EmbeddedBroker::EmbeddedBroker(rd_kafka_t* handle, rd_kafka_mock_cluster_t* cluster)
    : handle_(handle), cluster_(cluster), bootstrap_(rd_kafka_mock_cluster_bootstraps(cluster)) {}

EmbeddedBroker::~EmbeddedBroker() {
  rd_kafka_mock_cluster_destroy(cluster_);
  rd_kafka_destroy(handle_);
}

absl::Status EmbeddedBroker::CreateTopic(const std::string& name, int32_t partitions) {
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("mock topic ", name, ": ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

absl::Status EmbeddedBroker::SetDown(bool down) {
  rd_kafka_resp_err_t err = down ? rd_kafka_mock_broker_set_down(cluster_, -1)
                                 : rd_kafka_mock_broker_set_up(cluster_, -1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("mock broker set_down: ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

namespace {

// tools/kafka/kafka.sh, found through the TONGKA_KAFKA_SH override or the runfiles tree that
// `bazel test` and `bazel run` start in.
std::string KafkaScript() {
  if (const char* path = std::getenv("TONGKA_KAFKA_SH"); path != nullptr) return path;
  return "tools/kafka/kafka.sh";
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalKafka>> LocalKafka::Start(const std::string& data_dir) {
  std::unique_ptr<LocalKafka> kafka(new LocalKafka(data_dir));
  absl::Status status = kafka->Restart();
  if (!status.ok()) return status;
  return kafka;
}

LocalKafka::~LocalKafka() {
  if (running_) {
    absl::Status status = Stop();
    if (!status.ok()) LOG(WARNING) << "stopping the local Kafka broker: " << status;
  }
}

absl::Status LocalKafka::RunScript(const std::string& verb, std::string* output) {
  std::string command = absl::StrCat(KafkaScript(), " ", verb, " '", data_dir_, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError(absl::StrCat("cannot run: ", command));
  std::array<char, 4096> buffer;
  std::string text;
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) text += buffer.data();
  int rc = pclose(pipe);
  if (rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("`", command, "` failed (exit ", WEXITSTATUS(rc),
                     "); run tools/setup.sh to install the JDK and the broker. Output:\n", text));
  }
  if (output != nullptr) *output = text;
  return absl::OkStatus();
}

absl::Status LocalKafka::Restart() {
  std::string output;
  absl::Status status = RunScript("start", &output);
  if (!status.ok()) return status;
  // The script prints the bootstrap address as its last line.
  absl::string_view text = absl::StripTrailingAsciiWhitespace(output);
  size_t newline = text.rfind('\n');
  bootstrap_ = std::string(newline == absl::string_view::npos ? text : text.substr(newline + 1));
  running_ = true;
  return absl::OkStatus();
}

absl::Status LocalKafka::Stop() {
  running_ = false;
  return RunScript("stop", nullptr);
}

absl::Status LocalKafka::CreateTopic(const std::string& name, int32_t partitions) {
  return EnsureTopics({.bootstrap_servers = bootstrap_}, {{.name = name, .partitions = partitions}},
                      absl::Seconds(30));
}

}  // namespace tongka::event_log
