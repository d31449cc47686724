/* HotSpot attach: reply parser, listener start, credentials, request/reply, and the commands. */
#include "engine/runtimes/jvm/attach.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_ATTACH_MS 10000u
#define DEFAULT_IO_MS 5000u
#define DEFAULT_COMMAND_MS 600000u
#define SLICE_MS 100u
#define STREAM_CHUNK (256u << 10)

/* The reply parser. */

void vg_jvm_reply_init(struct vg_jvm_reply *r, vg_jvm_sink_fn sink, void *ctx, char *head,
                       size_t head_cap)
{
    memset(r, 0, sizeof(*r));
    r->sink = sink;
    r->ctx = ctx;
    r->head = head;
    r->head_cap = head_cap;
    if (head && head_cap)
        head[0] = '\0';
}

static int parse_status(const char *s, size_t len, int *out)
{
    size_t i = 0;
    bool neg = false;
    if (len && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len || len - i > 10)
        return VG_EPROTO;
    long long v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return VG_EPROTO;
        v = v * 10 + (s[i] - '0');
    }
    if (neg)
        v = -v;
    if (v < -2147483648LL || v > 2147483647LL)
        return VG_EPROTO;
    *out = (int)v;
    return 0;
}

int vg_jvm_reply_feed(struct vg_jvm_reply *r, const void *buf, size_t len)
{
    const char *p = buf;
    while (!r->have_status && len) {
        char c = *p++;
        len--;
        if (c == '\n') {
            if (parse_status(r->line, r->line_len, &r->status) < 0)
                return VG_EPROTO;
            r->have_status = true;
            break;
        }
        if (r->line_len >= 11) /* "-2147483648" */
            return VG_EPROTO;
        r->line[r->line_len++] = c;
    }
    if (!len)
        return 0;
    if (r->head && r->head_len + 1 < r->head_cap) {
        size_t n = r->head_cap - 1 - r->head_len;
        if (n > len)
            n = len;
        memcpy(r->head + r->head_len, p, n);
        r->head_len += n;
        r->head[r->head_len] = '\0';
    }
    r->bytes += len;
    return r->sink ? r->sink(r->ctx, p, len) : 0;
}

int vg_jvm_reply_end(struct vg_jvm_reply *r)
{
    return r->have_status ? 0 : VG_EPROTO;
}

/* Deadlines and waiting. */

static bool cancelled(const struct vg_jvm_attach_opts *o)
{
    return o->cancel && atomic_load(o->cancel);
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Sleeps up to ms in slices; VG_ECANCELED when cancel is raised meanwhile. */
static int wait_ms(const struct vg_jvm_attach_opts *o, uint64_t ms)
{
    uint64_t end = vg_mono_ms() + ms;
    for (;;) {
        if (cancelled(o))
            return VG_ECANCELED;
        uint64_t now = vg_mono_ms();
        if (now >= end)
            return 0;
        sleep_ms((uint32_t)(end - now < SLICE_MS ? end - now : SLICE_MS));
    }
}

/* A recording's duration (0: until stopped): 0 at its end or when o->stop is raised (the
 * recording is kept), VG_ECANCELED when cancel is. */
static int wait_recording(const struct vg_jvm_attach_opts *o, uint64_t ms)
{
    uint64_t end = ms ? vg_mono_ms() + ms : UINT64_MAX;
    for (;;) {
        if (cancelled(o))
            return VG_ECANCELED;
        uint64_t now = vg_mono_ms();
        if (now >= end || (o->stop && atomic_load(o->stop)))
            return 0;
        sleep_ms((uint32_t)(end - now < SLICE_MS ? end - now : SLICE_MS));
    }
}

/* Polls fd for `events` until the deadline, in slices, watching cancel. */
static int poll_until(int fd, short events, uint64_t deadline, const struct vg_jvm_attach_opts *o)
{
    for (;;) {
        if (cancelled(o))
            return VG_ECANCELED;
        uint64_t now = vg_mono_ms();
        if (now >= deadline)
            return VG_ETIMEDOUT;
        uint64_t left = deadline - now;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(left < SLICE_MS ? left : SLICE_MS));
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0)
            return 0;
    }
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen || err[0])
        return; /* the first, most specific message wins */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void opts_defaults(const struct vg_jvm_attach_opts *in, struct vg_jvm_attach_opts *o)
{
    *o = in ? *in : (struct vg_jvm_attach_opts){0};
    if (!o->attach_timeout_ms)
        o->attach_timeout_ms = DEFAULT_ATTACH_MS;
    if (!o->io_timeout_ms)
        o->io_timeout_ms = DEFAULT_IO_MS;
    if (!o->command_timeout_ms)
        o->command_timeout_ms = DEFAULT_COMMAND_MS;
}

