/* Configuration loading: directories -> merged tree -> typed settings, with every problem
 * collected as a positioned diagnostic. */
#include "config/config.h"

#include "config/config_int.h"
#include "config/error.h"
#include "config/listen.h"
#include "config/redact.h"
#include "config/source.h"
#include "config/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SECRET_FILE_BYTES 65536

/* Rules defined in two YAML/JSON files would silently shadow each other: report both places.
 * Only documents count: key-per-file entries and variables set single keys of rules defined
 * elsewhere, which is how Kubernetes users override a setting. */
static int check_duplicate_rules(struct vg__loader *L, const struct vg_node *doc)
{
    const struct vg_node *incoming = vg_node_get(doc, "CollectionRules");
    if (!incoming || incoming->kind != VG_NODE_MAP)
        return 0;
    if (!L->doc_rules && !(L->doc_rules = vg_tree_new_node(L->t, VG_NODE_MAP, NULL)))
        return VG_ENOMEM;
    for (size_t i = 0; i < incoming->n; i++) {
        const struct vg_pair *in = &incoming->pairs[i];
        const struct vg_pair *old = vg_node_get_pair(L->doc_rules, in->key);
        if (!old) {
            if (vg__node_push_pair(L->t, L->doc_rules, in->key, &in->key_pos, in->value))
                return VG_ENOMEM;
            continue;
        }
        char *path = vg_path_join("CollectionRules", in->key);
        vg_diags_set_rule(L->d, in->key);
        vg_diag_err(L->d, &in->key_pos, path,
                    "rule is already defined at %s:%d:%d; rule names must be unique across files",
                    old->key_pos.file, old->key_pos.line, old->key_pos.col);
        vg_diags_set_rule(L->d, NULL);
        free(path);
    }
    return 0;
}

/* ---------- secrets ---------- */

static const char *const secret_keys[] = {
    "AccountKey",
    "SharedAccessSignature",
    "QueueSharedAccessSignature",
    "SecretAccessKey",
    "SessionToken",
    "Properties",
    "ApiKey",
    NULL,
};

static bool is_secret_key(const char *key)
{
    for (size_t i = 0; secret_keys[i]; i++)
        if (strcasecmp(key, secret_keys[i]) == 0)
            return true;
    return false;
}

/* Resolves ${env:NAME} and ${file:/path}; other strings are returned as they are.
 * Diagnostics never include the resolved value. */
static const char *resolve_strict(struct vg__loader *L, const struct vg_node *n, const char *path);

static const char *resolve(struct vg__loader *L, const struct vg_node *n, const char *path)
{
    if (!(L->flags & VG_CONFIG_SECRETS_OPTIONAL))
        return resolve_strict(L, n, path);
    /* Collect into a scratch list and downgrade: the reference stays as the value. */
    struct vg_diags scratch;
    vg_diags_init(&scratch);
    struct vg_diags *real = L->d;
    L->d = &scratch;
    const char *v = resolve_strict(L, n, path);
    L->d = real;
    for (size_t i = 0; i < scratch.n; i++) {
        struct vg_pos pos = {n->pos.file, scratch.v[i].line, scratch.v[i].col};
        vg_diag_warn(real, &pos, scratch.v[i].path, "%s (needed at run time)", scratch.v[i].msg);
    }
    if (!v && scratch.n) {
        v = n->str;
        L->unresolved = true;
    }
    vg_diags_free(&scratch);
    return v;
}

static const char *resolve_strict(struct vg__loader *L, const struct vg_node *n, const char *path)
{
    const char *s = vg_node_str(n);
    if (!s)
        return NULL;
    size_t len = strlen(s);
    if (len < 4 || strncmp(s, "${", 2) != 0 || s[len - 1] != '}')
        return s;
    if (strncmp(s, "${env:", 6) == 0) {
        char *name = vg_strndup(s + 6, len - 7);
        const char *v = name ? getenv(name) : NULL;
        if (!v)
            vg_diag_err(L->d, &n->pos, path, "environment variable %s is not set",
                        name ? name : "?");
        char *copy = v ? vg_tree_strdup(L->t, v) : NULL;
        vg_redact_add(copy);
        free(name);
        return copy;
    }
    if (strncmp(s, "${file:", 7) == 0) {
        char *file = vg_strndup(s + 7, len - 8);
        char *copy = NULL;
        int fd = file ? open(file, O_RDONLY | O_CLOEXEC) : -1;
        if (fd < 0) {
            vg_diag_err(L->d, &n->pos, path, "cannot read secret file %s: %s", file ? file : "?",
                        strerror(errno));
        } else {
            char *buf = malloc(MAX_SECRET_FILE_BYTES + 1);
            ssize_t r = buf ? read(fd, buf, MAX_SECRET_FILE_BYTES + 1) : -1;
            if (r < 0 || r > MAX_SECRET_FILE_BYTES) {
                vg_diag_err(L->d, &n->pos, path, "cannot read secret file %s: %s", file,
                            r < 0 ? strerror(errno) : "larger than 64 KiB");
            } else {
                while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == '\r'))
                    r--;
                buf[r] = '\0';
                copy = vg_tree_strdup(L->t, buf);
                vg_redact_add(copy);
            }
            free(buf);
            close(fd);
        }
        free(file);
        return copy;
    }
    vg_diag_err(L->d, &n->pos, path,
                "unknown reference; expected ${env:NAME} or ${file:/path/to/secret}");
    return NULL;
}

/* ---------- small helpers ---------- */

char *vg__cfg_path(struct vg__loader *L, const char *base, const char *key)
{
    char *p = vg_path_join(base, key);
    char *q = p ? vg_tree_strdup(L->t, p) : NULL;
    free(p);
    return q;
}

void vg__cfg_check_keys(struct vg__loader *L, const struct vg_node *map, const char *path,
                        const char *const *known)
{
    if (!map || map->kind != VG_NODE_MAP)
        return;
    for (size_t i = 0; i < map->n; i++) {
        bool ok = false;
        for (size_t j = 0; known[j] && !ok; j++)
            ok = strcasecmp(map->pairs[i].key, known[j]) == 0;
        if (ok)
            continue;
        char *kp = vg_path_join(path, map->pairs[i].key);
        const char *hint = vg_did_you_mean(map->pairs[i].key, known);
        if (hint)
            vg_diag_warn(L->d, &map->pairs[i].key_pos, kp,
                         "unknown setting, ignored; did you mean \"%s\"?", hint);
        else
            vg_diag_warn(L->d, &map->pairs[i].key_pos, kp, "unknown setting, ignored");
        free(kp);
    }
}

bool vg__cfg_expect(struct vg__loader *L, const struct vg_node *n, enum vg_node_kind kind,
                    const char *path)
{
    if (!n || n->kind == kind)
        return true;
    vg_diag_err(L->d, &n->pos, path, "expected a %s, got a %s", vg_node_kind_name(kind),
                vg_node_kind_name(n->kind));
    return false;
}

