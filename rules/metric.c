#include "rules/metric.h"
#include "config/error.h"
#include "config/util.h"

#include <stdlib.h>
#include <strings.h>

const struct vg_metric_def vg_metric_defs[VG_METRIC_COUNT] = {
#define VG__METRIC_DEF(id, name, kind, help) {VG_M_##id, name, kind, help, NULL},
    VG_METRIC_MAP(VG__METRIC_DEF)
#undef VG__METRIC_DEF
#define VG__RT_METRIC_DEF(id, name, kind, help, runtime) {VG_M_##id, name, kind, help, runtime},
        VG_RT_METRIC_MAP(VG__RT_METRIC_DEF)
#undef VG__RT_METRIC_DEF
};

uint64_t vg_metric_runtime_mask(void)
{
    uint64_t m = 0;
    for (int i = 0; i < VG_METRIC_COUNT; i++)
        if (vg_metric_defs[i].runtime)
            m |= VG_METRIC_BIT(i);
    return m;
}

void vg_sample_set_runtime(struct vg_sample *s, const struct vg_rt_values *rt)
{
    for (int i = 0; i < VG_METRIC_COUNT; i++) {
        const struct vg_metric_def *d = &vg_metric_defs[i];
        if (!d->runtime)
            continue;
        const struct vg_rt_value *v = vg_rt_values_find(rt, d->runtime, d->name);
        if (v) {
            s->v[i] = v->value;
            s->valid |= VG_METRIC_BIT(i);
        } else {
            s->valid &= ~VG_METRIC_BIT(i);
        }
    }
}

static const struct {
    const char *alias;
    enum vg_metric_id id;
} aliases[] = {
    {"cpu", VG_M_CPU_PERCENT},
    {"cpu-usage", VG_M_CPU_PERCENT},
    {"rss", VG_M_RSS},
    {"pss", VG_M_PSS},
    {"threads", VG_M_THREADS},
    {"fds", VG_M_FDS},
    {"majflt", VG_M_MAJFLT},
    {"oom_kills", VG_M_CG_OOM_KILLS},
    {"cgroup_percent", VG_M_CG_MEM_PERCENT},
};

int vg_metric_lookup(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < VG_METRIC_COUNT; i++)
        if (strcasecmp(name, vg_metric_defs[i].name) == 0)
            return i;
    for (size_t i = 0; i < VG_ARRAY_SIZE(aliases); i++)
        if (strcasecmp(name, aliases[i].alias) == 0)
            return (int)aliases[i].id;
    return -1;
}

/* ---- runtime samples ---- */

const struct vg_rt_value *vg_rt_values_find(const struct vg_rt_values *vs, const char *provider,
                                            const char *name)
{
    for (size_t i = 0; vs && i < vs->n; i++)
        if (strcasecmp(vs->v[i].name, name) == 0 && strcasecmp(vs->v[i].provider, provider) == 0)
            return &vs->v[i];
    return NULL;
}

int vg_rt_values_set(struct vg_rt_values *vs, const char *provider, const char *name, double value)
{
    struct vg_rt_value *have = (struct vg_rt_value *)vg_rt_values_find(vs, provider, name);
    if (have) {
        have->value = value;
        return 0;
    }
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 16;
        struct vg_rt_value *v = realloc(vs->v, cap * sizeof(*v));
        if (!v)
            return VG_ENOMEM;
        vs->v = v;
        vs->cap = cap;
    }
    struct vg_rt_value *x = &vs->v[vs->n];
    x->provider = vg_strdup(provider);
    x->name = vg_strdup(name);
    x->value = value;
    if (!x->provider || !x->name) {
        free(x->provider);
        free(x->name);
        return VG_ENOMEM;
    }
    vs->n++;
    return 0;
}

void vg_rt_values_clear(struct vg_rt_values *vs)
{
    for (size_t i = 0; vs && i < vs->n; i++) {
        free(vs->v[i].provider);
        free(vs->v[i].name);
    }
    if (vs)
        vs->n = 0;
}

void vg_rt_values_free(struct vg_rt_values *vs)
{
    if (!vs)
        return;
    vg_rt_values_clear(vs);
    free(vs->v);
    vs->v = NULL;
    vs->cap = 0;
}
