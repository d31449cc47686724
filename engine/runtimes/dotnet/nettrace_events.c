/* Decoders of the few EventPipe events vigil uses: see nettrace_events.h. Field names are the
 * runtime's (EventCounters payloads, MetricsEventSource, LoggingEventSource,
 * DiagnosticSourceEventSource); an event whose metadata lacks a field decodes without it. */
#include "engine/runtimes/dotnet/nettrace_events.h"

#include "config/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P_METRICS "System.Diagnostics.Metrics"
#define P_LOGGING "Microsoft-Extensions-Logging"
#define P_DIAGSOURCE "Microsoft-Diagnostics-DiagnosticSource"

enum vg_ep_kind vg_ep_classify(const struct vg_nettrace_meta *m)
{
    if (strcmp(m->name, "EventCounters") == 0)
        return VG_EP_COUNTER;
    if (strcmp(m->provider, P_METRICS) == 0)
        return VG_EP_METRIC;
    if (strcmp(m->provider, P_LOGGING) == 0)
        return VG_EP_LOG;
    if (strcmp(m->provider, P_DIAGSOURCE) == 0 &&
        (strcmp(m->name, "Activity1Start") == 0 || strcmp(m->name, "Activity1Stop") == 0))
        return VG_EP_REQUEST;
    return VG_EP_NONE;
}

/* A string field into buf ("" when absent). */
static void field_str(const struct vg_nettrace_event *ev, const char *name, char *buf, size_t cap)
{
    struct vg_nettrace_value v;
    buf[0] = '\0';
    if (vg_nettrace_event_field(ev, name, &v) == 0)
        vg_nettrace_value_str(&v, buf, cap);
}

static bool obj_num(const struct vg_nettrace_value *obj, const char *name, double *out)
{
    struct vg_nettrace_value v;
    return vg_nettrace_value_field(obj, name, &v) == 0 && vg_nettrace_value_f64(&v, out) == 0;
}

static void obj_str(const struct vg_nettrace_value *obj, const char *name, char *buf, size_t cap)
{
    struct vg_nettrace_value v;
    buf[0] = '\0';
    if (vg_nettrace_value_field(obj, name, &v) == 0)
        vg_nettrace_value_str(&v, buf, cap);
}

/* ---- EventCounters ---- */

int vg_ep_counter_decode(const struct vg_nettrace_event *ev, struct vg_ep_counter *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(ev->meta->name, "EventCounters") != 0)
        return VG_EINVAL;
    out->provider = ev->meta->provider;
    /* The payload is one unnamed struct holding "Payload" (EventSource.Write of an anonymous
     * type); accept "Payload" at the top as well. */
    struct vg_nettrace_value outer, pl;
    int rc = vg_nettrace_event_field(ev, "Payload", &pl);
    if (rc == VG_ENOTFOUND) {
        rc = vg_nettrace_event_field(ev, "", &outer);
        if (rc == 0)
            rc = vg_nettrace_value_field(&outer, "Payload", &pl);
    }
    if (rc || pl.field->type != VG_NT_OBJECT)
        return VG_EPARSE;
    obj_str(&pl, "Name", out->name, sizeof out->name);
    obj_str(&pl, "DisplayName", out->display_name, sizeof out->display_name);
    obj_str(&pl, "DisplayUnits", out->units, sizeof out->units);
    char type[16];
    obj_str(&pl, "CounterType", type, sizeof type);
    out->increment = strcmp(type, "Sum") == 0;
    double iv = 0;
    if (obj_num(&pl, "IntervalSec", &iv))
        out->interval_sec = iv;
    bool have =
        out->increment ? obj_num(&pl, "Increment", &out->value) : obj_num(&pl, "Mean", &out->value);
    if (!have || !out->name[0])
        return VG_EPARSE;
    return 0;
}

/* ---- System.Diagnostics.Metrics ---- */

/* The runtime formats these with the invariant culture: digits, '.', 'E', "NaN", "Infinity". */
static bool parse_double(const char *s, double *out)
{
    if (!*s)
        return false;
    char *end;
    double d = strtod(s, &end);
    if (*end != '\0')
        return false;
    *out = d;
    return true;
}

/* "0.5=54.6875;0.95=427;0.99=498" */
static void parse_quantiles(char *s, struct vg_ep_metric *m)
{
    while (*s && m->nquantiles < VG_EP_MAX_QUANTILES) {
        char *next = strchr(s, ';');
        if (next)
            *next = '\0';
        char *eq = strchr(s, '=');
        if (eq) {
            *eq = '\0';
            double q, v;
            if (parse_double(s, &q) && parse_double(eq + 1, &v)) {
                m->quantile[m->nquantiles] = q;
                m->quantile_value[m->nquantiles] = v;
                m->nquantiles++;
            }
        }
        if (!next)
            break;
        s = next + 1;
    }
}

