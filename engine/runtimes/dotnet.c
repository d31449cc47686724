/* The .NET adapter: detection, what the runtime says about itself (ProcessInfo: the runtime
 * instance cookie, the entry assembly, the runtime version), the listen-mode diagnostic port
 * (dotnet-monitor's DiagnosticPort: runtimes started with DOTNET_DiagnosticPorts connect to
 * vigil, and a `suspend` one goes on only once its rules are armed), and actions through the
 * diagnostic IPC: CollectDump written by the runtime itself, Get/SetEnvironmentVariable.
 *
 * The protocol is engine/runtimes/dotnet/ipc.h. Everything that talks to a runtime runs on a
 * thread of its own (vg_rt_job_thread) and reports back on the loop thread, where all the state
 * below lives; the listen server's thread only hands events over through a uv_async. */
#include "engine/runtimes/runtime.h"

#include "config/error.h"
#include "config/log.h"
#include "config/settings.h"
#include "config/util.h"
#include "engine/host/proc.h"
#include "engine/host/procfs.h"
#include "engine/runtimes/dotnet/livemetrics_action.h"
#include "engine/runtimes/dotnet/logs_action.h"
#include "engine/runtimes/dotnet/session.h"
#include "engine/runtimes/dotnet/trace_action.h"
#include "engine/runtimes/dotnet/ipc.h"
#include "rules/action.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INFO_TIMEOUT_MS 5000
#define DUMP_TIMEOUT_MS (10 * 60 * 1000)
#define RESUME_DEADLINE_MS 30000 /* a runtime held at startup goes on by then, armed or not */
#define FETCH_TRIES 10           /* connect mode: the socket may appear a moment late */
#define FETCH_PAUSE_MS 300

static const char *const exe_names[] = {"dotnet", NULL};
static const char *const map_markers[] = {"/libcoreclr.so", NULL};

/* ---- what a runtime says about itself ---- */

struct dn_info {
    bool have;
    uint8_t cookie[16];
    char cookie_str[37];
    char *entry, *version, *os, *arch, *rid, *cmdline;
};

static void info_free(struct dn_info *i)
{
    free(i->entry);
    free(i->version);
    free(i->os);
    free(i->arch);
    free(i->rid);
    free(i->cmdline);
    memset(i, 0, sizeof(*i));
}

/* Takes pi's strings. */
static void info_take(struct dn_info *i, struct vg_dnipc_process_info *pi)
{
    info_free(i);
    i->have = true;
    memcpy(i->cookie, pi->cookie, 16);
    vg_dnipc_cookie_format(pi->cookie, i->cookie_str);
    i->entry = pi->entry_assembly;
    i->version = pi->clr_version;
    i->os = pi->os;
    i->arch = pi->arch;
    i->rid = pi->rid;
    i->cmdline = pi->command_line;
    memset(pi, 0, sizeof(*pi));
}

static int info_copy(struct dn_info *dst, const struct dn_info *src)
{
    info_free(dst);
    *dst = *src;
    dst->entry = vg_strdup(src->entry ? src->entry : "");
    dst->version = vg_strdup(src->version ? src->version : "");
    dst->os = vg_strdup(src->os ? src->os : "");
    dst->arch = vg_strdup(src->arch ? src->arch : "");
    dst->rid = vg_strdup(src->rid ? src->rid : "");
    dst->cmdline = vg_strdup(src->cmdline ? src->cmdline : "");
    if (!dst->entry || !dst->version || !dst->os || !dst->arch || !dst->rid || !dst->cmdline) {
        info_free(dst);
        return VG_ENOMEM;
    }
    return 0;
}

extern const struct vg_runtime_type vg_runtime_dotnet;

/* ---- state (loop thread) ---- */

struct dn_rt;

/* Per process (vg_proc.runtime_data). */
struct dn_proc {
    struct vg_proc *p;
    struct dn_info info;
    struct dn_rt *rt; /* the runtime connected to our listen port, or NULL */
    bool fetching;    /* a connect-mode ProcessInfo is in flight */
    bool orphan;      /* forgotten meanwhile: the fetch frees it */
};

/* A runtime connected to the listen-mode port. */
struct dn_rt {
    struct vg_dnipc_runtime r;
    struct dn_info info;
    struct dn_proc *dp;  /* the process it runs in, when vigil sees it */
    struct vg_proc *ext; /* ... or the external process made for it (another pid namespace) */
    uint64_t added_ms;
    uint64_t refresh_at; /* when to ask ProcessInfo again (after a resume), 0: never */
    int refreshes;
    bool info_busy, resume_busy, resumed, gone;
    struct dn_rt *next;
};

struct dn_event {
    bool added;
    struct vg_dnipc_runtime r;
    struct dn_event *next;
};

