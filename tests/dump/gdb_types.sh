#!/usr/bin/env bash
# Dumps a running multi-threaded target with every dump type and checks the cores with gdb:
# every thread's stack by function name, the planted heap value (Full/WithHeap only), the planted
# stack local, Triage's blanked environment; then checks the target kept running correctly.
# Exits 77 (skipped) when gdb is not installed.
#   gdb_types.sh DUMP_CLI TARGET
set -uo pipefail
cli=$1
target=$2
command -v gdb >/dev/null || { echo "SKIP: gdb not found"; exit 77; }
work=$(mktemp -d /tmp/vg_cd_gdb.XXXXXX)
pid=
fails=0
cleanup() {
    if [[ -n $pid ]]; then
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

secret=vg-triage-secret-$RANDOM$RANDOM
VG_SECRET_ENV=$secret "$target" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 300); do
    grep -q '^tick 3 ' "$work/out" && break
    sleep 0.1
done
grep -q '^tick 3 ' "$work/out" || { echo "FAIL: target did not start"; exit 1; }

for type in Full WithHeap Mini Triage; do
    core=$work/core.$type
    if ! line=$("$cli" dump "$pid" --type "$type" -o "$core"); then
        fail "$type: dump failed"
        continue
    fi
    echo "$line"
    [[ $(stat -c %a "$core") == 600 ]] || fail "$type: core mode is not 0600"
    gdb -batch -nx \
        -ex 'info threads' \
        -ex 'thread apply all bt' \
        -ex 'echo ===values===\n' \
        -ex 'print/x vg_planted->magic' \
        -ex 'print vg_planted->tag' \
        -ex 'thread apply all -s -q frame function sleeper_wait' \
        -ex 'thread apply all -s -q frame apply all -s -q print/x stack_marker' \
        "$target" "$core" >"$work/gdb.$type" 2>&1
    g=$work/gdb.$type
    sed '/^===values===/,$d' "$g" >"$work/bt.$type"
    n=$(grep -cE '^[* ] +[0-9]+ +Thread ' "$g")
    [[ $n == 5 ]] || fail "$type: gdb lists $n threads, expected 5"
    # One function per thread, each in its own thread's backtrace.
    for fn in main_loop sleeper_wait pipe_reader busy_spinner idle_waiter; do
        c=$(grep -cE "^#[0-9]+ .*\b$fn \(" "$work/bt.$type")
        [[ $c == 1 ]] || fail "$type: '$fn' appears in $c backtrace frames, expected 1"
    done
    # Threads blocked in libc: the libc frames are named too (symbols from the NT_FILE files).
    grep -qE '^#[0-9]+ .*(clock_nanosleep|nanosleep)' "$g" || fail "$type: no nanosleep frame"
    grep -qE '^#[0-9]+ .*(__libc_read|read) ' "$g" || fail "$type: no read frame"
    grep -qE '^#[0-9]+ .*start_thread' "$g" || fail "$type: no start_thread frame"
    grep -q ' in ?? ()' "$g" && fail "$type: unnamed frames"
    grep -q '= 0x57ac4b0b5eed1234' "$g" || fail "$type: stack local not read back"
    grep -qE '^#[0-9]+ .* sleeper_wait \(\) at ' "$g" || fail "$type: frame function sleeper_wait"
    case $type in
    Full | WithHeap)
        grep -q '= 0x5eed5eedcafef00d' "$g" || fail "$type: heap value not read back"
        grep -q '"planted-in-heap"' "$g" || fail "$type: heap string not read back"
        ;;
    *)
        grep -q '= 0x5eed5eedcafef00d' "$g" && fail "$type: heap should not be in the core"
        ;;
    esac
    if [[ $type == Triage ]]; then
        grep -qa "$secret" "$core" && fail "Triage: environment not blanked"
    else
        grep -qa "$secret" "$core" || fail "$type: environment missing from the stack"
    fi
    if ((fails)); then
        echo "--- gdb output ($type)"
        grep -v 'reg-xstate' "$g" | head -80
    fi
done

# The target goes on: more ticks, every thread progressing, its syscalls completed (nanosleep
# slept the full time, read got the right byte sequence), nothing on stderr.
# Polled until every counter moved on (at most 30 s).
last=$(grep '^tick' "$work/out" | tail -1)
read -r _ t0 _ r0 _ s0 _ _ _ _ <<<"$last"
for _ in $(seq 300); do
    now=$(grep '^tick' "$work/out" | tail -1)
    read -r _ t1 _ r1 _ s1 _ _ _ e1 <<<"$now"
    ((t1 >= t0 + 8 && r1 >= r0 + 8 && s1 >= s0 + 3)) && break
    sleep 0.1
done
echo "before: $last"
echo "after:  $now"
((t1 >= t0 + 8)) || fail "target stopped ticking"
((r1 >= r0 + 8)) || fail "reader thread stopped"
((s1 >= s0 + 3)) || fail "sleeper thread stopped"
[[ $e1 == 0 ]] || fail "target reported $e1 errors"
[[ -s $work/err ]] && fail "target stderr: $(head -3 "$work/err")"

# Usage errors and a missing process.
"$cli" dump >/dev/null 2>&1
[[ $? == 2 ]] || fail "usage error should exit 2"
"$cli" dump "$pid" --type Bogus >/dev/null 2>&1
[[ $? == 2 ]] || fail "bad type should exit 2"
msg=$("$cli" dump 999999999 -o "$work/none" 2>&1)
[[ $? == 1 && $msg == *"no such process"* && $msg == *VG_ESRCH* ]] || fail "missing pid: $msg"

if ((fails)); then
    echo "$fails failure(s)"
    exit 1
fi
echo "coredump gdb checks passed"