int vg__cfg_listen_urls(struct vg__loader *L, const struct vg_node *n, const char *what,
                        struct vg_listen_url **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (vg_node_is_null(n))
        return 0;
    /* "a;b" text (dotnet-monitor's --urls and ASPNETCORE_URLS), or a list of such texts */
    const struct vg_node *const *items = (const struct vg_node *const *)&n;
    size_t nitems = 1;
    if (n->kind == VG_NODE_SEQ) {
        items = (const struct vg_node *const *)n->items;
        nitems = n->n;
    } else if (!vg__cfg_expect(L, n, VG_NODE_SCALAR, what)) {
        return 0;
    }
    size_t parts = 0;
    for (size_t i = 0; i < nitems; i++) {
        const char *s = vg_node_str(items[i]);
        for (; s && *s; s++)
            parts += *s == ';';
        parts++;
    }
    struct vg_listen_url *v = vg_tree_alloc(L->t, parts * sizeof(*v));
    if (!v)
        return VG_ENOMEM;
    for (size_t i = 0; i < nitems; i++) {
        const struct vg_node *it = items[i];
        char *ip = n->kind == VG_NODE_SEQ ? vg_path_index(what, i) : vg_strdup(what);
        if (!ip)
            return VG_ENOMEM;
        if (it->kind != VG_NODE_SCALAR) {
            vg_diag_err(L->d, &it->pos, ip, "expected a URL, got a %s",
                        vg_node_kind_name(it->kind));
            free(ip);
            continue;
        }
        char *copy = vg_strdup(it->str), *save = NULL;
        if (!copy) {
            free(ip);
            return VG_ENOMEM;
        }
        for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
            if (strspn(tok, " \t") == strlen(tok))
                continue;
            struct vg_listen_url u;
            char err[160];
            const char *warn;
            int rc = vg_listen_url_parse(tok, &u, err, sizeof(err), &warn);
            if (rc == VG_ENOMEM) {
                free(copy);
                free(ip);
                return rc;
            }
            if (rc) {
                vg_diag_err(L->d, &it->pos, ip, "invalid listen URL \"%s\": %s", tok, err);
                continue;
            }
            if (warn)
                vg_diag_warn(L->d, &it->pos, ip, "%s: %s", u.text, warn);
            struct vg_listen_url *o = &v[(*count)++];
            *o = u;
            o->text = vg_tree_strdup(L->t, u.text);
            o->host = u.host ? vg_tree_strdup(L->t, u.host) : NULL;
            o->path = u.path ? vg_tree_strdup(L->t, u.path) : NULL;
            o->canonical = vg_tree_strdup(L->t, u.canonical);
            vg_listen_url_free(&u);
            if (!o->text || !o->canonical) {
                free(copy);
                free(ip);
                return VG_ENOMEM;
            }
        }
        free(copy);
        free(ip);
    }
    *out = v;
    return 0;
}

/* ---------- Egress ---------- */

static const char *const compression_names[] = {"none", "gzip", "zstd", NULL};

struct egress_common {
    int compression;
    int64_t max_retries;
    uint64_t retry_max_delay_ms, timeout_ms;
    bool max_retries_set, retry_set, timeout_set;
};

#define COMMON_FIELDS                                                                              \
    {"Compression",                                                                                \
     VG_FIELD_ENUM,                                                                                \
     offsetof(struct egress_common, compression),                                                  \
     VG_NO_SET,                                                                                    \
     0,                                                                                            \
     0,                                                                                            \
     compression_names,                                                                            \
     false,                                                                                        \
     NULL},                                                                                        \
        {"MaxRetries",                                                                             \
         VG_FIELD_INT,                                                                             \
         offsetof(struct egress_common, max_retries),                                              \
         offsetof(struct egress_common, max_retries_set),                                          \
         0,                                                                                        \
         1000,                                                                                     \
         NULL,                                                                                     \
         false,                                                                                    \
         NULL},                                                                                    \
        {"RetryMaxDelay",                                                                          \
         VG_FIELD_DURATION,                                                                        \
         offsetof(struct egress_common, retry_max_delay_ms),                                       \
         offsetof(struct egress_common, retry_set),                                                \
         1000,                                                                                     \
         86400000,                                                                                 \
         NULL,                                                                                     \
         false,                                                                                    \
         NULL},                                                                                    \
    {                                                                                              \
        "Timeout", VG_FIELD_DURATION, offsetof(struct egress_common, timeout_ms),                  \
            offsetof(struct egress_common, timeout_set), 1000, 3600000, NULL, false, NULL          \
    }

struct fs_raw {
    struct egress_common c;
    const char *directory_path, *intermediate_directory_path;
    uint64_t copy_buffer_size;
};

struct s3_raw {
    struct egress_common c;
    const struct vg_node *endpoint, *bucket, *region, *access_key_id, *secret_access_key,
        *session_token, *key_prefix, *storage_class, *kms_key, *aws_profile_name, *aws_profile_path;
    bool force_path_style, use_kms;
    uint64_t part_size, presign_ms;
    bool part_size_set;
};

struct az_raw {
    struct egress_common c;
    const struct vg_node *account_uri, *container, *blob_prefix, *sas, *sas_name, *account_key,
        *account_key_name, *metadata, *managed_identity, *queue_name, *queue_account_uri,
        *queue_sas, *queue_sas_name, *workload_identity;
    uint64_t block_size;
    bool block_size_set;
};

#define NODE_FIELD(name, st, member)                                                               \
    {                                                                                              \
        name, VG_FIELD_NODE, offsetof(st, member), VG_NO_SET, 0, 0, NULL, false, NULL              \
    }

static const struct vg_field fs_fields[] = {
    COMMON_FIELDS,
    {"DirectoryPath", VG_FIELD_STRING, offsetof(struct fs_raw, directory_path), VG_NO_SET, 0, 0,
     NULL, true, "a directory path"},
    {"IntermediateDirectoryPath", VG_FIELD_STRING,
     offsetof(struct fs_raw, intermediate_directory_path), VG_NO_SET, 0, 0, NULL, false, NULL},
    {"CopyBufferSize", VG_FIELD_SIZE, offsetof(struct fs_raw, copy_buffer_size), VG_NO_SET, 1,
     1073741824.0, NULL, false, NULL},
};

static const struct vg_field s3_fields[] = {
    COMMON_FIELDS,
    NODE_FIELD("Endpoint", struct s3_raw, endpoint),
    NODE_FIELD("BucketName", struct s3_raw, bucket),
    NODE_FIELD("RegionName", struct s3_raw, region),
    NODE_FIELD("AccessKeyId", struct s3_raw, access_key_id),
    NODE_FIELD("SecretAccessKey", struct s3_raw, secret_access_key),
    NODE_FIELD("SessionToken", struct s3_raw, session_token),
    NODE_FIELD("KeyPrefix", struct s3_raw, key_prefix),
    NODE_FIELD("StorageClass", struct s3_raw, storage_class),
    NODE_FIELD("KmsEncryptionKey", struct s3_raw, kms_key),
    NODE_FIELD("AwsProfileName", struct s3_raw, aws_profile_name),
    NODE_FIELD("AwsProfilePath", struct s3_raw, aws_profile_path),
    {"ForcePathStyle", VG_FIELD_BOOL, offsetof(struct s3_raw, force_path_style), VG_NO_SET, 0, 0,
     NULL, false, NULL},
    {"UseKmsEncryption", VG_FIELD_BOOL, offsetof(struct s3_raw, use_kms), VG_NO_SET, 0, 0, NULL,
     false, NULL},
    {"CopyBufferSize", VG_FIELD_SIZE, offsetof(struct s3_raw, part_size),
     offsetof(struct s3_raw, part_size_set), 1, 5368709120.0, NULL, false, NULL},
    {"PreSignedUrlExpiry", VG_FIELD_DURATION, offsetof(struct s3_raw, presign_ms), VG_NO_SET, 60000,
     86400000, NULL, false, NULL},
};

