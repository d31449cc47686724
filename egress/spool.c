/* Spool files: an artifact is written (through the compressor) to a file first, in the spool
 * directory (Storage.SpoolDir, counted against Storage.SpoolQuota) or where a direct provider
 * wants it, while Storage.KeepFree guards the filesystem and the SHA-256 of the stored bytes is
 * computed on the way. The upload later reads the file back; it outlives a crash. */
#include "config/codec.h"
#include "config/error.h"
#include "config/log.h"
#include "egress/egress_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

uint64_t vg__fs_bytes(const char *dir, bool total)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0)
        return 0;
    return (uint64_t)(total ? sv.f_blocks : sv.f_bavail) * (uint64_t)sv.f_frsize;
}

uint64_t vg__spool_usage(const char *dir)
{
    uint64_t sum = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat sb;
        if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &sb, 0) == 0 &&
            S_ISREG(sb.st_mode))
            sum += (uint64_t)sb.st_size;
    }
    closedir(d);
    return sum;
}

static void quota_give_back(struct vg_egress *e, uint64_t n)
{
    pthread_mutex_lock(&e->mu);
    e->spool_used = e->spool_used > n ? e->spool_used - n : 0;
    pthread_mutex_unlock(&e->mu);
}

void vg__spool_drop(struct vg__upload *u)
{
    if (!u->spool_path)
        return;
    struct stat sb;
    uint64_t size = 0;
    if (stat(u->spool_path, &sb) == 0)
        size = (uint64_t)sb.st_size;
    if (unlink(u->spool_path) == 0 && u->prov->type->spools)
        quota_give_back(u->e, size);
}

