#include "libs/crypto/openssl_util.h"

#include <glog/logging.h>
#include <openssl/err.h>

#include "absl/strings/str_cat.h"

namespace tongka::crypto::internal {
namespace {

// A valid pointer for zero-length inputs: OpenSSL treats a null key as "keep the previous key".
const unsigned char kEmpty[1] = {0};

}  // namespace

EVP_MAC* Hmac() {
  static EVP_MAC* const mac = [] {
    EVP_MAC* fetched = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    CHECK(fetched != nullptr) << "OpenSSL has no HMAC: " << OpenSslErrorString();
    return fetched;
  }();
  return mac;
}

EVP_MAC* Cmac() {
  static EVP_MAC* const mac = [] {
    EVP_MAC* fetched = EVP_MAC_fetch(nullptr, "CMAC", nullptr);
    CHECK(fetched != nullptr) << "OpenSSL has no CMAC: " << OpenSslErrorString();
    return fetched;
  }();
  return mac;
}

EVP_KDF* Kbkdf() {
  static EVP_KDF* const kdf = [] {
    EVP_KDF* fetched = EVP_KDF_fetch(nullptr, "KBKDF", nullptr);
    CHECK(fetched != nullptr) << "OpenSSL has no KBKDF: " << OpenSslErrorString();
    return fetched;
  }();
  return kdf;
}

std::string OpenSslErrorString() {
  std::string errors;
  char buffer[256];
  while (unsigned long code = ERR_get_error()) {
    ERR_error_string_n(code, buffer, sizeof(buffer));
    absl::StrAppend(&errors, errors.empty() ? "" : "; ", buffer);
  }
  return errors.empty() ? "no OpenSSL error recorded" : errors;
}

void ComputeMac(EVP_MAC* mac, const OSSL_PARAM* params, const unsigned char* key, size_t key_size,
                const unsigned char* data, size_t data_size, unsigned char* out, size_t out_size) {
  EvpMacCtxPtr ctx(EVP_MAC_CTX_new(mac));
  CHECK(ctx != nullptr) << "EVP_MAC_CTX_new: " << OpenSslErrorString();
  CHECK_EQ(EVP_MAC_CTX_set_params(ctx.get(), params), 1)
      << "EVP_MAC_CTX_set_params: " << OpenSslErrorString();
  ComputeMacWith(ctx.get(), key, key_size, data, data_size, out, out_size);
}

namespace {

void FinishMac(EVP_MAC_CTX* ctx, const unsigned char* data, size_t data_size, unsigned char* out,
               size_t out_size) {
  CHECK_EQ(EVP_MAC_update(ctx, data_size == 0 ? kEmpty : data, data_size), 1)
      << "EVP_MAC_update: " << OpenSslErrorString();
  size_t written = 0;
  CHECK_EQ(EVP_MAC_final(ctx, out, &written, out_size), 1)
      << "EVP_MAC_final: " << OpenSslErrorString();
  CHECK_EQ(written, out_size) << "MAC length differs from the expected size";
}

}  // namespace

void ComputeMacWith(EVP_MAC_CTX* ctx, const unsigned char* key, size_t key_size,
                    const unsigned char* data, size_t data_size, unsigned char* out,
                    size_t out_size) {
  // A null key would mean "keep the key you have": an empty key still needs a pointer.
  CHECK_EQ(EVP_MAC_init(ctx, key_size == 0 ? kEmpty : key, key_size, nullptr), 1)
      << "EVP_MAC_init: " << OpenSslErrorString();
  FinishMac(ctx, data, data_size, out, out_size);
}

void ComputeMacWithCurrentKey(EVP_MAC_CTX* ctx, const unsigned char* data, size_t data_size,
                              unsigned char* out, size_t out_size) {
  CHECK_EQ(EVP_MAC_init(ctx, nullptr, 0, nullptr), 1)
      << "EVP_MAC_init (same key): " << OpenSslErrorString();
  FinishMac(ctx, data, data_size, out, out_size);
}

}  // namespace tongka::crypto::internal
