/* An action's EventPipe session and its artifact: see job_session.h. */
#include "engine/runtimes/dotnet/job_session.h"

#include "config/error.h"

#include <stdio.h>

int vg__dotnet_job_session(struct vg_rt_job *job, const char *ext, const char *content_type,
                           const struct vg_ep_session_config *cfg,
                           const struct vg_nettrace_callbacks *cb, vg_nettrace_write_fn sink,
                           void *sink_ctx, bool need_complete, struct vg_ep_session_result *res,
                           char *err, size_t errlen)
{
    char path[4096], name[96], what[32];
    struct vg_dnipc_io io = {.timeout_ms = 5000, .err = err, .errlen = errlen};
    int rc = vg_dnipc_find_socket(job->target.proc_root ? job->target.proc_root : "/proc",
                                  job->target.pid, path, sizeof path, &io);
    if (rc)
        return rc;
    struct vg_dnipc_endpoint ep;
    snprintf(what, sizeof what, "pid %d", job->target.pid);
    vg_dnipc_endpoint_path(&ep, path, what);
    vg_rt_artifact_name(name, sizeof name, "", job->target.pid, ext);
    rc = job->ops->open(job, name, content_type);
    if (rc) {
        snprintf(err, errlen, "cannot open the artifact: %s", vg_strerror(rc));
        return rc;
    }
    /* stopping, not cancelled: a stop (or the duration) ends the session cleanly and the artifact
     * is kept, even one that comes while the session starts; a cancel sets both and the sink
     * refuses what comes after */
    struct vg_ep_session_config c = *cfg;
    c.cancel = &job->cancelled;
    rc = vg_ep_session_run(&ep, &c, cb, sink, sink_ctx, &job->stopping, res, err, errlen);
    if (rc == VG_EEXITED && (res->complete || !need_complete))
        rc = 0; /* the process ended the session: what came is the artifact */
    if (rc) {
        job->ops->abort(job);
        return rc;
    }
    rc = job->ops->commit(job);
    if (rc)
        snprintf(err, errlen, "cannot commit the artifact: %s", vg_strerror(rc));
    return rc;
}
