/* Shared by the API's files: api.c (the server, /info, /healthz), api_processes.c,
 * api_rules.c (/collectionrules, /instances), api_metrics.c, operations.c (the operation
 * registry, /operations, what artifact routes share, /dump), api_artifacts.c (/gcdump, /trace,
 * /stacks, /logs, /livemetrics). A new route is a vg__h_NAME handler in the file of its
 * area, listed in api.c's route table. */
#ifndef VG_API_INT_H
#define VG_API_INT_H

#include "engine/engine_int.h"
#include "engine/http/http.h"

#include <jansson.h>

struct vg_api {
    struct vg_daemon *d;
    struct vg_http_server *http;
    struct vg_op *ops; /* newest first */
    unsigned dumps_running;
    unsigned max_dumps;
    struct vg__metrics_cache *metrics; /* api_metrics.c: the latest /metrics rendering */
    unsigned gcdumps_running, traces_running, stacks_running; /* api_artifacts.c */
    unsigned logs_running, livemetrics_running;               /* api_artifacts.c */
    struct api_job *streams; /* operations.c: artifacts being streamed back, for shutdown */
};

/* A JSON string for s (NULL gives null); invalid UTF-8 is repaired, never dropped. */
json_t *vg__json_str(const char *s);
/* ISO 8601 UTC with milliseconds; null for 0. */
json_t *vg__json_time(uint64_t wall_ms);
/* dotnet-monitor's timespan "d.hh:mm:ss"; null when !present. */
json_t *vg__json_timespan(uint64_t ms, bool present);
/* A stable UUID-shaped id for a process (boot id, pid, start time): dotnet-monitor's `uid`. */
void vg__proc_uid(const struct vg_proc *p, char out[40]);
/* The pid the API shows: vigil's view, or the process's own for one known only through its
 * runtime (another pid namespace), as dotnet-monitor shows it. */
static inline int vg__proc_pid(const struct vg_proc *p)
{
    return p->external ? p->ns_pid : p->pid;
}
/* The process pid=, uid= or name= select (none: DefaultProcess's); NULL after answering 400. */
struct vg_proc *vg__api_select_process(struct vg_api *api, struct vg_http_req *req,
                                       struct vg_http_res *res);
/* The single process DefaultProcess.Filters select; NULL when none is configured or not exactly
 * one matches (*matches says how many). */
struct vg_proc *vg__api_default_process(struct vg_api *api, size_t *matches);
/* A random (version 4) UUID, the id of every operation. */
void vg__uuid(char out[37]);

/* operations.c */
void vg__ops_free_all(struct vg_api *api);
/* api_metrics.c */
void vg__metrics_cache_free(struct vg_api *api);

/* An artifact route's request (/dump, /gcdump, /trace, /stacks). */
struct vg__artifact_req {
    const char *action;       /* the runtime action: "CollectGCDump" */
    const char *what;         /* "gcdump": for messages and the log */
    const char *content_type; /* of the streamed response; NULL: the adapter's */
    void *settings;           /* the action's typed settings (rules/action.h), taken over */
    void (*free_settings)(void *settings);
    unsigned *running; /* this kind's requests in flight: 429 with Retry-After past max */
    unsigned max;
    const char *limit; /* what sets max, for the 429 message */
};
/* Runs ar->action on p's runtime. With egressProvider= an operation (202, Location, listed under
 * /operations, tags=); without, the artifact is the response body, its status line sent when the
 * adapter opens it (what fails before is answered as a problem). Answers res in every case and
 * frees the settings whatever happens. */
void vg__artifact_collect(struct vg_api *api, struct vg_http_req *req, struct vg_http_res *res,
                          struct vg_proc *p, const struct vg__artifact_req *ar);

#define VG__HANDLER(name)                                                                          \
    void vg__h_##name(struct vg_http_req *req, struct vg_http_res *res, void *ud)
VG__HANDLER(processes);
VG__HANDLER(process);
VG__HANDLER(rules);
VG__HANDLER(rule);
VG__HANDLER(instances);
VG__HANDLER(metrics);
VG__HANDLER(info);
VG__HANDLER(healthz);
VG__HANDLER(unsupported);
VG__HANDLER(dump);
VG__HANDLER(gcdump);
VG__HANDLER(trace);
VG__HANDLER(trace_custom);
VG__HANDLER(stacks);
VG__HANDLER(logs);
VG__HANDLER(logs_custom);
VG__HANDLER(livemetrics);
VG__HANDLER(livemetrics_custom);
VG__HANDLER(operations);
VG__HANDLER(operation);
VG__HANDLER(operation_cancel);

#endif
