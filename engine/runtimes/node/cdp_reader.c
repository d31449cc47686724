#include "engine/runtimes/node/cdp_reader.h"

#include "config/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum { M_IDLE = 0, M_DECIDING, M_BUFFER, M_STREAM };

void vg_cdp_reader_init(struct vg_cdp_reader *rd, size_t max_msg, vg_cdp_msg_fn on_msg, void *ctx)
{
    memset(rd, 0, sizeof(*rd));
    rd->max_msg = max_msg;
    rd->on_msg = on_msg;
    rd->msg_ctx = ctx;
    vg_buf_init(&rd->buf);
}

void vg_cdp_reader_free(struct vg_cdp_reader *rd)
{
    if (rd)
        vg_buf_free(&rd->buf);
}

int vg_cdp_reader_stream(struct vg_cdp_reader *rd, int64_t id, const char *inner_prefix,
                         unsigned depth, vg_node_sink_fn sink, void *sink_ctx)
{
    int n = snprintf(rd->prefix, sizeof(rd->prefix), "{\"id\":%" PRId64 ",\"result\":%s", id,
                     inner_prefix);
    if (n < 0 || (size_t)n >= sizeof(rd->prefix) || depth + 1 > VG_CDP_TAIL_MAX)
        return VG_EINVAL;
    rd->prefix_len = (size_t)n;
    rd->tail_len = depth + 1;
    memset(rd->tail, '}', rd->tail_len);
    rd->held_len = 0;
    rd->sink = sink;
    rd->sink_ctx = sink_ctx;
    rd->streamed = 0;
    rd->stream_done = false;
    rd->armed = true;
    return 0;
}

/* Hands data to the sink, always keeping the last tail_len bytes seen back. */
static int stream_bytes(struct vg_cdp_reader *rd, const char *p, size_t len)
{
    size_t total = rd->held_len + len;
    if (total <= rd->tail_len) {
        memcpy(rd->held + rd->held_len, p, len);
        rd->held_len = total;
        return 0;
    }
    size_t out = total - rd->tail_len; /* bytes that are certainly not the tail */
    size_t from_held = out < rd->held_len ? out : rd->held_len;
    int rc = 0;
    if (from_held) {
        rc = rd->sink(rd->sink_ctx, rd->held, from_held);
        if (rc < 0)
            return rc;
        memmove(rd->held, rd->held + from_held, rd->held_len - from_held);
        rd->held_len -= from_held;
    }
    size_t from_data = out - from_held;
    if (from_data) {
        rc = rd->sink(rd->sink_ctx, p, from_data);
        if (rc < 0)
            return rc;
    }
    rd->streamed += out;
    memcpy(rd->held + rd->held_len, p + from_data, len - from_data);
    rd->held_len += len - from_data;
    return 0;
}

static int deliver(struct vg_cdp_reader *rd)
{
    json_error_t jerr;
    json_t *msg = json_loadb(rd->buf.data ? rd->buf.data : "", rd->buf.len, 0, &jerr);
    if (!msg || !json_is_object(msg)) {
        json_decref(msg);
        return VG_EPROTO;
    }
    int rc = rd->on_msg ? rd->on_msg(rd->msg_ctx, msg) : 0;
    json_decref(msg);
    return rc;
}

static int buffer(struct vg_cdp_reader *rd, const void *data, size_t len)
{
    if (len > rd->max_msg || rd->buf.len > rd->max_msg - len)
        return VG_E2BIG;
    return vg_buf_append(&rd->buf, data, len);
}

int vg_cdp_reader_feed(struct vg_cdp_reader *rd, const void *data, size_t len, bool final)
{
    const char *p = data;
    int rc = 0;
    if (rd->mode == M_IDLE)
        rd->mode = rd->armed ? M_DECIDING : M_BUFFER;

    if (rd->mode == M_DECIDING) {
        size_t want = rd->prefix_len - rd->buf.len;
        size_t take = len < want ? len : want;
        rc = buffer(rd, p, take);
        if (rc < 0)
            goto out;
        p += take;
        len -= take;
        if (rd->buf.len == rd->prefix_len) {
            if (memcmp(rd->buf.data, rd->prefix, rd->prefix_len) == 0) {
                rd->mode = M_STREAM;
                vg_buf_reset(&rd->buf);
            } else {
                rd->mode = M_BUFFER;
            }
        } else if (final) {
            rd->mode = M_BUFFER; /* shorter than the prefix: an ordinary message */
        }
    }

    if (rd->mode == M_STREAM) {
        rc = stream_bytes(rd, p, len);
        if (rc < 0 || !final)
            goto out;
        if (rd->held_len != rd->tail_len || memcmp(rd->held, rd->tail, rd->tail_len) != 0) {
            rc = VG_EPROTO;
            goto out;
        }
        rd->stream_done = true;
        rd->armed = false;
        rd->held_len = 0;
        rd->mode = M_IDLE;
        goto out;
    }

    rc = buffer(rd, p, len);
    if (rc < 0 || !final)
        goto out;
    rc = deliver(rd);
    vg_buf_reset(&rd->buf);
    rd->mode = M_IDLE;
out:
    return rc;
}
