#!/usr/bin/env python3
"""Regression tests for issue 16 (hardening), engine side: each scenario reproduces a problem
found by attacking the daemon and checks it stays fixed. The real `vigil run`, real processes,
the shared harness (tests/lib/vigil_test.py) and the scenario Env of daemon_test.py.

    hardening_test.py SCENARIO
"""

import ctypes
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemon_test as dt  # noqa: E402  (the scenario Env: config, workloads, fires log)
import vigil_test as vt  # noqa: E402
from vigil_test import fail, free_port, wait_for  # noqa: E402


def marker_procs(marker):
    """pids of live processes whose command line contains marker."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out


def spawn_marked(env, marker, *extra):
    """A process whose command line holds the test's tag and marker (sh keeps running: the
    `; true` stops dash from exec'ing sleep in its place)."""
    return env.spawn(["/bin/sh", "-c", "sleep 120; true", env.tag, marker, *extra])


def sc_egress_unbuildable(env):
    """Item 1: an egress provider that cannot be created with at least one rule: `vigil run`
    exits 1 with the reason (it crashed in vg__gen_unref), and a reload to such a configuration
    leaves the running one untouched."""
    every = {"Type": "ThreadCount", "Settings": {"GreaterThan": 0, "SlidingWindowDuration": "0s"}}
    bad = env.settings()
    bad["Egress"] = {"FileSystem": {"bad": {"DirectoryPath": "/dev/null/x"}}}
    bad["CollectionRules"] = {"R": env.rule("R", every, limits={"ActionCount": 1})}
    env.write("rules.yaml", bad)
    log = os.path.join(env.dir, "bad.log")
    with open(log, "w") as f:
        rc = subprocess.run([vt.VIGIL, "run", "--config-dir", env.conf, "--state-dir",
                             env.state, "--no-auth", "--urls",
                             f"http://127.0.0.1:{free_port()}"], stdout=f,
                            stderr=subprocess.STDOUT, timeout=60).returncode
    text = open(log, errors="replace").read()
    if rc != 1:
        fail(f"vigil run exited {rc} (expected 1) on an unbuildable egress:\n{text}")
    if "/dev/null/x" not in text:
        fail(f"the log does not name the bad directory:\n{text}")
    good = env.settings()
    good["CollectionRules"] = {"Good": env.rule("Good", every, limits={"ActionCount": 1})}
    env.write("rules.yaml", good)
    w = env.workload("threads:2", "hold")
    env.start_daemon()
    wait_for("Good to fire", lambda: env.fire_lines("Good"), 15)
    env.write("rules.yaml", bad)
    wait_for("the reload to be rejected",
             lambda: (env.get("/info").get("configurationErrors") or ""), 15)
    if env.vigil.p.poll() is not None:
        fail("vigil died on a reload to an unbuildable egress")
    s = env.rule_state("Good", w.pid)
    if s.get("state") != "Finished":
        fail(f"the running configuration was not kept: {s}")


def sc_execute_injection(env):
    """Item 3: tokens are substituted into whole arguments after the user's Arguments were
    split, so a command line chosen by the watched process cannot add arguments or unbalance
    quotes."""
    out = os.path.join(env.dir, "args.txt")
    script = 'for a in "$@"; do printf "[%s]\\n" "$a"; done > ' + shlex.quote(out)
    cfg = env.settings()
    cfg["CollectionRules"] = {"Args": env.rule(
        "Args", {"Type": "Startup"},
        actions=[{"Type": "Execute", "Settings": {
            "Path": "/bin/sh",
            "Arguments": "-c " + shlex.quote(script) + " sh $(Process.CommandLine) "
                         "'fixed word'"}}])}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    p = spawn_marked(env, "x --output=/etc/passwd", 'unbalanced"quote')
    wait_for("the Execute action", lambda: os.path.exists(out) and open(out).read(), 15)
    time.sleep(0.2)
    got = open(out).read().splitlines()
    cmdline = open(f"/proc/{p.pid}/cmdline", "rb").read().rstrip(b"\0").replace(
        b"\0", b" ").decode()
    if got != [f"[{cmdline}]", "[fixed word]"]:
        fail(f"arguments {got!r}, expected the command line as one word and 'fixed word'")


