/* Unit tests of the nettrace parser and the event decoders, over streams written by ntwriter the
 * way the runtime writes them: every field type, nesting, both header encodings, every split of the
 * stream, every truncation, byte corruption, limits, and the decoders' results. */
#include "config/error.h"
#include "engine/runtimes/dotnet/nettrace.h"
#include "engine/runtimes/dotnet/nettrace_events.h"
#include "tests/nettrace/ntwriter.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- building the sample stream ---- */

static void v1_field(struct ntw *w, uint32_t type, const char *name)
{
    ntw_u32(w, type);
    ntw_utf16(w, name);
}

/* EventCounters, as System.Runtime describes them: {"": {Payload: {...}}}. */
static void meta_counters(struct ntw *m, uint32_t id, bool sum)
{
    ntw_meta_head(m, id, "System.Runtime", sum ? 5 : 4, "EventCounters");
    ntw_u32(m, 1);
    ntw_u32(m, VG_NT_OBJECT);
    ntw_u32(m, 1);
    ntw_u32(m, VG_NT_OBJECT);
    if (sum) {
        ntw_u32(m, 9);
        v1_field(m, VG_NT_STRING, "Name");
        v1_field(m, VG_NT_STRING, "DisplayName");
        v1_field(m, VG_NT_STRING, "DisplayRateTimeScale");
        v1_field(m, VG_NT_DOUBLE, "Increment");
        v1_field(m, VG_NT_FLOAT, "IntervalSec");
        v1_field(m, VG_NT_STRING, "Metadata");
        v1_field(m, VG_NT_STRING, "Series");
        v1_field(m, VG_NT_STRING, "CounterType");
        v1_field(m, VG_NT_STRING, "DisplayUnits");
    } else {
        ntw_u32(m, 12);
        v1_field(m, VG_NT_STRING, "Name");
        v1_field(m, VG_NT_STRING, "DisplayName");
        v1_field(m, VG_NT_DOUBLE, "Mean");
        v1_field(m, VG_NT_DOUBLE, "StandardDeviation");
        v1_field(m, VG_NT_INT32, "Count");
        v1_field(m, VG_NT_DOUBLE, "Min");
        v1_field(m, VG_NT_DOUBLE, "Max");
        v1_field(m, VG_NT_FLOAT, "IntervalSec");
        v1_field(m, VG_NT_STRING, "Series");
        v1_field(m, VG_NT_STRING, "CounterType");
        v1_field(m, VG_NT_STRING, "Metadata");
        v1_field(m, VG_NT_STRING, "DisplayUnits");
    }
    ntw_utf16(m, "Payload");
    ntw_utf16(m, "");
}

static void v2_field(struct ntw *w, const char *name, uint32_t type, const struct ntw *rest)
{
    struct ntw f = {0};
    ntw_utf16(&f, name);
    ntw_u32(&f, type);
    if (rest)
        ntw_bytes(&f, rest->buf, rest->len);
    ntw_u32(w, (uint32_t)f.len + 4);
    ntw_bytes(w, f.buf, f.len);
    ntw_free(&f);
}

/* Activity1Stop of DiagnosticSourceEventSource: V2Params with an array of {Key, Value}. */
static void meta_activity(struct ntw *m, uint32_t id, const char *name)
{
    ntw_meta_head(m, id, "Microsoft-Diagnostics-DiagnosticSource", 5, name);
    ntw_u32(m, 0); /* no V1 fields */
    ntw_u32(m, 1); /* tag OpCode */
    ntw_u8(m, 1);
    ntw_u8(m, 2);
    struct ntw p = {0}, kv = {0}, arr = {0};
    ntw_u32(&p, 3);
    v2_field(&p, "SourceName", VG_NT_STRING, NULL);
    v2_field(&p, "EventName", VG_NT_STRING, NULL);
    ntw_u32(&kv, 2); /* the element: Object {Key, Value} */
    v2_field(&kv, "Key", VG_NT_STRING, NULL);
    v2_field(&kv, "Value", VG_NT_STRING, NULL);
    ntw_u32(&arr, VG_NT_OBJECT);
    ntw_bytes(&arr, kv.buf, kv.len);
    v2_field(&p, "Arguments", VG_NT_ARRAY, &arr);
    ntw_u32(m, (uint32_t)p.len); /* tag V2Params */
    ntw_u8(m, 2);
    ntw_bytes(m, p.buf, p.len);
    ntw_free(&p);
    ntw_free(&kv);
    ntw_free(&arr);
}

static const uint32_t all_types[] = {
    VG_NT_BOOL32,  VG_NT_CHAR16,   VG_NT_INT8,  VG_NT_UINT8,  VG_NT_INT16, VG_NT_UINT16,
    VG_NT_INT32,   VG_NT_UINT32,   VG_NT_INT64, VG_NT_UINT64, VG_NT_FLOAT, VG_NT_DOUBLE,
    VG_NT_DECIMAL, VG_NT_DATETIME, VG_NT_GUID,  VG_NT_STRING,
};
#define N_ALL (sizeof all_types / sizeof all_types[0])

static void meta_all(struct ntw *m, uint32_t id)
{
    ntw_meta_head(m, id, "Test", 1, "AllTypes");
    ntw_u32(m, N_ALL);
    for (size_t i = 0; i < N_ALL; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%u", all_types[i]);
        v1_field(m, all_types[i], name);
    }
}

