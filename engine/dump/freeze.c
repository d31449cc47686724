/* Freezing: every thread seized (PTRACE_SEIZE + PTRACE_INTERRUPT, so syscalls stay restartable)
 * and stopped, threads started meanwhile included; registers and per-thread state read; every
 * thread resumed with the signal our stop may have dequeued. */
#include "engine/dump/dump_int.h"

#include "config/error.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)

static int have_cap_sys_ptrace(void)
{
    char buf[4096];
    uint64_t caps;
    if (vg_procfs_read(AT_FDCWD, "/proc/self/status", buf, sizeof(buf)) <= 0 ||
        !vg_procfs_field_hex(buf, "CapEff", &caps))
        return 0;
    return caps >> 19 & 1u; /* CAP_SYS_PTRACE = 19 */
}

/* Turns a ptrace/process_vm_readv permission failure into a message that says what to fix. */
int vg__cd_perm_error(struct vg__cd_ctx *c, int rc, const char *what)
{
    char path[64], status[4096], yama[16];
    long tracer = 0, uid = -1;
    int cap = have_cap_sys_ptrace();
    int scope = -1;
    struct vg_proc_status ps;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)c->pid);
    ssize_t n = vg_procfs_read(AT_FDCWD, path, status, sizeof(status));
    if (n > 0 && vg_procfs_parse_status(status, (size_t)n, &ps) == 0) {
        tracer = ps.tracer_pid;
        uid = ps.uid[0];
    }
    if (vg_procfs_read(AT_FDCWD, "/proc/sys/kernel/yama/ptrace_scope", yama, sizeof(yama)) > 0)
        scope = atoi(yama);

    if (tracer > 0 && tracer != (long)gettid())
        return vg__cd_fail(c, rc, "cannot %s pid %d: it is already traced by pid %ld (a debugger?)",
                           what, (int)c->pid, tracer);
    if (uid >= 0 && (uid_t)uid != geteuid() && !cap)
        return vg__cd_fail(c, rc,
                           "cannot %s pid %d: it belongs to uid %ld and vigil runs as uid %u "
                           "without CAP_SYS_PTRACE",
                           what, (int)c->pid, uid, (unsigned)geteuid());
    if (scope == 3)
        return vg__cd_fail(c, rc, "cannot %s pid %d: Yama ptrace_scope=3 disables ptrace", what,
                           (int)c->pid);
    if (scope >= 1 && !cap)
        return vg__cd_fail(c, rc,
                           "cannot %s pid %d: Yama ptrace_scope=%d allows it only with "
                           "CAP_SYS_PTRACE%s",
                           what, (int)c->pid, scope,
                           scope == 1 ? " (or for descendants; or set kernel.yama.ptrace_scope=0)"
                                      : "");
    return vg__cd_fail(
        c, rc,
        "cannot %s pid %d: permission denied (needs CAP_SYS_PTRACE; the target may be "
        "non-dumpable or setuid)",
        what, (int)c->pid);
}

/* ---- freezing ---------------------------------------------------------------------------- */

int vg__cd_wait(pid_t tid, int *status)
{
    for (;;) {
        pid_t r = waitpid(tid, status, __WALL);
        if (r == tid)
            return (WIFEXITED(*status) || WIFSIGNALED(*status)) ? VG_EEXITED : 0;
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 && errno != ECHILD ? -errno : VG_EEXITED;
    }
}

static struct vg__cd_thread *cd_find(struct vg__cd_ctx *c, pid_t tid)
{
    for (size_t i = 0; i < c->nth; i++)
        if (c->th[i].tid == tid)
            return &c->th[i];
    return NULL;
}

static int cd_add_thread(struct vg__cd_ctx *c, pid_t tid)
{
    if (vg_grow((void **)&c->th, &c->capth, c->nth, sizeof(*c->th), 16))
        return VG_ENOMEM;
    memset(&c->th[c->nth], 0, sizeof(c->th[0]));
    c->th[c->nth++].tid = tid;
    return 0;
}

