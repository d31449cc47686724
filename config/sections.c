/* dotnet-monitor's sections besides rules, egress and listeners: each is validated as
 * dotnet-monitor's options are, kept in typed settings where vigil (or its .NET adapter) uses it,
 * and reported with a warning where vigil does not apply it; nothing is dropped silently. */
#include "config/config_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/source.h"
#include "config/util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FLD(name, type, st, member, setm, lo, hi)                                                  \
    {                                                                                              \
        name, type, offsetof(st, member), setm, lo, hi, NULL, false, NULL                          \
    }
#define SETOF(st, m) offsetof(st, m)

static void warn_at_key(struct vg__loader *L, const struct vg_node *map, const char *key,
                        const char *path, const char *msg)
{
    const struct vg_pair *p = vg_node_get_pair(map, key);
    if (p)
        vg_diag_warn(L->d, &p->key_pos, path, "%s", msg);
}

/* ---------- DiagnosticPort ---------- */

static const char *const port_modes[] = {"Connect", "Listen", NULL};

struct port_raw {
    int mode;
    const char *endpoint;
    int64_t max_connections;
    bool delete_on_startup, mode_set;
};

static const struct vg_field port_fields[] = {
    {"ConnectionMode", VG_FIELD_ENUM, offsetof(struct port_raw, mode),
     SETOF(struct port_raw, mode_set), 0, 0, port_modes, false, NULL},
    FLD("EndpointName", VG_FIELD_STRING, struct port_raw, endpoint, VG_NO_SET, 0, 0),
    FLD("MaxConnections", VG_FIELD_INT, struct port_raw, max_connections, VG_NO_SET, 0,
        2147483647.0),
    FLD("DeleteEndpointOnStartup", VG_FIELD_BOOL, struct port_raw, delete_on_startup, VG_NO_SET, 0,
        0),
};

static int load_diagnostic_port(struct vg__loader *L)
{
    struct vg_diagnostic_port_settings *o = &L->cfg->settings.diagnostic_port;
    const struct vg_pair *pr = vg_node_get_pair(L->root, "DiagnosticPort");
    const struct vg_node *n = pr ? pr->value : NULL;
    struct port_raw r = {0};
    o->mode = VG_DIAG_PORT_CONNECT;
    if (vg_node_is_null(n))
        return 0;
    const struct vg_node *short_form = n->kind == VG_NODE_SCALAR ? n : n->section_value;
    if (n->kind == VG_NODE_MAP)
        vg_fields_apply(L->t, port_fields, VG_ARRAY_SIZE(port_fields), n, NULL, "DiagnosticPort",
                        &r, L->d);
    else if (n->kind != VG_NODE_SCALAR)
        vg_diag_err(L->d, &n->pos, "DiagnosticPort",
                    "expected a socket path (Listen mode) or {ConnectionMode, EndpointName, "
                    "MaxConnections, DeleteEndpointOnStartup}, got a %s",
                    vg_node_kind_name(n->kind));
    o->mode = (enum vg_diag_port_mode)r.mode;
    o->endpoint_name = r.endpoint;
    o->max_connections = (unsigned)r.max_connections;
    o->delete_endpoint_on_startup = r.delete_on_startup;
    if (short_form && short_form->str && *short_form->str) {
        /* the simplified format wins over the expanded one (dotnet-monitor's rule) */
        o->mode = VG_DIAG_PORT_LISTEN;
        o->endpoint_name = short_form->str;
    }
    const char *shared = L->cfg->settings.storage.default_shared_path;
    if (o->mode == VG_DIAG_PORT_LISTEN && !o->endpoint_name && shared) {
        char *p = vg_asprintf("%s/dotnet-monitor.sock", shared);
        o->endpoint_name = p ? vg_tree_strdup(L->t, p) : NULL;
        free(p);
        if (!o->endpoint_name)
            return VG_ENOMEM;
    }
    if (o->mode == VG_DIAG_PORT_LISTEN && !o->endpoint_name)
        vg_diag_err(L->d, &n->pos, "DiagnosticPort.EndpointName",
                    "Listen mode needs the socket path: set EndpointName (or "
                    "Storage.DefaultSharedPath, which makes it DIR/dotnet-monitor.sock)");
    if (o->mode == VG_DIAG_PORT_CONNECT && n->kind == VG_NODE_MAP)
        for (size_t i = 0; i < n->n; i++) {
            const char *k = n->pairs[i].key;
            if (strcasecmp(k, "ConnectionMode") != 0 && !vg_node_is_null(n->pairs[i].value)) {
                char *p = vg_path_join("DiagnosticPort", k);
                vg_diag_warn(L->d, &n->pairs[i].key_pos, p,
                             "only used in Listen mode; ConnectionMode is Connect");
                free(p);
            }
        }
    return 0;
}

