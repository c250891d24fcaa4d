// The flags of a service with a gRPC API: its listen address and its authentication mode, and the
// server::GrpcServerConfig they fill. The mode is one explicit flag, mTLS unless told otherwise;
// flags that contradict the mode are refused, never ignored.
//
// Flags:
//   --grpc_host, --grpc_port   Listen address (default 0.0.0.0:7000; port 0 = any free port).
//   --auth=mtls|dev            mtls (default): TLS, client certificates verified against --tls_ca,
//                              the tenant is the certificate's subject CN. dev: plaintext gRPC,
//                              tenants from signed development tokens; development and CI only.
//   --tls_cert, --tls_key      mtls: the server's certificate chain and private key (PEM).
//   --tls_ca                   mtls: the CA that callers' client certificates chain to (PEM).
//   --dev_token_secret_file    dev: a file holding the dev-token secret (trailing newlines are
//                              dropped). Or the environment variable TONGKA_DEV_TOKEN_SECRET, or
//                              --dev_token_secret (visible in `ps`; for tests). Exactly one of
//                              the three; at least 16 bytes.
//
// Refused at start, each with a message naming both sides: --auth=dev with any --tls_* flag
// (dev serves plaintext); --auth=mtls with a dev-token secret from any source (it can mint any
// tenant); --auth=mtls without all three TLS files; --auth=dev without a secret, or with the
// secret given more than one way. A service that serves no gRPC does not link these flags.
//
// Thread-safety: call after absl::ParseCommandLine, from main. Failure behaviour:
// GrpcConfigFromFlags() returns INVALID_ARGUMENT whose message starts with the flag it is about;
// a secret file that cannot be read names the file. Secret bytes never appear in messages or logs.
//
// Example:
//   absl::StatusOr<tongka::server::GrpcServerConfig> grpc = tongka::service::GrpcConfigFromFlags();
//   if (!grpc.ok()) { LOG(ERROR) << grpc.status(); return 2; }
//   // The log now says, e.g., "auth: mtls, client certificates verified against CA /etc/ca.crt".
#ifndef TONGKA_LIBS_SERVICE_GRPC_FLAGS_H_
#define TONGKA_LIBS_SERVICE_GRPC_FLAGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "libs/server/grpc_server.h"

namespace tongka::service {

// The environment variable a dev-token secret may come from (instead of a flag).
inline constexpr char kDevTokenSecretEnv[] = "TONGKA_DEV_TOKEN_SECRET";

// The flag values of --auth.
inline constexpr char kAuthMtls[] = "mtls";
inline constexpr char kAuthDev[] = "dev";

// The gRPC flags, checked against each other and turned into a validated GrpcServerConfig. On
// success it logs DescribeAuthMode() once (LOG(INFO)), so every start shows how callers
// authenticate.
absl::StatusOr<server::GrpcServerConfig> GrpcConfigFromFlags();

// One line saying how callers authenticate: the mode in --auth's words and, for mtls, the CA file
// client certificates are verified against. Never the secret.
std::string DescribeAuthMode(const server::GrpcServerConfig& config);

}  // namespace tongka::service

#endif  // TONGKA_LIBS_SERVICE_GRPC_FLAGS_H_
