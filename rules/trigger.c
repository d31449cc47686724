/* Trigger registry and the generic parts of compiling and driving a trigger. */
#include "rules/trigger_int.h"
#include "config/error.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const struct vg_trigger_type *const vg_trigger_types[] = {
    &vg__trigger_cpu,          &vg__trigger_memory,          &vg__trigger_memgrowth,
    &vg__trigger_eventcount,   &vg__trigger_threads,         &vg__trigger_fds,
    &vg__trigger_metric,       &vg__trigger_startup,         &vg__trigger_eventcounter,
    &vg__trigger_gcheapsize,   &vg__trigger_threadpoolqueue, &vg__trigger_eventmeter,
    &vg__trigger_aspnet_count, &vg__trigger_aspnet_duration, &vg__trigger_aspnet_status,
    &vg__trigger_crash,
};
const size_t vg_trigger_types_count = VG_ARRAY_SIZE(vg_trigger_types);

const struct vg_trigger_type *vg_trigger_type_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < vg_trigger_types_count; i++)
        if (strcasecmp(name, vg_trigger_types[i]->name) == 0)
            return vg_trigger_types[i];
    return NULL;
}

int vg_trigger_compile(const struct vg_trigger_type *type, const struct vg_trigger_ctx *cx,
                       struct vg_trigger *out)
{
    size_t errs;
    void *cfg = calloc(1, type->config_size ? type->config_size : 1);
    memset(out, 0, sizeof(*out));
    if (!cfg)
        return VG_ENOMEM;
    if (type->init)
        type->init(cfg);
    errs = vg_fields_apply(cx->tree, type->fields, type->n_fields, cx->settings, cx->defaults,
                           cx->path, cfg, cx->diags);
    /* Cross-field checks only make sense on a config whose fields all parsed. */
    if (errs == 0 && type->check)
        errs = type->check(cfg, cx);
    if (errs) {
        free(cfg);
        return VG_ECONFIG;
    }
    out->type = type;
    out->cfg = cfg;
    out->metrics = type->metrics ? type->metrics(cfg) : 0;
    return 0;
}

void vg_trigger_free(struct vg_trigger *t)
{
    if (!t)
        return;
    free(t->cfg);
    t->cfg = NULL;
}

size_t vg_trigger_state_size(const struct vg_trigger *t)
{
    return t->type->state_size ? t->type->state_size : 1;
}

void vg_trigger_reset(const struct vg_trigger *t, void *state)
{
    memset(state, 0, vg_trigger_state_size(t));
    if (t->type->reset)
        t->type->reset(t->cfg, state);
}

bool vg_trigger_observe(const struct vg_trigger *t, void *state, const struct vg_sample *s)
{
    if (!t->type->observe)
        return false;
    return t->type->observe(t->cfg, state, s);
}

bool vg_trigger_crash(const struct vg_trigger *t, int signo)
{
    return t->type && t->type->crash && t->type->crash(t->cfg, signo);
}

void vg_trigger_save(const struct vg_trigger *t, const void *state, struct vg_trigger_persist *out)
{
    memset(out, 0, sizeof(*out));
    if (t->type->save)
        t->type->save(t->cfg, state, out);
}

void vg_trigger_restore(const struct vg_trigger *t, void *state,
                        const struct vg_trigger_persist *in)
{
    if (in && in->n && t->type->restore)
        t->type->restore(t->cfg, state, in);
}

/* --- shared building blocks --- */

void vg__hold_reset(struct vg__hold *h)
{
    memset(h, 0, sizeof(*h));
}

