/* ELF core dump writer for a live process: freeze (ptrace), snapshot, resume, write.
 *
 * Order of work: read smaps before the freeze (it walks page tables: slow for big processes) and
 * prepare the destination of the copy (see below), then seize + interrupt every thread, read
 * maps, registers and process info, compute the whole file layout, copy the memory, resume the
 * target as soon as the last byte is copied, and only then finish the output.
 * - Sink (vg_coredump_write): the headers go to the sink first, then a reader thread copies the
 *   memory in 4 MiB chunks into buffers faulted in before the freeze while this thread waits;
 *   after the resume the chunks drain into the sink.
 * - File (vg_coredump_to_file): the memory is copied by two threads straight into a pre-faulted
 *   MAP_SHARED mapping of the core file, at an offset reserved before the freeze; no buffer of
 *   our own, one copy. See "file output" below. */
#include "engine/dump/dump.h"
#include "engine/dump/dump_int.h"
#include "config/error.h"
#include "config/util.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/procfs.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CD_PAGE 4096u
#define CD_CHUNK (4u << 20)  /* one process_vm_readv and one sink call */
#define CD_BUF_MIN_CHUNKS 8u /* budget floor */
#define CD_BUF_MAX (16ull << 30)
#define CD_XSTATE_MAX (32u << 10)
#define CD_FILTER_DEFAULT 0x33u

/* coredump_filter bits (core(5)). */
#define CD_F_ANON_PRIVATE (1u << 0)
#define CD_F_ANON_SHARED (1u << 1)
#define CD_F_FILE_PRIVATE (1u << 2)
#define CD_F_FILE_SHARED (1u << 3)
#define CD_F_ELF_HEADERS (1u << 4)
#define CD_F_HUGE_PRIVATE (1u << 5)
#define CD_F_HUGE_SHARED (1u << 6)

static const char *const type_names[] = {"WithHeap", "Full", "Mini", "Triage"};

int vg_dump_type_parse(const char *s, enum vg_dump_type *out)
{
    if (!s)
        return VG_EINVAL;
    for (size_t i = 0; i < VG_ARRAY_SIZE(type_names); i++) {
        if (strcasecmp(s, type_names[i]) == 0) {
            *out = (enum vg_dump_type)i;
            return 0;
        }
    }
    return VG_EINVAL;
}

const char *vg_dump_type_name(enum vg_dump_type t)
{
    if ((unsigned)t < VG_ARRAY_SIZE(type_names))
        return type_names[t];
    return "?";
}

#if defined(__x86_64__)

struct cd_thread {
    pid_t tid;
    int stopped, gone;
    int sig; /* signal dequeued by our stop: re-injected at detach */
    struct user_regs_struct regs;
    struct user_fpregs_struct fp;
    int have_fp;
    unsigned char *xstate;
    size_t xstate_len;
    unsigned long long sigpend, sighold;
    struct vg__cd_stat st;
};

struct cd_seg {
    uint64_t vaddr, memsz, filesz, offset;
    unsigned flags;
};

struct cd_range {
    uint64_t lo, hi;
};

struct cd_chunk;

struct cd_ctx {
    pid_t pid;
    enum vg_dump_type type;
    char *err;
    size_t errlen;
    vg_dump_write_cb write;
    void *wctx;
    uint64_t bytes;

    struct cd_thread *th;
    size_t nth, capth;
    int frozen, detached;
    uint64_t t_freeze0, t_freeze1;

    unsigned filter;
    struct vg__cd_maps pre, maps;
    struct cd_seg *seg;
    size_t nseg, capseg;
    struct cd_range *want; /* Mini / Triage extra ranges, sorted and merged */
    size_t nwant, capwant;
    char *auxv;
    size_t auxv_len;
    struct vg__cd_stat pst;
    struct vg_buf hdr; /* ELF header, program headers, notes, padding */

    struct cd_chunk *warm;  /* copy buffers faulted in before the freeze */
    size_t nwarm, budget;   /* chunks */
    int memfd;              /* /proc/PID/mem, opened on first need */
    int no_vm_readv;        /* read and written with __atomic: copy threads share it */
    pthread_mutex_t err_mu; /* cd_fail from concurrent copy threads */

    /* File output (vg_coredump_to_file): memory is copied straight into a shared mapping of
     * the output file, so there is no second copy and no separate buffer to fault in. */
    int fd;                /* output file, -1 for a plain sink */
    int direct;            /* memory goes straight into the file mapping */
    char *map;             /* file range [data_off_min, data_off_min + map_len) */
    uint64_t map_len;      /* bytes mapped (and fallocated) */
    uint64_t data_off_min; /* reserved room for headers and notes: where the data starts */
    size_t hdr_used;       /* c->hdr without the padding up to the data */
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

__attribute__((format(printf, 3, 4))) static int cd_fail(struct cd_ctx *c, int rc, const char *fmt,
                                                         ...)
{
    pthread_mutex_lock(&c->err_mu);
    if (c->err && c->errlen && !c->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&c->err_mu);
    return rc;
}

static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    return (int)n;
}

/* Value of a "Key:\t..." line in a status file, or NULL. */
static const char *status_field(const char *status, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = status; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ':')
            return p + kl + 1;
    }
    return NULL;
}

static int have_cap_sys_ptrace(void)
{
    char buf[4096];
    if (read_small("/proc/self/status", buf, sizeof(buf)) < 0)
        return 0;
    const char *v = status_field(buf, "CapEff");
    return v && (strtoull(v, NULL, 16) >> 19 & 1u); /* CAP_SYS_PTRACE = 19 */
}

/* Turns a ptrace/process_vm_readv permission failure into a message that says what to fix. */
static int cd_perm_error(struct cd_ctx *c, int rc, const char *what)
{
    char path[64], status[4096], yama[16];
    long tracer = 0, uid = -1;
    int cap = have_cap_sys_ptrace();
    int scope = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)c->pid);
    if (read_small(path, status, sizeof(status)) > 0) {
        const char *v = status_field(status, "TracerPid");
        tracer = v ? strtol(v, NULL, 10) : 0;
        v = status_field(status, "Uid");
        uid = v ? strtol(v, NULL, 10) : -1;
    }
    if (read_small("/proc/sys/kernel/yama/ptrace_scope", yama, sizeof(yama)) > 0)
        scope = atoi(yama);

    if (tracer > 0 && tracer != (long)gettid())
        return cd_fail(c, rc, "cannot %s pid %d: it is already traced by pid %ld (a debugger?)",
                       what, (int)c->pid, tracer);
    if (uid >= 0 && (uid_t)uid != geteuid() && !cap)
        return cd_fail(c, rc,
                       "cannot %s pid %d: it belongs to uid %ld and vigil runs as uid %u "
                       "without CAP_SYS_PTRACE",
                       what, (int)c->pid, uid, (unsigned)geteuid());
    if (scope == 3)
        return cd_fail(c, rc, "cannot %s pid %d: Yama ptrace_scope=3 disables ptrace", what,
                       (int)c->pid);
    if (scope >= 1 && !cap)
        return cd_fail(c, rc,
                       "cannot %s pid %d: Yama ptrace_scope=%d allows it only with "
                       "CAP_SYS_PTRACE%s",
                       what, (int)c->pid, scope,
                       scope == 1 ? " (or for descendants; or set kernel.yama.ptrace_scope=0)"
                                  : "");
    return cd_fail(c, rc,
                   "cannot %s pid %d: permission denied (needs CAP_SYS_PTRACE; the target may be "
                   "non-dumpable or setuid)",
                   what, (int)c->pid);
}

/* After a failure: did the process go away? */
static int cd_process_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (read_small(path, buf, sizeof(buf)) < 0)
        return 1;
    const char *p = strrchr(buf, ')');
    return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

static int cd_exited(struct cd_ctx *c)
{
    return cd_fail(c, VG_EEXITED, "process %d exited during the dump", (int)c->pid);
}

/* ---- freezing ---------------------------------------------------------------------------- */

