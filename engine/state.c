#include "engine/state.h"
#include "engine/state_sql.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HISTORY_DAYS 30

struct vg_state {
    sqlite3 *db;
    sqlite3_stmt *inst_get, *inst_put, *inst_drop, *fires_of, *fire_add, *fire_end, *act_add,
        *act_end;
};

static int map_sqlite(struct vg_state *s, int rc, const char *what)
{
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    vg_log(VG_LOG_ERROR, "state", "%s: %s", what, sqlite3_errmsg(s->db));
    if (rc == SQLITE_FULL)
        return VG_ENOSPC;
    if (rc == SQLITE_NOMEM)
        return VG_ENOMEM;
    return VG_ESQLITE;
}

static void fp_hex(uint64_t fp, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, fp);
}

int vg_state_open(const char *dir, struct vg_state **out, char *err, size_t errlen)
{
    *out = NULL;
    struct vg_state *s = calloc(1, sizeof(*s));
    char *path = NULL;
    int rc = VG_ENOMEM;
    if (!s)
        goto fail;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (!(path = vg_asprintf("%s/vigil.db", dir)))
        goto fail;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        rc = VG_ESQLITE;
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(s->db, VG_STATE_PRAGMAS, NULL, NULL, &msg) != SQLITE_OK)
        goto sql_fail;
    int version = vg_state_schema_version(s);
    int target = (int)(sizeof(VG_STATE_MIGRATIONS) / sizeof(VG_STATE_MIGRATIONS[0]));
    if (version > target) {
        snprintf(err, errlen,
                 "%s has schema version %d, newer than this vigil understands (%d); use a newer "
                 "vigil or another --state-dir",
                 path, version, target);
        rc = VG_ESTATE;
        goto fail;
    }
    for (int v = version; v < target; v++) {
        char setv[64];
        snprintf(setv, sizeof(setv), "PRAGMA user_version=%d;", v + 1);
        if (sqlite3_exec(s->db, "BEGIN IMMEDIATE;", NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(s->db, VG_STATE_MIGRATIONS[v], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(s->db, setv, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(s->db, "COMMIT;", NULL, NULL, &msg) != SQLITE_OK) {
            sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
            goto sql_fail;
        }
    }
    if (sqlite3_exec(s->db, SQL_FIRES_ABANDON, NULL, NULL, &msg) != SQLITE_OK)
        goto sql_fail;
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&s->inst_get, SQL_INSTANCE_GET},
        {&s->inst_put, SQL_INSTANCE_PUT},
        {&s->inst_drop, SQL_INSTANCE_DROP_PROC},
        {&s->fires_of, SQL_FIRES_OF_INSTANCE},
        {&s->fire_add, SQL_FIRE_ADD},
        {&s->fire_end, SQL_FIRE_END},
        {&s->act_add, SQL_ACTION_ADD},
        {&s->act_end, SQL_ACTION_END},
    };
    for (size_t i = 0; i < VG_ARRAY_SIZE(stmts); i++)
        if (sqlite3_prepare_v2(s->db, stmts[i].sql, -1, stmts[i].st, NULL) != SQLITE_OK)
            goto sql_fail;
    sqlite3_stmt *prune;
    if (sqlite3_prepare_v2(s->db, SQL_FIRES_PRUNE, -1, &prune, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(prune, 1, (sqlite3_int64)(vg_wall_ms() - HISTORY_DAYS * 86400000ull));
        sqlite3_step(prune);
        sqlite3_finalize(prune);
    }
    free(path);
    *out = s;
    return 0;
sql_fail:
    snprintf(err, errlen, "state database %s: %s", path, msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    rc = VG_ESQLITE;
fail:
    free(path);
    vg_state_close(s);
    return rc;
}

void vg_state_close(struct vg_state *s)
{
    if (!s)
        return;
    sqlite3_stmt *all[] = {s->inst_get, s->inst_put, s->inst_drop, s->fires_of,
                           s->fire_add, s->fire_end, s->act_add,   s->act_end};
    for (size_t i = 0; i < VG_ARRAY_SIZE(all); i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(s->db);
    free(s);
}

int vg_state_schema_version(struct vg_state *s)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    return v;
}

static void bind_key(sqlite3_stmt *st, const char *rule, uint64_t fp, const char *proc_key)
{
    char hex[17];
    fp_hex(fp, hex);
    sqlite3_bind_text(st, 1, rule, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, proc_key, -1, SQLITE_TRANSIENT);
}

static int step_done(struct vg_state *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return map_sqlite(s, rc, what);
}

int vg_state_instance_load(struct vg_state *s, const char *rule, uint64_t fingerprint,
                           const char *proc_key, int pid, uint64_t now_ms, uint64_t *start_ms,
                           struct vg_state_fire **fires, size_t *n_fires)
{
    *fires = NULL;
    *n_fires = 0;
    *start_ms = now_ms;
    bind_key(s->inst_put, rule, fingerprint, proc_key);
    sqlite3_bind_int(s->inst_put, 4, pid);
    sqlite3_bind_int64(s->inst_put, 5, (sqlite3_int64)now_ms);
    int rc = step_done(s, s->inst_put, "record rule instance");
    if (rc)
        return rc;
    bind_key(s->inst_get, rule, fingerprint, proc_key);
    if (sqlite3_step(s->inst_get) == SQLITE_ROW) {
        *start_ms = (uint64_t)sqlite3_column_int64(s->inst_get, 0);
    }
    sqlite3_reset(s->inst_get);
    sqlite3_clear_bindings(s->inst_get);

    size_t cap = 0;
    bind_key(s->fires_of, rule, fingerprint, proc_key);
    while ((rc = sqlite3_step(s->fires_of)) == SQLITE_ROW) {
        if (*n_fires == cap) {
            cap = cap ? cap * 2 : 8;
            struct vg_state_fire *nf = realloc(*fires, cap * sizeof(**fires));
            if (!nf) {
                rc = SQLITE_NOMEM;
                break;
            }
            *fires = nf;
        }
        struct vg_state_fire *f = &(*fires)[(*n_fires)++];
        f->fired_ms = (uint64_t)sqlite3_column_int64(s->fires_of, 0);
        const unsigned char *p = sqlite3_column_text(s->fires_of, 1);
        f->persist = p ? vg_strdup((const char *)p) : NULL;
    }
    sqlite3_reset(s->fires_of);
    sqlite3_clear_bindings(s->fires_of);
    rc = map_sqlite(s, rc, "read fires");
    if (rc) {
        vg_state_fires_free(*fires, *n_fires);
        *fires = NULL;
        *n_fires = 0;
    }
    return rc;
}

void vg_state_fires_free(struct vg_state_fire *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i].persist);
    free(f);
}

