/* Action lists: start in order, concurrently unless WaitForCompletion or an output reference
 * forces order; a failing action stops the rest; every start and result is recorded. */
#include "engine/engine_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern const struct vg_action_runner vg__runner_execute;

/* Actions the engine runs itself, for any process; every other action type is a runtime
 * adapter's (engine/runtimes/), reached through vg__runner_runtime. */
static const struct vg_action_runner *const runners[] = {
    &vg__runner_execute,
};

const struct vg_action_runner *vg__action_runner_for(const struct vg_runtime_type *rt,
                                                     const char *type)
{
    for (size_t i = 0; i < VG_ARRAY_SIZE(runners); i++)
        if (strcasecmp(runners[i]->type, type) == 0)
            return runners[i];
    return vg_runtime_action(rt, type) ? &vg__runner_runtime : NULL;
}

bool vg__action_known(const char *type)
{
    for (size_t i = 0; i < VG_ARRAY_SIZE(runners); i++)
        if (strcasecmp(runners[i]->type, type) == 0)
            return true;
    return vg_runtime_action_known(type);
}

static void result_free(struct vg_action_result *r)
{
    for (size_t i = 0; i < r->n_outputs; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
}

static void run_free(struct vg_run *run)
{
    for (size_t i = 0; run->rule && i < run->rule->n_actions; i++)
        result_free(&run->results[i]);
    free(run->results);
    vg_rt_target_free(&run->target);
    free(run->error);
    vg__gen_unref(run->gen);
    free(run);
}

/* ---- token expansion ---- */

static const char *output_lookup(void *ud, const char *action, const char *output)
{
    struct vg_run *run = ud;
    for (size_t i = 0; i < run->rule->n_actions; i++) {
        const struct vg_rule_action *a = &run->rule->actions[i];
        if (!a->name || strcasecmp(a->name, action) != 0 || !run->results[i].done)
            continue;
        for (size_t j = 0; j < run->results[i].n_outputs; j++)
            if (strcasecmp(run->results[i].names[j], output) == 0)
                return run->results[i].values[j];
    }
    return NULL;
}

char *vg__run_expand(struct vg_run *run, const char *s, char **err)
{
    *err = NULL;
    if (!s)
        return NULL;
    struct vg_buf b;
    vg_buf_init(&b);
    char pid[24], nspid[24];
    /* a process known only through its runtime has no pid here: its own namespace's */
    snprintf(pid, sizeof(pid), "%d", run->target.pid ? run->target.pid : run->target.ns_pid);
    snprintf(nspid, sizeof(nspid), "%d", run->target.ns_pid);
    const struct {
        const char *token;
        const char *value;
    } tokens[] = {
        {"$(Process.ProcessId)", pid},
        {"$(Process.NamespaceProcessId)", nspid},
        {"$(Process.Name)", run->target.name},
        {"$(Process.CommandLine)", run->target.cmdline},
        {"$(Process.RuntimeId)", run->target.runtime_id ? run->target.runtime_id : run->target.key},
    };
    for (const char *p = s; *p;) {
        bool hit = false;
        for (size_t i = 0; i < VG_ARRAY_SIZE(tokens) && !hit; i++) {
            size_t n = strlen(tokens[i].token);
            if (strncasecmp(p, tokens[i].token, n) == 0) {
                vg_buf_puts(&b, tokens[i].value ? tokens[i].value : "");
                p += n;
                hit = true;
            }
        }
        if (!hit)
            vg_buf_append(&b, p++, 1);
    }
    char *out = NULL;
    int rc = vg_rule_expand(b.data ? b.data : "", output_lookup, run, &out);
    vg_buf_free(&b);
    if (rc) {
        *err = vg_asprintf("cannot expand \"%s\": %s", s,
                           rc == VG_ENOTFOUND ? "an $(Actions...) output is not available"
                                              : vg_strerror(rc));
        return NULL;
    }
    return out;
}

/* ---- scheduling ---- */

/* true when action idx refers to an output of an action that has not finished (the rule
 * compiler recorded which ones it references) */
static bool waits_for_output(struct vg_run *run, size_t idx)
{
    const struct vg_rule_action *a = &run->rule->actions[idx];
    for (size_t k = 0; k < a->n_waits_for; k++)
        if (!run->results[a->waits_for[k]].done)
            return true;
    return false;
}

static void run_finish(struct vg_run *run)
{
    struct vg_daemon *d = run->d;
    uint64_t now = vg_wall_ms();
    vg_state_fire_end(d->state, run->fire_id, run->failed ? "Failed" : "Succeeded", now,
                      run->error);
    struct vg_watched *w = NULL;
    if (run->inst) {
        struct vg_instance *inst = run->inst;
        inst->run = NULL;
        if (run->failed) {
            free(inst->last_error);
            inst->last_error = vg_strdup(run->error);
        }
        vg_limits_end(&inst->limits, now);
        if (vg_rule_once(inst->rule))
            w = inst->w;
    }
    vg_log(run->failed ? VG_LOG_WARN : VG_LOG_INFO, "rules", "rule %s, pid %d: actions %s%s%s",
           run->rule->name, run->target.pid, run->failed ? "failed" : "completed",
           run->failed ? ": " : "", run->failed && run->error ? run->error : "");
    d->runs_active--;
    run_free(run);
    if (w) /* a Startup action list ended: a runtime held at startup may go on now */
        vg__daemon_check_armed(w);
}

static void run_advance(struct vg_run *run)
{
    struct vg_daemon *d = run->d;
    size_t n = run->rule->n_actions;
    if (run->advancing)
        return; /* a runner reported synchronously; the outer call carries on */
    run->advancing = true;
    while (!run->failed && run->next < n) {
        size_t i = run->next;
        bool blocked = false;
        for (size_t j = 0; j < i && !blocked; j++)
            blocked = run->results[j].started && !run->results[j].done &&
                      run->rule->actions[j].wait_for_completion;
        if (blocked || waits_for_output(run, i))
            break;
        const struct vg_rule_action *a = &run->rule->actions[i];
        const struct vg_action_runner *runner =
            vg__action_runner_for(run->target.runtime, a->type->name);
        run->next++;
        run->results[i].started = true;
        run->running++;
        d->counters.actions_started++;
        vg_state_action_add(d->state, run->fire_id, i, a->name, a->type->name, vg_wall_ms(),
                            &run->results[i].action_id);
        vg_log(VG_LOG_INFO, "action", "rule %s, pid %d: starting %s%s%s", run->rule->name,
               run->target.pid, a->type->name, a->name ? " " : "", a->name ? a->name : "");
        int rc = runner ? runner->start(run, i) : VG_EUNSUPPORTED;
        if (rc) /* the result of a runner that could not start is recorded like any other */
            vg__run_action_done(run, i, rc, vg_strerror(rc), NULL, NULL, 0);
    }
    run->advancing = false;
    if (run->running == 0 && (run->failed || run->next >= n))
        run_finish(run);
}

void vg__run_action_done(struct vg_run *run, size_t idx, int rc, const char *error, char **names,
                         char **values, size_t n_outputs)
{
    struct vg_daemon *d = run->d;
    struct vg_action_result *r = &run->results[idx];
    const struct vg_rule_action *a = &run->rule->actions[idx];
    r->done = true;
    r->ok = rc == 0;
    r->names = names;
    r->values = values;
    r->n_outputs = n_outputs;
    run->running--;
    struct vg_buf out;
    vg_buf_init(&out);
    vg_buf_puts(&out, "{");
    for (size_t i = 0; i < n_outputs; i++) {
        vg_buf_printf(&out, "%s\"%s\":\"", i ? "," : "", names[i]);
        for (const char *c = values[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                vg_buf_printf(&out, "\\%c", *c);
            else if ((unsigned char)*c < 0x20)
                vg_buf_printf(&out, "\\u%04x", (unsigned char)*c);
            else
                vg_buf_append(&out, c, 1);
        }
        vg_buf_puts(&out, "\"");
    }
    vg_buf_puts(&out, "}");
    vg_state_action_end(d->state, r->action_id, rc ? "Failed" : "Succeeded", vg_wall_ms(), out.data,
                        rc ? error : NULL);
    if (rc) {
        d->counters.actions_failed++;
        run->failed = true;
        free(run->error);
        run->error = vg_asprintf("action %s (%s) failed: %s", a->name ? a->name : "#",
                                 a->type->name, error ? error : vg_strerror(rc));
        if (!a->name) {
            free(run->error);
            run->error = vg_asprintf("action %zu (%s) failed: %s", idx + 1, a->type->name,
                                     error ? error : vg_strerror(rc));
        }
    } else {
        d->counters.actions_succeeded++;
        vg_log(VG_LOG_INFO, "action", "rule %s, pid %d: %s done %s", run->rule->name,
               run->target.pid, a->type->name, out.data);
    }
    vg_buf_free(&out);
    run_advance(run);
}

int vg__run_start(struct vg_instance *inst)
{
    struct vg_daemon *d = inst->d;
    const struct vg_rule *r = inst->rule;
    struct vg_proc *p = inst->w->p;
    struct vg_run *run = calloc(1, sizeof(*run));
    if (!run)
        return VG_ENOMEM;
    run->d = d;
    run->gen = d->gen;
    vg__gen_ref(d->gen);
    run->inst = inst;
    run->rule = r;
    run->results = calloc(r->n_actions ? r->n_actions : 1, sizeof(*run->results));
    if (vg_rt_target_init(&run->target, p) != 0 || !run->results) {
        run_free(run);
        return VG_ENOMEM;
    }
    struct vg_trigger_persist tp;
    vg_trigger_save(&r->trigger, inst->tstate, &tp);
    char *persist = NULL;
    if (tp.n) {
        struct vg_buf b;
        vg_buf_init(&b);
        vg_buf_puts(&b, "[");
        for (uint32_t i = 0; i < tp.n && i < VG_TRIGGER_PERSIST_MAX; i++)
            vg_buf_printf(&b, "%s%.17g", i ? "," : "", tp.v[i]);
        vg_buf_puts(&b, "]");
        persist = vg_buf_steal(&b);
    }
    int rc = vg_state_fire_add(d->state, r->name, r->fingerprint, p->key_str, p->pid,
                               inst->last_fired_ms ? inst->last_fired_ms : vg_wall_ms(), persist,
                               &run->fire_id);
    free(persist);
    if (rc)
        vg_log(VG_LOG_ERROR, "state",
               "rule %s: fire not recorded (%s); limits may not survive "
               "a restart",
               r->name, vg_strerror(rc));
    inst->run = run;
    d->runs_active++;
    run_advance(run);
    return 0;
}
