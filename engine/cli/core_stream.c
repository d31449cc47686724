/* The ELF core stream checker (core_stream.h). A core written by the kernel (fs/binfmt_elf.c) or
 * by vigil starts with the ELF header, then the program headers; the notes and the memory follow
 * at the offsets those headers give, and with more than 65534 segments (PN_XNUM) one section
 * header closes the file at e_shoff. So the length is known once the headers went by:
 * max(end of the program header table, p_offset + p_filesz of each, e_shoff + the section
 * headers). */
#include "engine/cli/core_stream.h"

#include "config/error.h"

#include <elf.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

void vg_core_stream_init(struct vg_core_stream *c)
{
    memset(c, 0, sizeof(*c));
}

static int bad(struct vg_core_stream *c, const char *why)
{
    if (!c->rc) {
        c->rc = VG_EPARSE;
        snprintf(c->error, sizeof(c->error), "not an ELF core file: %s", why);
    }
    return c->rc;
}

/* a + b, or UINT64_MAX when it overflows (a core that long can only be truncated) */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void need(struct vg_core_stream *c, uint64_t end)
{
    if (end > c->expected)
        c->expected = end;
}

/* Where the fields the checker reads sit in each ELF class (the two headers differ only in the
 * widths and places of their fields). */
struct layout {
    size_t ehsize, phsize;
    struct field {
        size_t off, len;
    } type, phoff, shoff, phentsize, phnum, shentsize, shnum, p_offset, p_filesz;
};
#define F(T, m)                                                                                    \
    {                                                                                              \
        offsetof(T, m), sizeof(((T *)0)->m)                                                        \
    }
static const struct layout elf64 = {
    sizeof(Elf64_Ehdr),      sizeof(Elf64_Phdr),         F(Elf64_Ehdr, e_type),
    F(Elf64_Ehdr, e_phoff),  F(Elf64_Ehdr, e_shoff),     F(Elf64_Ehdr, e_phentsize),
    F(Elf64_Ehdr, e_phnum),  F(Elf64_Ehdr, e_shentsize), F(Elf64_Ehdr, e_shnum),
    F(Elf64_Phdr, p_offset), F(Elf64_Phdr, p_filesz),
};
static const struct layout elf32 = {
    sizeof(Elf32_Ehdr),      sizeof(Elf32_Phdr),         F(Elf32_Ehdr, e_type),
    F(Elf32_Ehdr, e_phoff),  F(Elf32_Ehdr, e_shoff),     F(Elf32_Ehdr, e_phentsize),
    F(Elf32_Ehdr, e_phnum),  F(Elf32_Ehdr, e_shentsize), F(Elf32_Ehdr, e_shnum),
    F(Elf32_Phdr, p_offset), F(Elf32_Phdr, p_filesz),
};
#undef F

/* A little-endian field of buf. */
static uint64_t get(const unsigned char *buf, struct field f)
{
    uint64_t v = 0;
    for (size_t i = f.len; i-- > 0;)
        v = v << 8 | buf[f.off + i];
    return v;
}

