/* Listen mode: runtimes started with DOTNET_DiagnosticPorts=PATH connect to us. See ipc.h.
 *
 * A runtime connects, sends a 34-byte advertise and waits for one command on that connection;
 * after the command it connects again. So for each runtime (keyed by its cookie) we keep the
 * connections it parked here, take one per command, and notice it is gone when a parked
 * connection hangs up and no new one comes. */
#include "engine/runtimes/dotnet/ipc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"

#define MAX_PENDING 64 /* connections that have not advertised yet */
#define MAX_PARKED 8   /* per runtime: one per diagnostic port naming us */
#define TICK_MS 100

static const char advr_magic[8] = "ADVR_V1";

struct pending {
    int fd;
    uint64_t deadline;
    size_t got;
    uint8_t buf[VG_DNIPC_ADVERT_SIZE];
};

struct rt {
    struct vg_dnipc_runtime info;
    int parked[MAX_PARKED]; /* oldest first */
    size_t n_parked;
    uint64_t lost_ms; /* when its last parked connection hung up (0: not lost) */
    uint64_t seen_ms; /* last advertise */
};

struct vg_dnipc_server {
    int lfd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct vg_dnipc_server_opts opts;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rt *rts;
    size_t n_rts, cap_rts;
    struct pending pending[MAX_PENDING];
    size_t n_pending;
    uint64_t refused_log_ms;
};

int vg_dnipc_parse_advert(const void *buf, size_t len, struct vg_dnipc_advert *out)
{
    const uint8_t *p = buf;
    if (len < VG_DNIPC_ADVERT_SIZE || memcmp(p, advr_magic, sizeof(advr_magic)) != 0)
        return VG_EPROTO;
    memcpy(out->cookie, p + 8, 16);
    out->pid = 0;
    for (int i = 7; i >= 0; i--)
        out->pid = out->pid << 8 | p[24 + i];
    return 0;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int mkdirs(const char *path)
{
    char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

/* Is somebody listening on the socket at path? */
static bool live_socket(const char *path)
{
    struct vg_dnipc_io io = {.timeout_ms = 200};
    struct vg_dnipc_endpoint ep;
    vg_dnipc_endpoint_path(&ep, path, NULL);
    int fd = -1;
    if (ep.connect(&ep, &io, &fd) < 0)
        return false;
    close(fd);
    return true;
}

int vg_dnipc_server_open(const char *path, const struct vg_dnipc_server_opts *opts,
                         struct vg_dnipc_server **out, char *err, size_t errlen)
{
    struct vg_dnipc_server *s = NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int rc = 0;
    *out = NULL;
    if (!path || !*path || strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "diagnostic port path \"%s\" is empty or longer than %zu bytes",
                 path ? path : "", sizeof(sa.sun_path) - 1);
        return VG_EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return VG_ENOMEM;
    s->lfd = -1;
    snprintf(s->path, sizeof(s->path), "%s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (opts)
        s->opts = *opts;
    if (s->opts.advert_timeout_ms <= 0)
        s->opts.advert_timeout_ms = 1000;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);

    if ((rc = mkdirs(path)) < 0) {
        snprintf(err, errlen, "cannot create the directory of diagnostic port %s: %s", path,
                 vg_strerror(rc));
        goto out;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (S_ISSOCK(st.st_mode) && live_socket(path)) {
            snprintf(err, errlen,
                     "diagnostic port %s is in use by another process (another vigil "
                     "or dotnet-monitor?)",
                     path);
            rc = VG_EBUSY;
            goto out;
        }
        if (!S_ISSOCK(st.st_mode) && !s->opts.delete_existing) {
            snprintf(err, errlen,
                     "diagnostic port %s exists and is not a socket (set "
                     "DiagnosticPort.DeleteEndpointOnStartup to replace it)",
                     path);
            rc = VG_EEXIST;
            goto out;
        }
        /* a socket nobody listens on is what a killed vigil leaves: replace it */
        if (unlink(path) < 0 && errno != ENOENT) {
            rc = -errno;
            snprintf(err, errlen, "cannot remove stale diagnostic port %s: %s", path,
                     vg_strerror(rc));
            goto out;
        }
    }
    s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->lfd < 0) {
        rc = -errno;
        snprintf(err, errlen, "socket: %s", vg_strerror(rc));
        goto out;
    }
    if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot bind diagnostic port %s: %s", path, vg_strerror(rc));
        goto out;
    }
    /* the runtime connects as the app's user: see ipc.h */
    if (chmod(path, 0666) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot set the mode of diagnostic port %s: %s", path,
                 vg_strerror(rc));
        unlink(path);
        goto out;
    }
    int backlog = s->opts.max_connections > 0 ? s->opts.max_connections : SOMAXCONN;
    if (listen(s->lfd, backlog) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot listen on diagnostic port %s: %s", path, vg_strerror(rc));
        unlink(path);
        goto out;
    }
