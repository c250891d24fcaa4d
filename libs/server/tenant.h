// Tenants: who a caller is (its name on the wire and in certificates) and what it may touch.
//
// What it is: every Tongka caller is one tongka.v1.Tenant (proto/common.proto). This header gives
// a tenant its one textual name, used in mTLS certificate subjects, in dev tokens, in logs and in
// error messages, and the scope checks every gRPC handler runs before it reads or changes data.
//
// Tenant names (the grammar is closed; anything else is rejected):
//   city:<code>          TENANT_KIND_CITY_OPERATOR; <code> is a GB/T 2260 six-digit city code
//                        (first digit 1-9), e.g. city:310000 (Shanghai).
//   partner:<id>         TENANT_KIND_PARTNER, e.g. partner:unionmart.
//   ministry             TENANT_KIND_MINISTRY.
//   platform:<service>   TENANT_KIND_PLATFORM, e.g. platform:fraud.
//   <id> and <service> are 1..32 characters of [a-z0-9_-], starting with a letter or digit.
//
// Scope rules (the Require* functions return OK or PERMISSION_DENIED naming the resource):
//   - City data: the operator of that city, or the ministry.
//   - Partner data: that partner, or the ministry.
//   - Ministry actions: the ministry only.
//   - Platform actions: the named platform service only.
//   Platform services are not granted city or partner reads implicitly; a handler that serves
//   them checks IsPlatform() explicitly, so every such grant is visible in the handler.
//
// Ownership: functions take tenants by const reference and keep nothing.
// Thread-safety: pure functions; thread-safe.
// Failure behaviour: ParseTenantName/ValidateTenant return INVALID_ARGUMENT naming the rule. The
// Require* functions return PERMISSION_DENIED with a message naming the caller, the resource and
// who may access it; an invalid tenant is always denied.
//
// Example:
//   absl::StatusOr<tongka::v1::Tenant> tenant = authenticator->TenantFromContext(*context);
//   if (!tenant.ok()) return tongka::server::ToGrpcStatus(tenant.status());
//   absl::Status scope = tongka::server::RequireCity(*tenant, request->city(), "positions");
//   if (!scope.ok()) {
//     return tongka::server::ToGrpcStatus(scope);  // PERMISSION_DENIED: city:330200 may not ...
//   }
#ifndef TONGKA_LIBS_SERVER_TENANT_H_
#define TONGKA_LIBS_SERVER_TENANT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/common.pb.h"

namespace tongka::server {

// Builders for well-formed tenants (they do not validate; ValidateTenant does).
tongka::v1::Tenant CityTenant(uint32_t city);
tongka::v1::Tenant PartnerTenant(absl::string_view partner_id);
tongka::v1::Tenant MinistryTenant();
tongka::v1::Tenant PlatformTenant(absl::string_view service);

// OK iff `tenant` has a known kind, exactly the fields its kind uses, and valid values.
absl::Status ValidateTenant(const tongka::v1::Tenant& tenant);

// The tenant named `name` (grammar above), or INVALID_ARGUMENT.
absl::StatusOr<tongka::v1::Tenant> ParseTenantName(absl::string_view name);

// The name of `tenant`, e.g. "city:310000"; "invalid-tenant(<reason>)" if it is not valid, so it
// is always safe to log.
std::string TenantName(const tongka::v1::Tenant& tenant);

// Read predicates for filtering lists (a handler filtering rows, not rejecting the call).
bool CanReadAll(const tongka::v1::Tenant& tenant);  // the ministry
bool CanReadCity(const tongka::v1::Tenant& tenant, uint32_t city);
bool CanReadPartner(const tongka::v1::Tenant& tenant, absl::string_view partner_id);
bool IsPlatform(const tongka::v1::Tenant& tenant, absl::string_view service);

// Scope checks. `resource` / `action` is a short noun phrase for the message, such as
// "settlement positions" or "close settlement window".
absl::Status RequireCity(const tongka::v1::Tenant& tenant, uint32_t city,
                         absl::string_view resource);
absl::Status RequirePartner(const tongka::v1::Tenant& tenant, absl::string_view partner_id,
                            absl::string_view resource);
absl::Status RequireMinistry(const tongka::v1::Tenant& tenant, absl::string_view action);
absl::Status RequirePlatform(const tongka::v1::Tenant& tenant, absl::string_view service,
                             absl::string_view action);

}  // namespace tongka::server

#endif  // TONGKA_LIBS_SERVER_TENANT_H_
