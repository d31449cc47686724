/* AzureBlobStorage egress: block blobs. Each chunk is a Put Block (with Content-MD5, which the
 * service verifies) streamed from the spool; Put Block List commits them with the content type
 * and metadata. Auth: a SAS token appended to every URL, or SharedKey (egress/azure_sign.h).
 * x-ms-version is pinned (see docs/egress.md). */
#include "config/codec.h"
#include "config/error.h"
#include "config/log.h"
#include "egress/azure_sign.h"
#include "egress/egress_int.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define X_MS_VERSION "2021-08-06"
#define MIB (1024ull * 1024ull)
#define MAX_BLOCKS 50000

struct az {
    atomic_bool container_ready; /* created, found, or not ours to create (SAS) */
    struct vg__url uri;
    char *account;
    bool path_style;
    char *container;
    char *prefix;
    char *sas; /* without '?' */
    char *key; /* base64 */
    uint64_t block_size;
    struct vg_kv *meta;
    size_t n_meta;
};

static void az_destroy(void *state)
{
    struct az *a = state;
    if (!a)
        return;
    vg__url_free(&a->uri);
    free(a->account);
    free(a->container);
    free(a->prefix);
    free(a->sas);
    free(a->key);
    for (size_t i = 0; i < a->n_meta; i++) {
        free((char *)a->meta[i].key);
        free((char *)a->meta[i].value);
    }
    free(a->meta);
    free(a);
}

