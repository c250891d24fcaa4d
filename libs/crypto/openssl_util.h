// Internal helpers for the OpenSSL 3 EVP calls in libs/crypto. Not part of the public API.
//
// Ownership: the unique_ptr aliases own the OpenSSL objects they wrap and free them with the
// matching *_free function. The fetched algorithm handles returned by Hmac()/Cmac()/Kbkdf() are
// process-wide singletons, fetched once and never freed (OpenSSL's fetched objects are immutable
// and safe to share between threads).
//
// Failure behaviour: a failing EVP call after a successful fetch means memory exhaustion or a
// broken OpenSSL; the callers CHECK with OpenSslErrorString() so the crash names the cause.
#ifndef TONGKA_LIBS_CRYPTO_OPENSSL_UTIL_H_
#define TONGKA_LIBS_CRYPTO_OPENSSL_UTIL_H_

#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <memory>
#include <string>

namespace tongka::crypto::internal {

struct EvpMacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};
struct EvpKdfCtxFree {
  void operator()(EVP_KDF_CTX* ctx) const { EVP_KDF_CTX_free(ctx); }
};
struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct EvpCipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};

using EvpMacCtxPtr = std::unique_ptr<EVP_MAC_CTX, EvpMacCtxFree>;
using EvpKdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, EvpKdfCtxFree>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;
using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, EvpCipherCtxFree>;

// The "HMAC", "CMAC" and "KBKDF" implementations of the default provider, fetched on first use.
// CHECK-fails if the provider lacks them (a broken or FIPS-only OpenSSL; SelfTest() reports this
// as a Status before any caller gets here).
EVP_MAC* Hmac();
EVP_MAC* Cmac();
EVP_KDF* Kbkdf();

// Drains OpenSSL's thread-local error queue into one line, for CHECK messages and Status texts.
std::string OpenSslErrorString();

// Computes a one-shot MAC with `mac` (HMAC or CMAC) under `key`, configured by `params`
// (digest or cipher name). Writes exactly `out_size` bytes; CHECK-fails on any OpenSSL error.
void ComputeMac(EVP_MAC* mac, const OSSL_PARAM* params, const unsigned char* key, size_t key_size,
                const unsigned char* data, size_t data_size, unsigned char* out, size_t out_size);

// The same with a context whose algorithm parameters are already set (a reusable context: each
// call re-initialises it with `key`, keeping the digest or cipher). Not thread-safe per `ctx`.
void ComputeMacWith(EVP_MAC_CTX* ctx, const unsigned char* key, size_t key_size,
                    const unsigned char* data, size_t data_size, unsigned char* out,
                    size_t out_size);

// The same under the key `ctx` was last given (EVP_MAC_init with a null key: the key schedule
// and, for CMAC, the subkeys are kept). Only for a context that has a key; SelfTest checks that
// this OpenSSL restarts correctly (3.0.0-3.0.2 silently did not).
void ComputeMacWithCurrentKey(EVP_MAC_CTX* ctx, const unsigned char* data, size_t data_size,
                              unsigned char* out, size_t out_size);

}  // namespace tongka::crypto::internal

#endif  // TONGKA_LIBS_CRYPTO_OPENSSL_UTIL_H_
