#include "engine/host/proc_int.h"

#include "config/error.h"
#include "config/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define PF_KTHREAD_FLAG 0x00200000u
#define RUNTIME_CHECKS_MAX 3
#define CMDLINE_CHECKS_MAX 8
#define CGROUP_REREAD_SCANS 30
/* Kernel threads and zombies are remembered by pid only; re-verify them now and then in case the
 * pid was reused between two scans. */
#define IGNORED_RECHECK_EVERY 32
/* A process nobody samples is checked for a new program every sweep while it is young (wrappers
 * exec their program at once), then every IDENTITY_EVERY scans (spread over the scans by pid):
 * on 10,000 idle processes the comm reads were half the daemon's CPU. Its exit shows at once
 * (its pid leaves the listing). */
#define IDENTITY_YOUNG_SECONDS 10
#define IDENTITY_EVERY 5

struct ign {
    int pid;
    uint64_t start_ticks;
    uint64_t seen_gen;
    struct ign *next;
};

/* An interned set of cgroup paths, shared by the processes that live in those cgroups. */
struct cg_ref {
    size_t refs;
    uint64_t hash;
    struct cg_ref *next;
    struct vg_proc_cgroup cg;
};
#define CG_BUCKETS 256

static const struct vg_proc_cgroup no_cgroup;

struct vg_proc_table {
    char *proc_root;
    int root_fd; /* proc_root, O_DIRECTORY: listed each scan, base of every openat */
    char boot_id[40];
    int exclude_pid;
    bool fd_size; /* procfs reports the open fd count as st_size of PID/fd (Linux >= 6.2) */
    long clk_tck;
    uint64_t uptime_ticks; /* read each scan; 0 when proc_root has no uptime */
    const struct vg_proc_detector *detector;
    int max_kept;
    int kept;
    uint64_t gen;
    size_t count;
    size_t nbuckets; /* power of two */
    struct vg_proc **buckets;
    struct ign **ign_buckets; /* same size as buckets */
    struct cg_ref *cgroups[CG_BUCKETS];
};

static const char *const pf_names[VG__PF_COUNT] = {"stat", "status", "io", "fd", "comm"};

/* ---- small helpers ------------------------------------------------------------------------ */

/* ---- table internals -------------------------------------------------------------------- */

static size_t bucket_of(const struct vg_proc_table *t, int pid)
{
    uint32_t h = (uint32_t)pid * 2654435761u;
    return h & (t->nbuckets - 1);
}

static uint64_t identity_key(const char *boot_id, int pid, uint64_t start)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *s = boot_id; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    uint64_t parts[2] = {(uint64_t)(uint32_t)pid, start};
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 8; b++)
            h = (h ^ ((parts[i] >> (b * 8)) & 0xff)) * 1099511628211ull;
    /* splitmix finalizer spreads FNV's weak low bits */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static int grow(struct vg_proc_table *t)
{
    size_t n = t->nbuckets * 2;
    struct vg_proc **b = calloc(n, sizeof(*b));
    struct ign **ib = calloc(n, sizeof(*ib));
    if (!b || !ib) {
        free(b);
        free(ib);
        return VG_ENOMEM;
    }
    size_t old = t->nbuckets;
    t->nbuckets = n;
    for (size_t i = 0; i < old; i++) {
        struct vg_proc *p = t->buckets[i];
        while (p) {
            struct vg_proc *next = p->hnext;
            size_t k = bucket_of(t, p->pid);
            p->hnext = b[k];
            b[k] = p;
            p = next;
        }
        struct ign *g = t->ign_buckets[i];
        while (g) {
            struct ign *next = g->next;
            size_t k = bucket_of(t, g->pid);
            g->next = ib[k];
            ib[k] = g;
            g = next;
        }
    }
    free(t->buckets);
    free(t->ign_buckets);
    t->buckets = b;
    t->ign_buckets = ib;
    return 0;
}

static void close_fds(struct vg_proc *p)
{
    for (int i = 0; i < VG__PF_COUNT; i++) {
        if (p->pf[i] >= 0) {
            close(p->pf[i]);
            p->pf[i] = -1;
            p->table->kept--;
        }
    }
}

