/* Unit tests of CollectLogs' output shapes (engine/runtimes/dotnet/logs_format.c): messages
 * formatted again from "{OriginalFormat}" as dotnet-monitor's LogValuesFormatter does (escaped
 * braces, alignment, format strings ignored on string arguments, missing and null arguments),
 * and whole records in the three formats, byte for byte as dotnet-monitor writes them. */
#include "config/error.h"
#include "engine/runtimes/dotnet/logs_format.h"
#include "rules/action.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char *message(const char *format, const char *args_json)
{
    json_t *args = args_json ? json_loads(args_json, 0, NULL) : NULL;
    struct vg_buf b;
    vg_buf_init(&b);
    assert_int_equal(vg_dotnet_log_message(&b, format, args), 0);
    json_decref(args);
    return vg_buf_steal(&b);
}

static void expect_message(const char *format, const char *args, const char *want)
{
    char *got = message(format, args);
    if (!want) { /* only its size: "[" + 999999 spaces + "]" */
        assert_int_equal(strlen(got), 1000001);
        free(got);
        return;
    }
    if (strcmp(got, want) != 0)
        fail_msg("format \"%s\": got \"%s\", want \"%s\"", format, got, want);
    free(got);
}

static void test_messages(void **state)
{
    (void)state;
    const char *a = "{\"A\":\"x\",\"B\":\"long\",\"N\":null}";
    expect_message("plain", a, "plain");
    expect_message("{A} and {B}", a, "x and long");
    expect_message("{A}{A}", a, "xx");
    expect_message("[{A,3}] [{A,-3}] [{B,2}]", a, "[  x] [x  ] [long]");
    expect_message("{A:F2} {A,4:D}", a, "x    x"); /* a string ignores its format string */
    expect_message("{Missing} {N}", a, "(null) (null)");
    expect_message("{{literal}} {A}", a, "{literal} x");
    expect_message("{{{A}}}", a, "{x}");
    expect_message("open { only", a, "open { only");
    expect_message("end {A", a, "end {A");
    expect_message("{A}", NULL, "(null)");
    expect_message("caf\xc3\xa9 {A,3}!", a, "caf\xc3\xa9   x!");
    expect_message("[{A,-999999}]", "{\"A\":\"\"}", NULL); /* the widest .NET allows */

    /* wider is a FormatException in .NET (dotnet-monitor drops the record), never a huge one */
    struct vg_buf b;
    vg_buf_init(&b);
    assert_int_equal(vg_dotnet_log_message(&b, "{A,1000000}", NULL), VG_EINVAL);
    assert_int_equal(vg_dotnet_log_message(&b, "{A,-9223372036854775808}", NULL), VG_EINVAL);
    assert_int_equal(vg_dotnet_log_message(&b, "{A,99999999999999999999}", NULL), VG_EINVAL);
    /* 20 holes of a 500 KB argument: over the record limit, refused rather than built */
    struct vg_buf big;
    vg_buf_init(&big);
    vg_buf_puts(&big,
                "{\"{OriginalFormat}\":\"{A}{A}{A}{A}{A}{A}{A}{A}{A}{A}{A}{A}{A}{A}{A}{A}{A}{A}"
                "{A}{A}\",\"A\":\"");
    for (int i = 0; i < 500000; i++)
        vg_buf_puts(&big, "x");
    vg_buf_puts(&big, "\"}");
    struct vg_dotnet_log_record r = {.level = 2, .category = "C", .arguments_json = big.data};
    b.len = 0;
    assert_int_equal(vg_dotnet_log_format(&b, VG_FMT_NDJSON, &r), VG_EINVAL);
    assert_int_equal(b.len, 0);
    vg_buf_free(&big);
    vg_buf_free(&b);
}

struct rec_case {
    int format;
    const char *want;
};

static char *format_record(int format, const struct vg_dotnet_log_record *r, int *rc)
{
    struct vg_buf b;
    vg_buf_init(&b);
    *rc = vg_dotnet_log_format(&b, format, r);
    return vg_buf_steal(&b);
}

