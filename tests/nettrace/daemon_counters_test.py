#!/usr/bin/env python3
"""`vigil run` with the .NET runtime triggers and CollectTrace against a real .NET 10 process
(tracegen):

    daemon_counters_test.py SCENARIO --apps APPS_DIR [--dump NETTRACE_DUMP]   (vg_add_py_test)

counters:
- EventCounter (System.Runtime cpu-usage) and GCHeapSize fire on a process that burns CPU and
  keeps ~64 MB of heap, after their sliding window; ThreadpoolQueueLength above a huge threshold
  does not fire;
- the three rules share one EventPipe session in the target (its Unix socket count rises by one);
- /metrics shows what Metrics lists (IncludeDefaultProviders off, Providers with CounterNames, a
  Meter's instrument no rule reads), nothing else the session reads;
- the session is gone from the target when the rules are removed (reload) and when vigil stops.

trace:
- CollectTrace (Profile Metrics; explicit Providers with arguments and rundown) streams each
  trace into the filesystem egress under dotnet-monitor's name; both are complete and read by
  TraceEvent (tracecheck) and nettrace_dump alike, with the expected events; no session is left
  in the target; an unsupported profile fails the action with a clear reason; a StoppingEvent
  with a PayloadFilter ends a one-minute trace at its first match (complete, read by TraceEvent),
  one whose filter names a field the event lacks runs its Duration.

meters:
- EventMeter on tracegen's Meter: a histogram's 95th percentile and a counter's rate fire after
  their window, a gauge and the 50th percentile within their thresholds do not; the untagged
  gauge is in /metrics under dotnet-monitor's name; one session; none left after vigil stops.

aspnet:
- AspNetRequestCount (excluding /health), AspNetResponseStatus (500s) and AspNetRequestDuration
  (/slow over 40 ms) fire on tracegen's own loopback load; rules on paths or statuses that never
  occur (500 on /health, /api/**) do not.

logs:
- CollectLogs into the filesystem egress in the three formats, filters honoured, records in
  dotnet-monitor's shapes (parsed).

livemetrics:
- CollectLiveMetrics into the filesystem egress: dotnet-monitor's JSON sequence, only the asked
  counters and meters (histogram percentiles, counter rates).

trace_cloud:
- CollectTrace into s3rver and Azurite (fixture egress_servers); both traces downloaded and read
  fully by TraceEvent.

cpuusage:
- CPUUsage fires on a CPU-burning .NET process reading System.Runtime's cpu-usage, on one whose
  diagnostic port is off, on a native process and on a Node process (its inspector never opened)
  reading /proc; /collectionrules and the debug log say which.

intervals:
- GlobalCounter.Providers.System.Runtime.IntervalSeconds 1 (global 5): System.Runtime's counters
  change about every second in /metrics, Microsoft.AspNetCore.Hosting's about every five.

eventcount:
- EventCount on exception-count fires on a process throwing 20 exceptions a second; on
  System.Runtime/gen-2-gc-count with an unreachable count it does not.

Built on tests/lib/vigil_test.py and tests/engine/daemon_test.py's Env (temp dir, daemon, API,
fires log); VIGIL and VG_BINARY_DIR come from CTest's environment."""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine"))
import api_metrics  # noqa: E402  (its strict exposition parser)
import daemon_test as dt  # noqa: E402
import egress_servers  # noqa: E402
import vigil_test as vt  # noqa: E402


def unix_sockets(pid):
    """Unix sockets the process holds: the diagnostic listener plus one per EventPipe session."""
    try:
        with open(f"/proc/{pid}/net/unix") as f:
            inodes = {line.split()[6] for line in list(f)[1:] if len(line.split()) > 6}
        n = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                n += 1
        return n
    except OSError:
        return -1


def paths(out):
    """{rule: EgressPath} from the lines the rules' Execute actions appended to out."""
    try:
        with open(out) as f:
            return dict(line.split() for line in f if line.strip())
    except FileNotFoundError:
        return {}


def promtool_check(body):
    """promtool (Prometheus's own parser and linter) reads the exposition, where it is installed
    (Debian package prometheus); returns whether it ran."""
    promtool = shutil.which("promtool")
    if promtool:
        cp = subprocess.run([promtool, "check", "metrics"], input=body.encode(),
                            capture_output=True, timeout=60)
        # dotnet-monitor's names break promtool's naming lint (systemruntime_exception_count,
        # ..._time_in_jit_ms): dashboards expect them so. Anything else is a real problem.
        lint = ('should not have "_count" suffix', "should not contain abbreviated units")
        other = [l for l in (cp.stdout + cp.stderr).decode().splitlines()
                 if l.strip() and not any(x in l for x in lint)]
        if other:
            vt.fail(f"promtool check metrics: {other}")
    return bool(promtool)


