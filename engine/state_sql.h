/* Every SQL statement the engine's state module runs, in one place. Schema version lives in
 * PRAGMA user_version; MIGRATIONS[i] upgrades from version i to i+1. The egress module keeps its
 * own egress_* tables in the same database through its own connection. */
#ifndef VG_STATE_SQL_H
#define VG_STATE_SQL_H

#define VG_STATE_PRAGMAS                                                                           \
    "PRAGMA journal_mode=WAL;"                                                                     \
    "PRAGMA synchronous=NORMAL;"                                                                   \
    "PRAGMA foreign_keys=ON;"

static const char *const VG_STATE_MIGRATIONS[] = {
    /* 0 -> 1 */
    "CREATE TABLE instances("
    "  rule TEXT NOT NULL, fingerprint TEXT NOT NULL, proc_key TEXT NOT NULL,"
    "  pid INTEGER NOT NULL, start_ms INTEGER NOT NULL,"
    "  failure TEXT," /* unused since schema 1; kept so the table never changes */
    "  PRIMARY KEY(rule, fingerprint, proc_key));"
    "CREATE TABLE fires("
    "  id INTEGER PRIMARY KEY, rule TEXT NOT NULL, fingerprint TEXT NOT NULL,"
    "  proc_key TEXT NOT NULL, pid INTEGER NOT NULL, fired_ms INTEGER NOT NULL,"
    "  persist TEXT, status TEXT NOT NULL DEFAULT 'Running', finished_ms INTEGER, error TEXT);"
    "CREATE INDEX fires_by_instance ON fires(rule, fingerprint, proc_key, fired_ms);"
    "CREATE TABLE actions("
    "  id INTEGER PRIMARY KEY, fire_id INTEGER NOT NULL REFERENCES fires(id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL, name TEXT, type TEXT NOT NULL, started_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER, status TEXT NOT NULL, outputs TEXT, error TEXT);"
    "CREATE INDEX actions_by_fire ON actions(fire_id);",
};

#define SQL_INSTANCE_GET                                                                           \
    "SELECT start_ms FROM instances WHERE rule=?1 AND fingerprint=?2 AND proc_key=?3"
#define SQL_INSTANCE_PUT                                                                           \
    "INSERT OR IGNORE INTO instances(rule, fingerprint, proc_key, pid, start_ms)"                  \
    " VALUES(?1, ?2, ?3, ?4, ?5)"
#define SQL_INSTANCE_DROP_PROC "DELETE FROM instances WHERE proc_key=?1"
#define SQL_FIRES_OF_INSTANCE                                                                      \
    "SELECT fired_ms, persist FROM fires WHERE rule=?1 AND fingerprint=?2 AND proc_key=?3"         \
    " ORDER BY fired_ms"
#define SQL_FIRE_ADD                                                                               \
    "INSERT INTO fires(rule, fingerprint, proc_key, pid, fired_ms, persist)"                       \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
#define SQL_FIRE_END "UPDATE fires SET status=?2, finished_ms=?3, error=?4 WHERE id=?1"
/* Runs cut short by a crash are closed at startup so history never shows them running. */
#define SQL_FIRES_ABANDON                                                                          \
    "UPDATE fires SET status='Failed', error='vigil stopped while the actions ran'"                \
    " WHERE status='Running';"                                                                     \
    "UPDATE actions SET status='Failed', error='vigil stopped while the action ran'"               \
    " WHERE status='Running';"
#define SQL_FIRES_PRUNE "DELETE FROM fires WHERE fired_ms < ?1"
#define SQL_ACTION_ADD                                                                             \
    "INSERT INTO actions(fire_id, idx, name, type, started_ms, status)"                            \
    " VALUES(?1, ?2, ?3, ?4, ?5, 'Running')"
#define SQL_ACTION_END                                                                             \
    "UPDATE actions SET status=?2, finished_ms=?3, outputs=?4, error=?5 WHERE id=?1"

#endif
