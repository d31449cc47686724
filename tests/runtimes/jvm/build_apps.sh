#!/usr/bin/env bash
# Compiles the JVM test programs (apps/*.java) and the HPROF checker (checker/HprofCheck.java,
# against VisualVM's heap library from Debian's visualvm package) into OUT, once per run: a no-op
# when OUT/stamp matches the hash of the sources, javac's version and the library. Both build
# trees share OUT; a lock keeps two runs from compiling at once. Without javac it builds nothing
# and says so (the tests then skip); a missing heap library only leaves the checker out.
#   build_apps.sh OUT
set -euo pipefail
out=$1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! command -v javac >/dev/null; then
    echo "build_apps: no javac: JVM tests will be skipped"
    exit 0
fi
heapjar=/usr/share/visualvm/visualvm/modules/org-graalvm-visualvm-lib-jfluid-heap.jar
if [[ ! -f $heapjar ]]; then
    heapjar=$(dpkg -L visualvm 2>/dev/null | grep -m1 'jfluid-heap\.jar$' || true)
fi
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9
stamp=$( (cat "$here"/apps/*.java "$here"/checker/*.java; javac -version 2>&1; echo "$heapjar") |
    sha256sum | cut -d' ' -f1)
if [[ -f $out/stamp && $(cat "$out/stamp") == "$stamp" ]]; then
    echo "build_apps: $out is up to date"
    exit 0
fi
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
javac -d "$tmp" "$here"/apps/*.java
if [[ -n $heapjar && -f $heapjar ]]; then
    mkdir -p "$tmp/checker"
    javac -d "$tmp/checker" -cp "$heapjar" "$here"/checker/HprofCheck.java
    echo "$heapjar" >"$tmp/checker/heapjar"
else
    echo "build_apps: VisualVM's heap library not found (install visualvm): no HPROF checker"
fi
# Readable by the JVMs the tests run as another user.
chmod -R a+rX "$tmp"
echo "$stamp" >"$tmp/stamp"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "build_apps: compiled into $out"