/* Connecting. The listener compares the peer's effective uid/gid (SO_PEERCRED, fixed at
 * connect) with its own; root passes, but only if root maps into the JVM's user namespace. */

static int connect_path(const struct sockaddr_un *addr, uint64_t deadline, int *out)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -errno;
    for (;;) {
        if (connect(s, (const struct sockaddr *)addr, sizeof(*addr)) == 0) {
            *out = s;
            return 0;
        }
        /* A full backlog: the listener is busy with another client. */
        if (errno != EAGAIN && errno != EINTR) {
            int rc = -errno;
            close(s);
            return rc;
        }
        if (vg_mono_ms() >= deadline) {
            close(s);
            return VG_ETIMEDOUT;
        }
        sleep_ms(20);
    }
}

static void close_all_but(int a, int b)
{
    int lo = a < b ? a : b, hi = a < b ? b : a;
    syscall(SYS_close_range, 3u, (unsigned)lo - 1, 0u);
    syscall(SYS_close_range, (unsigned)lo + 1, (unsigned)hi - 1, 0u);
    syscall(SYS_close_range, (unsigned)hi + 1, ~0u, 0u);
}

/* Steps that must run with the JVM's ids: connecting (the listener checks them) and, in a user
 * namespace where vigil's root is not mapped, creating files (EOVERFLOW otherwise). */
enum as_target_op { AS_CONNECT, AS_MKDIR, AS_CREATE };

struct as_target_req {
    enum as_target_op op;
    int fd;                         /* the directory, or for AS_CONNECT the socket's O_PATH fd */
    const char *name;               /* AS_MKDIR / AS_CREATE */
    const struct sockaddr_un *addr; /* AS_CONNECT */
    uint64_t deadline;
};

/* In a child (a fork of a threaded process: raw syscalls only), become the JVM's user, do the
 * step and report over `chan` (the errno, and the connected socket). The child keeps no other
 * descriptor and, having changed uid, is not dumpable: the JVM's user cannot reach vigil's files
 * through it. */
static void as_target_child(const struct vg_jvm_target *t, const struct as_target_req *rq, int chan)
{
    close_all_but(rq->fd, chan);
    int err = 0, s = -1;
    if (syscall(SYS_setgroups, 0, NULL) < 0 ||
        syscall(SYS_setresgid, t->egid, t->egid, t->egid) < 0 ||
        syscall(SYS_setresuid, t->euid, t->euid, t->euid) < 0)
        err = errno;
    if (!err && rq->op == AS_CONNECT) {
        int rc = connect_path(rq->addr, rq->deadline, &s);
        if (rc < 0)
            err = -rc;
    } else if (!err && rq->op == AS_MKDIR) {
        if (mkdirat(rq->fd, rq->name, 0700) < 0)
            err = errno;
    } else if (!err) {
        if (openat(rq->fd, rq->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600) < 0)
            err = errno;
    }
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof(cbuf));
    struct iovec iov = {.iov_base = &err, .iov_len = sizeof(err)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (s >= 0) {
        m.msg_control = cbuf;
        m.msg_controllen = sizeof(cbuf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &s, sizeof(int));
    }
    _exit(sendmsg(chan, &m, MSG_NOSIGNAL) < 0 ? 2 : 0);
}

