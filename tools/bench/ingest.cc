// Benchmark: the ingest service's sustained accepted rate and ack latency over gRPC, next to the
// raw librdkafka produce rate of the same serialized records, from one run on the real broker.
//
//   bazel run //tools/bench:ingest [-- --transactions=200000 --batch=1000 --concurrency=8
//                                    --kafka_overrides=linger.ms=50 --rpc=stream]
//
// It starts a local Kafka broker and, in this process, the ingest service (IngestApp: dev
// tokens, its own RocksDB dedup index, the idempotent acks=all producer). Each round:
//   1. generates `transactions` signed taps (real SM4-CMACs under the dev keys) for eight member
//      cities, 20% of them on cards of another city, in batches of `batch`; like terminals'
//      offline uploads, each terminal contributes `txns_per_terminal` consecutive sequence
//      numbers to a batch (50,000 terminals per city in rotation);
//   2. raw:    produces the very Event bytes ingest would append (same key, same value) with a
//              bare librdkafka producer built from the same safe config, and waits for every
//              delivery report: the ceiling the log itself sets;
//   3. ingest: `concurrency` gRPC clients (each a city operator, own channel) upload the batches
//              (serialized ahead, as the raw side's records are: the service parses them all);
//              the service validates, verifies every MAC, checks and writes the dedup index,
//              produces, waits for Kafka's acks and answers. Every item must come back ACCEPTED.
//              With --rpc=stream each client writes all its batches down one UploadStream
//              instead (the service serves --stream_window of them at once) and reads the
//              answers as they come: --rpc=stream --concurrency=1 is one high-rate uploader.
//              With --rpc=direct each client calls the service's IngestApi::Upload in this
//              process, the request parsed ahead: everything but gRPC (its client, transport,
//              parsing and response), so set against unary it shows what gRPC costs. Its last
//              line reads direct_rate=, raw_produce_rate=, direct_ratio=: a diagnosis.
// Rates are medians over the rounds (alternating, so load from elsewhere on the machine hits
// both sides); ack latency is the per-batch RPC time over all rounds. Two lines before the last,
// the CPU each side cost per record (medians), in this process and in the broker's JVM:
//   cpu_us_per_record raw: process=<us> broker=<us> ingest: process=<us> broker=<us>
//       idle_cores: process=<cores> broker=<cores>
// (one line; the idle figures are what each used in 2 s with nothing running, which the
// per-record figures include for their phase's length). Last line:
//   ingest_rate=<tx/s> raw_produce_rate=<tx/s> ratio=<ingest/raw> p99_ack_ms=<ms>
// --raw_pace=<ingest rate> holds the raw side to the ingest's rate: its CPU per record is then
// what Kafka alone costs at that rate (the broker's is higher than flat out: its batches and
// wake-ups are smaller). The last line then reads ingest_rate=, raw_paced_rate=, p99_ack_ms=,
// without a ratio: it is a diagnosis, not the benchmark's result.
#include <glog/logging.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/sync_stream.h>
#include <librdkafka/rdkafkacpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/crypto/sm4_lanes.h"
#include "libs/event_log/admin.h"
#include "libs/event_log/kafka_config.h"
#include "libs/event_log/testing/test_broker.h"
#include "libs/server/dev_token.h"
#include "libs/server/tenant.h"
#include "libs/txn/cities.h"
#include "libs/txn/mac_input.h"
#include "libs/txn/upload.h"
#include "proto/ingest.grpc.pb.h"
#include "services/ingest/ingest_app.h"
#include "services/ingest/testing/uploads.h"
#include "services/ingest/validator.h"
#include "tools/bench/bench_support.h"

ABSL_FLAG(int64_t, transactions, 200000, "Transactions per round.");
ABSL_FLAG(int32_t, batch, 1000, "Transactions per UploadBatch call (<= 10000).");
ABSL_FLAG(int32_t, concurrency, 8, "Concurrent gRPC clients.");
ABSL_FLAG(int32_t, partitions, 8, "Partitions of the topics.");
ABSL_FLAG(int32_t, txns_per_terminal, 20,
          "Consecutive transactions of one terminal in a batch (a terminal's offline upload).");
ABSL_FLAG(double, raw_pace, 0,
          "Records per second the raw producer is held to (0: as fast as it can, the baseline of "
          "the ratio). At the ingest rate it shows what Kafka alone costs per record at that "
          "rate; the last line then has no ratio.");
