/* .NET diagnostic IPC: framing, strings, the commands. See ipc.h. */
#include "engine/runtimes/dotnet/ipc_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/error.h"
#include "config/util.h"

static const uint8_t magic[14] = "DOTNET_IPC_V1";

#define DEFAULT_RUNDOWN_KEYWORD 0x80020139ull

/* ---- errors and waiting ---------------------------------------------------------------------- */

void vg__dnipc_seterr(const struct vg_dnipc_io *io, const char *fmt, ...)
{
    if (!io || !io->err || !io->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(io->err, io->errlen, fmt, ap);
    va_end(ap);
}

static bool canceled(const struct vg_dnipc_io *io)
{
    return io && io->cancel && atomic_load(io->cancel);
}

int vg__dnipc_wait(int fd, short events, const struct vg_dnipc_io *io)
{
    int timeout = io ? io->timeout_ms : -1;
    uint64_t deadline = timeout >= 0 ? vg_mono_ms() + (uint64_t)timeout : 0;
    for (;;) {
        if (canceled(io))
            return VG_ECANCELED;
        int slice = 100;
        if (timeout >= 0) {
            uint64_t now = vg_mono_ms();
            if (now >= deadline)
                return VG_ETIMEDOUT;
            if (deadline - now < (uint64_t)slice)
                slice = (int)(deadline - now);
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, slice);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        /* HUP/ERR count as ready: the read or write that follows reports what happened. */
        if (rc > 0)
            return 0;
    }
}

/* ---- transports
 * ---------------------------------------------------------------------------------- */

static int fd_read(struct vg__dnipc_conn *c, void *buf, size_t cap, size_t *got)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, cap, MSG_DONTWAIT);
        if (n >= 0) {
            *got = (size_t)n;
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return errno == EPIPE ? VG_ECONNRESET : -errno;
        int rc = vg__dnipc_wait(c->fd, POLLIN, c->io);
        if (rc < 0)
            return rc;
    }
}

static int fd_write(struct vg__dnipc_conn *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return errno == EPIPE ? VG_ECONNRESET : -errno;
        int rc = vg__dnipc_wait(c->fd, POLLOUT, c->io);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void vg__dnipc_conn_fd(struct vg__dnipc_conn *c, int fd, const struct vg_dnipc_io *io)
{
    memset(c, 0, sizeof(*c));
    c->read = fd_read;
    c->write = fd_write;
    c->fd = fd;
    c->io = io;
}

static int mem_read(struct vg__dnipc_conn *c, void *buf, size_t cap, size_t *got)
{
    size_t n = c->mem_len - c->mem_off;
    if (n > cap)
        n = cap;
    memcpy(buf, c->mem + c->mem_off, n);
    c->mem_off += n;
    *got = n;
    return 0;
}

static int mem_write(struct vg__dnipc_conn *c, const void *buf, size_t len)
{
    return 0;
}

void vg__dnipc_conn_mem(struct vg__dnipc_conn *c, const void *buf, size_t len,
                        const struct vg_dnipc_io *io)
{
    memset(c, 0, sizeof(*c));
    c->read = mem_read;
    c->write = mem_write;
    c->fd = -1;
    c->mem = buf;
    c->mem_len = len;
    c->io = io;
}

/* Reads exactly n bytes; VG_ECONNRESET when the stream ends first. */
static int read_full(struct vg__dnipc_conn *c, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        size_t got = 0;
        int rc = c->read(c, p, n, &got);
        if (rc < 0)
            return rc;
        if (got == 0)
            return VG_ECONNRESET;
        p += got;
        n -= got;
    }
    return 0;
}

/* ---- little-endian and UTF-16 ------------------------------------------------------------------
 */

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