/* Runs one step as the JVM's user; *out gets the socket of AS_CONNECT (may be NULL otherwise). */
static int as_target(const struct vg_jvm_target *t, const struct as_target_req *rq,
                     const struct vg_jvm_attach_opts *o, int *out)
{
    int sp[2], rc = 0;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
        return -errno;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t child = fork();
    if (child == 0)
        as_target_child(t, rq, sp[1]);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(sp[1]);
    if (child < 0) {
        rc = -errno;
        close(sp[0]);
        return rc;
    }
    rc = poll_until(sp[0], POLLIN, rq->deadline + 1000, o);
    if (rc == 0) {
        int cerr = 0;
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {.iov_base = &cerr, .iov_len = sizeof(cerr)};
        struct msghdr m = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        ssize_t n = recvmsg(sp[0], &m, MSG_CMSG_CLOEXEC);
        struct cmsghdr *c = n == (ssize_t)sizeof(cerr) ? CMSG_FIRSTHDR(&m) : NULL;
        if (n != (ssize_t)sizeof(cerr)) {
            rc = VG_EPROTO;
        } else if (cerr) {
            rc = -cerr;
        } else if (rq->op != AS_CONNECT) {
            rc = 0;
        } else if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            memcpy(out, CMSG_DATA(c), sizeof(int));
            int fl = fcntl(*out, F_GETFL);
            fcntl(*out, F_SETFL, fl | O_NONBLOCK);
        } else {
            rc = VG_EPROTO;
        }
    }
    if (rc < 0)
        kill(child, SIGKILL); /* our own child, still ours until waited for */
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
    }
    close(sp[0]);
    return rc;
}

/* Creates a file (dir=false, empty) or a 0700 directory named `name` in dirfd, owned by the
 * JVM's user: as root with a chown, or, where root is not mapped (EOVERFLOW), as that user. */
static int create_for_target(const struct vg_jvm_target *t, int dirfd, const char *name, bool dir)
{
    int rc = 0;
    if (dir) {
        if (mkdirat(dirfd, name, 0700) < 0)
            rc = -errno;
    } else {
        int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            rc = -errno;
        else
            close(fd);
    }
    if (rc == -EOVERFLOW && geteuid() == 0) {
        struct as_target_req rq = {.op = dir ? AS_MKDIR : AS_CREATE,
                                   .fd = dirfd,
                                   .name = name,
                                   .deadline = vg_mono_ms() + DEFAULT_IO_MS};
        struct vg_jvm_attach_opts none = {0};
        return as_target(t, &rq, &none, NULL);
    }
    if (rc == 0 && geteuid() == 0 &&
        fchownat(dirfd, name, t->euid, t->egid, AT_SYMLINK_NOFOLLOW) < 0)
        rc = -errno;
    return rc;
}

/* The listener. */

/* A socket of another user at the JVM's path: left by a JVM killed with SIGKILL that had the
 * same (namespace) pid. The JVM cannot replace it in the sticky /tmp, so it could never start
 * its listener. When nothing listens on it (ECONNREFUSED) vigil, as root, removes it: VG_ENOENT,
 * the listener is then started as usual. A socket someone listens on is left alone: VG_EPERM. */
static int remove_stale(const struct vg_jvm_target *t, int fd, const char *path)
{
    if (geteuid() != 0)
        return VG_EPERM;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d", fd);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -errno;
    int rc = connect(s, (const struct sockaddr *)&addr, sizeof(addr)) < 0 ? errno : 0;
    close(s);
    if (rc != ECONNREFUSED)
        return VG_EPERM;
    int dir = vg_jvm_target_open(t, "/tmp", O_PATH | O_DIRECTORY, 0);
    if (dir < 0)
        return VG_EPERM;
    rc = unlinkat(dir, strrchr(path, '/') + 1, 0) == 0 ? VG_ENOENT : VG_EPERM;
    close(dir);
    if (rc == VG_ENOENT)
        vg_log(VG_LOG_INFO, "runtime:jvm", "pid %d: removed a stale %s of another user", t->pid,
               path);
    return rc;
}

