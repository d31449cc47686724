#!/usr/bin/env bash
# Runs a command with some programs hidden from PATH, to see the tests that need them reported as
# skipped (exit 77) rather than passed or failed:
#   tests/lib/without.sh node gdb -- ctest --test-dir build -R 'runtime|gdb'
# Each PATH directory holding a hidden program is replaced by a shadow directory of symlinks to
# everything else in it (under a temporary directory removed afterwards).
set -euo pipefail
hide=()
while (($#)) && [[ $1 != -- ]]; do hide+=("$1"); shift; done
(($# > 1)) || { echo "usage: without.sh PROGRAM... -- COMMAND [ARG...]" >&2; exit 2; }
shift
shadow=$(mktemp -d)
trap 'rm -rf "$shadow"' EXIT
path=()
IFS=: read -ra dirs <<<"$PATH"
for i in "${!dirs[@]}"; do
  d=${dirs[$i]}
  hit=0
  for p in "${hide[@]}"; do [[ -e $d/$p ]] && hit=1; done
  if ((hit)); then
    mkdir "$shadow/$i"
    for f in "$d"/*; do
      n=${f##*/}
      skip=0
      for p in "${hide[@]}"; do [[ $n == "$p" ]] && skip=1; done
      ((skip)) || ln -s "$f" "$shadow/$i/$n"
    done
    d=$shadow/$i
  fi
  path+=("$d")
done
PATH=$(IFS=:; echo "${path[*]}") "$@"
