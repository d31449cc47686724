/* The Node.js adapter.
 *   detect:   a node-like executable (or argv[0]) whose ELF exports node_module_register
 *             (engine/runtimes/node/detect.c).
 *   sessions: nodejs_heap_used_bytes / nodejs_heap_total_bytes (rules/metric.h) from
 *             Runtime.getHeapUsage, which runs no JavaScript in the target, polled on a thread
 *             of the session's own while a rule reads them.
 *   actions:  CollectGCDump -> a V8 .heapsnapshot (the inspector, or node's own
 *             --heapsnapshot-signal when no inspector may be opened), CollectTrace -> a
 *             .cpuprofile, CollectStacks -> node's diagnostic report with the JavaScript stack;
 *             each streamed into the artifact on a thread of the job's own. CollectDump stays
 *             native's core dump.
 * The inspector is reached as engine/runtimes/node/collect.h says: one already open, or one
 * SIGUSR1 opens when Runtimes.Node.AllowInspectorActivation allows it, closed again by its last
 * user. docs/runtimes-node.md has the details and the exposure window. */
#include "engine/runtimes/runtime.h"

#include "config/error.h"
#include "config/log.h"
#include "config/settings.h"
#include "config/util.h"
#include "engine/host/proc.h"
#include "engine/runtimes/node/collect.h"
#include "rules/action.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define COMPONENT "runtime:node"

static const char *const exe_names[] = {"node", "nodejs", NULL};

/* ---- the configuration in force ---- */

/* Set on the loop thread (start, configure at each reload); read by the job and session threads
 * when they begin (a session again at each attempt to reach the inspector). */
static atomic_bool allow_activation;      /* Runtimes.Node.AllowInspectorActivation */
static _Atomic uint64_t sample_ms = 1000; /* Discovery.PollInterval */

static void node_configure(const struct vg_settings *s)
{
    atomic_store(&allow_activation, s->runtimes.node.allow_inspector_activation);
    atomic_store(&sample_ms, s->discovery.poll_interval_ms ? s->discovery.poll_interval_ms : 1000);
}

static int node_start(const struct vg_rt_host *host, const struct vg_settings *s, char *err,
                      size_t errlen)
{
    (void)host, (void)err, (void)errlen;
    node_configure(s);
    return 0;
}

/* ---- detection ---- */

/* argv[0] of p (its command line up to the first space; node keeps it unless process.title
 * changes it), for versioned names the registry's exact match misses ("node20"). */
static bool argv0_like(const struct vg_proc *p)
{
    char first[256];
    const char *c = p->cmdline ? p->cmdline : "";
    size_t n = strcspn(c, " ");
    if (n == 0 || n >= sizeof(first))
        return false;
    memcpy(first, c, n);
    first[n] = '\0';
    return vg_node_name_like(first);
}

static enum vg_rt_detect node_detect(const struct vg_proc *p, bool marked, void **data)
{
    (void)data;
    if (!marked && !(p->exe && vg_node_name_like(p->exe)) && !argv0_like(p))
        return VG_RT_NO;
    /* a few pages of the executable, cached per binary */
    return vg_node_detect(vg_proc_table_root(p->table), p->pid, NULL) == 1 ? VG_RT_YES : VG_RT_NO;
}

/* ---- sessions: heap figures ---- */

#define REOPEN_MIN_MS 1000 /* a young process may open its inspector a moment later */
#define REOPEN_MAX_MS (5 * 60 * 1000)
#define SAMPLE_TIMEOUT_MS (2 * 60 * 1000)

struct vg_rt_session {
    uv_async_t ended; /* the thread is done: join and free (loop thread) */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_bool stop;
    int pid;
    uint64_t start_ticks;
    char *proc_root;
    uint64_t interval_ms;
    /* under lock */
    bool have;
    uint64_t at_ms; /* when the values were read */
    double used, total;
    char err[VG_NODE_ERR_MAX];
};

