/* The HTTP server end to end: a real server on 127.0.0.1, real clients (libcurl, raw sockets). */
#include "tests/http/harness.h"
#include "config/error.h"
#include "config/util.h"
#include "engine/cli/cli.h"

#include <curl/curl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#define AUTHH "Authorization: Bearer " TH_KEY "\r\n"

static json_t *body_json(const struct th_resp *r)
{
    json_error_t e;
    return json_loadb(r->body ? r->body : "", r->body_len, 0, &e);
}

static void assert_problem(const struct th_resp *r, int status, const char *code)
{
    assert_int_equal(r->status, status);
    char ct[128];
    assert_true(th_header(r, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/problem+json");
    json_t *j = body_json(r);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "status")), status);
    assert_non_null(json_string_value(json_object_get(j, "title")));
    assert_string_equal(json_string_value(json_object_get(j, "code")), code);
    json_decref(j);
}

static void raw_expect(int port, const char *req, int status, bool closed)
{
    int fd = th_connect(port);
    assert_int_equal(th_send(fd, req, strlen(req)), 0);
    struct th_resp r;
    th_read_resp(fd, &r, false);
    if (r.status != status)
        fprintf(stderr, "request %.60s... got %d\n", req, r.status);
    assert_int_equal(r.status, status);
    if (closed)
        assert_true(th_wait_closed(fd, 5000));
    th_resp_free(&r);
    close(fd);
}

