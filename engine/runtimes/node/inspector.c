#include "engine/runtimes/node/inspector.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "engine/host/procfs.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMPONENT "node:inspector"
#define LISTENERS_MAX 256
#define PROBES_MAX 8
#define PROBE_CONNECT_MS 2000
#define POLL_MS 50
#define TCP_FILE_MAX (4u * 1024 * 1024)
#define YOUNG_MS 10000 /* a process this young may still be installing its signal handlers */

static const char *root_of(const char *proc_root)
{
    return proc_root ? proc_root : "/proc";
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

size_t vg_node_parse_net_tcp(const char *text, bool v6, struct vg_node_listener *out, size_t max)
{
    size_t n = 0;
    const char *line = strchr(text, '\n'); /* skip the header */
    while (line && *line && n < max) {
        line++;
        const char *next = strchr(line, '\n');
        char local[40], state[4];
        unsigned port;
        unsigned long long inode;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line,
                   " %*[0-9]: %39[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %3[0-9A-Fa-f] %*s %*s %*s "
                   "%*u %*u %llu",
                   local, &port, state, &inode) == 4 &&
            strcmp(state, "0A") == 0 && port < 65536) {
            struct vg_node_listener *l = &out[n];
            memset(l, 0, sizeof(*l));
            l->port = (int)port;
            l->inode = inode;
            bool ok = false;
            if (!v6 && strlen(local) == 8) {
                struct in_addr a;
                a.s_addr = (uint32_t)strtoul(local, NULL, 16);
                ok = inet_ntop(AF_INET, &a, l->host, sizeof(l->host)) != NULL;
            } else if (v6 && strlen(local) == 32) {
                struct in6_addr a;
                for (int w = 0; w < 4; w++) {
                    char word[9];
                    memcpy(word, local + w * 8, 8);
                    word[8] = '\0';
                    uint32_t v = (uint32_t)strtoul(word, NULL, 16);
                    memcpy(&a.s6_addr[w * 4], &v, 4); /* the kernel prints host-order words */
                }
                ok = inet_ntop(AF_INET6, &a, l->host, sizeof(l->host)) != NULL;
            }
            if (ok)
                n++;
        }
        line = next;
    }
    return n;
}

static int read_text(const char *path, char **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? VG_ESRCH : -errno;
    struct vg_buf b;
    vg_buf_init(&b);
    char chunk[8192];
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0 || b.len + (size_t)r > TCP_FILE_MAX)
            break;
        if ((rc = vg_buf_append(&b, chunk, (size_t)r)) < 0)
            break;
    }
    close(fd);
    if (rc < 0) {
        vg_buf_free(&b);
        return rc;
    }
    *out = b.data ? b.data : vg_strdup("");
    return *out ? 0 : VG_ENOMEM;
}

int vg_node_listeners(const char *proc_root, int pid, struct vg_node_listener *out, size_t max)
{
    char path[PATH_MAX];
    size_t n = 0;
    for (int v6 = 0; v6 < 2; v6++) {
        char *text;
        snprintf(path, sizeof(path), "%s/%d/net/tcp%s", root_of(proc_root), pid, v6 ? "6" : "");
        int rc = read_text(path, &text);
        if (rc == VG_ESRCH && v6)
            continue; /* no IPv6 in that namespace */
        if (rc < 0)
            return rc;
        n += vg_node_parse_net_tcp(text, v6, out + n, max - n);
        free(text);
    }
    snprintf(path, sizeof(path), "%s/%d/fd", root_of(proc_root), pid);
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? VG_ESRCH : -errno;
    struct dirent *de;
    while ((de = readdir(d))) {
        char link[64];
        if (de->d_name[0] == '.')
            continue;
        ssize_t k = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
        if (k <= 0)
            continue;
        link[k] = '\0';
        unsigned long long ino;
        if (sscanf(link, "socket:[%llu]", &ino) != 1)
            continue;
        for (size_t i = 0; i < n; i++)
            if (out[i].inode == ino)
                out[i].owned = true;
    }
    closedir(d);
    return (int)n;
}

