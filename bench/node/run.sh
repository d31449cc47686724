#!/bin/sh
# Heap snapshot of a large Node heap (about 500 MB of .heapsnapshot at the default size): vigil
# through the inspector, node's own --heapsnapshot-signal, and vigil through that signal path, in
# one run. Results: bench/node/results-*.json and the table printed at the end (RESULTS.md).
#   usage: bench/node/run.sh [BUILD_DIR] [MILLIONS_OF_OBJECTS]
set -eu
BUILD=${1:-build}
MILLIONS=${2:-5}
[ -x "$BUILD/vigil" ] || { echo "no $BUILD/vigil: build first" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/bench.py" --vigil "$BUILD/vigil" --millions "$MILLIONS" --out "$here"