def sc_counters(a, env, p, base):
    rules = {
        "HighCpu": env.rule("HighCpu", {"Type": "EventCounter", "Settings": {
            "ProviderName": "System.Runtime", "CounterName": "cpu-usage",
            "GreaterThan": 5, "SlidingWindowDuration": "00:00:06"}},
            limits={"ActionCount": 1}),
        "Heap": env.rule("Heap", {"Type": "GCHeapSize", "Settings": {
            "GreaterThan": 1, "SlidingWindowDuration": "00:00:05"}},
            limits={"ActionCount": 1}),
        "Queue": env.rule("Queue", {"Type": "ThreadpoolQueueLength", "Settings": {
            "GreaterThan": 1000000, "SlidingWindowDuration": "00:00:01"}}),
    }
    cfg = env.settings()
    cfg["Server"]["MetricsEnabled"] = True
    # never the default metrics port (52325): tests run in parallel; /metrics is on the API too
    cfg["Server"]["MetricsUrls"] = [f"http://127.0.0.1:{vt.free_port()}"]
    # What /metrics shows: these System.Runtime counters (not the default providers' others),
    # and a gauge of tracegen's Meter, which no rule reads (the session reads it for /metrics).
    cfg["Metrics"] = {"IncludeDefaultProviders": False, "Providers": [
        {"ProviderName": "System.Runtime", "CounterNames": [
            "cpu-usage", "gc-heap-size", "working-set", "threadpool-queue-length"]}],
        "Meters": [{"MeterName": "Vigil.TraceGen", "InstrumentNames": ["temperature"]}]}
    cfg["CollectionRules"] = rules
    env.write("rules.yaml", cfg)
    t_start = time.time()
    env.start_daemon()
    vt.wait_for("one session in the target", lambda: unix_sockets(p.pid) == base + 1, 20)
    fires = vt.wait_for("HighCpu and Heap to fire",
                        lambda: len({f[0] for f in env.fire_lines()} & {"HighCpu", "Heap"}) == 2
                        and env.fire_lines(), 60, 0.2)
    for name, window in (("HighCpu", 6), ("Heap", 5)):
        t = float(next(f for f in fires if f[0] == name)[3])
        # the first counters come one interval (5 s) after the session starts
        if t < t_start + window:
            vt.fail(f"{name} fired {t - t_start:.1f}s after start, before its {window}s window")
        print(f"{name} fired {t - t_start:.1f}s after vigil started")
    if env.fire_lines("Queue"):
        vt.fail("ThreadpoolQueueLength > 1000000 fired")
    if unix_sockets(p.pid) != base + 1:
        vt.fail(f"expected one shared session, the target holds {unix_sockets(p.pid) - base}")
    # The session's counters in /metrics under dotnet-monitor's names, with the process labels.
    def scraped():
        body = env.get("/metrics")
        want = [f'systemruntime_cpu_usage_ratio{{pid="{p.pid}",',
                f'systemruntime_gc_heap_size_bytes{{pid="{p.pid}",',
                f'systemruntime_working_set_bytes{{pid="{p.pid}",',
                "# TYPE systemruntime_threadpool_queue_length gauge",
                f'vigiltracegen_temperature_Cel{{pid="{p.pid}",']
        return body if all(w in body for w in want) else None
    body = vt.wait_for("the .NET counters in /metrics", scraped, 20)
    # the session has them (tracegen serves requests, throws, allocates), /metrics does not show
    # them: not in Metrics
    for unlisted in ("systemruntime_exception_count", "systemruntime_gen_0_gc_count",
                     "microsoftaspnetcorehosting_", "vigiltracegen_queue_depth",
                     "vigiltracegen_bytes_seen"):
        if unlisted in body:
            vt.fail(f"{unlisted} in /metrics, though Metrics does not list it")
    heap = [float(l.split()[-1]) for l in body.splitlines()
            if l.startswith(f'systemruntime_gc_heap_size_bytes{{pid="{p.pid}"')]
    if not heap or heap[0] < 1e6:  # MB scaled to bytes, as dotnet-monitor does
        vt.fail(f"gc heap size in /metrics: {heap}")
    promtool = promtool_check(body)
    print(f"/metrics: gc heap {heap[0]:.0f} bytes" + (", promtool ok" if promtool else ""))
    st = env.rule_state("Queue", p.pid)
    if st.get("state") != "Running":
        vt.fail(f"Queue should be running (waiting), got {st}")

    # Rules removed: the session goes away.
    cfg["CollectionRules"] = {}
    env.write("rules.yaml", cfg)
    vt.wait_for("the session to end after the rules went away",
                lambda: unix_sockets(p.pid) == base, 30)
    print("rules removed: no session left in the target")

    # Back, then vigil stops: the session goes away too.
    cfg["CollectionRules"] = {"Queue": rules["Queue"]}
    env.write("rules.yaml", cfg)
    vt.wait_for("a session again", lambda: unix_sockets(p.pid) == base + 1, 30)
    env.vigil.stop()
    vt.wait_for("the session to end after vigil stopped",
                lambda: unix_sockets(p.pid) == base, 30)
    print("vigil stopped: no session left in the target")


def read_trace(a, path, want, name=""):
    """path is a complete nettrace that TraceEvent (tracecheck) and vigil's parser
    (nettrace_dump) read alike, with a line starting with each of want."""
    what = f"{name}: " if name else ""
    check = os.path.join(a.apps, "tracecheck", "tracecheck.dll")
    ref = subprocess.run(["dotnet", check, "--events", "--counters", path], capture_output=True,
                         text=True)
    if ref.returncode != 0:
        vt.fail(f"{what}TraceEvent rejects {path}: {ref.stderr}")
    mine = subprocess.run([a.dump, "--events", "--counters", path], capture_output=True,
                          text=True)
    if mine.returncode != 0:
        vt.fail(f"{what}nettrace_dump rejects {path}: {mine.stderr}")
    if sorted(ref.stdout.splitlines()) != sorted(mine.stdout.splitlines()):
        vt.fail(f"{what}vigil and TraceEvent read {path} differently")
    lines = ref.stdout.splitlines()
    for w in want:
        if not any(l.startswith(w) for l in lines):
            vt.fail(f"{what}no {w!r} in {path}")
    print(f"{what}{os.path.getsize(path)} bytes, {lines[0]}, complete, read by TraceEvent")


def sc_trace(a, env, p, base):
    arts = os.path.join(env.dir, "artifacts")
    out = os.path.join(env.dir, "paths.log")
    cfg = env.settings()
    cfg["Egress"] = {"FileSystem": {"fs": {"DirectoryPath": arts}}}

    def rule(name, settings):
        return env.rule(name, {"Type": "Startup"}, actions=[
            {"Name": "Trace", "Type": "CollectTrace", "Settings": dict(settings, Egress="fs")},
            {"Name": "Note", "Type": "Execute", "Settings": {
                "Path": "/bin/sh", "Arguments": "-c " + shlex.quote(
                    f"echo {name} $(Actions.Trace.EgressPath) >> {out}")}}])

    cfg["CollectionRules"] = {
        # Two traces started in the same millisecond get the same default name (and the
        # FileSystem egress would overwrite one with the other): this one names its own.
        "Metrics": rule("Metrics", {"Profile": "Metrics", "Duration": "00:00:12",
                                    "RequestRundown": False, "ArtifactName": "metrics.nettrace"}),
        "Custom": rule("Custom", {"Providers": [
            {"Name": "Microsoft-DotNETCore-SampleProfiler", "EventLevel": "Informational"},
            {"Name": "System.Runtime", "Keywords": "0x0", "EventLevel": "Verbose",
             "Arguments": {"EventCounterIntervalSec": "1"}}], "Duration": "00:00:03"}),
        "Gc": rule("Gc", {"Profile": "GcCollect", "Duration": "00:00:01"}),
        # StoppingEvent: the first gauge value of the temperature instrument (published every
        # second) ends a one-minute trace; a filter on a field EventCounters lacks never matches
        "StopEv": rule("StopEv", {"Providers": [
            {"Name": "System.Diagnostics.Metrics", "Keywords": "0x3", "EventLevel": "Informational",
             "Arguments": {"SessionId": "vigil-stop", "Metrics": "Vigil.TraceGen",
                           "RefreshInterval": "1"}}],
            "RequestRundown": False, "Duration": "00:01:00", "ArtifactName": "stopev.nettrace",
            "StoppingEvent": {"ProviderName": "System.Diagnostics.Metrics",
                              "EventName": "GaugeValuePublished",
                              "PayloadFilter": {"instrumentName": "temperature"}}}),
        "NoMatch": rule("NoMatch", {"Providers": [
            {"Name": "System.Runtime", "Arguments": {"EventCounterIntervalSec": "1"}}],
            "RequestRundown": False, "Duration": "00:00:04", "ArtifactName": "nomatch.nettrace",
            "StoppingEvent": {"ProviderName": "System.Runtime", "EventName": "EventCounters",
                              "PayloadFilter": {"Name": "cpu-usage"}}}),
    }
    env.write("rules.yaml", cfg)
    t0 = time.time()
    env.start_daemon()
    stopev = vt.wait_for("the StoppingEvent trace", lambda: paths(out).get("StopEv"), 40, 0.2)
    took = time.time() - t0
    ref = subprocess.run(["dotnet", os.path.join(a.apps, "tracecheck", "tracecheck.dll"),
                          "--metrics", stopev], capture_output=True, text=True)
    if ref.returncode != 0 or "metric gauge Vigil.TraceGen temperature" not in ref.stdout:
        vt.fail(f"StopEv: TraceEvent: rc {ref.returncode} {ref.stderr} {ref.stdout[:300]}")
    print(f"StopEv: stopped by its StoppingEvent {took:.1f}s after vigil started "
          "(Duration 60 s), complete, read by TraceEvent")
    got = vt.wait_for("all traces", lambda: len(paths(out)) == 4 and paths(out), 60, 0.2)
    nomatch = got.pop("NoMatch")
    got.pop("StopEv")
    if subprocess.run(["dotnet", os.path.join(a.apps, "tracecheck", "tracecheck.dll"), nomatch],
                      capture_output=True).returncode != 0:
        vt.fail(f"NoMatch: TraceEvent rejects {nomatch}")
    log = open(env.vigil.log_path, errors="replace").read()
    if "StoppingEvent System.Runtime/EventCounters: the event lacks a PayloadFilter field" \
            not in log or "stopped by StoppingEvent System.Diagnostics.Metrics/Gauge" not in log:
        vt.fail("StoppingEvent log lines missing")
    for name, path in got.items():
        want_name = (rf"\d{{8}}_\d{{6}}_\d{{3}}_{p.pid}\.nettrace" if name == "Custom"
                     else "metrics.nettrace")
        if os.path.dirname(path) != arts or not re.fullmatch(want_name, os.path.basename(path)):
            vt.fail(f"{name}: EgressPath {path!r} is not a dotnet-monitor-named file in {arts}")
        read_trace(a, path, {"Metrics": ["counter System.Runtime cpu-usage ",
                                         "counter Microsoft.AspNetCore.Hosting "],
                             "Custom": ["event Microsoft-DotNETCore-SampleProfiler ",
                                        "counter System.Runtime cpu-usage "]}[name], name)
    vt.wait_for("the Gc rule's failure", lambda: 'trace profile \"GcCollect\" is not supported '
                'yet' in open(env.vigil.log_path, errors="replace").read()
                or "GcCollect" in str(env.rule_state("Gc", p.pid)), 20)
    vt.wait_for("no session left in the target", lambda: unix_sockets(p.pid) == base, 30)
    print("no session left in the target")