int vg__cd_list_tasks(pid_t pid, pid_t **out, size_t *n)
{
    char path[64];
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            pid_t *v = realloc(*out, cap * sizeof(*v));
            if (!v) {
                closedir(d);
                free(*out);
                *out = NULL;
                return VG_ENOMEM;
            }
            *out = v;
        }
        (*out)[(*n)++] = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return 0;
}

static int task_is_zombie(pid_t pid, pid_t tid)
{
    char path[80];
    struct vg_proc_stat st;
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    if (vg__cd_stat(path, &st) != 0)
        return 1;
    return st.state == 'Z' || st.state == 'X';
}

static int cd_wait_stop(struct vg__cd_thread *t)
{
    for (;;) {
        int st;
        pid_t r = waitpid(t->tid, &st, __WALL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECHILD) {
                t->gone = 1;
                return 0;
            }
            return -errno;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            t->gone = 1;
            return 0;
        }
        if (WIFSTOPPED(st)) {
            /* A signal-delivery-stop can come before our interrupt stop: the thread is stopped
             * all the same; the signal goes back in at detach. */
            if ((st >> 16) != PTRACE_EVENT_STOP)
                t->sig = WSTOPSIG(st);
            t->stopped = 1;
            return 0;
        }
    }
}

int vg__cd_attach(struct vg__cd_ctx *c)
{
    unsigned eperm_rounds = 0;
    for (unsigned round = 0;; round++) {
        pid_t *tids = NULL;
        size_t n = 0;
        int added = 0, busy = 0;
        int rc = vg__cd_list_tasks(c->pid, &tids, &n);
        if (rc == -ENOENT)
            return c->nth ? vg__cd_exited(c)
                          : vg__cd_fail(c, VG_ESRCH, "no such process: %d", (int)c->pid);
        if (rc)
            return vg__cd_fail(c, rc, "listing threads of %d: %s", (int)c->pid, vg_strerror(rc));
        for (size_t i = 0; i < n && !rc; i++) {
            pid_t tid = tids[i];
            if (cd_find(c, tid) || task_is_zombie(c->pid, tid))
                continue;
            if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
                int e = errno;
                if (e == ESRCH)
                    continue; /* the thread exited meanwhile */
                /* A thread in the middle of exiting refuses attach with EPERM; with other
                 * threads of the process already held, permission is not the problem: look
                 * again on the next scan, when it is gone. */
                if (e == EPERM && c->nth > 0 && tid != c->pid && eperm_rounds < 1000) {
                    busy = 1;
                    continue;
                }
                if (e == EPERM || e == EACCES)
                    rc = vg__cd_perm_error(c, -e, "ptrace");
                else
                    rc = vg__cd_fail(c, -e, "ptrace(SEIZE, %d): %s", (int)tid, strerror(e));
                break;
            }
            if (!c->frozen) {
                c->frozen = 1;
                c->t_freeze0 = vg__cd_now_us();
            }
            rc = cd_add_thread(c, tid);
            if (rc) {
                ptrace(PTRACE_DETACH, tid, 0, 0);
                break;
            }
            if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0 && errno != ESRCH)
                rc = vg__cd_fail(c, -errno, "ptrace(INTERRUPT, %d): %s", (int)tid, strerror(errno));
            added++;
        }
        free(tids);
        /* Wait even on error: only stopped threads can be detached. */
        for (size_t i = 0; i < c->nth; i++) {
            struct vg__cd_thread *t = &c->th[i];
            if (!t->stopped && !t->gone) {
                int wrc = cd_wait_stop(t);
                if (wrc && !rc)
                    rc = vg__cd_fail(c, wrc, "waiting for thread %d: %s", (int)t->tid,
                                     vg_strerror(wrc));
            }
        }
        if (rc)
            return rc;
        /* Stopped threads create no threads: a scan that finds nothing new is final. */
        if (busy) {
            eperm_rounds++;
            usleep(100);
            continue;
        }
        if (!added)
            break;
        if (round > 10000)
            return vg__cd_fail(c, VG_EAGAIN, "threads of %d keep appearing", (int)c->pid);
    }
    size_t live = 0;
    for (size_t i = 0; i < c->nth; i++)
        live += !c->th[i].gone;
    if (!live)
        return c->nth ? vg__cd_exited(c)
                      : vg__cd_fail(c, VG_ESRCH, "no such process: %d", (int)c->pid);
    return 0;
}

