// Sm4CmacLanes: the SM4-CMAC tags of many messages at once, each under its own key, computed
// eight at a time side by side in SIMD lanes with the SM4 S-box evaluated by the AES-NI
// instruction (a "multi-buffer" MAC).
//
// What it is for: ingest verifies one SM4-CMAC per uploaded transaction. OpenSSL 3.0 has no x86
// assembly for SM4; its generic C code costs about 1.6 us for a transaction's 7-block MAC, the
// largest single cost of an upload. Here a MAC of the same length costs a small fraction of that
// (tools/bench:sm4_cmac measures both in one run).
//
// How: SM4 (GB/T 32907-2016) is 32 rounds of X4 = X0 ^ L(S(X1 ^ X2 ^ X3 ^ rk)) on 32-bit words.
// Four lanes' words share one 128-bit register (word-sliced). The S-box is affine-equivalent to
// AES's: S_sm4(x) = Post(S_aes(Pre(x))), where Pre and Post are affine maps over GF(2) (the
// isomorphism between SM4's and AES's GF(2^8) composed with SM4's own affine maps). Pre and Post
// are applied with two 16-entry nibble table shuffles each (PSHUFB), S_aes with AESENCLAST under a
// zero round key after undoing its ShiftRows. The tables are derived in sm4_lanes.cc's comment
// and every S-box output is checked by sm4_lanes_test. Nothing here indexes memory with secret
// data: every step is a register operation, so the time taken does not depend on keys or
// messages (OpenSSL's generic SM4 looks its S-box up in memory tables).
//
// The result is SM4-CMAC (NIST SP 800-38B over SM4) exactly: sm4_lanes_test checks it against
// OpenSSL's (sm4_cmac.h) on every message length from 0 to 200 bytes, mixed lengths and keys in
// one call, and known answers from another implementation (Python's cryptography package);
// SelfTest() checks the lanes against OpenSSL at start-up.
//
// Ownership: inputs are borrowed for the call. Key schedules, subkeys and padded blocks are wiped
// before returning. Thread-safety: a pure function. Failure: CHECK-fails unless
// Sm4LanesSupported() and the spans have the same size; it cannot fail otherwise.
//
// Example (what Sm4CmacMany in sm4_cmac.h does):
//   if (tongka::crypto::Sm4LanesSupported()) {
//     tongka::crypto::Sm4CmacLanes(keys, messages, absl::MakeSpan(tags));
//   }
#ifndef TONGKA_LIBS_CRYPTO_SM4_LANES_H_
#define TONGKA_LIBS_CRYPTO_SM4_LANES_H_

#include <atomic>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "libs/crypto/bytes.h"

namespace tongka::crypto {

// True when this CPU has the instructions the lanes use (AES-NI and AVX).
bool Sm4LanesSupported();

// tags[i] = SM4-CMAC of messages[i] under *keys[i], for every i. Messages of any length.
void Sm4CmacLanes(absl::Span<const Sm4Key* const> keys,
                  absl::Span<const absl::string_view> messages, absl::Span<Sm4Mac> tags);

namespace internal {
// When true, Sm4LanesSupported() says false, so Sm4CmacMany takes OpenSSL's path: for tests of
// that path on CPUs that have the lanes.
extern std::atomic<bool> sm4_lanes_disabled_for_testing;

// SM4's S-box on each of 16 bytes, as the lanes compute it (for sm4_lanes_test). Needs
// Sm4LanesSupported().
void Sm4SubBytesLanes(const uint8_t in[16], uint8_t out[16]);
}  // namespace internal

}  // namespace tongka::crypto

#endif  // TONGKA_LIBS_CRYPTO_SM4_LANES_H_
