/* Operations: every artifact collection that goes to an egress provider (a rule's action,
 * /dump?egressProvider=, /gcdump, /trace, /stacks), listed under /operations with dotnet-monitor's
 * shapes, cancellable with DELETE, and those of a stoppable runner (a .NET trace, logs, live
 * metrics) stoppable with DELETE ?stop=true, keeping what they collected (also at shutdown);
 * and what the artifact routes share (vg__artifact_collect: an
 * operation, or the artifact streamed back when no egress is named), with the /dump route. */
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

/* dotnet-monitor's OperationState (vigil has no Starting: an operation runs once answered) */
enum op_status { OP_RUNNING = 0, OP_SUCCEEDED, OP_FAILED, OP_CANCELLED, OP_STOPPING };
static const char *const op_status_names[] = {"Running", "Succeeded", "Failed", "Cancelled",
                                              "Stopping"};

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
    int rc;      /* the failure's VG_E* code: OperationError.code */
    char **tags; /* dotnet-monitor's tags (a set): /dump?tags=a,b */
    size_t n_tags;
    json_t *outputs; /* the runner's outputs besides EgressPath (a dump's Mode, ...) or NULL */
    atomic_bool cancel;
    struct vg_rt_job *job;     /* the running job, told to stop on DELETE; NULL once ended */
    _Atomic int64_t upload_id; /* its artifact's upload (vg__op_attach), 0 before */
    bool pending;              /* ended with its upload pending: follows it (op_sync) */
    struct vg_op *next;
};

/* Not ended yet: running, or stopping at the user's request. */
static bool op_active(const struct vg_op *op)
{
    return op->status == OP_RUNNING || op->status == OP_STOPPING;
}

/* dotnet-monitor's isStoppable: a running collection whose runner can end it early and keep
 * what it has (not once asked to stop, nor once only its upload is left). */
static bool op_stoppable(const struct vg_op *op)
{
    return op->status == OP_RUNNING && !op->pending && op->job && op->job->runner &&
           op->job->runner->stoppable;
}

static void op_free(struct vg_op *op)
{
    for (size_t i = 0; i < op->n_tags; i++)
        free(op->tags[i]);
    free(op->tags);
    free(op->rule);
    free(op->proc_name);
    free(op->egress);
    free(op->location);
    free(op->error);
    json_decref(op->outputs);
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

/* dotnet-monitor's OperationStatus, or OperationSummary (what /operations lists: without
 * resourceLocation and error) when !full. */
static json_t *op_json_as(const struct vg_op *op, bool full)
{
    json_t *o = json_pack("{s:s, s:s, s:o, s:s?}", "operationId", op->id, "status",
                          op_status_names[op->status], "createdDateTime",
                          vg__json_time(op->created_ms), "egressProviderName", op->egress);
    if (full) {
        json_object_set_new(o, "resourceLocation", vg__json_str(op->location));
        /* dotnet-monitor's OperationError */
        json_object_set_new(o, "error",
                            op->status == OP_FAILED
                                ? json_pack("{s:s, s:o}", "code", vg_err_name(op->rc), "message",
                                            vg__json_str(op->error))
                                : json_null());
    }
    json_object_set_new(o, "process",
                        json_pack("{s:i, s:s, s:o}", "pid", op->pid, "uid", op->uid, "name",
                                  vg__json_str(op->proc_name)));
    json_object_set_new(o, "isStoppable", json_boolean(op_stoppable(op)));
    json_t *tags = json_array();
    for (size_t i = 0; i < op->n_tags; i++)
        json_array_append_new(tags, vg__json_str(op->tags[i]));
    json_object_set_new(o, "tags", tags);
    if (op->rule)
        json_object_set_new(o, "collectionRule", json_string(op->rule));
    if (op->outputs)
        json_object_set(o, "outputs", op->outputs);
    return o;
}

static json_t *op_json(const struct vg_op *op)
{
    return op_json_as(op, true);
}

/* dotnet-monitor's tags: comma-separated, empty entries dropped, a set (exact text). */
static int split_tags(const char *text, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const char *p = text;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        bool dup = false;
        for (size_t i = 0; i < *n && !dup; i++)
            dup = strlen((*out)[i]) == len && strncmp((*out)[i], p, len) == 0;
        if (len && !dup) {
            char **v = realloc(*out, (*n + 1) * sizeof(*v));
            if (!v)
                return VG_ENOMEM;
            *out = v;
            if (!(v[*n] = vg_strndup(p, len)))
                return VG_ENOMEM;
            (*n)++;
        }
        p += len + (p[len] == ',');
    }
    return 0;
}

