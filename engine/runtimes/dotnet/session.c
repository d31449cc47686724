/* The .NET adapter's sampling session (runtime.h session_open/sample/close): one EventPipe
 * session per process, shared by every rule on it, streaming EventCounters from System.Runtime
 * and from each provider a rule names, each provider at its own interval
 * (GlobalCounter.Providers.NAME.IntervalSeconds, else GlobalCounter.IntervalSeconds: 5 s by
 * default), meters at the global one, as dotnet-monitor. A provider a rule names may be an
 * EventSource or a Meter (System.Diagnostics.Metrics): the session asks for both, which costs
 * nothing for the one that does not exist. Meter time series become samples named
 * "INSTRUMENT", "INSTRUMENT{tags}", and "INSTRUMENT@pNN" per histogram percentile. A thread of its
 * own runs the session (vg_ep_session_run) and keeps the latest value of every counter; sample()
 * copies them without blocking, while they are fresh (a session that ended or a runtime that
 * stopped sending gives none: CPUUsage then reads /proc). The session is restarted if the runtime
 * ends it while the process lives, and stopped with StopTracing by close(); the thread frees it
 * when that is done. Should vigil die meanwhile, the runtime ends the session itself when the
 * connection closes. */
#include "engine/runtimes/dotnet/session.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "engine/host/proc.h"
#include "engine/runtimes/dotnet/eventpipe.h"
#include "engine/runtimes/dotnet/nettrace_events.h"

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_PROVIDERS 40           /* the defaults, and what rules and Metrics name (32 at most) */
#define MAX_PENDING_REQUESTS 20000 /* between two samples; more are dropped (counted) */

/* The provider a rule names to ask for ASP.NET Core request activities (the AspNet* triggers). */
#define DIAGSOURCE "Microsoft-Diagnostics-DiagnosticSource"
/* dotnet-monitor's filter for them, trimmed to what the triggers read. */
static const char request_filter[] =
    "FilterAndPayloadSpecs=\""
    "Microsoft.AspNetCore/Microsoft.AspNetCore.Hosting.HttpRequestIn.Start@Activity1Start:-"
    "Request.Path;ActivityId=*Activity.Id\r\n"
    "Microsoft.AspNetCore/Microsoft.AspNetCore.Hosting.HttpRequestIn.Stop@Activity1Stop:-"
    "ActivityId=*Activity.Id;Request.Path;Response.StatusCode;"
    "ActivityDuration=*Activity.Duration.Ticks\r\n\"";

struct vg_rt_session {
    pthread_t thread;
    atomic_int refs; /* the engine's (until close) and the thread's */
    atomic_bool stop;
    pthread_mutex_t mu;
    struct vg_rt_values values; /* under mu */
    int pid;
    char what[32];
    char *providers[MAX_PROVIDERS];      /* EventSource names */
    uint64_t provider_ms[MAX_PROVIDERS]; /* each one's EventCounterIntervalSec */
    bool meter[MAX_PROVIDERS];           /* also asked for as a Meter */
    char *meter_tail;                    /* ";RefreshInterval=...;MaxHistograms=N" */
    size_t n_providers;
    size_t n_defaults;           /* the first ones: dotnet-monitor's default EventSources */
    bool warned;                 /* a meters session problem was logged */
    bool requests;               /* a rule reads request activities */
    struct vg_rt_values pending; /* requests since the last sample (under mu) */
    uint64_t dropped;            /* requests dropped since the last warning (under mu) */
    uint64_t interval_ms;        /* the global interval (meters' RefreshInterval) */
    uint64_t last_ms;            /* the latest counter or meter value came then; 0: the session
                                    is not running (under mu) */
    uint64_t stale_ms;           /* values older than this are not handed out */
    uint64_t run_since;          /* the current EventPipe session started then; 0: none runs
                                    (under mu) */
    char *config_path[2];        /* where the app's runtimeconfig.json may be, in vigil's view */
    int eventsources;            /* its EventSource switch: -1 not read yet, 0 off, 1 on or not
                                    said (loop thread) */
    bool said_silent;            /* the silent session was logged (loop thread) */
};

