// The gRPC driver of tapgen: uploads generated records to ingest (tongka.v1.IngestService/
// UploadBatch) at a target rate, as the right tenants, and reports what ingest answered.
//
// What it is: Add() files each record under its tenant (the acquirer city's operator for city
// terminals, the partner for partner terminals; one batch must come from one tenant) and sends a
// tenant's batch once it holds batch_size records, or earlier if the record would repeat an id
// already in that batch (replays must reach ingest in another batch). Batches go out on
// `concurrency` worker threads, each with one call in flight, so at most `concurrency` batches
// are in flight; Add() blocks when all are busy (back-pressure instead of unbounded memory). Each
// call carries `authorization: Bearer <dev token>` minted for its tenant with dev_token_secret.
// With use_stream, batches travel on UploadStream instead (one stream per worker and tenant, one
// batch in flight on it). Calls that fail with UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED
// or ABORTED (ingest's back-pressure, a restarting broker) are retried with exponential backoff up
// to max_attempts, so a no-loss run can restart Kafka under it. Finish() sends the partial batches,
// waits for every answer and returns the report: achieved rate, per-batch ack latency percentiles
// (of the successful attempt), per-outcome counts, rejections by rule.
//
// Acknowledged ids: when an acked stream is given, the event id of every item answered ACCEPTED
// or DUPLICATE (both mean "in Kafka") is written to it, one per line, in answer order. A replayed
// or retried record can appear twice: compare as sets.
//
// Ownership: the Driver owns its channel, threads and buffers; the acked stream is borrowed and
// must outlive Finish().
// Thread-safety: Add() and Finish() are called from one thread; the workers are internal.
// Failure behaviour: Create() returns INVALID_ARGUMENT naming a bad config field. A batch that
// still fails after max_attempts, or fails with a non-retryable status (UNAUTHENTICATED,
// PERMISSION_DENIED, INVALID_ARGUMENT, ...), is counted in failed_batches / failed_records with
// the first such error kept in first_error; the run goes on. Finish() returns the report either
// way; deciding whether failures are fatal is the caller's business.
//
// Example:
//   tapgen::DriverConfig config{.target = "127.0.0.1:7001", .dev_token_secret = secret};
//   absl::StatusOr<std::unique_ptr<tapgen::Driver>> driver = tapgen::Driver::Create(config);
//   if (!driver.ok()) return driver.status();
//   while (generator->Next(&upload)) (*driver)->Add(upload);
//   tapgen::DriverReport report = (*driver)->Finish();
//   std::cout << report.Summary();
#ifndef TONGKA_TOOLS_TAPGEN_DRIVER_H_
#define TONGKA_TOOLS_TAPGEN_DRIVER_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdint>
#include <deque>
#include <iosfwd>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/server/dev_token.h"
#include "proto/ingest.grpc.pb.h"

namespace tongka::tapgen {

struct DriverConfig {
  // host:port of ingest (plaintext HTTP/2, dev-token mode).
  std::string target;
  // Records per second to aim for; 0 = as fast as ingest answers.
  double rate = 0;
  // Records per UploadBatch call, 1..10000 (ingest's limit).
  int32_t batch_size = 1000;
  // Batches in flight at once, 1..256.
  int32_t concurrency = 4;
  // The shared dev-token secret of ingest's dev mode, >= 16 bytes.
  std::string dev_token_secret;
  // Lifetime of each minted token; tokens are re-minted a minute before they expire.
  absl::Duration token_ttl = absl::Hours(8);
  // Deadline of one UploadBatch call.
  absl::Duration call_timeout = absl::Seconds(30);
  // Attempts per batch for retryable failures, >= 1; backoff doubles from 50 ms up to 2 s.
  int32_t max_attempts = 30;
  // Send batches on UploadStream instead of UploadBatch: each worker keeps one stream per tenant
  // (the token is per stream) with one batch in flight; a broken stream is reopened on retry.
  bool use_stream = false;
};

struct DriverReport {
  int64_t records = 0;  // records handed to Add()
  int64_t batches = 0;  // batches answered
  int64_t retries = 0;  // retried calls
  int64_t failed_batches = 0;
  int64_t failed_records = 0;
  std::string first_error;
  int64_t accepted = 0;
  int64_t duplicate = 0;
  int64_t conflict = 0;
  int64_t rejected = 0;
  int64_t late = 0;  // accepted items ingest flagged late
  std::map<std::string, int64_t> rejected_by_rule;
  double elapsed_seconds = 0;
  double answered_per_second = 0;  // items with an answer / elapsed
  // Latency of successful UploadBatch calls, milliseconds.
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;

  // A human-readable report, ending with one machine-readable line:
  // "tapgen records=… rate=… accepted=… duplicate=… conflict=… rejected=… failed=… p50_ms=…
  //  p90_ms=… p99_ms=… max_ms=…".
  std::string Summary() const;
};

class Driver {
 public:
  // `channel` overrides the one made from config.target (tests).
  static absl::StatusOr<std::unique_ptr<Driver>> Create(
      const DriverConfig& config, std::shared_ptr<grpc::Channel> channel = nullptr,
      std::ostream* acked_out = nullptr);

  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;
  ~Driver();  // finishes if Finish() was not called

  void Add(const v1::TransactionUpload& upload);
  DriverReport Finish();

 private:
  struct Batch {
    std::string tenant;  // tenant name, e.g. "city:310000"
    v1::UploadBatchRequest request;
    std::set<std::string> event_ids;
  };

  Driver(const DriverConfig& config, std::shared_ptr<grpc::Channel> channel,
         server::DevTokenIssuer issuer, std::ostream* acked_out);
  // A worker's open UploadStream calls, per tenant.
  struct Stream {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::UploadBatchRequest, v1::UploadBatchResponse>>
        stream;
  };
  using Streams = std::map<std::string, Stream>;

  void Send(Batch batch);
  void WorkerLoop();
  void Upload(Batch batch, Streams* streams);
  // One attempt: a unary call, or a write and a read on the tenant's stream.
  grpc::Status Call(const Batch& batch, const std::string& token, Streams* streams,
                    v1::UploadBatchResponse* response);
  absl::StatusOr<std::string> TokenFor(const std::string& tenant);

  const DriverConfig config_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::IngestService::Stub> stub_;
  const server::DevTokenIssuer issuer_;
  std::ostream* const acked_out_;

  // Owned by the Add() thread.
  std::map<std::string, Batch> open_batches_;
  int64_t records_added_ = 0;
  int64_t records_sent_ = 0;
  int64_t batches_made_ = 0;
  absl::Time start_;
  bool finished_ = false;

  absl::Mutex mu_;
  std::deque<Batch> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::pair<std::string, absl::Time>> tokens_ ABSL_GUARDED_BY(mu_);
  DriverReport report_ ABSL_GUARDED_BY(mu_);
  std::vector<double> latencies_ms_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_;
};

}  // namespace tongka::tapgen

#endif  // TONGKA_TOOLS_TAPGEN_DRIVER_H_
