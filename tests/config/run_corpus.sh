#!/usr/bin/env bash
# Runs `vigil check` over tests/data/config/{valid,invalid}/CASE directories.
# An invalid case holds its config files plus `expected` (the exact stderr, paths relative to
# the case directory, run as `vigil check --config-dir .`) and must exit 1. A valid case must
# exit 0; when it has an `expected` file (its warnings), stderr must match it too.
# Each case runs in a copy without `expected` (vigil reports files it does not read).
# A case may hold `env`: NAME=VALUE lines set for the run (environment-variable configuration).
set -uo pipefail
vigil="$1"
data="$2"
fail=0
count=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run_case() { # dir -> sets out, rc
  local dir="$1" envs=()
  rm -rf "$work/case" && mkdir "$work/case"
  (cd "$dir" && find . -mindepth 1 -maxdepth 1 ! -name expected ! -name env -exec cp -a {} "$work/case/" \;)
  if [[ -f "$dir/env" ]]; then
    while IFS= read -r line; do [[ -n "$line" ]] && envs+=("$line"); done <"$dir/env"
  fi
  out=$(cd "$work/case" && env "${envs[@]}" "$vigil" check --config-dir . 2>&1 >/dev/null)
  rc=$?
}

for dir in "$data"/invalid/*/; do
  name=$(basename "$dir")
  count=$((count + 1))
  run_case "$dir"
  expected=$(cat "$dir/expected")
  if [[ $rc -ne 1 ]]; then
    echo "FAIL invalid/$name: exit $rc, expected 1"; fail=1
  fi
  if [[ "$out" != "$expected" ]]; then
    echo "FAIL invalid/$name: diagnostics differ"
    diff <(echo "$expected") <(echo "$out") | sed 's/^/    /'
    fail=1
  fi
done
for dir in "$data"/valid/*/; do
  name=$(basename "$dir")
  count=$((count + 1))
  run_case "$dir"
  if [[ $rc -ne 0 ]]; then
    echo "FAIL valid/$name: exit $rc"; echo "$out" | sed 's/^/    /'; fail=1
  elif [[ -f "$dir/expected" && "$out" != "$(cat "$dir/expected")" ]]; then
    echo "FAIL valid/$name: warnings differ"
    diff <(cat "$dir/expected") <(echo "$out") | sed 's/^/    /'
    fail=1
  fi
done
echo "config corpus: $count cases"
exit $fail
