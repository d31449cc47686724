/* Embedded HTTP/1.1 server: connection state machine over llhttp, router, responses, streams,
 * listeners. One request at a time per connection: the parser is paused at the end of each
 * message and resumed only when its response has been fully written. */
#include "engine/http/http_int.h"
#include "config/error.h"
#include "config/log.h"
#include "config/settings.h"

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

#define LOG_COMP "http"
/* Input kept while a response is in progress before reading is paused. */
#define PENDING_CAP (64u * 1024)
/* After an error response, input is drained this long / this much so the client sees it. */
#define LINGER_MS 2000u
#define LINGER_BYTES (1024u * 1024)
#define STREAM_CHUNK (64u * 1024)

struct vg__http_route {
    char *method;
    char **segs;
    size_t n_segs;
    unsigned flags;
    vg_http_handler handler;
    void *ud;
};

struct vg_http_server {
    uv_loop_t *loop;
    struct vg_http_config cfg;
    bool has_key;
    unsigned char key_hash[32];
    struct vg__http_listener **listeners;
    size_t n_listeners;
    unsigned listeners_open;
    struct vg__http_route *routes;
    size_t n_routes;
    struct vg__http_conn *conns;
    unsigned n_conns;
    unsigned n_rejecting;
    unsigned n_streams; /* stream async handles not yet closed */
    uv_timer_t sweep;
    bool closing;
    bool sweep_closing;
    uint64_t close_deadline;
    uint64_t auth_window_start;
    unsigned auth_window_failures;
    vg_http_server_close_cb close_cb;
    void *close_ud;
    struct vg_http_stats stats;
    char readbuf[64 * 1024];
};

struct stream_chunk {
    struct stream_chunk *next;
    size_t len;
    char data[];
};

struct vg_http_stream {
    uv_async_t async;
    uv_mutex_t mu;
    uv_cond_t cv;
    struct vg_http_server *server;
    struct vg__http_conn *conn; /* loop side; NULL once detached */
    struct stream_chunk *head, *tail;
    size_t queued; /* queued + in flight */
    size_t limit;
    bool canceled;
    bool ended;
    int end_err;
    bool writing;
    bool raw; /* HTTP/1.0 peer: no chunk framing, close at the end */
    size_t peak;
    bool closing;
};

static void conn_finish_response(struct vg__http_conn *c);
static void conn_graceful_close(struct vg__http_conn *c);
static void server_maybe_finish(struct vg_http_server *s);
static void stream_pump(struct vg_http_stream *st);
static void stream_detach(struct vg_http_stream *st);

/* ------------------------------------------------------------------------------------------ */
/* config */

