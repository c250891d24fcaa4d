// Proves the tenant name grammar round-trips and rejects everything else, and the scope matrix:
// who may access city data, partner data, ministry actions and platform actions, with
// PERMISSION_DENIED messages that name the caller, the resource and who is allowed.
#include "libs/server/tenant.h"

#include <gtest/gtest.h>

#include <string>

namespace tongka::server {
namespace {

TEST(TenantNameTest, RoundTrips) {
  for (const char* name : {"city:310000", "city:450200", "partner:unionmart", "partner:7-eleven",
                           "ministry", "platform:fraud", "platform:card_registry"}) {
    absl::StatusOr<v1::Tenant> tenant = ParseTenantName(name);
    ASSERT_TRUE(tenant.ok()) << name << ": " << tenant.status();
    EXPECT_EQ(TenantName(*tenant), name);
  }
  EXPECT_EQ(ParseTenantName("city:310000")->city(), 310000u);
  EXPECT_EQ(ParseTenantName("partner:unionmart")->kind(), v1::TENANT_KIND_PARTNER);
}

TEST(TenantNameTest, RejectsEverythingElse) {
  for (const char* name : {"",
                           "city",
                           "city:",
                           "city:31000",
                           "city:3100000",
                           "city:031000",
                           "city:+31000",
                           "city: 31000",
                           "city:31000a",
                           "City:310000",
                           "partner:",
                           "partner:UnionMart",
                           "partner:-x",
                           "partner:union mart",
                           "partner:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                           "ministry:x",
                           "Ministry",
                           "platform:",
                           "platform:Fraud",
                           "admin",
                           "city:310000 "}) {
    EXPECT_EQ(ParseTenantName(name).status().code(), absl::StatusCode::kInvalidArgument)
        << "'" << name << "'";
  }
}

TEST(TenantTest, ValidateRejectsMixedFields) {
  v1::Tenant tenant = CityTenant(310000);
  tenant.set_partner_id("unionmart");
  EXPECT_FALSE(ValidateTenant(tenant).ok());
  EXPECT_FALSE(ValidateTenant(v1::Tenant()).ok()) << "unspecified kind";
  v1::Tenant ministry = MinistryTenant();
  ministry.set_city(310000);
  EXPECT_FALSE(ValidateTenant(ministry).ok());
  EXPECT_EQ(TenantName(ministry).rfind("invalid-tenant(", 0), 0u);
}

TEST(ScopeTest, CityData) {
  EXPECT_TRUE(RequireCity(CityTenant(310000), 310000, "taps").ok());
  EXPECT_TRUE(RequireCity(MinistryTenant(), 310000, "taps").ok());
  const absl::Status denied = RequireCity(CityTenant(330200), 310000, "settlement positions");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(),
            "city:330200 may not access settlement positions of city 310000; allowed: "
            "city:310000, ministry");
  EXPECT_FALSE(RequireCity(PartnerTenant("unionmart"), 310000, "taps").ok());
  EXPECT_FALSE(RequireCity(PlatformTenant("fraud"), 310000, "taps").ok());
  EXPECT_FALSE(RequireCity(v1::Tenant(), 310000, "taps").ok());
  // A malformed tenant that happens to carry the right city is still denied.
  v1::Tenant mixed = CityTenant(310000);
  mixed.set_service("fraud");
  EXPECT_FALSE(RequireCity(mixed, 310000, "taps").ok());
  EXPECT_FALSE(CanReadCity(CityTenant(310000), 330200));
  EXPECT_TRUE(CanReadCity(MinistryTenant(), 330200));
}

TEST(ScopeTest, PartnerData) {
  EXPECT_TRUE(RequirePartner(PartnerTenant("unionmart"), "unionmart", "settlements").ok());
  EXPECT_TRUE(RequirePartner(MinistryTenant(), "unionmart", "settlements").ok());
  const absl::Status denied = RequirePartner(PartnerTenant("quickmart"), "unionmart", "sales");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(),
            "partner:quickmart may not access sales of partner unionmart; allowed: "
            "partner:unionmart, ministry");
  EXPECT_FALSE(RequirePartner(CityTenant(310000), "unionmart", "sales").ok());
}

TEST(ScopeTest, MinistryAndPlatformActions) {
  EXPECT_TRUE(RequireMinistry(MinistryTenant(), "close settlement window").ok());
  const absl::Status denied = RequireMinistry(CityTenant(310000), "close settlement window");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(),
            "city:310000 may not access close settlement window; allowed: ministry");
  EXPECT_TRUE(RequirePlatform(PlatformTenant("fraud"), "fraud", "block card").ok());
  EXPECT_FALSE(RequirePlatform(PlatformTenant("subsidy"), "fraud", "block card").ok());
  EXPECT_FALSE(RequirePlatform(MinistryTenant(), "fraud", "block card").ok());
  EXPECT_TRUE(CanReadAll(MinistryTenant()));
  EXPECT_FALSE(CanReadAll(PlatformTenant("fraud")));
}

}  // namespace
}  // namespace tongka::server
