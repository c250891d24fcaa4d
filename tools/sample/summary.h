// The sample store's digest and totals as one JSON line, for tests and the quick start.
#ifndef TONGKA_TOOLS_SAMPLE_SUMMARY_H_
#define TONGKA_TOOLS_SAMPLE_SUMMARY_H_

#include <string>

#include "absl/status/statusor.h"
#include "libs/state_store/state_store.h"

namespace tongka::sample {

// {"digest":"…","card_taps":N,"card_spent_fen":N,"city_taps":N,"city_amount_fen":N,
//  "duplicates_dropped":N,"unparseable":N,"offsets":N,"cities":{"310000":[taps,fen],…}}
absl::StatusOr<std::string> SummaryJson(const state_store::StateStore& store);

// Opens the store at `state_dir`, prints SummaryJson to stdout; returns a process exit code.
int PrintSummary(const std::string& state_dir);

}  // namespace tongka::sample

#endif  // TONGKA_TOOLS_SAMPLE_SUMMARY_H_
