/* Responses: status lines and headers, text / JSON / problem bodies, and streamed (chunked)
 * bodies written from another thread. */
#include "engine/http/http_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/redact.h"

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

static const char *status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        break;
    }
    if (status >= 200 && status < 300)
        return "OK";
    if (status >= 400 && status < 500)
        return "Client Error";
    return "Server Error";
}

int vg_http_status_for_err(int err)
{
    switch (err) {
    case 0:
        return 200;
    case VG_ENOENT:
    case VG_ENOTFOUND:
    case VG_ESRCH:
    case VG_EEXITED:
        return 404;
    case VG_EINVAL:
    case VG_EPARSE:
    case VG_ECONFIG:
    case VG_ERANGE:
        return 400;
    case VG_EAUTH:
        return 401;
    case VG_EPERM:
    case VG_EACCES:
        return 403;
    case VG_EEXIST:
    case VG_ESTATE:
    case VG_EBUSY:
        return 409;
    case VG_EFBIG:
    case VG_E2BIG:
        return 413;
    case VG_ETHROTTLED:
    case VG_ELIMIT:
    case VG_EQUOTA:
        return 429;
    case VG_EUNSUPPORTED:
    case VG_ENOSYS:
        return 501;
    case VG_ERETRY:
    case VG_EAGAIN:
        return 503;
    case VG_ETIMEDOUT:
        return 504;
    default:
        return 500;
    }
}

struct vg__http_wreq *vg__http_wreq_new(struct vg__http_conn *c)
{
    struct vg__http_wreq *w = calloc(1, sizeof(*w));
    if (w)
        w->conn = c;
    return w;
}

void vg__http_wreq_add(struct vg__http_wreq *w, void *data, size_t len, bool owned)
{
    w->bufs[w->nbufs] = uv_buf_init(data, (unsigned)len);
    w->owned[w->nbufs] = owned ? data : NULL;
    w->nbufs++;
}

void vg__http_wreq_free(struct vg__http_wreq *w)
{
    for (unsigned i = 0; i < w->nbufs; i++)
        free(w->owned[i]);
    free(w);
}

/* Takes w; on failure the connection is aborted. */
int vg__http_conn_write(struct vg__http_conn *c, struct vg__http_wreq *w)
{
    if (c->state == VG__CONN_CLOSED) {
        vg__http_wreq_free(w);
        return VG_ECANCELED;
    }
    c->writes_pending++;
    /* A client that stops reading must not hold the connection (and a producer) forever. */
    if (c->state == VG__CONN_HANDLING && c->writes_pending == 1)
        c->deadline = uv_now(c->server->loop) + c->server->cfg.request_timeout_ms;
    int rc = c->tp->write(c, w);
    if (rc < 0) {
        c->writes_pending--;
        vg__http_wreq_free(w);
        vg__http_conn_abort(c);
    }
    return rc;
}

