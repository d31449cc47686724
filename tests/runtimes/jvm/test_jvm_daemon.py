#!/usr/bin/env python3
"""The JVM adapter inside the real daemon (`vigil run`), with real JVMs, Azurite and s3rver:

    test_jvm_daemon.py SCENARIO --vigil PATH --apps DIR --build DIR

  artifacts  a JVM whose heap grows trips a MemoryUsage JvmHeap rule (hsperfdata counters); its
             CollectGCDump lands in s3rver and VisualVM's heap library opens it, CollectStacks
             (Thread.print) lands in Azurite, CollectTrace (JFR) in s3rver passes `jfr summary`;
             the JVM runs on.
  metrics    jvm_* metrics in /metrics for every JVM; an EventCount rule on the full-GC count
             fires; a -XX:-UsePerfData JVM is still discovered as a JVM and attached to (a
             Startup CollectStacks), just without jvm_* metrics; CollectStacks Json is refused.

The daemon harness (temp dir, free port, config writing, cleanup) is tests/engine/daemon_test.py's.
Exit 77 = skipped (no java, no compiled apps, no egress servers)."""

import argparse
import os
import random
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "engine"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "egress"))
from daemon_test import Env, Skip, fail, wait_for  # noqa: E402
import azhelper  # noqa: E402


class Servers:
    def __init__(self, build):
        ports = {}
        try:
            with open(os.path.join(build, "egress-servers", "ports.env")) as f:
                for line in f:
                    k, _, v = line.strip().partition("=")
                    ports[k] = v
        except OSError:
            raise Skip("no egress servers (the egress_servers fixture)")
        self.s3 = f"http://127.0.0.1:{ports['S3_PORT']}"
        self.az = f"http://127.0.0.1:{ports['AZ_PORT']}/devstoreaccount1"
        self.sas = azhelper.account_sas()

    def egress(self, prefix):
        return {
            "Properties": {"AzKey": azhelper.KEY},
            "S3Storage": {"s3": {"Endpoint": self.s3, "BucketName": "vigil",
                                 "RegionName": "us-east-1", "AccessKeyId": "S3RVER",
                                 "SecretAccessKey": "S3RVER", "ForcePathStyle": True,
                                 "KeyPrefix": prefix}},
            "AzureBlobStorage": {"azure": {"AccountUri": self.az, "ContainerName": "vigil",
                                           "BlobPrefix": prefix, "AccountKeyName": "AzKey"}},
        }

    @staticmethod
    def _get(url):
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.read()

    def s3_keys(self, prefix):
        xml = self._get(f"{self.s3}/vigil?prefix={urllib.parse.quote(prefix)}").decode()
        return re.findall(r"<Key>([^<]+)</Key>", xml)

    def s3_fetch(self, key, path):
        with open(path, "wb") as f:
            f.write(self._get(f"{self.s3}/vigil/{urllib.parse.quote(key)}"))

    def az_names(self, prefix):
        xml = self._get(f"{self.az}/vigil?restype=container&comp=list&"
                        f"prefix={urllib.parse.quote(prefix)}&{self.sas}").decode()
        return re.findall(r"<Name>([^<]+)</Name>", xml)

    def az_fetch(self, name):
        return self._get(f"{self.az}/vigil/{urllib.parse.quote(name)}?{self.sas}")


def start_jvm(env, apps, cls, args=(), opts=()):
    out = open(os.path.join(env.dir, f"jvm{len(env.procs)}.out"), "w+")
    p = subprocess.Popen(["java", f"-Dvigil.test.tag={env.tag}", "-Xmx256m", *opts, "-cp", apps,
                          cls, *map(str, args)], stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True, cwd=env.dir)
    p.outfile = out
    env.procs.append(p)

    def ready():
        out.flush()
        with open(out.name) as f:
            return "ready" in f.read()
    wait_for(f"{cls} to start", ready, 60)
    return p


def output(p):
    p.outfile.flush()
    with open(p.outfile.name) as f:
        return f.read()


