#!/usr/bin/env python3
"""Rule state transitions as /collectionrules/{name} shows them, with dotnet-monitor's
stateReason texts: Running -> ActionExecuting (an Execute action `sleep 2`) -> Running,
Throttled (ActionCount within a sliding window, and Cooldown) or Finished (ActionCount, Startup).

The targets start with one thread; the rules fire on ThreadCount > 1, so the test decides when
they fire by telling a target to start threads, and when the trigger stops holding by joining
them."""

import vigil_test as h
from vigil_test import check, eq

MORE_THREADS = {"Type": "ThreadCount",
                "Settings": {"GreaterThan": 1, "SlidingWindowDuration": "00:00:00"}}
SLEEP2 = [{"Name": "Nap", "Type": "Execute", "Settings": {"Path": "/bin/sleep",
                                                           "Arguments": "2"}}]


def run(env):
    key, digest = h.generate_key()
    a = env.target(threads=0, name="vgrules_a")
    b = env.target(threads=0, name="vgrules_b")
    rules = {}
    rules.update(h.rule("Windowed", a.pid, MORE_THREADS, SLEEP2,
                        {"ActionCount": 2, "ActionCountSlidingWindowDuration": "01:00:00"}))
    rules.update(h.rule("CountOnce", a.pid, MORE_THREADS, SLEEP2, {"ActionCount": 1}))
    rules.update(h.rule("Cooled", a.pid, MORE_THREADS, SLEEP2,
                        {"ActionCount": 10, "Cooldown": "1h"}))
    rules.update(h.rule("Back", b.pid, MORE_THREADS, SLEEP2, {"ActionCount": 10}))
    rules.update(h.rule("Boot", b.pid, {"Type": "Startup"},
                        [{"Type": "Execute", "Settings": {"Path": "/bin/true"}}]))
    d = env.daemon({"Server": {"Auth": {"ApiKeyHash": digest}},
                    "Discovery": {"PollInterval": "100ms"},
                    "CollectionRules": rules}).start()

    def rule(name, pid):
        r = d.get("/collectionrules/%s?pid=%d" % (name, pid), key=key)
        eq(r.status, 200, "GET /collectionrules/%s: %r" % (name, r))
        return r.json()

    def state(name, pid):
        j = rule(name, pid)
        return j["state"], j["stateReason"]

    h.wait_for("discovery",
               lambda: d.get("/collectionrules?pid=%d" % b.pid, key=key).status == 200 and
               d.get("/collectionrules?pid=%d" % a.pid, key=key).status == 200, 20)

    # --- before anything fires
    summary = d.get("/collectionrules?pid=%d" % a.pid, key=key).json()
    eq(summary, {n: {"state": "Running", "stateReason": h.REASON_RUNNING}
                 for n in ("Windowed", "CountOnce", "Cooled")}, "/collectionrules before firing")
    for n in ("Windowed", "CountOnce", "Cooled"):
        j = rule(n, a.pid)
        eq((j["lifetimeOccurrences"], j["lastFired"]), (0, None), n + " has not fired")
    j = rule("Windowed", a.pid)
    eq((j["actionCountLimit"], j["actionCountSlidingWindowDurationLimit"]), (2, "01:00:00"),
       "Windowed limits")
    # Startup fires once on discovery, runs /bin/true and finishes
    h.wait_for("Boot to finish",
               lambda: state("Boot", b.pid) == ("Finished", h.REASON_FINISHED_STARTUP), 20)
    j = rule("Boot", b.pid)
    eq((j["lifetimeOccurrences"], j["lastError"]), (1, None), "Boot ran once without error")
    check(h.ISO_RE.match(j["lastFired"]), "Boot lastFired: %r" % j["lastFired"])

    # --- fire: every ThreadCount rule goes ActionExecuting while `sleep 2` runs
    # the states just before the targets grow threads are the first ones seen
    seen = {n: [state(n, b.pid if n == "Back" else a.pid)]
            for n in ("Windowed", "CountOnce", "Cooled", "Back")}
    for n in seen:
        eq(seen[n], [("Running", h.REASON_RUNNING)], n + " before firing")
    eq(a.cmd("spawn 2"), 3, "target a threads")
    eq(b.cmd("spawn 2"), 3, "target b threads")

    def sample():
        for n in seen:
            st = state(n, b.pid if n == "Back" else a.pid)
            if not seen[n] or seen[n][-1] != st:
                seen[n].append(st)
        return all(seen[n][-1][0] == "ActionExecuting" for n in seen)

    try:
        h.wait_for("every rule to execute its actions", sample, 15, interval=0.05)
    finally:
        print("observed:", seen)
    for n in seen:
        eq(seen[n][-1], ("ActionExecuting", h.REASON_EXECUTING), n + " while executing")
        j = rule(n, b.pid if n == "Back" else a.pid)
        eq(j["lifetimeOccurrences"], 1, n + " lifetimeOccurrences while executing")
        check(h.ISO_RE.match(j["lastFired"] or ""), n + " lastFired: %r" % j["lastFired"])

    # the trigger of Back stops holding before its action ends: it goes back to Running
    eq(b.cmd("join"), 1, "target b threads after join")

    def settled():
        sample()
        return (seen["Back"][-1][0] == "Running" and seen["CountOnce"][-1][0] == "Finished" and
                seen["Cooled"][-1][0] == "Throttled" and seen["Windowed"][-1][0] == "Throttled")

    h.wait_for("the rules to settle", settled, 30, interval=0.05)
    print("observed transitions:", seen)

    # normally one run; a second one only if this test was slower than `sleep 2` to join
    back_runs = seen["Back"].count(("ActionExecuting", h.REASON_EXECUTING))
    eq(seen["Back"], [("Running", h.REASON_RUNNING), ("ActionExecuting", h.REASON_EXECUTING)] *
       back_runs + [("Running", h.REASON_RUNNING)], "Back transitions")
    j = rule("Back", b.pid)
    eq((j["lifetimeOccurrences"], j["lastError"]), (back_runs, None), "Back after its run")

    eq(seen["CountOnce"], [("Running", h.REASON_RUNNING),
                           ("ActionExecuting", h.REASON_EXECUTING),
                           ("Finished", h.REASON_FINISHED_COUNT)], "CountOnce transitions")
    eq(rule("CountOnce", a.pid)["lifetimeOccurrences"], 1, "CountOnce ran once")

    eq(seen["Cooled"], [("Running", h.REASON_RUNNING), ("ActionExecuting", h.REASON_EXECUTING),
                        ("Throttled", h.REASON_COOLDOWN)], "Cooled transitions")
    j = rule("Cooled", a.pid)
    check(h.TIMESPAN_RE.match(j["cooldownRemaining"] or "") and
          j["cooldownRemaining"].startswith("00:5"), "cooldownRemaining: %r" % j)

    # Windowed ran twice (Running may flash by between its runs), then the window throttles it
    w = [s for s in seen["Windowed"]]
    eq(w[0], ("Running", h.REASON_RUNNING), "Windowed starts Running")
    eq(w[-1], ("Throttled", h.REASON_THROTTLED), "Windowed ends Throttled")
    check(all(s in (("Running", h.REASON_RUNNING), ("ActionExecuting", h.REASON_EXECUTING))
              for s in w[1:-1]), "Windowed in between: %r" % w)
    j = rule("Windowed", a.pid)
    eq((j["lifetimeOccurrences"], j["slidingWindowOccurrences"]), (2, 2), "Windowed runs")
    check(h.TIMESPAN_RE.match(j["slidingWindowDurationCountdown"] or "") and
          j["slidingWindowDurationCountdown"].startswith("00:5"),
          "slidingWindowDurationCountdown: %r" % j)

    # sweeps later nothing changed: throttled and finished rules stay so while threads remain
    d.wait_sweeps(5)
    eq(state("Windowed", a.pid)[0], "Throttled", "Windowed stays throttled")
    eq(state("CountOnce", a.pid)[0], "Finished", "CountOnce stays finished")
    eq(rule("Windowed", a.pid)["lifetimeOccurrences"], 2, "no third run of Windowed")

    # /instances and the fired counter agree with the per-rule numbers
    inst = d.get("/instances", key=key).json()["instances"]
    eq(sorted((i["rule"], i["pid"], i["state"]) for i in inst),
       sorted([("Windowed", a.pid, "Throttled"), ("CountOnce", a.pid, "Finished"),
               ("Cooled", a.pid, "Throttled"), ("Back", b.pid, "Running"),
               ("Boot", b.pid, "Finished")]), "/instances")
    fired = sum(i["lifetimeOccurrences"] for i in inst)
    eq(fired, 2 + 1 + 1 + back_runs + 1, "runs in total")
    metrics = h.request(d.metrics_port, "GET", "/metrics").body.decode()
    check("\nvigil_rules_fired_total %d\n" % fired in metrics, "vigil_rules_fired_total")
    check("\nvigil_actions_succeeded_total %d\n" % fired in metrics,
          "vigil_actions_succeeded_total")
    d.stop_and_check()


if __name__ == "__main__":
    h.run(run)
