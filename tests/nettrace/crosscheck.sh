#!/usr/bin/env bash
# vigil's nettrace parser against TraceEvent on real traces (recorded by traces.sh):
#   crosscheck.sh NETTRACE_DUMP APPS_DIR
# For every trace: the event counts per provider and event id, every counter, meter value, log
# record and request activity must be identical in both readers (doubles compared bit for bit),
# whatever the split of the stream; both must reject the trace cut short anywhere; vigil's must
# also reject a broken end tag and bytes after the end.
set -euo pipefail
dump="${1:?usage: crosscheck.sh NETTRACE_DUMP APPS_DIR}"
apps="${2:?}"
command -v dotnet >/dev/null || { echo "crosscheck: no dotnet: skipped"; exit 77; }
check="$apps/tracecheck/tracecheck.dll"
traces="$apps/traces"
[[ -f "$check" && -f "$traces/.stamp" ]] || { echo "crosscheck: no traces (fixture nettrace_traces)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sections=(--events --counters --metrics --logs --requests)
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# What each trace must contain, so that two empty outputs never pass.
declare -A expect=(
  [counters]='^counter System.Runtime cpu-usage mean |^counter Microsoft.AspNetCore.Hosting requests-per-second sum |^counter System.Runtime exception-count sum '
  [metrics]='^metric histogram Vigil.TraceGen work-duration |^metric counter Vigil.TraceGen work-items \[kind=odd\] |^metric gauge Vigil.TraceGen temperature |^metric updown Vigil.TraceGen queue-depth '
  [runtime-meter]='^metric .* System.Runtime dotnet.gc.collections '
  [logs]='^log formatted 2 Vigil.TraceGen.Worker |^log json 4 Vigil.TraceGen.Worker .*boom|^log scope-start '
  [aspnet]='^request stop .* /fail 500 |^request start .* /health '
  [cpu]='^event Microsoft-DotNETCore-SampleProfiler '
)

for t in "$traces"/*.nettrace; do
  name=$(basename "$t" .nettrace)
  dotnet "$check" "${sections[@]}" "$t" | LC_ALL=C sort >"$work/$name.ref" || bad "$name: TraceEvent rejects it"
  "$dump" "${sections[@]}" "$t" 2>"$work/$name.err" | LC_ALL=C sort >"$work/$name.out" ||
    bad "$name: rejected: $(cat "$work/$name.err")"
  if ! diff -u "$work/$name.ref" "$work/$name.out" >"$work/$name.diff"; then
    bad "$name: differs from TraceEvent (- TraceEvent, + vigil):"
    head -40 "$work/$name.diff"
  fi
  IFS='|' read -ra pats <<<"${expect[$name]:-.}"
  for p in "${pats[@]}"; do
    grep -Eq "$p" "$work/$name.out" || bad "$name: nothing matches /$p/"
  done
  echo "ok: $name: $(grep '^events' "$work/$name.out" | cut -d' ' -f2) events, $(wc -l <"$work/$name.out") lines identical to TraceEvent"

  # Any split of the stream gives the same result, down to one byte at a time.
  for split in "--chunk 1" "--random-chunks 1" "--random-chunks 7" "--chunk 4093"; do
    # shellcheck disable=SC2086
    "$dump" "${sections[@]}" $split "$t" 2>/dev/null | LC_ALL=C sort >"$work/$name.split" ||
      bad "$name: rejected when fed with $split"
    cmp -s "$work/$name.out" "$work/$name.split" || bad "$name: $split changes the result"
  done

  # Cut anywhere: both readers say so.
  size=$(stat -c %s "$t")
  for cut in 1 8 31 32 33 100 $((size / 3)) $((size / 2)) $((size - 2)) $((size - 1)); do
    ((cut > 0 && cut < size)) || continue
    head -c "$cut" "$t" >"$work/cut.nettrace"
    if "$dump" "$work/cut.nettrace" >/dev/null 2>"$work/cut.err"; then
      bad "$name cut at $cut: accepted"
    elif ! grep -q "truncated\|offset" "$work/cut.err"; then
      bad "$name cut at $cut: unclear error: $(cat "$work/cut.err")"
    fi
    dotnet "$check" "$work/cut.nettrace" >/dev/null 2>&1 && bad "$name cut at $cut: TraceEvent accepts it"
  done

  # The end tag replaced, and bytes after it.
  cp "$t" "$work/bad.nettrace"
  printf '\x06' | dd of="$work/bad.nettrace" bs=1 seek=$((size - 1)) conv=notrunc status=none
  "$dump" "$work/bad.nettrace" >/dev/null 2>&1 && bad "$name: a broken end tag is accepted"
  cp "$t" "$work/bad.nettrace"
  printf 'x' >>"$work/bad.nettrace"
  "$dump" "$work/bad.nettrace" >/dev/null 2>&1 && bad "$name: bytes after the end are accepted"
done
((fail == 0)) || exit 1
echo "crosscheck: all traces agree with TraceEvent"
