#!/usr/bin/env python3
"""The .NET IPC layer (engine/runtimes/dotnet) against the real runtime, through vg_dnipc_cli:

    test_dotnet_ipc.py SCENARIO --cli PATH --apps DIR --work DIR

DIR holds the test app and the checkers built by build.sh (the dotnet_apps fixture). Every
scenario starts its own processes (in their own process groups, killed by group at the end, so
nothing another test started is touched), checks results with real readers (ClrMD opens the
runtime's dumps, Microsoft.Diagnostics.NETCore.Client cross-checks ProcessInfo and the
environment) and polls with deadlines. Exit 77 = skipped (no dotnet, or not root where needed)."""

import glob
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

from dntest import Skip, eq, fail, find_dac, wait_for  # noqa: E402
import dntest  # noqa: E402


def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root (namespaces, other users)")


class Proc(dntest.Proc):
    def __init__(self, ctx, argv, env=None, name="proc"):
        super().__init__(ctx.procs, ctx.path(f"{name}.{len(ctx.procs)}.out"), argv, env)


class Ctx:
    def __init__(self, args):
        self.cli = args.cli
        self.apps = args.apps
        self.app = os.path.join(args.apps, "app", "VigilTestApp")
        self.checker = os.path.join(args.apps, "checkers", "VigilDotnetChecker.dll")
        if not shutil.which("dotnet") or not os.path.exists(self.app):
            raise Skip("no dotnet SDK or test app (the dotnet_apps fixture did not build it)")
        os.makedirs(args.work, exist_ok=True)
        os.chmod(args.work, 0o755)
        self.work = tempfile.mkdtemp(prefix=f"{args.scenario[:8]}-", dir=args.work)
        os.chmod(self.work, 0o755)
        self.procs = []
        self.dac = find_dac()

    def path(self, name):
        return os.path.join(self.work, name)

    def run(self, *argv, ok=True, timeout=120):
        """vg_dnipc_cli ARGV. ok: True = must succeed, False = must fail, None = either."""
        p = subprocess.run([self.cli, *map(str, argv)], capture_output=True, text=True,
                           timeout=timeout)
        if ok is True and p.returncode != 0:
            fail(f"vg_dnipc_cli {' '.join(map(str, argv))} failed ({p.returncode}): {p.stderr}")
        if ok is False and p.returncode == 0:
            fail(f"vg_dnipc_cli {' '.join(map(str, argv))} succeeded, expected an error:\n"
                 f"{p.stdout}")
        return p

    def kv(self, *argv):
        return dict(line.split("=", 1) for line in self.run(*argv).stdout.splitlines()
                    if "=" in line)

    def checker_run(self, *argv, ok=True):
        p = subprocess.run(["dotnet", self.checker, *map(str, argv)], capture_output=True,
                           text=True, timeout=300)
        if ok and p.returncode != 0:
            fail(f"checker {' '.join(map(str, argv))} failed ({p.returncode}):\n{p.stdout}"
                 f"{p.stderr}")
        if not ok and p.returncode == 0:
            fail(f"checker {' '.join(map(str, argv))} accepted a bad input:\n{p.stdout}")
        return p

    def check_dump(self, path, dump_type, marker=None, threads=None):
        if not self.dac:
            fail("no libmscordaccore.so in the runtime directory")
        argv = ["dump", path, "--dac", self.dac, "--min-threads", "2"]
        if dump_type in ("Mini", "Triage"):
            argv.append("--no-heap")
        else:
            if marker:
                argv += ["--string", marker]
            if threads:
                argv += ["--thread-name", threads]
        return self.checker_run(*argv).stdout

    def start_app(self, *args, env=None, wrap=(), name="app"):
        return Proc(self, [*wrap, self.app, *args], env=env, name=name)

    def cleanup(self):
        for p in self.procs:
            p.kill()
        shutil.rmtree(self.work, ignore_errors=True)


def app_pid(app):
    return int(app.wait_line(r"^started pid=(\d+)").group(1))


