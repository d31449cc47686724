#!/usr/bin/env python3
"""Scale benchmark (issue 17): what idle processes cost the daemon, and /metrics under a scrape
storm. Every number compares two vigil binaries in the same run (BASE, e.g. main's, and NEW),
on the same processes, one after the other.

idle     N idle processes (N = 100, 1000, 10000): 100 of them named `wsleep`, the rest `isleep`
         (copies of /bin/sleep). Rules matching the 100 (ProcessName wsleep) vs matching all
         (no filter). Daemon CPU (utime+stime) over DURATION seconds at PollInterval 1s, per
         sweep and per discovered process per sweep; VmRSS at the end, before any scrape.
metrics  1000 idle processes, every one in /metrics (NEW: Discovery.SampleAllProcesses), 50
         concurrent scrapers (wrk -c50) on the metrics listener for DURATION seconds, twice back
         to back: req/s, p99, non-2xx responses, daemon RSS growth over idle; the latency of a
         MemoryUsage rule (time from the target touching 300 MB to the Execute action running)
         unloaded and during the scrape storm.

usage: bench.py BASE_VIGIL NEW_VIGIL WORKLOAD OUT.json [idle|metrics|all] [DURATION] [SIZES]
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def get(url, headers=None, timeout=30):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def metric(text, name):
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


class Daemon:
    def __init__(self, vigil, tmp, config, tag):
        self.dir = tempfile.mkdtemp(prefix=f"{tag}-", dir=tmp)
        os.makedirs(f"{self.dir}/conf")
        with open(f"{self.dir}/conf/rules.yaml", "w") as f:
            f.write(config.replace("@DIR@", self.dir))
        self.port = free_port()
        self.mport = free_port()
        with open(f"{self.dir}/conf/server.yaml", "w") as f:
            f.write(f"Server:\n  MetricsUrls: [\"http://127.0.0.1:{self.mport}\"]\n"
                    "  MetricsMaxConnections: 64\n")
        self.log = open(f"{self.dir}/vigil.log", "w")
        self.proc = subprocess.Popen(
            [vigil, "run", "--config-dir", f"{self.dir}/conf", "--state-dir", f"{self.dir}/state",
             "--no-auth", "--urls", f"http://127.0.0.1:{self.port}", "--log-level", "warn"],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while True:
            try:
                get(f"http://127.0.0.1:{self.port}/healthz", timeout=5)
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"vigil did not start: {open(self.log.name).read()}")
                time.sleep(0.2)
        self.pid = self.proc.pid

    def scrape(self):
        return get(f"http://127.0.0.1:{self.port}/metrics", timeout=120).decode()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Sleepers:
    """n idle processes: `watched` of them run as wsleep, the rest as isleep."""

    def __init__(self, tmp):
        self.procs = []
        for name in ("wsleep", "isleep"):
            shutil.copy("/bin/sleep", f"{tmp}/{name}")
        self.tmp = tmp

    def resize(self, n, watched=100):
        while len(self.procs) < n:
            name = "wsleep" if len(self.procs) < watched else "isleep"
            self.procs.append(subprocess.Popen([f"{self.tmp}/{name}", "100000"]))

    def stop(self):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []


def rule_config(name, filters=""):
    """A CPUUsage rule that never fires (so only sampling is measured) on the processes the
    filters YAML lines match (all processes without)."""
    return f"""Discovery:
  PollInterval: 1s
CollectionRules:
  {name}:
{filters}    Trigger:
      Type: CPUUsage
      Settings: {{GreaterThan: 99, SlidingWindowDuration: 10s}}
    Actions:
      - Type: Execute
        Settings: {{Path: /bin/true}}
"""


RULE_100 = rule_config("Watched", """    Filters:
      - Key: ProcessName
        Value: wsleep
