#!/usr/bin/env python3
"""vigil's API against dotnet-monitor's API description (documentation/openapi.json): every
route dotnet-monitor documents is called as a dotnet-monitor client would, and each answer is
checked against the schema and status codes openapi.json gives for it. The schemas below are
transcribed from openapi.json (components.schemas); members vigil adds are allowed only when
listed in EXTENSIONS, so nothing appears unnoticed. The artifact routes a runtime adapter serves
(/gcdump, /trace, /stacks) answer a native process with a 400 naming the runtimes that do; routes
that need .NET features vigil does not run yet answer 400 with a problem saying so
(dotnet-monitor's answer for a disabled feature)."""
import re
import urllib.parse

import vigil_test as h
from vigil_test import check, eq

UUID = "uuid"
DATE = "date-time"
SPAN = "time-span"

# name -> {member: (type, format or enum, nullable)}; "required" lists required members.
SCHEMAS = {
    "ProcessIdentifier": {"pid": ("integer", None, False), "uid": ("string", UUID, False),
                          "name": ("string", None, True), "isDefault": ("boolean", None, False)},
    "ProcessInfo": {"pid": ("integer", None, False), "uid": ("string", UUID, False),
                    "name": ("string", None, True), "commandLine": ("string", None, True),
                    "operatingSystem": ("string", None, True),
                    "processArchitecture": ("string", None, True),
                    "managedEntryPointAssemblyName": ("string", None, True)},
    "MonitorCapability": {"name": ("string", None, False), "enabled": ("boolean", None, False),
                          "required": ["name", "enabled"]},
    "DotnetMonitorInfo": {"version": ("string", None, True),
                          "runtimeVersion": ("string", None, True),
                          "diagnosticPortMode": ("string", ["Connect", "Listen"], False),
                          "diagnosticPortName": ("string", None, True),
                          "capabilities": ("array", "MonitorCapability", True),
                          "required": ["capabilities"]},
    "CollectionRuleDescription": {
        "state": ("string", ["Running", "ActionExecuting", "Throttled", "Finished"], False),
        "stateReason": ("string", None, True)},
    "CollectionRuleDetailedDescription": {
        "lifetimeOccurrences": ("integer", None, False),
        "slidingWindowOccurrences": ("integer", None, False),
        "actionCountLimit": ("integer", None, False),
        "actionCountSlidingWindowDurationLimit": ("string", SPAN, True),
        "slidingWindowDurationCountdown": ("string", SPAN, True),
        "ruleFinishedCountdown": ("string", SPAN, True),
        "state": ("string", ["Running", "ActionExecuting", "Throttled", "Finished"], False),
        "stateReason": ("string", None, True)},
    "OperationProcessInfo": {"pid": ("integer", None, False), "uid": ("string", UUID, False),
                             "name": ("string", None, True)},
    "OperationError": {"code": ("string", None, True), "message": ("string", None, True)},
    "OperationSummary": {
        "operationId": ("string", UUID, False), "createdDateTime": ("string", DATE, False),
        "status": ("string", ["Starting", "Running", "Succeeded", "Failed", "Cancelled",
                              "Stopping"], False),
        "process": ("object", "OperationProcessInfo", True),
        "egressProviderName": ("string", None, True), "isStoppable": ("boolean", None, False),
        "tags": ("array", "string", True)},
    "OperationStatus": None,  # OperationSummary + resourceLocation, error (below)
    "ProblemDetails": {"type": ("string", None, True), "title": ("string", None, True),
                       "status": ("integer", None, True), "detail": ("string", None, True),
                       "instance": ("string", None, True), "open": True},
}
SCHEMAS["OperationStatus"] = dict(SCHEMAS["OperationSummary"],
                                  resourceLocation=("string", None, True),
                                  error=("object", "OperationError", True))

# Members vigil adds to dotnet-monitor's objects (docs/http-api.md says what they hold).
EXTENSIONS = {
    "ProcessInfo": {"namespacePid", "exe", "runtime"},
    "DotnetMonitorInfo": {"operatingSystem", "configDirs", "stateDir", "configLoaded",
                          "features", "configurationErrors"},
    "CollectionRuleDetailedDescription": {"lastFired", "cooldownRemaining", "lastError",
                                          "configurationErrors"},
    "OperationSummary": {"collectionRule", "upload", "outputs"},
    "OperationStatus": {"collectionRule", "upload", "outputs"},
}

