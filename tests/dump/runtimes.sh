#!/usr/bin/env bash
# Dumps real runtimes while they run: a JVM with many threads (compiled with javac here) and a
# node process. gdb must open each core, list as many threads as the dump reported and name the
# main thread's frames; the runtime must keep running afterwards.
#   runtimes.sh DUMP_CLI WORKDIR
set -uo pipefail
cli=$1
work=$2
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

wait_for() { # file pattern
    for _ in $(seq 300); do
        grep -q "$2" "$1" && return 0
        sleep 0.1
    done
    return 1
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

# --- Java: 24 sleeping workers plus the JVM's own threads.
cat >"$work/Sleepers.java" <<'EOF'
public class Sleepers {
    public static void main(String[] args) throws Exception {
        for (int i = 0; i < 24; i++) {
            Thread t = new Thread(() -> {
                while (true) {
                    try { Thread.sleep(50); } catch (InterruptedException e) { return; }
                }
            }, "sleeper-" + i);
            t.setDaemon(true);
            t.start();
        }
        for (long n = 0;; n++) {
            System.out.println("tick " + n);
            Thread.sleep(100);
        }
    }
}
EOF
if javac -d "$work" "$work/Sleepers.java"; then
    java -Xms16m -Xmx64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$work" Sleepers \
        >"$work/java.out" 2>&1 &
    jpid=$!
    pids+=("$jpid")
    if wait_for "$work/java.out" '^tick 5$'; then
        check java "$jpid" Mini 'pthread|futex|JavaMain|java' "$(readlink -f "$(command -v java)")" 30
        before=$(grep -c '^tick' "$work/java.out")
        sleep 1
        after=$(grep -c '^tick' "$work/java.out")
        ((after >= before + 5)) || fail "java: stopped ticking after the dump ($before -> $after)"
    else
        fail "java did not start: $(head -5 "$work/java.out")"
    fi
else
    fail "javac failed"
fi

# --- node: an idle event loop with a timer.
node -e 'let n = 0; setInterval(() => console.log("tick " + ++n), 100)' >"$work/node.out" 2>&1 &
npid=$!
pids+=("$npid")
if wait_for "$work/node.out" '^tick 5$'; then
    check node "$npid" WithHeap 'epoll_wait|uv__io_poll|uv_run' "$(readlink -f "$(command -v node)")" 5
    before=$(grep -c '^tick' "$work/node.out")
    sleep 1
    after=$(grep -c '^tick' "$work/node.out")
    ((after >= before + 5)) || fail "node: stopped ticking after the dump ($before -> $after)"
else
    fail "node did not start: $(head -5 "$work/node.out")"
fi

if ((fails)); then
    echo "$fails failure(s)"
    exit 1
fi
echo "coredump runtime checks passed"
