/* CollectLogs on a .NET process: an EventPipe session on Microsoft-Extensions-Logging (the
 * process's EventSourceLogger; LoggingEventSource must be enabled in it, as for dotnet-monitor)
 * for Duration, each record written to the artifact as it arrives in dotnet-monitor's shapes
 * (logs_format.h).
 *
 * The session is dotnet-monitor's (LoggingSourceConfiguration): Microsoft-Extensions-Logging with
 * the FormattedMessage and JsonMessage keywords at DefaultLevel's EventLevel and the argument
 * FilterSpecs ("UseAppFilters" and "Category:Level" pairs, ';'-separated; the process applies
 * them), plus TplEventSource's TasksFlowActivityIds so that every scope start branches the
 * activity id: a record's scopes are then the chain of scopes from its activity id (or its
 * related one) up through their parents, as dotnet-monitor rebuilds them, with at most 10,000
 * open scopes remembered (its ScopeLimit) and, vigil's bound, 16 MiB of their arguments.
 *
 * Settings as dotnet-monitor's: DefaultLevel (Warning; None is refused as dotnet-monitor refuses
 * it), FilterSpecs, UseAppFilters (true), Format (PlainText, NewlineDelimitedJson,
 * JsonSequence), Duration (30 s). The artifact is "yyyyMMdd_HHmmss_fff_PID.txt" whatever the
 * format (dotnet-monitor's name), text/plain, application/x-ndjson or application/json-seq. */
#include "engine/runtimes/dotnet/logs_action.h"

#include "config/error.h"
#include "config/log.h"
#include "config/tree.h"
#include "config/util.h"
#include "engine/runtimes/dotnet/job_session.h"
#include "engine/runtimes/dotnet/logs_format.h"
#include "engine/runtimes/dotnet/nettrace_events.h"
#include "rules/action.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCOPE_LIMIT 10000 /* dotnet-monitor's EventLogsPipelineSettings.ScopeLimit */
/* vigil's: the arguments of the scopes kept, whatever the process sends */
#define SCOPE_BYTES_LIMIT (16u << 20)
#define SCOPE_BUCKETS 4096
#define MAX_SCOPE_DEPTH 256 /* scopes listed for one record, innermost dropped beyond */
/* Strings of one event: the runtime's events are at most 64 KiB of UTF-16, at most 96 KiB of
 * UTF-8 */
#define SCRATCH_BYTES (256 * 1024)

#define KW_FORMATTED_MESSAGE 0x4
#define KW_JSON_MESSAGE 0x8
#define KW_TASKS_FLOW_ACTIVITY_IDS 0x80
#define LEVEL_INFORMATIONAL 4

/* An open scope: its arguments and the scope it branched from. Held by the map and by its
 * children (a parent stays readable after its own stop while a child is open). */
struct scope {
    uint8_t id[16];
    struct scope *parent;
    struct scope *next; /* bucket chain */
    json_t *args;
    size_t bytes; /* its arguments' JSON text */
    unsigned refs;
};

struct logs_state {
    const struct vg_act_collect_logs *set;
    int format;
    struct vg_dnipc_provider prov[2];
    struct vg_buf args;
    struct vg_ep_session_config cfg;
    struct vg_ep_session_result res;
    const struct vg_nettrace_info *info;
    struct vg_rt_job *job;
    char *scratch;
    struct vg_buf last_formatted;
    struct vg_buf rec;
    struct scope *buckets[SCOPE_BUCKETS];
    size_t n_scopes;
    size_t scope_bytes; /* of every scope alive, in the map or held by a child */
    uint64_t records, dropped;
    int rc;
    char err[512];
};

static const char *const level_names[] = {"Trace", "Debug",    "Information", "Warning",
                                          "Error", "Critical", "None"};
/* LogLevel -> EventLevel, LoggingSourceConfiguration.ToEventLevel */
static const uint32_t event_levels[] = {0 /* LogAlways */, 5, 4, 3, 2, 1};

static void scope_unref(struct logs_state *st, struct scope *s)
{
    while (s && --s->refs == 0) {
        struct scope *parent = s->parent;
        st->scope_bytes -= s->bytes;
        json_decref(s->args);
        free(s);
        s = parent;
    }
}

static unsigned bucket(const uint8_t id[16])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ id[i]) * 16777619u;
    return h % SCOPE_BUCKETS;
}

static struct scope **scope_slot(struct logs_state *st, const uint8_t id[16])
{
    struct scope **pp = &st->buckets[bucket(id)];
    while (*pp && memcmp((*pp)->id, id, 16) != 0)
        pp = &(*pp)->next;
    return pp;
}

static struct scope *scope_find(struct logs_state *st, const uint8_t id[16])
{
    return *scope_slot(st, id);
}

static void scope_remove(struct logs_state *st, const uint8_t id[16])
{
    struct scope **pp = scope_slot(st, id), *s = *pp;
    if (!s)
        return;
    *pp = s->next;
    st->n_scopes--;
    scope_unref(st, s);
}

