#!/usr/bin/env bash
# Builds the .NET test app (offline: a console app needs no NuGet package) and the checkers
# (ClrMD and NETCore.Client restored from NuGet) into OUT. Run by the dotnet_apps fixture through
# tests/lib/apps_fixture.sh (vg_add_apps_fixture), which skips without dotnet, serializes runs
# and does nothing when the stamp of the sources matches.
#   build.sh OUT
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out=$1
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# Build from copies so the source tree never gets obj/ or bin/.
build() { # NAME PROJECT_DIR [dotnet build options]
    local name=$1 src=$2
    shift 2
    rm -rf "$out/src/$name" "$out/$name"
    mkdir -p "$out/src/$name"
    cp "$src"/*.cs "$src"/*.csproj "$out/src/$name/"
    dotnet build "$out/src/$name" -c Release -o "$out/$name" --nologo -v quiet -clp:ErrorsOnly "$@"
}
# The app builds with an empty folder as its only package source: it stays offline-buildable.
mkdir -p "$out/src/no-packages"
build app "$here/app" -p:RestoreSources="$out/src/no-packages"
build checkers "$here/checkers"
# Readable by other users: tests run the app as nobody.
chmod -R a+rX "$out"
chmod a+rx "$(dirname "$out")"