static const struct {
    const char *name;
    enum vg_ep_metric_kind kind;
} metric_events[] = {
    {"CounterRateValuePublished", VG_EP_METRIC_COUNTER},
    {"UpDownCounterRateValuePublished", VG_EP_METRIC_UPDOWN},
    {"GaugeValuePublished", VG_EP_METRIC_GAUGE},
    {"HistogramValuePublished", VG_EP_METRIC_HISTOGRAM},
    {"BeginInstrumentReporting", VG_EP_METRIC_INSTRUMENT},
    {"InstrumentPublished", VG_EP_METRIC_INSTRUMENT},
    {"TimeSeriesLimitReached", VG_EP_METRIC_TIMESERIES_LIMIT},
    {"HistogramLimitReached", VG_EP_METRIC_HISTOGRAM_LIMIT},
    {"Error", VG_EP_METRIC_ERROR},
    {"ObservableInstrumentCallbackError", VG_EP_METRIC_ERROR},
    {"MultipleSessionsNotSupportedError", VG_EP_METRIC_SESSION_CONFLICT},
    {"MultipleSessionsConfiguredIncorrectlyError", VG_EP_METRIC_SESSION_CONFLICT},
};

int vg_ep_metric_decode(const struct vg_nettrace_event *ev, struct vg_ep_metric *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(ev->meta->provider, P_METRICS) != 0)
        return VG_EINVAL;
    for (size_t i = 0; i < sizeof metric_events / sizeof metric_events[0]; i++)
        if (strcmp(ev->meta->name, metric_events[i].name) == 0)
            out->kind = metric_events[i].kind;
    if (out->kind == VG_EP_METRIC_OTHER)
        return 0;
    field_str(ev, "sessionId", out->session, sizeof out->session);
    if (out->kind == VG_EP_METRIC_ERROR) {
        field_str(ev, "errorMessage", out->error, sizeof out->error);
        return 0;
    }
    if (out->kind == VG_EP_METRIC_SESSION_CONFLICT) {
        /* NotSupported names the session that owns the source; ConfiguredIncorrectly lists the
         * settings that differ. Either way this session gets no values. */
        if (strcmp(ev->meta->name, "MultipleSessionsNotSupportedError") == 0) {
            char running[64];
            field_str(ev, "runningSessionId", running, sizeof running);
            snprintf(out->error, sizeof out->error,
                     "another metrics session (%s) is running in the process", running);
        } else {
            snprintf(out->error, sizeof out->error,
                     "another metrics session with other MaxHistograms, MaxTimeSeries or "
                     "RefreshInterval is running in the process");
        }
        return 0;
    }
    if (out->kind == VG_EP_METRIC_TIMESERIES_LIMIT || out->kind == VG_EP_METRIC_HISTOGRAM_LIMIT)
        return 0;
    field_str(ev, "meterName", out->meter, sizeof out->meter);
    field_str(ev, "meterVersion", out->meter_version, sizeof out->meter_version);
    field_str(ev, "instrumentName", out->instrument, sizeof out->instrument);
    field_str(ev, "instrumentType", out->instrument_type, sizeof out->instrument_type);
    field_str(ev, "unit", out->unit, sizeof out->unit);
    field_str(ev, "tags", out->tags, sizeof out->tags);
    if (!out->meter[0] || !out->instrument[0])
        return VG_EPARSE;
    char buf[512];
    switch (out->kind) {
    case VG_EP_METRIC_COUNTER:
    case VG_EP_METRIC_UPDOWN:
        field_str(ev, "rate", buf, sizeof buf);
        out->has_rate = parse_double(buf, &out->rate);
        field_str(ev, "value", buf, sizeof buf);
        out->has_value = parse_double(buf, &out->value);
        break;
    case VG_EP_METRIC_GAUGE:
        field_str(ev, "lastValue", buf, sizeof buf);
        out->has_value = parse_double(buf, &out->value);
        break;
    case VG_EP_METRIC_HISTOGRAM: {
        field_str(ev, "quantiles", buf, sizeof buf);
        parse_quantiles(buf, out);
        struct vg_nettrace_value v;
        double d;
        if (vg_nettrace_event_field(ev, "count", &v) == 0 &&
            vg_nettrace_value_i64(&v, &out->count) == 0 &&
            vg_nettrace_event_field(ev, "sum", &v) == 0 && vg_nettrace_value_f64(&v, &d) == 0) {
            out->has_count = true;
            out->sum = d;
        }
        break;
    }
    default:
        break;
    }
    return 0;
}

/* ---- Microsoft-Extensions-Logging ---- */

struct scratch {
    char *buf;
    size_t cap;
    size_t used;
    bool truncated;
};

/* Copies a string field into the scratch buffer; "" when absent or when nothing is left. */
static const char *scratch_str(struct scratch *s, const struct vg_nettrace_event *ev,
                               const char *name)
{
    struct vg_nettrace_value v;
    if (vg_nettrace_event_field(ev, name, &v) != 0 || s->used >= s->cap)
        return "";
    char *dst = s->buf + s->used;
    long n = vg_nettrace_value_str(&v, dst, s->cap - s->used);
    if (n < 0)
        return "";
    if ((size_t)n >= s->cap - s->used) {
        s->truncated = true;
        n = (long)strlen(dst);
    }
    s->used += (size_t)n + 1;
    return dst;
}

