/* The egress core: the providers, the shared object, and the artifact API (open, write, commit,
 * abort). The state database is db.c, spool files spool.c, the resume worker resume.c, uploading
 * itself upload.c, HTTP client.c, each provider its own file. */
#include "egress/egress.h"
#include "config/codec.h"
#include "config/error.h"
#include "config/log.h"
#include "egress/egress_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_C "egress"

/* One vtable per provider family, registered here. */
static const struct vg_egress_provider_type *const provider_types[] = {
    [VG_EGRESS_FILESYSTEM] = &vg__egress_filesystem,
    [VG_EGRESS_S3] = &vg__egress_s3,
    [VG_EGRESS_AZURE_BLOB] = &vg__egress_azure_blob,
};

struct vg_artifact {
    struct vg_egress *e;
    struct vg__upload *u;
    struct vg__spool sp;
    /* Parts stream to the provider while the artifact is written (spooling providers that
     * upload in parts): each full part of the spool is queued as soon as it is written. */
    bool streaming;
    uint64_t chunk;
    unsigned next_no;
};

/* Parts beyond this many wait for the commit: the part size may have to grow for huge
 * artifacts (S3 allows 10,000 parts), which only the final size tells. */
#define STREAM_MAX_PARTS 5000

/* ---------------------------------------------------------------- small helpers */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void vg__egress_count(struct vg_egress *e, enum vg__counter c, int64_t delta)
{
    pthread_mutex_lock(&e->mu);
    uint64_t *f = NULL;
    switch (c) {
    case VG__C_STARTED:
        f = &e->st.uploads_started;
        break;
    case VG__C_SUCCEEDED:
        f = &e->st.uploads_succeeded;
        break;
    case VG__C_FAILED:
        f = &e->st.uploads_failed;
        break;
    case VG__C_RETRYING:
        f = &e->st.uploads_retrying;
        break;
    case VG__C_RETRIES:
        f = &e->st.retries;
        break;
    case VG__C_ACTIVE:
        f = &e->st.uploads_active;
        break;
    case VG__C_BYTES:
        f = &e->st.bytes_uploaded;
        break;
    }
    *f = (uint64_t)((int64_t)*f + delta);
    pthread_mutex_unlock(&e->mu);
}

void vg_egress_status(struct vg_egress *e, struct vg_egress_status *out)
{
    pthread_mutex_lock(&e->mu);
    *out = e->st;
    out->spool_bytes = e->spool_used;
    out->spool_quota = e->quota;
    pthread_mutex_unlock(&e->mu);
}

int vg__egress_stopping(struct vg_egress *e)
{
    pthread_mutex_lock(&e->mu);
    int s = e->stopping;
    pthread_mutex_unlock(&e->mu);
    return s;
}

int vg__upload_sleep(struct vg__upload *u, uint64_t ms)
{
    struct vg_egress *e = u->e;
    uint64_t end = vg_mono_ms() + ms;
    int rc = 0;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        uint64_t now = vg_mono_ms();
        if (e->stopping || vg__upload_cancelled(u)) {
            rc = VG_ECANCELED;
            break;
        }
        if (now >= end)
            break;
        /* A cancel sets a flag without signalling: look again every 100 ms. */
        uint64_t step = end - now < 100 ? end - now : 100;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + step * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&e->cond, &e->mu, &ts);
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void vg__egress_note_pending(struct vg_egress *e)
{
    pthread_mutex_lock(&e->mu);
    e->pending_hint = true;
    pthread_mutex_unlock(&e->mu);
}

void vg__egress_note_success(struct vg_egress *e)
{
    pthread_mutex_lock(&e->mu);
    bool kick = e->pending_hint;
    pthread_mutex_unlock(&e->mu);
    /* Waiting for the resume timer would leave an operation Running for minutes after its
     * provider came back. A resume already running keeps the hint for the next success. */
    if (kick && vg_egress_resume_all(e) == 0) {
        pthread_mutex_lock(&e->mu);
        e->pending_hint = false;
        pthread_mutex_unlock(&e->mu);
    }
}

/* ---------------------------------------------------------------- metadata text */

int vg__upload_meta_add(struct vg__upload *u, const char *k, const char *v)
{
    struct vg_kv *m = realloc(u->meta, (u->n_meta + 1) * sizeof(*m));
    if (!m)
        return VG_ENOMEM;
    u->meta = m;
    m[u->n_meta].key = vg_strdup(k);
    m[u->n_meta].value = vg_strdup(v);
    if (!m[u->n_meta].key || !m[u->n_meta].value) {
        free((char *)m[u->n_meta].key);
        free((char *)m[u->n_meta].value);
        return VG_ENOMEM;
    }
    u->n_meta++;
    return 0;
}

