#!/usr/bin/env bash
# Builds the JVM tests' programs into OUT: apps/*.java, and the HPROF checker
# (checker/HprofCheck.java) against VisualVM's heap library from Debian's visualvm package, with
# OUT/checker/heapjar naming the library. Run by the jvm_test_apps fixture (vg_add_apps_fixture):
# once per run, shared by both build trees. Without the library only the checker is left out
# (the tests that need it skip).
#   build_apps.sh OUT
set -euo pipefail
out=$1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
heapjar=/usr/share/visualvm/visualvm/modules/org-graalvm-visualvm-lib-jfluid-heap.jar
if [[ ! -f $heapjar ]]; then
    heapjar=$(dpkg -L visualvm 2>/dev/null | grep -m1 'jfluid-heap\.jar$' || true)
fi
rm -rf "$out"/*.class "$out/checker"
javac -d "$out" "$here"/apps/*.java
if [[ -n $heapjar && -f $heapjar ]]; then
    javac -d "$out/checker" -cp "$heapjar" "$here"/checker/HprofCheck.java
    echo "$heapjar" >"$out/checker/heapjar"
else
    echo "build_apps: VisualVM's heap library not found (install visualvm): no HPROF checker"
fi
# Readable by the JVMs the tests run as another user.
chmod -R a+rX "$out"