static void test_records(void **state)
{
    (void)state;
    json_t *outer = json_loads("{\"Batch\":\"3\",\"{OriginalFormat}\":\"batch {Batch}\"}", 0, NULL);
    json_t *inner =
        json_loads("{\"Worker\":\"w1\",\"Id\":7,\"Ok\":true,\"Nil\":null,\"Obj\":{}}", 0, NULL);
    const json_t *scopes[] = {outer, inner};
    struct vg_dotnet_log_record r = {
        .unix_ns = 1767322800123456789LL, /* 2026-01-02 03:00:00.123 UTC */
        .level = 4,
        .event_id = 42,
        .event_name = "ItemFailed",
        .category = "Vigil.Worker",
        .exception_json = "{\"TypeName\":\"System.Exception\",\"Message\":\"boom\","
                          "\"HResult\":\"-2146233088\",\"VerboseMessage\":\"System.Exception: "
                          "boom\\n   at Program.Main()\"}",
        .arguments_json = "{\"Item\":\"7\",\"Why\":null,\"{OriginalFormat}\":\"item {Item} "
                          "failed: \\\"{Why}\\\"\"}",
        .last_formatted = "ignored",
        .scopes = scopes,
        .n_scopes = 2,
    };
    const struct rec_case cases[] = {
        {VG_FMT_PLAIN_TEXT, "2026-01-02 03:00:00Z fail: Vigil.Worker[42][ItemFailed]\n"
                            "      => Batch:3, {OriginalFormat}:batch {Batch} => Worker:w1, "
                            "Id:7, Ok:True, Nil:\n"
                            "      item 7 failed: \"(null)\"\n"
                            "      System.Exception: boom\n"
                            "         at Program.Main()\n"},
        {VG_FMT_NDJSON,
         "{\"Timestamp\":\"2026-01-02 03:00:00Z\",\"LogLevel\":\"Error\",\"EventId\":42,"
         "\"EventName\":\"ItemFailed\",\"Category\":\"Vigil.Worker\",\"Message\":\"item 7 failed: "
         "\\\"(null)\\\"\",\"Exception\":\"System.Exception: boom\\n   at Program.Main()\","
         "\"State\":{\"Message\":\"item 7 failed: \\\"(null)\\\"\",\"Item\":\"7\","
         "\"Why\":\"(null)\",\"{OriginalFormat}\":\"item {Item} failed: \\\"{Why}\\\"\"},"
         "\"Scopes\":[{\"Batch\":\"3\",\"{OriginalFormat}\":\"batch {Batch}\"},"
         "{\"Worker\":\"w1\",\"Id\":7,\"Ok\":true,\"Nil\":null}]}\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        char *got = format_record(cases[i].format, &r, &rc);
        assert_int_equal(rc, 0);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("format %d:\ngot  %s\nwant %s", cases[i].format, got, cases[i].want);
        if (cases[i].format == VG_FMT_NDJSON) {
            /* JsonSequence: the same record after the record separator */
            char *seq = format_record(VG_FMT_JSON_SEQUENCE, &r, &rc);
            assert_int_equal(rc, 0);
            assert_int_equal(seq[0], 0x1e);
            assert_string_equal(seq + 1, got);
            free(seq);
            json_t *j = json_loads(got, 0, NULL);
            assert_non_null(j);
            json_decref(j);
        }
        free(got);
    }

    /* no arguments: the format as it is; no scopes, no exception */
    r = (struct vg_dotnet_log_record){.unix_ns = 0,
                                      .level = 2,
                                      .event_name = "",
                                      .category = "C",
                                      .exception_json = "{}",
                                      .arguments_json = "{\"{OriginalFormat}\":\"{{as is}}\"}"};
    int rc;
    char *got = format_record(VG_FMT_PLAIN_TEXT, &r, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(got, "1970-01-01 00:00:00Z info: C[0]\n      {{as is}}\n");
    free(got);
    got = format_record(VG_FMT_NDJSON, &r, &rc);
    assert_string_equal(got,
                        "{\"Timestamp\":\"1970-01-01 00:00:00Z\",\"LogLevel\":\"Information\","
                        "\"EventId\":0,\"EventName\":\"\",\"Category\":\"C\",\"Message\":\"{{as "
                        "is}}\",\"State\":{\"Message\":\"{{as is}}\",\"{OriginalFormat}\":\"{{as "
                        "is}}\"}}\n");
    free(got);

    /* no "{OriginalFormat}": the FormattedMessage before it and the arguments as they are */
    r.arguments_json = "{\"K\":\"v\",\"N\":5,\"Arr\":[1]}";
    r.last_formatted = "custom state";
    got = format_record(VG_FMT_NDJSON, &r, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(got, "\"Message\":\"custom state\",\"State\":{\"Message\":\"custom "
                                "state\",\"K\":\"v\",\"N\":5}}"));
    free(got);

    /* records dotnet-monitor drops too; nothing of them is written */
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_puts(&b, "kept");
    r.arguments_json = "";
    assert_int_equal(vg_dotnet_log_format(&b, VG_FMT_NDJSON, &r), VG_EINVAL);
    r.arguments_json = "not json";
    assert_int_equal(vg_dotnet_log_format(&b, VG_FMT_NDJSON, &r), VG_EINVAL);
    r.arguments_json = "{}";
    r.exception_json = "{\"TypeName\":\"X\"}";
    assert_int_equal(vg_dotnet_log_format(&b, VG_FMT_NDJSON, &r), VG_EINVAL);
    r.exception_json = "";
    r.level = 6;
    assert_int_equal(vg_dotnet_log_format(&b, VG_FMT_PLAIN_TEXT, &r), VG_EINVAL);
    assert_string_equal(b.data, "kept");
    vg_buf_free(&b);
    json_decref(outer);
    json_decref(inner);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
