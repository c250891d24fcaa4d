#include "tests/testing/platform.h"

#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/record.h"
#include "libs/metrics/test_support.h"
#include "libs/txn/cities.h"
#include "services/ingest/testing/topic_reader.h"

namespace tongka::testing {
namespace {

constexpr int32_t kTxnPartitions = 8;

std::unique_ptr<Subprocess> StartProcess(const std::vector<std::string>& argv,
                                         const std::string& log_name) {
  auto process = Subprocess::Start(argv, {}, TempPath(log_name));
  EXPECT_TRUE(process.ok()) << process.status();
  return process.ok() ? std::move(*process) : nullptr;
}

// The value of `metric` with exactly these labels (in any order), if /metrics shows it.
std::optional<double> Sample(const std::map<std::string, double>& samples,
                             const std::string& metric,
                             const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : samples) {
    if (key == metric && labels.empty()) return value;
    if (key.compare(0, metric.size() + 1, metric + "{") != 0) continue;
    std::map<std::string, std::string> found;
    const std::string body = key.substr(metric.size() + 1, key.size() - metric.size() - 2);
    for (absl::string_view pair : absl::StrSplit(body, ',', absl::SkipEmpty())) {
      const size_t eq = pair.find('=');
      if (eq == absl::string_view::npos) continue;
      absl::string_view quoted = pair.substr(eq + 1);
      if (quoted.size() >= 2) quoted = quoted.substr(1, quoted.size() - 2);
      found[std::string(pair.substr(0, eq))] = std::string(quoted);
    }
    if (found == labels) return value;
  }
  return std::nullopt;
}

}  // namespace

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

// ---- Service ----

void Service::AwaitReady() {
  httplib::Client client("127.0.0.1", metrics_port);
  client.set_connection_timeout(1);
  for (const absl::Time deadline = absl::Now() + absl::Seconds(90); absl::Now() < deadline;) {
    ASSERT_TRUE(process->Running()) << name << " exited:\n" << process->Log();
    httplib::Result ready = client.Get("/readyz");
    if (ready && ready->status == 200) return;
    absl::SleepFor(absl::Milliseconds(50));
  }
  FAIL() << name << " not ready after 90 s:\n" << process->Log();
}

std::map<std::string, double> Service::Metrics() {
  httplib::Client client("127.0.0.1", metrics_port);
  client.set_connection_timeout(1);
  std::map<std::string, double> samples;
  httplib::Result result = client.Get("/metrics");
  if (!result || result->status != 200) return samples;
  for (absl::string_view line : absl::StrSplit(result->body, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
      continue;
    }
    samples[std::string(line.substr(0, space))] = value;
  }
  return samples;
}

void Service::AwaitCommitted(const std::string& loop, const std::string& topic,
                             const std::map<int32_t, int64_t>& ends) {
  std::string behind;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(90); absl::Now() < deadline;) {
    ASSERT_TRUE(process->Running()) << name << " exited:\n" << process->Log();
    const std::map<std::string, double> samples = Metrics();
    behind.clear();
    for (const auto& [partition, end] : ends) {
      const std::optional<double> committed =
          Sample(samples, "tongka_consumer_committed_offset",
                 {{"loop", loop}, {"topic", topic}, {"partition", absl::StrCat(partition)}});
      if (!committed.has_value() || static_cast<int64_t>(*committed) < end) {
        absl::StrAppend(&behind, " ", topic, "/", partition, " at ",
                        committed.has_value() ? absl::StrCat(*committed) : "?", " of ", end);
      }
    }
    const std::optional<double> outbox = Sample(samples, "tongka_outbox_depth_events", {});
    if (!outbox.has_value() || *outbox != 0) absl::StrAppend(&behind, " outbox not empty");
    if (behind.empty()) return;
    absl::SleepFor(absl::Milliseconds(100));
  }
  FAIL() << name << " loop " << loop << " behind after 90 s:" << behind;
}

// ---- Platform ----

Platform::Platform(PlatformOptions options) : options_(std::move(options)) {}

Platform::~Platform() = default;

