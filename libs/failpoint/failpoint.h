// Failpoints: named places where a fault-injection test can make the process die on purpose.
//
// A crash test sets TONGKA_FAILPOINTS to a comma-separated list of names before starting a
// service (e.g. "outbox.after_produce"); when execution reaches
// TONGKA_FAILPOINT("outbox.after_produce") the process kills itself with SIGKILL, exactly as an OOM
// kill or a power cut would stop it. With the variable unset (production), a failpoint costs one
// branch on a cached bool.
//
// Thread-safety: safe from any thread; the environment is read once, on first use.
//
// Example:
//   Produce(...); Flush(...);
//   TONGKA_FAILPOINT("outbox.after_produce");  // a crash here must lead to a resend, not a loss
//   AdvanceCursor(...);
#ifndef TONGKA_LIBS_FAILPOINT_FAILPOINT_H_
#define TONGKA_LIBS_FAILPOINT_FAILPOINT_H_

#include "absl/strings/string_view.h"

namespace tongka::failpoint {

// True when `name` is armed in TONGKA_FAILPOINTS.
bool Armed(absl::string_view name);

// Kills the process with SIGKILL when `name` is armed. Never returns in that case.
void Hit(absl::string_view name);

}  // namespace tongka::failpoint

#define TONGKA_FAILPOINT(name) ::tongka::failpoint::Hit(name)

#endif  // TONGKA_LIBS_FAILPOINT_FAILPOINT_H_
