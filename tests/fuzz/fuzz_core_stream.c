/* libFuzzer target for the ELF core stream checker (engine/cli/core_stream.c), which reads
 * whatever a crashing process's core (or a test) puts on `vigil crash`'s stdin. The input is fed
 * in one piece and again in pieces whose sizes come from the input itself; both ways must agree
 * on the verdict and the announced length (the checker keeps state across pieces). */
#include "config/error.h"
#include "engine/cli/core_stream.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct vg_core_stream whole, parts;
    vg_core_stream_init(&whole);
    vg_core_stream_feed(&whole, data, size);
    int a = vg_core_stream_end(&whole, err, sizeof(err));
    vg_core_stream_init(&parts);
    size_t off = 0, k = 0;
    while (off < size) {
        size_t step = 1 + data[k++ % size] % 97;
        if (step > size - off)
            step = size - off;
        if (vg_core_stream_feed(&parts, data + off, step))
            break;
        off += step;
    }
    int b = vg_core_stream_end(&parts, err, sizeof(err));
    if (a != b || vg_core_stream_expected(&whole) != vg_core_stream_expected(&parts) ||
        (!a && whole.seen < whole.expected))
        abort();
    return 0;
}