static void free_tags(char **tags, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(tags[i]);
    free(tags);
}

static void op_prune(struct vg_api *api)
{
    size_t n = 0;
    for (struct vg_op **pp = &api->ops; *pp;) {
        struct vg_op *op = *pp;
        if (++n > MAX_OPERATIONS_KEPT && !op_active(op)) {
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

void vg__op_attach(struct vg_op *op, const struct vg_artifact *a)
{
    if (op)
        atomic_store(&op->upload_id, vg_artifact_id(a));
}

/* A pending operation takes its upload's outcome (the resume worker completes it). */
static void op_sync(struct vg_api *api, struct vg_op *op)
{
    struct vg_egress_upload_info x;
    if (!op->pending || !op_active(op) ||
        vg_egress_upload_get(api->d->gen->egress, atomic_load(&op->upload_id), &x))
        return;
    if (!strcmp(x.state, "done")) {
        op->status = OP_SUCCEEDED;
        op->location = vg_strdup(x.egress_path);
    } else if (!strcmp(x.state, "failed")) {
        op->status = OP_FAILED;
        op->error = vg_strdup(x.last_error ? x.last_error : "upload failed");
    } else if (!strcmp(x.state, "cancelled")) {
        op->status = OP_CANCELLED;
    }
    op->pending = op_active(op);
    vg_egress_upload_info_free(&x);
}

void vg__op_outputs(struct vg_op *op, char *const *names, char *const *values, size_t n)
{
    if (!op || !n)
        return;
    if (!op->outputs)
        op->outputs = json_object();
    for (size_t i = 0; op->outputs && i < n; i++)
        if (strcmp(names[i], "EgressPath") != 0) /* that one is resourceLocation */
            json_object_set_new(op->outputs, names[i], json_string(values[i]));
}

void vg__op_end(struct vg_op *op, int rc, const char *location, const char *error)
{
    if (!op)
        return;
    op->job = NULL;
    /* From the result alone: a cancel that came after the upload completed was too late. An
     * upload left pending (its provider is down) keeps the operation Running until the upload
     * ends (op_sync): Failed would make callers dump again. */
    if (rc == VG_ECANCELED) {
        op->status = OP_CANCELLED;
    } else if (rc == VG_ERETRY && atomic_load(&op->upload_id)) {
        op->pending = true;
    } else if (rc) {
        op->status = OP_FAILED;
        op->rc = rc;
        op->error = vg_strdup(error ? error : vg_strerror(rc));
    } else {
        op->status = OP_SUCCEEDED;
        op->location = vg_strdup(location);
    }
    op_prune(op->api);
}

/* ---- artifact routes: /dump, /gcdump, /trace, /stacks ---- */

/* One request for an artifact: an operation with an egress provider, else the response body. */
struct api_job {
    struct vg_api *api;
    struct vg_gen *gen; /* referenced: the egress it writes to */
    const char *what;   /* "dump", "gcdump", ...: for the log */
    void *settings;     /* the action's typed settings, owned */
    void (*free_settings)(void *settings);
    unsigned *running;
    struct vg_op *op;         /* with an egress provider */
    struct vg_egress_job *ej; /* with an egress provider */
    /* Streamed back to the client. The status line waits until the adapter opens the artifact,
     * so whatever fails before the first byte is answered as an error, and the response carries
     * the adapter's file name; open() is called on the job's thread, which hands it to the loop
     * (async) and waits for the answer. */
    struct vg_rt_job job;
    const char *content_type; /* the route's, or NULL for the adapter's */
    struct vg_http_res *res;  /* deferred; NULL once answered or the client left */
    struct vg_http_stream *stream;
    uv_async_t async;
    uv_mutex_t mu;
    uv_cond_t cv;
    uv_thread_t loop_thread;
    bool asked, answered;
    int open_rc;
    char name[256], ctype[128];
    struct api_job *next_stream; /* in api->streams while streaming */
};

static void aj_free(struct api_job *aj)
{
    if (aj->free_settings)
        aj->free_settings(aj->settings);
    vg__gen_unref(aj->gen);
    free(aj);
}

static void aj_closed(uv_handle_t *h)
{
    struct api_job *aj = h->data;
    uv_cond_destroy(&aj->cv);
    uv_mutex_destroy(&aj->mu);
    aj_free(aj);
}

static void aj_end(struct api_job *aj, int rc, const char *error)
{
    struct vg_api *api = aj->api;
    for (struct api_job **pp = &api->streams; *pp; pp = &(*pp)->next_stream)
        if (*pp == aj) {
            *pp = aj->next_stream;
            break;
        }
    (*aj->running)--;
    api->d->runs_active--;
    if (aj->op)
        vg_log(rc ? VG_LOG_WARN : VG_LOG_INFO, "api", "%s operation %s for pid %d: %s%s%s",
               aj->what, aj->op->id, aj->op->pid,
               aj->op->pending ? "upload pending (resumed later)"
               : rc            ? (rc == VG_ECANCELED ? "Cancelled" : "Failed")
                               : "Succeeded",
               rc ? ": " : "", rc ? error : "");
}

static void free_outputs(char **names, char **values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
        free(values[i]);
    }
    free(names);
    free(values);
}

static void egress_finished(struct vg_egress_job *ej, int rc, const char *error, char **names,
                            char **values, size_t n)
{
    struct api_job *aj = ej->ctx;
    vg__op_outputs(aj->op, names, values, n);
    vg__op_end(aj->op, rc, rc == 0 ? ej->location : NULL, error);
    free_outputs(names, values, n);
    op_prune(aj->api);
    aj_end(aj, rc, error);
    vg__egress_job_free(ej);
    aj_free(aj);
}

/* dotnet-monitor answers what it cannot do for a process with 400 (a ValidationProblem). */
static int status_for(int rc)
{
    return rc == VG_EUNSUPPORTED ? 400 : vg_http_status_for_err(rc);
}

static struct api_job *aj_of(struct vg_rt_job *j)
{
    return j->caller;
}

/* Loop thread: the status line and headers, with the artifact's name. */
static int start_response(struct api_job *aj, const char *name, const char *ctype)
{
    if (!aj->res)
        return VG_ECANCELED; /* the client left */
    char disp[320];
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", name);
    vg_http_res_header(aj->res, "Content-Disposition", disp);
    int rc =
        vg_http_res_stream(aj->res, 200, aj->content_type ? aj->content_type : ctype, &aj->stream);
    if (rc == 0)
        aj->res = NULL;
    return rc;
}

static void open_asked(uv_async_t *a)
{
    struct api_job *aj = a->data;
    uv_mutex_lock(&aj->mu);
    bool ask = aj->asked && !aj->answered;
    uv_mutex_unlock(&aj->mu);
    if (!ask)
        return;
    /* outside the lock: starting the response may end the connection, whose cancel callback
     * runs here */
    int rc = start_response(aj, aj->name, aj->ctype);
    uv_mutex_lock(&aj->mu);
    aj->open_rc = rc;
    aj->answered = true;
    uv_cond_broadcast(&aj->cv);
    uv_mutex_unlock(&aj->mu);
}

static int stream_open(struct vg_rt_job *j, const char *default_name, const char *content_type)
{
    struct api_job *aj = aj_of(j);
    uv_thread_t self = uv_thread_self();
    if (uv_thread_equal(&self, &aj->loop_thread))
        return start_response(aj, default_name, content_type);
    uv_mutex_lock(&aj->mu);
    if (aj->asked) {
        uv_mutex_unlock(&aj->mu);
        return VG_ESTATE; /* opened once */
    }
    snprintf(aj->name, sizeof(aj->name), "%s", default_name);
    snprintf(aj->ctype, sizeof(aj->ctype), "%s", content_type ? content_type : "");
    aj->asked = true;
    uv_async_send(&aj->async);
    while (!aj->answered)
        uv_cond_wait(&aj->cv, &aj->mu);
    int rc = aj->open_rc;
    uv_mutex_unlock(&aj->mu);
    return rc;
}

static int stream_write(struct vg_rt_job *j, const void *buf, size_t len)
{
    struct api_job *aj = aj_of(j);
    if (atomic_load(&j->cancelled))
        return VG_ECANCELED;
    return aj->stream ? vg_http_stream_write(aj->stream, buf, len) : VG_ESTATE;
}

static int stream_commit(struct vg_rt_job *j)
{
    return 0;
}

static void stream_abort(struct vg_rt_job *j)
{
}

/* The client went away (or the server is shutting down) before the artifact opened. */
static void stream_client_gone(struct vg_http_res *res, void *ud)
{
    struct api_job *aj = ud;
    aj->res = NULL;
    vg_rt_job_cancel(&aj->job);
}

static void stream_done(struct vg_rt_job *j, int rc, const char *error, char **names, char **values,
                        size_t n)
{
    struct api_job *aj = aj_of(j);
    free_outputs(names, values, n);
    if (rc == 0 && !aj->stream) {
        rc = VG_EPROTO;
        error = "the collection produced no artifact";
    }
    if (aj->stream)
        vg_http_stream_end(aj->stream, rc);
    else if (aj->res) /* nothing sent yet: the failure is the answer */
        vg_http_res_problem(aj->res, status_for(rc), rc, "%s", error ? error : vg_strerror(rc));
    aj->res = NULL;
    if (rc)
        vg_log(VG_LOG_WARN, "api", "streamed %s of pid %d failed: %s", aj->what, j->target.pid,
               error ? error : vg_strerror(rc));
    vg_rt_target_free(&j->target);
    aj_end(aj, rc, error);
    uv_close((uv_handle_t *)&aj->async, aj_closed);
}

static const struct vg_rt_job_ops stream_ops = {
    .open = stream_open,
    .write = stream_write,
    .commit = stream_commit,
    .abort = stream_abort,
    .done = stream_done,
};

/* With egressProvider=: an operation, 202 and its Location. */
static void collect_to_egress(struct api_job *aj, struct vg_http_req *req, struct vg_http_res *res,
                              struct vg_proc *p, const struct vg__artifact_req *ar,
                              struct vg_rt_target *target, const char *egress, const char *tags)
{
    struct vg_api *api = aj->api;
    struct vg_daemon *d = api->d;
    /* settings the runtime cannot honour are a bad request, as dotnet-monitor validates before
     * it starts an operation; what fails later (permissions, the target) fails the operation */
    const struct vg_rt_action *runner = vg_runtime_action(target->runtime, ar->action);
    char why[512] = "";
    if (runner && runner->check &&
        runner->check(target, aj->settings, why, sizeof(why)) == VG_EUNSUPPORTED) {
        vg_http_res_problem(res, 400, VG_EUNSUPPORTED, "%s", why);
        vg_rt_target_free(target);
        aj_free(aj);
        return;
    }
    char uid[40];
    vg__proc_uid(p, uid);
    aj->ej = calloc(1, sizeof(*aj->ej));
    aj->op = op_new(api, p->pid, uid, p->name, NULL, egress);
    if (aj->op && tags && split_tags(tags, &aj->op->tags, &aj->op->n_tags)) {
        free_tags(aj->op->tags, aj->op->n_tags); /* out of memory: the op carries none */
        aj->op->tags = NULL;
        aj->op->n_tags = 0;
    }
    int rc = !aj->ej || !aj->op ? VG_ENOMEM
                                : vg__egress_job_init(aj->ej, d->loop, target, ar->action,
                                                      aj->settings, d->gen->egress, egress, NULL);
    vg_rt_target_free(target);
    if (rc == 0) {
        aj->ej->op = aj->op;
        aj->ej->ctx = aj;
        aj->ej->finished = egress_finished;
        rc = vg__egress_job_start(aj->ej);
    }
    if (rc) {
        vg__op_end(aj->op, rc, NULL, "the collection could not start");
        vg__egress_job_free(aj->ej);
        aj_free(aj);
        vg_http_res_problem(res, status_for(rc), rc, "cannot start the %s: %s", ar->what,
                            vg_strerror(rc));
        return;
    }
    vg__op_set_job(aj->op, &aj->ej->job);
    (*aj->running)++;
    d->runs_active++;
    /* absolute, as ASP.NET's link generator makes it from the request's Host */
    const char *host = vg_http_req_header(req, "Host");
    char *loc =
        vg_asprintf("http://%s/operations/%s",
                    host && *host && !strpbrk(host, "/\r\n") ? host : "localhost", aj->op->id);
    if (loc)
        vg_http_res_header(res, "Location", loc);
    free(loc);
    vg_http_res_json(res, 202, op_json(aj->op));
}

/* Without egressProvider=: the artifact is the response body (not listed under /operations). */
static void collect_to_response(struct api_job *aj, struct vg_http_res *res,
                                const struct vg__artifact_req *ar, struct vg_rt_target *target)
{
    struct vg_api *api = aj->api;
    struct vg_daemon *d = api->d;
    struct vg_rt_job *j = &aj->job;
    j->loop = d->loop;
    j->target = *target;
    j->type = ar->action;
    j->settings = aj->settings;
    j->ops = &stream_ops;
    j->caller = aj;
    atomic_init(&j->cancelled, false);
    atomic_init(&j->stopping, false);
    j->runner = vg_runtime_action(target->runtime, ar->action);
    aj->content_type = ar->content_type;
    aj->loop_thread = uv_thread_self();
    char why[512] = "";
    /* what can be found out cheaply is answered before any work starts */
    int rc = !j->runner         ? VG_EUNSUPPORTED
             : j->runner->check ? j->runner->check(&j->target, j->settings, why, sizeof(why))
                                : 0;
    if (rc) {
        vg_http_res_problem(res, status_for(rc), rc, "%s",
                            why[0] ? why : "this process's runtime does not run the action");
        vg_rt_target_free(&j->target);
        aj_free(aj);
        return;
    }
    if (uv_mutex_init(&aj->mu)) {
        vg_rt_target_free(&j->target);
        aj_free(aj);
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return;
    }
    if (uv_cond_init(&aj->cv)) {
        uv_mutex_destroy(&aj->mu);
        vg_rt_target_free(&j->target);
        aj_free(aj);
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return;
    }
    aj->async.data = aj;
    if (uv_async_init(d->loop, &aj->async, open_asked)) {
        uv_cond_destroy(&aj->cv);
        uv_mutex_destroy(&aj->mu);
        vg_rt_target_free(&j->target);
        aj_free(aj);
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return;
    }
    (*aj->running)++;
    d->runs_active++;
    aj->res = res;
    vg_http_res_defer(res, stream_client_gone, aj);
    aj->next_stream = api->streams;
    api->streams = aj;
    rc = j->runner->start(j);
    if (rc) {
        aj->res = NULL;
        vg_http_res_problem(res, status_for(rc), rc, "cannot start the %s on pid %d: %s", ar->what,
                            j->target.pid, vg_strerror(rc));
        vg_rt_target_free(&j->target);
        aj_end(aj, rc, vg_strerror(rc));
        uv_close((uv_handle_t *)&aj->async, aj_closed);
    }
}

void vg__artifact_collect(struct vg_api *api, struct vg_http_req *req, struct vg_http_res *res,
                          struct vg_proc *p, const struct vg__artifact_req *ar)
{
    struct vg_daemon *d = api->d;
    const char *egress = vg_http_req_query(req, "egressProvider");
    const char *tags = vg_http_req_query(req, "tags");
    struct api_job *aj = NULL;
    struct vg_rt_target target;
    if (d->stopping) {
        vg_http_res_problem(res, 503, VG_ECANCELED, "vigil is shutting down");
        goto refused;
    }
    if (egress && !vg_config_egress(d->gen->cfg, egress)) {
        vg_http_res_problem(res, 400, VG_ENOTFOUND, "no egress provider named \"%s\"", egress);
        goto refused;
    }
    if (*ar->running >= ar->max) {
        vg_http_res_header(res, "Retry-After", "5");
        vg_http_res_problem(res, 429, VG_ELIMIT, "%u %s request%s already running (%s)",
                            *ar->running, ar->what, *ar->running == 1 ? " is" : "s are", ar->limit);
        goto refused;
    }
    if (!(aj = calloc(1, sizeof(*aj))) || vg_rt_target_init(&target, p) != 0) {
        free(aj);
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        goto refused;
    }
    aj->api = api;
    aj->gen = d->gen;
    vg__gen_ref(aj->gen);
    aj->what = ar->what;
    aj->settings = ar->settings;
    aj->free_settings = ar->free_settings;
    aj->running = ar->running;
    if (egress)
        collect_to_egress(aj, req, res, p, ar, &target, egress, tags);
    else
        collect_to_response(aj, res, ar, &target);
    return;
refused:
    if (ar->free_settings)
        ar->free_settings(ar->settings);
}

VG__HANDLER(dump)
{
    struct vg_api *api = ud;
    struct vg_proc *p = vg__api_select_process(api, req, res);
    if (!p)
        return;
    const char *type = vg_http_req_query(req, "type");
    const char *mode = vg_http_req_query(req, "mode");
    enum vg_dump_type t = VG_DUMP_WITH_HEAP;
    enum vg_dump_mode m = VG_DUMP_SNAPSHOT;
    if (type && vg_dump_type_parse(type, &t) != 0) {
        vg_http_res_problem(res, 400, VG_EINVAL,
                            "type must be Full, WithHeap, Mini or Triage, got \"%s\"", type);
        return;
    }
    if (mode && vg_dump_mode_parse(mode, &m) != 0) {
        vg_http_res_problem(res, 400, VG_EINVAL, "mode must be Snapshot or Stop, got \"%s\"", mode);
        return;
    }
    struct vg_act_collect_dump *set = calloc(1, sizeof(*set));
    if (!set) {
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return;
    }
    set->type = (int)t;
    set->mode = (int)m;
    const struct vg__artifact_req ar = {
        .action = "CollectDump",
        .what = "dump",
        .content_type = "application/octet-stream",
        .settings = set,
        .free_settings = free,
        .running = &api->dumps_running,
        .max = api->max_dumps,
        .limit = "Server.MaxConcurrentDumps",
    };
    vg__artifact_collect(api, req, res, p, &ar);
}

/* ---- /operations ---- */

static struct vg_op *find_op(struct vg_api *api, const char *id)
{
    for (struct vg_op *op = api->ops; op; op = op->next)
        if (op->egress && strcasecmp(op->id, id) == 0)
            return op;
    return NULL;
}

/* dotnet-monitor's /operations filters: pid, uid, name (exact) and tags (a subset). */
struct op_filter {
    long pid;
    const char *uid, *name;
    char **tags;
    size_t n_tags;
};

static bool op_wanted(const struct vg_op *op, const struct op_filter *f)
{
    if ((f->pid && op->pid != f->pid) || (f->uid && strcasecmp(op->uid, f->uid) != 0) ||
        (f->name && (!op->proc_name || strcmp(op->proc_name, f->name) != 0)))
        return false;
    for (size_t i = 0; i < f->n_tags; i++) {
        bool has = false;
        for (size_t j = 0; j < op->n_tags && !has; j++)
            has = strcmp(op->tags[j], f->tags[i]) == 0;
        if (!has)
            return false;
    }
    return true;
}

/* An upload still waiting for its provider is listed as a Running operation. Its id is a GUID
 * too (dotnet-monitor's operationId is a uuid): the upload's row number under a fixed prefix. */
#define UPLOAD_ID_PREFIX "00000000-0000-0000-0000-"

static bool upload_waiting(const struct vg_egress_upload_info *u)
{
    return strcmp(u->state, "pending") == 0 || strcmp(u->state, "uploading") == 0;
}

static json_t *upload_json(const struct vg_egress_upload_info *u);

/* A waiting upload's last error as dotnet-monitor's OperationError (the operation is Running:
 * the code says it will be retried), or null. */
static json_t *upload_error_json(const struct vg_egress_upload_info *u)
{
    if (!u->last_error)
        return json_null();
    return json_pack("{s:s, s:o}", "code", vg_err_name(VG_ERETRY), "message",
                     vg__json_str(u->last_error));
}

/* An upload no operation of this run owns (left by an earlier run), as a Running operation. */
static json_t *orphan_upload_json(const struct vg_egress_upload_info *u)
{
    char id[40];
    snprintf(id, sizeof(id), UPLOAD_ID_PREFIX "%012llx", (unsigned long long)u->id);
    json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:n, s:b, s:[]}", "operationId", id, "status",
                          "Running", "createdDateTime", vg__json_time(u->created_ms),
                          "egressProviderName", u->provider, "process", "isStoppable", 0, "tags");
    json_object_set_new(o, "upload", upload_json(u));
    json_object_set_new(o, "error", upload_error_json(u));
    return o;
}