ABSL_FLAG(std::string, rpc, "unary",
          "unary: each client calls UploadBatch, one batch at a time; stream: each client "
          "writes its batches down one UploadStream and reads the answers as they come; "
          "direct: each client calls the service's IngestApi::Upload in this process with the "
          "request parsed ahead, no gRPC (a diagnosis: what gRPC costs; no ratio).");
ABSL_FLAG(int32_t, stream_window, 4, "The service's stream_window (batches of a stream at once).");
ABSL_FLAG(int32_t, rounds, 3, "Alternating raw/ingest rounds; rates are medians.");
ABSL_FLAG(std::string, kafka_overrides, "",
          "Extra librdkafka properties for both producers (the service's and the raw one), "
          "\"name=value,...\" (default: none, as the ingest service runs).");
ABSL_FLAG(std::string, work_dir, "", "Where the broker and the store live (default: a temp dir).");
ABSL_FLAG(bool, sm4_lanes, true,
          "Verify MACs in SIMD lanes where the CPU has them (false: OpenSSL one at a time, to "
          "measure what the lanes give).");
ABSL_FLAG(bool, sm4_gfni, true,
          "Use the GFNI/AVX-512 lanes where the CPU has them (false: the AES-NI lanes).");

namespace tongka::bench {
namespace {

constexpr char kRawTopic[] = "bench.raw";
constexpr char kUploadBatchMethod[] = "/tongka.v1.IngestService/UploadBatch";
constexpr char kUploadStreamMethod[] = "/tongka.v1.IngestService/UploadStream";
constexpr char kSecret[] = "bench-ingest-dev-secret-0123456789";
const uint32_t kCities[] = {310000, 110000, 330100, 330200, 320500, 420100, 510100, 450200};

// CPU seconds (user + system) this process has used: the client, the service and librdkafka, not
// the broker (a separate JVM).
double ProcessCpuSeconds() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// One timed phase: its rate, and the CPU it cost per record in this process and in the broker.
struct Phase {
  double rate = 0;
  double process_us = 0;
  double broker_us = 0;
};

// Measures wall time and CPU (this process's and the broker's) from construction on.
class CpuMeter {
 public:
  struct Used {
    double seconds = 0;
    double process_cpu_seconds = 0;
    double broker_cpu_seconds = -1;  // -1: the broker's could not be read
  };

  explicit CpuMeter(const std::string& work_dir)
      : work_dir_(work_dir),
        start_(absl::Now()),
        process_start_(ProcessCpuSeconds()),
        broker_start_(BrokerCpuSeconds(work_dir)) {}

  Used SoFar() const {
    const double broker_now = BrokerCpuSeconds(work_dir_);
    return {.seconds = absl::ToDoubleSeconds(absl::Now() - start_),
            .process_cpu_seconds = ProcessCpuSeconds() - process_start_,
            .broker_cpu_seconds =
                broker_start_ < 0 || broker_now < 0 ? -1 : broker_now - broker_start_};
  }

  // The phase that produced `records` since construction.
  Phase Finish(int64_t records) const {
    const Used used = SoFar();
    const double per_record = 1e6 / static_cast<double>(std::max<int64_t>(1, records));
    return {.rate = static_cast<double>(records) / used.seconds,
            .process_us = used.process_cpu_seconds * per_record,
            .broker_us = used.broker_cpu_seconds < 0 ? -1 : used.broker_cpu_seconds * per_record};
  }

