#!/usr/bin/env python3
"""`vigil crash`, the kernel's core_pattern handler (engine/cli/crash.c), with real crashing
programs (tests/targets/vg_crasher.c, the .NET test app's --crash-after) and real readers of the
cores (gdb, the bytes themselves). One scenario per invocation:

    crash_test.py stdin|broken|bounds|fallback|s3|kernel|kernel_dotnet

stdin, broken, bounds, fallback and s3 run `vigil crash` as the kernel would, with a real core (written
by `vigil dump` of a live vg_crasher) on stdin: they need no machine-wide setting. kernel and
kernel_dotnet point the machine's core_pattern at the vigil under test with `vigil crash
--install` for the few seconds their crashes take, and restore it whatever happens: in a
`finally`, and, should this process be killed, by a guardian process that waits for it to exit
(`tail --pid`). They hold /run/lock/vigil-core-pattern-tests.lock meanwhile, so two suites on
the machine never change core_pattern at the same time; other programs crashing during that
window go, through vigil, to the handler that was configured before."""

import fcntl
import json
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import vigil_test as vt
from vigil_test import Skip, check, eq, fail, wait_for

CRASHER = os.environ.get("VG_CRASHER", "")
APPS = os.environ.get("VG_TEST_APPS_DIR", "")
CORE_PATTERN = "/proc/sys/kernel/core_pattern"
CORE_PIPE_LIMIT = "/proc/sys/kernel/core_pipe_limit"
LOCK = "/run/lock/vigil-core-pattern-tests.lock"
MARKER = "0x5eedc0de5eedc0de"  # vg_crasher's local in vg_crash_here
SIGNALS = {"SIGSEGV": 11, "SIGABRT": 6, "SIGFPE": 8, "SIGQUIT": 3}