/* Where to connect for a listener: a wildcard address means loopback of its family. */
static void connect_host(const char *listen_host, char *out, size_t n)
{
    if (strcmp(listen_host, "0.0.0.0") == 0)
        snprintf(out, n, "127.0.0.1");
    else if (strcmp(listen_host, "::") == 0)
        snprintf(out, n, "::1");
    else
        snprintf(out, n, "%s", listen_host);
}

static int probe(const char *proc_root, int pid, const struct vg_node_listener *l,
                 const struct vg_cdp_opts *copts, struct vg_node_endpoint *ep, char *err,
                 size_t err_len)
{
    struct vg_cdp_opts o = {PROBE_CONNECT_MS, 0, copts ? copts->cancel : NULL};
    memset(ep, 0, sizeof(*ep));
    ep->addr.proc_root = proc_root;
    ep->addr.netns_pid = pid;
    ep->addr.port = l->port;
    connect_host(l->host, ep->addr.host, sizeof(ep->addr.host));
    return vg_cdp_list(&ep->addr, &o, ep->path, sizeof(ep->path), err, err_len);
}

static int rank(const struct vg_node_listener *l, const struct vg_node_options *o)
{
    if (o && l->port == o->inspect_port)
        return 0;
    return l->port == 9229 ? 1 : 2;
}

int vg_node_inspector_find(const char *proc_root, int pid, const struct vg_node_options *o,
                           const struct vg_cdp_opts *copts, struct vg_node_endpoint *ep, char *err,
                           size_t err_len)
{
    struct vg_node_listener *ls = calloc(LISTENERS_MAX, sizeof(*ls));
    if (!ls)
        return VG_ENOMEM;
    int n = vg_node_listeners(proc_root, pid, ls, LISTENERS_MAX);
    int rc = n;
    struct vg_buf tried;
    vg_buf_init(&tried);
    if (n < 0) {
        snprintf(err, err_len, "cannot list the sockets of pid %d: %s", pid, vg_strerror(n));
        goto out;
    }
    rc = VG_ENOTFOUND;
    int probes = 0;
    for (int r = 0; r < 3 && probes < PROBES_MAX; r++) {
        for (int i = 0; i < n && probes < PROBES_MAX; i++) {
            if (!ls[i].owned || rank(&ls[i], o) != r)
                continue;
            char why[VG_CDP_ERR_MAX];
            probes++;
            rc = probe(proc_root, pid, &ls[i], copts, ep, why, sizeof(why));
            if (rc == 0)
                goto out;
            if (rc == VG_ECANCELED) {
                snprintf(err, err_len, "pid %d: canceled while looking for its inspector", pid);
                goto out;
            }
            vg_buf_printf(&tried, "%s%s", tried.len ? "; " : "", why);
            rc = VG_ENOTFOUND;
        }
    }
    snprintf(err, err_len, "pid %d has no inspector open%s%s%s", pid,
             tried.len ? " (its listening sockets: " : "", tried.len ? tried.data : "",
             tried.len ? ")" : "");
out:
    vg_buf_free(&tried);
    free(ls);
    return rc;
}

int vg_node_catches_signal(const char *proc_root, int pid, int sig)
{
    char path[PATH_MAX], *text;
    snprintf(path, sizeof(path), "%s/%d/status", root_of(proc_root), pid);
    int rc = read_text(path, &text);
    if (rc < 0)
        return rc;
    const char *p = strstr(text, "\nSigCgt:");
    unsigned long long mask = 0;
    rc = p && sscanf(p, "\nSigCgt: %llx", &mask) == 1 ? 0 : VG_EPARSE;
    free(text);
    if (rc < 0)
        return rc;
    return (mask >> (sig - 1)) & 1 ? 1 : 0;
}

/* Does a listener on l keep node from binding host:port? A wildcard of either family (IPv6
 * sockets are dual-stack by default) or the same address does. */
