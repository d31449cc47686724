/* Follows an ELF core file as it streams by (the kernel's, handed to `vigil crash` on stdin, or
 * vigil's own on its way into an egress) and works out from its ELF header and program headers
 * how long it must be: a stream that ends before that is truncated, one that is not an ELF core
 * is malformed. Holds only one header at a time, whatever the stream claims. */
#ifndef VG_CORE_STREAM_H
#define VG_CORE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vg_core_stream {
    uint64_t seen;     /* bytes fed so far */
    uint64_t expected; /* the core's length as far as the headers read so far say; 0 = unknown */
    int rc;            /* 0, or VG_EPARSE once the stream showed it is no ELF core */
    char error[160];
    /* internal */
    bool is64, xnum, header_done;
    uint16_t phentsize;
    uint32_t phnum, ph_index;
    uint64_t phoff;
    unsigned char buf[64]; /* the ELF header, then each program header in turn */
    size_t buf_len;
};

void vg_core_stream_init(struct vg_core_stream *c);
/* Feeds the next len bytes. Returns 0, or VG_EPARSE (and keeps returning it) when the stream is
 * not an ELF core file of this machine (c->error says why). */
int vg_core_stream_feed(struct vg_core_stream *c, const void *buf, size_t len);
/* Once the stream ended: 0 when every byte its headers announce arrived; VG_ETRUNCATED when it
 * ended early, VG_EPARSE when it was never a core (err says what, with the byte counts). */
int vg_core_stream_end(const struct vg_core_stream *c, char *err, size_t errlen);
/* The fraction known so far: expected bytes, or 0 while the headers have not been seen. */
static inline uint64_t vg_core_stream_expected(const struct vg_core_stream *c)
{
    return c->rc ? 0 : c->expected;
}

#endif
