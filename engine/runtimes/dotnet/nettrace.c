/* Streaming nettrace parser: see nettrace.h. The format reference is perfview's
 * NetTraceFormat_v5.md; the runtime's writer (ep-file.c, ep-block.c) decides the details the
 * document leaves open (uncompressed events carry their padding inside EventSize; blocks are at
 * most 100 KiB). */
#include "engine/runtimes/dotnet/nettrace.h"

#include "config/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NT_MAGIC_LEN 12 /* "Nettrace" and the word that tells V5 (20) from V6 (0) */
#define NT_TYPE_LEN 14  /* BeginPrivateObject, NullReference, version, min version, name length */
#define NT_TRACE_LEN 48 /* the Trace object's fields */
#define NT_MAX_TYPE_NAME 32  /* longest object type name accepted */
#define NT_EVENT_HDR_LEN 76  /* an uncompressed event header after its EventSize field */
#define NT_MAX_DEPTH 16      /* nesting of Object/Array field descriptions */
#define NT_MAX_NODES 4096    /* field descriptions in one metadata record */
#define NT_MAX_NAMES 65536   /* bytes of UTF-8 names in one metadata record */
#define NT_MAX_THREADS 65536 /* threads whose sequence numbers are tracked */

enum nt_state {
    S_MAGIC,
    S_HEADER, /* "!FastSerialization.1" */
    S_TAG,    /* the tag that starts an object, or the end of the stream */
    S_TYPE,   /* the object's type object */
    S_NAME,   /* the type name and the type's EndObject tag */
    S_TRACE,  /* the Trace object's fields */
    S_BSIZE,  /* a block's size */
    S_PAD,    /* alignment padding */
    S_BODY,   /* a block's content */
    S_END,    /* the object's EndObject tag */
    S_DONE,
};

enum nt_kind { K_NONE, K_TRACE, K_EVENT, K_METADATA, K_STACK, K_SP };

struct nt_thread {
    uint64_t id;
    uint32_t seq;
    bool used;
};

/* A field description while a metadata record is parsed: indexes, not pointers (the arrays grow).
 */
struct nt_node {
    uint32_t name; /* offset in names */
    uint8_t type;
    uint16_t nfields;
    uint32_t first; /* first child node (Object) */
    uint32_t elem;  /* element node (Array) */
};

struct vg_nettrace {
    struct vg_nettrace_callbacks cb;
    struct vg_nettrace_limits lim;
    enum nt_state state;
    enum nt_kind kind;
    size_t need;         /* bytes the state waits for */
    uint64_t offset;     /* stream offset of the next byte */
    uint64_t obj_offset; /* where the current object's content starts */
    uint8_t *stage;      /* bytes collected toward `need` when a feed split them */
    size_t stage_len;
    size_t stage_cap;
    uint32_t block_size;
    bool have_info;
    struct vg_nettrace_info info;

    struct vg_nettrace_meta **meta; /* open addressing on id */
    size_t meta_cap;
    size_t meta_count;
    size_t meta_bytes;

    struct nt_thread *thr; /* open addressing on capture thread id */
    size_t thr_cap;
    size_t thr_count;

    struct nt_node *nodes; /* metadata scratch */
    size_t nnodes;
    size_t nodes_cap;
    char *names;
    size_t names_len;
    size_t names_cap;

    struct vg_nettrace_stats st;
    int err;
    char errmsg[256];
};

/* ---- errors ---- */

__attribute__((format(printf, 4, 5))) static int fail_at(struct vg_nettrace *p, int err,
                                                         uint64_t off, const char *fmt, ...)
{
    if (p->err)
        return p->err;
    int n =
        snprintf(p->errmsg, sizeof p->errmsg, "nettrace: offset %llu: ", (unsigned long long)off);
    if (n > 0 && (size_t)n < sizeof p->errmsg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->errmsg + n, sizeof p->errmsg - (size_t)n, fmt, ap);
        va_end(ap);
    }
    p->err = err;
    return err;
}

/* ---- little-endian readers (the stream has no alignment we can rely on) ---- */

static inline uint16_t rd16(const uint8_t *b)
{
    return (uint16_t)(b[0] | (uint16_t)b[1] << 8);
}

static inline uint32_t rd32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint64_t rd64(const uint8_t *b)
{
    return (uint64_t)rd32(b) | (uint64_t)rd32(b + 4) << 32;
}

/* A bounded cursor: every read checks the end first. */
struct rd {
    const uint8_t *p;
    const uint8_t *end;
};

static inline bool rd_has(const struct rd *r, size_t n)
{
    return (size_t)(r->end - r->p) >= n;
}

static inline int rd_u8(struct rd *r, uint8_t *v)
{
    if (!rd_has(r, 1))
        return -1;
    *v = *r->p++;
    return 0;
}

static inline int rd_u32(struct rd *r, uint32_t *v)
{
    if (!rd_has(r, 4))
        return -1;
    *v = rd32(r->p);
    r->p += 4;
    return 0;
}

static inline int rd_u64(struct rd *r, uint64_t *v)
{
    if (!rd_has(r, 8))
        return -1;
    *v = rd64(r->p);
    r->p += 8;
    return 0;
}

static inline int rd_var(struct rd *r, uint64_t *v, int bits)
{
    uint64_t x = 0;
    for (int shift = 0; shift < bits + 7; shift += 7) {
        if (r->p >= r->end)
            return -1;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (bits < 64 && x >> bits)
                return -1;
            *v = x;
            return 0;
        }
        if (shift + 7 >= 64)
            return -1;
    }
    return -1;
}

static inline int rd_var32(struct rd *r, uint32_t *v)
{
    uint64_t x;
    if (rd_var(r, &x, 32))
        return -1;
    *v = (uint32_t)x;
    return 0;
}

/* ---- UTF-16 ---- */

/* Length in bytes (without the terminator) of the NUL-terminated UTF-16 string at p, or -1 when
 * no terminator comes before end. */
static long utf16_len(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *s = p;
    while (end - s >= 2) {
        if (s[0] == 0 && s[1] == 0)
            return (long)(s - p);
        s += 2;
    }
    return -1;
}

