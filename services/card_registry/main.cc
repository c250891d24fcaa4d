// tongka_card_registry: the card registry service (README.md). Wiring only: flags -> config -> app.
#include "libs/service/service_main.h"
#include "services/card_registry/card_registry_app.h"
#include "services/card_registry/card_registry_flags.h"

int main(int argc, char** argv) {
  namespace service = tongka::service;
  namespace card_registry = tongka::card_registry;
  return service::ServiceMain(argc, argv, "tongka_card_registry", [](const service::Clock* clock) {
    absl::StatusOr<card_registry::CardRegistryConfig> config = card_registry::ConfigFromFlags();
    if (!config.ok()) return service::BadFlags(config.status());
    return service::Started(card_registry::CardRegistryApp::Create(*config, clock));
  });
}
