#include "libs/service/grpc_flags.h"

#include <glog/logging.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/server/dev_token.h"

ABSL_FLAG(std::string, grpc_host, "0.0.0.0", "gRPC listen host.");
ABSL_FLAG(int32_t, grpc_port, 7000, "gRPC port; 0 picks a free one.");
ABSL_FLAG(std::string, auth, tongka::service::kAuthMtls,
          "How callers authenticate: mtls (client certificates; production) or dev (plaintext "
          "gRPC with signed development tokens; development and CI only).");
ABSL_FLAG(std::string, tls_cert, "", "--auth=mtls: the gRPC server certificate chain (PEM).");
ABSL_FLAG(std::string, tls_key, "", "--auth=mtls: the gRPC server private key (PEM).");
ABSL_FLAG(std::string, tls_ca, "",
          "--auth=mtls: the CA that callers' (tenants') client certificates chain to (PEM).");
ABSL_FLAG(std::string, dev_token_secret_file, "",
          "--auth=dev: file holding the dev-token secret (>= 16 bytes; trailing newlines dropped). "
          "Or set TONGKA_DEV_TOKEN_SECRET.");
ABSL_FLAG(std::string, dev_token_secret, "",
          "--auth=dev: the dev-token secret itself (>= 16 bytes). Visible to `ps`: prefer "
          "--dev_token_secret_file or TONGKA_DEV_TOKEN_SECRET.");

namespace tongka::service {
namespace {

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

// A secret and the words that name where it came from, for messages.
struct SecretSource {
  std::string name;
  std::string secret;
};

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Invalid(absl::StrCat("--dev_token_secret_file: cannot read \"", path, "\""));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string secret = text.str();
  // `echo secret > file` and editors end the file with a newline that is not part of the secret.
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) {
    return Invalid(absl::StrCat("--dev_token_secret_file: \"", path, "\" is empty"));
  }
  return secret;
}

// Every source of a dev-token secret that is set, in the order they are named in messages.
absl::StatusOr<std::vector<SecretSource>> SecretSources() {
  std::vector<SecretSource> sources;
  if (std::string file = absl::GetFlag(FLAGS_dev_token_secret_file); !file.empty()) {
    absl::StatusOr<std::string> secret = ReadSecretFile(file);
    if (!secret.ok()) return secret.status();
    sources.push_back({"--dev_token_secret_file", std::move(*secret)});
  }
  if (const char* env = std::getenv(kDevTokenSecretEnv); env != nullptr && *env != '\0') {
    sources.push_back({absl::StrCat(kDevTokenSecretEnv, " (environment)"), env});
  }
  if (std::string flag = absl::GetFlag(FLAGS_dev_token_secret); !flag.empty()) {
    sources.push_back({"--dev_token_secret", std::move(flag)});
  }
  return sources;
}

}  // namespace

absl::StatusOr<server::GrpcServerConfig> GrpcConfigFromFlags() {
  server::GrpcServerConfig config;
  const std::string host = absl::GetFlag(FLAGS_grpc_host);
  const int32_t port = absl::GetFlag(FLAGS_grpc_port);
  if (host.empty()) return Invalid("--grpc_host: required (0.0.0.0 for every interface)");
  if (port < 0 || port > 65535) {
    return Invalid(absl::StrCat("--grpc_port: must be in [0, 65535], got ", port));
  }
  config.listen_address = absl::StrCat(host, ":", port);

  const std::string auth = absl::GetFlag(FLAGS_auth);
  const std::pair<const char*, std::string> tls_flags[] = {
      {"--tls_cert", absl::GetFlag(FLAGS_tls_cert)},
      {"--tls_key", absl::GetFlag(FLAGS_tls_key)},
      {"--tls_ca", absl::GetFlag(FLAGS_tls_ca)},
  };
  absl::StatusOr<std::vector<SecretSource>> secrets = SecretSources();
  if (auth == kAuthMtls) {
    if (!secrets.ok()) {
      return Invalid(absl::StrCat("--auth=mtls contradicts --dev_token_secret_file (",
                                  secrets.status().message(), ")"));
    }
    if (!secrets->empty()) {
      return Invalid(absl::StrCat("--auth=mtls contradicts ", secrets->front().name,
                                  ": a dev-token secret can mint any tenant and must not be on an "
                                  "mTLS server; remove it, or pass --auth=dev for development"));
    }
    for (const auto& [flag, path] : tls_flags) {
      if (path.empty()) {
        return Invalid(absl::StrCat("--auth=mtls needs ", flag,
                                    " (PEM file); for development without certificates pass "
                                    "--auth=dev"));
      }
    }
    config.auth_mode = server::AuthMode::kMtls;
    config.tls_cert_path = tls_flags[0].second;
    config.tls_key_path = tls_flags[1].second;
    config.tls_client_ca_path = tls_flags[2].second;
  } else if (auth == kAuthDev) {
    for (const auto& [flag, path] : tls_flags) {
      if (!path.empty()) {
        return Invalid(absl::StrCat("--auth=dev contradicts ", flag,
                                    ": dev mode serves plaintext gRPC and would ignore it; remove ",
                                    flag, ", or pass --auth=mtls"));
      }
    }
    if (!secrets.ok()) return secrets.status();
    if (secrets->empty()) {
      return Invalid(absl::StrCat("--auth=dev needs a dev-token secret: --dev_token_secret_file, ",
                                  kDevTokenSecretEnv, " or --dev_token_secret"));
    }
    if (secrets->size() > 1) {
      std::vector<std::string> names;
      for (const SecretSource& source : *secrets) names.push_back(source.name);
      return Invalid(absl::StrCat(names[0], " contradicts ",
                                  absl::StrJoin(names.begin() + 1, names.end(), " and "),
                                  ": give the dev-token secret one way only"));
    }
    const SecretSource& source = secrets->front();
    if (source.secret.size() < server::kDevTokenSecretSizeMin) {
      return Invalid(absl::StrCat(source.name, ": the dev-token secret must be at least ",
                                  server::kDevTokenSecretSizeMin, " bytes, got ",
                                  source.secret.size()));
    }
    config.auth_mode = server::AuthMode::kDevToken;
    config.dev_token_secret = source.secret;
  } else {
    return Invalid(
        absl::StrCat("--auth: must be ", kAuthMtls, " or ", kAuthDev, ", got \"", auth, "\""));
  }
  // The server's own rules (message size, ...), in case they grow stricter than the flags'.
  if (absl::Status valid = server::ValidateGrpcServerConfig(config); !valid.ok()) return valid;
  LOG(INFO) << DescribeAuthMode(config);
  return config;
}

std::string DescribeAuthMode(const server::GrpcServerConfig& config) {
  switch (config.auth_mode) {
    case server::AuthMode::kMtls:
      return absl::StrCat("auth: ", kAuthMtls, ", client certificates verified against CA ",
                          config.tls_client_ca_path, ", server certificate ", config.tls_cert_path);
    case server::AuthMode::kDevToken:
      return absl::StrCat("auth: ", kAuthDev,
                          ", plaintext gRPC with development tokens (development and CI only)");
  }
  return "auth: unknown";
}

}  // namespace tongka::service
