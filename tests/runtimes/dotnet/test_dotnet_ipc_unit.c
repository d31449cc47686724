/* The .NET IPC layer against crafted bytes: framing, every reply parser, truncation at every
 * byte, hostile lengths, HRESULT messages, the environment continuation, advertise, cookies, and
 * the listen server against misbehaving peers. The real runtime is exercised by
 * test_dotnet_ipc.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/error.h"
#include "config/util.h"
#include "engine/runtimes/dotnet/ipc_int.h"
#include "engine/runtimes/dotnet/session.h"

/* ---- a byte builder ---------------------------------------------------------------------- */

struct bb {
    uint8_t b[70000];
    size_t n;
};

static void put(struct bb *b, const void *p, size_t n)
{
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void u16(struct bb *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}

static void u32(struct bb *b, uint32_t v)
{
    u16(b, (uint16_t)v);
    u16(b, (uint16_t)(v >> 16));
}

static void u64(struct bb *b, uint64_t v)
{
    u32(b, (uint32_t)v);
    u32(b, (uint32_t)(v >> 32));
}

/* ASCII-only protocol string with its NUL */
static void str(struct bb *b, const char *s)
{
    u32(b, (uint32_t)strlen(s) + 1);
    for (; *s; s++)
        u16(b, (uint8_t)*s);
    u16(b, 0);
}

static void header(struct bb *b, uint16_t size, uint8_t set, uint8_t id)
{
    put(b, "DOTNET_IPC_V1", 14);
    u16(b, size);
    b->b[b->n++] = set;
    b->b[b->n++] = id;
    u16(b, 0);
}

/* A whole message: header with the right size around `payload`. */
static void message(struct bb *out, uint8_t set, uint8_t id, const struct bb *payload)
{
    out->n = 0;
    header(out, (uint16_t)(20 + payload->n), set, id);
    put(out, payload->b, payload->n);
}

static const uint8_t cookie[16] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                   0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};

static void process_info_payload(struct bb *p, unsigned command)
{
    p->n = 0;
    if (command == 3)
        u32(p, 1);
    u64(p, 4242);
    put(p, cookie, 16);
    str(p, "/usr/bin/app --x");
    str(p, "Linux");
    str(p, "x64");
    if (command >= 2) {
        str(p, "App");
        str(p, "10.0.12+abc");
    }
    if (command == 3)
        str(p, "linux-x64");
}

static char err[512];
static struct vg_dnipc_io io = {.timeout_ms = 1000, .err = err, .errlen = sizeof(err)};

