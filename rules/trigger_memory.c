/* MemoryUsage: resident (RSS), proportional (PSS), cgroup-relative memory or a runtime's heap
 * above a threshold, immediately or for a whole sliding window. */
#include "rules/trigger_int.h"

#include <stddef.h>
#include <stdlib.h>

enum { MEM_RSS, MEM_PSS, MEM_CGROUP_PERCENT, MEM_JVM_HEAP, MEM_JVM_OLD, MEM_NODE_HEAP };
/* JvmHeap / JvmOldGen: a JVM's heap in use from its perf-data counters (JVMs only).
 * NodeHeap: a Node process's V8 heap in use, from its inspector (Node processes only). */
static const char *const mem_metrics[] = {
    "RSS", "PSS", "CgroupPercent", "JvmHeap", "JvmOldGen", "NodeHeap", NULL};
static const enum vg_metric_id mem_ids[] = {
    VG_M_RSS,           VG_M_PSS,          VG_M_CG_MEM_PERCENT,
    VG_M_JVM_HEAP_USED, VG_M_JVM_OLD_USED, VG_M_NODE_HEAP_USED};

struct mem_cfg {
    int metric;
    const struct vg_node *gt_node; /* bytes, or a percentage for CgroupPercent */
    uint64_t window_ms;
    double gt;
};

static const struct vg_field mem_fields[] = {
    {VG__FLD("Metric", VG_FIELD_ENUM, struct mem_cfg, metric), VG__NOSET,
     .enum_values = mem_metrics, .help = "RSS, PSS, CgroupPercent, JvmHeap, JvmOldGen or NodeHeap"},
    {VG__FLD("GreaterThan", VG_FIELD_NODE, struct mem_cfg, gt_node), VG__NOSET, .required = true,
     .help = "a size such as 512MB (a percentage 0-100 for CgroupPercent)"},
    {VG__FLD("SlidingWindowDuration", VG_FIELD_DURATION, struct mem_cfg, window_ms), VG__NOSET,
     .min = 0, .max = VG__DAY, .help = "a duration up to 1.00:00:00"},
};

static size_t mem_check(void *p, const struct vg_trigger_ctx *cx)
{
    struct mem_cfg *c = p;
    char *path = vg_path_join(cx->path, "GreaterThan");
    const char *at = path ? path : cx->path;
    int r;
    if (c->metric == MEM_CGROUP_PERCENT) {
        r = vg_node_to_double(c->gt_node, at, 0, 100, cx->diags, &c->gt);
    } else {
        uint64_t bytes = 0;
        r = vg_node_to_size(c->gt_node, at, cx->diags, &bytes);
        c->gt = (double)bytes;
    }
    free(path);
    return r ? 1 : 0;
}

static uint64_t mem_metrics_mask(const void *p)
{
    const struct mem_cfg *c = p;
    return VG_METRIC_BIT(mem_ids[c->metric]);
}

static bool mem_observe(const void *p, void *state, const struct vg_sample *s)
{
    const struct mem_cfg *c = p;
    enum vg_metric_id id = mem_ids[c->metric];
    if (!vg_sample_has(s, id))
        return false;
    return vg__hold_feed(state, s->t_ms, s->v[id] > c->gt, c->window_ms);
}

const struct vg_trigger_type vg__trigger_memory = {
    .name = "MemoryUsage",
    .summary = "memory (RSS, PSS or cgroup percent) above a threshold",
    .fields = mem_fields,
    .n_fields = VG_ARRAY_SIZE(mem_fields),
    .config_size = sizeof(struct mem_cfg),
    .state_size = sizeof(struct vg__hold),
    .check = mem_check,
    .metrics = mem_metrics_mask,
    .observe = mem_observe,
};
