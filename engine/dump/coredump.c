/* ELF core dump writer for a live process: the order of work.
 *
 * Before the freeze: read smaps (its page walk is slow for big processes), check what a snapshot
 * must fit in (snapshot.c, limits.c), and for Stop mode's direct file path prepare the file.
 * Frozen: seize + interrupt every thread (freeze.c), read maps, registers and process info, plan
 * the segments (layout.c); in Snapshot mode make the target clone itself (snapshot.c) and resume
 * it at once. Then find the pages that hold data (probe.c), lay the file out, and copy: from the
 * clone at leisure (Snapshot), or from the frozen target, resumed as soon as its last byte is
 * read (Stop). Output goes through a few buffers into the sink or the file (stream.c), or, in
 * Stop mode to a file, straight into a mapping of the file (file.c). Last, the clone is killed
 * and reaped. */
#include "engine/dump/dump_int.h"

#include "config/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define CD_FILTER_DEFAULT 0x33u

#if defined(__x86_64__)

uint64_t vg__cd_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

__attribute__((format(printf, 3, 4))) int vg__cd_fail(struct vg__cd_ctx *c, int rc, const char *fmt,
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
int vg__cd_process_gone(pid_t pid)
{
    char path[64];
    struct vg_proc_stat st;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (vg__cd_stat(path, &st) != 0)
        return 1;
    return st.state == 'Z' || st.state == 'X';
}

int vg__cd_stat(const char *path, struct vg_proc_stat *st)
{
    char buf[1024];
    ssize_t n = vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    return vg_procfs_parse_stat(buf, (size_t)n, st);
}

uint64_t vg__cd_mem_available(void)
{
    char buf[4096];
    uint64_t kb;
    if (vg_procfs_read(AT_FDCWD, "/proc/meminfo", buf, sizeof(buf)) <= 0 ||
        !vg_procfs_field_u64(buf, "MemAvailable", &kb))
        return 0;
    return kb * 1024;
}

int vg__cd_exited(struct vg__cd_ctx *c)
{
    return vg__cd_fail(c, VG_EEXITED, "process %d exited during the dump", (int)c->pid);
}

void vg__cd_fallback(struct vg__cd_ctx *c, const char *fmt, ...)
{
    if (!c->fallback[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->fallback, sizeof(c->fallback), fmt, ap);
        va_end(ap);
    }
    c->mode = VG_DUMP_STOP;
}

static int cd_run(struct vg__cd_ctx *c)
{
    char path[64], buf[64];
    struct stat sb;
    int rc;

    snprintf(path, sizeof(path), "/proc/%d", (int)c->pid);
    if (c->pid <= 0 || stat(path, &sb) < 0)
        return vg__cd_fail(c, VG_ESRCH, "no such process: %d", (int)c->pid);
    if (c->pid == getpid())
        return vg__cd_fail(c, VG_EINVAL, "cannot dump this process itself (pid %d)", (int)c->pid);

    c->filter = CD_FILTER_DEFAULT;
    snprintf(path, sizeof(path), "/proc/%d/coredump_filter", (int)c->pid);
    if (vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf)) > 0)
        c->filter = (unsigned)strtoul(buf, NULL, 16);

    /* smaps before the freeze: its page walk would otherwise stretch the freeze. */
    rc = vg_procfs_read_maps(AT_FDCWD, c->pid, true, &c->pre);
    if (rc == -ENOENT || rc == -ESRCH)
        return vg__cd_fail(c, VG_ESRCH, "no such process: %d", (int)c->pid);
    if (rc == -EACCES || rc == -EPERM)
        return vg__cd_perm_error(c, rc, "read the memory map of");
    if (rc)
        return vg__cd_fail(c, rc, "reading /proc/%d/smaps: %s", (int)c->pid, vg_strerror(rc));
    if (c->mode == VG_DUMP_SNAPSHOT)
        vg__cd_snap_preflight(c); /* a refusal switches to Stop, with its reason */
    if (c->fd >= 0 && c->mode == VG_DUMP_STOP && vg__cd_map_prepare(c, vg__cd_estimate(c)) != 0)
        c->direct = 0; /* stream into the file instead */

    rc = vg__cd_attach(c);
    if (rc)
        return rc;

    rc = vg_procfs_read_maps(AT_FDCWD, c->pid, false, &c->maps);
    if (rc == -ENOENT || rc == -ESRCH)
        return vg__cd_exited(c);
    if (rc)
        return vg__cd_fail(c, rc, "reading /proc/%d/maps: %s", (int)c->pid, vg_strerror(rc));
    vg_maps_merge_flags(&c->maps, &c->pre);

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)c->pid);
    rc = vg__cd_stat(path, &c->pst);
    if (rc)
        return vg__cd_process_gone(c->pid)
                   ? vg__cd_exited(c)
                   : vg__cd_fail(c, rc, "reading %s: %s", path, vg_strerror(rc));

    unsigned char *xbuf = malloc(VG__CD_XSTATE_MAX);
    if (!xbuf)
        return vg__cd_fail(c, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->nth && !rc; i++)
        if (!c->th[i].gone)
            rc = vg__cd_read_regs(c, &c->th[i], xbuf);
    free(xbuf);
    if (rc)
        return rc;

    snprintf(path, sizeof(path), "/proc/%d/auxv", (int)c->pid);
    if (vg_procfs_read_alloc(AT_FDCWD, path, 1u << 20, &c->auxv, &c->auxv_len) != 0)
        c->auxv_len = 0;
    if (c->type == VG_DUMP_MINI || c->type == VG_DUMP_TRIAGE)
        rc = vg__cd_plan_wants(c);
    for (size_t i = 0; i < c->maps.n && !rc; i++)
        rc = vg__cd_plan_map(c, i);
    if (rc)
        return vg__cd_fail(c, rc, "planning segments: %s", vg_strerror(rc));

    if (c->mode == VG_DUMP_SNAPSHOT) {
        rc = vg__cd_snap_take(c);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            /* The clone holds the memory as it was: the target runs on. */
            vg__cd_detach(c);
            vg__cd_set_source(c, c->snap.pid);
        }
    }
    rc = vg__cd_probe(c);
    if (!rc)
        rc = vg__cd_layout(c);
    if (rc)
        return rc;
    if (c->direct && vg__cd_map_fit(c) != 0)
        vg__cd_map_drop(c); /* stream instead, while frozen: slower, correct */
    if (c->direct)
        return vg__cd_copy_direct(c);
    return vg__cd_stream(c);
}

