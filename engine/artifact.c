/* An action's artifact in an egress provider: the vg_rt_job_ops that rule actions,
 * /dump?egressProvider= and `vigil dump --egress` share, so every artifact gets the same naming
 * (the adapter's dotnet-monitor-style name unless ArtifactName says otherwise), the same metadata
 * and the same cancellation. */
#include "engine/engine_int.h"

#include "config/error.h"
#include "config/util.h"
#include "egress/egress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct vg_egress_job *ej_of(struct vg_rt_job *j)
{
    return (struct vg_egress_job *)(void *)j; /* job is the first member */
}

/* dotnet-monitor's artifact type names (its egress metadata and log scopes). */
static const char *artifact_type(const char *action)
{
    static const struct {
        const char *action, *type;
    } map[] = {{"CollectDump", "dump"},
               {"CollectGCDump", "gcdump"},
               {"CollectTrace", "trace"},
               {"CollectLogs", "logs"},
               {"CollectStacks", "stacks"},
               {"CollectLiveMetrics", "livemetrics"},
               {"CollectExceptions", "exceptions"}};
    for (size_t i = 0; i < VG_ARRAY_SIZE(map); i++)
        if (strcasecmp(map[i].action, action) == 0)
            return map[i].type;
    return "artifact";
}

static int ej_open(struct vg_rt_job *j, const char *default_name, const char *content_type)
{
    struct vg_egress_job *ej = ej_of(j);
    if (ej->artifact)
        return VG_ESTATE;
    char pid[24];
    snprintf(pid, sizeof(pid), "%d", j->target.pid);
    const struct vg_kv meta[] = {{"vigil_artifact", artifact_type(j->type)},
                                 {"vigil_pid", pid},
                                 {"vigil_runtime", j->target.runtime->name}};
    int rc = vg_artifact_open(ej->egress, ej->provider, ej->name ? ej->name : default_name,
                              content_type, meta, VG_ARRAY_SIZE(meta), &ej->artifact);
    if (rc == 0)
        vg__op_attach(ej->op, ej->artifact);
    return rc;
}

static int ej_write(struct vg_rt_job *j, const void *buf, size_t len)
{
    struct vg_egress_job *ej = ej_of(j);
    if (atomic_load(&j->cancelled) || vg__op_cancelled(ej->op))
        return VG_ECANCELED;
    int rc = ej->artifact ? vg_artifact_write(ej->artifact, buf, len) : VG_ESTATE;
    if (rc && !ej->write_rc) {
        ej->write_rc = rc;
        if (ej->artifact)
            snprintf(ej->err, sizeof(ej->err), "%s", vg_artifact_error(ej->artifact));
    }
    return rc;
}

static int ej_commit(struct vg_rt_job *j)
{
    struct vg_egress_job *ej = ej_of(j);
    char err[512] = "";
    if (!ej->artifact)
        return VG_ESTATE;
    if (ej->write_rc)
        return ej->write_rc;
    if (atomic_load(&j->cancelled) || vg__op_cancelled(ej->op)) {
        vg_artifact_abort(ej->artifact);
        ej->artifact = NULL;
        return VG_ECANCELED;
    }
    int rc = vg_artifact_commit(ej->artifact, &ej->location, err, sizeof(err));
    ej->artifact = NULL; /* commit consumed it, whatever the outcome */
    if (rc && !ej->write_rc) {
        ej->write_rc = rc;
        snprintf(ej->err, sizeof(ej->err), "%s", err);
    }
    return rc;
}

static void ej_abort(struct vg_rt_job *j)
{
    struct vg_egress_job *ej = ej_of(j);
    if (ej->artifact)
        vg_artifact_abort(ej->artifact);
    ej->artifact = NULL;
}

static void ej_done(struct vg_rt_job *j, int rc, const char *error, char **names, char **values,
                    size_t n)
{
    struct vg_egress_job *ej = ej_of(j);
    if (ej->artifact) { /* the adapter ended without commit or abort */
        vg_artifact_abort(ej->artifact);
        ej->artifact = NULL;
        if (rc == 0)
            rc = VG_ESTATE;
    }
    if (rc == 0 && ej->location) {
        /* EgressPath first: $(Actions.X.EgressPath) as dotnet-monitor names it */
        char **nn = realloc(names, (n + 1) * sizeof(*nn));
        char **nv = nn ? realloc(values, (n + 1) * sizeof(*nv)) : NULL;
        if (nn)
            names = nn;
        if (nv) {
            values = nv;
            memmove(names + 1, names, n * sizeof(*names));
            memmove(values + 1, values, n * sizeof(*values));
            names[0] = vg_strdup("EgressPath");
            values[0] = vg_strdup(ej->location);
            n++;
        }
    }
    /* VG_ERETRY stays: a cancelled upload whose undoing must be retried is not Cancelled yet */
    if (rc && rc != VG_ERETRY && (atomic_load(&j->cancelled) || vg__op_cancelled(ej->op)))
        rc = VG_ECANCELED;
    else if (rc && rc == ej->write_rc && ej->err[0])
        error = ej->err; /* the egress says best what went wrong there */
    ej->finished(ej, rc, rc && !error ? vg_strerror(rc) : error, names, values, n);
}

static const struct vg_rt_job_ops egress_ops = {
    .open = ej_open,
    .write = ej_write,
    .commit = ej_commit,
    .abort = ej_abort,
    .file_path = NULL,
    .done = ej_done,
};

int vg__egress_job_init(struct vg_egress_job *ej, uv_loop_t *loop, const struct vg_rt_target *t,
                        const char *type, const void *settings, struct vg_egress *egress,
                        const char *provider, const char *name)
{
    struct vg_rt_job *j = &ej->job;
    j->loop = loop;
    j->type = type;
    j->settings = settings;
    j->ops = &egress_ops;
    j->caller = ej;
    atomic_init(&j->cancelled, false);
    atomic_init(&j->stopping, false);
    ej->egress = egress;
    /* actions without an artifact (Get/SetEnvironmentVariable) have no provider */
    ej->provider = provider ? vg_strdup(provider) : NULL;
    ej->name = name ? vg_strdup(name) : NULL;
    if (vg_rt_target_copy(&j->target, t) != 0 || (provider && !ej->provider) || (name && !ej->name))
        return VG_ENOMEM;
    return 0;
}

int vg__egress_job_start(struct vg_egress_job *ej)
{
    struct vg_rt_job *j = &ej->job;
    j->runner = vg_runtime_action(j->target.runtime, j->type);
    if (!j->runner)
        return VG_EUNSUPPORTED;
    return j->runner->start(j);
}

void vg__egress_job_free(struct vg_egress_job *ej)
{
    if (!ej)
        return;
    if (ej->artifact)
        vg_artifact_abort(ej->artifact);
    vg_rt_target_free(&ej->job.target);
    free(ej->provider);
    free(ej->name);
    free(ej->location);
    free(ej);
}
