#!/usr/bin/python3
"""examples/kubernetes/: every manifest parses with two real Kubernetes clients, and every rules
file in them passes `vigil check`.

- kubectl (Debian's kubernetes-client) reads each file with a client-side dry run: YAML, object
  shape, kinds mapped to API resources. kubectl needs the API's discovery documents for that
  mapping; no cluster can run here, so a small local HTTP server answers those (and nothing
  else; no object is sent anywhere).
- The Kubernetes Python client (Debian's python3-kubernetes) holds the API's schema: each object
  is checked field by field against its models (a misspelt or misplaced field, a wrong type),
  then deserialized by the client, which refuses missing required fields.

Also checked: the Secret holds every ${file:...} the rules read, what the pods mount exists, and
docs/kubernetes.md points at these files instead of carrying copies. Debian's python3 runs it
(python3-yaml, python3-kubernetes).

    kubernetes_test.py SOURCE_DIR VIGIL"""
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading

import yaml

SRC, VIGIL = sys.argv[1], sys.argv[2]
EXAMPLES = os.path.join(SRC, "examples", "kubernetes")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def resources(group_version, items):
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": [{"name": name, "singularName": name[:-1], "namespaced": True,
                           "kind": kind, "verbs": ["create", "get", "list", "delete"]}
                          for name, kind in items]}


DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
        "name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]},
    "/api/v1": resources("v1", [("configmaps", "ConfigMap"), ("secrets", "Secret"),
                                ("pods", "Pod"), ("serviceaccounts", "ServiceAccount")]),
    "/apis/apps/v1": resources("apps/v1", [("deployments", "Deployment"),
                                           ("daemonsets", "DaemonSet")]),
}


class Discovery(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = DISCOVERY.get(self.path.split("?")[0])
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def schema_errors(value, typ, path, kc):
    """Where value does not fit the client's type typ ('V1PodSpec', 'list[V1Container]',
    'dict(str, str)', 'str', ...)."""
    if typ.startswith("list["):
        if not isinstance(value, list):
            return ["%s: expected a list" % path]
        return [e for i, v in enumerate(value)
                for e in schema_errors(v, typ[5:-1], "%s[%d]" % (path, i), kc)]
    if typ.startswith("dict("):
        if not isinstance(value, dict):
            return ["%s: expected a map" % path]
        inner = typ[typ.index(",") + 1:-1].strip()
        return [e for k, v in value.items()
                for e in schema_errors(v, inner, "%s.%s" % (path, k), kc)]
    simple = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str}
    if typ in simple:
        ok = isinstance(value, simple[typ]) and not (typ == "int" and isinstance(value, bool))
        return [] if ok else ["%s: expected %s, got %r" % (path, typ, value)]
    if typ == "object":  # IntOrString, Quantity, raw JSON
        return []
    model = getattr(kc, typ)
    if not isinstance(value, dict):
        return ["%s: expected an object (%s)" % (path, typ)]
    by_json = {j: a for a, j in model.attribute_map.items()}
    out = []
    for k, v in value.items():
        if k not in by_json:
            out.append("%s.%s: unknown field (%s has %s)" % (
                path, k, typ, ", ".join(sorted(by_json))))
        else:
            out += schema_errors(v, model.openapi_types[by_json[k]], "%s.%s" % (path, k), kc)
    return out


def check_schema(obj, name):
    import kubernetes.client as kc
    typ = {"ConfigMap": "V1ConfigMap", "Secret": "V1Secret", "Pod": "V1Pod",
           "ServiceAccount": "V1ServiceAccount", "Deployment": "V1Deployment",
           "DaemonSet": "V1DaemonSet"}.get(obj.get("kind"))
    if not typ:
        fail("%s: no schema for kind %r" % (name, obj.get("kind")))
    errs = schema_errors(obj, typ, obj["kind"], kc)
    if errs:
        fail("%s: %s %s does not fit the Kubernetes API:\n  %s" % (
            name, obj["kind"], obj["metadata"]["name"], "\n  ".join(errs)))

    class Response:  # what ApiClient.deserialize reads
        data = json.dumps(obj)
    try:
        kc.ApiClient().deserialize(Response(), typ)
    except ValueError as e:
        fail("%s: %s %s: %s" % (name, obj["kind"], obj["metadata"]["name"], e))


