/* The HTTP server: configuration, listeners (TCP and Unix sockets), the route table and the
 * shutdown sequence. The protocol lives in conn.c and request.c, responses in response.c, the
 * socket transport in transport.c. */
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
            vg__http_conn_error(c, 408, "request not received in time");
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
    vg__http_server_maybe_finish(s);
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
        rc = uv_listen(&l->h.stream, 128, vg__http_on_connection);
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

void vg__http_server_maybe_finish(struct vg_http_server *s)
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
    vg__http_server_maybe_finish(s);
}
