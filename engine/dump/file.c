/* The direct file path (vg_coredump_to_file).
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

/* The copy buffer: enough for the whole dump when memory allows (a third of MemAvailable at
 * most), allocated and faulted in before the freeze, so the target waits only for the copy
 * itself, not for page faults on fresh buffers nor for the sink. */
#define CD_COPY_JOB (4u << 20)

void vg__cd_map_drop(struct vg__cd_ctx *c)
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
    /* The prepared pages are held until the dump is written: bounded like the copy buffer. */
    if (len > vg__cd_mem_available() / 2)
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
        vg__cd_map_drop(c);
    return rc;
}

/* While frozen, after the layout: the data must start at the reserved offset and fit the
 * mapping (grown if the process grew since smaps was read). */
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
int vg__cd_copy_direct(struct vg__cd_ctx *c)
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

    uint64_t size = c->hdr.len + total;
    rc = pwrite_all(c->fd, c->hdr.data, c->hdr_used, 0);
    if (!rc && ftruncate(c->fd, (off_t)size) != 0)
        rc = errno == EDQUOT ? VG_EQUOTA : -errno;
    munmap(c->map, c->map_len);
    c->map = NULL;
    c->map_len = 0;
    if (rc)
        return vg__cd_fail(c, rc, "writing the core failed: %s", vg_strerror(rc));
    c->bytes = size;
    return 0;
}

#endif

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
    rc = vg__cd_dump(pid, type, file_write, &f, f.fd, res, err, errlen);
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
