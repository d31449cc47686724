/* The egress core: providers, the state database, the spool (quota, compression) and the resume
 * worker. Uploading itself is in upload.c, HTTP in http.c, each provider in its own file. */
#include "egress/egress.h"
#include "config/error.h"
#include "config/log.h"
#include "egress/egress_int.h"
#include "egress/egress_sql.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define LOG_C "egress"
#define WEEK_MS (7ull * 24 * 3600 * 1000)

/* One vtable per provider family, registered here. */
static const struct vg_egress_provider_type *const provider_types[] = {
    [VG_EGRESS_FILESYSTEM] = &vg__egress_filesystem,
    [VG_EGRESS_S3] = &vg__egress_s3,
    [VG_EGRESS_AZURE_BLOB] = &vg__egress_azure_blob,
};

struct vg_egress {
    struct vg__provider *providers;
    size_t n_providers;
    sqlite3 *db;
    pthread_mutex_t db_mu;
    char *state_dir;
    char *spool_dir;
    uint64_t quota;
    uint64_t keep_free;
    char run_id[33];

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cond;
    bool stopping;
    uint64_t spool_used;
    struct vg_egress_status st;
    bool resume_running;
    bool resume_joinable;
    pthread_t resume_thread;
};

struct vg_artifact {
    struct vg_egress *e;
    struct vg__upload *u;
    int fd;
    bool spools;
    char *quota_dir; /* the directory whose filesystem keep_free protects */
    enum vg_compression comp;
    z_stream z;
    bool z_init;
    ZSTD_CStream *zs;
    EVP_MD_CTX *sha;
    uint64_t written;  /* bytes in the file */
    uint64_t reserved; /* bytes accounted against the spool quota */
    int failed;
    char err[512];
    unsigned char out[64 * 1024];
};

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

static int mkdir_p(const char *path, mode_t mode)
{
    char *p = vg_strdup(path);
    if (!p)
        return VG_ENOMEM;
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) != 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return rc;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
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

int vg__egress_sleep(struct vg_egress *e, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (ms % 1000) * 1000000ull;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    int rc = 0;
    pthread_mutex_lock(&e->mu);
    while (!e->stopping) {
        if (pthread_cond_timedwait(&e->cond, &e->mu, &ts) == ETIMEDOUT)
            break;
    }
    if (e->stopping)
        rc = VG_ECANCELED;
    pthread_mutex_unlock(&e->mu);
    return rc;
}

/* ---------------------------------------------------------------- database */

static int db_err(struct vg_egress *e, int src, const char *what)
{
    vg_log(VG_LOG_ERROR, LOG_C, "state db: %s: %s (%d)", what, sqlite3_errmsg(e->db), src);
    return VG_ESQLITE;
}

static int db_open(struct vg_egress *e, char *err, size_t errlen)
{
    char *path = vg_asprintf("%s/vigil.db", e->state_dir);
    if (!path)
        return VG_ENOMEM;
    int rc = 0;
    int src = sqlite3_open_v2(
        path, &e->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        set_err(err, errlen, "cannot open %s: %s", path,
                e->db ? sqlite3_errmsg(e->db) : sqlite3_errstr(src));
        rc = VG_ESQLITE;
        goto out;
    }
    sqlite3_busy_timeout(e->db, 10000); /* the engine shares the file */
    /* It records EgressPaths, which may be presigned URLs: owner only (SQLite gives the -wal
     * and -shm files the database's mode). */
    chmod(path, 0600);
    char *msg = NULL;
    if (sqlite3_exec(e->db, VG_EGRESS_SQL_PRAGMAS VG_EGRESS_SQL_SCHEMA_TABLE, NULL, NULL, &msg) !=
        SQLITE_OK)
        goto sql_fail;
    int version = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(e->db, VG_EGRESS_SQL_GET_VERSION, -1, &st, NULL) != SQLITE_OK)
        goto sql_fail;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > VG_EGRESS_SCHEMA_VERSION) {
        set_err(err, errlen, "%s: egress schema version %d is newer than this vigil (%d)", path,
                version, VG_EGRESS_SCHEMA_VERSION);
        rc = VG_ESQLITE;
        goto out;
    }
    if (version < 1 &&
        sqlite3_exec(e->db, "BEGIN;" VG_EGRESS_SQL_SCHEMA_V1 VG_EGRESS_SQL_SET_VERSION "COMMIT;",
                     NULL, NULL, &msg) != SQLITE_OK)
        goto sql_fail;
    goto out;
