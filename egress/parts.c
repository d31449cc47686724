/* The part pool: several S3 parts / Azure blocks of one upload in flight at once. Lanes are
 * threads, each with its own libcurl handle and a shallow copy of the upload (its own error
 * buffer and retry hint; everything else is read-only while parts are sent). A part is read
 * from the spool file with pread as curl asks for it, so memory stays bounded by the lanes'
 * buffers whatever the artifact's size. Finished parts are recorded in the state database as
 * they complete, in any order: a resume sends only the missing ones. */
#include "config/error.h"
#include "config/log.h"
#include "egress/egress_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LANES 4 /* parts in flight: enough to keep a link busy, bounded memory */

struct job {
    unsigned no;
    uint64_t off, len;
};

struct vg__pool {
    struct vg__upload *u;
    uint64_t chunk;
    bool early; /* started while the artifact is written: begins the remote upload itself */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *q;
    size_t qn, qhead, qcap;
    unsigned queued_upto; /* the highest part number ever queued */
    unsigned busy;
    bool begun; /* the remote upload exists (or needs no begin) */
    bool closing;
    int rc; /* the first error */
    char err[512];
    atomic_bool halt; /* cuts the lanes' transfers */
    unsigned n_lanes;
    pthread_t th[LANES];
    struct vg__upload lane[LANES];
};

static void pool_fail(struct vg__pool *p, int rc, const char *err)
{
    if (!p->rc) {
        p->rc = rc;
        snprintf(p->err, sizeof(p->err), "%s", err && *err ? err : vg_strerror(rc));
    }
    pthread_cond_broadcast(&p->cv);
}

static int record(struct vg__pool *p, const struct job *j, char *tag)
{
    struct vg__upload *u = p->u;
    struct vg__part part = {.no = j->no, .off = j->off, .len = j->len, .tag = tag};
    int rc = vg__db_add_part(u, &part);
    pthread_mutex_lock(&p->mu);
    struct vg__part *np = rc ? NULL : realloc(u->parts, (u->n_parts + 1) * sizeof(*np));
    if (np) {
        u->parts = np;
        np[u->n_parts++] = part;
        tag = NULL;
    } else if (!rc) {
        rc = VG_ENOMEM;
    }
    pthread_mutex_unlock(&p->mu);
    free(tag);
    if (!rc)
        vg__egress_count(u->e, VG__C_BYTES, (int64_t)j->len);
    return rc;
}

static void *lane_main(void *arg)
{
    struct vg__upload *lane = arg;
    struct vg__pool *p = lane->pool;
    pthread_mutex_lock(&p->mu);
    if (p->early && !p->begun && lane == &p->lane[0]) {
        /* The first lane creates the remote upload; the writer never waits for the network. */
        pthread_mutex_unlock(&p->mu);
        int rc = vg__upload_begin(lane);
        pthread_mutex_lock(&p->mu);
        if (rc) {
            pool_fail(p, rc, lane->err);
        } else {
            /* the upload and every lane take the remote id (the upload owns it) */
            p->u->remote_id = lane->remote_id;
            p->u->chunked = lane->chunked;
            for (unsigned i = 0; i < LANES; i++)
                p->lane[i].remote_id = lane->remote_id;
        }
        p->begun = true;
        pthread_cond_broadcast(&p->cv);
    }
    for (;;) {
        while (!p->rc && (!p->begun || (p->qhead == p->qn && !p->closing)))
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->rc || p->qhead == p->qn)
            break;
        struct job j = p->q[p->qhead++];
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        char *tag = NULL;
        lane->err[0] = '\0';
        int rc = vg__upload_part(lane, j.no, j.off, j.len, &tag);
        if (!rc)
            rc = record(p, &j, tag);
        else
            free(tag);
        pthread_mutex_lock(&p->mu);
        p->busy--;
        if (rc) {
            pool_fail(p, rc, lane->err);
            /* A lost cause (fatal, cancelled, the remote upload gone) cuts the other transfers;
             * a transient failure lets them finish: they may well succeed. */
            if (rc != VG_ERETRY)
                atomic_store(&p->halt, true);
        }
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int vg__pool_start(struct vg__upload *u, uint64_t chunk, bool early, struct vg__pool **out)
{
    *out = NULL;
    struct vg__pool *p = calloc(1, sizeof(*p));
    if (!p)
        return VG_ENOMEM;
    p->u = u;
    p->chunk = chunk;
    p->early = early;
    p->begun = !early;
    atomic_init(&p->halt, false);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (unsigned i = 0; i < LANES; i++) {
        struct vg__upload *l = &p->lane[i];
        *l = *u; /* shares names, ids and flags; owns curl, err and the retry hint */
        l->curl = NULL;
        l->err[0] = '\0';
        l->pool = p;
        l->halt = &p->halt;
        l->early = early;
        l->claimed = false;
    }
    pthread_mutex_lock(&p->mu); /* lane 0 may begin before the others exist */
    for (unsigned i = 0; i < LANES; i++) {
        if (pthread_create(&p->th[i], NULL, lane_main, &p->lane[i]) != 0)
            break;
        p->n_lanes++;
    }
    pthread_mutex_unlock(&p->mu);
    if (!p->n_lanes) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return VG_EAGAIN;
    }
    *out = p;
    return 0;
}

int vg__pool_add(struct vg__pool *p, unsigned no, uint64_t off, uint64_t len)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (p->qn == p->qcap) {
        size_t nc = p->qcap ? p->qcap * 2 : 64;
        struct job *nq = realloc(p->q, nc * sizeof(*nq));
        if (!nq) {
            rc = VG_ENOMEM;
            goto out;
        }
        p->q = nq;
        p->qcap = nc;
    }
    p->q[p->qn++] = (struct job){no, off, len};
    if (no > p->queued_upto)
        p->queued_upto = no;
    pthread_cond_signal(&p->cv);
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

unsigned vg__pool_queued_upto(struct vg__pool *p)
{
    pthread_mutex_lock(&p->mu);
    unsigned n = p->queued_upto;
    pthread_mutex_unlock(&p->mu);
    return n;
}

uint64_t vg__pool_chunk(const struct vg__pool *p)
{
    return p->chunk;
}

int vg__pool_begun(struct vg__pool *p)
{
    pthread_mutex_lock(&p->mu);
    while (!p->begun && !p->rc)
        pthread_cond_wait(&p->cv, &p->mu);
    int rc = p->rc;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void vg__pool_stop(struct vg__pool *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->halt, true);
    pool_fail(p, VG_ECANCELED, "stopped");
    pthread_mutex_unlock(&p->mu);
}

static int part_cmp(const void *a, const void *b)
{
    const struct vg__part *x = a, *y = b;
    return x->no < y->no ? -1 : x->no > y->no;
}

int vg__pool_wait(struct vg__pool *p, char *err, size_t errlen)
{
    pthread_mutex_lock(&p->mu);
    p->closing = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n_lanes; i++) {
        pthread_join(p->th[i], NULL);
        if (p->lane[i].curl)
            vg__curl_easy_cleanup(p->lane[i].curl);
        if (p->lane[i].retry_after_ms > p->u->retry_after_ms)
            p->u->retry_after_ms = p->lane[i].retry_after_ms;
    }
    struct vg__upload *u = p->u;
    if (u->n_parts > 1)
        qsort(u->parts, u->n_parts, sizeof(*u->parts), part_cmp);
    int rc = p->rc;
    if (rc && err)
        snprintf(err, errlen, "%s", p->err);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->q);
    free(p);
    return rc;
}
