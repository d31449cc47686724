#!/usr/bin/env python3
"""Collections that run until stopped, on a real .NET 10 process (tracegen), in `vigil run`:

    daemon_stop_test.py --apps APPS_DIR --dump NETTRACE_DUMP   (vg_add_py_test)

- a rule's day-long CollectTrace is stoppable through its operation: stopped, it is Succeeded,
  complete, and the rule's next action gets its EgressPath;
- POST /trace?durationSeconds=-1 into the filesystem egress and GET /trace?durationSeconds=-1
  into s3rver and Azurite (fixture egress_servers): Running with isStoppable true until
  DELETE /operations/{id}?stop=true (202), then Stopping (isStoppable false; a second stop is
  400 VG_ESTATE), then Succeeded (201) with a trace that TraceEvent (tracecheck), vigil's parser
  (nettrace_dump) and dotnet-trace report read fully; the session is gone from the target after
  each; a stop of a finished operation is 400 VG_ESTATE, as dotnet-monitor answers; a trace
  stopped right after it was asked for (while its session starts) is complete too;
- a plain DELETE of an indefinite trace still cancels it: Cancelled, nothing stored;
- GET /logs?durationSeconds=-1 into the filesystem egress, stopped: Succeeded, the records
  parse;
- refused: a streamed GET /trace?durationSeconds=-1 (nothing could stop it and keep it);
- SIGTERM with an indefinite trace operation and an indefinite streamed /livemetrics running:
  both are stopped and kept (the trace lands complete in the egress, the stream ends cleanly
  with whole records), vigil exits well within its shutdown timeout, no session is left.

Built on tests/lib/vigil_test.py, tests/lib/artifact_routes.py and daemon_counters_test.py's
setup; VIGIL and VG_BINARY_DIR come from CTest's environment."""

import argparse
import http.client
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "engine"))
sys.path.insert(0, HERE)
import artifact_routes as ar  # noqa: E402
import daemon_counters_test as dct  # noqa: E402
import daemon_test as dt  # noqa: E402
import egress_servers  # noqa: E402
import vigil_test as vt  # noqa: E402

SAMPLES = "event Microsoft-DotNETCore-SampleProfiler "


def session_runs(p, base):
    vt.wait_for("the EventPipe session to run in the target",
                lambda: dct.unix_sockets(p.pid) > base, 30, 0.1)


def written(env, n=32 * 1024):
    """Waits until the running collections have written n bytes (the egress's spool files and
    the filesystem provider's partial files): a trace stopped then holds real CPU samples."""
    def size():
        total = 0
        for top in (os.path.join(env.state, "spool"),
                    os.path.join(env.dir, "artifacts", ".vigil-partial")):
            for r, _, fs in os.walk(top):
                for f in fs:
                    try:
                        total += os.path.getsize(os.path.join(r, f))
                    except OSError:
                        pass
        return total
    vt.wait_for(f"{n} bytes collected", lambda: size() >= n, 60, 0.1)


def no_session(p, base):
    vt.wait_for("no session left in the target", lambda: dct.unix_sockets(p.pid) == base, 30)


