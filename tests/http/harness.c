#include "tests/http/harness.h"
#include "config/error.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- handlers (loop thread) ---- */

static void h_hello(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    vg_http_res_header(res, "X-Hello", "yes");
    vg_http_res_text(res, 200, NULL, "hello\n", 6);
}

static void h_item(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    vg_http_res_json(res, 200,
                     json_pack("{s:s, s:s}", "id", vg_http_req_param(req, "id"), "pathSeen",
                               vg_http_req_path(req)));
}

static void h_item_delete(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    vg_http_res_text(res, 204, NULL, NULL, 0);
}

static void h_echo_query(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    const char *a = vg_http_req_query(req, "a"), *b = vg_http_req_query(req, "b");
    const char *x = vg_http_req_header(req, "x-test");
    vg_http_res_json(res, 200,
                     json_pack("{s:s?, s:s?, s:s?, s:s}", "a", a, "b", b, "xTest", x, "method",
                               vg_http_req_method(req)));
}

static void h_echo_body(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    json_t *j;
    if (vg_http_req_json(req, &j) != 0) {
        vg_http_res_error(res, VG_EPARSE, "body is not JSON");
        return;
    }
    vg_http_res_json(res, 200, j);
}

static void h_noresp(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
}

struct deferred {
    uv_timer_t timer;
    struct vg_http_res *res;
    struct th *t;
};

static void deferred_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void deferred_fire(uv_timer_t *tm)
{
    struct deferred *d = tm->data;
    if (d->res)
        vg_http_res_json(d->res, 200, json_pack("{s:b}", "done", 1));
    uv_close((uv_handle_t *)tm, deferred_close_cb);
}

static void deferred_cancel(struct vg_http_res *res, void *ud)
{
    struct deferred *d = ud;
    atomic_fetch_add(&d->t->canceled, 1);
    d->res = NULL;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, deferred_close_cb);
}

static void h_deferred(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct th *t = ud;
    struct deferred *d = calloc(1, sizeof(*d));
    atomic_fetch_add(&t->deferred, 1);
    d->res = res;
    d->t = t;
    uv_timer_init(&t->loop, &d->timer);
    d->timer.data = d;
    /* /hang never fires on its own: only a cancel ends it. */
    uint64_t ms = strcmp(vg_http_req_path(req), "/hang") == 0 ? 3600000 : 50;
    uv_timer_start(&d->timer, deferred_fire, ms, 0);
    vg_http_res_defer(res, deferred_cancel, d);
}

struct producer {
    struct th *t;
    struct vg_http_stream *st;
    size_t size;
};

static void produce(void *arg)
{
    struct producer *p = arg;
    char buf[10000];
    size_t off = 0;
    int rc = 0;
    while (off < p->size && rc == 0) {
        size_t n = p->size - off < sizeof(buf) ? p->size - off : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)((off + i) * 7 % 251);
        rc = vg_http_stream_write(p->st, buf, n);
        off += n;
    }
    if (rc == VG_ECANCELED)
        atomic_fetch_add(&p->t->stream_canceled, 1);
    else
        atomic_fetch_add(&p->t->stream_done, 1);
    vg_http_stream_end(p->st, rc == VG_ECANCELED ? 0 : rc);
    free(p);
}

static void h_stream(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct th *t = ud;
    const char *sz = vg_http_req_query(req, "size");
    struct producer *p = calloc(1, sizeof(*p));
    p->t = t;
    p->size = sz ? strtoull(sz, NULL, 10) : 1000;
    int idx = atomic_load(&t->n_producers);
    if (idx >= 32 || vg_http_res_stream(res, 200, "application/octet-stream", &p->st) != 0) {
        free(p);
        if (idx >= 32)
            vg_http_res_error(res, VG_ELIMIT, "too many streams in this test");
        return;
    }
    uv_thread_create(&t->producers[idx], produce, p);
    atomic_store(&t->n_producers, idx + 1);
}

static void h_stats(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    struct th *t = ud;
    struct vg_http_stats s;
    vg_http_server_stats(t->srv, &s);
    vg_http_res_json(res, 200,
                     json_pack("{s:I, s:I, s:I, s:i}", "connectionsTotal",
                               (json_int_t)s.connections_total, "requestsTotal",
                               (json_int_t)s.requests_total, "streamPeakQueued",
                               (json_int_t)s.stream_peak_queued, "connectionsActive",
                               (int)s.connections_active));
}