static void payload_all(struct ntw *p, int k)
{
    ntw_u32(p, 1);                              /* bool32 */
    ntw_u16(p, 'Z');                            /* char16 */
    ntw_u8(p, (uint8_t)-5);                     /* int8 */
    ntw_u8(p, 250);                             /* uint8 */
    ntw_u16(p, (uint16_t)-300);                 /* int16 */
    ntw_u16(p, 60000);                          /* uint16 */
    ntw_u32(p, (uint32_t)-70000 - (uint32_t)k); /* int32 */
    ntw_u32(p, 4000000000u);                    /* uint32 */
    ntw_u64(p, (uint64_t)-5000000000LL);        /* int64 */
    ntw_u64(p, 18000000000000000000ULL);        /* uint64 */
    ntw_f32(p, 1.5f);
    ntw_f64(p, -2.25 + k);
    for (int i = 0; i < 16; i++)
        ntw_u8(p, (uint8_t)i); /* decimal */
    ntw_u64(p, 7);             /* datetime */
    for (int i = 0; i < 16; i++)
        ntw_u8(p, (uint8_t)(0xa0 + i));            /* guid */
    ntw_utf16(p, "h\xc3\xa9llo \xf0\x9f\x98\x80"); /* BMP and a surrogate pair */
}

static void meta_strings(struct ntw *m, uint32_t id, const char *provider, const char *name,
                         const char *const *fields, const uint32_t *types, size_t n)
{
    ntw_meta_head(m, id, provider, 6, name);
    ntw_u32(m, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        v1_field(m, types ? types[i] : VG_NT_STRING, fields[i]);
}

static const char *const hist_fields[] = {
    "sessionId", "meterName", "meterVersion", "instrumentName", "unit", "tags",
    "quantiles", "count",     "sum",          "instrumentId"};
static const uint32_t hist_types[] = {VG_NT_STRING, VG_NT_STRING, VG_NT_STRING, VG_NT_STRING,
                                      VG_NT_STRING, VG_NT_STRING, VG_NT_STRING, VG_NT_INT32,
                                      VG_NT_DOUBLE, VG_NT_INT32};
static const char *const rate_fields[] = {"sessionId",      "meterName", "meterVersion",
                                          "instrumentName", "unit",      "tags",
                                          "rate",           "value",     "instrumentId"};
static const uint32_t rate_types[] = {VG_NT_STRING, VG_NT_STRING, VG_NT_STRING,
                                      VG_NT_STRING, VG_NT_STRING, VG_NT_STRING,
                                      VG_NT_STRING, VG_NT_STRING, VG_NT_INT32};
static const char *const log_fields[] = {"Level",         "FactoryID",       "LoggerName",
                                         "EventId",       "EventName",       "ExceptionJson",
                                         "ArgumentsJson", "FormattedMessage"};
static const uint32_t log_types[] = {VG_NT_INT32,  VG_NT_INT32,  VG_NT_STRING, VG_NT_INT32,
                                     VG_NT_STRING, VG_NT_STRING, VG_NT_STRING, VG_NT_STRING};

enum { M_MEAN = 1, M_SUM, M_STOP, M_ALL, M_HIST, M_RATE, M_LOG, M_UNKNOWN, M_COUNT = M_UNKNOWN };

static void counter_mean(struct ntw *p, const char *name, double mean)
{
    ntw_utf16(p, name);
    ntw_utf16(p, "CPU Usage");
    ntw_f64(p, mean);
    ntw_f64(p, 0);
    ntw_u32(p, 1);
    ntw_f64(p, mean);
    ntw_f64(p, mean);
    ntw_f32(p, 1.0f);
    ntw_utf16(p, "Interval=1000");
    ntw_utf16(p, "Mean");
    ntw_utf16(p, "");
    ntw_utf16(p, "%");
}

static void counter_sum(struct ntw *p, const char *name, double inc)
{
    ntw_utf16(p, name);
    ntw_utf16(p, "Exception Count");
    ntw_utf16(p, "00:00:01");
    ntw_f64(p, inc);
    ntw_f32(p, 5.0f);
    ntw_utf16(p, "");
    ntw_utf16(p, "Interval=5000");
    ntw_utf16(p, "Sum");
    ntw_utf16(p, "");
}

static void activity_stop(struct ntw *p, const char *path, const char *status)
{
    ntw_utf16(p, "Microsoft.AspNetCore");
    ntw_utf16(p, "Microsoft.AspNetCore.Hosting.HttpRequestIn.Stop");
    ntw_u16(p, 4);
    ntw_utf16(p, "ActivityId");
    ntw_utf16(p, "00-abc-def-00");
    ntw_utf16(p, "Path");
    ntw_utf16(p, path);
    ntw_utf16(p, "StatusCode");
    ntw_utf16(p, status);
    ntw_utf16(p, "ActivityDuration");
    ntw_utf16(p, "123456");
}

/* The sample: every block kind, both header encodings, 11 events on three threads. */
static void build_sample(struct ntw *w)
{
    ntw_header(w);
    ntw_trace(w, 4242);

    struct ntw md[M_COUNT] = {0}, body = {0};
    meta_counters(&md[0], M_MEAN, false);
    meta_counters(&md[1], M_SUM, true);
    meta_activity(&md[2], M_STOP, "Activity1Stop");
    meta_all(&md[3], M_ALL);
    meta_strings(&md[4], M_HIST, "System.Diagnostics.Metrics", "HistogramValuePublished",
                 hist_fields, hist_types, 10);
    meta_strings(&md[5], M_RATE, "System.Diagnostics.Metrics", "CounterRateValuePublished",
                 rate_fields, rate_types, 9);
    meta_strings(&md[6], M_LOG, "Microsoft-Extensions-Logging", "MessageJson", log_fields,
                 log_types, 8);
    ntw_meta_head(&md[7], M_UNKNOWN, "Test", 9, "Unknown");
    ntw_u32(&md[7], 1);
    v1_field(&md[7], 99, "what");
    struct ntw_event mev[M_COUNT];
    for (int i = 0; i < M_COUNT; i++)
        mev[i] = (struct ntw_event){.timestamp = 1000000 + i, .sorted = true, .payload = &md[i]};
    ntw_events(&body, true, mev, M_COUNT);
    ntw_block(w, "MetadataBlock", &body);
    ntw_free(&body);

    struct ntw stacks = {0};
    ntw_u32(&stacks, 1);
    ntw_u32(&stacks, 2);
    ntw_u32(&stacks, 16);
    ntw_u64(&stacks, 0x1111);
    ntw_u64(&stacks, 0x2222);
    ntw_u32(&stacks, 8);
    ntw_u64(&stacks, 0x3333);
    ntw_block(w, "StackBlock", &stacks);
    ntw_free(&stacks);

    struct ntw p[9] = {0};
    counter_mean(&p[0], "cpu-usage", 87.5);
    counter_sum(&p[1], "exception-count", 12);
    activity_stop(&p[2], "/api/\xc3\xa9t\xc3\xa9", "500");
    payload_all(&p[3], 0);
    ntw_utf16(&p[4], "s1");
    ntw_utf16(&p[4], "Vigil.Test");
    ntw_utf16(&p[4], "1.0");
    ntw_utf16(&p[4], "latency");
    ntw_utf16(&p[4], "ms");
    ntw_utf16(&p[4], "route=/a");
    ntw_utf16(&p[4], "0.5=10.25;0.95=99;0.99=120.5");
    ntw_u32(&p[4], 42);
    ntw_f64(&p[4], 1234.5);
    ntw_u32(&p[4], 3);
    ntw_utf16(&p[5], "s1");
    ntw_utf16(&p[5], "Vigil.Test");
    ntw_utf16(&p[5], "");
    ntw_utf16(&p[5], "requests");
    ntw_utf16(&p[5], "");
    ntw_utf16(&p[5], "");
    ntw_utf16(&p[5], "");
    ntw_utf16(&p[5], "1E+20");
    ntw_u32(&p[5], 1);
    ntw_u32(&p[6], 4);
    ntw_u32(&p[6], 1);
    ntw_utf16(&p[6], "App.Worker");
    ntw_u32(&p[6], 7);
    ntw_utf16(&p[6], "Failed");
    ntw_utf16(&p[6], "{\"Message\":\"boom\"}");
    ntw_utf16(&p[6], "{\"Item\":\"3\"}");
    ntw_utf16(&p[6], "item 3 failed");
    ntw_u32(&p[7], 0xdeadbeef);
    payload_all(&p[8], 1);

    struct ntw_event ev[] = {
        {M_MEAN, 1, 100, 100, 0, 1, 2000000, true, &p[0]},
        {M_SUM, 2, 100, 100, 0, 1, 2000010, false, &p[1]},
        {M_STOP, 3, 100, 100, 1, 2, 2000020, true, &p[2]},
        {M_ALL, 1, 200, 200, 1, 0, 2000005, true, &p[3]},
        {M_HIST, 3, 200, 200, 1, 0, 2000030, false, &p[4]}, /* seq 2 lost */
        {M_RATE, 4, 200, 200, 1, 0, 2000031, false, &p[5]},
        {M_LOG, 5, 200, 200, 1, 0, 2000032, false, &p[6]},
        {M_UNKNOWN, 6, 200, 200, 1, 0, 2000033, false, &p[7]},
    };
    ntw_events(&body, true, ev, sizeof ev / sizeof ev[0]);
    ntw_block(w, "EventBlock", &body);
    ntw_free(&body);

    /* The runtime never writes uncompressed blocks in nettrace, but the format allows them. */
    struct ntw_event ev2[] = {
        {M_ALL, 1, 300, 300, 0, 0, 2000100, true, &p[8]},
        {M_MEAN, 2, 300, 300, 0, 0, 2000101, false, &p[0]},
        {M_UNKNOWN, 3, 300, 300, 0, 0, 2000102, false, &p[7]},
    };
    ntw_events(&body, false, ev2, 3);
    ntw_block(w, "EventBlock", &body);
    ntw_free(&body);

    /* A sequence point: thread 300 wrote 5 (2 lost after seq 3). */
    ntw_u64(&body, 2000200);
    ntw_u32(&body, 2);
    ntw_u64(&body, 100);
    ntw_u32(&body, 3);
    ntw_u64(&body, 300);
    ntw_u32(&body, 5);
    ntw_block(w, "SPBlock", &body);
    ntw_free(&body);
    ntw_end(w);
    for (int i = 0; i < M_COUNT; i++)
        ntw_free(&md[i]);
    for (int i = 0; i < 9; i++)
        ntw_free(&p[i]);
}

#define SAMPLE_EVENTS 11

/* ---- running the parser ---- */

struct seen {
    uint64_t digest; /* FNV-1a over every delivered event */
    int events;
    int metas;
    int traces;
    bool tag_only_counters;
    int stop_after; /* the event callback fails after this many events (0: never) */
};

static void fnv(uint64_t *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 1099511628211ULL;
    }
}

