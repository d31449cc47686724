/* The CLI's progress line (progress.h). */
#include "engine/cli/progress.h"

#include "config/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REDRAW_MS 200

const char *vg_progress_size(uint64_t bytes, char *buf, unsigned n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    unsigned u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, n, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, n, "%.1f %s", v, units[u]);
    return buf;
}

static void duration(uint64_t s, char *buf, size_t n)
{
    if (s >= 3600)
        snprintf(buf, n, "%llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                 (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
    else
        snprintf(buf, n, "%llu:%02llu", (unsigned long long)(s / 60), (unsigned long long)(s % 60));
}

void vg_progress_init(struct vg_progress *p, const char *phase)
{
    memset(p, 0, sizeof(*p));
    const char *term = getenv("TERM");
    p->on = isatty(STDERR_FILENO) && !(term && strcmp(term, "dumb") == 0);
    pthread_mutex_init(&p->mu, NULL);
    p->phase = phase;
    p->t0_ms = vg_mono_ms();
}

/* Called with the lock held. */
static void draw(struct vg_progress *p, uint64_t now)
{
    char done[32], total[32], rate[32], eta[32] = "", line[160];
    uint64_t ms = now > p->t0_ms ? now - p->t0_ms : 0;
    double bps = ms ? (double)p->done * 1000.0 / (double)ms : 0;
    vg_progress_size(p->done, done, sizeof(done));
    vg_progress_size((uint64_t)bps, rate, sizeof(rate));
    int len;
    if (p->total) {
        vg_progress_size(p->total, total, sizeof(total));
        unsigned pct = (unsigned)(p->done >= p->total ? 100 : p->done * 100 / p->total);
        if (bps > 0 && p->total > p->done) {
            snprintf(eta, sizeof(eta), "ETA ");
            duration((uint64_t)((double)(p->total - p->done) / bps) + 1, eta + 4, sizeof(eta) - 4);
        }
        len = snprintf(line, sizeof(line), "%-9s %s / %s  %3u%%  %s/s  %s", p->phase, done, total,
                       pct, rate, eta);
    } else {
        char el[24];
        duration(ms / 1000, el, sizeof(el));
        if (p->sizes_only)
            len = snprintf(line, sizeof(line), "%-9s %s  %s", p->phase, done, el);
        else
            len = snprintf(line, sizeof(line), "%-9s %s  %s/s  %s", p->phase, done, rate, el);
    }
    if (len < 0)
        return;
    if (len > (int)sizeof(line) - 1)
        len = (int)sizeof(line) - 1;
    /* pad over what the previous line left */
    fprintf(stderr, "\r%s%*s", line, p->width > len ? p->width - len : 0, "");
    fflush(stderr);
    p->width = len;
    p->last_ms = now;
}

void vg_progress_phase(struct vg_progress *p, const char *phase, uint64_t total)
{
    pthread_mutex_lock(&p->mu);
    p->phase = phase;
    p->done = 0;
    p->total = total;
    p->t0_ms = vg_mono_ms();
    if (p->on)
        draw(p, p->t0_ms);
    pthread_mutex_unlock(&p->mu);
}

/* Called with the lock held. */
static void maybe_draw(struct vg_progress *p, bool force)
{
    uint64_t now = vg_mono_ms();
    if (p->on && (force || now - p->last_ms >= REDRAW_MS))
        draw(p, now);
}

void vg_progress_set(struct vg_progress *p, uint64_t done, uint64_t total, bool force)
{
    pthread_mutex_lock(&p->mu);
    p->done = done;
    if (total)
        p->total = total;
    maybe_draw(p, force);
    pthread_mutex_unlock(&p->mu);
}

void vg_progress_add(struct vg_progress *p, uint64_t n)
{
    pthread_mutex_lock(&p->mu);
    p->done += n;
    maybe_draw(p, false);
    pthread_mutex_unlock(&p->mu);
}

void vg_progress_end(struct vg_progress *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->on && p->width) {
        fprintf(stderr, "\r%*s\r", p->width, "");
        fflush(stderr);
    }
    p->width = 0;
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_destroy(&p->mu);
}
