#!/usr/bin/env python3
"""The Node adapter inside the real daemon (`vigil run`), with real node (20) targets, Azurite and
s3rver (the egress_servers fixture):

    VIGIL=build/vigil PYTHONPATH=tests/lib test_node_daemon.py SCENARIO --apps DIR --build DIR

  watchdog    examples/node-heap-watchdog.yaml's rules (RSS or V8 heap in use above a threshold,
              one snapshot, then Finished) on a process growing its heap, no inspector open,
              activation allowed: nodejs_heap_* in /metrics, the heap rule trips, a
              .heapsnapshot lands in s3rver whose snapshot.meta counts match its arrays, the
              inspector vigil opened is closed again, the target runs on, correct.
  artifacts   inspector already open (--inspect): a Metric rule on nodejs_heap_total_bytes takes
              a .cpuprofile (Azurite) with nodes and samples of the app's hot function and a
              diagnostic report (s3rver) whose JavaScript stack is the app's; a MemoryGrowth
              NodeHeap rule fires; a long CollectTrace cancelled with DELETE /operations/{id}
              leaves nothing; the app's own inspector is still there.
  refused     activation disallowed (the default): a heap rule shows the refusal in
              /collectionrules' lastError, a CollectStacks fails saying why, no port is opened,
              nothing is stored; with --heapsnapshot-signal the snapshot still comes (Azurite)
              and node's file is deleted; with the inspector port taken, activation is refused
              up front.
  namespaces  targets in their own network and PID namespaces (unshare -n -p -f): 9229 free
              there (activation, snapshot in s3rver), 9229 taken there (refused, saying so), the
              signal path.
  badpeers    processes answering garbage, HTTP 404, stalling, closing mid-snapshot or
              announcing a huge frame on their "inspector": each a failed operation with a clear
              error and no object; a stalled one cancelled with DELETE is Cancelled at once.

Built on tests/lib/vigil_test.py (the daemon, its log's sanitizer check, cleanup) and
tests/lib/egress_servers.py. Exit 77 = skipped (no node, not root, no egress servers)."""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import vigil_test as vt
from egress_servers import Servers
from test_node import (BLOCK_9229, check_profile_data, check_report_data, check_snapshot_data,
                       owned_ports)
from vigil_test import Skip, fail, free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "..", "examples")
NODE = shutil.which("node")
ARGS = None


class Env(vt.Env):
    """vigil_test's Env with one daemon whose configuration directory the scenario writes, and a
    tag in every target's command line that the rules filter on."""

    def __init__(self, prefix):
        super().__init__(prefix)
        self.dir = self.tmp
        self.tag = "vgtag" + re.sub(r"[^A-Za-z0-9]", "", os.path.basename(self.tmp))
        self.d = self.daemon(no_auth=True)

    @property
    def port(self):
        return self.d.api_port

    @staticmethod
    def settings():
        return {"Discovery": {"PollInterval": "500ms"}, "Server": {"MetricsEnabled": False}}

    def write(self, name, obj):
        """A configuration file (JSON text is YAML too), replaced atomically."""
        path = os.path.join(self.d.conf, name)
        with open(path + ".tmp~", "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj, indent=1))
        os.rename(path + ".tmp~", path)

    def start_daemon(self):
        self.d.start()

    def stop_daemon(self):
        self.d.stop()

    def get(self, path):
        r = self.d.get(path)
        return r.json() if "json" in (r.header("Content-Type") or "") else r.body.decode()

    def rule_state(self, rule_name, pid):
        return self.get(f"/collectionrules/{rule_name}?pid={pid}")


# ---- targets ----

def start(env, argv, name):
    out = open(os.path.join(env.dir, f"{name}.out"), "w+")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                         cwd=env.dir)
    p.outfile = out
    p.target = p.pid
    env.procs.append(p)
    wait_for(f"{name} to start", lambda: re.search(r"^(ready|listening)", output(p), re.M), 30)
    return p


def node_app(env, a, app, name, flags=(), extra_env=None):
    e = dict(os.environ)
    e.update(extra_env or {})
    argv = [NODE, *flags, os.path.join(a.apps, app), env.tag]
    out = open(os.path.join(env.dir, f"{name}.out"), "w+")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                         cwd=env.dir, env=e)
    p.outfile = out
    p.target = p.pid
    env.procs.append(p)
    wait_for(f"{name} to start", lambda: "ready" in output(p), 30)
    return p


