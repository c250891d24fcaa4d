// Benchmark: SM4-CMAC of ingest's transactions in SIMD lanes (crypto::Sm4CmacLanes, each kernel
// the CPU runs: AES-NI, and GFNI with AVX-512) next to OpenSSL one MAC at a time
// (crypto::Sm4Cmac, as ingest verified them before), in one run.
//
//   bazel run -c opt //tools/bench:sm4_cmac [-- --transactions=100000 --batch=1000]
//
// The messages are the MAC inputs (txn::MacInput) of real signed taps under the dev keys, with
// each terminal contributing `txns_per_terminal` consecutive transactions as in an offline upload
// (OpenSSL's context then restarts under the key it holds, its best case). Keys are derived
// before timing. Every side computes every tag and the lanes' tags must equal OpenSSL's. Rates
// are medians over alternating rounds. The first line has each kernel's time per MAC; the last
// line is about the kernel ingest uses here (the best one):
//   lanes_rate=<MACs/s> openssl_rate=<MACs/s> ratio=<lanes/openssl> message_bytes=<typical>
//   isa=<gfni-avx512|aesni-avx>
#include "libs/crypto/sm4_cmac.h"

#include <glog/logging.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "libs/crypto/sm4_lanes.h"
#include "libs/txn/keys.h"
#include "libs/txn/mac_input.h"
#include "services/ingest/testing/uploads.h"
#include "tools/bench/bench_support.h"

ABSL_FLAG(int64_t, transactions, 100000, "MACs per round.");
ABSL_FLAG(int32_t, batch, 1000, "MACs per Sm4CmacLanes call (ingest: one upload batch).");
ABSL_FLAG(int32_t, txns_per_terminal, 20, "Consecutive transactions of one terminal.");
ABSL_FLAG(int32_t, rounds, 5, "Alternating rounds; rates are medians.");

namespace tongka::bench {
namespace {

int Main() {
  CHECK(crypto::Sm4LanesSupported()) << "this CPU has no AES-NI and AVX";
  const int64_t n = absl::GetFlag(FLAGS_transactions);
  const int32_t batch = std::max(1, absl::GetFlag(FLAGS_batch));
  const txn::CityKeyring keyring = *txn::CityKeyring::Dev();
  std::vector<std::string> messages;
  std::vector<crypto::Sm4Key> key_values;
  messages.reserve(n);
  key_values.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    const v1::TransactionUpload upload = ingest::testing::SignedTap(
        keyring, {.card_serial = static_cast<uint64_t>(i % 1000003 + 1),
                  .terminal_serial = static_cast<uint32_t>(
                      (i / absl::GetFlag(FLAGS_txns_per_terminal)) % 50000 + 1),
                  .seq = static_cast<uint64_t>(i + 1),
                  .amount_fen = 200 + i % 300,
                  .balance_before_fen = 100000});
    const v1::TxnCommon& txn = upload.tap().txn();
    messages.push_back(*txn::MacInput(upload));
    key_values.push_back(*keyring.TerminalKey(txn.acquirer_city(), txn.terminal_id()));
  }
  std::vector<const crypto::Sm4Key*> keys;
  for (const crypto::Sm4Key& key : key_values) keys.push_back(&key);
  std::vector<absl::string_view> views(messages.begin(), messages.end());

  using crypto::internal::Sm4LanesIsa;
  std::vector<Sm4LanesIsa> isas;
  for (Sm4LanesIsa isa : {Sm4LanesIsa::kAesNiAvx, Sm4LanesIsa::kGfniAvx512}) {
    if (crypto::internal::Sm4LanesIsaSupported(isa)) isas.push_back(isa);
  }
  std::vector<crypto::Sm4Mac> expected(n), tags(n);
  std::vector<double> openssl_rates;
  std::vector<std::vector<double>> lanes_rates(isas.size());
  for (int32_t r = 0; r < std::max(1, absl::GetFlag(FLAGS_rounds)); ++r) {
    absl::Time start = absl::Now();
    for (int64_t i = 0; i < n; ++i) expected[i] = crypto::Sm4Cmac(*keys[i], views[i]);
    openssl_rates.push_back(n / absl::ToDoubleSeconds(absl::Now() - start));

    for (size_t k = 0; k < isas.size(); ++k) {
      std::fill(tags.begin(), tags.end(), crypto::Sm4Mac{});
      start = absl::Now();
      for (int64_t first = 0; first < n; first += batch) {
        const size_t count = std::min<int64_t>(batch, n - first);
        crypto::internal::Sm4CmacLanesWith(isas[k], absl::MakeConstSpan(keys).subspan(first, count),
                                           absl::MakeConstSpan(views).subspan(first, count),
                                           absl::MakeSpan(tags).subspan(first, count));
      }
      lanes_rates[k].push_back(n / absl::ToDoubleSeconds(absl::Now() - start));
      CHECK(tags == expected) << "kernel " << int(isas[k]) << " disagrees with OpenSSL";
    }
  }
  const double openssl = Median(openssl_rates);
  std::string kernels;
  for (size_t k = 0; k < isas.size(); ++k) {
    absl::StrAppendFormat(&kernels, " %s=%.3f",
                          isas[k] == Sm4LanesIsa::kGfniAvx512 ? "gfni_avx512" : "aesni_avx",
                          1e6 / Median(lanes_rates[k]));
  }
  // The best kernel is the last one found.
  const double lanes = Median(lanes_rates.back());
  std::cout << absl::StrFormat("macs/round=%d batch=%d rounds=%d us_per_mac: openssl=%.3f%s", n,
                               batch, openssl_rates.size(), 1e6 / openssl, kernels)
            << std::endl;
  std::cout << absl::StrFormat(
                   "lanes_rate=%.0f openssl_rate=%.0f ratio=%.2f message_bytes=%d isa=%s", lanes,
                   openssl, lanes / openssl, messages.front().size(), crypto::Sm4LanesIsaName())
            << std::endl;
  return 0;
}

}  // namespace
}  // namespace tongka::bench

int main(int argc, char** argv) {
  return tongka::bench::RunBenchmark(argc, argv, tongka::bench::Main);
}