void vg__cd_detach(struct vg__cd_ctx *c)
{
    if (!c->frozen || c->detached)
        return;
    int dead = 0;
    for (size_t i = 0; i < c->nth; i++) {
        struct vg__cd_thread *t = &c->th[i];
        if (t->gone || t->released)
            continue;
        if (ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)t->sig) < 0 && errno == ESRCH)
            dead = 1;
        else
            t->released = 1;
    }
    c->t_freeze1 = vg__cd_now_us();
    c->detached = 1;
    if (!dead)
        return;
    /* Killed while traced: collect the exit notifications owed to us as tracer. */
    for (int tries = 0; tries < 500; tries++) {
        int left = 0;
        for (size_t i = 0; i < c->nth; i++) {
            struct vg__cd_thread *t = &c->th[i];
            if (t->gone || t->released)
                continue;
            int st;
            pid_t r = waitpid(t->tid, &st, __WALL | WNOHANG);
            if (r < 0 || (r == t->tid && (WIFEXITED(st) || WIFSIGNALED(st))))
                t->released = 1;
            else
                left++;
        }
        if (!left)
            break;
        usleep(1000);
    }
}

/* ---- reading what the notes need ------------------------------------------------------------ */

int vg__cd_read_regs(struct vg__cd_ctx *c, struct vg__cd_thread *t, unsigned char *xbuf)
{
    struct iovec iov = {&t->regs, sizeof(t->regs)};
    if (ptrace(PTRACE_GETREGSET, t->tid, (void *)(long)NT_PRSTATUS, &iov) < 0) {
        int e = errno;
        if (e == ESRCH && vg__cd_process_gone(c->pid))
            return vg__cd_exited(c);
        return vg__cd_fail(c, -e, "reading registers of thread %d: %s", (int)t->tid, strerror(e));
    }
    iov.iov_base = &t->fp;
    iov.iov_len = sizeof(t->fp);
    t->have_fp = ptrace(PTRACE_GETREGSET, t->tid, (void *)(long)NT_PRFPREG, &iov) == 0;
    iov.iov_base = xbuf;
    iov.iov_len = VG__CD_XSTATE_MAX;
    if (ptrace(PTRACE_GETREGSET, t->tid, (void *)(long)NT_X86_XSTATE, &iov) == 0 &&
        iov.iov_len > 0) {
        t->xstate = malloc(iov.iov_len);
        if (!t->xstate)
            return VG_ENOMEM;
        memcpy(t->xstate, xbuf, iov.iov_len);
        t->xstate_len = iov.iov_len;
    }

    char path[80], status[4096];
    struct vg_proc_status ps;
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)c->pid, (int)t->tid);
    if (vg__cd_stat(path, &t->st) != 0)
        memset(&t->st, 0, sizeof(t->st));
    snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)c->pid, (int)t->tid);
    ssize_t n = vg_procfs_read(AT_FDCWD, path, status, sizeof(status));
    if (n > 0 && vg_procfs_parse_status(status, (size_t)n, &ps) == 0) {
        t->sigpend = ps.sig_pnd;
        t->sighold = ps.sig_blk;
    }
    return 0;
}

/* process_vm_readv first (fast, one syscall per chunk); /proc/PID/mem for what it cannot read
 * (it forces access like a debugger); zeros for what neither can (as the kernel leaves holes). */

#endif
