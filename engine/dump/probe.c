/* Which pages of a mapping hold data. Private anonymous memory: the pages present or swapped out
 * (/proc/PID/pagemap; the PAGEMAP_SCAN ioctl where the kernel has it, which answers in ranges).
 * Shared memory (shmem, memfd, SysV, shared file mappings): the object's data ranges, by
 * SEEK_DATA / SEEK_HOLE on /proc/PID/map_files/START-END (a page of another process's shared
 * memory need not be in this process's page tables, and reading a shmem hole would allocate a
 * page in the target). Pages never populated (reserved address space, MAP_NORESERVE heaps,
 * untouched stack tails) and pages mapped to the shared zero page hold nothing but zeros: they
 * are not read at all, and are left out of the file as PT_LOAD segments with no file bytes
 * (filesz 0), which debuggers read as zeros like the kernel's own holes. A 64 GiB reservation
 * with 64 touched pages costs 64 pages.
 *
 * Private file mappings are not probed: a page missing from the page tables still has the
 * file's bytes behind it. */
#include "engine/dump/dump_int.h"

#include "config/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#if defined(__x86_64__)

/* linux/fs.h of kernels >= 6.7 */
struct vg_page_region {
    uint64_t start, end, categories;
};
struct vg_pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
        category_mask, category_anyof_mask, return_mask;
};
#define VG_PAGEMAP_SCAN _IOWR('f', 16, struct vg_pm_scan_arg)
#define VG_PAGE_IS_PRESENT (1u << 3)
#define VG_PAGE_IS_SWAPPED (1u << 4)
#define VG_PAGE_IS_PFNZERO (1u << 5)

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE (1ull << 61)
#define PM_EXCLUSIVE (1ull << 56)

#define SPLIT_MIN (64u << 10) /* a run of empty pages shorter than this is kept as zeros */
#define PIECES_MAX 512u       /* segments one mapping may be split into */
#define PM_BATCH 8192u        /* pagemap entries per read (64 KiB) */

struct extents {
    struct vg__cd_range *v;
    size_t n, cap;
};

static int ext_add(struct extents *e, uint64_t lo, uint64_t hi)
{
    if (e->n && e->v[e->n - 1].hi == lo) {
        e->v[e->n - 1].hi = hi;
        return 0;
    }
    if (vg_grow((void **)&e->v, &e->cap, e->n, sizeof(*e->v), 64))
        return VG_ENOMEM;
    e->v[e->n].lo = lo;
    e->v[e->n++].hi = hi;
    return 0;
}

/* PAGEMAP_SCAN: 1 when the kernel does not have it. */
static int scan_ioctl(int fd, uint64_t lo, uint64_t hi, struct extents *e)
{
    struct vg_page_region r[256];
    while (lo < hi) {
        struct vg_pm_scan_arg a;
        memset(&a, 0, sizeof(a));
        a.size = sizeof(a);
        a.start = lo;
        a.end = hi;
        a.vec = (uint64_t)(uintptr_t)r;
        a.vec_len = sizeof(r) / sizeof(r[0]);
        a.category_anyof_mask = VG_PAGE_IS_PRESENT | VG_PAGE_IS_SWAPPED;
        a.return_mask = VG_PAGE_IS_PRESENT | VG_PAGE_IS_SWAPPED | VG_PAGE_IS_PFNZERO;
        long n = ioctl(fd, VG_PAGEMAP_SCAN, &a);
        if (n < 0)
            return errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP ? 1 : -errno;
        for (long i = 0; i < n; i++) {
            /* the shared zero page: reads as zeros, holds nothing */
            if ((r[i].categories & VG_PAGE_IS_PFNZERO) && !(r[i].categories & VG_PAGE_IS_SWAPPED))
                continue;
            int rc = ext_add(e, r[i].start, r[i].end);
            if (rc)
                return rc;
        }
        if (a.walk_end <= lo)
            break;
        lo = a.walk_end;
    }
    return 0;
}

/* Plain pagemap entries, 8 bytes a page. */
static int scan_read(int fd, uint64_t lo, uint64_t hi, struct extents *e)
{
    uint64_t *pm = malloc(PM_BATCH * sizeof(*pm));
    int rc = 0;
    if (!pm)
        return VG_ENOMEM;
    while (lo < hi && !rc) {
        uint64_t pages = (hi - lo) / VG__CD_PAGE;
        size_t want = pages < PM_BATCH ? (size_t)pages : PM_BATCH;
        ssize_t n = pread(fd, pm, want * sizeof(*pm), (off_t)(lo / VG__CD_PAGE * sizeof(*pm)));
        if (n <= 0) {
            rc = n < 0 ? -errno : VG_EIO;
            break;
        }
        size_t got = (size_t)n / sizeof(*pm);
        for (size_t i = 0; i < got && !rc; i++)
            if (pm[i] & (PM_PRESENT | PM_SWAPPED))
                rc = ext_add(e, lo + i * VG__CD_PAGE, lo + (i + 1) * VG__CD_PAGE);
        lo += got * VG__CD_PAGE;
    }
    free(pm);
    return rc;
}