SPAN_RE = re.compile(r"^(\d+\.)?\d\d:\d\d:\d\d(\.\d{1,7})?$")


def validate(obj, name, where):
    schema = SCHEMAS[name]
    check(isinstance(obj, dict), "%s: %s expected, got %r" % (where, name, obj))
    for k in schema.get("required", []):
        check(k in obj, "%s: required member %s missing" % (where, k))
    if not schema.get("open"):
        extra = set(obj) - set(schema) - EXTENSIONS.get(name, set())
        check(not extra, "%s: members %s are not in %s (nor vigil's documented extensions)" %
              (where, sorted(extra), name))
    for k, spec in schema.items():
        if k in ("required", "open") or k not in obj:
            continue
        typ, fmt, nullable = spec
        v, at = obj[k], "%s.%s" % (where, k)
        if v is None:
            check(nullable, "%s: null, but not nullable" % at)
            continue
        if typ == "integer":
            check(isinstance(v, int) and not isinstance(v, bool), "%s: integer, got %r" % (at, v))
        elif typ == "boolean":
            check(isinstance(v, bool), "%s: boolean, got %r" % (at, v))
        elif typ == "string":
            check(isinstance(v, str), "%s: string, got %r" % (at, v))
            if fmt == UUID:
                check(h.UUID_RE.match(v.lower()), "%s: uuid, got %r" % (at, v))
            elif fmt == DATE:
                check(h.ISO_RE.match(v), "%s: date-time, got %r" % (at, v))
            elif fmt == SPAN:
                check(SPAN_RE.match(v), "%s: time-span, got %r" % (at, v))
            elif isinstance(fmt, list):
                check(v in fmt, "%s: one of %s, got %r" % (at, fmt, v))
        elif typ == "array":
            check(isinstance(v, list), "%s: array, got %r" % (at, v))
            for i, item in enumerate(v):
                if fmt == "string":
                    check(isinstance(item, str), "%s[%d]: string" % (at, i))
                else:
                    validate(item, fmt, "%s[%d]" % (at, i))
        elif typ == "object":
            validate(v, fmt, at)


def json_of(r, status, what):
    eq(r.status, status, "%s: status (%r)" % (what, r))
    ctype = r.header("Content-Type") or ""
    check(ctype.startswith("application/json"), "%s: Content-Type %r" % (what, ctype))
    return r.json()


def problem(r, status, what):
    """dotnet-monitor's error answers: application/problem+json ProblemDetails."""
    eq(r.status, status, "%s: status (%r)" % (what, r))
    ctype = r.header("Content-Type") or ""
    check(ctype.startswith("application/problem+json"), "%s: Content-Type %r" % (what, ctype))
    j = r.json()
    validate(j, "ProblemDetails", what)
    eq(j.get("status"), status, "%s: ProblemDetails.status" % what)
    return j


