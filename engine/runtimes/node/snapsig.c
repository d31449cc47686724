/* The --heapsnapshot-signal path: no inspector, node writes the snapshot itself. */
#include "engine/runtimes/node/collect.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "engine/runtimes/node/inspector.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COMPONENT "node"
#define POLL_MS 50
#define START_MS 30000 /* node writes the file only after a full GC and the heap walk start */
#define KNOWN_MAX 64
#define CHUNK (256 * 1024)
#define DEFAULT_IDLE_MS 60000

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The pid node uses in file names: its own, in its innermost PID namespace (NSpid's last). */
static int ns_pid(const char *root, int pid)
{
    char path[PATH_MAX], buf[4096];
    snprintf(path, sizeof(path), "%s/%d/status", root, pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int last = pid;
    while (fgets(buf, sizeof(buf), f)) {
        if (strncmp(buf, "NSpid:", 6) != 0)
            continue;
        char *p = buf + 6, *end;
        for (long v; (v = strtol(p, &end, 10)), end != p; p = end)
            last = (int)v;
        break;
    }
    fclose(f);
    return last;
}

/* "Heap.<date>.<time>.<pid>.<thread>.<seq>.heapsnapshot" written by pid. */
static bool ours(const char *name, int nspid)
{
    size_t n = strlen(name);
    char mid[32];
    snprintf(mid, sizeof(mid), ".%d.", nspid);
    return strncmp(name, "Heap.", 5) == 0 && n > 13 &&
           strcmp(name + n - 13, ".heapsnapshot") == 0 && strstr(name, mid) != NULL;
}

struct known {
    char names[KNOWN_MAX][NAME_MAX + 1];
    size_t n;
};

static void list(const char *dir, int nspid, struct known *k)
{
    k->n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && k->n < KNOWN_MAX)
        if (ours(de->d_name, nspid))
            snprintf(k->names[k->n++], NAME_MAX + 1, "%s", de->d_name);
    closedir(d);
}

static bool known_has(const struct known *k, const char *name)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->names[i], name) == 0)
            return true;
    return false;
}

/* Does pid still hold the file (dev, ino) open? */
static bool holds(const char *root, int pid, const struct stat *st)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%d/fd", root, pid);
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        struct stat fst;
        if (de->d_name[0] == '.')
            continue;
        found = fstatat(dirfd(d), de->d_name, &fst, 0) == 0 && fst.st_dev == st->st_dev &&
                fst.st_ino == st->st_ino;
    }
    closedir(d);
    return found;
}

static bool canceled(const struct vg_node_collect_opts *o)
{
    return o->cancel && atomic_load(o->cancel);
}

