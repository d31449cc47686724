/* The daemon's heart: generations, per-process rule instances, the sampling tick, fires,
 * signals and shutdown. */
#include "engine/engine_int.h"

#include "config/defaults.h"
#include "config/error.h"
#include "config/source.h"
#include "config/log.h"
#include "config/util.h"
#include "egress/egress.h"
#include "rules/limits.h"

#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#define RESUME_INTERVAL_MS (5 * 60 * 1000)

/* ---------- instances ---------- */

void vg__proc_info(const struct vg_proc *p, struct vg_proc_info *out)
{
    memset(out, 0, sizeof(*out));
    out->pid = p->pid;
    out->nspid = p->ns_pid;
    out->uid = p->uid;
    out->name = p->name;
    out->cmdline = p->cmdline ? p->cmdline : "";
    struct vg_rt_facts f;
    vg_runtime_facts(p, &f);
    out->runtime_id = f.runtime_id ? f.runtime_id : p->key_str;
    out->managed_entry_point = f.entry_assembly;
    /* On a hybrid host the v2 path is just "/"; the v1 memory path says more there. */
    bool v2_useful = p->cgroup->v2[0] && strcmp(p->cgroup->v2, "/") != 0;
    out->cgroup = v2_useful || !p->cgroup->v1_memory[0] ? p->cgroup->v2 : p->cgroup->v1_memory;
}

static void persist_parse(const char *s, struct vg_trigger_persist *p)
{
    memset(p, 0, sizeof(*p));
    if (!s || *s != '[')
        return;
    s++;
    while (*s && *s != ']' && p->n < VG_TRIGGER_PERSIST_MAX) {
        char *end;
        double v = strtod(s, &end);
        if (end == s)
            break;
        p->v[p->n++] = v;
        s = end;
        if (*s == ',')
            s++;
    }
}

int vg__limits_load(struct vg_daemon *d, const struct vg_rule *r, const char *proc_key, int pid,
                    uint64_t now, struct vg_limits *out, struct vg_trigger_persist *tp,
                    uint64_t *last_fired_ms, size_t *n_fires)
{
    uint64_t start = now;
    struct vg_state_fire *fires = NULL;
    size_t nf = 0;
    memset(tp, 0, sizeof(*tp));
    *last_fired_ms = 0;
    *n_fires = 0;
    int rc = vg_state_instance_load(d->state, r->name, r->fingerprint, proc_key, pid, now, &start,
                                    &fires, &nf);
    if (rc)
        vg_log(VG_LOG_WARN, "state", "rule %s, pid %d: state not loaded (%s); starting fresh",
               r->name, pid, vg_strerror(rc));
    uint64_t *runs = nf ? calloc(nf, sizeof(*runs)) : NULL;
    for (size_t i = 0; runs && i < nf; i++)
        runs[i] = fires[i].fired_ms;
    rc = vg_limits_rebuild(out, &r->limits, vg_rule_once(r), start, runs, runs ? nf : 0, now);
    free(runs);
    if (rc == 0 && nf) {
        persist_parse(fires[nf - 1].persist, tp);
        *last_fired_ms = fires[nf - 1].fired_ms;
        *n_fires = nf;
    }
    vg_state_fires_free(fires, nf);
    return rc;
}

static void instance_destroy(struct vg_instance *inst)
{
    if (inst->run)
        inst->run->inst = NULL; /* the run finishes on its own and then only records history */
    vg_limits_free(&inst->limits);
    free(inst->tstate);
    free(inst->last_error);
    free(inst);
}

static void evaluate(struct vg_daemon *d, struct vg_instance *inst, const struct vg_sample *s,
                     uint64_t now);

