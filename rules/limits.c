#include "rules/limits.h"
#include "config/error.h"
#include "config/util.h"

#include <stdlib.h>
#include <string.h>

const char *vg_rule_state_name(enum vg_rule_state s)
{
    switch (s) {
    case VG_RULE_RUNNING:
        return "Running";
    case VG_RULE_ACTION_EXECUTING:
        return "ActionExecuting";
    case VG_RULE_THROTTLED:
        return "Throttled";
    case VG_RULE_FINISHED:
        return "Finished";
    }
    return "Unknown";
}

int vg_limits_init(struct vg_limits *l, const struct vg_rule_limits *lim, bool once,
                   uint64_t start_ms)
{
    memset(l, 0, sizeof(*l));
    l->lim = *lim;
    if (l->lim.action_count < 1)
        l->lim.action_count = 1;
    l->once = once;
    l->start_ms = start_ms;
    return 0;
}

void vg_limits_free(struct vg_limits *l)
{
    if (!l)
        return;
    free(l->runs);
    free(l->failure);
    l->runs = NULL;
    l->failure = NULL;
    l->n_runs = l->cap = 0;
}

/* Only the newest action_count runs can ever matter for throttling. */
static int push_run(struct vg_limits *l, uint64_t t)
{
    size_t limit = (size_t)l->lim.action_count;
    if (l->n_runs == limit) {
        memmove(l->runs, l->runs + 1, (l->n_runs - 1) * sizeof(*l->runs));
        l->n_runs--;
    }
    if (l->n_runs == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        if (cap > limit)
            cap = limit;
        uint64_t *v = realloc(l->runs, cap * sizeof(*v));
        if (!v)
            return VG_ENOMEM;
        l->runs = v;
        l->cap = cap;
    }
    l->runs[l->n_runs++] = t;
    l->lifetime++;
    if (l->lifetime == 1 || t > l->last_run_ms)
        l->last_run_ms = t;
    return 0;
}

static void prune(struct vg_limits *l, uint64_t now)
{
    size_t k = 0;
    if (!l->lim.action_count_window_ms || now < l->lim.action_count_window_ms)
        return;
    uint64_t lo = now - l->lim.action_count_window_ms;
    while (k < l->n_runs && l->runs[k] < lo)
        k++;
    if (k) {
        memmove(l->runs, l->runs + k, (l->n_runs - k) * sizeof(*l->runs));
        l->n_runs -= k;
    }
}