static uint64_t cg_hash(const struct vg_proc_cgroup *cg)
{
    uint64_t h = 1469598103934665603ull;
    const char *parts[3] = {cg->v2, cg->v1_memory, cg->v1_cpu};
    for (int i = 0; i < 3; i++)
        for (const char *s = parts[i];; s++) {
            h = (h ^ (unsigned char)*s) * 1099511628211ull;
            if (!*s)
                break;
        }
    return h;
}

static void cg_release(struct vg_proc_table *t, const struct vg_proc_cgroup *cg)
{
    if (!cg || cg == &no_cgroup)
        return;
    struct cg_ref *r = (struct cg_ref *)(void *)((char *)cg - offsetof(struct cg_ref, cg));
    if (--r->refs)
        return;
    struct cg_ref **pp = &t->cgroups[r->hash % CG_BUCKETS];
    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp)
        *pp = r->next;
    free(r);
}

/* The shared copy of cg (a new one when none is known); &no_cgroup when out of memory. */
static const struct vg_proc_cgroup *cg_intern(struct vg_proc_table *t,
                                              const struct vg_proc_cgroup *cg)
{
    uint64_t h = cg_hash(cg);
    struct cg_ref **b = &t->cgroups[h % CG_BUCKETS];
    for (struct cg_ref *r = *b; r; r = r->next)
        if (r->hash == h && strcmp(r->cg.v2, cg->v2) == 0 &&
            strcmp(r->cg.v1_memory, cg->v1_memory) == 0 && strcmp(r->cg.v1_cpu, cg->v1_cpu) == 0) {
            r->refs++;
            return &r->cg;
        }
    struct cg_ref *r = malloc(sizeof(*r));
    if (!r)
        return &no_cgroup;
    r->refs = 1;
    r->hash = h;
    r->cg = *cg;
    r->next = *b;
    *b = r;
    return &r->cg;
}

static void forget_runtime(struct vg_proc *p);

static void proc_free(struct vg_proc *p)
{
    if (!p)
        return;
    forget_runtime(p);
    cg_release(p->table, p->cgroup);
    close_fds(p);
    free(p->cmdline);
    free(p->exe);
    free(p);
}

static void unlink_proc(struct vg_proc_table *t, struct vg_proc *p)
{
    struct vg_proc **pp = &t->buckets[bucket_of(t, p->pid)];
    while (*pp && *pp != p)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = p->hnext;
        t->count--;
    }
}

static struct ign *ign_find(const struct vg_proc_table *t, int pid)
{
    for (struct ign *g = t->ign_buckets[bucket_of(t, pid)]; g; g = g->next)
        if (g->pid == pid)
            return g;
    return NULL;
}

static void ign_remove(struct vg_proc_table *t, struct ign *g)
{
    struct ign **pp = &t->ign_buckets[bucket_of(t, g->pid)];
    while (*pp && *pp != g)
        pp = &(*pp)->next;
    if (*pp)
        *pp = g->next;
    free(g);
}

/* Out of descriptors (EMFILE, ENFILE): half the kept ones go back and the budget drops to what
 * is left, so the daemon's sockets and files get theirs; reads go on by open/read/close. */
static void shed_kept(struct vg_proc_table *t)
{
    int target = t->kept / 2;
    for (size_t i = 0; i < t->nbuckets && t->kept > target; i++)
        for (struct vg_proc *p = t->buckets[i]; p && t->kept > target; p = p->hnext)
            close_fds(p);
    t->max_kept = t->kept;
}

/* openat under proc_root that gives kept fds back once when the process is out of them. */
static int open_rel(struct vg_proc_table *t, const char *rel, int flags)
{
    int fd = openat(t->root_fd, rel, flags);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && t->kept > 0) {
        shed_kept(t);
        fd = openat(t->root_fd, rel, flags);
    }
    return fd < 0 ? -errno : fd;
}

static int open_pf(struct vg_proc_table *t, int pid, int which)
{
    char rel[64];
    snprintf(rel, sizeof(rel), "%d/%s", pid, pf_names[which]);
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
    if (which == VG__PF_FD)
        flags |= O_DIRECTORY;
    return open_rel(t, rel, flags);
}

/* Keeps fd in slot `which` when the budget allows; otherwise closes it. A process only checked
 * for identity keeps its comm fd alone; a sampled one never needs comm (stat has it). Files
 * read every sweep (stat, comm) come first: the others (status, io, fd) take at most half the
 * budget, so that on a host with more processes than fds every stat is still a pread. */
