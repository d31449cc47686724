/* The bridge from a rule's action list to runtime adapters: every action type the engine does
 * not run itself (CollectDump, CollectGCDump, CollectTrace, ...) is started on the process's
 * runtime adapter (engine/runtimes/), its artifact going to the action's egress provider and its
 * progress listed under /operations. */
#include "engine/engine_int.h"

#include "config/error.h"
#include "config/util.h"

#include "rules/action.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct bridge {
    struct vg_run *run;
    size_t idx;
    void *settings; /* a copy with $(...) expanded in its strings, or NULL */
    char **owned;   /* the expanded strings */
    size_t n_owned;
};

static void bridge_free(struct bridge *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_owned; i++)
        free(b->owned[i]);
    free(b->owned);
    free(b->settings);
    free(b);
}

/* dotnet-monitor substitutes $(Process.*) and $(Actions.NAME.OUTPUT) in every string setting of
 * an action when it starts: the adapter gets a copy of the settings with them expanded. */
static int expand_settings(struct vg_run *run, const struct vg_rule_action *a, struct bridge *b,
                           char **err)
{
    const struct vg_action_type *t = a->type;
    *err = NULL;
    if (!a->settings || !t->settings_size)
        return 0;
    for (size_t i = 0; i < t->n_fields; i++) {
        const struct vg_field *f = &t->fields[i];
        if (f->type != VG_FIELD_STRING || !strcasecmp(f->name, "Egress"))
            continue;
        const char *v = *(const char *const *)((const char *)a->settings + f->offset);
        if (!v || !strstr(v, "$("))
            continue;
        if (!b->settings) {
            if (!(b->settings = malloc(t->settings_size)))
                return VG_ENOMEM;
            memcpy(b->settings, a->settings, t->settings_size);
            if (!(b->owned = calloc(t->n_fields, sizeof(char *))))
                return VG_ENOMEM;
        }
        char *x = vg__run_expand(run, v, err);
        if (!x)
            return VG_EINVAL;
        b->owned[b->n_owned++] = x;
        *(const char **)((char *)b->settings + f->offset) = x;
    }
    return 0;
}

static void finished(struct vg_egress_job *ej, int rc, const char *error, char **names,
                     char **values, size_t n)
{
    struct bridge *b = ej->ctx;
    vg__op_end(ej->op, rc, rc == 0 ? ej->location : NULL, error);
    vg__run_action_done(b->run, b->idx, rc, error, names, values, n);
    vg__egress_job_free(ej);
    bridge_free(b);
}

static int runtime_start(struct vg_run *run, size_t idx)
{
    const struct vg_rule_action *a = &run->rule->actions[idx];
    struct vg_egress_job *ej = calloc(1, sizeof(*ej));
    struct bridge *b = calloc(1, sizeof(*b));
    char *name = NULL, *err = NULL;
    int rc = VG_ENOMEM;
    if (!ej || !b)
        goto fail;
    if (a->artifact_name && !(name = vg__run_expand(run, a->artifact_name, &err))) {
        /* a bad $(...) in ArtifactName fails the action with its reason */
        free(b);
        free(ej);
        vg__run_action_done(run, idx, VG_EINVAL, err ? err : vg_strerror(VG_ENOMEM), NULL, NULL, 0);
        free(err);
        return 0;
    }
    if ((rc = expand_settings(run, a, b, &err)) != 0) {
        free(name);
        bridge_free(b);
        free(ej);
        vg__run_action_done(run, idx, rc, err ? err : vg_strerror(rc), NULL, NULL, 0);
        free(err);
        return 0;
    }
    rc = vg__egress_job_init(ej, run->d->loop, &run->target, a->type->name,
                             b->settings ? b->settings : a->settings, run->gen->egress, a->egress,
                             name);
    free(name);
    if (rc)
        goto fail;
    b->run = run;
    b->idx = idx;
    ej->ctx = b;
    ej->finished = finished;
    ej->job.action = a;
    ej->op = vg__op_begin(run->d, run, a->egress);
    rc = vg__egress_job_start(ej);
    if (rc) {
        vg__op_end(ej->op, rc, NULL, "the action could not start");
        goto fail;
    }
    vg__op_set_job(ej->op, &ej->job);
    return 0;
fail:
    bridge_free(b);
    vg__egress_job_free(ej);
    return rc;
}

const struct vg_action_runner vg__runner_runtime = {NULL, runtime_start};
