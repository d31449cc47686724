/* Unit tests for the configuration layer: parsing, positions, merging, settings, secrets,
 * Kubernetes ConfigMap layouts and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config_test.h"

#include "config/config.h"
#include "config/source.h"
#include "config/error.h"
#include "config/util.h"
#include "config/redact.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static int load_dir(const char *dir, struct vg_diags *d, struct vg_config **cfg)
{
    const char *dirs[] = {dir};
    vg_diags_init(d);
    return vg_config_load(dirs, 1, d, cfg);
}

/* Loads one file's text and returns the diagnostics; asserts on the load result. */
static char *load_text(const char *name, const char *text, size_t len, int want_rc)
{
    char *dir = make_dir();
    write_file(dir, name, text, len);
    struct vg_diags d;
    struct vg_config *cfg = NULL;
    int rc = load_dir(dir, &d, &cfg);
    char *out = diag_text(&d, dir);
    if (rc != want_rc)
        fprintf(stderr, "unexpected rc %d; diagnostics:\n%s", rc, out);
    assert_int_equal(rc, want_rc);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    rm_rf(dir);
    free(dir);
    return out;
}

/* ---- units ---- */

static void test_durations(void **state)
{
    (void)state;
    uint64_t ms;
    assert_int_equal(vg_parse_duration_ms("00:00:30", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(vg_parse_duration_ms("1.00:00:00", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(vg_parse_duration_ms("1:00:00", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(vg_parse_duration_ms("00:00:00.5", &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(vg_parse_duration_ms("30s", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(vg_parse_duration_ms("5m", &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(vg_parse_duration_ms("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(vg_parse_duration_ms("1d", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(vg_parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(vg_parse_duration_ms("90", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(vg_parse_duration_ms("00:61:00", &ms), VG_ERANGE);
    assert_int_equal(vg_parse_duration_ms("soon", &ms), VG_EINVAL);
    assert_int_equal(vg_parse_duration_ms("-5s", &ms), VG_EINVAL);
    assert_int_equal(vg_parse_duration_ms("", &ms), VG_EINVAL);
    assert_int_equal(vg_parse_duration_ms("99999999999999999999d", &ms), VG_ERANGE);
}

static void test_sizes(void **state)
{
    (void)state;
    uint64_t b;
    assert_int_equal(vg_parse_size("100MB", &b), 0);
    assert_int_equal(b, 100000000);
    assert_int_equal(vg_parse_size("1GiB", &b), 0);
    assert_int_equal(b, 1073741824);
    assert_int_equal(vg_parse_size("512k", &b), 0);
    assert_int_equal(b, 512000);
    assert_int_equal(vg_parse_size("4096", &b), 0);
    assert_int_equal(b, 4096);
    assert_int_equal(vg_parse_size("1.5MiB", &b), 0);
    assert_int_equal(b, 1572864);
    assert_int_equal(vg_parse_size("ten", &b), VG_EINVAL);
    assert_int_equal(vg_parse_size("5 parsecs", &b), VG_EINVAL);
    assert_int_equal(vg_parse_size("99999999999TiB", &b), VG_ERANGE);
}

static void test_error_names(void **state)
{
    (void)state;
    assert_string_equal(vg_err_name(VG_ENOMEM), "VG_ENOMEM");
    assert_string_equal(vg_err_name(VG_ECONFIG), "VG_ECONFIG");
    assert_string_equal(vg_strerror(VG_EQUOTA), "spool quota exceeded");
    assert_string_equal(vg_strerror(-ENOENT), "no such file or directory");
    assert_string_equal(vg_err_name(-424242), "VG_EUNKNOWN");
}

/* ---- parsing and positions ---- */

static void test_yaml_positions_and_case(void **state)
{
    (void)state;
    struct vg_tree *t = vg_tree_create();
    struct vg_diags d;
    vg_diags_init(&d);
    const char *y = "Server:\n  urls: [\"http://127.0.0.1:1\"]\ncollectionRules:\n  A:\n"
                    "    trigger: {type: Startup}\n";
    assert_int_equal(vg_source_load_buffer(t, "x.yaml", y, strlen(y), false, &d), 0);
    const struct vg_node *root = vg_tree_root(t);
    const struct vg_node *rules = vg_node_get(root, "CollectionRules");
    assert_non_null(rules);
    const struct vg_node *type =
        vg_node_get(vg_node_get(vg_node_get(rules, "a"), "Trigger"), "TYPE");
    assert_string_equal(vg_node_str(type), "Startup");
    assert_int_equal(type->pos.line, 5);
    assert_int_equal(type->pos.col, 21);
    assert_string_equal(type->pos.file, "x.yaml");
    vg_diags_free(&d);
    vg_tree_destroy(t);
}

static void test_json_positions_comments(void **state)
{
    (void)state;
    struct vg_tree *t = vg_tree_create();
    struct vg_diags d;
    vg_diags_init(&d);
    const char *j = "// settings\n{\n  /* block */ \"A\": {\"b\": [1, \"two\", true, null,],},\n"
                    "  \"U\": \"\\u00e9\\ud83d\\ude00\"\n}\n";
    assert_int_equal(vg_source_load_buffer(t, "s.json", j, strlen(j), true, &d), 0);
    const struct vg_node *b = vg_node_get(vg_node_get(vg_tree_root(t), "a"), "B");
    assert_int_equal(b->kind, VG_NODE_SEQ);
    assert_int_equal(b->n, 4);
    assert_string_equal(b->items[1]->str, "two");
    assert_true(b->items[1]->quoted);
    assert_false(b->items[0]->quoted);
    assert_int_equal(b->items[3]->kind, VG_NODE_NULL);
    assert_int_equal(b->items[1]->pos.line, 3);
    assert_int_equal(b->items[1]->pos.col, 30);
    assert_string_equal(vg_node_str(vg_node_get(vg_tree_root(t), "u")), "\xc3\xa9\xf0\x9f\x98\x80");
    vg_diags_free(&d);
    vg_tree_destroy(t);
}

static void test_merge_order(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "10-base.yaml", "Discovery: {PollInterval: 5s}\nServer: {MaxConnections: 10}\n");
    put(dir, "20-override.json",
        "{\"discovery\": {\"pollInterval\": \"2s\", \"sampleAllProcesses\": true}}");
    put(dir, "notes.txt", "ignored: [");
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load_dir(dir, &d, &cfg), 0);
    assert_int_equal(cfg->settings.discovery.poll_interval_ms, 2000);
    assert_true(cfg->settings.discovery.sample_all);
    assert_int_equal(cfg->settings.server.max_connections, 10);
    assert_int_equal(cfg->n_files, 2);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    rm_rf(dir);
    free(dir);
}

static void test_defaults(void **state)
{
    (void)state;
    char *out = load_text("a.yaml", "CollectionRules: {}\n", 20, 0);
    free(out);
    char *dir = make_dir();
    put(dir, "a.yaml", "Egress:\n  FileSystem:\n    out: {DirectoryPath: /tmp/x}\n");
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load_dir(dir, &d, &cfg), 0);
    assert_int_equal(cfg->settings.discovery.poll_interval_ms, 1000);
    assert_false(cfg->settings.discovery.sample_all);
    assert_int_equal(cfg->settings.server.max_connections, 64);
    assert_true(cfg->settings.server.metrics_enabled);
    assert_int_equal(cfg->settings.n_egress, 1);
    assert_string_equal(cfg->settings.egress[0].u.fs.directory_path, "/tmp/x");
    assert_int_equal(cfg->settings.egress[0].max_retries, 10);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    rm_rf(dir);
    free(dir);
}

static void test_egress_settings_and_secrets(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "ignore.key", "c2VjcmV0LWtleQ==\n");
    char *yaml =
        vg_asprintf("Egress:\n"
                    "  Properties:\n    BlobKey: \"${file:%s/ignore.key}\"\n"
                    "  AzureBlobStorage:\n"
                    "    blob:\n      AccountUri: http://127.0.0.1:10000/devstoreaccount1\n"
                    "      ContainerName: dumps\n      AccountKeyName: BlobKey\n"
                    "      Metadata: {owner: VG_TEST_OWNER}\n"
                    "  S3Storage:\n"
                    "    s3:\n      BucketName: b\n      AccessKeyId: AK\n"
                    "      SecretAccessKey: \"${env:VG_TEST_SECRET}\"\n      CopyBufferSize: 1MB\n"
                    "      PreSignedUrlExpiry: \"00:15:00\"\n      Compression: zstd\n",
                    dir);
    put(dir, "a.yaml", yaml);
    free(yaml);
    setenv("VG_TEST_SECRET", "s3cr3t", 1);
    setenv("VG_TEST_OWNER", "team-a", 1);
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load_dir(dir, &d, &cfg), 0);
    const struct vg_egress_settings *az = vg_config_egress(cfg, "BLOB");
    assert_non_null(az);
    assert_int_equal(az->kind, VG_EGRESS_AZURE_BLOB);
    assert_string_equal(az->u.azure.account_key, "c2VjcmV0LWtleQ==");
    assert_int_equal(az->u.azure.n_metadata, 1);
    assert_string_equal(az->u.azure.metadata[0].value, "team-a");
    const struct vg_egress_settings *s3 = vg_config_egress(cfg, "s3");
    assert_string_equal(s3->u.s3.secret_access_key, "s3cr3t");
    assert_int_equal(s3->u.s3.part_size, 5u << 20); /* raised to the S3 minimum */
    assert_int_equal(s3->u.s3.presigned_url_expiry_ms, 900000);
    assert_int_equal(s3->compression, VG_COMPRESS_ZSTD);
    /* --show redacts secrets but keeps references */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vg_config_show(cfg, f, 0);
    fclose(f);
    assert_null(strstr(buf, "c2VjcmV0"));
    assert_null(strstr(buf, "s3cr3t"));
    assert_non_null(strstr(buf, "${env:VG_TEST_SECRET}"));
    free(buf);
    vg_config_destroy(cfg);
    vg_diags_free(&d);

    unsetenv("VG_TEST_SECRET");
    put(dir, "a.yaml",
        "Egress:\n  S3Storage:\n    s3: {BucketName: b, AccessKeyId: AK, "
        "SecretAccessKey: \"${env:VG_TEST_SECRET}\"}\n");
    assert_int_equal(load_dir(dir, &d, &cfg), VG_ECONFIG);
    char *out = diag_text(&d, dir);
    assert_string_equal(out, "a.yaml:3:59: error: Egress.S3Storage.s3.SecretAccessKey: "
                             "environment variable VG_TEST_SECRET is not set\n");
    free(out);
    vg_diags_free(&d);
    rm_rf(dir);
    free(dir);
}

static void test_templates_and_filters(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "a.yaml",
        "Templates:\n"
        "  CollectionRuleTriggers:\n    Hot: {Type: CPUUsage}\n"
        "  CollectionRuleFilters:\n    App: {Key: ProcessName, Value: spin}\n"
        "  CollectionRuleLimits:\n    Once: {ActionCount: 1}\n"
        "CollectionRules:\n"
        "  R:\n    Trigger: Hot\n    Filters: [App, {CommandLine: '--x', "
        "MatchType: Contains}]\n    Limits: Once\n");
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load_dir(dir, &d, &cfg), 0);
    const struct vg_rule_settings *r = &cfg->settings.rules[0];
    assert_string_equal(vg_node_str(vg_node_get(r->trigger, "Type")), "CPUUsage");
    assert_int_equal(r->n_filters, 2);
    assert_int_equal(r->filters[0].key, VG_FILTER_PROCESS_NAME);
    assert_string_equal(r->filters[0].value, "spin");
    assert_int_equal(r->filters[1].key, VG_FILTER_COMMAND_LINE);
    assert_int_equal(r->filters[1].match, VG_MATCH_CONTAINS);
    assert_string_equal(vg_node_str(vg_node_get(r->limits, "ActionCount")), "1");
    vg_config_destroy(cfg);
    vg_diags_free(&d);

    put(dir, "a.yaml",
        "CollectionRules:\n  R:\n    Trigger: Hott\n    Filters: [{Key: Pid, "
        "Value: 1}]\n");
    assert_int_equal(load_dir(dir, &d, &cfg), VG_ECONFIG);
    char *out = diag_text(&d, dir);
    assert_string_equal(
        out, "a.yaml:3:14: error: CollectionRules.R.Trigger: no template \"Hott\" in "
             "Templates.CollectionRuleTriggers\n"
             "a.yaml:4:21: error: CollectionRules.R.Filters[0].Key: unknown filter key \"Pid\"; "
             "expected ProcessId, ProcessName, CommandLine, ManagedEntryPointAssemblyName, "
             "RuntimeId, User or Cgroup\n");
    free(out);
    vg_diags_free(&d);
    rm_rf(dir);
    free(dir);
}

/* Kubernetes mounts a ConfigMap as ..2026_x/ (real files), ..data -> ..2026_x, and visible
 * symlinks through ..data. Each file must be read once, through ..data. */
static void test_configmap_layout(void **state)
{
    (void)state;
    char *dir = make_dir();
    char *ts = vg_asprintf("%s/..2026_11_22_01_00_00.1", dir);
    assert_int_equal(mkdir(ts, 0755), 0);
    put(ts, "rules.yaml", "CollectionRules:\n  R: {Trigger: {Type: Startup}}\n");
    char *data = vg_asprintf("%s/..data", dir);
    assert_int_equal(symlink("..2026_11_22_01_00_00.1", data), 0);
    char *link = vg_asprintf("%s/rules.yaml", dir);
    assert_int_equal(symlink("..data/rules.yaml", link), 0);
    put(dir, ".hidden.yaml", "broken: [");
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load_dir(dir, &d, &cfg), 0);
    assert_int_equal(cfg->n_files, 1);
    assert_int_equal(cfg->settings.n_rules, 1);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    free(ts);
    free(data);
    free(link);
    rm_rf(dir);
    free(dir);
}

/* ---- hostile input ---- */

static void test_billion_laughs(void **state)
{
    (void)state;
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_puts(
        &b, "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for (char c = 'b'; c <= 'j'; c++)
        vg_buf_printf(&b, "%c: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n", c, c, c - 1, c - 1,
                      c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
    char *out = load_text("bomb.yaml", b.data, b.len, VG_ECONFIG);
    assert_contains(out, "error: document expands to more than 200000 nodes");
    free(out);
    vg_buf_free(&b);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    size_t depth = 100000;
    char *s = malloc(depth * 2 + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[depth * 2] = '\0';
    char *out = load_text("deep.yaml", s, depth * 2, VG_ECONFIG);
    assert_contains(out, "deep.yaml:1:65: error: nesting deeper than 64 levels");
    free(out);
    out = load_text("deep.json", s, depth * 2, VG_ECONFIG);
    assert_contains(out, "deep.json:1:65: error: nesting deeper than 64 levels");
    free(out);
    free(s);
}

static void test_huge_scalars_and_numbers(void **state)
{
    (void)state;
    size_t n = 2u << 20;
    char *s = malloc(n + 32);
    memcpy(s, "x: \"", 4);
    memset(s + 4, 'a', n);
    memcpy(s + 4 + n, "\"\n", 3);
    char *out = load_text("big.yaml", s, n + 6, VG_ECONFIG);
    assert_contains(out, "big.yaml:1:4: error: value is too long");
    free(out);
    free(s);
    const char *num = "Discovery: {PollInterval: 99999999999999999999999999999999999d}\n"
                      "Server: {MaxConnections: 1e400, MaxBodyBytes: 18446744073709551616000}\n";
    out = load_text("num.yaml", num, strlen(num), VG_ECONFIG);
    assert_contains(out, "num.yaml:1:27: error: Discovery.PollInterval: expected a duration");
    assert_contains(out, "(out of range)");
    assert_contains(out, "num.yaml:2:26: error: Server.MaxConnections: expected an integer");
    assert_contains(out, "num.yaml:2:47: error: Server.MaxBodyBytes: expected a size");
    free(out);
}

static void test_invalid_utf8_and_binary(void **state)
{
    (void)state;
    const char bad[] = "CollectionRules:\n  R\xff\xfe: {}\n";
    char *out = load_text("bad.yaml", bad, sizeof(bad) - 1, VG_ECONFIG);
    assert_contains(out, "bad.yaml:2:4: error: YAML syntax error: invalid leading UTF-8 octet");
    free(out);
    const char badj[] = "{\"a\": \"\xc3\x28\"}";
    out = load_text("bad.json", badj, sizeof(badj) - 1, VG_ECONFIG);
    assert_contains(out, "bad.json:1:8: error: JSON syntax error: invalid UTF-8 (found byte 0xc3)");
    free(out);
    unsigned char junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(junk); i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (unsigned char)(x >> 16);
    }
    out = load_text("junk.yaml", (const char *)junk, sizeof(junk), VG_ECONFIG);
    assert_contains(out, "junk.yaml:");
    assert_contains(out, "error:");
    free(out);
    out = load_text("junk.json", (const char *)junk, sizeof(junk), VG_ECONFIG);
    assert_contains(out, "junk.json:1:1: error: JSON syntax error");
    free(out);
}

static void test_empty_and_shapes(void **state)
{
    (void)state;
    char *out = load_text("empty.yaml", "", 0, 0);
    assert_string_equal(out, "empty.yaml:1:1: warning: file is empty; nothing to load\n");
    free(out);
    out = load_text("list.yaml", "- a\n- b\n", 8, VG_ECONFIG);
    assert_string_equal(out, "list.yaml:1:1: error: the top level must be a mapping of "
                             "sections, got a list\n");
    free(out);
    out = load_text("two.yaml", "a: 1\n---\nb: 2\n", 14, VG_ECONFIG);
    assert_contains(out, "two.yaml:2:1: error: more than one YAML document in a file");
    free(out);
    out = load_text("dup.yaml", "Server: {}\nserver: {}\n", 22, VG_ECONFIG);
    assert_string_equal(out, "dup.yaml:2:1: error: duplicate key \"server\" (first at line 1; "
                             "keys are case-insensitive)\n");
    free(out);
}

static void test_ten_thousand_files(void **state)
{
    (void)state;
    char *dir = make_dir();
    for (int i = 0; i < 10000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "r%05d.yaml", i);
        put(dir, name, "Discovery: {PollInterval: 1s}\n");
    }
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load_dir(dir, &d, &cfg), VG_ECONFIG);
    assert_int_equal(d.errors, 1);
    assert_non_null(strstr(d.v[0].msg, "too many configuration files (10000; the limit is 4096)"));
    vg_diags_free(&d);
    /* Just under the limit: every file is read, once. */
    for (int i = 4000; i < 10000; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%s/r%05d.yaml", dir, i);
        unlink(name);
    }
    assert_int_equal(load_dir(dir, &d, &cfg), 0);
    assert_int_equal(cfg->n_files, 4000);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    rm_rf(dir);
    free(dir);
}

static void test_missing_dir(void **state)
{
    (void)state;
    const char *dirs[] = {"/nonexistent/vigil-config"};
    struct vg_diags d;
    struct vg_config *cfg;
    vg_diags_init(&d);
    assert_int_equal(vg_config_load(dirs, 1, &d, &cfg), VG_ECONFIG);
    char *line = vg_diag_format(&d.v[0]);
    assert_string_equal(line, "/nonexistent/vigil-config: error: cannot read configuration "
                              "directory: No such file or directory");
    free(line);
    vg_diags_free(&d);
}

/* Resolved secret values are masked in any text: whole, and a URL's host and user info; the
 * longest first, so a value holding another is masked whole; short values are left alone. */
static void test_redact(void **state)
{
    (void)state;
    vg_redact_reset();
    char s[256];
    snprintf(s, sizeof(s), "nothing registered: hunter2");
    assert_false(vg_redact(s));
    vg_redact_add("abc"); /* too short */
    vg_redact_add("hunter2");
    vg_redact_add("https://user:pw1234@blob.example.net:8443/c?sig=xyz");
    vg_redact_add("xxhunter2yy");
    assert_true(vg_redact_active());
    snprintf(s, sizeof(s), "a hunter2, b xxhunter2yy, c abc");
    assert_true(vg_redact(s));
    assert_string_equal(s, "a ***, b ***, c abc");
    snprintf(s, sizeof(s), "Could not resolve host: blob.example.net; %s",
             "PUT https://user:pw1234@blob.example.net:8443/c?sig=xyz failed");
    assert_true(vg_redact(s));
    assert_string_equal(s, "Could not resolve host: ***; PUT *** failed");
    snprintf(s, sizeof(s), "to blob.example.net:8443 as user:pw1234");
    assert_true(vg_redact(s));
    assert_string_equal(s, "to *** as ***");
    vg_redact_reset();
    assert_false(vg_redact_active());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_yaml_positions_and_case),
        cmocka_unit_test(test_json_positions_comments),
        cmocka_unit_test(test_merge_order),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_egress_settings_and_secrets),
        cmocka_unit_test(test_templates_and_filters),
        cmocka_unit_test(test_configmap_layout),
        cmocka_unit_test(test_billion_laughs),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_huge_scalars_and_numbers),
        cmocka_unit_test(test_invalid_utf8_and_binary),
        cmocka_unit_test(test_empty_and_shapes),
        cmocka_unit_test(test_ten_thousand_files),
        cmocka_unit_test(test_missing_dir),
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
