/* Generations: one loaded configuration (config tree, compiled rules, egress), referenced by
 * everything that still reads it, so a reload never frees what a running action uses; and what
 * this vigil can run of each rule. */
#include "engine/engine_int.h"

#include "config/defaults.h"
#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "egress/egress.h"

#include <stdlib.h>
#include <string.h>

void vg__gen_ref(struct vg_gen *g)
{
    g->refs++;
}

void vg__gen_unref(struct vg_gen *g)
{
    if (!g || --g->refs > 0)
        return;
    for (size_t i = 0; g->unsupported && g->rules && i < g->rules->n_rules; i++)
        free(g->unsupported[i]);
    free(g->unsupported);
    vg_egress_destroy(g->egress);
    vg_ruleset_destroy(g->rules);
    vg_config_destroy(g->cfg);
    free(g);
}

static char *diags_text(struct vg_diags *d)
{
    struct vg_buf b;
    vg_buf_init(&b);
    vg_diags_sort(d);
    for (size_t i = 0; i < d->n; i++) {
        char *line = vg_diag_format(&d->v[i]);
        if (line)
            vg_buf_printf(&b, "%s%s", b.len ? "\n" : "", line);
        free(line);
    }
    return vg_buf_steal(&b);
}

char *vg__rule_unsupported(const struct vg_rule *r)
{
    const struct vg_trigger_type *tt = r->trigger.type;
    const char *want = r->runtime; /* vg_trigger_runtime(): the type's, or its metric's */
    if (tt && want) {
        const struct vg_runtime_type *rt = vg_runtime_find(want);
        if (!rt || !rt->session_open || !tt->observe)
            return vg_asprintf("not supported yet: trigger %s needs samples from the %s runtime "
                               "(%s), which this vigil cannot read yet",
                               tt->name, rt ? rt->display : want,
                               rt && !strcmp(rt->name, "dotnet") ? "EventPipe" : "its adapter");
    }
    for (size_t i = 0; i < r->n_actions; i++) {
        const struct vg_rule_action *a = &r->actions[i];
        if (!vg__action_known(a->type->name))
            return vg_asprintf("not supported yet: action %s%s%s%s cannot run in this vigil: no "
                               "runtime adapter implements it",
                               a->name ? a->name : a->type->name, a->name ? " (" : "",
                               a->name ? a->type->name : "", a->name ? ")" : "");
    }
    return NULL;
}

char *vg__rule_unsupported_for(const struct vg_rule *r, const struct vg_proc *p)
{
    const struct vg_runtime_type *rt = p->runtime ? p->runtime : &vg_runtime_native;
    for (size_t i = 0; i < r->n_actions; i++) {
        const struct vg_rule_action *a = &r->actions[i];
        if (vg__action_runner_for(rt, a->type->name))
            continue;
        struct vg_buf b;
        vg_buf_init(&b);
        for (size_t k = 0; vg_runtime_types[k]; k++)
            for (size_t j = 0; vg_runtime_types[k]->actions && vg_runtime_types[k]->actions[j]; j++)
                if (!strcasecmp(vg_runtime_types[k]->actions[j]->type, a->type->name))
                    vg_buf_printf(&b, "%s%s", b.len ? ", " : "", vg_runtime_types[k]->display);
        char *why = vg_asprintf("action %s%s%s%s cannot run on this process: it is %s, and %s "
                                "is implemented for %s only",
                                a->name ? a->name : a->type->name, a->name ? " (" : "",
                                a->name ? a->type->name : "", a->name ? ")" : "", rt->display,
                                a->type->name, b.data ? b.data : "no runtime");
        vg_buf_free(&b);
        return why;
    }
    return NULL;
}

bool vg__rule_applies(const struct vg_rule *r, const struct vg_proc *p)
{
    const char *want = r->runtime;
    if (!want)
        return true;
    return p->runtime && strcmp(p->runtime->name, want) == 0;
}

int vg__gen_build(struct vg_daemon *d, struct vg_gen **out, char **errors)
{
    struct vg_diags diags;
    vg_diags_init(&diags);
    *out = NULL;
    *errors = NULL;
    struct vg_gen *g = calloc(1, sizeof(*g));
    int rc = VG_ENOMEM;
    if (!g)
        goto out;
    g->refs = 1;
    g->loaded_ms = vg_wall_ms();
    static const char *const def[] = {VG_DEFAULT_CONFIG_DIR};
    const char *const *dirs = d->opts->n_config_dirs ? d->opts->config_dirs : def;
    size_t ndirs = d->opts->n_config_dirs ? d->opts->n_config_dirs : 1;
    rc = vg_config_load(dirs, ndirs, &diags, &g->cfg);
    if (rc == 0)
        rc = vg_ruleset_compile(g->cfg, &diags, &g->rules);
    for (size_t i = 0; i < diags.n; i++) {
        char *line = vg_diag_format(&diags.v[i]);
        vg_log(diags.v[i].severity == VG_SEV_ERROR ? VG_LOG_ERROR : VG_LOG_WARN, "config", "%s",
               line ? line : "?");
        free(line);
    }
    if (rc) {
        *errors = diags.errors ? diags_text(&diags) : vg_strdup(vg_strerror(rc));
        goto out;
    }
    /* before anything that may fail: vg__gen_unref walks it for every rule */
    g->unsupported = calloc(g->rules->n_rules ? g->rules->n_rules : 1, sizeof(char *));
    if (!g->unsupported) {
        rc = VG_ENOMEM;
        goto out;
    }
    struct vg_storage_settings storage = g->cfg->settings.storage;
    storage.state_dir = d->state_dir;
    char err[512] = "";
    rc = vg_egress_create(g->cfg->settings.egress, g->cfg->settings.n_egress, &storage, &g->egress,
                          err, sizeof(err));
    if (rc) {
        *errors = vg_asprintf("egress: %s", err[0] ? err : vg_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < g->rules->n_rules; i++) {
        g->unsupported[i] = vg__rule_unsupported(&g->rules->rules[i]);
        if (g->unsupported[i])
            vg_log(VG_LOG_ERROR, "rules", "%s: %s", g->rules->rules[i].path, g->unsupported[i]);
    }
    *out = g;
    g = NULL;
out:
    vg_diags_free(&diags);
    if (g) {
        g->refs = 1;
        vg__gen_unref(g);
    }
    return rc;
}
