"""Shared pieces of the Python integration tests: a real `vigil run` on free loopback ports, target
processes, a small HTTP client, and waits that poll for a condition with a deadline (never a
sleep standing in for one). Standard library only.

A test script calls run(fn): fn(env) gets an Env with its own temporary directory; every daemon
and process started through env is stopped and the directory removed afterwards, whatever
happened (VG_TEST_KEEP=1 keeps it). Exit status: 0 passed, 1 failed, 77 skipped (raise Skip; the
CTest test has SKIP_RETURN_CODE 77). Every daemon's log is checked for sanitizer reports.

The binaries come from CTest's environment, so the ASan build's tests run the ASan daemon:
VIGIL (the vigil binary), VG_API_TARGET (tests/targets/vg_api_target.c), VG_WORKLOAD
(tests/targets/vg_workload.c). tests/lib is on PYTHONPATH.
"""
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

VIGIL = os.environ.get("VIGIL", "")
TARGET = os.environ.get("VG_API_TARGET", "")
WORKLOAD = os.environ.get("VG_WORKLOAD", "")

# What a sanitizer prints when it finds something; none of it may appear in a daemon's log.
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "ThreadSanitizer")

# dotnet-monitor's stateReason texts.
REASON_RUNNING = ("This collection rule is active and waiting for its triggering conditions "
                  "to be satisfied.")
REASON_EXECUTING = ("This collection rule has had its triggering conditions satisfied and is "
                    "currently executing its action list.")
REASON_THROTTLED = ("This collection rule is temporarily throttled because the ActionCountLimit "
                    "has been reached within the ActionCountSlidingWindowDuration.")
REASON_COOLDOWN = ("This collection rule is temporarily throttled because its Cooldown has not "
                   "elapsed since the last execution of its action list.")
REASON_FINISHED_COUNT = ("The collection rule will no longer trigger because the ActionCount "
                         "was reached.")
REASON_FINISHED_STARTUP = ("The collection rule will no longer trigger because the Startup "
                           "trigger only executes once.")
REASON_FINISHED_DURATION = ("The collection rule will no longer trigger because the "
                            "RuleDuration limit was reached.")

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESPAN_RE = re.compile(r"^(\d+\.)?\d\d:\d\d:\d\d(\.\d+)?$")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class Skip(Exception):
    """Raised by a test that cannot run here (a peer missing, not root): run() exits 77."""


