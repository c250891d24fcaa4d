#!/usr/bin/env bash
# Runs Tongka locally and shows it doing its job: starts its own single-node Kafka broker (KRaft, on
# a free loopback port, data in a temp dir), creates the topics, and runs the ingest, settlement and
# card registry services. tapgen issues its cards in the card registry (their opening balances
# reach settlement's float), then plays a simulated day of card traffic from the 80 member cities
# (signed taps, top-ups, refunds, 20% of cards travelling) through ingest's gRPC API. While it runs, the
# script prints the services' own Prometheus figures (accepted, applied, lag); when settlement has
# applied everything, it closes today's window as the ministry and prints the settlement report
# (multilateral net positions, the largest inter-city flows, the SM3 digest), the same report as
# Shanghai's operator sees it (only its own rows), and every issuer's prepaid float. Then it stops
# everything it started.
#
#   tools/run_platform.sh            200,000 transactions at up to 40,000/s, settle, show, stop
#   tools/run_platform.sh --serve    then keep the services running until Ctrl-C
#
# Environment: TONGKA_TXNS (default 200000), TONGKA_RATE (default 40000 per second),
# TONGKA_RUN_DIR (default a new temp dir).
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
serve=false
[[ "${1:-}" == "--serve" ]] && serve=true
readonly TXNS="${TONGKA_TXNS:-200000}"
readonly RATE="${TONGKA_RATE:-40000}"
readonly RUN_DIR="${TONGKA_RUN_DIR:-$(mktemp -d /tmp/tongka-run.XXXXXX)}"
# Development only: both services run with --auth=dev (plaintext gRPC) and accept dev tokens
# signed with this secret (tapgen's default), which they read from a file, not the command line.
readonly SECRET="tongka-dev-token-secret-v1"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

tools/setup.sh
say "building (Bazel, offline, against the system libraries)"
bazel build //services/ingest:tongka_ingest //services/settlement:tongka_settlement \
  //services/card_registry:tongka_card_registry //tools/tapgen //tools/cli:tongka_ctl 2>&1 | tail -1
BIN="$(bazel info bazel-bin 2>/dev/null)"

say "starting a local Kafka broker (data in $RUN_DIR/kafka)"
tools/kafka/kafka.sh start "$RUN_DIR/kafka" >/dev/null
BOOTSTRAP="$(cat "$RUN_DIR/kafka/bootstrap")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  tools/kafka/kafka.sh stop "$RUN_DIR/kafka" >/dev/null 2>&1 || true
  echo "stopped; logs and state are in $RUN_DIR"
}
trap cleanup EXIT
echo "Kafka is at $BOOTSTRAP"
tools/kafka/kafka.sh create-topic "$RUN_DIR/kafka" tongka.txn 8 >/dev/null
tools/kafka/kafka.sh create-topic "$RUN_DIR/kafka" tongka.txn.conflicts 8 >/dev/null
tools/kafka/kafka.sh create-topic "$RUN_DIR/kafka" tongka.cards 8 >/dev/null
tools/kafka/kafka.sh create-topic "$RUN_DIR/kafka" tongka.settlement 4 >/dev/null
tools/kafka/kafka.sh create-topic "$RUN_DIR/kafka" tongka.members 1 >/dev/null
echo "topics: tongka.txn, tongka.txn.conflicts and tongka.cards (8 partitions, keyed by card), tongka.settlement (4, keyed by window), tongka.members (1, keyed by participant)"

SECRET_FILE="$RUN_DIR/dev-token-secret"
(umask 077 && printf '%s\n' "$SECRET" >"$SECRET_FILE")
# Development holder-token keys, one per member city (the registry tokenizes holder identity and
# phone device ids with the issuer's key): derived from the city code, public, never for production.
HOLDER_KEYS="$RUN_DIR/holder-keys.txt"
(umask 077 && grep -o '{[0-9]\{6\},' libs/txn/cities.cc | tr -d '{,' | sort -u |
  while read -r city; do
    printf '%s:%s\n' "$city" "$(printf 'tongka-dev-holder-key-%s' "$city" | sha256sum | cut -c1-64)"
  done >"$HOLDER_KEYS")
