#!/usr/bin/env bash
# examples/systemd/vigil.service: `systemd-analyze verify` passes, `systemd-analyze security`
# gives the exposure docs/systemd.md states, and vigil does its job (a core dump of another
# user's process) with only the unit's CapabilityBoundingSet and no_new_privs, while without
# CAP_SYS_PTRACE it cannot. (No systemd runs here as PID 1, so the unit's namespaces and seccomp
# filter are checked offline only.)
#   systemd_test.sh SOURCE_DIR VIGIL CRASHER
set -euo pipefail
src=$(realpath "$1") vigil=$(realpath "$2") crasher=$(realpath "$3")
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not found"; exit 77; }
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]+"${pids[@]}"}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unit="$src/examples/systemd/vigil.service"

# verify: the unit as shipped, with ExecStart pointing at the vigil under test
sed "s|/usr/bin/vigil|$vigil|" "$unit" > "$work/vigil.service"
out=$(systemd-analyze verify "$work/vigil.service" 2>&1) || fail "systemd-analyze verify: $out"
[[ -z "$out" ]] || fail "systemd-analyze verify said: $out"

# security: the exposure the docs record
score=$(systemd-analyze security --offline=true "$work/vigil.service" 2>&1 |
        sed -n 's/.*Overall exposure level for vigil.service: \([0-9.]*\).*/\1/p')
[[ -n "$score" ]] || fail "no exposure level from systemd-analyze security"
grep -q "exposure level \*\*$score\*\*" "$src/docs/systemd.md" ||
  fail "systemd-analyze security gives $score; docs/systemd.md records another value"
grep -q "exposure $score " "$unit" || fail "the unit's comment does not say exposure $score"
echo "verify ok, exposure $score"

# the capabilities the unit keeps are enough, and CAP_SYS_PTRACE is needed
if [[ $(id -u) != 0 ]] || ! command -v setpriv >/dev/null; then
  echo "SKIP: not root or no setpriv: the capability check cannot run"; exit 77
fi
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr ' ' '\n' | sed 's/^CAP_//' |
       tr 'A-Z' 'a-z' | sed 's/^/+/' | paste -sd, -)
[[ -n "$caps" ]] || fail "no CapabilityBoundingSet in the unit"
chmod 755 "$work"
setpriv --reuid=65534 --regid=65534 --clear-groups "$crasher" segv 600 > "$work/ready" &
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$work/ready" ]] && break; sleep 0.1; done
pid=$(awk '{print $2}' "$work/ready")
[[ -n "$pid" ]] || fail "the target did not start"
setpriv --bounding-set="-all,$caps" --inh-caps=-all --no-new-privs \
  "$vigil" dump "$pid" --type Mini -o "$work/core.ok" > "$work/dump.out" 2>&1 ||
  fail "vigil dump with the unit's capabilities ($caps): $(cat "$work/dump.out")"
[[ "$(head -c 4 "$work/core.ok" | od -An -c | tr -d ' ')" == '177ELF' ]] || fail "not an ELF core"
nopt=$(echo "$caps" | sed 's/,*+sys_ptrace//; s/^,//')
if setpriv --bounding-set="-all,$nopt" --inh-caps=-all --no-new-privs \
     "$vigil" dump "$pid" --type Mini -o "$work/core.no" > "$work/dump.out" 2>&1; then
  fail "vigil dump of another user's process worked without CAP_SYS_PTRACE"
fi
grep -q "CAP_SYS_PTRACE" "$work/dump.out" || fail "unclear error without CAP_SYS_PTRACE: $(cat "$work/dump.out")"
echo "PASS systemd unit: capabilities $caps"