static void session_free(struct vg_rt_session *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n_providers; i++)
        free(s->providers[i]);
    free(s->meter_tail);
    free(s->config_path[0]);
    free(s->config_path[1]);
    vg_rt_values_free(&s->values);
    vg_rt_values_free(&s->pending);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int on_meta(void *ctx, struct vg_nettrace_meta *m)
{
    enum vg_ep_kind k = vg_ep_classify(m);
    m->tag = k == VG_EP_COUNTER || k == VG_EP_METRIC || k == VG_EP_REQUEST ? (int)k : 0;
    return 0;
}

static int put_request(struct vg_rt_session *s, const struct vg_ep_request *r)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (s->pending.n_req >= MAX_PENDING_REQUESTS)
        s->dropped++;
    else
        rc = vg_rt_values_add_request(
            &s->pending, r->stop, r->status_code,
            r->duration_ticks > 0 ? (uint64_t)r->duration_ticks / 10000 : 0, r->path);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int put_metric(struct vg_rt_session *s, const struct vg_ep_metric *m)
{
    char base[800], name[820];
    if (m->tags[0])
        snprintf(base, sizeof base, "%s{%s}", m->instrument, m->tags);
    else
        snprintf(base, sizeof base, "%s", m->instrument);
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    s->last_ms = vg_mono_ms();
    switch (m->kind) {
    case VG_EP_METRIC_COUNTER: /* dotnet-monitor's value for a counter: its rate */
        if (m->has_rate)
            rc = vg_rt_values_set_full(&s->values, m->meter, base, m->rate, m->unit, NULL);
        break;
    case VG_EP_METRIC_UPDOWN:
    case VG_EP_METRIC_GAUGE:
        if (m->has_value)
            rc = vg_rt_values_set_full(&s->values, m->meter, base, m->value, m->unit, NULL);
        break;
    case VG_EP_METRIC_HISTOGRAM:
        for (unsigned i = 0; i < m->nquantiles && rc == 0; i++) {
            snprintf(name, sizeof name, "%s@p%d", base, (int)(m->quantile[i] * 100 + 0.5));
            rc = vg_rt_values_set_full(&s->values, m->meter, name, m->quantile_value[i], m->unit,
                                       NULL);
        }
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&s->mu);
    if ((m->kind == VG_EP_METRIC_ERROR || m->kind == VG_EP_METRIC_SESSION_CONFLICT ||
         m->kind == VG_EP_METRIC_TIMESERIES_LIMIT || m->kind == VG_EP_METRIC_HISTOGRAM_LIMIT) &&
        !s->warned) {
        s->warned = true;
        vg_log(VG_LOG_WARN, "runtime", "%s: meters: %s", s->what,
               m->error[0]                                ? m->error
               : m->kind == VG_EP_METRIC_TIMESERIES_LIMIT ? "the time series limit was reached"
                                                          : "the histogram limit was reached");
    }
    return rc;
}

