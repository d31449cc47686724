/* dotnet-monitor's artifact routes besides /dump, for every runtime whose adapter runs the action:
 * GET /gcdump (CollectGCDump: a JVM's HPROF, Node's heap snapshot), GET and POST /trace
 * (CollectTrace: .NET's nettrace, a JVM's JFR recording, Node's CPU profile), GET /stacks
 * (CollectStacks: a JVM's Thread.print, Node's diagnostic report), GET and POST /logs
 * (CollectLogs) and /livemetrics (CollectLiveMetrics) for .NET. Each handler turns the query
 * (and body) into the action's typed settings; vg__artifact_collect (operations.c) runs it as
 * /dump runs a dump. Limits per kind as dotnet-monitor's RequestLimits: 1 gcdump, 3 traces,
 * 1 stacks, 3 logs, 3 livemetrics requests at a time (struct route). */
#include "engine/api_int.h"

#include "config/error.h"
#include "config/source.h"
#include "config/tree.h"
#include "config/util.h"
#include "rules/action.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A route: its action, its limit (dotnet-monitor's RequestLimits) and, where vigil knows more
 * than "no runner", why .NET processes lack it. */
struct route {
    const char *action, *path, *what;
    const char *content_type; /* of a streamed answer; NULL: the format's (the adapter's) */
    size_t running;           /* offsetof the counter in struct vg_api */
    unsigned max;
    const char *limit;
    const char *dotnet_why;
    /* A streamed answer holds whole records as they come (logs, live metrics): one cut short by
     * its client is still readable, so durationSeconds=-1 may stream until the client leaves. */
    bool records;
};

static const struct route gcdump_route = {
    .action = "CollectGCDump",
    .path = "/gcdump",
    .what = "gcdump",
    .content_type = "application/octet-stream",
    .running = offsetof(struct vg_api, gcdumps_running),
    .max = 1,
    .limit = "one at a time, as dotnet-monitor",
    .dotnet_why = "vigil has no .gcdump writer for .NET (dotnet-monitor builds one from a GC heap "
                  "walk over EventPipe; vigil does not collect it yet): use /dump?type=WithHeap "
                  "for the managed heap",
};
static const struct route trace_route = {
    .action = "CollectTrace",
    .path = "/trace",
    .what = "trace",
    .content_type = "application/octet-stream",
    .running = offsetof(struct vg_api, traces_running),
    .max = 3,
    .limit = "three at a time, as dotnet-monitor",
};
static const struct route stacks_route = {
    .action = "CollectStacks",
    .path = "/stacks",
    .what = "stacks",
    .running = offsetof(struct vg_api, stacks_running),
    .max = 1,
    .limit = "one at a time, as dotnet-monitor",
    .dotnet_why = "vigil does not collect .NET call stacks yet (dotnet-monitor takes them with its "
                  "in-process feature)",
};

/* Runs r's action with set (taken over, freed with free_set). */
static void collect(struct vg_api *api, struct vg_http_req *req, struct vg_http_res *res,
                    struct vg_proc *p, const struct route *r, void *set, void (*free_set)(void *))
{
    const struct vg__artifact_req ar = {
        .action = r->action,
        .what = r->what,
        .content_type = r->content_type,
        .settings = set,
        .free_settings = free_set,
        .running = (unsigned *)(void *)((char *)api + r->running),
        .max = r->max,
        .limit = r->limit,
    };
    vg__artifact_collect(api, req, res, p, &ar);
}

/* The runtime of p runs the route's action; else answers 400 (VG_EUNSUPPORTED), naming the
 * runtimes that do. */
