#!/usr/bin/env bash
# Runs a real, single-node Apache Kafka broker (KRaft mode: one process that
# is both broker and controller, no ZooKeeper) on the loopback interface, for
# tests and local development.
#
# Usage:
#   tools/kafka/kafka.sh start        DATA_DIR   Start the broker; print its bootstrap address.
#   tools/kafka/kafka.sh stop         DATA_DIR   Stop it (SIGTERM, then SIGKILL after a timeout).
#   tools/kafka/kafka.sh restart      DATA_DIR   Stop, then start on the same ports and data.
#   tools/kafka/kafka.sh kill         DATA_DIR   SIGKILL it (a crash) and wait until it is gone.
#   tools/kafka/kafka.sh status       DATA_DIR   Exit 0 and print the address if it is running.
#   tools/kafka/kafka.sh bootstrap    DATA_DIR   Print the bootstrap address (127.0.0.1:PORT).
#   tools/kafka/kafka.sh create-topic DATA_DIR NAME PARTITIONS [TopicCommand options...]
#
# Everything belonging to one broker lives in DATA_DIR:
#   server.properties      the generated broker configuration
#   store/                 Kafka's log directory (the KRaft metadata log and all topics)
#   port, controller_port  the two loopback ports, chosen once and then reused
#   cluster_id, version    the cluster id the store was formatted with, and the Kafka version
#   bootstrap              "127.0.0.1:PORT", for clients
#   kafka.pid              the broker's process id while it runs
#   kafka.out              the JVM's standard output and error
#   format.out             the output of the one-time storage format
#   logs/server.log        the broker's log (warnings and errors only)
#
# Starting again on a DATA_DIR that has already been used reuses its ports,
# cluster id and store, so a test can kill the broker (even with SIGKILL),
# start it again, and find it at the same address with its data intact.
#
# Environment:
#   TONGKA_KAFKA_VERSION        Kafka version for a new DATA_DIR (default 3.9.2; an
#                               existing DATA_DIR keeps the version it was made with).
#   TONGKA_CACHE                Where fetch.sh keeps the jars (default ~/.cache/tongka).
#   TONGKA_KAFKA_NUM_PARTITIONS Default partition count for new topics (default 1).
#   TONGKA_KAFKA_HEAP_OPTS      JVM heap options for the broker (default -Xms128m -Xmx512m).
#   TONGKA_KAFKA_JVM_OPTS       Other JVM options for the broker (default: G1 and a
#                               C1-only JIT, see DEFAULT_JVM_OPTS below).
#   TONGKA_KAFKA_START_TIMEOUT  Seconds to wait for the broker to be ready (default 90).
#   TONGKA_KAFKA_STOP_TIMEOUT   Seconds to wait after SIGTERM before SIGKILL (default 30).
#   TONGKA_KAFKA_EXTRA_CONFIG   Extra lines appended to server.properties.
#   JAVA_HOME / JAVA            The Java to use (Java 17 or newer); default: java on PATH.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
readonly DEFAULT_VERSION="3.9.2"
# The garbage collector settings are those of Kafka's own start script.
# TieredStopAtLevel=1 keeps the JIT to its quick first tier: the broker then
# uses about a third less CPU to start (about 3 s instead of 4.5 s), which
# matters on a small shared machine, at some cost in peak throughput.
readonly DEFAULT_JVM_OPTS="-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent -XX:TieredStopAtLevel=1"

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

