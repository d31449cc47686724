#!/usr/bin/env bash
# Fixture: records real traces from a real .NET process for the nettrace tests and benchmark.
#   traces.sh APPS_DIR
# Builds tests/runtimes/dotnet/tracegen (offline: SDK frameworks only) and tracecheck (TraceEvent
# from NuGet), installs the dotnet-trace tool into APPS_DIR/tools, runs tracegen with every
# workload and records one trace per kind of data into APPS_DIR/traces with dotnet-trace. A no-op
# when the stamp (hash of the sources and of this script) matches. Exit 77 without dotnet.
set -euo pipefail
apps="${1:?usage: traces.sh APPS_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/../runtimes/dotnet" && pwd)"
command -v dotnet >/dev/null || { echo "traces.sh: no dotnet on PATH: skipped"; exit 77; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export HOME="${HOME:-$apps/.home}"
mkdir -p "$apps"
exec 9>"$apps/.nettrace.lock"
flock 9 # both build trees share APPS_DIR: one recording at a time

stamp=$(cat "$0" "$src"/tracegen/*.cs "$src"/tracegen/*.csproj "$src"/tracecheck/*.cs \
          "$src"/tracecheck/*.csproj | sha256sum | cut -d' ' -f1)
out="$apps/traces"
if [[ -f "$out/.stamp" && "$(cat "$out/.stamp")" == "$stamp" ]]; then
  echo "traces.sh: traces up to date in $out"
  exit 0
fi

# dotnet-trace as a tool installed into the apps directory (idempotent).
tool="$apps/tools/dotnet-trace"
want=10.0.750501
if ! [[ -x "$tool" ]] || ! "$tool" --version 2>/dev/null | grep -q "^${want%.*}"; then
  dotnet tool uninstall dotnet-trace --tool-path "$apps/tools" >/dev/null 2>&1 || true
  dotnet tool install dotnet-trace --tool-path "$apps/tools" --version "$want"
fi

for app in tracegen tracecheck; do
  dotnet build "$src/$app" -c Release -nologo -v q -o "$apps/$app" \
    --artifacts-path "$apps/obj/$app" >"$apps/$app.build.log" 2>&1 ||
    { cat "$apps/$app.build.log"; exit 1; }
done

rm -rf "$out.new"
mkdir -p "$out.new"
log="$out.new/record.log"
dotnet "$apps/tracegen/tracegen.dll" cpu alloc throw meter log web --seconds 120 \
  </dev/null >"$out.new/tracegen.out" 2>&1 &
gen=$!
trap 'kill $gen 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  grep -q '^ready' "$out.new/tracegen.out" && break
  kill -0 $gen 2>/dev/null || { cat "$out.new/tracegen.out"; exit 1; }
  sleep 0.1
done
pid=$(awk '/^ready/ {print $2}' "$out.new/tracegen.out")
[[ -n "$pid" ]] || { echo "traces.sh: tracegen did not start"; cat "$out.new/tracegen.out"; exit 1; }

record() { # NAME DURATION_S PROVIDERS [dotnet-trace options...]
  local name=$1 secs=$2 providers=$3
  shift 3
  local t0=$SECONDS
  "$tool" collect -p "$pid" --providers "$providers" --duration "00:00:00:0$secs" \
    -o "$out.new/$name.nettrace" "$@" >>"$log" 2>&1
  [[ -s "$out.new/$name.nettrace" ]] || { echo "traces.sh: no $name trace"; cat "$log"; exit 1; }
  echo "traces.sh: $name: $(stat -c %s "$out.new/$name.nettrace") bytes in $((SECONDS - t0)) s"
}
# dotnet-monitor's filter for the AspNet* triggers (HttpRequestSourceConfiguration).
aspnet=$'Microsoft.AspNetCore/Microsoft.AspNetCore.Hosting.HttpRequestIn.Start@Activity1Start:-Request.Scheme;Request.Host;Request.PathBase;Request.QueryString;Request.Path;Request.Method;ActivityStartTime=*Activity.StartTimeUtc.Ticks;ActivityParentId=*Activity.ParentId;ActivityId=*Activity.Id;ActivitySpanId=*Activity.SpanId;ActivityTraceId=*Activity.TraceId;ActivityParentSpanId=*Activity.ParentSpanId;ActivityIdFormat=*Activity.IdFormat\r\nMicrosoft.AspNetCore/Microsoft.AspNetCore.Hosting.HttpRequestIn.Stop@Activity1Stop:-ActivityId=*Activity.Id;Request.Path;Response.StatusCode;ActivityDuration=*Activity.Duration.Ticks\r\n'
# The hosting activities first: once a Microsoft-Extensions-Logging session has run in the process,
# ASP.NET Core (10.0.12) no longer sends them to later DiagnosticSource sessions.
record aspnet 4 "Microsoft-Diagnostics-DiagnosticSource:0x3:5:FilterAndPayloadSpecs=\"$aspnet\"" --rundown false
record counters 4 'System.Runtime:0:5:EventCounterIntervalSec=1,Microsoft.AspNetCore.Hosting:0:5:EventCounterIntervalSec=1' --rundown false
record metrics 4 'System.Diagnostics.Metrics:0x3:5:SessionId=vigil;Metrics=Vigil.TraceGen' --rundown false
record runtime-meter 3 'System.Diagnostics.Metrics:0x3:5:SessionId=vigil;Metrics=System.Runtime' --rundown false
record logs 3 'Microsoft-Extensions-Logging:0xC:4' --rundown false
# CPU sampling, GC and exception events with stacks, and the rundown at the end: the big one.
record cpu 5 'Microsoft-DotNETCore-SampleProfiler:0:5,Microsoft-Windows-DotNETRuntime:0x8001:5'

kill $gen 2>/dev/null || true
wait $gen 2>/dev/null || true
trap - EXIT
echo "$stamp" >"$out.new/.stamp"
rm -rf "$out"
mv "$out.new" "$out"
ls -l "$out"