def run(env):
    key, digest = h.generate_key()
    t = env.target(threads=2, name="vgoapi")
    other = env.target(threads=1, name="vgoapiother")
    egress = "%s/egress" % env.tmp
    d = env.daemon({
        "Server": {"Auth": {"ApiKeyHash": digest}},
        "Discovery": {"PollInterval": "200ms"},
        "DefaultProcess": {"Filters": [{"Key": "ProcessName", "Value": t.name}]},
        "Egress": {"FileSystem": {"fs": {"DirectoryPath": egress}}},
        "CollectionRules": {"Idle": {
            "Filters": [{"Key": "ProcessName", "Value": t.name}],
            "Trigger": {"Type": "ThreadCount", "Settings": {"GreaterThan": 10000}}}},
    }).start()
    h.wait_for("the default process", lambda: d.get("/process", key=key).status == 200, 20)

    # --- GET /processes: ProcessIdentifier[]; the DefaultProcess one isDefault
    procs = json_of(d.get("/processes", key=key), 200, "/processes")
    check(isinstance(procs, list) and procs, "/processes: an array")
    for i, p in enumerate(procs):
        validate(p, "ProcessIdentifier", "/processes[%d]" % i)
    eq([p["pid"] for p in procs if p["isDefault"]], [t.pid], "isDefault: the DefaultProcess")
    uid = next(p["uid"] for p in procs if p["pid"] == t.pid)

    # --- GET /process: ProcessInfo, by pid, uid, name and (none) the default process
    for q in ("", "?pid=%d" % t.pid, "?uid=" + uid, "?name=" + t.name):
        j = json_of(d.get("/process" + q, key=key), 200, "/process" + q)
        validate(j, "ProcessInfo", "/process" + q)
        eq(j["pid"], t.pid, "/process%s pid" % q)
    eq(json_of(d.get("/process?pid=%d" % other.pid, key=key), 200, "other")["pid"], other.pid,
       "/process?pid= another process")
    problem(d.get("/process?pid=4194303", key=key), 400, "unknown pid")
    problem(d.get("/process?pid=abc", key=key), 400, "bad pid")
    problem(d.get("/process?uid=nope", key=key), 400, "bad uid")

    # --- GET /info: DotnetMonitorInfo
    info = json_of(d.get("/info", key=key), 200, "/info")
    validate(info, "DotnetMonitorInfo", "/info")

    # --- GET /collectionrules(/{name}): the default process when no pid is given
    rules = json_of(d.get("/collectionrules", key=key), 200, "/collectionrules")
    eq(sorted(rules), ["Idle"], "/collectionrules of the default process")
    for name, desc in rules.items():
        validate(desc, "CollectionRuleDescription", "/collectionrules." + name)
    for q in ("", "?pid=%d" % t.pid, "?uid=" + uid, "?name=" + t.name):
        j = json_of(d.get("/collectionrules/Idle" + q, key=key), 200, "/collectionrules/Idle" + q)
        validate(j, "CollectionRuleDetailedDescription", "/collectionrules/Idle" + q)
    eq(json_of(d.get("/collectionrules?pid=%d" % other.pid, key=key), 200, "other rules"), {},
       "no rule applies to the other process")
    problem(d.get("/collectionrules/Nope", key=key), 400, "unknown rule")

    # --- GET /metrics: Prometheus text, the default process's
    r = d.get("/metrics", key=key)
    eq(r.status, 200, "/metrics")
    check((r.header("Content-Type") or "").startswith("text/plain; version=0.0.4"),
          "/metrics Content-Type: %r" % r.header("Content-Type"))
    check(("pid=\"%d\"" % t.pid).encode() in r.body, "the default process in /metrics")
    check(("pid=\"%d\"" % other.pid).encode() not in r.body,
          "/metrics serves the default process only, as dotnet-monitor")

    # --- GET /dump with an egress provider: 202 Accepted, Location an absolute operation URL
    r = d.get("/dump?egressProvider=fs&type=Mini&tags=openapi,x", key=key)
    eq(r.status, 202, "/dump with egress: %r" % r)
    loc = r.header("Location") or ""
    m = re.fullmatch(r"http://[^/]+/operations/([0-9a-f-]{36})", loc)
    check(m, "Location: %r" % loc)
    op_path = urllib.parse.urlsplit(loc).path
    problem(d.get("/dump?egressProvider=nope", key=key), 400, "unknown egress provider")
    problem(d.get("/dump?type=Huge&egressProvider=fs", key=key), 400, "bad dump type")

    # --- GET /operations/{id}: OperationStatus (200 while running, 201 once Succeeded)
    def done():
        rr = d.get(op_path, key=key)
        jj = rr.json()
        return (rr, jj) if jj["status"] in ("Succeeded", "Failed", "Cancelled") else None
    r, j = h.wait_for("the dump operation", done, 60)
    eq((r.status, j["status"]), (201, "Succeeded"), "a succeeded operation is 201 Created")
    validate(j, "OperationStatus", "/operations/{id}")
    eq(sorted(j["tags"]), ["openapi", "x"], "tags")
    eq(j["process"]["pid"], t.pid, "the default process was dumped")
    problem(d.get("/operations/" + "0" * 8 + "-0000-4000-8000-" + "0" * 12, key=key), 400,
            "unknown operation")

    # --- GET /operations: OperationSummary[], filtered by pid, uid, name, tags
    ops = json_of(d.get("/operations", key=key), 200, "/operations")
    for i, o in enumerate(ops):
        validate(o, "OperationSummary", "/operations[%d]" % i)
    for q, n in [("pid=%d" % t.pid, 1), ("pid=%d" % other.pid, 0), ("uid=" + uid, 1),
                 ("name=" + t.name, 1), ("tags=openapi", 1), ("tags=openapi,y", 0)]:
        eq(len(json_of(d.get("/operations?" + q, key=key), 200, q)), n, "/operations?" + q)

    # --- DELETE /operations/{id}: 400 for what is not Running (dotnet-monitor's validation)
    problem(d.req("DELETE", op_path, key=key), 400, "cancel a finished operation")
    problem(d.req("DELETE", op_path + "?stop=true", key=key), 400, "stop a finished operation")

    # --- 401 without a key on every authenticated route, with dotnet-monitor's challenge
    for route in ("/processes", "/process", "/dump", "/info", "/collectionrules",
                  "/collectionrules/Idle", "/operations", op_path):
        r = d.get(route)
        eq(r.status, 401, "%s without a key" % route)
        check((r.header("WWW-Authenticate") or "").startswith("Bearer"),
              "%s: WWW-Authenticate Bearer" % route)

    # --- the artifact routes a runtime adapter serves (/gcdump, /trace, /stacks, /logs,
    # /livemetrics; shapes and artifacts on real runtimes: tests/runtimes/{jvm,node},
    # tests/nettrace/daemon_routes_test.py):
    # a native process has none of them, a 400 naming the runtimes that do, nothing started
    for method, route, which in (("GET", "/gcdump", "JVM, Node"),
                                 ("GET", "/trace", ".NET, JVM, Node"),
                                 ("POST", "/trace", ".NET, JVM, Node"),
                                 ("GET", "/stacks", "JVM, Node"),
                                 ("GET", "/logs", ".NET"), ("POST", "/logs", ".NET"),
                                 ("GET", "/livemetrics", ".NET"),
                                 ("POST", "/livemetrics", ".NET")):
        hdrs = {"Accept": "text/plain"}  # /logs: 406 without a log format
        hdrs.update({"Content-Type": "application/json"} if method == "POST" else {})
        r = d.req(method, route + "?pid=%d" % t.pid, key=key,
                  body=b"{}" if method == "POST" else None, headers=hdrs)
        j = problem(r, 400, method + " " + route)
        eq(j.get("code"), "VG_EUNSUPPORTED", "%s: the problem's code" % route)
        check("(native)" in j["detail"] and j["detail"].endswith("for %s processes" % which),
              "%s %s: %r" % (method, route, j))
        eq(d.req("HEAD", route + "?pid=%d" % t.pid, key=key).status, 405, "HEAD " + route)
    j = problem(d.get("/gcdump", key=key), 400, "/gcdump of the DefaultProcess")
    check("pid %d (native)" % t.pid in j["detail"], "the DefaultProcess is the target: %r" % j)
    problem(d.get("/trace?pid=%d&durationSeconds=x" % t.pid, key=key), 400, "durationSeconds")
    problem(d.get("/trace?pid=%d&profile=Disk" % t.pid, key=key), 400, "profile")
    eq(json_of(d.get("/operations", key=key), 200, "/operations")[0]["operationId"],
       op_path.rsplit("/", 1)[1], "a refused collection is no operation")

    # --- dotnet-monitor's routes for .NET features vigil does not run yet: a clear 400
    for method, route in (("GET", "/env"), ("POST", "/parameters"), ("GET", "/exceptions"),
                          ("POST", "/exceptions")):
        r = d.req(method, route + "?pid=%d" % t.pid, key=key,
                  body=b"{}" if method == "POST" else None,
                  headers={"Content-Type": "application/json"} if method == "POST" else None)
        j = problem(r, 400, method + " " + route)
        eq(j.get("code"), "VG_EUNSUPPORTED", "%s: the problem's code" % route)
        check("not supported" in j.get("detail", ""), "%s: %r" % (route, j))
    d.stop_and_check()


if __name__ == "__main__":
    h.run(run)
