#!/usr/bin/env python3
"""Dump operations and their uploads, end to end: a real `vigil run`, a real target, s3rver and
Azurite (the egress_servers fixture) behind faultproxy.py.

    daemon_ops.py SCENARIO BUILD_DIR

  cancel-s3      DELETE /operations/{id} while the multipart upload runs: the upload stops, it is
                 aborted (AbortMultipartUpload), no object, no spool, and only then Cancelled
  cancel-landed  DELETE while CompleteMultipartUpload's answer is held back (the object landed,
                 vigil does not know yet): the object is removed before the operation says
                 Cancelled
  cancel-azure   DELETE while blocks are uploaded: the block list is never committed, no blob
  resume         an operation whose upload runs out of retries stays Running (its upload
                 pending), and ends Succeeded with its resourceLocation when a later upload to
                 the recovered provider resumes it (never Failed: callers retry Failed ones)
  keepfree       a dump refused by Storage.KeepFree fails with an error that says KeepFree

The daemon and target come from the environment (VIGIL, VG_API_TARGET), through tests/lib."""
import os
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request


import vigil_test as h
from vigil_test import check, eq

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO, BUILD = sys.argv[1], sys.argv[2]
TERMINAL = ("Succeeded", "Failed", "Cancelled")
MIB = 1 << 20


