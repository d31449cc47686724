/* CollectTrace on a .NET process: an EventPipe session (eventpipe.c) whose nettrace stream goes
 * straight into the artifact as it arrives (64 KiB at a time: a 1 GB trace never sits in memory),
 * validated on the way. The artifact is committed only when the stream ended complete and valid
 * (the session stopped at the end of Duration, by a stop (vg_rt_job_stop: DELETE
 * /operations/{id}?stop=true, shutdown), or by the process exiting after a clean end); a cancel
 * discards it, and a truncated or corrupted stream aborts it with the parser's reason. Duration 0
 * (the API's durationSeconds=-1) runs until stopped.
 *
 * Settings as dotnet-monitor's: Profile (Cpu, Http, Logs, Metrics, comma-separated) or Providers
 * ({Name, Keywords, EventLevel, Arguments}), RequestRundown (default true), BufferSizeMegabytes
 * (256), Duration (30 s), and with Providers StoppingEvent ({ProviderName, EventName,
 * PayloadFilter}): the trace stops at the first such event, as dotnet-monitor's EventMonitor
 * finds it (the event name as the stream names it or as TraceEvent does, "Task/Opcode" for Start
 * and Stop events; each PayloadFilter field's value as .NET's invariant ToString gives it, compared
 * ordinally; a filter naming a field the event lacks never matches: the trace runs its Duration).
 * The runtime's own events (Microsoft-Windows-DotNETRuntime) carry no names in the stream: a
 * StoppingEvent on them is refused. Not supported yet, refused with a clear error: the GcCollect
 * profile. */
#include "engine/runtimes/dotnet/trace_action.h"

#include "config/error.h"
#include "config/log.h"
#include "config/tree.h"
#include "config/util.h"
#include "engine/runtimes/dotnet/job_session.h"
#include "engine/runtimes/dotnet/session.h"
#include "rules/action.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PROVIDERS 64
#define MAX_PAYLOAD_FILTER 16

/* ClrTraceEventParser.Keywords.Default, dotnet-monitor's Cpu profile. */
#define CLR_DEFAULT_KEYWORDS 0x14C14FCCBDULL
#define LEVEL_INFORMATIONAL 4
#define LEVEL_VERBOSE 5

/* dotnet-monitor's filter for HTTP request activities (HttpRequestSourceConfiguration). */
static const char http_filter[] =
    "FilterAndPayloadSpecs=\""
    "Microsoft.AspNetCore/Microsoft.AspNetCore.Hosting.HttpRequestIn.Start@Activity1Start:-"
    "Request.Scheme;Request.Host;Request.PathBase;Request.QueryString;Request.Path;"
    "Request.Method;ActivityStartTime=*Activity.StartTimeUtc.Ticks;"
    "ActivityParentId=*Activity.ParentId;ActivityId=*Activity.Id;ActivitySpanId=*Activity.SpanId;"
    "ActivityTraceId=*Activity.TraceId;ActivityParentSpanId=*Activity.ParentSpanId;"
    "ActivityIdFormat=*Activity.IdFormat\r\n"
    "Microsoft.AspNetCore/Microsoft.AspNetCore.Hosting.HttpRequestIn.Stop@Activity1Stop:-"
    "ActivityId=*Activity.Id;Request.Path;Response.StatusCode;"
    "ActivityDuration=*Activity.Duration.Ticks\r\n"
    "HttpHandlerDiagnosticListener/System.Net.Http.HttpRequestOut.Start@Activity2Start:-"
    "Request.RequestUri;Request.Method;Request.RequestUri.Host;Request.RequestUri.Port;"
    "ActivityStartTime=*Activity.StartTimeUtc.Ticks;ActivityId=*Activity.Id;"
    "ActivitySpanId=*Activity.SpanId;ActivityTraceId=*Activity.TraceId;"
    "ActivityParentSpanId=*Activity.ParentSpanId;ActivityIdFormat=*Activity.IdFormat\r\n"
    "HttpHandlerDiagnosticListener/System.Net.Http.HttpRequestOut.Stop@Activity2Stop:-"
    "ActivityDuration=*Activity.Duration.Ticks;ActivityId=*Activity.Id\r\n\"";

