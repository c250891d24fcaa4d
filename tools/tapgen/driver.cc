#include "tools/tapgen/driver.h"

#include <glog/logging.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "libs/server/authenticator.h"
#include "libs/server/tenant.h"
#include "libs/txn/mac_input.h"
#include "libs/txn/upload.h"
#include "tools/tapgen/tapgen.h"

namespace tongka::tapgen {
namespace {

constexpr absl::string_view kPartnerOperatorPrefix = "partner:";

// The tenant a record must be uploaded as: its terminal's owner.
std::string TenantOf(const v1::TransactionUpload& upload) {
  const v1::TxnCommon* txn = txn::CommonOf(upload);
  CHECK(txn != nullptr) << "a generated record always has a body";
  absl::string_view operator_id = txn->operator_id();
  if (absl::StartsWith(operator_id, kPartnerOperatorPrefix)) return std::string(operator_id);
  return absl::StrCat("city:", txn->acquirer_city());
}

bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::RESOURCE_EXHAUSTED ||
         code == grpc::StatusCode::DEADLINE_EXCEEDED || code == grpc::StatusCode::ABORTED;
}

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

std::string DriverReport::Summary() const {
  std::string out = absl::StrFormat(
      "uploaded %d records in %d batches in %.2f s (%.0f answered/s), %d retried calls\n"
      "outcomes: ACCEPTED %d (late %d), DUPLICATE %d, CONFLICT %d, REJECTED %d; failed batches "
      "%d (%d records)\n"
      "ack latency per batch: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
      records, batches, elapsed_seconds, answered_per_second, retries, accepted, late, duplicate,
      conflict, rejected, failed_batches, failed_records, p50_ms, p90_ms, p99_ms, max_ms);
  for (const auto& [rule, count] : rejected_by_rule) {
    absl::StrAppend(&out, "rejected ", rule, ": ", count, "\n");
  }
  if (!first_error.empty()) absl::StrAppend(&out, "first error: ", first_error, "\n");
  absl::StrAppendFormat(&out,
                        "tapgen records=%d rate=%.0f accepted=%d duplicate=%d conflict=%d "
                        "rejected=%d failed=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
                        records, answered_per_second, accepted, duplicate, conflict, rejected,
                        failed_records, p50_ms, p90_ms, p99_ms, max_ms);
  return out;
}

absl::StatusOr<std::unique_ptr<Driver>> Driver::Create(const DriverConfig& config,
                                                       std::shared_ptr<grpc::Channel> channel,
                                                       std::ostream* acked_out) {
  auto invalid = [](absl::string_view field, absl::string_view rule) {
    return absl::InvalidArgumentError(absl::StrCat("driver.", field, ": ", rule));
  };
  if (channel == nullptr && config.target.empty()) return invalid("target", "is required");
  if (!(config.rate >= 0)) return invalid("rate", "must be >= 0 (0 = as fast as possible)");
  if (config.batch_size < 1 || config.batch_size > 10000) {
    return invalid("batch_size", "must be in 1..10000");
  }
  if (config.concurrency < 1 || config.concurrency > 256) {
    return invalid("concurrency", "must be in 1..256");
  }
  if (config.token_ttl < absl::Minutes(2)) return invalid("token_ttl", "must be >= 2 minutes");
  if (config.call_timeout <= absl::ZeroDuration()) {
    return invalid("call_timeout", "must be positive");
  }
  if (config.max_attempts < 1) return invalid("max_attempts", "must be >= 1");
  absl::StatusOr<server::DevTokenIssuer> issuer =
      server::DevTokenIssuer::Create(config.dev_token_secret);
  if (!issuer.ok()) return invalid("dev_token_secret", issuer.status().message());
  if (channel == nullptr) {
    channel = grpc::CreateChannel(config.target, grpc::InsecureChannelCredentials());
  }
  return std::unique_ptr<Driver>(
      new Driver(config, std::move(channel), *std::move(issuer), acked_out));
}

Driver::Driver(const DriverConfig& config, std::shared_ptr<grpc::Channel> channel,
               server::DevTokenIssuer issuer, std::ostream* acked_out)
    : config_(config),
      channel_(std::move(channel)),
      stub_(v1::IngestService::NewStub(channel_)),
      issuer_(std::move(issuer)),
      acked_out_(acked_out),
      start_(absl::Now()) {
  for (int i = 0; i < config_.concurrency; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

Driver::~Driver() {
  if (!finished_) Finish();
}

void Driver::Add(const v1::TransactionUpload& upload) {
  CHECK(!finished_) << "Add() after Finish()";
  ++records_added_;
  const std::string tenant = TenantOf(upload);
  const std::string event_id = txn::TxnEventIdOf(upload);
  auto it = open_batches_.find(tenant);
  if (it != open_batches_.end() && it->second.event_ids.count(event_id) > 0) {
    // The same id twice in one batch would test ingest's in-batch handling, not its
    // de-duplication: send what is there first.
    Send(std::move(it->second));
    open_batches_.erase(it);
    it = open_batches_.end();
  }
  if (it == open_batches_.end()) {
    it = open_batches_.emplace(tenant, Batch{}).first;
    it->second.tenant = tenant;
  }
  Batch& batch = it->second;
  *batch.request.add_transactions() = upload;
  batch.event_ids.insert(event_id);
  if (batch.request.transactions_size() >= config_.batch_size) {
    Send(std::move(batch));
    open_batches_.erase(it);
  }
}

void Driver::Send(Batch batch) {
  batch.request.set_batch_id(absl::StrCat("tapgen-", ++batches_made_));
  records_sent_ += batch.request.transactions_size();
  if (config_.rate > 0) {
    // Pace by records: this batch may leave once the run's clock allows everything sent so far.
    const absl::Time due =
        start_ + absl::Seconds(static_cast<double>(records_sent_) / config_.rate);
    const absl::Duration wait = due - absl::Now();
    if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
  }
  absl::MutexLock lock(&mu_);
  auto has_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.size() < static_cast<size_t>(config_.concurrency);
  };
  mu_.Await(absl::Condition(&has_room));
  queue_.push_back(std::move(batch));
}

void Driver::WorkerLoop() {
  Streams streams;
  for (;;) {
    Batch batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closing_; };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) break;  // closing and drained
      batch = std::move(queue_.front());
      queue_.pop_front();
    }
    Upload(std::move(batch), &streams);
  }
  for (auto& [tenant, open] : streams) {
    open.stream->WritesDone();
    grpc::Status status = open.stream->Finish();
    LOG_IF(WARNING, !status.ok()) << "closing the stream of " << tenant << ": "
                                  << status.error_message();
  }
}

