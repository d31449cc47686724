/* Egress: where artifacts go. An artifact is written (usually spooled to Storage.SpoolDir with a
 * quota), then uploaded by one provider (FileSystem, S3Storage, AzureBlobStorage) with retries,
 * its progress kept in SQLite (STATE_DIR/vigil.db, tables egress_*) so that an upload interrupted
 * by a crash is resumed and completed exactly once by the next process.
 *
 * Threading: every function here may block (disk, network, backoff sleeps). The engine calls them
 * from worker threads, never from its loop thread. One vg_egress is shared by all threads; a
 * vg_artifact belongs to one thread at a time. See docs/egress.md. */
#ifndef VG_EGRESS_H
#define VG_EGRESS_H

#include "config/settings.h"

#include <stddef.h>
#include <stdint.h>

struct vg_egress;   /* providers from settings + state db + resume worker */
struct vg_artifact; /* one artifact being written */

/* Creates the egress core: validates every provider (an error names the provider and the option),
 * opens/creates STATE_DIR/vigil.db (own connection, WAL) and the spool directory.
 * providers/storage are borrowed only during the call. err (may be NULL) gets a human message. */
int vg_egress_create(const struct vg_egress_settings *providers, size_t n,
                     const struct vg_storage_settings *storage, struct vg_egress **out, char *err,
                     size_t errlen);
/* Stops: running transfers and backoff sleeps are cancelled within about a second, the resume
 * worker is joined. Uploads not finished stay in the database and are resumed by the next
 * process. No artifact may be in use by another thread. NULL is a no-op. */
void vg_egress_destroy(struct vg_egress *e);

/* Starts a background worker that completes unfinished uploads in the state database: those a
 * previous process left behind (state pending/uploading), and those of this process left pending
 * after their retries ran out. Uploads this process is writing or uploading right now (from any
 * vg_egress, e.g. across a reload) are left alone. Artifacts whose writer died are discarded
 * (their content is incomplete). Returns at once; VG_EBUSY if a resume is already running. */
int vg_egress_resume_all(struct vg_egress *e);
/* Waits for the resume worker to finish: 0, or VG_ETIMEDOUT. timeout_ms 0 waits forever. */
int vg_egress_resume_wait(struct vg_egress *e, uint64_t timeout_ms);

/* Opens an artifact for writing. name is the object/file name (no "..", no leading '/'; the
 * FileSystem provider also rejects '/'); content_type may be NULL (application/octet-stream);
 * metadata keys are letters, digits and '_' (Azure's rule, also used for S3). When the provider
 * compresses, ".gz"/".zst" is appended to the name and the content type becomes
 * application/gzip / application/zstd (the original is kept as metadata vigilcontenttype). */
int vg_artifact_open(struct vg_egress *e, const char *provider, const char *name,
                     const char *content_type, const struct vg_kv *metadata, size_t n_metadata,
                     struct vg_artifact **out);
/* Appends bytes. VG_EQUOTA when the spool quota or the KeepFree floor would be crossed; after any
 * error the artifact is failed (vg_artifact_error says why) and only abort is useful. */
int vg_artifact_write(struct vg_artifact *a, const void *buf, size_t len);
/* The message for the artifact's last error ("" if none). */
const char *vg_artifact_error(const struct vg_artifact *a);
/* Closes the spool and uploads synchronously (retries included). On success *out_path (malloc'd)
 * is the EgressPath: a file path, s3://bucket/key (or a presigned URL when PreSignedUrlExpiry is
 * set) or the blob URL. On VG_ERETRY (retries exhausted) the upload stays pending in the database
 * and its spool file is kept: the next vg_egress_resume_all tries again. Fatal errors (VG_EAUTH,
 * VG_EFATAL, ...) discard the spool file. Always frees the artifact. err gets a message. */
int vg_artifact_commit(struct vg_artifact *a, char **out_path, char *err, size_t errlen);
/* Discards the artifact and its spool file. NULL is a no-op. */
void vg_artifact_abort(struct vg_artifact *a);

/* Counters for /operations and /metrics (monotonic unless noted). */
struct vg_egress_status {
    uint64_t uploads_started; /* commits + resumed uploads */
    uint64_t uploads_succeeded;
    uint64_t uploads_failed;   /* fatal, or retries exhausted */
    uint64_t uploads_retrying; /* gauge: uploads waiting in a backoff right now */
    uint64_t retries;          /* backoff waits so far */
    uint64_t uploads_active;   /* gauge: artifacts being written or uploaded */
    uint64_t bytes_uploaded;   /* payload bytes accepted by providers */
    uint64_t spool_bytes;      /* gauge: bytes in spool files */
    uint64_t spool_quota;      /* the effective quota in bytes */
};
void vg_egress_status(struct vg_egress *e, struct vg_egress_status *out);

/* One upload as recorded in the state database, for /operations. */
struct vg_egress_upload_info {
    int64_t id;
    char *provider;
    char *name;          /* object/file name (with the compression suffix) */
    char *state;         /* spooling | pending | uploading | done | failed */
    uint64_t size;       /* bytes to upload (0 while spooling) */
    uint64_t bytes_done; /* bytes of recorded parts/blocks (size when done) */
    unsigned retries;
    char *last_error;  /* NULL when none */
    char *egress_path; /* when done; may be a presigned URL: treat as a secret in logs */
    uint64_t created_ms, updated_ms; /* wall clock */
};
/* The newest `limit` uploads (0: 100), newest first, including those of earlier runs (finished
 * rows are kept 7 days). Free with vg_egress_uploads_free. */
int vg_egress_uploads(struct vg_egress *e, size_t limit, struct vg_egress_upload_info **out,
                      size_t *n);
void vg_egress_uploads_free(struct vg_egress_upload_info *v, size_t n);

#endif
