#include "engine/runtimes/node/netns.h"

#include "config/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

struct job {
    int nsfd;
    vg_node_netns_fn fn;
    void *arg;
    int rc;
};

static int ns_path(const char *proc_root, int pid, char *buf, size_t n)
{
    int len = snprintf(buf, n, "%s/%d/ns/net", proc_root ? proc_root : "/proc", pid);
    return len > 0 && (size_t)len < n ? 0 : VG_ENAMETOOLONG;
}

int vg_node_netns_differs(const char *proc_root, int pid, bool *other)
{
    char path[PATH_MAX];
    struct stat mine, theirs;
    int rc = ns_path(proc_root, pid, path, sizeof(path));
    if (rc < 0)
        return rc;
    if (stat("/proc/thread-self/ns/net", &mine) < 0)
        return -errno;
    if (stat(path, &theirs) < 0)
        return errno == ENOENT ? VG_ESRCH : -errno;
    *other = mine.st_dev != theirs.st_dev || mine.st_ino != theirs.st_ino;
    return 0;
}

static void *run(void *p)
{
    struct job *j = p;
    /* This thread ends right after fn, so it never has to find its way back. */
    if (setns(j->nsfd, CLONE_NEWNET) < 0)
        j->rc = -errno;
    else
        j->rc = j->fn(j->arg);
    return NULL;
}

int vg_node_in_netns(const char *proc_root, int pid, vg_node_netns_fn fn, void *arg)
{
    bool other = false;
    char path[PATH_MAX];
    int rc = vg_node_netns_differs(proc_root, pid, &other);
    if (rc < 0)
        return rc;
    if (!other)
        return fn(arg);
    rc = ns_path(proc_root, pid, path, sizeof(path));
    if (rc < 0)
        return rc;
    struct job j = {.nsfd = open(path, O_RDONLY | O_CLOEXEC), .fn = fn, .arg = arg, .rc = 0};
    if (j.nsfd < 0)
        return errno == ENOENT ? VG_ESRCH : -errno;
    pthread_t t;
    int err = pthread_create(&t, NULL, run, &j);
    if (err) {
        rc = -err;
        goto out;
    }
    pthread_join(t, NULL);
    rc = j.rc;
out:
    close(j.nsfd);
    return rc;
}
