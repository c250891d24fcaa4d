#include "libs/server/dev_token.h"

#include <openssl/crypto.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/crypto/sm3.h"
#include "libs/server/tenant.h"

namespace tongka::server {
namespace {

constexpr absl::string_view kExpirySeparator = ";exp=";

absl::Status ValidateSecret(absl::string_view secret) {
  if (secret.size() < kDevTokenSecretSizeMin) {
    return absl::InvalidArgumentError(absl::StrCat("dev token secret: must be at least ",
                                                   kDevTokenSecretSizeMin, " bytes, got ",
                                                   secret.size()));
  }
  return absl::OkStatus();
}

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("dev token: ", why));
}

void Wipe(std::string& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
}

}  // namespace

absl::StatusOr<DevTokenIssuer> DevTokenIssuer::Create(absl::string_view secret) {
  if (absl::Status status = ValidateSecret(secret); !status.ok()) return status;
  return DevTokenIssuer(std::string(secret));
}

DevTokenIssuer::~DevTokenIssuer() { Wipe(secret_); }

absl::StatusOr<std::string> DevTokenIssuer::Issue(const tongka::v1::Tenant& tenant,
                                                  absl::Time expires_at) const {
  if (absl::Status status = ValidateTenant(tenant); !status.ok()) return status;
  if (expires_at < absl::UnixEpoch()) {
    return absl::InvalidArgumentError("dev token expires_at: must be after 1970-01-01");
  }
  const std::string payload =
      absl::StrCat(TenantName(tenant), kExpirySeparator, absl::ToUnixSeconds(expires_at));
  const crypto::Sm3Digest signature = crypto::HmacSm3(secret_, payload);
  return absl::StrCat(absl::WebSafeBase64Escape(payload), ".",
                      absl::WebSafeBase64Escape(crypto::AsStringView(signature)));
}

absl::StatusOr<DevTokenVerifier> DevTokenVerifier::Create(absl::string_view secret) {
  if (absl::Status status = ValidateSecret(secret); !status.ok()) return status;
  return DevTokenVerifier(std::string(secret));
}

DevTokenVerifier::~DevTokenVerifier() { Wipe(secret_); }

absl::StatusOr<tongka::v1::Tenant> DevTokenVerifier::Verify(absl::string_view token,
                                                            absl::Time now) const {
  if (token.size() > kDevTokenSizeMax) {
    return Unauthenticated(absl::StrCat("longer than ", kDevTokenSizeMax, " bytes"));
  }
  const size_t dot = token.find('.');
  if (dot == absl::string_view::npos || token.find('.', dot + 1) != absl::string_view::npos) {
    return Unauthenticated("malformed; expected base64url(payload).base64url(signature)");
  }
  std::string payload;
  std::string signature;
  if (!absl::WebSafeBase64Unescape(token.substr(0, dot), &payload) ||
      !absl::WebSafeBase64Unescape(token.substr(dot + 1), &signature)) {
    return Unauthenticated("malformed; payload or signature is not base64url");
  }
  // Check the signature before looking at the payload: nothing unsigned is parsed.
  const crypto::Sm3Digest expected = crypto::HmacSm3(secret_, payload);
  if (signature.size() != expected.size() ||
      CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) != 0) {
    return Unauthenticated("signature does not verify (forged, or signed with another secret)");
  }
  const size_t separator = absl::string_view(payload).rfind(kExpirySeparator);
  int64_t expires_at_s = 0;
  if (separator == absl::string_view::npos ||
      !absl::SimpleAtoi(absl::string_view(payload).substr(separator + kExpirySeparator.size()),
                        &expires_at_s)) {
    return Unauthenticated("payload must be <tenant>;exp=<unix seconds>");
  }
  absl::StatusOr<tongka::v1::Tenant> tenant =
      ParseTenantName(absl::string_view(payload).substr(0, separator));
  if (!tenant.ok()) return Unauthenticated(tenant.status().message());
  const absl::Time expires_at = absl::FromUnixSeconds(expires_at_s);
  if (now >= expires_at) {
    return Unauthenticated(absl::StrCat("token for ", TenantName(*tenant), " expired at ",
                                        absl::FormatTime(expires_at, absl::UTCTimeZone()),
                                        "; issue a new one"));
  }
  return tenant;
}

}  // namespace tongka::server