grpc::Status Driver::Call(const Batch& batch, const std::string& token, Streams* streams,
                          v1::UploadBatchResponse* response) {
  if (!config_.use_stream) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + config_.call_timeout));
    server::AttachDevToken(&context, token);
    return stub_->UploadBatch(&context, batch.request, response);
  }
  auto it = streams->find(batch.tenant);
  if (it == streams->end()) {
    Stream open;
    open.context = std::make_unique<grpc::ClientContext>();
    server::AttachDevToken(open.context.get(), token);
    open.stream = stub_->UploadStream(open.context.get());
    it = streams->emplace(batch.tenant, std::move(open)).first;
  }
  if (it->second.stream->Write(batch.request) && it->second.stream->Read(response)) {
    return grpc::Status::OK;
  }
  // The stream broke: its status says why; the next attempt opens a new one.
  grpc::Status status = it->second.stream->Finish();
  streams->erase(it);
  if (status.ok()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the upload stream ended early");
  }
  return status;
}

absl::StatusOr<std::string> Driver::TokenFor(const std::string& tenant) {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  auto it = tokens_.find(tenant);
  if (it != tokens_.end() && it->second.second - absl::Minutes(1) > now) return it->second.first;
  absl::StatusOr<v1::Tenant> parsed = server::ParseTenantName(tenant);
  if (!parsed.ok()) return parsed.status();
  const absl::Time expires_at = now + config_.token_ttl;
  absl::StatusOr<std::string> token = issuer_.Issue(*parsed, expires_at);
  if (!token.ok()) return token.status();
  tokens_[tenant] = {*token, expires_at};
  return token;
}