sql_fail:
    set_err(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(e->db));
    sqlite3_free(msg);
    rc = VG_ESQLITE;
out:
    free(path);
    return rc;
}

/* Runs one statement with bound values: 'i' int64, 's' text (NULL allowed). */
static int db_run(struct vg_egress *e, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(e->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(e, 0, "prepare");
        goto out;
    }
    for (int i = 0; types[i]; i++) {
        if (types[i] == 'i')
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        else
            sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
    }
    int src = sqlite3_step(st);
    if (src != SQLITE_DONE)
        rc = db_err(e, src, "step");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    va_end(ap);
    return rc;
}

int vg__db_set_state(struct vg__upload *u, const char *state, const char *err)
{
    return db_run(u->e, VG_EGRESS_SQL_SET_STATE, "issi", (int64_t)u->id, state, err,
                  (int64_t)vg_wall_ms());
}

int vg__db_set_remote(struct vg__upload *u)
{
    return db_run(u->e, VG_EGRESS_SQL_SET_REMOTE, "isi", (int64_t)u->id, u->remote_id,
                  (int64_t)vg_wall_ms());
}

int vg__db_add_part(struct vg__upload *u, const struct vg__part *p)
{
    return db_run(u->e, VG_EGRESS_SQL_ADD_PART, "iiiis", (int64_t)u->id, (int64_t)p->no,
                  (int64_t)p->off, (int64_t)p->len, p->tag);
}

int vg__db_clear_parts(struct vg__upload *u)
{
    return db_run(u->e, VG_EGRESS_SQL_CLEAR_PARTS, "i", (int64_t)u->id);
}

int vg__db_note_retry(struct vg__upload *u, const char *err)
{
    return db_run(u->e, VG_EGRESS_SQL_SET_RETRY, "isi", (int64_t)u->id, err, (int64_t)vg_wall_ms());
}

int vg__db_set_done(struct vg__upload *u, const char *egress_path)
{
    return db_run(u->e, VG_EGRESS_SQL_SET_DONE, "isi", (int64_t)u->id, egress_path,
                  (int64_t)vg_wall_ms());
}

/* ---------------------------------------------------------------- metadata text */

static int meta_serialize(const struct vg_kv *kv, size_t n, struct vg_buf *out)
{
    for (size_t i = 0; i < n; i++)
        if (vg_buf_printf(out, "%s\t%s\n", kv[i].key, kv[i].value))
            return VG_ENOMEM;
    if (!out->data)
        return vg_buf_puts(out, "");
    return 0;
}

static int meta_add(struct vg__upload *u, const char *k, const char *v)
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

static int meta_parse(struct vg__upload *u, const char *text)
{
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        const char *tab = strchr(p, '\t');
        if (!nl || !tab || tab > nl)
            return VG_EPARSE;
        char *k = vg_strndup(p, (size_t)(tab - p));
        char *v = vg_strndup(tab + 1, (size_t)(nl - tab - 1));
        int rc = (k && v) ? meta_add(u, k, v) : VG_ENOMEM;
        free(k);
        free(v);
        if (rc)
            return rc;
        p = nl + 1;
    }
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

/* ---------------------------------------------------------------- active uploads */

/* Uploads being written or uploaded by any vg_egress of this process (a reload creates a new
 * one while the old one still finishes its uploads): a resume must never run one twice. */
static pthread_mutex_t active_mu = PTHREAD_MUTEX_INITIALIZER;
static struct active_upload {
    char *state_dir;
    int64_t id;
} * active;
static size_t n_active, cap_active;

