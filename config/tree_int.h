/* Internals shared by the tree, its YAML/JSON readers and the loader. */
#ifndef VG_TREE_INT_H
#define VG_TREE_INT_H

#include "config/tree.h"

/* Hostile-input limits: each violation is reported as a diagnostic, never a crash or a hang. */
#define VG__MAX_FILE_BYTES (8u << 20) /* one configuration file */
#define VG__MAX_DEPTH 64              /* nesting of maps and sequences */
#define VG__MAX_NODES_PER_FILE 200000 /* after alias expansion (billion laughs) */
#define VG__MAX_SCALAR_BYTES (1u << 20)
#define VG__MAX_ANCHORS 1024

struct vg__builder {
    struct vg_tree *tree;
    const char *file; /* interned */
    struct vg_diags *diags;
    size_t nodes;
    bool failed;
};

void *vg__tree_alloc(struct vg_tree *t, size_t n);
const char *vg__tree_intern_file(struct vg_tree *t, const char *name);
/* Appends to a MAP/SEQ node under construction (arrays live in the arena; growth doubles). */
int vg__node_push_item(struct vg_tree *t, struct vg_node *seq, struct vg_node *item);
int vg__node_push_pair(struct vg_tree *t, struct vg_node *map, char *key, const struct vg_pos *kpos,
                       struct vg_node *value);
/* Counts a node against the per-file budget; adds one diagnostic the first time it is exceeded. */
bool vg__builder_count(struct vg__builder *b, const struct vg_pos *pos);

int vg__parse_yaml(struct vg__builder *b, const char *data, size_t len, struct vg_node **out);
int vg__parse_json(struct vg__builder *b, const char *data, size_t len, struct vg_node **out);
/* Merges src into dst (both maps): keys case-insensitive; later values replace, maps merge. */
int vg__tree_merge(struct vg_tree *t, struct vg_node *dst, struct vg_node *src);

#endif