static size_t utf8_put(uint32_t c, char *o)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xc0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xe0 | c >> 12);
        o[1] = (char)(0x80 | (c >> 6 & 0x3f));
        o[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | c >> 18);
    o[1] = (char)(0x80 | (c >> 12 & 0x3f));
    o[2] = (char)(0x80 | (c >> 6 & 0x3f));
    o[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* Converts n bytes of UTF-16LE into buf (cap bytes, NUL-terminated when cap > 0, cut at a
 * character boundary). Returns the full UTF-8 length. Lone surrogates become U+FFFD. */
static size_t utf16_to_utf8(const uint8_t *s, size_t n, char *buf, size_t cap)
{
    size_t total = 0, w = 0;
    bool cut = cap == 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint32_t c = rd16(s + i);
        if (c >= 0xd800 && c < 0xdc00 && i + 3 < n) {
            uint32_t lo = rd16(s + i + 2);
            if (lo >= 0xdc00 && lo < 0xe000) {
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                i += 2;
            } else {
                c = 0xfffd;
            }
        } else if (c >= 0xd800 && c < 0xe000) {
            c = 0xfffd;
        }
        char tmp[4];
        size_t k = utf8_put(c, tmp);
        total += k;
        if (!cut && w + k < cap) {
            memcpy(buf + w, tmp, k);
            w += k;
        } else {
            cut = true;
        }
    }
    if (cap > 0)
        buf[w] = '\0';
    return total;
}

/* ---- the thread table (dropped-event detection) ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static struct nt_thread *thread_slot(struct vg_nettrace *p, uint64_t id)
{
    if (p->thr_count * 2 >= p->thr_cap) {
        if (p->thr_cap >= NT_MAX_THREADS * 2)
            return NULL; /* stop tracking new threads rather than grow without bound */
        size_t ncap = p->thr_cap ? p->thr_cap * 2 : 64;
        struct nt_thread *n = calloc(ncap, sizeof *n);
        if (!n)
            return NULL;
        for (size_t i = 0; i < p->thr_cap; i++) {
            if (!p->thr[i].used)
                continue;
            size_t j = mix64(p->thr[i].id) & (ncap - 1);
            while (n[j].used)
                j = (j + 1) & (ncap - 1);
            n[j] = p->thr[i];
        }
        free(p->thr);
        p->thr = n;
        p->thr_cap = ncap;
    }
    size_t j = mix64(id) & (p->thr_cap - 1);
    while (p->thr[j].used && p->thr[j].id != id)
        j = (j + 1) & (p->thr_cap - 1);
    if (!p->thr[j].used) {
        p->thr[j].used = true;
        p->thr[j].id = id;
        p->thr[j].seq = 0;
        p->thr_count++;
    }
    return &p->thr[j];
}

/* Counts the events a capture thread skipped, as TraceEvent does: an event's sequence number
 * follows the thread's last one; a sequence point gives a lower bound of the last one written. A
 * thread seen for the first time, or going backwards (an id reused), counts nothing. */
static void thread_seen(struct vg_nettrace *p, uint64_t id, uint32_t seq, bool checkpoint)
{
    struct nt_thread *t = thread_slot(p, id);
    if (!t)
        return;
    uint32_t expected = checkpoint ? seq : seq - 1;
    int32_t gap = (int32_t)(expected - t->seq);
    if (t->seq != 0 && gap > 0)
        p->st.events_lost += (uint64_t)gap;
    t->seq = seq;
}

/* ---- the metadata table ---- */

static struct vg_nettrace_meta *meta_get(const struct vg_nettrace *p, uint32_t id)
{
    if (!p->meta_cap)
        return NULL;
    size_t j = mix64(id) & (p->meta_cap - 1);
    while (p->meta[j]) {
        if (p->meta[j]->id == id)
            return p->meta[j];
        j = (j + 1) & (p->meta_cap - 1);
    }
    return NULL;
}

static int meta_put(struct vg_nettrace *p, struct vg_nettrace_meta *m)
{
    if (p->meta_count + 1 > p->lim.max_metadata)
        return VG_ELIMIT;
    if ((p->meta_count + 1) * 2 > p->meta_cap) {
        size_t ncap = p->meta_cap ? p->meta_cap * 2 : 256;
        struct vg_nettrace_meta **n = calloc(ncap, sizeof *n);
        if (!n)
            return VG_ENOMEM;
        for (size_t i = 0; i < p->meta_cap; i++) {
            if (!p->meta[i])
                continue;
            size_t j = mix64(p->meta[i]->id) & (ncap - 1);
            while (n[j])
                j = (j + 1) & (ncap - 1);
            n[j] = p->meta[i];
        }
        free(p->meta);
        p->meta = n;
        p->meta_cap = ncap;
    }
    size_t j = mix64(m->id) & (p->meta_cap - 1);
    while (p->meta[j]) {
        if (p->meta[j]->id == m->id) {
            /* A redefinition replaces the old record (the writer may reuse an id). */
            free(p->meta[j]);
            p->meta[j] = m;
            return 0;
        }
        j = (j + 1) & (p->meta_cap - 1);
    }
    p->meta[j] = m;
    p->meta_count++;
    return 0;
}

/* ---- metadata parsing ---- */

/* Why a field list could not be read: the bytes overrun (corrupt), or a type we don't know (the
 * payload stays opaque, the stream stays valid). */
enum { MD_OK = 0, MD_CORRUPT = -1, MD_UNKNOWN = -2, MD_LIMIT = -3, MD_NOMEM = -4 };

static int md_name(struct vg_nettrace *p, struct rd *r, uint32_t *off)
{
    long n = utf16_len(r->p, r->end);
    if (n < 0)
        return MD_CORRUPT;
    /* UTF-8 of n bytes of UTF-16 is at most 3/2 n bytes, plus the NUL. */
    size_t want = (size_t)n / 2 * 3 + 1;
    if (p->names_len + want > NT_MAX_NAMES)
        return MD_LIMIT;
    if (p->names_len + want > p->names_cap) {
        size_t ncap = p->names_cap ? p->names_cap : 1024;
        while (ncap < p->names_len + want)
            ncap *= 2;
        char *nn = realloc(p->names, ncap);
        if (!nn)
            return MD_NOMEM;
        p->names = nn;
        p->names_cap = ncap;
    }
    size_t k = utf16_to_utf8(r->p, (size_t)n, p->names + p->names_len, want);
    *off = (uint32_t)p->names_len;
    p->names_len += k + 1;
    r->p += n + 2;
    return MD_OK;
}

