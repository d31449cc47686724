/* Loading a configuration: YAML/JSON files, key-per-file directories and environment variables
 * (config/source.h) -> one merged tree -> typed settings. */
#ifndef VG_CONFIG_H
#define VG_CONFIG_H

#include "config/settings.h"
#include "config/tree.h"

struct vg_config {
    struct vg_tree *tree;        /* owns every node and string the settings point to */
    struct vg_settings settings; /* strings/nodes borrowed from tree */
    char **dirs;                 /* the directories it was loaded from */
    size_t n_dirs;
    char **files; /* the files read (documents and key-per-file entries), in merge order */
    size_t n_files;
    size_t n_env; /* environment variables read */
};

#define VG_CONFIG_MAX_FILES 4096

/* Loads and validates every YAML (.yaml, .yml) and JSON file and key-per-file entry of each
 * directory and the process environment's variables, in dotnet-monitor's precedence
 * (config/source.h). All problems go to diags; a diagnostic about a rule names it (diag.rule)
 * and counts in its vg_rule_settings.errors. Returns 0 (warnings possible), VG_ECONFIG (diags
 * has errors; *out is NULL) or VG_ENOMEM. Rule bodies (Trigger/Actions/Limits) are only
 * shape-checked here; rules/ validates them. */
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

struct vg_source_cache;
struct vg_config_options {
    const char *const *dirs;
    size_t n_dirs;
    unsigned flags;
    const char *const *envp; /* "NAME=VALUE" strings (environ); NULL: no variables */
    /* NULL, or the last good content of each file across loads (vigil run's reloads): a file
     * that no longer parses keeps it, with a warning. */
    struct vg_source_cache *cache;
};
int vg_config_load_opts(const struct vg_config_options *o, struct vg_diags *diags,
                        struct vg_config **out);

/* Looks an egress provider up by name (case-insensitive); NULL when absent. */
const struct vg_egress_settings *vg_config_egress(const struct vg_config *cfg, const char *name);

/* True for keys whose values are secrets (redacted by `vigil check --show`). */
bool vg_config_is_secret_key(const char *key);

#include <stdio.h>
enum { VG_SHOW_SOURCES = 1u << 0 };
/* Prints the merged configuration as JSON: rules with templates resolved, secrets redacted.
 * With VG_SHOW_SOURCES every value is followed by a comment saying where it came from
 * (FILE:LINE:COL, a key-per-file path or env:NAME), as dotnet-monitor's config show
 * --show-sources does; vigil's JSON reader accepts such comments. */
void vg_config_show(const struct vg_config *cfg, FILE *out, unsigned flags);

#endif
