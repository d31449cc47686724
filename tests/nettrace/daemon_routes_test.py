#!/usr/bin/env python3
"""dotnet-monitor's artifact routes on a real .NET 10 process (tracegen), in `vigil run`:

    daemon_routes_test.py --apps APPS_DIR --dump NETTRACE_DUMP   (vg_add_py_test)

- GET /trace (profiles Cpu and Metrics) streamed: a complete nettrace that TraceEvent
  (tracecheck) and nettrace_dump read alike, with CPU samples and counters;
- POST /trace (EventProvidersConfiguration; the process by its uid) into the filesystem egress:
  202, Location, the operation's shapes, a trace with the asked providers' events;
- three traces at once are the limit (429 with Retry-After for a fourth), each cancelled with
  DELETE and Cancelled, nothing stored; three streamed traces whose clients leave stop;
- GET /logs streamed as NDJSON (Accept) at a level, POST /logs (LogsConfiguration: filterSpecs)
  as a JSON text sequence; GET /livemetrics into the filesystem egress (System.Runtime), POST
  /livemetrics (EventMetricsConfiguration) streamed with only the counters and meter asked for;
- refused as problems before anything starts: /gcdump and /stacks (vigil has no .NET writer for
  them), the GcCollect profile, bad bodies (415, VG_EPARSE, VG_EINVAL), durationSeconds=-1,
  /logs with an Accept naming no log format (406), bad levels and bodies;
- no EventPipe session is left in the target.

Built on tests/lib/vigil_test.py, tests/lib/artifact_routes.py and daemon_counters_test.py's
setup; VIGIL comes from CTest's environment."""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engine"))
sys.path.insert(0, HERE)
import artifact_routes as ar  # noqa: E402
import daemon_counters_test as dct  # noqa: E402
import daemon_test as dt  # noqa: E402
import vigil_test as vt  # noqa: E402