static int instance_create(struct vg_daemon *d, struct vg_watched *w, size_t rule_index)
{
    const struct vg_rule *r = &d->gen->rules->rules[rule_index];
    struct vg_instance *inst = calloc(1, sizeof(*inst));
    if (!inst)
        return VG_ENOMEM;
    inst->d = d;
    inst->w = w;
    inst->rule = r;
    inst->rule_index = rule_index;
    inst->fingerprint = r->fingerprint;
    size_t ss = vg_trigger_state_size(&r->trigger);
    inst->tstate = calloc(1, ss ? ss : 1);
    if (!inst->tstate) {
        free(inst);
        return VG_ENOMEM;
    }
    vg_trigger_reset(&r->trigger, inst->tstate);

    struct vg_trigger_persist tp;
    size_t nf = 0;
    int rc = vg__limits_load(d, r, w->p->key_str, w->p->pid, vg_wall_ms(), &inst->limits, &tp,
                             &inst->last_fired_ms, &nf);
    if (rc == 0 && nf) {
        vg_trigger_restore(&r->trigger, inst->tstate, &tp);
        inst->lifetime_fires = nf;
        vg_log(VG_LOG_INFO, "rules", "rule %s, pid %d: resumed with %zu earlier run%s", r->name,
               w->p->pid, nf, nf == 1 ? "" : "s");
    }
    const char *why = d->gen->unsupported[rule_index];
    char *why_here = why ? NULL : vg__rule_unsupported_for(r, w->p);
    if (rc == 0 && (why || why_here)) {
        vg_limits_finish(&inst->limits, VG_FINISH_FAILURE, why ? why : why_here);
        inst->last_error = vg_strdup(why ? why : why_here);
    }
    free(why_here);
    if (rc) {
        free(inst->tstate);
        free(inst);
        return rc;
    }
    inst->next = w->instances;
    w->instances = inst;
    w->had_instances = true;
    if (r->trigger.type && (r->trigger.type->flags & VG_TRIGGER_ONCE)) {
        /* Startup fires the moment the process is discovered, not at its first sample (a
         * process living a second or two would be gone by then) */
        struct vg_sample now_sample = {.t_ms = vg_mono_ms()};
        evaluate(d, inst, &now_sample, vg_wall_ms());
    }
    vg_log(VG_LOG_DEBUG, "rules", "rule %s now watches pid %d (%s)", r->name, w->p->pid,
           w->p->name);
    return 0;
}

#define MAX_RT_NEEDS 32

/* Adds a provider to a session's needs (once; a meter if any asker reads it as one); returns the
 * new count. */
static size_t add_need(struct vg_rt_metric_ref *refs, size_t n, const char *provider,
                       const char *name, bool meter)
{
    if (!provider || n == MAX_RT_NEEDS)
        return n;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(refs[i].provider, provider) == 0) {
            refs[i].meter |= meter;
            return n;
        }
    refs[n] = (struct vg_rt_metric_ref){.provider = provider, .name = name, .meter = meter};
    return n + 1;
}

/* A runtime sampling session while some rule on the process reads the runtime's own samples
 * (and its adapter can provide them); closed when none does any more, reopened when the rules
 * read samples of another provider (one session per process feeds every rule). */
static bool sample_all(const struct vg_daemon *d, const struct vg_proc *p)
{
    return d->gen->cfg->settings.discovery.sample_all && vg__proc_visible(d, p);
}

/* dotnet-monitor keeps a counters session on its default process: /metrics shows its runtime
 * counters with no rule asking for them (DefaultProcess.Filters, an adapter with sessions). */
static bool default_metrics(const struct vg_daemon *d, const struct vg_proc *p)
{
    const struct vg_filter_list *dp = &d->gen->cfg->settings.default_process;
    if (!dp->n || !p->runtime || !p->runtime->session_open || p->external ||
        !vg__proc_visible(d, p))
        return false;
    struct vg_proc_info info;
    vg__proc_info(p, &info);
    return vg_filters_match(dp->v, dp->n, &info);
}

/* Whether rule r reads the runtime samples of a process of runtime rt: a runtime trigger, or
 * one preferring a runtime's counter where rt's sessions provide EventCounters (CPUUsage). */
static bool reads_runtime(const struct vg_rule *r, const struct vg_runtime_type *rt)
{
    const struct vg_trigger_type *t = r->trigger.type;
    if (t && (t->flags & VG_TRIGGER_RT_PREFERRED))
        return rt && rt->event_counters;
    return r->needs_runtime;
}

static uint64_t seconds_ms(double s)
{
    return (uint64_t)(s * 1000 + 0.5);
}

/* GlobalCounter's intervals, into the session's needs and its signature (a change reopens the
 * session). Returns the per-provider ones (malloc'd; NULL when none or out of memory). */
static struct vg_rt_interval *add_intervals(const struct vg_global_counter_settings *gc,
                                            struct vg_rt_needs *needs, struct vg_buf *sig)
{
    needs->interval_ms = seconds_ms(gc->interval_seconds);
    vg_buf_printf(sig, "@%" PRIu64 "\n", needs->interval_ms);
    struct vg_rt_interval *iv = gc->n_providers ? calloc(gc->n_providers, sizeof(*iv)) : NULL;
    for (size_t i = 0; iv && i < gc->n_providers; i++) {
        iv[i] = (struct vg_rt_interval){gc->providers[i].name,
                                        seconds_ms(gc->providers[i].interval_seconds)};
        vg_buf_printf(sig, "@%s=%" PRIu64 "\n", iv[i].provider, iv[i].interval_ms);
    }
    needs->intervals = iv;
    needs->n_intervals = iv ? gc->n_providers : 0;
    return iv;
}

