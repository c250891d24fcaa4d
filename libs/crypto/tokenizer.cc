#include "libs/crypto/tokenizer.h"

#include <openssl/crypto.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/crypto/sm3.h"

namespace tongka::crypto {
namespace {

constexpr size_t kResidentIdSize = 18;
constexpr size_t kMobileSize = 11;

// GB 11643-1999: the 18th character is ISO 7064 MOD 11-2 over the first 17 digits.
char ResidentIdCheckCharacter(absl::string_view first17) {
  static constexpr int kWeights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  static constexpr char kCheck[11] = {'1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'};
  int sum = 0;
  for (size_t i = 0; i < 17; ++i) sum += (first17[i] - '0') * kWeights[i];
  return kCheck[sum % 11];
}

absl::StatusOr<std::string> NormalizeResidentId(absl::string_view value) {
  std::string id = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(value));
  if (id.size() != kResidentIdSize) {
    return absl::InvalidArgumentError(absl::StrCat("resident ID number: must be ", kResidentIdSize,
                                                   " characters, got ", id.size()));
  }
  for (size_t i = 0; i < kResidentIdSize - 1; ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(id[i]))) {
      return absl::InvalidArgumentError(
          "resident ID number: the first 17 characters must be digits");
    }
  }
  const char check = id[kResidentIdSize - 1];
  if (!absl::ascii_isdigit(static_cast<unsigned char>(check)) && check != 'X') {
    return absl::InvalidArgumentError(
        "resident ID number: the last character must be a digit or X");
  }
  if (check != ResidentIdCheckCharacter(absl::string_view(id).substr(0, 17))) {
    return absl::InvalidArgumentError(
        "resident ID number: check character does not match (ISO 7064 MOD 11-2)");
  }
  return id;
}

absl::StatusOr<std::string> NormalizeMobile(absl::string_view value) {
  std::string phone;
  for (char c : absl::StripAsciiWhitespace(value)) {
    if (c != ' ' && c != '-') phone.push_back(c);
  }
  absl::string_view digits = phone;
  if (!absl::ConsumePrefix(&digits, "+86")) absl::ConsumePrefix(&digits, "0086");
  if (digits.size() != kMobileSize) {
    return absl::InvalidArgumentError(absl::StrCat("mobile phone: must be ", kMobileSize,
                                                   " digits after the +86 prefix, got ",
                                                   digits.size()));
  }
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError("mobile phone: must contain only digits");
    }
  }
  if (digits[0] != '1') {
    return absl::InvalidArgumentError("mobile phone: a mainland mobile number starts with 1");
  }
  return std::string(digits);
}

}  // namespace

absl::string_view DomainLabel(IdentifierDomain domain) {
  switch (domain) {
    case IdentifierDomain::kResidentIdNumber:
      return "cn-resident-id";
    case IdentifierDomain::kMobilePhone:
      return "cn-mobile";
  }
  return "invalid-domain";
}

absl::StatusOr<std::string> NormalizeIdentifier(IdentifierDomain domain, absl::string_view value) {
  switch (domain) {
    case IdentifierDomain::kResidentIdNumber:
      return NormalizeResidentId(value);
    case IdentifierDomain::kMobilePhone:
      return NormalizeMobile(value);
  }
  return absl::InvalidArgumentError("identifier domain: unknown value");
}

absl::StatusOr<HmacSm3Tokenizer> HmacSm3Tokenizer::Create(absl::string_view secret) {
  if (secret.size() < kSecretSizeMin) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer secret: must be at least ",
                                                   kSecretSizeMin, " bytes, got ", secret.size()));
  }
  return HmacSm3Tokenizer(std::string(secret));
}

HmacSm3Tokenizer::~HmacSm3Tokenizer() {
  if (!secret_.empty()) OPENSSL_cleanse(secret_.data(), secret_.size());
}

absl::StatusOr<Sm3Digest> HmacSm3Tokenizer::Tokenize(IdentifierDomain domain,
                                                     absl::string_view value) const {
  absl::StatusOr<std::string> normalized = NormalizeIdentifier(domain, value);
  if (!normalized.ok()) return normalized.status();
  std::string message = absl::StrCat(kTokenPrefix, absl::string_view("\0", 1), DomainLabel(domain),
                                     absl::string_view("\0", 1), *normalized);
  Sm3Digest token = HmacSm3(secret_, message);
  OPENSSL_cleanse(message.data(), message.size());
  OPENSSL_cleanse(normalized->data(), normalized->size());
  return token;
}

}  // namespace tongka::crypto
