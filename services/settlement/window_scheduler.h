// WindowScheduler: closes windows on time. At a window's end (its cut under the rules recorded for
// it, RulesTimeline::End) an
// OPEN window is asked to go CLOSING, and close_grace later a CLOSING one to go CLOSED, by a
// WindowCloseRequested command from platform:settlement. The ledger decides each request like any
// other; every replica sends the same request ids, so the ledger applies the first and drops the
// rest.
//
// The time is the injected clock's (service::Clock): a test moves a ManualClock past a cut and
// calls Tick(). Reading the windows and submitting a command are injected too, so the scheduler
// holds no store and no producer (SettlementApp passes ReadWindows and SettlementApi).
//
// Ownership: keeps a pointer to the clock, which must outlive it; reads the rules through
// read_rules at each Tick (they may change while it runs). Thread-safety:
// Tick() from one thread (the app's background thread). Failure behaviour: a window list that
// cannot be read, or a command not yet decided, is logged and retried at the next Tick.
//
// Example:
//   WindowScheduler scheduler(read_rules, &clock, absl::Hours(2), read_windows, submit);
//   scheduler.Tick();  // every few seconds
#ifndef TONGKA_SERVICES_SETTLEMENT_WINDOW_SCHEDULER_H_
#define TONGKA_SERVICES_SETTLEMENT_WINDOW_SCHEDULER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/service/clock.h"
#include "proto/events.pb.h"
#include "services/settlement/business_day.h"
#include "services/settlement/settlement_rules.h"
#include "services/settlement/settlement_storage.pb.h"

namespace tongka::settlement {

class WindowScheduler {
 public:
  using Windows = std::vector<std::pair<std::string, WindowRecord>>;
  using ReadWindowsFn = std::function<absl::StatusOr<Windows>()>;
  using ReadRulesFn = std::function<absl::StatusOr<std::shared_ptr<const RulesTimeline>>()>;
  // Submits a command keyed by its window; returns the ledger's decision.
  using SubmitFn =
      std::function<absl::StatusOr<RequestOutcome>(const std::string& window_id, v1::Event event)>;

  WindowScheduler(ReadRulesFn read_rules, const service::Clock* clock, absl::Duration close_grace,
                  ReadWindowsFn read_windows, SubmitFn submit)
      : read_rules_(std::move(read_rules)),
        clock_(clock),
        close_grace_(close_grace),
        read_windows_(std::move(read_windows)),
        submit_(std::move(submit)) {}

  // Requests every move that is due now; returns how many requests it submitted.
  int Tick();

  // The command that asks `window_id` to go to `target` (CLOSING or CLOSED), with the request id
  // every replica uses.
  static v1::Event CloseRequest(const std::string& window_id, v1::WindowState target);

 private:
  const ReadRulesFn read_rules_;
  const service::Clock* const clock_;
  const absl::Duration close_grace_;
  const ReadWindowsFn read_windows_;
  const SubmitFn submit_;
};

}  // namespace tongka::settlement

#endif  // TONGKA_SERVICES_SETTLEMENT_WINDOW_SCHEDULER_H_
