/* The HTTP API: dotnet-monitor's routes and JSON shapes (/processes, /process,
 * /collectionrules, /dump, /operations, /info) plus /metrics (Prometheus, every process) and
 * vigil's /instances and /healthz. */
#include "engine/engine_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "egress/egress.h"
#include "engine/dump/dump.h"
#include "engine/http/http.h"
#include "rules/action.h"

#include <inttypes.h>
#include <math.h>
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
    enum vg_dump_type type;
    atomic_bool cancel;
    _Atomic int64_t upload_id; /* its artifact's upload (vg__op_attach), 0 before */
    bool pending;              /* ended with its upload pending: follows it (op_sync) */
    /* worker state */
    uv_work_t work;
    struct vg_gen *gen;
    struct vg_http_stream *stream; /* streamed dump (no egress) */
    int rc;
    char err[512];
    char *path;
    struct vg_op *next;
};

struct vg_api {
    struct vg_daemon *d;
    struct vg_http_server *http;
    struct vg_op *ops; /* newest first */
    unsigned dumps_running;
    unsigned max_dumps;
};

/* ---------- helpers ---------- */

/* A JSON string for s (NULL gives null); never NULL for a non-NULL s, unlike json_string(). */
static json_t *jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    struct vg_buf b;
    vg_buf_init(&b);
    vg_http_utf8_append(&b, s, strlen(s));
    j = json_stringn(b.data ? b.data : "", b.len);
    vg_buf_free(&b);
    return j ? j : json_string("");
}

