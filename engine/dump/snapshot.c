/* Snapshot mode: the frozen target clones itself, copy-on-write, and runs on; its memory is read
 * from the clone.
 *
 * The clone is made by one thread of the target (one stopped in a system call when there is
 * one: its `syscall` instruction is right before its instruction pointer, and it cannot be
 * inside an rseq critical section) running clone(flags 0): a new process with a copy of the
 * address space and no exit signal, so the target gets no SIGCHLD and its waitpid() (without
 * __WALL/__WCLONE) never sees it. PTRACE_O_TRACECLONE makes the clone start traced and stopped:
 * it never runs an instruction of the target's code. PTRACE_O_EXITKILL, inherited at the clone,
 * kills it if vigil dies (the option is on the target's thread only for the duration of that one
 * system call). The clone's OOM score is raised so the kernel takes it, not the target, when
 * memory runs out. After the dump the clone is killed and reaped twice: as our tracee, then, by
 * a wait4() run briefly by one target thread, as the target's child; the target never sees a
 * zombie.
 *
 * A fork does not copy everything: MADV_DONTFORK ranges are absent from the clone and
 * MADV_WIPEONFORK ranges are zeros there, so what the dump needs of them is copied from the
 * frozen target before it resumes (bounded: VG__CD_PRECOPY_MAX, else Stop mode). MAP_SHARED
 * memory is shared with the clone, not copied: it is read after the resume, like gcore reads
 * it. See docs/dumps.md. */
#include "engine/dump/dump_int.h"

#include "config/error.h"
#include "config/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

struct rseq_config {
    uint64_t rseq_abi_pointer;
    uint32_t rseq_abi_size, signature, flags, pad;
};

struct rseq_cs {
    uint32_t version, flags;
    uint64_t start_ip, post_commit_offset, abort_ip;
};

#define USER_CS_64 0x33 /* a 64-bit thread; 0x23 is a 32-bit (compat) one */
#define RELEASE_BATCH (16u << 20)

int vg__cd_snap_preflight(struct vg__cd_ctx *c)
{
    char path[64], buf[4096];
    struct vg_proc_stat st;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)c->pid);
    if (vg__cd_stat(path, &st) == 0 && st.state == 'T') {
        vg__cd_fallback(c, "the process is stopped (job control): it does not run meanwhile, so "
                           "it is dumped in place");
        return 1;
    }
    uint64_t mode = 0;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)c->pid);
    if (vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf)) > 0 &&
        vg_procfs_field_u64(buf, "Seccomp", &mode) && mode == 1) {
        vg__cd_fallback(c, "the process runs in strict seccomp mode, which forbids clone");
        return 1;
    }
    for (size_t i = 0; i < c->pre.n; i++) {
        if (c->pre.v[i].uffd) {
            vg__cd_fallback(c,
                            "memory at 0x%llx is registered with a userfaultfd, whose "
                            "monitor would see the clone",
                            (unsigned long long)c->pre.v[i].start);
            return 1;
        }
    }
    return vg__cd_limits_check(c);
}

/* Is t's instruction pointer inside the rseq critical section it registered? Then a detour
 * through an injected call would make the kernel forget to abort that section. */
static int in_rseq_cs(struct vg__cd_ctx *c, const struct vg__cd_thread *t)
{
    struct rseq_config cfg;
    uint64_t cs_ptr = 0;
    struct rseq_cs cs;
    memset(&cfg, 0, sizeof(cfg));
    if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->tid, (void *)sizeof(cfg), &cfg) < 0)
        return 1; /* cannot tell: do not use this thread */
    if (!cfg.rseq_abi_pointer)
        return 0;
    if (vg__cd_peek(c, cfg.rseq_abi_pointer + 8, &cs_ptr, sizeof(cs_ptr)) != 0)
        return 1;
    if (!cs_ptr)
        return 0;
    if (vg__cd_peek(c, cs_ptr, &cs, sizeof(cs)) != 0)
        return 1;
    return t->regs.rip >= cs.start_ip && t->regs.rip - cs.start_ip < cs.post_commit_offset;
}

/* A `syscall` instruction in the vDSO (every x86_64 process has one, static binaries too). */
static uint64_t vdso_syscall(struct vg__cd_ctx *c)
{
    for (size_t i = 0; i < c->maps.n; i++) {
        const struct vg_map *m = &c->maps.v[i];
        if (!m->name || strcmp(m->name, "[vdso]") != 0 || !(m->prot & VG_MAP_X))
            continue;
        unsigned char code[4096];
        for (uint64_t a = m->start; a < m->end; a += sizeof(code) - 1) {
            size_t n = m->end - a < sizeof(code) ? (size_t)(m->end - a) : sizeof(code);
            if (vg__cd_peek(c, a, code, n) != 0)
                break;
            for (size_t k = 0; k + 1 < n; k++)
                if (code[k] == 0x0f && code[k + 1] == 0x05)
                    return a + k;
        }
    }
    return 0;
}

