#include "rules/metric.h"
#include "config/util.h"

#include <strings.h>

const struct vg_metric_def vg_metric_defs[VG_METRIC_COUNT] = {
#define VG__METRIC_DEF(id, name, kind, help) {VG_M_##id, name, kind, help},
    VG_METRIC_MAP(VG__METRIC_DEF)
#undef VG__METRIC_DEF
};

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
