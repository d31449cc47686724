#!/bin/sh
# Builds and runs the sampler benchmark. Usage: bench/sampler/run.sh [build-dir]
# The controlled runs use a private PID namespace with its own /proc (unshare, needs root or
# user namespaces), so exactly 200 sleeping children are visible and nothing else churns; the
# host runs scan the machine's real /proc with whatever else is running.
set -e
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
cmake -S "$src" -B "$build" >/dev/null
cmake --build "$build" -j2 --target bench_sampler >/dev/null
b="$build/tests/host/bench_sampler"
run() { echo "### $*"; "$@"; echo; }
if unshare --pid --fork --mount-proc true 2>/dev/null; then
    ns="unshare --pid --fork --mount-proc"
    run $ns "$b" --fast 300
    run $ns "$b" --fast 300 --no-keep-fds
    run $ns "$b" --fast 50 --pss
    run $ns "$b" --seconds 30
    run $ns "$b" --seconds 30 --no-ctxsw
else
    echo "### unshare unavailable: skipping the controlled (private PID namespace) runs"
fi
run "$b" --fast 300
run "$b" --seconds 30
