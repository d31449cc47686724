#!/usr/bin/env bash
# The body of every runtime test-program fixture (vg_add_apps_fixture, tests/CMakeLists.txt):
# builds the programs once per run into a directory both build trees share, and does nothing when
# they are up to date.
#   apps_fixture.sh OUT SCRIPT [--requires PROGRAM...] [--sources PATH...]
# Exits 77 (skipped; the tests that need OUT then skip too) when a required program is missing.
# Up to date means OUT/stamp holds the hash of SCRIPT, of every file under the sources (path and
# content) and of the required programs' versions. Otherwise it runs `SCRIPT OUT` (which builds
# into OUT, never into the source tree) and writes the stamp once that succeeded. Runs for the
# same OUT wait for each other (a lock on OUT/.lock).
set -euo pipefail
(($# >= 2)) || { echo "usage: apps_fixture.sh OUT SCRIPT [--requires PROGRAM...] [--sources PATH...]" >&2; exit 2; }
out=$1
script=$2
shift 2
requires=()
sources=()
list=
for a in "$@"; do
    case $a in
    --requires) list=requires ;;
    --sources) list=sources ;;
    *)
        [[ -n $list ]] || { echo "apps_fixture.sh: $a: --requires or --sources first" >&2; exit 2; }
        [[ $list == requires ]] && requires+=("$a") || sources+=("$a")
        ;;
    esac
done
for p in "${requires[@]+"${requires[@]}"}"; do
    command -v "$p" >/dev/null || { echo "SKIP: $p not found: the programs in $out are not built"; exit 77; }
done

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

stamp=$({
    sha256sum "$script"
    if ((${#sources[@]})); then
        find "${sources[@]}" \( -name bin -o -name obj -o -name node_modules -o -name __pycache__ \) \
            -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum
    fi
    for p in "${requires[@]+"${requires[@]}"}"; do "$p" --version 2>&1; done
} | sha256sum | cut -d' ' -f1)
if [[ -f $out/stamp && $(cat "$out/stamp") == "$stamp" ]]; then
    echo "up to date: $out (stamp $stamp)"
    exit 0
fi
rm -f "$out/stamp"
rc=0
if [[ -x $script ]]; then "$script" "$out" || rc=$?; else bash "$script" "$out" || rc=$?; fi
if ((rc)); then
    echo "$script failed (exit $rc)"
    exit "$rc"
fi
echo "$stamp" >"$out/stamp"
echo "built: $out (stamp $stamp)"