/* StoppingEvent: the event that ends the trace. */
struct stopper {
    const char *provider, *event; /* borrowed from the settings */
    const char *field[MAX_PAYLOAD_FILTER], *value[MAX_PAYLOAD_FILTER];
    size_t n_filter;
    atomic_bool seen;
    bool warned;
};

struct trace_state {
    struct vg_dnipc_provider prov[MAX_PROVIDERS];
    struct stopper stop;
    bool stopping;
    int pid;
    char *strings[2 * MAX_PROVIDERS]; /* owned names and arguments */
    size_t n_prov, n_strings;
    struct vg_ep_session_config cfg;
    struct vg_ep_session_result res;
    int rc;
    char err[512];
};

static void state_free(struct trace_state *st)
{
    for (size_t i = 0; i < st->n_strings; i++)
        free(st->strings[i]);
    free(st);
}

static char *keep(struct trace_state *st, char *s)
{
    if (s && st->n_strings < 2 * MAX_PROVIDERS)
        st->strings[st->n_strings++] = s;
    else
        free(s), s = NULL;
    return s;
}

static int add(struct trace_state *st, const char *name, uint64_t keywords, uint32_t level,
               const char *args)
{
    if (st->n_prov == MAX_PROVIDERS) {
        snprintf(st->err, sizeof st->err, "more than %d providers", MAX_PROVIDERS);
        return VG_ELIMIT;
    }
    st->prov[st->n_prov++] = (struct vg_dnipc_provider){name, keywords, level, args};
    return 0;
}

static int add_profile(struct trace_state *st, const char *profile)
{
    char *copy = vg_strdup(profile);
    if (!copy)
        return VG_ENOMEM;
    int rc = 0;
    char *save = NULL;
    for (char *p = strtok_r(copy, ", ", &save); p && rc == 0; p = strtok_r(NULL, ", ", &save)) {
        if (!strcasecmp(p, "None")) {
            continue;
        } else if (!strcasecmp(p, "Cpu")) {
            rc = add(st, "Microsoft-DotNETCore-SampleProfiler", 0, LEVEL_INFORMATIONAL, NULL);
            if (!rc)
                rc = add(st, "Microsoft-Windows-DotNETRuntime", CLR_DEFAULT_KEYWORDS,
                         LEVEL_INFORMATIONAL, NULL);
        } else if (!strcasecmp(p, "Http")) {
            rc = add(st, "Microsoft-Diagnostics-DiagnosticSource", 0x3, LEVEL_VERBOSE, http_filter);
            if (!rc) /* activity correlation (TasksFlowActivityIds) */
                rc = add(st, "System.Threading.Tasks.TplEventSource", 0x80, LEVEL_VERBOSE, NULL);
        } else if (!strcasecmp(p, "Logs")) {
            /* FormattedMessage | JsonMessage at Trace, the app's own filters (FilterSpecs empty) */
            rc = add(st, "Microsoft-Extensions-Logging", 0xC, LEVEL_VERBOSE, "FilterSpecs=");
            if (!rc)
                rc = add(st, "System.Threading.Tasks.TplEventSource", 0x80, LEVEL_INFORMATIONAL,
                         NULL);
        } else if (!strcasecmp(p, "Metrics")) {
            /* every GlobalCounter interval, as dotnet-monitor's TraceUtilities */
            static const char *const sources[] = {"System.Runtime", "Microsoft.AspNetCore.Hosting",
                                                  "Grpc.AspNetCore.Server"};
            struct vg_rt_needs iv = {0};
            vg__dotnet_counter_intervals(&iv);
            for (size_t i = 0; i < 3 && rc == 0; i++) {
                char *args =
                    keep(st, vg_asprintf("EventCounterIntervalSec=%g",
                                         (double)vg__dotnet_interval_ms(&iv, sources[i]) / 1000));
                rc = args ? add(st, sources[i], 0, LEVEL_INFORMATIONAL, args) : VG_ENOMEM;
            }
        } else {
            snprintf(st->err, sizeof st->err,
                     "trace profile \"%s\" is not supported%s (supported: Cpu, Http, Logs, "
                     "Metrics)",
                     p, !strcasecmp(p, "GcCollect") ? " yet" : "");
            rc = VG_EUNSUPPORTED;
        }
    }
    free(copy);
    return rc;
}

static const char *const levels[] = {"LogAlways", "Critical",      "Error",
                                     "Warning",   "Informational", "Verbose"};

