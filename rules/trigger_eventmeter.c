/* dotnet-monitor's EventMeter trigger (System.Diagnostics.Metrics instruments). Needs a runtime
 * adapter: schema only for now. */
#include "rules/trigger_int.h"

#include <stddef.h>

struct evm_cfg {
    const char *meter, *instrument;
    double gt, lt;
    bool gt_set, lt_set;
    uint64_t window_ms;
    int64_t percentile;
    bool percentile_set;
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
    return vg__check_range(c->gt_set, c->gt, c->lt_set, c->lt, cx);
}

const struct vg_trigger_type vg__trigger_eventmeter = {
    .name = "EventMeter",
    .runtime = "dotnet",
    .summary = ".NET meter instrument value beyond thresholds for a sliding window",
    .fields = evm_fields,
    .n_fields = VG_ARRAY_SIZE(evm_fields),
    .config_size = sizeof(struct evm_cfg),
    .init = evm_init,
    .check = evm_check,
};
