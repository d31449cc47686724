#!/usr/bin/env bash
# CTest fixture: builds JwtGen (System.IdentityModel.Tokens.Jwt from NuGet) into OUT, once per
# run; a no-op when the stamp (hash of the sources, this script and the SDK version) matches.
#   build.sh OUT          (OUT is normally $VG_TEST_APPS_DIR/jwtgen)
# Without a dotnet SDK it exits 77 (skipped).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out=$1
if ! command -v dotnet >/dev/null; then
    echo "dotnet SDK not found: the JWT interoperability test is skipped"
    exit 77
fi
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
stamp=$( (cd "$here" && sha256sum Program.cs JwtGen.csproj build.sh; dotnet --version) | sha256sum | cut -d' ' -f1)
if [[ -f "$out/stamp" && "$(cat "$out/stamp")" == "$stamp" && -f "$out/bin/JwtGen.dll" ]]; then
    echo "JwtGen up to date ($out)"
    exit 0
fi
rm -f "$out/stamp"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# Build from a copy so the source tree never gets obj/ or bin/.
rm -rf "$out/src" "$out/bin"
mkdir -p "$out/src"
cp "$here/Program.cs" "$here/JwtGen.csproj" "$out/src/"
dotnet build "$out/src" -c Release -o "$out/bin" --nologo -v quiet -clp:ErrorsOnly
echo "$stamp" >"$out/stamp"
echo "JwtGen built in $out"
