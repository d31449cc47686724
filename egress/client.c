/* One HTTP request with libcurl's easy interface on the calling thread, bodies streamed from the
 * spool file (constant memory), and the generic OK / RETRY / FATAL judgement of responses. */
#include "config/codec.h"
#include "config/error.h"
#include "config/log.h"
#include "egress/egress_int.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define BODY_CAP (64 * 1024)
#define HEADERS_CAP (16 * 1024)

void vg__client_resp_init(struct vg__client_resp *r)
{
    memset(r, 0, sizeof(*r));
    vg_buf_init(&r->body);
    vg_buf_init(&r->headers);
}

void vg__client_resp_free(struct vg__client_resp *r)
{
    vg_buf_free(&r->body);
    vg_buf_free(&r->headers);
}

struct xfer {
    struct vg__upload *u;
    const struct vg__client_req *req;
    struct vg__client_resp *resp;
    uint64_t sent;
    int read_err;
};

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
    struct xfer *x = arg;
    const struct vg__client_req *q = x->req;
    uint64_t total = q->body_fd >= 0 ? q->body_len : q->body_mem_len;
    size_t want = size * nitems;
    if (want > total - x->sent)
        want = (size_t)(total - x->sent);
    if (!want)
        return 0;
    if (q->body_fd < 0) {
        memcpy(buf, q->body + x->sent, want);
        x->sent += want;
        return want;
    }
    ssize_t n;
    do
        n = pread(q->body_fd, buf, want, (off_t)(q->body_off + x->sent));
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        /* A spool file shorter than recorded must never become a short object. */
        x->read_err = n < 0 ? -errno : VG_EIO;
        return CURL_READFUNC_ABORT;
    }
    x->sent += (uint64_t)n;
    return (size_t)n;
}

static int on_seek(void *arg, curl_off_t offset, int origin)
{
    struct xfer *x = arg;
    if (origin != SEEK_SET || offset < 0)
        return CURL_SEEKFUNC_CANTSEEK;
    x->sent = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nmemb;
    if (x->resp->body.len < BODY_CAP) {
        size_t take = n < BODY_CAP - x->resp->body.len ? n : BODY_CAP - x->resp->body.len;
        if (vg_buf_append(&x->resp->body, ptr, take))
            return 0;
    }
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nitems, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nitems;
    /* Keep only the final response's headers (after 100-continue, redirects). */
    if (n >= 5 && !strncmp(ptr, "HTTP/", 5))
        vg_buf_reset(&x->resp->headers);
    if (x->resp->headers.len + n <= HEADERS_CAP && vg_buf_append(&x->resp->headers, ptr, n))
        return 0;
    return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct xfer *x = arg;
    /* the requests undoing a cancelled upload must not be cancelled themselves */
    bool cancelled = !x->u->cleanup && vg__upload_cancelled(x->u);
    bool halted = x->u->halt && atomic_load(x->u->halt);
    return cancelled || halted || vg__egress_stopping(x->u->e) ? 1 : 0;
}

bool vg__client_object_complete(const struct vg__client_resp *r, const struct vg__upload *u,
                                const char *sha_header)
{
    char *len = vg__client_header(r, "Content-Length");
    char *sha = vg__client_header(r, sha_header);
    bool ok = len && strtoull(len, NULL, 10) == u->size && sha && !strcmp(sha, u->sha256);
    free(len);
    free(sha);
    return ok;
}

char *vg__client_header(const struct vg__client_resp *r, const char *name)
{
    size_t nl = strlen(name);
    const char *p = r->headers.data;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
            const char *v = p + nl + 1;
            const char *end = p + len;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == '\r' || end[-1] == ' '))
                end--;
            return vg_strndup(v, (size_t)(end - v));
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

