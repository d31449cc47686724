#!/usr/bin/env python3
"""The .NET adapter inside the real daemon: `vigil run` against real .NET 10 apps (the test app
built by the dotnet_apps fixture), its artifacts in real Azurite and s3rver (the egress_servers
fixture), read back and opened by ClrMD (the checker), its facts cross-checked with
Microsoft.Diagnostics.NETCore.Client.

    test_dotnet_daemon.py SCENARIO --vigil PATH --apps DIR --build DIR

Every rule is filtered on a token unique to the run (the app's command line), so vigil never acts
on another process of this shared machine. Exit 77 = skipped (no dotnet, not root)."""

import glob
import json
import os
import re
import urllib.parse
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "egress"))
sys.path.insert(0, HERE)
import vigil_test as harness  # noqa: E402
import azhelper  # noqa: E402

from dntest import Skip, eq, fail, find_dac, wait_for  # noqa: E402
import dntest  # noqa: E402


class App(dntest.Proc):
    """The test app in its own process group."""

    def __init__(self, t, *args, env=None, wrap=(), name="app"):
        super().__init__(t.procs, os.path.join(t.work, f"{name}.out"), [*wrap, t.app, *args],
                         env)

    def line(self, regex, timeout=60, what=None):
        return self.wait_line(regex, timeout, what)

    def pid(self):
        return int(self.line(r"^started pid=(\d+)").group(1))


