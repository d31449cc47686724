/* dotnet-monitor's EventCounter trigger and its GCHeapSize / ThreadpoolQueueLength shortcuts:
 * a counter of a .NET process (read over EventPipe by the dotnet adapter's shared session,
 * struct vg_sample.rt) beyond GreaterThan/LessThan for the whole SlidingWindowDuration. */
#include "rules/trigger_int.h"

#include <stddef.h>

struct evc_cfg {
    const char *provider, *counter;
    double gt, lt;
    bool gt_set, lt_set;
    uint64_t window_ms;
    struct vg_rt_metric_ref ref; /* what is read: provider/counter, or the shortcut's */
    struct vg__range range;
};

#define EVC_WINDOW                                                                                 \
    {                                                                                              \
        VG__FLD("SlidingWindowDuration", VG_FIELD_DURATION, struct evc_cfg, window_ms), VG__NOSET, \
            .min = VG__SEC, .max = VG__DAY, .help = "a duration from 00:00:01 to 1.00:00:00"       \
    }

static const struct vg_field evc_fields[] = {
    {VG__FLD("ProviderName", VG_FIELD_STRING, struct evc_cfg, provider), VG__NOSET,
     .required = true, .help = "an EventSource name such as System.Runtime"},
    {VG__FLD("CounterName", VG_FIELD_STRING, struct evc_cfg, counter), VG__NOSET, .required = true,
     .help = "a counter name such as cpu-usage"},
    {VG__FLD("GreaterThan", VG_FIELD_DOUBLE, struct evc_cfg, gt), VG__SET(struct evc_cfg, gt_set),
     .help = "a number"},
    {VG__FLD("LessThan", VG_FIELD_DOUBLE, struct evc_cfg, lt), VG__SET(struct evc_cfg, lt_set),
     .help = "a number"},
    EVC_WINDOW,
};

static const struct vg_field gcheap_fields[] = {
    {VG__FLD("GreaterThan", VG_FIELD_DOUBLE, struct evc_cfg, gt), VG__SET(struct evc_cfg, gt_set),
     .min = 0, .max = 0, .help = "a size in MB"},
    {VG__FLD("LessThan", VG_FIELD_DOUBLE, struct evc_cfg, lt), VG__SET(struct evc_cfg, lt_set),
     .min = 0, .max = 100, .help = "a size in MB, 0-100"},
    EVC_WINDOW,
};

static const struct vg_field tpq_fields[] = {
    {VG__FLD("GreaterThan", VG_FIELD_DOUBLE, struct evc_cfg, gt), VG__SET(struct evc_cfg, gt_set),
     .min = 0, .max = 0, .help = "a queue length"},
    {VG__FLD("LessThan", VG_FIELD_DOUBLE, struct evc_cfg, lt), VG__SET(struct evc_cfg, lt_set),
     .min = 0, .max = 0, .help = "a queue length"},
    EVC_WINDOW,
};

static void evc_init(void *p)
{
    ((struct evc_cfg *)p)->window_ms = VG__MIN;
}

static size_t evc_check(void *p, const struct vg_trigger_ctx *cx)
{
    struct evc_cfg *c = p;
    if (c->provider)
        c->ref = (struct vg_rt_metric_ref){.provider = c->provider, .name = c->counter};
    c->range =
        (struct vg__range){.gt = c->gt, .lt = c->lt, .has_gt = c->gt_set, .has_lt = c->lt_set};
    return vg__check_range(c->gt_set, c->gt, c->lt_set, c->lt, cx);
}

static const struct vg_rt_metric_ref *evc_rt_metric(const void *p)
{
    return &((const struct evc_cfg *)p)->ref;
}

static bool evc_observe(const void *p, void *state, const struct vg_sample *s)
{
    const struct evc_cfg *c = p;
    const struct vg_rt_value *v = vg_rt_values_find(s->rt, c->ref.provider, c->ref.name);
    if (!v)
        return false; /* no value yet (the session starts, or the counter does not exist) */
    return vg__hold_feed(state, s->t_ms, vg__range_ok(&c->range, v->value), c->window_ms);
}

/* System.Runtime's gc-heap-size is in MB, as GreaterThan. */
static void gcheap_init(void *p)
{
    evc_init(p);
    ((struct evc_cfg *)p)->gt = 10;
    ((struct evc_cfg *)p)->ref =
        (struct vg_rt_metric_ref){.provider = "System.Runtime", .name = "gc-heap-size"};
}

static void tpq_init(void *p)
{
    evc_init(p);
    ((struct evc_cfg *)p)->gt = 200;
    ((struct evc_cfg *)p)->ref =
        (struct vg_rt_metric_ref){.provider = "System.Runtime", .name = "threadpool-queue-length"};
}

/* Shortcuts: GreaterThan keeps its default unless LessThan alone was given. */
static size_t shortcut_check(void *p, const struct vg_trigger_ctx *cx)
{
    struct evc_cfg *c = p;
    if (!c->lt_set)
        c->gt_set = true;
    return evc_check(p, cx);
}

const struct vg_trigger_type vg__trigger_eventcounter = {
    .name = "EventCounter",
    .runtime = "dotnet",
    .summary = ".NET EventCounter value beyond thresholds for a sliding window",
    .fields = evc_fields,
    .n_fields = VG_ARRAY_SIZE(evc_fields),
    .config_size = sizeof(struct evc_cfg),
    .state_size = sizeof(struct vg__hold),
    .init = evc_init,
    .check = evc_check,
    .observe = evc_observe,
    .rt_metric = evc_rt_metric,
};

const struct vg_trigger_type vg__trigger_gcheapsize = {
    .name = "GCHeapSize",
    .runtime = "dotnet",
    .summary = ".NET GC heap size (MB) beyond thresholds for a sliding window",
    .fields = gcheap_fields,
    .n_fields = VG_ARRAY_SIZE(gcheap_fields),
    .config_size = sizeof(struct evc_cfg),
    .state_size = sizeof(struct vg__hold),
    .init = gcheap_init,
    .check = shortcut_check,
    .observe = evc_observe,
    .rt_metric = evc_rt_metric,
};

const struct vg_trigger_type vg__trigger_threadpoolqueue = {
    .name = "ThreadpoolQueueLength",
    .runtime = "dotnet",
    .summary = ".NET thread pool queue length beyond thresholds for a sliding window",
    .fields = tpq_fields,
    .n_fields = VG_ARRAY_SIZE(tpq_fields),
    .config_size = sizeof(struct evc_cfg),
    .state_size = sizeof(struct vg__hold),
    .init = tpq_init,
    .check = shortcut_check,
    .observe = evc_observe,
    .rt_metric = evc_rt_metric,
};
