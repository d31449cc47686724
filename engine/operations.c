/* Operations: every artifact collection that goes to an egress provider (a rule's action,
 * /dump?egressProvider=), listed under /operations with dotnet-monitor's shapes, cancellable with
 * DELETE; and the /dump route, which starts one (or streams the dump back when no egress is
 * named). */
#include "engine/api_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "egress/egress.h"
#include "engine/dump/dump.h"
#include "rules/action.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define MAX_OPERATIONS_KEPT 100

enum op_status { OP_RUNNING = 0, OP_SUCCEEDED, OP_FAILED, OP_CANCELLED };
static const char *const op_status_names[] = {"Running", "Succeeded", "Failed", "Cancelled"};

struct vg_op {
    struct vg_api *api;
    char id[40];
    enum op_status status;
    uint64_t created_ms;
    int pid;
    char uid[40];
    char *proc_name;
    char *rule; /* set for operations a rule started */
    char *egress;
    char *location;
    char *error;
    atomic_bool cancel;
    struct vg_rt_job *job; /* the running job, told to stop on DELETE; NULL once ended */
    struct vg_op *next;
};

static void op_free(struct vg_op *op)
{
    free(op->rule);
    free(op->proc_name);
    free(op->egress);
    free(op->location);
    free(op->error);
    free(op);
}

void vg__ops_free_all(struct vg_api *api)
{
    while (api->ops) {
        struct vg_op *n = api->ops->next;
        op_free(api->ops);
        api->ops = n;
    }
}

static json_t *op_json(const struct vg_op *op)
{
    json_t *o = json_pack("{s:s, s:s, s:o, s:s?, s:s?, s:o}", "operationId", op->id, "status",
                          op_status_names[op->status], "createdDateTime",
                          vg__json_time(op->created_ms), "resourceLocation", op->location,
                          "egressProviderName", op->egress, "error", vg__json_str(op->error));
    json_object_set_new(o, "process",
                        json_pack("{s:i, s:s, s:o}", "pid", op->pid, "uid", op->uid, "name",
                                  vg__json_str(op->proc_name)));
    json_object_set_new(o, "isStoppable", json_false());
    if (op->rule)
        json_object_set_new(o, "collectionRule", json_string(op->rule));
    return o;
}

static void op_prune(struct vg_api *api)
{
    size_t n = 0;
    for (struct vg_op **pp = &api->ops; *pp;) {
        struct vg_op *op = *pp;
        if (++n > MAX_OPERATIONS_KEPT && op->status != OP_RUNNING) {
            *pp = op->next;
            op_free(op);
        } else {
            pp = &op->next;
        }
    }
}

void vg__uuid(char out[37])
{
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        /* no entropy source answered: clock and a counter (still unique in this process) */
        static unsigned seq;
        uint64_t a = uv_hrtime() ^ ((uint64_t)++seq << 40), b = vg_wall_ms();
        memcpy(r, &a, 8);
        memcpy(r + 8, &b, 8);
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

static struct vg_op *op_new(struct vg_api *api, int pid, const char *uid, const char *proc_name,
                            const char *rule, const char *egress)
{
    struct vg_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->api = api;
    op->created_ms = vg_wall_ms();
    op->pid = pid;
    snprintf(op->uid, sizeof(op->uid), "%s", uid);
    vg__uuid(op->id);
    op->proc_name = vg_strdup(proc_name);
    op->rule = rule ? vg_strdup(rule) : NULL;
    op->egress = vg_strdup(egress);
    if (!op->proc_name || (rule && !op->rule) || !op->egress) {
        op_free(op);
        return NULL;
    }
    op->next = api->ops;
    api->ops = op;
    return op;
}

struct vg_op *vg__op_begin(struct vg_daemon *d, const struct vg_run *run, const char *egress)
{
    if (!d->api)
        return NULL;
    char uid[40] = "";
    struct vg_proc *p = vg_proc_table_find(d->procs, run->target.pid);
    if (p && p->start_ticks == run->target.start_ticks)
        vg__proc_uid(p, uid);
    return op_new(d->api, run->target.pid, uid, run->target.name, run->rule->name, egress);
}

void vg__op_set_job(struct vg_op *op, struct vg_rt_job *job)
{
    if (op)
        op->job = job;
}

bool vg__op_cancelled(struct vg_op *op)
{
    return op && atomic_load(&op->cancel);
}

void vg__op_end(struct vg_op *op, int rc, const char *location, const char *error)
{
    if (!op)
        return;
    op->job = NULL;
    if (rc == VG_ECANCELED || atomic_load(&op->cancel)) {
        op->status = OP_CANCELLED;
    } else if (rc) {
        op->status = OP_FAILED;
        op->error = vg_strdup(error ? error : vg_strerror(rc));
    } else {
        op->status = OP_SUCCEEDED;
        op->location = vg_strdup(location);
    }
    op_prune(op->api);
}

/* ---- /dump ---- */

struct api_dump {
    struct vg_api *api;
    struct vg_gen *gen; /* referenced: the egress it writes to */
    struct vg_act_collect_dump settings;
    struct vg_op *op;         /* with an egress provider */
    struct vg_egress_job *ej; /* with an egress provider */
    struct vg_rt_job job;     /* streamed back to the client */
    struct vg_http_stream *stream;
};

static void dump_end(struct api_dump *ad, int rc, const char *error)
{
    struct vg_api *api = ad->api;
    api->dumps_running--;
    api->d->runs_active--;
    if (ad->op)
        vg_log(rc ? VG_LOG_WARN : VG_LOG_INFO, "api", "dump operation %s for pid %d: %s%s%s",
               ad->op->id, ad->op->pid,
               rc ? (rc == VG_ECANCELED ? "Cancelled" : "Failed") : "Succeeded", rc ? ": " : "",
               rc ? error : "");
    vg__gen_unref(ad->gen);
    free(ad);
}

static void egress_finished(struct vg_egress_job *ej, int rc, const char *error, char **names,
                            char **values, size_t n)
{
    struct api_dump *ad = ej->ctx;
    vg__op_end(ad->op, rc, rc == 0 ? ej->location : NULL, error);
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
        free(values[i]);
    }
    free(names);
    free(values);
    op_prune(ad->api);
    dump_end(ad, rc, error);
    vg__egress_job_free(ej);
}

