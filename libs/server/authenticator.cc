#include "libs/server/authenticator.h"

#include <grpc/grpc_security_constants.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/server/tenant.h"

namespace tongka::server {
namespace {

absl::string_view View(grpc::string_ref ref) { return absl::string_view(ref.data(), ref.size()); }

constexpr absl::string_view kBearerScheme = "bearer ";

}  // namespace

absl::string_view AuthModeName(AuthMode mode) {
  switch (mode) {
    case AuthMode::kMtls:
      return "mtls";
    case AuthMode::kDevToken:
      return "dev_token";
  }
  return "unknown";
}

Authenticator::Authenticator(AuthMode mode, std::optional<DevTokenVerifier> verifier, NowFn now)
    : mode_(mode), verifier_(std::move(verifier)), now_(std::move(now)) {}

std::shared_ptr<const Authenticator> Authenticator::ForMtls() {
  return std::shared_ptr<const Authenticator>(
      new Authenticator(AuthMode::kMtls, std::nullopt, nullptr));
}

absl::StatusOr<std::shared_ptr<const Authenticator>> Authenticator::ForDevTokens(
    absl::string_view secret, NowFn now) {
  absl::StatusOr<DevTokenVerifier> verifier = DevTokenVerifier::Create(secret);
  if (!verifier.ok()) return verifier.status();
  if (now == nullptr) return absl::InvalidArgumentError("dev token clock: must not be null");
  return std::shared_ptr<const Authenticator>(
      new Authenticator(AuthMode::kDevToken, *std::move(verifier), std::move(now)));
}

absl::StatusOr<tongka::v1::Tenant> Authenticator::Authenticate(const grpc::AuthContext* peer,
                                                               const CallMetadata& metadata) const {
  switch (mode_) {
    case AuthMode::kMtls:
      return FromCertificate(peer);
    case AuthMode::kDevToken:
      return FromDevToken(metadata);
  }
  return absl::InternalError("authenticator: unknown mode");
}

absl::StatusOr<tongka::v1::Tenant> Authenticator::TenantFromContext(
    const grpc::ServerContextBase& context) const {
  const std::shared_ptr<const grpc::AuthContext> peer = context.auth_context();
  return Authenticate(peer.get(), context.client_metadata());
}

absl::StatusOr<tongka::v1::Tenant> Authenticator::FromCertificate(
    const grpc::AuthContext* peer) const {
  if (peer == nullptr || !peer->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("mTLS: the connection has no verified client certificate");
  }
  const std::vector<grpc::string_ref> transport =
      peer->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  if (transport.size() != 1 || View(transport[0]) != GRPC_SSL_TRANSPORT_SECURITY_TYPE) {
    return absl::UnauthenticatedError("mTLS: the connection is not TLS");
  }
  const std::vector<grpc::string_ref> common_names =
      peer->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (common_names.size() != 1) {
    return absl::UnauthenticatedError(
        absl::StrCat("mTLS: the client certificate subject must have exactly one CN, found ",
                     common_names.size()));
  }
  absl::StatusOr<tongka::v1::Tenant> tenant = ParseTenantName(View(common_names[0]));
  if (!tenant.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("mTLS: client certificate CN \"", absl::CHexEscape(View(common_names[0])),
                     "\" is not a Tongka tenant (", tenant.status().message(), ")"));
  }
  return tenant;
}

absl::StatusOr<tongka::v1::Tenant> Authenticator::FromDevToken(const CallMetadata& metadata) const {
  const auto [begin, end] = metadata.equal_range(
      grpc::string_ref(kAuthorizationMetadataKey.data(), kAuthorizationMetadataKey.size()));
  if (begin == end) {
    return absl::UnauthenticatedError(
        "missing credentials: send metadata `authorization: Bearer <dev token>`");
  }
  if (std::next(begin) != end) {
    return absl::UnauthenticatedError("more than one `authorization` metadata entry");
  }
  absl::string_view value = View(begin->second);
  if (value.size() < kBearerScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearerScheme.size()), kBearerScheme)) {
    return absl::UnauthenticatedError("`authorization` metadata must be `Bearer <dev token>`");
  }
  value.remove_prefix(kBearerScheme.size());
  return verifier_->Verify(absl::StripAsciiWhitespace(value), now_());
}

void AttachDevToken(grpc::ClientContext* context, absl::string_view token) {
  context->AddMetadata(std::string(kAuthorizationMetadataKey), absl::StrCat("Bearer ", token));
}

}  // namespace tongka::server