static bool meta_key_ok(const char *k)
{
    if (!k || !*k || (*k >= '0' && *k <= '9'))
        return false;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
              *k == '_'))
            return false;
    return true;
}

static bool meta_value_ok(const char *v)
{
    if (!v)
        return false;
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || (unsigned char)*v > 0x7e)
            return false;
    return true;
}

static bool name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (!n || n > 1000 || name[0] == '/')
        return false;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return false;
    for (const char *p = name; p && *p;) {
        const char *s = strchr(p, '/');
        size_t len = s ? (size_t)(s - p) : strlen(p);
        if ((len == 2 && !strncmp(p, "..", 2)) || (len == 1 && *p == '.') || len == 0)
            return false;
        p = s ? s + 1 : NULL;
    }
    return true;
}

/* ---------------------------------------------------------------- uploads */

void vg__upload_free(struct vg__upload *u)
{
    if (!u)
        return;
    if (u->claimed)
        vg__active_release(u);
    free(u->name);
    free(u->content_type);
    for (size_t i = 0; i < u->n_meta; i++) {
        free((char *)u->meta[i].key);
        free((char *)u->meta[i].value);
    }
    free(u->meta);
    free(u->spool_path);
    free(u->remote_id);
    for (size_t i = 0; i < u->n_parts; i++)
        free(u->parts[i].tag);
    free(u->parts);
    if (u->curl)
        vg__curl_easy_cleanup(u->curl);
    free(u);
}

struct vg__provider *vg__egress_provider(struct vg_egress *e, const char *name)
{
    for (size_t i = 0; i < e->n_providers; i++)
        if (!strcasecmp(e->providers[i].name, name))
            return &e->providers[i];
    return NULL;
}

/* ---------------------------------------------------------------- create / destroy */

static void curl_init_once(void)
{
    /* Not thread-safe on every libcurl build: do it once, before any worker uses curl. */
    vg__curl_global_init(CURL_GLOBAL_DEFAULT);
}

int vg_egress_validate(const struct vg_egress_settings *p, char *err, size_t errlen)
{
    err[0] = '\0';
    if ((unsigned)p->kind >= VG_ARRAY_SIZE(provider_types) || !provider_types[p->kind]) {
        snprintf(err, errlen, "unknown provider kind");
        return VG_ECONFIG;
    }
    const struct vg_egress_provider_type *t = provider_types[p->kind];
    if (t->validate)
        return t->validate(p, err, errlen);
    void *state = NULL;
    int rc = t->create(p, &state, err, errlen);
    if (rc == 0)
        t->destroy(state);
    return rc;
}

