/* Unit tests for the configuration sources dotnet-monitor reads: key-per-file directories,
 * environment variables, their precedence, index-keyed lists, origins, the last good content
 * of a file, and the dotnet-monitor sections typed from them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config_test.h"

#include "config/config.h"
#include "config/error.h"
#include "config/listen.h"
#include "config/log.h"
#include "config/source.h"
#include "config/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int load(const char *dir, const char *const *envp, struct vg_source_cache *cache,
                struct vg_diags *d, struct vg_config **cfg)
{
    const char *dirs[] = {dir};
    struct vg_config_options o = {
        .dirs = dirs, .n_dirs = dir ? 1 : 0, .envp = envp, .cache = cache};
    vg_diags_init(d);
    return vg_config_load_opts(&o, d, cfg);
}

static const struct vg_node *at(const struct vg_config *cfg, const char *a, const char *b,
                                const char *c)
{
    const struct vg_node *n = vg_node_get(vg_tree_root(cfg->tree), a);
    if (b)
        n = vg_node_get(n, b);
    if (c)
        n = vg_node_get(n, c);
    return n;
}

/* A mounted ConfigMap: one file per key, `__` between keys, the value as content. */
static void test_key_per_file(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "settings.json",
        "{\"CollectionRules\": {\"HighCpu\": {\"Limits\": {\"ActionCount\": 9}}},"
        " \"Egress\": {\"FileSystem\": {\"out\": {\"directoryPath\": \"/from-json\"}}}}");
    put(dir, "CollectionRules__HighCpu__Trigger__Type", "CPUUsage");
    put(dir, "CollectionRules__HighCpu__Trigger__Settings__GreaterThan", "80\n");
    put(dir, "collectionrules__highcpu__filters__0__key", "ProcessName");
    put(dir, "CollectionRules__HighCpu__Filters__0__Value", "dotnet");
    put(dir, "CollectionRules__HighCpu__Actions__0__Type", "CollectDump");
    put(dir, "CollectionRules__HighCpu__Actions__0__Settings__Egress", "out");
    put(dir, "CollectionRules__HighCpu__Limits__ActionCount", "2");
    put(dir, "Egress__FileSystem__out__directoryPath", "/from-key");
    put(dir, "ignore.notes", "anything");
    put(dir, ".hidden", "anything");
    put(dir, "README.md", "read me");
    put(dir, "CollectonRules__X", "typo");
    char *sub = vg_asprintf("%s/rules.d", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load(dir, NULL, NULL, &d, &cfg), 0);
    char *out = diag_text(&d, dir);
    assert_string_equal(
        out, "CollectonRules__X: warning: not read: neither a YAML/JSON file nor a key-per-file "
             "entry (did you mean \"CollectionRules\" as its first key?)\n"
             "README.md: warning: not read: neither a YAML/JSON file (.yaml, .yml, .json) nor a "
             "key-per-file entry (a name such as CollectionRules__NAME__Trigger__Type)\n"
             "rules.d: warning: not read: a directory (give it its own --config-dir to read it)\n");
    free(out);
    assert_int_equal(cfg->n_files, 9);
    assert_int_equal(cfg->settings.n_rules, 1);
    const struct vg_rule_settings *r = &cfg->settings.rules[0];
    assert_int_equal(r->n_filters, 1);
    assert_int_equal(r->filters[0].key, VG_FILTER_PROCESS_NAME);
    assert_string_equal(r->filters[0].value, "dotnet");
    /* the index-keyed Filters/Actions became lists */
    assert_int_equal(r->actions->kind, VG_NODE_SEQ);
    /* one trailing newline is dropped, as .NET's key-per-file provider does */
    const struct vg_node *gt = vg_node_get(vg_node_get(r->trigger, "Settings"), "GreaterThan");
    assert_string_equal(vg_node_str(gt), "80");
    /* key-per-file is read after the directory's documents: it wins */
    assert_string_equal(vg_config_egress(cfg, "out")->u.fs.directory_path, "/from-key");
    const struct vg_node *ac = vg_node_get(r->limits, "ActionCount");
    assert_string_equal(vg_node_str(ac), "2");
    /* origins: the key file, no line */
    char *want = vg_asprintf("%s/CollectionRules__HighCpu__Limits__ActionCount", dir);
    assert_string_equal(ac->pos.file, want);
    assert_int_equal(ac->pos.line, 0);
    free(want);
    /* --show says where each value came from */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vg_config_show(cfg, f, VG_SHOW_SOURCES);
    fclose(f);
    assert_contains(buf, "\"ActionCount\": \"2\" /* ");
    assert_contains(buf, "CollectionRules__HighCpu__Limits__ActionCount */");
    free(buf);
    vg_config_destroy(cfg);
    vg_diags_free(&d);

    /* a value with a NUL byte is not text; a name with an empty key is refused */
    put(dir, "Egress__FileSystem____directoryPath", "/x");
    char *bin = vg_asprintf("%s/Storage__StateDir", dir);
    FILE *bf = fopen(bin, "wb");
    fwrite("/a\0b", 1, 4, bf);
    fclose(bf);
    assert_int_equal(load(dir, NULL, NULL, &d, &cfg), VG_ECONFIG);
    out = diag_text(&d, dir);
    assert_contains(out, "Egress__FileSystem____directoryPath: error: key-per-file name has an "
                         "empty key between \"__\" separators");
    assert_contains(out, "Storage__StateDir: error: key-per-file value is not text");
    free(out);
    vg_diags_free(&d);
    free(bin);
    free(sub);
    rm_rf(dir);
    free(dir);
}