def ns_app(env, a, app, name, flags=(), before=""):
    """node in its own network and PID namespace (pid 1 there), loopback up."""
    script = "ip link set lo up && %s exec %s %s %s %s" % (
        before, NODE, " ".join(flags), os.path.join(a.apps, app), env.tag)
    p = start(env, ["unshare", "-n", "-p", "-f", "--kill-child", "sh", "-c", script], name)

    def child():
        try:
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return None
        for k in kids:
            try:
                if os.path.basename(os.readlink(f"/proc/{k}/exe")).startswith("node"):
                    return int(k)
            except OSError:
                pass
        return None
    p.target = wait_for(f"the node process of {name} in its namespaces", child, 20)
    return p


def output(p):
    p.outfile.flush()
    with open(p.outfile.name) as f:
        return f.read()


def still_correct(p, marker):
    """The target is alive, printed new lines since, and every checksum line is correct."""
    n = output(p).count(marker)
    wait_for(f"new output from pid {p.target}", lambda: output(p).count(marker) > n, 60)
    if p.poll() is not None:
        fail(f"target {p.target} died")
    if "BAD" in output(p) or "Error" in output(p):
        fail(f"target {p.target} output:\n{output(p)[-2000:]}")


# ---- artifacts ----

def check_snapshot(snap):
    check_snapshot_data(snap)
    print(f"heap snapshot: {snap['snapshot']['node_count']} nodes, "
          f"{snap['snapshot']['edge_count']} edges")


def setup(env, a):
    """The egress servers, this run's object prefix, and a configuration with both providers."""
    srv = Servers(a.build)
    prefix = f"node-{env.tag}"
    cfg = env.settings()
    cfg["Egress"] = srv.egress(prefix)
    return srv, prefix, cfg


def one_artifact(env, srv, prefix, rule_name, pid, provider, ext):
    """rule_name's operation for pid succeeded and stored exactly one ext object in provider
    ("s3" or "azure"): that object, parsed."""
    ops = op_done(env, rule_name, pid=pid)
    if len(ops) != 1 or ops[0]["status"] != "Succeeded":
        fail(f"{rule_name} on pid {pid}: expected one successful operation: {ops}")
    names = srv.names(provider, prefix)
    mine = [n for n in names if n.endswith(ext)]
    if len(mine) != 1 or not mine[0].endswith(f"_{pid}{ext}"):
        fail(f"expected one {ext} named after pid {pid} in {provider}: {names}")
    return srv.json(provider, mine[0])


def filters(env):
    return [{"Key": "CommandLine", "Value": env.tag, "MatchType": "Contains"}]


def rule(env, trigger, actions, limits=None, script=None):
    """A rule for this test's processes (of one script, when given)."""
    f = filters(env)
    if script:
        f.append({"Key": "CommandLine", "Value": script, "MatchType": "Contains"})
    return {"Filters": f, "Trigger": trigger, "Actions": actions,
            "Limits": limits or {"ActionCount": 1}}


def ops_of(env, rule_name, pid=None):
    ops = env.get("/operations")
    return [o for o in ops if isinstance(o, dict) and o.get("collectionRule") == rule_name and
            (pid is None or o["process"]["pid"] == pid)]


def op_done(env, rule_name, n=1, pid=None, timeout=120):
    """The rule's n operations (for pid) once they all ended."""
    def done():
        ops = ops_of(env, rule_name, pid)
        return ops if len(ops) >= n and all(o["status"] != "Running" for o in ops) else None
    ops = wait_for(f"{rule_name}'s operations to end", done, timeout, 0.5)
    # the list is dotnet-monitor's OperationSummary: the error is in each operation's status
    return [env.get("/operations/" + o["operationId"]) for o in ops]


def op_error(op):
    """The operation's error message ({code, message} as dotnet-monitor), or ""."""
    e = op.get("error")
    return (e.get("message") or "") if isinstance(e, dict) else ""


def finished(env, rule_name, pid, timeout=120):
    return wait_for(f"rule {rule_name} to finish for pid {pid}",
                    lambda: (lambda s: s if s.get("state") == "Finished" else None)(
                        env.rule_state(rule_name, pid)), timeout, 0.5)