 private:
  const std::string work_dir_;
  const absl::Time start_;
  const double process_start_;
  const double broker_start_;
};

// Cores each side uses while nothing runs (broker -1: unreadable).
struct IdleCpu {
  double process_cores = 0;
  double broker_cores = -1;
};

IdleCpu MeasureIdle(const std::string& work_dir, absl::Duration length) {
  const CpuMeter meter(work_dir);
  absl::SleepFor(length);
  const CpuMeter::Used used = meter.SoFar();
  return {
      .process_cores = used.process_cpu_seconds / used.seconds,
      .broker_cores = used.broker_cpu_seconds < 0 ? -1 : used.broker_cpu_seconds / used.seconds};
}

struct Round {
  // Batch b belongs to client b % concurrency: its UploadBatchRequest, serialized ahead, as the
  // raw side's records are (a terminal or clearing system serializes on its own machine; here
  // the clients share the service's two cores).
  std::vector<grpc::ByteBuffer> requests;
  // The same requests parsed, for --rpc=direct only.
  std::vector<v1::UploadBatchRequest> parsed;
  std::vector<int> batch_sizes;
  std::vector<std::pair<std::string, std::string>> records;  // key, Event bytes (raw side)
};

Round Generate(const txn::CityKeyring& keyring, int64_t first_seq, int64_t n, int32_t batch,
               int32_t concurrency) {
  Round round;
  const absl::Time now = absl::Now();
  const int64_t batches = (n + batch - 1) / batch;
  round.records.reserve(n);
  for (int64_t b = 0; b < batches; ++b) {
    const uint32_t city = kCities[(b % concurrency) % std::size(kCities)];
    v1::UploadBatchRequest request;
    request.set_batch_id(absl::StrCat(first_seq, "/", b));
    for (int64_t i = b * batch; i < std::min(n, (b + 1) * batch); ++i) {
      const uint64_t seq = static_cast<uint64_t>(first_seq + i);
      const bool cross = i % 5 == 0;
      v1::TransactionUpload upload = ingest::testing::SignedTap(
          keyring, {.acquirer_city = city,
                    .issuer_city = cross ? kCities[(b + 1) % std::size(kCities)] : city,
                    .card_serial = seq % 1000003 + 1,
                    .terminal_serial = static_cast<uint32_t>(
                        (seq / absl::GetFlag(FLAGS_txns_per_terminal)) % 50000 + 1),
                    .seq = seq,
                    .amount_fen = 200 + static_cast<int64_t>(seq % 300),
                    .balance_before_fen = 100000,
                    .occurred_at = now - absl::Seconds(30)});
      ingest::Verdict verdict;
      verdict.event_id = txn::TxnEventId(upload.tap().txn().terminal_id(), seq);
      round.records.emplace_back(
          upload.tap().txn().card_id(),
          ingest::BuildTxnEvent(upload, server::CityTenant(city), verdict, now)
              .SerializeAsString());
      *request.add_transactions() = std::move(upload);
    }
    grpc::Slice bytes(request.SerializeAsString());
    round.requests.emplace_back(&bytes, 1);
    round.batch_sizes.push_back(request.transactions_size());
    if (absl::GetFlag(FLAGS_rpc) == "direct") round.parsed.push_back(std::move(request));
  }
  return round;
}

class CountingDr : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    if (message.err() != RdKafka::ERR_NO_ERROR) {
      LOG(FATAL) << "raw delivery failed: " << message.errstr();
    }
    delivered.fetch_add(1, std::memory_order_relaxed);
  }
  std::atomic<int64_t> delivered{0};
};

