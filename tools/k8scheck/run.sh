#!/usr/bin/env bash
# Checks the Kubernetes manifests of deploy/k8s offline. CI runs:
#
#   bash tools/k8scheck/run.sh
#
# Steps (each one idempotent; the slow ones are cached outside the repo):
#   1. fetch_crds.sh: the Strimzi CRDs (Maven Central; cached in
#      ${TONGKA_CACHE:-$HOME/.cache/tongka}/strimzi-crds-VERSION).
#   2. go vet and go test of tools/k8scheck (the broken fixtures in testdata/
#      must be rejected, deploy/k8s accepted).
#   3. k8scheck on deploy/k8s: every kustomization rendered with kustomize,
#      every object decoded strictly / validated against its CRD, and the
#      Tongka conventions.
#   4. promtool check rules on the PrometheusRule specs, and promtool test
#      rules with deploy/k8s/monitoring/tests/*.test.yml.
# Exits non-zero when any step fails. Extra arguments go to k8scheck (paths
# to check instead of deploy/k8s).
set -euo pipefail

readonly HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly ROOT="$(cd "$HERE/../.." && pwd)"
readonly CACHE_ROOT="${TONGKA_CACHE:-$HOME/.cache/tongka}"
readonly BIN="$CACHE_ROOT/k8scheck/k8scheck"
# Module mode with the committed go.sum: the modules come from the Go module
# proxy (GOPROXY as configured) and are checked against go.sum.
export GOFLAGS=-mod=mod

say() { echo "run.sh: $*" >&2; }
die() {
  say "$*"
  exit 1
}

command -v go >/dev/null 2>&1 || die "Go is not installed (need Go >= $(sed -n 's/^go //p' "$HERE/go.mod"))."

# promtool comes with Debian's prometheus package.
if ! command -v promtool >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "promtool is missing; installing Debian's prometheus package..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends prometheus >/dev/null; } ||
      die "could not install the prometheus package (promtool)."
  else
    die "promtool is missing: apt-get install prometheus"
  fi
fi

start=$SECONDS
say "1/4 Strimzi CRDs"
CRDS="$("$HERE/fetch_crds.sh")"
export K8SCHECK_CRDS="$CRDS"

say "2/4 go vet, go test (tools/k8scheck)"
(cd "$HERE" && go vet ./... && go test ./...)

if (($# == 0)); then
  set -- deploy/k8s
fi
say "3/4 k8scheck $*"
mkdir -p "$(dirname "$BIN")"
(cd "$HERE" && go build -o "$BIN" .)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
(cd "$ROOT" && "$BIN" -crds "$CRDS" -rules-out "$scratch/rules" "$@")

say "4/4 promtool check rules, promtool test rules"
shopt -s nullglob
rules=("$scratch"/rules/*.rules.yml)
((${#rules[@]} > 0)) || die "no PrometheusRule found to check."
promtool check rules "${rules[@]}"
tests=("$ROOT"/deploy/k8s/monitoring/tests/*.test.yml)
if ((${#tests[@]} > 0)); then
  # The tests name their rule files relative to themselves: put them beside
  # the extracted rules.
  cp "${tests[@]}" "$scratch/rules/"
  (cd "$scratch/rules" && promtool test rules ./*.test.yml)
fi

say "all checks passed in $((SECONDS - start)) s."