/* The thread that runs the clone, and the syscall instruction it runs. */
static struct vg__cd_thread *pick_thread(struct vg__cd_ctx *c, uint64_t *sysaddr)
{
    int compat = 0, busy = 0;
    /* A thread inside a system call: the instruction right before it is a `syscall`. */
    for (size_t i = 0; i < c->nth; i++) {
        struct vg__cd_thread *t = &c->th[i];
        if (t->gone || !t->stopped || t->sig)
            continue;
        if (t->regs.cs != USER_CS_64) {
            compat = 1;
            continue;
        }
        unsigned char ins[2];
        if ((long long)t->regs.orig_rax >= 0 && t->regs.rip >= 2 &&
            vg__cd_peek(c, t->regs.rip - 2, ins, 2) == 0 && ins[0] == 0x0f && ins[1] == 0x05) {
            *sysaddr = t->regs.rip - 2;
            return t;
        }
    }
    /* Every thread is running its own code: one outside an rseq critical section, and the
     * vDSO's syscall instruction. */
    uint64_t vdso = vdso_syscall(c);
    for (size_t i = 0; vdso && i < c->nth; i++) {
        struct vg__cd_thread *t = &c->th[i];
        if (t->gone || !t->stopped || t->sig || t->regs.cs != USER_CS_64)
            continue;
        if (in_rseq_cs(c, t)) {
            busy = 1;
            continue;
        }
        *sysaddr = vdso;
        return t;
    }
    if (compat)
        vg__cd_fallback(c, "a 32-bit (compat) process: the clone is injected as a 64-bit call");
    else if (!vdso)
        vg__cd_fallback(c, "no thread is in a system call and the process has no vDSO: no "
                           "syscall instruction to run the clone with");
    else if (busy)
        vg__cd_fallback(c, "every thread is inside an rseq critical section");
    else
        vg__cd_fallback(c, "no thread could run the clone (every one had a signal pending)");
    return NULL;
}

/* Reaps the clone's zombie as its parent: thread tid of the target (held by us, in an
 * interrupt stop) runs wait4(clone, __WALL | WNOHANG). */
static int reap_in(struct vg__cd_ctx *c, pid_t tid, int *sig)
{
    struct vg__cd_saved sv;
    int rc = vg__cd_inject_begin(tid, 0, &sv);
    if (rc)
        return rc;
    uint64_t a[6] = {(uint64_t)c->snap.ns_pid, 0, __WALL | WNOHANG, 0, 0, 0};
    long ret = 0;
    int s = 0;
    rc = vg__cd_inject(tid, &sv.regs, c->snap.sysaddr, SYS_wait4, a, &ret, NULL, &s);
    int erc = vg__cd_inject_end(tid, &sv, sig);
    if (s && !*sig)
        *sig = s;
    if (!rc && ret != c->snap.ns_pid && ret != -ECHILD)
        vg_log(VG_LOG_WARN, "dump", "pid %d: reaping the snapshot clone %d returned %ld",
               (int)c->pid, (int)c->snap.pid, ret);
    return rc ? rc : erc;
}

/* Kills the clone and collects its exit as its tracer (it then is the target's zombie). */
static void kill_clone(struct vg__cd_ctx *c)
{
    kill(c->snap.pid, SIGKILL);
    for (int i = 0; i < 1000; i++) {
        int st;
        if (vg__cd_wait(c->snap.pid, &st) != 0)
            break;
    }
    if (c->snap.pagemap >= 0)
        close(c->snap.pagemap);
    c->snap.pagemap = -1;
}

/* After the resume: the target's threads are seized again, one at a time, until one reaps. */
static void reap_later(struct vg__cd_ctx *c)
{
    pid_t cand[2] = {c->snap.parent, c->pid};
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < 2 + c->nth; i++) {
            pid_t tid = i < 2 ? cand[i] : c->th[i - 2].tid;
            if (tid <= 0 || ptrace(PTRACE_SEIZE, tid, 0, 0) < 0)
                continue;
            int st, sig = 0;
            uint64_t t0 = vg__cd_now_us();
            if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0 || vg__cd_wait(tid, &st) != 0) {
                ptrace(PTRACE_DETACH, tid, 0, 0);
                continue;
            }
            if ((st >> 16) != PTRACE_EVENT_STOP) {
                /* It stopped for a signal of its own: let it have it, try another. */
                ptrace(PTRACE_DETACH, tid, 0, (void *)(long)WSTOPSIG(st));
                continue;
            }
            int rc = reap_in(c, tid, &sig);
            ptrace(PTRACE_DETACH, tid, 0, (void *)(long)sig);
            vg_log(VG_LOG_DEBUG, "dump", "pid %d: clone reaped by thread %d, held %llu us",
                   (int)c->pid, (int)tid, (unsigned long long)(vg__cd_now_us() - t0));
            if (rc == 0)
                return;
        }
        if (vg__cd_process_gone(c->pid))
            return; /* its children went to a reaper that reaps */
        usleep(1000);
    }
    vg_log(VG_LOG_WARN, "dump",
           "pid %d: could not reap the snapshot clone %d: it stays a zombie child of the "
           "process until the process waits for it or exits",
           (int)c->pid, (int)c->snap.ns_pid);
}

