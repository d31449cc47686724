/* /metrics: Prometheus text exposition of every watched process's samples. */
#include "engine/api_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "egress/egress.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* ---------- /metrics ---------- */

static void label_escape(struct vg_buf *b, const char *s)
{
    struct vg_buf u;
    vg_buf_init(&u);
    vg_http_utf8_append(&u, s, strlen(s));
    for (size_t i = 0; i < u.len; i++) {
        char c = u.data[i];
        if (c == '\\' || c == '"')
            vg_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            vg_buf_puts(b, "\\n");
        else
            vg_buf_append(b, &c, 1);
    }
    vg_buf_free(&u);
}

static void put_value(struct vg_buf *b, double v)
{
    if (isnan(v))
        vg_buf_puts(b, "NaN");
    else if (v == floor(v) && fabs(v) < 9e15)
        vg_buf_printf(b, "%.0f", v);
    else
        vg_buf_printf(b, "%.6g", v);
}

static void family(struct vg_buf *b, const char *name, const char *type, const char *help)
{
    vg_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Every watched process; only DefaultProcess's when it is configured, as dotnet-monitor's
 * /metrics serves the default process. */
static bool exported(struct vg_daemon *d, const struct vg_proc *p)
{
    const struct vg_filter_list *fl = &d->gen->cfg->settings.default_process;
    if (!vg__proc_visible(d, p))
        return false;
    if (!fl->n)
        return true;
    struct vg_proc_info info;
    vg__proc_info(p, &info);
    return vg_filters_match(fl->v, fl->n, &info);
}

/* ---------- runtime samples (.NET counters) under dotnet-monitor's Prometheus names ---------- */

static bool prom_char_ok(char c, bool first)
{
    if ((unsigned char)c > 'z')
        return false;
    if (c == '_')
        return true;
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return first ? letter : letter || (c >= '0' && c <= '9');
}

/* dotnet-monitor's PrometheusDataModel: the provider lower-cased without invalid characters,
 * '_', the counter with invalid characters as '_', and the unit ('%' ratio, B and MB bytes). */
static void prom_name(struct vg_buf *b, const struct vg_rt_value *v)
{
    size_t start = b->len;
    for (const char *s = v->provider; *s; s++)
        if (prom_char_ok(*s, s == v->provider))
            vg_buf_printf(b, "%c", *s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    if (b->len == start)
        vg_buf_puts(b, "_");
    const char *unit = v->unit ? v->unit : "";
    if (!strcmp(unit, "%"))
        unit = "ratio";
    else if (!strcasecmp(unit, "B") || !strcasecmp(unit, "MB"))
        unit = "bytes";
    else if (!strcasecmp(unit, "count"))
        unit = "";
    const char *parts[2] = {v->name, unit};
    for (int k = 0; k < 2; k++) {
        if (!*parts[k])
            continue;
        vg_buf_puts(b, "_");
        for (const char *s = parts[k]; *s; s++)
            vg_buf_printf(b, "%c", prom_char_ok(*s, s == parts[k]) ? *s : '_');
    }
}

static double prom_value(const struct vg_rt_value *v)
{
    return v->unit && !strcasecmp(v->unit, "MB") ? v->value * 1e6 : v->value; /* MB, not MiB */
}

/* A runtime value the metric table already exports under its own name and type (jvm_*,
 * nodejs_*: vg_sample_set_runtime copied it into the sample). */
static bool in_metric_table(const struct vg_rt_value *v)
{
    for (int m = 0; m < VG_METRIC_COUNT; m++)
        if (vg_metric_defs[m].runtime && strcmp(vg_metric_defs[m].name, v->name) == 0)
            return true;
    return false;
}

/* Whether `name` (an instrument's samples are "NAME", "NAME{tags}", "NAME@pNN": struct
 * vg_rt_series) is in the list; an empty list takes every name. */
static bool name_listed(const struct vg_strlist *l, const char *name, bool meter)
{
    if (!l->n)
        return true;
    struct vg_rt_series sr = {.instrument_len = strlen(name)};
    if (meter)
        vg_rt_series_split(name, &sr);
    size_t len = sr.instrument_len;
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == len && strncasecmp(l->v[i], name, len) == 0)
            return true;
    return false;
}

static bool source_listed(const struct vg_counter_provider *v, size_t n, const char *provider,
                          const char *name, bool meter)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].name && !strcasecmp(v[i].name, provider) &&
            name_listed(&v[i].counters, name, meter))
            return true;
    return false;
}