/* Streamed to the HTTP client: the dump is the response body. */
static struct api_dump *ad_of(struct vg_rt_job *j)
{
    return j->caller;
}

static int stream_open(struct vg_rt_job *j, const char *default_name, const char *content_type)
{
    return 0; /* the response headers went out when the dump started */
}

static int stream_write(struct vg_rt_job *j, const void *buf, size_t len)
{
    if (atomic_load(&j->cancelled))
        return VG_ECANCELED;
    return vg_http_stream_write(ad_of(j)->stream, buf, len);
}

static int stream_commit(struct vg_rt_job *j)
{
    return 0;
}

static void stream_abort(struct vg_rt_job *j)
{
}

static void stream_done(struct vg_rt_job *j, int rc, const char *error, char **names, char **values,
                        size_t n)
{
    struct api_dump *ad = ad_of(j);
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
        free(values[i]);
    }
    free(names);
    free(values);
    vg_http_stream_end(ad->stream, rc);
    if (rc)
        vg_log(VG_LOG_WARN, "api", "streamed dump of pid %d failed: %s", j->target.pid,
               error ? error : vg_strerror(rc));
    vg_rt_target_free(&j->target);
    dump_end(ad, rc, error);
}

static const struct vg_rt_job_ops stream_ops = {
    .open = stream_open,
    .write = stream_write,
    .commit = stream_commit,
    .abort = stream_abort,
    .done = stream_done,
};

VG__HANDLER(dump)
{
    struct vg_api *api = ud;
    struct vg_daemon *d = api->d;
    if (d->stopping) {
        vg_http_res_problem(res, 503, VG_ECANCELED, "vigil is shutting down");
        return;
    }
    struct vg_proc *p = vg__api_select_process(api, req, res);
    if (!p)
        return;
    const char *type = vg_http_req_query(req, "type");
    const char *egress = vg_http_req_query(req, "egressProvider");
    enum vg_dump_type t = VG_DUMP_WITH_HEAP;
    if (type && vg_dump_type_parse(type, &t) != 0) {
        vg_http_res_problem(res, 400, VG_EINVAL,
                            "type must be Full, WithHeap, Mini or Triage, got \"%s\"", type);
        return;
    }
    if (egress && !vg_config_egress(d->gen->cfg, egress)) {
        vg_http_res_problem(res, 400, VG_ENOTFOUND, "no egress provider named \"%s\"", egress);
        return;
    }
    if (api->dumps_running >= api->max_dumps) {
        vg_http_res_header(res, "Retry-After", "5");
        vg_http_res_problem(res, 429, VG_ELIMIT,
                            "%u dump%s already running (Server.MaxConcurrentDumps)",
                            api->dumps_running, api->dumps_running == 1 ? " is" : "s are");
        return;
    }
    struct api_dump *ad = calloc(1, sizeof(*ad));
    struct vg_rt_target target;
    if (!ad || vg_rt_target_init(&target, p) != 0) {
        free(ad);
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return;
    }
    ad->api = api;
    ad->gen = d->gen;
    vg__gen_ref(ad->gen);
    ad->settings.type = (int)t;
    int rc;
    if (egress) {
        char uid[40];
        vg__proc_uid(p, uid);
        ad->ej = calloc(1, sizeof(*ad->ej));
        ad->op = op_new(api, p->pid, uid, p->name, NULL, egress);
        rc = !ad->ej || !ad->op ? VG_ENOMEM
                                : vg__egress_job_init(ad->ej, d->loop, &target, "CollectDump",
                                                      &ad->settings, d->gen->egress, egress, NULL);
        vg_rt_target_free(&target);
        if (rc == 0) {
            ad->ej->op = ad->op;
            ad->ej->ctx = ad;
            ad->ej->finished = egress_finished;
            rc = vg__egress_job_start(ad->ej);
        }
        if (rc) {
            vg__op_end(ad->op, rc, NULL, "the dump could not start");
            vg__egress_job_free(ad->ej);
            vg__gen_unref(ad->gen);
            free(ad);
            vg_http_res_error(res, rc, "cannot start the dump: %s", vg_strerror(rc));
            return;
        }
        vg__op_set_job(ad->op, &ad->ej->job);
        api->dumps_running++;
        d->runs_active++;
        char loc[64];
        snprintf(loc, sizeof(loc), "/operations/%s", ad->op->id);
        vg_http_res_header(res, "Location", loc);
        vg_http_res_json(res, 202, op_json(ad->op));
        return;
    }
    /* streamed back to the client; not listed under /operations */
    struct vg_rt_job *j = &ad->job;
    j->loop = d->loop;
    j->target = target;
    j->type = "CollectDump";
    j->settings = &ad->settings;
    j->ops = &stream_ops;
    j->caller = ad;
    atomic_init(&j->cancelled, false);
    j->runner = vg_runtime_action(target.runtime, "CollectDump");
    char name[96], disp[160], why[512] = "";
    /* what can be found out before the status line is answered as an error, not as a 200 with
     * a cut body */
    rc = j->runner && j->runner->check ? j->runner->check(&j->target, j->settings, why, sizeof(why))
                                       : 0;
    if (rc) {
        vg_http_res_problem(res, rc == VG_ESRCH ? 404 : rc == VG_EBUSY ? 409 : 403, rc, "%s", why);
        vg_rt_target_free(&j->target);
        vg__gen_unref(ad->gen);
        free(ad);
        return;
    }
    vg_rt_artifact_name(name, sizeof(name), "core_", p->pid, "");
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", name);
    vg_http_res_header(res, "Content-Disposition", disp);
    if (!j->runner || vg_http_res_stream(res, 200, "application/octet-stream", &ad->stream) != 0) {
        vg_rt_target_free(&j->target);
        vg__gen_unref(ad->gen);
        free(ad);
        return;
    }
    api->dumps_running++;
    d->runs_active++;
    rc = j->runner->start(j);
    if (rc) {
        vg_http_stream_end(ad->stream, rc);
        vg_rt_target_free(&j->target);
        dump_end(ad, rc, vg_strerror(rc));
    }
}