/* dotnet-monitor's documented example: DotnetMonitor_ variables win over unprefixed ones, which
 * lose to files; the prefix is case-insensitive, keys too. */
static void test_environment(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "a.yaml", "DefaultProcess:\n  Filters:\n    - {Key: ProcessName, Value: fromfile}\n");
    const char *envp[] = {
        "PATH=/usr/bin",
        "DefaultProcess__Filters__0__Key=ProcessId",
        "DefaultProcess__Filters__0__MatchType=Contains",
        "DotnetMonitor_DefaultProcess__Filters__0__Value=myapp",
        "DOTNETMONITOR_storage__defaultsharedpath=/diag",
        "dotnetmonitor_GlobalCounter__IntervalSeconds= 10 ",
        "DotnetMonitor_Metrics__IncludeDefaultProviders=False",
        "DotnetMonitor_Unknown__Key=1",
        "Unrelated__Key=1",
        "ASPNETCORE_URLS=http://+:6000",
        NULL,
    };
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load(dir, envp, NULL, &d, &cfg), 0);
    char *out = diag_text(&d, dir);
    assert_string_equal(out, "env:DotnetMonitor_Unknown__Key: warning: Unknown: unknown setting, "
                             "ignored\n");
    free(out);
    assert_int_equal(cfg->n_env, 8);
    const struct vg_filter_list *dp = &cfg->settings.default_process;
    assert_int_equal(dp->n, 1);
    assert_int_equal(dp->v[0].key, VG_FILTER_PROCESS_NAME); /* the file beats the plain variable */
    assert_string_equal(dp->v[0].value, "myapp");           /* the prefixed one beats the file */
    assert_int_equal(dp->v[0].match, VG_MATCH_CONTAINS);    /* a key only the plain one sets */
    assert_string_equal(cfg->settings.storage.default_shared_path, "/diag");
    assert_string_equal(cfg->settings.storage.dump_temp_folder, "/diag/dumps");
    assert_string_equal(cfg->settings.storage.shared_library_path, "/diag/libs");
    /* strings from the environment convert where .NET converts them ("False", " 10 ") */
    assert_true(cfg->settings.global_counter.interval_seconds == 10.0);
    assert_false(cfg->settings.metrics.include_default_providers);
    assert_int_equal(cfg->settings.server.n_listen, 1);
    assert_true(cfg->settings.server.listen[0].any);
    assert_int_equal(cfg->settings.server.listen[0].port, 6000);
    const struct vg_node *v = at(cfg, "Storage", "DefaultSharedPath", NULL);
    assert_string_equal(v->pos.file, "env:DOTNETMONITOR_storage__defaultsharedpath");
    vg_config_destroy(cfg);
    vg_diags_free(&d);

    /* two variables for one key: the later name wins and the other is reported */
    const char *twice[] = {"DOTNETMONITOR_Urls=http://127.0.0.1:1",
                           "DotnetMonitor_Urls=http://127.0.0.1:2", NULL};
    assert_int_equal(load(NULL, twice, NULL, &d, &cfg), 0);
    out = diag_text(&d, NULL);
    assert_string_equal(out, "env:DotnetMonitor_Urls: warning: sets the same key as "
                             "DOTNETMONITOR_Urls, which is ignored\n");
    free(out);
    assert_string_equal(cfg->settings.server.urls[0], "http://127.0.0.1:2");
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    rm_rf(dir);
    free(dir);
}

