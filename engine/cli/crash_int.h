/* `vigil crash` internals shared by crash.c (the kernel's handler) and crash_install.c (setting
 * and restoring core_pattern, and handing a crash to the handler that was there before). */
#ifndef VG_CRASH_INT_H
#define VG_CRASH_INT_H

#include <stdbool.h>
#include <stddef.h>

/* What the kernel passes: core_pattern "|VIGIL crash [OPTIONS] FACTS %e %E" with FACTS =
 * "%P:%p:%i:%I:%s:%t:%u:%g:%c:%d:%h" (one argument: a hostname holds no ':'; the command name and
 * the path may hold anything, so they come last, each an argument of its own; the kernel splits
 * the pattern at spaces before it expands it). */
#define VG_CRASH_FACTS "%P:%p:%i:%I:%s:%t:%u:%g:%c:%d:%h"
#define VG_CRASH_FACT_CHARS "PpiIstugcdh"
#define VG_CRASH_ARGS VG_CRASH_FACTS " %e %E"

/* The kernel's values as it printed them, by specifier letter (for the hand-off, which passes
 * them on unchanged). */
struct vg_crash_spec {
    const char *v[128]; /* v['P'], v['e'], ...; NULL when not given */
};

/* STATE_DIR/core_pattern.saved: what --install replaced, so --uninstall restores it and a crash
 * no rule wants goes where it went before. */
struct vg_crash_record {
    char *previous;           /* the core_pattern before --install */
    long previous_pipe_limit; /* core_pipe_limit before --install */
    bool fallback;            /* --fallback previous (true) or none */
    char *installed;          /* the core_pattern --install wrote */
};

#define VG_CRASH_RECORD "core_pattern.saved"

/* Reads the record of state_dir. Returns 0, VG_ENOENT (not installed from there) or VG_EPARSE. */
int vg__crash_record_read(const char *state_dir, struct vg_crash_record *r);
void vg__crash_record_free(struct vg_crash_record *r); /* NULL-safe */

/* Hands the crash to r->previous: execs a pipe handler with the kernel's values (stdin, the
 * core, goes along), or writes the core where a file pattern says, as the kernel would have
 * (the crashed process's cwd, its uid, within RLIMIT_CORE). Returns only when it did not exec:
 * 0 (written or nothing to do) or VG_E* with err set. */
int vg__crash_handoff(const struct vg_crash_record *r, const struct vg_crash_spec *s,
                      const char *proc_root, char *err, size_t errlen);

struct vg_crash_install {
    const char *const *config_dirs;
    size_t n_config_dirs;
    const char *state_dir_opt; /* --state-dir, or NULL */
    const char *state_dir;     /* resolved */
    const char *handler;       /* --handler, or NULL: this vigil */
    bool fallback;
    long pipe_limit;
};

/* --install / --uninstall: exit codes (0 ok, 1 failed), messages on stdout/stderr. */
int vg__crash_install(const struct vg_crash_install *o);
int vg__crash_uninstall(const struct vg_crash_install *o);

#endif
