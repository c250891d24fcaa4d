#include "libs/state_store/state_view.h"

namespace tongka::state_store {

StateView ViewOf(const StateStore& store) {
  return StateView{
      [&store](absl::string_view key) { return store.Get(key); },
      [&store](absl::string_view prefix,
               const std::function<bool(absl::string_view, absl::string_view)>& visit) {
        return store.ScanPrefix(prefix, visit);
      }};
}

StateView ViewOf(const StateBatch& batch) {
  return StateView{
      [&batch](absl::string_view key) { return batch.Get(key); },
      [&batch](absl::string_view prefix,
               const std::function<bool(absl::string_view, absl::string_view)>& visit) {
        return batch.ScanPrefix(prefix, visit);
      }};
}

}  // namespace tongka::state_store
