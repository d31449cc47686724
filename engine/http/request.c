/* Requests: llhttp callbacks that build a request within the configured limits, the target's
 * percent-decoding and query parsing, and the accessors handlers use. */
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

static void kv_free(struct vg__http_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

void vg__http_req_reset(struct vg_http_req *r)
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

void vg__http_res_reset(struct vg_http_res *res)
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
int vg__http_req_parse_target(struct vg_http_req *r)
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
                /* pid=1&pid=2 has no single meaning: refuse it rather than pick one */
                for (size_t k = 0; k < r->n_query; k++)
                    if (strcasecmp(r->query[k].name, name) == 0) {
                        free(name);
                        free(val);
                        rc = VG_EEXIST;
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
    struct vg__http_wreq *w = vg__http_wreq_new(c);
    if (!w) {
        vg__http_conn_abort(c);
        return;
    }
    vg__http_wreq_add(w, (void *)cont, sizeof(cont) - 1, false);
    vg__http_conn_write(c, w);
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
    /* RFC 9112 3.2: an HTTP/1.1 request without Host, or with more than one, is a 400 */
    size_t hosts = 0;
    for (size_t i = 0; i < r->n_headers; i++)
        hosts += strcasecmp(r->headers[i].name, "Host") == 0;
    if (hosts > 1)
        return fail(c, 400, "more than one Host header");
    if (hosts == 0 && llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) >= 1)
        return fail(c, 400, "missing Host header (required in HTTP/1.1)");
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

const llhttp_settings_t vg__http_parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