static void test_routes_and_errors(void **state)
{
    struct th t;
    th_start(&t, NULL, false);
    struct th_resp r;
    char v[256];

    assert_int_equal(th_curl(t.port, "GET", "/hello", TH_KEY, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello\n");
    assert_true(th_header(&r, "X-Hello", v, sizeof(v)));
    assert_string_equal(v, "yes");
    assert_true(th_header(&r, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "text/plain; charset=utf-8");
    th_resp_free(&r);

    assert_int_equal(th_curl(t.port, "HEAD", "/hello", TH_KEY, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_null(r.body);
    assert_true(th_header(&r, "Content-Length", v, sizeof(v)));
    assert_string_equal(v, "6");
    th_resp_free(&r);

    assert_int_equal(th_curl(t.port, "GET", "/items/a%20b", TH_KEY, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "a b");
    assert_string_equal(json_string_value(json_object_get(j, "pathSeen")), "/items/a b");
    json_decref(j);
    th_resp_free(&r);

    /* a parameter given twice has no single meaning: 400, not a silent pick */
    assert_int_equal(th_curl(t.port, "GET", "/echo?a=1&b=2&A=second", TH_KEY, NULL, &r), 0);
    assert_problem(&r, 400, "VG_EINVAL");
    th_resp_free(&r);
    assert_int_equal(th_curl(t.port, "GET", "/echo?a=x%2By&b=1+2&flag", TH_KEY, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "a")), "x+y");
    assert_string_equal(json_string_value(json_object_get(j, "b")), "1 2");
    assert_true(json_is_null(json_object_get(j, "xTest")));
    json_decref(j);
    th_resp_free(&r);

    assert_int_equal(th_curl(t.port, "POST", "/echo", TH_KEY, "{\"someKey\":[1,2,3]}", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"someKey\":[1,2,3]}");
    th_resp_free(&r);

    assert_int_equal(th_curl(t.port, "POST", "/echo", TH_KEY, "{not json", &r), 0);
    assert_problem(&r, 400, "VG_EPARSE");
    th_resp_free(&r);

    assert_int_equal(th_curl(t.port, "DELETE", "/items/3", TH_KEY, NULL, &r), 0);
    assert_int_equal(r.status, 204);
    assert_false(th_header(&r, "Content-Length", v, sizeof(v)));
    th_resp_free(&r);

    assert_int_equal(th_curl(t.port, "GET", "/nope", TH_KEY, NULL, &r), 0);
    assert_problem(&r, 404, "VG_ENOTFOUND");
    th_resp_free(&r);

    assert_int_equal(th_curl(t.port, "GET", "/items/1/extra", TH_KEY, NULL, &r), 0);
    assert_problem(&r, 404, "VG_ENOTFOUND");
    th_resp_free(&r);

    assert_int_equal(th_curl(t.port, "PUT", "/items/1", TH_KEY, NULL, &r), 0);
    assert_problem(&r, 405, "VG_EUNSUPPORTED");
    assert_true(th_header(&r, "Allow", v, sizeof(v)));
    assert_string_equal(v, "GET, HEAD, DELETE");
    th_resp_free(&r);

    assert_int_equal(th_curl(t.port, "GET", "/noresp", TH_KEY, NULL, &r), 0);
    assert_problem(&r, 500, "VG_EFATAL");
    th_resp_free(&r);

    /* header lookup is case-insensitive; raw request to control the header name */
    int fd = th_connect(t.port);
    const char *req = "GET /echo?a=1 HTTP/1.1\r\nHost: x\r\nAUTHORIZATION: bearer " TH_KEY
                      "\r\nX-TEST: hi\r\n\r\n";
    th_send(fd, req, strlen(req));
    th_read_resp(fd, &r, false);
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "xTest")), "hi");
    json_decref(j);
    th_resp_free(&r);
    close(fd);
    th_stop(&t);
}

static void test_auth(void **state)
{
    struct th t;
    th_start(&t, NULL, false);
    struct th_resp r;
    char v[256];

    assert_int_equal(th_curl(t.port, "GET", "/hello", NULL, NULL, &r), 0);
    assert_problem(&r, 401, "VG_EAUTH");
    assert_true(th_header(&r, "WWW-Authenticate", v, sizeof(v)));
    assert_string_equal(v, "Bearer realm=\"vigil\"");
    th_resp_free(&r);

    assert_int_equal(th_curl(t.port, "GET", "/hello", "wrong-key", NULL, &r), 0);
    assert_problem(&r, 401, "VG_EAUTH");
    th_resp_free(&r);

    assert_int_equal(th_curl(t.port, "GET", "/hello", TH_KEY "x", NULL, &r), 0);
    assert_int_equal(r.status, 401);
    th_resp_free(&r);

    /* unknown paths don't leak before auth either */
    assert_int_equal(th_curl(t.port, "GET", "/nope", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    th_resp_free(&r);

    raw_expect(t.port, "GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " TH_KEY "\r\n\r\n",
               401, false);
    raw_expect(t.port, "GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n\r\n", 401,
               false);
    raw_expect(t.port,
               "GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer  " TH_KEY "\r\n\r\n", 200,
               false);

    assert_int_equal(th_curl(t.port, "GET", "/hello", TH_KEY, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);

    /* the open (metrics) listener needs no key but serves only open routes */
    assert_int_equal(th_curl(t.metrics_port, "GET", "/metrics", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "vigil_up 1\n");
    th_resp_free(&r);
    assert_int_equal(th_curl(t.metrics_port, "GET", "/hello", TH_KEY, NULL, &r), 0);
    assert_problem(&r, 404, "VG_ENOTFOUND");
    th_resp_free(&r);
    /* and an open route on the API listener still needs the key */
    assert_int_equal(th_curl(t.port, "GET", "/metrics", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    th_resp_free(&r);
    /* a storm of failures is answered with 429 + Retry-After; the right key still works */
    int fd = th_connect(t.port);
    struct vg_buf storm;
    vg_buf_init(&storm);
    for (int i = 0; i < 200; i++)
        vg_buf_printf(&storm,
                      "GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer guess%d\r\n\r\n", i);
    assert_int_equal(th_send(fd, storm.data, storm.len), 0);
    int n401 = 0, n429 = 0;
    for (int i = 0; i < 200; i++) {
        th_read_resp(fd, &r, false);
        if (r.status == 429) {
            n429++;
            assert_problem(&r, 429, "VG_ETHROTTLED");
            assert_true(th_header(&r, "Retry-After", v, sizeof(v)));
        } else {
            assert_problem(&r, 401, "VG_EAUTH");
            n401++;
        }
        th_resp_free(&r);
    }
    assert_true(n401 > 0 && n401 <= 200 - 50 && n429 > 0);
    vg_buf_free(&storm);
    close(fd);
    raw_expect(t.port, "GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n",
               200, false);
    /* RFC 9112: HTTP/1.1 needs exactly one Host; HTTP/1.0 may omit it */
    raw_expect(t.port, "GET /hello HTTP/1.1\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n", 400,
               true);
    raw_expect(t.port,
               "GET /hello HTTP/1.1\r\nHost: x\r\nHost: y\r\nAuthorization: Bearer " TH_KEY
               "\r\n\r\n",
               400, true);
    raw_expect(t.port, "GET /hello HTTP/1.0\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n", 200,
               true);

    th_stop(&t);
}

static void test_no_auth_and_config(void **state)
{
    struct vg_http_config cfg;
    vg_http_config_init(&cfg);
    cfg.no_auth = true;
    struct th t;
    th_start(&t, &cfg, false);
    struct th_resp r;
    assert_int_equal(th_curl(t.port, "GET", "/hello", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
    th_stop(&t);

    /* no key and no explicit --no-auth: an authenticated listener is refused */
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct vg_http_server *s;
    vg_http_config_init(&cfg);
    assert_int_equal(vg_http_server_create(&loop, &cfg, &s), 0);
    assert_int_equal(vg_http_listen(s, "http://127.0.0.1:0", true), VG_ECONFIG);
    assert_int_equal(vg_http_listen(s, "http://127.0.0.1:0", false), 0);
    assert_int_equal(vg_http_listen(s, "ftp://127.0.0.1:0", false), VG_ECONFIG);
    assert_int_equal(vg_http_listen(s, "http://127.0.0.1", false), VG_ECONFIG);
    assert_int_equal(vg_http_listen(s, "http://127.0.0.1:99999", false), VG_ECONFIG);
    assert_int_equal(vg_http_listen(s, "http://localhost:0", false), 0);
    if (vg_http_listen(s, "http://[::1]:0", false) == 0)
        assert_true(vg_http_listener_port(s, 2) > 0);
    assert_int_equal(vg_http_route(s, "GET", "nope", 0, NULL, NULL), VG_EINVAL);
    vg_http_server_close(s, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);

    uv_loop_init(&loop);
    cfg.api_key_hash = "sha256:1234";
    assert_int_equal(vg_http_server_create(&loop, &cfg, &s), VG_ECONFIG);
    cfg.api_key_hash = "md5:d41d8cd98f00b204e9800998ecf8427e";
    assert_int_equal(vg_http_server_create(&loop, &cfg, &s), VG_ECONFIG);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_keepalive_and_pipelining(void **state)
{
    struct th t;
    th_start(&t, NULL, false);
    CURL *c = curl_easy_init();
    char url[128];
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " TH_KEY);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    for (int i = 0; i < 5; i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/items/%d", t.port, i);
        curl_easy_setopt(c, CURLOPT_URL, url);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        long code = 0, connects = -1;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
        assert_int_equal(code, 200);
        assert_int_equal(connects, i == 0 ? 1 : 0); /* reused */
    }
    fclose(devnull);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);

    /* pipelined: four requests in one write, answered in order, one at a time */
    int fd = th_connect(t.port);
    const char *reqs =
        "GET /deferred HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n"
        "GET /items/7 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n"
        "HEAD /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n"
        "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY
        "\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]";
    assert_int_equal(th_send(fd, reqs, strlen(reqs)), 0);
    struct th_resp r;
    th_read_resp(fd, &r, false);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"done\":true}");
    th_resp_free(&r);
    th_read_resp(fd, &r, false);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"7\""));
    th_resp_free(&r);
    th_read_resp(fd, &r, true);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
    th_read_resp(fd, &r, false);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "[]");
    char v[64];
    assert_true(th_header(&r, "Connection", v, sizeof(v)));
    assert_string_equal(v, "close");
    th_resp_free(&r);
    assert_true(th_wait_closed(fd, 5000));
    close(fd);

    /* HTTP/1.0 without keep-alive closes after the response */
    raw_expect(t.port, "GET /hello HTTP/1.0\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n", 200,
               true);

    /* Expect: 100-continue gets an interim response before the body is sent */
    fd = th_connect(t.port);
    const char *hdr = "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY
                      "\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n";
    th_send(fd, hdr, strlen(hdr));
    char line[64] = {0};
    size_t ll = 0;
    while (ll < 25 && read(fd, line + ll, 1) == 1)
        ll++;
    assert_string_equal(line, "HTTP/1.1 100 Continue\r\n\r\n");
    th_send(fd, "{\"a\":1}", 7);
    th_read_resp(fd, &r, false);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"a\":1}");
    th_resp_free(&r);
    close(fd);

    assert_int_equal(th_curl(t.port, "GET", "/stats", TH_KEY, NULL, &r), 0);
    json_t *j = body_json(&r);
    /* 1 curl keep-alive + pipelined + HTTP/1.0 + expect + this one */
    assert_int_equal(json_integer_value(json_object_get(j, "connectionsTotal")), 5);
    json_decref(j);
    th_resp_free(&r);
    th_stop(&t);
}

static void test_limits(void **state)
{
    struct vg_http_config cfg;
    vg_http_config_init(&cfg);
    cfg.max_header_bytes = 4096;
    cfg.max_body_bytes = 1000;
    cfg.max_url_bytes = 512;
    cfg.request_timeout_ms = 300;
    cfg.idle_timeout_ms = 300;
    struct th t;
    th_start(&t, &cfg, false);
    char *big = malloc(64 * 1024);

    /* 431: one huge header; also many small ones */
    snprintf(big, 64 * 1024, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: %0*d\r\n\r\n", 20000, 0);
    raw_expect(t.port, big, 431, true);
    size_t o = (size_t)sprintf(big, "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 150; i++)
        o += (size_t)sprintf(big + o, "X-%d: 1\r\n", i);
    strcpy(big + o, "\r\n");
    raw_expect(t.port, big, 431, true);

    /* 413: declared and chunked */
    raw_expect(t.port,
               "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY
               "\r\nContent-Length: 5000\r\n\r\n",
               413, true);
    o = (size_t)sprintf(big, "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY
                             "\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++)
        o += (size_t)sprintf(big + o, "190\r\n%0400d\r\n", 0);
    strcpy(big + o, "0\r\n\r\n");
    raw_expect(t.port, big, 413, true);

    /* 414 */
    snprintf(big, 64 * 1024, "GET /items/%0*d HTTP/1.1\r\nHost: x\r\n\r\n", 1000, 0);
    raw_expect(t.port, big, 414, true);

    /* 400: malformed, bad method, traversal, NUL, encoded slash, bad escapes */
    raw_expect(t.port, "GARBAGE\r\n\r\n", 400, true);
    raw_expect(
        t.port,
        "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n" AUTHH
        "\r\n",
        400, true);
    raw_expect(t.port, "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n" AUTHH "\r\n", 400, true);
    raw_expect(t.port, "FROB /hello HTTP/1.1\r\n\r\n", 400, true);
    raw_expect(t.port, "GET /hello HTTP/9.9\r\n\r\n", 400, true);
    raw_expect(t.port, "GET /hello HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
               true);
    const char *bad_targets[] = {"/items/..",  "/items/%2e%2E",  "/items/a%00b", "/items/a%2fb",
                                 "/items/%zz", "/items/%4",      "/../hello",    "/./hello",
                                 "*",          "http://x/hello", "/echo?a=%00",  "/echo?a=%G1"};
    for (size_t i = 0; i < sizeof(bad_targets) / sizeof(*bad_targets); i++) {
        snprintf(big, 64 * 1024,
                 "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n",
                 bad_targets[i]);
        int fd = th_connect(t.port);
        th_send(fd, big, strlen(big));
        struct th_resp r;
        th_read_resp(fd, &r, false);
        assert_problem(&r, 400, "VG_EINVAL");
        th_resp_free(&r);
        assert_true(th_wait_closed(fd, 5000));
        close(fd);
    }

    /* slowloris: half a request, then silence -> 408 and closed after RequestTimeout */
    int fd = th_connect(t.port);
    const char *part = "GET /hello HTTP/1.1\r\nHost: x\r\n";
    th_send(fd, part, strlen(part));
    struct th_resp r;
    th_read_resp(fd, &r, false);
    assert_problem(&r, 408, "VG_ETIMEDOUT");
    th_resp_free(&r);
    assert_true(th_wait_closed(fd, 5000));
    close(fd);
    /* a connection that never sends anything is dropped too */
    fd = th_connect(t.port);
    assert_true(th_wait_closed(fd, 5000));
    close(fd);
    /* keep-alive connection idles out after a response */
    fd = th_connect(t.port);
    const char *ok = "GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n";
    th_send(fd, ok, strlen(ok));
    th_read_resp(fd, &r, false);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
    assert_true(th_wait_closed(fd, 5000));
    close(fd);

    /* still fine afterwards */
    assert_int_equal(th_curl(t.port, "GET", "/hello", TH_KEY, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
    free(big);
    th_stop(&t);
}

static void test_max_connections(void **state)
{
    struct vg_http_config cfg;
    vg_http_config_init(&cfg);
    cfg.max_connections = 3;
    cfg.metrics_max_connections = 2;
    struct th t;
    th_start(&t, &cfg, false);
    int fds[3];
    const char *ok = "GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n";
    const char *partial = "GET /hello HTTP/1.1\r\nHost: x\r\n";
    struct th_resp r;
    /* three keep-alive connections, idle after one request each */
    for (int i = 0; i < 3; i++) {
        fds[i] = th_connect(t.port);
        th_send(fds[i], ok, strlen(ok));
        th_read_resp(fds[i], &r, false); /* makes sure the server holds it */
        assert_int_equal(r.status, 200);
        th_resp_free(&r);
    }
    /* a full budget of idle connections: the one idle longest is cut for the newcomer */
    int extra = th_connect(t.port);
    th_send(extra, ok, strlen(ok));
    th_read_resp(extra, &r, false);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
    /* the oldest (fds[0]), unless they went idle within the same millisecond: then any one */
    int cut = -1;
    for (int tries = 0; tries < 250 && cut < 0; tries++) {
        for (int i = 0; i < 3 && cut < 0; i++)
            if (th_wait_closed(fds[i], 0))
                cut = i;
        if (cut < 0)
            usleep(20000);
    }
    assert_true(cut >= 0);
    close(fds[cut]);
    fds[cut] = extra;
    /* a full budget of requests in progress: the next connection is refused */
    for (int i = 0; i < 3; i++)
        th_send(fds[i], partial, strlen(partial));
    usleep(100000); /* the server has read them */
    extra = th_connect(t.port);
    th_read_resp(extra, &r, false);
    assert_problem(&r, 503, "VG_EBUSY");
    th_resp_free(&r);
    assert_true(th_wait_closed(extra, 5000));
    close(extra);
    /* the metrics listener has its own budget: a full API leaves the scraper room, and a full
     * metrics budget (requests in progress) refuses the next scraper */
    const char *scrape = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    int mfds[2];
    for (int i = 0; i < 2; i++) {
        mfds[i] = th_connect(t.metrics_port);
        th_send(mfds[i], scrape, strlen(scrape));
        th_read_resp(mfds[i], &r, false);
        assert_int_equal(r.status, 200);
        th_resp_free(&r);
        th_send(mfds[i], partial, strlen(partial));
    }
    usleep(100000);
    extra = th_connect(t.metrics_port);
    th_read_resp(extra, &r, false);
    assert_problem(&r, 503, "VG_EBUSY");
    th_resp_free(&r);
    close(extra);
    for (int i = 0; i < 2; i++)
        close(mfds[i]);
    close(fds[0]);
    /* once one goes away there is room again (the server notices the close asynchronously) */
    int status = 0;
    for (int tries = 0; tries < 100 && status != 200; tries++) {
        th_curl(t.port, "GET", "/hello", TH_KEY, NULL, &r);
        status = r.status;
        th_resp_free(&r);
        if (status != 200)
            usleep(20000);
    }
    assert_int_equal(status, 200);
    close(fds[1]);
    close(fds[2]);
    th_stop(&t);
}

static void test_deferred_cancel(void **state)
{
    struct vg_http_config cfg;
    vg_http_config_init(&cfg);
    cfg.shutdown_timeout_ms = 200;
    struct th t;
    th_start(&t, &cfg, false);
    struct th_resp r;
    assert_int_equal(th_curl(t.port, "GET", "/deferred", TH_KEY, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);

    /* client leaves while the response is deferred: the handler hears about it */
    int fd = th_connect(t.port);
    const char *req = "GET /hang HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n";
    th_send(fd, req, strlen(req));
    assert_int_equal(th_wait_count(&t.deferred, 2, 5000), 2); /* the handler has it */
    close(fd);
    assert_int_equal(th_wait_count(&t.canceled, 1, 5000), 1);

    /* shutdown with a response still deferred: canceled after the shutdown timeout */
    fd = th_connect(t.port);
    th_send(fd, req, strlen(req));
    assert_int_equal(th_wait_count(&t.deferred, 3, 5000), 3);
    th_stop(&t);
    assert_int_equal(atomic_load(&t.canceled), 2);
    close(fd);
}

#define STREAM_BOUND (256 * 1024)
#define PRODUCER_WRITE 10000 /* harness.c's producer writes this much at a time */

struct slow_sink {
    int port;
    size_t len;
    size_t bad;
    int calls;
    long long peak_seen; /* the server's queue when the first block arrived */
};

static size_t slow_write(char *p, size_t sz, size_t n, void *ud)
{
    struct slow_sink *s = ud;
    size_t len = sz * n;
    /* Not reading while the producer goes on: once the socket buffers are full, its writes
     * queue up to the bound (within one write) and block there. */
    if (s->calls++ == 0 && s->port)
        s->peak_seen =
            th_wait_stat(s->port, "streamPeakQueued", STREAM_BOUND - PRODUCER_WRITE, 20000);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] != (unsigned char)((s->len + i) * 7 % 251))
            s->bad++;
    s->len += len;
    return len;
}

static void test_stream(void **state)
{
    struct vg_http_config cfg;
    vg_http_config_init(&cfg);
    cfg.stream_buffer_bytes = STREAM_BOUND;
    struct th t;
    th_start(&t, &cfg, false);
    const size_t total = 32u * 1024 * 1024;
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/stream?size=%zu", t.port, total);
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " TH_KEY);
    struct slow_sink sink = {.port = t.port};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, slow_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 200);
    assert_int_equal(sink.len, total);
    assert_int_equal(sink.bad, 0);
    assert_true(sink.peak_seen >= STREAM_BOUND - PRODUCER_WRITE); /* the producer hit the bound */
    /* and the connection is reusable after a chunked response */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/stream?size=100", t.port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    memset(&sink, 0, sizeof(sink));
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long connects = -1;
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    assert_int_equal(connects, 0);
    assert_int_equal(sink.len, 100);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);

    struct th_resp r;
    assert_int_equal(th_curl(t.port, "GET", "/stats", TH_KEY, NULL, &r), 0);
    json_t *j = body_json(&r);
    json_int_t peak = json_integer_value(json_object_get(j, "streamPeakQueued"));
    /* bounded: never more than the configured buffer was held, though it filled up */
    assert_true(peak >= STREAM_BOUND - PRODUCER_WRITE);
    assert_true(peak <= STREAM_BOUND);
    json_decref(j);
    th_resp_free(&r);

    /* HEAD on a stream: headers only, producer told to stop */
    assert_int_equal(th_curl(t.port, "HEAD", "/stream?size=100000", TH_KEY, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_null(r.body);
    th_resp_free(&r);

    /* the client goes away mid-stream: the producer gets VG_ECANCELED */
    int fd = th_connect(t.port);
    const char *req = "GET /stream?size=100000000000 HTTP/1.1\r\nHost: x\r\nAuthorization: "
                      "Bearer " TH_KEY "\r\n\r\n";
    th_send(fd, req, strlen(req));
    char buf[8192];
    assert_true(read(fd, buf, sizeof(buf)) > 0);
    close(fd);
    assert_int_equal(th_wait_count(&t.stream_canceled, 2, 5000), 2); /* HEAD + this one */

    /* HTTP/1.0: no chunking, body delimited by close */
    fd = th_connect(t.port);
    req = "GET /stream?size=5000 HTTP/1.0\r\nAuthorization: Bearer " TH_KEY "\r\n\r\n";
    th_send(fd, req, strlen(req));
    size_t got = 0;
    char *all = malloc(65536);
    ssize_t k;
    while ((k = read(fd, all + got, 65536 - got)) > 0)
        got += (size_t)k;
    all[got] = '\0';
    char *body = strstr(all, "\r\n\r\n");
    assert_non_null(body);
    assert_null(strstr(all, "chunked"));
    assert_int_equal(got - (size_t)(body + 4 - all), 5000);
    free(all);
    close(fd);
    th_stop(&t);
    assert_int_equal(atomic_load(&t.stream_done), 3);
}

/* A client that asks for a large body and never reads it is cut off; the producer hears of it. */
static void test_write_stall(void **state)
{
    struct vg_http_config cfg;
    vg_http_config_init(&cfg);
    cfg.request_timeout_ms = 300;
    cfg.stream_buffer_bytes = 64 * 1024;
    struct th t;
    th_start(&t, &cfg, false);
    int fd = th_connect(t.port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    const char *req = "GET /stream?size=100000000000 HTTP/1.1\r\nHost: x\r\nAuthorization: "
                      "Bearer " TH_KEY "\r\n\r\n";
    th_send(fd, req, strlen(req));
    assert_int_equal(th_wait_count(&t.stream_canceled, 1, 10000), 1);
    close(fd);
    th_stop(&t);
}

static size_t sink_str(char *p, size_t sz, size_t n, void *ud)
{
    strncat(ud, p, sz * n < 100 ? sz * n : 100);
    return sz * n;
}

static void test_unix_socket(void **state)
{
    struct th t;
    th_start(&t, NULL, true);
    CURL *c = curl_easy_init();
    char out[256] = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " TH_KEY);
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, t.unix_path);
    curl_easy_setopt(c, CURLOPT_URL, "http://localhost/hello");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_str);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(code, 200);
    assert_string_equal(out, "hello\n");
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    /* a live socket is never taken over by a second server */
    uv_loop_t loop2;
    uv_loop_init(&loop2);
    struct vg_http_server *s2;
    struct vg_http_config cfg;
    vg_http_config_init(&cfg);
    assert_int_equal(vg_http_server_create(&loop2, &cfg, &s2), 0);
    char url[160];
    snprintf(url, sizeof(url), "unix:%s", t.unix_path);
    assert_int_equal(vg_http_listen(s2, url, false), UV_EADDRINUSE);
    vg_http_server_close(s2, NULL, NULL);
    uv_run(&loop2, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop2), 0);
    assert_int_equal(access(t.unix_path, F_OK), 0);
    th_stop(&t);

    /* a stale socket file (nobody listening) is replaced */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, t.unix_path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    uv_loop_init(&loop2);
    assert_int_equal(vg_http_server_create(&loop2, &cfg, &s2), 0);
    assert_int_equal(vg_http_listen(s2, url, false), 0);
    vg_http_server_close(s2, NULL, NULL);
    uv_run(&loop2, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop2), 0);
    assert_int_equal(access(t.unix_path, F_OK), -1);
}

static char *capture_cmd(int argc, char **argv, int *rc)
{
    char path[] = "/tmp/vg-genkey-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    *rc = vg_cmd_generatekey(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *s = calloc(1, (size_t)len + 1);
    assert_int_equal(pread(fd, s, (size_t)len, 0), len);
    close(fd);
    unlink(path);
    return s;
}

static void test_generatekey(void **state)
{
    char *argv_yaml[] = {"generatekey", NULL};
    int rc;
    char *out = capture_cmd(1, argv_yaml, &rc);
    assert_int_equal(rc, 0);
    const char *k = strstr(out, "# Key: ");
    const char *hh = strstr(out, "Server:\n  Auth:\n    ApiKeyHash: \"sha256:");
    assert_non_null(k);
    assert_non_null(hh);
    char key[VG_HTTP_APIKEY_LEN + 1] = {0}, hash[VG_HTTP_APIKEY_HASH_LEN + 1] = {0};
    memcpy(key, k + 7, VG_HTTP_APIKEY_LEN);
    assert_int_equal(k[7 + VG_HTTP_APIKEY_LEN], '\n');
    assert_int_equal(
        strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        VG_HTTP_APIKEY_LEN);
    memcpy(hash, strstr(hh, "sha256:"), VG_HTTP_APIKEY_HASH_LEN);
    char expect[VG_HTTP_APIKEY_HASH_LEN + 1];
    assert_int_equal(vg_http_apikey_hash(key, expect), 0);
    assert_string_equal(hash, expect);
    free(out);

    char *argv_json[] = {"generatekey", "--output", "json", NULL};
    out = capture_cmd(3, argv_json, &rc);
    assert_int_equal(rc, 0);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    assert_non_null(j);
    const char *jk = json_string_value(json_object_get(j, "apiKey"));
    assert_int_equal(strlen(jk), VG_HTTP_APIKEY_LEN);
    assert_string_not_equal(jk, key); /* fresh randomness each time */
    assert_int_equal(vg_http_apikey_hash(jk, expect), 0);
    assert_string_equal(json_string_value(json_object_get(j, "apiKeyHash")), expect);

    /* a server configured with that hash accepts that key and only that key */
    struct vg_http_config cfg;
    vg_http_config_init(&cfg);
    cfg.api_key_hash = expect;
    struct th t;
    th_start(&t, &cfg, false);
    struct th_resp r;
    assert_int_equal(th_curl(t.port, "GET", "/hello", jk, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    th_resp_free(&r);
    assert_int_equal(th_curl(t.port, "GET", "/hello", key, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    th_resp_free(&r);
    th_stop(&t);
    json_decref(j);
    free(out);

    char *argv_bad[] = {"generatekey", "--output", "xml", NULL};
    out = capture_cmd(3, argv_bad, &rc);
    assert_int_equal(rc, 2);
    free(out);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_and_errors),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_no_auth_and_config),
        cmocka_unit_test(test_keepalive_and_pipelining),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_deferred_cancel),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_write_stall),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_generatekey),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