class T:
    def __init__(self, args):
        self.vigil = args.vigil
        self.apps = args.apps
        self.app = os.path.join(args.apps, "app", "VigilTestApp")
        self.checker = os.path.join(args.apps, "checkers", "VigilDotnetChecker.dll")
        if not shutil.which("dotnet") or not os.path.exists(self.app):
            raise Skip("no dotnet SDK or test app (the dotnet_apps fixture did not build it)")
        ports = os.path.join(args.build, "egress-servers", "ports.env")
        if not os.path.exists(ports):
            raise Skip("no egress servers (the egress_servers fixture did not start them)")
        env = dict(line.strip().split("=", 1) for line in open(ports) if "=" in line)
        self.az_port, self.s3_port = int(env["AZ_PORT"]), int(env["S3_PORT"])
        self.az_uri = f"http://127.0.0.1:{self.az_port}/devstoreaccount1"
        self.s3_url = f"http://127.0.0.1:{self.s3_port}"
        harness.VIGIL = self.vigil
        base = os.path.join(args.build, "tests", "runtimes", "dotnet", "d")
        os.makedirs(base, exist_ok=True)
        os.chmod(base, 0o755)
        self.work = tempfile.mkdtemp(prefix=args.scenario[:6] + "-", dir=base)
        os.chmod(self.work, 0o755)
        self.tmp = self.work  # what harness.Daemon uses
        # rules find the run's apps by the token (--tag); the string planted in their heap is
        # another, so the checker's command line never matches the rules
        self.token = "vgdn%d%04x" % (os.getpid(), int(time.time()) & 0xffff)
        self.marker = "heap-" + self.token[::-1]
        self.procs = []
        self.daemons = []
        self.dac = find_dac()

    def egress(self):
        """Azurite and s3rver providers writing under a prefix of this run's own."""
        return {
            "AzureBlobStorage": {"azurite": {
                "AccountUri": self.az_uri, "ContainerName": "vigil", "BlobPrefix": self.token,
                "SharedAccessSignature": azhelper.account_sas()}},
            "S3Storage": {"s3rver": {
                "Endpoint": self.s3_url, "BucketName": "vigil", "RegionName": "us-east-1",
                "AccessKeyId": "S3RVER", "SecretAccessKey": "S3RVER", "ForcePathStyle": True,
                "KeyPrefix": self.token}},
        }

    def daemon(self, settings, **kw):
        d = harness.Daemon(self, settings, no_auth=True, **kw)
        self.daemons.append(d)
        return d

    def blobs(self):
        q = f"{self.az_uri}/vigil?restype=container&comp=list&prefix={self.token}&" + \
            azhelper.account_sas()
        return re.findall(r"<Name>([^<]+)</Name>", urllib.request.urlopen(q).read().decode())

    def objects(self):
        x = urllib.request.urlopen(f"{self.s3_url}/vigil?prefix={self.token}").read().decode()
        return re.findall(r"<Key>([^<]+)</Key>", x)

    def fetch(self, url, path):
        with urllib.request.urlopen(url) as r, open(path, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
        return path

    def fetch_blob(self, name, path):
        return self.fetch(f"{self.az_uri}/vigil/{name}?{azhelper.account_sas()}", path)

    def fetch_object(self, key, path):
        return self.fetch(f"{self.s3_url}/vigil/{key}", path)

    def check_dump(self, path, heap=True, marker=None, startup=False):
        argv = ["dotnet", self.checker, "dump", path, "--dac", self.dac, "--min-threads",
                "0" if startup else "2"]
        if startup:  # taken as the app starts: no managed frame yet, maybe
            argv += ["--min-frames", "0"]
        if heap:
            argv += ["--string", marker or self.marker, "--thread-name", "vigil-sleeper"]
        else:
            argv.append("--no-heap")
        p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            fail(f"ClrMD rejected {path}:\n{p.stdout}{p.stderr}")
        return p.stdout

    def netcore_info(self, pid):
        p = subprocess.run(["dotnet", self.checker, "processinfo", str(pid)], capture_output=True,
                           text=True, timeout=120)
        if p.returncode != 0:
            fail(f"NETCore.Client processinfo {pid}: {p.stderr}")
        return dict(l.split("=", 1) for l in p.stdout.splitlines() if "=" in l)

    def cleanup(self):
        for d in self.daemons:
            d.kill()
        for p in self.procs:
            p.kill()
        shutil.rmtree(self.work, ignore_errors=True)


def filt(t):
    return [{"Key": "CommandLine", "Value": t.token, "MatchType": "Contains"}]


def get_json(d, path, status=200):
    r = d.get(path)
    if r.status != status:
        fail(f"GET {path}: {r.status} {r.body[:500]!r}")
    return r.json()


def stream_dump(d, path, out):
    r = d.get(path, timeout=300)
    if r.status != 200:
        fail(f"GET {path}: {r.status} {r.body[:500]!r}")
    with open(out, "wb") as f:
        f.write(r.body)
    return out


def operation_location(d, path):
    r = d.get(path, timeout=60)
    if r.status != 202:
        fail(f"GET {path}: expected 202, got {r.status} {r.body[:500]!r}")
    op = r.header("Location")
    op = urllib.parse.urlparse(op).path  # an absolute URL, as dotnet-monitor's

    def done():
        o = d.get(op).json()
        return o if o["status"] in ("Succeeded", "Failed", "Cancelled") else None
    o = wait_for(done, 180, f"operation {op}")
    eq(o["status"], "Succeeded", f"operation {op} ({o.get('error')})")
    return o["resourceLocation"]


# ---- scenarios ----------------------------------------------------------------------------------


def sc_connect(t):
    """Connect mode. A Startup rule (filters: the run's token and ManagedEntryPointAssemblyName)
    reads HOME, sets a variable from $(Actions.Get.Value) and $(Process.RuntimeId), and has the
    runtime write a WithHeap dump that lands in Azurite; the same through /dump (DefaultProcess,
    streamed) and /dump?pid=&egressProvider=s3rver; a native core on request (Writer: Native).
    Every dump is opened by ClrMD; the facts match NETCore.Client's."""
    app = App(t, "--tag", t.token, "--threads", "2", "--plant", t.marker, "--watch-env", "VG_SEEN")
    pid = app.pid()
    cookie = t.netcore_info(pid)["RuntimeInstanceCookie"]
    settings = {
        "Egress": t.egress(),
        "DefaultProcess": {"Filters": filt(t)},
        "CollectionRules": {
            "OnStart": {
                "Filters": filt(t) + [{"Key": "ManagedEntryPointAssemblyName",
                                       "Value": "VigilTestApp"}],
                "Trigger": {"Type": "Startup"},
                "Actions": [
                    {"Name": "Get", "Type": "GetEnvironmentVariable",
                     "Settings": {"Name": "HOME"}},
                    {"Type": "SetEnvironmentVariable",
                     "Settings": {"Name": "VG_SEEN",
                                  "Value": "$(Actions.Get.Value)|$(Process.RuntimeId)"}},
                    {"Name": "Dump", "Type": "CollectDump",
                     "Settings": {"Egress": "azurite", "Type": "WithHeap"}},
                ]},
            "Native": {
                "Filters": filt(t) + [{"Key": "RuntimeId", "Value": cookie}],
                "Trigger": {"Type": "Startup"},
                "Actions": [
                    # after the runtime's own dump: two dumpers cannot ptrace at once
                    {"Type": "Execute", "WaitForCompletion": True, "Settings": {
                        "Path": "/bin/sh",
                        "Arguments": f"-c 'while [ ! -e {t.work}/go ]; do sleep 0.1; done'"}},
                    {"Type": "CollectDump",
                     "Settings": {"Egress": "s3rver", "Type": "Mini", "Writer": "Native",
                                  "ArtifactName": "native-$(Process.ProcessId)"}}]},
        }}
    d = t.daemon(settings).start()
    app.line("^env VG_SEEN=%s$" % re.escape(f"{os.environ.get('HOME', '/root')}|{cookie}"),
             what="the variable set from $(Actions.Get.Value) and $(Process.RuntimeId)")
    blob = wait_for(lambda: [b for b in t.blobs() if "core_" in b], 120, "the rule's dump")[0]
    print("rule dump:", t.check_dump(t.fetch_blob(blob, os.path.join(t.work, "rule.core"))
                                     ).strip().splitlines()[-1])
    open(os.path.join(t.work, "go"), "w").close()
    key = wait_for(lambda: [k for k in t.objects() if "native-" in k], 120, "the native core")[0]
    with open(t.fetch_object(key, os.path.join(t.work, "native.core")), "rb") as f:
        head = f.read(18)
    eq((head[:4], head[16]), (b"\x7fELF", 4), "the native writer's core (ELF, ET_CORE)")

    # the API: facts, uid = cookie, DefaultProcess
    procs = get_json(d, "/processes")
    mine = [p for p in procs if p["pid"] == pid]
    eq(len(mine), 1, "the app in /processes")
    eq(mine[0]["uid"], cookie, "uid (the runtime instance cookie)")
    eq(mine[0]["isDefault"], True, "isDefault (DefaultProcess.Filters)")
    eq([p for p in procs if p["isDefault"]], mine, "the default processes")
    # as dotnet-monitor, the default process's runtime counters are in /metrics with no rule
    # asking for them (a counters session on it)

    def runtime_metrics():
        r = d.get("/metrics")
        return [l for l in r.body.decode().splitlines()
                if l.startswith("systemruntime_") and f'pid="{pid}"' in l]
    got = wait_for(runtime_metrics, 60, "System.Runtime counters of the default process")
    print(f"/metrics: {len(got)} System.Runtime series of the default process")
    info = get_json(d, f"/process?pid={pid}")
    theirs = t.netcore_info(pid)
    eq(info["managedEntryPointAssemblyName"], theirs["ManagedEntrypointAssemblyName"], "entry")
    eq(info["commandLine"], theirs["CommandLine"], "commandLine")
    eq(info["runtimeVersion"], theirs["ClrProductVersionString"], "runtime version")
    eq(info["diagnosticPort"], "connect", "how vigil reaches it")
    eq(get_json(d, "/process")["pid"], pid, "/process without pid: the default process")
    eq(get_json(d, f"/process?uid={cookie}")["pid"], pid, "/process?uid=cookie")
    i = get_json(d, "/info")
    eq((i["diagnosticPortMode"], i["diagnosticPortName"]), ("Connect", None), "/info port")

    # /dump: streamed (the default process), and to s3rver as an operation
    out = stream_dump(d, "/dump?type=Mini", os.path.join(t.work, "api.core"))
    t.check_dump(out, heap=False)
    loc = operation_location(d, f"/dump?pid={pid}&type=Full&egressProvider=s3rver")
    key = loc.split("/vigil/", 1)[1] if "/vigil/" in loc else loc.split("vigil/", 1)[1]
    t.check_dump(t.fetch_object(key, os.path.join(t.work, "op.core")))
    # no temporary file left behind in the app's /tmp
    left = glob.glob(f"/proc/{pid}/root/tmp/vigil-dump-*")
    eq(left, [], "temporary dump files")
    d.stop_and_check()


def sc_listen(t):
    """Listen mode (DiagnosticPort long form, DeleteEndpointOnStartup over a stale file,
    DumpTempFolder): a suspended app is resumed only after its Startup rule's Execute ran (the
    app's first line says the marker the Execute wrote, holding $(Process.RuntimeId), was there),
    then its dump is written by the runtime into the shared folder and lands in s3rver; a
    nosuspend app is dumped through /dump; an app held at startup when vigil stops goes on."""
    shared = os.path.join(t.work, "diag")
    os.makedirs(shared)
    sock = os.path.join(shared, "port.sock")
    with open(sock, "w") as f:
        f.write("left by an earlier run")
    marker = os.path.join(t.work, "startup-marker")
    settings = {
        "DiagnosticPort": {"ConnectionMode": "Listen", "EndpointName": sock,
                           "DeleteEndpointOnStartup": True},
        "Storage": {"DumpTempFolder": os.path.join(shared, "dumps")},
        "Egress": t.egress(),
        "CollectionRules": {
            "Startup": {
                "Filters": filt(t),
                "Trigger": {"Type": "Startup"},
                "Actions": [
                    # dotnet-monitor starts actions without waiting unless told to
                    {"Type": "Execute", "WaitForCompletion": True, "Settings": {
                        "Path": "/bin/sh",
                        "Arguments": f"-c 'sleep 1; echo $(Process.RuntimeId) > {marker}'"}},
                    {"Type": "CollectDump", "Settings": {"Egress": "s3rver", "Type": "Mini"}},
                ]}}}
    d = t.daemon(settings).start()
    i = get_json(d, "/info")
    eq((i["diagnosticPortMode"], i["diagnosticPortName"]), ("Listen", sock), "/info port")
    port_env = {"DOTNET_DiagnosticPorts": f"{sock},suspend"}
    app = App(t, "--tag", t.token, "--check-file", marker, "--threads", "2", "--plant", t.marker,
              env=port_env)
    app.line(r"^started pid=%d marker=present$" % app.p.pid, timeout=90,
             what="the first line, after the Startup rule's Execute")
    info = get_json(d, f"/process?pid={app.p.pid}")
    eq(open(marker).read().strip(), info["uid"], "$(Process.RuntimeId) in the Execute")
    eq(info["diagnosticPort"], "listen", "reached through the listen port")
    eq(info["uid"], t.netcore_info(app.p.pid)["RuntimeInstanceCookie"], "cookie")
    key = wait_for(lambda: [k for k in t.objects() if "core_" in k], 120, "the rule's dump")[0]
    t.check_dump(t.fetch_object(key, os.path.join(t.work, "rule.core")), heap=False, startup=True)

    # nosuspend: runs at once, reached through the port for /dump
    app2 = App(t, "--tag", t.token, "--threads", "2", "--plant", t.marker + "x",
               env={"DOTNET_DiagnosticPorts": f"{sock},nosuspend"}, name="app2")
    pid2 = app2.pid()
    wait_for(lambda: get_json(d, f"/process?pid={pid2}").get("diagnosticPort") == "listen", 60,
             "the nosuspend runtime on the port")
    out = stream_dump(d, f"/dump?pid={pid2}&type=WithHeap", os.path.join(t.work, "app2.core"))
    t.check_dump(out, marker=t.marker + "x")
    # (the egress spool lives there too when Storage.SpoolDir is not set: only dumps count)
    eq([n for n in os.listdir(os.path.join(shared, "dumps")) if n.startswith("vigil-dump")], [],
       "runtime dumps left in DumpTempFolder")

    # held at startup by a rule whose Execute takes long: SIGTERM lets it go
    slow = os.path.join(t.work, "slow")
    settings["CollectionRules"]["Startup"]["Actions"] = [
        {"Type": "Execute", "Settings": {"Path": "/bin/sleep", "Arguments": "120"}}]
    d.stop_and_check()
    d2 = t.daemon(settings, name="vigil2", args=("--shutdown-timeout", "2")).start()
    app3 = App(t, "--tag", t.token, "--check-file", slow, env=port_env, name="app3")
    wait_for(lambda: "starting Execute" in d2.log() and str(app3.p.pid) in d2.log(), 60,
             "the slow Startup rule")
    time.sleep(1)
    eq(app3.text().count("started"), 0, "the app runs while its Startup rule runs")
    d2.stop()
    app3.line(r"^started pid=%d" % app3.p.pid, timeout=30,
              what="the held app going on after vigil stopped")


NS_WRAP = ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--propagation", "private",
           "sh", "-c", "mount -t tmpfs vigil-private-tmp /tmp && exec \"$@\"", "sh"]