static void update_session(struct vg_daemon *d, struct vg_watched *w, bool dropping)
{
    const struct vg_runtime_type *rt = w->p->runtime;
    struct vg_rt_metric_ref refs[MAX_RT_NEEDS];
    struct vg_buf sig = {0};
    size_t n = 0;
    /* What is sampled: the processes rules watch, or every one when /metrics should show all */
    bool dm = !dropping && w->default_metrics;
    bool sampled = !dropping && (w->instances || sample_all(d, w->p) || dm);
    w->p->identity_only = !sampled;
    /* an adapter whose samples cost nothing (a mapped file) keeps a session for /metrics */
    bool need = (sampled && rt && rt->cheap_samples) || dm;
    for (struct vg_instance *x = dropping ? NULL : w->instances; x; x = x->next) {
        if (!reads_runtime(x->rule, rt) || x->limits.finished)
            continue;
        need = true;
        const struct vg_rt_metric_ref *r = vg_trigger_rt_metric(&x->rule->trigger);
        if (r)
            n = add_need(refs, n, r->provider, r->name, r->meter);
    }
    /* a session also reads what /metrics is configured to show (Metrics.Providers, .Meters) */
    const struct vg_metrics_settings *ms = &d->gen->cfg->settings.metrics;
    for (size_t i = 0; need && i < ms->n_providers; i++)
        n = add_need(refs, n, ms->providers[i].name, NULL, false);
    for (size_t i = 0; need && i < ms->n_meters; i++)
        n = add_need(refs, n, ms->meters[i].name, NULL, true);
    for (size_t i = 0; i < n; i++) /* what the session reads: a change reopens it */
        vg_buf_printf(&sig, "%s%s\n", refs[i].provider, refs[i].meter ? " (meter)" : "");
    struct vg_rt_needs needs = {.metrics = refs, .n_metrics = n};
    struct vg_rt_interval *iv =
        need ? add_intervals(&d->gen->cfg->settings.global_counter, &needs, &sig) : NULL;
    const char *want = sig.data ? sig.data : "";
    bool changed = w->session && strcmp(w->session_needs ? w->session_needs : "", want) != 0;
    if (w->session && (!need || w->session_rt != rt || changed)) {
        w->session_rt->session_close(w->session);
        w->session = NULL;
        w->session_rt = NULL;
        free(w->session_needs);
        w->session_needs = NULL;
        vg_rt_values_clear(&w->rt);
    }
    if (need && !w->session && rt && rt->session_open) {
        int rc = rt->session_open(d->loop, w->p, w->p->runtime_data, &needs, &w->session);
        if (rc == 0) {
            w->session_rt = rt;
            w->session_needs = vg_strdup(want);
        } else {
            vg_log(VG_LOG_WARN, "runtime", "pid %d (%s): cannot open a %s session: %s", w->p->pid,
                   w->p->name, rt->display, vg_strerror(rc));
        }
    }
    free(iv);
    vg_buf_free(&sig);
}

/* Whether p passes the global Discovery.Filters (every process when there are none). */
bool vg__proc_visible(const struct vg_daemon *d, const struct vg_proc *p)
{
    const struct vg_discovery_settings *ds = &d->gen->cfg->settings.discovery;
    if (!ds->n_filters)
        return true;
    struct vg_proc_info info;
    vg__proc_info(p, &info);
    return vg_filters_match(ds->filters, ds->n_filters, &info);
}

/* Creates instances for every rule of the current generation that matches p and has none. */
static void attach_rules(struct vg_daemon *d, struct vg_watched *w)
{
    struct vg_proc_info info;
    /* with the rules: evaluated when the process appears, changes or the configuration does */
    w->default_metrics = default_metrics(d, w->p);
    if (!vg__proc_visible(d, w->p))
        return; /* outside Discovery.Filters */
    vg__proc_info(w->p, &info);
    for (size_t i = 0; i < d->gen->rules->n_rules; i++) {
        const struct vg_rule *r = &d->gen->rules->rules[i];
        bool have = false;
        for (struct vg_instance *x = w->instances; x && !have; x = x->next)
            have = x->rule == r;
        if (have || !vg__rule_applies(r, w->p) || !vg_rule_matches(r, &info))
            continue;
        int rc = instance_create(d, w, i);
        if (rc)
            vg_log(VG_LOG_ERROR, "rules", "rule %s, pid %d: %s", r->name, w->p->pid,
                   vg_strerror(rc));
    }
}

static void drop_watched(struct vg_daemon *d, struct vg_watched *w, bool forget);

/* A process no rule ever watched and nothing samples costs its discovery only: no record here,
 * no /proc reads but the table's identity check (p->identity_only). */
static void settle(struct vg_daemon *d, struct vg_watched *w)
{
    if (w->had_instances || w->session || !w->p->identity_only || w->p->external)
        return;
    vg__daemon_check_armed(w); /* no rule to wait for: a runtime held at startup goes on */
    drop_watched(d, w, false);
}

