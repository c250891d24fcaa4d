// Proves dev tokens: the documented wire format (so the CLI and other languages can mint them),
// round-trip, and UNAUTHENTICATED for every way a token can be wrong: other secret, tampered
// payload or signature, malformed, oversized, expired (checked against the caller's clock, expiry
// instant itself included).
#include "libs/server/dev_token.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libs/crypto/sm3.h"
#include "libs/server/tenant.h"

namespace tongka::server {
namespace {

constexpr absl::string_view kSecret = "dev-secret-for-tests-0123456789";
const absl::Time kNow = absl::FromUnixSeconds(1767225600);

DevTokenIssuer Issuer(absl::string_view secret = kSecret) {
  absl::StatusOr<DevTokenIssuer> issuer = DevTokenIssuer::Create(secret);
  EXPECT_TRUE(issuer.ok()) << issuer.status();
  return *std::move(issuer);
}

DevTokenVerifier Verifier(absl::string_view secret = kSecret) {
  absl::StatusOr<DevTokenVerifier> verifier = DevTokenVerifier::Create(secret);
  EXPECT_TRUE(verifier.ok()) << verifier.status();
  return *std::move(verifier);
}

TEST(DevTokenTest, WireFormatIsAsDocumented) {
  const std::string token = *Issuer().Issue(CityTenant(310000), kNow + absl::Hours(1));
  const std::string payload = "city:310000;exp=1767229200";
  EXPECT_EQ(token, absl::StrCat(absl::WebSafeBase64Escape(payload), ".",
                                absl::WebSafeBase64Escape(
                                    crypto::AsStringView(crypto::HmacSm3(kSecret, payload)))));
  EXPECT_EQ(token.find('='), std::string::npos) << "unpadded base64url";
}

TEST(DevTokenTest, RoundTripsEveryTenantKind) {
  for (const v1::Tenant& tenant : {CityTenant(310000), PartnerTenant("unionmart"), MinistryTenant(),
                                   PlatformTenant("fraud")}) {
    const std::string token = *Issuer().Issue(tenant, kNow + absl::Minutes(1));
    absl::StatusOr<v1::Tenant> verified = Verifier().Verify(token, kNow);
    ASSERT_TRUE(verified.ok()) << verified.status();
    EXPECT_EQ(TenantName(*verified), TenantName(tenant));
  }
}

TEST(DevTokenTest, RejectsShortSecretsAndInvalidInput) {
  EXPECT_EQ(DevTokenIssuer::Create("short").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DevTokenVerifier::Create("short").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Issuer().Issue(v1::Tenant(), kNow).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Issuer().Issue(MinistryTenant(), absl::UnixEpoch() - absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(DevTokenTest, ExpiresAtTheExpiryInstant) {
  const std::string token = *Issuer().Issue(CityTenant(310000), kNow + absl::Seconds(30));
  EXPECT_TRUE(Verifier().Verify(token, kNow + absl::Seconds(29)).ok());
  absl::StatusOr<v1::Tenant> expired = Verifier().Verify(token, kNow + absl::Seconds(30));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(expired.status().message(),
            "dev token: token for city:310000 expired at 2026-01-01T00:00:30+00:00; issue a new "
            "one");
}

TEST(DevTokenTest, RejectsForgedTamperedAndMalformedTokens) {
  const std::string genuine = *Issuer().Issue(CityTenant(310000), kNow + absl::Hours(1));
  const size_t dot = genuine.find('.');
  const std::string other_secret =
      *Issuer("another-secret-0123456789").Issue(MinistryTenant(), kNow + absl::Hours(1));
  const std::string ministry_payload = absl::WebSafeBase64Escape("ministry;exp=1767229200");
  std::string flipped_signature = genuine;
  flipped_signature.back() = flipped_signature.back() == 'A' ? 'B' : 'A';

  struct Case {
    std::string token;
    const char* expect_in_message;
  };
  const Case cases[] = {
      {other_secret, "signature does not verify"},
      {ministry_payload + genuine.substr(dot), "signature does not verify"},
      {flipped_signature, "signature does not verify"},
      {genuine.substr(0, dot), "malformed"},
      {genuine + ".x", "malformed"},
      {"", "malformed"},
      {"!!!." + genuine.substr(dot + 1), "not base64url"},
      {genuine.substr(0, dot) + ".", "signature does not verify"},
      {std::string(kDevTokenSizeMax + 1, 'a'), "longer than"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<v1::Tenant> verified = Verifier().Verify(c.token, kNow);
    EXPECT_EQ(verified.status().code(), absl::StatusCode::kUnauthenticated) << c.token;
    EXPECT_NE(verified.status().message().find(c.expect_in_message), absl::string_view::npos)
        << verified.status();
  }
}

TEST(DevTokenTest, SignedButUnparseablePayloadIsRejected) {
  // A payload the issuer would never produce, correctly signed: the verifier still refuses it.
  for (const std::string payload :
       {"city:310000", "admin;exp=1767229200", "city:310000;exp=soon"}) {
    const std::string token = absl::StrCat(
        absl::WebSafeBase64Escape(payload), ".",
        absl::WebSafeBase64Escape(crypto::AsStringView(crypto::HmacSm3(kSecret, payload))));
    EXPECT_EQ(Verifier().Verify(token, kNow).status().code(), absl::StatusCode::kUnauthenticated)
        << payload;
  }
}

}  // namespace
}  // namespace tongka::server
