/* The CDP message reader: turns WebSocket message fragments from an inspector into parsed
 * messages, never trusting the peer. Pure (no sockets): the fuzz target drives it directly.
 *
 * A message is buffered up to max_msg bytes, parsed (jansson) and handed to on_msg. One response
 * can instead be streamed: large results (a CPU profile, a diagnostic report) must never be held
 * whole, so when a message starts with exactly `{"id":ID,"result":PREFIX` the bytes after that
 * prefix go to the sink as they arrive, minus the closing braces, which are checked at the end.
 * Node's inspector writes compact JSON with "id" first, so the prefix is exact; anything else (an
 * error response, an event) is buffered and parsed as usual. */
#ifndef VG_NODE_CDP_READER_H
#define VG_NODE_CDP_READER_H

#include "config/util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where large outputs go: returns 0 or VG_E* (VG_ECANCELED stops the collection). */
typedef int (*vg_node_sink_fn)(void *ctx, const void *buf, size_t len);

/* Gets each complete buffered message (a JSON object, borrowed). Returns 0 or VG_E* to stop. */
typedef int (*vg_cdp_msg_fn)(void *ctx, json_t *msg);

#define VG_CDP_PREFIX_MAX 96
#define VG_CDP_TAIL_MAX 8

struct vg_cdp_reader {
    size_t max_msg;
    vg_cdp_msg_fn on_msg;
    void *msg_ctx;
    struct vg_buf buf; /* the message being assembled (or the undecided prefix) */
    int mode;
    /* The armed stream, if any. */
    bool armed;
    char prefix[VG_CDP_PREFIX_MAX];
    size_t prefix_len;
    char tail[VG_CDP_TAIL_MAX];
    size_t tail_len;
    char held[VG_CDP_TAIL_MAX]; /* bytes not yet known not to be the tail */
    size_t held_len;
    vg_node_sink_fn sink;
    void *sink_ctx;
    uint64_t streamed; /* bytes handed to the sink */
    bool stream_done;  /* the streamed response ended and its tail matched */
};

void vg_cdp_reader_init(struct vg_cdp_reader *rd, size_t max_msg, vg_cdp_msg_fn on_msg, void *ctx);
void vg_cdp_reader_free(struct vg_cdp_reader *rd);

/* Arms streaming for the response to request id: inner_prefix is what the result starts with
 * (e.g. `{"profile":`), depth the number of objects it opens (1). Returns VG_EINVAL when the
 * prefix does not fit. The stream stays armed until its response has been streamed. */
int vg_cdp_reader_stream(struct vg_cdp_reader *rd, int64_t id, const char *inner_prefix,
                         unsigned depth, vg_node_sink_fn sink, void *sink_ctx);

/* Feeds the next fragment of the current message; final ends the message. Returns 0, VG_E2BIG
 * (a message over max_msg), VG_EPROTO (not a JSON object; a streamed response that does not end
 * as it began), or what on_msg or the sink returned. After an error the reader must not be fed
 * again. */
int vg_cdp_reader_feed(struct vg_cdp_reader *rd, const void *data, size_t len, bool final);

#endif
