#!/usr/bin/env python3
"""Issue 17 (scale), functional checks, never timed:

unwatched     a process no rule matches is discovered (/processes) but never sampled: it is
              absent from /metrics, vigil_processes_sampled counts only the watched one, and the
              daemon keeps only its comm fd open (no stat/status/io/fd); when it exec's into a
              program a rule matches it is sampled; Discovery.SampleAllProcesses (reloaded)
              brings every process into /metrics.
fdlimit       a daemon whose RLIMIT_NOFILE leaves a kept-fd budget below its watched processes
              (1100: 76 kept fds for 120 processes) still samples every one of them.
gzip          /metrics with Accept-Encoding: gzip decodes to the very text served without it
              (same sweep), has Content-Encoding and Vary; q=0 refuses gzip.
back_to_back  a client closing its connections and reconnecting at once never gets 503 for its
              own old connections (MetricsMaxConnections 4, 4 connections x 150 rounds); the
              limit itself still holds for connections in the middle of a request.
"""
import gzip
import os
import resource
import shutil
import socket
import subprocess
import sys

import vigil_test as h
from vigil_test import check, eq, fail, wait_for


def samples_of(text, family, pid):
    return [l for l in text.splitlines() if l.startswith(family + "{") and f'pid="{pid}"' in l]


def daemon_fds(pid):
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def sc_unwatched(env):
    tag = "vgw%d" % (os.getpid() % 100000)
    watched = env.target(name=tag)
    idle = env.target(name="vgi%d" % (os.getpid() % 100000))
    rule = {"Filters": [{"Key": "ProcessName", "Value": tag}],
            "Trigger": {"Type": "CPUUsage", "Settings": {"GreaterThan": 99}},
            "Actions": [{"Type": "Execute", "Settings": {"Path": "/bin/true"}}]}
    settings = {"Discovery": {"PollInterval": "200ms"}, "CollectionRules": {"W": rule}}
    d = env.daemon(settings, no_auth=True).start()
    m = wait_for("the watched target sampled", lambda: (
        t := d.get("/metrics").body.decode()) and samples_of(t, "process_threads", watched.pid)
        and t, 20)
    d.wait_sweeps(3)
    m = d.get("/metrics").body.decode()
    eq(samples_of(m, "process_threads", idle.pid), [], "the unwatched target in /metrics")
    eq(samples_of(m, "process_cpu_seconds_total", idle.pid), [], "unwatched cpu seconds")
    eq(h.metric(m, "vigil_processes_sampled"), 1.0, "vigil_processes_sampled")
    check(h.metric(m, "vigil_processes") >= 3, "vigil_processes counts every process")
    procs = d.get("/processes").json()
    check(any(p["pid"] == idle.pid for p in procs), "the unwatched target is in /processes")
    # what the daemon keeps open for each: the watched one's stat, the other's comm alone
    fds = daemon_fds(d.p.pid)
    mine = sorted(f.rsplit("/", 1)[1] for f in fds if f.startswith(f"/proc/{idle.pid}/"))
    eq(mine, ["comm"], "files of the unwatched target the daemon keeps open")
    check(f"/proc/{watched.pid}/stat" in fds, f"the watched target's stat is kept: {fds}")
    # exec into a watched program: sampled from then on
    link = os.path.join(env.tmp, tag)
    sh = subprocess.Popen(["/bin/sh", "-c", 'read x; exec "$0" --threads 1', link],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        d.wait_sweeps(2)
        check(not samples_of(d.get("/metrics").body.decode(), "process_threads", sh.pid),
              "the shell is not sampled before its exec")
        sh.stdin.write("go\n")
        sh.stdin.flush()
        check(sh.stdout.readline().startswith("ready"), "exec'd target ready")
        wait_for("the exec'd process sampled", lambda: samples_of(
            d.get("/metrics").body.decode(), "process_threads", sh.pid), 20)
        wait_for("two processes sampled", lambda: h.metric(
            d.get("/metrics").body.decode(), "vigil_processes_sampled") == 2.0, 20)
    finally:
        sh.kill()
        sh.wait()
    # every process, when the configuration asks (live reload)
    d.settings["Discovery"]["SampleAllProcesses"] = True
    d._write_settings()
    wait_for("the unwatched target in /metrics after SampleAllProcesses", lambda: samples_of(
        d.get("/metrics").body.decode(), "process_threads", idle.pid), 30)
    d.stop_and_check()


def sc_fdlimit(env):
    n = 120
    tag = "vgf%d" % (os.getpid() % 100000)
    path = os.path.join(env.tmp, tag)
    shutil.copy("/bin/sleep", path)
    kids = [subprocess.Popen([path, "1000"]) for _ in range(n)]
    try:
        rule = {"Filters": [{"Key": "ProcessName", "Value": tag}],
                "Trigger": {"Type": "CPUUsage", "Settings": {"GreaterThan": 99}},
                "Actions": [{"Type": "Execute", "Settings": {"Path": "/bin/true"}}]}
        settings = {"Discovery": {"PollInterval": "200ms"}, "CollectionRules": {"F": rule}}
        # the daemon raises its soft limit to the hard one: lower both, for it alone
        d = env.daemon(settings, no_auth=True, args=())
        old = resource.getrlimit(resource.RLIMIT_NOFILE)
        orig_popen = subprocess.Popen

        def limited(*a, **kw):
            kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1100, 1100))
            return orig_popen(*a, **kw)
        subprocess.Popen = limited
        try:
            d.start()
        finally:
            subprocess.Popen = orig_popen
        eq(resource.getrlimit(resource.RLIMIT_NOFILE), old, "the test's own limit")
        with open(f"/proc/{d.p.pid}/limits") as f:
            line = [l for l in f if l.startswith("Max open files")][0]
        eq(line.split()[3:5], ["1100", "1100"], "the daemon's fd limit")

        def all_sampled():
            m = d.get("/metrics").body.decode()
            got = [k.pid for k in kids if samples_of(m, "process_cpu_seconds_total", k.pid)
                   and samples_of(m, "process_resident_memory_bytes", k.pid)]
            return len(got) == n and m
        m = wait_for(f"all {n} processes sampled under a 1100-fd limit", all_sampled, 30)
        check(h.metric(m, "vigil_processes_sampled") >= n, "vigil_processes_sampled")
        # the open fds gauge comes every 10th sweep: wait for it on every process too
        wait_for("process_open_fds for every process", lambda: all(samples_of(
            d.get("/metrics").body.decode(), "process_open_fds", k.pid) for k in kids), 30)
        fds = len(os.listdir(f"/proc/{d.p.pid}/fd"))
        check(fds < 1100, f"the daemon holds {fds} fds")
        check("Too many open files" not in open(d.log_path, errors="replace").read(),
              "EMFILE in the daemon's log")
        d.stop_and_check()
    finally:
        for k in kids:
            k.kill()
            k.wait()