/* Providers: [{Name, Keywords ("0x..." or decimal), EventLevel, Arguments {k: v}}]. */
static int add_providers(struct trace_state *st, const struct vg_node *list)
{
    if (!list || vg_node_is_null(list))
        return 0;
    if (list->kind != VG_NODE_SEQ) {
        snprintf(st->err, sizeof st->err, "Providers must be a list");
        return VG_EINVAL;
    }
    for (size_t i = 0; i < list->n; i++) {
        const struct vg_node *it = list->items[i];
        const char *name = vg_node_str(vg_node_get(it, "Name"));
        if (!name || !*name) {
            snprintf(st->err, sizeof st->err, "Providers[%zu] has no Name", i);
            return VG_EINVAL;
        }
        /* dotnet-monitor's defaults: every keyword, Verbose */
        uint64_t kw = UINT64_MAX;
        const char *k = vg_node_str(vg_node_get(it, "Keywords"));
        if (k && *k) {
            char *end;
            kw = strtoull(k, &end, 0);
            if (*end) {
                snprintf(st->err, sizeof st->err, "Providers[%zu].Keywords \"%s\" is not a number",
                         i, k);
                return VG_EINVAL;
            }
        }
        uint32_t level = LEVEL_VERBOSE;
        const char *l = vg_node_str(vg_node_get(it, "EventLevel"));
        for (uint32_t j = 0; l && j < 6; j++)
            if (!strcasecmp(l, levels[j]))
                level = j;
        struct vg_buf args = {0};
        const struct vg_node *a = vg_node_get(it, "Arguments");
        for (size_t j = 0; a && a->kind == VG_NODE_MAP && j < a->n; j++) {
            const char *v = vg_node_str(a->pairs[j].value);
            v = v ? v : "";
            /* the runtime's argument syntax: k=v;k2=v2, a value holding ';' or '=' quoted */
            bool quote = strpbrk(v, ";=") != NULL;
            vg_buf_printf(&args, "%s%s=%s%s%s", j ? ";" : "", a->pairs[j].key, quote ? "\"" : "", v,
                          quote ? "\"" : "");
        }
        char *n = keep(st, vg_strdup(name));
        char *as = args.data ? keep(st, args.data) : NULL;
        if (!n)
            return VG_ENOMEM;
        int rc = add(st, n, kw, level, as);
        if (rc)
            return rc;
    }
    return 0;
}

enum { TAG_STOPPING = 1, TAG_MISMATCH };

/* The event name TraceEvent gives an EventSource event: "Task/Start" for a Start or Stop opcode
 * whose name ends so, else the name itself. */
static bool event_named(const struct vg_nettrace_meta *m, const char *want)
{
    if (!strcmp(m->name, want))
        return true;
    static const char *const ops[] = {NULL, "Start", "Stop"};
    if (m->opcode != 1 && m->opcode != 2)
        return false;
    const char *op = ops[m->opcode];
    size_t n = strlen(m->name), k = strlen(op);
    const char *slash = strchr(want, '/');
    return n > k && !strcmp(m->name + n - k, op) && slash && (size_t)(slash - want) == n - k &&
           !strncmp(want, m->name, n - k) && !strcmp(slash + 1, op);
}

static bool has_field(const struct vg_nettrace_meta *m, const char *name)
{
    for (uint16_t i = 0; i < m->nfields; i++)
        if (!strcmp(m->fields[i].name, name))
            return true;
    return false;
}

static int stop_meta(void *ctx, struct vg_nettrace_meta *m)
{
    struct trace_state *st = ctx;
    const struct stopper *s = &st->stop;
    m->tag = 0;
    if (strcmp(m->provider, s->provider) != 0 || !event_named(m, s->event))
        return 0;
    m->tag = TAG_STOPPING;
    for (size_t i = 0; i < s->n_filter; i++)
        if (m->fields_unknown || !has_field(m, s->field[i]))
            m->tag = TAG_MISMATCH;
    return 0;
}

