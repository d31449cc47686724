/* Unit tests of the JVM protocol layer's parsers: perf-data buffers built here in both byte
 * orders (valid, and broken in each way the parser must refuse), the attach reply parser, and
 * /proc status parsing from a fake tree. The same code is checked against real JVMs by
 * test_jvm.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "config/error.h"
#include "engine/runtimes/jvm/attach.h"
#include "engine/runtimes/jvm/perfdata.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A perf-data buffer builder. */
struct pdb {
    uint8_t b[4096];
    size_t off;
    bool be;
};

static void put32(struct pdb *p, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p->b[off + (size_t)i] = (uint8_t)(v >> (p->be ? 24 - 8 * i : 8 * i));
}

static void put64(struct pdb *p, size_t off, uint64_t v)
{
    uint32_t hi = (uint32_t)(v >> 32), lo = (uint32_t)v;
    put32(p, off, p->be ? hi : lo);
    put32(p, off + 4, p->be ? lo : hi);
}

static void pdb_init(struct pdb *p, bool be)
{
    memset(p, 0, sizeof(*p));
    p->be = be;
    p->b[0] = 0xca;
    p->b[1] = 0xfe;
    p->b[2] = 0xc0;
    p->b[3] = 0xc0;
    p->b[4] = be ? 0 : 1;
    p->b[5] = 2;
    p->b[6] = 0;
    p->b[7] = 1;
    put64(p, 16, 12345);
    put32(p, 24, 32);
    p->off = 32;
}

/* Appends an entry laid out as HotSpot does (header, name, pad to 8, data, pad to 8). Returns
 * the entry's offset. */
static size_t pdb_add(struct pdb *p, const char *name, char type, uint8_t units, uint8_t var,
                      uint32_t vlen, int64_t value, const char *str, uint8_t flags)
{
    size_t start = p->off, nlen = strlen(name) + 1;
    size_t name_off = 20, data_off = (name_off + nlen + 7) & ~(size_t)7;
    size_t dlen = vlen ? vlen : 8;
    size_t elen = (data_off + dlen + 7) & ~(size_t)7;
    put32(p, start, (uint32_t)elen);
    put32(p, start + 4, (uint32_t)name_off);
    put32(p, start + 8, vlen);
    p->b[start + 12] = (uint8_t)type;
    p->b[start + 13] = flags;
    p->b[start + 14] = units;
    p->b[start + 15] = var;
    put32(p, start + 16, (uint32_t)data_off);
    memcpy(p->b + start + name_off, name, nlen);
    if (vlen)
        memcpy(p->b + start + data_off, str, strlen(str) < vlen ? strlen(str) : vlen);
    else
        put64(p, start + data_off, (uint64_t)value);
    p->off += elen;
    return start;
}

static void pdb_finish(struct pdb *p, uint32_t nentries)
{
    put32(p, 8, (uint32_t)p->off);
    put32(p, 28, nentries);
}

static void build_sample(struct pdb *p, bool be)
{
    pdb_init(p, be);
    pdb_add(p, "sun.os.hrt.frequency", 'J', VG_PD_UNITS_HERTZ, VG_PD_CONSTANT, 0, 1000000000, NULL,
            1);
    pdb_add(p, "sun.gc.collector.1.invocations", 'J', VG_PD_UNITS_EVENTS, VG_PD_MONOTONIC, 0, 7,
            NULL, 1);
    pdb_add(p, "sun.gc.collector.1.time", 'J', VG_PD_UNITS_TICKS, VG_PD_MONOTONIC, 0, 2500000000LL,
            NULL, 1);
    pdb_add(p, "java.property.java.vm.name", 'B', VG_PD_UNITS_STRING, VG_PD_CONSTANT, 32, 0,
            "OpenJDK 64-Bit Server VM", 1);
    pdb_add(p, "sun.gc.generation.0.space.0.used", 'J', VG_PD_UNITS_BYTES, VG_PD_VARIABLE, 0, -5,
            NULL, 0);
    pdb_finish(p, 5);
}

