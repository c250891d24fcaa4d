// RulesTimeline: the rules that shape settlement money, window by window: the business-day zone
// and cut (business_day.h) and the interchange fee schedule (fees.h), as recorded on
// tongka.settlement by SettlementRulesRequested commands (proto/events.proto).
//
// Periods. The first period holds the genesis rules, in force from the first window on. Each
// later period is in force from its effective window W until the next period's. Every window D
// is cut by the calendar of its period, except a period's first window W, which starts where the
// window before it ended under the previous rules (old End(W - 1)) and ends at the new rules'
// End(W). So windows tile time with no gap and no overlap, and W may be longer or shorter than a
// day: a cut moved from 24:00 to 23:00 gives a 23-hour W. A change is accepted only when W lasts
// between kTransitionHoursMin and kTransitionHoursMax hours, so hours in a window are
// 0..kWindowHoursMax - 1.
//
// Scheduling (ScheduleChange, decided by the ledger): a change names W; W must start (under the
// rules already recorded) at least kRulesLeadTime after the command's recorded time, so every
// stage one holds the new rules before the first transaction of W is recorded. The change
// replaces every period from W on (a scheduled change can be moved or withdrawn while it is still
// ahead by the lead time). These checks read only the rules partition, so every replica and every
// rebuild decides alike.
//
// Thread-safety: immutable after construction; share as std::shared_ptr<const RulesTimeline>.
// Failure: MakePeriod returns INVALID_ARGUMENT naming the field (zone, cut_minutes,
// fee_schedule); ScheduleChange FAILED_PRECONDITION naming the rule it broke.
//
// Example:
//   auto genesis = RulesPeriod::Make("", rules, "cmd/platform:settlement/genesis", 0);
//   auto timeline = RulesTimeline::Create({*genesis});
//   WindowSlot slot = timeline->SlotOf(recorded_at);        // window and hour
//   const FeeSchedule& fees = timeline->For(day).fees();   // the fees of that window
#ifndef TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_RULES_H_
#define TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_RULES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "proto/events.pb.h"
#include "services/settlement/business_day.h"
#include "services/settlement/fees.h"

namespace tongka::settlement {

inline constexpr absl::Duration kRulesLeadTime = absl::Hours(24);
inline constexpr int32_t kTransitionHoursMin = 1;
inline constexpr int32_t kTransitionHoursMax = 48;
// Hours of a window are 0..kWindowHoursMax - 1 (a transition window is the longest).
inline constexpr int32_t kWindowHoursMax = kTransitionHoursMax;

// The rules of one period, parsed.
class RulesPeriod {
 public:
  // Validates and canonicalises `rules` (the fee schedule in its canonical spelling).
  // effective_window_id: "" for the genesis, else "YYYY-MM-DD".
  static absl::StatusOr<RulesPeriod> Make(absl::string_view effective_window_id,
                                          const v1::SettlementRules& rules,
                                          absl::string_view rules_id, int64_t recorded_at_us);

  bool genesis() const { return effective_window_id_.empty(); }
  const std::string& effective_window_id() const { return effective_window_id_; }
  // absl::CivilDay::min() for the genesis.
  absl::CivilDay effective_day() const { return effective_day_; }
  // Canonical: the same rules always have the same bytes.
  const v1::SettlementRules& rules() const { return rules_; }
  const std::string& rules_id() const { return rules_id_; }
  int64_t recorded_at_us() const { return recorded_at_us_; }
  const BusinessCalendar& calendar() const { return calendar_; }
  const FeeSchedule& fees() const { return fees_; }
  // "zone Asia/Shanghai, cut 24:00, fees default:50": for logs and refusals.
  std::string Describe() const;

 private:
  RulesPeriod(std::string effective_window_id, absl::CivilDay effective_day,
              v1::SettlementRules rules, std::string rules_id, int64_t recorded_at_us,
              BusinessCalendar calendar, FeeSchedule fees)
      : effective_window_id_(std::move(effective_window_id)),
        effective_day_(effective_day),
        rules_(std::move(rules)),
        rules_id_(std::move(rules_id)),
        recorded_at_us_(recorded_at_us),
        calendar_(std::move(calendar)),
        fees_(std::move(fees)) {}

  std::string effective_window_id_;
  absl::CivilDay effective_day_;
  v1::SettlementRules rules_;
  std::string rules_id_;
  int64_t recorded_at_us_ = 0;
  BusinessCalendar calendar_;
  FeeSchedule fees_;
};

// "Asia/Shanghai", cut 24:00 ... as SettlementRules (cut_minutes from a Duration).
v1::SettlementRules MakeRules(absl::string_view zone, absl::Duration cut,
                              absl::string_view fee_schedule);

class RulesTimeline {
 public:
  // periods: the genesis first, then effective windows strictly increasing, each transition
  // window within [kTransitionHoursMin, kTransitionHoursMax] hours. INVALID_ARGUMENT otherwise.
  static absl::StatusOr<RulesTimeline> Create(std::vector<RulesPeriod> periods);

  // The timeline with `change` in force from its window, replacing the periods from that window
  // on, when the change may be made at `recorded_at`; FAILED_PRECONDITION naming the rule
  // (rules_genesis_missing, effective_window_too_soon, transition_window) otherwise.
  absl::StatusOr<RulesTimeline> ScheduleChange(RulesPeriod change, absl::Time recorded_at) const;

  // The window and hour of a moment.
  WindowSlot SlotOf(absl::Time at) const;
  absl::CivilDay DayOf(absl::Time at) const;
  // [Start, End) of window `day`.
  absl::Time Start(absl::CivilDay day) const;
  absl::Time End(absl::CivilDay day) const;
  // The period in force for window `day`, and its index in periods().
  const RulesPeriod& For(absl::CivilDay day) const { return periods_[IndexFor(day)]; }
  size_t IndexFor(absl::CivilDay day) const;
  const std::vector<RulesPeriod>& periods() const { return periods_; }
  // The lowest rate any period in force for a window in [from, to] charges (acquirer, mode):
  // what a refund reverses when its tap's own window is not known, so that it never gives back
  // more fee than the tap paid whichever of those windows the tap was in.
  int32_t MinBasisPoints(absl::CivilDay from, absl::CivilDay to, uint32_t acquirer_city,
                         v1::TransportMode mode) const;

 private:
  explicit RulesTimeline(std::vector<RulesPeriod> periods) : periods_(std::move(periods)) {}
  // Where period i's first window starts (-infinity for the genesis).
  absl::Time Boundary(size_t i) const;

  std::vector<RulesPeriod> periods_;
};

// SlotOf with a one-window cache, for the apply thread: most transactions of a batch fall into
// the same window, and a zone lookup costs more than the rest of a transaction's arithmetic.
// Also hands out the window's period. Not thread-safe; Reset when the timeline changes.
class SlotCache {
 public:
  explicit SlotCache(const RulesTimeline* timeline = nullptr) : timeline_(timeline) {}
  void Reset(const RulesTimeline* timeline) {
    timeline_ = timeline;
    start_us_ = end_us_ = 0;
  }
  // The window id (valid until the next call) and the hour; *period: the window's rules.
  const std::string& Lookup(int64_t recorded_at_us, int32_t* hour, const RulesPeriod** period);

 private:
  const RulesTimeline* timeline_;
  int64_t start_us_ = 0;
  int64_t end_us_ = 0;  // empty range: nothing cached
  std::string window_id_;
  const RulesPeriod* period_ = nullptr;
};

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_SETTLEMENT_RULES_H_
