/* The ELF core stream checker (core_stream.h). A core written by the kernel (fs/binfmt_elf.c) or
 * by vigil starts with the ELF header, then the program headers; the notes and the memory follow
 * at the offsets those headers give, and with more than 65534 segments (PN_XNUM) one section
 * header closes the file at e_shoff. So the length is known once the headers went by:
 * max(end of the program header table, p_offset + p_filesz of each, e_shoff + the section
 * headers). */
#include "engine/cli/core_stream.h"

#include "config/error.h"

#include <elf.h>
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
    uint16_t type, phnum, shentsize, shnum;
    uint64_t shoff;
    if (c->is64) {
        Elf64_Ehdr h;
        memcpy(&h, c->buf, sizeof(h));
        type = h.e_type;
        c->phoff = h.e_phoff;
        c->phentsize = h.e_phentsize;
        phnum = h.e_phnum;
        shoff = h.e_shoff;
        shentsize = h.e_shentsize;
        shnum = h.e_shnum;
        if (h.e_phentsize != sizeof(Elf64_Phdr))
            return bad(c, "program header size is not 56");
    } else {
        Elf32_Ehdr h;
        memcpy(&h, c->buf, sizeof(h));
        type = h.e_type;
        c->phoff = h.e_phoff;
        c->phentsize = h.e_phentsize;
        phnum = h.e_phnum;
        shoff = h.e_shoff;
        shentsize = h.e_shentsize;
        shnum = h.e_shnum;
        if (h.e_phentsize != sizeof(Elf32_Phdr))
            return bad(c, "program header size is not 32");
    }
    if (type != ET_CORE)
        return bad(c, "ELF file, but not a core (e_type is not ET_CORE)");
    if (phnum == 0)
        return bad(c, "no program headers");
    if (c->phoff < (c->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr)))
        return bad(c, "program headers overlap the ELF header");
    c->xnum = phnum == PN_XNUM;
    /* with PN_XNUM the real count sits in the section header at the end: the file ends there */
    c->phnum = c->xnum ? 0 : phnum;
    need(c, add_sat(c->phoff, (uint64_t)c->phnum * c->phentsize));
    if (shoff)
        need(c, add_sat(shoff, (uint64_t)shentsize * (shnum ? shnum : 1)));
    else if (c->xnum)
        return bad(c, "PN_XNUM without a section header");
    c->header_done = true;
    c->buf_len = 0;
    return 0;
}

static void program_header(struct vg_core_stream *c)
{
    uint64_t off, filesz;
    if (c->is64) {
        Elf64_Phdr p;
        memcpy(&p, c->buf, sizeof(p));
        off = p.p_offset;
        filesz = p.p_filesz;
    } else {
        Elf32_Phdr p;
        memcpy(&p, c->buf, sizeof(p));
        off = p.p_offset;
        filesz = p.p_filesz;
    }
    if (filesz)
        need(c, add_sat(off, filesz));
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
