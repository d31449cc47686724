/* Internals shared by the daemon's files (daemon.c, actions.c, action_*.c, reload.c, api.c). */
#ifndef VG_ENGINE_INT_H
#define VG_ENGINE_INT_H

#include "config/config.h"
#include "engine/daemon.h"
#include "engine/host/proc.h"
#include "engine/host/sampler.h"
#include "engine/runtimes/runtime.h"
#include "engine/state.h"
#include "rules/ruleset.h"

#include <uv.h>

struct vg_egress;
struct vg_http_server;

/* One loaded configuration: config tree, compiled rules and egress built from it. Runs hold a
 * reference so a reload never frees what a running action still reads. */
struct vg_gen {
    struct vg_config *cfg;
    struct vg_ruleset *rules;
    struct vg_egress *egress;
    unsigned refs;
    uint64_t loaded_ms; /* wall clock */
    /* Per rule: non-NULL when the rule cannot run here ("not supported yet: ..."). */
    char **unsupported;
};

void vg__gen_ref(struct vg_gen *g);
void vg__gen_unref(struct vg_gen *g);

struct vg_watched;
struct vg_run;

/* A rule applied to one process. */
struct vg_instance {
    struct vg_daemon *d;
    struct vg_watched *w;
    const struct vg_rule *rule; /* from d->gen */
    size_t rule_index;
    uint64_t fingerprint;
    void *tstate; /* trigger state block */
    struct vg_limits limits;
    struct vg_run *run; /* current action list, or NULL */
    char *last_error;
    uint64_t last_fired_ms; /* wall; 0 = never */
    uint64_t lifetime_fires;
    struct vg_instance *next;
};

/* Per-process data hung on vg_proc.user. */
struct vg_watched {
    struct vg_proc *p;
    struct vg_instance *instances;
    struct vg_sample last; /* latest sample, for /metrics */
    bool has_sample;
    struct vg_rt_session *session; /* runtime samples, while a rule reads them */
    const struct vg_runtime_type *session_rt;
    char *session_needs;    /* the providers the session was opened for ("a\nb\n") */
    bool default_metrics;   /* DefaultProcess matches it: a counters session without a rule */
    struct vg_rt_values rt; /* the session's latest values (last.rt points here) */
    bool had_instances;     /* kept while a rule ever watched it (its state rows are forgotten at
                               exit); a process no rule watched has no vg_watched at all */
    /* What its VG_TRIGGER_RT_PREFERRED rules (CPUUsage) read at the latest sample: the
     * runtime's counter or /proc (logged when it changes; /collectionrules shows it). */
    enum { VG_SRC_NONE, VG_SRC_PROC, VG_SRC_RUNTIME } rt_source;
};

struct vg_action_result;
struct vg__exec_job;

/* One execution of a rule's action list. */
struct vg_run {
    struct vg_daemon *d;
    struct vg_gen *gen;       /* referenced */
    struct vg_instance *inst; /* NULL once the instance went away (process exit, reload) */
    const struct vg_rule *rule;
    int64_t fire_id;
    /* Process facts copied at fire time: the process may exit while actions run. */
    struct vg_rt_target target;
    struct vg_action_result *results; /* one per action */
    size_t next;                      /* next action to start */
    size_t running;                   /* started, not finished */
    bool failed;
    bool advancing; /* run_advance is on the stack: action results only record */
    char *error;
    /* The caller's own $(...) tokens and values, pairs, NULL-terminated (borrowed), or NULL:
     * `vigil crash` adds $(Crash.Signal) and its kin. */
    const char *const *tokens;
};

struct vg_action_result {
    int64_t action_id;
    bool started, done, ok;
    /* outputs: NULL-terminated names/values (malloc'd) */
    char **names, **values;
    size_t n_outputs;
};

struct vg_daemon_counters {
    uint64_t rules_fired;
    uint64_t actions_started;
    uint64_t actions_failed;
    uint64_t actions_succeeded;
    uint64_t reloads_ok, reloads_failed;
    uint64_t sample_duration_us; /* last sweep */
    uint64_t processes;
    uint64_t processes_sampled; /* read from /proc at the last sweep */
};

