#include "tools/sample/summary.h"

#include <glog/logging.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/sample/sample_state.h"

namespace tongka::sample {

absl::StatusOr<std::string> SummaryJson(const state_store::StateStore& store) {
  absl::StatusOr<std::string> digest = store.Digest();
  if (!digest.ok()) return digest.status();
  absl::StatusOr<SampleTotals> totals = ReadTotals(store);
  if (!totals.ok()) return totals.status();
  absl::StatusOr<std::map<state_store::TopicPartition, int64_t>> offsets = store.Offsets();
  if (!offsets.ok()) return offsets.status();
  int64_t offset_sum = 0;
  for (const auto& [tp, next] : *offsets) {
    if (tp.topic == kTxnTopic) offset_sum += next;
  }
  std::vector<std::string> cities;
  for (const auto& [city, figures] : totals->per_city) {
    cities.push_back(absl::StrCat("\"", city, "\":[", figures.first, ",", figures.second, "]"));
  }
  return absl::StrCat("{\"digest\":\"", *digest, "\",\"card_taps\":", totals->card_taps,
                      ",\"card_spent_fen\":", totals->card_spent_fen,
                      ",\"city_taps\":", totals->city_taps,
                      ",\"city_amount_fen\":", totals->city_amount_fen,
                      ",\"duplicates_dropped\":", totals->duplicates_dropped,
                      ",\"unparseable\":", totals->unparseable, ",\"txn_offsets\":", offset_sum,
                      ",\"cities\":{", absl::StrJoin(cities, ","), "}}");
}

int PrintSummary(const std::string& state_dir) {
  absl::StatusOr<std::unique_ptr<state_store::StateStore>> store =
      state_store::StateStore::Open({.path = state_dir});
  if (!store.ok()) {
    LOG(ERROR) << "summary: " << store.status();
    return 2;
  }
  absl::StatusOr<std::string> json = SummaryJson(**store);
  if (!json.ok()) {
    LOG(ERROR) << "summary: " << json.status();
    return 1;
  }
  std::cout << *json << std::endl;
  return 0;
}

}  // namespace tongka::sample
