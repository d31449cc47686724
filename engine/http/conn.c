/* A connection's protocol: one request at a time (the parser is paused at the end of each
 * message and resumed only when its response has been written), routing and dispatch, error
 * responses and lingering close. Never touches a socket: bytes come in through
 * vg__http_conn_feed() and leave through the transport vtable. */
#include "engine/http/http_int.h"

#include "config/error.h"
#include "config/log.h"

#include <signal.h>
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

/* As ASP.NET routes: literal segments in any case, one trailing slash tolerated. */
static bool route_match(const struct vg__http_route *rt, struct vg_http_req *r)
{
    size_t n = r->n_segs;
    if (n > 0 && !r->segs[n - 1][0])
        n--;
    if (rt->n_segs != n)
        return false;
    size_t np = 0;
    for (size_t i = 0; i < rt->n_segs; i++) {
        const char *ps = rt->segs[i];
        if (ps[0] == '{') {
            if (!r->segs[i][0] || np >= VG__HTTP_MAX_PARAMS)
                return false;
            np++;
        } else if (strcasecmp(ps, r->segs[i]) != 0) {
            return false;
        }
    }
    return true;
}

static void route_bind(const struct vg__http_route *rt, struct vg_http_req *r)
{
    r->n_params = 0;
    for (size_t i = 0; i < rt->n_segs; i++) {
        if (rt->segs[i][0] == '{') {
            r->params[r->n_params].name = rt->segs[i] + 1; /* stored without braces */
            r->params[r->n_params].value = r->segs[i];
            r->n_params++;
        }
    }
    r->route = rt;
}

static bool method_is(const struct vg__http_route *rt, const char *m, bool head)
{
    if (strcmp(rt->method, m) == 0)
        return true;
    return head && strcmp(rt->method, "GET") == 0 && !(rt->flags & VG_HTTP_ROUTE_NO_HEAD);
}

static void send_problem(struct vg__http_conn *c, int status, int err, const char *detail)
{
    vg_http_res_problem(&c->res, status, err, "%s", detail);
}

static int err_for_status(int status)
{
    switch (status) {
    case 400:
        return VG_EINVAL;
    case 401:
        return VG_EAUTH;
    case 404:
        return VG_ENOTFOUND;
    case 405:
        return VG_EUNSUPPORTED;
    case 408:
        return VG_ETIMEDOUT;
    case 413:
    case 414:
    case 431:
        return VG_ELIMIT;
    case 429:
        return VG_ETHROTTLED;
    case 503:
        return VG_EBUSY;
    default:
        return VG_EFATAL;
    }
}

static void dispatch(struct vg__http_conn *c)
{
    struct vg_http_server *s = c->server;
    struct vg_http_req *r = &c->req;
    struct vg_http_res *res = &c->res;
    s->stats.requests_total++;
    c->state = VG__CONN_HANDLING;
    c->deadline = 0;
    r->head = strcmp(r->method, "HEAD") == 0;
    if (s->closing) {
        c->keep_alive = false;
        send_problem(c, 503, VG_EBUSY, "server is shutting down");
        return;
    }
    if (llhttp_get_upgrade(&c->parser)) {
        c->keep_alive = false;
        send_problem(c, 400, VG_EINVAL, "protocol upgrades and CONNECT are not supported");
        return;
    }
    int trc = vg__http_req_parse_target(r);
    if (trc != 0) {
        c->keep_alive = false;
        send_problem(c, 400, VG_EINVAL,
                     trc == VG_EEXIST ? "a query parameter is given more than once"
                                      : "invalid request target");
        return;
    }
    bool open_listener = !c->listener->require_auth;
    if (!open_listener && !s->cfg.no_auth &&
        !vg__http_authorized(s, vg_http_req_header(r, "Authorization"))) {
        s->stats.auth_failures++;
        vg_http_res_header(res, "WWW-Authenticate", "Bearer realm=\"vigil\"");
        /* Key guessing is hopeless against 256-bit keys, but a storm of failures is still
         * answered with 429 so well-behaved clients back off. */
        uint64_t now = uv_now(s->loop);
        if (now - s->auth_window_start >= 1000) {
            s->auth_window_start = now;
            s->auth_window_failures = 0;
        }
        if (++s->auth_window_failures > VG__HTTP_AUTH_FAILURES_PER_SEC) {
            vg_http_res_header(res, "Retry-After", "1");
            send_problem(c, 429, VG_ETHROTTLED, "too many failed authentication attempts");
            return;
        }
        send_problem(c, 401, VG_EAUTH, "a valid API key is required (Authorization: Bearer)");
        return;
    }
    const struct vg__http_route *found = NULL;
    struct vg_buf allow;
    vg_buf_init(&allow);
    bool path_known = false;
    for (size_t i = 0; i < s->n_routes; i++) {
        const struct vg__http_route *rt = &s->routes[i];
        if (open_listener && !(rt->flags & VG_HTTP_ROUTE_OPEN))
            continue;
        if (!route_match(rt, r))
            continue;
        path_known = true;
        if (method_is(rt, r->method, r->head)) {
            found = rt;
            break;
        }
        if (!strstr(allow.data ? allow.data : "", rt->method))
            vg_buf_printf(&allow, "%s%s", allow.len ? ", " : "", rt->method);
        if (strcmp(rt->method, "GET") == 0 && !(rt->flags & VG_HTTP_ROUTE_NO_HEAD) &&
            !strstr(allow.data, "HEAD"))
            vg_buf_puts(&allow, ", HEAD");
    }
    if (!found) {
        if (path_known) {
            vg_http_res_header(res, "Allow", allow.data);
            send_problem(c, 405, VG_EUNSUPPORTED, "method not allowed for this path");
        } else {
            send_problem(c, 404, VG_ENOTFOUND, "no such endpoint");
        }
        vg_buf_free(&allow);
        return;
    }
    vg_buf_free(&allow);
    route_bind(found, r);
    found->handler(r, res, found->ud);
    if (c->state != VG__CONN_CLOSED && res->state == VG__RES_NONE) {
        vg_log(VG_LOG_ERROR, LOG_COMP, "handler for %s %s returned without a response",
               found->method, r->path);
        send_problem(c, 500, VG_EFATAL, "handler did not respond");
    }
}

