#!/usr/bin/env bash
# Runs every Tongka test: sets up what is missing, then the Bazel test suite (unit tests beside the
# code, cross-service tests in tests/ against a real Kafka broker and a real Prometheus), the unit
# tests again under AddressSanitizer + UBSan and under ThreadSanitizer, the Kubernetes manifest
# check, and the format check. Exits non-zero if anything fails and ends with one line
# "N passed, N failed", counting each test target once per configuration it ran in.
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

tools/setup.sh

passed=0
failed=0

# Runs `bazel test "$@"` and adds one to passed or failed per test target, from the result line
# Bazel prints for each (a build that fails before any test ran counts as one failure).
bazel_test() {
  local log status=0 p f
  log=$(mktemp /tmp/tongka-test.XXXXXX)
  bazel test "$@" 2>&1 | tee "$log" || status=$?
  p=$(grep -cE '^//\S+\s+(\(cached\) )?PASSED' "$log" || true)
  f=$(grep -cE '^//\S+\s+(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FAILED TO BUILD)' "$log" || true)
  if ((status != 0 && f == 0)); then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
  rm -f "$log"
}

echo "== bazel test //..."
bazel_test //...
# The unit tests again under the sanitizers (.bazelrc, tools/sanitizers/README.md). The
# cross-service tests in tests/ (tagged e2e) are left out: under a sanitizer they would take most
# of CI's time.
for config in asan tsan; do
  echo "== bazel test --config=$config (unit tests)"
  bazel_test --config="$config" --test_tag_filters=-e2e --build_tests_only //...
done

for check in tools/k8scheck/run.sh tools/check_format.sh; do
  if [[ -x "$check" ]]; then
    echo "== $check"
    if "$check"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  fi
done

echo "$passed passed, $failed failed"
((failed == 0))
