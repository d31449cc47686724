#include "tests/nettrace/ntwriter.h"

#include <stdlib.h>
#include <string.h>

void ntw_free(struct ntw *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

void ntw_bytes(struct ntw *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        size_t c = w->cap ? w->cap : 256;
        while (c < w->len + n)
            c *= 2;
        w->buf = realloc(w->buf, c);
        if (!w->buf)
            abort();
        w->cap = c;
    }
    if (n)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void ntw_u8(struct ntw *w, uint8_t v)
{
    ntw_bytes(w, &v, 1);
}

void ntw_u16(struct ntw *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    ntw_bytes(w, b, 2);
}

void ntw_u32(struct ntw *w, uint32_t v)
{
    ntw_u16(w, (uint16_t)v);
    ntw_u16(w, (uint16_t)(v >> 16));
}

void ntw_u64(struct ntw *w, uint64_t v)
{
    ntw_u32(w, (uint32_t)v);
    ntw_u32(w, (uint32_t)(v >> 32));
}

void ntw_f64(struct ntw *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    ntw_u64(w, u);
}

void ntw_f32(struct ntw *w, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    ntw_u32(w, u);
}

void ntw_var(struct ntw *w, uint64_t v)
{
    while (v >= 0x80) {
        ntw_u8(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    ntw_u8(w, (uint8_t)v);
}

void ntw_utf16(struct ntw *w, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c;
        if (*p < 0x80) {
            c = *p++;
        } else if ((*p & 0xe0) == 0xc0) {
            c = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
            p += 2;
        } else if ((*p & 0xf0) == 0xe0) {
            c = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
            p += 3;
        } else {
            c = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
                (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
            p += 4;
        }
        if (c >= 0x10000) {
            c -= 0x10000;
            ntw_u16(w, (uint16_t)(0xd800 + (c >> 10)));
            ntw_u16(w, (uint16_t)(0xdc00 + (c & 0x3ff)));
        } else {
            ntw_u16(w, (uint16_t)c);
        }
    }
    ntw_u16(w, 0);
}

static void type_object(struct ntw *w, const char *name, uint32_t version)
{
    ntw_u8(w, 5); /* BeginPrivateObject (the object) */
    ntw_u8(w, 5); /* BeginPrivateObject (its type) */
    ntw_u8(w, 1); /* NullReference: the type's type */
    ntw_u32(w, version);
    ntw_u32(w, version);
    ntw_u32(w, (uint32_t)strlen(name));
    ntw_bytes(w, name, strlen(name));
    ntw_u8(w, 6); /* EndObject (the type) */
}

void ntw_header(struct ntw *w)
{
    ntw_bytes(w, "Nettrace", 8);
    ntw_u32(w, 20);
    ntw_bytes(w, "!FastSerialization.1", 20);
}

void ntw_trace(struct ntw *w, uint32_t pid)
{
    type_object(w, "Trace", 4);
    /* 2026-11-23 (a Monday) 10:20:30.456 UTC */
    uint16_t st[8] = {2026, 11, 1, 23, 10, 20, 30, 456};
    for (int i = 0; i < 8; i++)
        ntw_u16(w, st[i]);
    ntw_u64(w, 1000000);    /* sync ticks */
    ntw_u64(w, 1000000000); /* ticks per second */
    ntw_u32(w, 8);
    ntw_u32(w, pid);
    ntw_u32(w, 2);
    ntw_u32(w, 1000000);
    ntw_u8(w, 6);
}

void ntw_end(struct ntw *w)
{
    ntw_u8(w, 1);
}

void ntw_block(struct ntw *w, const char *type, const struct ntw *body)
{
    type_object(w, type, 2);
    ntw_u32(w, (uint32_t)body->len);
    while (w->len & 3)
        ntw_u8(w, 0);
    ntw_bytes(w, body->buf, body->len);
    ntw_u8(w, 6);
}

void ntw_events(struct ntw *body, bool compressed, const struct ntw_event *ev, size_t n)
{
    ntw_u16(body, 20);
    ntw_u16(body, compressed ? 1 : 0);
    ntw_u64(body, 0);
    ntw_u64(body, 0);
    struct ntw_event last;
    memset(&last, 0, sizeof last);
    uint32_t last_len = 0;
    for (size_t i = 0; i < n; i++) {
        const struct ntw_event *e = &ev[i];
        uint32_t plen = e->payload ? (uint32_t)e->payload->len : 0;
        if (!compressed) {
            uint32_t size = 76 + plen;
            uint32_t padded = (size + 3) & ~3u;
            ntw_u32(body, padded);
            ntw_u32(body, e->metadata_id | (e->sorted ? 0 : 0x80000000u));
            ntw_u32(body, e->seq);
            ntw_u64(body, e->thread);
            ntw_u64(body, e->capture_thread);
            ntw_u32(body, e->proc);
            ntw_u32(body, e->stack);
            ntw_u64(body, (uint64_t)e->timestamp);
            for (int k = 0; k < 32; k++)
                ntw_u8(body, (uint8_t)(k + 1)); /* activity ids */
            ntw_u32(body, plen);
            if (plen)
                ntw_bytes(body, e->payload->buf, plen);
            for (uint32_t k = size; k < padded; k++)
                ntw_u8(body, 0);
            continue;
        }
        struct ntw h = {0};
        uint8_t flags = 0;
        if (e->metadata_id != last.metadata_id) {
            flags |= 1;
            ntw_var(&h, e->metadata_id);
        }
        if (last.seq + (e->metadata_id != 0 ? 1 : 0) != e->seq ||
            last.capture_thread != e->capture_thread || last.proc != e->proc) {
            flags |= 2;
            ntw_var(&h, e->seq - last.seq - 1);
            ntw_var(&h, e->capture_thread);
            ntw_var(&h, e->proc);
        }
        if (e->thread != last.thread) {
            flags |= 4;
            ntw_var(&h, e->thread);
        }
        if (e->stack != last.stack) {
            flags |= 8;
            ntw_var(&h, e->stack);
        }
        ntw_var(&h, (uint64_t)(e->timestamp - last.timestamp));
        if (e->sorted)
            flags |= 64;
        if (plen != last_len) {
            flags |= 128;
            ntw_var(&h, plen);
        }
        ntw_u8(body, flags);
        ntw_bytes(body, h.buf, h.len);
        if (plen)
            ntw_bytes(body, e->payload->buf, plen);
        ntw_free(&h);
        last = *e;
        last_len = plen;
    }
}

void ntw_meta_head(struct ntw *w, uint32_t id, const char *provider, uint32_t event_id,
                   const char *name)
{
    ntw_u32(w, id);
    ntw_utf16(w, provider);
    ntw_u32(w, event_id);
    ntw_utf16(w, name);
    ntw_u64(w, 0x42);
    ntw_u32(w, 1);
    ntw_u32(w, 4);
}
