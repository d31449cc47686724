#!/usr/bin/env python3
"""Heap snapshot of a large Node heap, three ways, in one run (bench/node/run.sh):

  inspector  `vigil run` takes it with CollectGCDump through the inspector the app opened
             (--inspect), streaming the HeapProfiler chunks into a FileSystem egress;
  signal     node's own --heapsnapshot-signal writes the same heap to its --diagnostic-dir
             (no vigil involved: the baseline);
  vigil-sig  `vigil run` takes it with CollectGCDump through that signal path (no inspector),
             streaming node's file into the egress as node writes it, then deleting it.

For each: wall time (the collection's start to the artifact complete), snapshot bytes, the
target's CPU seconds and RSS growth, and the daemon's CPU seconds and RSS (baseline before the
collection, peak while it runs: VmRSS sampled every 50 ms). The same heap script and size for
all; one target with --inspect and --heapsnapshot-signal serves the first two, a second target
without --inspect the third. Prints a JSON document and a Markdown table.

    bench.py --vigil build/vigil --millions 5 --out DIR"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
HZ = os.sysconf("SC_CLK_TCK")


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        w = f.read().rsplit(")", 1)[1].split()
    return (int(w[11]) + int(w[12])) / HZ


class Peak:
    """Samples VmRSS of pids every 50 ms in a thread; keeps the maximum of each."""

    def __init__(self, *pids):
        self.pids = pids
        self.peak = {p: status(p, "VmRSS") for p in pids}
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            for p in self.pids:
                try:
                    self.peak[p] = max(self.peak[p], status(p, "VmRSS"))
                except OSError:
                    pass
            time.sleep(0.05)

    def end(self):
        self.stop = True
        self.t.join()
        return self.peak


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, cond, timeout, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    sys.exit(f"timed out waiting for {what}")


def start_app(work, name, millions, flags):
    out = open(os.path.join(work, name + ".out"), "w+")
    p = subprocess.Popen(["node", "--max-old-space-size=8192", *flags,
                          os.path.join(HERE, "heap.js"), str(millions), "benchtag-" + name],
                         stdout=out, stderr=subprocess.STDOUT, cwd=work, start_new_session=True)
    wait_for(f"{name} to build its heap", lambda: "ready" in open(out.name).read(), 600, 0.5)
    return p


class Daemon:
    def __init__(self, vigil, work):
        self.work = work
        self.conf = os.path.join(work, "conf")
        self.arts = os.path.join(work, "artifacts")
        os.makedirs(self.conf)
        os.makedirs(self.arts)
        self.port = free_port()
        self.write({})
        self.p = subprocess.Popen([vigil, "run", "--config-dir", self.conf, "--state-dir",
                                   os.path.join(work, "state"), "--no-auth", "--urls",
                                   f"http://127.0.0.1:{self.port}", "--log-level", "info"],
                                  stdout=open(os.path.join(work, "vigil.log"), "w"),
                                  stderr=subprocess.STDOUT)

    def ready(self):
        wait_for("vigil's API", lambda: self.get("/healthz") is not None, 30)

    def write(self, rules):
        doc = {"Discovery": {"PollInterval": "500ms"}, "Server": {"MetricsEnabled": False},
               "Egress": {"FileSystem": {"fs": {"DirectoryPath": self.arts}}},
               "CollectionRules": rules}
        tmp = os.path.join(self.conf, "rules.json.tmp~")
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, os.path.join(self.conf, "rules.json"))

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                body = r.read()
        except OSError:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return body

    def snapshot(self, rule, tag):
        """Adds a Startup CollectGCDump rule for the process tagged tag; waits for its
        operation. Returns (wall seconds, artifact path)."""
        self.write({rule: {"Filters": [{"Key": "CommandLine", "Value": tag,
                                        "MatchType": "Contains"}],
                           "Trigger": {"Type": "Startup"},
                           "Actions": [{"Type": "CollectGCDump", "Settings": {"Egress": "fs"}}]}})

        def op():
            ops = self.get("/operations") or []
            mine = [o for o in ops if o.get("collectionRule") == rule]
            return mine[0] if mine and mine[0]["status"] != "Running" else None
        o = wait_for(f"{rule}'s snapshot", op, 1800, 0.2)
        if o["status"] != "Succeeded":
            sys.exit(f"{rule}: {o}")
        return o

    def stop(self):
        self.p.terminate()
        self.p.wait(60)


def measure(label, fn, target, daemon_pid=None):
    pids = [target.pid] + ([daemon_pid] if daemon_pid else [])
    base = {p: status(p, "VmRSS") for p in pids}
    cpu0 = {p: cpu_s(p) for p in pids}
    peak = Peak(*pids)
    t0 = time.monotonic()
    size = fn()
    wall = time.monotonic() - t0
    peak = peak.end()
    r = {"method": label, "bytes": size, "wall_s": round(wall, 2),
         "target_cpu_s": round(cpu_s(target.pid) - cpu0[target.pid], 2),
         "target_rss_before_mb": round(base[target.pid] / 2**20, 1),
         "target_rss_growth_mb": round((peak[target.pid] - base[target.pid]) / 2**20, 1)}
    if daemon_pid:
        r.update({"vigil_cpu_s": round(cpu_s(daemon_pid) - cpu0[daemon_pid], 2),
                  "vigil_rss_before_mb": round(base[daemon_pid] / 2**20, 2),
                  "vigil_rss_peak_mb": round(peak[daemon_pid] / 2**20, 2),
                  "vigil_rss_growth_mb": round((peak[daemon_pid] - base[daemon_pid]) / 2**20, 2)})
    print(json.dumps(r), flush=True)
    return r


def node_signal(target, diag):
    """node writes the snapshot itself; complete once it no longer holds the file open."""
    os.kill(target.pid, 12)  # SIGUSR2, its --heapsnapshot-signal
    f = wait_for("node's snapshot file", lambda: [x for x in os.listdir(diag)
                                                   if x.endswith(".heapsnapshot")], 600, 0.05)
    path = os.path.join(diag, f[0])

    def closed():
        for fd in os.listdir(f"/proc/{target.pid}/fd"):
            try:
                if os.readlink(f"/proc/{target.pid}/fd/{fd}") == path:
                    return False
            except OSError:
                pass
        return True
    wait_for("node to finish writing", closed, 1800, 0.05)
    size = os.path.getsize(path)
    os.unlink(path)
    return size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vigil", required=True)
    ap.add_argument("--millions", type=float, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if not shutil.which("node"):
        sys.exit("no node")
    load_start = open("/proc/loadavg").read().split()[:3]
    work = tempfile.mkdtemp(prefix="vigil-bench-node-")
    procs = []
    try:
        diag = os.path.join(work, "diag")
        os.makedirs(diag)
        d = Daemon(os.path.abspath(a.vigil), work)
        procs.append(d.p)
        d.ready()
        results = []

        def via_vigil(rule, tag):
            o = d.snapshot(rule, tag)
            path = o["resourceLocation"]
            size = os.path.getsize(path)
            os.unlink(path)
            return size
        # A fresh target for each method: a process's first snapshot grows its RSS the most
        # (V8 builds the snapshot's graph in memory), so each one starts from the same state.
        methods = [
            ("vigil, inspector (CollectGCDump)", "inspector", ["--inspect=127.0.0.1:0"], True),
            ("node alone, --heapsnapshot-signal", "signal", [], False),
            ("vigil, signal path (CollectGCDump)", "vigilsig", [], True),
        ]
        for label, name, flags, vigil in methods:
            t = start_app(work, name, a.millions, flags + ["--heapsnapshot-signal=SIGUSR2",
                                                          "--diagnostic-dir=" + diag])
            procs.append(t)
            time.sleep(3)  # the daemon's first sweeps see it; its heap settles
            if vigil:
                fn = (lambda n=name: via_vigil(n, "benchtag-" + n))
            else:
                fn = (lambda t=t: node_signal(t, diag))
            results.append(measure(label, fn, t, d.p.pid if vigil else None))
            d.write({})
            t.kill()
            t.wait()
        d.stop()
        doc = {"date": time.strftime("%Y-%m-%d"), "millions": a.millions,
               "nproc": os.cpu_count(), "loadavg_start": load_start,
               "loadavg_end": open("/proc/loadavg").read().split()[:3],
               "node": subprocess.run(["node", "--version"], capture_output=True,
                                      text=True).stdout.strip(),
               "results": results}
        os.makedirs(a.out, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        with open(os.path.join(a.out, f"results-{stamp}.json"), "w") as f:
            json.dump(doc, f, indent=1)
        print("\n| method | snapshot | wall | target CPU | target RSS growth | vigil CPU | "
              "vigil RSS before → peak |")
        print("|---|---|---|---|---|---|---|")
        for r in results:
            v = (f"{r['vigil_cpu_s']} s | {r['vigil_rss_before_mb']} → {r['vigil_rss_peak_mb']} MiB"
                 if "vigil_cpu_s" in r else "— | —")
            print(f"| {r['method']} | {r['bytes'] / 1e6:.0f} MB | {r['wall_s']} s | "
                  f"{r['target_cpu_s']} s | {r['target_rss_growth_mb']} MiB | {v} |")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