/* 15% of the file system, at most 4 GiB (Storage.KeepFree's default). */
static uint64_t default_keep_free(int fd)
{
    struct statvfs sv;
    if (fstatvfs(fd, &sv) != 0)
        return 0;
    uint64_t v = (uint64_t)sv.f_blocks * sv.f_frsize / 100 * 15;
    return v > (4ull << 30) ? 4ull << 30 : v;
}

int vg__cd_dump(pid_t pid, const struct vg_dump_opts *opts, vg_dump_write_cb write, void *ctx,
                int fd, const char *path, struct vg_dump_result *res, char *err, size_t errlen)
{
    static const struct vg_dump_opts defaults = {VG_DUMP_WITH_HEAP, VG_DUMP_SNAPSHOT,
                                                 VG_DUMP_KEEP_FREE_DEFAULT};
    struct vg__cd_ctx c;
    uint64_t t0 = vg__cd_now_us();
    int rc;

    if (!opts)
        opts = &defaults;
    memset(&c, 0, sizeof(c));
    pthread_mutex_init(&c.err_mu, NULL);
    c.fd = fd;
    c.path = path;
    c.pid = pid;
    c.mem_pid = pid;
    c.type = opts->type;
    c.mode = opts->mode;
    c.keep_free = fd >= 0 && opts->keep_free == VG_DUMP_KEEP_FREE_DEFAULT ? default_keep_free(fd)
                                                                          : opts->keep_free;
    c.err = err;
    c.errlen = errlen;
    c.write = write;
    c.wctx = ctx;
    c.memfd = -1;
    c.snap.pagemap = -1;
    c.stage = -1;
    vg_buf_init(&c.hdr);
    if (err && errlen)
        err[0] = '\0';
    if (res)
        memset(res, 0, sizeof(*res));
    if ((!write && fd < 0) || (unsigned)c.type > VG_DUMP_TRIAGE ||
        (unsigned)c.mode > VG_DUMP_STOP) {
        rc = vg__cd_fail(&c, VG_EINVAL, "invalid arguments");
        pthread_mutex_destroy(&c.err_mu);
        return rc;
    }

    rc = cd_run(&c);
    vg__cd_detach(&c);
    vg__cd_snap_end(&c);

    if (res) {
        res->bytes = c.bytes;
        res->data = c.data;
        res->freeze_us = c.frozen ? c.t_freeze1 - c.t_freeze0 : 0;
        res->wall_us = vg__cd_now_us() - t0;
        res->cow_bytes = c.cow_bytes;
        res->mode = c.mode;
        snprintf(res->fallback, sizeof(res->fallback), "%s", c.fallback);
        for (size_t i = 0; i < c.nth; i++)
            res->threads += !c.th[i].gone;
        res->segments = (unsigned)c.nseg;
    }
    for (size_t i = 0; i < c.nth; i++)
        free(c.th[i].xstate);
    free(c.th);
    free(c.seg);
    free(c.want);
    for (size_t i = 0; i < c.nov; i++)
        free(c.ov[i].data);
    free(c.ov);
    free(c.auxv);
    vg_maps_free(&c.pre);
    vg_maps_free(&c.maps);
    vg_buf_free(&c.hdr);
    if (c.memfd >= 0)
        close(c.memfd);
    if (c.map)
        munmap(c.map, c.map_len);
    if (c.stage >= 0)
        close(c.stage);
    pthread_mutex_destroy(&c.err_mu);
    return rc;
}

#else /* !__x86_64__ */

int vg__cd_dump(pid_t pid, const struct vg_dump_opts *opts, vg_dump_write_cb write, void *ctx,
                int fd, const char *path, struct vg_dump_result *res, char *err, size_t errlen)
{
    (void)pid, (void)opts, (void)write, (void)ctx, (void)fd, (void)path;
    if (res)
        memset(res, 0, sizeof(*res));
    if (err && errlen)
        snprintf(err, errlen, "core dumps are implemented for x86_64 only");
    return VG_EUNSUPPORTED;
}

#endif

int vg_coredump_write(pid_t pid, const struct vg_dump_opts *opts, vg_dump_write_cb write, void *ctx,
                      struct vg_dump_result *res, char *err, size_t errlen)
{
    if (!write)
        return VG_EINVAL;
    return vg__cd_dump(pid, opts, write, ctx, -1, NULL, res, err, errlen);
}