static void proc_uid(const struct vg_proc *p, char out[40])
{
    /* A stable UUID-shaped id from the process identity (boot id, pid, start time). */
    uint64_t a = p->key, b = p->start_ticks * 0x9e3779b97f4a7c15ull ^ (uint64_t)p->pid;
    snprintf(out, 40, "%08" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "-%012" PRIx64,
             (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffff, (uint32_t)a & 0xffff,
             (uint32_t)(b >> 48) & 0xffff, (uint64_t)(b & 0xffffffffffffull));
}

static const char *runtime_name(const struct vg_proc *p)
{
    return p->runtime == VG_RT_UNKNOWN ? "native" : vg_runtime_name(p->runtime);
}

/* pid=, uid= or name= select one process; none selects the only one. */
static struct vg_proc *select_process(struct vg_api *api, struct vg_http_req *req,
                                      struct vg_http_res *res)
{
    struct vg_daemon *d = api->d;
    const char *pid = vg_http_req_query(req, "pid");
    const char *uid = vg_http_req_query(req, "uid");
    const char *name = vg_http_req_query(req, "name");
    struct vg_proc *found = NULL;
    size_t matches = 0;
    if (pid) {
        char *end;
        long v = strtol(pid, &end, 10);
        if (*end || v <= 0 || v > 4194304) {
            vg_http_res_problem(res, 400, VG_EINVAL, "pid must be a process id, got \"%s\"", pid);
            return NULL;
        }
        found = vg_proc_table_find(d->procs, (int)v);
        matches = found ? 1 : 0;
    } else {
        for (struct vg_proc *p = vg_proc_table_next(d->procs, NULL); p;
             p = vg_proc_table_next(d->procs, p)) {
            char u[40];
            proc_uid(p, u);
            bool hit = uid ? strcasecmp(u, uid) == 0 : name ? strcmp(p->name, name) == 0 : true;
            if (hit) {
                found = p;
                matches++;
            }
        }
    }
    if (matches == 1)
        return found;
    if (matches == 0)
        vg_http_res_problem(res, 404, VG_ENOTFOUND, "no such process%s%s", pid ? " with pid " : "",
                            pid ? pid : "");
    else
        vg_http_res_problem(res, 400, VG_EINVAL,
                            "%zu processes match; select one with pid=, uid= or name=", matches);
    return NULL;
}

static json_t *ms_json(uint64_t ms, bool present)
{
    if (!present)
        return json_null();
    char buf[32];
    vg_format_timespan(ms, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *iso_time(uint64_t wall_ms)
{
    if (!wall_ms)
        return json_null();
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[96];
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(wall_ms % 1000));
    return json_string(buf);
}

/* ---------- /processes, /process ---------- */

static void h_processes(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    json_t *arr = json_array();
    size_t n = vg_proc_table_count(api->d->procs);
    for (struct vg_proc *p = vg_proc_table_next(api->d->procs, NULL); p;
         p = vg_proc_table_next(api->d->procs, p)) {
        char u[40];
        proc_uid(p, u);
        json_array_append_new(arr, json_pack("{s:i, s:s, s:o, s:b}", "pid", p->pid, "uid", u,
                                             "name", jstr(p->name), "isDefault", n == 1));
    }
    vg_http_res_json(res, 200, arr);
}

static void h_process(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct vg_proc *p = select_process(api, req, res);
    if (!p)
        return;
    char u[40];
    proc_uid(p, u);
    json_t *o = json_pack("{s:i, s:i, s:s, s:o, s:o, s:s, s:s, s:o, s:s}", "pid", p->pid,
                          "namespacePid", p->ns_pid, "uid", u, "name", jstr(p->name), "commandLine",
                          jstr(p->cmdline ? p->cmdline : ""), "operatingSystem", "linux",
                          "processArchitecture",
#if defined(__x86_64__)
                          "x64",
#elif defined(__aarch64__)
                          "arm64",
#else
                          "unknown",
#endif
                          "exe", jstr(p->exe), "runtime", runtime_name(p));
    vg_http_res_json(res, 200, o);
}

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
    json_object_set_new(o, "actionCountSlidingWindowDurationLimit",
                        ms_json(lim->action_count_window_ms, lim->action_count_window_ms > 0));
    json_object_set_new(o, "slidingWindowDurationCountdown", ms_json(win, has_win && win >= 1000));
    json_object_set_new(o, "ruleFinishedCountdown", ms_json(rule, has_rule && rule >= 1000));
    json_object_set_new(o, "lastFired", iso_time(inst->last_fired_ms));
    json_object_set_new(o, "cooldownRemaining", ms_json(cool, has_cool && cool > 0));
    json_object_set_new(o, "lastError",
                        inst->last_error ? json_string(inst->last_error) : json_null());
    if (d->reload_error)
        json_object_set_new(o, "configurationErrors", json_string(d->reload_error));
    return o;
}

static void h_rules(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct vg_proc *p = select_process(api, req, res);
    if (!p)
        return;
    json_t *o = json_object();
    uint64_t now = vg_wall_ms();
    struct vg_watched *w = p->user;
    for (struct vg_instance *i = w ? w->instances : NULL; i; i = i->next)
        json_object_set_new(o, i->rule->name, instance_summary(i, now));
    vg_http_res_json(res, 200, o);
}

static void h_rule(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    const char *name = vg_http_req_param(req, "name");
    if (!vg_ruleset_find(api->d->gen->rules, name)) {
        vg_http_res_problem(res, 404, VG_ENOTFOUND, "no collection rule named \"%s\"", name);
        return;
    }
    struct vg_proc *p = select_process(api, req, res);
    if (!p)
        return;
    struct vg_instance *inst = find_instance(p, name);
    if (!inst) {
        vg_http_res_problem(res, 404, VG_ENOTFOUND,
                            "collection rule \"%s\" does not apply to pid %d (its filters do not "
                            "match)",
                            name, p->pid);
        return;
    }
    vg_http_res_json(res, 200, instance_detail(api->d, inst, vg_wall_ms()));
}

/* vigil: every rule x process at once, for `vigil status`. */
static void h_instances(struct vg_http_req *req, struct vg_http_res *res, void *ud)
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
            json_object_set_new(o, "name", jstr(p->name));
            char *one = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            ok = one && vg_buf_printf(&b, "%s%s", first ? "" : ",", one) == 0;
            free(one);
            first = false;
        }
    }
    json_t *errs = api->d->reload_error ? jstr(api->d->reload_error) : json_null();
    char *e = json_dumps(errs, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(errs);
    ok = ok && e && vg_buf_printf(&b, "],\"configurationErrors\":%s}", e) == 0;
    free(e);
    if (ok)
        vg_http_res_text(res, 200, "application/json", b.data, b.len);
    else
        vg_http_res_problem(res, 500, VG_ENOMEM, "out of memory");
    vg_buf_free(&b);
}

