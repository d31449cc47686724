#!/usr/bin/env python3
"""/metrics read by real parsers: a strict text-exposition-format 0.0.4 parser written here:
metric and label name grammar, escapes, HELP/TYPE before a family's samples, one TYPE and one HELP
per family, families not interleaved, counters named *_total, no duplicate series, values parse
as floats. The parser is itself checked against broken expositions first, so it cannot pass
anything. Then the values are checked against what the test knows about its targets.

With --promtool, the same scrape is read by promtool (Prometheus's own linter and parser)
instead; skipped where promtool (Debian package: prometheus) is not installed."""
import math
import os
import re
import subprocess
import sys

import vigil_test as h
from vigil_test import check, eq

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class ParseError(Exception):
    pass


def parse_value(s, where):
    if s in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(s.replace("Inf", "inf"))
    if not re.fullmatch(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)", s):
        raise ParseError("%s: value %r is not a float" % (where, s))
    return float(s)


def parse_labels(line, i, where):
    """Parses {a="b",...} starting at line[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        m = LABEL_RE.match(line, i)
        if not m:
            raise ParseError("%s: bad label name at %r" % (where, line[i:i + 20]))
        name = m.group(0)
        if name.startswith("__"):
            raise ParseError("%s: reserved label name %r" % (where, name))
        i = m.end()
        if line[i:i + 2] != '="':
            raise ParseError("%s: expected =\" after label %s" % (where, name))
        i += 2
        val = []
        while True:
            if i >= len(line):
                raise ParseError("%s: unterminated label value" % where)
            c = line[i]
            if c == "\\":
                nxt = line[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ParseError("%s: bad escape \\%s in a label value" % (where, nxt))
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                val.append(c)
                i += 1
        if name in labels:
            raise ParseError("%s: label %s twice" % (where, name))
        labels[name] = "".join(val)
        if line[i:i + 1] == ",":
            i += 1
        elif line[i:i + 1] != "}":
            raise ParseError("%s: expected , or } after a label" % where)


def parse_exposition(body):
    """Returns {family: {"type", "help", "samples": [(labels, value)]}}; raises ParseError."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ParseError("not UTF-8: %s" % e)
    if not text.endswith("\n"):
        raise ParseError("the exposition does not end with a newline")
    fams = {}
    order = []  # families in the order their samples appear
    series = set()
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = "line %d" % n
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME_RE.fullmatch(name):
                    raise ParseError("%s: bad metric name %r" % (where, name))
                f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
                if f["samples"]:
                    raise ParseError("%s: %s for %s after its samples" % (where, parts[1], name))
                key = parts[1].lower()
                if f[key] is not None:
                    raise ParseError("%s: second %s for %s" % (where, parts[1], name))
                arg = parts[3] if len(parts) > 3 else ""
                if key == "type" and arg not in TYPES:
                    raise ParseError("%s: unknown type %r" % (where, arg))
                if key == "help" and re.search(r"\\[^\\n]", arg):
                    raise ParseError("%s: bad escape in HELP" % where)
                f[key] = arg
            continue
        if not line.strip():
            raise ParseError("%s: empty line" % where)
        m = NAME_RE.match(line)
        if not m:
            raise ParseError("%s: bad metric name in %r" % (where, line[:40]))
        name, i = m.group(0), m.end()
        labels = {}
        if line[i:i + 1] == "{":
            labels, i = parse_labels(line, i, where)
        if line[i:i + 1] != " ":
            raise ParseError("%s: expected a space before the value" % where)
        rest = line[i + 1:].split(" ")
        if len(rest) not in (1, 2):
            raise ParseError("%s: trailing garbage %r" % (where, line[i:]))
        value = parse_value(rest[0], where)
        if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
            raise ParseError("%s: bad timestamp %r" % (where, rest[1]))
        f = fams.get(name)
        if f is None or f["type"] is None or f["help"] is None:
            raise ParseError("%s: sample of %s before its HELP and TYPE" % (where, name))
        if order and order[-1] != name:
            if name in order:
                raise ParseError("%s: samples of %s are not together" % (where, name))
        if not order or order[-1] != name:
            order.append(name)
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            raise ParseError("%s: duplicate series %s%s" % (where, name, labels))
        series.add(key)
        if f["type"] == "counter":
            if not name.endswith("_total"):
                raise ParseError("%s: counter %s does not end in _total" % (where, name))
            if math.isnan(value) or value < 0:
                raise ParseError("%s: counter %s is %r" % (where, name, value))
        f["samples"].append((labels, value))
    for name, f in fams.items():
        if not f["samples"]:
            raise ParseError("family %s has HELP/TYPE but no samples" % name)
    return fams


