/* vigil's embedded HTTP/1.1 server: listeners (TCP or Unix socket) in the daemon's libuv loop,
 * a small router, API-key auth and JSON problem-detail errors.
 *
 * Everything here runs on the loop thread, except vg_http_stream_write()/vg_http_stream_end(),
 * which a worker thread calls to feed a chunked response. */
#ifndef VG_HTTP_H
#define VG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

struct vg_server_settings;
struct vg_http_server;
struct vg_http_req;
struct vg_http_res;
struct vg_http_stream;

/* Limits mirror struct vg_server_settings (Server.*); a zero value means "use the default". */
struct vg_http_config {
    unsigned max_connections;         /* Server.MaxConnections, default 64: the API listeners */
    unsigned metrics_max_connections; /* Server.MetricsMaxConnections, default 16: the metrics
                                       * listeners' own budget */
    uint64_t max_header_bytes; /* Server.MaxHeaderBytes, default 16 KiB (request line incl.) */
    uint64_t max_body_bytes;   /* Server.MaxBodyBytes, default 1 MiB */
    uint64_t
        request_timeout_ms;   /* Server.RequestTimeout, default 30 s: first byte to full request */
    uint64_t idle_timeout_ms; /* Server.IdleTimeout, default 120 s between keep-alive requests */
    uint64_t max_url_bytes;   /* default 8 KiB */
    uint64_t stream_buffer_bytes; /* per streamed response, default 1 MiB */
    uint64_t shutdown_timeout_ms; /* graceful close waits this long for in-flight, default 10 s */
    const char *api_key_hash;     /* Server.Auth.ApiKeyHash "sha256:<64 hex>", borrowed, or NULL */
    /* Authentication.MonitorApiKey: JWT bearer tokens (engine/http/jwt.h) signed with this
     * public key (base64url JWK) for this subject and issuer (NULL: generatekey's); borrowed. */
    const char *jwt_public_key;
    const char *jwt_subject;
    const char *jwt_issuer;
    bool no_auth; /* --no-auth: authenticated listeners accept anyone */
};

#define VG_HTTP_DEFAULT_MAX_CONNECTIONS 64u
#define VG_HTTP_DEFAULT_METRICS_MAX_CONNECTIONS 16u
#define VG_HTTP_DEFAULT_MAX_HEADER_BYTES (16u * 1024)
#define VG_HTTP_DEFAULT_MAX_BODY_BYTES (1024u * 1024)
#define VG_HTTP_DEFAULT_REQUEST_TIMEOUT_MS 30000u
#define VG_HTTP_DEFAULT_IDLE_TIMEOUT_MS 120000u
#define VG_HTTP_DEFAULT_MAX_URL_BYTES (8u * 1024)
#define VG_HTTP_DEFAULT_STREAM_BUFFER_BYTES (1024u * 1024)
#define VG_HTTP_DEFAULT_SHUTDOWN_TIMEOUT_MS 10000u

/* Zeroes cfg (all defaults, no key, auth on). */
void vg_http_config_init(struct vg_http_config *cfg);
/* Copies Server.* limits and the key hash (borrowed) from the typed settings. */
void vg_http_config_from_settings(struct vg_http_config *cfg, const struct vg_server_settings *s);

/* Counters, read on the loop thread. */
struct vg_http_stats {
    uint64_t connections_total;
    uint64_t connections_rejected; /* over MaxConnections: 503 */
    uint64_t connections_cut_idle; /* closed while idle to make room for a new one */
    uint64_t requests_total;
    uint64_t auth_failures;
    uint64_t stream_peak_queued; /* highest bytes buffered by any one stream */
    unsigned connections_active;
};

/* Validates cfg (e.g. a malformed ApiKeyHash gives VG_ECONFIG); cfg is copied. */
int vg_http_server_create(uv_loop_t *loop, const struct vg_http_config *cfg,
                          struct vg_http_server **out);

/* Starts a listener. url: "http://127.0.0.1:52323", "http://[::1]:52323", "http://0.0.0.0:52323",
 * "http://localhost:52323" (binds 127.0.0.1) or "unix:/path/to.sock"; port 0 picks a free port.
 * require_auth=false is for the metrics listener: it serves only VG_HTTP_ROUTE_OPEN routes and
 * never asks for a key. require_auth=true with neither an ApiKeyHash nor a MonitorApiKey and
 * without no_auth is VG_ECONFIG. */
int vg_http_listen(struct vg_http_server *s, const char *url, bool require_auth);
/* Number of listeners, and the bound TCP port of listener idx (0 for a Unix socket or bad idx). */
size_t vg_http_listener_count(const struct vg_http_server *s);
int vg_http_listener_port(const struct vg_http_server *s, size_t idx);
void vg_http_server_stats(const struct vg_http_server *s, struct vg_http_stats *out);

typedef void (*vg_http_handler)(struct vg_http_req *req, struct vg_http_res *res, void *ud);

enum {
    /* Also served on require_auth=false (metrics) listeners, without a key. */
    VG_HTTP_ROUTE_OPEN = 1 << 0,
    /* A GET that starts work (e.g. /dump): HEAD must stay safe, so it gets 405, not a run. */
    VG_HTTP_ROUTE_NO_HEAD = 1 << 1,
};