note() {
  echo "kafka.sh: $*" >&2
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------------------
# Helpers.

# The java binary: $JAVA if set, else $JAVA_HOME/bin/java, else java on PATH.
java_bin() {
  if [[ -n "${JAVA:-}" ]]; then
    echo "$JAVA"
  elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    echo "$JAVA_HOME/bin/java"
  else
    command -v java >/dev/null 2>&1 || die "java is not installed; Kafka needs Java 17 or newer."
    echo java
  fi
}

# The Kafka version of this data dir: the one it was first started with, or
# else $TONGKA_KAFKA_VERSION, or else the default.
kafka_version() {
  if [[ -s "$DATA_DIR/version" ]]; then
    cat "$DATA_DIR/version"
  else
    echo "${TONGKA_KAFKA_VERSION:-$DEFAULT_VERSION}"
  fi
}

# Prints the broker classpath, fetching the jars first if they are not cached.
classpath() {
  local cp_file
  cp_file="$("$HERE/fetch.sh" "$(kafka_version)")"
  cat "$cp_file"
}

# Logging options for a JVM. Kafka 3.x reads the log4j 1 property and Kafka
# 4.x the log4j 2 one; each ignores the other, so both are always passed.
# $1 is "broker" or "tools".
log_opts() {
  local prefix=""
  [[ "$1" == tools ]] && prefix="tools-"
  echo "-Dkafka.logs.dir=$DATA_DIR/logs" \
    "-Dlog4j.configuration=file:$HERE/${prefix}log4j.properties" \
    "-Dlog4j2.configurationFile=$HERE/${prefix}log4j2.properties"
}

# Runs a short-lived Kafka command-line tool from the broker's classpath with
# a small heap and fast JVM start-up flags.
run_tool() {
  local cp
  cp="$(classpath)"
  # shellcheck disable=SC2046  # log_opts is meant to split into words.
  "$(java_bin)" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    $(log_opts tools) -cp "$cp" "$@"
}

# Prints two distinct free TCP ports on 127.0.0.1, one per line. Both sockets
# are bound at the same time so the kernel cannot hand out the same port twice.
free_ports() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
  else
    # Without Python, try random high ports until two are found that nothing
    # listens on.
    local found=0 port
    while ((found < 2)); do
      port=$((20000 + RANDOM % 40000))
      if ! port_open "$port"; then
        echo "$port"
        found=$((found + 1))
      fi
    done
  fi
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A fresh Kafka cluster id: 16 random bytes in URL-safe base64 without
# padding, the format of org.apache.kafka.common.Uuid. Ids starting with "-"
# are avoided, as Kafka's own generator does, since they look like options.
new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && break
  done
  echo "$id"
}

# True if process $1 exists and is not a zombie (a process that has exited
# but whose parent has not reaped it yet).
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != Z ]]
}