static void http_date(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Status line and common headers; len -1 means chunked (close-delimited for HTTP/1.0), -2 no
 * body framing at all (204/304). */
static int build_head(struct vg__http_conn *c, struct vg_buf *b, int status,
                      const char *content_type, long long len)
{
    char date[64];
    http_date(date, sizeof(date));
    int rc = vg_buf_printf(b, "HTTP/1.1 %d %s\r\nServer: vigil\r\nDate: %s\r\n", status,
                           status_text(status), date);
    if (!rc && content_type)
        rc = vg_buf_printf(b, "Content-Type: %s\r\n", content_type);
    if (!rc && len >= 0)
        rc = vg_buf_printf(b, "Content-Length: %lld\r\n", len);
    else if (!rc && len == -1 && llhttp_get_http_major(&c->parser) == 1 &&
             llhttp_get_http_minor(&c->parser) >= 1)
        rc = vg_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    else if (!rc && len == -1)
        c->keep_alive = false;
    if (!rc && c->server->closing)
        c->keep_alive = false;
    if (!rc)
        rc = vg_buf_puts(b, c->keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (!rc && c->res.headers.len)
        rc = vg_buf_append(b, c->res.headers.data, c->res.headers.len);
    if (!rc)
        rc = vg_buf_puts(b, "\r\n");
    return rc;
}

static int res_check(struct vg_http_res *res)
{
    if (!res || !res->conn)
        return VG_EINVAL;
    if (res->state != VG__RES_NONE && res->state != VG__RES_DEFERRED)
        return VG_ESTATE;
    return 0;
}

/* Sends head + body (body is taken when owned). */
static int res_send(struct vg_http_res *res, int status, const char *ctype, void *body, size_t len,
                    bool owned)
{
    struct vg__http_conn *c = res->conn;
    int rc = res_check(res);
    if (rc) {
        if (owned)
            free(body);
        return rc;
    }
    if (status < 100 || status > 599)
        status = 500;
    struct vg_buf head;
    vg_buf_init(&head);
    struct vg__http_wreq *w = vg__http_wreq_new(c);
    bool no_content = status == 204 || status == 304;
    bool nobody = c->req.head || no_content;
    /* HEAD keeps the length a GET would get; 204/304 carry no framing at all. */
    rc = w ? build_head(c, &head, status, ctype, no_content ? -2 : (long long)len) : VG_ENOMEM;
    if (rc) {
        vg_buf_free(&head);
        free(w);
        if (owned)
            free(body);
        vg__http_conn_abort(c);
        return rc;
    }
    size_t hl = head.len;
    vg__http_wreq_add(w, vg_buf_steal(&head), hl, true);
    if (!nobody && len)
        vg__http_wreq_add(w, body, len, owned);
    else if (owned)
        free(body);
    res->state = VG__RES_SENT;
    res->cancel = NULL;
    /* Path only: query strings and headers stay out of the log. */
    vg_log(VG_LOG_DEBUG, LOG_COMP, "%s %s -> %d", c->req.method ? c->req.method : "-",
           c->req.path ? c->req.path : "-", status);
    rc = vg__http_conn_write(c, w);
    if (rc == 0 && c->state != VG__CONN_CLOSED)
        vg__http_conn_finish_response(c);
    return rc < 0 ? rc : 0;
}

int vg_http_res_header(struct vg_http_res *res, const char *name, const char *value)
{
    int rc = res_check(res);
    if (rc)
        return rc;
    if (!name || !value || !*name || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return VG_EINVAL;
    return vg_buf_printf(&res->headers, "%s: %s\r\n", name, value);
}

int vg_http_res_text(struct vg_http_res *res, int status, const char *content_type,
                     const void *body, size_t len)
{
    void *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) {
            if (res && res->conn)
                vg__http_conn_abort(res->conn);
            return VG_ENOMEM;
        }
        memcpy(copy, body, len);
    }
    return res_send(res, status, content_type ? content_type : "text/plain; charset=utf-8", copy,
                    len, true);
}

/* Secret values (config/redact.h) out of every string of an answer, a key included. */
static void redact_json(json_t *j, int depth)
{
    if (!j || depth > 64)
        return;
    if (json_is_string(j)) {
        char *s = strdup(json_string_value(j));
        if (s && vg_redact(s))
            json_string_set(j, s);
        free(s);
    } else if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            redact_json(json_array_get(j, i), depth + 1);
    } else if (json_is_object(j)) {
        const char *k;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(j, tmp, k, v)
        {
            char *kc = strdup(k);
            redact_json(v, depth + 1);
            if (kc && vg_redact(kc)) {
                json_incref(v);
                json_object_del(j, k);
                json_object_set_new(j, kc, v);
            }
            free(kc);
        }
    }
}

static int res_json_ct(struct vg_http_res *res, int status, json_t *body, const char *ctype)
{
    if (vg_redact_active())
        redact_json(body, 0);
    char *s = body ? json_dumps(body, JSON_COMPACT) : strdup("null");
    json_decref(body);
    if (!s) {
        if (res && res->conn)
            vg__http_conn_abort(res->conn);
        return VG_ENOMEM;
    }
    return res_send(res, status, ctype, s, strlen(s), true);
}

int vg_http_res_json(struct vg_http_res *res, int status, json_t *body)
{
    return res_json_ct(res, status, body, "application/json");
}