/* The waiting upload an operation id names, as its operation (NULL when none). */
static json_t *find_upload(struct vg_api *api, const char *id)
{
    size_t pl = strlen(UPLOAD_ID_PREFIX);
    if (strncasecmp(id, UPLOAD_ID_PREFIX, pl) != 0 || strlen(id + pl) != 12 ||
        strspn(id + pl, "0123456789abcdefABCDEF") != 12)
        return NULL;
    long long want = strtoll(id + pl, NULL, 16);
    struct vg_egress_upload_info *up = NULL;
    size_t n = 0;
    json_t *o = NULL;
    if (vg_egress_uploads(api->d->gen->egress, 100, &up, &n) == 0) {
        for (size_t i = 0; i < n && !o; i++)
            if (up[i].id == want && upload_waiting(&up[i]))
                o = orphan_upload_json(&up[i]);
        vg_egress_uploads_free(up, n);
    }
    return o;
}

/* An upload's progress, for operations waiting on it and uploads no operation owns. */
static json_t *upload_json(const struct vg_egress_upload_info *u)
{
    return json_pack("{s:o, s:s, s:I, s:I, s:i}", "artifactName", vg__json_str(u->name), "state",
                     u->state, "size", (json_int_t)u->size, "bytesDone", (json_int_t)u->bytes_done,
                     "retries", (int)u->retries);
}

