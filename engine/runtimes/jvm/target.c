/* Reading a JVM's identity from /proc, and opening paths in its filesystem view. */
#include "engine/runtimes/jvm/target.h"

#include "config/error.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? VG_ESRCH : -errno;
    size_t off = 0;
    int rc = 0;
    while (off + 1 < cap) {
        ssize_t n = read(fd, buf + off, cap - 1 - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = errno == ESRCH ? VG_ESRCH : -errno;
            goto out;
        }
        if (n == 0)
            break;
        off += (size_t)n;
    }
    buf[off] = '\0';
    *len = off;
out:
    close(fd);
    return rc;
}

/* The value after "Key:" on its own line, or NULL. */
static const char *status_field(const char *text, const char *key)
{
    size_t klen = strlen(key);
    const char *p = text;
    while (p && *p) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':')
            return p + klen + 1;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

static int parse_ids(const char *v, unsigned long *second)
{
    /* "real effective saved fs": the listener compares effective ids. */
    char *end;
    if (!v)
        return VG_EPARSE;
    errno = 0;
    strtoul(v, &end, 10);
    if (end == v || errno)
        return VG_EPARSE;
    v = end;
    *second = strtoul(v, &end, 10);
    if (end == v || errno)
        return VG_EPARSE;
    return 0;
}

static int read_status(const char *proc_root, int pid, struct vg_jvm_target *t, bool sigcgt_only)
{
    char path[320], text[8192];
    size_t len;
    snprintf(path, sizeof(path), "%s/%d/status", proc_root, pid);
    int rc = read_small(path, text, sizeof(text), &len);
    if (rc < 0)
        return rc;
    const char *v = status_field(text, "SigCgt");
    char *end;
    if (!v)
        return VG_EPARSE;
    errno = 0;
    t->sigcgt = strtoull(v, &end, 16);
    if (end == v || errno)
        return VG_EPARSE;
    if (sigcgt_only)
        return 0;

    unsigned long id;
    if (parse_ids(status_field(text, "Uid"), &id) < 0)
        return VG_EPARSE;
    t->euid = (uid_t)id;
    if (parse_ids(status_field(text, "Gid"), &id) < 0)
        return VG_EPARSE;
    t->egid = (gid_t)id;

    /* NSpid lists the pid from our namespace inwards; kernels before 4.1 lack it. */
    t->nspid = pid;
    v = status_field(text, "NSpid");
    while (v && *v && *v != '\n') {
        long n = strtol(v, &end, 10);
        if (end == v)
            break;
        if (n > 0)
            t->nspid = (int)n;
        v = end;
    }
    return 0;
}

static int read_start(const char *proc_root, int pid, uint64_t *start)
{
    char path[320], text[2048];
    size_t len;
    snprintf(path, sizeof(path), "%s/%d/stat", proc_root, pid);
    int rc = read_small(path, text, sizeof(text), &len);
    if (rc < 0)
        return rc;
    /* comm may hold spaces and ')': fields resume after the last ')'. Field 22 is starttime. */
    const char *p = strrchr(text, ')');
    if (!p)
        return VG_EPARSE;
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p)
            return VG_EPARSE;
    }
    char *end;
    errno = 0;
    *start = strtoull(p + 1, &end, 10);
    if (end == p + 1 || errno)
        return VG_EPARSE;
    return 0;
}

int vg_jvm_target_read(const char *proc_root, int pid, struct vg_jvm_target *out)
{
    memset(out, 0, sizeof(*out));
    if (!proc_root)
        proc_root = "/proc";
    if (pid <= 0 || strlen(proc_root) >= sizeof(out->proc_root))
        return VG_EINVAL;
    strcpy(out->proc_root, proc_root);
    out->pid = pid;
    int rc = read_start(proc_root, pid, &out->start_ticks);
    if (rc < 0)
        return rc;
    return read_status(proc_root, pid, out, false);
}

bool vg_jvm_target_catches_sigquit(const struct vg_jvm_target *t)
{
    struct vg_jvm_target now = *t;
    if (read_status(t->proc_root, t->pid, &now, true) < 0)
        return false;
    return (now.sigcgt >> (SIGQUIT - 1)) & 1;
}

int vg_jvm_target_check_alive(const struct vg_jvm_target *t)
{
    uint64_t start;
    if (read_start(t->proc_root, t->pid, &start) < 0 || start != t->start_ticks)
        return VG_EEXITED;
    return 0;
}

int vg_jvm_target_open(const struct vg_jvm_target *t, const char *path, int flags, mode_t mode)
{
    if (!path || path[0] != '/')
        return VG_EINVAL;
    char rootp[320];
    snprintf(rootp, sizeof(rootp), "%s/%d/root", t->proc_root, t->pid);
    int root = open(rootp, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return errno == ENOENT ? VG_ESRCH : -errno;
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .mode = (flags & O_CREAT) ? mode : 0,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS) {
        /* Before Linux 5.6: relative to the target's root, the last component not followed. */
        fd = openat(root, path + 1, flags | O_CLOEXEC | O_NOFOLLOW, mode);
    }
    int rc = fd < 0 ? -errno : fd;
    close(root);
    return rc;
}
