#!/usr/bin/env bash
# Builds JwtGen (System.IdentityModel.Tokens.Jwt from NuGet) into OUT/bin. Run through
# vg_add_apps_fixture (tests/CMakeLists.txt), which skips without dotnet, serializes runs and
# does nothing when OUT is up to date.
#   build.sh OUT
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out=$1
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# Build from a copy so the source tree never gets obj/ or bin/.
rm -rf "$out/src" "$out/bin"
mkdir -p "$out/src"
cp "$here/Program.cs" "$here/JwtGen.csproj" "$out/src/"
dotnet build "$out/src" -c Release -o "$out/bin" --nologo -v quiet -clp:ErrorsOnly