bool vg__hold_feed(struct vg__hold *h, uint64_t t_ms, bool ok, uint64_t window_ms)
{
    bool gap = false;
    if (h->has_last && t_ms >= h->last_ms) {
        uint64_t delta = t_ms - h->last_ms;
        /* delta > 1.5 * interval, in integers */
        gap = h->interval_ms > 0 && delta * 2 > h->interval_ms * 3;
        if (delta > 0)
            h->interval_ms = delta;
    }
    h->last_ms = t_ms;
    h->has_last = true;
    if (!ok) {
        h->active = false;
        return false;
    }
    if (!h->active || gap) {
        h->active = true;
        h->start_ms = t_ms;
    }
    if (t_ms - h->start_ms >= window_ms) {
        h->start_ms = t_ms; /* re-arm: a new full window is needed before the next fire */
        return true;
    }
    return false;
}

bool vg__range_ok(const struct vg__range *r, double v)
{
    if (r->has_gt && !(v > r->gt))
        return false;
    if (r->has_lt && !(v < r->lt))
        return false;
    return r->has_gt || r->has_lt;
}

void vg__winmin_reset(struct vg__winmin *w, uint64_t window_ms)
{
    memset(w, 0, sizeof(*w));
    w->width_ms = (window_ms + VG__WIN_DIV - 1) / VG__WIN_DIV;
    if (w->width_ms == 0)
        w->width_ms = 1;
}

void vg__winmin_add(struct vg__winmin *w, uint64_t t_ms, double v)
{
    uint64_t id = t_ms / w->width_ms;
    size_t slot = (size_t)(id % (VG__WIN_DIV + 1));
    if (!w->used[slot] || w->id[slot] != id) {
        w->used[slot] = true;
        w->id[slot] = id;
        w->min[slot] = v;
    } else if (v < w->min[slot]) {
        w->min[slot] = v;
    }
}

bool vg__winmin_get(const struct vg__winmin *w, uint64_t t_ms, uint64_t window_ms, double *out)
{
    uint64_t hi = t_ms / w->width_ms;
    uint64_t lo = t_ms >= window_ms ? (t_ms - window_ms) / w->width_ms : 0;
    bool found = false;
    for (size_t i = 0; i <= VG__WIN_DIV; i++) {
        if (!w->used[i] || w->id[i] < lo || w->id[i] > hi)
            continue;
        if (!found || w->min[i] < *out)
            *out = w->min[i];
        found = true;
    }
    return found;
}

size_t vg__check_range(bool gt_set, double gt, bool lt_set, double lt,
                       const struct vg_trigger_ctx *cx)
{
    if (!gt_set && !lt_set) {
        vg_diag_err(cx->diags, cx->pos, cx->path, "either GreaterThan or LessThan must be set");
        return 1;
    }
    if (gt_set && lt_set && gt >= lt) {
        vg_diag_err(cx->diags, cx->pos, cx->path,
                    "GreaterThan (%g) must be lower than LessThan (%g): no value can satisfy both",
                    gt, lt);
        return 1;
    }
    return 0;
}

const struct vg_rt_metric_ref *vg_trigger_rt_metric(const struct vg_trigger *t)
{
    return t->type && t->type->rt_metric ? t->type->rt_metric(t->cfg) : NULL;
}

const struct vg_rt_value *vg_trigger_rt_value(const struct vg_trigger *t, const struct vg_sample *s)
{
    if (!t->type || !(t->type->flags & VG_TRIGGER_RT_PREFERRED))
        return NULL;
    const struct vg_rt_metric_ref *r = vg_trigger_rt_metric(t);
    return r ? vg_rt_values_find(s->rt, r->provider, r->name) : NULL;
}

const char *vg_trigger_runtime(const struct vg_trigger *t)
{
    if (!t->type)
        return NULL;
    const char *rt = t->type->runtime_for ? t->type->runtime_for(t->cfg) : t->type->runtime;
    /* a /proc trigger set on a runtime's metric (Metric: jvm_heap_used_bytes, JvmHeap) */
    for (int m = 0; !rt && m < VG_METRIC_COUNT; m++)
        if (t->metrics & VG_METRIC_BIT(m))
            rt = vg_metric_defs[m].runtime;
    return rt;
}