static void h_metrics(struct vg_http_req *req, struct vg_http_res *res, void *ud)
{
    vg_http_res_text(res, 200, "text/plain; version=0.0.4", "vigil_up 1\n", 11);
}

/* ---- server thread ---- */

static void run_loop(void *arg)
{
    struct th *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
}

static void closed_cb(struct vg_http_server *s, void *ud)
{
    struct th *t = ud;
    vg_http_server_stats(s, &t->stats);
    t->srv = NULL;
}

static void stop_cb(uv_async_t *a)
{
    struct th *t = a->data;
    vg_http_server_close(t->srv, closed_cb, t);
    uv_close((uv_handle_t *)&t->stop, NULL);
    uv_close((uv_handle_t *)&t->keepalive, NULL);
}

static void noop_timer(uv_timer_t *tm)
{
}

void th_start(struct th *t, struct vg_http_config *cfg, bool unix_listener)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(uv_loop_init(&t->loop), 0);
    struct vg_http_config def;
    char hash[VG_HTTP_APIKEY_HASH_LEN + 1];
    if (!cfg) {
        vg_http_config_init(&def);
        cfg = &def;
    }
    if (!cfg->api_key_hash && !cfg->no_auth) {
        assert_int_equal(vg_http_apikey_hash(TH_KEY, hash), 0);
        cfg->api_key_hash = hash;
    }
    assert_int_equal(vg_http_server_create(&t->loop, cfg, &t->srv), 0);
    struct vg_http_server *s = t->srv;
    assert_int_equal(vg_http_route(s, "GET", "/hello", 0, h_hello, t), 0);
    assert_int_equal(vg_http_route(s, "GET", "/items/{id}", 0, h_item, t), 0);
    assert_int_equal(vg_http_route(s, "DELETE", "/items/{id}", 0, h_item_delete, t), 0);
    assert_int_equal(vg_http_route(s, "GET", "/echo", 0, h_echo_query, t), 0);
    assert_int_equal(vg_http_route(s, "POST", "/echo", 0, h_echo_body, t), 0);
    assert_int_equal(vg_http_route(s, "GET", "/noresp", 0, h_noresp, t), 0);
    assert_int_equal(vg_http_route(s, "GET", "/deferred", 0, h_deferred, t), 0);
    assert_int_equal(vg_http_route(s, "GET", "/hang", 0, h_deferred, t), 0);
    assert_int_equal(vg_http_route(s, "GET", "/stream", 0, h_stream, t), 0);
    assert_int_equal(vg_http_route(s, "GET", "/stats", 0, h_stats, t), 0);
    assert_int_equal(vg_http_route(s, "GET", "/metrics", VG_HTTP_ROUTE_OPEN, h_metrics, t), 0);
    assert_int_equal(vg_http_listen(s, "http://127.0.0.1:0", true), 0);
    assert_int_equal(vg_http_listen(s, "http://127.0.0.1:0", false), 0);
    t->port = vg_http_listener_port(s, 0);
    t->metrics_port = vg_http_listener_port(s, 1);
    assert_true(t->port > 0 && t->metrics_port > 0 && t->port != t->metrics_port);
    if (unix_listener) {
        snprintf(t->unix_path, sizeof(t->unix_path), "/tmp/vg-http-test-%d.sock", (int)getpid());
        char url[128];
        snprintf(url, sizeof(url), "unix:%s", t->unix_path);
        assert_int_equal(vg_http_listen(s, url, true), 0);
    }
    uv_async_init(&t->loop, &t->stop, stop_cb);
    t->stop.data = t;
    uv_timer_init(&t->loop, &t->keepalive);
    uv_timer_start(&t->keepalive, noop_timer, 3600000, 0);
    assert_int_equal(uv_thread_create(&t->thr, run_loop, t), 0);
}

void th_stop(struct th *t)
{
    uv_async_send(&t->stop);
    uv_thread_join(&t->thr);
    int n = atomic_load(&t->n_producers);
    for (int i = 0; i < n; i++)
        uv_thread_join(&t->producers[i]);
    assert_null(t->srv);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    if (t->unix_path[0])
        assert_int_equal(access(t->unix_path, F_OK), -1); /* socket file removed */
}

/* ---- responses ---- */

void th_resp_free(struct th_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

bool th_header(const struct th_resp *r, const char *name, char *buf, size_t n)
{
    size_t nl = strlen(name);
    const char *p = r->headers;
    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            if (vl >= n)
                vl = n - 1;
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            return true;
        }
    }
    return false;
}