def sc_meters(a, env, p, base):
    """EventMeter on tracegen's Meter: a histogram percentile and a counter's rate fire; a gauge
    and another percentile that stay within their thresholds do not."""
    def meter(instrument, **settings):
        return {"Type": "EventMeter", "Settings": dict(
            {"MeterName": "Vigil.TraceGen", "InstrumentName": instrument,
             "SlidingWindowDuration": "00:00:05"}, **settings)}
    cfg = env.settings()
    cfg["Server"]["MetricsEnabled"] = True
    # never the default metrics port (52325): tests run in parallel; /metrics is on the API too
    cfg["Server"]["MetricsUrls"] = [f"http://127.0.0.1:{vt.free_port()}"]
    cfg["Metrics"] = {"Meters": [{"MeterName": "Vigil.TraceGen"}]}
    cfg["CollectionRules"] = {
        "P95": env.rule("P95", meter("work-duration", HistogramPercentile=95, GreaterThan=300),
                        limits={"ActionCount": 1}),
        "Rate": env.rule("Rate", meter("work-items", GreaterThan=10), limits={"ActionCount": 1}),
        "Cold": env.rule("Cold", meter("temperature", LessThan=10)),
        "P50": env.rule("P50", meter("work-duration", HistogramPercentile=50, GreaterThan=300)),
        # a .NET 9+ runtime meter: System.Runtime's instruments (a Meter of the EventSource's name)
        "RtMeter": env.rule("RtMeter", {"Type": "EventMeter", "Settings": {
            "MeterName": "System.Runtime", "InstrumentName": "dotnet.process.memory.working_set",
            "GreaterThan": 1000000, "SlidingWindowDuration": "00:00:05"}},
            limits={"ActionCount": 1}),
    }
    env.write("rules.yaml", cfg)
    t_start = time.time()
    env.start_daemon()
    vt.wait_for("P95, Rate and RtMeter to fire",
                lambda: {f[0] for f in env.fire_lines()} >= {"P95", "Rate", "RtMeter"}, 60, 0.2)
    for name in ("P95", "Rate", "RtMeter"):
        t = float(next(f for f in env.fire_lines(name))[3])
        if t < t_start + 5:
            vt.fail(f"{name} fired {t - t_start:.1f}s after start, before its 5 s window")
        print(f"{name} fired {t - t_start:.1f}s after vigil started")
    body = vt.wait_for("the meter's gauge in /metrics", lambda: (
        b := env.get("/metrics")) and f'vigiltracegen_temperature_Cel{{pid="{p.pid}"' in b and b,
        20)
    # a histogram is a summary with a quantile label per published percentile, and a tagged
    # series carries its tags as labels (dotnet-monitor's exposition)
    own = rf'\{{pid="{p.pid}",name="[^"]*",runtime="dotnet"'
    want = [r"(?m)^# TYPE vigiltracegen_work_duration_ms summary$"]
    want += [rf'(?m)^vigiltracegen_work_duration_ms{own},quantile="{q}"\}} [0-9.e+-]+$'
             for q in ("0.5", "0.95", "0.99")]
    want += [rf'(?m)^vigiltracegen_work_items__item_{own},kind="{k}"\}} [0-9.e+-]+$'
             for k in ("even", "odd")]
    body = vt.wait_for("the histogram's quantiles and the counter's tags in /metrics", lambda: (
        b := env.get("/metrics")) and all(re.search(w, b) for w in want) and b, 20)
    try:
        fams = api_metrics.parse_exposition(body.encode())
    except api_metrics.ParseError as e:
        vt.fail(f"/metrics does not parse: {e}")
    if len(fams["vigiltracegen_work_duration_ms"]["samples"]) != 3:
        vt.fail(f"histogram samples: {fams['vigiltracegen_work_duration_ms']}")
    # tags named as vigil's own labels are renamed, their values escaped (tracegen's bytes-seen)
    seen = fams["vigiltracegen_bytes_seen_By"]["samples"]
    if len(seen) != 1 or seen[0][0].get("exported_name") != 'q"1\\' or \
            seen[0][0].get("exported_pid") != "7" or seen[0][0].get("pid") != str(p.pid):
        vt.fail(f"bytes-seen's tags: {seen}")
    promtool_check(body)
    print("\n".join(l for l in body.splitlines()
                    if l.startswith(("vigiltracegen_work_", "vigiltracegen_bytes_seen"))))
    time.sleep(6)  # a full window more: the other rules must still not fire
    fired = {f[0] for f in env.fire_lines()}
    if fired & {"Cold", "P50"}:
        vt.fail(f"rules within their thresholds fired: {fired}")
    if unix_sockets(p.pid) != base + 1:
        vt.fail(f"expected one shared session, the target holds {unix_sockets(p.pid) - base}")
    print("Cold and P50 did not fire; one session; gauge in /metrics: " +
          next(l for l in body.splitlines() if l.startswith("vigiltracegen_temperature_Cel{")))
    env.vigil.stop()
    vt.wait_for("the session to end after vigil stopped",
                lambda: unix_sockets(p.pid) == base, 30)


