/* A Chrome DevTools Protocol client for Node's inspector, over libwebsockets.
 *
 * Loop-agnostic and blocking: every call services its own private lws context on the calling
 * thread until its answer, a deadline, an error or *cancel (checked every 100 ms). One session
 * belongs to one thread at a time. The socket is created inside the target's network namespace
 * (see netns.h) and then used from the caller's. Memory is bounded: messages above max_msg are
 * refused, large results are streamed to a sink.
 *
 * Errors are VG_E* codes; each session (and vg_cdp_list) also keeps a one-line reason saying
 * what the peer did, for the operation's error message. */
#ifndef VG_NODE_CDP_H
#define VG_NODE_CDP_H

#include "engine/runtimes/node/cdp_reader.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VG_CDP_ERR_MAX 256

struct vg_cdp_addr {
    const char *proc_root; /* NULL: "/proc" */
    int netns_pid;         /* connect from this process's network namespace; 0: the caller's */
    char host[64];         /* numeric address in that namespace: "127.0.0.1", "::1" */
    int port;
};

struct vg_cdp_opts {
    uint32_t connect_timeout_ms; /* TCP connect + handshake; 0: 5000 */
    size_t max_msg;              /* largest buffered message; 0: 16 MiB */
    atomic_bool *cancel;         /* may be NULL */
};

/* GET /json/list and return the path of the first target's webSocketDebuggerUrl
 * ("/<uuid>") in path. Returns 0, VG_ECONNREFUSED (nothing listens), VG_EPROTO (not an
 * inspector: err says what came back), VG_ETIMEDOUT, VG_ECANCELED. */
int vg_cdp_list(const struct vg_cdp_addr *addr, const struct vg_cdp_opts *opts, char *path,
                size_t path_len, char *err, size_t err_len);

struct vg_cdp;

/* Opens a WebSocket session on addr + path. On failure *out is NULL and err holds the reason. */
int vg_cdp_open(const struct vg_cdp_addr *addr, const char *path, const struct vg_cdp_opts *opts,
                struct vg_cdp **out, char *err, size_t err_len);
/* Closes the connection (Node then ends what the session enabled: profiler, paused debugger).
 * NULL is a no-op. */
void vg_cdp_close(struct vg_cdp *s);

/* Replaces the cancel flag (NULL: none), e.g. to close cleanly what a canceled caller opened. */
void vg_cdp_set_cancel(struct vg_cdp *s, atomic_bool *cancel);

/* The reason for the last failure of s ("" when none). */
const char *vg_cdp_error(const struct vg_cdp *s);

/* Events (messages with "method") seen while a call waits; msg is borrowed. A handler error
 * ends the call with that error. */
typedef int (*vg_cdp_event_fn)(void *ctx, const char *method, json_t *params);
void vg_cdp_on_event(struct vg_cdp *s, vg_cdp_event_fn fn, void *ctx);

/* Sends {"id","method","params"} (params borrowed, may be NULL) and waits for its response.
 * timeout_ms bounds the whole call; idle_ms (0: none) bounds the time without any byte from the
 * peer. On success *result (may be NULL when not wanted) is the response's "result", owned by
 * the caller. An error response is VG_EPROTO with its message in vg_cdp_error(). */
int vg_cdp_call(struct vg_cdp *s, const char *method, json_t *params, uint32_t timeout_ms,
                uint32_t idle_ms, json_t **result);

/* Like vg_cdp_call, but the result, which must start with inner_prefix (depth objects deep,
 * see vg_cdp_reader_stream), is streamed to sink instead of being returned. *streamed gets the
 * byte count. */
int vg_cdp_call_stream(struct vg_cdp *s, const char *method, json_t *params,
                       const char *inner_prefix, unsigned depth, vg_node_sink_fn sink,
                       void *sink_ctx, uint32_t timeout_ms, uint32_t idle_ms, uint64_t *streamed);

/* Services the session for ms milliseconds (events keep flowing to the handler), or until
 * cancel or a failure. Returns 0, VG_ECANCELED or the failure. */
int vg_cdp_wait(struct vg_cdp *s, uint32_t ms);
/* The same, ending early (0) when *stop is raised; ms 0 with a stop flag waits for it alone. */
int vg_cdp_wait_until(struct vg_cdp *s, uint32_t ms, const atomic_bool *stop);

#endif