char *vg__dnipc_utf16_to_utf8(const uint8_t *units, size_t n)
{
    /* a unit gives at most 3 bytes; a surrogate pair (2 units) 4 */
    char *out = malloc(n * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = le16(units + 2 * i);
        if (u == 0)
            break;
        if (u >= 0xD800 && u < 0xDC00 && i + 1 < n) {
            uint32_t lo = le16(units + 2 * (i + 1));
            if (lo >= 0xDC00 && lo < 0xE000) {
                o += utf8_put(out + o, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
                i++;
                continue;
            }
        }
        if (u >= 0xD800 && u < 0xE000)
            u = 0xFFFD;
        o += utf8_put(out + o, u);
    }
    out[o] = 0;
    return out;
}

/* ---- payload reader -------------------------------------------------------------------------- */

int vg__dnipc_rd_u32(struct vg__dnipc_rd *r, uint32_t *v)
{
    if (r->n - r->off < 4)
        return VG_EPROTO;
    *v = le32(r->p + r->off);
    r->off += 4;
    return 0;
}

int vg__dnipc_rd_u64(struct vg__dnipc_rd *r, uint64_t *v)
{
    if (r->n - r->off < 8)
        return VG_EPROTO;
    *v = le64(r->p + r->off);
    r->off += 8;
    return 0;
}

int vg__dnipc_rd_string(struct vg__dnipc_rd *r, uint32_t max_units, char **out)
{
    uint32_t units;
    *out = NULL;
    int rc = vg__dnipc_rd_u32(r, &units);
    if (rc < 0)
        return rc;
    if (units > max_units)
        return VG_E2BIG;
    if ((r->n - r->off) / 2 < units)
        return VG_EPROTO;
    *out = vg__dnipc_utf16_to_utf8(r->p + r->off, units);
    if (!*out)
        return VG_ENOMEM;
    r->off += (size_t)units * 2;
    return 0;
}

/* ---- request builder
 * ----------------------------------------------------------------------------- */

struct msg {
    uint8_t *b;
    size_t n;
    int err; /* first failure; later appends are no-ops */
};

static int msg_init(struct msg *m, uint8_t set, uint8_t id)
{
    m->b = malloc(VG__DNIPC_MAX_MESSAGE);
    m->n = 0;
    m->err = 0;
    if (!m->b)
        return VG_ENOMEM;
    memcpy(m->b, magic, sizeof(magic));
    m->b[16] = set;
    m->b[17] = id;
    m->b[18] = m->b[19] = 0;
    m->n = VG__DNIPC_HEADER_SIZE;
    return 0;
}

static void msg_free(struct msg *m)
{
    free(m->b);
    m->b = NULL;
}

static uint8_t *msg_room(struct msg *m, size_t n)
{
    if (m->err)
        return NULL;
    if (VG__DNIPC_MAX_MESSAGE - m->n < n) {
        m->err = VG_E2BIG;
        return NULL;
    }
    uint8_t *p = m->b + m->n;
    m->n += n;
    return p;
}

static void msg_u8(struct msg *m, uint8_t v)
{
    uint8_t *p = msg_room(m, 1);
    if (p)
        p[0] = v;
}

static void msg_u32(struct msg *m, uint32_t v)
{
    uint8_t *p = msg_room(m, 4);
    if (p)
        for (int i = 0; i < 4; i++)
            p[i] = (uint8_t)(v >> (8 * i));
}

static void msg_u64(struct msg *m, uint64_t v)
{
    msg_u32(m, (uint32_t)v);
    msg_u32(m, (uint32_t)(v >> 32));
}

/* Decodes one UTF-8 sequence; returns its length, 0 when invalid. */
static size_t utf8_get(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t c, min;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, c = s[0] & 0x1F, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, c = s[0] & 0x0F, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000))
        return 0;
    *cp = c;
    return len;
}

static void put16(uint8_t *p, uint32_t u)
{
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
}

/* A protocol string: u32 units including the NUL, UTF-16LE. NULL is the empty (length 0) string.
 * Invalid UTF-8 is refused (VG_EINVAL): a path changed by replacement would name another file. */
static void msg_string(struct msg *m, const char *s)
{
    if (!s) {
        msg_u32(m, 0);
        return;
    }
    size_t len_at = m->n;
    msg_u32(m, 0);
    uint32_t units = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (*u && !m->err) {
        uint32_t cp;
        size_t n = utf8_get(u, &cp);
        if (!n) {
            m->err = VG_EINVAL;
            return;
        }
        u += n;
        if (cp >= 0x10000) {
            uint8_t *p = msg_room(m, 4);
            if (p) {
                cp -= 0x10000;
                put16(p, 0xD800 + (cp >> 10));
                put16(p + 2, 0xDC00 + (cp & 0x3FF));
                units += 2;
            }
        } else {
            uint8_t *p = msg_room(m, 2);
            if (p) {
                put16(p, cp);
                units++;
            }
        }
    }
    uint8_t *p = msg_room(m, 2);
    if (!p)
        return;
    put16(p, 0);
    units++;
    for (int i = 0; i < 4; i++)
        m->b[len_at + i] = (uint8_t)(units >> (8 * i));
}

static int msg_finish(struct msg *m)
{
    if (m->err)
        return m->err;
    m->b[14] = (uint8_t)m->n;
    m->b[15] = (uint8_t)(m->n >> 8);
    return 0;
}

/* ---- replies
 * ------------------------------------------------------------------------------------- */

int vg__dnipc_recv(struct vg__dnipc_conn *c, struct vg__dnipc_reply *r)
{
    uint8_t h[VG__DNIPC_HEADER_SIZE];
    int rc = read_full(c, h, sizeof(h));
    if (rc < 0)
        return rc;
    if (memcmp(h, magic, sizeof(magic)) != 0)
        return VG_EPROTO;
    r->size = le16(h + 14);
    r->set = h[16];
    r->id = h[17];
    if (r->size < VG__DNIPC_HEADER_SIZE)
        return VG_EPROTO;
    r->payload_len = r->size - VG__DNIPC_HEADER_SIZE;
    return read_full(c, r->payload, r->payload_len);
}