/* dotnet-monitor's Metrics settings decide which .NET counters /metrics shows: the default
 * providers (IncludeDefaultProviders), Providers (CounterNames) and Meters (InstrumentNames).
 * A session may read more (what rules need): that is not shown. */
static bool dotnet_shown(const struct vg_metrics_settings *ms, const struct vg_rt_value *v)
{
    static const char *const defaults[] = {"System.Runtime", "Microsoft.AspNetCore.Hosting",
                                           "Grpc.AspNetCore.Server"};
    for (size_t i = 0; ms->include_default_providers && i < VG_ARRAY_SIZE(defaults); i++)
        if (!strcasecmp(v->provider, defaults[i]))
            return true;
    return source_listed(ms->providers, ms->n_providers, v->provider, v->name, false) ||
           source_listed(ms->meters, ms->n_meters, v->provider, v->name, true);
}

static bool shown(struct vg_daemon *d, const struct vg_proc *p, const struct vg_rt_value *v)
{
    if (!p->runtime || strcmp(p->runtime->name, "dotnet") != 0)
        return true;
    return dotnet_shown(&d->gen->cfg->settings.metrics, v);
}

/* The labels vigil puts on every runtime sample; a tag of the same name (or a name Prometheus
 * reserves) is renamed exported_NAME, as Prometheus renames clashing target labels. */
static bool label_taken(const char *key, size_t len)
{
    static const char *const own[] = {"pid", "name", "runtime", "quantile"};
    for (size_t i = 0; i < VG_ARRAY_SIZE(own); i++)
        if (strlen(own[i]) == len && !memcmp(own[i], key, len))
            return true;
    return len >= 2 && key[0] == '_' && key[1] == '_';
}

/* A meter time series' tags ("k=v,k=v" as the runtime sends them) as labels, the key's invalid
 * characters as '_' and the value escaped (dotnet-monitor's GetPrometheusNormalizedLabel). */
static void tag_labels(struct vg_buf *b, const char *tags, size_t len)
{
    struct vg_buf val;
    vg_buf_init(&val);
    for (size_t i = 0; i < len;) {
        size_t n = i, eq;
        while (n < len && tags[n] != ',')
            n++;
        for (eq = i; eq < n && tags[eq] != '='; eq++)
            ;
        if (eq > i && eq < n) {
            vg_buf_puts(b, label_taken(tags + i, eq - i) ? ",exported_" : ",");
            for (size_t k = i; k < eq; k++)
                vg_buf_printf(b, "%c", prom_char_ok(tags[k], k == i) ? tags[k] : '_');
            val.len = 0;
            vg_buf_append(&val, tags + eq + 1, n - eq - 1);
            vg_buf_puts(b, "=\"");
            label_escape(b, val.data ? val.data : "");
            vg_buf_puts(b, "\"");
        }
        i = n + 1;
    }
    vg_buf_free(&val);
}

/* Every sample of process q in the family of v (provider and instrument): one line for a plain
 * counter, one per time series (tags) of a meter's instrument, one per quantile of a histogram. */