static struct cd_thread *cd_find(struct cd_ctx *c, pid_t tid)
{
    for (size_t i = 0; i < c->nth; i++)
        if (c->th[i].tid == tid)
            return &c->th[i];
    return NULL;
}

static int cd_add_thread(struct cd_ctx *c, pid_t tid)
{
    if (vg_grow((void **)&c->th, &c->capth, c->nth, sizeof(*c->th), 16))
        return VG_ENOMEM;
    memset(&c->th[c->nth], 0, sizeof(c->th[0]));
    c->th[c->nth++].tid = tid;
    return 0;
}

static int cd_list_tasks(pid_t pid, pid_t **out, size_t *n)
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
    char path[80], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    if (read_small(path, buf, sizeof(buf)) < 0)
        return 1;
    const char *p = strrchr(buf, ')');
    return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

static int cd_wait_stop(struct cd_thread *t)
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

static int cd_attach(struct cd_ctx *c)
{
    unsigned eperm_rounds = 0;
    for (unsigned round = 0;; round++) {
        pid_t *tids = NULL;
        size_t n = 0;
        int added = 0, busy = 0;
        int rc = cd_list_tasks(c->pid, &tids, &n);
        if (rc == -ENOENT)
            return c->nth ? cd_exited(c) : cd_fail(c, VG_ESRCH, "no such process: %d", (int)c->pid);
        if (rc)
            return cd_fail(c, rc, "listing threads of %d: %s", (int)c->pid, vg_strerror(rc));
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
                    rc = cd_perm_error(c, -e, "ptrace");
                else
                    rc = cd_fail(c, -e, "ptrace(SEIZE, %d): %s", (int)tid, strerror(e));
                break;
            }
            if (!c->frozen) {
                c->frozen = 1;
                c->t_freeze0 = now_us();
            }
            rc = cd_add_thread(c, tid);
            if (rc) {
                ptrace(PTRACE_DETACH, tid, 0, 0);
                break;
            }
            if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0 && errno != ESRCH)
                rc = cd_fail(c, -errno, "ptrace(INTERRUPT, %d): %s", (int)tid, strerror(errno));
            added++;
        }
        free(tids);
        /* Wait even on error: only stopped threads can be detached. */
        for (size_t i = 0; i < c->nth; i++) {
            struct cd_thread *t = &c->th[i];
            if (!t->stopped && !t->gone) {
                int wrc = cd_wait_stop(t);
                if (wrc && !rc)
                    rc =
                        cd_fail(c, wrc, "waiting for thread %d: %s", (int)t->tid, vg_strerror(wrc));
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
            return cd_fail(c, VG_EAGAIN, "threads of %d keep appearing", (int)c->pid);
    }
    size_t live = 0;
    for (size_t i = 0; i < c->nth; i++)
        live += !c->th[i].gone;
    if (!live)
        return c->nth ? cd_exited(c) : cd_fail(c, VG_ESRCH, "no such process: %d", (int)c->pid);
    return 0;
}

static void cd_detach(struct cd_ctx *c)
{
    if (!c->frozen || c->detached)
        return;
    int dead = 0;
    for (size_t i = 0; i < c->nth; i++) {
        struct cd_thread *t = &c->th[i];
        if (t->gone)
            continue;
        if (ptrace(PTRACE_DETACH, t->tid, 0, (void *)(long)t->sig) < 0 && errno == ESRCH)
            dead = 1;
        else
            t->gone = 1;
    }
    c->t_freeze1 = now_us();
    c->detached = 1;
    if (!dead)
        return;
    /* Killed while traced: collect the exit notifications owed to us as tracer. */
    for (int tries = 0; tries < 500; tries++) {
        int left = 0;
        for (size_t i = 0; i < c->nth; i++) {
            struct cd_thread *t = &c->th[i];
            if (t->gone)
                continue;
            int st;
            pid_t r = waitpid(t->tid, &st, __WALL | WNOHANG);
            if (r < 0 || (r == t->tid && (WIFEXITED(st) || WIFSIGNALED(st))))
                t->gone = 1;
            else
                left++;
        }
        if (!left)
            break;
        usleep(1000);
    }
}

/* ---- reading what the notes need ------------------------------------------------------------ */

static int cd_read_regs(struct cd_ctx *c, struct cd_thread *t, unsigned char *xbuf)
{
    struct iovec iov = {&t->regs, sizeof(t->regs)};
    if (ptrace(PTRACE_GETREGSET, t->tid, (void *)(long)NT_PRSTATUS, &iov) < 0) {
        int e = errno;
        if (e == ESRCH && cd_process_gone(c->pid))
            return cd_exited(c);
        return cd_fail(c, -e, "reading registers of thread %d: %s", (int)t->tid, strerror(e));
    }
    iov.iov_base = &t->fp;
    iov.iov_len = sizeof(t->fp);
    t->have_fp = ptrace(PTRACE_GETREGSET, t->tid, (void *)(long)NT_PRFPREG, &iov) == 0;
    iov.iov_base = xbuf;
    iov.iov_len = CD_XSTATE_MAX;
    if (ptrace(PTRACE_GETREGSET, t->tid, (void *)(long)NT_X86_XSTATE, &iov) == 0 &&
        iov.iov_len > 0) {
        t->xstate = malloc(iov.iov_len);
        if (!t->xstate)
            return VG_ENOMEM;
        memcpy(t->xstate, xbuf, iov.iov_len);
        t->xstate_len = iov.iov_len;
    }

    char path[80], status[4096];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)c->pid, (int)t->tid);
    vg__cd_read_stat(path, &t->st);
    snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)c->pid, (int)t->tid);
    if (read_small(path, status, sizeof(status)) > 0) {
        const char *v = status_field(status, "SigPnd");
        t->sigpend = v ? strtoull(v, NULL, 16) : 0;
        v = status_field(status, "SigBlk");
        t->sighold = v ? strtoull(v, NULL, 16) : 0;
    }
    return 0;
}

/* process_vm_readv first (fast, one syscall per chunk); /proc/PID/mem for what it cannot read
 * (it forces access like a debugger); zeros for what neither can (as the kernel leaves holes). */
static ssize_t mem_pread(struct cd_ctx *c, void *buf, size_t len, uint64_t addr)
{
    int fd = __atomic_load_n(&c->memfd, __ATOMIC_ACQUIRE);
    if (fd < 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/mem", (int)c->pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -1;
        int none = -1;
        if (!__atomic_compare_exchange_n(&c->memfd, &none, fd, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
            close(fd); /* another copy thread was first */
            fd = none;
        }
    }
    return pread(fd, buf, len, (off_t)addr);
}

static int cd_read_mem(struct cd_ctx *c, uint64_t addr, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n;
        int no_vm_readv = __atomic_load_n(&c->no_vm_readv, __ATOMIC_RELAXED);
        if (!no_vm_readv) {
            struct iovec l = {buf + got, len - got};
            struct iovec r = {(void *)(uintptr_t)(addr + got), len - got};
            n = process_vm_readv(c->pid, &l, 1, &r, 1, 0);
            if (n < 0) {
                int e = errno;
                if (e == ESRCH)
                    return cd_exited(c);
                if (e == EPERM || e == ENOSYS) {
                    /* e.g. seccomp: the ptrace path still works */
                    __atomic_store_n(&c->no_vm_readv, 1, __ATOMIC_RELAXED);
                    continue;
                }
                if (e != EFAULT && e != EIO)
                    return cd_fail(c, -e, "reading memory of %d: %s", (int)c->pid, strerror(e));
                n = 0;
            }
        } else {
            n = mem_pread(c, buf + got, len - got, addr + got);
            if (n < 0 && errno != EIO && errno != EFAULT) {
                int e = errno;
                if (cd_process_gone(c->pid))
                    return cd_exited(c);
                if (e == EPERM || e == EACCES)
                    return cd_perm_error(c, -e, "read the memory of");
                return cd_fail(c, -e, "reading /proc/%d/mem: %s", (int)c->pid, strerror(e));
            }
            if (n <= 0) {
                if (cd_process_gone(c->pid))
                    return cd_exited(c);
                n = 0;
            }
        }
        got += (size_t)n;
        if (got < len) {
            uint64_t a = addr + got;
            size_t pg = CD_PAGE - (size_t)(a & (CD_PAGE - 1));
            if (pg > len - got)
                pg = len - got;
            if (no_vm_readv || mem_pread(c, buf + got, pg, a) != (ssize_t)pg)
                memset(buf + got, 0, pg);
            got += pg;
        }
    }
    return 0;
}

