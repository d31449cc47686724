#!/usr/bin/env python3
"""Hostile traffic against a real `vigil run` (the ASan daemon in the sanitizer build): more than
10,000 malformed or hostile requests -- random bytes, huge headers and URLs, bad methods and
framing, path traversal (plain, %2e, double-encoded, overlong UTF-8), wrong and missing keys,
hostile query values, half-open and reset connections, slowloris, a connection flood -- sent
from bounded loops with timeouts. Every answer must be a well-formed HTTP/1.1 response that is
never a 5xx from a handler, never a success without the key, and never leaks a file. Afterwards
the daemon still answers /healthz and /processes correctly, started no dump, its RSS did not
balloon, and SIGTERM ends it with status 0 and no sanitizer report."""
import os
import random
import re
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import vigil_test as h
from vigil_test import check, eq

SEED = int(os.environ.get("VG_ABUSE_SEED", "0")) or random.randrange(1, 1 << 30)
STATUS_RE = re.compile(rb"^HTTP/1\.1 (\d{3}) [^\r\n]*\r\n")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.statuses = {}
        self.silent = 0  # connections closed (or timed out) without an answer
        self.failures = []

    def add(self, n=1):
        with self.lock:
            self.requests += n

    def status(self, s):
        with self.lock:
            self.statuses[s] = self.statuses.get(s, 0) + 1

    def fail(self, msg):
        with self.lock:
            if len(self.failures) < 20:
                self.failures.append(msg)


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_all(s, limit=1 << 22):
    """Reads until the peer closes, the timeout strikes or limit bytes arrived."""
    out = bytearray()
    try:
        while len(out) < limit:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError, OSError):
        pass
    return bytes(out)


def split_responses(data, heads=()):
    """Splits a byte stream of HTTP responses (Content-Length framed; chunked is not expected
    here) into (status, headers_text, body); heads[i] says response i answers a HEAD."""
    out = []
    while data:
        m = STATUS_RE.match(data)
        if not m:
            return out, data
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return out, data
        head = data[:end].decode("latin-1")
        cl = re.search(r"(?im)^content-length:\s*(\d+)\s*$", head)
        n = int(cl.group(1)) if cl else 0
        if len(out) < len(heads) and heads[len(out)]:
            # HEAD answers have no body, except maybe a 400 for a request line that did not
            # parse (its method never counted as HEAD); that one closes the connection anyway
            if m.group(1) == b"400" and "connection: close" in head.lower():
                n = min(n, len(data) - end - 4)
            else:
                n = 0
        body = data[end + 4:end + 4 + n]
        if len(body) < n:
            return out, data
        out.append((int(m.group(1)), head, body))
        data = data[end + 4 + n:]
    return out, b""


class Abuser:
    def __init__(self, d, key, target_pid, stats):
        self.d = d
        self.key = key
        self.pid = target_pid
        self.st = stats

    def judge(self, what, resp, authed, head_req=False):
        status, head, body = resp
        self.st.status(status)
        if status >= 500 and status != 503:
            self.st.fail("%s: %d %r" % (what, status, body[:200]))
        if 200 <= status < 300 and not authed:
            self.st.fail("%s: success without the key: %d %r" % (what, status, body[:200]))
        if b"root:x:0:0" in body or b"root:" in body and b"/bin/" in body:
            self.st.fail("%s: file content in the answer" % what)
        if status >= 400 and body and not head_req:
            if "application/problem+json" not in head:
                self.st.fail("%s: error without problem+json: %s" % (what, head))
            elif not re.search(rb'"detail":"[^"]', body):
                self.st.fail("%s: problem without a detail: %r" % (what, body[:300]))
        if status == 401 and 'www-authenticate: bearer realm="vigil"' not in head.lower():
            self.st.fail("%s: 401 without WWW-Authenticate" % what)

    def one_shot(self, what, payload, authed=False, shut=True, port=None):
        """One connection: send, half-close, read everything; at most one answer expected."""
        self.st.add()
        try:
            s = connect(port or self.d.api_port)
        except OSError as e:
            self.st.fail("%s: connect: %s" % (what, e))
            return []
        try:
            try:
                s.sendall(payload)
                if shut:
                    s.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may close early on garbage; its answer may still be there
            data = read_all(s)
        finally:
            s.close()
        resps, rest = split_responses(data, [payload.startswith(b"HEAD ")])
        if not resps:
            if data:
                self.st.fail("%s: not an HTTP response: %r" % (what, data[:200]))
            with self.st.lock:
                self.st.silent += 1
            return []
        for r in resps:
            self.judge(what, r, authed)
        if rest:
            self.st.fail("%s: trailing bytes after the answer: %r" % (what, rest[:100]))
        return resps

    def pipelined(self, what, reqs, authed):
        """Many requests on one keep-alive connection; every one must be answered, in order."""
        self.st.add(len(reqs))
        heads = [r.startswith(b"HEAD ") for r in reqs]
        s = connect(self.d.api_port, timeout=10)
        data = b""
        resps, rest = [], b""
        try:
            s.sendall(b"".join(reqs))
            # no half-close here: vigil treats a client that half-closes as gone
            while len(resps) < len(reqs):
                b = s.recv(1 << 20)
                if not b:
                    break
                data += b
                resps, rest = split_responses(data, heads)
        except OSError as e:
            self.st.fail("%s: %s after %d answers" % (what, e, len(resps)))
        finally:
            s.close()
        if len(resps) != len(reqs) or rest:
            self.st.fail("%s: %d answers to %d pipelined requests (rest %r)" %
                         (what, len(resps), len(reqs), rest[:100]))
        for r in resps:
            self.judge(what, r, authed)
        return resps


