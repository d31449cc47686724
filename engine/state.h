/* The engine's durable state in STATE_DIR/vigil.db: rule instances (rule x process), fires and
 * action results, so limits, cooldowns and finished rules survive restarts. Used only from the
 * loop thread (the egress module has its own connection). */
#ifndef VG_STATE_H
#define VG_STATE_H

#include <stddef.h>
#include <stdint.h>

struct vg_state;

/* Opens (creating and migrating) DIR/vigil.db. err gets a message on failure. */
int vg_state_open(const char *dir, struct vg_state **out, char *err, size_t errlen);
void vg_state_close(struct vg_state *s); /* NULL-safe */
int vg_state_schema_version(struct vg_state *s);

struct vg_state_fire {
    uint64_t fired_ms;
    char *persist; /* JSON array of numbers or NULL */
};

/* Looks up (or creates with start_ms = now_ms) an instance and returns its start time and its
 * past fires (malloc'd array, oldest first). */
int vg_state_instance_load(struct vg_state *s, const char *rule, uint64_t fingerprint,
                           const char *proc_key, int pid, uint64_t now_ms, uint64_t *start_ms,
                           struct vg_state_fire **fires, size_t *n_fires);
void vg_state_fires_free(struct vg_state_fire *f, size_t n);
/* Forgets every instance of an exited process (its fire history stays). */
int vg_state_forget_process(struct vg_state *s, const char *proc_key);

int vg_state_fire_add(struct vg_state *s, const char *rule, uint64_t fingerprint,
                      const char *proc_key, int pid, uint64_t fired_ms, const char *persist,
                      int64_t *fire_id);
int vg_state_fire_end(struct vg_state *s, int64_t fire_id, const char *status, uint64_t now_ms,
                      const char *error);
int vg_state_action_add(struct vg_state *s, int64_t fire_id, size_t idx, const char *name,
                        const char *type, uint64_t now_ms, int64_t *action_id);
int vg_state_action_end(struct vg_state *s, int64_t action_id, const char *status, uint64_t now_ms,
                        const char *outputs_json, const char *error);

#endif
