/* The egress state database: its own connection to STATE_DIR/vigil.db (WAL; the engine shares
 * the file), the egress_* tables, one statement per progress step so that a crash between two
 * steps leaves a state the resume worker understands. All SQL text is in egress_sql.h. */
#include "config/error.h"
#include "config/log.h"
#include "egress/egress_int.h"
#include "egress/egress_sql.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_C "egress"
#define WEEK_MS (7ull * 24 * 3600 * 1000)

static int db_err(struct vg_egress *e, int src, const char *what)
{
    vg_log(VG_LOG_ERROR, LOG_C, "state db: %s: %s (%d)", what, sqlite3_errmsg(e->db), src);
    return VG_ESQLITE;
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

/* Group and other permissions off a file of vigil's. By path, never through an fd of our own:
 * closing any fd of a file drops every POSIX lock this process holds on it, and the engine's
 * SQLite connection may hold some (fchmodat's AT_SYMLINK_NOFOLLOW uses an O_PATH fd, which
 * leaves locks alone; it refuses links). */
static void narrow(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 077) &&
        sb.st_uid == geteuid())
        fchmodat(AT_FDCWD, path, sb.st_mode & 0700, AT_SYMLINK_NOFOLLOW);
}

/* vigil.db records EgressPaths, which may be presigned URLs: it and its -wal and -shm are owner
 * only from the start. SQLite gives -wal and -shm the database file's mode, so a new database
 * file is created 0600 before SQLite opens it; files another connection made first with the
 * umask's mode (the engine's, an older vigil's) are narrowed. */
static int db_files_private(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (lstat(path, &sb) != 0 && errno == ENOENT) {
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            int rc = -errno;
            snprintf(err, errlen, "cannot create %s: %s", path, vg_strerror(rc));
            return rc;
        }
        if (fd >= 0)
            close(fd); /* new and empty: nobody holds a lock on it yet */
    }
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < VG_ARRAY_SIZE(suffix); i++) {
        char *p = vg_asprintf("%s%s", path, suffix[i]);
        if (!p)
            return VG_ENOMEM;
        narrow(p);
        free(p);
    }
    return 0;
}

int vg__db_open(struct vg_egress *e, char *err, size_t errlen)
{
    char *path = vg_asprintf("%s/vigil.db", e->state_dir);
    if (!path)
        return VG_ENOMEM;
    int rc = db_files_private(path, err, errlen);
    if (rc)
        goto out;
    int src = sqlite3_open_v2(
        path, &e->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 e->db ? sqlite3_errmsg(e->db) : sqlite3_errstr(src));
        rc = VG_ESQLITE;
        goto out;
    }
    sqlite3_busy_timeout(e->db, 10000); /* the engine shares the file */
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
        snprintf(err, errlen, "%s: egress schema version %d is newer than this vigil (%d)", path,
                 version, VG_EGRESS_SCHEMA_VERSION);
        rc = VG_ESQLITE;
        goto out;
    }
    if (version < 1 &&
        sqlite3_exec(e->db, "BEGIN;" VG_EGRESS_SQL_SCHEMA_V1 VG_EGRESS_SQL_SET_VERSION "COMMIT;",
                     NULL, NULL, &msg) != SQLITE_OK)
        goto sql_fail;
    db_run(e, VG_EGRESS_SQL_PRUNE, "i", (int64_t)(vg_wall_ms() - WEEK_MS));
    goto out;
sql_fail:
    snprintf(err, errlen, "%s: %s", path, msg ? msg : sqlite3_errmsg(e->db));
    sqlite3_free(msg);
    rc = VG_ESQLITE;
out:
    free(path);
    return rc;
}

void vg__db_close(struct vg_egress *e)
{
    if (e->db)
        sqlite3_close(e->db);
    e->db = NULL;
}

/* ---------------------------------------------------------------- metadata text */