int vg_egress_create(const struct vg_egress_settings *providers, size_t n,
                     const struct vg_storage_settings *storage, struct vg_egress **out, char *err,
                     size_t errlen)
{
    int rc = 0;
    char scratch[1];
    if (!err) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    *out = NULL;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once);
    struct vg_egress *e = calloc(1, sizeof(*e));
    if (!e)
        return VG_ENOMEM;
    pthread_mutex_init(&e->db_mu, NULL);
    pthread_mutex_init(&e->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&e->cond, &ca);
    pthread_condattr_destroy(&ca);

    unsigned char rnd[16];
    FILE *ur = fopen("/dev/urandom", "rb");
    if (!ur || fread(rnd, 1, sizeof(rnd), ur) != sizeof(rnd)) {
        uint64_t t = vg_mono_ms() ^ ((uint64_t)getpid() << 32);
        memcpy(rnd, &t, sizeof(t));
        memcpy(rnd + 8, &t, sizeof(t));
    }
    if (ur)
        fclose(ur);
    vg_hex_encode(rnd, sizeof(rnd), e->run_id);

    e->state_dir = vg_strdup(storage && storage->state_dir ? storage->state_dir : "/var/lib/vigil");
    e->spool_dir = storage && storage->spool_dir ? vg_strdup(storage->spool_dir)
                                                 : vg_asprintf("%s/spool", e->state_dir);
    if (!e->state_dir || !e->spool_dir) {
        rc = VG_ENOMEM;
        goto out;
    }
    /* Both hold what others must not read or replace (presigned URLs, dumps). */
    for (int i = 0; i < 2; i++) {
        const char *dir = i ? e->spool_dir : e->state_dir;
        int dfd = -1;
        char derr[400] = "";
        if ((rc = vg__dir_open_safe(dir, true, &dfd, derr, sizeof(derr)))) {
            set_err(err, errlen, "Storage.%s: %s", i ? "SpoolDir" : "StateDir", derr);
            goto out;
        }
        close(dfd);
    }
    e->quota = storage && storage->spool_quota ? storage->spool_quota
                                               : vg__fs_bytes(e->spool_dir, true) / 10;
    /* Like systemd-coredump's KeepFree: unset means 15% of the filesystem, at most 4 GiB. */
    e->keep_free = storage && storage->keep_free ? storage->keep_free
                                                 : vg__fs_bytes(e->spool_dir, true) / 100 * 15;
    if ((!storage || !storage->keep_free) && e->keep_free > (4ull << 30))
        e->keep_free = 4ull << 30;
    e->spool_used = vg__spool_usage(e->spool_dir);

    e->providers = calloc(n ? n : 1, sizeof(*e->providers));
    if (!e->providers) {
        rc = VG_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const struct vg_egress_settings *s = &providers[i];
        if ((unsigned)s->kind >= VG_ARRAY_SIZE(provider_types) || !s->name) {
            set_err(err, errlen, "egress provider %zu: unknown kind", i);
            rc = VG_ECONFIG;
            goto out;
        }
        struct vg__provider *p = &e->providers[e->n_providers];
        p->type = provider_types[s->kind];
        p->name = vg_strdup(s->name);
        const char *short_kind = s->kind == VG_EGRESS_S3           ? "s3"
                                 : s->kind == VG_EGRESS_AZURE_BLOB ? "azure"
                                                                   : "fs";
        p->component = vg_asprintf("egress:%s:%s", short_kind, s->name);
        if (!p->name || !p->component) {
            free(p->name);
            free(p->component);
            rc = VG_ENOMEM;
            goto out;
        }
        p->compression = s->compression;
        p->max_retries = s->max_retries;
        p->retry_max_delay_ms = s->retry_max_delay_ms ? s->retry_max_delay_ms : 300000;
        p->timeout_ms = s->timeout_ms ? s->timeout_ms : 60000;
        char perr[400] = "";
        rc = p->type->create(s, &p->state, perr, sizeof(perr));
        if (rc) {
            set_err(err, errlen, "Egress.%s.%s: %s", p->type->type_name, s->name,
                    perr[0] ? perr : vg_strerror(rc));
            free(p->name);
            free(p->component);
            goto out;
        }
        e->n_providers++;
    }
    if ((rc = vg__db_open(e, err, errlen)))
        goto out;
    *out = e;
out:
    if (rc) {
        vg_log(VG_LOG_ERROR, LOG_C, "%s", err[0] ? err : vg_strerror(rc));
        vg_egress_destroy(e);
    }
    return rc;
}

void vg_egress_destroy(struct vg_egress *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
    vg__resume_join(e);
    for (size_t i = 0; i < e->n_providers; i++) {
        e->providers[i].type->destroy(e->providers[i].state);
        free(e->providers[i].name);
        free(e->providers[i].component);
    }
    free(e->providers);
    vg__db_close(e);
    free(e->state_dir);
    free(e->spool_dir);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->db_mu);
    free(e);
}

/* ---------------------------------------------------------------- artifacts */

const char *vg_artifact_error(const struct vg_artifact *a)
{
    return a ? a->sp.err : "";
}

/* The spool file of u in Storage.SpoolDir: u->spool_path and a new file's fd. */
static int spool_create(struct vg_egress *e, struct vg__upload *u, int *fd, char *err,
                        size_t errlen)
{
    char name[64];
    snprintf(name, sizeof(name), "upload-%lld.spool", (long long)u->id);
    u->spool_path = vg_asprintf("%s/%s", e->spool_dir, name);
    if (!u->spool_path)
        return VG_ENOMEM;
    int dfd = -1;
    int rc = vg__dir_open_safe(e->spool_dir, true, &dfd, err, errlen);
    if (rc)
        return rc;
    if ((rc = vg__file_create_at(dfd, name, fd)))
        snprintf(err, errlen, "cannot create %s: %s", u->spool_path, vg_strerror(rc));
    close(dfd);
    return rc;
}

