#include "libs/service/peer_channel.h"

#include <grpcpp/create_channel.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "libs/server/authenticator.h"
#include "libs/server/tenant.h"

namespace tongka::service {
namespace {

// Dev tokens for peer calls live this long; each call mints its own.
constexpr absl::Duration kPeerTokenLifetime = absl::Minutes(5);

absl::StatusOr<std::string> ReadPem(const std::string& field, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": cannot read \"", path, "\" for calls to peer replicas"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<PeerChannels> PeerChannels::Create(const server::GrpcServerConfig& own,
                                                  const std::string& service_name,
                                                  const Clock* clock) {
  if (own.auth_mode == server::AuthMode::kDevToken) {
    absl::StatusOr<server::DevTokenIssuer> issuer =
        server::DevTokenIssuer::Create(own.dev_token_secret);
    if (!issuer.ok()) return issuer.status();
    return PeerChannels(grpc::InsecureChannelCredentials(), std::move(*issuer), service_name,
                        clock);
  }
  grpc::SslCredentialsOptions tls;
  absl::StatusOr<std::string> ca = ReadPem("grpc.tls_client_ca_path", own.tls_client_ca_path);
  if (!ca.ok()) return ca.status();
  absl::StatusOr<std::string> cert = ReadPem("grpc.tls_cert_path", own.tls_cert_path);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem("grpc.tls_key_path", own.tls_key_path);
  if (!key.ok()) return key.status();
  tls.pem_root_certs = *std::move(ca);
  tls.pem_cert_chain = *std::move(cert);
  tls.pem_private_key = *std::move(key);
  return PeerChannels(grpc::SslCredentials(tls), std::nullopt, service_name, clock);
}

std::shared_ptr<grpc::Channel> PeerChannels::Channel(const std::string& address) const {
  return grpc::CreateChannel(address, credentials_);
}

absl::Status PeerChannels::Prepare(grpc::ClientContext* context, absl::Duration timeout) const {
  // The deadline is real time: gRPC enforces it against the system clock.
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!issuer_.has_value()) return absl::OkStatus();
  absl::StatusOr<std::string> token =
      issuer_->Issue(server::PlatformTenant(service_name_), clock_->Now() + kPeerTokenLifetime);
  if (!token.ok()) return token.status();
  server::AttachDevToken(context, *token);
  return absl::OkStatus();
}

}  // namespace tongka::service