static int cb_trace(void *ctx, const struct vg_nettrace_info *in)
{
    ((struct seen *)ctx)->traces++;
    return 0;
}

static int cb_meta(void *ctx, struct vg_nettrace_meta *m)
{
    struct seen *s = ctx;
    s->metas++;
    m->tag = s->tag_only_counters ? (int)(vg_ep_classify(m) == VG_EP_COUNTER) : 1;
    return 0;
}

static int cb_event(void *ctx, const struct vg_nettrace_event *ev)
{
    struct seen *s = ctx;
    if (s->stop_after && s->events == s->stop_after)
        return VG_ECANCELED;
    s->events++;
    if (!s->digest)
        s->digest = 1469598103934665603ULL;
    fnv(&s->digest, &ev->meta->id, sizeof ev->meta->id);
    fnv(&s->digest, &ev->timestamp, sizeof ev->timestamp);
    fnv(&s->digest, &ev->thread_id, sizeof ev->thread_id);
    fnv(&s->digest, &ev->sequence, sizeof ev->sequence);
    fnv(&s->digest, ev->payload, ev->payload_len);
    return 0;
}

static struct vg_nettrace *parser(struct seen *s, const struct vg_nettrace_limits *lim)
{
    struct vg_nettrace_callbacks cb = {
        .ctx = s, .trace = cb_trace, .metadata = cb_meta, .event = cb_event};
    struct vg_nettrace *p = NULL;
    assert_int_equal(vg_nettrace_create(&cb, lim, &p), 0);
    return p;
}