/* ---- raw sockets ---- */

int th_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

int th_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static ssize_t rd(int fd, char *buf, size_t n)
{
    for (;;) {
        ssize_t k = recv(fd, buf, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        return k;
    }
}

/* Reads exactly one response, byte-wise for headers so pipelined responses stay separate. */
void th_read_resp(int fd, struct th_resp *r, bool head_request)
{
    memset(r, 0, sizeof(*r));
    size_t hl = 0;
    for (;;) {
        if (hl + 1 >= sizeof(r->headers))
            return;
        if (rd(fd, r->headers + hl, 1) != 1)
            return;
        hl++;
        r->headers[hl] = '\0';
        if (hl >= 4 && memcmp(r->headers + hl - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    int status = 0;
    if (sscanf(r->headers, "HTTP/1.%*d %d", &status) != 1)
        return;
    char v[64];
    size_t cap = 0;
    if (head_request || status == 204 || status == 304 || status < 200) {
        /* no body */
    } else if (th_header(r, "Content-Length", v, sizeof(v))) {
        size_t cl = strtoull(v, NULL, 10);
        r->body = malloc(cl + 1);
        while (r->body_len < cl) {
            ssize_t k = rd(fd, r->body + r->body_len, cl - r->body_len);
            if (k <= 0)
                return;
            r->body_len += (size_t)k;
        }
        r->body[r->body_len] = '\0';
    } else if (th_header(r, "Transfer-Encoding", v, sizeof(v))) {
        for (;;) {
            char line[64];
            size_t ll = 0;
            while (ll < sizeof(line) - 1 && rd(fd, line + ll, 1) == 1) {
                if (line[ll++] == '\n')
                    break;
            }
            line[ll] = '\0';
            size_t n = strtoull(line, NULL, 16);
            if (ll == 0)
                return;
            if (n + r->body_len + 1 > cap) {
                cap = (n + r->body_len + 1) * 2;
                r->body = realloc(r->body, cap);
            }
            size_t got = 0;
            while (got < n + 2) {
                char *dst = r->body + r->body_len + got;
                char crlf[2];
                ssize_t k = got < n ? rd(fd, dst, n - got) : rd(fd, crlf, n + 2 - got);
                if (k <= 0)
                    return;
                got += (size_t)k;
            }
            r->body_len += n;
            r->body[r->body_len] = '\0';
            if (n == 0)
                break;
        }
    }
    r->status = status;
}

bool th_wait_closed(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[4096];
    for (;;) {
        int k = poll(&p, 1, timeout_ms);
        if (k <= 0)
            return false;
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return true;
    }
}

/* ---- libcurl ---- */

static size_t cb_body(char *p, size_t sz, size_t n, void *ud)
{
    struct th_resp *r = ud;
    size_t len = sz * n;
    r->body = realloc(r->body, r->body_len + len + 1);
    memcpy(r->body + r->body_len, p, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

static size_t cb_header(char *p, size_t sz, size_t n, void *ud)
{
    struct th_resp *r = ud;
    size_t len = sz * n, have = strlen(r->headers);
    if (have + len < sizeof(r->headers)) {
        memcpy(r->headers + have, p, len);
        r->headers[have + len] = '\0';
    }
    return len;
}

int th_curl(int port, const char *method, const char *path, const char *key, const char *body,
            struct th_resp *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    char url[512], auth[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = NULL;
    if (key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    if (body)
        h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cb_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, cb_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    r->status = (int)status;
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

static void sleep_10ms(void)
{
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

int th_wait_count(atomic_int *counter, int want, int timeout_ms)
{
    int v;
    for (int waited = 0; (v = atomic_load(counter)) < want && waited < timeout_ms; waited += 10)
        sleep_10ms();
    return v;
}

long long th_wait_stat(int port, const char *field, long long want, int timeout_ms)
{
    long long v = -1;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        struct th_resp r;
        if (th_curl(port, "GET", "/stats", TH_KEY, NULL, &r) == 0 && r.status == 200) {
            json_error_t e;
            json_t *j = json_loadb(r.body, r.body_len, 0, &e);
            v = j ? (long long)json_integer_value(json_object_get(j, field)) : -1;
            json_decref(j);
        }
        th_resp_free(&r);
        if (v >= want)
            break;
        sleep_10ms();
    }
    return v;
}
