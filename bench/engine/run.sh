#!/bin/sh
# Daemon-level benchmark: `vigil run` with rules that match every process, against >= 200
# processes, PollInterval 1s, for DURATION seconds (default 60). Reports the daemon's CPU time
# over the run (utime+stime from /proc/PID/stat, as % of one core) and its memory (VmRSS at the
# end, VmHWM = peak RSS).
#   usage: bench/engine/run.sh [BUILD_DIR] [DURATION] [SLEEPERS]
set -eu
BUILD=${1:-build}
DURATION=${2:-60}
SLEEPERS=${3:-200}
VIGIL=$BUILD/vigil
[ -x "$VIGIL" ] || { echo "no $VIGIL: build first" >&2; exit 2; }
DIR=$(mktemp -d /tmp/vigil-bench-engine.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PIDS=""
cleanup() {
    [ -n "${VPID:-}" ] && kill "$VPID" 2>/dev/null || true
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

mkdir -p "$DIR/conf"
# Two rules without filters: every process on the machine gets two rule instances, CPU and
# memory are sampled for all of them every second.
cat > "$DIR/conf/rules.yaml" <<YAML
Discovery:
  PollInterval: 1s
Server:
  MetricsEnabled: false
CollectionRules:
  AllCpu:
    Trigger:
      Type: CPUUsage
      Settings:
        GreaterThan: 99
        SlidingWindowDuration: 10s
    Actions:
      - Type: Execute
        Settings:
          Path: /bin/true
  AllMemory:
    Trigger:
      Type: MemoryGrowth
      Settings:
        Delta: 1GB
    Actions:
      - Type: Execute
        Settings:
          Path: /bin/true
YAML

i=0
while [ $i -lt "$SLEEPERS" ]; do
    sleep 100000 &
    PIDS="$PIDS $!"
    i=$((i + 1))
done

"$VIGIL" run --config-dir "$DIR/conf" --state-dir "$DIR/state" --no-auth \
    --urls "http://127.0.0.1:$PORT" --log-level warn 2>"$DIR/vigil.log" &
VPID=$!
sleep 3 # startup: first scan, instances created, SQLite opened

ticks() { awk '{print $14 + $15}' "/proc/$VPID/stat"; }
HZ=$(getconf CLK_TCK)
T0=$(ticks)
S0=$(date +%s.%N)
sleep "$DURATION"
T1=$(ticks)
S1=$(date +%s.%N)
st() { awk -v k="$1:" '$1==k{print $2}' "/proc/$VPID/status"; }
# Memory while only sampling (no API request served yet), after a /metrics scrape (what
# Prometheus does every 15-60 s) and after /instances (every rule x process as one JSON document).
RSS=$(st VmRSS) HWM=$(st VmHWM) ANON=$(st RssAnon) FILE=$(st RssFile)
PSS=$(awk '/^Pss:/{print $2}' "/proc/$VPID/smaps_rollup")
PROCS=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '$1=="vigil_processes"{print $2}')
RSS_M=$(st VmRSS)
INST=$(curl -s "http://127.0.0.1:$PORT/instances" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["instances"]))')
RSS_I=$(st VmRSS) HWM_I=$(st VmHWM)
python3 - "$T0" "$T1" "$S0" "$S1" "$HZ" "$RSS" "$HWM" "$PROCS" "$INST" "$ANON" "$FILE" "$PSS" \
    "$RSS_M" "$RSS_I" "$HWM_I" <<'PY'
import sys
t0, t1, s0, s1, hz, rss, hwm, procs, inst, anon, file, pss, rss_m, rss_i, hwm_i = sys.argv[1:]
mib = lambda kb: f"{int(kb) / 1024:.2f} MiB"
cpu = (float(t1) - float(t0)) / float(hz)
wall = float(s1) - float(s0)
print(f"processes watched: {procs}, rule instances: {inst}")
print(f"wall {wall:.1f} s, daemon CPU {cpu:.2f} s = {100 * cpu / wall:.2f} % of one core")
print(f"sampling only: VmRSS {mib(rss)}, VmHWM {mib(hwm)} (RssAnon {mib(anon)}, "
      f"RssFile {mib(file)}, Pss {mib(pss)})")
print(f"after GET /metrics: VmRSS {mib(rss_m)}; after GET /instances: VmRSS {mib(rss_i)}, "
      f"VmHWM {mib(hwm_i)}")
PY
