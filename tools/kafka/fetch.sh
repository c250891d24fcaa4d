#!/usr/bin/env bash
# Resolves an Apache Kafka broker and all of its runtime dependencies from
# Maven Central into a cache folder, and prints the path of a classpath file
# that lists every jar.
#
# Usage: tools/kafka/fetch.sh [VERSION]
#
#   VERSION defaults to $TONGKA_KAFKA_VERSION, or else 3.9.2.
#   The jars go to ${TONGKA_CACHE:-$HOME/.cache/tongka}/kafka-VERSION/lib and
#   the classpath file is ${TONGKA_CACHE:-$HOME/.cache/tongka}/kafka-VERSION/classpath.
#
# The classpath file is written last, so its presence means the cache is
# complete. When it exists the script returns at once without running Maven.
# Maven's own messages go to a log file; only the classpath path is printed
# on standard output, so callers can write CP_FILE=$(tools/kafka/fetch.sh).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly HERE
readonly VERSION="${1:-${TONGKA_KAFKA_VERSION:-3.9.2}}"
readonly CACHE_ROOT="${TONGKA_CACHE:-$HOME/.cache/tongka}"
readonly DEST="$CACHE_ROOT/kafka-$VERSION"
readonly CP_FILE="$DEST/classpath"
# The version of maven-dependency-plugin is pinned so that runs are repeatable.
readonly DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

die() {
  echo "fetch.sh: $*" >&2
  exit 1
}

# The fast path: a complete cache needs no Maven at all.
if [[ -s "$CP_FILE" ]]; then
  echo "$CP_FILE"
  exit 0
fi

command -v mvn >/dev/null 2>&1 || die "Maven ('mvn') is not installed; install it (apt-get install maven) and try again."
mkdir -p "$CACHE_ROOT"

# Two fetches of the same version may run at once (for example two test
# targets starting together). A lock makes the second one wait for the first
# and then take the fast path.
exec 9>"$DEST.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if [[ -s "$CP_FILE" ]]; then
  echo "$CP_FILE"
  exit 0
fi

# Kafka 3.x logs through log4j 1 (reload4j) and Kafka 4.x through log4j 2;
# the POM has one profile for each.
case "$VERSION" in
  [0-3].*) profile=log4j1 ;;
  *) profile=log4j2 ;;
esac

# The jars are copied into a scratch folder first and moved into place only
# when Maven has succeeded, so an interrupted fetch leaves nothing half-done.
tmp="$(mktemp -d "$CACHE_ROOT/.kafka-$VERSION.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log="$tmp/mvn.log"

echo "fetch.sh: resolving org.apache.kafka:kafka_2.13:$VERSION and its runtime dependencies from Maven Central..." >&2
start=$SECONDS
# -U makes Maven retry downloads that failed on an earlier run instead of
# repeating the cached failure.
if ! mvn -B -q -U -Dstyle.color=never -f "$HERE/pom.xml" -P "$profile" \
    -Dkafka.version="$VERSION" \
    "$DEP_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime \
    -DoutputDirectory="$tmp/lib" >"$log" 2>&1; then
  # Tell a network problem apart from, say, a version that does not exist.
  if grep -qiE 'UnknownHost|Connect(ion)? (refused|timed out)|Network is unreachable|transfer failed|Could not transfer' "$log"; then
    echo "fetch.sh: could not reach Maven Central to download Kafka $VERSION." >&2
    echo "fetch.sh: check the network or proxy settings (~/.m2/settings.xml); Maven said:" >&2
  else
    echo "fetch.sh: Maven could not resolve Kafka $VERSION from Maven Central; Maven said:" >&2
  fi
  # Maven's first error line is the one that names the cause; the rest is
  # boilerplate about -e and -X.
  first_error="$(grep -m 1 '^\[ERROR\]' < <(sed 's/\x1b\[[0-9;]*m//g' "$log") || true)"
  if [[ -n "$first_error" ]]; then
    fold -s -w 160 <<<"$first_error" >&2
  else
    tail -n 20 "$log" >&2
  fi
  exit 1
fi

shopt -s nullglob
jars=("$tmp"/lib/*.jar)
((${#jars[@]} > 0)) || die "Maven succeeded but copied no jars into $tmp/lib; see $log."

# Move the jars into place, then write the classpath file (with the final,
# absolute paths) as the very last step.
rm -rf "$DEST"
mkdir -p "$DEST"
mv "$tmp/lib" "$DEST/lib"
(
  cd "$DEST/lib"
  printf '%s\n' *.jar | sed "s|^|$DEST/lib/|" | paste -sd: -
) >"$DEST/classpath.tmp"
mv "$DEST/classpath.tmp" "$CP_FILE"

echo "fetch.sh: fetched ${#jars[@]} jars into $DEST/lib in $((SECONDS - start)) s." >&2
echo "$CP_FILE"
