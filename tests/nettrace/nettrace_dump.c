/* nettrace_dump: runs vigil's nettrace parser over a file and prints what it found, in the format
 * of tests/runtimes/dotnet/tracecheck (TraceEvent), so the two can be compared line by line.
 *   nettrace_dump [--events] [--counters] [--metrics] [--logs] [--requests] [--meta]
 *                 [--chunk N | --random-chunks SEED] FILE
 *   nettrace_dump --bench MODE N [--chunk N] FILE   parse N times fed in chunks (64 KiB by
 *       default, as reads from a socket), print "bench BYTES SECONDS EVENTS"; MODE is
 *       events    every event handed to a callback (what TraceEvent's handler gets)
 *       validate  no callbacks: the structure checked, payloads skipped
 *       decode    the daemon's work: counters, meters, logs and requests decoded, the rest skipped
 * Exit status: 0 a complete, valid trace; 1 truncated or corrupt (the parser's message on stderr);
 * 2 usage or I/O error. Doubles print as their 64-bit patterns, as tracecheck prints them. */
#include "config/error.h"
#include "engine/runtimes/dotnet/nettrace.h"
#include "engine/runtimes/dotnet/nettrace_events.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct opts {
    bool events, counters, metrics, logs, requests, meta;
};

struct count {
    char *key;
    uint64_t n;
};

struct dump {
    struct opts o;
    struct count *counts; /* per "provider event-id" */
    size_t ncounts;
    size_t cap;
    char scratch[1 << 16];
};

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* Control characters and backslashes as \xNN (tracecheck escapes the same way). */
static void put_esc(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == '\\')
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static void count_event(struct dump *d, const struct vg_nettrace_meta *m)
{
    char key[512];
    snprintf(key, sizeof key, "%s %u", m->provider, m->event_id);
    for (size_t i = 0; i < d->ncounts; i++) {
        if (strcmp(d->counts[i].key, key) == 0) {
            d->counts[i].n++;
            return;
        }
    }
    if (d->ncounts == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->counts = realloc(d->counts, d->cap * sizeof *d->counts);
        if (!d->counts)
            abort();
    }
    d->counts[d->ncounts].key = strdup(key);
    d->counts[d->ncounts++].n = 1;
}

static void print_fields(const struct vg_nettrace_field *f, uint16_t n, int depth)
{
    for (uint16_t i = 0; i < n; i++) {
        printf("%*s%s type=%u\n", 2 * depth + 2, "", f[i].name, f[i].type);
        if (f[i].type == VG_NT_OBJECT)
            print_fields(f[i].fields, f[i].nfields, depth + 1);
        if (f[i].type == VG_NT_ARRAY)
            print_fields(f[i].elem, 1, depth + 1);
    }
}

static int on_meta(void *ctx, struct vg_nettrace_meta *m)
{
    struct dump *d = ctx;
    if (d->o.meta) {
        printf("meta %u %s/%s event=%u version=%u opcode=%u level=%u keywords=0x%" PRIx64 "%s\n",
               m->id, m->provider, m->name, m->event_id, m->version, m->opcode, m->level,
               m->keywords, m->fields_unknown ? " fields-unknown" : "");
        print_fields(m->fields, m->nfields, 0);
    }
    m->tag = 1; /* every event: they are all counted */
    return 0;
}

static void print_counter(const struct vg_nettrace_event *ev)
{
    struct vg_ep_counter c;
    int rc = vg_ep_counter_decode(ev, &c);
    if (rc) {
        printf("counter-error %s\n", vg_strerror(rc));
        return;
    }
    printf("counter %s %s %s %016" PRIx64 " %016" PRIx64 "\n", c.provider, c.name,
           c.increment ? "sum" : "mean", bits(c.value), bits(c.interval_sec));
}

static void print_num(bool has, double v)
{
    if (has)
        printf(" %016" PRIx64, bits(v));
    else
        printf(" -");
}

