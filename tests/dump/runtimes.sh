#!/usr/bin/env bash
# Dumps a real runtime while it runs: a JVM with many threads (apps/Sleepers.java, compiled by
# the dump_test_apps fixture into APPS/jvm) or a node process. gdb must open the core, list as
# many threads as the dump reported and name the main thread's frames; the runtime must keep
# running afterwards. Exits 77 (skipped) when the runtime or gdb is not installed.
#   runtimes.sh DUMP_CLI WORKDIR jvm|node [APPS]
set -uo pipefail
cli=$1
work=$2
runtime=$3
apps=${4:-}
case $runtime in
jvm) needs=(java javac gdb) ;;
node) needs=(node gdb) ;;
*) echo "usage: runtimes.sh DUMP_CLI WORKDIR jvm|node [APPS]" >&2; exit 2 ;;
esac
for exe in "${needs[@]}"; do
    command -v "$exe" >/dev/null || { echo "SKIP: $exe not found"; exit 77; }
done
pids=()
fails=0
rm -rf "$work"
mkdir -p "$work"
cleanup() {
    for p in "${pids[@]}"; do
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -f "$work"/core.*
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

wait_for() { # file pattern: polled for at most 30 s
    for _ in $(seq 300); do
        grep -q "$2" "$1" && return 0
        sleep 0.1
    done
    return 1
}

# ticks_on NAME OUTFILE: the runtime prints five more ticks after the dump (at most 30 s)
ticks_on() {
    local before after
    before=$(grep -c '^tick' "$2")
    for _ in $(seq 300); do
        after=$(grep -c '^tick' "$2")
        ((after >= before + 5)) && return
        sleep 0.1
    done
    fail "$1: stopped ticking after the dump ($before -> $after)"
}

# check NAME PID TYPE MAIN_FRAME_REGEX EXE MIN_THREADS
check() {
    local name=$1 pid=$2 type=$3 re=$4 exe=$5 min=$6 core=$work/core.$1 line n want
    if ! line=$("$cli" dump "$pid" --type "$type" -o "$core" 2>&1); then
        fail "$name: dump failed: $line"
        return
    fi
    echo "$name: $line"
    want=$(sed -E 's/.* ([0-9]+) threads,.*/\1/' <<<"$line")
    gdb -batch -nx -ex 'info threads' -ex 'thread 1' -ex 'bt 30' "$exe" "$core" \
        >"$work/gdb.$name" 2>&1
    n=$(grep -cE '^[* ] +[0-9]+ +(Thread|LWP) ' "$work/gdb.$name")
    [[ $n == "$want" ]] || fail "$name: gdb lists $n threads, the dump reported $want"
    ((want >= min)) || fail "$name: only $want threads, expected at least $min"
    sed -n '/^#0 /,$p' "$work/gdb.$name" >"$work/bt.$name"
    grep -qE "$re" "$work/bt.$name" || fail "$name: main thread backtrace lacks /$re/"
    local named
    named=$(grep -cE '^#[0-9]+ +(0x[0-9a-f]+ in )?[A-Za-z_][A-Za-z0-9_:.<>~]* ?\(' "$work/bt.$name")
    ((named >= 3)) || fail "$name: only $named named frames in the main thread"
    if ((fails)); then
        grep -v reg-xstate "$work/gdb.$name" | head -60
    fi
    rm -f "$core"
}

# dump_running TYPE MAIN_FRAME_REGEX MIN_THREADS COMMAND...: starts the runtime, which prints
# "tick N" lines, dumps it once it ticks, checks the core and that it ticks on.
dump_running() {
    local type=$1 re=$2 min=$3 name=$4 pid
    shift 3
    "$@" >"$work/$name.out" 2>&1 &
    pid=$!
    pids+=("$pid")
    if wait_for "$work/$name.out" '^tick 5$'; then
        check "$name" "$pid" "$type" "$re" "$(readlink -f "$(command -v "$name")")" "$min"
        ticks_on "$name" "$work/$name.out"
    else
        fail "$name did not start: $(head -5 "$work/$name.out")"
    fi
}

case $runtime in
jvm) # 24 sleeping workers plus the JVM's own threads
    if [[ -f $apps/jvm/Sleepers.class ]]; then
        dump_running Mini 'pthread|futex|JavaMain|java' 30 \
            java -Xms16m -Xmx64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$apps/jvm" Sleepers
    else
        fail "no $apps/jvm/Sleepers.class: see the dump_test_apps fixture"
    fi
    ;;
node) # an idle event loop with a timer
    dump_running WithHeap 'epoll_wait|uv__io_poll|uv_run' 5 \
        node -e 'let n = 0; setInterval(() => console.log("tick " + ++n), 100)'
    ;;
esac
if ((fails)); then
    echo "$fails failure(s)"
    exit 1
fi
echo "coredump runtime checks passed"