def metric(text, name, pid):
    m = re.search(rf'^{name}{{pid="{pid}",[^}}]*}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def filters(env):
    return [{"Key": "CommandLine", "Value": env.tag, "MatchType": "Contains"}]


def hprof_check(apps, path, cls, n):
    checker = os.path.join(apps, "checker")
    if not os.path.isdir(checker):
        raise Skip("no HPROF checker (install Debian's visualvm package)")
    heapjar = open(os.path.join(checker, "heapjar")).read().strip()
    p = subprocess.run(["java", "-cp", f"{checker}:{heapjar}", "HprofCheck", path, cls, str(n)],
                       capture_output=True, text=True, timeout=120)
    print(p.stdout.strip())
    if p.returncode:
        fail(f"HprofCheck: {p.stdout}{p.stderr}")


def sc_artifacts(env, a):
    srv = Servers(a.build)
    prefix = f"jvm-{env.tag}"
    cfg = env.settings()
    cfg["Egress"] = srv.egress(prefix)
    cfg["CollectionRules"] = {"HeapGrows": {
        "Filters": filters(env),
        "Trigger": {"Type": "MemoryUsage", "Settings": {"Metric": "JvmHeap",
                                                        "GreaterThan": "24MB"}},
        "Actions": [
            {"Name": "Heap", "Type": "CollectGCDump", "Settings": {"Egress": "s3"}},
            {"Name": "Stacks", "Type": "CollectStacks",
             "Settings": {"Egress": "azure", "Format": "PlainText"}},
            {"Name": "Jfr", "Type": "CollectTrace",
             "Settings": {"Egress": "s3", "Duration": "00:00:03", "Profile": "Cpu"}},
        ],
        "Limits": {"ActionCount": 1}}}
    env.write("rules.yaml", cfg)
    env.start_daemon()
    jvm = start_jvm(env, a.apps, "HeapGrower", ["512", "100", "48"])
    st = wait_for("the rule to finish its actions",
                  lambda: (lambda s: s if s.get("lifetimeOccurrences") == 1 and
                           s.get("state") in ("Finished",) else None)(
                      env.rule_state("HeapGrows", jvm.pid)), 120, 0.5)
    print(f"rule state: {st}")
    ops = env.get("/operations")
    bad = [o for o in ops if o.get("status") != "Succeeded"] if isinstance(ops, list) else ops
    if bad:
        fail(f"operations not all succeeded: {bad}")

    held_at_fire = [int(l.split()[1]) for l in output(jvm).splitlines() if l.startswith("held ")]
    keys = srv.s3_keys(prefix)
    hprofs = [k for k in keys if k.endswith(".hprof")]
    jfrs = [k for k in keys if k.endswith(".jfr")]
    stacks = [n for n in srv.az_names(prefix) if n.endswith(".stacks.txt")]
    print(f"s3: {keys}; azure: {stacks}")
    if len(hprofs) != 1 or len(jfrs) != 1 or len(stacks) != 1:
        fail("expected one heap dump, one recording and one thread dump")
    local = os.path.join(env.dir, "heap.hprof")
    srv.s3_fetch(hprofs[0], local)
    # The rule fired above 24 MB of heap in use (garbage included): at least 10 chunks of 512 KB
    # were held by then.
    hprof_check(a.apps, local, "HeapGrower$Chunk", 10)
    rec = os.path.join(env.dir, "rec.jfr")
    srv.s3_fetch(jfrs[0], rec)
    p = subprocess.run(["jfr", "summary", rec], capture_output=True, text=True, timeout=120)
    if p.returncode or "jdk.ExecutionSample" not in p.stdout:
        fail(f"jfr summary: {p.stdout}{p.stderr}")
    text = srv.az_fetch(stacks[0]).decode(errors="replace")
    if "Full thread dump" not in text or '"main"' not in text:
        fail(f"not a thread dump: {text[:300]}")
    # Unharmed: still running and still growing (or done growing, and alive).
    if jvm.poll() is not None:
        fail("the JVM died")
    n = len(held_at_fire)
    wait_for("the JVM to go on", lambda: len([l for l in output(jvm).splitlines()
                                              if l.startswith("held ")]) > n or n >= 96, 30)


def sc_metrics(env, a):
    cfg = env.settings()
    out_dir = os.path.join(env.dir, "out")
    cfg["Egress"] = {"FileSystem": {"local": {"DirectoryPath": out_dir}}}
    cfg["CollectionRules"] = {
        "FullGCs": env.rule("FullGCs", {"Type": "EventCount", "Settings": {
            "Counter": "jvm_gc_full_collections_total", "Count": 3,
            "SlidingWindowDuration": "00:00:20"}}, limits={"ActionCount": 1}),
        "NoPerfStacks": {
            "Filters": filters(env) + [{"Key": "CommandLine", "Value": "UsePerfData",
                                        "MatchType": "Contains"}],
            "Trigger": {"Type": "Startup"},
            "Actions": [{"Name": "Stacks", "Type": "CollectStacks",
                         "Settings": {"Egress": "local", "Format": "PlainText"}}]},
        "JsonStacks": {
            "Filters": filters(env) + [{"Key": "CommandLine", "Value": "--gc-every",
                                        "MatchType": "Contains"}],
            "Trigger": {"Type": "Startup"},
            "Actions": [{"Name": "Stacks", "Type": "CollectStacks",
                         "Settings": {"Egress": "local"}}]},
    }
    env.write("rules.yaml", cfg)
    env.start_daemon()
    gc = start_jvm(env, a.apps, "Idle", ["--gc-every", "300"])
    noperf = start_jvm(env, a.apps, "Idle", opts=["-XX:-UsePerfData"])

    def jvm_metrics():
        m = env.get("/metrics")
        v = metric(m, "jvm_gc_full_collections_total", gc.pid)
        return m if v is not None and v >= 1 else None
    m = wait_for("jvm_* metrics of the JVM", jvm_metrics, 30, 0.3)
    for name in ("jvm_heap_used_bytes", "jvm_heap_committed_bytes", "jvm_heap_max_bytes",
                 "jvm_old_used_bytes", "jvm_young_committed_bytes", "jvm_metaspace_used_bytes",
                 "jvm_gc_young_collections_total", "jvm_threads_live", "jvm_classes_loaded",
                 "jvm_safepoints_total", "jvm_jit_compilation_seconds_total"):
        if metric(m, name, gc.pid) is None:
            fail(f"{name} missing for pid {gc.pid}")
    if not 5 <= metric(m, "jvm_threads_live", gc.pid) < 100:
        fail("implausible jvm_threads_live")
    if not re.search(rf'jvm_heap_used_bytes{{pid="{gc.pid}",name="java",runtime="jvm"}}', m):
        fail("the JVM is not labelled runtime=jvm")
    if metric(m, "jvm_heap_used_bytes", noperf.pid) is not None:
        fail("a -XX:-UsePerfData JVM has jvm_* metrics?")
    info = env.get(f"/process?pid={noperf.pid}")
    if info.get("runtime") != "jvm":
        fail(f"the -XX:-UsePerfData JVM is not discovered as a JVM: {info}")

    fires = wait_for("the EventCount rule on full GCs", lambda: env.fire_lines("FullGCs"), 60,
                     0.3)
    if int(fires[0][1]) != gc.pid:
        fail(f"fired for the wrong process: {fires}")

    def stacks_file():
        try:
            return [f for f in os.listdir(out_dir) if f.endswith(".stacks.txt")]
        except FileNotFoundError:
            return None
    files = wait_for("the Startup CollectStacks of the -XX:-UsePerfData JVM", stacks_file, 60)
    with open(os.path.join(out_dir, files[0])) as f:
        if "Full thread dump" not in f.read():
            fail("not a thread dump")
    if len(files) != 1:
        fail(f"expected one thread dump: {files}")
    st = wait_for("the Json CollectStacks to fail",
                  lambda: (lambda s: s if s.get("lifetimeOccurrences", 0) >= 1 and
                           s.get("state") != "Running" else None)(
                      env.rule_state("JsonStacks", gc.pid)), 60, 0.5)
    if "PlainText" not in str(st):
        fail(f"the refusal does not say what works: {st}")
    for p in (gc, noperf):
        if p.poll() is not None:
            fail(f"JVM {p.pid} died")


SCENARIOS = {"artifacts": sc_artifacts, "metrics": sc_metrics}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--vigil", required=True)
    ap.add_argument("--apps", required=True)
    ap.add_argument("--build", required=True)
    a = ap.parse_args()
    a.workload = None
    env = None
    ok = False
    try:
        if not os.path.exists(os.path.join(a.apps, "Idle.class")):
            raise Skip(f"no compiled test programs in {a.apps}")
        random.seed()
        env = Env(a, "jvm-" + a.scenario)
        SCENARIOS[a.scenario](env, a)
        env.check_logs()
        ok = True
        print(f"PASS {a.scenario}")
        return 0
    except Skip as e:
        ok = True
        print(f"SKIP {a.scenario}: {e}")
        return 77
    except AssertionError as e:
        print(f"FAIL {a.scenario}: {e}\n--- daemon log (tail) ---\n{env.log_tail() if env else ''}")
        return 1
    finally:
        if env:
            env.cleanup(keep=not ok)
            if not ok:
                print(f"(files kept in {env.dir})")


if __name__ == "__main__":
    sys.exit(main())
