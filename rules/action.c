/* Action type schemas (dotnet-monitor documentation/configuration/collection-rule-configuration.md)
 * plus vigil's Execute.Timeout. */
#include "rules/action.h"
#include "rules/rules_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DURATION_30S_FIELD(st)                                                                     \
    {                                                                                              \
        VG__FLD("Duration", VG_FIELD_DURATION, st, duration_ms), VG__NOSET,                        \
            .min = VG__SEC, .max = VG__DAY, .help = "a duration from 00:00:01 to 1.00:00:00"       \
    }
#define EGRESS_FIELD(st)                                                                           \
    {                                                                                              \
        VG__FLD("Egress", VG_FIELD_STRING, st, egress), VG__NOSET,                                 \
            .required = true, .help = "the name of an egress provider"                             \
    }
#define ARTIFACT_FIELD(st)                                                                         \
    {                                                                                              \
        VG__FLD("ArtifactName", VG_FIELD_STRING, st, artifact_name), VG__NOSET,                    \
            .help = "a file name for the artifact"                                                 \
    }

static const char *const out_egress[] = {"EgressPath", NULL};
static const char *const out_exit[] = {"ExitCode", NULL};
static const char *const out_value[] = {"Value", NULL};
static const char *const out_none[] = {NULL};

static const char *const dump_types[] = {"WithHeap", "Full", "Mini", "Triage", NULL};
static const char *const dump_modes[] = {"Snapshot", "Stop", NULL};
static const char *const log_levels[] = {"Trace", "Debug",    "Information", "Warning",
                                         "Error", "Critical", "None",        NULL};
static const char *const artifact_formats[] = {"PlainText", "NewlineDelimitedJson", "JsonSequence",
                                               NULL};
static const char *const stacks_formats[] = {"Json", "PlainText", "Speedscope", NULL};
static const char *const trace_profiles[] = {"Cpu", "Http", "Logs", "Metrics", "GcCollect", NULL};
static const char *const event_levels[] = {"LogAlways",     "Critical", "Error", "Warning",
                                           "Informational", "Verbose",  NULL};

/* Reports `msg` at the setting `key` (or at the action when the key is absent). */
__attribute__((format(printf, 3, 4))) static void err_at(const struct vg_action_ctx *cx,
                                                         const char *key, const char *fmt, ...)
{
    const struct vg_node *n = vg_node_get(cx->settings, key);
    char *path = vg_path_join(cx->path, key);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vg_diag_err(cx->diags, n ? &n->pos : cx->pos, path ? path : cx->path, "%s", msg);
    free(path);
}

/* Applies `fields` to every item of the SEQ setting `key`. */
static size_t check_items(const struct vg_action_ctx *cx, const char *key,
                          const struct vg_field *fields, size_t n_fields, size_t item_size)
{
    const struct vg_node *seq = vg_node_get(cx->settings, key);
    char *base;
    size_t errs = 0;
    void *tmp;
    if (!seq || vg_node_is_null(seq))
        return 0;
    if (seq->kind != VG_NODE_SEQ) {
        err_at(cx, key, "expected a list, got a %s", vg_node_kind_name(seq->kind));
        return 1;
    }
    base = vg_path_join(cx->path, key);
    tmp = malloc(item_size);
    for (size_t i = 0; base && tmp && i < seq->n; i++) {
        char *path = vg_path_index(base, i);
        memset(tmp, 0, item_size);
        if (path)
            errs += vg_fields_apply(cx->tree, fields, n_fields, seq->items[i], NULL, path, tmp,
                                    cx->diags);
        free(path);
    }
    free(tmp);
    free(base);
    return errs;
}

/* --- Execute --- */

static const struct vg_field execute_fields[] = {
    {VG__FLD("Path", VG_FIELD_STRING, struct vg_act_execute, path), VG__NOSET, .required = true,
     .help = "the path of an executable"},
    {VG__FLD("Arguments", VG_FIELD_STRING, struct vg_act_execute, arguments), VG__NOSET,
     .help = "a command line"},
    {VG__FLD("IgnoreExitCode", VG_FIELD_BOOL, struct vg_act_execute, ignore_exit_code), VG__NOSET,
     .help = "true or false"},
    {VG__FLD("Timeout", VG_FIELD_DURATION, struct vg_act_execute, timeout_ms), VG__NOSET,
     .min = VG__SEC, .max = VG__DAY, .help = "a duration from 00:00:01 to 1.00:00:00"},
    {VG__FLD("Environment", VG_FIELD_NODE, struct vg_act_execute, environment), VG__NOSET,
     .help = "a map of environment variable names to values"},
};

