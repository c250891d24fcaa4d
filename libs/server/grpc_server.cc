#include "libs/server/grpc_server.h"

#include <glog/logging.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <pthread.h>
#include <signal.h>

#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tongka::server {
namespace {

// Methods every caller may use without credentials: health probes and schema discovery.
constexpr absl::string_view kPublicMethodPrefixes[] = {
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
};

absl::string_view View(grpc::string_ref ref) { return absl::string_view(ref.data(), ref.size()); }

absl::StatusOr<std::string> ReadFile(absl::string_view field, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": cannot read \"", path, "\""));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (contents.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", path, "\" is empty"));
  }
  return contents.str();
}

// gRPC's health service and reflection are process-wide switches that apply to servers built
// afterwards; turn them on once.
void EnableStandardServicesOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  });
}

}  // namespace

namespace internal {

// Runs before every handler: exempts the public methods, otherwise asks the Authenticator and
// fails the call with its status. Used directly as the AuthMetadataProcessor of the TLS
// credentials, and through PlaintextCredentials' C callback in dev-token mode.
class AuthHook final : public grpc::AuthMetadataProcessor {
 public:
  explicit AuthHook(std::shared_ptr<const Authenticator> authenticator)
      : authenticator_(std::move(authenticator)) {}

  // Authentication is a few microseconds of CPU and never blocks, so gRPC may run it inline.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override {
    return Check(context, auth_metadata);
  }

  grpc::Status Check(const grpc::AuthContext* peer, const CallMetadata& metadata) {
    const auto path = metadata.find(":path");
    if (path == metadata.end()) {
      // Without the method name no exemption applies; authenticate like any other call.
      LOG_FIRST_N(WARNING, 1) << "gRPC did not pass :path to the auth hook";
    } else {
      for (absl::string_view prefix : kPublicMethodPrefixes) {
        if (absl::StartsWith(View(path->second), prefix)) return grpc::Status::OK;
      }
    }
    absl::StatusOr<tongka::v1::Tenant> tenant = authenticator_->Authenticate(peer, metadata);
    if (tenant.ok()) return grpc::Status::OK;
    unauthenticated_calls_total_.fetch_add(1, std::memory_order_relaxed);
    VLOG(1) << "rejected call to "
            << (path == metadata.end() ? "(unknown method)" : View(path->second)) << ": "
            << tenant.status();
    return ToGrpcStatus(tenant.status());
  }

  int64_t unauthenticated_calls_total() const {
    return unauthenticated_calls_total_.load(std::memory_order_relaxed);
  }

 private:
  const std::shared_ptr<const Authenticator> authenticator_;
  std::atomic<int64_t> unauthenticated_calls_total_{0};
};

}  // namespace internal

namespace {

using internal::AuthHook;

// Plaintext server credentials that still run an auth metadata processor. gRPC C++'s
// InsecureServerCredentials() refuses processors (it asserts), but gRPC core's insecure server
// credentials accept one through the public C API, and its server auth filter then runs the
// processor for every call exactly as it does for TLS. This class wires the two together.
class PlaintextCredentials final : public grpc::ServerCredentials {
 public:
  explicit PlaintextCredentials(std::shared_ptr<AuthHook> hook)
      : credentials_(grpc_insecure_server_credentials_create()) {
    CHECK(credentials_ != nullptr);
    // The C credentials are reference-counted by gRPC core and may outlive this object (live
    // connections keep them), so the processor state holds its own reference to the hook.
    grpc_auth_metadata_processor processor;
    processor.process = &Process;
    processor.destroy = [](void* state) { delete static_cast<std::shared_ptr<AuthHook>*>(state); };
    processor.state = new std::shared_ptr<AuthHook>(std::move(hook));
    grpc_server_credentials_set_auth_metadata_processor(credentials_, processor);
  }

