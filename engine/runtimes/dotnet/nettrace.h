/* A streaming parser of the nettrace format: the EventPipe stream a .NET runtime sends on a
 * diagnostic-port session (CollectTracing) or writes to a .nettrace file.
 *
 * The runtime (.NET 5 to 10) writes format "NetTrace" version 4 with the version-5 metadata tags:
 * the "Nettrace" magic, the "!FastSerialization.1" header, then FastSerialization objects (Trace,
 * MetadataBlock, EventBlock, StackBlock, SPBlock), each block 4-byte aligned to the stream offset,
 * and a NullReference tag at the end (perfview's NetTraceFormat_v5.md). Version 6 (a "Nettrace"
 * magic followed by a zero word) is refused with VG_EUNSUPPORTED: no runtime here writes it.
 *
 * Bytes are fed as they arrive, split anywhere. Memory is bounded by the limits below whatever
 * the stream says: a block larger than max_block, too many or too large metadata records, a length
 * pointing outside its block, all stop the parser with VG_EPARSE (or VG_ELIMIT) and a message
 * naming the stream offset. Metadata is parsed in full (with nested Object and Array fields);
 * event payloads are not decoded here, only handed out with their metadata, so a consumer reads
 * just the fields it wants (vg_nettrace_event_field). Stacks are checked for shape and skipped.
 *
 * vg_nettrace_finish says whether the stream was complete: a trace shipped as an artifact is fed
 * through a parser as it streams, and a truncated or corrupted one is reported, never shipped as
 * success (vg_nettrace_tee_write).
 *
 * Threading: a parser belongs to one thread at a time; nothing is global. */
#ifndef VG_NETTRACE_H
#define VG_NETTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Payload field types: the EventPipe type codes (System.TypeCode plus Guid=17, Array=19). */
enum vg_nettrace_type {
    VG_NT_OBJECT = 1, /* nested fields, concatenated */
    VG_NT_BOOL32 = 3,
    VG_NT_CHAR16 = 4,
    VG_NT_INT8 = 5,
    VG_NT_UINT8 = 6,
    VG_NT_INT16 = 7,
    VG_NT_UINT16 = 8,
    VG_NT_INT32 = 9,
    VG_NT_UINT32 = 10,
    VG_NT_INT64 = 11,
    VG_NT_UINT64 = 12,
    VG_NT_FLOAT = 13,
    VG_NT_DOUBLE = 14,
    VG_NT_DECIMAL = 15,
    VG_NT_DATETIME = 16,
    VG_NT_GUID = 17,
    VG_NT_STRING = 18, /* UTF-16LE, NUL-terminated */
    VG_NT_ARRAY = 19,  /* uint16 element count, then the elements */
};

/* One field of an event's payload, as its metadata describes it. */
struct vg_nettrace_field {
    const char *name;   /* UTF-8 */
    uint8_t type;       /* enum vg_nettrace_type */
    uint16_t nfields;   /* VG_NT_OBJECT: its fields */
    int32_t fixed_size; /* bytes when every value has the same size, else -1 */
    const struct vg_nettrace_field *fields;
    const struct vg_nettrace_field *elem; /* VG_NT_ARRAY: the element type */
};

/* One event type. Strings are UTF-8, never NULL. */
struct vg_nettrace_meta {
    uint32_t id;
    uint32_t event_id;
    uint32_t version;
    uint32_t level;
    uint64_t keywords;
    uint8_t opcode;
    bool fields_unknown; /* a type code this parser does not know: the payload is opaque */
    uint16_t nfields;
    const char *provider;
    const char *name; /* "" for most runtime (native) events */
    const struct vg_nettrace_field *fields;
    int tag; /* the consumer's classification (see callbacks.metadata); 0 until set */
};

/* One event, valid during the event callback only. */
struct vg_nettrace_event {
    const struct vg_nettrace_meta *meta;
    int64_t timestamp; /* ticks; vg_nettrace_time converts */
    uint64_t thread_id;
    uint64_t capture_thread_id;
    uint32_t sequence;
    uint32_t stack_id;
    uint32_t processor;
    uint8_t activity_id[16];
    uint8_t related_activity_id[16];
    const uint8_t *payload;
    size_t payload_len;
};

/* The Trace object: when the trace started and how to read its timestamps. */
struct vg_nettrace_info {
    int64_t start_unix_ns; /* UTC time of sync_ticks */
    int64_t sync_ticks;
    int64_t ticks_per_second;
    uint32_t pointer_size;
    uint32_t pid;
    uint32_t processors;
    uint32_t sampling_rate_ns;
};

struct vg_nettrace_callbacks {
    void *ctx;
    /* The Trace object was read (before any other callback). May be NULL. */
    int (*trace)(void *ctx, const struct vg_nettrace_info *info);
    /* A new event type. The callback may set meta->tag. When this callback is given, events are
     * delivered only for metadata it tagged with a positive value (the parser skips the rest
     * without looking at their payload); when it is NULL every event is delivered. */
    int (*metadata)(void *ctx, struct vg_nettrace_meta *meta);
    /* An event, in stream order (per thread in time order; across threads not sorted). */
    int (*event)(void *ctx, const struct vg_nettrace_event *ev);
    /* Any callback returning a negative VG_E* stops the parser with that error. */
};