class Env(vt.Env):
    def __init__(self, name):
        super().__init__(name)
        check(CRASHER and os.access(CRASHER, os.X_OK), "VG_CRASHER must name vg_crasher")
        # core_pattern holds at most 127 characters: the configuration and the handler (a symlink
        # to the vigil under test) go under a short directory
        self.short = tempfile.mkdtemp(prefix="vgc", dir="/tmp")
        self.conf = os.path.join(self.short, "c")
        self.handler = os.path.join(self.short, "v")
        os.symlink(vt.VIGIL, self.handler)
        self.state = os.path.join(self.tmp, "s")
        self.out = os.path.join(self.tmp, "out")
        for d in (self.conf, self.out):
            os.makedirs(d)

    def close(self, keep=False):
        super().close(keep)
        if not keep:
            shutil.rmtree(self.short, ignore_errors=True)

    def write_config(self, rules, egress=None):
        cfg = {"CollectionRules": rules,
               "Egress": egress or {"FileSystem": {"fs": {"DirectoryPath": self.out}}},
               "Storage": {"StateDir": self.state}}
        with open(os.path.join(self.conf, "settings.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        r = subprocess.run([vt.VIGIL, "check", "--config-dir", self.conf], capture_output=True,
                           text=True, timeout=60)
        eq(r.returncode, 0, "vigil check of the test's rules:\n" + r.stdout + r.stderr)

    def crasher(self, how="segv", name=None, delay=600, cwd=None, preexec=None):
        """A vg_crasher that crashes after `delay` seconds (long: the stdin scenarios dump it
        while it waits); under `name` (a symlink) its comm is that name."""
        path = CRASHER
        if name:
            path = os.path.join(self.tmp, name)
            if not os.path.exists(path):
                os.symlink(CRASHER, path)
        p = self.spawn([path, how, str(delay)], stdout=subprocess.PIPE, text=True,
                       cwd=cwd or self.tmp, preexec_fn=preexec)
        line = p.stdout.readline().strip()
        check(line == "ready %d" % p.pid, "crasher did not start: %r" % line)
        return p

    def real_core(self, p, name="core.real"):
        """A real core of process p, by `vigil dump` (the kernel's would be the same format)."""
        path = os.path.join(self.tmp, name)
        r = subprocess.run([vt.VIGIL, "dump", str(p.pid), "--type", "Full", "-o", path],
                           capture_output=True, text=True, timeout=120)
        eq(r.returncode, 0, "vigil dump: " + r.stderr)
        with open(path, "rb") as f:
            return f.read()

    def crash(self, pid, signo, comm, stdin, exe="", extra=()):
        """Runs `vigil crash` as the kernel does: FACTS, %e, %E; stdin holds the core. Returns
        (exit status, stderr)."""
        facts = "%d:%d:%d:%d:%d:%d:%d:%d:%s:%d:%s" % (
            pid, pid, pid, pid, signo, int(time.time()), os.getuid(), os.getgid(),
            "18446744073709551615", 1, "crashhost")
        argv = [vt.VIGIL, "crash", "--config-dir", self.conf, *extra, facts, comm,
                exe.replace("/", "!")]
        r = subprocess.run(argv, input=stdin, capture_output=True, timeout=120)
        err = r.stderr.decode(errors="replace")
        bad = [l for l in err.splitlines() if any(m in l for m in vt.SANITIZER_MARKS)]
        check(not bad, "sanitizer report from vigil crash:\n" + "\n".join(bad[:20]))
        return r.returncode, err

    def artifacts(self):
        return sorted(f for f in os.listdir(self.out) if not f.startswith("."))

    def fires(self):
        db = sqlite3.connect(os.path.join(self.state, "vigil.db"))
        try:
            return db.execute("SELECT rule, proc_key, status, error FROM fires ORDER BY id"
                              ).fetchall()
        finally:
            db.close()


def crash_rule(signals, actions, name="vg_crasher", limits=None, filters=()):
    r = {"Filters": [{"Key": "ProcessName", "Value": name}, *filters],
         "Trigger": {"Type": "ProcessCrash", "Settings": {"Signals": signals}},
         "Actions": actions}
    if limits:
        r["Limits"] = limits
    return r


def dump_action(name="Core", egress="fs", artifact=None):
    s = {"Egress": egress}
    if artifact:
        s["ArtifactName"] = artifact
    return {"Name": name, "Type": "CollectDump", "Settings": s}


def gdb_check(core, exe, signal_name):
    """gdb opens the core at vg_crash_here with its marker, killed by signal_name."""
    vt.need("gdb", "it reads the core")
    g = subprocess.run(["gdb", "-batch", "-nx", "-ex", "bt", "-ex", "frame function vg_crash_here",
                        "-ex", "p/x marker", exe, core], capture_output=True, text=True,
                       timeout=120)
    out = g.stdout + g.stderr
    check("Program terminated with signal %s" % signal_name in out,
          "gdb does not see %s:\n%s" % (signal_name, out))
    check(re.search(r"#\d+\s+.*vg_crash_here", out), "no vg_crash_here frame:\n" + out)
    check("= " + MARKER in out, "marker not found in the crashing frame:\n" + out)


# ---- scenarios without the kernel ----

def sc_stdin(env):
    """A matching crash: the core from stdin is the CollectDump artifact, byte for byte; Execute
    gets $(Crash.*) and $(Actions.Core.EgressPath); the fire is in the state. A signal or a
    command line the rule does not want matches nothing and ships nothing."""
    tag = "tag" + os.path.basename(env.tmp)[-8:]
    exec_out = os.path.join(env.tmp, "exec.out")
    execute = {"Type": "Execute", "Settings": {
        "Path": "/bin/sh",
        "Arguments": "-c 'echo \"$1|$2|$3|$4|$5|$6|$7\" >> %s' sh $(Crash.Signal) "
                     "$(Crash.SignalName) $(Crash.Hostname) $(Crash.ExecutablePath) "
                     "$(Process.ProcessId) $(Process.Name) $(Actions.Core.EgressPath)" % exec_out}}
    env.write_config({"Crash": crash_rule(["SIGSEGV", "abrt"], [dump_action(), execute],
                                          filters=[{"Key": "CommandLine", "Value": "segv 600",
                                                   "MatchType": "Contains"}])})
    p = env.crasher("segv")
    core = env.real_core(p)
    rc, err = env.crash(p.pid, 11, "vg_crasher", core, exe=CRASHER)
    eq(rc, 0, "vigil crash exit status:\n" + err)
    arts = env.artifacts()
    eq(len(arts), 1, "artifacts: %r\n%s" % (arts, err))
    check(re.fullmatch(r"core_\d{8}_\d{6}_\d{3}_%d" % p.pid, arts[0]),
          "dotnet-monitor's naming: %r" % arts[0])
    with open(os.path.join(env.out, arts[0]), "rb") as f:
        check(f.read() == core, "the shipped core differs from stdin")
    with open(exec_out) as f:
        line = f.read().strip()
    eq(line, "11|SIGSEGV|crashhost|%s|%d|vg_crasher|%s" % (CRASHER, p.pid,
                                                          os.path.join(env.out, arts[0])),
       "Execute's $(...) tokens")
    eq(env.fires(), [("Crash", "crash:vg_crasher", "Succeeded", None)], "fires")
    # SIGFPE is not in Signals: nothing matches, nothing is shipped, the core is dropped
    rc, err = env.crash(p.pid, 8, "vg_crasher", core)
    eq(rc, 0, "exit status of an unmatched crash")
    check("no ProcessCrash rule matches" in err and "the core is dropped" in err, err)
    eq(len(env.artifacts()), 1, "an unmatched crash shipped something")
    # another process (no "600" on its command line) does not match the CommandLine filter
    q = env.spawn([CRASHER, "segv", "599"], stdout=subprocess.PIPE, text=True)
    q.stdout.readline()
    rc, err = env.crash(q.pid, 11, "vg_crasher", core)
    check("no ProcessCrash rule matches" in err, "CommandLine filter ignored:\n" + err)
    eq(len(env.fires()), 1, "fires after two unmatched crashes")


def sc_broken(env):
    """A truncated core, bytes that are no core, an ELF file that is no core and an empty stdin
    are each reported and never committed as an artifact; bad arguments are refused."""
    env.write_config({"Crash": crash_rule(["SIGSEGV"], [dump_action()])})
    p = env.crasher("segv")
    core = env.real_core(p)
    with open(vt.VIGIL, "rb") as f:
        elf_exe = f.read(1 << 20)
    cases = [
        ("truncated", core[:len(core) // 2],
         "truncated core: the stream ended after %d bytes, its headers announce %d" %
         (len(core) // 2, len(core))),
        ("cut in the ELF header", core[:40], "truncated core: the stream ended after 40 bytes"),
        ("random bytes", os.urandom(300000), "not an ELF core file: no ELF magic"),
        ("an executable", elf_exe, "not an ELF core file: ELF file, but not a core"),
        ("empty", b"", "empty core"),
    ]
    for what, data, msg in cases:
        rc, err = env.crash(p.pid, 11, "vg_crasher", data)
        eq(rc, 1, "exit status for %s:\n%s" % (what, err))
        check(msg in err, "%s: expected %r in:\n%s" % (what, msg, err))
        eq(env.artifacts(), [], "%s was shipped" % what)
        partial = os.path.join(env.out, ".vigil-partial")
        check(not os.path.isdir(partial) or not os.listdir(partial),
              "%s left a partial file: %r" % (what, os.listdir(partial)))
    statuses = [f[2] for f in env.fires()]
    eq(statuses, ["Failed"] * len(cases), "fires of the broken cores")
    # the whole core still works afterwards (no Limits set: dotnet-monitor's default is 5)
    r = subprocess.run([vt.VIGIL, "crash", "--config-dir", env.conf, "1:2:3"], input=b"",
                       capture_output=True, timeout=30)
    eq(r.returncode, 2, "usage error for missing arguments")
    rc, err = env.crash(0, 11, "x", b"")
    eq(rc, 2, "a pid 0 is refused:\n" + err)
    check("unexpected arguments" in err, err)


def sc_bounds(env):
    """The handler is bounded: its data size limit is in force (RLIMIT_DATA), and a core that
    stops coming (stdin neither ends nor flows) is cut at --time-limit, reported, not shipped."""
    env.write_config({"Crash": crash_rule(["SIGSEGV"], [dump_action()])})
    p = env.crasher("segv")
    core = env.real_core(p)
    facts = "%d:%d:%d:%d:11:%d:0:0:0:1:h" % (p.pid, p.pid, p.pid, p.pid, int(time.time()))
    h = subprocess.Popen([vt.VIGIL, "crash", "--config-dir", env.conf, "--time-limit", "2",
                          "--memory-limit", "200", facts, "vg_crasher", ""],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        h.stdin.write(core[:len(core) // 2])  # and then nothing more, and no end
        h.stdin.flush()
        ldd = subprocess.run(["ldd", vt.VIGIL], capture_output=True, text=True).stdout
        if "libasan" not in ldd:  # a sanitizer's shadow memory would not fit: no limit there

            def data_limit():
                with open("/proc/%d/limits" % h.pid) as f:
                    line = [l for l in f if l.startswith("Max data size")][0]
                return line.split()[3:5] == [str(200 << 20)] * 2 and line
            wait_for("vigil crash's RLIMIT_DATA", data_limit, 30)
        rc = h.wait(60)  # the time limit (2 s) ends it; the alarm 15 s later would anyway
        err = h.stderr.read().decode(errors="replace")
    finally:
        if h.poll() is None:
            h.kill()
            h.wait()
    eq(rc, 1, "exit status after the time limit:\n" + err)
    check("time limit reached" in err, err)
    check("(time limit): not shipped" in err, err)
    eq(env.artifacts(), [], "a core cut by the time limit was shipped")
    partial = os.path.join(env.out, ".vigil-partial")
    check(not os.path.isdir(partial) or not os.listdir(partial), "a partial file stayed")


def sc_fallback(env):
    """No rule matches: the crash goes to the handler configured before (as --install recorded
    it): a pipe handler is exec'd with the kernel's values and the core on its stdin; a file
    pattern gets the core in the crashed process's cwd within RLIMIT_CORE; 'none' drops it."""
    env.write_config({"Other": crash_rule(["SIGSEGV"], [dump_action()], name="not-this-one")})
    got = os.path.join(env.tmp, "handler")
    os.makedirs(got)
    script = os.path.join(env.tmp, "prev.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s/args.$1\ncat > %s/core.$1\n" % (got, got))
    os.chmod(script, 0o755)

    def record(previous, fallback="previous"):
        os.makedirs(env.state, exist_ok=True)
        with open(os.path.join(env.state, "core_pattern.saved"), "w") as f:
            f.write("previous_core_pattern=%s\nprevious_core_pipe_limit=0\nfallback=%s\n"
                    "installed_core_pattern=|vigil crash\n" % (previous, fallback))

    cwd = os.path.join(env.tmp, "cwd")
    os.makedirs(cwd)
    p = env.crasher("segv", cwd=cwd)
    core = env.real_core(p)
    record("|%s %%P %%s %%e %%E %%h %%%% %%c" % script)
    rc, err = env.crash(p.pid, 11, "vg_crasher", core, exe=CRASHER)
    eq(rc, 0, "exit status:\n" + err)
    check("handed to the previous handler" in err, err)
    with open(os.path.join(got, "args.%d" % p.pid)) as f:
        eq(f.read().split("\n")[:-1], [str(p.pid), "11", "vg_crasher", CRASHER.replace("/", "!"),
                                       "crashhost", "%", "18446744073709551615"],
           "the previous handler's arguments")
    with open(os.path.join(got, "core.%d" % p.pid), "rb") as f:
        check(f.read() == core, "the previous handler did not get the core on stdin")
    eq(env.artifacts(), [], "vigil shipped a crash no rule wants")
    # a file pattern, relative to the crashed process's cwd, as its user
    record("core.%e.%p")
    rc, err = env.crash(p.pid, 11, "vg_crasher", core)
    eq(rc, 0, "exit status:\n" + err)
    with open(os.path.join(cwd, "core.vg_crasher.%d" % p.pid), "rb") as f:
        check(f.read() == core, "the core file differs")
    st = os.stat(os.path.join(cwd, "core.vg_crasher.%d" % p.pid))
    eq((st.st_uid, st.st_mode & 0o777), (os.getuid(), 0o600), "core file owner and mode")
    # O_EXCL: an existing file is never overwritten
    rc, err = env.crash(p.pid, 11, "vg_crasher", core)
    eq(rc, 1, "second write of the same core file:\n" + err)
    check("exists" in err, err)
    # --fallback none: dropped
    record("|%s %%P" % script, fallback="none")
    os.remove(os.path.join(got, "core.%d" % p.pid))
    rc, err = env.crash(p.pid, 11, "vg_crasher", core)
    eq(rc, 0, "exit status:\n" + err)
    check("the core is dropped (--fallback none)" in err, err)
    check(not os.path.exists(os.path.join(got, "core.%d" % p.pid)), "handed over with 'none'")
    # rules that do not compile: the crash still goes to the previous handler, and it says why
    record("|%s %%P" % script)
    with open(os.path.join(env.conf, "settings.json"), "w") as f:
        json.dump({"CollectionRules": {"Bad": {"Trigger": {"Type": "NoSuchTrigger"}}},
                   "Storage": {"StateDir": env.state}}, f)
    rc, err = env.crash(p.pid, 11, "vg_crasher", core)
    eq(rc, 0, "exit status of the previous handler, exec'd:\n" + err)
    check("CollectionRules.Bad refused" in err and "NoSuchTrigger" in err, err)
    with open(os.path.join(got, "core.%d" % p.pid), "rb") as f:
        check(f.read() == core, "a refused rule lost the crash")
    # a file that does not parse at all: the same, and the log says the configuration is broken
    os.remove(os.path.join(got, "core.%d" % p.pid))
    with open(os.path.join(env.conf, "settings.json"), "w") as f:
        f.write('{"CollectionRules": {"Bad": ')
    # the state dir as --install puts it into the pattern (the configuration can no longer say)
    rc, err = env.crash(p.pid, 11, "vg_crasher", core, extra=("--state-dir", env.state))
    eq(rc, 0, "exit status of the previous handler, exec'd:\n" + err)
    check("settings.json" in err and "error" in err, err)
    with open(os.path.join(got, "core.%d" % p.pid), "rb") as f:
        check(f.read() == core, "a broken configuration lost the crash")


def sc_s3(env):
    """The core goes to S3 (s3rver, the egress_servers fixture) through the egress job ops."""
    ports = os.path.join(os.environ["VG_BINARY_DIR"], "egress-servers", "ports.env")
    if not os.path.exists(ports):
        raise Skip("no egress servers (node missing): %s" % ports)
    s3 = dict(l.strip().split("=", 1) for l in open(ports) if "=" in l)["S3_PORT"]
    env.write_config({"Crash": crash_rule(["SIGSEGV"], [dump_action(
        egress="s3", artifact="crash-$(Crash.SignalName)-$(Process.ProcessId)")])},
        egress={"S3Storage": {"s3": {
            "Endpoint": "http://127.0.0.1:%s" % s3, "BucketName": "vigil",
            "RegionName": "us-east-1", "AccessKeyId": "S3RVER", "SecretAccessKey": "S3RVER",
            "ForcePathStyle": True, "KeyPrefix": "crash-" + os.path.basename(env.tmp)}}})
    p = env.crasher("segv")
    core = env.real_core(p)
    rc, err = env.crash(p.pid, 11, "vg_crasher", core)
    eq(rc, 0, "exit status:\n" + err)
    key = "crash-%s/crash-SIGSEGV-%d" % (os.path.basename(env.tmp), p.pid)
    check("s3://vigil/" + key in err, "EgressPath not logged:\n" + err)
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%s/vigil/%s" % (s3, key), timeout=30) as r:
        check(r.read() == core, "the S3 object differs from the core")


# ---- scenarios with the kernel ----

def read(path):
    with open(path) as f:
        return f.read().rstrip("\n")


def write(path, value):
    with open(path, "w") as f:
        f.write(value)


class Kernel:
    """core_pattern pointed at this vigil for the duration of a `with`, restored afterwards."""

    def __init__(self, env):
        if os.geteuid() != 0:
            raise Skip("not root: core_pattern cannot be changed")
        if not os.access(CORE_PATTERN, os.W_OK):
            raise Skip("%s is not writable here (a container?)" % CORE_PATTERN)
        vt.need("tail", "the guardian restores core_pattern if the test is killed")
        self.env = env

    def __enter__(self):
        os.makedirs(os.path.dirname(LOCK), exist_ok=True)
        self.lock = open(LOCK, "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.orig = read(CORE_PATTERN)
        self.orig_limit = read(CORE_PIPE_LIMIT)
        r = subprocess.run([vt.VIGIL, "crash", "--install", "--config-dir", self.env.conf,
                            "--handler", self.env.handler], capture_output=True, text=True,
                           timeout=30)
        self.ours = read(CORE_PATTERN)
        # should this process die without its finally, the guardian puts the setting back
        restore = ("tail --pid=%d -f /dev/null; "
                   "if [ \"$(cat %s)\" = '%s' ]; then printf '%%s' '%s' > %s; "
                   "printf '%%s' '%s' > %s; fi") % (
            os.getpid(), CORE_PATTERN, self.ours.replace("'", "'\\''"),
            self.orig.replace("'", "'\\''"), CORE_PATTERN, self.orig_limit, CORE_PIPE_LIMIT)
        self.guardian = subprocess.Popen(["setsid", "sh", "-c", restore],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            self.__exit__(None, None, None)
            fail("vigil crash --install: %s%s" % (r.stdout, r.stderr))
        self.install_out = r.stdout
        return self

    def uninstall(self):
        r = subprocess.run([vt.VIGIL, "crash", "--uninstall", "--config-dir", self.env.conf],
                           capture_output=True, text=True, timeout=30)
        return r

    def __exit__(self, *exc):
        try:
            if read(CORE_PATTERN) == self.ours:
                write(CORE_PATTERN, self.orig)
            write(CORE_PIPE_LIMIT, self.orig_limit)
        finally:
            os.killpg(self.guardian.pid, 9)  # sh and its tail; the setting is already back
            self.guardian.wait()
            fcntl.flock(self.lock, fcntl.LOCK_UN)
            self.lock.close()


def crash_log(env):
    try:
        with open(os.path.join(env.state, "crash.log")) as f:
            return f.read()
    except OSError:
        return ""


def check_log(env):
    bad = [l for l in crash_log(env).splitlines() if any(m in l for m in vt.SANITIZER_MARKS)]
    check(not bad, "sanitizer report in crash.log:\n" + "\n".join(bad[:20]))


def handled(env, pid):
    """True once vigil crash has finished with pid (its summary or its hand-off is logged)."""
    log = crash_log(env)
    return re.search(r"pid %d: (\d+ rules? matched|handed to|the core is dropped)" % pid, log)


def sc_kernel(env):
    """Real crashes through the kernel: the core of a segfault reaches the egress and opens in
    gdb at the crashing frame; a crash loop of 50 aborts is throttled by its Limits (3 cores);
    a program no rule wants goes to the previous handler; --install is idempotent and
    --uninstall restores core_pattern."""
    loop_limit = 3
    env.write_config({
        "Segv": crash_rule(["SIGSEGV"], [dump_action()]),
        "Loop": crash_rule(["SIGABRT"], [dump_action(
            artifact="loop-$(Crash.SignalName)-$(Process.ProcessId)")],
            limits={"ActionCount": loop_limit, "ActionCountSlidingWindowDuration": "01:00:00"}),
    })
    cwd = os.path.join(env.tmp, "cwd")
    os.makedirs(cwd)

    def unlimited_core():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    with Kernel(env) as k:
        check("installed" in k.install_out, k.install_out)
        eq(read(CORE_PIPE_LIMIT) != "0", True, "core_pipe_limit set above 0")
        check(k.ours.startswith("|%s crash --config-dir %s " % (env.handler, env.conf)), k.ours)
        # idempotent
        r = subprocess.run([vt.VIGIL, "crash", "--install", "--config-dir", env.conf,
                            "--handler", env.handler], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and "already installed" in r.stdout, r.stdout + r.stderr)
        # 1. a segfault
        p = env.crasher("segv", delay=0)
        eq(p.wait(60), -11, "the crasher's end")
        wait_for("vigil crash to handle pid %d" % p.pid, lambda: handled(env, p.pid), 60)
        arts = wait_for("the core in the egress", env.artifacts, 30)
        # 2. a crash loop: 50 aborts, throttled to loop_limit cores
        pids = []
        for _ in range(50):
            q = env.crasher("abort", delay=0)
            eq(q.wait(60), -6, "a looping crasher's end")
            pids.append(q.pid)
        for pid in pids:
            wait_for("vigil crash to handle pid %d" % pid, lambda: handled(env, pid), 60)
        # 3. a program no rule wants, with a core limit: the previous handler's turn
        o = env.crasher("segv", name="other_crasher", delay=0, cwd=cwd, preexec=unlimited_core)
        o.wait(60)
        wait_for("vigil crash to handle pid %d" % o.pid, lambda: handled(env, o.pid), 60)
        u = k.uninstall()
        eq(u.returncode, 0, "--uninstall: " + u.stdout + u.stderr)
        eq(read(CORE_PATTERN), k.orig, "core_pattern after --uninstall")
        eq(read(CORE_PIPE_LIMIT), k.orig_limit, "core_pipe_limit after --uninstall")
    check_log(env)
    log = crash_log(env)
    segv = [a for a in env.artifacts() if a.startswith("core_") and a.endswith("_%d" % p.pid)]
    eq(len(segv), 1, "the segfault's core: %r\n%s" % (env.artifacts(), log))
    gdb_check(os.path.join(env.out, segv[0]), CRASHER, "SIGSEGV")
    loops = sorted(a for a in env.artifacts() if a.startswith("loop-SIGABRT-"))
    eq(loops, sorted("loop-SIGABRT-%d" % pid for pid in pids[:loop_limit]),
       "the crash loop's cores")
    throttled = re.findall(r"rule Loop matches the crash of pid (\d+) .* throttled", log)
    eq([int(x) for x in throttled], pids[loop_limit:], "throttled crashes")
    gdb_check(os.path.join(env.out, loops[0]), CRASHER, "SIGABRT")
    fires = env.fires()
    eq([f[0] for f in fires], ["Segv"] + ["Loop"] * loop_limit, "fires recorded")
    # the other program went where crashes went before vigil: with a plain file pattern, its
    # core is in its cwd (the kernel's semantics, as this machine had them)
    check("pid %d: handed to the previous handler" % o.pid in log or
          "pid %d: the core is dropped" % o.pid in log, log)
    prev = k.orig
    if not prev.startswith("|") and "%" not in prev and "/" not in prev:
        names = os.listdir(cwd)
        check(any(n.startswith(prev) for n in names),
              "no %r core file in the crashed process's cwd: %r\n%s" % (prev, names, log))


def sc_kernel_dotnet(env):
    """A .NET program dying of an unhandled exception (SIGABRT): the runtime writes its own
    dump (DOTNET_DbgEnableMiniDump) and vigil still ships the kernel's core, which gdb opens."""
    app = os.path.join(APPS, "dotnet", "app", "VigilTestApp")
    vt.need("dotnet", "the .NET test program")
    if not os.access(app, os.X_OK):
        raise Skip("%s not built (the dotnet_apps fixture)" % app)
    env.write_config({"DotnetCrash": crash_rule(["SIGABRT"], [dump_action(
        artifact="dotnet-$(Process.ProcessId)")], name="VigilTestApp")})
    own = os.path.join(env.tmp, "runtime-dump")
    denv = dict(os.environ, DOTNET_DbgEnableMiniDump="1", DOTNET_DbgMiniDumpType="1",
                DOTNET_DbgMiniDumpName=own + ".%p", DOTNET_CLI_TELEMETRY_OPTOUT="1")
    with Kernel(env):
        p = env.spawn([app, "--crash-after", "100"], stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True, env=denv, cwd=env.tmp)
        line = p.stdout.readline().strip()
        check(line == "started pid=%d" % p.pid, "the .NET test app did not start: %r" % line)
        eq(p.wait(120), -6, "the .NET test app's end (SIGABRT)")
        wait_for("vigil crash to handle pid %d" % p.pid, lambda: handled(env, p.pid), 60)
    check_log(env)
    log = crash_log(env)
    arts = env.artifacts()
    eq(arts, ["dotnet-%d" % p.pid], "vigil's core of the .NET crash\n" + log)
    check(os.path.exists(own + ".%d" % p.pid), "the runtime's own dump is missing: %r" %
          os.listdir(env.tmp))
    with open(os.path.join(env.out, arts[0]), "rb") as f:
        head = f.read(18)
    eq((head[:4], head[16]), (b"\x7fELF", 4), "an ELF core")
    vt.need("gdb", "it reads the core")
    g = subprocess.run(["gdb", "-batch", "-nx", "-ex", "info sharedlibrary", app,
                        os.path.join(env.out, arts[0])], capture_output=True, text=True,
                       timeout=120)
    out = g.stdout + g.stderr
    check("Program terminated with signal SIGABRT" in out, out)
    check("libcoreclr.so" in out, "the core does not show the .NET runtime:\n" + out)


SCENARIOS = {n[3:]: f for n, f in globals().items() if n.startswith("sc_")}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        sys.exit("usage: crash_test.py %s" % "|".join(SCENARIOS))
    vt.run(SCENARIOS[sys.argv[1]], name="crash_" + sys.argv[1], env_class=Env)