static struct {
    bool started, stopping;
    struct vg_rt_host host;
    char *dump_temp; /* Storage.DumpTempFolder (or DefaultSharedPath/dumps), or NULL */
    /* GlobalCounter's intervals for the actions' sessions (CollectLiveMetrics) */
    uint64_t interval_ms;
    struct vg_rt_interval *intervals; /* provider names owned */
    size_t n_intervals;
    unsigned max_histograms, max_time_series; /* GlobalCounter's, for every metrics session */
    char *port;                               /* listen mode: the socket path */
    struct vg_dnipc_server *srv;
    unsigned srv_refs; /* the serve thread and every job using srv */
    pthread_t thread;
    bool thread_running;
    atomic_bool stop;
    uv_async_t async;
    uv_timer_t timer;
    bool handles;
    pthread_mutex_t mu;
    struct dn_event *events, **events_tail;
    struct dn_rt *rts;
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void srv_unref(void)
{
    if (G.srv_refs && --G.srv_refs == 0) {
        vg_dnipc_server_destroy(G.srv);
        G.srv = NULL;
    }
}

static struct dn_rt *rt_by_cookie(const uint8_t cookie[16])
{
    for (struct dn_rt *r = G.rts; r; r = r->next)
        if (!r->gone && memcmp(r->r.cookie, cookie, 16) == 0)
            return r;
    return NULL;
}

static struct dn_rt *rt_by_host_pid(int pid)
{
    for (struct dn_rt *r = G.rts; r; r = r->next)
        if (!r->gone && r->r.host_pid == pid && pid > 0)
            return r;
    return NULL;
}

static void rt_unlink_free(struct dn_rt *rt)
{
    for (struct dn_rt **pp = &G.rts; *pp; pp = &(*pp)->next)
        if (*pp == rt) {
            *pp = rt->next;
            break;
        }
    info_free(&rt->info);
    free(rt);
}

/* Frees rt once no job holds it. */
static void rt_release(struct dn_rt *rt)
{
    if (rt->gone && !rt->info_busy && !rt->resume_busy)
        rt_unlink_free(rt);
}

static void attach(struct dn_proc *dp, struct dn_rt *rt)
{
    if (rt->dp && rt->dp != dp)
        rt->dp->rt = NULL;
    dp->rt = rt;
    rt->dp = dp;
    if (rt->info.have)
        info_copy(&dp->info, &rt->info);
}

/* ---- internal jobs: a thread each, reporting on the loop thread ---- */

enum job_kind { J_FETCH, J_RT_INFO, J_RT_REFRESH, J_RESUME };

struct ijob {
    struct vg_rt_job job; /* only loop/state are used: vg_rt_job_thread's carrier */
    enum job_kind kind;
    struct dn_proc *dp;
    struct dn_rt *rt;
    int pid;
    char proc_root[256];
    struct vg_dnipc_endpoint ep;
    struct vg_dnipc_process_info pi;
    int rc;
    char err[512];
};

static void ijob_work(struct vg_rt_job *j)
{
    struct ijob *x = j->state;
    struct vg_dnipc_io io = {
        .timeout_ms = INFO_TIMEOUT_MS, .cancel = &G.stop, .err = x->err, .errlen = sizeof(x->err)};
    switch (x->kind) {
    case J_FETCH:
        for (int i = 0; i < FETCH_TRIES && !atomic_load(&G.stop); i++) {
            char path[4096];
            x->rc = vg_dnipc_find_socket(x->proc_root, x->pid, path, sizeof(path), &io);
            if (x->rc == VG_ENOENT) {
                usleep(FETCH_PAUSE_MS * 1000);
                continue;
            }
            if (x->rc == 0) {
                char what[32];
                snprintf(what, sizeof(what), "pid %d", x->pid);
                vg_dnipc_endpoint_path(&x->ep, path, what);
                x->rc = vg_dnipc_process_info(&x->ep, &io, &x->pi);
            }
            break;
        }
        break;
    case J_RT_INFO:
    case J_RT_REFRESH:
        x->rc = vg_dnipc_process_info(&x->ep, &io, &x->pi);
        break;
    case J_RESUME:
        x->rc = vg_dnipc_resume_runtime(&x->ep, &io);
        break;
    }
}

static void rt_resume(struct dn_rt *rt, const char *why);
static void rt_refresh(struct dn_rt *rt);

/* A process for a runtime vigil cannot see in /proc, so rules and the API reach it. */
static bool add_external(struct dn_rt *rt)
{
    if (!G.host.add_external)
        return false;
    struct dn_proc *dp = calloc(1, sizeof(*dp));
    if (!dp)
        return false;
    attach(dp, rt);
    /* its name: the entry assembly, else the program of its command line */
    char name[64] = "dotnet";
    if (rt->info.entry && rt->info.entry[0]) {
        snprintf(name, sizeof(name), "%s", rt->info.entry);
    } else if (rt->info.cmdline && rt->info.cmdline[0]) {
        size_t n = strcspn(rt->info.cmdline, " ");
        const char *b = rt->info.cmdline;
        for (const char *q = b; q < rt->info.cmdline + n; q++)
            if (*q == '/')
                b = q + 1;
        snprintf(name, sizeof(name), "%.*s", (int)(rt->info.cmdline + n - b), b);
    }
    uint64_t key = 1469598103934665603ull; /* FNV-1a of the cookie */
    for (int i = 0; i < 16; i++)
        key = (key ^ rt->r.cookie[i]) * 1099511628211ull;
    char key_str[64];
    snprintf(key_str, sizeof(key_str), "dotnet:%s", rt->info.cookie_str);
    struct vg_proc_external x = {.key = key,
                                 .key_str = key_str,
                                 .ns_pid = (int)rt->r.pid,
                                 .uid = (unsigned)rt->r.uid,
                                 .name = name,
                                 .cmdline = rt->info.cmdline,
                                 .runtime = &vg_runtime_dotnet,
                                 .runtime_data = dp};
    struct vg_proc *p = G.host.add_external(&x, G.host.arg);
    if (!p) {
        dp->rt = NULL;
        rt->dp = NULL;
        info_free(&dp->info);
        free(dp);
        return false;
    }
    dp->p = p;
    rt->ext = p;
    return true;
}

static void ijob_after(struct vg_rt_job *j)
{
    struct ijob *x = j->state;
    switch (x->kind) {
    case J_FETCH: {
        struct dn_proc *dp = x->dp;
        dp->fetching = false;
        if (dp->orphan) {
            info_free(&dp->info);
            free(dp);
            break;
        }
        if (x->rc) {
            vg_log(VG_LOG_DEBUG, "dotnet", "pid %d: no ProcessInfo: %s", x->pid,
                   x->err[0] ? x->err : vg_strerror(x->rc));
            break;
        }
        if (!dp->rt) /* a listen-mode runtime's own answer wins */
            info_take(&dp->info, &x->pi);
        if (G.started && G.host.changed)
            G.host.changed(dp->p, G.host.arg);
        break;
    }
    case J_RT_INFO: {
        struct dn_rt *rt = x->rt;
        rt->info_busy = false;
        if (rt->gone || !G.started) {
            rt_release(rt);
            break;
        }
        if (x->rc) {
            vg_log(VG_LOG_WARN, "dotnet", "%s", x->err[0] ? x->err : vg_strerror(x->rc));
            rt_resume(rt, "its ProcessInfo failed");
            break;
        }
        info_take(&rt->info, &x->pi);
        vg_log(VG_LOG_INFO, "dotnet",
               "runtime %s connected to %s: pid %" PRIu64 " (%s here), %s, .NET %s",
               rt->info.cookie_str, G.port, rt->r.pid,
               rt->r.host_pid > 0 ? "visible" : "not visible",
               rt->info.entry && rt->info.entry[0] ? rt->info.entry : "?", rt->info.version);
        if (rt->r.host_pid <= 0) {
            /* another pid namespace (a sidecar): known through its runtime only */
            if (!add_external(rt))
                rt_resume(rt, "it runs in a pid namespace vigil cannot see");
            break;
        }
        struct vg_proc *p = G.host.find ? G.host.find(rt->r.host_pid, G.host.arg) : NULL;
        if (p && p->runtime && !strcmp(p->runtime->name, "dotnet") && p->runtime_data) {
            attach(p->runtime_data, rt);
            G.host.changed(p, G.host.arg);
        } else if (G.host.rescan) {
            G.host.rescan(G.host.arg); /* detection finds it in G.rts */
        }
        break;
    }
    case J_RT_REFRESH: {
        /* after a resume: a runtime held at startup reported its command line without the
         * arguments */
        struct dn_rt *rt = x->rt;
        rt->info_busy = false;
        if (rt->gone || !G.started || x->rc) {
            rt_release(rt);
            break;
        }
        info_take(&rt->info, &x->pi);
        if (rt->dp) {
            info_copy(&rt->dp->info, &rt->info);
            if (rt->dp->p && rt->dp->p->external) {
                free(rt->dp->p->cmdline);
                rt->dp->p->cmdline = vg_strdup(rt->info.cmdline ? rt->info.cmdline : "");
            }
            if (rt->dp->p)
                G.host.changed(rt->dp->p, G.host.arg);
        }
        break;
    }
    case J_RESUME: {
        struct dn_rt *rt = x->rt;
        rt->resume_busy = false;
        if (x->rc == 0) {
            rt->resumed = true;
            rt->refresh_at = vg_mono_ms() + 1000;
        } else if (!rt->gone) {
            vg_log(VG_LOG_WARN, "dotnet", "%s", x->err[0] ? x->err : vg_strerror(x->rc));
            rt->resumed = true; /* it answered nothing we can fix by asking again */
        }
        rt_release(rt);
        break;
    }
    }
    bool uses_srv = x->kind != J_FETCH;
    vg_dnipc_process_info_free(&x->pi);
    free(x);
    if (uses_srv)
        srv_unref();
}

static int ijob_start(struct ijob *x)
{
    x->job.loop = G.host.loop;
    x->job.state = x;
    bool uses_srv = x->kind != J_FETCH;
    if (uses_srv)
        G.srv_refs++;
    int rc = vg_rt_job_thread(&x->job, ijob_work, ijob_after);
    if (rc) {
        if (uses_srv)
            srv_unref();
        free(x);
    }
    return rc;
}

static void rt_resume(struct dn_rt *rt, const char *why)
{
    if (rt->resumed || rt->resume_busy || rt->gone || !G.srv)
        return;
    struct ijob *x = calloc(1, sizeof(*x));
    if (!x)
        return;
    x->kind = J_RESUME;
    x->rt = rt;
    char what[64];
    snprintf(what, sizeof(what), "runtime pid %" PRIu64, rt->r.pid);
    vg_dnipc_server_endpoint(&x->ep, G.srv, rt->r.cookie, what);
    vg_log(VG_LOG_INFO, "dotnet", "resuming runtime %s (pid %" PRIu64 "): %s",
           rt->info.have ? rt->info.cookie_str : "?", rt->r.pid, why);
    rt->resume_busy = true;
    if (ijob_start(x))
        rt->resume_busy = false;
}

static void rt_refresh(struct dn_rt *rt)
{
    if (rt->info_busy || rt->gone || !G.srv || !G.started)
        return;
    struct ijob *x = calloc(1, sizeof(*x));
    if (!x)
        return;
    x->kind = J_RT_REFRESH;
    x->rt = rt;
    char what[64];
    snprintf(what, sizeof(what), "runtime pid %" PRIu64, rt->r.pid);
    vg_dnipc_server_endpoint(&x->ep, G.srv, rt->r.cookie, what);
    rt->info_busy = true;
    if (ijob_start(x))
        rt->info_busy = false;
}

/* ---- the listen server's events ---- */

static void on_added(void *ctx, const struct vg_dnipc_runtime *r)
{
    struct dn_event *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    e->added = true;
    e->r = *r;
    pthread_mutex_lock(&G.mu);
    *G.events_tail = e;
    G.events_tail = &e->next;
    pthread_mutex_unlock(&G.mu);
    uv_async_send(&G.async);
}

static void on_removed(void *ctx, const struct vg_dnipc_runtime *r)
{
    struct dn_event *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    e->r = *r;
    pthread_mutex_lock(&G.mu);
    *G.events_tail = e;
    G.events_tail = &e->next;
    pthread_mutex_unlock(&G.mu);
    uv_async_send(&G.async);
}

static void event_added(const struct vg_dnipc_runtime *r)
{
    struct dn_rt *rt = calloc(1, sizeof(*rt));
    struct ijob *x = calloc(1, sizeof(*x));
    if (!rt || !x) {
        free(rt);
        free(x);
        return;
    }
    rt->r = *r;
    rt->added_ms = vg_mono_ms();
    rt->next = G.rts;
    G.rts = rt;
    x->kind = J_RT_INFO;
    x->rt = rt;
    char what[64];
    snprintf(what, sizeof(what), "runtime pid %" PRIu64, r->pid);
    vg_dnipc_server_endpoint(&x->ep, G.srv, r->cookie, what);
    rt->info_busy = true;
    if (ijob_start(x))
        rt->info_busy = false;
}

static void event_removed(const struct vg_dnipc_runtime *r)
{
    struct dn_rt *rt = rt_by_cookie(r->cookie);
    if (!rt)
        return;
    char c[37];
    vg_dnipc_cookie_format(r->cookie, c);
    vg_log(VG_LOG_INFO, "dotnet", "runtime %s (pid %" PRIu64 ") left %s", c, r->pid, G.port);
    if (rt->ext) { /* its process goes with it (forgetting it detaches rt->dp) */
        struct vg_proc *p = rt->ext;
        rt->ext = NULL;
        G.host.remove_external(p, G.host.arg);
    }
    if (rt->dp)
        rt->dp->rt = NULL; /* the process keeps what it learned; commands go by pid now */
    rt->dp = NULL;
    rt->gone = true;
    rt_release(rt);
}

static void on_async(uv_async_t *a)
{
    pthread_mutex_lock(&G.mu);
    struct dn_event *e = G.events;
    G.events = NULL;
    G.events_tail = &G.events;
    pthread_mutex_unlock(&G.mu);
    while (e) {
        struct dn_event *next = e->next;
        if (G.started && G.srv) {
            if (e->added)
                event_added(&e->r);
            else
                event_removed(&e->r);
        }
        free(e);
        e = next;
    }
}

/* Runtimes nobody armed in time are let go: a vigil problem must never hold an app. */
static void on_timer(uv_timer_t *t)
{
    uint64_t now = vg_mono_ms();
    /* a runtime held at startup gave its command line without the arguments: once it runs,
     * ask again (twice: the host hands them over a moment after the resume) */
    for (struct dn_rt *rt = G.rts; rt; rt = rt->next)
        if (rt->refresh_at && now >= rt->refresh_at && !rt->info_busy && !rt->gone) {
            rt->refresh_at = ++rt->refreshes < 2 ? now + 4000 : 0;
            rt_refresh(rt);
        }
    for (struct dn_rt *rt = G.rts; rt; rt = rt->next)
        if (!rt->resumed && !rt->resume_busy && !rt->gone &&
            now - rt->added_ms > RESUME_DEADLINE_MS)
            rt_resume(rt, rt->dp ? "its rules were not armed within 30 s"
                                 : "vigil found no process for it within 30 s");
}

static void *serve_main(void *arg)
{
    struct vg_dnipc_server_cbs cbs = {on_added, on_removed, NULL};
    int rc = vg_dnipc_server_serve(G.srv, &cbs, &G.stop);
    if (rc)
        vg_log(VG_LOG_ERROR, "dotnet", "diagnostic port %s stopped: %s", G.port, vg_strerror(rc));
    return NULL;
}

/* ---- lifecycle ---- */

static void drop_intervals(void)
{
    for (size_t i = 0; i < G.n_intervals; i++)
        free((char *)G.intervals[i].provider);
    free(G.intervals);
    G.intervals = NULL;
    G.n_intervals = 0;
    G.interval_ms = 0;
    G.max_histograms = 0;
    G.max_time_series = 0;
}

static void take_settings(const struct vg_settings *s)
{
    free(G.dump_temp);
    G.dump_temp = s && s->storage.dump_temp_folder ? vg_strdup(s->storage.dump_temp_folder) : NULL;
    drop_intervals();
    const struct vg_global_counter_settings *gc = s ? &s->global_counter : NULL;
    if (!gc)
        return;
    G.interval_ms = (uint64_t)(gc->interval_seconds * 1000 + 0.5);
    G.max_histograms = gc->max_histograms;
    G.max_time_series = gc->max_time_series;
    G.intervals = gc->n_providers ? calloc(gc->n_providers, sizeof(*G.intervals)) : NULL;
    for (size_t i = 0; G.intervals && i < gc->n_providers; i++) {
        char *name = vg_strdup(gc->providers[i].name);
        if (!name)
            break; /* out of memory: that provider and the next take the global interval */
        G.intervals[G.n_intervals++] = (struct vg_rt_interval){
            name, (uint64_t)(gc->providers[i].interval_seconds * 1000 + 0.5)};
    }
}

void vg__dotnet_meter_args(struct vg_buf *b, uint64_t refresh_ms)
{
    vg_buf_printf(b, ";RefreshInterval=%g;MaxTimeSeries=%u;MaxHistograms=%u",
                  (double)refresh_ms / 1000,
                  G.max_time_series ? G.max_time_series : VG_DOTNET_MAX_TIME_SERIES,
                  G.max_histograms ? G.max_histograms : VG_DOTNET_MAX_HISTOGRAMS);
}

void vg__dotnet_counter_intervals(struct vg_rt_needs *out)
{
    out->interval_ms = G.interval_ms;
    out->intervals = G.intervals;
    out->n_intervals = G.n_intervals;
}

static int dotnet_start(const struct vg_rt_host *host, const struct vg_settings *s, char *err,
                        size_t errlen)
{
    G.host = *host;
    G.started = true;
    G.stopping = false;
    atomic_store(&G.stop, false);
    G.events = NULL;
    G.events_tail = &G.events;
    take_settings(s);
    const struct vg_diagnostic_port_settings *dp = &s->diagnostic_port;
    if (dp->mode != VG_DIAG_PORT_LISTEN || !dp->endpoint_name)
        return 0;
    struct vg_dnipc_server_opts so = {.delete_existing = dp->delete_endpoint_on_startup,
                                      .max_connections = (int)dp->max_connections};
    int rc = vg_dnipc_server_open(dp->endpoint_name, &so, &G.srv, err, errlen);
    if (rc) {
        G.started = false;
        return rc;
    }
    G.port = vg_strdup(dp->endpoint_name);
    G.srv_refs = 1;
    uv_async_init(host->loop, &G.async, on_async);
    uv_timer_init(host->loop, &G.timer);
    uv_timer_start(&G.timer, on_timer, 1000, 1000);
    G.handles = true;
    if (pthread_create(&G.thread, NULL, serve_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the diagnostic port thread");
        return VG_EIO;
    }
    G.thread_running = true;
    vg_log(VG_LOG_INFO, "dotnet",
           "diagnostic port listening on %s (runtimes connect with "
           "DOTNET_DiagnosticPorts=%s,suspend)",
           dp->endpoint_name, dp->endpoint_name);
    return 0;
}

static void dotnet_configure(const struct vg_settings *s)
{
    const struct vg_diagnostic_port_settings *dp = &s->diagnostic_port;
    bool listen = dp->mode == VG_DIAG_PORT_LISTEN && dp->endpoint_name;
    if (listen != (G.port != NULL) || (listen && strcmp(dp->endpoint_name, G.port) != 0))
        vg_log(VG_LOG_WARN, "dotnet",
               "DiagnosticPort changed: restart vigil to apply it (still %s%s)",
               G.port ? "listening on " : "connecting to runtimes", G.port ? G.port : "");
    take_settings(s);
}

/* At shutdown only (blocks the loop for a moment). */
static int resume_now(const struct vg_dnipc_runtime *r)
{
    char err[256] = "";
    struct vg_dnipc_io io = {.timeout_ms = 1000, .err = err, .errlen = sizeof(err)};
    struct vg_dnipc_endpoint ep;
    vg_dnipc_server_endpoint(&ep, G.srv, r->cookie, NULL);
    int rc = vg_dnipc_resume_runtime(&ep, &io);
    vg_log(rc ? VG_LOG_WARN : VG_LOG_INFO, "dotnet", "shutdown: runtime pid %" PRIu64 " %s%s",
           r->pid, rc ? "could not be resumed: " : "resumed so it does not wait for vigil",
           rc ? err : "");
    return rc;
}

static void dotnet_stop(void)
{
    if (!G.started)
        return;
    G.started = false;
    G.stopping = true;
    atomic_store(&G.stop, true);
    if (G.thread_running) {
        pthread_join(G.thread, NULL);
        G.thread_running = false;
    }
    if (G.handles) {
        uv_close((uv_handle_t *)&G.async, NULL);
        uv_close((uv_handle_t *)&G.timer, NULL);
        G.handles = false;
    }
    /* A runtime held at startup must not stay held because vigil goes away: let every one
     * not resumed yet go on (bounded: one short wait each, at shutdown only). */
    for (struct dn_rt *rt = G.rts; rt && G.srv; rt = rt->next)
        if (!rt->resumed && !rt->gone && !rt->resume_busy)
            rt->resumed = resume_now(&rt->r) == 0;
    pthread_mutex_lock(&G.mu);
    for (struct dn_event *e = G.events; e && G.srv; e = e->next)
        if (e->added && !rt_by_cookie(e->r.cookie))
            resume_now(&e->r); /* connected just now, not seen by the loop yet */
    pthread_mutex_unlock(&G.mu);
    pthread_mutex_lock(&G.mu);
    while (G.events) {
        struct dn_event *n = G.events->next;
        free(G.events);
        G.events = n;
    }
    G.events_tail = &G.events;
    pthread_mutex_unlock(&G.mu);
    for (struct dn_rt *rt = G.rts, *next; rt; rt = next) {
        next = rt->next;
        rt->ext = NULL; /* stays in the table, freed with it */
        if (rt->dp)
            rt->dp->rt = NULL;
        rt->dp = NULL;
        rt->gone = true;
        rt_release(rt);
    }
    if (G.srv)
        srv_unref(); /* jobs still running hold it until they end (G.stop cancels them) */
    free(G.port);
    G.port = NULL;
    free(G.dump_temp);
    G.dump_temp = NULL;
    drop_intervals();
}

/* ---- detection and facts ---- */

/* The runtime listens on $TMPDIR/dotnet-diagnostic-{pid}-{start ticks}-socket, {pid} as seen in
 * its own PID namespace, reachable through its root. */
static bool has_socket(const struct vg_proc *p, const char *tmpdir)
{
    char rel[512];
    struct stat sb;
    snprintf(rel, sizeof(rel), "%d/root%s/dotnet-diagnostic-%d-%llu-socket", p->pid, tmpdir,
             p->ns_pid, (unsigned long long)p->start_ticks);
    return fstatat(vg_proc_table_root_fd(p->table), rel, &sb, 0) == 0 && S_ISSOCK(sb.st_mode);
}

/* TMPDIR from the process's environment, or "" when unset (bounded read). */
static void env_tmpdir(const struct vg_proc *p, char *out, size_t n)
{
    char buf[32768], rel[32];
    out[0] = '\0';
    snprintf(rel, sizeof(rel), "%d/environ", p->pid);
    ssize_t len = vg_procfs_read(vg_proc_table_root_fd(p->table), rel, buf, sizeof(buf));
    for (ssize_t i = 0; i < len;) {
        const char *e = buf + i;
        size_t el = strnlen(e, (size_t)(len - i));
        if (el > 7 && memcmp(e, "TMPDIR=", 7) == 0 && e[7] == '/') {
            snprintf(out, n, "%.*s", (int)(el - 7), e + 7);
            while (strlen(out) > 1 && out[strlen(out) - 1] == '/')
                out[strlen(out) - 1] = '\0';
            return;
        }
        i += (ssize_t)el + 1;
    }
}

static bool is_dotnet(const struct vg_proc *p, bool marked)
{
    if (marked || has_socket(p, "/tmp") || rt_by_host_pid(p->pid))
        return true;
    char tmp[256];
    env_tmpdir(p, tmp, sizeof(tmp));
    return tmp[0] && strcmp(tmp, "/tmp") != 0 && has_socket(p, tmp);
}

static bool dotnet_claims(const struct vg_proc *p)
{
    return rt_by_host_pid(p->pid) != NULL;
}

static enum vg_rt_detect dotnet_detect(const struct vg_proc *p, bool marked, void **data)
{
    if (!is_dotnet(p, marked))
        return VG_RT_NO;
    struct dn_proc *dp = calloc(1, sizeof(*dp));
    if (!dp)
        return VG_RT_YES;        /* still .NET, without facts */
    dp->p = (struct vg_proc *)p; /* the daemon's own; `changed` hands it back */
    *data = dp;
    struct dn_rt *rt = rt_by_host_pid(p->pid);
    if (rt && rt->info.have) {
        attach(dp, rt);
        return VG_RT_YES;
    }
    if (rt)
        attach(dp, rt); /* its ProcessInfo is on its way */
    if (!G.started)
        return VG_RT_YES; /* no daemon: no background questions */
    struct ijob *x = calloc(1, sizeof(*x));
    if (!x)
        return VG_RT_YES;
    x->kind = J_FETCH;
    x->dp = dp;
    x->pid = p->pid;
    snprintf(x->proc_root, sizeof(x->proc_root), "%s", vg_proc_table_root(p->table));
    dp->fetching = true;
    if (ijob_start(x))
        dp->fetching = false;
    return VG_RT_YES;
}

static void dotnet_forget(void *data)
{
    struct dn_proc *dp = data;
    if (!dp)
        return;
    if (dp->rt)
        dp->rt->dp = NULL;
    dp->rt = NULL;
    if (dp->fetching) {
        dp->orphan = true;
        return;
    }
    info_free(&dp->info);
    free(dp);
}

static void dotnet_facts(const void *data, struct vg_rt_facts *out)
{
    const struct dn_proc *dp = data;
    if (!dp->info.have)
        return;
    out->runtime_id = dp->info.cookie_str;
    out->entry_assembly = dp->info.entry;
    out->runtime_version = dp->info.version;
    out->os = dp->info.os;
    out->arch = dp->info.arch;
    out->rid = dp->info.rid;
    out->command_line = dp->info.cmdline;
    out->port = dp->rt ? "listen" : "connect";
}

static void dotnet_armed(void *data)
{
    struct dn_proc *dp = data;
    if (dp->rt && dp->rt->info.have)
        rt_resume(dp->rt, "its rules are armed");
}

/* ---- actions ---- */

/* How an action's thread reaches the runtime: through the listen port by cookie, or its own
 * socket by pid. Decided on the loop thread when the action starts. */
struct reach {
    bool listen;
    bool resume_first; /* the runtime is still held at startup: let it go first */
    uint8_t cookie[16];
    char what[64];
};

static void reach_init(struct reach *r, const struct vg_rt_target *t, bool needs_running)
{
    memset(r, 0, sizeof(*r));
    struct dn_rt *rt = NULL;
    uint8_t c[16];
    if (t->runtime_id && vg_dnipc_cookie_parse(t->runtime_id, c) == 0)
        rt = rt_by_cookie(c);
    if (rt && G.srv) {
        r->listen = true;
        memcpy(r->cookie, c, 16);
        G.srv_refs++;
        /* A runtime held at startup cannot write a dump: an action that needs it running lets
         * it go first (a Startup rule's earlier actions have completed by then). */
        if (needs_running && !rt->resumed && !rt->resume_busy) {
            r->resume_first = true;
            rt->resumed = true;
        }
    }
    snprintf(r->what, sizeof(r->what), "pid %d", t->pid);
}

static void reach_done(struct reach *r)
{
    if (r->listen)
        srv_unref();
    r->listen = false;
}

/* On the action's thread. */
static int reach_endpoint(const struct reach *r, const struct vg_rt_target *t,
                          struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io)
{
    if (r->listen) {
        vg_dnipc_server_endpoint(ep, G.srv, r->cookie, r->what);
        return 0;
    }
    char path[4096];
    int rc =
        vg_dnipc_find_socket(t->proc_root ? t->proc_root : "/proc", t->pid, path, sizeof(path), io);
    if (rc == 0)
        vg_dnipc_endpoint_path(ep, path, r->what);
    return rc;
}

struct act {
    struct reach reach;
    int rc;
    char err[1024];
    /* CollectDump */
    enum vg_dnipc_dump_type type;
    char *dump_dir; /* DumpTempFolder, or NULL: through /proc/PID/root */
    uint64_t bytes;
    /* environment */
    char *name, *value, *result;
};

static void act_free(struct act *a)
{
    reach_done(&a->reach);
    free(a->dump_dir);
    free(a->name);
    free(a->value);
    free(a->result);
    free(a);
}

static const enum vg_dnipc_dump_type dump_type_map[] = {
    [VG_ACT_DUMP_WITH_HEAP] = VG_DNIPC_DUMP_WITH_HEAP,
    [VG_ACT_DUMP_FULL] = VG_DNIPC_DUMP_FULL,
    [VG_ACT_DUMP_MINI] = VG_DNIPC_DUMP_NORMAL,
    [VG_ACT_DUMP_TRIAGE] = VG_DNIPC_DUMP_TRIAGE,
};

static int mkdirs(const char *dir, mode_t mode)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", dir);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = 0;
        if (mkdir(buf, mode) == 0)
            chmod(buf, mode); /* past the umask: any app user may write its dump there */
        else if (errno != EEXIST)
            return -errno;
        *p = c;
        if (!c)
            return 0;
    }
}

