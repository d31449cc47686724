#!/usr/bin/env python3
"""`vigil status` and `vigil ps` against a running daemon, with --api-key-file (and the
VIGIL_API_KEY environment variable), and their failures: wrong key, missing key file,
nothing listening."""
import os
import re
import subprocess

import vigil_test as h
from vigil_test import check, eq

NEVER = {"Type": "ThreadCount", "Settings": {"GreaterThan": 100000}}


def vigil(*args, env_key=None):
    env = dict(os.environ)
    env.pop("VIGIL_API_KEY", None)
    if env_key:
        env["VIGIL_API_KEY"] = env_key
    return subprocess.run([h.VIGIL] + list(args), capture_output=True, text=True, timeout=60,
                          env=env)


def run(env):
    key, digest = h.generate_key()
    other, _ = h.generate_key()
    keyfile = os.path.join(env.tmp, "key")
    with open(keyfile, "w") as f:
        f.write(key + "\n")
    badfile = os.path.join(env.tmp, "badkey")
    with open(badfile, "w") as f:
        f.write(other)
    t = env.target(threads=1, name="vgclitarget")
    rules = {}
    rules.update(h.rule("IdleRule", t.pid, NEVER,
                        [{"Type": "Execute", "Settings": {"Path": "/bin/true"}}]))
    rules.update(h.rule("BootRule", t.pid, {"Type": "Startup"},
                        [{"Type": "Execute", "Settings": {"Path": "/bin/true"}}]))
    d = env.daemon({"Server": {"Auth": {"ApiKeyHash": digest}},
                    "Discovery": {"PollInterval": "200ms"},
                    "CollectionRules": rules}).start()
    url = "http://127.0.0.1:%d" % d.api_port
    h.wait_for("BootRule to run", lambda: d.get("/collectionrules/BootRule?pid=%d" % t.pid,
                                                key=key).json().get("state") == "Finished", 20)

    # --- vigil ps
    cp = vigil("ps", "--url", url, "--api-key-file", keyfile)
    eq((cp.returncode, cp.stderr), (0, ""), "vigil ps")
    lines = cp.stdout.splitlines()
    eq(lines[0].split(), ["PID", "NAME", "UID"], "vigil ps header")
    rows = {int(l.split()[0]): l.split() for l in lines[1:]}
    api = {p["pid"]: p for p in d.get("/processes", key=key).json()}
    check(t.pid in rows, "the target in vigil ps:\n" + cp.stdout)
    eq(rows[t.pid], [str(t.pid), t.name, api[t.pid]["uid"]], "the target's row")
    check(os.getpid() in rows, "the test process in vigil ps")
    # both lists were taken a moment apart: processes may come and go, most stay
    common = set(rows) & set(api)
    check(len(common) >= 0.8 * len(api), "vigil ps matches /processes")
    for pid in common:
        eq(rows[pid][-1], api[pid]["uid"], "uid of pid %d" % pid)

    # --- vigil status
    cp = vigil("status", "--url", url, "--api-key-file", keyfile)
    eq((cp.returncode, cp.stderr), (0, ""), "vigil status")
    lines = cp.stdout.splitlines()
    eq(lines[0].split(), ["RULE", "PID", "PROCESS", "STATE", "RUNS", "LAST", "FIRED", "/",
                          "ERROR"], "vigil status header")
    by_rule = {l.split()[0]: l.split() for l in lines[1:] if l.strip()}
    eq(sorted(by_rule), ["BootRule", "IdleRule"], "rules in vigil status:\n" + cp.stdout)
    eq(by_rule["IdleRule"], ["IdleRule", str(t.pid), t.name, "Running", "0", "-"], "IdleRule")
    boot = by_rule["BootRule"]
    eq(boot[:5], ["BootRule", str(t.pid), t.name, "Finished", "1"], "BootRule")
    last = d.get("/collectionrules/BootRule?pid=%d" % t.pid, key=key).json()["lastFired"]
    eq(boot[5:], [last], "BootRule last fired")
    check(h.ISO_RE.match(last), "lastFired is a time: %r" % last)

    # the key from the environment works as well as the file
    cp = vigil("status", "--url", url, env_key=key)
    eq(cp.returncode, 0, "vigil status with VIGIL_API_KEY (%s)" % cp.stderr)

    # --- failures: exit status 1 and a message on stderr, nothing on stdout
    for cmd, route in (("ps", "/processes"), ("status", "/instances")):
        cp = vigil(cmd, "--url", url, "--api-key-file", badfile)
        eq(cp.returncode, 1, "vigil %s with a wrong key" % cmd)
        check(re.search(r"%s: HTTP 401: a valid API key is required" % route, cp.stderr),
              "wrong key message: %r" % cp.stderr)
        eq(cp.stdout, "", "nothing on stdout")
        cp = vigil(cmd, "--url", url)
        eq(cp.returncode, 1, "vigil %s without a key" % cmd)
        check("HTTP 401" in cp.stderr, "no key message: %r" % cp.stderr)
        cp = vigil(cmd, "--url", url, "--api-key-file", os.path.join(env.tmp, "absent"))
        eq(cp.returncode, 1, "vigil %s with a missing key file" % cmd)
        check("cannot read" in cp.stderr, "missing file message: %r" % cp.stderr)
        cp = vigil(cmd, "--url", "http://127.0.0.1:%d" % h.free_port(), "--api-key-file",
                   keyfile)
        eq(cp.returncode, 1, "vigil %s with nothing listening" % cmd)
        check("cannot reach" in cp.stderr, "connection refused message: %r" % cp.stderr)
        cp = vigil(cmd, "--bogus")
        eq(cp.returncode, 2, "vigil %s with an unknown option" % cmd)
        cp = vigil(cmd, "--help")
        eq(cp.returncode, 0, "vigil %s --help" % cmd)
        check(cp.stdout.startswith("usage: vigil " + cmd), "usage text")
    d.stop_and_check()


if __name__ == "__main__":
    h.run(run)