class NsDaemon(harness.Daemon):
    """`vigil run` in a pid and mount namespace of its own (with its own /tmp): a sidecar."""

    def start(self, timeout=60):
        real = harness.VIGIL
        wrapper = os.path.join(self.dir, "vigil-in-ns")
        # unshare --fork waits for vigil (pid 1 of the new namespace) and returns its status;
        # SIGTERM goes to vigil itself, as a container runtime would send it
        ns = " ".join("'%s'" % a if " " in a or "$" in a else a for a in NS_WRAP)
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n"
                    f"{ns} {real} \"$@\" &\n"
                    "u=$!\n"
                    "trap 'kill -TERM $(cat /proc/$u/task/$u/children) 2>/dev/null' TERM INT\n"
                    "while :; do wait $u; st=$?; kill -0 $u 2>/dev/null || exit $st; done\n")
        os.chmod(wrapper, 0o755)
        harness.VIGIL = wrapper
        try:
            return super().start(timeout)
        finally:
            harness.VIGIL = real

    def kill(self, sig=None):
        """SIGKILL for vigil itself too (pid 1 of its namespace, a grandchild of ours)."""
        if self.p is not None and self.p.poll() is None:
            todo, seen = [self.p.pid], []
            while todo:
                pid = todo.pop()
                seen.append(pid)
                try:
                    with open(f"/proc/{pid}/task/{pid}/children") as f:
                        todo += [int(c) for c in f.read().split()]
                except OSError:
                    pass
            for pid in reversed(seen):
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            self.p.wait()