def sc_aspnet(a, env, p, base):
    """The AspNet* triggers on tracegen's own loopback load (/ok, /ok, /fail -> 500, /health,
    /slow -> 50 ms, about 40 requests a second, bounded)."""
    def asp(kind, **settings):
        return {"Type": kind, "Settings": dict({"SlidingWindowDuration": "00:00:20"}, **settings)}
    cfg = env.settings()
    cfg["CollectionRules"] = {
        "Count": env.rule("Count", asp("AspNetRequestCount", RequestCount=40,
                                       ExcludePaths=["/health"]), limits={"ActionCount": 1}),
        "Fails": env.rule("Fails", asp("AspNetResponseStatus", StatusCodes=["500-599"],
                                       ResponseCount=5), limits={"ActionCount": 1}),
        "Slow": env.rule("Slow", asp("AspNetRequestDuration", RequestCount=3,
                                     RequestDuration="40ms", IncludePaths=["/slow"]),
                         limits={"ActionCount": 1}),
        "HealthFails": env.rule("HealthFails", asp("AspNetResponseStatus", StatusCodes=["500"],
                                                   ResponseCount=1, IncludePaths=["/health"])),
        "Elsewhere": env.rule("Elsewhere", asp("AspNetRequestCount", RequestCount=1,
                                               IncludePaths=["/api/**/*"])),
    }
    env.write("rules.yaml", cfg)
    env.start_daemon()
    vt.wait_for("Count, Fails and Slow to fire",
                lambda: {f[0] for f in env.fire_lines()} >= {"Count", "Fails", "Slow"}, 60, 0.2)
    time.sleep(5)
    fired = {f[0] for f in env.fire_lines()}
    if fired & {"HealthFails", "Elsewhere"}:
        vt.fail(f"rules whose paths or statuses never occur fired: {fired}")
    print(f"fired: {sorted(fired)}; HealthFails and Elsewhere did not")
    if unix_sockets(p.pid) != base + 1:
        vt.fail(f"expected one shared session, the target holds {unix_sockets(p.pid) - base}")
    env.vigil.stop()
    vt.wait_for("the session to end after vigil stopped",
                lambda: unix_sockets(p.pid) == base, 30)


def sc_eventcount(a, env, p, base):
    """EventCount on .NET counters: tracegen throws about 20 exceptions a second, so
    exception-count rises by 60 within 20 s; gen-2 collections never reach a million."""
    cfg = env.settings()
    cfg["GlobalCounter"] = {"IntervalSeconds": 1}
    cfg["CollectionRules"] = {
        "Throws": env.rule("Throws", {"Type": "EventCount", "Settings": {
            "Counter": "exception-count", "Count": 60, "SlidingWindowDuration": "00:00:20"}},
            limits={"ActionCount": 1}),
        "Gen2": env.rule("Gen2", {"Type": "EventCount", "Settings": {
            "Counter": "System.Runtime/gen-2-gc-count", "Count": 1000000}}),
    }
    env.write("rules.yaml", cfg)
    t_start = time.time()
    env.start_daemon()
    fires = vt.wait_for("Throws to fire", lambda: env.fire_lines("Throws"), 60, 0.2)
    t = float(fires[0][3])
    if t < t_start + 2:  # 60 exceptions take 3 s at 20 a second
        vt.fail(f"Throws fired {t - t_start:.1f}s after start: too early for 60 exceptions")
    print(f"Throws fired {t - t_start:.1f}s after vigil started")
    if env.fire_lines("Gen2"):
        vt.fail("Gen2 fired")


def sc_trace_cloud(a, env, p, base):
    """CollectTrace and CollectLogs into s3rver and Azurite (the egress_servers fixture), each
    trace downloaded and read fully by TraceEvent, each log parsed record by record."""
    srv = egress_servers.Servers(a.build)
    prefix = f"nettrace-{os.getpid()}"
    out = os.path.join(env.dir, "paths.log")
    cfg = env.settings()
    cfg["Egress"] = srv.egress(prefix)

    def rule(name, egress):
        return env.rule(name, {"Type": "Startup"}, actions=[
            {"Name": "Trace", "Type": "CollectTrace", "Settings": {
                "Egress": egress, "Profile": "Cpu,Metrics", "Duration": "00:00:04",
                "ArtifactName": f"{name}.nettrace"}},
            {"Name": "Logs", "Type": "CollectLogs", "Settings": {
                "Egress": egress, "Format": "NewlineDelimitedJson", "Duration": "00:00:04",
                "DefaultLevel": "Debug", "UseAppFilters": False,
                "ArtifactName": f"{name}.log"}},
            {"Name": "Note", "Type": "Execute", "Settings": {
                "Path": "/bin/sh", "Arguments": "-c " + shlex.quote(
                    f"echo {name} $(Actions.Trace.EgressPath) >> {out}; "
                    f"echo {name}Logs $(Actions.Logs.EgressPath) >> {out}")}}])
    cfg["CollectionRules"] = {"ToS3": rule("ToS3", "s3"), "ToAzure": rule("ToAzure", "azure")}
    env.write("rules.yaml", cfg)
    env.start_daemon()

    got = vt.wait_for("both traces and logs uploaded", lambda: len(paths(out)) == 4 and paths(out),
                      90, 0.2)
    fetch = {"ToS3": srv.s3_get, "ToAzure": srv.az_fetch}
    check = os.path.join(a.apps, "tracecheck", "tracecheck.dll")
    for name, get in fetch.items():
        local = os.path.join(env.dir, f"{name}.nettrace")
        with open(local, "wb") as f:
            f.write(get(f"{prefix}/{name}.nettrace"))
        ref = subprocess.run(["dotnet", check, "--events", local], capture_output=True, text=True)
        if ref.returncode != 0:
            vt.fail(f"{name}: TraceEvent rejects the downloaded trace: {ref.stderr}")
        if "event Microsoft-DotNETCore-SampleProfiler " not in ref.stdout:
            vt.fail(f"{name}: no CPU samples in the trace")
        print(f"{name}: {got[name]} -> {os.path.getsize(local)} bytes downloaded, "
              f"{ref.stdout.splitlines()[0]}, read fully by TraceEvent")
        # the log: every line a dotnet-monitor log record, the worker's Debug ones among them
        data = get(f"{prefix}/{name}.log")
        if not data.endswith(b"\n"):
            vt.fail(f"{name}.log: does not end with a complete record")
        recs = [json.loads(l) for l in data.decode().splitlines()]
        debug = [r for r in recs if r.get("Category") == "Vigil.TraceGen.Worker" and
                 r.get("LogLevel") == "Debug" and r.get("Message")]
        if not debug:
            vt.fail(f"{name}.log: no Debug record of the worker in {recs[:3]}")
        print(f"{name}: {got[name + 'Logs']} -> {len(recs)} log records downloaded and parsed")
    vt.wait_for("no session left in the target", lambda: unix_sockets(p.pid) == base, 30)


