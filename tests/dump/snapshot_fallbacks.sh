#!/usr/bin/env bash
# Snapshot refusals that need the machine's cooperation, through `vigil dump --mode Snapshot`:
#   overcommit  vm.overcommit_memory=2 with CommitLimit set 2 GiB above what is committed now, and
#               a target that has committed 4 GiB: the clone would not fit, so Stop mode, with
#               the reason. The sysctls are restored in a trap, and only held for the one dump
#               (other developers build on this machine: they keep 2 GiB of headroom meanwhile).
#   pids        the target in a pids cgroup (v1 or v2) at its limit: Stop mode, with the reason.
#   nproc       the target runs as nobody with RLIMIT_NPROC 1: nothing checks that before, so the
#               injected clone() itself fails (EAGAIN); the thread that ran it must be put back
#               exactly (its interrupted sleep restarts) and Stop mode used, with the reason.
# Either way the core is complete (gdb reads it) and the target runs on, untraced.
# Exits 77 when it cannot run here (not root, no pids controller to create a cgroup in).
#   snapshot_fallbacks.sh VIGIL TARGET overcommit|pids|nproc
set -uo pipefail
cli=$1
target=$2
case=$3
[[ $(id -u) == 0 ]] || { echo "skipped: needs root"; exit 77; }
work=$(mktemp -d /tmp/vg_snap_fb.XXXXXX)
pid=
cg=
restore=()
cleanup() {
    local i
    for ((i = ${#restore[@]} - 1; i >= 0; i--)); do eval "${restore[i]}"; done
    if [[ -n $pid ]]; then
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    [[ -n $cg ]] && rmdir "$cg" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

start() {
    $wrap "$target" "$@" >"$work/out" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        grep -q '^ready' "$work/out" && return 0
        sleep 0.1
    done
    echo "FAIL: target did not start: $(cat "$work/out")"
    exit 1
}

# One dump in Snapshot mode that must fall back to Stop naming `reason`.
dump_expect_stop() {
    local reason=$1 out
    out=$("$cli" dump "$pid" --type WithHeap --mode Snapshot -o "$work/core" 2>&1)
    local rc=$?
    echo "$out"
    "${@:2}" # undo the setting right after the dump
    [[ $rc == 0 ]] || { echo "FAIL: dump failed"; exit 1; }
    [[ $out == *"mode Stop,"* ]] || { echo "FAIL: not dumped in Stop mode"; exit 1; }
    grep -q "^not a snapshot: .*$reason" <<<"$out" || { echo "FAIL: reason missing: $reason"; exit 1; }
}

check_core_and_target() {
    local g
    g=$(gdb -batch -nx -ex 'info threads' "$target" "$work/core" 2>&1)
    grep -qE '^\* +1 +(Thread|LWP) ' <<<"$g" || { echo "FAIL: gdb cannot read the core: $g"; exit 1; }
    for _ in $(seq 200); do
        st=$(awk '/^State:/{print $2}' "/proc/$pid/status")
        tr=$(awk '/^TracerPid:/{print $2}' "/proc/$pid/status")
        [[ $st != t && $st != T && $tr == 0 ]] && break
        sleep 0.02
    done
    [[ $st != t && $st != T && $tr == 0 ]] || { echo "FAIL: target left state $st tracer $tr"; exit 1; }
    local before
    before=$(grep -c '^tick' "$work/out")
    for _ in $(seq 200); do
        (($(grep -c '^tick' "$work/out") > before + 2)) && return 0
        sleep 0.05
    done
    echo "FAIL: target stopped ticking"
    exit 1
}

wrap=
case $case in
nproc)
    command -v setpriv >/dev/null && command -v prlimit >/dev/null ||
        { echo "skipped: needs setpriv and prlimit"; exit 77; }
    chmod 755 "$work"
    wrap="setpriv --reuid=65534 --regid=65534 --clear-groups -- prlimit --nproc=1 --"
    start big 8
    pid=$(pgrep -P "$pid" -f vg_target_snapshot || echo "$pid")
    dump_expect_stop "clone() failed: .*process limit" true
    ;;
overcommit)
    # ASan reserves terabytes of shadow memory at startup, which strict overcommit refuses.
    if grep -qa __asan_init "$cli"; then
        echo "skipped: a sanitizer build of vigil cannot start under strict overcommit"
        exit 77
    fi
    start commit 4096
    sysctl_restore() {
        echo "$old_ratio" >/proc/sys/vm/overcommit_ratio
        [[ $old_kbytes != 0 ]] && echo "$old_kbytes" >/proc/sys/vm/overcommit_kbytes
        echo "$old_mode" >/proc/sys/vm/overcommit_memory
    }
    old_mode=$(cat /proc/sys/vm/overcommit_memory)
    old_ratio=$(cat /proc/sys/vm/overcommit_ratio)
    old_kbytes=$(cat /proc/sys/vm/overcommit_kbytes)
    restore+=("sysctl_restore")
    committed=$(awk '/^Committed_AS:/{print $2}' /proc/meminfo)
    echo $((committed + 2 * 1024 * 1024)) >/proc/sys/vm/overcommit_kbytes
    echo 2 >/proc/sys/vm/overcommit_memory
    dump_expect_stop "strict overcommit" sysctl_restore
    echo "overcommit restored: mode $(cat /proc/sys/vm/overcommit_memory)," \
        "ratio $(cat /proc/sys/vm/overcommit_ratio), kbytes $(cat /proc/sys/vm/overcommit_kbytes)"
    ;;
pids)
    start big 8
    if [[ -d /sys/fs/cgroup/pids ]]; then
        cg=/sys/fs/cgroup/pids/vg_snap_$$
    elif grep -qw pids /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
        cg=/sys/fs/cgroup/vg_snap_$$
    else
        echo "skipped: no pids controller"
        exit 77
    fi
    mkdir "$cg" 2>/dev/null || { cg=; echo "skipped: cannot create a pids cgroup"; exit 77; }
    echo "$pid" >"$cg/cgroup.procs" || { echo "skipped: cannot move the target"; exit 77; }
    cat "$cg/pids.current" >"$cg/pids.max"
    echo "pids cgroup $cg: $(cat "$cg/pids.current") of max $(cat "$cg/pids.max")"
    dump_expect_stop "pids cgroup .* is at its limit" true
    ;;
*)
    echo "usage: $0 VIGIL TARGET overcommit|pids|nproc"
    exit 2
    ;;
esac
check_core_and_target
echo "snapshot fallback ($case) passed"