/* Lists merge element by element across sources; {"0": ...} is a list; names chosen by the
 * user stay names even when they are digits. */
static void test_lists_merge_by_index(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "a.json",
        "{\"Egress\": {\"FileSystem\": {\"1\": {\"DirectoryPath\": \"/one\"}}},"
        " \"CollectionRules\": {\"7\": {\"Trigger\": {\"Type\": \"Startup\"},"
        "   \"Actions\": [{\"Type\": \"CollectDump\", \"Settings\": {\"Egress\": \"1\"}},"
        "                 {\"Type\": \"Execute\", \"Settings\": {\"Path\": \"/bin/true\"}}]},"
        "  \"Indexed\": {\"Trigger\": {\"Type\": \"Startup\"},"
        "   \"Filters\": {\"1\": {\"ProcessName\": \"b\"}, \"0\": {\"ProcessName\": \"a\"}}}}}");
    const char *envp[] = {
        "DotnetMonitor_CollectionRules__7__Actions__0__Settings__Type=Mini",
        "DotnetMonitor_CollectionRules__7__Actions__2__Type=Execute",
        "DotnetMonitor_CollectionRules__7__Actions__2__Settings__Path=/bin/false",
        NULL,
    };
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load(dir, envp, NULL, &d, &cfg), 0);
    assert_int_equal(d.n, 0);
    assert_non_null(vg_config_egress(cfg, "1"));
    assert_int_equal(cfg->settings.n_rules, 2);
    const struct vg_rule_settings *r = &cfg->settings.rules[0];
    assert_string_equal(r->name, "7");
    assert_int_equal(r->actions->n, 3);
    const struct vg_node *s0 = vg_node_get(r->actions->items[0], "Settings");
    assert_string_equal(vg_node_str(vg_node_get(s0, "Egress")), "1");
    assert_string_equal(vg_node_str(vg_node_get(s0, "Type")), "Mini");
    assert_string_equal(
        vg_node_str(vg_node_get(vg_node_get(r->actions->items[1], "Settings"), "Path")),
        "/bin/true");
    assert_string_equal(
        vg_node_str(vg_node_get(vg_node_get(r->actions->items[2], "Settings"), "Path")),
        "/bin/false");
    const struct vg_rule_settings *ix = &cfg->settings.rules[1];
    assert_int_equal(ix->n_filters, 2); /* in index order, not written order */
    assert_string_equal(ix->filters[0].value, "a");
    assert_string_equal(ix->filters[1].value, "b");
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    rm_rf(dir);
    free(dir);
}