/* ---------- DefaultProcess ---------- */

static int load_default_process(struct vg__loader *L)
{
    const struct vg_node *dp = vg_node_get(L->root, "DefaultProcess");
    if (vg_node_is_null(dp) || !vg__cfg_expect(L, dp, VG_NODE_MAP, "DefaultProcess"))
        return 0;
    static const char *const keys[] = {"Filters", NULL};
    vg__cfg_check_keys(L, dp, "DefaultProcess", keys);
    const struct vg_node *f = vg_node_get(dp, "Filters");
    if (vg_node_is_null(f) || !vg__cfg_expect(L, f, VG_NODE_SEQ, "DefaultProcess.Filters"))
        return 0;
    struct vg_filter_list *o = &L->cfg->settings.default_process;
    o->v = f->n ? vg_tree_alloc(L->t, f->n * sizeof(*o->v)) : NULL;
    if (f->n && !o->v)
        return VG_ENOMEM;
    for (size_t i = 0; i < f->n; i++) {
        char *p = vg_path_index("DefaultProcess.Filters", i);
        if (!p)
            return VG_ENOMEM;
        if (vg__cfg_filter(L, f->items[i], p, &o->v[o->n]) == 0)
            o->n++;
        free(p);
    }
    return 0;
}

/* ---------- Metrics and GlobalCounter ---------- */

struct counter_raw {
    const char *name;
    struct vg_strlist list;
};

/* Providers [{ProviderName, CounterNames}] or Meters [{MeterName, InstrumentNames}]. */
static int load_counter_list(struct vg__loader *L, const struct vg_node *seq, const char *path,
                             const char *name_key, const char *list_key,
                             struct vg_counter_provider **out, size_t *n)
{
    if (vg_node_is_null(seq) || !vg__cfg_expect(L, seq, VG_NODE_SEQ, path))
        return 0;
    *out = seq->n ? vg_tree_alloc(L->t, seq->n * sizeof(**out)) : NULL;
    if (seq->n && !*out)
        return VG_ENOMEM;
    bool provider = strcmp(name_key, "ProviderName") == 0;
    for (size_t i = 0; i < seq->n; i++) {
        struct counter_raw r = {0};
        const struct vg_field fields[] = {
            {name_key, VG_FIELD_STRING, offsetof(struct counter_raw, name), VG_NO_SET, 0, 0, NULL,
             provider, "a provider name"},
            {list_key, VG_FIELD_STRLIST, offsetof(struct counter_raw, list), VG_NO_SET, 0, 0, NULL,
             false, NULL},
        };
        char *p = vg_path_index(path, i);
        if (!p)
            return VG_ENOMEM;
        size_t errs = vg_fields_apply(L->t, fields, 2, seq->items[i], NULL, p, &r, L->d);
        free(p);
        if (errs)
            continue;
        (*out)[*n].name = r.name;
        (*out)[*n].counters = r.list;
        (*n)++;
    }
    return 0;
}

struct metrics_raw {
    const struct vg_node *enabled, *endpoints, *providers, *meters;
    int64_t metric_count;
    bool include_defaults, metric_count_set, include_defaults_set;
};