void Driver::Upload(Batch batch, Streams* streams) {
  const int items = batch.request.transactions_size();
  auto fail = [&](const std::string& error) {
    absl::MutexLock lock(&mu_);
    ++report_.failed_batches;
    report_.failed_records += items;
    if (report_.first_error.empty()) report_.first_error = error;
    LOG_EVERY_N(WARNING, 100) << "batch of " << batch.tenant << " failed: " << error;
  };
  absl::Duration backoff = absl::Milliseconds(50);
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<std::string> token = TokenFor(batch.tenant);
    if (!token.ok())
      return fail(absl::StrCat("token for ", batch.tenant, ": ", token.status().ToString()));
    v1::UploadBatchResponse response;
    const absl::Time sent_at = absl::Now();
    grpc::Status status = Call(batch, *token, streams, &response);
    const double latency_ms = absl::ToDoubleMilliseconds(absl::Now() - sent_at);
    if (!status.ok()) {
      const std::string error =
          absl::StrCat(batch.tenant, " ", batch.request.batch_id(), ": ",
                       absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                       ": ", status.error_message());
      if (!Retryable(status.error_code()) || attempt >= config_.max_attempts) return fail(error);
      {
        absl::MutexLock lock(&mu_);
        ++report_.retries;
      }
      LOG_EVERY_N(INFO, 100) << "retrying after " << error;
      absl::SleepFor(backoff);
      backoff = std::min(2 * backoff, absl::Seconds(2));
      continue;
    }
    if (response.results_size() != items) {
      return fail(absl::StrCat(batch.tenant, " ", batch.request.batch_id(), ": ",
                               response.results_size(), " results for ", items, " items"));
    }
    std::string acked;
    absl::MutexLock lock(&mu_);
    ++report_.batches;
    latencies_ms_.push_back(latency_ms);
    for (int i = 0; i < items; ++i) {
      const v1::ItemResult& result = response.results(i);
      switch (result.outcome()) {
        case v1::ITEM_OUTCOME_ACCEPTED:
          ++report_.accepted;
          if (result.late()) ++report_.late;
          break;
        case v1::ITEM_OUTCOME_DUPLICATE:
          ++report_.duplicate;
          break;
        case v1::ITEM_OUTCOME_CONFLICT:
          ++report_.conflict;
          break;
        case v1::ITEM_OUTCOME_REJECTED:
          ++report_.rejected;
          ++report_.rejected_by_rule[result.rule().empty() ? "(no rule)" : result.rule()];
          break;
        default:
          ++report_.rejected_by_rule["(no outcome)"];
          break;
      }
      if (acked_out_ != nullptr && (result.outcome() == v1::ITEM_OUTCOME_ACCEPTED ||
                                    result.outcome() == v1::ITEM_OUTCOME_DUPLICATE)) {
        absl::StrAppend(&acked,
                        result.event_id().empty() ? txn::TxnEventIdOf(batch.request.transactions(i))
                                                  : result.event_id(),
                        "\n");
      }
    }
    if (acked_out_ != nullptr) *acked_out_ << acked;
    return;
  }
}

DriverReport Driver::Finish() {
  CHECK(!finished_) << "Finish() twice";
  for (auto& [tenant, batch] : open_batches_) Send(std::move(batch));
  open_batches_.clear();
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
  finished_ = true;
  if (acked_out_ != nullptr) acked_out_->flush();
  absl::MutexLock lock(&mu_);
  DriverReport report = report_;
  report.records = records_added_;
  report.elapsed_seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  const int64_t answered = report.accepted + report.duplicate + report.conflict + report.rejected;
  if (report.elapsed_seconds > 0) report.answered_per_second = answered / report.elapsed_seconds;
  std::vector<double> sorted = latencies_ms_;
  std::sort(sorted.begin(), sorted.end());
  report.p50_ms = Percentile(sorted, 0.50);
  report.p90_ms = Percentile(sorted, 0.90);
  report.p99_ms = Percentile(sorted, 0.99);
  report.max_ms = sorted.empty() ? 0 : sorted.back();
  return report;
}

}  // namespace tongka::tapgen
