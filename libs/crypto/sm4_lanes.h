// Sm4CmacLanes: the SM4-CMAC tags of many messages at once, each under its own key, computed
// side by side in SIMD lanes (a "multi-buffer" MAC): 32 at a time with AVX-512 and GFNI where the
// CPU has them, else 8 at a time with the S-box evaluated by the AES-NI instruction.
//
// What it is for: ingest verifies one SM4-CMAC per uploaded transaction. OpenSSL 3.0 has no x86
// assembly for SM4; its generic C code costs about 1.6 us for a transaction's 7-block MAC, the
// largest single cost of an upload. Here a MAC of the same length costs a small fraction of that
// (tools/bench:sm4_cmac measures both in one run).
//
// How: SM4 (GB/T 32907-2016) is 32 rounds of X4 = X0 ^ L(S(X1 ^ X2 ^ X3 ^ rk)) on 32-bit words.
// The lanes' words share registers (word-sliced): 4 to a 128-bit register, 16 to a 512-bit one.
// The S-box is affine-equivalent to AES's field inversion: with AES-NI it is AESENCLAST between
// two affine maps applied as nibble table shuffles (sm4_lanes_aesni.cc), with GFNI one
// GF2P8AFFINEQB and one GF2P8AFFINEINVQB (sm4_lanes_gfni.cc); both derivations are in those
// files and every S-box output of each is checked by sm4_lanes_test. The two kernels are one
// piece of code (sm4_lanes_kernel.inc) over the instruction set. Nothing here indexes memory with
// secret data: every step is a register operation, so the time taken does not depend on keys or
// messages (OpenSSL's generic SM4 looks its S-box up in memory tables).
//
// The result is SM4-CMAC (NIST SP 800-38B over SM4) exactly: sm4_lanes_test checks it against
// OpenSSL's (sm4_cmac.h) on every message length from 0 to 200 bytes, mixed lengths and keys in
// one call, and known answers from another implementation (Python's cryptography package);
// SelfTest() checks the lanes against OpenSSL at start-up.
//
// Ownership: inputs are borrowed for the call. Key schedules, subkeys and padded blocks are wiped
// before returning. Thread-safety: a pure function. Failure: CHECK-fails unless
// Sm4LanesSupported() and the spans have the same size; it cannot fail otherwise. SelfTest()
// checks every kernel this CPU runs against OpenSSL.
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

// True when this CPU has the instructions of the AES-NI kernel (AES-NI and AVX), with the OS
// saving their registers; the GFNI kernel (AVX-512 F and BW with GFNI) runs where the CPU also
// has those.
bool Sm4LanesSupported();

// tags[i] = SM4-CMAC of messages[i] under *keys[i], for every i. Messages of any length.
void Sm4CmacLanes(absl::Span<const Sm4Key* const> keys,
                  absl::Span<const absl::string_view> messages, absl::Span<Sm4Mac> tags);

// The kernel Sm4CmacLanes uses on this CPU: "gfni-avx512", "aesni-avx", or "none" (then
// Sm4CmacMany uses OpenSSL). For benchmark and start-up logs.
absl::string_view Sm4LanesIsaName();

namespace internal {
enum class Sm4LanesIsa { kAesNiAvx, kGfniAvx512 };

// Whether this CPU and OS can run that kernel (whatever the flags below say).
bool Sm4LanesIsaSupported(Sm4LanesIsa isa);

// Sm4CmacLanes on the given kernel, for tests and benchmarks comparing them. CHECK-fails unless
// Sm4LanesIsaSupported(isa).
void Sm4CmacLanesWith(Sm4LanesIsa isa, absl::Span<const Sm4Key* const> keys,
                      absl::Span<const absl::string_view> messages, absl::Span<Sm4Mac> tags);

// SM4's S-box on each of 16 bytes, as that kernel computes it (for sm4_lanes_test).
void Sm4SubBytesLanes(Sm4LanesIsa isa, const uint8_t in[16], uint8_t out[16]);

// When true, Sm4LanesSupported() says false, so Sm4CmacMany takes OpenSSL's path: for tests of
// that path on CPUs that have the lanes.
extern std::atomic<bool> sm4_lanes_disabled_for_testing;
// When true, Sm4CmacLanes uses the AES-NI kernel even where GFNI's runs: for benchmarks.
extern std::atomic<bool> sm4_gfni_disabled_for_testing;
}  // namespace internal

}  // namespace tongka::crypto

#endif  // TONGKA_LIBS_CRYPTO_SM4_LANES_H_