static const struct vg_field metrics_fields[] = {
    {"Enabled", VG_FIELD_NODE, offsetof(struct metrics_raw, enabled), VG_NO_SET, 0, 0, NULL, false,
     NULL},
    {"Endpoints", VG_FIELD_NODE, offsetof(struct metrics_raw, endpoints), VG_NO_SET, 0, 0, NULL,
     false, NULL},
    {"Providers", VG_FIELD_NODE, offsetof(struct metrics_raw, providers), VG_NO_SET, 0, 0, NULL,
     false, NULL},
    {"Meters", VG_FIELD_NODE, offsetof(struct metrics_raw, meters), VG_NO_SET, 0, 0, NULL, false,
     NULL},
    FLD("MetricCount", VG_FIELD_INT, struct metrics_raw, metric_count,
        SETOF(struct metrics_raw, metric_count_set), 1, 2147483647.0),
    FLD("IncludeDefaultProviders", VG_FIELD_BOOL, struct metrics_raw, include_defaults,
        SETOF(struct metrics_raw, include_defaults_set), 0, 0),
};

static int load_metrics(struct vg__loader *L)
{
    struct vg_metrics_settings *o = &L->cfg->settings.metrics;
    struct metrics_raw r = {0};
    o->metric_count = 3;
    o->include_default_providers = true;
    vg_fields_apply(L->t, metrics_fields, VG_ARRAY_SIZE(metrics_fields),
                    vg_node_get(L->root, "Metrics"), NULL, "Metrics", &r, L->d);
    if (r.metric_count_set)
        o->metric_count = (unsigned)r.metric_count;
    if (r.include_defaults_set)
        o->include_default_providers = r.include_defaults;
    int rc = load_counter_list(L, r.providers, "Metrics.Providers", "ProviderName", "CounterNames",
                               &o->providers, &o->n_providers);
    if (rc == 0)
        rc = load_counter_list(L, r.meters, "Metrics.Meters", "MeterName", "InstrumentNames",
                               &o->meters, &o->n_meters);
    return rc;
}

struct gc_raw {
    double interval;
    int64_t max_histograms, max_time_series;
    bool interval_set, hist_set, ts_set;
    const struct vg_node *providers;
};

static const struct vg_field gc_fields[] = {
    FLD("IntervalSeconds", VG_FIELD_DOUBLE, struct gc_raw, interval,
        SETOF(struct gc_raw, interval_set), 1, 86400),
    FLD("MaxHistograms", VG_FIELD_INT, struct gc_raw, max_histograms,
        SETOF(struct gc_raw, hist_set), 1, 2147483647.0),
    FLD("MaxTimeSeries", VG_FIELD_INT, struct gc_raw, max_time_series, SETOF(struct gc_raw, ts_set),
        1, 2147483647.0),
    {"Providers", VG_FIELD_NODE, offsetof(struct gc_raw, providers), VG_NO_SET, 0, 0, NULL, false,
     NULL},
};

struct gc_provider_raw {
    double interval;
};

static const struct vg_field gc_provider_fields[] = {
    FLD("IntervalSeconds", VG_FIELD_DOUBLE, struct gc_provider_raw, interval, VG_NO_SET, 1, 86400),
};

static int load_global_counter(struct vg__loader *L)
{
    struct vg_global_counter_settings *o = &L->cfg->settings.global_counter;
    struct gc_raw r = {0};
    vg_fields_apply(L->t, gc_fields, VG_ARRAY_SIZE(gc_fields),
                    vg_node_get(L->root, "GlobalCounter"), NULL, "GlobalCounter", &r, L->d);
    o->interval_seconds = r.interval_set ? r.interval : 5;
    o->max_histograms = r.hist_set ? (unsigned)r.max_histograms : 20;
    o->max_time_series = r.ts_set ? (unsigned)r.max_time_series : 1000;
    const struct vg_node *pv = r.providers;
    if (vg_node_is_null(pv) || !vg__cfg_expect(L, pv, VG_NODE_MAP, "GlobalCounter.Providers"))
        return 0;
    o->providers = pv->n ? vg_tree_alloc(L->t, pv->n * sizeof(*o->providers)) : NULL;
    if (pv->n && !o->providers)
        return VG_ENOMEM;
    for (size_t i = 0; i < pv->n; i++) {
        struct gc_provider_raw g = {0};
        char *p = vg__cfg_path(L, "GlobalCounter.Providers", pv->pairs[i].key);
        if (!p)
            return VG_ENOMEM;
        if (vg_fields_apply(L->t, gc_provider_fields, 1, pv->pairs[i].value, NULL, p, &g, L->d))
            continue;
        o->providers[o->n_providers].name = pv->pairs[i].key;
        o->providers[o->n_providers].interval_seconds = g.interval;
        o->n_providers++;
    }
    return 0;
}

