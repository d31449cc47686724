"""Integration tests of engine/runtimes/node against real node (20) processes, through the
node_probe driver. Each artifact is checked by a real parser: the heap snapshot's meta node and
edge counts against its arrays, the CPU profile's nodes and samples, the diagnostic report's
JavaScript stack. Targets keep running and their own output stays correct.

Exits 77 (skipped) without node or without root (namespaces, SIGUSR1 to other processes)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

PROBE = os.environ.get("VG_NODE_PROBE", "")
APPS = os.environ.get("VG_NODE_APPS", "")
NODE = shutil.which("node")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def wait_for(cond, what, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """A process whose stdout goes to a file; stopped (by pid) at the end of the test."""

    def __init__(self, env, argv, name, extra_env=None):
        self.out_path = os.path.join(env.dir, name + ".out")
        e = dict(os.environ)
        e.update(extra_env or {})
        self.proc = subprocess.Popen(argv, stdout=open(self.out_path, "w"),
                                     stderr=subprocess.STDOUT, cwd=env.dir, env=e,
                                     start_new_session=True)
        env.targets.append(self)
        wait_for(lambda: "ready" in self.output() or "listening" in self.output(),
                 name + " to start")
        self.pid = self.proc.pid

    def output(self):
        with open(self.out_path) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


# Takes 9229 in the namespace, and waits until it listens (9229 = 0x240D in /proc/net/tcp): a
# fixed sleep was not always enough on a loaded machine.
BLOCK_9229 = ("python3 -c 'import socket,time; s=socket.socket(); "
              "s.bind((\"127.0.0.1\",9229)); s.listen(); time.sleep(600)' & "
              "until grep -q ':240D 00000000:0000 0A' /proc/net/tcp; do sleep 0.05; done;")


class NsTarget(Target):
    """A node process in its own network and PID namespace (unshare -n -p -f); loopback up."""

    def __init__(self, env, node_args, name, before=""):
        script = "ip link set lo up && %s exec %s" % (before, " ".join(node_args))
        super().__init__(env, ["unshare", "-n", "-p", "-f", "--kill-child", "sh", "-c", script],
                         name)
        # The node process is the forked child of unshare (pid 1 in its namespace).
        def child():
            try:
                with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                    kids = f.read().split()
            except OSError:
                return None
            for k in kids:
                try:
                    if os.path.basename(os.readlink("/proc/%s/exe" % k)).startswith("node"):
                        return int(k)
                except OSError:
                    pass
            return None
        self.pid = wait_for(child, "the node process inside the namespaces")


class Env:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vg-node-")
        self.targets = []

    def close(self):
        for t in self.targets:
            t.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def probe(self, *args, timeout=120):
        r = subprocess.run([PROBE] + [str(a) for a in args], capture_output=True, text=True,
                           timeout=timeout)
        for mark in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            check(mark not in r.stderr, "sanitizer report:\n" + r.stderr)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        check(lines, "no result from node_probe %s: %s %s" % (args, r.stdout, r.stderr))
        res = json.loads(lines[-1])
        check(res["ok"] == (r.returncode == 0), "exit code and result disagree: %r" % res)
        return res


def node_app(env, app, name, flags=(), extra_env=None):
    return Target(env, [NODE] + list(flags) + [os.path.join(APPS, app)], name, extra_env)


def ok(res, what):
    check(res["ok"], "%s failed: %r" % (what, res))
    return res


def failed(res, code, words, artifact, what):
    check(not res["ok"], "%s should have failed: %r" % (what, res))
    check(res["error"] == code, "%s: expected %s, got %r" % (what, code, res))
    for w in words:
        check(w in res["message"], "%s: %r not in the message %r" % (what, w, res["message"]))
    if artifact:
        check(not os.path.exists(artifact), "%s: a partial artifact was claimed: %s" % (what,
                                                                                       artifact))


def check_snapshot_data(snap):
    """snapshot.meta's node and edge counts match its arrays."""
    meta = snap["snapshot"]["meta"]
    nf, ef = len(meta["node_fields"]), len(meta["edge_fields"])
    check(len(snap["nodes"]) % nf == 0 and len(snap["edges"]) % ef == 0, "ragged arrays")
    check(snap["snapshot"]["node_count"] == len(snap["nodes"]) // nf,
          "node_count %d vs %d nodes" % (snap["snapshot"]["node_count"], len(snap["nodes"]) // nf))
    check(snap["snapshot"]["edge_count"] == len(snap["edges"]) // ef,
          "edge_count %d vs %d edges" % (snap["snapshot"]["edge_count"], len(snap["edges"]) // ef))
    check(snap["snapshot"]["node_count"] > 1000, "a tiny snapshot")
    return snap


def check_profile_data(prof, script=None):
    """Nodes and samples; with script, the hottest code is the app's own (a function of that
    script: which one depends on what V8 inlined by then)."""
    check(prof["nodes"] and prof["samples"], "profile without nodes or samples")
    check(len(prof["samples"]) == len(prof["timeDeltas"]), "samples and timeDeltas differ")
    if script:
        top = max(prof["nodes"], key=lambda n: n.get("hitCount", 0))["callFrame"]
        check(top["url"].endswith("/" + script),
              "the hottest function is %s in %r, not the app's" % (top["functionName"],
                                                                   top["url"]))
    return prof


def check_report_data(rep, frame=None):
    for k in ("header", "javascriptStack", "javascriptHeap", "libuv"):
        check(k in rep, "report without " + k)
    if frame:
        stack = "\n".join(rep["javascriptStack"]["stack"])
        check(frame in stack, "%s not in the report's stack:\n%s" % (frame, stack))
    return rep


def load(path):
    with open(path) as f:
        return json.load(f)


def check_snapshot(path):
    return check_snapshot_data(load(path))


def check_profile(path, script=None):
    return check_profile_data(load(path), script)


def check_report(path, frame=None):
    return check_report_data(load(path), frame)


def output_still_correct(t, marker):
    """The target is alive, printed new lines since, and every checksum line is correct."""
    n = t.output().count(marker)
    wait_for(lambda: t.output().count(marker) > n, "new output from the target")
    check(t.alive(), "the target died")
    check("BAD" not in t.output() and "Error" not in t.output(), "target output:\n" + t.output())


def owned_ports(pid):
    """Ports pid listens on (its own sockets, in its namespace)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            for line in f.readlines()[1:]:
                p = line.split()
                if p[3] == "0A" and p[9] in inodes:
                    ports.add(int(p[1].split(":")[1], 16))
    return ports


# ---- the tests ----

def test_detect(env):
    t = node_app(env, "idle.js", "idle", ["--heapsnapshot-signal=SIGUSR2",
                                          "--diagnostic-dir", env.dir, "--inspect-port=0"],
                 {"NODE_OPTIONS": '--report-on-signal --report-dir="/tmp/some dir"'})
    res = ok(env.probe("detect", t.pid), "detect")
    check(res["node"], "node not detected")
    o = res["options"]
    check(o["heapsnapshot_signal"] == signal.SIGUSR2, "heapsnapshot signal: %r" % o)
    check(o["diagnostic_dir"] == env.dir and o["inspect_port"] == 0, "options: %r" % o)
    check(o["report_signal"] == signal.SIGUSR2 and o["report_dir"] == "/tmp/some dir",
          "NODE_OPTIONS: %r" % o)
    check(not o["inspect"], "inspect set: %r" % o)
    # Not node: a program named node that is not node, and an ordinary process.
    fake = env.path("node")
    shutil.copy("/bin/sleep", fake)
    f = Target(env, ["sh", "-c", "echo ready; exec %s 60" % fake], "fake")
    wait_for(lambda: os.readlink("/proc/%d/exe" % f.pid) == fake, "the fake node to exec")
    check(not ok(env.probe("detect", f.pid), "detect fake")["node"], "/bin/sleep taken for node")
    check(not ok(env.probe("detect", os.getpid()), "detect python")["node"], "python is node")


def test_open_inspector(env):
    """--inspect already open: heap usage, snapshot, profile, report; the app keeps going."""
    t = node_app(env, "grower.js", "grower", ["--inspect=127.0.0.1:0"], {"GROW_MB": "16"})
    wait_for(lambda: "heapMB 16" in t.output(), "the heap to grow", 60)
    u = ok(env.probe("usage", t.pid), "usage")
    check(u["used"] > 8e6 and u["total"] >= u["used"], "heap usage: %r" % u)
    snap = env.path("grower.heapsnapshot")
    r = ok(env.probe("snapshot", t.pid, snap), "snapshot")
    check(r["bytes"] == os.path.getsize(snap) and r["exposure_ms"] == 0, "bytes: %r" % r)
    s = check_snapshot(snap)
    check("Leak" in s["strings"], "the app's Leak class is not in the snapshot")
    output_still_correct(t, "tick")

    b = node_app(env, "busy.js", "busy", ["--inspect=127.0.0.1:0"])
    prof = env.path("busy.cpuprofile")
    ok(env.probe("profile", b.pid, 1500, prof), "profile")
    check_profile(prof, "busy.js")
    rep = env.path("busy.report.json")
    ok(env.probe("report", b.pid, rep), "report")
    check_report(rep, "spinInsideBusyLoop")
    output_still_correct(b, "rounds")
    # The inspector is still there for the app's own debugger.
    check(ok(env.probe("find", b.pid), "find")["endpoint"]["port"] > 0, "inspector gone")


def test_activation(env):
    """No inspector: refused unless allowed; when allowed SIGUSR1 opens it and vigil closes it."""
    port = free_port()
    t = node_app(env, "grower.js", "grower", ["--inspect-port=%d" % port], {"GROW_MB": "8"})
    snap = env.path("refused.heapsnapshot")
    failed(env.probe("snapshot", t.pid, snap), "VG_EPERM",
           ["no inspector open", "AllowInspectorActivation is false"], snap, "disallowed")
    check(port not in owned_ports(t.pid), "an inspector was opened while not allowed")
    snap = env.path("activated.heapsnapshot")
    r = ok(env.probe("--allow-activation", "snapshot", t.pid, snap), "activated snapshot")
    check_snapshot(snap)
    check(r["exposure_ms"] > 0, "no exposure window: %r" % r)
    print("exposure window (SIGUSR1 to closed port), snapshot of an 8 MB heap: %d ms"
          % r["exposure_ms"])
    check(port not in owned_ports(t.pid), "the inspector vigil opened is still listening")
    output_still_correct(t, "tick")
    # Twice: the second activation works as the first.
    ok(env.probe("--allow-activation", "usage", t.pid), "second activation")
    check(port not in owned_ports(t.pid), "the inspector vigil opened is still listening")


def test_port_busy(env):
    """The inspector's port is taken: refused up front, nothing sent, the app untouched."""
    port = free_port()
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        t = node_app(env, "idle.js", "idle", ["--inspect-port=%d" % port])
        out = env.path("busy.heapsnapshot")
        failed(env.probe("--allow-activation", "snapshot", t.pid, out), "VG_EBUSY",
               ["port %d is already taken" % port, "another process"], out, "port busy")
        output_still_correct(t, "idle")
        check("Debugger" not in t.output(), "SIGUSR1 was sent: " + t.output())
    finally:
        blocker.close()


def test_namespaces(env):
    """Target in its own network + PID namespace: open inspector, activation on its 9229, 9229
    busy inside the namespace, and the signal path."""
    t = NsTarget(env, [NODE, "--inspect=127.0.0.1:0", os.path.join(APPS, "grower.js")],
                 "ns-open")
    snap = env.path("ns.heapsnapshot")
    ok(env.probe("snapshot", t.pid, snap), "snapshot in a namespace")
    check_snapshot(snap)
    output_still_correct(t, "tick")

    # 9229 is free in a fresh namespace: the default port, as in a pod.
    a = NsTarget(env, [NODE, os.path.join(APPS, "busy.js")], "ns-activate")
    rep = env.path("ns.report.json")
    r = ok(env.probe("--allow-activation", "report", a.pid, rep), "report with activation")
    check_report(rep, "spinInsideBusyLoop")
    # the inspector closes asynchronously after _debugEnd (the app's loop runs it)
    deadline = time.monotonic() + 20
    while 9229 in owned_ports(a.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    check(9229 not in owned_ports(a.pid), "9229 still open in the target's namespace")
    print("exposure window, report of a busy app in a namespace: %d ms" % r["exposure_ms"])
    output_still_correct(a, "rounds")

    # 9229 taken inside the target's namespace by another process.
    blocker = BLOCK_9229
    b = NsTarget(env, [NODE, os.path.join(APPS, "idle.js")], "ns-busy", before=blocker)
    out = env.path("ns-busy.heapsnapshot")
    failed(env.probe("--allow-activation", "snapshot", b.pid, out), "VG_EBUSY",
           ["port 9229 is already taken", "another process"], out, "9229 busy in a namespace")
    output_still_correct(b, "idle")


def test_signal_path(env):
    diag = env.path("diag")
    os.mkdir(diag)
    t = node_app(env, "grower.js", "grower", ["--heapsnapshot-signal=SIGUSR2",
                                              "--diagnostic-dir=" + diag], {"GROW_MB": "16"})
    wait_for(lambda: "heapMB 16" in t.output(), "the heap to grow", 60)
    snap = env.path("signal.heapsnapshot")
    r = ok(env.probe("signal", t.pid, snap), "signal snapshot")
    check_snapshot(snap)
    check(r["bytes"] == os.path.getsize(snap), "bytes: %r" % r)
    check(os.listdir(diag) == [], "node's file was not deleted: %r" % os.listdir(diag))
    output_still_correct(t, "tick")
    # In namespaces, with the default directory (its cwd).
    n = NsTarget(env, [NODE, "--heapsnapshot-signal=SIGUSR2", os.path.join(APPS, "idle.js")],
                 "ns-signal")
    snap = env.path("ns-signal.heapsnapshot")
    ok(env.probe("signal", n.pid, snap), "signal snapshot in a namespace")
    check_snapshot(snap)
    check(not [f for f in os.listdir(env.dir) if f.startswith("Heap.")], "file left behind")
    # No such option: said so.
    i = node_app(env, "idle.js", "idle")
    out = env.path("nosignal.heapsnapshot")
    failed(env.probe("signal", i.pid, out), "VG_EUNSUPPORTED", ["--heapsnapshot-signal"], out,
           "no signal option")


def test_bad_peers(env):
    cases = [
        ("garbage", [], "VG_EPERM", ["no inspector open"]),
        ("http404", [], "VG_EPERM", ["HTTP 404", "not a Node inspector"]),
        ("stall", ["--idle-ms", "1500"], "VG_ETIMEDOUT", ["sent nothing for 1500 ms"]),
        ("close", [], "VG_ECONNRESET", ["closed the connection"]),
        ("huge", [], "VG_E2BIG", ["larger than"]),
    ]
    for mode, opts, code, words in cases:
        p = Target(env, [NODE, os.path.join(APPS, "bad_peer.js"), mode], mode)
        out = env.path(mode + ".heapsnapshot")
        t0 = time.monotonic()
        failed(env.probe(*(opts + ["snapshot", p.pid, out])), code, words, out, mode)
        print("bad peer %s: refused as expected (%.1f s)" % (mode, time.monotonic() - t0))


def test_cancel(env):
    b = node_app(env, "busy.js", "busy", ["--inspect=127.0.0.1:0"])
    out = env.path("cancel.cpuprofile")
    t0 = time.monotonic()
    # VG_ECANCELED (not a 20 s profile) is the proof it stopped early
    failed(env.probe("--cancel-after-ms", 500, "profile", b.pid, 20000, out), "VG_ECANCELED",
           ["canceled"], out, "canceled profile")
    print("canceled after %.1f s" % (time.monotonic() - t0))
    output_still_correct(b, "rounds")
    ok(env.probe("usage", b.pid), "the inspector works after a canceled session")


TESTS = [test_detect, test_open_inspector, test_activation, test_port_busy, test_namespaces,
         test_signal_path, test_bad_peers, test_cancel]


def main():
    if not NODE or not PROBE:
        print("node or node_probe missing: skipped")
        return 77
    if os.geteuid() != 0:
        print("needs root (namespaces, signals to targets): skipped")
        return 77
    only = sys.argv[1:]
    failures = 0
    for t in TESTS:
        if only and t.__name__ not in only:
            continue
        env = Env()
        try:
            t(env)
            print("PASS", t.__name__)
        except Exception:
            failures += 1
            print("FAIL", t.__name__)
            traceback.print_exc()
            for tg in env.targets:
                print("--- output of pid %d:\n%s" % (tg.proc.pid, tg.output()[-2000:]))
        finally:
            env.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