INGEST_GRPC=$(free_port)
INGEST_METRICS=$(free_port)
SETTLEMENT_GRPC=$(free_port)
SETTLEMENT_METRICS=$(free_port)
REGISTRY_GRPC=$(free_port)
REGISTRY_METRICS=$(free_port)
say "starting ingest (gRPC 127.0.0.1:$INGEST_GRPC, metrics :$INGEST_METRICS), settlement (gRPC 127.0.0.1:$SETTLEMENT_GRPC, metrics :$SETTLEMENT_METRICS) and the card registry (gRPC 127.0.0.1:$REGISTRY_GRPC, metrics :$REGISTRY_METRICS)"
"$BIN/services/ingest/tongka_ingest" --kafka_bootstrap="$BOOTSTRAP" --state_dir="$RUN_DIR/ingest" \
  --grpc_host=127.0.0.1 --grpc_port="$INGEST_GRPC" --metrics_port="$INGEST_METRICS" \
  --auth=dev --dev_token_secret_file="$SECRET_FILE" 2>"$RUN_DIR/ingest.log" &
pids+=($!)
# The ministry closes windows by hand here (--schedule_close=false); in production the schedule
# closes each business day at the cut (24:00 Asia/Shanghai) plus a 2 h grace.
"$BIN/services/settlement/tongka_settlement" --kafka_bootstrap="$BOOTSTRAP" \
  --state_dir="$RUN_DIR/settlement" --grpc_host=127.0.0.1 --grpc_port="$SETTLEMENT_GRPC" \
  --metrics_port="$SETTLEMENT_METRICS" --auth=dev --dev_token_secret_file="$SECRET_FILE" \
  --schedule_close=false --fee_schedule=default:50 2>"$RUN_DIR/settlement.log" &
pids+=($!)
"$BIN/services/card_registry/tongka_card_registry" --kafka_bootstrap="$BOOTSTRAP" \
  --state_dir="$RUN_DIR/card_registry" --grpc_host=127.0.0.1 --grpc_port="$REGISTRY_GRPC" \
  --metrics_port="$REGISTRY_METRICS" --auth=dev --dev_token_secret_file="$SECRET_FILE" \
  --holder_keys="$HOLDER_KEYS" 2>"$RUN_DIR/card_registry.log" &
pids+=($!)
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$INGEST_METRICS/readyz" >/dev/null &&
    curl -sf "http://127.0.0.1:$SETTLEMENT_METRICS/readyz" >/dev/null &&
    curl -sf "http://127.0.0.1:$REGISTRY_METRICS/readyz" >/dev/null && break
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "a service failed to start; see $RUN_DIR/*.log"; exit 1; }
  done
  sleep 0.2
done
echo "all three ready"

say "tapgen: issues its cards in the card registry, then plays $TXNS transactions of a simulated day in 80 cities, signed with SM4-CMAC, through ingest at up to $RATE/s"
"$BIN/tools/tapgen/tapgen" --seed=7 --transactions="$TXNS" --cross_city_share=0.2 \
  --registry="127.0.0.1:$REGISTRY_GRPC" \
  --target="127.0.0.1:$INGEST_GRPC" --rate="$RATE" --dev_token_secret="$SECRET" \
  >"$RUN_DIR/tapgen.out" 2>"$RUN_DIR/tapgen.log" &
tapgen_pid=$!
pids+=($tapgen_pid)