def sc_trace_cut(a, env, p, base):
    """A trace whose process is killed (SIGKILL) in the middle: the stream ends without its end
    tag, so the action fails with the parser's reason and nothing is stored as an artifact."""
    arts = os.path.join(env.dir, "artifacts")
    out = os.path.join(env.dir, "paths.log")
    cfg = env.settings()
    cfg["Egress"] = {"FileSystem": {"fs": {"DirectoryPath": arts}}}
    cfg["CollectionRules"] = {"Cut": env.rule("Cut", {"Type": "Startup"}, actions=[
        {"Name": "Trace", "Type": "CollectTrace", "Settings": {
            "Egress": "fs", "Profile": "Cpu", "Duration": "00:01:00",
            "ArtifactName": "cut.nettrace"}},
        {"Name": "Note", "Type": "Execute", "Settings": {
            "Path": "/bin/sh", "Arguments": "-c " + shlex.quote(
                f"echo Cut $(Actions.Trace.EgressPath) >> {out}")}}])}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    # the trace has started once its session holds a connection to the target
    vt.wait_for("the trace's session", lambda: unix_sockets(p.pid) > base, 30, 0.1)
    time.sleep(2)  # some of the stream written
    p.kill()
    p.wait()
    log = vt.wait_for("the action to fail", lambda: (
        l := env.vigil.log()) and "Trace" in l and "failed" in l and l, 60, 0.2)
    fail = [l for l in log.splitlines() if "failed" in l and "Trace" in l]
    print("\n".join(fail))
    time.sleep(1)
    if paths(out):
        vt.fail(f"the actions after a cut trace ran: {paths(out)}")
    kept = [f for _, _, fs in os.walk(arts) for f in fs if f.endswith(".nettrace")]
    if kept:
        vt.fail(f"a cut trace was stored as an artifact: {kept}")


def sc_meter_limits(a, env, p, base):
    """GlobalCounter.MaxTimeSeries reaches the runtime: with 2, tracegen's Meter (more series
    than that) makes the runtime report the limit, which vigil logs, and /metrics holds at most 2
    of its series."""
    cfg = env.settings()
    cfg["Metrics"] = {"Meters": [{"MeterName": "Vigil.TraceGen"}]}
    cfg["GlobalCounter"] = {"MaxTimeSeries": 2, "IntervalSeconds": 1}
    cfg["CollectionRules"] = {"Temp": env.rule("Temp", {"Type": "EventMeter", "Settings": {
        "MeterName": "Vigil.TraceGen", "InstrumentName": "temperature", "GreaterThan": 1000}})}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    line = vt.wait_for("the runtime's time series limit in vigil's log", lambda: next(
        (l for l in env.vigil.log().splitlines() if "time series limit" in l), None), 30, 0.2)
    print(line)
    time.sleep(2)  # two more intervals: what the runtime sends within the limit
    lines = [l for l in env.get("/metrics").splitlines() if l.startswith("vigiltracegen_")]
    # a histogram is one series with a line per quantile
    series = {re.sub(r',quantile="[^"]*"', "", l.rsplit(" ", 1)[0]) for l in lines}
    if not series or len(series) > 2:
        vt.fail(f"more series than MaxTimeSeries: {series}")
    print(f"/metrics: {series}")


def sc_eventsources_off(a, env, p, base):
    """A .NET app whose runtimeconfig.json turns EventSources off (trimmed, AOT-compatible and
    file-based apps do by default) sends no counters: an EventCounter rule on it says why in its
    lastError and vigil's log, rather than waiting silently; the same rule on tracegen as built
    has no error."""
    copy = os.path.join(env.dir, "tracegen-off")
    shutil.copytree(os.path.join(a.apps, "tracegen"), copy)
    rc = os.path.join(copy, "tracegen.runtimeconfig.json")
    with open(rc) as f:
        conf = json.load(f)
    conf["runtimeOptions"].setdefault("configProperties", {})[
        "System.Diagnostics.Tracing.EventSource.IsSupported"] = False
    with open(rc, "w") as f:
        json.dump(conf, f)
    off = tracegen(a, env, ["cpu"], name="off", gen=os.path.join(copy, "tracegen.dll"))
    cfg = env.settings()
    cfg["GlobalCounter"] = {"IntervalSeconds": 1}  # silence is told after 3 intervals + 5 s
    cfg["CollectionRules"] = {"Cpu": env.rule("Cpu", {"Type": "EventCounter", "Settings": {
        "ProviderName": "System.Runtime", "CounterName": "cpu-usage", "GreaterThan": 1000}})}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    err = vt.wait_for("the rule's lastError on the app without EventSources", lambda: (
        env.rule_state("Cpu", off.pid).get("lastError") or "").find("EventSources off") >= 0 and
        env.rule_state("Cpu", off.pid)["lastError"], 40, 0.5)
    print(f"lastError: {err}")
    if "EventSources off" not in env.vigil.log():
        vt.fail("vigil's log does not say why no counters come")
    got = env.rule_state("Cpu", p.pid)
    if got.get("lastError"):
        vt.fail(f"tracegen as built (EventSources on) has an error: {got}")


