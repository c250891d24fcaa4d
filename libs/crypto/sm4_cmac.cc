#include "libs/crypto/sm4_cmac.h"

#include <glog/logging.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "libs/crypto/openssl_util.h"
#include "libs/crypto/sm4_lanes.h"

namespace tongka::crypto {

Sm4Mac Sm4Cmac(const Sm4Key& key, absl::string_view message) {
  // One CMAC context per thread with its cipher already chosen: selecting the cipher by name
  // fetches it from OpenSSL's provider on every init, which cost more than the MAC itself (ingest
  // verifies one per transaction). Re-initialising with only a new key keeps the cipher.
  struct Context {
    internal::EvpMacCtxPtr ctx;
    // The key `ctx` holds. A terminal uploads its transactions together, so the next MAC is
    // mostly under the same key: then the context restarts with the key schedule and CMAC
    // subkeys it already has, which is 40% of a short MAC's cost. Wiped with the context.
    Sm4Key key{};
    bool keyed = false;
    ~Context() { OPENSSL_cleanse(key.data(), key.size()); }
  };
  thread_local Context context;
  if (context.ctx == nullptr) {
    // CMAC is defined over the raw block cipher; OpenSSL names the cipher by its CBC mode because
    // its CMAC implementation chains blocks with CBC internally.
    char cipher_name[] = "SM4-CBC";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher_name, 0),
        OSSL_PARAM_construct_end(),
    };
    context.ctx.reset(EVP_MAC_CTX_new(internal::Cmac()));
    CHECK(context.ctx != nullptr) << "EVP_MAC_CTX_new: " << internal::OpenSslErrorString();
    CHECK_EQ(EVP_MAC_CTX_set_params(context.ctx.get(), params), 1)
        << "CMAC cipher SM4-CBC: " << internal::OpenSslErrorString();
  }
  const auto* data = reinterpret_cast<const unsigned char*>(message.data());
  Sm4Mac tag;
  if (context.keyed && CRYPTO_memcmp(context.key.data(), key.data(), key.size()) == 0) {
    internal::ComputeMacWithCurrentKey(context.ctx.get(), data, message.size(), tag.data(),
                                       tag.size());
    return tag;
  }
  // Marked unkeyed first: should the MAC below fail (it CHECK-fails today), the next call keys
  // the context anew.
  context.keyed = false;
  internal::ComputeMacWith(context.ctx.get(), key.data(), key.size(), data, message.size(),
                           tag.data(), tag.size());
  context.key = key;
  context.keyed = true;
  return tag;
}

bool Sm4MacEquals(const Sm4Mac& tag, absl::string_view mac) {
  return mac.size() == tag.size() && CRYPTO_memcmp(tag.data(), mac.data(), tag.size()) == 0;
}

bool VerifySm4Cmac(const Sm4Key& key, absl::string_view message, absl::string_view mac) {
  if (mac.size() != kSm4BlockSize) return false;
  return Sm4MacEquals(Sm4Cmac(key, message), mac);
}

void Sm4CmacMany(absl::Span<const Sm4Key* const> keys, absl::Span<const absl::string_view> messages,
                 absl::Span<Sm4Mac> tags) {
  CHECK_EQ(keys.size(), messages.size());
  CHECK_EQ(keys.size(), tags.size());
  if (Sm4LanesSupported()) {
    Sm4CmacLanes(keys, messages, tags);
    return;
  }
  for (size_t i = 0; i < keys.size(); ++i) tags[i] = Sm4Cmac(*keys[i], messages[i]);
}

}  // namespace tongka::crypto
