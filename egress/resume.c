/* Resume: a worker thread completes the uploads the state database lists as unfinished, those a
 * previous process left behind and those of this one whose retries ran out; and the registry of
 * uploads live in this process, so that no upload ever runs twice at once. */
#include "config/error.h"
#include "config/log.h"
#include "egress/egress_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_C "egress"

/* ---------------------------------------------------------------- live uploads */

/* Uploads being written or uploaded by any vg_egress of this process (a reload creates a new
 * one while the old one still finishes its uploads): a resume must never run one twice. Each
 * holds the cancel flag of its upload, so a cancel reaches whichever thread runs it. */
static pthread_mutex_t active_mu = PTHREAD_MUTEX_INITIALIZER;
static struct active_upload {
    char *state_dir;
    int64_t id;
    atomic_bool *cancel;
} * active;
static size_t n_active, cap_active;

static struct active_upload *active_find(const char *state_dir, int64_t id)
{
    for (size_t i = 0; i < n_active; i++)
        if (active[i].id == id && !strcmp(active[i].state_dir, state_dir))
            return &active[i];
    return NULL;
}

bool vg__active_claim(struct vg__upload *u)
{
    pthread_mutex_lock(&active_mu);
    bool ok = !active_find(u->e->state_dir, u->id);
    if (ok && n_active == cap_active) {
        size_t nc = cap_active ? cap_active * 2 : 16;
        struct active_upload *na = realloc(active, nc * sizeof(*na));
        if (na) {
            active = na;
            cap_active = nc;
        }
    }
    char *dir = ok && n_active < cap_active ? vg_strdup(u->e->state_dir) : NULL;
    atomic_bool *flag = dir ? calloc(1, sizeof(*flag)) : NULL;
    if (flag) {
        atomic_init(flag, false);
        active[n_active++] = (struct active_upload){dir, u->id, flag};
    } else {
        free(dir);
    }
    pthread_mutex_unlock(&active_mu);
    u->claimed = flag != NULL;
    u->cancel = flag;
    return u->claimed;
}

void vg__active_release(struct vg__upload *u)
{
    pthread_mutex_lock(&active_mu);
    struct active_upload *a = active_find(u->e->state_dir, u->id);
    if (a) {
        free(a->state_dir);
        free(a->cancel);
        *a = active[--n_active];
    }
    if (!n_active) {
        free(active);
        active = NULL;
        cap_active = 0;
    }
    pthread_mutex_unlock(&active_mu);
    u->claimed = false;
    u->cancel = NULL;
}

bool vg__active_cancel(const char *state_dir, int64_t id)
{
    pthread_mutex_lock(&active_mu);
    struct active_upload *a = active_find(state_dir, id);
    if (a)
        atomic_store(a->cancel, true);
    pthread_mutex_unlock(&active_mu);
    return a != NULL;
}

bool vg__upload_cancelled(const struct vg__upload *u)
{
    return !u->cleanup && u->cancel && atomic_load(u->cancel);
}

/* ---------------------------------------------------------------- the worker */

static void *resume_main(void *arg)
{
    struct vg_egress *e = arg;
    struct vg__upload **v = NULL;
    char **states = NULL;
    size_t n = 0;
    vg__db_leftovers(e, &v, &states, &n);
    if (n)
        vg_log(VG_LOG_INFO, LOG_C, "resume: %zu unfinished upload(s) in the state database", n);
    for (size_t i = 0; i < n; i++) {
        struct vg__upload *u = v[i];
        v[i] = NULL;
        if (vg__egress_stopping(e) || !u->name || !u->content_type || !states[i] ||
            !vg__active_claim(u)) {
            /* vg__active_claim fails for an upload this process is running right now */
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
            if (u->remote_id) { /* parts had been streamed meanwhile */
                u->cleanup = true;
                u->prov->type->abort(u->prov->state, u);
            }
            vg__db_set_state(u, "failed", "incomplete: the writer stopped while spooling");
            vg__upload_free(u);
            continue;
        }
        if (!strcmp(states[i], "cancelling")) {
            /* Cancelled while it waited, or undoing it failed: finish undoing it. */
            vg__upload_undo(u, true);
            vg__upload_free(u);
            continue;
        }
        u->resumed = true;
        char *path = NULL; /* not logged: a presigned URL is a credential */
        int rc = vg__db_load_parts(u);
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

/* Joins a finished or stopping worker (vg_egress_destroy, after setting stopping). */
void vg__resume_join(struct vg_egress *e)
{
    pthread_mutex_lock(&e->mu);
    bool join = e->resume_joinable;
    e->resume_joinable = false;
    pthread_mutex_unlock(&e->mu);
    if (join)
        pthread_join(e->resume_thread, NULL);
}
