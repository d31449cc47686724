/* File output (vg_coredump_to_file): sparse, with a free-space floor.
 *
 * Streamed output (stream.c) goes through vg__cd_file_write: all-zero pages are not written, so
 * they stay holes, and the file system's free space is checked as the file grows.
 *
 * Stop mode's direct path: for a file there is no need to hold the dump in buffers while the
 * target waits for the disk: while frozen, the target's memory is copied once, by
 * process_vm_readv, into a MAP_SHARED mapping of the output file whose pages (tmpfs or page
 * cache) were allocated and faulted in before the freeze. The target waits only for the copy (two
 * copiers on two cores); after the resume the headers are written and zero pages punched out.
 * Headers and notes are not known before the freeze, so room for them is reserved at the start
 * of the file (a hole where unused) and the data starts at that fixed offset. The range is
 * fallocated first, so a full disk shows up as an error before the freeze and never as SIGBUS on
 * the mapping. Whatever does not fit these assumptions streams instead.
 * (Tried and dropped: fallocate + pwrite from a small bounce buffer while frozen. On tmpfs the
 * fallocated pages are only touched, and zeroed, by that write, so the freeze grew 2-6x.) */
#include "engine/dump/dump_int.h"

#include "config/error.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#if defined(__x86_64__)

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
    for (size_t o = 0; o < w->len; o += VG__CD_PAGE)
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
        size_t half = (len / 2) & ~(size_t)(VG__CD_PAGE - 1);
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

#define CD_COPY_JOB (4u << 20)
#define CD_CHECK_EVERY (64u << 20) /* bytes written between free-space checks */

/* ---- sparse writing and the free-space floor ---- */

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

static int page_is_zero(const char *p, size_t len)
{
    const uint64_t *w = (const uint64_t *)(const void *)p;
    for (size_t i = 0; i < len / 8; i++)
        if (w[i])
            return 0;
    for (size_t i = len & ~(size_t)7; i < len; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Bytes left to unprivileged writers on fd's file system (UINT64_MAX when unknown). */
static uint64_t fs_avail(int fd)
{
    struct statvfs sv;
    if (fstatvfs(fd, &sv) != 0)
        return UINT64_MAX;
    return (uint64_t)sv.f_bavail * sv.f_frsize;
}

int vg__cd_keep_free_check(struct vg__cd_ctx *c, uint64_t need)
{
    c->written = 0;
    if (!c->keep_free)
        return 0;
    uint64_t avail = fs_avail(c->fd);
    if (avail >= c->keep_free && avail - c->keep_free >= need)
        return 0;
    return vg__cd_fail(c, VG_ENOSPC,
                       "only %llu MiB free on the file system of %s and %llu MiB must stay free "
                       "(%llu MiB more to write)",
                       (unsigned long long)(avail >> 20), c->path ? c->path : "the core",
                       (unsigned long long)(c->keep_free >> 20), (unsigned long long)(need >> 20));
}

int vg__cd_file_write(struct vg__cd_ctx *c, const char *buf, size_t len, uint64_t off)
{
    int rc = 0;
    for (size_t at = 0; at < len && !rc;) {
        size_t pg = len - at < VG__CD_PAGE ? len - at : VG__CD_PAGE;
        if (page_is_zero(buf + at, pg)) {
            at += pg;
            continue;
        }
        size_t run = pg;
        while (at + run < len) {
            size_t n = len - at - run < VG__CD_PAGE ? len - at - run : VG__CD_PAGE;
            if (page_is_zero(buf + at + run, n))
                break;
            run += n;
        }
        rc = pwrite_all(c->fd, buf + at, run, (off_t)(off + at));
        c->written += run;
        at += run;
    }
    if (rc)
        return vg__cd_fail(c, rc, "writing %s: %s", c->path ? c->path : "the core",
                           vg_strerror(rc));
    if (c->written >= CD_CHECK_EVERY)
        rc = vg__cd_keep_free_check(c, 0);
    return rc;
}

int vg__cd_file_finish(struct vg__cd_ctx *c, uint64_t size)
{
    int rc = pwrite_all(c->fd, c->hdr.data, c->hdr_used, 0);
    if (!rc && ftruncate(c->fd, (off_t)size) != 0)
        rc = errno == EDQUOT ? VG_EQUOTA : -errno;
    if (rc)
        return vg__cd_fail(c, rc, "writing %s: %s", c->path ? c->path : "the core",
                           vg_strerror(rc));
    c->bytes = size;
    return 0;
}

/* Zero pages of the data written through the mapping become holes. */
static void punch_zeros(struct vg__cd_ctx *c)
{
    for (size_t i = 0; i < c->nseg; i++) {
        const struct vg__cd_seg *s = &c->seg[i];
        uint64_t run = 0, start = 0;
        for (uint64_t o = 0; o <= s->filesz; o += VG__CD_PAGE) {
            int zero =
                o < s->filesz &&
                page_is_zero(c->map + (s->offset - c->data_off_min) + o,
                             s->filesz - o < VG__CD_PAGE ? (size_t)(s->filesz - o) : VG__CD_PAGE);
            if (zero) {
                if (!run)
                    start = s->offset + o;
                run += VG__CD_PAGE;
                continue;
            }
            if (run && fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
                                 (off_t)run) != 0)
                return; /* the file system cannot: the zeros stay */
            run = 0;
        }
    }
}

/* After the resume: the staged data goes to the file (zero pages as holes), and the stage gives
 * its memory back as it goes. */
static int unstage(struct vg__cd_ctx *c)
{
    int rc = 0;
    for (size_t i = 0; i < c->nseg && !rc; i++) {
        const struct vg__cd_seg *s = &c->seg[i];
        for (uint64_t o = 0; o < s->filesz && !rc; o += VG__CD_CHUNK) {
            size_t n = s->filesz - o < VG__CD_CHUNK ? (size_t)(s->filesz - o) : VG__CD_CHUNK;
            uint64_t at = s->offset + o;
            rc = vg__cd_file_write(c, c->map + (at - c->data_off_min), n, at);
            if (fallocate(c->stage, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)at,
                          (off_t)n) != 0)
                (void)0; /* freed at the end anyway */
        }
    }
    return rc;
}