static bool active_claim(struct vg__upload *u)
{
    bool ok = true;
    pthread_mutex_lock(&active_mu);
    for (size_t i = 0; i < n_active && ok; i++)
        if (active[i].id == u->id && !strcmp(active[i].state_dir, u->e->state_dir))
            ok = false;
    if (ok && n_active == cap_active) {
        size_t nc = cap_active ? cap_active * 2 : 16;
        struct active_upload *na = realloc(active, nc * sizeof(*na));
        if (na) {
            active = na;
            cap_active = nc;
        }
    }
    char *dir = ok && n_active < cap_active ? vg_strdup(u->e->state_dir) : NULL;
    if (dir)
        active[n_active++] = (struct active_upload){dir, u->id};
    pthread_mutex_unlock(&active_mu);
    u->claimed = dir != NULL;
    return u->claimed;
}

static void active_release(struct vg__upload *u)
{
    pthread_mutex_lock(&active_mu);
    for (size_t i = 0; i < n_active; i++)
        if (active[i].id == u->id && !strcmp(active[i].state_dir, u->e->state_dir)) {
            free(active[i].state_dir);
            active[i] = active[--n_active];
            break;
        }
    if (!n_active) {
        free(active);
        active = NULL;
        cap_active = 0;
    }
    pthread_mutex_unlock(&active_mu);
    u->claimed = false;
}

/* ---------------------------------------------------------------- uploads */

void vg__upload_free(struct vg__upload *u)
{
    if (!u)
        return;
    if (u->claimed)
        active_release(u);
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
        curl_easy_cleanup(u->curl);
    free(u);
}

void vg__spool_drop(struct vg__upload *u)
{
    if (!u->spool_path)
        return;
    struct stat sb;
    uint64_t size = 0;
    if (stat(u->spool_path, &sb) == 0)
        size = (uint64_t)sb.st_size;
    if (unlink(u->spool_path) == 0 && u->prov->type->spools) {
        pthread_mutex_lock(&u->e->mu);
        u->e->spool_used = u->e->spool_used > size ? u->e->spool_used - size : 0;
        pthread_mutex_unlock(&u->e->mu);
    }
}

static struct vg__provider *find_provider(struct vg_egress *e, const char *name)
{
    for (size_t i = 0; i < e->n_providers; i++)
        if (!strcasecmp(e->providers[i].name, name))
            return &e->providers[i];
    return NULL;
}

/* ---------------------------------------------------------------- create / destroy */

static uint64_t fs_bytes(const char *dir, bool total)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0)
        return 0;
    return (uint64_t)(total ? sv.f_blocks : sv.f_bavail) * (uint64_t)sv.f_frsize;
}

/* Spool files of unfinished uploads count against the quota from the start. */
static uint64_t spool_usage(const char *dir)
{
    uint64_t sum = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat sb;
        if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &sb, 0) == 0 &&
            S_ISREG(sb.st_mode))
            sum += (uint64_t)sb.st_size;
    }
    closedir(d);
    return sum;
}

static void curl_init_once(void)
{
    /* Not thread-safe on every libcurl build: do it once, before any worker uses curl. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
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
    for (int i = 0; i < 16; i++)
        snprintf(e->run_id + 2 * i, 3, "%02x", rnd[i]);

    e->state_dir = vg_strdup(storage && storage->state_dir ? storage->state_dir : "/var/lib/vigil");
    e->spool_dir = storage && storage->spool_dir ? vg_strdup(storage->spool_dir)
                                                 : vg_asprintf("%s/spool", e->state_dir);
    if (!e->state_dir || !e->spool_dir) {
        rc = VG_ENOMEM;
        goto out;
    }
    if ((rc = mkdir_p(e->state_dir, 0700)) || (rc = mkdir_p(e->spool_dir, 0700))) {
        set_err(err, errlen, "cannot create %s: %s", e->spool_dir, vg_strerror(rc));
        goto out;
    }
    e->quota =
        storage && storage->spool_quota ? storage->spool_quota : fs_bytes(e->spool_dir, true) / 10;
    /* Like systemd-coredump's KeepFree: unset means 15% of the filesystem, at most 4 GiB. */
    e->keep_free = storage && storage->keep_free ? storage->keep_free
                                                 : fs_bytes(e->spool_dir, true) / 100 * 15;
    if ((!storage || !storage->keep_free) && e->keep_free > (4ull << 30))
        e->keep_free = 4ull << 30;
    e->spool_used = spool_usage(e->spool_dir);

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
    if ((rc = db_open(e, err, errlen)))
        goto out;
    db_run(e, VG_EGRESS_SQL_PRUNE, "i", (int64_t)(vg_wall_ms() - WEEK_MS));
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
    bool join = e->resume_joinable;
    e->resume_joinable = false;
    pthread_mutex_unlock(&e->mu);
    if (join)
        pthread_join(e->resume_thread, NULL);
    for (size_t i = 0; i < e->n_providers; i++) {
        e->providers[i].type->destroy(e->providers[i].state);
        free(e->providers[i].name);
        free(e->providers[i].component);
    }
    free(e->providers);
    if (e->db)
        sqlite3_close(e->db);
    free(e->state_dir);
    free(e->spool_dir);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->db_mu);
    free(e);
}