/* Waits up to ms or until stop. */
static void nap(struct vg_rt_session *s, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->lock);
    while (!atomic_load(&s->stop) && pthread_cond_timedwait(&s->wake, &s->lock, &ts) == 0)
        ;
    pthread_mutex_unlock(&s->lock);
}

static void set_error(struct vg_rt_session *s, int rc, const char *why)
{
    pthread_mutex_lock(&s->lock);
    bool news = strcmp(s->err, why) != 0;
    snprintf(s->err, sizeof(s->err), "%s", why);
    s->have = false;
    pthread_mutex_unlock(&s->lock);
    if (news && rc != VG_ECANCELED)
        vg_log(VG_LOG_WARN, COMPONENT, "pid %d: no heap samples: %s", s->pid, why);
}

static void *sampler(void *arg)
{
    struct vg_rt_session *s = arg;
    struct vg_node_collect_opts o = {
        .proc_root = s->proc_root, .timeout_ms = SAMPLE_TIMEOUT_MS, .cancel = &s->stop};
    struct vg_node_session *ns = NULL;
    uint64_t backoff = REOPEN_MIN_MS;
    char why[VG_NODE_ERR_MAX];
    while (!atomic_load(&s->stop)) {
        if (!ns) {
            o.allow_activation = atomic_load(&allow_activation); /* a reload may change it */
            int rc = vg_node_session_open(s->pid, &o, &ns, why, sizeof(why));
            if (rc < 0) {
                set_error(s, rc, why);
                /* an inspector may be opened later (inspector.open(), a debugger): look again,
                 * less and less often, since each look asks the process's sockets for /json/list */
                nap(s, backoff);
                backoff = backoff * 2 > REOPEN_MAX_MS ? REOPEN_MAX_MS : backoff * 2;
                continue;
            }
            backoff = REOPEN_MIN_MS;
            vg_log(VG_LOG_INFO, COMPONENT, "pid %d: reading its heap through the inspector",
                   s->pid);
        }
        uint64_t used, total;
        int rc = vg_node_heap_usage(ns, &used, &total, why, sizeof(why));
        if (rc < 0) {
            set_error(s, rc, why);
            char ignored[VG_NODE_ERR_MAX];
            vg_node_session_close(ns, NULL, ignored, sizeof(ignored));
            ns = NULL; /* a failed call leaves the session unusable: reconnect */
        } else {
            pthread_mutex_lock(&s->lock);
            s->have = true;
            s->at_ms = vg_mono_ms();
            s->used = (double)used;
            s->total = (double)total;
            s->err[0] = '\0';
            pthread_mutex_unlock(&s->lock);
        }
        nap(s, s->interval_ms);
    }
    char err[VG_NODE_ERR_MAX];
    vg_node_session_close(ns, NULL, err, sizeof(err)); /* closes an inspector vigil opened */
    uv_async_send(&s->ended);
    return NULL;
}

static void session_free(uv_handle_t *h)
{
    struct vg_rt_session *s = h->data;
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s->proc_root);
    free(s);
}

static void on_ended(uv_async_t *a)
{
    struct vg_rt_session *s = a->data;
    pthread_join(s->thread, NULL);
    uv_close((uv_handle_t *)&s->ended, session_free);
}

