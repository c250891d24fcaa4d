// HmacSm3Tokenizer: turns a cardholder's personal identifier into a stable 32-byte token.
//
// What it is: holder identity (resident ID number, mobile phone) is never stored in clear. Services
// store and index the token instead; the same person gives the same token in every service that
// holds the same secret, and without the secret a token reveals nothing (HMAC-SM3 is a PRF).
//
// The token is HMAC-SM3(secret, "tongka-pii-token-v1" || 0x00 || domain_label || 0x00 || value)
// where value is the identifier after normalisation:
//   - kResidentIdNumber (GB 11643, 18 characters; domain_label "cn-resident-id"): trim ASCII
//     whitespace, uppercase (the check character 'x' becomes 'X'), then require 17 digits plus a
//     digit or 'X' that matches the ISO 7064 MOD 11-2 check character.
//   - kMobilePhone (mainland mobile; domain_label "cn-mobile"): trim ASCII whitespace, drop inner
//     spaces and hyphens, drop a leading "+86" or "0086", then require 11 digits starting with '1'.
// The domain label keeps identical strings in different domains apart, and the NUL separators keep
// the encoding unambiguous (labels and normalised values never contain NUL). Changing any of this
// changes every token, so a change gets a new "-v2" prefix and a re-tokenisation migration.
//
// Ownership: the tokenizer owns a copy of the secret and wipes it (OPENSSL_cleanse) on
// destruction. Inputs are borrowed for the call.
// Thread-safety: immutable after Create(); Tokenize() and Normalize() are thread-safe.
// Failure behaviour: Create() returns INVALID_ARGUMENT for a secret shorter than 16 bytes.
// Tokenize()/Normalize() return INVALID_ARGUMENT naming the rule a value breaks; error messages
// never contain the value itself (it is personal data). OpenSSL failures CHECK-fail.
//
// Example:
//   absl::StatusOr<tongka::crypto::HmacSm3Tokenizer> tokenizer =
//       tongka::crypto::HmacSm3Tokenizer::Create(secret_from_kms);
//   if (!tokenizer.ok()) return tokenizer.status();
//   absl::StatusOr<tongka::crypto::Sm3Digest> token = tokenizer->Tokenize(
//       tongka::crypto::IdentifierDomain::kResidentIdNumber, " 11010519491231002x ");
//   if (!token.ok()) return token.status();  // INVALID_ARGUMENT: bad ID number
//   card.set_holder_id_token(std::string(tongka::crypto::AsStringView(*token)));
#ifndef TONGKA_LIBS_CRYPTO_TOKENIZER_H_
#define TONGKA_LIBS_CRYPTO_TOKENIZER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/crypto/bytes.h"

namespace tongka::crypto {

// Which kind of identifier a value is. Each has its own normalisation and domain label.
enum class IdentifierDomain {
  kResidentIdNumber,  // PRC resident identity card number (18 characters)
  kMobilePhone,       // mainland China mobile number (11 digits)
};

// The domain label mixed into the token ("cn-resident-id", "cn-mobile").
absl::string_view DomainLabel(IdentifierDomain domain);

// The canonical form of `value` in `domain`, as described above, or INVALID_ARGUMENT.
absl::StatusOr<std::string> NormalizeIdentifier(IdentifierDomain domain, absl::string_view value);

class HmacSm3Tokenizer {
 public:
  static constexpr size_t kSecretSizeMin = 16;
  static constexpr absl::string_view kTokenPrefix = "tongka-pii-token-v1";

  // Validates `secret` (>= 16 bytes) and copies it.
  static absl::StatusOr<HmacSm3Tokenizer> Create(absl::string_view secret);

  HmacSm3Tokenizer(const HmacSm3Tokenizer& other) = default;
  HmacSm3Tokenizer& operator=(const HmacSm3Tokenizer& other) = default;
  HmacSm3Tokenizer(HmacSm3Tokenizer&& other) = default;
  HmacSm3Tokenizer& operator=(HmacSm3Tokenizer&& other) = default;
  ~HmacSm3Tokenizer();

  // The token of `value` after normalisation, or INVALID_ARGUMENT if it does not normalise.
  absl::StatusOr<Sm3Digest> Tokenize(IdentifierDomain domain, absl::string_view value) const;

 private:
  explicit HmacSm3Tokenizer(std::string secret) : secret_(std::move(secret)) {}

  std::string secret_;
};

}  // namespace tongka::crypto

#endif  // TONGKA_LIBS_CRYPTO_TOKENIZER_H_
