/* libFuzzer target for the nettrace parser (engine/runtimes/dotnet/nettrace.c) and the event
 * decoders: the input is a trace stream, fed in pieces whose sizes come from a hash of the input
 * (so splits are explored too); every delivered event is decoded by every decoder and every
 * payload field is walked, nested objects and arrays included. */
#include "engine/runtimes/dotnet/nettrace.h"
#include "engine/runtimes/dotnet/nettrace_events.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct vg_nettrace_value *v, int depth)
{
    char buf[64];
    double d;
    int64_t i;
    vg_nettrace_value_f64(v, &d);
    vg_nettrace_value_i64(v, &i);
    vg_nettrace_value_str(v, buf, sizeof buf);
    vg_nettrace_value_str_eq(v, "Payload");
    if (depth > 20)
        return;
    if (v->field->type == VG_NT_OBJECT) {
        for (uint16_t k = 0; k < v->field->nfields; k++) {
            struct vg_nettrace_value c;
            if (vg_nettrace_value_field(v, v->field->fields[k].name, &c) == 0)
                walk(&c, depth + 1);
        }
    } else if (v->field->type == VG_NT_ARRAY) {
        struct vg_nettrace_iter it;
        struct vg_nettrace_value e;
        int n = 0;
        if (vg_nettrace_array_iter(v, &it) == 0)
            while (n++ < 64 && vg_nettrace_iter_next(&it, &e) == 1)
                walk(&e, depth + 1);
    }
}

static int on_meta(void *ctx, struct vg_nettrace_meta *m)
{
    m->tag = 1;
    return 0;
}

static int on_event(void *ctx, const struct vg_nettrace_event *ev)
{
    char scratch[256];
    struct vg_ep_counter c;
    struct vg_ep_metric m;
    struct vg_ep_log l;
    struct vg_ep_request r;
    vg_ep_classify(ev->meta);
    vg_ep_counter_decode(ev, &c);
    vg_ep_metric_decode(ev, &m);
    vg_ep_log_decode(ev, &l, scratch, sizeof scratch);
    vg_ep_request_decode(ev, &r);
    for (uint16_t k = 0; k < ev->meta->nfields; k++) {
        struct vg_nettrace_value v;
        if (vg_nettrace_event_field(ev, ev->meta->fields[k].name, &v) == 0)
            walk(&v, 0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_nettrace_callbacks cb = {.metadata = on_meta, .event = on_event};
    struct vg_nettrace_limits lim = {
        .max_block = 1 << 16, .max_metadata = 256, .max_metadata_bytes = 1 << 20};
    struct vg_nettrace *p;
    if (vg_nettrace_create(&cb, &lim, &p))
        return 0;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size && i < 16; i++)
        h = (h ^ data[i]) * 16777619u;
    size_t off = 0;
    int rc = 0;
    while (off < size && !rc) {
        h = h * 1103515245u + 12345u;
        size_t n = (h >> 16) % 4 == 0 ? size - off : 1 + (h >> 8) % 700;
        if (n > size - off)
            n = size - off;
        rc = vg_nettrace_feed(p, data + off, n);
        off += n;
    }
    vg_nettrace_finish(p);
    struct vg_nettrace_stats st;
    vg_nettrace_stats(p, &st);
    vg_nettrace_info(p);
    vg_nettrace_destroy(p);
    return 0;
}