static void test_diagnostic_port(void **state)
{
    (void)state;
    struct vg_diags d;
    struct vg_config *cfg;
    /* the short form from one variable wins over the long form from another */
    const char *both[] = {"DotnetMonitor_DiagnosticPort=/diag/port.sock",
                          "DotnetMonitor_DiagnosticPort__ConnectionMode=Connect",
                          "DotnetMonitor_DiagnosticPort__MaxConnections=10", NULL};
    assert_int_equal(load(NULL, both, NULL, &d, &cfg), 0);
    const struct vg_diagnostic_port_settings *p = &cfg->settings.diagnostic_port;
    assert_int_equal(p->mode, VG_DIAG_PORT_LISTEN);
    assert_string_equal(p->endpoint_name, "/diag/port.sock");
    assert_int_equal(p->max_connections, 10);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    /* Listen with DefaultSharedPath: the socket is DIR/dotnet-monitor.sock */
    const char *shared[] = {"DOTNETMONITOR_DiagnosticPort__ConnectionMode=listen",
                            "DOTNETMONITOR_Storage__DefaultSharedPath=/diag",
                            "DOTNETMONITOR_DiagnosticPort__DeleteEndpointOnStartup=true", NULL};
    assert_int_equal(load(NULL, shared, NULL, &d, &cfg), 0);
    p = &cfg->settings.diagnostic_port;
    assert_int_equal(p->mode, VG_DIAG_PORT_LISTEN);
    assert_string_equal(p->endpoint_name, "/diag/dotnet-monitor.sock");
    assert_true(p->delete_endpoint_on_startup);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    /* Listen without a path is an error; Connect is the default */
    const char *nopath[] = {"DotnetMonitor_DiagnosticPort__ConnectionMode=Listen", NULL};
    assert_int_equal(load(NULL, nopath, NULL, &d, &cfg), VG_ECONFIG);
    char *out = diag_text(&d, NULL);
    assert_contains(out, "error: DiagnosticPort.EndpointName: Listen mode needs the socket path");
    free(out);
    vg_diags_free(&d);
    assert_int_equal(load(NULL, NULL, NULL, &d, &cfg), 0);
    assert_int_equal(cfg->settings.diagnostic_port.mode, VG_DIAG_PORT_CONNECT);
    assert_null(cfg->settings.diagnostic_port.endpoint_name);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
}

static void test_listen_urls(void **state)
{
    (void)state;
    static const struct {
        const char *text, *canonical;
        bool any, warn;
        int port;
    } ok[] = {
        {"http://+:52323", "http://0.0.0.0:52323", true, false, 52323},
        {"http://*:52325", "http://0.0.0.0:52325", true, false, 52325},
        {"http://[::]:52323", "http://0.0.0.0:52323", true, false, 52323},
        {"http://[::1]:8080/", "http://[::1]:8080", false, false, 8080},
        {"http://localhost:52323", "http://127.0.0.1:52323", false, false, 52323},
        {"  http://10.1.2.3:0 ", "http://10.1.2.3:0", false, false, 0},
        {"http://0.0.0.0:1", "http://0.0.0.0:1", false, false, 1},
        {"http://monitor.local:9", "http://0.0.0.0:9", true, true, 9},
        {"http://127.0.0.1", "http://127.0.0.1:80", false, false, 80},
        {"unix:/run/vigil.sock", "unix:/run/vigil.sock", false, false, 0},
        {"http://unix:/run/v.sock", "unix:/run/v.sock", false, false, 0},
    };
    for (size_t i = 0; i < VG_ARRAY_SIZE(ok); i++) {
        struct vg_listen_url u;
        char err[160];
        const char *warn;
        assert_int_equal(vg_listen_url_parse(ok[i].text, &u, err, sizeof(err), &warn), 0);
        assert_string_equal(u.canonical, ok[i].canonical);
        assert_int_equal(u.any, ok[i].any);
        assert_int_equal(warn != NULL, ok[i].warn);
        assert_int_equal(u.port, ok[i].port);
        vg_listen_url_free(&u);
    }
    static const char *const bad[][2] = {
        {"https://+:52323", "https is not served by vigil"},
        {"ftp://x:1", "expected http://HOST:PORT or unix:/path"},
        {"http://+:99999", "port out of range"},
        {"http://+:52323/api", "a listen URL has no path"},
        {"http://[::1:5", "closing ']'"},
        {"http://300.1.1.1:5", "not an IPv4 address"},
        {"http://:5", "expected a host"},
        {"unix:", "expected a socket path"},
    };
    for (size_t i = 0; i < VG_ARRAY_SIZE(bad); i++) {
        struct vg_listen_url u;
        char err[160];
        const char *warn;
        assert_int_equal(vg_listen_url_parse(bad[i][0], &u, err, sizeof(err), &warn), VG_EINVAL);
        assert_contains(err, bad[i][1]);
    }
    /* several, separated by ';', from dotnet-monitor's Urls; Metrics.Endpoints apart */
    const char *envp[] = {"DotnetMonitor_Urls=http://+:52323;http://localhost:5000",
                          "DotnetMonitor_Metrics__Endpoints=http://*:52325", NULL};
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load(NULL, envp, NULL, &d, &cfg), 0);
    const struct vg_server_settings *s = &cfg->settings.server;
    assert_int_equal(s->n_urls, 2);
    assert_string_equal(s->urls[0], "http://0.0.0.0:52323");
    assert_string_equal(s->urls[1], "http://127.0.0.1:5000");
    assert_int_equal(s->n_metrics_urls, 1);
    assert_string_equal(s->metrics_listen[0].text, "http://*:52325");
    assert_int_equal(s->metrics_max_connections, 16);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
}

