/* EventPipe sessions: see eventpipe.h. */
#include "engine/runtimes/dotnet/eventpipe.h"

#include "config/error.h"
#include "config/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EP_CHUNK (64 * 1024)

/* Parser and sink in one write function, so a bad buffer is never forwarded. */
struct feed {
    struct vg_nettrace *parser;
    vg_nettrace_write_fn sink;
    void *sink_ctx;
    bool sink_failed;
};

static int feed(struct feed *f, const void *buf, size_t len)
{
    int rc = vg_nettrace_feed(f->parser, buf, len);
    if (rc == 0 && f->sink && (rc = f->sink(f->sink_ctx, buf, len)) < 0)
        f->sink_failed = true;
    return rc;
}

/* The first error wins: the IPC layer's message is more precise than ours. */
__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (!err || !errlen || err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int vg_ep_session_run(const struct vg_dnipc_endpoint *ep, const struct vg_ep_session_config *cfg,
                      const struct vg_nettrace_callbacks *cb, vg_nettrace_write_fn sink,
                      void *sink_ctx, const atomic_bool *stop, struct vg_ep_session_result *result,
                      char *err, size_t errlen)
{
    memset(result, 0, sizeof *result);
    if (err && errlen)
        err[0] = '\0';
    const char *what = ep->what[0] ? ep->what : ep->path;
    struct vg_dnipc_trace_config tc = {
        .buffer_mb = cfg->buffer_mb,
        .request_rundown = cfg->request_rundown,
        .providers = cfg->providers,
        .n_providers = cfg->n_providers,
    };
    struct vg_dnipc_io io = {.timeout_ms = 10000,
                             .cancel = cfg->cancel ? cfg->cancel : stop,
                             .err = err,
                             .errlen = errlen};
    struct feed f = {.sink = sink, .sink_ctx = sink_ctx};
    uint8_t *buf = NULL;
    int fd = -1;
    int rc = vg_nettrace_create(cb, NULL, &f.parser);
    if (rc)
        return rc;
    rc = vg_dnipc_collect_tracing(ep, &io, &tc, &result->session_id, &fd);
    if (rc)
        goto out;
    if (!(buf = malloc(EP_CHUNK))) {
        rc = VG_ENOMEM;
        goto stop;
    }

    uint64_t start = vg_mono_ms();
    uint64_t stop_deadline = 0; /* set once StopTracing went out */
    int stop_timeout = cfg->stop_timeout_ms > 0 ? cfg->stop_timeout_ms : 30000;
    for (;;) {
        uint64_t now = vg_mono_ms();
        struct vg_dnipc_io rio = {.timeout_ms = -1, .err = err, .errlen = errlen};
        if (stop_deadline) {
            if (now >= stop_deadline) {
                set_err(err, errlen,
                        "EventPipe session on %s: the runtime did not end the stream within %d ms "
                        "after StopTracing",
                        what, stop_timeout);
                rc = VG_ETIMEDOUT;
                goto out;
            }
            rio.timeout_ms = (int)(stop_deadline - now);
        } else {
            rio.cancel = stop;
            if (cfg->duration_ms) {
                uint64_t end = start + cfg->duration_ms;
                rio.timeout_ms = end > now ? (int)(end - now) : 0;
            }
        }
        size_t got = 0;
        if (!stop_deadline && cfg->stop_seen && atomic_load(cfg->stop_seen))
            rc = VG_ECANCELED;
        else
            rc = rio.timeout_ms == 0 ? VG_ETIMEDOUT : vg_dnipc_read(fd, &rio, buf, EP_CHUNK, &got);
        if (!stop_deadline && (rc == VG_ECANCELED || rc == VG_ETIMEDOUT)) {
            /* Asked to stop, or the duration ended: StopTracing on a connection of its own, then
             * the rest of the stream (the runtime flushes, writes rundown if asked, and closes).
             * A failure to send it is not fatal: the end of the stream is what counts. */
            struct vg_dnipc_io sio = {.timeout_ms = 5000};
            vg_dnipc_stop_tracing(ep, &sio, result->session_id);
            result->stopped = true;
            stop_deadline = vg_mono_ms() + (uint64_t)stop_timeout;
            continue;
        }
        if (rc < 0) {
            set_err(err, errlen, "EventPipe session on %s: reading the stream: %s", what,
                    vg_strerror(rc));
            goto stop;
        }
        if (got == 0)
            break; /* the runtime closed the stream */
        result->bytes += got;
        if ((rc = feed(&f, buf, got)) < 0) {
            if (f.sink_failed)
                set_err(err, errlen, "EventPipe session on %s: the artifact failed: %s", what,
                        vg_strerror(rc));
            else
                set_err(err, errlen, "EventPipe session on %s: %s", what,
                        vg_nettrace_error(f.parser));
            goto stop;
        }
    }
    rc = vg_nettrace_finish(f.parser);
    result->complete = rc == 0;
    if (rc) {
        set_err(err, errlen, "EventPipe session on %s: %s", what, vg_nettrace_error(f.parser));
        if (!result->stopped)
            rc = VG_EEXITED; /* the runtime ended it mid-stream: a process going away */
    } else if (!result->stopped) {
        rc = VG_EEXITED;
        set_err(err, errlen, "EventPipe session on %s: the runtime ended the session", what);
    }
    goto out;

stop:
    /* An error after the session started: never leave it running in the target. Closing the
     * connection also ends it on the runtime's side; StopTracing says so at once. */
    if (!result->stopped) {
        struct vg_dnipc_io sio = {.timeout_ms = 2000};
        vg_dnipc_stop_tracing(ep, &sio, result->session_id);
        result->stopped = true;
    }
out:
    if (fd >= 0)
        close(fd);
    vg_nettrace_stats(f.parser, &result->stats);
    vg_nettrace_destroy(f.parser);
    free(buf);
    return rc;
}
