/* Internals shared by the egress core and the providers:
 *   egress.c  the artifact API, providers, counters   db.c      the state database (egress_sql.h)
 *   spool.c   spool files: quota, compression, sha    resume.c  the resume worker, live claims
 *   upload.c  one upload through a provider, retries  client.c  the libcurl client (one request) */
#ifndef VG_EGRESS_INT_H
#define VG_EGRESS_INT_H

#include "egress/sigv4.h" /* struct vg_http_header */
#include "config/settings.h"
#include "config/util.h"
#include "egress/curl_lazy.h"
#include "egress/egress.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>
#include <zstd.h>

struct vg__client_resp {
    long status;   /* 0 when no response */
    int curl_code; /* CURLcode */
    char curl_err[CURL_ERROR_SIZE];
    struct vg_buf body;      /* first 64 KiB */
    struct vg_buf headers;   /* raw header lines of the final response, first 16 KiB */
    uint64_t retry_after_ms; /* from Retry-After, 0 when absent */
};

struct vg__client_req {
    const char *method;
    const char *url;
    const struct curl_slist *headers;
    int body_fd; /* >= 0: the body is body_len bytes of this file from body_off */
    uint64_t body_off;
    uint64_t body_len;
    const char *body; /* in-memory body when body_fd < 0 (may be NULL: empty) */
    size_t body_mem_len;
    bool no_body_response; /* HEAD */
};

/* One provider request, the same shape for S3 and Azure. */
struct vg__call {
    const char *method;
    const char *query; /* as the provider wants it (S3: raw, Azure: encoded), or NULL */
    struct vg_http_header hdr[48];
    size_t n_hdr;
    int fd; /* >= 0: the body is len bytes of this file from off */
    uint64_t off, len;
    const char *mem; /* else an in-memory body (may be NULL: empty) */
    size_t mem_len;
    bool head;
};

struct vg__part {
    unsigned no; /* 1-based */
    uint64_t off, len;
    char *tag; /* S3 ETag or Azure block id */
};

struct vg__provider;

/* One upload: a row of egress_uploads plus runtime state. */
struct vg__upload {
    int64_t id;
    struct vg_egress *e;
    struct vg__provider *prov;
    char *name; /* final object/file name (compression suffix included) */
    char *content_type;
    struct vg_kv *meta; /* owned keys/values, vigil_* included */
    size_t n_meta;
    char *spool_path;
    uint64_t size;
    char sha256[65];
    char *remote_id; /* S3 multipart UploadId */
    struct vg__part *parts;
    size_t n_parts;
    bool chunked; /* set by begin: upload with put_chunk + finish */
    bool resumed;
    bool claimed;          /* registered as active in this process (released by vg__upload_free) */
    bool remote_checked;   /* a resumed remote upload was found to still exist */
    bool finish_started;   /* the final step was sent: the object may be there */
    bool cleanup;          /* requests undoing a cancelled upload: not themselves cancelled */
    atomic_bool *cancel;   /* set by vg_egress_upload_cancel (owned by the live-upload registry) */
    bool early;            /* a lane streaming parts while the artifact is written: no backoff */
    atomic_bool *halt;     /* a lane's pool stopping: cut the transfer */
    struct vg__pool *pool; /* lanes sending parts (streaming since the write; a lane's own pool) */
    CURL *curl;
    char err[512];
    uint64_t retry_after_ms; /* hint from the last VG_ERETRY */
};