static void print_metric(const struct vg_nettrace_event *ev)
{
    struct vg_ep_metric m;
    int rc = vg_ep_metric_decode(ev, &m);
    if (rc) {
        printf("metric-error %s %s\n", ev->meta->name, vg_strerror(rc));
        return;
    }
    static const char *kinds[] = {[VG_EP_METRIC_COUNTER] = "counter",
                                  [VG_EP_METRIC_UPDOWN] = "updown",
                                  [VG_EP_METRIC_GAUGE] = "gauge",
                                  [VG_EP_METRIC_HISTOGRAM] = "histogram"};
    if (m.kind < VG_EP_METRIC_COUNTER || m.kind > VG_EP_METRIC_HISTOGRAM)
        return;
    printf("metric %s %s %s [%s]", kinds[m.kind], m.meter, m.instrument, m.tags);
    if (m.kind == VG_EP_METRIC_HISTOGRAM) {
        for (unsigned i = 0; i < m.nquantiles; i++)
            printf(" %016" PRIx64 "=%016" PRIx64, bits(m.quantile[i]), bits(m.quantile_value[i]));
        printf(" count=%" PRId64 " sum=%016" PRIx64, m.count, bits(m.sum));
    } else if (m.kind == VG_EP_METRIC_GAUGE) {
        print_num(m.has_value, m.value);
    } else {
        print_num(m.has_rate, m.rate);
        print_num(m.has_value, m.value);
    }
    putchar('\n');
}

static void print_log(struct dump *d, const struct vg_nettrace_event *ev)
{
    struct vg_ep_log l;
    if (vg_ep_log_decode(ev, &l, d->scratch, sizeof d->scratch) != 0)
        return;
    switch (l.kind) {
    case VG_EP_LOG_FORMATTED:
        printf("log formatted %d ", l.level);
        put_esc(l.logger);
        printf(" %d ", l.event_id);
        put_esc(l.message);
        break;
    case VG_EP_LOG_JSON:
        printf("log json %d ", l.level);
        put_esc(l.logger);
        printf(" %d ", l.event_id);
        put_esc(l.message);
        putchar(' ');
        put_esc(l.arguments_json);
        putchar(' ');
        put_esc(l.exception_json);
        break;
    case VG_EP_LOG_SCOPE_START:
        printf("log scope-start %d ", l.scope_id);
        put_esc(l.logger);
        putchar(' ');
        put_esc(l.arguments_json);
        break;
    case VG_EP_LOG_SCOPE_STOP:
        printf("log scope-stop %d ", l.scope_id);
        put_esc(l.logger);
        break;
    default:
        return;
    }
    putchar('\n');
}

static void print_request(const struct vg_nettrace_event *ev)
{
    struct vg_ep_request r;
    int rc = vg_ep_request_decode(ev, &r);
    if (rc == VG_EINVAL)
        return;
    if (rc) {
        printf("request-error %s\n", vg_strerror(rc));
        return;
    }
    printf("request %s %s ", r.stop ? "stop" : "start", r.activity_id);
    put_esc(r.path);
    if (r.status_code >= 0)
        printf(" %d", r.status_code);
    else
        printf(" -");
    if (r.duration_ticks >= 0)
        printf(" %" PRId64 "\n", r.duration_ticks);
    else
        printf(" -\n");
}

static int on_event(void *ctx, const struct vg_nettrace_event *ev)
{
    struct dump *d = ctx;
    count_event(d, ev->meta);
    switch (vg_ep_classify(ev->meta)) {
    case VG_EP_COUNTER:
        if (d->o.counters)
            print_counter(ev);
        break;
    case VG_EP_METRIC:
        if (d->o.metrics)
            print_metric(ev);
        break;
    case VG_EP_LOG:
        if (d->o.logs)
            print_log(d, ev);
        break;
    case VG_EP_REQUEST:
        if (d->o.requests)
            print_request(ev);
        break;
    default:
        break;
    }
    return 0;
}

static int cmp_count(const void *a, const void *b)
{
    return strcmp(((const struct count *)a)->key, ((const struct count *)b)->key);
}

/* Feeds the whole buffer, split as asked: chunk 0 means random sizes from seed. */
static int run(const uint8_t *data, size_t len, size_t chunk, unsigned seed,
               const struct vg_nettrace_callbacks *cb, struct vg_nettrace_stats *st)
{
    struct vg_nettrace *p;
    int rc = vg_nettrace_create(cb, NULL, &p);
    if (rc)
        return rc;
    size_t off = 0;
    while (off < len && !rc) {
        size_t n = chunk ? chunk : 1 + (size_t)(rand_r(&seed) % 9000);
        if (n > len - off)
            n = len - off;
        rc = vg_nettrace_feed(p, data + off, n);
        off += n;
    }
    if (!rc)
        rc = vg_nettrace_finish(p);
    if (rc)
        fprintf(stderr, "nettrace_dump: %s\n", vg_nettrace_error(p));
    vg_nettrace_stats(p, st);
    vg_nettrace_destroy(p);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: nettrace_dump [--events] [--counters] [--metrics] [--logs] "
                    "[--requests] [--meta] [--chunk N | --random-chunks SEED] FILE\n"
                    "       nettrace_dump --bench events|validate|decode N FILE\n");
    return 2;
}