def report(a, path, what):
    """dotnet-trace report reads the whole trace (its CPU samples' top functions)."""
    tool = os.path.join(a.apps, "tools", "dotnet-trace")
    r = subprocess.run([tool, "report", path, "topN", "-n", "3"], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0 or "Top 3 Functions" not in r.stdout:
        vt.fail(f"{what}: dotnet-trace report fails on {path}: {r.stdout}{r.stderr}")


def sc_stop(a, env, p, base):
    srv = egress_servers.Servers(a.build)
    prefix = f"stop-{os.getpid()}"
    arts = os.path.join(env.dir, "artifacts")
    cfg = env.settings()
    cfg["Egress"] = dict(srv.egress(prefix), FileSystem={"fs": {"DirectoryPath": arts}})
    # a rule's day-long CollectTrace, stopped through its operation; the next action gets the
    # stopped trace's EgressPath
    out = os.path.join(env.dir, "paths.log")
    cfg["CollectionRules"] = {"LongTrace": env.rule("LongTrace", {"Type": "Startup"}, actions=[
        {"Name": "Trace", "Type": "CollectTrace", "Settings": {
            "Egress": "fs", "Profile": "Cpu", "RequestRundown": False, "Duration": "1.00:00:00"}},
        {"Name": "Note", "Type": "Execute", "Settings": {
            "Path": "/bin/sh", "Arguments": "-c " + shlex.quote(
                f"echo LongTrace $(Actions.Trace.EgressPath) >> {out}")}}])}
    env.write("settings.yaml", cfg)
    env.start_daemon()
    d = env.vigil
    ar.wait_runtime(d, p.pid, "dotnet")
    q = f"pid={p.pid}"

    ops = vt.wait_for("the rule's trace operation", lambda: [
        o for o in d.get("/operations").json() if o.get("collectionRule") == "LongTrace"], 60, 0.2)
    vt.eq((ops[0]["status"], ops[0]["isStoppable"]), ("Running", True), "the rule's trace")
    session_runs(p, base)
    written(env)
    j = ar.stop_and_wait(d, f"/operations/{ops[0]['operationId']}", "the rule's trace")
    got = vt.wait_for("the next action", lambda: dct.paths(out).get("LongTrace"), 30, 0.2)
    vt.eq(got, j["resourceLocation"], "the next action's $(Actions.Trace.EgressPath)")
    dct.read_trace(a, got, [SAMPLES], "rule")
    no_session(p, base)

    # POST /trace until stopped, into the filesystem egress
    body = json.dumps({"Providers": [
        {"Name": "Microsoft-DotNETCore-SampleProfiler", "EventLevel": "Informational"},
        {"Name": "System.Runtime", "Keywords": "0x0", "EventLevel": "Verbose",
         "Arguments": {"EventCounterIntervalSec": "1"}}], "RequestRundown": False})
    op = ar.start_indefinite(d, "POST", f"/trace?{q}&durationSeconds=-1&tags=until-stopped", "fs",
                          body=body, headers={"Content-Type": "application/json"})
    session_runs(p, base)
    written(env)
    t0 = time.monotonic()
    j = ar.stop_and_wait(d, op, "POST /trace")
    print(f"POST /trace?durationSeconds=-1: stopped, Succeeded {time.monotonic() - t0:.1f} s "
          f"after the stop")
    vt.eq(j["tags"], ["until-stopped"], "tags")
    path = j["resourceLocation"]
    vt.check(os.path.dirname(path) == arts and path.endswith(f"_{p.pid}.nettrace"),
             f"resourceLocation {path!r}")
    dct.read_trace(a, path, [SAMPLES], "fs")
    report(a, path, "fs")
    no_session(p, base)

    # stopped at once, most likely while its session starts: still a complete trace
    op = ar.start_indefinite(d, "GET", f"/trace?{q}&durationSeconds=-1&profile=Metrics", "fs")
    j = ar.stop_and_wait(d, op, "GET /trace stopped at once")
    dct.read_trace(a, j["resourceLocation"], [], "stopped at once")
    no_session(p, base)

    # GET /trace until stopped into s3rver and Azurite (the default rundown: the stop waits
    # for it), each downloaded and read fully
    fetch = {}
    for provider in ("s3", "azure"):
        op = ar.start_indefinite(d, "GET", f"/trace?{q}&durationSeconds=-1&profile=Cpu", provider)
        session_runs(p, base)
        written(env)
        j = ar.stop_and_wait(d, op, f"GET /trace into {provider}")
        name = os.path.basename(urllib.parse.urlsplit(j["resourceLocation"]).path)
        vt.check(name.endswith(f"_{p.pid}.nettrace"), f"{provider}: {j['resourceLocation']}")
        fetch[provider] = f"{prefix}/{name}"
        no_session(p, base)
    for provider, key in fetch.items():
        local = os.path.join(env.dir, f"{provider}.nettrace")
        with open(local, "wb") as f:
            f.write(srv.s3_get(key) if provider == "s3" else srv.az_fetch(key))
        dct.read_trace(a, local, [SAMPLES], provider)
        report(a, local, provider)

    # a plain DELETE still cancels: nothing kept
    before = set(os.listdir(arts))
    op = ar.start_indefinite(d, "GET", f"/trace?{q}&durationSeconds=-1&profile=Metrics", "fs")
    session_runs(p, base)
    vt.eq(d.req("DELETE", op).status, 200, "DELETE an indefinite trace")
    st = vt.wait_for("the cancelled trace to end", lambda: (
        lambda o: o if o["status"] not in ("Running", "Stopping") else None)(
            d.get(op).json()), 60, 0.2)
    vt.eq((st["status"], st["isStoppable"]), ("Cancelled", False), "the cancelled trace")
    vt.eq(set(os.listdir(arts)), before, "a cancelled trace left a file")
    no_session(p, base)

    # logs until stopped: the records written until the stop, whole
    op = ar.start_indefinite(d, "GET", f"/logs?{q}&durationSeconds=-1&level=Information", "fs",
                          headers={"Accept": "application/x-ndjson"})
    session_runs(p, base)
    vt.wait_for("a log record to be written", lambda: any(
        os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(env.dir) for f in fs
        if f"_{p.pid}.txt" in f), 30, 0.2)
    j = ar.stop_and_wait(d, op, "GET /logs")
    with open(j["resourceLocation"], "rb") as f:
        data = f.read()
    recs = [json.loads(x) for x in data.split(b"\n") if x.strip()]
    vt.check(recs and data.endswith(b"\n"), f"GET /logs until stopped: {data[-200:]!r}")
    print(f"GET /logs?durationSeconds=-1: stopped, {len(recs)} records")
    no_session(p, base)

    # a streamed trace could only end cut: refused
    ar.refused(d, "GET", f"/trace?{q}&durationSeconds=-1", 400, "VG_EUNSUPPORTED",
               ["durationSeconds=-1", "egressProvider"])

    # SIGTERM: an indefinite trace operation and an indefinite streamed /livemetrics are stopped
    # and kept, well within the shutdown timeout (20 s)
    before = set(os.listdir(arts))
    ar.start_indefinite(d, "GET", f"/trace?{q}&durationSeconds=-1&profile=Cpu", "fs")
    got = {"body": b""}

    def stream():
        c = http.client.HTTPConnection("127.0.0.1", d.api_port, timeout=60)
        c.request("GET", f"/livemetrics?{q}&durationSeconds=-1")
        r = c.getresponse()
        got["status"] = r.status
        try:
            while True:
                chunk = r.read1(65536)
                if not chunk:
                    got["clean"] = True  # the chunked body's last chunk came
                    break
                got["body"] += chunk
        except (http.client.IncompleteRead, OSError) as e:
            got["error"] = repr(e)
        c.close()
    t = threading.Thread(target=stream)
    t.start()
    vt.wait_for("both sessions to run", lambda: dct.unix_sockets(p.pid) >= base + 2, 30, 0.1)
    vt.wait_for("live metrics to be streamed", lambda: b"\x1e" in got["body"], 30, 0.1)
    t0 = time.monotonic()
    rc = d.stop(60)
    took = time.monotonic() - t0
    t.join(60)
    vt.eq(rc, 0, "vigil's exit status after SIGTERM")
    vt.check("still running after the shutdown timeout" not in d.log(),
             "a stopped collection held the shutdown past its timeout")
    vt.check(got.get("clean") and got.get("status") == 200,
             f"the streamed /livemetrics did not end cleanly: {got}")
    recs = [json.loads(x) for x in got["body"].split(b"\x1e") if x.strip()]
    print(f"SIGTERM: vigil exited in {took:.1f} s; the streamed live metrics ended with "
          f"{len(recs)} whole records")
    new = sorted(set(os.listdir(arts)) - before)
    traces = [f for f in new if f.endswith(".nettrace")]
    vt.eq(len(traces), 1, f"the trace stopped at shutdown in the egress: {new}")
    dct.read_trace(a, os.path.join(arts, traces[0]), [SAMPLES], "shutdown")
    vt.check(d.sanitizer_lines() == [], "sanitizer report:\n" + "\n".join(d.sanitizer_lines()))
    no_session(p, base)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True, help="nettrace_dump")
    ap.add_argument("--apps", required=True, help="the test-apps directory (tracegen)")
    a = ap.parse_args()
    a.build = os.environ.get("VG_BINARY_DIR", "")

    def scenario(env):
        p = dct.tracegen(a, env, ["cpu", "meter", "log"])
        sc_stop(a, env, p, dct.unix_sockets(p.pid))

    vt.run(scenario, name="dotnet_daemon_stop", env_class=dt.Env)


if __name__ == "__main__":
    main()