/* A payload value as .NET's Convert.ToString(value, InvariantCulture) writes it. */
static bool value_text(const struct vg_nettrace_value *v, char *buf, size_t cap)
{
    int64_t i;
    double d;
    switch (v->field->type) {
    case VG_NT_STRING:
        return vg_nettrace_value_str(v, buf, cap) >= 0;
    case VG_NT_BOOL32:
        return vg_nettrace_value_i64(v, &i) == 0 && snprintf(buf, cap, "%s", i ? "True" : "False");
    case VG_NT_UINT64:
        if (v->len < 8)
            return false;
        uint64_t u = 0;
        for (int k = 7; k >= 0; k--)
            u = u << 8 | v->data[k];
        return snprintf(buf, cap, "%" PRIu64, u) > 0;
    case VG_NT_FLOAT:
    case VG_NT_DOUBLE:
        if (vg_nettrace_value_f64(v, &d) != 0)
            return false;
        if (isnan(d))
            return snprintf(buf, cap, "NaN") > 0;
        if (isinf(d))
            return snprintf(buf, cap, "%sInfinity", d < 0 ? "-" : "") > 0;
        for (int p = 1; p <= 17; p++) { /* the shortest text that reads back the same */
            snprintf(buf, cap, "%.*G", p, d);
            if (strtod(buf, NULL) == d)
                break;
        }
        return true;
    case VG_NT_GUID:
        if (v->len < 16)
            return false;
        const uint8_t *g = v->data;
        return snprintf(buf, cap,
                        "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                        g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11],
                        g[12], g[13], g[14], g[15]) > 0;
    default:
        return vg_nettrace_value_i64(v, &i) == 0 && snprintf(buf, cap, "%" PRId64, i) > 0;
    }
}

static int stop_event(void *ctx, const struct vg_nettrace_event *ev)
{
    struct trace_state *st = ctx;
    struct stopper *s = &st->stop;
    if (atomic_load(&s->seen))
        return 0;
    if (ev->meta->tag == TAG_MISMATCH) {
        if (!s->warned)
            vg_log(VG_LOG_WARN, "action",
                   "CollectTrace: pid %d: StoppingEvent %s/%s: the event lacks a PayloadFilter "
                   "field; the trace runs for its Duration",
                   st->pid, s->provider, s->event);
        s->warned = true;
        return 0;
    }
    char text[1024];
    for (size_t i = 0; i < s->n_filter; i++) {
        struct vg_nettrace_value v;
        if (vg_nettrace_event_field(ev, s->field[i], &v) != 0 ||
            !value_text(&v, text, sizeof text) || strcmp(text, s->value[i]) != 0)
            return 0;
    }
    atomic_store(&s->seen, true);
    return 0;
}

/* StoppingEvent's settings (validated by the rule compiler); err set on what cannot work. */
static int take_stopping_event(struct trace_state *st, const struct vg_node *n)
{
    struct stopper *s = &st->stop;
    s->provider = vg_node_str(vg_node_get(n, "ProviderName"));
    s->event = vg_node_str(vg_node_get(n, "EventName"));
    if (!s->provider || !s->event) {
        snprintf(st->err, sizeof st->err, "StoppingEvent needs ProviderName and EventName");
        return VG_EINVAL;
    }
    if (!strcmp(s->provider, "Microsoft-Windows-DotNETRuntime")) {
        snprintf(st->err, sizeof st->err,
                 "StoppingEvent on Microsoft-Windows-DotNETRuntime is not supported: the "
                 "runtime's own events carry no names in the stream");
        return VG_EUNSUPPORTED;
    }
    const struct vg_node *pf = vg_node_get(n, "PayloadFilter");
    for (size_t i = 0; pf && pf->kind == VG_NODE_MAP && i < pf->n; i++) {
        if (s->n_filter == MAX_PAYLOAD_FILTER) {
            snprintf(st->err, sizeof st->err, "StoppingEvent.PayloadFilter: more than %d fields",
                     MAX_PAYLOAD_FILTER);
            return VG_ELIMIT;
        }
        const char *v = vg_node_str(pf->pairs[i].value);
        s->field[s->n_filter] = pf->pairs[i].key;
        s->value[s->n_filter++] = v ? v : "";
    }
    st->stopping = true;
    return 0;
}

static int sink(void *ctx, const void *buf, size_t len)
{
    struct vg_rt_job *job = ctx;
    return job->ops->write(job, buf, len);
}

