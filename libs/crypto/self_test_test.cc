// Proves SelfTest passes on the platform's OpenSSL (SM3, SM4, HMAC, CMAC and KBKDF available and
// computing the published vectors). A failing self-test here means the build host's OpenSSL
// cannot run Tongka.
#include "libs/crypto/self_test.h"

#include <gtest/gtest.h>

namespace tongka::crypto {
namespace {

TEST(SelfTest, PassesOnThisOpenSsl) {
  absl::Status status = SelfTest();
  EXPECT_TRUE(status.ok()) << status;
}

}  // namespace
}  // namespace tongka::crypto
