/* CollectLiveMetrics on a .NET process: an EventPipe session for Duration whose counters and
 * meter values are written as they arrive, in dotnet-monitor's shape (JsonCounterLogger): a JSON
 * text sequence (RFC 7464: each record is 0x1E, a JSON object, '\n') of
 *   {"timestamp","provider","name","displayName","unit","counterType","tags","value",
 *    "meterTags","instrumentTags"}
 * counterType "Metric" (an EventCounter's mean, a gauge, an up-down counter, a histogram's
 * percentile with "Percentile=NN" in its tags) or "Rate" (an incrementing counter's increase over
 * the interval, a meter counter's rate).
 *
 * Settings as dotnet-monitor's: IncludeDefaultProviders (System.Runtime,
 * Microsoft.AspNetCore.Hosting, Grpc.AspNetCore.Server; default true), Providers
 * ({ProviderName, CounterNames}), Meters ({MeterName, InstrumentNames}), Duration (30 s). Values
 * come every GlobalCounter.IntervalSeconds (5 s by default; an EventCounters provider at its own
 * GlobalCounter.Providers.NAME.IntervalSeconds), as dotnet-monitor's MetricsSettingsFactory. */
#include "engine/runtimes/dotnet/livemetrics_action.h"

#include "config/error.h"
#include "config/log.h"
#include "config/tree.h"
#include "config/util.h"
#include "engine/runtimes/dotnet/job_session.h"
#include "engine/runtimes/dotnet/nettrace_events.h"
#include "engine/runtimes/dotnet/session.h"
#include "rules/action.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_SOURCES 32

/* One provider or meter and, optionally, the only names wanted from it. */
struct source {
    const char *name;
    const struct vg_node *names; /* SEQ of scalars, or NULL: every counter */
    bool meter;
};

struct lm_state {
    struct source src[MAX_SOURCES];
    size_t n_src;
    struct vg_dnipc_provider prov[MAX_SOURCES + 1];
    size_t n_prov;
    char counter_args[MAX_SOURCES][40]; /* each EventCounters provider's interval */
    struct vg_buf meter_args;
    struct vg_ep_session_config cfg;
    struct vg_ep_session_result res;
    const struct vg_nettrace_info *info;
    struct vg_rt_job *job;
    struct vg_buf rec;
    uint64_t records;
    int rc;
    char err[512];
};

static int add_source(struct lm_state *st, const char *name, const struct vg_node *names,
                      bool meter)
{
    if (!name || !*name)
        return 0;
    if (st->n_src == MAX_SOURCES) {
        snprintf(st->err, sizeof st->err, "more than %d providers and meters", MAX_SOURCES);
        return VG_ELIMIT;
    }
    st->src[st->n_src++] = (struct source){name, names, meter};
    return 0;
}

static int add_list(struct lm_state *st, const struct vg_node *list, const char *key,
                    const char *names_key, bool meter)
{
    for (size_t i = 0; list && list->kind == VG_NODE_SEQ && i < list->n; i++) {
        int rc = add_source(st, vg_node_str(vg_node_get(list->items[i], key)),
                            vg_node_get(list->items[i], names_key), meter);
        if (rc)
            return rc;
    }
    return 0;
}

/* Is provider/name wanted? */
static bool wanted(const struct lm_state *st, const char *provider, const char *name, bool meter)
{
    for (size_t i = 0; i < st->n_src; i++) {
        const struct source *s = &st->src[i];
        if (s->meter != meter || strcasecmp(s->name, provider))
            continue;
        if (!s->names || s->names->kind != VG_NODE_SEQ || s->names->n == 0)
            return true;
        for (size_t k = 0; k < s->names->n; k++) {
            const char *n = vg_node_str(s->names->items[k]);
            if (n && !strcasecmp(n, name))
                return true;
        }
    }
    return false;
}