static bool conflicts(const struct vg_node_listener *l, const char *host, int port)
{
    if (l->port != port)
        return false;
    return strcmp(l->host, "::") == 0 || strcmp(l->host, "0.0.0.0") == 0 ||
           strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(l->host, host) == 0;
}

static const struct vg_node_listener *busy(const struct vg_node_listener *ls, int n,
                                           const char *host, int port)
{
    for (int i = 0; i < n; i++)
        if (conflicts(&ls[i], host, port))
            return &ls[i];
    return NULL;
}

/* How long ago pid started (ms), from its stat and the uptime of proc_root; -1 when unknown. */
static int64_t age_ms(const char *proc_root, int pid)
{
    char path[PATH_MAX], buf[4096];
    snprintf(path, sizeof(path), "%s/%d/stat", root_of(proc_root), pid);
    ssize_t n = vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf));
    struct vg_proc_stat st;
    if (n <= 0 || vg_procfs_parse_stat(buf, (size_t)n, &st) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/uptime", root_of(proc_root));
    n = vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf) - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    long hz = sysconf(_SC_CLK_TCK);
    double up = strtod(buf, NULL) * 1000.0;
    double started = (double)st.start_ticks * 1000.0 / (double)(hz > 0 ? hz : 100);
    return up >= started ? (int64_t)(up - started) : 0;
}

int vg_node_catches_signal_wait(const char *proc_root, int pid, int sig, uint32_t timeout_ms)
{
    uint64_t deadline = vg_mono_ms() + timeout_ms;
    for (;;) {
        int rc = vg_node_catches_signal(proc_root, pid, sig);
        if (rc != 0 || vg_mono_ms() >= deadline)
            return rc;
        int64_t age = age_ms(proc_root, pid);
        if (age < 0 || age >= YOUNG_MS)
            return rc;
        sleep_ms(POLL_MS);
    }
}

int vg_node_inspector_activate(const char *proc_root, int pid, const struct vg_node_options *o,
                               const struct vg_cdp_opts *copts, uint32_t timeout_ms,
                               struct vg_node_endpoint *ep, char *err, size_t err_len)
{
    const char *host = o ? o->inspect_host : "127.0.0.1";
    int port = o ? o->inspect_port : 9229;
    struct vg_node_listener *before = calloc(2 * LISTENERS_MAX, sizeof(*before));
    struct vg_node_listener *now = before ? before + LISTENERS_MAX : NULL;
    int rc = before ? vg_node_catches_signal_wait(proc_root, pid, SIGUSR1, timeout_ms) : VG_ENOMEM;
    if (rc < 0) {
        snprintf(err, err_len, "cannot read the signal mask of pid %d: %s", pid, vg_strerror(rc));
        goto out;
    }
    if (rc == 0) {
        rc = VG_EPERM;
        snprintf(err, err_len,
                 "pid %d does not catch SIGUSR1 (started with --disable-sigusr1, or not a Node "
                 "main process): sending it would kill the process",
                 pid);
        goto out;
    }
    int nb = vg_node_listeners(proc_root, pid, before, LISTENERS_MAX);
    if (nb < 0) {
        rc = nb;
        snprintf(err, err_len, "cannot list the sockets of pid %d: %s", pid, vg_strerror(rc));
        goto out;
    }
    const struct vg_node_listener *b = port ? busy(before, nb, host, port) : NULL;
    if (b) {
        rc = VG_EBUSY;
        snprintf(err, err_len,
                 "port %d is already taken in the network namespace of pid %d (%s:%d, socket "
                 "inode %" PRIu64 "%s): SIGUSR1 would fail to open the inspector silently; "
                 "start the app with --inspect-port=<free port> or free the port",
                 port, pid, b->host, b->port, b->inode,
                 b->owned ? ", the app's own" : ", another process's");
        goto out;
    }
    if (kill(pid, SIGUSR1) < 0) {
        rc = -errno;
        snprintf(err, err_len, "kill(%d, SIGUSR1): %s", pid, strerror(errno));
        goto out;
    }
    vg_log(VG_LOG_INFO, COMPONENT, "pid %d: opened the inspector with SIGUSR1 (%s:%d)", pid, host,
           port);
    uint64_t deadline = vg_mono_ms() + timeout_ms;
    for (;;) {
        int nn = vg_node_listeners(proc_root, pid, now, LISTENERS_MAX);
        if (nn < 0) {
            rc = nn;
            snprintf(err, err_len, "pid %d: %s while waiting for its inspector", pid,
                     vg_strerror(rc));
            goto out;
        }
        for (int i = 0; i < nn; i++) {
            bool fresh = now[i].owned;
            for (int k = 0; k < nb && fresh; k++)
                fresh = before[k].inode != now[i].inode;
            if (!fresh || (port && now[i].port != port))
                continue;
            char why[VG_CDP_ERR_MAX];
            rc = probe(proc_root, pid, &now[i], copts, ep, why, sizeof(why));
            if (rc == 0) {
                ep->opened_by_vigil = true;
                goto out;
            }
            snprintf(err, err_len, "pid %d: the socket that appeared after SIGUSR1: %s", pid, why);
            goto out;
        }
        if (copts && copts->cancel && atomic_load(copts->cancel)) {
            rc = VG_ECANCELED;
            snprintf(err, err_len, "canceled while waiting for the inspector of pid %d", pid);
            goto out;
        }
        if (vg_mono_ms() >= deadline) {
            b = port ? busy(now, nn, host, port) : NULL;
            rc = b ? VG_EBUSY : VG_ETIMEDOUT;
            snprintf(err, err_len,
                     "pid %d: no inspector listened on %s:%d within %u ms after SIGUSR1%s", pid,
                     host, port, timeout_ms,
                     b ? " (the port was taken meanwhile)"
                       : " (the app may handle SIGUSR1 itself, or node failed to bind the port)");
            goto out;
        }
        sleep_ms(POLL_MS);
    }
out:
    free(before);
    return rc;
}