struct vg_nettrace_limits {
    size_t max_block;    /* largest block body (default 1 MiB; the runtime writes <= 100 KiB) */
    size_t max_metadata; /* event types kept (default 65536) */
    size_t max_metadata_bytes; /* their total memory (default 16 MiB) */
};

struct vg_nettrace_stats {
    uint64_t bytes; /* consumed so far */
    uint64_t blocks;
    uint64_t events;    /* every event in every EventBlock, delivered or not */
    uint64_t delivered; /* events handed to the event callback */
    uint64_t metadata;  /* event types defined */
    uint64_t stacks;    /* stacks skipped */
    uint64_t sequence_points;
    uint64_t events_lost; /* gaps in the per-thread sequence numbers */
};

struct vg_nettrace;

/* callbacks and limits are copied; either may be NULL (no callbacks / defaults). */
int vg_nettrace_create(const struct vg_nettrace_callbacks *cb, const struct vg_nettrace_limits *lim,
                       struct vg_nettrace **out);
void vg_nettrace_destroy(struct vg_nettrace *p);

/* Consumes len bytes (any split of the stream). 0, or a negative VG_E*: VG_EPARSE for a malformed
 * stream, VG_ELIMIT past a limit, VG_EUNSUPPORTED for nettrace V6, VG_ENOMEM, or a callback's
 * error. Errors are sticky; vg_nettrace_error says what and where. Bytes after the end of the
 * stream are an error. */
int vg_nettrace_feed(struct vg_nettrace *p, const void *buf, size_t len);
/* Says whether the stream is complete: 0 if its end tag was read, VG_EPARSE ("truncated ...")
 * otherwise, or the earlier error. */
int vg_nettrace_finish(struct vg_nettrace *p);
/* True once the end of the stream has been read. */
bool vg_nettrace_done(const struct vg_nettrace *p);
/* The last error's message, "" if none: "nettrace: offset 1234: <what>". */
const char *vg_nettrace_error(const struct vg_nettrace *p);
void vg_nettrace_stats(const struct vg_nettrace *p, struct vg_nettrace_stats *out);
/* The Trace object, or NULL before it was read. */
const struct vg_nettrace_info *vg_nettrace_info(const struct vg_nettrace *p);
/* An event's timestamp as Unix nanoseconds (UTC). */
int64_t vg_nettrace_time(const struct vg_nettrace_info *info, int64_t ticks);

/* A value inside an event payload: its field and its exact bytes. */
struct vg_nettrace_value {
    const struct vg_nettrace_field *field;
    const uint8_t *data;
    size_t len;
};

/* The top-level field NAME of an event's payload: 0, VG_ENOTFOUND, or VG_EPARSE when the payload
 * is shorter than its metadata says. */
int vg_nettrace_event_field(const struct vg_nettrace_event *ev, const char *name,
                            struct vg_nettrace_value *out);
/* Field NAME of an Object value. Same results. */
int vg_nettrace_value_field(const struct vg_nettrace_value *obj, const char *name,
                            struct vg_nettrace_value *out);

/* Walks an Array value's elements. */
struct vg_nettrace_iter {
    const struct vg_nettrace_field *elem;
    const uint8_t *p;
    const uint8_t *end;
    uint32_t left;
};
int vg_nettrace_array_iter(const struct vg_nettrace_value *arr, struct vg_nettrace_iter *it);
/* 1 and the next element, 0 at the end, VG_EPARSE if the array overruns its payload. */
int vg_nettrace_iter_next(struct vg_nettrace_iter *it, struct vg_nettrace_value *out);

/* Numbers of any numeric type (and Bool32) as double / int64. VG_EINVAL for other types. */
int vg_nettrace_value_f64(const struct vg_nettrace_value *v, double *out);
int vg_nettrace_value_i64(const struct vg_nettrace_value *v, int64_t *out);
/* A String (or Char16) as UTF-8 into buf (always NUL-terminated when cap > 0, cut at a character
 * boundary). Returns the length of the whole string in UTF-8 (like snprintf: a result >= cap means
 * it was cut), or VG_EINVAL for other types. Invalid UTF-16 becomes U+FFFD. */
long vg_nettrace_value_str(const struct vg_nettrace_value *v, char *buf, size_t cap);
/* Compares a String value with an ASCII/UTF-8 string without converting it. */
bool vg_nettrace_value_str_eq(const struct vg_nettrace_value *v, const char *s);

/* A sink that forwards a trace stream to another sink while validating it. */
typedef int (*vg_nettrace_write_fn)(void *ctx, const void *buf, size_t len);
struct vg_nettrace_tee {
    struct vg_nettrace *parser; /* owned by the caller; its callbacks see the events */
    vg_nettrace_write_fn write; /* the downstream sink */
    void *ctx;
};
/* Feeds the parser, then forwards the bytes. A parse error is returned before anything of that
 * buffer is forwarded, so a corrupted stream stops at the first bad buffer. */
int vg_nettrace_tee_write(void *tee, const void *buf, size_t len);

#endif
