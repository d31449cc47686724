#include "engine/host/procfs.h"

#include "config/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- reading ---------------------------------------------------------------------------- */

ssize_t vg_procfs_read(int dirfd, const char *rel, char *buf, size_t cap)
{
    int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    int err = errno;
    close(fd);
    if (n < 0)
        return -err;
    buf[n] = '\0';
    return n;
}

int vg_procfs_read_alloc(int dirfd, const char *rel, size_t max, char **data, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = NULL;
    int rc = 0;
    *data = NULL;
    int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    buf = malloc(cap + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                rc = -EFBIG;
                goto out;
            }
            size_t ncap = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                rc = -ENOMEM;
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *data = buf;
    buf = NULL;
    if (len)
        *len = n;
out:
    free(buf);
    close(fd);
    return rc;
}

/* ---- numbers and fields ------------------------------------------------------------------ */

const char *vg_procfs_skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

const char *vg_procfs_parse_u64(const char *s, uint64_t *out, bool *ok)
{
    uint64_t v = 0;
    const char *p = s;
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            v = UINT64_MAX; /* saturate: v1 limits can be near 2^63 but never overflow */
        else
            v = v * 10 + d;
        p++;
    }
    *ok = p != s;
    *out = v;
    return p;
}

/* The next line from *from on that starts with key followed by ':', a blank or the end (or where
 * key itself ends with a blank or ':'): returns the value after the ':' and blanks, or NULL. */
static const char *field_next(const char *key, const char **from)
{
    size_t klen = strlen(key);
    bool key_sep = klen && (key[klen - 1] == ' ' || key[klen - 1] == ':');
    for (const char *p = *from; p && *p;) {
        const char *nl = strchr(p, '\n');
        *from = nl ? nl + 1 : NULL;
        if (strncmp(p, key, klen) == 0) {
            const char *v = p + klen;
            if (key_sep || *v == ':' || *v == ' ' || *v == '\t' || *v == '\n' || !*v) {
                if (*v == ':')
                    v++;
                return vg_procfs_skip_ws(v);
            }
        }
        p = *from;
    }
    return NULL;
}

const char *vg_procfs_field(const char *text, const char *key)
{
    const char *from = text;
    return field_next(key, &from);
}

bool vg_procfs_field_u64(const char *text, const char *key, uint64_t *out)
{
    const char *from = text, *v;
    while ((v = field_next(key, &from))) {
        bool ok;
        vg_procfs_parse_u64(v, out, &ok);
        if (ok)
            return true;
    }
    return false;
}

bool vg_procfs_field_hex(const char *text, const char *key, uint64_t *out)
{
    const char *v = vg_procfs_field(text, key);
    if (!v)
        return false;
    uint64_t x = 0;
    int digits = 0;
    for (; digits < 16; v++, digits++) {
        int d = (*v >= '0' && *v <= '9')   ? *v - '0'
                : (*v >= 'a' && *v <= 'f') ? *v - 'a' + 10
                : (*v >= 'A' && *v <= 'F') ? *v - 'A' + 10
                                           : -1;
        if (d < 0)
            break;
        x = x << 4 | (uint64_t)d;
    }
    *out = x;
    return digits > 0;
}

static int parse_int(const char *s, const char **end)
{
    bool neg = false;
    if (*s == '-') {
        neg = true;
        s++;
    }
    uint64_t v;
    bool ok;
    *end = vg_procfs_parse_u64(s, &v, &ok);
    if (!ok || v > INT_MAX)
        return -1;
    return neg ? -(int)v : (int)v;
}

/* ---- stat ---------------------------------------------------------------------------------- */