def child_pid(parent, timeout=20):
    """The host pid of the last process in a chain of single children (unshare -> sh -> app)."""
    def last():
        pid = parent
        while True:
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    kids = f.read().split()
            except OSError:
                return None
            if not kids:
                break
            pid = int(kids[0])
        try:
            with open(f"/proc/{pid}/comm") as f:
                return pid if f.read().strip().startswith("VigilTestApp") else None
        except OSError:
            return None
    return wait_for(last, timeout, f"the app under pid {parent}")


# ---- scenarios --------------------------------------------------------------------------------


def sc_connect(ctx):
    """Connect mode: ProcessInfo equals NETCore.Client's, field by field; ResumeRuntime on a
    running runtime is a no-op."""
    app = ctx.start_app("--threads", "2")
    pid = app_pid(app)
    mine = ctx.kv("info", pid)
    eq(mine["Command"], "3", "ProcessInfo command version (.NET 10 answers ProcessInfo3)")
    eq(mine["ProcessId"], str(pid), "ProcessId")
    eq(mine["ManagedEntrypointAssemblyName"], "VigilTestApp", "entry assembly")
    eq(mine["OperatingSystem"], "Linux", "OS")
    if not mine["ClrProductVersionString"].startswith("10."):
        fail(f"runtime version {mine['ClrProductVersionString']}")
    theirs = dict(line.split("=", 1) for line in
                  ctx.checker_run("processinfo", pid).stdout.splitlines() if "=" in line)
    for k, v in theirs.items():
        eq(mine.get(k), v, f"ProcessInfo {k} (vigil vs NETCore.Client)")
    sock = ctx.kv("find", pid)["socket"]
    eq(sock, f"/proc/{pid}/root/tmp/dotnet-diagnostic-{pid}-{start_time(pid)}-socket", "socket")
    # the same runtime through an explicit socket path
    eq(ctx.kv("info", "@" + sock)["RuntimeInstanceCookie"], mine["RuntimeInstanceCookie"],
       "cookie via @socket")
    ctx.run("resume", pid)
    if not app.alive():
        fail("the app died")


