#!/usr/bin/env bash
# README command 2 and .ci/run: install what is needed (test servers included), build with
# warnings as errors, run the whole suite through CTest, then again in the ASan+UBSan build.
# Idempotent. Options: --no-asan (skip the sanitizer pass), -L LABEL / -R REGEX (passed to ctest).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
asan=1
ctest_args=()
while (($#)); do
  case "$1" in
    --no-asan) asan=0 ;;
    -L|-R|-E|-LE) ctest_args+=("$1" "$2"); shift ;;
    *) echo "usage: scripts/test.sh [--no-asan] [-L label] [-R regex]" >&2; exit 2 ;;
  esac
  shift
done

scripts/install-deps.sh --test
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (warnings as errors)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVG_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
echo "== test"
ctest --test-dir build --output-on-failure -j"$jobs" "${ctest_args[@]+"${ctest_args[@]}"}"

if ((asan)); then
  echo "== build (ASan + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVG_WERROR=ON -DVG_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  echo "== test (ASan + UBSan)"
  # Benchmarks-style long tests carry the label 'slow' and run only in the plain build.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow \
    "${ctest_args[@]+"${ctest_args[@]}"}"
fi
echo "== all tests passed"