  ~PlaintextCredentials() override { grpc_server_credentials_release(credentials_); }

  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>& processor) override {
    LOG(FATAL) << "PlaintextCredentials has its processor fixed at construction";
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), credentials_);
  }

  static void Process(void* state, grpc_auth_context* context, const grpc_metadata* md,
                      size_t md_count, grpc_process_auth_metadata_done_cb done, void* user_data) {
    auto& hook = *static_cast<std::shared_ptr<AuthHook>*>(state);
    CallMetadata metadata;
    for (size_t i = 0; i < md_count; ++i) {
      metadata.emplace(
          grpc::string_ref(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(md[i].key)),
                           GRPC_SLICE_LENGTH(md[i].key)),
          grpc::string_ref(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(md[i].value)),
                           GRPC_SLICE_LENGTH(md[i].value)));
    }
    // Dev-token authentication reads metadata only; a plaintext connection has no peer identity.
    const grpc::Status status = hook->Check(/*peer=*/nullptr, metadata);
    done(user_data, nullptr, 0, nullptr, 0, static_cast<grpc_status_code>(status.error_code()),
         status.ok() ? nullptr : status.error_message().c_str());
  }

  grpc_server_credentials* const credentials_;
};

absl::Status TlsFileInDevMode(absl::string_view field) {
  return absl::InvalidArgumentError(absl::StrCat(
      field, ": must be empty in dev_token mode (it serves plaintext and would ignore it)"));
}

}  // namespace

absl::Status ValidateGrpcServerConfig(const GrpcServerConfig& config) {
  if (config.listen_address.empty() || config.listen_address.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("grpc.listen_address: must be host:port, got \"",
                                                   config.listen_address, "\""));
  }
  if (config.max_message_bytes < kMaxMessageBytesMin ||
      config.max_message_bytes > kMaxMessageBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("grpc.max_message_bytes: must be in [",
                                                   kMaxMessageBytesMin, ", ", kMaxMessageBytesMax,
                                                   "], got ", config.max_message_bytes));
  }
  switch (config.auth_mode) {
    case AuthMode::kMtls:
      if (config.tls_cert_path.empty()) {
        return absl::InvalidArgumentError("grpc.tls_cert_path: required in mtls mode");
      }
      if (config.tls_key_path.empty()) {
        return absl::InvalidArgumentError("grpc.tls_key_path: required in mtls mode");
      }
      if (config.tls_client_ca_path.empty()) {
        return absl::InvalidArgumentError("grpc.tls_client_ca_path: required in mtls mode");
      }
      if (!config.dev_token_secret.empty()) {
        return absl::InvalidArgumentError(
            "grpc.dev_token_secret: must be empty in mtls mode (it can mint any tenant)");
      }
      return absl::OkStatus();
    case AuthMode::kDevToken:
      // Dev mode serves plaintext: TLS files here would be ignored, and a config that names them
      // was meant for mTLS.
      if (!config.tls_cert_path.empty()) return TlsFileInDevMode("grpc.tls_cert_path");
      if (!config.tls_key_path.empty()) return TlsFileInDevMode("grpc.tls_key_path");
      if (!config.tls_client_ca_path.empty()) return TlsFileInDevMode("grpc.tls_client_ca_path");
      if (config.dev_token_secret.size() < kDevTokenSecretSizeMin) {
        return absl::InvalidArgumentError(
            absl::StrCat("grpc.dev_token_secret: must be at least ", kDevTokenSecretSizeMin,
                         " bytes in dev_token mode, got ", config.dev_token_secret.size()));
      }
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError("grpc.auth_mode: unknown value");
}

