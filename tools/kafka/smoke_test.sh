#!/usr/bin/env bash
# Checks end to end that kafka.sh gives a working broker for librdkafka:
# start, create a topic, produce with an idempotent producer (acks=all) and
# consume it back, kill the broker with SIGKILL, start it again on the same
# address with the data intact, and stop it. Prints how long each step took.
#
# Usage: tools/kafka/smoke_test.sh [VERSION]
#
# VERSION defaults to kafka.sh's default. The librdkafka checks use kcat when
# it is installed and the C program rdkafka_smoke.c when librdkafka's headers
# are (pkg-config rdkafka); at least one of the two must be there.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
readonly KAFKA="$HERE/kafka.sh"
if [[ $# -gt 0 ]]; then
  export TONGKA_KAFKA_VERSION="$1"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/kafka-smoke.XXXXXX")"
data="$work/data"
# Whatever happens, the broker is stopped and the scratch folder removed.
cleanup() {
  "$KAFKA" stop "$data" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "smoke_test.sh: FAILED: $*" >&2
  for f in "$data/kafka.out" "$data/logs/server.log"; do
    [[ -s "$f" ]] && { echo "----- $f -----" >&2; tail -n 30 "$f" >&2; }
  done
  exit 1
}

# Runs a command and prints how long it took, in milliseconds.
timed() {
  local label="$1" t0 t1
  shift
  t0=$(date +%s%N)
  "$@"
  t1=$(date +%s%N)
  printf '%-44s %6d ms\n' "$label" $(((t1 - t0) / 1000000)) >&2
}

have_kcat=0
have_c=0
command -v kcat >/dev/null 2>&1 && have_kcat=1
if command -v cc >/dev/null 2>&1 && pkg-config --exists rdkafka 2>/dev/null; then
  have_c=1
fi
((have_kcat || have_c)) || fail "neither kcat nor librdkafka's headers (librdkafka-dev) are installed."

# The jars are fetched first, so that the start-up time below is the broker's own.
timed "fetch (no-op when cached)" "$HERE/fetch.sh" "${TONGKA_KAFKA_VERSION:-}" >/dev/null
timed "start (format + start + ready)" "$KAFKA" start "$data" >/dev/null
bootstrap="$("$KAFKA" bootstrap "$data")"
echo "broker at $bootstrap, Kafka $(cat "$data/version")" >&2

timed "create-topic kcat-topic (3 partitions)" "$KAFKA" create-topic "$data" kcat-topic 3
timed "create-topic c-topic (3 partitions)" "$KAFKA" create-topic "$data" c-topic 3

if ((have_kcat)); then
  echo "kcat: $(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*')" >&2
  seq 1 1000 | awk '{ print "key-" $1 ":value-" $1 }' >"$work/messages"
  # kcat -P reads one message per line from standard input (given a file
  # name instead, it would send the whole file as one message).
  timed "kcat produce 1000 (idempotent, acks=all)" \
    sh -c "kcat -b '$bootstrap' -P -t kcat-topic -K: -X enable.idempotence=true -X acks=all <'$work/messages'"
  timed "kcat consume to the end" \
    sh -c "kcat -b '$bootstrap' -C -t kcat-topic -e -q -f '%k:%s\n' >'$work/consumed'"
  [[ "$(sort "$work/consumed")" == "$(sort "$work/messages")" ]] || fail "kcat read back different messages."
  timed "kcat consume in a group, commit" \
    sh -c "kcat -b '$bootstrap' -G smoke-group -o beginning -e -q kcat-topic >'$work/group'"
  [[ "$(wc -l <"$work/group")" -eq 1000 ]] || fail "the kcat group consumer read $(wc -l <"$work/group") messages, not 1000."
fi

if ((have_c)); then
  # shellcheck disable=SC2046  # pkg-config's flags are meant to split into words.
  cc -O1 -o "$work/rdkafka_smoke" "$HERE/rdkafka_smoke.c" $(pkg-config --cflags --libs rdkafka)
  timed "rdkafka_smoke (produce, group consume, commit)" "$work/rdkafka_smoke" "$bootstrap" c-topic 1000 >&2 ||
    fail "rdkafka_smoke failed."
fi

# Kill the broker hard, as a crash test would, and start it again: the
# address must be the same and the messages still there.
kill -KILL "$(cat "$data/kafka.pid")"
timed "start again after SIGKILL" "$KAFKA" start "$data" >/dev/null
[[ "$("$KAFKA" bootstrap "$data")" == "$bootstrap" ]] || fail "the address changed after a restart."
if ((have_kcat)); then
  n="$(kcat -b "$bootstrap" -C -t kcat-topic -e -q | wc -l)"
  [[ "$n" -eq 1000 ]] || fail "after the restart kcat-topic has $n messages, not 1000."
fi

timed "restart (clean stop + start)" "$KAFKA" restart "$data" >/dev/null
timed "stop" "$KAFKA" stop "$data"
"$KAFKA" status "$data" 2>/dev/null && fail "the broker is still running after stop."

echo "smoke_test.sh: all checks passed." >&2