/* ---------- Logging ---------- */

static const char *const dotnet_levels[] = {"Trace", "Debug",    "Information", "Warning",
                                            "Error", "Critical", "None",        NULL};
static const int vigil_levels[] = {VG_LOG_TRACE, VG_LOG_DEBUG, VG_LOG_INFO, VG_LOG_WARN,
                                   VG_LOG_ERROR, VG_LOG_ERROR, VG_LOG_ERROR};

static int level_of(struct vg__loader *L, const struct vg_node *n, const char *path)
{
    const char *s = vg_node_str(n);
    for (int i = 0; s && dotnet_levels[i]; i++)
        if (strcasecmp(s, dotnet_levels[i]) == 0)
            return i;
    const char *hint = s ? vg_did_you_mean(s, dotnet_levels) : NULL;
    vg_diag_err(L->d, n ? &n->pos : NULL, path,
                "expected a log level (Trace, Debug, Information, Warning, Error, Critical, "
                "None)%s%s%s",
                hint ? "; did you mean \"" : "", hint ? hint : "", hint ? "\"?" : "");
    return -1;
}

/* A LogLevel map: Default sets *level; other categories are .NET logger names vigil does not
 * have, reported once. */
static void load_log_levels(struct vg__loader *L, const struct vg_node *m, const char *path,
                            int *level)
{
    if (vg_node_is_null(m) || !vg__cfg_expect(L, m, VG_NODE_MAP, path))
        return;
    const struct vg_pair *other = NULL;
    for (size_t i = 0; i < m->n; i++) {
        char *p = vg_path_join(path, m->pairs[i].key);
        if (vg_node_is_null(m->pairs[i].value)) {
            free(p);
            continue;
        }
        int lv = level_of(L, m->pairs[i].value, p);
        if (lv >= 0 && strcasecmp(m->pairs[i].key, "Default") == 0)
            *level = vigil_levels[lv];
        else if (lv >= 0 && !other)
            other = &m->pairs[i];
        free(p);
    }
    if (other) {
        char *p = vg_path_join(path, other->key);
        vg_diag_warn(L->d, &other->key_pos, p,
                     "log levels per .NET logger category are not applied: vigil has one level, "
                     "set by %s.Default",
                     path);
        free(p);
    }
}

static const char *const formatters[] = {"Simple", "Json", "Systemd", NULL};

