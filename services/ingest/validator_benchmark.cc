// Benchmark: the CPU ingest spends per transaction outside Kafka and RocksDB, stage by stage, on
// one batch of 1,000 signed taps (20 consecutive seqs per terminal, as the ingest benchmark's):
//
//   bazel run -c opt //services/ingest:validator_benchmark
//
//   BM_ParseRequest      the baseline: parsing the serialized UploadBatchRequest and destroying
//                        it, which gRPC does for every call before and after any of ingest's code
//   BM_MacInput          the canonical signed content of each upload (part of validation)
//   BM_ValidateMany      every rule, the MACs in SIMD lanes (Validator::ValidateMany)
//   BM_ContentDigests    the dedup index's SM3 digests of the accepted items' content
//   BM_SerializeEvents   the Event bytes produced to tongka.txn (SerializeTxnEventTo)
//   BM_ResponseServer    the response as the IngestApi builds it (every item ACCEPTED), serialized;
//                        /1 with the event ids, /0 without them (what the ids cost)
//   BM_ResponseClient    the same response parsed and destroyed, as an uploader's stub does
//   BM_ParseRequestArena the baseline on a protobuf arena (what the callback API's arena could
//                        save the service)
//
// Each reports items_per_second; a stage's cost relative to the baseline is the ratio of the
// baseline's rate to the stage's, both from the same run.
#include <benchmark/benchmark.h>
#include <glog/logging.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "libs/server/tenant.h"
#include "libs/txn/keys.h"
#include "libs/txn/mac_input.h"
#include "proto/ingest.pb.h"
#include "services/ingest/dedup_index.h"
#include "services/ingest/testing/uploads.h"
#include "services/ingest/validator.h"

namespace tongka::ingest {
namespace {

constexpr int kBatch = 1000;
constexpr uint32_t kCity = 310000;
const absl::Time kNow = absl::FromUnixSeconds(1767225600) + absl::Minutes(1);

const v1::UploadBatchRequest& Batch() {
  static const v1::UploadBatchRequest* const batch = [] {
    auto* request = new v1::UploadBatchRequest;
    const txn::CityKeyring keyring = *txn::CityKeyring::Dev();
    for (int i = 0; i < kBatch; ++i) {
      const uint64_t seq = 1000000 + i;
      *request->add_transactions() = testing::SignedTap(
          keyring, {.acquirer_city = kCity,
                    .issuer_city = i % 5 == 0 ? 320100u : kCity,
                    .card_serial = seq % 1000003 + 1,
                    .terminal_serial = static_cast<uint32_t>(seq / 20 % 50000 + 1),
                    .seq = seq,
                    .amount_fen = 200 + static_cast<int64_t>(seq % 300),
                    .balance_before_fen = 100000,
                    .occurred_at = kNow - absl::Seconds(30)});
    }
    return request;
  }();
  return *batch;
}

struct Fixture {
  Fixture() : keyring(*txn::CityKeyring::Dev()), validator(limits, &keyring) {
    for (const v1::TransactionUpload& upload : Batch().transactions()) uploads.push_back(&upload);
  }
  std::vector<Verdict> Validate() const {
    return validator.ValidateMany(server::CityTenant(kCity), uploads, kNow);
  }
  // The verdicts the later stages start from: every item must pass, or they would time
  // something else.
  std::vector<Verdict> Accepted() const {
    std::vector<Verdict> verdicts = Validate();
    for (const Verdict& verdict : verdicts) CHECK(verdict.ok()) << verdict.rule;
    return verdicts;
  }
  ValidationLimits limits;
  txn::CityKeyring keyring;
  Validator validator;
  std::vector<const v1::TransactionUpload*> uploads;
};

void BM_ParseRequest(benchmark::State& state) {
  const std::string bytes = Batch().SerializeAsString();
  for (auto _ : state) {
    v1::UploadBatchRequest request;
    benchmark::DoNotOptimize(request.ParseFromString(bytes));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ParseRequest);

void BM_MacInput(benchmark::State& state) {
  for (auto _ : state) {
    for (const v1::TransactionUpload& upload : Batch().transactions()) {
      absl::StatusOr<std::string> input = txn::MacInput(upload);
      benchmark::DoNotOptimize(input->data());
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_MacInput);

void BM_ValidateMany(benchmark::State& state) {
  const Fixture fixture;
  for (auto _ : state) {
    std::vector<Verdict> verdicts = fixture.Validate();
    benchmark::DoNotOptimize(verdicts.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ValidateMany);

void BM_ContentDigests(benchmark::State& state) {
  const Fixture fixture;
  const std::vector<Verdict> verdicts = fixture.Accepted();
  std::vector<SignedContent> contents;
  for (int i = 0; i < kBatch; ++i) {
    contents.push_back({verdicts[i].mac_input, Batch().transactions(i).tap().txn().mac()});
  }
  std::vector<crypto::Sm3Digest> digests(kBatch);
  for (auto _ : state) {
    ContentDigests(contents, absl::MakeSpan(digests));
    benchmark::DoNotOptimize(digests.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ContentDigests);

void BM_SerializeEvents(benchmark::State& state) {
  const Fixture fixture;
  const std::vector<Verdict> verdicts = fixture.Accepted();
  const v1::Tenant source = server::CityTenant(kCity);
  std::string bytes;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      SerializeTxnEventTo(Batch().transactions(i), source, verdicts[i], kNow, &bytes);
      benchmark::DoNotOptimize(bytes.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_SerializeEvents);

// The response of a batch whose items were all accepted, the way IngestApi::Upload fills it.
void BuildResponse(bool with_id, const std::vector<Verdict>& verdicts, std::string* bytes) {
  v1::UploadBatchResponse response;
  for (int i = 0; i < kBatch; ++i) response.add_results()->set_index(i);
  for (int i = 0; i < kBatch; ++i) {
    v1::ItemResult* result = response.mutable_results(i);
    result->set_outcome(v1::ITEM_OUTCOME_ACCEPTED);
    if (with_id) result->set_event_id(verdicts[i].event_id);
    result->set_late(verdicts[i].late);
  }
  response.SerializeToString(bytes);
}

void BM_ResponseServer(benchmark::State& state) {
  const Fixture fixture;
  const std::vector<Verdict> verdicts = fixture.Accepted();
  std::string bytes;
  for (auto _ : state) {
    BuildResponse(state.range(0) != 0, verdicts, &bytes);
    benchmark::DoNotOptimize(bytes.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ResponseServer)->Arg(0)->Arg(1);

void BM_ResponseClient(benchmark::State& state) {
  const Fixture fixture;
  const std::vector<Verdict> verdicts = fixture.Accepted();
  std::string bytes;
  BuildResponse(state.range(0) != 0, verdicts, &bytes);
  for (auto _ : state) {
    v1::UploadBatchResponse response;
    benchmark::DoNotOptimize(response.ParseFromString(bytes));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ResponseClient)->Arg(0)->Arg(1);

void BM_ParseRequestArena(benchmark::State& state) {
  const std::string bytes = Batch().SerializeAsString();
  for (auto _ : state) {
    google::protobuf::Arena arena;
    auto* request = google::protobuf::Arena::CreateMessage<v1::UploadBatchRequest>(&arena);
    benchmark::DoNotOptimize(request->ParseFromString(bytes));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ParseRequestArena);

}  // namespace
}  // namespace tongka::ingest

BENCHMARK_MAIN();
