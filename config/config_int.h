/* Internals shared by the configuration loader's files: config.c (sources, egress, server,
 * storage, rules) and sections.c (dotnet-monitor's other sections). */
#ifndef VG_CONFIG_INT_H
#define VG_CONFIG_INT_H

#include "config/config.h"
#include "config/tree_int.h"

struct vg__loader {
    struct vg_config *cfg;
    struct vg_tree *t;
    struct vg_diags *d;
    const struct vg_node *root;
    const struct vg_node *properties; /* Egress.Properties */
    const struct vg_node *templates;
    unsigned flags;
    bool unresolved; /* a secret reference stayed unresolved (VG_CONFIG_SECRETS_OPTIONAL) */
    struct vg_node *doc_rules; /* rule names YAML/JSON documents defined so far, with where */
};

/* A key path copied into the tree's arena (NULL on OOM). */
char *vg__cfg_path(struct vg__loader *L, const char *base, const char *key);
/* Unknown keys of a map are warnings with a did-you-mean (dotnet-monitor's binder ignores them). */
void vg__cfg_check_keys(struct vg__loader *L, const struct vg_node *map, const char *path,
                        const char *const *known);
/* false (with an error) when n is not of `kind`; NULL passes. */
bool vg__cfg_expect(struct vg__loader *L, const struct vg_node *n, enum vg_node_kind kind,
                    const char *path);
/* A string setting, ${env:}/${file:} references resolved; NULL when unset or not a string. */
const char *vg__cfg_string(struct vg__loader *L, const struct vg_node *n, const char *path,
                           const char *key);
/* One process filter ({Key, Value, MatchType} or the KEY: VALUE shorthand). */
int vg__cfg_filter(struct vg__loader *L, const struct vg_node *f, const char *path,
                   struct vg_filter_settings *out);
/* A list of listen URLs: a list or "a;b" text. `what` names the setting in messages. */
int vg__cfg_listen_urls(struct vg__loader *L, const struct vg_node *n, const char *what,
                        struct vg_listen_url **out, size_t *count);

/* sections.c */
int vg__cfg_load_monitor_sections(struct vg__loader *L);

#endif