def sc_execute_env(env):
    """Item 4: the child's environment is minimal (PATH, HOME, LANG) plus the rule's
    Environment, never vigil's (secrets); Timeout kills the child's whole session, and nothing
    the child left behind survives its action."""
    out = os.path.join(env.dir, "env.txt")
    # markers must not contain the tag, or the rule would also watch its own children
    m1, m2 = "mk" + env.tag[::-1] + "Timeout", "mk" + env.tag[::-1] + "Orphan"
    py = shlex.quote(sys.executable)
    cfg = env.settings()
    cfg["CollectionRules"] = {"Env": env.rule("Env", {"Type": "Startup"}, actions=[
        {"Name": "E", "Type": "Execute", "Settings": {
            "Path": "/usr/bin/env", "Arguments": "",
            "Environment": {"TARGET_PID": "$(Process.ProcessId)", "LANG": "C"}}},
        # the note (the end of the list) waits for this one to end
        {"Type": "Execute", "WaitForCompletion": True, "Settings": {
            "Path": "/bin/sh", "Arguments": "-c " + shlex.quote(
                f"{py} -c 'import time; time.sleep(300)' {m2} & sleep 0.5; exit 0")}},
        env.note("Env"),
        # last: a timed-out action fails the list
        {"Type": "Execute", "Settings": {
            "Path": "/bin/sh", "Arguments": "-c " + shlex.quote(
                f"{py} -c 'import time; time.sleep(300)' {m1} & wait"),
            "Timeout": "00:00:02"}}])}
    env.write("rules.yaml", cfg)
    env.vigil = env.daemon(conf=env.conf, state=env.state, no_auth=True,
                           args=["--log-level", "debug"],
                           extra_env={"AWS_SECRET_ACCESS_KEY": "s3cr3t-" + env.tag,
                                      "VIGIL_TEST_SECRET": "key-" + env.tag})
    env.start_daemon()
    p = spawn_marked(env, "envtest")
    wait_for("the action list to end", lambda: env.fire_lines("Env"), 30)
    # the first action's output went to vigil's log (the child's stdout is vigil's stderr)
    text = env.vigil.log()
    if "s3cr3t-" + env.tag in text or "key-" + env.tag in text:
        fail("a secret from vigil's environment reached an Execute child")
    for want in (f"TARGET_PID={p.pid}", "LANG=C", "HOME=/", "PATH=/usr/local/sbin:"):
        if want not in text:
            fail(f"{want!r} missing from the child's environment:\n{env.vigil.log_tail()}")
    left = marker_procs(m2)
    if left:
        fail("a background process started by Execute outlived its action: " + ", ".join(
            open(f"/proc/{x}/cmdline").read().replace("\0", " ") for x in left))
    wait_for("the timed-out action's grandchild to start", lambda: marker_procs(m1), 10)
    wait_for("the instance to record the timeout", lambda: "timed out" in (
        env.rule_state("Env", p.pid).get("lastError") or ""), 15)
    time.sleep(0.5)
    if marker_procs(m1):
        fail("a grandchild of a timed-out Execute survived the timeout")


def sc_config_watch(env):
    """Item 8: the watch survives the configuration directory being deleted and recreated, and
    being replaced by a symlink to another directory; edits apply without SIGHUP."""
    every = {"Type": "ThreadCount", "Settings": {"GreaterThan": 1, "SlidingWindowDuration": "0s"}}

    def cfg(name):
        c = env.settings()
        c["CollectionRules"] = {name: env.rule(name, every, limits={"ActionCount": 1})}
        return c
    env.write("rules.yaml", cfg("First"))
    env.workload("threads:2", "hold")
    env.start_daemon()
    wait_for("First to fire", lambda: env.fire_lines("First"), 15)
    import shutil
    ino = os.stat(env.conf).st_ino
    shutil.rmtree(env.conf)
    # recreated after the reload the deletion caused (300 ms debounce) found no directory, and
    # before the 2 s identity check saw it missing (most of the time): the new directory gets
    # the old one's inode number (ext4 and tmpfs reuse it), so only the dead watch's own events
    # can tell vigil it is a new directory
    time.sleep(0.6)
    os.makedirs(env.conf)
    env.write("rules.yaml", cfg("Second"))
    print("recreated directory: inode " + ("reused" if os.stat(env.conf).st_ino == ino else "new"))
    wait_for("Second to fire after the directory was recreated",
             lambda: env.fire_lines("Second"), 20)
    other = os.path.join(env.dir, "other-conf")
    os.makedirs(other)
    env.write("rules.yaml", cfg("Third"), dirpath=other)
    tmp = env.conf + ".new"
    os.symlink(other, tmp)
    shutil.rmtree(env.conf)
    os.rename(tmp, env.conf)
    wait_for("Third to fire after the directory became a symlink",
             lambda: env.fire_lines("Third"), 20)
    env.write("rules.yaml", cfg("Fourth"), dirpath=other)
    wait_for("Fourth to fire after an edit behind the symlink",
             lambda: env.fire_lines("Fourth"), 20)
    if env.vigil.p.poll() is not None:
        fail("vigil exited")