static int on_event(void *ctx, const struct vg_nettrace_event *ev)
{
    struct vg_rt_session *s = ctx;
    if (ev->meta->tag == VG_EP_REQUEST) {
        struct vg_ep_request r;
        return vg_ep_request_decode(ev, &r) == 0 ? put_request(s, &r) : 0;
    }
    if (ev->meta->tag == VG_EP_METRIC) {
        struct vg_ep_metric m;
        return vg_ep_metric_decode(ev, &m) == 0 ? put_metric(s, &m) : 0;
    }
    struct vg_ep_counter c;
    if (vg_ep_counter_decode(ev, &c) != 0)
        return 0; /* a malformed counter is skipped, not fatal */
    pthread_mutex_lock(&s->mu);
    s->last_ms = vg_mono_ms();
    int rc = vg_rt_values_set_full(&s->values, c.provider, c.name, c.value, c.units,
                                   c.display_name[0] ? c.display_name : NULL);
    if (rc == 0 && c.increment) /* EventCount reads the running sum as a monotonic counter */
        vg_rt_values_add_total(&s->values, c.provider, c.name, c.value);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Sleeps up to ms, waking early when asked to stop. */
static void nap(struct vg_rt_session *s, unsigned ms)
{
    for (unsigned t = 0; t < ms && !atomic_load(&s->stop); t += 100)
        usleep(100 * 1000);
}

static void *session_main(void *arg)
{
    struct vg_rt_session *s = arg;
    char args[MAX_PROVIDERS][40];
    struct vg_dnipc_provider prov[MAX_PROVIDERS + 2]; /* + meters, requests */
    for (size_t i = 0; i < s->n_providers; i++) {
        snprintf(args[i], sizeof args[i], "EventCounterIntervalSec=%g",
                 (double)s->provider_ms[i] / 1000);
        prov[i] = (struct vg_dnipc_provider){s->providers[i], 0, 4 /* Informational */, args[i]};
    }
    size_t np = s->n_providers;
    /* The providers rules named, as meters too: MetricsEventSource's arguments. One metrics
     * session per process is allowed: another tool's running session is reported (warning). */
    struct vg_buf margs = {0};
    for (size_t i = 0; i < s->n_providers; i++) {
        if (!s->meter[i])
            continue;
        if (!margs.len)
            vg_buf_printf(&margs, "SessionId=vigil-%d-%llu;Metrics=", s->pid,
                          (unsigned long long)vg_mono_ms());
        else
            vg_buf_puts(&margs, ",");
        vg_buf_puts(&margs, s->providers[i]);
    }
    if (margs.len) {
        vg_buf_puts(&margs, s->meter_tail ? s->meter_tail : "");
        prov[np++] = (struct vg_dnipc_provider){"System.Diagnostics.Metrics", 0x3, 4, margs.data};
    }
    /* Request activities: DiagnosticSourceEventSource's Events | Messages keywords, Verbose. */
    if (s->requests)
        prov[np++] = (struct vg_dnipc_provider){DIAGSOURCE, 0x3, 5, request_filter};
    struct vg_ep_session_config cfg = {.providers = prov, .n_providers = np, .buffer_mb = 16};
    struct vg_nettrace_callbacks cb = {.ctx = s, .metadata = on_meta, .event = on_event};
    unsigned backoff = 1000;
    char said[512] = ""; /* the problem last logged as a warning: a repeat is debug (a port that
                            stays unreachable must not fill the log) */
    while (!atomic_load(&s->stop)) {
        char path[4096], err[512] = "";
        struct vg_dnipc_io io = {
            .timeout_ms = 5000, .cancel = &s->stop, .err = err, .errlen = sizeof err};
        int rc = vg_dnipc_find_socket("/proc", s->pid, path, sizeof path, &io);
        if (rc == VG_ESRCH)
            break; /* the process is gone: close() comes (the values stay until then) */
        if (rc == 0) {
            struct vg_dnipc_endpoint ep;
            struct vg_ep_session_result res;
            vg_dnipc_endpoint_path(&ep, path, s->what);
            uint64_t t0 = vg_mono_ms();
            pthread_mutex_lock(&s->mu);
            s->run_since = t0;
            pthread_mutex_unlock(&s->mu);
            rc = vg_ep_session_run(&ep, &cfg, &cb, NULL, NULL, &s->stop, &res, err, sizeof err);
            pthread_mutex_lock(&s->mu);
            s->last_ms = 0; /* its values are not current any more */
            s->run_since = 0;
            pthread_mutex_unlock(&s->mu);
            if (vg_mono_ms() - t0 > 60000) {
                backoff = 1000; /* it ran a while: retry soon */
                said[0] = '\0';
            }
        }
        if (atomic_load(&s->stop))
            break;
        const char *why = err[0] ? err : vg_strerror(rc);
        bool again = strcmp(said, why) == 0;
        vg_log(rc == VG_EEXITED || again ? VG_LOG_DEBUG : VG_LOG_WARN, "runtime",
               "%s: counters session ended: %s; retrying in %u s", s->what, why, backoff / 1000);
        if (rc != VG_EEXITED)
            snprintf(said, sizeof said, "%s", why);
        nap(s, backoff);
        if (backoff < 30000)
            backoff *= 2;
    }
    vg_buf_free(&margs);
    session_free(s);
    return NULL;
}

static int find_provider(const struct vg_rt_session *s, const char *name)
{
    for (size_t i = 0; i < s->n_providers; i++)
        if (!strcasecmp(s->providers[i], name))
            return (int)i;
    return -1;
}

uint64_t vg__dotnet_interval_ms(const struct vg_rt_needs *needs, const char *provider)
{
    uint64_t ms = needs ? needs->interval_ms : 0;
    for (size_t i = 0; needs && provider && i < needs->n_intervals; i++)
        if (needs->intervals[i].provider && !strcasecmp(needs->intervals[i].provider, provider))
            ms = needs->intervals[i].interval_ms;
    return ms >= 1000 ? ms : VG_DOTNET_COUNTER_INTERVAL_S * 1000;
}

/* Adds an EventSource to read (once), also as a Meter when `meter`. */
static int add_provider(struct vg_rt_session *s, const char *name, const struct vg_rt_needs *needs,
                        bool meter)
{
    if (name && !strcasecmp(name, DIAGSOURCE)) {
        s->requests = true;
        return 0;
    }
    if (!name || !*name)
        return 0;
    int at = find_provider(s, name);
    if (at >= 0) {
        s->meter[at] |= meter;
        return 0;
    }
    if (s->n_providers == MAX_PROVIDERS)
        return VG_ELIMIT;
    if (!(s->providers[s->n_providers] = strdup(name)))
        return VG_ENOMEM;
    s->provider_ms[s->n_providers] = vg__dotnet_interval_ms(needs, name);
    s->meter[s->n_providers] = meter;
    s->n_providers++;
    return 0;
}

/* Where the app's runtimeconfig.json may be, seen from vigil: next to its apphost (exe), or next
 * to the assembly `dotnet app.dll` runs (an argument ending in .dll, relative to its cwd). */
static void find_runtimeconfig(struct vg_rt_session *s, const struct vg_proc *p)
{
    s->eventsources = -1;
    if (p->exe && p->exe[0] == '/')
        s->config_path[0] = vg_asprintf("/proc/%d/root%s.runtimeconfig.json", p->pid, p->exe);
    const char *c = p->cmdline ? p->cmdline : "";
    for (const char *a = c; *a; a += strcspn(a, " "), a += strspn(a, " ")) {
        size_t len = strcspn(a, " ");
        if (len > 4 && len < PATH_MAX && !strncmp(a + len - 4, ".dll", 4)) {
            s->config_path[1] =
                vg_asprintf("/proc/%d/%s%s%.*s.runtimeconfig.json", p->pid,
                            a[0] == '/' ? "root" : "cwd", a[0] == '/' ? "" : "/", (int)len - 4, a);
            break;
        }
    }
}

/* 0 when the app's runtimeconfig.json turns its EventSources off (the default of trimmed,
 * AOT-compatible and file-based apps: no counter or meter ever comes), 1 when it does not say
 * so, -1 when there is none to read. *path is the file read. */
static int eventsources_on(const struct vg_rt_session *s, const char **path)
{
    for (int i = 0; i < 2; i++) {
        json_t *root = s->config_path[i] ? json_load_file(s->config_path[i], 0, NULL) : NULL;
        if (!root)
            continue;
        *path = s->config_path[i];
        json_t *v = json_object_get(
            json_object_get(json_object_get(root, "runtimeOptions"), "configProperties"),
            "System.Diagnostics.Tracing.EventSource.IsSupported");
        int on = json_is_false(v) ? 0 : 1;
        json_decref(root);
        return on;
    }
    return -1;
}

bool vg__dotnet_session_error(struct vg_rt_session *s, char *buf, size_t n)
{
    pthread_mutex_lock(&s->mu);
    uint64_t since = s->run_since, last = s->last_ms;
    pthread_mutex_unlock(&s->mu);
    uint64_t now = vg_mono_ms();
    if (!since || last || now - since < s->stale_ms)
        return false; /* no session yet (the retries log why), values, or too early to say */
    const char *path = NULL;
    if (s->eventsources < 0) /* read once: no file to read says nothing either */
        s->eventsources = eventsources_on(s, &path) != 0;
    if (s->eventsources == 0)
        snprintf(buf, n,
                 "the app turns its EventSources off (System.Diagnostics.Tracing.EventSource."
                 "IsSupported is false in its runtimeconfig.json, the default of trimmed, "
                 "AOT-compatible and file-based apps): it sends no counters or meters; build it "
                 "with the EventSourceSupport property true (a file-based app: "
                 "#:property EventSourceSupport=true)");
    else
        snprintf(buf, n,
                 "no counter or meter has come in %llu s since the EventPipe session started",
                 (unsigned long long)((now - since) / 1000));
    if (!s->said_silent) {
        s->said_silent = true;
        vg_log(VG_LOG_WARN, "runtime", "%s: %s%s%s", s->what, buf, path ? "; read " : "",
               path ? path : "");
    }
    return true;
}

int vg__dotnet_session_open(uv_loop_t *loop, const struct vg_proc *p, void *data,
                            const struct vg_rt_needs *needs, struct vg_rt_session **out)
{
    struct vg_rt_session *s = calloc(1, sizeof *s);
    if (!s)
        return VG_ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->refs, 1);
    s->pid = p->pid;
    s->interval_ms = vg__dotnet_interval_ms(needs, NULL);
    snprintf(s->what, sizeof s->what, "pid %d", p->pid);
    /* dotnet-monitor's default metric providers (absent EventSources cost the target nothing) */
    int rc = add_provider(s, "System.Runtime", needs, false);
    if (rc == 0)
        rc = add_provider(s, "Microsoft.AspNetCore.Hosting", needs, false);
    if (rc == 0)
        rc = add_provider(s, "Grpc.AspNetCore.Server", needs, false);
    s->n_defaults = s->n_providers;
    /* A provider a rule names may be an EventSource or a Meter: both are asked for. A default
     * one is a Meter only when read as one (EventMeter, Metrics.Meters: .NET 9's System.Runtime
     * meter), so that CPUUsage or an EventCounter rule opens no metrics session. */
    for (size_t i = 0; rc == 0 && needs && i < needs->n_metrics; i++) {
        const char *name = needs->metrics[i].provider;
        int at = name ? find_provider(s, name) : -1;
        bool is_default = at >= 0 && (size_t)at < s->n_defaults;
        rc = add_provider(s, name, needs, needs->metrics[i].meter || !is_default);
    }
    find_runtimeconfig(s, p);
    struct vg_buf tail = {0};
    vg__dotnet_meter_args(&tail, s->interval_ms);
    s->meter_tail = tail.data; /* NULL when out of memory: the runtime's defaults then */
    /* a counter comes every interval: three missed (and a margin) make the values stale */
    uint64_t slowest = s->interval_ms;
    for (size_t i = 0; i < s->n_providers; i++)
        slowest = s->provider_ms[i] > slowest ? s->provider_ms[i] : slowest;
    s->stale_ms = 3 * slowest + 5000;
    if (rc == 0) {
        atomic_store(&s->refs, 2);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = -pthread_create(&s->thread, &attr, session_main, s);
        pthread_attr_destroy(&attr);
        if (rc)
            atomic_store(&s->refs, 1);
    }
    if (rc) {
        session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void vg__dotnet_session_sample(struct vg_rt_session *s, struct vg_rt_values *out)
{
    pthread_mutex_lock(&s->mu);
    bool fresh = s->last_ms && vg_mono_ms() - s->last_ms <= s->stale_ms;
    for (size_t i = 0; fresh && i < s->values.n; i++)
        if (vg_rt_values_copy(out, &s->values.v[i]) != 0)
            break;
    /* requests are handed out once: the next sample gets only newer ones */
    for (size_t i = 0; i < s->pending.n_req; i++) {
        const struct vg_rt_request *r = &s->pending.req[i];
        if (vg_rt_values_add_request(out, r->stop, r->status, r->duration_ms, r->path) != 0)
            break;
    }
    vg_rt_values_clear(&s->pending);
    uint64_t dropped = s->dropped;
    s->dropped = 0;
    pthread_mutex_unlock(&s->mu);
    if (dropped)
        vg_log(VG_LOG_WARN, "runtime",
               "%s: %llu request events dropped (more than %d in a sample "
               "interval)",
               s->what, (unsigned long long)dropped, MAX_PENDING_REQUESTS);
}

void vg__dotnet_session_close(struct vg_rt_session *s)
{
    /* The thread sends StopTracing and reads the stream to its end; the last of the two frees s. */
    atomic_store(&s->stop, true);
    session_free(s);
}