static const struct vg_field az_fields[] = {
    COMMON_FIELDS,
    NODE_FIELD("AccountUri", struct az_raw, account_uri),
    NODE_FIELD("ContainerName", struct az_raw, container),
    NODE_FIELD("BlobPrefix", struct az_raw, blob_prefix),
    NODE_FIELD("SharedAccessSignature", struct az_raw, sas),
    NODE_FIELD("SharedAccessSignatureName", struct az_raw, sas_name),
    NODE_FIELD("AccountKey", struct az_raw, account_key),
    NODE_FIELD("AccountKeyName", struct az_raw, account_key_name),
    NODE_FIELD("Metadata", struct az_raw, metadata),
    NODE_FIELD("ManagedIdentityClientId", struct az_raw, managed_identity),
    NODE_FIELD("QueueName", struct az_raw, queue_name),
    NODE_FIELD("QueueAccountUri", struct az_raw, queue_account_uri),
    NODE_FIELD("QueueSharedAccessSignature", struct az_raw, queue_sas),
    NODE_FIELD("QueueSharedAccessSignatureName", struct az_raw, queue_sas_name),
    NODE_FIELD("UseWorkloadIdentityFromEnvironment", struct az_raw, workload_identity),
    {"CopyBufferSize", VG_FIELD_SIZE, offsetof(struct az_raw, block_size),
     offsetof(struct az_raw, block_size_set), 1, 4194304000.0, NULL, false, NULL},
};

static void apply_common(struct vg_egress_settings *e, const struct egress_common *c)
{
    e->compression = (enum vg_compression)c->compression;
    e->max_retries = c->max_retries_set ? (unsigned)c->max_retries : 10;
    e->retry_max_delay_ms = c->retry_set ? c->retry_max_delay_ms : 300000;
    e->timeout_ms = c->timeout_set ? c->timeout_ms : 60000;
}

/* A string setting that may name an Egress.Properties entry instead of holding the value. */
static const char *secret_setting(struct vg__loader *L, const struct vg_node *direct,
                                  const struct vg_node *by_name, const char *path,
                                  const char *direct_key, const char *name_key)
{
    if (!vg_node_is_null(direct)) {
        char *p = vg_path_join(path, direct_key);
        const char *v = resolve(L, direct, p);
        free(p);
        return v;
    }
    if (vg_node_is_null(by_name))
        return NULL;
    char *p = vg_path_join(path, name_key);
    const char *name = vg_node_str(by_name);
    const struct vg_node *prop = name ? vg_node_get(L->properties, name) : NULL;
    const char *v = NULL;
    if (!prop)
        vg_diag_err(L->d, &by_name->pos, p, "Egress.Properties has no entry named \"%s\"",
                    name ? name : "?");
    else
        v = resolve(L, prop, p);
    free(p);
    return v;
}

const char *vg__cfg_string(struct vg__loader *L, const struct vg_node *n, const char *path,
                           const char *key)
{
    if (vg_node_is_null(n))
        return NULL;
    char *p = vg_path_join(path, key);
    const char *v = NULL;
    if (n->kind != VG_NODE_SCALAR)
        vg_diag_err(L->d, &n->pos, p, "expected a string, got a %s", vg_node_kind_name(n->kind));
    else
        v = resolve(L, n, p);
    free(p);
    return v;
}

static void require(struct vg__loader *L, const void *value, const struct vg_node *map,
                    const char *path, const char *key)
{
    if (value)
        return;
    char *p = vg_path_join(path, key);
    vg_diag_err(L->d, map ? &map->pos : NULL, p, "required setting is missing");
    free(p);
}

