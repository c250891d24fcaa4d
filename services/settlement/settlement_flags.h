// The settlement service's command-line flags, turned into a SettlementConfig. The flags every
// service has (Kafka, state directory, metrics, replicas) come from libs/service common_flags.h,
// the gRPC address and --auth=mtls|dev from grpc_flags.h; this file defines only settlement's own.
//
// Thread-safety: call after absl::ParseCommandLine, from main. Failure: INVALID_ARGUMENT naming the
// flag for a bad or contradictory flag; the config is validated again by SettlementApp::Create,
// whose messages name the field.
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_FLAGS_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_FLAGS_H_

#include "absl/status/statusor.h"
#include "services/settlement/settlement_config.h"

namespace tongka::settlement {

absl::StatusOr<SettlementConfig> ConfigFromFlags();

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_FLAGS_H_