static void scopes_free(struct logs_state *st)
{
    for (size_t i = 0; i < SCOPE_BUCKETS; i++)
        while (st->buckets[i]) {
            struct scope *s = st->buckets[i];
            st->buckets[i] = s->next;
            scope_unref(st, s);
        }
    st->n_scopes = 0;
}

static bool zero_id(const uint8_t id[16])
{
    static const uint8_t zero[16];
    return memcmp(id, zero, 16) == 0;
}

/* ActivityJson/Start: the scope's arguments under the activity id the start branched to. */
static int scope_start(struct logs_state *st, const struct vg_nettrace_event *ev, const char *json)
{
    if (zero_id(ev->activity_id))
        return 0;
    struct scope **slot = scope_slot(st, ev->activity_id);
    size_t bytes = strlen(json);
    if ((!*slot && st->n_scopes >= SCOPE_LIMIT) || st->scope_bytes + bytes > SCOPE_BYTES_LIMIT)
        return 0;
    json_t *args = json_loads(json, 0, NULL);
    if (!json_is_object(args)) {
        json_decref(args);
        return 0;
    }
    struct scope *s = calloc(1, sizeof *s);
    if (!s) {
        json_decref(args);
        return VG_ENOMEM;
    }
    memcpy(s->id, ev->activity_id, 16);
    s->args = args;
    s->bytes = bytes;
    st->scope_bytes += bytes;
    s->refs = 1;
    s->parent = scope_find(st, ev->related_activity_id);
    if (s->parent)
        s->parent->refs++;
    if (*slot)
        scope_remove(st, ev->activity_id); /* a reused id: the new scope replaces it */
    slot = scope_slot(st, ev->activity_id);
    *slot = s;
    st->n_scopes++;
    return 0;
}

static int on_trace(void *ctx, const struct vg_nettrace_info *info)
{
    ((struct logs_state *)ctx)->info = info;
    return 0;
}

static int on_meta(void *ctx, struct vg_nettrace_meta *m)
{
    (void)ctx;
    m->tag = vg_ep_classify(m) == VG_EP_LOG ? VG_EP_LOG : 0;
    return 0;
}

static int on_event(void *ctx, const struct vg_nettrace_event *ev)
{
    struct logs_state *st = ctx;
    struct vg_ep_log l;
    if (vg_ep_log_decode(ev, &l, st->scratch, SCRATCH_BYTES))
        return 0;
    switch (l.kind) {
    case VG_EP_LOG_FORMATTED:
        /* the message of a record without "{OriginalFormat}", which follows it */
        st->last_formatted.len = 0;
        return vg_buf_puts(&st->last_formatted, *l.message ? l.message : l.event_name) ? VG_ENOMEM
                                                                                       : 0;
    case VG_EP_LOG_SCOPE_START:
        return scope_start(st, ev, l.arguments_json);
    case VG_EP_LOG_SCOPE_STOP:
        scope_remove(st, ev->activity_id);
        return 0;
    case VG_EP_LOG_JSON:
        break;
    default:
        return 0;
    }
    const json_t *chain[MAX_SCOPE_DEPTH];
    size_t n = 0;
    struct scope *s = scope_find(st, ev->activity_id);
    if (!s)
        s = scope_find(st, ev->related_activity_id);
    for (; s && n < MAX_SCOPE_DEPTH; s = s->parent)
        chain[n++] = s->args;
    for (size_t i = 0; i < n / 2; i++) { /* outermost first */
        const json_t *t = chain[i];
        chain[i] = chain[n - 1 - i];
        chain[n - 1 - i] = t;
    }
    struct vg_dotnet_log_record r = {
        .unix_ns = st->info ? vg_nettrace_time(st->info, ev->timestamp) : 0,
        .level = l.level,
        .event_id = l.event_id,
        .event_name = l.event_name,
        .category = l.logger,
        .exception_json = l.exception_json,
        .arguments_json = l.arguments_json,
        .last_formatted = st->last_formatted.data ? st->last_formatted.data : "",
        .scopes = chain,
        .n_scopes = n,
    };
    st->rec.len = 0;
    int rc = l.truncated ? VG_EINVAL : vg_dotnet_log_format(&st->rec, st->format, &r);
    if (rc == VG_EINVAL) {
        st->dropped++;
        return 0;
    }
    if (rc)
        return rc;
    st->records++;
    return st->job->ops->write(st->job, st->rec.data, st->rec.len);
}

static void logs_free(struct logs_state *st)
{
    scopes_free(st);
    vg_buf_free(&st->args);
    vg_buf_free(&st->last_formatted);
    vg_buf_free(&st->rec);
    free(st->scratch);
    free(st);
}

static void logs_work(struct vg_rt_job *job)
{
    struct logs_state *st = job->state;
    st->job = job;
    static const char *const types[] = {"text/plain", "application/x-ndjson",
                                        "application/json-seq"};
    struct vg_nettrace_callbacks cb = {
        .ctx = st, .trace = on_trace, .metadata = on_meta, .event = on_event};
    /* the records are the artifact: a process ending early leaves what was written until then */
    st->rc = vg__dotnet_job_session(job, ".txt", types[st->format], &st->cfg, &cb, NULL, NULL,
                                    false, &st->res, st->err, sizeof st->err);
}

