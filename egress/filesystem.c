/* FileSystem egress: the artifact is written straight to IntermediateDirectoryPath (no spool
 * copy), then fsync'd and renamed atomically into DirectoryPath, the directory fsync'd too. A
 * reader of DirectoryPath never sees a partial file. Files are mode 0600. */
#include "config/error.h"
#include "config/log.h"
#include "egress/egress_int.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fs {
    char *dir;
    char *tmp_dir;
};

static int ensure_dir(const char *path, char *err, size_t errlen)
{
    char *p = vg_strdup(path);
    if (!p)
        return VG_ENOMEM;
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = '\0';
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

static void fs_destroy(void *state)
{
    struct fs *f = state;
    if (!f)
        return;
    free(f->dir);
    free(f->tmp_dir);
    free(f);
}

static int fs_create(const struct vg_egress_settings *s, void **state, char *err, size_t errlen)
{
    const struct vg_egress_fs *c = &s->u.fs;
    if (!c->directory_path || !*c->directory_path) {
        snprintf(err, errlen, "DirectoryPath is required");
        return VG_ECONFIG;
    }
    struct fs *f = calloc(1, sizeof(*f));
    if (!f)
        return VG_ENOMEM;
    f->dir = vg_strdup(c->directory_path);
    f->tmp_dir = c->intermediate_directory_path && *c->intermediate_directory_path
                     ? vg_strdup(c->intermediate_directory_path)
                     : vg_asprintf("%s/.vigil-partial", c->directory_path);
    int rc = (!f->dir || !f->tmp_dir) ? VG_ENOMEM : 0;
    if (!rc)
        rc = ensure_dir(f->dir, err, errlen);
    if (!rc)
        rc = ensure_dir(f->tmp_dir, err, errlen);
    if (rc) {
        fs_destroy(f);
        return rc;
    }
    *state = f;
    return 0;
}

static int fs_validate(const struct vg_egress_settings *s, char *err, size_t errlen)
{
    const struct vg_egress_fs *c = &s->u.fs;
    if (!c->directory_path || !*c->directory_path) {
        snprintf(err, errlen, "DirectoryPath is required");
        return VG_ECONFIG;
    }
    const char *dirs[] = {c->directory_path, c->intermediate_directory_path};
    for (size_t i = 0; i < 2; i++) {
        char why[300];
        if (dirs[i] && *dirs[i] && vg_dir_creatable(dirs[i], why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s %s cannot be created: %s",
                     i ? "IntermediateDirectoryPath" : "DirectoryPath", dirs[i], why);
            return VG_ECONFIG;
        }
    }
    return 0;
}

static int fs_check_name(void *state, const char *name, char *err, size_t errlen)
{
    if (strchr(name, '/')) {
        snprintf(err, errlen, "FileSystem artifact names cannot contain '/'");
        return VG_EINVAL;
    }
    return 0;
}

static int fs_direct_path(void *state, const struct vg__upload *u, char **out)
{
    struct fs *f = state;
    /* The id keeps two artifacts with one name apart while both are being written. */
    *out = vg_asprintf("%s/%s.%lld.partial", f->tmp_dir, u->name, (long long)u->id);
    return *out ? 0 : VG_ENOMEM;
}

static uint64_t fs_chunk_size(void *state, const struct vg__upload *u)
{
    return UINT64_MAX;
}

static int fs_begin(void *state, struct vg__upload *u)
{
    u->chunked = false;
    return 0;
}

static int fs_put_chunk(void *state, struct vg__upload *u, unsigned no, uint64_t off, uint64_t len,
                        char **out_tag)
{
    return VG_EINVAL; /* never chunked */
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

static int fs_finish(void *state, struct vg__upload *u)
{
    struct fs *f = state;
    char *dest = vg_asprintf("%s/%s", f->dir, u->name);
    if (!dest)
        return VG_ENOMEM;
    int rc = fsync_path(u->spool_path, O_RDONLY);
    if (!rc && rename(u->spool_path, dest) != 0)
        rc = -errno;
    if (!rc)
        rc = fsync_path(f->dir, O_RDONLY | O_DIRECTORY);
    if (rc) {
        snprintf(u->err, sizeof(u->err), "moving %s to %s: %s%s", u->spool_path, dest,
                 vg_strerror(rc),
                 rc == -EXDEV ? " (IntermediateDirectoryPath must be on the same filesystem)" : "");
        /* A full disk or a flaky network filesystem may recover; anything else will not. */
        rc = (rc == -ENOSPC || rc == -EIO) ? VG_ERETRY : VG_EFATAL;
    }
    free(dest);
    return rc;
}

static int fs_probe(void *state, struct vg__upload *u, bool *complete)
{
    struct fs *f = state;
    *complete = false;
    struct stat sb;
    if (access(u->spool_path, F_OK) == 0)
        return 0; /* not renamed yet: finish will do it */
    char *dest = vg_asprintf("%s/%s", f->dir, u->name);
    if (!dest)
        return VG_ENOMEM;
    int fd = open(dest, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &sb) == 0 && (uint64_t)sb.st_size == u->size) {
        char sha[65];
        *complete = vg__file_sha256_hex(fd, 0, u->size, sha) == 0 && !strcmp(sha, u->sha256);
    }
    if (fd >= 0)
        close(fd);
    free(dest);
    return 0;
}

static void fs_abort(void *state, struct vg__upload *u)
{
    /* The core removes the intermediate file. */
}

static int fs_egress_path(void *state, const struct vg__upload *u, char **out)
{
    struct fs *f = state;
    char abs[PATH_MAX];
    const char *dir = realpath(f->dir, abs) ? abs : f->dir;
    *out = vg_asprintf("%s/%s", dir, u->name);
    return *out ? 0 : VG_ENOMEM;
}

const struct vg_egress_provider_type vg__egress_filesystem = {
    .type_name = "FileSystem",
    .kind = VG_EGRESS_FILESYSTEM,
    .spools = false,
    .create = fs_create,
    .validate = fs_validate,
    .destroy = fs_destroy,
    .check_name = fs_check_name,
    .direct_path = fs_direct_path,
    .chunk_size = fs_chunk_size,
    .begin = fs_begin,
    .put_chunk = fs_put_chunk,
    .finish = fs_finish,
    .probe = fs_probe,
    .abort = fs_abort,
    .egress_path = fs_egress_path,
};