def sc_sidecar(t):
    """dotnet-monitor's sidecar: vigil and the app each in their own pid and mount namespaces
    (each with a private /tmp), sharing only Storage.DefaultSharedPath, with the port in its
    short form. vigil never sees the app's pid: the app is known through its runtime only, as
    pid 1. Its Startup rule runs before the app's first line; /process and /dump reach it by pid
    (its own) and uid; the runtime writes the dump into the shared folder; ClrMD reads it."""
    if os.geteuid() != 0:
        raise Skip("needs root (namespaces)")
    shared = os.path.join(t.work, "diag")
    os.makedirs(shared)
    sock = os.path.join(shared, "port.sock")
    marker = os.path.join(shared, "startup-marker")
    settings = {
        "DiagnosticPort": sock,
        "Storage": {"DefaultSharedPath": shared},
        "Egress": t.egress(),
        "CollectionRules": {
            "Startup": {
                # vigil's own pid namespace holds nothing else, and only this run's app connects
                # to its port; a runtime held at startup reports no arguments in its command
                # line yet, so the token cannot be matched before it is resumed
                "Filters": [{"Key": "ManagedEntryPointAssemblyName", "Value": "VigilTestApp"}],
                "Trigger": {"Type": "Startup"},
                "Actions": [
                    {"Type": "Execute", "Settings": {
                        "Path": "/bin/sh",
                        "Arguments": f"-c 'echo $(Process.ProcessId) $(Process.RuntimeId) > {marker}'"}},
                    {"Type": "CollectDump", "Settings": {"Egress": "azurite", "Type": "Mini"}},
                ]}}}
    d = NsDaemon(t, settings, no_auth=True)
    t.daemons.append(d)
    d.start()
    app = App(t, "--tag", t.token, "--check-file", marker, "--threads", "2", "--plant", t.marker,
              env={"DOTNET_DiagnosticPorts": sock}, wrap=NS_WRAP)
    app.line(r"^started pid=1 marker=present$", timeout=90,
             what="the first line, after the Startup rule's Execute")
    pid_seen, cookie = open(marker).read().split()
    eq(pid_seen, "1", "$(Process.ProcessId): the app's own pid")
    mine = [p for p in get_json(d, "/processes") if p["uid"] == cookie]
    eq(len(mine), 1, "the app in /processes by its cookie")
    eq(mine[0]["pid"], 1, "its pid (its own namespace's)")
    # the command line with its arguments, once the runtime runs
    wait_for(lambda: t.token in get_json(d, f"/process?uid={cookie}")["commandLine"], 30,
             "the full command line after the resume")
    info = get_json(d, f"/process?uid={cookie}")
    eq((info["managedEntryPointAssemblyName"], info["diagnosticPort"]),
       ("VigilTestApp", "listen"), "facts of the app")
    eq(get_json(d, "/info")["diagnosticPortMode"], "Listen", "/info, short form")
    blob = wait_for(lambda: [b for b in t.blobs() if "core_" in b], 120, "the rule's dump")[0]
    t.check_dump(t.fetch_blob(blob, os.path.join(t.work, "rule.core")), heap=False, startup=True)
    out = stream_dump(d, f"/dump?uid={cookie}&type=WithHeap", os.path.join(t.work, "api.core"))
    t.check_dump(out)
    eq([n for n in os.listdir(os.path.join(shared, "dumps")) if n.startswith("vigil-dump")], [],
       "runtime dumps left in the shared folder")
    app.kill()  # pid 1 of its namespace: SIGKILL, the way a container dies
    wait_for(lambda: not [p for p in get_json(d, "/processes") if p["uid"] == cookie], 30,
             "the app gone from /processes")
    d.stop_and_check()