struct vg_daemon {
    uv_loop_t *loop;
    const struct vg_daemon_options *opts;
    struct vg_gen *gen;
    struct vg_state *state;
    struct vg_proc_table *procs;
    struct vg_sampler *sampler;
    char *state_dir;
    uint64_t poll_ms;
    uint64_t ticks; /* sampling sweeps so far */
    uv_timer_t tick;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t stop_timer;
    uv_timer_t resume_timer;
    uint64_t stop_deadline;
    struct vg_reloader *reloader;
    struct vg_api *api;
    char *reload_error; /* diagnostics of the last failed reload, or NULL */
    /* The last good content of each configuration file: a file that no longer parses keeps it
     * (config/source.h), so one bad edit does not take every rule down. */
    struct vg_source_cache *source_cache;
    uint64_t reload_error_ms;
    unsigned runs_active;
    struct vg__exec_job *exec_jobs; /* running Execute children (action_execute.c) */
    bool stopping;
    int exit_status;
    struct vg_daemon_counters counters;
    struct vg_rt_host rt_host; /* what runtime adapters may ask of the daemon */
    bool runtimes_started;
};

/* Discovery.Filters: false for a process vigil does not watch (no rule, not in the API). */
bool vg__proc_visible(const struct vg_daemon *d, const struct vg_proc *p);

/* gen.c */
int vg__gen_build(struct vg_daemon *d, struct vg_gen **out, char **errors);
/* Why no process can run rule r in this vigil (malloc'd), or NULL when it can. */
char *vg__rule_unsupported(const struct vg_rule *r);
/* Why process p cannot run rule r's actions (malloc'd), or NULL. */
char *vg__rule_unsupported_for(const struct vg_rule *r, const struct vg_proc *p);
/* False when r's trigger reads another runtime's samples than p's (the rule does not apply). */
bool vg__rule_applies(const struct vg_rule *r, const struct vg_proc *p);

/* daemon.c */
/* The state directory: opts->state_dir, else the configuration's Storage.StateDir, else the
 * default (malloc'd; NULL only when out of memory). */
char *vg__state_dir(const struct vg_daemon_options *opts);
void vg__daemon_apply_gen(struct vg_daemon *d, struct vg_gen *g); /* takes the caller's ref */
void vg__proc_info(const struct vg_proc *p, struct vg_proc_info *out);
/* Rebuilds the limits of rule r for the process known as proc_key from the fires recorded in
 * the state (its instance row is created on first use), as of now (wall ms). tp gets the newest
 * fire's persisted trigger state, *last_fired_ms its time (0: none), *n_fires their number.
 * Returns 0 or VG_ENOMEM (a state that cannot be read is logged and starts fresh). */
int vg__limits_load(struct vg_daemon *d, const struct vg_rule *r, const char *proc_key, int pid,
                    uint64_t now, struct vg_limits *out, struct vg_trigger_persist *tp,
                    uint64_t *last_fired_ms, size_t *n_fires);
/* Tells p's adapter that its rules are armed once no Startup action list runs on it. */
void vg__daemon_check_armed(struct vg_watched *w);

/* actions.c: starts the rule's action list for inst; takes nothing. */
int vg__run_start(struct vg_instance *inst);
/* Starts rule r's action list on target t (taken over: t is emptied), recorded as a fire at
 * fired_ms under proc_key with the trigger's persisted state (JSON, may be NULL). inst is the
 * rule instance whose limits the end releases, or NULL when the caller keeps none (`vigil
 * crash`: its run only records history). tokens: extra $(...) substitutions (see vg_run),
 * borrowed until the run ends. The end shows in d->counters and d->runs_active. */
int vg__run_begin(struct vg_daemon *d, struct vg_instance *inst, const struct vg_rule *r,
                  struct vg_rt_target *t, const char *proc_key, uint64_t fired_ms,
                  const char *persist, const char *const *tokens);
/* A runner reports the end of action `idx`; outputs/values arrays are taken over. */
void vg__run_action_done(struct vg_run *run, size_t idx, int rc, const char *error, char **names,
                         char **values, size_t n_outputs);
/* Expands $(Process.*) and $(Actions.NAME.OUTPUT) in s; malloc'd result or NULL with *err. */
char *vg__run_expand(struct vg_run *run, const char *s, char **err);
/* How an action of a rule runs: the engine's own runners (Execute) or, for every other type, the
 * bridge to the process's runtime adapter (action_runtime.c). */