int vg_procfs_parse_stat(const char *input, size_t len, struct vg_proc_stat *out)
{
    memset(out, 0, sizeof(*out));
    /* The number parser stops at a NUL; the input need not have one. A stat line is a few
     * hundred bytes (comm is at most 64), so every field fits. */
    char text[1024];
    if (len >= sizeof(text))
        len = sizeof(text) - 1;
    memcpy(text, input, len);
    text[len] = '\0';
    const char *open = memchr(text, '(', len);
    if (!open)
        return VG_EPARSE;
    /* The comm may contain ')' itself: the real end is the last one. */
    const char *close = NULL;
    for (const char *q = text + len; q > open;) {
        q--;
        if (*q == ')') {
            close = q;
            break;
        }
    }
    if (!close)
        return VG_EPARSE;
    size_t clen = (size_t)(close - open - 1);
    if (clen >= sizeof(out->comm))
        clen = sizeof(out->comm) - 1;
    memcpy(out->comm, open + 1, clen);
    out->comm[clen] = '\0';

    /* Fields 3.. after ") ". Field 3 is the state char; 4..24 are required, 25..52 optional. */
    const char *p = close + 1;
    const char *end = text + len;
    if (p >= end || *p != ' ')
        return VG_EPARSE;
    p++;
    if (p >= end)
        return VG_EPARSE;
    out->state = *p++;
    uint64_t f[53] = {0}; /* f[i] = field i (1-based as in proc(5)) */
    for (int i = 4; i <= 52; i++) {
        if (p >= end || *p != ' ') {
            if (i <= 24)
                return VG_EPARSE;
            break;
        }
        p++;
        bool neg = false;
        if (p < end && *p == '-') {
            neg = true;
            p++;
        }
        bool ok;
        const char *q = vg_procfs_parse_u64(p, &f[i], &ok);
        if (!ok || q > end) {
            if (i <= 24)
                return VG_EPARSE;
            f[i] = 0;
            break;
        }
        if (neg)
            f[i] = (uint64_t)(-(int64_t)f[i]);
        p = q;
    }
    out->ppid = (int)f[4];
    out->pgrp = (int)f[5];
    out->session = (int)f[6];
    out->flags = (unsigned)f[9];
    out->minflt = f[10];
    out->majflt = f[12];
    out->utime = f[14];
    out->stime = f[15];
    out->cutime = (int64_t)f[16];
    out->cstime = (int64_t)f[17];
    out->nice = (int64_t)f[19];
    out->num_threads = (int64_t)f[20];
    out->start_ticks = f[22];
    out->vsize = f[23];
    out->rss_pages = (int64_t)f[24];
    out->arg_start = f[48];
    out->arg_end = f[49];
    out->env_start = f[50];
    out->env_end = f[51];
    return 0;
}

/* ---- status -------------------------------------------------------------------------------- */

static void parse_ids(const char *v, const char *end, int out[4])
{
    for (int i = 0; i < 4 && v < end; i++) {
        v = vg_procfs_skip_ws(v);
        const char *e;
        int x = parse_int(v, &e);
        if (e == v || x < 0)
            break;
        out[i] = x;
        v = e;
    }
}

static uint64_t parse_hex_n(const char *v, const char *end)
{
    uint64_t x = 0;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    for (int digits = 0; v < end && digits < 16; v++, digits++) {
        int d = (*v >= '0' && *v <= '9') ? *v - '0' : (*v >= 'a' && *v <= 'f') ? *v - 'a' + 10 : -1;
        if (d < 0)
            break;
        x = x << 4 | (uint64_t)d;
    }
    return x;
}