static int md_reserve(struct vg_nettrace *p, uint32_t count, uint32_t *first)
{
    *first = (uint32_t)p->nnodes;
    if (count == 0)
        return MD_OK; /* nothing to clear (and p->nodes may still be NULL) */
    if (p->nnodes + count > NT_MAX_NODES)
        return MD_LIMIT;
    if (p->nnodes + count > p->nodes_cap) {
        size_t ncap = p->nodes_cap ? p->nodes_cap : 64;
        while (ncap < p->nnodes + count)
            ncap *= 2;
        struct nt_node *nn = realloc(p->nodes, ncap * sizeof *nn);
        if (!nn)
            return MD_NOMEM;
        p->nodes = nn;
        p->nodes_cap = ncap;
    }
    *first = (uint32_t)p->nnodes;
    memset(p->nodes + p->nnodes, 0, count * sizeof *p->nodes);
    p->nnodes += count;
    return MD_OK;
}

static bool type_known(uint32_t t)
{
    return t == VG_NT_OBJECT || (t >= VG_NT_BOOL32 && t <= VG_NT_ARRAY);
}

static int md_fields(struct vg_nettrace *p, struct rd *r, bool v2, int depth, uint32_t *first,
                     uint16_t *count);

/* A type in the V2 layout (inside a V2Params field): int32 type code, then for Array the element
 * type, for Object the nested fields. */
static int md_type_v2(struct vg_nettrace *p, struct rd *r, uint32_t node, int depth)
{
    uint32_t t;
    if (rd_u32(r, &t))
        return MD_CORRUPT;
    if (!type_known(t))
        return MD_UNKNOWN;
    p->nodes[node].type = (uint8_t)t;
    if (t == VG_NT_OBJECT) {
        uint32_t f;
        uint16_t n;
        int rc = md_fields(p, r, true, depth + 1, &f, &n);
        if (rc)
            return rc;
        p->nodes[node].first = f;
        p->nodes[node].nfields = n;
    } else if (t == VG_NT_ARRAY) {
        if (depth + 1 > NT_MAX_DEPTH)
            return MD_LIMIT;
        uint32_t e;
        int rc = md_reserve(p, 1, &e);
        if (rc)
            return rc;
        p->nodes[e].name = p->nodes[node].name;
        p->nodes[node].elem = e;
        rc = md_type_v2(p, r, e, depth + 1);
        if (rc)
            return rc;
    }
    return MD_OK;
}

/* A field list: int32 count, then per field either (V1) type code, nested fields for Object,
 * UTF-16 name; or (V2) int32 size (counting itself), UTF-16 name, type. */
static int md_fields(struct vg_nettrace *p, struct rd *r, bool v2, int depth, uint32_t *first,
                     uint16_t *count)
{
    if (depth > NT_MAX_DEPTH)
        return MD_LIMIT;
    uint32_t n;
    if (rd_u32(r, &n))
        return MD_CORRUPT;
    /* Each field takes at least 6 bytes: never reserve more than the bytes can hold. */
    if (n > (size_t)(r->end - r->p) / 6 || n > UINT16_MAX)
        return MD_CORRUPT;
    uint32_t base;
    int rc = md_reserve(p, n, &base);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t node = base + i;
        if (v2) {
            uint32_t size;
            if (rd_u32(r, &size) || size < 4 || size - 4 > (size_t)(r->end - r->p))
                return MD_CORRUPT;
            struct rd fr = {r->p, r->p + (size - 4)};
            r->p = fr.end;
            uint32_t name;
            if ((rc = md_name(p, &fr, &name)))
                return rc;
            p->nodes[node].name = name;
            if ((rc = md_type_v2(p, &fr, node, depth)))
                return rc;
            /* Bytes left in fr are padding to the declared size. */
        } else {
            uint32_t t;
            if (rd_u32(r, &t))
                return MD_CORRUPT;
            if (!type_known(t) || t == VG_NT_ARRAY)
                return MD_UNKNOWN; /* Array is not valid in V1 descriptions */
            p->nodes[node].type = (uint8_t)t;
            if (t == VG_NT_OBJECT) {
                uint32_t f;
                uint16_t nf;
                if ((rc = md_fields(p, r, false, depth + 1, &f, &nf)))
                    return rc;
                p->nodes[node].first = f;
                p->nodes[node].nfields = nf;
            }
            uint32_t name;
            if ((rc = md_name(p, r, &name)))
                return rc;
            p->nodes[node].name = name;
        }
    }
    *first = base;
    *count = (uint16_t)n;
    return MD_OK;
}

static int32_t node_fixed_size(const struct vg_nettrace_field *f)
{
    switch (f->type) {
    case VG_NT_INT8:
    case VG_NT_UINT8:
        return 1;
    case VG_NT_CHAR16:
    case VG_NT_INT16:
    case VG_NT_UINT16:
        return 2;
    case VG_NT_BOOL32:
    case VG_NT_INT32:
    case VG_NT_UINT32:
    case VG_NT_FLOAT:
        return 4;
    case VG_NT_INT64:
    case VG_NT_UINT64:
    case VG_NT_DOUBLE:
    case VG_NT_DATETIME:
        return 8;
    case VG_NT_DECIMAL:
    case VG_NT_GUID:
        return 16;
    case VG_NT_OBJECT: {
        int64_t sum = 0;
        for (uint16_t i = 0; i < f->nfields; i++) {
            if (f->fields[i].fixed_size < 0)
                return -1;
            sum += f->fields[i].fixed_size;
        }
        return sum > INT32_MAX ? -1 : (int32_t)sum;
    }
    default:
        return -1;
    }
}

/* Packs the scratch nodes of a parsed record into one allocation with pointers. Children come
 * after their parent in the scratch array only for Objects reserved later, so sizes are computed
 * from the last node backwards. */
