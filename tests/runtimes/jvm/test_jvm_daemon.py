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

Built on tests/lib/vigil_test.py (the daemon, its log's sanitizer check, cleanup). Exit 77 =
skipped (no java, no compiled apps, no egress servers)."""

import argparse
import os
import re
import subprocess
import time

import vigil_test as vt
from egress_servers import Servers
from vigil_test import Skip, fail, wait_for

ARGS = None


def start_jvm(env, tag, cls, args=(), opts=()):
    out = open(os.path.join(env.tmp, "jvm%d.out" % len(env.procs)), "w+")
    p = env.spawn(["java", "-Dvigil.test.tag=" + tag, "-Xmx256m", *opts, "-cp", ARGS.apps, cls,
                   *map(str, args)], stdout=out, stderr=subprocess.STDOUT, cwd=env.tmp)
    p.outfile = out

    def ready():
        out.flush()
        with open(out.name) as f:
            return "ready" in f.read()
    wait_for(cls + " to start", ready, 60)
    return p


def output(p):
    p.outfile.flush()
    with open(p.outfile.name) as f:
        return f.read()


def metric(text, name, pid):
    m = re.search(rf'^{name}{{pid="{pid}",[^}}]*}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def filters(tag):
    return [{"Key": "CommandLine", "Value": tag, "MatchType": "Contains"}]


def rule_state(d, rule, pid):
    return d.get("/collectionrules/%s?pid=%d" % (rule, pid)).json()


def settings():
    return {"Discovery": {"PollInterval": "500ms"}}


def hprof_check(path, cls, n):
    checker = os.path.join(ARGS.apps, "checker")
    if not os.path.isdir(checker):
        raise Skip("no HPROF checker (install Debian's visualvm package)")
    heapjar = open(os.path.join(checker, "heapjar")).read().strip()
    p = subprocess.run(["java", "-cp", f"{checker}:{heapjar}", "HprofCheck", path, cls, str(n)],
                       capture_output=True, text=True, timeout=120)
    print(p.stdout.strip())
    if p.returncode:
        fail(f"HprofCheck: {p.stdout}{p.stderr}")


def with_egress(env):
    """The egress servers, this run's tag and object prefix, settings with both providers."""
    srv = Servers(ARGS.build)
    tag = "vgjvm" + os.path.basename(env.tmp).replace("-", "")
    prefix = "jvm-" + tag
    cfg = settings()
    cfg["Egress"] = srv.egress(prefix)
    return srv, tag, prefix, cfg


def sc_artifacts(env):
    srv, tag, prefix, cfg = with_egress(env)
    cfg["CollectionRules"] = {"HeapGrows": {
        "Filters": filters(tag),
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
    d = env.daemon(cfg, no_auth=True).start()
    jvm = start_jvm(env, tag, "HeapGrower", ["512", "100", "48"])

    def finished():
        st = rule_state(d, "HeapGrows", jvm.pid)
        return st if st.get("lifetimeOccurrences") == 1 and st.get("state") == "Finished" else None
    st = wait_for("the rule to finish its actions", finished, 120, 0.5)
    print("rule state: %s" % st)
    ops = d.get("/operations").json()
    bad = [o for o in ops if o.get("status") != "Succeeded"]
    if bad:
        fail("operations not all succeeded: %s" % bad)

    keys = srv.s3_keys(prefix)
    hprofs = [k for k in keys if k.endswith(".hprof")]
    jfrs = [k for k in keys if k.endswith(".jfr")]
    stacks = [n for n in srv.az_names(prefix) if n.endswith(".stacks.txt")]
    print("s3: %s; azure: %s" % (keys, stacks))
    if len(hprofs) != 1 or len(jfrs) != 1 or len(stacks) != 1:
        fail("expected one heap dump, one recording and one thread dump")
    local = os.path.join(env.tmp, "heap.hprof")
    srv.s3_fetch(hprofs[0], local)
    # The rule fired above 24 MB of heap in use (garbage included): at least 10 chunks of 512 KB
    # were held by then.
    hprof_check(local, "HeapGrower$Chunk", 10)
    rec = os.path.join(env.tmp, "rec.jfr")
    srv.s3_fetch(jfrs[0], rec)
    jfr_check(rec)
    text = srv.az_fetch(stacks[0]).decode(errors="replace")
    if "Full thread dump" not in text or '"main"' not in text:
        fail("not a thread dump: %s" % text[:300])
    # Unharmed: still running, and growing on (or done growing).
    if jvm.poll() is not None:
        fail("the JVM died")
    n = len([l for l in output(jvm).splitlines() if l.startswith("held ")])
    wait_for("the JVM to go on", lambda: len([l for l in output(jvm).splitlines()
                                              if l.startswith("held ")]) > n or n >= 96, 30)
    stop_jvms(env)
    d.stop_and_check()


def stop_jvms(env):
    """SIGTERM, so the JVMs remove their /tmp files (a SIGKILL leaves them behind)."""
    for p in env.procs:
        if p.poll() is None:
            p.terminate()
    for p in env.procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass


def sc_metrics(env):
    tag = "vgjvm" + os.path.basename(env.tmp).replace("-", "")
    cfg = settings()
    out_dir = os.path.join(env.tmp, "out")
    cfg["Egress"] = {"FileSystem": {"local": {"DirectoryPath": out_dir}}}
    cfg["CollectionRules"] = {
        "FullGCs": {
            "Filters": filters(tag),
            "Trigger": {"Type": "EventCount", "Settings": {
                "Counter": "jvm_gc_full_collections_total", "Count": 3,
                "SlidingWindowDuration": "00:00:20"}},
            "Actions": [{"Type": "Execute", "Settings": {"Path": "/bin/true"}}],
            "Limits": {"ActionCount": 1}},
        "NoPerfStacks": {
            "Filters": filters(tag) + [{"Key": "CommandLine", "Value": "UsePerfData",
                                        "MatchType": "Contains"}],
            "Trigger": {"Type": "Startup"},
            "Actions": [{"Name": "Stacks", "Type": "CollectStacks",
                         "Settings": {"Egress": "local", "Format": "PlainText"}}]},
        "JsonStacks": {
            "Filters": filters(tag) + [{"Key": "CommandLine", "Value": "--gc-every",
                                        "MatchType": "Contains"}],
            "Trigger": {"Type": "Startup"},
            "Actions": [{"Name": "Stacks", "Type": "CollectStacks",
                         "Settings": {"Egress": "local"}}]},
    }
    d = env.daemon(cfg, no_auth=True).start()
    gc = start_jvm(env, tag, "Idle", ["--gc-every", "300"])
    noperf = start_jvm(env, tag, "Idle", opts=["-XX:-UsePerfData"])

    def jvm_metrics():
        m = d.get("/metrics").body.decode()
        v = metric(m, "jvm_gc_full_collections_total", gc.pid)
        return m if v is not None and v >= 1 else None
    m = wait_for("jvm_* metrics of the JVM", jvm_metrics, 30, 0.3)
    for name in ("jvm_heap_used_bytes", "jvm_heap_committed_bytes", "jvm_heap_max_bytes",
                 "jvm_old_used_bytes", "jvm_young_committed_bytes", "jvm_metaspace_used_bytes",
                 "jvm_gc_young_collections_total", "jvm_threads_live", "jvm_classes_loaded",
                 "jvm_safepoints_total", "jvm_jit_compilation_seconds_total"):
        if metric(m, name, gc.pid) is None:
            fail("%s missing for pid %d" % (name, gc.pid))
    if not 5 <= metric(m, "jvm_threads_live", gc.pid) < 100:
        fail("implausible jvm_threads_live")
    if not re.search(r'jvm_heap_used_bytes\{pid="%d",name="java",runtime="jvm"\}' % gc.pid, m):
        fail("the JVM is not labelled runtime=jvm")
    if metric(m, "jvm_heap_used_bytes", noperf.pid) is not None:
        fail("a -XX:-UsePerfData JVM has jvm_* metrics?")
    info = d.get("/process?pid=%d" % noperf.pid).json()
    if info.get("runtime") != "jvm":
        fail("the -XX:-UsePerfData JVM is not discovered as a JVM: %s" % info)

    def fired(rule, pid):
        st = rule_state(d, rule, pid)
        return st if st.get("lifetimeOccurrences", 0) >= 1 and st.get("state") != "Running" \
            else None
    wait_for("the EventCount rule on full GCs", lambda: fired("FullGCs", gc.pid), 60, 0.3)

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
        fail("expected one thread dump: %s" % files)
    st = wait_for("the Json CollectStacks to fail", lambda: fired("JsonStacks", gc.pid), 60, 0.5)
    if "PlainText" not in str(st):
        fail("the refusal does not say what works: %s" % st)
    for p in (gc, noperf):
        if p.poll() is not None:
            fail("JVM %d died" % p.pid)
    stop_jvms(env)
    d.stop_and_check()


def sc_routes(env):
    """dotnet-monitor's artifact routes on a JVM: streamed and through the egress."""
    import artifact_routes as ar
    srv, tag, prefix, cfg = with_egress(env)
    d = env.daemon(cfg, no_auth=True).start()
    jvm = start_jvm(env, tag, "HeapGrower", ["512", "50", "16"])
    ar.wait_runtime(d, jvm.pid, "jvm")
    wait_for("the JVM to hold 16 MB", lambda: "held 32" in output(jvm), 60)
    q = "pid=%d" % jvm.pid
    # streamed: an HPROF heap dump (VisualVM's heap library), a JFR recording (jfr summary), a
    # thread dump (no Accept: dotnet-monitor's default PlainText, what a JVM writes)
    local = os.path.join(env.tmp, "streamed.hprof")
    with open(local, "wb") as f:
        f.write(ar.streamed(d, "/gcdump?" + q, jvm.pid, ".hprof", "application/octet-stream"))
    hprof_check(local, "HeapGrower$Chunk", 32)
    rec = os.path.join(env.tmp, "streamed.jfr")
    with open(rec, "wb") as f:
        f.write(ar.streamed(d, "/trace?%s&durationSeconds=2&profile=Cpu" % q, jvm.pid, ".jfr",
                            "application/octet-stream"))
    jfr_check(rec)
    for accept in (None, "text/plain"):
        text = ar.streamed(d, "/stacks?" + q, jvm.pid, ".stacks.txt", "text/plain",
                           {"Accept": accept} if accept else None).decode(errors="replace")
        if "Full thread dump" not in text or '"main"' not in text:
            fail("not a thread dump: %s" % text[:300])
    # through the egress, read back from s3rver and Azurite
    op = ar.via_egress(d, "GET", "/gcdump?%s&tags=jvm" % q, "s3")
    hprofs = [k for k in srv.s3_keys(prefix) if k.endswith("_%d.hprof" % jvm.pid)]
    if op["status"] != "Succeeded" or op["tags"] != ["jvm"] or len(hprofs) != 1:
        fail("/gcdump operation: %s, %s" % (op, srv.s3_keys(prefix)))
    local = os.path.join(env.tmp, "egress.hprof")
    srv.s3_fetch(hprofs[0], local)
    hprof_check(local, "HeapGrower$Chunk", 32)
    op = ar.via_egress(d, "GET", "/trace?%s&durationSeconds=2" % q, "s3")
    jfrs = [k for k in srv.s3_keys(prefix) if k.endswith(".jfr")]
    if op["status"] != "Succeeded" or len(jfrs) != 1:
        fail("/trace operation: %s, %s" % (op, srv.s3_keys(prefix)))
    srv.s3_fetch(jfrs[0], rec)
    jfr_check(rec)
    # durationSeconds=-1: the recording runs until DELETE ?stop=true, then is kept whole
    op = ar.start_indefinite(d, "GET", "/trace?%s&durationSeconds=-1&profile=Cpu" % q, "s3")
    time.sleep(3)  # samples to keep
    ar.stop_and_wait(d, op, "the JFR recording")
    jfrs = [k for k in srv.s3_keys(prefix) if k.endswith(".jfr")]
    if len(jfrs) != 2:
        fail("expected a second JFR recording in s3rver: %s" % srv.s3_keys(prefix))
    for k in jfrs:
        srv.s3_fetch(k, rec)
        jfr_check(rec)
    # without an egress it could not be stopped: refused
    ar.refused(d, "GET", "/trace?%s&durationSeconds=-1" % q, 400, "VG_EUNSUPPORTED",
               ["egressProvider"])
    op = ar.via_egress(d, "GET", "/stacks?" + q, "azure")
    stacks = [n for n in srv.az_names(prefix) if n.endswith(".stacks.txt")]
    if op["status"] != "Succeeded" or len(stacks) != 1:
        fail("/stacks operation: %s, %s" % (op, srv.az_names(prefix)))
    if "Full thread dump" not in srv.az_fetch(stacks[0]).decode(errors="replace"):
        fail("not a thread dump in Azurite")
    # what a JVM cannot do is refused before anything starts, saying why
    ar.refused(d, "GET", "/stacks?" + q, 400, "VG_EUNSUPPORTED", ["PlainText"],
               headers={"Accept": "application/json"})
    ar.refused(d, "POST", "/trace?" + q, 400, "VG_EUNSUPPORTED", ["EventPipe"],
               body='{"Providers": [{"Name": "Microsoft-Windows-DotNETRuntime"}]}',
               headers={"Content-Type": "application/json"})
    for path in ("/gcdump", "/trace", "/stacks"):
        ar.head_refused(d, "%s?%s" % (path, q))
    if jvm.poll() is not None:
        fail("the JVM died")
    stop_jvms(env)
    d.stop_and_check()


def jfr_check(rec):
    p = subprocess.run(["jfr", "summary", rec], capture_output=True, text=True, timeout=120)
    if p.returncode or "jdk.ExecutionSample" not in p.stdout:
        fail("jfr summary: %s%s" % (p.stdout, p.stderr))


SCENARIOS = {"artifacts": sc_artifacts, "metrics": sc_metrics, "routes": sc_routes}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--apps", required=True)
    ap.add_argument("--build", required=True)
    ARGS = ap.parse_args()

    def scenario(env):
        vt.need("java", "the JVM tests")
        vt.need("jfr", "JFR recordings are read with `jfr summary`")
        if not os.path.exists(os.path.join(ARGS.apps, "Idle.class")):
            raise Skip("no compiled test programs in %s" % ARGS.apps)
        SCENARIOS[ARGS.scenario](env)
    vt.run(scenario, name="jvm_daemon_" + ARGS.scenario)


if __name__ == "__main__":
    main()
