// Card ids: 19 decimal digits = the issuer's 6-digit GB/T 2260 city code, a 12-digit serial, and a
// Luhn check digit over the first 18 (proto/common.proto). The issuer can be read off any card id.
//
// Thread-safety: pure functions. Failure: ParseCardId names the rule a bad id broke.
//
// Example:
//   std::string id = MakeCardId(310000, 1234);          // "3100000000000012348"-style
//   absl::StatusOr<uint32_t> issuer = ParseCardId(id);  // 310000
#ifndef TONGKA_LIBS_TXN_CARD_ID_H_
#define TONGKA_LIBS_TXN_CARD_ID_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tongka::txn {

// `serial` must be below 10^12 (CHECK).
std::string MakeCardId(uint32_t issuer_city, uint64_t serial);

// The issuer city of a well-formed card id. INVALID_ARGUMENT with the rule otherwise:
// "card_id_format" (not 19 digits), "card_id_luhn" (check digit wrong). Whether the issuer is a
// member city is the caller's check (cities.h).
absl::StatusOr<uint32_t> ParseCardId(absl::string_view card_id);

}  // namespace tongka::txn

#endif  // TONGKA_LIBS_TXN_CARD_ID_H_