static int field_int(const struct vg_nettrace_event *ev, const char *name)
{
    struct vg_nettrace_value v;
    int64_t i;
    if (vg_nettrace_event_field(ev, name, &v) != 0 || vg_nettrace_value_i64(&v, &i) != 0)
        return 0;
    return (int)i;
}

int vg_ep_log_decode(const struct vg_nettrace_event *ev, struct vg_ep_log *out, char *scratch,
                     size_t cap)
{
    memset(out, 0, sizeof *out);
    out->logger = out->event_name = out->message = out->exception_json = out->arguments_json = "";
    out->trace_id = out->span_id = "";
    if (strcmp(ev->meta->provider, P_LOGGING) != 0)
        return VG_EINVAL;
    const char *n = ev->meta->name;
    if (strcmp(n, "FormattedMessage") == 0)
        out->kind = VG_EP_LOG_FORMATTED;
    else if (strcmp(n, "MessageJson") == 0)
        out->kind = VG_EP_LOG_JSON;
    else if (strcmp(n, "ActivityJsonStart") == 0)
        out->kind = VG_EP_LOG_SCOPE_START;
    else if (strcmp(n, "ActivityJsonStop") == 0)
        out->kind = VG_EP_LOG_SCOPE_STOP;
    else
        return 0;
    struct scratch s = {scratch, cap, 0, false};
    out->factory_id = field_int(ev, "FactoryID");
    out->logger = scratch_str(&s, ev, "LoggerName");
    if (out->kind == VG_EP_LOG_SCOPE_START || out->kind == VG_EP_LOG_SCOPE_STOP) {
        out->scope_id = field_int(ev, "ID");
        if (out->kind == VG_EP_LOG_SCOPE_START)
            out->arguments_json = scratch_str(&s, ev, "ArgumentsJson");
    } else {
        out->level = field_int(ev, "Level");
        out->event_id = field_int(ev, "EventId");
        out->event_name = scratch_str(&s, ev, "EventName");
        out->message = scratch_str(&s, ev, "FormattedMessage");
        if (out->kind == VG_EP_LOG_JSON) {
            out->exception_json = scratch_str(&s, ev, "ExceptionJson");
            out->arguments_json = scratch_str(&s, ev, "ArgumentsJson");
        }
        out->trace_id = scratch_str(&s, ev, "ActivityTraceId");
        out->span_id = scratch_str(&s, ev, "ActivitySpanId");
    }
    out->truncated = s.truncated;
    return 0;
}

/* ---- ASP.NET Core requests ---- */

static bool ci_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

int vg_ep_request_decode(const struct vg_nettrace_event *ev, struct vg_ep_request *out)
{
    memset(out, 0, sizeof *out);
    out->status_code = -1;
    out->duration_ticks = -1;
    if (vg_ep_classify(ev->meta) != VG_EP_REQUEST)
        return VG_EINVAL;
    out->stop = strcmp(ev->meta->name, "Activity1Stop") == 0;
    struct vg_nettrace_value v, args, el, k, val;
    if (vg_nettrace_event_field(ev, "EventName", &v) != 0)
        return VG_EPARSE;
    if (!vg_nettrace_value_str_eq(&v, out->stop
                                          ? "Microsoft.AspNetCore.Hosting.HttpRequestIn.Stop"
                                          : "Microsoft.AspNetCore.Hosting.HttpRequestIn.Start"))
        return VG_EINVAL;
    if (vg_nettrace_event_field(ev, "Arguments", &args) != 0)
        return VG_EPARSE;
    struct vg_nettrace_iter it;
    if (vg_nettrace_array_iter(&args, &it) != 0)
        return VG_EPARSE;
    int rc;
    /* Arguments: [{Key, Value}] with the names dotnet-monitor's filter spec asks for. */
    while ((rc = vg_nettrace_iter_next(&it, &el)) == 1) {
        char key[32], value[64];
        if (el.field->type != VG_NT_OBJECT || vg_nettrace_value_field(&el, "Key", &k) != 0 ||
            vg_nettrace_value_field(&el, "Value", &val) != 0)
            return VG_EPARSE;
        if (vg_nettrace_value_str(&k, key, sizeof key) < 0)
            return VG_EPARSE;
        if (ci_eq(key, "Path")) {
            long n = vg_nettrace_value_str(&val, out->path, sizeof out->path);
            out->path_truncated = n >= (long)sizeof out->path;
        } else if (ci_eq(key, "ActivityId")) {
            vg_nettrace_value_str(&val, out->activity_id, sizeof out->activity_id);
        } else if (ci_eq(key, "StatusCode")) {
            vg_nettrace_value_str(&val, value, sizeof value);
            char *end;
            long sc = strtol(value, &end, 10);
            if (*value && !*end && sc >= 0 && sc < 1000)
                out->status_code = (int)sc;
        } else if (ci_eq(key, "ActivityDuration")) {
            vg_nettrace_value_str(&val, value, sizeof value);
            char *end;
            long long d = strtoll(value, &end, 10);
            if (*value && !*end && d >= 0)
                out->duration_ticks = d;
        }
    }
    return rc < 0 ? VG_EPARSE : 0;
}
