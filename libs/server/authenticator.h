// Authenticator: resolves the tongka.v1.Tenant behind a gRPC call, in production from the mTLS
// client certificate, in development from a signed dev token.
//
// What it is: one object per server, shared by the server's auth hook (which rejects a call with
// UNAUTHENTICATED before any handler runs, see grpc_server.h) and by the handlers, which call
// TenantFromContext() to learn who is calling. Both run the same code on the same inputs, so a
// handler never sees a caller the hook would have refused.
//
// Identity mapping:
//   - AuthMode::kMtls: the connection must be TLS with a verified client certificate (the server
//     requires and verifies one against the configured CA). The tenant is the certificate's
//     subject common name, read from the gRPC auth property `x509_common_name`, which must be a
//     tenant name (tenant.h): "CN=city:310000", "CN=partner:unionmart", "CN=ministry",
//     "CN=platform:fraud". Subject alternative names and other subject fields are ignored;
//     `authorization` metadata is ignored.
//   - AuthMode::kDevToken: exactly one `authorization: Bearer <token>` metadata entry carrying a
//     dev token (dev_token.h) that verifies and has not expired at the injected clock's now.
//
// Why the handler re-resolves instead of reading a property the hook stored: gRPC hands the hook
// the connection's AuthContext, shared by every call on that connection, so a per-call identity
// stored there would leak between concurrent calls carrying different tokens. Re-verifying costs a
// few microseconds (one HMAC-SM3) and keeps no shared mutable state.
//
// Ownership: create through the factories; share as std::shared_ptr<const Authenticator>.
// Thread-safety: immutable; all methods are thread-safe. The clock must be thread-safe.
// Failure behaviour: UNAUTHENTICATED with a message naming what is missing or wrong (no client
// certificate, certificate subject is not a tenant, no/several authorization headers, not a
// Bearer token, and dev-token errors). Never PERMISSION_DENIED: scope is tenant.h's job.
//
// Example (a handler):
//   grpc::Status CityService::GetTotals(grpc::ServerContext* context, const Req* request,
//                                       Resp* response) {
//     absl::StatusOr<tongka::v1::Tenant> tenant = authenticator_->TenantFromContext(*context);
//     if (!tenant.ok()) return tongka::server::ToGrpcStatus(tenant.status());
//     ...
//   }
// Example (a dev client):
//   grpc::ClientContext context;
//   tongka::server::AttachDevToken(&context, token);
#ifndef TONGKA_LIBS_SERVER_AUTHENTICATOR_H_
#define TONGKA_LIBS_SERVER_AUTHENTICATOR_H_

#include <grpcpp/client_context.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/string_ref.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/server/dev_token.h"
#include "proto/common.pb.h"

namespace tongka::server {

// How callers prove who they are. One mode per server.
enum class AuthMode {
  kMtls,      // production: client certificate, subject CN = tenant name
  kDevToken,  // development: plaintext gRPC plus `authorization: Bearer <dev token>`
};

absl::string_view AuthModeName(AuthMode mode);  // "mtls", "dev_token"

// The clock dev tokens are checked against. Must be thread-safe. Tests inject a manual clock.
using NowFn = std::function<absl::Time()>;

// Request metadata as gRPC presents it to handlers and to AuthMetadataProcessor.
using CallMetadata = std::multimap<grpc::string_ref, grpc::string_ref>;

inline constexpr absl::string_view kAuthorizationMetadataKey = "authorization";

class Authenticator {
 public:
  static std::shared_ptr<const Authenticator> ForMtls();
  // INVALID_ARGUMENT if the secret is shorter than kDevTokenSecretSizeMin.
  static absl::StatusOr<std::shared_ptr<const Authenticator>> ForDevTokens(absl::string_view secret,
                                                                           NowFn now = absl::Now);

  AuthMode mode() const { return mode_; }

  // The tenant of a call, from its connection's auth context (`peer`, may be null when there is
  // none) and its request metadata.
  absl::StatusOr<tongka::v1::Tenant> Authenticate(const grpc::AuthContext* peer,
                                                  const CallMetadata& metadata) const;

  // The tenant of the call `context` belongs to (sync or callback API).
  absl::StatusOr<tongka::v1::Tenant> TenantFromContext(
      const grpc::ServerContextBase& context) const;

 private:
  Authenticator(AuthMode mode, std::optional<DevTokenVerifier> verifier, NowFn now);

  absl::StatusOr<tongka::v1::Tenant> FromCertificate(const grpc::AuthContext* peer) const;
  absl::StatusOr<tongka::v1::Tenant> FromDevToken(const CallMetadata& metadata) const;

  const AuthMode mode_;
  const std::optional<DevTokenVerifier> verifier_;
  const NowFn now_;
};

// Adds `authorization: Bearer <token>` to an outgoing call (dev-token mode clients).
void AttachDevToken(grpc::ClientContext* context, absl::string_view token);

}  // namespace tongka::server

#endif  // TONGKA_LIBS_SERVER_AUTHENTICATOR_H_