struct vg_egress_provider_type {
    const char *type_name; /* the settings' provider family, e.g. "S3Storage" */
    enum vg_egress_kind kind;
    bool spools; /* false: vg_artifact_write goes straight to direct_create's file */
    /* Parts may be sent while the artifact is still written (begin needs neither the size nor
     * the checksum: Azure's metadata goes with the block list; S3's vigilsha256 goes with
     * CreateMultipartUpload, so S3 sends its parts after the commit). */
    bool streams;
    int (*create)(const struct vg_egress_settings *s, void **state, char *err, size_t errlen);
    /* Optional: checks the settings as create would, without side effects (no directories
     * made, no network). Without it, create + destroy must be free of side effects. */
    int (*validate)(const struct vg_egress_settings *s, char *err, size_t errlen);
    void (*destroy)(void *state);
    int (*check_name)(void *state, const char *name, char *err, size_t errlen);
    /* Direct providers: creates the file that writes go to (vg__file_create_at, mode 0600):
     * *path (malloc'd, recorded for resume) and *fd. err says why not. */
    int (*direct_create)(void *state, const struct vg__upload *u, char **path, int *fd, char *err,
                         size_t errlen);
    /* The size of chunks passed to put_chunk. */
    uint64_t (*chunk_size)(void *state, const struct vg__upload *u);
    /* Each of these makes one attempt: 0, VG_ERETRY (u->retry_after_ms may hint a delay),
     * VG_ENOTFOUND (the remote upload vanished: the core restarts it once) or a fatal error;
     * u->err says why. begin sets u->chunked and may set u->remote_id (the core persists it). */
    int (*begin)(void *state, struct vg__upload *u);
    int (*put_chunk)(void *state, struct vg__upload *u, unsigned no, uint64_t off, uint64_t len,
                     char **out_tag);
    int (*finish)(void *state, struct vg__upload *u);
    /* Is the object already there, complete (size and vigilsha256 metadata)? For resumes. */
    int (*probe)(void *state, struct vg__upload *u, bool *complete);
    void (*abort)(void *state, struct vg__upload *u); /* best effort, one attempt */
    /* Deletes the stored object (a cancelled upload that landed): 0 (also when it is not
     * there), or what the request says (one attempt). */
    int (*remove)(void *state, struct vg__upload *u);
    int (*egress_path)(void *state, const struct vg__upload *u, char **out);
    /* Optional: refines the generic classification of a response (vg__client_judge): given the
     * generic verdict (0 = OK, VG_ERETRY, VG_EAUTH, VG_EFATAL) and the service's error code
     * (the XML <Code>, NULL if none), returns the final one (VG_ENOTFOUND: restart upload). */
    int (*classify)(const struct vg__client_resp *r, const char *code, int verdict);
};

struct vg__provider {
    const struct vg_egress_provider_type *type;
    void *state;
    char *name;      /* settings name */
    char *component; /* "egress:s3:NAME" for logs */
    enum vg_compression compression;
    unsigned max_retries;
    uint64_t retry_max_delay_ms;
    uint64_t timeout_ms;
};

extern const struct vg_egress_provider_type vg__egress_filesystem;
extern const struct vg_egress_provider_type vg__egress_s3;
extern const struct vg_egress_provider_type vg__egress_azure_blob;

/* --- client.c: one HTTP request with libcurl --- */
void vg__client_resp_init(struct vg__client_resp *r);
void vg__client_resp_free(struct vg__client_resp *r);
/* Performs one request on u->curl (created on first use) with the provider's stall timeout;
 * cancelled when the egress stops. Returns 0 when a response arrived (any status) or when the
 * transfer failed (r->curl_code set); VG_ECANCELED when stopping; VG_ENOMEM. */
int vg__client_do(struct vg__upload *u, const struct vg__client_req *req,
                  struct vg__client_resp *r);
/* Classifies a response OK / RETRY / FATAL: transfer errors and 408/429/5xx are RETRY, 401/403
 * VG_EAUTH, other non-2xx VG_EFATAL; then the provider's classify hook refines it. Fills u->err
 * (with the service's <Code> if any) and u->retry_after_ms. Returns 0, VG_ERETRY, VG_EAUTH,
 * VG_EFATAL or what the hook says. what names the operation for messages. */
int vg__client_judge(struct vg__upload *u, const struct vg__client_resp *r, const char *what);
/* Value of a response header (case-insensitive name), malloc'd, or NULL. */
char *vg__client_header(const struct vg__client_resp *r, const char *name);
/* After a HEAD of the stored object: true when its size and vigil's sha256 metadata (header
 * sha_header, e.g. "x-amz-meta-vigilsha256") match the upload, i.e. it is already complete. */
bool vg__client_object_complete(const struct vg__client_resp *r, const struct vg__upload *u,
                                const char *sha_header);
void vg__call_init(struct vg__call *c, const char *method, const char *query);
/* Adds a header to sign and send (NULL values are skipped; the first 48 are kept). */
void vg__call_header(struct vg__call *c, const char *name, const char *value);
/* Sends a signed call: c's headers (Content-Length is left to curl) plus `extra` ones (NULL
 * values skipped), without curl's 100-continue round trip, then logs METHOD log_target and the
 * outcome at debug level (log_target must hold no secret: a URL may carry a SAS). */
int vg__client_send(struct vg__upload *u, const struct vg__call *c, const char *url,
                    const char *log_target, const struct vg_http_header *extra, size_t n_extra,
                    struct vg__client_resp *r);
/* Text between <tag> and </tag> in s, malloc'd, or NULL. */
char *vg__xml_text(const char *s, const char *tag);
/* SHA-256 / MD5 of len bytes of fd from off (hex / base64). */
int vg__file_sha256_hex(int fd, uint64_t off, uint64_t len, char out[65]);
int vg__file_md5_b64(int fd, uint64_t off, uint64_t len, char out[25]);
/* "scheme://host[:port][/path]" split; path has no trailing '/' ("" when none). */
struct vg__url {
    char *scheme;
    char *hostport;
    char *path;
};
int vg__url_split(const char *url, struct vg__url *out);
void vg__url_free(struct vg__url *u);

