/* HTTP server internals shared by http.c, http_auth.c and the fuzz target.
 *
 * A connection's protocol logic never touches a socket: bytes come in through
 * vg__http_conn_feed() and leave through a transport vtable, so the fuzz target can drive the
 * exact parse/dispatch path from a buffer. */
#ifndef VG_HTTP_INT_H
#define VG_HTTP_INT_H

#include "config/util.h"
#include "engine/http/http.h"

#include <llhttp.h>

#define VG__HTTP_MAX_PARAMS 8
#define VG__HTTP_MAX_HEADERS 100
/* Failed authentications per second (server-wide) before 429 instead of 401. */
#define VG__HTTP_AUTH_FAILURES_PER_SEC 50

struct vg__http_conn;

struct vg__http_kv {
    char *name;
    char *value;
};

/* One queued write: up to 3 buffers, freed when done. */
struct vg__http_wreq {
    struct vg__http_wreq *next; /* free for the transport's own use */
    struct vg__http_conn *conn;
    uv_write_t uv;
    uv_buf_t bufs[3];
    unsigned nbufs;
    void *owned[3];
    size_t stream_bytes; /* payload counted against the stream's queue */
};

struct vg__http_transport {
    /* Queues w; completion is reported later by vg__http_write_done(), never from inside. */
    int (*write)(struct vg__http_conn *c, struct vg__http_wreq *w);
    /* Half-closes the write side once queued writes are done. */
    void (*shutdown)(struct vg__http_conn *c);
    void (*read_start)(struct vg__http_conn *c);
    void (*read_stop)(struct vg__http_conn *c);
    /* Starts releasing the transport; it later calls vg__http_conn_fini() and frees c. Pending
     * writes complete (with an error) before that. */
    void (*close)(struct vg__http_conn *c);
};

struct vg__http_listener {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    struct vg_http_server *server;
    bool require_auth;
    bool is_pipe;
    int port;
    char *unix_path;
};

struct vg__http_route;

struct vg_http_req {
    struct vg__http_conn *conn;
    const char *method;
    struct vg_buf url;
    char *path;
    char **segs;
    size_t n_segs;
    struct vg__http_kv *query;
    size_t n_query;
    struct vg__http_kv *headers;
    size_t n_headers;
    struct vg_buf field;
    struct vg_buf value;
    uint64_t header_bytes;
    struct vg_buf body;
    const struct vg__http_route *route;
    struct vg__http_kv params[VG__HTTP_MAX_PARAMS];
    size_t n_params;
    bool head;
};

enum vg__http_res_state {
    VG__RES_NONE = 0, /* handler running, nothing sent */
    VG__RES_DEFERRED, /* handler returned, will respond later */
    VG__RES_STREAM,   /* headers sent, chunks flowing */
    VG__RES_SENT,     /* everything queued */
};

struct vg_http_res {
    struct vg__http_conn *conn;
    enum vg__http_res_state state;
    struct vg_buf headers;
    vg_http_cancel_cb cancel;
    void *cancel_ud;
    struct vg_http_stream *stream;
};

enum vg__http_conn_state {
    VG__CONN_IDLE = 0, /* waiting for the first byte of a request */
    VG__CONN_READING,  /* part of a request received */
    VG__CONN_HANDLING, /* request complete, response in progress */
    VG__CONN_LINGER,   /* response sent, write side shut, draining input before close */
    VG__CONN_CLOSED,   /* transport close requested */
};

struct vg__http_conn {
    struct vg_http_server *server;
    struct vg__http_listener *listener;
    const struct vg__http_transport *tp;
    struct vg__http_conn *prev, *next;
    llhttp_t parser;
    enum vg__http_conn_state state;
    uint64_t deadline; /* uv_now() ms; 0 = none */
    struct vg_buf pending;
    uint64_t linger_bytes;
    unsigned writes_pending;
    bool reading;
    bool peer_eof;
    bool keep_alive;
    bool msg_complete;
    bool rejected; /* over max connections: 503 then close */
    bool metrics;  /* counted in open_conns: the listener may be gone when the connection closes */
    int err_status;
    const char *err_detail;
    struct vg_http_req req;
    struct vg_http_res res;
};

/* Links c into the server and starts it (reading). rejected: answer 503 and close. */
void vg__http_conn_init(struct vg__http_conn *c, struct vg_http_server *s,
                        struct vg__http_listener *l, const struct vg__http_transport *tp,
                        bool rejected);
void vg__http_conn_feed(struct vg__http_conn *c, const char *data, size_t len);
void vg__http_conn_eof(struct vg__http_conn *c);
/* Immediate close (cancels deferred responses and streams). */
void vg__http_conn_abort(struct vg__http_conn *c);
void vg__http_write_done(struct vg__http_wreq *w, int status);
/* Called by the transport once its handle is closed; unlinks and frees what c holds. */
void vg__http_conn_fini(struct vg__http_conn *c);
/* Whether listener l of s accepts one more connection (false: reject with 503). */
bool vg__http_server_has_room(const struct vg_http_server *s, const struct vg__http_listener *l);
/* The budget of l is full: closes its connection idle the longest (waiting for a request).
 * Returns false when none is idle (all are mid-request). */
bool vg__http_server_cut_idle(struct vg_http_server *s, const struct vg__http_listener *l);

/* http_auth.c */
int vg__http_auth_parse_hash(const char *s, unsigned char out[32]);
/* Constant-time check of an "Authorization: Bearer <key>" value against the stored hash. */
bool vg__http_auth_check(const unsigned char hash[32], const char *authorization);
/* The server's key (hash) or, when configured, a JWT that verifies (Authentication.MonitorApiKey).
 */
bool vg__http_authorized(struct vg_http_server *s, const char *authorization);

/* ---- shared by the server's files (server.c, conn.c, request.c, response.c, transport.c) ---- */

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
    struct vg_jwt_key *jwt; /* Authentication.MonitorApiKey, or NULL */
    char *jwt_subject, *jwt_issuer;
    struct vg__http_listener **listeners;
    size_t n_listeners;
    unsigned listeners_open;
    struct vg__http_route *routes;
    size_t n_routes;
    struct vg__http_conn *conns;
    unsigned n_conns;
    unsigned open_conns; /* accepted on metrics (require_auth=false) listeners */
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

extern const llhttp_settings_t vg__http_parser_settings;

struct vg__http_wreq *vg__http_wreq_new(struct vg__http_conn *c);
void vg__http_wreq_add(struct vg__http_wreq *w, void *data, size_t len, bool owned);
void vg__http_wreq_free(struct vg__http_wreq *w);
int vg__http_conn_write(struct vg__http_conn *c, struct vg__http_wreq *w);
void vg__http_req_reset(struct vg_http_req *r);
void vg__http_res_reset(struct vg_http_res *res);
int vg__http_req_parse_target(struct vg_http_req *r);
void vg__http_conn_error(struct vg__http_conn *c, int status, const char *detail);
void vg__http_conn_finish_response(struct vg__http_conn *c);
void vg__http_conn_graceful_close(struct vg__http_conn *c);
void vg__http_stream_detach(struct vg_http_stream *st);
void vg__http_stream_pump(struct vg_http_stream *st);
void vg__http_on_connection(uv_stream_t *server_stream, int status);
void vg__http_server_maybe_finish(struct vg_http_server *s);

#endif