const char *vg_dnipc_hresult_text(uint32_t hr)
{
    switch (hr) {
    case VG__DNIPC_E_BAD_ENCODING:
        return "the runtime could not decode the request (bad encoding): it does not support one "
               "of its options";
    case VG__DNIPC_E_UNKNOWN_COMMAND:
        return "unknown command: the runtime is too old for this request";
    case VG__DNIPC_E_UNKNOWN_MAGIC:
        return "unknown protocol magic: the peer does not speak DOTNET_IPC_V1";
    case VG__DNIPC_E_NOTSUPPORTED:
        return "not supported by this runtime";
    case VG__DNIPC_E_FAIL:
        return "the runtime reported a failure (E_FAIL)";
    case VG__DNIPC_E_NOT_YET_AVAILABLE:
        return "not available yet: the runtime has not finished starting (resume it first)";
    case VG__DNIPC_E_RUNTIME_UNINITIALIZED:
        return "the runtime is not initialised yet";
    case VG__DNIPC_E_INVALIDARG:
        return "invalid argument";
    case VG__DNIPC_E_INSUFFICIENT_BUFFER:
        return "insufficient buffer in the runtime";
    case VG__DNIPC_E_ENVVAR_NOT_FOUND:
        return "environment variable not found";
    case 0x80070005u:
        return "access denied";
    case 0x8007000eu:
        return "out of memory in the target";
    case 0x80070002u:
        return "file not found";
    case 0x80070003u:
        return "path not found";
    case 0x80070050u:
        return "the file exists";
    case 0x80070070u:
        return "disk full";
    }
    return NULL;
}

static int hresult_to_vg(uint32_t hr)
{
    switch (hr) {
    case VG__DNIPC_E_UNKNOWN_COMMAND:
    case VG__DNIPC_E_NOTSUPPORTED:
        return VG_EUNSUPPORTED;
    case VG__DNIPC_E_BAD_ENCODING:
    case VG__DNIPC_E_UNKNOWN_MAGIC:
        return VG_EPROTO;
    case VG__DNIPC_E_INVALIDARG:
        return VG_EINVAL;
    case VG__DNIPC_E_ENVVAR_NOT_FOUND:
        return VG_ENOTFOUND;
    case VG__DNIPC_E_NOT_YET_AVAILABLE:
    case VG__DNIPC_E_RUNTIME_UNINITIALIZED:
        return VG_ESTATE;
    case 0x80070005u:
        return VG_EACCES;
    case 0x8007000eu:
        return VG_ENOMEM;
    case 0x80070002u:
    case 0x80070003u:
        return VG_ENOENT;
    case 0x80070050u:
        return VG_EEXIST;
    case 0x80070070u:
        return VG_ENOSPC;
    }
    return VG_EFATAL;
}

int vg__dnipc_check(const struct vg__dnipc_reply *r, const struct vg_dnipc_io *io, const char *op,
                    const char *what, bool with_message)
{
    if (r->set == VG__DNIPC_SET_SERVER && r->id == VG__DNIPC_SERVER_OK)
        return 0;
    if (r->set != VG__DNIPC_SET_SERVER || r->id != VG__DNIPC_SERVER_ERROR || r->payload_len < 4) {
        vg__dnipc_seterr(io,
                         "%s on %s: unexpected reply (command set 0x%02x, id 0x%02x, %zu bytes)",
                         op, what, r->set, r->id, r->payload_len);
        return VG_EPROTO;
    }
    uint32_t hr = le32(r->payload);
    char *detail = NULL;
    if (with_message && r->payload_len > 8) {
        struct vg__dnipc_rd rd = {r->payload, r->payload_len, 4};
        if (vg__dnipc_rd_string(&rd, VG__DNIPC_MAX_PAYLOAD, &detail) < 0) {
            free(detail);
            detail = NULL;
        }
    }
    if (detail) {
        /* createdump's text comes as lines ending in newlines: one line for our messages */
        size_t len = strlen(detail);
        while (len && (detail[len - 1] == '\n' || detail[len - 1] == ' '))
            detail[--len] = 0;
        for (char *q = detail; *q; q++)
            if (*q == '\n' || *q == '\r')
                *q = ' ';
    }
    const char *text = vg_dnipc_hresult_text(hr);
    if (detail && *detail)
        vg__dnipc_seterr(io, "%s on %s failed: %s (HRESULT 0x%08X)", op, what, detail, hr);
    else if (text)
        vg__dnipc_seterr(io, "%s on %s failed: %s (HRESULT 0x%08X)", op, what, text, hr);
    else
        vg__dnipc_seterr(io, "%s on %s failed with HRESULT 0x%08X", op, what, hr);
    free(detail);
    return hresult_to_vg(hr);
}

