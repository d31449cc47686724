#!/usr/bin/env bash
# Runs `vigil check` over tests/data/config/{valid,invalid}/CASE directories.
# An invalid case holds its config files plus `expected` (the exact stderr, paths relative to
# the case directory, run as `vigil check --config-dir .`) and must exit 1.
set -uo pipefail
vigil="$1"
data="$2"
fail=0
count=0
for dir in "$data"/invalid/*/; do
  name=$(basename "$dir")
  count=$((count + 1))
  actual=$(cd "$dir" && "$vigil" check --config-dir . 2>&1 >/dev/null)
  rc=$?
  expected=$(cat "$dir/expected")
  if [[ $rc -ne 1 ]]; then
    echo "FAIL invalid/$name: exit $rc, expected 1"; fail=1
  fi
  if [[ "$actual" != "$expected" ]]; then
    echo "FAIL invalid/$name: diagnostics differ"
    diff <(echo "$expected") <(echo "$actual") | sed 's/^/    /'
    fail=1
  fi
done
for dir in "$data"/valid/*/; do
  name=$(basename "$dir")
  count=$((count + 1))
  if ! out=$(cd "$dir" && "$vigil" check --config-dir . 2>&1); then
    echo "FAIL valid/$name:"; echo "$out" | sed 's/^/    /'; fail=1
  fi
done
echo "config corpus: $count cases"
exit $fail