static void on_appeared(struct vg_proc *p, void *arg)
{
    struct vg_daemon *d = arg;
    struct vg_watched *w = calloc(1, sizeof(*w));
    if (!w)
        return;
    w->p = p;
    p->user = w;
    attach_rules(d, w);
    update_session(d, w, false);
    settle(d, w);
}

static void drop_watched(struct vg_daemon *d, struct vg_watched *w, bool forget)
{
    while (w->instances) {
        struct vg_instance *n = w->instances->next;
        instance_destroy(w->instances);
        w->instances = n;
    }
    if (forget)
        vg_state_forget_process(d->state, w->p->key_str);
    update_session(d, w, true); /* closes it */
    vg_rt_values_free(&w->rt);
    free(w->session_needs);
    w->p->user = NULL;
    free(w);
}

static void on_exited(struct vg_proc *p, void *arg)
{
    struct vg_daemon *d = arg;
    if (p->user) {
        vg_log(VG_LOG_DEBUG, "discovery", "pid %d (%s) exited", p->pid, p->name);
        drop_watched(d, p->user, true);
    }
}

static void on_changed(struct vg_proc *p, void *arg)
{
    /* exec, or the runtime became known: re-match. Instances whose filters still match keep
     * their state; the others stop; newly matching rules start. */
    struct vg_daemon *d = arg;
    struct vg_watched *w = p->user;
    if (!w) {
        on_appeared(p, d);
        return;
    }
    struct vg_proc_info info;
    vg__proc_info(p, &info);
    bool visible = vg__proc_visible(d, p);
    struct vg_instance **pp = &w->instances;
    while (*pp) {
        struct vg_instance *inst = *pp;
        if (visible && vg__rule_applies(inst->rule, p) && vg_rule_matches(inst->rule, &info)) {
            pp = &inst->next;
            continue;
        }
        vg_log(VG_LOG_INFO, "rules", "rule %s no longer matches pid %d (%s)", inst->rule->name,
               p->pid, p->name);
        *pp = inst->next;
        instance_destroy(inst);
    }
    attach_rules(d, w);
    update_session(d, w, false);
    settle(d, w);
}

/* .NET's Logging section sets the level and format, unless the command line did. */
static void apply_logging(struct vg_daemon *d, const struct vg_gen *g)
{
    const struct vg_logging_settings *lg = &g->cfg->settings.logging;
    if (!d->opts->log_level_set && lg->level >= 0)
        vg_log_level = lg->level;
    if (!d->opts->log_format_set && lg->format >= 0)
        vg_log_set_format((enum vg_log_format)lg->format);
}

void vg__daemon_apply_gen(struct vg_daemon *d, struct vg_gen *g)
{
    struct vg_gen *old = d->gen;
    d->gen = g;
    if (old && d->runtimes_started)
        vg_runtimes_configure(&g->cfg->settings);
    apply_logging(d, g);
    if (old && g->cfg->settings.discovery.poll_interval_ms != d->poll_ms) {
        d->poll_ms = g->cfg->settings.discovery.poll_interval_ms;
        uv_timer_set_repeat(&d->tick, d->poll_ms);
    }
    /* Keep instances whose rule kept its name and fingerprint; drop the rest. */
    for (struct vg_proc *p = vg_proc_table_next(d->procs, NULL); p;
         p = vg_proc_table_next(d->procs, p)) {
        struct vg_watched *w = p->user;
        if (!w) {
            on_appeared(p, d); /* a rule may watch it now */
            continue;
        }
        bool visible = vg__proc_visible(d, p);
        struct vg_instance **pp = &w->instances;
        while (*pp) {
            struct vg_instance *inst = *pp;
            const struct vg_rule *nr = vg_ruleset_find(g->rules, inst->rule->name);
            if (visible && nr && nr->fingerprint == inst->fingerprint &&
                !g->unsupported[nr - g->rules->rules]) {
                inst->rule = nr;
                inst->rule_index = (size_t)(nr - g->rules->rules);
                pp = &inst->next;
            } else {
                vg_log(VG_LOG_INFO, "rules", "rule %s %s for pid %d", inst->rule->name,
                       !visible ? "stopped (outside Discovery.Filters)"
                       : nr     ? "changed: starting fresh"
                                : "removed: stopped",
                       p->pid);
                *pp = inst->next;
                instance_destroy(inst);
            }
        }
        attach_rules(d, w);
        update_session(d, w, false);
        settle(d, w);
    }
    if (old)
        vg__gen_unref(old);
}

/* A runtime held at startup (a .NET `suspend` diagnostic port) goes on once every rule on its
 * process is armed and the Startup rules' action lists are done, as dotnet-monitor resumes it
 * after its startup actions. The adapter acts once; it also lets go after its own deadline. */