// --kafka_overrides as librdkafka properties.
std::map<std::string, std::string> KafkaOverrides() {
  std::map<std::string, std::string> overrides;
  for (absl::string_view entry :
       absl::StrSplit(absl::GetFlag(FLAGS_kafka_overrides), ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> property = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    overrides[property.first] = property.second;
  }
  return overrides;
}

// Produces every record with a bare librdkafka producer.
Phase RawProduce(const std::string& bootstrap, const std::string& work_dir, const Round& round) {
  CountingDr dr;
  auto conf = event_log::BuildProducerConf(
      {.bootstrap_servers = bootstrap, .overrides = KafkaOverrides()}, &dr);
  ExitUnlessOk(conf.status(), "raw producer conf");
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  CHECK(producer != nullptr) << error;
  std::unique_ptr<RdKafka::Topic> topic(
      RdKafka::Topic::create(producer.get(), kRawTopic, nullptr, error));
  CHECK(topic != nullptr) << error;
  const CpuMeter meter(work_dir);
  const double pace = absl::GetFlag(FLAGS_raw_pace);
  const absl::Time paced_start = absl::Now();
  int64_t sent = 0;
  for (const auto& [key, value] : round.records) {
    if (pace > 0 && ++sent % 500 == 0) {  // in steps of 500 records, as sleeps are coarse
      const absl::Time due = paced_start + absl::Seconds(sent / pace);
      if (due > absl::Now()) absl::SleepFor(due - absl::Now());
    }
    for (;;) {
      RdKafka::ErrorCode code = producer->produce(
          topic.get(), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
          const_cast<char*>(value.data()), value.size(), &key, nullptr);
      if (code == RdKafka::ERR_NO_ERROR) break;
      CHECK_EQ(code, RdKafka::ERR__QUEUE_FULL) << RdKafka::err2str(code);
      producer->poll(1);
    }
    producer->poll(0);
  }
  CHECK_EQ(producer->flush(120000), RdKafka::ERR_NO_ERROR);
  const Phase phase = meter.Finish(static_cast<int64_t>(round.records.size()));
  CHECK_EQ(dr.delivered.load(), static_cast<int64_t>(round.records.size()));
  LOG(INFO) << "raw: " << round.records.size() << " records at " << phase.rate
            << "/s, CPU per record " << phase.process_us << " us in this process, "
            << phase.broker_us << " us in the broker";
  return phase;
}

// Uploads every batch through gRPC (or, --rpc=direct, straight to `ingest_api`); appends the
// per-batch ack latencies.
Phase Ingest(const std::string& target, ingest::IngestApi* ingest_api, const std::string& work_dir,
             const Round& round, int32_t concurrency, std::vector<double>* latencies_ms) {
  auto issuer = server::DevTokenIssuer::Create(kSecret);
  ExitUnlessOk(issuer.status(), "dev tokens");
  std::atomic<int64_t> accepted{0};
  absl::Mutex mu;
  std::vector<std::thread> clients;
  const bool stream_mode = absl::GetFlag(FLAGS_rpc) == "stream";
  const bool direct_mode = absl::GetFlag(FLAGS_rpc) == "direct";
  const CpuMeter meter(work_dir);
  for (int32_t c = 0; c < concurrency; ++c) {
    clients.emplace_back([&, c] {
      const uint32_t city = kCities[c % std::size(kCities)];
      const std::string token =
          *issuer->Issue(server::CityTenant(city), absl::Now() + absl::Hours(1));
      grpc::ChannelArguments args;
      args.SetMaxSendMessageSize(64 << 20);
      args.SetInt("grpc.use_local_subchannel_pool", 1);  // one connection per client
      std::shared_ptr<grpc::Channel> channel =
          grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
      // IngestService.UploadBatch with the request already serialized: the call the generated
      // stub makes (grpc::internal, as the stub itself uses it), minus serializing the request.
      const grpc::internal::RpcMethod upload_batch(kUploadBatchMethod,
                                                   grpc::internal::RpcMethod::NORMAL_RPC, channel);
      std::vector<size_t> batches;  // this client's, in sending order
      for (size_t b = c; b < round.requests.size(); b += concurrency) batches.push_back(b);
      auto check = [&](size_t b, const v1::UploadBatchResponse& response) {
        CHECK_EQ(response.accepted(), round.batch_sizes[b])
            << "batch " << b << ": rejected " << response.rejected() << " ("
            << (response.rejected() > 0 ? response.results(0).rule() : "") << ")";
        accepted.fetch_add(response.accepted());
      };
      std::vector<double> mine;
      if (direct_mode) {
        for (size_t b : batches) {
          const absl::Time sent = absl::Now();
          absl::StatusOr<v1::UploadBatchResponse> response = ingest_api->Upload(
              server::CityTenant(city), round.parsed[b], absl::Now() + absl::Seconds(60));
          mine.push_back(absl::ToDoubleMilliseconds(absl::Now() - sent));
          CHECK(response.ok()) << response.status();
          check(b, *response);
        }
      } else if (stream_mode) {
        // One stream: a writer thread sends every batch (flow control holds it back), this
        // thread reads the answers in order; latency is from each write to its answer.
        grpc::ClientContext context;
        server::AttachDevToken(&context, token);
        const grpc::internal::RpcMethod upload_stream(
            kUploadStreamMethod, grpc::internal::RpcMethod::BIDI_STREAMING, channel);
        std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, v1::UploadBatchResponse>> stream(
            grpc::internal::ClientReaderWriterFactory<
                grpc::ByteBuffer, v1::UploadBatchResponse>::Create(channel.get(), upload_stream,
                                                                   &context));
        std::vector<std::atomic<int64_t>> sent_ns(batches.size());
        std::thread writer([&] {
          for (size_t k = 0; k < batches.size(); ++k) {
            sent_ns[k].store(absl::GetCurrentTimeNanos());
            if (!stream->Write(round.requests[batches[k]])) break;  // Finish says why
          }
          stream->WritesDone();
        });
        v1::UploadBatchResponse response;
        for (size_t k = 0; k < batches.size() && stream->Read(&response); ++k) {
          mine.push_back((absl::GetCurrentTimeNanos() - sent_ns[k].load()) / 1e6);
          check(batches[k], response);
        }
        writer.join();
        grpc::Status status = stream->Finish();
        CHECK(status.ok()) << status.error_code() << " " << status.error_message();
        CHECK_EQ(mine.size(), batches.size()) << "the stream ended early";
      } else {
        for (size_t b : batches) {
          grpc::ClientContext context;
          server::AttachDevToken(&context, token);
          v1::UploadBatchResponse response;
          const absl::Time sent = absl::Now();
          grpc::Status status =
              grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, v1::UploadBatchResponse>(
                  channel.get(), upload_batch, &context, round.requests[b], &response);
          mine.push_back(absl::ToDoubleMilliseconds(absl::Now() - sent));
          CHECK(status.ok()) << status.error_code() << " " << status.error_message();
          check(b, response);
        }
      }
      absl::MutexLock lock(&mu);
      latencies_ms->insert(latencies_ms->end(), mine.begin(), mine.end());
    });
  }
  for (std::thread& t : clients) t.join();
  const Phase phase = meter.Finish(accepted.load());
  LOG(INFO) << "ingest: " << accepted.load() << " accepted at " << phase.rate
            << "/s, CPU per transaction " << phase.process_us
            << " us in this process (clients + service), " << phase.broker_us
            << " us in the broker";
  return phase;
}

int Main() {
  crypto::internal::sm4_lanes_disabled_for_testing = !absl::GetFlag(FLAGS_sm4_lanes);
  crypto::internal::sm4_gfni_disabled_for_testing = !absl::GetFlag(FLAGS_sm4_gfni);
  const int64_t n = absl::GetFlag(FLAGS_transactions);
  const int32_t batch = std::clamp(absl::GetFlag(FLAGS_batch), 1, ingest::kBatchSizeMax);
  const int32_t concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const int32_t partitions = absl::GetFlag(FLAGS_partitions);
  for (uint32_t city : kCities) CHECK(txn::FindCity(city) != nullptr) << city;
  std::string work_dir = absl::GetFlag(FLAGS_work_dir);
  std::unique_ptr<event_log::LocalKafka> kafka =
      StartBroker(&work_dir, {{.name = ingest::kTxnTopic, .partitions = partitions},
                              {.name = ingest::kConflictTopic, .partitions = partitions},
                              {.name = ingest::kMembersTopic, .partitions = 1},
                              {.name = kRawTopic, .partitions = partitions}});
  const std::string bootstrap = kafka->bootstrap();

  ingest::IngestConfig config;
  config.kafka_bootstrap = bootstrap;
  config.kafka_overrides = KafkaOverrides();
  config.state_dir = work_dir + "/ingest";
  std::filesystem::remove_all(config.state_dir);
  config.grpc.listen_address = "127.0.0.1:0";
  config.grpc.auth_mode = server::AuthMode::kDevToken;
  config.grpc.dev_token_secret = kSecret;
  config.grpc.max_message_bytes = 64 << 20;
  config.metrics_port = -1;
  config.ack_timeout = absl::Seconds(60);
  config.stream_window = absl::GetFlag(FLAGS_stream_window);
  const std::string rpc = absl::GetFlag(FLAGS_rpc);
  if (rpc != "unary" && rpc != "stream" && rpc != "direct") {
    std::cerr << "--rpc must be unary, stream or direct, got " << rpc << std::endl;
    return 2;
  }
  auto app = ingest::IngestApp::Create(config);
  ExitUnlessOk(app.status(), "ingest");
  const std::string target = absl::StrCat("127.0.0.1:", (*app)->grpc_port());
  const txn::CityKeyring keyring = *txn::CityKeyring::Dev();

  // Warm-up, one whole round: connections, topic metadata, the terminal-key cache of the
  // cities' terminals, and the broker's JIT (compiling still during a short warm-up).
  {
    Round warm = Generate(keyring, 1, n, batch, concurrency);
    RawProduce(bootstrap, work_dir, warm);
    std::vector<double> ignored;
    Ingest(target, &(*app)->mutable_ingest_api(), work_dir, warm, concurrency, &ignored);
  }
  // What both sides use while nothing runs: the service's idle threads and the broker's
  // housekeeping, after the warm-up's background work (RocksDB's flushes) has settled.
  absl::SleepFor(absl::Seconds(2));
  const IdleCpu idle = MeasureIdle(work_dir, absl::Seconds(2));
  std::vector<Phase> raw_phases, ingest_phases;
  std::vector<double> latencies_ms;
  for (int32_t r = 0; r < std::max(1, absl::GetFlag(FLAGS_rounds)); ++r) {
    Round round = Generate(keyring, 1000000000LL * (r + 1), n, batch, concurrency);
    raw_phases.push_back(RawProduce(bootstrap, work_dir, round));
    ingest_phases.push_back(
        Ingest(target, &(*app)->mutable_ingest_api(), work_dir, round, concurrency, &latencies_ms));
  }
  (*app)->Shutdown(absl::Now() + absl::Seconds(10));
  // The median of a field over the phases that have it (-1: the broker's CPU could not be read).
  auto median_of = [](const std::vector<Phase>& phases, double Phase::*field) -> std::string {
    std::vector<double> values;
    for (const Phase& phase : phases) {
      if (phase.*field >= 0) values.push_back(phase.*field);
    }
    return values.empty() ? "n/a" : absl::StrFormat("%.2f", Median(values));
  };
  std::vector<double> raw_rates, ingest_rates;
  for (const Phase& phase : raw_phases) raw_rates.push_back(phase.rate);
  for (const Phase& phase : ingest_phases) ingest_rates.push_back(phase.rate);
  const double raw = Median(raw_rates);
  const double ingest = Median(ingest_rates);
  // Where the machine's time goes (medians per record): what the ratio comes from. The idle
  // figures are what each side used while nothing ran (cores), which the per-record figures
  // include for the length of their phase.
  std::cout << absl::StrFormat(
                   "cpu_us_per_record raw: process=%s broker=%s ingest: process=%s broker=%s "
                   "idle_cores: process=%.2f broker=%s",
                   median_of(raw_phases, &Phase::process_us),
                   median_of(raw_phases, &Phase::broker_us),
                   median_of(ingest_phases, &Phase::process_us),
                   median_of(ingest_phases, &Phase::broker_us), idle.process_cores,
                   idle.broker_cores < 0 ? "n/a" : absl::StrFormat("%.2f", idle.broker_cores))
            << std::endl;
  std::cout << absl::StrFormat(
                   "transactions/round=%d batch=%d rpc=%s concurrency=%d%s rounds=%d "
                   "sm4_lanes=%s p50_ack_ms=%.1f",
                   n, batch, rpc, concurrency,
                   rpc == "stream" ? absl::StrCat(" stream_window=", config.stream_window) : "",
                   raw_phases.size(), crypto::Sm4LanesIsaName(), Percentile(latencies_ms, 0.50))
            << std::endl;
  if (rpc == "direct") {
    // Not the benchmark's result either: no gRPC, so no client and no transport.
    std::cout << absl::StrFormat(
                     "direct_rate=%.0f raw_produce_rate=%.0f direct_ratio=%.2f p99_ack_ms=%.1f",
                     ingest, raw, ingest / raw, Percentile(latencies_ms, 0.99))
              << std::endl;
    return 0;
  }
  if (absl::GetFlag(FLAGS_raw_pace) > 0) {
    // Not the benchmark's result: the raw side was held back, so there is no ratio.
    std::cout << absl::StrFormat("ingest_rate=%.0f raw_paced_rate=%.0f p99_ack_ms=%.1f", ingest,
                                 raw, Percentile(latencies_ms, 0.99))
              << std::endl;
    return 0;
  }
  std::cout << absl::StrFormat("ingest_rate=%.0f raw_produce_rate=%.0f ratio=%.2f p99_ack_ms=%.1f",
                               ingest, raw, ingest / raw, Percentile(latencies_ms, 0.99))
            << std::endl;
  return 0;
}

}  // namespace
}  // namespace tongka::bench

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);  // as tongka_ingest does
  return tongka::bench::RunBenchmark(argc, argv, tongka::bench::Main);
}