static void finish_if_done(struct vg_limits *l)
{
    if (l->finished)
        return;
    if (l->once && l->lifetime > 0)
        l->finished = VG_FINISH_STARTUP;
    else if (!l->lim.action_count_window_ms && l->lifetime >= (uint64_t)l->lim.action_count)
        l->finished = VG_FINISH_ACTION_COUNT;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int vg_limits_rebuild(struct vg_limits *l, const struct vg_rule_limits *lim, bool once,
                      uint64_t start_ms, const uint64_t *runs, size_t n_runs, uint64_t now_ms)
{
    uint64_t *sorted = NULL;
    int r = vg_limits_init(l, lim, once, start_ms);
    if (r || n_runs == 0)
        goto out;
    sorted = malloc(n_runs * sizeof(*sorted));
    if (!sorted) {
        r = VG_ENOMEM;
        goto out;
    }
    memcpy(sorted, runs, n_runs * sizeof(*sorted));
    qsort(sorted, n_runs, sizeof(*sorted), cmp_u64);
    for (size_t i = 0; i < n_runs && r == 0; i++)
        r = push_run(l, sorted[i]);
    finish_if_done(l);
    prune(l, now_ms);
out:
    free(sorted);
    return r;
}

static bool duration_over(const struct vg_limits *l, uint64_t now)
{
    return l->lim.rule_duration_ms && now >= l->start_ms &&
           now - l->start_ms >= l->lim.rule_duration_ms;
}

static bool in_cooldown(const struct vg_limits *l, uint64_t now)
{
    return l->lim.cooldown_ms && l->lifetime > 0 && now < l->last_run_ms + l->lim.cooldown_ms;
}

enum vg_limit_verdict vg_limits_check(struct vg_limits *l, uint64_t now_ms)
{
    if (!l->finished && duration_over(l, now_ms))
        l->finished = VG_FINISH_RULE_DURATION;
    if (l->finished)
        return VG_LIMIT_FINISHED;
    if (l->executing)
        return VG_LIMIT_EXECUTING;
    finish_if_done(l);
    if (l->finished)
        return VG_LIMIT_FINISHED;
    if (l->lim.action_count_window_ms) {
        prune(l, now_ms);
        if (l->n_runs >= (size_t)l->lim.action_count)
            return VG_LIMIT_THROTTLED;
    }
    if (in_cooldown(l, now_ms))
        return VG_LIMIT_COOLDOWN;
    return VG_LIMIT_OK;
}

int vg_limits_begin(struct vg_limits *l, uint64_t now_ms)
{
    enum vg_limit_verdict v = vg_limits_check(l, now_ms);
    int r;
    if (v != VG_LIMIT_OK)
        return (int)v;
    if ((r = push_run(l, now_ms)) != 0)
        return r;
    l->executing = true;
    return VG_LIMIT_OK;
}

void vg_limits_end(struct vg_limits *l, uint64_t now_ms)
{
    l->executing = false;
    finish_if_done(l);
}

void vg_limits_finish(struct vg_limits *l, enum vg_finish_reason why, const char *message)
{
    if (l->finished)
        return;
    l->finished = why;
    l->executing = false;
    if (why == VG_FINISH_FAILURE) {
        free(l->failure);
        l->failure = vg_asprintf(VG_REASON_FINISHED_FAILURE_FMT, message ? message : "");
    }
}

enum vg_rule_state vg_limits_state(struct vg_limits *l, uint64_t now_ms, const char **reason)
{
    const char *why = VG_REASON_RUNNING;
    enum vg_rule_state st = VG_RULE_RUNNING;
    switch (vg_limits_check(l, now_ms)) {
    case VG_LIMIT_OK:
        break;
    case VG_LIMIT_EXECUTING:
        st = VG_RULE_ACTION_EXECUTING;
        why = VG_REASON_EXECUTING;
        break;
    case VG_LIMIT_THROTTLED:
        st = VG_RULE_THROTTLED;
        why = VG_REASON_THROTTLED;
        break;
    case VG_LIMIT_COOLDOWN:
        st = VG_RULE_THROTTLED;
        why = VG_REASON_COOLDOWN;
        break;
    case VG_LIMIT_FINISHED:
        st = VG_RULE_FINISHED;
        switch (l->finished) {
        case VG_FINISH_RULE_DURATION:
            why = VG_REASON_FINISHED_RULE_DURATION;
            break;
        case VG_FINISH_ACTION_COUNT:
            why = VG_REASON_FINISHED_ACTION_COUNT;
            break;
        case VG_FINISH_STARTUP:
            why = VG_REASON_FINISHED_STARTUP;
            break;
        case VG_FINISH_CONFIG_CHANGED:
            why = VG_REASON_FINISHED_CONFIG;
            break;
        case VG_FINISH_FAILURE:
        case VG_FINISH_NONE:
            why = l->failure ? l->failure
                             : "The collection rule will no longer trigger because "
                               "a failure occurred.";
            break;
        }
        break;
    }
    if (reason)
        *reason = why;
    return st;
}

size_t vg_limits_window_runs(struct vg_limits *l, uint64_t now_ms)
{
    if (!l->lim.action_count_window_ms)
        return (size_t)l->lifetime;
    prune(l, now_ms);
    return l->n_runs;
}

bool vg_limits_window_countdown(struct vg_limits *l, uint64_t now_ms, uint64_t *ms)
{
    if (!l->lim.action_count_window_ms || l->finished)
        return false;
    prune(l, now_ms);
    if (l->n_runs < (size_t)l->lim.action_count)
        return false;
    uint64_t end = l->runs[0] + l->lim.action_count_window_ms;
    if (end <= now_ms)
        return false;
    *ms = end - now_ms;
    return true;
}

bool vg_limits_rule_countdown(const struct vg_limits *l, uint64_t now_ms, uint64_t *ms)
{
    if (!l->lim.rule_duration_ms || l->finished)
        return false;
    uint64_t end = l->start_ms + l->lim.rule_duration_ms;
    if (end <= now_ms)
        return false;
    *ms = end - now_ms;
    return true;
}

bool vg_limits_cooldown_remaining(const struct vg_limits *l, uint64_t now_ms, uint64_t *ms)
{
    if (!in_cooldown(l, now_ms) || l->finished)
        return false;
    *ms = l->last_run_ms + l->lim.cooldown_ms - now_ms;
    return true;
}
