#!/usr/bin/env bash
# EventPipe sessions (vg_ep_session_run) against a real .NET 10 process (tracegen):
#   session_test.sh EP_SESSION_CLI NETTRACE_DUMP APPS_DIR
# - a session with a duration ends by StopTracing, its stream complete, valid for TraceEvent, its
#   counters the same as nettrace_dump reads from the saved stream;
# - a session stopped by a signal (the stop flag) ends the same way;
# - the runtime holds no session afterwards: its socket count returns to the baseline, also when
#   the reader is killed with SIGKILL (the runtime ends a session whose reader went away);
# - a target that exits mid-session is reported (VG_EEXITED), never as a complete trace;
# - a process without a diagnostic socket gives a clear error.
set -euo pipefail
cli="${1:?usage: session_test.sh EP_SESSION_CLI NETTRACE_DUMP APPS_DIR}"
dump="${2:?}"
apps="${3:?}"
command -v dotnet >/dev/null || { echo "no dotnet: skipped"; exit 77; }
gen="$apps/tracegen/tracegen.dll"
check="$apps/tracecheck/tracecheck.dll"
[[ -f "$gen" && -f "$check" ]] || { echo "no tracegen/tracecheck (fixture nettrace_traces)"; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $*"; }

start_gen() { # -> sets $gpid (the dotnet process)
  dotnet "$gen" cpu alloc throw web --seconds 120 </dev/null >"$work/gen.out" 2>&1 &
  gpid=$!
  pids+=("$gpid")
  for _ in $(seq 300); do
    grep -q '^ready' "$work/gen.out" && return 0
    sleep 0.1
  done
  echo "tracegen did not start"; cat "$work/gen.out"; exit 1
}
# Unix-domain sockets the target holds: its diagnostic listener plus one per session connection
# (its HTTP client's TCP connections are not counted).
sockets() {
  local inodes
  inodes=$(awk 'NR > 1 {print $7}' "/proc/$1/net/unix" 2>/dev/null | sort -u)
  ls -l "/proc/$1/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]$/\1/p' |
    sort | comm -12 - <(echo "$inodes") | wc -l
}
# Polls until the target's socket count is back to $base (a session holds one connection).
wait_sockets() { # PID BASE WHAT
  for _ in $(seq 100); do
    [[ $(sockets "$1") -le $2 ]] && { ok "$3: no session left in the runtime"; return; }
    sleep 0.1
  done
  bad "$3: the runtime still holds $(( $(sockets "$1") - $2 )) session connection(s)"
}

start_gen
base=$(sockets "$gpid")

# 1. duration
"$cli" "$gpid" --duration 2500 --out "$work/s1.nettrace" >"$work/s1.out" || bad "duration: exit $?"
grep -q '^result rc=0 stopped=1 complete=1' "$work/s1.out" || bad "duration: $(tail -2 "$work/s1.out")"
grep -q '^counter System.Runtime cpu-usage ' "$work/s1.out" || bad "duration: no cpu-usage counter"
dotnet "$check" --counters "$work/s1.nettrace" >"$work/s1.ref" || bad "duration: TraceEvent rejects the stream"
"$dump" --counters "$work/s1.nettrace" >"$work/s1.dump" 2>/dev/null || bad "duration: nettrace_dump rejects it"
cmp -s <(sort "$work/s1.ref") <(sort "$work/s1.dump") || bad "duration: counters differ from TraceEvent"
[[ $(grep -c '^counter' "$work/s1.out") -eq $(grep -c '^counter' "$work/s1.ref") ]] ||
  bad "duration: live counters differ from the saved stream's"
ok "duration: $(grep -c '^counter' "$work/s1.out") counters live, stream complete and read by TraceEvent"
wait_sockets "$gpid" "$base" "duration"

# 2. stop flag (SIGTERM to the reader)
"$cli" "$gpid" >"$work/s2.out" &
cpid=$!
pids+=("$cpid")
for _ in $(seq 100); do grep -q '^counter' "$work/s2.out" && break; sleep 0.1; done
[[ $(sockets "$gpid") -gt $base ]] || bad "stop: no session connection seen in the runtime"
kill -TERM "$cpid"
wait "$cpid" || bad "stop: exit $?"
grep -q '^result rc=0 stopped=1 complete=1' "$work/s2.out" || bad "stop: $(tail -2 "$work/s2.out")"
ok "stop flag: StopTracing, complete stream"
wait_sockets "$gpid" "$base" "stop flag"

# 3. the reader killed: the runtime ends the session by itself
"$cli" "$gpid" >"$work/s3.out" &
cpid=$!
pids+=("$cpid")
for _ in $(seq 100); do grep -q '^counter' "$work/s3.out" && break; sleep 0.1; done
kill -KILL "$cpid"
wait "$cpid" 2>/dev/null || true
wait_sockets "$gpid" "$base" "reader killed"
# ... and a new session starts and works.
"$cli" "$gpid" --duration 1500 >"$work/s4.out" || bad "after kill: exit $?"
grep -q '^result rc=0 stopped=1 complete=1' "$work/s4.out" || bad "after kill: $(tail -2 "$work/s4.out")"

# 4. the target exits mid-session
"$cli" "$gpid" >"$work/s5.out" &
cpid=$!
pids+=("$cpid")
for _ in $(seq 100); do grep -q '^counter' "$work/s5.out" && break; sleep 0.1; done
kill -TERM "$gpid"
set +e
wait "$cpid"
rc=$?
set -e
[[ $rc -eq 3 ]] && grep -q '^result rc=VG_EEXITED stopped=0' "$work/s5.out" ||
  bad "target exit: exit $rc, $(tail -2 "$work/s5.out")"
ok "target exit: reported as $(grep '^result' "$work/s5.out")"

# 5. not a .NET process
set +e
"$cli" $$ >"$work/s6.out"
rc=$?
set -e
[[ $rc -eq 1 ]] && grep -q '^error .*' "$work/s6.out" || bad "no socket: exit $rc, $(cat "$work/s6.out")"
ok "no diagnostic socket: $(grep '^error' "$work/s6.out")"

((fail == 0)) || exit 1
echo "sessions: all checks passed"