/* Environment: names a shell would accept, scalar values. */
static size_t execute_check(void *p, const struct vg_action_ctx *cx)
{
    const struct vg_act_execute *s = p;
    const struct vg_node *env = s->environment;
    if (!env || vg_node_is_null(env))
        return 0;
    if (env->kind != VG_NODE_MAP) {
        err_at(cx, "Environment", "expected a map of NAME: value, got a %s",
               vg_node_kind_name(env->kind));
        return 1;
    }
    size_t errs = 0;
    for (size_t i = 0; i < env->n; i++) {
        const char *k = env->pairs[i].key;
        bool ok = k && (isalpha((unsigned char)k[0]) || k[0] == '_');
        for (const char *c = k; ok && *c; c++)
            ok = isalnum((unsigned char)*c) || *c == '_';
        if (!ok) {
            err_at(cx, "Environment",
                   "\"%s\" is not a valid environment variable name (letters, digits and _, "
                   "not starting with a digit)",
                   k ? k : "");
            errs++;
        } else if (env->pairs[i].value->kind != VG_NODE_SCALAR) {
            err_at(cx, "Environment", "the value of %s must be a string, got a %s", k,
                   vg_node_kind_name(env->pairs[i].value->kind));
            errs++;
        }
    }
    return errs;
}

/* --- CollectDump / CollectGCDump --- */

static const char *const dump_writers[] = {"Auto", "Native", "Runtime", NULL};

static const struct vg_field dump_fields[] = {
    EGRESS_FIELD(struct vg_act_collect_dump),
    {VG__FLD("Type", VG_FIELD_ENUM, struct vg_act_collect_dump, type), VG__NOSET,
     .enum_values = dump_types, .help = "WithHeap, Full, Mini or Triage"},
    {VG__FLD("Mode", VG_FIELD_ENUM, struct vg_act_collect_dump, mode), VG__NOSET,
     .enum_values = dump_modes, .help = "Snapshot or Stop"},
    ARTIFACT_FIELD(struct vg_act_collect_dump),
    /* vigil's: the runtime's own dump (.NET) or vigil's ELF core writer */
    {VG__FLD("Writer", VG_FIELD_ENUM, struct vg_act_collect_dump, writer), VG__NOSET,
     .enum_values = dump_writers, .help = "Auto, Native or Runtime"},
};

static void dump_init(void *p)
{
    ((struct vg_act_collect_dump *)p)->type = VG_ACT_DUMP_WITH_HEAP;
    ((struct vg_act_collect_dump *)p)->mode = VG_ACT_DUMP_SNAPSHOT;
}

static const struct vg_field gcdump_fields[] = {
    EGRESS_FIELD(struct vg_act_collect_gcdump),
    ARTIFACT_FIELD(struct vg_act_collect_gcdump),
};

/* --- CollectTrace --- */

static const struct vg_field trace_fields[] = {
    EGRESS_FIELD(struct vg_act_collect_trace),
    {VG__FLD("Profile", VG_FIELD_STRING, struct vg_act_collect_trace, profile), VG__NOSET,
     .help = "Cpu, Http, Logs, Metrics or GcCollect (comma-separated)"},
    {VG__FLD("Providers", VG_FIELD_NODE, struct vg_act_collect_trace, providers), VG__NOSET,
     .help = "a list of event providers"},
    {VG__FLD("RequestRundown", VG_FIELD_BOOL, struct vg_act_collect_trace, request_rundown),
     VG__NOSET, .help = "true or false"},
    {VG__FLD("BufferSizeMegabytes", VG_FIELD_INT, struct vg_act_collect_trace, buffer_size_mb),
     VG__NOSET, .min = 1, .max = 1024, .help = "an integer 1-1024"},
    DURATION_30S_FIELD(struct vg_act_collect_trace),
    {VG__FLD("StoppingEvent", VG_FIELD_NODE, struct vg_act_collect_trace, stopping_event),
     VG__NOSET, .help = "{ProviderName, EventName, PayloadFilter}"},
    ARTIFACT_FIELD(struct vg_act_collect_trace),
};

