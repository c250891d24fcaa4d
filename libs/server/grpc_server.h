// GrpcServer: how every Tongka service serves gRPC. One typed config, authentication before any
// handler, health checking and reflection built in, graceful shutdown, and the process's single
// place for SIGTERM/SIGINT handling.
//
// What it is: Start() validates the config, builds credentials for the auth mode, installs the
// authentication hook, registers the caller's services plus the standard gRPC health service
// (grpc.health.v1.Health, SERVING once started) and server reflection, binds, and starts.
//   - AuthMode::kMtls: TLS with the configured certificate and key; client certificates are
//     required and verified against tls_client_ca_path. The tenant is the client certificate's
//     subject CN (authenticator.h).
//   - AuthMode::kDevToken: plaintext HTTP/2; every call needs `authorization: Bearer <dev token>`.
// In both modes a hook (a gRPC AuthMetadataProcessor) runs for every call before its handler and
// fails it with UNAUTHENTICATED if the Authenticator cannot resolve a tenant. Calls to
// grpc.health.v1.Health and grpc.reflection.*.ServerReflection are exempt, so probes and grpcurl
// work without a token. (In mTLS mode the TLS handshake still demands a client certificate from
// the CA; probes use a certificate with any subject.)
//
// Ownership: the caller owns the services and the Authenticator's other holders; services must
// outlive the GrpcServer. The GrpcServer shares ownership of the Authenticator.
// Thread-safety: port(), SetServing(), Shutdown() and the destructor may be called from any thread;
// Shutdown() is idempotent. Handlers run on gRPC's threads.
// Failure behaviour: Start() returns INVALID_ARGUMENT naming the config field that is wrong
// (including unreadable TLS files, and an Authenticator whose mode differs from auth_mode) and
// UNAVAILABLE if the address cannot be bound. Nothing here throws; gRPC internals that fail
// abort the process.
//
// Example (a service's app and main):
//   int main(int argc, char** argv) {
//     tongka::server::BlockShutdownSignals();  // first, before any thread exists
//     ...
//     absl::StatusOr<std::shared_ptr<const tongka::server::Authenticator>> authenticator =
//         tongka::server::MakeAuthenticator(config.grpc);
//     SettlementService service(&logic, *authenticator);
//     absl::StatusOr<std::unique_ptr<tongka::server::GrpcServer>> server =
//         tongka::server::GrpcServer::Start(config.grpc, *authenticator, {&service});
//     if (!server.ok()) { LOG(ERROR) << server.status(); return 1; }
//     LOG(INFO) << "signal " << tongka::server::WaitForShutdownSignal() << ", stopping";
//     (*server)->Shutdown(absl::Now() + absl::Seconds(10));
//   }
#ifndef TONGKA_LIBS_SERVER_GRPC_SERVER_H_
#define TONGKA_LIBS_SERVER_GRPC_SERVER_H_

#include <grpcpp/server.h>
#include <grpcpp/support/status.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/server/authenticator.h"

namespace tongka::server {

namespace internal {
class AuthHook;  // grpc_server.cc
}  // namespace internal

struct GrpcServerConfig {
  // host:port to listen on. Port 0 lets the kernel pick a free port; GrpcServer::port() reports
  // it. Required.
  std::string listen_address = "0.0.0.0:8443";
  // kMtls in production. kDevToken only for local and CI environments.
  AuthMode auth_mode = AuthMode::kMtls;
  // kMtls: PEM files for the server's certificate chain, its private key, and the CA bundle that
  // client certificates must chain to. Required in kMtls mode, must be empty otherwise (a dev
  // server serves plaintext; TLS files it would ignore mean the config was meant for mTLS).
  std::string tls_cert_path;
  std::string tls_key_path;
  std::string tls_client_ca_path;
  // kDevToken: the shared dev-token secret, >= 16 bytes. Required in kDevToken mode, must be
  // empty otherwise (a production server must not hold a key that can mint any tenant).
  std::string dev_token_secret;
  // Largest request or response message in bytes. Bounded to [4 KiB, 256 MiB].
  int64_t max_message_bytes = 16 * 1024 * 1024;
};

inline constexpr int64_t kMaxMessageBytesMin = 4 * 1024;
inline constexpr int64_t kMaxMessageBytesMax = 256 * 1024 * 1024;

// OK, or INVALID_ARGUMENT naming the first bad field ("grpc.tls_cert_path: ...").
absl::Status ValidateGrpcServerConfig(const GrpcServerConfig& config);

// The Authenticator for `config.auth_mode` (dev tokens checked against `now`).
absl::StatusOr<std::shared_ptr<const Authenticator>> MakeAuthenticator(
    const GrpcServerConfig& config, NowFn now = absl::Now);

class GrpcServer {
 public:
  // Validates `config`, then builds, binds and starts the server with `services` registered.
  // `authenticator` must be in config.auth_mode.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerConfig& config, std::shared_ptr<const Authenticator> authenticator,
      const std::vector<grpc::Service*>& services);

  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;
  // Shuts down immediately (cancelling calls in flight) unless Shutdown() already ran.
  ~GrpcServer();

  // The bound port (the kernel's choice when listen_address asked for port 0).
  int port() const { return port_; }

  // Sets the overall health status reported by grpc.health.v1.Health ("" service).
  void SetServing(bool serving);

  // Reports NOT_SERVING, stops accepting calls, lets calls in flight finish until `deadline`,
  // then cancels the rest, and returns when all handlers have returned. Idempotent.
  void Shutdown(absl::Time deadline);

  // Calls rejected by the authentication hook since start, for the service's metrics.
  int64_t unauthenticated_calls_total() const;

 private:
  GrpcServer(std::unique_ptr<grpc::Server> server, std::shared_ptr<internal::AuthHook> hook,
             int port);

  const std::unique_ptr<grpc::Server> server_;
  const std::shared_ptr<internal::AuthHook> hook_;
  const int port_;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

// absl::Status -> grpc::Status with the same code and message (the code spaces are identical).
// Handlers convert exactly once, at their return.
grpc::Status ToGrpcStatus(const absl::Status& status);
// grpc::Status -> absl::Status, for clients of other Tongka services.
absl::Status FromGrpcStatus(const grpc::Status& status);

// Blocks SIGTERM and SIGINT in the calling thread; threads started later inherit the mask, so the
// signals stay pending until WaitForShutdownSignal() takes them. Call first thing in main(),
// before anything starts a thread (gRPC, librdkafka, RocksDB do).
void BlockShutdownSignals();

// Waits until SIGTERM or SIGINT arrives and returns its number. CHECK-fails if the calling thread
// has not blocked them (BlockShutdownSignals()), because the signal could otherwise kill the
// process through its default action before this function sees it.
int WaitForShutdownSignal();

}  // namespace tongka::server

#endif  // TONGKA_LIBS_SERVER_GRPC_SERVER_H_
