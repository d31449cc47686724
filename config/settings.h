/* Typed, validated settings produced from the merged configuration tree.
 * Rule bodies stay as tree nodes here; rules/ compiles them (config knows nothing of triggers). */
#ifndef VG_SETTINGS_H
#define VG_SETTINGS_H

#include "config/tree.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vg_compression { VG_COMPRESS_NONE = 0, VG_COMPRESS_GZIP, VG_COMPRESS_ZSTD };

enum vg_egress_kind { VG_EGRESS_FILESYSTEM = 0, VG_EGRESS_S3, VG_EGRESS_AZURE_BLOB };

struct vg_kv {
    const char *key;
    const char *value;
};

/* All strings are owned by the vg_config that produced them; secrets already resolved
 * (${env:X}, ${file:/p}, Egress.Properties names). */
struct vg_egress_fs {
    const char *directory_path;
    const char *intermediate_directory_path; /* NULL: DIRECTORY/.vigil-partial */
    uint64_t copy_buffer_size;               /* CopyBufferSize; 0: the provider's default */
};

struct vg_egress_s3 {
    const char *endpoint; /* NULL: https://s3.REGION.amazonaws.com */
    const char *bucket_name;
    const char *region_name;       /* default us-east-1 (or AWS_REGION) */
    const char *access_key_id;     /* NULL: AWS_ACCESS_KEY_ID / web identity */
    const char *secret_access_key; /* secret */
    const char *session_token;     /* secret */
    bool force_path_style;
    const char *key_prefix;
    uint64_t part_size;               /* CopyBufferSize; clamped to >= 5 MiB; default 8 MiB */
    uint64_t presigned_url_expiry_ms; /* 0: no presigned URL */
    const char *storage_class;
    bool use_kms_encryption;
    const char *kms_encryption_key;
    const char *aws_profile_name; /* AwsProfileName; NULL: AWS_PROFILE or "default" */
    const char *aws_profile_path; /* AwsProfilePath: the shared credentials file */
};

struct vg_egress_azure {
    const char *account_uri; /* https://acct.blob.core.windows.net or http://127.0.0.1:10000/acct */
    const char *container_name;
    const char *blob_prefix;
    const char *shared_access_signature; /* secret, without leading '?' */
    const char *account_key;             /* secret, base64 */
    uint64_t block_size;                 /* CopyBufferSize; default 4 MiB */
    struct vg_kv *metadata;              /* key -> value (env var values already resolved) */
    size_t n_metadata;
};

struct vg_egress_settings {
    const char *name;
    struct vg_pos pos; /* where the provider's name was written */
    enum vg_egress_kind kind;
    /* `vigil check` without the secrets mounted: a ${env:}/${file:} reference stayed unresolved,
     * so credentials cannot be checked here. */
    bool secrets_pending;
    size_t errors; /* errors found while loading it (already reported) */
    enum vg_compression compression;
    unsigned max_retries;        /* default 10 */
    uint64_t retry_max_delay_ms; /* default 5 min */
    uint64_t timeout_ms;         /* per-request stall timeout; default 60 s */
    union {
        struct vg_egress_fs fs;
        struct vg_egress_s3 s3;
        struct vg_egress_azure azure;
    } u;
};

enum vg_filter_match { VG_MATCH_EXACT = 0, VG_MATCH_CONTAINS };

enum vg_filter_key {
    VG_FILTER_PROCESS_ID = 0,
    VG_FILTER_PROCESS_NAME,
    VG_FILTER_COMMAND_LINE,
    VG_FILTER_MANAGED_ENTRY_POINT,
    VG_FILTER_RUNTIME_ID,
    VG_FILTER_USER,
    VG_FILTER_CGROUP,
};

struct vg_filter_settings {
    enum vg_filter_key key;
    const char *value;
    enum vg_filter_match match;
};

struct vg_rule_settings {
    const char *name;
    struct vg_pos pos; /* where the rule's name was written */
    char *path;        /* "CollectionRules.NAME" */
    size_t errors;     /* errors found while loading it: the rule is refused, the others run */
    struct vg_filter_settings *filters;
    size_t n_filters;
    /* Trigger/actions/limits after template resolution; compiled by rules/. */
    const struct vg_node *trigger; /* MAP {Type, Settings} */
    const struct vg_node
        *actions;                 /* SEQ of MAP {Name, Type, Settings, WaitForCompletion} or NULL */
    const struct vg_node *limits; /* MAP or NULL */
    const struct vg_node *raw;    /* the whole rule, for fingerprints */
};

enum vg_listen_kind { VG_LISTEN_TCP = 0, VG_LISTEN_UNIX };

/* A listen URL in dotnet-monitor's (Kestrel's) forms: http://HOST:PORT with HOST an address,
 * localhost, or + / * / [::] / a host name for every address; unix:/path or http://unix:/path. */
struct vg_listen_url {
    const char *text; /* as written */
    enum vg_listen_kind kind;
    const char *host; /* TCP: numeric address to bind ("127.0.0.1", "::1"); "::" when any */
    bool any;         /* every address, IPv6 and IPv4 (+, *, [::], 0.0.0.0 or a host name) */
    int port;         /* 0: a free port chosen by the kernel */
    const char *path; /* UNIX: the socket path */
    /* What the current HTTP server accepts: "http://ADDR:PORT" or "unix:/path" (`any`
     * becomes 0.0.0.0, IPv4 only, until the server binds dual-stack). */
    const char *canonical;
};

struct vg_monitor_api_key {
    const char *subject;    /* the token's `sub` must equal it */
    const char *public_key; /* base64url of a JSON Web Key (kty EC or RSA), as generatekey writes */
    const char *issuer;     /* the token's `iss`; default generatekey's issuer */
    const char *kty;        /* "EC" or "RSA", checked at load */
};