static bool runs(struct vg_http_req *req, struct vg_http_res *res, const struct vg_proc *p,
                 const struct route *r)
{
    const struct vg_runtime_type *rt = p->runtime ? p->runtime : &vg_runtime_native;
    if (vg_runtime_action(rt, r->action))
        return true;
    char which[128] = "";
    size_t len = 0;
    for (size_t i = 0; vg_runtime_types[i]; i++)
        if (vg_runtime_action(vg_runtime_types[i], r->action) && len < sizeof(which))
            len += (size_t)snprintf(which + len, sizeof(which) - len, "%s%s", len ? ", " : "",
                                    vg_runtime_types[i]->display);
    const char *why = strcmp(rt->name, "dotnet") == 0 && r->dotnet_why
                          ? r->dotnet_why
                          : "its runtime adapter does not run the action";
    vg_http_res_problem(res, 400, VG_EUNSUPPORTED,
                        "%s %s is not supported for pid %d (%s): %s; it is for %s processes",
                        vg_http_req_method(req), r->path, vg__proc_pid(p), rt->display, why, which);
    return false;
}

/* The target and zeroed settings of `size` for route r; NULL after answering. */
static void *begin(struct vg_api *api, struct vg_http_req *req, struct vg_http_res *res,
                   const struct route *r, size_t size, struct vg_proc **p)
{
    *p = vg__api_select_process(api, req, res);
    if (!*p || !runs(req, res, *p, r))
        return NULL;
    void *set = calloc(1, size);
    if (!set)
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
    return set;
}

VG__HANDLER(gcdump)
{
    struct vg_api *api = ud;
    struct vg_proc *p;
    struct vg_act_collect_gcdump *set = begin(api, req, res, &gcdump_route, sizeof(*set), &p);
    if (set)
        collect(api, req, res, p, &gcdump_route, set, free);
}

/* ---- /trace ---- */

/* CollectTrace's settings and what they point into. */
struct trace_req {
    struct vg_act_collect_trace set; /* first: the settings pointer is the request's */
    char *profile;
    struct vg_tree *body; /* POST: the parsed EventProvidersConfiguration */
};

static void trace_req_free(void *p)
{
    struct trace_req *tr = p;
    if (!tr)
        return;
    free(tr->profile);
    vg_tree_destroy(tr->body);
    free(tr);
}

/* durationSeconds: dotnet-monitor's default 30; vigil's range is the actions' Duration's (1 s
 * to 1 day), or dotnet-monitor's -1: until stopped (*ms 0). -1 needs a runner that can stop early
 * and keep what it has (.NET's), and, for a trace, an egress provider: a nettrace is readable only
 * once stopped, and a streamed answer has no operation to stop it with (a client leaving cancels
 * it). Logs and live metrics stream their records until the client leaves. */
static bool parse_duration(struct vg_http_req *req, struct vg_http_res *res,
                           const struct vg_proc *p, const struct route *r, uint64_t *ms)
{
    const char *v = vg_http_req_query(req, "durationSeconds");
    *ms = 30000;
    if (!v)
        return true;
    char *end;
    long s = strtol(v, &end, 10);
    if (!*v || *end) {
        vg_http_res_problem(res, 400, VG_EINVAL, "durationSeconds must be a number, got \"%s\"", v);
        return false;
    }
    if (s == -1) {
        const struct vg_runtime_type *rt = p->runtime ? p->runtime : &vg_runtime_native;
        const struct vg_rt_action *runner = vg_runtime_action(rt, r->action);
        if (runner && !runner->stoppable) { /* without a runner runs() says why */
            vg_http_res_problem(res, 400, VG_EUNSUPPORTED,
                                "durationSeconds=-1 (until stopped) is not supported for pid %d "
                                "(%s): vigil cannot stop its %s early and keep it, so give a "
                                "duration (1 to 86400)",
                                vg__proc_pid(p), rt->display, r->what);
            return false;
        }
        if (!r->records && !vg_http_req_query(req, "egressProvider")) {
            vg_http_res_problem(res, 400, VG_EUNSUPPORTED,
                                "durationSeconds=-1 (until stopped) needs egressProvider for a "
                                "%s: it is readable only once stopped (DELETE "
                                "/operations/{id}?stop=true), and a streamed answer is no "
                                "operation vigil can stop (a client leaving cancels it)",
                                r->what);
            return false;
        }
        *ms = 0;
        return true;
    }
    if (s < 1 || s > 86400) {
        vg_http_res_problem(res, 400, VG_ERANGE,
                            "durationSeconds must be -1 (until stopped) or from 1 to 86400 (one "
                            "day), got %ld",
                            s);
        return false;
    }
    *ms = (uint64_t)s * 1000;
    return true;
}