struct provider_item {
    const char *name, *keywords;
    int level;
    const struct vg_node *arguments;
};
static const struct vg_field provider_fields[] = {
    {VG__FLD("Name", VG_FIELD_STRING, struct provider_item, name), VG__NOSET, .required = true,
     .help = "an event provider name"},
    {VG__FLD("Keywords", VG_FIELD_STRING, struct provider_item, keywords), VG__NOSET,
     .help = "a hexadecimal keyword mask"},
    {VG__FLD("EventLevel", VG_FIELD_ENUM, struct provider_item, level), VG__NOSET,
     .enum_values = event_levels,
     .help = "LogAlways, Critical, Error, Warning, Informational or Verbose"},
    {VG__FLD("Arguments", VG_FIELD_NODE, struct provider_item, arguments), VG__NOSET,
     .help = "a map of provider arguments"},
};

struct stopping_item {
    const char *provider, *event;
    const struct vg_node *payload;
};
static const struct vg_field stopping_fields[] = {
    {VG__FLD("ProviderName", VG_FIELD_STRING, struct stopping_item, provider), VG__NOSET,
     .required = true, .help = "an event provider name"},
    {VG__FLD("EventName", VG_FIELD_STRING, struct stopping_item, event), VG__NOSET,
     .required = true, .help = "an event name"},
    {VG__FLD("PayloadFilter", VG_FIELD_NODE, struct stopping_item, payload), VG__NOSET,
     .help = "a map of payload field -> value"},
};

static void trace_init(void *p)
{
    struct vg_act_collect_trace *s = p;
    s->request_rundown = true;
    s->buffer_size_mb = 256;
    s->duration_ms = 30 * VG__SEC;
}

static size_t trace_check(void *p, const struct vg_action_ctx *cx)
{
    struct vg_act_collect_trace *s = p;
    bool has_providers = s->providers && !vg_node_is_null(s->providers);
    size_t errs = 0;
    if (!!s->profile == has_providers) {
        vg_diag_err(cx->diags, cx->pos, cx->path, "%s",
                    s->profile ? "set either Profile or Providers, not both"
                               : "either Profile or Providers must be set");
        return 1;
    }
    if (s->profile) {
        const char *p0 = s->profile;
        while (*p0) {
            const char *end = strchr(p0, ',');
            size_t n = end ? (size_t)(end - p0) : strlen(p0);
            char word[32];
            size_t a = 0, b = n;
            while (a < b && isspace((unsigned char)p0[a]))
                a++;
            while (b > a && isspace((unsigned char)p0[b - 1]))
                b--;
            bool ok = false;
            if (b - a < sizeof(word)) {
                memcpy(word, p0 + a, b - a);
                word[b - a] = 0;
                for (size_t i = 0; trace_profiles[i]; i++)
                    ok = ok || strcasecmp(word, trace_profiles[i]) == 0;
            }
            if (!ok) {
                err_at(cx, "Profile",
                       "unknown trace profile in \"%s\" (expected Cpu, Http, Logs, Metrics or "
                       "GcCollect, comma-separated)",
                       s->profile);
                return 1;
            }
            p0 += n + (end ? 1 : 0);
        }
    }
    errs += check_items(cx, "Providers", provider_fields, VG_ARRAY_SIZE(provider_fields),
                        sizeof(struct provider_item));
    if (s->stopping_event && !vg_node_is_null(s->stopping_event)) {
        char *path = vg_path_join(cx->path, "StoppingEvent");
        struct stopping_item tmp = {0};
        if (!has_providers) {
            err_at(cx, "StoppingEvent", "%s", "StoppingEvent can only be used with Providers");
            errs++;
        } else if (path) {
            size_t e = vg_fields_apply(cx->tree, stopping_fields, VG_ARRAY_SIZE(stopping_fields),
                                       s->stopping_event, NULL, path, &tmp, cx->diags);
            /* dotnet-monitor: the event's provider must be one of Providers (same spelling) */
            bool listed = false;
            for (size_t i = 0; !e && tmp.provider && s->providers->kind == VG_NODE_SEQ &&
                               i < s->providers->n && !listed;
                 i++) {
                const char *name = vg_node_str(vg_node_get(s->providers->items[i], "Name"));
                listed = name && !strcmp(name, tmp.provider);
            }
            if (!e && tmp.provider && !listed) {
                err_at(cx, "StoppingEvent",
                       "StoppingEvent.ProviderName \"%s\" is not one of Providers", tmp.provider);
                e++;
            }
            errs += e;
        }
        free(path);
    }
    return errs;
}

