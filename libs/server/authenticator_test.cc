// Proves Authenticator's identity mapping without a server: in mTLS mode the tenant is the
// verified client certificate's subject CN (an in-memory AuthContext stands in for gRPC's), and
// anything but a TLS connection with exactly one tenant CN is UNAUTHENTICATED; in dev-token mode
// exactly one `authorization: Bearer <token>` entry is required and checked against the injected
// clock.
#include "libs/server/authenticator.h"

#include <grpc/grpc_security_constants.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/server/tenant.h"

namespace tongka::server {
namespace {

constexpr absl::string_view kSecret = "dev-secret-for-tests-0123456789";
const absl::Time kNow = absl::FromUnixSeconds(1767225600);

// AuthPropertyIterator's default (end) constructor is protected; the fake never iterates.
class EndIterator : public grpc::AuthPropertyIterator {
 public:
  EndIterator() = default;
};

// An AuthContext holding fixed properties, as gRPC's TLS transport would fill it.
class FakeAuthContext final : public grpc::AuthContext {
 public:
  FakeAuthContext(bool authenticated, std::vector<std::pair<std::string, std::string>> properties)
      : authenticated_(authenticated), properties_(std::move(properties)) {}

  bool IsPeerAuthenticated() const override { return authenticated_; }
  std::vector<grpc::string_ref> GetPeerIdentity() const override {
    return FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  }
  std::string GetPeerIdentityPropertyName() const override { return GRPC_X509_CN_PROPERTY_NAME; }
  std::vector<grpc::string_ref> FindPropertyValues(const std::string& name) const override {
    std::vector<grpc::string_ref> values;
    for (const auto& [key, value] : properties_) {
      if (key == name) values.emplace_back(value);
    }
    return values;
  }
  grpc::AuthPropertyIterator begin() const override { return EndIterator(); }
  grpc::AuthPropertyIterator end() const override { return EndIterator(); }
  void AddProperty(const std::string& key, const grpc::string_ref& value) override {}
  bool SetPeerIdentityPropertyName(const std::string& name) override { return false; }

 private:
  const bool authenticated_;
  const std::vector<std::pair<std::string, std::string>> properties_;
};

FakeAuthContext TlsPeer(std::vector<std::string> common_names) {
  std::vector<std::pair<std::string, std::string>> properties = {
      {GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME, GRPC_SSL_TRANSPORT_SECURITY_TYPE}};
  for (std::string& cn : common_names) properties.emplace_back(GRPC_X509_CN_PROPERTY_NAME, cn);
  return FakeAuthContext(true, std::move(properties));
}

TEST(MtlsAuthenticatorTest, TenantIsTheCertificateCommonName) {
  std::shared_ptr<const Authenticator> authenticator = Authenticator::ForMtls();
  EXPECT_EQ(authenticator->mode(), AuthMode::kMtls);
  for (const char* name : {"city:310000", "partner:unionmart", "ministry", "platform:fraud"}) {
    const FakeAuthContext peer = TlsPeer({name});
    absl::StatusOr<v1::Tenant> tenant = authenticator->Authenticate(&peer, {});
    ASSERT_TRUE(tenant.ok()) << tenant.status();
    EXPECT_EQ(TenantName(*tenant), name);
  }
}

TEST(MtlsAuthenticatorTest, RejectsAnythingElse) {
  std::shared_ptr<const Authenticator> authenticator = Authenticator::ForMtls();
  const FakeAuthContext unauthenticated(false, {});
  const FakeAuthContext plaintext(true, {{GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME, "insecure"},
                                         {GRPC_X509_CN_PROPERTY_NAME, "ministry"}});
  const FakeAuthContext no_cn = TlsPeer({});
  const FakeAuthContext two_cns = TlsPeer({"city:310000", "ministry"});
  const FakeAuthContext not_a_tenant = TlsPeer({"www.example.com"});
  for (const grpc::AuthContext* peer : std::vector<const grpc::AuthContext*>{
           nullptr, &unauthenticated, &plaintext, &no_cn, &two_cns, &not_a_tenant}) {
    EXPECT_EQ(authenticator->Authenticate(peer, {}).status().code(),
              absl::StatusCode::kUnauthenticated);
  }
  EXPECT_EQ(authenticator->Authenticate(&not_a_tenant, {}).status().message(),
            "mTLS: client certificate CN \"www.example.com\" is not a Tongka tenant (tenant name: "
            "must be city:<code>, partner:<id>, ministry or platform:<service>)");
}

class DevTokenAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::shared_ptr<const Authenticator>> authenticator =
        Authenticator::ForDevTokens(kSecret, [this] { return now_; });
    ASSERT_TRUE(authenticator.ok()) << authenticator.status();
    authenticator_ = *authenticator;
    token_ = *DevTokenIssuer::Create(kSecret)->Issue(CityTenant(310000), kNow + absl::Hours(1));
  }

  absl::StatusOr<v1::Tenant> AuthenticateWith(
      const std::vector<std::pair<std::string, std::string>>& entries) {
    CallMetadata metadata;
    for (const auto& [key, value] : entries) metadata.emplace(key, value);
    return authenticator_->Authenticate(nullptr, metadata);
  }

  absl::Time now_ = kNow;
  std::shared_ptr<const Authenticator> authenticator_;
  std::string token_;
};

TEST_F(DevTokenAuthenticatorTest, AcceptsOneBearerToken) {
  for (const std::string& value : {absl::StrCat("Bearer ", token_), absl::StrCat("bearer ", token_),
                                   absl::StrCat("BEARER  ", token_, " ")}) {
    absl::StatusOr<v1::Tenant> tenant =
        AuthenticateWith({{"authorization", value}, {"x-other", "1"}});
    ASSERT_TRUE(tenant.ok()) << value << ": " << tenant.status();
    EXPECT_EQ(TenantName(*tenant), "city:310000");
  }
}

TEST_F(DevTokenAuthenticatorTest, RejectsMissingDuplicateOrNonBearerCredentials) {
  EXPECT_EQ(AuthenticateWith({}).status().message(),
            "missing credentials: send metadata `authorization: Bearer <dev token>`");
  const std::string bearer = absl::StrCat("Bearer ", token_);
  EXPECT_EQ(
      AuthenticateWith({{"authorization", bearer}, {"authorization", bearer}}).status().code(),
      absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(AuthenticateWith({{"authorization", token_}}).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(AuthenticateWith({{"authorization", "Bearer"}}).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(DevTokenAuthenticatorTest, UsesTheInjectedClock) {
  const std::string bearer = absl::StrCat("Bearer ", token_);
  EXPECT_TRUE(AuthenticateWith({{"authorization", bearer}}).ok());
  now_ = kNow + absl::Hours(2);
  EXPECT_EQ(AuthenticateWith({{"authorization", bearer}}).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AuthenticatorFactoryTest, RejectsShortSecretAndNullClock) {
  EXPECT_EQ(Authenticator::ForDevTokens("short").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Authenticator::ForDevTokens(kSecret, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tongka::server