def sc_nobody(t):
    """The app runs as nobody, vigil as root, in listen mode: nobody's runtime connects to the
    port (0666), is held until the Startup rule ran, then dumped through /dump by its runtime
    (the dump written as nobody into its own /tmp, read back through /proc/PID/root)."""
    if os.geteuid() != 0:
        raise Skip("needs root (another user)")
    shared = os.path.join(t.work, "diag")
    os.makedirs(shared)
    os.chmod(shared, 0o755)
    sock = os.path.join(shared, "port.sock")
    marker = os.path.join(shared, "startup-marker")
    settings = {
        "DiagnosticPort": {"ConnectionMode": "Listen", "EndpointName": sock},
        "CollectionRules": {"Startup": {
            "Filters": filt(t) + [{"Key": "User", "Value": "65534"}],
            "Trigger": {"Type": "Startup"},
            "Actions": [{"Type": "Execute", "Settings": {"Path": "/usr/bin/touch",
                                                         "Arguments": marker}}]}}}
    d = t.daemon(settings).start()
    app = App(t, "--tag", t.token, "--check-file", marker, "--threads", "2", "--plant", t.marker,
              env={"DOTNET_DiagnosticPorts": f"{sock},suspend", "HOME": "/"},
              wrap=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
    app.line(r"^started pid=%d marker=present$" % app.p.pid, timeout=90,
             what="nobody's app going on after its Startup rule")
    info = get_json(d, f"/process?pid={app.p.pid}")
    eq(info["diagnosticPort"], "listen", "nobody's runtime on the port")
    out = stream_dump(d, f"/dump?pid={app.p.pid}&type=WithHeap", os.path.join(t.work, "n.core"))
    t.check_dump(out)
    d.stop_and_check()


def strip_comments(text):
    return "\n".join(l for l in text.splitlines() if not l.strip().startswith("//"))


def from_keys(pairs):
    """dotnet-monitor's KEY__SUB__0__X=value pairs to a JSON-like tree (strings as leaves)."""
    root = {}
    for k, v in pairs:
        parts = k.split("__")
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part] = v
            else:
                node = node.setdefault(part, {})
    def lists(n):
        if not isinstance(n, dict):
            return n
        if n and all(k.isdigit() for k in n):
            return [lists(n[k]) for k in sorted(n, key=int)]
        return {k: lists(v) for k, v in n.items()}
    return lists(root)


