/* A JVM process as the attach and perf-data layers need it: its pid in our /proc and in its own
 * PID namespace, effective credentials (what the attach listener compares), the signals it
 * catches, and its start time (to tell a reused pid apart). Read from /proc; no libuv, no globals.
 */
#ifndef VG_JVM_TARGET_H
#define VG_JVM_TARGET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define VG_JVM_PATH_MAX 4096

struct vg_jvm_target {
    char proc_root[256]; /* "/proc" unless a test injects another tree */
    int pid;             /* as seen in proc_root */
    int nspid;           /* innermost PID namespace's pid (last NSpid): names the files */
    uid_t euid;          /* effective ids, as seen from our user namespace */
    gid_t egid;
    uint64_t sigcgt;      /* caught-signal mask: bit (n-1) for signal n */
    uint64_t start_ticks; /* /proc/PID/stat field 22 */
};

/* Reads /proc/PID/status and stat. proc_root NULL means "/proc". Errors: VG_ESRCH (no such
 * process), VG_EACCES, VG_EPARSE (an unexpected status file). */
int vg_jvm_target_read(const char *proc_root, int pid, struct vg_jvm_target *out);

/* True when the process catches SIGQUIT right now (re-read from /proc, not from `t`): HotSpot
 * installs a handler unless started with -Xrs; the default action of SIGQUIT terminates. */
bool vg_jvm_target_catches_sigquit(const struct vg_jvm_target *t);

/* 0 when pid still names the same process (same start time), VG_EEXITED otherwise. */
int vg_jvm_target_check_alive(const struct vg_jvm_target *t);

/* Opens a path as the target sees it (absolute, in its mount namespace), resolved inside
 * proc_root/PID/root as if that were "/" (symlinks cannot escape it). flags as for open(2);
 * mode when O_CREAT. Returns an fd or a negative VG_E*. */
int vg_jvm_target_open(const struct vg_jvm_target *t, const char *path, int flags, mode_t mode);

#endif