def parser_rejects_broken_input():
    good = b"# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n"
    parse_exposition(good)
    broken = [
        good[:-1],                                                   # no final newline
        good.replace(b"a_total{", b"a_total {"),                     # space before labels
        good + b"a_total{x=\"1\"} 4\n",                              # duplicate series
        good.replace(b"} 3", b"} three"),                            # value not a float
        good.replace(b"counter", b"gauge\n# TYPE a_total counter"),  # two TYPEs
        b"a 1\n# HELP a A.\n# TYPE a gauge\n",                        # sample before TYPE
        good.replace(b"a_total", b"a"),                              # counter without _total
        good.replace(b"x=\"1\"", b"x=\"\\q\""),                      # bad escape
        good.replace(b"x=\"1\"", b"1x=\"1\""),                       # bad label name
        good.replace(b"x=\"1\"", b"x=\"\xff\""),                     # not UTF-8
        good.replace(b"x=\"1\"", b"x=\"1\",x=\"2\""),                # label twice
        good.replace(b"} 3", b"} -1"),                               # negative counter
        good + b"# HELP b B.\n# TYPE b gauge\nb 1\na_total{x=\"2\"} 1\n",  # interleaved
        good.replace(b"{x=\"1\"}", b"{x=\"1}"),                      # unterminated value
    ]
    for i, body in enumerate(broken):
        try:
            parse_exposition(body)
        except ParseError:
            continue
        raise AssertionError("the parser accepted broken exposition #%d: %r" % (i, body))


def samples(fams, family, **labels):
    return [v for l, v in fams[family]["samples"] if all(l.get(k) == w for k, w in labels.items())]


def run(env):
    promtool = "--promtool" in sys.argv[1:]
    if promtool:
        h.need("promtool", "Debian package: prometheus")
    else:
        parser_rejects_broken_input()
    t = env.target(heap_mb=64, threads=2, name="vgmetrics")
    # a hostile name: not UTF-8, a quote, a backslash and a newline
    link = os.path.join(env.tmp.encode(), b'vg\xff"\\\nx')
    os.symlink(h.TARGET.encode(), link)
    odd = subprocess.Popen([link], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        check(odd.stdout.readline().startswith(b"ready"), "odd target started")
        # every process in /metrics, not only those rules watch (there are none here)
        d = env.daemon({"Discovery": {"PollInterval": "200ms", "SampleAllProcesses": True}},
                       no_auth=True).start()

        def scraped():
            body = h.request(d.metrics_port, "GET", "/metrics").body
            fams = parse_exposition(body)
            # CPU usage needs two sweeps: wait for it, so every family is there
            ok = all(n in fams and samples(fams, n, pid=str(p)) for p in (t.pid, odd.pid)
                     for n in ("process_threads", "process_cpu_usage_percent"))
            return (body, fams) if ok else None
        body, fams = h.wait_for("both targets in /metrics", scraped, 20)

        if promtool:
            cp = subprocess.run(["promtool", "check", "metrics"], input=body,
                                capture_output=True, timeout=60)
            eq((cp.returncode, cp.stdout + cp.stderr), (0, b""), "promtool check metrics")
            d.stop_and_check()
            return

        # the API listener serves the same families
        fams_api = parse_exposition(d.get("/metrics").body)
        eq(set(fams_api), set(fams), "families on the API listener")

        eq(samples(fams, "vigil_up"), [1.0], "vigil_up")
        check(samples(fams, "vigil_processes")[0] >= 3, "vigil_processes")
        eq(samples(fams, "vigil_rules"), [0.0], "vigil_rules")
        for name in ("vigil_rules_fired_total", "vigil_uploads_started_total",
                     "vigil_config_reloads_failed_total"):
            eq(samples(fams, name), [0.0], name)
        for name in ("process_threads", "process_resident_memory_bytes",
                     "process_cpu_seconds_total", "process_open_fds"):
            check(name in fams, "family %s present" % name)
            for labels, _ in fams[name]["samples"]:
                eq(sorted(labels), ["name", "pid", "runtime"], "labels of " + name)
        eq(samples(fams, "process_threads", pid=str(t.pid), name=t.name, runtime="native"),
           [3.0], "the target's thread count")
        rss = samples(fams, "process_resident_memory_bytes", pid=str(t.pid))[0]
        check(64 << 20 <= rss < 512 << 20, "the target's RSS covers its 64 MB heap: %r" % rss)
        check(samples(fams, "process_threads", pid=str(os.getpid())), "the test is listed")
        eq([l["name"] for l, _ in fams["process_threads"]["samples"]
            if l["pid"] == str(odd.pid)], ['vg\ufffd"\\\nx'],
           "hostile name label (vigil undoes the escaping of /proc/PID/status)")
        eq(fams["process_threads"]["type"], "gauge", "process_threads type")
        eq(fams["process_cpu_seconds_total"]["type"], "counter", "cpu seconds type")
        check(all(f["help"] for f in fams.values()), "every family has help text")
        r = h.request(d.metrics_port, "HEAD", "/metrics")
        eq((r.status, r.body), (200, b""), "HEAD /metrics")
        d.stop_and_check()
    finally:
        odd.kill()
        odd.wait()


if __name__ == "__main__":
    h.run(run)
