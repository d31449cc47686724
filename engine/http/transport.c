/* The socket transport: libuv streams under a connection, and accepting new ones. */
#include "engine/http/http_int.h"

#include "config/error.h"
#include "config/log.h"

#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct sock_conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_shutdown_t shut;
    bool shut_started;
    struct vg__http_conn conn;
};

#define SOCK_OF(c) ((struct sock_conn *)((char *)(c)-offsetof(struct sock_conn, conn)))

static void sock_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct sock_conn *sc = h->data;
    buf->base = sc->conn.server->readbuf;
    buf->len = sizeof(sc->conn.server->readbuf);
}

static void sock_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct sock_conn *sc = stream->data;
    if (nread > 0)
        vg__http_conn_feed(&sc->conn, buf->base, (size_t)nread);
    else if (nread == UV_EOF)
        vg__http_conn_eof(&sc->conn);
    else if (nread < 0)
        vg__http_conn_abort(&sc->conn);
}

static void sock_write_cb(uv_write_t *req, int status)
{
    vg__http_write_done(req->data, status);
}

static int sock_write(struct vg__http_conn *c, struct vg__http_wreq *w)
{
    w->uv.data = w;
    return uv_write(&w->uv, &SOCK_OF(c)->h.stream, w->bufs, w->nbufs, sock_write_cb);
}

static void sock_shutdown_cb(uv_shutdown_t *req, int status)
{
}

static void sock_shutdown(struct vg__http_conn *c)
{
    struct sock_conn *sc = SOCK_OF(c);
    if (sc->shut_started)
        return;
    if (uv_shutdown(&sc->shut, &sc->h.stream, sock_shutdown_cb) == 0)
        sc->shut_started = true;
}

static void sock_read_start(struct vg__http_conn *c)
{
    uv_read_start(&SOCK_OF(c)->h.stream, sock_alloc_cb, sock_read_cb);
}

static void sock_read_stop(struct vg__http_conn *c)
{
    uv_read_stop(&SOCK_OF(c)->h.stream);
}

static void sock_close_cb(uv_handle_t *h)
{
    struct sock_conn *sc = h->data;
    vg__http_conn_fini(&sc->conn);
    free(sc);
}

static void sock_close(struct vg__http_conn *c)
{
    uv_close(&SOCK_OF(c)->h.handle, sock_close_cb);
}

static const struct vg__http_transport sock_transport = {
    .write = sock_write,
    .shutdown = sock_shutdown,
    .read_start = sock_read_start,
    .read_stop = sock_read_stop,
    .close = sock_close,
};

static void drop_close_cb(uv_handle_t *h)
{
    free(h->data);
}

void vg__http_on_connection(uv_stream_t *server_stream, int status)
{
    struct vg__http_listener *l = server_stream->data;
    struct vg_http_server *s = l->server;
    if (status < 0 || s->closing)
        return;
    struct sock_conn *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return;
    int rc = l->is_pipe ? uv_pipe_init(s->loop, &sc->h.pipe, 0) : uv_tcp_init(s->loop, &sc->h.tcp);
    if (rc) {
        free(sc);
        return;
    }
    sc->h.handle.data = sc;
    if (uv_accept(server_stream, &sc->h.stream) != 0) {
        uv_close(&sc->h.handle, drop_close_cb);
        return;
    }
    bool room = vg__http_server_has_room(s, l);
    /* Idle sockets must not keep a client out: the longest idle one makes room (its slot is
     * freed when its close completes, so the budget is passed by those for a moment). */
    if (!room && vg__http_server_cut_idle(s, l))
        room = true;
    /* Rejections are answered politely only up to a bound; past that they are just dropped. */
    if (!room && s->n_rejecting >= s->cfg.max_connections) {
        s->stats.connections_rejected++;
        uv_close(&sc->h.handle, drop_close_cb);
        return;
    }
    if (!l->is_pipe)
        uv_tcp_nodelay(&sc->h.tcp, 1);
    vg__http_conn_init(&sc->conn, s, l, &sock_transport, !room);
}