static int cd_is_elf(struct cd_ctx *c, uint64_t addr)
{
    unsigned char m[4];
    struct iovec l = {m, 4}, r = {(void *)(uintptr_t)addr, 4};
    if (process_vm_readv(c->pid, &l, 1, &r, 1, 0) != 4 && mem_pread(c, m, 4, addr) != 4)
        return 0;
    return memcmp(m, ELFMAG, SELFMAG) == 0;
}

/* ---- layout ---------------------------------------------------------------------------------- */

static int cd_add_seg(struct cd_ctx *c, uint64_t vaddr, uint64_t memsz, uint64_t filesz,
                      unsigned prot)
{
    if (vg_grow((void **)&c->seg, &c->capseg, c->nseg, sizeof(*c->seg), 128))
        return VG_ENOMEM;
    struct cd_seg *s = &c->seg[c->nseg++];
    s->vaddr = vaddr;
    s->memsz = memsz;
    s->filesz = filesz;
    s->flags = prot;
    s->offset = 0;
    return 0;
}

static int is_deleted_name(const char *path)
{
    size_t n = path ? strlen(path) : 0;
    return n > 10 && strcmp(path + n - 10, " (deleted)") == 0;
}

/* The kernel's vma_dump_size() decision, from what /proc shows. */
static uint64_t filter_size(struct cd_ctx *c, const struct vg__cd_map *m)
{
    uint64_t whole = m->end - m->start;
    unsigned f = c->filter;
    if (m->name && (strcmp(m->name, "[vdso]") == 0 || strcmp(m->name, "[vsyscall]") == 0))
        return whole;
    if (m->hugetlb)
        return (f & (m->shared ? CD_F_HUGE_SHARED : CD_F_HUGE_PRIVATE)) ? whole : 0;
    if (m->shared) {
        /* Shared anonymous memory is an unlinked shmem file. */
        int anon = !m->path || is_deleted_name(m->path);
        return (f & (anon ? CD_F_ANON_SHARED : CD_F_FILE_SHARED)) ? whole : 0;
    }
    /* Private file mappings with copied-on-write pages count as anonymous (anon_vma). */
    int cow = m->have_flags ? m->anon_cow : (m->prot & VG__CD_PROT_W) != 0;
    if ((!m->path || cow) && (f & CD_F_ANON_PRIVATE))
        return whole;
    if (!m->path)
        return 0;
    if (f & CD_F_FILE_PRIVATE)
        return whole;
    if ((f & CD_F_ELF_HEADERS) && m->offset == 0 && cd_is_elf(c, m->start))
        return CD_PAGE;
    return 0;
}

/* Mini / Triage: ranges a debugger needs beyond whole mappings. Page-aligned outward. */
static int cd_want(struct cd_ctx *c, uint64_t lo, uint64_t hi)
{
    lo &= ~(uint64_t)(CD_PAGE - 1);
    hi = (hi + CD_PAGE - 1) & ~(uint64_t)(CD_PAGE - 1);
    if (lo >= hi)
        return 0;
    if (vg_grow((void **)&c->want, &c->capwant, c->nwant, sizeof(*c->want), 64))
        return VG_ENOMEM;
    c->want[c->nwant].lo = lo;
    c->want[c->nwant++].hi = hi;
    return 0;
}

static int range_cmp(const void *a, const void *b)
{
    const struct cd_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int cd_peek(struct cd_ctx *c, uint64_t addr, void *buf, size_t len)
{
    struct iovec l = {buf, len}, r = {(void *)(uintptr_t)addr, len};
    if (process_vm_readv(c->pid, &l, 1, &r, 1, 0) == (ssize_t)len)
        return 0;
    return mem_pread(c, buf, len, addr) == (ssize_t)len ? 0 : -1;
}

/* The dynamic loader's list of loaded objects (r_debug -> link_map chain) lives in loader
 * allocations outside any file mapping; debuggers walk it to find the shared libraries. */
static int cd_want_link_maps(struct cd_ctx *c)
{
    uint64_t phdr = 0, phnum = 0, bias = 0, dyn = 0, rdebug = 0;
    int have_bias = 0;
    for (size_t i = 0; i + 16 <= c->auxv_len; i += 16) {
        uint64_t kv[2];
        memcpy(kv, c->auxv + i, 16);
        if (kv[0] == AT_PHDR)
            phdr = kv[1];
        else if (kv[0] == AT_PHNUM)
            phnum = kv[1];
    }
    if (!phdr || !phnum || phnum > 256)
        return 0;
    for (uint64_t i = 0; i < phnum; i++) {
        Elf64_Phdr ph;
        if (cd_peek(c, phdr + i * sizeof(ph), &ph, sizeof(ph)))
            return 0;
        if (ph.p_type == PT_PHDR) {
            bias = phdr - ph.p_vaddr;
            have_bias = 1;
        } else if (ph.p_type == PT_DYNAMIC) {
            dyn = ph.p_vaddr;
        }
    }
    if (!dyn || !have_bias)
        return 0;
    dyn += bias;
    for (unsigned i = 0; i < 4096; i++) {
        Elf64_Dyn d;
        if (cd_peek(c, dyn + i * sizeof(d), &d, sizeof(d)) || d.d_tag == DT_NULL)
            break;
        if (d.d_tag == DT_DEBUG) {
            rdebug = d.d_un.d_ptr;
            break;
        }
    }
    uint64_t lm = 0;
    if (!rdebug || cd_peek(c, rdebug + 8, &lm, 8))
        return 0;
    int rc = cd_want(c, rdebug, rdebug + 40);
    /* Public part of struct link_map: l_addr, l_name, l_ld, l_next, l_prev. The loader's
     * private fields follow; keep a generous slice of them for thread_db's TLS lookups. */
    for (unsigned n = 0; lm && n < 4096 && !rc; n++) {
        uint64_t f[5];
        if (cd_peek(c, lm, f, sizeof(f)))
            break;
        rc = cd_want(c, lm, lm + 2048);
        if (!rc && f[1])
            rc = cd_want(c, f[1], f[1] + 256);
        lm = f[3];
    }
    return rc;
}

static int cd_plan_wants(struct cd_ctx *c)
{
    int rc = 0;
    for (size_t i = 0; i < c->nth && !rc; i++) {
        const struct cd_thread *t = &c->th[i];
        if (t->gone)
            continue;
        uint64_t sp = t->regs.rsp;
        for (size_t j = 0; j < c->maps.n; j++) {
            const struct vg__cd_map *m = &c->maps.v[j];
            if (sp >= m->start && sp < m->end) {
                /* From the stack pointer less the red zone up to the mapping's top. */
                rc = cd_want(c, sp >= m->start + 128 ? sp - 128 : m->start, m->end);
                break;
            }
        }
        /* Thread control block and static TLS around the thread pointer (thread_db). */
        if (!rc && t->regs.fs_base > CD_PAGE)
            rc = cd_want(c, t->regs.fs_base - CD_PAGE, t->regs.fs_base + 2 * CD_PAGE);
    }
    if (!rc)
        rc = cd_want_link_maps(c);
    if (!rc && c->nwant > 1) {
        qsort(c->want, c->nwant, sizeof(c->want[0]), range_cmp);
        size_t o = 0;
        for (size_t i = 1; i < c->nwant; i++) {
            if (c->want[i].lo <= c->want[o].hi) {
                if (c->want[i].hi > c->want[o].hi)
                    c->want[o].hi = c->want[i].hi;
            } else {
                c->want[++o] = c->want[i];
            }
        }
        c->nwant = o + 1;
    }
    return rc;
}

static int cd_plan_map(struct cd_ctx *c, size_t idx)
{
    const struct vg__cd_map *m = &c->maps.v[idx];
    uint64_t whole = m->end - m->start;
    int readable = (m->prot & VG__CD_PROT_R) && !m->dontdump &&
                   !(m->name && strncmp(m->name, "[vvar", 5) == 0);
    if (!readable)
        return cd_add_seg(c, m->start, whole, 0, m->prot);
    if (c->type == VG_DUMP_FULL)
        return cd_add_seg(c, m->start, whole, whole, m->prot);
    if (c->type == VG_DUMP_WITH_HEAP)
        return cd_add_seg(c, m->start, whole, filter_size(c, m), m->prot);

    /* Mini / Triage: what a debugger needs to unwind and name frames. */
    int cow = m->have_flags ? m->anon_cow : (m->prot & VG__CD_PROT_W) != 0;
    if (m->name && (strcmp(m->name, "[vdso]") == 0 || strcmp(m->name, "[vsyscall]") == 0))
        return cd_add_seg(c, m->start, whole, whole, m->prot);
    if (m->path && !m->shared && ((m->prot & VG__CD_PROT_W) || cow))
        return cd_add_seg(c, m->start, whole, whole, m->prot); /* .data, .got, relro */
    if (!m->path && !m->name && !m->shared && idx > 0 && c->maps.v[idx - 1].path &&
        c->maps.v[idx - 1].end == m->start && (m->prot & VG__CD_PROT_W) && whole <= (1u << 20))
        return cd_add_seg(c, m->start, whole, whole, m->prot); /* .bss beyond the file */

    /* Otherwise only the wanted ranges (stacks, TCBs, loader lists, ELF header), the rest as
     * holes, one PT_LOAD per piece. */
    uint64_t at = m->start;
    int rc = 0;
    if (m->path && m->offset == 0 && cd_is_elf(c, m->start)) {
        rc = cd_add_seg(c, m->start, CD_PAGE, CD_PAGE, m->prot);
        at += CD_PAGE;
    }
    for (size_t i = 0; i < c->nwant && !rc && at < m->end; i++) {
        uint64_t lo = c->want[i].lo > at ? c->want[i].lo : at;
        uint64_t hi = c->want[i].hi < m->end ? c->want[i].hi : m->end;
        if (lo >= hi)
            continue;
        if (lo > at)
            rc = cd_add_seg(c, at, lo - at, 0, m->prot);
        if (!rc)
            rc = cd_add_seg(c, lo, hi - lo, hi - lo, m->prot);
        at = hi;
    }
    if (!rc && at < m->end)
        rc = cd_add_seg(c, at, m->end - at, 0, m->prot);
    return rc;
}

static int cd_note(struct vg_buf *b, const char *name, uint32_t type, const void *desc, size_t len)
{
    static const char zero[8];
    uint32_t h[3] = {(uint32_t)strlen(name) + 1, (uint32_t)len, type};
    int rc = vg_buf_append(b, h, sizeof(h));
    if (!rc)
        rc = vg_buf_append(b, name, h[0]);
    if (!rc && (h[0] & 3))
        rc = vg_buf_append(b, zero, 4 - (h[0] & 3));
    if (!rc && len)
        rc = vg_buf_append(b, desc, len);
    if (!rc && (len & 3))
        rc = vg_buf_append(b, zero, 4 - (len & 3));
    return rc;
}

static void ticks_to_tv(unsigned long long ticks, long hz, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ticks / (unsigned long long)hz);
    tv->tv_usec = (suseconds_t)((ticks % (unsigned long long)hz) * 1000000ull / (unsigned)hz);
}

