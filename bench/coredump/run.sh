#!/usr/bin/env bash
# Core dump benchmark: vigil's writer vs gdb's gcore (and Sysinternals procdump when installed)
# on a target with N MiB of touched, non-zero heap. Freeze time is measured the same way for
# every tool, by the target itself: the largest gap seen by a heartbeat thread that wakes every
# 200 us (bench_target.c). Cores are deleted after each run. Every tool runs REPS times per size,
# interleaved (vigil, [vigil-old], gcore, [procdump], write-only, then rotated by one), so a
# change in machine load hits all tools alike; the summary gives medians and ratios to gcore.
# "write-only" is no dump: dd writes a core-sized file of zeros into OUT_DIR, the lower bound of
# any dumper's wall time there (fresh pages or blocks plus one copy, no process read at all).
#
#   [REPS=3] [BEFORE=path/to/old/vigil] bench/coredump/run.sh [BUILD_DIR] [OUT_DIR] [SIZES_MB...]
#     BUILD_DIR  vigil build with tests (default: build); uses its vigil binary (vigil dump)
#     OUT_DIR    where cores go (default: /dev/shm, i.e. memory, so the disk does not decide)
#     SIZES_MB   default: 256 2048
#     BEFORE     a vigil built from an older commit, run as "vigil-old" for a before/after
#                comparison in the same run
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "${1:-build}" && pwd)
out=${2:-/dev/shm}
shift $(($# > 2 ? 2 : $#)) || true
sizes=("$@")
((${#sizes[@]})) || sizes=(256 2048)
reps=${REPS:-3}
before=${BEFORE:-}

cli=$build/vigil
[[ -x $cli ]] || { echo "build first: $cli missing" >&2; exit 1; }
[[ -z $before || -x $before ]] || { echo "BEFORE=$before is not executable" >&2; exit 1; }
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

echo "# $(date -u '+%F %T') UTC, $(nproc) CPUs, out=$out, reps=$reps, $(uname -r)"
printf '%-8s %-10s %10s %12s %12s %10s %6s %s\n' size_mb tool wall_ms freeze_ms bytes MB/s load note
: >"$work/rows"
run() { # tool command...
    local tool=$1 t0 t1 gap bytes file note= load
    shift
    sync
    gap_reset
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(now_ms)
    "$@" >"$work/tool.out" 2>&1 || note="(failed: $(tail -1 "$work/tool.out"))"
    t1=$(now_ms)
    gap=$(gap_read)
    file=$(ls -1 "$out"/vg_bench_core.* "$out"/gcore_bench.* "$out"/procdump_bench* 2>/dev/null |
        head -1 || true)
    bytes=$([[ -n $file ]] && stat -c %s "$file" || echo 0)
    [[ $tool == vigil* && -z $note ]] &&
        note="self-reported $(grep -o 'freeze [0-9]* us' "$work/tool.out")"
    printf '%-8s %-10s %10d %12.1f %12d %10.0f %6s %s\n' "$mb" "$tool" $((t1 - t0)) \
        "$(bc -l <<<"$gap / 1000")" "$bytes" "$(bc -l <<<"$bytes / 1048576 / (($t1 - $t0) / 1000)")" \
        "$load" "$note"
    echo "$mb $tool $((t1 - t0)) $gap $bytes" >>"$work/rows"
    rm -f "$out"/vg_bench_core.* "$out"/gcore_bench.* "$out"/procdump_bench*
}

tools=(vigil)
[[ -n $before ]] && tools+=(vigil-old)
tools+=(gcore)
command -v procdump >/dev/null && tools+=(procdump)
tools+=(write-only)
run_tool() {
    case $1 in
    vigil) run vigil "$cli" dump "$tpid" --type Full -o "$out/vg_bench_core.$tpid" ;;
    vigil-old) run vigil-old "$before" dump "$tpid" --type Full -o "$out/vg_bench_core.$tpid" ;;
    gcore) run gcore gcore -o "$out/gcore_bench" "$tpid" ;;
    procdump) run procdump procdump -p "$tpid" -o "$out/procdump_bench" ;;
    # The floor for any tool: only writing a core-sized file of zeros into OUT_DIR.
    write-only) run write-only dd if=/dev/zero of="$out/vg_bench_core.floor" bs=4M count=$(((mb + 16) / 4)) ;;
    esac
}

for mb in "${sizes[@]}"; do
    "$work/bench_target" "$mb" >"$work/target.out" &
    tpid=$!
    for _ in $(seq 600); do
        grep -q ready "$work/target.out" && break
        sleep 0.1
    done
    sleep 1

    # The tool order rotates with each repetition: the first dump after the target was filled
    # meets the least recently used memory and would otherwise always be the same tool's.
    for ((r = 0; r < reps; r++)); do
        for ((i = 0; i < ${#tools[@]}; i++)); do
            run_tool "${tools[(i + r) % ${#tools[@]}]}"
        done
    done

    kill -9 "$tpid"
    wait "$tpid" 2>/dev/null || true
    tpid=
done

# Medians per size and tool; ratios against gcore's medians of the same size.
echo
echo "| heap MiB | tool | runs | wall ms (median) | freeze ms (median) | MB/s (median wall) | throughput vs gcore | freeze vs gcore |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
awk '
function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ k = $1 SUBSEP $2; wall[k] = wall[k] " " $3; gap[k] = gap[k] " " $4; bytes[k] = $5; n[k]++
  if (!((k) in seen)) { seen[k] = 1; order[++no] = k } }
END {
    for (i = 1; i <= no; i++) {
        k = order[i]; split(k, p, SUBSEP)
        w = median(wall[k]); g = median(gap[k]) / 1000
        gk = p[1] SUBSEP "gcore"
        gw = median(wall[gk]); gg = median(gap[gk]) / 1000
        printf "| %s | %s | %d | %d | %.0f | %.0f | %.2fx | %.2f |\n", p[1], p[2], n[k], w, g,
            bytes[k] / 1048576 / (w / 1000), (bytes[k] / w) / (bytes[gk] / gw), g / gg
    }
}' "$work/rows"
