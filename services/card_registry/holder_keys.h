// HolderKeys: the per-issuer-city secrets the card registry tokenizes holder identity and phone
// device ids with, loaded from the --holder_keys file. Clear identifiers arrive in API requests
// only to be turned into 32-byte HMAC-SM3 tokens here, before anything is written.
//
// File format: one line per issuer city, "<city code>:<hex secret>", the secret at least 16 bytes
// (32 hex digits); '#' starts a comment, blank lines are ignored. The file comes from the secret
// store and is never checked in. Error messages name "<path>:<line>" and never hold key bytes.
//
// Tokens:
//   - holder identity: crypto::HmacSm3Tokenizer (libs/crypto/tokenizer.h) under the issuer's
//     secret, domains kResidentIdNumber and kMobilePhone (normalised there);
//   - device ids (VIRTUAL_NFC): the tokenizer knows only those two domains, so the device token is
//     HMAC-SM3(secret, "tongka-pii-token-v1" || 0x00 || "device-id" || 0x00 || device_id), the
//     same construction with its own domain label, so it never equals a holder token.
//
// Ownership: immutable after load; copies of the secrets are wiped (OPENSSL_cleanse) on
// destruction. Thread-safety: every const method is thread-safe. Failure: a city without a key is
// FAILED_PRECONDITION naming the city; a value that does not normalise is INVALID_ARGUMENT naming
// the rule, never the value.
//
// Example:
//   absl::StatusOr<std::shared_ptr<const HolderKeys>> keys = HolderKeys::FromFile(path);
//   absl::StatusOr<std::string> token =
//       (*keys)->Tokenize(310000, crypto::IdentifierDomain::kMobilePhone, phone);
#ifndef TONGKA_SERVICES_CARD_REGISTRY_HOLDER_KEYS_H_
#define TONGKA_SERVICES_CARD_REGISTRY_HOLDER_KEYS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/tokenizer.h"

namespace tongka::card_registry {

// The domain label of device id tokens (see above).
inline constexpr absl::string_view kDeviceIdLabel = "device-id";
// A device id is 1..128 printable ASCII characters.
inline constexpr size_t kDeviceIdSizeMax = 128;

class HolderKeys {
 public:
  static absl::StatusOr<std::shared_ptr<const HolderKeys>> FromFile(const std::string& path);
  // The same parser over text in memory; `source` names it in errors.
  static absl::StatusOr<std::shared_ptr<const HolderKeys>> FromText(absl::string_view text,
                                                                    absl::string_view source);
  // No keys at all (--auth=dev without --holder_keys): every tokenization is refused.
  static std::shared_ptr<const HolderKeys> Empty();

  HolderKeys(const HolderKeys&) = delete;
  HolderKeys& operator=(const HolderKeys&) = delete;
  ~HolderKeys();

  bool Has(uint32_t city) const { return keys_.count(city) != 0; }
  std::vector<uint32_t> Cities() const;

  // The 32-byte token of a holder identifier under `city`'s key.
  absl::StatusOr<std::string> Tokenize(uint32_t city, crypto::IdentifierDomain domain,
                                       absl::string_view value) const;
  // The 32-byte token of a phone's device id under `city`'s key.
  absl::StatusOr<std::string> DeviceToken(uint32_t city, absl::string_view device_id) const;

 private:
  struct Key {
    crypto::HmacSm3Tokenizer tokenizer;
    std::string secret;
  };
  HolderKeys() = default;
  absl::StatusOr<const Key*> KeyOf(uint32_t city) const;

  std::map<uint32_t, Key> keys_;
};

}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_HOLDER_KEYS_H_