/* op_json after op_sync; an operation waiting for its upload shows the upload. */
static json_t *op_json_now(struct vg_api *api, struct vg_op *op, bool full)
{
    op_sync(api, op);
    json_t *o = op_json_as(op, full);
    struct vg_egress_upload_info x;
    if (op->pending &&
        !vg_egress_upload_get(api->d->gen->egress, atomic_load(&op->upload_id), &x)) {
        json_object_set_new(o, "upload", upload_json(&x));
        if (x.last_error && full)
            json_object_set_new(o, "error", upload_error_json(&x));
        vg_egress_upload_info_free(&x);
    }
    return o;
}

static bool upload_has_op(struct vg_api *api, int64_t id)
{
    for (struct vg_op *op = api->ops; op; op = op->next)
        if (atomic_load(&op->upload_id) == id)
            return true;
    return false;
}

void vg__h_operations(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct op_filter f = {0};
    const char *pid = vg_http_req_query(req, "pid"), *tags = vg_http_req_query(req, "tags");
    f.uid = vg_http_req_query(req, "uid");
    f.name = vg_http_req_query(req, "name");
    if (pid) {
        char *end;
        f.pid = strtol(pid, &end, 10);
        if (!*pid || *end || f.pid <= 0) {
            vg_http_res_problem(res, 400, VG_EINVAL, "pid must be a process id, got \"%s\"", pid);
            return;
        }
    }
    if (tags && split_tags(tags, &f.tags, &f.n_tags)) {
        free_tags(f.tags, f.n_tags);
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return;
    }
    bool filtered = pid || f.uid || f.name || f.n_tags;
    json_t *arr = json_array();
    for (struct vg_op *op = api->ops; op; op = op->next)
        if (op->egress && op_wanted(op, &f))
            json_array_append_new(arr, op_json_now(api, op, false));
    free_tags(f.tags, f.n_tags);
    /* Uploads still waiting for their provider that no operation of this run owns (left by an
     * earlier run): the artifact's journey has not ended. They belong to no process and carry no
     * tags, so a filtered list leaves them out. */
    struct vg_egress_upload_info *up = NULL;
    size_t n = 0;
    if (!filtered && vg_egress_uploads(api->d->gen->egress, 100, &up, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            if (upload_waiting(&up[i]) && !upload_has_op(api, up[i].id))
                json_array_append_new(arr, orphan_upload_json(&up[i]));
        vg_egress_uploads_free(up, n);
    }
    vg_http_res_json(res, 200, arr);
}

void vg__h_operation(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct vg_op *op = find_op(api, vg_http_req_param(req, "id"));
    json_t *upload = op ? NULL : find_upload(api, vg_http_req_param(req, "id"));
    if (upload) {
        vg_http_res_json(res, 200, upload);
        return;
    }
    if (!op) { /* dotnet-monitor: an InvalidOperationException, 400 */
        vg_http_res_problem(res, 400, VG_ENOTFOUND, "Operation %s was not found.",
                            vg_http_req_param(req, "id"));
        return;
    }
    json_t *o = op_json_now(api, op, true);
    vg_http_res_json(res, op->status == OP_SUCCEEDED ? 201 : 200, o);
}

/* Asks a running operation to end early and keep its artifact (dotnet-monitor's Stop
 * Operation): 202, Stopping, then Succeeded (or Failed) when the collection ended and the
 * artifact is egressed; 400 for what cannot be stopped. res NULL: shutdown (no answer). */
static void stop_op(struct vg_op *op, const char *why, struct vg_http_res *res)
{
    if (!op_stoppable(op)) {
        if (res && op->pending)
            vg_http_res_problem(res, 400, VG_ESTATE,
                                "Operation %s has nothing to stop: its collection ended and its "
                                "upload waits for the egress provider (DELETE cancels it)",
                                op->id);
        else if (res)
            vg_http_res_problem(res, 400, VG_EUNSUPPORTED,
                                "Operation %s does not support being stopped: only a trace "
                                "(nettrace, JFR, CPU profile) or a .NET logs or live metrics "
                                "collection can end early and keep what it collected (DELETE "
                                "without stop=true cancels it)",
                                op->id);
        return;
    }
    op->status = OP_STOPPING;
    vg_rt_job_stop(op->job);
    vg_log(VG_LOG_INFO, "api", "operation %s for pid %d: stopping (%s); what it collected is kept",
           op->id, op->pid, why);
    if (res) /* dotnet-monitor: queued, not done ("202 Accepted", no body) */
        vg_http_res_text(res, 202, "text/plain", "", 0);
}

void vg__ops_stop_all(struct vg_api *api)
{
    for (struct vg_op *op = api ? api->ops : NULL; op; op = op->next)
        if (op_stoppable(op))
            stop_op(op, "vigil is shutting down", NULL);
    /* streamed ones too: the client gets a complete artifact rather than a cut one */
    for (struct api_job *aj = api ? api->streams : NULL; aj; aj = aj->next_stream)
        if (aj->job.runner && aj->job.runner->stoppable)
            vg_rt_job_stop(&aj->job);
}

void vg__h_operation_cancel(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct vg_op *op = find_op(api, vg_http_req_param(req, "id"));
    if (!op) {
        vg_http_res_problem(res, 400, VG_ENOTFOUND, "Operation %s was not found.",
                            vg_http_req_param(req, "id"));
        return;
    }
    const char *stop = vg_http_req_query(req, "stop");
    if (stop && strcasecmp(stop, "true") != 0 && strcasecmp(stop, "false") != 0) {
        vg_http_res_problem(res, 400, VG_EINVAL, "stop must be true or false, got \"%s\"", stop);
        return;
    }
    bool want_stop = stop && strcasecmp(stop, "true") == 0;
    op_sync(api, op);
    /* dotnet-monitor: a cancel ends a Running or Stopping operation, a stop a Running one */
    if (!op_active(op) || (want_stop && op->status == OP_STOPPING)) {
        vg_http_res_problem(res, 400, VG_ESTATE, "operation %s is already %s", op->id,
                            op_status_names[op->status]);
        return;
    }
    if (want_stop) {
        stop_op(op, "DELETE ?stop=true", res);
        return;
    }
    atomic_store(&op->cancel, true);
    if (op->job)
        vg_rt_job_cancel(op->job);
    /* The upload stops wherever it is (the job's commit, the resume worker, or waiting for a
     * retry) and is undone; the operation says Cancelled only after that. */
    int64_t up = atomic_load(&op->upload_id);
    if (up)
        vg_egress_upload_cancel(api->d->gen->egress, up);
    op_sync(api, op);
    vg_http_res_text(res, 200, "text/plain", "", 0);
}