/* Feeds buf split at the given offsets; returns feed's or finish's result. */
static int parse_split(const uint8_t *buf, size_t len, const size_t *cuts, size_t ncuts,
                       struct seen *s, struct vg_nettrace_stats *st)
{
    struct vg_nettrace *p = parser(s, NULL);
    size_t off = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && !rc; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        rc = vg_nettrace_feed(p, buf + off, end - off);
        off = end;
    }
    if (!rc)
        rc = vg_nettrace_finish(p);
    if (st)
        vg_nettrace_stats(p, st);
    vg_nettrace_destroy(p);
    return rc;
}

static int parse_all(const struct ntw *w, struct seen *s, struct vg_nettrace_stats *st)
{
    return parse_split(w->buf, w->len, NULL, 0, s, st);
}

/* ---- tests ---- */

static void test_sample(void **state)
{
    struct ntw w = {0};
    build_sample(&w);
    struct seen s = {0};
    struct vg_nettrace_stats st;
    assert_int_equal(parse_all(&w, &s, &st), 0);
    assert_int_equal(s.traces, 1);
    assert_int_equal(s.metas, M_COUNT);
    assert_int_equal(s.events, SAMPLE_EVENTS);
    assert_int_equal(st.events, SAMPLE_EVENTS);
    assert_int_equal(st.delivered, SAMPLE_EVENTS);
    assert_int_equal(st.metadata, M_COUNT);
    assert_int_equal(st.stacks, 2);
    assert_int_equal(st.sequence_points, 1);
    assert_int_equal(st.blocks, 5);
    assert_int_equal(st.bytes, w.len);
    /* thread 200 skipped seq 2; the sequence point says thread 300 wrote 5, we saw 3 */
    assert_int_equal(st.events_lost, 1 + 2);
    ntw_free(&w);
}

/* The stream split in two at every offset, and fed one byte at a time, gives the same events. */
static void test_every_split(void **state)
{
    struct ntw w = {0};
    build_sample(&w);
    struct seen ref = {0};
    assert_int_equal(parse_all(&w, &ref, NULL), 0);
    for (size_t k = 0; k <= w.len; k++) {
        struct seen s = {0};
        assert_int_equal(parse_split(w.buf, w.len, &k, 1, &s, NULL), 0);
        assert_int_equal(s.events, ref.events);
        assert_true(s.digest == ref.digest);
    }
    size_t *cuts = malloc(w.len * sizeof *cuts);
    for (size_t k = 0; k < w.len; k++)
        cuts[k] = k + 1;
    struct seen s = {0};
    assert_int_equal(parse_split(w.buf, w.len, cuts, w.len - 1, &s, NULL), 0);
    assert_true(s.digest == ref.digest);
    free(cuts);
    ntw_free(&w);
}

/* Cut anywhere, the stream is never complete: finish says truncated. */
static void test_truncated_everywhere(void **state)
{
    struct ntw w = {0};
    build_sample(&w);
    for (size_t k = 0; k < w.len; k++) {
        struct seen s = {0};
        struct vg_nettrace *p = parser(&s, NULL);
        assert_int_equal(vg_nettrace_feed(p, w.buf, k), 0);
        assert_false(vg_nettrace_done(p));
        assert_int_equal(vg_nettrace_finish(p), VG_EPARSE);
        assert_non_null(strstr(vg_nettrace_error(p), "truncated"));
        vg_nettrace_destroy(p);
    }
    ntw_free(&w);
}

/* Every single byte flipped: no crash, no read out of bounds (ASan), and the structural bytes are
 * caught. */