def sc_livemetrics(a, env, p, base):
    """CollectLiveMetrics into the filesystem egress: a JSON text sequence in dotnet-monitor's
    shape with only the counters and meters asked for, System.Runtime's every second
    (GlobalCounter.Providers), the meters' every two (GlobalCounter.IntervalSeconds)."""
    arts = os.path.join(env.dir, "artifacts")
    cfg = env.settings()
    cfg["Egress"] = {"FileSystem": {"fs": {"DirectoryPath": arts}}}
    cfg["GlobalCounter"] = {"IntervalSeconds": 2,
                            "Providers": {"System.Runtime": {"IntervalSeconds": 1}}}
    cfg["CollectionRules"] = {"Live": env.rule("Live", {"Type": "Startup"}, actions=[
        {"Name": "Live", "Type": "CollectLiveMetrics", "Settings": {
            "Egress": "fs", "Duration": "00:00:12", "IncludeDefaultProviders": False,
            "Providers": [{"ProviderName": "System.Runtime",
                           "CounterNames": ["cpu-usage", "gc-heap-size"]}],
            "Meters": [{"MeterName": "Vigil.TraceGen"}]}}])}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    path = vt.wait_for("the live metrics artifact", lambda: os.path.isdir(arts) and [
        os.path.join(arts, f) for f in os.listdir(arts) if f.endswith(".metrics.json")] and
        env.rule_state("Live", p.pid).get("state") == "Finished" and [
        os.path.join(arts, f) for f in os.listdir(arts) if f.endswith(".metrics.json")], 60)[0]
    if not re.fullmatch(rf"\d{{8}}_\d{{6}}_\d{{3}}_{p.pid}\.metrics\.json",
                        os.path.basename(path)):
        vt.fail(f"unexpected artifact name {path}")
    data = open(path, "rb").read()
    if not data.startswith(b"\x1e") or not data.endswith(b"\n"):
        vt.fail("not a JSON text sequence")
    recs = [json.loads(r) for r in data.split(b"\x1e") if r.strip()]
    keys = ["timestamp", "provider", "name", "displayName", "unit", "counterType", "tags",
            "value", "meterTags", "instrumentTags"]
    for r in recs:
        if list(r) != keys:
            vt.fail(f"record keys {list(r)}")
    names = {(r["provider"], r["name"]) for r in recs}
    if {n for pr, n in names if pr == "System.Runtime"} != {"cpu-usage", "gc-heap-size"}:
        vt.fail(f"System.Runtime counters not filtered: {names}")
    hist = [r for r in recs if r["name"] == "work-duration"]
    rate = [r for r in recs if r["name"] == "work-items"]
    if not any("Percentile=95" in r["tags"] for r in hist) or not rate or \
            any(r["counterType"] != "Rate" for r in rate):
        vt.fail(f"meter records: {hist[:2]} {rate[:2]}")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", recs[0]["timestamp"]):
        vt.fail(f"timestamp {recs[0]['timestamp']}")
    # 12 s: about 11 cpu-usage values at 1 s, 5 or 6 meter intervals at 2 s (2 at the default 5)
    cpu = {r["timestamp"] for r in recs if r["name"] == "cpu-usage"}
    items = {r["timestamp"][:19] for r in rate}  # one event per series (tag set) an interval
    print(f"{len(cpu)} cpu-usage values (1 s), {len(items)} work-items intervals (2 s)")
    if len(cpu) < 8 or not 3 <= len(items) <= 8:
        vt.fail(f"intervals not applied: {len(cpu)} System.Runtime values at 1 s, {len(items)} "
                "meter intervals at 2 s in 12 s")
    print(f"{len(recs)} records, {len(names)} series: {sorted(names)[:6]} ...")
    vt.wait_for("no session left in the target", lambda: unix_sockets(p.pid) == base, 30)


