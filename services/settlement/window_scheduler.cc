#include "services/settlement/window_scheduler.h"

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "libs/server/tenant.h"
#include "services/settlement/settlement_state.h"

namespace tongka::settlement {

v1::Event WindowScheduler::CloseRequest(const std::string& window_id, v1::WindowState target) {
  // The same request id from every replica: the ledger applies the first, drops the rest.
  const std::string request_id = absl::StrCat(
      "schedule-", window_id, "-", target == v1::WINDOW_STATE_CLOSED ? "closed" : "closing");
  const v1::Tenant platform = server::PlatformTenant(kServiceName);
  v1::Event event;
  event.set_event_id(absl::StrCat("cmd/", server::TenantName(platform), "/", request_id));
  *event.mutable_source() = platform;
  v1::WindowCloseRequested* body = event.mutable_window_close_requested();
  body->set_request_id(request_id);
  body->set_window_id(window_id);
  body->set_target_state(target);
  return event;
}

int WindowScheduler::Tick() {
  absl::StatusOr<Windows> windows = read_windows_();
  if (!windows.ok()) {
    LOG_EVERY_N(WARNING, 30) << "scheduler cannot read windows: " << windows.status();
    return 0;
  }
  absl::StatusOr<std::shared_ptr<const RulesTimeline>> rules = read_rules_();
  if (!rules.ok() || *rules == nullptr) {
    LOG_EVERY_N(WARNING, 30) << "scheduler has no rules to cut windows by: "
                             << (rules.ok() ? absl::Status() : rules.status());
    return 0;
  }
  const absl::Time now = clock_->Now();
  int submitted = 0;
  for (const auto& [window_id, window] : *windows) {
    absl::StatusOr<absl::CivilDay> day = ParseWindowId(window_id);
    if (!day.ok()) {
      LOG_EVERY_N(WARNING, 30) << "scheduler skips window " << window_id << ": " << day.status();
      continue;
    }
    const absl::Time end = (*rules)->End(*day);
    v1::WindowState target = v1::WINDOW_STATE_UNSPECIFIED;
    if (window.state() == v1::WINDOW_STATE_OPEN && now >= end) target = v1::WINDOW_STATE_CLOSING;
    if (window.state() == v1::WINDOW_STATE_CLOSING && now >= end + close_grace_) {
      target = v1::WINDOW_STATE_CLOSED;
    }
    if (target == v1::WINDOW_STATE_UNSPECIFIED) continue;
    ++submitted;
    absl::StatusOr<RequestOutcome> outcome = submit_(window_id, CloseRequest(window_id, target));
    if (!outcome.ok()) {
      LOG(WARNING) << "scheduled move of window " << window_id << " to "
                   << v1::WindowState_Name(target) << " not decided yet: " << outcome.status();
      continue;
    }
    LOG(INFO) << "schedule: window " << window_id << " -> " << v1::WindowState_Name(target)
              << (outcome->accepted() ? "" : absl::StrCat(" refused: ", outcome->rule()));
  }
  return submitted;
}

}  // namespace tongka::settlement