void Platform::Start() {
  std::filesystem::remove_all(TempPath("kafka"));
  auto kafka = event_log::LocalKafka::Start(TempPath("kafka"));
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  kafka_ = *std::move(kafka);
  const std::string& bootstrap = kafka_->bootstrap();
  ASSERT_TRUE(
      event_log::EnsureTopics({.bootstrap_servers = bootstrap},
                              {{.name = kTxnTopic, .partitions = kTxnPartitions},
                               {.name = "tongka.txn.conflicts", .partitions = kTxnPartitions},
                               {.name = kCardsTopic, .partitions = kTxnPartitions},
                               {.name = kMembersTopic, .partitions = 1},
                               {.name = kSettlementTopic, .partitions = 4}},
                              absl::Seconds(60))
          .ok());
  // Every partition answers its watermarks before a service starts: a fresh topic's leader may
  // take a moment after creation.
  for (const char* topic :
       {kTxnTopic, "tongka.txn.conflicts", kCardsTopic, kMembersTopic, kSettlementTopic}) {
    absl::StatusOr<std::vector<event_log::Record>> read;
    for (const absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;) {
      read = ingest::testing::ReadTopic(bootstrap, topic, absl::Seconds(5));
      if (read.ok()) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_TRUE(read.ok()) << topic << ": " << read.status();
  }
  std::ofstream(TempPath("dev_token_secret")) << options_.dev_token_secret << "\n";
  {
    // A development holder key per member city, as tools/run_platform.sh writes them.
    std::ofstream keys(TempPath("holder_keys"));
    for (const txn::City& city : txn::MemberCities()) {
      keys << city.code << ":00112233445566778899aabbcc" << city.code << "\n";
    }
  }
  Launch(ingest_, "services/ingest/tongka_ingest", {});
  Launch(settlement_, "services/settlement/tongka_settlement",
         {"--schedule_close=false", "--fee_schedule=default:50"});
  Launch(registry_, "services/card_registry/tongka_card_registry",
         {"--holder_keys=" + TempPath("holder_keys")});
  for (Service* service : {&ingest_, &settlement_, &registry_}) {
    ASSERT_NE(service->process, nullptr);
    service->AwaitReady();
    if (::testing::Test::HasFatalFailure()) return;
  }
  settlement_stub_ = v1::SettlementService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", settlement_.grpc_port), grpc::InsecureChannelCredentials()));
  registry_stub_ = v1::CardRegistryService::NewStub(
      grpc::CreateChannel(registry_target(), grpc::InsecureChannelCredentials()));
}

void Platform::Launch(Service& service, const std::string& binary,
                      const std::vector<std::string>& extra_flags) {
  service.grpc_port = metrics::test_support::PickFreeTcpPort();
  service.metrics_port = metrics::test_support::PickFreeTcpPort();
  std::vector<std::string> argv = {binary,
                                   "--state_dir=" + TempPath(service.name),
                                   absl::StrCat("--grpc_port=", service.grpc_port),
                                   absl::StrCat("--metrics_port=", service.metrics_port),
                                   "--kafka_bootstrap=" + kafka_->bootstrap(),
                                   "--grpc_host=127.0.0.1",
                                   "--metrics_host=127.0.0.1",
                                   "--auth=dev",
                                   "--dev_token_secret_file=" + TempPath("dev_token_secret")};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  service.process = StartProcess(argv, service.name + ".log");
}

void Platform::Stop() {
  for (Service* service : {&ingest_, &settlement_, &registry_}) {
    service->process->TerminateAndWait(absl::Seconds(20));
  }
}

std::string Platform::ingest_target() const {
  return absl::StrCat("127.0.0.1:", ingest_.grpc_port);
}

std::string Platform::registry_target() const {
  return absl::StrCat("127.0.0.1:", registry_.grpc_port);
}

std::map<uint32_t, v1::FloatPosition> Platform::Float() {
  v1::GetFloatResponse response;
  const grpc::Status status =
      Call(*settlement_stub_, server::MinistryTenant(), &v1::SettlementService::Stub::GetFloat,
           v1::GetFloatRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  std::map<uint32_t, v1::FloatPosition> positions;
  for (const v1::FloatPosition& position : response.issuers()) {
    positions[position.issuer_city()] = position;
  }
  return positions;
}

v1::GetIssuerBalancesResponse Platform::Balances(uint32_t issuer) {
  v1::GetIssuerBalancesRequest request;
  request.set_issuer_city(issuer);
  v1::GetIssuerBalancesResponse response;
  const grpc::Status status =
      Call(*registry_stub_, server::MinistryTenant(),
           &v1::CardRegistryService::Stub::GetIssuerBalances, request, &response);
  EXPECT_TRUE(status.ok()) << issuer << ": " << status.error_message();
  return response;
}

std::optional<v1::CardView> Platform::GetCard(const std::string& card_id,
                                              const v1::Tenant& tenant) {
  v1::GetCardRequest request;
  request.set_card_id(card_id);
  v1::GetCardResponse response;
  const grpc::Status status =
      Call(*registry_stub_, tenant, &v1::CardRegistryService::Stub::GetCard, request, &response);
  EXPECT_TRUE(status.ok()) << card_id << ": " << status.error_message();
  if (!status.ok()) return std::nullopt;
  return response.card();
}

std::map<int32_t, int64_t> Platform::LogEnds(const std::string& topic) {
  auto records = ingest::testing::ReadTopic(bootstrap(), topic, absl::Seconds(60));
  EXPECT_TRUE(records.ok()) << records.status();
  std::map<int32_t, int64_t> ends;
  if (!records.ok()) return ends;
  for (const event_log::Record& record : *records) {
    int64_t& end = ends[record.partition];
    end = std::max(end, record.offset + 1);
  }
  return ends;
}

void Platform::RunTapgen(const std::vector<std::string>& flags, const std::string& log_name,
                         std::unique_ptr<Subprocess>* exited) {
  std::vector<std::string> argv = {"tools/tapgen/tapgen",
                                   "--dev_token_secret=" + options_.dev_token_secret};
  argv.insert(argv.end(), flags.begin(), flags.end());
  std::unique_ptr<Subprocess> tapgen = StartProcess(argv, log_name);
  ASSERT_NE(tapgen, nullptr);
  const int status = tapgen->Wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << tapgen->Log();
  if (exited != nullptr) *exited = std::move(tapgen);
}

// ---- tapgen's files ----

std::vector<CardFile> ReadCards(const std::string& path) {
  std::vector<CardFile> cards;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> fields = absl::StrSplit(line, ',');
    CardFile card;
    int64_t counter = 0;
    EXPECT_TRUE(fields.size() == 6 && absl::SimpleAtoi(fields[1], &card.issuer) &&
                absl::SimpleAtoi(fields[3], &card.initial_balance_fen) &&
                absl::SimpleAtoi(fields[4], &counter))
        << line;
    card.card_id = fields[0];
    card.initial_counter = static_cast<uint32_t>(counter);
    cards.push_back(card);
  }
  return cards;
}

std::set<std::string> ReadAcked(const std::string& path) {
  std::set<std::string> acked;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) acked.insert(line);
  }
  return acked;
}

}  // namespace tongka::testing
