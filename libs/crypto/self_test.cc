#include "libs/crypto/self_test.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libs/crypto/openssl_util.h"
#include "libs/crypto/sm3.h"
#include "libs/crypto/sm4_cmac.h"
#include "libs/crypto/sm4_lanes.h"

namespace tongka::crypto {
namespace {

// Fetches each algorithm without CHECKing, so a missing one becomes a Status.
absl::Status CheckAvailable() {
  if (EVP_MD* md = EVP_MD_fetch(nullptr, "SM3", nullptr)) {
    EVP_MD_free(md);
  } else {
    return absl::FailedPreconditionError(
        absl::StrCat("OpenSSL has no SM3: ", internal::OpenSslErrorString()));
  }
  if (EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "SM4-ECB", nullptr)) {
    EVP_CIPHER_free(cipher);
  } else {
    return absl::FailedPreconditionError(
        absl::StrCat("OpenSSL has no SM4-ECB: ", internal::OpenSslErrorString()));
  }
  for (const char* name : {"HMAC", "CMAC"}) {
    if (EVP_MAC* mac = EVP_MAC_fetch(nullptr, name, nullptr)) {
      EVP_MAC_free(mac);
    } else {
      return absl::FailedPreconditionError(
          absl::StrCat("OpenSSL has no ", name, ": ", internal::OpenSslErrorString()));
    }
  }
  if (EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "KBKDF", nullptr)) {
    EVP_KDF_free(kdf);
  } else {
    return absl::FailedPreconditionError(
        absl::StrCat("OpenSSL has no KBKDF: ", internal::OpenSslErrorString()));
  }
  return absl::OkStatus();
}

absl::Status Expect(absl::string_view what, absl::string_view actual, absl::string_view hex) {
  if (actual != absl::HexStringToBytes(hex)) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": OpenSSL computed ", absl::BytesToHexString(actual), ", expected ", hex));
  }
  return absl::OkStatus();
}

absl::Status CheckSm4Ecb() {
  // GB/T 32907-2016 Appendix A, example 1: key = plaintext.
  const std::string key = absl::HexStringToBytes("0123456789abcdeffedcba9876543210");
  internal::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  unsigned char out[32];
  int out_size = 0;
  int final_size = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_sm4_ecb(), nullptr,
                         reinterpret_cast<const unsigned char*>(key.data()), nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out, &out_size,
                        reinterpret_cast<const unsigned char*>(key.data()),
                        static_cast<int>(key.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out + out_size, &final_size) != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("SM4-ECB encryption failed: ", internal::OpenSslErrorString()));
  }
  return Expect("SM4-ECB (GB/T 32907)",
                absl::string_view(reinterpret_cast<const char*>(out), out_size + final_size),
                "681edf34d206965e86b3e94f536e4246");
}