def need(program, why):
    """Skips the test when program is not on PATH."""
    if not shutil.which(program):
        raise Skip("%s not found (%s)" % (program, why))


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: expected %r, got %r" % (what, want, got))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, cond, timeout, interval=0.1):
    """Polls cond() until it returns something truthy, which is returned; fails naming `what`
    after timeout seconds. Deadlines are generous: the machine is shared."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


def generate_key():
    """A key from `vigil generatekey`, checked against the hash it prints."""
    out = subprocess.run([VIGIL, "generatekey"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    key = re.search(r"^# Key: (\S+)$", out, re.M).group(1)
    digest = re.search(r'ApiKeyHash: "(sha256:[0-9a-f]{64})"', out).group(1)
    eq(digest, "sha256:" + hashlib.sha256(key.encode()).hexdigest(), "generatekey hash")
    check(len(key) == 43 and re.fullmatch(r"[A-Za-z0-9_-]+", key), "key shape: %r" % key)
    return key, digest


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body.decode())

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


def request(port, method, path, key=None, headers=None, body=None, timeout=15):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = "Bearer " + key
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.getheaders(), data)
    finally:
        conn.close()


def metric(text, name):
    """The value of an unlabelled sample in a Prometheus exposition, or None."""
    for line in text.splitlines():
        w = line.split()
        if len(w) == 2 and w[0] == name:
            return float(w[1])
    return None


def files_under(top):
    """Every file below top (partial-upload directories included), sorted."""
    out = []
    for root, _, names in os.walk(top):
        out += [os.path.join(root, n) for n in names]
    return sorted(out)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rule(name, pid, trigger, actions, limits=None):
    """{name: a collection rule for one pid}."""
    r = {"Filters": [{"Key": "ProcessId", "Value": str(pid)}], "Trigger": trigger,
         "Actions": actions}
    if limits:
        r["Limits"] = limits
    return {name: r}


def problem(r, status, code=None):
    """Checks an application/problem+json answer."""
    eq(r.status, status, "status of %r" % r)
    eq(r.header("Content-Type"), "application/problem+json", "problem Content-Type")
    j = r.json()
    eq(j.get("status"), status, "problem.status")
    check(isinstance(j.get("title"), str) and j["title"], "problem.title: %r" % j)
    check(isinstance(j.get("detail"), str) and j["detail"], "problem.detail: %r" % j)
    check(isinstance(j.get("code"), str) and j["code"].startswith("VG_"), "problem.code: %r" % j)
    if code:
        eq(j["code"], code, "problem.code")
    return j


class Target:
    """A vg_api_target process (heap, threads, more threads on request through stdin),
    optionally started under another name (a symlink), so that its comm is that name."""

    def __init__(self, env, heap_mb=0, threads=0, name=None):
        check(TARGET and os.access(TARGET, os.X_OK), "VG_API_TARGET must name vg_api_target")
        path = TARGET
        if name:
            path = os.path.join(env.tmp, name)
            if not os.path.exists(path):
                os.symlink(TARGET, path)
        self.path = path
        self.name = name or os.path.basename(TARGET)[:15]
        self.p = subprocess.Popen([path, "--heap-mb", str(heap_mb), "--threads", str(threads)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.p.pid
        line = self._line(120)
        check(line.startswith("ready pid %d" % self.pid), "target did not start: %r" % line)
        self.threads = int(line.split()[-1])

    def _line(self, timeout):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        check(r, "target pid %d said nothing for %ss" % (self.pid, timeout))
        return self.p.stdout.readline().strip()

    def cmd(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()
        line = self._line(30)
        check(line.startswith("threads "), "target answered %r" % line)
        self.threads = int(line.split()[1])
        return self.threads

    def stop(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
                self.p.wait(5)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                self.p.kill()
                self.p.wait()
        for f in (self.p.stdout, self.p.stdin):
            try:
                f.close()
            except (OSError, ValueError, BrokenPipeError):
                pass


class Daemon:
    """`vigil run` on a free API port. With `settings` (a dict), the harness writes it as
    conf/settings.json at each start, with a metrics listener on another free port; without,
    the test writes the configuration directory itself. Every start appends stdout and stderr
    to one log file."""

    def __init__(self, env, settings=None, no_auth=False, name="vigil", conf=None, state=None,
                 extra_env=None, args=()):
        self.env = env
        self.settings = settings
        self.no_auth = no_auth
        self.name = name
        self.extra_env = extra_env or {}
        self.args = list(args)
        self.dir = os.path.join(env.tmp, name)
        self.conf = conf or os.path.join(self.dir, "conf")
        self.state = state or os.path.join(self.dir, "state")
        for d in (self.dir, self.conf, self.state):
            os.makedirs(d, exist_ok=True)
        self.log_path = os.path.join(self.dir, "vigil.log")
        self.p = None
        self.starts = 0
        self.api_port = self.metrics_port = 0

    def _write_settings(self):
        s = json.loads(json.dumps(self.settings))
        server = s.setdefault("Server", {})
        server["MetricsUrls"] = ["http://127.0.0.1:%d" % self.metrics_port]
        with open(os.path.join(self.conf, "settings.json"), "w") as f:
            json.dump(s, f, indent=2)

    def _healthy(self):
        """The listener answers /healthz (an API listener that wants a key answers 401)."""
        port = self.metrics_port or self.api_port
        try:
            r = request(port, "GET", "/healthz", timeout=2)
        except OSError:
            return False
        return r.status == 200 or (port == self.api_port and r.status == 401)

    def start(self, timeout=60):
        for _ in range(5):
            self.api_port = free_port()
            self.metrics_port = free_port() if self.settings is not None else 0
            if self.settings is not None:
                self._write_settings()
            argv = [VIGIL, "run", "--config-dir", self.conf, "--state-dir", self.state, "--urls",
                    "http://127.0.0.1:%d" % self.api_port, "--shutdown-timeout", "20"]
            argv += ["--no-auth"] if self.no_auth else []
            argv += self.args
            env = dict(os.environ)
            env.pop("VIGIL_API_KEY", None)
            env.update(self.extra_env)
            self.starts += 1
            with open(self.log_path, "ab") as log:
                log.write(("==== start %d: %s\n" % (self.starts, " ".join(argv))).encode())
                log.flush()
                self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env, stdout=log,
                                          stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while self.p.poll() is None and not self._healthy():
                check(time.monotonic() < deadline, "vigil not healthy after %ss:\n%s" %
                      (timeout, self.log_tail()))
                time.sleep(0.05)
            if self.p.poll() is None:
                return self
            # Another test may have taken a port between free_port() and bind(): try others.
            if "address already in use" not in self.log().lower():
                fail("vigil exited with %s at startup:\n%s" % (self.p.returncode,
                                                               self.log_tail()))
        fail("vigil did not start:\n" + self.log_tail())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=60, skip=()):
        """The last n lines of the log, without those containing any string of skip."""
        lines = [l for l in self.log().splitlines() if not any(s in l for s in skip)]
        return "\n".join(lines[-n:])

    def sanitizer_lines(self):
        return [l for l in self.log().splitlines() if any(m in l for m in SANITIZER_MARKS)]

    def get(self, path, key=None, **kw):
        return request(self.api_port, "GET", path, key=key, **kw)

    def req(self, method, path, key=None, **kw):
        return request(self.api_port, method, path, key=key, **kw)

    def sweeps(self, key=None):
        """Discovery and sampling sweeps completed so far (vigil_sweeps_total)."""
        if self.metrics_port:
            text = request(self.metrics_port, "GET", "/metrics").body.decode()
        else:
            text = self.get("/metrics", key=key).body.decode()
        n = metric(text, "vigil_sweeps_total")
        check(n is not None, "no vigil_sweeps_total in /metrics")
        return int(n)

    def wait_sweeps(self, n, key=None, timeout=60):
        """Waits until n more sweeps have completed: every rule has then seen n more samples of
        every process, which is what a test asserting that something did NOT happen waits for."""
        target = self.sweeps(key) + n
        wait_for("%d more sweeps" % n, lambda: self.sweeps(key) >= target, timeout, 0.05)

    def send_signal(self, sig):
        self.p.send_signal(sig)

    def stop(self, timeout=60):
        """SIGTERM; returns the exit status (or fails if it does not exit in time)."""
        if self.p is None:
            return 0
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                fail("vigil did not exit within %ss of SIGTERM" % timeout)
        return self.p.returncode

    def stop_and_check(self):
        """Clean shutdown: exit status 0 and no sanitizer report."""
        rc = self.stop()
        bad = self.sanitizer_lines()
        check(not bad, "sanitizer report in vigil's log:\n" + "\n".join(bad[:20]))
        eq(rc, 0, "vigil exit status after SIGTERM")

    def kill(self, sig=signal.SIGKILL):
        if self.p is not None and self.p.poll() is None:
            self.p.send_signal(sig)
            self.p.wait()


class Env:
    """A test's temporary directory and everything it started."""

    def __init__(self, prefix):
        check(VIGIL and os.access(VIGIL, os.X_OK), "VIGIL must name the vigil binary")
        self.tmp = tempfile.mkdtemp(prefix="vg-%s-" % prefix)
        self.daemons = []
        self.targets = []
        self.procs = []

    def daemon(self, settings=None, **kw):
        d = Daemon(self, settings, **kw)
        self.daemons.append(d)
        return d

    def target(self, **kw):
        t = Target(self, **kw)
        self.targets.append(t)
        return t

    def spawn(self, argv, **kw):
        """A process in a session of its own, killed with its children at the end."""
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def close(self, keep=False):
        for d in self.daemons:
            d.kill()
        for t in self.targets:
            t.stop()
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        if keep:
            print("(files kept in %s)" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def run(fn, name=None, env_class=Env):
    """Runs fn(env) and exits: 0 passed, 1 failed, 77 skipped."""
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    env = None
    rc = 1
    t0 = time.monotonic()
    try:
        env = env_class(name)
        fn(env)
        for d in env.daemons:  # sanitizer builds report into the daemon's log
            bad = d.sanitizer_lines()
            check(not bad, "sanitizer report in %s:\n%s" % (d.log_path, "\n".join(bad[:20])))
        print("PASS %s (%.1fs)" % (name, time.monotonic() - t0))
        rc = 0
    except Skip as e:
        print("SKIP %s: %s" % (name, e))
        rc = 77
    except BaseException:
        traceback.print_exc()
        for d in env.daemons if env else []:
            print("---- last lines of %s ----" % d.log_path, file=sys.stderr)
            print(d.log_tail(60, skip=("[discovery]", "now watches")), file=sys.stderr)
    finally:
        if env:
            env.close(keep=os.environ.get("VG_TEST_KEEP") == "1")
    sys.exit(rc)
