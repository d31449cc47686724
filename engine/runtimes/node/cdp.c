#include "engine/runtimes/node/cdp.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "engine/runtimes/node/netns.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "node:cdp"
#define TICK_MS 100
#define HTTP_BODY_MAX (64 * 1024)
#define DEFAULT_MAX_MSG (16u * 1024 * 1024)
#define DEFAULT_CONNECT_MS 5000
#define WS_PATH_MAX 128
#define RX_BUFFER (64 * 1024)

enum { ST_CONNECTING = 0, ST_OPEN, ST_HTTP_DONE, ST_CLOSED };

struct vg_cdp {
    struct lws_context *ctx;
    struct lws *wsi;
    int state;
    int rc; /* first failure; sticky: the session is unusable afterwards */
    char err[VG_CDP_ERR_MAX];
    bool http;
    struct vg_buf body;
    struct vg_cdp_reader rd;
    atomic_bool *cancel;
    const atomic_bool *until; /* vg_cdp_wait_until's stop flag while it waits */
    uint64_t last_rx;
    lws_sorted_usec_list_t tick;
    unsigned char *out; /* LWS_PRE bytes of headroom, then the pending message */
    size_t out_len;
    bool out_pending;
    int64_t next_id;
    int64_t wait_id;
    json_t *resp; /* the awaited response, once it came */
    vg_cdp_event_fn ev;
    void *ev_ctx;
    char hostport[80];
    struct lws_client_connect_info ci;
};

static int failf(struct vg_cdp *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(struct vg_cdp *s, int rc, const char *fmt, ...)
{
    if (s->rc)
        return s->rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    s->rc = rc;
    return rc;
}

static void lws_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    vg_log(VG_LOG_DEBUG, "node:lws", "%.*s", (int)n, line);
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static void setup_log(void)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);
}