static int cd_thread_notes(struct cd_ctx *c, struct vg_buf *b, const struct cd_thread *t)
{
    struct elf_prstatus pr;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    memset(&pr, 0, sizeof(pr));
    pr.pr_info.si_signo = SIGSTOP;
    pr.pr_cursig = SIGSTOP;
    pr.pr_sigpend = t->sigpend;
    pr.pr_sighold = t->sighold;
    pr.pr_pid = t->tid;
    pr.pr_ppid = c->pst.ppid;
    pr.pr_pgrp = c->pst.pgrp;
    pr.pr_sid = c->pst.session;
    ticks_to_tv(t->st.utime, hz, &pr.pr_utime);
    ticks_to_tv(t->st.stime, hz, &pr.pr_stime);
    ticks_to_tv(c->pst.cutime > 0 ? (unsigned long long)c->pst.cutime : 0, hz, &pr.pr_cutime);
    ticks_to_tv(c->pst.cstime > 0 ? (unsigned long long)c->pst.cstime : 0, hz, &pr.pr_cstime);
    _Static_assert(sizeof(pr.pr_reg) == sizeof(t->regs), "user_regs_struct is elf_gregset_t");
    memcpy(&pr.pr_reg, &t->regs, sizeof(pr.pr_reg));
    pr.pr_fpvalid = t->have_fp;
    return cd_note(b, "CORE", NT_PRSTATUS, &pr, sizeof(pr));
}

static int cd_thread_fp_notes(struct vg_buf *b, const struct cd_thread *t)
{
    int rc = 0;
    if (t->have_fp)
        rc = cd_note(b, "CORE", NT_PRFPREG, &t->fp, sizeof(t->fp));
    if (!rc && t->xstate)
        rc = cd_note(b, "LINUX", NT_X86_XSTATE, t->xstate, t->xstate_len);
    return rc;
}

static int cd_process_notes(struct cd_ctx *c, struct vg_buf *b)
{
    char path[64], comm[32] = "", status[4096] = "";
    char *cmdline = NULL;
    size_t cmdlen = 0;
    struct elf_prpsinfo ps;
    siginfo_t si;
    struct vg_buf nf;
    int rc;

    vg_buf_init(&nf);
    memset(&ps, 0, sizeof(ps));
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)c->pid);
    if (read_small(path, comm, sizeof(comm)) > 0)
        comm[strcspn(comm, "\n")] = '\0';
    snprintf(path, sizeof(path), "/proc/%d/status", (int)c->pid);
    read_small(path, status, sizeof(status));
    const char *sv = status_field(status, "Uid");
    ps.pr_uid = sv ? (unsigned)strtoul(sv, NULL, 10) : 0;
    sv = status_field(status, "Gid");
    ps.pr_gid = sv ? (unsigned)strtoul(sv, NULL, 10) : 0;
    static const char states[] = "RSDTZW";
    const char *sp = strchr(states, c->pst.state);
    ps.pr_state = (char)(sp && c->pst.state ? sp - states : 0);
    ps.pr_sname = c->pst.state ? c->pst.state : 'R';
    ps.pr_zomb = c->pst.state == 'Z';
    ps.pr_nice = (char)c->pst.nice;
    ps.pr_flag = c->pst.flags;
    ps.pr_pid = c->pid;
    ps.pr_ppid = c->pst.ppid;
    ps.pr_pgrp = c->pst.pgrp;
    ps.pr_sid = c->pst.session;
    memcpy(ps.pr_fname, comm, strnlen(comm, sizeof(ps.pr_fname) - 1));
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)c->pid);
    if (c->type != VG_DUMP_TRIAGE && vg__cd_read_file(path, &cmdline, &cmdlen) == 0) {
        size_t n = cmdlen < sizeof(ps.pr_psargs) - 1 ? cmdlen : sizeof(ps.pr_psargs) - 1;
        for (size_t i = 0; i < n; i++)
            ps.pr_psargs[i] = cmdline[i] ? cmdline[i] : ' ';
        while (n > 0 && ps.pr_psargs[n - 1] == ' ')
            ps.pr_psargs[--n] = '\0';
    }
    rc = cd_note(b, "CORE", NT_PRPSINFO, &ps, sizeof(ps));
    if (rc)
        goto out;

    /* No signal caused this dump: report the stop, as a debugger's gcore does. */
    memset(&si, 0, sizeof(si));
    si.si_signo = SIGSTOP;
    rc = cd_note(b, "CORE", NT_SIGINFO, &si, sizeof(si));
    if (rc)
        goto out;

    if (c->auxv_len) {
        rc = cd_note(b, "CORE", NT_AUXV, c->auxv, c->auxv_len);
        if (rc)
            goto out;
    }

    /* NT_FILE: count, page size, {start, end, file page offset}..., then the names. */
    uint64_t count = 0, page = CD_PAGE;
    for (size_t i = 0; i < c->maps.n; i++)
        count += c->maps.v[i].path != NULL;
    rc = vg_buf_append(&nf, &count, 8);
    if (!rc)
        rc = vg_buf_append(&nf, &page, 8);
    for (size_t i = 0; i < c->maps.n && !rc; i++) {
        const struct vg__cd_map *m = &c->maps.v[i];
        if (!m->path)
            continue;
        uint64_t v[3] = {m->start, m->end, m->offset / CD_PAGE};
        rc = vg_buf_append(&nf, v, sizeof(v));
    }
    for (size_t i = 0; i < c->maps.n && !rc; i++)
        if (c->maps.v[i].path)
            rc = vg_buf_append(&nf, c->maps.v[i].path, strlen(c->maps.v[i].path) + 1);
    if (!rc)
        rc = cd_note(b, "CORE", NT_FILE, nf.data, nf.len);
