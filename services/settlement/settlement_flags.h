// The settlement service's command-line flags, turned into a SettlementConfig (validated later,
// by SettlementApp::Create).
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_FLAGS_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_FLAGS_H_

#include "services/settlement/settlement_config.h"

namespace tongka::settlement {

SettlementConfig ConfigFromFlags();

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_FLAGS_H_
