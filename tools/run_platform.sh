#!/usr/bin/env bash
# Runs Tongka locally and shows it working: starts its own single-node Kafka broker (KRaft, on a
# free loopback port, data in a temp dir), creates the topics, feeds synthetic card taps from eight
# member cities, and runs the runtime's sample service, which applies them exactly once through the
# two-stage pipeline (per-card totals -> outbox -> per-city tallies). While it runs, the script
# prints the service's own Prometheus metrics (applied events, consumer lag, outbox depth); at the
# end it prints the per-city totals and the state digest, and stops everything it started.
#
#   tools/run_platform.sh            feed 300,000 taps, catch up, show, stop
#   tools/run_platform.sh --serve    keep the service (and /metrics) running until Ctrl-C
#
# Environment: TONGKA_TAPS (default 300000), TONGKA_RUN_DIR (default a new temp dir).
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
serve=false
[[ "${1:-}" == "--serve" ]] && serve=true
readonly TAPS="${TONGKA_TAPS:-300000}"
readonly RUN_DIR="${TONGKA_RUN_DIR:-$(mktemp -d /tmp/tongka-run.XXXXXX)}"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

tools/setup.sh
say "building (Bazel, offline, against the system libraries)"
bazel build //tools/sample:tongka_sample //tools/sample:tongka_sample_feed 2>&1 | tail -1
BIN="$(bazel info bazel-bin 2>/dev/null)/tools/sample"

say "starting a local Kafka broker (data in $RUN_DIR/kafka)"
tools/kafka/kafka.sh start "$RUN_DIR/kafka" >/dev/null
BOOTSTRAP="$(cat "$RUN_DIR/kafka/bootstrap")"
sample_pid=""
cleanup() {
  [[ -n "$sample_pid" ]] && kill "$sample_pid" 2>/dev/null && wait "$sample_pid" 2>/dev/null
  tools/kafka/kafka.sh stop "$RUN_DIR/kafka" >/dev/null 2>&1 || true
  echo "stopped; logs and state are in $RUN_DIR"
}
trap cleanup EXIT
echo "Kafka is at $BOOTSTRAP"

say "feeding $TAPS taps to tongka.txn (8 partitions, keyed by card id, idempotent producer)"
"$BIN/tongka_sample_feed" --kafka_bootstrap="$BOOTSTRAP" --count="$TAPS" \
  --create_topics_with_partitions=8 2>"$RUN_DIR/feed.log"

METRICS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
say "running the sample service (state in $RUN_DIR/state, metrics on http://127.0.0.1:$METRICS_PORT/metrics)"
flags=(--kafka_bootstrap="$BOOTSTRAP" --state_dir="$RUN_DIR/state" --metrics_port="$METRICS_PORT")
$serve || flags+=(--exit_when_caught_up)
"$BIN/tongka_sample" "${flags[@]}" 2>"$RUN_DIR/sample.log" &
sample_pid=$!

show_metrics() {
  curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null | awk '
    /^tongka_consumer_applied_events_total/ { split($1, a, "loop=\""); split(a[2], l, "\""); applied[l[1]] += $2 }
    /^tongka_consumer_lag_events/ { split($1, a, "loop=\""); split(a[2], l, "\""); lag[l[1]] += $2 }
    /^tongka_outbox_depth_events/ { outbox = $2 }
    END { printf "  applied: taps %d, tallies %d   lag: taps %d, tallies %d   outbox: %d\n",
          applied["taps"], applied["tallies"], lag["taps"], lag["tallies"], outbox }'
}

while kill -0 "$sample_pid" 2>/dev/null; do
  sleep 1
  show_metrics || true
  if $serve && [[ -z "${shown_hint:-}" ]]; then
    echo "  (serving; Ctrl-C to stop. Try: curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep ^tongka_)"
    shown_hint=1
  fi
done
wait "$sample_pid" || { echo "the sample service failed; see $RUN_DIR/sample.log"; exit 1; }
sample_pid=""

say "result: every tap applied exactly once"
"$BIN/tongka_sample" --summary --state_dir="$RUN_DIR/state" 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(f"  taps applied per card: {s[\"card_taps\"]:>10,}   fen: {s[\"card_spent_fen\"]:>14,}")
print(f"  taps tallied per city: {s[\"city_taps\"]:>10,}   fen: {s[\"city_amount_fen\"]:>14,}")
for city, (taps, fen) in sorted(s["cities"].items()):
    print(f"    city {city}: {taps:>8,} taps  {fen/100:>14,.2f} yuan")
print(f"  state digest (SM3): {s[\"digest\"]}")
'
