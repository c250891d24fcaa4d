// The command-line flags of tongka_ingest and their translation into an IngestConfig (validated
// later by IngestApp::Create). Flag names follow deploy/k8s/README.md's runtime flags.
//
// Thread-safety: call after absl::ParseCommandLine, from main. Failure: none here; bad values
// surface as IngestConfig::Validate errors naming the field.
//
// Example:
//   absl::ParseCommandLine(argc, argv);
//   IngestConfig config = ConfigFromFlags();
#ifndef TONGKA_SERVICES_INGEST_INGEST_FLAGS_H_
#define TONGKA_SERVICES_INGEST_INGEST_FLAGS_H_

#include "services/ingest/ingest_config.h"

namespace tongka::ingest {

IngestConfig ConfigFromFlags();

}  // namespace tongka::ingest

#endif  // TONGKA_SERVICES_INGEST_INGEST_FLAGS_H_