struct vg_action_runner {
    const char *type; /* NULL for the runtime bridge */
    /* Starts action idx of run; reports through vg__run_action_done (possibly synchronously). */
    int (*start)(struct vg_run *run, size_t idx);
};
extern const struct vg_action_runner vg__runner_runtime;
/* The runner for `type` on a process of runtime rt, or NULL when nothing can run it there. */
const struct vg_action_runner *vg__action_runner_for(const struct vg_runtime_type *rt,
                                                     const char *type);
/* True when vigil can run `type` for some process (engine runner or a runtime adapter's). */
bool vg__action_known(const char *type);

/* artifact.c: the job operations that put an action's artifact into an egress provider, shared
 * by rule actions, /dump?egressProvider= and `vigil dump --egress`. */
struct vg_egress;
struct vg_op;
struct vg_egress_job {
    struct vg_rt_job job; /* what the adapter sees */
    struct vg_egress *egress;
    char *provider;
    char *name; /* the caller's artifact name (ArtifactName), or NULL for the adapter's */
    struct vg_artifact *artifact;
    char *location;
    int write_rc; /* the egress's own failure, with its message in err */
    char err[512];
    struct vg_op *op; /* /operations entry, or NULL: its cancel flag is honoured */
    /* The caller's continuation (loop thread): outputs include EgressPath on success. */
    void (*finished)(struct vg_egress_job *ej, int rc, const char *error, char **names,
                     char **values, size_t n);
    void *ctx;
};
/* Prepares ej (zeroed by the caller) for an action of `type` on target (copied). provider and
 * name are copied. Returns 0 or VG_ENOMEM. */
int vg__egress_job_init(struct vg_egress_job *ej, uv_loop_t *loop, const struct vg_rt_target *t,
                        const char *type, const void *settings, struct vg_egress *egress,
                        const char *provider, const char *name);
/* Starts the job with the runtime's runner. Returns 0 (finished() will be called) or VG_E*. */
int vg__egress_job_start(struct vg_egress_job *ej);
void vg__egress_job_free(struct vg_egress_job *ej); /* frees ej itself */

/* action_execute.c: kills the session of every running Execute child (shutdown). */
void vg__execute_kill_all(struct vg_daemon *d);

/* reload.c */
struct vg_reloader;
int vg__reloader_start(struct vg_daemon *d, struct vg_reloader **out);
void vg__reloader_stop(struct vg_reloader *r); /* closes its handles; frees itself */
void vg__reload_now(struct vg_daemon *d, const char *why);

/* api.c */
struct vg_api;
struct vg_op;
/* Registers an egress operation started by a rule (listed under /operations, cancellable with
 * DELETE). Returns NULL when the API is not running. */
struct vg_op *vg__op_begin(struct vg_daemon *d, const struct vg_run *run, const char *egress);
bool vg__op_cancelled(struct vg_op *op); /* thread-safe; NULL-safe */
/* The job DELETE /operations/{id} stops (vg_rt_job_cancel); cleared by vg__op_end. */
void vg__op_set_job(struct vg_op *op, struct vg_rt_job *job);
/* Ties the operation to its artifact's upload (any thread, right after vg_artifact_open), so
 * DELETE reaches the upload and an upload left pending is followed. NULL-safe. */
struct vg_artifact;
void vg__op_attach(struct vg_op *op, const struct vg_artifact *a);
void vg__op_end(struct vg_op *op, int rc, const char *location, const char *error);
/* Keeps a runner's outputs (besides EgressPath) to show under "outputs"; borrowed. NULL-safe. */
void vg__op_outputs(struct vg_op *op, char *const *names, char *const *values, size_t n);
int vg__api_start(struct vg_daemon *d, struct vg_api **out);
void vg__api_stop(struct vg_api *api);
/* Shutdown: every operation that can end early and keep its artifact (a .NET trace, logs, live
 * metrics; an indefinite one would never end) is stopped as DELETE ?stop=true stops it, so it is
 * egressed within the shutdown timeout. NULL-safe. */
void vg__ops_stop_all(struct vg_api *api);

#endif