/* --- CollectLogs --- */

static const struct vg_field logs_fields[] = {
    EGRESS_FIELD(struct vg_act_collect_logs),
    {VG__FLD("DefaultLevel", VG_FIELD_ENUM, struct vg_act_collect_logs, default_level), VG__NOSET,
     .enum_values = log_levels,
     .help = "Trace, Debug, Information, Warning, Error, Critical or None"},
    {VG__FLD("FilterSpecs", VG_FIELD_NODE, struct vg_act_collect_logs, filter_specs), VG__NOSET,
     .help = "a map of logger category -> log level"},
    {VG__FLD("UseAppFilters", VG_FIELD_BOOL, struct vg_act_collect_logs, use_app_filters),
     VG__NOSET, .help = "true or false"},
    {VG__FLD("Format", VG_FIELD_ENUM, struct vg_act_collect_logs, format), VG__NOSET,
     .enum_values = artifact_formats, .help = "PlainText, NewlineDelimitedJson or JsonSequence"},
    DURATION_30S_FIELD(struct vg_act_collect_logs),
    ARTIFACT_FIELD(struct vg_act_collect_logs),
};

static void logs_init(void *p)
{
    struct vg_act_collect_logs *s = p;
    s->default_level = VG_LL_WARNING;
    s->use_app_filters = true;
    s->duration_ms = 30 * VG__SEC;
}

static size_t logs_check(void *p, const struct vg_action_ctx *cx)
{
    struct vg_act_collect_logs *s = p;
    const struct vg_node *m = s->filter_specs;
    size_t errs = 0;
    if (!m || vg_node_is_null(m))
        return 0;
    if (m->kind != VG_NODE_MAP) {
        err_at(cx, "FilterSpecs", "expected a map of category -> level, got a %s",
               vg_node_kind_name(m->kind));
        return 1;
    }
    for (size_t i = 0; i < m->n; i++) {
        const struct vg_node *v = m->pairs[i].value;
        const char *str = vg_node_str(v);
        bool ok = vg_node_is_null(v);
        for (size_t k = 0; !ok && str && log_levels[k]; k++)
            ok = strcasecmp(str, log_levels[k]) == 0;
        if (!ok) {
            char *base = vg_path_join(cx->path, "FilterSpecs");
            char *path = base ? vg_path_join(base, m->pairs[i].key) : NULL;
            vg_diag_err(cx->diags, &v->pos, path ? path : cx->path,
                        "expected a log level (Trace, Debug, Information, Warning, Error, "
                        "Critical or None), got \"%s\"",
                        str ? str : vg_node_kind_name(v->kind));
            free(path);
            free(base);
            errs++;
        }
    }
    return errs;
}

/* --- CollectLiveMetrics --- */

static const struct vg_field live_fields[] = {
    EGRESS_FIELD(struct vg_act_collect_live_metrics),
    {VG__FLD("IncludeDefaultProviders", VG_FIELD_BOOL, struct vg_act_collect_live_metrics,
             include_default_providers),
     VG__NOSET, .help = "true or false"},
    {VG__FLD("Providers", VG_FIELD_NODE, struct vg_act_collect_live_metrics, providers), VG__NOSET,
     .help = "a list of {ProviderName, CounterNames}"},
    {VG__FLD("Meters", VG_FIELD_NODE, struct vg_act_collect_live_metrics, meters), VG__NOSET,
     .help = "a list of {MeterName, InstrumentNames}"},
    DURATION_30S_FIELD(struct vg_act_collect_live_metrics),
    ARTIFACT_FIELD(struct vg_act_collect_live_metrics),
};