/* ---------------------------------------------------------------- artifacts */

static void art_fail(struct vg_artifact *a, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void art_fail(struct vg_artifact *a, int rc, const char *fmt, ...)
{
    if (a->failed)
        return;
    a->failed = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof(a->err), fmt, ap);
    va_end(ap);
    vg_log(VG_LOG_ERROR, a->u->prov->component, "%s: %s", a->u->name, a->err);
}

/* Writes output bytes to the file: quota first, then the disk, then the checksum. */
static int art_emit(struct vg_artifact *a, const void *p, size_t n)
{
    if (!n)
        return 0;
    struct vg_egress *e = a->e;
    if (a->spools) {
        pthread_mutex_lock(&e->mu);
        bool over = e->spool_used + n > e->quota;
        uint64_t used = e->spool_used;
        if (!over)
            e->spool_used += n;
        pthread_mutex_unlock(&e->mu);
        if (over) {
            art_fail(a, VG_EQUOTA,
                     "spool quota exceeded: %llu bytes in %s + %zu > Storage.SpoolQuota %llu",
                     (unsigned long long)used, e->spool_dir, n, (unsigned long long)e->quota);
            return VG_EQUOTA;
        }
        a->reserved += n;
    }
    if (e->keep_free) {
        uint64_t avail = fs_bytes(a->quota_dir, false);
        if (avail < e->keep_free + n) {
            art_fail(a, VG_EQUOTA,
                     "only %llu bytes free on the filesystem of %s; Storage.KeepFree keeps %llu",
                     (unsigned long long)avail, a->quota_dir, (unsigned long long)e->keep_free);
            return VG_EQUOTA;
        }
    }
    int rc = write_all(a->fd, p, n);
    if (rc) {
        art_fail(a, rc, "writing %s: %s", a->u->spool_path, vg_strerror(rc));
        return rc;
    }
    EVP_DigestUpdate(a->sha, p, n);
    a->written += n;
    return 0;
}

/* Feeds input through the compressor (or straight through); finish flushes the stream end. */
static int art_feed(struct vg_artifact *a, const void *buf, size_t len, bool finish)
{
    int rc = 0;
    if (a->comp == VG_COMPRESS_NONE)
        return art_emit(a, buf, len);
    if (a->comp == VG_COMPRESS_GZIP) {
        a->z.next_in = (Bytef *)(uintptr_t)buf;
        a->z.avail_in = (uInt)len;
        for (;;) {
            a->z.next_out = a->out;
            a->z.avail_out = sizeof(a->out);
            int zr = deflate(&a->z, finish ? Z_FINISH : Z_NO_FLUSH);
            if (zr == Z_STREAM_ERROR) {
                art_fail(a, VG_EIO, "gzip: %s", a->z.msg ? a->z.msg : "stream error");
                return VG_EIO;
            }
            if ((rc = art_emit(a, a->out, sizeof(a->out) - a->z.avail_out)))
                return rc;
            if (finish ? zr == Z_STREAM_END : (a->z.avail_in == 0 && a->z.avail_out != 0))
                return 0;
        }
    }
    ZSTD_inBuffer in = {buf, len, 0};
    for (;;) {
        ZSTD_outBuffer o = {a->out, sizeof(a->out), 0};
        size_t left = ZSTD_compressStream2(a->zs, &o, &in, finish ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(left)) {
            art_fail(a, VG_EIO, "zstd: %s", ZSTD_getErrorName(left));
            return VG_EIO;
        }
        if ((rc = art_emit(a, a->out, o.pos)))
            return rc;
        if (finish ? left == 0 : in.pos == in.size)
            return 0;
    }
}