/* ---- /operations ---- */

static struct vg_op *find_op(struct vg_api *api, const char *id)
{
    for (struct vg_op *op = api->ops; op; op = op->next)
        if (op->egress && strcasecmp(op->id, id) == 0)
            return op;
    return NULL;
}

void vg__h_operations(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    json_t *arr = json_array();
    for (struct vg_op *op = api->ops; op; op = op->next)
        if (op->egress)
            json_array_append_new(arr, op_json(op));
    /* Uploads still waiting for their provider (a long egress outage, or left by an earlier
     * run): their operation may have ended, the artifact's journey has not. */
    struct vg_egress_upload_info *up = NULL;
    size_t n = 0;
    if (vg_egress_uploads(api->d->gen->egress, 100, &up, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(up[i].state, "pending") != 0 && strcmp(up[i].state, "uploading") != 0)
                continue;
            char id[40];
            snprintf(id, sizeof(id), "upload-%lld", (long long)up[i].id);
            json_t *o = json_pack(
                "{s:s, s:s, s:o, s:n, s:s, s:o, s:b}", "operationId", id, "status", "Running",
                "createdDateTime", vg__json_time(up[i].created_ms), "resourceLocation",
                "egressProviderName", up[i].provider, "error",
                up[i].last_error ? vg__json_str(up[i].last_error) : json_null(), "isStoppable", 0);
            json_object_set_new(
                o, "upload",
                json_pack("{s:o, s:s, s:I, s:I, s:i}", "artifactName", vg__json_str(up[i].name),
                          "state", up[i].state, "size", (json_int_t)up[i].size, "bytesDone",
                          (json_int_t)up[i].bytes_done, "retries", (int)up[i].retries));
            json_array_append_new(arr, o);
        }
        vg_egress_uploads_free(up, n);
    }
    vg_http_res_json(res, 200, arr);
}

void vg__h_operation(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct vg_op *op = find_op(api, vg_http_req_param(req, "id"));
    if (!op) {
        vg_http_res_problem(res, 404, VG_ENOTFOUND, "no operation %s",
                            vg_http_req_param(req, "id"));
        return;
    }
    vg_http_res_json(res, op->status == OP_SUCCEEDED ? 201 : 200, op_json(op));
}

void vg__h_operation_cancel(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct vg_op *op = find_op(api, vg_http_req_param(req, "id"));
    if (!op) {
        vg_http_res_problem(res, 404, VG_ENOTFOUND, "no operation %s",
                            vg_http_req_param(req, "id"));
        return;
    }
    if (op->status != OP_RUNNING) {
        vg_http_res_problem(res, 400, VG_ESTATE, "operation %s is already %s", op->id,
                            op_status_names[op->status]);
        return;
    }
    atomic_store(&op->cancel, true);
    if (op->job)
        vg_rt_job_cancel(op->job);
    vg_http_res_text(res, 200, "text/plain", "", 0);
}
