/* EventPipe sessions: one session on one .NET process, from CollectTracing to the end of its
 * stream. The stream is parsed as it arrives (nettrace.h) and may be forwarded, byte for byte, to
 * a sink (a trace artifact streamed to egress); it is stopped with StopTracing on a new connection
 * when the caller asks (a flag) or its duration ends, and then read to its end, so the runtime
 * never keeps a session vigil no longer reads. A session's lifetime is also bound to its
 * connection: the runtime ends a session whose reader went away.
 *
 * Loop-agnostic: vg_ep_session_run blocks on the caller's thread (a worker), with the stop flag
 * checked every 100 ms. */
#ifndef VG_EVENTPIPE_H
#define VG_EVENTPIPE_H

#include "engine/runtimes/dotnet/ipc.h"
#include "engine/runtimes/dotnet/nettrace.h"

#include <stdatomic.h>

struct vg_ep_session_config {
    const struct vg_dnipc_provider *providers;
    size_t n_providers;
    uint32_t buffer_mb;   /* the runtime's circular buffer; 0: 256 */
    bool request_rundown; /* method/module rundown at the end (traces meant for symbols) */
    uint64_t duration_ms; /* stop after this long; 0: only when *stop is set */
    int stop_timeout_ms;  /* how long the end of the stream may take after StopTracing; 0: 30 s */
    /* Optional: set by a callback that saw what ends the session (CollectTrace's StoppingEvent);
     * the session then stops as it does on the stop flag. */
    const atomic_bool *stop_seen;
    /* Optional: abandons starting the session (CollectTracing) when set; without it the stop
     * flag does. A caller whose stop means "end cleanly and keep it" sets this to its cancel
     * flag, so a stop that comes while the session starts still yields a complete stream. */
    const atomic_bool *cancel;
};

struct vg_ep_session_result {
    uint64_t session_id;
    uint64_t bytes; /* stream bytes read */
    bool stopped;   /* vigil stopped it (flag or duration), rather than the runtime */
    bool complete;  /* the stream ended with its end-of-stream tag and was valid */
    struct vg_nettrace_stats stats;
};

/* Runs one session: starts it on ep (CollectTracing2, or 3/4 as cfg needs), feeds every byte to
 * a parser with callbacks cb (NULL: validation only) and to sink (NULL: none), until the stream
 * ends. Returns:
 *   0            vigil stopped the session (stop flag or duration) and the stream is complete;
 *   VG_EEXITED   the runtime ended the stream on its own (the process exits, or another tool
 *                stopped the session); result->complete says whether what came is whole;
 *   VG_EPARSE... the stream is truncated or corrupt (err says where); the session was stopped;
 *   another VG_E* from the IPC (err says which command failed on which process) or the sink.
 * Whatever happens after the session started, StopTracing is sent before returning unless the
 * runtime already ended it. err may be NULL. */
int vg_ep_session_run(const struct vg_dnipc_endpoint *ep, const struct vg_ep_session_config *cfg,
                      const struct vg_nettrace_callbacks *cb, vg_nettrace_write_fn sink,
                      void *sink_ctx, const atomic_bool *stop, struct vg_ep_session_result *result,
                      char *err, size_t errlen);

#endif
