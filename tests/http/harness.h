/* Test harness: a real vigil HTTP server on 127.0.0.1 (ephemeral ports) in a loop on a thread,
 * plus raw-socket and libcurl clients. */
#ifndef VG_TEST_HTTP_HARNESS_H
#define VG_TEST_HTTP_HARNESS_H

#include "engine/http/http.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define TH_KEY "test-key-0123456789"

struct th {
    uv_loop_t loop;
    struct vg_http_server *srv;
    uv_thread_t thr;
    uv_async_t stop;
    uv_timer_t keepalive; /* holds the loop open until stop */
    int port;             /* API listener (auth unless no_auth) */
    int metrics_port;     /* open listener */
    char unix_path[108];
    uv_thread_t producers[32];
    atomic_int n_producers;
    atomic_int deferred;        /* deferred responses begun (handler ran) */
    atomic_int canceled;        /* deferred responses canceled */
    atomic_int stream_canceled; /* producers that saw VG_ECANCELED */
    atomic_int stream_done;     /* producers that finished */
    struct vg_http_stats stats; /* snapshot at stop */
};

/* cfg may be NULL (defaults + TH_KEY's hash). unix_listener adds a Unix socket listener. */
void th_start(struct th *t, struct vg_http_config *cfg, bool unix_listener);
/* Closes the server gracefully, joins the loop thread, asserts uv_loop_close()==0. */
void th_stop(struct th *t);

struct th_resp {
    int status;
    char headers[8192];
    char *body;
    size_t body_len;
};
void th_resp_free(struct th_resp *r);
/* Case-insensitive header value into buf; false when absent. */
bool th_header(const struct th_resp *r, const char *name, char *buf, size_t n);

/* Raw sockets. */
int th_connect(int port);
int th_send(int fd, const void *data, size_t len);
/* Reads one response; status 0 on EOF/timeout before a full response. */
void th_read_resp(int fd, struct th_resp *r, bool head_request);
/* True when the peer closed (EOF or reset) within timeout_ms. */
bool th_wait_closed(int fd, int timeout_ms);

/* libcurl: path like "/hello"; key NULL = no Authorization header. */
int th_curl(int port, const char *method, const char *path, const char *key, const char *body,
            struct th_resp *r);

/* Polls until *counter >= want (every 10 ms, at most timeout_ms); returns its last value. Tests
 * wait for what the server did, never for a fixed time. */
int th_wait_count(atomic_int *counter, int want, int timeout_ms);
/* Polls GET /stats until field >= want (at most timeout_ms); returns its last value. */
long long th_wait_stat(int port, const char *field, long long want, int timeout_ms);

#endif
