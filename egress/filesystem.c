/* FileSystem egress: the artifact is written straight to IntermediateDirectoryPath (no spool
 * copy), then fsync'd and renamed atomically into DirectoryPath, the directory fsync'd too. A
 * reader of DirectoryPath never sees a partial file. Files are mode 0600.
 *
 * Dump volumes are often shared (an emptyDir is 0777): both directories are opened and checked
 * before each use (vg__dir_open_safe: no other user may replace vigil's files there), every
 * file is created and renamed relative to those checked directory fds, never through a link. */
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
    bool custom_tmp; /* IntermediateDirectoryPath was set */
};

/* Both directories, created if needed (mode 0700) and checked. */
static int open_dirs(struct fs *f, int *dfd, int *tfd, char *err, size_t errlen)
{
    *dfd = *tfd = -1;
    char e[400] = "";
    int rc = vg__dir_open_safe(f->dir, true, dfd, e, sizeof(e));
    if (rc) {
        snprintf(err, errlen, "DirectoryPath: %s", e);
        return rc;
    }
    if ((rc = vg__dir_open_safe(f->tmp_dir, true, tfd, e, sizeof(e)))) {
        snprintf(err, errlen, "%s: %s",
                 f->custom_tmp ? "IntermediateDirectoryPath" : "DirectoryPath", e);
        close(*dfd);
        *dfd = -1;
    }
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
    f->custom_tmp = c->intermediate_directory_path && *c->intermediate_directory_path;
    f->tmp_dir = f->custom_tmp ? vg_strdup(c->intermediate_directory_path)
                               : vg_asprintf("%s/.vigil-partial", c->directory_path);
    int rc = (!f->dir || !f->tmp_dir) ? VG_ENOMEM : 0;
    int dfd = -1, tfd = -1;
    if (!rc)
        rc = open_dirs(f, &dfd, &tfd, err, errlen);
    if (dfd >= 0)
        close(dfd);
    if (tfd >= 0)
        close(tfd);
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
        /* a daemon's working directory is nobody's business: "./x" would be created under it */
        if (dirs[i] && *dirs[i] && dirs[i][0] != '/') {
            snprintf(err, errlen, "%s %s is not an absolute path",
                     i ? "IntermediateDirectoryPath" : "DirectoryPath", dirs[i]);
            return VG_ECONFIG;
        }
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

/* The partial file's name: the id keeps two artifacts with one name apart while both are being
 * written. */
static char *partial_name(const struct vg__upload *u)
{
    return vg_asprintf("%s.%lld.partial", u->name, (long long)u->id);
}

static int fs_direct_create(void *state, const struct vg__upload *u, char **path, int *fd,
                            char *err, size_t errlen)
{
    struct fs *f = state;
    *path = NULL;
    *fd = -1;
    char *name = partial_name(u);
    if (!name)
        return VG_ENOMEM;
    int dfd = -1, tfd = -1;
    int rc = open_dirs(f, &dfd, &tfd, err, errlen);
    if (!rc && (rc = vg__file_create_at(tfd, name, fd)))
        snprintf(err, errlen, "cannot create %s/%s: %s", f->tmp_dir, name, vg_strerror(rc));
    if (!rc && !(*path = vg_asprintf("%s/%s", f->tmp_dir, name)))
        rc = VG_ENOMEM;
    if (rc && *fd >= 0) {
        unlinkat(tfd, name, 0);
        close(*fd);
        *fd = -1;
    }
    if (dfd >= 0)
        close(dfd);
    if (tfd >= 0)
        close(tfd);
    free(name);
    return rc;
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

/* u->name with "_N" before its extension (the part after the last '.', when short). */
static char *numbered(const char *name, unsigned n)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || strlen(dot) > 16 || strchr(dot, '_'))
        dot = name + strlen(name);
    return vg_asprintf("%.*s_%u%s", (int)(dot - name), name, n, dot);
}

/* Renames the partial file to u->name, never over an existing file: two artifacts named alike
 * (the same process dumped twice within one millisecond) both stay, the second as NAME_2. The
 * new name is recorded before the rename, so a resume after a crash looks for the right file. */