static struct vg_nettrace_meta *md_pack(struct vg_nettrace *p, uint32_t id, uint32_t provider,
                                        uint32_t name, uint32_t root, uint16_t nroot, size_t *bytes)
{
    size_t sz = sizeof(struct vg_nettrace_meta) + p->nnodes * sizeof(struct vg_nettrace_field) +
                p->names_len;
    struct vg_nettrace_meta *m = calloc(1, sz);
    if (!m)
        return NULL;
    struct vg_nettrace_field *f = (struct vg_nettrace_field *)(m + 1);
    char *names = (char *)(f + p->nnodes);
    memcpy(names, p->names, p->names_len);
    for (size_t i = 0; i < p->nnodes; i++) {
        const struct nt_node *n = &p->nodes[i];
        f[i].name = names + n->name;
        f[i].type = n->type;
        f[i].nfields = n->nfields;
        f[i].fields = n->nfields ? f + n->first : NULL;
        f[i].elem = n->type == VG_NT_ARRAY ? f + n->elem : NULL;
    }
    /* Children are always reserved after their parent: a backward pass sees them first. */
    for (size_t i = p->nnodes; i-- > 0;)
        f[i].fixed_size = node_fixed_size(&f[i]);
    m->id = id;
    m->provider = names + provider;
    m->name = names + name;
    m->fields = nroot ? f + root : NULL;
    m->nfields = nroot;
    *bytes = sz;
    return m;
}

/* One metadata record (a MetadataBlock event's payload). */
static int parse_metadata(struct vg_nettrace *p, const uint8_t *b, size_t len, uint64_t off)
{
    struct rd r = {b, b + len};
    uint32_t id = 0, event_id = 0, version = 0, level = 0, provider = 0, name = 0;
    uint64_t keywords = 0;
    p->nnodes = 0;
    p->names_len = 0;
    /* MetaDataId, ProviderName, EventId, EventName, Keywords, Version, Level. */
    int rc = MD_CORRUPT;
    if (!rd_u32(&r, &id) && !(rc = md_name(p, &r, &provider))) {
        rc = MD_CORRUPT;
        if (!rd_u32(&r, &event_id) && !(rc = md_name(p, &r, &name))) {
            rc = MD_CORRUPT;
            if (!rd_u64(&r, &keywords) && !rd_u32(&r, &version) && !rd_u32(&r, &level))
                rc = MD_OK;
        }
    }
    if (rc == MD_CORRUPT)
        return fail_at(p, VG_EPARSE, off, "metadata record header overruns its %zu bytes", len);
    if (rc == MD_LIMIT)
        return fail_at(p, VG_ELIMIT, off, "metadata record names exceed %d bytes", NT_MAX_NAMES);
    if (rc == MD_NOMEM)
        return fail_at(p, VG_ENOMEM, off, "out of memory reading metadata");
    if (id == 0)
        return fail_at(p, VG_EPARSE, off, "metadata record with id 0");

    uint32_t root = 0;
    uint16_t nroot = 0;
    bool unknown = false;
    uint8_t opcode = 0;
    if (r.p < r.end) {
        rc = md_fields(p, &r, false, 0, &root, &nroot);
        /* Tags follow the V1 fields: int32 length, byte kind, then length bytes. */
        while (rc == MD_OK && r.p < r.end) {
            uint32_t tlen;
            uint8_t kind;
            if (rd_u32(&r, &tlen) || rd_u8(&r, &kind) || tlen > (size_t)(r.end - r.p)) {
                rc = MD_CORRUPT;
                break;
            }
            struct rd tr = {r.p, r.p + tlen};
            r.p = tr.end;
            if (kind == 1) { /* OpCode */
                if (rd_u8(&tr, &opcode))
                    rc = MD_CORRUPT;
            } else if (kind == 2) { /* V2Params: replaces the (empty) V1 description */
                if (nroot != 0) {
                    rc = MD_CORRUPT;
                    break;
                }
                rc = md_fields(p, &tr, true, 0, &root, &nroot);
            }
            /* Other tags are for later versions: skipped. */
        }
        if (rc == MD_UNKNOWN) {
            /* As TraceEvent does: a description we cannot read leaves the payload opaque but the
             * stream valid. */
            unknown = true;
            nroot = 0;
            rc = MD_OK;
        }
        if (rc == MD_CORRUPT)
            return fail_at(p, VG_EPARSE, off,
                           "metadata %u (%s): field descriptions overrun the record", id,
                           p->names + provider);
        if (rc == MD_LIMIT)
            return fail_at(p, VG_ELIMIT, off,
                           "metadata %u (%s): more than %d fields, %d bytes of names or %d levels",
                           id, p->names + provider, NT_MAX_NODES, NT_MAX_NAMES, NT_MAX_DEPTH);
        if (rc == MD_NOMEM)
            return fail_at(p, VG_ENOMEM, off, "out of memory reading metadata");
    }

    size_t bytes;
    struct vg_nettrace_meta *m = md_pack(p, id, provider, name, root, nroot, &bytes);
    if (!m)
        return fail_at(p, VG_ENOMEM, off, "out of memory storing metadata");
    m->event_id = event_id;
    m->version = version;
    m->level = level;
    m->keywords = keywords;
    m->opcode = opcode;
    m->fields_unknown = unknown;
    if (p->meta_bytes + bytes > p->lim.max_metadata_bytes) {
        free(m);
        return fail_at(p, VG_ELIMIT, off, "metadata exceeds %zu bytes", p->lim.max_metadata_bytes);
    }
    rc = meta_put(p, m);
    if (rc) {
        free(m);
        if (rc == VG_ELIMIT)
            return fail_at(p, rc, off, "more than %zu event types", p->lim.max_metadata);
        return fail_at(p, rc, off, "out of memory storing metadata");
    }
    p->meta_bytes += bytes;
    p->st.metadata++;
    if (p->cb.metadata) {
        rc = p->cb.metadata(p->cb.ctx, m);
        if (rc < 0)
            return fail_at(p, rc, off, "stopped by the metadata callback");
    }
    return 0;
}

/* ---- blocks ---- */

/* The running state of header compression within one block. */
struct evhdr {
    uint32_t metadata_id;
    uint32_t seq;
    uint64_t capture_thread;
    uint32_t proc;
    uint64_t thread;
    uint32_t stack;
    int64_t timestamp;
    uint8_t activity[16];
    uint8_t related[16];
    uint32_t payload_len;
    bool sorted;
};