out:
    if (rc < 0) {
        if (s->lfd >= 0)
            close(s->lfd);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void rt_close(struct rt *r)
{
    for (size_t i = 0; i < r->n_parked; i++)
        close(r->parked[i]);
    r->n_parked = 0;
}

void vg_dnipc_server_destroy(struct vg_dnipc_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_rts; i++)
        rt_close(&s->rts[i]);
    for (size_t i = 0; i < s->n_pending; i++)
        close(s->pending[i].fd);
    if (s->lfd >= 0) {
        close(s->lfd);
        unlink(s->path);
    }
    free(s->rts);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

const char *vg_dnipc_server_path(const struct vg_dnipc_server *s)
{
    return s->path;
}

/* ---- runtimes -------------------------------------------------------------------------------- */

static struct rt *find_rt(struct vg_dnipc_server *s, const uint8_t cookie[16])
{
    for (size_t i = 0; i < s->n_rts; i++)
        if (memcmp(s->rts[i].info.cookie, cookie, 16) == 0)
            return &s->rts[i];
    return NULL;
}

static void remove_rt(struct vg_dnipc_server *s, struct rt *r)
{
    rt_close(r);
    size_t i = (size_t)(r - s->rts);
    memmove(&s->rts[i], &s->rts[i + 1], (s->n_rts - i - 1) * sizeof(*r));
    s->n_rts--;
}

static void fill_info(const struct rt *r, struct vg_dnipc_runtime *out)
{
    *out = r->info;
    out->parked = r->n_parked > 0;
}

size_t vg_dnipc_server_list(struct vg_dnipc_server *s, struct vg_dnipc_runtime *out, size_t n)
{
    pthread_mutex_lock(&s->mu);
    size_t total = s->n_rts;
    for (size_t i = 0; i < total && i < n; i++)
        fill_info(&s->rts[i], &out[i]);
    pthread_mutex_unlock(&s->mu);
    return total;
}

int vg_dnipc_server_get(struct vg_dnipc_server *s, const uint8_t cookie[16],
                        struct vg_dnipc_runtime *out)
{
    pthread_mutex_lock(&s->mu);
    struct rt *r = find_rt(s, cookie);
    if (r)
        fill_info(r, out);
    pthread_mutex_unlock(&s->mu);
    return r ? 0 : VG_ENOTFOUND;
}

void vg_dnipc_server_forget(struct vg_dnipc_server *s, const uint8_t cookie[16])
{
    pthread_mutex_lock(&s->mu);
    struct rt *r = find_rt(s, cookie);
    if (r)
        remove_rt(s, r);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* A parked connection the runtime closed (it never writes on it before our command). */
static bool hung_up(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

static int take_connect(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                        int *out_fd)
{
    struct vg_dnipc_server *s = ep->ctx;
    int timeout = io ? io->timeout_ms : -1;
    uint64_t deadline = timeout >= 0 ? vg_mono_ms() + (uint64_t)timeout : 0;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        struct rt *r = find_rt(s, ep->cookie);
        if (!r) {
            vg__dnipc_seterr(io, "%s: the runtime is no longer connected to %s", ep->what, s->path);
            rc = VG_ENOTFOUND;
            break;
        }
        while (r->n_parked) {
            int fd = r->parked[0];
            memmove(r->parked, r->parked + 1, --r->n_parked * sizeof(int));
            if (!hung_up(fd)) {
                *out_fd = fd;
                goto out;
            }
            close(fd);
            if (!r->n_parked)
                r->lost_ms = vg_mono_ms();
        }
        if (io && io->cancel && atomic_load(io->cancel)) {
            rc = VG_ECANCELED;
            break;
        }
        uint64_t now = vg_mono_ms();
        if (deadline && now >= deadline) {
            vg__dnipc_seterr(io,
                             "%s: the runtime did not connect to %s within %d ms (busy with "
                             "another command, or exited)",
                             ep->what, s->path, timeout);
            rc = VG_ETIMEDOUT;
            break;
        }
        uint64_t wait = TICK_MS;
        if (deadline && deadline - now < wait)
            wait = deadline - now;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(wait * 1000000);
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void vg_dnipc_server_endpoint(struct vg_dnipc_endpoint *ep, struct vg_dnipc_server *s,
                              const uint8_t cookie[16], const char *what)
{
    memset(ep, 0, sizeof(*ep));
    ep->connect = take_connect;
    ep->ctx = s;
    memcpy(ep->cookie, cookie, 16);
    snprintf(ep->path, sizeof(ep->path), "%s", s->path);
    if (what)
        snprintf(ep->what, sizeof(ep->what), "%s", what);
    else {
        char c[37];
        vg_dnipc_cookie_format(cookie, c);
        snprintf(ep->what, sizeof(ep->what), "runtime %s", c);
    }
}

/* ---- the serve loop
 * ------------------------------------------------------------------------------ */

/* Events found under the lock, reported after it is released (callbacks may call us). */
struct events {
    struct vg_dnipc_runtime added[MAX_PENDING], removed[MAX_PENDING + 16];
    size_t n_added, n_removed;
};

static void note_removed(struct events *ev, const struct rt *r)
{
    if (ev->n_removed < VG_ARRAY_SIZE(ev->removed))
        fill_info(r, &ev->removed[ev->n_removed++]);
}

/* A connection finished its advertise: park it under its cookie. */
static void adopt(struct vg_dnipc_server *s, struct pending *p, struct events *ev)
{
    struct vg_dnipc_advert adv;
    char c[37];
    if (vg_dnipc_parse_advert(p->buf, p->got, &adv) < 0) {
        vg_log(VG_LOG_WARN, "dotnet",
               "diagnostic port %s: a peer sent no ADVR_V1 advertise; "
               "closed",
               s->path);
        close(p->fd);
        return;
    }
    struct ucred cred = {0};
    socklen_t cl = sizeof(cred);
    getsockopt(p->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl);
    struct rt *r = find_rt(s, adv.cookie);
    uint64_t now = vg_mono_ms();
    if (!r) {
        if (s->opts.max_connections > 0 && s->n_rts >= (size_t)s->opts.max_connections) {
            if (now - s->refused_log_ms > 10000) {
                vg_dnipc_cookie_format(adv.cookie, c);
                vg_log(VG_LOG_WARN, "dotnet",
                       "diagnostic port %s: MaxConnections (%d) reached; runtime %s (pid %llu) "
                       "refused until another one goes",
                       s->path, s->opts.max_connections, c, (unsigned long long)adv.pid);
                s->refused_log_ms = now;
            }
            close(p->fd);
            return;
        }
        if (vg_grow((void **)&s->rts, &s->cap_rts, s->n_rts, sizeof(*s->rts), 8) < 0) {
            close(p->fd);
            return;
        }
        r = &s->rts[s->n_rts++];
        memset(r, 0, sizeof(*r));
        memcpy(r->info.cookie, adv.cookie, 16);
        r->info.pid = adv.pid;
        r->info.host_pid = cred.pid;
        r->info.uid = cred.uid;
        r->info.first_ms = now;
        r->parked[r->n_parked++] = p->fd;
        r->seen_ms = now;
        if (ev->n_added < VG_ARRAY_SIZE(ev->added))
            fill_info(r, &ev->added[ev->n_added++]);
        pthread_cond_broadcast(&s->cv);
        return;
    }
    if (r->n_parked == MAX_PARKED) {
        close(r->parked[0]);
        memmove(r->parked, r->parked + 1, --r->n_parked * sizeof(int));
    }
    r->parked[r->n_parked++] = p->fd;
    r->lost_ms = 0;
    r->seen_ms = now;
    if (cred.pid)
        r->info.host_pid = cred.pid;
    pthread_cond_broadcast(&s->cv);
}

static void accept_all(struct vg_dnipc_server *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                vg_log(VG_LOG_WARN, "dotnet", "diagnostic port %s: accept: %s", s->path,
                       strerror(errno));
            return;
        }
        if (s->n_pending == MAX_PENDING) {
            /* a flood of silent connections: drop the oldest */
            close(s->pending[0].fd);
            memmove(s->pending, s->pending + 1, --s->n_pending * sizeof(s->pending[0]));
        }
        struct pending *p = &s->pending[s->n_pending++];
        p->fd = fd;
        p->got = 0;
        p->deadline = vg_mono_ms() + (uint64_t)s->opts.advert_timeout_ms;
    }
}

/* Reads what a pending connection sent; returns true when it is done (adopted or closed). */
static bool read_pending(struct vg_dnipc_server *s, struct pending *p, struct events *ev)
{
    for (;;) {
        ssize_t n = recv(p->fd, p->buf + p->got, sizeof(p->buf) - p->got, MSG_DONTWAIT);
        if (n > 0) {
            p->got += (size_t)n;
            if (p->got == sizeof(p->buf)) {
                adopt(s, p, ev);
                return true;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        close(p->fd); /* closed before a whole advertise */
        return true;
    }
}

static void check_gone(struct vg_dnipc_server *s, struct events *ev)
{
    uint64_t now = vg_mono_ms();
    for (size_t i = 0; i < s->n_rts;) {
        struct rt *r = &s->rts[i];
        bool gone = false;
        if (r->n_parked == 0 && r->lost_ms &&
            now - r->lost_ms > (uint64_t)s->opts.advert_timeout_ms)
            gone = true;
        /* no connection parked (a command in flight, or it died during one): if we can see its
         * pid, ask the kernel */
        if (!gone && r->n_parked == 0 && r->info.host_pid > 0 &&
            now - r->seen_ms > (uint64_t)s->opts.advert_timeout_ms &&
            kill(r->info.host_pid, 0) < 0 && errno == ESRCH)
            gone = true;
        if (gone) {
            note_removed(ev, r);
            remove_rt(s, r);
            continue;
        }
        i++;
    }
}

int vg_dnipc_server_serve(struct vg_dnipc_server *s, const struct vg_dnipc_server_cbs *cbs,
                          const atomic_bool *cancel)
{
    struct pollfd *pfds = NULL;
    size_t cap = 0;
    struct events *ev = malloc(sizeof(*ev));
    if (!ev)
        return VG_ENOMEM;
    int rc = 0;
    while (!(cancel && atomic_load(cancel))) {
        /* what to watch: the listener, pending connections, parked connections */
        pthread_mutex_lock(&s->mu);
        size_t want = 1 + s->n_pending;
        for (size_t i = 0; i < s->n_rts; i++)
            want += s->rts[i].n_parked;
        if (want > cap) {
            struct pollfd *np = realloc(pfds, want * sizeof(*pfds));
            if (!np) {
                pthread_mutex_unlock(&s->mu);
                rc = VG_ENOMEM;
                break;
            }
            pfds = np;
            cap = want;
        }
        size_t n = 0;
        pfds[n++] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        for (size_t i = 0; i < s->n_pending; i++)
            pfds[n++] = (struct pollfd){.fd = s->pending[i].fd, .events = POLLIN};
        for (size_t i = 0; i < s->n_rts; i++)
            for (size_t j = 0; j < s->rts[i].n_parked; j++)
                pfds[n++] = (struct pollfd){.fd = s->rts[i].parked[j], .events = POLLIN};
        pthread_mutex_unlock(&s->mu);

        int pr = poll(pfds, n, TICK_MS);
        if (pr < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }

        ev->n_added = ev->n_removed = 0;
        pthread_mutex_lock(&s->mu);
        uint64_t now = vg_mono_ms();
        /* Parked connections that became readable were closed by their runtime. A taker may have
         * removed some since the poll: match by fd value among those still parked. */
        for (size_t k = 1; pr > 0 && k < n; k++) {
            if (!(pfds[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            for (size_t i = 0; i < s->n_rts; i++) {
                struct rt *r = &s->rts[i];
                for (size_t j = 0; j < r->n_parked; j++) {
                    if (r->parked[j] != pfds[k].fd || !hung_up(r->parked[j]))
                        continue;
                    close(r->parked[j]);
                    memmove(&r->parked[j], &r->parked[j + 1], (r->n_parked - j - 1) * sizeof(int));
                    if (--r->n_parked == 0)
                        r->lost_ms = now;
                    break;
                }
            }
        }
        /* pending connections: advertise data, or a timeout */
        for (size_t i = 0; i < s->n_pending;) {
            struct pending *p = &s->pending[i];
            bool done = read_pending(s, p, ev);
            if (!done && now >= p->deadline) {
                vg_log(VG_LOG_DEBUG, "dotnet",
                       "diagnostic port %s: a connection sent no advertise in %d ms; closed",
                       s->path, s->opts.advert_timeout_ms);
                close(p->fd);
                done = true;
            }
            if (done) {
                memmove(p, p + 1, (s->n_pending - i - 1) * sizeof(*p));
                s->n_pending--;
                continue;
            }
            i++;
        }
        if (pfds[0].revents & POLLIN)
            accept_all(s);
        /* a connection accepted just now may already hold its advertise */
        for (size_t i = 0; i < s->n_pending;) {
            if (read_pending(s, &s->pending[i], ev)) {
                memmove(&s->pending[i], &s->pending[i + 1],
                        (s->n_pending - i - 1) * sizeof(s->pending[0]));
                s->n_pending--;
                continue;
            }
            i++;
        }
        check_gone(s, ev);
        pthread_mutex_unlock(&s->mu);

        for (size_t i = 0; cbs && i < ev->n_added; i++)
            if (cbs->added)
                cbs->added(cbs->ctx, &ev->added[i]);
        for (size_t i = 0; cbs && i < ev->n_removed; i++)
            if (cbs->removed)
                cbs->removed(cbs->ctx, &ev->removed[i]);
    }
    free(pfds);
    free(ev);
    return rc;
}