def main():
    if not subprocess.run(["sh", "-c", "command -v kubectl"], capture_output=True).stdout:
        print("SKIP: kubectl not found (Debian's kubernetes-client)")
        sys.exit(77)
    try:
        import kubernetes.client  # noqa: F401
    except ImportError:
        print("SKIP: the Kubernetes Python client is missing (Debian's python3-kubernetes)")
        sys.exit(77)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="vg-k8s-")
    kubeconfig = os.path.join(tmp, "kubeconfig")
    with open(kubeconfig, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "local",
                   "clusters": [{"name": "local", "cluster": {
                       "server": "http://127.0.0.1:%d" % server.server_address[1]}}],
                   "contexts": [{"name": "local", "context": {"cluster": "local",
                                                              "namespace": "default"}}],
                   "users": [{"name": "none", "user": {}}]}, f)
    env = dict(os.environ, KUBECONFIG=kubeconfig, HOME=tmp)
    files = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".yaml"))
    if not files:
        fail("no manifests in " + EXAMPLES)
    objects = []
    for name in files:
        path = os.path.join(EXAMPLES, name)
        r = subprocess.run(["kubectl", "create", "--dry-run=client", "--validate=false", "-o",
                            "json", "-f", path], capture_output=True, text=True, env=env,
                           timeout=120)
        if r.returncode != 0:
            fail("kubectl create --dry-run=client -f %s:\n%s" % (name, r.stderr))
        got, text, dec = [], r.stdout.strip(), json.JSONDecoder()
        while text:  # one JSON document per object
            o, end = dec.raw_decode(text)
            got += o["items"] if o.get("kind") == "List" else [o]
            text = text[end:].strip()
        with open(path) as f:
            given = [d for d in yaml.safe_load_all(f) if d]
        if len(got) != len(given):
            fail("%s: kubectl understood %d objects of %d" % (name, len(got), len(given)))
        for g, k in zip(given, got):
            if (g["kind"], g["metadata"]["name"]) != (k["kind"], k["metadata"]["name"]):
                fail("%s: kubectl read %s/%s as %s/%s" % (name, g["kind"], g["metadata"]["name"],
                                                         k["kind"], k["metadata"]["name"]))
            check_schema(g, name)
            objects.append((name, k))
        print("ok  %s: %s" % (name, ", ".join("%s/%s" % (k["kind"], k["metadata"]["name"])
                                               for k in got)))
    by_kind = {}
    for name, o in objects:
        by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    for kind in ("ConfigMap", "Secret", "Deployment", "DaemonSet"):
        if kind not in by_kind:
            fail("no %s in the examples" % kind)
    secret_keys = set(next(iter(by_kind["Secret"].values())).get("stringData", {}))
    # every rules file passes vigil check; every secret they read is in the Secret
    for cm in by_kind["ConfigMap"].values():
        d = os.path.join(tmp, cm["metadata"]["name"])
        os.makedirs(d)
        rules = [k for k in cm["data"] if re.search(r"\.(ya?ml|json)$", k)]
        if not rules:
            continue
        for k in rules:
            with open(os.path.join(d, k), "w") as f:
                f.write(cm["data"][k])
            for ref in re.findall(r"\$\{file:/var/run/secrets/vigil/([^}]+)\}", cm["data"][k]):
                if ref not in secret_keys:
                    fail("ConfigMap %s/%s reads secret %r, which secret-egress.yaml lacks" %
                         (cm["metadata"]["name"], k, ref))
        r = subprocess.run([VIGIL, "check", "--config-dir", d], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            fail("vigil check of ConfigMap %s:\n%s%s" % (cm["metadata"]["name"], r.stdout,
                                                         r.stderr))
        print("ok  vigil check of ConfigMap %s (%s)" % (cm["metadata"]["name"],
                                                       ", ".join(rules)))
    # what the pods mount exists
    for kind in ("Deployment", "DaemonSet"):
        for o in by_kind[kind].values():
            spec = o["spec"]["template"]["spec"]
            vols = {v["name"]: v for v in spec["volumes"]}
            for c in spec.get("initContainers", []) + spec["containers"]:
                for m in c.get("volumeMounts", []):
                    if m["name"] not in vols:
                        fail("%s %s: container %s mounts unknown volume %s" % (
                            kind, o["metadata"]["name"], c["name"], m["name"]))
            for v in vols.values():
                ref = (v.get("configMap") or {}).get("name")
                if ref and ref not in by_kind["ConfigMap"]:
                    fail("%s: volume %s uses unknown ConfigMap %s" % (kind, v["name"], ref))
                ref = (v.get("secret") or {}).get("secretName")
                if ref and ref not in by_kind["Secret"]:
                    fail("%s: volume %s uses unknown Secret %s" % (kind, v["name"], ref))
                for it in (v.get("configMap") or {}).get("items", []):
                    if it["key"] not in by_kind["ConfigMap"][v["configMap"]["name"]]["data"]:
                        fail("%s: volume %s uses unknown key %s" % (kind, v["name"], it["key"]))
    # the docs point at these files and carry no copies
    with open(os.path.join(SRC, "docs", "kubernetes.md")) as f:
        doc = f.read()
    for name in files:
        if "examples/kubernetes/" + name not in doc:
            fail("docs/kubernetes.md does not reference examples/kubernetes/%s" % name)
    if re.search(r"^\s*apiVersion:", doc, re.M):
        fail("docs/kubernetes.md carries an inline manifest: reference examples/kubernetes/")
    server.shutdown()
    print("PASS kubernetes examples (%s)" % subprocess.run(
        ["kubectl", "version", "--client"], capture_output=True, text=True,
        env=env).stdout.splitlines()[0])


main()