# The pid from kafka.pid if that process is alive and is a Kafka broker,
# else nothing. Checking the command line guards against a reused pid.
running_pid() {
  local pid
  [[ -s "$DATA_DIR/kafka.pid" ]] || return 0
  pid="$(cat "$DATA_DIR/kafka.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  alive "$pid" || return 0
  grep -q 'kafka\.Kafka' < <(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
  echo "$pid"
}

# Writes server.properties for a combined broker and controller.
write_config() {
  local port="$1" controller_port="$2"
  cat >"$DATA_DIR/server.properties" <<EOF
# Generated by tools/kafka/kafka.sh; rewritten on every start.

# One process is both the broker and the only KRaft controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port

# Clients use PLAINTEXT; the controller quorum talks on CONTROLLER.
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT

log.dirs=$DATA_DIR/store

# Topics are created explicitly (kafka.sh create-topic), never by accident.
auto.create.topics.enable=false
num.partitions=${TONGKA_KAFKA_NUM_PARTITIONS:-1}
default.replication.factor=1

# A single node cannot replicate, so the internal topics use one replica.
# They also get few partitions, which makes the first consumer group and the
# first transactional or idempotent producer start faster.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1

# Consumers join groups without the usual three-second delay.
group.initial.rebalance.delay.ms=0

# After the broker is killed (SIGKILL), the restarted broker can only
# register once the controller has expired the old registration, which takes
# broker.session.timeout.ms (9 s by default). A shorter session brings a
# restart after SIGKILL from about 13 s down to about 5 s.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500

# The machine is small and shared, so the broker uses few threads.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
EOF
  if [[ -n "${TONGKA_KAFKA_EXTRA_CONFIG:-}" ]]; then
    printf '\n# From TONGKA_KAFKA_EXTRA_CONFIG.\n%s\n' "$TONGKA_KAFKA_EXTRA_CONFIG" >>"$DATA_DIR/server.properties"
  fi
}

# Prints the end of the broker's output and log, to explain a failed start.
show_logs() {
  local f
  for f in "$DATA_DIR/kafka.out" "$DATA_DIR/logs/server.log"; do
    if [[ -s "$f" ]]; then
      echo "----- last lines of $f -----" >&2
      tail -n 30 "$f" >&2
    fi
  done
}

# ---------------------------------------------------------------------------
# Commands.

cmd_start() {
  local pid port controller_port cluster_id cp log start_offset ready
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    # A broker that was killed a moment ago (kill -9 just before this start)
    # can still look alive while the kernel tears it down. So a running
    # broker only counts if it keeps running and accepts connections for a
    # short while; if it dies meanwhile, it is started afresh below.
    local i
    for i in 1 2 3 4 5; do
      sleep 0.2
      alive "$pid" || break
      if ((i == 5)) && port_open "$(cat "$DATA_DIR/port")"; then
        note "already running (pid $pid)."
        cat "$DATA_DIR/bootstrap"
        return 0
      fi
    done
    if alive "$pid"; then
      die "a broker (pid $pid) is running in $DATA_DIR but does not accept connections; it may still be starting. Stop it with 'kafka.sh stop $DATA_DIR'."
    fi
  fi
  rm -f "$DATA_DIR/kafka.pid"
  mkdir -p "$DATA_DIR/logs"

  # Remember the version, so that a later start uses the same jars as the
  # ones that formatted the store.
  if [[ -n "${TONGKA_KAFKA_VERSION:-}" && "$(kafka_version)" != "$TONGKA_KAFKA_VERSION" ]]; then
    note "$DATA_DIR was made with Kafka $(kafka_version), which it keeps using (TONGKA_KAFKA_VERSION=$TONGKA_KAFKA_VERSION is ignored)."
  fi
  kafka_version >"$DATA_DIR/version.tmp"
  mv "$DATA_DIR/version.tmp" "$DATA_DIR/version"

  # Reuse the ports of an earlier start, so that clients (and tests that
  # restart the broker) keep the same address; otherwise choose free ones.
  if [[ -s "$DATA_DIR/port" && -s "$DATA_DIR/controller_port" ]]; then
    port="$(cat "$DATA_DIR/port")"
    controller_port="$(cat "$DATA_DIR/controller_port")"
    # A broker that was just killed may hold its ports for a moment while
    # the kernel tears the process down, so a busy port gets a few seconds
    # to become free before this counts as a conflict.
    local p waited
    for p in "$port" "$controller_port"; do
      waited=0
      while port_open "$p"; do
        if ((waited >= 50)); then
          die "port $p (recorded in $DATA_DIR) is in use by another process; stop it, or remove $DATA_DIR to start afresh."
        fi
        sleep 0.2
        waited=$((waited + 1))
      done
    done
  else
    { read -r port; read -r controller_port; } < <(free_ports)
    echo "$port" >"$DATA_DIR/port"
    echo "$controller_port" >"$DATA_DIR/controller_port"
  fi
  echo "127.0.0.1:$port" >"$DATA_DIR/bootstrap"

  write_config "$port" "$controller_port"

  # Resolve the jars now, so that a slow first download is not counted
  # against the start-up timeout below.
  cp="$(classpath)"

  # Format the store once. meta.properties is what the format step writes.
  if [[ ! -s "$DATA_DIR/store/meta.properties" ]]; then
    if [[ -s "$DATA_DIR/cluster_id" ]]; then
      cluster_id="$(cat "$DATA_DIR/cluster_id")"
    else
      cluster_id="$(new_cluster_id)"
      echo "$cluster_id" >"$DATA_DIR/cluster_id"
    fi
    if ! run_tool kafka.tools.StorageTool format --ignore-formatted \
        -t "$cluster_id" -c "$DATA_DIR/server.properties" >"$DATA_DIR/format.out" 2>&1; then
      cat "$DATA_DIR/format.out" >&2
      die "formatting the store in $DATA_DIR/store failed."
    fi
  fi

  # Readiness is the line "Kafka Server started" in the log, so remember
  # where the log ends now and look only at what comes after.
  log="$DATA_DIR/logs/server.log"
  start_offset=0
  [[ -f "$log" ]] && start_offset="$(stat -c %s "$log")"

  local started_at=$SECONDS
  # The broker gets no terminal: standard input is /dev/null and its output
  # goes to kafka.out, so that $(kafka.sh start ...) returns as soon as the
  # broker is ready rather than when it exits.
  # shellcheck disable=SC2046,SC2086  # The option lists are meant to split into words.
  "$(java_bin)" ${TONGKA_KAFKA_HEAP_OPTS:--Xms128m -Xmx512m} \
    ${TONGKA_KAFKA_JVM_OPTS:-$DEFAULT_JVM_OPTS} \
    -Djava.awt.headless=true $(log_opts broker) \
    -cp "$cp" kafka.Kafka "$DATA_DIR/server.properties" \
    </dev/null >>"$DATA_DIR/kafka.out" 2>&1 &
  pid=$!
  echo "$pid" >"$DATA_DIR/kafka.pid"

  # Wait until the broker says it has started and accepts connections on its
  # client port, or until it dies or the timeout passes.
  local timeout="${TONGKA_KAFKA_START_TIMEOUT:-90}"
  ready=0
  while ((SECONDS - started_at < timeout)); do
    if ! alive "$pid"; then
      show_logs
      rm -f "$DATA_DIR/kafka.pid"
      die "the broker exited during start-up; see $DATA_DIR/kafka.out and $log."
    fi
    # (grep reads from a process substitution rather than a pipe, because
    # with pipefail an early exit of grep -q could fail the pipe.)
    if [[ -f "$log" ]] && grep -q 'Kafka Server started' < <(tail -c "+$((start_offset + 1))" "$log") &&
        port_open "$port"; then
      ready=1
      break
    fi
    sleep 0.2
  done
  if ((ready == 0)); then
    show_logs
    note "the broker was not ready after $timeout s; stopping it."
    cmd_stop
    exit 1
  fi

  # If kcat is installed, also check that the broker answers a metadata
  # request, which is what every client does first.
  if command -v kcat >/dev/null 2>&1; then
    if ! kcat -b "127.0.0.1:$port" -L -m 10 >/dev/null 2>&1; then
      show_logs
      note "the broker started but did not answer a metadata request; stopping it."
      cmd_stop
      exit 1
    fi
  fi

  note "Kafka $(kafka_version) is ready at 127.0.0.1:$port (pid $pid) after $((SECONDS - started_at)) s."
  echo "127.0.0.1:$port"
}

cmd_stop() {
  local pid timeout waited
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$DATA_DIR/kafka.pid"
    return 0
  fi
  # SIGTERM makes Kafka shut down in order: it flushes its logs and writes a
  # clean-shutdown marker, so the next start does not need log recovery.
  kill -TERM "$pid" 2>/dev/null || true
  timeout="${TONGKA_KAFKA_STOP_TIMEOUT:-30}"
  waited=0
  while [[ -n "$(running_pid)" ]] && ((waited < timeout * 5)); do
    sleep 0.2
    waited=$((waited + 1))
  done
  if [[ -n "$(running_pid)" ]]; then
    note "the broker (pid $pid) did not stop within $timeout s of SIGTERM; sending SIGKILL."
    kill -KILL "$pid" 2>/dev/null || true
    while [[ -n "$(running_pid)" ]]; do
      sleep 0.1
    done
  fi
  rm -f "$DATA_DIR/kafka.pid"
}

# Kills the broker with SIGKILL, as a crash would, and waits until the
# process is gone, so that tests can check recovery with a following start.
cmd_kill() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    kill -KILL "$pid" 2>/dev/null || true
    while alive "$pid"; do
      sleep 0.1
    done
  fi
  rm -f "$DATA_DIR/kafka.pid"
}