/* An O_PATH fd of the JVM's .java_pid socket, or VG_ENOENT. */
static int open_listener(const struct vg_jvm_target *t, int *out)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/.java_pid%d", t->nspid);
    int fd = vg_jvm_target_open(t, path, O_PATH | O_NOFOLLOW, 0);
    if (fd < 0)
        return fd == VG_ELOOP ? VG_ENOENT : fd;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        close(fd);
        return VG_ENOENT;
    }
    /* As jcmd checks: the socket must be the JVM user's, or it is someone else's trap. */
    if (st.st_uid != t->euid) {
        int rc = remove_stale(t, fd, path);
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

struct trigger {
    int dirfd;
    char name[32];
    bool created;
};

/* Creates .attach_pid<nspid> in the JVM's cwd, else in its /tmp. The JVM honours it only when
 * owned by its euid or root (in its user namespace): hand it to the JVM's user. */
static int trigger_create(const struct vg_jvm_target *t, struct trigger *tr)
{
    char cwd[320];
    tr->dirfd = -1;
    tr->created = false;
    snprintf(tr->name, sizeof(tr->name), ".attach_pid%d", t->nspid);
    snprintf(cwd, sizeof(cwd), "%s/%d/cwd", t->proc_root, t->pid);
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        int dfd = attempt == 0 ? open(cwd, O_PATH | O_DIRECTORY | O_CLOEXEC)
                               : vg_jvm_target_open(t, "/tmp", O_PATH | O_DIRECTORY, 0);
        if (dfd < 0) {
            rc = attempt == 0 ? -errno : dfd;
            continue;
        }
        rc = create_for_target(t, dfd, tr->name, false);
        if (rc == 0 || rc == VG_EEXIST) {
            /* EEXIST: someone else's request in flight; it serves ours too. */
            tr->created = rc == 0;
            tr->dirfd = dfd;
            return 0;
        }
        close(dfd);
    }
    return rc;
}

static void trigger_remove(struct trigger *tr)
{
    if (tr->dirfd < 0)
        return;
    if (tr->created)
        unlinkat(tr->dirfd, tr->name, 0);
    close(tr->dirfd);
    tr->dirfd = -1;
}

/* SIGQUIT through a pidfd, after checking the pidfd names our JVM and that it catches SIGQUIT. */
static int send_sigquit(const struct vg_jvm_target *t)
{
    int pfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
    if (pfd < 0)
        return errno == ESRCH ? VG_EEXITED : -errno;
    int rc = vg_jvm_target_check_alive(t);
    if (rc == 0 && !vg_jvm_target_catches_sigquit(t))
        rc = VG_EUNSUPPORTED;
    if (rc == 0 && syscall(SYS_pidfd_send_signal, pfd, SIGQUIT, NULL, 0) < 0)
        rc = errno == ESRCH ? VG_EEXITED : -errno;
    close(pfd);
    return rc;
}

/* Finds the listener, starting it if needed. */
static int find_or_start_listener(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *o,
                                  int *out, char *err, size_t errlen)
{
    int rc = open_listener(t, out);
    if (rc != VG_ENOENT) {
        if (rc == VG_EPERM)
            set_err(err, errlen,
                    "pid %d: /tmp/.java_pid%d (in its root) is not owned by its uid %u: refusing "
                    "to attach",
                    t->pid, t->nspid, (unsigned)t->euid);
        else if (rc < 0)
            set_err(err, errlen, "pid %d: cannot look up its attach socket: %s", t->pid,
                    vg_strerror(rc));
        return rc;
    }
    if (!vg_jvm_target_catches_sigquit(t)) {
        set_err(err, errlen,
                "pid %d has no attach listener and does not handle SIGQUIT (started with -Xrs?): "
                "refusing to signal it, SIGQUIT would terminate it",
                t->pid);
        return VG_EUNSUPPORTED;
    }
    struct trigger tr;
    rc = trigger_create(t, &tr);
    if (rc < 0) {
        set_err(err, errlen,
                "pid %d: cannot create .attach_pid%d in its cwd or /tmp to start its attach "
                "listener: %s",
                t->pid, t->nspid, vg_strerror(rc));
        return rc;
    }
    /* As jcmd does: signal, poll with a growing step, signal once more at half time. */
    uint64_t start = vg_mono_ms(), deadline = start + o->attach_timeout_ms;
    bool resent = false;
    uint32_t step = 0;
    rc = send_sigquit(t);
    while (rc == 0) {
        step += 50;
        rc = wait_ms(o, step);
        if (rc < 0)
            break;
        rc = open_listener(t, out);
        if (rc != VG_ENOENT)
            break;
        rc = vg_jvm_target_check_alive(t);
        if (rc < 0)
            break;
        uint64_t now = vg_mono_ms();
        if (now >= deadline) {
            rc = VG_ETIMEDOUT;
            break;
        }
        if (!resent && now - start > o->attach_timeout_ms / 2) {
            resent = true;
            rc = send_sigquit(t);
        }
    }
    trigger_remove(&tr);
    if (rc == VG_EUNSUPPORTED)
        set_err(err, errlen, "pid %d stopped handling SIGQUIT: not signalled", t->pid);
    else if (rc == VG_ETIMEDOUT)
        set_err(err, errlen,
                "pid %d did not start its attach listener within %u ms of SIGQUIT (started with "
                "-XX:+DisableAttachMechanism, not a HotSpot JVM, or not responding)",
                t->pid, o->attach_timeout_ms);
    else if (rc == VG_EEXITED || rc == VG_ESRCH)
        set_err(err, errlen, "pid %d exited while starting its attach listener", t->pid);
    else if (rc < 0)
        set_err(err, errlen, "pid %d: starting its attach listener: %s", t->pid, vg_strerror(rc));
    return rc;
}