static void conn_read_start(struct vg__http_conn *c)
{
    if (!c->reading && c->state != VG__CONN_CLOSED) {
        c->reading = true;
        c->tp->read_start(c);
    }
}

static void conn_read_stop(struct vg__http_conn *c)
{
    if (c->reading) {
        c->reading = false;
        c->tp->read_stop(c);
    }
}

/* Answers a protocol error (or a reject) and closes once it is written. */
void vg__http_conn_error(struct vg__http_conn *c, int status, const char *detail)
{
    c->keep_alive = false;
    c->state = VG__CONN_HANDLING;
    c->deadline = 0;
    vg__http_req_reset(&c->req);
    vg__http_res_reset(&c->res);
    c->req.method = "GET";
    send_problem(c, status, err_for_status(status), detail);
}

static void conn_execute(struct vg__http_conn *c, const char *data, size_t len)
{
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    if (c->state == VG__CONN_CLOSED)
        return;
    if (e == HPE_OK)
        return;
    if (e == HPE_PAUSED && c->msg_complete) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        size_t used = pos ? (size_t)(pos - data) : len;
        if (used < len && vg_buf_append(&c->pending, data + used, len - used)) {
            vg__http_conn_abort(c);
            return;
        }
        c->msg_complete = false;
        dispatch(c);
        return;
    }
    int status = c->err_status ? c->err_status : 400;
    const char *detail = c->err_detail ? c->err_detail : "malformed request";
    if (e == HPE_PAUSED_UPGRADE) {
        status = 400;
        detail = "protocol upgrades are not supported";
    }
    vg__http_conn_error(c, status, detail);
}

void vg__http_conn_feed(struct vg__http_conn *c, const char *data, size_t len)
{
    switch (c->state) {
    case VG__CONN_CLOSED:
        return;
    case VG__CONN_LINGER:
        c->linger_bytes += len;
        if (c->linger_bytes > LINGER_BYTES)
            vg__http_conn_abort(c);
        return;
    case VG__CONN_HANDLING:
        if (c->err_status || !c->keep_alive) {
            return; /* nothing more will be parsed on this connection */
        }
        if (vg_buf_append(&c->pending, data, len)) {
            vg__http_conn_abort(c);
            return;
        }
        if (c->pending.len > PENDING_CAP)
            conn_read_stop(c);
        return;
    case VG__CONN_IDLE:
    case VG__CONN_READING:
        if (len)
            conn_execute(c, data, len);
        return;
    }
}

void vg__http_conn_eof(struct vg__http_conn *c)
{
    c->peer_eof = true;
    c->reading = false; /* the transport stops reading at EOF */
    switch (c->state) {
    case VG__CONN_CLOSED:
        return;
    case VG__CONN_HANDLING:
        /* Clients that half-close are treated as gone: a deferred or streamed response has no
         * reader anymore. A response already written just finishes, then closes. */
        c->keep_alive = false;
        if (c->res.state == VG__RES_DEFERRED || c->res.state == VG__RES_STREAM ||
            c->res.state == VG__RES_NONE)
            vg__http_conn_abort(c);
        return;
    default:
        vg__http_conn_abort(c);
        return;
    }
}

/* Called when the response is fully queued; completes when its writes are done. */
void vg__http_conn_finish_response(struct vg__http_conn *c)
{
    if (c->state != VG__CONN_HANDLING || c->writes_pending > 0)
        return;
    if (c->res.state != VG__RES_SENT)
        return;
    if (!c->keep_alive || c->server->closing) {
        vg__http_conn_graceful_close(c);
        return;
    }
    vg__http_req_reset(&c->req);
    vg__http_res_reset(&c->res);
    c->err_status = 0;
    c->err_detail = NULL;
    c->state = VG__CONN_IDLE;
    c->deadline = uv_now(c->server->loop) + c->server->cfg.idle_timeout_ms;
    llhttp_resume(&c->parser);
    if (c->pending.len) {
        struct vg_buf in = c->pending;
        vg_buf_init(&c->pending);
        conn_execute(c, in.data, in.len);
        vg_buf_free(&in);
    }
    if (c->state == VG__CONN_IDLE || c->state == VG__CONN_READING)
        conn_read_start(c);
}