static int node_session_open(uv_loop_t *loop, const struct vg_proc *p, void *data,
                             const struct vg_rt_needs *needs, struct vg_rt_session **out)
{
    (void)data;
    struct vg_rt_session *s = calloc(1, sizeof(*s));
    if (!s)
        return VG_ENOMEM;
    s->pid = p->pid;
    s->start_ticks = p->start_ticks;
    (void)needs; /* its interval is .NET's counter interval: the heap is read every poll */
    s->interval_ms = atomic_load(&sample_ms);
    s->proc_root = vg_strdup(vg_proc_table_root(p->table));
    atomic_init(&s->stop, false);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int e = pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (!s->proc_root || e) {
        free(s->proc_root);
        free(s);
        return VG_ENOMEM;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->ended.data = s;
    if (uv_async_init(loop, &s->ended, on_ended) != 0) {
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        free(s->proc_root);
        free(s);
        return VG_EIO;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1u << 20);
    e = pthread_create(&s->thread, &attr, sampler, s);
    pthread_attr_destroy(&attr);
    if (e) {
        uv_close((uv_handle_t *)&s->ended, session_free);
        return VG_EIO;
    }
    *out = s;
    return 0;
}

static void node_session_sample(struct vg_rt_session *s, struct vg_rt_values *out)
{
    pthread_mutex_lock(&s->lock);
    /* a value older than two intervals is not the heap now (the main thread has not answered
     * since: a long task, a heap snapshot): no value rather than a stale one */
    bool fresh = s->have && vg_mono_ms() - s->at_ms <= 2 * s->interval_ms + 1000;
    double used = s->used, total = s->total;
    pthread_mutex_unlock(&s->lock);
    if (!fresh)
        return;
    vg_rt_values_set(out, "node", "nodejs_heap_used_bytes", used);
    vg_rt_values_set(out, "node", "nodejs_heap_total_bytes", total);
}

static bool node_session_error(struct vg_rt_session *s, char *buf, size_t n)
{
    pthread_mutex_lock(&s->lock);
    bool bad = s->err[0] != '\0';
    if (bad)
        snprintf(buf, n, "%s", s->err);
    pthread_mutex_unlock(&s->lock);
    return bad;
}

static void node_session_close(struct vg_rt_session *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stop, true);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    /* the thread ends its call (the stop flag cancels it within 100 ms), closes what it opened
     * and signals `ended`; the handle keeps the loop alive until then */
}

/* ---- actions ---- */

enum node_op { OP_SNAPSHOT, OP_PROFILE, OP_REPORT };

struct node_job {
    enum node_op op;
    uint32_t duration_ms;
    bool opened; /* the artifact */
    int rc;
    char err[1024];
    uint64_t bytes, exposure_ms;
    const char *how;
};

static const struct {
    const char *ext, *content_type;
} kinds[] = {
    [OP_SNAPSHOT] = {".heapsnapshot", "application/json"},
    [OP_PROFILE] = {".cpuprofile", "application/json"},
    [OP_REPORT] = {".report.json", "application/json"},
};

/* Opens the artifact with the first bytes, so a collection refused before it produced anything
 * leaves nothing behind. */
static int sink(void *ctx, const void *buf, size_t len)
{
    struct vg_rt_job *job = ctx;
    struct node_job *st = job->state;
    if (atomic_load(&job->cancelled))
        return VG_ECANCELED;
    if (!st->opened) {
        char name[128];
        vg_rt_artifact_name(name, sizeof(name), "", job->target.pid, kinds[st->op].ext);
        int rc = job->ops->open(job, name, kinds[st->op].content_type);
        if (rc)
            return rc;
        st->opened = true;
    }
    return job->ops->write(job, buf, len);
}

/* The inspector path. Returns 0 or VG_E* with st->err. */
static int by_inspector(struct vg_rt_job *job, struct node_job *st, struct vg_node_session *ns)
{
    st->how = "the inspector";
    switch (st->op) {
    case OP_SNAPSHOT:
        return vg_node_heap_snapshot(ns, sink, job, &st->bytes, st->err, sizeof(st->err));
    case OP_PROFILE:
        return vg_node_cpu_profile(ns, st->duration_ms, sink, job, &st->bytes, st->err,
                                   sizeof(st->err));
    case OP_REPORT:
        return vg_node_report(ns, sink, job, &st->bytes, st->err, sizeof(st->err));
    }
    return VG_EINVAL;
}

