#!/usr/bin/env python3
"""Dump operations end to end: GET /dump with an egress provider gives 202 + Location, the
operation runs to Succeeded and its resourceLocation is a core gdb opens; a second dump while
one runs gets 429 + Retry-After; DELETE cancels a running Full dump of a 1 GB process and
leaves no partial file; an egress that cannot write gives Failed with the reason; a dump
without egress streams back a core (fetched with curl), and a client that leaves mid-stream
stops the dump and releases the target."""
import os
import re
import shutil
import socket
import struct
import subprocess

import vigil_test as h
from vigil_test import check, eq, problem

TERMINAL = ("Succeeded", "Failed", "Cancelled")


def gdb_threads(core):
    """Thread count and the backtraces gdb reads from a core of the target."""
    out = subprocess.run(["gdb", "-batch", "-nx", "-ex", "info threads", "-ex",
                          "thread apply all bt", h.TARGET, core], capture_output=True, text=True,
                         timeout=60)
    text = out.stdout + out.stderr
    threads = re.findall(r"^\*?\s+\d+\s+(?:Thread|LWP)\s", out.stdout, re.M)
    check("is not a core dump" not in text and "not in executable format" not in text,
          "gdb could not read %s:\n%s" % (core, text[-2000:]))
    return len(threads), text


def check_core(path, target):
    with open(path, "rb") as f:
        head = f.read(64)
    eq(head[:4], b"\x7fELF", "ELF magic of %s" % path)
    eq(struct.unpack_from("<H", head, 16)[0], 4, "e_type is ET_CORE")
    n, text = gdb_threads(path)
    eq(n, target.threads, "threads gdb sees in the core (%s)" % text[-1500:])
    eq(text.count("vg_api_parked_wait"), target.threads - 1,
       "parked threads named in the backtraces")
    check("main ()" in text or "main (" in text, "main thread in the backtraces")


def check_op(j, op_id, status, target, egress="fs"):
    eq(j["operationId"], op_id, "operationId")
    eq(j["status"], status, "status")
    eq(j["egressProviderName"], egress, "egressProviderName")
    eq(j["isStoppable"], False, "isStoppable")
    check(h.ISO_RE.match(j["createdDateTime"]), "createdDateTime: %r" % j)
    eq((j["process"]["pid"], j["process"]["name"]), (target.pid, target.name), "process")
    check(h.UUID_RE.match(j["process"]["uid"]), "process.uid")


def poll_op(d, key, location):
    def done():
        r = d.get(location, key=key)
        j = r.json()
        return (r, j) if j["status"] in TERMINAL else None
    return h.wait_for("operation %s to finish" % location, done, 100, interval=0.2)