// Sm4Cmac restarts its thread's context under the key it holds (EVP_MAC_init with a null key)
// when the next MAC is under the same key. OpenSSL 3.0.0-3.0.2 answered that call with success
// and did nothing, which would make every such MAC silently wrong: check that this OpenSSL
// gives a restarted context the same MAC as a freshly keyed one.
absl::Status CheckCmacRestart() {
  char cipher_name[] = "SM4-CBC";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher_name, 0),
      OSSL_PARAM_construct_end(),
  };
  const unsigned char key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const std::string first = "v1|tap|first";
  const std::string second = "v1|tap|second, a little longer than one block";
  auto mac = [&](EVP_MAC_CTX* ctx, const unsigned char* init_key, const std::string& message,
                 std::string* out) {
    unsigned char tag[16];
    size_t written = 0;
    const bool ok =
        EVP_MAC_init(ctx, init_key, init_key == nullptr ? 0 : sizeof(key), nullptr) == 1 &&
        EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(message.data()),
                       message.size()) == 1 &&
        EVP_MAC_final(ctx, tag, &written, sizeof(tag)) == 1 && written == sizeof(tag);
    *out = std::string(reinterpret_cast<const char*>(tag), ok ? written : 0);
    return ok;
  };
  internal::EvpMacCtxPtr restarted(EVP_MAC_CTX_new(internal::Cmac()));
  internal::EvpMacCtxPtr fresh(EVP_MAC_CTX_new(internal::Cmac()));
  std::string ignored, restarted_tag, fresh_tag;
  if (restarted == nullptr || fresh == nullptr ||
      EVP_MAC_CTX_set_params(restarted.get(), params) != 1 ||
      EVP_MAC_CTX_set_params(fresh.get(), params) != 1 ||
      !mac(restarted.get(), key, first, &ignored) ||
      !mac(restarted.get(), nullptr, second, &restarted_tag) ||
      !mac(fresh.get(), key, second, &fresh_tag)) {
    return absl::FailedPreconditionError(
        absl::StrCat("SM4-CMAC restart failed: ", internal::OpenSslErrorString()));
  }
  if (restarted_tag != fresh_tag) {
    return absl::FailedPreconditionError(
        "this OpenSSL does not restart a CMAC context under its key (fixed in OpenSSL 3.0.3); "
        "Sm4Cmac would compute wrong MACs");
  }
  return absl::OkStatus();
}

// Where the CPU has them, ingest verifies MACs in the SIMD lanes (sm4_lanes.h): every kernel this
// CPU runs must give OpenSSL's tags (whose SM4 CheckSm4Ecb has checked) for short, block-sized
// and longer messages under different keys in one call.
absl::Status CheckSm4Lanes() {
  Sm4Key first{}, second{};
  for (size_t i = 0; i < first.size(); ++i) {
    first[i] = static_cast<uint8_t>(i);
    second[i] = static_cast<uint8_t>(0xa5 ^ (i * 29));
  }
  const std::string counting = "0123456789abcdefghijklmnopqrstuvwxyz|tap|310000-BUS-000001|";
  const absl::string_view messages[] = {"", absl::string_view(counting).substr(0, 16),
                                        absl::string_view(counting).substr(0, 37), counting,
                                        absl::string_view(counting).substr(5, 33)};
  const Sm4Key* keys[] = {&first, &second, &first, &second, &second};
  for (const internal::Sm4LanesIsa isa :
       {internal::Sm4LanesIsa::kAesNiAvx, internal::Sm4LanesIsa::kGfniAvx512}) {
    if (!internal::Sm4LanesIsaSupported(isa)) continue;
    Sm4Mac tags[std::size(messages)];
    internal::Sm4CmacLanesWith(isa, keys, messages, absl::MakeSpan(tags));
    for (size_t i = 0; i < std::size(messages); ++i) {
      if (tags[i] != Sm4Cmac(*keys[i], messages[i])) {
        return absl::FailedPreconditionError(absl::StrCat(
            "SM4-CMAC in SIMD lanes (kernel ", int(isa), ") disagrees with OpenSSL for a ",
            messages[i].size(), "-byte message: ingest would reject good MACs"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SelfTest() {
  if (absl::Status status = CheckAvailable(); !status.ok()) return status;
  if (absl::Status status =
          Expect("SM3(\"abc\") (GB/T 32905)", AsStringView(Sm3("abc")),
                 "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
      !status.ok()) {
    return status;
  }
  if (absl::Status status = Expect(
          "HMAC-SM3 (GM/T 0042 D.3)", AsStringView(HmacSm3("Jefe", "what do ya want for nothing?")),
          "2e87f1d16862e6d964b50a5200bf2b10b764faa9680a296a2405f24bec39f882");
      !status.ok()) {
    return status;
  }
  if (absl::Status status = CheckSm4Ecb(); !status.ok()) return status;
  if (absl::Status status = CheckSm4Lanes(); !status.ok()) return status;
  return CheckCmacRestart();
}

}  // namespace tongka::crypto