/* Is the job's process still the one the rule fired for (not exited, its pid not reused)? */
static bool same_process(const struct vg_rt_job *job)
{
    struct vg_rt_target now;
    if (vg_rt_target_from_pid(&now, job->target.proc_root, job->target.pid) != 0)
        return false;
    bool same = now.start_ticks == job->target.start_ticks;
    vg_rt_target_free(&now);
    return same;
}

static void node_work(struct vg_rt_job *job)
{
    struct node_job *st = job->state;
    bool allow = atomic_load(&allow_activation);
    int pid = job->target.pid;
    struct vg_node_collect_opts o = {.proc_root = job->target.proc_root,
                                     .allow_activation = false,
                                     .cancel = &job->cancelled,
                                     .stop = &job->stopping};
    struct vg_node_session *ns = NULL;
    if (!same_process(job)) {
        st->rc = VG_ESRCH;
        snprintf(st->err, sizeof(st->err), "pid %d exited", pid);
        return;
    }
    /* An inspector already open (the app's, or one vigil opened for another collection) comes
     * first; then, for a heap snapshot, node's own --heapsnapshot-signal, which opens no port;
     * then activation, when allowed. */
    st->rc = vg_node_session_open(pid, &o, &ns, st->err, sizeof(st->err));
    if (st->rc == VG_EPERM && st->op == OP_SNAPSHOT) {
        char why[sizeof(st->err)];
        snprintf(why, sizeof(why), "%s", st->err);
        st->rc =
            vg_node_snapshot_by_signal(pid, &o, sink, job, &st->bytes, st->err, sizeof(st->err));
        st->how = "node's --heapsnapshot-signal";
        if (st->rc == VG_EUNSUPPORTED) { /* no such option: say why the inspector was not used */
            snprintf(st->err, sizeof(st->err), "%s", why);
            st->rc = VG_EPERM;
        } else {
            goto collected;
        }
    }
    if (st->rc == VG_EPERM && allow) {
        o.allow_activation = true;
        st->rc = vg_node_session_open(pid, &o, &ns, st->err, sizeof(st->err));
    }
    if (st->rc == 0)
        st->rc = by_inspector(job, st, ns);
collected:
    if (ns) {
        char cerr[VG_NODE_ERR_MAX];
        /* before the upload: the inspector vigil opened closes as soon as possible */
        if (vg_node_session_close(ns, &st->exposure_ms, cerr, sizeof(cerr)) < 0 && st->rc == 0)
            vg_log(VG_LOG_ERROR, COMPONENT, "%s: pid %d: the artifact is kept, but: %s", job->type,
                   pid, cerr);
    }
    if (st->rc) {
        if (st->opened)
            job->ops->abort(job);
        return;
    }
    if (!st->opened) {
        st->rc = VG_EPROTO;
        snprintf(st->err, sizeof(st->err), "pid %d: %s produced nothing", pid, job->type);
        return;
    }
    st->rc = job->ops->commit(job);
    if (st->rc)
        snprintf(st->err, sizeof(st->err), "storing the artifact: %s", vg_strerror(st->rc));
}

static void node_after(struct vg_rt_job *job)
{
    struct node_job *st = job->state;
    int rc = st->rc;
    char err[1024];
    snprintf(err, sizeof(err), "%s", st->err[0] ? st->err : vg_strerror(rc));
    if (rc == 0)
        vg_log(VG_LOG_INFO, "action", "%s: pid %d (Node), %" PRIu64 " bytes through %s%s",
               job->type, job->target.pid, st->bytes, st->how ? st->how : "the inspector",
               st->exposure_ms ? " (an inspector vigil opened and closed)" : "");
    free(st);
    job->state = NULL;
    job->ops->done(job, rc, rc ? err : NULL, NULL, NULL, 0);
}

static void nothing(struct vg_rt_job *job)
{
    (void)job;
}

/* Starts the job's thread; with `why`, fails the action at once, saying so (done must not come
 * from inside start(): it is reported from the thread's end). */
