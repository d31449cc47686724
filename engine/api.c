/* The HTTP API: dotnet-monitor's routes and JSON shapes (/processes, /process,
 * /collectionrules, /dump, /gcdump, /trace, /stacks, /logs, /livemetrics, /operations, /info) plus
 * /metrics (Prometheus, every process) and vigil's /instances and /healthz. This file starts the
 * server, holds the route table and the helpers every route shares; each area's routes live in
 * api_AREA.c (operations.c for /operations and /dump, api_artifacts.c for /gcdump, /trace,
 * /stacks, /logs and /livemetrics). */
#include "engine/api_int.h"

#include "config/defaults.h"
#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "rules/action.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---------- helpers ---------- */

/* A JSON string for s (NULL gives null); never NULL for a non-NULL s, unlike json_string(). */
json_t *vg__json_str(const char *s)
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

void vg__proc_uid(const struct vg_proc *p, char out[40])
{
    /* dotnet-monitor's uid is the runtime instance cookie where the runtime told it */
    struct vg_rt_facts f;
    vg_runtime_facts(p, &f);
    if (f.runtime_id && strlen(f.runtime_id) < 40) {
        snprintf(out, 40, "%s", f.runtime_id);
        return;
    }
    /* Otherwise a stable UUID-shaped id from the process identity (boot id, pid, start time). */
    uint64_t a = p->key, b = p->start_ticks * 0x9e3779b97f4a7c15ull ^ (uint64_t)p->pid;
    snprintf(out, 40, "%08" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "-%012" PRIx64,
             (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffff, (uint32_t)a & 0xffff,
             (uint32_t)(b >> 48) & 0xffff, (uint64_t)(b & 0xffffffffffffull));
}

/* The process DefaultProcess.Filters select, as dotnet-monitor picks the target of a pid-less
 * call: *matches says how many match (1: the returned one). NULL without filters. */
struct vg_proc *vg__api_default_process(struct vg_api *api, size_t *matches)
{
    struct vg_daemon *d = api->d;
    const struct vg_filter_list *fl = &d->gen->cfg->settings.default_process;
    struct vg_proc *found = NULL;
    *matches = 0;
    if (!fl->n)
        return NULL;
    for (struct vg_proc *p = vg_proc_table_next(d->procs, NULL); p;
         p = vg_proc_table_next(d->procs, p)) {
        struct vg_proc_info info;
        vg__proc_info(p, &info);
        if (vg__proc_visible(d, p) && vg_filters_match(fl->v, fl->n, &info)) {
            found = p;
            (*matches)++;
        }
    }
    return *matches == 1 ? found : NULL;
}

/* pid=, uid= or name= select one process; none selects DefaultProcess's. Errors are 400, with
 * dotnet-monitor's messages. */
struct vg_proc *vg__api_select_process(struct vg_api *api, struct vg_http_req *req,
                                       struct vg_http_res *res)
{
    struct vg_daemon *d = api->d;
    const char *pid = vg_http_req_query(req, "pid");
    const char *uid = vg_http_req_query(req, "uid");
    const char *name = vg_http_req_query(req, "name");
    struct vg_proc *found = NULL;
    size_t matches = 0;
    long want_pid = 0;
    if (pid) {
        char *end;
        want_pid = strtol(pid, &end, 10);
        if (!*pid || *end || want_pid <= 0 || want_pid > 4194304) {
            vg_http_res_problem(res, 400, VG_EINVAL, "pid must be a process id, got \"%s\"", pid);
            return NULL;
        }
    }
    if (uid && (strlen(uid) != 36 || strspn(uid, "0123456789abcdefABCDEF-") != 36)) {
        vg_http_res_problem(res, 400, VG_EINVAL, "uid must be a GUID, got \"%s\"", uid);
        return NULL;
    }
    if (!pid && !uid && !name) {
        if (!d->gen->cfg->settings.default_process.n) {
            vg_http_res_problem(res, 400, VG_EINVAL,
                                "No default process configuration has been set: select the "
                                "process with pid=, uid= or name=, or configure "
                                "DefaultProcess.Filters.");
            return NULL;
        }
        found = vg__api_default_process(api, &matches);
    } else {
        for (struct vg_proc *p = vg_proc_table_next(d->procs, NULL); p;
             p = vg_proc_table_next(d->procs, p)) {
            if (!vg__proc_visible(d, p))
                continue;
            char u[40];
            vg__proc_uid(p, u);
            if ((pid && vg__proc_pid(p) != want_pid && p->pid != want_pid) ||
                (uid && strcasecmp(u, uid) != 0) || (name && strcmp(p->name, name) != 0))
                continue;
            found = p;
            matches++;
        }
    }
    if (matches == 1)
        return found;
    if (matches == 0)
        vg_http_res_problem(res, 400, VG_ENOTFOUND, "Unable to discover a target process%s%s.",
                            pid ? " with pid " : "", pid ? pid : "");
    else
        vg_http_res_problem(res, 400, VG_EINVAL,
                            "Multiple target processes match (%zu); select one with pid= or "
                            "uid=.",
                            matches);
    return NULL;
}

json_t *vg__json_timespan(uint64_t ms, bool present)
{
    if (!present)
        return json_null();
    char buf[32];
    vg_format_timespan(ms, buf, sizeof(buf));
    return json_string(buf);
}

json_t *vg__json_time(uint64_t wall_ms)
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

/* ---------- /info, /healthz ---------- */

VG__HANDLER(info)
{
    struct vg_api *api = ud;
    struct vg_daemon *d = api->d;
    json_t *dirs = json_array();
    for (size_t i = 0; i < d->gen->cfg->n_dirs; i++)
        json_array_append_new(dirs, vg__json_str(d->gen->cfg->dirs[i]));
    json_t *triggers = json_array(), *actions = json_array(), *egress = json_array();
    for (size_t i = 0; i < vg_trigger_types_count; i++)
        if (!vg_trigger_types[i]->runtime ||
            (vg_runtime_find(vg_trigger_types[i]->runtime) &&
             vg_runtime_find(vg_trigger_types[i]->runtime)->session_open))
            json_array_append_new(triggers, json_string(vg_trigger_types[i]->name));
    for (size_t i = 0; i < vg_action_types_count; i++)
        if (vg__action_known(vg_action_types[i]->name))
            json_array_append_new(actions, json_string(vg_action_types[i]->name));
    for (size_t i = 0; i < d->gen->cfg->settings.n_egress; i++)
        json_array_append_new(egress, json_string(d->gen->cfg->settings.egress[i].name));
    /* dotnet-monitor's capabilities (9.1+): what vigil serves of them */
    static const struct {
        const char *name;
        bool enabled;
    } caps[] = {{"exceptions", false},
                {"parameters", false},
                {"call_stacks", false},
                {"metrics", true},
                {"http_egress", true}};
    json_t *capabilities = json_array();
    for (size_t i = 0; i < VG_ARRAY_SIZE(caps); i++)
        json_array_append_new(capabilities, json_pack("{s:s, s:b}", "name", caps[i].name, "enabled",
                                                      caps[i].enabled));
    const struct vg_diagnostic_port_settings *dp = &d->gen->cfg->settings.diagnostic_port;
    json_t *o = json_pack(
        "{s:s, s:n, s:s, s:o, s:o}", "version", VG_VERSION, "runtimeVersion", "diagnosticPortMode",
        dp->mode == VG_DIAG_PORT_LISTEN ? "Listen" : "Connect", "diagnosticPortName",
        vg__json_str(dp->endpoint_name), "capabilities", capabilities);
    /* vigil's own, beside dotnet-monitor's members */
    json_object_set_new(o, "operatingSystem", json_string("linux"));
    json_object_set_new(o, "configDirs", dirs);
    json_object_set_new(o, "stateDir", vg__json_str(d->state_dir));
    json_object_set_new(o, "configLoaded", vg__json_time(d->gen->loaded_ms));
    json_object_set_new(o, "features",
                        json_pack("{s:o, s:o, s:o, s:[ssss]}", "triggers", triggers, "actions",
                                  actions, "egressProviders", egress, "dumpTypes", "Full",
                                  "WithHeap", "Mini", "Triage"));
    json_object_set_new(o, "configurationErrors",
                        d->reload_error ? json_string(d->reload_error) : json_null());
    vg_http_res_json(res, 200, o);
}

/* dotnet-monitor's routes for .NET features vigil does not run yet: a clear 400, as
 * dotnet-monitor answers for a feature it has disabled, rather than "no such endpoint". */
VG__HANDLER(unsupported)
{
    vg_http_res_problem(res, 400, VG_EUNSUPPORTED,
                        "%s %s is not supported yet: it needs .NET runtime features vigil does "
                        "not run yet (see README, \"What is not there yet\")",
                        vg_http_req_method(req), vg_http_req_path(req));
}

VG__HANDLER(healthz)
{
    vg_http_res_text(res, 200, "text/plain", "ok\n", 3);
}

static void server_closed(struct vg_http_server *s, void *ud)
{
    struct vg_api *api = ud;
    vg__ops_free_all(api);
    vg__metrics_cache_free(api);
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
        {"GET", "/healthz", VG_HTTP_ROUTE_OPEN, vg__h_healthz},
        {"GET", "/metrics", VG_HTTP_ROUTE_OPEN, vg__h_metrics},
        {"GET", "/info", 0, vg__h_info},
        {"GET", "/processes", 0, vg__h_processes},
        {"GET", "/process", 0, vg__h_process},
        {"GET", "/collectionrules", 0, vg__h_rules},
        {"GET", "/collectionrules/{name}", 0, vg__h_rule},
        {"GET", "/instances", 0, vg__h_instances},
        {"GET", "/dump", VG_HTTP_ROUTE_NO_HEAD, vg__h_dump},
        {"GET", "/operations", 0, vg__h_operations},
        {"GET", "/operations/{id}", 0, vg__h_operation},
        {"DELETE", "/operations/{id}", 0, vg__h_operation_cancel},
        {"GET", "/env", VG_HTTP_ROUTE_NO_HEAD, vg__h_unsupported},
        {"GET", "/gcdump", VG_HTTP_ROUTE_NO_HEAD, vg__h_gcdump},
        {"GET", "/trace", VG_HTTP_ROUTE_NO_HEAD, vg__h_trace},
        {"POST", "/trace", 0, vg__h_trace_custom},
        {"GET", "/logs", VG_HTTP_ROUTE_NO_HEAD, vg__h_logs},
        {"POST", "/logs", 0, vg__h_logs_custom},
        {"POST", "/parameters", 0, vg__h_unsupported},
        {"GET", "/stacks", VG_HTTP_ROUTE_NO_HEAD, vg__h_stacks},
        {"GET", "/livemetrics", VG_HTTP_ROUTE_NO_HEAD, vg__h_livemetrics},
        {"POST", "/livemetrics", 0, vg__h_livemetrics_custom},
        {"GET", "/exceptions", VG_HTTP_ROUTE_NO_HEAD, vg__h_unsupported},
        {"POST", "/exceptions", 0, vg__h_unsupported},
    };
    for (size_t i = 0; i < VG_ARRAY_SIZE(routes); i++)
        vg_http_route(api->http, routes[i].method, routes[i].pattern, routes[i].flags, routes[i].h,
                      api);
    if (d->opts->no_auth)
        vg_log(VG_LOG_WARN, "api", "--no-auth: the API accepts requests without a key");
    bool api_ok = d->opts->no_auth || ss->api_key_hash || ss->api_jwt;
    const char *const *urls = d->opts->n_urls ? d->opts->urls : ss->urls;
    size_t n_urls = d->opts->n_urls ? d->opts->n_urls : ss->n_urls;
    static const char *const def_urls[] = {VG_DEFAULT_URL};
    static const char *const def_metrics[] = {VG_DEFAULT_METRICS_URL};
    if (!n_urls) {
        urls = def_urls;
        n_urls = 1;
    }
    if (!api_ok)
        vg_log(VG_LOG_ERROR, "api",
               "API disabled: neither Server.Auth.ApiKeyHash nor Authentication.MonitorApiKey is "
               "configured and --no-auth was not given (run `vigil generatekey`)");
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