int vg_node_snapshot_by_signal(int pid, const struct vg_node_collect_opts *opts,
                               vg_node_sink_fn sink, void *ctx, uint64_t *bytes, char *err,
                               size_t err_len)
{
    const char *root = opts->proc_root ? opts->proc_root : "/proc";
    struct vg_node_options no;
    struct known *before = NULL;
    char dir[PATH_MAX], file[PATH_MAX + NAME_MAX + 2] = "";
    char *buf = NULL;
    int fd = -1;
    uint32_t idle_ms = opts->idle_ms ? opts->idle_ms : DEFAULT_IDLE_MS;
    *bytes = 0;
    int rc = vg_node_detect(opts->proc_root, pid, &no);
    if (rc <= 0) {
        rc = rc == 0 ? VG_ENOTFOUND : rc;
        snprintf(err, err_len, "pid %d: %s", pid,
                 rc == VG_ENOTFOUND ? "not a Node.js process" : vg_strerror(rc));
        goto out;
    }
    if (!no.heapsnapshot_signal) {
        rc = VG_EUNSUPPORTED;
        snprintf(err, err_len, "pid %d was not started with --heapsnapshot-signal", pid);
        goto out;
    }
    rc = vg_node_catches_signal_wait(opts->proc_root, pid, no.heapsnapshot_signal, 5000);
    if (rc <= 0) {
        rc = rc == 0 ? VG_EPERM : rc;
        snprintf(err, err_len,
                 "pid %d does not catch signal %d (its --heapsnapshot-signal): "
                 "sending it could kill the process",
                 pid, no.heapsnapshot_signal);
        goto out;
    }
    /* The directory as the target sees it: an absolute one under its root, a relative one (or
     * none) from its working directory; both magic links work across mount namespaces. */
    if (no.diagnostic_dir[0] == '/')
        rc = snprintf(dir, sizeof(dir), "%s/%d/root%s", root, pid, no.diagnostic_dir);
    else
        rc = snprintf(dir, sizeof(dir), "%s/%d/cwd/%s", root, pid, no.diagnostic_dir);
    if (rc < 0 || (size_t)rc >= sizeof(dir)) {
        rc = VG_ENAMETOOLONG;
        snprintf(err, err_len, "pid %d: diagnostic directory path too long", pid);
        goto out;
    }
    int nspid = ns_pid(root, pid);
    before = malloc(2 * sizeof(*before));
    buf = malloc(CHUNK);
    if (!before || !buf || nspid <= 0) {
        rc = nspid <= 0 ? VG_ESRCH : VG_ENOMEM;
        snprintf(err, err_len, "pid %d: %s", pid, vg_strerror(rc));
        goto out;
    }
    struct known *now = before + 1;
    list(dir, nspid, before);
    if (kill(pid, no.heapsnapshot_signal) < 0) {
        rc = -errno;
        snprintf(err, err_len, "kill(%d, %d): %s", pid, no.heapsnapshot_signal, strerror(errno));
        goto out;
    }
    /* Wait for the new file. */
    uint64_t deadline = vg_mono_ms() + START_MS;
    while (!file[0]) {
        list(dir, nspid, now);
        for (size_t i = 0; i < now->n && !file[0]; i++)
            if (!known_has(before, now->names[i]))
                snprintf(file, sizeof(file), "%s/%s", dir, now->names[i]);
        if (file[0])
            break;
        if (canceled(opts) || vg_mono_ms() >= deadline) {
            rc = canceled(opts) ? VG_ECANCELED : VG_ETIMEDOUT;
            snprintf(err, err_len,
                     "pid %d: no new Heap.*.heapsnapshot in %s %u ms after signal %d%s", pid, dir,
                     START_MS, no.heapsnapshot_signal, rc == VG_ECANCELED ? " (canceled)" : "");
            goto out;
        }
        sleep_ms(POLL_MS);
    }
    fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, err_len, "pid %d: open %s: %s", pid, file, strerror(errno));
        goto out;
    }
    /* Follow it as node writes it: read to the end, and once node has closed it, read what was
     * left; a pause longer than idle_ms with the file still open is a stall. */
    uint64_t last_growth = vg_mono_ms();
    char last = 0;
    for (;;) {
        bool writer_done = !holds(root, pid, &st);
        for (;;) {
            ssize_t r = read(fd, buf, CHUNK);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                rc = -errno;
                snprintf(err, err_len, "pid %d: read %s: %s", pid, file, strerror(errno));
                goto out;
            }
            if (r == 0)
                break;
            rc = sink(ctx, buf, (size_t)r);
            if (rc < 0) {
                snprintf(err, err_len, "pid %d: writing the snapshot: %s", pid, vg_strerror(rc));
                goto out;
            }
            for (ssize_t i = r - 1; i >= 0; i--)
                if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t') {
                    last = buf[i];
                    break;
                }
            *bytes += (uint64_t)r;
            last_growth = vg_mono_ms();
        }
        if (writer_done)
            break;
        if (canceled(opts)) {
            rc = VG_ECANCELED;
            snprintf(err, err_len, "pid %d: heap snapshot canceled", pid);
            goto out;
        }
        if (vg_mono_ms() - last_growth >= idle_ms) {
            rc = VG_ETIMEDOUT;
            snprintf(err, err_len, "pid %d: %s did not grow for %u ms", pid, file, idle_ms);
            goto out;
        }
        sleep_ms(POLL_MS);
    }
    if (*bytes == 0 || last != '}') {
        rc = VG_EPROTO;
        snprintf(err, err_len, "pid %d: %s was closed incomplete (%llu bytes)", pid, file,
                 (unsigned long long)*bytes);
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    /* The file is the target's disk space: delete it whatever happened (an unlinked file still
     * being written frees its space when node closes it). */
    if (file[0] && unlink(file) < 0 && errno != ENOENT)
        vg_log(VG_LOG_WARN, COMPONENT, "pid %d: cannot delete %s: %s", pid, file, strerror(errno));
    free(buf);
    free(before);
    return rc;
}
