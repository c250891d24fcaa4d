// Sm3Many: the SM3 digests of many short messages at once, computed side by side in SIMD lanes
// (a "multi-buffer" hash, as in Intel's ISA-L crypto): sixteen at a time with AVX-512, eight with
// AVX2 or SSE2.
//
// What it is for: hashing a stream of small public values where OpenSSL's one-call-per-message
// SM3 costs more than the work around it. Settlement's stage one hashes every tap and refund id
// into its cells' order-independent digests (about 0.5 us per id through EVP: one compression of
// 0.37 us plus the EVP context's set-up and wipe); eight ids in AVX2 lanes take about as long as
// one. Secrets never go through here: keyed SM3 (HMAC-SM3 tokens, dev tokens) and SM4 stay on
// OpenSSL (sm3.h, sm4_cmac.h), where constant-time code and wiping are OpenSSL's business.
//
// The result is SM3 (GB/T 32905) exactly: sm3_lanes_test checks it against the standard's
// examples and against OpenSSL's Sm3() on every message length from 0 to 300 bytes and on
// random batches. Messages of at most kSm3LaneMessageMax bytes (four padded blocks) go into the
// lanes, eight of the same block count at a time; longer ones are hashed one by one with Sm3().
//
// The lanes are built three ways from one source: sixteen lanes for x86-64-v4 (AVX-512), chosen
// at the first call where the CPU has it, and eight for AVX2, chosen at load time (GCC
// target_clones), or SSE2 elsewhere. Ingest hashes every upload's content this way (~0.09 us per
// 131-byte content with AVX-512, ~0.18 with AVX2, ~0.68 through EVP: bench/sm3_lanes).
// Ownership: inputs are borrowed for the call. Thread-safety: a pure function.
//
// Example:
//   std::vector<absl::string_view> ids = ...;
//   std::vector<tongka::crypto::Sm3Digest> digests(ids.size());
//   tongka::crypto::Sm3Many(ids, absl::MakeSpan(digests));
#ifndef TONGKA_LIBS_CRYPTO_SM3_LANES_H_
#define TONGKA_LIBS_CRYPTO_SM3_LANES_H_

#include <atomic>
#include <cstddef>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "libs/crypto/bytes.h"

namespace tongka::crypto {

// The most SM3 blocks a message hashed in the lanes may take, and so the longest such message
// (its padding is 0x80 and the 64-bit length: 9 bytes at least).
inline constexpr int kSm3LaneBlocksMax = 4;
inline constexpr size_t kSm3LaneMessageMax = kSm3LaneBlocksMax * 64 - 9;

// digests[i] = SM3(messages[i]) for every i. CHECK-fails unless the spans have the same size.
void Sm3Many(absl::Span<const absl::string_view> messages, absl::Span<Sm3Digest> digests);

// How many messages Sm3Many hashes side by side on this CPU: 16 or 8 (for logs and benchmarks).
int Sm3LanesWidth();

namespace internal {
// When true, Sm3Many takes the eight lanes even where sixteen run: for tests of that path.
extern std::atomic<bool> sm3_wide_lanes_disabled_for_testing;
}  // namespace internal

}  // namespace tongka::crypto

#endif  // TONGKA_LIBS_CRYPTO_SM3_LANES_H_