int vg_node_inspector_deactivate(const char *proc_root, int pid, struct vg_cdp *s,
                                 const struct vg_node_endpoint *ep, uint32_t timeout_ms, char *err,
                                 size_t err_len)
{
    /* process._debugEnd() stops the inspector agent and its server (what inspector.close() does
     * from inside); it needs no module loader, so it also works in ES module apps. The session
     * is closed by the target while the call runs, so its answer may never come. */
    json_t *params =
        json_pack("{sssbsb}", "expression", "process._debugEnd()", "silent", 1, "returnByValue", 1);
    int rc = params ? 0 : VG_ENOMEM;
    if (rc == 0 && s) {
        rc = vg_cdp_call(s, "Runtime.evaluate", params, 5000, 0, NULL);
        if (rc == VG_ECONNRESET || rc == VG_ETIMEDOUT)
            rc = 0;
    }
    json_decref(params);
    vg_cdp_close(s);
    if (rc < 0) {
        snprintf(err, err_len, "pid %d: closing the inspector failed: %s", pid, vg_strerror(rc));
        return rc;
    }
    struct vg_node_listener *ls = calloc(LISTENERS_MAX, sizeof(*ls));
    if (!ls)
        return VG_ENOMEM;
    uint64_t deadline = vg_mono_ms() + timeout_ms;
    for (;;) {
        int n = vg_node_listeners(proc_root, pid, ls, LISTENERS_MAX);
        bool open = false;
        for (int i = 0; i < n; i++)
            open = open || (ls[i].owned && ls[i].port == ep->addr.port);
        if (n < 0 || !open) {
            rc = n == VG_ESRCH || n >= 0 ? 0 : n;
            break;
        }
        if (vg_mono_ms() >= deadline) {
            rc = VG_ETIMEDOUT;
            snprintf(err, err_len,
                     "pid %d: its inspector still listens on port %d %u ms after "
                     "process._debugEnd()",
                     pid, ep->addr.port, timeout_ms);
            break;
        }
        sleep_ms(POLL_MS);
    }
    free(ls);
    return rc;
}
