#include "config/util.h"
#include "config/error.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void vg_buf_init(struct vg_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void vg_buf_free(struct vg_buf *b)
{
    free(b->data);
    vg_buf_init(b);
}

void vg_buf_reset(struct vg_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int buf_reserve(struct vg_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len - 1)
        return VG_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return VG_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int vg_buf_append(struct vg_buf *b, const void *data, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int vg_buf_puts(struct vg_buf *b, const char *s)
{
    return vg_buf_append(b, s, strlen(s));
}

int vg_buf_vprintf(struct vg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return VG_EINVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int vg_buf_printf(struct vg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *vg_buf_steal(struct vg_buf *b)
{
    char *s = b->data;
    vg_buf_init(b);
    if (!s)
        s = calloc(1, 1);
    return s;
}

int vg_grow(void **v, size_t *cap, size_t n, size_t elem_size, size_t initial)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : initial;
    if (ncap < *cap || ncap > SIZE_MAX / elem_size)
        return VG_ENOMEM;
    void *p = realloc(*v, ncap * elem_size);
    if (!p)
        return VG_ENOMEM;
    *v = p;
    *cap = ncap;
    return 0;
}

char *vg_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *vg_strndup(const char *s, size_t n)
{
    return s ? strndup(s, n) : NULL;
}

char *vg_asprintf(const char *fmt, ...)
{
    struct vg_buf b;
    vg_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    int rc = vg_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc) {
        vg_buf_free(&b);
        return NULL;
    }
    return vg_buf_steal(&b);
}

static uint64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t vg_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

uint64_t vg_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

/* Parses an unsigned decimal with optional fraction; advances *p. */
static int parse_decimal(const char **p, double *out)
{
    const char *s = *p;
    if (!isdigit((unsigned char)*s) && !(*s == '.' && isdigit((unsigned char)s[1])))
        return VG_EINVAL;
    double v = 0;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (*s - '0');
        if (v > 1e18)
            return VG_ERANGE;
        s++;
    }
    if (*s == '.') {
        s++;
        double scale = 0.1;
        if (!isdigit((unsigned char)*s))
            return VG_EINVAL;
        while (isdigit((unsigned char)*s)) {
            v += (*s - '0') * scale;
            scale /= 10;
            s++;
        }
    }
    *p = s;
    *out = v;
    return 0;
}

static int parse_timespan(const char *s, uint64_t *out_ms)
{
    /* [-][d.]hh:mm[:ss[.fffffff]] */
    unsigned long days = 0, hh = 0, mm = 0;
    double ss = 0;
    const char *p = s;
    char *end;
    unsigned long first = strtoul(p, &end, 10);
    if (end == p)
        return VG_EINVAL;
    p = end;
    if (*p == '.') {
        days = first;
        p++;
        hh = strtoul(p, &end, 10);
        if (end == p)
            return VG_EINVAL;
        p = end;
    } else {
        hh = first;
    }
    if (*p != ':')
        return VG_EINVAL;
    p++;
    mm = strtoul(p, &end, 10);
    if (end == p)
        return VG_EINVAL;
    p = end;
    if (*p == ':') {
        p++;
        int rc = parse_decimal(&p, &ss);
        if (rc)
            return rc;
    }
    if (*p != '\0')
        return VG_EINVAL;
    if (hh > 23 || mm > 59 || ss >= 60 || days > 100000)
        return VG_ERANGE;
    double ms = ((double)days * 86400.0 + (double)hh * 3600.0 + (double)mm * 60.0 + ss) * 1000.0;
    *out_ms = (uint64_t)llround(ms);
    return 0;
}

int vg_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    if (!s || !*s)
        return VG_EINVAL;
    if (strchr(s, ':'))
        return parse_timespan(s, out_ms);
    const char *p = s;
    double v;
    int rc = parse_decimal(&p, &v);
    if (rc)
        return rc;
    while (*p == ' ')
        p++;
    double mult;
    if (*p == '\0' || strcasecmp(p, "s") == 0 || strcasecmp(p, "sec") == 0)
        mult = 1000;
    else if (strcasecmp(p, "ms") == 0)
        mult = 1;
    else if (strcasecmp(p, "m") == 0 || strcasecmp(p, "min") == 0)
        mult = 60000;
    else if (strcasecmp(p, "h") == 0)
        mult = 3600000;
    else if (strcasecmp(p, "d") == 0)
        mult = 86400000;
    else
        return VG_EINVAL;
    double ms = v * mult;
    if (ms > 1e15)
        return VG_ERANGE;
    *out_ms = (uint64_t)llround(ms);
    return 0;
}