/* dotnet-monitor's TraceProfile names, comma-separated, any case. What a runtime cannot record
 * (a JVM or Node with Http, .NET with GcCollect) its adapter refuses. */
static bool profile_ok(const char *profile, char *bad, size_t n)
{
    static const char *const names[] = {"None", "Cpu", "Http", "Logs", "Metrics", "GcCollect"};
    const char *p = profile;
    size_t count = 0;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *w = p;
        size_t wl = len;
        while (wl && *w == ' ')
            w++, wl--;
        while (wl && w[wl - 1] == ' ')
            wl--;
        bool known = false;
        for (size_t i = 0; i < VG_ARRAY_SIZE(names) && !known; i++)
            known = strlen(names[i]) == wl && strncasecmp(names[i], w, wl) == 0;
        if (!known) {
            snprintf(bad, n, "%.*s", (int)wl, w);
            return false;
        }
        count++;
        p += len + (p[len] == ',');
    }
    if (!count)
        snprintf(bad, n, "%s", profile);
    return count > 0;
}

static struct trace_req *trace_req_new(struct vg_http_res *res)
{
    struct trace_req *tr = calloc(1, sizeof(*tr));
    if (!tr) {
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return NULL;
    }
    tr->set.request_rundown = true;
    tr->set.buffer_size_mb = 256;
    return tr;
}

VG__HANDLER(trace)
{
    struct vg_api *api = ud;
    struct vg_proc *p = vg__api_select_process(api, req, res);
    uint64_t ms;
    if (!p || !parse_duration(req, res, p, &trace_route, &ms))
        return;
    const char *profile = vg_http_req_query(req, "profile");
    char bad[64];
    if (profile && !profile_ok(profile, bad, sizeof(bad))) {
        vg_http_res_problem(res, 400, VG_EINVAL,
                            "profile must be Cpu, Http, Logs, Metrics, GcCollect or None "
                            "(comma-separated), got \"%s\"",
                            bad);
        return;
    }
    if (!runs(req, res, p, &trace_route))
        return;
    struct trace_req *tr = trace_req_new(res);
    if (!tr)
        return;
    /* dotnet-monitor's default for the route */
    tr->profile = vg_strdup(profile ? profile : "Cpu,Http,Metrics");
    if (!tr->profile) {
        trace_req_free(tr);
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return;
    }
    tr->set.profile = tr->profile;
    tr->set.duration_ms = ms;
    collect(api, req, res, p, &trace_route, tr, trace_req_free);
}

static const char *const event_levels[] = {"LogAlways", "Critical",      "Error",
                                           "Warning",   "Informational", "Verbose"};

/* dotnet-monitor's EventProvidersConfiguration: Providers (at least one, each with a Name),
 * RequestRundown, BufferSizeInMB (1-1024). Property names in any case, as ASP.NET binds them.
 * Returns NULL, or why the body is refused (err may hold it). */
