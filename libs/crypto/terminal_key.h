// Per-terminal SM4 keys derived from a city master key.
//
// What it is: each terminal (gate, bus validator, POS) MACs its uploads with its own SM4 key, so a
// key extracted from one terminal forges nothing for another. Terminal keys are never stored: the
// city's master key and the terminal id reproduce them on demand.
//
// Derivation (fixed; changing it changes every terminal key, so a new one gets a new label):
//   NIST SP 800-108r1 KDF in counter mode, PRF = SM4-CMAC keyed with the city master key,
//   r = 32-bit counter, L = 128 bits, one iteration:
//     terminal_key = SM4-CMAC(master, [1]_32 || Label || 0x00 || terminal_id || [128]_32)
//   with Label = "tongka/terminal-mac-key/v1" and all integers big-endian. Computed by OpenSSL's
//   EVP_KDF "KBKDF" (mode=counter, mac=CMAC, cipher=SM4-CBC, salt=Label, info=terminal_id); the
//   test recomputes the formula above with Sm4Cmac directly.
//
// Ownership: inputs are borrowed for the call; the key is returned by value. Callers should keep
// derived keys no longer than needed.
// Thread-safety: thread-safe; no shared mutable state.
// Failure behaviour: INVALID_ARGUMENT when terminal_id is empty, longer than 64 bytes or not
// printable ASCII (ids are opaque and case-sensitive; callers pass the canonical form). OpenSSL
// failures CHECK-fail.
//
// Example:
//   absl::StatusOr<tongka::crypto::Sm4Key> key =
//       tongka::crypto::DeriveTerminalKey(city_master_key, "310000-BUS-000123");
//   if (!key.ok()) return key.status();
//   bool ok = tongka::crypto::VerifySm4Cmac(*key, signed_bytes, mac);
#ifndef TONGKA_LIBS_CRYPTO_TERMINAL_KEY_H_
#define TONGKA_LIBS_CRYPTO_TERMINAL_KEY_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/bytes.h"

namespace tongka::crypto {

// The KDF label (SP 800-108 "Label"); part of the derivation, see above.
inline constexpr absl::string_view kTerminalKeyLabel = "tongka/terminal-mac-key/v1";
inline constexpr size_t kTerminalIdSizeMax = 64;

absl::StatusOr<Sm4Key> DeriveTerminalKey(const Sm4Key& city_master_key,
                                         absl::string_view terminal_id);

}  // namespace tongka::crypto

#endif  // TONGKA_LIBS_CRYPTO_TERMINAL_KEY_H_