# One line of both services' own Prometheus figures; returns 0 once settlement has applied every
# transaction ingest accepted, through both stages, with nothing left in its outbox.
show_metrics() {
  {
    curl -sf "http://127.0.0.1:$INGEST_METRICS/metrics" | sed 's/^/ingest /'
    curl -sf "http://127.0.0.1:$SETTLEMENT_METRICS/metrics" | sed 's/^/settlement /'
  } | awk '
    $1 == "ingest" && $2 ~ /^tongka_ingest_items_total/ { split($2, a, "outcome=\""); split(a[2], o, "\""); items[o[1]] += $3 }
    $1 == "settlement" && $2 ~ /^tongka_consumer_applied_events_total/ && $2 !~ /topic="tongka.cards"/ { split($2, a, "loop=\""); split(a[2], l, "\""); applied[l[1]] += $3 }
    $1 == "settlement" && $2 ~ /^tongka_consumer_lag_events/ { split($2, a, "loop=\""); split(a[2], l, "\""); lag[l[1]] += $3 }
    $1 == "settlement" && $2 ~ /^tongka_outbox_depth_events/ { outbox = $3 }
    END { printf "  ingest: accepted %7d  duplicate %4d  rejected %4d | settlement: applied %7d  lag %6d | deltas applied %5d  lag %3d | outbox %3d\n",
            items["accepted"], items["duplicate"], items["rejected"], applied["txn"], lag["txn"], applied["ledger"], lag["ledger"], outbox
          exit !(items["accepted"] > 0 && applied["txn"] == items["accepted"] && lag["txn"] == 0 && lag["ledger"] == 0 && outbox == 0) }'
}

tapgen_done=false
while ! $tapgen_done || ! show_metrics >/dev/null; do
  for pid in "${pids[@]:0:3}"; do
    kill -0 "$pid" 2>/dev/null || { echo "a service failed; see $RUN_DIR/*.log"; exit 1; }
  done
  if ! $tapgen_done && ! kill -0 "$tapgen_pid" 2>/dev/null; then
    wait "$tapgen_pid" || { echo "tapgen failed; see $RUN_DIR/tapgen.log"; exit 1; }
    tapgen_done=true
  fi
  show_metrics || true
  sleep 1
done
show_metrics
echo "  tapgen: $(tail -1 "$RUN_DIR/tapgen.out")"

CTL=("$BIN/tools/cli/tongka_ctl" --target="127.0.0.1:$SETTLEMENT_GRPC" --dev_token_secret="$SECRET")
WINDOW="$(TZ=Asia/Shanghai date +%F)"
say "settlement windows, as the ministry sees them (tongka_ctl windows)"
"${CTL[@]}" --tenant=ministry windows
say "the ministry closes window $WINDOW (tongka_ctl close $WINDOW)"
"${CTL[@]}" --tenant=ministry close "$WINDOW"
say "the settlement report of $WINDOW, as the ministry sees it (tongka_ctl report $WINDOW)"
"${CTL[@]}" --tenant=ministry --top=6 report "$WINDOW"
say "the same report as Shanghai's operator sees it: only its own rows (--tenant=city:310000)"
"${CTL[@]}" --tenant=city:310000 --top=4 report "$WINDOW"
say "prepaid float per issuer, with the window's change (tongka_ctl float $WINDOW)"
"${CTL[@]}" --tenant=ministry float "$WINDOW" >"$RUN_DIR/float.txt"
head -12 "$RUN_DIR/float.txt"
echo "  ... $(($(wc -l <"$RUN_DIR/float.txt") - 12)) more issuers. Outstanding float is each issuer's cards'"
echo "  opening balances (the card registry's CardIssued on tongka.cards) plus the loads, less the"
echo "  spends, plus the refunds on tongka.txn: the money it holds for its cardholders. Issuers record"
echo "  escrow reserves with RecordReserve; coverage below 100% raises TongkaFloatUnderCovered."

if $serve; then
  echo
  echo "serving; Ctrl-C to stop. Try:"
  echo "  curl -s http://127.0.0.1:$SETTLEMENT_METRICS/metrics | grep ^tongka_settlement_"
  echo "  ${CTL[*]} --tenant=city:330200 report $WINDOW"
  wait "${pids[0]}" || true
fi