def sc_logs(a, env, p, base):
    """CollectLogs into the filesystem egress, one action after the other on tracegen's logging
    workload: NewlineDelimitedJson at Warning with a FilterSpecs raising one category to Debug,
    PlainText with the defaults (the app's own filters: everything from Trace up), JsonSequence at
    Information; the last two without the app's filters. Each
    artifact parsed: dotnet-monitor's record shapes, levels, categories, messages formatted from
    their "{OriginalFormat}", nested scopes outermost first, the exception."""
    arts = os.path.join(env.dir, "artifacts")
    out = os.path.join(env.dir, "paths.log")
    cfg = env.settings()
    cfg["Egress"] = {"FileSystem": {"fs": {"DirectoryPath": arts}}}

    def act(name, **settings):
        return [{"Name": name, "Type": "CollectLogs", "Settings": dict(
                    settings, Egress="fs", Duration="00:00:05", ArtifactName=f"{name}.log")},
                {"Name": "Note" + name, "Type": "Execute", "Settings": {
                    "Path": "/bin/sh", "Arguments": "-c " + shlex.quote(
                        f"echo {name} $(Actions.{name}.EgressPath) >> {out}")}}]
    cfg["CollectionRules"] = {"Logs": env.rule("Logs", {"Type": "Startup"}, actions=(
        act("Ndjson", Format="NewlineDelimitedJson",
            FilterSpecs={"Vigil.TraceGen.Worker": "Debug"}, UseAppFilters=False) +
        act("Plain") +
        act("Seq", Format="JsonSequence", DefaultLevel="Information", UseAppFilters=False)))}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    got = vt.wait_for("the three log artifacts", lambda: len(paths(out)) == 3 and paths(out),
                      90, 0.2)
    levels = ["Trace", "Debug", "Information", "Warning", "Error", "Critical"]

    def check_json(name, recs, min_level, debug_worker):
        if not recs:
            vt.fail(f"{name}: no records")
        for r in recs:
            keys = ["Timestamp", "LogLevel", "EventId", "EventName", "Category", "Message"]
            keys += ["Exception"] if "Exception" in r else []
            keys += ["State"] + (["Scopes"] if "Scopes" in r else [])
            if list(r) != keys:
                vt.fail(f"{name}: record keys {list(r)}")
            if not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", r["Timestamp"]):
                vt.fail(f"{name}: timestamp {r['Timestamp']!r}")
            st = r["State"]
            if st.get("Message") != r["Message"] or list(st)[0] != "Message":
                vt.fail(f"{name}: State {st}")
            lvl = levels.index(r["LogLevel"])
            floor = 1 if debug_worker and r["Category"] == "Vigil.TraceGen.Worker" else min_level
            if lvl < floor:
                vt.fail(f"{name}: {r['LogLevel']} record from {r['Category']} collected")
        worker = [r for r in recs if r["Category"] == "Vigil.TraceGen.Worker"]
        done = [r for r in worker if r["EventName"] == "ItemDone"]
        fails = [r for r in worker if r["LogLevel"] == "Error"]
        if not fails or not all("boom" in r["Exception"] and
                                r["Exception"].startswith("System.InvalidOperationException")
                                and "\n   at " in r["Exception"]
                                for r in fails):
            vt.fail(f"{name}: error records {fails[:1]}")
        f = fails[0]
        if f["Message"] != f"item {f['State']['Item']} failed" or \
                f["State"]["{OriginalFormat}"] != "item {Item} failed":
            vt.fail(f"{name}: error record {f}")
        # both scopes, outermost first; the records of an item whose scopes began before the
        # session (or before the runtime flowed activity ids to it) have fewer or none, as in
        # dotnet-monitor
        scoped = [i for i, r in enumerate(worker) if len(r.get("Scopes") or []) == 2]
        if not scoped or len(scoped) < len(worker) * 0.8:
            vt.fail(f"{name}: {len(scoped)} of {len(worker)} worker records have scopes")
        for r in worker[scoped[0]:]:
            sc = r.get("Scopes")
            if not sc or len(sc) != 2 or sc[1] != {"Worker": "w1"} or \
                    sc[0].get("{OriginalFormat}") != "batch {Batch}" or "Batch" not in sc[0]:
                vt.fail(f"{name}: scopes {sc} of {r}")
        return worker, done

    def records(path, seq):
        data = open(path, "rb").read()
        if seq:
            if not data.startswith(b"\x1e"):
                vt.fail(f"{path}: not a JSON text sequence")
            return [json.loads(x) for x in data.split(b"\x1e") if x.strip()]
        if b"\x1e" in data or not data.endswith(b"\n"):
            vt.fail(f"{path}: not newline-delimited JSON")
        return [json.loads(x) for x in data.split(b"\n") if x.strip()]

    nd = records(got["Ndjson"], False)
    worker, _ = check_json("Ndjson", nd, 3, True)
    if not any(r["LogLevel"] == "Debug" for r in worker) or \
            any(r["Category"] == "Vigil.TraceGen.Chatty" for r in nd):
        vt.fail("Ndjson: FilterSpecs Debug for the worker, Warning for the rest not honoured: "
                f"{sorted({(r['Category'], r['LogLevel']) for r in nd})}")
    seq = records(got["Seq"], True)
    worker, done = check_json("Seq", seq, 2, False)
    if not done or not any(r["Category"] == "Vigil.TraceGen.Chatty" for r in seq):
        vt.fail(f"Seq: Information records missing: {sorted({(r['Category'], r['LogLevel']) for r in seq})}")
    d = done[0]
    # "{Elapsed,4}": the alignment applies to the string argument, as dotnet-monitor formats it
    want = f"work item {d['State']['Item']} done in {d['State']['Elapsed']:>4} ms"
    if d["EventId"] != 42 or d["Message"] != want or list(d["State"]) != [
            "Message", "Item", "Elapsed", "{OriginalFormat}"]:
        vt.fail(f"Seq: ItemDone record {d} (want message {want!r})")
    text = open(got["Plain"], encoding="utf-8").read()
    head = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ (trce|dbug|info|warn|fail|crit): "
                      r"([^\[\n]+)\[(-?\d+)\](\[[^\]\n]*\])?$")
    entries, cur = [], None
    for line in text.split("\n")[:-1]:
        m = head.match(line)
        if m:
            cur = {"level": m.group(1), "category": m.group(2), "lines": []}
            entries.append(cur)
        elif cur and line.startswith("      "):
            cur["lines"].append(line[6:])
        else:
            vt.fail(f"Plain: unexpected line {line!r}")
    # UseAppFilters: the app's own minimum level (Trace), not DefaultLevel (Warning)
    if {(e["level"], e["category"]) for e in entries} != {
            ("dbug", "Vigil.TraceGen.Worker"), ("info", "Vigil.TraceGen.Worker"),
            ("warn", "Vigil.TraceGen.Worker"), ("fail", "Vigil.TraceGen.Worker"),
            ("info", "Vigil.TraceGen.Chatty")}:
        vt.fail(f"Plain: levels {sorted({(e['level'], e['category']) for e in entries})}")
    warn = [e for e in entries if e["level"] == "warn" and e["category"] == "Vigil.TraceGen.Worker"]
    fail = [e for e in entries if e["level"] == "fail" and e["category"] == "Vigil.TraceGen.Worker"]
    if not warn or not fail:
        vt.fail(f"Plain: no warn or fail entries in {text[:400]!r}")
    w = warn[-1]["lines"]  # the last: its scopes began within the session
    if not re.fullmatch(r"=> Batch:\d+, \{OriginalFormat\}:batch \{Batch\} => Worker:w1", w[0]) \
            or not re.fullmatch(r"queue depth \d+ above 30", w[1]):
        vt.fail(f"Plain: warn entry {w}")
    f = fail[-1]["lines"]
    # the exception's stack, every line under the message's padding
    if not re.fullmatch(r"item \d+ failed", f[1]) or \
            not f[2].startswith("System.InvalidOperationException: boom") or \
            len(f) < 4 or not f[3].startswith("   at "):
        vt.fail(f"Plain: fail entry {f}")
    print(f"Ndjson {len(nd)}, Plain {len(entries)}, Seq {len(seq)} records; e.g. {d['Message']!r}")
    vt.wait_for("no session left in the target", lambda: unix_sockets(p.pid) == base, 30)


def sc_cpuusage(a, env, p, base):
    """CPUUsage on CPU-burning processes: a .NET one reads System.Runtime's cpu-usage through
    the shared counters session; a .NET one whose diagnostic port is off
    (DOTNET_EnableDiagnostics=0), a native one and a Node one (no session: its inspector stays
    closed) read /proc; all fire, and vigil says which source each read (/collectionrules'
    triggerSource, the debug log)."""
    blind = tracegen(a, env, ["cpu"], environ={"DOTNET_EnableDiagnostics": "0"},
                     name="tracegen-nodiag")
    native = env.workload("spin:300:1", "hold")
    # a Node process: CPUUsage must never open its session there (that would send SIGUSR1 and
    # open the inspector, which Node announces on stderr)
    node = None
    if shutil.which("node"):
        node_out = open(os.path.join(env.dir, "node.out"), "w+")
        node = env.spawn(["node", "-e", "for (;;) {}", env.tag], stdin=subprocess.DEVNULL,
                         stdout=node_out, stderr=subprocess.STDOUT)
    cfg = env.settings()
    # a low threshold: the machine is shared, a spinning thread may get a fraction of a core
    cfg["CollectionRules"] = {"Cpu": env.rule("Cpu", {"Type": "CPUUsage", "Settings": {
        "GreaterThan": 5, "SlidingWindowDuration": "00:00:06"}}, limits={"ActionCount": 1})}
    env.write("rules.yaml", cfg)
    t_start = time.time()
    env.start_daemon()
    vt.wait_for("a counters session in the .NET target",
                lambda: unix_sockets(p.pid) == base + 1, 30)
    pids = {p.pid, blind.pid, native.pid} | ({node.pid} if node else set())
    fired = vt.wait_for("Cpu to fire for every process",
                        lambda: {int(f[1]) for f in env.fire_lines("Cpu")} >= pids
                        and env.fire_lines("Cpu"), 90, 0.2)
    for f in fired:
        print(f"Cpu fired for pid {f[1]} {float(f[3]) - t_start:.1f}s after vigil started")
    want = {p.pid: "System.Runtime/cpu-usage", blind.pid: "/proc", native.pid: "/proc"}
    if node:
        want[node.pid] = "/proc"
        node_out.flush()
        if "Debugger listening" in open(node_out.name).read():
            vt.fail("CPUUsage opened the Node process's inspector")
    for pid, src in want.items():
        st = env.rule_state("Cpu", pid)
        if st.get("triggerSource") != src:
            vt.fail(f"pid {pid}: Cpu read {st.get('triggerSource')}, expected {src}: {st}")
    log = env.vigil.log()
    if f"pid {p.pid} (" not in log or not re.search(
            rf"pid {p.pid} \([^)]*\): CPUUsage reads the runtime's System.Runtime/cpu-usage "
            r"counter", log):
        vt.fail("the debug log does not say the .NET process's CPUUsage read System.Runtime")
    if not re.search(rf"pid {blind.pid} \([^)]*\): CPUUsage reads /proc \(no System.Runtime/"
                     r"cpu-usage counter from the .NET runtime", log):
        vt.fail("the debug log does not say the unreachable .NET process's CPUUsage read /proc")
    if re.search(rf"pid {native.pid} \([^)]*\): CPUUsage reads", log):
        vt.fail("a native process's CPUUsage source was logged (it only ever reads /proc)")
    # the runtime's counter fired it: the window ran on the runtime's values, which come every
    # 5 s after the session started, so it cannot have fired before 5 + 6 s
    t = float(next(f for f in fired if int(f[1]) == p.pid)[3])
    if t < t_start + 6:
        vt.fail(f"the .NET process fired {t - t_start:.1f}s after start, before its window")
    print(f"sources: {want}")
    env.vigil.stop()
    vt.wait_for("the session to end after vigil stopped",
                lambda: unix_sockets(p.pid) == base, 30)