static const char *check_body(const struct vg_node *root, struct trace_req *tr, char *err, size_t n)
{
    if (!root || root->kind != VG_NODE_MAP)
        return "the body must be a JSON object (EventProvidersConfiguration)";
    const struct vg_node *prov = vg_node_get(root, "Providers");
    if (!prov || prov->kind != VG_NODE_SEQ || prov->n == 0)
        return "Providers must be a list of at least one event provider";
    for (size_t i = 0; i < prov->n; i++) {
        const struct vg_node *it = prov->items[i];
        const char *name = vg_node_str(vg_node_get(it, "Name"));
        if (!it || it->kind != VG_NODE_MAP || !name || !*name) {
            snprintf(err, n, "Providers[%zu] must be an object with a Name", i);
            return err;
        }
        const char *kw = vg_node_str(vg_node_get(it, "Keywords"));
        if (kw && *kw) {
            char *end;
            (void)strtoull(kw, &end, 0);
            if (*end) {
                snprintf(err, n, "Providers[%zu].Keywords must be a number (decimal or 0x...)", i);
                return err;
            }
        }
        const char *lv = vg_node_str(vg_node_get(it, "EventLevel"));
        bool ok = !lv;
        for (size_t j = 0; lv && j < VG_ARRAY_SIZE(event_levels) && !ok; j++)
            ok = strcasecmp(lv, event_levels[j]) == 0;
        if (!ok) {
            snprintf(err, n,
                     "Providers[%zu].EventLevel must be LogAlways, Critical, Error, Warning, "
                     "Informational or Verbose",
                     i);
            return err;
        }
        const struct vg_node *args = vg_node_get(it, "Arguments");
        if (args && !vg_node_is_null(args) && args->kind != VG_NODE_MAP) {
            snprintf(err, n, "Providers[%zu].Arguments must be an object of strings", i);
            return err;
        }
    }
    const struct vg_node *rd = vg_node_get(root, "RequestRundown");
    if (rd && !vg_node_is_null(rd)) {
        const char *v = vg_node_str(rd);
        if (!v || (strcmp(v, "true") && strcmp(v, "false")))
            return "RequestRundown must be true or false";
        tr->set.request_rundown = strcmp(v, "true") == 0;
    }
    const struct vg_node *bs = vg_node_get(root, "BufferSizeInMB");
    if (bs && !vg_node_is_null(bs)) {
        const char *v = vg_node_str(bs);
        char *end = NULL;
        long mb = v ? strtol(v, &end, 10) : 0;
        if (!v || !*v || *end || mb < 1 || mb > 1024)
            return "BufferSizeInMB must be from 1 to 1024";
        tr->set.buffer_size_mb = mb;
    }
    tr->set.providers = prov;
    return NULL;
}

static bool json_content_type(const char *ct)
{
    if (!ct)
        return true; /* as curl -d without -H: read it as JSON */
    size_t len = strcspn(ct, ";");
    while (len && ct[len - 1] == ' ')
        len--;
    char t[128];
    snprintf(t, sizeof(t), "%.*s", (int)len, ct);
    /* dotnet-monitor's: application/json, text/json, application/...+json */
    size_t tl = strlen(t);
    return !strcasecmp(t, "application/json") || !strcasecmp(t, "text/json") ||
           (!strncasecmp(t, "application/", 12) && tl > 17 && !strcasecmp(t + tl - 5, "+json"));
}

/* The JSON body of a POST route (`what` names its type for messages): *tree holds it, *doc is
 * its root. false after answering (415, 400). */
static bool parse_body(struct vg_http_req *req, struct vg_http_res *res, const char *what,
                       const char *example, struct vg_tree **tree, struct vg_node **doc)
{
    if (!json_content_type(vg_http_req_header(req, "Content-Type"))) {
        vg_http_res_problem(res, 415, VG_EINVAL, "the body must be application/json (a %s)", what);
        return false;
    }
    size_t len = 0;
    const char *body = vg_http_req_body(req, &len);
    if (!body || !len) {
        vg_http_res_problem(res, 400, VG_EINVAL, "a body is required: a %s, %s", what, example);
        return false;
    }
    struct vg_diags diags;
    vg_diags_init(&diags);
    int rc = (*tree = vg_tree_create())
                 ? vg_source_parse(*tree, "body", body, len, true, &diags, doc)
                 : VG_ENOMEM;
    if (rc == VG_ENOMEM) {
        vg_http_res_error(res, rc, "out of memory");
    } else if (rc) {
        char *d = diags.n ? vg_diag_format(&diags.v[0]) : NULL;
        vg_http_res_problem(res, 400, VG_EPARSE, "the body is not valid JSON: %s",
                            d ? d : vg_strerror(rc));
        free(d);
    } else if (!*doc || (*doc)->kind != VG_NODE_MAP) {
        vg_http_res_problem(res, 400, VG_EINVAL, "the body must be a JSON object (a %s)", what);
        rc = VG_EINVAL;
    }
    vg_diags_free(&diags);
    return rc == 0;
}