struct live_provider {
    const char *name;
    struct vg_strlist names;
};
static const struct vg_field live_provider_fields[] = {
    {VG__FLD("ProviderName", VG_FIELD_STRING, struct live_provider, name), VG__NOSET,
     .required = true, .help = "an event counter provider"},
    {VG__FLD("CounterNames", VG_FIELD_STRLIST, struct live_provider, names), VG__NOSET,
     .help = "a list of counter names"},
};
static const struct vg_field live_meter_fields[] = {
    {VG__FLD("MeterName", VG_FIELD_STRING, struct live_provider, name), VG__NOSET, .required = true,
     .help = "a meter name"},
    {VG__FLD("InstrumentNames", VG_FIELD_STRLIST, struct live_provider, names), VG__NOSET,
     .help = "a list of instrument names"},
};

static void live_init(void *p)
{
    struct vg_act_collect_live_metrics *s = p;
    s->include_default_providers = true;
    s->duration_ms = 30 * VG__SEC;
}

static size_t live_check(void *p, const struct vg_action_ctx *cx)
{
    return check_items(cx, "Providers", live_provider_fields, VG_ARRAY_SIZE(live_provider_fields),
                       sizeof(struct live_provider)) +
           check_items(cx, "Meters", live_meter_fields, VG_ARRAY_SIZE(live_meter_fields),
                       sizeof(struct live_provider));
}

/* --- CollectStacks / CollectExceptions --- */

static const struct vg_field stacks_fields[] = {
    EGRESS_FIELD(struct vg_act_collect_stacks),
    {VG__FLD("Format", VG_FIELD_ENUM, struct vg_act_collect_stacks, format), VG__NOSET,
     .enum_values = stacks_formats, .help = "Json, PlainText or Speedscope"},
    ARTIFACT_FIELD(struct vg_act_collect_stacks),
};

static const struct vg_field exceptions_fields[] = {
    EGRESS_FIELD(struct vg_act_collect_exceptions),
    {VG__FLD("Format", VG_FIELD_ENUM, struct vg_act_collect_exceptions, format), VG__NOSET,
     .enum_values = artifact_formats, .help = "PlainText, NewlineDelimitedJson or JsonSequence"},
    {VG__FLD("Filters", VG_FIELD_NODE, struct vg_act_collect_exceptions, filters), VG__NOSET,
     .help = "{Include, Exclude} exception filters"},
    ARTIFACT_FIELD(struct vg_act_collect_exceptions),
};

/* --- LoadProfiler / environment --- */

static const struct vg_field profiler_fields[] = {
    {VG__FLD("Path", VG_FIELD_STRING, struct vg_act_load_profiler, path), VG__NOSET,
     .required = true, .help = "the path of the profiler library"},
    {VG__FLD("Clsid", VG_FIELD_STRING, struct vg_act_load_profiler, clsid), VG__NOSET,
     .required = true, .help = "a GUID such as 55b9554d-6115-45a2-be1e-c80f7fa35369"},
};

/* 8-4-4-4-12 hex digits, optionally in braces. */
static bool is_guid(const char *s)
{
    static const int groups[] = {8, 4, 4, 4, 12};
    bool brace = *s == '{';
    s += brace;
    for (size_t g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i++, s++)
            if (!isxdigit((unsigned char)*s))
                return false;
        if (g < 4 && *s++ != '-')
            return false;
    }
    if (brace && *s++ != '}')
        return false;
    return *s == 0;
}

static size_t profiler_check(void *p, const struct vg_action_ctx *cx)
{
    struct vg_act_load_profiler *s = p;
    if (is_guid(s->clsid))
        return 0;
    err_at(cx, "Clsid", "expected a GUID such as 55b9554d-6115-45a2-be1e-c80f7fa35369, got \"%s\"",
           s->clsid);
    return 1;
}

static const struct vg_field setenv_fields[] = {
    {VG__FLD("Name", VG_FIELD_STRING, struct vg_act_env, name), VG__NOSET, .required = true,
     .help = "an environment variable name"},
    {VG__FLD("Value", VG_FIELD_STRING, struct vg_act_env, value), VG__NOSET, .help = "a string"},
};

static const struct vg_field getenv_fields[] = {
    {VG__FLD("Name", VG_FIELD_STRING, struct vg_act_env, name), VG__NOSET, .required = true,
     .help = "an environment variable name"},
};