def sc_startup_short(env):
    """Item 9: Startup fires when a matching process is discovered: processes living ~1.5 s
    (longer than the 1 s poll interval, with margin for a loaded machine's late ticks) are never
    missed."""
    cfg = env.settings(poll="1s")
    cfg["CollectionRules"] = {"Start": env.rule("Start", {"Type": "Startup"})}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    pids = []
    for burst in range(4):  # bursts of processes living 1.5 to 1.95 s, started together
        ps = [subprocess.Popen(["/bin/sh", "-c", f"sleep {1.5 + 0.05 * i}; true", env.tag,
                                str(i)]) for i in range(10)]
        pids += [p.pid for p in ps]
        for p in ps:
            p.wait()
        time.sleep(0.37 * burst)
    wait_for("every short-lived process's Startup fire",
             lambda: {int(l[1]) for l in env.fire_lines("Start")} >= set(pids), 10)


def sc_file_modes(env):
    """Item 10: the state database, its WAL and shared-memory files and the state directory are
    private from the first byte, also when startup fails."""
    cfg = env.settings()
    cfg["CollectionRules"] = {"R": env.rule("R", {"Type": "Startup"})}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    wait_for("the WAL files", lambda: os.path.exists(os.path.join(env.state, "vigil.db-wal")), 10)

    def check(where, own_dir):
        for name in os.listdir(env.state):
            st = os.stat(os.path.join(env.state, name))
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077:
                fail(f"{where}: {name} has mode {oct(mode)}")
        mode = stat.S_IMODE(os.stat(env.state).st_mode)
        if own_dir and mode & 0o077:
            fail(f"{where}: the state directory vigil created has mode {oct(mode)}")
    check("running", False)  # the harness made this state directory
    env.vigil.kill()
    env.state = os.path.join(env.dir, "state-failed")
    env.write("rules.yaml", "CollectionRules: [not, a, map]\n")
    rc = subprocess.run([vt.VIGIL, "run", "--config-dir", env.conf, "--state-dir",
                         env.state, "--no-auth"], capture_output=True, timeout=60).returncode
    if rc != 1:
        fail(f"vigil run exited {rc} on an invalid configuration")
    if not os.path.isdir(env.state):
        fail("no state directory was created before the failure")
    check("after a failed start", True)


PTRACE_TRACEME = 0


def sc_dump_errors(env):
    """Item 11: a streamed /dump that cannot work is a clear 4xx before any 200 (a process
    already traced by someone else)."""
    env.write("rules.yaml", env.settings())
    env.start_daemon()
    libc = ctypes.CDLL(None, use_errno=True)
    pid = os.fork()
    if pid == 0:
        libc.ptrace(PTRACE_TRACEME, 0, None, None)
        os.execv("/bin/sleep", ["sleep", "60"])
    try:
        wait_for("the traced child", lambda: os.path.exists(f"/proc/{pid}/status") and re.search(
            r"TracerPid:\s+[1-9]", open(f"/proc/{pid}/status").read()), 10)
        wait_for("vigil to discover the traced child",
                 lambda: "_status" not in env.get(f"/process?pid={pid}"), 10)
        r = env.get(f"/dump?pid={pid}")
        if not isinstance(r, dict) or r.get("_status") != 409 or "already traced" not in r.get(
                "_body", ""):
            fail(f"/dump of a traced process: {r!r}")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def sc_log_escape(env):
    """Item 13: a process name with control characters stays on one log line."""
    cfg = env.settings()
    # matched once the process renamed itself (the name filter), so the fire shows the new name
    cfg["CollectionRules"] = {"Evil": env.rule("Evil", {"Type": "Startup"}, filters=[
        {"Key": "CommandLine", "Value": env.tag, "MatchType": "Contains"},
        {"Key": "ProcessName", "Value": "ev", "MatchType": "Contains"}])}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    code = ("import ctypes,time; ctypes.CDLL(None).prctl(15, b'ev\\nil\\x1b[31m', 0, 0, 0); "
            "time.sleep(60)")
    env.spawn([sys.executable, "-c", code, env.tag])
    wait_for("Evil to fire", lambda: env.fire_lines("Evil"), 15)
    text = env.vigil.log()
    fired = [l for l in text.splitlines() if "rule Evil fired" in l]
    if not fired or "ev\\nil\\x1b[31m" not in fired[0]:
        fail(f"the fire line does not show the escaped name: {fired!r}")
    if re.search(r"^il", text, re.M):
        fail("a process name split a log line")


