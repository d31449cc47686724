/* EventCount: a monotonic counter (any VG_COUNTER metric, e.g. major page faults or cgroup OOM
 * kills) increased by at least Count within the sliding window. After firing, counting starts
 * again from the current value so one burst fires once. On .NET processes the counter may also
 * be a .NET counter reported as increments per interval ("Sum" counters: exception-count,
 * gen-2-gc-count ..., or "Provider/counter"): the running sum of its increments, kept by the
 * dotnet adapter's session, is the monotonic counter. */
#include "rules/trigger_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ec_cfg {
    const char *counter;
    int64_t count;
    uint64_t window_ms;
    int metric;
    bool rt; /* a .NET counter: ref names it */
    struct vg_rt_metric_ref ref;
    char provider[128], name[128];
};

/* System.Runtime's counters that report increments per interval (CounterType Sum). */
static const char *const dotnet_sums[] = {"exception-count",
                                          "gen-0-gc-count",
                                          "gen-1-gc-count",
                                          "gen-2-gc-count",
                                          "alloc-rate",
                                          "threadpool-completed-items-count",
                                          "monitor-lock-contention-count",
                                          "time-in-jit",
                                          "total-pause-time-by-gc",
                                          NULL};

/* "Provider/counter", or one of System.Runtime's Sum counters. */
static bool dotnet_counter(struct ec_cfg *c)
{
    const char *slash = strchr(c->counter, '/');
    if (slash && slash != c->counter && slash[1] &&
        (size_t)(slash - c->counter) < sizeof c->provider && strlen(slash + 1) < sizeof c->name) {
        snprintf(c->provider, sizeof c->provider, "%.*s", (int)(slash - c->counter), c->counter);
        snprintf(c->name, sizeof c->name, "%s", slash + 1);
    } else {
        size_t i = 0;
        while (dotnet_sums[i] && strcasecmp(dotnet_sums[i], c->counter))
            i++;
        if (!dotnet_sums[i])
            return false;
        snprintf(c->provider, sizeof c->provider, "System.Runtime");
        snprintf(c->name, sizeof c->name, "%s", dotnet_sums[i]);
    }
    c->rt = true;
    c->ref = (struct vg_rt_metric_ref){.provider = c->provider, .name = c->name};
    return true;
}

struct ec_state {
    bool has_last;
    double last;
    struct vg__winmin win;
};

static const struct vg_field ec_fields[] = {
    {VG__FLD("Counter", VG_FIELD_STRING, struct ec_cfg, counter), VG__NOSET, .required = true,
     .help = "a counter metric name such as process_major_page_faults_total"},
    {VG__FLD("Count", VG_FIELD_INT, struct ec_cfg, count), VG__NOSET, .min = 0, .max = 0,
     .required = true, .help = "a positive integer"},
    {VG__FLD("SlidingWindowDuration", VG_FIELD_DURATION, struct ec_cfg, window_ms), VG__NOSET,
     .min = VG__SEC, .max = VG__DAY, .help = "a duration from 00:00:01 to 1.00:00:00"},
};

static void ec_init(void *p)
{
    ((struct ec_cfg *)p)->window_ms = VG__MIN;
}

static size_t ec_check(void *p, const struct vg_trigger_ctx *cx)
{
    struct ec_cfg *c = p;
    const struct vg_node *n = vg_node_get(cx->settings, "Counter");
    const char *names[VG_METRIC_COUNT + 1];
    size_t k = 0;
    char *path;
    if (vg__check_min(cx->diags, cx->settings, cx->pos, cx->path, "Count", (double)c->count, 1,
                      "a positive integer"))
        return 1;
    c->metric = vg_metric_lookup(c->counter);
    if (c->metric >= 0 && vg_metric_defs[c->metric].kind == VG_COUNTER)
        return 0;
    if (c->metric < 0 && dotnet_counter(c))
        return 0;
    for (int i = 0; i < VG_METRIC_COUNT; i++)
        if (vg_metric_defs[i].kind == VG_COUNTER)
            names[k++] = vg_metric_defs[i].name;
    names[k] = NULL;
    path = vg_path_join(cx->path, "Counter");
    if (c->metric >= 0) {
        vg_diag_err(cx->diags, n ? &n->pos : cx->pos, path ? path : cx->path,
                    "\"%s\" is a gauge, not a counter; use the Metric trigger for gauges",
                    c->counter);
    } else {
        const char *dym = vg_did_you_mean(c->counter, names);
        vg_diag_err(cx->diags, n ? &n->pos : cx->pos, path ? path : cx->path,
                    "unknown counter \"%s\"%s%s%s", c->counter, dym ? "; did you mean \"" : "",
                    dym ? dym : "", dym ? "\"?" : "");
    }
    free(path);
    return 1;
}

static uint64_t ec_metrics(const void *p)
{
    const struct ec_cfg *c = p;
    return c->rt ? 0 : VG_METRIC_BIT(c->metric);
}

static const char *ec_runtime_for(const void *p)
{
    return ((const struct ec_cfg *)p)->rt ? "dotnet" : NULL;
}

static const struct vg_rt_metric_ref *ec_rt_metric(const void *p)
{
    const struct ec_cfg *c = p;
    return c->rt ? &c->ref : NULL;
}

static void ec_reset(const void *p, void *state)
{
    struct ec_state *st = state;
    st->has_last = false;
    vg__winmin_reset(&st->win, ((const struct ec_cfg *)p)->window_ms);
}

static bool ec_observe(const void *p, void *state, const struct vg_sample *s)
{
    const struct ec_cfg *c = p;
    struct ec_state *st = state;
    double v, lo;
    if (c->rt) {
        const struct vg_rt_value *x = vg_rt_values_find(s->rt, c->ref.provider, c->ref.name);
        if (!x || !x->has_total)
            return false;
        v = x->total;
    } else {
        if (!vg_sample_has(s, c->metric))
            return false;
        v = s->v[c->metric];
    }
    if (st->has_last && v < st->last)
        ec_reset(p, state); /* counter went backwards: a reset, start over */
    st->has_last = true;
    st->last = v;
    vg__winmin_add(&st->win, s->t_ms, v);
    if (!vg__winmin_get(&st->win, s->t_ms, c->window_ms, &lo) || v - lo < (double)c->count)
        return false;
    /* Re-arm from the current value so the same increase is not counted twice. */
    vg__winmin_reset(&st->win, c->window_ms);
    vg__winmin_add(&st->win, s->t_ms, v);
    return true;
}

const struct vg_trigger_type vg__trigger_eventcount = {
    .name = "EventCount",
    .summary = "a counter metric increased by at least Count within a sliding window",
    .fields = ec_fields,
    .n_fields = VG_ARRAY_SIZE(ec_fields),
    .config_size = sizeof(struct ec_cfg),
    .state_size = sizeof(struct ec_state),
    .init = ec_init,
    .check = ec_check,
    .metrics = ec_metrics,
    .reset = ec_reset,
    .observe = ec_observe,
    .runtime_for = ec_runtime_for,
    .rt_metric = ec_rt_metric,
};
