/* libFuzzer target for the CDP message reader (engine/runtimes/node/cdp_reader.c): arbitrary
 * message fragments, with and without an armed streamed response, through message assembly,
 * the size bound, the prefix/tail check and JSON parsing, plus the chunk extraction the heap
 * snapshot path does on each parsed event.
 * Input: byte 0 selects the armed stream; then records of [len_lo, len_hi|final<<7, data...]. */
#include "config/error.h"
#include "engine/runtimes/node/cdp_reader.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *ctx, const void *buf, size_t len)
{
    size_t *total = ctx;
    /* Touch every byte so ASan sees an out-of-bounds hand-over. */
    volatile uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= ((const uint8_t *)buf)[i];
    (void)x;
    *total += len;
    return *total > (1u << 20) ? VG_ECANCELED : 0;
}

static int on_msg(void *ctx, json_t *msg)
{
    (void)ctx;
    const char *method = json_string_value(json_object_get(msg, "method"));
    json_t *chunk = json_object_get(json_object_get(msg, "params"), "chunk");
    if (method && json_is_string(chunk)) {
        size_t n = json_string_length(chunk);
        const char *s = json_string_value(chunk);
        volatile char c = n ? s[n - 1] : 0;
        (void)c;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const prefixes[] = {"{\"profile\":",
                                           "{\"result\":{\"type\":\"object\",\"value\":"};
    if (size < 1)
        return 0;
    struct vg_cdp_reader rd;
    size_t total = 0;
    vg_cdp_reader_init(&rd, 4096, on_msg, NULL);
    if (data[0] & 1)
        vg_cdp_reader_stream(&rd, data[0] >> 2, prefixes[(data[0] >> 1) & 1],
                             ((data[0] >> 1) & 1) + 1, sink, &total);
    size_t i = 1;
    while (i + 2 <= size) {
        size_t len = data[i] | (size_t)(data[i + 1] & 0x7f) << 8;
        bool final = data[i + 1] & 0x80;
        i += 2;
        if (len > size - i)
            len = size - i;
        if (vg_cdp_reader_feed(&rd, data + i, len, final) < 0)
            break;
        i += len;
    }
    vg_cdp_reader_free(&rd);
    return 0;
}