void vg__daemon_check_armed(struct vg_watched *w)
{
    struct vg_proc *p = w->p;
    if (!p->runtime || !p->runtime->armed || !p->runtime_data)
        return;
    for (struct vg_instance *x = w->instances; x; x = x->next)
        if (x->run && vg_rule_once(x->rule))
            return;
    p->runtime->armed(p->runtime_data);
}

/* ---------- sampling ---------- */

static void evaluate(struct vg_daemon *d, struct vg_instance *inst, const struct vg_sample *s,
                     uint64_t now)
{
    if (inst->limits.finished)
        return;
    if (!vg_trigger_observe(&inst->rule->trigger, inst->tstate, s))
        return;
    int verdict = vg_limits_begin(&inst->limits, now);
    if (verdict < 0) {
        vg_log(VG_LOG_ERROR, "rules", "rule %s: %s", inst->rule->name, vg_strerror(verdict));
        return;
    }
    if (verdict != VG_LIMIT_OK) {
        static const char *const why[] = {"", "its actions are still running", "it is throttled",
                                          "it is in cooldown", "it is finished"};
        vg_log(VG_LOG_DEBUG, "rules", "rule %s triggered for pid %d but %s", inst->rule->name,
               inst->w->p->pid, why[verdict]);
        return;
    }
    inst->last_fired_ms = now;
    inst->lifetime_fires++;
    d->counters.rules_fired++;
    vg_log(VG_LOG_INFO, "rules", "rule %s fired for pid %d (%s)", inst->rule->name, inst->w->p->pid,
           inst->w->p->name);
    int rc = vg__run_start(inst);
    if (rc) {
        free(inst->last_error);
        inst->last_error = vg_asprintf("could not start actions: %s", vg_strerror(rc));
        vg_limits_end(&inst->limits, now);
    }
}

/* Every sweep samples what the rules need plus what /proc/PID/stat gives for free; the other
 * metrics (open fds, I/O, context switches, cgroup files) only feed /metrics, and reading them
 * for every process every tick was most of the daemon's CPU: they are refreshed every
 * FULL_SAMPLE_EVERY sweeps and shown with their last value in between. */
#define FULL_SAMPLE_EVERY 10
/* Processes come and go by the thousand on a busy host; glibc keeps what their records freed
 * inside a fragmented heap, so RSS creeps up over hours. Every TRIM_EVERY sweeps the free pages
 * go back to the kernel (a walk of the free lists: microseconds for a heap this size). */
#define TRIM_EVERY 30
#define STAT_METRICS                                                                               \
    (VG_METRIC_BIT(VG_M_CPU_PERCENT) | VG_METRIC_BIT(VG_M_CPU_SECONDS) | VG_METRIC_BIT(VG_M_RSS) | \
     VG_METRIC_BIT(VG_M_VSIZE) | VG_METRIC_BIT(VG_M_THREADS) | VG_METRIC_BIT(VG_M_MAJFLT) |        \
     VG_METRIC_BIT(VG_M_MINFLT))

static uint64_t metric_mask(struct vg_daemon *d)
{
    uint64_t rules = d->gen->rules->metrics;
    if (d->ticks % FULL_SAMPLE_EVERY == 0)
        return VG_SAMPLER_DEFAULT_MASK | (rules & VG_METRIC_BIT(VG_M_PSS));
    return STAT_METRICS | rules;
}

/* Uploads that ran out of retries stay pending; give them another go now and then. */
static void on_resume_timer(uv_timer_t *t)
{
    struct vg_daemon *d = t->data;
    int rc = vg_egress_resume_all(d->gen->egress);
    if (rc && rc != VG_EBUSY)
        vg_log(VG_LOG_WARN, "egress", "cannot resume pending uploads: %s", vg_strerror(rc));
}

#define SESSION_ERROR "runtime samples unavailable: "

/* Why the session has no samples, shown as the lastError of the rules reading them (and gone
 * from there once it has samples again). */
static void session_error(struct vg_watched *w)
{
    char why[512];
    bool bad =
        w->session_rt->session_error && w->session_rt->session_error(w->session, why, sizeof(why));
    for (struct vg_instance *x = w->instances; x; x = x->next) {
        if (!x->rule->needs_runtime || x->limits.finished)
            continue;
        bool shown =
            x->last_error && strncmp(x->last_error, SESSION_ERROR, strlen(SESSION_ERROR)) == 0;
        if (bad && (!shown || strcmp(x->last_error + strlen(SESSION_ERROR), why) != 0)) {
            free(x->last_error);
            x->last_error = vg_asprintf(SESSION_ERROR "%s", why);
        } else if (!bad && shown) {
            free(x->last_error);
            x->last_error = NULL;
        }
    }
}

/* Says (debug log) when what a process's CPUUsage rules read changes: the runtime's counter
 * once it arrives, /proc until then or when it stops coming (the session failed, the port is
 * unreachable). Processes whose runtime has no counters always read /proc: nothing to say. */