def sockets(d):
    """Sockets the daemon holds open (its listeners included)."""
    n = 0
    base = "/proc/%d/fd" % d.p.pid
    for fd in os.listdir(base):
        try:
            n += os.readlink(os.path.join(base, fd)).startswith("socket:")
        except OSError:
            pass
    return n


def req(method, path, headers=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"] + list(headers)
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def traversal_paths(pid):
    return ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
            "/..%2f..%2fetc%2fpasswd", "/operations/..%2F..%2F..%2Fetc%2Fpasswd",
            "/collectionrules/..%%2f..%%2fetc%%2fpasswd?pid=%d" % pid, "/%252e%252e/etc/passwd",
            "/..;/etc/passwd", "/....//....//etc/passwd", "/..\\..\\etc\\passwd",
            "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "/info%00.json", "/%00", "//etc/passwd",
            "/processes/../../../../etc/passwd", "/./info", "/operations/%2e%2e",
            "/collectionrules/%%2e?pid=%d" % pid, "/info/..", "/%2e%2e", "/etc/passwd",
            "/collectionrules/%%ff%%fe?pid=%d" % pid, "/operations/%ff", "/info%2f..%2f..",
            "/%u002e%u002e/etc/passwd", "/file:///etc/passwd", "http://127.0.0.1/../etc/passwd",
            "*", "/info?%00=%00", "/%", "/%zz", "/%2", "/processes%"]


def hostile_queries(pid):
    long_val = "A" * 7000
    return ["/process?pid=%ff", "/process?pid=99999999999999999999999", "/process?name=%00",
            "/process?pid=1&pid=2", "/process?uid=%27%20OR%201%3D1%20--",
            "/process?name=" + long_val, "/process?pid=-0", "/process?pid=%2b5",
            "/process?pid=0x10", "/process?pid= 1", "/process?pid=1e3", "/process?==&&=",
            "/dump?pid=-1&egressProvider=fs", "/dump?pid=abc&egressProvider=fs",
            "/dump?pid=%d&type=%%ff%%fe&egressProvider=fs" % pid,
            "/dump?pid=%d&type=Mini&egressProvider=..%%2f..%%2fetc" % pid,
            "/dump?pid=%d&type=Mini&egressProvider=%%ff" % pid,
            "/dump?pid=%d&type=Full%%00Mini&egressProvider=fs" % pid,
            "/dump?pid=%d&type=%s&egressProvider=fs" % (pid, long_val),
            "/collectionrules/%%ff%%fe?pid=%d" % pid, "/collectionrules/Never?pid=%ff",
            "/collectionrules/" + "N" * 5000 + "?pid=%d" % pid, "/operations/%ff%fe",
            "/operations/" + "0" * 6000, "/operations/%22%3E%3Cscript%3E",
            "/collectionrules?pid=%d%%00" % pid, "/process?pid=%d&uid=x" % pid]