static int read_header(struct rd *r, bool compressed, struct evhdr *h, const uint8_t **next)
{
    if (!compressed) {
        uint32_t size;
        if (rd_u32(r, &size) || size < NT_EVENT_HDR_LEN || size > (size_t)(r->end - r->p))
            return -1;
        const uint8_t *b = r->p;
        *next = b + size; /* EventSize includes the writer's padding */
        uint32_t mid = rd32(b);
        h->metadata_id = mid & 0x7fffffff;
        h->sorted = !(mid & 0x80000000u);
        h->seq = rd32(b + 4);
        h->thread = rd64(b + 8);
        h->capture_thread = rd64(b + 16);
        h->proc = rd32(b + 24);
        h->stack = rd32(b + 28);
        h->timestamp = (int64_t)rd64(b + 32);
        memcpy(h->activity, b + 40, 16);
        memcpy(h->related, b + 56, 16);
        h->payload_len = rd32(b + 72);
        if (h->payload_len > size - NT_EVENT_HDR_LEN)
            return -1;
        r->p = b + NT_EVENT_HDR_LEN;
        return 0;
    }
    uint8_t flags;
    uint64_t v;
    if (rd_u8(r, &flags))
        return -1;
    if (flags & 1) {
        if (rd_var32(r, &h->metadata_id))
            return -1;
    }
    if (flags & 2) {
        uint32_t d;
        if (rd_var32(r, &d) || rd_var(r, &h->capture_thread, 64) || rd_var32(r, &h->proc))
            return -1;
        h->seq += d + 1;
    } else if (h->metadata_id != 0) {
        h->seq++;
    }
    if (flags & 4) {
        if (rd_var(r, &h->thread, 64))
            return -1;
    }
    if (flags & 8) {
        if (rd_var32(r, &h->stack))
            return -1;
    }
    if (rd_var(r, &v, 64))
        return -1;
    h->timestamp = (int64_t)((uint64_t)h->timestamp + v);
    if (flags & 16) {
        if (!rd_has(r, 16))
            return -1;
        memcpy(h->activity, r->p, 16);
        r->p += 16;
    }
    if (flags & 32) {
        if (!rd_has(r, 16))
            return -1;
        memcpy(h->related, r->p, 16);
        r->p += 16;
    }
    h->sorted = (flags & 64) != 0;
    if (flags & 128) {
        if (rd_var32(r, &h->payload_len))
            return -1;
    }
    if (h->payload_len > (size_t)(r->end - r->p))
        return -1;
    *next = r->p + h->payload_len;
    return 0;
}

/* An EventBlock or a MetadataBlock: a header, then event blobs up to the block's end. */
static int parse_event_block(struct vg_nettrace *p, const uint8_t *b, size_t len, bool metadata)
{
    const char *what = metadata ? "MetadataBlock" : "EventBlock";
    uint64_t base = p->obj_offset;
    if (len < 20)
        return fail_at(p, VG_EPARSE, base, "%s of %zu bytes is shorter than its header", what, len);
    uint16_t hsize = rd16(b);
    uint16_t flags = rd16(b + 2);
    if (hsize < 20 || hsize > len)
        return fail_at(p, VG_EPARSE, base, "%s header size %u (block of %zu bytes)", what, hsize,
                       len);
    bool compressed = flags & 1;
    struct evhdr h;
    memset(&h, 0, sizeof h);
    struct rd r = {b + hsize, b + len};
    while (r.p < r.end) {
        uint64_t off = base + (uint64_t)(r.p - b);
        const uint8_t *next;
        if (read_header(&r, compressed, &h, &next))
            return fail_at(p, VG_EPARSE, off, "%s: event header or payload overruns the block",
                           what);
        if (metadata) {
            if (h.metadata_id != 0)
                return fail_at(p, VG_EPARSE, off, "MetadataBlock holds an event of metadata %u",
                               h.metadata_id);
            int rc = parse_metadata(p, r.p, h.payload_len, off);
            if (rc)
                return rc;
        } else {
            if (h.metadata_id == 0)
                return fail_at(p, VG_EPARSE, off, "EventBlock holds a metadata record");
            const struct vg_nettrace_meta *m = meta_get(p, h.metadata_id);
            if (!m)
                return fail_at(p, VG_EPARSE, off, "event of undefined metadata %u", h.metadata_id);
            p->st.events++;
            thread_seen(p, h.capture_thread, h.seq, false);
            if (p->cb.event && (!p->cb.metadata || m->tag > 0)) {
                struct vg_nettrace_event ev = {
                    .meta = m,
                    .timestamp = h.timestamp,
                    .thread_id = h.thread,
                    .capture_thread_id = h.capture_thread,
                    .sequence = h.seq,
                    .stack_id = h.stack,
                    .processor = h.proc,
                    .payload = r.p,
                    .payload_len = h.payload_len,
                };
                memcpy(ev.activity_id, h.activity, 16);
                memcpy(ev.related_activity_id, h.related, 16);
                p->st.delivered++;
                int rc = p->cb.event(p->cb.ctx, &ev);
                if (rc < 0)
                    return fail_at(p, rc, off, "stopped by the event callback");
            }
        }
        r.p = next;
    }
    return 0;
}

static int parse_stack_block(struct vg_nettrace *p, const uint8_t *b, size_t len)
{
    uint64_t base = p->obj_offset;
    struct rd r = {b, b + len};
    uint32_t first, count;
    if (rd_u32(&r, &first) || rd_u32(&r, &count))
        return fail_at(p, VG_EPARSE, base, "StackBlock of %zu bytes is shorter than its header",
                       len);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t size;
        if (rd_u32(&r, &size) || size > (size_t)(r.end - r.p))
            return fail_at(p, VG_EPARSE, base + (uint64_t)(r.p - b),
                           "StackBlock: stack %u of %u overruns the block", i + 1, count);
        r.p += size;
        p->st.stacks++;
    }
    if (r.p != r.end)
        return fail_at(p, VG_EPARSE, base + (uint64_t)(r.p - b),
                       "StackBlock: %zu bytes after its %u stacks", (size_t)(r.end - r.p), count);
    return 0;
}

