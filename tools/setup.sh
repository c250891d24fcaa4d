#!/usr/bin/env bash
# Installs everything Tongka needs on a fresh Debian 12 machine, and nothing twice.
#
#   - Debian packages: Bazel 4 (offline), the C++ libraries (gRPC, protobuf, librdkafka, RocksDB,
#     abseil, OpenSSL 3, glog, cpp-httplib, GoogleTest, Google Benchmark), Prometheus + promtool,
#     a JDK and Maven for the Kafka broker, Go for the manifest checker, kcat, clang-format.
#   - The Apache Kafka broker and its dependencies, from Maven Central (tools/kafka/fetch.sh).
#   - The Go modules of tools/k8scheck, from the Go module proxy.
#
# Idempotent and fast when everything is present (no apt or Maven call then). Needs root for apt
# (CI and the development machines run as root). Fails with a message that names the registry
# that could not be reached.
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

readonly PACKAGES=(
  bazel-bootstrap bazel-platforms pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librdkafka-dev librocksdb-dev libabsl-dev libssl-dev libgoogle-glog-dev libcpp-httplib-dev libjemalloc-dev prometheus-cpp-dev tzdata
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  prometheus kcat clang-format
  default-jdk-headless maven golang-go curl python3
)

note() { echo "setup: $*" >&2; }
die() {
  echo "setup: $*" >&2
  exit 1
}

missing=()
for package in "${PACKAGES[@]}"; do
  # A package counts as present when dpkg says it is installed (or, for the JDK, Maven and Go,
  # when the command already exists: these machines may carry their own builds of them).
  case "$package" in
    default-jdk-headless) command -v java >/dev/null && continue ;;
    maven) command -v mvn >/dev/null && continue ;;
    golang-go) command -v go >/dev/null && continue ;;
    python3) command -v python3 >/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done

if ((${#missing[@]} > 0)); then
  note "installing Debian packages: ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
    SUDO="sudo"
  fi
  $SUDO apt-get update -q >/tmp/tongka-apt-update.log 2>&1 ||
    die "apt-get update failed: Debian's package mirror cannot be reached (see /tmp/tongka-apt-update.log)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >/tmp/tongka-apt-install.log 2>&1 ||
    die "apt-get install failed (see /tmp/tongka-apt-install.log): ${missing[*]}"
fi

# The Kafka broker from Maven Central (a no-op when its cache is complete).
"$ROOT/tools/kafka/fetch.sh" >/dev/null ||
  die "could not fetch the Kafka broker from Maven Central (see the message above)"

# The manifest checker's Go modules (a no-op when the module cache has them).
if [[ -f "$ROOT/tools/k8scheck/go.mod" ]]; then
  (cd "$ROOT/tools/k8scheck" && go mod download >/tmp/tongka-go-mod.log 2>&1) ||
    die "could not download Go modules for tools/k8scheck: the Go module proxy cannot be reached (see /tmp/tongka-go-mod.log)"
fi

note "ready"