def sc_intervals(a, env, p, base):
    """GlobalCounter.Providers.System.Runtime.IntervalSeconds 1 with the global interval at 5 s:
    System.Runtime's counters change in /metrics about every second, Microsoft.AspNetCore.Hosting's
    (the global interval) about every five."""
    cfg = env.settings(poll="250ms")
    cfg["GlobalCounter"] = {"IntervalSeconds": 5,
                            "Providers": {"System.Runtime": {"IntervalSeconds": 1}}}
    arts = os.path.join(env.dir, "artifacts")
    cfg["Egress"] = {"FileSystem": {"fs": {"DirectoryPath": arts}}}
    cfg["CollectionRules"] = {
        "Never": env.rule("Never", {"Type": "EventCounter", "Settings": {
            "ProviderName": "System.Runtime", "CounterName": "cpu-usage", "GreaterThan": 1000}}),
        # CollectTrace's Metrics profile takes the same intervals (dotnet-monitor's TraceUtilities)
        "Trace": env.rule("Trace", {"Type": "Startup"}, actions=[{
            "Type": "CollectTrace", "Settings": {
                "Egress": "fs", "Profile": "Metrics", "Duration": "00:00:08",
                "ArtifactName": "metrics.nettrace"}}])}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    sr = re.compile(rf'^systemruntime_[a-z0-9_]+{{pid="{p.pid}",.*$', re.M)
    asp = re.compile(rf'^microsoftaspnetcorehosting_total_requests{{pid="{p.pid}",.*$', re.M)
    vt.wait_for("both providers' counters in /metrics",
                lambda: sr.search(env.get("/metrics")) and asp.search(env.get("/metrics")), 60)
    seen_sr, seen_asp = set(), set()
    end = time.time() + 10
    while time.time() < end:
        body = env.get("/metrics")
        seen_sr.add("\n".join(sr.findall(body)))
        seen_asp.add("\n".join(asp.findall(body)))
        time.sleep(0.1)
    print(f"in 10 s: {len(seen_sr)} System.Runtime snapshots (1 s), "
          f"{len(seen_asp)} Microsoft.AspNetCore.Hosting total-requests values (5 s)")
    # 1 s gives about ten; 5 s gives two or three (the requests never stop)
    if len(seen_sr) < 5:
        vt.fail(f"System.Runtime changed {len(seen_sr)} times in 10 s: its 1 s interval is not "
                "applied")
    if len(seen_asp) > 4 or len(seen_asp) >= len(seen_sr):
        vt.fail(f"Microsoft.AspNetCore.Hosting changed {len(seen_asp)} times in 10 s: it should "
                "keep the global 5 s interval")
    trace = os.path.join(arts, "metrics.nettrace")
    vt.wait_for("the Metrics profile's trace", lambda: os.path.exists(trace), 30)
    out = subprocess.run([a.dump, "--counters", trace], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    n_sr = sum(1 for l in out if l.startswith("counter System.Runtime cpu-usage "))
    n_asp = sum(1 for l in out
                if l.startswith("counter Microsoft.AspNetCore.Hosting total-requests "))
    print(f"8 s Metrics-profile trace: {n_sr} System.Runtime cpu-usage, {n_asp} "
          "Microsoft.AspNetCore.Hosting total-requests counters")
    if n_sr < 5 or n_asp > 3:
        vt.fail(f"the trace's counters do not follow GlobalCounter: {n_sr} cpu-usage (1 s), "
                f"{n_asp} total-requests (5 s)")


SCENARIOS = {"counters": sc_counters, "trace": sc_trace, "trace_cloud": sc_trace_cloud,
             "trace_cut": sc_trace_cut, "livemetrics": sc_livemetrics, "logs": sc_logs,
             "meters": sc_meters, "meter_limits": sc_meter_limits, "aspnet": sc_aspnet,
             "eventcount": sc_eventcount, "cpuusage": sc_cpuusage, "intervals": sc_intervals,
             "eventsources_off": sc_eventsources_off}


def tracegen(a, env, work=None, environ=None, name="tracegen", gen=None):
    """tracegen (or the copy gen) running the workloads named in work (default: CPU,
    allocations, exceptions, a Meter and a loopback HTTP load) with the run's tag, and environ
    added to its environment, once it is ready; skips without dotnet."""
    gen = gen or os.path.join(a.apps, "tracegen", "tracegen.dll")
    if not shutil.which("dotnet"):
        raise vt.Skip("no dotnet")
    vt.check(os.path.exists(gen), f"{gen} missing (fixture nettrace_traces)")
    out = open(os.path.join(env.dir, f"{name}.out"), "w+")
    work = work or ["cpu", "alloc", "web", "meter", "throw"]
    p = env.spawn(["dotnet", gen, *work, env.tag,
                   "--seconds", "300"], stdin=subprocess.DEVNULL, stdout=out,
                  stderr=subprocess.STDOUT, env={**os.environ, **(environ or {})})
    p.outfile = out
    vt.wait_for("tracegen", lambda: open(out.name).read().startswith("ready"), 30)
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--dump", help="nettrace_dump")
    ap.add_argument("--apps", required=True, help="the test-apps directory (tracegen)")
    a = ap.parse_args()
    a.build = os.environ.get("VG_BINARY_DIR", "")

    def scenario(env):
        work = {"logs": ["log"], "trace_cloud": ["cpu", "log"], "cpuusage": ["cpu"],
                "intervals": ["cpu", "alloc", "web"]}.get(a.scenario)
        p = tracegen(a, env, work)
        SCENARIOS[a.scenario](a, env, p, unix_sockets(p.pid))

    vt.run(scenario, name=f"dotnet_daemon_{a.scenario}", env_class=dt.Env)


if __name__ == "__main__":
    main()
