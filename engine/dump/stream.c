/* Streaming: a reader thread copies the memory (from the frozen target in Stop mode, from the
 * clone in Snapshot mode) into a ring of VG__CD_RING chunks of 4 MiB; this thread writes them in
 * file order, into the sink or into the file (all-zero pages as holes), and hands them back. The
 * memory in flight is bounded by the ring whatever the target's size: a slow sink slows the
 * reader down. In Stop mode the target is resumed as soon as the reader has read the last byte;
 * in Snapshot mode every chunk written is released from the clone (snapshot.c). */
#include "engine/dump/dump_int.h"

#include "config/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__x86_64__)

struct cd_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct vg__cd_chunk *head, *tail; /* filled, in file order */
    struct vg__cd_chunk *free;        /* empty */
    int done, stop, err;
    struct vg__cd_ctx *c;
};

static struct vg__cd_chunk *chunk_new(void)
{
    struct vg__cd_chunk *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->buf = mmap(NULL, VG__CD_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (k->buf == MAP_FAILED) {
        free(k);
        return NULL;
    }
    return k;
}

static void chunk_free_list(struct vg__cd_chunk *k)
{
    while (k) {
        struct vg__cd_chunk *n = k->next;
        munmap(k->buf, VG__CD_CHUNK);
        free(k);
        k = n;
    }
}

/* An empty chunk, waiting for the writer to give one back; NULL when told to stop. */
static struct vg__cd_chunk *take_chunk(struct cd_pipe *p)
{
    struct vg__cd_chunk *k = NULL;
    pthread_mutex_lock(&p->mu);
    while (!p->stop && !p->free)
        pthread_cond_wait(&p->cv, &p->mu);
    if (!p->stop) {
        k = p->free;
        p->free = k->next;
        k->next = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    return k;
}

static void *cd_reader(void *arg)
{
    struct cd_pipe *p = arg;
    struct vg__cd_ctx *c = p->c;
    int rc = 0;
    for (size_t i = 0; i < c->nseg && !rc; i++) {
        const struct vg__cd_seg *s = &c->seg[i];
        for (uint64_t off = 0; off < s->filesz && !rc;) {
            size_t n = s->filesz - off < VG__CD_CHUNK ? (size_t)(s->filesz - off) : VG__CD_CHUNK;
            struct vg__cd_chunk *k = take_chunk(p);
            if (!k)
                goto out;
            uint64_t addr = s->vaddr + off;
            if (!s->precopied)
                rc = vg__cd_read_mem(c, addr, k->buf, n);
            if (rc) {
                chunk_free_list(k);
                break;
            }
            vg__cd_overlay_apply(c, addr, k->buf, n);
            if (c->type == VG_DUMP_TRIAGE)
                vg__cd_redact(c, addr, k->buf, n);
            k->len = n;
            k->addr = addr;
            k->off = s->offset + off;
            off += n;
            pthread_mutex_lock(&p->mu);
            if (p->tail)
                p->tail->next = k;
            else
                p->head = k;
            p->tail = k;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
out:
    pthread_mutex_lock(&p->mu);
    p->err = rc;
    p->done = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int cd_sink(struct vg__cd_ctx *c, const void *buf, size_t len)
{
    int rc = c->write(c->wctx, buf, len);
    if (rc)
        return vg__cd_fail(c, rc, "writing the core failed after %llu bytes: %s",
                           (unsigned long long)c->bytes, vg_strerror(rc));
    c->bytes += len;
    return 0;
}

static int put(struct vg__cd_ctx *c, const struct vg__cd_chunk *k)
{
    int rc = c->fd >= 0 ? vg__cd_file_write(c, k->buf, k->len, k->off) : cd_sink(c, k->buf, k->len);
    if (!rc)
        c->data += k->len;
    if (!rc && c->snap.pid)
        rc = vg__cd_snap_release(c, k->addr, k->len, 0);
    return rc;
}

int vg__cd_stream(struct vg__cd_ctx *c)
{
    struct cd_pipe p;
    pthread_t th;
    int rc = 0;
    uint64_t total = c->hdr.len;

    for (size_t i = 0; i < c->nseg; i++)
        total += c->seg[i].filesz;
    if (c->fd >= 0) {
        rc = vg__cd_keep_free_check(c, total);
        if (rc)
            return rc;
    }
    memset(&p, 0, sizeof(p));
    p.c = c;
    for (unsigned i = 0; i < VG__CD_RING; i++) {
        struct vg__cd_chunk *k = chunk_new();
        if (!k)
            break;
        k->next = p.free;
        p.free = k;
    }
    if (!p.free)
        return vg__cd_fail(c, VG_ENOMEM, "out of memory for the copy buffer");
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    int e = pthread_create(&th, NULL, cd_reader, &p);
    if (e) {
        rc = vg__cd_fail(c, -e, "starting the reader thread: %s", strerror(e));
        goto out_nothread;
    }
    if (c->fd < 0)
        rc = cd_sink(c, c->hdr.data, c->hdr.len);
    for (;;) {
        pthread_mutex_lock(&p.mu);
        while (!rc && !p.done && !p.head)
            pthread_cond_wait(&p.cv, &p.mu);
        int done = p.done, err = p.err;
        struct vg__cd_chunk *k = NULL;
        if (rc || (done && err)) {
            p.stop = 1; /* what is queued is freed below */
        } else if ((k = p.head)) {
            p.head = k->next;
            if (!p.head)
                p.tail = NULL;
            k->next = NULL;
        }
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
        if (rc)
            break;
        if (done && err) {
            rc = err;
            break;
        }
        /* Stop mode: everything is read, the target runs while the rest is written. */
        if (done && c->frozen && !c->detached)
            vg__cd_detach(c);
        if (!k)
            break; /* done, nothing left */
        rc = put(c, k);
        pthread_mutex_lock(&p.mu);
        k->next = p.free;
        p.free = k;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
    }
    pthread_join(th, NULL);
    if (!rc && c->snap.pid)
        rc = vg__cd_snap_release(c, 0, 0, 1);
    if (!rc && c->fd >= 0)
        rc = vg__cd_file_finish(c, total);
out_nothread:
    chunk_free_list(p.head);
    chunk_free_list(p.free);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    return rc;
}

#endif
