// Development tokens: a signed, expiring statement "this caller is tenant X", for environments
// without client certificates (laptops, the local platform runner, CI).
//
// What it is: token = base64url(payload) "." base64url(HMAC-SM3(secret, payload)), unpadded, with
// payload = "<tenant name>;exp=<unix seconds>", e.g. "city:310000;exp=1767225600" (tenant names
// per libs/server/tenant.h). A caller sends it as gRPC metadata `authorization: Bearer <token>`.
// DevTokenIssuer mints tokens (the operator CLI, tests); DevTokenVerifier checks them (servers in
// dev-token mode, through Authenticator). Both hold the same shared secret.
//
// Not for production: anyone holding the secret can mint any tenant, including the ministry.
// Production identity is the mTLS client certificate (see authenticator.h).
//
// Ownership: each object owns a copy of the secret and wipes it on destruction.
// Thread-safety: immutable after Create(); Issue() and Verify() are thread-safe.
// Failure behaviour: Create() returns INVALID_ARGUMENT for a secret shorter than 16 bytes.
// Issue() returns INVALID_ARGUMENT for an invalid tenant or an expiry before 1970. Verify()
// returns UNAUTHENTICATED with a message saying what is wrong (malformed, bad signature, bad
// payload, expired); it never echoes the signature.
//
// Example:
//   absl::StatusOr<tongka::server::DevTokenIssuer> issuer =
//       tongka::server::DevTokenIssuer::Create(dev_secret);
//   absl::StatusOr<std::string> token = issuer->Issue(tongka::server::CityTenant(310000),
//                                                     absl::Now() + absl::Hours(8));
//   grpc::ClientContext context;
//   tongka::server::AttachDevToken(&context, *token);  // authenticator.h
#ifndef TONGKA_LIBS_SERVER_DEV_TOKEN_H_
#define TONGKA_LIBS_SERVER_DEV_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/common.pb.h"

namespace tongka::server {

inline constexpr size_t kDevTokenSecretSizeMin = 16;
// Longer tokens are rejected before any decoding or MAC work.
inline constexpr size_t kDevTokenSizeMax = 512;

class DevTokenIssuer {
 public:
  static absl::StatusOr<DevTokenIssuer> Create(absl::string_view secret);

  DevTokenIssuer(const DevTokenIssuer&) = default;
  DevTokenIssuer& operator=(const DevTokenIssuer&) = default;
  DevTokenIssuer(DevTokenIssuer&&) = default;
  DevTokenIssuer& operator=(DevTokenIssuer&&) = default;
  ~DevTokenIssuer();

  // A token naming `tenant`, valid until `expires_at` (truncated to whole seconds).
  absl::StatusOr<std::string> Issue(const tongka::v1::Tenant& tenant, absl::Time expires_at) const;

 private:
  explicit DevTokenIssuer(std::string secret) : secret_(std::move(secret)) {}
  std::string secret_;
};

class DevTokenVerifier {
 public:
  static absl::StatusOr<DevTokenVerifier> Create(absl::string_view secret);

  DevTokenVerifier(const DevTokenVerifier&) = default;
  DevTokenVerifier& operator=(const DevTokenVerifier&) = default;
  DevTokenVerifier(DevTokenVerifier&&) = default;
  DevTokenVerifier& operator=(DevTokenVerifier&&) = default;
  ~DevTokenVerifier();

  // The tenant `token` names, if its signature verifies and `now` is before its expiry.
  absl::StatusOr<tongka::v1::Tenant> Verify(absl::string_view token, absl::Time now) const;

 private:
  explicit DevTokenVerifier(std::string secret) : secret_(std::move(secret)) {}
  std::string secret_;
};

}  // namespace tongka::server

#endif  // TONGKA_LIBS_SERVER_DEV_TOKEN_H_