/* method: "GET", "POST", ... (GET routes also answer HEAD, unless VG_HTTP_ROUTE_NO_HEAD). pattern:
 * "/a/{name}/b"; a {name} segment matches one non-empty path segment, read with
 * vg_http_req_param(); literal segments match in any case and a trailing slash is ignored, as
 * ASP.NET's routes do. First match wins. */
int vg_http_route(struct vg_http_server *s, const char *method, const char *pattern, unsigned flags,
                  vg_http_handler handler, void *ud);

typedef void (*vg_http_server_close_cb)(struct vg_http_server *s, void *ud);
/* Graceful: stops accepting, closes idle connections, lets in-flight responses finish (at most
 * shutdown_timeout_ms, then cancels them), closes all handles; the server is freed after cb. */
void vg_http_server_close(struct vg_http_server *s, vg_http_server_close_cb cb, void *ud);

/* ---- request (valid until the response is complete or canceled) ---- */
const char *vg_http_req_method(const struct vg_http_req *req); /* "HEAD" for HEAD */
/* Percent-decoded path; NUL bytes, "." and ".." segments were rejected with 400 already. */
const char *vg_http_req_path(const struct vg_http_req *req);
const char *vg_http_req_param(const struct vg_http_req *req, const char *name);
/* Decoded query parameter ('+' is a space), first occurrence, name in any case (as ASP.NET
 * binds them); NULL when absent. */
const char *vg_http_req_query(const struct vg_http_req *req, const char *name);
/* Case-insensitive header lookup, first occurrence; NULL when absent. */
const char *vg_http_req_header(const struct vg_http_req *req, const char *name);
const void *vg_http_req_body(const struct vg_http_req *req, size_t *len);
/* Parses the body as JSON: 0 and *out (caller decrefs) or VG_EPARSE. */
int vg_http_req_json(const struct vg_http_req *req, json_t **out);

/* ---- response ---- */
/* Adds a header line (copied). CR/LF in name or value gives VG_EINVAL. Before sending only. */
int vg_http_res_header(struct vg_http_res *res, const char *name, const char *value);
/* Sends a complete response. json: takes ownership of body (may be NULL: "null"). */
int vg_http_res_json(struct vg_http_res *res, int status, json_t *body);
int vg_http_res_text(struct vg_http_res *res, int status, const char *content_type,
                     const void *body, size_t len);
/* application/problem+json {"status","title","detail","code"}; code is vg_err_name(err). */
int vg_http_res_problem(struct vg_http_res *res, int status, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Problem response with the status that fits a VG_E* code (vg_http_status_for_err). */
int vg_http_res_error(struct vg_http_res *res, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int vg_http_status_for_err(int err);

/* Deferred response: the handler returns and completes res later on the loop thread. If the
 * client goes away (or the server is shut down) first, cancel(res, ud) runs instead and res is
 * invalid afterwards. Without defer, stream or a send, the handler's return yields a 500. */
typedef void (*vg_http_cancel_cb)(struct vg_http_res *res, void *ud);
int vg_http_res_defer(struct vg_http_res *res, vg_http_cancel_cb cancel, void *ud);

/* Starts a chunked response (loop thread). The stream belongs to the producer until it calls
 * vg_http_stream_end(), which it must call exactly once, whatever happened. */
int vg_http_res_stream(struct vg_http_res *res, int status, const char *content_type,
                       struct vg_http_stream **out);
/* Thread-safe. Copies data into a bounded queue; blocks while the queue is full. Returns 0, or
 * VG_ECANCELED once the client is gone (stop producing and call end). */
int vg_http_stream_write(struct vg_http_stream *st, const void *data, size_t len);
/* Thread-safe. err==0 finishes the body; err<0 aborts (the connection is closed, so the client
 * sees a truncated body). st is invalid afterwards. */
void vg_http_stream_end(struct vg_http_stream *st, int err);

/* Appends s[0..len) to b as UTF-8: each byte that does not start a valid sequence becomes U+FFFD.
 * For text from outside (process names, command lines, decoded URLs) headed for JSON or the
 * Prometheus format, which both require UTF-8. 0 or VG_ENOMEM. */
struct vg_buf;
int vg_http_utf8_append(struct vg_buf *b, const char *s, size_t len);

/* ---- API keys (http_auth.c) ---- */
#define VG_HTTP_APIKEY_LEN 43      /* base64url of 32 random bytes, no padding */
#define VG_HTTP_APIKEY_HASH_LEN 71 /* "sha256:" + 64 hex */
/* key: VG_HTTP_APIKEY_LEN+1 bytes, hash: VG_HTTP_APIKEY_HASH_LEN+1 bytes. */
int vg_http_apikey_generate(char *key, char *hash);
/* hash = "sha256:" + hex(SHA-256(key)); hash: VG_HTTP_APIKEY_HASH_LEN+1 bytes. */
int vg_http_apikey_hash(const char *key, char *hash);

#endif
