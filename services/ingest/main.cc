// tongka_ingest: the ingest service (README.md). Wiring only: flags -> IngestConfig -> IngestApp.
#include "libs/service/service_main.h"
#include "services/ingest/ingest_app.h"
#include "services/ingest/ingest_flags.h"

int main(int argc, char** argv) {
  namespace service = tongka::service;
  namespace ingest = tongka::ingest;
  return service::ServiceMain(argc, argv, "tongka_ingest", [](const service::Clock* clock) {
    absl::StatusOr<ingest::IngestConfig> config = ingest::ConfigFromFlags();
    if (!config.ok()) return service::BadFlags(config.status());
    return service::Started(ingest::IngestApp::Create(*config, clock));
  });
}