static void trace_work(struct vg_rt_job *job)
{
    struct trace_state *st = job->state;
    struct vg_nettrace_callbacks cb = {.ctx = st, .metadata = stop_meta, .event = stop_event};
    /* the stream goes to the artifact as it arrives; a trace must end complete to be shipped */
    st->rc = vg__dotnet_job_session(job, ".nettrace", "application/octet-stream", &st->cfg,
                                    st->stopping ? &cb : NULL, sink, job, true, &st->res, st->err,
                                    sizeof st->err);
    if (st->rc == 0 && st->stopping && atomic_load(&st->stop.seen))
        vg_log(VG_LOG_INFO, "action", "CollectTrace: pid %d: stopped by StoppingEvent %s/%s",
               job->target.pid, st->stop.provider, st->stop.event);
}

static void trace_after(struct vg_rt_job *job)
{
    struct trace_state *st = job->state;
    int rc = st->rc;
    char err[600];
    if (rc == 0)
        vg_log(VG_LOG_INFO, "action", "CollectTrace: pid %d, %llu bytes, %llu events (%llu lost)",
               job->target.pid, (unsigned long long)st->res.bytes,
               (unsigned long long)st->res.stats.events,
               (unsigned long long)st->res.stats.events_lost);
    snprintf(err, sizeof err, "%s", st->err[0] ? st->err : vg_strerror(rc));
    char **names = calloc(1, sizeof(char *)), **values = calloc(1, sizeof(char *));
    size_t n = 0;
    if (rc == 0 && names && values) {
        names[0] = vg_strdup("Bytes");
        values[0] = vg_asprintf("%llu", (unsigned long long)st->res.bytes);
        n = names[0] && values[0] ? 1 : 0;
    }
    if (!n) {
        free(names ? names[0] : NULL);
        free(values ? values[0] : NULL);
        free(names);
        free(values);
        names = values = NULL;
    }
    state_free(st);
    job->state = NULL;
    job->ops->done(job, rc, rc ? err : NULL, names, values, n);
}

/* The settings into st: StoppingEvent, then the providers. 0 or VG_E* with st->err set. */
static int trace_setup(struct trace_state *st, const struct vg_act_collect_trace *set)
{
    int rc = 0;
    if (set && set->stopping_event && !vg_node_is_null(set->stopping_event))
        rc = take_stopping_event(st, set->stopping_event);
    if (!rc && set && set->profile)
        rc = add_profile(st, set->profile);
    if (!rc && set)
        rc = add_providers(st, set->providers);
    if (!rc && !st->n_prov) /* dotnet-monitor's default for /trace: Cpu, Http and Metrics */
        rc = add_profile(st, "Cpu,Http,Metrics");
    return rc;
}

static int trace_start(struct vg_rt_job *job)
{
    const struct vg_act_collect_trace *set = job->settings;
    struct trace_state *st = calloc(1, sizeof *st);
    if (!st)
        return VG_ENOMEM;
    st->pid = job->target.pid;
    int rc = trace_setup(st, set);
    if (rc) {
        if (st->err[0])
            vg_log(VG_LOG_ERROR, "action", "CollectTrace: pid %d: %s", job->target.pid, st->err);
        state_free(st);
        return rc;
    }
    st->cfg = (struct vg_ep_session_config){
        .providers = st->prov,
        .n_providers = st->n_prov,
        .buffer_mb = set ? (uint32_t)set->buffer_size_mb : 256,
        .request_rundown = set ? set->request_rundown : true,
        .duration_ms = set ? set->duration_ms : 30000,
        .stop_seen = st->stopping ? &st->stop.seen : NULL,
    };
    job->state = st;
    rc = vg_rt_job_thread(job, trace_work, trace_after);
    if (rc) {
        state_free(st);
        job->state = NULL;
    }
    return rc;
}

/* Before a caller streams the trace as an HTTP response: the settings start() would refuse
 * (an unknown or unsupported profile, bad Providers, a StoppingEvent on unnamed events). */
static int trace_check(const struct vg_rt_target *t, const void *settings, char *err, size_t n)
{
    struct trace_state *st = calloc(1, sizeof *st);
    if (!st)
        return VG_ENOMEM;
    int rc = trace_setup(st, settings);
    if (rc)
        snprintf(err, n, "CollectTrace on pid %d (.NET): %s", t->pid,
                 st->err[0] ? st->err : vg_strerror(rc));
    state_free(st);
    return rc;
}

const struct vg_rt_action vg__dotnet_collect_trace = {
    .type = "CollectTrace",
    .start = trace_start,
    .check = trace_check,
    .stoppable = true,
};