/* A file that no longer parses keeps its last good content when the loader has a cache. */
static void test_last_good_content(void **state)
{
    (void)state;
    char *dir = make_dir();
    struct vg_source_cache *cache = vg_source_cache_create();
    put(dir, "rules.yaml", "CollectionRules:\n  R: {Trigger: {Type: Startup}}\n");
    put(dir, "other.yaml", "Discovery: {PollInterval: 2s}\n");
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load(dir, NULL, cache, &d, &cfg), 0);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    put(dir, "rules.yaml", "CollectionRules:\n  R: {Trigger: [\n");
    assert_int_equal(load(dir, NULL, cache, &d, &cfg), 0);
    char *out = diag_text(&d, dir);
    assert_contains(out, "rules.yaml:3:1: warning: YAML syntax error");
    assert_contains(out, "rules.yaml: warning: no longer parses; its last good content (read ");
    free(out);
    assert_int_equal(cfg->settings.n_rules, 1);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    /* without a cache (vigil check) it is an error */
    assert_int_equal(load(dir, NULL, NULL, &d, &cfg), VG_ECONFIG);
    vg_diags_free(&d);
    /* a removed file is forgotten: broken again later, nothing to fall back on */
    char *p = vg_asprintf("%s/rules.yaml", dir);
    unlink(p);
    assert_int_equal(load(dir, NULL, cache, &d, &cfg), 0);
    assert_int_equal(cfg->settings.n_rules, 0);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    put(dir, "rules.yaml", "CollectionRules: [\n");
    assert_int_equal(load(dir, NULL, cache, &d, &cfg), VG_ECONFIG);
    vg_diags_free(&d);
    free(p);
    vg_source_cache_destroy(cache);
    rm_rf(dir);
    free(dir);
}

/* A key given a value and settings by different sources: settings win, with a warning. */
static void test_value_and_settings(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "a.yaml", "CollectionRules:\n  R:\n    Trigger: {Type: Startup}\n");
    const char *envp[] = {"DotnetMonitor_CollectionRules__R__Trigger=Hot", NULL};
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load(dir, envp, NULL, &d, &cfg), 0);
    char *out = diag_text(&d, dir);
    assert_string_equal(out, "env:DotnetMonitor_CollectionRules__R__Trigger: warning: "
                             "CollectionRules.R.Trigger: both a value (\"Hot\") and settings are "
                             "given for this key; the value is ignored\n");
    free(out);
    assert_int_equal(cfg->settings.n_rules, 1);
    assert_non_null(cfg->settings.rules[0].trigger);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    rm_rf(dir);
    free(dir);
}

