/* HotSpot perf-data: parser, and finding/reading the file of a live JVM. */
#include "engine/runtimes/jvm/perfdata.h"

#include "config/error.h"
#include "config/util.h"
#include "engine/host/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROLOGUE_SIZE 32
#define ENTRY_HEADER_SIZE 20

struct reader {
    const uint8_t *p;
    size_t len;
    bool big_endian;
};

static uint32_t rd32(const struct reader *r, size_t off)
{
    const uint8_t *b = r->p + off;
    if (r->big_endian)
        return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
}

static uint64_t rd64(const struct reader *r, size_t off)
{
    uint64_t hi = rd32(r, off), lo = rd32(r, off + 4);
    if (!r->big_endian) {
        uint64_t t = hi;
        hi = lo;
        lo = t;
    }
    return hi << 32 | lo;
}

/* One entry's validated fields, offsets absolute in the buffer. */
struct raw_entry {
    size_t name_off, name_len; /* name without its NUL */
    size_t data_off;
    uint32_t vector_len;
    uint8_t type, flags, units, variability;
};

/* Validates the entry at `off`. Returns its length (> 0), 0 at the end of the data, or VG_EPARSE.
 * `limit` is min(used, len). */
static int64_t entry_at(const struct reader *r, size_t off, size_t limit, struct raw_entry *e)
{
    if (off % 4 != 0)
        return VG_EPARSE;
    if (off >= limit || limit - off < 4)
        return 0;
    uint32_t elen = rd32(r, off);
    if (elen == 0)
        return 0;
    if (elen < ENTRY_HEADER_SIZE || elen > limit - off || elen % 4 != 0)
        return VG_EPARSE;
    uint32_t name_off = rd32(r, off + 4);
    uint32_t vlen = rd32(r, off + 8);
    e->type = r->p[off + 12];
    e->flags = r->p[off + 13];
    e->units = r->p[off + 14];
    e->variability = r->p[off + 15];
    uint32_t data_off = rd32(r, off + 16);
    /* Header, then name, then data, all inside the entry. */
    if (name_off < ENTRY_HEADER_SIZE || data_off <= name_off || data_off > elen)
        return VG_EPARSE;
    const uint8_t *name = r->p + off + name_off;
    const uint8_t *nul = memchr(name, 0, data_off - name_off);
    if (!nul || nul == name)
        return VG_EPARSE;
    if (e->units < VG_PD_UNITS_NONE || e->units > VG_PD_UNITS_HERTZ ||
        e->variability < VG_PD_CONSTANT || e->variability > VG_PD_VARIABLE)
        return VG_EPARSE;
    size_t room = elen - data_off;
    if (vlen == 0) {
        if (e->type == 'J' && room < 8)
            return VG_EPARSE;
    } else if (vlen > room) {
        return VG_EPARSE;
    }
    e->name_off = off + name_off;
    e->name_len = (size_t)(nul - name);
    e->data_off = off + data_off;
    e->vector_len = vlen;
    return elen;
}

static bool wanted(const struct raw_entry *e)
{
    if (e->vector_len == 0)
        return e->type == 'J';
    return e->type == 'B' && e->units == VG_PD_UNITS_STRING;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct vg_perfdata_entry *)a)->name,
                  ((const struct vg_perfdata_entry *)b)->name);
}

/* In the order of pvals in vg_perfdata_parse. */
static const struct vg_perfdata_entry pseudo[] = {
    {"sun.perfdata.majorVersion", false, true, VG_PD_UNITS_NONE, VG_PD_CONSTANT, 0, NULL},
    {"sun.perfdata.minorVersion", false, true, VG_PD_UNITS_NONE, VG_PD_CONSTANT, 0, NULL},
    {"sun.perfdata.overflow", false, true, VG_PD_UNITS_BYTES, VG_PD_MONOTONIC, 0, NULL},
    {"sun.perfdata.size", false, true, VG_PD_UNITS_BYTES, VG_PD_CONSTANT, 0, NULL},
    {"sun.perfdata.timestamp", false, true, VG_PD_UNITS_TICKS, VG_PD_MONOTONIC, 0, NULL},
    {"sun.perfdata.used", false, true, VG_PD_UNITS_BYTES, VG_PD_MONOTONIC, 0, NULL},
};

