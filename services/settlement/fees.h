// FeeSchedule: the interchange fee the issuer keeps on each transaction, in basis points per
// acquirer city and mode, rounded deterministically to whole fen.
//
// Rates: a default, overridden per acquirer city, overridden per (acquirer city, mode). Written as
// a comma-separated list (the rules' fee_schedule, settlement_rules.h):
//   "default:50,310000:60,310000/METRO:40,330200/BUS:0"
// (modes spelled as in terminal ids: BUS METRO FERRY BIKE PARK RETAIL). 0..10000 bp each.
//
// Rounding: a tap's fee is amount * bp / 10000 rounded half up (amounts are positive),
// computed per transaction, so it never depends on how transactions are batched or summed.
//
// Refunds (ReverseRefund): a refund reverses its tap's fee cumulatively, never on its own. Per
// refunded tap settlement keeps what all its refunds so far reversed: money R and fee F. A refund
// of r fen reverses r' = r of money, or, when it names its tap's amount A
// (Refund.original_amount_fen), r' = min(r, A - R) (never below 0): money beyond the tap is not
// reversed. It reverses the fee RoundedFeeFen(R + r', bp) - F, bp fixed at the tap's first
// refund: the lowest rate (acquirer city, mode of the refunded terminal) in force in any window
// from kRefundHorizonWindows before that refund up to it (RulesTimeline::MinBasisPoints), since
// the tap's own window is not known and the fees may have changed since. So all refunds of a tap
// together reverse RoundedFeeFen(R_total, bp): the fee of the money refunded, rounded like a
// tap's, which is never more than the tap's own fee RoundedFeeFen(A, bp_tap) (rounding half up
// is monotone, R_total <= A and bp <= bp_tap), and exactly it when the tap is refunded in full
// and the fees did not change over the horizon. Example: a 300 fen tap at 50 bp
// pays 2 fen; three 100 fen refunds reverse 1, 0 and 1 (round(0.5), round(1.0), round(1.5)).
// A refund that does not name its tap's amount cannot be capped in money; its fee still never
// exceeds that of the money refunded.
//
// Thread-safety: immutable after Parse. Failure: Parse returns INVALID_ARGUMENT
// "fee_schedule: ..." naming the entry.
//
// Example:
//   auto fees = FeeSchedule::Parse("default:50,310000/METRO:40");
//   int64_t fee = fees->FeeFen(300, 310000, v1::TRANSPORT_MODE_METRO);  // 1 (300 * 40 / 10000)
//   RefundReversal back = ReverseRefund({.refunded_fen = 200, .fee_reversed_fen = 1}, 100, 300,
//   50);
//   // back.refund_fen == 100, back.fee_fen == 1 (round(1.5) - 1)
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

// What earlier refunds of one tap reversed.
struct RefundedSoFar {
  int64_t refunded_fen = 0;
  int64_t fee_reversed_fen = 0;
};

// What one refund reverses (both >= 0).
struct RefundReversal {
  int64_t refund_fen = 0;  // money: the refund's amount, capped at what is left of the tap
  int64_t fee_fen = 0;     // interchange fee given back to the issuer
};

// The rule above. amount_fen > 0; original_amount_fen is the tap's amount, or 0 when the refund
// does not name it (money then not capped); bp in [0, 10000].
RefundReversal ReverseRefund(const RefundedSoFar& so_far, int64_t amount_fen,
                             int64_t original_amount_fen, int32_t bp);

class FeeSchedule {
 public:
  static absl::StatusOr<FeeSchedule> Parse(absl::string_view spec);

  int32_t BasisPoints(uint32_t acquirer_city, v1::TransportMode mode) const;
  int64_t FeeFen(int64_t amount_fen, uint32_t acquirer_city, v1::TransportMode mode) const {
    return RoundedFeeFen(amount_fen, BasisPoints(acquirer_city, mode));
  }
  // The schedule in one canonical spelling (sorted): the same schedule always has the same
  // bytes in the rules recorded on the log.
  std::string Canonical() const;

 private:
  int32_t default_bp_ = 0;
  std::map<uint32_t, int32_t> city_bp_;
  std::map<std::pair<uint32_t, int>, int32_t> city_mode_bp_;
};

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_FEES_H_