static int header(struct vg_core_stream *c)
{
    const unsigned char *id = c->buf;
    if (memcmp(id, ELFMAG, SELFMAG) != 0)
        return bad(c, "no ELF magic");
    if (id[EI_CLASS] != ELFCLASS64 && id[EI_CLASS] != ELFCLASS32)
        return bad(c, "unknown ELF class");
    if (id[EI_DATA] != ELFDATA2LSB)
        return bad(c, "not little-endian");
    c->is64 = id[EI_CLASS] == ELFCLASS64;
    const struct layout *l = c->is64 ? &elf64 : &elf32;
    uint64_t phnum = get(c->buf, l->phnum), shoff = get(c->buf, l->shoff);
    uint64_t shnum = get(c->buf, l->shnum);
    c->phoff = get(c->buf, l->phoff);
    c->phentsize = (uint16_t)get(c->buf, l->phentsize);
    if (get(c->buf, l->type) != ET_CORE)
        return bad(c, "ELF file, but not a core (e_type is not ET_CORE)");
    if (c->phentsize != l->phsize)
        return bad(c, "program headers of the wrong size for their class");
    if (phnum == 0)
        return bad(c, "no program headers");
    if (c->phoff < l->ehsize)
        return bad(c, "program headers overlap the ELF header");
    c->xnum = phnum == PN_XNUM;
    /* with PN_XNUM the real count sits in the section header at the end: the file ends there */
    c->phnum = c->xnum ? 0 : (uint32_t)phnum;
    need(c, add_sat(c->phoff, (uint64_t)c->phnum * c->phentsize));
    if (shoff)
        need(c, add_sat(shoff, get(c->buf, l->shentsize) * (shnum ? shnum : 1)));
    else if (c->xnum)
        return bad(c, "PN_XNUM without a section header");
    c->header_done = true;
    c->buf_len = 0;
    return 0;
}

static void program_header(struct vg_core_stream *c)
{
    const struct layout *l = c->is64 ? &elf64 : &elf32;
    uint64_t filesz = get(c->buf, l->p_filesz);
    if (filesz)
        need(c, add_sat(get(c->buf, l->p_offset), filesz));
    c->ph_index++;
    c->buf_len = 0;
}

int vg_core_stream_feed(struct vg_core_stream *c, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (c->rc)
        return c->rc;
    while (len) {
        size_t take = 0;
        if (!c->header_done) {
            /* the identification bytes first: they say how long the header is */
            size_t hsz = EI_NIDENT;
            if (c->buf_len >= EI_NIDENT)
                hsz = c->buf[EI_CLASS] == ELFCLASS32 ? sizeof(Elf32_Ehdr) : sizeof(Elf64_Ehdr);
            size_t want = hsz - c->buf_len;
            take = len < want ? len : want;
            memcpy(c->buf + c->buf_len, p, take);
            c->buf_len += take;
            if (c->buf_len == EI_NIDENT && memcmp(c->buf, ELFMAG, SELFMAG) != 0)
                return bad(c, "no ELF magic");
            if (c->buf_len == hsz && hsz > EI_NIDENT && header(c))
                return c->rc;
        } else if (c->ph_index < c->phnum) {
            uint64_t at = add_sat(c->phoff, (uint64_t)c->ph_index * c->phentsize);
            at = add_sat(at, c->buf_len);
            if (c->seen < at) { /* bytes before the next program header */
                uint64_t gap = at - c->seen;
                take = gap < len ? (size_t)gap : len;
            } else {
                size_t want = c->phentsize - c->buf_len;
                take = len < want ? len : want;
                memcpy(c->buf + c->buf_len, p, take);
                c->buf_len += take;
                if (c->buf_len == c->phentsize)
                    program_header(c);
            }
        } else {
            take = len; /* notes and memory: only counted */
        }
        c->seen += take;
        p += take;
        len -= take;
    }
    return 0;
}

int vg_core_stream_end(const struct vg_core_stream *c, char *err, size_t errlen)
{
    if (c->rc) {
        snprintf(err, errlen, "%s", c->error);
        return c->rc;
    }
    if (!c->header_done) {
        if (!c->seen) {
            snprintf(err, errlen, "empty core: the stream ended before its first byte");
            return VG_EPARSE;
        }
        snprintf(err, errlen,
                 "truncated core: the stream ended after %llu bytes, inside the ELF header",
                 (unsigned long long)c->seen);
        return VG_ETRUNCATED;
    }
    if (c->ph_index < c->phnum || c->seen < c->expected) {
        snprintf(err, errlen,
                 "truncated core: the stream ended after %llu bytes, its headers announce %llu",
                 (unsigned long long)c->seen, (unsigned long long)c->expected);
        return VG_ETRUNCATED;
    }
    return 0;
}
