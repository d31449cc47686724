/* All SQL text of the egress module. Egress has its own connection to STATE_DIR/vigil.db and its
 * own tables (egress_*); PRAGMA user_version belongs to the engine, so the egress schema version
 * lives in egress_schema. */
#ifndef VG_EGRESS_SQL_H
#define VG_EGRESS_SQL_H

#define VG_EGRESS_SCHEMA_VERSION 1

#define VG_EGRESS_SQL_PRAGMAS                                                                      \
    "PRAGMA journal_mode=WAL;"                                                                     \
    "PRAGMA synchronous=FULL;"                                                                     \
    "PRAGMA foreign_keys=ON;"

#define VG_EGRESS_SQL_SCHEMA_TABLE                                                                 \
    "CREATE TABLE IF NOT EXISTS egress_schema(version INTEGER NOT NULL);"

#define VG_EGRESS_SQL_GET_VERSION "SELECT version FROM egress_schema LIMIT 1;"
#define VG_EGRESS_SQL_SET_VERSION "DELETE FROM egress_schema; INSERT INTO egress_schema VALUES(1);"

/* state: spooling -> pending -> uploading -> done | failed; a cancel makes any unfinished one
 * cancelled, through cancelling while the remote side is undone. remote_id: S3 UploadId. */
#define VG_EGRESS_SQL_SCHEMA_V1                                                                    \
    "CREATE TABLE IF NOT EXISTS egress_uploads("                                                   \
    " id INTEGER PRIMARY KEY,"                                                                     \
    " run_id TEXT NOT NULL,"                                                                       \
    " provider TEXT NOT NULL,"                                                                     \
    " name TEXT NOT NULL,"                                                                         \
    " content_type TEXT NOT NULL,"                                                                 \
    " metadata TEXT NOT NULL,"                                                                     \
    " spool_path TEXT,"                                                                            \
    " size INTEGER,"                                                                               \
    " sha256 TEXT,"                                                                                \
    " state TEXT NOT NULL,"                                                                        \
    " remote_id TEXT,"                                                                             \
    " egress_path TEXT,"                                                                           \
    " last_error TEXT,"                                                                            \
    " retries INTEGER NOT NULL DEFAULT 0,"                                                         \
    " created_ms INTEGER NOT NULL,"                                                                \
    " updated_ms INTEGER NOT NULL);"                                                               \
    "CREATE INDEX IF NOT EXISTS egress_uploads_state ON egress_uploads(state);"                    \
    "CREATE TABLE IF NOT EXISTS egress_parts("                                                     \
    " upload_id INTEGER NOT NULL REFERENCES egress_uploads(id) ON DELETE CASCADE,"                 \
    " part_no INTEGER NOT NULL,"                                                                   \
    " off INTEGER NOT NULL,"                                                                       \
    " len INTEGER NOT NULL,"                                                                       \
    " tag TEXT NOT NULL,"                                                                          \
    " PRIMARY KEY(upload_id, part_no));"

#define VG_EGRESS_SQL_INSERT_UPLOAD                                                                \
    "INSERT INTO egress_uploads(run_id, provider, name, content_type, metadata, state,"            \
    " created_ms, updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, 'spooling', ?6, ?6);"
#define VG_EGRESS_SQL_SET_SPOOL                                                                    \
    "UPDATE egress_uploads SET spool_path=?2, updated_ms=?3 WHERE id=?1;"
#define VG_EGRESS_SQL_SET_PENDING                                                                  \
    "UPDATE egress_uploads SET state='pending', size=?2, sha256=?3, updated_ms=?4 WHERE id=?1;"
#define VG_EGRESS_SQL_SET_STATE                                                                    \
    "UPDATE egress_uploads SET state=?2, last_error=?3, updated_ms=?4 WHERE id=?1;"
#define VG_EGRESS_SQL_SET_DONE                                                                     \
    "UPDATE egress_uploads SET state='done', egress_path=?2, last_error=NULL, updated_ms=?3"       \
    " WHERE id=?1;"
#define VG_EGRESS_SQL_SET_REMOTE                                                                   \
    "UPDATE egress_uploads SET remote_id=?2, updated_ms=?3 WHERE id=?1;"
#define VG_EGRESS_SQL_SET_NAME "UPDATE egress_uploads SET name=?2, updated_ms=?3 WHERE id=?1;"
#define VG_EGRESS_SQL_ADD_PART                                                                     \
    "INSERT OR REPLACE INTO egress_parts(upload_id, part_no, off, len, tag)"                       \
    " VALUES(?1, ?2, ?3, ?4, ?5);"
#define VG_EGRESS_SQL_SET_RETRY                                                                    \
    "UPDATE egress_uploads SET retries=retries+1, last_error=?2, updated_ms=?3 WHERE id=?1;"
/* For /operations: bytes_done sums the recorded parts. */
#define VG_EGRESS_SQL_INFO                                                                         \
    "SELECT u.id, u.provider, u.name, u.state, u.size, u.retries, u.last_error, u.egress_path,"    \
    " u.created_ms, u.updated_ms,"                                                                 \
    " (SELECT COALESCE(SUM(len), 0) FROM egress_parts p WHERE p.upload_id = u.id)"                 \
    " FROM egress_uploads u"
#define VG_EGRESS_SQL_LIST_UPLOADS VG_EGRESS_SQL_INFO " ORDER BY u.id DESC LIMIT ?1;"
#define VG_EGRESS_SQL_GET_INFO VG_EGRESS_SQL_INFO " WHERE u.id=?1;"
#define VG_EGRESS_SQL_CLEAR_PARTS "DELETE FROM egress_parts WHERE upload_id=?1;"
#define VG_EGRESS_SQL_GET_PARTS                                                                    \
    "SELECT part_no, off, len, tag FROM egress_parts WHERE upload_id=?1 ORDER BY part_no;"
/* What an upload needs to run again. */
#define VG_EGRESS_SQL_UPLOAD                                                                       \
    "SELECT id, provider, name, content_type, metadata, spool_path, size, sha256, state,"          \
    " remote_id FROM egress_uploads"
#define VG_EGRESS_SQL_LIST_LEFTOVER                                                                \
    VG_EGRESS_SQL_UPLOAD                                                                           \
    " WHERE state IN ('spooling','pending','uploading','cancelling') ORDER BY id;"
#define VG_EGRESS_SQL_GET_ONE VG_EGRESS_SQL_UPLOAD " WHERE id=?1;"
/* Finished rows are kept a week for diagnosis, then pruned. */
#define VG_EGRESS_SQL_PRUNE                                                                        \
    "DELETE FROM egress_uploads WHERE state IN ('done','failed','cancelled') AND updated_ms < ?1;"

#endif
