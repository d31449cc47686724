"""Shared pieces of the API tests: a real `vigil run` on free loopback ports, real target
processes and a small HTTP client. Standard library only.

Each test script calls main(fn): fn(env) gets an Env with its own temporary directory; every
daemon and target started through env is stopped and the directory removed afterwards, whatever
happened. The vigil binary and the target come from CTest's environment (VIGIL, VG_API_TARGET),
so the ASan build's tests run the ASan daemon.
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

# What a sanitizer prints when it finds something; none of it may appear in a daemon's stderr.
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "ThreadSanitizer")

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

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESPAN_RE = re.compile(r"^(\d+\.)?\d\d:\d\d:\d\d(\.\d+)?$")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class Skip(Exception):
    """Raised by a test that cannot run here (a peer missing): main() exits 77, which CTest
    reports as skipped (SKIP_RETURN_CODE 77)."""


def need(program, why):
    """Skips the test when program is not on PATH."""
    if not shutil.which(program):
        raise Skip("%s not found (%s)" % (program, why))


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


def wait_for(fn, timeout, what, interval=0.1):
    """Polls fn() until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


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


class Target:
    """A vg_api_target process, optionally started under another name (a symlink), so that its
    comm is that name."""

    def __init__(self, env, heap_mb=0, threads=0, name=None):
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
    """`vigil run` with settings.json written from a dict, the API on one free port and the
    metrics listener on another. Logs go to <tmp>/<name>.stderr."""

    def __init__(self, env, settings, no_auth=False, name="vigil", extra_env=None, args=()):
        self.env = env
        self.settings = settings
        self.no_auth = no_auth
        self.name = name
        self.extra_env = extra_env or {}
        self.args = list(args)
        self.dir = os.path.join(env.tmp, name)
        self.conf = os.path.join(self.dir, "conf")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.conf, exist_ok=True)
        os.makedirs(self.state, exist_ok=True)
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.p = None
        self.api_port = self.metrics_port = 0

    def _write_settings(self):
        s = json.loads(json.dumps(self.settings))
        server = s.setdefault("Server", {})
        server["MetricsUrls"] = ["http://127.0.0.1:%d" % self.metrics_port]
        with open(os.path.join(self.conf, "settings.json"), "w") as f:
            json.dump(s, f, indent=2)

    def start(self, expect_api=True):
        for attempt in range(5):
            self.api_port, self.metrics_port = free_port(), free_port()
            self._write_settings()
            argv = [VIGIL, "run", "--config-dir", self.conf, "--state-dir", self.state, "--urls",
                    "http://127.0.0.1:%d" % self.api_port, "--shutdown-timeout", "20"]
            argv += ["--no-auth"] if self.no_auth else []
            argv += self.args
            env = dict(os.environ)
            env.pop("VIGIL_API_KEY", None)
            env.update(self.extra_env)
            with open(self.stderr_path, "ab") as err:
                self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=env,
                                          stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.p.poll() is None:
                try:
                    if request(self.metrics_port, "GET", "/healthz", timeout=2).status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            if self.p.poll() is None:
                break
            # Another test may have taken a port between free_port() and bind(): try others.
            if "address already in use" not in self.stderr().lower():
                raise AssertionError("vigil exited with %s at startup:\n%s" %
                                     (self.p.returncode, self.stderr()[-4000:]))
        check(self.p.poll() is None, "vigil did not start:\n" + self.stderr()[-4000:])
        check(request(self.metrics_port, "GET", "/healthz").status == 200, "vigil not healthy")
        return self

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def sanitizer_lines(self):
        return [l for l in self.stderr().splitlines() if any(m in l for m in SANITIZER_MARKS)]

    def get(self, path, key=None, **kw):
        return request(self.api_port, "GET", path, key=key, **kw)

    def req(self, method, path, key=None, **kw):
        return request(self.api_port, method, path, key=key, **kw)

    def stop(self, timeout=60):
        """SIGTERM; returns the exit status (or raises if it does not exit in time)."""
        if self.p is None:
            return 0
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("vigil did not exit within %ss of SIGTERM" % timeout)
        return self.p.returncode

    def stop_and_check(self):
        """Clean shutdown: exit status 0 and no sanitizer report."""
        rc = self.stop()
        bad = self.sanitizer_lines()
        check(not bad, "sanitizer report in vigil's stderr:\n" + "\n".join(bad[:20]))
        eq(rc, 0, "vigil exit status after SIGTERM")

    def kill(self):
        if self.p is not None and self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Env:
    def __init__(self):
        check(VIGIL and os.access(VIGIL, os.X_OK), "VIGIL must name the vigil binary")
        check(TARGET and os.access(TARGET, os.X_OK), "VG_API_TARGET must name vg_api_target")
        self.tmp = tempfile.mkdtemp(prefix="vg-api-")
        self.daemons = []
        self.targets = []

    def daemon(self, settings, **kw):
        d = Daemon(self, settings, **kw)
        self.daemons.append(d)
        return d

    def target(self, **kw):
        t = Target(self, **kw)
        self.targets.append(t)
        return t

    def close(self):
        for d in self.daemons:
            d.kill()
        for t in self.targets:
            t.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main(fn):
    env = None
    rc = 0
    try:
        env = Env()
        fn(env)
        print("PASS")
    except Skip as e:
        print("SKIP: %s" % e)
        rc = 77
    except BaseException:
        traceback.print_exc()
        rc = 1
        for d in env.daemons if env else []:
            print("---- last lines of %s ----" % d.stderr_path, file=sys.stderr)
            print("\n".join(d.stderr().splitlines()[-60:]), file=sys.stderr)
    finally:
        if env:
            env.close()
    sys.exit(rc)


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


def rule(name, pid, trigger, actions, limits=None):
    r = {"Filters": [{"Key": "ProcessId", "Value": str(pid)}], "Trigger": trigger,
         "Actions": actions}
    if limits:
        r["Limits"] = limits
    return {name: r}