/* Length of the valid UTF-8 sequence at s (1-4; s has avail bytes), or 0 when it is not one
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
               : s[0] >= 0xe0 && s[0] <= 0xef ? 3
               : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                              : 0;
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

int vg_http_utf8_append(struct vg_buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        size_t n = utf8_seq(p, (size_t)(end - p));
        int rc = n ? vg_buf_append(b, p, n) : vg_buf_puts(b, "\xef\xbf\xbd");
        if (rc)
            return rc;
        p += n ? n : 1;
    }
    return 0;
}

__attribute__((format(printf, 4, 0))) static int res_vproblem(struct vg_http_res *res, int status,
                                                              int err, const char *fmt, va_list ap)
{
    struct vg_buf detail;
    vg_buf_init(&detail);
    if (fmt)
        vg_buf_vprintf(&detail, fmt, ap);
    /* details quote what the client sent (decoded from %XX), which need not be UTF-8 */
    struct vg_buf clean;
    vg_buf_init(&clean);
    if (detail.len && vg_http_utf8_append(&clean, detail.data, detail.len) == 0) {
        vg_buf_free(&detail);
        detail = clean;
    } else {
        vg_buf_free(&clean);
    }
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "status", json_integer(status));
        json_object_set_new(o, "title", json_string(status_text(status)));
        if (detail.len)
            json_object_set_new(o, "detail", json_stringn(detail.data, detail.len));
        json_object_set_new(o, "code", json_string(vg_err_name(err)));
    }
    vg_buf_free(&detail);
    if (!o) {
        if (res && res->conn)
            vg__http_conn_abort(res->conn);
        return VG_ENOMEM;
    }
    return res_json_ct(res, status, o, "application/problem+json");
}

int vg_http_res_problem(struct vg_http_res *res, int status, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = res_vproblem(res, status, err, fmt, ap);
    va_end(ap);
    return rc;
}

int vg_http_res_error(struct vg_http_res *res, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = res_vproblem(res, vg_http_status_for_err(err), err, fmt, ap);
    va_end(ap);
    return rc;
}

int vg_http_res_defer(struct vg_http_res *res, vg_http_cancel_cb cancel, void *ud)
{
    if (!res || !res->conn || res->state != VG__RES_NONE)
        return VG_ESTATE;
    res->state = VG__RES_DEFERRED;
    res->cancel = cancel;
    res->cancel_ud = ud;
    return 0;
}

static void stream_free_chunks(struct vg_http_stream *st)
{
    while (st->head) {
        struct stream_chunk *k = st->head;
        st->head = k->next;
        st->queued -= k->len;
        free(k);
    }
    st->tail = NULL;
}

static void stream_close_cb(uv_handle_t *h)
{
    struct vg_http_stream *st = h->data;
    struct vg_http_server *s = st->server;
    stream_free_chunks(st);
    uv_mutex_destroy(&st->mu);
    uv_cond_destroy(&st->cv);
    free(st);
    s->n_streams--;
    vg__http_server_maybe_finish(s);
}

/* Loop side, with st->mu held: closes the async handle once the producer is finished. */
static void stream_maybe_close_locked(struct vg_http_stream *st)
{
    if (st->ended && !st->conn && !st->closing) {
        st->closing = true;
        uv_close((uv_handle_t *)&st->async, stream_close_cb);
    }
}

/* The connection no longer wants data (closed, HEAD, or finished). */
void vg__http_stream_detach(struct vg_http_stream *st)
{
    uv_mutex_lock(&st->mu);
    if (st->conn)
        st->conn->res.stream = NULL;
    st->conn = NULL;
    st->canceled = true;
    stream_free_chunks(st);
    uv_cond_broadcast(&st->cv);
    stream_maybe_close_locked(st);
    uv_mutex_unlock(&st->mu);
}

void vg__http_stream_pump(struct vg_http_stream *st)
{
    uv_mutex_lock(&st->mu);
    struct vg__http_conn *c = st->conn;
    if (st->peak > st->server->stats.stream_peak_queued)
        st->server->stats.stream_peak_queued = st->peak;
    if (!c || st->writing) {
        stream_maybe_close_locked(st);
        uv_mutex_unlock(&st->mu);
        return;
    }
    struct stream_chunk *k = st->head;
    if (k) {
        st->head = k->next;
        if (!st->head)
            st->tail = NULL;
        st->writing = true;
    }
    bool ended = st->ended;
    int err = st->end_err;
    uv_mutex_unlock(&st->mu);

    if (k) {
        struct vg__http_wreq *w = vg__http_wreq_new(c);
        if (!w) {
            free(k);
            vg__http_conn_abort(c);
            return;
        }
        w->stream_bytes = k->len;
        if (st->raw) {
            vg__http_wreq_add(w, k->data, k->len, false);
            w->owned[0] = k;
        } else {
            char *hdr = vg_asprintf("%zx\r\n", k->len);
            if (!hdr) {
                free(k);
                free(w);
                vg__http_conn_abort(c);
                return;
            }
            vg__http_wreq_add(w, hdr, strlen(hdr), true);
            vg__http_wreq_add(w, k->data, k->len, false);
            w->owned[1] = k;
            vg__http_wreq_add(w, (void *)"\r\n", 2, false);
        }
        vg__http_conn_write(c, w);
        return;
    }
    if (!ended)
        return;
    /* Producer finished and everything is written. */
    if (err) {
        vg_log(VG_LOG_WARN, LOG_COMP, "stream aborted by producer: %s", vg_strerror(err));
        vg__http_conn_abort(c); /* detaches and closes */
        return;
    }
    bool raw = st->raw;
    vg__http_stream_detach(st);
    c->res.state = VG__RES_SENT;
    if (raw) {
        c->keep_alive = false;
        vg__http_conn_finish_response(c);
        return;
    }
    struct vg__http_wreq *w = vg__http_wreq_new(c);
    if (!w) {
        vg__http_conn_abort(c);
        return;
    }
    vg__http_wreq_add(w, (void *)"0\r\n\r\n", 5, false);
    vg__http_conn_write(c, w);
}