def sc_routes(a, env, p, base):
    arts = os.path.join(env.dir, "artifacts")
    cfg = env.settings()
    cfg["Egress"] = {"FileSystem": {"fs": {"DirectoryPath": arts}}}
    env.write("settings.yaml", cfg)
    env.start_daemon()
    d = env.vigil
    ar.wait_runtime(d, p.pid, "dotnet")
    q = f"pid={p.pid}"

    # streamed: GET /trace with dotnet-monitor's profiles (Metrics: counters every 5 s)
    local = os.path.join(env.dir, "streamed.nettrace")
    with open(local, "wb") as f:
        f.write(ar.streamed(d, f"/trace?{q}&durationSeconds=7&profile=Cpu,Metrics", p.pid,
                            ".nettrace", "application/octet-stream"))
    dct.read_trace(a, local, ["event Microsoft-DotNETCore-SampleProfiler ",
                          "counter System.Runtime cpu-usage "])

    # POST /trace: the providers of the body, into the filesystem egress; the process by uid
    body = json.dumps({"Providers": [
        {"Name": "Microsoft-DotNETCore-SampleProfiler", "EventLevel": "Informational"},
        {"Name": "System.Runtime", "Keywords": "0x0", "EventLevel": "Verbose",
         "Arguments": {"EventCounterIntervalSec": "1"}}],
        "RequestRundown": False, "BufferSizeInMB": 64})
    uid = d.get(f"/process?{q}").json()["uid"]  # the runtime instance cookie, as dotnet-monitor
    op = ar.via_egress(d, "POST", f"/trace?uid={uid}&durationSeconds=3&tags=custom", "fs",
                       body=body,
                       headers={"Content-Type": "application/json"})
    if op["status"] != "Succeeded" or op["tags"] != ["custom"]:
        vt.fail(f"POST /trace operation: {op}")
    path = op["resourceLocation"]
    if os.path.dirname(path) != arts or not path.endswith(f"_{p.pid}.nettrace"):
        vt.fail(f"resourceLocation {path!r} is not a dotnet-monitor-named file in {arts}")
    dct.read_trace(a, path, ["event Microsoft-DotNETCore-SampleProfiler ",
                         "counter System.Runtime cpu-usage "])

    # GET /logs streamed, its format from Accept (NDJSON), Information without the app's filters.
    # The app's categories are checked (its worker logs Debug); ASP.NET's loggers, created before
    # the session, were seen passing Trace and Debug records: the runtime's filtering, the same
    # provider arguments dotnet-monitor sends
    data = ar.streamed(d, f"/logs?{q}&durationSeconds=5&level=Information", p.pid, ".txt",
                       "application/x-ndjson", headers={"Accept": "application/x-ndjson"})
    if b"\x1e" in data or not data.endswith(b"\n"):
        vt.fail("GET /logs: not newline-delimited JSON")
    recs = [json.loads(x) for x in data.split(b"\n") if x.strip()]
    seen = {(r["Category"], r["LogLevel"]) for r in recs}
    levels = ["Trace", "Debug", "Information", "Warning", "Error", "Critical"]
    if not {("Vigil.TraceGen.Worker", "Error"), ("Vigil.TraceGen.Chatty", "Information")} <= seen \
            or any(levels.index(lv) < 2 for c, lv in seen if c.startswith("Vigil.")):
        vt.fail(f"GET /logs at Information: {sorted(seen)}")
    print(f"GET /logs: {len(recs)} records, {sorted(seen)}")

    # POST /logs (LogsConfiguration, dotnet-monitor's camelCase): one category at Debug, the
    # rest at Warning; JSON text sequence from Accept
    lbody = json.dumps({"logLevel": "Warning", "useAppFilters": False,
                        "filterSpecs": {"Vigil.TraceGen.Worker": "Debug"}})
    data = ar.streamed(d, f"/logs?{q}&durationSeconds=5", p.pid, ".txt", "application/json-seq",
                       headers={"Accept": "application/json-seq",
                                "Content-Type": "application/json"}, method="POST", body=lbody)
    if not data.startswith(b"\x1e"):
        vt.fail("POST /logs: not a JSON text sequence")
    seen = {(r["Category"], r["LogLevel"])
            for r in (json.loads(x) for x in data.split(b"\x1e") if x.strip())}
    if ("Vigil.TraceGen.Worker", "Debug") not in seen or \
            any(c == "Vigil.TraceGen.Chatty" for c, _ in seen):
        vt.fail(f"POST /logs filterSpecs not honoured: {sorted(seen)}")

    # GET /livemetrics to the filesystem egress: the default providers (System.Runtime)
    op = ar.via_egress(d, "GET", f"/livemetrics?{q}&durationSeconds=7&tags=live", "fs")
    if op["status"] != "Succeeded" or not op["resourceLocation"].endswith(".metrics.json"):
        vt.fail(f"GET /livemetrics operation: {op}")
    data = open(op["resourceLocation"], "rb").read()
    recs = [json.loads(x) for x in data.split(b"\x1e") if x.strip()]
    names = {(r["provider"], r["name"]) for r in recs}
    if not data.startswith(b"\x1e") or ("System.Runtime", "cpu-usage") not in names:
        vt.fail(f"GET /livemetrics: {sorted(names)}")
    print(f"GET /livemetrics: {len(recs)} records, {len(names)} series")

    # POST /livemetrics (EventMetricsConfiguration): only the counters and meter asked for
    mbody = json.dumps({"includeDefaultProviders": False,
                        "providers": [{"providerName": "System.Runtime",
                                       "counterNames": ["gc-heap-size"]}],
                        "meters": [{"meterName": "Vigil.TraceGen"}]})
    data = ar.streamed(d, f"/livemetrics?{q}&durationSeconds=7", p.pid, ".metrics.json",
                       "application/json-seq", headers={"Content-Type": "application/json"},
                       method="POST", body=mbody)
    names = {(r["provider"], r["name"])
             for r in (json.loads(x) for x in data.split(b"\x1e") if x.strip())}
    if {n for pr, n in names if pr == "System.Runtime"} != {"gc-heap-size"} or \
            not any(n == "work-items" for _, n in names):
        vt.fail(f"POST /livemetrics: {sorted(names)}")

    # three traces at a time (dotnet-monitor's limit): a fourth is 429; cancelled, nothing kept
    ops = []
    for i in range(3):
        r = d.get(f"/trace?{q}&durationSeconds=600&profile=Metrics&egressProvider=fs")
        vt.eq(r.status, 202, f"long trace {i}: {r!r}")
        ops.append(r.json()["operationId"])
    r = d.get(f"/trace?{q}&durationSeconds=600&profile=Metrics")
    vt.problem(r, 429, "VG_ELIMIT")
    vt.eq(r.header("Retry-After"), "5", "Retry-After")
    before = set(os.listdir(arts))
    for op_id in ops:
        vt.eq(d.req("DELETE", f"/operations/{op_id}").status, 200, "DELETE " + op_id)
    for op_id in ops:
        st = vt.wait_for(f"operation {op_id} to end", lambda: (
            lambda o: o if o["status"] != "Running" else None)(
                d.get(f"/operations/{op_id}").json()), 60, 0.2)
        vt.eq(st["status"], "Cancelled", f"cancelled trace {op_id}")
    vt.eq(set(os.listdir(arts)), before, "a cancelled trace left a file")

    # clients that leave mid-stream: the traces stop, their sessions close
    took = ar.clients_leave(d, f"/trace?{q}&durationSeconds=120&profile=Metrics",
                            f"/trace?{q}&durationSeconds=1&profile=Metrics", 3)
    print(f"three traces whose clients left stopped within {took:.1f} s")

    # refused before anything starts, saying why
    ar.refused(d, "GET", f"/gcdump?{q}", 400, "VG_EUNSUPPORTED", [".gcdump writer", "/dump"])
    ar.refused(d, "GET", f"/stacks?{q}", 400, "VG_EUNSUPPORTED", ["call stacks"])
    ar.refused(d, "GET", f"/trace?{q}&profile=GcCollect", 400, "VG_EUNSUPPORTED",
               ["GcCollect", "not supported yet"])
    ar.refused(d, "GET", f"/trace?{q}&durationSeconds=-1", 400, "VG_EUNSUPPORTED",
               ["durationSeconds"])
    ar.refused(d, "GET", f"/trace?{q}&durationSeconds=0", 400, "VG_ERANGE", ["durationSeconds"])
    jh = {"Content-Type": "application/json"}
    ar.refused(d, "POST", f"/trace?{q}", 415, "VG_EINVAL", ["application/json"], body=body,
               headers={"Content-Type": "text/plain"})
    ar.refused(d, "POST", f"/trace?{q}", 400, "VG_EPARSE", ["JSON"], body="{\"Providers\": [",
               headers=jh)
    ar.refused(d, "POST", f"/trace?{q}", 400, "VG_EINVAL", ["Providers"],
               body='{"Providers": []}', headers=jh)
    ar.refused(d, "POST", f"/trace?{q}", 400, "VG_EINVAL", ["EventLevel"],
               body='{"Providers": [{"Name": "X", "EventLevel": "Loud"}]}', headers=jh)
    ar.refused(d, "POST", f"/trace?{q}", 400, "VG_EINVAL", ["BufferSizeInMB"],
               body='{"Providers": [{"Name": "X"}], "BufferSizeInMB": 4096}', headers=jh)
    ar.refused(d, "POST", f"/trace?{q}", 400, "VG_EINVAL", ["body is required"], headers=jh)
    ar.refused(d, "GET", f"/logs?{q}", 406, "VG_EINVAL", ["Accept", "application/x-ndjson"],
               headers={"Accept": "application/octet-stream"})
    ar.refused(d, "GET", f"/logs?{q}&level=Loud", 400, "VG_EINVAL", ["level"],
               headers={"Accept": "text/plain"})
    ar.refused(d, "POST", f"/logs?{q}", 400, "VG_EINVAL", ["FilterSpecs"],
               body='{"filterSpecs": {"A": "Loud"}}', headers=dict(jh, Accept="text/plain"))
    ar.refused(d, "POST", f"/livemetrics?{q}", 400, "VG_EINVAL", ["Providers[0]", "ProviderName"],
               body='{"providers": [{"counterNames": ["x"]}]}', headers=jh)
    vt.wait_for("no session left in the target", lambda: dct.unix_sockets(p.pid) == base, 30)
    print("no session left in the target")
    d.stop_and_check()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True, help="nettrace_dump")
    ap.add_argument("--apps", required=True, help="the test-apps directory (tracegen)")
    a = ap.parse_args()

    def scenario(env):
        p = dct.tracegen(a, env, ["cpu", "alloc", "web", "meter", "throw", "log"])
        sc_routes(a, env, p, dct.unix_sockets(p.pid))

    vt.run(scenario, name="dotnet_daemon_routes", env_class=dt.Env)


if __name__ == "__main__":
    main()