void vg__http_conn_graceful_close(struct vg__http_conn *c)
{
    if (c->state == VG__CONN_CLOSED || c->state == VG__CONN_LINGER)
        return;
    if (c->peer_eof) {
        /* All input was consumed, so closing now cannot reset the response away. */
        vg__http_conn_abort(c);
        return;
    }
    c->state = VG__CONN_LINGER;
    c->deadline = uv_now(c->server->loop) + LINGER_MS;
    vg_buf_free(&c->pending);
    c->tp->shutdown(c);
    conn_read_start(c);
}

void vg__http_conn_abort(struct vg__http_conn *c)
{
    if (c->state == VG__CONN_CLOSED)
        return;
    c->state = VG__CONN_CLOSED;
    c->deadline = 0;
    struct vg_http_res *res = &c->res;
    if (res->stream)
        vg__http_stream_detach(res->stream);
    if (res->state == VG__RES_DEFERRED && res->cancel) {
        vg_http_cancel_cb cb = res->cancel;
        res->cancel = NULL;
        cb(res, res->cancel_ud);
    }
    res->state = VG__RES_SENT;
    conn_read_stop(c);
    c->tp->close(c);
}

void vg__http_write_done(struct vg__http_wreq *w, int status)
{
    struct vg__http_conn *c = w->conn;
    size_t sb = w->stream_bytes;
    vg__http_wreq_free(w);
    c->writes_pending--;
    struct vg_http_stream *st = c->res.stream;
    if (sb && st) {
        uv_mutex_lock(&st->mu);
        st->queued -= sb;
        st->writing = false;
        uv_cond_broadcast(&st->cv);
        uv_mutex_unlock(&st->mu);
    }
    if (c->state == VG__CONN_CLOSED)
        return;
    if (status < 0) {
        vg__http_conn_abort(c);
        return;
    }
    if (c->state == VG__CONN_HANDLING)
        c->deadline =
            c->writes_pending ? uv_now(c->server->loop) + c->server->cfg.request_timeout_ms : 0;
    if (st)
        vg__http_stream_pump(st);
    else
        vg__http_conn_finish_response(c);
}

void vg__http_conn_init(struct vg__http_conn *c, struct vg_http_server *s,
                        struct vg__http_listener *l, const struct vg__http_transport *tp,
                        bool rejected)
{
    memset(c, 0, sizeof(*c));
    c->server = s;
    c->listener = l;
    c->tp = tp;
    c->req.conn = c;
    c->res.conn = c;
    c->rejected = rejected;
    llhttp_init(&c->parser, HTTP_REQUEST, &vg__http_parser_settings);
    c->parser.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    s->stats.connections_total++;
    if (rejected) {
        s->n_rejecting++;
        s->stats.connections_rejected++;
        vg__http_conn_error(c, 503, "too many connections");
        return;
    }
    s->stats.connections_active++;
    c->metrics = !l->require_auth;
    if (c->metrics)
        s->open_conns++;
    c->state = VG__CONN_IDLE;
    c->deadline = uv_now(s->loop) + s->cfg.request_timeout_ms;
    conn_read_start(c);
}

void vg__http_conn_fini(struct vg__http_conn *c)
{
    struct vg_http_server *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conns--;
    if (c->rejected)
        s->n_rejecting--;
    else
        s->stats.connections_active--;
    if (c->metrics)
        s->open_conns--;
    vg__http_req_reset(&c->req);
    vg__http_res_reset(&c->res);
    vg_buf_free(&c->pending);
    vg__http_server_maybe_finish(s);
}

bool vg__http_server_has_room(const struct vg_http_server *s, const struct vg__http_listener *l)
{
    /* the metrics listeners have their own budget: a scraper storm never starves the API, nor
     * API clients the scraper */
    if (!l->require_auth)
        return s->open_conns < s->cfg.metrics_max_connections;
    return s->stats.connections_active - s->open_conns < s->cfg.max_connections;
}

bool vg__http_server_cut_idle(struct vg_http_server *s, const struct vg__http_listener *l)
{
    /* the connection of the same budget that has waited longest for a request, with nothing of
     * a response still on its way: a keep-alive client reconnects, one that never sent anything
     * loses nothing */
    struct vg__http_conn *victim = NULL;
    for (struct vg__http_conn *c = s->conns; c; c = c->next)
        if (!c->rejected && c->state == VG__CONN_IDLE && !c->writes_pending && !c->res.stream &&
            !c->pending.len && c->metrics == !l->require_auth &&
            (!victim || c->deadline <= victim->deadline)) /* the list is newest first */
            victim = c;
    if (!victim)
        return false;
    s->stats.connections_cut_idle++;
    vg__http_conn_abort(victim);
    return true;
}