/* The bytes the dump needs that the clone will not have: ranges a fork does not copy. */
static int precopy(struct vg__cd_ctx *c, const struct vg_maps *cm)
{
    uint64_t total = 0;
    size_t j = 0;
    for (size_t i = 0; i < c->nseg; i++) {
        struct vg__cd_seg *s = &c->seg[i];
        if (!s->filesz)
            continue;
        const struct vg_map *m = &c->maps.v[s->map];
        while (j < cm->n && cm->v[j].end <= m->start)
            j++;
        int missing = j >= cm->n || cm->v[j].start > m->start || cm->v[j].end < m->end;
        if (!missing && !m->wipeonfork)
            continue;
        total += s->filesz;
        if (total > VG__CD_PRECOPY_MAX) {
            vg__cd_fallback(c,
                            "more than %u MiB of the dump is MADV_DONTFORK or MADV_WIPEONFORK "
                            "memory, which a fork does not copy",
                            VG__CD_PRECOPY_MAX >> 20);
            return 1;
        }
        int rc = vg__cd_overlay_add(c, s->vaddr, (size_t)s->filesz);
        if (rc)
            return vg__cd_fail(c, rc, "copying MADV_DONTFORK memory: %s", vg_strerror(rc));
        s->precopied = 1;
    }
    return 0;
}

/* The clone's return to user mode for a madvise() makes the kernel refresh the rseq area of
 * the thread it was cloned from (cpu number, critical section pointer): the core shows the
 * target's bytes there instead. */
static void keep_rseq_area(struct vg__cd_ctx *c, pid_t tid)
{
    struct rseq_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(cfg), &cfg) < 0 ||
        !cfg.rseq_abi_pointer || cfg.rseq_abi_size < 32 || cfg.rseq_abi_size > 4096)
        return;
    for (size_t i = 0; i < c->nov; i++)
        if (c->ov[i].addr < cfg.rseq_abi_pointer + cfg.rseq_abi_size &&
            cfg.rseq_abi_pointer < c->ov[i].addr + c->ov[i].len)
            return; /* already taken from the target */
    vg__cd_overlay_add(c, cfg.rseq_abi_pointer, cfg.rseq_abi_size);
}

