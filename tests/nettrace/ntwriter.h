/* A nettrace (V5) writer for tests: builds streams the way the runtime's EventPipe writes them
 * (ep-file.c, ep-block.c), so the parser can be driven through every shape, split and corruption.
 */
#ifndef VG_TEST_NTWRITER_H
#define VG_TEST_NTWRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ntw {
    uint8_t *buf;
    size_t len;
    size_t cap;
};

void ntw_free(struct ntw *w);
void ntw_bytes(struct ntw *w, const void *p, size_t n);
void ntw_u8(struct ntw *w, uint8_t v);
void ntw_u16(struct ntw *w, uint16_t v);
void ntw_u32(struct ntw *w, uint32_t v);
void ntw_u64(struct ntw *w, uint64_t v);
void ntw_f64(struct ntw *w, double v);
void ntw_f32(struct ntw *w, float v);
void ntw_var(struct ntw *w, uint64_t v);
/* NUL-terminated UTF-16LE from UTF-8 (BMP and 4-byte sequences). */
void ntw_utf16(struct ntw *w, const char *s);

/* The stream header, the Trace object, the end-of-stream tag. */
void ntw_header(struct ntw *w);
void ntw_trace(struct ntw *w, uint32_t pid);
void ntw_end(struct ntw *w);
/* A block object of the given type ("EventBlock", "MetadataBlock", "StackBlock", "SPBlock") whose
 * content is body, padded to 4 bytes of stream offset as the runtime does. */
void ntw_block(struct ntw *w, const char *type, const struct ntw *body);

/* One event blob for ntw_events. */
struct ntw_event {
    uint32_t metadata_id;
    uint32_t seq;
    uint64_t thread;
    uint64_t capture_thread;
    uint32_t proc;
    uint32_t stack;
    int64_t timestamp;
    bool sorted;
    const struct ntw *payload;
};
/* The content of an EventBlock/MetadataBlock: its header, then the events, with header compression
 * (as the runtime writes) or without (then each event is padded to 4 bytes inside EventSize). */
void ntw_events(struct ntw *body, bool compressed, const struct ntw_event *ev, size_t n);

/* A metadata record's payload start: id, provider, event id, name, keywords, version, level. The
 * caller appends the V1 field count and fields, and tags. */
void ntw_meta_head(struct ntw *w, uint32_t id, const char *provider, uint32_t event_id,
                   const char *name);

#endif