static void test_metrics_logging_counters(void **state)
{
    (void)state;
    char *dir = make_dir();
    put(dir, "Metrics__Providers__0__ProviderName", "MyProvider");
    put(dir, "Metrics__Providers__0__CounterNames__0", "MyCounter1");
    put(dir, "Metrics__Providers__0__CounterNames__1", "MyCounter2");
    put(dir, "Metrics__Meters__0__MeterName", "MyCustomMeter");
    put(dir, "Metrics__Meters__1__MeterName", "AnotherMeter");
    put(dir, "Metrics__MetricCount", "6");
    put(dir, "GlobalCounter__Providers__System.Runtime__IntervalSeconds", "10");
    put(dir, "GlobalCounter__MaxHistograms", "5");
    put(dir, "Logging__LogLevel__Default", "Debug");
    put(dir, "Logging__LogLevel__Microsoft", "Warning");
    put(dir, "Logging__Console__FormatterName", "json");
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load(dir, NULL, NULL, &d, &cfg), 0);
    char *out = diag_text(&d, dir);
    assert_string_equal(out, "Logging__LogLevel__Microsoft: warning: Logging.LogLevel.Microsoft: "
                             "log levels per .NET logger category are not applied: vigil has one "
                             "level, set by Logging.LogLevel.Default\n");
    free(out);
    const struct vg_metrics_settings *m = &cfg->settings.metrics;
    assert_int_equal(m->metric_count, 6);
    assert_int_equal(m->n_providers, 1);
    assert_string_equal(m->providers[0].name, "MyProvider");
    assert_int_equal(m->providers[0].counters.n, 2);
    assert_string_equal(m->providers[0].counters.v[1], "MyCounter2");
    assert_int_equal(m->n_meters, 2);
    assert_int_equal(m->meters[1].counters.n, 0);
    const struct vg_global_counter_settings *g = &cfg->settings.global_counter;
    assert_true(g->interval_seconds == 5.0);
    assert_int_equal(g->max_histograms, 5);
    assert_int_equal(g->n_providers, 1);
    assert_string_equal(g->providers[0].name, "System.Runtime");
    assert_true(g->providers[0].interval_seconds == 10.0);
    assert_int_equal(cfg->settings.logging.level, VG_LOG_DEBUG);
    assert_int_equal(cfg->settings.logging.format, VG_LOG_JSON);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    /* bad values are errors, not swallowed */
    put(dir, "Logging__LogLevel__Default", "Verbose");
    put(dir, "GlobalCounter__IntervalSeconds", "0.5");
    put(dir, "Metrics__MetricCount", "many");
    assert_int_equal(load(dir, NULL, NULL, &d, &cfg), VG_ECONFIG);
    out = diag_text(&d, dir);
    assert_contains(out, "Logging__LogLevel__Default: error: Logging.LogLevel.Default: expected a "
                         "log level (Trace, Debug, Information, Warning, Error, Critical, None)");
    assert_contains(out, "GlobalCounter__IntervalSeconds: error: GlobalCounter.IntervalSeconds: "
                         "expected a number 1-86400, got \"0.5\" (out of range)");
    assert_contains(out, "Metrics__MetricCount: error: Metrics.MetricCount: expected an integer");
    free(out);
    vg_diags_free(&d);
    rm_rf(dir);
    free(dir);
}