static int load_egress(struct vg__loader *L)
{
    const struct vg_node *eg = vg_node_get(L->root, "Egress");
    if (vg_node_is_null(eg))
        return 0;
    if (!vg__cfg_expect(L, eg, VG_NODE_MAP, "Egress"))
        return 0;
    static const char *const sections[] = {"FileSystem", "S3Storage", "AzureBlobStorage",
                                           "Properties", NULL};
    vg__cfg_check_keys(L, eg, "Egress", sections);
    L->properties = vg_node_get(eg, "Properties");
    if (!vg__cfg_expect(L, L->properties, VG_NODE_MAP, "Egress.Properties"))
        L->properties = NULL;

    size_t total = 0;
    for (int k = 0; k < 3; k++) {
        const struct vg_node *sec = vg_node_get(eg, sections[k]);
        if (sec && sec->kind == VG_NODE_MAP)
            total += sec->n;
    }
    struct vg_settings *s = &L->cfg->settings;
    s->egress = total ? vg_tree_alloc(L->t, total * sizeof(*s->egress)) : NULL;
    if (total && !s->egress)
        return VG_ENOMEM;

    for (int k = 0; k < 3; k++) {
        const struct vg_node *sec = vg_node_get(eg, sections[k]);
        char *secpath = vg__cfg_path(L, "Egress", sections[k]);
        if (!secpath)
            return VG_ENOMEM;
        if (!sec || !vg__cfg_expect(L, sec, VG_NODE_MAP, secpath))
            continue;
        for (size_t i = 0; i < sec->n; i++) {
            const struct vg_pair *pr = &sec->pairs[i];
            char *path = vg__cfg_path(L, secpath, pr->key);
            if (!path)
                return VG_ENOMEM;
            if (vg_config_egress(L->cfg, pr->key)) {
                vg_diag_err(L->d, &pr->key_pos, path,
                            "an egress provider with this name already exists; provider names "
                            "must be unique across FileSystem, S3Storage and AzureBlobStorage");
                continue;
            }
            struct vg_egress_settings *e = &s->egress[s->n_egress];
            e->name = pr->key;
            e->pos = pr->key_pos;
            const struct vg_node *m = pr->value;
            L->unresolved = false;
            size_t errors_before = L->d->errors;
            if (k == 0) {
                struct fs_raw r = {0};
                e->kind = VG_EGRESS_FILESYSTEM;
                vg_fields_apply(L->t, fs_fields, VG_ARRAY_SIZE(fs_fields), m, NULL, path, &r, L->d);
                apply_common(e, &r.c);
                /* references resolved as in every provider's settings */
                e->u.fs.directory_path =
                    r.directory_path
                        ? vg__cfg_string(L, vg_node_get(m, "DirectoryPath"), path, "DirectoryPath")
                        : NULL;
                e->u.fs.intermediate_directory_path =
                    r.intermediate_directory_path
                        ? vg__cfg_string(L, vg_node_get(m, "IntermediateDirectoryPath"), path,
                                         "IntermediateDirectoryPath")
                        : NULL;
                e->u.fs.copy_buffer_size = r.copy_buffer_size;
            } else if (k == 1) {
                struct s3_raw r = {0};
                e->kind = VG_EGRESS_S3;
                vg_fields_apply(L->t, s3_fields, VG_ARRAY_SIZE(s3_fields), m, NULL, path, &r, L->d);
                apply_common(e, &r.c);
                struct vg_egress_s3 *o = &e->u.s3;
                o->endpoint = vg__cfg_string(L, r.endpoint, path, "Endpoint");
                o->bucket_name = vg__cfg_string(L, r.bucket, path, "BucketName");
                require(L, o->bucket_name, m, path, "BucketName");
                o->region_name = vg__cfg_string(L, r.region, path, "RegionName");
                o->access_key_id = vg__cfg_string(L, r.access_key_id, path, "AccessKeyId");
                o->secret_access_key =
                    vg__cfg_string(L, r.secret_access_key, path, "SecretAccessKey");
                o->session_token = vg__cfg_string(L, r.session_token, path, "SessionToken");
                o->key_prefix = vg__cfg_string(L, r.key_prefix, path, "KeyPrefix");
                o->storage_class = vg__cfg_string(L, r.storage_class, path, "StorageClass");
                o->kms_encryption_key = vg__cfg_string(L, r.kms_key, path, "KmsEncryptionKey");
                o->force_path_style = r.force_path_style;
                o->use_kms_encryption = r.use_kms;
                o->presigned_url_expiry_ms = r.presign_ms;
                /* dotnet-monitor raises buffers below 5 MB to 5 MB; S3 requires it for parts. */
                o->part_size = !r.part_size_set           ? 8u << 20
                               : r.part_size < (5u << 20) ? 5u << 20
                                                          : r.part_size;
                if (o->access_key_id && vg_node_is_null(r.secret_access_key))
                    require(L, NULL, m, path, "SecretAccessKey");
                o->aws_profile_name = vg__cfg_string(L, r.aws_profile_name, path, "AwsProfileName");
                o->aws_profile_path = vg__cfg_string(L, r.aws_profile_path, path, "AwsProfilePath");
            } else {
                struct az_raw r = {0};
                e->kind = VG_EGRESS_AZURE_BLOB;
                vg_fields_apply(L->t, az_fields, VG_ARRAY_SIZE(az_fields), m, NULL, path, &r, L->d);
                apply_common(e, &r.c);
                struct vg_egress_azure *o = &e->u.azure;
                o->account_uri = vg__cfg_string(L, r.account_uri, path, "AccountUri");
                require(L, o->account_uri, m, path, "AccountUri");
                if (o->account_uri && strncmp(o->account_uri, "https://", 8) != 0 &&
                    strncmp(o->account_uri, "http://", 7) != 0)
                    vg_diag_err(L->d, &r.account_uri->pos, path,
                                "AccountUri must start with https:// (or http:// for an emulator)");
                o->container_name = vg__cfg_string(L, r.container, path, "ContainerName");
                require(L, o->container_name, m, path, "ContainerName");
                o->blob_prefix = vg__cfg_string(L, r.blob_prefix, path, "BlobPrefix");
                o->shared_access_signature =
                    secret_setting(L, r.sas, r.sas_name, path, "SharedAccessSignature",
                                   "SharedAccessSignatureName");
                if (o->shared_access_signature && o->shared_access_signature[0] == '?')
                    o->shared_access_signature++;
                o->account_key = secret_setting(L, r.account_key, r.account_key_name, path,
                                                "AccountKey", "AccountKeyName");
                bool identity =
                    !vg_node_is_null(r.managed_identity) || !vg_node_is_null(r.workload_identity);
                if (!o->shared_access_signature && !o->account_key && identity)
                    /* accepted so dotnet-monitor's file loads; uploads need a key or a SAS */
                    vg_diag_warn(L->d, &m->pos, path,
                                 "%s cannot be used by vigil (it has no Azure identity client): "
                                 "uploads to this provider fail until AccountKey(Name) or "
                                 "SharedAccessSignature(Name) is set",
                                 vg_node_is_null(r.managed_identity)
                                     ? "UseWorkloadIdentityFromEnvironment"
                                     : "ManagedIdentityClientId");
                else if (!o->shared_access_signature && !o->account_key &&
                         vg_node_is_null(r.sas_name) && vg_node_is_null(r.account_key_name))
                    vg_diag_err(L->d, &m->pos, path,
                                "no credentials: set AccountKey, AccountKeyName, "
                                "SharedAccessSignature or SharedAccessSignatureName");
                else if (identity)
                    vg_diag_warn(
                        L->d, &m->pos, path, "%s is ignored: vigil authenticates with the %s",
                        vg_node_is_null(r.managed_identity) ? "UseWorkloadIdentityFromEnvironment"
                                                            : "ManagedIdentityClientId",
                        o->shared_access_signature ? "SharedAccessSignature" : "AccountKey");
                if (!vg_node_is_null(r.workload_identity)) {
                    bool b;
                    char *wp = vg_path_join(path, "UseWorkloadIdentityFromEnvironment");
                    vg_node_to_bool(r.workload_identity, wp, L->d, &b);
                    free(wp);
                }
                if (!vg_node_is_null(r.queue_name) || !vg_node_is_null(r.queue_account_uri))
                    vg_diag_warn(
                        L->d,
                        &(vg_node_is_null(r.queue_name) ? r.queue_account_uri : r.queue_name)->pos,
                        path,
                        "queue notifications (QueueName, QueueAccountUri) are not sent "
                        "by vigil yet");
                o->block_size = r.block_size_set ? r.block_size : 4u << 20;
                if (r.metadata && vg__cfg_expect(L, r.metadata, VG_NODE_MAP, path)) {
                    o->metadata = vg_tree_alloc(L->t, (r.metadata->n + 1) * sizeof(*o->metadata));
                    if (!o->metadata)
                        return VG_ENOMEM;
                    for (size_t j = 0; j < r.metadata->n; j++) {
                        /* dotnet-monitor: values name environment variables. */
                        const char *var = vg_node_str(r.metadata->pairs[j].value);
                        const char *val = var ? getenv(var) : NULL;
                        if (!val) {
                            vg_diag_warn(L->d, &r.metadata->pairs[j].key_pos, path,
                                         "metadata %s: environment variable %s is not set; "
                                         "the key is left out",
                                         r.metadata->pairs[j].key, var ? var : "?");
                            continue;
                        }
                        o->metadata[o->n_metadata].key = r.metadata->pairs[j].key;
                        o->metadata[o->n_metadata].value = vg_tree_strdup(L->t, val);
                        o->n_metadata++;
                    }
                }
            }
            e->secrets_pending = L->unresolved;
            e->errors = L->d->errors - errors_before;
            s->n_egress++;
        }
    }
    return 0;
}

/* ---------- Server / Storage / Discovery ---------- */

struct server_raw {
    const struct vg_node *urls, *metrics_urls, *auth;
    bool metrics_enabled, metrics_enabled_set;
    int64_t max_connections, max_dumps, metrics_max_connections;
    bool max_connections_set, max_dumps_set, metrics_max_connections_set;
    uint64_t max_header, max_body, request_timeout, idle_timeout;
    bool max_header_set, max_body_set, request_timeout_set, idle_timeout_set;
};