static void family_lines(struct vg_buf *b, struct vg_daemon *d, struct vg_proc *q,
                         const struct vg_rt_value *v, const char *family_name)
{
    struct vg_watched *x = exported(d, q) ? q->user : NULL;
    struct vg_rt_series want, sr;
    vg_rt_series_split(v->name, &want);
    for (size_t i = 0; x && x->has_sample && x->last.rt && i < x->last.rt->n; i++) {
        const struct vg_rt_value *qv = &x->last.rt->v[i];
        vg_rt_series_split(qv->name, &sr);
        if (strcasecmp(qv->provider, v->provider) || sr.instrument_len != want.instrument_len ||
            strncasecmp(qv->name, v->name, sr.instrument_len) || !shown(d, q, qv))
            continue;
        vg_buf_printf(b, "%s{pid=\"%d\",name=\"", family_name, q->pid);
        label_escape(b, q->name);
        vg_buf_printf(b, "\",runtime=\"%s\"", q->runtime ? q->runtime->name : "native");
        if (sr.tags)
            tag_labels(b, sr.tags, sr.tags_len);
        if (sr.percentile >= 0)
            vg_buf_printf(b, ",quantile=\"%g\"", sr.percentile / 100.0);
        vg_buf_puts(b, "} ");
        double val = prom_value(qv);
        if (val == floor(val) && fabs(val) < 9e15)
            vg_buf_printf(b, "%.0f\n", val);
        else
            vg_buf_printf(b, "%.15g\n", val);
    }
}

static void runtime_metrics(struct vg_buf *b, struct vg_daemon *d)
{
    struct vg_buf done, key, inst;
    vg_buf_init(&done); /* "\nNAME\n" for every family written */
    vg_buf_init(&key);
    vg_buf_init(&inst);
    for (struct vg_proc *p = vg_proc_table_next(d->procs, NULL); p;
         p = vg_proc_table_next(d->procs, p)) {
        struct vg_watched *w = exported(d, p) ? p->user : NULL;
        for (size_t i = 0; w && w->has_sample && w->last.rt && i < w->last.rt->n; i++) {
            const struct vg_rt_value *v = &w->last.rt->v[i];
            if (in_metric_table(v) || !shown(d, p, v))
                continue;
            /* the family is the instrument's: its tags and quantiles are labels */
            struct vg_rt_series sr;
            vg_rt_series_split(v->name, &sr);
            inst.len = 0;
            vg_buf_append(&inst, v->name, sr.instrument_len);
            struct vg_rt_value fv = *v;
            fv.name = inst.data;
            key.len = 0;
            vg_buf_puts(&key, "\n");
            prom_name(&key, &fv);
            vg_buf_puts(&key, "\n");
            if (done.data && strstr(done.data, key.data))
                continue;
            vg_buf_puts(&done, key.data);
            key.data[key.len - 1] = '\0';
            const char *name = key.data + 1;
            /* dotnet-monitor: a histogram is a summary, every other instrument a gauge */
            family(b, name, sr.percentile >= 0 ? "summary" : "gauge",
                   v->help ? v->help : inst.data);
            /* every process with this metric, under one family */
            for (struct vg_proc *q = p; q; q = vg_proc_table_next(d->procs, q))
                family_lines(b, d, q, v, name);
        }
    }
    vg_buf_free(&done);
    vg_buf_free(&key);
    vg_buf_free(&inst);
}

/* The exposition, rendered at most once per sweep (or when vigil's own counters changed) and
 * shared by every scraper as it is and gzipped: a scrape storm costs neither the sampling loop
 * nor memory per client. */
struct vg__metrics_cache {
    uint64_t ticks;
    const struct vg_gen *gen;
    struct vg_daemon_counters counters;
    struct vg_egress_status egress;
    struct vg_http_blob *text, *gz;
};

/* A process's label set, `{pid="..",name="..",runtime=".."}`, appended to b. */
static void labels(struct vg_buf *b, const struct vg_proc *p)
{
    vg_buf_printf(b, "{pid=\"%d\",name=\"", p->pid);
    label_escape(b, p->name);
    vg_buf_printf(b, "\",runtime=\"%s\"} ", p->runtime ? p->runtime->name : "native");
}