VG__HANDLER(trace_custom)
{
    struct vg_api *api = ud;
    struct vg_proc *p = vg__api_select_process(api, req, res);
    uint64_t ms;
    struct vg_tree *tree = NULL;
    struct vg_node *doc = NULL;
    if (!p || !parse_duration(req, res, p, &trace_route, &ms) ||
        !parse_body(req, res, "EventProvidersConfiguration", "{\"Providers\": [{\"Name\": ...}]}",
                    &tree, &doc) ||
        !runs(req, res, p, &trace_route)) {
        vg_tree_destroy(tree);
        return;
    }
    struct trace_req *tr = trace_req_new(res);
    if (!tr) {
        vg_tree_destroy(tree);
        return;
    }
    tr->body = tree;
    char err[256];
    const char *why = check_body(doc, tr, err, sizeof(err));
    if (why) {
        vg_http_res_problem(res, 400, VG_EINVAL, "%s", why);
        trace_req_free(tr);
        return;
    }
    tr->set.duration_ms = ms;
    collect(api, req, res, p, &trace_route, tr, trace_req_free);
}

/* ---- /stacks ---- */

struct media {
    const char *type;
    int format;
};

/* Whether the media range w (wl bytes: a type, a type's wildcard or the any-type wildcard)
 * holds type t. */
static bool in_range(const char *w, size_t wl, const char *t, bool wildcards)
{
    if (wl == strlen(t) && !strncasecmp(w, t, wl))
        return true;
    if (!wildcards || wl < 3 || w[wl - 1] != '*' || w[wl - 2] != '/')
        return false;
    return (wl == 3 && w[0] == '*') || !strncasecmp(w, t, wl - 1);
}

/* The first of types (in their order) that a range of the Accept header names exactly, then, with
 * wildcards, the first a wildcard range holds, as dotnet-monitor reads it (Contains, then
 * IsSubsetOf); -1 when none. */
static int accept_format(const char *accept, const struct media *types, size_t n, bool wildcards)
{
    for (int pass = 0; pass < 1 + wildcards; pass++) {
        for (size_t k = 0; accept && k < n; k++) {
            for (const char *p = accept; *p;) {
                size_t len = strcspn(p, ",");
                const char *w = p;
                size_t wl = strcspn(w, ";,");
                while (wl && (*w == ' ' || *w == '\t'))
                    w++, wl--;
                while (wl && (w[wl - 1] == ' ' || w[wl - 1] == '\t'))
                    wl--;
                if (in_range(w, wl, types[k].type, pass == 1))
                    return types[k].format;
                p += len + (p[len] == ',');
            }
        }
    }
    return -1;
}

VG__HANDLER(stacks)
{
    struct vg_api *api = ud;
    struct vg_proc *p;
    struct vg_act_collect_stacks *set = begin(api, req, res, &stacks_route, sizeof(*set), &p);
    if (!set)
        return;
    /* as dotnet-monitor: text/plain, then application/json, then application/speedscope+json;
     * no exact one named (absent, or only wildcards): the runtime's own, PlainText first */
    static const struct media types[] = {{"text/plain", VG_STACKS_PLAIN_TEXT},
                                         {"application/json", VG_STACKS_JSON},
                                         {"application/speedscope+json", VG_STACKS_SPEEDSCOPE}};
    int f = accept_format(vg_http_req_header(req, "Accept"), types, VG_ARRAY_SIZE(types), false);
    if (f >= 0) {
        set->format = f;
    } else {
        /* no format asked for: dotnet-monitor's default (PlainText) where the runtime writes
         * it, else the runtime's own (Node's report is JSON) */
        const struct vg_rt_action *a =
            vg_runtime_action(p->runtime ? p->runtime : &vg_runtime_native, "CollectStacks");
        struct vg_rt_target t;
        char why[256];
        set->format = VG_STACKS_PLAIN_TEXT;
        if (a && a->check && vg_rt_target_init(&t, p) == 0) {
            if (a->check(&t, set, why, sizeof(why)) == VG_EUNSUPPORTED) {
                set->format = VG_STACKS_JSON;
                if (a->check(&t, set, why, sizeof(why)) == VG_EUNSUPPORTED)
                    set->format = VG_STACKS_SPEEDSCOPE;
            }
            vg_rt_target_free(&t);
        }
    }
    collect(api, req, res, p, &stacks_route, set, free);
}

