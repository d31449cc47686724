/* Per-process metric sampling (rules/metric.h) from /proc and cgroup files. Loop-agnostic: no
 * libuv. Each tick the engine calls vg_proc_scan(), then vg_sampler_tick(), then
 * vg_sampler_sample() for each process it watches. */
#ifndef VG_SAMPLER_H
#define VG_SAMPLER_H

#include "engine/host/proc.h"
#include "rules/metric.h"

#include <stdint.h>

/* Every metric except PSS, which needs smaps_rollup (the kernel walks all page tables). */
#define VG_SAMPLER_DEFAULT_MASK (((VG_METRIC_BIT(VG_METRIC_COUNT) - 1)) & ~VG_METRIC_BIT(VG_M_PSS))

struct vg_sampler;

/* fs may be NULL (real /proc, /sys/fs/cgroup, /sys). */
int vg_sampler_create(const struct vg_procfs *fs, struct vg_sampler **out);
void vg_sampler_destroy(struct vg_sampler *s);

/* Starts an interval: cgroup values are re-read at most once per cgroup from now on. */
void vg_sampler_tick(struct vg_sampler *s);

/* Fills *out (t_ms: monotonic milliseconds, e.g. vg_mono_ms() or a test clock) with the metrics
 * in mask (VG_METRIC_BIT()s) that could be read; out->valid says which. CPU percent needs a
 * previous sample of the same process, so the first one has none. Returns 0, VG_EEXITED when
 * the process is gone (the next scan reports it), or another negative VG_E*. */
int vg_sampler_sample(struct vg_sampler *s, struct vg_proc *p, uint64_t t_ms, uint64_t mask,
                      struct vg_sample *out);

/* CPUs online per sys_root/devices/system/cpu/online (read at creation). */
int vg_sampler_online_cpus(const struct vg_sampler *s);
const struct vg_cgroup_mounts *vg_sampler_cgroup_mounts(const struct vg_sampler *s);

#endif