static void check_sample(struct vg_perfdata *pd)
{
    assert_non_null(pd);
    assert_int_equal(pd->n, 5 + 6);
    assert_int_equal(pd->major, 2);
    assert_int_equal(pd->mod_time_stamp, 12345);
    for (size_t i = 1; i < pd->n; i++)
        assert_true(strcmp(pd->entries[i - 1].name, pd->entries[i].name) < 0);
    int64_t v;
    assert_int_equal(vg_perfdata_long(pd, "sun.gc.collector.1.invocations", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(vg_perfdata_long(pd, "sun.gc.generation.0.space.0.used", &v), 0);
    assert_int_equal(v, -5);
    const struct vg_perfdata_entry *e = vg_perfdata_find(pd, "sun.gc.generation.0.space.0.used");
    assert_false(e->supported);
    assert_int_equal(e->units, VG_PD_UNITS_BYTES);
    assert_int_equal(e->variability, VG_PD_VARIABLE);
    e = vg_perfdata_find(pd, "java.property.java.vm.name");
    assert_non_null(e);
    assert_true(e->is_string);
    assert_string_equal(e->str, "OpenJDK 64-Bit Server VM");
    assert_int_equal(vg_perfdata_long(pd, "java.property.java.vm.name", &v), VG_ENOTFOUND);
    assert_int_equal(vg_perfdata_long(pd, "nope", &v), VG_ENOTFOUND);
    assert_true(vg_perfdata_ticks_to_seconds(pd, 2500000000LL) == 2.5);
}

static void test_parse_little_endian(void **state)
{
    struct pdb p;
    struct vg_perfdata *pd;
    build_sample(&p, false);
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), 0);
    check_sample(pd);
    vg_perfdata_destroy(pd);
}

static void test_parse_big_endian(void **state)
{
    struct pdb p;
    struct vg_perfdata *pd;
    build_sample(&p, true);
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), 0);
    check_sample(pd);
    vg_perfdata_destroy(pd);
    vg_perfdata_destroy(NULL);
}

static void test_parse_header_errors(void **state)
{
    struct pdb p;
    struct vg_perfdata *pd = (void *)1;
    build_sample(&p, false);
    assert_int_equal(vg_perfdata_parse(p.b, 31, &pd), VG_EPARSE);
    assert_null(pd);
    assert_int_equal(vg_perfdata_parse(NULL, 0, &pd), VG_EPARSE);
    p.b[7] = 0; /* not accessible yet */
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EAGAIN);
    p.b[7] = 1;
    p.b[5] = 1; /* version 1 */
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EPARSE);
    p.b[5] = 2;
    p.b[4] = 7; /* byte order */
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EPARSE);
    p.b[4] = 1;
    p.b[0] = 0xc0; /* magic */
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EPARSE);
    p.b[0] = 0xca;
    put32(&p, 24, 30); /* first entry inside the prologue */
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EPARSE);
    put32(&p, 24, 0x7ffffff0); /* past used */
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EPARSE);
    put32(&p, 24, 34); /* misaligned */
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EPARSE);
}

static void test_parse_entry_errors(void **state)
{
    struct pdb p;
    struct vg_perfdata *pd;
    struct {
        size_t field;
        uint32_t value;
    } cases[] = {
        {0, 0x10000},     /* entry length past used */
        {0, 12},          /* shorter than its header */
        {0, 42},          /* not a multiple of 4 */
        {4, 4},           /* name inside the header */
        {4, 2000},        /* name past the entry */
        {16, 20},         /* data before the name */
        {16, 0x7fffffff}, /* data past the entry */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pdb_init(&p, false);
        size_t e = pdb_add(&p, "a.b", 'J', 1, 1, 0, 1, NULL, 1);
        pdb_finish(&p, 1);
        put32(&p, e + cases[i].field, cases[i].value);
        assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EPARSE);
    }
    /* A name filling its room without a NUL. */
    pdb_init(&p, false);
    size_t e = pdb_add(&p, "abc", 'J', 1, 1, 0, 1, NULL, 1);
    pdb_finish(&p, 1);
    memset(p.b + e + 20, 'x', 4);
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EPARSE);
    /* Units and variability outside their enums. */
    pdb_init(&p, false);
    e = pdb_add(&p, "abc", 'J', 9, 1, 0, 1, NULL, 1);
    pdb_finish(&p, 1);
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EPARSE);
    p.b[e + 14] = 1;
    p.b[e + 15] = 0;
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EPARSE);
    /* A vector longer than the entry. */
    pdb_init(&p, false);
    e = pdb_add(&p, "s", 'B', VG_PD_UNITS_STRING, 1, 8, 0, "abc", 1);
    pdb_finish(&p, 1);
    put32(&p, e + 8, 64);
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), VG_EPARSE);
}

