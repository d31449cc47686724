#!/usr/bin/env python3
"""Integration scenarios for `vigil run` (issue 3's acceptance points): the real daemon against
real workload processes, observed through Execute actions that append to a file, the HTTP API
and the SQLite state. One scenario per invocation (VIGIL and VG_WORKLOAD name the binaries):

    daemon_test.py SCENARIO

Every scenario uses its own temp dir and free ports, tags its workloads with a unique token the
rules filter on (CommandLine contains it) so parallel tests never see each other's processes, and
kills everything it started at the end (tests/lib/vigil_test.py). Waits poll for a condition with
a deadline; a check that something did NOT happen first waits for the daemon to have swept
enough times to make it happen. No assertion depends on the machine being fast, only on order
and on lower bounds of time."""

import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import vigil_test as vt
from vigil_test import (REASON_FINISHED_COUNT, REASON_FINISHED_DURATION, REASON_RUNNING,
                        REASON_THROTTLED, Skip, fail, free_port, wait_for)


def yaml_dump(obj, indent=0):
    """Block YAML with JSON-quoted scalars (valid YAML), so tests know every line number."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:")
                out.append(yaml_dump(v, indent + 1))
            else:
                out.append(f"{pad}{k}: {scalar(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict):
                inner = yaml_dump(v, indent + 1).split("\n")
                out.append(f"{pad}- {inner[0].lstrip()}")
                out.extend(inner[1:])
            else:
                out.append(f"{pad}- {scalar(v)}")
    return "\n".join(out)


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (dict, list)):
        return "{}" if isinstance(v, dict) else "[]"
    return json.dumps(v)


class Env(vt.Env):
    """A scenario's configuration directory, workloads and daemon (vt.Env's temp dir)."""

    def __init__(self, name):
        super().__init__(name)
        vt.check(vt.WORKLOAD and os.access(vt.WORKLOAD, os.X_OK),
                 "VG_WORKLOAD must name vg_workload")
        self.dir = self.tmp
        self.tag = "vgtag" + re.sub(r"[^A-Za-z0-9]", "", os.path.basename(self.dir))
        self.conf = os.path.join(self.dir, "conf")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.conf)
        self.fires = os.path.join(self.dir, "fires.log")
        self.vigil = None

    # ---- config ----
    def settings(self, poll="500ms"):
        return {"Discovery": {"PollInterval": poll}, "Server": {"MetricsEnabled": False}}

    def note(self, rule, extra=""):
        """Execute action appending 'RULE PID NSPID WALLTIME' to the fires log."""
        script = (f"echo {rule} $(Process.ProcessId) $(Process.NamespaceProcessId) "
                  f"$(date +%s.%N) >> {self.fires}{extra}")
        return {"Name": "Note", "Type": "Execute",
                "Settings": {"Path": "/bin/sh", "Arguments": "-c " + shlex.quote(script)}}

    def rule(self, name, trigger, limits=None, filters=None, actions=None):
        r = {"Filters": filters or [{"Key": "CommandLine", "Value": self.tag,
                                     "MatchType": "Contains"}],
             "Trigger": trigger,
             "Actions": actions or [self.note(name)]}
        if limits:
            r["Limits"] = limits
        return r

    def write(self, relpath, obj, dirpath=None):
        path = os.path.join(dirpath or self.conf, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp~"
        with open(tmp, "w") as f:
            f.write(obj if isinstance(obj, str) else yaml_dump(obj) + "\n")
        os.rename(tmp, path)  # atomic, like an editor's save
        return path

    # ---- processes ----
    def workload(self, *phases, prefix=()):
        out = open(os.path.join(self.dir, f"workload{len(self.procs)}.out"), "w+")
        p = self.spawn(list(prefix) + [vt.WORKLOAD, self.tag] + list(phases), stdout=out,
                       stderr=subprocess.STDOUT)
        p.outfile = out
        return p

    @staticmethod
    def phases(p):
        """{phase: wall time it began} from a workload's output."""
        p.outfile.flush()
        with open(p.outfile.name) as f:
            res = {}
            for line in f:
                w = line.split()
                if len(w) == 3 and w[0] == "phase":
                    res.setdefault(w[1], float(w[2]))
            return res

    def start_daemon(self):
        """Starts (or restarts, on the same directories) the scenario's daemon."""
        if self.vigil is None:
            self.vigil = self.daemon(conf=self.conf, state=self.state, no_auth=True,
                                     args=["--log-level", "debug"])
        return self.vigil.start()

    @property
    def port(self):
        return self.vigil.api_port

    def get(self, path):
        """JSON (or text) of a GET; an HTTP error as {"_status": code, "_body": text}."""
        if self.vigil.p.poll() is not None:
            fail(f"vigil exited with {self.vigil.p.returncode}")
        try:
            r = self.vigil.get(path)
        except OSError as e:
            fail(f"GET {path}: no answer ({e})")
        if r.status >= 400:
            return {"_status": r.status, "_body": r.body.decode(errors="replace")}
        return r.json() if "json" in (r.header("Content-Type") or "") else r.body.decode()

    def rule_state(self, rule, pid):
        return self.get(f"/collectionrules/{rule}?pid={pid}")

    def fire_lines(self, rule=None):
        try:
            with open(self.fires) as f:
                lines = [l.split() for l in f if l.strip()]
        except FileNotFoundError:
            return []
        return [l for l in lines if rule is None or l[0] == rule]

    def db_fires(self, rule):
        db = sqlite3.connect(f"file:{self.state}/vigil.db?mode=ro", uri=True, timeout=5)
        try:
            return [r[0] for r in db.execute(
                "SELECT fired_ms FROM fires WHERE rule=? ORDER BY fired_ms", (rule,))]
        finally:
            db.close()

    def close(self, keep=False):
        super().close(keep)
        for p in self.procs:
            if getattr(p, "outfile", None):
                p.outfile.close()


