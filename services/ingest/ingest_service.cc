#include "services/ingest/ingest_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/server/grpc_server.h"

namespace tongka::ingest {
namespace {

absl::Time DeadlineOf(const grpc::ServerContext& context) {
  // gRPC reports "no deadline" as the far future; the ingestor clamps it to its ack_timeout.
  const auto deadline = context.deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// Converts once, at the handler's return, and attaches the retry hint.
grpc::Status Finish(grpc::ServerContext* context, const absl::Status& status) {
  if (std::optional<absl::Duration> retry_after = RetryAfter(status); retry_after.has_value()) {
    context->AddTrailingMetadata(kRetryAfterMetadataKey,
                                 absl::StrCat(absl::ToInt64Milliseconds(*retry_after)));
  }
  return server::ToGrpcStatus(status);
}

void CountRequest(IngestMetrics* metrics, absl::string_view rpc, absl::StatusCode code) {
  metrics->requests
      .WithLabels({std::string(rpc), absl::AsciiStrToLower(absl::StatusCodeToString(code))})
      .Increment();
}

}  // namespace

absl::StatusOr<InflightLimit::Ticket> IngestService::AdmitCall(absl::string_view rpc) {
  std::optional<InflightLimit::Ticket> ticket = calls_.TryAcquire(1);
  if (ticket.has_value()) return std::move(*ticket);
  metrics_->refused_calls.Increment();
  CountRequest(metrics_, rpc, absl::StatusCode::kResourceExhausted);
  return WithRetryAfter(absl::ResourceExhaustedError(
                            absl::StrCat("ingest is serving ", calls_.max(),
                                         " calls (max_concurrent_calls, open streams "
                                         "included); nothing was done: retry after the hint")),
                        options_.retry_after);
}

grpc::Status IngestService::UploadBatch(grpc::ServerContext* context,
                                        const v1::UploadBatchRequest* request,
                                        v1::UploadBatchResponse* response) {
  const absl::Time received = absl::Now();
  absl::StatusOr<InflightLimit::Ticket> call = AdmitCall("UploadBatch");
  if (!call.ok()) return Finish(context, call.status());
  absl::Status status;
  absl::StatusOr<v1::Tenant> tenant = authenticator_->TenantFromContext(*context);
  if (!tenant.ok()) {
    status = tenant.status();
  } else {
    absl::StatusOr<v1::UploadBatchResponse> result =
        ingestor_->Upload(*tenant, *request, DeadlineOf(*context));
    if (result.ok()) {
      *response = std::move(*result);
      metrics_->ack_unary.Observe(absl::ToDoubleSeconds(absl::Now() - received));
    }
    status = result.status();
  }
  CountRequest(metrics_, "UploadBatch", status.code());
  return Finish(context, status);
}

grpc::Status IngestService::UploadStream(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::UploadBatchResponse, v1::UploadBatchRequest>* stream) {
  // The slot is held while the stream is open, idle or not: its handler holds a thread.
  absl::StatusOr<InflightLimit::Ticket> call = AdmitCall("UploadStream");
  if (!call.ok()) return Finish(context, call.status());
  absl::StatusOr<v1::Tenant> tenant = authenticator_->TenantFromContext(*context);
  if (!tenant.ok()) return Finish(context, tenant.status());
  v1::UploadBatchRequest request;
  while (stream->Read(&request)) {
    const absl::Time received = absl::Now();
    absl::StatusOr<v1::UploadBatchResponse> result =
        ingestor_->Upload(*tenant, request, DeadlineOf(*context));
    CountRequest(metrics_, "UploadStream", result.status().code());
    if (!result.ok()) return Finish(context, result.status());
    if (!stream->Write(*result)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
    metrics_->ack_stream.Observe(absl::ToDoubleSeconds(absl::Now() - received));
  }
  return grpc::Status::OK;
}

}  // namespace tongka::ingest
