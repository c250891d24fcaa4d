#include "libs/server/tenant.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace tongka::server {
namespace {

using tongka::v1::Tenant;
using tongka::v1::TenantKind;

constexpr size_t kIdSizeMax = 32;

absl::Status ValidateCity(uint32_t city) {
  if (city < 100000 || city > 999999) {
    return absl::InvalidArgumentError(
        absl::StrCat("tenant city: must be a six-digit GB/T 2260 code, got ", city));
  }
  return absl::OkStatus();
}

absl::Status ValidateId(absl::string_view field, absl::string_view id) {
  bool ok = !id.empty() && id.size() <= kIdSizeMax;
  for (size_t i = 0; ok && i < id.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(id[i]);
    const bool alnum = absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z');
    ok = alnum || (i > 0 && (c == '_' || c == '-'));
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("tenant ", field, ": must be 1..", kIdSizeMax,
                     " characters of [a-z0-9_-] starting with a letter or digit"));
  }
  return absl::OkStatus();
}

absl::Status Denied(const Tenant& tenant, absl::string_view what, absl::string_view allowed) {
  return absl::PermissionDeniedError(
      absl::StrCat(TenantName(tenant), " may not access ", what, "; allowed: ", allowed));
}

}  // namespace

Tenant CityTenant(uint32_t city) {
  Tenant tenant;
  tenant.set_kind(tongka::v1::TENANT_KIND_CITY_OPERATOR);
  tenant.set_city(city);
  return tenant;
}

Tenant PartnerTenant(absl::string_view partner_id) {
  Tenant tenant;
  tenant.set_kind(tongka::v1::TENANT_KIND_PARTNER);
  tenant.set_partner_id(std::string(partner_id));
  return tenant;
}

Tenant MinistryTenant() {
  Tenant tenant;
  tenant.set_kind(tongka::v1::TENANT_KIND_MINISTRY);
  return tenant;
}

Tenant PlatformTenant(absl::string_view service) {
  Tenant tenant;
  tenant.set_kind(tongka::v1::TENANT_KIND_PLATFORM);
  tenant.set_service(std::string(service));
  return tenant;
}

absl::Status ValidateTenant(const Tenant& tenant) {
  const bool has_city = tenant.city() != 0;
  const bool has_partner = !tenant.partner_id().empty();
  const bool has_service = !tenant.service().empty();
  switch (tenant.kind()) {
    case tongka::v1::TENANT_KIND_CITY_OPERATOR:
      if (has_partner || has_service) {
        return absl::InvalidArgumentError("tenant: a city operator has only a city");
      }
      return ValidateCity(tenant.city());
    case tongka::v1::TENANT_KIND_PARTNER:
      if (has_city || has_service) {
        return absl::InvalidArgumentError("tenant: a partner has only a partner_id");
      }
      return ValidateId("partner_id", tenant.partner_id());
    case tongka::v1::TENANT_KIND_MINISTRY:
      if (has_city || has_partner || has_service) {
        return absl::InvalidArgumentError("tenant: the ministry has no city, partner or service");
      }
      return absl::OkStatus();
    case tongka::v1::TENANT_KIND_PLATFORM:
      if (has_city || has_partner) {
        return absl::InvalidArgumentError("tenant: a platform tenant has only a service");
      }
      return ValidateId("service", tenant.service());
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("tenant kind: unknown or unspecified (", tenant.kind(), ")"));
  }
}

absl::StatusOr<Tenant> ParseTenantName(absl::string_view name) {
  Tenant tenant;
  absl::string_view rest = name;
  if (name == "ministry") {
    tenant = MinistryTenant();
  } else if (absl::ConsumePrefix(&rest, "city:")) {
    uint32_t city = 0;
    bool digits = rest.size() == 6;
    for (char c : rest) digits = digits && absl::ascii_isdigit(static_cast<unsigned char>(c));
    if (!digits || !absl::SimpleAtoi(rest, &city)) {
      return absl::InvalidArgumentError("tenant name: city:<code> needs a six-digit city code");
    }
    tenant = CityTenant(city);
  } else if (absl::ConsumePrefix(&rest, "partner:")) {
    tenant = PartnerTenant(rest);
  } else if (absl::ConsumePrefix(&rest, "platform:")) {
    tenant = PlatformTenant(rest);
  } else {
    return absl::InvalidArgumentError(
        "tenant name: must be city:<code>, partner:<id>, ministry or platform:<service>");
  }
  if (absl::Status status = ValidateTenant(tenant); !status.ok()) return status;
  return tenant;
}

std::string TenantName(const Tenant& tenant) {
  if (absl::Status status = ValidateTenant(tenant); !status.ok()) {
    return absl::StrCat("invalid-tenant(", status.message(), ")");
  }
  switch (tenant.kind()) {
    case tongka::v1::TENANT_KIND_CITY_OPERATOR:
      return absl::StrCat("city:", tenant.city());
    case tongka::v1::TENANT_KIND_PARTNER:
      return absl::StrCat("partner:", tenant.partner_id());
    case tongka::v1::TENANT_KIND_MINISTRY:
      return "ministry";
    case tongka::v1::TENANT_KIND_PLATFORM:
      return absl::StrCat("platform:", tenant.service());
    default:
      return "invalid-tenant";
  }
}

bool CanReadAll(const Tenant& tenant) {
  return tenant.kind() == tongka::v1::TENANT_KIND_MINISTRY && ValidateTenant(tenant).ok();
}

bool CanReadCity(const Tenant& tenant, uint32_t city) {
  if (CanReadAll(tenant)) return true;
  return tenant.kind() == tongka::v1::TENANT_KIND_CITY_OPERATOR && tenant.city() == city &&
         ValidateTenant(tenant).ok();
}

bool CanReadPartner(const Tenant& tenant, absl::string_view partner_id) {
  if (CanReadAll(tenant)) return true;
  return tenant.kind() == tongka::v1::TENANT_KIND_PARTNER && tenant.partner_id() == partner_id &&
         ValidateTenant(tenant).ok();
}

bool IsPlatform(const Tenant& tenant, absl::string_view service) {
  return tenant.kind() == tongka::v1::TENANT_KIND_PLATFORM && tenant.service() == service &&
         ValidateTenant(tenant).ok();
}

absl::Status RequireCity(const Tenant& tenant, uint32_t city, absl::string_view resource) {
  if (CanReadCity(tenant, city)) return absl::OkStatus();
  return Denied(tenant, absl::StrCat(resource, " of city ", city),
                absl::StrCat("city:", city, ", ministry"));
}

absl::Status RequirePartner(const Tenant& tenant, absl::string_view partner_id,
                            absl::string_view resource) {
  if (CanReadPartner(tenant, partner_id)) return absl::OkStatus();
  return Denied(tenant, absl::StrCat(resource, " of partner ", partner_id),
                absl::StrCat("partner:", partner_id, ", ministry"));
}

absl::Status RequireMinistry(const Tenant& tenant, absl::string_view action) {
  if (CanReadAll(tenant)) return absl::OkStatus();
  return Denied(tenant, action, "ministry");
}

absl::Status RequirePlatform(const Tenant& tenant, absl::string_view service,
                             absl::string_view action) {
  if (IsPlatform(tenant, service)) return absl::OkStatus();
  return Denied(tenant, action, absl::StrCat("platform:", service));
}

}  // namespace tongka::server