# ---------------------------------------------------------------- scenarios

def sc_cpu(env):
    """Sustained CPU fires only after the whole window; a shorter spike does not fire."""
    # CPU% is a share of all online CPUs and this machine is shared by parallel builds and tests
    # (a spinning thread may get a tenth of a core): a low threshold and three spinning threads
    # keep "above the threshold" true while the machine is busy; an idle process reads 0.
    window, threshold = 4, 5
    cfg = env.settings()
    cfg["CollectionRules"] = {"Cpu": env.rule(
        "Cpu", {"Type": "CPUUsage", "Settings": {"GreaterThan": threshold,
                                                 "SlidingWindowDuration": f"{window}s"}},
        limits={"ActionCount": 1})}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    w = env.workload("sleep:1.5", "spin:2.5:3", "sleep:4", "spin:30:3", "hold")
    # The spike must really be seen above the threshold, else "no fire" would prove nothing:
    # the daemon's samples are read until two sweeps after the spike ended.
    peak = 0.0

    def sample():
        nonlocal peak
        for line in env.get("/metrics").splitlines():
            if line.startswith("process_cpu_usage_percent{") and f'pid="{w.pid}"' in line:
                peak = max(peak, float(line.split()[-1]))
        return True
    wait_for("the spike to end", lambda: sample() and "sleep:4" in env.phases(w), 20, 0.2)
    after = env.vigil.sweeps() + 2
    wait_for("two sweeps after the spike", lambda: sample() and env.vigil.sweeps() >= after, 20,
             0.2)
    if peak <= threshold:
        fail(f"the 2.5 s spike peaked at {peak}% in the daemon's samples: the machine is too "
             "busy for this test to mean anything")
    spike_end = env.phases(w)["sleep:4"]
    wait_for("the sustained phase", lambda: "spin:30:3" in env.phases(w), 10)
    sustained = env.phases(w)["spin:30:3"]
    fires = wait_for("the Cpu rule to fire", lambda: env.fire_lines("Cpu"), 35, 0.2)
    st = env.rule_state("Cpu", w.pid)
    fired = float(fires[0][3])
    db = env.db_fires("Cpu")
    print(f"spike peak {peak}%, spike ended {spike_end:.2f}, sustained from {sustained:.2f}, "
          f"fired {fired:.2f} (+{fired - sustained:.2f}s), db {db}")
    if fired < sustained:
        fail(f"fired during or after the short spike, before the sustained phase ({fired})")
    if db[0] / 1000 < sustained + window - 0.05:
        fail(f"fired {db[0] / 1000 - sustained:.2f}s into the sustained phase, before the "
             f"{window}s window had passed")
    if len(fires) != 1 or st["lifetimeOccurrences"] != 1 or st["state"] != "Finished":
        fail(f"expected exactly one fire and Finished, got {len(fires)} fires, {st}")


def sc_memgrowth(env):
    """MemoryGrowth Delta 100MB on a process growing 50 MB steps to 350 MB fires exactly 3
    times."""
    cfg = env.settings()
    cfg["CollectionRules"] = {"Grow": env.rule(
        "Grow", {"Type": "MemoryGrowth", "Settings": {"Metric": "RSS", "Delta": "100MB"}},
        limits={"ActionCount": 10})}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    steps = []
    for i in range(7):
        steps += [f"grow:50", f"sleep:1.{i}"]  # distinct names so phases() keeps each one
    go = os.path.join(env.dir, "grow.go")
    w = env.workload("await:" + go, *steps, "hold")
    wait_for("the rule to watch the workload",
             lambda: env.rule_state("Grow", w.pid).get("state") == "Running", 30)
    env.vigil.wait_sweeps(2)  # its baseline sampled before it grows
    open(go, "w").close()
    wait_for("the workload to reach 350 MB", lambda: "sleep:1.6" in env.phases(w), 40)
    env.vigil.wait_sweeps(6)  # several more samples at 350 MB: a 4th fire would show now
    wait_for("the actions of the runs", lambda: len(env.fire_lines("Grow")) >= 3, 10)
    fires = env.fire_lines("Grow")
    st = env.rule_state("Grow", w.pid)
    db = env.db_fires("Grow")
    print(f"fires {len(fires)}, db {len(db)}, api {st['lifetimeOccurrences']}")
    if len(fires) != 3 or len(db) != 3 or st["lifetimeOccurrences"] != 3:
        fail(f"expected exactly 3 fires (log {len(fires)}, db {len(db)}, api {st})")
    if any(l[1] != str(w.pid) for l in fires):
        fail(f"fires for another pid: {fires}")


