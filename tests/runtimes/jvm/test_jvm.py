#!/usr/bin/env python3
"""The JVM protocol layer (engine/runtimes/jvm) against real JVMs, through vg_jvm_cli:

    test_jvm.py SCENARIO --cli PATH --apps DIR --work DIR

Each scenario starts its own JVMs (tagged with a unique -Dvigil.test.token so concurrent tests
never touch each other's), checks artifacts with real readers (jcmd PerfCounter.print, VisualVM's
heap library through HprofCheck, `jfr summary`), checks that every JVM is still running and
answering at the end, and kills what it started. Waits poll with a deadline. Exit 77 = skipped
(no java, not root for the namespace scenarios)."""

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import vigil_test as vt
from vigil_test import Skip, fail

SKIP = 77


def wait_for(cond, timeout, what):
    return vt.wait_for(what, cond, timeout, 0.05)


class Ctx:
    def __init__(self, args):
        self.cli = args.cli
        self.apps = args.apps
        os.makedirs(args.work, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix=f"{args.scenario}-", dir=args.work)
        os.chmod(self.work, 0o755)
        self.jvms = []

    def run(self, *argv, ok=True, timeout=120):
        """ok: True = must succeed, False = must fail, None = either."""
        p = subprocess.run([self.cli, *map(str, argv)], capture_output=True, text=True,
                           timeout=timeout)
        if ok is True and p.returncode != 0:
            fail(f"vg_jvm_cli {' '.join(map(str, argv))} failed ({p.returncode}): {p.stderr}")
        if ok is False and p.returncode == 0:
            fail(f"vg_jvm_cli {' '.join(map(str, argv))} succeeded, expected an error")
        return p

    def path(self, name):
        return os.path.join(self.work, name)

    def cleanup(self):
        for j in self.jvms:
            j.kill()
        shutil.rmtree(self.work, ignore_errors=True)