/* ---- /logs ---- */

static const struct route logs_route = {
    .action = "CollectLogs",
    .path = "/logs",
    .what = "logs",
    .running = offsetof(struct vg_api, logs_running),
    .max = 3,
    .limit = "three at a time, as dotnet-monitor",
    .records = true,
};

/* /logs' and /livemetrics' settings and the body (POST) they point into. */
struct body_req {
    union {
        struct vg_act_collect_logs logs;
        struct vg_act_collect_live_metrics metrics;
    } set;                /* first: the settings pointer is the request's */
    struct vg_tree *body; /* POST: the parsed LogsConfiguration or EventMetricsConfiguration */
};

static void body_req_free(void *p)
{
    struct body_req *br = p;
    if (!br)
        return;
    vg_tree_destroy(br->body);
    free(br);
}

/* A body route's steps: its target and settings from the query (NULL after answering), the body
 * checked into them (NULL, or why it is refused). */
typedef struct body_req *(*begin_fn)(struct vg_api *api, struct vg_http_req *req,
                                     struct vg_http_res *res, struct vg_proc **p);
typedef const char *(*check_fn)(const struct vg_node *root, struct body_req *br, char *err,
                                size_t n);

/* POST r: the JSON body (a `type`), the query's settings, the body's, then the collection. */
static void post(struct vg_api *api, struct vg_http_req *req, struct vg_http_res *res,
                 const struct route *r, const char *type, const char *example, begin_fn start,
                 check_fn check)
{
    struct vg_tree *tree = NULL;
    struct vg_node *doc = NULL;
    if (!parse_body(req, res, type, example, &tree, &doc))
        return;
    struct vg_proc *p;
    struct body_req *br = start(api, req, res, &p);
    if (!br) {
        vg_tree_destroy(tree);
        return;
    }
    br->body = tree;
    char err[256];
    const char *why = check(doc, br, err, sizeof(err));
    if (why) {
        vg_http_res_problem(res, 400, VG_EINVAL, "%s", why);
        body_req_free(br);
        return;
    }
    collect(api, req, res, p, r, br, body_req_free);
}

static const char *const log_levels[] = {"Trace", "Debug",    "Information", "Warning",
                                         "Error", "Critical", "None"};

/* enum vg_log_level_setting of a LogLevel name (any case), -1 if none. */
static int log_level(const char *s)
{
    for (size_t i = 0; s && i < VG_ARRAY_SIZE(log_levels); i++)
        if (!strcasecmp(s, log_levels[i]))
            return (int)i;
    return -1;
}

/* The process, the duration and the format (from Accept, as dotnet-monitor: 406 when it names
 * none of text/plain, application/x-ndjson, application/json-seq); NULL after answering. */