static int on_message(void *ctx, json_t *msg)
{
    struct vg_cdp *s = ctx;
    json_t *id = json_object_get(msg, "id");
    if (json_is_integer(id)) {
        if (json_integer_value(id) == s->wait_id && !s->resp)
            s->resp = json_incref(msg);
        return 0; /* a late answer to an abandoned call is dropped */
    }
    const char *method = json_string_value(json_object_get(msg, "method"));
    if (method && s->ev)
        return s->ev(s->ev_ctx, method, json_object_get(msg, "params"));
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct vg_cdp *s = lws_context_user(lws_get_context(wsi));
    int rc;
    if (!s || (s->wsi && s->wsi != wsi))
        return 0;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        failf(s, in && strstr((const char *)in, "connect") ? VG_ECONNREFUSED : VG_EPROTO,
              "%s:%d: %s", s->ci.address, s->ci.port,
              in && len ? (const char *)in : "connection failed");
        s->state = ST_CLOSED;
        s->wsi = NULL;
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        s->state = ST_OPEN;
        s->last_rx = vg_mono_ms();
        if (s->out_pending)
            lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        s->last_rx = vg_mono_ms();
        if (lws_frame_is_binary(wsi)) {
            failf(s, VG_EPROTO, "inspector sent a binary message");
            return -1;
        }
        rc = vg_cdp_reader_feed(&s->rd, in, len,
                                lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi));
        if (rc == VG_E2BIG)
            failf(s, rc, "inspector sent a message larger than %zu bytes", s->rd.max_msg);
        else if (rc == VG_EPROTO)
            failf(s, rc, "inspector sent a message that is not a CDP JSON object");
        else if (rc < 0)
            failf(s, rc, "%s", vg_strerror(rc));
        return rc < 0 ? -1 : 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!s->out_pending)
            return 0;
        if (lws_write(wsi, s->out + LWS_PRE, s->out_len, LWS_WRITE_TEXT) < (int)s->out_len) {
            failf(s, VG_ECONNRESET, "sending to the inspector failed");
            return -1;
        }
        s->out_pending = false;
        return 0;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        s->last_rx = vg_mono_ms();
        rc = (int)lws_http_client_http_response(wsi);
        if (s->http && rc != 200) {
            failf(s, VG_EPROTO, "GET /json/list on %s answered HTTP %d: not a Node inspector",
                  s->hostport, rc);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        char buf[LWS_PRE + 4096];
        char *p = buf + LWS_PRE;
        int n = (int)sizeof(buf) - LWS_PRE;
        return lws_http_client_read(wsi, &p, &n) < 0 ? -1 : 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
        s->last_rx = vg_mono_ms();
        if (s->body.len + len > HTTP_BODY_MAX) {
            failf(s, VG_EPROTO, "GET /json/list on %s: answer larger than %d bytes", s->hostport,
                  HTTP_BODY_MAX);
            return -1;
        }
        if (vg_buf_append(&s->body, in, len) < 0) {
            failf(s, VG_ENOMEM, "out of memory");
            return -1;
        }
        return 0;
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        s->state = ST_HTTP_DONE;
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
        if (s->state != ST_HTTP_DONE)
            s->state = ST_CLOSED;
        s->wsi = NULL;
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"vg-cdp", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void tick(lws_sorted_usec_list_t *sul)
{
    struct vg_cdp *s = lws_container_of(sul, struct vg_cdp, tick);
    /* Only to make lws_service() return, so deadlines and the cancel flag are checked. */
    lws_sul_schedule(s->ctx, 0, &s->tick, tick, TICK_MS * LWS_US_PER_MS);
}

static void destroy(struct vg_cdp *s)
{
    if (!s)
        return;
    if (s->ctx)
        lws_context_destroy(s->ctx);
    json_decref(s->resp);
    vg_cdp_reader_free(&s->rd);
    vg_buf_free(&s->body);
    free(s->out);
    free(s);
}

static int connect_job(void *arg)
{
    struct vg_cdp *s = arg;
    /* lws creates and connects the socket inside this call for a numeric address, so the socket
     * belongs to the namespace of the thread running it. */
    s->wsi = lws_client_connect_via_info(&s->ci);
    if (!s->wsi)
        return failf(s, VG_ECONNREFUSED, "%s: connection failed", s->hostport);
    return 0;
}

typedef bool (*done_fn)(const struct vg_cdp *s);

static int pump(struct vg_cdp *s, done_fn done, uint64_t deadline, uint32_t idle_ms,
                const char *what)
{
    for (;;) {
        if (done(s))
            return 0;
        if (s->rc)
            return s->rc;
        if (s->state == ST_CLOSED || !s->wsi)
            return failf(s, VG_ECONNRESET, "%s: the inspector closed the connection during %s",
                         s->hostport, what ? what : "a wait");
        if (s->cancel && atomic_load(s->cancel))
            return failf(s, VG_ECANCELED, "%s canceled", what ? what : "wait");
        uint64_t now = vg_mono_ms();
        if (now >= deadline && !what)
            return 0; /* vg_cdp_wait: the deadline is the point */
        if (now >= deadline)
            return failf(s, VG_ETIMEDOUT, "%s: no answer to %s in time", s->hostport, what);
        if (idle_ms && now - s->last_rx >= idle_ms)
            return failf(s, VG_ETIMEDOUT, "%s: the inspector sent nothing for %u ms during %s",
                         s->hostport, idle_ms, what);
        lws_service(s->ctx, 0);
    }
}

static int start(const struct vg_cdp_addr *addr, const char *method, const char *path,
                 const struct vg_cdp_opts *opts, struct vg_cdp **out)
{
    pthread_once(&log_once, setup_log);
    struct vg_cdp *s = calloc(1, sizeof(*s));
    if (!s)
        return VG_ENOMEM;
    *out = s;
    vg_buf_init(&s->body);
    vg_cdp_reader_init(&s->rd, opts && opts->max_msg ? opts->max_msg : DEFAULT_MAX_MSG, on_message,
                       s);
    s->cancel = opts ? opts->cancel : NULL;
    s->http = method != NULL;
    snprintf(s->hostport, sizeof(s->hostport), strchr(addr->host, ':') ? "[%s]:%d" : "%s:%d",
             addr->host, addr->port);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = s;
    info.gid = (gid_t)-1;
    info.uid = (uid_t)-1;
    /* One connection per context: no need for lws's table sized by the fd limit. */
    info.fd_limit_per_thread = 8;
    /* lws reads the socket into this buffer: its 4 KB default meant a poll and a read per 4 KB
     * of a heap snapshot (whose chunks are tens of KB) */
    info.pt_serv_buf_size = RX_BUFFER;
    s->ctx = lws_create_context(&info);
    if (!s->ctx)
        return failf(s, VG_ENOMEM, "cannot create a libwebsockets context");
    lws_sul_schedule(s->ctx, 0, &s->tick, tick, TICK_MS * LWS_US_PER_MS);

    s->ci.context = s->ctx;
    s->ci.address = addr->host;
    s->ci.port = addr->port;
    s->ci.path = path;
    s->ci.host = s->hostport; /* the inspector accepts only IP or localhost Host headers */
    s->ci.method = method;    /* NULL: WebSocket upgrade */
    s->ci.local_protocol_name = protocols[0].name;
    s->ci.ietf_version_or_minus_one = -1;
    int rc = vg_node_in_netns(addr->proc_root, addr->netns_pid > 0 ? addr->netns_pid : getpid(),
                              connect_job, s);
    if (rc < 0)
        return failf(s, rc, "%s: cannot connect from the network namespace of pid %d: %s",
                     s->hostport, addr->netns_pid, vg_strerror(rc));
    return 0;
}

static bool http_done(const struct vg_cdp *s)
{
    return s->state == ST_HTTP_DONE;
}

static bool ws_open(const struct vg_cdp *s)
{
    return s->state == ST_OPEN;
}

static int connect_ms(const struct vg_cdp_opts *opts)
{
    return opts && opts->connect_timeout_ms ? (int)opts->connect_timeout_ms : DEFAULT_CONNECT_MS;
}

static void copy_err(char *err, size_t err_len, const struct vg_cdp *s, int rc)
{
    if (err && err_len)
        snprintf(err, err_len, "%s", s && s->err[0] ? s->err : vg_strerror(rc));
}

/* The path of "ws://HOST:PORT/PATH", checked to be a plain token. */
static int ws_path_of(const char *url, char *path, size_t path_len)
{
    const char *p = strncmp(url, "ws://", 5) == 0 ? strchr(url + 5, '/') : NULL;
    if (!p)
        return VG_EPROTO;
    size_t n = strlen(p);
    if (n < 2 || n > WS_PATH_MAX || n >= path_len)
        return VG_EPROTO;
    for (size_t i = 1; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return VG_EPROTO;
    }
    memcpy(path, p, n + 1);
    return 0;
}

int vg_cdp_list(const struct vg_cdp_addr *addr, const struct vg_cdp_opts *opts, char *path,
                size_t path_len, char *err, size_t err_len)
{
    struct vg_cdp *s = NULL;
    json_t *list = NULL;
    int rc = start(addr, "GET", "/json/list", opts, &s);
    if (rc < 0)
        goto out;
    s->last_rx = vg_mono_ms();
    rc = pump(s, http_done, vg_mono_ms() + (uint64_t)connect_ms(opts), 0, "GET /json/list");
    if (rc < 0)
        goto out;
    json_error_t jerr;
    list = json_loadb(s->body.data ? s->body.data : "", s->body.len, 0, &jerr);
    json_t *first = json_is_array(list) ? json_array_get(list, 0) : NULL;
    const char *url = json_string_value(json_object_get(first, "webSocketDebuggerUrl"));
    if (!url || ws_path_of(url, path, path_len) < 0) {
        rc = failf(s, VG_EPROTO,
                   "GET /json/list on %s: no target with a webSocketDebuggerUrl in the answer "
                   "(not a Node inspector, or a debugger is already attached)",
                   s->hostport);
        goto out;
    }
out:
    copy_err(err, err_len, s, rc);
    json_decref(list);
    destroy(s);
    return rc;
}

int vg_cdp_open(const struct vg_cdp_addr *addr, const char *path, const struct vg_cdp_opts *opts,
                struct vg_cdp **out, char *err, size_t err_len)
{
    struct vg_cdp *s = NULL;
    *out = NULL;
    int rc = start(addr, NULL, path, opts, &s);
    if (rc < 0)
        goto out;
    s->last_rx = vg_mono_ms();
    rc = pump(s, ws_open, vg_mono_ms() + (uint64_t)connect_ms(opts), 0, "the WebSocket handshake");
out:
    if (rc < 0) {
        copy_err(err, err_len, s, rc);
        destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

void vg_cdp_close(struct vg_cdp *s)
{
    destroy(s);
}

void vg_cdp_set_cancel(struct vg_cdp *s, atomic_bool *cancel)
{
    if (s)
        s->cancel = cancel;
}

const char *vg_cdp_error(const struct vg_cdp *s)
{
    return s ? s->err : "";
}

void vg_cdp_on_event(struct vg_cdp *s, vg_cdp_event_fn fn, void *ctx)
{
    s->ev = fn;
    s->ev_ctx = ctx;
}

static bool got_response(const struct vg_cdp *s)
{
    return s->resp != NULL;
}

static bool got_stream(const struct vg_cdp *s)
{
    return s->rd.stream_done || s->resp != NULL;
}

static int send_request(struct vg_cdp *s, const char *method, json_t *params)
{
    json_t *req = json_pack("{sIss}", "id", (json_int_t)++s->next_id, "method", method);
    if (!req)
        return failf(s, VG_ENOMEM, "out of memory");
    if (params)
        json_object_set(req, "params", params);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!text)
        return failf(s, VG_ENOMEM, "out of memory");
    size_t n = strlen(text);
    unsigned char *out = realloc(s->out, LWS_PRE + n);
    if (!out) {
        free(text);
        return failf(s, VG_ENOMEM, "out of memory");
    }
    s->out = out;
    memcpy(s->out + LWS_PRE, text, n);
    free(text);
    s->out_len = n;
    s->out_pending = true;
    s->wait_id = s->next_id;
    json_decref(s->resp);
    s->resp = NULL;
    s->last_rx = vg_mono_ms();
    lws_callback_on_writable(s->wsi);
    return 0;
}

/* An error response: {"id":N,"error":{"code":C,"message":M}}. */
static int error_response(struct vg_cdp *s, const char *method)
{
    json_t *e = json_object_get(s->resp, "error");
    const char *m = json_string_value(json_object_get(e, "message"));
    snprintf(s->err, sizeof(s->err), "%s failed in the target: %s", method,
             m ? m : "malformed response");
    return VG_EPROTO;
}

int vg_cdp_call(struct vg_cdp *s, const char *method, json_t *params, uint32_t timeout_ms,
                uint32_t idle_ms, json_t **result)
{
    if (result)
        *result = NULL;
    if (s->rc)
        return s->rc;
    int rc = send_request(s, method, params);
    if (rc < 0)
        return rc;
    rc = pump(s, got_response, vg_mono_ms() + timeout_ms, idle_ms, method);
    if (rc < 0)
        return rc;
    json_t *res = json_object_get(s->resp, "result");
    if (!json_is_object(res))
        return error_response(s, method);
    if (result)
        *result = json_incref(res);
    return 0;
}

int vg_cdp_call_stream(struct vg_cdp *s, const char *method, json_t *params,
                       const char *inner_prefix, unsigned depth, vg_node_sink_fn sink,
                       void *sink_ctx, uint32_t timeout_ms, uint32_t idle_ms, uint64_t *streamed)
{
    *streamed = 0;
    if (s->rc)
        return s->rc;
    int rc = vg_cdp_reader_stream(&s->rd, s->next_id + 1, inner_prefix, depth, sink, sink_ctx);
    if (rc < 0)
        return failf(s, rc, "stream prefix too long");
    rc = send_request(s, method, params);
    if (rc < 0)
        return rc;
    rc = pump(s, got_stream, vg_mono_ms() + timeout_ms, idle_ms, method);
    s->rd.armed = false;
    *streamed = s->rd.streamed;
    if (rc < 0)
        return rc;
    if (s->rd.stream_done)
        return 0;
    if (json_object_get(s->resp, "error"))
        return error_response(s, method);
    /* A result that does not start as documented: nothing was streamed. */
    snprintf(s->err, sizeof(s->err), "%s: the result does not start with %s", method, inner_prefix);
    return VG_EPROTO;
}

static bool stop_raised(const struct vg_cdp *s)
{
    return s->until && atomic_load(s->until);
}

int vg_cdp_wait_until(struct vg_cdp *s, uint32_t ms, const atomic_bool *stop)
{
    if (s->rc)
        return s->rc;
    s->until = stop;
    int rc = pump(s, stop_raised, ms || !stop ? vg_mono_ms() + ms : UINT64_MAX, 0, NULL);
    s->until = NULL;
    return rc;
}

int vg_cdp_wait(struct vg_cdp *s, uint32_t ms)
{
    return vg_cdp_wait_until(s, ms, NULL);
}