def run(env):
    print("seed", SEED, "(set VG_ABUSE_SEED to replay)")
    rnd = random.Random(SEED)
    key, digest = h.generate_key()
    t = env.target(threads=1, name="vgabuse")
    egress = os.path.join(env.tmp, "egress")
    asan = [o for o in os.environ.get("ASAN_OPTIONS", "").split(":") if o]
    # a small quarantine, so that RSS reflects live memory under ASan too
    asan.append("quarantine_size_mb=16")
    d = env.daemon({"Server": {"Auth": {"ApiKeyHash": digest}, "RequestTimeout": "2s",
                               "IdleTimeout": "3s", "MaxConnections": 64},
                    "Discovery": {"PollInterval": "500ms"},
                    "Egress": {"FileSystem": {"fs": {"DirectoryPath": egress}}},
                    "CollectionRules": h.rule("Never", t.pid,
                                              {"Type": "ThreadCount",
                                               "Settings": {"GreaterThan": 100000}},
                                              [{"Type": "Execute",
                                                "Settings": {"Path": "/bin/true"}}])},
                   extra_env={"ASAN_OPTIONS": ":".join(asan)}).start()
    h.wait_for("discovery",
               lambda: d.get("/process?pid=%d" % t.pid, key=key).status == 200, 20)
    st = Stats()
    ab = Abuser(d, key, t.pid, st)
    auth = "Authorization: Bearer " + key
    t0 = time.monotonic()

    # warm up (allocator pools, route tables), then take the RSS baseline
    for _ in range(100):
        eq(d.get("/processes", key=key).status, 200, "warm-up")
        h.request(d.metrics_port, "GET", "/metrics")
    socks0 = 2  # the API and metrics listeners; every connection is closed when idle

    def settle():
        """Waits until the daemon holds no connection. Connections still in a listener's accept
        queue are not its sockets yet: one request through each listener (answered after every
        earlier connection was accepted) flushes them first."""
        def ok(port, k):
            try:  # 503 or a reset while a burst is still over MaxConnections
                return h.request(port, "GET", "/healthz", key=k, timeout=5).status == 200
            except OSError:
                return False
        h.wait_for("/healthz", lambda: ok(d.api_port, key), 30, interval=0.2)
        h.wait_for("/healthz (metrics)", lambda: ok(d.metrics_port, None), 30, interval=0.2)
        h.wait_for("the daemon to close its connections", lambda: sockets(d) <= socks0, 20)

    settle()
    rss0 = h.rss_kb(d.p.pid)

    def one_round(rnd, seed):
        jobs = []
        # 1. random bytes, bare or after a plausible request line
        for i in range(1000):
            junk = rnd.randbytes(rnd.randint(1, 2048))
            if i % 3 == 1:
                junk = b"GET /processes HTTP/1.1\r\n" + junk
            elif i % 3 == 2:
                junk = req("GET", "/processes", [auth]).replace(b"\r\n\r\n", b"\r\n") + junk
            jobs.append(("random bytes", junk, i % 3 == 2))
        # 2. bad methods and request lines
        methods = ["BREW", "get", "G ET", "GET\x00", "\x01\x02", "A" * 200, "CONNECT", "TRACE",
                   "OPTIONS", "PROPFIND", "M-SEARCH", "", "PRI", "DELETE", "POST", "PUT", "PATCH",
                   "HEAD", "GET GET", "\xff\xfe"]
        versions = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9.9", "HTTP/1.1x", "", "http/1.1",
                    "HTTP/1", "HTTP/1.1 extra"]
        paths = ["/processes", "/info", "/operations/x", "/dump?pid=%d&egressProvider=fs" % t.pid,
                 "/healthz", "*", "", "processes", "/\x00", "/a b"]
        for i in range(750):
            m, v, p = rnd.choice(methods), rnd.choice(versions), rnd.choice(paths)
            with_key = i % 2 == 0
            line = ("%s %s %s\r\nHost: x\r\n%s\r\n" % (m, p, v, auth + "\r\n" if with_key else ""))
            if p.startswith("/dump") and with_key:  # never start a dump
                line = line.replace(auth, "Authorization: Bearer nope")
                with_key = False
            jobs.append(("bad method %r %r %r" % (m, p, v), line.encode("latin-1"), with_key))
        # 3. path traversal, with the key (so routing is reached)
        tp = traversal_paths(t.pid)
        for i in range(750):
            p = tp[i % len(tp)]
            jobs.append(("traversal %s" % p, req("GET", p, [auth, "Connection: close"]), True))
        # 4. huge headers, URLs, bodies and broken framing
        big = "X-Big: " + "b" * 20000
        many = ["X-H%d: %s" % (i, "v" * 20) for i in range(1500)]
        framing = [
            req("GET", "/processes", [auth, big]),
            req("GET", "/processes", [auth] + many),
            req("GET", "/processes?q=" + "q" * 10000, [auth]),
            req("GET", "/" + "p" * 20000, []),
            req("POST", "/processes", [auth, "Content-Length: 10000000000"]) + b"x" * 1000,
            req("POST", "/processes", [auth, "Content-Length: 2000000"]) + b"x" * 65536,
            req("POST", "/processes", [auth, "Transfer-Encoding: chunked"]) + b"zz\r\nxx\r\n",
            req("POST", "/processes", [auth, "Transfer-Encoding: chunked"]) +
            b"ffffffffffffffffff\r\nx\r\n",
            req("POST", "/processes", [auth, "Transfer-Encoding: chunked", "Content-Length: 5"]) +
            b"0\r\n\r\n",
            req("GET", "/processes", [auth, "Content-Length: 5", "Content-Length: 6"]) + b"123456",
            req("GET", "/processes", [auth, "Content-Length: -1"]),
            req("GET", "/processes", [auth, "Transfer-Encoding: gzip, chunked"]) + b"0\r\n\r\n",
            req("GET", "/processes", [auth, "Upgrade: websocket", "Connection: Upgrade"]),
            req("GET", "/processes", [auth, "Bad Header: x"]),
            req("GET", "/processes", [auth, "X-Nul: a\x00b"]),
            req("GET", "/processes", [auth, " leading: space"]),
            req("GET", "/processes", [auth, "X-Fold: a", "  folded"]),
            b"GET /processes HTTP/1.1\nHost: x\n" + auth.encode() + b"\n\n",
            b"GET /processes HTTP/1.1\rHost: x\r\r",
            b"\r\n" * 5000,
            req("GET", "/processes", ["Authorization: Bearer " + "k" * 15000]),
            req("GET", "/processes", ["Authorization: Bearer " + key] * 50),
            req("GET", "/processes", ["Authorization: Bearer wrong", auth]),
        ]
        for i in range(150):
            jobs.append(("framing #%d" % (i % len(framing)), framing[i % len(framing)], True))
        # 5. half-open: a partial request, then our side closes its write half
        partial = [b"GET /processes HTTP/1.1\r\nHost: x\r\n", b"GET /proc", b"G",
                   req("POST", "/processes", [auth, "Content-Length: 100"]) + b"abc",
                   req("GET", "/info", [auth])[:-2]]
        for i in range(300):
            jobs.append(("half-open #%d" % (i % len(partial)), partial[i % len(partial)], False))

        def job(j):
            what, payload, authed = j
            ab.one_shot(what, payload, authed=authed)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(job, jobs))
        print("one-shot phase: %d requests, %.1fs, %d sockets, RSS %d kB" %
              (st.requests, time.monotonic() - t0, sockets(d), h.rss_kb(d.p.pid)))

        # 6. wrong and missing keys, 50 pipelined per connection: all 401, nothing runs
        bad_keys = [None, "Bearer wrong", "Bearer " + key[:-1], "Bearer " + key + "A",
                    "Bearer  ", "Basic " + key, key, "Bearer " + key.lower(), "Bearer\t",
                    "Bearer " + "x" * 4000, "Bearer %s %s" % (key, key), "bearer:" + key]
        routes = ["/info", "/processes", "/process?pid=%d" % t.pid, "/instances", "/operations",
                  "/collectionrules?pid=%d" % t.pid, "/dump?pid=%d&egressProvider=fs" % t.pid,
                  "/dump?pid=%d" % t.pid, "/operations/abc", "/healthz", "/metrics", "/nope",
                  "/process?pid=%d&api_key=%s" % (t.pid, key)]

        def keys_conn(c):
            r = random.Random(seed + c)
            reqs = []
            for _ in range(50):
                k = r.choice(bad_keys)
                meth = r.choice(["GET", "GET", "DELETE", "HEAD"])
                reqs.append(req(meth, r.choice(routes), ["Authorization: " + k] if k else []))
            for status, _, _ in ab.pipelined("bad keys", reqs, authed=False):
                # 429: the server's brake on a storm of failed logins (> 50 per second)
                if status not in (401, 429):
                    st.fail("bad key answered %d" % status)

        # 7. hostile query values with the key, one per connection (an invalid target closes it)
        hq = hostile_queries(t.pid)

        def query(i):
            path = hq[i % len(hq)]
            for status, _, body in ab.one_shot("hostile query " + path[:80],
                                               req("GET", path, [auth]), authed=True):
                if path.startswith("/dump") and status < 400:
                    st.fail("hostile dump query answered %d %r" % (status, body[:200]))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(keys_conn, range(30)))
            list(pool.map(query, range(600)))

        # 8. reset connections: request a big answer, then reset before reading it
        for i in range(100):
            st.add()
            s = connect(d.metrics_port if i % 2 else d.api_port)
            s.sendall(req("GET", "/metrics", [auth]) if i % 2 else req("GET", "/processes", [auth]))
            if i % 4 == 0:  # vary when the reset lands: not synchronization, traffic shape
                time.sleep(0.002)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        print("after resets: %d requests, %.1fs, %d sockets, RSS %d kB" %
              (st.requests, time.monotonic() - t0, sockets(d), h.rss_kb(d.p.pid)))

        settle()

    # Round 1 warms up the allocator (ASan's keeps what it once used); a leak shows as the
    # same growth again in round 2.
    one_round(rnd, SEED)
    rss1 = h.rss_kb(d.p.pid)
    one_round(random.Random(SEED + 1), SEED + 1000)
    rss2 = h.rss_kb(d.p.pid)
    print("RSS %d kB after warm-up, %d kB after round 1, %d kB after round 2" %
          (rss0, rss1, rss2))
    check(rss2 < rss1 + 24 * 1024, "RSS grew from %d kB to %d kB in round 2" % (rss1, rss2))

    # 9. slowloris: 30 connections trickle a header byte every 0.3 s; the server must cut them
    #    off (RequestTimeout 2s) while still answering everyone else
    slow = []
    for _ in range(30):
        s = connect(d.api_port, timeout=1)
        s.sendall(b"GET /processes HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        slow.append(s)
    idle = [connect(d.api_port, timeout=1) for _ in range(10)]  # send nothing at all
    st.add(40)
    cut = set()
    deadline = time.monotonic() + 15
    while len(cut) < len(slow) and time.monotonic() < deadline:
        for i, s in enumerate(slow):
            if i in cut:
                continue
            try:
                s.sendall(b"a")
            except OSError:
                cut.add(i)
        r = d.get("/healthz", key=key, timeout=5)
        eq(r.status, 200, "/healthz during slowloris (the daemon holds %d sockets)" % sockets(d))
        time.sleep(0.3)  # the trickle's pace: what a slowloris client does
    eq(len(cut), len(slow), "slowloris connections cut off by the server")
    for s in slow:
        data = read_all(s)
        resps, _ = split_responses(data)
        for r in resps:
            check(r[0] == 408, "slowloris answer: %r" % (r,))
        s.close()
    for s in idle:
        s.settimeout(10)
        eq(read_all(s), b"", "an idle connection is closed without an answer")
        s.close()

    # 10. connection flood past MaxConnections: the excess is refused, then all is well again
    flood = []
    refused = 0
    for _ in range(90):
        try:
            flood.append(connect(d.api_port, timeout=3))
        except OSError:
            refused += 1
    st.add(len(flood))
    away = set()
    for s in flood:
        s.setblocking(False)
    deadline = time.monotonic() + 10
    while len(away) + refused < 90 - 64 and time.monotonic() < deadline:
        for i, s in enumerate(flood):
            if i in away:
                continue
            try:
                b = s.recv(4096)
                if b.startswith(b"HTTP/1.1 503 ") or b == b"":
                    away.add(i)
            except BlockingIOError:
                pass
            except OSError:
                away.add(i)
        time.sleep(0.1)
    turned_away = len(away)
    for s in flood:
        s.close()
    check(turned_away + refused >= 90 - 64, "connections over MaxConnections are turned away "
          "(%d of 90)" % (turned_away + refused))

    elapsed = time.monotonic() - t0
    print("abuse: %d requests in %.1fs, statuses %s, %d silent closes" %
          (st.requests, elapsed, dict(sorted(st.statuses.items())), st.silent))
    check(not st.failures, "bad answers:\n" + "\n".join(st.failures))
    check(st.requests >= 10000, "sent %d requests" % st.requests)
    check(st.statuses.get(401, 0) + st.statuses.get(429, 0) >= 3000 and st.statuses.get(401, 0) > 0,
          "refused keys (401, or 429 once the brake engages): %r" % st.statuses)

    # --- the daemon is still fine
    def healthy():
        try:
            return d.get("/healthz", key=key, timeout=5).status == 200
        except OSError:
            return False
    h.wait_for("/healthz after the abuse", healthy, 20)
    r = d.get("/processes", key=key)
    eq(r.status, 200, "/processes after the abuse")
    procs = r.json()
    check([p for p in procs if p["pid"] == t.pid and p["name"] == t.name], "target listed")
    eq(d.get("/collectionrules/Never?pid=%d" % t.pid, key=key).json()["state"], "Running",
       "rule state after the abuse")
    eq(d.get("/operations", key=key).json(), [], "no dump was started by the abuse")
    eq(h.files_under(egress), [], "nothing written to the egress")
    settle()
    rss3 = h.rss_kb(d.p.pid)
    print("RSS %d kB at the end" % rss3)
    check(rss3 < rss1 + 48 * 1024, "RSS grew from %d kB to %d kB" % (rss1, rss3))
    d.stop_and_check()


if __name__ == "__main__":
    h.run(run)
