/* What `vigil run` checks against this host when it starts, as configuration diagnostics, so
 * that a configuration `vigil check` passes also starts: each egress provider's settings
 * (credentials present, keys base64, directories creatable), the MonitorApiKey public key, the
 * state and spool directories. Creates nothing, uses no network. */
#ifndef VG_PREFLIGHT_H
#define VG_PREFLIGHT_H

#include "config/config.h"

/* state_dir: --state-dir, or NULL for Storage.StateDir / the default. Adds errors to d (at the
 * setting's position); returns the number of errors added. */
size_t vg_preflight(const struct vg_config *cfg, const char *state_dir, struct vg_diags *d);

#endif