static struct body_req *logs_begin(struct vg_api *api, struct vg_http_req *req,
                                   struct vg_http_res *res, struct vg_proc **p)
{
    static const struct media types[] = {{"text/plain", VG_FMT_PLAIN_TEXT},
                                         {"application/x-ndjson", VG_FMT_NDJSON},
                                         {"application/json-seq", VG_FMT_JSON_SEQUENCE}};
    uint64_t ms;
    *p = vg__api_select_process(api, req, res);
    if (!*p || !parse_duration(req, res, *p, &logs_route, &ms))
        return NULL;
    int f = accept_format(vg_http_req_header(req, "Accept"), types, VG_ARRAY_SIZE(types), true);
    if (f < 0) {
        vg_http_res_problem(res, 406, VG_EINVAL,
                            "the Accept header must name text/plain, application/x-ndjson or "
                            "application/json-seq (the logs' format)");
        return NULL;
    }
    if (!runs(req, res, *p, &logs_route))
        return NULL;
    struct body_req *lr = calloc(1, sizeof(*lr));
    if (!lr) {
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return NULL;
    }
    lr->set.logs.format = f;
    lr->set.logs.duration_ms = ms;
    lr->set.logs.default_level = VG_LL_WARNING;
    lr->set.logs.use_app_filters = true;
    return lr;
}

VG__HANDLER(logs)
{
    struct vg_api *api = ud;
    struct vg_proc *p;
    const char *level = vg_http_req_query(req, "level");
    int lv = log_level(level);
    if (level && (lv < 0 || lv == VG_LL_NONE)) {
        vg_http_res_problem(res, 400, VG_EINVAL,
                            "level must be Trace, Debug, Information, Warning, Error or Critical, "
                            "got \"%s\"",
                            level);
        return;
    }
    struct body_req *lr = logs_begin(api, req, res, &p);
    if (!lr)
        return;
    /* dotnet-monitor: the level given, without the app's filters; else the app's filters over
     * every level (its pipeline's default, Trace) */
    lr->set.logs.default_level = level ? lv : VG_LL_TRACE;
    lr->set.logs.use_app_filters = !level;
    collect(api, req, res, p, &logs_route, lr, body_req_free);
}

/* dotnet-monitor's LogsConfiguration: logLevel (Warning), filterSpecs (category -> LogLevel or
 * null), useAppFilters (true); names in any case. NULL, or why it is refused (in err). */
static const char *check_logs_body(const struct vg_node *root, struct body_req *lr, char *err,
                                   size_t n)
{
    const struct vg_node *ll = vg_node_get(root, "LogLevel");
    if (ll && !vg_node_is_null(ll)) {
        int lv = log_level(vg_node_str(ll));
        if (lv < 0 || lv == VG_LL_NONE)
            return "LogLevel must be Trace, Debug, Information, Warning, Error or Critical";
        lr->set.logs.default_level = lv;
    }
    const struct vg_node *fs = vg_node_get(root, "FilterSpecs");
    if (fs && !vg_node_is_null(fs)) {
        if (fs->kind != VG_NODE_MAP)
            return "FilterSpecs must be an object: category -> LogLevel or null";
        for (size_t i = 0; i < fs->n; i++) {
            const struct vg_node *v = fs->pairs[i].value;
            if (v && !vg_node_is_null(v) && log_level(vg_node_str(v)) < 0) {
                snprintf(err, n,
                         "FilterSpecs.%s must be Trace, Debug, Information, Warning, Error, "
                         "Critical, None or null",
                         fs->pairs[i].key ? fs->pairs[i].key : "");
                return err;
            }
        }
        lr->set.logs.filter_specs = fs;
    }
    const struct vg_node *ua = vg_node_get(root, "UseAppFilters");
    if (ua && !vg_node_is_null(ua)) {
        const char *v = vg_node_str(ua);
        if (!v || (strcmp(v, "true") && strcmp(v, "false")))
            return "UseAppFilters must be true or false";
        lr->set.logs.use_app_filters = strcmp(v, "true") == 0;
    }
    return NULL;
}

VG__HANDLER(logs_custom)
{
    post(ud, req, res, &logs_route, "LogsConfiguration",
         "{\"logLevel\": \"Information\", \"filterSpecs\": {...}}", logs_begin, check_logs_body);
}

/* ---- /livemetrics ---- */

static const struct route livemetrics_route = {
    .action = "CollectLiveMetrics",
    .path = "/livemetrics",
    .what = "livemetrics",
    .content_type = "application/json-seq",
    .running = offsetof(struct vg_api, livemetrics_running),
    .max = 3,
    .limit = "three at a time, as dotnet-monitor",
    .records = true,
};

