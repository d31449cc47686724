/* Loading a configuration: directories of YAML/JSON files -> one merged tree -> typed settings. */
#ifndef VG_CONFIG_H
#define VG_CONFIG_H

#include "config/settings.h"
#include "config/tree.h"

struct vg_config {
    struct vg_tree *tree;        /* owns every node and string the settings point to */
    struct vg_settings settings; /* strings/nodes borrowed from tree */
    char **dirs;                 /* the directories it was loaded from */
    size_t n_dirs;
    char **files; /* the files read, in merge order */
    size_t n_files;
};

/* Loads and validates every YAML (.yaml, .yml) and JSON file of each directory (name order,
 * directories in the given order; later keys override earlier ones). All problems go to diags.
 * Returns 0 (warnings possible), VG_ECONFIG (diags has errors; *out is NULL) or VG_ENOMEM.
 * Rule bodies (Trigger/Actions/Limits) are only shape-checked here; rules/ validates them. */
int vg_config_load(const char *const *dirs, size_t n_dirs, struct vg_diags *diags,
                   struct vg_config **out);
void vg_config_destroy(struct vg_config *cfg);

enum {
    /* `vigil check`: an unset ${env:X} or unreadable ${file:P} is a warning, not an error, so a
     * configuration can be validated where its secrets are not mounted. */
    VG_CONFIG_SECRETS_OPTIONAL = 1u << 0,
    /* Return the (partial) configuration even when it has errors (*out set with VG_ECONFIG), so
     * `vigil check` can also compile the rules and report every problem in one pass. */
    VG_CONFIG_KEEP_ON_ERROR = 1u << 1,
};
int vg_config_load_ex(const char *const *dirs, size_t n_dirs, unsigned flags,
                      struct vg_diags *diags, struct vg_config **out);

/* Looks an egress provider up by name (case-insensitive); NULL when absent. */
const struct vg_egress_settings *vg_config_egress(const struct vg_config *cfg, const char *name);

/* True for keys whose values are secrets (redacted by `vigil check --show`). */
bool vg_config_is_secret_key(const char *key);

#include <stdio.h>
/* Prints the merged configuration as JSON: rules with templates resolved, secrets redacted. */
void vg_config_show(const struct vg_config *cfg, FILE *out);

#endif
