"""What the runtime daemon tests check of the artifact routes (/gcdump, /trace, /stacks): a
streamed answer's headers and body, an egress operation's 202, Location and OperationStatus
(the shapes tests/engine/api_openapi.py transcribes from dotnet-monitor's openapi.json), and
refusals as problems. The artifacts themselves are checked by each runtime's own readers."""
import os
import re
import socket
import sys
import time
import urllib.parse

import vigil_test as vt
from vigil_test import check, eq, problem, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "engine"))
from api_openapi import validate  # noqa: E402  (the schemas live with the openapi test)


def wait_runtime(d, pid, runtime, timeout=60):
    """Waits until the daemon sees pid as a process of runtime (/process)."""
    def seen():
        r = d.get("/process?pid=%d" % pid)
        return r.status == 200 and r.json().get("runtime") == runtime
    wait_for("pid %d to be seen as %s" % (pid, runtime), seen, timeout, 0.2)


def streamed(d, path, pid, ext, ctype, headers=None, timeout=120, method="GET", body=None):
    """method (GET) path without an egress provider: 200, chunked, Content-Type ctype, the
    artifact's dotnet-monitor name for pid (yyyyMMdd_HHmmss_fff_PID + ext) as
    Content-Disposition; the body."""
    r = d.req(method, path, headers=headers, timeout=timeout, body=body)
    eq(r.status, 200, "%s %s: %r" % (method, path, r))
    eq(r.header("Content-Type"), ctype, "GET %s: Content-Type" % path)
    eq((r.header("Transfer-Encoding") or "").lower(), "chunked", "GET %s: chunked" % path)
    disp = r.header("Content-Disposition") or ""
    check(re.fullmatch(r'attachment; filename="\d{8}_\d{6}_\d{3}_%d%s"' % (pid, re.escape(ext)),
                       disp), "GET %s: Content-Disposition %r" % (path, disp))
    check(r.body, "GET %s: an empty body" % path)
    return r.body


def via_egress(d, method, path, provider, body=None, headers=None, timeout=180):
    """method path&egressProvider=provider: 202 with the operation (OperationStatus) and its
    absolute Location; waits for it to end and returns the final OperationStatus (201 once
    Succeeded)."""
    sep = "&" if "?" in path else "?"
    r = d.req(method, "%s%segressProvider=%s" % (path, sep, provider), body=body,
              headers=headers)
    eq(r.status, 202, "%s %s with egress: %r" % (method, path, r))
    j = r.json()
    validate(j, "OperationStatus", path)
    eq((j["status"], j["egressProviderName"]), ("Running", provider), "the new operation")
    loc = r.header("Location") or ""
    check(re.fullmatch(r"http://[^/]+/operations/%s" % j["operationId"], loc),
          "Location: %r" % loc)
    op = urllib.parse.urlsplit(loc).path

    def ended():
        rr = d.get(op)
        jj = rr.json()
        return (rr, jj) if jj["status"] != "Running" else None
    rr, jj = wait_for("the %s operation to end" % path, ended, timeout, 0.3)
    validate(jj, "OperationStatus", op)
    if jj["status"] == "Succeeded":
        eq(rr.status, 201, "a succeeded operation is 201")
        check(jj["resourceLocation"], "a succeeded operation names its artifact: %r" % jj)
    listed = [o for o in d.get("/operations").json() if o["operationId"] == j["operationId"]]
    eq(len(listed), 1, "the operation is listed under /operations")
    validate(listed[0], "OperationSummary", "/operations")
    return jj


def refused(d, method, path, status, code, words=(), body=None, headers=None):
    """A problem answer (nothing streamed, nothing started) whose detail holds every word."""
    r = d.req(method, path, body=body, headers=headers)
    j = problem(r, status, code)
    for w in words:
        check(w in j["detail"], "%s %s: %r not in %r" % (method, path, w, j["detail"]))
    return j


def clients_leave(d, long_path, short_path, n, timeout=45):
    """n streamed collections of long_path (the route's limit) whose clients go away: while
    they run short_path is refused (429); once the clients closed their connections, the
    collections stop (the slots free up long before long_path's duration) and short_path is
    served. Returns how long the slots took to free up."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", d.api_port), timeout=30)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % long_path).encode())
        socks.append(s)
    wait_for("%d collections of %s to run" % (n, long_path),
             lambda: d.get(short_path, timeout=60).status == 429, 60, 0.2)
    for s in socks:
        s.close()
    t0 = time.monotonic()
    wait_for("the collections of clients that left to stop",
             lambda: d.get(short_path, timeout=60).status == 200, timeout, 0.2)
    return time.monotonic() - t0


def head_refused(d, path):
    """HEAD must not start a collection: 405, Allow without HEAD."""
    r = d.req("HEAD", path)
    allow = "GET, POST" if path.startswith("/trace") else "GET"
    eq((r.status, r.header("Allow")), (405, allow), "HEAD " + path)


def start_indefinite(d, method, path, provider, body=None, headers=None):
    """method path (durationSeconds=-1) into provider: 202, a Running operation that says it
    can be stopped; returns its path (/operations/ID)."""
    r = d.req(method, f"{path}&egressProvider={provider}", body=body, headers=headers)
    eq(r.status, 202, f"{method} {path}: {r!r}")
    j = r.json()
    validate(j, "OperationStatus", path)
    eq((j["status"], j["isStoppable"]), ("Running", True), f"{path}: the new operation")
    listed = [o for o in d.get("/operations").json() if o["operationId"] == j["operationId"]]
    eq([o["isStoppable"] for o in listed], [True], "the operation listed as stoppable")
    return urllib.parse.urlsplit(r.header("Location")).path


def stop_and_wait(d, op, what, timeout=90):
    """DELETE op?stop=true: 202, the operation Stopping (or already done) and no longer
    stoppable, a second stop refused; returns the final OperationStatus, Succeeded."""
    r = d.req("DELETE", op + "?stop=true")
    eq(r.status, 202, f"{what}: DELETE ?stop=true: {r!r}")
    j = d.get(op).json()
    validate(j, "OperationStatus", op)
    check(j["status"] in ("Stopping", "Succeeded") and j["isStoppable"] is False,
          f"{what}: after the stop: {j}")
    if j["status"] == "Stopping":
        problem(d.req("DELETE", op + "?stop=true"), 400, "VG_ESTATE")

    def ended():
        rr = d.get(op)
        jj = rr.json()
        return (rr, jj) if jj["status"] not in ("Running", "Stopping") else None
    rr, jj = wait_for(f"{what} to end after the stop", ended, timeout, 0.2)
    eq(jj["status"], "Succeeded", f"{what}: the stopped operation: {jj}")
    eq(rr.status, 201, f"{what}: a succeeded operation is 201")
    # stopping (or cancelling) a finished operation: dotnet-monitor's 400
    problem(d.req("DELETE", op + "?stop=true"), 400, "VG_ESTATE")
    problem(d.req("DELETE", op), 400, "VG_ESTATE")
    return jj


__all__ = ["wait_runtime", "streamed", "via_egress", "refused", "clients_leave", "head_refused",
           "start_indefinite", "stop_and_wait", "validate", "vt"]