static void note_source(struct vg_watched *w)
{
    const struct vg_trigger *t = NULL;
    for (struct vg_instance *x = w->instances; x && !t; x = x->next)
        if (!x->limits.finished && x->rule->trigger.type &&
            (x->rule->trigger.type->flags & VG_TRIGGER_RT_PREFERRED))
            t = &x->rule->trigger;
    if (!t)
        return;
    int src = vg_trigger_rt_value(t, &w->last) ? VG_SRC_RUNTIME : VG_SRC_PROC;
    if ((int)w->rt_source == src)
        return;
    w->rt_source = src;
    const struct vg_rt_metric_ref *ref = vg_trigger_rt_metric(t);
    if (!w->p->runtime || !w->p->runtime->event_counters || !ref)
        return;
    if (src == VG_SRC_RUNTIME)
        vg_log(VG_LOG_DEBUG, "rules", "pid %d (%s): %s reads the runtime's %s/%s counter",
               w->p->pid, w->p->name, t->type->name, ref->provider, ref->name);
    else
        vg_log(VG_LOG_DEBUG, "rules",
               "pid %d (%s): %s reads /proc (no %s/%s counter from the %s "
               "runtime%s)",
               w->p->pid, w->p->name, t->type->name, ref->provider, ref->name,
               w->p->runtime->display, w->session ? " yet, or not any more" : ": no session");
}

static void on_tick(uv_timer_t *t)
{
    struct vg_daemon *d = t->data;
    uint64_t t0 = uv_hrtime();
    struct vg_proc_scan_cb cb = {on_appeared, on_exited, on_changed, d};
    int rc = vg_proc_scan(d->procs, &cb);
    if (rc) {
        vg_log(VG_LOG_ERROR, "discovery", "cannot scan processes: %s", vg_strerror(rc));
        return;
    }
    vg_sampler_tick(d->sampler);
    uint64_t mono = vg_mono_ms(), wall = vg_wall_ms();
    uint64_t mask = metric_mask(d);
    uint64_t sampled = 0;
    for (struct vg_proc *p = vg_proc_table_next(d->procs, NULL); p;
         p = vg_proc_table_next(d->procs, p)) {
        struct vg_watched *w = p->user;
        if (!w)
            continue;
        if (p->identity_only && !p->external) {
            w->has_sample = false; /* its rules finished or went away: nothing reads it */
            continue;
        }
        sampled++;
        struct vg_sample prev = w->last;
        bool had = w->has_sample;
        if (p->external) {
            /* nothing to read in /proc: the runtime's own samples and Startup only */
            memset(&w->last, 0, sizeof(w->last));
            w->last.t_ms = mono;
        } else if (vg_sampler_sample(d->sampler, p, mono, mask, &w->last) != 0) {
            w->has_sample = false;
            continue;
        }
        w->has_sample = true;
        if (w->session)
            update_session(d, w, false); /* its rules may have finished */
        if (w->session) {
            vg_rt_values_clear(&w->rt);
            w->session_rt->session_sample(w->session, &w->rt);
            w->last.rt = &w->rt;
            session_error(w);
        } else {
            w->last.rt = NULL;
        }
        /* metrics not sampled this sweep keep their last value (no rule reads them) */
        for (int m = 0; had && m < VG_METRIC_COUNT; m++) {
            uint64_t bit = VG_METRIC_BIT(m);
            if (!(mask & bit) && (prev.valid & bit)) {
                w->last.v[m] = prev.v[m];
                w->last.valid |= bit;
            }
        }
        /* runtime metrics (jvm_*, nodejs_*) come from the session's latest samples, never
         * carried over */
        vg_sample_set_runtime(&w->last, w->last.rt);
        for (struct vg_instance *inst = w->instances; inst; inst = inst->next)
            evaluate(d, inst, &w->last, wall);
        note_source(w);
        vg__daemon_check_armed(w);
    }
    d->counters.processes = vg_proc_table_count(d->procs);
    d->counters.processes_sampled = sampled;
#ifdef __GLIBC__
    if (d->ticks % TRIM_EVERY == TRIM_EVERY - 1)
        malloc_trim(0);
#endif
    d->ticks++;
    d->counters.sample_duration_us = (uv_hrtime() - t0) / 1000;
}

/* ---------- what runtime adapters may ask ---------- */

static void host_changed(struct vg_proc *p, void *arg)
{
    on_changed(p, arg);
}

static void host_rescan(void *arg)
{
    struct vg_daemon *d = arg;
    if (!d->stopping)
        uv_timer_start(&d->tick, on_tick, 0, d->poll_ms);
}

static struct vg_proc *host_find(int pid, void *arg)
{
    struct vg_daemon *d = arg;
    return d->procs ? vg_proc_table_find(d->procs, pid) : NULL;
}