absl::StatusOr<std::shared_ptr<const Authenticator>> MakeAuthenticator(
    const GrpcServerConfig& config, NowFn now) {
  if (absl::Status status = ValidateGrpcServerConfig(config); !status.ok()) return status;
  switch (config.auth_mode) {
    case AuthMode::kMtls:
      return Authenticator::ForMtls();
    case AuthMode::kDevToken:
      return Authenticator::ForDevTokens(config.dev_token_secret, std::move(now));
  }
  return absl::InvalidArgumentError("grpc.auth_mode: unknown value");
}

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const GrpcServerConfig& config, std::shared_ptr<const Authenticator> authenticator,
    const std::vector<grpc::Service*>& services) {
  if (absl::Status status = ValidateGrpcServerConfig(config); !status.ok()) return status;
  if (authenticator == nullptr || authenticator->mode() != config.auth_mode) {
    return absl::InvalidArgumentError(absl::StrCat(
        "grpc.auth_mode: the authenticator must be in ", AuthModeName(config.auth_mode),
        " mode (build it with MakeAuthenticator(config))"));
  }
  auto hook = std::make_shared<AuthHook>(std::move(authenticator));

  std::shared_ptr<grpc::ServerCredentials> credentials;
  switch (config.auth_mode) {
    case AuthMode::kMtls: {
      absl::StatusOr<std::string> cert = ReadFile("grpc.tls_cert_path", config.tls_cert_path);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadFile("grpc.tls_key_path", config.tls_key_path);
      if (!key.ok()) return key.status();
      absl::StatusOr<std::string> ca =
          ReadFile("grpc.tls_client_ca_path", config.tls_client_ca_path);
      if (!ca.ok()) return ca.status();
      grpc::SslServerCredentialsOptions options(
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      options.pem_root_certs = *std::move(ca);
      options.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
      credentials = grpc::SslServerCredentials(options);
      credentials->SetAuthMetadataProcessor(hook);
      break;
    }
    case AuthMode::kDevToken:
      credentials = std::make_shared<PlaintextCredentials>(hook);
      break;
  }

  EnableStandardServicesOnce();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen_address, credentials, &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
  for (grpc::Service* service : services) {
    CHECK(service != nullptr) << "GrpcServer::Start: null service";
    builder.RegisterService(service);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat("grpc.listen_address: cannot listen on \"",
                                               config.listen_address,
                                               "\" (in use, or not a local address?)"));
  }
  CHECK(server->GetHealthCheckService() != nullptr);
  server->GetHealthCheckService()->SetServingStatus(true);
  LOG(INFO) << "gRPC server listening on port " << port << " (" << config.listen_address
            << "), auth " << AuthModeName(config.auth_mode) << ", " << services.size()
            << " service(s) plus health and reflection";
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(server), std::move(hook), port));
}

GrpcServer::GrpcServer(std::unique_ptr<grpc::Server> server,
                       std::shared_ptr<internal::AuthHook> hook, int port)
    : server_(std::move(server)), hook_(std::move(hook)), port_(port) {}

GrpcServer::~GrpcServer() { Shutdown(absl::Now()); }

void GrpcServer::SetServing(bool serving) {
  server_->GetHealthCheckService()->SetServingStatus(serving);
}

void GrpcServer::Shutdown(absl::Time deadline) {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  LOG(INFO) << "gRPC server on port " << port_ << " shutting down, deadline "
            << absl::FormatDuration(deadline - absl::Now());
  // Shutting the health service down first answers NOT_SERVING to probes while calls drain.
  server_->GetHealthCheckService()->Shutdown();
  server_->Shutdown(absl::ToChronoTime(deadline));
  server_->Wait();
  LOG(INFO) << "gRPC server on port " << port_ << " stopped";
}

int64_t GrpcServer::unauthenticated_calls_total() const {
  return hook_->unauthenticated_calls_total();
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

namespace {

sigset_t ShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

}  // namespace

void BlockShutdownSignals() {
  const sigset_t signals = ShutdownSignals();
  CHECK_EQ(pthread_sigmask(SIG_BLOCK, &signals, nullptr), 0);
}

int WaitForShutdownSignal() {
  const sigset_t signals = ShutdownSignals();
  sigset_t blocked;
  CHECK_EQ(pthread_sigmask(SIG_BLOCK, nullptr, &blocked), 0);
  CHECK(sigismember(&blocked, SIGTERM) == 1 && sigismember(&blocked, SIGINT) == 1)
      << "call BlockShutdownSignals() at the top of main() before WaitForShutdownSignal()";
  int signal_number = 0;
  CHECK_EQ(sigwait(&signals, &signal_number), 0);
  return signal_number;
}

}  // namespace tongka::server