int vg_perfdata_parse(const void *buf, size_t len, struct vg_perfdata **out)
{
    static const uint8_t magic[4] = {0xca, 0xfe, 0xc0, 0xc0};
    struct vg_perfdata *pd = NULL;
    int rc = 0;
    *out = NULL;
    if (!buf || len < PROLOGUE_SIZE || memcmp(buf, magic, 4) != 0)
        return VG_EPARSE;
    struct reader r = {.p = buf, .len = len};
    const uint8_t *b = buf;
    if (b[4] > 1)
        return VG_EPARSE;
    r.big_endian = b[4] == 0;
    if (b[5] != 2)
        return VG_EPARSE;
    if (!b[7])
        return VG_EAGAIN;

    pd = calloc(1, sizeof(*pd));
    if (!pd)
        return VG_ENOMEM;
    pd->major = b[5];
    pd->minor = b[6];
    pd->accessible = true;
    pd->used = rd32(&r, 8);
    pd->overflow = rd32(&r, 12);
    pd->mod_time_stamp = (int64_t)rd64(&r, 16);
    uint32_t first = rd32(&r, 24);
    size_t limit = pd->used < len ? pd->used : len;
    if (first < PROLOGUE_SIZE || first > limit) {
        rc = VG_EPARSE;
        goto out;
    }

    /* Pass 1: validate, count entries and the bytes their strings need. */
    size_t n = 0, bytes = 0;
    struct raw_entry e;
    for (size_t off = first;;) {
        int64_t elen = entry_at(&r, off, limit, &e);
        if (elen < 0) {
            rc = (int)elen;
            goto out;
        }
        if (elen == 0)
            break;
        if (wanted(&e)) {
            n++;
            bytes += e.name_len + 1;
            if (e.vector_len)
                bytes += e.vector_len + 1;
        }
        off += (size_t)elen;
    }

    /* Pass 2: copy into one arena, so the snapshot outlives the buffer. The prologue's fields
     * come first, as the pseudo counters HotSpot and jvmstat show for them. */
    pd->entries = calloc(n + VG_ARRAY_SIZE(pseudo), sizeof(*pd->entries));
    pd->arena = malloc(bytes ? bytes : 1);
    if (!pd->entries || !pd->arena) {
        rc = VG_ENOMEM;
        goto out;
    }
    int64_t pvals[] = {pd->major,    pd->minor,          pd->overflow,
                       (int64_t)len, pd->mod_time_stamp, pd->used};
    for (size_t i = 0; i < VG_ARRAY_SIZE(pseudo); i++) {
        struct vg_perfdata_entry *pe = &pd->entries[pd->n++];
        *pe = pseudo[i];
        pe->value = pvals[i];
    }
    n += VG_ARRAY_SIZE(pseudo);
    char *a = pd->arena;
    for (size_t off = first; pd->n < n;) {
        int64_t elen = entry_at(&r, off, limit, &e);
        if (elen <= 0)
            break;
        off += (size_t)elen;
        if (!wanted(&e))
            continue;
        struct vg_perfdata_entry *pe = &pd->entries[pd->n++];
        memcpy(a, r.p + e.name_off, e.name_len);
        a[e.name_len] = '\0';
        pe->name = a;
        a += e.name_len + 1;
        pe->supported = e.flags & 1;
        pe->units = e.units;
        pe->variability = e.variability;
        if (e.vector_len) {
            const uint8_t *s = r.p + e.data_off;
            const uint8_t *nul = memchr(s, 0, e.vector_len);
            size_t slen = nul ? (size_t)(nul - s) : e.vector_len;
            memcpy(a, s, slen);
            a[slen] = '\0';
            pe->is_string = true;
            pe->str = a;
            a += e.vector_len + 1;
        } else {
            pe->value = (int64_t)rd64(&r, e.data_off);
        }
    }
    qsort(pd->entries, pd->n, sizeof(*pd->entries), cmp_entry);
out:
    if (rc < 0) {
        vg_perfdata_destroy(pd);
        return rc;
    }
    *out = pd;
    return 0;
}

void vg_perfdata_destroy(struct vg_perfdata *pd)
{
    if (!pd)
        return;
    free(pd->entries);
    free(pd->arena);
    free(pd);
}

const struct vg_perfdata_entry *vg_perfdata_find(const struct vg_perfdata *pd, const char *name)
{
    if (!pd || !name)
        return NULL;
    struct vg_perfdata_entry key = {.name = name};
    return bsearch(&key, pd->entries, pd->n, sizeof(*pd->entries), cmp_entry);
}

int vg_perfdata_long(const struct vg_perfdata *pd, const char *name, int64_t *out)
{
    const struct vg_perfdata_entry *e = vg_perfdata_find(pd, name);
    if (!e || e->is_string)
        return VG_ENOTFOUND;
    *out = e->value;
    return 0;
}

double vg_perfdata_ticks_to_seconds(const struct vg_perfdata *pd, int64_t ticks)
{
    int64_t hz;
    if (vg_perfdata_long(pd, "sun.os.hrt.frequency", &hz) < 0 || hz <= 0)
        return 0;
    return (double)ticks / (double)hz;
}

/* The file. */

struct vg_perfdata_file {
    int fd;
    char path[VG_JVM_PATH_MAX]; /* in the JVM's view */
    uint8_t *buf;
    size_t cap;
};