/* --- registry --- */

#define TYPE(nm, fl, sum, fields_, st, eg, outs, init_, check_)                                    \
    {                                                                                              \
        .name = nm, .flags = fl, .summary = sum, .fields = fields_,                                \
        .n_fields = VG_ARRAY_SIZE(fields_), .settings_size = sizeof(st), .egress_offset = eg,      \
        .outputs = outs, .init = init_, .check = check_                                            \
    }
/* Every egress type has Egress and ArtifactName; EG names both offsets. */
#define EG(st) offsetof(st, egress), .artifact_offset = offsetof(st, artifact_name)

static const struct vg_action_type action_execute =
    TYPE("Execute", 0, "runs an executable", execute_fields, struct vg_act_execute, VG_NO_SET,
         out_exit, NULL, execute_check);
static const struct vg_action_type action_dump =
    TYPE("CollectDump", VG_ACTION_EGRESS, "collects a core dump of the process", dump_fields,
         struct vg_act_collect_dump, EG(struct vg_act_collect_dump), out_egress, dump_init, NULL);
static const struct vg_action_type action_gcdump =
    TYPE("CollectGCDump", VG_ACTION_EGRESS, "collects a .NET GC heap dump", gcdump_fields,
         struct vg_act_collect_gcdump, EG(struct vg_act_collect_gcdump), out_egress, NULL, NULL);
static const struct vg_action_type action_trace =
    TYPE("CollectTrace", VG_ACTION_EGRESS, "collects an EventPipe trace", trace_fields,
         struct vg_act_collect_trace, EG(struct vg_act_collect_trace), out_egress, trace_init,
         trace_check);
static const struct vg_action_type action_logs = TYPE(
    "CollectLogs", VG_ACTION_EGRESS, "collects .NET logs", logs_fields, struct vg_act_collect_logs,
    EG(struct vg_act_collect_logs), out_egress, logs_init, logs_check);
static const struct vg_action_type action_live =
    TYPE("CollectLiveMetrics", VG_ACTION_EGRESS, "collects live .NET metrics", live_fields,
         struct vg_act_collect_live_metrics, EG(struct vg_act_collect_live_metrics), out_egress,
         live_init, live_check);
static const struct vg_action_type action_stacks =
    TYPE("CollectStacks", VG_ACTION_EGRESS, "collects managed call stacks", stacks_fields,
         struct vg_act_collect_stacks, EG(struct vg_act_collect_stacks), out_egress, NULL, NULL);
static const struct vg_action_type action_exceptions = TYPE(
    "CollectExceptions", VG_ACTION_EGRESS, "collects recorded .NET exceptions", exceptions_fields,
    struct vg_act_collect_exceptions, EG(struct vg_act_collect_exceptions), out_egress, NULL, NULL);
static const struct vg_action_type action_profiler =
    TYPE("LoadProfiler", 0, "loads a startup profiler", profiler_fields,
         struct vg_act_load_profiler, VG_NO_SET, out_none, NULL, profiler_check);
static const struct vg_action_type action_setenv =
    TYPE("SetEnvironmentVariable", 0, "sets an environment variable in the process", setenv_fields,
         struct vg_act_env, VG_NO_SET, out_none, NULL, NULL);
static const struct vg_action_type action_getenv =
    TYPE("GetEnvironmentVariable", 0, "reads an environment variable of the process", getenv_fields,
         struct vg_act_env, VG_NO_SET, out_value, NULL, NULL);

const struct vg_action_type *const vg_action_types[] = {
    &action_execute,  &action_dump,   &action_gcdump, &action_trace,
    &action_logs,     &action_live,   &action_stacks, &action_exceptions,
    &action_profiler, &action_setenv, &action_getenv,
};
const size_t vg_action_types_count = VG_ARRAY_SIZE(vg_action_types);

const struct vg_action_type *vg_action_type_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < vg_action_types_count; i++)
        if (strcasecmp(name, vg_action_types[i]->name) == 0)
            return vg_action_types[i];
    return NULL;
}

bool vg_action_has_output(const struct vg_action_type *type, const char *name)
{
    for (size_t i = 0; type->outputs && type->outputs[i]; i++)
        if (strcasecmp(type->outputs[i], name) == 0)
            return true;
    return false;
}