/* ---- one command on one connection -------------------------------------------------------------
 */

static const char *ep_what(const struct vg_dnipc_endpoint *ep)
{
    return ep->what[0] ? ep->what : ep->path;
}

/* Connects, sends `m`, reads the reply into *r. On success *fd stays open (the caller may read a
 * continuation from it) unless fd is NULL. */
static int transact(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io, struct msg *m,
                    const char *op, struct vg__dnipc_reply *r, int *fd_out)
{
    int fd = -1;
    int rc = msg_finish(m);
    if (rc < 0) {
        vg__dnipc_seterr(io, "%s on %s: %s", op, ep_what(ep),
                         rc == VG_EINVAL ? "a string argument is not valid UTF-8"
                                         : "the request exceeds the protocol's 65535 bytes");
        return rc;
    }
    rc = ep->connect(ep, io, &fd);
    if (rc < 0)
        return rc; /* the endpoint wrote the message */
    struct vg__dnipc_conn c;
    vg__dnipc_conn_fd(&c, fd, io);
    rc = c.write(&c, m->b, m->n);
    if (rc == 0)
        rc = vg__dnipc_recv(&c, r);
    if (rc < 0) {
        if (rc == VG_ETIMEDOUT)
            vg__dnipc_seterr(io, "%s on %s: no reply within %d ms", op, ep_what(ep),
                             io ? io->timeout_ms : -1);
        else if (rc == VG_ECANCELED)
            vg__dnipc_seterr(io, "%s on %s: canceled", op, ep_what(ep));
        else if (rc == VG_EPROTO)
            vg__dnipc_seterr(io, "%s on %s: the reply is not a DOTNET_IPC_V1 message", op,
                             ep_what(ep));
        else
            vg__dnipc_seterr(io, "%s on %s: the connection failed: %s (did the process exit?)", op,
                             ep_what(ep), vg_strerror(rc));
        close(fd);
        return rc;
    }
    if (fd_out)
        *fd_out = fd;
    else
        close(fd);
    return 0;
}

/* ---- process commands
 * ------------------------------------------------------------------------------ */

void vg_dnipc_process_info_free(struct vg_dnipc_process_info *pi)
{
    if (!pi)
        return;
    free(pi->command_line);
    free(pi->os);
    free(pi->arch);
    free(pi->entry_assembly);
    free(pi->clr_version);
    free(pi->rid);
    memset(pi, 0, sizeof(*pi));
}

int vg__dnipc_parse_process_info(unsigned command, const uint8_t *p, size_t n,
                                 struct vg_dnipc_process_info *out)
{
    struct vg__dnipc_rd r = {p, n, 0};
    memset(out, 0, sizeof(*out));
    out->command = command;
    int rc = 0;
    uint32_t version = 0;
    const uint32_t max = VG__DNIPC_MAX_PAYLOAD;
    if (command == 3 && (rc = vg__dnipc_rd_u32(&r, &version)) < 0)
        goto out;
    if ((rc = vg__dnipc_rd_u64(&r, &out->pid)) < 0)
        goto out;
    if (r.n - r.off < 16) {
        rc = VG_EPROTO;
        goto out;
    }
    memcpy(out->cookie, r.p + r.off, 16);
    r.off += 16;
    if ((rc = vg__dnipc_rd_string(&r, max, &out->command_line)) < 0 ||
        (rc = vg__dnipc_rd_string(&r, max, &out->os)) < 0 ||
        (rc = vg__dnipc_rd_string(&r, max, &out->arch)) < 0)
        goto out;
    if (command >= 2 && ((rc = vg__dnipc_rd_string(&r, max, &out->entry_assembly)) < 0 ||
                         (rc = vg__dnipc_rd_string(&r, max, &out->clr_version)) < 0))
        goto out;
    /* ProcessInfo3 payload version 1 adds the RID; later versions append fields we skip. */
    if (command == 3 && version >= 1 && (rc = vg__dnipc_rd_string(&r, max, &out->rid)) < 0)
        goto out;
    char **opt[] = {&out->entry_assembly, &out->clr_version, &out->rid};
    for (size_t i = 0; i < VG_ARRAY_SIZE(opt); i++)
        if (!*opt[i] && !(*opt[i] = vg_strdup(""))) {
            rc = VG_ENOMEM;
            goto out;
        }
out:
    if (rc < 0) {
        vg_dnipc_process_info_free(out);
        return rc == VG_E2BIG ? VG_EPROTO : rc;
    }
    return 0;
}

/* Sends one payload-less Process command and reads the reply. */
static int simple_command(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                          uint8_t set, uint8_t id, const char *op, struct vg__dnipc_reply *r)
{
    struct msg m;
    int rc = msg_init(&m, set, id);
    if (rc == 0)
        rc = transact(ep, io, &m, op, r, NULL);
    msg_free(&m);
    return rc;
}