static void load_logging(struct vg__loader *L)
{
    struct vg_logging_settings *o = &L->cfg->settings.logging;
    o->level = -1;
    o->format = -1;
    const struct vg_node *lg = vg_node_get(L->root, "Logging");
    if (vg_node_is_null(lg) || !vg__cfg_expect(L, lg, VG_NODE_MAP, "Logging"))
        return;
    static const char *const keys[] = {"LogLevel",    "Console",       "EventLog", "Debug",
                                       "EventSource", "CaptureScopes", NULL};
    vg__cfg_check_keys(L, lg, "Logging", keys);
    load_log_levels(L, vg_node_get(lg, "LogLevel"), "Logging.LogLevel", &o->level);
    const struct vg_node *con = vg_node_get(lg, "Console");
    if (!vg_node_is_null(con) && vg__cfg_expect(L, con, VG_NODE_MAP, "Logging.Console")) {
        static const char *const ckeys[] = {"FormatterName", "LogToStandardErrorThreshold",
                                            "FormatterOptions", "LogLevel", NULL};
        vg__cfg_check_keys(L, con, "Logging.Console", ckeys);
        const struct vg_node *fn = vg_node_get(con, "FormatterName");
        if (!vg_node_is_null(fn)) {
            const char *s = vg_node_str(fn);
            int f = -1;
            for (int i = 0; s && formatters[i]; i++)
                if (strcasecmp(s, formatters[i]) == 0)
                    f = i;
            if (f < 0)
                vg_diag_err(L->d, &fn->pos, "Logging.Console.FormatterName",
                            "expected Simple, Json or Systemd");
            else
                o->format = f == 1 ? VG_LOG_JSON : VG_LOG_TEXT;
        }
        const struct vg_node *th = vg_node_get(con, "LogToStandardErrorThreshold");
        if (!vg_node_is_null(th))
            level_of(L, th, "Logging.Console.LogToStandardErrorThreshold");
        warn_at_key(L, con, "FormatterOptions", "Logging.Console.FormatterOptions",
                    "formatter options are not applied: vigil's text and JSON formats are fixed");
        /* the console is vigil's only log: its own level overrides the general one */
        load_log_levels(L, vg_node_get(con, "LogLevel"), "Logging.Console.LogLevel", &o->level);
    }
    static const char *const providers[] = {"EventLog", "Debug", "EventSource"};
    for (size_t i = 0; i < VG_ARRAY_SIZE(providers); i++) {
        const struct vg_node *pv = vg_node_get(lg, providers[i]);
        char *p = vg_path_join("Logging", providers[i]);
        if (!vg_node_is_null(pv) && p && vg__cfg_expect(L, pv, VG_NODE_MAP, p)) {
            int ignored = -1;
            static const char *const lkeys[] = {"LogLevel", NULL};
            vg__cfg_check_keys(L, pv, p, lkeys);
            char *lp = vg_path_join(p, "LogLevel");
            load_log_levels(L, vg_node_get(pv, "LogLevel"), lp, &ignored);
            free(lp);
            warn_at_key(L, lg, providers[i], p,
                        "this .NET logging provider does not exist in vigil (it logs to "
                        "stderr); its settings are not applied");
        }
        free(p);
    }
    const struct vg_node *cs = vg_node_get(lg, "CaptureScopes");
    bool b;
    if (!vg_node_is_null(cs) && vg_node_to_bool(cs, "Logging.CaptureScopes", L->d, &b) == 0 && b)
        warn_at_key(L, lg, "CaptureScopes", "Logging.CaptureScopes",
                    "vigil's log has no scopes; not applied");
}

/* ---------- Authentication ---------- */

/* generatekey's issuer, the default when Issuer is not set. */
#define GENERATEKEY_ISSUER "https://github.com/dotnet/dotnet-monitor/generatekey+MonitorApiKey"

static bool b64url_ok(const struct vg_node *jwk, const char *key, size_t want_len)
{
    const char *s = vg_node_str(vg_node_get(jwk, key));
    struct vg_buf b;
    vg_buf_init(&b);
    bool ok =
        s && vg_base64url_decode(s, &b) == 0 && b.len > 0 && (want_len == 0 || b.len == want_len);
    vg_buf_free(&b);
    return ok;
}

/* Checks the JWK's shape as dotnet-monitor does at load (kty EC or RSA, the public parameters
 * there); the key itself is imported by the HTTP server. Returns the kty or NULL. */