static void render(struct vg_daemon *d, const struct vg_egress_status *es, struct vg_buf *b)
{
    /* the exported processes and their labels, once: then one pass per metric family */
    size_t n = 0, cap = vg_proc_table_count(d->procs);
    struct vg_watched **ws = cap ? calloc(cap, sizeof(*ws)) : NULL;
    size_t *lab = cap ? calloc(cap + 1, sizeof(*lab)) : NULL;
    struct vg_buf lb;
    vg_buf_init(&lb);
    for (struct vg_proc *p = vg_proc_table_next(d->procs, NULL); p && ws && lab && n < cap;
         p = vg_proc_table_next(d->procs, p)) {
        struct vg_watched *w = p->user;
        if (!w || !w->has_sample || !exported(d, p))
            continue;
        ws[n] = w;
        lab[n] = lb.len;
        labels(&lb, p);
        n++;
    }
    if (lab)
        lab[n] = lb.len;
    for (int m = 0; m < VG_METRIC_COUNT; m++) {
        const struct vg_metric_def *def = &vg_metric_defs[m];
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            struct vg_watched *w = ws[i];
            if (!vg_sample_has(&w->last, (enum vg_metric_id)m))
                continue;
            if (!any)
                family(b, def->name, def->kind == VG_COUNTER ? "counter" : "gauge", def->help);
            any = true;
            vg_buf_puts(b, def->name);
            vg_buf_append(b, lb.data + lab[i], lab[i + 1] - lab[i]);
            put_value(b, w->last.v[m]);
            vg_buf_puts(b, "\n");
        }
    }
    free(ws);
    free(lab);
    vg_buf_free(&lb);
    runtime_metrics(b, d);
    struct vg_daemon_counters *c = &d->counters;
    struct {
        const char *name, *type, *help;
        double v;
    } own[] = {
        {"vigil_up", "gauge", "1 while the daemon runs", 1},
        {"vigil_processes", "gauge", "Processes currently discovered", (double)c->processes},
        {"vigil_processes_sampled", "gauge",
         "Processes read from /proc at the last sweep (those rules watch, or every one with "
         "Discovery.SampleAllProcesses)",
         (double)c->processes_sampled},
        {"vigil_rules", "gauge", "Collection rules loaded", (double)d->gen->rules->n_rules},
        {"vigil_rules_fired_total", "counter", "Rule triggers that started an action list",
         (double)c->rules_fired},
        {"vigil_actions_started_total", "counter", "Actions started", (double)c->actions_started},
        {"vigil_actions_succeeded_total", "counter", "Actions that succeeded",
         (double)c->actions_succeeded},
        {"vigil_actions_failed_total", "counter", "Actions that failed", (double)c->actions_failed},
        {"vigil_config_reloads_succeeded_total", "counter", "Configuration reloads applied",
         (double)c->reloads_ok},
        {"vigil_config_reloads_failed_total", "counter", "Configuration reloads rejected",
         (double)c->reloads_failed},
        {"vigil_sample_duration_seconds", "gauge",
         "Duration of the last discovery and sampling sweep", (double)c->sample_duration_us / 1e6},
        {"vigil_sweeps_total", "counter", "Discovery and sampling sweeps completed",
         (double)d->ticks},
    };
    for (size_t i = 0; i < VG_ARRAY_SIZE(own); i++) {
        family(b, own[i].name, own[i].type, own[i].help);
        vg_buf_printf(b, "%s ", own[i].name);
        put_value(b, own[i].v);
        vg_buf_puts(b, "\n");
    }
    struct {
        const char *name, *type, *help;
        uint64_t v;
    } eg[] = {
        {"vigil_uploads_started_total", "counter", "Uploads started (including resumed)",
         es->uploads_started},
        {"vigil_uploads_succeeded_total", "counter", "Uploads confirmed by the provider",
         es->uploads_succeeded},
        {"vigil_uploads_failed_total", "counter", "Uploads that failed", es->uploads_failed},
        {"vigil_uploads_retrying", "gauge", "Uploads waiting to retry", es->uploads_retrying},
        {"vigil_upload_retries_total", "counter", "Upload retries", es->retries},
        {"vigil_upload_bytes_total", "counter", "Bytes accepted by egress providers",
         es->bytes_uploaded},
        {"vigil_spool_bytes", "gauge", "Bytes held in the spool directory", es->spool_bytes},
        {"vigil_spool_quota_bytes", "gauge", "Spool quota in effect", es->spool_quota},
    };
    for (size_t i = 0; i < VG_ARRAY_SIZE(eg); i++) {
        family(b, eg[i].name, eg[i].type, eg[i].help);
        vg_buf_printf(b, "%s %" PRIu64 "\n", eg[i].name, eg[i].v);
    }
}

