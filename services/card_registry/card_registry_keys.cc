#include "services/card_registry/card_registry_keys.h"

#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tongka::card_registry {
namespace {

std::string City(uint32_t city) { return absl::StrFormat("%06u", city); }

std::string Partition4(int32_t partition) {
  return absl::StrCat(absl::Dec(partition, absl::kZeroPad4));
}

}  // namespace

std::string CardKey(absl::string_view card_id) { return absl::StrCat("c/", card_id); }
std::string UnissuedKey(absl::string_view card_id) { return absl::StrCat("u/", card_id); }
std::string HolderPrefix(uint32_t issuer, absl::string_view token) {
  return absl::StrCat("h/", City(issuer), "/", token, "/");
}
std::string HolderKey(uint32_t issuer, absl::string_view token, absl::string_view card_id) {
  return absl::StrCat(HolderPrefix(issuer, token), card_id);
}
std::string OutcomeKey(absl::string_view event_id) { return absl::StrCat("r/", event_id); }
std::string HotlistSeqKey(int32_t partition) {
  return absl::StrCat("hl/seq/", Partition4(partition));
}
std::string HotlistPrefix(int32_t partition) {
  return absl::StrCat("hl/", Partition4(partition), "/");
}
std::string HotlistKey(int32_t partition, uint64_t seq) {
  return absl::StrCat(HotlistPrefix(partition), absl::Dec(seq, absl::kZeroPad20));
}
std::string ListedPrefix(int32_t partition) {
  return absl::StrCat("hs/", Partition4(partition), "/");
}
std::string SuccessorKey(int32_t partition, uint32_t from_city) {
  return absl::StrCat(kSuccessorPrefix, Partition4(partition), "/", from_city);
}

std::string ListedKey(int32_t partition, absl::string_view card_id) {
  return absl::StrCat(ListedPrefix(partition), card_id);
}

namespace internal {

std::string AcceptedKey(absl::string_view kind) { return absl::StrCat("st/accepted/", kind); }
std::string RefusedKey(absl::string_view rule) { return absl::StrCat("st/refused/", rule); }

absl::Status AddToCounter(state_store::StateBatch& batch, absl::string_view key, int64_t delta) {
  if (delta == 0) return absl::OkStatus();
  absl::StatusOr<std::optional<std::string>> current = batch.Get(key);
  if (!current.ok()) return current.status();
  int64_t n = 0;
  if (current->has_value() && !absl::SimpleAtoi(**current, &n)) {
    return absl::InternalError(absl::StrCat("corrupt counter ", key));
  }
  batch.Put(key, absl::StrCat(n + delta));
  return absl::OkStatus();
}

}  // namespace internal
}  // namespace tongka::card_registry