static const struct vg_field server_fields[] = {
    NODE_FIELD("Urls", struct server_raw, urls),
    NODE_FIELD("MetricsUrls", struct server_raw, metrics_urls),
    NODE_FIELD("Auth", struct server_raw, auth),
    {"MetricsEnabled", VG_FIELD_BOOL, offsetof(struct server_raw, metrics_enabled),
     offsetof(struct server_raw, metrics_enabled_set), 0, 0, NULL, false, NULL},
    {"MaxConnections", VG_FIELD_INT, offsetof(struct server_raw, max_connections),
     offsetof(struct server_raw, max_connections_set), 1, 100000, NULL, false, NULL},
    {"MetricsMaxConnections", VG_FIELD_INT, offsetof(struct server_raw, metrics_max_connections),
     offsetof(struct server_raw, metrics_max_connections_set), 1, 100000, NULL, false, NULL},
    {"MaxConcurrentDumps", VG_FIELD_INT, offsetof(struct server_raw, max_dumps),
     offsetof(struct server_raw, max_dumps_set), 1, 64, NULL, false, NULL},
    {"MaxHeaderBytes", VG_FIELD_SIZE, offsetof(struct server_raw, max_header),
     offsetof(struct server_raw, max_header_set), 1024, 1048576, NULL, false, NULL},
    {"MaxBodyBytes", VG_FIELD_SIZE, offsetof(struct server_raw, max_body),
     offsetof(struct server_raw, max_body_set), 0, 104857600, NULL, false, NULL},
    {"RequestTimeout", VG_FIELD_DURATION, offsetof(struct server_raw, request_timeout),
     offsetof(struct server_raw, request_timeout_set), 100, 3600000, NULL, false, NULL},
    {"IdleTimeout", VG_FIELD_DURATION, offsetof(struct server_raw, idle_timeout),
     offsetof(struct server_raw, idle_timeout_set), 100, 86400000, NULL, false, NULL},
};

struct auth_raw {
    const char *api_key_hash;
};

static const struct vg_field auth_fields[] = {
    {"ApiKeyHash", VG_FIELD_STRING, offsetof(struct auth_raw, api_key_hash), VG_NO_SET, 0, 0, NULL,
     false, NULL},
};

/* The HTTP server takes canonical URL strings. */
static int canonical_list(struct vg__loader *L, const struct vg_listen_url *v, size_t n,
                          const char ***out, size_t *count)
{
    *out = n ? vg_tree_alloc(L->t, n * sizeof(**out)) : NULL;
    if (n && !*out)
        return VG_ENOMEM;
    for (size_t i = 0; i < n; i++)
        (*out)[i] = v[i].canonical;
    *count = n;
    return 0;
}

static int load_server(struct vg__loader *L)
{
    struct vg_server_settings *o = &L->cfg->settings.server;
    struct server_raw r = {0};
    const struct vg_node *srv = vg_node_get(L->root, "Server");
    vg_fields_apply(L->t, server_fields, VG_ARRAY_SIZE(server_fields), srv, NULL, "Server", &r,
                    L->d);
    int rc;
    /* dotnet-monitor's top-level Urls and Metrics.Endpoints apply when Server omits them */
    const struct vg_node *urls = r.urls ? r.urls : vg_node_get(L->root, "Urls");
    if ((rc = vg__cfg_listen_urls(L, urls, r.urls ? "Server.Urls" : "Urls", &o->listen,
                                  &o->n_listen)) ||
        (rc = canonical_list(L, o->listen, o->n_listen, &o->urls, &o->n_urls)))
        return rc;
    const struct vg_node *metrics = vg_node_get(L->root, "Metrics");
    const struct vg_node *murls =
        r.metrics_urls ? r.metrics_urls : vg_node_get(metrics, "Endpoints");
    if ((rc = vg__cfg_listen_urls(L, murls,
                                  r.metrics_urls ? "Server.MetricsUrls" : "Metrics.Endpoints",
                                  &o->metrics_listen, &o->n_metrics_listen)) ||
        (rc = canonical_list(L, o->metrics_listen, o->n_metrics_listen, &o->metrics_urls,
                             &o->n_metrics_urls)))
        return rc;
    o->metrics_enabled = true;
    if (r.metrics_enabled_set) {
        o->metrics_enabled = r.metrics_enabled;
    } else if (vg_node_get(metrics, "Enabled")) {
        bool b;
        if (vg_node_to_bool(vg_node_get(metrics, "Enabled"), "Metrics.Enabled", L->d, &b) == 0)
            o->metrics_enabled = b;
    }
    if (r.auth) {
        struct auth_raw a = {0};
        vg_fields_apply(L->t, auth_fields, VG_ARRAY_SIZE(auth_fields), r.auth, NULL, "Server.Auth",
                        &a, L->d);
        if (a.api_key_hash) {
            const char *h = a.api_key_hash;
            bool ok = strncmp(h, "sha256:", 7) == 0 && strlen(h) == 7 + 64 &&
                      strspn(h + 7, "0123456789abcdefABCDEF") == 64;
            if (!ok)
                vg_diag_err(L->d, &vg_node_get(r.auth, "ApiKeyHash")->pos, "Server.Auth.ApiKeyHash",
                            "expected \"sha256:\" followed by 64 hex digits (run `vigil "
                            "generatekey`)");
            o->api_key_hash = h;
        }
    }
    o->max_connections = r.max_connections_set ? (unsigned)r.max_connections : 64;
    o->metrics_max_connections =
        r.metrics_max_connections_set ? (unsigned)r.metrics_max_connections : 16;
    o->max_concurrent_dumps = r.max_dumps_set ? (unsigned)r.max_dumps : 1;
    o->max_header_bytes = r.max_header_set ? r.max_header : 16384;
    o->max_body_bytes = r.max_body_set ? r.max_body : 1048576;
    o->request_timeout_ms = r.request_timeout_set ? r.request_timeout : 30000;
    o->idle_timeout_ms = r.idle_timeout_set ? r.idle_timeout : 120000;
    return 0;
}

struct storage_raw {
    const char *state_dir, *spool_dir, *dump_temp, *shared_lib, *shared;
    uint64_t quota, keep_free;
};

static const struct vg_field storage_fields[] = {
    {"StateDir", VG_FIELD_STRING, offsetof(struct storage_raw, state_dir), VG_NO_SET, 0, 0, NULL,
     false, NULL},
    {"SpoolDir", VG_FIELD_STRING, offsetof(struct storage_raw, spool_dir), VG_NO_SET, 0, 0, NULL,
     false, NULL},
    {"SpoolQuota", VG_FIELD_SIZE, offsetof(struct storage_raw, quota), VG_NO_SET, 0, 0, NULL, false,
     NULL},
    {"KeepFree", VG_FIELD_SIZE, offsetof(struct storage_raw, keep_free), VG_NO_SET, 0, 0, NULL,
     false, NULL},
    /* dotnet-monitor's Storage keys: accepted so its settings.json loads unchanged. */
    {"DumpTempFolder", VG_FIELD_STRING, offsetof(struct storage_raw, dump_temp), VG_NO_SET, 0, 0,
     NULL, false, NULL},
    {"SharedLibraryPath", VG_FIELD_STRING, offsetof(struct storage_raw, shared_lib), VG_NO_SET, 0,
     0, NULL, false, NULL},
    {"DefaultSharedPath", VG_FIELD_STRING, offsetof(struct storage_raw, shared), VG_NO_SET, 0, 0,
     NULL, false, NULL},
};

struct discovery_raw {
    uint64_t poll_ms;
    bool poll_set;
    const struct vg_node *filters;
};

static const struct vg_field discovery_fields[] = {
    {"PollInterval", VG_FIELD_DURATION, offsetof(struct discovery_raw, poll_ms),
     offsetof(struct discovery_raw, poll_set), 100, 3600000, NULL, false, NULL},
    NODE_FIELD("Filters", struct discovery_raw, filters),
};

