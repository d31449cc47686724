/* /collectionrules (dotnet-monitor's shapes) and /instances (every rule x process, for
 * `vigil status`). */
#include "engine/api_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "rules/limits.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------- /collectionrules ---------- */

static struct vg_instance *find_instance(struct vg_proc *p, const char *rule)
{
    struct vg_watched *w = p->user;
    for (struct vg_instance *i = w ? w->instances : NULL; i; i = i->next)
        if (strcasecmp(i->rule->name, rule) == 0)
            return i;
    return NULL;
}

static json_t *instance_summary(struct vg_instance *inst, uint64_t now)
{
    const char *reason;
    enum vg_rule_state st = vg_limits_state(&inst->limits, now, &reason);
    return json_pack("{s:s, s:s}", "state", vg_rule_state_name(st), "stateReason", reason);
}

static json_t *instance_detail(struct vg_daemon *d, struct vg_instance *inst, uint64_t now)
{
    json_t *o = instance_summary(inst, now);
    const struct vg_rule_limits *lim = &inst->limits.lim;
    uint64_t win = 0, rule = 0, cool = 0;
    bool has_win = vg_limits_window_countdown(&inst->limits, now, &win);
    bool has_rule = vg_limits_rule_countdown(&inst->limits, now, &rule);
    bool has_cool = vg_limits_cooldown_remaining(&inst->limits, now, &cool);
    json_object_set_new(o, "lifetimeOccurrences", json_integer((json_int_t)inst->lifetime_fires));
    json_object_set_new(o, "slidingWindowOccurrences",
                        json_integer((json_int_t)vg_limits_window_runs(&inst->limits, now)));
    json_object_set_new(o, "actionCountLimit", json_integer(lim->action_count));
    json_object_set_new(
        o, "actionCountSlidingWindowDurationLimit",
        vg__json_timespan(lim->action_count_window_ms, lim->action_count_window_ms > 0));
    /* countdowns in whole seconds, as dotnet-monitor reports them */
    json_object_set_new(o, "slidingWindowDurationCountdown",
                        vg__json_timespan(win / 1000 * 1000, has_win && win >= 1000));
    json_object_set_new(o, "ruleFinishedCountdown",
                        vg__json_timespan(rule / 1000 * 1000, has_rule && rule >= 1000));
    json_object_set_new(o, "lastFired", vg__json_time(inst->last_fired_ms));
    json_object_set_new(o, "cooldownRemaining",
                        vg__json_timespan(cool / 1000 * 1000, has_cool && cool >= 1000));
    json_object_set_new(o, "lastError",
                        inst->last_error ? json_string(inst->last_error) : json_null());
    /* vigil's: what a CPUUsage rule read at the latest sample (System.Runtime/cpu-usage, /proc) */
    const struct vg_rt_metric_ref *ref = vg_trigger_rt_metric(&inst->rule->trigger);
    if (inst->rule->trigger.type && (inst->rule->trigger.type->flags & VG_TRIGGER_RT_PREFERRED) &&
        ref && inst->w->rt_source != VG_SRC_NONE) {
        char *src = inst->w->rt_source == VG_SRC_RUNTIME
                        ? vg_asprintf("%s/%s", ref->provider, ref->name)
                        : vg_strdup("/proc");
        json_object_set_new(o, "triggerSource", src ? json_string(src) : json_null());
        free(src);
    }
    if (d->reload_error)
        json_object_set_new(o, "configurationErrors", json_string(d->reload_error));
    return o;
}

/* A rule refused for its configuration errors: it runs on no process, and says why. */
static json_t *refused_summary(const struct vg_refused_rule *x)
{
    char *reason = vg_asprintf("This collection rule is not running: its configuration has %zu "
                               "error%s.",
                               x->errors, x->errors == 1 ? "" : "s");
    json_t *o = json_pack("{s:s, s:s}", "state", "Finished", "stateReason", reason ? reason : "");
    free(reason);
    return o;
}

static json_t *refused_detail(const struct vg_refused_rule *x)
{
    json_t *o = refused_summary(x);
    json_object_set_new(o, "configurationErrors", vg__json_str(x->diagnostics));
    return o;
}

