#!/usr/bin/env bash
# README command 1: install what is needed, build, and run vigil's main job against the bundled
# demo workloads (a CPU spinner, a memory grower, and a Node, a Java and a .NET process when those
# runtimes are installed) with the demo rules in examples/demo:
# filesystem egress to /tmp/vigil-demo/artifacts, SQLite state in /tmp/vigil-demo/state.
# Within about a minute a CPUUsage rule and a MemoryGrowth rule fire and their actions run.
# Idempotent: every run starts from a clean /tmp/vigil-demo.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" --target vigil vigil-demo-spin vigil-demo-grow

demo=/tmp/vigil-demo
port=${VIGIL_DEMO_PORT:-52323}
rm -rf "$demo"
mkdir -p "$demo"
pids=()
cleanup() {
  # children first: `dotnet run` leaves its app running when it is killed
  for p in "${pids[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

build/vigil-demo-spin >"$demo/spin.log" 2>&1 & pids+=($!)
build/vigil-demo-grow 50 2000 400 >"$demo/grow.log" 2>&1 & pids+=($!)
node_rule=()
if command -v node >/dev/null; then # Node's heap, read through its own inspector
  node --inspect=127.0.0.1:0 examples/demo/workloads/heap.js >"$demo/heap.log" 2>&1 & pids+=($!)
  node_rule=(DemoNodeHeap)
fi
jvm_rule=()
if command -v java >/dev/null; then # a JVM's heap, from its perf-data file; a heap dump by attach
  java -Xmx256m examples/demo/workloads/Heap.java >"$demo/jvm.log" 2>&1 & pids+=($!)
  jvm_rule=(DemoJvmHeap)
fi
dotnet_rule=()
if command -v dotnet >/dev/null; then # .NET: a Meter histogram over EventPipe, then a CPU trace
  # a file-based app (.NET 10): built on first run in a few seconds, no project, no packages
  dotnet run examples/demo/workloads/Orders.cs >"$demo/dotnet.log" 2>&1 & pids+=($!)
  dotnet_rule=(DemoDotnetLatency)
fi
# --no-auth is explicit (and logged as a warning); the API only listens on loopback here.
build/vigil run --config-dir examples/demo --state-dir "$demo/state" \
  --urls "http://127.0.0.1:$port" --no-auth >"$demo/vigil.log" 2>&1 &
vigil_pid=$!
pids+=("$vigil_pid")

echo "vigil is watching every process (log: $demo/vigil.log); waiting for the demo rules to fire..."
fired() {
  build/vigil status --url "http://127.0.0.1:$port" 2>/dev/null |
    awk -v r="$1" '$1 == r && $(NF-1)+0 > 0 {ok=1} END {exit !ok}'
}
deadline=$((SECONDS + 90))
all_fired() {
  for r in DemoHighCpu DemoMemoryGrowth "${node_rule[@]}" "${jvm_rule[@]}" "${dotnet_rule[@]}"; do
    fired "$r" || return 1
  done
}
until all_fired; do
  if ((SECONDS > deadline)); then
    echo "the demo rules did not all fire within 90 s: on a busy machine the spinner may not get"
    echo "the 30% of CPU capacity the demo rule asks for (see examples/demo/rules.yaml)"
    break
  fi
  if ! kill -0 "$vigil_pid" 2>/dev/null; then
    echo "vigil exited:"; cat "$demo/vigil.log"; exit 1
  fi
  sleep 2
done
# let the last dump finish, and a .NET trace its 5 seconds
for _ in $(seq 1 15); do
  ((${#dotnet_rule[@]})) && ! ls "$demo/artifacts" 2>/dev/null | grep -q nettrace || break
  sleep 1
done
sleep 3

echo
echo "== vigil status"
build/vigil status --url "http://127.0.0.1:$port" || true
echo
echo "== what the rules did (from vigil's log)"
grep -E "fired|done|failed" "$demo/vigil.log" | sed 's/^[^ ]* //' || true
echo
echo "== Execute actions wrote"
cat "$demo/actions.log" 2>/dev/null || echo "(nothing)"
echo
echo "== dumps in the filesystem egress ($demo/artifacts)"
ls -l "$demo/artifacts" 2>/dev/null | grep core_ || echo "(none)"
if ((${#node_rule[@]})); then
  echo
  echo "== Node heap snapshots (open in Chrome DevTools: Memory, Load)"
  ls -l "$demo/artifacts" 2>/dev/null | grep heapsnapshot || echo "(none)"
fi
if ((${#jvm_rule[@]})); then
  echo
  echo "== JVM heap dumps (HPROF: open in VisualVM or Eclipse MAT)"
  ls -l "$demo/artifacts" 2>/dev/null | grep hprof || echo "(none)"
fi
if ((${#dotnet_rule[@]})); then
  echo
  echo "== .NET traces (nettrace: PerfView, or dotnet-trace convert --format Speedscope)"
  ls -l "$demo/artifacts" 2>/dev/null | grep nettrace || echo "(none)"
fi
echo
grow_pid=${pids[1]}
first=$(awk -v p="$grow_pid" '$1 == "dump" && $4 == p {print $6; exit}' "$demo/actions.log" 2>/dev/null)
[[ -n "$first" ]] && echo "Open a dump with: gdb $here/build/vigil-demo-grow $first"
kill -TERM "$vigil_pid" 2>/dev/null || true
wait "$vigil_pid" 2>/dev/null || true
echo "vigil stopped cleanly (SIGTERM)."