void vg__cd_map_drop(struct vg__cd_ctx *c)
{
    if (!c->map)
        return;
    munmap(c->map, c->map_len);
    c->map = NULL;
    c->map_len = 0;
    c->direct = 0;
    if (c->stage >= 0)
        close(c->stage);
    c->stage = -1;
    /* Nothing has been written yet: the streaming path starts from an empty file. */
    if (ftruncate(c->fd, 0) != 0)
        (void)0; /* streaming overwrites from offset 0 anyway */
}

/* Page-cache pages of a disk file, faulted in before the freeze, do not stay ready for the
 * copy: past dirty_background_ratio the flusher writes them back (zeros) and write-protects
 * them, and the copy while frozen takes write faults (ext4_page_mkwrite) and re-dirties them.
 * Traced with perf (bench/coredump/RESULTS.md): thousands of kernel page faults and re-dirtied
 * folios inside the freeze on ext4, none on tmpfs. So the data of a file not on tmpfs is staged
 * in a memfd (tmpfs pages are never written back) and written to the file after the resume. */
static int on_tmpfs(int fd)
{
    struct statfs sf;
    return fstatfs(fd, &sf) == 0 && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC);
}

int vg__cd_map_prepare(struct vg__cd_ctx *c, uint64_t est)
{
    pid_t *tids = NULL;
    size_t nth = 0;
    uint64_t files = 0;
    if (vg__cd_list_tasks(c->pid, &tids, &nth) != 0)
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
                    2 * files + (2 * (uint64_t)nth + 16) * (VG__CD_XSTATE_MAX / 2 + 2048) +
                    (64u << 10);
    room = (room + VG__CD_PAGE - 1) & ~(uint64_t)(VG__CD_PAGE - 1);
    uint64_t len = (est + VG__CD_PAGE - 1) & ~(uint64_t)(VG__CD_PAGE - 1);
    if (!len)
        len = VG__CD_PAGE;
    /* The prepared pages are held until the dump is written: only when the machine, and our
     * own memory cgroup, have room for them. */
    if (len > vg__cd_mem_available() / 2 || len + (64u << 20) > vg__cd_self_mem_headroom())
        return VG_ENOMEM;
    int backing = c->fd;
    if (!on_tmpfs(c->fd)) {
        /* the disk's free space is checked now; the file is written after the resume */
        if (c->keep_free && fs_avail(c->fd) < c->keep_free + len)
            return VG_ENOSPC;
        c->stage = memfd_create("vigil-core", MFD_CLOEXEC);
        if (c->stage < 0)
            return -errno;
        backing = c->stage;
    }
    if (fallocate(backing, 0, (off_t)room, (off_t)len) != 0) {
        int e = -errno;
        vg__cd_map_drop(c);
        return e;
    }
    /* The blocks are taken now: the floor must still be there (else stream, which fails it). */
    if (backing == c->fd && c->keep_free && fs_avail(c->fd) < c->keep_free) {
        if (ftruncate(c->fd, 0) != 0)
            (void)0;
        return VG_ENOSPC;
    }
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, backing, (off_t)room);
    if (m == MAP_FAILED) {
        int e = -errno;
        vg__cd_map_drop(c);
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
        vg__cd_map_drop(c);
    return rc;
}