def sc_throttle(env):
    """ActionCount 2 in a 5 s window: Throttled with dotnet-monitor's reason, then Running
    again after the window, and fires resume."""
    win = 5
    cfg = env.settings()
    cfg["CollectionRules"] = {"Fd": env.rule(
        "Fd", {"Type": "FileDescriptorCount", "Settings": {"GreaterThan": 20,
                                                            "SlidingWindowDuration": "0s"}},
        limits={"ActionCount": 2, "ActionCountSlidingWindowDuration": f"{win}s"})}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    w = env.workload("sleep:1", "fds:30", "sleep:3", "closefds", "sleep:9", "fds:30", "hold")
    wait_for("two fires", lambda: len(env.db_fires("Fd")) >= 2, 15)
    st = wait_for("Throttled", lambda: (lambda s: s if s.get("state") == "Throttled" else None)(
        env.rule_state("Fd", w.pid)), 5, 0.05)
    if st["stateReason"] != REASON_THROTTLED:
        fail(f"wrong reason: {st['stateReason']!r}")
    if st["slidingWindowOccurrences"] != 2 or st["actionCountLimit"] != 2:
        fail(f"counts: {st}")
    # The trigger keeps holding during throttling: no third fire inside the window.
    wait_for("the fds to close", lambda: "closefds" in env.phases(w), 10)
    first = env.db_fires("Fd")
    if len(first) != 2:
        fail(f"fired while throttled: {first}")
    st = wait_for("Running after the window", lambda: (
        lambda s: s if s.get("state") == "Running" else None)(env.rule_state("Fd", w.pid)),
        win + 5, 0.1)
    if st["stateReason"] != REASON_RUNNING:
        fail(f"wrong reason: {st['stateReason']!r}")
    if time.time() < first[0] / 1000 + win - 0.05:
        fail(f"Running before the window of the first fire had passed: {st}")
    wait_for("fires to resume", lambda: len(env.db_fires("Fd")) >= 4, 20)
    wait_for("Throttled again after the second pair",
             lambda: env.rule_state("Fd", w.pid)["state"] == "Throttled", 5, 0.05)
    env.vigil.wait_sweeps(3)  # the trigger still holds: a fifth fire would show now
    db = env.db_fires("Fd")
    print(f"fires at {[round(x / 1000 - first[0] / 1000, 2) for x in db]}")
    if len(db) != 4 or db[2] < first[0] + win * 1000:
        fail(f"expected 2 more fires after the window, got {db}")


def sc_ruleduration(env):
    """RuleDuration 3 s: the rule finishes with dotnet-monitor's reason and never fires after."""
    cfg = env.settings()
    cfg["CollectionRules"] = {"Short": env.rule(
        "Short", {"Type": "FileDescriptorCount", "Settings": {"GreaterThan": 20,
                                                               "SlidingWindowDuration": "0s"}},
        limits={"RuleDuration": "3s"})}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    w = env.workload("sleep:5", "fds:30", "hold")
    st = wait_for("the rule to watch", lambda: (lambda s: s if s.get("state") else None)(
        env.rule_state("Short", w.pid)), 10)
    if st["state"] != "Running" or st["ruleFinishedCountdown"] is None:
        fail(f"expected Running with a countdown: {st}")
    st = wait_for("Finished", lambda: (lambda s: s if s.get("state") == "Finished" else None)(
        env.rule_state("Short", w.pid)), 10)
    if st["stateReason"] != REASON_FINISHED_DURATION:
        fail(f"wrong reason: {st['stateReason']!r}")
    wait_for("the fds", lambda: "fds:30" in env.phases(w), 10)
    env.vigil.wait_sweeps(4)  # samples above the threshold: a fire would show now
    if env.fire_lines() or env.db_fires("Short"):
        fail("fired after RuleDuration")


def sc_cooldown(env):
    """Cooldown 3 s on a trigger that holds every sample: runs are ≥ 3 s apart and
    cooldownRemaining shows the wait."""
    cfg = env.settings()
    cfg["CollectionRules"] = {"Cool": env.rule(
        "Cool", {"Type": "ThreadCount", "Settings": {"GreaterThan": 2,
                                                      "SlidingWindowDuration": "0s"}},
        limits={"ActionCount": 100, "Cooldown": "3s"})}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    w = env.workload("threads:4", "hold")
    wait_for("the first fire", lambda: env.db_fires("Cool"), 10, 0.05)
    st = env.rule_state("Cool", w.pid)
    if st["cooldownRemaining"] is None:
        fail(f"cooldownRemaining not visible right after a fire: {st}")
    wait_for("three fires", lambda: len(env.db_fires("Cool")) >= 3, 20)
    db = env.db_fires("Cool")
    gaps = [(b - a) / 1000 for a, b in zip(db, db[1:])]
    print(f"gaps {gaps}, cooldownRemaining {st['cooldownRemaining']}")
    if min(gaps) < 3:
        fail(f"a run started before the cooldown elapsed: {gaps}")
    # the third run's action may still be writing its line
    wait_for("the actions of three runs", lambda: len(env.fire_lines("Cool")) >= 3, 10)