""")
RULE_ALL = rule_config("All")


def idle(binaries, tmp, duration, sizes, out):
    sl = Sleepers(tmp)
    rows = []
    try:
        for n in sizes:
            sl.resize(n)
            time.sleep(2)
            for rules, rname in ((RULE_100, "100 matched"), (RULE_ALL, "all matched")):
                for bname, vigil in binaries:
                    d = Daemon(vigil, tmp, rules, f"idle-{bname}")
                    try:
                        time.sleep(4)  # first scans: instances created, state opened
                        t0, s0 = cpu_ticks(d.pid), time.monotonic()
                        time.sleep(duration)
                        t1, s1 = cpu_ticks(d.pid), time.monotonic()
                        rss, hwm = status(d.pid, "VmRSS"), status(d.pid, "VmHWM")
                        fds = len(os.listdir(f"/proc/{d.pid}/fd"))
                        m = d.scrape()
                        procs = metric(m, "vigil_processes")
                        sampled = metric(m, "vigil_processes_sampled")
                    finally:
                        d.stop()
                    sweeps = (s1 - s0)  # PollInterval 1s
                    cpu = (t1 - t0) / HZ
                    row = {"n": n, "rules": rname, "binary": bname, "processes": procs,
                           "sampled": sampled, "cpu_s": cpu, "wall_s": s1 - s0,
                           "cpu_pct": 100 * cpu / (s1 - s0),
                           "ms_per_sweep": 1000 * cpu / sweeps,
                           "us_per_process_sweep": 1e6 * cpu / sweeps / procs,
                           "rss_kib": rss, "hwm_kib": hwm, "fds": fds,
                           "rss_per_process_b": None}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        sl.stop()
    out["idle"] = rows


def wrk(url, duration, gzip):
    cmd = ["wrk", "-t2", "-c50", f"-d{duration}s", "--latency", "--timeout", "10s", url]
    if gzip:
        cmd[1:1] = ["-H", "Accept-Encoding: gzip"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    t = r.stdout
    rps = float(re.search(r"Requests/sec:\s+(\S+)", t).group(1))
    m = re.search(r"99%\s+(\S+)", t)
    unit = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}
    p99 = None
    if m:
        v = re.fullmatch(r"([\d.]+)(us|ms|s|m)", m.group(1))
        p99 = float(v.group(1)) * unit[v.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    errs = re.search(r"Socket errors: (.*)", t)
    return {"rps": rps, "p99_ms": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errs.group(1) if errs else "", "raw": t}


def latency_once(d, workload, tag, tmp):
    """Starts a workload that touches 300 MB after 1 s; returns seconds from that to the rule's
    Execute action."""
    stamp_dir = f"{d.dir}/fired"
    w = subprocess.Popen([workload, tag, "sleep:1", "grow:300", "hold"], stdout=subprocess.PIPE,
                         text=True)
    try:
        grow_at = None
        for line in w.stdout:
            if line.startswith("phase grow:300"):
                grow_at = float(line.split()[2])
                break
        path = f"{stamp_dir}/{w.pid}"
        deadline = time.time() + 60
        while not os.path.exists(path) or not open(path).read().strip():
            if time.time() > deadline:
                raise RuntimeError("the memory rule did not fire")
            time.sleep(0.02)
        return float(open(path).read().split()[0]) - grow_at
    finally:
        w.kill()
        w.wait()


def metrics_config(tmp, tag, sample_all):
    stamp = f"{tmp}/stamp-{tag}.sh"
    with open(stamp, "w") as f:
        f.write('#!/bin/sh\nmkdir -p "$1"\ndate +%s.%N > "$1/$2.tmp" && mv "$1/$2.tmp" "$1/$2"\n')
    os.chmod(stamp, 0o755)
    return (f"""Discovery:
  PollInterval: 1s
{"  SampleAllProcesses: true" if sample_all else ""}
CollectionRules:
  Memory:
    Filters:
      - Key: CommandLine
        Value: {tag}
        MatchType: Contains
    Trigger:
      Type: MemoryUsage
      Settings: {{GreaterThan: 200MB}}
    Actions:
      - Type: Execute
        Settings:
          Path: {stamp}
          Arguments: "@DIR@/fired $(Process.ProcessId)"
""")


def metrics(binaries, workload, tmp, duration, out):
    sl = Sleepers(tmp)
    res = []
    try:
        sl.resize(1000, watched=0)
        time.sleep(2)
        for bname, vigil in binaries:
            tag = f"vgbench{os.getpid()}{bname}"
            cfg = metrics_config(tmp, tag, sample_all=(bname != "base"))
            d = Daemon(vigil, tmp, cfg, f"metrics-{bname}")
            try:
                time.sleep(4)
                body = d.scrape()
                procs = metric(body, "vigil_processes")
                size = len(body.encode())
                gz = len(get(f"http://127.0.0.1:{d.mport}/metrics",
                             {"Accept-Encoding": "gzip"}))
                rss_idle = status(d.pid, "VmRSS")
                unloaded = [latency_once(d, workload, tag, tmp) for _ in range(5)]
                url = f"http://127.0.0.1:{d.mport}/metrics"
                runs = {}
                for gzip in (False, True):
                    w = subprocess.Popen([sys.executable, __file__, "--wrk", url, str(duration),
                                          "1" if gzip else "0"], stdout=subprocess.PIPE,
                                         text=True)
                    loaded = []
                    t_end = time.time() + duration - 5
                    time.sleep(1)
                    while time.time() < t_end:
                        loaded.append(latency_once(d, workload, tag, tmp))
                    first = json.loads(w.communicate()[0])
                    # back to back: the next storm starts the moment the first one ends
                    second = wrk(url, 5, gzip)
                    runs["gzip" if gzip else "plain"] = {
                        "first": {k: v for k, v in first.items() if k != "raw"},
                        "back_to_back": {k: v for k, v in second.items() if k != "raw"},
                        "latency_loaded_s": loaded,
                        "rss_after_kib": status(d.pid, "VmRSS"),
                        "hwm_kib": status(d.pid, "VmHWM")}
                row = {"binary": bname, "processes": procs, "metrics_bytes": size,
                       "metrics_gzip_bytes": gz, "rss_idle_kib": rss_idle,
                       "latency_unloaded_s": unloaded, "runs": runs}
            finally:
                d.stop()
            res.append(row)
            print(json.dumps(row), flush=True)
    finally:
        sl.stop()
    out["metrics"] = res


def main():
    if sys.argv[1] == "--wrk":
        print(json.dumps(wrk(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")))
        return
    base, new, workload, outp = sys.argv[1:5]
    part = sys.argv[5] if len(sys.argv) > 5 else "all"
    duration = int(sys.argv[6]) if len(sys.argv) > 6 else 20
    sizes = [int(x) for x in (sys.argv[7] if len(sys.argv) > 7 else "100,1000,10000").split(",")]
    binaries = [("base", base), ("new", new)]
    tmp = tempfile.mkdtemp(prefix="vigil-bench-scale.")
    out = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "load": os.getloadavg(),
                       "kernel": os.uname().release}}
    try:
        if part in ("idle", "all"):
            idle(binaries, tmp, duration, sizes, out)
        if part in ("metrics", "all"):
            metrics(binaries, workload, tmp, duration, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(outp, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