static void test_parse_skips_and_stops(void **state)
{
    struct pdb p;
    struct vg_perfdata *pd;
    pdb_init(&p, false);
    pdb_add(&p, "kept.first", 'J', 1, 1, 0, 1, NULL, 1);
    pdb_add(&p, "skipped.int", 'I', 1, 1, 0, 2, NULL, 1);     /* no such type in v2 */
    pdb_add(&p, "skipped.vector", 'J', 1, 1, 16, 0, "xx", 1); /* long vectors unused */
    pdb_add(&p, "full.string", 'B', VG_PD_UNITS_STRING, 1, 8, 0, "12345678", 1); /* no NUL */
    size_t end = pdb_add(&p, "after.end", 'J', 1, 1, 0, 3, NULL, 1);
    pdb_finish(&p, 5);
    put32(&p, end, 0); /* a zero length ends the data (an entry being created) */
    assert_int_equal(vg_perfdata_parse(p.b, sizeof(p.b), &pd), 0);
    assert_int_equal(pd->n, 2 + 6);
    int64_t v;
    assert_int_equal(vg_perfdata_long(pd, "sun.perfdata.used", &v), 0);
    assert_int_equal(v, p.off);
    assert_int_equal(vg_perfdata_long(pd, "sun.perfdata.size", &v), 0);
    assert_int_equal(v, sizeof(p.b));
    assert_string_equal(vg_perfdata_find(pd, "full.string")->str, "12345678");
    assert_null(vg_perfdata_find(pd, "after.end"));
    assert_null(vg_perfdata_find(pd, "skipped.int"));
    vg_perfdata_destroy(pd);
}

static void test_parse_every_truncation(void **state)
{
    struct pdb p;
    build_sample(&p, false);
    for (size_t len = 0; len <= p.off; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan catches any overread */
        memcpy(copy, p.b, len);
        struct vg_perfdata *pd = NULL;
        int rc = vg_perfdata_parse(copy, len, &pd);
        assert_true(rc == 0 || rc == VG_EPARSE);
        if (rc == 0)
            assert_true(pd->n <= 5 + 6);
        vg_perfdata_destroy(pd);
        free(copy);
    }
}

/* The reply parser. */

struct collect {
    char buf[256];
    size_t len;
    int fail_at; /* fail when this many bytes would be exceeded; 0 never */
};

static int collect_sink(void *ctx, const void *buf, size_t len)
{
    struct collect *c = ctx;
    if (c->fail_at && c->len + len > (size_t)c->fail_at)
        return VG_EQUOTA;
    memcpy(c->buf + c->len, buf, len);
    c->len += len;
    return 0;
}

static int feed_bytewise(struct vg_jvm_reply *r, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int rc = vg_jvm_reply_feed(r, s + i, 1);
        if (rc < 0)
            return rc;
    }
    return vg_jvm_reply_end(r);
}

static void test_reply_ok(void **state)
{
    struct vg_jvm_reply r;
    struct collect c = {0};
    char head[4];
    vg_jvm_reply_init(&r, collect_sink, &c, head, sizeof(head));
    assert_int_equal(feed_bytewise(&r, "0\nhello", 7), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.bytes, 5);
    assert_int_equal(c.len, 5);
    assert_memory_equal(c.buf, "hello", 5);
    assert_string_equal(head, "hel");

    vg_jvm_reply_init(&r, NULL, NULL, NULL, 0);
    const char *s = "-1\njava.lang.IllegalArgumentException: Unknown diagnostic command\n";
    assert_int_equal(vg_jvm_reply_feed(&r, s, strlen(s)), 0);
    assert_int_equal(vg_jvm_reply_end(&r), 0);
    assert_int_equal(r.status, -1);

    vg_jvm_reply_init(&r, NULL, NULL, NULL, 0);
    assert_int_equal(feed_bytewise(&r, "101\n", 4), 0);
    assert_int_equal(r.status, 101);
    assert_int_equal(r.bytes, 0);
}