int vg_artifact_open(struct vg_egress *e, const char *provider, const char *name,
                     const char *content_type, const struct vg_kv *metadata, size_t n_metadata,
                     struct vg_artifact **out)
{
    *out = NULL;
    struct vg__provider *p = vg__egress_provider(e, provider ? provider : "");
    if (!p) {
        vg_log(VG_LOG_ERROR, LOG_C, "no egress provider named '%s'", provider ? provider : "");
        return VG_ENOTFOUND;
    }
    if (!name_ok(name)) {
        vg_log(VG_LOG_ERROR, p->component, "invalid artifact name '%s'", name ? name : "");
        return VG_EINVAL;
    }
    char nerr[200] = "";
    if (p->type->check_name && p->type->check_name(p->state, name, nerr, sizeof(nerr))) {
        vg_log(VG_LOG_ERROR, p->component, "invalid artifact name '%s': %s", name, nerr);
        return VG_EINVAL;
    }
    for (size_t i = 0; i < n_metadata; i++)
        if (!meta_key_ok(metadata[i].key) || !meta_value_ok(metadata[i].value)) {
            vg_log(VG_LOG_ERROR, p->component,
                   "invalid metadata '%s': keys are letters, digits and _, values printable ASCII",
                   metadata[i].key ? metadata[i].key : "");
            return VG_EINVAL;
        }
    if (content_type && !meta_value_ok(content_type))
        return VG_EINVAL;

    int rc = 0;
    bool spool_open = false;
    struct vg_artifact *a = calloc(1, sizeof(*a));
    struct vg__upload *u = calloc(1, sizeof(*u));
    if (!a || !u) {
        free(a);
        free(u);
        return VG_ENOMEM;
    }
    a->e = e;
    a->u = u;
    u->e = e;
    u->prov = p;
    const char *ct = content_type ? content_type : "application/octet-stream";
    static const char *const suffix[] = {"", ".gz", ".zst"};
    static const char *const comp_ct[] = {NULL, "application/gzip", "application/zstd"};
    static const char *const comp_name[] = {"none", "gzip", "zstd"};
    enum vg_compression comp = p->compression;
    u->name = vg_asprintf("%s%s", name, suffix[comp]);
    u->content_type = vg_strdup(comp_ct[comp] ? comp_ct[comp] : ct);
    if (!u->name || !u->content_type) {
        rc = VG_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_metadata && !rc; i++)
        rc = vg__upload_meta_add(u, metadata[i].key, metadata[i].value);
    if (!rc && comp != VG_COMPRESS_NONE)
        rc = vg__upload_meta_add(u, "vigilcompression", comp_name[comp]);
    if (!rc && comp != VG_COMPRESS_NONE)
        rc = vg__upload_meta_add(u, "vigilcontenttype", ct);
    /* The row exists before the file, so a crash while spooling leaves a trace to clean up. */
    if (rc || (rc = vg__db_insert_upload(u)))
        goto out;
    if (!vg__active_claim(u)) {
        rc = VG_ENOMEM;
        goto out;
    }
    int fd = -1;
    char ferr[400] = "";
    if (p->type->spools)
        rc = spool_create(e, u, &fd, ferr, sizeof(ferr));
    else
        rc = p->type->direct_create(p->state, u, &u->spool_path, &fd, ferr, sizeof(ferr));
    if (rc) {
        vg_log(VG_LOG_ERROR, p->component, "%s: %s", u->name, ferr[0] ? ferr : vg_strerror(rc));
        goto out;
    }
    spool_open = true;
    rc = vg__spool_open(&a->sp, u, fd, p->type->spools, comp);
    if (!rc)
        rc = vg__db_set_spool(u);
    if (rc)
        goto out;
    if (p->type->streams) {
        a->streaming = true;
        a->chunk = p->type->chunk_size(p->state, u); /* the size is not known yet */
        a->next_no = 1;
    }
    vg__egress_count(e, VG__C_ACTIVE, 1);
    vg_log(VG_LOG_DEBUG, p->component, "artifact %s opened (upload %lld)", u->name,
           (long long)u->id);
    *out = a;
out:
    if (rc) {
        if (spool_open)
            vg__spool_close(&a->sp, true);
        if (u->id)
            vg__db_set_state(u, "failed", vg_strerror(rc));
        vg__upload_free(u);
        free(a);
    }
    return rc;
}