static struct vg_proc *host_add_external(const struct vg_proc_external *x, void *arg)
{
    struct vg_daemon *d = arg;
    struct vg_proc *p = d->procs ? vg_proc_table_add_external(d->procs, x) : NULL;
    if (p) {
        vg_log(VG_LOG_INFO, "discovery",
               "%s (pid %d in its own namespace) is known through its runtime only", p->name,
               p->ns_pid);
        on_appeared(p, d);
    }
    return p;
}

static void host_remove_external(struct vg_proc *p, void *arg)
{
    struct vg_daemon *d = arg;
    on_exited(p, d);
    vg_proc_table_remove_external(d->procs, p);
}

/* ---------- lifecycle ---------- */

static void finish_stop(struct vg_daemon *d)
{
    uv_timer_stop(&d->stop_timer);
    /* Sessions first: an adapter may still have to undo what it did to a process (close an
     * inspector it opened); its handles keep the loop running until it has. */
    for (struct vg_proc *p = vg_proc_table_next(d->procs, NULL); p;
         p = vg_proc_table_next(d->procs, p))
        if (p->user)
            update_session(d, p->user, true);
    vg__api_stop(d->api);
    d->api = NULL;
    vg__reloader_stop(d->reloader);
    d->reloader = NULL;
    if (d->runtimes_started)
        vg_runtimes_stop();
    d->runtimes_started = false;
    /* the API and the reloader close their own handles; these are the daemon's */
    uv_handle_t *mine[] = {(uv_handle_t *)&d->tick,         (uv_handle_t *)&d->stop_timer,
                           (uv_handle_t *)&d->resume_timer, (uv_handle_t *)&d->sig_term,
                           (uv_handle_t *)&d->sig_int,      (uv_handle_t *)&d->sig_hup};
    for (size_t i = 0; i < VG_ARRAY_SIZE(mine); i++)
        if (!uv_is_closing(mine[i]))
            uv_close(mine[i], NULL);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct vg_daemon *d = t->data;
    if (d->runs_active == 0) {
        finish_stop(d);
        return;
    }
    if (vg_mono_ms() >= d->stop_deadline) {
        vg_log(VG_LOG_WARN, "daemon",
               "%u action list%s still running after the shutdown timeout; exiting anyway "
               "(the next start records them as interrupted; pending uploads resume)",
               d->runs_active, d->runs_active == 1 ? "" : "s");
        d->exit_status = 0;
        d->stopping = true;
        if (d->runtimes_started) /* lets runtimes held at startup go before vigil exits */
            vg_runtimes_stop();
        d->runtimes_started = false;
        vg__execute_kill_all(d); /* nothing an action started outlives vigil */
        uv_stop(d->loop);
    }
}