static void json_str(struct vg_buf *b, const char *s)
{
    vg_buf_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            vg_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            vg_buf_printf(b, "\\u%04x", c);
        else
            vg_buf_append(b, s, 1);
    }
    vg_buf_puts(b, "\"");
}

static int record(struct lm_state *st, int64_t ticks, const char *provider, const char *name,
                  const char *display, const char *unit, bool rate, const char *tags, double value)
{
    struct vg_buf *b = &st->rec;
    b->len = 0;
    char ts[48] = "";
    if (st->info) {
        int64_t ns = vg_nettrace_time(st->info, ticks);
        time_t secs = (time_t)(ns / 1000000000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + n, sizeof ts - n, ".%07lldZ", (long long)(ns % 1000000000 / 100));
    }
    vg_buf_puts(b, "\x1e{\"timestamp\":");
    json_str(b, ts);
    vg_buf_puts(b, ",\"provider\":");
    json_str(b, provider);
    vg_buf_puts(b, ",\"name\":");
    json_str(b, name);
    vg_buf_puts(b, ",\"displayName\":");
    json_str(b, display);
    vg_buf_puts(b, ",\"unit\":");
    json_str(b, unit);
    vg_buf_printf(b, ",\"counterType\":\"%s\",\"tags\":", rate ? "Rate" : "Metric");
    json_str(b, tags);
    vg_buf_printf(b, ",\"value\":%.17g,\"meterTags\":\"\",\"instrumentTags\":\"\"}\n",
                  isfinite(value) ? value : 0.0);
    st->records++;
    return st->job->ops->write(st->job, b->data, b->len);
}

static int on_trace(void *ctx, const struct vg_nettrace_info *info)
{
    ((struct lm_state *)ctx)->info = info;
    return 0;
}

static int on_meta(void *ctx, struct vg_nettrace_meta *m)
{
    enum vg_ep_kind k = vg_ep_classify(m);
    m->tag = k == VG_EP_COUNTER || k == VG_EP_METRIC ? (int)k : 0;
    return 0;
}

static int on_event(void *ctx, const struct vg_nettrace_event *ev)
{
    struct lm_state *st = ctx;
    if (ev->meta->tag == VG_EP_COUNTER) {
        struct vg_ep_counter c;
        if (vg_ep_counter_decode(ev, &c) || !wanted(st, c.provider, c.name, false))
            return 0;
        return record(st, ev->timestamp, c.provider, c.name, c.display_name, c.units, c.increment,
                      "", c.value);
    }
    struct vg_ep_metric m;
    if (vg_ep_metric_decode(ev, &m) || !wanted(st, m.meter, m.instrument, true))
        return 0;
    switch (m.kind) {
    case VG_EP_METRIC_COUNTER:
        return m.has_rate ? record(st, ev->timestamp, m.meter, m.instrument, m.instrument, m.unit,
                                   true, m.tags, m.rate)
                          : 0;
    case VG_EP_METRIC_UPDOWN:
    case VG_EP_METRIC_GAUGE:
        return m.has_value ? record(st, ev->timestamp, m.meter, m.instrument, m.instrument, m.unit,
                                    false, m.tags, m.value)
                           : 0;
    case VG_EP_METRIC_HISTOGRAM:
        for (unsigned i = 0; i < m.nquantiles; i++) {
            char tags[600];
            snprintf(tags, sizeof tags, "%s%sPercentile=%g", m.tags, m.tags[0] ? "," : "",
                     m.quantile[i] * 100);
            int rc = record(st, ev->timestamp, m.meter, m.instrument, m.instrument, m.unit, false,
                            tags, m.quantile_value[i]);
            if (rc)
                return rc;
        }
        return 0;
    default:
        return 0;
    }
}

static void lm_free(struct lm_state *st)
{
    vg_buf_free(&st->meter_args);
    vg_buf_free(&st->rec);
    free(st);
}

