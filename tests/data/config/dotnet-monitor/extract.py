#!/usr/bin/env python3
"""Builds the dotnet-monitor configuration corpus from dotnet-monitor's own documentation.

  extract.py DOTNET_MONITOR_CHECKOUT [OUT_DIR]

Every fenced code block of documentation/*.md, documentation/configuration/*.md and
documentation/collectionrules/*.md is looked at. Each one that holds configuration becomes a case
directory in the form the example is written in:
  - JSON                         -> settings.json
  - Kubernetes ConfigMap (yaml)  -> one file per key (key-per-file, as the ConfigMap is mounted)
  - ConfigMap/Secret manifests and `kubectl create secret --from-literal` -> key-per-file too
  - Kubernetes environment variables (`- name: X / value: Y`) and `export X=Y` -> `env`
with `case.txt` saying where it comes from. Every other block is listed in INDEX.md with the
reason it is not a configuration (API bodies, command output, manifests of other kinds...), so
nothing in the documentation is skipped without a word. The verdicts (`expected`) are written by
run_corpus.py --update and reviewed by hand; see README.md.
"""
import json
import os
import re
import shutil
import sys

DOC_DIRS = ["documentation", "documentation/configuration", "documentation/collectionrules"]

# The sections a JSON object must start with to be a configuration (dotnet-monitor's schema).
SECTIONS = {"collectionrules", "templates", "collectionruledefaults", "egress", "urls", "metrics",
            "authentication", "diagnosticport", "defaultprocess", "globalcounter",
            "inprocessfeatures", "corsconfiguration", "logging", "kestrel", "storage",
            "dotnetmonitordebug", "$schema"}


def slug(s):
    s = re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()
    return s[:48] or "x"


def code_blocks(text):
    """(line, info, body, summary, heading, section) for each fenced block; section is
    ("trigger", TYPE) or ("action", TYPE) under a "### `TYPE` Trigger/Action" heading."""
    lines = text.split("\n")
    i, summary, heading, section = 0, None, "", (None, None)
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*<summary>(.*)</summary>", line)
        if m:
            summary = m.group(1).strip()
        if re.match(r"\s*</details>", line):
            summary = None
        h = re.match(r"(#+)\s+(.*)", line)
        if h:
            heading, summary = h.group(2).strip(), None
            t = re.match(r"`(\w+)`\s+(Trigger|Action)", heading)
            if t:
                section = (t.group(2).lower(), t.group(1))
            elif len(h.group(1)) <= 2:
                section = (None, None)
        m = re.match(r"(\s*)```\s*(\S*)", line)
        if m:
            indent, info = m.group(1), m.group(2).lower()
            body, start = [], i + 1
            i += 1
            while i < len(lines) and not re.match(r"\s*```\s*$", lines[i]):
                body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
                i += 1
            yield start, info, "\n".join(body), summary, heading, section
        i += 1


def loads_lenient(text):
    """JSON as .NET's configuration reads it: // and /* */ comments, trailing commas."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        else:
            out.append(c)
        i += 1
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", "".join(out)))


ELISION = re.compile(r"^\s*\.\.\.\s*,?\s*$", re.M)


def as_json(body):
    try:
        return loads_lenient(body), None
    except ValueError:
        return None, "not JSON (command output or text with placeholders)"


def drop_elisions(body):
    """The documentation shortens some JSON with `...` lines; without them it is JSON."""
    return ELISION.sub("", body) if ELISION.search(body) else None


def yaml_scalar(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1]
    return v


def configmap_keys(body):
    """`Key__Path: "value"` lines of a ConfigMap's data."""
    out = []
    for line in body.split("\n"):
        if not line.strip() or line.strip().startswith("#"):
            continue
        m = re.match(r"\s*([A-Za-z0-9_.$]+):\s*(.*)$", line)
        if not m:
            return None
        out.append((m.group(1), yaml_scalar(m.group(2))))
    return out or None


