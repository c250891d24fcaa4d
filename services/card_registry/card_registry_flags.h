// The card registry's command-line flags, turned into a CardRegistryConfig. The flags every
// service has (Kafka, state directory, metrics, replicas) come from libs/service common_flags.h,
// the gRPC address and --auth=mtls|dev from grpc_flags.h; this file defines only the registry's
// own: --peers, --holder_keys, --command_timeout, --batch_max_records.
//
// Thread-safety: call after absl::ParseCommandLine, from main. Failure: INVALID_ARGUMENT naming the
// flag for a bad or contradictory flag (--auth=mtls without --holder_keys); the config is
// validated again by CardRegistryApp::Create, whose messages name the field.
//
// Example:
//   absl::StatusOr<CardRegistryConfig> config = ConfigFromFlags();
//   if (!config.ok()) return service::BadFlags(config.status());
#ifndef TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_FLAGS_H_
#define TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_FLAGS_H_

#include "absl/status/statusor.h"
#include "services/card_registry/card_registry_config.h"

namespace tongka::card_registry {

absl::StatusOr<CardRegistryConfig> ConfigFromFlags();

}  // namespace tongka::card_registry

#endif  // TONGKA_SERVICES_CARD_REGISTRY_CARD_REGISTRY_FLAGS_H_