out:
    vg_buf_free(&nf);
    free(cmdline);
    return rc ? cd_fail(c, rc, "building notes: %s", vg_strerror(rc)) : 0;
}

/* Builds c->hdr: ELF header, program headers, [extended numbering section], notes, padding to
 * the first page-aligned segment, and gives every PT_LOAD its file offset. */
static int cd_layout(struct cd_ctx *c)
{
    struct vg_buf notes;
    int rc = 0;
    vg_buf_init(&notes);

    /* The leader's notes come first: debuggers show the first thread as the current one. */
    size_t first = 0;
    for (size_t i = 0; i < c->nth; i++)
        if (c->th[i].tid == c->pid && !c->th[i].gone)
            first = i;
    while (first < c->nth && c->th[first].gone)
        first++;
    rc = cd_thread_notes(c, &notes, &c->th[first]);
    if (!rc)
        rc = cd_process_notes(c, &notes);
    if (!rc)
        rc = cd_thread_fp_notes(&notes, &c->th[first]);
    for (size_t i = 0; i < c->nth && !rc; i++) {
        if (i == first || c->th[i].gone)
            continue;
        rc = cd_thread_notes(c, &notes, &c->th[i]);
        if (!rc)
            rc = cd_thread_fp_notes(&notes, &c->th[i]);
    }
    if (rc)
        goto out;

    size_t phnum = c->nseg + 1;
    int extnum = phnum >= PN_XNUM;
    uint64_t off = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
    uint64_t shoff = 0;
    if (extnum) {
        shoff = off;
        off += sizeof(Elf64_Shdr);
    }
    uint64_t note_off = off;
    off += notes.len;
    off = (off + CD_PAGE - 1) & ~(uint64_t)(CD_PAGE - 1);
    if (c->map && off <= c->data_off_min)
        off = c->data_off_min; /* the data goes where the file mapping already is */
    uint64_t data_off = off;
    for (size_t i = 0; i < c->nseg; i++) {
        c->seg[i].offset = off;
        off += c->seg[i].filesz;
    }

    Elf64_Ehdr eh;
    memset(&eh, 0, sizeof(eh));
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
    eh.e_type = ET_CORE;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = extnum ? PN_XNUM : (Elf64_Half)phnum;
    if (extnum) {
        eh.e_shoff = shoff;
        eh.e_shentsize = sizeof(Elf64_Shdr);
        eh.e_shnum = 1;
        eh.e_shstrndx = SHN_UNDEF;
    }
    rc = vg_buf_append(&c->hdr, &eh, sizeof(eh));

    Elf64_Phdr ph;
    memset(&ph, 0, sizeof(ph));
    ph.p_type = PT_NOTE;
    ph.p_offset = note_off;
    ph.p_filesz = notes.len;
    ph.p_align = 4;
    if (!rc)
        rc = vg_buf_append(&c->hdr, &ph, sizeof(ph));
    for (size_t i = 0; i < c->nseg && !rc; i++) {
        memset(&ph, 0, sizeof(ph));
        ph.p_type = PT_LOAD;
        ph.p_flags = c->seg[i].flags;
        ph.p_offset = c->seg[i].offset;
        ph.p_vaddr = c->seg[i].vaddr;
        ph.p_filesz = c->seg[i].filesz;
        ph.p_memsz = c->seg[i].memsz;
        ph.p_align = CD_PAGE;
        rc = vg_buf_append(&c->hdr, &ph, sizeof(ph));
    }
    if (!rc && extnum) {
        Elf64_Shdr sh;
        memset(&sh, 0, sizeof(sh));
        sh.sh_type = SHT_NULL;
        sh.sh_info = (Elf64_Word)phnum;
        rc = vg_buf_append(&c->hdr, &sh, sizeof(sh));
    }
    if (!rc)
        rc = vg_buf_append(&c->hdr, notes.data, notes.len);
    c->hdr_used = c->hdr.len;
    while (!rc && c->hdr.len < data_off) {
        static const char zero[512];
        size_t n = data_off - c->hdr.len;
        rc = vg_buf_append(&c->hdr, zero, n < sizeof(zero) ? n : sizeof(zero));
    }
out:
    vg_buf_free(&notes);
    return rc ? cd_fail(c, rc, "building the core layout: %s", vg_strerror(rc)) : 0;
}

/* ---- streaming --------------------------------------------------------------------------------
 */

/* Chunks travel from the reader thread (process_vm_readv) to this thread (the sink) in order.
 * When the sink falls behind, the reader takes fresh chunks instead of waiting, up to a memory
 * budget, so a slow sink (disk, network) does not stretch the freeze; with a fast sink the same
 * few warm chunks are reused. */
struct cd_chunk {
    struct cd_chunk *next;
    size_t len;
    char *buf;
};

struct cd_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct cd_chunk *head, *tail; /* filled, in file order */
    struct cd_chunk *free;        /* empty, warm */
    size_t allocated, budget;     /* chunks */
    int done, stop, err;
    int starved; /* the reader waits for the sink to hand chunks back */
    struct cd_ctx *c;
};

static struct cd_chunk *chunk_new(void)
{
    struct cd_chunk *k = malloc(sizeof(*k));
    if (!k)
        return NULL;
    k->buf = mmap(NULL, CD_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (k->buf == MAP_FAILED) {
        free(k);
        return NULL;
    }
    k->next = NULL;
    k->len = 0;
    return k;
}

static void chunk_free_list(struct cd_chunk *k)
{
    while (k) {
        struct cd_chunk *n = k->next;
        munmap(k->buf, CD_CHUNK);
        free(k);
        k = n;
    }
}

/* Blanks argv and the environment for Triage dumps. */
static void redact(const struct cd_ctx *c, uint64_t addr, char *buf, size_t len)
{
    const uint64_t r[2][2] = {{c->pst.arg_start, c->pst.arg_end},
                              {c->pst.env_start, c->pst.env_end}};
    for (int i = 0; i < 2; i++) {
        uint64_t lo = r[i][0] > addr ? r[i][0] : addr;
        uint64_t hi = r[i][1] < addr + len ? r[i][1] : addr + len;
        if (lo < hi)
            memset(buf + (lo - addr), 0, hi - lo);
    }
}

/* A chunk to fill: a warm one if any, a new one within the budget, else wait for the sink. */
static struct cd_chunk *take_chunk(struct cd_pipe *p)
{
    struct cd_chunk *k = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->stop)
            break;
        if (p->free) {
            k = p->free;
            p->free = k->next;
            k->next = NULL;
            break;
        }
        if (p->allocated < p->budget) {
            p->allocated++;
            pthread_mutex_unlock(&p->mu);
            k = chunk_new();
            pthread_mutex_lock(&p->mu);
            if (k)
                break;
            /* Out of memory: make do with the chunks already out, if any. */
            p->allocated--;
            p->budget = p->allocated;
            if (!p->allocated)
                break;
            continue;
        }
        p->starved = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_cond_wait(&p->cv, &p->mu);
        p->starved = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return k;
}