def env_list(body):
    """`- name: X` / `value: Y` pairs of a container's env list."""
    out, name = [], None
    for line in body.split("\n"):
        s = line.strip()
        if not s:
            continue
        m = re.match(r"-\s*name:\s*(.*)$", s)
        if m:
            name = yaml_scalar(m.group(1))
            continue
        m = re.match(r"value:\s*(.*)$", s)
        if m and name is not None:
            out.append((name, yaml_scalar(m.group(1))))
            name = None
            continue
        return None
    return out or None


def manifest_data(body):
    """The data of a ConfigMap manifest (kind: ConfigMap, data: ...)."""
    if not re.search(r"^kind:\s*ConfigMap\s*$", body, re.M):
        return None
    m = re.search(r"^data:[ \t]*\n((?:[ \t]+\S.*(?:\n|$))+)", body, re.M)
    return configmap_keys(m.group(1)) if m else None


def from_literals(body):
    keys = re.findall(r"--from-literal=([A-Za-z0-9_.]+)=('[^']*'|\"[^\"]*\"|\S+)", body)
    return [(k, yaml_scalar(v)) for k, v in keys] or None


def exports(body):
    keys = re.findall(r"^\s*export\s+([A-Za-z0-9_.]+)=(\"[^\"]*\"|'[^']*'|\S+)", body, re.M)
    # DOTNET_DiagnosticPorts & co. configure the app, not dotnet-monitor
    keys = [(k, yaml_scalar(v)) for k, v in keys if "__" in k or k.lower().startswith(
        "dotnetmonitor_")]
    return keys or None


RULE = "RuleName"  # the rule name the documentation's fragments use


def is_config(obj, section):
    """A whole configuration: its keys are dotnet-monitor's sections (an action's Settings has
    an Egress too, a name rather than providers). Unknown keys beside CollectionRules or
    Templates are kept: the documentation has one misplaced rule, which dotnet-monitor ignores."""
    if not isinstance(obj, dict) or not obj:
        return False
    keys = {k.lower(): v for k, v in obj.items()}
    if "egress" in keys and not isinstance(keys["egress"], dict):
        return False
    if all(k in SECTIONS for k in keys):
        return True
    return section[0] is None and ("collectionrules" in keys or "templates" in keys)


def wrap_fragment(obj, body, section):
    """A settings fragment (a trigger's or action's Settings, an action list, Filters or Limits)
    placed where the documentation's ConfigMap version of it puts it. Returns (text, how) or
    (None, why). The fragment's text is kept as written, on its original lines."""
    kind, name = section
    parts = {"filters", "trigger", "actions", "limits"}
    if isinstance(obj, dict) and obj and set(k.lower() for k in obj) <= parts:
        return ('{"CollectionRules": {"%s": ' % RULE + body + "}}",
                "placed as CollectionRules.%s" % RULE)
    if isinstance(obj, dict) and obj and all(
            isinstance(v, dict) and v and set(k.lower() for k in v) <= parts for v in obj.values()):
        return '{"CollectionRules": ' + body + "}", "placed under CollectionRules"
    if kind == "trigger" and isinstance(obj, dict):
        return ('{"CollectionRules": {"%s": {"Trigger": {"Type": "%s", "Settings": ' % (RULE, name)
                + body + "}}}}", "placed as CollectionRules.%s.Trigger.Settings" % RULE)
    if kind == "action" and isinstance(obj, list):
        return ('{"CollectionRules": {"%s": {"Actions": ' % RULE + body + "}}}",
                "placed as CollectionRules.%s.Actions" % RULE)
    if kind == "action" and isinstance(obj, dict):
        return ('{"CollectionRules": {"%s": {"Actions": [{"Type": "%s", "Settings": ' % (RULE, name)
                + body + "}]}}}", "placed as CollectionRules.%s.Actions[0].Settings" % RULE)
    return None, "JSON that is not dotnet-monitor configuration (a token, a key or output)"