def sc_gzip(env):
    d = env.daemon({"Discovery": {"PollInterval": "200ms", "SampleAllProcesses": True}},
                   no_auth=True).start()
    d.wait_sweeps(2)
    for port in (d.metrics_port, d.api_port):
        for _ in range(50):
            plain = h.request(port, "GET", "/metrics")
            z = h.request(port, "GET", "/metrics", headers={"Accept-Encoding": "gzip"})
            again = h.request(port, "GET", "/metrics")
            if plain.body == again.body:
                break  # no sweep in between: the same rendering
        else:
            fail("/metrics changed between every two requests for 50 tries")
        eq(z.status, 200, "gzip status")
        eq(z.header("Content-Encoding"), "gzip", "Content-Encoding")
        check("Accept-Encoding" in (z.header("Vary") or ""), "Vary: Accept-Encoding")
        check(plain.header("Content-Encoding") is None, "no encoding without asking")
        check(len(z.body) < len(plain.body), "gzip is smaller")
        eq(gzip.decompress(z.body), plain.body, "gunzipped /metrics")
        check(b"vigil_processes_sampled" in plain.body, "vigil_processes_sampled exported")
        no = h.request(port, "GET", "/metrics", headers={"Accept-Encoding": "gzip;q=0, br"})
        check(no.header("Content-Encoding") is None, "gzip;q=0 is refused")
        star = h.request(port, "GET", "/metrics", headers={"Accept-Encoding": "*"})
        eq(star.header("Content-Encoding"), "gzip", "* accepts gzip")
        head = h.request(port, "HEAD", "/metrics", headers={"Accept-Encoding": "gzip"})
        eq((head.status, head.body), (200, b""), "HEAD with gzip")
    d.stop_and_check()


def http_get(sock):
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: vigil\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            fail("connection closed before the response head")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    status = int(head.split()[1])
    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
              if l.lower().startswith(b"content-length:")]
    while length and len(body) < length[0]:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status


def http_get_fresh(port):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        return http_get(s)


def sc_back_to_back(env):
    d = env.daemon({"Server": {"MetricsMaxConnections": 4}}, no_auth=True).start()
    port = d.metrics_port
    refused = 0
    for _ in range(150):
        socks = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(4)]
        for s in socks:
            refused += http_get(s) != 200
        for s in socks:
            s.close()
    eq(refused, 0, "responses other than 200 when reconnecting at once")
    # the limit is real: 4 connections in the middle of a request (not idle: an idle one would
    # make room), the 5th is refused
    socks = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(4)]
    for s in socks:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
    # one loop iteration reads every socket that is ready: once a request on the API listener
    # (a budget of its own) is answered, the partial requests above have been read
    eq(d.get("/healthz").status, 200, "API listener")
    eq(http_get_fresh(port), 503, "a 5th connection while 4 are mid-request")
    for s in socks:
        s.close()
    d.stop_and_check()


SCENARIOS = {"unwatched": sc_unwatched, "fdlimit": sc_fdlimit, "gzip": sc_gzip,
             "back_to_back": sc_back_to_back}

if __name__ == "__main__":
    name = sys.argv[1]
    h.run(SCENARIOS[name], name="scale_" + name)