static void logs_after(struct vg_rt_job *job)
{
    struct logs_state *st = job->state;
    int rc = st->rc;
    char err[600];
    if (rc == 0)
        vg_log(VG_LOG_INFO, "action", "CollectLogs: pid %d, %llu records (%llu unreadable)",
               job->target.pid, (unsigned long long)st->records, (unsigned long long)st->dropped);
    snprintf(err, sizeof err, "%s", st->err[0] ? st->err : vg_strerror(rc));
    logs_free(st);
    job->state = NULL;
    job->ops->done(job, rc, rc ? err : NULL, NULL, NULL, 0);
}

static int level_of(const char *s)
{
    for (int i = 0; s && i < 7; i++)
        if (!strcasecmp(s, level_names[i]))
            return i;
    return -1;
}

/* LoggingSourceConfiguration.ToFilterSpecsString: "UseAppFilters;Cat:Level;Cat2". */
static int filter_specs(struct logs_state *st, const struct vg_act_collect_logs *set)
{
    struct vg_buf *b = &st->args;
    const struct vg_node *m = set->filter_specs;
    int rc = vg_buf_puts(b, "FilterSpecs=");
    size_t start = b->len;
    if (set->use_app_filters)
        rc = rc ? rc : vg_buf_puts(b, "UseAppFilters");
    for (size_t i = 0; m && m->kind == VG_NODE_MAP && i < m->n && !rc; i++) {
        const char *cat = m->pairs[i].key;
        if (!cat || !*cat)
            continue;
        if (strpbrk(cat, ";:\"")) {
            snprintf(st->err, sizeof st->err,
                     "FilterSpecs: category \"%s\" holds ';', ':' or '\"', which the runtime's "
                     "filter syntax cannot carry",
                     cat);
            return VG_EINVAL;
        }
        int lvl = level_of(vg_node_str(m->pairs[i].value));
        rc = vg_buf_printf(b, "%s%s%s%s", b->len > start ? ";" : "", cat, lvl >= 0 ? ":" : "",
                           lvl >= 0 ? level_names[lvl] : "");
    }
    if (rc)
        return VG_ENOMEM;
    if (strpbrk(b->data + start, ";=")) { /* the runtime's argument syntax: such values quoted */
        char *v = vg_strdup(b->data + start);
        if (!v)
            return VG_ENOMEM;
        b->len = start;
        rc = vg_buf_printf(b, "\"%s\"", v);
        free(v);
    }
    return rc ? VG_ENOMEM : 0;
}

static int logs_check(const struct vg_rt_target *t, const void *settings, char *err, size_t errlen)
{
    (void)t;
    const struct vg_act_collect_logs *set = settings;
    if (set && (set->default_level < VG_LL_TRACE || set->default_level > VG_LL_CRITICAL)) {
        snprintf(err, errlen, "LogLevel None is not supported as the default log level");
        return VG_EINVAL;
    }
    return 0;
}

static int logs_start(struct vg_rt_job *job)
{
    static const struct vg_act_collect_logs defaults = {
        .default_level = VG_LL_WARNING, .use_app_filters = true, .duration_ms = 30000};
    const struct vg_act_collect_logs *set = job->settings ? job->settings : &defaults;
    struct logs_state *st = calloc(1, sizeof *st);
    if (!st)
        return VG_ENOMEM;
    st->set = set;
    st->format = set->format >= VG_FMT_PLAIN_TEXT && set->format <= VG_FMT_JSON_SEQUENCE
                     ? set->format
                     : VG_FMT_PLAIN_TEXT;
    int rc = logs_check(&job->target, set, st->err, sizeof st->err);
    if (!rc)
        rc = filter_specs(st, set);
    if (!rc && !(st->scratch = malloc(SCRATCH_BYTES)))
        rc = VG_ENOMEM;
    if (rc) {
        vg_log(VG_LOG_ERROR, "action", "CollectLogs: pid %d: %s", job->target.pid,
               st->err[0] ? st->err : vg_strerror(rc));
        logs_free(st);
        return rc;
    }
    st->prov[0] = (struct vg_dnipc_provider){"Microsoft-Extensions-Logging",
                                             KW_FORMATTED_MESSAGE | KW_JSON_MESSAGE,
                                             event_levels[set->default_level], st->args.data};
    st->prov[1] = (struct vg_dnipc_provider){"System.Threading.Tasks.TplEventSource",
                                             KW_TASKS_FLOW_ACTIVITY_IDS, LEVEL_INFORMATIONAL, NULL};
    st->cfg = (struct vg_ep_session_config){
        .providers = st->prov,
        .n_providers = 2,
        .buffer_mb = 256, /* dotnet-monitor's default for its pipelines */
        .duration_ms = set->duration_ms,
    };
    job->state = st;
    rc = vg_rt_job_thread(job, logs_work, logs_after);
    if (rc) {
        logs_free(st);
        job->state = NULL;
    }
    return rc;
}

const struct vg_rt_action vg__dotnet_collect_logs = {
    .type = "CollectLogs",
    .start = logs_start,
    .check = logs_check,
    .stoppable = true,
};