/* Finds the hsperfdata mapping in /proc/PID/maps: its address range and path. */
static int find_mapping(const struct vg_jvm_target *t, char *range, size_t range_cap, char *path,
                        size_t path_cap)
{
    static const char deleted[] = " (deleted)";
    struct vg_maps maps = {0};
    char pidpath[320], want[32];
    snprintf(pidpath, sizeof(pidpath), "%s/%d/maps", t->proc_root, t->pid);
    snprintf(want, sizeof(want), "/%d", t->nspid);
    char *text = NULL;
    size_t len = 0;
    int rc = vg_procfs_read_alloc(AT_FDCWD, pidpath, 64u << 20, &text, &len);
    if (rc < 0)
        return rc == -ENOENT ? VG_ESRCH : rc;
    rc = vg_procfs_parse_maps(text, len, false, &maps);
    free(text);
    if (rc < 0)
        return rc;
    rc = VG_ENOTFOUND;
    for (size_t i = 0; i < maps.n && rc == VG_ENOTFOUND; i++) {
        const char *p = maps.v[i].path;
        if (!p || !strstr(p, "/hsperfdata_"))
            continue;
        /* A file the JVM still maps but someone unlinked: map_files still reaches it. */
        size_t plen = strlen(p), dlen = sizeof(deleted) - 1, wlen = strlen(want);
        if (plen > dlen && strcmp(p + plen - dlen, deleted) == 0)
            plen -= dlen;
        if (plen < wlen || memcmp(p + plen - wlen, want, wlen) != 0 || plen >= path_cap)
            continue;
        memcpy(path, p, plen);
        path[plen] = '\0';
        snprintf(range, range_cap, "%llx-%llx", (unsigned long long)maps.v[i].start,
                 (unsigned long long)maps.v[i].end);
        rc = 0;
    }
    vg_maps_free(&maps);
    return rc;
}

int vg_perfdata_open(const struct vg_jvm_target *t, struct vg_perfdata_file **out, char *err,
                     size_t errlen)
{
    struct vg_perfdata_file *f = NULL;
    char range[64];
    int fd = -1, rc;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    f = calloc(1, sizeof(*f));
    if (!f)
        return VG_ENOMEM;
    f->fd = -1;
    rc = find_mapping(t, range, sizeof(range), f->path, sizeof(f->path));
    if (rc < 0) {
        if (err && rc == VG_ENOTFOUND)
            snprintf(err, errlen,
                     "pid %d maps no hsperfdata file (started with -XX:-UsePerfData or "
                     "-XX:+PerfDisableSharedMem, or not a HotSpot JVM): no JVM counters",
                     t->pid);
        else if (err)
            snprintf(err, errlen, "cannot read %s/%d/maps: %s", t->proc_root, t->pid,
                     vg_strerror(rc));
        goto out;
    }
    /* The mapping itself: right even when the file was replaced or its directory is hidden by
     * another mount; needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE). */
    char mf[400];
    snprintf(mf, sizeof(mf), "%s/%d/map_files/%s", t->proc_root, t->pid, range);
    fd = open(mf, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fd = vg_jvm_target_open(t, f->path, O_RDONLY | O_NOFOLLOW, 0);
        if (fd < 0) {
            rc = fd;
            fd = -1;
            if (err)
                snprintf(err, errlen, "cannot open %s of pid %d (through %s/%d/root): %s", f->path,
                         t->pid, t->proc_root, t->pid, vg_strerror(rc));
            goto out;
        }
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != t->euid) {
        rc = VG_EPERM;
        if (err)
            snprintf(err, errlen,
                     "%s of pid %d is not a regular file owned by uid %u (the JVM's): ignored",
                     f->path, t->pid, (unsigned)t->euid);
        goto out;
    }
    f->fd = fd;
    fd = -1;
    *out = f;
    f = NULL;
out:
    if (fd >= 0)
        close(fd);
    vg_perfdata_close(f);
    return rc;
}

int vg_perfdata_sample(struct vg_perfdata_file *f, struct vg_perfdata **out)
{
    struct stat st;
    *out = NULL;
    if (fstat(f->fd, &st) < 0)
        return -errno;
    if (st.st_size < PROLOGUE_SIZE)
        return VG_EPARSE;
    if ((uint64_t)st.st_size > VG_PERFDATA_MAX_BYTES)
        return VG_EFBIG;
    size_t want = (size_t)st.st_size;
    if (want > f->cap) {
        uint8_t *nb = realloc(f->buf, want);
        if (!nb)
            return VG_ENOMEM;
        f->buf = nb;
        f->cap = want;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(f->fd, f->buf + got, want - got, (off_t)got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return vg_perfdata_parse(f->buf, got, out);
}

const char *vg_perfdata_file_path(const struct vg_perfdata_file *f)
{
    return f->path;
}

void vg_perfdata_close(struct vg_perfdata_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    free(f->buf);
    free(f);
}