class Jvm:
    """A java process, possibly under a wrapper (setpriv, unshare); its pid is the java process
    itself, found by its token."""

    def __init__(self, ctx, cls, args=(), opts=(), wrap=None, prelude="", user=None):
        self.ctx = ctx
        self.token = "%016x" % random.getrandbits(64)
        java = ["java", f"-Dvigil.test.token={self.token}", "-Xmx256m", *opts, "-cp", ctx.apps,
                cls, *map(str, args)]
        if wrap:
            # Burn a random number of pids first, so the namespace pid is unlikely to equal
            # another test's (files in a shared /tmp are named by it).
            burn = random.randint(30, 300)
            # java is not the namespace's init (pid 1) either: the shell waits for it.
            script = (f"{prelude}i=0; while [ $i -lt {burn} ]; do /bin/true; i=$((i+1)); done; "
                      f"{' '.join(java)}")
            argv = [*wrap, "sh", "-c", script]
        else:
            argv = java
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
        self.lines = []
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, cwd=ctx.work, start_new_session=True)
        ctx.jvms.append(self)
        threading.Thread(target=self._reader, daemon=True).start()
        wait_for(lambda: any(l.startswith("ready") for l in self.lines) or
                 self.proc.poll() is not None, 60, f"{cls} to start")
        if not any(l.startswith("ready") for l in self.lines):
            fail(f"{cls} did not start: {''.join(self.lines)[-2000:]}")
        self.pid = wait_for(self._find_pid, 10, "the java pid")

    def _reader(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def _find_pid(self):
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read()
                exe = os.readlink(f"/proc/{d}/exe")
            except OSError:
                continue
            if self.token.encode() in cmd and exe.endswith("/java"):
                return int(d)
        return None

    def status(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split(":", 1)[1].split()
        return []

    @property
    def nspid(self):
        return int(self.status("NSpid")[-1])

    def alive(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            return state not in ("Z", "X") and self.proc.poll() is None
        except OSError:
            return False

    def output(self):
        return "".join(self.lines)

    def kill(self):
        # SIGTERM first: the JVM then removes its /tmp/.java_pid and hsperfdata files, which a
        # later JVM of another user with the same pid could not replace.
        try:
            os.kill(self.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (OSError, AttributeError, subprocess.TimeoutExpired):
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(self.pid, signal.SIGKILL)
            except (OSError, AttributeError):
                pass
            self.proc.wait(timeout=30)


def require_java():
    if not shutil.which("java") or not shutil.which("jcmd"):
        raise Skip("no java/jcmd")


def require_root():
    if os.geteuid() != 0:
        raise Skip("needs root (namespaces, another user)")


def parse_counters(text):
    values, meta = {}, {}
    for line in text.splitlines():
        if line.startswith("#meta "):
            parts = line.split()
            meta[parts[1]] = dict(kv.split("=") for kv in parts[2:])
        elif "=" in line and not line.startswith("#") and not line.endswith(":"):
            k, v = line.split("=", 1)
            values[k] = v
    return values, meta


def assert_answering(ctx, jvm):
    """The JVM is alive and still answers an attach command."""
    if not jvm.alive():
        fail(f"pid {jvm.pid} is gone: {jvm.output()[-2000:]}")
    out = ctx.path(f"final-threads-{jvm.pid}.txt")
    ctx.run("threads", jvm.pid, out)
    with open(out) as f:
        if "Full thread dump" not in f.read():
            fail("the final thread dump is not one")


def assert_no_trigger(ctx, jvm):
    for d in (f"/proc/{jvm.pid}/cwd", f"/proc/{jvm.pid}/root/tmp"):
        p = os.path.join(d, f".attach_pid{jvm.nspid}")
        if os.path.exists(p):
            fail(f"{p} left behind")


def check_hprof(ctx, path, cls=None, min_instances=0):
    checker = os.path.join(ctx.apps, "checker")
    if not os.path.isdir(checker):
        raise Skip("no HPROF checker (install Debian's visualvm package)")
    with open(os.path.join(checker, "heapjar")) as f:
        heapjar = f.read().strip()
    argv = ["java", "-cp", f"{checker}:{heapjar}", "HprofCheck", path]
    if cls:
        argv += [cls, str(min_instances)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    print(p.stdout.strip())
    if p.returncode != 0:
        fail(f"HprofCheck rejected {path}: {p.stdout}{p.stderr}")
    return p.stdout


def check_jfr(path, event, min_count):
    p = subprocess.run(["jfr", "summary", path], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        fail(f"jfr summary {path} failed: {p.stdout}{p.stderr}")
    m = re.search(rf"^\s*{re.escape(event)}\s+(\d+)", p.stdout, re.M)
    if not m or int(m.group(1)) < min_count:
        fail(f"{path}: expected at least {min_count} {event} events:\n{p.stdout}")
    print(f"jfr summary: {event} x{m.group(1)}")
    return p.stdout


def dir_entries(path):
    return sorted(os.listdir(path))


# --- scenarios ---------------------------------------------------------------------------------

def sc_perf(ctx):
    """Every counter jcmd PerfCounter.print shows, read without attaching, agrees with it."""
    jvm = Jvm(ctx, "Idle", ["--gc-every", "200"])

    def full_gcs():
        p = ctx.run("perf", jvm.pid, ok=None)
        vals = parse_counters(p.stdout)[0] if p.returncode == 0 else {}
        return int(vals.get("sun.gc.collector.1.invocations", 0))
    wait_for(lambda: full_gcs() >= 1, 30, "a full GC counted (System.gc() every 200 ms)")
    a, meta = parse_counters(ctx.run("perf", jvm.pid).stdout)
    j = subprocess.run(["jcmd", str(jvm.pid), "PerfCounter.print"], capture_output=True,
                       text=True, timeout=60)
    if j.returncode != 0:
        fail(f"jcmd PerfCounter.print: {j.stdout}{j.stderr}")
    jc, _ = parse_counters(j.stdout)
    b, meta_b = parse_counters(ctx.run("perf", jvm.pid).stdout)
    meta.update(meta_b)
    first = ctx.run("perf", jvm.pid).stdout.splitlines()[0]
    if f"file=/tmp/hsperfdata_root/{jvm.pid} " not in first + " ":
        fail(f"unexpected perf-data file: {first}")

    missing = sorted(set(a) - set(jc))
    if missing:
        fail(f"counters vigil reads that jcmd does not print: {missing[:10]}")
    extra = sorted(set(jc) - set(b))
    if extra:
        fail(f"counters jcmd prints that vigil does not read: {extra[:10]}")
    exact = bounded = skipped = 0
    flipped = []
    for name, jv in jc.items():
        if name not in a:
            continue  # created by the attach itself, between the two reads
        var = meta[name]["variability"]
        av, bv = a[name], b[name]
        if var == "1":  # constant (numbers and strings)
            if not (av == jv == bv):
                fail(f"{name}: vigil {av} / {bv}, jcmd {jv}")
            exact += 1
        elif var == "2" and not jv.startswith('"'):
            if not int(av) <= int(jv) <= int(bv):
                fail(f"{name} (monotonic): vigil {av} then {bv}, jcmd {jv} not between")
            bounded += 1
        elif av == bv and jv == av:
            exact += 1
        elif av == bv:
            # a variable counter can move and come back between the reads (sun.gc.lastCause
            # flips with a System.gc() every 200 ms): allowed, but not for many of them
            flipped.append(f"{name}: vigil read {av} twice, jcmd {jv}")
            skipped += 1
        else:
            skipped += 1
    print(f"{len(jc)} counters: {exact} equal, {bounded} monotonic within bounds, "
          f"{skipped} variable ones moved between the reads")
    if len(flipped) > 3:
        fail("variable counters that differ from jcmd although vigil read the same twice:\n" +
             "\n".join(flipped))
    if exact + bounded < 0.8 * len(jc) or len(jc) < 150:
        fail("too few counters compared")
    # The ones the adapter will export are all there.
    for name in ("sun.gc.collector.0.invocations", "sun.gc.collector.1.invocations",
                 "sun.gc.collector.0.time", "java.threads.live", "java.cls.loadedClasses",
                 "sun.rt.safepoints", "sun.os.hrt.frequency", "sun.gc.generation.0.capacity",
                 "sun.gc.generation.1.space.0.used"):
        if name not in a:
            fail(f"{name} missing")
    assert_answering(ctx, jvm)


def sc_noperfdata(ctx):
    """-XX:-UsePerfData: no counters, said clearly; attach still works."""
    jvm = Jvm(ctx, "Idle", opts=["-XX:-UsePerfData"])
    p = ctx.run("perf", jvm.pid, ok=False)
    if "VG_ENOTFOUND" not in p.stderr or "-XX:-UsePerfData" not in p.stderr:
        fail(f"unexpected error: {p.stderr}")
    out = ctx.path("threads.txt")
    ctx.run("threads", jvm.pid, out)
    assert_answering(ctx, jvm)


def sc_threads(ctx):
    """Thread.print, starting the listener by the .attach_pid + SIGQUIT handshake."""
    jvm = Jvm(ctx, "Idle")
    sock = f"/tmp/.java_pid{jvm.pid}"
    if os.path.exists(sock):
        fail(f"{sock} exists before any attach")
    out = ctx.path("threads.txt")
    t0 = time.monotonic()
    ctx.run("threads", jvm.pid, out)
    print(f"first Thread.print (listener started): {time.monotonic() - t0:.3f}s")
    with open(out) as f:
        text = f.read()
    for want in ["Full thread dump", "vigil-idle-worker-0", "vigil-idle-worker-2",
                 "waiting on <", "Locked ownable synchronizers", '"main"']:
        if want not in text:
            fail(f"thread dump lacks {want!r}")
    if not os.path.exists(sock):
        fail("the listener socket did not appear")
    # The SIGQUIT was taken as an attach trigger, not as a request for a thread dump on stdout.
    if "Full thread dump" in jvm.output():
        fail("the JVM printed a thread dump on its stdout: the trigger file was not seen")
    assert_no_trigger(ctx, jvm)
    t0 = time.monotonic()
    ctx.run("threads", jvm.pid, ctx.path("threads2.txt"))
    print(f"second Thread.print (listener up): {time.monotonic() - t0:.3f}s")
    p = ctx.run("jcmd", jvm.pid, "No.such.command", ok=False)
    if "Unknown diagnostic command" not in p.stderr:
        fail(f"the JVM's error text is not reported: {p.stderr}")
    assert_answering(ctx, jvm)


def grower(ctx, **kw):
    jvm = Jvm(ctx, "HeapGrower", ["512", "20", "24"], **kw)

    def held():
        n = [int(l.split()[1]) for l in jvm.lines if l.startswith("held ")]
        return n[-1] if n else 0
    wait_for(lambda: held() >= 10, 60, "the heap to grow")
    return jvm, held


def sc_heapdump(ctx):
    """GC.heap_dump into a directory both sides see, streamed out; VisualVM's library reads it."""
    jvm, held = grower(ctx)
    dumps = ctx.path("dumps")
    os.mkdir(dumps)
    n = held()
    out = ctx.path("heap.hprof")
    t0 = time.monotonic()
    ctx.run("--dir", dumps, "heapdump", jvm.pid, out)
    print(f"heap dump: {os.path.getsize(out)} bytes in {time.monotonic() - t0:.3f}s")
    check_hprof(ctx, out, "HeapGrower$Chunk", n)
    if dir_entries(dumps):
        fail(f"left in {dumps}: {dir_entries(dumps)}")
    # A cut copy is rejected by the checker (it must be able to fail).
    cut = ctx.path("cut.hprof")
    with open(out, "rb") as f, open(cut, "wb") as g:
        g.write(f.read(os.path.getsize(out) * 2 // 3))
    p = subprocess.run(["java", "-cp", f"{ctx.apps}/checker:" +
                        open(f"{ctx.apps}/checker/heapjar").read().strip(), "HprofCheck", cut],
                       capture_output=True, text=True)
    if p.returncode == 0:
        fail("HprofCheck accepted a truncated dump")
    # -all, and the default directory (/tmp).
    out2 = ctx.path("heap-all.hprof")
    ctx.run("heapdump", jvm.pid, out2, "--all")
    check_hprof(ctx, out2, "HeapGrower$Chunk", n)
    before = held()
    wait_for(lambda: held() > before or held() * 512 >= 24 * 1024, 30, "the grower to go on")
    assert_answering(ctx, jvm)


def sc_heapdump_limit(ctx):
    """The sink refusing (quota) fails the dump cleanly: nothing left behind, the JVM fine."""
    jvm, _ = grower(ctx)
    dumps = ctx.path("dumps")
    os.mkdir(dumps)
    p = ctx.run("--dir", dumps, "--limit", 1 << 20, "heapdump", jvm.pid, ctx.path("h.hprof"),
                ok=False)
    if "VG_EQUOTA" not in p.stderr:
        fail(f"expected VG_EQUOTA: {p.stderr}")
    if dir_entries(dumps):
        fail(f"left in {dumps}: {dir_entries(dumps)}")
    p = ctx.run("--dir", "relative/dir", "heapdump", jvm.pid, ctx.path("h2.hprof"), ok=False)
    if "VG_EINVAL" not in p.stderr:
        fail(f"a relative directory must be refused: {p.stderr}")
    assert_answering(ctx, jvm)


def no_vigil_recording(jvm):
    p = subprocess.run(["jcmd", str(jvm.pid), "JFR.check"], capture_output=True, text=True,
                       timeout=60)
    if "vigil-" in p.stdout:
        fail(f"a vigil recording is still running: {p.stdout}")


def sc_jfr(ctx):
    """JFR.start, wait, JFR.stop into a file; `jfr summary` reads it."""
    jvm = Jvm(ctx, "Idle", ["--gc-every", "100"])
    dumps = ctx.path("dumps")
    os.mkdir(dumps)
    out = ctx.path("rec.jfr")
    t0 = time.monotonic()
    ctx.run("--dir", dumps, "jfr", jvm.pid, out, 3)
    took = time.monotonic() - t0
    print(f"3 s recording: {os.path.getsize(out)} bytes, {took:.2f}s")
    if took < 3:
        fail("the recording did not last its duration")
    summary = check_jfr(out, "jdk.GarbageCollection", 5)
    if "Duration: 3 s" not in summary and "Duration: 4 s" not in summary:
        fail(f"unexpected duration:\n{summary[:400]}")
    if dir_entries(dumps):
        fail(f"left in {dumps}: {dir_entries(dumps)}")
    out2 = ctx.path("profile.jfr")
    ctx.run("jfr", jvm.pid, out2, 1, "profile")
    check_jfr(out2, "jdk.ExecutionSample", 0)
    p = ctx.run("jfr", jvm.pid, ctx.path("bad.jfr"), 1, "no-such-settings", ok=False)
    if "JFR.start failed" not in p.stderr:
        fail(f"bad settings not reported: {p.stderr}")
    no_vigil_recording(jvm)
    assert_answering(ctx, jvm)


def sc_jfr_cancel(ctx):
    """A cancelled recording stops at once, keeps nothing and leaves no recording running."""
    jvm = Jvm(ctx, "Idle")
    dumps = ctx.path("dumps")
    os.mkdir(dumps)
    t0 = time.monotonic()
    p = ctx.run("--dir", dumps, "--cancel-after", 1500, "jfr", jvm.pid, ctx.path("r.jfr"), 120,
                ok=False)
    took = time.monotonic() - t0
    print(f"cancelled after {took:.2f}s: {p.stderr.strip()}")
    if "VG_ECANCELED" not in p.stderr or took > 60:
        fail(f"expected a prompt VG_ECANCELED: {p.stderr}")
    if dir_entries(dumps):
        fail(f"left in {dumps}: {dir_entries(dumps)}")
    no_vigil_recording(jvm)
    assert_answering(ctx, jvm)


def sigquit_caught(jvm):
    return (int(jvm.status("SigCgt")[0], 16) >> 2) & 1 == 1


def sc_xrs(ctx):
    """-Xrs: SIGQUIT not handled. Attach works while its listener exists; once the socket is gone
    vigil refuses (SIGQUIT would kill it) and the JVM runs on."""
    jvm = Jvm(ctx, "Idle", opts=["-Xrs"])
    if sigquit_caught(jvm):
        fail("a -Xrs JVM catches SIGQUIT?")
    # -Xrs (ReduceSignalUsage) starts the listener at startup: attaching works meanwhile.
    sock = f"/tmp/.java_pid{jvm.pid}"
    wait_for(lambda: os.path.exists(sock), 10, "the -Xrs JVM's listener")
    ctx.run("threads", jvm.pid, ctx.path("threads.txt"))
    os.unlink(sock)  # as a /tmp cleaner would
    p = ctx.run("threads", jvm.pid, ctx.path("refused.txt"), ok=False)
    print(p.stderr.strip())
    if "VG_EUNSUPPORTED" not in p.stderr or "-Xrs" not in p.stderr:
        fail(f"expected a refusal naming -Xrs: {p.stderr}")
    # Not killed: it is still there a while later (a SIGQUIT would have ended it at once).
    end = time.monotonic() + 2
    while time.monotonic() < end:
        if not jvm.alive():
            fail("the -Xrs JVM died")
        time.sleep(0.1)
    assert_no_trigger(ctx, jvm)


def sc_noattach(ctx):
    """-XX:+DisableAttachMechanism: the listener never comes; reported within the timeout."""
    jvm = Jvm(ctx, "Idle", opts=["-XX:+DisableAttachMechanism"])
    t0 = time.monotonic()
    p = ctx.run("--attach-timeout", 2000, "threads", jvm.pid, ctx.path("t.txt"), ok=False)
    took = time.monotonic() - t0
    print(f"{took:.2f}s: {p.stderr.strip()}")
    if "VG_ETIMEDOUT" not in p.stderr or "did not start its attach listener" not in p.stderr:
        fail(f"expected a timeout: {p.stderr}")
    if took > 10:
        fail("the timeout was not kept")
    if not jvm.alive():
        fail("the JVM died")
    assert_no_trigger(ctx, jvm)


def sc_stopped(ctx):
    """A JVM that stops answering (SIGSTOP) is reported within the command timeout, and the
    attach listener serves the next client once it runs again."""
    jvm = Jvm(ctx, "Idle")
    ctx.run("threads", jvm.pid, ctx.path("t1.txt"))
    os.kill(jvm.pid, signal.SIGSTOP)

    def all_stopped():
        states = []
        for tid in os.listdir(f"/proc/{jvm.pid}/task"):
            try:
                with open(f"/proc/{jvm.pid}/task/{tid}/stat") as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
        return states and all(st == "T" for st in states)
    try:
        wait_for(all_stopped, 30, "every thread of the JVM to stop")
        t0 = time.monotonic()
        p = ctx.run("--command-timeout", 1500, "threads", jvm.pid, ctx.path("t2.txt"), ok=False)
        took = time.monotonic() - t0
        print(f"{took:.2f}s: {p.stderr.strip()}")
        if "VG_ETIMEDOUT" not in p.stderr or "did not complete" not in p.stderr or took > 10:
            fail(f"expected a prompt timeout: {p.stderr}")
    finally:
        os.kill(jvm.pid, signal.SIGCONT)
    assert_answering(ctx, jvm)


def sc_otheruser(ctx):
    """vigil as root, the JVM as nobody: the listener sees the JVM's own ids (helper child)."""
    require_root()
    jvm = Jvm(ctx, "HeapGrower", ["512", "20", "16"], user=65534)
    if jvm.status("Uid")[1] != "65534":
        fail("the JVM does not run as 65534")
    wait_for(lambda: ctx.run("perf", jvm.pid, ok=None).returncode == 0, 30, "perf data")
    first = ctx.run("perf", jvm.pid).stdout.splitlines()[0]
    if "/tmp/hsperfdata_nobody/" not in first:
        fail(f"unexpected perf-data file: {first}")
    # A root JVM killed with SIGKILL that had this pid would have left its socket behind, which
    # this JVM cannot replace in the sticky /tmp: vigil removes such a dead socket.
    stale = f"/tmp/.java_pid{jvm.pid}"
    if not os.path.exists(stale):
        with socket.socket(socket.AF_UNIX) as sk:
            sk.bind(stale)
    ctx.run("threads", jvm.pid, ctx.path("threads.txt"))
    st = os.stat(stale)
    if st.st_uid != 65534:
        fail("the stale socket is still there")
    dumps = ctx.path("dumps")
    os.mkdir(dumps)
    out = ctx.path("heap.hprof")
    ctx.run("--dir", dumps, "heapdump", jvm.pid, out)
    check_hprof(ctx, out, "HeapGrower$Chunk", 1)
    if dir_entries(dumps):
        fail(f"left in {dumps}: {dir_entries(dumps)}")
    assert_answering(ctx, jvm)


def namespaced(ctx, wrap, prelude="", user=None, cls="HeapGrower", args=("512", "20", "16")):
    require_root()
    if not shutil.which("unshare"):
        raise Skip("no unshare")
    jvm = Jvm(ctx, cls, args, wrap=wrap, prelude=prelude, user=user)
    if jvm.nspid == jvm.pid:
        fail("the JVM is not in its own PID namespace")
    print(f"pid {jvm.pid}, namespace pid {jvm.nspid}")
    return jvm


def check_all_in_ns(ctx, jvm, private_tmp):
    wait_for(lambda: ctx.run("perf", jvm.pid, ok=None).returncode == 0, 30, "perf data")
    vals, _ = parse_counters(ctx.run("perf", jvm.pid).stdout)
    first = ctx.run("perf", jvm.pid).stdout.splitlines()[0]
    if not re.search(rf"file=/tmp/hsperfdata_\w+/{jvm.nspid} ", first):
        fail(f"perf data not found by the namespace pid: {first}")
    if int(vals.get("java.threads.live", 0)) < 5:
        fail("implausible counters")
    inner = f"/proc/{jvm.pid}/root/tmp"
    ctx.run("threads", jvm.pid, ctx.path("threads.txt"))
    if not os.path.exists(f"{inner}/.java_pid{jvm.nspid}"):
        fail("no listener socket in the JVM's /tmp")
    if private_tmp and os.path.exists(f"/tmp/.java_pid{jvm.nspid}"):
        st1 = os.stat(f"/tmp/.java_pid{jvm.nspid}")
        st2 = os.stat(f"{inner}/.java_pid{jvm.nspid}")
        if (st1.st_dev, st1.st_ino) == (st2.st_dev, st2.st_ino):
            fail("the JVM's /tmp is not private")
    out = ctx.path("heap.hprof")
    ctx.run("heapdump", jvm.pid, out)  # default: the JVM's /tmp, seen through its root
    check_hprof(ctx, out, "HeapGrower$Chunk", 1)
    left = [e for e in os.listdir(inner) if e.startswith("vigil-")] if private_tmp else []
    if left:
        fail(f"left in the JVM's /tmp: {left}")
    rec = ctx.path("rec.jfr")
    ctx.run("jfr", jvm.pid, rec, 1)
    check_jfr(rec, "jdk.ThreadSleep", 0)
    assert_no_trigger(ctx, jvm)
    assert_answering(ctx, jvm)


def sc_pidns_shared(ctx):
    """A PID namespace sharing our /tmp: files named by the namespace pid."""
    jvm = namespaced(ctx, ["unshare", "--pid", "--fork", "--mount-proc"])
    check_all_in_ns(ctx, jvm, private_tmp=False)


def sc_pidns_private(ctx):
    """A PID and mount namespace with its own /tmp: everything through /proc/PID/root."""
    jvm = namespaced(ctx, ["unshare", "--pid", "--fork", "--mount", "--mount-proc"],
                     prelude="mount -t tmpfs tmpfs /tmp && ")
    check_all_in_ns(ctx, jvm, private_tmp=True)


def sc_userns_private(ctx):
    """A rootless container: user, PID and mount namespaces, private /tmp, the JVM root inside
    but uid 65534 outside; vigil's root is not mapped there, so it connects as 65534."""
    require_root()
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "unshare", "--user", "--map-root-user", "true"], capture_output=True)
    if probe.returncode != 0:
        raise Skip("unprivileged user namespaces are not allowed here")
    jvm = namespaced(ctx, ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount",
                           "--mount-proc"],
                     prelude="mount -t tmpfs tmpfs /tmp && ", user=65534)
    if jvm.status("Uid")[1] != "65534":
        fail("the JVM is not 65534 outside")
    check_all_in_ns(ctx, jvm, private_tmp=True)


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--cli", required=True)
    ap.add_argument("--apps", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    ctx = None
    try:
        require_java()
        if not os.path.exists(os.path.join(args.apps, "Idle.class")):
            raise Skip(f"no compiled test programs in {args.apps} (javac missing?)")
        ctx = Ctx(args)
        SCENARIOS[args.scenario](ctx)
    except Skip as e:
        print(f"SKIP: {e}")
        return SKIP
    except AssertionError as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        if ctx:
            ctx.cleanup()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