static int parse_sp_block(struct vg_nettrace *p, const uint8_t *b, size_t len)
{
    uint64_t base = p->obj_offset;
    if (len < 12)
        return fail_at(p, VG_EPARSE, base, "SPBlock of %zu bytes is shorter than its header", len);
    uint32_t count = rd32(b + 8);
    if ((uint64_t)count * 12 != len - 12)
        return fail_at(p, VG_EPARSE, base, "SPBlock of %zu bytes announces %u threads", len, count);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *t = b + 12 + (size_t)i * 12;
        thread_seen(p, rd64(t), rd32(t + 8), true);
    }
    p->st.sequence_points++;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int parse_trace(struct vg_nettrace *p, const uint8_t *b)
{
    /* SYSTEMTIME: year, month, day of week, day, hour, minute, second, milliseconds. */
    unsigned year = rd16(b), month = rd16(b + 2), day = rd16(b + 6);
    unsigned hour = rd16(b + 8), min = rd16(b + 10), sec = rd16(b + 12), ms = rd16(b + 14);
    struct vg_nettrace_info *in = &p->info;
    /* nanoseconds since 1970 in an int64 reach years 1678 to 2261; a trace is recent */
    if (year < 1970 || year > 2261 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
        min > 59 || sec > 60 || ms > 999)
        return fail_at(p, VG_EPARSE, p->obj_offset, "Trace object: invalid start time");
    int64_t days = days_from_civil(year, month, day);
    in->start_unix_ns =
        ((days * 86400 + hour * 3600 + min * 60 + sec) * 1000 + (int64_t)ms) * 1000000;
    in->sync_ticks = (int64_t)rd64(b + 16);
    in->ticks_per_second = (int64_t)rd64(b + 24);
    in->pointer_size = rd32(b + 32);
    in->pid = rd32(b + 36);
    in->processors = rd32(b + 40);
    in->sampling_rate_ns = rd32(b + 44);
    if (in->ticks_per_second <= 0)
        return fail_at(p, VG_EPARSE, p->obj_offset, "Trace object: tick frequency %lld",
                       (long long)in->ticks_per_second);
    if (in->pointer_size != 4 && in->pointer_size != 8)
        return fail_at(p, VG_EPARSE, p->obj_offset, "Trace object: pointer size %u",
                       in->pointer_size);
    p->have_info = true;
    if (p->cb.trace) {
        int rc = p->cb.trace(p->cb.ctx, in);
        if (rc < 0)
            return fail_at(p, rc, p->obj_offset, "stopped by the trace callback");
    }
    return 0;
}

/* ---- the object state machine ---- */

static const struct {
    const char *name;
    enum nt_kind kind;
} nt_types[] = {
    {"Trace", K_TRACE},      {"EventBlock", K_EVENT}, {"MetadataBlock", K_METADATA},
    {"StackBlock", K_STACK}, {"SPBlock", K_SP},
};

static const char *state_what(const struct vg_nettrace *p)
{
    static const char *kinds[] = {"object",        "Trace object", "EventBlock",
                                  "MetadataBlock", "StackBlock",   "SPBlock"};
    switch (p->state) {
    case S_MAGIC:
    case S_HEADER:
        return "the stream header";
    case S_TAG:
        return "before the end-of-stream tag";
    case S_TYPE:
    case S_NAME:
        return "an object's type";
    case S_BSIZE:
    case S_PAD:
        return "a block's size";
    case S_END:
        return "an object's end tag";
    default:
        return kinds[p->kind];
    }
}

static void expect(struct vg_nettrace *p, enum nt_state s, size_t need)
{
    p->state = s;
    p->need = need;
}

/* Handles the `need` bytes at b (an empty string when need is 0). */
static int step(struct vg_nettrace *p, const uint8_t *b)
{
    uint64_t off = p->offset - p->need; /* where b starts */
    switch (p->state) {
    case S_MAGIC:
        if (memcmp(b, "Nettrace", 8) != 0)
            return fail_at(p, VG_EPARSE, 0, "not a nettrace stream (no \"Nettrace\" magic)");
        if (rd32(b + 8) == 0)
            return fail_at(p, VG_EUNSUPPORTED, 8,
                           "nettrace format V6 is not supported (the runtime writes V5)");
        if (rd32(b + 8) != 20)
            return fail_at(p, VG_EPARSE, 8, "no \"!FastSerialization.1\" header");
        expect(p, S_HEADER, 20);
        return 0;
    case S_HEADER:
        if (memcmp(b, "!FastSerialization.1", 20) != 0)
            return fail_at(p, VG_EPARSE, 12, "no \"!FastSerialization.1\" header");
        expect(p, S_TAG, 1);
        return 0;
    case S_TAG:
        if (b[0] == 1) { /* NullReference: the end of the stream */
            if (!p->have_info)
                return fail_at(p, VG_EPARSE, off, "stream ends before its Trace object");
            expect(p, S_DONE, 0);
            return 0;
        }
        if (b[0] != 5)
            return fail_at(p, VG_EPARSE, off,
                           "expected an object (tag 5) or the end (tag 1), got %u", b[0]);
        expect(p, S_TYPE, NT_TYPE_LEN);
        return 0;
    case S_TYPE: {
        if (b[0] != 5 || b[1] != 1)
            return fail_at(p, VG_EPARSE, off, "malformed object type header");
        uint32_t version = rd32(b + 2), namelen = rd32(b + 10);
        if (namelen == 0 || namelen > NT_MAX_TYPE_NAME)
            return fail_at(p, VG_EPARSE, off, "object type name of %u bytes", namelen);
        p->block_size = version; /* kept until the name says what the version means */
        expect(p, S_NAME, namelen + 1);
        return 0;
    }
    case S_NAME: {
        size_t n = p->need - 1;
        uint32_t version = p->block_size;
        if (b[n] != 6)
            return fail_at(p, VG_EPARSE, off + n, "object type not closed (tag %u)", b[n]);
        p->kind = K_NONE;
        for (size_t i = 0; i < sizeof nt_types / sizeof nt_types[0]; i++)
            if (strlen(nt_types[i].name) == n && memcmp(nt_types[i].name, b, n) == 0)
                p->kind = nt_types[i].kind;
        if (p->kind == K_NONE)
            return fail_at(p, VG_EPARSE, off, "unknown object type \"%.*s\"", (int)n,
                           (const char *)b);
        if (p->kind == K_TRACE) {
            if (p->have_info)
                return fail_at(p, VG_EPARSE, off, "a second Trace object");
            if (version != 4)
                return fail_at(p, VG_EUNSUPPORTED, off, "Trace object version %u (expected 4)",
                               version);
            p->obj_offset = p->offset;
            expect(p, S_TRACE, NT_TRACE_LEN);
            return 0;
        }
        if (!p->have_info)
            return fail_at(p, VG_EPARSE, off, "a block before the Trace object");
        if (version != 2)
            return fail_at(p, VG_EUNSUPPORTED, off, "%s version %u (expected 2)",
                           nt_types[p->kind - 1].name, version);
        expect(p, S_BSIZE, 4);
        return 0;
    }
    case S_TRACE: {
        int rc = parse_trace(p, b);
        if (rc)
            return rc;
        expect(p, S_END, 1);
        return 0;
    }
    case S_BSIZE: {
        uint32_t size = rd32(b);
        if (size > p->lim.max_block)
            return fail_at(p, VG_ELIMIT, off, "%s of %u bytes exceeds the %zu-byte limit",
                           nt_types[p->kind - 1].name, size, p->lim.max_block);
        p->block_size = size;
        expect(p, S_PAD, (size_t)((4 - (p->offset & 3)) & 3));
        return 0;
    }
    case S_PAD:
        p->obj_offset = p->offset;
        expect(p, S_BODY, p->block_size);
        return 0;
    case S_BODY: {
        int rc = 0;
        size_t len = p->block_size;
        p->st.blocks++;
        if (p->kind == K_EVENT || p->kind == K_METADATA)
            rc = parse_event_block(p, b, len, p->kind == K_METADATA);
        else if (p->kind == K_STACK)
            rc = parse_stack_block(p, b, len);
        else if (p->kind == K_SP)
            rc = parse_sp_block(p, b, len);
        if (rc)
            return rc;
        expect(p, S_END, 1);
        return 0;
    }
    case S_END:
        if (b[0] != 6)
            return fail_at(p, VG_EPARSE, off, "%s not closed (tag %u)", state_what(p), b[0]);
        expect(p, S_TAG, 1);
        return 0;
    case S_DONE:
        break;
    }
    return fail_at(p, VG_ESTATE, off, "parser in an impossible state");
}

