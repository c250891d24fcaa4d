#include "services/settlement/settlement_rules.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tongka::settlement {
namespace {

constexpr int32_t kMinutesPerDay = 24 * 60;

std::string CutText(int32_t cut_minutes) {
  return absl::StrFormat("%02d:%02d", cut_minutes / 60, cut_minutes % 60);
}

}  // namespace

v1::SettlementRules MakeRules(absl::string_view zone, absl::Duration cut,
                              absl::string_view fee_schedule) {
  v1::SettlementRules rules;
  rules.set_zone(std::string(zone));
  rules.set_cut_minutes(static_cast<int32_t>(absl::ToInt64Minutes(cut)));
  rules.set_fee_schedule(std::string(fee_schedule));
  return rules;
}

absl::StatusOr<RulesPeriod> RulesPeriod::Make(absl::string_view effective_window_id,
                                              const v1::SettlementRules& rules,
                                              absl::string_view rules_id, int64_t recorded_at_us) {
  absl::CivilDay day = absl::CivilDay::min();
  if (!effective_window_id.empty()) {
    absl::StatusOr<absl::CivilDay> parsed = ParseWindowId(effective_window_id);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("effective_window_id: ", parsed.status().message()));
    }
    day = *parsed;
  }
  if (rules.cut_minutes() < 1 || rules.cut_minutes() > kMinutesPerDay) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cut_minutes: must be in [1, 1440] (00:01..24:00), got ", rules.cut_minutes()));
  }
  absl::StatusOr<BusinessCalendar> calendar =
      BusinessCalendar::Create(rules.zone(), absl::Minutes(rules.cut_minutes()));
  if (!calendar.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("zone: unknown time zone \"", rules.zone(), "\""));
  }
  absl::StatusOr<FeeSchedule> fees = FeeSchedule::Parse(rules.fee_schedule());
  if (!fees.ok()) return fees.status();
  v1::SettlementRules canonical = rules;
  canonical.set_fee_schedule(fees->Canonical());
  return RulesPeriod(std::string(effective_window_id), day, std::move(canonical),
                     std::string(rules_id), recorded_at_us, *std::move(calendar), *std::move(fees));
}

std::string RulesPeriod::Describe() const {
  return absl::StrCat("zone ", rules_.zone(), ", cut ", CutText(rules_.cut_minutes()), ", fees ",
                      rules_.fee_schedule());
}

absl::StatusOr<RulesTimeline> RulesTimeline::Create(std::vector<RulesPeriod> periods) {
  if (periods.empty() || !periods.front().genesis()) {
    return absl::InvalidArgumentError("rules: the first period must be the genesis rules");
  }
  RulesTimeline timeline(std::move(periods));
  const std::vector<RulesPeriod>& all = timeline.periods_;
  for (size_t i = 1; i < all.size(); ++i) {
    if (all[i].genesis() || all[i].effective_day() <= all[i - 1].effective_day()) {
      return absl::InvalidArgumentError(absl::StrCat("rules: period ", i, " (",
                                                     all[i].effective_window_id(),
                                                     ") must start after the period before it"));
    }
    const absl::CivilDay first = all[i].effective_day();
    const absl::Duration length =
        all[i].calendar().End(first) - all[i - 1].calendar().End(first - 1);
    if (length < absl::Hours(kTransitionHoursMin) || length > absl::Hours(kTransitionHoursMax)) {
      return absl::InvalidArgumentError(
          absl::StrCat("transition_window: window ", all[i].effective_window_id(), " would last ",
                       absl::FormatDuration(length), " under the new rules (", all[i].Describe(),
                       "); it must last ", kTransitionHoursMin, "h..", kTransitionHoursMax, "h"));
    }
  }
  return timeline;
}

absl::StatusOr<RulesTimeline> RulesTimeline::ScheduleChange(RulesPeriod change,
                                                            absl::Time recorded_at) const {
  if (change.genesis()) {
    return absl::FailedPreconditionError(
        "rules_genesis_set: the genesis rules are recorded once; a change names its window");
  }
  const absl::Time start = Start(change.effective_day());
  if (start - recorded_at < kRulesLeadTime) {
    return absl::FailedPreconditionError(absl::StrCat(
        "effective_window_too_soon: window ", change.effective_window_id(), " starts at ",
        absl::FormatTime(start), ", less than ", absl::FormatDuration(kRulesLeadTime),
        " after the request (", absl::FormatTime(recorded_at), ")"));
  }
  std::vector<RulesPeriod> periods;
  for (const RulesPeriod& period : periods_) {
    if (period.effective_day() < change.effective_day()) periods.push_back(period);
  }
  periods.push_back(std::move(change));
  absl::StatusOr<RulesTimeline> next = Create(std::move(periods));
  if (!next.ok()) return absl::FailedPreconditionError(next.status().message());
  return next;
}

size_t RulesTimeline::IndexFor(absl::CivilDay day) const {
  size_t i = periods_.size() - 1;
  while (i > 0 && periods_[i].effective_day() > day) --i;
  return i;
}

int32_t RulesTimeline::MinBasisPoints(absl::CivilDay from, absl::CivilDay to,
                                      uint32_t acquirer_city, v1::TransportMode mode) const {
  int32_t bp = kBasisPointsMax;
  for (size_t i = IndexFor(from); i <= IndexFor(to); ++i) {
    bp = std::min(bp, periods_[i].fees().BasisPoints(acquirer_city, mode));
  }
  return bp;
}

absl::Time RulesTimeline::Boundary(size_t i) const {
  if (i == 0) return absl::InfinitePast();
  return periods_[i - 1].calendar().End(periods_[i].effective_day() - 1);
}

absl::Time RulesTimeline::Start(absl::CivilDay day) const {
  const size_t i = IndexFor(day);
  if (i > 0 && periods_[i].effective_day() == day) return Boundary(i);
  return periods_[i].calendar().Start(day);
}

absl::Time RulesTimeline::End(absl::CivilDay day) const {
  return periods_[IndexFor(day)].calendar().End(day);
}

absl::CivilDay RulesTimeline::DayOf(absl::Time at) const {
  size_t i = periods_.size() - 1;
  while (i > 0 && at < Boundary(i)) --i;
  // A transition window starts before its calendar's own start of that day: clamp to it.
  return std::max(periods_[i].calendar().DayOf(at), periods_[i].effective_day());
}

WindowSlot RulesTimeline::SlotOf(absl::Time at) const {
  const absl::CivilDay day = DayOf(at);
  const int64_t hour = (at - Start(day)) / absl::Hours(1);
  return WindowSlot{WindowIdOf(day), static_cast<int32_t>(hour)};
}

const std::string& SlotCache::Lookup(int64_t recorded_at_us, int32_t* hour,
                                     const RulesPeriod** period) {
  if (recorded_at_us < start_us_ || recorded_at_us >= end_us_) {
    const absl::CivilDay day = timeline_->DayOf(absl::FromUnixMicros(recorded_at_us));
    start_us_ = absl::ToUnixMicros(timeline_->Start(day));
    end_us_ = absl::ToUnixMicros(timeline_->End(day));
    window_id_ = WindowIdOf(day);
    period_ = &timeline_->For(day);
  }
  *hour = static_cast<int32_t>((recorded_at_us - start_us_) / 3600000000LL);
  *period = period_;
  return window_id_;
}

}  // namespace tongka::settlement