struct vg_server_settings {
    const char **urls; /* canonical forms of `listen`, for the HTTP server */
    size_t n_urls;
    const char **metrics_urls; /* canonical forms of `metrics_listen` */
    size_t n_metrics_urls;
    struct vg_listen_url *listen; /* Server.Urls, else dotnet-monitor's Urls */
    size_t n_listen;
    struct vg_listen_url *metrics_listen; /* Server.MetricsUrls, else Metrics.Endpoints */
    size_t n_metrics_listen;
    bool metrics_enabled;
    const char *api_key_hash;           /* "sha256:HEX" or NULL */
    struct vg_monitor_api_key *api_jwt; /* Authentication.MonitorApiKey, or NULL */
    unsigned max_connections;
    unsigned metrics_max_connections; /* the metrics listener's own budget; default 16 */
    uint64_t max_header_bytes;
    uint64_t max_body_bytes;
    uint64_t request_timeout_ms;
    uint64_t idle_timeout_ms;
    unsigned max_concurrent_dumps;
};

struct vg_storage_settings {
    const char *state_dir; /* default /var/lib/vigil */
    const char *spool_dir; /* default STATE_DIR/spool (DumpTempFolder when that is set) */
    uint64_t spool_quota;  /* bytes; 0 = 10% of the filesystem */
    uint64_t keep_free;    /* bytes; default 15% of the filesystem, at most 4 GiB */
    /* dotnet-monitor's: a directory shared with the target apps (Kubernetes emptyDir). */
    const char *default_shared_path;
    const char *dump_temp_folder;    /* where a runtime writes dumps; DEFAULT_SHARED/dumps */
    const char *shared_library_path; /* libraries shared with apps; DEFAULT_SHARED/libs */
};

struct vg_discovery_settings {
    uint64_t poll_interval_ms; /* default 1000 */
    /* Discovery.Filters: vigil watches only the processes matching all of them (a sidecar
     * restricted to its app); none: every process. */
    struct vg_filter_settings *filters;
    size_t n_filters;
    /* Discovery.SampleAllProcesses: sample every visible process for /metrics, not only those a
     * rule watches (default false: the others cost only their discovery). */
    bool sample_all;
};

enum vg_diag_port_mode { VG_DIAG_PORT_CONNECT = 0, VG_DIAG_PORT_LISTEN };

/* dotnet-monitor's DiagnosticPort: how the .NET adapter reaches runtimes. The short form
 * (a string) is Listen mode on that path and wins over the long form, as in dotnet-monitor. */
struct vg_diagnostic_port_settings {
    enum vg_diag_port_mode mode; /* Connect (default): vigil connects to each runtime's socket */
    /* Listen: the socket vigil creates; runtimes connect to it (DOTNET_DiagnosticPorts).
     * Default DEFAULT_SHARED_PATH/dotnet-monitor.sock; NULL in Connect mode. */
    const char *endpoint_name;
    unsigned max_connections;        /* Listen: runtimes accepted at once; 0 = no limit */
    bool delete_endpoint_on_startup; /* Listen: remove a socket file left by a previous run */
};

struct vg_filter_list {
    struct vg_filter_settings *v;
    size_t n;
};

struct vg_counter_provider {
    const char *name;           /* ProviderName / MeterName */
    struct vg_strlist counters; /* CounterNames / InstrumentNames; none = all */
    double interval_seconds;    /* GlobalCounter.Providers.NAME.IntervalSeconds; 0 = global */
};

/* dotnet-monitor's Metrics: the Prometheus /metrics contents for .NET runtimes. */
struct vg_metrics_settings {
    unsigned metric_count; /* data points kept per metric; default 3 */
    bool
        include_default_providers; /* System.Runtime, Microsoft.AspNetCore.Hosting, Grpc...; true */
    struct vg_counter_provider *providers; /* EventCounter providers */
    size_t n_providers;
    struct vg_counter_provider *meters; /* System.Diagnostics.Metrics meters */
    size_t n_meters;
};

/* dotnet-monitor's GlobalCounter: how often .NET runtimes send counter values. */
struct vg_global_counter_settings {
    double interval_seconds;               /* default 5 */
    unsigned max_histograms;               /* default 20 */
    unsigned max_time_series;              /* default 1000 */
    struct vg_counter_provider *providers; /* per-provider intervals */
    size_t n_providers;
};

/* Logging (.NET's section): LogLevel.Default sets vigil's level, Console.FormatterName its
 * format, when the command line does not. */
struct vg_logging_settings {
    int level;  /* VG_LOG_* or -1 when unset */
    int format; /* VG_LOG_TEXT / VG_LOG_JSON or -1 when unset */
};

/* Runtimes: settings of the runtime adapters (docs/runtimes.md). */
struct vg_node_runtime_settings {
    bool allow_inspector_activation; /* AllowInspectorActivation: may open it with SIGUSR1 */
};

struct vg_runtimes_settings {
    struct vg_node_runtime_settings node; /* Runtimes.Node */
};

struct vg_settings {
    struct vg_rule_settings *rules;
    size_t n_rules;
    struct vg_egress_settings *egress;
    size_t n_egress;
    const struct vg_node *defaults; /* CollectionRuleDefaults MAP or NULL */
    struct vg_server_settings server;
    struct vg_storage_settings storage;
    struct vg_discovery_settings discovery;
    struct vg_runtimes_settings runtimes;
    struct vg_diagnostic_port_settings diagnostic_port;
    struct vg_filter_list default_process; /* DefaultProcess.Filters: pid-less API calls */
    struct vg_metrics_settings metrics;
    struct vg_global_counter_settings global_counter;
    struct vg_logging_settings logging;
};

#endif