static int stage_reserve(struct vg_nettrace *p, size_t n)
{
    if (n <= p->stage_cap)
        return 0;
    size_t ncap = p->stage_cap ? p->stage_cap : 4096;
    while (ncap < n)
        ncap *= 2;
    uint8_t *s = realloc(p->stage, ncap);
    if (!s)
        return VG_ENOMEM;
    p->stage = s;
    p->stage_cap = ncap;
    return 0;
}

int vg_nettrace_feed(struct vg_nettrace *p, const void *buf, size_t len)
{
    if (p->err)
        return p->err;
    const uint8_t *in = buf;
    for (;;) {
        /* States that wait for nothing run at once (zero padding, the end of the stream). */
        while (p->need == 0 && p->state != S_DONE) {
            int rc = step(p, (const uint8_t *)""); /* never NULL: b + 0 must be defined */
            if (rc)
                return rc;
        }
        if (len == 0)
            return 0;
        if (p->state == S_DONE)
            return fail_at(p, VG_EPARSE, p->offset, "%zu bytes after the end of the stream", len);
        const uint8_t *chunk;
        if (p->stage_len == 0 && len >= p->need) {
            chunk = in; /* the common case: parse in place, no copy */
            in += p->need;
            len -= p->need;
        } else {
            if (stage_reserve(p, p->need))
                return fail_at(p, VG_ENOMEM, p->offset, "out of memory buffering %zu bytes",
                               p->need);
            size_t k = p->need - p->stage_len;
            if (k > len)
                k = len;
            memcpy(p->stage + p->stage_len, in, k);
            p->stage_len += k;
            in += k;
            len -= k;
            if (p->stage_len < p->need)
                return 0;
            chunk = p->stage;
            p->stage_len = 0;
        }
        p->offset += p->need;
        p->st.bytes = p->offset;
        int rc = step(p, chunk);
        if (rc)
            return rc;
    }
}

int vg_nettrace_finish(struct vg_nettrace *p)
{
    if (p->err)
        return p->err;
    if (p->state == S_DONE)
        return 0;
    return fail_at(p, VG_EPARSE, p->offset + p->stage_len,
                   "truncated: the stream ends inside %s (%zu of %zu bytes there)", state_what(p),
                   p->stage_len, p->need);
}

bool vg_nettrace_done(const struct vg_nettrace *p)
{
    return p->state == S_DONE && !p->err;
}

const char *vg_nettrace_error(const struct vg_nettrace *p)
{
    return p->errmsg;
}

void vg_nettrace_stats(const struct vg_nettrace *p, struct vg_nettrace_stats *out)
{
    *out = p->st;
}

const struct vg_nettrace_info *vg_nettrace_info(const struct vg_nettrace *p)
{
    return p->have_info ? &p->info : NULL;
}

int64_t vg_nettrace_time(const struct vg_nettrace_info *info, int64_t ticks)
{
    /* In 128 bits: a corrupt timestamp far from the start saturates instead of overflowing. */
    __int128 ns = (__int128)info->start_unix_ns +
                  ((__int128)ticks - info->sync_ticks) * 1000000000 / info->ticks_per_second;
    return ns > INT64_MAX ? INT64_MAX : ns < INT64_MIN ? INT64_MIN : (int64_t)ns;
}

int vg_nettrace_create(const struct vg_nettrace_callbacks *cb, const struct vg_nettrace_limits *lim,
                       struct vg_nettrace **out)
{
    struct vg_nettrace *p = calloc(1, sizeof *p);
    if (!p)
        return VG_ENOMEM;
    if (cb)
        p->cb = *cb;
    p->lim.max_block = lim && lim->max_block ? lim->max_block : 1u << 20;
    p->lim.max_metadata = lim && lim->max_metadata ? lim->max_metadata : 65536;
    p->lim.max_metadata_bytes =
        lim && lim->max_metadata_bytes ? lim->max_metadata_bytes : 16u << 20;
    expect(p, S_MAGIC, NT_MAGIC_LEN);
    *out = p;
    return 0;
}

void vg_nettrace_destroy(struct vg_nettrace *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->meta_cap; i++)
        free(p->meta[i]);
    free(p->meta);
    free(p->thr);
    free(p->nodes);
    free(p->names);
    free(p->stage);
    free(p);
}

int vg_nettrace_tee_write(void *ctx, const void *buf, size_t len)
{
    struct vg_nettrace_tee *t = ctx;
    int rc = vg_nettrace_feed(t->parser, buf, len);
    if (rc)
        return rc;
    return t->write(t->ctx, buf, len);
}

