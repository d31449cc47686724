#include "engine/runtimes/node/collect.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "engine/host/procfs.h"
#include "engine/runtimes/node/cdp.h"
#include "engine/runtimes/node/inspector.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMPONENT "node"
#define DEFAULT_CONNECT_MS 5000
#define DEFAULT_ACTIVATION_MS 5000
#define DEFAULT_TIMEOUT_MS (10u * 60 * 1000)
#define DEFAULT_IDLE_MS 60000
#define CALL_MS 10000
#define PAUSE_WAIT_MS 1000
#define REOPEN_WATCH_MS 3000 /* how long a closed inspector is watched for a late reopening */
/* How long a first close waits before it is tried again over a fresh connection (the inspector
 * may be one Node opened again meanwhile, whose port listens on without a break). */
#define RETRY_CLOSE_MS 5000
#define CLOSE_WAIT_MS                                                                              \
    20000 /* the app's loop runs the close: a busy app on a loaded machine takes seconds */

/* Inspectors vigil opened, shared by every session on the same process (a sampling session and
 * a rule's heap snapshot, two rules firing together): the first opens it, the last one closes
 * it, and nobody finds it while it is being opened or closed (`busy`). */
struct lease {
    int pid;
    unsigned users; /* sessions holding it, or waiting for it */
    bool busy;      /* one of them is opening or closing the inspector */
    bool open;      /* vigil opened this inspector and it is still open */
    uint64_t since; /* CLOCK_MONOTONIC ms of SIGUSR1 */
    struct vg_node_endpoint ep;
    struct lease *next;
};

static pthread_mutex_t lease_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lease *leases;

struct vg_node_session {
    int pid;
    struct vg_node_collect_opts opts;
    struct vg_node_options nopts;
    struct vg_node_endpoint ep;
    struct vg_cdp *cdp;
    struct lease *lease; /* the inspector vigil opened, which this session shares */
    /* the collection in progress */
    vg_node_sink_fn sink;
    void *sink_ctx;
    uint64_t bytes;
    json_t *paused; /* Debugger.paused params */
};

static void defaults(struct vg_node_collect_opts *o)
{
    if (!o->connect_ms)
        o->connect_ms = DEFAULT_CONNECT_MS;
    if (!o->activation_ms)
        o->activation_ms = DEFAULT_ACTIVATION_MS;
    if (!o->timeout_ms)
        o->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!o->idle_ms)
        o->idle_ms = DEFAULT_IDLE_MS;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Takes pid's lease for opening or closing (busy), creating it; join: count the caller as a
 * user. Waits while another session opens or closes it. NULL: out of memory or canceled. */
static struct lease *lease_take(int pid, bool join, atomic_bool *cancel)
{
    pthread_mutex_lock(&lease_lock);
    for (;;) {
        struct lease *l = leases;
        while (l && l->pid != pid)
            l = l->next;
        if (!l && (l = calloc(1, sizeof(*l)))) {
            l->pid = pid;
            l->next = leases;
            leases = l;
        }
        if (l && !l->busy) {
            l->busy = true;
            l->users += join;
            pthread_mutex_unlock(&lease_lock);
            return l;
        }
        pthread_mutex_unlock(&lease_lock);
        if (!l || (cancel && atomic_load(cancel)))
            return NULL;
        sleep_ms(20);
        pthread_mutex_lock(&lease_lock);
    }
}

/* Ends the caller's busy hold; leave: it no longer uses the lease. Frees it with its last user. */
static void lease_give(struct lease *l, bool leave)
{
    pthread_mutex_lock(&lease_lock);
    l->busy = false;
    l->users -= leave;
    if (l->users == 0) {
        struct lease **pp = &leases;
        while (*pp != l)
            pp = &(*pp)->next;
        *pp = l->next;
        free(l);
    }
    pthread_mutex_unlock(&lease_lock);
}

/* Finds the inspector: one vigil already opened for another session, the app's own, or (when
 * allowed) one SIGUSR1 opens. Returns 0 with s->ep set, or VG_E* with err. */
