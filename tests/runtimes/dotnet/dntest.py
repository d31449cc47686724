"""What the .NET integration tests share (test_dotnet_ipc.py, test_dotnet_daemon.py): assertions,
polling with a deadline, processes started in their own process group (killed by group, so
nothing another test started is touched), the runtime's DAC, and the scenario runner (exit 77 =
skipped)."""

import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time

SKIP = 77


class Skip(Exception):
    pass


def fail(msg):
    raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        fail(f"{what}: expected {want!r}, got {got!r}")


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = cond()
        if last:
            return last
        time.sleep(0.05)
    fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Proc:
    """A process we started, in its own process group; output goes to OUT."""

    def __init__(self, procs, out, argv, env=None):
        self.out = out
        self.f = open(self.out, "w")
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen(argv, stdout=self.f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=e, start_new_session=True)
        procs.append(self)

    def text(self):
        with open(self.out, errors="replace") as f:
            return f.read()

    def wait_line(self, regex, timeout=30, what=None):
        r = re.compile(regex, re.M)

        def look():
            m = r.search(self.text())
            if m or self.p.poll() is None:
                return m
            m = r.search(self.text())
            if not m:
                fail(f"{what or regex}: process exited ({self.p.returncode}):\n{self.text()}")
            return m
        return wait_for(look, timeout, f"{what or regex} in:\n{self.text()[-3000:]}")

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.f.close()


def find_dac():
    """libmscordaccore.so of the newest installed runtime, or None."""
    dacs = glob.glob("/usr/share/dotnet/shared/Microsoft.NETCore.App/*/libmscordaccore.so")
    if shutil.which("dotnet"):
        root = os.path.dirname(os.path.realpath(shutil.which("dotnet")))
        dacs += glob.glob(f"{root}/shared/Microsoft.NETCore.App/*/libmscordaccore.so")
    return sorted(set(dacs))[-1] if dacs else None


def run(scenarios, options, make_ctx, report):
    """Parses SCENARIO and the --options, builds the context, runs the scenario.
    report(ctx) prints what helps after a failure; ctx.cleanup() always runs."""
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(scenarios))
    for o in options:
        ap.add_argument(o, required=True)
    args = ap.parse_args()
    try:
        ctx = make_ctx(args)
    except Skip as e:
        print(f"SKIP: {e}")
        return SKIP
    try:
        scenarios[args.scenario](ctx)
    except Skip as e:
        print(f"SKIP: {e}")
        return SKIP
    except AssertionError as e:
        print(f"FAIL: {e}")
        report(ctx)
        return 1
    finally:
        ctx.cleanup()
    print(f"{args.scenario}: passed")
    return 0
