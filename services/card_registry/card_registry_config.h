// CardRegistryConfig: every setting of the card registry service, named, documented, defaulted,
// bounded, and validated before start (a bad value stops start-up with a message naming it).
#ifndef TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_CONFIG_H_
#define TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "libs/server/grpc_server.h"

namespace tongka::card_registry {

struct CardRegistryConfig {
  // Kafka bootstrap servers (host:port,...). Required.
  std::string kafka_bootstrap;
  // Kafka TLS client files (all three or none).
  std::string kafka_ca_path;
  std::string kafka_cert_path;
  std::string kafka_key_path;
  // RocksDB directory. Required.
  std::string state_dir;
  // Replica k of N owns the tongka.cards and tongka.txn partitions p % N == k and serves the
  // cards in them. N in [1, 1024].
  int32_t replica_index = 0;
  int32_t replica_count = 1;
  // gRPC addresses of every replica in index order (a card's calls are forwarded to its owner, the
  // hotlist and holder lookups gather every partition). Required when replica_count > 1; its
  // size must equal replica_count.
  std::vector<std::string> peers;
  // The holder key file (holder_keys.h): one "<city>:<hex secret>" line per issuer city. Required
  // unless the gRPC auth is dev tokens; without it no holder identity or device id is accepted.
  std::string holder_keys_path;
  // The gRPC server (listen address, mTLS or dev tokens).
  server::GrpcServerConfig grpc;
  // Address of /metrics (and /healthz, /readyz); port 0 picks a free port, -1 disables them.
  std::string metrics_host = "0.0.0.0";
  int32_t metrics_port = 9100;
  // Records per RocksDB commit of the ledger loop, [1, 100000].
  int32_t batch_max_records = 5000;
  // How long a command waits to be written and decided (read-your-writes) before
  // DEADLINE_EXCEEDED, [100 ms, 10 min].
  absl::Duration command_timeout = absl::Seconds(30);

  absl::Status Validate() const;
};

}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_CONFIG_H_