/* --- egress.c: the core object, shared by every thread --- */
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
    bool pending_hint; /* an upload was left pending since the last resume started */
    struct vg_egress_status st;
    bool resume_running;
    bool resume_joinable;
    pthread_t resume_thread;
};

/* The provider configured under name (case-insensitive), or NULL. */
struct vg__provider *vg__egress_provider(struct vg_egress *e, const char *name);
/* Sleeps ms unless the egress is stopping: 0 or VG_ECANCELED. */
int vg__egress_stopping(struct vg_egress *e);
/* Sleeps ms unless the egress is stopping or the upload is cancelled: 0 or VG_ECANCELED. */
int vg__upload_sleep(struct vg__upload *u, uint64_t ms);
/* An upload was left pending (retries ran out): the next success starts a resume. */
void vg__egress_note_pending(struct vg_egress *e);
/* An upload succeeded: if some were left pending, the provider may be back: resume them. */
void vg__egress_note_success(struct vg_egress *e);
enum vg__counter {
    VG__C_STARTED,
    VG__C_SUCCEEDED,
    VG__C_FAILED,
    VG__C_RETRYING,
    VG__C_RETRIES,
    VG__C_ACTIVE,
    VG__C_BYTES,
};
void vg__egress_count(struct vg_egress *e, enum vg__counter c, int64_t delta);
/* Appends a metadata pair (both copied): 0 or VG_ENOMEM. */
int vg__upload_meta_add(struct vg__upload *u, const char *key, const char *value);
void vg__upload_free(struct vg__upload *u);

/* --- db.c: the state database (own connection; every call is one statement under db_mu) --- */
/* Opens/creates STATE_DIR/vigil.db and the egress tables; prunes week-old finished rows. */
int vg__db_open(struct vg_egress *e, char *err, size_t errlen);
void vg__db_close(struct vg_egress *e);
/* Inserts u's row (state spooling) and sets u->id. */
int vg__db_insert_upload(struct vg__upload *u);
int vg__db_set_spool(struct vg__upload *u);
/* spooling -> pending with u->size and u->sha256. */
int vg__db_set_pending(struct vg__upload *u);
int vg__db_set_state(struct vg__upload *u, const char *state, const char *err);
int vg__db_set_remote(struct vg__upload *u);
/* The final name changed (a FileSystem name taken by another artifact). */
int vg__db_set_name(struct vg__upload *u);
int vg__db_add_part(struct vg__upload *u, const struct vg__part *p);
int vg__db_clear_parts(struct vg__upload *u);
int vg__db_set_done(struct vg__upload *u, const char *egress_path);
int vg__db_note_retry(struct vg__upload *u, const char *err);
/* Loads the recorded parts of u (resume). */
int vg__db_load_parts(struct vg__upload *u);
/* One upload by id, as the resume worker loads it, and its state (both malloc'd). */
int vg__db_load_upload(struct vg_egress *e, int64_t id, struct vg__upload **out, char **state);
/* The unfinished uploads (spooling, pending, uploading), oldest first, each with its state
 * (malloc'd arrays, as many as *n, also on error). u->prov is NULL when the provider is gone. */
int vg__db_leftovers(struct vg_egress *e, struct vg__upload ***out, char ***states, size_t *n);

/* --- spool.c: the file an artifact is written to --- */
/* Creates path and its missing parents, mode 0700. err says which failed. */
int vg__mkdir_p(const char *path, char *err, size_t errlen);
/* Opens a directory vigil writes files into (creating it first when create), refusing it when
 * another user could replace those files: every directory of its real path must be owned by
 * root or vigil's user, and be sticky where others may write it. The directory itself is made
 * sticky instead when vigil may (logged). *out: an O_DIRECTORY fd. VG_EPERM names the culprit. */
int vg__dir_open_safe(const char *path, bool create, int *out, char *err, size_t errlen);
/* Creates name in dirfd for writing, mode 0600, never following a link nor reusing a file: an
 * entry already there (a crashed run's leftover, a planted link) is removed first. */