char *vg__xml_text(const char *s, const char *tag)
{
    if (!s)
        return NULL;
    char open[64], close[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    const char *a = strstr(s, open);
    if (!a)
        return NULL;
    a += strlen(open);
    const char *b = strstr(a, close);
    return b ? vg_strndup(a, (size_t)(b - a)) : NULL;
}

int vg__client_do(struct vg__upload *u, const struct vg__client_req *req, struct vg__client_resp *r)
{
    struct vg__provider *p = u->prov;
    if (!u->curl) {
        u->curl = vg__curl_easy_init();
        if (!u->curl)
            return VG_ENOMEM;
    }
    CURL *c = u->curl;
    vg__curl_easy_reset(c);
    struct xfer x = {.u = u, .req = req, .resp = r};
    uint64_t body = req->body_fd >= 0 ? req->body_len : req->body_mem_len;
    bool has_body = req->body_fd >= 0 || req->body;
    vg__curl_easy_setopt(c, CURLOPT_URL, req->url);
    vg__curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    vg__curl_easy_setopt(c, CURLOPT_USERAGENT, "vigil/" VG_VERSION);
    vg__curl_easy_setopt(c, CURLOPT_HTTPHEADER, req->headers);
    vg__curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_err);
    vg__curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    vg__curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    vg__curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    vg__curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    vg__curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    vg__curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    vg__curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    /* A stalled peer (accepts, never answers) is cut after timeout_ms without progress. */
    long stall_s = (long)((p->timeout_ms + 999) / 1000);
    vg__curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)(p->timeout_ms < 30000 ? p->timeout_ms : 30000));
    vg__curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    vg__curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall_s > 0 ? stall_s : 1L);
    /* Bodies come from the spool by pread: 512 KiB reads instead of curl's 64 KiB (per lane). */
    vg__curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
    vg__curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (req->no_body_response) {
        vg__curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (has_body || !strcmp(req->method, "PUT") || !strcmp(req->method, "POST")) {
        vg__curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        vg__curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body);
        vg__curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        vg__curl_easy_setopt(c, CURLOPT_READDATA, &x);
        vg__curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
        vg__curl_easy_setopt(c, CURLOPT_SEEKDATA, &x);
        vg__curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    } else {
        vg__curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    }
    CURLcode cc = vg__curl_easy_perform(c);
    r->curl_code = (int)cc;
    if (cc == CURLE_ABORTED_BY_CALLBACK)
        return VG_ECANCELED;
    if (x.read_err) {
        r->curl_code = CURLE_READ_ERROR;
        snprintf(r->curl_err, sizeof(r->curl_err), "reading spool %s: %s", u->spool_path,
                 vg_strerror(x.read_err));
    }
    if (cc == CURLE_OK) {
        vg__curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        char *ra = vg__client_header(r, "Retry-After");
        if (ra) {
            char *end = NULL;
            unsigned long long s = strtoull(ra, &end, 10);
            if (end && end != ra && !*end) {
                r->retry_after_ms = s * 1000ull;
            } else {
                time_t t = vg__curl_getdate(ra, NULL);
                time_t now = time(NULL);
                if (t > now)
                    r->retry_after_ms = (uint64_t)(t - now) * 1000ull;
            }
            free(ra);
        }
    } else if (!r->curl_err[0]) {
        snprintf(r->curl_err, sizeof(r->curl_err), "%s", vg__curl_easy_strerror(cc));
    }
    return 0;
}

static bool curl_retryable(int cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
        return true;
    default:
        return false;
    }
}

int vg__client_judge(struct vg__upload *u, const struct vg__client_resp *r, const char *what)
{
    u->retry_after_ms = 0;
    if (r->curl_code == CURLE_OPERATION_TIMEDOUT) {
        snprintf(u->err, sizeof(u->err), "%s: timed out (no progress for %llu ms, Timeout)", what,
                 (unsigned long long)u->prov->timeout_ms);
        return VG_ERETRY;
    }
    if (r->curl_code) {
        snprintf(u->err, sizeof(u->err), "%s: %s", what, r->curl_err);
        return curl_retryable(r->curl_code) ? VG_ERETRY : VG_EFATAL;
    }
    if (r->status >= 200 && r->status < 300)
        return u->prov->type->classify ? u->prov->type->classify(r, NULL, 0) : 0;
    char *code = vg__xml_text(r->body.data, "Code");
    char *msg = vg__xml_text(r->body.data, "Message");
    if (!code)
        code = vg__client_header(r, "x-ms-error-code");
    if (msg) {
        /* Service messages are multi-line and may echo the string to sign: keep line one. */
        char *nl = strpbrk(msg, "\r\n");
        if (nl)
            *nl = '\0';
    }
    snprintf(u->err, sizeof(u->err), "%s: HTTP %ld%s%s%s%s", what, r->status, code ? " " : "",
             code ? code : "", msg ? ": " : "", msg ? msg : "");
    u->retry_after_ms = r->retry_after_ms;
    int rc = VG_EFATAL;
    if (r->status == 408 || r->status == 429 || r->status >= 500)
        rc = VG_ERETRY;
    else if (r->status == 401 || r->status == 403)
        rc = VG_EAUTH;
    if (u->prov->type->classify)
        rc = u->prov->type->classify(r, code, rc);
    free(code);
    free(msg);
    return rc;
}