def classify(info, body, summary, section):
    """(form, payload, note) or (None, reason, None)."""
    summ = (summary or "").lower()
    if summ == "command line":
        return None, "a dotnet-monitor command line, not configuration", None
    if info == "json" or summ.startswith("json"):
        obj, why = as_json(body)
        elided = drop_elisions(body) if obj is None else None
        if elided is not None:
            obj, why = as_json(elided)
            if obj is not None:
                form, text, note = classify(info, elided, summary, section)
                if form:
                    note = "; ".join(filter(None, ["the documentation's `...` lines removed",
                                                   note]))
                return form, text, note
        if obj is None:
            return None, why, None
        if is_config(obj, section):
            return "json", body, None
        text, how = wrap_fragment(obj, body, section)
        if text is None:
            keys = ", ".join(list(obj)[:4]) if isinstance(obj, dict) else "a list"
            return None, "%s (keys: %s)" % (how, keys), None
        return "json", text, "a fragment of a rule, " + how
    if "environment variables" in summ:
        pairs = env_list(body)
        return ("env", pairs, None) if pairs else (None, "an unreadable env list", None)
    if "configmap" in summ:
        pairs = configmap_keys(body)
        return ("key-per-file", pairs, None) if pairs else (None, "an unreadable ConfigMap", None)
    if info in ("yaml", "yml"):
        pairs = manifest_data(body)
        if pairs:
            return "key-per-file", pairs, "the data of a ConfigMap manifest, mounted"
        if re.search(r"^\s*-\s*name:", body, re.M) and re.search(r"^\s*value:", body, re.M):
            pairs = env_list(body)
            if pairs:
                return "env", pairs, None
        return None, "a Kubernetes manifest or YAML output, not dotnet-monitor configuration", None
    if info in ("sh", "bash", "cmd", "powershell", "") or "secret" in summ:
        pairs = from_literals(body)
        if pairs:
            return "key-per-file", pairs, "a Secret's literals, mounted"
        pairs = exports(body)
        if pairs:
            return "env", pairs, None
        return None, "a shell command, not configuration", None
    return None, "a %s block, not configuration" % (info or "plain"), None


def flat_keys(form, payload):
    """The case's settings as (colon-free) key paths, lowercased, for completion checks."""
    if form != "json":
        out = {}
        for k, v in payload:
            k = re.sub(r"^dotnetmonitor_", "", k, flags=re.I)
            out[k.lower().replace("__", ":")] = v
        return out
    out = {}

    def walk(prefix, o):
        if isinstance(o, dict):
            for k, v in o.items():
                walk(prefix + [str(k)], v)
        elif isinstance(o, list):
            for i, v in enumerate(o):
                walk(prefix + [str(i)], v)
        else:
            out[":".join(prefix).lower()] = o
    walk([], loads_lenient(payload))
    return out


def completion(form, payload, section):
    """The settings a fragment leaves to the rest of the document: the trigger or action type
    its section names, a trigger for rules that show only actions, filters or limits, and the
    egress providers it names. None when the case stands alone."""
    keys = flat_keys(form, payload)
    rule = {}
    rules = {k.split(":")[1] for k in keys if k.startswith("collectionrules:") and k.count(":") > 1}
    kind, name = section
    for r in rules:
        has_trigger = any(k.startswith("collectionrules:%s:trigger" % r) for k in keys)
        if kind == "trigger" and "collectionrules:%s:trigger:type" % r not in keys:
            rule.setdefault(r, {})["Trigger"] = {"Type": name}
        elif not has_trigger:
            rule.setdefault(r, {})["Trigger"] = {"Type": "Startup"}
        if (kind == "action" and "collectionrules:%s:actions:0:type" % r not in keys and
                any(k.startswith("collectionrules:%s:actions:0:" % r) for k in keys)):
            rule.setdefault(r, {})["Actions"] = [{"Type": name}]
    named = {str(v) for k, v in keys.items() if k.endswith(":egress") and v}
    defined = {k.split(":")[2] for k in keys if k.startswith("egress:") and k.count(":") >= 3}
    defined = {d.lower() for d in defined}
    out = {}
    if rule:
        # rule names are case-insensitive: keep the documentation's spelling
        out["CollectionRules"] = {RULE if r == RULE.lower() else r: v for r, v in rule.items()}
    missing = sorted(n for n in named if n.lower() not in defined)
    if missing:
        out["Egress"] = {"FileSystem": {n: {"DirectoryPath": "/tmp/vigil-dm-corpus/" + n}
                                        for n in missing}}
    return out or None


