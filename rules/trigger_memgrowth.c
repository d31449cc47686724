/* MemoryGrowth: fires once per Delta of growth over a baseline ("dump every +100MB").
 *   Baseline Start    - levels first value + k*Delta; each level fires once.
 *   Baseline Minimum  - lowest value since the last fire (or since the first sample).
 *   Baseline LastFire - the value at the last fire (or the first sample).   [default]
 * Within W additionally requires the growth to have happened within the last W: the value must
 * also be >= (minimum over the last W) + Delta. The baseline survives daemon restarts through
 * save/restore. */
#include "rules/trigger_int.h"

#include <math.h>
#include <stddef.h>

enum { MG_RSS, MG_PSS, MG_CGROUP, MG_JVM_HEAP, MG_JVM_OLD, MG_NODE_HEAP };
/* JvmHeap / JvmOldGen: a JVM's heap in use from its perf-data counters (JVMs only).
 * NodeHeap: a Node process's V8 heap in use, from its inspector (Node processes only). */
static const char *const mg_metrics[] = {"RSS",       "PSS",      "Cgroup", "JvmHeap",
                                         "JvmOldGen", "NodeHeap", NULL};
static const enum vg_metric_id mg_ids[] = {
    VG_M_RSS,           VG_M_PSS,          VG_M_CG_MEM_CURRENT,
    VG_M_JVM_HEAP_USED, VG_M_JVM_OLD_USED, VG_M_NODE_HEAP_USED};

enum { BASE_START, BASE_MINIMUM, BASE_LASTFIRE };
static const char *const mg_baselines[] = {"Start", "Minimum", "LastFire", NULL};

struct mg_cfg {
    int metric;
    uint64_t delta;
    int baseline;
    uint64_t within_ms; /* 0 = no time limit */
};

struct mg_state {
    bool has_base;
    double origin; /* first value seen (Start) */
    double base;   /* Start: current level; Minimum: min since fire; LastFire: value at fire */
    struct vg__winmin win;
};

static const struct vg_field mg_fields[] = {
    {VG__FLD("Metric", VG_FIELD_ENUM, struct mg_cfg, metric), VG__NOSET, .enum_values = mg_metrics,
     .help = "RSS, PSS, Cgroup, JvmHeap, JvmOldGen or NodeHeap"},
    {VG__FLD("Delta", VG_FIELD_SIZE, struct mg_cfg, delta), VG__NOSET, .min = 0, .max = 0,
     .required = true, .help = "a size such as 100MB"},
    {VG__FLD("Baseline", VG_FIELD_ENUM, struct mg_cfg, baseline), VG__NOSET,
     .enum_values = mg_baselines, .help = "Start, Minimum or LastFire"},
    {VG__FLD("Within", VG_FIELD_DURATION, struct mg_cfg, within_ms), VG__NOSET, .min = VG__SEC,
     .max = 365 * VG__DAY, .help = "a duration from 00:00:01 to 365.00:00:00"},
};

static void mg_init(void *p)
{
    struct mg_cfg *c = p;
    c->baseline = BASE_LASTFIRE;
}

static size_t mg_check(void *p, const struct vg_trigger_ctx *cx)
{
    const struct mg_cfg *c = p;
    return vg__check_min(cx->diags, cx->settings, cx->pos, cx->path, "Delta", (double)c->delta, 1,
                         "a size of at least 1 byte");
}

static uint64_t mg_metrics_mask(const void *p)
{
    const struct mg_cfg *c = p;
    return VG_METRIC_BIT(mg_ids[c->metric]);
}

static void mg_reset(const void *p, void *state)
{
    const struct mg_cfg *c = p;
    struct mg_state *st = state;
    vg__winmin_reset(&st->win, c->within_ms);
}

static bool mg_observe(const void *p, void *state, const struct vg_sample *s)
{
    const struct mg_cfg *c = p;
    struct mg_state *st = state;
    enum vg_metric_id id = mg_ids[c->metric];
    double v, delta = (double)c->delta;
    if (!vg_sample_has(s, id))
        return false;
    v = s->v[id];
    if (c->within_ms)
        vg__winmin_add(&st->win, s->t_ms, v);
    if (!st->has_base) {
        st->has_base = true;
        st->origin = st->base = v;
        return false;
    }
    if (c->baseline == BASE_MINIMUM && v < st->base)
        st->base = v;
    if (v < st->base + delta)
        return false;
    if (c->within_ms) {
        double lo;
        if (!vg__winmin_get(&st->win, s->t_ms, c->within_ms, &lo) || v < lo + delta)
            return false;
    }
    if (c->baseline == BASE_START)
        st->base = st->origin + floor((v - st->origin) / delta) * delta;
    else
        st->base = v;
    return true;
}

static void mg_save(const void *p, const void *state, struct vg_trigger_persist *out)
{
    const struct mg_state *st = state;
    if (!st->has_base)
        return;
    out->n = 2;
    out->v[0] = st->origin;
    out->v[1] = st->base;
}

static void mg_restore(const void *p, void *state, const struct vg_trigger_persist *in)
{
    struct mg_state *st = state;
    if (in->n < 2)
        return;
    st->has_base = true;
    st->origin = in->v[0];
    st->base = in->v[1];
}

const struct vg_trigger_type vg__trigger_memgrowth = {
    .name = "MemoryGrowth",
    .summary = "fires once per Delta of memory growth over a baseline",
    .fields = mg_fields,
    .n_fields = VG_ARRAY_SIZE(mg_fields),
    .config_size = sizeof(struct mg_cfg),
    .state_size = sizeof(struct mg_state),
    .init = mg_init,
    .check = mg_check,
    .metrics = mg_metrics_mask,
    .reset = mg_reset,
    .observe = mg_observe,
    .save = mg_save,
    .restore = mg_restore,
};
