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
    enum vg_egress_kind kind;
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
    struct vg_filter_settings *filters;
    size_t n_filters;
    /* Trigger/actions/limits after template resolution; compiled by rules/. */
    const struct vg_node *trigger; /* MAP {Type, Settings} */
    const struct vg_node
        *actions;                 /* SEQ of MAP {Name, Type, Settings, WaitForCompletion} or NULL */
    const struct vg_node *limits; /* MAP or NULL */
    const struct vg_node *raw;    /* the whole rule, for fingerprints */
};

struct vg_server_settings {
    const char **urls;
    size_t n_urls;
    const char **metrics_urls;
    size_t n_metrics_urls;
    bool metrics_enabled;
    const char *api_key_hash; /* "sha256:HEX" or NULL */
    unsigned max_connections;
    uint64_t max_header_bytes;
    uint64_t max_body_bytes;
    uint64_t request_timeout_ms;
    uint64_t idle_timeout_ms;
    unsigned max_concurrent_dumps;
};

struct vg_storage_settings {
    const char *state_dir; /* default /var/lib/vigil */
    const char *spool_dir; /* default STATE_DIR/spool */
    uint64_t spool_quota;  /* bytes; 0 = 10% of the filesystem */
    uint64_t keep_free;    /* bytes; default 15% of the filesystem, at most 4 GiB */
    /* dotnet-monitor's: a directory shared with the target apps (Kubernetes emptyDir). */
    const char *default_shared_path;
    const char *dump_temp_folder; /* where a runtime writes dumps; DEFAULT_SHARED/dumps */
};

struct vg_discovery_settings {
    uint64_t poll_interval_ms; /* default 1000 */
    /* GlobalCounter.IntervalSeconds: how often a .NET process sends its counters (dotnet-monitor's
     * setting and default, 5) */
    uint64_t counter_interval_s;
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
};

#endif