def sc_restart(env):
    """kill -9 and restart: counts and limits continue for a process that still runs."""
    cfg = env.settings()
    every = {"Type": "ThreadCount", "Settings": {"GreaterThan": 2, "SlidingWindowDuration": "0s"}}
    cfg["CollectionRules"] = {
        "Count2": env.rule("Count2", every, limits={"ActionCount": 2}),
        "Window3": env.rule("Window3", every, limits={
            "ActionCount": 3, "ActionCountSlidingWindowDuration": "1h"}),
        "Dur": env.rule("Dur", {"Type": "ThreadCount", "Settings": {"GreaterThan": 1000}},
                        limits={"RuleDuration": "2s"}),
        "Slow4": env.rule("Slow4", every, limits={"ActionCount": 4, "Cooldown": "2s"}),
    }
    env.write("rules.yaml", cfg)
    w = env.workload("threads:4", "hold")
    env.start_daemon()

    def state(r):
        return env.rule_state(r, w.pid).get("state")
    wait_for("Count2 Finished", lambda: state("Count2") == "Finished", 15)
    wait_for("Window3 Throttled", lambda: state("Window3") == "Throttled", 15)
    wait_for("Dur Finished", lambda: state("Dur") == "Finished", 15)
    before = len(env.db_fires("Slow4"))
    if before >= 4:
        fail("Slow4 finished before the kill; the test would prove nothing")
    env.vigil.kill(signal.SIGKILL)
    env.start_daemon()
    wait_for("Slow4 Finished", lambda: state("Slow4") == "Finished", 20)
    wait_for("the actions of Slow4's runs", lambda: len(env.fire_lines("Slow4")) >= 4, 10)
    env.vigil.wait_sweeps(3)  # the triggers still hold: a fire past a limit would show now
    sts = {r: env.rule_state(r, w.pid) for r in ("Count2", "Window3", "Dur", "Slow4")}
    log = {r: len(env.fire_lines(r)) for r in sts}
    print(f"Slow4 had {before} fires before the kill; after: log {log}")
    expect = {"Count2": ("Finished", REASON_FINISHED_COUNT, 2),
              "Window3": ("Throttled", REASON_THROTTLED, 3),
              "Dur": ("Finished", REASON_FINISHED_DURATION, 0),
              "Slow4": ("Finished", REASON_FINISHED_COUNT, 4)}
    for r, (state_, reason, n) in expect.items():
        s = sts[r]
        if (s["state"], s["stateReason"], s["lifetimeOccurrences"]) != (state_, reason, n):
            fail(f"{r} after restart: {s}, expected {state_} / {n} fires")
        if log[r] != n or len(env.db_fires(r)) != n:
            fail(f"{r}: {log[r]} runs logged, {len(env.db_fires(r))} in the db, expected {n}")
    # `vigil status` reads /instances through libcurl, which vigil loads on first use.
    out = subprocess.run([vt.VIGIL, "status", "--url", f"http://127.0.0.1:{env.port}"],
                         capture_output=True, text=True, timeout=20)
    rows = [l.split() for l in out.stdout.splitlines()]
    if out.returncode != 0 or ["Count2", str(w.pid), "vg_workload", "Finished", "2"] not in [
            r[:5] for r in rows]:
        fail(f"vigil status: rc {out.returncode}\n{out.stdout}{out.stderr}")


def sc_reload(env):
    """Live reload: an unchanged rule keeps its counts when another file adds a rule; a changed
    rule starts fresh; a removed rule stops."""
    every = {"Type": "ThreadCount", "Settings": {"GreaterThan": 2, "SlidingWindowDuration": "0s"}}
    a = env.settings()
    a["CollectionRules"] = {"Keep": env.rule("Keep", every, limits={"ActionCount": 2}),
                            "Change": env.rule("Change", every, limits={"ActionCount": 2})}
    env.write("a.yaml", a)
    env.write("b.yaml", {"CollectionRules": {"Gone": env.rule(
        "Gone", every, limits={"ActionCount": 100, "Cooldown": "1s"})}})
    w = env.workload("threads:4", "hold")
    env.start_daemon()

    def st(r):
        return env.rule_state(r, w.pid)
    wait_for("Keep and Change Finished", lambda: st("Keep").get("state") == "Finished" and
             st("Change").get("state") == "Finished", 15)
    wait_for("Gone to fire", lambda: env.fire_lines("Gone"), 10)

    env.write("c.yaml", {"CollectionRules": {"New": env.rule("New", every,
                                                             limits={"ActionCount": 1})}})
    wait_for("New to fire", lambda: env.fire_lines("New"), 10)
    s = st("Keep")
    if (s["state"], s["lifetimeOccurrences"]) != ("Finished", 2) or len(
            env.fire_lines("Keep")) != 2:
        fail(f"unchanged rule lost its counts on reload: {s}")

    a["CollectionRules"]["Change"]["Limits"]["ActionCount"] = 3
    env.write("a.yaml", a)
    os.unlink(os.path.join(env.conf, "b.yaml"))
    wait_for("Gone removed", lambda: st("Gone").get("_status") == 400, 10)
    wait_for("Change fresh", lambda: st("Change").get("state") == "Finished" and
             st("Change").get("lifetimeOccurrences") == 3, 15)
    gone = len(env.db_fires("Gone"))
    env.vigil.wait_sweeps(5)  # the triggers still hold: a fire past a limit would show now
    wait_for("the actions of Change's runs", lambda: len(env.fire_lines("Change")) >= 5, 10)
    counts = {r: len(env.fire_lines(r)) for r in ("Keep", "Change", "Gone", "New")}
    print(f"runs per rule: {counts}")
    if len(env.db_fires("Gone")) != gone:
        fail("the removed rule still fires")
    if counts["Change"] != 5 or counts["Keep"] != 2 or counts["New"] != 1:
        fail(f"unexpected run counts {counts}")
    if st("Keep")["lifetimeOccurrences"] != 2:
        fail("Keep lost its counts on the second reload")


