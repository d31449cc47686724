/* A progress line for the long CLI transfers (`vigil dump`, `vigil upload`): bytes so far, of how
 * many when known, the rate and the time left, redrawn in place on stderr at most five times a
 * second. Only on a terminal: when stderr is a pipe or a file (scripts, logs, CI) it prints
 * nothing, so output stays what it was. */
#ifndef VG_PROGRESS_H
#define VG_PROGRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vg_progress {
    bool on;         /* stderr is a terminal */
    bool sizes_only; /* bytes and time, no rate or ETA (when the bytes are not a transfer) */
    pthread_mutex_t mu;
    const char *phase; /* "dumping", "uploading": a static string */
    uint64_t done, total;
    uint64_t t0_ms, last_ms;
    int width; /* of the last line drawn, to clear it */
};

/* Decides whether to draw (a terminal, TERM not "dumb") and starts the first phase. */
void vg_progress_init(struct vg_progress *p, const char *phase);
/* A new phase: done goes back to 0; total 0 = unknown. Draws it. */
void vg_progress_phase(struct vg_progress *p, const char *phase, uint64_t total);
/* Progress so far and, when it became known, the total (0 keeps the previous one). Draws when
 * the last drawing is 200 ms old, or `force`. Any thread. */
void vg_progress_set(struct vg_progress *p, uint64_t done, uint64_t total, bool force);
void vg_progress_add(struct vg_progress *p, uint64_t n);
/* Erases the line (the command then prints its result). */
void vg_progress_end(struct vg_progress *p);

/* "512.0 MiB"-style sizes for people. Returns buf. */
const char *vg_progress_size(uint64_t bytes, char *buf, unsigned n);

#endif
