/* dotnet-monitor's EventMeter trigger: a System.Diagnostics.Metrics instrument of a .NET process
 * beyond GreaterThan/LessThan for the whole SlidingWindowDuration. The dotnet adapter's session
 * publishes each time series as a runtime sample named after the instrument (see
 * engine/runtimes/dotnet/session.c): "INSTRUMENT" or "INSTRUMENT{tags}", and for histograms
 * "INSTRUMENT@pNN" per published percentile. A counter's value is its rate over the interval, an
 * up-down counter's and a gauge's their current value, a histogram's the HistogramPercentile
 * (50, 95 or 99: the percentiles the runtime publishes). With several time series (tags), the
 * one furthest beyond the threshold counts. */
#include "rules/trigger_int.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct evm_cfg {
    const char *meter, *instrument;
    double gt, lt;
    bool gt_set, lt_set;
    uint64_t window_ms;
    int64_t percentile;
    bool percentile_set;
    struct vg_rt_metric_ref ref;
    struct vg__range range;
};

static const struct vg_field evm_fields[] = {
    {VG__FLD("MeterName", VG_FIELD_STRING, struct evm_cfg, meter), VG__NOSET, .required = true,
     .help = "a meter name"},
    {VG__FLD("InstrumentName", VG_FIELD_STRING, struct evm_cfg, instrument), VG__NOSET,
     .required = true, .help = "an instrument name"},
    {VG__FLD("GreaterThan", VG_FIELD_DOUBLE, struct evm_cfg, gt), VG__SET(struct evm_cfg, gt_set),
     .help = "a number"},
    {VG__FLD("LessThan", VG_FIELD_DOUBLE, struct evm_cfg, lt), VG__SET(struct evm_cfg, lt_set),
     .help = "a number"},
    {VG__FLD("SlidingWindowDuration", VG_FIELD_DURATION, struct evm_cfg, window_ms), VG__NOSET,
     .min = VG__SEC, .max = VG__DAY, .help = "a duration from 00:00:01 to 1.00:00:00"},
    {VG__FLD("HistogramPercentile", VG_FIELD_INT, struct evm_cfg, percentile),
     VG__SET(struct evm_cfg, percentile_set), .min = 0, .max = 100, .help = "a percentile 0-100"},
};

static void evm_init(void *p)
{
    ((struct evm_cfg *)p)->window_ms = VG__MIN;
}

static size_t evm_check(void *p, const struct vg_trigger_ctx *cx)
{
    struct evm_cfg *c = p;
    c->ref = (struct vg_rt_metric_ref){c->meter, c->instrument};
    c->range =
        (struct vg__range){.gt = c->gt, .lt = c->lt, .has_gt = c->gt_set, .has_lt = c->lt_set};
    return vg__check_range(c->gt_set, c->gt, c->lt_set, c->lt, cx);
}

static const struct vg_rt_metric_ref *evm_rt_metric(const void *p)
{
    return &((const struct evm_cfg *)p)->ref;
}

/* Does sample name `n` belong to the instrument, as the wanted percentile (-1: none)? */
static bool series_of(const char *n, const char *instrument, int percentile)
{
    struct vg_rt_series sr;
    vg_rt_series_split(n, &sr);
    return sr.percentile == percentile && sr.instrument_len == strlen(instrument) &&
           strncasecmp(n, instrument, sr.instrument_len) == 0 &&
           (n[sr.instrument_len] == '\0' || sr.tags || sr.percentile >= 0);
}

static bool evm_observe(const void *p, void *state, const struct vg_sample *s)
{
    const struct evm_cfg *c = p;
    bool have = false;
    double v = 0;
    for (size_t i = 0; s->rt && i < s->rt->n; i++) {
        const struct vg_rt_value *x = &s->rt->v[i];
        if (strcasecmp(x->provider, c->meter) ||
            !series_of(x->name, c->instrument, c->percentile_set ? (int)c->percentile : -1))
            continue; /* another instrument, or a histogram's percentile not asked for */
        /* the series furthest beyond the threshold decides */
        if (!have || (c->gt_set ? x->value > v : x->value < v))
            v = x->value;
        have = true;
    }
    if (!have)
        return false;
    return vg__hold_feed(state, s->t_ms, vg__range_ok(&c->range, v), c->window_ms);
}

const struct vg_trigger_type vg__trigger_eventmeter = {
    .name = "EventMeter",
    .runtime = "dotnet",
    .summary = ".NET meter instrument value beyond thresholds for a sliding window",
    .fields = evm_fields,
    .n_fields = VG_ARRAY_SIZE(evm_fields),
    .config_size = sizeof(struct evm_cfg),
    .state_size = sizeof(struct vg__hold),
    .init = evm_init,
    .check = evm_check,
    .observe = evm_observe,
    .rt_metric = evm_rt_metric,
};