static void test_corruption(void **state)
{
    struct ntw w = {0};
    build_sample(&w);
    size_t rejected = 0;
    for (size_t k = 0; k < w.len; k++) {
        for (int x = 0; x < 3; x++) {
            static const uint8_t masks[] = {0xff, 0x80, 0x01};
            uint8_t *b = malloc(w.len);
            memcpy(b, w.buf, w.len);
            b[k] ^= masks[x];
            struct seen s = {0};
            int rc = parse_split(b, w.len, NULL, 0, &s, NULL);
            if (rc != 0)
                rejected++;
            /* the stream header and the end tag are structure: any change is caught */
            if (k < 32 || k == w.len - 1)
                assert_int_not_equal(rc, 0);
            free(b);
        }
    }
    print_message("corruption: %zu of %zu single-byte changes rejected\n", rejected, 3 * w.len);
    /* Payload bytes can change without the format noticing (it has no checksums). */
    assert_true(rejected > 3 * 33);
    ntw_free(&w);
}

static void test_header_errors(void **state)
{
    struct seen s = {0};
    struct vg_nettrace *p = parser(&s, NULL);
    assert_int_equal(vg_nettrace_feed(p, "Nettrace\0\0\0\0\6\0\0\0\0\0\0\0", 20), VG_EUNSUPPORTED);
    assert_non_null(strstr(vg_nettrace_error(p), "V6"));
    vg_nettrace_destroy(p);

    p = parser(&s, NULL);
    assert_int_equal(vg_nettrace_feed(p, "GET / HTTP/1.1\r\nHost: x\r\n\r\n0123456789", 37),
                     VG_EPARSE);
    assert_non_null(strstr(vg_nettrace_error(p), "not a nettrace stream"));
    /* errors are sticky */
    assert_int_equal(vg_nettrace_feed(p, "x", 1), VG_EPARSE);
    assert_int_equal(vg_nettrace_finish(p), VG_EPARSE);
    vg_nettrace_destroy(p);

    /* a stream that ends before its Trace object */
    struct ntw w = {0};
    ntw_header(&w);
    ntw_end(&w);
    assert_int_equal(parse_all(&w, &s, NULL), VG_EPARSE);
    ntw_free(&w);

    /* a block before the Trace object */
    struct ntw body = {0};
    ntw_u64(&body, 1);
    ntw_u32(&body, 0);
    ntw_header(&w);
    ntw_block(&w, "SPBlock", &body);
    assert_int_equal(parse_all(&w, &s, NULL), VG_EPARSE);
    ntw_free(&w);

    /* an unknown object type */
    ntw_header(&w);
    ntw_trace(&w, 1);
    ntw_block(&w, "MysteryBlock", &body);
    ntw_end(&w);
    assert_int_equal(parse_all(&w, &s, NULL), VG_EPARSE);
    ntw_free(&w);
    ntw_free(&body);
}

static void test_trailing_bytes(void **state)
{
    struct ntw w = {0};
    build_sample(&w);
    ntw_u8(&w, 0);
    struct seen s = {0};
    assert_int_equal(parse_all(&w, &s, NULL), VG_EPARSE);
    ntw_free(&w);
}

static void test_event_errors(void **state)
{
    struct seen s = {0};
    struct ntw w = {0}, body = {0}, pl = {0};
    ntw_u32(&pl, 7);
    /* an event whose metadata was never defined */
    struct ntw_event ev = {.metadata_id = 9, .seq = 1, .timestamp = 5, .payload = &pl};
    ntw_header(&w);
    ntw_trace(&w, 1);
    ntw_events(&body, true, &ev, 1);
    ntw_block(&w, "EventBlock", &body);
    ntw_end(&w);
    assert_int_equal(parse_all(&w, &s, NULL), VG_EPARSE);
    ntw_free(&w);
    ntw_free(&body);

    /* a payload length past the block */
    ntw_header(&w);
    ntw_trace(&w, 1);
    ntw_events(&body, true, &ev, 1);
    body.buf[body.len - 5] = 0x7f; /* the payload length (flags 128): 4 -> 127 */
    ntw_block(&w, "EventBlock", &body);
    ntw_end(&w);
    struct vg_nettrace *p = parser(&s, NULL);
    assert_int_equal(vg_nettrace_feed(p, w.buf, w.len), VG_EPARSE);
    assert_non_null(strstr(vg_nettrace_error(p), "overruns"));
    vg_nettrace_destroy(p);
    ntw_free(&w);
    ntw_free(&body);
    ntw_free(&pl);
}

static void test_limits(void **state)
{
    struct ntw w = {0};
    build_sample(&w);
    struct seen s = {0};
    struct vg_nettrace_limits lim = {.max_block = 64};
    struct vg_nettrace *p = parser(&s, &lim);
    assert_int_equal(vg_nettrace_feed(p, w.buf, w.len), VG_ELIMIT);
    assert_non_null(strstr(vg_nettrace_error(p), "MetadataBlock of"));
    vg_nettrace_destroy(p);

    lim = (struct vg_nettrace_limits){.max_metadata = 3};
    p = parser(&s, &lim);
    assert_int_equal(vg_nettrace_feed(p, w.buf, w.len), VG_ELIMIT);
    assert_non_null(strstr(vg_nettrace_error(p), "more than 3 event types"));
    vg_nettrace_destroy(p);

    lim = (struct vg_nettrace_limits){.max_metadata_bytes = 1000};
    p = parser(&s, &lim);
    assert_int_equal(vg_nettrace_feed(p, w.buf, w.len), VG_ELIMIT);
    vg_nettrace_destroy(p);
    ntw_free(&w);

    /* a block size of 4 GiB - 1 is refused before anything is buffered */
    ntw_header(&w);
    ntw_trace(&w, 1);
    struct ntw body = {0};
    ntw_block(&w, "EventBlock", &body);
    memset(w.buf + w.len - 5, 0xff, 4);
    p = parser(&s, NULL);
    assert_int_equal(vg_nettrace_feed(p, w.buf, w.len), VG_ELIMIT);
    vg_nettrace_destroy(p);
    ntw_free(&w);
}