def ports():
    env = {}
    with open(os.path.join(BUILD, "egress-servers", "ports.env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = int(v)
    return env


def sas():
    return subprocess.run([sys.executable, os.path.join(HERE, "azhelper.py"), "sas"],
                          capture_output=True, text=True, check=True).stdout.strip()


class Proxy:
    def __init__(self, env, upstream, *flags):
        self.port = h.free_port()
        self.log = os.path.join(env.tmp, "proxy-%d.log" % self.port)
        self.p = env.spawn([sys.executable, os.path.join(HERE, "faultproxy.py"), "--port",
                            str(self.port), "--upstream", "127.0.0.1:%d" % upstream, "--log",
                            self.log] + list(flags))
        h.wait_for("faultproxy on port %d" % self.port, self._up, 10)

    def _up(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def lines(self):
        try:
            with open(self.log) as f:
                return [l.split(None, 2) for l in f.read().splitlines()]
        except FileNotFoundError:
            return []


def status(url):
    """HTTP status of a plain GET (s3rver and Azurite here answer unsigned GETs)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def db_rows(d):
    db = sqlite3.connect("file:%s/vigil.db?mode=ro" % d.state, uri=True, timeout=5)
    try:
        return db.execute("SELECT u.id, u.name, u.state, u.last_error, u.spool_path,"
                          " (SELECT COUNT(*) FROM egress_parts p WHERE p.upload_id = u.id)"
                          " FROM egress_uploads u ORDER BY u.id").fetchall()
    except sqlite3.OperationalError:
        return []  # the tables do not exist yet
    finally:
        db.close()


def poll_op(d, key, loc, timeout=100):
    def done():
        j = d.get(loc, key=key).json()
        return j if j["status"] in TERMINAL else None
    return h.wait_for("operation %s to finish" % loc, done, timeout, interval=0.2)


def start(env, egress, storage=None, target_mb=0):
    key, digest = h.generate_key()
    settings = {"Server": {"Auth": {"ApiKeyHash": digest}}, "Discovery": {"PollInterval": "200ms"},
                "Egress": egress}
    if storage:
        settings["Storage"] = storage
    t = env.target(heap_mb=target_mb, threads=1, name="vgegressop")
    d = env.daemon(settings).start()
    h.wait_for("discovery of pid %d" % t.pid,
               lambda: d.get("/process?pid=%d" % t.pid, key=key).status == 200, 20)
    return d, t, key


def dump(d, key, t, provider, kind):
    r = d.get("/dump?pid=%d&egressProvider=%s&type=%s" % (t.pid, provider, kind), key=key)
    eq(r.status, 202, "GET /dump: %r" % r)
    return urllib.parse.urlparse(r.header("Location")).path  # absolute, as dotnet-monitor's


def spool_files(d):
    spool = os.path.join(d.state, "spool")
    return sorted(os.listdir(spool)) if os.path.isdir(spool) else []


def cancel_while(d, key, loc, what, cond, timeout=60):
    """Waits for cond, DELETEs the operation, returns its final JSON. The operation must still
    be Running until the upload has been cleaned up (checked by the caller on the result)."""
    try:
        h.wait_for(what, cond, timeout, interval=0.05)
    except AssertionError:
        print("uploads:", db_rows(d), "vigil exit status:", d.p.poll())
        raise
    eq(d.get(loc, key=key).json()["status"], "Running", "status before the cancel")
    r = d.req("DELETE", loc, key=key)
    eq(r.status, 200, "DELETE a running operation: %r" % r)
    j = poll_op(d, key, loc)
    eq(j["status"], "Cancelled", "status after DELETE (error %r)" % j.get("error"))
    eq(j["resourceLocation"], None, "a cancelled operation has no resource")
    return j


def s3_egress(endpoint, **extra):
    s = {"Endpoint": endpoint, "BucketName": "vigil", "RegionName": "us-east-1",
         "AccessKeyId": "S3RVER", "SecretAccessKey": "S3RVER", "ForcePathStyle": True,
         "CopyBufferSize": "5MiB", "RetryMaxDelay": "1s"}
    s.update(extra)
    return {"S3Storage": {"s3": s}}


def sc_cancel_s3(env):
    p = ports()
    px = Proxy(env, p["S3_PORT"], "--rate", "3000000")
    d, t, key = start(env, s3_egress("http://127.0.0.1:%d" % px.port), target_mb=64)
    loc = dump(d, key, t, "s3", "Full")

    def uploading():  # two parts stored: the multipart upload is well under way
        return any(r[2] == "uploading" and r[5] >= 2 for r in db_rows(d))
    cancel_while(d, key, loc, "two parts uploaded", uploading)
    rows = db_rows(d)
    print(rows)
    eq([r[2] for r in rows], ["cancelled"], "the upload's state")
    name = rows[0][1]
    lines = px.lines()
    aborts = [l for l in lines if l[1] == "forward" and l[2] == "DELETE /vigil/%s?uploadId" % name]
    check(aborts, "AbortMultipartUpload was not sent: %r" % lines)
    check(not any(l[2].startswith("POST /vigil/%s?uploadId" % name) for l in lines),
          "CompleteMultipartUpload was sent: %r" % lines)
    eq(status("http://127.0.0.1:%d/vigil/%s" % (p["S3_PORT"], name)), 404, "the object")
    eq(spool_files(d), [], "spool files after the cancel")
    h.problem(d.req("DELETE", loc, key=key), 400, "VG_ESTATE")
    d.stop_and_check()


def sc_cancel_landed(env):
    p = ports()
    px = Proxy(env, p["S3_PORT"], "--hold", r"^POST .*uploadId=")
    d, t, key = start(env, s3_egress("http://127.0.0.1:%d" % px.port), target_mb=16)
    loc = dump(d, key, t, "s3", "Full")

    def landed():
        return any(l[1] == "held" for l in px.lines())
    cancel_while(d, key, loc, "CompleteMultipartUpload to land", landed)
    rows = db_rows(d)
    print(rows, px.lines())
    eq([r[2] for r in rows], ["cancelled"], "the upload's state")
    name = rows[0][1]
    check(any(l[1] == "forward" and l[2] == "DELETE /vigil/%s" % name for l in px.lines()),
          "the landed object was not deleted: %r" % px.lines())
    eq(status("http://127.0.0.1:%d/vigil/%s" % (p["S3_PORT"], name)), 404, "the object")
    eq(spool_files(d), [], "spool files after the cancel")
    d.stop_and_check()


def sc_cancel_azure(env):
    p = ports()
    px = Proxy(env, p["AZ_PORT"], "--rate", "3000000")
    token = sas()
    d, t, key = start(env, {"AzureBlobStorage": {"az": {
        "AccountUri": "http://127.0.0.1:%d/devstoreaccount1" % px.port, "ContainerName": "vigil",
        "SharedAccessSignature": token, "CopyBufferSize": "4MiB", "RetryMaxDelay": "1s"}}},
        target_mb=64)
    loc = dump(d, key, t, "az", "Full")

    def uploading():
        return any(r[2] == "uploading" and r[5] >= 2 for r in db_rows(d))
    cancel_while(d, key, loc, "two blocks uploaded", uploading)
    rows = db_rows(d)
    print(rows)
    eq([r[2] for r in rows], ["cancelled"], "the upload's state")
    name = rows[0][1]
    lines = px.lines()
    blocks = [l for l in lines if l[2].startswith("PUT ") and "?comp" in l[2]]
    check(any("blockid" in l[2] for l in blocks), "no Put Block seen: %r" % lines)
    check(not any("blockid" not in l[2] for l in blocks), "Put Block List was sent: %r" % lines)
    eq(status("http://127.0.0.1:%d/devstoreaccount1/vigil/%s?%s" % (p["AZ_PORT"], name, token)),
       404, "the blob")
    eq(spool_files(d), [], "spool files after the cancel")
    d.stop_and_check()


def sc_resume(env):
    p = ports()
    # the first upload's two attempts get 503; everything after goes through
    px = Proxy(env, p["S3_PORT"], "--fail503", "2")
    d, t, key = start(env, s3_egress("http://127.0.0.1:%d" % px.port, MaxRetries=1))
    loc1 = dump(d, key, t, "s3", "Mini")

    def pending():
        """The row is pending and the operation knows (the egress job's end reaches the API's
        loop after the row is written; the dump counts against MaxConcurrentDumps until then)."""
        if not any(r[2] == "pending" for r in db_rows(d)):
            return False
        return (d.get(loc1, key=key).json().get("upload") or {}).get("state") == "pending"
    h.wait_for("the first upload to run out of retries", pending, 60)
    j = d.get(loc1, key=key).json()
    eq((j["status"], j["resourceLocation"]), ("Running", None),
       "an operation whose upload is pending (not Failed: a caller would dump again)")
    ops = d.get("/operations", key=key).json()
    eq(len(ops), 1, "the pending upload is listed once, as its operation: %r" % ops)
    # the provider is back: the next dump's upload succeeds and resumes the pending one
    loc2 = dump(d, key, t, "s3", "Mini")
    j2 = poll_op(d, key, loc2)
    eq(j2["status"], "Succeeded", "the second operation (error %r)" % j2.get("error"))
    j1 = poll_op(d, key, loc1, timeout=60)
    eq(j1["status"], "Succeeded", "the first operation after the resume (error %r)" %
       j1.get("error"))
    rows = db_rows(d)
    print(rows)
    eq([r[2] for r in rows], ["done", "done"], "upload states")
    eq(j1["resourceLocation"], "s3://vigil/%s" % rows[0][1], "resourceLocation")
    eq(status("http://127.0.0.1:%d/vigil/%s" % (p["S3_PORT"], rows[0][1])), 200, "the object")
    eq(spool_files(d), [], "spool files")
    d.stop_and_check()


def sc_keepfree(env):
    arts = os.path.join(env.tmp, "artifacts")
    d, t, key = start(env, {"FileSystem": {"fs": {"DirectoryPath": arts}}},
                      storage={"KeepFree": "1000TB"})  # more than any disk here has free
    j = poll_op(d, key, dump(d, key, t, "fs", "Mini"))
    eq(j["status"], "Failed", "a dump the KeepFree floor refuses")
    err = j["error"] or {}  # dotnet-monitor's {code, message}
    eq(err.get("code"), "VG_EKEEPFREE", "the error's code")
    check("Storage.KeepFree" in err.get("message", ""), "the error names KeepFree: %r" % err)
    d.stop_and_check()


SCENARIOS = {"cancel-s3": sc_cancel_s3, "cancel-landed": sc_cancel_landed,
             "cancel-azure": sc_cancel_azure, "resume": sc_resume, "keepfree": sc_keepfree}

if __name__ == "__main__":
    h.run(SCENARIOS[SCENARIO], name="egress_op_" + SCENARIO)
