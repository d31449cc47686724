#include "rules/metric.h"
#include "config/error.h"
#include "config/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const struct vg_metric_def vg_metric_defs[VG_METRIC_COUNT] = {
#define VG__METRIC_DEF(id, name, kind, help) {VG_M_##id, name, kind, help, NULL},
    VG_METRIC_MAP(VG__METRIC_DEF)
#undef VG__METRIC_DEF
#define VG__RT_METRIC_DEF(id, name, kind, help, runtime) {VG_M_##id, name, kind, help, runtime},
        VG_RT_METRIC_MAP(VG__RT_METRIC_DEF)
#undef VG__RT_METRIC_DEF
};

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

void vg_rt_series_split(const char *name, struct vg_rt_series *out)
{
    size_t len = strlen(name), il = strcspn(name, "{@"), end = len;
    *out = (struct vg_rt_series){.instrument_len = il, .percentile = -1};
    /* "@p" and one to three digits at the very end, right after the instrument or its "}" */
    const char *at = strrchr(name, '@');
    size_t digits = at && at[1] == 'p' ? strspn(at + 2, "0123456789") : 0;
    if (digits >= 1 && digits <= 3 && at[2 + digits] == '\0' &&
        ((size_t)(at - name) == il || (at > name && at[-1] == '}'))) {
        out->percentile = atoi(at + 2);
        end = (size_t)(at - name);
    }
    if (name[il] == '{' && end >= il + 2 && name[end - 1] == '}') {
        out->tags = name + il + 1;
        out->tags_len = end - il - 2;
    }
}

int vg_rt_values_set(struct vg_rt_values *vs, const char *provider, const char *name, double value)
{
    return vg_rt_values_set_full(vs, provider, name, value, NULL, NULL);
}

/* Replaces *dst with a copy of src unless they are equal already (the common case). */
static int set_str(char **dst, const char *src)
{
    if ((!*dst && !src) || (*dst && src && strcmp(*dst, src) == 0))
        return 0;
    char *c = src ? vg_strdup(src) : NULL;
    if (src && !c)
        return VG_ENOMEM;
    free(*dst);
    *dst = c;
    return 0;
}

int vg_rt_values_set_full(struct vg_rt_values *vs, const char *provider, const char *name,
                          double value, const char *unit, const char *help)
{
    struct vg_rt_value *have = (struct vg_rt_value *)vg_rt_values_find(vs, provider, name);
    if (have) {
        have->value = value;
        return set_str(&have->unit, unit) || set_str(&have->help, help) ? VG_ENOMEM : 0;
    }
    if (vg_grow((void **)&vs->v, &vs->cap, vs->n, sizeof(*vs->v), 16))
        return VG_ENOMEM;
    struct vg_rt_value *x = &vs->v[vs->n];
    x->provider = vg_strdup(provider);
    x->name = vg_strdup(name);
    x->value = value;
    x->unit = unit ? vg_strdup(unit) : NULL;
    x->help = help ? vg_strdup(help) : NULL;
    x->has_total = false;
    x->total = 0;
    if (!x->provider || !x->name || (unit && !x->unit) || (help && !x->help)) {
        free(x->provider);
        free(x->name);
        free(x->unit);
        free(x->help);
        return VG_ENOMEM;
    }
    vs->n++;
    return 0;
}

void vg_rt_values_add_total(struct vg_rt_values *vs, const char *provider, const char *name,
                            double inc)
{
    struct vg_rt_value *v = (struct vg_rt_value *)vg_rt_values_find(vs, provider, name);
    if (v) {
        v->total += inc;
        v->has_total = true;
    }
}

int vg_rt_values_copy(struct vg_rt_values *dst, const struct vg_rt_value *src)
{
    int rc = vg_rt_values_set_full(dst, src->provider, src->name, src->value, src->unit, src->help);
    struct vg_rt_value *v = (struct vg_rt_value *)vg_rt_values_find(dst, src->provider, src->name);
    if (rc == 0 && v) {
        v->has_total = src->has_total;
        v->total = src->total;
    }
    return rc;
}

int vg_rt_values_add_request(struct vg_rt_values *vs, bool stop, int status, uint64_t duration_ms,
                             const char *path)
{
    if (vg_grow((void **)&vs->req, &vs->cap_req, vs->n_req, sizeof(*vs->req), 16))
        return VG_ENOMEM;
    char *p = vg_strdup(path ? path : "");
    if (!p)
        return VG_ENOMEM;
    vs->req[vs->n_req++] = (struct vg_rt_request){stop, status, duration_ms, p};
    return 0;
}

void vg_rt_values_clear(struct vg_rt_values *vs)
{
    for (size_t i = 0; vs && i < vs->n_req; i++)
        free(vs->req[i].path);
    if (vs)
        vs->n_req = 0;
    for (size_t i = 0; vs && i < vs->n; i++) {
        free(vs->v[i].provider);
        free(vs->v[i].name);
        free(vs->v[i].unit);
        free(vs->v[i].help);
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
    free(vs->req);
    vs->req = NULL;
    vs->cap_req = 0;
}