/* The runtime writes the dump where both sides see it; vigil streams it into the artifact and
 * removes it. */
static void dump_work(struct vg_rt_job *job)
{
    struct act *a = job->state;
    const struct vg_rt_target *t = &job->target;
    char rpath[4096], lpath[4200], uuid[40];
    struct vg_dnipc_io io = {
        .timeout_ms = INFO_TIMEOUT_MS, .err = a->err, .errlen = sizeof(a->err)};
    struct vg_dnipc_endpoint ep;
    int fd = -1;
    uint8_t rnd[8] = {0};
    int rf = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (rf >= 0) {
        if (read(rf, rnd, sizeof(rnd)) < 0)
            memset(rnd, 0, sizeof(rnd));
        close(rf);
    }
    snprintf(uuid, sizeof(uuid), "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5], rnd[6], rnd[7]);
    if (a->dump_dir) {
        /* Storage.DumpTempFolder: the same path on both sides (a shared volume) */
        a->rc = mkdirs(a->dump_dir, 01777);
        if (a->rc) {
            snprintf(a->err, sizeof(a->err), "cannot create Storage.DumpTempFolder %s: %s",
                     a->dump_dir, vg_strerror(a->rc));
            return;
        }
        snprintf(rpath, sizeof(rpath), "%s/vigil-dump-%s_%d", a->dump_dir, uuid, t->ns_pid);
        snprintf(lpath, sizeof(lpath), "%s", rpath);
    } else if (t->pid > 0) {
        /* the runtime's own temporary directory, read through its root */
        char tmp[2048];
        vg_dnipc_tmpdir(t->proc_root ? t->proc_root : "/proc", t->pid, tmp, sizeof(tmp));
        snprintf(rpath, sizeof(rpath), "%s/vigil-dump-%s_%d", tmp, uuid, t->ns_pid);
        snprintf(lpath, sizeof(lpath), "%s/%d/root%s", t->proc_root ? t->proc_root : "/proc",
                 t->pid, rpath);
    } else {
        a->rc = VG_ECONFIG;
        snprintf(
            a->err, sizeof(a->err),
            "the runtime is not visible from vigil's pid namespace: set "
            "Storage.DumpTempFolder (or DefaultSharedPath) to a directory shared with the app");
        return;
    }
    if ((a->rc = reach_endpoint(&a->reach, t, &ep, &io)))
        return;
    if (a->reach.resume_first) {
        int rc = vg_dnipc_resume_runtime(&ep, &io);
        vg_log(rc ? VG_LOG_WARN : VG_LOG_INFO, "dotnet",
               "pid %d was held at startup: resumed before its dump%s%s",
               t->pid ? t->pid : t->ns_pid, rc ? ": " : "", rc ? a->err : "");
        a->err[0] = 0;
    }
    /* Not cancellable once asked: the runtime writes the file whatever we do, and it must be
     * removed after it is complete. A cancel is honoured right after. */
    io.timeout_ms = DUMP_TIMEOUT_MS;
    uint64_t t0 = vg_mono_ms();
    int open_errno = 0, tries = 0;
    size_t rlen = strlen(rpath), llen = strlen(lpath);
    /* A runtime that has just been resumed may answer that createdump succeeded while it wrote
     * nothing (seen right after ResumeRuntime): ask again, a few times. */
    for (int attempt = 0; attempt < 3; attempt++) {
        if (attempt) {
            vg_log(VG_LOG_INFO, "dotnet",
                   "pid %d: the runtime reported a dump but wrote no file; asking again", t->pid);
            usleep(1000 * 1000);
            if (a->reach.listen && (a->rc = reach_endpoint(&a->reach, t, &ep, &io)))
                return;
        }
        /* A fresh name each time: a createdump the runtime gave up on may still be writing
         * the earlier one, and two writers on one file make a corrupt core. */
        if (attempt) {
            snprintf(rpath + rlen, sizeof(rpath) - rlen, ".%d", attempt);
            snprintf(lpath + llen, sizeof(lpath) - llen, ".%d", attempt);
        }
        a->rc = vg_dnipc_dump(&ep, &io, rpath, a->type);
        fd = a->rc ? -1 : open(lpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        open_errno = errno;
        tries = attempt + 1;
        if (a->rc || fd >= 0 || open_errno != ENOENT)
            break;
    }
    uint64_t t1 = vg_mono_ms();
    /* the open descriptor keeps the one we read; every name asked for goes */
    for (int i = 0; i < tries; i++) {
        if (i)
            snprintf(lpath + llen, sizeof(lpath) - llen, ".%d", i);
        else
            lpath[llen] = 0;
        unlink(lpath);
    }
    if (a->rc)
        goto out;
    if (atomic_load(&job->cancelled)) {
        a->rc = VG_ECANCELED;
        snprintf(a->err, sizeof(a->err), "canceled");
        goto out;
    }
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        a->rc = fd < 0 ? -open_errno : VG_EPROTO;
        snprintf(a->err, sizeof(a->err), "the runtime reported its dump written, but %.600s is %s",
                 lpath, fd < 0 ? strerror(open_errno) : "not a regular file");
        goto out;
    }
    /* the app owns that directory: take only a file its own user wrote */
    if (t->pid > 0 && !a->dump_dir && st.st_uid != t->uid && st.st_uid != 0) {
        a->rc = VG_EPERM;
        snprintf(a->err, sizeof(a->err), "%.600s belongs to uid %u, not the process's uid %u",
                 lpath, (unsigned)st.st_uid, t->uid);
        goto out;
    }
    char name[96];
    vg_rt_artifact_name(name, sizeof(name), "core_", t->ns_pid > 0 ? t->ns_pid : t->pid, "");
    if ((a->rc = job->ops->open(job, name, "application/x-coredump"))) {
        snprintf(a->err, sizeof(a->err), "cannot open the artifact: %s", vg_strerror(a->rc));
        goto out;
    }
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    if (!buf)
        a->rc = VG_ENOMEM;
    while (buf && a->rc == 0) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            a->rc = -errno;
            snprintf(a->err, sizeof(a->err), "reading %.600s: %s", lpath, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if (atomic_load(&job->cancelled))
            a->rc = VG_ECANCELED;
        else
            a->rc = job->ops->write(job, buf, (size_t)n);
        a->bytes += (uint64_t)n;
    }
    free(buf);
    if (a->rc) {
        if (!a->err[0])
            snprintf(a->err, sizeof(a->err), "%s", vg_strerror(a->rc));
        job->ops->abort(job);
        goto out;
    }
    a->rc = job->ops->commit(job);
    if (a->rc == 0)
        vg_log(VG_LOG_INFO, "action",
               "CollectDump: pid %d, %s dump written by the runtime in %" PRIu64 " ms, %" PRIu64
               " bytes",
               t->pid ? t->pid : t->ns_pid, vg_dnipc_dump_type_name(a->type), t1 - t0, a->bytes);
out:
    if (fd >= 0)
        close(fd);
}

static void report(struct vg_rt_job *job, const char *out_name, char *out_value)
{
    struct act *a = job->state;
    char **names = NULL, **values = NULL;
    size_t n = 0;
    if (a->rc == 0 && out_name) {
        names = calloc(1, sizeof(char *));
        values = calloc(1, sizeof(char *));
        if (names && values && (names[0] = vg_strdup(out_name))) {
            values[0] = out_value;
            out_value = NULL;
            n = 1;
        } else {
            free(names);
            free(values);
            names = values = NULL;
        }
    }
    free(out_value);
    int rc = a->rc;
    char err[1024];
    snprintf(err, sizeof(err), "%s", a->err[0] ? a->err : vg_strerror(rc));
    job->state = NULL;
    act_free(a);
    job->ops->done(job, rc, rc ? err : NULL, names, values, n);
}

static void dump_after(struct vg_rt_job *job)
{
    struct act *a = job->state;
    struct dn_rt *rt = a->reach.resume_first ? rt_by_cookie(a->reach.cookie) : NULL;
    if (rt)
        rt->refresh_at = vg_mono_ms() + 1000;
    char *bytes = vg_asprintf("%" PRIu64, a->bytes);
    report(job, "Bytes", bytes);
}

static int dump_start(struct vg_rt_job *job)
{
    const struct vg_act_collect_dump *set = job->settings;
    if (set && set->writer == VG_ACT_WRITER_NATIVE) {
        /* vigil's own ELF core writer, as for any process */
        const struct vg_rt_action *native = vg_runtime_action(&vg_runtime_native, "CollectDump");
        return native->start(job);
    }
    struct act *a = calloc(1, sizeof(*a));
    if (!a)
        return VG_ENOMEM;
    int t = set ? set->type : VG_ACT_DUMP_WITH_HEAP;
    a->type = t >= 0 && t <= VG_ACT_DUMP_TRIAGE ? dump_type_map[t] : VG_DNIPC_DUMP_WITH_HEAP;
    if (G.dump_temp && !(a->dump_dir = vg_strdup(G.dump_temp))) {
        free(a);
        return VG_ENOMEM;
    }
    reach_init(&a->reach, &job->target, true);
    job->state = a;
    int rc = vg_rt_job_thread(job, dump_work, dump_after);
    if (rc) {
        job->state = NULL;
        act_free(a);
    }
    return rc;
}

/* GetEnvironmentVariable when a->value is NULL, SetEnvironmentVariable otherwise */
static void env_work(struct vg_rt_job *job)
{
    struct act *a = job->state;
    struct vg_dnipc_io io = {.timeout_ms = INFO_TIMEOUT_MS,
                             .cancel = &job->cancelled,
                             .err = a->err,
                             .errlen = sizeof(a->err)};
    struct vg_dnipc_endpoint ep;
    if ((a->rc = reach_endpoint(&a->reach, &job->target, &ep, &io)) != 0)
        return;
    if (a->value)
        a->rc = vg_dnipc_set_env(&ep, &io, a->name, a->value);
    else
        a->rc = vg_dnipc_get_env(&ep, &io, a->name, &a->result);
}

static void getenv_after(struct vg_rt_job *job)
{
    struct act *a = job->state;
    char *v = a->result;
    a->result = NULL;
    report(job, "Value", v);
}

static void setenv_after(struct vg_rt_job *job)
{
    report(job, NULL, NULL);
}

static int env_start(struct vg_rt_job *job, vg_rt_job_fn work, vg_rt_job_fn after, bool work_sets)
{
    const struct vg_act_env *set = job->settings;
    if (!set || !set->name)
        return VG_EINVAL;
    struct act *a = calloc(1, sizeof(*a));
    if (!a || !(a->name = vg_strdup(set->name)) ||
        (work_sets && !(a->value = vg_strdup(set->value ? set->value : "")))) {
        if (a)
            act_free(a);
        return VG_ENOMEM;
    }
    reach_init(&a->reach, &job->target, false);
    job->state = a;
    int rc = vg_rt_job_thread(job, work, after);
    if (rc) {
        job->state = NULL;
        act_free(a);
    }
    return rc;
}

static int getenv_start(struct vg_rt_job *job)
{
    return env_start(job, env_work, getenv_after, false);
}

static int setenv_start(struct vg_rt_job *job)
{
    return env_start(job, env_work, setenv_after, true);
}

/* Can vigil reach the runtime: through the port, or its own socket (file checks only)? */
static int reach_check(const struct vg_rt_target *t, char *err, size_t n)
{
    uint8_t c[16];
    if (t->runtime_id && vg_dnipc_cookie_parse(t->runtime_id, c) == 0 && rt_by_cookie(c) && G.srv)
        return 0;
    if (t->pid <= 0) {
        snprintf(err, n, "the runtime of pid %d (its own namespace) is no longer connected",
                 t->ns_pid);
        return VG_ENOTFOUND;
    }
    char path[4096];
    struct vg_dnipc_io io = {.timeout_ms = 0, .err = err, .errlen = n};
    return vg_dnipc_find_socket(t->proc_root ? t->proc_root : "/proc", t->pid, path, sizeof(path),
                                &io);
}

static int dump_check(const struct vg_rt_target *t, const void *settings, char *err, size_t n)
{
    const struct vg_act_collect_dump *set = settings;
    if (set && set->writer == VG_ACT_WRITER_NATIVE) {
        const struct vg_rt_action *native = vg_runtime_action(&vg_runtime_native, "CollectDump");
        return native->check ? native->check(t, settings, err, n) : 0;
    }
    if (t->pid <= 0 && !G.dump_temp) {
        snprintf(err, n,
                 "pid %d runs in a pid namespace vigil cannot see: set Storage.DumpTempFolder "
                 "(or DefaultSharedPath) to a directory shared with the app",
                 t->ns_pid);
        return VG_ECONFIG;
    }
    return reach_check(t, err, n);
}

static int env_check(const struct vg_rt_target *t, const void *settings, char *err, size_t n)
{
    return reach_check(t, err, n);
}

static const struct vg_rt_action collect_dump = {"CollectDump", dump_start, NULL, dump_check,
                                                 false};
static const struct vg_rt_action get_env = {"GetEnvironmentVariable", getenv_start, NULL, env_check,
                                            false};
static const struct vg_rt_action set_env = {"SetEnvironmentVariable", setenv_start, NULL, env_check,
                                            false};
static const struct vg_rt_action *const dotnet_actions[] = {&collect_dump,
                                                            &get_env,
                                                            &set_env,
                                                            &vg__dotnet_collect_trace,
                                                            &vg__dotnet_collect_live_metrics,
                                                            &vg__dotnet_collect_logs,
                                                            NULL};

const struct vg_runtime_type vg_runtime_dotnet = {
    .name = "dotnet",
    .display = ".NET",
    .exe_names = exe_names,
    .map_markers = map_markers,
    .detect = dotnet_detect,
    .session_open = vg__dotnet_session_open,
    .session_sample = vg__dotnet_session_sample,
    .session_close = vg__dotnet_session_close,
    .session_error = vg__dotnet_session_error,
    .event_counters = true,
    .claims = dotnet_claims,
    .forget = dotnet_forget,
    .actions = dotnet_actions,
    .start = dotnet_start,
    .configure = dotnet_configure,
    .stop = dotnet_stop,
    .facts = dotnet_facts,
    .armed = dotnet_armed,
};
