/* libFuzzer target for the JVM adapter's untrusted inputs: the HotSpot perf-data parser (a file
 * any process of the JVM's user can write) and the attach reply parser (bytes from the JVM's
 * socket), the latter fed in chunks whose sizes the input chooses. First byte: 0 = perf data,
 * 1 = reply; the rest is the payload. */
#include "engine/runtimes/jvm/attach.h"
#include "engine/runtimes/jvm/perfdata.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int discard(void *ctx, const void *buf, size_t len)
{
    size_t *total = ctx;
    *total += len;
    /* Read every byte handed over, so ASan checks the range. */
    volatile uint8_t x = 0;
    for (size_t i = 0; i < len; i++)
        x ^= ((const uint8_t *)buf)[i];
    (void)x;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if ((mode & 1) == 0) {
        /* An exact-size copy: any read past the end is caught. */
        uint8_t *copy = malloc(size ? size : 1);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        struct vg_perfdata *pd = NULL;
        if (vg_perfdata_parse(copy, size, &pd) == 0) {
            for (size_t i = 0; i < pd->n; i++) {
                const struct vg_perfdata_entry *e = &pd->entries[i];
                if (vg_perfdata_find(pd, e->name) == NULL)
                    abort(); /* every parsed name is found again */
                if (e->is_string)
                    (void)strlen(e->str);
            }
            int64_t v;
            vg_perfdata_long(pd, "sun.os.hrt.frequency", &v);
            (void)vg_perfdata_ticks_to_seconds(pd, 123456789);
        }
        vg_perfdata_destroy(pd);
        free(copy);
        return 0;
    }
    struct vg_jvm_reply r;
    char head[64];
    size_t total = 0;
    vg_jvm_reply_init(&r, discard, &total, head, sizeof(head));
    size_t chunk = (size_t)(mode >> 1) + 1, off = 0;
    int rc = 0;
    while (off < size && rc == 0) {
        size_t n = size - off < chunk ? size - off : chunk;
        rc = vg_jvm_reply_feed(&r, data + off, n);
        off += n;
    }
    if (rc == 0)
        rc = vg_jvm_reply_end(&r);
    if (rc == 0 && (!r.have_status || total != r.bytes || strlen(head) >= sizeof(head)))
        abort();
    return 0;
}
