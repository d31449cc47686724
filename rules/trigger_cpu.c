/* CPUUsage: CPU use (percent of the capacity available to the process) held above/below a
 * threshold for a whole sliding window. Same settings as dotnet-monitor's CPUUsage shortcut,
 * which reads System.Runtime's cpu-usage: so does this one on a process whose sample carries
 * that counter (a .NET process with a counters session), and /proc's figure on every other
 * sample (any other process, or a .NET one whose counters are not there), so the rule never
 * goes blind. Both are percentages 0-100 of the CPUs the process may use. */
#include "rules/trigger_int.h"

#include <stddef.h>

struct cpu_cfg {
    double gt, lt;
    bool gt_set, lt_set;
    uint64_t window_ms;
    struct vg__range range;
};

static const struct vg_field cpu_fields[] = {
    {VG__FLD("GreaterThan", VG_FIELD_DOUBLE, struct cpu_cfg, gt), VG__SET(struct cpu_cfg, gt_set),
     .min = 0, .max = 100, .help = "a percentage 0-100"},
    {VG__FLD("LessThan", VG_FIELD_DOUBLE, struct cpu_cfg, lt), VG__SET(struct cpu_cfg, lt_set),
     .min = 0, .max = 100, .help = "a percentage 0-100"},
    {VG__FLD("SlidingWindowDuration", VG_FIELD_DURATION, struct cpu_cfg, window_ms), VG__NOSET,
     .min = VG__SEC, .max = VG__DAY, .help = "a duration from 00:00:01 to 1.00:00:00"},
};

static void cpu_init(void *p)
{
    struct cpu_cfg *c = p;
    c->gt = 50;
    c->window_ms = VG__MIN;
}

static size_t cpu_check(void *p, const struct vg_trigger_ctx *cx)
{
    struct cpu_cfg *c = p;
    /* dotnet-monitor: "If LessThan is specified, the default value of GreaterThan becomes null". */
    c->range.has_gt = c->gt_set || !c->lt_set;
    c->range.gt = c->gt;
    c->range.has_lt = c->lt_set;
    c->range.lt = c->lt;
    if (c->range.has_gt && c->range.has_lt && c->gt >= c->lt) {
        vg_diag_err(cx->diags, cx->pos, cx->path,
                    "GreaterThan (%g) must be lower than LessThan (%g): no value can satisfy both",
                    c->gt, c->lt);
        return 1;
    }
    return 0;
}

static uint64_t cpu_metrics(const void *p)
{
    return VG_METRIC_BIT(VG_M_CPU_PERCENT); /* the fallback is always sampled */
}

static const struct vg_rt_metric_ref cpu_counter = {.provider = "System.Runtime",
                                                    .name = "cpu-usage"};

static const struct vg_rt_metric_ref *cpu_rt_metric(const void *p)
{
    return &cpu_counter;
}

static bool cpu_observe(const void *p, void *state, const struct vg_sample *s)
{
    const struct cpu_cfg *c = p;
    const struct vg_rt_value *rt = vg_rt_values_find(s->rt, cpu_counter.provider, cpu_counter.name);
    if (!rt && !vg_sample_has(s, VG_M_CPU_PERCENT))
        return false; /* a missing sample shows up as a gap on the next one */
    double v = rt ? rt->value : s->v[VG_M_CPU_PERCENT];
    return vg__hold_feed(state, s->t_ms, vg__range_ok(&c->range, v), c->window_ms);
}

const struct vg_trigger_type vg__trigger_cpu = {
    .name = "CPUUsage",
    .flags = VG_TRIGGER_RT_PREFERRED,
    .summary = "CPU usage above (or below) a percentage for a whole sliding window",
    .fields = cpu_fields,
    .n_fields = VG_ARRAY_SIZE(cpu_fields),
    .config_size = sizeof(struct cpu_cfg),
    .state_size = sizeof(struct vg__hold),
    .init = cpu_init,
    .check = cpu_check,
    .metrics = cpu_metrics,
    .observe = cpu_observe,
    .rt_metric = cpu_rt_metric,
};
