#!/usr/bin/env bash
# Runs every Tongka test: sets up what is missing, then the Bazel test suite (unit tests beside the
# code, cross-service tests in tests/ against a real Kafka broker and a real Prometheus), the
# Kubernetes manifest check, and the format check. Exits non-zero if anything fails and ends with
# one line "N passed, N failed".
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

tools/setup.sh

passed=0
failed=0
log=$(mktemp /tmp/tongka-test.XXXXXX)
status=0
bazel test //... 2>&1 | tee "$log" || status=$?
# Bazel prints one result line per test target.
passed=$(grep -cE '^//\S+\s+(\(cached\) )?PASSED' "$log" || true)
failed=$(grep -cE '^//\S+\s+(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FAILED TO BUILD)' "$log" || true)
if ((status != 0 && failed == 0)); then failed=1; fi

for check in tools/k8scheck/run.sh tools/check_format.sh; do
  if [[ -x "$check" ]]; then
    echo "== $check"
    if "$check"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  fi
done

echo "$passed passed, $failed failed"
((failed == 0))
