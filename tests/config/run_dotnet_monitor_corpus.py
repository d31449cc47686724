#!/usr/bin/env python3
"""Runs `vigil check` on every example of dotnet-monitor's documentation
(tests/data/config/dotnet-monitor/cases, see its README.md) and compares the verdict and the
whole output with each case's `expected`.

  run_dotnet_monitor_corpus.py VIGIL CORPUS_DIR [--update]

A case is run in a copy holding only its configuration (JSON file, key-per-file entries), with
its `env` as the only environment variables (plus PATH, and HOME set to an empty directory so
no ~/.aws leaks in).

Verdicts:
  accepted                                  exit 0, nothing to say
  accepted with warnings                    exit 0, warnings (ignored keys and the like)
  accepted; .NET-only, not run yet: X, Y    exit 0; the rule or setting needs .NET features
                                            vigil does not run yet, each named
  rejected                                  exit 1; case.txt must say why (`why rejected:`)
--update writes `expected` from the current output (review the diff)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

NOT_RUN = re.compile(r"\[runtime features not run yet: ([^\]]+)\]")
UNSUPPORTED_WARNING = re.compile(r"warning: ([^:]+): .*not supported by vigil yet")


def run_case(vigil, case, work):
    cfg = os.path.join(work, "case")
    home = os.path.join(work, "home")
    for d in (cfg, home):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(cfg)
    os.makedirs(home)
    for name in os.listdir(case):
        if name in ("case.txt", "expected", "env"):
            continue
        shutil.copy(os.path.join(case, name), cfg)
    args = [vigil, "check", "--config-dir", "."]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LC_ALL": "C"}
    if os.path.exists(os.path.join(case, "env")):
        for line in open(os.path.join(case, "env")):
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    r = subprocess.run(args, cwd=cfg, env=env, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def verdict(rc, out, err):
    if rc != 0:
        return "rejected" if rc == 1 else "vigil failed (exit %d)" % rc
    features = []
    for m in NOT_RUN.finditer(out):
        features += [f.strip() for f in m.group(1).split(",")]
    for m in UNSUPPORTED_WARNING.finditer(err):
        features.append(m.group(1))
    features = sorted(set(features), key=str.lower)
    others = [l for l in err.splitlines()
              if ": warning: " in l and not UNSUPPORTED_WARNING.search(l)]
    if features:
        v = "accepted; .NET-only, not run yet: " + ", ".join(features)
        return v + ("; with warnings" if others else "")
    return "accepted with warnings" if others else "accepted"


def render(v, rc, out, err):
    return "verdict: %s\nexit: %d\n--- stdout\n%s--- stderr\n%s" % (v, rc, out, err)


def main():
    vigil, corpus = os.path.abspath(sys.argv[1]), sys.argv[2]
    if os.geteuid() != 0:
        # the expected outputs include vigil check's "can this directory be created" answers
        # for paths such as /artifacts, which are root's
        print("not root: the dotnet-monitor corpus is skipped")
        return 77
    update = "--update" in sys.argv[3:]
    cases_dir = os.path.join(corpus, "cases")
    passed, failed, counts = 0, [], {}
    with tempfile.TemporaryDirectory() as work:
        for name in sorted(os.listdir(cases_dir)):
            case = os.path.join(cases_dir, name)
            rc, out, err = run_case(vigil, case, work)
            v = verdict(rc, out, err)
            got = render(v, rc, out, err)
            kind = v.split(";")[0]
            counts[kind] = counts.get(kind, 0) + 1
            meta = open(os.path.join(case, "case.txt")).read()
            problems = []
            if v == "rejected" and "why rejected:" not in meta:
                problems.append("rejected, and case.txt does not say why")
            if v != "rejected" and "why rejected:" in meta:
                problems.append("case.txt says why it is rejected, but it is not")
            exp_path = os.path.join(case, "expected")
            if update:
                with open(exp_path, "w") as f:
                    f.write(got)
            elif not os.path.exists(exp_path) or open(exp_path).read() != got:
                want = open(exp_path).read() if os.path.exists(exp_path) else "(no expected)"
                problems.append("output differs:\n--- expected\n%s\n--- got\n%s" % (want, got))
            if problems:
                failed.append(name)
                print("FAIL %s: %s" % (name, "\n".join(problems)))
            else:
                passed += 1
    print("dotnet-monitor documentation corpus: " +
          ", ".join("%d %s" % (n, k) for k, n in sorted(counts.items())))
    print("%d passed, %d failed" % (passed, len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
