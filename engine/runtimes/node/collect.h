/* What vigil collects from a Node process, as blocking calls for a worker thread: heap usage
 * (no JS runs in the target), a V8 heap snapshot, a CPU profile and a diagnostic report, each
 * streamed into a sink; and the --heapsnapshot-signal path for processes whose inspector may
 * not be opened.
 *
 * A session reaches the inspector (one already open, or one SIGUSR1 opens when allowed) and,
 * when vigil opened it, closes it again in vg_node_session_close(). Every call honours
 * opts->cancel and its deadlines; a call that fails leaves the session unusable (close it). A
 * failed call may already have written part of the artifact to the sink: the caller discards it. */
#ifndef VG_NODE_COLLECT_H
#define VG_NODE_COLLECT_H

#include "engine/runtimes/node/cdp_reader.h"
#include "engine/runtimes/node/detect.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VG_NODE_ERR_MAX 512

struct vg_node_collect_opts {
    const char *proc_root;  /* NULL: "/proc" */
    bool allow_activation;  /* AllowInspectorActivation: may send SIGUSR1 */
    uint32_t connect_ms;    /* connect + handshake; 0: 5 s */
    uint32_t activation_ms; /* wait for the inspector after SIGUSR1; 0: 5 s */
    uint32_t timeout_ms;    /* bound of one collection (besides its Duration); 0: 10 min */
    uint32_t idle_ms;       /* the target sends nothing that long: fail; 0: 60 s */
    atomic_bool *cancel;    /* may be NULL */
    atomic_bool *stop;      /* ends a CPU profile's Duration early, keeping it; may be NULL */
};

struct vg_node_session;

/* Reaches pid's inspector. Returns 0, VG_EPERM (no inspector open and activation not allowed,
 * or SIGUSR1 would kill the process), VG_EBUSY (its inspector port is taken), VG_ENOTFOUND (not
 * a Node process) or VG_E*; err says which and what to do. */
int vg_node_session_open(int pid, const struct vg_node_collect_opts *opts,
                         struct vg_node_session **out, char *err, size_t err_len);
/* Closes the session, and the inspector when vigil opened it (then *exposure_ms, when not
 * NULL, is how long it was open: from SIGUSR1 to its port closing). Returns 0 or the error
 * closing the inspector (err). NULL is a no-op. */
int vg_node_session_close(struct vg_node_session *s, uint64_t *exposure_ms, char *err,
                          size_t err_len);
/* The options read from the process's command line and NODE_OPTIONS. */
const struct vg_node_options *vg_node_session_options(const struct vg_node_session *s);

/* Runtime.getHeapUsage: V8's used and total heap size in bytes. */
int vg_node_heap_usage(struct vg_node_session *s, uint64_t *used, uint64_t *total, char *err,
                       size_t err_len);

/* HeapProfiler.takeHeapSnapshot: each addHeapSnapshotChunk goes to the sink as it arrives
 * (a .heapsnapshot, JSON). *bytes: how much was written. */
int vg_node_heap_snapshot(struct vg_node_session *s, vg_node_sink_fn sink, void *ctx,
                          uint64_t *bytes, char *err, size_t err_len);

/* Profiler.start, duration_ms, Profiler.stop: the profile (a .cpuprofile, JSON) is streamed to
 * the sink. Canceled before the end: VG_ECANCELED, nothing written. */
int vg_node_cpu_profile(struct vg_node_session *s, uint32_t duration_ms, vg_node_sink_fn sink,
                        void *ctx, uint64_t *bytes, char *err, size_t err_len);

/* Node's diagnostic report (JSON) with the JavaScript stack of the main thread where it was
 * running: the debugger pauses it, the report is made on the paused frame, then it resumes.
 * When the main thread runs no JavaScript (idle in its event loop) the report is made directly
 * and its stack is the report call's own. */
int vg_node_report(struct vg_node_session *s, vg_node_sink_fn sink, void *ctx, uint64_t *bytes,
                   char *err, size_t err_len);

/* The signal path: the process was started with --heapsnapshot-signal=SIG. Sends SIG, follows
 * the .heapsnapshot node writes into its --diagnostic-dir (or cwd), seen through
 * /proc/PID/root, streaming it to the sink as it grows until node closes it, then deletes it.
 * VG_EUNSUPPORTED when the process has no such option. */
int vg_node_snapshot_by_signal(int pid, const struct vg_node_collect_opts *opts,
                               vg_node_sink_fn sink, void *ctx, uint64_t *bytes, char *err,
                               size_t err_len);

#endif
