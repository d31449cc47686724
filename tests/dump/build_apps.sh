#!/usr/bin/env bash
# Builds the programs of the runtime dump tests into OUT: the JVM's Sleepers class. Run by the
# dump_test_apps fixture (vg_add_apps_fixture): once per run, shared by both build trees.
#   build_apps.sh OUT
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rm -rf "$1/jvm"
javac -d "$1/jvm" "$here/apps/Sleepers.java"