static void spool_fail(struct vg__spool *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void spool_fail(struct vg__spool *s, int rc, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    vg_log(VG_LOG_ERROR, s->u->prov->component, "%s: %s", s->u->name, s->err);
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int vg__spool_open(struct vg__spool *s, struct vg__upload *u, bool counted,
                   enum vg_compression comp)
{
    memset(s, 0, sizeof(*s));
    s->u = u;
    s->fd = -1;
    s->counted = counted;
    s->comp = comp;
    int rc = 0;
    if (counted) {
        s->quota_dir = vg_strdup(u->e->spool_dir);
    } else {
        /* KeepFree guards the destination's filesystem: its directory is the parent. */
        s->quota_dir = vg_strdup(u->spool_path);
        char *slash = s->quota_dir ? strrchr(s->quota_dir, '/') : NULL;
        if (slash && slash != s->quota_dir)
            *slash = '\0';
    }
    if (!s->quota_dir)
        return VG_ENOMEM;
    s->fd = open(u->spool_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        rc = -errno;
        vg_log(VG_LOG_ERROR, u->prov->component, "cannot create %s: %s", u->spool_path,
               vg_strerror(rc));
        return rc;
    }
    s->created = true;
    s->sha = EVP_MD_CTX_new();
    if (!s->sha || EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1)
        return VG_ENOMEM;
    if (comp == VG_COMPRESS_GZIP) {
        if (deflateInit2(&s->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return VG_ENOMEM;
        s->z_init = true;
    } else if (comp == VG_COMPRESS_ZSTD) {
        s->zs = ZSTD_createCStream();
        if (!s->zs || ZSTD_isError(ZSTD_CCtx_setParameter(s->zs, ZSTD_c_compressionLevel, 3)))
            return VG_ENOMEM;
    }
    return 0;
}

/* Writes output bytes to the file: quota first, then the disk, then the checksum. */
static int emit(struct vg__spool *s, const void *p, size_t n)
{
    if (!n)
        return 0;
    struct vg_egress *e = s->u->e;
    if (s->counted) {
        pthread_mutex_lock(&e->mu);
        bool over = e->spool_used + n > e->quota;
        uint64_t used = e->spool_used;
        if (!over)
            e->spool_used += n;
        pthread_mutex_unlock(&e->mu);
        if (over) {
            spool_fail(s, VG_EQUOTA,
                       "spool quota exceeded: %llu bytes in %s + %zu > Storage.SpoolQuota %llu",
                       (unsigned long long)used, e->spool_dir, n, (unsigned long long)e->quota);
            return VG_EQUOTA;
        }
        s->reserved += n;
    }
    if (e->keep_free) {
        uint64_t avail = vg__fs_bytes(s->quota_dir, false);
        if (avail < e->keep_free + n) {
            spool_fail(s, VG_EQUOTA,
                       "only %llu bytes free on the filesystem of %s; Storage.KeepFree keeps %llu",
                       (unsigned long long)avail, s->quota_dir, (unsigned long long)e->keep_free);
            return VG_EQUOTA;
        }
    }
    int rc = write_all(s->fd, p, n);
    if (rc) {
        spool_fail(s, rc, "writing %s: %s", s->u->spool_path, vg_strerror(rc));
        return rc;
    }
    EVP_DigestUpdate(s->sha, p, n);
    s->written += n;
    return 0;
}

/* Feeds input through the compressor (or straight through); finish flushes the stream end. */
static int feed(struct vg__spool *s, const void *buf, size_t len, bool finish)
{
    int rc = 0;
    if (s->comp == VG_COMPRESS_NONE)
        return emit(s, buf, len);
    if (s->comp == VG_COMPRESS_GZIP) {
        s->z.next_in = (Bytef *)(uintptr_t)buf;
        s->z.avail_in = (uInt)len;
        for (;;) {
            s->z.next_out = s->out;
            s->z.avail_out = sizeof(s->out);
            int zr = deflate(&s->z, finish ? Z_FINISH : Z_NO_FLUSH);
            if (zr == Z_STREAM_ERROR) {
                spool_fail(s, VG_EIO, "gzip: %s", s->z.msg ? s->z.msg : "stream error");
                return VG_EIO;
            }
            if ((rc = emit(s, s->out, sizeof(s->out) - s->z.avail_out)))
                return rc;
            if (finish ? zr == Z_STREAM_END : (s->z.avail_in == 0 && s->z.avail_out != 0))
                return 0;
        }
    }
    ZSTD_inBuffer in = {buf, len, 0};
    for (;;) {
        ZSTD_outBuffer o = {s->out, sizeof(s->out), 0};
        size_t left = ZSTD_compressStream2(s->zs, &o, &in, finish ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left)) {
            spool_fail(s, VG_EIO, "zstd: %s", ZSTD_getErrorName(left));
            return VG_EIO;
        }
        if ((rc = emit(s, s->out, o.pos)))
            return rc;
        if (finish ? left == 0 : in.pos == in.size)
            return 0;
    }
}

int vg__spool_write(struct vg__spool *s, const void *buf, size_t len)
{
    if (s->failed)
        return s->failed;
    if (!len)
        return 0;
    return feed(s, buf, len, false);
}

int vg__spool_finish(struct vg__spool *s)
{
    int rc = s->failed;
    if (!rc && s->comp != VG_COMPRESS_NONE)
        rc = feed(s, NULL, 0, true);
    if (!rc && fsync(s->fd) != 0) {
        rc = -errno;
        spool_fail(s, rc, "fsync %s: %s", s->u->spool_path, vg_strerror(rc));
    }
    if (rc)
        return rc;
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(s->sha, md, &mdlen);
    vg_hex_encode(md, 32, s->u->sha256);
    s->u->size = s->written;
    return 0;
}

void vg__spool_close(struct vg__spool *s, bool discard)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    EVP_MD_CTX_free(s->sha);
    s->sha = NULL;
    if (s->z_init)
        deflateEnd(&s->z);
    s->z_init = false;
    ZSTD_freeCStream(s->zs);
    s->zs = NULL;
    free(s->quota_dir);
    s->quota_dir = NULL;
    if (discard) {
        if (s->created)
            unlink(s->u->spool_path);
        s->created = false;
        /* Give back everything reserved, including bytes a failed write never stored. */
        if (s->counted)
            quota_give_back(s->u->e, s->reserved);
        s->reserved = 0;
    }
}
