/* The part every EventPipe-based action runner of the .NET adapter shares (CollectTrace,
 * CollectLiveMetrics): see job_session.c. */
#ifndef VG_DOTNET_JOB_SESSION_H
#define VG_DOTNET_JOB_SESSION_H

#include "engine/runtimes/dotnet/eventpipe.h"
#include "engine/runtimes/runtime.h"

/* On the job's thread: finds job->target's diagnostic socket, opens the artifact (the
 * dotnet-monitor name "yyyyMMdd_HHmmss_fff_PID" + ext, content_type), runs the session (cancel
 * stops it), then commits the artifact or aborts it. The session counts as done when vigil stopped
 * it with the stream complete, or the process ended it: with need_complete only if what came is
 * whole. Returns 0 or VG_E* with err set. */
int vg__dotnet_job_session(struct vg_rt_job *job, const char *ext, const char *content_type,
                           const struct vg_ep_session_config *cfg,
                           const struct vg_nettrace_callbacks *cb, vg_nettrace_write_fn sink,
                           void *sink_ctx, bool need_complete, struct vg_ep_session_result *res,
                           char *err, size_t errlen);

#endif
