#!/usr/bin/env bash
# Produces the Strimzi CustomResourceDefinitions that tools/k8scheck validates
# the Kafka, KafkaNodePool, KafkaTopic and KafkaUser resources against, and
# prints the directory that holds them.
#
# Usage: tools/k8scheck/fetch_crds.sh [STRIMZI_VERSION]
#
# Strimzi publishes no CRD YAML on Maven Central: its CRDs are generated at
# build time from the annotated model classes in io.strimzi:api by Strimzi's
# own generator, io.strimzi:crd-generator (both on Maven Central). This
# script does the same: it downloads the two jars with Maven and runs the
# generator with the arguments of Strimzi's own build (api/pom.xml of that
# release), so the result is the CRDs of that release.
#
# The version defaults to $TONGKA_STRIMZI_VERSION, or else 0.45.0: the CRDs
# must serve kafka.strimzi.io/v1beta2, and 0.45.0 is the newest release whose
# crd-generator is on Maven Central and runs on Java 17 (0.46-0.51 published
# no generator; 1.x serves only kafka.strimzi.io/v1).
#
# The CRDs go to ${TONGKA_CACHE:-$HOME/.cache/tongka}/strimzi-crds-VERSION
# (not in the repo). The directory appears only when complete; when it exists
# the script returns at once. The generated files are checked against the
# checksums in strimzi-crds-VERSION.sha256 beside this script when that file
# exists (write it with --update-checksums).
set -euo pipefail

readonly HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
update_checksums=0
if [[ "${1:-}" == "--update-checksums" ]]; then
  update_checksums=1
  shift
fi
readonly VERSION="${1:-${TONGKA_STRIMZI_VERSION:-0.45.0}}"
readonly CACHE_ROOT="${TONGKA_CACHE:-$HOME/.cache/tongka}"
readonly DEST="$CACHE_ROOT/strimzi-crds-$VERSION"
readonly SUMS="$HERE/strimzi-crds-$VERSION.sha256"
# Pinned so that runs are repeatable (the same version as tools/kafka).
readonly DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

die() {
  echo "fetch_crds.sh: $*" >&2
  exit 1
}

if [[ -d "$DEST" && $update_checksums -eq 0 ]]; then
  echo "$DEST"
  exit 0
fi

command -v mvn >/dev/null 2>&1 || die "Maven ('mvn') is not installed; install it (apt-get install maven) and try again."
command -v java >/dev/null 2>&1 || die "Java is not installed; install a JDK (apt-get install openjdk-17-jdk-headless) and try again."
mkdir -p "$CACHE_ROOT"

# Two runs at once (a test and run.sh): the second waits, then finds the
# directory.
exec 9>"$DEST.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if [[ -d "$DEST" && $update_checksums -eq 0 ]]; then
  echo "$DEST"
  exit 0
fi

tmp="$(mktemp -d "$CACHE_ROOT/.strimzi-crds-$VERSION.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
log="$tmp/mvn.log"
start=$SECONDS

echo "fetch_crds.sh: downloading io.strimzi:api:$VERSION and io.strimzi:crd-generator:$VERSION from Maven Central..." >&2
for artifact in "io.strimzi:api:$VERSION" "io.strimzi:crd-generator:$VERSION"; do
  # -U retries downloads that failed on an earlier run.
  if ! mvn -B -q -U -Dstyle.color=never "$DEP_PLUGIN:copy" \
      -Dartifact="$artifact" -DoutputDirectory="$tmp/lib" -Dmdep.stripVersion=true >>"$log" 2>&1; then
    if grep -qiE 'UnknownHost|Connect(ion)? (refused|timed out)|Network is unreachable|transfer failed|Could not transfer' "$log"; then
      echo "fetch_crds.sh: could not reach Maven Central to download $artifact; Maven said:" >&2
    else
      echo "fetch_crds.sh: Maven could not resolve $artifact; Maven said:" >&2
    fi
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -m 1 '^\[ERROR\]' | fold -s -w 160 >&2 || tail -n 20 "$log" >&2
    exit 1
  fi
done

# The arguments of Strimzi's api/pom.xml (executions generate-crd-co-install-v1
# and generate-crd-co-install-v1-eo): Kafka and KafkaNodePool serve v1beta2;
# KafkaTopic and KafkaUser keep v1alpha1 and v1beta1 beside it.
gen() {
  local versions="$1"
  shift
  java -cp "$tmp/lib/api.jar:$tmp/lib/crd-generator.jar" io.strimzi.crdgenerator.CrdGenerator \
    --label app:strimzi --label strimzi.io/crd-install:true \
    --target-kube 1.16+ --crd-api-version v1 \
    --api-versions "$versions" --storage-version v1beta2 \
    --yaml "$@" >>"$tmp/gen.log" 2>&1 || {
    echo "fetch_crds.sh: Strimzi's CRD generator failed:" >&2
    grep -v '^SLF4J' "$tmp/gen.log" | tail -n 20 >&2
    exit 1
  }
}
mkdir -p "$tmp/crds"
gen v1beta2 \
  "io.strimzi.api.kafka.model.kafka.Kafka=$tmp/crds/040-Crd-kafka.yaml" \
  "io.strimzi.api.kafka.model.nodepool.KafkaNodePool=$tmp/crds/04A-Crd-kafkanodepool.yaml"
gen v1alpha1,v1beta1,v1beta2 \
  "io.strimzi.api.kafka.model.topic.KafkaTopic=$tmp/crds/043-Crd-kafkatopic.yaml" \
  "io.strimzi.api.kafka.model.user.KafkaUser=$tmp/crds/044-Crd-kafkauser.yaml"

for f in "$tmp"/crds/*.yaml; do
  [[ -s "$f" ]] || die "the generator wrote an empty $(basename "$f"); see $tmp/gen.log"
done

(cd "$tmp/crds" && sha256sum -- *.yaml) >"$tmp/sums"
if [[ $update_checksums -eq 1 ]]; then
  cp "$tmp/sums" "$SUMS"
  echo "fetch_crds.sh: wrote $SUMS" >&2
elif [[ -f "$SUMS" ]]; then
  if ! diff -u "$SUMS" "$tmp/sums" >&2; then
    die "the generated CRDs differ from $SUMS (a different generator output); inspect them and rerun with --update-checksums if that is intended."
  fi
fi

rm -rf "$DEST"
mv "$tmp/crds" "$DEST"
echo "fetch_crds.sh: generated $(ls "$DEST" | wc -l) Strimzi $VERSION CRDs into $DEST in $((SECONDS - start)) s." >&2
echo "$DEST"