/* Queues the parts the spool holds in full to the lanes (starting them with the first one).
 * Never waits for the network: a lane begins the remote upload. Any trouble just ends the
 * streaming; the commit sends what is missing. */
static void stream_parts(struct vg_artifact *a)
{
    struct vg__upload *u = a->u;
    while (a->streaming && a->sp.written >= (uint64_t)a->next_no * a->chunk) {
        if (a->next_no > STREAM_MAX_PARTS ||
            (!u->pool && vg__pool_start(u, a->chunk, true, &u->pool)) ||
            vg__pool_add(u->pool, a->next_no, (uint64_t)(a->next_no - 1) * a->chunk, a->chunk)) {
            a->streaming = false;
            break;
        }
        a->next_no++;
    }
}

int vg_artifact_write(struct vg_artifact *a, const void *buf, size_t len)
{
    if (!a->sp.failed && vg__upload_cancelled(a->u)) {
        a->sp.failed = VG_ECANCELED;
        snprintf(a->sp.err, sizeof(a->sp.err), "cancelled");
    }
    int rc = vg__spool_write(&a->sp, buf, len);
    if (!rc && a->streaming)
        stream_parts(a);
    return rc;
}

int64_t vg_artifact_id(const struct vg_artifact *a)
{
    return a->u->id;
}

int vg_egress_upload_cancel(struct vg_egress *e, int64_t id)
{
    /* A thread of this process writes or uploads it: it stops and undoes what it did. */
    if (vg__active_cancel(e->state_dir, id))
        return 0;
    struct vg__upload *u = NULL;
    char *state = NULL;
    int rc = vg__db_load_upload(e, id, &u, &state);
    if (rc)
        return rc;
    if (!strcmp(state, "done") || !strcmp(state, "failed") || !strcmp(state, "cancelled") ||
        !strcmp(state, "cancelling")) {
        rc = VG_ESTATE;
    } else if (!vg__active_claim(u)) {
        /* it became live meanwhile (the resume worker took it) */
        rc = vg__active_cancel(e->state_dir, id) ? 0 : VG_ESTATE;
    } else if (!u->prov) {
        rc = vg__db_set_state(u, "cancelled", "cancelled");
        vg__spool_drop(u);
    } else {
        /* Waiting for a retry: nothing runs. Local things now; a multipart upload already
         * begun needs the network: the resume worker aborts it (state cancelling). */
        vg__spool_drop(u);
        rc = vg__db_set_state(u, u->remote_id ? "cancelling" : "cancelled", "cancelled");
        if (!rc && u->remote_id)
            vg_egress_resume_all(e);
    }
    vg__upload_free(u);
    free(state);
    return rc;
}

void vg_artifact_abort(struct vg_artifact *a)
{
    if (!a)
        return;
    struct vg__upload *u = a->u;
    bool cancelled = vg__upload_cancelled(u);
    if (u->pool) {
        vg__pool_stop(u->pool);
        vg__pool_wait(u->pool, NULL, 0);
        u->pool = NULL;
    }
    if (u->remote_id) {
        /* parts streamed during the write: the multipart upload goes too (one attempt) */
        u->cleanup = true;
        u->prov->type->abort(u->prov->state, u);
    }
    vg__spool_close(&a->sp, true);
    vg__db_set_state(u, cancelled ? "cancelled" : "failed", a->sp.failed ? a->sp.err : "aborted");
    vg__egress_count(a->e, VG__C_ACTIVE, -1);
    vg__upload_free(a->u);
    free(a);
}

int vg_artifact_commit(struct vg_artifact *a, char **out_path, char *err, size_t errlen)
{
    *out_path = NULL;
    char scratch[1];
    if (!err) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    int rc = vg__spool_finish(&a->sp);
    if (rc) {
        set_err(err, errlen, "%s", a->sp.err);
        vg_artifact_abort(a);
        return rc;
    }
    struct vg__upload *u = a->u;
    struct vg_egress *e = a->e;
    vg__spool_close(&a->sp, false);
    free(a);
    vg__egress_count(e, VG__C_ACTIVE, -1); /* vg__upload_run counts it again */
    rc = vg__db_set_pending(u);
    if (rc) {
        set_err(err, errlen, "state database write failed");
        vg__spool_drop(u);
        vg__upload_free(u);
        return rc;
    }
    rc = vg__upload_run(u, out_path);
    if (rc)
        set_err(err, errlen, "%s", u->err[0] ? u->err : vg_strerror(rc));
    vg__upload_free(u);
    return rc;
}