int vg__cd_map_fit(struct vg__cd_ctx *c)
{
    uint64_t total = 0;
    if (c->hdr.len != c->data_off_min)
        return VG_ENOSPC; /* headers larger than reserved */
    for (size_t i = 0; i < c->nseg; i++)
        total += c->seg[i].filesz;
    if (total <= c->map_len)
        return 0;
    uint64_t len = (total + VG__CD_PAGE - 1) & ~(uint64_t)(VG__CD_PAGE - 1);
    if (fallocate(c->stage >= 0 ? c->stage : c->fd, 0, (off_t)(c->data_off_min + c->map_len),
                  (off_t)(len - c->map_len)))
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
    struct vg__cd_ctx *c;
    struct cd_job *jobs;
    size_t njobs;
    size_t next; /* __atomic */
    int rc;      /* __atomic: the first error stops every copier */
};

static void *cd_copy_worker(void *arg)
{
    struct cd_copy *w = arg;
    struct vg__cd_ctx *c = w->c;
    while (!__atomic_load_n(&w->rc, __ATOMIC_RELAXED)) {
        size_t i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED);
        if (i >= w->njobs)
            break;
        const struct cd_job *j = &w->jobs[i];
        char *dst = c->map + (j->off - c->data_off_min);
        int rc = vg__cd_read_mem(c, j->addr, dst, j->len);
        if (!rc)
            vg__cd_overlay_apply(c, j->addr, dst, j->len);
        if (!rc && c->type == VG_DUMP_TRIAGE)
            vg__cd_redact(c, j->addr, dst, j->len);
        if (rc) {
            int zero = 0;
            __atomic_compare_exchange_n(&w->rc, &zero, rc, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
            break;
        }
    }
    return NULL;
}

/* Frozen: copy every segment into the file (two copiers on two cores), resume the target, then
 * punch out zero pages, write the headers and cut the file to its size. */
int vg__cd_copy_direct(struct vg__cd_ctx *c)
{
    struct cd_copy w;
    uint64_t total = 0;

    memset(&w, 0, sizeof(w));
    w.c = c;
    size_t cap = 0;
    for (size_t i = 0; i < c->nseg; i++)
        cap += (size_t)((c->seg[i].filesz + CD_COPY_JOB - 1) / CD_COPY_JOB);
    w.jobs = calloc(cap ? cap : 1, sizeof(*w.jobs));
    if (!w.jobs)
        return vg__cd_fail(c, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->nseg; i++) {
        const struct vg__cd_seg *s = &c->seg[i];
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
    vg__cd_detach(c);
    if (w.rc)
        return w.rc;

    c->data = total;
    int rc = c->stage >= 0 ? unstage(c) : (punch_zeros(c), 0);
    munmap(c->map, c->map_len);
    c->map = NULL;
    c->map_len = 0;
    return rc ? rc : vg__cd_file_finish(c, c->hdr.len + total);
}

#endif

int vg_coredump_to_file(pid_t pid, const struct vg_dump_opts *opts, const char *path,
                        struct vg_dump_result *res, char *err, size_t errlen)
{
    int rc;
    if (err && errlen)
        err[0] = '\0';
    if (!path)
        return VG_EINVAL;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600); /* RDWR: mapped */
    if (fd < 0) {
        rc = -errno;
        if (err && errlen)
            snprintf(err, errlen, "cannot create %s: %s", path, vg_strerror(rc));
        return rc;
    }
    rc = vg__cd_dump(pid, opts, NULL, NULL, fd, path, res, err, errlen);
    if (!rc && fsync(fd) < 0) {
        rc = errno == EDQUOT ? VG_EQUOTA : -errno;
        if (err && errlen)
            snprintf(err, errlen, "fsync %s: %s", path, vg_strerror(rc));
    }
    if (close(fd) < 0 && !rc) {
        rc = errno == EDQUOT ? VG_EQUOTA : -errno;
        if (err && errlen)
            snprintf(err, errlen, "closing %s: %s", path, vg_strerror(rc));
    }
    if (rc) {
        unlink(path);
        if (err && errlen && (rc == VG_ENOSPC || rc == VG_EQUOTA)) {
            char tmp[384];
            snprintf(tmp, sizeof(tmp), "%s", err);
            snprintf(err, errlen, "%s: %s (partial file removed)", path, tmp);
        }
    }
    return rc;
}
