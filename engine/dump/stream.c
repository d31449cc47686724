/* Streaming: the memory is copied by a reader thread into 4 MiB chunks and handed to the sink in
 * file order by the calling thread. */
#include "engine/dump/dump_int.h"

#include "config/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CD_BUF_MIN_CHUNKS 8u /* budget floor */
#define CD_BUF_MAX (16ull << 30)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#if defined(__x86_64__)

/* ---- streaming --------------------------------------------------------------------------------
 */

/* Chunks travel from the reader thread (process_vm_readv) to this thread (the sink) in order.
 * When the sink falls behind, the reader takes fresh chunks instead of waiting, up to a memory
 * budget, so a slow sink (disk, network) does not stretch the freeze; with a fast sink the same
 * few warm chunks are reused. */
struct cd_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct vg__cd_chunk *head, *tail; /* filled, in file order */
    struct vg__cd_chunk *free;        /* empty, warm */
    size_t allocated, budget;         /* chunks */
    int done, stop, err;
    int starved; /* the reader waits for the sink to hand chunks back */
    struct vg__cd_ctx *c;
};

static struct vg__cd_chunk *chunk_new(void)
{
    struct vg__cd_chunk *k = malloc(sizeof(*k));
    if (!k)
        return NULL;
    k->buf = mmap(NULL, VG__CD_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (k->buf == MAP_FAILED) {
        free(k);
        return NULL;
    }
    k->next = NULL;
    k->len = 0;
    return k;
}

void vg__cd_chunk_free_list(struct vg__cd_chunk *k)
{
    while (k) {
        struct vg__cd_chunk *n = k->next;
        munmap(k->buf, VG__CD_CHUNK);
        free(k);
        k = n;
    }
}

/* Blanks argv and the environment for Triage dumps. */
static struct vg__cd_chunk *take_chunk(struct cd_pipe *p)
{
    struct vg__cd_chunk *k = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->stop)
            break;
        if (p->free) {
            k = p->free;
            p->free = k->next;
            k->next = NULL;
            break;
        }
        if (p->allocated < p->budget) {
            p->allocated++;
            pthread_mutex_unlock(&p->mu);
            k = chunk_new();
            pthread_mutex_lock(&p->mu);
            if (k)
                break;
            /* Out of memory: make do with the chunks already out, if any. */
            p->allocated--;
            p->budget = p->allocated;
            if (!p->allocated)
                break;
            continue;
        }
        p->starved = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_cond_wait(&p->cv, &p->mu);
        p->starved = 0;
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
            if (!k) {
                pthread_mutex_lock(&p->mu);
                int stop = p->stop;
                pthread_mutex_unlock(&p->mu);
                if (!stop)
                    rc = vg__cd_fail(c, VG_ENOMEM, "out of memory for the copy buffer");
                goto out;
            }
            rc = vg__cd_read_mem(c, s->vaddr + off, k->buf, n);
            if (rc) {
                vg__cd_chunk_free_list(k);
                break;
            }
            if (c->type == VG_DUMP_TRIAGE)
                vg__cd_redact(c, s->vaddr + off, k->buf, n);
            k->len = n;
            k->next = NULL;
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

int vg__cd_stream(struct vg__cd_ctx *c)
{
    struct cd_pipe p;
    pthread_t th;
    int rc;

    memset(&p, 0, sizeof(p));
    p.c = c;
    p.budget = c->budget;
    p.free = c->warm; /* faulted in before the freeze */
    p.allocated = c->nwarm;
    c->warm = NULL;
    c->nwarm = 0;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    rc = pthread_create(&th, NULL, cd_reader, &p);
    if (rc) {
        rc = vg__cd_fail(c, -rc, "starting the reader thread: %s", strerror(rc));
        goto out_nothread;
    }
    rc = cd_sink(c, c->hdr.data, c->hdr.len);
    for (;;) {
        pthread_mutex_lock(&p.mu);
        /* While the target is frozen the sink waits, unless the reader ran out of buffer: the
         * copy the target waits for gets the CPU and memory bandwidth to itself. */
        while (!rc && !p.done && (!p.head || !p.starved))
            pthread_cond_wait(&p.cv, &p.mu);
        int done = p.done, err = p.err;
        struct vg__cd_chunk *k = NULL;
        if (rc || (done && err))
            p.stop = 1; /* what is queued is freed below */
        else if ((k = p.head)) {
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
        /* Everything is copied: let the target run while the rest drains into the sink. */
        if (done && !c->detached) {
            vg__cd_detach(c);
            pthread_mutex_lock(&p.mu);
            vg__cd_chunk_free_list(p.free);
            p.free = NULL;
            pthread_mutex_unlock(&p.mu);
        }
        if (!k)
            break; /* done, nothing left */
        rc = cd_sink(c, k->buf, k->len);
        if (done) {
            /* The reader is finished: give the memory back at once. The sink (page cache,
             * tmpfs, socket buffers) then reuses these pages instead of fresh ones. */
            vg__cd_chunk_free_list(k);
            continue;
        }
        pthread_mutex_lock(&p.mu);
        k->next = p.free;
        p.free = k;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
    }
    pthread_join(th, NULL);
out_nothread:
    vg__cd_chunk_free_list(p.head);
    vg__cd_chunk_free_list(p.free);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    return rc;
}

/* Bytes the dump will copy, from the smaps read before the freeze (an estimate: the process may
 * still change until it is frozen). */
void vg__cd_warm_chunks(struct vg__cd_ctx *c, uint64_t est, int warm)
{
    uint64_t budget = vg__cd_mem_available() / 3;
    if (budget > CD_BUF_MAX)
        budget = CD_BUF_MAX;
    c->budget = budget / VG__CD_CHUNK;
    if (c->budget < CD_BUF_MIN_CHUNKS)
        c->budget = CD_BUF_MIN_CHUNKS;
    if (!warm)
        return;
    size_t n = (size_t)(est / VG__CD_CHUNK) + 2;
    if (n < CD_BUF_MIN_CHUNKS)
        n = CD_BUF_MIN_CHUNKS;
    if (n > c->budget)
        n = c->budget;
    for (size_t i = 0; i < n; i++) {
        struct vg__cd_chunk *k = chunk_new();
        if (!k)
            break;
        if (madvise(k->buf, VG__CD_CHUNK, MADV_POPULATE_WRITE) != 0)
            for (size_t o = 0; o < VG__CD_CHUNK; o += VG__CD_PAGE)
                k->buf[o] = 0;
        k->next = c->warm;
        c->warm = k;
        c->nwarm++;
    }
}

#endif
