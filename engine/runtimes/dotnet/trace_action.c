/* CollectTrace on a .NET process: an EventPipe session (eventpipe.c) whose nettrace stream goes
 * straight into the artifact as it arrives (64 KiB at a time: a 1 GB trace never sits in memory),
 * validated on the way. The artifact is committed only when the stream ended complete and valid
 * (the session stopped at the end of Duration, by cancel, or by the process exiting after a clean
 * end); a truncated or corrupted stream aborts it with the parser's reason.
 *
 * Settings as dotnet-monitor's: Profile (Cpu, Http, Logs, Metrics, comma-separated) or Providers
 * ({Name, Keywords, EventLevel, Arguments}), RequestRundown (default true), BufferSizeMegabytes
 * (256), Duration (30 s). Not supported yet, refused with a clear error: the GcCollect profile and
 * StoppingEvent. */
#include "engine/runtimes/dotnet/trace_action.h"

#include "config/error.h"
#include "config/log.h"
#include "config/tree.h"
#include "config/util.h"
#include "engine/runtimes/dotnet/job_session.h"
#include "rules/action.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PROVIDERS 64

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

struct trace_state {
    struct vg_dnipc_provider prov[MAX_PROVIDERS];
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
            static const char *const sources[] = {"System.Runtime", "Microsoft.AspNetCore.Hosting",
                                                  "Grpc.AspNetCore.Server"};
            for (size_t i = 0; i < 3 && rc == 0; i++)
                rc = add(st, sources[i], 0, LEVEL_INFORMATIONAL, "EventCounterIntervalSec=5");
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

static int sink(void *ctx, const void *buf, size_t len)
{
    struct vg_rt_job *job = ctx;
    return job->ops->write(job, buf, len);
}

static void trace_work(struct vg_rt_job *job)
{
    struct trace_state *st = job->state;
    /* the stream goes to the artifact as it arrives; a trace must end complete to be shipped */
    st->rc = vg__dotnet_job_session(job, ".nettrace", "application/octet-stream", &st->cfg, NULL,
                                    sink, job, true, &st->res, st->err, sizeof st->err);
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

static int trace_start(struct vg_rt_job *job)
{
    const struct vg_act_collect_trace *set = job->settings;
    struct trace_state *st = calloc(1, sizeof *st);
    if (!st)
        return VG_ENOMEM;
    int rc = 0;
    if (set && set->stopping_event && !vg_node_is_null(set->stopping_event)) {
        vg_log(VG_LOG_ERROR, "action", "CollectTrace: pid %d: StoppingEvent is not supported yet",
               job->target.pid);
        rc = VG_EUNSUPPORTED;
    }
    if (!rc && set && set->profile)
        rc = add_profile(st, set->profile);
    if (!rc && set)
        rc = add_providers(st, set->providers);
    if (!rc && !st->n_prov) /* dotnet-monitor's default for /trace: Cpu, Http and Metrics */
        rc = add_profile(st, "Cpu,Http,Metrics");
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
    };
    job->state = st;
    rc = vg_rt_job_thread(job, trace_work, trace_after);
    if (rc) {
        state_free(st);
        job->state = NULL;
    }
    return rc;
}

/* Before a caller streams the trace as an HTTP response: the settings the runtime cannot honour
 * (an unknown or unsupported profile, bad Providers, StoppingEvent), as start() would refuse
 * them. */
static int trace_check(const struct vg_rt_target *t, const void *settings, char *err, size_t n)
{
    const struct vg_act_collect_trace *set = settings;
    struct trace_state *st = calloc(1, sizeof *st);
    if (!st)
        return VG_ENOMEM;
    int rc = 0;
    if (set && set->stopping_event && !vg_node_is_null(set->stopping_event)) {
        snprintf(st->err, sizeof st->err, "StoppingEvent is not supported yet");
        rc = VG_EUNSUPPORTED;
    }
    if (!rc && set && set->profile)
        rc = add_profile(st, set->profile);
    if (!rc && set)
        rc = add_providers(st, set->providers);
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
};