/* Objects nested deeper than the parser accepts: refused, no stack exhaustion. */
static void test_depth_limit(void **state)
{
    struct ntw w = {0}, md = {0}, body = {0};
    ntw_meta_head(&md, 1, "Deep", 1, "Deep");
    for (int i = 0; i < 40; i++) {
        ntw_u32(&md, 1);
        ntw_u32(&md, VG_NT_OBJECT);
    }
    ntw_u32(&md, 0);
    for (int i = 0; i < 40; i++)
        ntw_utf16(&md, "x");
    struct ntw_event ev = {.timestamp = 1, .payload = &md};
    ntw_header(&w);
    ntw_trace(&w, 1);
    ntw_events(&body, true, &ev, 1);
    ntw_block(&w, "MetadataBlock", &body);
    ntw_end(&w);
    struct seen s = {0};
    assert_int_equal(parse_all(&w, &s, NULL), VG_ELIMIT);
    ntw_free(&w);
    ntw_free(&md);
    ntw_free(&body);
}

static int check_event(void *ctx, const struct vg_nettrace_event *e)
{
    (*(int *)ctx)++;
    struct vg_nettrace_value v, x;
    struct vg_nettrace_iter it;
    assert_int_equal(vg_nettrace_event_field(e, "empties", &v), 0);
    assert_int_equal(v.len, 2);
    assert_int_equal(vg_nettrace_array_iter(&v, &it), 0);
    assert_int_equal(it.left, 65535);
    assert_int_equal(vg_nettrace_event_field(e, "strings", &v), VG_EPARSE);
    assert_int_equal(vg_nettrace_event_field(e, "nope", &x), VG_EPARSE);
    return 0;
}

/* An array of 65535 empty objects in a few bytes, and arrays that overrun their payload. */
static void test_array_bounds(void **state)
{
    struct ntw w = {0}, md = {0}, body = {0}, pl = {0};
    ntw_meta_head(&md, 1, "Arr", 1, "Arr");
    ntw_u32(&md, 0);
    struct ntw p2 = {0}, el = {0};
    ntw_u32(&p2, 2);
    ntw_u32(&el, VG_NT_OBJECT);
    ntw_u32(&el, 0);
    v2_field(&p2, "empties", VG_NT_ARRAY, &el);
    ntw_free(&el);
    ntw_u32(&el, VG_NT_STRING);
    v2_field(&p2, "strings", VG_NT_ARRAY, &el);
    ntw_u32(&md, (uint32_t)p2.len);
    ntw_u8(&md, 2);
    ntw_bytes(&md, p2.buf, p2.len);
    ntw_u16(&pl, 65535); /* empties */
    ntw_u16(&pl, 3);     /* three strings, only two present */
    ntw_utf16(&pl, "a");
    ntw_utf16(&pl, "b");
    struct ntw_event mev = {.timestamp = 1, .payload = &md};
    struct ntw_event ev = {.metadata_id = 1, .seq = 1, .timestamp = 2, .payload = &pl};
    ntw_header(&w);
    ntw_trace(&w, 1);
    ntw_events(&body, true, &mev, 1);
    ntw_block(&w, "MetadataBlock", &body);
    ntw_free(&body);
    ntw_events(&body, true, &ev, 1);
    ntw_block(&w, "EventBlock", &body);
    ntw_end(&w);

    int calls = 0;
    struct vg_nettrace_callbacks cb = {.ctx = &calls, .event = check_event};
    struct vg_nettrace *p;
    assert_int_equal(vg_nettrace_create(&cb, NULL, &p), 0);
    assert_int_equal(vg_nettrace_feed(p, w.buf, w.len), 0);
    assert_int_equal(vg_nettrace_finish(p), 0);
    assert_int_equal(calls, 1);
    vg_nettrace_destroy(p);
    ntw_free(&w);
    ntw_free(&md);
    ntw_free(&body);
    ntw_free(&pl);
    ntw_free(&p2);
    ntw_free(&el);
}

