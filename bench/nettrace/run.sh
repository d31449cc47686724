#!/usr/bin/env bash
# Parse throughput of vigil's nettrace parser against TraceEvent on the same real traces, in one
# run. Usage: bench/nettrace/run.sh [build-dir] [repetitions]
# The traces come from the nettrace_traces fixture (tests/nettrace/traces.sh: a real .NET 10
# process recorded with dotnet-trace). Each measurement parses one file repeatedly (about 100 MB
# in all) after one untimed pass (page cache; TraceEvent's JIT); the tools take turns, their order
# rotating per repetition, and the medians are compared. Peak RSS is from /usr/bin/time.
# Results go to stdout and bench/nettrace/results.txt.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
reps=${2:-5}
apps=${VG_TEST_APPS_DIR:-$src/build/test-apps}
cmake --build "$build" -j2 --target nettrace_dump >/dev/null
"$src/tests/nettrace/traces.sh" "$apps" >/dev/null
dump="$build/tests/nettrace/nettrace_dump"
check="$apps/tracecheck/tracecheck.dll"
out="$src/bench/nettrace/results.txt"

tools=(vigil-validate vigil-events vigil-decode traceevent)
cmd() { # TOOL RUNS FILE
  case $1 in
    vigil-validate) "$dump" --bench validate "$2" "$3" ;;
    vigil-events) "$dump" --bench events "$2" "$3" ;;
    vigil-decode) "$dump" --bench decode "$2" "$3" ;;
    traceevent) dotnet "$check" --bench "$2" "$3" ;;
  esac
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

{
  echo "# nettrace parse throughput, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# vigil: $dump (fed 64 KiB at a time); TraceEvent 4.0.0 EventPipeEventSource with a Dynamic.All handler; dotnet $(dotnet --version)"
  printf '%-14s %-15s %10s %10s %10s %12s\n' trace tool MB_per_s events_M_s peak_rss_MB vs_traceevent
  for name in cpu logs counters; do
    t="$apps/traces/$name.nettrace"
    size=$(stat -c %s "$t")
    runs=$(( (100 * 1000 * 1000 + size - 1) / size ))
    declare -A mbs=() evs=()
    for ((r = 0; r < reps; r++)); do
      for ((k = 0; k < ${#tools[@]}; k++)); do
        tool=${tools[$(( (k + r) % ${#tools[@]} ))]}
        read -r _ bytes secs events < <(cmd "$tool" "$runs" "$t")
        mbs[$tool]+="$(awk -v b="$bytes" -v s="$secs" 'BEGIN {printf "%.2f", b / s / 1e6}') "
        evs[$tool]+="$(awk -v e="$events" -v s="$secs" 'BEGIN {printf "%.3f", e / s / 1e6}') "
      done
    done
    ref=$(tr ' ' '\n' <<<"${mbs[traceevent]}" | grep . | median)
    for tool in "${tools[@]}"; do
      m=$(tr ' ' '\n' <<<"${mbs[$tool]}" | grep . | median)
      e=$(tr ' ' '\n' <<<"${evs[$tool]}" | grep . | median)
      rss=$( { /usr/bin/time -f '%M' bash -c "$(declare -f cmd); dump='$dump' check='$check' cmd $tool 1 '$t'" >/dev/null; } 2>&1 | tail -1)
      printf '%-14s %-15s %10.1f %10.3f %10.1f %11.1fx\n' "$name($((size / 1000))kB)" "$tool" "$m" "$e" \
        "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$(awk -v a="$m" -v b="$ref" 'BEGIN {print a / b}')"
    done
    unset mbs evs
  done
} | tee "$out"
