#include "libs/failpoint/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>

#include "absl/strings/str_split.h"

namespace tongka::failpoint {
namespace {

const std::set<std::string, std::less<>>& ArmedSet() {
  static const auto* const kArmed = [] {
    auto* armed = new std::set<std::string, std::less<>>();
    if (const char* env = std::getenv("TONGKA_FAILPOINTS"); env != nullptr) {
      for (absl::string_view name : absl::StrSplit(env, ',', absl::SkipEmpty())) {
        armed->emplace(name);
      }
    }
    return armed;
  }();
  return *kArmed;
}

}  // namespace

bool Armed(absl::string_view name) {
  const auto& armed = ArmedSet();
  return !armed.empty() && armed.find(name) != armed.end();
}

void Hit(absl::string_view name) {
  if (!Armed(name)) return;
  // No logging or flushing on purpose: the point is to die with whatever is in flight.
  kill(getpid(), SIGKILL);
  _exit(137);
}

}  // namespace tongka::failpoint