static int count_only(void *ctx, const struct vg_nettrace_event *ev)
{
    (*(uint64_t *)ctx)++;
    return 0;
}

static int tag_kind(void *ctx, struct vg_nettrace_meta *m)
{
    m->tag = (int)vg_ep_classify(m);
    return 0;
}

static uint64_t decoded_sink;

static int decode_one(void *ctx, const struct vg_nettrace_event *ev)
{
    static char scratch[1 << 16];
    union {
        struct vg_ep_counter c;
        struct vg_ep_metric m;
        struct vg_ep_log l;
        struct vg_ep_request r;
    } u;
    (*(uint64_t *)ctx)++;
    switch (ev->meta->tag) {
    case VG_EP_COUNTER:
        decoded_sink += vg_ep_counter_decode(ev, &u.c) == 0;
        break;
    case VG_EP_METRIC:
        decoded_sink += vg_ep_metric_decode(ev, &u.m) == 0;
        break;
    case VG_EP_LOG:
        decoded_sink += vg_ep_log_decode(ev, &u.l, scratch, sizeof scratch) == 0;
        break;
    case VG_EP_REQUEST:
        decoded_sink += vg_ep_request_decode(ev, &u.r) == 0;
        break;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct dump *d = calloc(1, sizeof *d);
    size_t chunk = 65536;
    unsigned seed = 0;
    int bench = 0;
    const char *bench_mode = NULL;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--events"))
            d->o.events = true;
        else if (!strcmp(a, "--counters"))
            d->o.counters = true;
        else if (!strcmp(a, "--metrics"))
            d->o.metrics = true;
        else if (!strcmp(a, "--logs"))
            d->o.logs = true;
        else if (!strcmp(a, "--requests"))
            d->o.requests = true;
        else if (!strcmp(a, "--meta"))
            d->o.meta = true;
        else if (!strcmp(a, "--chunk") && i + 1 < argc)
            chunk = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--random-chunks") && i + 1 < argc)
            chunk = 0, seed = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--bench") && i + 2 < argc)
            bench_mode = argv[++i], bench = atoi(argv[++i]);
        else if (a[0] != '-' && !path)
            path = a;
        else
            return usage();
    }
    if (!path || (bench_mode &&
                  (bench < 1 || (strcmp(bench_mode, "events") && strcmp(bench_mode, "validate") &&
                                 strcmp(bench_mode, "decode")))))
        return usage();
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        perror(path);
        return 2;
    }
    size_t len = (size_t)sb.st_size;
    const uint8_t *data =
        len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : (const uint8_t *)"";
    if (data == MAP_FAILED) {
        perror(path);
        return 2;
    }
    struct vg_nettrace_stats st;
    if (bench > 0) {
        uint64_t events = 0;
        struct vg_nettrace_callbacks cb = {.ctx = &events};
        if (!strcmp(bench_mode, "events")) {
            cb.event = count_only;
        } else if (!strcmp(bench_mode, "decode")) {
            cb.metadata = tag_kind;
            cb.event = decode_one;
        }
        /* One untimed pass first (page cache, allocator), as tracecheck warms up its JIT. */
        if (run(data, len, chunk, 0, &cb, &st))
            return 1;
        events = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < bench; i++)
            if (run(data, len, chunk, 0, &cb, &st))
                return 1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("bench %zu %.9f %" PRIu64 "\n", len * (size_t)bench,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
               bench_mode[0] == 'v' ? st.events * (uint64_t)bench : events);
        return 0;
    }
    struct vg_nettrace_callbacks cb = {.ctx = d, .metadata = on_meta, .event = on_event};
    if (run(data, len, chunk, seed, &cb, &st))
        return 1;
    if (d->o.events) {
        printf("events %" PRIu64 "\n", st.events);
        qsort(d->counts, d->ncounts, sizeof *d->counts, cmp_count);
        for (size_t i = 0; i < d->ncounts; i++)
            printf("event %s %" PRIu64 "\n", d->counts[i].key, d->counts[i].n);
    }
    fprintf(stderr,
            "nettrace_dump: %s: %" PRIu64 " bytes, %" PRIu64 " blocks, %" PRIu64 " events, %" PRIu64
            " event types, %" PRIu64 " stacks, %" PRIu64 " sequence points, %" PRIu64
            " events lost\n",
            path, st.bytes, st.blocks, st.events, st.metadata, st.stacks, st.sequence_points,
            st.events_lost);
    for (size_t i = 0; i < d->ncounts; i++)
        free(d->counts[i].key);
    free(d->counts);
    free(d);
    return 0;
}