/* base64url JWK as generatekey prints it (PascalCase .NET property names). */
static void test_monitor_api_key(void **state)
{
    (void)state;
    struct vg_buf jwk;
    vg_buf_init(&jwk);
    /* P-384 coordinates are 48 bytes: 64 base64url characters */
    const char *x = "HoRnFAHRg5j-hmwUgcXk5ESuHyjH_57Yf4AkPLEhI5QOTnRugE192Xz_VqcBJRNx";
    const char *y = "JyvkQQ4jAQPd5Vf1OIF_tkhzyV-VCMdUttelaY2a8WmileII4MzaYp9j6EVbRUFi";
    char *json = vg_asprintf("{\"AdditionalData\":{},\"Crv\":\"P-384\",\"KeyOps\":[],\"Kty\":"
                             "\"EC\",\"X\":\"%s\",\"X5c\":[],\"Y\":\"%s\",\"KeySize\":384,"
                             "\"HasPrivateKey\":false}",
                             x, y);
    /* base64url encode by hand (the config layer only decodes) */
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(json);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)json[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)json[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)json[i + 2];
        char c[4] = {al[v >> 18 & 63], al[v >> 12 & 63], al[v >> 6 & 63], al[v & 63]};
        vg_buf_append(&jwk, c, i + 2 < n ? 4 : i + 1 < n ? 3 : 2);
    }
    free(json);
    char *pk = vg_asprintf("DotnetMonitor_Authentication__MonitorApiKey__PublicKey=%s", jwk.data);
    const char *envp[] = {"DotnetMonitor_Authentication__MonitorApiKey__Subject=ae5473b6", pk,
                          NULL};
    struct vg_diags d;
    struct vg_config *cfg;
    assert_int_equal(load(NULL, envp, NULL, &d, &cfg), 0);
    const struct vg_monitor_api_key *k = cfg->settings.server.api_jwt;
    assert_non_null(k);
    assert_string_equal(k->subject, "ae5473b6");
    assert_string_equal(k->kty, "EC");
    assert_string_equal(k->issuer,
                        "https://github.com/dotnet/dotnet-monitor/generatekey+MonitorApiKey");
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    /* the documentation's example key is deliberately corrupted: refused, as dotnet-monitor does */
    const char *doc[] = {
        "DotnetMonitor_Authentication__MonitorApiKey__Subject=ae5473b6-8dad-498d-b915-ffffffffffff",
        "DotnetMonitor_Authentication__MonitorApiKey__PublicKey=eyffffffffffffFsRGF0YSI6e30sIkNyd"
        "iI6IlAtMzg0IiwiS2V5T3BzIjpbXSwiS3R5IjoiRUMiLCJYIjoiTnhIRnhVZ19QM1dhVUZWVzk0U3dUY3FzVk5z"
        "NlFLYjZxc3AzNzVTRmJfQ3QyZHdpN0RWRl8tUTVheERtYlJuWSIsIlg1YyI6W10sIlkiOiJmMXBDdmNoUkVpTWEt"
        "c1h6SlZQaS02YmViMHdrZmxfdUZBN0Vka2dwcjF5N251Wmk2cy1NcHl5RzhKdVFSNWZOIiwiS2V5U2l6ZSI6Mzg0"
        "LCJIYXNQcml2YXRlS2V5IjpmYWxzZSwiQ3J5cHRvUHJvdmlkZXJGYWN0b3J5Ijp7IkNyeXB0b1Byb3ZpZGVyQ2Fj"
        "aGUiOnt9LCJDYWNoZVNpZ25hdHVyZVByb3ZpZGVycyI6dHJ1ZSwiU2lnbmF0dXJlUHJvdmlkZXJPYmplY3RQb29s"
        "Q2FjaGffffffffffff19",
        NULL};
    assert_int_equal(load(NULL, doc, NULL, &d, &cfg), VG_ECONFIG);
    char *out = diag_text(&d, NULL);
    assert_contains(out, "Authentication.MonitorApiKey.PublicKey: the decoded PublicKey is not a "
                         "JSON Web Key");
    free(out);
    vg_diags_free(&d);
    const char *sym[] = {"DotnetMonitor_Authentication__MonitorApiKey__Subject=s",
                         "DotnetMonitor_Authentication__MonitorApiKey__PublicKey="
                         "eyJrdHkiOiJvY3QiLCJrIjoiYWJjIn0", /* {"kty":"oct","k":"abc"} */
                         NULL};
    assert_int_equal(load(NULL, sym, NULL, &d, &cfg), VG_ECONFIG);
    out = diag_text(&d, NULL);
    assert_contains(out, "the JSON Web Key's kty must be EC or RSA");
    free(out);
    vg_diags_free(&d);
    free(pk);
    vg_buf_free(&jwk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_per_file),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_lists_merge_by_index),
        cmocka_unit_test(test_diagnostic_port),
        cmocka_unit_test(test_listen_urls),
        cmocka_unit_test(test_last_good_content),
        cmocka_unit_test(test_value_and_settings),
        cmocka_unit_test(test_metrics_logging_counters),
        cmocka_unit_test(test_monitor_api_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
