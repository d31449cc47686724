#!/bin/sh
# Scale benchmark (issue 17): idle-process curve and /metrics under 50 concurrent scrapers, the
# binary under test against a baseline binary in the same run (see bench.py for the method).
#   usage: bench/scale/run.sh BASE_VIGIL [BUILD_DIR] [idle|metrics|all] [DURATION] [SIZES]
# BASE_VIGIL: e.g. a build of main copied aside. Needs wrk (Debian package wrk).
set -eu
BASE=$1
BUILD=${2:-build}
PART=${3:-all}
DURATION=${4:-20}
SIZES=${5:-100,1000,10000}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
[ -x "$BUILD/vigil" ] || { echo "no $BUILD/vigil: build first" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
out="$here/results-$(date -u +%Y%m%d-%H%M%S)-$PART.json"
python3 "$here/bench.py" "$BASE" "$BUILD/vigil" "$BUILD/tests/targets/vg_workload" "$out" \
    "$PART" "$DURATION" "$SIZES"
echo "results: $out"