static int file_digest(int fd, uint64_t off, uint64_t len, const EVP_MD *md, unsigned char *out,
                       unsigned *outlen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return VG_ENOMEM;
    int rc = 0;
    size_t bufsz = 256 * 1024;
    char *buf = malloc(bufsz);
    if (!buf || EVP_DigestInit_ex(ctx, md, NULL) != 1) {
        rc = VG_ENOMEM;
        goto out;
    }
    while (len) {
        size_t want = len < bufsz ? (size_t)len : bufsz;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : VG_EIO;
            goto out;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    EVP_DigestFinal_ex(ctx, out, outlen);
out:
    free(buf);
    EVP_MD_CTX_free(ctx);
    return rc;
}

int vg__file_sha256_hex(int fd, uint64_t off, uint64_t len, char out[65])
{
    unsigned char md[32];
    unsigned n = 0;
    int rc = file_digest(fd, off, len, EVP_sha256(), md, &n);
    if (rc)
        return rc;
    vg_hex_encode(md, 32, out);
    return 0;
}

int vg__file_md5_b64(int fd, uint64_t off, uint64_t len, char out[25])
{
    unsigned char md[16];
    unsigned n = 0;
    int rc = file_digest(fd, off, len, EVP_md5(), md, &n);
    if (rc)
        return rc;
    EVP_EncodeBlock((unsigned char *)out, md, 16);
    return 0;
}

void vg__url_free(struct vg__url *u)
{
    free(u->scheme);
    free(u->hostport);
    free(u->path);
    memset(u, 0, sizeof(*u));
}

int vg__url_split(const char *url, struct vg__url *out)
{
    memset(out, 0, sizeof(*out));
    const char *sep = url ? strstr(url, "://") : NULL;
    if (!sep || sep == url)
        return VG_EINVAL;
    const char *host = sep + 3;
    const char *slash = strchr(host, '/');
    size_t hlen = slash ? (size_t)(slash - host) : strlen(host);
    if (!hlen || memchr(host, '?', hlen) || memchr(host, '@', hlen))
        return VG_EINVAL;
    out->scheme = vg_strndup(url, (size_t)(sep - url));
    out->hostport = vg_strndup(host, hlen);
    const char *path = slash ? slash : "";
    size_t plen = strlen(path);
    while (plen && path[plen - 1] == '/')
        plen--;
    out->path = vg_strndup(path, plen);
    if (!out->scheme || !out->hostport || !out->path) {
        vg__url_free(out);
        return VG_ENOMEM;
    }
    for (char *c = out->scheme; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (strcmp(out->scheme, "http") && strcmp(out->scheme, "https")) {
        vg__url_free(out);
        return VG_EINVAL;
    }
    return 0;
}

void vg__call_init(struct vg__call *c, const char *method, const char *query)
{
    memset(c, 0, sizeof(*c));
    c->method = method;
    c->query = query;
    c->fd = -1;
}

void vg__call_header(struct vg__call *c, const char *name, const char *value)
{
    if (value && c->n_hdr < VG_ARRAY_SIZE(c->hdr))
        c->hdr[c->n_hdr++] = (struct vg_http_header){name, value};
}

int vg__client_send(struct vg__upload *u, const struct vg__call *c, const char *url,
                    const char *log_target, const struct vg_http_header *extra, size_t n_extra,
                    struct vg__client_resp *r)
{
    struct curl_slist *hl = NULL;
    struct vg_buf line;
    vg_buf_init(&line);
    int rc = 0;
    for (size_t i = 0; i < n_extra + c->n_hdr; i++) {
        const struct vg_http_header *h = i < n_extra ? &extra[i] : &c->hdr[i - n_extra];
        /* signed, but sent by curl itself: a second copy would make a malformed request */
        if (!h->value || !strcasecmp(h->name, "Content-Length"))
            continue;
        vg_buf_reset(&line);
        struct curl_slist *n = vg_buf_printf(&line, "%s: %s", h->name, h->value)
                                   ? NULL
                                   : vg__curl_slist_append(hl, line.data);
        if (!n) {
            rc = VG_ENOMEM;
            goto out;
        }
        hl = n;
    }
    /* No 100-continue round trip; an empty Content-Type keeps curl from inventing one. */
    struct curl_slist *n1 = vg__curl_slist_append(hl, "Expect:");
    if (!n1) {
        rc = VG_ENOMEM;
        goto out;
    }
    hl = n1;
    struct vg__client_req req = {.method = c->method,
                                 .url = url,
                                 .headers = hl,
                                 .body_fd = c->fd,
                                 .body_off = c->off,
                                 .body_len = c->len,
                                 .body = c->mem,
                                 .body_mem_len = c->mem_len,
                                 .no_body_response = c->head};
    rc = vg__client_do(u, &req, r);
    vg_log(VG_LOG_DEBUG, u->prov->component, "%s %s -> %ld%s%s", c->method, log_target, r->status,
           r->curl_code ? " " : "", r->curl_code ? r->curl_err : "");
out:
    vg_buf_free(&line);
    vg__curl_slist_free_all(hl);
    return rc;
}
