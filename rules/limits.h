/* Collection rule limits per rule x process: ActionCount within ActionCountSlidingWindowDuration
 * (none = over the rule's lifetime), RuleDuration (from the rule's start for that process) and
 * vigil's Cooldown (minimum time between two runs). Pure functions over wall-clock milliseconds
 * supplied by the caller; the whole state can be rebuilt from the rule start time and the list
 * of past run start times, which is what the engine persists. A run counts when it starts. */
#ifndef VG_LIMITS_H
#define VG_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vg_rule_limits {
    int64_t action_count;            /* default 5 */
    uint64_t action_count_window_ms; /* 0 = the rule's lifetime */
    uint64_t rule_duration_ms;       /* 0 = unlimited */
    uint64_t cooldown_ms;            /* 0 = none */
};

/* dotnet-monitor's CollectionRuleState. */
enum vg_rule_state {
    VG_RULE_RUNNING = 0,
    VG_RULE_ACTION_EXECUTING,
    VG_RULE_THROTTLED,
    VG_RULE_FINISHED,
};

enum vg_finish_reason {
    VG_FINISH_NONE = 0,
    VG_FINISH_RULE_DURATION,
    VG_FINISH_ACTION_COUNT,
    VG_FINISH_STARTUP,
    VG_FINISH_CONFIG_CHANGED,
    VG_FINISH_FAILURE,
};

struct vg_limits {
    struct vg_rule_limits lim;
    bool once;         /* Startup trigger: finish after the first run */
    uint64_t start_ms; /* rule start for this process */
    /* Start times of the most recent runs (at most action_count kept), oldest first. */
    uint64_t *runs;
    size_t n_runs, cap;
    uint64_t lifetime; /* all runs ever */
    uint64_t last_run_ms;
    bool executing;
    enum vg_finish_reason finished;
    char *failure; /* message for VG_FINISH_FAILURE */
};

/* State names as the API shows them: "Running", "ActionExecuting", "Throttled", "Finished". */
const char *vg_rule_state_name(enum vg_rule_state s);

int vg_limits_init(struct vg_limits *l, const struct vg_rule_limits *lim, bool once,
                   uint64_t start_ms);
void vg_limits_free(struct vg_limits *l); /* NULL-safe */
/* init + replays past run start times (any order). A run recorded as executing is not
 * resumed: after a restart nothing is executing. */
int vg_limits_rebuild(struct vg_limits *l, const struct vg_rule_limits *lim, bool once,
                      uint64_t start_ms, const uint64_t *runs, size_t n_runs, uint64_t now_ms);

enum vg_limit_verdict {
    VG_LIMIT_OK = 0,
    VG_LIMIT_EXECUTING, /* the previous action list is still running */
    VG_LIMIT_THROTTLED, /* ActionCount reached within the sliding window */
    VG_LIMIT_COOLDOWN,  /* less than Cooldown since the last run */
    VG_LIMIT_FINISHED,  /* RuleDuration elapsed, ActionCount reached (no window), Startup done */
};

/* Would a trigger fire at now_ms be allowed to run? Also finishes the rule when RuleDuration
 * has elapsed. */
enum vg_limit_verdict vg_limits_check(struct vg_limits *l, uint64_t now_ms);
/* A trigger fired: on VG_LIMIT_OK records the run (it counts from now) and enters
 * ActionExecuting; otherwise returns the verdict and records nothing. VG_ENOMEM possible as
 * a negative value. */
int vg_limits_begin(struct vg_limits *l, uint64_t now_ms);
/* The action list ended (success or not): back to Running, or Finished when the Startup run
 * is done or ActionCount was reached without a sliding window. */
void vg_limits_end(struct vg_limits *l, uint64_t now_ms);
/* Finishes the rule for an outside reason (VG_FINISH_CONFIG_CHANGED, VG_FINISH_FAILURE with a
 * message, copied). */
void vg_limits_finish(struct vg_limits *l, enum vg_finish_reason why, const char *message);

/* Current state and dotnet-monitor's reason text. The returned reason stays valid until the
 * next call on `l`. */
enum vg_rule_state vg_limits_state(struct vg_limits *l, uint64_t now_ms, const char **reason);

/* Runs inside the sliding window (all runs when there is no window). */
size_t vg_limits_window_runs(struct vg_limits *l, uint64_t now_ms);

/* Countdowns in ms; false when not applicable (dotnet-monitor shows null then; it also
 * truncates to whole seconds and shows null for 0, which the caller does when formatting).
 * slidingWindowDurationCountdown: time until the oldest run leaves a full window. */
bool vg_limits_window_countdown(struct vg_limits *l, uint64_t now_ms, uint64_t *ms);
/* ruleFinishedCountdown: time until RuleDuration elapses. */
bool vg_limits_rule_countdown(const struct vg_limits *l, uint64_t now_ms, uint64_t *ms);
/* Time until Cooldown allows the next run. */
bool vg_limits_cooldown_remaining(const struct vg_limits *l, uint64_t now_ms, uint64_t *ms);

/* dotnet-monitor's reason texts. */
#define VG_REASON_RUNNING                                                                          \
    "This collection rule is active and waiting for its triggering conditions to be satisfied."
#define VG_REASON_EXECUTING                                                                        \
    "This collection rule has had its triggering conditions satisfied and is currently "           \
    "executing its action list."
#define VG_REASON_THROTTLED                                                                        \
    "This collection rule is temporarily throttled because the ActionCountLimit has been "         \
    "reached within the ActionCountSlidingWindowDuration."
#define VG_REASON_COOLDOWN                                                                         \
    "This collection rule is temporarily throttled because its Cooldown has not elapsed since "    \
    "the last execution of its action list."
#define VG_REASON_FINISHED_ACTION_COUNT                                                            \
    "The collection rule will no longer trigger because the ActionCount was reached."
#define VG_REASON_FINISHED_RULE_DURATION                                                           \
    "The collection rule will no longer trigger because the RuleDuration limit was reached."
#define VG_REASON_FINISHED_STARTUP                                                                 \
    "The collection rule will no longer trigger because the Startup trigger only executes once."
#define VG_REASON_FINISHED_CONFIG                                                                  \
    "This collection rule will no longer trigger because it no longer exists."
/* printf format with the failure message */
#define VG_REASON_FINISHED_FAILURE_FMT                                                             \
    "The collection rule will no longer trigger because a failure occurred with message: %s."

#endif