static struct body_req *metrics_begin(struct vg_api *api, struct vg_http_req *req,
                                      struct vg_http_res *res, struct vg_proc **p)
{
    uint64_t ms;
    *p = vg__api_select_process(api, req, res);
    if (!*p || !parse_duration(req, res, *p, &livemetrics_route, &ms) ||
        !runs(req, res, *p, &livemetrics_route))
        return NULL;
    struct body_req *mr = calloc(1, sizeof(*mr));
    if (!mr) {
        vg_http_res_error(res, VG_ENOMEM, "out of memory");
        return NULL;
    }
    mr->set.metrics.duration_ms = ms;
    mr->set.metrics.include_default_providers = true;
    return mr;
}

VG__HANDLER(livemetrics)
{
    struct vg_api *api = ud;
    struct vg_proc *p;
    struct body_req *mr = metrics_begin(api, req, res, &p);
    if (mr)
        collect(api, req, res, p, &livemetrics_route, mr, body_req_free);
}

/* A list of {name_key: string, list_key: [string]} (EventMetricsProvider, EventMetricsMeter). */
static const char *check_list(const struct vg_node *l, const char *key, const char *name_key,
                              const char *list_key, char *err, size_t n)
{
    if (l->kind != VG_NODE_SEQ) {
        snprintf(err, n, "%s must be a list of {%s, %s}", key, name_key, list_key);
        return err;
    }
    for (size_t i = 0; i < l->n; i++) {
        const struct vg_node *it = l->items[i];
        const char *name = vg_node_str(vg_node_get(it, name_key));
        const struct vg_node *names = vg_node_get(it, list_key);
        if (!it || it->kind != VG_NODE_MAP || !name || !*name) {
            snprintf(err, n, "%s[%zu] must be an object with a %s", key, i, name_key);
            return err;
        }
        if (names && !vg_node_is_null(names) && names->kind != VG_NODE_SEQ) {
            snprintf(err, n, "%s[%zu].%s must be a list of names", key, i, list_key);
            return err;
        }
        for (size_t j = 0; names && names->kind == VG_NODE_SEQ && j < names->n; j++)
            if (!vg_node_str(names->items[j])) {
                snprintf(err, n, "%s[%zu].%s[%zu] must be a name", key, i, list_key, j);
                return err;
            }
    }
    return NULL;
}

/* dotnet-monitor's EventMetricsConfiguration: includeDefaultProviders (true), providers
 * ({providerName, counterNames}), meters ({meterName, instrumentNames}). */
static const char *check_metrics_body(const struct vg_node *root, struct body_req *mr, char *err,
                                      size_t n)
{
    const struct vg_node *idp = vg_node_get(root, "IncludeDefaultProviders");
    if (idp && !vg_node_is_null(idp)) {
        const char *v = vg_node_str(idp);
        if (!v || (strcmp(v, "true") && strcmp(v, "false")))
            return "IncludeDefaultProviders must be true or false";
        mr->set.metrics.include_default_providers = strcmp(v, "true") == 0;
    }
    const struct vg_node *prov = vg_node_get(root, "Providers");
    const char *why = NULL;
    if (prov && !vg_node_is_null(prov)) {
        if ((why = check_list(prov, "Providers", "ProviderName", "CounterNames", err, n)))
            return why;
        mr->set.metrics.providers = prov;
    }
    const struct vg_node *met = vg_node_get(root, "Meters");
    if (met && !vg_node_is_null(met)) {
        if ((why = check_list(met, "Meters", "MeterName", "InstrumentNames", err, n)))
            return why;
        mr->set.metrics.meters = met;
    }
    return NULL;
}

VG__HANDLER(livemetrics_custom)
{
    post(ud, req, res, &livemetrics_route, "EventMetricsConfiguration",
         "{\"includeDefaultProviders\": false, \"providers\": [{\"providerName\": ...}]}",
         metrics_begin, check_metrics_body);
}