/* SEEK_DATA over the object mapped at [lo, hi) (file offset `off` at lo). 1 when it cannot. */
static int scan_seek(pid_t pid, uint64_t lo, uint64_t hi, uint64_t map_start, uint64_t map_end,
                     uint64_t off, struct extents *e)
{
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid,
             (unsigned long long)map_start, (unsigned long long)map_end);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    int rc = 0;
    uint64_t base = off + (lo - map_start), end = base + (hi - lo);
    for (uint64_t at = base; at < end && !rc;) {
        off_t d = lseek(fd, (off_t)at, SEEK_DATA);
        if (d < 0) {
            rc = errno == ENXIO ? 0 : 1; /* ENXIO: no data after at */
            break;
        }
        if ((uint64_t)d >= end)
            break;
        off_t h = lseek(fd, d, SEEK_HOLE);
        uint64_t de = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
        uint64_t a = ((uint64_t)d & ~(uint64_t)(VG__CD_PAGE - 1)) - base + lo;
        uint64_t b = ((de + VG__CD_PAGE - 1) & ~(uint64_t)(VG__CD_PAGE - 1)) - base + lo;
        rc = ext_add(e, a, b > hi ? hi : b);
        at = de;
    }
    close(fd);
    return rc;
}

/* Keeps runs of empty pages of at least `gap` bytes out of the extents; returns the count. */
static size_t coalesce(struct extents *e, uint64_t gap)
{
    size_t o = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (o && e->v[i].lo - e->v[o - 1].hi < gap)
            e->v[o - 1].hi = e->v[i].hi;
        else
            e->v[o++] = e->v[i];
    }
    e->n = o;
    return o;
}

static int push_seg(struct vg__cd_seg **v, size_t *n, size_t *cap, const struct vg__cd_seg *tmpl,
                    uint64_t lo, uint64_t hi, int data)
{
    if (vg_grow((void **)v, cap, *n, sizeof(**v), 128))
        return VG_ENOMEM;
    struct vg__cd_seg *s = &(*v)[(*n)++];
    *s = *tmpl;
    s->vaddr = lo;
    s->memsz = hi - lo;
    s->filesz = data ? hi - lo : 0;
    return 0;
}

int vg__cd_probe(struct vg__cd_ctx *c)
{
    char path[64];
    int fd, rc = 0, ioctl_ok = 1;
    struct vg__cd_seg *out = NULL;
    size_t n = 0, cap = 0;
    struct extents e = {0};

    snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)c->mem_pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* no pagemap: everything is read, as before */
    for (size_t i = 0; i < c->nseg && !rc; i++) {
        const struct vg__cd_seg *s = &c->seg[i];
        if (s->probe == VG__CD_PROBE_NONE || s->precopied || !s->filesz || s->filesz != s->memsz) {
            if (vg_grow((void **)&out, &cap, n, sizeof(*out), 128))
                rc = VG_ENOMEM;
            else
                out[n++] = *s;
            continue;
        }
        uint64_t lo = s->vaddr, hi = s->vaddr + s->filesz;
        const struct vg_map *m = &c->maps.v[s->map];
        int r;
        e.n = 0;
        if (s->probe == VG__CD_PROBE_SEEK) {
            r = scan_seek(c->mem_pid, lo, hi, m->start, m->end, m->offset, &e);
        } else {
            r = ioctl_ok ? scan_ioctl(fd, lo, hi, &e) : 1;
            if (r == 1) {
                ioctl_ok = 0;
                e.n = 0;
                r = scan_read(fd, lo, hi, &e);
            }
        }
        if (r) {
            /* cannot tell: read it all */
            e.n = 0;
            rc = ext_add(&e, lo, hi);
        }
        for (uint64_t gap = SPLIT_MIN; !rc && coalesce(&e, gap) > PIECES_MAX; gap *= 4)
            ;
        uint64_t at = lo;
        for (size_t k = 0; k < e.n && !rc; k++) {
            uint64_t a = e.v[k].lo < lo ? lo : e.v[k].lo, b = e.v[k].hi > hi ? hi : e.v[k].hi;
            if (a >= b)
                continue;
            if (a > at)
                rc = push_seg(&out, &n, &cap, s, at, a, 0);
            if (!rc)
                rc = push_seg(&out, &n, &cap, s, a, b, 1);
            at = b;
        }
        if (!rc && at < hi)
            rc = push_seg(&out, &n, &cap, s, at, hi, 0);
    }
    close(fd);
    free(e.v);
    if (rc) {
        free(out);
        return vg__cd_fail(c, rc, "probing the memory of %d: %s", (int)c->mem_pid, vg_strerror(rc));
    }
    free(c->seg);
    c->seg = out;
    c->nseg = n;
    c->capseg = cap;
    return 0;
}

uint64_t vg__cd_exclusive_bytes(int fd, uint64_t addr, uint64_t len)
{
    uint64_t pm[512], bytes = 0;
    addr &= ~(uint64_t)(VG__CD_PAGE - 1);
    while (len >= VG__CD_PAGE) {
        uint64_t pages = len / VG__CD_PAGE;
        size_t want = pages < 512 ? (size_t)pages : 512;
        ssize_t n = pread(fd, pm, want * sizeof(pm[0]), (off_t)(addr / VG__CD_PAGE * 8));
        if (n <= 0)
            break;
        size_t got = (size_t)n / sizeof(pm[0]);
        for (size_t i = 0; i < got; i++)
            if ((pm[i] & (PM_PRESENT | PM_EXCLUSIVE | PM_FILE)) == (PM_PRESENT | PM_EXCLUSIVE))
                bytes += VG__CD_PAGE;
        addr += got * VG__CD_PAGE;
        len -= got * VG__CD_PAGE;
    }
    return bytes;
}

#endif