static const char *check_jwk(struct vg__loader *L, const struct vg_node *pk, const char *text)
{
    const char *path = "Authentication.MonitorApiKey.PublicKey";
    struct vg_buf json;
    vg_buf_init(&json);
    const char *kty = NULL;
    if (vg_base64url_decode(text, &json) != 0 || json.len == 0) {
        vg_diag_err(L->d, &pk->pos, path,
                    "not base64url: expected the PublicKey `generatekey` prints (a JSON Web Key "
                    "encoded with base64url)");
        goto out;
    }
    struct vg_diags scratch;
    vg_diags_init(&scratch);
    struct vg_node *jwk = NULL;
    int rc = vg_source_parse(L->t, "PublicKey", json.data, json.len, true, &scratch, &jwk);
    vg_diags_free(&scratch);
    if (rc || !jwk) {
        vg_diag_err(L->d, &pk->pos, path,
                    "the decoded PublicKey is not a JSON Web Key (not a JSON object)");
        goto out;
    }
    /* dotnet-monitor's generatekey writes .NET property names (Kty, Crv, X, Y): any case */
    const char *k = vg_node_str(vg_node_get(jwk, "kty"));
    if (!k || (strcasecmp(k, "EC") != 0 && strcasecmp(k, "RSA") != 0)) {
        vg_diag_err(L->d, &pk->pos, path,
                    "the JSON Web Key's kty must be EC or RSA (a public/private key pair), got "
                    "%s%s%s",
                    k ? "\"" : "", k ? k : "none", k ? "\"" : "");
        goto out;
    }
    bool ec = strcasecmp(k, "EC") == 0;
    if (ec) {
        const char *crv = vg_node_str(vg_node_get(jwk, "crv"));
        size_t coord = !crv                            ? 0
                       : strcasecmp(crv, "P-256") == 0 ? 32
                       : strcasecmp(crv, "P-384") == 0 ? 48
                       : strcasecmp(crv, "P-521") == 0 ? 66
                                                       : 0;
        if (!coord) {
            vg_diag_err(L->d, &pk->pos, path,
                        "the EC key's crv must be P-256, P-384 or P-521, got %s%s%s",
                        crv ? "\"" : "", crv ? crv : "none", crv ? "\"" : "");
            goto out;
        }
        if (!b64url_ok(jwk, "x", coord) || !b64url_ok(jwk, "y", coord)) {
            vg_diag_err(L->d, &pk->pos, path,
                        "the EC key needs x and y, base64url, %zu bytes each for %s", coord, crv);
            goto out;
        }
    } else if (!b64url_ok(jwk, "n", 0) || !b64url_ok(jwk, "e", 0)) {
        vg_diag_err(L->d, &pk->pos, path, "the RSA key needs n and e (base64url)");
        goto out;
    }
    const struct vg_node *hp = vg_node_get(jwk, "HasPrivateKey");
    if (vg_node_get(jwk, "d") || (vg_node_str(hp) && strcasecmp(vg_node_str(hp), "true") == 0))
        vg_diag_warn(L->d, &pk->pos, path,
                     "the key holds private key data: only the public part is needed (and it "
                     "should not be in configuration)");
    kty = ec ? "EC" : "RSA";
out:
    vg_buf_free(&json);
    return kty;
}

struct apikey_raw {
    const char *subject, *public_key, *issuer;
};

static const struct vg_field apikey_fields[] = {
    {"Subject", VG_FIELD_STRING, offsetof(struct apikey_raw, subject), VG_NO_SET, 0, 0, NULL, true,
     "the subject generatekey printed"},
    {"PublicKey", VG_FIELD_STRING, offsetof(struct apikey_raw, public_key), VG_NO_SET, 0, 0, NULL,
     true, "the public key generatekey printed"},
    {"Issuer", VG_FIELD_STRING, offsetof(struct apikey_raw, issuer), VG_NO_SET, 0, 0, NULL, false,
     NULL},
};