int vg_dnipc_process_info(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                          struct vg_dnipc_process_info *out)
{
    static const struct {
        uint8_t id;
        unsigned command;
        const char *op;
    } versions[] = {{0x08, 3, "ProcessInfo3"}, {0x04, 2, "ProcessInfo2"}, {0x00, 1, "ProcessInfo"}};
    memset(out, 0, sizeof(*out));
    struct vg__dnipc_reply *r = malloc(sizeof(*r));
    if (!r)
        return VG_ENOMEM;
    int rc = VG_EUNSUPPORTED;
    for (size_t i = 0; i < VG_ARRAY_SIZE(versions); i++) {
        rc = simple_command(ep, io, VG__DNIPC_SET_PROCESS, versions[i].id, versions[i].op, r);
        if (rc == 0)
            rc = vg__dnipc_check(r, io, versions[i].op, ep_what(ep), false);
        if (rc == VG_EUNSUPPORTED && i + 1 < VG_ARRAY_SIZE(versions))
            continue;
        if (rc < 0)
            break;
        rc = vg__dnipc_parse_process_info(versions[i].command, r->payload, r->payload_len, out);
        if (rc < 0)
            vg__dnipc_seterr(io, "%s on %s: malformed reply payload (%zu bytes)", versions[i].op,
                             ep_what(ep), r->payload_len);
        break;
    }
    free(r);
    return rc;
}

int vg_dnipc_resume_runtime(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io)
{
    struct vg__dnipc_reply *r = malloc(sizeof(*r));
    if (!r)
        return VG_ENOMEM;
    int rc = simple_command(ep, io, VG__DNIPC_SET_PROCESS, 0x01, "ResumeRuntime", r);
    if (rc == 0)
        rc = vg__dnipc_check(r, io, "ResumeRuntime", ep_what(ep), false);
    free(r);
    return rc;
}

/* ---- dumps -------------------------------------------------------------------------------------
 */

int vg_dnipc_dump_type_parse(const char *s, enum vg_dnipc_dump_type *out)
{
    static const struct {
        const char *name;
        enum vg_dnipc_dump_type t;
    } names[] = {{"Mini", VG_DNIPC_DUMP_NORMAL},
                 {"Normal", VG_DNIPC_DUMP_NORMAL},
                 {"WithHeap", VG_DNIPC_DUMP_WITH_HEAP},
                 {"Triage", VG_DNIPC_DUMP_TRIAGE},
                 {"Full", VG_DNIPC_DUMP_FULL}};
    for (size_t i = 0; s && i < VG_ARRAY_SIZE(names); i++)
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].t;
            return 0;
        }
    return VG_EINVAL;
}

const char *vg_dnipc_dump_type_name(enum vg_dnipc_dump_type t)
{
    switch (t) {
    case VG_DNIPC_DUMP_NORMAL:
        return "Mini";
    case VG_DNIPC_DUMP_WITH_HEAP:
        return "WithHeap";
    case VG_DNIPC_DUMP_TRIAGE:
        return "Triage";
    case VG_DNIPC_DUMP_FULL:
        return "Full";
    }
    return "?";
}

int vg_dnipc_dump(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                  const char *path, enum vg_dnipc_dump_type type)
{
    static const struct {
        uint8_t id;
        const char *op;
        bool with_message;
    } versions[] = {{0x03, "GenerateCoreDump3", true},
                    {0x02, "GenerateCoreDump2", false},
                    {0x01, "GenerateCoreDump", false}};
    if (!path || !*path || type < VG_DNIPC_DUMP_NORMAL || type > VG_DNIPC_DUMP_FULL) {
        vg__dnipc_seterr(io, "dump of %s: a path and a dump type are required", ep_what(ep));
        return VG_EINVAL;
    }
    struct vg__dnipc_reply *r = malloc(sizeof(*r));
    if (!r)
        return VG_ENOMEM;
    int rc = VG_EUNSUPPORTED;
    for (size_t i = 0; i < VG_ARRAY_SIZE(versions); i++) {
        struct msg m;
        rc = msg_init(&m, VG__DNIPC_SET_DUMP, versions[i].id);
        if (rc < 0)
            break;
        msg_string(&m, path);
        msg_u32(&m, (uint32_t)type);
        msg_u32(&m, 0); /* flags (v2+) / diagnostics off (v1): no createdump chatter on the
                           app's console */
        rc = transact(ep, io, &m, versions[i].op, r, NULL);
        msg_free(&m);
        if (rc == 0)
            rc = vg__dnipc_check(r, io, versions[i].op, ep_what(ep), versions[i].with_message);
        if (rc == 0 && r->payload_len >= 4 && le32(r->payload) != 0) {
            /* OK header with a failing HRESULT payload */
            uint32_t hr = le32(r->payload);
            const char *text = vg_dnipc_hresult_text(hr);
            vg__dnipc_seterr(io, "%s on %s failed: %s (HRESULT 0x%08X)", versions[i].op,
                             ep_what(ep), text ? text : "createdump failed", hr);
            rc = hresult_to_vg(hr);
        }
        if (rc != VG_EUNSUPPORTED || i + 1 == VG_ARRAY_SIZE(versions))
            break;
    }
    free(r);
    return rc;
}