def sc_configmap(env):
    """A Kubernetes ConfigMap volume's atomic ..data swap is picked up."""
    every = {"Type": "ThreadCount", "Settings": {"GreaterThan": 2, "SlidingWindowDuration": "0s"}}
    old = env.settings()
    old["CollectionRules"] = {"Old": env.rule("Old", every, limits={"ActionCount": 1})}
    env.write("..2026_a/rules.yaml", old)
    os.symlink("..2026_a", os.path.join(env.conf, "..data"))
    os.symlink("..data/rules.yaml", os.path.join(env.conf, "rules.yaml"))
    w = env.workload("threads:4", "hold")
    env.start_daemon()
    wait_for("Old to fire", lambda: env.fire_lines("Old"), 10)
    new = env.settings()
    new["CollectionRules"] = {"New": env.rule("New", every, limits={"ActionCount": 1})}
    env.write("..2026_b/rules.yaml", new)
    os.symlink("..2026_b", os.path.join(env.conf, "..data_tmp"))
    subprocess.check_call(["mv", "-T", os.path.join(env.conf, "..data_tmp"),
                           os.path.join(env.conf, "..data")])
    shutil.rmtree(os.path.join(env.conf, "..2026_a"))
    wait_for("New to fire", lambda: env.fire_lines("New"), 10)
    s = env.rule_state("Old", w.pid)
    if s.get("_status") != 400:  # dotnet-monitor: an unknown rule is a 400
        fail(f"Old still configured after the swap: {s}")
    info = env.get("/info")
    if info.get("configurationErrors"):
        fail(f"configuration errors after the swap: {info['configurationErrors']}")


def sc_invalid(env):
    """A rule with an error is refused alone (its diagnostic in /collectionrules and the log) and
    every other rule runs; an error outside the rules rejects the reload and the old
    configuration keeps running; a file that no longer parses keeps its last good content."""
    every = {"Type": "ThreadCount", "Settings": {"GreaterThan": 2, "SlidingWindowDuration": "0s"}}
    cfg = env.settings()
    cfg["CollectionRules"] = {"Old": env.rule("Old", every, limits={
        "ActionCount": 100, "Cooldown": "1s"})}
    env.write("rules.yaml", cfg)
    w = env.workload("threads:4", "hold")
    env.start_daemon()
    wait_for("Old to fire", lambda: env.fire_lines("Old"), 10)

    # 1. a rule with an error: refused alone, beside a new good rule that runs
    bad = env.rule("Bad", {"Type": "CPUUsage", "Settings": {"GreaterThan": "eighty"}})
    good = env.rule("Good", every, limits={"ActionCount": 1})
    text = yaml_dump({"CollectionRules": {"Bad": bad, "Good": good}}) + "\n"
    line = next(i for i, l in enumerate(text.split("\n"), 1) if "eighty" in l)
    col = text.split("\n")[line - 1].index('"eighty"') + 1
    env.write("bad.yaml", text)
    want = f"bad.yaml:{line}:{col}"
    wait_for("Good to fire", lambda: env.fire_lines("Good"), 10)
    s = env.get("/collectionrules/Bad?pid=%d" % w.pid)
    print(f"/collectionrules/Bad: {s}")
    if s.get("state") != "Finished" or want not in (s.get("configurationErrors") or "") or \
            "GreaterThan" not in s.get("configurationErrors", ""):
        fail(f"the refused rule does not show its diagnostic ({want}): {s}")
    listing = env.get("/collectionrules?pid=%d" % w.pid)
    if "Bad" not in listing or listing["Bad"]["state"] != "Finished" or "Old" not in listing:
        fail(f"/collectionrules does not list the refused rule beside the others: {listing}")
    if env.get("/info").get("configurationErrors"):
        fail("a refused rule is not a rejected configuration")
    wait_for("the refusal in the log", lambda: "CollectionRules.Bad refused" in env.vigil.log_tail(400),
             10)
    n = len(env.fire_lines("Old"))
    wait_for("Old to keep firing", lambda: len(env.fire_lines("Old")) >= n + 2, 10)

    # 2. an error outside the rules: the reload is rejected, the running configuration stays
    env.write("egress.yaml", {"Egress": {"FileSystem": {"out": {"IntermediateDirectoryPath":
                                                                "/tmp"}}}})
    info = wait_for("configurationErrors in /info",
                    lambda: (lambda i: i if i.get("configurationErrors") else None)(
                        env.get("/info")), 10)
    errs = info["configurationErrors"]
    print(f"configurationErrors: {errs}")
    if "egress.yaml" not in errs or "DirectoryPath" not in errs:
        fail(f"expected egress.yaml and DirectoryPath in {errs!r}")
    if "configurationErrors" not in env.rule_state("Old", w.pid):
        fail("/collectionrules/Old does not show the rejected reload")
    os.unlink(os.path.join(env.conf, "egress.yaml"))
    wait_for("the reload to be accepted again",
             lambda: not env.get("/info").get("configurationErrors"), 10)

    # 3. a file that no longer parses keeps its last good content
    with open(os.path.join(env.conf, "rules.yaml"), "a") as f:
        f.write("CollectionRules: [unclosed\n")
    wait_for("the parse error in the log", lambda: "no longer parses" in env.vigil.log_tail(400), 10)
    if env.get("/info").get("configurationErrors"):
        fail("an unparseable file rejected the configuration instead of keeping its content")
    n = len(env.fire_lines("Old"))
    wait_for("Old to keep firing from the last good content",
             lambda: len(env.fire_lines("Old")) >= n + 2, 10)


