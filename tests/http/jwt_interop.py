#!/usr/bin/env python3
"""Tokens made by dotnet-monitor's documented procedure (JwtGen, .NET IdentityModel) must get the
same verdict from vigil's verifier as from IdentityModel configured as dotnet-monitor configures
it; and the verdicts themselves must be the intended ones (a valid generatekey token authenticates;
a wrong signature, an expired token and alg none are refused).
The generated Subject and PublicKey, given as dotnet-monitor's environment variables, must pass
`vigil check` (the configuration layer reads the JWK as IdentityModel writes it).
usage: jwt_interop.py JWTGEN_DIR JWT_CHECK VIGIL"""
import os
import tempfile
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
    if not dotnet:
        print("dotnet not found: skipped")
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
    total = len(cases) + sum(c["name"].startswith(("generatekey", "valid-")) for c in cases)
    print(f"{total - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
