#!/usr/bin/env bash
# Core dump benchmark: vigil's writer vs gdb's gcore (and Sysinternals procdump when installed)
# on a target with N MiB of touched, non-zero heap. Freeze time is measured the same way for
# every tool, by the target itself: the largest gap seen by a heartbeat thread that wakes every
# 200 us (bench_target.c). Cores are deleted after each run.
#
#   bench/coredump/run.sh [BUILD_DIR] [OUT_DIR] [SIZES_MB...]
#     BUILD_DIR  vigil build with tests (default: build); uses tests/coredump/vg_dump_cli
#     OUT_DIR    where cores go (default: /dev/shm, i.e. memory, so the disk does not decide)
#     SIZES_MB   default: 256 2048
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-build}" && pwd)
out=${2:-/dev/shm}
shift $(($# > 2 ? 2 : $#)) || true
sizes=("$@")
((${#sizes[@]})) || sizes=(256 2048)

cli=$build/tests/coredump/vg_dump_cli
[[ -x $cli ]] || { echo "build first: $cli missing" >&2; exit 1; }
work=$(mktemp -d /tmp/vg_cd_bench.XXXXXX)
cc -O2 -pthread -o "$work/bench_target" "$here/bench_target.c"
tpid=
cleanup() {
    [[ -n $tpid ]] && kill -9 "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
    rm -rf "$work" "$out"/vg_bench_core.* "$out"/gcore_bench.* "$out"/procdump_bench* 2>/dev/null
    true
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

gap_reset() { kill -USR1 "$tpid"; sleep 0.3; }
gap_read() {
    local before
    before=$(grep -c maxgap "$work/target.out" || true)
    kill -USR2 "$tpid"
    for _ in $(seq 100); do
        (($(grep -c maxgap "$work/target.out" || true) > before)) && break
        sleep 0.05
    done
    grep maxgap "$work/target.out" | tail -1 | awk '{print $2}'
}

printf '%-8s %-10s %10s %12s %12s %10s %s\n' size_mb tool wall_ms freeze_ms bytes MB/s note
for mb in "${sizes[@]}"; do
    "$work/bench_target" "$mb" >"$work/target.out" &
    tpid=$!
    for _ in $(seq 600); do
        grep -q ready "$work/target.out" && break
        sleep 0.1
    done
    sleep 1

    run() { # tool command...
        local tool=$1 t0 t1 gap bytes file note=
        shift
        sync
        gap_reset
        t0=$(now_ms)
        "$@" >"$work/tool.out" 2>&1 || note="(failed: $(tail -1 "$work/tool.out"))"
        t1=$(now_ms)
        gap=$(gap_read)
        file=$(ls -1 "$out"/vg_bench_core.* "$out"/gcore_bench.* "$out"/procdump_bench* 2>/dev/null |
            head -1 || true)
        bytes=$([[ -n $file ]] && stat -c %s "$file" || echo 0)
        [[ $tool == vigil* ]] && note="self-reported $(grep -o 'freeze [0-9]* us' "$work/tool.out")"
        printf '%-8s %-10s %10d %12.1f %12d %10.0f %s\n' "$mb" "$tool" $((t1 - t0)) \
            "$(bc -l <<<"$gap / 1000")" "$bytes" "$(bc -l <<<"$bytes / 1048576 / (($t1 - $t0) / 1000)")" "$note"
        rm -f "$out"/vg_bench_core.* "$out"/gcore_bench.* "$out"/procdump_bench*
    }

    run vigil "$cli" dump "$tpid" --type Full -o "$out/vg_bench_core.$tpid"
    run gcore gcore -o "$out/gcore_bench" "$tpid"
    if command -v procdump >/dev/null; then
        run procdump procdump -p "$tpid" -o "$out/procdump_bench"
    fi
    run vigil "$cli" dump "$tpid" --type Full -o "$out/vg_bench_core.$tpid"

    kill -9 "$tpid"
    wait "$tpid" 2>/dev/null || true
    tpid=
done
