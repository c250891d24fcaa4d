// SM4-CMAC: the 16-byte message authentication code terminals attach to uploaded transactions.
//
// What it is: CMAC (NIST SP 800-38B) over the SM4 block cipher (GB/T 32907-2016), computed by
// OpenSSL 3's EVP_MAC "CMAC" with cipher "SM4-CBC". Tags are the full 16 bytes; Tongka does not
// accept truncated tags.
// Ownership: inputs are borrowed for the duration of the call; outputs are values.
// Thread-safety: thread-safe. Each thread keeps one CMAC context and the key it holds (wiped at
// thread exit); a MAC under the same key as the thread's last one restarts that context, which
// SelfTest() checks this OpenSSL does correctly.
// Failure behaviour: the key type fixes its size, so computing a MAC cannot fail for any input.
// An OpenSSL failure CHECK-fails (call tongka::crypto::SelfTest() at start-up). Verification
// returns false for a wrong tag of any length and never throws or logs the inputs.
//
// Example:
//   absl::StatusOr<tongka::crypto::Sm4Key> key =
//       tongka::crypto::ArrayFromBytes<tongka::crypto::kSm4KeySize>(key_bytes, "terminal key");
//   if (!key.ok()) return key.status();
//   if (!tongka::crypto::VerifySm4Cmac(*key, signed_bytes, txn.mac())) {
//     return absl::InvalidArgumentError("mac: does not verify under the terminal key");
//   }
#ifndef TONGKA_LIBS_CRYPTO_SM4_CMAC_H_
#define TONGKA_LIBS_CRYPTO_SM4_CMAC_H_

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "libs/crypto/bytes.h"

namespace tongka::crypto {

// The SM4-CMAC tag of `message` under `key`. Any message length, including zero.
Sm4Mac Sm4Cmac(const Sm4Key& key, absl::string_view message);

// True iff `mac` is exactly the 16-byte SM4-CMAC of `message` under `key`. The comparison runs in
// time independent of where the tags differ (CRYPTO_memcmp), so a caller probing with forged tags
// learns nothing from timing. A `mac` of the wrong length is rejected without comparing.
bool VerifySm4Cmac(const Sm4Key& key, absl::string_view message, absl::string_view mac);

// tags[i] = Sm4Cmac(*keys[i], messages[i]) for every i, computed together: eight at a time in
// SIMD lanes (sm4_lanes.h) where the CPU has AES-NI and AVX, else one by one as above. For a
// batch of transactions the lanes cost a small fraction of the one-by-one MACs. CHECK-fails
// unless the spans have the same size.
void Sm4CmacMany(absl::Span<const Sm4Key* const> keys, absl::Span<const absl::string_view> messages,
                 absl::Span<Sm4Mac> tags);

// True iff `mac` is exactly `tag`, compared in constant time (a wrong length is false).
bool Sm4MacEquals(const Sm4Mac& tag, absl::string_view mac);

}  // namespace tongka::crypto

#endif  // TONGKA_LIBS_CRYPTO_SM4_CMAC_H_
