/* Threshold triggers over one sampled metric: ThreadCount, FileDescriptorCount and the generic
 * Metric trigger. The value must stay beyond the threshold for the whole sliding window
 * (0 = fire on the first sample beyond it). */
#include "rules/trigger_int.h"

#include <stddef.h>
#include <stdlib.h>

struct thr_cfg {
    const char *name; /* Metric only */
    double gt, lt;
    bool gt_set, lt_set;
    uint64_t window_ms;
    int metric;
    struct vg__range range;
};

#define WINDOW_FIELD                                                                               \
    {                                                                                              \
        VG__FLD("SlidingWindowDuration", VG_FIELD_DURATION, struct thr_cfg, window_ms), VG__NOSET, \
            .min = 0, .max = VG__DAY, .help = "a duration up to 1.00:00:00"                        \
    }

static const struct vg_field count_fields[] = {
    {VG__FLD("GreaterThan", VG_FIELD_DOUBLE, struct thr_cfg, gt), VG__SET(struct thr_cfg, gt_set),
     .min = 0, .max = 0, .required = true, .help = "a count"},
    WINDOW_FIELD,
};

static const struct vg_field metric_fields[] = {
    {VG__FLD("Name", VG_FIELD_STRING, struct thr_cfg, name), VG__NOSET, .required = true,
     .help = "a metric name such as process_resident_memory_bytes"},
    {VG__FLD("GreaterThan", VG_FIELD_DOUBLE, struct thr_cfg, gt), VG__SET(struct thr_cfg, gt_set),
     .help = "a number"},
    {VG__FLD("LessThan", VG_FIELD_DOUBLE, struct thr_cfg, lt), VG__SET(struct thr_cfg, lt_set),
     .help = "a number"},
    WINDOW_FIELD,
};

static void thr_init(void *p)
{
    struct thr_cfg *c = p;
    c->window_ms = VG__MIN;
}

static void threads_init(void *p)
{
    thr_init(p);
    ((struct thr_cfg *)p)->metric = VG_M_THREADS;
}

static void fds_init(void *p)
{
    thr_init(p);
    ((struct thr_cfg *)p)->metric = VG_M_FDS;
}

static size_t fill_range(struct thr_cfg *c, const struct vg_trigger_ctx *cx)
{
    c->range =
        (struct vg__range){.gt = c->gt, .lt = c->lt, .has_gt = c->gt_set, .has_lt = c->lt_set};
    if (!c->gt_set && !c->lt_set) {
        vg_diag_err(cx->diags, cx->pos, cx->path, "either GreaterThan or LessThan must be set");
        return 1;
    }
    if (c->gt_set && c->lt_set && c->gt >= c->lt) {
        vg_diag_err(cx->diags, cx->pos, cx->path,
                    "GreaterThan (%g) must be lower than LessThan (%g): no value can satisfy both",
                    c->gt, c->lt);
        return 1;
    }
    return 0;
}

static size_t count_check(void *p, const struct vg_trigger_ctx *cx)
{
    return fill_range(p, cx);
}

static size_t metric_check(void *p, const struct vg_trigger_ctx *cx)
{
    struct thr_cfg *c = p;
    size_t errs = 0;
    c->metric = vg_metric_lookup(c->name);
    if (c->metric < 0) {
        const char *names[VG_METRIC_COUNT + 1];
        const struct vg_node *n = vg_node_get(cx->settings, "Name");
        char *path = vg_path_join(cx->path, "Name");
        for (int i = 0; i < VG_METRIC_COUNT; i++)
            names[i] = vg_metric_defs[i].name;
        names[VG_METRIC_COUNT] = NULL;
        const char *dym = vg_did_you_mean(c->name, names);
        vg_diag_err(cx->diags, n ? &n->pos : cx->pos, path ? path : cx->path,
                    "unknown metric \"%s\"%s%s%s (see docs/metrics.md)", c->name,
                    dym ? "; did you mean \"" : "", dym ? dym : "", dym ? "\"?" : "");
        free(path);
        errs++;
    }
    return errs + fill_range(c, cx);
}

static uint64_t thr_metrics(const void *p)
{
    const struct thr_cfg *c = p;
    return VG_METRIC_BIT(c->metric);
}

static bool thr_observe(const void *p, void *state, const struct vg_sample *s)
{
    const struct thr_cfg *c = p;
    if (!vg_sample_has(s, c->metric))
        return false;
    return vg__hold_feed(state, s->t_ms, vg__range_ok(&c->range, s->v[c->metric]), c->window_ms);
}

const struct vg_trigger_type vg__trigger_threads = {
    .name = "ThreadCount",
    .summary = "number of threads above a count for a sliding window",
    .fields = count_fields,
    .n_fields = VG_ARRAY_SIZE(count_fields),
    .config_size = sizeof(struct thr_cfg),
    .state_size = sizeof(struct vg__hold),
    .init = threads_init,
    .check = count_check,
    .metrics = thr_metrics,
    .observe = thr_observe,
};

const struct vg_trigger_type vg__trigger_fds = {
    .name = "FileDescriptorCount",
    .summary = "number of open file descriptors above a count for a sliding window",
    .fields = count_fields,
    .n_fields = VG_ARRAY_SIZE(count_fields),
    .config_size = sizeof(struct thr_cfg),
    .state_size = sizeof(struct vg__hold),
    .init = fds_init,
    .check = count_check,
    .metrics = thr_metrics,
    .observe = thr_observe,
};

const struct vg_trigger_type vg__trigger_metric = {
    .name = "Metric",
    .summary = "any sampled metric above/below a threshold for a sliding window",
    .fields = metric_fields,
    .n_fields = VG_ARRAY_SIZE(metric_fields),
    .config_size = sizeof(struct thr_cfg),
    .state_size = sizeof(struct vg__hold),
    .init = thr_init,
    .check = metric_check,
    .metrics = thr_metrics,
    .observe = thr_observe,
};