int vg__file_create_at(int dirfd, const char *name, int *out);
/* The writer of one artifact: compressor, quota, disk, checksum. */
struct vg__spool {
    struct vg__upload *u;
    int fd;
    bool created;    /* the file is ours to delete on discard */
    bool counted;    /* in the spool directory: counts against Storage.SpoolQuota */
    char *quota_dir; /* the directory whose filesystem Storage.KeepFree protects */
    enum vg_compression comp;
    z_stream z;
    bool z_init;
    ZSTD_CStream *zs;
    EVP_MD_CTX *sha;
    uint64_t written;  /* bytes in the file */
    uint64_t flushed;  /* bytes whose writeback has been started */
    uint64_t reserved; /* bytes accounted against the spool quota */
    int failed;        /* the first error; every later call returns it */
    char err[512];
    unsigned char out[64 * 1024];
};
/* Starts writing u's artifact into fd (u->spool_path, created by the caller; the spool owns fd
 * from now on, even on error). counted: it is in the spool directory (quota). */
int vg__spool_open(struct vg__spool *s, struct vg__upload *u, int fd, bool counted,
                   enum vg_compression comp);
/* Compresses (if asked) and appends: 0, VG_EQUOTA (SpoolQuota or KeepFree) or an I/O error;
 * after any error the spool is failed and s->err says why. */
int vg__spool_write(struct vg__spool *s, const void *buf, size_t len);
/* Flushes the compressor, fsyncs, sets u->size and u->sha256. */
int vg__spool_finish(struct vg__spool *s);
/* Releases the writer; discard also deletes the file and gives back the reserved quota. */
void vg__spool_close(struct vg__spool *s, bool discard);
/* Deletes u's spool file (after an upload) and gives its bytes back to the quota. */
void vg__spool_drop(struct vg__upload *u);
/* Bytes in regular files of dir (the unfinished spool files count from the start). */
uint64_t vg__spool_usage(const char *dir);
/* Bytes of the filesystem holding dir: total, or available to vigil. 0 when unknown. */
uint64_t vg__fs_bytes(const char *dir, bool total);

/* --- resume.c: uploads left unfinished, and never running one twice --- */
/* Registers u as being written or uploaded by this process (any vg_egress of it): false when
 * it already is (or out of memory). vg__upload_free releases it. */
bool vg__active_claim(struct vg__upload *u);
/* Sets the cancel flag of a live upload: false when no thread of this process runs it. */
bool vg__active_cancel(const char *state_dir, int64_t id);
bool vg__upload_cancelled(const struct vg__upload *u);
void vg__active_release(struct vg__upload *u);
/* Joins the resume worker, if any (the egress is stopping, so it ends within a second). */
void vg__resume_join(struct vg_egress *e);

/* --- parts.c: several parts in flight --- */
struct vg__pool;
/* Starts the lanes sending parts of u, `chunk` bytes each (the last may be shorter). early:
 * started while the artifact is still written: the first lane begins the remote upload, and
 * lanes give up at the first retryable failure (the commit sends what is missing, with
 * retries). */
int vg__pool_start(struct vg__upload *u, uint64_t chunk, bool early, struct vg__pool **out);
/* Queues part no (1-based) at [off, off+len) of the spool. Never blocks on the network. */
int vg__pool_add(struct vg__pool *p, unsigned no, uint64_t off, uint64_t len);
unsigned vg__pool_queued_upto(struct vg__pool *p); /* the highest part number queued */
uint64_t vg__pool_chunk(const struct vg__pool *p);
/* Waits until the remote upload is begun: 0 or the error that stopped the pool. */
int vg__pool_begun(struct vg__pool *p);
/* Stops taking parts and cuts the transfers (abort, a part size that no longer fits). */
void vg__pool_stop(struct vg__pool *p);
/* Waits for every queued part and frees the pool: 0 or the first error (its message in err).
 * The parts sent are in u->parts (sorted) and in the database. */
int vg__pool_wait(struct vg__pool *p, char *err, size_t errlen);

/* --- upload.c --- */
/* One attempt-with-retries of a step, for the part lanes: begin (records the remote id) and
 * one part (its tag in *tag). */
int vg__upload_begin(struct vg__upload *u);
int vg__upload_part(struct vg__upload *u, unsigned no, uint64_t off, uint64_t len, char **tag);
/* Undoes a cancelled upload: state cancelling, the remote multipart upload aborted, the object
 * removed if it may have landed (maybe_landed: probe first) and is this one, the spool
 * dropped, state cancelled. 0 when all is undone; VG_ERETRY leaves it cancelling, for the
 * resume worker to finish. */
int vg__upload_undo(struct vg__upload *u, bool maybe_landed);
/* Uploads a pending upload to completion with retries (resumes recorded parts). On success
 * *out_path is the EgressPath. Returns 0, VG_ERETRY (retries exhausted: stays pending),
 * VG_ECANCELED (stopping: stays pending) or a fatal error (the upload is failed and dropped). */
int vg__upload_run(struct vg__upload *u, char **out_path);

#endif
