// SM3 digests and HMAC-SM3 (GB/T 32905-2016; HMAC per RFC 2104 / GM/T 0042-2015), via OpenSSL 3.
//
// What it is: the hash Tongka uses wherever a digest or keyed digest is needed (holder identity
// tokens, dev tokens, state digests). Both functions are one-shot. Sm3 reuses one OpenSSL context
// per thread (~0.5 us for a short message); HmacSm3 allocates one per call (a few microseconds).
// Many short unkeyed messages hash faster together: Sm3Many in sm3_lanes.h.
// Ownership: inputs are borrowed for the duration of the call; outputs are values.
// Thread-safety: thread-safe; no shared mutable state (Sm3's context is the thread's own).
// Failure behaviour: never fails for valid input. An OpenSSL failure (no SM3 in the provider,
// memory exhaustion) CHECK-fails; call tongka::crypto::SelfTest() at start-up to turn a missing
// algorithm into a Status before serving.
//
// Example:
//   tongka::crypto::Sm3Digest digest = tongka::crypto::Sm3("abc");
//   tongka::crypto::Sm3Digest tag = tongka::crypto::HmacSm3(secret, message);
#ifndef TONGKA_LIBS_CRYPTO_SM3_H_
#define TONGKA_LIBS_CRYPTO_SM3_H_

#include "absl/strings/string_view.h"
#include "libs/crypto/bytes.h"

namespace tongka::crypto {

// The SM3 digest of `data`.
Sm3Digest Sm3(absl::string_view data);

// HMAC-SM3 of `data` under `key` (any length; keys longer than the 64-byte SM3 block are hashed
// first, as RFC 2104 prescribes). Callers that need a minimum key strength check it themselves
// (HmacSm3Tokenizer and the dev-token signer require >= 16 bytes).
Sm3Digest HmacSm3(absl::string_view key, absl::string_view data);

}  // namespace tongka::crypto

#endif  // TONGKA_LIBS_CRYPTO_SM3_H_