int vg_procfs_parse_status(const char *text, size_t len, struct vg_proc_status *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < 4; i++)
        out->uid[i] = out->gid[i] = -1;
    bool named = false;
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
#define KEY(k) ((size_t)(le - line) >= sizeof(k) - 1 && memcmp(line, k, sizeof(k) - 1) == 0)
        if (KEY("Name:")) {
            /* The kernel escapes backslashes and control characters here ("\\", "\n"):
             * undo it so names match what the program set (and what filters name). */
            const char *v = line + 5;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            size_t o = 0;
            while (v < le && o + 1 < sizeof(out->name)) {
                char c = *v++;
                if (c == '\\' && v < le) {
                    static const char from[] = "\\abefnrtv", to[] = "\\\a\b\x1b\f\n\r\t\v";
                    const char *k = *v ? strchr(from, *v) : NULL;
                    if (k) {
                        c = to[k - from];
                        v++;
                    }
                }
                out->name[o++] = c;
            }
            out->name[o] = '\0';
            named = true;
        } else if (KEY("Uid:")) {
            char tmp[128];
            size_t n = (size_t)(le - line - 4) < sizeof(tmp) - 1 ? (size_t)(le - line - 4)
                                                                 : sizeof(tmp) - 1;
            memcpy(tmp, line + 4, n);
            tmp[n] = '\0';
            parse_ids(tmp, tmp + n, out->uid);
        } else if (KEY("Gid:")) {
            char tmp[128];
            size_t n = (size_t)(le - line - 4) < sizeof(tmp) - 1 ? (size_t)(le - line - 4)
                                                                 : sizeof(tmp) - 1;
            memcpy(tmp, line + 4, n);
            tmp[n] = '\0';
            parse_ids(tmp, tmp + n, out->gid);
        } else if (KEY("NSpid:")) {
            char tmp[160];
            size_t n = (size_t)(le - line - 6) < sizeof(tmp) - 1 ? (size_t)(le - line - 6)
                                                                 : sizeof(tmp) - 1;
            memcpy(tmp, line + 6, n);
            tmp[n] = '\0';
            const char *v = tmp;
            out->nspid_count = 0;
            while (*v && out->nspid_count < VG_PROC_NSPID_MAX) {
                v = vg_procfs_skip_ws(v);
                const char *e;
                int x = parse_int(v, &e);
                if (x <= 0 || e == v)
                    break;
                out->nspid[out->nspid_count++] = x;
                v = e;
            }
        } else if (KEY("TracerPid:")) {
            char tmp[32];
            size_t n = (size_t)(le - line - 10) < sizeof(tmp) - 1 ? (size_t)(le - line - 10)
                                                                  : sizeof(tmp) - 1;
            memcpy(tmp, line + 10, n);
            tmp[n] = '\0';
            const char *e;
            int x = parse_int(vg_procfs_skip_ws(tmp), &e);
            out->tracer_pid = x > 0 ? x : 0;
        } else if (KEY("SigCgt:")) {
            out->sig_cgt = parse_hex_n(line + 7, le);
        } else if (KEY("SigBlk:")) {
            out->sig_blk = parse_hex_n(line + 7, le);
        } else if (KEY("SigPnd:")) {
            out->sig_pnd = parse_hex_n(line + 7, le);
        }
#undef KEY
        line = nl ? nl + 1 : end;
    }
    return named ? 0 : VG_EPARSE;
}

/* ---- maps / smaps ------------------------------------------------------------------------- */

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static const char *parse_hex64(const char *s, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    int digits = 0;
    while (s < end && is_hex(*s) && digits < 16) {
        v = v << 4 | (uint64_t)(*s <= '9' ? *s - '0' : *s - 'a' + 10);
        s++;
        digits++;
    }
    *out = v;
    return digits ? s : NULL;
}

/* "start-end perms offset dev inode   path" */
static int parse_map_line(const char *line, const char *end, struct vg_map *m)
{
    memset(m, 0, sizeof(*m));
    const char *p = parse_hex64(line, end, &m->start);
    if (!p || p >= end || *p != '-')
        return VG_EPARSE;
    p = parse_hex64(p + 1, end, &m->end);
    if (!p || end - p < 6 || *p != ' ')
        return VG_EPARSE;
    p++;
    m->prot =
        (p[0] == 'r' ? VG_MAP_R : 0) | (p[1] == 'w' ? VG_MAP_W : 0) | (p[2] == 'x' ? VG_MAP_X : 0);
    m->shared = p[3] == 's';
    p += 4;
    if (p >= end || *p != ' ')
        return VG_EPARSE;
    p = parse_hex64(p + 1, end, &m->offset);
    if (!p)
        return VG_EPARSE;
    /* dev and inode */
    for (int field = 0; field < 2; field++) {
        if (p >= end || *p != ' ')
            return VG_EPARSE;
        p++;
        while (p < end && *p != ' ')
            p++;
    }
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < end) {
        char *s = malloc((size_t)(end - p) + 1);
        if (!s)
            return VG_ENOMEM;
        memcpy(s, p, (size_t)(end - p));
        s[end - p] = '\0';
        if (*p == '/')
            m->path = s;
        else
            m->name = s;
    }
    return 0;
}