cmd_status() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    note "running (pid $pid)."
    cat "$DATA_DIR/bootstrap"
  else
    note "not running."
    return 1
  fi
}

cmd_bootstrap() {
  [[ -s "$DATA_DIR/bootstrap" ]] || die "$DATA_DIR has no broker; run 'kafka.sh start $DATA_DIR' first."
  cat "$DATA_DIR/bootstrap"
}

cmd_create_topic() {
  (($# >= 2)) || usage
  local name="$1" partitions="$2" bootstrap out
  shift 2
  [[ "$partitions" =~ ^[1-9][0-9]*$ ]] || die "the partition count must be a positive number, not '$partitions'."
  bootstrap="$(cmd_bootstrap)"
  [[ -n "$(running_pid)" ]] || die "the broker in $DATA_DIR is not running."
  # TopicCommand lives in org.apache.kafka.tools since Kafka 3.7 and in
  # kafka.admin before that; the older name is tried when the newer one is
  # missing.
  local args=(--bootstrap-server "$bootstrap" --create --topic "$name"
    --partitions "$partitions" --replication-factor 1 "$@")
  if ! out="$(run_tool org.apache.kafka.tools.TopicCommand "${args[@]}" 2>&1)"; then
    if grep -q 'Could not find or load main class' <<<"$out"; then
      run_tool kafka.admin.TopicCommand "${args[@]}"
      return
    fi
    echo "$out" >&2
    die "creating topic '$name' failed."
  fi
  echo "$out" >&2
}

# ---------------------------------------------------------------------------
# Main.

(($# >= 2)) || usage
COMMAND="$1"
# The data dir is made absolute, because it is written into server.properties
# and the broker does not run from the caller's working directory. Only
# "start" creates it.
[[ "$1" == start ]] && mkdir -p "$2"
[[ -d "$2" ]] || die "$2 does not exist; run 'kafka.sh start $2' first."
DATA_DIR="$(cd "$2" && pwd)"
readonly COMMAND DATA_DIR
shift 2

case "$COMMAND" in
  start) (($# == 0)) || usage; cmd_start ;;
  stop) (($# == 0)) || usage; cmd_stop ;;
  restart) (($# == 0)) || usage; cmd_stop; cmd_start ;;
  kill) (($# == 0)) || usage; cmd_kill ;;
  status) (($# == 0)) || usage; cmd_status ;;
  bootstrap) (($# == 0)) || usage; cmd_bootstrap ;;
  create-topic) cmd_create_topic "$@" ;;
  *) usage ;;
esac