static int reach(struct vg_node_session *s, const struct vg_cdp_opts *copts, char *err,
                 size_t err_len)
{
    char why[VG_NODE_ERR_MAX];
    struct lease *l = lease_take(s->pid, true, s->opts.cancel);
    if (!l) {
        snprintf(err, err_len, "pid %d: %s", s->pid,
                 s->opts.cancel && atomic_load(s->opts.cancel) ? "canceled" : "out of memory");
        return s->opts.cancel && atomic_load(s->opts.cancel) ? VG_ECANCELED : VG_ENOMEM;
    }
    if (l->open) {
        s->ep = l->ep;
        s->lease = l;
        lease_give(l, false);
        return 0;
    }
    int rc = vg_node_inspector_find(s->opts.proc_root, s->pid, &s->nopts, copts, &s->ep, why,
                                    sizeof(why));
    if (rc == VG_ENOTFOUND && !s->opts.allow_activation) {
        rc = VG_EPERM;
        snprintf(err, err_len,
                 "%s, and Runtimes.Node.AllowInspectorActivation is false: vigil does not open "
                 "a debugging port on its own (start the app with --inspect, or allow "
                 "activation%s)",
                 why,
                 s->nopts.heapsnapshot_signal ? "; heap snapshots still work through its "
                                                "--heapsnapshot-signal"
                                              : "");
    } else if (rc == VG_ENOTFOUND) {
        uint64_t t0 = vg_mono_ms();
        rc = vg_node_inspector_activate(s->opts.proc_root, s->pid, &s->nopts, copts,
                                        s->opts.activation_ms, &s->ep, why, sizeof(why));
        if (rc == 0) {
            l->open = true;
            l->since = t0;
            l->ep = s->ep;
            s->lease = l;
            lease_give(l, false);
            return 0;
        }
        snprintf(err, err_len, "%s", why);
    } else if (rc < 0) {
        snprintf(err, err_len, "%s", why);
    }
    lease_give(l, true); /* the app's own inspector (rc 0), or none */
    return rc;
}

int vg_node_session_open(int pid, const struct vg_node_collect_opts *opts,
                         struct vg_node_session **out, char *err, size_t err_len)
{
    *out = NULL;
    struct vg_node_session *s = calloc(1, sizeof(*s));
    if (!s)
        return VG_ENOMEM;
    s->pid = pid;
    s->opts = *opts;
    defaults(&s->opts);
    struct vg_cdp_opts copts = {s->opts.connect_ms, 0, s->opts.cancel};
    char why[VG_NODE_ERR_MAX];
    int rc = vg_node_detect(s->opts.proc_root, pid, &s->nopts);
    if (rc == 0) {
        rc = VG_ENOTFOUND;
        snprintf(err, err_len, "pid %d is not a Node.js process", pid);
        goto out;
    }
    if (rc < 0) {
        snprintf(err, err_len, "pid %d: %s", pid, vg_strerror(rc));
        goto out;
    }
    if ((rc = reach(s, &copts, err, err_len)) < 0)
        goto out;
    rc = vg_cdp_open(&s->ep.addr, s->ep.path, &copts, &s->cdp, why, sizeof(why));
    if (rc < 0) {
        snprintf(err, err_len, "pid %d: %s", pid, why);
        goto out;
    }
out:
    if (rc < 0) {
        char ignored[VG_NODE_ERR_MAX];
        vg_node_session_close(s, NULL, ignored, sizeof(ignored));
        return rc;
    }
    *out = s;
    return 0;
}

/* Whether the target listens on the inspector port now (false when it is gone). */
static bool listens(const struct vg_node_session *s, int port)
{
    struct vg_node_listener ls[64];
    int n = vg_node_listeners(s->opts.proc_root, s->pid, ls, 64);
    for (int i = 0; i < n; i++)
        if (ls[i].owned && ls[i].port == port)
            return true;
    return false;
}