def sc_secret_values(env):
    """Item 12: what a ${env:} or ${file:} reference resolves to never appears in a message:
    not in `vigil check`'s diagnostics for values refused in any field, not in the daemon's log,
    /info or /collectionrules, and not in an upload's error (libcurl quotes the host it could
    not resolve)."""
    marks = {n: "SeCrEt%s%d" % (n, os.getpid()) for n in ("Uri", "End", "Dir", "Key", "Host")}
    os.environ["VG_TEST_SECRET_URI"] = "not a uri " + marks["Uri"]
    os.environ["VG_TEST_SECRET_DIR"] = "/dev/null/" + marks["Dir"]
    os.environ["VG_TEST_SECRET_KEY"] = "!!" + marks["Key"] + "!!"
    end_file = os.path.join(env.dir, "endpoint")
    with open(end_file, "w") as f:
        f.write("gopher://%s\n" % marks["End"])
    host_file = os.path.join(env.dir, "host")
    with open(host_file, "w") as f:
        f.write("http://%s.invalid:9/\n" % marks["Host"].lower())
    marks["Host"] = marks["Host"].lower()
    s3 = {"BucketName": "b", "RegionName": "us-east-1", "AccessKeyId": "k",
          "SecretAccessKey": "s", "ForcePathStyle": True}
    cfg = env.settings()
    cfg["Egress"] = {
        "AzureBlobStorage": {"az": {"AccountUri": "${env:VG_TEST_SECRET_URI}",
                                    "ContainerName": "c", "AccountKey": "a2V5"}},
        "S3Storage": {"bad": dict(s3, Endpoint="${file:%s}" % end_file),
                      "down": dict(s3, Endpoint="${file:%s}" % host_file, MaxRetries=0)},
        "FileSystem": {"fs": {"DirectoryPath": "${env:VG_TEST_SECRET_DIR}"}}}
    cfg["Authentication"] = {"MonitorApiKey": {"Subject": "x",
                                               "PublicKey": "${env:VG_TEST_SECRET_KEY}"}}
    every = {"Type": "ThreadCount", "Settings": {"GreaterThan": 0, "SlidingWindowDuration": "0s"}}
    dump = {"Type": "CollectDump", "Settings": {"Egress": "down", "Type": "Mini"}}
    cfg["CollectionRules"] = {
        "Up": env.rule("Up", every, limits={"ActionCount": 1}, actions=[dump]),
        "Fs": env.rule("Fs", every, limits={"ActionCount": 1},
                       actions=[{"Type": "CollectDump", "Settings": {"Egress": "fs"}}])}
    env.write("rules.yaml", cfg)

    def leaks(text):
        return [m for m in marks.values() if m in text]

    r = subprocess.run([vt.VIGIL, "check", "--config-dir", env.conf], capture_output=True,
                       text=True, timeout=60)
    out = r.stdout + r.stderr
    if r.returncode == 0 or "AccountUri" not in out:
        fail(f"vigil check should refuse the bad values (exit {r.returncode}):\n{out}")
    if leaks(out):
        fail(f"vigil check quotes secret values {leaks(out)}:\n{out}")
    for flag in ("--show",):
        r = subprocess.run([vt.VIGIL, "check", flag, "--config-dir", env.conf],
                           capture_output=True, text=True, timeout=60)
        if leaks(r.stdout + r.stderr):
            fail(f"vigil check {flag} shows secret values {leaks(r.stdout + r.stderr)}")
    # the daemon: the refused parts are reported, the upload to the unresolvable host fails
    del cfg["Egress"]["AzureBlobStorage"], cfg["Egress"]["S3Storage"]["bad"]
    del cfg["Egress"]["FileSystem"], cfg["CollectionRules"]["Fs"], cfg["Authentication"]
    env.write("rules.yaml", cfg)
    w = env.workload("threads:2", "hold")
    env.start_daemon()
    op = wait_for("the upload to the unresolvable host to fail", lambda: next(
        (o for o in env.get("/operations") if o.get("collectionRule") == "Up" and
         (o.get("status") == "Failed" or o.get("upload"))), None), 60)
    st = env.get("/operations/" + op["operationId"])
    if not st.get("error"):
        fail(f"the failed upload has no error: {st}")
    # and the configuration errors of a reload to the refused values
    cfg2 = dict(cfg)
    cfg2["Egress"] = dict(cfg["Egress"], FileSystem={"fs": {
        "DirectoryPath": "${env:VG_TEST_SECRET_DIR}"}})
    cfg2["CollectionRules"] = dict(cfg["CollectionRules"], Fs=env.rule(
        "Fs", every, limits={"ActionCount": 1},
        actions=[{"Type": "CollectDump", "Settings": {"Egress": "fs"}}]))
    env.write("rules.yaml", cfg2)
    wait_for("the reload to report the bad directory",
             lambda: "DirectoryPath" in env.vigil.log(), 30)
    texts = {"log": env.vigil.log(), "/info": str(env.get("/info")),
             "/collectionrules": str(env.get("/collectionrules?pid=%d" % w.pid)),
             "/operations": str(env.get("/operations")), "the operation": str(st),
             "/processes": str(env.get("/processes"))}
    for where, text in texts.items():
        if leaks(text):
            fail(f"{where} holds secret values {leaks(text)}:\n{text[-3000:]}")
    if "***" not in texts["the operation"] + texts["log"]:
        fail(f"the upload error should name the host as ***: {st}")
    w.kill()