def run(env):
    h.need("gdb", "it reads the cores")
    key, digest = h.generate_key()
    egress = os.path.join(env.tmp, "egress")
    broken = os.path.join(env.tmp, "broken")
    small = env.target(threads=3, name="vgopsmall")
    big = env.target(heap_mb=1024, threads=1, name="vgopbig")
    d = env.daemon({"Server": {"Auth": {"ApiKeyHash": digest}},
                    "Discovery": {"PollInterval": "200ms"},
                    "Egress": {"FileSystem": {"fs": {"DirectoryPath": egress},
                                              "broken": {"DirectoryPath": broken}}}}).start()
    for t in (small, big):
        h.wait_for("discovery of pid %d" % t.pid,
                   lambda: d.get("/process?pid=%d" % t.pid, key=key).status == 200, 20)

    # --- an operation's lifecycle
    r = d.get("/dump?pid=%d&egressProvider=fs&type=Full" % small.pid, key=key)
    eq(r.status, 202, "GET /dump with egress: %r" % r)
    loc = r.header("Location")
    m = re.fullmatch(r"/operations/([0-9a-f-]{36})", loc or "")
    check(m and h.UUID_RE.match(m.group(1)), "Location: %r" % loc)
    op_id = m.group(1)
    eq(r.header("Content-Type"), "application/json", "202 Content-Type")
    j = r.json()
    check_op(j, op_id, "Running", small)
    eq((j["resourceLocation"], j["error"]), (None, None), "nothing yet")
    r, j = poll_op(d, key, loc)
    eq(j["status"], "Succeeded", "operation status (error: %r)" % j.get("error"))
    eq(r.status, 201, "GET of a succeeded operation")
    check_op(j, op_id, "Succeeded", small)
    eq(j["error"], None, "no error")
    core = j["resourceLocation"]
    check(isinstance(core, str) and os.path.isfile(core), "resourceLocation is a file: %r" % j)
    eq(os.path.dirname(os.path.realpath(core)), os.path.realpath(egress),
       "the core is in the egress directory")
    eq(h.files_under(egress), [core], "only the finished core in the egress directory")
    check_core(core, small)
    eq(d.get(loc.upper().replace("/OPERATIONS/", "/operations/"), key=key).status, 201,
       "operation ids are case-insensitive")
    problem(d.req("DELETE", loc, key=key), 400, "VG_ESTATE")  # already Succeeded
    ops = d.get("/operations", key=key).json()
    eq([(o["operationId"], o["status"]) for o in ops], [(op_id, "Succeeded")], "/operations")

    # --- a big Full dump: a second one meanwhile is refused, then DELETE cancels it
    r = d.get("/dump?pid=%d&egressProvider=fs&type=Full" % big.pid, key=key)
    eq(r.status, 202, "big dump: %r" % r)
    big_loc = r.header("Location")
    big_id = big_loc.rsplit("/", 1)[1]
    for url in ["/dump?pid=%d&egressProvider=fs" % small.pid, "/dump?pid=%d" % small.pid]:
        r = d.get(url, key=key)
        problem(r, 429, "VG_ELIMIT")
        check(r.header("Retry-After") and r.header("Retry-After").isdigit(),
              "Retry-After on 429: %r" % r.headers)
    eq(d.get(big_loc, key=key).json()["status"], "Running", "big dump still running")
    r = d.req("DELETE", big_loc, key=key)
    eq(r.status, 200, "DELETE a running operation: %r" % r)
    r, j = poll_op(d, key, big_loc)
    eq((r.status, j["status"]), (200, "Cancelled"), "cancelled operation")
    check_op(j, big_id, "Cancelled", big)
    eq(j["resourceLocation"], None, "a cancelled dump has no resource")
    eq(h.files_under(egress), [core], "no partial file left after the cancel")
    problem(d.req("DELETE", big_loc, key=key), 400, "VG_ESTATE")
    eq(big.cmd("spawn 0"), 2, "the big process still runs after the cancelled dump")
    ops = d.get("/operations", key=key).json()
    eq([(o["operationId"], o["status"]) for o in ops], [(big_id, "Cancelled"),
                                                        (op_id, "Succeeded")],
       "/operations, newest first")

    # --- a dump whose egress fails: Failed with the reason; the next dump is not blocked
    shutil.rmtree(broken)
    with open(broken, "w") as f:  # the directory became a file: nothing can be written there
        f.write("not a directory\n")
    r = d.get("/dump?pid=%d&egressProvider=broken&type=Mini" % small.pid, key=key)
    eq(r.status, 202, "dump to a broken egress: %r" % r)
    fail_id = r.header("Location").rsplit("/", 1)[1]
    r, j = poll_op(d, key, r.header("Location"))
    eq(r.status, 200, "GET of a failed operation")
    check_op(j, fail_id, "Failed", small, egress="broken")
    check(isinstance(j["error"], str) and "not a directory" in j["error"], "error: %r" % j)
    eq(j["resourceLocation"], None, "a failed dump has no resource")

    # --- streamed back without egress, with curl
    out = os.path.join(env.tmp, "streamed.core")
    hdrs = os.path.join(env.tmp, "streamed.headers")
    base = "http://127.0.0.1:%d/dump?pid=%d&type=Mini" % (d.api_port, small.pid)
    cp = subprocess.run(["curl", "-sS", "--max-time", "90", "-o", out, "-D", hdrs, "-w",
                         "%{http_code}", "-H", "Authorization: Bearer " + key, base],
                        capture_output=True, text=True, timeout=100)
    eq((cp.returncode, cp.stdout), (0, "200"), "curl exit status and HTTP code (%s)" % cp.stderr)
    head = open(hdrs).read().lower()
    check("content-type: application/octet-stream" in head, "streamed Content-Type:\n" + head)
    check("transfer-encoding: chunked" in head, "streamed as chunks:\n" + head)
    # dotnet-monitor's dump naming (core_<UTC yyyyMMdd_HHmmss_fff>) plus the pid
    check(re.search(r'content-disposition: attachment; filename="core_\d{8}_\d{6}_\d{3}_%d"'
                    % small.pid, head), "Content-Disposition:\n" + head)
    check_core(out, small)
    eq(len(d.get("/operations", key=key).json()), 3, "a streamed dump is not an operation")
    cp = subprocess.run(["curl", "-sS", "-o", os.devnull, "-w", "%{http_code}", base],
                        capture_output=True, text=True, timeout=30)
    eq(cp.stdout, "401", "streamed dump without a key")
    eq(h.files_under(egress), [core], "streaming wrote nothing to the egress")

    # --- a streaming client that goes away mid-dump: the dump stops, the target is released
    s = socket.create_connection(("127.0.0.1", d.api_port), timeout=30)
    s.sendall(("GET /dump?pid=%d&type=Full HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
               "\r\n\r\n" % (big.pid, key)).encode())
    got = b""
    while len(got) < (4 << 20):
        b = s.recv(1 << 20)
        check(b, "the stream ended early")
        got += b
    check(got.startswith(b"HTTP/1.1 200 "), "streamed answer: %r" % got[:100])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

    def next_dump_accepted():
        r = d.get("/dump?pid=%d&egressProvider=fs&type=Mini" % small.pid, key=key)
        return r if r.status == 202 else None
    r = h.wait_for("the abandoned dump to stop (429 until then)", next_dump_accepted, 60,
                   interval=0.2)
    r, j = poll_op(d, key, r.header("Location"))
    eq(j["status"], "Succeeded", "the dump after the abandoned one")
    os.unlink(j["resourceLocation"])

    def released():
        with open("/proc/%d/status" % big.pid) as f:
            st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        return st["TracerPid"].strip() == "0" and st["State"].split()[0] in ("S", "R")
    h.wait_for("the big process to be released (not traced, not stopped)", released, 10)
    eq(big.cmd("spawn 0"), 2, "the big process runs on after the abandoned dump")
    eq(h.files_under(egress), [core], "nothing left behind by the abandoned stream")
    d.stop_and_check()


if __name__ == "__main__":
    h.run(run)