int vg_state_forget_process(struct vg_state *s, const char *proc_key)
{
    sqlite3_bind_text(s->inst_drop, 1, proc_key, -1, SQLITE_TRANSIENT);
    return step_done(s, s->inst_drop, "forget process");
}

int vg_state_fire_add(struct vg_state *s, const char *rule, uint64_t fingerprint,
                      const char *proc_key, int pid, uint64_t fired_ms, const char *persist,
                      int64_t *fire_id)
{
    bind_key(s->fire_add, rule, fingerprint, proc_key);
    sqlite3_bind_int(s->fire_add, 4, pid);
    sqlite3_bind_int64(s->fire_add, 5, (sqlite3_int64)fired_ms);
    if (persist)
        sqlite3_bind_text(s->fire_add, 6, persist, -1, SQLITE_TRANSIENT);
    int rc = step_done(s, s->fire_add, "record fire");
    *fire_id = rc ? 0 : sqlite3_last_insert_rowid(s->db);
    return rc;
}

int vg_state_fire_end(struct vg_state *s, int64_t fire_id, const char *status, uint64_t now_ms,
                      const char *error)
{
    sqlite3_bind_int64(s->fire_end, 1, fire_id);
    sqlite3_bind_text(s->fire_end, 2, status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s->fire_end, 3, (sqlite3_int64)now_ms);
    if (error)
        sqlite3_bind_text(s->fire_end, 4, error, -1, SQLITE_TRANSIENT);
    return step_done(s, s->fire_end, "record fire result");
}

int vg_state_action_add(struct vg_state *s, int64_t fire_id, size_t idx, const char *name,
                        const char *type, uint64_t now_ms, int64_t *action_id)
{
    sqlite3_bind_int64(s->act_add, 1, fire_id);
    sqlite3_bind_int64(s->act_add, 2, (sqlite3_int64)idx);
    if (name)
        sqlite3_bind_text(s->act_add, 3, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s->act_add, 4, type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s->act_add, 5, (sqlite3_int64)now_ms);
    int rc = step_done(s, s->act_add, "record action start");
    *action_id = rc ? 0 : sqlite3_last_insert_rowid(s->db);
    return rc;
}

int vg_state_action_end(struct vg_state *s, int64_t action_id, const char *status, uint64_t now_ms,
                        const char *outputs_json, const char *error)
{
    sqlite3_bind_int64(s->act_end, 1, action_id);
    sqlite3_bind_text(s->act_end, 2, status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s->act_end, 3, (sqlite3_int64)now_ms);
    if (outputs_json)
        sqlite3_bind_text(s->act_end, 4, outputs_json, -1, SQLITE_TRANSIENT);
    if (error)
        sqlite3_bind_text(s->act_end, 5, error, -1, SQLITE_TRANSIENT);
    return step_done(s, s->act_end, "record action result");
}
