// FeeSchedule: the interchange fee the issuer keeps on each transaction, in basis points per
// acquirer city and mode, rounded deterministically to whole fen.
//
// Rates: a default, overridden per acquirer city, overridden per (acquirer city, mode). Written as
// a comma-separated list, the --fee_schedule flag:
//   "default:50,310000:60,310000/METRO:40,330200/BUS:0"
// (modes spelled as in terminal ids: BUS METRO FERRY BIKE PARK RETAIL). 0..10000 bp each.
//
// Rounding: a transaction's fee is amount * bp / 10000 rounded half up (amounts are positive),
// computed per transaction, so it never depends on how transactions are batched or summed. A
// refund reverses the fee of what it refunds at the same rate: a full refund reverses exactly
// the tap's fee, a partial one its own rounded share.
//
// Thread-safety: immutable after Parse. Failure: Parse returns INVALID_ARGUMENT
// "fee_schedule: ..." naming the entry.
//
// Example:
//   auto fees = FeeSchedule::Parse("default:50,310000/METRO:40");
//   int64_t fee = fees->FeeFen(300, 310000, v1::TRANSPORT_MODE_METRO);  // 1 (300 * 40 / 10000)
#ifndef TONGKA_SERVICES_SETTLEMENT_FEES_H_
#define TONGKA_SERVICES_SETTLEMENT_FEES_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/common.pb.h"

namespace tongka::settlement {

inline constexpr int32_t kBasisPointsMax = 10000;

// round_half_up(amount_fen * bp / 10000); amount_fen >= 0 and bp in [0, 10000].
int64_t RoundedFeeFen(int64_t amount_fen, int32_t bp);

class FeeSchedule {
 public:
  static absl::StatusOr<FeeSchedule> Parse(absl::string_view spec);

  int32_t BasisPoints(uint32_t acquirer_city, v1::TransportMode mode) const;
  int64_t FeeFen(int64_t amount_fen, uint32_t acquirer_city, v1::TransportMode mode) const {
    return RoundedFeeFen(amount_fen, BasisPoints(acquirer_city, mode));
  }
  // The schedule in one canonical spelling (sorted), stored beside the state: a store built
  // under one schedule must not silently continue under another.
  std::string Canonical() const;

 private:
  int32_t default_bp_ = 0;
  std::map<uint32_t, int32_t> city_bp_;
  std::map<std::pair<uint32_t, int>, int32_t> city_mode_bp_;
};

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_FEES_H_