void vg_http_config_init(struct vg_http_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

void vg_http_config_from_settings(struct vg_http_config *cfg, const struct vg_server_settings *s)
{
    cfg->max_connections = s->max_connections;
    cfg->max_header_bytes = s->max_header_bytes;
    cfg->max_body_bytes = s->max_body_bytes;
    cfg->request_timeout_ms = s->request_timeout_ms;
    cfg->idle_timeout_ms = s->idle_timeout_ms;
    cfg->api_key_hash = s->api_key_hash;
}

static void config_defaults(struct vg_http_config *c)
{
    if (!c->max_connections)
        c->max_connections = VG_HTTP_DEFAULT_MAX_CONNECTIONS;
    if (!c->max_header_bytes)
        c->max_header_bytes = VG_HTTP_DEFAULT_MAX_HEADER_BYTES;
    if (!c->max_body_bytes)
        c->max_body_bytes = VG_HTTP_DEFAULT_MAX_BODY_BYTES;
    if (!c->request_timeout_ms)
        c->request_timeout_ms = VG_HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
    if (!c->idle_timeout_ms)
        c->idle_timeout_ms = VG_HTTP_DEFAULT_IDLE_TIMEOUT_MS;
    if (!c->max_url_bytes)
        c->max_url_bytes = VG_HTTP_DEFAULT_MAX_URL_BYTES;
    if (!c->stream_buffer_bytes)
        c->stream_buffer_bytes = VG_HTTP_DEFAULT_STREAM_BUFFER_BYTES;
    if (!c->shutdown_timeout_ms)
        c->shutdown_timeout_ms = VG_HTTP_DEFAULT_SHUTDOWN_TIMEOUT_MS;
}

/* ------------------------------------------------------------------------------------------ */
/* status texts and problem details */

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

/* ------------------------------------------------------------------------------------------ */
/* writing */

static struct vg__http_wreq *wreq_new(struct vg__http_conn *c)
{
    struct vg__http_wreq *w = calloc(1, sizeof(*w));
    if (w)
        w->conn = c;
    return w;
}

static void wreq_add(struct vg__http_wreq *w, void *data, size_t len, bool owned)
{
    w->bufs[w->nbufs] = uv_buf_init(data, (unsigned)len);
    w->owned[w->nbufs] = owned ? data : NULL;
    w->nbufs++;
}

static void wreq_free(struct vg__http_wreq *w)
{
    for (unsigned i = 0; i < w->nbufs; i++)
        free(w->owned[i]);
    free(w);
}

/* Takes w; on failure the connection is aborted. */
static int conn_write(struct vg__http_conn *c, struct vg__http_wreq *w)
{
    if (c->state == VG__CONN_CLOSED) {
        wreq_free(w);
        return VG_ECANCELED;
    }
    c->writes_pending++;
    /* A client that stops reading must not hold the connection (and a producer) forever. */
    if (c->state == VG__CONN_HANDLING && c->writes_pending == 1)
        c->deadline = uv_now(c->server->loop) + c->server->cfg.request_timeout_ms;
    int rc = c->tp->write(c, w);
    if (rc < 0) {
        c->writes_pending--;
        wreq_free(w);
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
    struct vg__http_wreq *w = wreq_new(c);
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
    wreq_add(w, vg_buf_steal(&head), hl, true);
    if (!nobody && len)
        wreq_add(w, body, len, owned);
    else if (owned)
        free(body);
    res->state = VG__RES_SENT;
    res->cancel = NULL;
    /* Path only: query strings and headers stay out of the log. */
    vg_log(VG_LOG_DEBUG, LOG_COMP, "%s %s -> %d", c->req.method ? c->req.method : "-",
           c->req.path ? c->req.path : "-", status);
    rc = conn_write(c, w);
    if (rc == 0 && c->state != VG__CONN_CLOSED)
        conn_finish_response(c);
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

static int res_json_ct(struct vg_http_res *res, int status, json_t *body, const char *ctype)
{
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

/* ------------------------------------------------------------------------------------------ */
/* request accessors */

const char *vg_http_req_method(const struct vg_http_req *req)
{
    return req->head ? "HEAD" : req->method;
}

const char *vg_http_req_path(const struct vg_http_req *req)
{
    return req->path;
}

static const char *kv_find(const struct vg__http_kv *kv, size_t n, const char *name, bool icase)
{
    for (size_t i = 0; i < n; i++)
        if (icase ? strcasecmp(kv[i].name, name) == 0 : strcmp(kv[i].name, name) == 0)
            return kv[i].value;
    return NULL;
}

const char *vg_http_req_param(const struct vg_http_req *req, const char *name)
{
    return kv_find(req->params, req->n_params, name, false);
}

const char *vg_http_req_query(const struct vg_http_req *req, const char *name)
{
    return kv_find(req->query, req->n_query, name, false);
}

const char *vg_http_req_header(const struct vg_http_req *req, const char *name)
{
    return kv_find(req->headers, req->n_headers, name, true);
}

const void *vg_http_req_body(const struct vg_http_req *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

int vg_http_req_json(const struct vg_http_req *req, json_t **out)
{
    json_error_t e;
    *out =
        json_loadb(req->body.data ? req->body.data : "", req->body.len, JSON_REJECT_DUPLICATES, &e);
    return *out ? 0 : VG_EPARSE;
}

/* ------------------------------------------------------------------------------------------ */
/* request parsing */

static void kv_free(struct vg__http_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

static void req_reset(struct vg_http_req *r)
{
    vg_buf_free(&r->url);
    free(r->path);
    for (size_t i = 0; i < r->n_segs; i++)
        free(r->segs[i]);
    free(r->segs);
    kv_free(r->query, r->n_query);
    kv_free(r->headers, r->n_headers);
    vg_buf_free(&r->field);
    vg_buf_free(&r->value);
    vg_buf_free(&r->body);
    struct vg__http_conn *c = r->conn;
    memset(r, 0, sizeof(*r));
    r->conn = c;
}

static void res_reset(struct vg_http_res *res)
{
    vg_buf_free(&res->headers);
    struct vg__http_conn *c = res->conn;
    memset(res, 0, sizeof(*res));
    res->conn = c;
}

static int hexv(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) into a new string; NULL on a bad escape, a NUL or a '/'. */
static char *pct_decode(const char *s, size_t n, bool plus_space, bool allow_slash)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%') {
            int hi = i + 1 < n ? hexv((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexv((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                goto bad;
            ch = hi << 4 | lo;
            i += 2;
        } else if (ch == '+' && plus_space) {
            ch = ' ';
        }
        if (ch == 0 || (ch == '/' && !allow_slash))
            goto bad;
        *o++ = (char)ch;
    }
    *o = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* Splits the request target into decoded path segments and query parameters. */
static int req_parse_target(struct vg_http_req *r)
{
    const char *u = r->url.data ? r->url.data : "";
    size_t ulen = r->url.len;
    if (ulen == 0 || u[0] != '/')
        return VG_EINVAL;
    const char *q = memchr(u, '?', ulen);
    const char *frag = memchr(u, '#', ulen);
    if (frag && (!q || frag < q))
        return VG_EINVAL;
    size_t plen = q ? (size_t)(q - u) : ulen;
    /* segments */
    size_t cap = 1;
    for (size_t i = 0; i < plen; i++)
        cap += u[i] == '/';
    r->segs = calloc(cap, sizeof(char *));
    if (!r->segs)
        return VG_ENOMEM;
    struct vg_buf path;
    vg_buf_init(&path);
    int rc = 0;
    size_t i = 1;
    if (plen > 1) {
        while (i <= plen) {
            size_t j = i;
            while (j < plen && u[j] != '/')
                j++;
            char *seg = pct_decode(u + i, j - i, false, false);
            if (!seg || strcmp(seg, "..") == 0 || strcmp(seg, ".") == 0) {
                free(seg);
                rc = VG_EINVAL;
                goto out;
            }
            r->segs[r->n_segs++] = seg;
            if ((rc = vg_buf_printf(&path, "/%s", seg)))
                goto out;
            i = j + 1;
        }
    } else if ((rc = vg_buf_puts(&path, "/"))) {
        goto out;
    }
    r->path = vg_buf_steal(&path);
    if (!r->path) {
        rc = VG_ENOMEM;
        goto out;
    }
    /* query */
    if (q) {
        const char *qs = q + 1, *qe = frag ? frag : u + ulen;
        size_t n = 1;
        for (const char *p = qs; p < qe; p++)
            n += *p == '&';
        r->query = calloc(n, sizeof(*r->query));
        if (!r->query) {
            rc = VG_ENOMEM;
            goto out;
        }
        const char *p = qs;
        while (p < qe) {
            const char *amp = memchr(p, '&', (size_t)(qe - p));
            const char *end = amp ? amp : qe;
            if (end > p) {
                const char *eq = memchr(p, '=', (size_t)(end - p));
                const char *ne = eq ? eq : end;
                char *name = pct_decode(p, (size_t)(ne - p), true, true);
                char *val =
                    eq ? pct_decode(eq + 1, (size_t)(end - eq - 1), true, true) : vg_strdup("");
                if (!name || !val) {
                    free(name);
                    free(val);
                    rc = VG_EINVAL;
                    goto out;
                }
                r->query[r->n_query].name = name;
                r->query[r->n_query].value = val;
                r->n_query++;
            }
            p = end + 1;
        }
    }
out:
    vg_buf_free(&path);
    return rc;
}

static struct vg__http_conn *parser_conn(llhttp_t *p)
{
    return p->data;
}

static int fail(struct vg__http_conn *c, int status, const char *detail)
{
    c->err_status = status;
    c->err_detail = detail;
    return HPE_USER;
}

static int on_message_begin(llhttp_t *p)
{
    struct vg__http_conn *c = parser_conn(p);
    c->state = VG__CONN_READING;
    c->deadline = uv_now(c->server->loop) + c->server->cfg.request_timeout_ms;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct vg__http_conn *c = parser_conn(p);
    if (c->req.url.len + len > c->server->cfg.max_url_bytes)
        return fail(c, 414, "request target too long");
    if (vg_buf_append(&c->req.url, at, len))
        return fail(c, 500, "out of memory");
    return 0;
}

static int header_account(struct vg__http_conn *c, size_t len)
{
    c->req.header_bytes += len;
    if (c->req.header_bytes + c->req.url.len > c->server->cfg.max_header_bytes)
        return fail(c, 431, "request headers too large");
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct vg__http_conn *c = parser_conn(p);
    int rc = header_account(c, len);
    if (rc)
        return rc;
    if (vg_buf_append(&c->req.field, at, len))
        return fail(c, 500, "out of memory");
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct vg__http_conn *c = parser_conn(p);
    int rc = header_account(c, len);
    if (rc)
        return rc;
    if (vg_buf_append(&c->req.value, at, len))
        return fail(c, 500, "out of memory");
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct vg__http_conn *c = parser_conn(p);
    struct vg_http_req *r = &c->req;
    int rc = header_account(c, 4); /* ": " and CRLF */
    if (rc)
        return rc;
    if (r->n_headers >= VG__HTTP_MAX_HEADERS)
        return fail(c, 431, "too many request headers");
    if (!r->headers) {
        r->headers = calloc(VG__HTTP_MAX_HEADERS, sizeof(*r->headers));
        if (!r->headers)
            return fail(c, 500, "out of memory");
    }
    char *name = vg_buf_steal(&r->field);
    char *value = vg_buf_steal(&r->value);
    if (!name || !value) {
        free(name);
        free(value);
        return fail(c, 500, "out of memory");
    }
    /* Values may not carry NUL (llhttp lets some through) */
    r->headers[r->n_headers].name = name;
    r->headers[r->n_headers].value = value;
    r->n_headers++;
    return 0;
}

static void write_continue(struct vg__http_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct vg__http_wreq *w = wreq_new(c);
    if (!w) {
        vg__http_conn_abort(c);
        return;
    }
    wreq_add(w, (void *)cont, sizeof(cont) - 1, false);
    conn_write(c, w);
}

static int on_headers_complete(llhttp_t *p)
{
    struct vg__http_conn *c = parser_conn(p);
    struct vg_http_req *r = &c->req;
    if (!r->url.len)
        return fail(c, 400, "empty request target");
    if (p->flags & F_CONTENT_LENGTH && p->content_length > c->server->cfg.max_body_bytes)
        return fail(c, 413, "request body too large");
    const char *expect = vg_http_req_header(r, "Expect");
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0)
            return fail(c, 400, "unsupported Expect");
        if (llhttp_get_http_minor(p) >= 1)
            write_continue(c);
    }
    r->method = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct vg__http_conn *c = parser_conn(p);
    if (c->req.body.len + len > c->server->cfg.max_body_bytes)
        return fail(c, 413, "request body too large");
    if (vg_buf_append(&c->req.body, at, len))
        return fail(c, 500, "out of memory");
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct vg__http_conn *c = parser_conn(p);
    c->msg_complete = true;
    c->keep_alive = llhttp_should_keep_alive(p) && !llhttp_get_upgrade(p);
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------------------------------ */
/* routing */

static bool route_match(const struct vg__http_route *rt, struct vg_http_req *r)
{
    if (rt->n_segs != r->n_segs)
        return false;
    size_t np = 0;
    for (size_t i = 0; i < rt->n_segs; i++) {
        const char *ps = rt->segs[i];
        if (ps[0] == '{') {
            if (!r->segs[i][0] || np >= VG__HTTP_MAX_PARAMS)
                return false;
            np++;
        } else if (strcmp(ps, r->segs[i]) != 0) {
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
    if (req_parse_target(r) != 0) {
        c->keep_alive = false;
        send_problem(c, 400, VG_EINVAL, "invalid request target");
        return;
    }
    bool open_listener = !c->listener->require_auth;
    if (!open_listener && !s->cfg.no_auth &&
        !vg__http_auth_check(s->key_hash, vg_http_req_header(r, "Authorization"))) {
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

/* ------------------------------------------------------------------------------------------ */
/* connection state machine */

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
static void conn_error(struct vg__http_conn *c, int status, const char *detail)
{
    c->keep_alive = false;
    c->state = VG__CONN_HANDLING;
    c->deadline = 0;
    req_reset(&c->req);
    res_reset(&c->res);
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
    conn_error(c, status, detail);
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
static void conn_finish_response(struct vg__http_conn *c)
{
    if (c->state != VG__CONN_HANDLING || c->writes_pending > 0)
        return;
    if (c->res.state != VG__RES_SENT)
        return;
    if (!c->keep_alive || c->server->closing) {
        conn_graceful_close(c);
        return;
    }
    req_reset(&c->req);
    res_reset(&c->res);
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

static void conn_graceful_close(struct vg__http_conn *c)
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
        stream_detach(res->stream);
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
    wreq_free(w);
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
        stream_pump(st);
    else
        conn_finish_response(c);
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
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
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
        conn_error(c, 503, "too many connections");
        return;
    }
    s->stats.connections_active++;
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
    req_reset(&c->req);
    res_reset(&c->res);
    vg_buf_free(&c->pending);
    server_maybe_finish(s);
}

bool vg__http_server_has_room(const struct vg_http_server *s)
{
    return s->stats.connections_active < s->cfg.max_connections;
}

/* ------------------------------------------------------------------------------------------ */
/* streams */

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
    server_maybe_finish(s);
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
static void stream_detach(struct vg_http_stream *st)
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

static void stream_pump(struct vg_http_stream *st)
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
        struct vg__http_wreq *w = wreq_new(c);
        if (!w) {
            free(k);
            vg__http_conn_abort(c);
            return;
        }
        w->stream_bytes = k->len;
        if (st->raw) {
            wreq_add(w, k->data, k->len, false);
            w->owned[0] = k;
        } else {
            char *hdr = vg_asprintf("%zx\r\n", k->len);
            if (!hdr) {
                free(k);
                free(w);
                vg__http_conn_abort(c);
                return;
            }
            wreq_add(w, hdr, strlen(hdr), true);
            wreq_add(w, k->data, k->len, false);
            w->owned[1] = k;
            wreq_add(w, (void *)"\r\n", 2, false);
        }
        conn_write(c, w);
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
    stream_detach(st);
    c->res.state = VG__RES_SENT;
    if (raw) {
        c->keep_alive = false;
        conn_finish_response(c);
        return;
    }
    struct vg__http_wreq *w = wreq_new(c);
    if (!w) {
        vg__http_conn_abort(c);
        return;
    }
    wreq_add(w, (void *)"0\r\n\r\n", 5, false);
    conn_write(c, w);
}

static void stream_async_cb(uv_async_t *a)
{
    stream_pump(a->data);
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
    struct vg__http_wreq *w = wreq_new(c);
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
    wreq_add(w, vg_buf_steal(&head), hl, true);
    res->state = VG__RES_STREAM;
    vg_log(VG_LOG_DEBUG, LOG_COMP, "%s %s -> %d (stream)", c->req.method ? c->req.method : "-",
           c->req.path ? c->req.path : "-", status);
    if (c->req.head) {
        /* HEAD: headers only; the producer is told at once that nobody reads. */
        st->canceled = true;
        res->state = VG__RES_SENT;
        if (conn_write(c, w) == 0)
            conn_finish_response(c);
    } else {
        st->conn = c;
        res->stream = st;
        conn_write(c, w);
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

/* ------------------------------------------------------------------------------------------ */
/* sockets */

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

static void on_connection(uv_stream_t *server_stream, int status)
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
    bool room = vg__http_server_has_room(s);
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

/* ------------------------------------------------------------------------------------------ */
/* server */

static void sweep_cb(uv_timer_t *t)
{
    struct vg_http_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    struct vg__http_conn *c = s->conns, *next;
    bool force = s->closing && now >= s->close_deadline;
    for (; c; c = next) {
        next = c->next;
        if (force && c->state != VG__CONN_CLOSED) {
            vg__http_conn_abort(c);
            continue;
        }
        if (!c->deadline || now < c->deadline)
            continue;
        if (c->state == VG__CONN_READING) {
            /* A slow (or stalled) request: tell the client, then close. */
            c->state = VG__CONN_HANDLING;
            conn_error(c, 408, "request not received in time");
        } else {
            vg__http_conn_abort(c);
        }
    }
}

int vg_http_server_create(uv_loop_t *loop, const struct vg_http_config *cfg,
                          struct vg_http_server **out)
{
    *out = NULL;
    /* A peer closing mid-write must be an EPIPE for that connection, not the daemon's death. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    struct vg_http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return VG_ENOMEM;
    s->loop = loop;
    s->cfg = *cfg;
    config_defaults(&s->cfg);
    s->cfg.api_key_hash = NULL; /* borrowed pointer not kept; the digest is */
    if (cfg->api_key_hash) {
        if (vg__http_auth_parse_hash(cfg->api_key_hash, s->key_hash) != 0) {
            vg_log(VG_LOG_ERROR, LOG_COMP,
                   "Server.Auth.ApiKeyHash must be \"sha256:\" followed by 64 hex digits");
            free(s);
            return VG_ECONFIG;
        }
        s->has_key = true;
    }
    uint64_t tick = s->cfg.request_timeout_ms;
    if (s->cfg.idle_timeout_ms < tick)
        tick = s->cfg.idle_timeout_ms;
    tick /= 4;
    if (tick < 10)
        tick = 10;
    if (tick > 1000)
        tick = 1000;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_start(&s->sweep, sweep_cb, tick, tick);
    uv_unref((uv_handle_t *)&s->sweep); /* the listeners keep the loop alive, not the timer */
    *out = s;
    return 0;
}

static int parse_url(const char *url, char *host, size_t hostn, int *port, const char **unix_path)
{
    *unix_path = NULL;
    if (strncmp(url, "unix:", 5) == 0) {
        *unix_path = url + 5;
        return **unix_path ? 0 : VG_EINVAL;
    }
    if (strncmp(url, "http://", 7) != 0)
        return VG_EINVAL;
    const char *p = url + 7, *hs, *he;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (!he)
            return VG_EINVAL;
        p = he + 1;
    } else {
        hs = p;
        he = p + strcspn(p, ":/");
        p = he;
    }
    if ((size_t)(he - hs) >= hostn || he == hs)
        return VG_EINVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (*p != ':')
        return VG_EINVAL;
    char *end;
    long v = strtol(p + 1, &end, 10);
    if (end == p + 1 || v < 0 || v > 65535 || (*end && strcmp(end, "/") != 0))
        return VG_EINVAL;
    *port = (int)v;
    return 0;
}

static const char *port_note(int bound, int asked)
{
    static char note[32];
    if (bound == asked)
        return "";
    snprintf(note, sizeof(note), " (port %d)", bound);
    return note;
}

/* A socket file left by a previous run (nobody accepts on it) may be replaced; a live one
 * belongs to another process and is left alone. */
static bool unix_socket_is_stale(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return false;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool stale = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno == ECONNREFUSED;
    close(fd);
    return stale;
}

static void listener_close_cb(uv_handle_t *h)
{
    struct vg__http_listener *l = h->data;
    struct vg_http_server *s = l->server;
    if (l->unix_path) {
        unlink(l->unix_path);
        free(l->unix_path);
    }
    free(l);
    s->listeners_open--;
    server_maybe_finish(s);
}

int vg_http_listen(struct vg_http_server *s, const char *url, bool require_auth)
{
    if (!s || !url || s->closing)
        return VG_EINVAL;
    if (require_auth && !s->has_key && !s->cfg.no_auth) {
        vg_log(VG_LOG_ERROR, LOG_COMP,
               "%s needs an API key: set Server.Auth.ApiKeyHash (vigil generatekey) or run "
               "with --no-auth",
               url);
        return VG_ECONFIG;
    }
    char host[256];
    int port = 0;
    const char *unix_path;
    int rc = parse_url(url, host, sizeof(host), &port, &unix_path);
    if (rc) {
        vg_log(VG_LOG_ERROR, LOG_COMP, "invalid listen URL '%s'", url);
        return VG_ECONFIG;
    }
    struct vg__http_listener **grown =
        realloc(s->listeners, (s->n_listeners + 1) * sizeof(*s->listeners));
    if (!grown)
        return VG_ENOMEM;
    s->listeners = grown;
    struct vg__http_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return VG_ENOMEM;
    l->server = s;
    l->require_auth = require_auth;
    if (unix_path) {
        l->is_pipe = true;
        uv_pipe_init(s->loop, &l->h.pipe, 0);
        rc = uv_pipe_bind(&l->h.pipe, unix_path);
        if (rc == UV_EADDRINUSE && unix_socket_is_stale(unix_path)) {
            unlink(unix_path);
            rc = uv_pipe_bind(&l->h.pipe, unix_path);
        }
        if (rc == 0) {
            l->unix_path = vg_strdup(unix_path);
            if (!l->unix_path)
                rc = UV_ENOMEM;
        }
    } else {
        uv_tcp_init(s->loop, &l->h.tcp);
        struct sockaddr_storage ss;
        const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
        if (uv_ip4_addr(ip, port, (struct sockaddr_in *)&ss) != 0 &&
            uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&ss) != 0) {
            rc = UV_EINVAL;
        } else {
            rc = uv_tcp_bind(&l->h.tcp, (const struct sockaddr *)&ss,
                             ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
        }
    }
    l->h.stream.data = l;
    if (rc == 0)
        rc = uv_listen(&l->h.stream, 128, on_connection);
    if (rc == 0 && !l->is_pipe) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        rc = uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len);
        if (rc == 0)
            l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    }
    s->listeners_open++;
    if (rc != 0) {
        vg_log(VG_LOG_ERROR, LOG_COMP, "cannot listen on %s: %s", url, uv_strerror(rc));
        uv_close(&l->h.handle, listener_close_cb);
        return rc;
    }
    s->listeners[s->n_listeners++] = l;
    vg_log(VG_LOG_INFO, LOG_COMP, "listening on %s%s%s", url,
           l->is_pipe ? "" : port_note(l->port, port),
           require_auth ? (s->cfg.no_auth ? " (authentication DISABLED)" : "") : " (no auth)");
    return 0;
}

size_t vg_http_listener_count(const struct vg_http_server *s)
{
    return s->n_listeners;
}

int vg_http_listener_port(const struct vg_http_server *s, size_t idx)
{
    return idx < s->n_listeners ? s->listeners[idx]->port : 0;
}

void vg_http_server_stats(const struct vg_http_server *s, struct vg_http_stats *out)
{
    *out = s->stats;
}

int vg_http_route(struct vg_http_server *s, const char *method, const char *pattern, unsigned flags,
                  vg_http_handler handler, void *ud)
{
    if (!s || !method || !pattern || pattern[0] != '/' || !handler)
        return VG_EINVAL;
    struct vg__http_route *grown = realloc(s->routes, (s->n_routes + 1) * sizeof(*s->routes));
    if (!grown)
        return VG_ENOMEM;
    s->routes = grown;
    struct vg__http_route *rt = &s->routes[s->n_routes];
    memset(rt, 0, sizeof(*rt));
    rt->method = vg_strdup(method);
    rt->flags = flags;
    rt->handler = handler;
    rt->ud = ud;
    size_t cap = 1;
    for (const char *p = pattern; *p; p++)
        cap += *p == '/';
    rt->segs = calloc(cap, sizeof(char *));
    int rc = rt->method && rt->segs ? 0 : VG_ENOMEM;
    const char *p = pattern + 1;
    while (rc == 0 && *pattern && pattern[1]) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char *seg;
        if (n >= 2 && p[0] == '{' && p[n - 1] == '}')
            seg = vg_asprintf("{%.*s", (int)(n - 2), p + 1); /* "{name" */
        else
            seg = vg_strndup(p, n);
        if (!seg) {
            rc = VG_ENOMEM;
            break;
        }
        rt->segs[rt->n_segs++] = seg;
        if (!e)
            break;
        p = e + 1;
    }
    if (rc) {
        for (size_t i = 0; i < rt->n_segs; i++)
            free(rt->segs[i]);
        free(rt->segs);
        free(rt->method);
        return rc;
    }
    s->n_routes++;
    return 0;
}

static void sweep_close_cb(uv_handle_t *h)
{
    struct vg_http_server *s = h->data;
    vg_http_server_close_cb cb = s->close_cb;
    void *ud = s->close_ud;
    if (cb)
        cb(s, ud);
    for (size_t i = 0; i < s->n_routes; i++) {
        for (size_t j = 0; j < s->routes[i].n_segs; j++)
            free(s->routes[i].segs[j]);
        free(s->routes[i].segs);
        free(s->routes[i].method);
    }
    free(s->routes);
    free(s->listeners);
    free(s);
}

static void server_maybe_finish(struct vg_http_server *s)
{
    if (!s->closing || s->sweep_closing)
        return;
    if (s->listeners_open || s->conns || s->n_streams)
        return;
    s->sweep_closing = true;
    uv_close((uv_handle_t *)&s->sweep, sweep_close_cb);
}

void vg_http_server_close(struct vg_http_server *s, vg_http_server_close_cb cb, void *ud)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_ud = ud;
    s->close_deadline = uv_now(s->loop) + s->cfg.shutdown_timeout_ms;
    uv_ref((uv_handle_t *)&s->sweep); /* keep running until in-flight work is done */
    for (size_t i = 0; i < s->n_listeners; i++)
        uv_close(&s->listeners[i]->h.handle, listener_close_cb);
    s->n_listeners = 0;
    struct vg__http_conn *c = s->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->state == VG__CONN_IDLE || c->state == VG__CONN_READING)
            vg__http_conn_abort(c);
        else
            c->keep_alive = false;
    }
    server_maybe_finish(s);
}
