// Benchmark: SM3 of ingest's content messages in SIMD lanes (crypto::Sm3Many, as ContentDigests
// hashes a batch) next to OpenSSL one digest at a time (crypto::Sm3), in one run.
//
//   bazel run -c opt //tools/bench:sm3_lanes [-- --messages=100000 --batch=1000]
//
// The messages are what ingest's content digest hashes: the MAC input of a real signed tap and
// its MAC (dedup_index.h), about 130 bytes, 3 SM3 blocks. Both sides compute every digest and
// must agree. Where the CPU runs sixteen lanes, the eight lanes other CPUs get are timed too.
// Rates are medians over alternating rounds. Last line (the width this CPU uses):
//   lanes_rate=<digests/s> openssl_rate=<digests/s> ratio=<lanes/openssl> message_bytes=<typical>
//   lanes=<16|8>
#include "libs/crypto/sm3_lanes.h"

#include <glog/logging.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "libs/crypto/sm3.h"
#include "libs/txn/keys.h"
#include "libs/txn/mac_input.h"
#include "services/ingest/testing/uploads.h"
#include "tools/bench/bench_support.h"

ABSL_FLAG(int64_t, messages, 100000, "Digests per round.");
ABSL_FLAG(int32_t, batch, 1000, "Messages per Sm3Many call (ingest: one upload batch).");
ABSL_FLAG(int32_t, rounds, 5, "Alternating rounds; rates are medians.");

namespace tongka::bench {
namespace {

int Main() {
  const int64_t n = absl::GetFlag(FLAGS_messages);
  const int32_t batch = std::max(1, absl::GetFlag(FLAGS_batch));
  const txn::CityKeyring keyring = *txn::CityKeyring::Dev();
  std::vector<std::string> messages;
  messages.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    const v1::TransactionUpload upload = ingest::testing::SignedTap(
        keyring, {.card_serial = static_cast<uint64_t>(i % 1000003 + 1),
                  .terminal_serial = static_cast<uint32_t>(i / 20 % 50000 + 1),
                  .seq = static_cast<uint64_t>(i + 1),
                  .amount_fen = 200 + i % 300,
                  .balance_before_fen = 100000});
    messages.push_back(absl::StrCat(*txn::MacInput(upload), upload.tap().txn().mac()));
  }
  const std::vector<absl::string_view> views(messages.begin(), messages.end());
  std::vector<crypto::Sm3Digest> expected(n), digests(n);
  std::vector<double> openssl_rates, lanes_rates, narrow_rates;
  const int wide = crypto::Sm3LanesWidth();
  for (int32_t r = 0; r < std::max(1, absl::GetFlag(FLAGS_rounds)); ++r) {
    absl::Time start = absl::Now();
    for (int64_t i = 0; i < n; ++i) expected[i] = crypto::Sm3(views[i]);
    openssl_rates.push_back(n / absl::ToDoubleSeconds(absl::Now() - start));

    // The eight lanes too where sixteen run (the width other CPUs get), then the best.
    for (const bool narrow : {true, false}) {
      if (narrow && wide < 16) continue;
      crypto::internal::sm3_wide_lanes_disabled_for_testing = narrow;
      std::fill(digests.begin(), digests.end(), crypto::Sm3Digest{});
      start = absl::Now();
      for (int64_t first = 0; first < n; first += batch) {
        const size_t count = std::min<int64_t>(batch, n - first);
        crypto::Sm3Many(absl::MakeConstSpan(views).subspan(first, count),
                        absl::MakeSpan(digests).subspan(first, count));
      }
      (narrow ? narrow_rates : lanes_rates)
          .push_back(n / absl::ToDoubleSeconds(absl::Now() - start));
      CHECK(digests == expected) << "the lanes disagree with OpenSSL";
    }
    crypto::internal::sm3_wide_lanes_disabled_for_testing = false;
  }
  const double lanes = Median(lanes_rates), openssl = Median(openssl_rates);
  std::cout << absl::StrFormat(
                   "digests/round=%d batch=%d rounds=%d us_per_digest: openssl=%.3f "
                   "lanes%d=%.3f",
                   n, batch, lanes_rates.size(), 1e6 / openssl, wide, 1e6 / lanes)
            << (narrow_rates.empty() ? ""
                                     : absl::StrFormat(" lanes8=%.3f", 1e6 / Median(narrow_rates)))
            << std::endl;
  std::cout << absl::StrFormat(
                   "lanes_rate=%.0f openssl_rate=%.0f ratio=%.2f message_bytes=%d lanes=%d", lanes,
                   openssl, lanes / openssl, messages.front().size(), wide)
            << std::endl;
  return 0;
}

}  // namespace
}  // namespace tongka::bench

int main(int argc, char** argv) {
  return tongka::bench::RunBenchmark(argc, argv, tongka::bench::Main);
}