static int start(struct vg_rt_job *job, struct node_job *st, const char *why)
{
    if (why) {
        st->rc = VG_EUNSUPPORTED;
        snprintf(st->err, sizeof(st->err), "%s on pid %d (Node): %s", job->type, job->target.pid,
                 why);
    }
    job->state = st;
    int rc = vg_rt_job_thread(job, why ? nothing : node_work, node_after);
    if (rc) {
        free(st);
        job->state = NULL;
    }
    return rc;
}

/* Settings Node cannot honour (NULL: none). */
static const char *trace_problem(const void *settings)
{
    const struct vg_act_collect_trace *set = settings;
    if (set && set->providers)
        return "Providers are .NET EventPipe providers; Node records a CPU profile (Profile: Cpu)";
    if (set && set->profile && !strcasestr(set->profile, "cpu"))
        return "Node records CPU profiles only: set Profile to Cpu (Http, Logs, Metrics and "
               "GcCollect are .NET's)";
    return NULL;
}

static const char *stacks_problem(const void *settings)
{
    const struct vg_act_collect_stacks *set = settings;
    if (set && set->format != VG_STACKS_JSON)
        return "Node's stacks come as its diagnostic report, Format Json; PlainText and "
               "Speedscope are not supported for Node";
    return NULL;
}

static int begin(struct vg_rt_job *job, enum node_op op, const char *why)
{
    struct node_job *st = calloc(1, sizeof(*st));
    if (!st)
        return VG_ENOMEM;
    st->op = op;
    if (op == OP_PROFILE) {
        const struct vg_act_collect_trace *set = job->settings;
        st->duration_ms = set ? (uint32_t)set->duration_ms : 30000;
    }
    return start(job, st, why);
}

static int gcdump_start(struct vg_rt_job *job)
{
    return begin(job, OP_SNAPSHOT, NULL);
}

static int trace_start(struct vg_rt_job *job)
{
    return begin(job, OP_PROFILE, trace_problem(job->settings));
}

static int stacks_start(struct vg_rt_job *job)
{
    return begin(job, OP_REPORT, stacks_problem(job->settings));
}

/* Before a caller commits to streaming: the settings (whether the inspector can be reached
 * takes asking the target, which start() does). */
static int problem_check(const char *problem, const char *type, const struct vg_rt_target *t,
                         char *err, size_t n)
{
    if (!problem)
        return 0;
    snprintf(err, n, "%s on pid %d (Node): %s", type, t->pid, problem);
    return VG_EUNSUPPORTED;
}

static int trace_check(const struct vg_rt_target *t, const void *settings, char *err, size_t n)
{
    return problem_check(trace_problem(settings), "CollectTrace", t, err, n);
}

static int stacks_check(const struct vg_rt_target *t, const void *settings, char *err, size_t n)
{
    return problem_check(stacks_problem(settings), "CollectStacks", t, err, n);
}

static const struct vg_rt_action collect_gcdump = {"CollectGCDump", gcdump_start, NULL, NULL,
                                                   false};
/* a CPU profile can end early (DELETE ?stop=true, durationSeconds=-1) and be kept */
static const struct vg_rt_action collect_trace = {"CollectTrace", trace_start, NULL, trace_check,
                                                  true};
static const struct vg_rt_action collect_stacks = {"CollectStacks", stacks_start, NULL,
                                                   stacks_check, false};

static const struct vg_rt_action *const node_actions[] = {&collect_gcdump, &collect_trace,
                                                          &collect_stacks, NULL};

const struct vg_runtime_type vg_runtime_node = {
    .name = "node",
    .display = "Node",
    .exe_names = exe_names,
    .detect = node_detect,
    .session_open = node_session_open,
    .session_sample = node_session_sample,
    .session_close = node_session_close,
    .session_error = node_session_error,
    .actions = node_actions,
    .start = node_start,
    .configure = node_configure,
};