static const struct vg_refused_rule *find_refused(const struct vg_ruleset *rs, const char *name)
{
    for (size_t i = 0; name && i < rs->n_refused; i++)
        if (strcasecmp(rs->refused[i].name, name) == 0)
            return &rs->refused[i];
    return NULL;
}

VG__HANDLER(rules)
{
    struct vg_api *api = ud;
    struct vg_proc *p = vg__api_select_process(api, req, res);
    if (!p)
        return;
    json_t *o = json_object();
    uint64_t now = vg_wall_ms();
    struct vg_watched *w = p->user;
    for (struct vg_instance *i = w ? w->instances : NULL; i; i = i->next)
        json_object_set_new(o, i->rule->name, instance_summary(i, now));
    const struct vg_ruleset *rs = api->d->gen->rules;
    for (size_t i = 0; i < rs->n_refused; i++)
        json_object_set_new(o, rs->refused[i].name, refused_summary(&rs->refused[i]));
    vg_http_res_json(res, 200, o);
}

VG__HANDLER(rule)
{
    struct vg_api *api = ud;
    const char *name = vg_http_req_param(req, "name");
    const struct vg_refused_rule *refused = find_refused(api->d->gen->rules, name);
    if (refused) {
        vg_http_res_json(res, 200, refused_detail(refused));
        return;
    }
    /* dotnet-monitor answers 400 for a rule it does not know (an ArgumentException) */
    if (!vg_ruleset_find(api->d->gen->rules, name)) {
        vg_http_res_problem(res, 400, VG_ENOTFOUND, "no collection rule named \"%s\"", name);
        return;
    }
    struct vg_proc *p = vg__api_select_process(api, req, res);
    if (!p)
        return;
    struct vg_instance *inst = find_instance(p, name);
    if (!inst) {
        vg_http_res_problem(res, 400, VG_ENOTFOUND,
                            "collection rule \"%s\" does not apply to pid %d (its filters do not "
                            "match)",
                            name, p->pid);
        return;
    }
    vg_http_res_json(res, 200, instance_detail(api->d, inst, vg_wall_ms()));
}

/* vigil: every rule x process at once, for `vigil status`. */
VG__HANDLER(instances)
{
    /* Serialized one instance at a time: a whole jansson tree for every rule x process of a
     * busy host cost the daemon a megabyte of heap per request. */
    struct vg_api *api = ud;
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_puts(&b, "{\"instances\":[");
    uint64_t now = vg_wall_ms();
    bool first = true, ok = true;
    for (struct vg_proc *p = vg_proc_table_next(api->d->procs, NULL); p && ok;
         p = vg_proc_table_next(api->d->procs, p)) {
        struct vg_watched *w = p->user;
        for (struct vg_instance *i = w ? w->instances : NULL; i && ok; i = i->next) {
            json_t *o = instance_detail(api->d, i, now);
            json_object_set_new(o, "rule", json_string(i->rule->name));
            json_object_set_new(o, "pid", json_integer(p->pid));
            json_object_set_new(o, "name", vg__json_str(p->name));
            char *one = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            ok = one && vg_buf_printf(&b, "%s%s", first ? "" : ",", one) == 0;
            free(one);
            first = false;
        }
    }
    json_t *errs = api->d->reload_error ? vg__json_str(api->d->reload_error) : json_null();
    char *e = json_dumps(errs, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(errs);
    json_t *refused = json_array();
    const struct vg_ruleset *rs = api->d->gen->rules;
    for (size_t i = 0; i < rs->n_refused; i++)
        json_array_append_new(refused, json_pack("{s:s, s:o}", "rule", rs->refused[i].name,
                                                 "configurationErrors",
                                                 vg__json_str(rs->refused[i].diagnostics)));
    char *r = json_dumps(refused, JSON_COMPACT);
    json_decref(refused);
    ok = ok && e && r &&
         vg_buf_printf(&b, "],\"refusedRules\":%s,\"configurationErrors\":%s}", r, e) == 0;
    free(r);
    free(e);
    if (ok)
        vg_http_res_text(res, 200, "application/json", b.data, b.len);
    else
        vg_http_res_problem(res, 500, VG_ENOMEM, "out of memory");
    vg_buf_free(&b);
}