static int az_create(const struct vg_egress_settings *set, void **state, char *err, size_t errlen)
{
    const struct vg_egress_azure *c = &set->u.azure;
    struct az *a = calloc(1, sizeof(*a));
    if (!a)
        return VG_ENOMEM;
    int rc = 0;
    if (!c->account_uri || (rc = vg__url_split(c->account_uri, &a->uri))) {
        snprintf(err, errlen,
                 "AccountUri: expected http(s)://ACCOUNT.blob.core.windows.net or "
                 "http://HOST:PORT/ACCOUNT");
        rc = rc == VG_ENOMEM ? rc : VG_ECONFIG;
        goto out;
    }
    if (!c->container_name || !*c->container_name) {
        snprintf(err, errlen, "ContainerName is required");
        rc = VG_ECONFIG;
        goto out;
    }
    /* Path-style (emulators, custom domains): the account is the first path segment. */
    a->path_style = a->uri.path[0] != '\0';
    if (a->path_style) {
        const char *p = a->uri.path + 1;
        const char *s = strchr(p, '/');
        if (s) {
            snprintf(err, errlen, "AccountUri: expected only the account in the path");
            rc = VG_ECONFIG;
            goto out;
        }
        a->account = vg_strdup(p);
    } else {
        const char *dot = strchr(a->uri.hostport, '.');
        a->account = dot ? vg_strndup(a->uri.hostport, (size_t)(dot - a->uri.hostport)) : NULL;
        if (!dot) {
            snprintf(err, errlen, "AccountUri: cannot tell the account name from '%s'",
                     a->uri.hostport);
            rc = VG_ECONFIG;
            goto out;
        }
    }
    const char *sas = c->shared_access_signature;
    if (sas && *sas == '?')
        sas++;
    if (sas && *sas)
        a->sas = vg_strdup(sas);
    else if (c->account_key && *c->account_key)
        a->key = vg_strdup(c->account_key);
    else {
        snprintf(err, errlen, "set SharedAccessSignature or AccountKey");
        rc = VG_ECONFIG;
        goto out;
    }
    if (a->key) {
        struct vg_buf raw;
        vg_buf_init(&raw);
        int drc = vg_base64_decode(a->key, &raw);
        bool ok = !drc && raw.len > 0;
        vg_buf_free(&raw);
        if (!ok) {
            snprintf(err, errlen, "AccountKey: not valid base64");
            rc = VG_ECONFIG;
            goto out;
        }
    }
    a->container = vg_strdup(c->container_name);
    const char *bp = c->blob_prefix ? c->blob_prefix : "";
    while (*bp == '/')
        bp++;
    a->prefix = vg_strdup(bp);
    size_t pl = a->prefix ? strlen(a->prefix) : 0;
    while (pl && a->prefix[pl - 1] == '/')
        a->prefix[--pl] = '\0';
    a->block_size = c->block_size ? c->block_size : 4 * MIB;
    if (a->block_size > 4000 * MIB)
        a->block_size = 4000 * MIB;
    if (c->n_metadata) {
        a->meta = calloc(c->n_metadata, sizeof(*a->meta));
        if (!a->meta) {
            rc = VG_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < c->n_metadata; i++) {
        a->meta[i].key = vg_strdup(c->metadata[i].key);
        a->meta[i].value = vg_strdup(c->metadata[i].value);
        a->n_meta++;
        if (!a->meta[i].key || !a->meta[i].value) {
            rc = VG_ENOMEM;
            goto out;
        }
    }
    if (!a->account || !a->container || !a->prefix || (!a->sas && !a->key))
        rc = VG_ENOMEM;
out:
    if (rc)
        az_destroy(a);
    else
        *state = a;
    return rc;
}

/* The blob's path as sent (encoded): [/account]/container/prefix/name. */
static char *blob_path(struct az *a, const struct vg__upload *u)
{
    struct vg_buf b;
    vg_buf_init(&b);
    int rc = vg_buf_puts(&b, a->uri.path);
    if (!rc)
        rc = vg_buf_puts(&b, "/");
    if (!rc)
        rc = vg_url_encode(a->container, false, &b);
    if (!rc)
        rc = vg_buf_puts(&b, "/");
    if (!rc && a->prefix[0])
        rc = vg_url_encode(a->prefix, true, &b);
    if (!rc && a->prefix[0])
        rc = vg_buf_puts(&b, "/");
    if (!rc)
        rc = vg_url_encode(u->name, true, &b);
    if (rc) {
        vg_buf_free(&b);
        return NULL;
    }
    return vg_buf_steal(&b);
}

static int az_send_path(struct az *a, struct vg__upload *u, struct vg__call *c, char *path,
                        struct vg__client_resp *r);

static int az_send(struct az *a, struct vg__upload *u, struct vg__call *c,
                   struct vg__client_resp *r)
{
    char *path = blob_path(a, u);
    return path ? az_send_path(a, u, c, path, r) : VG_ENOMEM;
}

/* Sends c to `path` (owned, freed here). */
static int az_send_path(struct az *a, struct vg__upload *u, struct vg__call *c, char *path,
                        struct vg__client_resp *r)
{
    int rc = 0;
    char date[32], clen[24];
    vg_rfc1123_date(time(NULL), date);
    uint64_t body = c->fd >= 0 ? c->len : c->mem_len;
    snprintf(clen, sizeof(clen), "%llu", (unsigned long long)body);
    vg__call_header(c, "x-ms-version", X_MS_VERSION);
    vg__call_header(c, "x-ms-date", date);
    /* Signed, but sent by curl itself (a second copy would be a malformed request). */
    if (!c->head && strcmp(c->method, "GET") && strcmp(c->method, "DELETE"))
        vg__call_header(c, "Content-Length", clen);
    char *auth = NULL, *url = NULL;
    if (a->key) {
        struct vg_azure_sign_request q = {.method = c->method,
                                          .account = a->account,
                                          .path = path,
                                          .query = c->query,
                                          .headers = c->hdr,
                                          .n_headers = c->n_hdr,
                                          .path_style = a->path_style};
        if ((rc = vg_azure_shared_key_sign(&q, a->key, &auth, NULL))) {
            snprintf(u->err, sizeof(u->err), "SharedKey signing failed: %s", vg_strerror(rc));
            rc = VG_EFATAL;
            goto out;
        }
    }
    const char *q = c->query ? c->query : "";
    const char *sas = a->sas ? a->sas : "";
    url = vg_asprintf("%s://%s%s%s%s%s%s", a->uri.scheme, a->uri.hostport, path,
                      (*q || *sas) ? "?" : "", q, (*q && *sas) ? "&" : "", sas);
    if (!url) {
        rc = VG_ENOMEM;
        goto out;
    }
    const struct vg_http_header extra[] = {{"Authorization", auth}};
    /* The URL may carry a SAS token: log the path only. */
    char *target = vg_asprintf("%s%s%s", path, c->query ? "?" : "", c->query ? c->query : "");
    rc = target ? vg__client_send(u, c, url, target, extra, VG_ARRAY_SIZE(extra), r) : VG_ENOMEM;
    free(target);
out:
    free(url);
    free(auth);
    free(path);
    return rc;
}

static uint64_t az_chunk_size(void *state, const struct vg__upload *u)
{
    struct az *a = state;
    uint64_t bs = a->block_size;
    if (u->size / bs >= MAX_BLOCKS)
        bs = ((u->size / (MAX_BLOCKS - 1)) / MIB + 1) * MIB;
    return bs;
}

/* Creates the container when it is missing, as dotnet-monitor does (CreateIfNotExists) before
 * its uploads. A SAS often may not create containers (a container SAS, or an account SAS without
 * the container resource type): its 403 is ignored there too, and the upload says the rest. */
static int ensure_container(struct az *a, struct vg__upload *u)
{
    if (atomic_load(&a->container_ready))
        return 0;
    struct vg_buf path;
    vg_buf_init(&path);
    int rc = vg_buf_printf(&path, "%s/", a->uri.path);
    if (!rc)
        rc = vg_url_encode(a->container, false, &path);
    if (rc) {
        vg_buf_free(&path);
        return rc;
    }
    struct vg__call c;
    vg__call_init(&c, "PUT", "restype=container");
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    if ((rc = az_send_path(a, u, &c, vg_buf_steal(&path), &r)))
        goto out;
    if (!r.curl_code && (r.status == 201 || r.status == 409 || (r.status == 403 && a->sas))) {
        if (r.status == 201)
            vg_log(VG_LOG_INFO, "egress:azure", "created container %s", a->container);
        atomic_store(&a->container_ready, true);
        goto out;
    }
    rc = vg__client_judge(u, &r, "Create Container");
out:
    vg__client_resp_free(&r);
    return rc;
}

static int az_begin(void *state, struct vg__upload *u)
{
    u->chunked = true;
    return ensure_container(state, u);
}

static int az_put_chunk(void *state, struct vg__upload *u, unsigned no, uint64_t off, uint64_t len,
                        char **out_tag)
{
    struct az *a = state;
    int rc = 0;
    char raw_id[40], md5[25];
    /* Same length for every block of a blob (the service requires it), unique per upload. */
    snprintf(raw_id, sizeof(raw_id), "vigil-%016llx-%08u", (unsigned long long)u->id, no);
    struct vg_buf id, q;
    vg_buf_init(&id);
    vg_buf_init(&q);
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    int fd = open(u->spool_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(u->err, sizeof(u->err), "opening %s: %s", u->spool_path, vg_strerror(-errno));
        rc = VG_EFATAL;
        goto out;
    }
    if ((rc = vg__file_md5_b64(fd, off, len, md5))) {
        snprintf(u->err, sizeof(u->err), "reading %s: %s", u->spool_path, vg_strerror(rc));
        rc = VG_EFATAL;
        goto out;
    }
    if ((rc = vg_base64_encode(raw_id, strlen(raw_id), &id)) ||
        (rc = vg_buf_puts(&q, "comp=block&blockid=")) || (rc = vg_url_encode(id.data, false, &q)))
        goto out;
    struct vg__call c;
    vg__call_init(&c, "PUT", q.data);
    vg__call_header(&c, "Content-MD5", md5);
    c.fd = fd;
    c.off = off;
    c.len = len;
    if ((rc = az_send(a, u, &c, &r)) || (rc = vg__client_judge(u, &r, "Put Block")))
        goto out;
    *out_tag = vg_buf_steal(&id);
out:
    if (fd >= 0)
        close(fd);
    vg_buf_free(&id);
    vg_buf_free(&q);
    vg__client_resp_free(&r);
    return rc;
}

static int az_probe(void *state, struct vg__upload *u, bool *complete)
{
    struct az *a = state;
    *complete = false;
    struct vg__call c;
    vg__call_init(&c, "HEAD", NULL);
    c.head = true;
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    int rc = az_send(a, u, &c, &r);
    if (!rc && !r.curl_code && r.status == 404)
        goto out;
    if (!rc)
        rc = vg__client_judge(u, &r, "Get Blob Properties");
    if (!rc)
        *complete = vg__client_object_complete(&r, u, "x-ms-meta-vigilsha256");
out:
    vg__client_resp_free(&r);
    return rc;
}

static int az_finish(void *state, struct vg__upload *u)
{
    struct az *a = state;
    struct vg_buf body, names;
    vg_buf_init(&body);
    vg_buf_init(&names);
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    int rc = vg_buf_puts(&body, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for (size_t i = 0; i < u->n_parts && !rc; i++)
        rc = vg_buf_printf(&body, "<Latest>%s</Latest>", u->parts[i].tag);
    if (!rc)
        rc = vg_buf_puts(&body, "</BlockList>");
    if (rc)
        goto out;
    struct vg__call c;
    vg__call_init(&c, "PUT", "comp=blocklist");
    vg__call_header(&c, "Content-Type", "application/xml; charset=utf-8");
    vg__call_header(&c, "x-ms-blob-content-type", u->content_type);
    /* Header names must outlive the call: NUL-separated in one buffer, offsets first. */
    size_t n = a->n_meta + u->n_meta + 1;
    size_t offs[40];
    if (n > VG_ARRAY_SIZE(offs))
        n = VG_ARRAY_SIZE(offs);
    const char *vals[40];
    for (size_t i = 0; i < n && !rc; i++) {
        const char *k;
        if (i < a->n_meta) {
            k = a->meta[i].key;
            vals[i] = a->meta[i].value;
        } else if (i < a->n_meta + u->n_meta) {
            k = u->meta[i - a->n_meta].key;
            vals[i] = u->meta[i - a->n_meta].value;
        } else {
            k = "vigilsha256";
            vals[i] = u->sha256;
        }
        offs[i] = names.len;
        rc = vg_buf_printf(&names, "x-ms-meta-%s", k);
        if (!rc)
            rc = vg_buf_append(&names, "", 1);
    }
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++)
        vg__call_header(&c, names.data + offs[i], vals[i]);
    c.mem = body.data;
    c.mem_len = body.len;
    if ((rc = az_send(a, u, &c, &r)) || (rc = vg__client_judge(u, &r, "Put Block List")))
        goto out;
    bool complete = false;
    if ((rc = az_probe(a, u, &complete)))
        goto out;
    if (!complete) {
        snprintf(u->err, sizeof(u->err),
                 "the stored blob does not have the expected size %llu and checksum",
                 (unsigned long long)u->size);
        rc = VG_ERETRY;
    }
out:
    vg_buf_free(&body);
    vg_buf_free(&names);
    vg__client_resp_free(&r);
    return rc;
}

static void az_abort(void *state, struct vg__upload *u)
{
    /* Uncommitted blocks are discarded by the service (after a week); nothing to undo as long
     * as the block list is never committed. */
}

static int az_remove(void *state, struct vg__upload *u)
{
    struct az *a = state;
    struct vg__call c;
    vg__call_init(&c, "DELETE", NULL);
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    int rc = az_send(a, u, &c, &r);
    if (!rc && !(r.status == 404 && !r.curl_code))
        rc = vg__client_judge(u, &r, "Delete Blob");
    vg__client_resp_free(&r);
    return rc;
}

static int az_egress_path(void *state, const struct vg__upload *u, char **out)
{
    struct az *a = state;
    char *path = blob_path(a, u);
    *out = path ? vg_asprintf("%s://%s%s", a->uri.scheme, a->uri.hostport, path) : NULL;
    free(path);
    return *out ? 0 : VG_ENOMEM;
}

const struct vg_egress_provider_type vg__egress_azure_blob = {
    .type_name = "AzureBlobStorage",
    .kind = VG_EGRESS_AZURE_BLOB,
    .spools = true,
    .streams = true,
    .create = az_create,
    .destroy = az_destroy,
    .chunk_size = az_chunk_size,
    .begin = az_begin,
    .put_chunk = az_put_chunk,
    .finish = az_finish,
    .probe = az_probe,
    .abort = az_abort,
    .remove = az_remove,
    .egress_path = az_egress_path,
};