def stringify(n):
    if isinstance(n, dict):
        return {k: stringify(v) for k, v in n.items()}
    if isinstance(n, list):
        return [stringify(v) for v in n]
    return str(n).lower() if isinstance(n, bool) else str(n)


def sc_example(t):
    """examples/dotnet-sidecar: its three forms say the same thing (key-per-file and environment
    variables turned back into a tree equal the JSON), and the JSON form runs unchanged (paths
    and the app's name substituted) in a vigil with a pid namespace of its own: the Startup rule
    writes its marker before the app's first line, sets MONITORED_BY in the app, and the
    runtime's dump lands in the FileSystem egress."""
    if os.geteuid() != 0:
        raise Skip("needs root (namespaces)")
    ex = os.path.join(HERE, "..", "..", "..", "examples", "dotnet-sidecar")
    text = strip_comments(open(os.path.join(ex, "settings.json")).read())
    as_json = stringify(json.loads(text))
    kpf = os.path.join(ex, "key-per-file")
    pairs = [(n, open(os.path.join(kpf, n)).read()) for n in os.listdir(kpf)]
    eq(from_keys(pairs), as_json, "key-per-file form vs JSON form")
    env = [l.rstrip("\n").split("=", 1) for l in open(os.path.join(ex, "env.list")) if "=" in l]
    eq(from_keys([(k[len("DotnetMonitor_"):], v) for k, v in env]), as_json,
       "environment form vs JSON form")

    shared = os.path.join(t.work, "diag")
    out = os.path.join(t.work, "artifacts")
    os.makedirs(shared)
    text = text.replace("/diag", shared).replace("/artifacts", out).replace("MyApp",
                                                                             "VigilTestApp")
    d = NsDaemon(t, json.loads(text), no_auth=True)
    t.daemons.append(d)
    d.start()
    marker = os.path.join(shared, "startup-ran")
    app = App(t, "--tag", t.token, "--check-file", marker, "--watch-env", "MONITORED_BY",
              env={"DOTNET_DiagnosticPorts": os.path.join(shared, "port.sock") + ",suspend"},
              wrap=NS_WRAP)
    app.line(r"^started pid=1 marker=present$", timeout=90, what="the first line")
    app.line(r"^env MONITORED_BY=vigil$", what="the variable the rule set")
    cookie, home = open(marker).read().split()
    eq(get_json(d, "/process")["uid"], cookie, "DefaultProcess: the app; its cookie in the marker")
    core = wait_for(lambda: [n for n in os.listdir(out) if n.startswith("core_")], 120,
                    "the dump in the FileSystem egress")[0]
    t.check_dump(os.path.join(out, core), heap=False, startup=True)
    d.stop_and_check()


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}



def report(t):
    for d in t.daemons:
        print(f"--- {d.log_path}:\n" + "\n".join(d.log().splitlines()[-80:]))
    for p in t.procs:
        print(f"--- {p.out}:\n{p.text()[-2000:]}")


if __name__ == "__main__":
    sys.exit(dntest.run(SCENARIOS, ["--vigil", "--apps", "--build"], T, report))