static void test_reply_errors(void **state)
{
    const char *bad[] = {
        "", "12", "abc\n", "\n", "-\n", "1 \n", "12345678901\n", "2147483648\n", "0x1\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vg_jvm_reply r;
        vg_jvm_reply_init(&r, NULL, NULL, NULL, 0);
        assert_int_equal(feed_bytewise(&r, bad[i], strlen(bad[i])), VG_EPROTO);
    }
    struct vg_jvm_reply r;
    vg_jvm_reply_init(&r, NULL, NULL, NULL, 0);
    assert_int_equal(feed_bytewise(&r, "-2147483648\n", 12), 0);
    assert_int_equal(r.status, -2147483647 - 1);

    struct collect c = {.fail_at = 3};
    vg_jvm_reply_init(&r, collect_sink, &c, NULL, 0);
    assert_int_equal(vg_jvm_reply_feed(&r, "0\nab", 4), 0);
    assert_int_equal(vg_jvm_reply_feed(&r, "cd", 2), VG_EQUOTA);
}

/* /proc status from a fake tree. */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_target_read(void **state)
{
    char root[] = "/tmp/vg-jvm-unit-XXXXXX", path[256];
    assert_non_null(mkdtemp(root));
    snprintf(path, sizeof(path), "%s/4242", root);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/4242/stat", root);
    write_file(path, "4242 (java (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 1 2 0 0 20 0 30 0 "
                     "987654 1000 10 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 0 0 0\n");
    snprintf(path, sizeof(path), "%s/4242/status", root);
    write_file(path, "Name:\tjava\nUid:\t1000\t1001\t1001\t1001\nGid:\t50\t51\t51\t51\n"
                     "NSpid:\t4242\t17\t3\nSigCgt:\t0000000101005ccd\n");
    struct vg_jvm_target t;
    assert_int_equal(vg_jvm_target_read(root, 4242, &t), 0);
    assert_int_equal(t.nspid, 3);
    assert_int_equal(t.euid, 1001);
    assert_int_equal(t.egid, 51);
    assert_int_equal(t.start_ticks, 987654);
    assert_true(vg_jvm_target_catches_sigquit(&t));
    assert_int_equal(vg_jvm_target_check_alive(&t), 0);

    /* -Xrs: SIGQUIT (bit 2) not caught. */
    write_file(path, "Name:\tjava\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t4242\nSigCgt:"
                     "\t0000000101005cc9\n");
    assert_false(vg_jvm_target_catches_sigquit(&t));
    assert_int_equal(vg_jvm_target_read(root, 4242, &t), 0);
    assert_int_equal(t.nspid, 4242);
    write_file(path, "Name:\tjava\nUid:\t0\t0\t0\t0\nGid:\tx\n");
    assert_int_equal(vg_jvm_target_read(root, 4242, &t), VG_EPARSE);
    assert_int_equal(vg_jvm_target_read(root, 4243, &t), VG_ESRCH);

    /* A restarted pid (other start time) is another process. */
    struct vg_jvm_target old = t;
    old.start_ticks = 1;
    assert_int_equal(vg_jvm_target_check_alive(&old), VG_EEXITED);

    snprintf(path, sizeof(path), "rm -rf '%s'", root);
    assert_int_equal(system(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_little_endian),
        cmocka_unit_test(test_parse_big_endian),
        cmocka_unit_test(test_parse_header_errors),
        cmocka_unit_test(test_parse_entry_errors),
        cmocka_unit_test(test_parse_skips_and_stops),
        cmocka_unit_test(test_parse_every_truncation),
        cmocka_unit_test(test_reply_ok),
        cmocka_unit_test(test_reply_errors),
        cmocka_unit_test(test_target_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