static void keep_or_close(struct vg_proc *p, int which, int fd)
{
    struct vg_proc_table *t = p->table;
    bool wanted = p->identity_only == (which == VG__PF_COMM);
    int limit = which == VG__PF_STAT || which == VG__PF_COMM ? t->max_kept : t->max_kept / 2;
    if (wanted && p->pf[which] < 0 && t->kept < limit) {
        p->pf[which] = fd;
        t->kept++;
    } else {
        close(fd);
    }
}

ssize_t vg__proc_read(struct vg_proc *p, int which, char *buf, size_t cap)
{
    ssize_t n;
    if (p->pf[which] >= 0) {
        n = pread(p->pf[which], buf, cap - 1, 0);
        if (n < 0)
            return -errno;
        buf[n] = '\0';
        return n;
    }
    int fd = open_pf(p->table, p->pid, which);
    if (fd < 0)
        return fd;
    n = read(fd, buf, cap - 1);
    int err = errno;
    if (n < 0) {
        close(fd);
        return -err;
    }
    buf[n] = '\0';
    keep_or_close(p, which, fd);
    return n;
}

ssize_t vg__proc_read_rel(struct vg_proc *p, const char *rel, char *buf, size_t cap)
{
    char path[96];
    snprintf(path, sizeof(path), "%d/%s", p->pid, rel);
    return vg_procfs_read(p->table->root_fd, path, buf, cap);
}

static int count_dir(int fd)
{
    char buf[4096] __attribute__((aligned(8)));
    int count = 0;
    for (;;) {
        ssize_t n = getdents64(fd, buf, sizeof(buf));
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(void *)(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] == '.' &&
                (d->d_name[1] == '\0' || (d->d_name[1] == '.' && d->d_name[2] == '\0')))
                continue;
            count++;
        }
    }
    return count;
}

int vg__proc_count_fds(struct vg_proc *p)
{
    int fd = p->pf[VG__PF_FD];
    struct stat sb;
    if (p->table->fd_size) {
        /* O(1) in the kernel, where listing the directory costs a dentry lookup per fd */
        bool opened = false;
        if (fd < 0) {
            char rel[32];
            snprintf(rel, sizeof(rel), "%d/fd", p->pid);
            fd = open_rel(p->table, rel, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0)
                return fd;
            opened = true;
        }
        int r = fstat(fd, &sb) < 0 ? -errno : 0;
        if (opened) {
            if (r < 0)
                close(fd);
            else
                keep_or_close(p, VG__PF_FD, fd);
        }
        if (r < 0)
            return r;
        return sb.st_size > INT_MAX ? INT_MAX : (int)sb.st_size;
    }
    if (fd >= 0) {
        if (lseek(fd, 0, SEEK_SET) < 0)
            return -errno;
        return count_dir(fd);
    }
    fd = open_pf(p->table, p->pid, VG__PF_FD);
    if (fd < 0)
        return fd;
    int n = count_dir(fd);
    if (n < 0)
        close(fd);
    else
        keep_or_close(p, VG__PF_FD, fd);
    return n;
}

int vg__proc_refresh_stat(struct vg_proc *p)
{
    char buf[1024];
    ssize_t n = vg__proc_read(p, VG__PF_STAT, buf, sizeof(buf));
    if (n == -ESRCH || n == -ENOENT)
        return VG_EEXITED;
    if (n < 0)
        return (int)n;
    struct vg_proc_stat st;
    if (vg_procfs_parse_stat(buf, (size_t)n, &st) < 0)
        return VG_EPARSE;
    if (st.start_ticks != p->start_ticks || st.state == 'Z' || st.state == 'X')
        return VG_EEXITED;
    p->st = st;
    return 0;
}

/* ---- discovery ---------------------------------------------------------------------------- */

static void parse_status_identity(struct vg_proc *p, const char *text, size_t len)
{
    struct vg_proc_status st;
    vg_procfs_parse_status(text, len, &st);
    memcpy(p->name, st.name, sizeof(p->name));
    if (st.uid[0] >= 0)
        p->uid = (uid_t)st.uid[0];
    p->nspid_count = st.nspid_count;
    memcpy(p->nspid, st.nspid, sizeof(p->nspid));
}