def start_time(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def bind_stale(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the file stays: a socket nobody listens on


def sc_stale_socket(ctx):
    """Sockets left behind by killed runtimes are never taken for a live process: the start
    time in the name must match; a socket with the right name but nobody listening (a pid reused
    by a non-.NET process) gives a clear error."""
    app = ctx.start_app("--threads", "1")
    pid = app_pid(app)
    key = int(start_time(pid))
    # an older process with the same pid left a socket (another start time)
    stale = f"/tmp/dotnet-diagnostic-{pid}-{key - 7}-socket"
    bind_stale(stale)
    try:
        eq(ctx.kv("find", pid)["socket"],
           f"/proc/{pid}/root/tmp/dotnet-diagnostic-{pid}-{key}-socket", "socket among stale ones")
        ctx.kv("info", pid)
    finally:
        os.unlink(stale)
    # a killed runtime: its socket stays, the process is gone
    app.kill()
    real = f"/tmp/dotnet-diagnostic-{pid}-{key}-socket"
    if not os.path.exists(real):
        fail("SIGKILL was expected to leave the runtime's socket behind")
    p = ctx.run("info", pid, ok=False)
    if "cannot read /proc" not in p.stderr or "VG_ESRCH" not in p.stderr:
        fail(f"dead pid: {p.stderr}")
    os.unlink(real)
    # pid reuse: a non-.NET process whose pid and start time match a stale socket's name
    sleeper = Proc(ctx, ["sleep", "600"], name="sleep")
    spid = sleeper.p.pid
    wait_for(lambda: os.path.exists(f"/proc/{spid}/stat"), 5, "sleep")
    p = ctx.run("info", spid, ok=False)
    if "no diagnostic socket" not in p.stderr:
        fail(f"non-.NET process: {p.stderr}")
    name = f"/tmp/dotnet-diagnostic-{spid}-{start_time(spid)}-socket"
    bind_stale(name)
    try:
        p = ctx.run("info", spid, ok=False)
        if "nobody listens" not in p.stderr or "VG_ECONNREFUSED" not in p.stderr:
            fail(f"stale socket: {p.stderr}")
    finally:
        os.unlink(name)


def sc_dump_types(ctx):
    """Each dump type written by the runtime, opened by ClrMD: managed threads by name and the
    planted string on the heap (WithHeap, Full); stacks only (Mini, Triage). The app runs on."""
    marker = "vigil-marker-%d" % os.getpid()
    app = ctx.start_app("--threads", "3", "--plant", marker, "--tick", "200")
    pid = app_pid(app)
    sizes = {}
    for t in ("Mini", "Triage", "WithHeap", "Full"):
        path = ctx.path(f"dump.{t}")
        eq(ctx.kv("dump", pid, path, t)["dumped"], path, "dump path")
        sizes[t] = os.path.getsize(path)
        out = ctx.check_dump(path, t, marker=marker, threads="vigil-sleeper")
        print(f"{t}: {sizes[t]} bytes; {out.strip().splitlines()[-1]}")
        os.unlink(path)
    if not sizes["WithHeap"] > sizes["Mini"] or not sizes["Full"] >= sizes["WithHeap"]:
        fail(f"dump sizes do not grow with the type: {sizes}")
    n = len(re.findall(r"^tick", app.text(), re.M))
    wait_for(lambda: len(re.findall(r"^tick", app.text(), re.M)) >= n + 3, 10,
             "the app to keep ticking after the dumps")


def sc_env(ctx):
    """SetEnvironmentVariable is seen by the app and by NETCore.Client; ProcessEnvironment
    reads it back; an unset variable is a clear not-found."""
    app = ctx.start_app("--watch-env", "VIGIL_TEST_VAR")
    pid = app_pid(app)
    app.wait_line(r"^env VIGIL_TEST_VAR=<unset>$")
    value = "h\u00e9llo w\u00f6rld \U0001F600 = ;"
    ctx.run("setenv", pid, "VIGIL_TEST_VAR", value)
    app.wait_line("^env VIGIL_TEST_VAR=" + re.escape(value) + "$", what="the app to see the value")
    eq(ctx.kv("getenv", pid, "VIGIL_TEST_VAR")["VIGIL_TEST_VAR"], value, "getenv")
    eq(ctx.checker_run("environment", pid, "VIGIL_TEST_VAR").stdout.strip(), value,
       "NETCore.Client's view")
    p = ctx.run("getenv", pid, "VIGIL_NOT_SET_ANYWHERE", ok=False)
    if "VG_ENOTFOUND" not in p.stderr or "not set" not in p.stderr:
        fail(f"unset variable: {p.stderr}")
    p = ctx.run("setenv", pid, "A=B", "x", ok=False)
    if "invalid variable name" not in p.stderr:
        fail(f"bad name: {p.stderr}")


def sc_errors(ctx):
    """Failures carry the runtime's reason (GenerateCoreDump3's message) and the target."""
    app = ctx.start_app()
    pid = app_pid(app)
    p = ctx.run("dump", pid, "/nonexistent-dir-vigil/dump", "WithHeap", ok=False)
    print(p.stderr.strip())
    if f"pid {pid}" not in p.stderr or "GenerateCoreDump3" not in p.stderr:
        fail(f"dump into a missing directory: {p.stderr}")
    if "nonexistent-dir-vigil" not in p.stderr:
        fail(f"the runtime's message should name the path: {p.stderr}")
    p = ctx.run("dump", pid, ctx.path("x"), "Huge", ok=None)
    eq(p.returncode, 2, "unknown dump type")
    if not app.alive():
        fail("the app died")
    ctx.kv("info", pid)  # still answering


def sc_trace(ctx):
    """The EventPipe pieces the nettrace parser builds on: CollectTracing2 returns a session and
    a stream that starts with the nettrace magic; StopTracing on a new connection ends it and the
    runtime closes the stream; a second session can start afterwards."""
    app = ctx.start_app("--alloc", "20")
    pid = app_pid(app)
    for i in range(2):
        out = ctx.path(f"trace{i}.nettrace")
        kv = ctx.kv("trace", pid, out, 1500, "Microsoft-Windows-DotNETRuntime", "0x1", "4")
        if int(kv["session"]) == 0:
            fail("session id 0")
        size = os.path.getsize(out)
        eq(int(kv["bytes"]), size, "bytes pumped vs file")
        with open(out, "rb") as f:
            head = f.read(8)
        eq(head, b"Nettrace", "stream magic")
        if size < 1000:
            fail(f"only {size} bytes of trace from an allocating app")
    # counters need the provider argument; the stream still ends cleanly
    kv = ctx.kv("trace", pid, ctx.path("counters.nettrace"), 2500, "System.Runtime", "0xffffffff",
                "4", "EventCounterIntervalSec=1")
    if int(kv["bytes"]) < 500:
        fail(f"counter trace too small: {kv}")


def listener(ctx, sock, *opts, wrap=(), name="listen"):
    p = Proc(ctx, [*wrap, ctx.cli, "listen", sock, *opts], name=name)
    p.wait_line(r"^listening ")
    return p


def sc_listen_suspend(ctx):
    """Listen mode with `suspend`: the runtime waits until resumed; what runs before the resume
    (the --exec hook, standing for a Startup rule's Execute) is provably done before the app's
    first line. A listener that dies without resuming leaves the runtime waiting for the next
    one, which resumes it."""
    sock = ctx.path("d/port.sock")
    marker = ctx.path("marker")
    # 1. a listener that never resumes
    l1 = listener(ctx, sock, "--no-resume")
    app = ctx.start_app("--check-file", marker,
                        env={"DOTNET_DiagnosticPorts": f"{sock},suspend"})
    m = l1.wait_line(r"^added (\S+) pid=(\d+) host_pid=(\d+) uid=(\d+)$")
    eq(int(m.group(3)), app.p.pid, "host pid from SO_PEERCRED")
    eq(int(m.group(2)), app.p.pid, "advertised pid")
    info = l1.wait_line(r"^info \S+ ManagedEntrypointAssemblyName=(.*)$")
    l1.wait_line(r"^info \S+ ProcessId=%d$" % app.p.pid)
    time.sleep(1.5)
    if app.text():
        fail(f"a suspended runtime ran managed code: {app.text()}")
    print(f"entry assembly while suspended: {info.group(1)!r}")
    l1.kill(signal.SIGTERM)
    # 2. a new listener (vigil restarted) with a pre-resume action
    l2 = listener(ctx, sock, "--exec", f"touch {marker}")
    l2.wait_line(r"^exec \S+ status=0$")
    l2.wait_line(r"^resumed \S+ rc=0$")
    app.wait_line(r"^started pid=%d marker=present$" % app.p.pid,
                  what="the app's first line, after the pre-resume action")
    # control: without a listener doing it, the marker is absent
    os.unlink(marker)
    app2 = ctx.start_app("--check-file", marker)
    app2.wait_line(r"^started pid=\d+ marker=absent$")


def sc_listen_nosuspend(ctx):
    """Listen mode with `nosuspend`: the app runs before anyone listens; once the listener is
    up the runtime connects, and a run of commands (each on a new connection the runtime makes
    after the previous one) all succeed: ProcessInfo, SetEnvironmentVariable, ResumeRuntime (a
    no-op), ProcessEnvironment, a dump ClrMD opens."""
    sock = ctx.path("d/port.sock")
    dumps = ctx.path("dumps")
    os.makedirs(dumps)
    marker = "vigil-listen-%d" % os.getpid()
    app = ctx.start_app("--threads", "2", "--plant", marker, "--watch-env", "VG_LISTEN",
                        env={"DOTNET_DiagnosticPorts": f"{sock},nosuspend"})
    pid = app_pid(app)
    l = listener(ctx, sock, "--setenv", "VG_LISTEN", "from-listener", "--getenv", "VG_LISTEN",
                 "--dump", dumps, "WithHeap")
    l.wait_line(r"^added \S+ pid=%d " % pid)
    l.wait_line(r"^info \S+ ManagedEntrypointAssemblyName=VigilTestApp$")
    l.wait_line(r"^setenv \S+ rc=0$")
    l.wait_line(r"^resumed \S+ rc=0$")
    l.wait_line(r"^getenv \S+ VG_LISTEN=from-listener rc=0$")
    app.wait_line(r"^env VG_LISTEN=from-listener$")
    m = l.wait_line(r"^dumped \S+ (\S+) rc=0$", timeout=120)
    ctx.check_dump(m.group(1), "WithHeap", marker=marker, threads="vigil-sleeper")
    # the app exits: the runtime is reported gone
    app.kill(signal.SIGTERM)
    l.wait_line(r"^removed \S+ pid=%d$" % pid)


def sc_listen_limits(ctx):
    """MaxConnections: a second runtime waits until the first goes. DeleteEndpointOnStartup:
    a non-socket file at the path is refused unless asked; a live listener is never replaced."""
    sock = ctx.path("d/port.sock")
    os.makedirs(os.path.dirname(sock))
    with open(sock, "w") as f:
        f.write("not a socket")
    bad = Proc(ctx, [ctx.cli, "listen", sock], name="refused")
    bad.p.wait(timeout=30)
    if bad.p.returncode == 0 or "DeleteEndpointOnStartup" not in bad.text():
        fail(f"a file at the port path: {bad.text()}")
    l = listener(ctx, sock, "--delete", "--max", "1")
    busy = Proc(ctx, [ctx.cli, "listen", sock, "--delete"], name="busy")
    busy.p.wait(timeout=30)
    if busy.p.returncode == 0 or "in use" not in busy.text():
        fail(f"a second listener on a live port: {busy.text()}")
    env = {"DOTNET_DiagnosticPorts": f"{sock},nosuspend"}
    a = ctx.start_app(env=env, name="a")
    apid = app_pid(a)
    l.wait_line(r"^added \S+ pid=%d " % apid)
    b = ctx.start_app(env=env, name="b")
    bpid = app_pid(b)
    time.sleep(2)
    if re.search(r"^added \S+ pid=%d " % bpid, l.text(), re.M):
        fail("MaxConnections=1 admitted a second runtime")
    if "MaxConnections (1) reached" not in l.text():
        fail(f"no MaxConnections message:\n{l.text()}")
    a.kill(signal.SIGTERM)
    l.wait_line(r"^removed \S+ pid=%d$" % apid)
    l.wait_line(r"^added \S+ pid=%d " % bpid, what="the second runtime once the first is gone")
    l.kill(signal.SIGTERM)
    if "stopped rc=0" not in l.text():
        fail(f"listener did not stop cleanly:\n{l.text()}")
    if os.path.exists(sock):
        fail("the socket file was left behind")


NS_WRAP = ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--propagation", "private"]


def private_tmp(cmd):
    """A shell prelude giving the namespace its own /tmp."""
    return ["sh", "-c", "mount -t tmpfs vigil-private-tmp /tmp && mkdir -p /tmp/rt && exec \"$@\"",
            "sh", *cmd]


def sc_namespaces_connect(ctx):
    """Connect mode across pid and mount namespaces: the app is pid 1 of its own namespace with
    a private /tmp and TMPDIR=/tmp/rt; vigil finds its socket through /proc/PID/root, names it
    with the innermost NSpid, and the dump path (in the app's namespace) is read back the same
    way."""
    need_root()
    marker = "vigil-ns-%d" % os.getpid()
    app = Proc(ctx, [*NS_WRAP, *private_tmp([ctx.app, "--threads", "2", "--plant", marker])],
               env={"TMPDIR": "/tmp/rt"}, name="nsapp")
    eq(app_pid(app), 1, "the app's pid in its namespace")
    host = child_pid(app.p.pid)
    sock = ctx.kv("find", host)["socket"]
    if not re.fullmatch(r"/proc/%d/root/tmp/rt/dotnet-diagnostic-1-\d+-socket" % host, sock):
        fail(f"socket path {sock}")
    if glob.glob("/tmp/rt/dotnet-diagnostic-1-*"):
        fail("the app's private /tmp leaked into ours")
    info = ctx.kv("info", host)
    eq(info["ProcessId"], "1", "ProcessId (namespace pid)")
    ctx.kv("dump", host, "/tmp/rt/ns.dump", "WithHeap")
    seen = f"/proc/{host}/root/tmp/rt/ns.dump"
    ctx.check_dump(seen, "WithHeap", marker=marker, threads="vigil-sleeper")


def sc_sidecar(ctx):
    """dotnet-monitor's sidecar: vigil and the app each in their own pid and mount namespaces
    (private /tmp each), sharing only the port directory. Suspend, a pre-resume action, then a
    dump written by the runtime into the shared directory and opened by ClrMD. vigil cannot see
    the app's pid (SO_PEERCRED gives 0): everything goes over the socket."""
    need_root()
    shared = ctx.path("diag")
    os.makedirs(f"{shared}/dumps")
    sock = f"{shared}/port.sock"
    marker_file = f"{shared}/startup-ran"
    marker = "vigil-sidecar-%d" % os.getpid()
    go = f"{shared}/app-is-up"
    l = listener(ctx, sock, "--exec", f"touch {marker_file}", "--dump", f"{shared}/dumps",
                 "WithHeap", "--dump-after", go, wrap=[*NS_WRAP, *private_tmp([])])
    app = Proc(ctx, [*NS_WRAP, *private_tmp([ctx.app, "--threads", "2", "--plant", marker,
                                              "--check-file", marker_file])],
               env={"DOTNET_DiagnosticPorts": f"{sock},suspend"}, name="app")
    m = l.wait_line(r"^added \S+ pid=(\d+) host_pid=(\d+) ")
    eq(m.group(1), "1", "advertised pid (the app's namespace)")
    eq(m.group(2), "0", "host pid: the app is not visible from vigil's namespace")
    l.wait_line(r"^resumed \S+ rc=0$")
    app.wait_line(r"^started pid=1 marker=present$")
    open(go, "w").close()
    m = l.wait_line(r"^dumped \S+ (\S+) rc=0$", timeout=120)
    eq(m.group(1), f"{shared}/dumps/dump.1", "dump path")
    ctx.check_dump(m.group(1), "WithHeap", marker=marker, threads="vigil-sleeper")


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def sc_nobody(ctx):
    """The app runs as nobody. Listen mode: the port socket is 0666, so its runtime can connect
    to root's socket (with 0755 it cannot, and retries until the mode allows it); it is resumed,
    dumps itself into a directory it may write. Connect mode: root reaches nobody's socket."""
    need_root()
    sock = ctx.path("d/port.sock")
    dumps = ctx.path("dumps")
    os.makedirs(dumps)
    os.chmod(dumps, 0o1777)
    marker = "vigil-nobody-%d" % os.getpid()
    l = listener(ctx, sock, "--dump", dumps, "WithHeap")
    eq(stat.S_IMODE(os.stat(sock).st_mode), 0o666, "port socket mode")
    # control: with the mode a default umask gives, nobody's runtime cannot connect
    os.chmod(sock, 0o755)
    app = ctx.start_app("--threads", "2", "--plant", marker, wrap=NOBODY,
                        env={"DOTNET_DiagnosticPorts": f"{sock},nosuspend", "HOME": "/"})
    pid = app_pid(app)
    time.sleep(2)
    if re.search(r"^added ", l.text(), re.M):
        fail("a runtime connected to a 0755 root socket as nobody?")
    os.chmod(sock, 0o666)
    m = l.wait_line(r"^added \S+ pid=%d host_pid=%d uid=65534$" % (pid, pid),
                    what="nobody's runtime once the socket is 0666")
    m = l.wait_line(r"^dumped \S+ (\S+) rc=0$", timeout=120)
    st = os.stat(m.group(1))
    eq(st.st_uid, 65534, "the dump's owner (written by the runtime as nobody)")
    ctx.check_dump(m.group(1), "WithHeap", marker=marker, threads="vigil-sleeper")
    # connect mode to a nobody process, as root
    eq(ctx.kv("info", pid)["ProcessId"], str(pid), "connect mode to nobody's runtime")
    # suspend as nobody: resumed through the 0666 socket
    app2 = ctx.start_app(wrap=NOBODY, env={"DOTNET_DiagnosticPorts": f"{sock},suspend",
                                           "HOME": "/"}, name="app2")
    l.wait_line(r"^added \S+ pid=%d " % app2.p.pid)
    app_pid(app2)


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}



def report(ctx):
    for p in ctx.procs:
        print(f"--- {p.out}:\n{p.text()[-3000:]}")


if __name__ == "__main__":
    sys.exit(dntest.run(SCENARIOS, ["--cli", "--apps", "--work"], Ctx, report))