static int recv_mem(const struct bb *m, struct vg__dnipc_reply *r)
{
    struct vg__dnipc_conn c;
    vg__dnipc_conn_mem(&c, m->b, m->n, &io);
    return vg__dnipc_recv(&c, r);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_header(void **state)
{
    static struct bb m, p;
    static struct vg__dnipc_reply r;
    p.n = 0;
    u64(&p, 7);
    message(&m, 0xFF, 0x00, &p);
    assert_int_equal(recv_mem(&m, &r), 0);
    assert_int_equal(r.payload_len, 8);
    assert_int_equal(r.set, 0xFF);
    assert_int_equal(vg__dnipc_check(&r, &io, "X", "pid 1", false), 0);

    /* every truncation of the message ends early */
    for (size_t cut = 0; cut < m.n; cut++) {
        struct bb t = m;
        t.n = cut;
        assert_int_equal(recv_mem(&t, &r), VG_ECONNRESET);
    }
    /* bad magic */
    m.b[0] = 'X';
    assert_int_equal(recv_mem(&m, &r), VG_EPROTO);
    /* size below the header's */
    m.n = 0;
    header(&m, 19, 0xFF, 0);
    assert_int_equal(recv_mem(&m, &r), VG_EPROTO);
    /* a size larger than what follows: the reader waits for bytes that never come */
    m.n = 0;
    header(&m, 65535, 0xFF, 0);
    assert_int_equal(recv_mem(&m, &r), VG_ECONNRESET);
}

static void test_errors(void **state)
{
    static struct bb m, p;
    static struct vg__dnipc_reply r;
    p.n = 0;
    u32(&p, VG__DNIPC_E_UNKNOWN_COMMAND);
    message(&m, 0xFF, 0xFF, &p);
    assert_int_equal(recv_mem(&m, &r), 0);
    assert_int_equal(vg__dnipc_check(&r, &io, "ProcessInfo3", "pid 9", false), VG_EUNSUPPORTED);
    assert_non_null(strstr(err, "ProcessInfo3 on pid 9"));
    assert_non_null(strstr(err, "too old"));
    assert_non_null(strstr(err, "0x80131385"));

    /* GenerateCoreDump3 carries a message after the HRESULT */
    p.n = 0;
    u32(&p, 0x80004005u);
    str(&p, "Problem: cannot open /nope/x for writing");
    message(&m, 0xFF, 0xFF, &p);
    assert_int_equal(recv_mem(&m, &r), 0);
    assert_int_equal(vg__dnipc_check(&r, &io, "GenerateCoreDump3", "pid 9", true), VG_EFATAL);
    assert_non_null(strstr(err, "cannot open /nope/x"));
    /* a message whose length lies is ignored, the HRESULT still reported */
    p.n = 0;
    u32(&p, 0x80004005u);
    u32(&p, 0x7fffffff);
    message(&m, 0xFF, 0xFF, &p);
    assert_int_equal(recv_mem(&m, &r), 0);
    assert_int_equal(vg__dnipc_check(&r, &io, "GenerateCoreDump3", "pid 9", true), VG_EFATAL);
    assert_non_null(strstr(err, "E_FAIL"));

    p.n = 0;
    u32(&p, VG__DNIPC_E_ENVVAR_NOT_FOUND);
    message(&m, 0xFF, 0xFF, &p);
    assert_int_equal(recv_mem(&m, &r), 0);
    assert_int_equal(vg__dnipc_check(&r, &io, "X", "y", false), VG_ENOTFOUND);

    /* an error without its HRESULT, and a reply from another command set */
    p.n = 0;
    message(&m, 0xFF, 0xFF, &p);
    assert_int_equal(recv_mem(&m, &r), 0);
    assert_int_equal(vg__dnipc_check(&r, &io, "X", "y", false), VG_EPROTO);
    message(&m, 0x04, 0x00, &p);
    assert_int_equal(recv_mem(&m, &r), 0);
    assert_int_equal(vg__dnipc_check(&r, &io, "X", "y", false), VG_EPROTO);
    assert_non_null(strstr(err, "unexpected reply"));

    assert_non_null(vg_dnipc_hresult_text(VG__DNIPC_E_NOT_YET_AVAILABLE));
    assert_null(vg_dnipc_hresult_text(0x12345678u));
}

static void test_process_info(void **state)
{
    static struct bb p;
    for (unsigned cmd = 1; cmd <= 3; cmd++) {
        process_info_payload(&p, cmd);
        struct vg_dnipc_process_info pi;
        assert_int_equal(vg__dnipc_parse_process_info(cmd, p.b, p.n, &pi), 0);
        assert_int_equal(pi.command, cmd);
        assert_int_equal(pi.pid, 4242);
        assert_memory_equal(pi.cookie, cookie, 16);
        assert_string_equal(pi.command_line, "/usr/bin/app --x");
        assert_string_equal(pi.os, "Linux");
        assert_string_equal(pi.arch, "x64");
        assert_string_equal(pi.entry_assembly, cmd >= 2 ? "App" : "");
        assert_string_equal(pi.clr_version, cmd >= 2 ? "10.0.12+abc" : "");
        assert_string_equal(pi.rid, cmd == 3 ? "linux-x64" : "");
        vg_dnipc_process_info_free(&pi);
        /* every truncation fails cleanly (ASan checks nothing leaks or overreads) */
        for (size_t cut = 0; cut < p.n; cut++) {
            int rc = vg__dnipc_parse_process_info(cmd, p.b, cut, &pi);
            assert_int_equal(rc, VG_EPROTO);
            assert_null(pi.command_line);
        }
    }
    /* a later ProcessInfo3 version appends fields: still parsed */
    process_info_payload(&p, 3);
    p.b[0] = 2;
    str(&p, "future field");
    struct vg_dnipc_process_info pi;
    assert_int_equal(vg__dnipc_parse_process_info(3, p.b, p.n, &pi), 0);
    assert_string_equal(pi.rid, "linux-x64");
    vg_dnipc_process_info_free(&pi);
    /* a string length past the payload */
    p.n = 0;
    u64(&p, 1);
    put(&p, cookie, 16);
    u32(&p, 0xffffffffu);
    assert_int_equal(vg__dnipc_parse_process_info(1, p.b, p.n, &pi), VG_EPROTO);
    /* length 0 is the empty string */
    p.n = 0;
    u64(&p, 1);
    put(&p, cookie, 16);
    u32(&p, 0);
    u32(&p, 0);
    u32(&p, 0);
    assert_int_equal(vg__dnipc_parse_process_info(1, p.b, p.n, &pi), 0);
    assert_string_equal(pi.command_line, "");
    vg_dnipc_process_info_free(&pi);
    vg_dnipc_process_info_free(NULL);
}

static void test_utf16(void **state)
{
    /* U+00E9, U+20AC, U+1F600 (surrogate pair), lone high surrogate, then NUL and junk */
    const uint8_t u[] = {0xE9, 0x00, 0xAC, 0x20, 0x3D, 0xD8, 0x00, 0xDE,
                         0x3D, 0xD8, 0x41, 0x00, 0x00, 0x00, 0x42, 0x00};
    char *s = vg__dnipc_utf16_to_utf8(u, sizeof(u) / 2);
    assert_string_equal(s, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xEF\xBF\xBD"
                           "A");
    free(s);
    /* a high surrogate as the last unit */
    const uint8_t v[] = {0x3D, 0xD8};
    s = vg__dnipc_utf16_to_utf8(v, 1);
    assert_string_equal(s, "\xEF\xBF\xBD");
    free(s);
}

static int cb(void *ctx, const char *n, const char *v)
{
    if (ctx)
        vg_buf_printf(ctx, "%s=%s;", n, v);
    return 0;
}

static void test_environment(void **state)
{
    static struct bb m, p, cont;
    static struct vg__dnipc_reply r;
    /* continuation: count, then "NAME=VALUE" strings */
    cont.n = 0;
    u32(&cont, 3);
    str(&cont, "A=1");
    str(&cont, "PATH=/bin:/usr/bin");
    str(&cont, "EMPTY=");
    p.n = 0;
    u32(&p, (uint32_t)cont.n);
    u16(&p, 0);
    message(&m, 0xFF, 0x00, &p);
    put(&m, cont.b, cont.n);

    struct vg__dnipc_conn c;
    vg__dnipc_conn_mem(&c, m.b, m.n, &io);
    assert_int_equal(vg__dnipc_recv(&c, &r), 0);
    struct vg_buf seen;
    vg_buf_init(&seen);
    assert_int_equal(vg__dnipc_read_environment(&c, &r, cb, &seen), 0);
    assert_string_equal(seen.data, "A=1;PATH=/bin:/usr/bin;EMPTY=;");
    vg_buf_free(&seen);

    /* truncated continuation, at every byte */
    for (size_t cut = 0; cut < cont.n; cut++) {
        vg__dnipc_conn_mem(&c, m.b, m.n - cont.n + cut, &io);
        assert_int_equal(vg__dnipc_recv(&c, &r), 0);
        vg_buf_init(&seen);
        assert_true(vg__dnipc_read_environment(&c, &r, cb, &seen) < 0);
        vg_buf_free(&seen);
    }
    /* the announced size exceeds the cap: refused before reading anything */
    p.n = 0;
    u32(&p, VG_DNIPC_ENV_MAX + 1);
    u16(&p, 0);
    message(&m, 0xFF, 0x00, &p);
    vg__dnipc_conn_mem(&c, m.b, m.n, &io);
    assert_int_equal(vg__dnipc_recv(&c, &r), 0);
    assert_int_equal(vg__dnipc_read_environment(&c, &r, cb, NULL), VG_E2BIG);
    /* an entry longer than the announced block */
    cont.n = 0;
    u32(&cont, 1);
    u32(&cont, 1000);
    p.n = 0;
    u32(&p, (uint32_t)cont.n);
    u16(&p, 0);
    message(&m, 0xFF, 0x00, &p);
    put(&m, cont.b, cont.n);
    vg__dnipc_conn_mem(&c, m.b, m.n, &io);
    assert_int_equal(vg__dnipc_recv(&c, &r), 0);
    assert_int_equal(vg__dnipc_read_environment(&c, &r, cb, NULL), VG_EPROTO);
    /* fewer entries than announced bytes */
    cont.n = 0;
    u32(&cont, 1);
    str(&cont, "A=1");
    u32(&cont, 0);
    p.n = 0;
    u32(&p, (uint32_t)cont.n);
    u16(&p, 0);
    message(&m, 0xFF, 0x00, &p);
    put(&m, cont.b, cont.n);
    vg__dnipc_conn_mem(&c, m.b, m.n, &io);
    assert_int_equal(vg__dnipc_recv(&c, &r), 0);
    assert_int_equal(vg__dnipc_read_environment(&c, &r, NULL, NULL), VG_EPROTO);
}

static void test_advert_cookie(void **state)
{
    static struct bb b;
    b.n = 0;
    put(&b, "ADVR_V1", 8);
    put(&b, cookie, 16);
    u64(&b, 0x0102030405060708ull);
    u16(&b, 0);
    struct vg_dnipc_advert a;
    assert_int_equal(vg_dnipc_parse_advert(b.b, b.n, &a), 0);
    assert_memory_equal(a.cookie, cookie, 16);
    assert_int_equal(a.pid, 0x0102030405060708ull);
    assert_int_equal(vg_dnipc_parse_advert(b.b, b.n - 1, &a), VG_EPROTO);
    b.b[3] = 'X';
    assert_int_equal(vg_dnipc_parse_advert(b.b, b.n, &a), VG_EPROTO);

    /* .NET's Guid text: the first three groups are little-endian */
    char s[37];
    vg_dnipc_cookie_format(cookie, s);
    assert_string_equal(s, "03020100-0504-0706-0809-0a0b0c0d0e0f");
    uint8_t back[16];
    assert_int_equal(vg_dnipc_cookie_parse(s, back), 0);
    assert_memory_equal(back, cookie, 16);
    assert_int_equal(vg_dnipc_cookie_parse("03020100-0504-0706-0809-0a0b0c0d0e0", back), VG_EINVAL);
    assert_int_equal(vg_dnipc_cookie_parse("03020100x0504-0706-0809-0a0b0c0d0e0f", back),
                     VG_EINVAL);
    assert_int_equal(vg_dnipc_cookie_parse("0302010g-0504-0706-0809-0a0b0c0d0e0f", back),
                     VG_EINVAL);

    enum vg_dnipc_dump_type t;
    assert_int_equal(vg_dnipc_dump_type_parse("mini", &t), 0);
    assert_int_equal(t, VG_DNIPC_DUMP_NORMAL);
    assert_int_equal(vg_dnipc_dump_type_parse("WithHeap", &t), 0);
    assert_int_equal(t, VG_DNIPC_DUMP_WITH_HEAP);
    assert_int_equal(vg_dnipc_dump_type_parse("Huge", &t), VG_EINVAL);
    assert_string_equal(vg_dnipc_dump_type_name(VG_DNIPC_DUMP_FULL), "Full");
}

/* ---- the listen server against misbehaving peers -------------------------------------------- */

struct srv_fixture {
    char dir[256], path[300];
    struct vg_dnipc_server *s;
    atomic_bool stop;
    pthread_t th;
    int added, removed;
    pthread_mutex_t mu;
};

static void on_added(void *ctx, const struct vg_dnipc_runtime *rt)
{
    struct srv_fixture *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->added++;
    pthread_mutex_unlock(&f->mu);
}

static void on_removed(void *ctx, const struct vg_dnipc_runtime *rt)
{
    struct srv_fixture *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->removed++;
    pthread_mutex_unlock(&f->mu);
}

static void *serve(void *p)
{
    struct srv_fixture *f = p;
    struct vg_dnipc_server_cbs cbs = {on_added, on_removed, f};
    vg_dnipc_server_serve(f->s, &cbs, &f->stop);
    return NULL;
}

static void set_sun(struct sockaddr_un *sa, const char *path)
{
    assert_true(strlen(path) < sizeof(sa->sun_path));
    memcpy(sa->sun_path, path, strlen(path) + 1);
}

static int peer(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    set_sun(&sa, path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void advertise(int fd, uint8_t tag, uint64_t pid)
{
    static struct bb b;
    b.n = 0;
    put(&b, "ADVR_V1", 8);
    uint8_t c[16];
    memcpy(c, cookie, 16);
    c[0] = tag;
    put(&b, c, 16);
    u64(&b, pid);
    u16(&b, 0);
    /* in two pieces: the server must assemble them */
    assert_int_equal(write(fd, b.b, 5), 5);
    usleep(20000);
    assert_int_equal(write(fd, b.b + 5, b.n - 5), (ssize_t)(b.n - 5));
}

static int count(struct srv_fixture *f, int *what)
{
    pthread_mutex_lock(&f->mu);
    int n = *what;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static bool wait_count(struct srv_fixture *f, int *what, int want)
{
    for (int i = 0; i < 100; i++) {
        if (count(f, what) >= want)
            return true;
        usleep(50000);
    }
    return false;
}

static void test_server(void **state)
{
    static struct srv_fixture f;
    const char *bin = getenv("VG_BINARY_DIR");
    snprintf(f.dir, sizeof(f.dir), "%s/tests/runtimes/dotnet/unit-XXXXXX", bin ? bin : ".");
    assert_non_null(mkdtemp(f.dir));
    snprintf(f.path, sizeof(f.path), "%s/sub/port.sock", f.dir);
    pthread_mutex_init(&f.mu, NULL);
    char e[256];
    struct vg_dnipc_server_opts so = {.max_connections = 2, .advert_timeout_ms = 300};
    assert_int_equal(vg_dnipc_server_open(f.path, &so, &f.s, e, sizeof(e)), 0);
    struct stat st;
    assert_int_equal(stat(f.path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0666);
    /* a second server on a live socket is refused, never steals it */
    struct vg_dnipc_server *s2;
    assert_int_equal(vg_dnipc_server_open(f.path, &so, &s2, e, sizeof(e)), VG_EBUSY);
    assert_non_null(strstr(e, "in use"));
    pthread_create(&f.th, NULL, serve, &f);

    /* garbage and silence are closed; nothing is added */
    int g = peer(f.path);
    assert_int_equal(write(g, "GET / HTTP/1.1\r\n\r\n0123456789abcdef", 34), 34);
    int quiet = peer(f.path);
    char ch;
    assert_int_equal(read(g, &ch, 1), 0);     /* closed by the server */
    assert_int_equal(read(quiet, &ch, 1), 0); /* closed after the advert timeout */
    close(g);
    close(quiet);
    assert_int_equal(count(&f, &f.added), 0);

    /* two runtimes; a third is refused by MaxConnections */
    int a = peer(f.path), b = peer(f.path), c = peer(f.path);
    advertise(a, 1, 100);
    advertise(b, 2, 200);
    assert_true(wait_count(&f, &f.added, 2));
    advertise(c, 3, 300);
    assert_int_equal(read(c, &ch, 1), 0);
    close(c);
    struct vg_dnipc_runtime list[4];
    assert_int_equal(vg_dnipc_server_list(f.s, list, 4), 2);
    assert_int_equal(list[0].host_pid, getpid()); /* SO_PEERCRED */

    /* a command takes the parked connection; the runtime reconnects with the same cookie */
    uint8_t c1[16];
    memcpy(c1, cookie, 16);
    c1[0] = 1;
    struct vg_dnipc_endpoint ep;
    vg_dnipc_server_endpoint(&ep, f.s, c1, NULL);
    int fd = -1;
    struct vg_dnipc_io tio = {.timeout_ms = 200, .err = err, .errlen = sizeof(err)};
    assert_int_equal(ep.connect(&ep, &tio, &fd), 0);
    close(fd);
    close(a);
    /* nothing parked now: the next take times out with a clear message */
    assert_int_equal(ep.connect(&ep, &tio, &fd), VG_ETIMEDOUT);
    assert_non_null(strstr(err, "did not connect"));
    int a2 = peer(f.path);
    advertise(a2, 1, 100);
    tio.timeout_ms = 3000;
    assert_int_equal(ep.connect(&ep, &tio, &fd), 0);
    close(fd);
    assert_int_equal(count(&f, &f.added), 2); /* a reconnect is not a new runtime */

    /* a runtime whose parked connection hangs up and never returns is removed */
    close(b);
    assert_true(wait_count(&f, &f.removed, 1));
    close(a2);

    atomic_store(&f.stop, true);
    pthread_join(f.th, NULL);
    vg_dnipc_server_destroy(f.s);
    vg_dnipc_server_destroy(NULL);
    assert_int_equal(access(f.path, F_OK), -1); /* the socket file is removed */

    /* a stale socket (nobody listening) is replaced; a regular file only with delete_existing */
    int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    set_sun(&sa, f.path);
    assert_int_equal(bind(sfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(sfd);
    assert_int_equal(vg_dnipc_server_open(f.path, &so, &f.s, e, sizeof(e)), 0);
    vg_dnipc_server_destroy(f.s);
    FILE *fp = fopen(f.path, "w");
    fclose(fp);
    assert_int_equal(vg_dnipc_server_open(f.path, &so, &f.s, e, sizeof(e)), VG_EEXIST);
    assert_non_null(strstr(e, "DeleteEndpointOnStartup"));
    so.delete_existing = true;
    assert_int_equal(vg_dnipc_server_open(f.path, &so, &f.s, e, sizeof(e)), 0);
    vg_dnipc_server_destroy(f.s);
    pthread_mutex_destroy(&f.mu);
    char sub[320];
    snprintf(sub, sizeof(sub), "%s/sub", f.dir);
    rmdir(sub);
    rmdir(f.dir);
}

/* GlobalCounter's intervals as the counters session and CollectLiveMetrics apply them: a
 * provider's own (case-insensitive), else the global one, else dotnet-monitor's 5 s. */
static void test_intervals(void **unused)
{
    (void)unused;
    const struct vg_rt_interval iv[] = {{"System.Runtime", 1000}, {"Shop", 1500}};
    struct vg_rt_needs n = {.interval_ms = 10000, .intervals = iv, .n_intervals = 2};
    assert_int_equal(vg__dotnet_interval_ms(&n, "system.runtime"), 1000);
    assert_int_equal(vg__dotnet_interval_ms(&n, "Shop"), 1500);
    assert_int_equal(vg__dotnet_interval_ms(&n, "Microsoft.AspNetCore.Hosting"), 10000);
    assert_int_equal(vg__dotnet_interval_ms(&n, NULL), 10000); /* meters: the global one */
    n.interval_ms = 0;
    assert_int_equal(vg__dotnet_interval_ms(&n, "Other"), VG_DOTNET_COUNTER_INTERVAL_S * 1000);
    assert_int_equal(vg__dotnet_interval_ms(NULL, "Shop"), VG_DOTNET_COUNTER_INTERVAL_S * 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),       cmocka_unit_test(test_errors),
        cmocka_unit_test(test_process_info), cmocka_unit_test(test_utf16),
        cmocka_unit_test(test_environment),  cmocka_unit_test(test_advert_cookie),
        cmocka_unit_test(test_server),       cmocka_unit_test(test_intervals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
