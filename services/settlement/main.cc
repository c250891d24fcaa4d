// tongka_settlement: the settlement service (README.md). Wiring only: flags -> config -> app.
#include "libs/service/service_main.h"
#include "services/settlement/settlement_app.h"
#include "services/settlement/settlement_flags.h"

int main(int argc, char** argv) {
  namespace service = tongka::service;
  namespace settlement = tongka::settlement;
  return service::ServiceMain(argc, argv, "tongka_settlement", [](const service::Clock* clock) {
    absl::StatusOr<settlement::SettlementConfig> config = settlement::ConfigFromFlags();
    if (!config.ok()) return service::BadFlags(config.status());
    return service::Started(settlement::SettlementApp::Create(*config, clock));
  });
}