/* "key\tvalue\n" per pair: keys are letters, digits and '_', values printable ASCII. */
static int meta_serialize(const struct vg_kv *kv, size_t n, struct vg_buf *out)
{
    for (size_t i = 0; i < n; i++)
        if (vg_buf_printf(out, "%s\t%s\n", kv[i].key, kv[i].value))
            return VG_ENOMEM;
    if (!out->data)
        return vg_buf_puts(out, "");
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
        int rc = (k && v) ? vg__upload_meta_add(u, k, v) : VG_ENOMEM;
        free(k);
        free(v);
        if (rc)
            return rc;
        p = nl + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- progress */

int vg__db_insert_upload(struct vg__upload *u)
{
    struct vg_egress *e = u->e;
    struct vg_buf mt;
    vg_buf_init(&mt);
    int rc = meta_serialize(u->meta, u->n_meta, &mt);
    if (rc)
        return rc;
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(e->db, VG_EGRESS_SQL_INSERT_UPLOAD, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, e->run_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, u->prov->name, -1, SQLITE_STATIC);
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
    vg_buf_free(&mt);
    return rc;
}

int vg__db_set_spool(struct vg__upload *u)
{
    return db_run(u->e, VG_EGRESS_SQL_SET_SPOOL, "isi", (int64_t)u->id, u->spool_path,
                  (int64_t)vg_wall_ms());
}

int vg__db_set_pending(struct vg__upload *u)
{
    return db_run(u->e, VG_EGRESS_SQL_SET_PENDING, "iisi", (int64_t)u->id, (int64_t)u->size,
                  u->sha256, (int64_t)vg_wall_ms());
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

int vg__db_set_name(struct vg__upload *u)
{
    return db_run(u->e, VG_EGRESS_SQL_SET_NAME, "isi", (int64_t)u->id, u->name,
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

/* ---------------------------------------------------------------- resume */

int vg__db_load_parts(struct vg__upload *u)
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

/* One row of VG_EGRESS_SQL_UPLOAD as an upload (u->prov NULL when the provider is gone). */
static int row_upload(struct vg_egress *e, sqlite3_stmt *st, struct vg__upload **out, char **state)
{
    struct vg__upload *u = calloc(1, sizeof(*u));
    *out = u;
    *state = NULL;
    if (!u)
        return VG_ENOMEM;
    u->e = e;
    u->id = sqlite3_column_int64(st, 0);
    const char *prov = (const char *)sqlite3_column_text(st, 1);
    u->prov = vg__egress_provider(e, prov ? prov : "");
    u->name = col_dup(st, 2);
    u->content_type = col_dup(st, 3);
    const char *mt = (const char *)sqlite3_column_text(st, 4);
    u->spool_path = col_dup(st, 5);
    u->size = (uint64_t)sqlite3_column_int64(st, 6);
    const char *sha = (const char *)sqlite3_column_text(st, 7);
    if (sha)
        snprintf(u->sha256, sizeof(u->sha256), "%s", sha);
    *state = col_dup(st, 8);
    u->remote_id = col_dup(st, 9);
    if (!u->name || !u->content_type || !*state || (mt && meta_parse(u, mt)))
        return VG_ENOMEM;
    return 0;
}

/* Collects the rows first so no statement stays open during uploads. */
int vg__db_leftovers(struct vg_egress *e, struct vg__upload ***out, char ***states, size_t *n)
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
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        struct vg__upload **nv = realloc(*out, (*n + 1) * sizeof(*nv));
        char **ns = nv ? realloc(*states, (*n + 1) * sizeof(*ns)) : NULL;
        if (nv)
            *out = nv;
        if (ns)
            *states = ns;
        if (!ns) {
            rc = VG_ENOMEM;
            break;
        }
        rc = row_upload(e, st, &(*out)[*n], &(*states)[*n]);
        (*n)++;
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    return rc;
}

int vg__db_load_upload(struct vg_egress *e, int64_t id, struct vg__upload **out, char **state)
{
    *out = NULL;
    *state = NULL;
    int rc = VG_ENOTFOUND;
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(e->db, VG_EGRESS_SQL_GET_ONE, -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(e, 0, "prepare upload");
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = row_upload(e, st, out, state);
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    if (rc) {
        vg__upload_free(*out);
        free(*state);
        *out = NULL;
        *state = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------------- listing */

void vg_egress_upload_info_free(struct vg_egress_upload_info *x)
{
    free(x->provider);
    free(x->name);
    free(x->state);
    free(x->last_error);
    free(x->egress_path);
    memset(x, 0, sizeof(*x));
}

void vg_egress_uploads_free(struct vg_egress_upload_info *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        vg_egress_upload_info_free(&v[i]);
    free(v);
}

/* One row of VG_EGRESS_SQL_INFO into x (zeroed first). */
static int row_info(sqlite3_stmt *st, struct vg_egress_upload_info *x)
{
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
    return x->provider && x->name && x->state ? 0 : VG_ENOMEM;
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
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        struct vg_egress_upload_info *nv = realloc(v, (cnt + 1) * sizeof(*nv));
        if (!nv) {
            rc = VG_ENOMEM;
            break;
        }
        v = nv;
        rc = row_info(st, &v[cnt++]);
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

int vg_egress_upload_get(struct vg_egress *e, int64_t id, struct vg_egress_upload_info *out)
{
    memset(out, 0, sizeof(*out));
    int rc = VG_ENOTFOUND;
    pthread_mutex_lock(&e->db_mu);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(e->db, VG_EGRESS_SQL_GET_INFO, -1, &st, NULL) != SQLITE_OK) {
        rc = db_err(e, 0, "prepare upload");
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = row_info(st, out);
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&e->db_mu);
    if (rc)
        vg_egress_upload_info_free(out);
    return rc;
}