static int move_unique(int tfd, const char *partial, int dfd, struct vg__upload *u)
{
    char *base = NULL;
    int rc = -EEXIST;
    for (unsigned n = 2; n < 1000; n++) {
        if (renameat2(tfd, partial, dfd, u->name, RENAME_NOREPLACE) == 0) {
            rc = 0;
            break;
        }
        if (errno != EEXIST) {
            rc = -errno;
            break;
        }
        if (!base && !(base = vg_strdup(u->name))) {
            rc = VG_ENOMEM;
            break;
        }
        char *next = numbered(base, n); /* NAME_2, NAME_3: from the original name */
        if (!next) {
            rc = VG_ENOMEM;
            break;
        }
        free(u->name);
        u->name = next;
        if ((rc = vg__db_set_name(u)))
            break;
        rc = -EEXIST;
    }
    if (rc == 0 && base)
        vg_log(VG_LOG_INFO, u->prov->component, "%s exists: stored as %s", base, u->name);
    free(base);
    return rc;
}

static int fs_finish(void *state, struct vg__upload *u)
{
    struct fs *f = state;
    char *name = partial_name(u);
    if (!name)
        return VG_ENOMEM;
    int dfd = -1, tfd = -1, fd = -1;
    char derr[400] = "";
    int rc = open_dirs(f, &dfd, &tfd, derr, sizeof(derr));
    if (rc) {
        snprintf(u->err, sizeof(u->err), "%s", derr);
        /* A refused directory stays refused; a vanished one may come back (a remount). */
        rc = rc == -ENOENT || rc == -EIO ? VG_ERETRY : VG_EFATAL;
        goto out;
    }
    fd = openat(tfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        rc = -errno;
    if (!rc)
        rc = move_unique(tfd, name, dfd, u);
    if (!rc && fsync(dfd) != 0)
        rc = -errno;
    if (rc) {
        snprintf(u->err, sizeof(u->err), "moving %s to %s/%s: %s%s", u->spool_path, f->dir, u->name,
                 vg_strerror(rc),
                 rc == -EXDEV ? " (IntermediateDirectoryPath must be on the same filesystem)" : "");
        /* A full disk or a flaky network filesystem may recover; anything else will not. */
        rc = (rc == -ENOSPC || rc == -EIO) ? VG_ERETRY : VG_EFATAL;
    }
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (tfd >= 0)
        close(tfd);
    free(name);
    return rc;
}

static int fs_probe(void *state, struct vg__upload *u, bool *complete)
{
    struct fs *f = state;
    *complete = false;
    struct stat sb;
    if (lstat(u->spool_path, &sb) == 0)
        return 0; /* not renamed yet: finish will do it */
    char *dest = vg_asprintf("%s/%s", f->dir, u->name);
    if (!dest)
        return VG_ENOMEM;
    int fd = open(dest, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
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

static int fs_remove(void *state, struct vg__upload *u)
{
    struct fs *f = state;
    int dfd = -1;
    char derr[400] = "";
    int rc = vg__dir_open_safe(f->dir, false, &dfd, derr, sizeof(derr));
    if (rc) {
        snprintf(u->err, sizeof(u->err), "DirectoryPath: %s", derr);
        return VG_EFATAL;
    }
    if (unlinkat(dfd, u->name, 0) != 0 && errno != ENOENT) {
        rc = -errno;
        snprintf(u->err, sizeof(u->err), "removing %s/%s: %s", f->dir, u->name, vg_strerror(rc));
        rc = rc == -EIO ? VG_ERETRY : VG_EFATAL;
    }
    close(dfd);
    return rc;
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
    .direct_create = fs_direct_create,
    .chunk_size = fs_chunk_size,
    .begin = fs_begin,
    .put_chunk = fs_put_chunk,
    .finish = fs_finish,
    .probe = fs_probe,
    .abort = fs_abort,
    .remove = fs_remove,
    .egress_path = fs_egress_path,
};