static int attach_connect(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *o,
                          int *out, char *err, size_t errlen)
{
    uid_t me = geteuid();
    gid_t my_gid = getegid();
    if (me != 0 && (me != t->euid || my_gid != t->egid)) {
        set_err(err, errlen,
                "pid %d runs as uid %u gid %u and vigil as uid %u gid %u: its attach listener "
                "accepts only its own effective uid and gid, or root",
                t->pid, (unsigned)t->euid, (unsigned)t->egid, (unsigned)me, (unsigned)my_gid);
        return VG_EPERM;
    }
    int path_fd = -1;
    int rc = find_or_start_listener(t, o, &path_fd, err, errlen);
    if (rc < 0)
        return rc;
    /* Through the O_PATH fd: no path length limit, no second lookup in the JVM's root. */
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d", path_fd);
    uint64_t deadline = vg_mono_ms() + o->io_timeout_ms;
    if (me == 0 && (t->euid != 0 || t->egid != 0)) {
        /* path_fd stays open in the child: it is what addr names. */
        struct as_target_req rq = {
            .op = AS_CONNECT, .fd = path_fd, .addr = &addr, .deadline = deadline};
        rc = as_target(t, &rq, o, out);
    } else {
        rc = connect_path(&addr, deadline, out);
    }
    close(path_fd);
    if (rc == VG_ETIMEDOUT)
        set_err(err, errlen, "pid %d: its attach listener did not accept within %u ms", t->pid,
                o->io_timeout_ms);
    else if (rc < 0)
        set_err(err, errlen, "pid %d: connecting to its attach listener: %s", t->pid,
                vg_strerror(rc));
    return rc;
}

/* Request and reply. */