/* ---- environment -------------------------------------------------------------------------------
 */

int vg__dnipc_read_environment(struct vg__dnipc_conn *c, const struct vg__dnipc_reply *r,
                               vg_dnipc_env_cb cb, void *ctx)
{
    if (r->payload_len < 6)
        return VG_EPROTO;
    uint64_t left = le32(r->payload); /* continuation bytes announced */
    if (left > VG_DNIPC_ENV_MAX)
        return VG_E2BIG;
    uint8_t b4[4];
    if (left < 4)
        return left == 0 ? 0 : VG_EPROTO;
    int rc = read_full(c, b4, 4);
    if (rc < 0)
        return rc;
    left -= 4;
    uint32_t count = le32(b4);
    uint8_t *units = NULL;
    size_t cap = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (left < 4) {
            rc = VG_EPROTO;
            break;
        }
        if ((rc = read_full(c, b4, 4)) < 0)
            break;
        left -= 4;
        uint32_t n = le32(b4);
        if (n > VG_DNIPC_ENV_ENTRY_MAX / 2) {
            rc = VG_E2BIG;
            break;
        }
        if ((uint64_t)n * 2 > left) {
            rc = VG_EPROTO;
            break;
        }
        if ((size_t)n * 2 > cap) {
            free(units);
            cap = (size_t)n * 2;
            if (!(units = malloc(cap))) {
                rc = VG_ENOMEM;
                break;
            }
        }
        if ((rc = read_full(c, units, (size_t)n * 2)) < 0)
            break;
        left -= (uint64_t)n * 2;
        char *pair = vg__dnipc_utf16_to_utf8(units, n);
        if (!pair) {
            rc = VG_ENOMEM;
            break;
        }
        char *eq = strchr(pair, '=');
        /* "=C:"-style entries (no name) do not occur on Linux; skip anything without a name */
        if (eq && eq != pair) {
            *eq = 0;
            rc = cb ? cb(ctx, pair, eq + 1) : 0;
        }
        free(pair);
        if (rc != 0)
            break;
    }
    free(units);
    if (rc == 0 && left != 0)
        rc = VG_EPROTO; /* announced more bytes than the entries used */
    return rc;
}

int vg_dnipc_environment(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                         vg_dnipc_env_cb cb, void *ctx)
{
    struct vg__dnipc_reply *r = malloc(sizeof(*r));
    if (!r)
        return VG_ENOMEM;
    struct msg m;
    int fd = -1;
    int rc = msg_init(&m, VG__DNIPC_SET_PROCESS, 0x02);
    if (rc == 0)
        rc = transact(ep, io, &m, "ProcessEnvironment", r, &fd);
    msg_free(&m);
    if (rc == 0 && (rc = vg__dnipc_check(r, io, "ProcessEnvironment", ep_what(ep), false)) == 0) {
        struct vg__dnipc_conn c;
        vg__dnipc_conn_fd(&c, fd, io);
        rc = vg__dnipc_read_environment(&c, r, cb, ctx);
        if (rc == VG_EPROTO || rc == VG_E2BIG || rc == VG_ECONNRESET)
            vg__dnipc_seterr(io,
                             "ProcessEnvironment on %s: malformed or oversized environment "
                             "block (%s)",
                             ep_what(ep), vg_strerror(rc));
    }
    if (fd >= 0)
        close(fd);
    free(r);
    return rc;
}

struct get_env {
    const char *name;
    char *value;
};

static int get_env_cb(void *ctx, const char *name, const char *value)
{
    struct get_env *g = ctx;
    if (strcmp(name, g->name) != 0)
        return 0;
    free(g->value);
    g->value = vg_strdup(value);
    return g->value ? 0 : VG_ENOMEM;
}

int vg_dnipc_get_env(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                     const char *name, char **value)
{
    struct get_env g = {name, NULL};
    *value = NULL;
    int rc = vg_dnipc_environment(ep, io, get_env_cb, &g);
    if (rc == 0 && !g.value) {
        vg__dnipc_seterr(io, "environment variable %s is not set in %s", name, ep_what(ep));
        rc = VG_ENOTFOUND;
    }
    if (rc < 0) {
        free(g.value);
        return rc;
    }
    *value = g.value;
    return 0;
}