def sc_conn_budget(env):
    """Item 7: the metrics listener's unauthenticated connections have a budget of their own
    (they cannot take the API's), and idle connections are cut when a budget is full: sockets
    that send nothing do not keep a client out. A budget full of requests in progress still
    refuses the next one (503)."""
    import socket
    settings = {"Server": {"MaxConnections": 4, "MetricsMaxConnections": 4,
                           "RequestTimeout": "60s", "IdleTimeout": "60s"}}
    d = env.daemon(settings=settings, no_auth=True, name="budget")
    d.start()

    def hold(port, n, partial=False):
        out = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if partial:  # a request in progress: headers not finished
                s.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n")
            out.append(s)
        time.sleep(0.3)  # accepted by the daemon
        return out

    def status(port, path):
        try:
            return vt.request(port, "GET", path, timeout=10).status
        except OSError as e:
            return repr(e)

    idle_metrics = hold(d.metrics_port, 12)
    if status(d.metrics_port, "/metrics") != 200:
        fail("idle connections kept a scraper out of /metrics")
    if status(d.api_port, "/info") != 200:
        fail("connections to the metrics listener took the API's budget")
    idle_api = hold(d.api_port, 8)
    if status(d.api_port, "/info") != 200:
        fail("idle connections kept an API client out")
    busy = hold(d.api_port, 6, partial=True)

    def refused():
        """503, unless the daemon had not read a partial request yet when the newcomer came
        (under load): then that connection was still idle and was cut; it is replaced."""
        st = status(d.api_port, "/info")
        if st == 503:
            return True
        cut = []
        for s in busy:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    cut.append(s)
            except BlockingIOError:
                pass
            s.setblocking(True)
        if not cut:
            fail(f"a budget full of requests in progress let one more in: {st}")
        for s in cut:
            busy.remove(s)
            s.close()
        busy.extend(hold(d.api_port, len(cut), partial=True))
        return False
    wait_for("a newcomer to be refused by a budget full of requests in progress", refused, 60)
    if status(d.metrics_port, "/metrics") != 200:
        fail("a full API budget starved the metrics listener")
    for s in idle_metrics + idle_api + busy:
        s.close()
    wait_for("the API to take requests again", lambda: status(d.api_port, "/info") == 200, 30)


SCENARIOS = {n[3:]: f for n, f in globals().items() if n.startswith("sc_")}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print("usage: hardening_test.py SCENARIO (%s)" % " ".join(sorted(SCENARIOS)),
              file=sys.stderr)
        return 2
    vt.run(SCENARIOS[sys.argv[1]], name="hardening_" + sys.argv[1], env_class=dt.Env)


if __name__ == "__main__":
    sys.exit(main())
