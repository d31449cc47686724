#!/usr/bin/env bash
# CTest fixture: builds the .NET test app (offline: a console app needs no NuGet package) and the
# checkers (ClrMD and NETCore.Client restored from NuGet) into OUT, once per run. A no-op when the
# stamp (hash of the sources, this script and the SDK version) matches. Both build trees share OUT.
#   build.sh OUT          (OUT is normally $VG_TEST_APPS_DIR/dotnet)
# Without a dotnet SDK it exits 77 (skipped) and the tests that need OUT skip too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out=$1
if ! command -v dotnet >/dev/null; then
    echo "dotnet SDK not found: the .NET tests are skipped"
    exit 77
fi
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

stamp=$( (cd "$here" && find app checkers build.sh -type f \( -name '*.cs' -o -name '*.csproj' -o -name '*.sh' \) \
          -print0 | sort -z | xargs -0 sha256sum; dotnet --version) | sha256sum | cut -d' ' -f1)
if [[ -f "$out/stamp" && "$(cat "$out/stamp")" == "$stamp" && -x "$out/app/VigilTestApp" &&
      -f "$out/checkers/VigilDotnetChecker.dll" ]]; then
    echo "dotnet test apps up to date ($out)"
    exit 0
fi
rm -f "$out/stamp"
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
echo "$stamp" >"$out/stamp"
echo "dotnet test apps built in $out"
