#!/usr/bin/env python3
"""dotnet-monitor's artifact routes on a real .NET 10 process (tracegen), in `vigil run`:

    daemon_routes_test.py --apps APPS_DIR --dump NETTRACE_DUMP   (vg_add_py_test)

- GET /trace (profiles Cpu and Metrics) streamed: a complete nettrace that TraceEvent
  (tracecheck) and nettrace_dump read alike, with CPU samples and counters;
- POST /trace (EventProvidersConfiguration; the process by its uid) into the filesystem egress:
  202, Location, the operation's shapes, a trace with the asked providers' events;
- three traces at once are the limit (429 with Retry-After for a fourth), each cancelled with
  DELETE and Cancelled, nothing stored; three streamed traces whose clients leave stop;
- refused as problems before anything starts: /gcdump and /stacks (vigil has no .NET writer for
  them), the GcCollect profile, bad bodies (415, VG_EPARSE, VG_EINVAL), durationSeconds=-1;
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
    vt.wait_for("no session left in the target", lambda: dct.unix_sockets(p.pid) == base, 30)
    print("no session left in the target")
    d.stop_and_check()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True, help="nettrace_dump")
    ap.add_argument("--apps", required=True, help="the test-apps directory (tracegen)")
    a = ap.parse_args()

    def scenario(env):
        p = dct.tracegen(a, env)
        sc_routes(a, env, p, dct.unix_sockets(p.pid))

    vt.run(scenario, name="dotnet_daemon_routes", env_class=dt.Env)


if __name__ == "__main__":
    main()
