/* Drives one upload through a provider: begin, chunks, finish; each step retried with
 * exponential backoff and jitter (Retry-After honoured), progress persisted after every chunk so
 * a new process continues where this one stopped. */
#include "config/error.h"
#include "config/log.h"
#include "egress/egress_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BASE_DELAY_MS 500

enum step { STEP_BEGIN, STEP_CHUNK, STEP_FINISH, STEP_PROBE, STEP_REMOVE };

struct step_arg {
    unsigned no;
    uint64_t off, len;
    char *tag;
    bool complete;
};

static int run_step(struct vg__upload *u, enum step s, struct step_arg *a)
{
    const struct vg_egress_provider_type *t = u->prov->type;
    void *st = u->prov->state;
    switch (s) {
    case STEP_BEGIN:
        return t->begin(st, u);
    case STEP_CHUNK:
        return t->put_chunk(st, u, a->no, a->off, a->len, &a->tag);
    case STEP_FINISH:
        u->finish_started = true;
        return t->finish(st, u);
    case STEP_PROBE:
        return t->probe(st, u, &a->complete);
    case STEP_REMOVE:
        return t->remove(st, u);
    }
    return VG_EINVAL;
}

static uint64_t backoff_ms(struct vg__upload *u, unsigned attempt, unsigned *seed)
{
    uint64_t cap = u->prov->retry_max_delay_ms;
    uint64_t d = BASE_DELAY_MS;
    for (unsigned i = 0; i < attempt && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    /* Equal jitter: never zero, never in lock-step with other clients. */
    d = d / 2 + (uint64_t)rand_r(seed) % (d / 2 + 1);
    if (u->retry_after_ms > d)
        d = u->retry_after_ms < cap ? u->retry_after_ms : cap;
    return d;
}

static int with_retry(struct vg__upload *u, const char *what, enum step s, struct step_arg *a)
{
    unsigned seed = (unsigned)(vg_mono_ms() ^ (uint64_t)u->id * 2654435761u);
    for (unsigned attempt = 0;; attempt++) {
        u->err[0] = '\0';
        u->retry_after_ms = 0;
        if (vg__upload_cancelled(u))
            return VG_ECANCELED;
        int rc = run_step(u, s, a);
        if (rc != VG_ERETRY)
            return rc;
        if (u->early) {
            /* streaming during the write: no backoff here, the commit sends it again */
            vg_log(VG_LOG_WARN, u->prov->component, "%s: %s (sent again at the commit)", u->name,
                   u->err);
            vg__egress_count(u->e, VG__C_RETRIES, 1);
            vg__db_note_retry(u, u->err);
            return rc;
        }
        if (attempt >= u->prov->max_retries) {
            vg_log(VG_LOG_ERROR, u->prov->component, "%s: %s: giving up after %u retries: %s",
                   u->name, what, attempt, u->err);
            return VG_ERETRY;
        }
        uint64_t d = backoff_ms(u, attempt, &seed);
        vg_log(VG_LOG_WARN, u->prov->component, "%s: %s (retry %u/%u in %llu ms)", u->name, u->err,
               attempt + 1, u->prov->max_retries, (unsigned long long)d);
        vg__egress_count(u->e, VG__C_RETRIES, 1);
        vg__db_note_retry(u, u->err);
        vg__egress_count(u->e, VG__C_RETRYING, 1);
        rc = vg__upload_sleep(u, d);
        vg__egress_count(u->e, VG__C_RETRYING, -1);
        if (rc)
            return rc;
    }
}

static void reset_remote(struct vg__upload *u)
{
    free(u->remote_id);
    u->remote_id = NULL;
    for (size_t i = 0; i < u->n_parts; i++)
        free(u->parts[i].tag);
    u->n_parts = 0;
    vg__db_clear_parts(u);
    vg__db_set_remote(u);
}

/* The spool must still hold exactly what was recorded: never upload a truncated artifact. */
static int check_spool(struct vg__upload *u)
{
    struct stat sb;
    if (lstat(u->spool_path, &sb) != 0) {
        int rc = -errno;
        snprintf(u->err, sizeof(u->err), "spool file %s: %s", u->spool_path, vg_strerror(rc));
        return VG_EFATAL;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(u->err, sizeof(u->err), "spool file %s is not a regular file", u->spool_path);
        return VG_EFATAL;
    }
    if ((uint64_t)sb.st_size != u->size) {
        snprintf(u->err, sizeof(u->err), "spool file %s has %lld bytes, %llu were written",
                 u->spool_path, (long long)sb.st_size, (unsigned long long)u->size);
        return VG_EFATAL;
    }
    return 0;
}

int vg__upload_begin(struct vg__upload *u)
{
    int rc = with_retry(u, "begin", STEP_BEGIN, NULL);
    if (!rc && u->remote_id)
        rc = vg__db_set_remote(u);
    return rc;
}

int vg__upload_part(struct vg__upload *u, unsigned no, uint64_t off, uint64_t len, char **tag)
{
    struct step_arg a = {.no = no, .off = off, .len = len};
    int rc = with_retry(u, "upload part", STEP_CHUNK, &a);
    *tag = a.tag;
    return rc;
}

/* Do the recorded parts tile the artifact in `chunk`-sized parts? (They were sent with another
 * part size when the artifact outgrew the one it was streamed with.) */
static bool parts_fit(const struct vg__upload *u, uint64_t chunk, unsigned n)
{
    for (size_t i = 0; i < u->n_parts; i++) {
        const struct vg__part *p = &u->parts[i];
        uint64_t off = (uint64_t)(p->no - 1) * chunk;
        if (p->no < 1 || p->no > n || p->off != off ||
            p->len != (u->size - off < chunk ? u->size - off : chunk))
            return false;
    }
    return true;
}

/* Sends every part not recorded yet, several at once: first to the lanes that streamed parts
 * while the artifact was written (if any), then, for what they could not send, to new lanes
 * with the provider's retries. */
static int send_parts(struct vg__upload *u, uint64_t chunk)
{
    unsigned n = (unsigned)((u->size + chunk - 1) / chunk);
    struct vg__pool *p = u->pool;
    u->pool = NULL;
    if (p) {
        if (vg__pool_chunk(p) == chunk)
            for (unsigned no = vg__pool_queued_upto(p) + 1; no <= n; no++) {
                uint64_t off = (uint64_t)(no - 1) * chunk;
                if (vg__pool_add(p, no, off, u->size - off < chunk ? u->size - off : chunk))
                    break;
            }
        else
            vg__pool_stop(p);
        int rc = vg__pool_wait(p, u->err, sizeof(u->err));
        if (rc && rc != VG_ERETRY &&
            !(rc == VG_ECANCELED && !vg__upload_cancelled(u) && !vg__egress_stopping(u->e)))
            return rc;
    }
    if (!parts_fit(u, chunk, n))
        return VG_ESTATE; /* the caller starts over */
    unsigned char *have = calloc(n ? n : 1, 1);
    if (!have)
        return VG_ENOMEM;
    for (size_t i = 0; i < u->n_parts; i++)
        have[u->parts[i].no - 1] = 1;
    if (u->n_parts && u->n_parts < n) {
        uint64_t done = 0;
        for (size_t i = 0; i < u->n_parts; i++)
            done += u->parts[i].len;
        vg_log(VG_LOG_INFO, u->prov->component,
               "%s: resuming: %zu of %u parts already stored (%llu/%llu bytes)", u->name,
               u->n_parts, n, (unsigned long long)done, (unsigned long long)u->size);
    }
    int rc = 0;
    if (u->n_parts < n) {
        rc = vg__pool_start(u, chunk, false, &p);
        for (unsigned no = 1; !rc && no <= n; no++) {
            uint64_t off = (uint64_t)(no - 1) * chunk;
            if (!have[no - 1])
                rc = vg__pool_add(p, no, off, u->size - off < chunk ? u->size - off : chunk);
        }
        if (p) {
            if (rc)
                vg__pool_stop(p);
            int wrc = vg__pool_wait(p, u->err, sizeof(u->err));
            rc = rc ? rc : wrc;
        }
    }
    free(have);
    return rc;
}

/* The lanes streaming since the write, stopped (the upload goes another way). */
static void drop_pool(struct vg__upload *u)
{
    if (u->pool) {
        vg__pool_stop(u->pool);
        vg__pool_wait(u->pool, NULL, 0);
        u->pool = NULL;
    }
}

static int upload_body(struct vg__upload *u)
{
    const struct vg_egress_provider_type *t = u->prov->type;
    int restarts = 0;
    int rc;
    /* Lanes that streamed parts during the write may still be creating the remote upload. */
    if (u->pool && vg__pool_begun(u->pool))
        drop_pool(u); /* that failed: begin again below, with retries */
again:
    rc = with_retry(u, "begin", STEP_BEGIN, NULL);
    if (rc == VG_ENOTFOUND && !restarts++) {
        vg_log(VG_LOG_WARN, u->prov->component, "%s: %s; starting over", u->name, u->err);
        drop_pool(u);
        reset_remote(u);
        goto again;
    }
    if (rc) {
        drop_pool(u);
        return rc;
    }
    if (u->remote_id && (rc = vg__db_set_remote(u)))
        return rc;
    if (u->chunked) {
        rc = send_parts(u, t->chunk_size(u->prov->state, u));
        if ((rc == VG_ENOTFOUND || rc == VG_ESTATE) && !restarts++) {
            if (rc == VG_ESTATE) {
                snprintf(u->err, sizeof(u->err), "the stored parts do not fit the part size");
                t->abort(u->prov->state, u);
            }
            vg_log(VG_LOG_WARN, u->prov->component, "%s: %s; starting over", u->name, u->err);
            reset_remote(u);
            goto again;
        }
        if (rc)
            return rc;
    } else {
        drop_pool(u);
    }
    rc = with_retry(u, "finish", STEP_FINISH, NULL);
    if (rc == VG_ENOTFOUND && !restarts++) {
        /* The remote upload vanished: maybe this very finish completed before a crash. */
        struct step_arg a = {0};
        if (!with_retry(u, "probe", STEP_PROBE, &a) && a.complete)
            return 0;
        reset_remote(u);
        goto again;
    }
    if (!rc && !u->chunked)
        vg__egress_count(u->e, VG__C_BYTES, (int64_t)u->size);
    return rc;
}

int vg__upload_undo(struct vg__upload *u, bool maybe_landed)
{
    const struct vg_egress_provider_type *t = u->prov->type;
    /* Durable first: a crash from here on leaves the undoing to the next resume. */
    vg__db_set_state(u, "cancelling", "cancelled");
    u->cleanup = true;
    vg__spool_drop(u);
    t->abort(u->prov->state, u);
    int rc = 0;
    if (maybe_landed) {
        struct step_arg a = {0};
        rc = with_retry(u, "probe", STEP_PROBE, &a);
        /* only an object with this upload's size and checksum is this upload's to remove */
        if (!rc && a.complete)
            rc = with_retry(u, "remove", STEP_REMOVE, NULL);
    }
    if (rc) {
        vg_log(VG_LOG_WARN, u->prov->component,
               "%s: cancelled, but what landed could not be removed yet: %s (retried later)",
               u->name, u->err[0] ? u->err : vg_strerror(rc));
        return VG_ERETRY;
    }
    vg__db_set_state(u, "cancelled", "cancelled");
    vg_log(VG_LOG_INFO, u->prov->component, "%s: cancelled; nothing of it is left", u->name);
    return 0;
}

int vg__upload_run(struct vg__upload *u, char **out_path)
{
    *out_path = NULL;
    const struct vg_egress_provider_type *t = u->prov->type;
    struct vg_egress *e = u->e;
    vg__egress_count(e, VG__C_STARTED, 1);
    vg__egress_count(e, VG__C_ACTIVE, 1);
    uint64_t t0 = vg_mono_ms();
    int rc = vg__db_set_state(u, "uploading", NULL);
    bool done = false;
    if (rc)
        goto out;
    if (u->resumed) {
        struct step_arg a = {0};
        if (!with_retry(u, "probe", STEP_PROBE, &a) && a.complete) {
            vg_log(VG_LOG_INFO, u->prov->component, "%s: already complete at the destination",
                   u->name);
            done = true;
            /* A multipart upload still open would only cost storage until a lifecycle rule. */
            if (u->remote_id)
                t->abort(u->prov->state, u);
        }
    }
    if (!done && (rc = check_spool(u)))
        goto out;
    if (!done && (rc = upload_body(u)))
        goto out;
    /* Cancelled while the last step ran: the object is there but no longer wanted. */
    if (vg__upload_cancelled(u)) {
        rc = VG_ECANCELED;
        goto out;
    }
    if ((rc = t->egress_path(u->prov->state, u, out_path)))
        goto out;
    if ((rc = vg__db_set_done(u, *out_path)))
        goto out;
    if (t->spools)
        vg__spool_drop(u);
    vg__egress_count(e, VG__C_SUCCEEDED, 1);
    vg_log(VG_LOG_INFO, u->prov->component, "%s: uploaded %llu bytes in %llu ms", u->name,
           (unsigned long long)u->size, (unsigned long long)(vg_mono_ms() - t0));
out:
    drop_pool(u); /* not handed to upload_body (cancelled, spool check...) */
    if (rc) {
        free(*out_path);
        *out_path = NULL;
        if (!u->err[0])
            snprintf(u->err, sizeof(u->err), "%s", vg_strerror(rc));
    }
    if (rc == VG_ECANCELED && vg__upload_cancelled(u)) {
        snprintf(u->err, sizeof(u->err), "cancelled");
        rc = vg__upload_undo(u, u->finish_started || done) ? VG_ERETRY : VG_ECANCELED;
    } else if (rc == VG_ERETRY || rc == VG_ECANCELED || rc == VG_ESQLITE) {
        /* Durable: the spool and the recorded parts stay for the next resume. */
        vg__db_set_state(u, "pending", u->err);
        vg_log(VG_LOG_WARN, u->prov->component, "%s: left pending for a later resume: %s", u->name,
               u->err);
        if (rc != VG_ECANCELED) {
            vg__egress_count(e, VG__C_FAILED, 1);
            vg__egress_note_pending(e);
        }
    } else if (rc) {
        vg_log(VG_LOG_ERROR, u->prov->component, "%s: upload failed: %s", u->name, u->err);
        t->abort(u->prov->state, u);
        vg__spool_drop(u);
        vg__db_set_state(u, "failed", u->err);
        vg__egress_count(e, VG__C_FAILED, 1);
    }
    vg__egress_count(e, VG__C_ACTIVE, -1);
    if (!rc)
        vg__egress_note_success(e);
    return rc;
}