static void stream_async_cb(uv_async_t *a)
{
    vg__http_stream_pump(a->data);
}

int vg_http_res_stream(struct vg_http_res *res, int status, const char *content_type,
                       struct vg_http_stream **out)
{
    *out = NULL;
    int rc = res_check(res);
    if (rc)
        return rc;
    struct vg__http_conn *c = res->conn;
    struct vg_http_server *s = c->server;
    struct vg_http_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return VG_ENOMEM;
    if (uv_mutex_init(&st->mu)) {
        free(st);
        return VG_ENOMEM;
    }
    if (uv_cond_init(&st->cv)) {
        uv_mutex_destroy(&st->mu);
        free(st);
        return VG_ENOMEM;
    }
    if (uv_async_init(s->loop, &st->async, stream_async_cb)) {
        uv_cond_destroy(&st->cv);
        uv_mutex_destroy(&st->mu);
        free(st);
        return VG_ENOMEM;
    }
    st->async.data = st;
    st->server = s;
    st->limit = s->cfg.stream_buffer_bytes;
    s->n_streams++;

    struct vg_buf head;
    vg_buf_init(&head);
    struct vg__http_wreq *w = vg__http_wreq_new(c);
    rc = w ? build_head(c, &head, status, content_type, -1) : VG_ENOMEM;
    if (rc) {
        vg_buf_free(&head);
        free(w);
        st->ended = true; /* no producer will ever run */
        uv_close((uv_handle_t *)&st->async, stream_close_cb);
        st->closing = true;
        vg__http_conn_abort(c);
        return rc;
    }
    st->raw = !c->keep_alive && !strstr(head.data, "chunked");
    size_t hl = head.len;
    vg__http_wreq_add(w, vg_buf_steal(&head), hl, true);
    res->state = VG__RES_STREAM;
    vg_log(VG_LOG_DEBUG, LOG_COMP, "%s %s -> %d (stream)", c->req.method ? c->req.method : "-",
           c->req.path ? c->req.path : "-", status);
    if (c->req.head) {
        /* HEAD: headers only; the producer is told at once that nobody reads. */
        st->canceled = true;
        res->state = VG__RES_SENT;
        if (vg__http_conn_write(c, w) == 0)
            vg__http_conn_finish_response(c);
    } else {
        st->conn = c;
        res->stream = st;
        vg__http_conn_write(c, w);
    }
    *out = st;
    return 0;
}

int vg_http_stream_write(struct vg_http_stream *st, const void *data, size_t len)
{
    const char *p = data;
    int rc = 0;
    uv_mutex_lock(&st->mu);
    while (len > 0) {
        size_t n = len < STREAM_CHUNK ? len : STREAM_CHUNK;
        while (!st->canceled && st->queued > 0 && st->queued + n > st->limit)
            uv_cond_wait(&st->cv, &st->mu);
        if (st->canceled) {
            rc = VG_ECANCELED;
            break;
        }
        struct stream_chunk *k = malloc(sizeof(*k) + n);
        if (!k) {
            rc = VG_ENOMEM;
            break;
        }
        k->next = NULL;
        k->len = n;
        memcpy(k->data, p, n);
        if (st->tail)
            st->tail->next = k;
        else
            st->head = k;
        st->tail = k;
        st->queued += n;
        if (st->queued > st->peak)
            st->peak = st->queued;
        /* Sent under the lock: the loop closes the handle only after seeing `ended`. */
        uv_async_send(&st->async);
        p += n;
        len -= n;
    }
    uv_mutex_unlock(&st->mu);
    return rc;
}

void vg_http_stream_end(struct vg_http_stream *st, int err)
{
    uv_mutex_lock(&st->mu);
    st->ended = true;
    st->end_err = err;
    uv_async_send(&st->async);
    uv_mutex_unlock(&st->mu);
}
