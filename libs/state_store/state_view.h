// StateView: one read interface over a StateStore (committed state) or a StateBatch (committed
// state overlaid with the batch's own writes), so a service's readers serve its API, its tests and
// its own appliers with the same code; and the typed readers every service's readers use.
//
// Ownership: a view borrows the store or batch it was made from, which must outlive it.
// Thread-safety: a view over a StateStore is thread-safe; a view over a StateBatch is for the
// batch's own thread. Failure: a stored record that does not parse is INTERNAL (corruption),
// never silently a default; the store's own errors pass through.
//
// Example:
//   absl::StatusOr<std::optional<WindowRecord>> window =
//       state_store::ReadMessage<WindowRecord>(state_store::ViewOf(store), "wi/2026-11-24");
#ifndef TONGKA_LIBS_STATE_STORE_STATE_VIEW_H_
#define TONGKA_LIBS_STATE_STORE_STATE_VIEW_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libs/state_store/state_store.h"

namespace tongka::state_store {

struct StateView {
  std::function<absl::StatusOr<std::optional<std::string>>(absl::string_view)> get;
  std::function<absl::Status(absl::string_view,
                             const std::function<bool(absl::string_view, absl::string_view)>&)>
      scan;
};
StateView ViewOf(const StateStore& store);
StateView ViewOf(const StateBatch& batch);

// Reads a stored message; nullopt when the key is absent.
template <typename Message>
absl::StatusOr<std::optional<Message>> ReadMessage(const StateView& view, absl::string_view key) {
  absl::StatusOr<std::optional<std::string>> bytes = view.get(key);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return std::optional<Message>();
  Message message;
  if (!message.ParseFromString(**bytes)) {
    return absl::InternalError(absl::StrCat("corrupt stored record ", key));
  }
  return std::optional<Message>(std::move(message));
}

// Every message stored under `prefix`, in key order.
template <typename Message>
absl::StatusOr<std::vector<Message>> ScanMessages(const StateView& view, absl::string_view prefix) {
  std::vector<Message> out;
  bool corrupt = false;
  absl::Status status = view.scan(prefix, [&](absl::string_view, absl::string_view value) {
    out.emplace_back();
    corrupt = !out.back().ParseFromArray(value.data(), static_cast<int>(value.size()));
    return !corrupt;
  });
  if (!status.ok()) return status;
  if (corrupt) return absl::InternalError(absl::StrCat("corrupt stored record under ", prefix));
  return out;
}

}  // namespace tongka::state_store

#endif  // TONGKA_LIBS_STATE_STORE_STATE_VIEW_H_