int vg_parse_size(const char *s, uint64_t *out_bytes)
{
    if (!s || !*s)
        return VG_EINVAL;
    const char *p = s;
    double v;
    int rc = parse_decimal(&p, &v);
    if (rc)
        return rc;
    while (*p == ' ')
        p++;
    static const struct {
        const char *suffix;
        double mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1000},
        {"kb", 1000},
        {"m", 1e6},
        {"mb", 1e6},
        {"g", 1e9},
        {"gb", 1e9},
        {"t", 1e12},
        {"tb", 1e12},
        {"kib", 1024.0},
        {"mib", 1048576.0},
        {"gib", 1073741824.0},
        {"tib", 1099511627776.0},
        {"ki", 1024.0},
        {"mi", 1048576.0},
        {"gi", 1073741824.0},
    };
    for (size_t i = 0; i < VG_ARRAY_SIZE(units); i++) {
        if (strcasecmp(p, units[i].suffix) == 0) {
            double bytes = v * units[i].mult;
            if (bytes > 9.0e18)
                return VG_ERANGE;
            *out_bytes = (uint64_t)llround(bytes);
            return 0;
        }
    }
    return VG_EINVAL;
}

void vg_format_timespan(uint64_t ms, char *buf, size_t n)
{
    uint64_t secs = ms / 1000;
    uint64_t days = secs / 86400;
    unsigned h = (unsigned)(secs % 86400 / 3600), m = (unsigned)(secs % 3600 / 60),
             s = (unsigned)(secs % 60);
    unsigned frac = (unsigned)(ms % 1000);
    char f[8] = "";
    if (frac)
        snprintf(f, sizeof(f), ".%03u", frac);
    if (days)
        snprintf(buf, n, "%llu.%02u:%02u:%02u%s", (unsigned long long)days, h, m, s, f);
    else
        snprintf(buf, n, "%02u:%02u:%02u%s", h, m, s, f);
}

unsigned vg_edit_distance(const char *a, const char *b, unsigned cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return cap + 1;
    unsigned row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned prev = row[0];
        row[0] = (unsigned)i;
        unsigned best = row[0];
        for (size_t j = 1; j <= lb; j++) {
            unsigned cur = row[j];
            int same = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]);
            unsigned v = prev + (same ? 0 : 1);
            if (row[j] + 1 < v)
                v = row[j] + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            row[j] = v;
            prev = cur;
            if (v < best)
                best = v;
        }
        if (best > cap)
            return cap + 1;
    }
    return row[lb];
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

int vg_base64url_decode(const char *s, struct vg_buf *out)
{
    size_t len = strlen(s);
    while (len && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return VG_EINVAL;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0)
            return VG_EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char byte = (unsigned char)(acc >> bits);
            int rc = vg_buf_append(out, &byte, 1);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int vg_dir_creatable(const char *path, char *why, size_t n)
{
    char *p = vg_strdup(path);
    int rc = 0;
    if (!p)
        return VG_ENOMEM;
    struct stat st;
    bool exists = stat(p, &st) == 0;
    /* walk up to the nearest ancestor that exists */
    while (!exists) {
        char *slash = strrchr(p, '/');
        if (!slash) {
            snprintf(why, n, "not an absolute path");
            rc = VG_EINVAL;
            goto out;
        }
        if (slash == p)
            slash[1] = '\0';
        else
            *slash = '\0';
        exists = stat(p, &st) == 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, n, "%s exists and is not a directory", p);
        rc = -ENOTDIR;
    } else if (access(p, W_OK | X_OK) != 0) {
        rc = -errno;
        snprintf(why, n, "%s is not writable by this user (uid %u): %s", p, (unsigned)geteuid(),
                 strerror(errno));
    }
out:
    free(p);
    return rc;
}
