// The command-line flags of tongka_ingest and their translation into an IngestConfig. The flags
// every service has (Kafka, state directory, metrics, replicas) come from libs/service
// common_flags.h, the gRPC address and --auth=mtls|dev from grpc_flags.h; this file defines only
// ingest's own. Flag names follow deploy/k8s/README.md's runtime flags.
//
// Thread-safety: call after absl::ParseCommandLine, from main. Failure: INVALID_ARGUMENT naming the
// flag for a bad or contradictory flag (including --auth=mtls without --city_keys: an empty key
// file means the public development keys); values that pass here are validated again as an
// IngestConfig by IngestApp::Create, whose messages name the field.
//
// Example:
//   absl::ParseCommandLine(argc, argv);
//   absl::StatusOr<IngestConfig> config = ConfigFromFlags();
//   if (!config.ok()) { LOG(ERROR) << config.status(); return 2; }
#ifndef TONGKA_SERVICES_INGEST_INGEST_FLAGS_H_
#define TONGKA_SERVICES_INGEST_INGEST_FLAGS_H_

#include "absl/status/statusor.h"
#include "services/ingest/ingest_config.h"

namespace tongka::ingest {

absl::StatusOr<IngestConfig> ConfigFromFlags();

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_INGEST_FLAGS_H_
