// tongka_sample: the runtime's sample service (see sample_app.h). Wiring only.
#include "libs/service/common_flags.h"
#include "libs/service/service_main.h"
#include "tools/sample/sample_app.h"
#include "tools/sample/sample_flags.h"
#include "tools/sample/summary.h"

int main(int argc, char** argv) {
  namespace service = tongka::service;
  namespace sample = tongka::sample;
  return service::ServiceMain(argc, argv, "tongka_sample", [](const service::Clock* clock) {
    // --summary inspects a store and needs --state_dir alone.
    if (sample::SummaryRequested()) {
      return service::Finished(sample::PrintSummary(service::ReadCommonFlags().state_dir));
    }
    absl::StatusOr<sample::SampleConfig> config = sample::ConfigFromFlags();
    if (!config.ok()) return service::BadFlags(config.status());
    return service::Started(sample::SampleApp::Create(*config, clock));
  });
}
