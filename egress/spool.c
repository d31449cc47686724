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

#define WRITEBACK_STEP (8u << 20)

/* ---------------------------------------------------------------- safe directories and files */

int vg__mkdir_p(const char *path, char *err, size_t errlen)
{
    char *p = vg_strdup(path);
    if (!p)
        return VG_ENOMEM;
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            /* 0700: whatever vigil creates is its own from the start, whatever the umask */
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                rc = -errno;
                snprintf(err, errlen, "cannot create directory %s: %s", p, vg_strerror(rc));
                break;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return rc;
}

/* May another user replace what vigil writes in (or below) this directory? They may when they
 * own it, or when they may write it and it is not sticky. The last directory of a path may be
 * fixed (made sticky) instead: *sticky says so. */
static int dir_check(const char *path, const struct stat *sb, bool last, bool *sticky, char *err,
                     size_t errlen)
{
    uid_t me = geteuid();
    if (!S_ISDIR(sb->st_mode)) {
        snprintf(err, errlen, "%s is not a directory", path);
        return VG_ENOTDIR;
    }
    if (sb->st_uid != 0 && sb->st_uid != me) {
        snprintf(err, errlen,
                 "%s is owned by uid %u, neither root nor vigil's uid %u: that user could replace "
                 "the files vigil writes there (chown it, or use a directory of vigil's own)",
                 path, (unsigned)sb->st_uid, (unsigned)me);
        return VG_EPERM;
    }
    if ((sb->st_mode & (S_IWGRP | S_IWOTH)) && !(sb->st_mode & S_ISVTX)) {
        if (last && (me == 0 || sb->st_uid == me)) {
            *sticky = true;
            return 0;
        }
        snprintf(err, errlen,
                 "%s is writable by other users and not sticky: they could replace the files "
                 "vigil writes below it (chmod go-w or chmod +t)",
                 path);
        return VG_EPERM;
    }
    return 0;
}

int vg__dir_open_safe(const char *path, bool create, int *out, char *err, size_t errlen)
{
    *out = -1;
    int rc = create ? vg__mkdir_p(path, err, errlen) : 0;
    if (rc)
        return rc;
    /* Symlinks in the configured path are the operator's; resolve them, then check every
     * directory of the real path from the root down, so nobody can redirect it later. */
    char *real = realpath(path, NULL);
    if (!real) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, vg_strerror(rc));
        return rc;
    }
    size_t len = strlen(real);
    char *prefix = malloc(len + 1);
    struct stat sb;
    bool sticky = false;
    rc = prefix ? 0 : VG_ENOMEM;
    for (size_t i = 1; !rc && i <= len; i++) {
        /* each directory from "/" down: "/", "/a", "/a/b"... */
        if (i > 1 && real[i] != '/' && real[i] != '\0')
            continue;
        memcpy(prefix, real, i);
        prefix[i] = '\0';
        bool last = i == len;
        if (lstat(prefix, &sb) != 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: %s", prefix, vg_strerror(rc));
        } else {
            rc = dir_check(prefix, &sb, last, &sticky, err, errlen);
        }
    }
    free(prefix);
    int fd = rc ? -1 : open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat fsb;
    if (!rc && (fd < 0 || fstat(fd, &fsb) != 0)) {
        rc = -errno;
        snprintf(err, errlen, "cannot open directory %s: %s", real, vg_strerror(rc));
    } else if (!rc && (fsb.st_dev != sb.st_dev || fsb.st_ino != sb.st_ino)) {
        rc = VG_EPERM;
        snprintf(err, errlen, "%s changed while it was checked", real);
    } else if (!rc && sticky) {
        if (fchmod(fd, (fsb.st_mode & 07777) | S_ISVTX) != 0) {
            rc = -errno;
            snprintf(err, errlen, "%s is writable by other users and could not be made sticky: %s",
                     real, vg_strerror(rc));
        } else {
            vg_log(VG_LOG_WARN, "egress",
                   "%s is writable by other users: made it sticky so that they cannot replace "
                   "vigil's files",
                   real);
        }
    }
    if (rc && fd >= 0)
        close(fd);
    else if (!rc)
        *out = fd;
    free(real);
    return rc;
}

int vg__file_create_at(int dirfd, const char *name, int *out)
{
    for (int attempt = 0;; attempt++) {
        /* Never through a link, never into an existing file: nobody chooses what vigil writes. */
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            *out = fd;
            return 0;
        }
        if (errno != EEXIST || attempt)
            return -errno;
        /* A leftover of a crashed run, or a planted link: remove the entry itself (unlinkat
         * never follows a link), then create afresh. */
        if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
            return -errno;
    }
}

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
    if (lstat(u->spool_path, &sb) == 0 && S_ISREG(sb.st_mode))
        size = (uint64_t)sb.st_size;
    /* only files in the spool directory count against its quota (not FileSystem's partials) */
    size_t n = strlen(u->e->spool_dir);
    bool counted = !strncmp(u->spool_path, u->e->spool_dir, n) && u->spool_path[n] == '/';
    if (unlink(u->spool_path) == 0 && counted)
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

int vg__spool_open(struct vg__spool *s, struct vg__upload *u, int fd, bool counted,
                   enum vg_compression comp)
{
    memset(s, 0, sizeof(*s));
    s->u = u;
    s->fd = fd;
    s->created = true;
    s->counted = counted;
    s->comp = comp;
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
            spool_fail(s, VG_EKEEPFREE,
                       "only %llu bytes free on the filesystem of %s; Storage.KeepFree keeps %llu",
                       (unsigned long long)avail, s->quota_dir, (unsigned long long)e->keep_free);
            return VG_EKEEPFREE;
        }
    }
    int rc = write_all(s->fd, p, n);
    if (rc) {
        spool_fail(s, rc, "writing %s: %s", s->u->spool_path, vg_strerror(rc));
        return rc;
    }
    EVP_DigestUpdate(s->sha, p, n);
    s->written += n;
    /* Start writing back what is written so far, without waiting: the fsync at the commit then
     * finds little left, and the disk works while the artifact is still being produced. */
    if (s->written - s->flushed >= WRITEBACK_STEP) {
        sync_file_range(s->fd, (off64_t)s->flushed, (off64_t)(s->written - s->flushed),
                        SYNC_FILE_RANGE_WRITE);
        s->flushed = s->written;
    }
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