/* DIR/sub in the arena (dotnet-monitor derives its shared subdirectories so). */
static const char *subdir(struct vg__loader *L, const char *dir, const char *sub)
{
    char *p = vg_asprintf("%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", sub);
    char *q = p ? vg_tree_strdup(L->t, p) : NULL;
    free(p);
    return q;
}

static int load_storage_discovery(struct vg__loader *L)
{
    struct storage_raw r = {0};
    const struct vg_node *st = vg_node_get(L->root, "Storage");
    vg_fields_apply(L->t, storage_fields, VG_ARRAY_SIZE(storage_fields), st, NULL, "Storage", &r,
                    L->d);
    struct vg_storage_settings *s = &L->cfg->settings.storage;
    static const char *const dirs[] = {"StateDir", "SpoolDir", "DumpTempFolder",
                                       "SharedLibraryPath", "DefaultSharedPath"};
    const char *vals[] = {r.state_dir, r.spool_dir, r.dump_temp, r.shared_lib, r.shared};
    for (size_t i = 0; i < VG_ARRAY_SIZE(dirs); i++) {
        if (vals[i] && vals[i][0] != '/') {
            char *p = vg_path_join("Storage", dirs[i]);
            vg_diag_err(L->d, &vg_node_get(st, dirs[i])->pos, p,
                        "expected an absolute directory path, got \"%s\"", vals[i]);
            free(p);
        }
    }
    s->state_dir = r.state_dir;
    s->spool_dir = r.spool_dir ? r.spool_dir : r.dump_temp;
    s->spool_quota = r.quota;
    s->keep_free = r.keep_free;
    s->default_shared_path = r.shared && r.shared[0] ? r.shared : NULL;
    s->dump_temp_folder = r.dump_temp;
    s->shared_library_path = r.shared_lib;
    if (s->default_shared_path && !s->dump_temp_folder &&
        !(s->dump_temp_folder = subdir(L, s->default_shared_path, "dumps")))
        return VG_ENOMEM;
    if (s->default_shared_path && !s->shared_library_path &&
        !(s->shared_library_path = subdir(L, s->default_shared_path, "libs")))
        return VG_ENOMEM;
    struct discovery_raw d = {0};
    vg_fields_apply(L->t, discovery_fields, VG_ARRAY_SIZE(discovery_fields),
                    vg_node_get(L->root, "Discovery"), NULL, "Discovery", &d, L->d);
    struct vg_discovery_settings *ds = &L->cfg->settings.discovery;
    ds->poll_interval_ms = d.poll_set ? d.poll_ms : 1000;
    if (!vg_node_is_null(d.filters) &&
        vg__cfg_expect(L, d.filters, VG_NODE_SEQ, "Discovery.Filters") && d.filters->n) {
        if (!(ds->filters = vg_tree_alloc(L->t, d.filters->n * sizeof(*ds->filters))))
            return VG_ENOMEM;
        for (size_t i = 0; i < d.filters->n; i++) {
            char *p = vg_path_index("Discovery.Filters", i);
            if (!p)
                return VG_ENOMEM;
            if (vg__cfg_filter(L, d.filters->items[i], p, &ds->filters[ds->n_filters]) == 0)
                ds->n_filters++;
            free(p);
        }
    }
    return 0;
}

/* ---------- Runtimes ---------- */

static const struct vg_field node_runtime_fields[] = {
    {"AllowInspectorActivation", VG_FIELD_BOOL,
     offsetof(struct vg_node_runtime_settings, allow_inspector_activation), VG_NO_SET, 0, 0, NULL,
     false, NULL},
};

static void load_runtimes(struct vg__loader *L)
{
    static const char *const known[] = {"Node", NULL};
    const struct vg_node *rts = vg_node_get(L->root, "Runtimes");
    if (!vg__cfg_expect(L, rts, VG_NODE_MAP, "Runtimes"))
        return;
    vg__cfg_check_keys(L, rts, "Runtimes", known);
    vg_fields_apply(L->t, node_runtime_fields, VG_ARRAY_SIZE(node_runtime_fields),
                    vg_node_get(rts, "Node"), NULL, "Runtimes.Node",
                    &L->cfg->settings.runtimes.node, L->d);
}

/* ---------- CollectionRules ---------- */

static const char *const filter_keys[] = {
    "ProcessId", "ProcessName", "CommandLine", "ManagedEntryPointAssemblyName",
    "RuntimeId", "User",        "Cgroup",      NULL};
static const char *const match_types[] = {"Exact", "Contains", NULL};

/* Replaces a template reference (a string) by the named template. */
static const struct vg_node *from_template(struct vg__loader *L, const struct vg_node *n,
                                           const char *section, const char *path)
{
    if (!n || n->kind != VG_NODE_SCALAR)
        return n;
    const struct vg_node *sec = vg_node_get(L->templates, section);
    const struct vg_node *tpl = vg_node_get(sec, n->str);
    if (tpl)
        return tpl;
    const char *names[257];
    size_t k = 0;
    for (size_t i = 0; sec && sec->kind == VG_NODE_MAP && i < sec->n && k < 256; i++)
        names[k++] = sec->pairs[i].key;
    names[k] = NULL;
    const char *hint = vg_did_you_mean(n->str, names);
    if (hint)
        vg_diag_err(L->d, &n->pos, path, "no template \"%s\" in Templates.%s; did you mean \"%s\"?",
                    n->str, section, hint);
    else
        vg_diag_err(L->d, &n->pos, path, "no template \"%s\" in Templates.%s", n->str, section);
    return NULL;
}