static void *cd_reader(void *arg)
{
    struct cd_pipe *p = arg;
    struct cd_ctx *c = p->c;
    int rc = 0;
    for (size_t i = 0; i < c->nseg && !rc; i++) {
        const struct cd_seg *s = &c->seg[i];
        for (uint64_t off = 0; off < s->filesz && !rc;) {
            size_t n = s->filesz - off < CD_CHUNK ? (size_t)(s->filesz - off) : CD_CHUNK;
            struct cd_chunk *k = take_chunk(p);
            if (!k) {
                pthread_mutex_lock(&p->mu);
                int stop = p->stop;
                pthread_mutex_unlock(&p->mu);
                if (!stop)
                    rc = cd_fail(c, VG_ENOMEM, "out of memory for the copy buffer");
                goto out;
            }
            rc = cd_read_mem(c, s->vaddr + off, k->buf, n);
            if (rc) {
                chunk_free_list(k);
                break;
            }
            if (c->type == VG_DUMP_TRIAGE)
                redact(c, s->vaddr + off, k->buf, n);
            k->len = n;
            k->next = NULL;
            off += n;
            pthread_mutex_lock(&p->mu);
            if (p->tail)
                p->tail->next = k;
            else
                p->head = k;
            p->tail = k;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
out:
    pthread_mutex_lock(&p->mu);
    p->err = rc;
    p->done = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int cd_sink(struct cd_ctx *c, const void *buf, size_t len)
{
    int rc = c->write(c->wctx, buf, len);
    if (rc)
        return cd_fail(c, rc, "writing the core failed after %llu bytes: %s",
                       (unsigned long long)c->bytes, vg_strerror(rc));
    c->bytes += len;
    return 0;
}

static uint64_t mem_available(void)
{
    char buf[4096];
    if (read_small("/proc/meminfo", buf, sizeof(buf)) < 0)
        return 0;
    const char *v = status_field(buf, "MemAvailable");
    return v ? strtoull(v, NULL, 10) * 1024 : 0;
}

static int cd_stream(struct cd_ctx *c)
{
    struct cd_pipe p;
    pthread_t th;
    int rc;

    memset(&p, 0, sizeof(p));
    p.c = c;
    p.budget = c->budget;
    p.free = c->warm; /* faulted in before the freeze */
    p.allocated = c->nwarm;
    c->warm = NULL;
    c->nwarm = 0;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    rc = pthread_create(&th, NULL, cd_reader, &p);
    if (rc) {
        rc = cd_fail(c, -rc, "starting the reader thread: %s", strerror(rc));
        goto out_nothread;
    }
    rc = cd_sink(c, c->hdr.data, c->hdr.len);
    for (;;) {
        pthread_mutex_lock(&p.mu);
        /* While the target is frozen the sink waits, unless the reader ran out of buffer: the
         * copy the target waits for gets the CPU and memory bandwidth to itself. */
        while (!rc && !p.done && (!p.head || !p.starved))
            pthread_cond_wait(&p.cv, &p.mu);
        int done = p.done, err = p.err;
        struct cd_chunk *k = NULL;
        if (rc || (done && err))
            p.stop = 1; /* what is queued is freed below */
        else if ((k = p.head)) {
            p.head = k->next;
            if (!p.head)
                p.tail = NULL;
            k->next = NULL;
        }
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
        if (rc)
            break;
        if (done && err) {
            rc = err;
            break;
        }
        /* Everything is copied: let the target run while the rest drains into the sink. */
        if (done && !c->detached) {
            cd_detach(c);
            pthread_mutex_lock(&p.mu);
            chunk_free_list(p.free);
            p.free = NULL;
            pthread_mutex_unlock(&p.mu);
        }
        if (!k)
            break; /* done, nothing left */
        rc = cd_sink(c, k->buf, k->len);
        if (done) {
            /* The reader is finished: give the memory back at once. The sink (page cache,
             * tmpfs, socket buffers) then reuses these pages instead of fresh ones. */
            chunk_free_list(k);
            continue;
        }
        pthread_mutex_lock(&p.mu);
        k->next = p.free;
        p.free = k;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
    }
    pthread_join(th, NULL);
out_nothread:
    chunk_free_list(p.head);
    chunk_free_list(p.free);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    return rc;
}

/* Bytes the dump will copy, from the smaps read before the freeze (an estimate: the process may
 * still change until it is frozen). */
static uint64_t cd_estimate(struct cd_ctx *c)
{
    uint64_t est = 0;
    for (size_t i = 0; i < c->pre.n; i++) {
        const struct vg__cd_map *m = &c->pre.v[i];
        if (!(m->prot & VG__CD_PROT_R) || m->dontdump ||
            (m->name && strncmp(m->name, "[vvar", 5) == 0))
            continue;
        if (c->type == VG_DUMP_FULL)
            est += m->end - m->start;
        else if (c->type == VG_DUMP_WITH_HEAP)
            est += filter_size(c, m);
    }
    return est;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

struct cd_populate {
    char *p;
    size_t len;
    int rc;
};

static void *populate_part(void *arg)
{
    struct cd_populate *w = arg;
    w->rc = 0;
    if (madvise(w->p, w->len, MADV_POPULATE_WRITE) == 0)
        return NULL;
    if (errno != EINVAL) { /* EINVAL: kernel < 5.14, touch instead */
        w->rc = -errno;
        return NULL;
    }
    for (size_t o = 0; o < w->len; o += CD_PAGE)
        w->p[o] = 0;
    return NULL;
}

/* Faults in [p, p+len) before the freeze, on two cores when there are two: page faults (zeroing,
 * and on a VM the host's own faults) cost as much as the copy itself. */
static int populate(char *p, size_t len)
{
    struct cd_populate w[2] = {{p, len, 0}, {NULL, 0, 0}};
    pthread_t th;
    int two = len >= (64u << 20) && sysconf(_SC_NPROCESSORS_ONLN) > 1;
    if (two) {
        size_t half = (len / 2) & ~(size_t)(CD_PAGE - 1);
        w[0].len = half;
        w[1].p = p + half;
        w[1].len = len - half;
        if (pthread_create(&th, NULL, populate_part, &w[1]) != 0) {
            w[0].len = len;
            two = 0;
        }
    }
    populate_part(&w[0]);
    if (two)
        pthread_join(th, NULL);
    return w[0].rc ? w[0].rc : w[1].rc;
}

/* The copy buffer: enough for the whole dump when memory allows (a third of MemAvailable at
 * most), allocated and faulted in before the freeze, so the target waits only for the copy
 * itself, not for page faults on fresh buffers nor for the sink. */
static void cd_warm_chunks(struct cd_ctx *c, uint64_t est, int warm)
{
    uint64_t budget = mem_available() / 3;
    if (budget > CD_BUF_MAX)
        budget = CD_BUF_MAX;
    c->budget = budget / CD_CHUNK;
    if (c->budget < CD_BUF_MIN_CHUNKS)
        c->budget = CD_BUF_MIN_CHUNKS;
    if (!warm)
        return;
    size_t n = (size_t)(est / CD_CHUNK) + 2;
    if (n < CD_BUF_MIN_CHUNKS)
        n = CD_BUF_MIN_CHUNKS;
    if (n > c->budget)
        n = c->budget;
    for (size_t i = 0; i < n; i++) {
        struct cd_chunk *k = chunk_new();
        if (!k)
            break;
        if (madvise(k->buf, CD_CHUNK, MADV_POPULATE_WRITE) != 0)
            for (size_t o = 0; o < CD_CHUNK; o += CD_PAGE)
                k->buf[o] = 0;
        k->next = c->warm;
        c->warm = k;
        c->nwarm++;
    }
}

/* ---- file output: straight into the file ---------------------------------------------------
 *
 * For a file there is no need to hold the whole dump in a buffer of our own: while frozen, the
 * target's memory is copied once, by process_vm_readv, into a MAP_SHARED mapping of the output
 * file whose pages (tmpfs or page cache) were allocated and faulted in before the freeze. The
 * target waits only for the copy (two copiers on two cores); after the resume only the headers
 * are written. Headers and notes are not known before the freeze, so room for them is reserved
 * at the start of the file (a hole where unused) and the data starts at that fixed offset. The
 * range is fallocated first, so a full disk shows up as an error before the freeze and never as
 * SIGBUS on the mapping. Whatever does not fit these assumptions falls back to streaming.
 * (Tried and dropped: fallocate + pwrite from a small bounce buffer while frozen. On tmpfs the
 * fallocated pages are only touched, and zeroed, by that write, so the freeze grew 2-6x.) */

#define CD_COPY_JOB (4u << 20)

static void cd_map_drop(struct cd_ctx *c)
{
    if (!c->map)
        return;
    munmap(c->map, c->map_len);
    c->map = NULL;
    c->map_len = 0;
    c->direct = 0;
    /* Nothing has been written yet: the streaming path starts from an empty file. */
    if (ftruncate(c->fd, 0) != 0)
        (void)0; /* streaming overwrites from offset 0 anyway */
}

static int cd_map_prepare(struct cd_ctx *c, uint64_t est)
{
    pid_t *tids = NULL;
    size_t nth = 0;
    uint64_t files = 0;
    if (cd_list_tasks(c->pid, &tids, &nth) != 0)
        nth = 1;
    free(tids);
    for (size_t i = 0; i < c->pre.n; i++)
        if (c->pre.v[i].path)
            files += strlen(c->pre.v[i].path) + 1 + 3 * sizeof(uint64_t);
    /* Headers: one program header per mapping (Mini splits mappings around stacks and loader
     * data), notes per thread (prstatus, fpregs, xstate, siginfo) with room for threads that
     * start before the freeze, NT_FILE, auxv, psinfo. Unused room stays a hole. */
    uint64_t room = sizeof(Elf64_Ehdr) + sizeof(Elf64_Shdr) +
                    (4 * (uint64_t)c->pre.n + 4 * (uint64_t)nth + 64) * sizeof(Elf64_Phdr) +
                    2 * files + (2 * (uint64_t)nth + 16) * (CD_XSTATE_MAX / 2 + 2048) + (64u << 10);
    room = (room + CD_PAGE - 1) & ~(uint64_t)(CD_PAGE - 1);
    uint64_t len = (est + CD_PAGE - 1) & ~(uint64_t)(CD_PAGE - 1);
    if (!len)
        len = CD_PAGE;
    /* The prepared pages are held until the dump is written: bounded like the copy buffer. */
    if (len > mem_available() / 2)
        return VG_ENOMEM;
    if (fallocate(c->fd, 0, (off_t)room, (off_t)len) != 0)
        return -errno;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, (off_t)room);
    if (m == MAP_FAILED) {
        int e = -errno;
        if (ftruncate(c->fd, 0) != 0)
            (void)0;
        return e;
    }
    c->map = m;
    c->map_len = len;
    c->data_off_min = room;
    c->direct = 1;
    int rc = populate(c->map, len);
    if (rc)
        cd_map_drop(c);
    return rc;
}

/* While frozen, after the layout: the data must start at the reserved offset and fit the
 * mapping (grown if the process grew since smaps was read). */
static int cd_map_fit(struct cd_ctx *c)
{
    uint64_t total = 0;
    if (c->hdr.len != c->data_off_min)
        return VG_ENOSPC; /* headers larger than reserved */
    for (size_t i = 0; i < c->nseg; i++)
        total += c->seg[i].filesz;
    if (total <= c->map_len)
        return 0;
    uint64_t len = (total + CD_PAGE - 1) & ~(uint64_t)(CD_PAGE - 1);
    if (fallocate(c->fd, 0, (off_t)(c->data_off_min + c->map_len), (off_t)(len - c->map_len)))
        return -errno;
    void *m = mremap(c->map, c->map_len, len, MREMAP_MAYMOVE);
    if (m == MAP_FAILED)
        return -errno;
    c->map = m;
    c->map_len = len;
    return 0;
}

struct cd_job {
    uint64_t addr, off; /* off: file offset */
    size_t len;
};

struct cd_copy {
    struct cd_ctx *c;
    struct cd_job *jobs;
    size_t njobs;
    size_t next; /* __atomic */
    int rc;      /* __atomic: the first error stops every copier */
};

static void *cd_copy_worker(void *arg)
{
    struct cd_copy *w = arg;
    struct cd_ctx *c = w->c;
    while (!__atomic_load_n(&w->rc, __ATOMIC_RELAXED)) {
        size_t i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
        if (i >= w->njobs)
            break;
        const struct cd_job *j = &w->jobs[i];
        char *dst = c->map + (j->off - c->data_off_min);
        int rc = cd_read_mem(c, j->addr, dst, j->len);
        if (!rc && c->type == VG_DUMP_TRIAGE)
            redact(c, j->addr, dst, j->len);
        if (rc) {
            int zero = 0;
            __atomic_compare_exchange_n(&w->rc, &zero, rc, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
            break;
        }
    }
    return NULL;
}

static int pwrite_all(int fd, const char *p, size_t len, off_t off)
{
    while (len) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EDQUOT ? VG_EQUOTA : -errno;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Frozen: copy every segment into the file (two copiers on two cores), resume the target, then
 * write the headers and cut the file to its size. */
static int cd_copy_direct(struct cd_ctx *c)
{
    struct cd_copy w;
    uint64_t total = 0;
    int rc = 0;

    memset(&w, 0, sizeof(w));
    w.c = c;
    size_t cap = 0;
    for (size_t i = 0; i < c->nseg; i++)
        cap += (size_t)((c->seg[i].filesz + CD_COPY_JOB - 1) / CD_COPY_JOB);
    w.jobs = calloc(cap ? cap : 1, sizeof(*w.jobs));
    if (!w.jobs)
        return cd_fail(c, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->nseg; i++) {
        const struct cd_seg *s = &c->seg[i];
        for (uint64_t off = 0; off < s->filesz; off += CD_COPY_JOB) {
            struct cd_job *j = &w.jobs[w.njobs++];
            j->addr = s->vaddr + off;
            j->off = s->offset + off;
            j->len = (size_t)(s->filesz - off < CD_COPY_JOB ? s->filesz - off : CD_COPY_JOB);
        }
        total += s->filesz;
    }
    pthread_t th;
    int two = w.njobs > 1 && sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
              pthread_create(&th, NULL, cd_copy_worker, &w) == 0;
    cd_copy_worker(&w);
    if (two)
        pthread_join(th, NULL);
    free(w.jobs);
    cd_detach(c);
    if (w.rc)
        return w.rc;

    uint64_t size = c->hdr.len + total;
    rc = pwrite_all(c->fd, c->hdr.data, c->hdr_used, 0);
    if (!rc && ftruncate(c->fd, (off_t)size) != 0)
        rc = errno == EDQUOT ? VG_EQUOTA : -errno;
    munmap(c->map, c->map_len);
    c->map = NULL;
    c->map_len = 0;
    if (rc)
        return cd_fail(c, rc, "writing the core failed: %s", vg_strerror(rc));
    c->bytes = size;
    return 0;
}

static int cd_run(struct cd_ctx *c)
{
    char path[64], buf[64];
    struct stat sb;
    int rc;

    snprintf(path, sizeof(path), "/proc/%d", (int)c->pid);
    if (c->pid <= 0 || stat(path, &sb) < 0)
        return cd_fail(c, VG_ESRCH, "no such process: %d", (int)c->pid);
    if (c->pid == getpid())
        return cd_fail(c, VG_EINVAL, "cannot dump this process itself (pid %d)", (int)c->pid);

    c->filter = CD_FILTER_DEFAULT;
    snprintf(path, sizeof(path), "/proc/%d/coredump_filter", (int)c->pid);
    if (read_small(path, buf, sizeof(buf)) > 0)
        c->filter = (unsigned)strtoul(buf, NULL, 16);

    /* smaps before the freeze: its page walk would otherwise stretch the freeze. */
    rc = vg__cd_read_maps(c->pid, 1, &c->pre);
    if (rc == -ENOENT || rc == -ESRCH)
        return cd_fail(c, VG_ESRCH, "no such process: %d", (int)c->pid);
    if (rc == -EACCES || rc == -EPERM)
        return cd_perm_error(c, rc, "read the memory map of");
    if (rc)
        return cd_fail(c, rc, "reading /proc/%d/smaps: %s", (int)c->pid, vg_strerror(rc));
    uint64_t est = cd_estimate(c);
    if (c->fd >= 0 && cd_map_prepare(c, est) != 0)
        c->direct = 0; /* stream into the file instead */
    cd_warm_chunks(c, est, !c->direct);

    rc = cd_attach(c);
    if (rc)
        return rc;

    rc = vg__cd_read_maps(c->pid, 0, &c->maps);
    if (rc == -ENOENT || rc == -ESRCH)
        return cd_exited(c);
    if (rc)
        return cd_fail(c, rc, "reading /proc/%d/maps: %s", (int)c->pid, vg_strerror(rc));
    vg__cd_merge_flags(&c->maps, &c->pre);

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)c->pid);
    rc = vg__cd_read_stat(path, &c->pst);
    if (rc)
        return cd_process_gone(c->pid) ? cd_exited(c)
                                       : cd_fail(c, rc, "reading %s: %s", path, vg_strerror(rc));

    unsigned char *xbuf = malloc(CD_XSTATE_MAX);
    if (!xbuf)
        return cd_fail(c, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->nth && !rc; i++)
        if (!c->th[i].gone)
            rc = cd_read_regs(c, &c->th[i], xbuf);
    free(xbuf);
    if (rc)
        return rc;

    snprintf(path, sizeof(path), "/proc/%d/auxv", (int)c->pid);
    if (vg__cd_read_file(path, &c->auxv, &c->auxv_len) != 0)
        c->auxv_len = 0;
    if (c->type == VG_DUMP_MINI || c->type == VG_DUMP_TRIAGE)
        rc = cd_plan_wants(c);
    for (size_t i = 0; i < c->maps.n && !rc; i++)
        rc = cd_plan_map(c, i);
    if (rc)
        return cd_fail(c, rc, "planning segments: %s", vg_strerror(rc));
    rc = cd_layout(c);
    if (rc)
        return rc;
    if (c->direct && cd_map_fit(c) != 0)
        cd_map_drop(c); /* stream instead, with buffers taken while frozen: slower, correct */
    if (c->direct)
        return cd_copy_direct(c);
    return cd_stream(c);
}

/* fd >= 0: file output (memory copied straight into the file when possible, else `write`). */
static int cd_dump(pid_t pid, enum vg_dump_type type, vg_dump_write_cb write, void *ctx, int fd,
                   struct vg_dump_result *res, char *err, size_t errlen)
{
    struct cd_ctx c;
    uint64_t t0 = now_us();
    int rc;

    memset(&c, 0, sizeof(c));
    pthread_mutex_init(&c.err_mu, NULL);
    c.fd = fd;
    c.pid = pid;
    c.type = type;
    c.err = err;
    c.errlen = errlen;
    c.write = write;
    c.wctx = ctx;
    c.memfd = -1;
    vg_buf_init(&c.hdr);
    if (err && errlen)
        err[0] = '\0';
    if (res)
        memset(res, 0, sizeof(*res));
    if (!write || (unsigned)type > VG_DUMP_TRIAGE) {
        rc = cd_fail(&c, VG_EINVAL, "invalid arguments");
        pthread_mutex_destroy(&c.err_mu);
        return rc;
    }

    rc = cd_run(&c);
    cd_detach(&c);

    if (res) {
        res->bytes = c.bytes;
        res->freeze_us = c.frozen ? c.t_freeze1 - c.t_freeze0 : 0;
        res->wall_us = now_us() - t0;
        for (size_t i = 0; i < c.nth; i++)
            res->threads += !c.th[i].gone || c.th[i].stopped;
        res->segments = (unsigned)c.nseg;
    }
    for (size_t i = 0; i < c.nth; i++)
        free(c.th[i].xstate);
    free(c.th);
    free(c.seg);
    free(c.want);
    chunk_free_list(c.warm);
    free(c.auxv);
    vg__cd_maps_free(&c.pre);
    vg__cd_maps_free(&c.maps);
    vg_buf_free(&c.hdr);
    if (c.memfd >= 0)
        close(c.memfd);
    if (c.map)
        munmap(c.map, c.map_len);
    pthread_mutex_destroy(&c.err_mu);
    return rc;
}

#else /* !__x86_64__ */

static int cd_dump(pid_t pid, enum vg_dump_type type, vg_dump_write_cb write, void *ctx, int fd,
                   struct vg_dump_result *res, char *err, size_t errlen)
{
    (void)pid, (void)type, (void)write, (void)ctx, (void)fd;
    if (res)
        memset(res, 0, sizeof(*res));
    if (err && errlen)
        snprintf(err, errlen, "core dumps are implemented for x86_64 only");
    return VG_EUNSUPPORTED;
}

#endif

int vg_coredump_write(pid_t pid, enum vg_dump_type type, vg_dump_write_cb write, void *ctx,
                      struct vg_dump_result *res, char *err, size_t errlen)
{
    return cd_dump(pid, type, write, ctx, -1, res, err, errlen);
}

/* ---- file sink --------------------------------------------------------------------------------
 */

struct file_sink {
    int fd;
};

static int file_write(void *ctx, const void *buf, size_t len)
{
    struct file_sink *f = ctx;
    const char *p = buf;
    while (len) {
        ssize_t n = write(f->fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EDQUOT ? VG_EQUOTA : -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int vg_coredump_to_file(pid_t pid, enum vg_dump_type type, const char *path,
                        struct vg_dump_result *res, char *err, size_t errlen)
{
    struct file_sink f;
    int rc;
    if (err && errlen)
        err[0] = '\0';
    if (!path)
        return VG_EINVAL;
    f.fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600); /* RDWR: mapped */
    if (f.fd < 0) {
        rc = -errno;
        if (err && errlen)
            snprintf(err, errlen, "cannot create %s: %s", path, vg_strerror(rc));
        return rc;
    }
    rc = cd_dump(pid, type, file_write, &f, f.fd, res, err, errlen);
    if (!rc && fsync(f.fd) < 0) {
        rc = errno == EDQUOT ? VG_EQUOTA : -errno;
        if (err && errlen)
            snprintf(err, errlen, "fsync %s: %s", path, vg_strerror(rc));
    }
    if (close(f.fd) < 0 && !rc) {
        rc = errno == EDQUOT ? VG_EQUOTA : -errno;
        if (err && errlen)
            snprintf(err, errlen, "closing %s: %s", path, vg_strerror(rc));
    }
    if (rc) {
        unlink(path);
        if (err && errlen && (rc == VG_ENOSPC || rc == VG_EQUOTA)) {
            char tmp[256];
            snprintf(tmp, sizeof(tmp), "%s", err);
            snprintf(err, errlen, "%s: %s (partial file removed)", path, tmp);
        }
    }
    return rc;
}
