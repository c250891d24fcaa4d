// PeerChannels: how a replica calls another replica of the same service (settlement's --peers),
// with the credentials of the service's own auth mode.
//
// mtls: TLS with the replica's own server certificate as its client certificate (its subject CN
// is the service's platform tenant, e.g. platform:settlement) against the same CA. dev: plaintext,
// and each call carries a dev token for the platform tenant, minted from the server's secret.
//
// Ownership: channels are shared_ptrs the caller keeps (one stub per peer). Thread-safety:
// Prepare() and Channel() from any thread once created. Failure behaviour: Create returns
// INVALID_ARGUMENT naming the TLS file it cannot read (grpc.tls_*); Prepare returns a token
// error as it is.
//
// Example:
//   absl::StatusOr<PeerChannels> peers = PeerChannels::Create(config.grpc, "settlement", clock);
//   auto stub = v1::SettlementService::NewStub(peers->Channel("settlement-1:7000"));
//   grpc::ClientContext context;
//   if (absl::Status ready = peers->Prepare(&context, absl::Seconds(30)); !ready.ok()) ...
//   stub->ListCellTransactions(&context, request, &response);
#ifndef TONGKA_LIBS_SERVICE_PEER_CHANNEL_H_
#define TONGKA_LIBS_SERVICE_PEER_CHANNEL_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/security/credentials.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/server/dev_token.h"
#include "libs/server/grpc_server.h"
#include "libs/service/clock.h"

namespace tongka::service {

class PeerChannels {
 public:
  // `own` is this replica's validated server config; `service_name` its platform tenant's name.
  static absl::StatusOr<PeerChannels> Create(const server::GrpcServerConfig& own,
                                             const std::string& service_name, const Clock* clock);

  // A channel to `address` (host:port) with this service's credentials.
  std::shared_ptr<grpc::Channel> Channel(const std::string& address) const;

  // Sets the call's deadline `timeout` from now and, in dev mode, its platform dev token.
  absl::Status Prepare(grpc::ClientContext* context, absl::Duration timeout) const;

 private:
  PeerChannels(std::shared_ptr<grpc::ChannelCredentials> credentials,
               std::optional<server::DevTokenIssuer> issuer, std::string service_name,
               const Clock* clock)
      : credentials_(std::move(credentials)),
        issuer_(std::move(issuer)),
        service_name_(std::move(service_name)),
        clock_(clock) {}

  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::optional<server::DevTokenIssuer> issuer_;
  std::string service_name_;
  const Clock* clock_;
};

}  // namespace tongka::service

#endif  // TONGKA_LIBS_SERVICE_PEER_CHANNEL_H_