int vg__cfg_filter(struct vg__loader *L, const struct vg_node *f, const char *path,
                   struct vg_filter_settings *out)
{
    if (!vg__cfg_expect(L, f, VG_NODE_MAP, path))
        return VG_ECONFIG;
    const struct vg_node *key = vg_node_get(f, "Key");
    const struct vg_node *value = vg_node_get(f, "Value");
    const struct vg_node *match = vg_node_get(f, "MatchType");
    const char *keyname = NULL;
    int errors = 0;
    for (size_t i = 0; i < f->n; i++) {
        const char *k = f->pairs[i].key;
        if (!strcasecmp(k, "Key") || !strcasecmp(k, "Value") || !strcasecmp(k, "MatchType"))
            continue;
        bool shorthand = false;
        for (size_t j = 0; filter_keys[j]; j++)
            shorthand = shorthand || strcasecmp(k, filter_keys[j]) == 0;
        char *kp = vg_path_join(path, k);
        if (shorthand && !key && !keyname) {
            keyname = k;
            value = f->pairs[i].value;
        } else if (shorthand) {
            vg_diag_err(L->d, &f->pairs[i].key_pos, kp,
                        "a filter tests one property; write another filter for this one");
            errors++;
        } else {
            static const char *const all[] = {"Key",
                                              "Value",
                                              "MatchType",
                                              "ProcessId",
                                              "ProcessName",
                                              "CommandLine",
                                              "ManagedEntryPointAssemblyName",
                                              "RuntimeId",
                                              "User",
                                              "Cgroup",
                                              NULL};
            const char *hint = vg_did_you_mean(k, all);
            if (hint)
                vg_diag_err(L->d, &f->pairs[i].key_pos, kp, "unknown setting; did you mean \"%s\"?",
                            hint);
            else
                vg_diag_err(L->d, &f->pairs[i].key_pos, kp, "unknown setting");
            errors++;
        }
        free(kp);
    }
    if (key) {
        keyname = vg_node_str(key);
        if (!keyname) {
            char *kp = vg_path_join(path, "Key");
            vg_diag_err(L->d, &key->pos, kp, "expected a string");
            free(kp);
            return VG_ECONFIG;
        }
    }
    if (!keyname) {
        vg_diag_err(L->d, &f->pos, path,
                    "a filter needs Key and Value (or a shorthand such as ProcessName: app)");
        return VG_ECONFIG;
    }
    int idx = -1;
    for (int j = 0; filter_keys[j]; j++)
        if (strcasecmp(keyname, filter_keys[j]) == 0)
            idx = j;
    if (idx < 0) {
        char *kp = vg_path_join(path, "Key");
        const char *hint = vg_did_you_mean(keyname, filter_keys);
        vg_diag_err(L->d, &key->pos, kp,
                    "unknown filter key \"%s\"; expected ProcessId, ProcessName, CommandLine, "
                    "ManagedEntryPointAssemblyName, RuntimeId, User or Cgroup%s%s%s",
                    keyname, hint ? "; did you mean \"" : "", hint ? hint : "", hint ? "\"?" : "");
        free(kp);
        return VG_ECONFIG;
    }
    out->key = (enum vg_filter_key)idx;
    if (vg_node_is_null(value) || value->kind != VG_NODE_SCALAR) {
        char *kp = vg_path_join(path, "Value");
        vg_diag_err(L->d, value ? &value->pos : &f->pos, kp, "expected a string value to match");
        free(kp);
        return VG_ECONFIG;
    }
    out->value = value->str;
    if (out->key == VG_FILTER_PROCESS_ID &&
        strspn(out->value, "0123456789") != strlen(out->value)) {
        char *kp = vg_path_join(path, "Value");
        vg_diag_err(L->d, &value->pos, kp, "expected a process id (digits), got \"%s\"",
                    out->value);
        free(kp);
        errors++;
    }
    out->match = VG_MATCH_EXACT;
    if (!vg_node_is_null(match)) {
        const char *m = vg_node_str(match);
        int mi = -1;
        for (int j = 0; m && match_types[j]; j++)
            if (strcasecmp(m, match_types[j]) == 0)
                mi = j;
        if (mi < 0) {
            char *kp = vg_path_join(path, "MatchType");
            vg_diag_err(L->d, &match->pos, kp, "expected Exact or Contains, got \"%s\"",
                        m ? m : "?");
            free(kp);
            return VG_ECONFIG;
        }
        out->match = (enum vg_filter_match)mi;
    }
    return errors ? VG_ECONFIG : 0;
}

static int load_rule_body(struct vg__loader *L, const struct vg_pair *pr,
                          struct vg_rule_settings *r);

/* Every diagnostic about a rule is attributed to it: a rule with an error is refused alone. */
static int load_rule(struct vg__loader *L, const struct vg_pair *pr, struct vg_rule_settings *r)
{
    vg_diags_set_rule(L->d, pr->key);
    int rc = load_rule_body(L, pr, r);
    vg_diags_set_rule(L->d, NULL);
    r->errors = vg_diags_rule_errors(L->d, pr->key);
    return rc;
}

static int load_rule_body(struct vg__loader *L, const struct vg_pair *pr,
                          struct vg_rule_settings *r)
{
    char *path = vg__cfg_path(L, "CollectionRules", pr->key);
    if (!path)
        return VG_ENOMEM;
    r->name = pr->key;
    r->pos = pr->key_pos;
    r->path = path;
    const struct vg_node *rule = pr->value;
    if (!vg__cfg_expect(L, rule, VG_NODE_MAP, path))
        return 0;
    static const char *const keys[] = {"Filters", "Trigger", "Actions", "Limits", NULL};
    vg__cfg_check_keys(L, rule, path, keys);

    /* The resolved rule (templates substituted) is what rules/ compiles and fingerprints. */
    struct vg_node *res = vg_tree_new_node(L->t, VG_NODE_MAP, &rule->pos);
    if (!res)
        return VG_ENOMEM;

    char *p = vg__cfg_path(L, path, "Trigger");
    const struct vg_node *trig =
        from_template(L, vg_node_get(rule, "Trigger"), "CollectionRuleTriggers", p);
    if (!vg_node_get(rule, "Trigger"))
        vg_diag_err(L->d, &pr->key_pos, p,
                    "required setting is missing: every rule needs a "
                    "Trigger {Type, Settings}");
    else if (trig && vg__cfg_expect(L, trig, VG_NODE_MAP, p))
        r->trigger = trig;

    p = vg__cfg_path(L, path, "Actions");
    const struct vg_node *acts = vg_node_get(rule, "Actions");
    if (acts && vg__cfg_expect(L, acts, VG_NODE_SEQ, p)) {
        struct vg_node *seq = vg_tree_new_node(L->t, VG_NODE_SEQ, &acts->pos);
        if (!seq)
            return VG_ENOMEM;
        for (size_t i = 0; i < acts->n; i++) {
            char *ip = vg_path_index(p, i);
            const struct vg_node *a = from_template(L, acts->items[i], "CollectionRuleActions", ip);
            if (a && vg__cfg_expect(L, a, VG_NODE_MAP, ip) &&
                vg__node_push_item(L->t, seq, (struct vg_node *)a)) {
                free(ip);
                return VG_ENOMEM;
            }
            free(ip);
        }
        r->actions = seq;
    }

    p = vg__cfg_path(L, path, "Limits");
    const struct vg_node *lim =
        from_template(L, vg_node_get(rule, "Limits"), "CollectionRuleLimits", p);
    if (lim && vg__cfg_expect(L, lim, VG_NODE_MAP, p))
        r->limits = lim;

    p = vg__cfg_path(L, path, "Filters");
    const struct vg_node *filters = vg_node_get(rule, "Filters");
    struct vg_node *fseq = NULL;
    if (filters && vg__cfg_expect(L, filters, VG_NODE_SEQ, p) && filters->n) {
        r->filters = vg_tree_alloc(L->t, filters->n * sizeof(*r->filters));
        fseq = vg_tree_new_node(L->t, VG_NODE_SEQ, &filters->pos);
        if (!r->filters || !fseq)
            return VG_ENOMEM;
        for (size_t i = 0; i < filters->n; i++) {
            char *ip = vg_path_index(p, i);
            const struct vg_node *f =
                from_template(L, filters->items[i], "CollectionRuleFilters", ip);
            if (f && vg__cfg_filter(L, f, ip, &r->filters[r->n_filters]) == 0) {
                r->n_filters++;
                if (vg__node_push_item(L->t, fseq, (struct vg_node *)f)) {
                    free(ip);
                    return VG_ENOMEM;
                }
            }
            free(ip);
        }
    }
    static const char *const parts[] = {"Filters", "Trigger", "Actions", "Limits"};
    const struct vg_node *vals[] = {fseq, r->trigger, r->actions, r->limits};
    for (size_t i = 0; i < 4; i++) {
        if (vals[i] && vg__node_push_pair(L->t, res, (char *)parts[i], &vals[i]->pos,
                                          (struct vg_node *)vals[i]))
            return VG_ENOMEM;
    }
    r->raw = res;
    return 0;
}