/* Field access on the all-types event. */
static int check_all(void *ctx, const struct vg_nettrace_event *ev)
{
    if (ev->meta->id == M_UNKNOWN) {
        assert_true(ev->meta->fields_unknown);
        assert_int_equal(ev->meta->nfields, 0);
        assert_int_equal(ev->payload_len, 4);
        return 0;
    }
    if (ev->meta->id != M_ALL)
        return 0;
    int *n = ctx;
    int k = (*n)++;
    struct vg_nettrace_value v;
    int64_t i;
    double d;
    char name[16], buf[64];
    static const int64_t ints[] = {1,     'Z',    -5,           250,          -300,
                                   60000, -70000, 4000000000LL, -5000000000LL};
    for (size_t f = 0; f < 9; f++) {
        snprintf(name, sizeof name, "f%u", all_types[f]);
        assert_int_equal(vg_nettrace_event_field(ev, name, &v), 0);
        assert_int_equal(vg_nettrace_value_i64(&v, &i), 0);
        assert_int_equal(i, f == 6 ? ints[f] - k : ints[f]);
    }
    snprintf(name, sizeof name, "f%u", VG_NT_UINT64);
    assert_int_equal(vg_nettrace_event_field(ev, name, &v), 0);
    assert_int_equal(vg_nettrace_value_f64(&v, &d), 0);
    assert_true(d == 18000000000000000000.0);
    snprintf(name, sizeof name, "f%u", VG_NT_FLOAT);
    assert_int_equal(vg_nettrace_event_field(ev, name, &v), 0);
    assert_int_equal(vg_nettrace_value_f64(&v, &d), 0);
    assert_true(d == 1.5);
    snprintf(name, sizeof name, "f%u", VG_NT_DOUBLE);
    assert_int_equal(vg_nettrace_event_field(ev, name, &v), 0);
    assert_int_equal(vg_nettrace_value_f64(&v, &d), 0);
    assert_true(d == -2.25 + k);
    snprintf(name, sizeof name, "f%u", VG_NT_GUID);
    assert_int_equal(vg_nettrace_event_field(ev, name, &v), 0);
    assert_int_equal(v.len, 16);
    assert_int_equal(v.data[0], 0xa0);
    assert_int_equal(vg_nettrace_value_i64(&v, &i), VG_EINVAL);
    snprintf(name, sizeof name, "f%u", VG_NT_STRING);
    assert_int_equal(vg_nettrace_event_field(ev, name, &v), 0);
    assert_int_equal(vg_nettrace_value_str(&v, buf, sizeof buf), 11);
    assert_string_equal(buf, "h\xc3\xa9llo \xf0\x9f\x98\x80");
    /* cut at a character boundary, never inside the 4-byte sequence */
    assert_int_equal(vg_nettrace_value_str(&v, buf, 9), 11);
    assert_string_equal(buf, "h\xc3\xa9llo ");
    assert_false(vg_nettrace_value_str_eq(&v, "hello"));
    assert_int_equal(vg_nettrace_event_field(ev, "missing", &v), VG_ENOTFOUND);
    return 0;
}

static void test_fields(void **state)
{
    struct ntw w = {0};
    build_sample(&w);
    int n = 0;
    struct vg_nettrace_callbacks cb = {.ctx = &n, .event = check_all};
    struct vg_nettrace *p;
    assert_int_equal(vg_nettrace_create(&cb, NULL, &p), 0);
    assert_int_equal(vg_nettrace_feed(p, w.buf, w.len), 0);
    assert_int_equal(vg_nettrace_finish(p), 0);
    assert_int_equal(n, 2); /* compressed and uncompressed */
    const struct vg_nettrace_info *in = vg_nettrace_info(p);
    assert_non_null(in);
    assert_int_equal(in->pid, 4242);
    /* 2026-11-23T10:20:30.456Z, and one second of ticks later */
    assert_int_equal(in->start_unix_ns, 1795429230456000000LL);
    assert_int_equal(vg_nettrace_time(in, 1000000 + 1000000000), 1795429231456000000LL);
    vg_nettrace_destroy(p);
    ntw_free(&w);
}

/* Only events of tagged metadata are delivered; a callback's error stops the parser. */
static void test_filter_and_stop(void **state)
{
    struct ntw w = {0};
    build_sample(&w);
    struct seen s = {.tag_only_counters = true};
    struct vg_nettrace_stats st;
    assert_int_equal(parse_all(&w, &s, &st), 0);
    assert_int_equal(s.events, 3); /* the EventCounters events */
    assert_int_equal(st.delivered, 3);
    assert_int_equal(st.events, SAMPLE_EVENTS);

    struct seen s2 = {.stop_after = 2};
    struct vg_nettrace *p = parser(&s2, NULL);
    assert_int_equal(vg_nettrace_feed(p, w.buf, w.len), VG_ECANCELED);
    assert_int_equal(vg_nettrace_finish(p), VG_ECANCELED);
    vg_nettrace_destroy(p);
    ntw_free(&w);
}

/* The decoders on the sample's events. */
struct decoded {
    int counters, metrics, logs, requests;
};