static void lm_work(struct vg_rt_job *job)
{
    struct lm_state *st = job->state;
    st->job = job;
    struct vg_nettrace_callbacks cb = {
        .ctx = st, .trace = on_trace, .metadata = on_meta, .event = on_event};
    /* the records are the artifact: a process ending early leaves what was written until then */
    st->rc = vg__dotnet_job_session(job, ".metrics.json", "application/json-seq", &st->cfg, &cb,
                                    NULL, NULL, false, &st->res, st->err, sizeof st->err);
}

static void lm_after(struct vg_rt_job *job)
{
    struct lm_state *st = job->state;
    int rc = st->rc;
    char err[600];
    if (rc == 0)
        vg_log(VG_LOG_INFO, "action", "CollectLiveMetrics: pid %d, %llu values", job->target.pid,
               (unsigned long long)st->records);
    snprintf(err, sizeof err, "%s", st->err[0] ? st->err : vg_strerror(rc));
    lm_free(st);
    job->state = NULL;
    job->ops->done(job, rc, rc ? err : NULL, NULL, NULL, 0);
}

static int lm_start(struct vg_rt_job *job)
{
    const struct vg_act_collect_live_metrics *set = job->settings;
    struct lm_state *st = calloc(1, sizeof *st);
    if (!st)
        return VG_ENOMEM;
    int rc = 0;
    if (!set || set->include_default_providers) {
        static const char *const defaults[] = {"System.Runtime", "Microsoft.AspNetCore.Hosting",
                                               "Grpc.AspNetCore.Server"};
        for (size_t i = 0; i < 3 && !rc; i++)
            rc = add_source(st, defaults[i], NULL, false);
    }
    if (!rc && set)
        rc = add_list(st, set->providers, "ProviderName", "CounterNames", false);
    if (!rc && set)
        rc = add_list(st, set->meters, "MeterName", "InstrumentNames", true);
    if (!rc && st->n_src == 0) {
        snprintf(st->err, sizeof st->err, "no providers or meters to collect");
        rc = VG_EINVAL;
    }
    if (rc) {
        vg_log(VG_LOG_ERROR, "action", "CollectLiveMetrics: pid %d: %s", job->target.pid,
               st->err[0] ? st->err : vg_strerror(rc));
        lm_free(st);
        return rc;
    }
    struct vg_rt_needs iv = {0};
    vg__dotnet_counter_intervals(&iv);
    size_t n_meters = 0;
    for (size_t i = 0; i < st->n_src; i++) {
        if (!st->src[i].meter) {
            char *args = st->counter_args[st->n_prov];
            snprintf(args, sizeof st->counter_args[0], "EventCounterIntervalSec=%g",
                     (double)vg__dotnet_interval_ms(&iv, st->src[i].name) / 1000);
            st->prov[st->n_prov++] = (struct vg_dnipc_provider){st->src[i].name, 0, 4, args};
            continue;
        }
        if (n_meters++ == 0)
            vg_buf_printf(&st->meter_args, "SessionId=vigil-live-%d-%llu;Metrics=", job->target.pid,
                          (unsigned long long)vg_mono_ms());
        else
            vg_buf_puts(&st->meter_args, ",");
        vg_buf_puts(&st->meter_args, st->src[i].name);
    }
    if (n_meters) {
        vg__dotnet_meter_args(&st->meter_args, vg__dotnet_interval_ms(&iv, NULL));
        st->prov[st->n_prov++] =
            (struct vg_dnipc_provider){"System.Diagnostics.Metrics", 0x3, 4, st->meter_args.data};
    }
    st->cfg = (struct vg_ep_session_config){
        .providers = st->prov,
        .n_providers = st->n_prov,
        .buffer_mb = 16,
        .duration_ms = set ? set->duration_ms : 30000,
    };
    job->state = st;
    rc = vg_rt_job_thread(job, lm_work, lm_after);
    if (rc) {
        lm_free(st);
        job->state = NULL;
    }
    return rc;
}

const struct vg_rt_action vg__dotnet_collect_live_metrics = {
    .type = "CollectLiveMetrics",
    .start = lm_start,
    .stoppable = true,
};
