#!/usr/bin/env python3
"""Every API route against a real `vigil run`: status codes, headers, JSON shapes and types,
with auth on (right key, wrong key, no key), with --no-auth, and with no key configured at all;
the metrics listener answers without a key and serves nothing else."""
import os
import subprocess
import uuid

import vigil_test as h
from vigil_test import check, eq, problem

NEVER = {"Type": "ThreadCount", "Settings": {"GreaterThan": 100000}}
TRUE = [{"Name": "Noop", "Type": "Execute", "Settings": {"Path": "/bin/true"}}]

AUTH_ROUTES = ["/info", "/processes", "/process?pid=1", "/collectionrules?pid=1",
               "/collectionrules/Idle?pid=1", "/instances", "/dump?pid=1&egressProvider=fs",
               "/operations", "/operations/" + str(uuid.uuid4())]


def settings(env, digest, pid):
    s = {"Discovery": {"PollInterval": "200ms"},
         "Egress": {"FileSystem": {"fs": {"DirectoryPath": os.path.join(env.tmp, "egress")}}},
         "CollectionRules": h.rule("Idle", pid, NEVER, TRUE)}
    if digest:
        s["Server"] = {"Auth": {"ApiKeyHash": digest}}
    return s


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_json(r, status=200):
    eq(r.status, status, "status of %r" % r)
    eq(r.header("Content-Type"), "application/json", "Content-Type")
    eq(int(r.header("Content-Length")), len(r.body), "Content-Length")
    return r.json()


def check_401(r, what):
    j = problem(r, 401, "VG_EAUTH")
    eq(r.header("WWW-Authenticate"), 'Bearer realm="vigil"', "WWW-Authenticate on " + what)
    return j


def refused(send, what):
    """send() carries a bad key: 401. The server brakes failed logins (50 in a one-second
    window, then 429 + Retry-After: 1), so a 429 is retried until a new window lets it through."""
    r = h.wait_for("the brake on failed logins to let %s through" % what,
                   lambda: (lambda r: r if r.status != 429 else None)(send()), 10)
    return check_401(r, what)


def new_brake_window(d, headers):
    """Spends failed logins until the brake is on (429), then until one gets through (401):
    that one opened a new window, with 49 failures left in it."""
    h.wait_for("the brake on failed logins", lambda: d.get("/info", headers=headers).status == 429,
               10, 0)
    h.wait_for("a new window of the brake",
               lambda: d.get("/info", headers=headers).status == 401, 10, 0.02)