int vg_dnipc_set_env(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                     const char *name, const char *value)
{
    if (!name || !*name || strchr(name, '=')) {
        vg__dnipc_seterr(io, "SetEnvironmentVariable on %s: invalid variable name \"%s\"",
                         ep_what(ep), name ? name : "");
        return VG_EINVAL;
    }
    struct vg__dnipc_reply *r = malloc(sizeof(*r));
    if (!r)
        return VG_ENOMEM;
    struct msg m;
    int rc = msg_init(&m, VG__DNIPC_SET_PROCESS, 0x03);
    if (rc == 0) {
        msg_string(&m, name);
        msg_string(&m, value ? value : "");
        rc = transact(ep, io, &m, "SetEnvironmentVariable", r, NULL);
    }
    msg_free(&m);
    if (rc == 0)
        rc = vg__dnipc_check(r, io, "SetEnvironmentVariable", ep_what(ep), false);
    if (rc == 0 && r->payload_len >= 4 && le32(r->payload) != 0) {
        uint32_t hr = le32(r->payload);
        vg__dnipc_seterr(io, "SetEnvironmentVariable on %s failed with HRESULT 0x%08X", ep_what(ep),
                         hr);
        rc = hresult_to_vg(hr);
    }
    free(r);
    return rc;
}

/* ---- EventPipe
 * ----------------------------------------------------------------------------------- */

int vg_dnipc_collect_tracing(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                             const struct vg_dnipc_trace_config *cfg, uint64_t *session_id,
                             int *fd_out)
{
    *fd_out = -1;
    if (!cfg || !cfg->n_providers) {
        vg__dnipc_seterr(io, "CollectTracing on %s: at least one provider is required",
                         ep_what(ep));
        return VG_EINVAL;
    }
    uint64_t rundown = 0;
    if (cfg->request_rundown)
        rundown = cfg->rundown_keyword ? cfg->rundown_keyword : DEFAULT_RUNDOWN_KEYWORD;
    /* the oldest command that can say it (dotnet's client does the same) */
    uint8_t id = 0x03;
    const char *op = "CollectTracing2";
    if (rundown && rundown != DEFAULT_RUNDOWN_KEYWORD)
        id = 0x05, op = "CollectTracing4";
    else if (cfg->no_stackwalk)
        id = 0x04, op = "CollectTracing3";

    struct vg__dnipc_reply *r = malloc(sizeof(*r));
    if (!r)
        return VG_ENOMEM;
    struct msg m;
    int fd = -1;
    int rc = msg_init(&m, VG__DNIPC_SET_EVENTPIPE, id);
    if (rc < 0)
        goto out;
    msg_u32(&m, cfg->buffer_mb ? cfg->buffer_mb : 256);
    msg_u32(&m, 1); /* nettrace */
    if (id == 0x05)
        msg_u64(&m, rundown);
    else
        msg_u8(&m, rundown != 0);
    if (id != 0x03)
        msg_u8(&m, !cfg->no_stackwalk);
    msg_u32(&m, (uint32_t)cfg->n_providers);
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const struct vg_dnipc_provider *p = &cfg->providers[i];
        msg_u64(&m, p->keywords);
        msg_u32(&m, p->level);
        msg_string(&m, p->name);
        msg_string(&m, p->arguments && *p->arguments ? p->arguments : NULL);
    }
    rc = transact(ep, io, &m, op, r, &fd);
    if (rc < 0)
        goto out;
    rc = vg__dnipc_check(r, io, op, ep_what(ep), false);
    if (rc == 0 && r->payload_len < 8) {
        vg__dnipc_seterr(io, "%s on %s: the reply carries no session id", op, ep_what(ep));
        rc = VG_EPROTO;
    }
    if (rc < 0)
        goto out;
    *session_id = le64(r->payload);
    *fd_out = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    msg_free(&m);
    free(r);
    return rc;
}

int vg_dnipc_stop_tracing(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                          uint64_t session_id)
{
    struct vg__dnipc_reply *r = malloc(sizeof(*r));
    if (!r)
        return VG_ENOMEM;
    struct msg m;
    int rc = msg_init(&m, VG__DNIPC_SET_EVENTPIPE, 0x01);
    if (rc == 0) {
        msg_u64(&m, session_id);
        rc = transact(ep, io, &m, "StopTracing", r, NULL);
    }
    msg_free(&m);
    if (rc == 0)
        rc = vg__dnipc_check(r, io, "StopTracing", ep_what(ep), false);
    free(r);
    return rc;
}

int vg_dnipc_read(int fd, const struct vg_dnipc_io *io, void *buf, size_t cap, size_t *got)
{
    struct vg__dnipc_conn c;
    vg__dnipc_conn_fd(&c, fd, io);
    *got = 0;
    return c.read(&c, buf, cap, got);
}