static void begin_stop(struct vg_daemon *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = true;
    vg_log(VG_LOG_INFO, "daemon", "%s: stopping (waiting for %u running action list%s)", why,
           d->runs_active, d->runs_active == 1 ? "" : "s");
    uv_timer_stop(&d->tick);
    uv_timer_stop(&d->resume_timer);
    vg__ops_stop_all(d->api);
    d->stop_deadline = vg_mono_ms() + d->opts->shutdown_timeout_ms;
    uv_timer_start(&d->stop_timer, on_stop_timer, 0, 100);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct vg_daemon *d = h->data;
    if (signum == SIGHUP) {
        vg__reload_now(d, "SIGHUP");
        return;
    }
    begin_stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

char *vg__state_dir(const struct vg_daemon_options *opts)
{
    if (opts->state_dir)
        return vg_strdup(opts->state_dir);
    struct vg_diags diags;
    vg_diags_init(&diags);
    struct vg_config *probe = NULL;
    char *dir = NULL;
    static const char *const def[] = {VG_DEFAULT_CONFIG_DIR};
    /* a configuration with errors still names its state dir (the rules in error are refused) */
    vg_config_load_ex(opts->n_config_dirs ? opts->config_dirs : def,
                      opts->n_config_dirs ? opts->n_config_dirs : 1, VG_CONFIG_KEEP_ON_ERROR,
                      &diags, &probe);
    if (probe && probe->settings.storage.state_dir)
        dir = vg_strdup(probe->settings.storage.state_dir);
    vg_config_destroy(probe);
    vg_diags_free(&diags);
    return dir ? dir : vg_strdup(VG_DEFAULT_STATE_DIR);
}

int vg_daemon_run(const struct vg_daemon_options *opts)
{
    struct vg_daemon dd, *d = &dd;
    memset(d, 0, sizeof(*d));
    d->opts = opts;
    d->exit_status = 1;
    uv_loop_t loop;
    char *errors = NULL;
    char err[512] = "";
    int rc;
    if (uv_loop_init(&loop) != 0)
        return 1;
    /* A client or an upload peer hanging up must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    /* The process table keeps /proc files open between sweeps (up to half the fd limit). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    d->loop = &loop;

    /* The state dir must be known before the first generation: egress keeps its rows there. */
    d->state_dir = vg__state_dir(opts);
    rc = vg_state_open(d->state_dir, &d->state, err, sizeof(err));
    if (rc) {
        vg_log(VG_LOG_ERROR, "state", "%s", err);
        goto out;
    }
    if (!(d->source_cache = vg_source_cache_create()))
        goto out;
    rc = vg__gen_build(d, &d->gen, &errors);
    if (rc) {
        vg_log(VG_LOG_ERROR, "daemon", "cannot start: the configuration is not valid");
        goto out;
    }
    apply_logging(d, d->gen);
    d->poll_ms = d->gen->cfg->settings.discovery.poll_interval_ms;
    struct vg_proc_table_options popts = {.exclude_pid = getpid(),
                                          .detector = &vg_runtime_detector};
    if ((rc = vg_proc_table_create(&opts->procfs, &popts, &d->procs)) ||
        (rc = vg_sampler_create(&opts->procfs, &d->sampler))) {
        vg_log(VG_LOG_ERROR, "discovery", "cannot read processes: %s", vg_strerror(rc));
        goto out;
    }
    vg_egress_resume_all(d->gen->egress);

    uv_timer_init(&loop, &d->tick);
    d->rt_host = (struct vg_rt_host){.loop = &loop,
                                     .changed = host_changed,
                                     .rescan = host_rescan,
                                     .find = host_find,
                                     .add_external = host_add_external,
                                     .remove_external = host_remove_external,
                                     .arg = d};
    uv_timer_init(&loop, &d->stop_timer);
    uv_timer_init(&loop, &d->resume_timer);
    d->tick.data = d->stop_timer.data = d->resume_timer.data = d;
    uv_timer_start(&d->resume_timer, on_resume_timer, RESUME_INTERVAL_MS, RESUME_INTERVAL_MS);
    uv_signal_init(&loop, &d->sig_term);
    uv_signal_init(&loop, &d->sig_int);
    uv_signal_init(&loop, &d->sig_hup);
    d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
    uv_signal_start(&d->sig_term, on_signal, SIGTERM);
    uv_signal_start(&d->sig_int, on_signal, SIGINT);
    uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
    if ((rc = vg__reloader_start(d, &d->reloader)))
        vg_log(VG_LOG_WARN, "reload",
               "cannot watch the configuration directories (%s); SIGHUP "
               "still reloads",
               vg_strerror(rc));
    if ((rc = vg_runtimes_start(&d->rt_host, &d->gen->cfg->settings, err, sizeof(err)))) {
        vg_log(VG_LOG_ERROR, "runtime", "%s", err[0] ? err : vg_strerror(rc));
        begin_stop(d, "startup failure");
        d->exit_status = 1;
    } else if ((d->runtimes_started = true), (rc = vg__api_start(d, &d->api))) {
        vg_log(VG_LOG_ERROR, "api", "cannot start the HTTP API: %s", vg_strerror(rc));
        begin_stop(d, "startup failure");
        d->exit_status = 1;
    } else {
        d->exit_status = 0;
    }
    uv_timer_start(&d->tick, on_tick, 0, d->poll_ms);
    vg_log(VG_LOG_INFO, "daemon",
           "vigil %s running: %zu rule%s, state %s/vigil.db, poll every %" PRIu64 " ms", VG_VERSION,
           d->gen->rules->n_rules, d->gen->rules->n_rules == 1 ? "" : "s", d->state_dir,
           d->poll_ms);

    uv_run(&loop, UV_RUN_DEFAULT);
    if (d->runs_active) {
        /* Shutdown timeout: leave running workers behind; the process exits now. */
        vg_state_close(d->state);
        fflush(NULL);
        _exit(d->exit_status);
    }
    uv_run(&loop, UV_RUN_DEFAULT); /* let close callbacks run */
out:
    if (errors) {
        fprintf(stderr, "%s\n", errors);
        free(errors);
    }
    if (d->procs) {
        for (struct vg_proc *p = vg_proc_table_next(d->procs, NULL); p;
             p = vg_proc_table_next(d->procs, p))
            if (p->user)
                drop_watched(d, p->user, false);
    }
    vg_proc_table_destroy(d->procs);
    vg_sampler_destroy(d->sampler);
    vg__gen_unref(d->gen);
    vg_state_close(d->state);
    free(d->reload_error);
    free(d->state_dir);
    vg_source_cache_destroy(d->source_cache);
    if (uv_loop_close(&loop) != 0)
        vg_log(VG_LOG_WARN, "daemon", "event loop closed with handles still open");
    return d->exit_status;
}