def env_completion(context, prefix=""):
    """The completion as unprefixed environment variables: the lowest precedence of all sources
    (dotnet-monitor's order), merged key by key with the example whatever its form."""
    out = []
    if isinstance(context, dict):
        for k, v in context.items():
            out += env_completion(v, prefix + k + "__")
    elif isinstance(context, list):
        for i, v in enumerate(context):
            out += env_completion(v, prefix + str(i) + "__")
    else:
        out.append((prefix[:-2], str(context)))
    return out


def write_case(out, name, form, payload, source, note, context):
    d = os.path.join(out, name)
    os.makedirs(d)
    env = []
    if form == "json":
        with open(os.path.join(d, "settings.json"), "w") as f:
            f.write(payload.rstrip() + "\n")
    elif form == "key-per-file":
        for k, v in payload:
            with open(os.path.join(d, k), "w") as f:
                f.write(v)
    else:
        env = list(payload)
    completion_env = env_completion(context) if context else []
    if env or completion_env:
        with open(os.path.join(d, "env"), "w") as f:
            for k, v in completion_env + env:
                f.write("%s=%s\n" % (k, v))
    with open(os.path.join(d, "case.txt"), "w") as f:
        f.write("source: %s\nform: %s\n" % (source, form))
        if note:
            f.write("note: %s\n" % note)
        if completion_env:
            f.write("completed by: %s (what the rest of the document defines, as the lowest "
                    "precedence source)\n" % ", ".join("%s=%s" % kv for kv in completion_env))


def main():
    root = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.abspath(__file__))
    cases = os.path.join(out, "cases")
    # keep the reviewed parts of existing cases (why rejected, expected) across a re-extraction
    kept, expected = {}, {}
    if os.path.isdir(cases):
        for n in os.listdir(cases):
            p = os.path.join(cases, n, "case.txt")
            if os.path.exists(p):
                kept[n] = [l for l in open(p) if l.startswith("why rejected:")]
            p = os.path.join(cases, n, "expected")
            if os.path.exists(p):
                expected[n] = open(p).read()
        shutil.rmtree(cases)
    os.makedirs(cases)
    index, n_cases = [], 0
    for sub in DOC_DIRS:
        base = os.path.join(root, sub)
        for fn in sorted(os.listdir(base)):
            if not fn.endswith(".md"):
                continue
            rel = os.path.join(sub, fn)
            text = open(os.path.join(base, fn), encoding="utf-8").read()
            k = 0
            for line, info, body, summary, heading, section in code_blocks(text):
                form, payload, note = classify(info, body, summary, section)
                where = "%s:%d" % (rel, line)
                label = "%s (%s)" % (heading, summary or info or "plain")
                if form is None:
                    index.append("| %s | %s | skipped: %s |" % (where, label, payload))
                    continue
                k += 1
                name = "%s-%02d-%s" % (slug(fn[:-3]), k, form)
                context = completion(form, payload, section)
                write_case(cases, name, form, payload, "%s %s" % (where, label), note, context)
                if kept.get(name):
                    with open(os.path.join(cases, name, "case.txt"), "a") as f:
                        f.writelines(kept[name])
                if name in expected:
                    with open(os.path.join(cases, name, "expected"), "w") as f:
                        f.write(expected[name])
                index.append("| %s | %s | case `%s` |" % (where, label, name))
                n_cases += 1
    with open(os.path.join(out, "INDEX.md"), "w") as f:
        f.write("# Code blocks of dotnet-monitor's documentation\n\n"
                "Generated by extract.py: every fenced block of the documents it reads, as a "
                "corpus case or with the reason it is not configuration.\n\n"
                "| where | block | what |\n|---|---|---|\n")
        f.write("\n".join(index) + "\n")
    print("%d cases, %d blocks" % (n_cases, len(index)))


if __name__ == "__main__":
    main()
