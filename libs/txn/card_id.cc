#include "libs/txn/card_id.h"

#include <glog/logging.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace tongka::txn {
namespace {

// The Luhn check digit that completes `digits`.
char LuhnCheckDigit(absl::string_view digits) {
  int sum = 0;
  bool double_it = true;  // the rightmost payload digit is doubled
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    int d = *it - '0';
    if (double_it) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double_it = !double_it;
  }
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}

}  // namespace

std::string MakeCardId(uint32_t issuer_city, uint64_t serial) {
  CHECK_LT(serial, 1000000000000ULL) << "card serial has 12 digits";
  CHECK_LE(issuer_city, 999999u) << "city codes have 6 digits";
  std::string id = absl::StrFormat("%06d%012d", issuer_city, serial);
  id.push_back(LuhnCheckDigit(id));
  return id;
}

absl::StatusOr<uint32_t> ParseCardId(absl::string_view card_id) {
  if (card_id.size() != 19 ||
      !std::all_of(card_id.begin(), card_id.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    return absl::InvalidArgumentError("card_id_format: a card id is 19 decimal digits");
  }
  if (LuhnCheckDigit(card_id.substr(0, 18)) != card_id[18]) {
    return absl::InvalidArgumentError("card_id_luhn: the check digit does not match");
  }
  uint32_t issuer = 0;
  CHECK(absl::SimpleAtoi(card_id.substr(0, 6), &issuer));
  return issuer;
}

}  // namespace tongka::txn