def metric(text, name, pid):
    m = re.search(rf'^{name}{{pid="{pid}",name="[^"]*",runtime="node"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


# ---- scenarios ----

def sc_watchdog(env, a):
    srv = Servers(a.build)  # the example's own configuration, plus an egress file
    prefix = f"node-{env.tag}"
    # examples/node-heap-watchdog.yaml itself, with this test's filter, thresholds and interval:
    # the heap rule trips first
    with open(os.path.join(EXAMPLES, "node-heap-watchdog.yaml")) as f:
        example = f.read()
    for old, new in (("api-gateway.js", env.tag), ("GreaterThan: 1GB", "GreaterThan: 24MB"),
                     ("GreaterThan: 1536MB", "GreaterThan: 4GB"),
                     ("PollInterval: 5s", "PollInterval: 500ms")):
        if old not in example:
            fail(f"{old!r} is no longer in the example")
        example = example.replace(old, new)
    env.write("watchdog.yaml", example)
    env.write("egress.yaml", {"Server": {"MetricsEnabled": False}, "Egress": srv.egress(prefix)})
    env.start_daemon()
    port = free_port()
    t = node_app(env, a, "grower.js", "grower", [f"--inspect-port={port}"],
                 {"GROW_MB": "48", "STEP_MS": "100"})
    m = wait_for("nodejs_heap_* in /metrics",
                 lambda: (lambda x: x if metric(x, "nodejs_heap_used_bytes", t.pid) else None)(
                     env.get("/metrics")), 60, 0.3)
    used, total = metric(m, "nodejs_heap_used_bytes", t.pid), metric(m, "nodejs_heap_total_bytes",
                                                                     t.pid)
    if not 1e6 < used <= total:
        fail(f"implausible heap figures: used {used}, total {total}")
    if port not in owned_ports(t.pid):
        fail("the heap is read, but not through the inspector vigil opened?")
    st = finished(env, "NodeHeapWatchdog", t.pid)
    print(f"NodeHeapWatchdog: {st['state']}, fired {st['lastFired']}")
    s = one_artifact(env, srv, prefix, "NodeHeapWatchdog", t.pid, "s3", ".heapsnapshot")
    check_snapshot(s)
    if "Leak" not in s["strings"]:
        fail("the app's Leak class is not in the snapshot")
    # The rule is finished: no rule reads the heap any more, and the inspector vigil opened
    # closes (its sampling session was its last user).
    wait_for("the inspector vigil opened to close", lambda: port not in owned_ports(t.pid),
             30)
    rss = env.rule_state("NodeRssWatchdog", t.pid)
    if rss["state"] != "Running" or rss["lifetimeOccurrences"] != 0:
        fail(f"the RSS rule fired: {rss}")
    still_correct(t, "tick")


def sc_artifacts(env, a):
    srv, prefix, cfg = setup(env, a)
    cfg["CollectionRules"] = {
        "Busy": rule(env, {"Type": "Metric", "Settings": {
            "Name": "nodejs_heap_total_bytes", "GreaterThan": 1, "SlidingWindowDuration": "0s"}},
            [{"Name": "Profile", "Type": "CollectTrace",
              "Settings": {"Egress": "azure", "Profile": "Cpu", "Duration": "00:00:02"}},
             {"Name": "Report", "Type": "CollectStacks", "Settings": {"Egress": "s3"}}],
            script="busy.js"),
        "Grows": rule(env, {"Type": "MemoryGrowth", "Settings": {
            "Metric": "NodeHeap", "Delta": "8MB"}},
            [{"Type": "Execute", "Settings": {"Path": "/bin/true"}}], script="grower.js"),
    }
    env.write("rules.yaml", cfg)
    env.start_daemon()
    b = node_app(env, a, "busy.js", "busy", ["--inspect=127.0.0.1:0"])
    # slow enough that the first heap sample (the baseline) comes well before the end
    g = node_app(env, a, "grower.js", "grower", ["--inspect=127.0.0.1:0"],
                 {"GROW_MB": "64", "STEP_MS": "300"})
    own = owned_ports(b.pid)
    finished(env, "Busy", b.pid)
    ops = op_done(env, "Busy", 2)
    if len(ops) != 2 or any(o["status"] != "Succeeded" for o in ops):
        fail(f"expected two successful operations: {ops}")
    profs = [n for n in srv.az_names(prefix) if n.endswith(".cpuprofile")]
    reps = [k for k in srv.s3_keys(prefix) if k.endswith(".report.json")]
    if len(profs) != 1 or len(reps) != 1:
        fail(f"expected one .cpuprofile in Azurite and one report in s3rver: {profs} {reps}")
    check_profile_data(srv.json("azure", profs[0]), "busy.js")
    check_report_data(srv.json("s3", reps[0]), "spinInsideBusyLoop")
    still_correct(b, "rounds")
    if owned_ports(b.pid) != own:
        fail("the app's own inspector changed")
    wait_for("MemoryGrowth NodeHeap to fire", lambda: env.rule_state("Grows", g.pid).get(
        "lifetimeOccurrences", 0) >= 1, 60, 0.5)
    env.stop_daemon()

    # A long CollectTrace, cancelled: Cancelled at once, nothing stored.
    cfg["CollectionRules"] = {"Long": rule(env, {"Type": "Startup"}, [
        {"Type": "CollectTrace",
         "Settings": {"Egress": "s3", "Profile": "Cpu", "Duration": "00:05:00"}}],
        script="busy.js")}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    op = wait_for("the long trace to run", lambda: (lambda o: o[0] if o and o[0]["status"] ==
                                                    "Running" else None)(ops_of(env, "Long")),
                  30, 0.2)
    time.sleep(1)  # the profiler is running in the target
    t0 = time.monotonic()
    req = urllib.request.Request(f"http://127.0.0.1:{env.port}/operations/{op['operationId']}",
                                 method="DELETE")
    urllib.request.urlopen(req, timeout=10).read()
    ops = op_done(env, "Long", 1)
    if ops[0]["status"] != "Cancelled":
        fail(f"not Cancelled: {ops}")
    # Cancelled, not a 5-minute profile
    print(f"cancelled in {time.monotonic() - t0:.2f} s")
    if [k for k in srv.s3_keys(prefix) if k.endswith(".cpuprofile")]:
        fail("a cancelled profile was stored")
    still_correct(b, "rounds")


def sc_refused(env, a):
    srv, prefix, cfg = setup(env, a)
    diag = os.path.join(env.dir, "diag")
    os.mkdir(diag)
    port = free_port()
    cfg["CollectionRules"] = {
        "Heap": rule(env, {"Type": "Metric", "Settings": {
            "Name": "nodejs_heap_used_bytes", "GreaterThan": 1, "SlidingWindowDuration": "0s"}},
            [{"Type": "CollectGCDump", "Settings": {"Egress": "s3"}}]),
        "Stacks": {"Filters": filters(env) + [{"Key": "CommandLine", "Value": "idle.js",
                                               "MatchType": "Contains"}],
                   "Trigger": {"Type": "Startup"},
                   "Actions": [{"Type": "CollectStacks", "Settings": {"Egress": "s3"}}]},
        "Signal": {"Filters": filters(env) + [{"Key": "CommandLine", "Value": "heapsnapshot",
                                               "MatchType": "Contains"}],
                   "Trigger": {"Type": "Startup"},
                   "Actions": [{"Type": "CollectGCDump", "Settings": {"Egress": "azure"}}]},
    }
    env.write("rules.yaml", cfg)
    env.start_daemon()
    t = node_app(env, a, "idle.js", "idle", [f"--inspect-port={port}"])
    st = wait_for("the refusal in /collectionrules", lambda: (
        lambda s: s if "AllowInspectorActivation is false" in (s.get("lastError") or "")
        else None)(env.rule_state("Heap", t.pid)), 60, 0.5)
    print(f"Heap rule: {st['state']}: {st['lastError']}")
    if st["state"] != "Running" or st["lifetimeOccurrences"] != 0:
        fail(f"the heap rule should wait, not fire: {st}")
    s = finished(env, "Stacks", t.pid, 60)
    if "AllowInspectorActivation is false" not in (s.get("lastError") or "") and \
            "AllowInspectorActivation is false" not in s.get("stateReason", ""):
        fail(f"CollectStacks' refusal does not say why: {s}")
    ops = op_done(env, "Stacks", pid=t.pid)
    if ops[0]["status"] != "Failed" or "AllowInspectorActivation" not in op_error(ops[0]):
        fail(f"the refused operation: {ops}")
    if port in owned_ports(t.pid):
        fail("an inspector was opened although activation is not allowed")
    if "Debugger" in output(t):
        fail("the target was signalled: " + output(t))
    # The signal path needs no inspector.
    g = node_app(env, a, "grower.js", "signal", ["--heapsnapshot-signal=SIGUSR2",
                                                 f"--diagnostic-dir={diag}"], {"GROW_MB": "16"})
    check_snapshot(one_artifact(env, srv, prefix, "Signal", g.pid, "azure", ".heapsnapshot"))
    wait_for("node's own file to be deleted", lambda: os.listdir(diag) == [], 10)
    still_correct(g, "tick")
    if [k for k in srv.s3_keys(prefix)]:
        fail(f"refused collections stored something: {srv.s3_keys(prefix)}")
    still_correct(t, "idle")

    # Activation allowed, but the inspector port is taken (by another process): refused up
    # front, nothing sent.
    env.stop_daemon()
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        cfg["Runtimes"] = {"Node": {"AllowInspectorActivation": True}}
        cfg["CollectionRules"] = {"Busy": rule(env, {"Type": "Startup"}, [
            {"Type": "CollectGCDump", "Settings": {"Egress": "s3"}}])}
        env.write("rules.yaml", cfg)
        env.start_daemon()
        ops = op_done(env, "Busy", pid=t.pid)
        err = op_error(ops[0])
        if ops[0]["status"] != "Failed" or f"port {port} is already taken" not in err:
            fail(f"port busy: {ops}")
        print(f"port busy: {err}")
        s = finished(env, "Busy", t.pid, 30)
        if f"port {port} is already taken" not in (s.get("lastError") or ""):
            fail(f"/collectionrules does not say why: {s}")
        if "Debugger" in output(t):
            fail("SIGUSR1 was sent: " + output(t))
        still_correct(t, "idle")
    finally:
        blocker.close()


def sc_namespaces(env, a):
    srv, prefix, cfg = setup(env, a)
    cfg["Runtimes"] = {"Node": {"AllowInspectorActivation": True}}
    cfg["CollectionRules"] = {
        "Heap": {"Filters": filters(env) + [{"Key": "CommandLine", "Value": "grower.js",
                                             "MatchType": "Contains"}],
                 "Trigger": {"Type": "MemoryUsage", "Settings": {"Metric": "NodeHeap",
                                                                 "GreaterThan": "16MB"}},
                 "Actions": [{"Type": "CollectGCDump", "Settings": {"Egress": "s3"}}],
                 "Limits": {"ActionCount": 1}},
        # ProcessName: the shell that execs node in the namespaces has the same command line
        "Report": {"Filters": filters(env) + [{"Key": "CommandLine", "Value": "busy.js",
                                               "MatchType": "Contains"},
                                              {"Key": "ProcessName", "Value": "node"}],
                   "Trigger": {"Type": "Startup"},
                   "Actions": [{"Type": "CollectStacks", "Settings": {"Egress": "azure"}}]},
        "Signal": {"Filters": filters(env) + [{"Key": "CommandLine", "Value": "heapsnapshot",
                                               "MatchType": "Contains"},
                                              {"Key": "ProcessName", "Value": "node"}],
                   "Trigger": {"Type": "Startup"},
                   "Actions": [{"Type": "CollectGCDump", "Settings": {"Egress": "azure"}}]},
    }
    env.write("rules.yaml", cfg)
    env.start_daemon()
    g = ns_app(env, a, "grower.js", "ns-grower")
    finished(env, "Heap", g.target)
    check_snapshot(one_artifact(env, srv, prefix, "Heap", g.target, "s3", ".heapsnapshot"))
    wait_for("9229 to close in the target's namespace",
             lambda: 9229 not in owned_ports(g.target), 30)
    still_correct(g, "tick")
    # 9229 taken inside the target's namespace by another process.
    i = ns_app(env, a, "busy.js", "ns-busy", before=BLOCK_9229)
    ops = op_done(env, "Report", pid=i.target)
    err = op_error(ops[0])
    if ops[0]["status"] != "Failed" or "port 9229 is already taken" not in err or \
            "another process" not in err:
        fail(f"9229 busy in a namespace: {ops}")
    print(f"9229 busy: {err}")
    if srv.az_names(prefix):
        fail(f"a refused report was stored: {srv.az_names(prefix)}")
    still_correct(i, "rounds")
    # The signal path in the namespaces: node writes into its cwd, seen through /proc/PID/root
    # and cwd; no inspector is opened although activation is allowed.
    sg = ns_app(env, a, "idle.js", "ns-signal", ["--heapsnapshot-signal=SIGUSR2"])
    check_snapshot(one_artifact(env, srv, prefix, "Signal", sg.target, "azure",
                                ".heapsnapshot"))
    if [f for f in os.listdir(env.dir) if f.startswith("Heap.")]:
        fail("node's own snapshot file was left behind")
    if "Debugger" in output(sg):
        fail("an inspector was opened: " + output(sg))
    still_correct(sg, "idle")


def sc_badpeers(env, a):
    srv, prefix, cfg = setup(env, a)
    cfg["CollectionRules"] = {"Snap": rule(env, {"Type": "Startup"}, [
        {"Type": "CollectGCDump", "Settings": {"Egress": "s3"}}])}
    env.write("rules.yaml", cfg)
    cases = {"garbage": ("Failed", "no inspector open"),
             "http404": ("Failed", "HTTP 404"),
             "close": ("Failed", "closed the connection"),
             "huge": ("Failed", "larger than"),
             "stall": ("Failed", "sent nothing for 60000 ms")}
    peers = {m: start(env, [NODE, os.path.join(a.apps, "bad_peer.js"), m, "0", env.tag], m)
             for m in list(cases) + ["stall-cancel"]}
    # Startup fires at the first sight of a process: every peer listens by then
    env.start_daemon()
    by_pid = {}
    # the stalled one, cancelled: at once, and nothing stored
    cancel = peers["stall-cancel"]
    op = wait_for("the stalled snapshot to run", lambda: ops_of(env, "Snap", cancel.pid), 30,
                  0.2)[0]
    time.sleep(1)
    t0 = time.monotonic()
    urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{env.port}/operations/{op['operationId']}", method="DELETE"),
        timeout=10).read()
    wait_for("the cancelled operation", lambda: any(
        o["operationId"] == op["operationId"] and o["status"] == "Cancelled"
        for o in ops_of(env, "Snap")), 10, 0.1)
    print(f"stalled snapshot cancelled in {time.monotonic() - t0:.2f} s")
    for mode, (status, words) in cases.items():
        p = peers[mode]
        s = finished(env, "Snap", p.pid, 120)
        by_pid[p.pid] = s
        if words not in (s.get("lastError") or ""):
            fail(f"{mode}: {words!r} not in /collectionrules' lastError: {s}")
        print(f"{mode}: {s['lastError']}")
    ops = op_done(env, "Snap", len(peers))
    failed_ops = [o for o in ops if o["status"] == "Failed"]
    if len(failed_ops) != len(cases) or any(not op_error(o) for o in failed_ops):
        fail(f"expected {len(cases)} failed operations with an error: {ops}")
    if srv.s3_keys(prefix):
        fail(f"a partial snapshot was stored: {srv.s3_keys(prefix)}")
    for p in peers.values():
        if p.poll() is not None:
            fail(f"peer {p.pid} died")