/* ---- payload access ---- */

/* The size of the value of field f at p, or -1 when it overruns end. */
static int64_t value_size(const struct vg_nettrace_field *f, const uint8_t *p, const uint8_t *end)
{
    if (f->fixed_size >= 0)
        return f->fixed_size <= end - p ? f->fixed_size : -1;
    if (f->type == VG_NT_STRING) {
        long n = utf16_len(p, end);
        return n < 0 ? -1 : n + 2;
    }
    if (f->type == VG_NT_OBJECT) {
        const uint8_t *q = p;
        for (uint16_t i = 0; i < f->nfields; i++) {
            int64_t s = value_size(&f->fields[i], q, end);
            if (s < 0)
                return -1;
            q += s;
        }
        return q - p;
    }
    if (f->type == VG_NT_ARRAY) {
        if (end - p < 2)
            return -1;
        uint32_t n = rd16(p);
        const uint8_t *q = p + 2;
        if (f->elem->fixed_size >= 0) {
            int64_t s = (int64_t)n * f->elem->fixed_size;
            return s <= end - q ? s + 2 : -1;
        }
        /* Variable-size elements hold a string or an array: at least 2 bytes each. */
        for (uint32_t i = 0; i < n; i++) {
            int64_t s = value_size(f->elem, q, end);
            if (s < 0)
                return -1;
            q += s;
        }
        return q - p;
    }
    return -1;
}

static int find_field(const struct vg_nettrace_field *fields, uint16_t n, const uint8_t *p,
                      const uint8_t *end, const char *name, struct vg_nettrace_value *out)
{
    for (uint16_t i = 0; i < n; i++) {
        int64_t s = value_size(&fields[i], p, end);
        if (s < 0)
            return VG_EPARSE;
        if (strcmp(fields[i].name, name) == 0) {
            out->field = &fields[i];
            out->data = p;
            out->len = (size_t)s;
            return 0;
        }
        p += s;
    }
    return VG_ENOTFOUND;
}

int vg_nettrace_event_field(const struct vg_nettrace_event *ev, const char *name,
                            struct vg_nettrace_value *out)
{
    return find_field(ev->meta->fields, ev->meta->nfields, ev->payload,
                      ev->payload + ev->payload_len, name, out);
}

int vg_nettrace_value_field(const struct vg_nettrace_value *obj, const char *name,
                            struct vg_nettrace_value *out)
{
    if (obj->field->type != VG_NT_OBJECT)
        return VG_EINVAL;
    return find_field(obj->field->fields, obj->field->nfields, obj->data, obj->data + obj->len,
                      name, out);
}

int vg_nettrace_array_iter(const struct vg_nettrace_value *arr, struct vg_nettrace_iter *it)
{
    if (arr->field->type != VG_NT_ARRAY || arr->len < 2)
        return VG_EINVAL;
    it->elem = arr->field->elem;
    it->left = rd16(arr->data);
    it->p = arr->data + 2;
    it->end = arr->data + arr->len;
    return 0;
}

int vg_nettrace_iter_next(struct vg_nettrace_iter *it, struct vg_nettrace_value *out)
{
    if (it->left == 0)
        return 0;
    int64_t s = value_size(it->elem, it->p, it->end);
    if (s < 0)
        return VG_EPARSE;
    out->field = it->elem;
    out->data = it->p;
    out->len = (size_t)s;
    it->p += s;
    it->left--;
    return 1;
}

int vg_nettrace_value_f64(const struct vg_nettrace_value *v, double *out)
{
    const uint8_t *b = v->data;
    switch (v->field->type) {
    case VG_NT_FLOAT: {
        uint32_t u = rd32(b);
        float f;
        memcpy(&f, &u, 4);
        *out = f;
        return 0;
    }
    case VG_NT_DOUBLE: {
        uint64_t u = rd64(b);
        memcpy(out, &u, 8);
        return 0;
    }
    case VG_NT_UINT64:
        *out = (double)rd64(b);
        return 0;
    default: {
        int64_t i;
        int rc = vg_nettrace_value_i64(v, &i);
        if (rc)
            return rc;
        *out = (double)i;
        return 0;
    }
    }
}

int vg_nettrace_value_i64(const struct vg_nettrace_value *v, int64_t *out)
{
    const uint8_t *b = v->data;
    switch (v->field->type) {
    case VG_NT_INT8:
        *out = (int8_t)b[0];
        return 0;
    case VG_NT_UINT8:
        *out = b[0];
        return 0;
    case VG_NT_INT16:
        *out = (int16_t)rd16(b);
        return 0;
    case VG_NT_UINT16:
    case VG_NT_CHAR16:
        *out = rd16(b);
        return 0;
    case VG_NT_INT32:
    case VG_NT_BOOL32:
        *out = (int32_t)rd32(b);
        return 0;
    case VG_NT_UINT32:
        *out = rd32(b);
        return 0;
    case VG_NT_INT64:
    case VG_NT_UINT64:
        *out = (int64_t)rd64(b);
        return 0;
    case VG_NT_FLOAT:
    case VG_NT_DOUBLE: {
        double d;
        vg_nettrace_value_f64(v, &d);
        if (!(d >= -9.2e18 && d <= 9.2e18))
            return VG_ERANGE;
        *out = (int64_t)d;
        return 0;
    }
    default:
        return VG_EINVAL;
    }
}

long vg_nettrace_value_str(const struct vg_nettrace_value *v, char *buf, size_t cap)
{
    size_t n;
    if (v->field->type == VG_NT_STRING)
        n = v->len - 2; /* without the terminator */
    else if (v->field->type == VG_NT_CHAR16)
        n = 2;
    else
        return VG_EINVAL;
    return (long)utf16_to_utf8(v->data, n, buf, cap);
}

bool vg_nettrace_value_str_eq(const struct vg_nettrace_value *v, const char *s)
{
    if (v->field->type != VG_NT_STRING)
        return false;
    size_t n = v->len - 2, i = 0;
    for (; i < n; i += 2, s++) {
        uint16_t c = rd16(v->data + i);
        if (!*s || c >= 0x80 || c != (unsigned char)*s)
            return false;
    }
    return *s == '\0';
}