/* Whether the inspector port listens again in the target (watched up to REOPEN_WATCH_MS). */
static bool reopened(const struct vg_node_session *s, int port)
{
    uint64_t end = vg_mono_ms() + REOPEN_WATCH_MS;
    for (;;) {
        if (listens(s, port))
            return true;
        if (vg_mono_ms() >= end)
            return false;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int vg_node_session_close(struct vg_node_session *s, uint64_t *exposure_ms, char *err,
                          size_t err_len)
{
    int rc = 0;
    if (!s)
        return 0;
    json_decref(s->paused);
    struct lease *l = s->lease;
    if (!l || !(l = lease_take(s->pid, false, NULL)) || l->users > 1) {
        /* not vigil's inspector, or another session still uses it */
        vg_cdp_close(s->cdp);
        if (l)
            lease_give(l, true);
        free(s);
        return 0;
    }
    /* vigil opened this inspector and this was its last user: close it, over the session when
     * it still works, else over a fresh one. */
    struct vg_cdp *c = s->cdp;
    vg_cdp_set_cancel(c, NULL); /* a canceled collection still closes what vigil opened */
    if (!c || vg_cdp_error(c)[0]) {
        vg_cdp_close(c);
        c = NULL;
        struct vg_cdp_opts copts = {s->opts.connect_ms, 0, NULL};
        char why[VG_CDP_ERR_MAX];
        if (vg_cdp_open(&l->ep.addr, l->ep.path, &copts, &c, why, sizeof(why)) < 0)
            vg_log(VG_LOG_WARN, COMPONENT, "pid %d: reconnecting to close the inspector: %s",
                   s->pid, why);
    }
    rc = vg_node_inspector_deactivate(s->opts.proc_root, s->pid, c, &l->ep, RETRY_CLOSE_MS, err,
                                      err_len);
    /* Node starts its inspector from two places on SIGUSR1: an interrupt inside running JS and a
     * callback when the event loop turns. In a busy app the second may come after _debugEnd()
     * and open it again, before the port was seen closed or after: watch a while, and close it
     * again over a fresh connection (the last try waits the whole CLOSE_WAIT_MS). */
    for (int again = 0;
         again < 3 && (rc == VG_ETIMEDOUT || (rc == 0 && reopened(s, l->ep.addr.port))); again++) {
        bool still = rc == VG_ETIMEDOUT;
        struct vg_node_endpoint ep2;
        struct vg_cdp_opts copts = {s->opts.connect_ms, 0, NULL};
        struct vg_cdp *c2 = NULL;
        char why[VG_CDP_ERR_MAX];
        rc = vg_node_inspector_find(s->opts.proc_root, s->pid, &s->nopts, &copts, &ep2, why,
                                    sizeof(why));
        if (rc == 0 && vg_cdp_open(&ep2.addr, ep2.path, &copts, &c2, why, sizeof(why)) < 0)
            rc = VG_ECONNREFUSED;
        if (rc && !listens(s, l->ep.addr.port)) {
            rc = 0; /* it closed meanwhile */
            break;
        }
        if (rc) {
            snprintf(err, err_len,
                     "pid %d: its inspector opened again after vigil closed it, and cannot be "
                     "reached to close it: %s",
                     s->pid, why);
            break;
        }
        vg_log(VG_LOG_INFO, COMPONENT,
               "pid %d: the inspector %s (Node's second SIGUSR1 path ran late): closing it "
               "again",
               s->pid,
               still ? "still listens after process._debugEnd()" : "opened again after its close");
        rc =
            vg_node_inspector_deactivate(s->opts.proc_root, s->pid, c2, &ep2,
                                         again == 2 ? CLOSE_WAIT_MS : RETRY_CLOSE_MS, err, err_len);
    }
    uint64_t open_ms = vg_mono_ms() - l->since;
    l->open = false;
    lease_give(l, true);
    if (exposure_ms)
        *exposure_ms = open_ms;
    if (rc == 0)
        vg_log(VG_LOG_INFO, COMPONENT,
               "pid %d: closed the inspector vigil opened (open %" PRIu64 " ms)", s->pid, open_ms);
    else
        vg_log(VG_LOG_ERROR, COMPONENT, "pid %d: %s", s->pid, err);
    free(s);
    return rc;
}

const struct vg_node_options *vg_node_session_options(const struct vg_node_session *s)
{
    return &s->nopts;
}

static int fail(struct vg_node_session *s, int rc, const char *what, char *err, size_t err_len)
{
    const char *why = vg_cdp_error(s->cdp);
    snprintf(err, err_len, "pid %d: %s: %s", s->pid, what, why[0] ? why : vg_strerror(rc));
    return rc;
}

int vg_node_heap_usage(struct vg_node_session *s, uint64_t *used, uint64_t *total, char *err,
                       size_t err_len)
{
    json_t *res = NULL;
    /* answered on the main thread: as late as the app's JavaScript (or a heap snapshot) lets it */
    int rc = vg_cdp_call(s->cdp, "Runtime.getHeapUsage", NULL, s->opts.timeout_ms, 0, &res);
    if (rc < 0)
        return fail(s, rc, "Runtime.getHeapUsage", err, err_len);
    json_t *u = json_object_get(res, "usedSize"), *t = json_object_get(res, "totalSize");
    if (!json_is_number(u) || !json_is_number(t) || json_number_value(u) < 0 ||
        json_number_value(t) < 0) {
        json_decref(res);
        snprintf(err, err_len, "pid %d: Runtime.getHeapUsage: malformed result", s->pid);
        return VG_EPROTO;
    }
    *used = (uint64_t)json_number_value(u);
    *total = (uint64_t)json_number_value(t);
    json_decref(res);
    return 0;
}

static int snapshot_event(void *ctx, const char *method, json_t *params)
{
    struct vg_node_session *s = ctx;
    if (strcmp(method, "HeapProfiler.addHeapSnapshotChunk") != 0)
        return 0;
    json_t *chunk = json_object_get(params, "chunk");
    if (!json_is_string(chunk))
        return VG_EPROTO;
    size_t n = json_string_length(chunk);
    int rc = s->sink(s->sink_ctx, json_string_value(chunk), n);
    if (rc == 0)
        s->bytes += n;
    return rc;
}

int vg_node_heap_snapshot(struct vg_node_session *s, vg_node_sink_fn sink, void *ctx,
                          uint64_t *bytes, char *err, size_t err_len)
{
    s->sink = sink;
    s->sink_ctx = ctx;
    s->bytes = 0;
    vg_cdp_on_event(s->cdp, snapshot_event, s);
    /* reportProgress keeps bytes flowing while V8 walks a large heap before the first chunk, so
     * the idle bound tells a stalled target from a busy one. */
    json_t *params = json_pack("{sb}", "reportProgress", 1);
    int rc = vg_cdp_call(s->cdp, "HeapProfiler.takeHeapSnapshot", params, s->opts.timeout_ms,
                         s->opts.idle_ms, NULL);
    json_decref(params);
    vg_cdp_on_event(s->cdp, NULL, NULL);
    *bytes = s->bytes;
    if (rc == 0 && s->bytes == 0) {
        snprintf(err, err_len, "pid %d: HeapProfiler.takeHeapSnapshot sent no chunk", s->pid);
        return VG_EPROTO;
    }
    return rc < 0 ? fail(s, rc, "heap snapshot", err, err_len) : 0;
}

int vg_node_cpu_profile(struct vg_node_session *s, uint32_t duration_ms, vg_node_sink_fn sink,
                        void *ctx, uint64_t *bytes, char *err, size_t err_len)
{
    const char *step = "Profiler.enable";
    *bytes = 0;
    int rc = vg_cdp_call(s->cdp, step, NULL, CALL_MS, 0, NULL);
    if (rc == 0)
        rc = vg_cdp_call(s->cdp, step = "Profiler.start", NULL, CALL_MS, 0, NULL);
    /* duration_ms 0: until s->opts.stop (durationSeconds=-1) */
    if (rc == 0 && (rc = vg_cdp_wait_until(s->cdp, duration_ms, s->opts.stop)) < 0)
        step = "the profile's duration";
    if (rc == 0)
        rc = vg_cdp_call_stream(s->cdp, step = "Profiler.stop", NULL, "{\"profile\":", 1, sink, ctx,
                                s->opts.timeout_ms, s->opts.idle_ms, bytes);
    if (rc == 0)
        rc = vg_cdp_call(s->cdp, step = "Profiler.disable", NULL, CALL_MS, 0, NULL);
    /* On failure closing the session is enough: node stops a session's profiler when the
     * session ends. */
    return rc < 0 ? fail(s, rc, step, err, err_len) : 0;
}

static int pause_event(void *ctx, const char *method, json_t *params)
{
    struct vg_node_session *s = ctx;
    if (strcmp(method, "Debugger.paused") == 0 && !s->paused)
        s->paused = json_incref(params);
    return 0;
}

/* Whether the target's main thread (tid = pid) is running or waiting for a CPU ('R'). */
static bool main_thread_runnable(const struct vg_node_session *s)
{
    char path[PATH_MAX], buf[1024];
    snprintf(path, sizeof(path), "%s/%d/task/%d/stat",
             s->opts.proc_root ? s->opts.proc_root : "/proc", s->pid, s->pid);
    ssize_t n = vg_procfs_read(AT_FDCWD, path, buf, sizeof(buf));
    struct vg_proc_stat st;
    return n > 0 && vg_procfs_parse_stat(buf, (size_t)n, &st) == 0 && st.state == 'R';
}

#define REPORT_EXPR "globalThis.process.report.getReport()"
#define VALUE_PREFIX "{\"result\":{\"type\":\"object\",\"value\":"

int vg_node_report(struct vg_node_session *s, vg_node_sink_fn sink, void *ctx, uint64_t *bytes,
                   char *err, size_t err_len)
{
    const char *step = "Debugger.enable";
    json_t *params = NULL;
    *bytes = 0;
    json_decref(s->paused);
    s->paused = NULL;
    vg_cdp_on_event(s->cdp, pause_event, s);
    int rc = vg_cdp_call(s->cdp, step, NULL, CALL_MS, 0, NULL);
    if (rc == 0)
        rc = vg_cdp_call(s->cdp, step = "Debugger.pause", NULL, CALL_MS, 0, NULL);
    /* A busy main thread pauses as soon as it runs (the inspector interrupts it); an idle one
     * only when it next runs JavaScript. Idle is what the kernel says: the main thread not
     * runnable (asleep in its event loop) for PAUSE_WAIT_MS; then report without the pause. A
     * runnable thread is waited for (up to CALL_MS): on a loaded machine it may wait for a CPU
     * longer than that. */
    uint64_t t0 = vg_mono_ms(), idle_since = t0;
    while (rc == 0 && !s->paused && vg_mono_ms() - t0 < CALL_MS &&
           vg_mono_ms() - idle_since < PAUSE_WAIT_MS) {
        rc = vg_cdp_wait(s->cdp, 50);
        if (main_thread_runnable(s))
            idle_since = vg_mono_ms();
    }
    const char *frame = NULL;
    json_t *frames = json_object_get(s->paused, "callFrames");
    frame = json_string_value(json_object_get(json_array_get(frames, 0), "callFrameId"));
    if (rc == 0 && frame) {
        params = json_pack("{sssssbsbsb}", "callFrameId", frame, "expression", REPORT_EXPR,
                           "returnByValue", 1, "silent", 1, "throwOnSideEffect", 0);
        rc = params ? vg_cdp_call_stream(s->cdp, step = "Debugger.evaluateOnCallFrame", params,
                                         VALUE_PREFIX, 2, sink, ctx, s->opts.timeout_ms,
                                         s->opts.idle_ms, bytes)
                    : VG_ENOMEM;
    } else if (rc == 0) {
        /* Not paused: cancel the pending pause request first, so the app does not stop later. */
        rc = vg_cdp_call(s->cdp, step = "Debugger.disable", NULL, CALL_MS, 0, NULL);
        params = json_pack("{sssbsb}", "expression", REPORT_EXPR, "returnByValue", 1, "silent", 1);
        if (rc == 0)
            rc = params
                     ? vg_cdp_call_stream(s->cdp, step = "Runtime.evaluate", params, VALUE_PREFIX,
                                          2, sink, ctx, s->opts.timeout_ms, s->opts.idle_ms, bytes)
                     : VG_ENOMEM;
    }
    if (rc == 0 && frame)
        rc = vg_cdp_call(s->cdp, step = "Debugger.resume", NULL, CALL_MS, 0, NULL);
    if (rc == 0 && frame)
        rc = vg_cdp_call(s->cdp, step = "Debugger.disable", NULL, CALL_MS, 0, NULL);
    json_decref(params);
    vg_cdp_on_event(s->cdp, NULL, NULL);
    /* On failure the session is closed by the caller, and node resumes a paused main thread
     * when the session that paused it goes away. */
    return rc < 0 ? fail(s, rc, step, err, err_len) : 0;
}
