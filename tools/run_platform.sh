#!/usr/bin/env bash
# Runs Tongka locally and shows it working: starts its own single-node Kafka broker (KRaft, on a
# free loopback port, data in a temp dir), creates the topics, feeds synthetic card taps from eight
# member cities, and runs the runtime's sample service, which applies them exactly once through the
# two-stage pipeline (per-card totals -> outbox -> per-city tallies). While it runs, the script
# prints the service's own Prometheus metrics (applied events, consumer lag, outbox depth); at the
# end it prints the per-city totals and the state digest, and stops everything it started.
#
#   tools/run_platform.sh            feed 300,000 taps (100k/s), catch up, show, stop
#   tools/run_platform.sh --serve    then keep the service (and /metrics) running until Ctrl-C
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
feed_pid=""
cleanup() {
  [[ -n "$feed_pid" ]] && kill "$feed_pid" 2>/dev/null
  [[ -n "$sample_pid" ]] && kill "$sample_pid" 2>/dev/null && wait "$sample_pid" 2>/dev/null
  tools/kafka/kafka.sh stop "$RUN_DIR/kafka" >/dev/null 2>&1 || true
  echo "stopped; logs and state are in $RUN_DIR"
}
trap cleanup EXIT
echo "Kafka is at $BOOTSTRAP"

METRICS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/tongka_sample_feed" --kafka_bootstrap="$BOOTSTRAP" --count=0 \
  --create_topics_with_partitions=8 2>"$RUN_DIR/feed.log" >/dev/null

say "running the sample service (state in $RUN_DIR/state, metrics on http://127.0.0.1:$METRICS_PORT/metrics)"
"$BIN/tongka_sample" --kafka_bootstrap="$BOOTSTRAP" --state_dir="$RUN_DIR/state" \
  --metrics_port="$METRICS_PORT" 2>"$RUN_DIR/sample.log" &
sample_pid=$!

say "feeding $TAPS taps to tongka.txn (8 partitions, keyed by card id, idempotent producer) while it runs"
"$BIN/tongka_sample_feed" --kafka_bootstrap="$BOOTSTRAP" --count="$TAPS" \
  --pace_per_second=100000 2>>"$RUN_DIR/feed.log" &
feed_pid=$!

# Prints one line of the service's own Prometheus figures; returns 0 once everything fed is applied
# through both stages and the outbox is empty.
show_metrics() {
  curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" | awk -v taps="$TAPS" '
    /^tongka_consumer_applied_events_total/ { split($1, a, "loop=\""); split(a[2], l, "\""); applied[l[1]] += $2 }
    /^tongka_consumer_lag_events/ { split($1, a, "loop=\""); split(a[2], l, "\""); lag[l[1]] += $2 }
    /^tongka_outbox_depth_events/ { outbox = $2 }
    /^tongka_outbox_published_events_total/ { published = $2 }
    END { printf "  applied taps %7d  lag %6d | tallies published %4d, applied %4d, lag %3d | outbox %3d\n",
            applied["taps"], lag["taps"], published, applied["tallies"], lag["tallies"], outbox
          exit !(applied["taps"] == taps && lag["taps"] == 0 && lag["tallies"] == 0 &&
                 outbox == 0 && applied["tallies"] == published) }'
}

until ! kill -0 "$feed_pid" 2>/dev/null && show_metrics; do
  kill -0 "$sample_pid" 2>/dev/null || { echo "the sample service failed; see $RUN_DIR/sample.log"; exit 1; }
  sleep 1
  kill -0 "$feed_pid" 2>/dev/null && show_metrics || true
done
wait "$feed_pid" || { echo "the feed failed; see $RUN_DIR/feed.log"; exit 1; }

if $serve; then
  echo "  serving; Ctrl-C to stop. Try: curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep ^tongka_"
  wait "$sample_pid" || true
fi
kill -TERM "$sample_pid"
wait "$sample_pid" || { echo "the sample service failed; see $RUN_DIR/sample.log"; exit 1; }
sample_pid=""

say "result: every tap applied exactly once"
"$BIN/tongka_sample" --summary --state_dir="$RUN_DIR/state" 2>/dev/null | python3 -c "$(cat <<'PY'
import json, sys
s = json.load(sys.stdin)
print(f"  taps applied per card: {s['card_taps']:>10,}   fen: {s['card_spent_fen']:>14,}")
print(f"  taps tallied per city: {s['city_taps']:>10,}   fen: {s['city_amount_fen']:>14,}")
for city, (taps, fen) in sorted(s["cities"].items()):
    print(f"    city {city}: {taps:>8,} taps  {fen / 100:>14,.2f} yuan")
print(f"  state digest (SM3): {s['digest']}")
PY
)"
