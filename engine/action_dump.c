/* CollectDump {Type, Egress, ArtifactName}: vigil's own ELF core writer streams the dump into
 * an egress artifact on a worker thread; output EgressPath. */
#include "engine/engine_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "egress/egress.h"
#include "engine/dump/dump.h"
#include "rules/action.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* rules/ validates the Type names; the writer has its own enum in the same order */
_Static_assert((int)VG_ACT_DUMP_WITH_HEAP == (int)VG_DUMP_WITH_HEAP &&
                   (int)VG_ACT_DUMP_FULL == (int)VG_DUMP_FULL &&
                   (int)VG_ACT_DUMP_MINI == (int)VG_DUMP_MINI &&
                   (int)VG_ACT_DUMP_TRIAGE == (int)VG_DUMP_TRIAGE,
               "dump type enums must agree");

struct dump_job {
    uv_work_t work;
    struct vg_run *run;
    size_t idx;
    struct vg_egress *egress;
    char *provider;
    char *name;
    enum vg_dump_type type;
    int pid;
    struct vg_op *op; /* listed under /operations; NULL without the API */
    /* results (worker) */
    int rc;
    char err[512];
    char *path;
    struct vg_dump_result res;
};

struct sink_ctx {
    struct vg_artifact *a;
    struct vg_op *op;
};

static int sink(void *ctx, const void *buf, size_t len)
{
    struct sink_ctx *s = ctx;
    if (vg__op_cancelled(s->op))
        return VG_ECANCELED;
    return vg_artifact_write(s->a, buf, len);
}

static void dump_work(uv_work_t *w)
{
    struct dump_job *job = w->data;
    struct vg_artifact *a = NULL;
    static const struct vg_kv meta[] = {{"vigil_artifact", "dump"}};
    job->rc = vg_artifact_open(job->egress, job->provider, job->name, "application/x-coredump",
                               meta, 1, &a);
    if (job->rc) {
        snprintf(job->err, sizeof(job->err), "cannot open artifact %s: %s", job->name,
                 vg_strerror(job->rc));
        return;
    }
    vg__op_attach(job->op, a);
    struct sink_ctx sc = {a, job->op};
    job->rc =
        vg_coredump_write(job->pid, job->type, sink, &sc, &job->res, job->err, sizeof(job->err));
    if (job->rc) {
        if (job->rc == VG_EQUOTA || job->rc == VG_EKEEPFREE || !job->err[0])
            snprintf(job->err, sizeof(job->err), "%s",
                     vg_artifact_error(a)[0] ? vg_artifact_error(a) : vg_strerror(job->rc));
        vg_artifact_abort(a);
        return;
    }
    job->rc = vg_artifact_commit(a, &job->path, job->err, sizeof(job->err));
}

static void dump_after(uv_work_t *w, int status)
{
    struct dump_job *job = w->data;
    struct vg_run *run = job->run;
    size_t idx = job->idx;
    char **names = NULL, **values = NULL;
    size_t n = 0;
    if (job->rc == 0 && status == 0) {
        names = calloc(1, sizeof(char *));
        values = calloc(1, sizeof(char *));
        if (names && values) {
            names[0] = vg_strdup("EgressPath");
            values[0] = job->path;
            job->path = NULL;
            n = 1;
        }
        vg_log(VG_LOG_INFO, "action",
               "CollectDump: pid %d, %llu bytes, %u threads, target frozen %llu ms", job->pid,
               (unsigned long long)job->res.bytes, job->res.threads,
               (unsigned long long)(job->res.freeze_us / 1000));
    }
    int rc = status ? VG_ECANCELED : job->rc;
    const char *err = job->err[0] ? job->err : vg_strerror(rc);
    vg__op_end(job->op, rc, n ? values[0] : NULL, rc ? err : NULL);
    vg__run_action_done(run, idx, rc, rc ? err : NULL, names, values, n);
    free(job->path);
    free(job->provider);
    free(job->name);
    free(job);
}

static int dump_start(struct vg_run *run, size_t idx)
{
    const struct vg_rule_action *a = &run->rule->actions[idx];
    const struct vg_act_collect_dump *set = a->settings;
    struct dump_job *job = calloc(1, sizeof(*job));
    if (!job)
        return VG_ENOMEM;
    job->run = run;
    job->idx = idx;
    job->egress = run->gen->egress;
    job->type = (enum vg_dump_type)set->type;
    job->pid = run->pid;
    job->provider = vg_strdup(a->egress);
    char *err = NULL;
    if (set->artifact_name) {
        job->name = vg__run_expand(run, set->artifact_name, &err);
    } else {
        char when[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
        /* only characters every provider accepts in a name */
        char safe[64];
        size_t k = 0;
        for (const char *c = run->proc_name; *c && k + 1 < sizeof(safe); c++)
            safe[k++] = (strchr("-_.", *c) || (*c >= '0' && *c <= '9') ||
                         ((*c | 32) >= 'a' && (*c | 32) <= 'z'))
                            ? *c
                            : '_';
        safe[k] = '\0';
        job->name = vg_asprintf("core_%s_%d_%s", safe, run->pid, when);
    }
    if (!job->name || !job->provider) {
        free(job->provider);
        free(job->name);
        free(job);
        if (err) {
            vg__run_action_done(run, idx, VG_EINVAL, err, NULL, NULL, 0);
            free(err);
            return 0;
        }
        return VG_ENOMEM;
    }
    job->work.data = job;
    job->op = vg__op_begin(run->d, run, job->provider);
    int rc = uv_queue_work(run->d->loop, &job->work, dump_work, dump_after);
    if (rc) {
        vg__op_end(job->op, VG_EIO, NULL, "cannot start the dump worker");
        free(job->provider);
        free(job->name);
        free(job);
        return VG_EIO;
    }
    return 0;
}

const struct vg_action_runner vg__runner_collect_dump = {"CollectDump", dump_start};