const char *vg_artifact_error(const struct vg_artifact *a)
{
    return a ? a->err : "";
}

int vg_artifact_open(struct vg_egress *e, const char *provider, const char *name,
                     const char *content_type, const struct vg_kv *metadata, size_t n_metadata,
                     struct vg_artifact **out)
{
    *out = NULL;
    struct vg__provider *p = find_provider(e, provider ? provider : "");
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
    struct vg_buf mt;
    vg_buf_init(&mt);
    struct vg_artifact *a = calloc(1, sizeof(*a));
    struct vg__upload *u = calloc(1, sizeof(*u));
    if (!a || !u) {
        free(a);
        free(u);
        return VG_ENOMEM;
    }
    a->e = e;
    a->u = u;
    a->fd = -1;
    a->comp = p->compression;
    a->spools = p->type->spools;
    u->e = e;
    u->prov = p;
    const char *ct = content_type ? content_type : "application/octet-stream";
    static const char *const suffix[] = {"", ".gz", ".zst"};
    static const char *const comp_ct[] = {NULL, "application/gzip", "application/zstd"};
    static const char *const comp_name[] = {"none", "gzip", "zstd"};
    u->name = vg_asprintf("%s%s", name, suffix[a->comp]);
    u->content_type = vg_strdup(comp_ct[a->comp] ? comp_ct[a->comp] : ct);
    if (!u->name || !u->content_type) {
        rc = VG_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n_metadata && !rc; i++)
        rc = meta_add(u, metadata[i].key, metadata[i].value);
    if (!rc && a->comp != VG_COMPRESS_NONE)
        rc = meta_add(u, "vigilcompression", comp_name[a->comp]);
    if (!rc && a->comp != VG_COMPRESS_NONE)
        rc = meta_add(u, "vigilcontenttype", ct);
    if (rc || (rc = meta_serialize(u->meta, u->n_meta, &mt)))
        goto out;

    /* The row exists before the file, so a crash while spooling leaves a trace to clean up. */
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(e->db, VG_EGRESS_SQL_INSERT_UPLOAD, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, e->run_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, p->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, u->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, u->content_type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, mt.data, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, (int64_t)vg_wall_ms());
        if (sqlite3_step(st) == SQLITE_DONE)
            u->id = sqlite3_last_insert_rowid(e->db);
    }
    if (!u->id)
        rc = db_err(e, 0, "insert upload");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    if (!rc && !active_claim(u))
        rc = VG_ENOMEM;
    if (rc)
        goto out;

    if (a->spools) {
        u->spool_path = vg_asprintf("%s/upload-%lld.spool", e->spool_dir, (long long)u->id);
        a->quota_dir = vg_strdup(e->spool_dir);
        if (!u->spool_path || !a->quota_dir)
            rc = VG_ENOMEM;
    } else {
        rc = p->type->direct_path(p->state, u, &u->spool_path);
    }
    if (rc)
        goto out;
    if (!a->spools) {
        /* keep_free guards the destination's filesystem: its directory is the parent. */
        a->quota_dir = vg_strdup(u->spool_path);
        char *slash = a->quota_dir ? strrchr(a->quota_dir, '/') : NULL;
        if (!a->quota_dir) {
            rc = VG_ENOMEM;
            goto out;
        }
        if (slash && slash != a->quota_dir)
            *slash = '\0';
    }
    if ((rc = db_run(e, VG_EGRESS_SQL_SET_SPOOL, "isi", (int64_t)u->id, u->spool_path,
                     (int64_t)vg_wall_ms())))
        goto out;
    a->fd = open(u->spool_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        rc = -errno;
        vg_log(VG_LOG_ERROR, p->component, "cannot create %s: %s", u->spool_path, vg_strerror(rc));
        goto out;
    }
    a->sha = EVP_MD_CTX_new();
    if (!a->sha || EVP_DigestInit_ex(a->sha, EVP_sha256(), NULL) != 1) {
        rc = VG_ENOMEM;
        goto out;
    }
    if (a->comp == VG_COMPRESS_GZIP) {
        if (deflateInit2(&a->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            rc = VG_ENOMEM;
            goto out;
        }
        a->z_init = true;
    } else if (a->comp == VG_COMPRESS_ZSTD) {
        a->zs = ZSTD_createCStream();
        if (!a->zs || ZSTD_isError(ZSTD_CCtx_setParameter(a->zs, ZSTD_c_compressionLevel, 3))) {
            rc = VG_ENOMEM;
            goto out;
        }
    }
    vg__egress_count(e, VG__C_ACTIVE, 1);
    vg_log(VG_LOG_DEBUG, p->component, "artifact %s opened (upload %lld)", u->name,
           (long long)u->id);
    *out = a;
out:
    vg_buf_free(&mt);
    if (rc) {
        if (u->id) {
            vg__db_set_state(u, "failed", vg_strerror(rc));
            if (a->fd >= 0)
                unlink(u->spool_path);
        }
        if (a->fd >= 0)
            close(a->fd);
        EVP_MD_CTX_free(a->sha);
        if (a->z_init)
            deflateEnd(&a->z);
        ZSTD_freeCStream(a->zs);
        free(a->quota_dir);
        vg__upload_free(u);
        free(a);
    }
    return rc;
}

