#!/usr/bin/env bash
# The daemon's cost of .NET counters: `vigil run` watching N real .NET processes (tracegen, idle)
# for DURATION seconds, first by /proc alone (a Metric rule on process_cpu_usage_percent: CPUUsage
# opens a counters session on .NET processes), then with one EventPipe counters
# session per process streaming System.Runtime counters every second (an EventCounter rule,
# GlobalCounter.IntervalSeconds 1). Reports the daemon's CPU (utime+stime over the run, % of one
# core) and memory (VmRSS at the end, VmHWM peak), in one run, on the same processes.
#   usage: bench/nettrace/daemon.sh [BUILD_DIR] [DURATION] [PROCESSES]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$src/build}
DURATION=${2:-60}
N=${3:-20}
apps=${VG_TEST_APPS_DIR:-$src/build/test-apps}
"$src/tests/nettrace/traces.sh" "$apps" >/dev/null # builds tracegen
VIGIL=$BUILD/vigil
DIR=$(mktemp -d /tmp/vigil-bench-dotnet.XXXXXX)
TAG=vgbench$$
PIDS=()
cleanup() {
  [[ -n "${VPID:-}" ]] && kill "$VPID" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

for i in $(seq "$N"); do
  dotnet "$apps/tracegen/tracegen.dll" "$TAG" --seconds 3600 </dev/null >"$DIR/gen$i.out" 2>&1 &
  PIDS+=($!)
done
for i in $(seq "$N"); do
  for _ in $(seq 300); do grep -q '^ready' "$DIR/gen$i.out" && break; sleep 0.1; done
done
sleep 2

unix_sessions() { # sockets beyond each target's diagnostic listener, summed
  local total=0
  for p in "${PIDS[@]}"; do
    local inodes n
    inodes=$(awk 'NR > 1 {print $7}' "/proc/$p/net/unix" 2>/dev/null | sort -u)
    n=$(ls -l "/proc/$p/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' | sort |
        comm -12 - <(echo "$inodes") | wc -l)
    total=$((total + n - 1))
  done
  echo "$total"
}

run() { # NAME TRIGGER_YAML
  local name=$1 trigger=$2 conf="$DIR/conf-$1"
  mkdir -p "$conf"
  cat >"$conf/rules.yaml" <<YAML
Discovery:
  PollInterval: 1s
GlobalCounter:
  IntervalSeconds: 1
Server:
  MetricsEnabled: false
CollectionRules:
  Watch:
    Filters:
      - {Key: CommandLine, Value: $TAG, MatchType: Contains}
    Trigger:
$trigger
    Actions:
      - {Type: Execute, Settings: {Path: /bin/true}}
YAML
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$VIGIL" run --config-dir "$conf" --state-dir "$DIR/state-$name" --no-auth \
    --urls "http://127.0.0.1:$port" --log-level warn >"$DIR/vigil-$name.log" 2>&1 &
  VPID=$!
  sleep 10 # discovery, detection, sessions started and streaming
  local sessions
  sessions=$(unix_sessions)
  local t0 c0 t1 c1 hz
  hz=$(getconf CLK_TCK)
  t0=$(date +%s.%N)
  c0=$(awk '{print $14 + $15}' "/proc/$VPID/stat")
  sleep "$DURATION"
  c1=$(awk '{print $14 + $15}' "/proc/$VPID/stat")
  t1=$(date +%s.%N)
  local rss hwm
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$VPID/status")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$VPID/status")
  kill "$VPID"
  wait "$VPID" 2>/dev/null || true
  VPID=
  printf '%-22s %8s %10.2f %10.1f %10.1f\n' "$name" "$sessions" \
    "$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v s="$t0" -v e="$t1" 'BEGIN {print (b - a) / hz / (e - s) * 100}')" \
    "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$(awk -v k="$hwm" 'BEGIN {print k / 1024}')"
}

{
  echo "# vigil with $N idle .NET 10 processes (tracegen), ${DURATION} s per configuration, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-22s %8s %10s %10s %10s\n' configuration sessions cpu_pct rss_MB peak_MB
  run proc-only "      Type: Metric
      Settings: {Name: process_cpu_usage_percent, GreaterThan: 99, SlidingWindowDuration: 00:01:00}"
  run counters-1s "      Type: EventCounter
      Settings: {ProviderName: System.Runtime, CounterName: cpu-usage, GreaterThan: 99, SlidingWindowDuration: 00:01:00}"
  echo "# sessions: EventPipe connections held by the targets (measured 10 s after vigil started)"
} | tee "$src/bench/nettrace/daemon-results.txt"