static int load_authentication(struct vg__loader *L)
{
    const struct vg_node *auth = vg_node_get(L->root, "Authentication");
    if (vg_node_is_null(auth) || !vg__cfg_expect(L, auth, VG_NODE_MAP, "Authentication"))
        return 0;
    static const char *const keys[] = {"MonitorApiKey", "AzureAd", NULL};
    vg__cfg_check_keys(L, auth, "Authentication", keys);
    warn_at_key(L, auth, "AzureAd", "Authentication.AzureAd",
                "Azure Active Directory authentication is not supported by vigil: use "
                "Authentication.MonitorApiKey (a JWT key pair) or Server.Auth.ApiKeyHash");
    const struct vg_node *mk = vg_node_get(auth, "MonitorApiKey");
    if (vg_node_is_null(mk))
        return 0;
    struct apikey_raw r = {0};
    /* Subject and PublicKey are secrets-capable strings (${file:...} from a mounted Secret) */
    if (vg_fields_apply(L->t, apikey_fields, VG_ARRAY_SIZE(apikey_fields), mk, NULL,
                        "Authentication.MonitorApiKey", &r, L->d))
        return 0;
    const char *subject =
        vg__cfg_string(L, vg_node_get(mk, "Subject"), "Authentication.MonitorApiKey", "Subject");
    const char *pk = vg__cfg_string(L, vg_node_get(mk, "PublicKey"), "Authentication.MonitorApiKey",
                                    "PublicKey");
    if (!subject || !*subject) {
        vg_diag_err(L->d, &vg_node_get(mk, "Subject")->pos, "Authentication.MonitorApiKey.Subject",
                    "expected a non-empty subject");
        return 0;
    }
    if (!pk || strncmp(pk, "${", 2) == 0)
        return 0; /* an unresolved reference: `vigil check` without the secret mounted */
    const char *kty = check_jwk(L, vg_node_get(mk, "PublicKey"), pk);
    if (!kty)
        return 0;
    struct vg_monitor_api_key *k = vg_tree_alloc(L->t, sizeof(*k));
    if (!k)
        return VG_ENOMEM;
    k->subject = subject;
    k->public_key = pk;
    k->issuer = r.issuer && *r.issuer ? r.issuer : GENERATEKEY_ISSUER;
    k->kty = kty;
    L->cfg->settings.server.api_jwt = k;
    return 0;
}

/* ---------- sections vigil does not apply ---------- */

static void load_unapplied(struct vg__loader *L)
{
    const struct vg_node *root = L->root;
    const struct vg_node *ipf = vg_node_get(root, "InProcessFeatures");
    if (!vg_node_is_null(ipf) && vg__cfg_expect(L, ipf, VG_NODE_MAP, "InProcessFeatures")) {
        static const char *const keys[] = {"Enabled", "CallStacks", "Exceptions",
                                           "ParameterCapturing", NULL};
        vg__cfg_check_keys(L, ipf, "InProcessFeatures", keys);
        warn_at_key(L, root, "InProcessFeatures", "InProcessFeatures",
                    "in-process features (call stacks, exceptions, parameter capturing) load "
                    "dotnet-monitor's libraries into .NET apps: not supported by vigil yet");
    }
    const struct vg_node *cors = vg_node_get(root, "CorsConfiguration");
    if (!vg_node_is_null(cors) && vg__cfg_expect(L, cors, VG_NODE_MAP, "CorsConfiguration")) {
        static const char *const keys[] = {"AllowedOrigins", NULL};
        vg__cfg_check_keys(L, cors, "CorsConfiguration", keys);
        warn_at_key(L, root, "CorsConfiguration", "CorsConfiguration",
                    "vigil's API sends no CORS headers: browsers on other origins cannot call it "
                    "(put a proxy in front if they must)");
    }
    warn_at_key(L, root, "Kestrel", "Kestrel",
                "Kestrel settings (certificates, limits) are not used by vigil: listen URLs come "
                "from Urls / Server.Urls, limits from Server");
    warn_at_key(L, root, "DotnetMonitorDebug", "DotnetMonitorDebug",
                "dotnet-monitor's debugging options do not apply to vigil");
    const struct vg_node *hosts = vg_node_get(root, "AllowedHosts");
    const char *h = vg_node_str(hosts);
    if (!vg_node_is_null(hosts) && !(h && strcmp(h, "*") == 0))
        warn_at_key(L, root, "AllowedHosts", "AllowedHosts",
                    "vigil does not filter requests by Host header: not applied");
}

int vg__cfg_load_monitor_sections(struct vg__loader *L)
{
    int rc;
    if ((rc = load_diagnostic_port(L)) || (rc = load_default_process(L)) ||
        (rc = load_metrics(L)) || (rc = load_global_counter(L)) || (rc = load_authentication(L)))
        return rc;
    load_logging(L);
    load_unapplied(L);
    return 0;
}
