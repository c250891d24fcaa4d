// Start-up known-answer tests for the algorithms libs/crypto relies on.
//
// What it is: every other function in libs/crypto CHECK-fails if OpenSSL cannot run SM3, SM4,
// HMAC, CMAC or KBKDF (an OpenSSL built without SM algorithms, a FIPS-only provider
// configuration). A service calls SelfTest() once before it serves, so such a deployment stops at
// start-up with a message instead of crashing on the first tap. It also checks published vectors
// (GB/T 32905 SM3, GB/T 32907 SM4, GM/T 0042 HMAC-SM3), catching a provider that computes wrongly.
// Ownership: none. Thread-safety: thread-safe. Cost: well under a millisecond.
// Failure behaviour: FAILED_PRECONDITION naming the algorithm and the OpenSSL error.
//
// Example:
//   if (absl::Status status = tongka::crypto::SelfTest(); !status.ok()) {
//     LOG(ERROR) << "crypto self-test: " << status;
//     return 1;
//   }
#ifndef TONGKA_LIBS_CRYPTO_SELF_TEST_H_
#define TONGKA_LIBS_CRYPTO_SELF_TEST_H_

#include "absl/status/status.h"

namespace tongka::crypto {

absl::Status SelfTest();

}  // namespace tongka::crypto

#endif  // TONGKA_LIBS_CRYPTO_SELF_TEST_H_
