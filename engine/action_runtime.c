/* The bridge from a rule's action list to runtime adapters: every action type the engine does
 * not run itself (CollectDump, CollectGCDump, CollectTrace, ...) is started on the process's
 * runtime adapter (engine/runtimes/), its artifact going to the action's egress provider and its
 * progress listed under /operations. */
#include "engine/engine_int.h"

#include "config/error.h"
#include "config/util.h"

#include <stdlib.h>

struct bridge {
    struct vg_run *run;
    size_t idx;
};

static void finished(struct vg_egress_job *ej, int rc, const char *error, char **names,
                     char **values, size_t n)
{
    struct bridge *b = ej->ctx;
    vg__op_end(ej->op, rc, rc == 0 ? ej->location : NULL, error);
    vg__run_action_done(b->run, b->idx, rc, error, names, values, n);
    free(b);
    vg__egress_job_free(ej);
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
    rc = vg__egress_job_init(ej, run->d->loop, &run->target, a->type->name, a->settings,
                             run->gen->egress, a->egress, name);
    free(name);
    if (rc)
        goto fail;
    b->run = run;
    b->idx = idx;
    ej->ctx = b;
    ej->finished = finished;
    ej->job.action = a;
    ej->job.runtimes = &run->gen->cfg->settings.runtimes;
    ej->op = vg__op_begin(run->d, run, a->egress);
    rc = vg__egress_job_start(ej);
    if (rc) {
        vg__op_end(ej->op, rc, NULL, "the action could not start");
        goto fail;
    }
    vg__op_set_job(ej->op, &ej->job);
    return 0;
fail:
    free(b);
    vg__egress_job_free(ej);
    return rc;
}

const struct vg_action_runner vg__runner_runtime = {NULL, runtime_start};