int vg_artifact_write(struct vg_artifact *a, const void *buf, size_t len)
{
    if (a->failed)
        return a->failed;
    if (!len)
        return 0;
    return art_feed(a, buf, len, false);
}

/* Releases the writer's resources (not the upload). */
static void art_close(struct vg_artifact *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    EVP_MD_CTX_free(a->sha);
    a->sha = NULL;
    if (a->z_init)
        deflateEnd(&a->z);
    a->z_init = false;
    ZSTD_freeCStream(a->zs);
    a->zs = NULL;
    free(a->quota_dir);
    a->quota_dir = NULL;
}

void vg_artifact_abort(struct vg_artifact *a)
{
    if (!a)
        return;
    art_close(a);
    struct vg__upload *u = a->u;
    /* Give back everything reserved, including bytes a failed write never stored. */
    unlink(u->spool_path);
    if (a->spools) {
        pthread_mutex_lock(&a->e->mu);
        a->e->spool_used = a->e->spool_used > a->reserved ? a->e->spool_used - a->reserved : 0;
        pthread_mutex_unlock(&a->e->mu);
    }
    vg__db_set_state(u, "failed", a->failed ? a->err : "aborted");
    vg__egress_count(a->e, VG__C_ACTIVE, -1);
    vg__upload_free(u);
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
    int rc = a->failed;
    if (!rc && a->comp != VG_COMPRESS_NONE)
        rc = art_feed(a, NULL, 0, true);
    if (!rc && fsync(a->fd) != 0) {
        rc = -errno;
        art_fail(a, rc, "fsync %s: %s", a->u->spool_path, vg_strerror(rc));
    }
    if (rc) {
        set_err(err, errlen, "%s", a->err);
        vg_artifact_abort(a);
        return rc;
    }
    struct vg__upload *u = a->u;
    struct vg_egress *e = a->e;
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(a->sha, md, &mdlen);
    for (int i = 0; i < 32; i++)
        snprintf(u->sha256 + 2 * i, 3, "%02x", md[i]);
    u->size = a->written;
    art_close(a);
    free(a);
    vg__egress_count(e, VG__C_ACTIVE, -1); /* vg__upload_run counts it again */
    rc = db_run(e, VG_EGRESS_SQL_SET_PENDING, "iisi", (int64_t)u->id, (int64_t)u->size, u->sha256,
                (int64_t)vg_wall_ms());
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

/* ---------------------------------------------------------------- resume */

static int load_parts(struct vg__upload *u)
{
    struct vg_egress *e = u->e;
    int rc = 0;
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(e->db, VG_EGRESS_SQL_GET_PARTS, -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(e, 0, "prepare parts");
        goto out;
    }
    sqlite3_bind_int64(st, 1, u->id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct vg__part *np = realloc(u->parts, (u->n_parts + 1) * sizeof(*np));
        if (!np) {
            rc = VG_ENOMEM;
            break;
        }
        u->parts = np;
        struct vg__part *pt = &np[u->n_parts];
        pt->no = (unsigned)sqlite3_column_int64(st, 0);
        pt->off = (uint64_t)sqlite3_column_int64(st, 1);
        pt->len = (uint64_t)sqlite3_column_int64(st, 2);
        pt->tag = vg_strdup((const char *)sqlite3_column_text(st, 3));
        if (!pt->tag) {
            rc = VG_ENOMEM;
            break;
        }
        u->n_parts++;
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    return rc;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? vg_strdup((const char *)t) : NULL;
}

/* Collects the leftover rows first so no statement stays open during uploads. */
static int load_leftovers(struct vg_egress *e, struct vg__upload ***out, char ***states, size_t *n)
{
    *out = NULL;
    *states = NULL;
    *n = 0;
    int rc = 0;
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(e->db, VG_EGRESS_SQL_LIST_LEFTOVER, -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(e, 0, "prepare leftovers");
        goto out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct vg__upload **nv = realloc(*out, (*n + 1) * sizeof(*nv));
        char **ns = nv ? realloc(*states, (*n + 1) * sizeof(*ns)) : NULL;
        if (nv)
            *out = nv;
        if (ns)
            *states = ns;
        struct vg__upload *u = ns ? calloc(1, sizeof(*u)) : NULL;
        if (!u) {
            rc = VG_ENOMEM;
            break;
        }
        u->e = e;
        u->id = sqlite3_column_int64(st, 0);
        const char *prov = (const char *)sqlite3_column_text(st, 1);
        u->prov = find_provider(e, prov ? prov : "");
        u->name = col_dup(st, 2);
        u->content_type = col_dup(st, 3);
        const char *mt = (const char *)sqlite3_column_text(st, 4);
        u->spool_path = col_dup(st, 5);
        u->size = (uint64_t)sqlite3_column_int64(st, 6);
        const char *sha = (const char *)sqlite3_column_text(st, 7);
        if (sha)
            snprintf(u->sha256, sizeof(u->sha256), "%s", sha);
        (*states)[*n] = col_dup(st, 8);
        u->remote_id = col_dup(st, 9);
        (*out)[(*n)++] = u;
        if (mt && meta_parse(u, mt)) {
            rc = VG_ENOMEM;
            break;
        }
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    return rc;
}

static void *resume_main(void *arg)
{
    struct vg_egress *e = arg;
    struct vg__upload **v = NULL;
    char **states = NULL;
    size_t n = 0;
    load_leftovers(e, &v, &states, &n);
    if (n)
        vg_log(VG_LOG_INFO, LOG_C, "resume: %zu unfinished upload(s) in the state database", n);
    for (size_t i = 0; i < n; i++) {
        struct vg__upload *u = v[i];
        v[i] = NULL;
        if (vg__egress_stopping(e) || !u->name || !u->content_type || !states[i] ||
            !active_claim(u)) {
            /* active_claim fails for an upload this process is running right now */
            vg__upload_free(u);
            continue;
        }
        if (!u->prov) {
            vg_log(VG_LOG_WARN, LOG_C,
                   "upload %lld (%s): its egress provider is no longer configured; left pending",
                   (long long)u->id, u->name);
            vg__upload_free(u);
            continue;
        }
        if (!strcmp(states[i], "spooling")) {
            /* Its writer died mid-artifact: the content is incomplete, never upload it. */
            vg_log(VG_LOG_WARN, u->prov->component,
                   "%s: discarded, the previous run stopped while it was being written", u->name);
            vg__spool_drop(u);
            vg__db_set_state(u, "failed", "incomplete: the writer stopped while spooling");
            vg__upload_free(u);
            continue;
        }
        u->resumed = true;
        char *path = NULL; /* not logged: a presigned URL is a credential */
        int rc = load_parts(u);
        if (!rc)
            rc = vg__upload_run(u, &path);
        if (!rc)
            vg_log(VG_LOG_INFO, u->prov->component, "resumed upload of %s completed", u->name);
        free(path);
        vg__upload_free(u);
    }
    for (size_t i = 0; i < n; i++) {
        vg__upload_free(v[i]);
        free(states[i]);
    }
    free(v);
    free(states);
    pthread_mutex_lock(&e->mu);
    e->resume_running = false;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int vg_egress_resume_all(struct vg_egress *e)
{
    pthread_mutex_lock(&e->mu);
    int rc = 0;
    if (e->resume_running || e->stopping) {
        rc = VG_EBUSY;
        goto out;
    }
    if (e->resume_joinable) {
        pthread_join(e->resume_thread, NULL);
        e->resume_joinable = false;
    }
    e->resume_running = true;
    if (pthread_create(&e->resume_thread, NULL, resume_main, e) != 0) {
        e->resume_running = false;
        rc = VG_EAGAIN;
        goto out;
    }
    e->resume_joinable = true;
out:
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int vg_egress_resume_wait(struct vg_egress *e, uint64_t timeout_ms)
{
    uint64_t deadline = vg_mono_ms() + timeout_ms;
    pthread_mutex_lock(&e->mu);
    while (e->resume_running) {
        uint64_t now = vg_mono_ms();
        if (timeout_ms && now >= deadline)
            break;
        uint64_t step = timeout_ms ? deadline - now : 1000;
        if (step > 1000)
            step = 1000;
        pthread_mutex_unlock(&e->mu);
        /* Timed waits on e->cond would need CLOCK_REALTIME arithmetic; a short poll is enough. */
        struct timespec ts = {0, (long)(step < 50 ? step : 50) * 1000000L};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&e->mu);
    }
    int rc = e->resume_running ? VG_ETIMEDOUT : 0;
    pthread_mutex_unlock(&e->mu);
    return rc;
}

/* ---------------------------------------------------------------- listing */

void vg_egress_uploads_free(struct vg_egress_upload_info *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].provider);
        free(v[i].name);
        free(v[i].state);
        free(v[i].last_error);
        free(v[i].egress_path);
    }
    free(v);
}

int vg_egress_uploads(struct vg_egress *e, size_t limit, struct vg_egress_upload_info **out,
                      size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = 0;
    struct vg_egress_upload_info *v = NULL;
    size_t cnt = 0;
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(e->db, VG_EGRESS_SQL_LIST_UPLOADS, -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(e, 0, "prepare list");
        goto out;
    }
    sqlite3_bind_int64(st, 1, (int64_t)(limit ? limit : 100));
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct vg_egress_upload_info *nv = realloc(v, (cnt + 1) * sizeof(*nv));
        if (!nv) {
            rc = VG_ENOMEM;
            break;
        }
        v = nv;
        struct vg_egress_upload_info *x = &v[cnt++];
        memset(x, 0, sizeof(*x));
        x->id = sqlite3_column_int64(st, 0);
        x->provider = col_dup(st, 1);
        x->name = col_dup(st, 2);
        x->state = col_dup(st, 3);
        x->size = (uint64_t)sqlite3_column_int64(st, 4);
        x->retries = (unsigned)sqlite3_column_int64(st, 5);
        x->last_error = col_dup(st, 6);
        x->egress_path = col_dup(st, 7);
        x->created_ms = (uint64_t)sqlite3_column_int64(st, 8);
        x->updated_ms = (uint64_t)sqlite3_column_int64(st, 9);
        x->bytes_done = (uint64_t)sqlite3_column_int64(st, 10);
        if (x->state && !strcmp(x->state, "done"))
            x->bytes_done = x->size;
        if (!x->provider || !x->name || !x->state) {
            rc = VG_ENOMEM;
            break;
        }
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    if (rc) {
        vg_egress_uploads_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}
