#include "tools/cli/caller.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/server/authenticator.h"
#include "libs/server/dev_token.h"
#include "libs/server/grpc_server.h"
#include "libs/server/tenant.h"

ABSL_FLAG(std::string, tenant, "ministry",
          "Who is calling (dev-token mode): ministry, city:<code>, partner:<id>.");
ABSL_FLAG(std::string, dev_token_secret, "",
          "Development: sign a dev token for --tenant with this secret instead of using mTLS.");
ABSL_FLAG(std::string, tls_ca, "", "mTLS: the CA of the service's certificate (PEM).");
ABSL_FLAG(std::string, tls_cert, "", "mTLS: the caller's client certificate (PEM).");
ABSL_FLAG(std::string, tls_key, "", "mTLS: the caller's client key (PEM).");

namespace tongka::cli {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// A dev token for --tenant, valid for ten minutes.
absl::StatusOr<std::string> DevToken(const std::string& secret) {
  absl::StatusOr<v1::Tenant> tenant = server::ParseTenantName(absl::GetFlag(FLAGS_tenant));
  if (!tenant.ok()) return tenant.status();
  absl::StatusOr<server::DevTokenIssuer> issuer = server::DevTokenIssuer::Create(secret);
  if (!issuer.ok()) return issuer.status();
  return issuer->Issue(*tenant, absl::Now() + absl::Minutes(10));
}

}  // namespace

Caller::Caller() : dev_token_secret_(absl::GetFlag(FLAGS_dev_token_secret)) {
  if (dev_token_secret_.empty()) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = ReadFile(absl::GetFlag(FLAGS_tls_ca));
    tls.pem_cert_chain = ReadFile(absl::GetFlag(FLAGS_tls_cert));
    tls.pem_private_key = ReadFile(absl::GetFlag(FLAGS_tls_key));
    credentials_ = grpc::SslCredentials(tls);
  } else {
    credentials_ = grpc::InsecureChannelCredentials();
  }
}

std::shared_ptr<grpc::Channel> Caller::Channel(const std::string& target) const {
  return grpc::CreateChannel(target, credentials_);
}

bool Caller::Prepare(grpc::ClientContext* context, int seconds) const {
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  if (dev_token_secret_.empty()) return true;
  absl::StatusOr<std::string> token = DevToken(dev_token_secret_);
  if (!token.ok()) {
    std::cerr << "tongka_ctl: --tenant / --dev_token_secret: " << token.status() << "\n";
    return false;
  }
  server::AttachDevToken(context, *token);
  return true;
}

void PrintFailure(const grpc::Status& status) {
  std::cerr << "tongka_ctl: " << server::FromGrpcStatus(status) << "\n";
}

}  // namespace tongka::cli
