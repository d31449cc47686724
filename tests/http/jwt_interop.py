#!/usr/bin/env python3
"""Tokens made by dotnet-monitor's documented procedure (JwtGen, .NET IdentityModel) must get the
same verdict from vigil's verifier as from IdentityModel configured as dotnet-monitor configures
it; and the verdicts themselves must be the intended ones (a valid generatekey token authenticates;
a wrong signature, an expired token and alg none are refused).
The generated Subject and PublicKey, given as dotnet-monitor's environment variables, must pass
`vigil check` (the configuration layer reads the JWK as IdentityModel writes it), and a `vigil run`
configured with generatekey's key (and no other) must serve the API to that token only.
usage: jwt_interop.py JWTGEN_DIR JWT_CHECK VIGIL"""
import http.client
import os
import signal
import socket
import tempfile
import time
import json
import shutil
import subprocess
import sys

INTENDED = {
    "generatekey-ES384": True, "valid-ES256": True, "valid-ES512": True, "valid-RS256": True,
    "valid-RS384": True, "valid-RS512": True, "expired-within-clock-skew": True,
    "wrong-signature": False, "expired": False, "alg-none": False, "no-alg": False,
    "wrong-subject": False, "wrong-audience": False, "wrong-issuer": False,
    "tampered-payload": False,
}


def main():
    gen_dir, checker, vigil_bin = sys.argv[1], sys.argv[2], sys.argv[3]
    dotnet = shutil.which("dotnet")
    if not dotnet or not os.path.exists(f"{gen_dir}/bin/JwtGen.dll"):
        print("SKIP: dotnet or JwtGen (the jwtgen_apps fixture) is missing")
        return 77
    out = subprocess.run([dotnet, f"{gen_dir}/bin/JwtGen.dll"], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    cases = [json.loads(line) for line in out.splitlines() if line.strip()]
    seen = {c["name"] for c in cases}
    failures = []
    if seen != set(INTENDED):
        failures.append(f"cases differ: {sorted(seen ^ set(INTENDED))}")
    for c in cases:
        vigil = subprocess.run([checker, c["token"], c["publicKey"], c["subject"]], check=True,
                               capture_output=True, text=True, timeout=30).stdout.strip()
        v_ok, d_ok = vigil == "accepted", c["dotnet"] == "accepted"
        want = INTENDED.get(c["name"])
        status = "ok" if v_ok == d_ok == want else "FAIL"
        print(f"{status} {c['name']}: vigil {vigil}; IdentityModel {c['dotnet']}")
        if status != "ok":
            failures.append(c["name"])
    for c in cases:
        if not c["name"].startswith(("generatekey", "valid-")):
            continue
        env = dict(os.environ)
        env["DotnetMonitor_Authentication__MonitorApiKey__Subject"] = c["subject"]
        env["DotnetMonitor_Authentication__MonitorApiKey__PublicKey"] = c["publicKey"]
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run([vigil_bin, "check", "--config-dir", d], env=env,
                               capture_output=True, text=True, timeout=30)
        ok = r.returncode == 0 and "error" not in r.stderr
        print(f"{'ok' if ok else 'FAIL'} vigil check with {c['name']}'s key: exit {r.returncode}"
              f"{' ' + r.stderr.strip() if r.stderr.strip() else ''}")
        if not ok:
            failures.append("check " + c["name"])
    failures += daemon_accepts(vigil_bin, cases)
    # vigil generatekey --jwt makes what dotnet-monitor's validation accepts
    gk = json.loads(subprocess.run([vigil_bin, "generatekey", "--jwt", "--output", "json"],
                                   check=True, capture_output=True, text=True).stdout)
    token = gk["authorizationHeader"].split(" ", 1)[1]
    verdict = subprocess.run([dotnet, f"{gen_dir}/bin/JwtGen.dll", "verify", token,
                              gk["publicKey"], gk["subject"]], check=True, capture_output=True,
                             text=True, timeout=120).stdout.strip()
    mine = subprocess.run([checker, token, gk["publicKey"], gk["subject"]], check=True,
                          capture_output=True, text=True).stdout.strip()
    ok = verdict == "accepted" and mine == "accepted"
    print("%s vigil generatekey --jwt: IdentityModel %s, vigil %s" %
          ("ok" if ok else "FAIL", verdict, mine))
    if not ok:
        failures.append("generatekey")
    total = 1 + len(cases) * 2 + sum(c["name"].startswith(("generatekey", "valid-")) for c in cases)
    print(f"{total - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(port, token):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", "/info", headers={"Authorization": "Bearer " + token} if token else {})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def daemon_accepts(vigil_bin, cases):
    """The API of a daemon configured with generatekey's Subject and PublicKey: each case's token
    must get 200 when IdentityModel accepts it (with that key and subject) and 401 otherwise."""
    gen = next(c for c in cases if c["name"] == "generatekey-ES384")
    failures = []
    with tempfile.TemporaryDirectory() as d:
        conf, state = os.path.join(d, "conf"), os.path.join(d, "state")
        os.makedirs(conf)
        api, metrics = free_port(), free_port()
        with open(os.path.join(conf, "settings.json"), "w") as f:
            json.dump({"Authentication": {"MonitorApiKey": {"Subject": gen["subject"],
                                                            "PublicKey": gen["publicKey"]}},
                       "Server": {"MetricsUrls": ["http://127.0.0.1:%d" % metrics]}}, f)
        log = open(os.path.join(d, "stderr"), "w+")
        p = subprocess.Popen([vigil_bin, "run", "--config-dir", conf, "--state-dir", state,
                              "--urls", "http://127.0.0.1:%d" % api], stdout=subprocess.DEVNULL,
                             stderr=log)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and p.poll() is None:
                try:
                    if status(api, None) == 401:
                        break
                except OSError:
                    time.sleep(0.05)
            if p.poll() is not None:
                log.seek(0)
                return ["daemon did not start: " + log.read()[-2000:]]
            for c in cases:
                # IdentityModel's verdict holds for the daemon's key and subject when the case
                # used them; wrong-subject reuses generatekey's token, valid for the daemon
                same = c["publicKey"] == gen["publicKey"] and c["subject"] == gen["subject"]
                ok_dotnet = c["token"] == gen["token"] or (same and c["dotnet"] == "accepted")
                want = 200 if ok_dotnet else 401
                got = status(api, c["token"])
                ok = got == want
                print("%s API with %s's token: %d (expected %d)" %
                      ("ok" if ok else "FAIL", c["name"], got, want))
                if not ok:
                    failures.append("api " + c["name"])
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
    return failures


if __name__ == "__main__":
    sys.exit(main())
