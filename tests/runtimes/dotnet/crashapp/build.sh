#!/usr/bin/env bash
# Builds the crashing .NET program into OUT/crashapp (apphost OUT/crashapp/crashapp). Run by the
# crash_dotnet_test_apps fixture (vg_add_apps_fixture): once per run, shared by both build trees.
#   build.sh OUT
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"
rm -rf "$out/crashapp" "$out/obj"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
dotnet build "$here/crashapp.csproj" -c Release -o "$out/crashapp" \
  -p:BaseIntermediateOutputPath="$out/obj/" -p:MSBuildProjectExtensionsPath="$out/obj/" -nologo -v q
