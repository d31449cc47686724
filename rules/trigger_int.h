/* Building blocks shared by the trigger types (rules/trigger_*.c). */
#ifndef VG_TRIGGER_INT_H
#define VG_TRIGGER_INT_H

#include "rules/rules_int.h"
#include "rules/trigger.h"

#include <stdbool.h>
#include <stdint.h>

/* "The condition held for every sample across the whole window" (dotnet-monitor's EventCounter
 * semantics): the first passing sample opens the window; a failing sample, or a gap of more
 * than 1.5 sample intervals, closes it; it fires once now - start >= window, then the window
 * restarts at that sample. */
struct vg__hold {
    uint64_t start_ms;
    uint64_t last_ms;
    uint64_t interval_ms; /* spacing of the last two samples; 0 until known */
    bool active;
    bool has_last;
};
void vg__hold_reset(struct vg__hold *h);
bool vg__hold_feed(struct vg__hold *h, uint64_t t_ms, bool ok, uint64_t window_ms);

/* GreaterThan / LessThan (strict; both set = strictly between). */
struct vg__range {
    double gt, lt;
    bool has_gt, has_lt;
};
bool vg__range_ok(const struct vg__range *r, double v);

/* Minimum over a sliding window in fixed memory: the window is cut into 16 buckets holding
 * their minimum, so the answer may include values up to window/16 older than the window. */
#define VG__WIN_DIV 16
struct vg__winmin {
    uint64_t width_ms;
    uint64_t id[VG__WIN_DIV + 1];
    double min[VG__WIN_DIV + 1];
    bool used[VG__WIN_DIV + 1];
};
void vg__winmin_reset(struct vg__winmin *w, uint64_t window_ms);
void vg__winmin_add(struct vg__winmin *w, uint64_t t_ms, double v);
/* Minimum of the values added within [t_ms - window_ms, t_ms]; false when none. */
bool vg__winmin_get(const struct vg__winmin *w, uint64_t t_ms, uint64_t window_ms, double *out);

extern const struct vg_trigger_type vg__trigger_cpu;
extern const struct vg_trigger_type vg__trigger_memory;
extern const struct vg_trigger_type vg__trigger_memgrowth;
extern const struct vg_trigger_type vg__trigger_eventcount;
extern const struct vg_trigger_type vg__trigger_threads;
extern const struct vg_trigger_type vg__trigger_fds;
extern const struct vg_trigger_type vg__trigger_metric;
extern const struct vg_trigger_type vg__trigger_startup;
extern const struct vg_trigger_type vg__trigger_eventcounter;
extern const struct vg_trigger_type vg__trigger_gcheapsize;
extern const struct vg_trigger_type vg__trigger_threadpoolqueue;
extern const struct vg_trigger_type vg__trigger_eventmeter;
extern const struct vg_trigger_type vg__trigger_aspnet_count;
extern const struct vg_trigger_type vg__trigger_aspnet_duration;
extern const struct vg_trigger_type vg__trigger_aspnet_status;
extern const struct vg_trigger_type vg__trigger_crash;

/* Cross-field check shared by the GreaterThan/LessThan triggers: at least one bound, and a
 * non-empty range. Returns the number of errors added. */
size_t vg__check_range(bool gt_set, double gt, bool lt_set, double lt,
                       const struct vg_trigger_ctx *cx);

#endif