static int send_all(int s, const char *buf, size_t len, uint64_t deadline,
                    const struct vg_jvm_attach_opts *o)
{
    while (len) {
        ssize_t n = send(s, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        int rc = poll_until(s, POLLOUT, deadline, o);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int vg_jvm_attach_command(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *in,
                          const char *cmd, const char *const args[3], vg_jvm_sink_fn sink,
                          void *ctx, char *head, size_t head_cap, int *status, char *err,
                          size_t errlen)
{
    struct vg_jvm_attach_opts o;
    opts_defaults(in, &o);
    char req[8 + VG_JVM_ATTACH_NAME_MAX + 3 * (VG_JVM_ATTACH_ARG_MAX + 1)];
    size_t len = 0;
    int s = -1, rc = 0;
    char *rbuf = NULL;
    struct vg_jvm_reply r;
    char ihead[512]; /* the error text of a failed command, when the caller keeps none */
    if (!head || !head_cap) {
        head = ihead;
        head_cap = sizeof(ihead);
    }
    vg_jvm_reply_init(&r, sink, ctx, head, head_cap);
    if (err && errlen)
        err[0] = '\0';
    if (status)
        *status = 0;

    if (!cmd || !*cmd || strlen(cmd) > VG_JVM_ATTACH_NAME_MAX) {
        set_err(err, errlen, "attach command name must be 1-%d bytes", VG_JVM_ATTACH_NAME_MAX);
        return VG_EINVAL;
    }
    memcpy(req, "1", 2);
    len = 2;
    memcpy(req + len, cmd, strlen(cmd) + 1);
    len += strlen(cmd) + 1;
    for (int i = 0; i < 3; i++) {
        const char *a = args && args[i] ? args[i] : "";
        size_t alen = strlen(a);
        if (alen > VG_JVM_ATTACH_ARG_MAX) {
            set_err(err, errlen, "attach argument %d is %zu bytes; HotSpot accepts at most %d", i,
                    alen, VG_JVM_ATTACH_ARG_MAX);
            return VG_EINVAL;
        }
        memcpy(req + len, a, alen + 1);
        len += alen + 1;
    }

    rc = attach_connect(t, &o, &s, err, errlen);
    if (rc < 0)
        goto out;
    rc = send_all(s, req, len, vg_mono_ms() + o.io_timeout_ms, &o);
    if (rc < 0) {
        set_err(err, errlen, "pid %d: sending the %s request: %s", t->pid, cmd, vg_strerror(rc));
        goto out;
    }
    rbuf = malloc(64 << 10);
    if (!rbuf) {
        rc = VG_ENOMEM;
        goto out;
    }
    uint64_t deadline = vg_mono_ms() + o.command_timeout_ms;
    for (;;) {
        ssize_t n = recv(s, rbuf, 64 << 10, 0);
        if (n > 0) {
            rc = vg_jvm_reply_feed(&r, rbuf, (size_t)n);
            if (rc < 0)
                goto out;
            continue;
        }
        if (n == 0)
            break;
        if (errno != EAGAIN && errno != EINTR) {
            rc = -errno;
            set_err(err, errlen, "pid %d: reading the %s reply: %s", t->pid, cmd, vg_strerror(rc));
            goto out;
        }
        rc = poll_until(s, POLLIN, deadline, &o);
        if (rc == VG_ETIMEDOUT) {
            set_err(err, errlen,
                    "pid %d did not complete %s within %u ms: gave up (the JVM may "
                    "still be running the command)",
                    t->pid, cmd, o.command_timeout_ms);
            goto out;
        }
        if (rc < 0)
            goto out;
    }
    rc = vg_jvm_reply_end(&r);
    if (rc < 0) {
        set_err(err, errlen,
                "pid %d closed the attach connection without a status (request "
                "refused: wrong credentials or a malformed request)",
                t->pid);
        goto out;
    }
    if (status)
        *status = r.status;
    if (r.status != 0) {
        rc = VG_EFATAL;
        set_err(err, errlen, "pid %d: %s failed with status %d%s%s", t->pid, cmd, r.status,
                head[0] ? ": " : "", head);
    }
out:
    if (rc == VG_EPROTO)
        set_err(err, errlen, "pid %d: malformed attach reply (no status line)", t->pid);
    else if (rc == VG_ECANCELED)
        set_err(err, errlen, "pid %d: %s cancelled", t->pid, cmd);
    else if (rc < 0 && r.have_status && sink)
        set_err(err, errlen, "pid %d: %s output could not be stored: %s", t->pid, cmd,
                vg_strerror(rc));
    free(rbuf);
    if (s >= 0)
        close(s);
    return rc;
}

int vg_jvm_jcmd(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *o, const char *line,
                vg_jvm_sink_fn sink, void *ctx, char *head, size_t head_cap, char *err,
                size_t errlen)
{
    const char *args[3] = {line, NULL, NULL};
    return vg_jvm_attach_command(t, o, "jcmd", args, sink, ctx, head, head_cap, NULL, err, errlen);
}

int vg_jvm_thread_print(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *o,
                        bool locks, vg_jvm_sink_fn sink, void *ctx, char *err, size_t errlen)
{
    return vg_jvm_jcmd(t, o, locks ? "Thread.print -l" : "Thread.print", sink, ctx, NULL, 0, err,
                       errlen);
}

/* Files the JVM writes: a fresh directory owned by its user, in a directory both sides see. */

struct scratch {
    int parent, dir;
    char name[40];
    char path[VG_JVM_PATH_MAX]; /* the directory in the JVM's view */
};

static int scratch_create(const struct vg_jvm_target *t, const char *dir, struct scratch *s,
                          char *err, size_t errlen)
{
    s->parent = s->dir = -1;
    if (!dir)
        dir = "/tmp";
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    /* The path travels in a jcmd line split at spaces. */
    if (dir[0] != '/' || strpbrk(dir, " \t\n\"'") || dlen + 64 >= sizeof(s->path)) {
        set_err(err, errlen,
                "dump directory \"%s\" must be an absolute path without spaces or quotes", dir);
        return VG_EINVAL;
    }
    uint8_t rnd[8];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -errno;
    snprintf(s->name, sizeof(s->name), "vigil-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    snprintf(s->path, sizeof(s->path), "%.*s/%s", (int)dlen, dir, s->name);
    if (dlen == 1)
        snprintf(s->path, sizeof(s->path), "/%s", s->name);

    int rc = vg_jvm_target_open(t, dir, O_PATH | O_DIRECTORY, 0);
    if (rc < 0) {
        set_err(err, errlen, "pid %d: cannot open %s in its filesystem: %s", t->pid, dir,
                vg_strerror(rc));
        return rc;
    }
    s->parent = rc;
    rc = create_for_target(t, s->parent, s->name, true);
    if (rc < 0)
        goto fail;
    s->dir = openat(s->parent, s->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s->dir < 0) {
        rc = -errno;
        goto fail;
    }
    return 0;
fail:
    set_err(err, errlen, "pid %d: cannot create %s for the JVM's output: %s", t->pid, s->path,
            vg_strerror(rc));
    if (s->dir >= 0)
        close(s->dir);
    s->dir = -1;
    unlinkat(s->parent, s->name, AT_REMOVEDIR);
    close(s->parent);
    s->parent = -1;
    return rc;
}

/* Removes whatever the JVM left in the directory (files only), then the directory. */
static void scratch_remove(struct scratch *s)
{
    if (s->parent < 0)
        return;
    int dfd = dup(s->dir);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                unlinkat(s->dir, de->d_name, 0);
        closedir(d);
    } else if (dfd >= 0) {
        close(dfd);
    }
    close(s->dir);
    unlinkat(s->parent, s->name, AT_REMOVEDIR);
    close(s->parent);
    s->parent = s->dir = -1;
}

static int stream_file(const struct vg_jvm_target *t, const struct scratch *s, const char *file,
                       const struct vg_jvm_attach_opts *o, vg_jvm_sink_fn sink, void *ctx,
                       uint64_t *bytes, char *err, size_t errlen)
{
    int fd = openat(s->dir, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    char *buf = NULL;
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
        set_err(err, errlen, "pid %d reported %s/%s written but it cannot be opened: %s", t->pid,
                s->path, file, vg_strerror(rc));
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != t->euid) {
        rc = VG_EPERM;
        set_err(err, errlen, "pid %d: %s/%s is not a regular file of uid %u: not read", t->pid,
                s->path, file, (unsigned)t->euid);
        goto out;
    }
    buf = malloc(STREAM_CHUNK);
    if (!buf) {
        rc = VG_ENOMEM;
        goto out;
    }
    for (;;) {
        if (cancelled(o)) {
            rc = VG_ECANCELED;
            goto out;
        }
        ssize_t n = read(fd, buf, STREAM_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            set_err(err, errlen, "pid %d: reading %s/%s: %s", t->pid, s->path, file,
                    vg_strerror(rc));
            goto out;
        }
        if (n == 0)
            break;
        rc = sink(ctx, buf, (size_t)n);
        if (rc < 0) {
            set_err(err, errlen, "pid %d: %s/%s could not be stored: %s", t->pid, s->path, file,
                    vg_strerror(rc));
            goto out;
        }
        *bytes += (uint64_t)n;
    }
out:
    free(buf);
    close(fd);
    return rc;
}

/* The jcmd output's head for messages: one line, bounded. */
static const char *one_line(char *head)
{
    for (char *p = head; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return head;
}

int vg_jvm_heap_dump(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *o,
                     const char *dir, bool all, vg_jvm_sink_fn sink, void *ctx,
                     struct vg_jvm_file_result *res, char *err, size_t errlen)
{
    struct scratch s;
    char line[VG_JVM_PATH_MAX + 64], head[1024];
    uint64_t bytes = 0;
    if (err && errlen)
        err[0] = '\0';
    int rc = scratch_create(t, dir, &s, err, errlen);
    if (rc < 0)
        return rc;
    snprintf(line, sizeof(line), "GC.heap_dump%s %s/heap.hprof", all ? " -all" : "", s.path);
    rc = vg_jvm_jcmd(t, o, line, NULL, NULL, head, sizeof(head), err, errlen);
    if (rc < 0)
        goto out;
    /* GC.heap_dump reports its own failures (file exists, disk full) with status 0. */
    if (!strstr(head, "Heap dump file created")) {
        rc = VG_EFATAL;
        set_err(err, errlen, "pid %d: GC.heap_dump failed: %s", t->pid, one_line(head));
        goto out;
    }
    struct vg_jvm_attach_opts oo;
    opts_defaults(o, &oo);
    rc = stream_file(t, &s, "heap.hprof", &oo, sink, ctx, &bytes, err, errlen);
out:
    scratch_remove(&s);
    if (res)
        res->bytes = bytes;
    return rc;
}

int vg_jvm_jfr_record(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *o,
                      const char *settings, uint64_t duration_ms, const char *dir,
                      vg_jvm_sink_fn sink, void *ctx, struct vg_jvm_file_result *res, char *err,
                      size_t errlen)
{
    struct scratch s;
    char name[40], line[VG_JVM_PATH_MAX + 128], head[1024];
    uint64_t bytes = 0;
    struct vg_jvm_attach_opts oo;
    opts_defaults(o, &oo);
    if (err && errlen)
        err[0] = '\0';
    if (!settings)
        settings = "default";
    if (!*settings || strpbrk(settings, " \t\n\"'") || strlen(settings) > 512) {
        set_err(err, errlen, "JFR settings \"%s\" must be a name or path without spaces or quotes",
                settings);
        return VG_EINVAL;
    }
    int rc = scratch_create(t, dir, &s, err, errlen);
    if (rc < 0)
        return rc;
    /* The recording is named after the directory: unique, and recognisable in JFR.check. */
    snprintf(name, sizeof(name), "%s", s.name);
    snprintf(line, sizeof(line), "JFR.start name=%s settings=%s", name, settings);
    rc = vg_jvm_jcmd(t, &oo, line, NULL, NULL, head, sizeof(head), err, errlen);
    /* A start given up on (cancel, timeout) may still complete in the JVM: stop it too. */
    bool started = rc == 0 || rc == VG_ECANCELED || rc == VG_ETIMEDOUT;
    if (rc == 0 && !strstr(head, "Started recording")) {
        rc = VG_EFATAL;
        started = false;
        set_err(err, errlen, "pid %d: JFR.start failed: %s", t->pid, one_line(head));
    }
    if (rc == 0)
        rc = wait_recording(&oo, duration_ms);
    if (rc == 0) {
        snprintf(line, sizeof(line), "JFR.stop name=%s filename=%s/recording.jfr", name, s.path);
        rc = vg_jvm_jcmd(t, &oo, line, NULL, NULL, head, sizeof(head), err, errlen);
        if (rc == 0 && !strstr(head, "Stopped recording")) {
            rc = VG_EFATAL;
            set_err(err, errlen, "pid %d: JFR.stop failed: %s", t->pid, one_line(head));
        }
        if (rc == 0) {
            rc = stream_file(t, &s, "recording.jfr", &oo, sink, ctx, &bytes, err, errlen);
            goto out;
        }
    }
    if (started) {
        /* Stop the recording without a file, whatever the cancel flag says: one left running
         * would grow the JVM's disk use. The listener handles requests in order, so this one
         * waits for a start still in progress. */
        struct vg_jvm_attach_opts stop = oo;
        stop.cancel = NULL;
        stop.attach_timeout_ms = 2000;
        stop.command_timeout_ms = 30000;
        snprintf(line, sizeof(line), "JFR.stop name=%s", name);
        vg_jvm_jcmd(t, &stop, line, NULL, NULL, NULL, 0, NULL, 0);
    }
    if (rc == VG_ECANCELED && err && errlen) {
        err[0] = '\0';
        set_err(err, errlen, "pid %d: JFR recording cancelled (stopped, nothing kept)", t->pid);
    }
out:
    scratch_remove(&s);
    if (res)
        res->bytes = bytes;
    return rc;
}