/* gzip (RFC 1952) of len bytes; NULL when out of memory. Level 1: this text shrinks ~10x even
 * so, at a fraction of the default level's CPU. */
static struct vg_http_blob *gzip_blob(const void *data, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong cap = deflateBound(&z, (uLong)len);
    unsigned char *out = malloc(cap);
    struct vg_http_blob *b = NULL;
    if (out) {
        z.next_in = (Bytef *)(uintptr_t)data;
        z.avail_in = (uInt)len;
        z.next_out = out;
        z.avail_out = (uInt)cap;
        if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
            b = vg_http_blob_new(out, cap - z.avail_out);
            out = NULL;
        }
        free(out);
    }
    deflateEnd(&z);
    return b;
}

void vg__metrics_cache_free(struct vg_api *api)
{
    struct vg__metrics_cache *mc = api->metrics;
    if (!mc)
        return;
    vg_http_blob_unref(mc->text);
    vg_http_blob_unref(mc->gz);
    free(mc);
    api->metrics = NULL;
}

VG__HANDLER(metrics)
{
    struct vg_api *api = ud;
    struct vg_daemon *d = api->d;
    if (!api->metrics && !(api->metrics = calloc(1, sizeof(*api->metrics)))) {
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return;
    }
    struct vg__metrics_cache *mc = api->metrics;
    struct vg_egress_status es;
    vg_egress_status(d->gen->egress, &es);
    bool fresh = mc->text && mc->ticks == d->ticks && mc->gen == d->gen &&
                 memcmp(&mc->counters, &d->counters, sizeof(d->counters)) == 0 &&
                 memcmp(&mc->egress, &es, sizeof(es)) == 0;
    if (!fresh) {
        vg__metrics_cache_free(api);
        if (!(api->metrics = mc = calloc(1, sizeof(*mc)))) {
            vg_http_res_error(res, VG_ENOMEM, "out of memory");
            return;
        }
        struct vg_buf b;
        vg_buf_init(&b);
        render(d, &es, &b);
        size_t len = b.len;
        mc->text = vg_http_blob_new(vg_buf_steal(&b), len);
        if (!mc->text) {
            vg_http_res_error(res, VG_ENOMEM, "out of memory rendering /metrics");
            return;
        }
        mc->ticks = d->ticks;
        mc->gen = d->gen;
        mc->counters = d->counters;
        mc->egress = es;
    }
    const char *ctype = "text/plain; version=0.0.4; charset=utf-8";
    vg_http_res_header(res, "Vary", "Accept-Encoding");
    if (vg_http_req_accepts(req, "gzip")) {
        if (!mc->gz)
            mc->gz = gzip_blob(vg_http_blob_data(mc->text), vg_http_blob_len(mc->text));
        if (mc->gz) {
            vg_http_res_header(res, "Content-Encoding", "gzip");
            vg_http_res_blob(res, 200, ctype, mc->gz);
            return;
        }
    }
    vg_http_res_blob(res, 200, ctype, mc->text);
}

/* ---------- lifecycle ---------- */
