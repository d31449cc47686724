/* Triggers: one vtable per trigger type (rules/trigger_*.c), registered in a static const array.
 * A compiled trigger is immutable; each watched process gets its own state block
 * (vg_trigger_state_size bytes) that observe() advances from timestamped samples only:
 * triggers have no clock of their own, so tests drive them with synthetic streams. */
#ifndef VG_TRIGGER_H
#define VG_TRIGGER_H

#include "config/tree.h"
#include "rules/metric.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    /* Fires at most once per process; the rule then finishes (Startup). */
    VG_TRIGGER_ONCE = 1u << 1,
    /* Never fires from samples: `vigil crash` (the kernel's core_pattern handler) evaluates it
     * with the crash's facts (crash() below); the daemon does not apply such rules. */
    VG_TRIGGER_CRASH = 1u << 2,
    /* Applies to every process, and reads rt_metric() from the runtime's samples where the
     * sample carries it, else its /proc metric (CPUUsage: System.Runtime's cpu-usage on .NET).
     * The engine asks for a session only where the process's adapter provides EventCounters
     * (struct vg_runtime_type.event_counters). */
    VG_TRIGGER_RT_PREFERRED = 1u << 3,
};

/* State that must survive a daemon restart (e.g. MemoryGrowth's baseline). The engine stores
 * it with each fire and hands it back to vg_trigger_restore() for the same rule and process. */
#define VG_TRIGGER_PERSIST_MAX 4
struct vg_trigger_persist {
    uint32_t n; /* values used; 0 = nothing to restore */
    double v[VG_TRIGGER_PERSIST_MAX];
};

/* What a type's check() needs to report problems found after the field table was applied. */
struct vg_trigger_ctx {
    struct vg_tree *tree;
    struct vg_diags *diags;
    const struct vg_node *settings; /* Trigger.Settings MAP, or NULL */
    const struct vg_node *defaults; /* CollectionRuleDefaults.Triggers MAP, or NULL */
    const struct vg_pos *pos;       /* where the trigger was written (for missing settings) */
    const char *path;               /* "CollectionRules.NAME.Trigger.Settings" */
};

struct vg_trigger_type {
    const char *name; /* dotnet-monitor spelling, matched case-insensitively */
    unsigned flags;   /* VG_TRIGGER_* */
    /* The runtime whose own samples (struct vg_sample.rt) it reads, by adapter name ("dotnet"),
     * or NULL for triggers on what /proc shows of any process. The engine applies the rule
     * only to processes of that runtime, and refuses it while no adapter provides samples. */
    const char *runtime;
    const char *summary;
    const struct vg_field *fields; /* the Settings schema (offsets into the config struct) */
    size_t n_fields;
    size_t config_size;
    size_t state_size;
    /* Writes defaults into a zeroed config before the field table is applied. May be NULL. */
    void (*init)(void *cfg);
    /* Cross-field checks after the field table; returns the number of errors added. May be NULL. */
    size_t (*check)(void *cfg, const struct vg_trigger_ctx *cx);
    /* Metrics (VG_METRIC_BIT mask) the sampler must collect for this trigger. */
    uint64_t (*metrics)(const void *cfg);
    /* Puts a state block into its initial state. NULL for schema-only types. */
    void (*reset)(const void *cfg, void *state);
    /* Feeds one sample; returns true when the trigger fires. NULL for schema-only types (a
     * runtime trigger whose evaluation is not written yet). */
    bool (*observe)(const void *cfg, void *state, const struct vg_sample *s);
    /* For a type whose configuration decides whether it reads a runtime's samples (EventCount on
     * a .NET counter): that runtime, or NULL. Overrides `runtime` when set. */
    const char *(*runtime_for)(const void *cfg);
    /* Runtime triggers: the sample (provider/name in struct vg_sample.rt) the trigger reads, so
     * the adapter's session knows what to enable. May be NULL. */
    const struct vg_rt_metric_ref *(*rt_metric)(const void *cfg);
    /* Optional persistence of a small fixed struct. */
    void (*save)(const void *cfg, const void *state, struct vg_trigger_persist *out);
    void (*restore)(const void *cfg, void *state, const struct vg_trigger_persist *in);
    /* VG_TRIGGER_CRASH types: whether a crash by signal signo fires it. */
    bool (*crash)(const void *cfg, int signo);
    /* The action types a rule with this trigger may run (NULL-terminated), or NULL for any:
     * after a crash, only what needs no live process. */
    const char *const *actions;
};

/* Every known trigger type, in documentation order. */
extern const struct vg_trigger_type *const vg_trigger_types[];
extern const size_t vg_trigger_types_count;

/* Case-insensitive lookup; NULL when unknown. */
const struct vg_trigger_type *vg_trigger_type_find(const char *name);

/* A compiled trigger: type + immutable config. */
struct vg_trigger {
    const struct vg_trigger_type *type;
    void *cfg;        /* type->config_size bytes, owned by the trigger */
    uint64_t metrics; /* VG_METRIC_BIT mask */
};

/* Validates `cx->settings` against `type` and fills `out`. Returns 0, VG_ECONFIG (errors in
 * cx->diags; out left empty) or VG_ENOMEM. */
int vg_trigger_compile(const struct vg_trigger_type *type, const struct vg_trigger_ctx *cx,
                       struct vg_trigger *out);
void vg_trigger_free(struct vg_trigger *t); /* releases cfg; NULL-safe */

/* Per-process state handling. A state block is vg_trigger_state_size() bytes of caller memory
 * (at least 1), initialised with vg_trigger_reset() before the first sample. */
size_t vg_trigger_state_size(const struct vg_trigger *t);
void vg_trigger_reset(const struct vg_trigger *t, void *state);
/* Returns true when the trigger fires on this sample. Always false for schema-only types.
 * Samples must come in non-decreasing t_ms order. */
bool vg_trigger_observe(const struct vg_trigger *t, void *state, const struct vg_sample *s);
/* Crash triggers: true when a crash by signal signo fires t; false for every other type. */
bool vg_trigger_crash(const struct vg_trigger *t, int signo);
/* "SIGSEGV" for the signals whose default action dumps core (signal(7)); NULL for the others. */
const char *vg_crash_signal_name(int signo);
/* The runtime whose samples this compiled trigger reads ("dotnet", "jvm"), or NULL: the
 * type's `runtime`, its `runtime_for(cfg)`, or the runtime of a metric it reads (metric.h). */
const char *vg_trigger_runtime(const struct vg_trigger *t);
/* The runtime sample the trigger reads, or NULL. */
const struct vg_rt_metric_ref *vg_trigger_rt_metric(const struct vg_trigger *t);
/* VG_TRIGGER_RT_PREFERRED types: the runtime's value of s the trigger reads, or NULL when s
 * lacks it and the trigger reads its /proc metric. NULL for every other type. */
const struct vg_rt_value *vg_trigger_rt_value(const struct vg_trigger *t,
                                              const struct vg_sample *s);
/* Fills `out` (out->n = 0 when the type keeps nothing across restarts). */
void vg_trigger_save(const struct vg_trigger *t, const void *state, struct vg_trigger_persist *out);
/* Applies a saved struct to a freshly reset state; ignores n == 0. */
void vg_trigger_restore(const struct vg_trigger *t, void *state,
                        const struct vg_trigger_persist *in);

#endif
