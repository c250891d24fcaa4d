// IngestService: the gRPC handlers of tongka.v1.IngestService (proto/ingest.proto). Thin: who is
// calling (the authenticator), the call's deadline, then IngestApi::Upload, then the status.
//
//   UploadBatch   one batch of up to 10,000 transactions -> one result per transaction
//   UploadStream  a stream of batches -> one response per batch, in order. Up to stream_window
//                 batches of one stream are served at once (pipelined: the next is read and
//                 validated while earlier ones wait for Kafka), so one high-rate uploader is not
//                 held to one batch per Kafka round trip. A batch that fails (Kafka slow or
//                 down) ends the stream with that status once the batches in progress have
//                 settled; the client reopens the stream and resends the batches that have no
//                 response yet (what Kafka took comes back DUPLICATE).
//
// Admission: at most max_concurrent_calls unary calls in flight plus open streams (a stream holds
// its slot until it ends); one more fails at once RESOURCE_EXHAUSTED with the retry hint, changing
// nothing. This bounds the threads a crowd of uploaders can hold while Kafka is slow: the sync
// server runs each unary call on its own thread until it answers, and each batch of a stream in
// progress holds a worker of its own. A stream's second and later batches in progress take a slot
// each too; when none is free the stream reads its next batch only once its earlier ones are
// answered.
//
// Threading: UploadBatch runs on gRPC's sync threads. UploadStream is a callback reactor
// (StreamReactor, ingest_service.cc): its reactions only move state under a lock; each batch's
// IngestApi::Upload runs on the service's WorkerPool (worker_pool.h), at most
// max_concurrent_calls workers, which admission never lets a stream's batches exceed (every batch
// in progress holds a call slot). When the pool cannot start a worker (the system refuses a
// thread), the batch fails RESOURCE_EXHAUSTED with the retry hint, having done nothing (counted
// as refused_total{limit="threads"}), and ends the stream like any failed batch.
//
// Lifetime: the server must be shut down before the service is destroyed; gRPC's shutdown waits
// for every stream to end, and a stream ends only once its batches' Uploads have returned. The
// destructor then joins the pool's workers, so no thread of the service outlives it.
//
// Cancellation: a call or stream the client cancels (or the server's shutdown ends) stops
// waiting for Kafka within 100 ms and gives back its slots and items; what Kafka later takes of
// it is settled by its delivery reports, so the client's retry finds it DUPLICATE.
//
// Errors: UNAUTHENTICATED (no or bad credentials, before the handler), PERMISSION_DENIED (the
// ministry or a platform service uploading), INVALID_ARGUMENT (more than 10,000 items),
// RESOURCE_EXHAUSTED with `retry-after-ms` (a limit reached: max_concurrent_calls here,
// max_inflight_items in the IngestApi),
// UNAVAILABLE / RESOURCE_EXHAUSTED with trailing metadata `retry-after-ms` (see ingest_api.h:
// retry the same batch; what Kafka has comes back DUPLICATE). Bad items are not errors: they are
// REJECTED results naming field and rule, and the good items of the batch are accepted.
//
// Ownership: borrows the IngestApi and metrics; shares the authenticator; owns the stream
// workers' pool.
// Thread-safety: handlers run concurrently on gRPC's threads; IngestApi is thread-safe.
//
// Example:
//   IngestService service(&ingest_api, authenticator, &metrics,
//                         {.max_concurrent_calls = 1024, .retry_after = absl::Seconds(1)});
//   auto server = server::GrpcServer::Start(config.grpc, authenticator, {&service});
#ifndef TONGKA_SERVICES_INGEST_INGEST_SERVICE_H_
#define TONGKA_SERVICES_INGEST_INGEST_SERVICE_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/server/authenticator.h"
#include "proto/ingest.grpc.pb.h"
#include "services/ingest/inflight_limit.h"
#include "services/ingest/ingest_api.h"
#include "services/ingest/ingest_metrics.h"
#include "services/ingest/worker_pool.h"

namespace tongka::ingest {

// Trailing metadata key carrying the retry hint in milliseconds.
inline constexpr char kRetryAfterMetadataKey[] = "retry-after-ms";

struct IngestServiceOptions {
  // IngestConfig::max_concurrent_calls.
  int32_t max_concurrent_calls = 1024;
  // IngestConfig::stream_window: batches of one stream served at once.
  int32_t stream_window = 4;
  // The hint attached to a refusal.
  absl::Duration retry_after = absl::Seconds(1);
  // Starts a thread of the stream workers' pool (WorkerPool::Options::start_thread); a refusal
  // fails the batch that needed it, without doing any of it. Tests inject refusals here.
  WorkerPool::StartThreadFn start_worker_thread = WorkerPool::StartSystemThread;
};

class IngestService final
    : public v1::IngestService::WithCallbackMethod_UploadStream<v1::IngestService::Service> {
 public:
  IngestService(IngestApi* ingest_api, std::shared_ptr<const server::Authenticator> authenticator,
                IngestMetrics* metrics, IngestServiceOptions options)
      : ingest_api_(ingest_api),
        authenticator_(std::move(authenticator)),
        metrics_(metrics),
        options_(options),
        calls_(options.max_concurrent_calls, &metrics->calls_in_progress),
        workers_({.max_threads = options.max_concurrent_calls,
                  .start_thread = options.start_worker_thread}) {}

  grpc::Status UploadBatch(grpc::ServerContext* context, const v1::UploadBatchRequest* request,
                           v1::UploadBatchResponse* response) override;
  grpc::ServerBidiReactor<v1::UploadBatchRequest, v1::UploadBatchResponse>* UploadStream(
      grpc::CallbackServerContext* context) override;

 private:
  class StreamReactor;

  // A slot for one more call, or RESOURCE_EXHAUSTED (counted) with the retry hint.
  absl::StatusOr<InflightLimit::Ticket> AdmitCall(absl::string_view rpc);

  IngestApi* const ingest_api_;
  const std::shared_ptr<const server::Authenticator> authenticator_;
  IngestMetrics* const metrics_;
  const IngestServiceOptions options_;
  InflightLimit calls_;
  // Runs the stream batches' Uploads. Last, so it is destroyed (its workers joined) first.
  WorkerPool workers_;
};

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_INGEST_SERVICE_H_
