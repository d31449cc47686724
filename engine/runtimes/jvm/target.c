/* Reading a JVM's identity from /proc (through the /proc toolkit), and opening paths in its
 * filesystem view. */
#include "engine/runtimes/jvm/target.h"

#include "config/error.h"
#include "engine/host/procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int read_file(const char *proc_root, int pid, const char *what, char *buf, size_t cap)
{
    char path[320];
    snprintf(path, sizeof(path), "%s/%d/%s", proc_root, pid, what);
    ssize_t n = vg_procfs_read(AT_FDCWD, path, buf, cap);
    if (n < 0)
        return n == -ENOENT || n == -ESRCH ? VG_ESRCH : (int)n;
    return (int)n;
}

static int read_status(const char *proc_root, int pid, struct vg_proc_status *ps)
{
    char text[8192];
    int n = read_file(proc_root, pid, "status", text, sizeof(text));
    if (n < 0)
        return n;
    if (vg_procfs_parse_status(text, (size_t)n, ps) < 0)
        return VG_EPARSE;
    return 0;
}

static int read_start(const char *proc_root, int pid, uint64_t *start)
{
    char text[2048];
    struct vg_proc_stat st;
    int n = read_file(proc_root, pid, "stat", text, sizeof(text));
    if (n < 0)
        return n;
    if (vg_procfs_parse_stat(text, (size_t)n, &st) < 0)
        return VG_EPARSE;
    *start = st.start_ticks;
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
    struct vg_proc_status ps;
    rc = read_status(proc_root, pid, &ps);
    if (rc < 0)
        return rc;
    /* The listener compares effective ids. */
    if (ps.uid[1] < 0 || ps.gid[1] < 0)
        return VG_EPARSE;
    out->euid = (uid_t)ps.uid[1];
    out->egid = (gid_t)ps.gid[1];
    out->sigcgt = ps.sig_cgt;
    /* NSpid lists the pid from our namespace inwards; kernels before 4.1 lack it. */
    out->nspid = ps.nspid_count ? ps.nspid[ps.nspid_count - 1] : pid;
    return 0;
}

bool vg_jvm_target_catches_sigquit(const struct vg_jvm_target *t)
{
    struct vg_proc_status ps;
    if (read_status(t->proc_root, t->pid, &ps) < 0)
        return false;
    return (ps.sig_cgt >> (SIGQUIT - 1)) & 1;
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