/* ---------- operations and /dump ---------- */

static json_t *op_json(const struct vg_op *op)
{
    json_t *o = json_pack("{s:s, s:s, s:o, s:s?, s:s?, s:o}", "operationId", op->id, "status",
                          op_status_names[op->status], "createdDateTime", iso_time(op->created_ms),
                          "resourceLocation", op->location, "egressProviderName", op->egress,
                          "error", jstr(op->error));
    json_object_set_new(
        o, "process",
        json_pack("{s:i, s:s, s:o}", "pid", op->pid, "uid", op->uid, "name", jstr(op->proc_name)));
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
            free(op->rule);
            free(op->proc_name);
            free(op->egress);
            free(op->location);
            free(op->error);
            free(op);
        } else {
            pp = &op->next;
        }
    }
}

/* A random (version 4) UUID: operation ids must not be guessable or collide across restarts. */
static void op_id(struct vg_op *op, uint64_t salt)
{
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        /* no entropy source answered: fall back to clock, counter and salt (still unique) */
        static unsigned seq;
        uint64_t a = uv_hrtime() ^ ((uint64_t)++seq << 40), b = salt ^ vg_wall_ms();
        memcpy(r, &a, 8);
        memcpy(r + 8, &b, 8);
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(op->id, sizeof(op->id),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
}

struct vg_op *vg__op_begin(struct vg_daemon *d, const struct vg_run *run, const char *egress)
{
    struct vg_api *api = d->api;
    if (!api)
        return NULL;
    struct vg_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->api = api;
    op->created_ms = vg_wall_ms();
    op->pid = run->pid;
    struct vg_proc *p = vg_proc_table_find(d->procs, run->pid);
    if (p)
        proc_uid(p, op->uid);
    op_id(op, (uint64_t)run->fire_id);
    op->proc_name = vg_strdup(run->proc_name);
    op->rule = vg_strdup(run->rule->name);
    op->egress = vg_strdup(egress);
    op->next = api->ops;
    api->ops = op;
    return op;
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

/* The status a worker's result gives. An upload left pending (its provider is down) keeps the
 * operation Running until the upload ends (op_sync): Failed would make callers dump again. */
static void op_result(struct vg_op *op, int rc, const char *location, const char *error)
{
    if (rc == VG_ECANCELED) {
        op->status = OP_CANCELLED;
    } else if (rc == VG_ERETRY && atomic_load(&op->upload_id)) {
        op->pending = true;
    } else if (rc) {
        op->status = OP_FAILED;
        op->error = vg_strdup(error ? error : vg_strerror(rc));
    } else {
        op->status = OP_SUCCEEDED;
        op->location = vg_strdup(location);
    }
}

/* A pending operation takes its upload's outcome (the resume worker completes it). */
static void op_sync(struct vg_api *api, struct vg_op *op)
{
    struct vg_egress_upload_info x;
    if (!op->pending || op->status != OP_RUNNING ||
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
    op->pending = op->status == OP_RUNNING;
    vg_egress_upload_info_free(&x);
}

void vg__op_end(struct vg_op *op, int rc, const char *location, const char *error)
{
    if (!op)
        return;
    op_result(op, rc, location, error);
    op_prune(op->api);
}

static int dump_sink(void *ctx, const void *buf, size_t len)
{
    struct vg_op *op = ctx;
    if (atomic_load(&op->cancel))
        return VG_ECANCELED;
    return op->stream ? vg_http_stream_write(op->stream, buf, len) : 0;
}

struct artifact_sink {
    struct vg_op *op;
    struct vg_artifact *a;
};

static int artifact_sink(void *ctx, const void *buf, size_t len)
{
    struct artifact_sink *s = ctx;
    if (atomic_load(&s->op->cancel))
        return VG_ECANCELED;
    return vg_artifact_write(s->a, buf, len);
}

static void dump_work(uv_work_t *w)
{
    struct vg_op *op = w->data;
    struct vg_dump_result r;
    if (op->stream) {
        op->rc = vg_coredump_write(op->pid, op->type, dump_sink, op, &r, op->err, sizeof(op->err));
        vg_http_stream_end(op->stream, op->rc);
        return;
    }
    char name[128];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(name, sizeof(name), "core_%d_%s", op->pid, when);
    struct artifact_sink s = {op, NULL};
    op->rc = vg_artifact_open(op->gen->egress, op->egress, name, "application/x-coredump", NULL, 0,
                              &s.a);
    if (op->rc) {
        snprintf(op->err, sizeof(op->err), "cannot open artifact: %s", vg_strerror(op->rc));
        return;
    }
    vg__op_attach(op, s.a);
    op->rc = vg_coredump_write(op->pid, op->type, artifact_sink, &s, &r, op->err, sizeof(op->err));
    if (op->rc) {
        if (!op->err[0])
            snprintf(op->err, sizeof(op->err), "%s", vg_artifact_error(s.a));
        vg_artifact_abort(s.a);
        return;
    }
    op->rc = vg_artifact_commit(s.a, &op->path, op->err, sizeof(op->err));
}

static void dump_after(uv_work_t *w, int status)
{
    struct vg_op *op = w->data;
    struct vg_api *api = op->api;
    api->dumps_running--;
    api->d->runs_active--;
    int rc = status ? VG_ECANCELED : op->rc;
    op_result(op, rc, op->path, op->err[0] ? op->err : NULL);
    free(op->path);
    op->path = NULL;
    vg_log(op->status == OP_SUCCEEDED ? VG_LOG_INFO : VG_LOG_WARN, "api",
           "dump operation %s for pid %d: %s%s%s", op->id, op->pid,
           op->pending ? "upload pending (resumed later)" : op_status_names[op->status],
           op->error ? ": " : "", op->error ? op->error : "");
    vg__gen_unref(op->gen);
    op->gen = NULL;
    op->stream = NULL;
    op_prune(api);
}

static void h_dump(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct vg_daemon *d = api->d;
    if (d->stopping) {
        vg_http_res_problem(res, 503, VG_ECANCELED, "vigil is shutting down");
        return;
    }
    struct vg_proc *p = select_process(api, req, res);
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
    struct vg_op *op = calloc(1, sizeof(*op));
    if (!op) {
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return;
    }
    static unsigned seq;
    uint64_t r1 = vg_wall_ms() ^ ((uint64_t)++seq << 40), r2 = p->key ^ uv_hrtime();
    snprintf(op->id, sizeof(op->id),
             "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-8%03" PRIx32 "-%012" PRIx64,
             (uint32_t)(r1 >> 32), (uint32_t)(r1 >> 16) & 0xffff, (uint32_t)r1 & 0xfff,
             (uint32_t)(r2 >> 52) & 0xfff, (uint64_t)(r2 & 0xffffffffffffull));
    op->api = api;
    op->created_ms = vg_wall_ms();
    op->pid = p->pid;
    proc_uid(p, op->uid);
    op->proc_name = vg_strdup(p->name);
    op->egress = egress ? vg_strdup(egress) : NULL;
    op->type = t;
    op->gen = d->gen;
    vg__gen_ref(op->gen);
    op->work.data = op;
    if (!egress) {
        /* streamed back to the client; not listed under /operations */
        char disp[160];
        snprintf(disp, sizeof(disp), "attachment; filename=\"core_%d\"", p->pid);
        vg_http_res_header(res, "Content-Disposition", disp);
        if (vg_http_res_stream(res, 200, "application/octet-stream", &op->stream) != 0) {
            vg__gen_unref(op->gen);
            free(op->proc_name);
            free(op);
            return;
        }
    }
    if (uv_queue_work(d->loop, &op->work, dump_work, dump_after) != 0) {
        if (op->stream)
            vg_http_stream_end(op->stream, VG_EIO);
        else
            vg_http_res_error(res, VG_EIO, "cannot start the dump");
        vg__gen_unref(op->gen);
        free(op->proc_name);
        free(op->egress);
        free(op);
        return;
    }
    api->dumps_running++;
    d->runs_active++;
    op->next = api->ops;
    api->ops = op;
    if (egress) {
        char loc[64];
        snprintf(loc, sizeof(loc), "/operations/%s", op->id);
        vg_http_res_header(res, "Location", loc);
        vg_http_res_json(res, 202, op_json(op));
    }
}

static struct vg_op *find_op(struct vg_api *api, const char *id)
{
    for (struct vg_op *op = api->ops; op; op = op->next)
        if (op->egress && strcasecmp(op->id, id) == 0)
            return op;
    return NULL;
}

/* An upload's progress, for operations waiting on it and uploads no operation owns. */
static json_t *upload_json(const struct vg_egress_upload_info *u)
{
    return json_pack("{s:o, s:s, s:I, s:I, s:i}", "artifactName", jstr(u->name), "state", u->state,
                     "size", (json_int_t)u->size, "bytesDone", (json_int_t)u->bytes_done, "retries",
                     (int)u->retries);
}

/* op_json after op_sync; an operation waiting for its upload shows the upload. */
static json_t *op_json_now(struct vg_api *api, struct vg_op *op)
{
    op_sync(api, op);
    json_t *o = op_json(op);
    struct vg_egress_upload_info x;
    if (op->pending &&
        !vg_egress_upload_get(api->d->gen->egress, atomic_load(&op->upload_id), &x)) {
        json_object_set_new(o, "upload", upload_json(&x));
        if (x.last_error)
            json_object_set_new(o, "error", jstr(x.last_error));
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

static void h_operations(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    json_t *arr = json_array();
    for (struct vg_op *op = api->ops; op; op = op->next)
        if (op->egress)
            json_array_append_new(arr, op_json_now(api, op));
    /* Uploads still waiting for their provider that no operation of this run owns (left by an
     * earlier run): the artifact's journey has not ended. */
    struct vg_egress_upload_info *up = NULL;
    size_t n = 0;
    if (vg_egress_uploads(api->d->gen->egress, 100, &up, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if ((strcmp(up[i].state, "pending") != 0 && strcmp(up[i].state, "uploading") != 0) ||
                upload_has_op(api, up[i].id))
                continue;
            char id[40];
            snprintf(id, sizeof(id), "upload-%lld", (long long)up[i].id);
            json_t *o = json_pack(
                "{s:s, s:s, s:o, s:n, s:s, s:o, s:b}", "operationId", id, "status", "Running",
                "createdDateTime", iso_time(up[i].created_ms), "resourceLocation",
                "egressProviderName", up[i].provider, "error",
                up[i].last_error ? jstr(up[i].last_error) : json_null(), "isStoppable", 0);
            json_object_set_new(o, "upload", upload_json(&up[i]));
            json_array_append_new(arr, o);
        }
        vg_egress_uploads_free(up, n);
    }
    vg_http_res_json(res, 200, arr);
}

static void h_operation(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct vg_op *op = find_op(api, vg_http_req_param(req, "id"));
    if (!op) {
        vg_http_res_problem(res, 404, VG_ENOTFOUND, "no operation %s",
                            vg_http_req_param(req, "id"));
        return;
    }
    json_t *o = op_json_now(api, op);
    vg_http_res_json(res, op->status == OP_SUCCEEDED ? 201 : 200, o);
}

static void h_operation_cancel(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct vg_op *op = find_op(api, vg_http_req_param(req, "id"));
    if (!op) {
        vg_http_res_problem(res, 404, VG_ENOTFOUND, "no operation %s",
                            vg_http_req_param(req, "id"));
        return;
    }
    op_sync(api, op);
    if (op->status != OP_RUNNING) {
        vg_http_res_problem(res, 400, VG_ESTATE, "operation %s is already %s", op->id,
                            op_status_names[op->status]);
        return;
    }
    atomic_store(&op->cancel, true);
    /* The upload stops wherever it is (the worker's commit, the resume worker, or waiting for
     * a retry) and is undone; the operation says Cancelled only after that. */
    int64_t up = atomic_load(&op->upload_id);
    if (up)
        vg_egress_upload_cancel(api->d->gen->egress, up);
    op_sync(api, op);
    vg_http_res_text(res, 200, "text/plain", "", 0);
}

/* ---------- /info, /healthz ---------- */

static void h_info(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct vg_daemon *d = api->d;
    json_t *dirs = json_array();
    for (size_t i = 0; i < d->gen->cfg->n_dirs; i++)
        json_array_append_new(dirs, jstr(d->gen->cfg->dirs[i]));
    json_t *triggers = json_array(), *actions = json_array(), *egress = json_array();
    for (size_t i = 0; i < vg_trigger_types_count; i++)
        if (!(vg_trigger_types[i]->flags & VG_TRIGGER_NEEDS_RUNTIME))
            json_array_append_new(triggers, json_string(vg_trigger_types[i]->name));
    for (size_t i = 0; i < vg_action_types_count; i++)
        if (vg__action_runner_find(vg_action_types[i]->name))
            json_array_append_new(actions, json_string(vg_action_types[i]->name));
    for (size_t i = 0; i < d->gen->cfg->settings.n_egress; i++)
        json_array_append_new(egress, json_string(d->gen->cfg->settings.egress[i].name));
    json_t *o = json_pack(
        "{s:s, s:s, s:o, s:o, s:o, s:o}", "version", VG_VERSION, "operatingSystem", "linux",
        "configDirs", dirs, "stateDir", jstr(d->state_dir), "configLoaded",
        iso_time(d->gen->loaded_ms), "capabilities",
        json_pack("{s:o, s:o, s:o, s:[ssss]}", "triggers", triggers, "actions", actions,
                  "egressProviders", egress, "dumpTypes", "Full", "WithHeap", "Mini", "Triage"));
    json_object_set_new(o, "configurationErrors",
                        d->reload_error ? json_string(d->reload_error) : json_null());
    vg_http_res_json(res, 200, o);
}

static void h_healthz(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    vg_http_res_text(res, 200, "text/plain", "ok\n", 3);
}

/* ---------- /metrics ---------- */

static void label_escape(struct vg_buf *b, const char *s)
{
    struct vg_buf u;
    vg_buf_init(&u);
    vg_http_utf8_append(&u, s, strlen(s));
    for (size_t i = 0; i < u.len; i++) {
        char c = u.data[i];
        if (c == '\\' || c == '"')
            vg_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            vg_buf_puts(b, "\\n");
        else
            vg_buf_append(b, &c, 1);
    }
    vg_buf_free(&u);
}

static void put_value(struct vg_buf *b, double v)
{
    if (isnan(v))
        vg_buf_puts(b, "NaN");
    else if (v == floor(v) && fabs(v) < 9e15)
        vg_buf_printf(b, "%.0f", v);
    else
        vg_buf_printf(b, "%.6g", v);
}

static void family(struct vg_buf *b, const char *name, const char *type, const char *help)
{
    vg_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void h_metrics(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_api *api = ud;
    struct vg_daemon *d = api->d;
    struct vg_buf b;
    vg_buf_init(&b);
    for (int m = 0; m < VG_METRIC_COUNT; m++) {
        const struct vg_metric_def *def = &vg_metric_defs[m];
        bool any = false;
        for (struct vg_proc *p = vg_proc_table_next(d->procs, NULL); p;
             p = vg_proc_table_next(d->procs, p)) {
            struct vg_watched *w = p->user;
            if (!w || !w->has_sample || !vg_sample_has(&w->last, (enum vg_metric_id)m))
                continue;
            if (!any)
                family(&b, def->name, def->kind == VG_COUNTER ? "counter" : "gauge", def->help);
            any = true;
            vg_buf_printf(&b, "%s{pid=\"%d\",name=\"", def->name, p->pid);
            label_escape(&b, p->name);
            vg_buf_printf(&b, "\",runtime=\"%s\"} ", runtime_name(p));
            put_value(&b, w->last.v[m]);
            vg_buf_puts(&b, "\n");
        }
    }
    struct vg_daemon_counters *c = &d->counters;
    struct {
        const char *name, *type, *help;
        double v;
    } own[] = {
        {"vigil_up", "gauge", "1 while the daemon runs", 1},
        {"vigil_processes", "gauge", "Processes currently discovered", (double)c->processes},
        {"vigil_rules", "gauge", "Collection rules loaded", (double)d->gen->rules->n_rules},
        {"vigil_rules_fired_total", "counter", "Rule triggers that started an action list",
         (double)c->rules_fired},
        {"vigil_actions_started_total", "counter", "Actions started", (double)c->actions_started},
        {"vigil_actions_succeeded_total", "counter", "Actions that succeeded",
         (double)c->actions_succeeded},
        {"vigil_actions_failed_total", "counter", "Actions that failed", (double)c->actions_failed},
        {"vigil_config_reloads_succeeded_total", "counter", "Configuration reloads applied",
         (double)c->reloads_ok},
        {"vigil_config_reloads_failed_total", "counter", "Configuration reloads rejected",
         (double)c->reloads_failed},
        {"vigil_sample_duration_seconds", "gauge",
         "Duration of the last discovery and sampling sweep", (double)c->sample_duration_us / 1e6},
    };
    for (size_t i = 0; i < VG_ARRAY_SIZE(own); i++) {
        family(&b, own[i].name, own[i].type, own[i].help);
        vg_buf_printf(&b, "%s ", own[i].name);
        put_value(&b, own[i].v);
        vg_buf_puts(&b, "\n");
    }
    struct vg_egress_status es;
    vg_egress_status(d->gen->egress, &es);
    struct {
        const char *name, *type, *help;
        uint64_t v;
    } eg[] = {
        {"vigil_uploads_started_total", "counter", "Uploads started (including resumed)",
         es.uploads_started},
        {"vigil_uploads_succeeded_total", "counter", "Uploads confirmed by the provider",
         es.uploads_succeeded},
        {"vigil_uploads_failed_total", "counter", "Uploads that failed", es.uploads_failed},
        {"vigil_uploads_retrying", "gauge", "Uploads waiting to retry", es.uploads_retrying},
        {"vigil_upload_retries_total", "counter", "Upload retries", es.retries},
        {"vigil_upload_bytes_total", "counter", "Bytes accepted by egress providers",
         es.bytes_uploaded},
        {"vigil_spool_bytes", "gauge", "Bytes held in the spool directory", es.spool_bytes},
        {"vigil_spool_quota_bytes", "gauge", "Spool quota in effect", es.spool_quota},
    };
    for (size_t i = 0; i < VG_ARRAY_SIZE(eg); i++) {
        family(&b, eg[i].name, eg[i].type, eg[i].help);
        vg_buf_printf(&b, "%s %" PRIu64 "\n", eg[i].name, eg[i].v);
    }
    vg_http_res_text(res, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
                     b.len);
    vg_buf_free(&b);
}

/* ---------- lifecycle ---------- */

static void server_closed(struct vg_http_server *s, void *ud)
{
    struct vg_api *api = ud;
    while (api->ops) {
        struct vg_op *n = api->ops->next;
        free(api->ops->rule);
        free(api->ops->proc_name);
        free(api->ops->egress);
        free(api->ops->location);
        free(api->ops->error);
        free(api->ops);
        api->ops = n;
    }
    free(api);
}

int vg__api_start(struct vg_daemon *d, struct vg_api **out)
{
    const struct vg_server_settings *ss = &d->gen->cfg->settings.server;
    struct vg_api *api = calloc(1, sizeof(*api));
    if (!api)
        return VG_ENOMEM;
    api->d = d;
    api->max_dumps = ss->max_concurrent_dumps ? ss->max_concurrent_dumps : 1;
    struct vg_http_config hc;
    vg_http_config_init(&hc);
    vg_http_config_from_settings(&hc, ss);
    hc.no_auth = d->opts->no_auth;
    int rc = vg_http_server_create(d->loop, &hc, &api->http);
    if (rc) {
        free(api);
        return rc;
    }
    struct {
        const char *method, *pattern;
        unsigned flags;
        vg_http_handler h;
    } routes[] = {
        {"GET", "/healthz", VG_HTTP_ROUTE_OPEN, h_healthz},
        {"GET", "/metrics", VG_HTTP_ROUTE_OPEN, h_metrics},
        {"GET", "/info", 0, h_info},
        {"GET", "/processes", 0, h_processes},
        {"GET", "/process", 0, h_process},
        {"GET", "/collectionrules", 0, h_rules},
        {"GET", "/collectionrules/{name}", 0, h_rule},
        {"GET", "/instances", 0, h_instances},
        {"GET", "/dump", VG_HTTP_ROUTE_NO_HEAD, h_dump},
        {"GET", "/operations", 0, h_operations},
        {"GET", "/operations/{id}", 0, h_operation},
        {"DELETE", "/operations/{id}", 0, h_operation_cancel},
    };
    for (size_t i = 0; i < VG_ARRAY_SIZE(routes); i++)
        vg_http_route(api->http, routes[i].method, routes[i].pattern, routes[i].flags, routes[i].h,
                      api);
    if (d->opts->no_auth)
        vg_log(VG_LOG_WARN, "api", "--no-auth: the API accepts requests without a key");
    bool api_ok = d->opts->no_auth || ss->api_key_hash;
    const char *const *urls = d->opts->n_urls ? d->opts->urls : ss->urls;
    size_t n_urls = d->opts->n_urls ? d->opts->n_urls : ss->n_urls;
    static const char *const def_urls[] = {"http://127.0.0.1:52323"};
    static const char *const def_metrics[] = {"http://127.0.0.1:52325"};
    if (!n_urls) {
        urls = def_urls;
        n_urls = 1;
    }
    if (!api_ok)
        vg_log(VG_LOG_ERROR, "api",
               "API disabled: no Server.Auth.ApiKeyHash is configured and --no-auth was not "
               "given (run `vigil generatekey`)");
    for (size_t i = 0; api_ok && i < n_urls; i++) {
        if ((rc = vg_http_listen(api->http, urls[i], true))) {
            vg_log(VG_LOG_ERROR, "api", "cannot listen on %s: %s", urls[i], vg_strerror(rc));
            goto fail;
        }
        vg_log(VG_LOG_INFO, "api", "API listening on %s", urls[i]);
    }
    if (ss->metrics_enabled) {
        const char *const *m = ss->n_metrics_urls ? ss->metrics_urls : def_metrics;
        size_t nm = ss->n_metrics_urls ? ss->n_metrics_urls : 1;
        for (size_t i = 0; i < nm; i++) {
            if ((rc = vg_http_listen(api->http, m[i], false))) {
                vg_log(VG_LOG_ERROR, "api", "cannot listen on %s: %s", m[i], vg_strerror(rc));
                goto fail;
            }
            vg_log(VG_LOG_INFO, "api", "metrics listening on %s", m[i]);
        }
    }
    *out = api;
    return 0;
fail:
    vg_http_server_close(api->http, server_closed, api);
    return rc;
}

void vg__api_stop(struct vg_api *api)
{
    if (api)
        vg_http_server_close(api->http, server_closed, api);
}
