/* libFuzzer target: bytes go through the server's own connection parse/dispatch path
 * (vg__http_conn_feed) over an in-memory transport, with the real router, auth, deferred
 * responses and streams. No sockets. */
#include "config/error.h"
#include "config/log.h"
#include "engine/http/http_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct mem_conn {
    struct vg__http_conn conn; /* first: the transport finds its state from the conn */
    struct vg__http_wreq *head, *tail;
    bool closed;
    bool first_seen;
};

static int mem_write(struct vg__http_conn *c, struct vg__http_wreq *w)
{
    struct mem_conn *m = (struct mem_conn *)c;
    /* Every byte the server sends starts a valid status line or continues a response. */
    if (!m->first_seen && w->nbufs > 0 && w->bufs[0].len > 0) {
        assert(w->bufs[0].len >= 9 && memcmp(w->bufs[0].base, "HTTP/1.1 ", 9) == 0);
        m->first_seen = true;
    }
    w->next = NULL;
    if (m->tail)
        m->tail->next = w;
    else
        m->head = w;
    m->tail = w;
    return 0;
}

static void mem_shutdown(struct vg__http_conn *c)
{
}

static void mem_read_start(struct vg__http_conn *c)
{
}

static void mem_read_stop(struct vg__http_conn *c)
{
}

static void mem_close(struct vg__http_conn *c)
{
    ((struct mem_conn *)c)->closed = true;
}

static const struct vg__http_transport mem_tp = {
    .write = mem_write,
    .shutdown = mem_shutdown,
    .read_start = mem_read_start,
    .read_stop = mem_read_stop,
    .close = mem_close,
};

static uv_loop_t loop;
static struct vg_http_server *srv;
static struct vg__http_listener lis_auth, lis_open;

static void drain(struct mem_conn *m, int status)
{
    for (int round = 0; round < 64; round++) {
        while (m->head) {
            struct vg__http_wreq *w = m->head;
            m->head = w->next;
            if (!m->head)
                m->tail = NULL;
            vg__http_write_done(w, m->closed ? UV_ECANCELED : status);
        }
        uv_run(&loop, UV_RUN_NOWAIT); /* stream asyncs, deferred timers, handle closes */
        if (!m->head)
            break;
    }
}

/* ---- handlers ---- */

static void h_text(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    size_t len;
    const char *b = vg_http_req_body(req, &len);
    const char *q = vg_http_req_query(req, "q");
    vg_http_req_header(req, "X-Anything");
    vg_http_res_header(res, "X-Q", q && !strpbrk(q, "\r\n") ? q : "none");
    vg_http_res_text(res, 200, NULL, b, len);
}

static void h_json(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    json_t *j;
    if (vg_http_req_json(req, &j) != 0) {
        vg_http_res_error(res, VG_EPARSE, "bad json");
        return;
    }
    json_object_set_new(j, "id", json_string(vg_http_req_param(req, "id")));
    vg_http_res_json(res, 200, j);
}

struct deferred {
    uv_timer_t t;
    struct vg_http_res *res;
};

static void d_close(uv_handle_t *h)
{
    free(h->data);
}

static void d_fire(uv_timer_t *t)
{
    struct deferred *d = t->data;
    if (d->res)
        vg_http_res_json(d->res, 202, json_pack("{s:b}", "ok", 1));
    uv_close((uv_handle_t *)t, d_close);
}

static void d_cancel(struct vg_http_res *res, void *ud)
{
    struct deferred *d = ud;
    d->res = NULL;
    uv_timer_stop(&d->t);
    uv_close((uv_handle_t *)&d->t, d_close);
}

static void h_deferred(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct deferred *d = calloc(1, sizeof(*d));
    uv_timer_init(&loop, &d->t);
    d->t.data = d;
    d->res = res;
    uv_timer_start(&d->t, d_fire, 0, 0);
    vg_http_res_defer(res, d_cancel, d);
}

static void h_stream(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct vg_http_stream *st;
    if (vg_http_res_stream(res, 200, "text/plain", &st) != 0)
        return;
    /* Producer on the loop thread: stays under the buffer bound so it never blocks. */
    const char *n = vg_http_req_param(req, "n");
    size_t len = n ? strlen(n) : 0;
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = vg_http_stream_write(st, n ? n : "", len);
    vg_http_stream_end(st, len % 5 == 4 ? VG_EIO : 0);
}

static void h_noop(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    vg_log_level = -1; /* quiet */
    uv_loop_init(&loop);
    struct vg_http_config cfg;
    vg_http_config_init(&cfg);
    cfg.max_header_bytes = 2048;
    cfg.max_body_bytes = 4096;
    cfg.max_url_bytes = 512;
    char hash[VG_HTTP_APIKEY_HASH_LEN + 1];
    vg_http_apikey_hash("fuzz-key", hash); /* the seed corpus carries "Bearer fuzz-key" */
    cfg.api_key_hash = hash;
    if (vg_http_server_create(&loop, &cfg, &srv) != 0)
        abort();
    vg_http_route(srv, "GET", "/text", 0, h_text, NULL);
    vg_http_route(srv, "POST", "/text", 0, h_text, NULL);
    vg_http_route(srv, "PUT", "/items/{id}", 0, h_json, NULL);
    vg_http_route(srv, "GET", "/items/{id}/deferred", 0, h_deferred, NULL);
    vg_http_route(srv, "GET", "/stream/{n}", 0, h_stream, NULL);
    vg_http_route(srv, "GET", "/noop", 0, h_noop, NULL);
    vg_http_route(srv, "GET", "/metrics", VG_HTTP_ROUTE_OPEN, h_text, NULL);
    lis_auth.server = srv;
    lis_auth.require_auth = true;
    lis_open.server = srv;
    lis_open.require_auth = false;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* First byte: listener, and how the rest is split into reads. */
    uint8_t ctl = data[0];
    data++;
    size--;
    struct mem_conn *m = calloc(1, sizeof(*m));
    vg__http_conn_init(&m->conn, srv, ctl & 1 ? &lis_open : &lis_auth, &mem_tp, false);
    size_t step = (ctl >> 1) == 0 ? size : (size_t)(ctl >> 1);
    for (size_t off = 0; off < size && !m->closed; off += step) {
        size_t n = size - off < step ? size - off : step;
        vg__http_conn_feed(&m->conn, (const char *)data + off, n);
        drain(m, 0);
    }
    if (!m->closed)
        vg__http_conn_eof(&m->conn);
    drain(m, 0);
    if (!m->closed)
        vg__http_conn_abort(&m->conn);
    drain(m, UV_ECANCELED);
    vg__http_conn_fini(&m->conn);
    free(m);
    uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}