def child_of(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        kids = f.read().split()
    return int(kids[0]) if kids else None


def sc_pidns(env):
    """A process in another PID namespace is discovered and matched; tokens expand to the host
    pid and the namespace pid."""
    if not shutil.which("unshare"):
        raise Skip("unshare(1) not found")
    probe = subprocess.run(["unshare", "-p", "-f", "--mount-proc", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        if "Operation not permitted" in probe.stderr:
            raise Skip(f"unshare -p is not permitted here: {probe.stderr.strip()}")
        fail(f"unshare failed: {probe.stderr}")
    cfg = env.settings()
    cfg["CollectionRules"] = {"Ns": env.rule(
        "Ns", {"Type": "ThreadCount", "Settings": {"GreaterThan": 2,
                                                    "SlidingWindowDuration": "0s"}},
        limits={"ActionCount": 1},
        filters=[{"Key": "ProcessName", "Value": "vg_workload"},
                 {"Key": "CommandLine", "Value": env.tag, "MatchType": "Contains"}])}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    u = env.workload("threads:4", "hold", prefix=["unshare", "-p", "-f", "--mount-proc"])
    host = wait_for("the namespaced child", lambda: child_of(u.pid), 10)
    fires = wait_for("the rule to fire", lambda: env.fire_lines("Ns"), 15)
    p = env.get(f"/process?pid={host}")
    print(f"unshare {u.pid}, workload host pid {host}: {p.get('namespacePid')}; fire {fires}")
    if p.get("namespacePid") != 1:
        fail(f"namespacePid is not 1: {p}")
    if fires[0][1:3] != [str(host), "1"] or len(fires) != 1:
        fail(f"expected one fire with host pid {host} and namespace pid 1, got {fires}")


def sc_signals(env):
    """SIGHUP reloads (with a change the directory watch cannot see); SIGTERM waits for a
    running Execute action and exits 0."""
    # rules.yaml is a symlink to a file outside the watched dir: editing it raises no event.
    outside = os.path.join(env.dir, "outside")
    os.makedirs(outside)
    cfg = env.settings()
    cfg["CollectionRules"] = {}
    real = env.write("rules.yaml", cfg, dirpath=outside)
    os.symlink(real, os.path.join(env.conf, "rules.yaml"))
    w = env.workload("threads:4", "hold")
    env.start_daemon()

    def reloads():
        m = env.get("/metrics")
        for l in m.splitlines():
            if l.startswith("vigil_config_reloads_succeeded_total "):
                return int(float(l.split()[1]))
        fail("no reload counter in /metrics")
    cfg["CollectionRules"] = {"Slow": env.rule(
        "Slow", {"Type": "ThreadCount", "Settings": {"GreaterThan": 2,
                                                      "SlidingWindowDuration": "0s"}},
        limits={"ActionCount": 1},
        actions=[env.note("Slow", "; sleep 3; echo end >> " + env.fires)])}
    env.write("rules.yaml", cfg, dirpath=outside)
    # three sweeps take longer than the watch's 300 ms debounce: a reload would show now
    env.vigil.wait_sweeps(3)
    if reloads() != 0:
        fail("reloaded without SIGHUP: the test cannot tell SIGHUP did it")
    env.vigil.send_signal(signal.SIGHUP)
    wait_for("the SIGHUP reload", lambda: reloads() == 1, 10)
    wait_for("Slow to start", lambda: env.fire_lines("Slow"), 10, 0.05)
    t = time.time()
    env.vigil.send_signal(signal.SIGTERM)
    rc = env.vigil.p.wait(20)
    took = time.time() - t
    print(f"exit {rc} after {took:.2f}s; runs {env.fire_lines()}")
    if rc != 0:
        fail(f"exit status {rc}")
    if ["end"] not in env.fire_lines():
        fail("the running action was cut short")
    if took < 1.5:
        fail(f"exited {took:.2f}s after SIGTERM: did not wait for the 3 s action")


def sc_actions(env):
    """Action lists: outputs flow into later actions, actions start without waiting for the one
    before (dotnet-monitor's WaitForCompletion default, false), a failing action the next one
    waits for stops the rest of the run and is recorded (SQLite, lastError), a Timeout kills a
    hung action, and runs go on."""
    out = os.path.join(env.dir, "actions.log")
    sh = lambda script: {"Path": "/bin/sh", "Arguments": "-c " + shlex.quote(script)}
    cfg = env.settings()
    cfg["CollectionRules"] = {
        "Chain": env.rule("Chain", {"Type": "Startup"}, actions=[
            {"Name": "First", "Type": "Execute", "Settings": {**sh("exit 3"),
                                                              "IgnoreExitCode": True}},
            {"Name": "Second", "Type": "Execute",
             "Settings": sh(f"echo second saw $(Actions.First.ExitCode) >> {out}")}]),
        "Broken": env.rule("Broken", {"Type": "Startup"}, actions=[
            {"Name": "Fails", "Type": "Execute", "Settings": sh("exit 7"),
             "WaitForCompletion": True},
            {"Name": "Never", "Type": "Execute", "Settings": sh(f"echo never >> {out}")}]),
        "Hung": env.rule("Hung", {"Type": "Startup"}, actions=[
            {"Name": "Sleeper", "Type": "Execute", "Settings": {**sh("sleep 30"),
                                                                "Timeout": "1s"}}]),
        "Parallel": env.rule("Parallel", {"Type": "Startup"}, actions=[
            {"Name": "Slow", "Type": "Execute",
             "Settings": sh(f"sleep 2; echo slow done >> {out}")},
            {"Name": "Quick", "Type": "Execute", "Settings": sh(f"echo quick >> {out}")}]),
    }
    env.write("rules.yaml", cfg)
    env.start_daemon()
    w = env.workload("hold")

    def lines():
        try:
            with open(out) as f:
                return f.read().split("\n")
        except FileNotFoundError:
            return []

    wait_for("the chained action", lambda: "second saw 3" in lines(), 15)
    wait_for("both parallel actions", lambda: "slow done" in lines() and "quick" in lines(), 15)
    if lines().index("quick") > lines().index("slow done"):
        fail("Quick waited for Slow although neither sets WaitForCompletion")

    def finished(rule):
        st = env.get(f"/collectionrules/{rule}?pid={w.pid}")
        return st if st.get("lastError") else None

    broken = wait_for("Broken's failure", lambda: finished("Broken"), 15)
    hung = wait_for("Hung's timeout", lambda: finished("Hung"), 15)
    print(f"Broken: {broken['lastError']!r}; Hung: {hung['lastError']!r}")
    if "exited with code 7" not in broken["lastError"] or "Fails" not in broken["lastError"]:
        fail(f"the failure is not explained: {broken}")
    if "timed out" not in hung["lastError"]:
        fail(f"the timeout is not explained: {hung}")

    def broken_run_ended():
        db = sqlite3.connect(f"file:{env.state}/vigil.db?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT status FROM fires WHERE rule='Broken' AND "
                              "status != 'Running'").fetchall()
        finally:
            db.close()
    # a run is recorded as ended after its last action: had Never run, its line is written
    wait_for("Broken's run to end", broken_run_ended, 15)
    if any("never" in l for l in lines()):
        fail("an action after a failed one ran")
    db = sqlite3.connect(f"file:{env.state}/vigil.db?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT f.rule, f.status, a.name, a.status, a.outputs, a.error "
                          "FROM actions a JOIN fires f ON f.id = a.fire_id "
                          "ORDER BY f.rule, a.idx").fetchall()
    finally:
        db.close()
    print(rows)
    by = {(r[0], r[2]): r for r in rows}
    if by.get(("Broken", "Fails"), (0, 0, 0, 0))[3] != "Failed" or ("Broken", "Never") in by:
        fail(f"Broken's actions were not recorded as failed and stopped: {rows}")
    if by[("Broken", "Fails")][1] != "Failed":
        fail(f"Broken's run is not recorded as failed: {rows}")
    if by.get(("Chain", "First"), (0,) * 6)[4] != '{"ExitCode":"3"}' or \
            by.get(("Chain", "Second"), (0,) * 4)[3] != "Succeeded":
        fail(f"Chain's outputs were not recorded: {rows}")
    if by.get(("Hung", "Sleeper"), (0,) * 6)[5] is None or \
            by[("Hung", "Sleeper")][4] != '{"ExitCode":"137"}':
        fail(f"Hung's timeout (SIGKILL: exit code 137) was not recorded: {rows}")


def sc_dump(env):
    """CollectDump from a rule: the core lands in the filesystem egress, its EgressPath flows into
    the next action, /operations lists it, and gdb opens it with every thread."""
    if not shutil.which("gdb"):
        raise Skip("gdb not found (it reads the core)")
    arts = os.path.join(env.dir, "artifacts")
    out = os.path.join(env.dir, "paths.log")
    cfg = env.settings()
    cfg["Egress"] = {"FileSystem": {"fs": {"DirectoryPath": arts}}}
    # fires once the workload's threads exist, so the core must hold all four
    trigger = {"Type": "ThreadCount", "Settings": {"GreaterThan": 3, "SlidingWindowDuration": "0s"}}
    cfg["CollectionRules"] = {"DumpIt": env.rule("DumpIt", trigger, limits={"ActionCount": 1},
                                                 actions=[
        {"Name": "Dump", "Type": "CollectDump", "Settings": {"Type": "Mini", "Egress": "fs"}},
        {"Type": "Execute", "Settings": {
            "Path": "/bin/sh",
            "Arguments": "-c " + shlex.quote(f"echo $(Actions.Dump.EgressPath) >> {out}")}}])}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    w = env.workload("threads:3", "hold")

    def paths():
        try:
            with open(out) as f:
                return [l.strip() for l in f if l.strip()]
        except FileNotFoundError:
            return []

    path = wait_for("the dump's EgressPath", paths, 30)[0]
    if not path.startswith(arts + "/") or not os.path.isfile(path):
        fail(f"EgressPath {path!r} is not a file in {arts}")
    if oct(os.stat(path).st_mode & 0o777) != "0o600":
        fail(f"the core's mode is {oct(os.stat(path).st_mode)}")
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            fail("the artifact is not an ELF core")
    ops = [env.get("/operations/" + o["operationId"]) for o in env.get("/operations")
           if o.get("collectionRule") == "DumpIt"]
    if not any(o["status"] == "Succeeded" and o["resourceLocation"] == path for o in ops):
        fail(f"/operations does not list the rule's dump: {ops}")
    g = subprocess.run(["gdb", "-batch", "-nx", "-ex", "info threads", vt.WORKLOAD, path],
                       capture_output=True, text=True, timeout=60)
    nthreads = sum(1 for l in g.stdout.splitlines() if re.match(r"^\*?\s+\d+\s+Thread ", l))
    print(g.stdout[-600:])
    if nthreads < 4:
        fail(f"gdb sees {nthreads} threads in the core, expected 4:\n{g.stdout}{g.stderr}")
    if w.poll() is not None:
        fail("the dumped process did not survive the dump")


def sc_egress_down(env):
    """Egress down: a rule's dump cannot be uploaded; the action fails after its retries, the
    artifact stays spooled and pending; its operation stays Running (never Failed: a caller would
    dump again) and shows the pending upload; /metrics counts it."""
    cfg = env.settings()
    cfg["Egress"] = {"S3Storage": {"down": {
        "Endpoint": f"http://127.0.0.1:{free_port()}", "BucketName": "b", "RegionName": "us-east-1",
        "AccessKeyId": "AKIDEXAMPLE", "SecretAccessKey": "secret", "ForcePathStyle": True,
        "MaxRetries": 1, "RetryMaxDelay": "1s"}}}
    cfg["CollectionRules"] = {"DumpDown": env.rule("DumpDown", {"Type": "Startup"}, actions=[
        {"Type": "CollectDump", "Settings": {"Type": "Mini", "Egress": "down"}}])}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    w = env.workload("hold")

    def ops():
        o = env.get("/operations")
        rule_ops = [x for x in o if x.get("collectionRule") == "DumpDown" and
                    x.get("upload", {}).get("state") == "pending"]
        return (rule_ops, o) if rule_ops else None

    rule_ops, all_ops = wait_for("the dump's pending upload", ops, 60)
    print(all_ops)
    # the list is dotnet-monitor's OperationSummary: the reason is in the operation's status
    op = env.get("/operations/" + rule_ops[0]["operationId"])
    if op["status"] != "Running" or not (op["error"] or {}).get("message"):
        fail(f"the rule's dump operation should wait for its upload, with the reason: {op}")
    u = op["upload"]
    if op["egressProviderName"] != "down" or not u["size"]:
        fail(f"the pending upload is not shown as such: {op}")
    if any(x["operationId"].startswith("upload-") for x in all_ops):
        fail(f"the upload is listed twice (as its operation and on its own): {all_ops}")
    metrics = env.get("/metrics")
    vals = {l.split()[0]: float(l.split()[1]) for l in metrics.splitlines()
            if l.startswith("vigil_") and " " in l}
    if vals.get("vigil_uploads_failed_total", 0) < 1 or vals.get("vigil_spool_bytes", 0) <= 0:
        fail(f"/metrics does not show the failed upload and the spooled bytes: {vals}")
    st = env.get(f"/collectionrules/DumpDown?pid={w.pid}")
    if not st.get("lastError"):
        fail(f"the rule does not show the failure: {st}")


SCENARIOS = {
    "cpu": sc_cpu, "memgrowth": sc_memgrowth, "throttle": sc_throttle,
    "ruleduration": sc_ruleduration, "cooldown": sc_cooldown, "restart": sc_restart,
    "reload": sc_reload, "configmap": sc_configmap, "invalid": sc_invalid, "pidns": sc_pidns,
    "signals": sc_signals, "actions": sc_actions,
    "dump": sc_dump, "egress_down": sc_egress_down,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print("usage: daemon_test.py SCENARIO (%s)" % " ".join(sorted(SCENARIOS)), file=sys.stderr)
        return 2
    vt.run(SCENARIOS[sys.argv[1]], name=sys.argv[1], env_class=Env)


if __name__ == "__main__":
    sys.exit(main())