def odd_name_target(env):
    """A process whose name and command line are not UTF-8 and carry a quote:
    /proc hands vigil raw bytes, which must still come out as valid JSON and label values."""
    link = os.path.join(env.tmp.encode(), b'vg\xffodd"q')
    os.symlink(h.TARGET.encode(), link)
    p = subprocess.Popen([link, b"--heap-mb", b"0", b"--threads", b"1", b"arg\xfe\xff"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    check(p.stdout.readline().startswith(b"ready"), "odd target did not start")
    return p


def test_auth_on(env):
    key, digest = h.generate_key()
    other_key, _ = h.generate_key()
    t = env.target(threads=2, name="vgroutes%d" % (os.getpid() % 10000))
    odd = odd_name_target(env)
    try:
        d = env.daemon(settings(env, digest, t.pid)).start()
        h.wait_for("discovery of the targets",
                   lambda: d.get("/process?pid=%d" % odd.pid, key=key).status == 200, 20)

        # --- auth: every API route refuses a missing, wrong or malformed key, before routing
        bad_auth = [None, {"Authorization": "Bearer " + other_key},
                    {"Authorization": "Bearer " + key + "x"}, {"Authorization": "Bearer"},
                    {"Authorization": "Bearer "}, {"Authorization": "Basic " + key},
                    {"Authorization": key}, {"Authorization": "bearer" + key},
                    {"X-Api-Key": key}]
        for route in AUTH_ROUTES + ["/healthz", "/metrics", "/no-such-route"]:
            for hdr in bad_auth:
                refused(lambda: d.get(route, headers=hdr), route)
        refused(lambda: d.req("DELETE", AUTH_ROUTES[-1]), "DELETE /operations/{id}")
        # a storm of wrong keys is braked with 429 + Retry-After; the right key still works
        wrong = {"Authorization": "Bearer " + other_key}
        new_brake_window(d, wrong)
        statuses = [d.get("/info", headers=wrong).status for _ in range(60)]
        check(statuses[:40] == [401] * 40 and 429 in statuses, "brake on failed logins: %r"
              % statuses)
        eq(d.get("/processes", key=key).status, 200, "the right key during the brake")
        refused(lambda: d.req("POST", "/processes"), "POST /processes")
        # the scheme is case-insensitive and surrounding blanks do not matter
        eq(d.get("/processes", headers={"Authorization": "bEaReR   " + key + "  "}).status, 200,
           "Bearer with odd case and blanks")

        # --- /healthz, /metrics on the API listener (with the key)
        r = d.get("/healthz", key=key)
        eq((r.status, r.body), (200, b"ok\n"), "/healthz")
        check(r.header("Content-Type").startswith("text/plain"), "/healthz Content-Type")
        r = d.get("/metrics", key=key)
        eq(r.status, 200, "/metrics on the API listener")
        eq(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8",
           "/metrics Content-Type")
        check(b"\nvigil_up 1\n" in r.body, "vigil_up in /metrics")

        # --- /info
        j = check_json(d.get("/info", key=key))
        for k, typ in [("version", str), ("operatingSystem", str), ("configDirs", list),
                       ("stateDir", str), ("configLoaded", str), ("capabilities", dict)]:
            check(isinstance(j.get(k), typ), "/info.%s: %r" % (k, j.get(k)))
        eq(j["operatingSystem"], "linux", "/info.operatingSystem")
        eq(j["configDirs"], [d.conf], "/info.configDirs")
        eq(j["stateDir"], d.state, "/info.stateDir")
        check(h.ISO_RE.match(j["configLoaded"]), "/info.configLoaded: %r" % j["configLoaded"])
        eq(j["configurationErrors"], None, "/info.configurationErrors")
        caps = j["capabilities"]
        eq(caps["egressProviders"], ["fs"], "capabilities.egressProviders")
        eq(caps["dumpTypes"], ["Full", "WithHeap", "Mini", "Triage"], "capabilities.dumpTypes")
        check({"ThreadCount", "Startup", "CPUUsage"} <= set(caps["triggers"]),
              "capabilities.triggers: %r" % caps["triggers"])
        check({"Execute", "CollectDump"} <= set(caps["actions"]), "capabilities.actions")

        # --- /processes
        procs = check_json(d.get("/processes", key=key))
        check(isinstance(procs, list) and len(procs) >= 2, "/processes is a list")
        for p in procs:
            eq(sorted(p), ["isDefault", "name", "pid", "uid"], "/processes item keys")
            check(is_int(p["pid"]) and p["pid"] > 0, "pid: %r" % p)
            check(h.UUID_RE.match(p["uid"]), "uid: %r" % p)
            check(isinstance(p["name"], str), "name: %r" % p)
            eq(p["isDefault"], False, "isDefault with several processes")
        eq(len({p["uid"] for p in procs}), len(procs), "uids are unique")
        check(os.getpid() in [p["pid"] for p in procs], "the test itself is listed")
        check(d.p.pid not in [p["pid"] for p in procs], "vigil does not list itself")
        mine = [p for p in procs if p["pid"] == t.pid]
        eq(len(mine), 1, "target listed once")
        eq(mine[0]["name"], t.name, "target name")
        odd_items = [p for p in procs if p["pid"] == odd.pid]
        eq(len(odd_items), 1, "a process with a non-UTF-8 name is listed")
        eq(odd_items[0]["name"], 'vg\ufffdodd"q', "non-UTF-8 name shown with U+FFFD")
        r = d.req("HEAD", "/processes", key=key)
        eq((r.status, r.body), (200, b""), "HEAD /processes")
        check(int(r.header("Content-Length")) > 0, "HEAD keeps Content-Length")

        # --- /process by pid, uid and name
        j = check_json(d.get("/process?pid=%d" % t.pid, key=key))
        want = {"pid": t.pid, "namespacePid": t.pid, "uid": mine[0]["uid"], "name": t.name,
                "operatingSystem": "linux", "runtime": "native", "exe": os.path.realpath(h.TARGET)}
        for k, v in want.items():
            eq(j.get(k), v, "/process." + k)
        check(j["commandLine"].startswith(t.path + " --heap-mb 0"), "commandLine: %r" % j)
        check(j["processArchitecture"] in ("x64", "arm64"), "processArchitecture")
        eq(check_json(d.get("/process?uid=" + mine[0]["uid"].upper(), key=key))["pid"], t.pid,
           "/process?uid= (any case)")
        eq(check_json(d.get("/process?name=" + t.name, key=key))["pid"], t.pid, "/process?name=")
        j = check_json(d.get("/process?pid=%d" % odd.pid, key=key))
        eq(j["name"], 'vg\ufffdodd"q', "odd process name")
        check(j["commandLine"].endswith("arg\ufffd\ufffd"), "odd commandLine: %r" % j)
        problem(d.get("/process", key=key), 400, "VG_EINVAL")  # several processes, no selector
        for bad in ["abc", "0", "-5", "1x", "99999999999", ""]:
            problem(d.get("/process?pid=" + bad, key=key), 400, "VG_EINVAL")
        problem(d.get("/process?pid=4194303", key=key), 404, "VG_ENOTFOUND")
        problem(d.get("/process?uid=" + str(uuid.uuid4()), key=key), 404, "VG_ENOTFOUND")
        problem(d.get("/process?name=no-such-process-name", key=key), 404, "VG_ENOTFOUND")

        # --- /collectionrules
        j = check_json(d.get("/collectionrules?pid=%d" % t.pid, key=key))
        eq(j, {"Idle": {"state": "Running", "stateReason": h.REASON_RUNNING}},
           "/collectionrules")
        eq(check_json(d.get("/collectionrules?pid=%d" % os.getpid(), key=key)), {},
           "/collectionrules for a process no rule applies to")
        problem(d.get("/collectionrules?pid=4194303", key=key), 404, "VG_ENOTFOUND")
        problem(d.get("/collectionrules?pid=x", key=key), 400, "VG_EINVAL")
        j = check_json(d.get("/collectionrules/Idle?pid=%d" % t.pid, key=key))
        eq(j, {"state": "Running", "stateReason": h.REASON_RUNNING, "lifetimeOccurrences": 0,
               "slidingWindowOccurrences": 0, "actionCountLimit": 5,
               "actionCountSlidingWindowDurationLimit": None,
               "slidingWindowDurationCountdown": None, "ruleFinishedCountdown": None,
               "lastFired": None, "cooldownRemaining": None, "lastError": None},
           "/collectionrules/Idle")
        eq(check_json(d.get("/collectionrules/idle?pid=%d" % t.pid, key=key))["state"],
           "Running", "rule names are case-insensitive")
        problem(d.get("/collectionrules/Nope?pid=%d" % t.pid, key=key), 404, "VG_ENOTFOUND")
        problem(d.get("/collectionrules/Idle?pid=%d" % os.getpid(), key=key), 404,
                "VG_ENOTFOUND")
        problem(d.get("/collectionrules/Idle?pid=4194303", key=key), 404, "VG_ENOTFOUND")

        # --- /instances
        j = check_json(d.get("/instances", key=key))
        eq(sorted(j), ["configurationErrors", "instances"], "/instances keys")
        eq(j["configurationErrors"], None, "/instances.configurationErrors")
        eq(len(j["instances"]), 1, "one rule x process")
        i = j["instances"][0]
        eq((i["rule"], i["pid"], i["name"], i["state"]), ("Idle", t.pid, t.name, "Running"),
           "/instances[0]")

        # --- /operations and /dump errors (no dump is started here)
        eq(check_json(d.get("/operations", key=key)), [], "/operations")
        problem(d.get("/operations/" + str(uuid.uuid4()), key=key), 404, "VG_ENOTFOUND")
        problem(d.req("DELETE", "/operations/" + str(uuid.uuid4()), key=key), 404,
                "VG_ENOTFOUND")
        problem(d.get("/dump?pid=%d&egressProvider=nope" % t.pid, key=key), 400, "VG_ENOTFOUND")
        problem(d.get("/dump?pid=%d&egressProvider=fs&type=Huge" % t.pid, key=key), 400,
                "VG_EINVAL")
        problem(d.get("/dump?pid=4194303&egressProvider=fs", key=key), 404, "VG_ENOTFOUND")
        problem(d.get("/dump?pid=abc&egressProvider=fs", key=key), 400, "VG_EINVAL")
        problem(d.get("/dump?egressProvider=fs", key=key), 400, "VG_EINVAL")
        eq(check_json(d.get("/operations", key=key)), [], "no operation was created")
        eq(h.files_under(os.path.join(env.tmp, "egress")), [], "nothing written to the egress")

        # --- methods and unknown paths
        for method, path, allow in [("POST", "/processes", "GET, HEAD"),
                                    ("PUT", "/info", "GET, HEAD"),
                                    ("DELETE", "/dump?pid=1", "GET"),
                                    ("PATCH", "/operations/abc", "GET, HEAD, DELETE"),
                                    ("POST", "/collectionrules/Idle", "GET, HEAD")]:
            r = d.req(method, path, key=key, body=b"{}" if method != "DELETE" else None)
            problem(r, 405, "VG_EUNSUPPORTED")
            eq(sorted(r.header("Allow").split(", ")), sorted(allow.split(", ")),
               "Allow for %s %s" % (method, path))
        # HEAD must be safe: it does not start a dump (streamed or with egress)
        for q in ("&egressProvider=fs", ""):
            r = d.req("HEAD", "/dump?pid=%d&type=Mini%s" % (t.pid, q), key=key)
            eq((r.status, r.header("Allow")), (405, "GET"), "HEAD /dump")
        eq(check_json(d.get("/operations", key=key)), [], "HEAD /dump started nothing")
        eq(h.files_under(os.path.join(env.tmp, "egress")), [], "HEAD /dump wrote nothing")
        for path in ["/nope", "/processes/1", "/operations/", "/collectionrules/", "/info/x"]:
            problem(d.get(path, key=key), 404, "VG_ENOTFOUND")
        for path in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/info/../processes",
                     "/operations/..%2f..%2fetc%2fpasswd", "/collectionrules/%2e%2e?pid=1",
                     "/info%00", "/./info"]:
            r = d.get(path, key=key)
            check(r.status in (400, 404), "%s: %r" % (path, r))
            check(b"root:" not in r.body, "no file content leaks")
            problem(r, r.status)

        # --- the metrics listener: no key needed, only /metrics and /healthz
        r = h.request(d.metrics_port, "GET", "/metrics")
        eq(r.status, 200, "/metrics on the metrics listener")
        eq(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8", "Content-Type")
        check(("pid=\"%d\"" % t.pid).encode() in r.body, "target in /metrics")
        r = h.request(d.metrics_port, "GET", "/healthz", headers={"Authorization": "Bearer x"})
        eq((r.status, r.body), (200, b"ok\n"), "/healthz on the metrics listener, junk key")
        for route in AUTH_ROUTES:
            for k in (None, key):
                problem(h.request(d.metrics_port, "GET", route, key=k), 404, "VG_ENOTFOUND")
        d.stop_and_check()
    finally:
        odd.kill()
        odd.wait()


def test_no_auth(env):
    t = env.target(threads=1)
    d = env.daemon(settings(env, None, t.pid), no_auth=True, name="noauth").start()
    h.wait_for("discovery", lambda: d.get("/process?pid=%d" % t.pid).status == 200, 20)
    for route in AUTH_ROUTES[:6] + ["/operations", "/healthz", "/metrics"]:
        route = route.replace("pid=1", "pid=%d" % t.pid)
        for k in (None, "wrong-key"):
            r = d.get(route, key=k)
            eq(r.status, 200, "--no-auth: %s with key %r" % (route, k))
            eq(r.header("WWW-Authenticate"), None, "no WWW-Authenticate with --no-auth")
    check("--no-auth" in d.log() and "without a key" in d.log(),
          "--no-auth is logged as a warning")
    d.stop_and_check()


def test_no_key_configured(env):
    """No ApiKeyHash and no --no-auth: the API listener stays closed, metrics still work."""
    d = env.daemon({"Discovery": {"PollInterval": "200ms"}}, name="nokey").start()
    try:
        r = d.get("/processes")
        raise AssertionError("the API answered without a configured key: %r" % r)
    except ConnectionRefusedError:
        pass
    eq(h.request(d.metrics_port, "GET", "/metrics").status, 200, "metrics without an API key")
    check("vigil generatekey" in d.log(), "the log says how to get a key")
    d.stop_and_check()


def run(env):
    test_auth_on(env)
    test_no_auth(env)
    test_no_key_configured(env)


if __name__ == "__main__":
    h.run(run)
