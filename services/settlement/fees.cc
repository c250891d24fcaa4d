#include "services/settlement/fees.h"

#include <glog/logging.h>

#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/txn/terminal_id.h"

namespace tongka::settlement {
namespace {

constexpr v1::TransportMode kModes[] = {v1::TRANSPORT_MODE_BUS,     v1::TRANSPORT_MODE_METRO,
                                        v1::TRANSPORT_MODE_FERRY,   v1::TRANSPORT_MODE_BIKE,
                                        v1::TRANSPORT_MODE_PARKING, v1::TRANSPORT_MODE_RETAIL};

bool ModeFromName(absl::string_view name, v1::TransportMode* mode) {
  for (v1::TransportMode candidate : kModes) {
    if (txn::TerminalModeName(candidate) == name) {
      *mode = candidate;
      return true;
    }
  }
  return false;
}

}  // namespace

int64_t RoundedFeeFen(int64_t amount_fen, int32_t bp) {
  DCHECK_GE(amount_fen, 0);
  DCHECK(bp >= 0 && bp <= kBasisPointsMax);
  // amount_fen < 2^63 / 10^4 for any real fare; the CHECK guards the multiplication.
  CHECK_LT(amount_fen, int64_t{1} << 48) << "amount beyond any fare";
  return (amount_fen * bp + kBasisPointsMax / 2) / kBasisPointsMax;
}

RefundReversal ReverseRefund(const RefundedSoFar& so_far, int64_t amount_fen,
                             int64_t original_amount_fen, int32_t bp) {
  DCHECK_GT(amount_fen, 0);
  DCHECK_GE(so_far.refunded_fen, 0);
  RefundReversal out;
  out.refund_fen = amount_fen;
  if (original_amount_fen > 0) {
    out.refund_fen =
        std::max<int64_t>(0, std::min(amount_fen, original_amount_fen - so_far.refunded_fen));
  }
  // F is RoundedFeeFen(R, bp) for a record this rule wrote (bp is kept per tap), so the
  // difference is never negative; the floor only guards a record written otherwise.
  out.fee_fen = std::max<int64_t>(
      0, RoundedFeeFen(so_far.refunded_fen + out.refund_fen, bp) - so_far.fee_reversed_fen);
  return out;
}

absl::StatusOr<FeeSchedule> FeeSchedule::Parse(absl::string_view spec) {
  FeeSchedule schedule;
  bool has_default = false;
  for (absl::string_view entry : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    std::vector<absl::string_view> parts = absl::StrSplit(entry, ':');
    int32_t bp = -1;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &bp) || bp < 0 || bp > kBasisPointsMax) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fee_schedule: entry \"", entry, "\" is not <default|city|city/MODE>:<0..10000 bp>"));
    }
    if (parts[0] == "default") {
      schedule.default_bp_ = bp;
      has_default = true;
      continue;
    }
    std::vector<absl::string_view> where = absl::StrSplit(parts[0], '/');
    uint32_t city = 0;
    if (where.size() > 2 || where[0].size() != 6 || !absl::SimpleAtoi(where[0], &city) ||
        city < 100000) {
      return absl::InvalidArgumentError(
          absl::StrCat("fee_schedule: entry \"", entry, "\" names no six-digit city code"));
    }
    if (where.size() == 1) {
      if (!schedule.city_bp_.emplace(city, bp).second) {
        return absl::InvalidArgumentError(absl::StrCat("fee_schedule: city ", city, " twice"));
      }
      continue;
    }
    v1::TransportMode mode;
    if (!ModeFromName(where[1], &mode)) {
      return absl::InvalidArgumentError(absl::StrCat("fee_schedule: entry \"", entry,
                                                     "\": mode must be one of BUS METRO FERRY "
                                                     "BIKE PARK RETAIL"));
    }
    if (!schedule.city_mode_bp_.emplace(std::pair{city, static_cast<int>(mode)}, bp).second) {
      return absl::InvalidArgumentError(absl::StrCat("fee_schedule: ", parts[0], " twice"));
    }
  }
  if (!has_default) {
    return absl::InvalidArgumentError("fee_schedule: needs a \"default:<bp>\" entry");
  }
  return schedule;
}

int32_t FeeSchedule::BasisPoints(uint32_t acquirer_city, v1::TransportMode mode) const {
  if (!city_mode_bp_.empty()) {
    auto it = city_mode_bp_.find({acquirer_city, static_cast<int>(mode)});
    if (it != city_mode_bp_.end()) return it->second;
  }
  if (!city_bp_.empty()) {
    auto it = city_bp_.find(acquirer_city);
    if (it != city_bp_.end()) return it->second;
  }
  return default_bp_;
}

std::string FeeSchedule::Canonical() const {
  std::vector<std::string> entries = {absl::StrCat("default:", default_bp_)};
  for (const auto& [city, bp] : city_bp_) entries.push_back(absl::StrCat(city, ":", bp));
  for (const auto& [where, bp] : city_mode_bp_) {
    entries.push_back(
        absl::StrCat(where.first, "/",
                     txn::TerminalModeName(static_cast<v1::TransportMode>(where.second)), ":", bp));
  }
  return absl::StrJoin(entries, ",");
}

}  // namespace tongka::settlement