static int decode_event(void *ctx, const struct vg_nettrace_event *ev)
{
    struct decoded *d = ctx;
    switch (vg_ep_classify(ev->meta)) {
    case VG_EP_COUNTER: {
        struct vg_ep_counter c;
        assert_int_equal(vg_ep_counter_decode(ev, &c), 0);
        assert_string_equal(c.provider, "System.Runtime");
        if (c.increment) {
            assert_string_equal(c.name, "exception-count");
            assert_true(c.value == 12 && c.interval_sec == 5);
        } else {
            assert_string_equal(c.name, "cpu-usage");
            assert_string_equal(c.units, "%");
            assert_true(c.value == 87.5 && c.interval_sec == 1);
        }
        d->counters++;
        break;
    }
    case VG_EP_METRIC: {
        struct vg_ep_metric m;
        assert_int_equal(vg_ep_metric_decode(ev, &m), 0);
        assert_string_equal(m.meter, "Vigil.Test");
        if (m.kind == VG_EP_METRIC_HISTOGRAM) {
            assert_string_equal(m.instrument, "latency");
            assert_string_equal(m.tags, "route=/a");
            assert_int_equal(m.nquantiles, 3);
            assert_true(m.quantile[1] == 0.95 && m.quantile_value[1] == 99);
            assert_true(m.quantile[2] == 0.99 && m.quantile_value[2] == 120.5);
            assert_true(m.has_count && m.count == 42 && m.sum == 1234.5);
        } else {
            assert_int_equal(m.kind, VG_EP_METRIC_COUNTER);
            assert_false(m.has_rate); /* "" on a first observation */
            assert_true(m.has_value && m.value == 1e20);
        }
        d->metrics++;
        break;
    }
    case VG_EP_LOG: {
        struct vg_ep_log l;
        char scratch[48];
        assert_int_equal(vg_ep_log_decode(ev, &l, scratch, sizeof scratch), 0);
        assert_int_equal(l.kind, VG_EP_LOG_JSON);
        assert_int_equal(l.level, 4);
        assert_int_equal(l.event_id, 7);
        assert_string_equal(l.logger, "App.Worker");
        assert_string_equal(l.event_name, "Failed");
        /* 48 bytes of scratch: the last strings are cut, never overrun */
        assert_true(l.truncated);
        assert_true(l.arguments_json + strlen(l.arguments_json) < scratch + sizeof scratch);
        char big[512];
        assert_int_equal(vg_ep_log_decode(ev, &l, big, sizeof big), 0);
        assert_false(l.truncated);
        assert_string_equal(l.exception_json, "{\"Message\":\"boom\"}");
        assert_string_equal(l.message, "item 3 failed");
        assert_string_equal(l.arguments_json, "{\"Item\":\"3\"}");
        d->logs++;
        break;
    }
    case VG_EP_REQUEST: {
        struct vg_ep_request r;
        assert_int_equal(vg_ep_request_decode(ev, &r), 0);
        assert_true(r.stop);
        assert_string_equal(r.path, "/api/\xc3\xa9t\xc3\xa9");
        assert_string_equal(r.activity_id, "00-abc-def-00");
        assert_int_equal(r.status_code, 500);
        assert_int_equal(r.duration_ticks, 123456);
        d->requests++;
        break;
    }
    default: {
        struct vg_ep_counter c;
        struct vg_ep_metric m;
        struct vg_ep_request r;
        assert_int_equal(vg_ep_counter_decode(ev, &c), VG_EINVAL);
        assert_int_equal(vg_ep_metric_decode(ev, &m), VG_EINVAL);
        assert_int_equal(vg_ep_request_decode(ev, &r), VG_EINVAL);
        break;
    }
    }
    return 0;
}

static void test_decoders(void **state)
{
    struct ntw w = {0};
    build_sample(&w);
    struct decoded d = {0};
    struct vg_nettrace_callbacks cb = {.ctx = &d, .event = decode_event};
    struct vg_nettrace *p;
    assert_int_equal(vg_nettrace_create(&cb, NULL, &p), 0);
    assert_int_equal(vg_nettrace_feed(p, w.buf, w.len), 0);
    assert_int_equal(vg_nettrace_finish(p), 0);
    assert_int_equal(d.counters, 3);
    assert_int_equal(d.metrics, 2);
    assert_int_equal(d.logs, 1);
    assert_int_equal(d.requests, 1);
    vg_nettrace_destroy(p);
    ntw_free(&w);
}

/* The tee forwards a valid stream whole, and stops a corrupted one before its bad buffer. */
struct sink {
    size_t bytes;
};

static int sink_write(void *ctx, const void *buf, size_t len)
{
    ((struct sink *)ctx)->bytes += len;
    return 0;
}

static void test_tee(void **state)
{
    struct ntw w = {0};
    build_sample(&w);
    struct sink out = {0};
    struct vg_nettrace *p;
    assert_int_equal(vg_nettrace_create(NULL, NULL, &p), 0);
    struct vg_nettrace_tee tee = {p, sink_write, &out};
    for (size_t off = 0; off < w.len; off += 100)
        assert_int_equal(
            vg_nettrace_tee_write(&tee, w.buf + off, w.len - off < 100 ? w.len - off : 100), 0);
    assert_int_equal(vg_nettrace_finish(p), 0);
    assert_int_equal(out.bytes, w.len);
    vg_nettrace_destroy(p);

    out.bytes = 0;
    w.buf[w.len - 1] = 6; /* the end tag broken */
    assert_int_equal(vg_nettrace_create(NULL, NULL, &p), 0);
    tee.parser = p;
    assert_int_equal(vg_nettrace_tee_write(&tee, w.buf, w.len - 1), 0);
    assert_int_equal(vg_nettrace_tee_write(&tee, w.buf + w.len - 1, 1), VG_EPARSE);
    assert_int_equal(out.bytes, w.len - 1);
    vg_nettrace_destroy(p);
    ntw_free(&w);
}

/* "test_nettrace --write-sample FILE" writes the sample stream (the fuzzer's synthetic seed:
 * uncompressed blocks, V2Params, unknown types). */
int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-sample") == 0) {
        struct ntw w = {0};
        build_sample(&w);
        FILE *f = fopen(argv[2], "wb");
        int bad = !f || fwrite(w.buf, 1, w.len, f) != w.len;
        if (f)
            bad |= fclose(f) != 0;
        ntw_free(&w);
        return bad;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_event_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_array_bounds),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_filter_and_stop),
        cmocka_unit_test(test_decoders),
        cmocka_unit_test(test_tee),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