static int maps_push(struct vg_maps *ms, const struct vg_map *m)
{
    if (ms->n == ms->cap) {
        size_t cap = ms->cap ? ms->cap * 2 : 64;
        struct vg_map *v = realloc(ms->v, cap * sizeof(*v));
        if (!v)
            return VG_ENOMEM;
        ms->v = v;
        ms->cap = cap;
    }
    ms->v[ms->n++] = *m;
    return 0;
}

static void parse_vmflags(const char *p, const char *end, struct vg_map *m)
{
    m->have_flags = 1;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        if (end - p < 2)
            break;
        if ((p[0] == 'd' && p[1] == 'd') || (p[0] == 'i' && p[1] == 'o') ||
            (p[0] == 'p' && p[1] == 'f'))
            m->dontdump = 1;
        if (p[0] == 'h' && p[1] == 't')
            m->hugetlb = 1;
        while (p < end && *p != ' ')
            p++;
    }
}

int vg_procfs_parse_maps(const char *text, size_t len, bool smaps, struct vg_maps *out)
{
    struct vg_map *cur = NULL;
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        /* Mapping lines start with a lowercase hex address; smaps keys start with a capital. */
        if (is_hex(*line)) {
            struct vg_map m;
            int rc = parse_map_line(line, le, &m);
            if (rc == 0)
                rc = maps_push(out, &m);
            if (rc == VG_ENOMEM) {
                free(m.path);
                free(m.name);
                vg_maps_free(out);
                return rc;
            }
            cur = rc == 0 ? &out->v[out->n - 1] : NULL;
        } else if (smaps && cur && le - line > 10 && memcmp(line, "Anonymous:", 10) == 0) {
            const char *v = line + 10;
            while (v < le && *v == ' ')
                v++;
            cur->anon_cow = v < le && *v >= '1' && *v <= '9';
        } else if (smaps && cur && le - line >= 8 && memcmp(line, "VmFlags:", 8) == 0) {
            parse_vmflags(line + 8, le, cur);
        }
        line = nl ? nl + 1 : end;
    }
    return 0;
}

int vg_procfs_read_maps(int dirfd, pid_t pid, bool smaps, struct vg_maps *out)
{
    char rel[64];
    char *data = NULL;
    size_t len = 0;
    memset(out, 0, sizeof(*out));
    snprintf(rel, sizeof(rel), "%s%d/%s", dirfd == AT_FDCWD ? "/proc/" : "", (int)pid,
             smaps ? "smaps" : "maps");
    /* a process may have up to vm.max_map_count (65530 by default) mappings; smaps is ~1 KB
     * per mapping: 256 MB bounds the worst case without trusting the file */
    int rc = vg_procfs_read_alloc(dirfd, rel, (size_t)256 << 20, &data, &len);
    if (rc)
        return rc;
    rc = vg_procfs_parse_maps(data, len, smaps, out);
    free(data);
    return rc;
}

void vg_maps_merge_flags(struct vg_maps *to, const struct vg_maps *from)
{
    size_t j = 0;
    /* Both lists are sorted by address. */
    for (size_t i = 0; i < to->n; i++) {
        struct vg_map *m = &to->v[i];
        while (j < from->n && from->v[j].start < m->start)
            j++;
        if (j < from->n && from->v[j].start == m->start && from->v[j].end == m->end) {
            m->anon_cow = from->v[j].anon_cow;
            m->dontdump = from->v[j].dontdump;
            m->hugetlb = from->v[j].hugetlb;
            m->have_flags = from->v[j].have_flags;
        }
    }
}

void vg_maps_free(struct vg_maps *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].path);
        free(m->v[i].name);
    }
    free(m->v);
    memset(m, 0, sizeof(*m));
}