def sc_routes(env, a):
    """dotnet-monitor's artifact routes on Node processes: streamed and through the egress."""
    import artifact_routes as ar
    srv, prefix, cfg = setup(env, a)
    env.write("egress.yaml", cfg)
    env.start_daemon()
    d = env.d
    b = node_app(env, a, "busy.js", "busy", ["--inspect=127.0.0.1:0"])
    ar.wait_runtime(d, b.pid, "node")
    q = f"pid={b.pid}"
    # streamed: a heap snapshot, a CPU profile, the diagnostic report (no Accept: Node's JSON;
    # its stack is the app's, in its busy loop or between two rounds of it)
    check_snapshot(json.loads(ar.streamed(d, f"/gcdump?{q}", b.pid, ".heapsnapshot",
                                          "application/octet-stream")))
    check_profile_data(json.loads(ar.streamed(
        d, f"/trace?{q}&durationSeconds=2&profile=Cpu", b.pid, ".cpuprofile",
        "application/octet-stream")), "busy.js")
    check_report_data(json.loads(ar.streamed(d, f"/stacks?{q}", b.pid, ".report.json",
                                             "application/json")), "busy.js")
    check_report_data(json.loads(ar.streamed(d, f"/stacks?{q}", b.pid, ".report.json",
                                             "application/json",
                                             {"Accept": "application/json"})))
    # through the egress: operations with tags, artifacts read back from s3rver and Azurite
    uid = env.get(f"/process?{q}")["uid"]
    op = ar.via_egress(d, "GET", f"/gcdump?uid={uid}&tags=heap,node", "s3")
    if op["status"] != "Succeeded" or sorted(op["tags"]) != ["heap", "node"]:
        fail(f"/gcdump operation: {op}")
    snaps = [k for k in srv.s3_keys(prefix) if k.endswith(f"_{b.pid}.heapsnapshot")]
    if len(snaps) != 1:
        fail(f"expected one heap snapshot in s3rver: {srv.s3_keys(prefix)}")
    check_snapshot(srv.json("s3", snaps[0]))
    op = ar.via_egress(d, "GET", f"/trace?{q}&durationSeconds=2", "azure")
    if op["status"] != "Succeeded":
        fail(f"/trace operation: {op}")
    profs = [n for n in srv.az_names(prefix) if n.endswith(".cpuprofile")]
    if len(profs) != 1:
        fail(f"expected one .cpuprofile in Azurite: {srv.az_names(prefix)}")
    check_profile_data(srv.json("azure", profs[0]), "busy.js")
    op = ar.via_egress(d, "GET", f"/stacks?{q}", "s3")
    reps = [k for k in srv.s3_keys(prefix) if k.endswith(".report.json")]
    if op["status"] != "Succeeded" or len(reps) != 1:
        fail(f"/stacks operation: {op}, {srv.s3_keys(prefix)}")
    check_report_data(srv.json("s3", reps[0]), "busy.js")
    # what Node cannot do is refused before anything starts, saying why
    ar.refused(d, "GET", f"/stacks?{q}", 400, "VG_EUNSUPPORTED", ["PlainText"],
               headers={"Accept": "text/plain"})
    ar.refused(d, "GET", f"/trace?{q}&profile=Http", 400, "VG_EUNSUPPORTED", ["Cpu"])
    ar.refused(d, "POST", f"/trace?{q}", 400, "VG_EUNSUPPORTED", ["EventPipe"],
               body=json.dumps({"Providers": [{"Name": "Microsoft-Windows-DotNETRuntime"}]}),
               headers={"Content-Type": "application/json"})
    # durationSeconds=-1: the profile runs until DELETE ?stop=true, then is kept whole; without
    # an egress it could not be stopped: refused
    op = ar.start_indefinite(d, "GET", f"/trace?{q}&durationSeconds=-1", "azure")
    time.sleep(2)  # samples to keep
    ar.stop_and_wait(d, op, "the CPU profile")
    profs = [n for n in srv.az_names(prefix) if n.endswith(".cpuprofile")]
    if len(profs) != 2:
        fail(f"expected a second .cpuprofile in Azurite: {srv.az_names(prefix)}")
    for n in profs:
        check_profile_data(srv.json("azure", n), "busy.js")
    ar.refused(d, "GET", f"/trace?{q}&durationSeconds=-1", 400, "VG_EUNSUPPORTED",
               ["egressProvider"])
    ar.refused(d, "GET", f"/trace?{q}&profile=Disk", 400, "VG_EINVAL", ["Disk"])
    for path in ("/gcdump", "/trace", "/stacks"):
        ar.head_refused(d, f"{path}?{q}")
    # clients that leave while their CPU profiles run (nothing sent yet): the profiles stop
    took = ar.clients_leave(d, f"/trace?{q}&durationSeconds=120&profile=Cpu",
                            f"/trace?{q}&durationSeconds=1&profile=Cpu", 3)
    print(f"three profiles whose clients left stopped within {took:.1f} s")
    # a process whose inspector cannot be reached (activation not allowed): the error is the
    # answer, not a 200 cut short
    i = node_app(env, a, "idle.js", "idle")
    ar.wait_runtime(d, i.pid, "node")
    ar.refused(d, "GET", f"/gcdump?pid={i.pid}", 403, "VG_EPERM", ["AllowInspectorActivation"])
    still_correct(b, "rounds")


SCENARIOS = {"watchdog": sc_watchdog, "artifacts": sc_artifacts, "refused": sc_refused,
             "namespaces": sc_namespaces, "badpeers": sc_badpeers, "routes": sc_routes}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--apps", required=True)
    ap.add_argument("--build", required=True)
    ARGS = ap.parse_args()
    ARGS.apps = os.path.abspath(ARGS.apps)

    def scenario(env):
        vt.need("node", "the Node adapter's tests")
        if os.geteuid() != 0:
            raise Skip("needs root (signals to targets, namespaces)")
        SCENARIOS[ARGS.scenario](env, ARGS)
    vt.run(scenario, name="node_daemon_" + ARGS.scenario, env_class=Env)


if __name__ == "__main__":
    main()
