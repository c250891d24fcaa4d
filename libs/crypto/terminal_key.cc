#include "libs/crypto/terminal_key.h"

#include <glog/logging.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include "absl/strings/str_cat.h"
#include "libs/crypto/openssl_util.h"

namespace tongka::crypto {
namespace {

absl::Status ValidateTerminalId(absl::string_view terminal_id) {
  if (terminal_id.empty() || terminal_id.size() > kTerminalIdSizeMax) {
    return absl::InvalidArgumentError(absl::StrCat("terminal_id: must be 1..", kTerminalIdSizeMax,
                                                   " bytes, got ", terminal_id.size()));
  }
  for (char c : terminal_id) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "terminal_id: must be printable ASCII without spaces (0x21..0x7e)");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Sm4Key> DeriveTerminalKey(const Sm4Key& city_master_key,
                                         absl::string_view terminal_id) {
  if (absl::Status status = ValidateTerminalId(terminal_id); !status.ok()) return status;

  char mode[] = "counter";
  char mac[] = "CMAC";
  char cipher[] = "SM4-CBC";
  // OSSL_PARAM wants non-const pointers for octet strings it only reads.
  auto* key = const_cast<unsigned char*>(city_master_key.data());
  auto* label = const_cast<char*>(kTerminalKeyLabel.data());
  auto* context = const_cast<char*>(terminal_id.data());
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, mode, 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, mac, 0),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_CIPHER, cipher, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key, city_master_key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, label, kTerminalKeyLabel.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, context, terminal_id.size()),
      OSSL_PARAM_construct_end(),
  };
  internal::EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(internal::Kbkdf()));
  CHECK(ctx != nullptr) << "EVP_KDF_CTX_new: " << internal::OpenSslErrorString();
  Sm4Key derived;
  CHECK_EQ(EVP_KDF_derive(ctx.get(), derived.data(), derived.size(), params), 1)
      << "EVP_KDF_derive(KBKDF/SM4-CMAC): " << internal::OpenSslErrorString();
  return derived;
}

}  // namespace tongka::crypto