int vg_dnipc_pump(int fd, const struct vg_dnipc_io *io, vg_dnipc_sink_fn write, void *ctx,
                  uint64_t *bytes)
{
    enum { CHUNK = 64 * 1024 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return VG_ENOMEM;
    uint64_t total = 0;
    int rc;
    for (;;) {
        size_t got = 0;
        rc = vg_dnipc_read(fd, io, buf, CHUNK, &got);
        if (rc < 0 || got == 0)
            break;
        total += got;
        if ((rc = write(ctx, buf, got)) < 0)
            break;
    }
    free(buf);
    if (bytes)
        *bytes = total;
    return rc;
}

/* ---- connect-mode endpoints --------------------------------------------------------------------
 */

/* connect() to a Unix socket path of any length: sun_path holds 108 bytes, so a longer path is
 * reached through an O_PATH descriptor of its directory (/proc/self/fd/N/NAME). */
static int unix_connect(const char *path, const struct vg_dnipc_io *io, int *out_fd)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int dfd = -1, rc = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (strlen(path) < sizeof(sa.sun_path)) {
        memcpy(sa.sun_path, path, strlen(path) + 1);
    } else {
        const char *slash = strrchr(path, '/');
        char *dir = slash ? vg_strndup(path, (size_t)(slash - path) + 1) : NULL;
        if (!dir) {
            rc = slash ? VG_ENOMEM : VG_ENAMETOOLONG;
            goto out;
        }
        dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        free(dir);
        if (dfd < 0) {
            rc = -errno;
            goto out;
        }
        int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd, slash + 1);
        if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
            rc = VG_ENAMETOOLONG;
            goto out;
        }
    }
    uint64_t deadline = io && io->timeout_ms >= 0 ? vg_mono_ms() + (uint64_t)io->timeout_ms : 0;
    for (;;) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            rc = -errno;
            goto out;
        }
        /* the runtime's backlog is full: it is busy with another client; try again shortly */
        if (canceled(io)) {
            rc = VG_ECANCELED;
            goto out;
        }
        if (deadline && vg_mono_ms() >= deadline) {
            rc = VG_ETIMEDOUT;
            goto out;
        }
        usleep(10 * 1000);
    }
out:
    if (dfd >= 0)
        close(dfd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *out_fd = fd;
    return 0;
}

static int path_connect(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                        int *out_fd)
{
    int rc = unix_connect(ep->path, io, out_fd);
    if (rc == 0)
        return 0;
    switch (rc) {
    case VG_ECONNREFUSED:
        vg__dnipc_seterr(io,
                         "%s: nobody listens on %s (a socket left behind by a process that "
                         "exited?)",
                         ep_what(ep), ep->path);
        break;
    case VG_ENOENT:
        vg__dnipc_seterr(io, "%s: no diagnostic socket at %s", ep_what(ep), ep->path);
        break;
    case VG_EACCES:
    case VG_EPERM:
        vg__dnipc_seterr(io,
                         "%s: permission denied connecting to %s: run vigil as root or as the "
                         "process's user",
                         ep_what(ep), ep->path);
        break;
    case VG_ETIMEDOUT:
        vg__dnipc_seterr(io, "%s: %s accepted no connection within %d ms", ep_what(ep), ep->path,
                         io ? io->timeout_ms : -1);
        break;
    default:
        vg__dnipc_seterr(io, "%s: connecting to %s failed: %s", ep_what(ep), ep->path,
                         vg_strerror(rc));
    }
    return rc;
}

void vg_dnipc_endpoint_path(struct vg_dnipc_endpoint *ep, const char *path, const char *what)
{
    memset(ep, 0, sizeof(*ep));
    ep->connect = path_connect;
    snprintf(ep->path, sizeof(ep->path), "%s", path);
    snprintf(ep->what, sizeof(ep->what), "%s", what ? what : "");
}

/* ---- cookies
 * ------------------------------------------------------------------------------------- */

void vg_dnipc_cookie_format(const uint8_t c[16], char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", c[3],
             c[2], c[1], c[0], c[5], c[4], c[7], c[6], c[8], c[9], c[10], c[11], c[12], c[13],
             c[14], c[15]);
}

int vg_dnipc_cookie_parse(const char *s, uint8_t c[16])
{
    /* byte order of the text: the first three groups are little-endian fields */
    static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
    uint8_t raw[16];
    size_t k = 0;
    if (!s || strlen(s) != 36)
        return VG_EINVAL;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return VG_EINVAL;
            i++;
            continue;
        }
        if (!isxdigit((unsigned char)s[i]) || !isxdigit((unsigned char)s[i + 1]))
            return VG_EINVAL;
        char pair[3] = {s[i], s[i + 1], 0};
        raw[k++] = (uint8_t)strtoul(pair, NULL, 16);
        i += 2;
    }
    for (size_t i = 0; i < 16; i++)
        c[order[i]] = raw[i];
    return 0;
}
