#!/usr/bin/env python3
"""`vigil dump` and `vigil upload` show a progress line (bytes, rate, ETA) when stderr is a
terminal (a pty here, as a person's shell would give them) and print nothing of it otherwise."""
import json
import os
import re
import select
import subprocess

import vigil_test as vt
from vigil_test import check, eq

LINE = re.compile(r"(dumping|writing|uploading)\s+(\S+ \S+)(?: / (\S+ \S+)\s+(\d+)%)?\s+"
                  r"(\S+ \S+)/s(?:\s+(ETA \d+:\d\d(?::\d\d)?))?")


def on_pty(argv):
    """Runs argv with stderr on a pty; returns (exit status, stdout, what the terminal got). The
    slave side stays open here until the command has exited and everything was read: a pty whose
    slave is closed may answer EIO before its last bytes are read."""
    master, slave = os.openpty()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, TERM="xterm"))
    got = {master: b"", p.stdout.fileno(): b""}
    watch = [master, p.stdout.fileno()]
    idle_after_exit = False
    while True:
        r, _, _ = select.select(watch, [], [], 0.1)
        for fd in r:
            chunk = os.read(fd, 65536)
            got[fd] += chunk
            if not chunk:  # stdout's end (the pty has no end while the slave is open here)
                watch.remove(fd)
        if not r:
            if idle_after_exit:
                break
            idle_after_exit = p.poll() is not None  # one more quiet round after the exit
    out, tty = got[p.stdout.fileno()], got[master]
    os.close(slave)
    os.close(master)
    p.wait(120)
    return p.returncode, out.decode(), tty.decode(errors="replace")


def progress_lines(tty):
    return [l.strip() for l in re.split(r"[\r\n]", tty) if LINE.search(l)]


def check_lines(lines, phase, total_known):
    mine = [l for l in lines if l.startswith(phase)]
    check(mine, "no %r progress line in %r" % (phase, lines))
    for l in mine:
        m = LINE.search(l)
        if total_known and m.group(2) != "0 B":  # the total is known from the first bytes on
            check(m.group(3) and m.group(4), "no total/percentage in %r" % l)
            pct, rate = int(m.group(4)), m.group(5)
            if pct < 100 and not rate.startswith("0 "):
                check(m.group(6), "a line mid-way with a rate has no ETA: %r" % l)
    return mine


def scenario(env):
    t = env.target(heap_mb=96)
    out = os.path.join(env.tmp, "out")
    conf = os.path.join(env.tmp, "conf")
    os.makedirs(conf)
    with open(os.path.join(conf, "egress.json"), "w") as f:
        json.dump({"Egress": {"FileSystem": {"fs": {"DirectoryPath": out}}},
                   "Storage": {"StateDir": os.path.join(env.tmp, "state")}}, f)
    # the dump streamed into an egress: bytes of the total its ELF headers announce, rate, ETA
    rc, stdout, tty = on_pty([vt.VIGIL, "dump", str(t.pid), "--type", "Full", "--egress", "fs",
                              "--config-dir", conf])
    eq(rc, 0, "vigil dump --egress on a terminal: " + tty)
    lines = progress_lines(tty)
    dumping = check_lines(lines, "dumping", True)
    check(LINE.search(dumping[-1]).group(4) == "100", "the last dumping line: %r" % dumping[-1])
    total = LINE.search(dumping[-1]).group(3)
    size = os.path.getsize(stdout.split(":")[0])
    check(abs(float(total.split()[0]) - size / 2**20) < 0.1 and total.endswith("MiB"),
          "announced total %r, core %d bytes" % (total, size))
    check(stdout.startswith(out), "stdout holds the result: %r" % stdout)
    check("\r" not in stdout and "dumping" not in stdout, "progress on stdout: %r" % stdout)
    # not a terminal: nothing of it
    r = subprocess.run([vt.VIGIL, "dump", str(t.pid), "--egress", "fs", "--config-dir", conf],
                       capture_output=True, text=True, timeout=120)
    eq(r.returncode, 0, r.stderr)
    eq(r.stderr, "", "stderr of a dump whose stderr is a pipe")
    # a file dump: the file and the time (the writer's copy cannot be followed from outside)
    path = os.path.join(env.tmp, "core.file")
    rc, stdout, tty = on_pty([vt.VIGIL, "dump", str(t.pid), "-o", path])
    eq(rc, 0, tty)
    check(re.search(r"dumping\s+\S+ \S+\s+\d+:\d\d", tty), "file dump progress: %r" % tty)
    # vigil upload: the file read into the artifact, then its upload
    rc, stdout, tty = on_pty([vt.VIGIL, "upload", "--config-dir", conf, "--egress", "fs",
                              "--name", "up.bin", path])
    eq((rc, stdout.strip()), (0, os.path.join(out, "up.bin")), tty)
    check_lines(progress_lines(tty), "writing", True)
    r = subprocess.run([vt.VIGIL, "upload", "--config-dir", conf, "--egress", "fs", "--name",
                        "up2.bin", path], capture_output=True, text=True, timeout=120)
    eq(r.returncode, 0, r.stderr)
    check("\r" not in r.stderr and not progress_lines(r.stderr),
          "progress from vigil upload with stderr on a pipe: %r" % r.stderr)


if __name__ == "__main__":
    vt.run(scenario, name="cli_progress")