static int load_rules(struct vg__loader *L)
{
    L->templates = vg_node_get(L->root, "Templates");
    if (L->templates && vg__cfg_expect(L, L->templates, VG_NODE_MAP, "Templates")) {
        static const char *const sections[] = {"CollectionRuleTriggers", "CollectionRuleActions",
                                               "CollectionRuleFilters", "CollectionRuleLimits",
                                               NULL};
        vg__cfg_check_keys(L, L->templates, "Templates", sections);
    } else {
        L->templates = NULL;
    }
    const struct vg_node *defaults = vg_node_get(L->root, "CollectionRuleDefaults");
    if (defaults && vg__cfg_expect(L, defaults, VG_NODE_MAP, "CollectionRuleDefaults")) {
        static const char *const sections[] = {"Triggers", "Actions", "Limits", NULL};
        vg__cfg_check_keys(L, defaults, "CollectionRuleDefaults", sections);
        L->cfg->settings.defaults = defaults;
    }
    const struct vg_node *rules = vg_node_get(L->root, "CollectionRules");
    if (vg_node_is_null(rules) || !vg__cfg_expect(L, rules, VG_NODE_MAP, "CollectionRules"))
        return 0;
    struct vg_settings *s = &L->cfg->settings;
    s->rules = rules->n ? vg_tree_alloc(L->t, rules->n * sizeof(*s->rules)) : NULL;
    if (rules->n && !s->rules)
        return VG_ENOMEM;
    for (size_t i = 0; i < rules->n; i++) {
        int rc = load_rule(L, &rules->pairs[i], &s->rules[s->n_rules]);
        if (rc)
            return rc;
        s->n_rules++;
    }
    return 0;
}

/* Top-level keys vigil knows: its own sections and dotnet-monitor's. A key-per-file name or an
 * unprefixed environment variable must start with one of them. */
static const char *const known_sections[] = {
    "CollectionRules", "Templates", "CollectionRuleDefaults", "Egress", "Server", "Storage",
    "Discovery", "Runtimes",
    /* dotnet-monitor's */
    "Urls", "Metrics", "Authentication", "DiagnosticPort", "DefaultProcess", "GlobalCounter",
    "InProcessFeatures", "CorsConfiguration", "Logging", "Kestrel", "AllowedHosts",
    "DotnetMonitorDebug", "$schema", NULL};

static int push_file(struct vg_config *cfg, const char *path)
{
    char **v = realloc(cfg->files, (cfg->n_files + 1) * sizeof(*v));
    if (!v)
        return VG_ENOMEM;
    cfg->files = v;
    if (!(cfg->files[cfg->n_files] = vg_strdup(path)))
        return VG_ENOMEM;
    cfg->n_files++;
    return 0;
}

static int merge_env(struct vg__loader *L, const char *const *envp, enum vg_env_kind kind)
{
    struct vg_node *doc;
    size_t count;
    int rc = vg_source_env(L->t, envp, kind, known_sections, L->d, &doc, &count);
    if (rc == 0 && doc)
        rc = vg_tree_merge_doc(L->t, doc);
    L->cfg->n_env += count;
    return rc;
}

/* The sources in dotnet-monitor's precedence (config/source.h), merged into one tree. */
static int load_sources(struct vg__loader *L, const struct vg_config_options *o)
{
    struct vg_config *cfg = L->cfg;
    struct vg_source_entry *entries = NULL;
    size_t n = 0;
    int rc = 0;
    if (o->envp && (rc = merge_env(L, o->envp, VG_ENV_PLAIN)))
        goto out;
    for (size_t i = 0; i < o->n_dirs; i++) {
        if (!(cfg->dirs[i] = vg_strdup(o->dirs[i]))) {
            rc = VG_ENOMEM;
            goto out;
        }
        cfg->n_dirs++;
        if ((rc = vg_source_scan_dir(L->t, o->dirs[i], known_sections, n, VG_CONFIG_MAX_FILES, L->d,
                                     &entries, &n)))
            goto out;
    }
    vg_source_cache_begin(o->cache);
    for (size_t i = 0; i < n; i++) {
        struct vg_node *doc;
        rc = vg_source_read(L->t, &entries[i], o->cache, L->d, &doc);
        if (rc == VG_ENOMEM)
            goto out;
        rc = 0;
        if (!doc)
            continue;
        if ((rc = push_file(cfg, entries[i].path)))
            goto out;
        if (entries[i].kind == VG_SOURCE_DOCUMENT && (rc = check_duplicate_rules(L, doc)))
            goto out;
        if ((rc = vg_tree_merge_doc(L->t, doc)))
            goto out;
    }
    vg_source_cache_end(o->cache);
    if (o->envp && (rc = merge_env(L, o->envp, VG_ENV_PREFIXED)))
        goto out;
    rc = vg_tree_normalize(L->t, L->d);
out:
    vg_source_entries_free(entries, n);
    return rc;
}

int vg_config_load(const char *const *dirs, size_t n_dirs, struct vg_diags *diags,
                   struct vg_config **out)
{
    return vg_config_load_ex(dirs, n_dirs, 0, diags, out);
}

int vg_config_load_ex(const char *const *dirs, size_t n_dirs, unsigned flags,
                      struct vg_diags *diags, struct vg_config **out)
{
    extern char **environ;
    struct vg_config_options o = {
        .dirs = dirs, .n_dirs = n_dirs, .flags = flags, .envp = (const char *const *)environ};
    return vg_config_load_opts(&o, diags, out);
}

int vg_config_load_opts(const struct vg_config_options *o, struct vg_diags *diags,
                        struct vg_config **out)
{
    *out = NULL;
    struct vg_config *cfg = calloc(1, sizeof(*cfg));
    int rc = VG_ENOMEM;
    if (!cfg || !(cfg->tree = vg_tree_create()))
        goto fail;
    cfg->dirs = calloc(o->n_dirs ? o->n_dirs : 1, sizeof(*cfg->dirs));
    if (!cfg->dirs)
        goto fail;
    struct vg__loader L = {.cfg = cfg, .t = cfg->tree, .d = diags, .flags = o->flags};
    if ((rc = load_sources(&L, o)))
        goto fail;
    L.root = vg_tree_root(cfg->tree);
    vg__cfg_check_keys(&L, L.root, "", known_sections);
    if ((rc = load_egress(&L)) || (rc = load_server(&L)) || (rc = load_rules(&L)) ||
        (rc = load_storage_discovery(&L)) || (rc = vg__cfg_load_monitor_sections(&L)))
        goto fail;
    load_runtimes(&L);
    if (diags->errors && !(o->flags & VG_CONFIG_KEEP_ON_ERROR)) {
        rc = VG_ECONFIG;
        goto fail;
    }
    *out = cfg;
    return diags->errors ? VG_ECONFIG : 0;
fail:
    vg_config_destroy(cfg);
    return rc;
}

void vg_config_destroy(struct vg_config *cfg)
{
    if (!cfg)
        return;
    vg_tree_destroy(cfg->tree);
    for (size_t i = 0; i < cfg->n_dirs; i++)
        free(cfg->dirs[i]);
    free(cfg->dirs);
    for (size_t i = 0; i < cfg->n_files; i++)
        free(cfg->files[i]);
    free(cfg->files);
    free(cfg);
}

const struct vg_egress_settings *vg_config_egress(const struct vg_config *cfg, const char *name)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->settings.n_egress; i++)
        if (strcasecmp(cfg->settings.egress[i].name, name) == 0)
            return &cfg->settings.egress[i];
    return NULL;
}

bool vg_config_is_secret_key(const char *key)
{
    return is_secret_key(key);
}