int vg__cd_snap_take(struct vg__cd_ctx *c)
{
    uint64_t sysaddr = 0;
    char why[192];
    struct vg__cd_thread *t = pick_thread(c, &sysaddr);
    if (!t)
        return 1;
    /* What the target's seccomp filters say about the calls it and the clone will run. */
    const uint64_t none[6] = {0};
    const uint64_t wait_args[6] = {0, 0, __WALL | WNOHANG, 0, 0, 0};
    const uint64_t madv_args[6] = {0, 0, MADV_DONTNEED, 0, 0, 0};
    if (vg__cd_seccomp_allows(t->tid, SYS_clone, none, sysaddr, why, sizeof(why))) {
        vg__cd_fallback(c, "the process's seccomp filter %s clone()", why);
        return 1;
    }
    if (vg__cd_seccomp_allows(t->tid, SYS_wait4, wait_args, sysaddr, why, sizeof(why))) {
        vg__cd_fallback(c, "the process's seccomp filter %s wait4(), needed to reap the clone",
                        why);
        return 1;
    }
    c->snap.madvise_ok =
        !vg__cd_seccomp_allows(t->tid, SYS_madvise, madv_args, sysaddr, why, sizeof(why));

    struct vg__cd_saved sv;
    int rc = vg__cd_inject_begin(t->tid, PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL, &sv);
    if (rc == VG_EEXITED)
        return vg__cd_exited(c);
    if (rc) {
        vg__cd_fallback(c, "preparing thread %d for the clone: %s", (int)t->tid, vg_strerror(rc));
        return 1;
    }
    long ret = -EINVAL;
    unsigned long child = 0;
    int sig = 0;
    rc = vg__cd_inject(t->tid, &sv.regs, sysaddr, SYS_clone, none, &ret, &child, &sig);
    int erc = vg__cd_inject_end(t->tid, &sv, &t->sig);
    if (sig && !t->sig)
        t->sig = sig;
    if (child > 0) {
        c->snap.pid = (pid_t)child;
        c->snap.ns_pid = ret > 0 ? (pid_t)ret : (pid_t)child;
        c->snap.parent = t->tid;
        c->snap.sysaddr = sysaddr;
    }
    if (rc || erc) {
        if (c->snap.pid)
            kill_clone(c);
        if (vg__cd_process_gone(c->pid))
            return vg__cd_exited(c);
        return vg__cd_fail(c, rc ? rc : erc, "running clone() in thread %d of %d: %s", (int)t->tid,
                           (int)c->pid, vg_strerror(rc ? rc : erc));
    }
    if (ret < 0 || !c->snap.pid) {
        int e = ret < 0 ? (int)-ret : 0;
        vg__cd_fallback(c, "clone() failed: %s%s", e ? strerror(e) : "no child",
                        e == ENOMEM ? " (strict overcommit or the memory cgroup refused the copy)"
                        : e == EAGAIN
                            ? " (a process limit: pids cgroup, RLIMIT_NPROC, kernel.pid_max or "
                              "kernel.threads-max)"
                        : e == EPERM ? " (a seccomp filter or a security module forbids it)"
                                     : "");
        return 1;
    }

    /* The clone: stopped before its first instruction. */
    int st;
    rc = vg__cd_wait(c->snap.pid, &st);
    if (rc || !WIFSTOPPED(st) || ptrace(PTRACE_GETREGS, c->snap.pid, 0, &c->snap.regs) < 0) {
        kill_clone(c);
        reap_in(c, t->tid, &t->sig);
        vg__cd_fallback(c, "the clone %d did not stop as expected", (int)c->snap.pid);
        c->snap.pid = 0;
        return 1;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)c->snap.pid);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "1000", 4) != 4)
            (void)0; /* only a preference for the OOM killer */
        close(fd);
    }
    snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)c->snap.pid);
    c->snap.pagemap = open(path, O_RDONLY | O_CLOEXEC);

    struct vg_maps cm;
    rc = vg_procfs_read_maps(AT_FDCWD, c->snap.pid, false, &cm);
    if (!rc)
        rc = precopy(c, &cm);
    vg_maps_free(&cm);
    if (!rc && c->snap.madvise_ok)
        keep_rseq_area(c, t->tid);
    if (rc) {
        /* Still frozen: the thread that cloned reaps at once. */
        kill_clone(c);
        reap_in(c, t->tid, &t->sig);
        c->snap.pid = 0;
        return rc < 0 ? rc : 1;
    }
    return 0;
}

static int release_now(struct vg__cd_ctx *c, uint64_t lo, uint64_t hi)
{
    if (c->snap.pagemap >= 0)
        c->cow_bytes += vg__cd_exclusive_bytes(c->snap.pagemap, lo, hi - lo);
    if (!c->snap.madvise_ok)
        return 0;
    uint64_t a[6] = {lo, hi - lo, MADV_DONTNEED, 0, 0, 0};
    long ret;
    int rc = vg__cd_inject(c->snap.pid, &c->snap.regs, c->snap.sysaddr, SYS_madvise, a, &ret, NULL,
                           NULL);
    if (rc)
        return vg__cd_fail(c, rc == VG_EEXITED ? VG_EEXITED : rc,
                           "the snapshot clone %d of pid %d was killed (out of memory?)",
                           (int)c->snap.pid, (int)c->pid);
    return 0;
}

int vg__cd_snap_release(struct vg__cd_ctx *c, uint64_t addr, uint64_t len, int flush)
{
    struct vg__cd_snap *s = &c->snap;
    int rc = 0;
    if (!s->pid)
        return 0;
    if (len && s->release_hi == addr && s->release_hi > s->release_lo) {
        s->release_hi += len;
    } else if (len) {
        if (s->release_hi > s->release_lo)
            rc = release_now(c, s->release_lo, s->release_hi);
        s->release_lo = addr;
        s->release_hi = addr + len;
    }
    if (!rc && s->release_hi > s->release_lo &&
        (flush || s->release_hi - s->release_lo >= RELEASE_BATCH)) {
        rc = release_now(c, s->release_lo, s->release_hi);
        s->release_lo = s->release_hi = 0;
    }
    return rc;
}

void vg__cd_snap_end(struct vg__cd_ctx *c)
{
    if (!c->snap.pid)
        return;
    kill_clone(c);
    reap_later(c);
    c->snap.pid = 0;
}

#endif