static void read_cmdline(struct vg_proc *p)
{
    char buf[VG_PROC_CMDLINE_MAX + 1];
    char rel[64];
    snprintf(rel, sizeof(rel), "%d/cmdline", p->pid);
    int fd = open_rel(p->table, rel, O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    if (fd >= 0) {
        /* cmdline is not a seq file: it may come in page-sized pieces. */
        while (len < VG_PROC_CMDLINE_MAX) {
            ssize_t n = read(fd, buf + len, VG_PROC_CMDLINE_MAX - len);
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        close(fd);
    }
    while (len > 0 && buf[len - 1] == '\0')
        len--;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\0' || buf[i] == '\n')
            buf[i] = ' ';
    buf[len] = '\0';
    free(p->cmdline);
    p->cmdline = vg_strndup(buf, len);
}

static void read_exe(struct vg_proc *p)
{
    char rel[64];
    char buf[PATH_MAX];
    snprintf(rel, sizeof(rel), "%d/exe", p->pid);
    free(p->exe);
    p->exe = NULL;
    ssize_t n = readlinkat(p->table->root_fd, rel, buf, sizeof(buf) - 1);
    if (n > 0) {
        buf[n] = '\0';
        p->exe = vg_strdup(buf);
    }
}

static void read_cgroup(struct vg_proc *p)
{
    char buf[4096];
    char rel[64];
    snprintf(rel, sizeof(rel), "%d/cgroup", p->pid);
    struct vg_proc_cgroup cg;
    memset(&cg, 0, sizeof(cg));
    p->cgroup_gen = p->table->gen;
    if (vg_procfs_read(p->table->root_fd, rel, buf, sizeof(buf)) > 0)
        vg_cgroup_parse_proc(buf, &cg);
    const struct vg_proc_cgroup *old = p->cgroup;
    p->cgroup = cg_intern(p->table, &cg);
    cg_release(p->table, old);
}

static void detect_runtime(struct vg_proc *p, bool young)
{
    struct vg_proc_table *t = p->table;
    if (!t->detector)
        return;
    p->runtime_checks++;
    p->runtime_settled = t->detector->detect(p, young, t->detector->arg);
}

static void forget_runtime(struct vg_proc *p)
{
    struct vg_proc_table *t = p->table;
    if (t->detector && (p->runtime || p->runtime_data))
        t->detector->forget(p, t->detector->arg);
    p->runtime = NULL;
    p->runtime_data = NULL;
}

/* A process younger than a second may not have loaded its runtime yet, and most such processes
 * (compilers, shell commands) are gone by the next scan: the detector looks at it then. */
static bool is_young(const struct vg_proc *p)
{
    const struct vg_proc_table *t = p->table;
    return t->uptime_ticks && t->uptime_ticks >= p->start_ticks &&
           t->uptime_ticks - p->start_ticks < (uint64_t)t->clk_tck;
}

static void read_identity(struct vg_proc *p)
{
    char buf[8192];
    p->name[0] = '\0';
    p->nspid_count = 0;
    ssize_t n = vg__proc_read(p, VG__PF_STATUS, buf, sizeof(buf));
    if (n > 0)
        parse_status_identity(p, buf, (size_t)n);
    if (!p->name[0])
        snprintf(p->name, sizeof(p->name), "%s", p->st.comm);
    if (p->nspid_count == 0) {
        p->nspid[0] = p->pid;
        p->nspid_count = 1;
    }
    p->ns_pid = p->nspid[p->nspid_count - 1];
    read_cmdline(p);
    p->cmdline_checks = 0;
    read_exe(p);
    forget_runtime(p);
    p->runtime_checks = 0;
    detect_runtime(p, is_young(p));
}

/* PF_KTHREAD is authoritative. The pid/ppid 2 fallback needs an empty cmdline too: inside a
 * container's PID namespace pid 2 is an ordinary process. */
static bool is_kernel_thread(const struct vg_proc_table *t, const struct vg_proc_stat *st, int pid)
{
    if (st->flags & PF_KTHREAD_FLAG)
        return true;
    if (pid != 2 && st->ppid != 2)
        return false;
    char rel[32];
    char buf[8];
    snprintf(rel, sizeof(rel), "%d/cmdline", pid);
    return vg_procfs_read(t->root_fd, rel, buf, sizeof(buf)) == 0;
}

static int add_ignored(struct vg_proc_table *t, int pid, uint64_t start)
{
    struct ign *g = calloc(1, sizeof(*g));
    if (!g)
        return VG_ENOMEM;
    g->pid = pid;
    g->start_ticks = start;
    g->seen_gen = t->gen;
    size_t k = bucket_of(t, pid);
    g->next = t->ign_buckets[k];
    t->ign_buckets[k] = g;
    return 0;
}

static void report_exit(struct vg_proc_table *t, struct vg_proc *p,
                        const struct vg_proc_scan_cb *cb)
{
    unlink_proc(t, p);
    if (cb && cb->exited)
        cb->exited(p, cb->arg);
    proc_free(p);
}

static int add_new(struct vg_proc_table *t, int pid, const struct vg_proc_scan_cb *cb)
{
    char buf[1024];
    int fd = open_pf(t, pid, VG__PF_STAT);
    if (fd < 0)
        return 0; /* gone already, or hidden: nothing to track */
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    struct vg_proc_stat st;
    if (n <= 0 || vg_procfs_parse_stat(buf, (size_t)n, &st) < 0) {
        close(fd);
        return 0;
    }
    if (is_kernel_thread(t, &st, pid) || st.state == 'Z' || st.state == 'X') {
        close(fd);
        return add_ignored(t, pid, st.start_ticks);
    }
    if (t->count >= t->nbuckets) {
        int r = grow(t);
        if (r < 0) {
            close(fd);
            return r;
        }
    }
    struct vg_proc *p = calloc(1, sizeof(*p));
    if (!p) {
        close(fd);
        return VG_ENOMEM;
    }
    for (int i = 0; i < VG__PF_COUNT; i++)
        p->pf[i] = -1;
    p->table = t;
    p->cgroup = &no_cgroup;
    p->pid = pid;
    p->ppid = st.ppid;
    p->st = st;
    p->stat_fresh = true;
    p->start_ticks = st.start_ticks;
    p->seen_gen = t->gen;
    p->key = identity_key(t->boot_id, pid, st.start_ticks);
    snprintf(p->key_str, sizeof(p->key_str), "%s:%d:%llu", t->boot_id, pid,
             (unsigned long long)st.start_ticks);
    keep_or_close(p, VG__PF_STAT, fd);
    read_identity(p);
    if (!p->cmdline) {
        proc_free(p);
        return VG_ENOMEM;
    }
    read_cgroup(p);
    size_t k = bucket_of(t, pid);
    p->hnext = t->buckets[k];
    t->buckets[k] = p;
    t->count++;
    if (cb && cb->appeared)
        cb->appeared(p, cb->arg);
    return 0;
}

/* A process nobody samples: 1 when its kept comm fd still reads the same name (same process,
 * same program), 0 when only stat can tell (no kept fd, a new name, a read error), VG_EEXITED
 * when it is gone. A kept fd belongs to its process: after an exit it reads ESRCH even when the
 * pid was reused, so stat's start time is not needed. */
static int same_program(struct vg_proc *p)
{
    for (int i = 0; i < VG__PF_COUNT; i++)
        if (i != VG__PF_COMM && p->pf[i] >= 0) {
            close(p->pf[i]);
            p->pf[i] = -1;
            p->table->kept--;
        }
    if (p->pf[VG__PF_COMM] < 0)
        return 0;
    char buf[VG_PROC_NAME_MAX + 2];
    ssize_t n = pread(p->pf[VG__PF_COMM], buf, sizeof(buf) - 1, 0);
    if (n < 0)
        return errno == ESRCH || errno == ENOENT ? VG_EEXITED : 0;
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    buf[n] = '\0';
    return strcmp(buf, p->st.comm) == 0;
}

/* After stat said the process is the one known: keeps an identity-only process's comm fd for
 * the next scans (opened right after stat checked the start time). */
static void keep_comm(struct vg_proc *p)
{
    if (!p->identity_only || p->pf[VG__PF_COMM] >= 0 || p->table->kept >= p->table->max_kept)
        return;
    int fd = open_pf(p->table, p->pid, VG__PF_COMM);
    if (fd >= 0)
        keep_or_close(p, VG__PF_COMM, fd);
}

/* What a scan re-reads now and then for a known, unchanged process. */
static void recheck(struct vg_proc_table *t, struct vg_proc *p, const struct vg_proc_scan_cb *cb)
{
    if (!p->cmdline[0] && p->cmdline_checks < CMDLINE_CHECKS_MAX) {
        /* caught in the middle of execve, the command line reads empty for a moment:
         * look again, or CommandLine filters would never match this process */
        p->cmdline_checks++;
        read_cmdline(p);
        if (p->cmdline && p->cmdline[0] && cb && cb->changed)
            cb->changed(p, cb->arg);
        if (!p->cmdline)
            p->cmdline = vg_strdup("");
    } else if (!p->runtime_settled && p->runtime_checks < RUNTIME_CHECKS_MAX) {
        /* a runtime may map its library a moment after the process appears */
        const struct vg_runtime_type *before = p->runtime;
        detect_runtime(p, is_young(p));
        if (p->runtime != before && cb && cb->changed)
            cb->changed(p, cb->arg);
    }
    /* processes can be moved between cgroups; only sampling reads the path after discovery */
    if (!p->identity_only && t->gen - p->cgroup_gen >= CGROUP_REREAD_SCANS)
        read_cgroup(p);
}

static int handle_pid(struct vg_proc_table *t, int pid, const struct vg_proc_scan_cb *cb)
{
    struct vg_proc *p = vg_proc_table_find(t, pid);
    if (p && p->identity_only && p->pf[VG__PF_COMM] >= 0 &&
        (t->gen + (uint64_t)pid) % IDENTITY_EVERY != 0 && t->uptime_ticks > p->start_ticks &&
        t->uptime_ticks - p->start_ticks >= IDENTITY_YOUNG_SECONDS * (uint64_t)t->clk_tck) {
        p->seen_gen = t->gen;
        return 0;
    }
    if (p && p->identity_only) {
        int same = same_program(p);
        if (same == 1) {
            p->seen_gen = t->gen;
            recheck(t, p, cb);
            return 0;
        }
        if (same < 0) {
            report_exit(t, p, cb);
            p = NULL; /* the pid may now belong to a new process */
        }
    } else if (p && p->pf[VG__PF_COMM] >= 0) {
        close(p->pf[VG__PF_COMM]); /* sampled again: stat tells the name */
        p->pf[VG__PF_COMM] = -1;
        t->kept--;
    }
    if (p) {
        char prev_comm[VG_PROC_NAME_MAX];
        memcpy(prev_comm, p->st.comm, sizeof(prev_comm));
        int r = vg__proc_refresh_stat(p);
        if (r == 0) {
            p->seen_gen = t->gen;
            p->stat_fresh = true;
            p->ppid = p->st.ppid;
            if (strcmp(prev_comm, p->st.comm) != 0) {
                /* exec (or prctl rename): what we know about the program is stale */
                read_identity(p);
                if (cb && cb->changed)
                    cb->changed(p, cb->arg);
            } else {
                recheck(t, p, cb);
            }
            keep_comm(p);
            return 0;
        }
        if (r != VG_EEXITED && r != VG_EPARSE) {
            p->seen_gen = t->gen; /* transient read error: keep it */
            return 0;
        }
        report_exit(t, p, cb);
        /* the pid may now belong to a new process */
    }
    struct ign *g = ign_find(t, pid);
    if (g) {
        if (t->gen % IGNORED_RECHECK_EVERY != 0) {
            g->seen_gen = t->gen;
            return 0;
        }
        char buf[1024];
        char rel[32];
        struct vg_proc_stat st;
        snprintf(rel, sizeof(rel), "%d/stat", pid);
        ssize_t n = vg_procfs_read(t->root_fd, rel, buf, sizeof(buf));
        if (n > 0 && vg_procfs_parse_stat(buf, (size_t)n, &st) == 0 &&
            st.start_ticks == g->start_ticks) {
            g->seen_gen = t->gen; /* same kernel thread or zombie */
            return 0;
        }
        ign_remove(t, g);
    }
    return add_new(t, pid, cb);
}

/* ---- public API ---------------------------------------------------------------------------- */

static void read_boot_id(struct vg_proc_table *t)
{
    char buf[128];
    snprintf(t->boot_id, sizeof(t->boot_id), "unknown");
    ssize_t n = vg_procfs_read(t->root_fd, "sys/kernel/random/boot_id", buf, sizeof(buf));
    if (n <= 0)
        return;
    size_t len = strcspn(buf, "\n");
    if (len == 0)
        return;
    if (len >= sizeof(t->boot_id))
        len = sizeof(t->boot_id) - 1;
    memcpy(t->boot_id, buf, len);
    t->boot_id[len] = '\0';
}

int vg_proc_table_create(const struct vg_procfs *fs, const struct vg_proc_table_options *opts,
                         struct vg_proc_table **out)
{
    int r = 0;
    *out = NULL;
    struct vg_proc_table *t = calloc(1, sizeof(*t));
    if (!t)
        return VG_ENOMEM;
    t->root_fd = -1;
    t->proc_root = vg_strdup(fs && fs->proc_root ? fs->proc_root : "/proc");
    t->nbuckets = 64;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    t->ign_buckets = calloc(t->nbuckets, sizeof(*t->ign_buckets));
    if (!t->proc_root || !t->buckets || !t->ign_buckets) {
        r = VG_ENOMEM;
        goto out;
    }
    t->root_fd = open(t->proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (t->root_fd < 0) {
        r = -errno;
        goto out;
    }
    read_boot_id(t);
    t->clk_tck = sysconf(_SC_CLK_TCK);
    if (t->clk_tck <= 0)
        t->clk_tck = 100;
    /* Only a real procfs has the fd-count-as-size behaviour; our own fd dir is never empty. */
    struct statfs sfs;
    struct stat sb;
    t->fd_size = fstatfs(t->root_fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC &&
                 fstatat(t->root_fd, "self/fd", &sb, 0) == 0 && sb.st_size > 0;
    t->exclude_pid = opts ? opts->exclude_pid : 0;
    t->detector = opts ? opts->detector : NULL;
    int max_kept = opts ? opts->max_kept_fds : 0;
    if (max_kept == 0) {
        /* the soft limit less a quarter (at least 1024) for the daemon's sockets and files;
         * running out anyway only sheds kept fds (open_rel) */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
            rlim_t reserve = rl.rlim_cur / 4 > 1024 ? rl.rlim_cur / 4 : 1024;
            max_kept = rl.rlim_cur > reserve + 64 ? (int)(rl.rlim_cur - reserve) : 0;
        } else
            max_kept = 4096;
        if (max_kept > 65536)
            max_kept = 65536;
    }
    t->max_kept = max_kept < 0 ? 0 : max_kept;
out:
    if (r < 0) {
        vg_proc_table_destroy(t);
        return r;
    }
    *out = t;
    return 0;
}

void vg_proc_table_destroy(struct vg_proc_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->buckets && i < t->nbuckets; i++) {
        struct vg_proc *p = t->buckets[i];
        while (p) {
            struct vg_proc *next = p->hnext;
            proc_free(p);
            p = next;
        }
    }
    for (size_t i = 0; t->ign_buckets && i < t->nbuckets; i++) {
        struct ign *g = t->ign_buckets[i];
        while (g) {
            struct ign *next = g->next;
            free(g);
            g = next;
        }
    }
    if (t->root_fd >= 0)
        close(t->root_fd);
    free(t->buckets);
    free(t->ign_buckets);
    free(t->proc_root);
    free(t);
}

static bool all_digits(const char *s, int *pid)
{
    if (!*s)
        return false;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > INT_MAX / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    *pid = (int)v;
    return v > 0;
}

static void read_uptime(struct vg_proc_table *t)
{
    char buf[128];
    t->uptime_ticks = 0;
    if (vg_procfs_read(t->root_fd, "uptime", buf, sizeof(buf)) <= 0)
        return;
    uint64_t sec, frac = 0;
    bool ok;
    const char *p = vg_procfs_parse_u64(buf, &sec, &ok);
    if (!ok)
        return;
    if (*p == '.')
        vg_procfs_parse_u64(p + 1, &frac, &ok); /* hundredths */
    t->uptime_ticks = sec * (uint64_t)t->clk_tck + frac * (uint64_t)t->clk_tck / 100;
}

int vg_proc_scan(struct vg_proc_table *t, const struct vg_proc_scan_cb *cb)
{
    int r = 0;
    t->gen++;
    read_uptime(t);
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct vg_proc *p = t->buckets[i]; p; p = p->hnext)
            p->stat_fresh = false;

    /* A fresh fd per scan: getdents on a kept /proc fd after lseek(0) would do too, but /proc's
     * pid listing is cheap to reopen and this keeps fake trees simple. */
    int dfd = open_rel(t, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return dfd;
    char buf[16384] __attribute__((aligned(8)));
    for (;;) {
        ssize_t n = getdents64(dfd, buf, sizeof(buf));
        if (n < 0) {
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(void *)(buf + off);
            off += d->d_reclen;
            int pid;
            if (!all_digits(d->d_name, &pid) || pid == t->exclude_pid)
                continue;
            int e = handle_pid(t, pid, cb);
            if (e == VG_ENOMEM)
                r = e;
        }
    }
    close(dfd);
    if (r < 0 && r != VG_ENOMEM)
        return r; /* listing failed: don't declare everything exited */

    for (size_t i = 0; i < t->nbuckets; i++) {
        struct vg_proc *p = t->buckets[i];
        while (p) {
            struct vg_proc *next = p->hnext;
            if (p->seen_gen != t->gen && !p->external)
                report_exit(t, p, cb);
            p = next;
        }
        struct ign *g = t->ign_buckets[i];
        while (g) {
            struct ign *next = g->next;
            if (g->seen_gen != t->gen)
                ign_remove(t, g);
            g = next;
        }
    }
    return r;
}

struct vg_proc *vg_proc_table_add_external(struct vg_proc_table *t,
                                           const struct vg_proc_external *x)
{
    if (t->count >= t->nbuckets && grow(t) < 0)
        return NULL;
    struct vg_proc *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    for (int i = 0; i < VG__PF_COUNT; i++)
        p->pf[i] = -1;
    p->table = t;
    p->cgroup = &no_cgroup;
    p->external = true;
    p->pid = 0;
    p->ns_pid = x->ns_pid;
    p->nspid[0] = x->ns_pid;
    p->nspid_count = 1;
    p->uid = (uid_t)x->uid;
    p->key = x->key;
    snprintf(p->key_str, sizeof(p->key_str), "%s", x->key_str);
    snprintf(p->name, sizeof(p->name), "%s", x->name ? x->name : "");
    p->cmdline = vg_strdup(x->cmdline ? x->cmdline : "");
    if (!p->cmdline) {
        free(p);
        return NULL;
    }
    p->runtime = x->runtime;
    p->runtime_data = x->runtime_data;
    p->runtime_settled = true;
    p->seen_gen = t->gen;
    size_t k = bucket_of(t, 0);
    p->hnext = t->buckets[k];
    t->buckets[k] = p;
    t->count++;
    return p;
}

void vg_proc_table_remove_external(struct vg_proc_table *t, struct vg_proc *p)
{
    if (!p || !p->external)
        return;
    unlink_proc(t, p);
    proc_free(p);
}

size_t vg_proc_table_count(const struct vg_proc_table *t)
{
    return t->count;
}

struct vg_proc *vg_proc_table_find(const struct vg_proc_table *t, int pid)
{
    for (struct vg_proc *p = t->buckets[bucket_of(t, pid)]; p; p = p->hnext)
        if (p->pid == pid)
            return p;
    return NULL;
}

struct vg_proc *vg_proc_table_find_key(const struct vg_proc_table *t, uint64_t key)
{
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct vg_proc *p = t->buckets[i]; p; p = p->hnext)
            if (p->key == key)
                return p;
    return NULL;
}

struct vg_proc *vg_proc_table_next(const struct vg_proc_table *t, const struct vg_proc *prev)
{
    size_t i = 0;
    if (prev) {
        if (prev->hnext)
            return prev->hnext;
        i = bucket_of(t, prev->pid) + 1;
    }
    for (; i < t->nbuckets; i++)
        if (t->buckets[i])
            return t->buckets[i];
    return NULL;
}

const char *vg_proc_table_boot_id(const struct vg_proc_table *t)
{
    return t->boot_id;
}

int vg_proc_table_kept_fds(const struct vg_proc_table *t)
{
    return t->kept;
}

int vg_proc_table_kept_budget(const struct vg_proc_table *t)
{
    return t->max_kept;
}

const char *vg_proc_table_root(const struct vg_proc_table *t)
{
    return t->proc_root;
}

int vg_proc_table_root_fd(const struct vg_proc_table *t)
{
    return t->root_fd;
}
